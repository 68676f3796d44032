/* Training forward and backward of the whole architecture (spec section 4), fp32, each op's backward
 * next to its forward.
 *
 * The forward computes the same function as forward.c/mla.c/moe.c (expanded MLA path) for B independent
 * causal sequences of T tokens, and keeps what the backward needs in one arena (k2c_tacts):
 *   per layer  xin, xn1 (+rstd), q_a out (+rstd) and its norm, Q (roped), kv_a out (+rstd), norm(c),
 *              roped k_pe, KV, the attention probabilities P [B, H, T, T], the head outputs, xmid,
 *              xn2 (+rstd), the FFN gate/up outputs and silu(g) u (dense, shared, and every routed
 *              (token, slot) pair in expert order), the routed expert outputs (for the router gradient),
 *              router logits.
 *   final      xf, its norm (+rstd), the softmax probabilities [N, V].
 * The backward walks the layers in reverse with a scratch block, accumulating into m->g.
 *
 * Threads: a step has a few hundred parallel regions, and on small matrices a fork/join or a product split
 * between threads costs about what the product does. So most work runs as single-threaded OpenBLAS calls
 * (serial inside a parallel region) in coarse tasks: blocks of tokens for the token-wise chains, one
 * (sequence, head) for the attention core, one expert (the shared one in token blocks) for the MoE, and the
 * two gradient products of a linear together (mm_bwd). Only the output head's products, the largest, use
 * OpenBLAS's own threads. Tasks write disjoint outputs, reductions run in a fixed order, and every split
 * depends only on the shapes and the thread count, so a run is bit-for-bit reproducible at a given thread
 * count (resume depends on that). Element-wise work goes through the vector kernels of vecmath.c. */
#include "train/train.h"

#include <assert.h>
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define SHARED_BLOCKS 4      /* token blocks of the shared expert in the forward's expert pool */
#define QK_NORM_EPS 1e-6f   /* q_a_layernorm / kv_a_layernorm: the reference uses 1e-6 whatever rms_norm_eps says */

/* ------------------------------------------------------------------ GEMM helpers (row-major) */
/* Y [N, out] (ldy) = X [N, in] (ldx) W^T, W [out, in]; acc: Y += */
static void mm_fwd(const float *X, int ldx, int N, int in, const float *W, int out, float *Y, int ldy, int acc) {
    if (N <= 0 || out <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, X, ldx, W, in, acc ? 1.0f : 0.0f, Y, ldy);
}
/* dW [out, in] += dY [N, out]^T X [N, in] */
static void mm_dw(const float *dY, int ldy, int N, int out, const float *X, int ldx, int in, float *dW) {
    if (N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dY, ldy, X, ldx, 1.0f, dW, in);
}
/* dX [N, in] (ldx) (+)= dY [N, out] W */
static void mm_dx(const float *dY, int ldy, int N, int out, const float *W, int in, float *dX, int ldx, int acc) {
    if (N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dY, ldy, W, in, acc ? 1.0f : 0.0f, dX, ldx);
}

/* Both gradients of Y = X W^T at once: dW [out, in] += dY^T X and dX [N, in] (ldx) (+)= dY W (dX may be NULL).
 * One parallel region of single-threaded products: dW split by its rows, dX by its rows, 2 x threads tasks.
 * Sharing each small product between threads through OpenBLAS cost a fork/join per product and left the
 * threads waiting on each other; here the two products fill the threads together. Every dW element still
 * sums over all N rows in one call, and the split depends only on the shapes and the thread count. Inside a
 * parallel region (an expert task) the two run serially. */
static void mm_bwd(const float *dY, int ldy, int N, int out, const float *X, int ldx, int in, const float *W,
                   float *dW, float *dX, int lddx, int acc) {
    if (N <= 0) return;
    if (omp_in_parallel() || omp_get_max_threads() == 1) {
        mm_dw(dY, ldy, N, out, X, ldx, in, dW);
        if (dX) mm_dx(dY, ldy, N, out, W, in, dX, lddx, acc);
        return;
    }
    int nt = omp_get_max_threads(), ntask = dX ? 2 * nt : nt;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < ntask; i++) {
        if (i < nt) {
            int o0 = (int)((long)out * i / nt), no = (int)((long)out * (i + 1) / nt) - o0;
            if (no > 0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, in, N, 1.0f, dY + o0, ldy, X, ldx, 1.0f,
                            dW + (size_t)o0 * in, in);
        } else {
            int j = i - nt, t0 = (int)((long)N * j / nt), n = (int)((long)N * (j + 1) / nt) - t0;
            if (n > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dY + (size_t)t0 * ldy, ldy, W,
                            in, acc ? 1.0f : 0.0f, dX + (size_t)t0 * lddx, lddx);
        }
    }
}

/* ------------------------------------------------------------------ RMSNorm */
/* y [N, n] (row stride ys) = w * x / sqrt(mean(x^2) + eps); rstd [N]. Same arithmetic as k2c_rmsnorm. */
static void rms_fwd(float *y, int ys, float *rstd, const float *x, int xs, const float *w, int N, int n, float eps) {
    #pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int t = 0; t < N; t++) {
        rstd[t] = k2c_vrms_row(y + (size_t)t * ys, x + (size_t)t * xs, w, n, eps);
    }
}

/* With xhat = x * rstd and gy = dy * w:  dw += sum_t dy * xhat,  dx = rstd * (gy - xhat * mean(gy * xhat)).
 * dw is reduced per column over the rows in order (no atomics); dx may alias dy; acc: dx += instead of =. */
static void rms_bwd(float *dx, int dxs, float *dw, const float *dy, int dys, const float *x, int xs,
                    const float *rstd, const float *w, int N, int n, int acc) {
    /* dw: blocks of 32 columns, each block's rows in order (contiguous reads; the same sum per column as a
     * column-by-column loop, whatever the thread count). One region; the barrier after the dw loop matters
     * when dx aliases dy. */
    #pragma omp parallel if (!omp_in_parallel())
    {
        #pragma omp for schedule(static)
        for (int c0 = 0; c0 < n; c0 += 32) {
            int cn = n - c0 < 32 ? n - c0 : 32;
            double acc[32] = {0};
            k2c_vrms_dw(acc, dy + c0, dys, x + c0, xs, rstd, N, cn);
            for (int k = 0; k < cn; k++) dw[c0 + k] += (float)acc[k];
        }
        #pragma omp for schedule(static)
        for (int t = 0; t < N; t++)
            k2c_vrms_row_bwd(dx + (size_t)t * dxs, dy + (size_t)t * dys, x + (size_t)t * xs, w, rstd[t], n, acc);
    }
}

void k2c_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int n, float eps) {
    rms_fwd(y, n, rstd, x, n, w, N, n, eps);
}

void k2c_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                     int N, int n) {
    rms_bwd(dx, n, dw, dy, n, x, n, rstd, w, N, n, 0);
}

/* ------------------------------------------------------------------ attention core (one head) */
/* Both directions are blocks of small GEMMs (single-threaded: the caller runs one head per thread), which
 * OpenBLAS does at several times the speed of the per-pair dot products they replace. The causal half of
 * each score block is computed and then masked to zero: at T of a few hundred that waste is cheaper than
 * triangular blocking. */
void k2c_attn_fwd(const float *q, int qs, const float *kv, int ks, const float *kp, int T, int dn, int dr, int dv,
                  float scale, float *P, float *o, int os, float *smax) {
    /* S [T, T] = scale * (qn kn^T + qp kp^T) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dn, scale, q, qs, kv, ks, 0.0f, P, T);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dr, scale, q + dn, qs, kp, dr, 1.0f, P, T);
    float best = -FLT_MAX;
    for (int i = 0; i < T; i++) {
        float *p = P + (size_t)i * T, mx = k2c_vmax(p, i + 1);
        if (mx > best) best = mx;
        k2c_vscale(p, i + 1, 1.0f / k2c_vexp_sum(p, i + 1, mx));
        memset(p + i + 1, 0, (size_t)(T - i - 1) * sizeof *p);
    }
    /* o [T, dv] = P v */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dv, T, 1.0f, P, T, kv + dn, ks, 0.0f, o, os);
    *smax = best;
}

/* dP = do v^T;  dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij');  scores are scale * (q . k).
 * tmp [T, T] scratch. */
void k2c_attn_bwd(const float *q, int qs, const float *kv, int ks, const float *kp, int T, int dn, int dr, int dv,
                  float scale, const float *P, const float *dout, int os, float *dq, float *dkv, float *dkp, float *tmp) {
    float *dS = tmp;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dv, 1.0f, dout, os, kv + dn, ks, 0.0f, dS, T);
    for (int i = 0; i < T; i++) {
        const float *p = P + (size_t)i * T;
        float *d = dS + (size_t)i * T, rowdot = k2c_vdot(p, d, i + 1);
        #pragma omp simd
        for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - rowdot) * scale;
        memset(d + i + 1, 0, (size_t)(T - i - 1) * sizeof *d);
    }
    /* dv = P^T do;  dqn = dS kn;  dqp = dS kp;  dkn = dS^T qn;  dkp = dS^T qp */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dv, T, 1.0f, P, T, dout, os, 0.0f, dkv + dn, ks);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dn, T, 1.0f, dS, T, kv, ks, 0.0f, dq, qs);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dr, T, 1.0f, dS, T, kp, dr, 0.0f, dq + dn, qs);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dn, T, 1.0f, dS, T, q, qs, 0.0f, dkv, ks);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dr, T, 1.0f, dS, T, q + dn, qs, 0.0f, dkp, dr);
}

/* ------------------------------------------------------------------ SwiGLU */
static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* h [N, F] = silu(g) * u (as moe.c: g / (1 + e^-g) * u) from gu [N, 2F] rows (g then u); row-parallel
 * unless already in a parallel region (an expert per thread) */
static void silu_mul(float *h, const float *gu, int N, int F) {
    #pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int t = 0; t < N; t++) {
        const float *g = gu + (size_t)t * 2 * F;
        k2c_vsilu_mul(h + (size_t)t * F, g, g + F, F);
    }
}

/* Gate and up are one product: their weights are adjacent rows [2F, D] (the model lays out gate_proj then
 * up_proj), so one GEMM with twice the outputs replaces two, here and in the backward. */
void k2c_swiglu_fwd(const float *x, int N, int D, int F, const float *Wgu, const float *Wd, float *gu, float *h,
                    float *y) {
    mm_fwd(x, D, N, D, Wgu, 2 * F, gu, 2 * F, 0);
    silu_mul(h, gu, N, F);
    mm_fwd(h, F, N, F, Wd, D, y, D, 0);
}

void k2c_swiglu_bwd(const float *x, int N, int D, int F, const float *Wgu, const float *Wd, const float *gu,
                    const float *h, float *dh, float *dgu, const float *dy, float *dx, float *dWgu, float *dWd) {
    mm_bwd(dy, D, N, D, h, F, F, Wd, dWd, dh, F, 0);    /* dWd [D, F] += dy^T h;  dh [N, F] = dy Wd */
    #pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int t = 0; t < N; t++) {                       /* dgu rows: dg, du */
        const float *g = gu + (size_t)t * 2 * F;
        float *dg = dgu + (size_t)t * 2 * F;
        k2c_vsilu_mul_bwd(dg, dg + F, dh + (size_t)t * F, g, g + F, F);
    }
    mm_bwd(dgu, 2 * F, N, 2 * F, x, D, D, Wgu, dWgu, dx, D, 0);   /* [dWg; dWu] [2F, D] += dgu^T x */
}

/* ------------------------------------------------------------------ router */
/* w_k = rsf * s_k / (sum_j s_j + 1e-20) (normalized) or rsf * s_k; s = sigmoid(z) or softmax(z).
 * The top-k choice itself is piecewise constant, so only the chosen s carry gradient. */
void k2c_router_bwd(const k2c_config *c, const float *logits, const int *idx, const float *dw, float *dlogits) {
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    float s[1024], ds[1024];
    k2c_router_scores(c, logits, s);
    for (int e = 0; e < E; e++) ds[e] = 0;
    float rsf = c->routed_scaling_factor;
    if (c->norm_topk_prob && K > 1) {
        float S = 1e-20f, a = 0;
        for (int k = 0; k < K; k++) S += s[idx[k]];
        for (int k = 0; k < K; k++) a += dw[k] * s[idx[k]];
        for (int k = 0; k < K; k++) ds[idx[k]] = rsf * (dw[k] / S - a / (S * S));
    } else {
        for (int k = 0; k < K; k++) ds[idx[k]] = rsf * dw[k];
    }
    if (c->scoring_softmax) {
        float a = 0;
        for (int e = 0; e < E; e++) a += ds[e] * s[e];
        for (int e = 0; e < E; e++) dlogits[e] = s[e] * (ds[e] - a);
    } else {
        for (int e = 0; e < E; e++) dlogits[e] = ds[e] * s[e] * (1.0f - s[e]);
    }
}

/* ------------------------------------------------------------------ cross-entropy */
/* logits -> probabilities in place; rowloss [N] gets -log p[target] (0 without a target). The sum is
 * taken by the caller in row order so it does not depend on the thread count or scheduling. */
static void xent_fwd(float *logits, const int *targets, int N, int V, double *rowloss) {
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N; t++) {
        float *z = logits + (size_t)t * V, mx = k2c_vmax(z, V);
        double zt = targets[t] >= 0 ? (double)z[targets[t]] - mx : 0, sum = k2c_vexp_sum(z, V, mx);
        rowloss[t] = targets[t] >= 0 ? log(sum) - zt : 0;
        k2c_vscale(z, V, (float)(1.0 / sum));
    }
}

/* row_scale [N] (NULL: all 1) weighs each token's loss: the RL objective's per-sample coefficients. A row
 * without a target, or with weight 0, gets an exactly zero gradient. */
static void xent_bwd(float *p, const int *targets, int N, int V, float scale, const float *row_scale) {
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N; t++) {
        float *z = p + (size_t)t * V, s = row_scale ? scale * row_scale[t] : scale;
        if (targets[t] < 0 || s == 0) { memset(z, 0, (size_t)V * sizeof *z); continue; }
        k2c_vscale(z, V, s);
        z[targets[t]] -= s;
    }
}

double k2c_xent_fwd_bwd(float *logits, const int *targets, int N, int V, float scale) {
    double *rl = malloc((size_t)(N > 0 ? N : 1) * sizeof *rl), l = 0;
    if (!rl) return NAN;
    xent_fwd(logits, targets, N, V, rl);
    for (int t = 0; t < N; t++) l += rl[t];
    free(rl);
    xent_bwd(logits, targets, N, V, scale, NULL);
    return l;
}

/* ------------------------------------------------------------------ activation arena */
typedef struct {
    float *xin, *xn1, *r1, *qa, *rq, *cq, *Q, *kva, *rkv, *cn, *kpe, *KV, *P, *att, *xmid, *xn2, *r2;
    float *fgu, *fh;                    /* dense FFN or shared experts: gate, up outputs [N, 2F]; silu(g) u [N, F] */
    float *rlog, *wts, *ey, *egu, *eh;  /* router logits [N, E], weights [N, K]; pairs [NK, D], [NK, 2 IM], [NK, IM] */
    float *auxf;                        /* [B, E] f_i of each sequence (aux loss) */
    int *idx, *order, *pos, *count;     /* [NK] chosen, [NK] pairs in expert order, [NK] inverse, [E+1] */
    int *busiest;                       /* [E] experts by pair count, largest first */
} lview;

typedef struct {
    lview *l;
    float *xf, *xnf, *rf, *probs;
    double *rowloss;
    int *ids, *targets, *fill;
    float *smax;                        /* [B, H] per call */
    /* backward scratch */
    float *dX, *dXN, *Y, *dA, *dQ, *dKV, *dkph, *dkpe, *dc, *dkva, *h, *dgu, *sdh, *sdgu, *Xe, *dYe, *dXe, *gw, *dlog;
    float *tmp;
    int B, T, has_fwd;
    int nthr;                           /* threads the per-thread scratch was sized for */
    float aux_alpha;
} views;

/* Bump allocation in floats (ints share the size); base NULL only measures. */
static float *takef(float *base, size_t *off, size_t n) {
    float *p = base ? base + *off : NULL;
    *off += (n + 15) & ~(size_t)15;
    return p;
}
static int *takei(int *base, size_t *off, size_t n) {
    int *p = base ? base + *off : NULL;
    *off += (n + 15) & ~(size_t)15;
    return p;
}

static size_t maxz(size_t a, size_t b) { return a > b ? a : b; }

static void layout(const k2c_tmodel *m, views *v, int B, int T, float *fb, size_t *nf, int *ib, size_t *ni,
                   float *sb, size_t *ns) {
    const k2c_config *c = &m->cfg;
    size_t N = (size_t)B * T, D = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    size_t dr = c->qk_rope_head_dim, dv = c->v_head_dim, r = c->kv_lora_rank, ql = c->q_lora_rank;
    size_t E = c->n_routed_experts, K = c->num_experts_per_tok, IM = c->moe_intermediate_size;
    size_t NK = N * K, qd = dn + dr, kvd = dn + dv, Fd = c->intermediate_size, Fs = IM * c->n_shared_experts;
    size_t f = 0, i = 0, s = 0, hmax = N * Fd;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        lview *x = &v->l[l];
        const k2c_tlayer *ly = &m->layers[l];
        x->xin = takef(fb, &f, N * D); x->xn1 = takef(fb, &f, N * D); x->r1 = takef(fb, &f, N);
        if (ql) { x->qa = takef(fb, &f, N * ql); x->rq = takef(fb, &f, N); x->cq = takef(fb, &f, N * ql); }
        x->Q = takef(fb, &f, N * H * qd); x->kva = takef(fb, &f, N * (r + dr)); x->rkv = takef(fb, &f, N);
        x->cn = takef(fb, &f, N * r); x->kpe = takef(fb, &f, N * dr); x->KV = takef(fb, &f, N * H * kvd);
        x->P = takef(fb, &f, (size_t)B * H * T * T); x->att = takef(fb, &f, N * H * dv);
        x->xmid = takef(fb, &f, N * D); x->xn2 = takef(fb, &f, N * D); x->r2 = takef(fb, &f, N);
        if (!ly->is_moe) {
            x->fgu = takef(fb, &f, 2 * N * Fd); x->fh = takef(fb, &f, N * Fd);
            continue;
        }
        if (Fs) { x->fgu = takef(fb, &f, 2 * N * Fs); x->fh = takef(fb, &f, N * Fs); }
        x->rlog = takef(fb, &f, N * E); x->wts = takef(fb, &f, NK); x->ey = takef(fb, &f, NK * D);
        x->egu = takef(fb, &f, 2 * NK * IM); x->eh = takef(fb, &f, NK * IM); x->auxf = takef(fb, &f, (size_t)B * E);
        x->idx = takei(ib, &i, NK); x->order = takei(ib, &i, NK); x->pos = takei(ib, &i, NK);
        x->count = takei(ib, &i, E + 1); x->busiest = takei(ib, &i, E);
        hmax = maxz(hmax, maxz(N * Fs, NK * IM));
    }
    size_t V = c->vocab_size;
    v->xf = takef(fb, &f, N * D); v->xnf = takef(fb, &f, N * D); v->rf = takef(fb, &f, N);
    v->probs = takef(fb, &f, N * V);
    v->rowloss = (double *)takef(fb, &f, 2 * N);
    v->smax = takef(fb, &f, (size_t)B * H);
    v->ids = takei(ib, &i, N); v->targets = takei(ib, &i, N); v->fill = takei(ib, &i, E + 1);
    v->dX = takef(sb, &s, N * D); v->dXN = takef(sb, &s, N * D); v->Y = takef(sb, &s, N * D);
    v->dA = takef(sb, &s, N * H * dv); v->dQ = takef(sb, &s, N * H * qd); v->dKV = takef(sb, &s, N * H * kvd);
    v->dkph = takef(sb, &s, N * H * dr); v->dkpe = takef(sb, &s, N * dr); v->dc = takef(sb, &s, N * maxz(r, ql));
    v->dkva = takef(sb, &s, N * (r + dr)); v->h = takef(sb, &s, hmax); v->dgu = takef(sb, &s, 2 * hmax);
    v->sdh = takef(sb, &s, N * Fs); v->sdgu = takef(sb, &s, 2 * N * Fs);   /* the shared expert's own */
    v->Xe = takef(sb, &s, NK * D); v->dYe = takef(sb, &s, NK * D); v->dXe = takef(sb, &s, NK * D);
    v->gw = takef(sb, &s, NK); v->dlog = takef(sb, &s, N * E);
    v->nthr = omp_get_max_threads();
    v->tmp = takef(sb, &s, (size_t)v->nthr * T * T);   /* attention dS [T, T], one per thread */
    *nf = f; *ni = i; *ns = s;
}

static int tacts_init_impl(k2c_tacts *a, const k2c_tmodel *m, int B, int T) {
    const k2c_config *c = &m->cfg;
    memset(a, 0, sizeof *a);
    if (B <= 0 || T <= 0) { k2c_seterr("batch %d x %d tokens: both must be positive", B, T); return -1; }
    views *v = calloc(1, sizeof *v);
    if (!v || !(v->l = calloc((size_t)c->num_hidden_layers, sizeof *v->l))) { free(v); goto oom; }
    a->lay = v;
    a->B = B; a->T = T;
    layout(m, v, B, T, NULL, &a->narena, NULL, &a->niarena, NULL, &a->nscratch);
    a->arena = aligned_alloc(64, a->narena * sizeof(float));
    a->iarena = aligned_alloc(64, a->niarena * sizeof(int));
    a->scratch = aligned_alloc(64, a->nscratch * sizeof(float));
    a->attn_max = malloc((size_t)c->num_hidden_layers * c->num_attention_heads * sizeof *a->attn_max);
    a->load = malloc((size_t)c->num_hidden_layers * (c->n_routed_experts + 1) * sizeof *a->load);
    if (!a->arena || !a->iarena || !a->scratch || !a->attn_max || !a->load) goto oom;
    layout(m, v, B, T, a->arena, &a->narena, a->iarena, &a->niarena, a->scratch, &a->nscratch);
    k2c_tacts_reset_stats(a, m);
    return 0;
oom:
    k2c_seterr("out of memory for the activations of %d x %d tokens", B, T);
    k2c_tacts_free(a);
    return -1;
}

void k2c_tacts_free(k2c_tacts *a) {
    views *v = a->lay;
    if (v) free(v->l);
    free(v);
    free(a->arena); free(a->iarena); free(a->scratch); free(a->attn_max); free(a->load);
    memset(a, 0, sizeof *a);
}

void k2c_tacts_reset_stats(k2c_tacts *a, const k2c_tmodel *m) {
    const k2c_config *c = &m->cfg;
    for (int i = 0; i < c->num_hidden_layers * c->num_attention_heads; i++) a->attn_max[i] = -INFINITY;
    for (int i = 0; i < c->num_hidden_layers * (c->n_routed_experts + 1); i++) a->load[i] = 0;
    a->aux_loss = 0;
}

#define W(off) (m->w + (off))
#define G(off) (m->g + (off))

/* ------------------------------------------------------------------ attention layer */
/* Rows [t0, t0 + n) of everything before the attention core: norm, q and kv projections with their norms,
 * RoPE. All of it works token by token. */
static void attn_proj_rows(const k2c_tmodel *m, lview *x, int l, int t0, int n, int T) {
    const k2c_config *c = &m->cfg;
    const k2c_tlayer *ly = &m->layers[l];
    int D = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    int dr = c->qk_rope_head_dim, r = c->kv_lora_rank, ql = c->q_lora_rank, qd = dn + dr, kvd = dn + c->v_head_dim;
    size_t o = (size_t)t0;
    float *xn1 = x->xn1 + o * D, *Q = x->Q + o * H * qd, *kva = x->kva + o * (r + dr);
    rms_fwd(xn1, D, x->r1 + o, x->xin + o * D, D, W(ly->attn_norm), n, D, (float)c->rms_norm_eps);
    if (ql) {
        mm_fwd(xn1, D, n, D, W(ly->q_a), ql, x->qa + o * ql, ql, 0);
        rms_fwd(x->cq + o * ql, ql, x->rq + o, x->qa + o * ql, ql, W(ly->q_a_norm), n, ql, QK_NORM_EPS);
        mm_fwd(x->cq + o * ql, ql, n, ql, W(ly->q_b), H * qd, Q, H * qd, 0);
    } else {
        mm_fwd(xn1, D, n, D, W(ly->q), H * qd, Q, H * qd, 0);
    }
    mm_fwd(xn1, D, n, D, W(ly->kv_a), r + dr, kva, r + dr, 0);
    rms_fwd(x->cn + o * r, r, x->rkv + o, kva, r + dr, W(ly->kv_a_norm), n, r, QK_NORM_EPS);
    for (int i = 0; i < n; i++) {
        int pos = (t0 + i) % T;
        float *kpe = x->kpe + (o + i) * dr;
        memcpy(kpe, kva + (size_t)i * (r + dr) + r, (size_t)dr * sizeof(float));
        k2c_rope_apply(kpe, dr, pos, m->inv_freq, m->rope_mscale);
        for (int h = 0; h < H; h++)
            k2c_rope_apply(Q + (size_t)i * H * qd + (size_t)h * qd + dn, dr, pos, m->inv_freq, m->rope_mscale);
    }
    mm_fwd(x->cn + o * r, r, n, r, W(ly->kv_b), H * kvd, x->KV + o * H * kvd, H * kvd, 0);
}

/* Splits rows [0, N) evenly over the threads of the enclosing parallel region: this thread's block. */
static int row_block(int N, int *t0) {
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
    *t0 = (int)((long)N * id / nt);
    return (int)((long)N * (id + 1) / nt) - *t0;
}

static void attn_fwd(const k2c_tmodel *m, k2c_tacts *a, int l, int B, int T) {
    const k2c_config *c = &m->cfg;
    const k2c_tlayer *ly = &m->layers[l];
    views *v = a->lay;
    lview *x = &v->l[l];
    int N = B * T, D = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    int dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int qd = dn + dr, kvd = dn + dv;
    /* Each thread takes a block of tokens through the whole chain before the core with single-threaded
     * GEMMs (OpenBLAS runs serially inside a parallel region): one parallel region instead of eight, and
     * each product is large enough to run at one core's full speed, where sharing the small products
     * between threads cost more in hand-offs than it saved. Blocks depend only on N and the thread
     * count, so a run stays bit-reproducible at a given thread count. */
    #pragma omp parallel
    {
        int t0, n = row_block(N, &t0);
        if (n > 0) attn_proj_rows(m, x, l, t0, n, T);
    }
    #pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t t0 = (size_t)b * T;
        k2c_attn_fwd(x->Q + t0 * H * qd + (size_t)h * qd, H * qd, x->KV + t0 * H * kvd + (size_t)h * kvd, H * kvd,
                     x->kpe + t0 * dr, T, dn, dr, dv, m->attn_scale, x->P + (size_t)bh * T * T,
                     x->att + t0 * H * dv + (size_t)h * dv, H * dv, &v->smax[bh]);
    }
    for (int bh = 0; bh < B * H; bh++)
        if (v->smax[bh] > a->attn_max[l * H + bh % H]) a->attn_max[l * H + bh % H] = v->smax[bh];
    #pragma omp parallel
    {
        int t0, n = row_block(N, &t0);
        if (n > 0) {
            memcpy(x->xmid + (size_t)t0 * D, x->xin + (size_t)t0 * D, (size_t)n * D * sizeof(float));
            mm_fwd(x->att + (size_t)t0 * H * dv, H * dv, n, H * dv, W(ly->o), D, x->xmid + (size_t)t0 * D, D, 1);
        }
    }
}

/* dX: in, the gradient at xmid; out, the gradient at xin. */
static void attn_bwd(k2c_tmodel *m, k2c_tacts *a, int l, int B, int T) {
    const k2c_config *c = &m->cfg;
    const k2c_tlayer *ly = &m->layers[l];
    views *v = a->lay;
    lview *x = &v->l[l];
    int N = B * T, D = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    int dr = c->qk_rope_head_dim, dv = c->v_head_dim, r = c->kv_lora_rank, ql = c->q_lora_rank;
    int qd = dn + dr, kvd = dn + dv;
    mm_bwd(v->dX, D, N, D, x->att, H * dv, H * dv, W(ly->o), G(ly->o), v->dA, H * dv, 0);
    int nthr = omp_get_max_threads() < v->nthr ? omp_get_max_threads() : v->nthr;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t t0 = (size_t)b * T;
        k2c_attn_bwd(x->Q + t0 * H * qd + (size_t)h * qd, H * qd, x->KV + t0 * H * kvd + (size_t)h * kvd, H * kvd,
                     x->kpe + t0 * dr, T, dn, dr, dv, m->attn_scale, x->P + (size_t)bh * T * T,
                     v->dA + t0 * H * dv + (size_t)h * dv, H * dv, v->dQ + t0 * H * qd + (size_t)h * qd,
                     v->dKV + t0 * H * kvd + (size_t)h * kvd, v->dkph + (size_t)bh * T * dr,
                     v->tmp + (size_t)omp_get_thread_num() * T * T);
    }
    /* k_pe is shared by the heads: sum their gradients in head order, then undo the rotations. */
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N; t++) {
        int b = t / T, i = t % T;
        float *dk = v->dkva + (size_t)t * (r + dr) + r;
        for (int d = 0; d < dr; d++) dk[d] = 0;
        for (int h = 0; h < H; h++) {
            const float *s = v->dkph + ((size_t)(b * H + h) * T + i) * dr;
            for (int d = 0; d < dr; d++) dk[d] += s[d];
        }
        k2c_rope_backward(dk, dr, i, m->inv_freq, m->rope_mscale);
        for (int h = 0; h < H; h++)
            k2c_rope_backward(v->dQ + (size_t)t * H * qd + (size_t)h * qd + dn, dr, i, m->inv_freq, m->rope_mscale);
    }
    mm_bwd(v->dKV, H * kvd, N, H * kvd, x->cn, r, r, W(ly->kv_b), G(ly->kv_b), v->dc, r, 0);
    rms_bwd(v->dkva, r + dr, G(ly->kv_a_norm), v->dc, r, x->kva, r + dr, x->rkv, W(ly->kv_a_norm), N, r, 0);
    mm_bwd(v->dkva, r + dr, N, r + dr, x->xn1, D, D, W(ly->kv_a), G(ly->kv_a), v->dXN, D, 0);
    if (ql) {
        mm_bwd(v->dQ, H * qd, N, H * qd, x->cq, ql, ql, W(ly->q_b), G(ly->q_b), v->dc, ql, 0);
        rms_bwd(v->dc, ql, G(ly->q_a_norm), v->dc, ql, x->qa, ql, x->rq, W(ly->q_a_norm), N, ql, 0);
        mm_bwd(v->dc, ql, N, ql, x->xn1, D, D, W(ly->q_a), G(ly->q_a), v->dXN, D, 1);
    } else {
        mm_bwd(v->dQ, H * qd, N, H * qd, x->xn1, D, D, W(ly->q), G(ly->q), v->dXN, D, 1);
    }
    rms_bwd(v->dX, D, G(ly->attn_norm), v->dXN, D, x->xin, D, x->r1, W(ly->attn_norm), N, D, 1);
}

/* ------------------------------------------------------------------ FFN layer (dense or MoE) */
static inline float score(const k2c_config *c, float z) { (void)c; return sigm(z); }

/* Writes the layer output (xmid + FFN) to out. */
/* Xe [n, D] = the normed inputs of an expert's n (token, slot) pairs, pairs[j] = token * K + slot */
static void gather_rows(float *Xe, const float *xn2, const int *pairs, int n, int K, int D) {
    for (int j = 0; j < n; j++) memcpy(Xe + (size_t)j * D, xn2 + (size_t)(pairs[j] / K) * D, (size_t)D * sizeof *Xe);
}

/* The SwiGLU calls pass gate_proj's offset as Wgu [2F, D]: up_proj must follow it directly. */
static int gate_up_adjacent(const k2c_tlayer *ly, int F, int D) {
    return ly->gate == (size_t)-1 || ly->up == ly->gate + (size_t)F * D;
}

static void ffn_fwd(const k2c_tmodel *m, k2c_tacts *a, int l, int B, int T, float *out) {
    const k2c_config *c = &m->cfg;
    const k2c_tlayer *ly = &m->layers[l];
    views *v = a->lay;
    lview *x = &v->l[l];
    int N = B * T, D = c->hidden_size;
    assert(gate_up_adjacent(ly, ly->is_moe ? c->moe_intermediate_size * c->n_shared_experts : c->intermediate_size, D));
    if (!ly->is_moe) {                                  /* dense: token blocks through norm, FFN, residual */
        int F = c->intermediate_size;
        #pragma omp parallel
        {
            int t0, n = row_block(N, &t0);
            if (n > 0) {
                size_t o = (size_t)t0;
                rms_fwd(x->xn2 + o * D, D, x->r2 + o, x->xmid + o * D, D, W(ly->ffn_norm), n, D,
                        (float)c->rms_norm_eps);
                k2c_swiglu_fwd(x->xn2 + o * D, n, D, F, W(ly->gate), W(ly->down), x->fgu + o * 2 * F, x->fh + o * F,
                               v->Y + o * D);
                for (size_t i = o * D; i < (o + n) * D; i++) out[i] = x->xmid[i] + v->Y[i];
            }
        }
        return;
    }
    int E = c->n_routed_experts, K = c->num_experts_per_tok, IM = c->moe_intermediate_size, NK = N * K;
    #pragma omp parallel                            /* norm, router, top-k: token blocks, as attn_fwd */
    {
        int t0, n = row_block(N, &t0);
        if (n > 0) {
            rms_fwd(x->xn2 + (size_t)t0 * D, D, x->r2 + t0, x->xmid + (size_t)t0 * D, D, W(ly->ffn_norm), n, D,
                    (float)c->rms_norm_eps);
            mm_fwd(x->xn2 + (size_t)t0 * D, D, n, D, W(ly->router), E, x->rlog + (size_t)t0 * E, E, 0);
            for (int t = t0; t < t0 + n; t++)
                k2c_moe_route(c, x->rlog + (size_t)t * E, W(ly->bias), x->idx + (size_t)t * K, x->wts + (size_t)t * K,
                              NULL);
        }
    }
    double *load = a->load + (size_t)l * (E + 1);
    for (int i = 0; i < NK; i++) load[x->idx[i]] += 1;
    load[E] += N;                                   /* tokens seen (for the mean load) */
    /* Pairs (token, slot) sorted by expert, stable in slot order. */
    memset(x->count, 0, (size_t)(E + 1) * sizeof(int));
    for (int i = 0; i < NK; i++) x->count[x->idx[i] + 1]++;
    for (int e = 0; e < E; e++) x->count[e + 1] += x->count[e];
    memcpy(v->fill, x->count, (size_t)E * sizeof(int));
    for (int i = 0; i < NK; i++) { int p = v->fill[x->idx[i]]++; x->order[p] = i; x->pos[i] = p; }
    /* The expert loops hand out the largest experts first, so that the last one a thread takes is small
     * and the threads finish together (insertion sort: E is at most a few hundred). */
    for (int e = 0; e < E; e++) {
        int n = x->count[e + 1] - x->count[e], j = e;
        for (; j > 0 && x->count[x->busiest[j - 1] + 1] - x->count[x->busiest[j - 1]] < n; j--)
            x->busiest[j] = x->busiest[j - 1];
        x->busiest[j] = e;
    }
    if (v->aux_alpha > 0) {                         /* sequence-wise balance loss (DeepSeek-V3) */
        for (int b = 0; b < B; b++) {
            float *f = x->auxf + (size_t)b * E;
            double Pi[1024] = {0};
            for (int e = 0; e < E; e++) f[e] = 0;
            for (int t = b * T; t < (b + 1) * T; t++) {
                double S = 0;
                for (int e = 0; e < E; e++) S += score(c, x->rlog[(size_t)t * E + e]);
                for (int e = 0; e < E; e++) Pi[e] += score(c, x->rlog[(size_t)t * E + e]) / S / T;
                for (int k = 0; k < K; k++) f[x->idx[(size_t)t * K + k]] += (float)E / ((float)K * T);
            }
            for (int e = 0; e < E; e++) a->aux_loss += f[e] * Pi[e];
        }
    }
    /* One expert per thread (BLAS runs serially inside the region): an expert's matrices are too small
     * for two threads to share each product, and one region replaces a fork/join per product. The shared
     * expert joins the same pool as SHARED_BLOCKS blocks of tokens, handed out first (they are the
     * largest). Every task writes its own rows, so the result does not depend on the schedule. */
    int Fs = IM * c->n_shared_experts, nsh = ly->gate != (size_t)-1 ? SHARED_BLOCKS : 0;
    if (!nsh) memset(v->Y, 0, (size_t)N * D * sizeof(float));
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < nsh + E; i++) {
        if (i < nsh) {
            size_t t0 = (size_t)N * i / nsh, n = (size_t)N * (i + 1) / nsh - t0;
            k2c_swiglu_fwd(x->xn2 + t0 * D, (int)n, D, Fs, W(ly->gate), W(ly->down), x->fgu + t0 * 2 * Fs,
                           x->fh + t0 * Fs, v->Y + t0 * D);
            continue;
        }
        int e = x->busiest[i - nsh], n = x->count[e + 1] - x->count[e], base = x->count[e];
        if (!n) continue;
        const float *We = W(ly->experts + (size_t)e * ly->expert_stride);
        float *Xe = v->Xe + (size_t)base * D;
        gather_rows(Xe, x->xn2, x->order + base, n, K, D);
        k2c_swiglu_fwd(Xe, n, D, IM, We, We + (size_t)2 * IM * D, x->egu + (size_t)base * 2 * IM,
                       x->eh + (size_t)base * IM, x->ey + (size_t)base * D);
    }
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N; t++) {                   /* out = xmid + shared + the routed experts' sum */
        float *y = v->Y + (size_t)t * D, *o = out + (size_t)t * D;
        for (int k = 0; k < K; k++)
            k2c_vaxpy(y, x->wts[(size_t)t * K + k], x->ey + (size_t)x->pos[(size_t)t * K + k] * D, D);
        memcpy(o, x->xmid + (size_t)t * D, (size_t)D * sizeof *o);
        k2c_vaxpy(o, 1.0f, y, D);
    }
}

/* dX: in, the gradient at the layer output; out, the gradient at xmid. */
static void ffn_bwd(k2c_tmodel *m, k2c_tacts *a, int l, int B, int T, float loss_scale) {
    const k2c_config *c = &m->cfg;
    const k2c_tlayer *ly = &m->layers[l];
    views *v = a->lay;
    lview *x = &v->l[l];
    int N = B * T, D = c->hidden_size;
    if (!ly->is_moe) {
        k2c_swiglu_bwd(x->xn2, N, D, c->intermediate_size, W(ly->gate), W(ly->down), x->fgu, x->fh, v->h, v->dgu,
                       v->dX, v->dXN, G(ly->gate), G(ly->down));
    } else {
        int E = c->n_routed_experts, K = c->num_experts_per_tok, IM = c->moe_intermediate_size, NK = N * K;
        int Fs = IM * c->n_shared_experts, nsh = ly->gate != (size_t)-1;
        if (!nsh) memset(v->dXN, 0, (size_t)N * D * sizeof(float));
        /* y = sum_k w_k Y_k: dw_k = dy . Y_k, dY_k = w_k dy */
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < NK; i++) {
            const float *dy = v->dX + (size_t)(i / K) * D;
            int p = x->pos[i];
            v->gw[i] = k2c_vdot(dy, x->ey + (size_t)p * D, D);
            float wt = x->wts[i], *dye = v->dYe + (size_t)p * D;
            k2c_vscaled(dye, wt, dy, D);
        }
        /* One expert per thread, as in the forward; the shared expert is one task (its weight gradients
         * are sums over all tokens, which blocks of tokens would race on), handed out first. */
        #pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < nsh + E; i++) {
            if (i < nsh) {
                k2c_swiglu_bwd(x->xn2, N, D, Fs, W(ly->gate), W(ly->down), x->fgu, x->fh, v->sdh, v->sdgu, v->dX,
                               v->dXN, G(ly->gate), G(ly->down));
                continue;
            }
            int e = x->busiest[i - nsh], n = x->count[e + 1] - x->count[e], base = x->count[e];
            if (!n) continue;
            size_t off = ly->experts + (size_t)e * ly->expert_stride;
            const float *We = W(off);
            float *Ge = G(off), *Xe = v->Xe + (size_t)base * D;
            gather_rows(Xe, x->xn2, x->order + base, n, K, D);
            k2c_swiglu_bwd(Xe, n, D, IM, We, We + (size_t)2 * IM * D, x->egu + (size_t)base * 2 * IM,
                           x->eh + (size_t)base * IM, v->h + (size_t)base * IM, v->dgu + (size_t)base * 2 * IM,
                           v->dYe + (size_t)base * D, v->dXe + (size_t)base * D, Ge, Ge + (size_t)2 * IM * D);
        }
        #pragma omp parallel for schedule(static)
        for (int t = 0; t < N; t++) {
            float *dxn = v->dXN + (size_t)t * D;
            for (int k = 0; k < K; k++) k2c_vaxpy(dxn, 1.0f, v->dXe + (size_t)x->pos[(size_t)t * K + k] * D, D);
            float *dl = v->dlog + (size_t)t * E;
            const float *z = x->rlog + (size_t)t * E;
            k2c_router_bwd(c, z, x->idx + (size_t)t * K, v->gw + (size_t)t * K, dl);
            if (v->aux_alpha > 0) {
                /* L = alpha * sum_i f_i P_i per sequence, P_i = mean_t s_ti / sum_e s_te; weighted by T
                 * so that with loss_scale = 1/targets the aux term is alpha * the mean over sequences. */
                const float *f = x->auxf + (size_t)(t / T) * E;
                float s[1024], S = 0, dot = 0, coef = v->aux_alpha * loss_scale;
                for (int e = 0; e < E; e++) S += (s[e] = score(c, z[e]));
                for (int e = 0; e < E; e++) dot += coef * f[e] * s[e] / S;
                for (int e = 0; e < E; e++) dl[e] += (coef * f[e] - dot) / S * s[e] * (1.0f - s[e]);
            }
        }
        mm_bwd(v->dlog, E, N, E, x->xn2, D, D, W(ly->router), G(ly->router), v->dXN, D, 1);
    }
    rms_bwd(v->dX, D, G(ly->ffn_norm), v->dXN, D, x->xmid, D, x->r2, W(ly->ffn_norm), N, D, 1);
}

/* ------------------------------------------------------------------ whole model */
static int train_forward_impl(const k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *targets, int B, int T,
                      float aux_alpha, double *loss_sum, int *count, float *logits) {
    const k2c_config *c = &m->cfg;
    views *v = a->lay;
    int N = B * T, D = c->hidden_size, V = c->vocab_size, L = c->num_hidden_layers;
    if (B > a->B || T > a->T || B <= 0 || T <= 0) {
        k2c_seterr("batch %d x %d exceeds the activation arena (%d x %d)", B, T, a->B, a->T);
        return -1;
    }
    if (c->scoring_softmax && aux_alpha > 0) { k2c_seterr("the aux loss is implemented for sigmoid routers"); return -1; }
    if (T > c->max_position_embeddings) { k2c_seterr("sequence length %d > max_position_embeddings %d", T, c->max_position_embeddings); return -1; }
    for (int t = 0; t < N; t++) {
        if (ids[t] < 0 || ids[t] >= V) { k2c_seterr("token id %d out of range [0, %d)", ids[t], V); return -1; }
        if (targets[t] >= V) { k2c_seterr("target id %d out of range [0, %d)", targets[t], V); return -1; }
    }
    v->B = B; v->T = T; v->aux_alpha = aux_alpha;
    memcpy(v->ids, ids, (size_t)N * sizeof(int));
    memcpy(v->targets, targets, (size_t)N * sizeof(int));
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N; t++) memcpy(v->l[0].xin + (size_t)t * D, W(m->embed) + (size_t)ids[t] * D, (size_t)D * sizeof(float));
    for (int l = 0; l < L; l++) {
        attn_fwd(m, a, l, B, T);
        ffn_fwd(m, a, l, B, T, l + 1 < L ? v->l[l + 1].xin : v->xf);
    }
    rms_fwd(v->xnf, D, v->rf, v->xf, D, W(m->final_norm), N, D, (float)c->rms_norm_eps);
    mm_fwd(v->xnf, D, N, D, W(m->head), V, v->probs, V, 0);
    if (logits) memcpy(logits, v->probs, (size_t)N * V * sizeof(float));
    xent_fwd(v->probs, v->targets, N, V, v->rowloss);
    double sum = 0;
    int n = 0;
    for (int t = 0; t < N; t++) { sum += v->rowloss[t]; n += targets[t] >= 0; }
    *loss_sum = sum;
    if (count) *count = n;
    v->has_fwd = 1;
    return 0;
}

static int train_backward_impl(k2c_tmodel *m, k2c_tacts *a, float loss_scale, const float *row_scale) {
    const k2c_config *c = &m->cfg;
    views *v = a->lay;
    if (!v->has_fwd) { k2c_seterr("k2c_train_backward without a forward"); return -1; }
    int B = v->B, T = v->T, N = B * T, D = c->hidden_size, V = c->vocab_size;
    xent_bwd(v->probs, v->targets, N, V, loss_scale, row_scale);
    mm_dw(v->probs, V, N, V, v->xnf, D, D, G(m->head));
    mm_dx(v->probs, V, N, V, W(m->head), D, v->dXN, D, 0);
    rms_bwd(v->dX, D, G(m->final_norm), v->dXN, D, v->xf, D, v->rf, W(m->final_norm), N, D, 0);
    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        ffn_bwd(m, a, l, B, T, loss_scale);
        attn_bwd(m, a, l, B, T);
    }
    /* Rows of the embedding: in token order, so repeated ids add up deterministically; each thread owns a
     * block of 64 columns. */
    #pragma omp parallel for schedule(static)
    for (int d0 = 0; d0 < D; d0 += 64)
        for (int t = 0; t < N; t++)
            k2c_vaxpy(G(m->embed) + (size_t)v->ids[t] * D + d0, 1.0f, v->dX + (size_t)t * D + d0,
                      D - d0 < 64 ? D - d0 : 64);
    v->has_fwd = 0;
    return 0;
}

int k2c_train_forward(const k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *targets, int B, int T,
                      float aux_alpha, double *loss_sum, int *count, float *logits) {
    int nt = k2c_tthreads_enter(m);
    int rc = train_forward_impl(m, a, ids, targets, B, T, aux_alpha, loss_sum, count, logits);
    k2c_tthreads_leave(nt);
    return rc;
}

int k2c_train_backward(k2c_tmodel *m, k2c_tacts *a, float loss_scale) {
    int nt = k2c_tthreads_enter(m);
    int rc = train_backward_impl(m, a, loss_scale, NULL);
    k2c_tthreads_leave(nt);
    return rc;
}

int k2c_train_backward_rows(k2c_tmodel *m, k2c_tacts *a, const float *row_scale) {
    int nt = k2c_tthreads_enter(m);
    int rc = train_backward_impl(m, a, 1.0f, row_scale);
    k2c_tthreads_leave(nt);
    return rc;
}

const double *k2c_tacts_token_loss(const k2c_tacts *a) {
    const views *v = a->lay;
    return v && v->has_fwd ? v->rowloss : NULL;
}

int k2c_tacts_init(k2c_tacts *a, const k2c_tmodel *m, int B, int T) {
    int nt = k2c_tthreads_enter(m);
    int rc = tacts_init_impl(a, m, B, T);
    k2c_tthreads_leave(nt);
    return rc;
}
