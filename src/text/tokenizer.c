/* Tokenizer: loading Kimi's tiktoken.model + tokenizer_config.json, the pre-tokenizer (PCRE2 with JIT),
 * encode / decode and the streaming decoder. The merge itself is in bpe.c, tokenizer.json in
 * hf_tokenizer.c.
 *
 * Encoding follows Kimi's reference (tokenization_kimi.py over tiktoken) step by step, because every
 * step can change the ids:
 *   1. the text is cut into parts of 400,000 characters, and each part wherever a run of whitespace or
 *      of non-whitespace characters (Python's str.isspace) exceeds 25,000 characters;
 *   2. in each part, special tokens are found first (leftmost; the longest at a position);
 *   3. the text between them is split by the pre-tokenizer pattern;
 *   4. each piece is one token if its bytes are a token, else BPE-merged by rank.
 * The parts are independent, so the 400,000-character chunks are encoded in parallel (OpenMP). */
#include "text/text.h"

#include <jansson.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kimi's pattern (tokenization_kimi.py) in PCRE2 syntax. Three translations keep it identical to the
 * Rust regex tiktoken runs it with:
 *  - X&&[^\p{Han}] (class intersection, absent from PCRE2 10.42) becomes (?!\p{sc=Han})X per character;
 *  - \p{Han} is the Script property (Rust's meaning), written \p{sc:Han}: PCRE2 >= 10.40 reads a bare
 *    script name as Script_Extensions, which would also take 、 and ー;
 *  - \s / \S are spelled out as Unicode White_Space, which is Rust's \s (PCRE2's UCP \s differs). */
#define WS "\\t\\n\\x0b\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
#define UPPER "(?:(?!\\p{sc:Han})[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}])"
#define LOWER "(?:(?!\\p{sc:Han})[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}])"
#define CONTR "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
const char tok_kimi_pattern[] =
    "\\p{sc:Han}+"
    "|[^\\r\\n\\p{L}\\p{N}]?" UPPER "*" LOWER "+" CONTR
    "|[^\\r\\n\\p{L}\\p{N}]?" UPPER "+" LOWER "*" CONTR
    "|\\p{N}{1,3}"
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*"
    "|[" WS "]*[\\r\\n]+"
    "|[" WS "]+(?![^" WS "])"
    "|[" WS "]+";

#define CHUNK_CHARS 400000      /* TIKTOKEN_MAX_ENCODE_CHARS */
#define RUN_CHARS 25000         /* MAX_NO_WHITESPACES_CHARS */

/* ------------------------------------------------------------------ small helpers */
static const signed char b64_val[256] = {
#define X -1
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,62,X,X,X,63, 52,53,54,55,56,57,58,59,60,61,X,X,X,X,X,X,
    X,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14, 15,16,17,18,19,20,21,22,23,24,25,X,X,X,X,X,
    X,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40, 41,42,43,44,45,46,47,48,49,50,51,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
    X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X, X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,X,
#undef X
};

long tok_b64_decode(const char *s, size_t n, unsigned char *out) {
    if (n == 0 || n % 4) return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = 0, v[4];
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
            if (pad || b64_val[c] < 0) return -1;   /* '=' only at the very end */
            v[k] = b64_val[c];
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2) out[o++] = (unsigned char)(w >> 8);
        if (pad < 1) out[o++] = (unsigned char)w;
    }
    return o;
}

size_t tok_b64_encode(const unsigned char *p, size_t n, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out[o++] = abc[w >> 18 & 63];
        out[o++] = abc[w >> 12 & 63];
        out[o++] = i + 1 < n ? abc[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? abc[w & 63] : '=';
    }
    out[o] = 0;
    return o;
}

/* Length of the valid UTF-8 character at p (1..4) with its code point, or 0 for an invalid byte. */
static int utf8_char(const unsigned char *p, size_t n, uint32_t *cp) {
    unsigned char c = p[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

int tok_utf8_valid(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII in 8-byte strides: the bulk of most text */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (p[i] < 0x80) { i++; continue; }
        uint32_t cp;
        int l = utf8_char(p + i, n - i, &cp);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

/* Python's str.isspace(): Unicode White_Space plus U+001C..U+001F (bidi class B/S). */
static int py_isspace(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ------------------------------------------------------------------ patterns */
static int compile_one(pcre2_code **out, const char *pattern, uint32_t opts, const char *where) {
    int err;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        k2c_seterr("%s: pattern error at offset %zu: %s", where, (size_t)off, (char *)msg);
        return -1;
    }
    /* JIT is an optimisation: without it (no JIT support) pcre2_match interprets the pattern. */
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
    return 0;
}

int tok_compile_split(k2c_tokenizer *t, const char *pattern, const char *where) {
    if (t->nsplit == TOK_MAX_SPLITS) { k2c_seterr("%s: more than %d pre-tokenizer splits", where, TOK_MAX_SPLITS); return -1; }
    uint32_t opts = PCRE2_UTF | PCRE2_UCP;
    if (compile_one(&t->split_re[t->nsplit], pattern, opts, where) != 0) return -1;
    if (compile_one(&t->split_re_bad[t->nsplit], pattern, opts | PCRE2_MATCH_INVALID_UTF, where) != 0) {
        pcre2_code_free(t->split_re[t->nsplit]);
        return -1;
    }
    t->nsplit++;
    return 0;
}

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const k2c_tokenizer *t = ctx;
    size_t la, lb;
    const unsigned char *p;
    tok_vocab_get(&t->vocab, *(const int *)a, &p, &la);
    tok_vocab_get(&t->vocab, *(const int *)b, &p, &lb);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

int tok_compile_specials(k2c_tokenizer *t, const char *where) {
    if (t->n_special == 0) return 0;
    /* Longest first, so that at a given position the longest special wins over one of its prefixes. */
    qsort_r(t->special_ids, (size_t)t->n_special, sizeof *t->special_ids, cmp_len_desc, t);
    size_t cap = 16;
    for (int i = 0; i < t->n_special; i++) {
        const unsigned char *p;
        size_t n;
        tok_vocab_get(&t->vocab, t->special_ids[i], &p, &n);
        cap += 6 * n + 1;
    }
    char *re = malloc(cap), *o = re;
    if (!re) { k2c_seterr("out of memory"); return -1; }
    for (int i = 0; i < t->n_special; i++) {
        const unsigned char *p;
        size_t n;
        tok_vocab_get(&t->vocab, t->special_ids[i], &p, &n);
        if (i) *o++ = '|';
        for (size_t k = 0; k < n; k++) {
            unsigned char c = p[k];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') *o++ = (char)c;
            else o += sprintf(o, "\\x{%02x}", c);   /* bytes, not characters: compiled without UTF */
        }
    }
    *o = 0;
    int rc = compile_one(&t->special_re, re, 0, where);
    free(re);
    return rc;
}

/* ------------------------------------------------------------------ splitting */
int tok_split(const pcre2_code *re, const pcre2_code *re_bad, const unsigned char *p, size_t n,
              pcre2_match_data *md, pcre2_match_context *mc, tok_piece_fn fn, void *ctx) {
    int valid = tok_utf8_valid(p, n);
    const pcre2_code *code = valid ? re : re_bad;
    uint32_t opts = valid ? PCRE2_NO_UTF_CHECK : 0;
    size_t pos = 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    while (pos < n) {
        int rc = pcre2_match(code, p, n, pos, opts, md, mc);
        size_t s, e;
        if (rc == PCRE2_ERROR_NOMATCH) { s = e = n; }
        else if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            k2c_seterr("pre-tokenizer match failed at byte %zu: %s", pos, (char *)msg);
            return -1;
        } else { s = ov[0]; e = ov[1]; }
        if (s > pos && fn(ctx, p + pos, s - pos) != 0) return -1;   /* bytes no alternative takes */
        if (s == n) break;
        if (e == s) {                    /* an empty match (possible in tokenizer.json patterns): skip a char */
            uint32_t cp;
            int l = utf8_char(p + s, n - s, &cp);
            e = s + (l ? (size_t)l : 1);
            if (fn(ctx, p + s, e - s) != 0) return -1;
        } else if (fn(ctx, p + s, e - s) != 0) return -1;
        pos = e;
    }
    return 0;
}

/* ------------------------------------------------------------------ encoding */
typedef struct {
    const k2c_tokenizer *t;
    tok_ids out;
    tok_scratch scratch;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    int level;              /* which split of a tokenizer.json sequence is running */
    /* tok_encode_marked: specials are taken only where they exactly cover one of these spans (offsets
     * into the whole text at base, sorted); NULL: wherever allow_special says. */
    const unsigned char *base;
    const tok_span *spans;
    size_t nspans;
} enc_ctx;

static int enc_ctx_init(enc_ctx *c, const k2c_tokenizer *t) {
    memset(c, 0, sizeof *c);
    c->t = t;
    c->md = pcre2_match_data_create(4, NULL);
    c->mc = pcre2_match_context_create(NULL);
    /* Long pieces (a 25,000-letter word) backtrack through a repeated group: give the JIT room. */
    c->js = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
    if (!c->md || !c->mc || !c->js) { k2c_seterr("out of memory"); return -1; }
    pcre2_jit_stack_assign(c->mc, NULL, c->js);
    return 0;
}

static void enc_ctx_free(enc_ctx *c) {
    pcre2_match_data_free(c->md);
    pcre2_match_context_free(c->mc);
    pcre2_jit_stack_free(c->js);
    tok_scratch_free(&c->scratch);
    free(c->out.v);
}

static int on_piece(void *ctx, const unsigned char *p, size_t n) {
    enc_ctx *c = ctx;
    const k2c_tokenizer *t = c->t;
    if (c->level + 1 < t->nsplit) {      /* a tokenizer.json Sequence: split the piece further */
        c->level++;
        int rc = tok_split(t->split_re[c->level], t->split_re_bad[c->level], p, n, c->md, c->mc, on_piece, c);
        c->level--;
        return rc;
    }
    if (t->kind == TOK_TIKTOKEN) {
        int id = tok_map_get(&t->map, &t->vocab, p, n);   /* the common case: the piece is a token */
        if (id >= 0) return tok_ids_push(&c->out, id);
        return tok_bpe_ranks(&t->map, &t->vocab, p, n, &c->scratch, &c->out);
    }
    if (t->ignore_merges) {
        int id = tok_map_get(&t->map, &t->vocab, p, n);
        if (id >= 0) return tok_ids_push(&c->out, id);
    }
    return tok_bpe_pairs(&t->pairs, t->byte_id, p, n, &c->scratch, &c->out);
}

static int encode_ordinary(enc_ctx *c, const unsigned char *p, size_t n) {
    if (n == 0) return 0;
    const k2c_tokenizer *t = c->t;
    if (t->nsplit == 0) return on_piece(c, p, n);
    c->level = 0;
    return tok_split(t->split_re[0], t->split_re_bad[0], p, n, c->md, c->mc, on_piece, c);
}

/* Binary search: is [off, off+len) exactly one of the allowed spans? */
static int span_allowed(const enc_ctx *c, size_t off, size_t len) {
    size_t lo = 0, hi = c->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->spans[mid].off < off) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->nspans && c->spans[lo].off == off && c->spans[lo].len == len;
}

/* One part after the cuts: specials, then the ordinary text between them. */
static int encode_part(enc_ctx *c, const unsigned char *p, size_t n, int allow_special) {
    const k2c_tokenizer *t = c->t;
    size_t pos = 0;
    if (allow_special && t->special_re) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        while (pos < n) {
            size_t from = pos, s, e;
            for (;;) {      /* the next special match (at an allowed span, under tok_encode_marked) */
                int rc = pcre2_match(t->special_re, p, n, from, 0, c->md, c->mc);
                if (rc == PCRE2_ERROR_NOMATCH) return encode_ordinary(c, p + pos, n - pos);
                if (rc < 0) { k2c_seterr("special-token match failed (%d)", rc); return -1; }
                s = ov[0];
                e = ov[1];
                if (!c->base || span_allowed(c, (size_t)(p + s - c->base), e - s)) break;
                /* special text the template did not put there: ordinary text (the regex is byte-level) */
                if ((from = s + 1) >= n) return encode_ordinary(c, p + pos, n - pos);
            }
            if (encode_ordinary(c, p + pos, s - pos) != 0) return -1;
            int id = -1;
            for (int i = 0; i < t->n_special && id < 0; i++) {
                const unsigned char *q;
                size_t qn;
                tok_vocab_get(&t->vocab, t->special_ids[i], &q, &qn);
                if (qn == e - s && !memcmp(q, p + s, qn)) id = t->special_ids[i];
            }
            if (tok_ids_push(&c->out, id) != 0) return -1;
            pos = e;
        }
    }
    return encode_ordinary(c, p + pos, n - pos);
}

/* Step 1 inside one chunk: the whitespace / non-whitespace run cut (_split_whitespaces_or_nonwhitespaces). */
static int encode_chunk(enc_ctx *c, const unsigned char *p, size_t n, int allow_special) {
    size_t i = 0, start = 0;
    long run = 0;
    int run_space = -1;
    while (i < n) {
        uint32_t cp = 0;
        int l = utf8_char(p + i, n - i, &cp);
        int sp = l ? py_isspace(cp) : 0;
        if (!l) l = 1;
        if (run_space < 0) run_space = sp;
        if (sp != run_space) { run = 1; run_space = sp; }
        else if (++run > RUN_CHARS) {
            if (encode_part(c, p + start, i - start, allow_special) != 0) return -1;
            start = i;
            run = 1;
        }
        i += (size_t)l;
    }
    return encode_part(c, p + start, n - start, allow_special);
}

static int encode_impl(const k2c_tokenizer *t, const char *text, size_t len, int allow_special,
                       const tok_span *spans, size_t nspans, int **ids, int *n);

int k2c_tokenizer_encode(const k2c_tokenizer *t, const char *text, size_t len, int allow_special, int **ids,
                         int *n) {
    return encode_impl(t, text, len, allow_special, NULL, 0, ids, n);
}

int tok_encode_marked(const k2c_tokenizer *t, const char *text, size_t len, const tok_span *spans, size_t nspans,
                      int **ids, int *n) {
    for (size_t i = 1; i < nspans; i++)
        if (spans[i].off < spans[i - 1].off + spans[i - 1].len) {
            k2c_seterr("internal: special spans out of order");
            *ids = NULL;
            *n = 0;
            return -1;
        }
    static const tok_span none;
    return encode_impl(t, text, len, 1, spans ? spans : &none, nspans, ids, n);
}

static int encode_impl(const k2c_tokenizer *t, const char *text, size_t len, int allow_special,
                       const tok_span *spans, size_t nspans, int **ids, int *n) {
    const unsigned char *p = (const unsigned char *)text;
    *ids = NULL;
    *n = 0;
    /* Chunk boundaries every CHUNK_CHARS characters (an invalid byte counts as one character). */
    size_t nchunk = 0, cap = 8, *bound = malloc(cap * sizeof *bound);
    if (!bound) { k2c_seterr("out of memory"); return -1; }
    bound[nchunk++] = 0;
    long chars = 0;
    for (size_t i = 0; i < len;) {
        if (chars == CHUNK_CHARS) {
            if (nchunk + 1 >= cap) {
                size_t *nb = realloc(bound, (cap *= 2) * sizeof *nb);
                if (!nb) { free(bound); k2c_seterr("out of memory"); return -1; }
                bound = nb;
            }
            bound[nchunk++] = i;
            chars = 0;
        }
        if (p[i] < 0x80) { i++; chars++; continue; }
        uint32_t cp;
        int l = utf8_char(p + i, len - i, &cp);
        i += l ? (size_t)l : 1;
        chars++;
    }
    bound[nchunk] = len;

    enc_ctx *ctx = calloc(nchunk, sizeof *ctx);
    int *rc = calloc(nchunk, sizeof *rc);
    char (*err)[K2C_ERRMSG_MAX] = NULL;
    int fail = 0;
    if (!ctx || !rc) { k2c_seterr("out of memory"); free(bound); free(ctx); free(rc); return -1; }
    #pragma omp parallel for schedule(dynamic, 1) if (nchunk > 1)
    for (size_t k = 0; k < nchunk; k++) {
        rc[k] = enc_ctx_init(&ctx[k], t);
        if (spans) { ctx[k].base = p; ctx[k].spans = spans; ctx[k].nspans = nspans; }
        if (!rc[k]) rc[k] = encode_chunk(&ctx[k], p + bound[k], bound[k + 1] - bound[k], allow_special);
        if (rc[k]) {
            /* the message lives in this thread's buffer: carry it to the caller's */
            #pragma omp critical(k2c_tok_err)
            {
                if (!err && (err = malloc(sizeof *err))) snprintf(*err, sizeof *err, "%s", k2c_errmsg());
            }
        }
    }
    size_t total = 0;
    for (size_t k = 0; k < nchunk; k++) { total += ctx[k].out.n; fail |= rc[k]; }
    if (!fail && total > INT_MAX) { fail = 1; k2c_seterr("text of %zu tokens is too long", total); }
    if (fail && err) k2c_seterr("%s", *err);
    int *res = NULL;
    if (!fail) {
        res = malloc((total ? total : 1) * sizeof *res);
        if (!res) { fail = 1; k2c_seterr("out of memory"); }
    }
    size_t o = 0;
    for (size_t k = 0; k < nchunk; k++) {
        if (res && ctx[k].out.n) memcpy(res + o, ctx[k].out.v, ctx[k].out.n * sizeof *res);
        o += ctx[k].out.n;
        enc_ctx_free(&ctx[k]);
    }
    free(ctx);
    free(rc);
    free(err);
    free(bound);
    if (fail) return -1;
    *ids = res;
    *n = (int)total;
    return 0;
}

/* ------------------------------------------------------------------ decoding */
const char *k2c_tokenizer_token(const k2c_tokenizer *t, int id, size_t *len) {
    const unsigned char *p;
    size_t n;
    if (tok_vocab_get(&t->vocab, id, &p, &n) != 0) return NULL;
    if (len) *len = n;
    return (const char *)p;
}

char *k2c_tokenizer_decode(const k2c_tokenizer *t, const int *ids, int n, size_t *len) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *p;
        size_t l;
        if (tok_vocab_get(&t->vocab, ids[i], &p, &l) != 0) {
            k2c_seterr("token id %d is not in the vocabulary (size %d)", ids[i], t->vocab.n_ids);
            return NULL;
        }
        total += l;
    }
    char *out = malloc(total + 1), *o = out;
    if (!out) { k2c_seterr("out of memory"); return NULL; }
    for (int i = 0; i < n; i++) {
        const unsigned char *p;
        size_t l;
        tok_vocab_get(&t->vocab, ids[i], &p, &l);
        memcpy(o, p, l);
        o += l;
    }
    *o = 0;
    if (len) *len = total;
    return out;
}

int k2c_tokenizer_vocab_size(const k2c_tokenizer *t) { return t->vocab.n_ids; }
int k2c_tokenizer_bos(const k2c_tokenizer *t) { return t->bos_id; }
int k2c_tokenizer_eos(const k2c_tokenizer *t) { return t->eos_id; }
int k2c_tokenizer_has_kimi_template(const k2c_tokenizer *t) { return t->kimi_template; }

int k2c_tokenizer_is_special(const k2c_tokenizer *t, int id) {
    for (int i = 0; i < t->n_special; i++)
        if (t->special_ids[i] == id) return 1;
    return 0;
}

int k2c_tokenizer_token_id(const k2c_tokenizer *t, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < t->n_special; i++) {
        const unsigned char *q;
        size_t qn;
        tok_vocab_get(&t->vocab, t->special_ids[i], &q, &qn);
        if (qn == n && !memcmp(q, name, n)) return t->special_ids[i];
    }
    return tok_map_get(&t->map, &t->vocab, (const unsigned char *)name, n);
}

/* ------------------------------------------------------------------ streaming decode */
void k2c_detok_init(k2c_detok *d, const k2c_tokenizer *t) {
    memset(d, 0, sizeof *d);
    d->tok = t;
}

void k2c_detok_free(k2c_detok *d) {
    free(d->buf);
    memset(d, 0, sizeof *d);
}

/* How many bytes a character starting with c needs, 0 when c cannot start one. */
static int utf8_need(unsigned char c) {
    return c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
}

/* Could q[0..k) (k < the length its lead byte announces) still become a valid character? */
static int utf8_prefix_ok(const unsigned char *q, size_t k) {
    for (size_t i = 1; i < k; i++) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (i == 1) {
            if (q[0] == 0xE0) lo = 0xA0;
            else if (q[0] == 0xED) hi = 0x9F;
            else if (q[0] == 0xF0) lo = 0x90;
            else if (q[0] == 0xF4) hi = 0x8F;
        }
        if (q[i] < lo || q[i] > hi) return 0;
    }
    return 1;
}

int k2c_detok_push(k2c_detok *d, int id, const char **text, size_t *len) {
    const unsigned char *p;
    size_t n;
    *text = "";
    *len = 0;
    if (tok_vocab_get(&d->tok->vocab, id, &p, &n) != 0) {
        k2c_seterr("token id %d is not in the vocabulary (size %d)", id, d->tok->vocab.n_ids);
        return -1;
    }
    size_t all = (size_t)d->npend + n;
    if (all + 1 > d->cap) {
        char *nb = realloc(d->buf, all + 64);
        if (!nb) { k2c_seterr("out of memory"); return -1; }
        d->buf = nb;
        d->cap = all + 64;
    }
    memcpy(d->buf, d->pend, (size_t)d->npend);
    memcpy(d->buf + d->npend, p, n);
    /* Hold back a tail that is the valid beginning of a character still missing bytes. */
    size_t keep = 0;
    for (size_t back = 1; back <= 3 && back <= all; back++) {
        const unsigned char *q = (const unsigned char *)d->buf + all - back;
        if ((q[0] & 0xC0) == 0x80) continue;      /* continuation: look further back */
        if (utf8_need(q[0]) > (int)back && utf8_prefix_ok(q, back)) keep = back;
        break;
    }
    d->npend = (int)keep;
    memcpy(d->pend, d->buf + all - keep, keep);
    d->buf[all - keep] = 0;
    *text = d->buf;
    *len = all - keep;
    return 0;
}

void k2c_detok_flush(k2c_detok *d, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    if (!d->npend) return;
    if ((size_t)d->npend + 1 > d->cap) {
        char *nb = realloc(d->buf, 8);
        if (!nb) return;
        d->buf = nb;
        d->cap = 8;
    }
    memcpy(d->buf, d->pend, (size_t)d->npend);
    d->buf[d->npend] = 0;
    *text = d->buf;
    *len = (size_t)d->npend;
    d->npend = 0;
}

/* ------------------------------------------------------------------ loading */
void tok_kimi_special_name(int slot, int first_id, char *buf, size_t cap) {
    static const char *const named[256] = {
        [0] = "[BOS]", [1] = "[EOS]", [2] = "<|im_end|>", [3] = "<|im_user|>", [4] = "<|im_assistant|>",
        [6] = "<|start_header_id|>", [7] = "<|end_header_id|>", [9] = "[EOT]", [10] = "<|im_system|>",
        [11] = "<|tool_calls_section_begin|>", [12] = "<|tool_calls_section_end|>", [13] = "<|tool_call_begin|>",
        [14] = "<|tool_call_argument_begin|>", [15] = "<|tool_call_end|>", [17] = "<|im_middle|>",
        [254] = "[UNK]", [255] = "[PAD]",
    };
    if (slot >= 0 && slot < 256 && named[slot]) snprintf(buf, cap, "%s", named[slot]);
    else snprintf(buf, cap, "<|reserved_token_%d|>", first_id + slot);
}

void k2c_tokenizer_free(k2c_tokenizer *t) {
    if (!t) return;
    tok_vocab_free(&t->vocab);
    tok_map_free(&t->map);
    free(t->special_ids);
    pcre2_code_free(t->special_re);
    for (int i = 0; i < t->nsplit; i++) {
        pcre2_code_free(t->split_re[i]);
        pcre2_code_free(t->split_re_bad[i]);
    }
    tok_pairs_free(&t->pairs);
    free(t);
}

static int load_ranks(k2c_tokenizer *t, const char *path) {
    size_t len;
    char *text = k2c_read_file(path, &len);
    if (!text) return -1;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    unsigned char *tok = malloc(len + 4);
    if (!tok || tok_map_init(&t->map, lines) != 0) { free(text); free(tok); k2c_seterr("out of memory"); return -1; }
    int rc = -1;
    long lineno = 0;
    for (char *s = text, *end = text + len; s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *e = nl ? nl : end;
        lineno++;
        size_t ll = (size_t)(e - s);
        if (ll && s[ll - 1] == '\r') ll--;
        if (ll == 0) { s = e + 1; continue; }   /* blank lines (a trailing newline) are harmless */
        char *sp = memchr(s, ' ', ll);
        if (!sp) { k2c_seterr("%s:%ld: missing rank (want 'BASE64 RANK')", path, lineno); goto done; }
        long n = tok_b64_decode(s, (size_t)(sp - s), tok);
        if (n < 0) { k2c_seterr("%s:%ld: bad base64 token '%.*s'", path, lineno, (int)(sp - s) > 40 ? 40 : (int)(sp - s), s); goto done; }
        char *num = sp + 1, *q;
        long rank = 0;
        for (q = num; q < s + ll && *q >= '0' && *q <= '9'; q++) {
            rank = rank * 10 + (*q - '0');
            if (rank >= TOK_MAX_IDS) break;
        }
        if (rank >= TOK_MAX_IDS) { k2c_seterr("%s:%ld: rank '%.*s' is too large (ranks must be below %d)", path, lineno, (int)(s + ll - num) > 40 ? 40 : (int)(s + ll - num), num, TOK_MAX_IDS); goto done; }
        if (q == num || q != s + ll) { k2c_seterr("%s:%ld: bad rank '%.*s'", path, lineno, (int)(s + ll - num), num); goto done; }
        const unsigned char *old;
        size_t oldn;
        if (tok_vocab_get(&t->vocab, (int)rank, &old, &oldn) == 0) { k2c_seterr("%s:%ld: duplicate rank %ld", path, lineno, rank); goto done; }
        if (tok_vocab_set(&t->vocab, (int)rank, tok, (size_t)n) != 0) goto done;
        int prev = tok_map_put(&t->map, &t->vocab, tok, (size_t)n, (int)rank);
        if (prev == -2) goto done;
        if (prev >= 0) { k2c_seterr("%s:%ld: token already has rank %d", path, lineno, prev); goto done; }
        s = e + 1;
    }
    if (t->map.n == 0) { k2c_seterr("%s: no tokens", path); goto done; }
    rc = 0;
done:
    free(text);
    free(tok);
    return rc;
}

int tok_special_add(k2c_tokenizer *t, int id, const char *content, const char *where, int may_exist) {
    const unsigned char *old;
    size_t oldn, n = strlen(content);
    if (n == 0) { k2c_seterr("%s: added token %d has empty content", where, id); return -1; }
    if (tok_vocab_get(&t->vocab, id, &old, &oldn) == 0) {
        if (oldn == n && !memcmp(old, content, n) && k2c_tokenizer_is_special(t, id)) return 0;
        if (oldn == n && !memcmp(old, content, n) && may_exist) {   /* also in the base vocabulary */
            int *ns = realloc(t->special_ids, (size_t)(t->n_special + 1) * sizeof *ns);
            if (!ns) { k2c_seterr("out of memory"); return -1; }
            t->special_ids = ns;
            t->special_ids[t->n_special++] = id;
            return 0;
        }
        k2c_seterr("%s: added token %d '%s' collides with an existing token", where, id, content);
        return -1;
    }
    int *ns = realloc(t->special_ids, (size_t)(t->n_special + 1) * sizeof *ns);
    if (!ns) { k2c_seterr("out of memory"); return -1; }
    t->special_ids = ns;
    t->special_ids[t->n_special++] = id;
    return tok_vocab_set(&t->vocab, id, (const unsigned char *)content, n);
}

static const char *token_name(json_t *v) {   /* "bos_token": "[BOS]" or {"content": "[BOS]", ...} */
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load_config(k2c_tokenizer *t, const char *path) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) { k2c_seterr("%s:%d: bad JSON: %s", path, je.line, je.text); return -1; }
    int rc = -1;
    if (!json_is_object(root)) { k2c_seterr("%s: top level is not an object", path); goto done; }
    json_t *dec = json_object_get(root, "added_tokens_decoder");
    if (dec && !json_is_object(dec)) { k2c_seterr("%s: added_tokens_decoder: not an object", path); goto done; }
    const char *key;
    json_t *val;
    json_object_foreach(dec, key, val) {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0) { k2c_seterr("%s: added_tokens_decoder.%s: key is not a token id", path, key); goto done; }
        if (id >= TOK_MAX_IDS) { k2c_seterr("%s: added_tokens_decoder.%s: token id is too large (ids must be below %d)", path, key, TOK_MAX_IDS); goto done; }
        json_t *c = json_is_object(val) ? json_object_get(val, "content") : NULL;
        if (!json_is_string(c)) { k2c_seterr("%s: added_tokens_decoder.%s.content: missing or not a string", path, key); goto done; }
        char where[512];
        snprintf(where, sizeof where, "%s: added_tokens_decoder.%s", path, key);
        if (tok_special_add(t, (int)id, json_string_value(c), where, 0) != 0) goto done;
    }
    const char *bos = token_name(json_object_get(root, "bos_token"));
    const char *eos = token_name(json_object_get(root, "eos_token"));
    t->bos_id = bos ? k2c_tokenizer_token_id(t, bos) : -1;
    t->eos_id = eos ? k2c_tokenizer_token_id(t, eos) : -1;
    json_t *tpl = json_object_get(root, "chat_template");
    if (json_is_string(tpl))
        t->kimi_template = strstr(json_string_value(tpl), "<|im_middle|>") != NULL ||
                           strstr(json_string_value(tpl), "k2c: kimi") != NULL;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static int file_exists(const char *p) {
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void trim_vocab(tok_vocab *v) {
    while (v->n_ids > 0 && v->span[v->n_ids - 1] == UINT64_MAX) v->n_ids--;
}

int k2c_tokenizer_load(k2c_tokenizer **out, const char *dir) {
    *out = NULL;
    k2c_tokenizer *t = calloc(1, sizeof *t);
    char *model = NULL, *cfg = NULL, *hf = NULL;
    if (!t) { k2c_seterr("out of memory"); return -1; }
    t->bos_id = t->eos_id = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    size_t dl = strlen(dir);
    char *base = NULL;
    /* a .gguf file, or a folder with one GGUF model and no tokenizer files: the tokenizer in its metadata */
    char *gpath = NULL, *tk = k2c_path_join(dir, "tiktoken.model"), *tj = k2c_path_join(dir, "tokenizer.json");
    int has_files = (tk && file_exists(tk)) || (tj && file_exists(tj));
    free(tk);
    free(tj);
    if (!has_files && k2c_gguf_locate(dir, &gpath) == 1) {
        k2c_gguf g;
        int rc = k2c_gguf_open(&g, gpath, K2C_LOAD_MMAP);
        if (rc == 0) {
            rc = tok_gguf_load(t, &g, gpath);
            k2c_gguf_close(&g);
        }
        if (rc == 0) rc = tok_compile_specials(t, gpath);
        free(gpath);
        if (rc != 0) { k2c_tokenizer_free(t); return -1; }
        trim_vocab(&t->vocab);
        *out = t;
        return 0;
    }
    free(gpath);
    if (dl >= 14 && !strcmp(dir + dl - 14, "tiktoken.model")) { model = strdup(dir); base = strndup(dir, dl - 14); }
    else if (dl >= 14 && !strcmp(dir + dl - 14, "tokenizer.json")) { hf = strdup(dir); }
    else base = strdup(dir);
    if (base) {
        if (!base[0]) { free(base); base = strdup("."); }
        if (!model) model = k2c_path_join(base, "tiktoken.model");
        cfg = k2c_path_join(base, "tokenizer_config.json");
        if (!file_exists(model)) {
            free(model);
            model = NULL;
            hf = k2c_path_join(base, "tokenizer.json");
            if (!file_exists(hf)) { k2c_seterr("%s: no tiktoken.model or tokenizer.json", dir); free(base); goto fail; }
        }
        free(base);
    }
    if (model) {
        t->kind = TOK_TIKTOKEN;
        if (load_ranks(t, model) != 0) goto fail;
        if (file_exists(cfg) && load_config(t, cfg) != 0) goto fail;
        if (tok_compile_split(t, tok_kimi_pattern, model) != 0) goto fail;
    } else {
        t->kind = TOK_HF;
        if (tok_hf_load(t, hf) != 0) goto fail;
        if (cfg && file_exists(cfg)) {
            /* tokenizer_config.json next to tokenizer.json: only bos/eos and the chat template matter */
            json_t *root = json_load_file(cfg, 0, NULL);
            if (root) {
                const char *bos = token_name(json_object_get(root, "bos_token"));
                const char *eos = token_name(json_object_get(root, "eos_token"));
                if (bos) t->bos_id = k2c_tokenizer_token_id(t, bos);
                if (eos) t->eos_id = k2c_tokenizer_token_id(t, eos);
                json_t *tpl = json_object_get(root, "chat_template");
                t->kimi_template = json_is_string(tpl) && strstr(json_string_value(tpl), "<|im_middle|>");
                json_decref(root);
            }
        }
    }
    if (tok_compile_specials(t, model ? model : hf) != 0) goto fail;
    trim_vocab(&t->vocab);
    free(model);
    free(cfg);
    free(hf);
    *out = t;
    return 0;
fail:
    free(model);
    free(cfg);
    free(hf);
    k2c_tokenizer_free(t);
    return -1;
}
