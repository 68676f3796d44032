/* GGUF: the reader against hostile files, every block format's dequantizer against float64 reference values
 * of an independent decoder (tests/gguf_ref.py), the deepseek2 metadata against the config.json it came from,
 * and the five golden GGUF files made by ik_llama.cpp's converter and llama-quantize (Q8_0, Q4_K, Q6_K, Q2_K,
 * Q4_K_M) through prefill and decode on every kernel table the CPU has, with kv_b read as attn_kv_b and as
 * attn_k_b + attn_v_b, and once more split into two files. */
#include "model/model.h"
#include "text/text.h"
#include "check.h"
#include "simd_levels.h"

#include <jansson.h>
#include <omp.h>
#include <string.h>
#include <sys/stat.h>

#define GDIR "tests/data/golden/gguf"
static const char *CASES[] = {"gguf-Q8_0", "gguf-Q4_K", "gguf-Q6_K", "gguf-Q2_K", "gguf-Q4_K_M"};
#define NCASES 5

/* ------------------------------------------------------------------ building GGUF images */
typedef struct { uint8_t *p; size_t n, cap; } buf;
static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { uint8_t x[4]; for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> 8 * i); put(b, x, 4); }
static void put_u64(buf *b, uint64_t v) { uint8_t x[8]; for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> 8 * i); put(b, x, 8); }
static void put_str(buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void pad_to(buf *b, size_t a) { uint8_t z = 0; while (b->n % a) put(b, &z, 1); }
static void patch_u32(uint8_t *p, size_t at, uint32_t v) { for (int i = 0; i < 4; i++) p[at + i] = (uint8_t)(v >> 8 * i); }
static void patch_u64(uint8_t *p, size_t at, uint64_t v) { for (int i = 0; i < 8; i++) p[at + i] = (uint8_t)(v >> 8 * i); }

/* A small valid image; the positions of the fields the corruptions patch. */
static struct {
    size_t version, nt, nkv, key0_len, kv1_type, align_val, arr_type, arr_count, key4, nd0, dim0, dim1_0, type1,
        off1, name1;
} at;
static buf small_image(void) {
    buf b = {0};
    put(&b, "GGUF", 4);
    at.version = b.n; put_u32(&b, 3);
    at.nt = b.n; put_u64(&b, 2);
    at.nkv = b.n; put_u64(&b, 5);
    at.key0_len = b.n; put_str(&b, "general.architecture"); put_u32(&b, K2C_GGUF_STRING); put_str(&b, "deepseek2");
    put_str(&b, "general.alignment"); at.kv1_type = b.n; put_u32(&b, K2C_GGUF_U32); at.align_val = b.n; put_u32(&b, 32);
    put_str(&b, "test.strings"); put_u32(&b, K2C_GGUF_ARRAY);
    at.arr_type = b.n; put_u32(&b, K2C_GGUF_STRING); at.arr_count = b.n; put_u64(&b, 2); put_str(&b, "a"); put_str(&b, "bc");
    put_str(&b, "test.f32"); put_u32(&b, K2C_GGUF_F32); float f = 1.5f; put(&b, &f, 4);
    at.key4 = b.n; put_str(&b, "test.i32"); put_u32(&b, K2C_GGUF_ARRAY); put_u32(&b, K2C_GGUF_I32); put_u64(&b, 3);
    for (int i = 1; i <= 3; i++) put_u32(&b, (uint32_t)-i);
    put_str(&b, "a"); at.nd0 = b.n; put_u32(&b, 2); at.dim0 = b.n; put_u64(&b, 8); put_u64(&b, 2);
    put_u32(&b, K2C_GGML_F32); put_u64(&b, 0);
    at.name1 = b.n; put_str(&b, "b"); put_u32(&b, 1); at.dim1_0 = b.n; put_u64(&b, 32);
    at.type1 = b.n; put_u32(&b, K2C_GGML_Q8_0); at.off1 = b.n; put_u64(&b, 64);
    pad_to(&b, 32);
    for (int i = 0; i < 16; i++) { float v = (float)i; put(&b, &v, 4); }
    uint8_t q[34] = {0x00, 0x3c};   /* d = 1.0 (half) */
    for (int i = 0; i < 32; i++) q[2 + i] = (uint8_t)(i - 16);
    put(&b, q, 34);
    return b;
}

static void reader_accepts_valid(void) {
    buf b = small_image();
    k2c_gguf g;
    if (k2c_gguf_parse(&g, "ok.gguf", b.p, b.n) != 0) { EXPECT(0, "%s", k2c_errmsg()); free(b.p); return; }
    const char *s = NULL;
    int64_t iv = 0;
    double fv = 0;
    EXPECT(g.version == 3 && g.nkv == 5 && g.ntensors == 2 && g.alignment == 32, "counts");
    EXPECT(k2c_gguf_str(&g, "general.architecture", &s) == 1 && !strcmp(s, "deepseek2"), "string");
    EXPECT(k2c_gguf_int(&g, "general.alignment", &iv) == 1 && iv == 32, "u32");
    EXPECT(k2c_gguf_num(&g, "test.f32", &fv) == 1 && fv == 1.5, "f32");
    EXPECT(k2c_gguf_int(&g, "test.f32", &iv) == -1 && strstr(k2c_errmsg(), "expected an integer"), "f32 as int");
    EXPECT(k2c_gguf_int(&g, "absent", &iv) == 0, "absent");
    const k2c_gguf_kv *a = k2c_gguf_get(&g, "test.strings"), *ia = k2c_gguf_get(&g, "test.i32");
    EXPECT(a && a->atype == K2C_GGUF_STRING && a->n == 2 && a->sl[1] == 2 && !memcmp(a->sv[1], "bc", 2), "string array");
    int32_t third = 0;
    if (ia) memcpy(&third, ia->arr + 8, 4);
    EXPECT(ia && ia->atype == K2C_GGUF_I32 && ia->n == 3 && third == -3, "i32 array");
    const k2c_gguf_tensor *ta = k2c_gguf_find(&g, "a"), *tb = k2c_gguf_find(&g, "b");
    EXPECT(ta && ta->ndim == 2 && ta->ne[0] == 8 && ta->ne[1] == 2 && ta->nbytes == 64 && ((const float *)ta->data)[15] == 15.0f, "a");
    EXPECT(tb && tb->type == K2C_GGML_Q8_0 && tb->nbytes == 34 && (const uint8_t *)tb->data + 34 == b.p + b.n, "b");
    float y[32];
    if (tb) k2c_quant_dequant_block(K2C_FMT_Q8_0, tb->data, y);
    EXPECT(tb && y[0] == -16.0f && y[31] == 15.0f, "b values");
    k2c_gguf_close(&g);
    free(b.p);
}

/* Patches one field of the small image; the parse must fail with an error naming the file and saying `why`. */
typedef struct { const char *name; size_t *pos; int wide; uint64_t value; const char *why; } corruption;

static void reader_rejects_corrupt(void) {
    buf b = small_image();
    corruption cs[] = {
        {"magic", NULL, 0, 0, "not a GGUF file"},
        {"version 1", &at.version, 0, 1, "version 1"},
        {"version 9", &at.version, 0, 9, "version 9"},
        {"big-endian", &at.version, 0, 0x03000000u, "big-endian"},
        {"tensor count", &at.nt, 1, 1ull << 40, "tensor count"},
        {"metadata count", &at.nkv, 1, 1ull << 40, "metadata count"},
        {"fewer tensors", &at.nt, 1, 1, "metadata key"},    /* the second tensor info is read as data: fails later */
        {"absurd key length", &at.key0_len, 1, 1ull << 40, "over the limit"},
        {"key past the end", &at.key0_len, 1, 60000, "runs past the end"},
        {"value type", &at.kv1_type, 0, 77, "unknown value type 77"},
        {"alignment", &at.align_val, 0, 3, "general.alignment"},
        {"array of arrays", &at.arr_type, 0, K2C_GGUF_ARRAY, "arrays of arrays"},
        {"array type", &at.arr_type, 0, 50, "array of unknown type 50"},
        {"array count", &at.arr_count, 1, 1ull << 50, "cannot fit"},
        {"dims 5", &at.nd0, 0, 5, "5 dimensions"},
        {"dims 0", &at.nd0, 0, 0, "0 dimensions"},
        {"dim huge", &at.dim0, 1, 1ull << 45, "dimension 0"},
        {"ggml type", &at.type1, 0, 99, "unknown ggml type 99"},
        {"row not whole blocks", &at.dim1_0, 1, 31, "not a multiple of the Q8_0 block"},
        {"offset past the end", &at.off1, 1, 1ull << 40, "past the end of the data area"},
        {"offset unaligned", &at.off1, 1, 48, "not a multiple of the alignment"},
        {"overlap", &at.off1, 1, 32, "overlap"},
    };
    int nc = (int)(sizeof cs / sizeof cs[0]);
    for (int i = 0; i < nc; i++) {
        uint8_t *p = malloc(b.n);
        memcpy(p, b.p, b.n);
        if (!cs[i].pos) p[3] = 'X';
        else if (cs[i].wide) patch_u64(p, *cs[i].pos, cs[i].value);
        else patch_u32(p, *cs[i].pos, (uint32_t)cs[i].value);
        k2c_gguf g;
        int rc = k2c_gguf_parse(&g, "bad.gguf", p, b.n);
        if (!strcmp(cs[i].name, "fewer tensors")) {
            /* one tensor info fewer is a valid file whose data area starts elsewhere: it must parse or fail cleanly */
            if (rc == 0) k2c_gguf_close(&g);
            free(p);
            continue;
        }
        EXPECT(rc != 0 && strstr(k2c_errmsg(), "bad.gguf") && strstr(k2c_errmsg(), cs[i].why), "%s: rc %d, error '%s' (want '%s')",
               cs[i].name, rc, rc ? k2c_errmsg() : "", cs[i].why);
        if (rc == 0) k2c_gguf_close(&g);
        free(p);
    }
    /* duplicate tensor and key names */
    uint8_t *p = malloc(b.n);
    memcpy(p, b.p, b.n);
    p[at.name1 + 8] = 'a';
    k2c_gguf g;
    EXPECT(k2c_gguf_parse(&g, "bad.gguf", p, b.n) != 0 && strstr(k2c_errmsg(), "'a' appears twice"), "dup tensor: %s", k2c_errmsg());
    memcpy(p, b.p, b.n);
    memcpy(p + at.key4 + 8, "test.f32", 8);
    EXPECT(k2c_gguf_parse(&g, "bad.gguf", p, b.n) != 0 && strstr(k2c_errmsg(), "'test.f32' appears twice"), "dup key: %s", k2c_errmsg());
    free(p);
    /* an empty tensor sorted between two overlapping ones must not hide the overlap */
    {
        buf o = {0};
        put(&o, "GGUF", 4); put_u32(&o, 3); put_u64(&o, 3); put_u64(&o, 0);
        const char *names[3] = {"a", "e", "c"};
        uint64_t ne[3] = {16, 0, 8}, off[3] = {0, 32, 32};
        for (int i = 0; i < 3; i++) { put_str(&o, names[i]); put_u32(&o, 1); put_u64(&o, ne[i]); put_u32(&o, K2C_GGML_F32); put_u64(&o, off[i]); }
        pad_to(&o, 32);
        for (int i = 0; i < 64; i++) put(&o, "\0", 1);
        EXPECT(k2c_gguf_parse(&g, "bad.gguf", o.p, o.n) != 0 && strstr(k2c_errmsg(), "'a' and 'c' overlap"), "overlap behind an empty tensor: %s",
               k2c_errmsg());
        free(o.p);
    }
    /* every truncation fails with the file's name (never reads past the end: the sanitizer build checks that) */
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *t = malloc(n ? n : 1);
        memcpy(t, b.p, n);
        int rc = k2c_gguf_parse(&g, "bad.gguf", t, n);
        if (rc == 0) k2c_gguf_close(&g);
        if (rc == 0 || !strstr(k2c_errmsg(), "bad.gguf")) { if (!bad) EXPECT(0, "truncated to %zu bytes: rc %d", n, rc); bad++; }
        free(t);
    }
    EXPECT(bad == 0, "%d truncations accepted or unnamed", bad);
    /* the same through the file reader: the path is named */
    const char *path = "build/tests/gguf_truncated.gguf";
    EXPECT(k2c_write_file_atomic(path, b.p, b.n - 10) == 0, "%s", k2c_errmsg());
    EXPECT(k2c_gguf_open(&g, path, K2C_LOAD_MMAP) != 0 && strstr(k2c_errmsg(), path) && strstr(k2c_errmsg(), "'b'"), "%s", k2c_errmsg());
    EXPECT(k2c_gguf_open(&g, "build/tests/no-such.gguf", K2C_LOAD_MMAP) != 0 && strstr(k2c_errmsg(), "no-such.gguf"), "%s", k2c_errmsg());
    free(b.p);
}

/* ------------------------------------------------------------------ dequantizers vs float64 references */
static k2c_safetensors ref;
static const k2c_kernels *TABLES[3];
static int ntables;

/* Each type's dequantizer and row dots (fp32 and quantized activations) on every table, against the float64
 * values of reference blocks in rf (TYPE.raw, TYPE.ref). */
static void check_blocks(const k2c_safetensors *rf, const char *const *types, size_t ntypes) {
    for (size_t ti = 0; ti < ntypes; ti++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "%s.raw", types[ti]);
        snprintf(n2, sizeof n2, "%s.ref", types[ti]);
        const k2c_tensor *raw = k2c_st_find(rf, n1), *want = k2c_st_find(rf, n2);
        k2c_wfmt f = K2C_FMT_COUNT;
        for (int t = 0; t < K2C_GGML_TYPES; t++)
            if (k2c_ggml_type_name(t) && !strcmp(k2c_ggml_type_name(t), types[ti])) k2c_wfmt_from_ggml(t, &f);
        if (!raw || !want || f == K2C_FMT_COUNT) { EXPECT(0, "%s: no reference or format", types[ti]); continue; }
        int rows = (int)want->shape[0], cols = (int)want->shape[1];
        /* F32/F16/BF16 rows are read as aligned arrays: copy the bytes into aligned memory */
        void *w = aligned_alloc(64, (raw->nbytes + 63) & ~(size_t)63);
        memcpy(w, raw->data, raw->nbytes);
        k2c_linear l = {.fmt = f, .rows = rows, .cols = cols, .w = w};
        EXPECT(k2c_linear_bytes(&l) == raw->nbytes, "%s: %zu bytes, reference %zu", types[ti], k2c_linear_bytes(&l), raw->nbytes);
        const double *r = want->data;
        float *row = malloc((size_t)cols * sizeof *row), *x = malloc((size_t)cols * sizeof *x);
        for (int j = 0; j < cols; j++) x[j] = (float)sin(0.37 * j + 0.1);
        void *qbuf = aligned_alloc(64, (k2c_q8x_bytes(cols) + 63) & ~(size_t)63);
        void *qbuf2 = aligned_alloc(64, (k2c_q8x_bytes(cols) + 63) & ~(size_t)63);
        /* one dx per 32 and per 256 (the K-quants' decode without VNNI on AVX2: other kernels) */
        const k2c_q8x *xq32 = k2c_q8x_quantize(x, cols, qbuf), *xq256 = k2c_q8x_quantize_span(x, cols, 256, qbuf2);
        for (int k = 0; k < ntables; k++)
        for (int sp = 0; sp < 2; sp++) {
            const k2c_q8x *xq = sp ? xq256 : xq32;
            if (sp && xq->span != 256) continue;
            double worst = 0, dworst = 0, qworst = 0, qerr = 0;
            for (int i = 0; i < rows; i++) {
                k2c_row_dequant(TABLES[k], &l, i, row);
                double m = 0, dot = 0, sx = 0;
                for (int j = 0; j < cols; j++) {
                    double e = r[(size_t)i * cols + j];
                    m = fmax(m, fabs(e));
                    worst = check_worse(worst, fabs(row[j] - e) / (fabs(e) + 1e-30));
                    dot += e * x[j];
                    sx += fabs(e * x[j]);
                }
                float got = k2c_row_dot(TABLES[k], &l, i, x, NULL);
                dworst = check_worse(dworst, fabs(got - dot) / sx);
                (void)m;
                if (!TABLES[k]->dot_q8 || !k2c_wfmt_is_block(f)) continue;
                /* quantized activations: exactly the dot with the dequantized x, up to float rounding; and within
                 * the quantization error (half a step of 1/127 of each block's largest |x|) of the fp32 dot */
                double qdot = 0, qs = 0;
                for (int j = 0; j < cols; j++) {
                    double e = r[(size_t)i * cols + j], xd = (double)xq->d16[j / 16] * xq->q[j];
                    qdot += e * xd;
                    qs += fabs(e * xd);
                }
                float qgot = k2c_row_dot(TABLES[k], &l, i, x, xq);
                qworst = check_worse(qworst, fabs(qgot - qdot) / qs);
                qerr = check_worse(qerr, fabs(qgot - dot) / sx);
            }
            /* each element is a product of halves and small integers: float32 keeps it to its rounding */
            EXPECT(worst < 2e-7, "%s [%s] dequant rel err %g", types[ti], TABLES[k]->name, worst);
            EXPECT(dworst < 1e-6, "%s [%s] dot rel err %g", types[ti], TABLES[k]->name, dworst);
            if (TABLES[k]->dot_q8 && k2c_wfmt_is_block(f)) {
                EXPECT(qworst < 2e-6, "%s [%s] q8 dot (span %d) vs dequantized x: rel err %g", types[ti], TABLES[k]->name,
                       xq->span, qworst);
                EXPECT(qerr < 1e-2, "%s [%s] q8 dot (span %d) vs fp32 x: rel err %g", types[ti], TABLES[k]->name, xq->span, qerr);
            }
        }
        free(qbuf); free(qbuf2); free(row); free(x); free(w);
    }
}

/* tests/gguf_ref.py's blocks: k2c's own independent Python decoder */
static void dequant_random_blocks(void) {
    static const char *types[] = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K",
                                  "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "Q6_0"};
    check_blocks(&ref, types, sizeof types / sizeof types[0]);
}

/* ggml's own Python package (gguf-py of ik_llama.cpp, tests/gen_gguf_pyref.py): every block type it decodes,
 * the IQ codebook types among them */
static void dequant_ggml_blocks(void) {
    static const char *types[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                                  "IQ4_NL", "IQ4_XS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"};
    k2c_safetensors py;
    if (k2c_st_open(&py, GDIR "/gguf_py_ref.safetensors") != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    check_blocks(&py, types, sizeof types / sizeof types[0]);
    k2c_st_close(&py);
}

/* Q6_0 (ik_llama.cpp's): gguf-py quantizes it but cannot dequantize it, so its blocks of Gaussian rows are
 * checked to decode, on every table, to each source value within half a step d (plus the half-float rounding
 * of d; a whole step on the top level, which gguf-py's rounding clips to): a misplaced bit moves a value by at
 * least a step. tests/gguf_ref.py's Q6_0 blocks check exact values. */
static void dequant_ggml_q6_0(void) {
    k2c_safetensors py;
    if (k2c_st_open(&py, GDIR "/gguf_py_ref.safetensors") != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    const k2c_tensor *raw = k2c_st_find(&py, "Q6_0.raw"), *src = k2c_st_find(&py, "Q6_0.src");
    if (!raw || !src) { EXPECT(0, "no Q6_0 reference"); k2c_st_close(&py); return; }
    int rows = (int)src->shape[0], cols = (int)src->shape[1];
    k2c_linear l = {.fmt = K2C_FMT_Q6_0, .rows = rows, .cols = cols, .w = raw->data};
    EXPECT(k2c_linear_bytes(&l) == raw->nbytes, "Q6_0: %zu bytes, gguf-py %zu", k2c_linear_bytes(&l), raw->nbytes);
    const double *x = src->data;
    const uint8_t *b = raw->data;
    float *y = malloc((size_t)cols * sizeof *y);
    for (int k = 0; k < ntables; k++) {
        double worst = 0;
        for (int r = 0; r < rows; r++) {
            k2c_row_dequant(TABLES[k], &l, r, y);
            for (int j = 0; j < cols; j++) {
                const uint8_t *blk = b + ((size_t)r * cols + j) / 32 * 26;
                double d = k2c_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8)), e = fabs(y[j] - x[(size_t)r * cols + j]) / fabs(d);
                /* the top level (31) also holds what was clipped: d = max / -32 puts -max at 32 */
                worst = check_worse(worst, lrint(y[j] / d) == 31 ? e / 2 : e);
            }
        }
        printf("  Q6_0 [%s] gguf-py's blocks: largest |decoded - source| = %.3f d\n", TABLES[k]->name, worst);
        EXPECT(worst <= 0.52, "Q6_0 [%s]: a value %.3f steps from its source", TABLES[k]->name, worst);
    }
    free(y);
    k2c_st_close(&py);
}

/* The decode driver on the fast path: k2c_matvec and a batch of matvecs sharing one input (as an expert's gate
 * and up do) quantize x once and give, row by row, the dot of the stored weights with the dequantized x; exact
 * mode gives the fp32 dot. Rows of 1280 elements (a multiple of 256 plus a partial chunk for the 32-blocks; five
 * super-blocks for the 256-element types, the IQ codebook types among them). */
static void fast_path_driver(void) {
    static const k2c_wfmt fmts[] = {K2C_FMT_Q4_0, K2C_FMT_Q8_0, K2C_FMT_Q5_0, K2C_FMT_Q5_1, K2C_FMT_Q6_0, K2C_FMT_IQ4_NL,
                                    K2C_FMT_Q2_K, K2C_FMT_Q3_K, K2C_FMT_Q4_K, K2C_FMT_Q5_K, K2C_FMT_Q6_K, K2C_FMT_IQ4_XS,
                                    K2C_FMT_IQ2_XXS, K2C_FMT_IQ2_XS, K2C_FMT_IQ2_S, K2C_FMT_IQ3_XXS, K2C_FMT_IQ3_S,
                                    K2C_FMT_IQ1_S, K2C_FMT_IQ1_M};
    int rows = 96, cols = 1280;
    uint64_t st = 12345;
    for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++) {
        k2c_wfmt f = fmts[fi];
        size_t rb = k2c_wfmt_row_bytes(f, cols);
        uint8_t *w = malloc(rb * (size_t)rows);
        for (size_t i = 0; i < rb * (size_t)rows; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; w[i] = (uint8_t)(st >> 56); }
        /* sane half-float scales: every block's d (and dmin) set to small positive values */
        int be = k2c_wfmt_block_elems(f);
        size_t bb = rb / (size_t)(cols / be);
        size_t doff = f == K2C_FMT_Q2_K ? 80 : f == K2C_FMT_Q3_K ? 108 : f == K2C_FMT_Q6_K ? 208 : 0;
        int two = f == K2C_FMT_Q2_K || f == K2C_FMT_Q4_K || f == K2C_FMT_Q5_K || f == K2C_FMT_Q5_1;
        for (size_t b = 0; b < rb * (size_t)rows / bb; b++) {
            uint8_t *p = w + b * bb + doff;
            if (f == K2C_FMT_IQ1_M) {                 /* 2^-8 in the scale words' top nibbles */
                for (int k = 0; k < 4; k++) p[49 + 2 * k] = (uint8_t)((p[49 + 2 * k] & 15) | ((0x1c00u >> 4 * k) & 15) << 4);
                continue;
            }
            p[0] = 0x00; p[1] = 0x1c;                 /* 2^-8 */
            if (two) { p[2] = 0x00; p[3] = 0x18; }    /* 2^-9 */
        }
        float *x = malloc((size_t)cols * sizeof *x), *row = malloc((size_t)cols * sizeof *row);
        float *y1 = malloc((size_t)rows * sizeof *y1), *y2 = malloc((size_t)rows * sizeof *y2), *y3 = malloc((size_t)rows * sizeof *y3);
        for (int j = 0; j < cols; j++) x[j] = (float)(sin(0.71 * j) * (j % 37 == 0 ? 6 : 1));
        void *qb = aligned_alloc(64, (k2c_q8x_bytes(cols) + 63) & ~(size_t)63);
        for (int t = 0; t < ntables; t++) {
            /* the activations as the driver quantizes them for this table (its q8x_span) */
            const k2c_q8x *xq = k2c_q8x_quantize_span(x, cols, TABLES[t]->q8x_span ? TABLES[t]->q8x_span(f) : 32, qb);
            k2c_kctx cx = {.k = TABLES[t], .nthreads = omp_get_max_threads() > 1 ? 2 : 1}, cxe = cx;  /* one under qemu-user */
            cxe.exact = 1;
            k2c_linear a = {.fmt = f, .rows = rows, .cols = cols, .w = w, .cx = &cx}, b = a, e = a;
            e.cx = &cxe;
            k2c_matvec(&a, x, y1);
            k2c_matvec_job jobs[2] = {{&a, x, y2}, {&b, x, y3}};
            k2c_matvec_batch(jobs, 2);
            double worst = 0, eworst = 0;
            for (int r = 0; r < rows; r++) {
                k2c_linear_dequant_rows(&a, r, 1, row);
                double dq = 0, d = 0, s = 0, sx = 0;
                for (int j = 0; j < cols; j++) {
                    dq += (double)row[j] * xq->d16[j / 16] * xq->q[j];
                    d += (double)row[j] * x[j];
                    s += fabs((double)row[j] * xq->d16[j / 16] * xq->q[j]);
                    sx += fabs((double)row[j] * x[j]);
                }
                worst = check_worse(worst, fmax(fabs(y1[r] - dq), fmax(fabs(y2[r] - dq), fabs(y3[r] - dq))) / s);
                float ye;
                k2c_matvec_rows(&e, r, 1, x, &ye);
                eworst = check_worse(eworst, fabs(ye - d) / sx);
            }
            EXPECT(worst < 2e-6, "%s [%s] fast matvec vs dequantized x: rel err %g", k2c_wfmt_name(f), TABLES[t]->name, worst);
            EXPECT(eworst < 1e-6, "%s [%s] exact matvec: rel err %g", k2c_wfmt_name(f), TABLES[t]->name, eworst);
        }
        free(qb); free(x); free(row); free(y1); free(y2); free(y3); free(w);
    }
}

/* Every table's dot_q8, and its dot_q8_base (the same without VNNI) where it has one, called directly on rows
 * of random blocks of every block format and several lengths (1, 3, 7 and 13 super-blocks; for the 32-element
 * formats also lengths that end inside a 256-element chunk), against the float64 dot of the scalar dequantized
 * row with the dequantized activations. The activations' blocks have different scales (and one is all zero),
 * so a kernel that pairs a group with the wrong dx or s16 fails. */
static void dot_q8_every_path(void) {
    static const int lens_k[] = {256, 768, 1792, 3328}, lens_32[] = {32, 96, 288, 1312};
    uint64_t st = 777;
    for (int fi = K2C_FMT_Q4_0; fi < K2C_FMT_COUNT; fi++) {
        k2c_wfmt f = (k2c_wfmt)fi;
        int be = k2c_wfmt_block_elems(f);
        for (int li = 0; li < 4; li++) {
            int cols = be == 256 ? lens_k[li] : lens_32[li], rows = 8;
            size_t rb = k2c_wfmt_row_bytes(f, cols), bb = k2c_wfmt_row_bytes(f, be);
            uint8_t *w = malloc(rb * (size_t)rows);
            for (size_t i = 0; i < rb * (size_t)rows; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; w[i] = (uint8_t)(st >> 56); }
            /* the halves where each format keeps them, set to small finite values (random bytes could be inf) */
            size_t doff = f == K2C_FMT_Q2_K ? 80 : f == K2C_FMT_Q3_K ? 108 : f == K2C_FMT_Q6_K ? 208 : 0;
            int two = f == K2C_FMT_Q2_K || f == K2C_FMT_Q4_K || f == K2C_FMT_Q5_K || f == K2C_FMT_Q4_1 || f == K2C_FMT_Q5_1;
            for (size_t b = 0; b < rb * (size_t)rows / bb; b++) {
                uint8_t *p = w + b * bb + doff;
                if (f == K2C_FMT_IQ1_M) {             /* its d is spread over the scale words' top nibbles */
                    unsigned d = 0x1c00u | (unsigned)(b * 37 % 256);
                    for (int k = 0; k < 4; k++) p[49 + 2 * k] = (uint8_t)((p[49 + 2 * k] & 15) | ((d >> 4 * k) & 15) << 4);
                    continue;
                }
                p[0] = (uint8_t)(b * 37); p[1] = 0x1c;                /* about 2^-8 */
                if (two) { p[2] = (uint8_t)(b * 11); p[3] = 0x98; }   /* about -2^-9 */
            }
            float *x = malloc((size_t)cols * sizeof *x), *row = malloc((size_t)cols * sizeof *row);
            for (int j = 0; j < cols; j++) x[j] = (float)(sin(0.93 * j + li) * (1 + (j / 32) % 5) * ((j / 32) % 7 == 3 ? 0 : 1));
            void *qb = aligned_alloc(64, (k2c_q8x_bytes(cols) + 63) & ~(size_t)63);
            k2c_linear l = {.fmt = f, .rows = rows, .cols = cols, .w = w};
            for (int span = 32; span <= 256; span *= 8) {     /* one dx per 32, and per 256 where cols allow */
            const k2c_q8x *xq = k2c_q8x_quantize_span(x, cols, span, qb);
            if (xq->span != span) continue;
            for (int t = 0; t < ntables; t++)
                for (int base = 0; base < 2; base++) {
                    float (*dot)(k2c_wfmt, const uint8_t *, const k2c_q8x *, int) = base ? TABLES[t]->dot_q8_base : TABLES[t]->dot_q8;
                    if (!dot) continue;
                    double worst = 0;
                    for (int r = 0; r < rows; r++) {
                        k2c_row_dequant(&k2c_kernels_scalar, &l, r, row);
                        double dq = 0, s = 0;
                        for (int j = 0; j < cols; j++) {
                            double e = (double)row[j] * xq->d16[j / 16] * xq->q[j];
                            dq += e;
                            s += fabs(e);
                        }
                        float got = dot(f, w + (size_t)r * rb, xq, cols);
                        worst = check_worse(worst, fabs(got - dq) / (s + 1e-30));
                    }
                    EXPECT(worst < 2e-6, "%s n=%d [%s%s] q8 dot (span %d) vs dequantized x: rel err %g", k2c_wfmt_name(f),
                           cols, TABLES[t]->name, base ? " base" : "", span, worst);
                }
            for (int t = 0; t < ntables; t++) {       /* the row loop: dot_q8's values, bit for bit, prefetch or not */
                if (!TABLES[t]->dot_q8_rows) { EXPECT(0, "[%s] has no dot_q8_rows", TABLES[t]->name); continue; }
                float ys[8], yr[8];
                for (int pf = 0; pf < 2; pf++) {
                    TABLES[t]->dot_q8_rows(f, w + rb, rb, rows - 1, rows - 1, xq, cols, yr, pf ? 256 : 0);
                    int same = 1;
                    for (int r = 1; r < rows; r++) {
                        ys[r] = TABLES[t]->dot_q8(f, w + (size_t)r * rb, xq, cols);
                        same &= memcmp(&ys[r], &yr[r - 1], sizeof(float)) == 0;
                    }
                    EXPECT(same, "%s n=%d [%s] dot_q8_rows differs from dot_q8 (pf %d, span %d)", k2c_wfmt_name(f), cols,
                           TABLES[t]->name, pf, span);
                }
            }
            }
            free(qb); free(x); free(row); free(w);
        }
    }
}

/* One matvec batch on one x over matrices of different formats (K-quants, a 32-element type, INT4 where the table
 * reads it on int8): each must get activations quantized for its own kernels (the table's q8x_span, INT4's even /
 * odd order), not another job's; each row against the float64 dot of its dequantized row with x quantized that
 * way. x's super-blocks differ in magnitude by up to 50x, so a kernel taking another block's dx fails too. */
static void matvec_mixed_batch(void) {
    static const k2c_wfmt fmts[] = {K2C_FMT_Q4_K, K2C_FMT_Q8_0, K2C_FMT_Q6_K, K2C_FMT_IQ4_NL, K2C_FMT_Q2_K};
    enum { NF = sizeof fmts / sizeof fmts[0], ROWS = 40, COLS = 1280 };
    uint64_t st = 4242;
    uint8_t *w[NF];
    float *x = malloc(COLS * sizeof *x), *row = malloc(COLS * sizeof *row), *y[NF];
    for (int j = 0; j < COLS; j++) x[j] = (float)(sin(0.61 * j + 0.3) * (1 + 49 * ((j / 256) % 2)) * (1 + (j / 32) % 3));
    for (int f = 0; f < NF; f++) {
        size_t rb = k2c_wfmt_row_bytes(fmts[f], COLS), bb = k2c_wfmt_row_bytes(fmts[f], k2c_wfmt_block_elems(fmts[f]));
        w[f] = malloc(rb * ROWS);
        y[f] = malloc(ROWS * sizeof *y[f]);
        for (size_t i = 0; i < rb * ROWS; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; w[f][i] = (uint8_t)(st >> 56); }
        size_t doff = fmts[f] == K2C_FMT_Q2_K ? 80 : fmts[f] == K2C_FMT_Q6_K ? 208 : 0;
        int two = fmts[f] == K2C_FMT_Q2_K || fmts[f] == K2C_FMT_Q4_K;
        for (size_t b = 0; b < rb * ROWS / bb; b++) {
            uint8_t *p = w[f] + b * bb + doff;
            p[0] = (uint8_t)(b * 29); p[1] = 0x1c;
            if (two) { p[2] = (uint8_t)(b * 13); p[3] = 0x18; }
        }
    }
    void *qb = aligned_alloc(64, (k2c_q8x_bytes(COLS) + 63) & ~(size_t)63);
    for (int t = 0; t < ntables; t++) {
        k2c_kctx cx = {.k = TABLES[t], .nthreads = omp_get_max_threads() > 1 ? 2 : 1};
        k2c_linear l[NF];
        k2c_matvec_job jobs[NF];
        for (int f = 0; f < NF; f++) {
            l[f] = (k2c_linear){.fmt = fmts[f], .rows = ROWS, .cols = COLS, .w = w[f], .cx = &cx};
            jobs[f] = (k2c_matvec_job){&l[f], x, y[f]};
        }
        k2c_matvec_batch(jobs, NF);
        for (int f = 0; f < NF; f++) {
            int span = TABLES[t]->q8x_span ? TABLES[t]->q8x_span(fmts[f]) : 32;
            const k2c_q8x *xq = k2c_q8x_quantize_span(x, COLS, span, qb);
            double worst = 0;
            for (int r = 0; r < ROWS; r++) {
                k2c_linear_dequant_rows(&l[f], r, 1, row);
                double dq = 0, s = 0;
                for (int j = 0; j < COLS; j++) {
                    double e = (double)row[j] * xq->d16[j / 16] * xq->q[j];
                    dq += e;
                    s += fabs(e);
                }
                worst = check_worse(worst, fabs(y[f][r] - dq) / s);
            }
            EXPECT(worst < 2e-6, "%s in a mixed batch [%s, span %d]: rel err %g", k2c_wfmt_name(fmts[f]), TABLES[t]->name,
                   span, worst);
        }
    }
    for (int f = 0; f < NF; f++) { free(w[f]); free(y[f]); }
    free(qb); free(x); free(row);
}

/* k2c_q8x_quantize's codes against lrintf's (ties to even) and its block sums, at spans 32 and 256: random blocks,
 * and blocks whose max is 127 (scale 1) holding exact halves (2.5 -> 2, -3.5 -> -4, 0.5 -> 0), NaN (-127) and one all zero. */
static void q8x_codes(void) {
    enum { N = 32 * 40 };
    float *x = malloc(N * sizeof *x);
    void *buf = aligned_alloc(64, (k2c_q8x_bytes(N) + 63) & ~(size_t)63);
    uint64_t st = 99;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(st >> 11) / 9007199254740992.0 - 0.5) * (float)(1 + i / 32);
    }
    for (int b = 30; b < 39; b++) {     /* halves with scale 1 */
        x[32 * b] = 127.0f;
        for (int k = 1; k < 32; k++) x[32 * b + k] = (float)(k % 2 ? 1 : -1) * ((float)((k * 7 + b) % 120) + 0.5f);
    }
    x[32 * 38 + 5] = NAN;
    /* a NaN in each 8-lane quarter of a block, beside its largest value in the same lane of another quarter */
    for (int k = 0; k < 4; k++) { x[32 * (12 + k) + 8 * k + 3] = NAN; x[32 * (12 + k) + 8 * ((k + 1) % 4) + 3] = 40.0f; }
    for (int k = 0; k < 32; k++) x[32 * 39 + k] = 0.0f;
    for (int span = 32; span <= 256; span *= 8) {     /* one dx per 32, and per 256 (ggml's Q8_K) */
        const k2c_q8x *q = k2c_q8x_quantize_span(x, N, span, buf);
        int bad = 0, badsum = 0;
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            int s0 = 32 * b / span * span;
            for (int k = s0; k < s0 + span; k++) if (fabsf(x[k]) > amax) amax = fabsf(x[k]);
            float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
            int sum[2] = {0, 0};
            for (int k = 0; k < 32; k++) {
                float p = x[32 * b + k] * id;
                long v = p != p ? -127 : lrintf(p);
                v = v > 127 ? 127 : v < -127 ? -127 : v;
                bad += q->q[32 * b + k] != (int8_t)v;
                sum[k / 16] += (int)v;
            }
            for (int g = 0; g < 2; g++) badsum += q->d16[2 * b + g] != d || q->s16[2 * b + g] != d * (float)sum[g];
        }
        EXPECT(q->span == span, "k2c_q8x_quantize_span: span %d, asked %d", q->span, span);
        EXPECT(bad == 0 && badsum == 0, "k2c_q8x_quantize (span %d): %d codes and %d sums differ from lrintf's", span, bad, badsum);
    }
    EXPECT(k2c_q8x_quantize_span(x, N - 32, 256, buf)->span == 32, "a length not a multiple of 256 keeps span 32");
    const k2c_q8x *q = k2c_q8x_quantize(x, N, buf);
    EXPECT(q->q[32 * 30 + 1] == (int8_t)lrintf(x[32 * 30 + 1]), "a half rounds to even");
    free(x);
    free(buf);
}

/* The first rows of a tensor of each type in each golden file, as the independent decoder reads them. */
static void dequant_golden_tensors(void) {
    int checked = 0;
    for (int c = 0; c < NCASES; c++) {
        char path[256];
        snprintf(path, sizeof path, GDIR "/%s/model.gguf", CASES[c]);
        k2c_gguf g;
        if (k2c_gguf_open(&g, path, K2C_LOAD_MMAP) != 0) { EXPECT(0, "%s", k2c_errmsg()); continue; }
        for (int i = 0; i < ref.ntensors; i++) {
            const k2c_tensor *t = &ref.tensors[i];
            size_t cl = strlen(CASES[c]);
            if (strncmp(t->name, CASES[c], cl) || t->name[cl] != '/') continue;
            const k2c_gguf_tensor *gt = k2c_gguf_find(&g, t->name + cl + 1);
            k2c_wfmt f;
            if (!gt || k2c_wfmt_from_ggml(gt->type, &f) != 0) { EXPECT(0, "%s: not found or no format", t->name); continue; }
            int cols = (int)gt->ne[0];
            k2c_linear l = {.fmt = f, .rows = 2, .cols = cols, .w = gt->data};
            float *row = malloc((size_t)cols * sizeof *row);
            double worst = 0;
            for (int r = 0; r < 2; r++) {
                k2c_linear_dequant_rows(&l, r, 1, row);
                for (int j = 0; j < cols; j++) {
                    double e = ((const double *)t->data)[(size_t)r * cols + j];
                    worst = check_worse(worst, fabs(row[j] - e) / (fabs(e) + 1e-30));
                }
            }
            EXPECT(worst < 2e-7, "%s (%s) rel err %g", t->name, k2c_ggml_type_name(gt->type), worst);
            checked++;
            free(row);
        }
        k2c_gguf_close(&g);
    }
    EXPECT(checked >= 15, "%d golden tensors checked", checked);
}

/* ------------------------------------------------------------------ the tokenizer in GGUF metadata */
/* A GGUF holding only tokenizer metadata from an export; kv_extra: a corruption to apply (NULL: none). */
typedef enum { TC_NONE, TC_TYPES_SHORT, TC_MODEL_LLAMA, TC_BAD_SPELLING, TC_BAD_MERGE, TC_PRE_UNKNOWN } tok_corrupt;
static int write_tok_gguf(const tok_export *e, const char *pre, int with_merges, tok_corrupt c, const char *path) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, 7 + (with_merges ? 1 : 0));
    put_str(&b, "general.architecture"); put_u32(&b, K2C_GGUF_STRING); put_str(&b, "deepseek2");
    put_str(&b, "tokenizer.ggml.model"); put_u32(&b, K2C_GGUF_STRING); put_str(&b, c == TC_MODEL_LLAMA ? "llama" : "gpt2");
    put_str(&b, "tokenizer.ggml.pre"); put_u32(&b, K2C_GGUF_STRING); put_str(&b, c == TC_PRE_UNKNOWN ? "qwen9" : pre);
    put_str(&b, "tokenizer.ggml.tokens"); put_u32(&b, K2C_GGUF_ARRAY); put_u32(&b, K2C_GGUF_STRING); put_u64(&b, (uint64_t)e->n_tokens);
    for (int i = 0; i < e->n_tokens; i++) put_str(&b, c == TC_BAD_SPELLING && i == 300 ? "\xe4\xb8\xad" : e->tokens[i]);
    int nt = c == TC_TYPES_SHORT ? e->n_tokens - 1 : e->n_tokens;
    put_str(&b, "tokenizer.ggml.token_type"); put_u32(&b, K2C_GGUF_ARRAY); put_u32(&b, K2C_GGUF_I32); put_u64(&b, (uint64_t)nt);
    for (int i = 0; i < nt; i++) put_u32(&b, (uint32_t)e->types[i]);
    if (with_merges) {
        put_str(&b, "tokenizer.ggml.merges"); put_u32(&b, K2C_GGUF_ARRAY); put_u32(&b, K2C_GGUF_STRING); put_u64(&b, (uint64_t)e->n_merges);
        for (int i = 0; i < e->n_merges; i++) put_str(&b, c == TC_BAD_MERGE && i == 5 ? "nosuchtoken x" : e->merges[i]);
    }
    put_str(&b, "tokenizer.ggml.bos_token_id"); put_u32(&b, K2C_GGUF_U32); put_u32(&b, 3);
    put_str(&b, "tokenizer.ggml.eos_token_id"); put_u32(&b, K2C_GGUF_U32); put_u32(&b, 4);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b.p, 1, b.n, f) == b.n;
    if (f) fclose(f);
    free(b.p);
    return ok ? 0 : -1;
}

/* The same ids for every line of the corpus and for the whole of it with special tokens in the text. */
static int same_encoding(const k2c_tokenizer *a, const k2c_tokenizer *b, const char *what) {
    size_t len;
    char *text = k2c_read_file("tests/data/tokenizer_corpus.txt", &len);
    if (!text) { EXPECT(0, "%s", k2c_errmsg()); return 0; }
    const char *extra = "<|im_user|>user<|im_middle|>What's 37 times 41?<|im_end|>";
    size_t el = strlen(extra);
    char *all = malloc(len + el + 1);
    memcpy(all, text, len);
    memcpy(all + len, extra, el + 1);
    int same = 1, lines = 0;
    for (int pass = 0; pass < 2 && same; pass++) {
        const char *s = pass ? all : text, *end = pass ? all + len + el : text + len;
        while (s < end && same) {
            const char *nl = pass ? end : memchr(s, '\n', (size_t)(end - s));
            if (!nl) nl = end;
            int *ia = NULL, *ib = NULL, na = 0, nb = 0;
            int ra = k2c_tokenizer_encode(a, s, (size_t)(nl - s), pass, &ia, &na), rb = k2c_tokenizer_encode(b, s, (size_t)(nl - s), pass, &ib, &nb);
            if (ra != 0 || rb != 0 || na != nb || (na && memcmp(ia, ib, (size_t)na * sizeof *ia))) {
                EXPECT(0, "%s: encodings differ (%d vs %d ids) on '%.60s'", what, na, nb, s);
                same = 0;
            }
            size_t dl = 0;
            char *d = same && nb ? k2c_tokenizer_decode(b, ib, nb, &dl) : NULL;
            if (d && (dl != (size_t)(nl - s) || memcmp(d, s, dl))) { EXPECT(0, "%s: decode does not give the text back", what); same = 0; }
            free(d); free(ia); free(ib);
            lines++;
            s = nl + 1;
        }
    }
    free(text); free(all);
    return same && lines > 100;
}

static void tokenizer_from_gguf(void) {
    k2c_tokenizer *kimi = NULL, *g = NULL, *hf = NULL, *g2 = NULL;
    if (k2c_tokenizer_load(&kimi, "models/k2-mini") != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    tok_export e;
    if (tok_export_bpe(kimi, &e) != 0) { EXPECT(0, "%s", k2c_errmsg()); k2c_tokenizer_free(kimi); return; }
    EXPECT(!strcmp(e.pre, "kimi-k2") && e.n_tokens == kimi->vocab.n_ids && e.n_merges > e.n_tokens / 2, "export: pre %s, %d tokens, %d merges",
           e.pre, e.n_tokens, e.n_merges);
    /* Kimi's tiktoken vocabulary as llama.cpp stores it: encodes exactly as the tiktoken.model it came from */
    const char *p1 = "build/tests/tok_kimi.gguf";
    EXPECT(write_tok_gguf(&e, "kimi-k2", 1, TC_NONE, p1) == 0, "write %s", p1);
    if (k2c_tokenizer_load(&g, p1) != 0) EXPECT(0, "%s", k2c_errmsg());
    else {
        EXPECT(same_encoding(kimi, g, "kimi-k2 GGUF vs tiktoken.model"), "kimi-k2");
        EXPECT(g->bos_id == 3 && g->eos_id == 4 && g->kimi_template, "bos %d eos %d kimi %d", g->bos_id, g->eos_id, g->kimi_template);
        EXPECT(k2c_tokenizer_token_id(g, "<|im_end|>") == k2c_tokenizer_token_id(kimi, "<|im_end|>"), "specials keep their ids");
    }
    /* the merge-list path: the same arrays as a tokenizer.json (GPT-2 pre-tokenizer) and as a GGUF */
    const char *pj = "build/tests/tok_gpt2/tokenizer.json", *p2 = "build/tests/tok_gpt2.gguf";
    mkdir("build/tests/tok_gpt2", 0755);
    json_t *root = json_object(), *model = json_object(), *vocab = json_object(), *merges = json_array(), *added = json_array();
    for (int i = 0; i < e.n_tokens; i++) {
        if (e.types[i] == 1) json_object_set_new(vocab, e.tokens[i], json_integer(i));
        else if (e.types[i] == 3) {
            json_t *a = json_object();
            json_object_set_new(a, "id", json_integer(i));
            json_object_set_new(a, "content", json_string(e.tokens[i]));
            json_array_append_new(added, a);
        }
    }
    for (int i = 0; i < e.n_merges; i++) json_array_append_new(merges, json_string(e.merges[i]));
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", merges);
    json_object_set_new(root, "model", model);
    json_object_set_new(root, "added_tokens", added);
    json_t *pre = json_object();
    json_object_set_new(pre, "type", json_string("ByteLevel"));
    json_object_set_new(root, "pre_tokenizer", pre);
    EXPECT(json_dump_file(root, pj, 0) == 0, "write %s", pj);
    json_decref(root);
    EXPECT(write_tok_gguf(&e, "gpt2", 1, TC_NONE, p2) == 0, "write %s", p2);
    if (k2c_tokenizer_load(&hf, pj) != 0 || k2c_tokenizer_load(&g2, p2) != 0) EXPECT(0, "%s", k2c_errmsg());
    else EXPECT(same_encoding(hf, g2, "gpt2 GGUF vs tokenizer.json"), "gpt2");
    /* hostile metadata: each a clear error naming the field */
    static const struct { tok_corrupt c; const char *pre; int merges; const char *want; } bad[] = {
        {TC_TYPES_SHORT, "kimi-k2", 1, "tokenizer.ggml.token_type"}, {TC_MODEL_LLAMA, "kimi-k2", 1, "'llama' is not supported"},
        {TC_BAD_SPELLING, "kimi-k2", 1, "tokenizer.ggml.tokens[300]"}, {TC_BAD_MERGE, "gpt2", 1, "tokenizer.ggml.merges[5]"},
        {TC_NONE, "gpt2", 0, "tokenizer.ggml.merges: missing"}, {TC_PRE_UNKNOWN, "kimi-k2", 1, "'qwen9' is not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *pb = "build/tests/tok_bad.gguf";
        k2c_tokenizer *x = NULL;
        write_tok_gguf(&e, bad[i].pre, bad[i].merges, bad[i].c, pb);
        int rc = k2c_tokenizer_load(&x, pb);
        EXPECT(rc != 0 && strstr(k2c_errmsg(), bad[i].want) && strstr(k2c_errmsg(), pb), "corruption %zu: rc %d, '%s'", i, rc, rc ? k2c_errmsg() : "");
        if (!rc) k2c_tokenizer_free(x);
    }
    tok_export_free(&e);
    k2c_tokenizer_free(kimi); k2c_tokenizer_free(g); k2c_tokenizer_free(hf); k2c_tokenizer_free(g2);
}

/* ------------------------------------------------------------------ metadata vs config.json */
static void config_matches_json(void) {
    for (int c = 0; c < NCASES; c++) {
        char path[256];
        snprintf(path, sizeof path, GDIR "/%s/model.gguf", CASES[c]);
        k2c_gguf g;
        k2c_config a, b;
        if (k2c_gguf_open(&g, path, K2C_LOAD_MMAP) != 0) { EXPECT(0, "%s", k2c_errmsg()); continue; }
        EXPECT(k2c_gguf_config(&g, &a) == 0, "%s", k2c_errmsg());
        snprintf(path, sizeof path, GDIR "/%s/config.json", CASES[c]);
        EXPECT(k2c_config_load(&b, path) == 0, "%s", k2c_errmsg());
        memcpy(a.model_type, b.model_type, sizeof a.model_type);     /* the GGUF does not say kimi_k2 */
        /* floats stored as f32 in the GGUF: compare those at f32 precision, then the rest exactly */
        EXPECT(fabs(a.rms_norm_eps - b.rms_norm_eps) < 1e-12 && fabsf(a.routed_scaling_factor - b.routed_scaling_factor) < 1e-6f,
               "%s: eps %g/%g scale %g/%g", CASES[c], a.rms_norm_eps, b.rms_norm_eps, a.routed_scaling_factor, b.routed_scaling_factor);
        EXPECT(fabs(a.mscale - b.mscale) < 1e-6 && fabs(a.mscale_all_dim - b.mscale_all_dim) < 1e-6, "%s: mscale %g/%g %g/%g",
               CASES[c], a.mscale, b.mscale, a.mscale_all_dim, b.mscale_all_dim);
        a.rms_norm_eps = b.rms_norm_eps; a.routed_scaling_factor = b.routed_scaling_factor;
        a.mscale = b.mscale; a.mscale_all_dim = b.mscale_all_dim;
        EXPECT(memcmp(&a, &b, sizeof a) == 0, "%s: GGUF config differs from config.json", CASES[c]);
        k2c_gguf_close(&g);
    }
    /* not deepseek2: refused by name */
    buf im = small_image();
    memcpy(im.p + at.key0_len + 8 + strlen("general.architecture") + 4 + 8, "llama2xxx", 9);
    k2c_gguf g;
    k2c_config c;
    EXPECT(k2c_gguf_parse(&g, "arch.gguf", im.p, im.n) == 0, "%s", k2c_errmsg());
    EXPECT(k2c_gguf_config(&g, &c) != 0 && strstr(k2c_errmsg(), "'llama2xxx' is not supported"), "%s", k2c_errmsg());
    k2c_gguf_close(&g);
    free(im.p);
}

/* ------------------------------------------------------------------ golden logits */

static float rel_err(const float *a, const k2c_tensor *r) {
    float m = 0, e = 0;
    for (int64_t i = 0; i < r->numel; i++) m = (float)check_worse(m, fabsf(((const float *)r->data)[i]));
    for (int64_t i = 0; i < r->numel; i++) e = (float)check_worse(e, fabsf(a[i] - ((const float *)r->data)[i]));
    return e / (m > 0 ? m : 1);
}

/* Prefill and token-by-token decode of the reference ids against expected logits, within tol x max|logit|. */
static void check_logits_tol(k2c_model *m, const char *expected, const char *what, float tol) {
    k2c_safetensors ex;
    if (k2c_st_open(&ex, expected) != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    const k2c_tensor *ids_t = k2c_st_find(&ex, "input_ids"), *lg = k2c_st_find(&ex, "logits");
    if (!ids_t || !lg) { EXPECT(0, "%s lacks input_ids/logits", expected); k2c_st_close(&ex); return; }
    int T = (int)ids_t->numel, V = m->cfg.vocab_size;
    int *ids = malloc((size_t)T * sizeof *ids);
    for (int t = 0; t < T; t++) ids[t] = (int)k2c_elem_to_f32(ids_t->dtype, ids_t->data, (size_t)t);
    float *a = malloc((size_t)T * V * sizeof *a), *d = malloc((size_t)T * V * sizeof *d);
    k2c_state s;
    EXPECT(k2c_state_init(&s, m, T) == 0, "%s", k2c_errmsg());
    EXPECT(k2c_prefill(&s, ids, T, a, NULL, NULL) == 0, "%s", k2c_errmsg());
    k2c_state_reset(&s);
    for (int t = 0; t < T; t++) EXPECT(k2c_decode(&s, ids[t], d + (size_t)t * V, NULL) == 0, "%s", k2c_errmsg());
    float ep = rel_err(a, lg), ed = rel_err(d, lg);
    printf("  %s [%s]: prefill %.2e, decode %.2e x max|logit|\n", what, m->cx.k->name, ep, ed);
    EXPECT(ep < tol, "%s [%s] prefill logits rel err %g", what, m->cx.k->name, ep);
    EXPECT(ed < tol, "%s [%s] decode logits rel err %g", what, m->cx.k->name, ed);
    k2c_state_free(&s);
    free(ids); free(a); free(d);
    k2c_st_close(&ex);
}
static void check_logits(k2c_model *m, const char *expected, const char *what) { check_logits_tol(m, expected, what, 1e-4f); }

static k2c_model_opts g_opts;
static int cur;

static void golden_case(void) {
    char dir[256], file[300], exp[300];
    snprintf(dir, sizeof dir, GDIR "/%s", CASES[cur]);
    snprintf(file, sizeof file, "%s/model.gguf", dir);
    k2c_model m;
    /* the folder, as --model gives it: attn_kv_b */
    if (k2c_model_load_opts(&m, dir, &g_opts) != 0) { EXPECT(0, "%s: %s", dir, k2c_errmsg()); return; }
    EXPECT(m.gguf && m.layers[1].exp_up[1].w != m.layers[1].exp_up[0].w, "gguf experts bound");
    snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
    check_logits(&m, exp, CASES[cur]);
    k2c_model_free(&m);
    /* kv_b from attn_k_b + attn_v_b */
    if (k2c_model_load_gguf(&m, file, &g_opts, 1) != 0) { EXPECT(0, "%s: %s", file, k2c_errmsg()); return; }
    snprintf(exp, sizeof exp, "%s/expected.kb_vb.safetensors", dir);
    char what[64];
    snprintf(what, sizeof what, "%s k_b+v_b", CASES[cur]);
    check_logits(&m, exp, what);
    k2c_model_free(&m);
}

/* Normal mode: the absorbed attention reads kv_b's key half from kv_b_qt (BF16, transposed) and its value half
 * from the stored rows with int8 inputs. One layer's decode attention on every golden case, against the same call
 * with kv_b_qt unset (kv_b's rows dequantized to fp32, as exact mode reads them): within the BF16 and int8 rounding
 * (measured 0.9-1.2e-2 of the output's scale, mostly the value half's int8 inputs), where a wrong row or column of
 * the transpose is of the output's own size.
 * (Whole logits cannot be compared: the tiny golden models move by up to half their largest logit between exact
 * and normal mode, int8 activations everywhere.) */
static void absorbed_normal_mode(void) {
    for (int c = 0; c < NCASES; c++) {
        char dir[256], file[300];
        snprintf(dir, sizeof dir, GDIR "/%s", CASES[c]);
        for (int split = 0; split < 2; split++) {
        k2c_model m;
        k2c_model_opts o = {0};
        snprintf(file, sizeof file, "%s/model.gguf", dir);
        if ((split ? k2c_model_load_gguf(&m, file, &o, 1) : k2c_model_load_opts(&m, dir, &o)) != 0) {
            EXPECT(0, "%s: %s", dir, k2c_errmsg());
            continue;
        }
        EXPECT(m.layers[0].kv_b_qt.w && !m.layers[0].kv_b_abs.w && !m.layers[0].kv_b_v.w == !split,
               "%s: normal mode builds kv_b_qt only", CASES[c]);
        int D = m.cfg.hidden_size, H = m.cfg.num_attention_heads, T = 40, ids[40];
        for (int t = 0; t < T; t++) ids[t] = (t * 7 + 3) % m.cfg.vocab_size;
        k2c_state s, *sp = &s;
        float *xn = malloc((size_t)D * sizeof *xn), *a = malloc((size_t)D * sizeof *a), *b = malloc((size_t)D * sizeof *b);
        float *am = malloc((size_t)H * sizeof *am);
        EXPECT(k2c_state_init(&s, &m, T + 1) == 0 && k2c_prefill(&s, ids, T, NULL, NULL, NULL) == 0 &&
               k2c_state_reserve(&s, T + 1) == 0, "%s", k2c_errmsg());
        for (int i = 0; i < D; i++) xn[i] = sinf(0.37f * (float)i + 1.0f);
        for (int L = 0; L < m.cfg.num_hidden_layers; L++) {
            EXPECT(k2c_mla_decode_batch(&sp, 1, L, xn, a, am) == 0, "%s", k2c_errmsg());
            k2c_linear qt = m.layers[L].kv_b_qt;
            m.layers[L].kv_b_qt.w = NULL;
            EXPECT(k2c_mla_decode_batch(&sp, 1, L, xn, b, am) == 0, "%s", k2c_errmsg());
            m.layers[L].kv_b_qt = qt;
            float mx = 0, e = 0;
            for (int i = 0; i < D; i++) { mx = fmaxf(mx, fabsf(b[i])); e = fmaxf(e, fabsf(a[i] - b[i])); }
            e /= mx > 0 ? mx : 1;
            if (L == 0) printf("  %s%s layer 0 absorbed attention, kv_b_qt vs fp32 rows: %.2e x max|out|\n", CASES[c],
                               split ? " (attn_k_b + attn_v_b)" : "", e);
            EXPECT(mx > 0 && e < 3e-2f, "%s layer %d: kv_b_qt path off by %g x max|out|", CASES[c], L, e);
        }
        k2c_state_free(&s);
        free(xn); free(a); free(b); free(am);
        k2c_model_free(&m);
        }
    }
}

/* ------------------------------------------------------------------ split files */
static void put_kv(buf *b, const k2c_gguf_kv *kv) {
    put_str(b, kv->key);
    put_u32(b, (uint32_t)kv->type);
    static const int VS[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (kv->type == K2C_GGUF_STRING) { put_u64(b, kv->len); put(b, kv->str, kv->len); return; }
    if (kv->type == K2C_GGUF_ARRAY) {
        put_u32(b, (uint32_t)kv->atype);
        put_u64(b, kv->n);
        if (kv->atype == K2C_GGUF_STRING)
            for (uint64_t i = 0; i < kv->n; i++) { put_u64(b, kv->sl[i]); put(b, kv->sv[i], kv->sl[i]); }
        else put(b, kv->arr, kv->n * (uint64_t)VS[kv->atype]);
        return;
    }
    if (kv->type == K2C_GGUF_F32) { float f = (float)kv->v.f; put(b, &f, 4); return; }
    if (kv->type == K2C_GGUF_F64) { put(b, &kv->v.f, 8); return; }
    uint64_t u = kv->type == K2C_GGUF_I8 || kv->type == K2C_GGUF_I16 || kv->type == K2C_GGUF_I32 || kv->type == K2C_GGUF_I64
                     ? (uint64_t)kv->v.i : kv->v.u;
    for (int i = 0; i < VS[kv->type]; i++) { uint8_t x = (uint8_t)(u >> 8 * i); put(b, &x, 1); }
}

/* tensors [t0, t1) of g with the metadata of g (first) or split.* only, as one file of a split set */
static int write_split(const k2c_gguf *g, int part, int nparts, int t0, int t1, const char *path) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, (uint64_t)(t1 - t0));
    put_u64(&b, (uint64_t)((part == 0 ? g->nkv : 0) + 3));
    if (part == 0) for (int i = 0; i < g->nkv; i++) put_kv(&b, &g->kv[i]);
    put_str(&b, "split.no"); put_u32(&b, K2C_GGUF_U16); uint16_t no = (uint16_t)part; put(&b, &no, 2);
    put_str(&b, "split.count"); put_u32(&b, K2C_GGUF_U16); uint16_t cnt = (uint16_t)nparts; put(&b, &cnt, 2);
    put_str(&b, "split.tensors.count"); put_u32(&b, K2C_GGUF_I32); put_u32(&b, (uint32_t)g->ntensors);
    uint64_t off = 0;
    for (int i = t0; i < t1; i++) {
        const k2c_gguf_tensor *t = &g->tensors[i];
        put_str(&b, t->name);
        put_u32(&b, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) put_u64(&b, (uint64_t)t->ne[d]);
        put_u32(&b, (uint32_t)t->type);
        put_u64(&b, off);
        off = (off + t->nbytes + 31) / 32 * 32;
    }
    pad_to(&b, 32);
    for (int i = t0; i < t1; i++) { put(&b, g->tensors[i].data, g->tensors[i].nbytes); pad_to(&b, 32); }
    int rc = k2c_write_file_atomic(path, b.p, b.n);
    free(b.p);
    return rc;
}

static void split_files(void) {
    k2c_gguf g;
    if (k2c_gguf_open(&g, GDIR "/gguf-Q8_0/model.gguf", K2C_LOAD_MMAP) != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    const char *dir = "build/tests/gguf_split", *p1 = "build/tests/gguf_split/m-00001-of-00002.gguf",
               *p2 = "build/tests/gguf_split/m-00002-of-00002.gguf";
    mkdir(dir, 0755);
    int half = g.ntensors / 2;
    EXPECT(write_split(&g, 0, 2, 0, half, p1) == 0 && write_split(&g, 1, 2, half, g.ntensors, p2) == 0, "%s", k2c_errmsg());
    k2c_gguf_close(&g);
    k2c_model m;
    k2c_model_opts ex = {.exact = 1};
    if (k2c_model_load_opts(&m, dir, &ex) != 0) { EXPECT(0, "%s: %s", dir, k2c_errmsg()); return; }
    EXPECT(m.gg.nfiles == 2, "%d files", m.gg.nfiles);
    check_logits(&m, GDIR "/gguf-Q8_0/expected.safetensors", "gguf-Q8_0 in 2 files");
    k2c_model_free(&m);
    remove(p2);
    EXPECT(k2c_model_load_opts(&m, p1, NULL) != 0 && strstr(k2c_errmsg(), "m-00002-of-00002.gguf"), "%s", k2c_errmsg());
    remove(p1);
}


int main(void) {
        TABLES[ntables++] = &k2c_kernels_scalar;
#if defined(__x86_64__)
    if (!level_missing("avx2")) TABLES[ntables++] = &k2c_kernels_avx2;
    if (!level_missing("avx512")) TABLES[ntables++] = &k2c_kernels_avx512;
#elif defined(__aarch64__)
    if (!level_missing("neon")) TABLES[ntables++] = &k2c_kernels_neon;
#endif
    run_test("gguf_reader_valid", reader_accepts_valid);
    run_test("gguf_reader_corrupt", reader_rejects_corrupt);
    if (k2c_st_open(&ref, GDIR "/dequant_ref.safetensors") != 0) {
        printf("FAIL gguf_dequant: %s\n", k2c_errmsg());
        return 1;
    }
    run_test("gguf_dequant_every_type", dequant_random_blocks);
    run_test("gguf_dequant_ggml_reference", dequant_ggml_blocks);
    run_test("gguf_dequant_ggml_q6_0", dequant_ggml_q6_0);
    run_test("gguf_dequant_golden_tensors", dequant_golden_tensors);
    run_test("gguf_fast_path_driver", fast_path_driver);
    run_test("gguf_q8x_codes", q8x_codes);
    run_test("gguf_matvec_mixed_batch", matvec_mixed_batch);
    run_test("gguf_dot_q8_every_path", dot_q8_every_path);
    k2c_st_close(&ref);
    run_test("gguf_config_from_metadata", config_matches_json);
    run_test("gguf_tokenizer", tokenizer_from_gguf);
    char name[128];
    for (int lv = 0; lv < SIMD_NLEVELS; lv++) {
        const char *why = level_missing(SIMD_LEVELS[lv]);
        g_opts = (k2c_model_opts){.simd = SIMD_LEVELS[lv], .exact = 1};
        for (cur = 0; cur < NCASES; cur++) {
            snprintf(name, sizeof name, "gguf_golden_%s_%s", CASES[cur] + 5, SIMD_LEVELS[lv]);
            if (why) skip_test(name, why); else run_test(name, golden_case);
        }
    }
    run_test("gguf_absorbed_normal_mode", absorbed_normal_mode);
    run_test("gguf_split_files", split_files);
    return check_exit();
}
