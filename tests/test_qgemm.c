/* The int8 prompt GEMM on the GGUF block formats (quant_gemm.h, qgemm.c): k2c_matmul on every kernel table, with
 * and without the ISA's optional instructions (VNNI, dotprod), against the float64 products of the dequantized
 * weights with the activations quantized as decode quantizes them (k2c_q8x; Q2_K with one dx per 256 columns,
 * k2c_q8p_span): that is what the kernels compute
 * exactly, up to float rounding. Shapes hit the edges: T of 3, 31, 33 and 100 (partial 16- and 32-token
 * blocks), rows not a multiple of the 4-row quad or the 64-row tile, 32-element formats on rows that are not
 * whole 256s. Exact mode keeps fp32 activations; the int8 path really quantizes (its error against the fp32
 * products is of the quantization's size, not zero). */
#include "model/model.h"
#include "check.h"
#include "simd_levels.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

static const k2c_wfmt FMTS[] = {K2C_FMT_Q8_0, K2C_FMT_Q4_0, K2C_FMT_Q4_1, K2C_FMT_Q5_0, K2C_FMT_Q5_1, K2C_FMT_IQ4_NL,
                                K2C_FMT_Q2_K, K2C_FMT_Q3_K, K2C_FMT_Q4_K, K2C_FMT_Q5_K, K2C_FMT_Q6_K, K2C_FMT_IQ4_XS,
                                K2C_FMT_IQ2_XXS, K2C_FMT_IQ2_XS, K2C_FMT_IQ2_S, K2C_FMT_IQ3_XXS, K2C_FMT_IQ3_S,
                                K2C_FMT_IQ1_S, K2C_FMT_IQ1_M};
#define NFMTS (int)(sizeof FMTS / sizeof FMTS[0])
static const int TS[] = {3, 31, 33, 100};
#define TMAX 100
#define ROWS 130

static const k2c_kernels *TABLES[4];
static int ntables;

/* Random blocks with sane half-float scales (2^-8, mins 2^-9) where each format keeps them */
static uint8_t *random_weights(k2c_wfmt f, int rows, int cols, uint64_t seed) {
    size_t rb = k2c_wfmt_row_bytes(f, cols), n = rb * (size_t)rows;
    uint8_t *w = malloc(n);
    for (size_t i = 0; i < n; i++) { seed = seed * 6364136223846793005ull + 1442695040888963407ull; w[i] = (uint8_t)(seed >> 56); }
    size_t bb = rb / (size_t)(cols / k2c_wfmt_block_elems(f));
    size_t doff = f == K2C_FMT_Q2_K ? 80 : f == K2C_FMT_Q3_K ? 108 : f == K2C_FMT_Q6_K ? 208 : 0;
    int two = f == K2C_FMT_Q2_K || f == K2C_FMT_Q4_K || f == K2C_FMT_Q5_K || f == K2C_FMT_Q5_1 || f == K2C_FMT_Q4_1;
    for (size_t b = 0; b < n / bb; b++) {
        uint8_t *p = w + b * bb;
        if (f == K2C_FMT_IQ1_M) {       /* d = 2^-8 in the top nibbles of the four scale words */
            p[48 + 1] &= 0x0f; p[48 + 3] &= 0x0f;
            p[48 + 5] = (uint8_t)((p[48 + 5] & 0x0f) | 0xc0); p[48 + 7] = (uint8_t)((p[48 + 7] & 0x0f) | 0x10);
            continue;
        }
        p += doff;
        p[0] = 0x00; p[1] = 0x1c;
        if (two) { p[2] = 0x00; p[3] = 0x18; }
    }
    return w;
}

/* x dequantized as the int8 GEMM's activations with one dx per `span` columns (k2c_q8p_span: 256 for Q2_K) */
static void ref_quant_span(const float *x, int C, int span, float *xd) {
    for (int j0 = 0; j0 < C; j0 += span) {
        float amax = 0;
        for (int j = j0; j < j0 + span; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float dx = amax / 127.0f, id = dx > 0 ? 1.0f / dx : 0.0f;
        for (int j = j0; j < j0 + span; j++) {
            long q = lrintf(x[j] * id);
            xd[j] = dx * (float)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
}

typedef struct { double err, qerr; } errs;

/* worst |Y - ref| / sum |w x| over the T x R outputs: ref = the dequantized-activation products (err) and the
 * fp32-activation products (qerr) */
static errs compare(const float *Y, const double *refq, const double *absq, const double *ref32, const double *abs32,
                    int T, int R) {
    errs e = {0, 0};
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            size_t i = (size_t)t * R + r;
            e.err = check_worse(e.err, fabs(Y[i] - refq[i]) / (absq[i] + 1e-30));
            e.qerr = check_worse(e.qerr, fabs(Y[i] - ref32[i]) / (abs32[i] + 1e-30));
        }
    return e;
}

static void int8_prompt_gemm(void) {
    int R = ROWS;
    float *X = malloc((size_t)TMAX * 1312 * sizeof *X), *Y = malloc((size_t)TMAX * R * sizeof *Y);
    double *refq = malloc((size_t)TMAX * R * sizeof *refq), *absq = malloc((size_t)TMAX * R * sizeof *absq);
    double *ref32 = malloc((size_t)TMAX * R * sizeof *ref32), *abs32 = malloc((size_t)TMAX * R * sizeof *abs32);
    float *Wd = malloc((size_t)R * 1312 * sizeof *Wd), *xd = malloc(1312 * sizeof *xd);
    for (int fi = 0; fi < NFMTS; fi++) {
        k2c_wfmt f = FMTS[fi];
        int C = k2c_wfmt_block_elems(f) == 256 ? 1280 : 1312;
        uint8_t *w = random_weights(f, R, C, 1000 + (uint64_t)fi);
        k2c_linear l = {.fmt = f, .rows = R, .cols = C, .w = w};
        EXPECT(k2c_q8p_group(&l) == 16 || k2c_q8p_group(&l) == 32, "%s: no int8 prompt path", k2c_wfmt_name(f));
        k2c_linear_dequant_rows(&l, 0, R, Wd);
        for (int j = 0; j < TMAX * C; j++) X[j] = (float)(sin(0.37 * j + 0.3 * fi) * (j % 41 == 0 ? 5 : 1));
        void *qb = aligned_alloc(64, k2c_ws_bytes(k2c_q8x_bytes(C)));
        for (int t = 0; t < TMAX; t++) {
            const k2c_q8x *xq = k2c_q8x_quantize(X + (size_t)t * C, C, qb);
            for (int j = 0; j < C; j++) xd[j] = xq->d16[j / 16] * (float)xq->q[j];
            if (k2c_q8p_span(&l) != 32) ref_quant_span(X + (size_t)t * C, C, k2c_q8p_span(&l), xd);
            for (int r = 0; r < R; r++) {
                double s = 0, a = 0, s32 = 0, a32 = 0;
                for (int j = 0; j < C; j++) {
                    double wv = Wd[(size_t)r * C + j], xv = X[(size_t)t * C + j];
                    s += wv * xd[j]; a += fabs(wv * xd[j]);
                    s32 += wv * xv; a32 += fabs(wv * xv);
                }
                refq[(size_t)t * R + r] = s; absq[(size_t)t * R + r] = a;
                ref32[(size_t)t * R + r] = s32; abs32[(size_t)t * R + r] = a32;
            }
        }
        free(qb);
        for (int k = 0; k < ntables; k++)
            for (int ext = 1; ext >= 0; ext--) {
                k2c_kctx cx = {.k = TABLES[k], .nthreads = omp_get_max_threads() > 1 ? 2 : 1, .no_ext = !ext};
                l.cx = &cx;
                for (size_t ti = 0; ti < sizeof TS / sizeof TS[0]; ti++) {
                    int T = TS[ti];
                    /* the workspace the driver says it needs, exactly (the sanitizers see any overrun) */
                    size_t need = k2c_matmul_ws_bytes(&l, T);
                    k2c_ws ws = {aligned_alloc(64, k2c_ws_bytes(need)), need, 0};
                    memset(Y, 0, (size_t)T * R * sizeof *Y);
                    int rc = k2c_matmul_ws(&l, X, T, Y, &ws);
                    EXPECT(rc == 0, "%s [%s] T=%d: %s", k2c_wfmt_name(f), TABLES[k]->name, T, k2c_errmsg());
                    free(ws.base);
                    if (rc) continue;
                    /* the rows of the quantized products: Y on the layout of the first T tokens */
                    errs e = compare(Y, refq, absq, ref32, abs32, T, R);
                    EXPECT(e.err < 3e-6, "%s [%s%s] T=%d int8 GEMM vs dequantized x: rel err %g", k2c_wfmt_name(f),
                           TABLES[k]->name, ext ? "" : " no_ext", T, e.err);
                    EXPECT(e.qerr > 1e-7 && e.qerr < 3e-2, "%s [%s%s] T=%d int8 GEMM vs fp32 x: rel err %g (not quantized?)",
                           k2c_wfmt_name(f), TABLES[k]->name, ext ? "" : " no_ext", T, e.qerr);
                }
                if (!ext) continue;
                /* exact mode: fp32 activations (the dequantized tiles' GEMM) */
                cx.exact = 1;
                int T = 33;
                EXPECT(k2c_matmul(&l, X, T, Y) == 0, "%s", k2c_errmsg());
                errs e = compare(Y, refq, absq, ref32, abs32, T, R);
                EXPECT(e.qerr < 1e-5, "%s [%s] exact matmul vs fp32 x: rel err %g", k2c_wfmt_name(f), TABLES[k]->name, e.qerr);
            }
        free(w);
    }
    free(X); free(Y); free(refq); free(absq); free(ref32); free(abs32); free(Wd); free(xd);
}

/* Where a table's q8_prefer_tile sends a long prompt to the fp32 tile (AVX2 without VNNI: the signed formats from
 * 128 tokens on), the product is the exact one, and the K-quants stay on int8 */
static void prefer_tile(void) {
    int checked = 0;
    for (int k = 0; k < ntables; k++) {
        if (!TABLES[k]->q8_prefer_tile) continue;
        const k2c_kernels *t = TABLES[k];
        EXPECT(t->q8_prefer_tile(K2C_FMT_Q8_0, 128, 0) && !t->q8_prefer_tile(K2C_FMT_Q8_0, 127, 0) &&
               !t->q8_prefer_tile(K2C_FMT_Q4_K, 512, 0) && !t->q8_prefer_tile(K2C_FMT_Q6_K, 512, 0),
               "[%s] q8_prefer_tile: Q8_0 from 128 tokens, never the unsigned K-quants", t->name);
        enum { R = 24, C = 256, T = 130 };
        k2c_wfmt fs[2] = {K2C_FMT_Q8_0, K2C_FMT_Q4_K};
        for (int fi = 0; fi < 2; fi++) {
            uint8_t *w = random_weights(fs[fi], R, C, 77 + (uint64_t)fi);
            k2c_linear l = {.fmt = fs[fi], .rows = R, .cols = C, .w = w};
            float *X = malloc((size_t)T * C * sizeof *X), *Y = malloc((size_t)T * R * sizeof *Y), *Ye = malloc((size_t)T * R * sizeof *Ye);
            for (int j = 0; j < T * C; j++) X[j] = (float)sin(0.11 * j);
            k2c_kctx cx = {.k = t, .nthreads = 1, .no_ext = 1};
            l.cx = &cx;
            EXPECT(k2c_matmul(&l, X, T, Y) == 0, "%s", k2c_errmsg());
            cx.exact = 1;
            EXPECT(k2c_matmul(&l, X, T, Ye) == 0, "%s", k2c_errmsg());
            int same = memcmp(Y, Ye, (size_t)T * R * sizeof *Y) == 0;
            EXPECT(same == !!t->q8_prefer_tile(fs[fi], T, 0), "[%s] %s at %d tokens: %s", t->name, k2c_wfmt_name(fs[fi]), T,
                   same ? "exact, expected int8" : "int8, expected the exact tile");
            free(X); free(Y); free(Ye); free(w);
            checked++;
        }
    }
    if (!checked) printf("  (no table here prefers the tile)\n");
}

/* The packed activations: layout and values as k2c_q8x gives them */
static void q8p_packing(void) {
    int T = 19, C = 64;
    float X[19 * 64];
    for (int i = 0; i < T * C; i++) X[i] = (float)sin(0.1 * i) * (float)(1 + i % 7);
    for (int sg = 16; sg <= 32; sg += 16) {
        void *buf = aligned_alloc(64, k2c_ws_bytes(k2c_q8p_bytes(T, C, sg)));
        k2c_q8p p;
        k2c_q8p_init(&p, T, C, sg, 32, buf);
        EXPECT(p.nblk == 2, "%d blocks", p.nblk);
        for (int b = 0; b < p.nblk; b++) k2c_q8p_fill(X, &p, b);
        void *qb = aligned_alloc(64, k2c_ws_bytes(k2c_q8x_bytes(C)));
        int bad = 0;
        for (int t = 0; t < 32; t++) {
            const k2c_q8x *xq = t < T ? k2c_q8x_quantize(X + t * C, C, qb) : NULL;
            int b = t / 16, i = t % 16;
            for (int j = 0; j < C; j++) {
                int8_t q = p.q[(size_t)b * 16 * C + ((size_t)(j / 4) * 16 + i) * 4 + j % 4];
                bad += q != (xq ? xq->q[j] : 0);
            }
            for (int g = 0; g < C / sg; g++) {
                float d = p.d[((size_t)b * (C / sg) + g) * 16 + i], s = p.s[((size_t)b * (C / sg) + g) * 16 + i];
                float wd = xq ? xq->d16[g * sg / 16] : 0, ws = xq ? xq->s16[g * sg / 16] + (sg == 32 ? xq->s16[g * 2 + 1] : 0) : 0;
                bad += d != wd || fabsf(s - ws) > 1e-6f * wd * 127 * 32;
            }
        }
        EXPECT(bad == 0, "sg %d: %d packed values differ from k2c_q8x", sg, bad);
        free(qb); free(buf);
    }
    /* one dx per 256 columns (Q2_K's span): codes and scales as ref_quant_span gives them */
    {
        int T2 = 19, C2 = 512, sg = 16;
        float *X2 = malloc((size_t)T2 * C2 * sizeof *X2), xd[512];
        for (int i = 0; i < T2 * C2; i++) X2[i] = (float)sin(0.1 * i) * (float)(1 + i % 7) * (i % 300 == 0 ? 9 : 1);
        void *buf = aligned_alloc(64, k2c_ws_bytes(k2c_q8p_bytes(T2, C2, sg)));
        k2c_q8p p;
        k2c_q8p_init(&p, T2, C2, sg, 256, buf);
        EXPECT(p.span == 256, "span %d", p.span);
        for (int b = 0; b < p.nblk; b++) k2c_q8p_fill(X2, &p, b);
        int bad = 0;
        for (int t = 0; t < T2; t++) {
            ref_quant_span(X2 + (size_t)t * C2, C2, 256, xd);
            int b = t / 16, i = t % 16;
            for (int j = 0; j < C2; j++) {
                int8_t q = p.q[(size_t)b * 16 * C2 + ((size_t)(j / 4) * 16 + i) * 4 + j % 4];
                float d = p.d[((size_t)b * (C2 / sg) + j / sg) * 16 + i];
                bad += fabsf(d * (float)q - xd[j]) > 1e-6f * fabsf(xd[j]);
                bad += d != p.d[((size_t)b * (C2 / sg) + (j / 256) * (256 / sg)) * 16 + i];    /* one dx per 256 */
            }
        }
        EXPECT(bad == 0, "span 256: %d packed values differ from the reference", bad);
        free(buf); free(X2);
    }
    /* not a block format, or not whole 32s: no int8 path */
    k2c_linear l = {.fmt = K2C_FMT_BF16, .rows = 4, .cols = 64};
    EXPECT(k2c_q8p_group(&l) == 0, "BF16 on the int8 path");
    l.fmt = K2C_FMT_Q8_0; l.cols = 48;
    EXPECT(k2c_q8p_group(&l) == 0, "48 columns on the int8 path");
}

/* k2c_matmul2_ws (an expert's gate and up in one call) gives both products bit for bit as two k2c_matmul_ws calls:
 * rows not a multiple of the 64-row tile, partial token blocks, and a pair the fused path refuses (other formats:
 * it runs them in turn) */
static void matmul2_fused(void) {
    const k2c_wfmt fa[] = {K2C_FMT_Q4_K, K2C_FMT_Q2_K, K2C_FMT_Q8_0}, fb[] = {K2C_FMT_Q4_K, K2C_FMT_Q2_K, K2C_FMT_Q6_K};
    int C = 512, RA = 130, RB = 70, T = 33;
    float *X = malloc((size_t)T * C * sizeof *X);
    float *Ya = malloc((size_t)T * RA * sizeof *Ya), *Yb = malloc((size_t)T * RB * sizeof *Yb);
    float *Za = malloc((size_t)T * RA * sizeof *Za), *Zb = malloc((size_t)T * RB * sizeof *Zb);
    for (int j = 0; j < T * C; j++) X[j] = (float)sin(0.23 * j) * (j % 37 == 0 ? 4 : 1);
    k2c_kctx cx = {.k = TABLES[ntables - 1], .nthreads = omp_get_max_threads() > 1 ? 2 : 1};
    for (int i = 0; i < 3; i++) {
        uint8_t *wa = random_weights(fa[i], RA, C, 77 + (uint64_t)i), *wb = random_weights(fb[i], RB, C, 88 + (uint64_t)i);
        k2c_linear a = {.fmt = fa[i], .rows = RA, .cols = C, .w = wa, .cx = &cx};
        k2c_linear b = {.fmt = fb[i], .rows = RB, .cols = C, .w = wb, .cx = &cx};
        size_t na = k2c_matmul_ws_bytes(&a, T), nb = k2c_matmul_ws_bytes(&b, T), need = na > nb ? na : nb;
        k2c_ws ws = {aligned_alloc(64, k2c_ws_bytes(need)), need, 0};
        memset(Ya, 0xff, (size_t)T * RA * sizeof *Ya);
        memset(Yb, 0xff, (size_t)T * RB * sizeof *Yb);
        EXPECT(k2c_matmul2_ws(&a, &b, X, T, Ya, Yb, &ws) == 0, "%s", k2c_errmsg());
        EXPECT(ws.used == 0, "workspace not given back (%zu)", ws.used);
        EXPECT(k2c_matmul_ws(&a, X, T, Za, &ws) == 0 && k2c_matmul_ws(&b, X, T, Zb, &ws) == 0, "%s", k2c_errmsg());
        EXPECT(!memcmp(Ya, Za, (size_t)T * RA * sizeof *Ya) && !memcmp(Yb, Zb, (size_t)T * RB * sizeof *Yb),
               "%s + %s [%s]: fused products differ from two calls", k2c_wfmt_name(fa[i]), k2c_wfmt_name(fb[i]), cx.k->name);
        free(ws.base); free(wa); free(wb);
    }
    free(X); free(Ya); free(Yb); free(Za); free(Zb);
}

/* The GGUF golden models on the default (int8) path, every table: prefill logits (the int8 GEMM, workspaces as
 * the state sizes them) and decode logits (the int8 matvec) within the activations' quantization error of the
 * float64 reference, and of each other; the exact path stays at the reference. */
#define GDIR "tests/data/golden/gguf"
static const char *CASES[] = {"gguf-Q8_0", "gguf-Q4_K", "gguf-Q6_K", "gguf-Q2_K", "gguf-Q4_K_M"};
static const char *cur_level;

/* sqrt(sum (a - b)^2 / sum b^2) */
static double rms_rel(const float *a, const float *b, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) { e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); r += (double)b[i] * b[i]; }
    return sqrt(e / (r > 0 ? r : 1));
}

static void golden_int8(void) {
    for (int c = 0; c < 5; c++) {
        char dir[256], exp[300];
        snprintf(dir, sizeof dir, GDIR "/%s", CASES[c]);
        snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
        k2c_model_opts o = {.simd = cur_level, .load = K2C_LOAD_MMAP};
        k2c_model m;
        if (k2c_model_load_opts(&m, dir, &o) != 0) { EXPECT(0, "%s: %s", dir, k2c_errmsg()); continue; }
        k2c_safetensors ex;
        if (k2c_st_open(&ex, exp) != 0) { EXPECT(0, "%s", k2c_errmsg()); k2c_model_free(&m); continue; }
        const k2c_tensor *ids_t = k2c_st_find(&ex, "input_ids"), *lg = k2c_st_find(&ex, "logits");
        int T = (int)ids_t->numel, V = m.cfg.vocab_size;
        int *ids = malloc((size_t)T * sizeof *ids);
        for (int t = 0; t < T; t++) ids[t] = (int)k2c_elem_to_f32(ids_t->dtype, ids_t->data, (size_t)t);
        size_t n = (size_t)T * V;
        float *a = malloc(n * sizeof *a), *d = malloc(n * sizeof *d);
        k2c_state s;
        EXPECT(k2c_state_init(&s, &m, T) == 0, "%s", k2c_errmsg());
        EXPECT(k2c_prefill(&s, ids, T, a, NULL, NULL) == 0, "%s", k2c_errmsg());
        k2c_state_reset(&s);
        for (int t = 0; t < T; t++) EXPECT(k2c_decode(&s, ids[t], d + (size_t)t * V, NULL) == 0, "%s", k2c_errmsg());
        const float *ref = lg->data;
        double ep = rms_rel(a, ref, n), ed = rms_rel(d, ref, n), epd = rms_rel(a, d, n);
        int finite = 1;
        for (size_t i = 0; i < n; i++) finite &= isfinite(a[i]) && isfinite(d[i]);
        printf("  %s [%s] int8: prefill %.2e, decode %.2e, prefill vs decode %.2e (rms relative, T=%d)\n", CASES[c],
               m.cx.k->name, ep, ed, epd, T);
        EXPECT(finite, "%s [%s] int8 logits not finite", CASES[c], m.cx.k->name);
        EXPECT(ep < 0.3 && ed < 0.3 && epd < 0.3, "%s [%s] int8 logits: prefill %g decode %g apart %g", CASES[c],
               m.cx.k->name, ep, ed, epd);
        EXPECT(ep > 0, "%s [%s] prefill logits equal the fp32 reference bit for bit: not the int8 path?", CASES[c], m.cx.k->name);
        k2c_state_free(&s);
        free(ids); free(a); free(d);
        k2c_st_close(&ex);
        k2c_model_free(&m);
    }
}

int main(void) {
    TABLES[ntables++] = &k2c_kernels_scalar;
#if defined(__x86_64__)
    if (!level_missing("avx2")) TABLES[ntables++] = &k2c_kernels_avx2;
    if (!level_missing("avx512")) TABLES[ntables++] = &k2c_kernels_avx512;
#elif defined(__aarch64__)
    if (!level_missing("neon")) TABLES[ntables++] = &k2c_kernels_neon;
#endif
    run_test("qgemm_packing", q8p_packing);
    run_test("qgemm_int8_prompt_every_table", int8_prompt_gemm);
    run_test("qgemm_matmul2_fused", matmul2_fused);
    run_test("qgemm_prefer_tile", prefer_tile);
    for (int lv = 0; lv < SIMD_NLEVELS; lv++) {
        char name[64];
        snprintf(name, sizeof name, "qgemm_golden_gguf_int8_%s", SIMD_LEVELS[lv]);
        const char *why = level_missing(SIMD_LEVELS[lv]);
        cur_level = SIMD_LEVELS[lv];
        if (why) skip_test(name, why); else run_test(name, golden_int8);
    }
    return check_exit();
}
