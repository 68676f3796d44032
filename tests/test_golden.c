/* The forward pass against the six golden cases (float64 reference, spec section 7): prefill logits,
 * per-layer hidden states, chosen experts and per-head max logits; then the same logits through the
 * absorbed decode path token by token. Both the SIMD and the scalar kernels are checked. */
#include "model/model.h"
#include "check.h"
#include "simd_levels.h"

#include <string.h>
#include <sys/stat.h>

static const char *CASES[] = {"k2-tiny-f32", "k2-tiny-bf16-sharded", "k2-tiny-fp8", "k2-thinking-tiny-int4",
                              "moonlight-tiny", "dsv3-tiny"};

static float max_abs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = (float)check_worse(m, fabsf(a[i]));
    return m;
}

/* max |a - ref| / max |ref|; NaN if any element is NaN */
static float rel_err(const float *a, const k2c_tensor *ref) {
    float m = max_abs(ref->data, (size_t)ref->numel), e = 0;
    for (int64_t i = 0; i < ref->numel; i++) e = (float)check_worse(e, fabsf(a[i] - ((const float *)ref->data)[i]));
    return e / (m > 0 ? m : 1);
}

/* One golden case loaded and prefilled (the INT4 case in exact mode): the model, its reference outputs, the ids,
 * the prefill's logits and trace (hidden states, experts, per-head max logits) and the state it left. */
typedef struct {
    k2c_model m;
    k2c_safetensors ref;
    k2c_state s;
    k2c_trace tr;
    const k2c_tensor *lg;       /* reference logits [T, V] */
    int *ids;                   /* [T] */
    float *logits;              /* [T, V] from prefill */
    int T, V, L, D, H, K;
} golden_run;

static void golden_close(golden_run *g) {
    k2c_state_free(&g->s);
    k2c_st_close(&g->ref);
    k2c_model_free(&g->m);
    free(g->ids); free(g->logits); free(g->tr.hidden); free(g->tr.experts); free(g->tr.attn_max);
}

/* The kernels and prompt precision every model of this run is loaded with (set per pass by main). */
static k2c_model_opts g_opts;
static const char *simd_name(void) { return g_opts.simd ? g_opts.simd : "auto"; }

static int golden_open(golden_run *g, const char *dir) {
    char exp[300];
    snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
    memset(g, 0, sizeof *g);
    /* INT4 experts run on int8 activations unless exact (tests/test_int4_q8.c checks that path against this
     * reference within its quantization error); here they are held to the reference like every other format */
    k2c_model_opts o = g_opts;
    if (strstr(dir, "int4")) o.exact = 1;
    if (k2c_model_load_opts(&g->m, dir, &o) != 0) { EXPECT(0, "%s: load: %s", dir, k2c_errmsg()); return -1; }
    if (k2c_st_open(&g->ref, exp) != 0) { EXPECT(0, "%s", k2c_errmsg()); k2c_model_free(&g->m); return -1; }
    const k2c_config *c = &g->m.cfg;
    const k2c_tensor *ids_t = k2c_st_find(&g->ref, "input_ids");
    g->lg = k2c_st_find(&g->ref, "logits");
    g->T = (int)ids_t->numel; g->V = c->vocab_size; g->L = c->num_hidden_layers; g->D = c->hidden_size;
    g->H = c->num_attention_heads; g->K = c->num_experts_per_tok;
    g->ids = malloc(g->T * sizeof *g->ids);
    for (int t = 0; t < g->T; t++) g->ids[t] = (int)k2c_elem_to_f32(ids_t->dtype, ids_t->data, t);
    g->logits = malloc((size_t)g->T * g->V * sizeof *g->logits);
    g->tr = (k2c_trace){malloc((size_t)g->L * g->T * g->D * sizeof(float)), malloc((size_t)g->L * g->T * g->K * sizeof(int)),
                        malloc((size_t)g->L * g->H * sizeof(float))};
    for (int i = 0; i < g->L * g->H; i++) g->tr.attn_max[i] = -INFINITY;
    EXPECT(k2c_state_init(&g->s, &g->m, 64) == 0, "%s", k2c_errmsg());
    EXPECT(k2c_prefill(&g->s, g->ids, g->T, g->logits, NULL, &g->tr) == 0, "%s", k2c_errmsg());
    return 0;
}

static void check_case(const char *name) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/golden/%s", name);
    golden_run g;
    if (golden_open(&g, dir)) return;
    const k2c_config *c = &g.m.cfg;
    const k2c_tensor *lg = g.lg;
    int T = g.T, V = g.V, L = g.L, D = g.D, H = g.H, K = g.K, *ids = g.ids;
    k2c_trace tr = g.tr;
    float *logits = g.logits;
    float e = rel_err(logits, lg);
    EXPECT(e < 1e-4f, "%s [%s] prefill logits rel err %g", name, simd_name(), e);
    char tn[64];
    for (int l = 0; l < L; l++) {
        snprintf(tn, sizeof tn, "hidden.%d", l);
        const k2c_tensor *h = k2c_st_find(&g.ref, tn);
        if (h) { float he = rel_err(tr.hidden + (size_t)l * T * D, h); EXPECT(he < 1e-4f, "%s %s rel err %g", name, tn, he); }
        else EXPECT(0, "%s: reference lacks %s", name, tn);      /* every golden case has every layer's */
        snprintf(tn, sizeof tn, "attn_max_logit.%d", l);
        const k2c_tensor *am = k2c_st_find(&g.ref, tn);
        if (am) { float ae = rel_err(tr.attn_max + (size_t)l * H, am); EXPECT(ae < 1e-4f, "%s %s rel err %g", name, tn, ae); }
        else EXPECT(0, "%s: reference lacks %s", name, tn);
        snprintf(tn, sizeof tn, "experts.%d", l);
        const k2c_tensor *ex = k2c_st_find(&g.ref, tn);
        if (ex) {
            int bad = 0;
            for (int i = 0; i < T * K; i++) bad += tr.experts[(size_t)l * T * K + i] != (int)k2c_elem_to_f32(ex->dtype, ex->data, i);
            EXPECT(bad == 0, "%s %s: %d mismatches", name, tn, bad);
        } else if (l >= c->first_k_dense_replace) {
            EXPECT(0, "%s: reference lacks %s", name, tn);
        }
    }
    /* decode: token by token through the latent cache */
    k2c_state_reset(&g.s);
    float *dl = malloc((size_t)T * V * sizeof *dl);
    for (int t = 0; t < T; t++) EXPECT(k2c_decode(&g.s, ids[t], dl + (size_t)t * V, NULL) == 0, "%s", k2c_errmsg());
    e = rel_err(dl, lg);
    EXPECT(e < 1e-4f, "%s [%s] decode logits rel err %g", name, simd_name(), e);
    /* prefill of a prefix, then decode the rest: the two paths share one cache */
    k2c_state_reset(&g.s);
    int half = T / 2;
    EXPECT(k2c_prefill(&g.s, ids, half, NULL, NULL, NULL) == 0, "%s", k2c_errmsg());
    for (int t = half; t < T; t++) EXPECT(k2c_decode(&g.s, ids[t], dl + (size_t)t * V, NULL) == 0, "%s", k2c_errmsg());
    float m2 = max_abs(lg->data, (size_t)lg->numel), e2 = 0;
    for (size_t i = (size_t)half * V; i < (size_t)T * V; i++) e2 = (float)check_worse(e2, fabsf(dl[i] - ((const float *)lg->data)[i]));
    EXPECT(e2 / m2 < 1e-4f, "%s mixed prefill+decode rel err %g", name, e2 / m2);
    /* a chunked prefill continuing the cache equals one prefill, in either attention form */
    for (int path = 0; path < 3; path++) {
        g.m.prefill_path = path;
        k2c_state_reset(&g.s);
        EXPECT(k2c_prefill(&g.s, ids, half, NULL, NULL, NULL) == 0 && k2c_prefill(&g.s, ids + half, T - half, dl, NULL, NULL) == 0, "chunked");
        e2 = 0;
        for (size_t i = 0; i < (size_t)(T - half) * V; i++) e2 = (float)check_worse(e2, fabsf(dl[i] - ((const float *)lg->data)[(size_t)half * V + i]));
        EXPECT(e2 / m2 < 1e-4f, "%s chunked prefill (form %d) rel err %g", name, path, e2 / m2);
    }
    g.m.prefill_path = 0;
    /* batched decode: state a decodes from the start, state b joins after a prefill of half; each row
     * of the batch must equal the reference at its own position */
    {
        k2c_state a, b;
        k2c_state_init(&a, &g.m, 64);
        k2c_state_init(&b, &g.m, 64);
        EXPECT(k2c_prefill(&b, ids, half, NULL, NULL, NULL) == 0, "%s", k2c_errmsg());
        float *bl = malloc(2 * (size_t)V * sizeof *bl), worst = 0;
        for (int t = 0; t < T; t++) {
            k2c_state *both[2] = {&a, &b};
            int two[2] = {ids[t], ids[half + t < T ? half + t : 0]};
            int n = half + t < T ? 2 : 1;
            EXPECT(k2c_decode_batch(both, two, n, bl) == 0, "%s", k2c_errmsg());
            for (int i = 0; i < n; i++) {
                int pos = i == 0 ? t : half + t;
                for (int v = 0; v < V; v++)
                    worst = (float)check_worse(worst, fabsf(bl[(size_t)i * V + v] - ((const float *)lg->data)[(size_t)pos * V + v]));
            }
        }
        EXPECT(worst / m2 < 1e-4f, "%s batched decode rel err %g", name, worst / m2);
        k2c_state *dup[2] = {&a, &a};
        int dd[2] = {1, 1};
        EXPECT(k2c_decode_batch(dup, dd, 2, bl) != 0, "duplicate state accepted");
        free(bl);
        k2c_state_free(&a);
        k2c_state_free(&b);
    }
    /* a server step: state a decodes token by token and state c from the middle, while state p's prompt goes in
     * by chunks of 3 in the same forward pass (k2c_decode_batch_prefill); every decode row and p's chunk ends
     * must equal the reference at their own positions */
    {
        k2c_state a, c2, p;
        k2c_state_init(&a, &g.m, 64);
        k2c_state_init(&c2, &g.m, 64);
        k2c_state_init(&p, &g.m, 64);
        EXPECT(k2c_prefill(&c2, ids, half, NULL, NULL, NULL) == 0, "%s", k2c_errmsg());
        float *bl = malloc(2 * (size_t)V * sizeof *bl), *pl = malloc((size_t)V * sizeof *pl), worst = 0;
        int pp = 0, chunks = 0;
        for (int t = 0; t < T; t++) {
            k2c_state *two[2] = {&a, &c2};
            int dids[2] = {ids[t], ids[half + t < T ? half + t : 0]}, nd = half + t < T ? 2 : 1;
            int take = T - pp < 3 ? T - pp : 3;
            EXPECT(k2c_decode_batch_prefill(two, dids, nd, &p, ids + pp, take, bl, take ? pl : NULL) == 0, "%s", k2c_errmsg());
            for (int i = 0; i < nd; i++)
                for (int v = 0; v < V; v++)
                    worst = (float)check_worse(worst, fabsf(bl[(size_t)i * V + v] - ((const float *)lg->data)[(size_t)(i ? half + t : t) * V + v]));
            if (take) {
                pp += take;
                chunks++;
                for (int v = 0; v < V; v++) worst = (float)check_worse(worst, fabsf(pl[v] - ((const float *)lg->data)[(size_t)(pp - 1) * V + v]));
            }
        }
        EXPECT(a.pos == T && c2.pos == T && p.pos == T && chunks == (T + 2) / 3, "positions %d, %d and %d after %d steps", a.pos, c2.pos, p.pos, T);
        EXPECT(worst / m2 < 1e-4f, "%s decode batched with a prefill chunk rel err %g", name, worst / m2);
        k2c_state_reset(&a);
        k2c_state *self[1] = {&a};
        EXPECT(k2c_decode_batch_prefill(self, ids, 1, &a, ids, 2, bl, NULL) != 0 && a.pos == 0, "a state both decoding and prefilling accepted");
        free(bl);
        free(pl);
        k2c_state_free(&a);
        k2c_state_free(&c2);
        k2c_state_free(&p);
    }
    /* ids out of range and a full context are errors, not crashes */
    int bad_id = V;
    EXPECT(k2c_decode(&g.s, bad_id, dl, NULL) != 0 && strstr(k2c_errmsg(), "out of range"), "bad id accepted");
    g.s.pos = g.s.max_ctx;
    EXPECT(k2c_decode(&g.s, 1, dl, NULL) != 0 && strstr(k2c_errmsg(), "context full"), "full context accepted");
    free(dl);
    golden_close(&g);
}

/* F16 weights (no golden case ships them): the f32 case rewritten with every matrix in F16 must give the
 * reference logits up to F16 rounding of the weights, and prefill and decode must agree tightly. */
static void f16_weights(void) {
    const char *src = "tests/data/golden/k2-tiny-f32", *dst = "build/tests/golden_f16";
    k2c_safetensors st;
    if (k2c_st_open(&st, src) != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    mkdir(dst, 0755);
    k2c_tensor *ts = malloc((size_t)st.ntensors * sizeof *ts);
    uint16_t **bufs = calloc((size_t)st.ntensors, sizeof *bufs);
    int n16 = 0;
    for (int i = 0; i < st.ntensors; i++) {
        ts[i] = st.tensors[i];
        if (ts[i].ndim != 2 || ts[i].dtype != K2C_F32) continue;
        bufs[i] = malloc((size_t)ts[i].numel * 2);
        for (int64_t j = 0; j < ts[i].numel; j++) bufs[i][j] = k2c_f32_to_f16(((const float *)ts[i].data)[j]);
        k2c_tensor_set_shape(&ts[i], K2C_F16, 2, ts[i].shape);
        ts[i].data = bufs[i];
        n16++;
    }
    char p[256];
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    EXPECT(n16 > 20 && k2c_st_write(p, st.ntensors, ts, NULL, NULL) == 0, "%d f16 tensors: %s", n16, k2c_errmsg());
    for (int i = 0; i < st.ntensors; i++) free(bufs[i]);
    free(bufs); free(ts);
    k2c_st_close(&st);
    size_t cn;
    char *cfg = k2c_read_file("tests/data/golden/k2-tiny-f32/config.json", &cn);
    snprintf(p, sizeof p, "%s/config.json", dst);
    k2c_write_file_atomic(p, cfg, cn);
    free(cfg);
    k2c_model m;
    k2c_safetensors ref;
    if (k2c_model_load_opts(&m, dst, &g_opts) != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    EXPECT(m.layers[1].exp_up[0].fmt == K2C_FMT_F16 && m.head.fmt == K2C_FMT_F16, "f16 formats");
    k2c_st_open(&ref, "tests/data/golden/k2-tiny-f32/expected.safetensors");
    const k2c_tensor *ids_t = k2c_st_find(&ref, "input_ids"), *lg = k2c_st_find(&ref, "logits");
    int T = (int)ids_t->numel, V = m.cfg.vocab_size;
    int *ids = malloc(T * sizeof *ids);
    for (int t = 0; t < T; t++) ids[t] = (int)k2c_elem_to_f32(ids_t->dtype, ids_t->data, t);
    float *a = malloc((size_t)T * V * sizeof *a), *b = malloc((size_t)T * V * sizeof *b);
    k2c_state s;
    k2c_state_init(&s, &m, T);
    EXPECT(k2c_prefill(&s, ids, T, a, NULL, NULL) == 0, "%s", k2c_errmsg());
    k2c_state_reset(&s);
    for (int t = 0; t < T; t++) k2c_decode(&s, ids[t], b + (size_t)t * V, NULL);
    float e = rel_err(a, lg), mx = max_abs(a, (size_t)T * V), d = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) d = (float)check_worse(d, fabsf(a[i] - b[i]));
    EXPECT(e < 1e-2f, "f16 weights vs reference: rel err %g", e);
    EXPECT(d / mx < 1e-4f, "f16 prefill vs decode rel err %g", d / mx);
    free(ids); free(a); free(b);
    k2c_state_free(&s);
    k2c_st_close(&ref);
    k2c_model_free(&m);
}

/* k2-long: YaRN (factor 32 over a 128-token original window) at positions up to 1,200, three layers. The
 * cache holds far more positions than any chunk, so every attention path meets a long history: prefill,
 * decode, prefill of the first 700 tokens then decode, and chunked prefills of 1, 7, 64 and all tokens. */
static float rel_err_rows(const float *a, const k2c_tensor *ref, size_t from, size_t n) {
    float m = max_abs(ref->data, (size_t)ref->numel), e = 0;
    for (size_t i = 0; i < n; i++) e = (float)check_worse(e, fabsf(a[i] - ((const float *)ref->data)[from + i]));
    return e / (m > 0 ? m : 1);
}

static void long_case(void) {
    const char *dir = "tests/data/golden/k2-long";
    char exp[300];
    snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
    k2c_model m;
    k2c_safetensors ref;
    if (k2c_model_load_opts(&m, dir, &g_opts) != 0) { EXPECT(0, "%s: load: %s", dir, k2c_errmsg()); return; }
    if (k2c_st_open(&ref, exp) != 0) { EXPECT(0, "%s", k2c_errmsg()); k2c_model_free(&m); return; }
    const k2c_config *c = &m.cfg;
    const k2c_tensor *ids_t = k2c_st_find(&ref, "input_ids"), *lg = k2c_st_find(&ref, "logits");
    EXPECT(ids_t && lg && c->rope_yarn && c->rope_original_max == 128, "k2-long reference");
    if (!ids_t || !lg) { k2c_st_close(&ref); k2c_model_free(&m); return; }
    int T = (int)ids_t->numel, V = c->vocab_size, L = c->num_hidden_layers, D = c->hidden_size, H = c->num_attention_heads;
    int K = c->num_experts_per_tok;
    EXPECT(T >= 1200, "k2-long holds %d positions", T);
    int *ids = malloc((size_t)T * sizeof *ids);
    for (int t = 0; t < T; t++) ids[t] = (int)k2c_elem_to_f32(ids_t->dtype, ids_t->data, t);
    float *lo = malloc((size_t)T * V * sizeof *lo);
    k2c_trace tr = {malloc((size_t)L * T * D * sizeof(float)), malloc((size_t)L * T * K * sizeof(int)),
                    malloc((size_t)L * H * sizeof(float))};
    for (int i = 0; i < L * H; i++) tr.attn_max[i] = -INFINITY;
    k2c_state s;
    EXPECT(k2c_state_init(&s, &m, T) == 0, "%s", k2c_errmsg());
    /* one prefill of the whole prompt, with its trace */
    EXPECT(k2c_prefill(&s, ids, T, lo, NULL, &tr) == 0, "%s", k2c_errmsg());
    float e = rel_err(lo, lg);
    EXPECT(e < 1e-4f, "k2-long [%s] prefill logits rel err %g", simd_name(), e);
    char tn[64];
    for (int l = 0; l < L; l++) {
        snprintf(tn, sizeof tn, "hidden.%d", l);
        const k2c_tensor *h = k2c_st_find(&ref, tn);
        EXPECT(h, "reference lacks %s", tn);
        if (h) { float he = rel_err(tr.hidden + (size_t)l * T * D, h); EXPECT(he < 1e-4f, "k2-long %s rel err %g", tn, he); }
        snprintf(tn, sizeof tn, "attn_max_logit.%d", l);
        const k2c_tensor *am = k2c_st_find(&ref, tn);
        EXPECT(am, "reference lacks %s", tn);
        if (am) { float ae = rel_err(tr.attn_max + (size_t)l * H, am); EXPECT(ae < 1e-4f, "k2-long %s rel err %g", tn, ae); }
        snprintf(tn, sizeof tn, "experts.%d", l);
        const k2c_tensor *ex = k2c_st_find(&ref, tn);
        if (ex) {
            int bad = 0;
            for (int i = 0; i < T * K; i++) bad += tr.experts[(size_t)l * T * K + i] != (int)k2c_elem_to_f32(ex->dtype, ex->data, i);
            EXPECT(bad == 0, "k2-long %s: %d mismatches", tn, bad);
        } else EXPECT(l < c->first_k_dense_replace, "reference lacks %s", tn);
    }
    /* decode token by token */
    k2c_state_reset(&s);
    for (int t = 0; t < T; t++) EXPECT(k2c_decode(&s, ids[t], lo + (size_t)t * V, NULL) == 0, "%s", k2c_errmsg());
    e = rel_err(lo, lg);
    EXPECT(e < 1e-4f, "k2-long [%s] decode logits rel err %g", simd_name(), e);
    /* prefill of the first 700, decode of the rest */
    int P = 700;
    k2c_state_reset(&s);
    EXPECT(k2c_prefill(&s, ids, P, lo, NULL, NULL) == 0, "%s", k2c_errmsg());
    for (int t = P; t < T; t++) EXPECT(k2c_decode(&s, ids[t], lo + (size_t)t * V, NULL) == 0, "%s", k2c_errmsg());
    e = rel_err(lo, lg);
    EXPECT(e < 1e-4f, "k2-long [%s] prefill %d + decode rel err %g", simd_name(), P, e);
    /* chunked prefills: every chunk continues the cache of the chunks before it, in the form the cost model
     * picks and in each form forced (absorbed over the latent cache, expanded keys/values) */
    const int chunks[] = {1, 7, 7, 7, 64, 64, 64, T, T}, paths[] = {0, 0, 1, 2, 0, 1, 2, 1, 2};
    const char *pname[] = {"chosen", "absorbed", "expanded"};
    float worst = 0;
    for (int ci = 0; ci < 9; ci++) {
        k2c_state_reset(&s);
        m.prefill_path = paths[ci];
        memset(lo, 0, (size_t)T * V * sizeof *lo);
        for (int t = 0; t < T; t += chunks[ci]) {
            int n = T - t < chunks[ci] ? T - t : chunks[ci];
            EXPECT(k2c_prefill(&s, ids + t, n, lo + (size_t)t * V, NULL, NULL) == 0, "%s", k2c_errmsg());
        }
        e = rel_err_rows(lo, lg, 0, (size_t)T * V);
        worst = (float)check_worse(worst, e);
        EXPECT(e < 1e-4f, "k2-long [%s] prefill in chunks of %d (%s) rel err %g", simd_name(), chunks[ci], pname[paths[ci]], e);
    }
    m.prefill_path = 0;
    /* the model's ubatch splits one k2c_prefill call: logits, every layer's hidden states and experts land at
     * their own rows */
    k2c_state_reset(&s);
    k2c_model_set_ubatch(&m, 100);
    memset(lo, 0, (size_t)T * V * sizeof *lo);
    memset(tr.hidden, 0, (size_t)L * T * D * sizeof(float));
    memset(tr.experts, 0, (size_t)L * T * K * sizeof(int));
    EXPECT(k2c_prefill(&s, ids, T, lo, NULL, &tr) == 0 && s.pos == T, "%s", k2c_errmsg());
    e = rel_err(lo, lg);
    EXPECT(e < 1e-4f, "k2-long [%s] prefill in ubatches of 100 rel err %g", simd_name(), e);
    for (int l = 0; l < L; l++) {
        snprintf(tn, sizeof tn, "hidden.%d", l);
        const k2c_tensor *h = k2c_st_find(&ref, tn);
        if (h) { float he = rel_err(tr.hidden + (size_t)l * T * D, h); EXPECT(he < 1e-4f, "k2-long ubatch %s rel err %g", tn, he); }
        snprintf(tn, sizeof tn, "experts.%d", l);
        const k2c_tensor *ex = k2c_st_find(&ref, tn);
        int bad = 0;
        for (int i = 0; ex && i < T * K; i++) bad += tr.experts[(size_t)l * T * K + i] != (int)k2c_elem_to_f32(ex->dtype, ex->data, i);
        EXPECT(bad == 0, "k2-long ubatch %s: %d mismatches", tn, bad);
    }
    /* a prefill that does not fit fails whole and leaves the cache as it was */
    k2c_state_reset(&s);
    EXPECT(k2c_prefill(&s, ids, 10, NULL, NULL, NULL) == 0, "%s", k2c_errmsg());
    EXPECT(k2c_prefill(&s, ids, T, NULL, NULL, NULL) != 0 && strstr(k2c_errmsg(), "context full") && s.pos == 10, "overflow");
    k2c_model_set_ubatch(&m, 0);
    printf("  k2-long [%s]: chunked prefills (1, 7, 64, %d; both forms) worst rel err %.3g\n", simd_name(), T, worst);
    k2c_state_free(&s);
    free(ids); free(lo); free(tr.hidden); free(tr.experts); free(tr.attn_max);
    k2c_st_close(&ref);
    k2c_model_free(&m);
}

static int cur;
static void one_case(void) { check_case(CASES[cur]); }

/* The BF16 checkpoint with BF16-rounded prompt inputs (K2C_PROMPT_PRECISION=bf16 on AVX512-BF16 CPUs): every matmul input
 * of the prompt keeps 8 bits of mantissa, so hidden states move by about 2^-8 of their range, as in a BF16
 * reference run. Where that flips a near-tie in the router, the token's result differs by more, as it would
 * between any two BF16 implementations; the check holds tokens whose experts all match to BF16 error and
 * allows few flips. */
static void bf16_prompt(void) {
    g_opts = (k2c_model_opts){.simd = "avx512", .bf16_prompt = 1};
    golden_run g;
    int rc = golden_open(&g, "tests/data/golden/k2-tiny-bf16-sharded");
    g_opts = (k2c_model_opts){0};
    if (rc) return;
    const k2c_tensor *lg = g.lg;
    int T = g.T, V = g.V, L = g.L, K = g.K;
    k2c_trace tr = g.tr;
    float *logits = g.logits;
    int *same = malloc(T * sizeof *same);
    for (int t = 0; t < T; t++) same[t] = 1;
    char tn[64];
    int flips = 0;
    for (int l = 0; l < L; l++) {
        snprintf(tn, sizeof tn, "experts.%d", l);
        const k2c_tensor *ex = k2c_st_find(&g.ref, tn);
        for (int t = 0; ex && t < T; t++)
            for (int k = 0; k < K; k++)
                if (tr.experts[((size_t)l * T + t) * K + k] != (int)k2c_elem_to_f32(ex->dtype, ex->data, (size_t)t * K + k)) {
                    flips += same[t];
                    same[t] = 0;
                }
    }
    float mx = max_abs(lg->data, (size_t)lg->numel), e = 0, e_first = 0;
    for (int t = 0; t < T; t++)
        for (int v = 0; same[t] && v < V; v++)
            e = (float)check_worse(e, fabsf(logits[(size_t)t * V + v] - ((const float *)lg->data)[(size_t)t * V + v]));
    const k2c_tensor *h0 = k2c_st_find(&g.ref, "hidden.0");
    EXPECT(h0, "reference lacks hidden.0");
    if (h0) e_first = rel_err(tr.hidden, h0);
    printf("  bf16 prompt: hidden.0 rel err %.3g; %d of %d tokens routed differently somewhere; logits of the rest rel err %.3g\n",
           e_first, flips, T, e / mx);
    EXPECT(e_first > 1e-5f && e_first < 1e-2f, "hidden.0 rel err %g (BF16 rounding expected)", e_first);
    EXPECT(flips <= T / 8, "%d of %d tokens routed differently", flips, T);
    EXPECT(e / mx < 3e-2f, "logits rel err %g on tokens routed as the reference", e / mx);
    free(same);
    golden_close(&g);
}


/* A BF16 or q8_0 latent cache: in every attention form (prefill absorbed and expanded, in chunks; decode), the
 * same logits as an fp32 cache holding the same rounded rows (the conversion back to fp32 is exact, so only
 * summation order could differ), and near the golden logits (the rounding's own error, printed: it decides the
 * default cache type). Then the server's prefix copy between two states of that format, across a page. */
static int g_cache_type;
static void cache_format(void) {
    static const char *cases[] = {"k2-tiny-f32", "moonlight-tiny", "k2-long"};
    const char *tn = g_cache_type == K2C_CACHE_BF16 ? "BF16" : "q8_0";
    for (int ci = 0; ci < 3; ci++) {
        char dir[256], exp[300];
        snprintf(dir, sizeof dir, "tests/data/golden/%s", cases[ci]);
        snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
        k2c_model_opts ob = g_opts, of = g_opts;
        ob.cache_type = g_cache_type;
        k2c_model mb, mf;
        k2c_safetensors ref;
        if (k2c_model_load_opts(&mb, dir, &ob) != 0 || k2c_model_load_opts(&mf, dir, &of) != 0 || k2c_st_open(&ref, exp) != 0) {
            EXPECT(0, "%s: %s", dir, k2c_errmsg());
            return;
        }
        const k2c_tensor *ids_t = k2c_st_find(&ref, "input_ids"), *lg = k2c_st_find(&ref, "logits");
        int T = (int)ids_t->numel, V = mb.cfg.vocab_size;
        /* under emulation (tests/test_arm64.sh) k2-long's first 320 positions (past one page of 256): its
         * 1200 made these two tests most of the emulated run, and golden_k2-long checks all 1200 there */
        if (ci == 2 && getenv("K2C_TEST_EMULATED") && T > 320) T = 320;
        int half = T / 2;
        int *ids = malloc(T * sizeof *ids);
        for (int t = 0; t < T; t++) ids[t] = (int)k2c_elem_to_f32(ids_t->dtype, ids_t->data, t);
        float *a = malloc((size_t)T * V * sizeof *a), *b = malloc((size_t)T * V * sizeof *b), *c = malloc((size_t)T * V * sizeof *c);
        double worst = 0, gold = 0, m = max_abs(lg->data, (size_t)lg->numel);
        k2c_state sb, sf;
        EXPECT(k2c_state_init(&sb, &mb, T + 1) == 0 && k2c_state_init(&sf, &mf, T + 1) == 0, "%s", k2c_errmsg());
        sf.cache_round = g_cache_type;
        size_t want = g_cache_type == K2C_CACHE_BF16 ? k2c_state_row_bytes(&sf) / 2
                                                     : k2c_state_row_bytes(&sf) / 4 + 2 * (size_t)((k2c_state_row_bytes(&sf) / 4 + 31) / 32);
        EXPECT(sb.cache_type == g_cache_type && k2c_state_row_bytes(&sb) == want, "%s rows: %zu bytes, want %zu", tn,
               k2c_state_row_bytes(&sb), want);
        /* the exact comparison in exact mode; then a BF16 cache in normal mode, which takes the AVX512-BF16 dot
         * products where the CPU has them (queries and softmax weights rounded to BF16): its own distance */
        int fast = 0;
        double fastd = 0;
        for (int path = 0; path < 4; path++) {       /* 0-2: prefill form auto/absorbed/expanded in two chunks; 3: decode */
            mb.prefill_path = mf.prefill_path = path < 3 ? path : 0;
            for (int pass = 0; pass < (g_cache_type == K2C_CACHE_BF16 ? 2 : 1); pass++) {
                mb.cx.exact = pass == 0;
                if (pass) fast = k2c_attn_bf16_ok(&mb);
                float *out = pass ? c : a;
                k2c_state_reset(&sb);
                if (!pass) k2c_state_reset(&sf);
                int rc = 0;
                if (path < 3) {
                    rc |= k2c_prefill(&sb, ids, half, NULL, NULL, NULL) | k2c_prefill(&sb, ids + half, T - half, out + (size_t)half * V, NULL, NULL);
                    if (!pass) rc |= k2c_prefill(&sf, ids, half, NULL, NULL, NULL) | k2c_prefill(&sf, ids + half, T - half, b + (size_t)half * V, NULL, NULL);
                } else {
                    for (int t = 0; t < T; t++) {
                        rc |= k2c_decode(&sb, ids[t], out + (size_t)t * V, NULL);
                        if (!pass) rc |= k2c_decode(&sf, ids[t], b + (size_t)t * V, NULL);
                    }
                }
                EXPECT(rc == 0, "%s", k2c_errmsg());
            }
            for (size_t i = (size_t)(path < 3 ? half : 0) * V; i < (size_t)T * V; i++) {
                worst = check_worse(worst, fabs(a[i] - b[i]) / m);
                gold = check_worse(gold, fabs(a[i] - ((const float *)lg->data)[i]) / m);
                if (g_cache_type == K2C_CACHE_BF16) fastd = check_worse(fastd, fabs(c[i] - a[i]) / m);
            }
        }
        mb.cx.exact = 0;
        printf("  %s [%s] %s cache: %.1e x max|logit| from the rounded fp32 cache, %.1e from golden", cases[ci], mb.cx.k->name,
               tn, worst, gold);
        if (g_cache_type == K2C_CACHE_BF16) printf("; not exact (%s): %.1e from exact", fast ? "AVX512-BF16 dot products" : "same path", fastd);
        printf("\n");
        if (g_cache_type == K2C_CACHE_BF16 && !fast) EXPECT(fastd == 0, "%s: the same path differs by %g", cases[ci], fastd);
        if (g_cache_type == K2C_CACHE_BF16 && fast && ci < 2) EXPECT(fastd > 0 && fastd < 1e-2, "%s: the BF16 dot products differ by %g", cases[ci], fastd);
        EXPECT(worst < 1e-5, "%s %s cache vs rounded fp32 cache: rel err %g", cases[ci], tn, worst);
        /* k2-long's random weights route its 1200 positions through experts whose choice the rounding flips
         * here and there (2.5e-1 measured), so the bound holds only for the short cases; the exact check above
         * covers the long one */
        if (ci < 2) EXPECT(gold < (g_cache_type == K2C_CACHE_BF16 ? 1e-2 : 3e-2), "%s %s cache vs golden: rel err %g", cases[ci], tn, gold);
        /* prefix reuse: sb holds all T positions (decode above); its first P rows copied into a fresh state that
         * then prefills the rest gives the logits of sb's own prefill of the rest, bit for bit */
        if (ci == 2) {
            int P = T / 2 + 3 > 256 ? T / 2 + 3 : 259;   /* k2-long: past the first page of 256 */
            k2c_state sc;
            EXPECT(k2c_state_init(&sc, &mb, T + 1) == 0, "%s", k2c_errmsg());
            EXPECT(k2c_state_copy_prefix(&sc, &sf, P) != 0, "a prefix copy between formats must fail");
            EXPECT(k2c_state_copy_prefix(&sc, &sb, T + 1) != 0, "a prefix copy beyond what the source holds must fail");
            EXPECT(k2c_state_copy_prefix(&sc, &sb, P) == 0, "%s", k2c_errmsg());
            sc.pos = P;
            EXPECT(k2c_state_truncate(&sb, P) == 0, "%s", k2c_errmsg());
            mb.prefill_path = 1;
            EXPECT(k2c_prefill(&sc, ids + P, T - P, a, NULL, NULL) == 0 && k2c_prefill(&sb, ids + P, T - P, b, NULL, NULL) == 0,
                   "%s", k2c_errmsg());
            EXPECT(!memcmp(a, b, (size_t)(T - P) * V * sizeof *a), "%s: logits after a copied prefix differ", tn);
            EXPECT(k2c_state_cache_bytes(&sc) == k2c_cache_bytes(&mb.cfg, g_cache_type, T) &&
                   k2c_state_cache_bytes(&sc) >= (size_t)T * mb.cfg.num_hidden_layers * k2c_state_row_bytes(&sc),
                   "%zu cache bytes held at %d positions", k2c_state_cache_bytes(&sc), T);
            k2c_state_free(&sc);
            /* and an fp32 cache (of rounded rows: cache_round must match too) */
            k2c_state sd;
            EXPECT(k2c_state_init(&sd, &mf, T + 1) == 0, "%s", k2c_errmsg());
            EXPECT(k2c_state_copy_prefix(&sd, &sf, P) != 0, "a prefix copy between rounded and plain fp32 caches must fail");
            sd.cache_round = g_cache_type;
            mf.prefill_path = 1;
            EXPECT(k2c_state_copy_prefix(&sd, &sf, P) == 0 && k2c_state_truncate(&sf, P) == 0, "%s", k2c_errmsg());
            sd.pos = P;
            EXPECT(k2c_prefill(&sd, ids + P, T - P, a, NULL, NULL) == 0 && k2c_prefill(&sf, ids + P, T - P, b, NULL, NULL) == 0,
                   "%s", k2c_errmsg());
            EXPECT(!memcmp(a, b, (size_t)(T - P) * V * sizeof *a), "fp32: logits after a copied prefix differ");
            mf.prefill_path = 0;
            k2c_state_free(&sd);
        }
        mb.prefill_path = 0;
        k2c_state_free(&sb); k2c_state_free(&sf);
        k2c_model_free(&mb); k2c_model_free(&mf); k2c_st_close(&ref);
        free(ids); free(a); free(b); free(c);
    }
}
static void bf16_cache(void) { g_cache_type = K2C_CACHE_BF16; cache_format(); }
static void q8_cache(void) { g_cache_type = K2C_CACHE_Q8_0; cache_format(); }

int main(void) {
    char name[128];
        /* the golden checks hold the fp32 paths to 1e-4; the BF16-rounded prompt path has its own check below */
    const char *no_bf16 = !k2c_cpu_has_avx512bf16() ? "this CPU lacks AVX512-BF16" : level_missing("avx512");
    if (!no_bf16) run_test("golden_bf16_prompt_avx512bf16", bf16_prompt);
    else skip_test("golden_bf16_prompt_avx512bf16", no_bf16);
    for (int lv = 0; lv < SIMD_NLEVELS; lv++) {
        const char *why = level_missing(SIMD_LEVELS[lv]);
        g_opts = (k2c_model_opts){.simd = SIMD_LEVELS[lv]};
        for (cur = 0; cur < 6; cur++) {
            snprintf(name, sizeof name, "golden_%s_%s", CASES[cur], SIMD_LEVELS[lv]);
            if (why) skip_test(name, why); else run_test(name, one_case);
        }
        snprintf(name, sizeof name, "golden_k2-long_%s", SIMD_LEVELS[lv]);
        if (why) skip_test(name, why); else run_test(name, long_case);
        snprintf(name, sizeof name, "golden_f16_weights_%s", SIMD_LEVELS[lv]);
        if (why) skip_test(name, why); else run_test(name, f16_weights);
        snprintf(name, sizeof name, "golden_bf16_cache_%s", SIMD_LEVELS[lv]);
        if (why) skip_test(name, why); else run_test(name, bf16_cache);
        snprintf(name, sizeof name, "golden_q8_0_cache_%s", SIMD_LEVELS[lv]);
        if (why) skip_test(name, why); else run_test(name, q8_cache);
    }
    return check_exit();
}
