/* k2c — the trainer's public API: the Kimi K2 architecture in fp32 with forward and backward, MuonClip /
 * Muon / AdamW, token shards, the training loop with checkpoints, loss plots. Inference on a saved
 * checkpoint uses k2c.h (a checkpoint is a Hugging Face folder). */
#ifndef K2C_TRAIN_H
#define K2C_TRAIN_H

#include "k2c.h"

/* ------------------------------------------------------------------ training (train_*.c, muon.c, data.c) */
/* The trainer keeps every trained tensor in fp32 in ONE block (w), its gradient in a second block of the
 * same layout (g), and the optimizer moments in blocks of the same layout too, so a tensor is an offset.
 * The tensor table names each one as spec section 2, so a saved checkpoint loads with k2c_model_load. */
typedef enum { K2C_P_MUON, K2C_P_ADAMW, K2C_P_BIAS } k2c_pkind;   /* BIAS: router bias, no gradient */
typedef struct {
    char name[112];
    int ndim;
    int64_t shape[2];
    size_t off, numel;          /* floats into w / g */
    k2c_pkind kind;
    int layer;                  /* -1 for embeddings, head, final norm */
} k2c_param;

typedef struct {                /* offsets into w / g; (size_t)-1 when absent */
    size_t attn_norm, ffn_norm, q_a, q_a_norm, q_b, q, kv_a, kv_a_norm, kv_b, o;
    int is_moe;
    size_t gate, up, down;      /* dense FFN, or the shared experts of an MoE layer */
    size_t router, bias;        /* [E, D], [E] */
    size_t experts, expert_stride;  /* expert e: gate at experts + e*stride, up + I*D, down + 2*I*D */
} k2c_tlayer;

typedef struct {
    k2c_config cfg;
    int nparams;
    k2c_param *params;
    size_t nw;                  /* floats in w and g */
    float *w, *g;
    size_t embed, head, final_norm;
    k2c_tlayer *layers;
    float inv_freq[512];        /* [dr/2] */
    float rope_mscale, attn_scale;
    int nthreads;               /* OpenMP threads of every call on this model; 0: every core */
} k2c_tmodel;

/* Random init (normal 0.02 for matrices, ones for norm gains, zero router bias) from seed. */
int k2c_tmodel_init(k2c_tmodel *m, const k2c_config *c, uint64_t seed);
/* From a checkpoint folder (F32/BF16/F16 tensors; quantized checkpoints are refused). */
int k2c_tmodel_load(k2c_tmodel *m, const char *dir);
/* config.json + model.safetensors (dtype K2C_F32 or K2C_BF16; the router bias stays F32), atomically. */
int k2c_tmodel_save(const k2c_tmodel *m, const char *dir, k2c_dtype dtype);
void k2c_tmodel_free(k2c_tmodel *m);
const k2c_param *k2c_tmodel_find(const k2c_tmodel *m, const char *name);

/* Activations of one forward pass over B sequences of T tokens, kept for the backward in one arena. */
typedef struct {
    int B, T;                   /* capacity */
    float *arena; size_t narena;
    int *iarena; size_t niarena;
    float *scratch; size_t nscratch;
    void *lay;                  /* per-layer views into the arenas (train_fwd.c) */
    float *attn_max;            /* [L, H] largest pre-softmax logit since k2c_tacts_reset_stats */
    double *load;               /* [L, E+1] tokens routed to each expert since the reset; [l, E]: tokens */
    double aux_loss;            /* sequence-wise aux loss (unweighted sum) since the reset */
} k2c_tacts;
int k2c_tacts_init(k2c_tacts *a, const k2c_tmodel *m, int B, int T);
void k2c_tacts_free(k2c_tacts *a);
void k2c_tacts_reset_stats(k2c_tacts *a, const k2c_tmodel *m);

/* Forward over ids [B, T] (each row its own causal sequence), cross-entropy against targets [B, T]
 * (-1 = no target). Returns the SUM of the token losses in *loss_sum and the number of targets in *count.
 * logits [B*T, V] receives the logits when not NULL. aux_alpha > 0 adds the sequence-wise aux loss. */
int k2c_train_forward(const k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *targets, int B, int T,
                      float aux_alpha, double *loss_sum, int *count, float *logits);
/* Backward of the last k2c_train_forward: m->g += loss_scale * d(loss_sum)/dw (loss_scale = 1/targets
 * of the whole step gives the mean). The aux loss gradient is included when the forward had aux_alpha. */
int k2c_train_backward(k2c_tmodel *m, k2c_tacts *a, float loss_scale);
/* The same with a weight per token: m->g += d(sum_t row_scale[t] * loss_t)/dw (row_scale [B*T]; the aux loss,
 * if the forward had one, with weight 1). */
int k2c_train_backward_rows(k2c_tmodel *m, k2c_tacts *a, const float *row_scale);
/* -log p(target) of each token of the last forward [B*T] (0 where the target is -1); NULL without a forward
 * waiting for its backward. */
const double *k2c_tacts_token_loss(const k2c_tacts *a);

/* ---- the RL objective (rl.c; spec 6b). For one task x with K samples y_i from pi_old and rewards r_i:
 *   L = (1/K) sum_i (r_i - mean_j r_j - tau * (logp_i - logp_old_i))^2,   logp_i = log pi(y_i | x)
 * (summed over the sample's own tokens). Returns L; dlogp [K] (may be NULL) gets dL/dlogp_i. */
double k2c_rl_objective(int K, const double *reward, const double *logp, const double *logp_old, double tau, double *dlogp);
/* The objective of one task on the model: rows b of ids/targets [B, T] belong to sample sample[b] (0..K-1;
 * a multi-turn sample spans several rows), targets are the sampled tokens (-1 elsewhere). Computes every
 * logp_i with one forward (logp [K] out, may be NULL), L (returned in *loss), and m->g += weight * dL/dw. */
int k2c_rl_task_grad(k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *targets, const int *sample, int B, int T,
                     int K, const double *reward, const double *logp_old, double tau, float weight, double *loss,
                     double *logp);
/* log pi of each sample (teacher-forced): logp [K]; pi_old of a rollout, or the reference policy's for KL. */
int k2c_rl_logp(const k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *targets, const int *sample, int B, int T,
                int K, double *logp);

/* ---- optimizers (muon.c) */
typedef enum { K2C_OPT_MUONCLIP, K2C_OPT_MUON, K2C_OPT_ADAMW } k2c_opt_kind;
typedef struct {
    k2c_opt_kind kind;
    float lr, wd, momentum, beta1, beta2, eps, rms_scale, tau, bias_u;
    int ns_steps;
    int clip_updated;           /* QK-Clip from max logits re-measured after the update (one more forward of the
                                 * step's batch) instead of those of the step's forward (0: K2's algorithm) */
    long step;                  /* optimizer steps taken */
    float *m, *v;               /* [nw]: Muon momentum / Adam first moment, Adam second moment */
    float *scratch;
    size_t nscratch;
    int scratch_threads;        /* threads the scratch was sized for: a step never runs more */
    /* ZeRO-1 (data-parallel runs, train_dp.c): m and v hold only this rank's block [shard_lo, shard_hi) of the
     * parameter layout; sharded 0: they hold all nw floats. */
    int sharded;
    size_t shard_lo, shard_hi;
} k2c_optim;
void k2c_optim_defaults(k2c_optim *o, k2c_opt_kind kind);   /* K2 values: lr 2e-4, wd 0.1, tau 100, u 1e-3 */
int k2c_optim_init(k2c_optim *o, const k2c_tmodel *m);      /* allocates the moment blocks (zeros) */
void k2c_optim_free(k2c_optim *o);
/* One step on every tensor with m->g at learning rate lr (Muon for K2C_P_MUON tensors unless kind is
 * ADAMW; AdamW otherwise; router biases skipped). */
void k2c_optim_step(k2c_optim *o, k2c_tmodel *m, float lr);
/* QK-Clip with per-head max logits attn_max [L, H]; clipped [L, H] (may be NULL) gets 1 where a head was
 * scaled. Returns the number of clipped heads. tau <= 0 disables. */
int k2c_qk_clip(k2c_tmodel *m, const float *attn_max, float tau, unsigned char *clipped);
/* Aux-loss-free balancing: b_i += u * sign(mean_load - load_i) per MoE layer; load [L, E+1]. maxvio [L]
 * (may be NULL) gets (max load - mean) / mean (0 for dense layers). */
void k2c_bias_update(k2c_tmodel *m, const double *load, float u, float *maxvio);
/* Newton-Schulz quintic orthogonalization of X [rows, cols] in place; tmp holds 2*min^2 + 2*rows*cols floats. */
void k2c_ns5(float *X, int rows, int cols, int steps, float *tmp);

/* ---- data (data.c): token shards "K2CTOKS\0", u32 version, u32 token bytes (4), u64 count, u32 ids, and in
 * version 2 a u8 mask per token: bit 0 the token is a target with loss (0: context only), bit 1 a conversation
 * starts at it */
int k2c_shard_write(const char *path, const uint32_t *ids, uint64_t n);   /* version 1, atomic */
int k2c_shard_write_masked(const char *path, const uint32_t *ids, const uint8_t *mask, uint64_t n);  /* mask NULL: v1 */
typedef struct {
    int nshards;
    uint32_t **tok; uint64_t *ntok; void **map; size_t *mapsz;
    const uint8_t **mask;       /* [nshards]: the shard's loss mask, NULL for version 1 (all targets) */
    int masked;                 /* some shard carries a mask */
    uint64_t *starts, nstarts;  /* conversation starts (mask bit 1): windows begin there when there are any */
    uint64_t total;
} k2c_dataset;
/* Opens DIR/PREFIX*.bin (prefix "train" or "val"). */
int k2c_dataset_open(k2c_dataset *d, const char *dir, const char *prefix);
void k2c_dataset_close(k2c_dataset *d);
/* Window number idx of a run: T+1 tokens at a position that depends only on (seed, idx); targets whose
 * token is masked out are -1. */
void k2c_dataset_window(const k2c_dataset *d, uint64_t seed, uint64_t idx, int T, int *ids, int *targets);

/* ---- the training loop (train_loop.c) */
typedef struct {
    const char *data_dir;       /* DIR with train*.bin (and val*.bin for evaluation) */
    const char *out_dir;        /* checkpoints: OUT/step_NNNNNNN/ + OUT/LATEST */
    const char *log_path;       /* JSONL, one line per step */
    int steps, batch, seq, accum, warmup, eval_every, eval_batches, save_every, progress;
    int stop_after;             /* stop after this step as if killed (tests); 0: run to the end */
    char schedule[16];          /* "wsd", "cosine" or "const" */
    float decay_frac;           /* WSD: share of the steps in the final (cosine) decay */
    float lr_min;               /* end of the decay (default 0.1 x peak) */
    uint64_t seed;              /* data windows */
    float aux_alpha;            /* sequence-wise aux loss weight (0: off) */
    int measure_after_step;     /* re-run the step's forward after the update and QK-Clip (log: max_logit_after_step) */
    k2c_dtype save_dtype;       /* K2C_F32 or K2C_BF16 for model.safetensors */
    /* Data parallelism over these ranks (NULL or one rank: one process). Every rank runs k2c_train_run with the
     * same model, optimizer and options (checked: they refuse to start otherwise); each takes its share of every
     * global batch of `batch` sequences, gradients are reduce-scattered once per step, the optimizer state is
     * sharded (ZeRO-1), Muon runs as Distributed Muon, QK-Clip and the router-bias update use the global maximum
     * logits and loads. Rank 0 alone writes the log and the checkpoints, which have the single-process layout
     * (a run resumes on any number of ranks). After the run o's moments hold this rank's shard. */
    const k2c_comm *comm;
} k2c_train_opts;
void k2c_train_opts_defaults(k2c_train_opts *t);
float k2c_lr_at(const k2c_train_opts *t, float peak, long step);   /* step counts from 1 */
/* Trains from o->step + 1 to t->steps. */
int k2c_train_run(k2c_tmodel *m, k2c_optim *o, const k2c_train_opts *t);
/* A checkpoint folder: config.json + model.safetensors (loadable by k2c_model_load) + optimizer.safetensors
 * (step, moments, fp32 master weights, data seed). */
int k2c_ckpt_save(const k2c_tmodel *m, const k2c_optim *o, const char *dir, k2c_dtype dtype, uint64_t seed);
/* path: a checkpoint folder or a run folder with LATEST. Loads the model, the optimizer state (o's
 * hyper-parameters stay as the caller set them; o is initialized here) and the data seed. */
int k2c_ckpt_load(k2c_tmodel *m, k2c_optim *o, const char *path, uint64_t *seed);

/* ---- plot (plot.c): SVG line charts of JSONL logs */
int k2c_plot_logs(const char *out, int nlogs, const char *const *logs, const char *x_key);


#endif
