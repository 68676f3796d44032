/* JSON Schema (draft-07 and 2020-12 as real tool schemas use them) -> a graph of grammar nodes.
 *
 * The compile works on the JSON first and builds nodes second:
 *  - $ref "#/..." (JSON pointer into the root: $defs, definitions, properties, ...) is resolved; a ref
 *    with no sibling constraints compiles once and is shared, so recursive schemas become cyclic graphs
 *    (the matcher bounds the depth);
 *  - allOf is merged into one schema (types intersected, properties and required united, bounds
 *    tightened, enums intersected); anyOf / oneOf become alternative nodes, each alternative merged
 *    with the keywords beside the anyOf (the "type: object + anyOf of required sets" idiom);
 *  - format is a built-in pattern (date, time, date-time, email, uri, uuid, ipv4, ipv6, hostname)
 *    writing a subset of what the format allows, so the answers pass strict validators.
 * What cannot be enforced exactly is listed in the schema's warnings (the server reports them);
 * what cannot be compiled (a pattern with look-around, an external $ref, ...) fails with the keyword's
 * path. Afterwards every node gets the cheapest finite instance (cost, frames), found by fixpoint so
 * recursive alternatives close through their non-recursive branch. */
#include "text/text.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 48
#define NUM_LIMIT 999999999999999.0

typedef struct {
    k2c_schema *s;
    json_t *root;
    int nmemo;
    struct { char *ref; gnode *n; } memo[256];
    size_t wlen;
} ctx;

/* ------------------------------------------------------------------ nodes, warnings */
static gnode *new_node(k2c_schema *s) {
    if (s->nall == s->capall) {
        int cap = s->capall ? 2 * s->capall : 16;
        gnode **na = realloc(s->all, (size_t)cap * sizeof *na);
        if (!na) { k2c_seterr("out of memory"); return NULL; }
        s->all = na; s->capall = cap;
    }
    if (s->nall >= 20000) { k2c_seterr("schema: more than 20000 nodes"); return NULL; }
    gnode *n = calloc(1, sizeof *n);
    if (!n) { k2c_seterr("out of memory"); return NULL; }
    n->max_items = n->max_len = n->max_props = -1;
    n->items = NULL;
    s->all[s->nall++] = n;
    return n;
}

static void warn(ctx *c, const char *where, const char *what) {
    char line[600];
    snprintf(line, sizeof line, "%s: %s", where, what);
    if (c->s->warnings && strstr(c->s->warnings, line)) return;   /* each once */
    size_t add = strlen(line) + 3;
    if (c->wlen + add > 8192) return;
    char *w = realloc(c->s->warnings, c->wlen + add);
    if (!w) return;
    if (c->wlen) { strcpy(w + c->wlen, "; "); c->wlen += 2; }
    strcpy(w + c->wlen, line);
    c->wlen += strlen(line);
    c->s->warnings = w;
}

static int type_bit(const char *t) {
    static const char *names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    for (int i = 0; i < 7; i++) if (!strcmp(t, names[i])) return 1 << i;
    return 0;
}

static int types_of(json_t *t, int *out, const char *where) {
    *out = 0;
    if (!t) { *out = T_ANY; return 0; }
    if (json_is_string(t)) {
        if (!(*out = type_bit(json_string_value(t)))) { k2c_seterr("%s.type: unknown type '%s'", where, json_string_value(t)); return -1; }
        return 0;
    }
    if (!json_is_array(t) || !json_array_size(t)) { k2c_seterr("%s.type: must be a string or a non-empty array", where); return -1; }
    size_t i; json_t *v;
    json_array_foreach(t, i, v) {
        int b = json_is_string(v) ? type_bit(json_string_value(v)) : 0;
        if (!b) { k2c_seterr("%s.type[%zu]: unknown type", where, i); return -1; }
        *out |= b;
    }
    return 0;
}

static json_t *types_json(int m) {
    static const char *names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    if (m & T_NUM) m &= ~T_INT;
    json_t *a = json_array();
    for (int i = 0; i < 7; i++) if (m >> i & 1) json_array_append_new(a, json_string(names[i]));
    return a;
}

/* ------------------------------------------------------------------ $ref */
static json_t *deref(ctx *c, const char *ref, const char *where) {
    if (ref[0] != '#') { k2c_seterr("%s.$ref: only local references (\"#/...\") are supported, not '%s'", where, ref); return NULL; }
    json_t *cur = c->root;
    const char *p = ref + 1;
    if (*p && *p != '/') { k2c_seterr("%s.$ref: anchors ('%s') are not supported, only JSON pointers", where, ref); return NULL; }
    while (*p == '/') {
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof tok) {
            if (p[0] == '~' && p[1] == '0') { tok[n++] = '~'; p += 2; }
            else if (p[0] == '~' && p[1] == '1') { tok[n++] = '/'; p += 2; }
            else if (p[0] == '%' && p[1] && p[2]) {
                char h[3] = {p[1], p[2], 0};
                tok[n++] = (char)strtol(h, NULL, 16);
                p += 3;
            } else tok[n++] = *p++;
        }
        tok[n] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, tok);
        else if (json_is_array(cur)) { char *e; long i = strtol(tok, &e, 10); cur = *e || i < 0 ? NULL : json_array_get(cur, (size_t)i); }
        else cur = NULL;
        if (!cur) { k2c_seterr("%s.$ref: '%s' does not resolve", where, ref); return NULL; }
    }
    return cur;
}

/* ------------------------------------------------------------------ allOf merge */
static const char *const annotations[] = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
    "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding", "discriminator", "example",
    "$anchor", "$vocabulary", "markdownDescription", "xml", "externalDocs", NULL};

static int is_annotation(const char *k) {
    for (int i = 0; annotations[i]; i++) if (!strcmp(k, annotations[i])) return 1;
    return 0;
}

static int only_annotations(json_t *j, const char *except) {
    const char *k; json_t *v;
    json_object_foreach(j, k, v) if (!is_annotation(k) && strcmp(k, except)) return 0;
    return 1;
}

static json_t *merge(ctx *c, json_t *a, json_t *b, const char *where, int depth);

/* The schema with its own allOf and $ref folded in (a new reference). */
static json_t *flatten(ctx *c, json_t *j, const char *where, int depth) {
    if (depth > MAX_DEPTH) { k2c_seterr("%s: allOf / $ref nested too deeply", where); return NULL; }
    if (json_is_true(j)) return json_object();
    if (!json_is_object(j)) { k2c_seterr("%s: a schema must be an object or true", where); return NULL; }
    json_t *r = json_deep_copy(j);
    if (!r) { k2c_seterr("out of memory"); return NULL; }
    json_t *ref = json_object_get(r, "$ref");
    if (ref) {
        if (!json_is_string(ref)) { json_decref(r); k2c_seterr("%s.$ref: must be a string", where); return NULL; }
        json_t *t = deref(c, json_string_value(ref), where);
        if (!t) { json_decref(r); return NULL; }
        json_incref(t);
        json_object_del(r, "$ref");
        json_t *m = merge(c, r, t, where, depth + 1);
        json_decref(t);
        json_decref(r);
        if (!m) return NULL;
        r = m;
    }
    json_t *all = json_object_get(r, "allOf");
    if (all) {
        if (!json_is_array(all) || !json_array_size(all)) { json_decref(r); k2c_seterr("%s.allOf: must be a non-empty array", where); return NULL; }
        json_incref(all);
        json_object_del(r, "allOf");
        size_t i; json_t *v;
        json_array_foreach(all, i, v) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.allOf[%zu]", where, i);
            json_t *m = merge(c, r, v, sub, depth + 1);
            json_decref(r);
            if (!(r = m)) { json_decref(all); return NULL; }
        }
        json_decref(all);
    }
    return r;
}

static int bound_merge(json_t *r, const char *k, json_t *v, int take_max) {
    json_t *o = json_object_get(r, k);
    if (!o || !json_is_number(o) || !json_is_number(v)) return json_object_set(r, k, v);
    double x = json_number_value(o), y = json_number_value(v);
    if (take_max ? y > x : y < x) return json_object_set(r, k, v);
    return 0;
}

/* Keywords a and b both apply: one schema that means the same (a and b are not consumed). */
static json_t *merge(ctx *c, json_t *a0, json_t *b0, const char *where, int depth) {
    json_t *a = flatten(c, a0, where, depth), *b = a ? flatten(c, b0, where, depth) : NULL;
    if (!a || !b) { json_decref(a); return NULL; }
    json_t *r = a;
    const char *k; json_t *v;
    static const char *maxk[] = {"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", NULL};
    static const char *mink[] = {"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", NULL};
    json_t *aany = json_object_get(a, "anyOf") ? json_object_get(a, "anyOf") : json_object_get(a, "oneOf");
    json_t *bany = json_object_get(b, "anyOf") ? json_object_get(b, "anyOf") : json_object_get(b, "oneOf");
    int fail = 0;
    json_object_foreach(b, k, v) {
        json_t *o = json_object_get(r, k);
        int done = 0;
        for (int i = 0; maxk[i]; i++) if (!strcmp(k, maxk[i])) { bound_merge(r, k, v, 1); done = 1; }
        for (int i = 0; mink[i]; i++) if (!strcmp(k, mink[i])) { bound_merge(r, k, v, 0); done = 1; }
        if (done || is_annotation(k)) { if (!o && !done) json_object_set(r, k, v); continue; }
        if (!strcmp(k, "anyOf") || !strcmp(k, "oneOf")) continue;   /* below */
        if (!o) { json_object_set(r, k, v); continue; }
        if (json_equal(o, v)) continue;
        if (!strcmp(k, "type")) {
            int ta, tb;
            if (types_of(o, &ta, where) || types_of(v, &tb, where)) { fail = 1; break; }
            if (ta & T_NUM) ta |= T_INT;
            if (tb & T_NUM) tb |= T_INT;
            int t = ta & tb;
            if (!t) { k2c_seterr("%s.allOf: no type satisfies every subschema", where); fail = 1; break; }
            json_object_set_new(r, "type", types_json(t));
        } else if (!strcmp(k, "properties") && json_is_object(o) && json_is_object(v)) {
            json_t *p = json_deep_copy(o);
            const char *pk; json_t *pv;
            json_object_foreach(v, pk, pv) {
                json_t *q = json_object_get(p, pk);
                if (q) json_object_set_new(p, pk, json_pack("{s:[O,O]}", "allOf", q, pv));
                else json_object_set(p, pk, pv);
            }
            json_object_set_new(r, "properties", p);
        } else if (!strcmp(k, "required") && json_is_array(o) && json_is_array(v)) {
            json_t *q = json_deep_copy(o);
            size_t i; json_t *x;
            json_array_foreach(v, i, x) {
                size_t j2; json_t *y; int have = 0;
                json_array_foreach(q, j2, y) if (json_equal(x, y)) have = 1;
                if (!have) json_array_append(q, x);
            }
            json_object_set_new(r, "required", q);
        } else if (!strcmp(k, "enum") || !strcmp(k, "const")) {
            /* both constrain the value: keep the common values */
            json_t *ea = json_object_get(r, "enum"), *ca = json_object_get(r, "const");
            json_t *la = ea ? json_deep_copy(ea) : json_pack("[O]", ca);
            json_t *lb = !strcmp(k, "enum") ? v : NULL, *tmp = lb ? NULL : json_pack("[O]", v);
            if (!lb) lb = tmp;
            json_t *out = json_array();
            size_t i, j2; json_t *x, *y;
            json_array_foreach(la, i, x) json_array_foreach(lb, j2, y) if (json_equal(x, y)) { json_array_append(out, x); break; }
            json_decref(la); json_decref(tmp);
            if (!json_array_size(out)) { json_decref(out); k2c_seterr("%s.allOf: no value satisfies both enum/const", where); fail = 1; break; }
            json_object_del(r, "const");
            json_object_set_new(r, "enum", out);
        } else if (!strcmp(k, "additionalProperties") || !strcmp(k, "items") || !strcmp(k, "propertyNames")) {
            if (json_is_false(o) || json_is_false(v)) json_object_set_new(r, k, json_false());
            else json_object_set_new(r, k, json_pack("{s:[O,O]}", "allOf", o, v));
        } else if (!strcmp(k, "multipleOf") && json_is_integer(o) && json_is_integer(v)) {
            json_int_t x = json_integer_value(o), y = json_integer_value(v), g = x, h = y;
            while (h) { json_int_t t = g % h; g = h; h = t; }
            json_object_set_new(r, k, json_integer(g ? x / g * y : 0));
        } else if (!strcmp(k, "pattern") || !strcmp(k, "format")) {
            k2c_seterr("%s.allOf: two different '%s' values cannot be combined", where, k); fail = 1; break;
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "allOf: differing '%s' values, the first one is used", k);
            warn(c, where, msg);
        }
    }
    if (!fail) {
        /* additionalProperties: false on one side forbids the other side's extra properties */
        json_t *pr = json_object_get(r, "properties");
        for (int side = 0; side < 2 && json_is_object(pr); side++) {
            json_t *sd = side ? b : a0;
            if (!json_is_object(sd) || !json_is_false(json_object_get(sd, "additionalProperties"))) continue;
            json_t *sp = json_object_get(sd, "properties");
            void *it = json_object_iter(pr);
            while (it) {
                const char *pk = json_object_iter_key(it);
                it = json_object_iter_next(pr, it);
                if (!json_object_get(sp, pk)) json_object_del(pr, pk);
            }
        }
        if (aany && bany) {
            /* both sides choose: every pair of alternatives */
            json_t *prod = json_array();
            size_t i, j2; json_t *x, *y;
            json_array_foreach(aany, i, x) json_array_foreach(bany, j2, y) json_array_append_new(prod, json_pack("{s:[O,O]}", "allOf", x, y));
            if (json_array_size(prod) > GN_MAX_ALTS) { json_decref(prod); k2c_seterr("%s.allOf: more than %d combined alternatives", where, GN_MAX_ALTS); fail = 1; }
            else { json_object_del(r, "oneOf"); json_object_set_new(r, "anyOf", prod); }
        } else if (bany) json_object_set(r, json_object_get(b, "anyOf") ? "anyOf" : "oneOf", bany);
    }
    json_decref(b);
    if (fail) { json_decref(r); return NULL; }
    return r;
}

/* ------------------------------------------------------------------ formats */
/* Each writes a subset of what the format allows (ajv-formats' "full" checks: real days of the month,
 * hours 00-23, a time zone on times), since the text must pass any strict validator. */
static const struct { const char *name, *pattern; } formats[] = {
    {"date", "^[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))$"},
    {"time", "^(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"},
    {"date-time", "^[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
                  "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"},
    {"email", "^[a-z0-9_]{1,20}(?:\\.[a-z0-9_]{1,20}){0,2}@[a-z0-9]{1,20}(?:\\.[a-z0-9]{1,20}){0,2}\\.[a-z]{2,6}$"},
    {"uri", "^https?://[a-z0-9]{1,20}(?:\\.[a-z0-9]{1,20}){0,3}(?:/[A-Za-z0-9._~-]{0,20}){0,4}$"},
    {"url", "^https?://[a-z0-9]{1,20}(?:\\.[a-z0-9]{1,20}){0,3}(?:/[A-Za-z0-9._~-]{0,20}){0,4}$"},
    {"uri-reference", "^(?:https?://[a-z0-9]{1,20}(?:\\.[a-z0-9]{1,20}){0,3})?(?:/[A-Za-z0-9._~-]{0,20}){0,4}$"},
    {"uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
    {"ipv4", "^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"},
    {"ipv6", "^(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$"},
    {"hostname", "^[a-z0-9]{1,20}(?:\\.[a-z0-9]{1,20}){0,3}$"},
    {NULL, NULL}};

static int add_regex(gnode *n, const char *pat, const char *where, const char *kw) {
    char err[256];
    if (n->nrx >= GN_MAX_RX) { k2c_seterr("%s.%s: too many patterns on one string", where, kw); return -1; }
    k2c_regex *rx = k2c_regex_compile(pat, err, sizeof err);
    if (!rx) { k2c_seterr("%s.%s: %s", where, kw, err); return -1; }
    n->rx[n->nrx++] = rx;
    return 0;
}

/* ------------------------------------------------------------------ compile */
static const char *const known[] = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems",
    "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minProperties", "maxProperties", "propertyNames",
    "anyOf", "oneOf", "allOf", "$ref", "nullable", NULL};

static int get_count(json_t *o, const char *k, int dflt, int *out, const char *where) {
    json_t *v = json_object_get(o, k);
    *out = dflt;
    if (!v) return 0;
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && json_real_value(v) >= 0 && json_real_value(v) <= 1000000) {
        *out = (int)json_real_value(v);
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
        k2c_seterr("%s.%s: must be a non-negative integer", where, k);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static gnode *compile(ctx *c, json_t *j, const char *where, int depth, gnode *into);

static gnode *any_node(ctx *c, gnode *into) {
    gnode *n = into ? into : new_node(c->s);
    if (n) { n->kind = GN_TYPES; n->types = T_ANY; n->items = n->extra = n; }   /* its parts are any JSON too */
    return n;
}

static int lit_type(const char *t) {
    switch (t[0]) {
    case 'n': return T_NULL;
    case 't': case 'f': return T_BOOL;
    case '"': return T_STR;
    case '[': return T_ARR;
    case '{': return T_OBJ;
    default: return strpbrk(t, ".eE") ? T_NUM : T_INT | T_NUM;
    }
}

static int compile_lits(ctx *c, gnode *n, json_t *en, json_t *cn, int types, int nullable, const char *where) {
    (void)c;
    if (en && (!json_is_array(en) || json_array_size(en) == 0 || json_array_size(en) > GN_MAX_LITS)) {
        k2c_seterr("%s.enum: must be an array of 1 to %d values", where, GN_MAX_LITS);
        return -1;
    }
    size_t cnt = en ? json_array_size(en) : 1;
    n->kind = GN_LITS;
    n->lits = calloc(cnt + 1, sizeof *n->lits);
    if (!n->lits) { k2c_seterr("out of memory"); return -1; }
    for (size_t i = 0; i < cnt + (nullable != 0); i++) {
        json_t *v = i == cnt ? json_null() : en ? json_array_get(en, i) : cn;
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!txt) { k2c_seterr("%s.enum[%zu]: cannot be serialized", where, i); return -1; }
        int dup = 0;
        for (int k = 0; k < n->nlits; k++) if (!strcmp(n->lits[k], txt)) dup = 1;
        if (dup || !(lit_type(txt) & types)) { free(txt); continue; }   /* enum values of another type never validate */
        if (n->nlits == GN_MAX_LITS) { free(txt); break; }
        n->lits[n->nlits++] = txt;
    }
    if (!n->nlits) { k2c_seterr("%s.enum: no value has the schema's type", where); return -1; }
    return 0;
}

static int compile_number(ctx *c, gnode *n, json_t *j, const char *where) {
    static const char *bk[4] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
    n->lo = -NUM_LIMIT;
    n->hi = NUM_LIMIT;
    double flo = -INFINITY, fhi = INFINITY;   /* the real bounds, for the no-integer case */
    int fexlo = 0, fexhi = 0;
    for (int b = 0; b < 4; b++) {
        json_t *v = json_object_get(j, bk[b]);
        if (!v) continue;
        if (json_is_boolean(v)) {   /* draft-4 flags: exclusive versions of minimum / maximum */
            if (json_is_true(v)) { if (b == 2) fexlo = 1; else if (b == 3) fexhi = 1; }
            continue;
        }
        if (!json_is_number(v)) { k2c_seterr("%s.%s: must be a number", where, bk[b]); return -1; }
        double x = json_number_value(v);
        n->bounded = 1;
        if (b == 0 && x > flo) flo = x;
        if (b == 1 && x < fhi) fhi = x;
        if (b == 2 && x >= flo) { flo = x; fexlo = 2; }
        if (b == 3 && x <= fhi) { fhi = x; fexhi = 2; }
    }
    if (n->bounded) {
        double lo = fexlo ? floor(flo) + 1 : ceil(flo), hi = fexhi ? ceil(fhi) - 1 : floor(fhi);
        if (flo == -INFINITY) lo = -NUM_LIMIT;
        if (fhi == INFINITY) hi = NUM_LIMIT;
        if (lo > n->lo) n->lo = lo;
        if (hi < n->hi) n->hi = hi;
    }
    json_t *m = json_object_get(j, "multipleOf");
    if (m) {
        if (!json_is_number(m) || json_number_value(m) <= 0) { k2c_seterr("%s.multipleOf: must be a positive number", where); return -1; }
        double x = json_number_value(m);
        if (x == floor(x) && x <= 1e12) { n->mult = x; n->bounded = 1; }
        else {
            /* 0.5, 0.25, ...: every integer divides exactly (x / k is exact in binary floating point) */
            double inv = 1 / x;
            int pow2 = inv == floor(inv) && inv <= 1048576 && ((long)inv & ((long)inv - 1)) == 0;
            if (!pow2) warn(c, where, "multipleOf with a fraction that is not 1/2^k is not enforced");
            n->bounded = 1;
        }
    }
    n->flo = flo; n->fhi = fhi; n->exlo = fexlo; n->exhi = fexhi;
    /* a "number" with bounds and no multipleOf is written with decimals, in range exactly */
    n->dec = n->bounded && (n->types & T_NUM) && n->mult <= 0 && !m;
    if (n->dec) {
        double span = fhi - flo, mag = fmax(1, fmax(fabs(flo == -INFINITY ? 0 : flo), fabs(fhi == INFINITY ? 0 : fhi)));
        if (flo > fhi || (flo == fhi && (fexlo || fexhi))) { k2c_seterr("%s: no number lies between the minimum and the maximum", where); return -1; }
        if (fabs(flo) > 1e11 || fabs(fhi) > 1e11) n->dec = 0;   /* beyond 12 digits: integers, as below */
        else if (span < 1e-6 * mag) {
            /* a point (or a sliver 12 digits cannot hit): the one value written is its midpoint */
            char txt[64];
            snprintf(txt, sizeof txt, "%.15g", flo == fhi ? flo : (flo + fhi) / 2);
            if (flo != fhi) warn(c, where, "a number range narrower than 12 digits resolve: only its midpoint is generated");
            n->kind = GN_LITS;
            n->lits = calloc(1, sizeof *n->lits);
            if (!n->lits || !(n->lits[0] = strdup(txt))) { k2c_seterr("out of memory"); return -1; }
            n->nlits = 1;
            return 0;
        }
    }
    if (n->bounded && !n->dec && !(n->types & ~(T_INT | T_NUM))) {
        double first = n->mult > 0 ? ceil(n->lo / n->mult) * n->mult : n->lo;
        if (first > n->hi) {
            k2c_seterr("%s: no integer lies between the minimum and the maximum (only integer values are generated)", where);
            return -1;
        }
    }
    return 0;
}

static int compile_object(ctx *c, gnode *n, json_t *j, const char *where, int depth) {
    json_t *props = json_object_get(j, "properties"), *req = json_object_get(j, "required");
    json_t *ap = json_object_get(j, "additionalProperties"), *pn = json_object_get(j, "propertyNames");
    if (props && !json_is_object(props)) { k2c_seterr("%s.properties: must be an object", where); return -1; }
    if (req && !json_is_array(req)) { k2c_seterr("%s.required: must be an array", where); return -1; }
    if (ap && !json_is_boolean(ap) && !json_is_object(ap)) { k2c_seterr("%s.additionalProperties: must be a schema", where); return -1; }
    size_t np = props ? json_object_size(props) : 0, nr = req ? json_array_size(req) : 0;
    if (np + nr > GN_MAX_PROPS) { k2c_seterr("%s.properties: more than %d properties", where, GN_MAX_PROPS); return -1; }
    n->keys = calloc(np + nr + 1, sizeof *n->keys);
    n->props = calloc(np + nr + 1, sizeof *n->props);
    if (!n->keys || !n->props) { k2c_seterr("out of memory"); return -1; }
    char sub[512];
    const char *k; json_t *v;
    json_object_foreach(props, k, v) {
        snprintf(sub, sizeof sub, "%s.properties.%s", where, k);
        json_t *ks = json_string(k);
        n->keys[n->nprops] = ks ? json_dumps(ks, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        if (!n->keys[n->nprops]) { k2c_seterr("%s: bad property name", sub); return -1; }
        if (json_is_false(v)) { free(n->keys[n->nprops]); n->keys[n->nprops] = NULL; continue; }   /* never present */
        if (!(n->props[n->nprops] = compile(c, v, sub, depth + 1, NULL))) { free(n->keys[n->nprops]); n->keys[n->nprops] = NULL; return -1; }
        n->nprops++;
    }
    size_t i;
    json_array_foreach(req, i, v) {
        if (!json_is_string(v)) { k2c_seterr("%s.required[%zu]: must be a string", where, i); return -1; }
        json_t *ks = json_string(json_string_value(v));
        char *enc = ks ? json_dumps(ks, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        if (!enc) { k2c_seterr("%s.required[%zu]: bad name", where, i); return -1; }
        int found = -1;
        for (int p = 0; p < n->nprops; p++) if (!strcmp(n->keys[p], enc)) found = p;
        if (found < 0) {   /* required but undeclared: the additionalProperties schema, or any value */
            if (json_is_object(props) && json_is_false(json_object_get(props, json_string_value(v)))) {
                free(enc); k2c_seterr("%s.required[%zu]: '%s' is required and forbidden", where, i, json_string_value(v)); return -1;
            }
            if (json_is_false(ap)) { free(enc); k2c_seterr("%s.required[%zu]: '%s' is required but additionalProperties is false", where, i, json_string_value(v)); return -1; }
            n->keys[n->nprops] = enc;
            snprintf(sub, sizeof sub, "%s.additionalProperties", where);
            if (!(n->props[n->nprops] = json_is_object(ap) ? compile(c, ap, sub, depth + 1, NULL) : any_node(c, NULL))) return -1;
            found = n->nprops++;
        } else free(enc);
        n->required |= 1ull << found;
    }
    /* undeclared keys: by an explicit additionalProperties schema, or (no properties at all) of any value */
    snprintf(sub, sizeof sub, "%s.additionalProperties", where);
    if (json_is_object(ap)) { if (!(n->extra = compile(c, ap, sub, depth + 1, NULL))) return -1; }
    else if (!json_is_false(ap) && !props) { if (!(n->extra = any_node(c, NULL))) return -1; }
    if (json_object_get(j, "patternProperties"))
        warn(c, where, n->extra ? "patternProperties not enforced on undeclared keys" : "patternProperties: only declared properties are generated");
    if (pn && n->extra) {
        snprintf(sub, sizeof sub, "%s.propertyNames", where);
        if (json_is_false(pn)) n->extra = NULL;
        else if (!(n->keyschema = compile(c, pn, sub, depth + 1, NULL))) return -1;
        else if (n->keyschema->kind == GN_TYPES) {
            n->keyschema->types &= T_STR;
            if (!n->keyschema->types) { k2c_seterr("%s: property names must be strings", sub); return -1; }
        } else if (n->keyschema->kind != GN_LITS) { k2c_seterr("%s: only string schemas are supported", sub); return -1; }
    }
    if (pn) {
        /* declared names the propertyNames schema refuses: never written (an error when required) */
        k2c_schema tmp = {.root = NULL};
        gnode *ks = NULL;
        if (json_is_object(pn) && !n->keyschema) { snprintf(sub, sizeof sub, "%s.propertyNames", where); if (!(ks = compile(c, pn, sub, depth + 1, NULL))) return -1; }
        tmp.root = n->keyschema ? n->keyschema : ks;
        k2c_gram *g = tmp.root ? k2c_gram_new(&tmp) : NULL;
        for (int p = 0; g && p < n->nprops; p++) {
            k2c_gram_reset(g, &tmp);
            if (k2c_gram_feed(g, n->keys[p], strlen(n->keys[p])) == 0 && k2c_gram_accepting(g)) continue;
            if (n->required >> p & 1) { k2c_gram_free(g); k2c_seterr("%s.propertyNames: required property %s does not satisfy it", where, n->keys[p]); return -1; }
            free(n->keys[p]);
            for (int q = p; q + 1 < n->nprops; q++) { n->keys[q] = n->keys[q + 1]; n->props[q] = n->props[q + 1]; }
            uint64_t low = n->required & ((1ull << p) - 1);
            n->required = low | ((n->required >> (p + 1)) << p);
            n->nprops--;
            p--;
        }
        k2c_gram_free(g);
    }
    if (get_count(j, "minProperties", 0, &n->min_props, where) || get_count(j, "maxProperties", -1, &n->max_props, where)) return -1;
    int nreq = __builtin_popcountll(n->required);
    if (n->max_props >= 0 && nreq > n->max_props) { k2c_seterr("%s.maxProperties: fewer than the required properties", where); return -1; }
    if (n->max_props >= 0 && n->min_props > n->max_props) { k2c_seterr("%s: maxProperties < minProperties", where); return -1; }
    if (n->min_props > n->nprops) {
        if (n->extra) warn(c, where, "minProperties beyond the declared properties is not enforced");
        else { k2c_seterr("%s.minProperties: more than the properties allowed", where); return -1; }
        n->min_props = n->nprops;
    }
    return 0;
}

static int compile_array(ctx *c, gnode *n, json_t *j, const char *where, int depth) {
    char sub[512];
    json_t *pre = json_object_get(j, "prefixItems"), *it = json_object_get(j, "items");
    if (json_is_array(it)) { pre = it; it = json_object_get(j, "additionalItems"); }   /* draft-07 tuple form */
    if (pre && !json_is_array(pre)) { k2c_seterr("%s.prefixItems: must be an array", where); return -1; }
    if (pre) {
        n->nprefix = (int)json_array_size(pre);
        if (n->nprefix > 64) { k2c_seterr("%s.prefixItems: more than 64", where); return -1; }
        if (!(n->prefix = calloc((size_t)n->nprefix + 1, sizeof *n->prefix))) { k2c_seterr("out of memory"); return -1; }
        for (int i = 0; i < n->nprefix; i++) {
            snprintf(sub, sizeof sub, "%s.prefixItems[%d]", where, i);
            if (!(n->prefix[i] = compile(c, json_array_get(pre, (size_t)i), sub, depth + 1, NULL))) return -1;
        }
    }
    snprintf(sub, sizeof sub, "%s.items", where);
    if (json_is_false(it)) n->items = NULL;
    else if (!(n->items = it ? compile(c, it, sub, depth + 1, NULL) : any_node(c, NULL))) return -1;
    if (get_count(j, "minItems", 0, &n->min_items, where) || get_count(j, "maxItems", -1, &n->max_items, where)) return -1;
    if (!n->items && (n->max_items < 0 || n->max_items > n->nprefix)) n->max_items = n->nprefix;
    if (n->max_items >= 0 && n->max_items < n->min_items) { k2c_seterr("%s: maxItems < minItems (or fewer items allowed than minItems)", where); return -1; }
    if (json_is_true(json_object_get(j, "uniqueItems"))) {
        if (n->nprefix) warn(c, where, "uniqueItems with prefixItems is not enforced");
        else if (n->items && n->items->kind == GN_LITS) {
            n->uniq = 1;
            if (n->max_items < 0 || n->max_items > n->items->nlits) n->max_items = n->items->nlits;
            if (n->min_items > n->max_items) { k2c_seterr("%s.uniqueItems: minItems exceeds the distinct values", where); return -1; }
        } else if (n->min_items <= 1) n->max_items = n->max_items == 0 ? 0 : 1;   /* one item is always unique */
        else { k2c_seterr("%s.uniqueItems: with minItems > 1 only enum / const / boolean items are supported", where); return -1; }
    }
    if (json_object_get(j, "contains")) warn(c, where, "contains is not enforced");
    return 0;
}

static gnode *compile(ctx *c, json_t *j, const char *where, int depth, gnode *into) {
    if (depth > MAX_DEPTH) { k2c_seterr("%s: schema nested too deeply", where); return NULL; }
    if (json_is_true(j)) return any_node(c, into);
    if (json_is_false(j)) { k2c_seterr("%s: the schema false allows no value", where); return NULL; }
    if (!json_is_object(j)) { k2c_seterr("%s: a schema must be an object", where); return NULL; }
    json_t *ref = json_object_get(j, "$ref");
    if (ref && only_annotations(j, "$ref")) {
        /* a bare ref: shared node, which is what makes recursion finite */
        if (!json_is_string(ref)) { k2c_seterr("%s.$ref: must be a string", where); return NULL; }
        const char *r = json_string_value(ref);
        for (int i = 0; i < c->nmemo; i++)
            if (!strcmp(c->memo[i].ref, r)) {
                if (!into) return c->memo[i].n;
                gnode *alias = into;   /* a node that only forwards: an alternative of one */
                alias->kind = GN_ALT;
                if (!(alias->alts = calloc(1, sizeof *alias->alts))) { k2c_seterr("out of memory"); return NULL; }
                alias->alts[0] = c->memo[i].n;
                alias->nalts = 1;
                return alias;
            }
        json_t *t = deref(c, r, where);
        if (!t) return NULL;
        if (c->nmemo == 256) { k2c_seterr("%s.$ref: more than 256 distinct references", where); return NULL; }
        gnode *n = into ? into : new_node(c->s);
        if (!n) return NULL;
        char *rs = strdup(r);
        if (!rs) { k2c_seterr("out of memory"); return NULL; }
        c->memo[c->nmemo].ref = rs;
        c->memo[c->nmemo++].n = n;
        char sub[512];
        snprintf(sub, sizeof sub, "%s", r);
        return compile(c, t, sub, depth + 1, n);
    }
    if (ref || json_object_get(j, "allOf")) {
        json_t *f = flatten(c, j, where, depth);
        if (!f) return NULL;
        gnode *n = compile(c, f, where, depth + 1, into);
        json_decref(f);
        return n;
    }
    gnode *n = into ? into : new_node(c->s);
    if (!n) return NULL;
    const char *k; json_t *v;
    json_object_foreach(j, k, v) {
        int ok = is_annotation(k);
        for (int i = 0; !ok && known[i]; i++) ok = !strcmp(k, known[i]);
        if (ok || !strcmp(k, "patternProperties") || !strcmp(k, "contains") || !strcmp(k, "additionalItems")) continue;
        char msg[160];
        snprintf(msg, sizeof msg, "keyword '%.100s' is not enforced", k);
        warn(c, where, msg);
    }
    json_t *any = json_object_get(j, "anyOf"), *one = json_object_get(j, "oneOf");
    if (any || one) {
        json_t *alts = any ? any : one;
        if (!json_is_array(alts) || !json_array_size(alts) || json_array_size(alts) > GN_MAX_ALTS) {
            k2c_seterr("%s.%s: must be an array of 1 to %d schemas", where, any ? "anyOf" : "oneOf", GN_MAX_ALTS);
            return NULL;
        }
        if (any && one) warn(c, where, "oneOf beside anyOf is not enforced");
        json_t *sib = json_deep_copy(j);
        if (!sib) { k2c_seterr("out of memory"); return NULL; }
        json_object_del(sib, "anyOf");
        json_object_del(sib, "oneOf");
        int bare = only_annotations(sib, "");
        n->kind = GN_ALT;
        if (!(n->alts = calloc(json_array_size(alts), sizeof *n->alts))) { json_decref(sib); k2c_seterr("out of memory"); return NULL; }
        size_t i; json_t *a;
        json_array_foreach(alts, i, a) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.%s[%zu]", where, any ? "anyOf" : "oneOf", i);
            json_t *m = bare ? json_incref(a) : merge(c, sib, a, sub, depth + 1);
            if (!m) {   /* an alternative that contradicts its siblings allows nothing: drop it */
                if (bare) { json_decref(sib); return NULL; }
                continue;
            }
            gnode *an = compile(c, m, sub, depth + 1, NULL);
            json_decref(m);
            if (!an) { json_decref(sib); return NULL; }
            n->alts[n->nalts++] = an;
        }
        json_decref(sib);
        if (!n->nalts) { k2c_seterr("%s: no alternative is satisfiable", where); return NULL; }
        if (one && !any) {
            /* oneOf: exactly one may match. Alternatives of disjoint types or disjoint literal sets
             * cannot both match; anything else is written as anyOf and said so. */
            int disjoint = 1;
            for (int x = 0; x < n->nalts && disjoint; x++)
                for (int y = x + 1; y < n->nalts && disjoint; y++) {
                    gnode *p = n->alts[x], *q = n->alts[y];
                    int tp = p->kind == GN_TYPES ? p->types : p->kind == GN_LITS ? 0 : T_ANY;
                    int tq = q->kind == GN_TYPES ? q->types : q->kind == GN_LITS ? 0 : T_ANY;
                    for (int l = 0; p->kind == GN_LITS && l < p->nlits; l++) tp |= lit_type(p->lits[l]);
                    for (int l = 0; q->kind == GN_LITS && l < q->nlits; l++) tq |= lit_type(q->lits[l]);
                    if (!(tp & tq)) continue;
                    if (p->kind == GN_LITS && q->kind == GN_LITS) {
                        for (int l = 0; l < p->nlits; l++) for (int m = 0; m < q->nlits; m++) if (!strcmp(p->lits[l], q->lits[m])) disjoint = 0;
                        continue;
                    }
                    /* objects told apart by a required property with disjoint literal values */
                    int told = 0;
                    if (p->kind == GN_TYPES && q->kind == GN_TYPES && p->types == T_OBJ && q->types == T_OBJ)
                        for (int a1 = 0; a1 < p->nprops && !told; a1++)
                            for (int b1 = 0; b1 < q->nprops && !told; b1++) {
                                gnode *va = p->props[a1], *vb = q->props[b1];
                                if (strcmp(p->keys[a1], q->keys[b1]) || !(p->required >> a1 & 1) || !(q->required >> b1 & 1)) continue;
                                if (va->kind != GN_LITS || vb->kind != GN_LITS) continue;
                                int common = 0;
                                for (int l = 0; l < va->nlits; l++) for (int m = 0; m < vb->nlits; m++) if (!strcmp(va->lits[l], vb->lits[m])) common = 1;
                                told = !common;
                            }
                    if (!told) disjoint = 0;
                }
            if (!disjoint) warn(c, where, "oneOf alternatives may overlap: enforced as anyOf");
        }
        return n;
    }
    int types, nullable = json_is_true(json_object_get(j, "nullable"));
    if (types_of(json_object_get(j, "type"), &types, where)) return NULL;
    if (types & T_NUM) types |= T_INT;   /* an integer is a number */
    if (nullable) types |= T_NULL;
    json_t *en = json_object_get(j, "enum"), *cn = json_object_get(j, "const");
    if (en || cn) {
        if (en && cn) {   /* both: the const, if the enum has it */
            size_t i; json_t *x; int have = 0;
            json_array_foreach(en, i, x) if (json_equal(x, cn)) have = 1;
            if (!have) { k2c_seterr("%s: const is not among the enum values", where); return NULL; }
            en = NULL;
        }
        return compile_lits(c, n, en, cn, types, nullable && !json_object_get(j, "type"), where) ? NULL : n;
    }
    n->kind = GN_TYPES;
    n->types = types;
    if (types == T_BOOL || types == T_NULL || types == (T_BOOL | T_NULL)) {
        /* literal sets: this is what lets uniqueItems and the closer treat them exactly */
        json_t *vals = json_array();
        if (types & T_BOOL) { json_array_append_new(vals, json_true()); json_array_append_new(vals, json_false()); }
        if (types & T_NULL) json_array_append_new(vals, json_null());
        int rc = compile_lits(c, n, vals, NULL, T_ANY, 0, where);
        json_decref(vals);
        return rc ? NULL : n;
    }
    if ((types & (T_INT | T_NUM)) && compile_number(c, n, j, where)) return NULL;
    if (n->kind == GN_LITS) return n;
    if (types & T_STR) {
        if (get_count(j, "minLength", 0, &n->min_len, where) || get_count(j, "maxLength", -1, &n->max_len, where)) return NULL;
        if (n->max_len >= 0 && n->max_len < n->min_len) { k2c_seterr("%s: maxLength < minLength", where); return NULL; }
        json_t *pat = json_object_get(j, "pattern"), *fmt = json_object_get(j, "format");
        if (pat && !json_is_string(pat)) { k2c_seterr("%s.pattern: must be a string", where); return NULL; }
        if (pat && add_regex(n, json_string_value(pat), where, "pattern")) return NULL;
        if (json_is_string(fmt)) {
            int f = 0;
            while (formats[f].name && strcmp(formats[f].name, json_string_value(fmt))) f++;
            if (formats[f].name) { if (add_regex(n, formats[f].pattern, where, "format")) return NULL; }
            else {
                char msg[160];
                snprintf(msg, sizeof msg, "format '%.60s' is not enforced", json_string_value(fmt));
                warn(c, where, msg);
            }
        }
        /* A pattern no string of minLength..maxLength characters matches would let an answer open a string it
         * can never close: refuse the schema instead (the lengths of the shortest and longest matches). */
        for (int r = 0; r < n->nrx; r++) {
            int mind, maxd;
            k2c_regex_span(n->rx[r], NULL, 1, &mind, &maxd);
            if (mind >= RX_INF || (n->max_len >= 0 && mind > n->max_len) || (maxd != RX_INF && maxd < n->min_len)) {
                k2c_seterr("%s: %s matches no string of minLength %d .. maxLength %d characters", where,
                           r < (pat ? 1 : 0) ? "pattern" : "format", n->min_len, n->max_len);
                return NULL;
            }
        }
    }
    if ((types & T_ARR) && compile_array(c, n, j, where, depth)) return NULL;
    if ((types & T_OBJ) && compile_object(c, n, j, where, depth)) return NULL;
    return n;
}

/* ------------------------------------------------------------------ cheapest instances */
static int num_text_len(double v) { char b[40]; return snprintf(b, sizeof b, "%.0f", v); }

/* One pass of the fixpoint: a node's cost from its parts' current costs. Returns 1 if it changed. */
static int relax(gnode *n) {
    int cost = RX_INF, depth = RX_INF, ca = -1, ct = 0;
    if (n->kind == GN_LITS) {
        for (int i = 0; i < n->nlits; i++) { int l = (int)strlen(n->lits[i]); if (l < cost) { cost = l; ca = i; } }
        depth = 1;
    } else if (n->kind == GN_ALT) {
        for (int i = 0; i < n->nalts; i++) {
            gnode *a = n->alts[i];
            if (a->cost < cost || (a->cost == cost && a->depth < depth)) { cost = a->cost; depth = a->depth; ca = i; }
        }
    } else {
        for (int t = 1; t <= T_OBJ; t <<= 1) {
            if (!(n->types & t)) continue;
            int c = RX_INF, d = 1;
            if (t == T_NULL || t == T_BOOL) c = 4;
            else if (t == T_INT || t == T_NUM) {
                double v = 0;
                if (n->bounded) {
                    double m = n->mult > 0 ? n->mult : 1;
                    v = n->lo > 0 ? ceil(n->lo / m) * m : n->hi < 0 ? floor(n->hi / m) * m : 0;
                }
                c = num_text_len(v);
            } else if (t == T_STR) {
                int need = n->min_len;
                for (int r = 0; r < n->nrx; r++) {
                    int lo, hi;
                    k2c_regex_span(n->rx[r], NULL, 1, &lo, &hi);
                    if (lo > need) need = lo;
                }
                c = need >= RX_INF ? RX_INF : 2 + need;
            } else if (t == T_ARR) {
                c = 2; d = 1;
                for (int i = 0; i < n->min_items && c < RX_INF; i++) {
                    gnode *it = i < n->nprefix ? n->prefix[i] : n->items;
                    if (!it) { c = RX_INF; break; }
                    c += it->cost + (i > 0);
                    if (it->depth + 1 > d) d = it->depth + 1;
                }
            } else {
                c = 2; d = 1;
                int nk = 0;
                for (int p = 0; p < n->nprops && c < RX_INF; p++) {
                    if (!(n->required >> p & 1)) continue;
                    c += (int)strlen(n->keys[p]) + 1 + n->props[p]->cost + (nk++ > 0);
                    if (n->props[p]->depth + 1 > d) d = n->props[p]->depth + 1;
                }
                for (int p = 0; p < n->nprops && nk < n->min_props && c < RX_INF; p++) {
                    if (n->required >> p & 1) continue;
                    c += (int)strlen(n->keys[p]) + 1 + n->props[p]->cost + (nk++ > 0);
                    if (n->props[p]->depth + 1 > d) d = n->props[p]->depth + 1;
                }
            }
            if (c > RX_INF) c = RX_INF;
            if (c < cost) { cost = c; depth = d; ct = t; }
        }
    }
    if (cost > RX_INF) cost = RX_INF;
    if (cost == n->cost && depth == n->depth && ca == n->close_alt && ct == n->close_type) return 0;
    n->cost = cost; n->depth = depth; n->close_alt = ca; n->close_type = ct;
    return 1;
}

static int finish(k2c_schema *s, const char *where) {
    for (int i = 0; i < s->nall; i++) { s->all[i]->cost = RX_INF; s->all[i]->depth = RX_INF; s->all[i]->close_alt = -2; }
    int changed = 1;
    for (int it = 0; changed && it < s->nall + 2; it++) {
        changed = 0;
        for (int i = s->nall - 1; i >= 0; i--) changed |= relax(s->all[i]);
    }
    if (s->root->cost >= RX_INF) { k2c_seterr("%s: the schema has no finite instance (a required recursion?)", where); return -1; }
    return 0;
}

k2c_schema *k2c_schema_compile(const char *schema_json, const char *where) {
    json_error_t e;
    json_t *j = json_loads(schema_json, JSON_DECODE_ANY, &e);
    if (!j) { k2c_seterr("%s: invalid JSON: %s", where, e.text); return NULL; }
    k2c_schema *s = k2c_schema_compile_json(j, where);
    json_decref(j);
    return s;
}

k2c_schema *k2c_schema_compile_json(void *jv, const char *where) {
    json_t *json = jv;
    k2c_schema *s = calloc(1, sizeof *s);
    ctx *c = calloc(1, sizeof *c);
    if (!s || !c) { free(s); free(c); k2c_seterr("out of memory"); return NULL; }
    c->s = s;
    c->root = json;
    if (!json_is_object(json) && !json_is_true(json)) { k2c_seterr("%s: a schema must be an object", where); s->root = NULL; }
    else s->root = compile(c, json, where, 0, NULL);
    for (int i = 0; i < c->nmemo; i++) free(c->memo[i].ref);
    free(c);
    if (!s->root || finish(s, where)) { k2c_schema_free(s); return NULL; }
    return s;
}

const char *k2c_schema_warnings(const k2c_schema *s) { return s ? s->warnings : NULL; }

void k2c_schema_free(k2c_schema *s) {
    if (!s) return;
    for (int i = 0; i < s->nall; i++) {
        gnode *n = s->all[i];
        for (int k = 0; k < n->nlits; k++) free(n->lits[k]);
        for (int k = 0; k < n->nprops; k++) free(n->keys[k]);
        for (int k = 0; k < n->nrx; k++) k2c_regex_free(n->rx[k]);
        free(n->lits); free(n->keys); free(n->props); free(n->alts); free(n->prefix); free(n);
    }
    free(s->all);
    free(s->warnings);
    free(s);
}
