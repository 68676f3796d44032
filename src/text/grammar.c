/* JSON Schema -> a byte-level pushdown matcher, for constrained decoding.
 *
 * A schema is compiled once into a tree of nodes (types allowed, properties, required, items, enum
 * literals, string length bounds). A matcher state (k2c_gram) is a small fixed-size stack of frames, one
 * per value being written, so trying a candidate token is: copy the state, feed the token's bytes, see
 * whether any byte was rejected. The language matched is compact JSON (no whitespace) that validates
 * against the schema, with these choices that keep every accepted prefix completable:
 *  - objects with declared properties accept only those keys, each at most once, and close only after
 *    every required key; undeclared required keys are added as properties of any type;
 *  - strings are valid UTF-8 (no overlongs, no surrogates), no raw control characters, escapes limited
 *    to JSON's, \u escapes outside D800-DFFF (a lone surrogate is rejected by strict parsers);
 *  - numbers are bounded in length (at most 15 significant digits, 2 exponent digits) so that every
 *    parser reads them as finite doubles and integers stay exact;
 *  - enum / const values match their compact serialization exactly;
 *  - minimum / maximum / exclusiveMinimum / exclusiveMaximum: the value is written as an integer in the
 *    range (also for "number"), and a digit is allowed only if some continuation still lands in range.
 * k2c_gram_close computes the shortest continuation that finishes the value (required keys with minimal
 * values, closing quotes and brackets), so generation cut short by max_tokens still ends in valid JSON. */
#include "text/text.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { T_NULL = 1, T_BOOL = 2, T_INT = 4, T_NUM = 8, T_STR = 16, T_ARR = 32, T_OBJ = 64, T_ANY = 127 };
#define MAX_LITS 64
#define MAX_PROPS 64
#define GRAM_DEPTH 64   /* schemas nest at most 24 deep, two frames per level */
#define NUM_MAX_DIGITS 15

typedef struct gnode {
    int types;                      /* T_* mask */
    int nlits;                      /* enum/const: compact JSON texts; nlits > 0 overrides types */
    char **lits;
    int nprops;
    char **keys;                    /* JSON-encoded keys, quotes included */
    struct gnode **props;
    uint64_t required;
    struct gnode *extra;            /* value schema of free keys (no declared properties) */
    struct gnode *items;
    int min_items, max_items;       /* max -1: unbounded */
    int min_len, max_len;
    int bounded;                    /* minimum / maximum given: integers in [lo, hi] only */
    double lo, hi;
    int closed;                     /* additionalProperties false and no properties: only {} */
} gnode;

struct k2c_schema {
    gnode *root;
    gnode **all; int nall, capall;  /* every node, for freeing */
};

/* ------------------------------------------------------------------ compile */
static gnode *new_node(k2c_schema *s) {
    if (s->nall == s->capall) {
        int cap = s->capall ? 2 * s->capall : 16;
        gnode **na = realloc(s->all, (size_t)cap * sizeof *na);
        if (!na) { k2c_seterr("out of memory"); return NULL; }
        s->all = na; s->capall = cap;
    }
    gnode *n = calloc(1, sizeof *n);
    if (!n) { k2c_seterr("out of memory"); return NULL; }
    n->max_items = n->max_len = -1;
    s->all[s->nall++] = n;
    return n;
}

static int type_bit(const char *t) {
    static const char *names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    for (int i = 0; i < 7; i++) if (!strcmp(t, names[i])) return 1 << i;
    return 0;
}

static int get_int(json_t *o, const char *k, int dflt, int *out, const char *where) {
    json_t *v = json_object_get(o, k);
    *out = dflt;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
        k2c_seterr("%s: %s must be a non-negative integer", where, k);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static gnode *compile(k2c_schema *s, json_t *j, const char *where, int depth);

static gnode *any_node(k2c_schema *s) {
    gnode *n = new_node(s);
    if (n) { n->types = T_ANY; n->items = n->extra = n; }   /* any JSON: its parts are any JSON too */
    return n;
}

static gnode *compile(k2c_schema *s, json_t *j, const char *where, int depth) {
    if (depth > 24) { k2c_seterr("%s: schema nested too deeply", where); return NULL; }
    if (json_is_true(j)) return any_node(s);
    if (!json_is_object(j)) { k2c_seterr("%s: a schema must be an object", where); return NULL; }
    gnode *n = new_node(s);
    if (!n) return NULL;
    json_t *t = json_object_get(j, "type"), *en = json_object_get(j, "enum"), *cn = json_object_get(j, "const");
    if (!t) n->types = T_ANY;
    else if (json_is_string(t)) {
        if (!(n->types = type_bit(json_string_value(t)))) { k2c_seterr("%s: unknown type '%s'", where, json_string_value(t)); return NULL; }
    } else if (json_is_array(t) && json_array_size(t) > 0) {
        size_t i; json_t *v;
        json_array_foreach(t, i, v) {
            int b = json_is_string(v) ? type_bit(json_string_value(v)) : 0;
            if (!b) { k2c_seterr("%s: bad entry %zu in type", where, i); return NULL; }
            n->types |= b;
        }
    } else { k2c_seterr("%s: type must be a string or a non-empty array", where); return NULL; }
    if (n->types & T_NUM) n->types |= T_INT;   /* an integer is a number */
    if (en || cn) {
        if (en && (!json_is_array(en) || json_array_size(en) == 0 || json_array_size(en) > MAX_LITS)) {
            k2c_seterr("%s: enum must be an array of 1 to %d values", where, MAX_LITS);
            return NULL;
        }
        size_t cnt = en ? json_array_size(en) : 1;
        n->lits = calloc(cnt, sizeof *n->lits);
        if (!n->lits) { k2c_seterr("out of memory"); return NULL; }
        for (size_t i = 0; i < cnt; i++) {
            json_t *v = en ? json_array_get(en, i) : cn;
            char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!txt) { k2c_seterr("%s: enum value %zu cannot be serialized", where, i); return NULL; }
            n->lits[n->nlits++] = txt;
        }
        return n;
    }
    if (get_int(j, "minItems", 0, &n->min_items, where) || get_int(j, "maxItems", -1, &n->max_items, where) ||
        get_int(j, "minLength", 0, &n->min_len, where) || get_int(j, "maxLength", -1, &n->max_len, where))
        return NULL;
    static const char *bk[4] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
    n->lo = -999999999999999.0;
    n->hi = 999999999999999.0;
    for (int b = 0; b < 4; b++) {
        json_t *v = json_object_get(j, bk[b]);
        if (!v || json_is_boolean(v)) continue;   /* draft-4 boolean exclusive flags: treated as inclusive */
        if (!json_is_number(v)) { k2c_seterr("%s: %s must be a number", where, bk[b]); return NULL; }
        double x = json_number_value(v);
        n->bounded = 1;
        if (b == 0 && ceil(x) > n->lo) n->lo = ceil(x);
        if (b == 1 && floor(x) < n->hi) n->hi = floor(x);
        if (b == 2 && floor(x) + 1 > n->lo) n->lo = floor(x) + 1;
        if (b == 3 && ceil(x) - 1 < n->hi) n->hi = ceil(x) - 1;
    }
    if (n->bounded && (n->types & (T_INT | T_NUM)) && n->lo > n->hi) {
        k2c_seterr("%s: no integer lies between the minimum and the maximum (only integer values are generated)", where);
        return NULL;
    }
    if (n->max_items >= 0 && n->max_items < n->min_items) { k2c_seterr("%s: maxItems < minItems", where); return NULL; }
    if (n->max_len >= 0 && n->max_len < n->min_len) { k2c_seterr("%s: maxLength < minLength", where); return NULL; }
    char sub[512];
    if (n->types & T_ARR) {
        json_t *it = json_object_get(j, "items");
        snprintf(sub, sizeof sub, "%s.items", where);
        n->items = it ? compile(s, it, sub, depth + 1) : any_node(s);
        if (!n->items) return NULL;
    }
    if (n->types & T_OBJ) {
        json_t *props = json_object_get(j, "properties"), *req = json_object_get(j, "required");
        if (props && !json_is_object(props)) { k2c_seterr("%s: properties must be an object", where); return NULL; }
        if (req && !json_is_array(req)) { k2c_seterr("%s: required must be an array", where); return NULL; }
        size_t np = props ? json_object_size(props) : 0, nr = req ? json_array_size(req) : 0;
        if (np + nr > MAX_PROPS) { k2c_seterr("%s: more than %d properties", where, MAX_PROPS); return NULL; }
        n->keys = calloc(np + nr + 1, sizeof *n->keys);
        n->props = calloc(np + nr + 1, sizeof *n->props);
        if (!n->keys || !n->props) { k2c_seterr("out of memory"); return NULL; }
        const char *k; json_t *v;
        json_object_foreach(props, k, v) {
            snprintf(sub, sizeof sub, "%s.properties.%s", where, k);
            json_t *ks = json_string(k);
            n->keys[n->nprops] = ks ? json_dumps(ks, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_decref(ks);
            if (!n->keys[n->nprops]) { k2c_seterr("%s: bad property name", sub); return NULL; }
            if (!(n->props[n->nprops] = compile(s, v, sub, depth + 1))) { free(n->keys[n->nprops]); n->keys[n->nprops] = NULL; return NULL; }
            n->nprops++;
        }
        size_t i;
        json_array_foreach(req, i, v) {
            if (!json_is_string(v)) { k2c_seterr("%s: required[%zu] must be a string", where, i); return NULL; }
            json_t *ks = json_string(json_string_value(v));
            char *enc = ks ? json_dumps(ks, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_decref(ks);
            if (!enc) { k2c_seterr("%s: bad required name", where); return NULL; }
            int found = -1;
            for (int p = 0; p < n->nprops; p++) if (!strcmp(n->keys[p], enc)) found = p;
            if (found < 0) {   /* required but undeclared: any value will do */
                n->keys[n->nprops] = enc;
                if (!(n->props[n->nprops] = any_node(s))) return NULL;
                found = n->nprops++;
            } else free(enc);
            n->required |= 1ull << found;
        }
        if (n->nprops == 0) {
            json_t *ap = json_object_get(j, "additionalProperties");
            snprintf(sub, sizeof sub, "%s.additionalProperties", where);
            n->closed = json_is_false(ap);
            n->extra = ap && json_is_object(ap) ? compile(s, ap, sub, depth + 1) : any_node(s);
            if (!n->extra) return NULL;
        }
    }
    return n;
}

k2c_schema *k2c_schema_compile(const char *schema_json, const char *where) {
    json_error_t e;
    json_t *j = json_loads(schema_json, JSON_DECODE_ANY, &e);
    if (!j) { k2c_seterr("%s: invalid JSON: %s", where, e.text); return NULL; }
    k2c_schema *s = k2c_schema_compile_json(j, where);
    json_decref(j);
    return s;
}

k2c_schema *k2c_schema_compile_json(void *json, const char *where) {
    k2c_schema *s = calloc(1, sizeof *s);
    if (!s) { k2c_seterr("out of memory"); return NULL; }
    if (!(s->root = compile(s, json, where, 0))) { k2c_schema_free(s); return NULL; }
    return s;
}

void k2c_schema_free(k2c_schema *s) {
    if (!s) return;
    for (int i = 0; i < s->nall; i++) {
        gnode *n = s->all[i];
        for (int k = 0; k < n->nlits; k++) free(n->lits[k]);
        for (int k = 0; k < n->nprops; k++) free(n->keys[k]);
        free(n->lits); free(n->keys); free(n->props); free(n);
    }
    free(s->all);
    free(s);
}

/* ------------------------------------------------------------------ matcher */
enum { F_VALUE, F_OBJ, F_ARR, F_STR, F_NUM, F_LIT, F_KEY };
/* F_OBJ states */
enum { O_START, O_KEY_DONE, O_VALUE_DONE, O_COMMA, O_IN_VALUE };
/* F_ARR states */
enum { A_START, A_VALUE_DONE, A_COMMA };
/* F_STR states: utf8 continuation needs are in need/lo/hi */
enum { S_NORMAL, S_ESC, S_U1, S_U2, S_U3, S_U4 };
/* F_NUM states */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

typedef struct {
    const gnode *n;
    uint8_t kind, st, need, lo, hi, is_key, digits, edigits;
    uint32_t count;             /* chars (string), items (array), bytes matched (literal/key) */
    uint64_t mask;              /* literal / key candidates; object: keys seen */
    int16_t key;                /* object: the key being written (-1 free key) */
    uint8_t intonly;
} frame;

struct k2c_gram {
    int depth, done;
    frame f[GRAM_DEPTH];
};

k2c_gram *k2c_gram_new(const k2c_schema *s) {
    k2c_gram *g = calloc(1, sizeof *g);
    if (!g) { k2c_seterr("out of memory"); return NULL; }
    k2c_gram_reset(g, s);
    return g;
}

void k2c_gram_reset(k2c_gram *g, const k2c_schema *s) {
    g->depth = 1;
    g->done = 0;
    memset(&g->f[0], 0, sizeof g->f[0]);
    g->f[0].kind = F_VALUE;
    g->f[0].n = s->root;
}

void k2c_gram_free(k2c_gram *g) { free(g); }

/* Only the live frames are copied: this is the hot path of token checking. */
void k2c_gram_copy(k2c_gram *dst, const k2c_gram *src) {
    dst->depth = src->depth;
    dst->done = src->done;
    memcpy(dst->f, src->f, (size_t)src->depth * sizeof src->f[0]);
}

size_t k2c_gram_size(void) { return sizeof(k2c_gram); }

static int push(k2c_gram *g, frame fr) {
    if (g->depth >= GRAM_DEPTH) return -1;
    g->f[g->depth++] = fr;
    return 0;
}

/* The top frame finished: pop it and tell the parent. */
static void pop_done(k2c_gram *g) {
    frame *c = &g->f[--g->depth];
    if (g->depth == 0) { g->done = 1; return; }
    frame *p = &g->f[g->depth - 1];
    if (p->kind == F_OBJ) {
        if (c->kind == F_KEY) { p->st = O_KEY_DONE; p->key = (int16_t)__builtin_ctzll(c->mask); }
        else if (c->is_key) { p->st = O_KEY_DONE; p->key = -1; }
        else p->st = O_VALUE_DONE;
    } else if (p->kind == F_ARR) {
        p->count++;
        p->st = A_VALUE_DONE;
    }
}

static int lit_len_match(const frame *f, char **lits, int nlits) {   /* a candidate ends exactly here */
    for (int i = 0; i < nlits; i++)
        if ((f->mask >> i & 1) && strlen(lits[i]) == f->count) return 1;
    return 0;
}

static int feed_byte(k2c_gram *g, unsigned char c);

/* Bounded integers. A number frame keeps its magnitude in mask and its sign in need. Can a number that
 * starts with k digits of magnitude p (sign neg) still end inside [lo, hi]? Its values are p * 10^j ..
 * p * 10^j + 10^j - 1 for every j that keeps it within NUM_MAX_DIGITS digits; "0" cannot grow. */
static int num_feasible(const gnode *n, int neg, uint64_t p, int k) {
    if (!n->bounded) return 1;
    double pw = 1;
    for (int j = 0; k + j <= NUM_MAX_DIGITS; j++, pw *= 10) {
        double a = p ? (double)p * pw : 0, b = p ? a + pw - 1 : 0;
        double x = neg ? -b : a, y = neg ? -a : b;
        if (y >= n->lo && x <= n->hi) return 1;
        if (!p) break;
    }
    return 0;
}

static int num_in_range(const frame *f) {
    if (!f->n->bounded) return 1;
    double v = f->need ? -(double)f->mask : (double)f->mask;
    return v >= f->n->lo && v <= f->n->hi;
}

static int num_start_ok(const gnode *n, int neg) {   /* some first digit works */
    for (int d = 0; d <= 9; d++) if (num_feasible(n, neg, (uint64_t)d, 1)) return 1;
    return 0;
}

/* A fresh value frame takes its first byte: becomes an object/array/string/number/literal frame. */
static int start_value(k2c_gram *g, frame *f, unsigned char c) {
    const gnode *n = f->n;
    if (n->nlits) {
        uint64_t m = 0;
        for (int i = 0; i < n->nlits; i++) if ((unsigned char)n->lits[i][0] == c) m |= 1ull << i;
        if (!m) return -1;
        f->kind = F_LIT; f->mask = m; f->count = 1;
        if (lit_len_match(f, n->lits, n->nlits) && !(m & (m - 1))) pop_done(g);
        return 0;
    }
    int t = n->types;
    if (c == '{' && (t & T_OBJ)) { f->kind = F_OBJ; f->st = O_START; f->mask = 0; f->key = -1; return 0; }
    if (c == '[' && (t & T_ARR)) { f->kind = F_ARR; f->st = A_START; f->count = 0; return 0; }
    if (c == '"' && (t & T_STR)) { f->kind = F_STR; f->st = S_NORMAL; f->count = 0; f->need = 0; return 0; }
    if ((c == '-' || (c >= '0' && c <= '9')) && (t & (T_INT | T_NUM))) {
        if (c == '-' ? !num_start_ok(n, 1) : !num_feasible(n, 0, (uint64_t)(c - '0'), 1)) return -1;
        f->kind = F_NUM; f->intonly = !(t & T_NUM) || n->bounded; f->digits = 0; f->edigits = 0;
        f->need = c == '-';
        f->mask = c == '-' ? 0 : (uint64_t)(c - '0');
        if (c == '-') f->st = N_MINUS;
        else if (c == '0') { f->st = N_ZERO; f->digits = 1; }
        else { f->st = N_INT; f->digits = 1; }
        return 0;
    }
    static const char *words[3] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        if (c != (unsigned char)words[w][0] || !(t & (w < 2 ? T_BOOL : T_NULL))) continue;
        f->kind = F_LIT; f->mask = 1ull << w; f->count = 1;
        f->n = NULL;   /* a keyword literal: matched against words[] below */
        return 0;
    }
    return -1;
}

static const char *const keywords[3] = {"true", "false", "null"};

static int feed_lit(k2c_gram *g, frame *f, unsigned char c, char **lits, int nlits) {
    uint64_t m = 0;
    for (int i = 0; i < nlits; i++)
        if ((f->mask >> i & 1) && strlen(lits[i]) > f->count && (unsigned char)lits[i][f->count] == c) m |= 1ull << i;
    if (!m) {
        /* nothing continues: if a candidate ended here (a number literal), the value is over */
        if (f->kind == F_LIT && lit_len_match(f, lits, nlits)) { pop_done(g); return feed_byte(g, c); }
        return -1;
    }
    f->mask = m;
    f->count++;
    /* finished when every remaining candidate ends here (only one can, texts being distinct) */
    int more = 0;
    for (int i = 0; i < nlits; i++) if ((m >> i & 1) && strlen(lits[i]) > f->count) more = 1;
    if (!more) pop_done(g);
    return 0;
}

static int feed_str(k2c_gram *g, frame *f, unsigned char c) {
    const gnode *n = f->n;
    int maxl = n && !f->is_key ? n->max_len : -1, minl = n && !f->is_key ? n->min_len : 0;
    if (f->need) {
        if (c < f->lo || c > f->hi) return -1;
        f->lo = 0x80; f->hi = 0xBF;
        if (--f->need == 0) f->count++;
        return 0;
    }
    switch (f->st) {
    case S_NORMAL:
        if (c == '"') {
            if ((int)f->count < minl) return -1;
            pop_done(g);
            return 0;
        }
        if (maxl >= 0 && (int)f->count >= maxl) return -1;
        if (c == '\\') { f->st = S_ESC; return 0; }
        if (c < 0x20) return -1;
        if (c < 0x80) { f->count++; return 0; }
        f->lo = 0x80; f->hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) f->need = 1;
        else if (c == 0xE0) { f->need = 2; f->lo = 0xA0; }
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) f->need = 2;
        else if (c == 0xED) { f->need = 2; f->hi = 0x9F; }
        else if (c == 0xF0) { f->need = 3; f->lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) f->need = 3;
        else if (c == 0xF4) { f->need = 3; f->hi = 0x8F; }
        else return -1;
        return 0;
    case S_ESC:
        if (strchr("\"\\/bfnrt", c) && c) { f->st = S_NORMAL; f->count++; return 0; }
        if (c == 'u') { f->st = S_U1; f->lo = 0; return 0; }
        return -1;
    default: {   /* \uXXXX */
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex) return -1;
        if (f->st == S_U1) f->lo = (c == 'd' || c == 'D');         /* remember a D___ escape */
        else if (f->st == S_U2 && f->lo && !(c >= '0' && c <= '7')) return -1;   /* D800-DFFF */
        if (f->st == S_U4) { f->st = S_NORMAL; f->count++; f->lo = 0; }
        else f->st++;
        return 0;
    }
    }
}

static int feed_num(k2c_gram *g, frame *f, unsigned char c) {
    int digit = c >= '0' && c <= '9';
    switch (f->st) {
    case N_MINUS:
        if (!digit || !num_feasible(f->n, 1, (uint64_t)(c - '0'), 1)) return -1;
        f->mask = (uint64_t)(c - '0');
        if (c == '0') { f->st = N_ZERO; f->digits = 1; return 0; }
        f->st = N_INT; f->digits = 1;
        return 0;
    case N_ZERO: case N_INT:
        if (digit && f->st == N_INT && f->digits < NUM_MAX_DIGITS) {
            uint64_t p = f->mask * 10 + (uint64_t)(c - '0');
            if (!num_feasible(f->n, f->need, p, f->digits + 1)) return -1;
            f->mask = p;
            f->digits++;
            return 0;
        }
        if (!f->intonly && c == '.' && f->digits < NUM_MAX_DIGITS) { f->st = N_DOT; return 0; }
        if (!f->intonly && (c == 'e' || c == 'E')) { f->st = N_E; return 0; }
        break;
    case N_DOT:
        if (digit) { f->st = N_FRAC; f->digits++; return 0; }
        return -1;
    case N_FRAC:
        if (digit && f->digits < NUM_MAX_DIGITS) { f->digits++; return 0; }
        if (c == 'e' || c == 'E') { f->st = N_E; return 0; }
        break;
    case N_E:
        if (c == '+' || c == '-') { f->st = N_ESIGN; return 0; }
        /* fall through */
    case N_ESIGN:
        if (digit) { f->st = N_EXP; f->edigits = 1; return 0; }
        return -1;
    case N_EXP:
        if (digit && f->edigits < 2) { f->edigits++; return 0; }
        break;
    }
    /* the number is complete and c belongs to the parent */
    if ((f->st == N_ZERO || f->st == N_INT) && !num_in_range(f)) return -1;
    pop_done(g);
    if (g->done) return -1;   /* nothing may follow a top-level value */
    return feed_byte(g, c);
}

static int feed_byte(k2c_gram *g, unsigned char c) {
    if (g->done || g->depth == 0) return -1;
    frame *f = &g->f[g->depth - 1];
    switch (f->kind) {
    case F_VALUE: return start_value(g, f, c);
    case F_LIT:
        if (!f->n) return feed_lit(g, f, c, (char **)keywords, 3);
        return feed_lit(g, f, c, f->n->lits, f->n->nlits);
    case F_KEY: return feed_lit(g, f, c, f->n->keys, f->n->nprops);
    case F_STR: return feed_str(g, f, c);
    case F_NUM: return feed_num(g, f, c);
    case F_ARR: {
        const gnode *n = f->n;
        if (f->st == A_START || f->st == A_COMMA) {
            if (c == ']' && f->st == A_START && (int)f->count >= n->min_items) { pop_done(g); return 0; }
            if (n->max_items >= 0 && (int)f->count >= n->max_items) return -1;
            frame v = {.kind = F_VALUE, .n = n->items};
            if (push(g, v)) return -1;
            int rc = feed_byte(g, c);
            return rc;
        }
        /* A_VALUE_DONE */
        if (c == ',' && (n->max_items < 0 || (int)f->count < n->max_items)) { f->st = A_COMMA; return 0; }
        if (c == ']' && (int)f->count >= n->min_items) { pop_done(g); return 0; }
        return -1;
    }
    case F_OBJ: {
        const gnode *n = f->n;
        switch (f->st) {
        case O_START: case O_COMMA: {
            if (c == '}' && f->st == O_START && (n->required & ~f->mask) == 0) { pop_done(g); return 0; }
            if (c != '"' || n->closed) return -1;
            if (n->nprops) {
                uint64_t all = n->nprops == 64 ? ~0ull : (1ull << n->nprops) - 1, m = all & ~f->mask;
                if (!m) return -1;
                frame k = {.kind = F_KEY, .n = n, .mask = m, .count = 1, .is_key = 1};
                return push(g, k);
            }
            frame k = {.kind = F_STR, .n = NULL, .is_key = 1};
            return push(g, k);
        }
        case O_KEY_DONE: {
            if (c != ':') return -1;
            const gnode *vn = n->extra;
            if (n->nprops) vn = n->props[f->key];
            if (f->key >= 0) f->mask |= 1ull << f->key;
            frame v = {.kind = F_VALUE, .n = vn};
            f->st = O_IN_VALUE;   /* until the value frame pops */
            return push(g, v);
        }
        case O_VALUE_DONE: {
            if (c == ',') {
                uint64_t all = n->nprops == 64 ? ~0ull : (1ull << n->nprops) - 1;
                if (n->nprops && (all & ~f->mask) == 0) return -1;
                f->st = O_COMMA; return 0;
            }
            if (c == '}' && (n->required & ~f->mask) == 0) { pop_done(g); return 0; }
            return -1;
        }
        default: return -1;
        }
    }
    }
    return -1;
}

static int feed_one(k2c_gram *g, unsigned char c) { return feed_byte(g, c); }

int k2c_gram_feed(k2c_gram *g, const char *bytes, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (feed_one(g, (unsigned char)bytes[i]) != 0) return -1;
    return 0;
}

int k2c_gram_done(const k2c_gram *g) { return g->done; }

/* Could the value end here? Done, or a top-level number / number literal in a complete state. */
int k2c_gram_accepting(const k2c_gram *g) {
    if (g->done) return 1;
    if (g->depth != 1) return 0;
    const frame *f = &g->f[0];
    if (f->kind == F_NUM)
        return ((f->st == N_ZERO || f->st == N_INT) && num_in_range(f)) || f->st == N_FRAC || f->st == N_EXP;
    if (f->kind == F_LIT && f->n) return lit_len_match(f, f->n->lits, f->n->nlits);
    return 0;
}

void k2c_gram_first_bytes(const k2c_gram *g, uint8_t allowed[32]) {
    memset(allowed, 0, 32);
    k2c_gram t;
    for (int c = 0; c < 256; c++) {
        k2c_gram_copy(&t, g);
        if (feed_one(&t, (unsigned char)c) == 0) allowed[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
}

static int close_byte_value(const gnode *n) {
    if (n->nlits) return (unsigned char)n->lits[0][0];
    if (n->types & T_NULL) return 'n';
    if (n->types & T_BOOL) return 'f';
    if (n->types & (T_INT | T_NUM)) {
        if (!n->bounded || num_feasible(n, 0, 0, 1)) return '0';
        for (int d = 1; d <= 9; d++) if (num_feasible(n, 0, (uint64_t)d, 1)) return '0' + d;
        return '-';
    }
    if (n->types & T_STR) return '"';
    if (n->types & T_ARR) return '[';
    return '{';
}

/* The byte that moves the top frame fastest toward completion. */
static int close_byte(const k2c_gram *g) {
    const frame *f = &g->f[g->depth - 1];
    const gnode *n = f->n;
    switch (f->kind) {
    case F_VALUE: return close_byte_value(n);
    case F_LIT: {
        char **lits = n ? n->lits : (char **)keywords;
        int nl = n ? n->nlits : 3;
        for (int i = 0; i < nl; i++) if ((f->mask >> i & 1) && strlen(lits[i]) > f->count) return (unsigned char)lits[i][f->count];
        return -1;   /* ends here: the parent's byte (only numbers, handled by accepting) */
    }
    case F_KEY: {
        /* prefer a required key among the candidates */
        int pick = -1;
        for (int i = 0; i < n->nprops; i++)
            if (f->mask >> i & 1) { if (pick < 0) pick = i; if (n->required >> i & 1) { pick = i; break; } }
        return (unsigned char)n->keys[pick][f->count];
    }
    case F_STR:
        if (f->need) return f->lo;
        if (f->st == S_ESC) return 'n';
        if (f->st >= S_U1) return '0';
        if (!f->is_key && n && (int)f->count < n->min_len) return 'a';
        return '"';
    case F_NUM:
        if (n->bounded && (f->st == N_MINUS || !num_in_range(f))) {
            /* the smallest digit that keeps the range reachable; the range check ends it */
            for (int d = 0; d <= 9; d++)
                if (num_feasible(n, f->need, f->st == N_MINUS ? (uint64_t)d : f->mask * 10 + (uint64_t)d,
                                 f->st == N_MINUS ? 1 : f->digits + 1)) return '0' + d;
            return -1;
        }
        if (f->st == N_MINUS || f->st == N_DOT || f->st == N_E || f->st == N_ESIGN) return '0';
        return -1;
    case F_ARR:
        if (f->st == A_VALUE_DONE) return (int)f->count < n->min_items ? ',' : ']';
        if (f->st == A_START && (int)f->count >= n->min_items) return ']';
        return close_byte_value(n->items);
    case F_OBJ:
        if (f->st == O_KEY_DONE) return ':';
        if (f->st == O_START || f->st == O_COMMA) {
            if ((n->required & ~f->mask) == 0 && f->st == O_START) return '}';
            return '"';
        }
        if (f->st == O_VALUE_DONE) return (n->required & ~f->mask) ? ',' : '}';
        return -1;
    }
    return -1;
}

char *k2c_gram_close(const k2c_gram *g, size_t *len) {
    k2c_gram *t = malloc(sizeof *t);
    size_t cap = 64, n = 0;
    char *out = malloc(cap);
    if (!t || !out) { free(t); free(out); k2c_seterr("out of memory"); return NULL; }
    k2c_gram_copy(t, g);
    /* each step finishes a byte of the minimal completion; the bound only guards against a bug */
    for (int steps = 0; !t->done && steps < 1 << 20; steps++) {
        if (t->depth == 1 && k2c_gram_accepting(t)) break;
        int c = close_byte(t);
        if (c < 0) {
            /* a number (or number literal) that can end: the parent's next byte ends it */
            k2c_gram tmp;
            k2c_gram_copy(&tmp, t);
            pop_done(&tmp);
            c = close_byte(&tmp);
            if (c < 0) break;
        }
        if (feed_one(t, (unsigned char)c) != 0) { free(t); free(out); k2c_seterr("grammar: cannot close"); return NULL; }
        if (n + 2 > cap) {
            char *no = realloc(out, cap *= 2);
            if (!no) { free(t); free(out); k2c_seterr("out of memory"); return NULL; }
            out = no;
        }
        out[n++] = (char)c;
    }
    out[n] = 0;
    if (len) *len = n;
    free(t);
    return out;
}
