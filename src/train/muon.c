/* Optimizers (spec section 6): Muon with Nesterov momentum and NS5 orthogonalization for the 2-D hidden
 * matrices (every expert matrix and the router separately), AdamW for embeddings, head and vectors;
 * QK-Clip after the step and the aux-loss-free router-bias update.
 *
 *   Muon  M = mu M + G;  U = G + mu M;  O = NS5(U);  W = W (1 - lr wd) - lr * 0.2 sqrt(max(A, B)) O
 *   AdamW m = b1 m + (1-b1) G;  v = b2 v + (1-b2) G^2;  W = W (1 - lr wd) - lr mhat / (sqrt(vhat) + eps)
 * Weight decay applies to every trained tensor (norm gains and embeddings too), as the golden case does. */
#include "train/train.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void k2c_optim_defaults(k2c_optim *o, k2c_opt_kind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = 2e-4f; o->wd = 0.1f; o->momentum = 0.95f; o->beta1 = 0.9f; o->beta2 = 0.95f; o->eps = 1e-8f;
    o->rms_scale = 0.2f; o->tau = kind == K2C_OPT_MUONCLIP ? 100.0f : 0.0f; o->bias_u = 1e-3f; o->ns_steps = 5;
}

static int optim_init_impl(k2c_optim *o, const k2c_tmodel *m) {
    size_t mx = 0;
    for (int i = 0; i < m->nparams; i++) {
        const k2c_param *p = &m->params[i];
        if (p->ndim != 2) continue;
        size_t a = (size_t)p->shape[0], b = (size_t)p->shape[1], mn = a < b ? a : b;
        size_t need = 3 * p->numel + 2 * mn * mn;   /* U, then NS5 scratch (transpose, A, B, BX) */
        if (need > mx) mx = need;
    }
    o->m = calloc(m->nw ? m->nw : 1, sizeof *o->m);
    o->v = calloc(m->nw ? m->nw : 1, sizeof *o->v);
    /* one scratch per thread: the Muon matrices are stepped in parallel (muon_all) */
    int nt = omp_get_max_threads();
    o->scratch = malloc((mx ? mx : 1) * (size_t)nt * sizeof *o->scratch);
    o->nscratch = mx * (size_t)nt;
    o->scratch_threads = nt;
    if (!o->m || !o->v || !o->scratch) {
        k2c_optim_free(o);
        k2c_seterr("out of memory for the optimizer state (%zu parameters)", m->nw);
        return -1;
    }
    return 0;
}

void k2c_optim_free(k2c_optim *o) {
    free(o->m); free(o->v); free(o->scratch);
    o->m = o->v = o->scratch = NULL;
}

/* X [rows, cols] with rows <= cols after the caller's transpose. tmp: 2*rows^2 + rows*cols floats.
 * X <- X / (||X||_F + 1e-7); 5 times: A = X X^T; B = b A + c A A; X = a X + B X.
 * A and A A are symmetric (A A = A A^T), so both come from ssyrk, which computes one triangle: a third fewer
 * FLOPs per iteration at rows = cols / 2 (an expert's gate or up matrix). The other triangle is mirrored. */
static void mirror_upper(float *S, int n) {
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) S[(size_t)i * n + j] = S[(size_t)j * n + i];
}

static void ns5_wide(float *X, int rows, int cols, int steps, float *tmp) {
    const float a = 3.4445f, b = -4.7750f, c = 2.0315f;
    float *A = tmp, *Bm = A + (size_t)rows * rows, *BX = Bm + (size_t)rows * rows;
    double nrm = 0;
    size_t n = (size_t)rows * cols;
    for (size_t i = 0; i < n; i++) nrm += (double)X[i] * X[i];
    float inv = (float)(1.0 / (sqrt(nrm) + 1e-7));
    for (size_t i = 0; i < n; i++) X[i] *= inv;
    for (int s = 0; s < steps; s++) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, rows, cols, 1.0f, X, cols, 0.0f, A, rows);
        mirror_upper(A, rows);
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, rows, rows, c, A, rows, 0.0f, Bm, rows);
        for (int i = 0; i < rows; i++)
            for (int j = i; j < rows; j++) Bm[(size_t)i * rows + j] += b * A[(size_t)i * rows + j];
        mirror_upper(Bm, rows);
        memcpy(BX, X, n * sizeof *X);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, rows, 1.0f, Bm, rows, X, cols, a, BX, cols);
        memcpy(X, BX, n * sizeof *X);
    }
}

void k2c_ns5(float *X, int rows, int cols, int steps, float *tmp) {
    if (rows <= cols) { ns5_wide(X, rows, cols, steps, tmp); return; }
    /* tall: orthogonalize the transpose (rows <= cols there) and transpose back */
    size_t n = (size_t)rows * cols;
    float *Xt = tmp, *t2 = tmp + n;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) Xt[(size_t)j * rows + i] = X[(size_t)i * cols + j];
    ns5_wide(Xt, cols, rows, steps, t2);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) X[(size_t)i * cols + j] = Xt[(size_t)j * rows + i];
}

static void muon_one(k2c_optim *o, const k2c_param *p, float *w, const float *g, float *mom, float lr, float *U) {
    int A = (int)p->shape[0], B = (int)p->shape[1];
    size_t n = p->numel;
    float *tmp = U + n, mu = o->momentum;
    k2c_vnesterov(mom, U, g, mu, n);
    k2c_ns5(U, A, B, o->ns_steps, tmp);
    float step = lr * o->rms_scale * sqrtf((float)(A > B ? A : B)), decay = 1.0f - lr * o->wd;
    k2c_vdecay_step(w, decay, step, U, n);
}

/* AdamW on every parameter that takes it, in one parallel region (a step has hundreds of small tensors;
 * a region each would spend more on waking threads than on the arithmetic). Elements are independent, so
 * the split between threads does not change the result. */
static void adamw_all(k2c_optim *o, k2c_tmodel *m, int muon, float lr) {
    double t = (double)o->step;
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    float ic1 = (float)(1.0 / (1.0 - pow(b1, t))), ic2 = (float)(1.0 / (1.0 - pow(b2, t))), decay = 1.0f - lr * o->wd;
    #pragma omp parallel
    for (int pi = 0; pi < m->nparams; pi++) {
        const k2c_param *p = &m->params[pi];
        if (p->kind == K2C_P_BIAS || (muon && p->kind == K2C_P_MUON)) continue;
        size_t n = p->numel, nc = (n + 4095) / 4096;       /* chunks of 4096 elements */
        #pragma omp for schedule(static) nowait
        for (size_t ci = 0; ci < nc; ci++) {
            size_t o0 = p->off + ci * 4096, len = n - ci * 4096 < 4096 ? n - ci * 4096 : 4096;
            k2c_vadamw(m->w + o0, o->m + o0, o->v + o0, m->g + o0, len, b1, b2, ic1, ic2, lr, decay, eps);
        }
    }
}

static void optim_step_impl(k2c_optim *o, k2c_tmodel *m, float lr) {
    o->step++;
    int muon = o->kind != K2C_OPT_ADAMW;
    adamw_all(o, m, muon, lr);
    if (!muon) return;
    /* Many small matrices (every expert's): one matrix per thread, each NS5 single-threaded inside
     * (OpenBLAS runs serially within a parallel region). Each matrix's arithmetic does not depend on
     * which thread takes it, so the result is the same for any schedule. */
    int nt = omp_get_max_threads() < o->scratch_threads ? omp_get_max_threads() : o->scratch_threads;
    size_t per = o->nscratch / (size_t)nt;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < m->nparams; i++) {
        const k2c_param *p = &m->params[i];
        if (p->kind != K2C_P_MUON) continue;
        muon_one(o, p, m->w + p->off, m->g + p->off, o->m + p->off, lr, o->scratch + per * (size_t)omp_get_thread_num());
    }
}

/* QK-Clip: scale head h's query and key projections so its largest logit would have been tau.
 * q_nope rows and k_nope rows share the factor sqrt(g) (their product scales by g); q_pe rows take all
 * of g because k_pe is shared by every head and must stay untouched. v rows are not logits: untouched. */
int k2c_qk_clip(k2c_tmodel *m, const float *attn_max, float tau, unsigned char *clipped) {
    const k2c_config *c = &m->cfg;
    int H = c->num_attention_heads, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim;
    int qd = dn + dr, kvd = dn + dv, ncl = 0;
    if (clipped) memset(clipped, 0, (size_t)c->num_hidden_layers * H);
    if (tau <= 0) return 0;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const k2c_tlayer *ly = &m->layers[l];
        size_t qoff = c->q_lora_rank ? ly->q_b : ly->q;
        int qcols = c->q_lora_rank ? c->q_lora_rank : c->hidden_size, r = c->kv_lora_rank;
        for (int h = 0; h < H; h++) {
            float S = attn_max[l * H + h];
            if (!(S > tau)) continue;
            float g = tau / S, sg = sqrtf(g);
            float *q = m->w + qoff + (size_t)h * qd * qcols;
            for (size_t i = 0; i < (size_t)dn * qcols; i++) q[i] *= sg;
            for (size_t i = (size_t)dn * qcols; i < (size_t)qd * qcols; i++) q[i] *= g;
            float *k = m->w + ly->kv_b + (size_t)h * kvd * r;
            for (size_t i = 0; i < (size_t)dn * r; i++) k[i] *= sg;
            if (clipped) clipped[l * H + h] = 1;
            ncl++;
        }
    }
    return ncl;
}

void k2c_bias_update(k2c_tmodel *m, const double *load, float u, float *maxvio) {
    const k2c_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->num_experts_per_tok;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const k2c_tlayer *ly = &m->layers[l];
        if (maxvio) maxvio[l] = 0;
        if (!ly->is_moe) continue;
        const double *ld = load + (size_t)l * (E + 1);
        double mean = ld[E] * K / E, mx = 0;           /* ld[E]: tokens routed in this layer */
        for (int e = 0; e < E; e++) if (ld[e] > mx) mx = ld[e];
        if (maxvio) maxvio[l] = mean > 0 ? (float)((mx - mean) / mean) : 0;
        if (u == 0 || mean <= 0) continue;
        float *b = m->w + ly->bias;
        for (int e = 0; e < E; e++) {
            double d = mean - ld[e];
            b[e] += u * (float)((d > 0) - (d < 0));
        }
    }
}

void k2c_optim_step(k2c_optim *o, k2c_tmodel *m, float lr) {
    int nt = k2c_tthreads_enter(m);
    optim_step_impl(o, m, lr);
    k2c_tthreads_leave(nt);
}

int k2c_optim_init(k2c_optim *o, const k2c_tmodel *m) {
    int nt = k2c_tthreads_enter(m);
    int rc = optim_init_impl(o, m);
    k2c_tthreads_leave(nt);
    return rc;
}
