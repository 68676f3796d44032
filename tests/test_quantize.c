/* k2c quantize and the quantizers.
 *   quantize_rms_*        dequantize(quantize(x)) per type on uniform and Gaussian rows: RMS error under the
 *                         type's bound (printed: the README's table)
 *   quantize_requant      quantize(dequantize(block)) gives back the block's values
 *   quantize_gguf_writer  the writer's file through the reader; unfinished writers leave no file
 *   quantize_model_*      every golden checkpoint (F32, BF16 shards, FP8, INT4, Moonlight, DeepSeek-V3) and a GGUF
 *                         input with 256-multiple rows (so the K-quants are used, not their fallbacks) quantized
 *                         to several types: the file passes the reader, and k2c's logits on it (exact mode) equal
 *                         those of the source model with each weight replaced in memory by its quantized-then-
 *                         dequantized value (types read back from the file; kv_b also rebuilt from attn_k_b +
 *                         attn_v_b) within 1e-4 x max|logit|; per-tensor RMS error within the type's bound
 *   quantize_size         k2c_quantize_size equals the bytes written
 *   quantize_errors       unknown type, missing model, unwritable out, a type that cannot hold a value: clear
 *                         errors and no output file */
#include "model/model.h"
#include "check.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUTDIR "build/tests/quantize_out"
#define GOLD "tests/data/golden"

static int sanitize(void) { const char *s = getenv("K2C_SANITIZE"); return s && *s && strcmp(s, "0"); }

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double u01(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2 * log(u01())) * cos(6.283185307179586 * u01()); }

typedef struct { k2c_wfmt f; double unif, gauss; } bound;
/* RMS error / RMS(x) bounds, about 7% above what the quantizers measure (16k elements, fixed seed). For scale:
 * a uniform quantizer of L levels spanning uniform data exactly has 1/(L-1): 0.333 (2 bits), 0.143 (3), 0.067 (4),
 * 0.032 (5), 0.016 (6), 0.0039 (8); blocks of 16-32 seldom span the whole range, so the formats do better. The
 * Lloyd-Max optimum for Gaussian data with a known sigma is 0.343 / 0.186 / 0.0975 / 0.051 / 0.026 (2-6 bits);
 * per-block scales again do better. */
static const bound BOUNDS[] = {
    {K2C_FMT_Q8_0, 0.0040, 0.0057},  {K2C_FMT_Q4_0, 0.063, 0.085},  {K2C_FMT_Q4_1, 0.058, 0.075},
    {K2C_FMT_Q5_0, 0.030, 0.043},    {K2C_FMT_Q5_1, 0.0286, 0.037}, {K2C_FMT_Q2_K, 0.233, 0.281},
    {K2C_FMT_Q3_K, 0.127, 0.153},    {K2C_FMT_Q4_K, 0.0583, 0.0762}, {K2C_FMT_Q5_K, 0.0293, 0.0382},
    {K2C_FMT_Q6_K, 0.0134, 0.018},   {K2C_FMT_IQ4_NL, 0.0689, 0.0804}, {K2C_FMT_IQ4_XS, 0.0689, 0.0804},
    {K2C_FMT_Q6_0, 0.0147, 0.0211},
};
#define NB ((int)(sizeof BOUNDS / sizeof BOUNDS[0]))

static double bound_of(k2c_wfmt f) {
    for (int i = 0; i < NB; i++) if (BOUNDS[i].f == f) return BOUNDS[i].gauss;
    return f == K2C_FMT_F16 ? 1e-3 : f == K2C_FMT_BF16 ? 8e-3 : 1e-7;   /* F32: exact */
}

/* RMS(x - dequant(quant(x))) / RMS(x) of format f on n elements */
static double rt_error(k2c_wfmt f, const float *x, int n, float *y) {
    uint8_t *b = malloc(k2c_wfmt_row_bytes(f, n) + 64);
    if (k2c_quantize_row(f, x, NULL, n, b) != 0) { free(b); return INFINITY; }
    k2c_linear l = {.fmt = f, .rows = 1, .cols = n, .w = b};
    k2c_linear_dequant_rows(&l, 0, 1, y);
    double e = 0, s = 0;
    for (int i = 0; i < n; i++) { e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]); s += (double)x[i] * x[i]; }
    free(b);
    return sqrt(e / s);
}

static void rms_data(int gaussian) {
    int n = 256 * 64;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (int i = 0; i < n; i++) x[i] = gaussian ? (float)gauss() : (float)(2 * u01() - 1);
    for (int i = 0; i < NB; i++) {
        double e = rt_error(BOUNDS[i].f, x, n, y), b = gaussian ? BOUNDS[i].gauss : BOUNDS[i].unif;
        printf("  %-8s %s RMS error / RMS(x) = %.5f (bound %.4f)\n", k2c_wfmt_name(BOUNDS[i].f), gaussian ? "gaussian" : "uniform ", e, b);
        EXPECT(e <= b, "%s: %.5f > %.5f", k2c_wfmt_name(BOUNDS[i].f), e, b);
    }
    /* a scaled and shifted row (K-quant mins, Q4_1/Q5_1 offsets) and one with an outlier */
    for (int i = 0; i < n; i++) x[i] = 0.01f * (float)gauss() + (gaussian ? 0.02f : -0.005f);
    x[100] = 0.3f;
    for (int i = 0; i < NB; i++) {
        double e = rt_error(BOUNDS[i].f, x, n, y);
        EXPECT(e < 3 * (gaussian ? BOUNDS[i].gauss : BOUNDS[i].unif) + 0.01, "%s shifted: %.5f", k2c_wfmt_name(BOUNDS[i].f), e);
    }
    /* zeros stay zeros, a constant row is near exact for the formats with an offset */
    memset(x, 0, n * sizeof *x);
    for (int i = 0; i < NB; i++) {
        uint8_t b[256 * 2];
        float z[256];
        EXPECT(k2c_quantize_row(BOUNDS[i].f, x, NULL, 256, b) == 0, "zeros");
        k2c_linear l = {.fmt = BOUNDS[i].f, .rows = 1, .cols = 256, .w = b};
        k2c_linear_dequant_rows(&l, 0, 1, z);
        int ok = 1;
        for (int k = 0; k < 256; k++) ok &= z[k] == 0;
        EXPECT(ok, "%s: zeros do not come back as zeros", k2c_wfmt_name(BOUNDS[i].f));
    }
    free(x);
    free(y);
}
static void rms_uniform(void) { rms_data(0); }
static void rms_gaussian(void) { rms_data(1); }

/* A block made by the quantizer, dequantized, quantized again: the same values. Exact for the formats with one
 * scale per group (and Q3_K, Q6_K, IQ4_XS, whose group scales are signed integers of one d). Q4_1, Q5_1 and the
 * K-quants with a min (Q2_K, Q4_K, Q5_K) are checked to reproduce at least a quarter of the blocks exactly (most,
 * but Q5_K about a third) and to move the rest by
 * far less than their quantization error: a group's (scale, min) fit is defined only up to a shift of its
 * levels, and the search does not always land on the shift the super-block grid holds. */
static void requant(void) {
    float x[256], y[256], z[256];
    uint8_t b[512], b2[512];
    for (int i = 0; i < NB; i++) {
        k2c_wfmt f = BOUNDS[i].f;
        int n = 256, exact = 0, reps = 40;
        double worst = 0, moved = 0, qerr = 0;
        for (int rep = 0; rep < reps; rep++) {
            for (int k = 0; k < n; k++) x[k] = (float)(rep % 2 ? gauss() : 2 * u01() - 1) * (float)(1 + rep);
            k2c_quantize_row(f, x, NULL, n, b);
            k2c_linear l = {.fmt = f, .rows = 1, .cols = n, .w = b}, l2 = {.fmt = f, .rows = 1, .cols = n, .w = b2};
            k2c_linear_dequant_rows(&l, 0, 1, y);
            k2c_quantize_row(f, y, NULL, n, b2);
            k2c_linear_dequant_rows(&l2, 0, 1, z);
            double amax = 0, e1 = 0, e2 = 0;
            for (int k = 0; k < n; k++) amax = fmax(amax, fabs(y[k]));
            for (int k = 0; k < n; k++) {
                worst = check_worse(worst, fabs((double)z[k] - y[k]) / amax);
                e1 += ((double)y[k] - x[k]) * ((double)y[k] - x[k]);
                e2 += ((double)z[k] - y[k]) * ((double)z[k] - y[k]);
            }
            exact += e2 == 0;
            moved += e2;
            qerr += e1;
        }
        int single = !(f == K2C_FMT_Q4_1 || f == K2C_FMT_Q5_1 || f == K2C_FMT_Q2_K || f == K2C_FMT_Q4_K || f == K2C_FMT_Q5_K);
        printf("  %-8s requantized: %d/%d blocks exact, max change %.2g of max|x|, RMS change %.3f of the RMS quantization error\n",
               k2c_wfmt_name(f), exact, reps, worst, sqrt(moved / qerr));
        if (single) EXPECT(worst == 0, "%s: requantizing a dequantized block moved a value by %.3g of max|x|", k2c_wfmt_name(f), worst);
        else EXPECT(exact * 4 >= reps && sqrt(moved / qerr) < 0.2, "%s: %d/%d exact, RMS change %.3f", k2c_wfmt_name(f), exact,
                    reps, sqrt(moved / qerr));
    }
    float odd[48] = {0};
    EXPECT(k2c_quantize_row(K2C_FMT_Q4_K, odd, NULL, 48, b) != 0 && strstr(k2c_errmsg(), "Q4_K"), "row not whole blocks");
}

/* ------------------------------------------------------------------ writer */
static void gguf_writer(void) {
    mkdir("build/tests", 0755);
    mkdir(OUTDIR, 0755);
    const char *path = OUTDIR "/w.gguf";
    unlink(path);
    k2c_gguf_writer *w = k2c_gguf_w_new();
    int64_t ne[2] = {32, 3};
    int32_t arr[3] = {1, -2, 3};
    const char *sv[2] = {"ab", "c"};
    EXPECT(k2c_gguf_w_str(w, "general.architecture", "deepseek2") == 0, "str");
    EXPECT(k2c_gguf_w_f32(w, "x.f", 2.5f) == 0 && k2c_gguf_w_bool(w, "x.b", 1) == 0 && k2c_gguf_w_i32(w, "x.i", -7) == 0, "scalars");
    EXPECT(k2c_gguf_w_array(w, "x.arr", K2C_GGUF_I32, 3, arr) == 0 && k2c_gguf_w_str_array(w, "x.sv", 2, sv, NULL) == 0, "arrays");
    EXPECT(k2c_gguf_w_u32(w, "x.f", 1) != 0 && strstr(k2c_errmsg(), "twice"), "duplicate key");
    EXPECT(k2c_gguf_w_tensor(w, "a", K2C_GGML_Q8_0, 2, ne) == 0, "%s", k2c_errmsg());
    int64_t bad[1] = {48};
    EXPECT(k2c_gguf_w_tensor(w, "b", K2C_GGML_Q4_K, 1, bad) != 0 && strstr(k2c_errmsg(), "multiple"), "row not whole blocks");
    int64_t ne1[1] = {5};
    EXPECT(k2c_gguf_w_tensor(w, "v", K2C_GGML_F32, 1, ne1) == 0, "vec");
    EXPECT(k2c_gguf_w_begin(w, path) == 0, "%s", k2c_errmsg());
    uint8_t q[3 * 34];
    float xs[96], vv[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 96; i++) xs[i] = (float)i - 40;
    k2c_quantize_row(K2C_FMT_Q8_0, xs, NULL, 96, q);
    EXPECT(k2c_gguf_w_data(w, q, 50) == 0 && k2c_gguf_w_data(w, q + 50, sizeof q - 50) == 0, "data in pieces");
    EXPECT(k2c_gguf_w_finish(w) != 0 && strstr(k2c_errmsg(), "'v'"), "finish before every byte");
    EXPECT(k2c_gguf_w_data(w, vv, sizeof vv) == 0 && k2c_gguf_w_finish(w) == 0, "%s", k2c_errmsg());
    k2c_gguf_w_free(w);
    k2c_gguf g;
    if (k2c_gguf_open(&g, path, K2C_LOAD_MMAP) != 0) { EXPECT(0, "reader: %s", k2c_errmsg()); return; }
    const k2c_gguf_tensor *ta = k2c_gguf_find(&g, "a"), *tv = k2c_gguf_find(&g, "v");
    int64_t iv;
    double fv;
    const char *s;
    EXPECT(g.version == 3 && g.alignment == 32 && g.ntensors == 2, "header");
    EXPECT(k2c_gguf_str(&g, "general.architecture", &s) == 1 && !strcmp(s, "deepseek2"), "arch");
    EXPECT(k2c_gguf_num(&g, "x.f", &fv) == 1 && fv == 2.5 && k2c_gguf_int(&g, "x.i", &iv) == 1 && iv == -7, "scalars back");
    const k2c_gguf_kv *kv = k2c_gguf_get(&g, "x.sv");
    EXPECT(kv && kv->n == 2 && kv->sl[0] == 2 && !memcmp(kv->sv[0], "ab", 2), "string array back");
    EXPECT(ta && tv && ta->nbytes == sizeof q && !memcmp(ta->data, q, sizeof q) && ((const float *)tv->data)[4] == 5.0f &&
           tv->offset % 32 == 0, "tensor data back");
    k2c_gguf_close(&g);
    /* a writer freed unfinished leaves nothing */
    const char *p2 = OUTDIR "/unfinished.gguf";
    unlink(p2);
    w = k2c_gguf_w_new();
    k2c_gguf_w_tensor(w, "a", K2C_GGML_Q8_0, 2, ne);
    k2c_gguf_w_begin(w, p2);
    k2c_gguf_w_data(w, q, 10);
    k2c_gguf_w_free(w);
    struct stat sb;
    EXPECT(stat(p2, &sb) != 0, "an unfinished writer left %s", p2);
    DIR *d = opendir(OUTDIR);
    struct dirent *e;
    int tmp = 0;
    while (d && (e = readdir(d))) tmp += strstr(e->d_name, "unfinished.gguf.tmp") != NULL;
    if (d) closedir(d);
    EXPECT(tmp == 0, "an unfinished writer left its temporary file");
}

/* ------------------------------------------------------------------ the reference model */
/* l replaced by an F32 copy of dequant(quantize(l, f)) per row */
static int round_trip(k2c_model *m, k2c_linear *l, k2c_wfmt f, double *rel_err) {
    int cols = l->cols;
    float *w = k2c_model_own(m, (size_t)l->rows * cols * sizeof *w), *x = malloc((size_t)cols * sizeof *x);
    uint8_t *b = malloc((size_t)cols * 4 + 64);
    if (!w || !x || !b) { free(x); free(b); return -1; }
    double e = 0, s = 0;
    for (int r = 0; r < l->rows; r++) {
        k2c_linear_dequant_rows(l, r, 1, x);
        if (k2c_quantize_row(f, x, NULL, cols, b) != 0) { free(x); free(b); return -1; }
        k2c_linear one = {.fmt = f, .rows = 1, .cols = cols, .w = b};
        k2c_linear_dequant_rows(&one, 0, 1, w + (size_t)r * cols);
        for (int k = 0; k < cols; k++) { double d = (double)x[k] - w[(size_t)r * cols + k]; e += d * d; s += (double)x[k] * x[k]; }
    }
    free(x);
    free(b);
    if (rel_err) *rel_err = s > 0 ? sqrt(e / s) : 0;
    l->fmt = K2C_FMT_F32;
    l->w = w;
    l->scale_f32 = NULL;
    l->scale_bf16 = NULL;
    return 0;
}

/* kv_b as model_gguf.c rebuilds it from attn_k_b (type fk, per head kv_b's key rows transposed) and attn_v_b (fv) */
static int round_trip_split(k2c_model *m, k2c_linear *kvb, k2c_wfmt fk, k2c_wfmt fv) {
    const k2c_config *c = &m->cfg;
    int H = c->num_attention_heads, dn = c->qk_nope_head_dim, dv = c->v_head_dim, r = c->kv_lora_rank, kvd = dn + dv;
    float *full = malloc((size_t)H * kvd * r * sizeof *full), *kb = malloc((size_t)r * dn * sizeof *kb);
    float *w = k2c_model_own(m, (size_t)H * kvd * r * sizeof *w);
    k2c_linear_dequant_rows(kvb, 0, H * kvd, full);
    k2c_linear tk = {.fmt = K2C_FMT_F32, .rows = r, .cols = dn, .w = kb}, tv = {.fmt = K2C_FMT_F32, .rows = dv, .cols = r};
    for (int h = 0; h < H; h++) {
        for (int i = 0; i < dn; i++) for (int k = 0; k < r; k++) kb[(size_t)k * dn + i] = full[((size_t)h * kvd + i) * r + k];
        tk.fmt = K2C_FMT_F32; tk.w = kb;
        if (round_trip(m, &tk, fk, NULL)) return -1;
        const float *kq = tk.w;
        for (int i = 0; i < dn; i++) for (int k = 0; k < r; k++) w[((size_t)h * kvd + i) * r + k] = kq[(size_t)k * dn + i];
        tv.fmt = K2C_FMT_F32; tv.w = full + ((size_t)h * kvd + dn) * r;
        if (round_trip(m, &tv, fv, NULL)) return -1;
        memcpy(w + ((size_t)h * kvd + dn) * r, tv.w, (size_t)dv * r * sizeof *w);
    }
    free(full);
    free(kb);
    *kvb = (k2c_linear){.fmt = K2C_FMT_F32, .rows = H * kvd, .cols = r, .w = w, .cx = kvb->cx};
    return 0;
}

static int fmt_in(const k2c_gguf *g, const char *name, k2c_wfmt *f) {
    const k2c_gguf_tensor *t = k2c_gguf_find(g, name);
    if (!t || k2c_wfmt_from_ggml(t->type, f) != 0) { k2c_seterr("written file lacks '%s' or its type", name); return -1; }
    return 0;
}

/* Every weight of ref round-tripped through the type the written file g gives its tensor; worst: the largest
 * per-tensor RMS error over its type's bound. */
static int reference(k2c_model *ref, const k2c_gguf *g, int split, double *worst) {
    const k2c_config *c = &ref->cfg;
    k2c_wfmt f;
    double e;
    char n[96];
    *worst = 0;
#define RT(lin_, ...) do { snprintf(n, sizeof n, __VA_ARGS__); if (fmt_in(g, n, &f) || round_trip(ref, lin_, f, &e)) return -1; \
        *worst = fmax(*worst, e / bound_of(f) / (f == K2C_FMT_F32 || f == K2C_FMT_F16 ? 1 : 1.3)); } while (0)
    int tied = ref->head.w == ref->embed.w;
    RT(&ref->embed, "token_embd.weight");
    if (tied) ref->head = ref->embed;
    else RT(&ref->head, "output.weight");
    for (int L = 0; L < c->num_hidden_layers; L++) {
        k2c_layer *ly = &ref->layers[L];
        if (c->q_lora_rank) { RT(&ly->q_a, "blk.%d.attn_q_a.weight", L); RT(&ly->q_b, "blk.%d.attn_q_b.weight", L); }
        else RT(&ly->q, "blk.%d.attn_q.weight", L);
        RT(&ly->kv_a, "blk.%d.attn_kv_a_mqa.weight", L);
        if (split) {
            k2c_wfmt fk, fv;
            snprintf(n, sizeof n, "blk.%d.attn_k_b.weight", L);
            if (fmt_in(g, n, &fk)) return -1;
            snprintf(n, sizeof n, "blk.%d.attn_v_b.weight", L);
            if (fmt_in(g, n, &fv) || round_trip_split(ref, &ly->kv_b, fk, fv)) return -1;
        } else {
            RT(&ly->kv_b, "blk.%d.attn_kv_b.weight", L);
        }
        RT(&ly->o, "blk.%d.attn_output.weight", L);
        const char *sfx = ly->is_moe ? "_shexp" : "";
        if (!ly->is_moe || c->n_shared_experts) {
            RT(&ly->gate, "blk.%d.ffn_gate%s.weight", L, sfx);
            RT(&ly->up, "blk.%d.ffn_up%s.weight", L, sfx);
            RT(&ly->down, "blk.%d.ffn_down%s.weight", L, sfx);
        }
        if (!ly->is_moe) continue;
        RT(&ly->router, "blk.%d.ffn_gate_inp.weight", L);
        for (int x = 0; x < c->n_routed_experts; x++) {
            RT(&ly->exp_gate[x], "blk.%d.ffn_gate_exps.weight", L);
            RT(&ly->exp_up[x], "blk.%d.ffn_up_exps.weight", L);
            RT(&ly->exp_down[x], "blk.%d.ffn_down_exps.weight", L);
        }
    }
#undef RT
    return 0;
}

static int logits_of(const k2c_model *m, const int *ids, int T, float *out) {
    k2c_state *s = k2c_state_new(m, T + 1);
    int rc = s ? k2c_prefill(s, ids, T, out, NULL, NULL) : -1;
    k2c_state_delete(s);
    return rc;
}

/* in quantized to each of types; logits compared with the round-tripped source */
static void model_case(const char *in, const char *const *types, int ntypes) {
    static const int ids[] = {1, 5, 9, 33, 7, 100, 2, 64, 300, 17};
    const int T = 10;
    mkdir("build/tests", 0755);
    mkdir(OUTDIR, 0755);
    k2c_model_opts mo = {.load = K2C_LOAD_MMAP, .exact = 1, .threads = 2};
    for (int ti = 0; ti < ntypes; ti++) {
        char out[512];
        const char *b = strrchr(in, '/');
        snprintf(out, sizeof out, OUTDIR "/%s.%s.gguf", b ? b + 1 : in, types[ti]);
        k2c_quantize_opts qo = {.type = types[ti], .threads = 2};
        if (k2c_quantize(in, out, &qo) != 0) { EXPECT(0, "%s -> %s: %s", in, types[ti], k2c_errmsg()); continue; }
        k2c_gguf g;
        if (k2c_gguf_open(&g, out, K2C_LOAD_MMAP) != 0) { EXPECT(0, "reader: %s", k2c_errmsg()); continue; }
        /* (c) size: what k2c_quantize_size predicts */
        uint64_t pred = 0, got = 0;
        k2c_config cfg;
        if (k2c_gguf_config(&g, &cfg) == 0 && k2c_quantize_size(&cfg, &qo, &pred, NULL) == 0)
            for (int i = 0; i < g.ntensors; i++) got += g.tensors[i].nbytes;
        EXPECT(pred == got && got > 0, "%s %s: k2c_quantize_size says %llu bytes, the file holds %llu", in, types[ti],
               (unsigned long long)pred, (unsigned long long)got);
        for (int split = 0; split < 2; split++) {
            k2c_model q, ref;
            if (k2c_model_load_gguf(&q, out, &mo, split) != 0) { EXPECT(0, "load %s: %s", out, k2c_errmsg()); continue; }
            if (k2c_model_load_opts(&ref, in, &mo) != 0) { EXPECT(0, "load %s: %s", in, k2c_errmsg()); k2c_model_free(&q); continue; }
            double worst = 0;
            int V = q.cfg.vocab_size;
            float *lq = malloc((size_t)T * V * sizeof *lq), *lr = malloc((size_t)T * V * sizeof *lr);
            if (reference(&ref, &g, split, &worst) != 0) EXPECT(0, "%s %s: reference: %s", in, types[ti], k2c_errmsg());
            else if (logits_of(&q, ids, T, lq) != 0 || logits_of(&ref, ids, T, lr) != 0) EXPECT(0, "forward: %s", k2c_errmsg());
            else {
                double mx = 0, d = 0;
                for (int i = 0; i < T * V; i++) { mx = fmax(mx, fabs(lr[i])); d = check_worse(d, fabs((double)lq[i] - lr[i])); }
                printf("  %-28s %-7s %s: max |logit diff| / max|logit| = %.2e, worst tensor RMS error %.2f of its bound\n",
                       b ? b + 1 : in, types[ti], split ? "k_b+v_b" : "kv_b   ", d / mx, worst);
                EXPECT(d <= 1e-4 * mx, "%s %s split %d: logits differ by %.3g (max %.3g)", in, types[ti], split, d, mx);
                EXPECT(worst <= 1.0, "%s %s: a tensor's RMS error is %.2f x its type's bound", in, types[ti], worst);
            }
            free(lq);
            free(lr);
            k2c_model_free(&ref);
            k2c_model_free(&q);
        }
        k2c_gguf_close(&g);
        unlink(out);
    }
}

static const char *SMALL_TYPES[] = {"Q8_0", "Q4_K_M", "Q2_K", "Q4_1", "IQ4_NL", "F16"};
static void model_f32(void) { model_case(GOLD "/k2-tiny-f32", SMALL_TYPES, sanitize() ? 2 : 6); }
static void model_bf16_sharded(void) { model_case(GOLD "/k2-tiny-bf16-sharded", SMALL_TYPES + 1, 2); }
static void model_fp8(void) { model_case(GOLD "/k2-tiny-fp8", SMALL_TYPES, sanitize() ? 2 : 3); }
static void model_int4(void) { model_case(GOLD "/k2-thinking-tiny-int4", SMALL_TYPES, sanitize() ? 2 : 3); }
static void model_moonlight(void) { model_case(GOLD "/moonlight-tiny", SMALL_TYPES, 3); }
static void model_dsv3(void) { model_case(GOLD "/dsv3-tiny", SMALL_TYPES + 1, 2); }
/* (d) a GGUF input, with rows of 256: the K-quants themselves, their fallbacks only for attn_k_b (rows of 128) */
static void model_gguf(void) {
    static const char *K[] = {"Q4_K_M", "Q2_K", "Q3_K_M", "Q6_K", "Q4_K", "Q5_K", "IQ4_XS", "Q3_K", "Q5_0", "Q6_0"};
    model_case(GOLD "/gguf/gguf-Q8_0/model.gguf", K, sanitize() ? 2 : 10);
}

/* ------------------------------------------------------------------ errors */
static int no_file_like(const char *dir, const char *stem) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strstr(e->d_name, stem) != NULL;
    if (d) closedir(d);
    return n == 0;
}

static void errors(void) {
    mkdir("build/tests", 0755);
    mkdir(OUTDIR, 0755);
    const char *out = OUTDIR "/err.gguf";
    unlink(out);
    /* temporary files of an earlier run that was killed (a kill cannot be cleaned up after) */
    DIR *dd = opendir(OUTDIR);
    struct dirent *de;
    while (dd && (de = readdir(dd)))
        if (strstr(de->d_name, "err.gguf.tmp.")) {
            char p[600];
            snprintf(p, sizeof p, OUTDIR "/%s", de->d_name);
            unlink(p);
        }
    if (dd) closedir(dd);
    k2c_quantize_opts o = {.type = "Q9_Z"};
    EXPECT(k2c_quantize(GOLD "/k2-tiny-f32", out, &o) != 0 && strstr(k2c_errmsg(), "unknown type 'Q9_Z'"), "%s", k2c_errmsg());
    o.type = "IQ2_XXS";
    EXPECT(k2c_quantize(GOLD "/k2-tiny-f32", out, &o) != 0 && strstr(k2c_errmsg(), "IQ2_XXS"), "%s", k2c_errmsg());
    o.type = "Q4_K";
    o.type_experts = "Q7";
    EXPECT(k2c_quantize(GOLD "/k2-tiny-f32", out, &o) != 0 && strstr(k2c_errmsg(), "--type-experts"), "%s", k2c_errmsg());
    o.type_experts = NULL;
    EXPECT(k2c_quantize(GOLD "/no-such-model", out, &o) != 0 && strstr(k2c_errmsg(), "no-such-model"), "%s", k2c_errmsg());
    EXPECT(k2c_quantize(GOLD "/k2-tiny-f32", "build/tests/no/such/dir/x.gguf", &o) != 0 &&
           strstr(k2c_errmsg(), "no/such/dir"), "%s", k2c_errmsg());
    EXPECT(k2c_quantize(GOLD "/k2-tiny-f32", OUTDIR, &o) != 0 && strstr(k2c_errmsg(), "folder"), "%s", k2c_errmsg());
    /* a value F16 cannot hold: a copy of k2-tiny-f32 with one embedding element at 1e6 */
    const char *dir = OUTDIR "/big";
    mkdir(dir, 0755);
    size_t n;
    char *cfg = k2c_read_file(GOLD "/k2-tiny-f32/config.json", &n);
    char *st = k2c_read_file(GOLD "/k2-tiny-f32/model.safetensors", &n);
    k2c_safetensors s;
    if (!cfg || !st || k2c_st_open(&s, GOLD "/k2-tiny-f32/model.safetensors") != 0) { EXPECT(0, "%s", k2c_errmsg()); free(cfg); free(st); return; }
    const k2c_tensor *t = k2c_st_find(&s, "model.embed_tokens.weight");
    float big = 1e6f;
    if (t) memcpy(st + ((const char *)t->data - (const char *)s.files[0].map) + 4 * 70, &big, 4);
    k2c_st_close(&s);
    EXPECT(t && k2c_write_file_atomic(OUTDIR "/big/config.json", cfg, strlen(cfg)) == 0 &&
           k2c_write_file_atomic(OUTDIR "/big/model.safetensors", st, n) == 0, "copy");
    free(cfg);
    free(st);
    o.type = "F16";
    EXPECT(k2c_quantize(dir, out, &o) != 0 && strstr(k2c_errmsg(), "token_embd.weight") && strstr(k2c_errmsg(), "F16 cannot hold"),
           "%s", k2c_errmsg());
    o.type = "Q8_0";
    o.type_embd = "F16";
    EXPECT(k2c_quantize(dir, out, &o) != 0 && strstr(k2c_errmsg(), "cannot hold"), "--type-embd F16: %s", k2c_errmsg());
    struct stat sb;
    EXPECT(stat(out, &sb) != 0 && no_file_like(OUTDIR, "err.gguf"), "a failed quantize left a file");
    o.type_embd = NULL;     /* Q8_0 holds 1e6 (fp16 scale 1e6/127) */
    EXPECT(k2c_quantize(dir, out, &o) == 0, "%s", k2c_errmsg());
    unlink(out);
}

/* The importance weights do their job: the weighted error of a weighted quantization is below that of the plain
 * one, per type (columns of weight 1..100 on Gaussian rows). */
static void weighted(void) {
    int n = 256 * 16;
    float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w), *y = malloc(n * sizeof *y);
    uint8_t *b = malloc((size_t)n * 2);
    for (int i = 0; i < n; i++) { x[i] = (float)gauss(); w[i] = (float)(1 + 99 * u01() * u01()); }
    for (int i = 0; i < NB; i++) {
        double e[2];
        for (int pass = 0; pass < 2; pass++) {
            k2c_quantize_row(BOUNDS[i].f, x, pass ? w : NULL, n, b);
            k2c_linear l = {.fmt = BOUNDS[i].f, .rows = 1, .cols = n, .w = b};
            k2c_linear_dequant_rows(&l, 0, 1, y);
            e[pass] = 0;
            for (int k = 0; k < n; k++) e[pass] += w[k] * ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
        }
        printf("  %-8s weighted error: %.4g plain, %.4g with the weights (%.1f%%)\n", k2c_wfmt_name(BOUNDS[i].f), e[0], e[1],
               100 * (e[1] - e[0]) / e[0]);
        EXPECT(e[1] < e[0], "%s: the weights did not lower the weighted error (%.4g vs %.4g)", k2c_wfmt_name(BOUNDS[i].f), e[1], e[0]);
    }
    free(x); free(w); free(y); free(b);
}

/* k2c imatrix on a golden model: counts per tensor (every token through attention and the dense FFN, top-k per
 * token through the experts), a quantize that reads it, the held-out measure, and a wrong file refused. */
static void imatrix(void) {
    mkdir("build/tests", 0755);
    mkdir(OUTDIR, 0755);
    int ids[96];
    for (int i = 0; i < 96; i++) ids[i] = (i * 37 + 11) % 512;
    const char *im = OUTDIR "/im.gguf", *out = OUTDIR "/im.q.gguf";
    if (k2c_imatrix(GOLD "/k2-tiny-f32", ids, 96, 40, 2, im) != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    k2c_gguf g;
    if (k2c_gguf_open(&g, im, K2C_LOAD_MMAP) != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    const char *gt = NULL;
    EXPECT(k2c_gguf_str(&g, "general.type", &gt) == 1 && !strcmp(gt, "imatrix"), "general.type");
    const k2c_gguf_tensor *cq = k2c_gguf_find(&g, "blk.0.attn_q_a.weight.counts"), *cd = k2c_gguf_find(&g, "blk.0.ffn_down.weight.counts");
    const k2c_gguf_tensor *ce = k2c_gguf_find(&g, "blk.1.ffn_up_exps.weight.counts"), *se = k2c_gguf_find(&g, "blk.1.ffn_up_exps.weight.in_sum2");
    float c0 = 0, c1 = 0, sum = 0;
    if (cq) memcpy(&c0, cq->data, 4);
    if (cd) memcpy(&c1, cd->data, 4);
    for (int e = 0; ce && e < 16; e++) { float v; memcpy(&v, (const uint8_t *)ce->data + 4 * e, 4); sum += v; }
    EXPECT(c0 == 96 && c1 == 96, "counts %g %g, want 96", c0, c1);
    EXPECT(ce && ce->ne[1] == 16 && sum == 96 * 4, "expert counts sum %g, want 96 x 4", sum);
    EXPECT(se && se->ne[0] == 64 && se->ne[1] == 16, "expert in_sum2 shape");
    k2c_gguf_close(&g);
    k2c_quantize_opts o = {.type = "Q4_0", .imatrix = im, .threads = 2};
    EXPECT(k2c_quantize(GOLD "/k2-tiny-f32", out, &o) == 0, "%s", k2c_errmsg());
    k2c_model m;
    k2c_model_opts mo = {.load = K2C_LOAD_MMAP, .exact = 1};
    EXPECT(k2c_model_load_gguf(&m, out, &mo, 0) == 0, "%s", k2c_errmsg());
    k2c_model_free(&m);
    double plain = 0, imp = 0;
    EXPECT(k2c_imatrix_eval(GOLD "/k2-tiny-f32", ids + 48, 48, 48, 2, im, "Q4_0", &plain, &imp) == 0 && plain > 0 && imp > 0,
           "eval: %s", k2c_errmsg());
    printf("  k2-tiny-f32 Q4_0 held-out output error %.4f plain, %.4f with the imatrix\n", plain, imp);
    o.imatrix = GOLD "/gguf/gguf-Q8_0/model.gguf";
    unlink(out);
    EXPECT(k2c_quantize(GOLD "/k2-tiny-f32", out, &o) != 0 && strstr(k2c_errmsg(), "not an importance matrix"), "%s", k2c_errmsg());
    struct stat sb;
    EXPECT(stat(out, &sb) != 0, "a refused imatrix left %s", out);
    unlink(im);
}

/* The README's rows: Kimi-K2 (the preset) at the recipes, and the bytes per type add up. */
static void size_table(void) {
    k2c_config c;
    if (k2c_config_preset(&c, "kimi-k2") != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    const char *R[] = {"Q2_K", "Q3_K_M", "Q4_K_M", "Q8_0"};
    uint64_t prev = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t b, by[K2C_GGML_TYPES], sum = 0;
        k2c_quantize_opts o = {.type = R[i]};
        EXPECT(k2c_quantize_size(&c, &o, &b, by) == 0, "%s", k2c_errmsg());
        for (int t = 0; t < K2C_GGML_TYPES; t++) sum += by[t];
        printf("  Kimi-K2 %-7s %.1f GB\n", R[i], (double)b / 1e9);
        EXPECT(sum == b && b > prev, "%s: %llu", R[i], (unsigned long long)b);
        prev = b;
    }
}

int main(void) {
    run_test("quantize_rms_uniform", rms_uniform);
    run_test("quantize_rms_gaussian", rms_gaussian);
    run_test("quantize_requant", requant);
    run_test("quantize_weighted", weighted);
    run_test("quantize_gguf_writer", gguf_writer);
    run_test("quantize_imatrix", imatrix);
    run_test("quantize_errors", errors);
    run_test("quantize_size_kimi_k2", size_table);
    run_test("quantize_model_k2_tiny_f32", model_f32);
    run_test("quantize_model_k2_tiny_bf16_sharded", model_bf16_sharded);
    run_test("quantize_model_k2_tiny_fp8", model_fp8);
    run_test("quantize_model_k2_thinking_int4", model_int4);
    run_test("quantize_model_moonlight", model_moonlight);
    run_test("quantize_model_dsv3", model_dsv3);
    run_test("quantize_model_gguf_input", model_gguf);
    return check_exit();
}
