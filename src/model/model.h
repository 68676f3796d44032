/* model — the Kimi K2 forward pass over weights in their stored format.
 *
 *   model.c     bind tensor names to the layer structs (every name, shape and dtype checked)
 *   model_gguf.c the same for deepseek2 GGUF files (llama.cpp names, ggml types, stacked experts)
 *   rope.c      interleaved RoPE with YaRN
 *   mla.c       Multi-head Latent Attention over the latent cache: absorbed (decode, short chunks) and
 *               expanded (long prompts), both tiled with an online softmax
 *   moe.c       sigmoid router, bias-corrected group-limited top-k, SwiGLU experts
 *   forward.c   the whole forward pass
 *   cache.c     the state: the latent KV cache in pages (f32, bf16, q8_0 rows) and the forward workspace
 *   sampler.c   temperature / top-k / top-p / min-p sampling
 *   generate.c  prefill + sample loop with stop conditions
 *   mkmodel.c   random checkpoints in the exact Hugging Face layout (tests, benchmarks)
 *   quantize.c  k2c quantize: any model k2c loads to a deepseek2 GGUF (recipes, fallbacks, streaming)
 * Internal to libk2c: the public face is k2c_model / k2c_state in k2c.h. */
#ifndef K2C_MODEL_H
#define K2C_MODEL_H

#include "kernels/kernels.h"

/* ------------------------------------------------------------------ rope, router, norm */
/* inv_freq [dr/2]; cos_sin_scale multiplies cos/sin (YaRN mscale ratio); attn_scale is the softmax scale. */
void k2c_rope_init(const k2c_config *c, float *inv_freq, float *cos_sin_scale, float *attn_scale);
void k2c_rope_apply(float *x, int dr, int pos, const float *inv_freq, float mscale);     /* in place */
/* The same rotation from a table computed once per position: cs [dr] = (cos, sin) * mscale pairs; applying
 * the table is bit-identical to k2c_rope_apply. */
void k2c_rope_table(float *cs, int dr, int pos, const float *inv_freq, float mscale);
void k2c_rope_apply_table(float *x, int dr, const float *cs);
void k2c_rope_backward(float *dx, int dr, int pos, const float *inv_freq, float mscale);  /* transpose */
/* Router (noaux_tc): logits [E] -> chosen idx [k] and weights w [k]; scores [E] gets the unbiased
 * sigmoid/softmax scores when not NULL. E <= 1024. */
void k2c_moe_route(const k2c_config *c, const float *logits, const float *bias, int *idx, float *w, float *scores);
void k2c_router_scores(const k2c_config *c, const float *logits, float *s);   /* sigmoid or softmax [E] */
/* RMSNorm: y = w * x / sqrt(mean(x^2) + eps), in place allowed. */
void k2c_rmsnorm(float *y, const float *x, const float *w, int n, float eps);

/* ------------------------------------------------------------------ model */
typedef struct {
    const float *attn_norm, *ffn_norm;          /* [D] */
    k2c_linear q_a, q_b, q;                     /* q_a [q_lora, D], q_b [H*(dn+dr), q_lora] | q [H*(dn+dr), D] */
    const float *q_a_norm;                      /* [q_lora] */
    k2c_linear kv_a;                            /* [r+dr, D] */
    const float *kv_a_norm;                     /* [r] */
    k2c_linear kv_b;                            /* [H*(dn+dv), r] */
    k2c_linear kv_b_abs;                        /* kv_b for the absorbed attention, which reads its rows as fp32
                                                 * every step: an fp32 copy where kv_b is in a GGUF block format
                                                 * in exact mode (k2c_model_derive_absorbed), else unset (w NULL: kv_b) */
    k2c_linear kv_b_qt;                         /* kv_b's key half transposed [H*r, dn] (row h*r + c: column c of
                                                 * head h's key rows): the absorbed query q' = one dot per latent
                                                 * column through the matvec kernels, and the value half read
                                                 * from kv_b's stored rows (mla.c). A BF16 copy (kv_b in BF16; or
                                                 * outside exact mode in a GGUF block format), or the
                                                 * split attn_k_b itself outside exact mode; unset: the rows of
                                                 * kv_b_abs or kv_b as fp32 (k2c_model_derive_absorbed) */
    k2c_linear kv_b_v;                          /* with kv_b_qt, the split attn_v_b as stored [H*dv, r] (the value
                                                 * rows of the absorbed output); unset: kv_b's value rows */
    k2c_linear o;                               /* [D, H*dv] */
    int is_moe;
    k2c_linear gate, up, down;                  /* dense FFN (or shared experts when is_moe) */
    k2c_linear router;                          /* [E, D] */
    const float *router_bias;                   /* [E] e_score_correction_bias */
    k2c_linear *exp_gate, *exp_up, *exp_down;   /* [E] each */
} k2c_layer;

struct k2c_model {
    k2c_config cfg;
    k2c_safetensors st;
    k2c_gguf gg;                                /* the GGUF files instead (gguf set) */
    int gguf;
    k2c_kctx cx;                                /* kernels + threads; every k2c_linear below points here */
    k2c_linear embed;                           /* [V, D] */
    k2c_linear head;                            /* [V, D] */
    const float *final_norm;                    /* [D] */
    k2c_layer *layers;
    float *inv_freq;                            /* [dr/2] */
    float rope_mscale;                          /* multiplies cos/sin (YaRN) */
    float attn_scale;                           /* softmax scale */
    int ubatch;                                 /* tokens per forward chunk of a prefill (> 0) */
    int cache_type;                             /* states' latent cache rows: K2C_CACHE_* (k2c_model_opts.cache_type) */
    int prefill_path;                           /* MLA prefill form: 0 chosen per call, 1 absorbed, 2 expanded
                                                 * (tests and measurements force one) */
    void **owned; int nowned, cap_owned;        /* model-owned copies: small fp32 vectors, derived weights (kv_b_abs) */
    /* Expert parallelism (ep.c): routed expert e runs on rank e % ep_size; ep_size 1 is a single process. */
    const k2c_comm *comm;
    int ep_rank, ep_size;
    struct k2c_ep_stats *ep_stats;              /* rank 0: what the exchanges cost (logged at close) */
    int ep_closed;                              /* rank 0 told the others this model is closed */
    struct k2c_tune *tune;                      /* decode's thread count (tune.c); owned, never NULL once loaded */
};
static inline int k2c_ep_owns(const k2c_model *m, int e) { return m->ep_size <= 1 || e % m->ep_size == m->ep_rank; }

/* Loads into caller memory (which must not move afterwards: the weights point at m->cx). o may be NULL:
 * the best kernels, every core, K2C_LOAD_AUTO; nothing is read from the environment. */
int k2c_model_load(k2c_model *m, const char *dir);
int k2c_model_load_opts(k2c_model *m, const char *dir, const k2c_model_opts *o);
void k2c_model_free(k2c_model *m);
/* A deepseek2 GGUF (model_gguf.c): config from its metadata, weights bound in their stored ggml types.
 * kv_from_split: build kv_b from attn_k_b + attn_v_b even where attn_kv_b is stored (tests). */
int k2c_model_load_gguf(k2c_model *m, const char *path, const k2c_model_opts *o, int kv_from_split);
/* Model-owned memory (freed with the model), 64-byte aligned. */
void *k2c_model_own(k2c_model *m, size_t bytes);
/* After binding: the forms of kv_b the absorbed attention reads (kv_b_qt, kv_b_abs), by its format and the mode. */
int k2c_model_derive_absorbed(k2c_model *m, const k2c_model_opts *o, const char *where);

/* The thread tuner (tune.c): decode steps timed, cx->team moved between a few counts when one is clearly faster.
 * Written only between forward calls, from the one thread that runs them. */
typedef struct k2c_tune {
    k2c_kctx *cx;
    int on, ncand, cand[3];         /* the counts tried: nthreads, nthreads - 1, nthreads / 2 (distinct) */
    int cur, probing, np, nh, next; /* current count's index; the probed one's (-1: none) */
    int batch;                      /* states per step of the samples (another size restarts the statistics) */
    int period, until;              /* steps between probes; steps until the next */
    double hist[64], psum, ref;     /* recent step times; a probe's sum; the current count's usual mean */
    long steps, switches;
} k2c_tune;
void k2c_tune_init(k2c_tune *t, k2c_kctx *cx, int on);
void k2c_tune_begin(k2c_tune *t, int batch);            /* before a decode step of `batch` states: sets cx->team */
void k2c_tune_end(k2c_tune *t, double seconds);         /* after it, with its wall time */
void k2c_tune_settled(k2c_tune *t);                     /* cx->team = the chosen count (not a probe's): other calls */

/* The binding both checkpoint formats share (model.c): which tensors a model and each layer hold, and the
 * checks between them, written once; a format gives its names and how it reads one tensor (model.c: Hugging
 * Face safetensors, model_gguf.c: GGUF). Layer names are appended to layer_fmt (with the layer number). */
enum { KB_ATTN_NORM, KB_FFN_NORM, KB_Q_A, KB_Q_A_NORM, KB_Q_B, KB_Q, KB_KV_A, KB_KV_A_NORM, KB_KV_B, KB_O,
       KB_GATE, KB_UP, KB_DOWN, KB_ROUTER, KB_ROUTER_BIAS, KB_SH_GATE, KB_SH_UP, KB_SH_DOWN, KB_EXP_GATE, KB_EXP_UP,
       KB_EXP_DOWN, KB_NROLES };
typedef struct {
    const char *embed, *head, *final_norm;      /* the model's own tensors */
    const char *layer_fmt;                      /* "model.layers.%d." */
    const char *names[KB_NROLES];
    /* each returns 0, or -1 with the error set naming the file and tensor */
    int (*linear)(void *b, const char *name, int rows, int cols, k2c_linear *l);
    int (*vec)(void *b, const char *name, int n, const float **out);
    int (*has)(void *b, const char *name);      /* a tensor (a linear's name as given to linear) is present */
    int (*kv_b)(void *b, int L, const char *name, int rows, int cols, k2c_linear *l);
    /* the E routed experts of one projection; name: the role's name after the layer prefix */
    int (*experts)(void *b, const char *name, int E, int rows, int cols, k2c_linear *ls);
    const char *where;                          /* the folder or file, for errors */
} k2c_bind_ops;
/* Sets m up for opts o (kernels, threads, exact mode, cache type) after zeroing it. */
int k2c_model_begin(k2c_model *m, const k2c_model_opts *o);
/* Binds every tensor of the model whose config m->cfg holds, then RoPE tables and ubatch (o). */
int k2c_bind_model(const k2c_bind_ops *ops, void *b, k2c_model *m, const k2c_model_opts *o);

/* ------------------------------------------------------------------ inference state */
struct k2c_state {
    const k2c_model *m;
    int max_ctx;
    int pos;                /* tokens in the cache */
    /* The latent cache (cache.c): pages of K2C_PAGE positions of every layer, allocated as the context fills;
     * pages[p] holds rows [layer][t % K2C_PAGE] of positions [p K2C_PAGE, (p + 1) K2C_PAGE), each row
     * RMSNorm(c) then roped k_pe in the format cache_type (rb bytes). */
    void **pages;
    int npages, maxpages;   /* allocated, and the most max_ctx needs */
    int cache_type;         /* K2C_CACHE_* (the model's k2c_model_opts.cache_type) */
    size_t rb;              /* bytes of one row */
    int cache_round;        /* tests: an fp32 cache whose rows are rounded to this format's values (K2C_CACHE_*) */
    /* Scratch of one forward call of up to ws_tokens tokens (a prefill chunk, or a decode batch led by this
     * state), sized once at init (k2c_forward_ws_bytes) and taken stack-like: no allocation per token or layer. */
    k2c_ws ws;
    int ws_tokens;
    double attn_seconds;    /* time in the attention layers (MLA calls) since init: k2c bench's breakdown */
};
/* The most states one k2c_decode_batch call runs at once: the workspace holds a batch this large (or the
 * model's ubatch, if larger); a larger batch runs in turns of that many. */
#define K2C_DECODE_BATCH_MAX 64
int k2c_state_init(k2c_state *s, const k2c_model *m, int max_ctx);
void k2c_state_free(k2c_state *s);
size_t k2c_state_row_bytes(const k2c_state *s);          /* bytes of one token's cache row in one layer */
/* The first n cached positions of src into dst (states of one model and cache format, n <= src's positions):
 * a server's prefix reuse. Pages dst lacks are allocated first, so a failure leaves dst as it was. */
int k2c_state_copy_prefix(k2c_state *dst, const k2c_state *src, int n);
/* Pages for positions [0, n): 0, or -1 when n > max_ctx or a page cannot be allocated (the state unchanged but
 * for pages it gained). The forward pass calls it before each call; nothing else allocates. */
int k2c_state_reserve(k2c_state *s, int n);
#define K2C_PAGE 256        /* positions per cache page (cache.c says why) */
static inline void *k2c_cache_row(const k2c_state *s, int layer, int t) {
    return (char *)s->pages[t / K2C_PAGE] + ((size_t)layer * K2C_PAGE + (size_t)(t % K2C_PAGE)) * s->rb;
}
/* Writes row [r + dr] (fp32) of position t of a layer in the state's format (row may be rounded in place). */
void k2c_cache_write(k2c_state *s, int layer, int t, float *row);
/* Rows t0..t0+n (inside one page) of a layer, columns [c0, c0 + nc), as fp32: an fp32 cache's rows in place
 * (*ld = r + dr), any other format converted into buf [n, nc] (*ld = nc). */
const float *k2c_cache_rows_f32(const k2c_state *s, int layer, int t0, int n, int c0, int nc, float *buf, int *ld);
/* Latent attention on a BF16 cache with AVX512-BF16 dot products (attn_bf16.c; mla.c's fast path when
 * k2c_attn_bf16_ok: BF16 cache, not exact, avx512 table, the CPU has AVX512-BF16, kv_lora_rank % 32 == 0).
 * scores: S [H, nt] (stride lds) = scale * Qb C^T, Qb [H, ldq] BF16 queries zero-padded to ldq = rs rounded up to
 * 32, C nt cache rows of rs BF16. acc: acc [H, r] (stride lda, chunks of 32 permuted) += P C[:, :r] with P = S
 * rounded to BF16 pairs in pp [H, (nt + 1) / 2]. unpermute: one accumulator row back to the natural order. */
void k2c_attn_bf16_scores(int H, const uint16_t *qb, int ldq, const uint16_t *c, int rs, int nt, float scale, float *S, int lds);
void k2c_attn_bf16_acc(int H, float *acc, int lda, const float *S, int lds, uint32_t *pp, const uint16_t *c, int rs, int nt, int r);
void k2c_attn_bf16_unpermute(float *x, int r);
void k2c_attn_bf16_round(const float *x, int n, int npad, uint16_t *out);    /* BF16 of x [n], zeros to npad */
int k2c_attn_bf16_ok(const k2c_model *m);
/* Rounds n values to what format type stores (K2C_CACHE_BF16 / Q8_0; f32: unchanged). */
void k2c_cache_round_row(int type, float *row, int n);

/* Building blocks of the forward pass (mla.c, moe.c), for the forward, the tests and the trainer's checks.
 * Attention of one layer for T tokens at positions s->pos.. (cache rows written, s->pos not advanced);
 * attn_max [H] is raised to the largest pre-softmax logit per head when not NULL. */
int k2c_mla_prefill(k2c_state *s, int layer, const float *XN, int T, float *out, float *attn_max);
/* Workspace bytes of one forward call of T tokens (either prefill form or a decode batch of T states) for a
 * state of max_ctx positions; the parts: attention, FFN (lin: the most any one matmul/matvec of the model takes,
 * xs: one matvec input shuffle). */
size_t k2c_forward_ws_bytes(const k2c_model *m, int T, int max_ctx);
size_t k2c_mla_ws_bytes(const k2c_model *m, int T, int max_ctx, size_t lin, size_t xs);
size_t k2c_ffn_ws_bytes(const k2c_model *m, int T, size_t lin, size_t xs);
/* 1 if a prefill of T tokens after pos cached ones runs in the absorbed form (m->prefill_path, else the cost model). */
int k2c_mla_prefill_absorbed(const k2c_model *m, int pos, int T);
int k2c_mla_decode_batch(k2c_state *const *ss, int n, int layer, const float *XN, float *out, float *attn_max);
/* A decode batch of n states plus T prompt tokens of state p in one call (absorbed form; mla.c). */
int k2c_mla_batch(k2c_state *const *ss, int n, k2c_state *p, int T, int layer, const float *XN, float *out, float *attn_max);
/* FFN of one layer (dense or MoE); experts: optional [T, k] trace, sorted ascending. */
int k2c_ffn_forward(const k2c_model *m, k2c_ws *ws, int layer, const float *XN, int T, float *out, int *experts);
/* out [T, D] = the shared expert (with_shared) + the routed experts idx/w [T, k] of this rank (k2c_ep_owns);
 * decode: one token's form (every chosen expert in one parallel loop) when T is 1. */
int k2c_moe_experts(const k2c_model *m, k2c_ws *ws, int layer, const float *XN, int T, const int *idx, const float *w,
                    float *out, int with_shared, int decode);

/* ------------------------------------------------------------------ expert parallelism (ep.c) */
/* After every rank's load (load_rc: its result): one exchange that checks every rank loaded and that all hold
 * the same model (config, tensor table, norm gains and router biases). 0 on every rank, or -1 on every rank
 * with the reason (rank 0's message names the rank). A failed rank's m is already freed; a good one is freed here. */
int k2c_ep_handshake(k2c_model *m, const k2c_model_opts *o, int load_rc, const char *dir);
/* Rank 0's MoE layer: sends XN and the routing to the other ranks, runs its own share and the shared expert,
 * and sums the ranks' outputs into out [T, D]. */
int k2c_ep_moe(const k2c_model *m, k2c_ws *ws, int layer, const float *XN, int T, const int *idx, const float *w,
               float *out, int decode);
size_t k2c_ep_ws_bytes(const k2c_model *m, int T);
/* Rank 0: tells the other ranks the model is closed (their k2c_model_follow returns). */
void k2c_ep_close(k2c_model *m);

#endif
