/* The tokenizer stored in a GGUF file's metadata, read and written.
 *
 * llama.cpp keeps a byte-level BPE vocabulary as three parallel arrays: tokenizer.ggml.tokens (each token
 * spelled in GPT-2's bytes_to_unicode alphabet, specials as their text), tokenizer.ggml.token_type (1 normal,
 * 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) and tokenizer.ggml.merges ("A B", in rank order),
 * with tokenizer.ggml.pre naming the pre-tokenizer. Kimi-K2's tiktoken vocabulary is stored the same way,
 * pre "kimi-k2", tokens in rank order.
 *
 * For "kimi-k2" the merge list is not used: tiktoken merges the adjacent pair whose concatenation has the
 * lowest rank, which a merge list cannot always say (a token may be reachable by a split that is not its
 * recorded merge), so the exact Kimi encoding needs the ranks, and the ranks are the ids. Other
 * vocabularies run the HF merge loop on the list, as their tokenizer.json would. */
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static const k2c_gguf_kv *str_array(const k2c_gguf *g, const char *key, const char *path, int need) {
    const k2c_gguf_kv *kv = k2c_gguf_get(g, key);
    if (!kv) { if (need) k2c_seterr("%s: %s: missing", path, key); return NULL; }
    if (kv->type != K2C_GGUF_ARRAY || kv->atype != K2C_GGUF_STRING) { k2c_seterr("%s: %s: not an array of strings", path, key); return NULL; }
    return kv;
}

int tok_gguf_load(k2c_tokenizer *t, const k2c_gguf *g, const char *path) {
    const char *model = NULL, *pre = NULL;
    int rm = k2c_gguf_str(g, "tokenizer.ggml.model", &model);
    if (rm < 0) return -1;
    if (rm == 0) { k2c_seterr("%s: tokenizer.ggml.model: missing (no tokenizer in this GGUF; give --tokenizer DIR)", path); return -1; }
    if (strcmp(model, "gpt2") != 0) { k2c_seterr("%s: tokenizer.ggml.model: '%s' is not supported (only byte-level BPE, 'gpt2')", path, model); return -1; }
    int rp = k2c_gguf_str(g, "tokenizer.ggml.pre", &pre);
    if (rp < 0) return -1;
    if (rp == 0) pre = "default";
    int kimi = !strcmp(pre, "kimi-k2");
    if (!kimi && strcmp(pre, "default") && strcmp(pre, "gpt2")) {
        k2c_seterr("%s: tokenizer.ggml.pre: '%s' is not supported here (kimi-k2, gpt2, default); give --tokenizer DIR "
                   "with the model's tokenizer.json", path, pre);
        return -1;
    }
    const k2c_gguf_kv *tok = str_array(g, "tokenizer.ggml.tokens", path, 1), *tt = k2c_gguf_get(g, "tokenizer.ggml.token_type");
    if (!tok) return -1;
    if (tok->n == 0 || tok->n > TOK_MAX_IDS) { k2c_seterr("%s: tokenizer.ggml.tokens: %llu tokens (want 1 .. %d)", path, (unsigned long long)tok->n, TOK_MAX_IDS); return -1; }
    if (tt && (tt->type != K2C_GGUF_ARRAY || (tt->atype != K2C_GGUF_I32 && tt->atype != K2C_GGUF_U32) || tt->n != tok->n)) {
        k2c_seterr("%s: tokenizer.ggml.token_type: want an i32 array as long as tokenizer.ggml.tokens (%llu)", path, (unsigned long long)tok->n);
        return -1;
    }
    const k2c_gguf_kv *mg = kimi ? NULL : str_array(g, "tokenizer.ggml.merges", path, 1);
    if (!kimi && !mg) return -1;

    t->kind = kimi ? TOK_TIKTOKEN : TOK_HF;
    uint32_t cp_of_byte[256];
    int byte_of_cp[324];
    tok_byte_unicode(cp_of_byte, byte_of_cp);
    size_t maxlen = 16;
    for (uint64_t i = 0; i < tok->n; i++) maxlen = tok->sl[i] > maxlen ? tok->sl[i] : maxlen;
    unsigned char *buf = malloc(2 * maxlen + 2);
    char *text = malloc(maxlen + 1);
    int rc = -1;
    if (!buf || !text || tok_map_init(&t->map, (size_t)tok->n) != 0) { k2c_seterr("out of memory"); goto done; }
    for (int id = 0; id < (int)tok->n; id++) {
        int type = TT_NORMAL;
        if (tt) { int32_t v; memcpy(&v, tt->arr + 4 * (size_t)id, 4); type = v; }
        size_t n = tok->sl[id];
        memcpy(text, tok->sv[id], n);
        text[n] = 0;
        char where[300];
        snprintf(where, sizeof where, "%s: tokenizer.ggml.tokens[%d]", path, id);
        if (type == TT_UNUSED) continue;
        if (type == TT_CONTROL || type == TT_USER || type == TT_UNKNOWN) {
            if (!n || memchr(text, 0, n)) { k2c_seterr("%s: empty or NUL in a special token", where); goto done; }
            if (tok_special_add(t, id, text, where, 0) != 0) goto done;
            continue;
        }
        if (type != TT_NORMAL && type != TT_BYTE) { k2c_seterr("%s: token type %d is unknown", where, type); goto done; }
        long nb = tok_unicode_to_bytes(text, n, byte_of_cp, buf);
        if (nb <= 0) { k2c_seterr("%s: '%.40s' is not spelled in the byte-level alphabet", where, text); goto done; }
        if (tok_vocab_set(&t->vocab, id, buf, (size_t)nb) != 0) goto done;
        int prev = tok_map_put(&t->map, &t->vocab, buf, (size_t)nb, id);
        if (prev == -2) goto done;
        if (prev >= 0) { k2c_seterr("%s: same bytes as token %d", where, prev); goto done; }
    }
    if (t->map.n == 0) { k2c_seterr("%s: tokenizer.ggml.tokens: no normal tokens", path); goto done; }
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = tok_map_get(&t->map, &t->vocab, &c, 1);
    }
    if (kimi) {
        if (tok_compile_split(t, tok_kimi_pattern, path) != 0) goto done;
    } else {
        if (tok_pairs_init(&t->pairs, (size_t)mg->n) != 0) goto done;
        size_t ml = 16;
        for (uint64_t i = 0; i < mg->n; i++) ml = mg->sl[i] > ml ? mg->sl[i] : ml;
        unsigned char *mb = malloc(2 * ml + 2);
        if (!mb) { k2c_seterr("out of memory"); goto done; }
        for (uint64_t i = 0; i < mg->n; i++) {
            const char *s = mg->sv[i], *sp = memchr(s, ' ', mg->sl[i]);
            long na = sp ? tok_unicode_to_bytes(s, (size_t)(sp - s), byte_of_cp, mb) : -1;
            long nb = sp && na > 0 ? tok_unicode_to_bytes(sp + 1, mg->sl[i] - (size_t)(sp - s) - 1, byte_of_cp, mb + na) : -1;
            int a = nb > 0 ? tok_map_get(&t->map, &t->vocab, mb, (size_t)na) : -1;
            int b = nb > 0 ? tok_map_get(&t->map, &t->vocab, mb + na, (size_t)nb) : -1;
            int ab = nb > 0 ? tok_map_get(&t->map, &t->vocab, mb, (size_t)(na + nb)) : -1;
            if (a < 0 || b < 0 || ab < 0) {
                k2c_seterr("%s: tokenizer.ggml.merges[%llu]: '%.*s': want \"A B\" with A, B and AB in the vocabulary", path,
                           (unsigned long long)i, (int)(mg->sl[i] > 60 ? 60 : mg->sl[i]), s);
                free(mb);
                goto done;
            }
            if (tok_pairs_put(&t->pairs, a, b, (int)i, ab) < 0) { free(mb); goto done; }
        }
        free(mb);
        char *re = tok_rust_to_pcre2(tok_gpt2_pattern);
        if (!re) { k2c_seterr("out of memory"); goto done; }
        int crc = tok_compile_split(t, re, path);
        free(re);
        if (crc != 0) goto done;
    }
    int64_t v;
    if (k2c_gguf_int(g, "tokenizer.ggml.bos_token_id", &v) == 1 && v >= 0 && v < (int64_t)tok->n) t->bos_id = (int)v;
    if (k2c_gguf_int(g, "tokenizer.ggml.eos_token_id", &v) == 1 && v >= 0 && v < (int64_t)tok->n) t->eos_id = (int)v;
    const char *tpl = NULL;
    if (k2c_gguf_str(g, "tokenizer.chat_template", &tpl) == 1) {
        t->kimi_template = strstr(tpl, "<|im_middle|>") != NULL;
        /* DeepSeek-V3's template, told by its turn marker (full-width bars), renders as chat.c's DeepSeek form */
        if (strstr(tpl, "<\xef\xbd\x9cUser\xef\xbd\x9c>")) t->chat_format = K2C_CHAT_DEEPSEEK_V3;
    }
    else t->kimi_template = kimi;
    rc = 0;
done:
    free(buf);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ export */
/* The merge that makes token `id` (bytes p[0..n), n >= 2) under tiktoken's rule restricted to ranks below
 * id: byte-level BPE on p until two parts are left. Returns 0 with the split point, -1 when the token cannot
 * be reached that way (then it has no merge; llama.cpp's converter skips such tokens too). */
static int tiktoken_split(const k2c_tokenizer *t, int id, const unsigned char *p, size_t n, size_t *cut, size_t *bounds) {
    size_t np = n;
    for (size_t i = 0; i <= n; i++) bounds[i] = i;      /* part k is p[bounds[k] .. bounds[k+1]) */
    while (np > 2) {
        int best = -1;
        size_t bk = 0;
        for (size_t k = 0; k + 1 < np; k++) {
            int r = tok_map_get(&t->map, &t->vocab, p + bounds[k], bounds[k + 2] - bounds[k]);
            if (r >= 0 && r < id && (best < 0 || r < best)) { best = r; bk = k; }
        }
        if (best < 0) return -1;
        memmove(bounds + bk + 1, bounds + bk + 2, (np - bk - 1) * sizeof *bounds);
        np--;
    }
    int a = tok_map_get(&t->map, &t->vocab, p, bounds[1]), b = tok_map_get(&t->map, &t->vocab, p + bounds[1], n - bounds[1]);
    if (a < 0 || b < 0 || a >= id || b >= id) return -1;
    *cut = bounds[1];
    return 0;
}

static char *spell(char *o, const unsigned char *p, size_t n, const uint32_t cp_of_byte[256]) {
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cp_of_byte[p[i]];
        if (cp < 0x80) *o++ = (char)cp;
        else { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
    }
    *o++ = 0;
    return o;
}

void tok_export_free(tok_export *e) {
    free(e->tokens);
    free(e->types);
    free(e->merges);
    free(e->arena);
    memset(e, 0, sizeof *e);
}

typedef struct { int rank, a, b, ab; } merge_rec;
static int cmp_merge(const void *x, const void *y) {
    const merge_rec *a = x, *b = y;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

int tok_export_bpe(const k2c_tokenizer *t, tok_export *e) {
    memset(e, 0, sizeof *e);
    uint32_t cp_of_byte[256];
    int byte_of_cp[324];
    tok_byte_unicode(cp_of_byte, byte_of_cp);
    int n = t->vocab.n_ids;
    size_t arena = 0, maxlen = 1;
    for (int id = 0; id < n; id++) {
        const unsigned char *p;
        size_t len;
        if (tok_vocab_get(&t->vocab, id, &p, &len) != 0) { arena += 16; continue; }
        arena += 2 * len + 1 + 4 * len + 2;     /* the token, and at most one merge of it */
        maxlen = len > maxlen ? len : maxlen;
    }
    size_t nmax = (size_t)n;                    /* merges: one per token (tiktoken), the table's (HF) */
    if (t->kind != TOK_TIKTOKEN && t->pairs.keys) {
        nmax = t->pairs.n;
        for (size_t i = 0; i <= t->pairs.mask; i++) {
            const unsigned char *p;
            size_t la = 0, lb = 0;
            if (t->pairs.keys[i] == UINT64_MAX) continue;
            tok_vocab_get(&t->vocab, (int)(t->pairs.keys[i] >> 32), &p, &la);
            tok_vocab_get(&t->vocab, (int)(t->pairs.keys[i] & 0xffffffffu), &p, &lb);
            arena += 2 * (la + lb) + 2;
        }
    }
    merge_rec *mr = NULL;
    size_t *bounds = malloc((maxlen + 1) * sizeof *bounds);
    e->tokens = calloc((size_t)n, sizeof *e->tokens);
    e->types = calloc((size_t)n, sizeof *e->types);
    e->merges = calloc(nmax + 1, sizeof *e->merges);
    e->arena = malloc(arena + 16 * (size_t)n + 1);
    mr = malloc((nmax + 1) * sizeof *mr);
    if (!bounds || !e->tokens || !e->types || !e->merges || !e->arena || !mr) { k2c_seterr("out of memory"); goto fail; }
    e->n_tokens = n;
    e->pre = t->kind == TOK_TIKTOKEN ? "kimi-k2" : "gpt2";
    char *o = e->arena;
    int nm = 0;
    for (int id = 0; id < n; id++) {
        const unsigned char *p;
        size_t len;
        e->tokens[id] = o;
        if (tok_vocab_get(&t->vocab, id, &p, &len) != 0) {
            o += sprintf(o, "[PAD%d]", id) + 1;
            e->types[id] = TT_UNUSED;
            continue;
        }
        if (k2c_tokenizer_is_special(t, id)) {
            memcpy(o, p, len);
            o[len] = 0;
            o += len + 1;
            e->types[id] = TT_CONTROL;
            continue;
        }
        o = spell(o, p, len, cp_of_byte);
        e->types[id] = TT_NORMAL;
        if (len < 2) continue;
        size_t cut;
        if (t->kind == TOK_TIKTOKEN) {
            if (tiktoken_split(t, id, p, len, &cut, bounds) != 0) continue;
            mr[nm++] = (merge_rec){id, 0, 0, 0};
            e->merges[nm - 1] = o;
            o = spell(o, p, cut, cp_of_byte);
            o[-1] = ' ';
            o = spell(o, p + cut, len - cut, cp_of_byte);
        }
    }
    if (t->kind != TOK_TIKTOKEN) {     /* the merge table itself, in rank order */
        for (size_t i = 0; i <= t->pairs.mask && t->pairs.keys; i++) {
            if (t->pairs.keys[i] == UINT64_MAX) continue;
            mr[nm++] = (merge_rec){t->pairs.rank[i], (int)(t->pairs.keys[i] >> 32), (int)(t->pairs.keys[i] & 0xffffffffu),
                                   t->pairs.merged[i]};
            if ((size_t)nm == nmax) break;
        }
        qsort(mr, (size_t)nm, sizeof *mr, cmp_merge);
        int w = 0;
        for (int i = 0; i < nm; i++) {
            const unsigned char *pa, *pb;
            size_t la, lb;
            if (tok_vocab_get(&t->vocab, mr[i].a, &pa, &la) != 0 || tok_vocab_get(&t->vocab, mr[i].b, &pb, &lb) != 0) continue;
            e->merges[w++] = o;
            o = spell(o, pa, la, cp_of_byte);
            o[-1] = ' ';
            o = spell(o, pb, lb, cp_of_byte);
        }
        nm = w;
    }
    e->n_merges = nm;
    free(mr);
    free(bounds);
    return 0;
fail:
    free(mr);
    free(bounds);
    tok_export_free(e);
    return -1;
}

/* ------------------------------------------------------------------ the public face (k2c.h) */
int k2c_tokenizer_gguf_vocab(const k2c_tokenizer *t, k2c_gguf_vocab *out) {
    memset(out, 0, sizeof *out);
    tok_export *e = malloc(sizeof *e);
    if (!e) { k2c_seterr("out of memory"); return -1; }
    if (tok_export_bpe(t, e) != 0) { free(e); return -1; }
    *out = (k2c_gguf_vocab){e->n_tokens, e->n_merges, (const char *const *)e->tokens, e->types,
                            (const char *const *)e->merges, e->pre, e};
    return 0;
}

void k2c_tokenizer_gguf_vocab_free(k2c_gguf_vocab *v) {
    if (v->priv) { tok_export_free(v->priv); free(v->priv); }
    memset(v, 0, sizeof *v);
}
