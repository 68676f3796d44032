/* text — bytes to tokens and back, and the structure of what the model writes:
 *   tokenizer.c     loading tiktoken.model / tokenizer_config.json, encode, decode, streaming detok
 *   bpe.c           the BPE merge loops and the byte-string -> id tables
 *   hf_tokenizer.c  Hugging Face tokenizer.json (byte-level BPE: DeepSeek-V3)
 *   gguf_tokenizer.c  the tokenizer in GGUF metadata (tokenizer.ggml.*), read and exported for writing
 *   bpe_train.c     BPE training with Kimi's pattern and special block
 *   chat.c          the Kimi chat template
 *   toolcall.c      the streaming tool-call parser
 *   grammar.c       JSON Schema -> byte-level matcher for constrained decoding
 * Depends on core only: the text layer knows nothing of the model. Internal to libk2c. */
#ifndef K2C_TEXT_H
#define K2C_TEXT_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- byte-string -> id hash table (open addressing, linear probing) ----
 * The bytes of every id live in one arena; a slot keeps 32 bits of the hash so most misses and
 * collisions are rejected without touching the arena. */
typedef struct {
    uint32_t hash;      /* low 32 bits of tok_hash() */
    int32_t id;         /* -1: empty */
} tok_slot;

typedef struct {
    tok_slot *slots;
    size_t mask;        /* capacity - 1 (power of two) */
    size_t n;
} tok_map;

uint64_t tok_hash(const unsigned char *p, size_t n);

/* id -> bytes, shared by lookup and decode. */
typedef struct {
    unsigned char *arena;
    size_t arena_len, arena_cap;
    uint64_t *span;     /* [n_ids]: offset << 24 | length; UINT64_MAX for an id with no bytes */
    int n_ids;          /* ids 0 .. n_ids-1 (holes allowed) */
} tok_vocab;

/* Token ids are below TOK_MAX_IDS (16M, also bpe_train's vocabulary cap): a file naming id 10^9 must
 * be an error, not an 8 GB id table. */
#define TOK_MAX_IDS (1 << 24)
int tok_vocab_set(tok_vocab *v, int id, const unsigned char *p, size_t n);   /* -1 + error */
static inline int tok_vocab_get(const tok_vocab *v, int id, const unsigned char **p, size_t *n) {
    if (id < 0 || id >= v->n_ids || v->span[id] == UINT64_MAX) { *p = NULL; *n = 0; return -1; }
    *p = v->arena + (v->span[id] >> 24);
    *n = (size_t)(v->span[id] & 0xffffff);
    return 0;
}
void tok_vocab_free(tok_vocab *v);

int tok_map_init(tok_map *m, size_t expected);
void tok_map_free(tok_map *m);
/* Inserts bytes -> id; returns the id already there (>= 0) if the bytes are present, -1 if inserted,
 * -2 when out of memory. */
int tok_map_put(tok_map *m, const tok_vocab *v, const unsigned char *p, size_t n, int id);
int tok_map_get(const tok_map *m, const tok_vocab *v, const unsigned char *p, size_t n);   /* -1: absent */

/* ---- growable int vector for encode output ---- */
typedef struct { int *v; size_t n, cap; } tok_ids;
int tok_ids_push(tok_ids *a, int id);

/* Per-thread scratch memory for the merge loops, grown on demand. */
typedef struct {
    void *mem;
    size_t cap;
} tok_scratch;
void tok_scratch_free(tok_scratch *s);

/* HF merges: (left id, right id) -> (merge rank, merged id). */
typedef struct {
    uint64_t *keys;     /* left << 32 | right; UINT64_MAX empty */
    int32_t *rank, *merged;
    size_t mask, n;
} tok_pairs;
int tok_pairs_init(tok_pairs *p, size_t expected);
void tok_pairs_free(tok_pairs *p);
int tok_pairs_put(tok_pairs *p, int a, int b, int rank, int merged);
int tok_pairs_get(const tok_pairs *p, int a, int b, int *merged);   /* rank, or -1 */

/* tiktoken merge: bytes p[0..n) not in the map as a whole; merges the adjacent pair whose concatenation
 * has the lowest rank (leftmost on ties) until none is in the map, appends the ids. O(n log n). */
int tok_bpe_ranks(const tok_map *m, const tok_vocab *v, const unsigned char *p, size_t n, tok_scratch *s,
                  tok_ids *out);
/* HF merge: starts from single-byte ids (byte_id[]), merges the pair with the lowest merge rank. */
int tok_bpe_pairs(const tok_pairs *pairs, const int *byte_id, const unsigned char *p, size_t n, tok_scratch *s,
                  tok_ids *out);

/* ---- the tokenizer ---- */
enum { TOK_TIKTOKEN, TOK_HF };
#define TOK_MAX_SPLITS 8

struct k2c_tokenizer {
    int kind;
    tok_vocab vocab;
    tok_map map;                        /* bytes -> id of every base token (and specials, for decode) */
    int n_special;
    int *special_ids;                   /* [n_special] */
    pcre2_code *special_re;             /* alternation of every special's literal text, longest first */
    /* Pre-tokenizer: a sequence of splits applied in turn (tiktoken: one). */
    int nsplit;
    pcre2_code *split_re[TOK_MAX_SPLITS];
    pcre2_code *split_re_bad[TOK_MAX_SPLITS];   /* same pattern compiled for text with invalid UTF-8 */
    /* HF byte-level BPE */
    tok_pairs pairs;
    int byte_id[256];
    int ignore_merges;
    int bos_id, eos_id;
    int kimi_template;                  /* tokenizer_config.json has Kimi's chat template */
};

/* Compiles a pre-tokenizer pattern twice (valid UTF-8 fast path, invalid-UTF-8 tolerant), with JIT. */
int tok_compile_split(k2c_tokenizer *t, const char *pattern, const char *where);
/* Compiles the special-token matcher from the special ids already in t->vocab. */
int tok_compile_specials(k2c_tokenizer *t, const char *where);
/* The Kimi pre-tokenizer pattern, in PCRE2 syntax. */
extern const char tok_kimi_pattern[];

/* Splits text into pre-tokenizer pieces with pattern i of t, calling fn(ctx, piece, len) for each. Bytes
 * the pattern cannot match (only invalid UTF-8) become pieces of their own. */
typedef int (*tok_piece_fn)(void *ctx, const unsigned char *p, size_t n);
int tok_split(const pcre2_code *re, const pcre2_code *re_bad, const unsigned char *p, size_t n,
              pcre2_match_data *md, pcre2_match_context *mc, tok_piece_fn fn, void *ctx);
int tok_utf8_valid(const unsigned char *p, size_t n);
/* Base64 (standard alphabet, padding required), for tiktoken.model. */
long tok_b64_decode(const char *s, size_t n, unsigned char *out);   /* -1 on bad input */
size_t tok_b64_encode(const unsigned char *p, size_t n, char *out);
/* Kimi's special block relative to the first special id: the name of slot i (0..255) into buf. */
void tok_kimi_special_name(int slot, int first_id, char *buf, size_t cap);

/* Encodes text in which special tokens count only at the given spans (byte offset + length into text,
 * sorted, not overlapping): the places the chat template put them. Special-token text anywhere else is
 * encoded as ordinary text, in context (the pre-tokenizer sees the text around it as usual). For text
 * whose only special-token text lies at the spans, the ids equal k2c_tokenizer_encode(allow_special=1). */
typedef struct { size_t off, len; } tok_span;
int tok_encode_marked(const k2c_tokenizer *t, const char *text, size_t len, const tok_span *spans, size_t nspans,
                      int **ids, int *n);

/* Registers a special (added) token; may_exist: the id may already hold the same bytes. */
int tok_special_add(k2c_tokenizer *t, int id, const char *content, const char *where, int may_exist);
int tok_hf_load(k2c_tokenizer *t, const char *path);   /* hf_tokenizer.c */
/* GPT-2's bytes_to_unicode, which byte-level vocabularies (tokenizer.json, GGUF) spell tokens in: printable
 * Latin-1 bytes stand for themselves, the other 68 take code points 256, 257, ... */
void tok_byte_unicode(uint32_t cp_of_byte[256], int byte_of_cp[324]);
/* A vocabulary string of len bytes -> raw bytes (out: at least len bytes); -1 if some character is outside
 * the byte alphabet. */
long tok_unicode_to_bytes(const char *s, size_t len, const int byte_of_cp[324], unsigned char *out);
/* A Rust (HF tokenizers) regex -> PCRE2: \s, \S as Unicode White_Space, \p{Han} as the script. malloc'd. */
char *tok_rust_to_pcre2(const char *re);
extern const char tok_gpt2_pattern[];   /* GPT-2's pre-tokenizer (ByteLevel use_regex), in Rust syntax */
/* The tokenizer in a GGUF file's metadata (gguf_tokenizer.c): tokenizer.ggml.model "gpt2" (byte-level BPE).
 * Pre-tokenizer "kimi-k2": tiktoken semantics (rank = id, merges not needed), as Kimi's own files; "gpt2" /
 * "default": the GPT-2 pattern with the merge list. Others: an error that names the value. */
int tok_gguf_load(k2c_tokenizer *t, const k2c_gguf *g, const char *path);
/* The other way, for writing GGUF: every id as tokenizer.ggml.tokens / token_type spell it, and, for a tiktoken
 * vocabulary, the merge that makes each token of two or more bytes (the split BPE itself finds, restricted to
 * lower ranks). Arrays malloc'd, strings in one arena; free with tok_export_free. */
typedef struct {
    int n_tokens;
    char **tokens;          /* [n_tokens], NUL-terminated */
    int32_t *types;         /* [n_tokens]: 1 normal, 3 control, 5 unused */
    int n_merges;
    char **merges;          /* [n_merges] "A B" in rank order */
    const char *pre;        /* tokenizer.ggml.pre to write: "kimi-k2" (tiktoken) or "gpt2" */
    char *arena;
} tok_export;
int tok_export_bpe(const k2c_tokenizer *t, tok_export *out);
void tok_export_free(tok_export *e);
/* ------------------------------------------------------------------ JSON Schema grammar (grammar.c) */
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


#endif
