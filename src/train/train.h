/* train — the trainer: fp32 parameters in one block (train_model.c), forward and backward with every
 * activation kept in one arena (train_fwd.c), MuonClip / Muon / AdamW (muon.c), token shards (data.c), the
 * loop with checkpoints and resume (train_loop.c), SVG plots (plot.c). Its public face is k2c_train.h.
 * Internal to libk2c. */
#ifndef K2C_TRAIN_INT_H
#define K2C_TRAIN_INT_H

#include "k2c_train.h"
#include "model/model.h"

#include <omp.h>

/* The trainer's parallel regions size their work from omp_get_max_threads(). Each entry point sets the
 * calling thread's OpenMP thread count from m->nthreads and restores it on the way out: an OpenMP ICV
 * belongs to the calling thread, so two trainers in one process (or a trainer beside a server) do not see
 * each other's setting. */
static inline int k2c_tthreads_enter(const k2c_tmodel *m) {
    int old = omp_get_max_threads();
    if (m->nthreads > 0 && !omp_in_parallel()) omp_set_num_threads(m->nthreads);
    return old;
}
static inline void k2c_tthreads_leave(int old) {
    if (!omp_in_parallel()) omp_set_num_threads(old);
}

/* Single-op forward/backward pairs (public for the finite-difference tests). Rows are tokens. */
void k2c_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int n, float eps);
/* dx = d/dx, dw += d/dw given dy; x, rstd from the forward. dx may alias dy. */
void k2c_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                     int N, int n);
/* Causal attention of one head over T positions: S = scale*(qn.kn + qp.kp), P = softmax, o = P v.
 * q [T, qs] rows hold qn [dn] then qp [dr]; kn/v rows [T, ks] (kn at 0, v at dn); kp [T, dr].
 * P [T, T] keeps the probabilities; *smax gets the largest logit. */
void k2c_attn_fwd(const float *q, int qs, const float *kv, int ks, const float *kp, int T, int dn, int dr, int dv,
                  float scale, float *P, float *o, int os, float *smax);
/* dq [T, qs], dkv [T, ks], dkp [T, dr] (all overwritten) from do [T, os]. tmp [T, T] scratch. */
void k2c_attn_bwd(const float *q, int qs, const float *kv, int ks, const float *kp, int T, int dn, int dr, int dv,
                  float scale, const float *P, const float *dout, int os, float *dq, float *dkv, float *dkp, float *tmp);
/* SwiGLU expert on N rows: y [N, D] = Wd (silu(Wg x) * Wu x). Wgu [2F, D] holds Wg's rows then Wu's (as the
 * trainer's parameter table lays out gate_proj and up_proj); gu [N, 2F] keeps each row's gate then up outputs. */
void k2c_swiglu_fwd(const float *x, int N, int D, int F, const float *Wgu, const float *Wd, float *gu, float *h,
                    float *y);
/* dx [N, D] (overwritten, may be NULL), dWgu [2F, D] and dWd += ; gu and h [N, F] from the forward; dh [N, F] and
 * dgu [N, 2F] scratch. */
void k2c_swiglu_bwd(const float *x, int N, int D, int F, const float *Wgu, const float *Wd, const float *gu,
                    const float *h, float *dh, float *dgu, const float *dy, float *dx, float *dWgu, float *dWd);
/* Router weights of the chosen experts from the router logits [E]: dlogits [E] (overwritten) from dw [k]
 * (the gradient of the k weights k2c_moe_route produced for idx). */
void k2c_router_bwd(const k2c_config *c, const float *logits, const int *idx, const float *dw, float *dlogits);
/* Cross-entropy of logits [N, V] against targets (-1 skipped): returns the summed loss; logits become
 * scale * (softmax - onehot) (zero rows for skipped targets). */
double k2c_xent_fwd_bwd(float *logits, const int *targets, int N, int V, float scale);


/* ------------------------------------------------------------------ data parallelism (train_dp.c) */
/* Every rank's setup result and a fingerprint of what must agree (model, optimizer, options, data size):
 * 0 on every rank, or -1 on every rank with the reason (naming the rank). */
int k2c_dp_agree(const k2c_comm *c, int local_rc, const k2c_tmodel *m, const k2c_optim *o, const k2c_train_opts *t,
                 uint64_t data_tokens);
/* Keeps this rank's block of o's moments (ZeRO-1). */
int k2c_dp_shard(k2c_optim *o, const k2c_tmodel *m, const k2c_comm *c);
/* The step's statistics summed (loads, aux loss) or maxed (per-head logits) over the ranks; *loss summed. */
int k2c_dp_stats(k2c_tacts *a, const k2c_tmodel *m, const k2c_comm *c, double *loss);
/* Reduce-scatter of m->g (this rank's block then holds the global gradient) and its global norm in *gn. */
int k2c_dp_reduce_grads(k2c_tmodel *m, const k2c_optim *o, const k2c_comm *c, double *gn);
/* One optimizer step on this rank's block (AdamW, Distributed Muon), then the all-gather of the weights. */
int k2c_dp_step(k2c_optim *o, k2c_tmodel *m, float lr, const k2c_comm *c);
/* Rank 0: *full gets the whole optimizer state (moments gathered; free with k2c_optim_free); other ranks send
 * their blocks. Every rank calls it. */
int k2c_dp_gather(const k2c_optim *o, const k2c_tmodel *m, const k2c_comm *c, k2c_optim *full);

#endif
