/* Data parallelism over a k2c_comm (spec section 6c): ZeRO-1 sharded optimizer state and Distributed Muon.
 *
 * The parameter layout (m->w, one block of nw floats) is cut into N contiguous blocks, rank r owning block r
 * (k2c_comm_block); blocks cut through tensors wherever they fall. A step:
 *
 *   every rank: forward + backward of its sequences of the global batch into m->g (full layout, the loss
 *               scaled by the global token count, so the sum over ranks is the global gradient)
 *   reduce-scatter m->g            rank r's block of g holds the global gradient
 *   AdamW on the block             moments m, v exist for the block only (ZeRO-1)
 *   Muon momentum on the block     M = mu M + G; U = G + mu M, written over the block of g
 *   all-gather g                   every rank holds U of every Muon matrix
 *   NS5 of each Muon matrix that overlaps the block (one cut by a block boundary is orthogonalized by both
 *               ranks: a few redundant matrices instead of a second exchange); only the block's part of the
 *               update is applied
 *   all-gather w                   every rank holds the new weights for QK-Clip, the bias update and the
 *               next forward (both computed from globally reduced maxima and loads: identical on every rank)
 *
 * Each element sees exactly the arithmetic of the single-process step (muon.c), so the result equals one
 * process up to the order in which the ranks' gradients are summed. */
#include "train/train.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DP_REC = 256 };
typedef struct {
    int32_t rc, pad;
    uint64_t fingerprint;
    char msg[DP_REC - 16];
} dp_record;


/* What must be the same on every rank for the ranks to compute one run: the model (config and weights), the
 * optimizer's kind, step and hyper-parameters, the run's options and the number of training tokens. Paths and
 * thread counts may differ. */
static uint64_t fingerprint(const k2c_tmodel *m, const k2c_optim *o, const k2c_train_opts *t, uint64_t data_tokens) {
    uint64_t h = 0xcbf29ce484222325ull;
    char *js = k2c_config_to_json(&m->cfg);
    if (js) { h = k2c_fnv64(h, js, strlen(js)); free(js); }
    h = k2c_fnv64(h, &m->nw, sizeof m->nw);
    /* the weights, a word at a time (bytewise FNV over a billion parameters would take a while) */
    const uint32_t *w = (const uint32_t *)m->w;
    uint64_t hw = h;
    for (size_t i = 0; i < m->nw; i++) hw = (hw ^ w[i]) * 0x100000001b3ull;
    h = k2c_fnv64(hw, &data_tokens, sizeof data_tokens);
    float of[] = {o->lr, o->wd, o->momentum, o->beta1, o->beta2, o->eps, o->rms_scale, o->tau, o->bias_u,
                  t->decay_frac, t->lr_min, t->aux_alpha};
    long oi[] = {o->kind, o->ns_steps, o->clip_updated, o->step, t->steps, t->batch, t->seq, t->accum, t->warmup,
                 t->eval_every, t->eval_batches, t->save_every, t->stop_after, t->measure_after_step, t->save_dtype,
                 (long)t->seed};
    h = k2c_fnv64(h, of, sizeof of);
    h = k2c_fnv64(h, oi, sizeof oi);
    return k2c_fnv64(h, t->schedule, strlen(t->schedule));
}

int k2c_dp_agree(const k2c_comm *c, int local_rc, const k2c_tmodel *m, const k2c_optim *o, const k2c_train_opts *t,
                 uint64_t data_tokens) {
    int N = c->size;
    unsigned char *all = calloc((size_t)N, DP_REC);
    size_t *counts = malloc((size_t)N * sizeof *counts);
    if (!all || !counts) { free(all); free(counts); k2c_seterr("out of memory"); return -1; }
    for (int r = 0; r < N; r++) counts[r] = DP_REC;
    dp_record own = {.rc = local_rc ? 1 : 0};
    if (local_rc) snprintf(own.msg, sizeof own.msg, "%s", k2c_errmsg());
    else own.fingerprint = fingerprint(m, o, t, data_tokens);
    memcpy(all + (size_t)c->rank * DP_REC, &own, sizeof own);
    char why[K2C_ERRMSG_MAX] = "";
    if (c->allgather(c, all, counts, K2C_COMM_U8)) snprintf(why, sizeof why, "%s", k2c_errmsg());
    for (int r = 0; r < N && !why[0]; r++) {
        dp_record rec, r0;
        memcpy(&rec, all + (size_t)r * DP_REC, sizeof rec);
        memcpy(&r0, all, sizeof r0);
        rec.msg[sizeof rec.msg - 1] = 0;
        if (rec.rc) snprintf(why, sizeof why, "rank %d of %d: %s", r, N, rec.msg);
        else if (!r0.rc && rec.fingerprint != r0.fingerprint)
            snprintf(why, sizeof why,
                     "rank %d of %d does not run the same training as rank 0 (model config or weights, optimizer, "
                     "step, training options or data size differ); every rank must be started with the same "
                     "arguments and files", r, N);
    }
    free(all);
    free(counts);
    if (why[0]) { k2c_seterr("%s", why); return -1; }
    return 0;
}

/* counts[r]: floats in rank r's block of the nw-float layout */
static size_t *block_counts(const k2c_comm *c, size_t nw) {
    size_t *counts = malloc((size_t)c->size * sizeof *counts);
    if (!counts) { k2c_seterr("out of memory"); return NULL; }
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        k2c_comm_block(nw, c->size, r, &lo, &hi);
        counts[r] = hi - lo;
    }
    return counts;
}

int k2c_dp_shard(k2c_optim *o, const k2c_tmodel *m, const k2c_comm *c) {
    size_t lo, hi;
    k2c_comm_block(m->nw, c->size, c->rank, &lo, &hi);
    size_t n = hi - lo ? hi - lo : 1;
    float *mm = malloc(n * sizeof *mm), *vv = malloc(n * sizeof *vv);
    if (!mm || !vv) { free(mm); free(vv); k2c_seterr("out of memory for the optimizer shard (%zu floats)", n); return -1; }
    memcpy(mm, o->m + lo, (hi - lo) * sizeof *mm);
    memcpy(vv, o->v + lo, (hi - lo) * sizeof *vv);
    free(o->m);
    free(o->v);
    o->m = mm;
    o->v = vv;
    o->sharded = 1;
    o->shard_lo = lo;
    o->shard_hi = hi;
    return 0;
}

int k2c_dp_stats(k2c_tacts *a, const k2c_tmodel *m, const k2c_comm *c, double *loss) {
    const k2c_config *cf = &m->cfg;
    size_t LH = (size_t)cf->num_hidden_layers * cf->num_attention_heads;
    size_t LE = (size_t)cf->num_hidden_layers * (cf->n_routed_experts + 1);
    double sums[2] = {loss ? *loss : 0, a->aux_loss};
    if (c->reduce(c, a->attn_max, LH, K2C_COMM_F32, K2C_COMM_MAX, -1) ||
        c->reduce(c, a->load, LE, K2C_COMM_F64, K2C_COMM_SUM, -1) || c->reduce(c, sums, 2, K2C_COMM_F64, K2C_COMM_SUM, -1))
        return -1;
    if (loss) *loss = sums[0];
    a->aux_loss = sums[1];
    return 0;
}

int k2c_dp_reduce_grads(k2c_tmodel *m, const k2c_optim *o, const k2c_comm *c, double *gn) {
    size_t *counts = block_counts(c, m->nw);
    if (!counts) return -1;
    int rc = c->reduce_scatter(c, m->g, counts, K2C_COMM_F32);
    free(counts);
    if (rc) return -1;
    /* fixed chunks summed in order, then the ranks' sums: the norm does not depend on the thread count */
    size_t lo = o->shard_lo, hi = o->shard_hi;
    double s = 0;
    for (size_t c0 = lo; c0 < hi; c0 += 65536) {
        size_t e = c0 + 65536 < hi ? c0 + 65536 : hi;
        double a = 0;
        for (size_t i = c0; i < e; i++) a += (double)m->g[i] * m->g[i];
        s += a;
    }
    if (c->reduce(c, &s, 1, K2C_COMM_F64, K2C_COMM_SUM, -1)) return -1;
    *gn = sqrt(s);
    return 0;
}

/* The part [*a, *b) of parameter p that lies in [lo, hi); 0 if none. */
static int overlap(const k2c_param *p, size_t lo, size_t hi, size_t *a, size_t *b) {
    *a = p->off > lo ? p->off : lo;
    *b = p->off + p->numel < hi ? p->off + p->numel : hi;
    return *a < *b;
}

static int dp_step_impl(k2c_optim *o, k2c_tmodel *m, float lr, const k2c_comm *c) {
    size_t lo = o->shard_lo, hi = o->shard_hi;
    int muon = o->kind != K2C_OPT_ADAMW, rc = -1;
    size_t *counts = block_counts(c, m->nw);
    if (!counts) return -1;
    o->step++;
    double t = (double)o->step;
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps, mu = o->momentum, decay = 1.0f - lr * o->wd;
    float ic1 = (float)(1.0 / (1.0 - pow(b1, t))), ic2 = (float)(1.0 / (1.0 - pow(b2, t)));
    /* the block's elements: AdamW, or Muon's momentum (U over g) */
    #pragma omp parallel for schedule(dynamic, 1)
    for (int pi = 0; pi < m->nparams; pi++) {
        const k2c_param *p = &m->params[pi];
        size_t a, b;
        if (p->kind == K2C_P_BIAS || !overlap(p, lo, hi, &a, &b)) continue;
        if (muon && p->kind == K2C_P_MUON) k2c_vnesterov(o->m + (a - lo), m->g + a, m->g + a, mu, b - a);
        else k2c_vadamw(m->w + a, o->m + (a - lo), o->v + (a - lo), m->g + a, b - a, b1, b2, ic1, ic2, lr, decay, eps);
    }
    if (muon) {
        if (c->allgather(c, m->g, counts, K2C_COMM_F32)) goto done;
        int nt = omp_get_max_threads() < o->scratch_threads ? omp_get_max_threads() : o->scratch_threads;
        size_t per = o->nscratch / (size_t)nt;
        #pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int pi = 0; pi < m->nparams; pi++) {
            const k2c_param *p = &m->params[pi];
            size_t a, b;
            if (p->kind != K2C_P_MUON || !overlap(p, lo, hi, &a, &b)) continue;
            int A = (int)p->shape[0], B = (int)p->shape[1];
            float *U = o->scratch + per * (size_t)omp_get_thread_num();
            memcpy(U, m->g + p->off, p->numel * sizeof *U);
            k2c_ns5(U, A, B, o->ns_steps, U + p->numel);
            float step = lr * o->rms_scale * sqrtf((float)(A > B ? A : B));
            k2c_vdecay_step(m->w + a, decay, step, U + (a - p->off), b - a);
        }
    }
    if (c->allgather(c, m->w, counts, K2C_COMM_F32)) goto done;
    rc = 0;
done:
    free(counts);
    return rc;
}

int k2c_dp_step(k2c_optim *o, k2c_tmodel *m, float lr, const k2c_comm *c) {
    if (!o->sharded) { k2c_seterr("data-parallel step on an optimizer that is not sharded (k2c_dp_shard)"); return -1; }
    int nt = k2c_tthreads_enter(m);
    int rc = dp_step_impl(o, m, lr, c);
    k2c_tthreads_leave(nt);
    return rc;
}

int k2c_dp_gather(const k2c_optim *o, const k2c_tmodel *m, const k2c_comm *c, k2c_optim *full) {
    size_t *counts = block_counts(c, m->nw), n = o->shard_hi - o->shard_lo;
    *full = *o;
    full->scratch = NULL;
    full->nscratch = 0;
    full->sharded = 0;
    full->m = malloc((m->nw ? m->nw : 1) * sizeof *full->m);
    full->v = malloc((m->nw ? m->nw : 1) * sizeof *full->v);
    int rc = -1;
    if (!counts || !full->m || !full->v) { k2c_seterr("out of memory for the optimizer state (%zu floats)", m->nw); goto done; }
    memcpy(full->m + o->shard_lo, o->m, n * sizeof *o->m);
    memcpy(full->v + o->shard_lo, o->v, n * sizeof *o->v);
    if (c->gather(c, full->m, counts, K2C_COMM_F32) || c->gather(c, full->v, counts, K2C_COMM_F32)) goto done;
    rc = 0;
done:
    free(counts);
    if (rc || c->rank != 0) k2c_optim_free(full);
    return rc;
}
