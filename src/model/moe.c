/* Mixture-of-experts router (noaux_tc, spec section 4) and the SwiGLU expert. Under expert parallelism (ep.c) the
 * same expert code runs on every rank, each computing only the experts it owns (k2c_ep_owns).
 *   s = sigmoid(W_g x)            (softmax when scoring_func is softmax)
 *   choice = s + e_score_correction_bias      (selection only)
 *   groups (n_group > 1): group score = sum of its top-2 choice scores; keep topk_group groups
 *   top-k by choice; weights = unbiased s of the chosen, / sum (+1e-20) if norm_topk_prob, * routed_scaling_factor */
#include "model/model.h"

#include <float.h>
#include <omp.h>
#include <math.h>
#include <string.h>

/* Router scores s [E] = sigmoid(logits), or softmax(logits) when scoring_func is softmax. */
void k2c_router_scores(const k2c_config *c, const float *logits, float *s) {
    int E = c->n_routed_experts;
    if (c->scoring_softmax) {
        memcpy(s, logits, (size_t)E * sizeof *s);
        float sum = k2c_vexp_sum(s, E, k2c_vmax(s, E));
        k2c_vscale(s, E, 1.0f / sum);
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

/* Scratch of ws (stack-like: the caller's mark is restored on return). */
#define TAKE(p, n) ((p) = k2c_ws_take(ws, (size_t)(n) * sizeof *(p)))

/* Y [T, D] = W_down (silu(W_gate X) * W_up X) for the rows of X [T, D]. */
static int swiglu(const k2c_linear *gate, const k2c_linear *up, const k2c_linear *down, const float *X, int T, float *Y,
                  k2c_ws *ws) {
    int I = gate->rows, rc = -1;
    size_t mark = ws->used;
    float *G, *U;
    if (!TAKE(G, (size_t)T * I) || !TAKE(U, (size_t)T * I)) { k2c_seterr("workspace too small (FFN of %d tokens)", T); goto done; }
    if (T == 1) {
        k2c_matvec_job j[2] = {{gate, X, G}, {up, X, U}};
        k2c_matvec_batch_ws(j, 2, ws);
    } else if (k2c_matmul2_ws(gate, up, X, T, G, U, ws)) {
        goto done;
    }
    /* in parallel for prompts (serial, the other thread waited: 2% of a 2-thread BF16 prefill) */
    int team = gate->cx ? gate->cx->team : 1;
    #pragma omp parallel for schedule(static) if (T >= 16 && team > 1 && !omp_in_parallel()) num_threads(team)
    for (int t = 0; t < T; t++) k2c_vsilu_mul(G + (size_t)t * I, G + (size_t)t * I, U + (size_t)t * I, (size_t)I);
    rc = k2c_matmul_ws(down, G, T, Y, ws);
done:
    ws->used = mark;
    return rc;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* One token's routed experts that this rank owns (every one in a single process), plus the shared expert when
 * with_shared: the gate and up projections run in one parallel loop, then all down projections in another (two
 * fork/joins per layer). */
static int experts_decode(const k2c_model *m, const k2c_layer *ly, const float *x, const int *idx, const float *w,
                          float *out, int with_shared, k2c_ws *ws) {
    const k2c_config *c = &m->cfg;
    int D = c->hidden_size, K = c->num_experts_per_tok, I = c->moe_intermediate_size;
    int IS = with_shared && ly->gate.w ? ly->gate.rows : 0, mine[64], nk = 0;
    for (int k = 0; k < K; k++)
        if (k2c_ep_owns(m, idx[k])) mine[nk++] = k;
    size_t mark = ws->used;
    float *buf;
    if (!TAKE(buf, (size_t)2 * (K * I + IS) + (size_t)(K + 1) * D)) { k2c_seterr("workspace too small (MoE decode)"); return -1; }
    float *g = buf, *u = g + K * I + IS, *ys = u + K * I + IS;
    k2c_matvec_job jobs[130];
    int n = 0;
    for (int j = 0; j < nk; j++) {
        int k = mine[j];
        jobs[n++] = (k2c_matvec_job){&ly->exp_gate[idx[k]], x, g + k * I};
        jobs[n++] = (k2c_matvec_job){&ly->exp_up[idx[k]], x, u + k * I};
    }
    if (IS) {
        jobs[n++] = (k2c_matvec_job){&ly->gate, x, g + K * I};
        jobs[n++] = (k2c_matvec_job){&ly->up, x, u + K * I};
    }
    if (n) {
        k2c_matvec_batch_ws(jobs, n, ws);
        if (nk == K) {          /* every expert here (one process): one call, as the gates lie contiguous */
            k2c_vsilu_mul(g, g, u, (size_t)K * I + IS);
        } else {
            for (int j = 0; j < nk; j++) k2c_vsilu_mul(g + mine[j] * I, g + mine[j] * I, u + mine[j] * I, (size_t)I);
            if (IS) k2c_vsilu_mul(g + K * I, g + K * I, u + K * I, (size_t)IS);
        }
        n = 0;
        for (int j = 0; j < nk; j++) jobs[n++] = (k2c_matvec_job){&ly->exp_down[idx[mine[j]]], g + mine[j] * I, ys + (size_t)mine[j] * D};
        if (IS) jobs[n++] = (k2c_matvec_job){&ly->down, g + K * I, ys + (size_t)K * D};
        k2c_matvec_batch_ws(jobs, n, ws);
    }
    for (int d = 0; d < D; d++) {
        float acc = IS ? ys[(size_t)K * D + d] : 0.0f;
        for (int j = 0; j < nk; j++) acc += w[mine[j]] * ys[(size_t)mine[j] * D + d];
        out[d] = acc;
    }
    ws->used = mark;
    return 0;
}

/* T tokens' routed experts that this rank owns, plus the shared expert when with_shared: out [T, D].
 * Tokens are grouped by expert so each chosen expert's weights are read once for all its tokens. */
static int experts_grouped(const k2c_model *m, const k2c_layer *ly, const float *XN, int T, const int *idx, const float *w,
                           float *out, int with_shared, k2c_ws *ws) {
    const k2c_config *c = &m->cfg;
    int D = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok, rc = -1;
    size_t mark = ws->used;
    float *Xe, *Ye;
    int *count, *order, *fill;
    if (!TAKE(count, E + 1) || !TAKE(order, (size_t)T * K) || !TAKE(fill, E) || !TAKE(Xe, (size_t)T * D) ||
        !TAKE(Ye, (size_t)T * D)) {
        k2c_seterr("workspace too small (MoE of %d tokens)", T);
        goto done;
    }
    /* Counting sort of the (token, slot) pairs by expert. */
    memset(count, 0, (size_t)(E + 1) * sizeof *count);
    for (int i = 0; i < T * K; i++) count[idx[i] + 1]++;
    for (int e = 0; e < E; e++) count[e + 1] += count[e];
    memcpy(fill, count, (size_t)E * sizeof *fill);
    for (int i = 0; i < T * K; i++) order[fill[idx[i]]++] = i;
    if (with_shared && c->n_shared_experts) {
        if (swiglu(&ly->gate, &ly->up, &ly->down, XN, T, out, ws)) goto done;
    } else {
        memset(out, 0, (size_t)T * D * sizeof *out);
    }
    for (int e = 0; e < E; e++) {
        int n = count[e + 1] - count[e];
        if (!n || !k2c_ep_owns(m, e)) continue;
        for (int j = 0; j < n; j++) memcpy(Xe + (size_t)j * D, XN + (size_t)(order[count[e] + j] / K) * D, (size_t)D * sizeof *Xe);
        if (swiglu(&ly->exp_gate[e], &ly->exp_up[e], &ly->exp_down[e], Xe, n, Ye, ws)) goto done;
        /* an expert holds each token once, so its rows add in parallel */
        #pragma omp parallel for schedule(static) if (n >= 16 && m->cx.team > 1 && !omp_in_parallel()) num_threads(m->cx.team)
        for (int j = 0; j < n; j++) {
            int slot = order[count[e] + j], t = slot / K;
            float wt = w[slot];
            for (int d = 0; d < D; d++) out[(size_t)t * D + d] += wt * Ye[(size_t)j * D + d];
        }
    }
    rc = 0;
done:
    ws->used = mark;
    return rc;
}

int k2c_moe_experts(const k2c_model *m, k2c_ws *ws, int layer, const float *XN, int T, const int *idx, const float *w,
                    float *out, int with_shared, int decode) {
    const k2c_layer *ly = &m->layers[layer];
    return decode && T == 1 ? experts_decode(m, ly, XN, idx, w, out, with_shared, ws)
                            : experts_grouped(m, ly, XN, T, idx, w, out, with_shared, ws);
}

/* FFN of one layer over T tokens: dense SwiGLU, or routed experts + shared experts. One token without a trace
 * takes the decode form (a matvec router, every chosen expert's projections in one parallel loop); otherwise
 * tokens are grouped by expert. Under expert parallelism the routed experts of other ranks run there (ep.c).
 * experts: optional [T, k] trace of the chosen experts, sorted ascending. */
int k2c_ffn_forward(const k2c_model *m, k2c_ws *ws, int layer, const float *XN, int T, float *out, int *experts) {
    const k2c_config *c = &m->cfg;
    const k2c_layer *ly = &m->layers[layer];
    if (!ly->is_moe) return swiglu(&ly->gate, &ly->up, &ly->down, XN, T, out, ws);
    int E = c->n_routed_experts, K = c->num_experts_per_tok, rc = -1, decode = T == 1 && !experts;
    size_t mark = ws->used;
    float *logits, *w;
    int *idx;
    if (!TAKE(logits, (size_t)T * E) || !TAKE(w, (size_t)T * K) || !TAKE(idx, (size_t)T * K)) {
        k2c_seterr("workspace too small (MoE of %d tokens)", T);
        goto done;
    }
    if (decode) k2c_matvec_ws(&ly->router, XN, logits, ws);
    else if (k2c_matmul_fp32_ws(&ly->router, XN, T, logits, ws)) goto done;
    for (int t = 0; t < T; t++) k2c_moe_route(c, logits + (size_t)t * E, ly->router_bias, idx + t * K, w + t * K, NULL);
    if (experts)
        for (int t = 0; t < T; t++) {
            memcpy(experts + t * K, idx + t * K, (size_t)K * sizeof *idx);
            qsort(experts + t * K, (size_t)K, sizeof *idx, cmp_int);
        }
    if (m->ep_size > 1) rc = k2c_ep_moe(m, ws, layer, XN, T, idx, w, out, decode);
    else rc = k2c_moe_experts(m, ws, layer, XN, T, idx, w, out, 1, decode);
done:
    ws->used = mark;
    return rc;
}

/* What the functions above take for T tokens: their own pieces, plus one matmul (lin) or a matvec batch's input
 * shuffles (xs: one input's) on top. */
size_t k2c_ffn_ws_bytes(const k2c_model *m, int T, size_t lin, size_t xs) {
    const k2c_config *c = &m->cfg;
    size_t D = (size_t)c->hidden_size, E = (size_t)c->n_routed_experts, K = (size_t)c->num_experts_per_tok, t = (size_t)T;
    size_t most = 0;
#define B(n) k2c_ws_bytes((size_t)(n) * 4)
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const k2c_layer *ly = &m->layers[l];
        size_t IS = ly->gate.w ? (size_t)ly->gate.rows : 0, need = 0;
        size_t sw = 2 * B(t * IS) + (lin > 2 * xs ? lin : 2 * xs);            /* dense or shared SwiGLU */
        if (ly->is_moe) {
            size_t I = (size_t)ly->exp_gate[0].rows;
            size_t swe = 2 * B(t * I) + (lin > 2 * xs ? lin : 2 * xs);
            size_t dec = B(E) + 2 * B(K) + B(2 * (K * I + IS) + (K + 1) * D) + (2 * K + 2 > 1 ? (2 * K + 2) : 1) * xs + lin;
            if (m->ep_size > 1) dec += k2c_ep_ws_bytes(m, 1);
            size_t pre = B(t * E) + 3 * B(t * K) + B(E + 1) + B(E) + 2 * B(t * D);
            if (m->ep_size > 1) pre += k2c_ep_ws_bytes(m, T);     /* the tokens sent to the other ranks */
            pre += lin > sw ? (lin > swe ? lin : swe) : (sw > swe ? sw : swe);
            need = dec > pre ? dec : pre;
        } else {
            need = sw;
        }
        most = need > most ? need : most;
    }
#undef B
    return most;
}
