/* Multi-head Latent Attention (spec section 4), two paths that must agree:
 *
 * prefill (expanded): every key/value is rebuilt from the latent cache, kv = W_kvb RMSNorm(c), and
 *   attention is ordinary causal softmax attention per head. Used for prompts, where the T x T work
 *   dominates and the expansion is amortized.
 * decode (absorbed): only c [r] and the roped k_pe [dr] are cached per token. W_kvb is folded into the
 *   query and the output: q'_h = W_kvb[h, k rows]^T q_nope_h, score = q'_h . c_t + q_pe_h . k_pe_t,
 *   o_h = W_kvb[h, v rows] (sum_t p_t c_t). Reads 576 floats per past token for K2 instead of 64 heads x 256.
 *
 * The latent cache row of token t in layer L is cache[(L * max_ctx + t) * (r + dr)]: c then k_pe. */
#include "model/model.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define QK_NORM_EPS 1e-6f   /* the reference builds q_a_layernorm and kv_a_layernorm with eps 1e-6 */

/* Attention's inner products (192 to 576 terms): vectorized with 16 partial sums, since one sequential
 * chain of multiply-adds waits on its previous result every time (the strict C order is 8x slower). */
static inline float dot(const float *a, const float *b, int n) {
    float s = 0;
    #pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void k2c_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) y[i] = w[i] * (x[i] * inv);
}

static float *cache_row(const k2c_state *s, int layer, int t) {
    const k2c_config *c = &s->m->cfg;
    return s->cache + ((size_t)layer * s->max_ctx + t) * (size_t)(c->kv_lora_rank + c->qk_rope_head_dim);
}

/* Q [T, H*(dn+dr)] and the new cache rows; q_pe roped in place. Token t goes to state ss[t] at position
 * ss[t]->pos + pos_off[t]: a prefill passes one state T times with offsets 0..T-1, a batched decode n
 * different states with offset 0. */
static int project_qkv(k2c_state *const *ss, const int *pos_off, int layer, const float *XN, int T, float *Q) {
    const k2c_model *m = ss[0]->m;
    const k2c_config *c = &m->cfg;
    const k2c_layer *ly = &m->layers[layer];
    int H = c->num_attention_heads, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, r = c->kv_lora_rank;
    int qd = dn + dr, ql = c->q_lora_rank;
    float *tmp = malloc(((size_t)T * (size_t)((ql > r + dr ? ql : r + dr)) + (size_t)ql) * sizeof *tmp);
    if (!tmp) { k2c_seterr("out of memory"); return -1; }
    float *kva = tmp;
    if (T == 1) {   /* decode: both projections of x in one parallel loop */
        kva = tmp + (ql > 0 ? ql : 0);
        k2c_matvec_job j[2] = {{ql ? &ly->q_a : &ly->q, XN, ql ? tmp : Q}, {&ly->kv_a, XN, kva}};
        k2c_matvec_batch(j, 2);
        if (ql) {
            k2c_rmsnorm(tmp, tmp, ly->q_a_norm, ql, QK_NORM_EPS);
            k2c_matvec(&ly->q_b, tmp, Q);
        }
    } else {
        int bad = 0;
        if (ql) {
            bad |= k2c_matmul(&ly->q_a, XN, T, tmp);
            for (int t = 0; t < T; t++) k2c_rmsnorm(tmp + (size_t)t * ql, tmp + (size_t)t * ql, ly->q_a_norm, ql, QK_NORM_EPS);
            bad |= k2c_matmul(&ly->q_b, tmp, T, Q);
        } else {
            bad |= k2c_matmul(&ly->q, XN, T, Q);
        }
        bad |= k2c_matmul(&ly->kv_a, XN, T, tmp);
        if (bad) { free(tmp); return -1; }
    }
    for (int t = 0; t < T; t++) {
        int pos = ss[t]->pos + pos_off[t];
        float *a = kva + (size_t)t * (r + dr), *row = cache_row(ss[t], layer, pos);
        k2c_rmsnorm(row, a, ly->kv_a_norm, r, QK_NORM_EPS);
        memcpy(row + r, a + r, (size_t)dr * sizeof *row);
        k2c_rope_apply(row + r, dr, pos, m->inv_freq, m->rope_mscale);
        for (int h = 0; h < H; h++) k2c_rope_apply(Q + (size_t)t * H * qd + (size_t)h * qd + dn, dr, pos, m->inv_freq, m->rope_mscale);
    }
    free(tmp);
    return 0;
}

/* softmax over p[0..n) in place; returns nothing, max already known */
static void softmax_inplace(float *p, int n, float mx) {
    float sum = 0;
    for (int i = 0; i < n; i++) sum += (p[i] = expf(p[i] - mx));
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) p[i] *= inv;
}

int k2c_mla_prefill(k2c_state *s, int layer, const float *XN, int T, float *out, float *attn_max) {
    const k2c_model *m = s->m;
    const k2c_config *c = &m->cfg;
    const k2c_layer *ly = &m->layers[layer];
    int H = c->num_attention_heads, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int r = c->kv_lora_rank, qd = dn + dr, kvd = dn + dv, N = s->pos + T;
    float *Q = malloc((size_t)T * H * qd * sizeof *Q);
    float *C = malloc((size_t)N * r * sizeof *C);
    float *KV = malloc((size_t)N * H * kvd * sizeof *KV);
    float *A = malloc((size_t)T * H * dv * sizeof *A);
    float *mx = malloc((size_t)T * H * sizeof *mx);
    k2c_state **ss = malloc((size_t)T * sizeof *ss);
    int *off = malloc((size_t)T * sizeof *off);
    int rc = -1;
    if (!Q || !C || !KV || !A || !mx || !ss || !off) { k2c_seterr("out of memory (prefill of %d tokens)", T); goto done; }
    for (int t = 0; t < T; t++) { ss[t] = s; off[t] = t; }
    if (project_qkv(ss, off, layer, XN, T, Q)) goto done;
    for (int t = 0; t < N; t++) memcpy(C + (size_t)t * r, cache_row(s, layer, t), (size_t)r * sizeof *C);
    if (k2c_matmul(&ly->kv_b, C, N, KV)) goto done;
    float scale = m->attn_scale;
    /* Waking a second thread costs more than a tiny model's whole attention. */
    int par = (double)T * H * N * (dn + dr + dv) > 2e5 && m->cx.nthreads > 1, failed = 0;
    #pragma omp parallel if (par) num_threads(m->cx.nthreads) reduction(| : failed)
    {
        float *p = malloc((size_t)N * sizeof *p);
        if (!p) failed = 1;
        /* head-major, so that one thread runs consecutive queries of one head and that head's keys and
         * values (N x (dn + dv) floats) stay in its L2 instead of streaming from memory for every query */
        #pragma omp for schedule(dynamic, 4)
        for (int ht = 0; ht < T * H; ht++) {
            if (!p) continue;
            int h = ht / T, t = ht % T, th = t * H + h, n = s->pos + t + 1;
            const float *q = Q + (size_t)t * H * qd + (size_t)h * qd;
            float best = -FLT_MAX;
            for (int j = 0; j < n; j++) {
                const float *kv = KV + (size_t)j * H * kvd + (size_t)h * kvd;
                p[j] = (dot(q, kv, dn) + dot(q + dn, cache_row(s, layer, j) + r, dr)) * scale;
                if (p[j] > best) best = p[j];
            }
            mx[th] = best;
            softmax_inplace(p, n, best);
            float *o = A + (size_t)t * H * dv + (size_t)h * dv;
            memset(o, 0, (size_t)dv * sizeof *o);
            for (int j = 0; j < n; j++) {
                const float *v = KV + (size_t)j * H * kvd + (size_t)h * kvd + dn;
                #pragma omp simd
                for (int i = 0; i < dv; i++) o[i] += p[j] * v[i];
            }
        }
        free(p);
    }
    if (failed) { k2c_seterr("out of memory (attention scores of %d positions per thread)", N); goto done; }
    if (attn_max)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) if (mx[t * H + h] > attn_max[h]) attn_max[h] = mx[t * H + h];
    if (k2c_matmul(&ly->o, A, T, out)) goto done;
    rc = 0;
done:
    free(Q); free(C); free(KV); free(A); free(mx); free(ss); free(off);
    return rc;
}

/* One new token for each of n states (n = 1 for plain decode): the projections run as one matmul over
 * the n tokens, so a batch of requests reads each weight once; attention is per state and head. */
int k2c_mla_decode_batch(k2c_state *const *ss, int n, int layer, const float *XN, float *out, float *attn_max) {
    const k2c_model *m = ss[0]->m;
    const k2c_config *c = &m->cfg;
    const k2c_layer *ly = &m->layers[layer];
    int H = c->num_attention_heads, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int r = c->kv_lora_rank, qd = dn + dr, kvd = dn + dv, maxn = 0;
    float *Q = malloc((size_t)n * H * qd * sizeof *Q);
    float *A = malloc((size_t)n * H * dv * sizeof *A);
    float *mx = malloc((size_t)n * H * sizeof *mx);
    int *off = calloc((size_t)n, sizeof *off);
    int rc = -1;
    if (!Q || !A || !mx || !off) { k2c_seterr("out of memory"); goto done; }
    if (project_qkv(ss, off, layer, XN, n, Q)) goto done;
    for (int i = 0; i < n; i++) if (ss[i]->pos + 1 > maxn) maxn = ss[i]->pos + 1;
    float scale = m->attn_scale;
    int par = (double)n * H * (dn * r + maxn * (2 * r + dr) + dv * r) > 2e5 && m->cx.nthreads > 1, failed = 0;
    #pragma omp parallel if (par) num_threads(m->cx.nthreads) reduction(| : failed)
    {
        float *qa = malloc((size_t)(3 * r + maxn) * sizeof *qa), *ctx = qa + r, *row_buf = ctx + r, *p = row_buf + r;
        if (!qa) failed = 1;   /* a few KB per thread */
        #pragma omp for schedule(dynamic, 1)
        for (int ih = 0; ih < n * H; ih++) {
            if (!qa) continue;
            int i = ih / H, h = ih % H, len = ss[i]->pos + 1;
            const float *q = Q + (size_t)i * H * qd + (size_t)h * qd;
            k2c_matvec_t_rows(&ly->kv_b, h * kvd, dn, q, qa, row_buf);          /* q'_h [r] */
            float best = -FLT_MAX;
            for (int j = 0; j < len; j++) {
                const float *row = cache_row(ss[i], layer, j);
                p[j] = (dot(qa, row, r) + dot(q + dn, row + r, dr)) * scale;
                if (p[j] > best) best = p[j];
            }
            mx[ih] = best;
            softmax_inplace(p, len, best);
            memset(ctx, 0, (size_t)r * sizeof *ctx);
            for (int j = 0; j < len; j++) {
                const float *row = cache_row(ss[i], layer, j);
                for (int k = 0; k < r; k++) ctx[k] += p[j] * row[k];
            }
            k2c_matvec_rows(&ly->kv_b, h * kvd + dn, dv, ctx, A + (size_t)ih * dv);   /* o_h [dv] */
        }
        free(qa);
    }
    if (failed) { k2c_seterr("out of memory (decode attention scratch)"); goto done; }
    if (attn_max)
        for (int i = 0; i < n; i++)
            for (int h = 0; h < H; h++) if (mx[i * H + h] > attn_max[h]) attn_max[h] = mx[i * H + h];
    if (k2c_matmul(&ly->o, A, n, out)) goto done;
    rc = 0;
done:
    free(Q); free(A); free(mx); free(off);
    return rc;
}
