/* Mixture-of-experts router (noaux_tc, spec section 4) and the SwiGLU expert.
 *   s = sigmoid(W_g x)            (softmax when scoring_func is softmax)
 *   choice = s + e_score_correction_bias      (selection only)
 *   groups (n_group > 1): group score = sum of its top-2 choice scores; keep topk_group groups
 *   top-k by choice; weights = unbiased s of the chosen, / sum (+1e-20) if norm_topk_prob, * routed_scaling_factor */
#include "model/model.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Router scores s [E] = sigmoid(logits), or softmax(logits) when scoring_func is softmax. */
void k2c_router_scores(const k2c_config *c, const float *logits, float *s) {
    int E = c->n_routed_experts;
    if (c->scoring_softmax) {
        float mx = -FLT_MAX, sum = 0;
        for (int e = 0; e < E; e++) mx = fmaxf(mx, logits[e]);
        for (int e = 0; e < E; e++) sum += (s[e] = expf(logits[e] - mx));
        for (int e = 0; e < E; e++) s[e] /= sum;
    } else {
        for (int e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-logits[e]));
    }
}

/* logits [E] -> idx [k] (descending choice score), w [k]; scores [E] receives s (may be NULL). */
void k2c_moe_route(const k2c_config *c, const float *logits, const float *bias, int *idx, float *w, float *scores) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok, G = c->n_group, per = E / G;
    float s_local[1024], choice_local[1024];
    float *s = scores ? scores : s_local, *choice = choice_local;
    k2c_router_scores(c, logits, s);
    for (int e = 0; e < E; e++) choice[e] = s[e] + (bias ? bias[e] : 0.0f);
    if (G > 1) {
        float gscore[1024];
        for (int g = 0; g < G; g++) {
            float a = -FLT_MAX, b = -FLT_MAX;       /* top two of the group */
            for (int e = g * per; e < (g + 1) * per; e++) {
                if (choice[e] > a) { b = a; a = choice[e]; }
                else if (choice[e] > b) b = choice[e];
            }
            gscore[g] = a + b;
        }
        int keep[1024] = {0};
        for (int n = 0; n < c->topk_group; n++) {
            int best = -1;
            for (int g = 0; g < G; g++)
                if (!keep[g] && (best < 0 || gscore[g] > gscore[best])) best = g;
            keep[best] = 1;
        }
        for (int g = 0; g < G; g++)
            if (!keep[g]) for (int e = g * per; e < (g + 1) * per; e++) choice[e] = -INFINITY;
    }
    for (int k = 0; k < K; k++) {          /* K is small (<= 16): selection beats a sort */
        int best = -1;
        for (int e = 0; e < E; e++) {
            if (choice[e] == -INFINITY && G > 1) continue;
            int taken = 0;
            for (int j = 0; j < k && !taken; j++) taken = idx[j] == e;
            if (!taken && (best < 0 || choice[e] > choice[best])) best = e;
        }
        idx[k] = best;
        w[k] = s[best];
    }
    float sum = 0;
    for (int k = 0; k < K; k++) sum += w[k];
    for (int k = 0; k < K; k++) {
        if (c->norm_topk_prob && K > 1) w[k] /= (sum + 1e-20f);
        w[k] *= c->routed_scaling_factor;
    }
}

#include <stdlib.h>

/* Y [T, D] = W_down (silu(W_gate X) * W_up X) for the rows of X [T, D]. */
static int swiglu(const k2c_linear *gate, const k2c_linear *up, const k2c_linear *down, const float *X, int T, float *Y) {
    int I = gate->rows;
    float *G = malloc((size_t)T * I * sizeof *G), *U = malloc((size_t)T * I * sizeof *U);
    if (!G || !U) { free(G); free(U); k2c_seterr("out of memory"); return -1; }
    if (T == 1) {
        k2c_matvec_job j[2] = {{gate, X, G}, {up, X, U}};
        k2c_matvec_batch(j, 2);
    } else if (k2c_matmul(gate, X, T, G) || k2c_matmul(up, X, T, U)) {
        free(G); free(U);
        return -1;
    }
    for (size_t i = 0; i < (size_t)T * I; i++) G[i] = G[i] / (1.0f + expf(-G[i])) * U[i];
    int rc = k2c_matmul(down, G, T, Y);
    free(G);
    free(U);
    return rc;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* One token through an MoE layer: the gate and up projections of the shared expert and every chosen
 * expert run in one parallel loop, then all down projections in another (two fork/joins per layer). */
static int ffn_decode(const k2c_model *m, const k2c_layer *ly, const float *x, float *out) {
    const k2c_config *c = &m->cfg;
    int D = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok, I = c->moe_intermediate_size;
    int IS = ly->gate.w ? ly->gate.rows : 0, idx[64];
    float logits[1024], w[64];
    float *buf = malloc(((size_t)3 * (K * I + IS) + (size_t)(K + 1) * D) * sizeof *buf);
    if (!buf) { k2c_seterr("out of memory"); return -1; }
    float *g = buf, *u = g + K * I + IS, *ys = u + K * I + IS;
    k2c_matvec(&ly->router, x, logits);
    k2c_moe_route(c, logits, ly->router_bias, idx, w, NULL);
    k2c_matvec_job jobs[130];
    int n = 0;
    for (int k = 0; k < K; k++) {
        jobs[n++] = (k2c_matvec_job){&ly->exp_gate[idx[k]], x, g + k * I};
        jobs[n++] = (k2c_matvec_job){&ly->exp_up[idx[k]], x, u + k * I};
    }
    if (IS) {
        jobs[n++] = (k2c_matvec_job){&ly->gate, x, g + K * I};
        jobs[n++] = (k2c_matvec_job){&ly->up, x, u + K * I};
    }
    k2c_matvec_batch(jobs, n);
    for (int i = 0; i < K * I + IS; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    n = 0;
    for (int k = 0; k < K; k++) jobs[n++] = (k2c_matvec_job){&ly->exp_down[idx[k]], g + k * I, ys + (size_t)k * D};
    if (IS) jobs[n++] = (k2c_matvec_job){&ly->down, g + K * I, ys + (size_t)K * D};
    k2c_matvec_batch(jobs, n);
    for (int d = 0; d < D; d++) {
        float acc = IS ? ys[(size_t)K * D + d] : 0.0f;
        for (int k = 0; k < K; k++) acc += w[k] * ys[(size_t)k * D + d];
        out[d] = acc;
    }
    (void)E;
    free(buf);
    return 0;
}

/* FFN of one layer over T tokens: dense SwiGLU, or routed experts + shared experts.
 * Tokens are grouped by expert so each chosen expert's weights are read once for all its tokens.
 * experts: optional [T, k] trace of the chosen experts, sorted ascending. */
int k2c_ffn_forward(const k2c_model *m, int layer, const float *XN, int T, float *out, int *experts) {
    const k2c_config *c = &m->cfg;
    const k2c_layer *ly = &m->layers[layer];
    int D = c->hidden_size;
    if (!ly->is_moe) return swiglu(&ly->gate, &ly->up, &ly->down, XN, T, out);
    if (T == 1 && !experts) return ffn_decode(m, ly, XN, out);
    int E = c->n_routed_experts, K = c->num_experts_per_tok, rc = -1;
    float *logits = malloc((size_t)T * E * sizeof *logits), *w = malloc((size_t)T * K * sizeof *w);
    int *idx = malloc((size_t)T * K * sizeof *idx), *count = calloc((size_t)E + 1, sizeof *count);
    int *order = malloc((size_t)T * K * sizeof *order);
    float *Xe = malloc((size_t)T * D * sizeof *Xe), *Ye = malloc((size_t)T * D * sizeof *Ye);
    if (!logits || !w || !idx || !count || !order || !Xe || !Ye) { k2c_seterr("out of memory"); goto done; }
    if (k2c_matmul_fp32(&ly->router, XN, T, logits)) goto done;
    for (int t = 0; t < T; t++) k2c_moe_route(c, logits + (size_t)t * E, ly->router_bias, idx + t * K, w + t * K, NULL);
    if (experts)
        for (int t = 0; t < T; t++) {
            memcpy(experts + t * K, idx + t * K, (size_t)K * sizeof *idx);
            qsort(experts + t * K, (size_t)K, sizeof *idx, cmp_int);
        }
    /* Counting sort of the (token, slot) pairs by expert. */
    for (int i = 0; i < T * K; i++) count[idx[i] + 1]++;
    for (int e = 0; e < E; e++) count[e + 1] += count[e];
    {
        int *fill = malloc((size_t)E * sizeof *fill);
        if (!fill) { k2c_seterr("out of memory"); goto done; }
        memcpy(fill, count, (size_t)E * sizeof *fill);
        for (int i = 0; i < T * K; i++) order[fill[idx[i]]++] = i;
        free(fill);
    }
    if (c->n_shared_experts) {
        if (swiglu(&ly->gate, &ly->up, &ly->down, XN, T, out)) goto done;
    } else {
        memset(out, 0, (size_t)T * D * sizeof *out);
    }
    for (int e = 0; e < E; e++) {
        int n = count[e + 1] - count[e];
        if (!n) continue;
        for (int j = 0; j < n; j++) memcpy(Xe + (size_t)j * D, XN + (size_t)(order[count[e] + j] / K) * D, (size_t)D * sizeof *Xe);
        if (swiglu(&ly->exp_gate[e], &ly->exp_up[e], &ly->exp_down[e], Xe, n, Ye)) goto done;
        for (int j = 0; j < n; j++) {
            int slot = order[count[e] + j], t = slot / K;
            float wt = w[slot];
            for (int d = 0; d < D; d++) out[(size_t)t * D + d] += wt * Ye[(size_t)j * D + d];
        }
    }
    rc = 0;
done:
    free(logits); free(w); free(idx); free(count); free(order); free(Xe); free(Ye);
    return rc;
}
