/* JSON Schema "pattern" (the ECMA-262 regex subset schemas use) -> a position automaton over code points.
 *
 * The automaton is Glushkov's: one position per character class in the expanded pattern, and a state is
 * the set of positions the text read so far can end on (a bitset of RX_MAXPOS bits). It has no epsilon
 * moves, so one step is "the positions that follow the current ones and whose class holds the character",
 * and a string frame of the grammar carries the set as plain data (copied with the frame, no pointers).
 * Bounded repetition {m,n} is expanded by parsing the repeated atom again (fresh positions each time).
 *
 * ECMA patterns search: "a" matches any string containing an "a". Each top-level alternative therefore
 * gets "any character, any number of times" added in front unless it starts with ^, and behind unless it
 * ends with $. Anchors elsewhere, look-around, back-references, \b, \p{..} and flags are refused (the
 * caller turns that into a 400 naming the pattern): a pattern is enforced exactly or not accepted.
 *
 * For closing a string early and for length bounds, each position knows the fewest characters that lead
 * from it to acceptance (dist) and the most (maxdist, RX_INF when a loop is on the way). */
#include "text/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint64_t w[RX_WORDS]; } bits;

typedef struct {
    int nullable;
    bits first, last;
} frag;

typedef struct {
    const unsigned char *p, *end, *start;
    k2c_regex *rx;
    char *err; size_t errcap;
    int depth;
} parser;

static void b_or(bits *a, const bits *b) { for (int i = 0; i < RX_WORDS; i++) a->w[i] |= b->w[i]; }
static int b_has(const uint64_t *w, int i) { return (int)(w[i >> 6] >> (i & 63) & 1); }

static int fail(parser *ps, const char *msg) {
    snprintf(ps->err, ps->errcap, "%s at offset %ld", msg, (long)(ps->p - ps->start));
    return -1;
}

/* ---- character classes: sorted, merged ranges of code points ---- */
typedef struct { rx_range r[RX_MAXRANGES]; int n; } cls;

static int cls_add(cls *c, uint32_t lo, uint32_t hi) {
    if (c->n == RX_MAXRANGES) return -1;
    c->r[c->n].lo = lo; c->r[c->n].hi = hi; c->n++;
    return 0;
}

static int rcmp(const void *a, const void *b) {
    const rx_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void cls_norm(cls *c) {
    qsort(c->r, (size_t)c->n, sizeof c->r[0], rcmp);
    int m = 0;
    for (int i = 0; i < c->n; i++) {
        if (m && c->r[i].lo <= c->r[m - 1].hi + 1) { if (c->r[i].hi > c->r[m - 1].hi) c->r[m - 1].hi = c->r[i].hi; }
        else c->r[m++] = c->r[i];
    }
    c->n = m;
}

/* Complement within the scalar values (no surrogates: a JSON string written by the grammar has none). */
static int cls_negate(cls *c) {
    cls_norm(c);
    cls o = {.n = 0};
    uint32_t next = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->r[i].lo > next && cls_add(&o, next, c->r[i].lo - 1)) return -1;
        next = c->r[i].hi + 1;
    }
    if (next <= 0x10FFFF && cls_add(&o, next, 0x10FFFF)) return -1;
    *c = o;
    return 0;
}

static int cls_perl(cls *c, int k) {   /* \d \w \s and their negations */
    cls t = {.n = 0};
    int neg = k == 'D' || k == 'W' || k == 'S', rc = 0;
    switch (k | 0x20) {
    case 'd': rc = cls_add(&t, '0', '9'); break;
    case 'w': rc = cls_add(&t, '0', '9') || cls_add(&t, 'A', 'Z') || cls_add(&t, 'a', 'z') || cls_add(&t, '_', '_'); break;
    case 's':
        rc = cls_add(&t, 9, 13) || cls_add(&t, ' ', ' ') || cls_add(&t, 0xA0, 0xA0) || cls_add(&t, 0x1680, 0x1680) ||
             cls_add(&t, 0x2000, 0x200A) || cls_add(&t, 0x2028, 0x2029) || cls_add(&t, 0x202F, 0x202F) ||
             cls_add(&t, 0x205F, 0x205F) || cls_add(&t, 0x3000, 0x3000) || cls_add(&t, 0xFEFF, 0xFEFF);
        break;
    }
    if (rc || (neg && cls_negate(&t))) return -1;
    for (int i = 0; i < t.n; i++) if (cls_add(c, t.r[i].lo, t.r[i].hi)) return -1;
    return 0;
}

/* One UTF-8 code point of the pattern text. */
static int next_cp(parser *ps, uint32_t *cp) {
    const unsigned char *p = ps->p;
    if (p >= ps->end) return fail(ps, "unexpected end");
    int n = *p < 0x80 ? 1 : *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 0;
    if (!n || p + n > ps->end) return fail(ps, "invalid UTF-8");
    uint32_t v = n == 1 ? *p : (uint32_t)(*p & (0x7F >> n));
    for (int i = 1; i < n; i++) v = v << 6 | (p[i] & 0x3F);
    ps->p += n;
    *cp = v;
    return 0;
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int hex_n(parser *ps, int n, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        int h = ps->p < ps->end ? hexval(*ps->p) : -1;
        if (h < 0) return fail(ps, "bad hex escape");
        v = v << 4 | (uint32_t)h;
        ps->p++;
    }
    *out = v;
    return 0;
}

/* After a backslash: a class escape into c (returns 1), or a single code point into *cp (returns 0). */
static int escape(parser *ps, cls *c, uint32_t *cp) {
    if (ps->p >= ps->end) return fail(ps, "trailing backslash");
    int k = *ps->p++;
    switch (k) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        return cls_perl(c, k) ? fail(ps, "class too complex") : 1;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'v': *cp = '\v'; return 0;
    case '0': *cp = 0; return 0;
    case 'x': return hex_n(ps, 2, cp);
    case 'u':
        if (ps->p < ps->end && *ps->p == '{') {
            ps->p++;
            uint32_t v = 0;
            int nd = 0, h;
            while (ps->p < ps->end && (h = hexval(*ps->p)) >= 0 && nd < 6) { v = v << 4 | (uint32_t)h; ps->p++; nd++; }
            if (!nd || ps->p >= ps->end || *ps->p != '}' || v > 0x10FFFF) return fail(ps, "bad \\u{...} escape");
            ps->p++;
            *cp = v;
            return 0;
        }
        if (hex_n(ps, 4, cp)) return -1;
        if (*cp >= 0xD800 && *cp <= 0xDFFF) return fail(ps, "surrogate escapes are not supported");
        return 0;
    case 'b': case 'B': return fail(ps, "word boundaries (\\b, \\B) are not supported");
    case 'p': case 'P': return fail(ps, "Unicode property escapes (\\p{...}) are not supported");
    case 'c': return fail(ps, "control escapes (\\cX) are not supported");
    case 'k': return fail(ps, "named back-references are not supported");
    default:
        if (k >= '1' && k <= '9') return fail(ps, "back-references are not supported");
        if ((k >= 'a' && k <= 'z') || (k >= 'A' && k <= 'Z')) return fail(ps, "unknown escape");
        ps->p--;
        return next_cp(ps, cp);   /* \. \- \\ \/ ...: the character itself */
    }
}

static int class_body(parser *ps, cls *c) {   /* after '[' */
    int neg = 0;
    if (ps->p < ps->end && *ps->p == '^') { neg = 1; ps->p++; }
    int firstc = 1;
    for (;;) {
        if (ps->p >= ps->end) return fail(ps, "unterminated character class");
        if (*ps->p == ']' && !firstc) { ps->p++; break; }
        if (*ps->p == ']' && firstc) { ps->p++; break; }   /* [] matches nothing, [^] anything */
        firstc = 0;
        uint32_t lo;
        int r;
        if (*ps->p == '\\') { ps->p++; if ((r = escape(ps, c, &lo)) < 0) return -1; if (r == 1) continue; }
        else if (next_cp(ps, &lo)) return -1;
        uint32_t hi = lo;
        if (ps->p + 1 < ps->end && *ps->p == '-' && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') {
                ps->p++;
                cls dummy = {.n = 0};
                if ((r = escape(ps, &dummy, &hi)) < 0) return -1;
                if (r == 1) return fail(ps, "a class escape cannot end a range");
            } else if (next_cp(ps, &hi)) return -1;
            if (hi < lo) return fail(ps, "range out of order in character class");
        }
        if (cls_add(c, lo, hi)) return fail(ps, "character class too complex");
    }
    cls_norm(c);
    if (neg && cls_negate(c)) return fail(ps, "character class too complex");
    return 0;
}

/* A new position with class c. */
static int new_pos(parser *ps, const cls *c, frag *out) {
    k2c_regex *rx = ps->rx;
    if (rx->npos >= RX_MAXPOS) return fail(ps, "too long for the matcher (more than 256 character positions after expanding repetitions)");
    if (rx->nranges + c->n > RX_MAXPOOL) return fail(ps, "character classes too complex");
    int p = rx->npos++;
    rx->cls_off[p] = (uint16_t)rx->nranges;
    rx->cls_n[p] = (uint16_t)c->n;
    memcpy(rx->ranges + rx->nranges, c->r, (size_t)c->n * sizeof c->r[0]);
    rx->nranges += c->n;
    memset(out, 0, sizeof *out);
    out->first.w[p >> 6] = out->last.w[p >> 6] = 1ull << (p & 63);
    return 0;
}

static void link_follow(k2c_regex *rx, const bits *last, const bits *first) {
    for (int p = 0; p < rx->npos; p++)
        if (b_has(last->w, p)) for (int i = 0; i < RX_WORDS; i++) rx->follow[p][i] |= first->w[i];
}

static void cat(k2c_regex *rx, frag *a, const frag *b) {   /* a := a b */
    link_follow(rx, &a->last, &b->first);
    if (a->nullable) b_or(&a->first, &b->first);
    if (b->nullable) b_or(&a->last, &b->last);
    else a->last = b->last;
    a->nullable = a->nullable && b->nullable;
}

static int alt(parser *ps, frag *out, int top);

static int atom(parser *ps, frag *out) {
    if (++ps->depth > 64) return fail(ps, "nested too deeply");
    int c = *ps->p, rc;
    cls k = {.n = 0};
    if (c == '(') {
        ps->p++;
        if (ps->p < ps->end && *ps->p == '?') {
            if (ps->p + 1 < ps->end && ps->p[1] == ':') ps->p += 2;
            else if (ps->p + 2 < ps->end && ps->p[1] == '<' && ps->p[2] != '=' && ps->p[2] != '!') {
                while (ps->p < ps->end && *ps->p != '>') ps->p++;   /* a named group: the name is irrelevant */
                if (ps->p >= ps->end) return fail(ps, "unterminated group name");
                ps->p++;
            } else if (ps->p + 1 < ps->end && (ps->p[1] == '=' || ps->p[1] == '!' || ps->p[1] == '<'))
                return fail(ps, "look-around assertions are not supported");
            else return fail(ps, "this group syntax (inline flags?) is not supported");
        }
        if (alt(ps, out, 0)) return -1;
        if (ps->p >= ps->end || *ps->p != ')') return fail(ps, "missing )");
        ps->p++;
        rc = 0;
    } else if (c == '[') {
        ps->p++;
        rc = class_body(ps, &k) || new_pos(ps, &k, out);
    } else if (c == '.') {
        ps->p++;
        rc = cls_add(&k, '\n', '\n') || cls_add(&k, '\r', '\r') || cls_add(&k, 0x2028, 0x2029) || cls_negate(&k) || new_pos(ps, &k, out);
    } else if (c == '\\') {
        uint32_t cp;
        ps->p++;
        int r = escape(ps, &k, &cp);
        if (r < 0) return -1;
        if (r == 0 && cls_add(&k, cp, cp)) return -1;
        rc = new_pos(ps, &k, out);
    } else if (c == '^' || c == '$') {
        return fail(ps, "anchors (^, $) are supported only at the start and end of a top-level alternative");
    } else if (c == '*' || c == '+' || c == '?' || c == '{' || c == '}' || c == ']' || c == ')') {
        return fail(ps, "nothing to repeat / unbalanced bracket");
    } else {
        uint32_t cp;
        rc = next_cp(ps, &cp) || cls_add(&k, cp, cp) || new_pos(ps, &k, out);
    }
    ps->depth--;
    return rc ? -1 : 0;
}

static int number(parser *ps, int *out) {
    int v = 0, nd = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') { v = v * 10 + (*ps->p++ - '0'); if (v > 1000) return -1; nd++; }
    *out = v;
    return nd ? 0 : -1;
}

/* An atom with its quantifier. Repeats re-parse the atom's text so each copy has its own positions. */
static int piece(parser *ps, frag *out) {
    const unsigned char *start = ps->p;
    if (atom(ps, out)) return -1;
    const unsigned char *aend = ps->p;
    if (ps->p >= ps->end) return 0;
    int c = *ps->p, lo, hi;
    if (c == '*') { lo = 0; hi = -1; ps->p++; }
    else if (c == '+') { lo = 1; hi = -1; ps->p++; }
    else if (c == '?') { lo = 0; hi = 1; ps->p++; }
    else if (c == '{') {
        ps->p++;
        if (number(ps, &lo)) return fail(ps, "bad {m,n} quantifier");
        hi = lo;
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            if (ps->p < ps->end && *ps->p == '}') hi = -1;
            else if (number(ps, &hi) || hi < lo) return fail(ps, "bad {m,n} quantifier");
        }
        if (ps->p >= ps->end || *ps->p != '}') return fail(ps, "bad {m,n} quantifier");
        ps->p++;
    } else return 0;
    if (ps->p < ps->end && *ps->p == '?') ps->p++;   /* lazy: the same language */
    if (ps->p < ps->end && (*ps->p == '*' || *ps->p == '+' || *ps->p == '{')) return fail(ps, "nothing to repeat");
    const unsigned char *after = ps->p;
    /* copies: lo mandatory ones, then (hi - lo) optional ones, or a starred one when unbounded */
    int copies = hi < 0 ? (lo ? lo : 1) : hi;
    if (copies == 0) {   /* x{0}: matches the empty string only; the atom's positions just go unused */
        memset(out, 0, sizeof *out);
        out->nullable = 1;
        return 0;
    }
    frag acc = *out, cur = *out;
    for (int i = 0; i < copies; i++) {
        if (i > 0) {
            ps->p = start;
            const unsigned char *save_end = ps->end;
            ps->end = aend;
            int rc = atom(ps, &cur);
            ps->end = save_end;
            if (rc) return -1;
        }
        int optional = hi >= 0 ? i >= lo : 0;
        if (hi < 0 && i == copies - 1) {   /* the last copy loops */
            link_follow(ps->rx, &cur.last, &cur.first);
            if (lo == 0) cur.nullable = 1;
        }
        if (optional) cur.nullable = 1;
        if (i == 0) acc = cur;
        else cat(ps->rx, &acc, &cur);
    }
    /* x{lo,hi} with optional copies: "x?x?" accepts the same strings as nested options */
    *out = acc;
    ps->p = after;
    return 0;
}

static int catseq(parser *ps, frag *out, int top) {
    memset(out, 0, sizeof *out);
    out->nullable = 1;
    while (ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
        if (top && *ps->p == '$' && (ps->p + 1 == ps->end || ps->p[1] == '|')) break;
        frag f;
        if (piece(ps, &f)) return -1;
        cat(ps->rx, out, &f);
    }
    return 0;
}

static int any_star(parser *ps, frag *out) {
    cls k = {.n = 0};
    if (cls_negate(&k) || new_pos(ps, &k, out)) return -1;
    link_follow(ps->rx, &out->last, &out->first);
    out->nullable = 1;
    return 0;
}

static int alt(parser *ps, frag *out, int top) {
    memset(out, 0, sizeof *out);
    for (int first = 1;; first = 0) {
        frag f, pre, post;
        int anch_start = 0, anch_end = 0;
        if (top && ps->p < ps->end && *ps->p == '^') { anch_start = 1; ps->p++; }
        if (catseq(ps, &f, top)) return -1;
        if (top && ps->p < ps->end && *ps->p == '$') { anch_end = 1; ps->p++; }
        if (top && !anch_start) { if (any_star(ps, &pre)) return -1; cat(ps->rx, &pre, &f); f = pre; }
        if (top && !anch_end) { if (any_star(ps, &post)) return -1; cat(ps->rx, &f, &post); }
        if (first) *out = f;
        else { b_or(&out->first, &f.first); b_or(&out->last, &f.last); out->nullable |= f.nullable; }
        if (ps->p < ps->end && *ps->p == '|') { ps->p++; continue; }
        break;
    }
    return 0;
}

static int class_has(const k2c_regex *rx, int p, uint32_t lo, uint32_t hi) {   /* intersects [lo, hi] */
    const rx_range *r = rx->ranges + rx->cls_off[p];
    for (int i = 0; i < rx->cls_n[p]; i++) if (r[i].lo <= hi && r[i].hi >= lo) return 1;
    return 0;
}

/* Fewest / most characters from each position to acceptance. A position whose class is empty ("[]") can
 * never be matched: it reaches nothing, so a pattern that needs it matches nothing and is refused at compile
 * time (schema.c), rather than letting the matcher start a string it cannot finish. */
static int maxd(k2c_regex *rx, int p, uint8_t *color) {
    if (color[p] == 1) return RX_INF;   /* on the current path: a loop */
    if (color[p] == 2) return rx->maxdist[p];
    if (rx->cls_n[p] == 0) { color[p] = 2; rx->maxdist[p] = -1; return -1; }
    color[p] = 1;
    int best = b_has(rx->last.w, p) ? 0 : -1;
    for (int q = 0; q < rx->npos; q++) {
        if (!b_has(rx->follow[p], q)) continue;
        int d = maxd(rx, q, color);
        if (d >= 0 && d != RX_INF) d++;
        if (d > best) best = d;
    }
    color[p] = 2;
    rx->maxdist[p] = best;
    return best;
}

static void distances(k2c_regex *rx) {
    for (int p = 0; p < rx->npos; p++) rx->dist[p] = b_has(rx->last.w, p) && rx->cls_n[p] > 0 ? 0 : RX_INF;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int p = 0; p < rx->npos; p++)
            for (int q = 0; q < rx->npos && rx->cls_n[p] > 0; q++)
                if (b_has(rx->follow[p], q) && rx->dist[q] != RX_INF && rx->dist[q] + 1 < rx->dist[p]) { rx->dist[p] = rx->dist[q] + 1; changed = 1; }
    }
    uint8_t color[RX_MAXPOS] = {0};
    for (int p = 0; p < rx->npos; p++) maxd(rx, p, color);
}

k2c_regex *k2c_regex_compile(const char *pattern, char *err, size_t errcap) {
    k2c_regex *rx = calloc(1, sizeof *rx);
    if (!rx) { snprintf(err, errcap, "out of memory"); return NULL; }
    parser ps = {.p = (const unsigned char *)pattern, .start = (const unsigned char *)pattern, .end = (const unsigned char *)pattern + strlen(pattern), .rx = rx,
                 .err = err, .errcap = errcap};
    frag f;
    if (alt(&ps, &f, 1)) { free(rx); return NULL; }
    if (ps.p != ps.end) {
        snprintf(err, errcap, "%s at offset %ld", *ps.p == ')' ? "unbalanced )" : "anchor inside the pattern not supported",
                 (long)(ps.p - (const unsigned char *)pattern));
        free(rx);
        return NULL;
    }
    memcpy(rx->first, f.first.w, sizeof rx->first);
    memcpy(rx->last.w, f.last.w, sizeof rx->last.w);
    rx->nullable = f.nullable;
    distances(rx);
    return rx;
}

void k2c_regex_free(k2c_regex *rx) { free(rx); }

/* The positions a state may move to next: the start's firsts, or the follows of its positions. */
static void next_cands(const k2c_regex *rx, const uint64_t *s, int at_start, uint64_t *out) {
    if (at_start) { memcpy(out, rx->first, RX_WORDS * sizeof *out); return; }
    memset(out, 0, RX_WORDS * sizeof *out);
    for (int i = 0; i < RX_WORDS; i++)
        for (uint64_t w = s[i]; w; w &= w - 1) {
            int p = i * 64 + __builtin_ctzll(w);
            for (int k = 0; k < RX_WORDS; k++) out[k] |= rx->follow[p][k];
        }
}

int k2c_regex_step(const k2c_regex *rx, const uint64_t *s, int at_start, uint32_t cp, uint64_t *out) {
    uint64_t c[RX_WORDS];
    next_cands(rx, s, at_start, c);
    int any = 0;
    for (int i = 0; i < RX_WORDS; i++) {
        out[i] = 0;
        for (uint64_t w = c[i]; w; w &= w - 1) {
            int p = i * 64 + __builtin_ctzll(w);
            if (class_has(rx, p, cp, cp)) { out[i] |= 1ull << (p & 63); any = 1; }
        }
    }
    return any;
}

int k2c_regex_can(const k2c_regex *rx, const uint64_t *s, int at_start, uint32_t lo, uint32_t hi, int maxrem, int minrem) {
    uint64_t c[RX_WORDS];
    next_cands(rx, s, at_start, c);
    for (int i = 0; i < RX_WORDS; i++)
        for (uint64_t w = c[i]; w; w &= w - 1) {
            int p = i * 64 + __builtin_ctzll(w);
            if (rx->dist[p] > maxrem || (rx->maxdist[p] != RX_INF && rx->maxdist[p] < minrem)) continue;
            if (class_has(rx, p, lo, hi)) return 1;
        }
    return 0;
}

int k2c_regex_accepting(const k2c_regex *rx, const uint64_t *s, int at_start) {
    if (at_start) return rx->nullable;
    for (int i = 0; i < RX_WORDS; i++) if (s[i] & rx->last.w[i]) return 1;
    return 0;
}

void k2c_regex_span(const k2c_regex *rx, const uint64_t *s, int at_start, int *mind, int *maxdd) {
    int lo = RX_INF, hi = -1;
    if (at_start) {
        if (rx->nullable) { lo = 0; hi = 0; }
        for (int p = 0; p < rx->npos; p++)
            if (b_has(rx->first, p) && rx->dist[p] != RX_INF) {
                if (rx->dist[p] + 1 < lo) lo = rx->dist[p] + 1;
                int m = rx->maxdist[p] == RX_INF ? RX_INF : rx->maxdist[p] + 1;
                if (m > hi) hi = m;
            }
    } else {
        for (int p = 0; p < rx->npos; p++)
            if (b_has(s, p)) {
                if (rx->dist[p] < lo) lo = rx->dist[p];
                if (rx->maxdist[p] > hi) hi = rx->maxdist[p];
            }
    }
    *mind = lo; *maxdd = hi;
}

/* A character that moves toward acceptance: to a position at the least distance (or, when longer text is
 * needed, one from which at least `need` more characters are possible). Printable ASCII is preferred. */
int k2c_regex_close_char(const k2c_regex *rx, const uint64_t *s, int at_start, int need, uint32_t *cp) {
    uint64_t c[RX_WORDS];
    next_cands(rx, s, at_start, c);
    int best = -1, bestd = RX_INF + 1;
    for (int p = 0; p < rx->npos; p++) {
        if (!b_has(c, p) || rx->dist[p] == RX_INF) continue;
        if (need > 0 && rx->maxdist[p] != RX_INF && rx->maxdist[p] < need - 1) continue;
        if (rx->dist[p] < bestd) { bestd = rx->dist[p]; best = p; }
    }
    if (best < 0) return -1;
    const rx_range *r = rx->ranges + rx->cls_off[best];
    static const uint32_t pref[] = {'a', '0', 'A', '_', '-', '.', ' '};
    for (size_t i = 0; i < sizeof pref / sizeof pref[0]; i++)
        if (class_has(rx, best, pref[i], pref[i])) { *cp = pref[i]; return 0; }
    for (int i = 0; i < rx->cls_n[best]; i++) {
        uint32_t v = r[i].lo < 0x20 && r[i].hi >= 0x20 ? 0x20 : r[i].lo;   /* avoid control characters */
        if (v >= 0xD800 && v <= 0xDFFF) { if (r[i].hi > 0xDFFF) v = 0xE000; else continue; }
        *cp = v;
        return 0;
    }
    return -1;
}
