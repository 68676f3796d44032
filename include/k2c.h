/* k2c — the Kimi K2 system in C. The public API of libk2c: load a model, run it, sample, tokenize, render
 * the chat template, parse tool calls, serve, run an agent. The trainer's API is in k2c_train.h.
 *
 * Everything else (the safetensors reader, weight formats and their kernels, the layers of the forward
 * pass, the tokenizer's tables, the server's scheduler) is internal: src/<layer>/<layer>.h, one header per
 * folder, each including only the layers below it (docs/ARCHITECTURE.md walks them in data-flow order):
 *   core     errors, files, dtypes, config.json, safetensors
 *   kernels  weights in their stored format and the per-ISA kernels that read them
 *   model    the forward pass (MLA, MoE, RoPE), the KV cache, sampling, generation
 *   text     tokenizer, BPE, chat template, tool-call parser, JSON-Schema grammar
 *   serve    constrained turns, the HTTP server, MCP, the agent
 *   train    the trainer, MuonClip, data shards, plots
 *
 * Conventions: functions that can fail return 0 on success and -1 on failure (or NULL), with a message for
 * the user in k2c_errmsg() that names the file and field; the library never aborts on bad input or a failed
 * allocation. No setting is process-wide: thread count, SIMD level and load mode travel in k2c_model_opts
 * and belong to the model they were given for. Matrices are row-major; shapes are given in comments as
 * [rows, cols].
 */
#ifndef K2C_H
#define K2C_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ errors */
#define K2C_ERRMSG_MAX 1024
void k2c_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *k2c_errmsg(void);
void k2c_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* progress on stderr */
double k2c_now(void);                                                     /* monotonic seconds */
char *k2c_read_file(const char *path, size_t *len);                       /* NUL-terminated, NULL + error */
int k2c_write_file_atomic(const char *path, const void *data, size_t len); /* temp file + rename */
char *k2c_path_join(const char *dir, const char *name);                   /* malloc'd "dir/name" */

/* ------------------------------------------------------------------ dtypes */
typedef enum {
    K2C_F32, K2C_F16, K2C_BF16, K2C_F8_E4M3, K2C_F64, K2C_I64, K2C_I32, K2C_I16, K2C_I8, K2C_U8, K2C_BOOL,
    K2C_DTYPE_COUNT
} k2c_dtype;
size_t k2c_dtype_size(k2c_dtype t);
const char *k2c_dtype_name(k2c_dtype t);
int k2c_dtype_parse(const char *name, k2c_dtype *out);   /* 0, or -1 for an unknown name (no error set) */

/* ------------------------------------------------------------------ writing safetensors */
#define K2C_MAX_DIMS 8
typedef struct {
    char *name;
    k2c_dtype dtype;
    int ndim;
    int64_t shape[K2C_MAX_DIMS];
    int64_t numel;
    const void *data;       /* into the mapping (reader) or the caller's memory (writer) */
    size_t nbytes;
    const char *file;       /* the file it lives in, for error messages */
} k2c_tensor;
/* Writing: tensors[i].data may be NULL, then fill(ctx, i, dst) is called to produce its bytes, so a
 * shard larger than memory can be streamed. The file is written to PATH.tmp and renamed. */
typedef int (*k2c_st_fill_fn)(void *ctx, int index, void *dst);
int k2c_st_write(const char *path, int n, const k2c_tensor *tensors, k2c_st_fill_fn fill, void *ctx);
/* Fills in numel/nbytes from dtype and shape. */
void k2c_tensor_set_shape(k2c_tensor *t, k2c_dtype dtype, int ndim, const int64_t *shape);

/* ------------------------------------------------------------------ config */
typedef enum { K2C_QUANT_NONE, K2C_QUANT_FP8, K2C_QUANT_INT4 } k2c_quant;

typedef struct {
    char model_type[32];
    int vocab_size, hidden_size, intermediate_size, moe_intermediate_size;
    int num_hidden_layers, first_k_dense_replace, moe_layer_freq;
    int num_attention_heads;
    int n_routed_experts, n_shared_experts, num_experts_per_tok, n_group, topk_group;
    int scoring_softmax;            /* 0 sigmoid, 1 softmax */
    int norm_topk_prob;
    float routed_scaling_factor;
    int q_lora_rank;                /* 0: plain q_proj (Moonlight) */
    int kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    double rope_theta;
    int max_position_embeddings;
    int rope_yarn;                  /* rope_scaling.type == yarn */
    double rope_factor, beta_fast, beta_slow, mscale, mscale_all_dim;
    int rope_original_max;
    double rms_norm_eps;
    int tie_word_embeddings;
    int bos_token_id, eos_token_id;
    double aux_loss_alpha;          /* sequence-wise aux loss weight (training) */
    k2c_quant quant;
    int fp8_block[2];               /* weight_block_size */
    int int4_group;                 /* group_size */
} k2c_config;

int k2c_config_parse(k2c_config *c, const char *json_text, const char *where);
int k2c_config_load(k2c_config *c, const char *path);   /* path: a config.json or a model folder */
char *k2c_config_to_json(const k2c_config *c);          /* malloc'd, Hugging Face field names */
int k2c_config_is_moe_layer(const k2c_config *c, int layer);
/* Named shapes for mkmodel/tests: "k2-tiny", "moonlight-16b-a3b", "kimi-k2", "deepseek-v3", ... */
int k2c_config_preset(k2c_config *c, const char *name);

/* Parameter counts (total, active per token). */
void k2c_model_counts(const k2c_config *c, double *total, double *active);

/* ------------------------------------------------------------------ communicators */
/* A group of processes that run one job together (MPI ranks: see k2c_dist.h, which makes one from MPI). The
 * model (expert parallelism) and the trainer (data parallelism) talk to their peers only through these
 * operations, so libk2c itself never links MPI and a build without it runs one process. Every operation is
 * collective: all ranks call it in the same order with the same counts. 0, or -1 with k2c_errmsg() set (a
 * peer that died is usually not an error but the end of the job: mpirun stops every rank). */
typedef enum { K2C_COMM_F32, K2C_COMM_F64, K2C_COMM_I32, K2C_COMM_U8 } k2c_comm_type;
typedef enum { K2C_COMM_SUM, K2C_COMM_MAX } k2c_comm_op;
typedef struct k2c_comm k2c_comm;
struct k2c_comm {
    int rank, size;
    void *impl;
    /* buf [n] from rank 0 to every rank */
    int (*bcast)(const k2c_comm *c, void *buf, size_t n, k2c_comm_type t);
    /* buf [n] combined in place: on root only (root >= 0) or on every rank (root = -1) */
    int (*reduce)(const k2c_comm *c, void *buf, size_t n, k2c_comm_type t, k2c_comm_op op, int root);
    /* buf [sum of counts], the same layout on every rank, rank r's block at the sum of counts[0..r):
     * reduce_scatter leaves rank r's block summed over the ranks (the rest of buf is undefined afterwards);
     * allgather copies each rank's block to every rank; gather copies them to rank 0 only. */
    int (*reduce_scatter)(const k2c_comm *c, void *buf, const size_t *counts, k2c_comm_type t);
    int (*allgather)(const k2c_comm *c, void *buf, const size_t *counts, k2c_comm_type t);
    int (*gather)(const k2c_comm *c, void *buf, const size_t *counts, k2c_comm_type t);
};
/* Rank r's block of n items split over size ranks as evenly as possible: [*lo, *hi). */
void k2c_comm_block(size_t n, int size, int r, size_t *lo, size_t *hi);

/* ------------------------------------------------------------------ model */
/* How files are brought into memory: mmap (starts at once, works for models larger than RAM), copy into
 * anonymous huge-page memory (about 2x faster decode: no 4 KB TLB misses), or auto (copy each file while it
 * takes under half of the available memory, else mmap). */
typedef enum { K2C_LOAD_AUTO, K2C_LOAD_MMAP, K2C_LOAD_COPY } k2c_load_mode;
typedef struct {
    k2c_load_mode load;
    const char *simd;       /* kernels: NULL or "auto" (the best the CPU has), "scalar", "avx2", "avx512", "neon" */
    int threads;            /* 0: OMP_NUM_THREADS if set, else every core */
    int bf16_prompt;        /* prompts as BF16 x BF16 products (AVX512-BF16 CPUs; rounds the activations, off by
                             * default: fp32 inputs are what the golden tests check). 1: on AMX tiles where the
                             * CPU has AMX-BF16 (every stored format: BF16 rows as stored, others dequantized
                             * to BF16), else AVX512-BF16 on BF16 weights; 2: AVX512-BF16 only */
    int exact;              /* fp32 activations everywhere. Off, decode on GGUF block formats quantizes each input
                             * vector to int8 blocks of 32 (as llama.cpp does) and runs integer products */
    int cache_type;         /* the latent KV cache of every state: K2C_CACHE_F32 (0), K2C_CACHE_BF16 (half the
                             * memory and the bytes each decode step reads; the rows rounded to BF16) or
                             * K2C_CACHE_Q8_0 (int8 blocks of 32 with an fp16 scale: 0.53x fp32) */
    int adapt_threads;      /* decode times its steps and runs on fewer threads while that is clearly faster (another
                             * process holding cores; model/tune.c): the results stay the same bits. 0: always
                             * `threads`. On in k2c_model_opts_default unless K2C_ADAPT_THREADS=0 */
    int ubatch;             /* tokens per forward pass of a prefill (k2c_prefill splits longer prompts), so the
                             * activation memory does not grow with the prompt; 0: K2C_UBATCH_DEFAULT */
    int stored_only;        /* bind what the files store and nothing derived for running them (the fp32 copy of a
                             * GGUF block-format kv_b for the absorbed attention): for tools that read the weights
                             * rather than run decode (k2c quantize, the importance matrix) */
    const k2c_comm *comm;   /* expert parallelism over these ranks (NULL or one rank: a single process). Every
                             * rank opens the same model; rank r keeps the routed experts e with e % size == r.
                             * Rank 0 runs everything else and gets the model; ranks > 0 then serve their experts
                             * in k2c_model_follow until rank 0 closes it. */
} k2c_model_opts;
#define K2C_UBATCH_DEFAULT 512
enum { K2C_CACHE_F32 = 0, K2C_CACHE_BF16 = 1, K2C_CACHE_Q8_0 = 2 };
/* The defaults (adapt_threads on), then K2C_SIMD (scalar|avx2|avx512|neon), K2C_PROMPT_PRECISION (bf16), K2C_EXACT (1), K2C_CACHE_TYPE (f32|bf16|q8_0) and K2C_ADAPT_THREADS (0) from the environment: the
 * one place the library reads the environment, and only when the caller asks it to. */
void k2c_model_opts_default(k2c_model_opts *o);

typedef struct k2c_model k2c_model;
/* dir: a Hugging Face folder (config.json + safetensors), a .gguf file (deepseek2 architecture; the first file of
 * a NAME-00001-of-0000N.gguf split set) or a folder holding one GGUF model and no safetensors. o NULL: all zero (best kernels, every core, auto load;
 * nothing read from the environment). */
k2c_model *k2c_model_open(const char *dir, const k2c_model_opts *o);
void k2c_model_close(k2c_model *m);
/* Expert parallelism, ranks > 0: computes this rank's experts for every MoE layer rank 0 runs, until rank 0
 * closes its model (returns 0; close this one then) or an error (-1). A single-process model returns 0 at once. */
int k2c_model_follow(k2c_model *m);
/* This process's rank and the number of ranks of the model (0 and 1 without expert parallelism). */
int k2c_model_rank(const k2c_model *m, int *size);
const k2c_config *k2c_model_config(const k2c_model *m);
int k2c_model_set_threads(k2c_model *m, int n);         /* 0: OMP_NUM_THREADS if set, else every core */
#define K2C_GGML_TYPES 134       /* up to ik_llama.cpp's Q6_0 (133) */
/* The name of ggml tensor type t of a GGUF file ("Q4_K", "IQ4_XS", ...), NULL for one k2c does not know. */
const char *k2c_ggml_type_name(int t);
int k2c_model_set_ubatch(k2c_model *m, int n);          /* 0: K2C_UBATCH_DEFAULT */
typedef struct {
    int nfiles, ntensors;
    size_t bytes;                       /* every tensor */
    size_t bytes_by_dtype[K2C_DTYPE_COUNT];
    int gguf;                           /* loaded from GGUF: bytes per ggml type below instead */
    size_t bytes_by_ggml[K2C_GGML_TYPES];
    double decode_bytes;                /* weight bytes one decode step reads (top-k experts, not all) */
    float attn_scale;                   /* softmax scale (YaRN mscale included) */
    const char *kernels;                /* "avx512", "avx2", "neon", "scalar" */
    int exact;                          /* fp32 activations everywhere (k2c_model_opts.exact) */
    int cache_type;                     /* K2C_CACHE_F32 / _BF16 / _Q8_0 (k2c_model_opts.cache_type) */
    int threads;
    int threads_now;                    /* the thread tuner's current count (threads when it is off) */
    long tune_switches;                 /* times it changed the count */
    const char *prompt_products;        /* "fp32", "bf16 (AVX512-BF16)", "bf16 (AMX)" (k2c_model_opts.bf16_prompt) */
    int ubatch;                         /* tokens per forward pass of a prefill (k2c_model_set_ubatch) */
} k2c_model_info;
void k2c_model_get_info(const k2c_model *m, k2c_model_info *info);

/* Writes a random checkpoint of shape c in the Hugging Face layout: dtype "f32", "bf16", "fp8" (e4m3 +
 * 128x128 scales) or "int4" (routed experts pack-quantized); shards > 1 gives model-I-of-N files + index. */
int k2c_mkmodel(const k2c_config *c, const char *dtype, int shards, uint64_t seed, const char *outdir);

/* Writes the model at `in` (anything k2c_model_open reads: a Hugging Face folder in F32/BF16/FP8/INT4, or a GGUF)
 * as a deepseek2 GGUF v3 at `out` in llama.cpp's names and metadata (model/quantize.c), streaming: one chunk of
 * rows in memory at a time, progress on stderr, written to a temporary file and renamed, so a failure leaves no
 * partial `out`. type: a ggml type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q6_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 * IQ4_NL, IQ4_XS: that type for every matrix) or a recipe (Q2_K, Q3_K_M, Q4_K_M, Q6_K, Q8_0: llama.cpp-style
 * mixes); the type_* fields (NULL: the recipe's) override the routed experts, every attention matrix, the
 * embedding and the output head. Norms, router and exp_probs_b stay F32. A GGUF input's tokenizer.* metadata is
 * kept; for a Hugging Face folder the caller may give the vocabulary (tok_* below; the CLI does), and its tokenizer
 * files are copied next to `out`. */
typedef struct {
    const char *type;
    const char *type_experts, *type_attn, *type_embd, *type_output;
    const char *imatrix;                /* k2c_imatrix's file: per-column importance in the quantizers' error, or NULL */
    int threads;                        /* 0: every core */
    /* The vocabulary as llama.cpp's tokenizer.ggml.* keys (a Hugging Face input; the CLI fills it from the
     * folder's tokenizer): ntokens strings (GPT-2 byte-to-unicode mapped, token_len bytes each) with their
     * types (1 normal, 3 control, 5 unused) and nmerges "A B" merges. ntokens 0: only the bos/eos ids. */
    const char *tok_model, *tok_pre;
    int ntokens, nmerges;
    const char *const *tokens;
    const uint32_t *token_len;
    const int32_t *token_type;
    const char *const *merges;
} k2c_quantize_opts;
int k2c_quantize(const char *in, const char *out, const k2c_quantize_opts *o);
/* The quantizers' speed: values/s per type (comma-separated names, NULL: every block type) on 1 and `threads`
 * threads (0: every core) over fixed Gaussian rows of 4096, about `seconds` each, with importance weights or not;
 * printed on stdout (`k2c quantize --bench`). */
int k2c_quantize_bench(const char *types, int threads, double seconds, int weighted);
/* The bytes of tensor data k2c_quantize would write for a model of config c (by_ggml: [K2C_GGML_TYPES] or NULL),
 * without any weights: the README's memory table. */
int k2c_quantize_size(const k2c_config *c, const k2c_quantize_opts *o, uint64_t *bytes, uint64_t *by_ggml);
/* Importance statistics (model/quantize.c): the model at `model` prefills ids [n] in chunks of `chunk` tokens
 * (each from an empty cache; 0: 512) and the mean square of every input column of every weight matrix (per expert)
 * is written to the GGUF `out` (general.type "imatrix"; NAME.in_sum2 [cols, E], NAME.counts [1, E]). */
int k2c_imatrix(const char *model, const int *ids, int n, int chunk, int threads, const char *out);
/* The measure of whether it pays: every matrix whose rows `type` holds quantized to it without and with the
 * importance of `imatrix`, and the RMS of (W - Wq) x over the inputs x seen on ids (held-out text), relative to
 * the RMS of W x. */
int k2c_imatrix_eval(const char *model, const int *ids, int n, int chunk, int threads, const char *imatrix,
                     const char *type, double *rel_plain, double *rel_imatrix);

/* ------------------------------------------------------------------ inference state */
typedef struct {
    float *hidden;          /* optional [L, T, D]: residual stream after each layer */
    int *experts;           /* optional [L, T, k]: chosen experts, sorted ascending (-1 for dense layers) */
    float *attn_max;        /* optional [L, H]: per-head max pre-softmax logit */
} k2c_trace;

/* One sequence's latent KV cache (kv_lora_rank + rope_dim values per position and layer, fp32, BF16 or q8_0 per
 * the model's cache_type, in pages of 256 positions allocated as the context fills) and its scratch memory (the
 * forward workspace, allocated once here). */
typedef struct k2c_state k2c_state;
k2c_state *k2c_state_new(const k2c_model *m, int max_ctx);
void k2c_state_delete(k2c_state *s);
void k2c_state_reset(k2c_state *s);
int k2c_state_pos(const k2c_state *s);                  /* tokens in the cache */
int k2c_state_truncate(k2c_state *s, int pos);          /* keep the first pos tokens; -1 if pos > held */
size_t k2c_state_cache_bytes(const k2c_state *s);       /* the cache's pages allocated so far */
size_t k2c_state_ws_bytes(const k2c_state *s);          /* the forward workspace (fixed at k2c_state_new) */
/* Seconds this state's forward calls spent in attention (every layer's MLA: projections, cache write, attention
 * over the cache, output projection; a decode batch counts on its first state): the breakdown of k2c bench. */
double k2c_state_attn_seconds(const k2c_state *s);
/* Bytes of a cache of n positions of a model of config c in format cache_type (whole pages, as a state holds
 * them), and of one position of one layer. */
size_t k2c_cache_bytes(const k2c_config *c, int cache_type, int n);
size_t k2c_cache_row_bytes(const k2c_config *c, int cache_type);
/* Benchmarks only: grows the cache to n positions by repeating the rows it holds (it must hold at least one),
 * in seconds rather than the minutes a real prefill of a long prompt takes. A decode after it reads and
 * computes exactly what it would after n real tokens, but its logits belong to no real prompt. */
int k2c_state_fill_repeat(k2c_state *s, int n);
/* Runs T tokens from the state's position, appending them to the latent cache, in forward passes of at most
 * the model's ubatch tokens (each attends to the cache in the absorbed or the expanded form, whichever costs
 * less). logits: [T, V] for every position, or NULL; last_logits: [V] of the last position, or NULL. On an
 * error the state keeps what it held before the call. */
int k2c_prefill(k2c_state *s, const int *ids, int T, float *logits, float *last_logits, k2c_trace *trace);
/* One token through the absorbed attention path over the latent cache. logits [V]. */
int k2c_decode(k2c_state *s, int id, float *logits, k2c_trace *trace);
/* One token for each of n states of the same model (a server's concurrent requests): each weight is
 * read once for all of them. logits [n, V]. */
int k2c_decode_batch(k2c_state *const *states, const int *ids, int n, float *logits);
/* A server's step: one token for each of n states (as k2c_decode_batch) and, in the same forward pass, T
 * prompt tokens pids of state p, which is none of them (a chunk of its prefill; absorbed attention when
 * n > 0): each weight is read once for both, so the chunk adds its arithmetic to the step and not a second
 * pass over the model. logits [n, V]; p_last [V]: the logits after the chunk's last token, or NULL. When
 * n + T is more than one forward call holds (the model's ubatch, at least K2C_DECODE_BATCH_MAX), or the
 * joint pass fails, the two run one after the other. Returns 0; -1: nothing advanced; -2: the decodes went
 * through (logits hold them) and the chunk did not (p unchanged), so a caller can fail only p's request. */
int k2c_decode_batch_prefill(k2c_state *const *states, const int *ids, int n, k2c_state *p, const int *pids, int T,
                             float *logits, float *p_last);

/* ------------------------------------------------------------------ sampling */
typedef struct {
    float temperature, top_p, min_p;
    int top_k;
    uint64_t rng;
    float *scratch_p; int *scratch_i; int n;
} k2c_sampler;
int k2c_sampler_init(k2c_sampler *s, int vocab, float temperature, float top_p, int top_k, float min_p, uint64_t seed);
void k2c_sampler_free(k2c_sampler *s);
int k2c_sample(k2c_sampler *s, const float *logits);
uint64_t k2c_rng_next(uint64_t *state);
float k2c_rng_uniform(uint64_t *state);     /* [0, 1) */

/* ------------------------------------------------------------------ generation loop (generate.c) */
typedef enum { K2C_STOP_LENGTH, K2C_STOP_EOS, K2C_STOP_CALLBACK, K2C_STOP_CANCEL, K2C_STOP_CONTEXT } k2c_stop_reason;
typedef struct {
    int max_tokens;
    const int *stop_ids; int nstop;     /* besides the config's eos_token_id */
    volatile int *cancel;               /* checked before each token; may be NULL */
    int ignore_eos;                     /* run to max_tokens (benchmarks, tests) */
} k2c_gen_opts;
typedef struct {
    int prompt_tokens, generated;
    double prefill_s, decode_s;
    k2c_stop_reason stop;
    int pending;                        /* last sampled id (stop token included) not yet in the cache, or -1 */
} k2c_gen_stats;
typedef int (*k2c_token_fn)(void *ctx, int id);   /* nonzero stops the generation */
/* Prefills prompt [T] after what s holds, then samples up to max_tokens; each new token (stop tokens
 * excluded) goes to on_token. The last sampled token is not in the cache when it returns (st->pending):
 * a conversation feeds it first in the next turn. */
int k2c_generate(k2c_state *s, k2c_sampler *sm, const int *prompt, int T, const k2c_gen_opts *o,
                 k2c_token_fn on_token, void *ctx, k2c_gen_stats *st);

/* ------------------------------------------------------------------ tokenizer (tokenizer.c, chat.c, toolcall.c, bpe_train.c) */
/* A model folder's tokenizer: Kimi's tiktoken.model (base64 token SPACE rank per line) with
 * tokenizer_config.json (added_tokens_decoder: the special tokens), or a Hugging Face tokenizer.json
 * (byte-level BPE: model.vocab + model.merges, added_tokens, pre_tokenizer Split regexes; DeepSeek-V3).
 * Encoding is exact against the official tiktoken core (see tests/test_tokenizer_oracle.sh). A tokenizer
 * is immutable after loading and may be shared by threads. */
typedef struct k2c_tokenizer k2c_tokenizer;

/* dir: a folder with tiktoken.model (preferred) or tokenizer.json; or the path of either file. */
int k2c_tokenizer_load(k2c_tokenizer **out, const char *dir);
void k2c_tokenizer_free(k2c_tokenizer *t);
/* Text (UTF-8, len bytes) -> ids (malloc'd into *ids, count in *n; free with free()).
 * allow_special: special-token text in the input ("<|im_end|>") becomes the special id; otherwise it
 * is encoded as plain text. As in Kimi's reference, the text is cut every 400,000 characters and in
 * runs of more than 25,000 whitespace / non-whitespace characters, and each part is encoded on its own.
 * Invalid UTF-8 (which tiktoken cannot take) never fails: bytes that are not part of a valid character
 * form pieces of their own and are encoded as their byte-level tokens, so decode(encode(x)) == x for
 * any byte string. */
int k2c_tokenizer_encode(const k2c_tokenizer *t, const char *text, size_t len, int allow_special, int **ids,
                         int *n);
/* ids -> the bytes they stand for (specials as their text); malloc'd and NUL-terminated, length in
 * *len (may be NULL). NULL + error on an id outside the vocabulary. */
char *k2c_tokenizer_decode(const k2c_tokenizer *t, const int *ids, int n, size_t *len);
/* The bytes of one id (not NUL-terminated, owned by t); NULL for an unknown id. */
const char *k2c_tokenizer_token(const k2c_tokenizer *t, int id, size_t *len);
/* The vocabulary as llama.cpp's GGUF stores it (tokenizer.ggml.tokens / token_type / merges): every id spelled in
 * GPT-2's byte-to-unicode alphabet (specials as their text, type 3; holes "[PADn]", type 5), and the merge list
 * (a tiktoken vocabulary's merges rebuilt from its ranks; an HF vocabulary's own). Free with
 * k2c_tokenizer_gguf_vocab_free. */
typedef struct {
    int n_tokens, n_merges;
    const char *const *tokens;      /* NUL-terminated */
    const int32_t *types;
    const char *const *merges;      /* "A B" */
    const char *pre;                /* "kimi-k2" for a tiktoken vocabulary, else "gpt2" (a caller may know better) */
    void *priv;
} k2c_gguf_vocab;
int k2c_tokenizer_gguf_vocab(const k2c_tokenizer *t, k2c_gguf_vocab *out);
void k2c_tokenizer_gguf_vocab_free(k2c_gguf_vocab *v);
int k2c_tokenizer_token_id(const k2c_tokenizer *t, const char *special_name);   /* -1 if absent */
int k2c_tokenizer_vocab_size(const k2c_tokenizer *t);                          /* largest id + 1 */
int k2c_tokenizer_is_special(const k2c_tokenizer *t, int id);
int k2c_tokenizer_bos(const k2c_tokenizer *t);          /* bos_token / eos_token ids, -1 if none */
int k2c_tokenizer_eos(const k2c_tokenizer *t);
int k2c_tokenizer_has_kimi_template(const k2c_tokenizer *t);

/* Streaming decode for printing tokens as they are sampled: text never ends inside a UTF-8 character
 * (an incomplete character is held back until its next bytes arrive); bytes that can never form a valid
 * character are passed through as they are, so the concatenated output equals k2c_tokenizer_decode. */
typedef struct {
    const k2c_tokenizer *tok;
    char *buf;              /* the text returned by the last call */
    size_t cap;
    unsigned char pend[4];  /* an incomplete character held back */
    int npend;
} k2c_detok;
void k2c_detok_init(k2c_detok *d, const k2c_tokenizer *t);
/* Adds one id; *text, *len: what can be printed now (valid until the next call). -1 on an unknown id. */
int k2c_detok_push(k2c_detok *d, int id, const char **text, size_t *len);
/* End of stream: whatever is held back (*text, *len). */
void k2c_detok_flush(k2c_detok *d, const char **text, size_t *len);
void k2c_detok_free(k2c_detok *d);

/* Chat template (Kimi K2): messages is a JSON array of OpenAI-style messages (role system / user /
 * assistant with optional tool_calls / tool with tool_call_id; content a string, null or an array of
 * {"type":"text","text":...} parts; optional name); tools a JSON array of tool definitions or NULL.
 * Returns the malloc'd prompt text, ending with the generation prompt when add_generation_prompt.
 * msg_where / tools_where name the sources in error messages ("messages.json: [2].content: ..."). */
char *k2c_chat_render(const char *messages_json, const char *tools_json, int add_generation_prompt,
                      const char *msg_where, const char *tools_where);
/* The chat formats k2c renders, one per checkpoint family: Kimi K2's (above) and DeepSeek-V3's
 * (tokenizer_config.json of deepseek-ai/DeepSeek-V3, byte for byte, quirks included: it ignores tools,
 * joins system messages with a blank line, and renders tool calls as its template does). */
typedef enum { K2C_CHAT_KIMI, K2C_CHAT_DEEPSEEK_V3 } k2c_chat_format;
k2c_chat_format k2c_tokenizer_chat_format(const k2c_tokenizer *t);   /* from its chat_template */
char *k2c_chat_render_as(k2c_chat_format f, const char *messages_json, const char *tools_json, int add_generation_prompt,
                         const char *msg_where, const char *tools_where);
/* The same conversation rendered and tokenized for the model (in the tokenizer's chat format): special tokens only where the template
 * puts them. Message contents, names, roles, tool-call ids and arguments, tool results and the tool
 * declarations are request text: special-token text in them ("<|im_end|>") is encoded as ordinary
 * text, so no request can forge a turn or a tool call. For a conversation without such text the ids
 * equal k2c_tokenizer_encode(k2c_chat_render(...), allow_special=1). Tool-call ids are normalised as in
 * k2c_chat_render: functions.NAME:IDX (IDX counting the conversation's calls from 0) unless already
 * of that form, and tool results' tool_call_id follow. 0, or -1 + error naming the field. */
int k2c_chat_render_ids(const k2c_tokenizer *t, const char *messages_json, const char *tools_json,
                        int add_generation_prompt, const char *msg_where, const char *tools_where, int **ids,
                        int *n);

/* SFT: the conversation's ids (no generation prompt) and mask [n] (malloc'd): 1 on the assistant's tokens
 * (content, tool-call section, its <|im_end|>), 0 on system, tools, user, tool results and role headers. */
int k2c_chat_render_masked(const k2c_tokenizer *t, const char *messages_json, const char *tools_json, const char *where,
                           int **ids, unsigned char **mask, int *n);

/* Tool-call parser: the assistant's output text (as decoded, specials included) ->
 * content + OpenAI tool_calls. Fed incrementally; marker text split across pieces is held back, so no
 * marker ever reaches the content. Malformed output never fails: each call carries flags. */
enum {
    K2C_TC_BAD_JSON = 1,        /* arguments are not valid JSON */
    K2C_TC_NO_END = 2,          /* <|tool_call_end|> missing (next call or section end came first) */
    K2C_TC_TRUNCATED = 4,       /* the output ended inside this call */
    K2C_TC_BAD_ID = 8,          /* id not of the form functions.NAME:IDX */
};
enum {                          /* parser-level flags (k2c_toolparse_flags) */
    K2C_TP_SINGULAR_SECTION = 1,    /* <|tool_call_section_begin|> (singular) was used */
    K2C_TP_NO_SECTION_END = 2,      /* the section was never closed */
    K2C_TP_NO_SECTION_BEGIN = 4,    /* <|tool_call_begin|> without a section begin */
    K2C_TP_STRAY_TEXT = 8,          /* text inside the section outside any call (kept as content) */
};
typedef struct {
    int index;                  /* position in the message's tool_calls */
    char *id;                   /* "functions.NAME:IDX" as emitted */
    char *name;                 /* between the first '.' and the ':' */
    char *arguments;            /* the raw argument text */
    int flags;                  /* K2C_TC_* */
} k2c_tool_call;
typedef struct {
    int index;
    const char *id, *name;      /* set in the first delta of a call, NULL after */
    const char *args;           /* argument text added */
    size_t args_len;
} k2c_tool_delta;
typedef struct {
    const char *content;        /* content text added */
    size_t content_len;
    int ndeltas;
    const k2c_tool_delta *deltas;
} k2c_tool_events;
typedef struct k2c_toolparse k2c_toolparse;
k2c_toolparse *k2c_toolparse_new(void);                 /* NULL on out of memory */
void k2c_toolparse_free(k2c_toolparse *p);
/* Feeds text; ev (may be NULL) receives what this call added, valid until the next feed/finish. */
int k2c_toolparse_feed(k2c_toolparse *p, const char *text, size_t len, k2c_tool_events *ev);
/* Feeds one token id (decoded with t; incomplete UTF-8 characters are held back). */
int k2c_toolparse_feed_token(k2c_toolparse *p, const k2c_tokenizer *t, int id, k2c_tool_events *ev);
/* End of output: releases held-back text, marks an unfinished call K2C_TC_TRUNCATED. */
int k2c_toolparse_finish(k2c_toolparse *p, k2c_tool_events *ev);
int k2c_toolparse_ncalls(const k2c_toolparse *p);
const k2c_tool_call *k2c_toolparse_call(const k2c_toolparse *p, int i);
int k2c_toolparse_flags(const k2c_toolparse *p);        /* K2C_TP_* */
const char *k2c_toolparse_content(const k2c_toolparse *p, size_t *len);   /* all content so far */
/* OpenAI "tool_calls" array: [{"id","type":"function","function":{"name","arguments"}}], malloc'd
 * compact JSON ("[]" when none). */
char *k2c_toolparse_json(const k2c_toolparse *p);

/* BPE training: learns vocab_size - 256 merges over the pre-tokenized words of the files (Kimi
 * pattern), writes out_dir/tiktoken.model and out_dir/tokenizer_config.json (Kimi's 256-slot
 * special block right after the base vocabulary, chat_template marker, bos/eos names). */
int k2c_bpe_train(const char *const *files, int nfiles, int vocab_size, const char *out_dir);

/* ------------------------------------------------------------------ constrained turns, server, agent */
/* Constrained generation of one assistant turn (server_gen.c), shared by the server and the agent.
 * Tool calls are written in Kimi's section format; the function name is constrained to the declared
 * tools and the arguments to the tool's parameters schema; with K2C_TOOLS_REQUIRED / FUNCTION the
 * section markers are forced. When max_tokens runs out inside a call or a schema-constrained answer, the
 * JSON is closed minimally, so arguments always parse and validate. Candidates are tried in logit
 * order (top 40, then a scan of the vocabulary filtered by the grammar's allowed first bytes). */
typedef enum { K2C_TOOLS_AUTO, K2C_TOOLS_NONE, K2C_TOOLS_REQUIRED, K2C_TOOLS_FUNCTION } k2c_tool_choice;
/* Per-token bytes and special flags, built once per tokenizer and shared by generations (read-only). */
typedef struct k2c_vocab_info k2c_vocab_info;
k2c_vocab_info *k2c_vocab_info_new(const k2c_tokenizer *t);
void k2c_vocab_info_free(k2c_vocab_info *v);
typedef struct {
    const char *tools_json;         /* OpenAI "tools" array, or NULL */
    k2c_tool_choice tool_choice;
    const char *function;           /* K2C_TOOLS_FUNCTION: the name */
    int parallel_tool_calls;        /* 0: at most one call */
    const char *schema_json;        /* response_format: the content must be this JSON Schema, or NULL */
    float temperature, top_p;
    uint64_t seed;
    int max_tokens;
    float presence_penalty, frequency_penalty;   /* OpenAI's: subtracted from the logits of tokens written */
    int logprobs, top_logprobs;     /* record the sampled content tokens' log-probabilities (+ top N <= 20) */
    const k2c_vocab_info *vocab_info;   /* NULL: built for this generation (slower start) */
} k2c_turn_opts;
#define K2C_TOP_LOGPROBS 20
typedef struct {
    int id;
    float logprob;
    int ntop;
    int top_id[K2C_TOP_LOGPROBS];
    float top_logprob[K2C_TOP_LOGPROBS];
} k2c_turn_logprob;
typedef struct k2c_turn k2c_turn;
/* vocab: the model's logit count (>= the tokenizer's). NULL + error (bad tools / schema / choice). */
k2c_turn *k2c_turn_new(const k2c_tokenizer *t, int vocab, const k2c_turn_opts *o);
void k2c_turn_free(k2c_turn *g);
/* Picks the next token from logits [vocab] (forced markers ignore them). 1: *id is to be fed to the model
 * and the call repeated with the logits that follow; 0: the turn is over; -1: error. */
int k2c_turn_step(k2c_turn *g, const float *logits, int *id);
void k2c_turn_stop(k2c_turn *g, const char *finish_reason);  /* ends the turn (stop string, timeout) */
const char *k2c_turn_finish_reason(const k2c_turn *g);       /* "stop", "length", "tool_calls" or NULL */
int k2c_turn_ntokens(const k2c_turn *g);                     /* tokens picked so far */
k2c_toolparse *k2c_turn_parser(k2c_turn *g);                 /* content + tool calls so far */
/* Schema keywords of the tools / response_format that are not enforced exactly (each with its path,
 * "; "-joined), or NULL: the server reports them in a Warning header and its log. */
const char *k2c_turn_warnings(const k2c_turn *g);
/* With opts.logprobs: one entry per sampled content token, in order. */
int k2c_turn_nlogprobs(const k2c_turn *g);
const k2c_turn_logprob *k2c_turn_logprob_at(const k2c_turn *g, int i);
/* Argument text of call i as streamed so far (the parser holds a call's arguments only once it ends). */
const char *k2c_turn_args(const k2c_turn *g, int i, size_t *len);

/* OpenAI-compatible HTTP server (server.c): POST /v1/chat/completions, /v1/completions, GET /v1/models,
 * /health, /metrics. Requests share the model: one scheduler thread batches every active request's
 * decode step into one forward pass (with a chunk of a prompt being prefilled, k2c_decode_batch_prefill); a new request reuses the latent KV rows of the longest prompt
 * prefix any slot holds. Runs until SIGINT / SIGTERM (or *stop becomes nonzero). */
typedef struct {
    const char *model_dir;          /* checkpoint + tiktoken.model + tokenizer_config.json */
    const char *host;               /* IPv4 address to bind, default 127.0.0.1 */
    int port;                       /* 0: 8080 */
    const char *api_key;            /* NULL: no check */
    int parallel;                   /* slots (concurrent generations), default 4 */
    int ctx;                        /* tokens per slot, default min(4096, max_position_embeddings) */
    int threads;                    /* > 0: overrides model_opts->threads */
    const k2c_model_opts *model_opts;   /* kernels, load mode; NULL: defaults */
    size_t max_body;                /* request body cap, default 1 MiB */
    int max_queue;                  /* waiting requests beyond the slots, default 64 */
    double timeout_s;               /* per request, default 300 */
    int default_max_tokens;         /* when a request gives none, default 256 */
    int prefill_chunk;              /* prompt tokens prefilled per scheduler step while requests decode (0: 16; <0: whole
                                     * prompts); with none decoding a step prefills up to 512 */
} k2c_server_opts;
int k2c_server_run(const k2c_server_opts *o, volatile int *stop);

/* Text with invalid UTF-8 replaced by U+FFFD (malloc'd, NUL-terminated): model output made safe for JSON. */
char *k2c_utf8_clean(const char *s, size_t n);

/* Built-in tools (agent_tools.c, agent_env.c), in groups: the calculator; read_file and list_dir confined to
 * a working directory; write_file (only with allow_write, and only in an explicitly named directory);
 * calendar tools (days_between, weekday, add_days); convert_units; a simulated travel-booking API
 * (search_flights, book_flight, search_hotels, book_hotel) over a catalogue seeded by seed: flights among
 * HAN SGN DAD CXR PQC every day of 2026-2027, hotels in five cities; bookings are the state and change
 * what the searches return. Every tool answers JSON (the calculator: the number); a bad call is an error
 * result (is_error), never a crash. */
enum { K2C_TOOLS_CALC = 1, K2C_TOOLS_FILES = 2, K2C_TOOLS_WRITE = 4, K2C_TOOLS_DATES = 8, K2C_TOOLS_UNITS = 16,
       K2C_TOOLS_TRAVEL = 32, K2C_TOOLS_BUILTIN = 1 | 2 | 8 | 16 | 32 };
/* "builtin", "none" or a comma list of calculator,files,dates,units,travel. -1 + error on an unknown name. */
int k2c_tool_groups_parse(const char *list, unsigned *groups);
typedef struct {
    unsigned groups;
    const char *workdir;            /* file tools' root; NULL: "." (read-only tools only) */
    int allow_write;                /* declare write_file: requires workdir */
    uint64_t seed;                  /* the travel catalogue (0: 2026, the one k2c synth uses) */
} k2c_toolbox_opts;
typedef struct k2c_toolbox k2c_toolbox;
k2c_toolbox *k2c_toolbox_new(const k2c_toolbox_opts *o);     /* NULL + error */
void k2c_toolbox_free(k2c_toolbox *b);
const char *k2c_toolbox_json(const k2c_toolbox *b);          /* OpenAI tools array of the declared tools */
int k2c_toolbox_has(const k2c_toolbox *b, const char *name);
/* The result (malloc'd), or NULL with *is_error 1 and the reason in k2c_errmsg(). */
char *k2c_toolbox_call(k2c_toolbox *b, const char *name, const char *args_json, int *is_error);
char *k2c_toolbox_state_json(const k2c_toolbox *b);          /* {"bookings":[...],"spent":VND} (malloc'd) */
int k2c_toolbox_reset(k2c_toolbox *b);                       /* a fresh environment (no bookings) */

/* The agent loop (agent.c): declares the tools, generates (constrained, in-process), runs calls, feeds
 * results (errors included) back until an answer without tool calls, max_turns, or a conversation that no
 * longer fits the context (a finish reason, not an error). */
typedef struct {
    const char *model_dir;
    const char *workdir;            /* built-in file tools' root (NULL: "." for reading; writing needs it named) */
    int builtin;                    /* declare every built-in group (K2C_TOOLS_BUILTIN) */
    unsigned tools;                 /* or: the K2C_TOOLS_* groups to declare */
    int allow_write;                /* declare write_file (requires workdir) */
    uint64_t env_seed;              /* the travel catalogue's seed (0: 2026) */
    const char *const *mcp; int nmcp;   /* MCP server command lines */
    int max_turns, max_tokens, ctx, threads;
    const k2c_model_opts *model_opts;   /* kernels, load mode; NULL: defaults (threads > 0 overrides) */
    k2c_tool_choice tool_choice;    /* usually auto; required forces a call every turn */
    float temperature;
    uint64_t seed;
    const char *transcript;         /* rewritten (atomically) after every message: {"tools","messages","turns",
                                     * "finish","state"} JSON, or NULL */
    void *log;                      /* FILE * for progress lines, or NULL */
} k2c_agent_opts;
/* 0 with *answer (malloc'd; NULL when the turn limit or the context came first), or -1 + error. */
int k2c_agent_run(const k2c_agent_opts *o, const char *task, char **answer);

/* A session: the model, tokenizer, tools and MCP servers loaded once for many tasks (eval-agent, RL). */
typedef struct k2c_agent k2c_agent;
k2c_agent *k2c_agent_new(const k2c_agent_opts *o);          /* NULL + error */
void k2c_agent_free(k2c_agent *ag);
k2c_toolbox *k2c_agent_toolbox(k2c_agent *ag);               /* NULL without built-in tools */
const char *k2c_agent_tools_json(const k2c_agent *ag);       /* the declared tools (NULL: none) */
const k2c_tokenizer *k2c_agent_tokenizer(const k2c_agent *ag);
/* Declares other built-in groups (and working directory) for the tasks that follow; MCP tools stay. */
int k2c_agent_set_tools(k2c_agent *ag, unsigned groups, const char *workdir);
typedef struct {
    const char *task;               /* the user message */
    const char *system;             /* a system message, or NULL (the template's default) */
    float temperature;
    uint64_t seed;
    int max_turns, max_tokens;      /* 0: the session's */
} k2c_agent_task_opts;
typedef struct {
    char *answer;                   /* the final content, NULL without one */
    char *transcript;               /* the transcript JSON, as k2c_agent_opts.transcript describes */
    const char *finish;             /* "answer", "max_turns" or "context" */
    int turns, gen_tokens, ncalls, nerrors, truncated;   /* truncated: turns cut by max_tokens */
    /* per turn: the rendered prompt and the ids the model sampled after it */
    int nrec; int **prompt, *nprompt, **gen, *ngen;
} k2c_agent_result;
/* Runs one task from a fresh environment. 0 (r filled; free with k2c_agent_result_free), or -1 + error. */
int k2c_agent_task(k2c_agent *ag, const k2c_agent_task_opts *to, k2c_agent_result *r);
void k2c_agent_result_free(k2c_agent_result *r);

/* Agent tasks (agent_tasks.c): JSONL task files with verifiers (the format is described there). */
typedef struct {
    char *id, *category, *template_id, *split, *task;
    char *tools;                    /* built-in groups, as k2c_tool_groups_parse reads them */
    char *files_json;               /* {"name": "content"} of the working folder, or NULL */
    char *verify_json;              /* the checks */
    char *reference_json;           /* a reference trajectory (messages), or NULL */
    int difficulty, budget;         /* budget: generated tokens before the penalty (0: none) */
} k2c_task;
/* Loads path; split (NULL, "" or "all": every task) keeps only that split. -1 + error naming file:line:field. */
int k2c_tasks_load(const char *path, const char *split, k2c_task **tasks, int *n);
void k2c_tasks_free(k2c_task *tasks, int n);
typedef struct {
    double score;                   /* checks passed / checks */
    int success, checks, passed;
    char why[512];                  /* the failed checks */
} k2c_verdict;
/* answer: the final answer (NULL: none); transcript_json: the agent's transcript (messages and state). */
int k2c_task_verify(const k2c_task *t, const char *answer, const char *transcript_json, k2c_verdict *v);

/* Task synthesis (agent_synth.c): n tasks of growing difficulty over the built-in tools, each with a verifier
 * and a reference trajectory produced by running the environment, written as JSONL to path (atomically).
 * split "train" or "heldout" draws from disjoint template sets; "all" from both. */
typedef struct {
    int n;
    uint64_t seed;
    const char *split;
    const char *categories;         /* comma list, NULL: every category */
} k2c_synth_opts;
int k2c_synth_tasks(const k2c_synth_opts *o, const char *path);


#endif
