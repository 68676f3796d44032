/* k2c — the Kimi K2 system in C. The one public header of libk2c.
 *
 * Data flows through the library in this order (docs/ARCHITECTURE.md walks it):
 *   safetensors.c  mmap a Hugging Face checkpoint, validate every header entry
 *   config.c       parse and validate config.json
 *   dtype.c        BF16 / F16 / FP8-E4M3 / INT4 conversions
 *   linear.c       a weight matrix in its stored format + the kernels that read it (dequantize on the fly)
 *   model.c        bind tensor names to the layer structs
 *   rope.c         interleaved RoPE with YaRN
 *   mla.c          Multi-head Latent Attention: prefill (expanded) and decode (absorbed, latent cache)
 *   moe.c          sigmoid router, bias-corrected group-limited top-k, experts
 *   forward.c      the whole forward pass
 *   sampler.c      temperature / top-k / top-p / min-p sampling
 *
 * Conventions: functions that can fail return 0 on success and -1 on failure, with a message for the user
 * in k2c_errmsg() that names the file and field. Matrices are row-major; shapes are given in comments as
 * [rows, cols]. A weight [out, in] maps x [in] to y [out] (y = W x), as in PyTorch's Linear.
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

float k2c_bf16_to_f32(uint16_t h);
uint16_t k2c_f32_to_bf16(float f);                        /* round to nearest even */
float k2c_f16_to_f32(uint16_t h);
uint16_t k2c_f32_to_f16(float f);
float k2c_fp8_to_f32(uint8_t b);                          /* e4m3fn */
uint8_t k2c_f32_to_fp8(float f);                          /* e4m3fn, saturating at 448 */
/* Any scalar element of a tensor as float (F32, F16, BF16, F8_E4M3, F64, integer types). */
float k2c_elem_to_f32(k2c_dtype t, const void *data, size_t i);

/* ------------------------------------------------------------------ safetensors */
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

typedef struct {
    char *path;
    void *map;
    size_t size;
} k2c_st_file;

typedef struct {
    int nfiles;
    k2c_st_file *files;
    int ntensors;
    k2c_tensor *tensors;    /* sorted by name */
} k2c_safetensors;

/* Opens one .safetensors file, or a model folder (model.safetensors, or shards through
 * model.safetensors.index.json). Every header entry is checked: dtype, shape, offsets inside the data
 * area, no overlaps, byte count = numel * dtype size. */
int k2c_st_open(k2c_safetensors *st, const char *path);
/* The same header checks on a whole file image in memory (name: for errors); st does not own image,
 * which must outlive st (tensor data points into it; file is NULL). For fuzzing and tests. */
int k2c_st_parse(k2c_safetensors *st, const char *name, const void *image, size_t size);
/* How files are brought into memory: mmap (starts at once, works for models larger than RAM), copy into
 * anonymous huge-page memory (about 2x faster decode: no 4 KB TLB misses), or auto (the default: copy
 * each file while it takes under half of the available memory, else mmap). */
typedef enum { K2C_LOAD_AUTO, K2C_LOAD_MMAP, K2C_LOAD_COPY } k2c_load_mode;
extern k2c_load_mode k2c_st_load_mode;
void k2c_st_close(k2c_safetensors *st);
const k2c_tensor *k2c_st_find(const k2c_safetensors *st, const char *name);

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

/* ------------------------------------------------------------------ linear (weights in stored format) */
typedef enum { K2C_FMT_F32, K2C_FMT_BF16, K2C_FMT_F16, K2C_FMT_FP8, K2C_FMT_INT4 } k2c_wfmt;
typedef struct {
    k2c_wfmt fmt;
    int rows, cols;                 /* [out, in] */
    const void *w;                  /* F32/BF16/F16: [rows, cols]; FP8: u8 [rows, cols]; INT4: i32 [rows, cols/8] */
    const float *scale_f32;         /* FP8: weight_scale_inv [ceil(rows/B), ceil(cols/B)] */
    const uint16_t *scale_bf16;     /* INT4: weight_scale BF16 [rows, cols/G] */
    int block;                      /* FP8 block size (128) or INT4 group size (32) */
    int scale_cols;                 /* columns of the scale matrix */
} k2c_linear;

size_t k2c_linear_bytes(const k2c_linear *l);           /* bytes read per full pass over the weights */
/* out [nrows, cols] = rows r0 .. r0+nrows-1 dequantized to fp32 */
void k2c_linear_dequant_rows(const k2c_linear *l, int r0, int nrows, float *out);
/* y [rows] = W x [cols]; multi-threaded over rows. */
void k2c_matvec(const k2c_linear *l, const float *x, float *y);
/* Several independent matvecs in one parallel loop (one fork/join for all). */
#define K2C_MATVEC_BATCH_MAX 160
typedef struct { const k2c_linear *l; const float *x; float *y; } k2c_matvec_job;
void k2c_matvec_batch(const k2c_matvec_job *jobs, int n);
/* Y [T, rows] = X [T, cols] W^T. Small T: matvec per row; large T: dequantized tiles + sgemm. */
void k2c_matmul(const k2c_linear *l, const float *X, int T, float *Y);
/* The same, never with BF16-rounded inputs: for the router, whose top-k choice a rounding can flip. */
void k2c_matmul_fp32(const k2c_linear *l, const float *X, int T, float *Y);
/* y [cols] = W^T x [rows] over rows r0 .. r0+nrows-1 of W (x has nrows entries); single-threaded. */
void k2c_matvec_t_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y);
/* y [nrows] = rows r0 .. r0+nrows-1 of W times x [cols]; single-threaded (callers parallelize). */
void k2c_matvec_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y);
/* Prompt GEMM (gemm.c): X [T, C] packed once into blocks of 32 tokens, then any number of row tiles
 * w [nr, C] (fp32) give Y[:, 0..nr) with row stride ldy. */
size_t k2c_gemm_packed_size(int T, int C);
void k2c_gemm_pack_x(const float *X, int T, int C, float *Xp);
void k2c_gemm_tile(const float *w, int nr, int C, const float *Xp, int T, float *Y, int ldy);
/* The same with BF16 weights and inputs rounded to BF16 (AVX512-BF16 CPUs only; fp32 accumulation):
 * Xp holds column pairs [ceil(T/32)][ceil(C/2)][32]; w is nr rows of C BF16 values, ldw apart. */
size_t k2c_gemm_bf16_packed_size(int T, int C);
void k2c_gemm_pack_x_bf16(const float *X, int T, int C, uint32_t *Xp);
void k2c_gemm_tile_bf16(const uint16_t *w, size_t ldw, int nr, int C, const uint32_t *Xp, int T, float *Y, int ldy);
/* Which SIMD level the kernels picked at run time: "avx512", "avx2" or "scalar". K2C_SIMD env overrides. */
const char *k2c_simd_name(void);
/* Prompts (T > 32) on BF16 weights: multiply BF16 x BF16 with fp32 sums (AVX512-BF16), the inputs rounded to
 * BF16 as a BF16 reference run rounds its activations. Off by default (fp32 inputs, what the golden tests
 * check to 1e-4); K2C_PROMPT_PRECISION=bf16 or k2c_set_bf16_prompt(1) turns it on where the CPU has it. */
int k2c_bf16_prompt_supported(void);
int k2c_set_bf16_prompt(int on);        /* -1: the CPU lacks AVX512-BF16 */
int k2c_bf16_prompt(void);              /* in use now */
int k2c_simd_force(const char *name);   /* "scalar" or "avx512" (if the CPU has it); -1 if not possible */

/* ------------------------------------------------------------------ rope, router */
/* inv_freq [dr/2]; cos_sin_scale multiplies cos/sin (YaRN mscale ratio); attn_scale is the softmax scale. */
void k2c_rope_init(const k2c_config *c, float *inv_freq, float *cos_sin_scale, float *attn_scale);
void k2c_rope_apply(float *x, int dr, int pos, const float *inv_freq, float mscale);     /* in place */
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
    k2c_linear o;                               /* [D, H*dv] */
    int is_moe;
    k2c_linear gate, up, down;                  /* dense FFN (or shared experts when is_moe) */
    k2c_linear router;                          /* [E, D] */
    const float *router_bias;                   /* [E] e_score_correction_bias */
    k2c_linear *exp_gate, *exp_up, *exp_down;   /* [E] each */
} k2c_layer;

typedef struct {
    k2c_config cfg;
    k2c_safetensors st;
    k2c_linear embed;                           /* [V, D] */
    k2c_linear head;                            /* [V, D] */
    const float *final_norm;                    /* [D] */
    k2c_layer *layers;
    float *inv_freq;                            /* [dr/2] */
    float rope_mscale;                          /* multiplies cos/sin (YaRN) */
    float attn_scale;                           /* softmax scale */
    void **owned; int nowned, cap_owned;        /* fp32 copies of small vectors */
} k2c_model;

int k2c_model_load(k2c_model *m, const char *dir);
void k2c_model_free(k2c_model *m);
/* Parameter counts (total, active per token) and weight bytes. */
void k2c_model_counts(const k2c_config *c, double *total, double *active);

/* Writes a random checkpoint of shape c in the Hugging Face layout: dtype "f32", "bf16", "fp8" (e4m3 +
 * 128x128 scales) or "int4" (routed experts pack-quantized); shards > 1 gives model-I-of-N files + index. */
int k2c_mkmodel(const k2c_config *c, const char *dtype, int shards, uint64_t seed, const char *outdir);

/* ------------------------------------------------------------------ inference state */
typedef struct {
    float *hidden;          /* optional [L, T, D]: residual stream after each layer */
    int *experts;           /* optional [L, T, k]: chosen experts, sorted ascending (-1 for dense layers) */
    float *attn_max;        /* optional [L, H]: per-head max pre-softmax logit */
} k2c_trace;

typedef struct {
    const k2c_model *m;
    int max_ctx;
    int pos;                /* tokens in the cache */
    float *cache;           /* [L, max_ctx, r + dr]: RMSNorm(c) then roped k_pe, per token */
    int nthreads;
} k2c_state;

int k2c_state_init(k2c_state *s, const k2c_model *m, int max_ctx);
void k2c_state_free(k2c_state *s);
void k2c_state_reset(k2c_state *s);
/* Runs T tokens from position s->pos through the expanded attention path, appending them to the latent
 * cache. logits: [T, V] for every position, or NULL; last_logits: [V] of the last position, or NULL. */
int k2c_prefill(k2c_state *s, const int *ids, int T, float *logits, float *last_logits, k2c_trace *trace);
/* One token through the absorbed attention path over the latent cache. logits [V]. */
int k2c_decode(k2c_state *s, int id, float *logits, k2c_trace *trace);
/* One token for each of n states of the same model (a server's concurrent requests): each weight is
 * read once for all of them. logits [n, V]. */
int k2c_decode_batch(k2c_state *const *states, const int *ids, int n, float *logits);

/* Building blocks of the forward pass (mla.c, moe.c), public for tests and the trainer's checks.
 * Attention of one layer for T tokens at positions s->pos.. (cache rows written, s->pos not advanced);
 * attn_max [H] is raised to the largest pre-softmax logit per head when not NULL. */
int k2c_mla_prefill(k2c_state *s, int layer, const float *XN, int T, float *out, float *attn_max);
int k2c_mla_decode_batch(k2c_state *const *ss, int n, int layer, const float *XN, float *out, float *attn_max);
/* FFN of one layer (dense or MoE); experts: optional [T, k] trace, sorted ascending. */
int k2c_ffn_forward(const k2c_model *m, int layer, const float *XN, int T, float *out, int *experts);

/* ------------------------------------------------------------------ sampling */
typedef struct {
    float temperature, top_p, min_p;
    int top_k;
    uint64_t rng;
    float *scratch_p; int *scratch_i; int n;
} k2c_sampler;
void k2c_sampler_init(k2c_sampler *s, int vocab, float temperature, float top_p, int top_k, float min_p, uint64_t seed);
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

/* ------------------------------------------------------------------ threads */
void k2c_set_threads(int n);                /* 0 = all cores */
int k2c_get_threads(void);

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

/* ------------------------------------------------------------------ server, grammar, agent */
/* JSON Schema -> byte-level matcher (grammar.c). Compiled once per schema; a matcher state is a small
 * fixed-size stack, so checking a candidate token is copy + feed its bytes. Accepted text is compact JSON
 * (no whitespace) that validates against the schema: type (or type lists), enum / const, properties +
 * required (only declared keys, each once), additionalProperties schemas for free-key objects, items,
 * minItems / maxItems, minLength / maxLength, string escapes; unknown keywords are ignored. */
typedef struct k2c_schema k2c_schema;
k2c_schema *k2c_schema_compile(const char *schema_json, const char *where);   /* NULL + error */
k2c_schema *k2c_schema_compile_json(void *json_t_schema, const char *where); /* a jansson json_t * */
void k2c_schema_free(k2c_schema *s);
typedef struct k2c_gram k2c_gram;
k2c_gram *k2c_gram_new(const k2c_schema *s);
void k2c_gram_reset(k2c_gram *g, const k2c_schema *s);
void k2c_gram_free(k2c_gram *g);
void k2c_gram_copy(k2c_gram *dst, const k2c_gram *src);   /* dst from k2c_gram_new or k2c_gram_size() bytes */
size_t k2c_gram_size(void);
int k2c_gram_feed(k2c_gram *g, const char *bytes, size_t len);   /* -1 if a byte is not allowed (g is then undefined) */
int k2c_gram_done(const k2c_gram *g);                            /* the value is complete, nothing may follow */
int k2c_gram_accepting(const k2c_gram *g);                       /* the value may end here */
void k2c_gram_first_bytes(const k2c_gram *g, uint8_t allowed[32]);   /* bitmap of the bytes allowed next */
/* The shortest text that completes the value (malloc'd, NUL-terminated); "" when done. */
char *k2c_gram_close(const k2c_gram *g, size_t *len);

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
    const k2c_vocab_info *vocab_info;   /* NULL: built for this generation (slower start) */
} k2c_turn_opts;
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
/* Argument text of call i as streamed so far (the parser holds a call's arguments only once it ends). */
const char *k2c_turn_args(const k2c_turn *g, int i, size_t *len);

/* OpenAI-compatible HTTP server (server.c): POST /v1/chat/completions, /v1/completions, GET /v1/models,
 * /health, /metrics. Requests share the model: one scheduler thread batches every active request's
 * decode step into one k2c_decode_batch; a new request reuses the latent KV rows of the longest prompt
 * prefix any slot holds. Runs until SIGINT / SIGTERM (or *stop becomes nonzero). */
typedef struct {
    const char *model_dir;          /* checkpoint + tiktoken.model + tokenizer_config.json */
    const char *host;               /* IPv4 address to bind, default 127.0.0.1 */
    int port;                       /* 0: 8080 */
    const char *api_key;            /* NULL: no check */
    int parallel;                   /* slots (concurrent generations), default 4 */
    int ctx;                        /* tokens per slot, default min(4096, max_position_embeddings) */
    int threads;
    size_t max_body;                /* request body cap, default 1 MiB */
    int max_queue;                  /* waiting requests beyond the slots, default 64 */
    double timeout_s;               /* per request, default 300 */
    int default_max_tokens;         /* when a request gives none, default 256 */
} k2c_server_opts;
int k2c_server_run(const k2c_server_opts *o, volatile int *stop);

/* Text with invalid UTF-8 replaced by U+FFFD (malloc'd, NUL-terminated): model output made safe for JSON. */
char *k2c_utf8_clean(const char *s, size_t n);

/* MCP client over stdio (mcp.c): cmdline runs under /bin/sh; JSON-RPC 2.0, one message per line;
 * every wait bounded by timeout_s. */
typedef struct k2c_mcp k2c_mcp;
k2c_mcp *k2c_mcp_start(const char *cmdline, double timeout_s);       /* initialize + initialized */
void k2c_mcp_close(k2c_mcp *m);                                      /* EOF, then kill after 2 s */
char *k2c_mcp_list_tools(k2c_mcp *m);            /* OpenAI tools array (parameters = inputSchema), malloc'd */
/* tools/call: the result's text parts joined (malloc'd), *is_error = isError; NULL + error on failure. */
char *k2c_mcp_call_tool(k2c_mcp *m, const char *name, const char *args_json, int *is_error);

/* Built-in agent tools (agent_tools.c): calculator, read_file, list_dir, write_file. File tools are
 * confined to workdir: relative paths only, no "..", no symbolic link followed anywhere (each
 * component opened with O_NOFOLLOW from a directory descriptor), writes atomic (temp file + rename). */
int k2c_calc_eval(const char *expr, double *out);   /* arithmetic only; -1 + error */
const char *k2c_builtin_tools_json(void);           /* their OpenAI tool declarations */
/* The result text (malloc'd) with *is_error 0, or NULL with *is_error 1 and the reason in k2c_errmsg(). */
char *k2c_builtin_tool(const char *workdir, const char *name, const char *args_json, int *is_error);

/* The agent loop (agent.c): declares the tools, generates (constrained, in-process), runs calls, feeds
 * results (errors included) back until an answer without tool calls or max_turns. */
typedef struct {
    const char *model_dir;
    const char *workdir;            /* built-in file tools' root (default ".") */
    int builtin;                    /* declare the built-in tools */
    const char *const *mcp; int nmcp;   /* MCP server command lines */
    int max_turns, max_tokens, ctx, threads;
    k2c_tool_choice tool_choice;    /* usually auto; required forces a call every turn */
    float temperature;
    uint64_t seed;
    const char *transcript;         /* write {"tools","messages","turns"} JSON here, or NULL */
    void *log;                      /* FILE * for progress lines, or NULL */
} k2c_agent_opts;
/* 0 with *answer (malloc'd; NULL when the turn limit came first), or -1 + error. */
int k2c_agent_run(const k2c_agent_opts *o, const char *task, char **answer);

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

/* ---- data (data.c): token shards "K2CTOKS\0", u32 version 1, u32 token bytes (4), u64 count, u32 ids */
int k2c_shard_write(const char *path, const uint32_t *ids, uint64_t n);   /* atomic */
typedef struct {
    int nshards;
    uint32_t **tok; uint64_t *ntok; void **map; size_t *mapsz;
    uint64_t total;
} k2c_dataset;
/* Opens DIR/PREFIX*.bin (prefix "train" or "val"). */
int k2c_dataset_open(k2c_dataset *d, const char *dir, const char *prefix);
void k2c_dataset_close(k2c_dataset *d);
/* Window number idx of a run: T+1 tokens at a position that depends only on (seed, idx). */
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
