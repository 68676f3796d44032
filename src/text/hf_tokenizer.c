/* Hugging Face tokenizer.json, byte-level BPE (GPT-2 style; DeepSeek-V3 and its relatives).
 *
 * What is read: model (type BPE: vocab, merges as "A B" strings or [A, B] pairs, ignore_merges),
 * added_tokens (matched in the text before splitting, like tiktoken's specials), pre_tokenizer (Split
 * with a Regex or String pattern and behavior Isolated, Digits, ByteLevel, or a Sequence of these),
 * normalizer (none, or an empty Sequence). Anything else is refused with its JSON path rather than
 * silently tokenizing differently.
 *
 * Vocabulary strings are in GPT-2's byte-to-unicode alphabet; they are mapped back to raw bytes on
 * load, so encoding runs on bytes exactly like the tiktoken path and decoding is a byte copy. */
#include "text/text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes take the
 * code points 256, 257, ... in byte order. */
void tok_byte_unicode(uint32_t cp_of_byte[256], int byte_of_cp[324]) {
    int extra = 0;
    for (int i = 0; i < 324; i++) byte_of_cp[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        cp_of_byte[b] = printable ? (uint32_t)b : (uint32_t)(256 + extra++);
        byte_of_cp[cp_of_byte[b]] = b;
    }
}

long tok_unicode_to_bytes(const char *s, size_t len, const int byte_of_cp[324], unsigned char *out) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    long n = 0;
    while (p < end) {
        uint32_t cp;
        int l;
        if (p[0] < 0x80) { cp = p[0]; l = 1; }
        else if ((p[0] & 0xE0) == 0xC0 && p + 1 < end && (p[1] & 0xC0) == 0x80) { cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F); l = 2; }
        else return -1;         /* everything in the alphabet is below U+0800 */
        if (cp >= 324 || byte_of_cp[cp] < 0) return -1;
        out[n++] = (unsigned char)byte_of_cp[cp];
        p += l;
    }
    return n;
}

/* Rust regex -> PCRE2: \s and \S as Unicode White_Space (Rust's meaning), \p{Han} as the Script
 * property. Returns a malloc'd pattern. */
#define WS_LIST "\\t\\n\\x0b\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
const char tok_gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

char *tok_rust_to_pcre2(const char *re) {
    size_t n = strlen(re);
    char *out = malloc(n * 80 + 1), *o = out;
    if (!out) return NULL;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char d = re[i + 1];
            if (d == 's') { o += sprintf(o, in_class ? WS_LIST : "[" WS_LIST "]"); i++; continue; }
            if (d == 'S' && !in_class) { o += sprintf(o, "[^" WS_LIST "]"); i++; continue; }
            if ((d == 'p' || d == 'P') && !strncmp(re + i + 2, "{Han}", 5)) { o += sprintf(o, "\\%c{sc:Han}", d); i += 6; continue; }
            *o++ = c;
            *o++ = d;
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            *o++ = c;
            if (re[i + 1] == '^') *o++ = re[++i];
            if (re[i + 1] == ']') *o++ = re[++i];   /* a leading ] is a literal */
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        *o++ = c;
    }
    *o = 0;
    return out;
}

static char *literal_pattern(const char *s) {
    char *out = malloc(strlen(s) * 6 + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p >= 0x80) *o++ = (char)*p;
        else o += sprintf(o, "\\x{%02x}", *p);
    }
    *o = 0;
    return out;
}

static int add_pretokenizer(k2c_tokenizer *t, json_t *pt, const char *path, const char *jp) {
    const char *type = json_string_value(json_object_get(pt, "type"));
    char where[600];
    if (!type) { k2c_seterr("%s: %s.type: missing", path, jp); return -1; }
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list)) { k2c_seterr("%s: %s.pretokenizers: not an array", path, jp); return -1; }
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x) {
            char sub[300];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", jp, i);
            if (add_pretokenizer(t, x, path, sub) != 0) return -1;
        }
        return 0;
    }
    snprintf(where, sizeof where, "%s: %s.pattern", path, jp);
    if (!strcmp(type, "ByteLevel")) {
        if (json_is_true(json_object_get(pt, "add_prefix_space"))) { k2c_seterr("%s: %s.add_prefix_space: true is not supported", path, jp); return -1; }
        json_t *ur = json_object_get(pt, "use_regex");
        if (ur && !json_is_true(ur)) return 0;
        /* GPT-2's pattern, which ByteLevel applies when use_regex is true */
        char *re = tok_rust_to_pcre2(tok_gpt2_pattern);
        int rc = re ? tok_compile_split(t, re, where) : -1;
        free(re);
        return rc;
    }
    if (!strcmp(type, "Digits")) {
        int each = json_is_true(json_object_get(pt, "individual_digits"));
        return tok_compile_split(t, each ? "\\p{N}" : "\\p{N}+", where);
    }
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(pt, "pattern");
        const char *behavior = json_string_value(json_object_get(pt, "behavior"));
        if (behavior && strcmp(behavior, "Isolated") != 0) { k2c_seterr("%s: %s.behavior: '%s' is not supported (only Isolated)", path, jp, behavior); return -1; }
        if (json_is_true(json_object_get(pt, "invert"))) { k2c_seterr("%s: %s.invert: true is not supported", path, jp); return -1; }
        const char *rx = json_string_value(json_object_get(pat, "Regex"));
        const char *lit = json_string_value(json_object_get(pat, "String"));
        if (!rx && !lit) { k2c_seterr("%s: %s.pattern: want {\"Regex\": ...} or {\"String\": ...}", path, jp); return -1; }
        char *re = rx ? tok_rust_to_pcre2(rx) : literal_pattern(lit);
        int rc = re ? tok_compile_split(t, re, where) : -1;
        if (!re) k2c_seterr("out of memory");
        free(re);
        return rc;
    }
    k2c_seterr("%s: %s.type: pre-tokenizer '%s' is not supported", path, jp, type);
    return -1;
}

int tok_hf_load(k2c_tokenizer *t, const char *path) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    unsigned char *buf = NULL;
    if (!root) { k2c_seterr("%s:%d: bad JSON: %s", path, je.line, je.text); return -1; }
    int rc = -1;
    uint32_t cp_of_byte[256];
    int byte_of_cp[324];
    tok_byte_unicode(cp_of_byte, byte_of_cp);
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) { k2c_seterr("%s: model: missing or not an object", path); goto done; }
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (mtype && strcmp(mtype, "BPE") != 0) { k2c_seterr("%s: model.type: '%s' is not supported (only BPE)", path, mtype); goto done; }
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab)) { k2c_seterr("%s: model.vocab: missing or not an object", path); goto done; }
    if (!json_is_array(merges)) { k2c_seterr("%s: model.merges: missing or not an array", path); goto done; }
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm) &&
        !(json_is_string(json_object_get(norm, "type")) && !strcmp(json_string_value(json_object_get(norm, "type")), "Sequence") &&
          json_array_size(json_object_get(norm, "normalizers")) == 0)) {
        k2c_seterr("%s: normalizer: not supported (byte-level BPE without normalization only)", path);
        goto done;
    }

    size_t maxlen = 16;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) if (strlen(key) > maxlen) maxlen = strlen(key);
    buf = malloc(maxlen * 2 + 8);
    if (!buf || tok_map_init(&t->map, json_object_size(vocab)) != 0) { k2c_seterr("out of memory"); goto done; }
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= TOK_MAX_IDS) {
            k2c_seterr("%s: model.vocab.%s: id is not an integer in 0 .. %d", path, key, TOK_MAX_IDS - 1);
            goto done;
        }
        int id = (int)json_integer_value(val);
        if (!*key) { k2c_seterr("%s: model.vocab: empty token (id %d)", path, id); goto done; }
        long n = tok_unicode_to_bytes(key, strlen(key), byte_of_cp, buf);
        const unsigned char *old;
        size_t oldn;
        if (tok_vocab_get(&t->vocab, id, &old, &oldn) == 0) { k2c_seterr("%s: model.vocab.%s: id %d used twice", path, key, id); goto done; }
        if (n < 0) {    /* not byte-level (an added token listed in the vocab): kept as text for decoding */
            if (tok_vocab_set(&t->vocab, id, (const unsigned char *)key, strlen(key)) != 0) goto done;
            continue;
        }
        if (tok_vocab_set(&t->vocab, id, buf, (size_t)n) != 0) goto done;
        int prev = tok_map_put(&t->map, &t->vocab, buf, (size_t)n, id);
        if (prev == -2) goto done;
        if (prev >= 0) { k2c_seterr("%s: model.vocab.%s: same bytes as id %d", path, key, prev); goto done; }
    }
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = tok_map_get(&t->map, &t->vocab, &c, 1);
    }

    if (tok_pairs_init(&t->pairs, json_array_size(merges)) != 0) goto done;
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        const char *a = NULL, *b = NULL;
        char *split = NULL;
        if (json_is_string(m)) {
            split = strdup(json_string_value(m));
            char *sp = split ? strchr(split, ' ') : NULL;
            if (sp) { *sp = 0; a = split; b = sp + 1; }
        } else if (json_is_array(m) && json_array_size(m) == 2) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
        }
        json_t *ia = a ? json_object_get(vocab, a) : NULL, *ib = b ? json_object_get(vocab, b) : NULL;
        char *ab = NULL;
        if (a && b && (ab = malloc(strlen(a) + strlen(b) + 1))) { strcpy(ab, a); strcat(ab, b); }
        json_t *iab = ab ? json_object_get(vocab, ab) : NULL;
        free(ab);
        free(split);
        if (!a || !b) { k2c_seterr("%s: model.merges[%zu]: want \"A B\" or [\"A\", \"B\"]", path, i); goto done; }
        if (!ia || !ib || !iab) { k2c_seterr("%s: model.merges[%zu]: a part or the merged token is not in model.vocab", path, i); goto done; }
        if (tok_pairs_put(&t->pairs, (int)json_integer_value(ia), (int)json_integer_value(ib), (int)i, (int)json_integer_value(iab)) < 0) goto done;
    }

    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) { k2c_seterr("%s: added_tokens: not an array", path); goto done; }
    json_array_foreach(added, i, m) {
        json_t *id = json_object_get(m, "id"), *content = json_object_get(m, "content");
        char where[400];
        snprintf(where, sizeof where, "%s: added_tokens[%zu]", path, i);
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= TOK_MAX_IDS || !json_is_string(content)) {
            k2c_seterr("%s: want {\"id\": INT below %d, \"content\": STRING}", where, TOK_MAX_IDS);
            goto done;
        }
        if (tok_special_add(t, (int)json_integer_value(id), json_string_value(content), where, 1) != 0) goto done;
    }

    json_t *pre = json_object_get(root, "pre_tokenizer");
    if (pre && !json_is_null(pre) && add_pretokenizer(t, pre, path, "pre_tokenizer") != 0) goto done;
    rc = 0;
done:
    free(buf);
    json_decref(root);
    return rc;
}
