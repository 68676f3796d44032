/* The byte-level matcher over a compiled schema (schema.c), for constrained decoding.
 *
 * A state (k2c_gram) is a small set of branches; a branch is a fixed-size stack of frames, one per value
 * being written. Most schemas keep one branch: only anyOf / oneOf alternatives, and an object that allows
 * both declared and undeclared keys, fork one (when the value or key starts), and a branch dies at the
 * first byte it rejects. Identical branches (alternatives that agree on what is left) merge. Trying a
 * candidate token is: copy the live part of the state, feed the token's bytes, see if a branch survives.
 *
 * The language is compact JSON (no whitespace) valid under the schema, with choices that keep every
 * accepted prefix completable:
 *  - declared keys each at most once; an undeclared key (additionalProperties schema) never spells a
 *    declared one; objects close only after every required key and minProperties keys;
 *  - strings are valid UTF-8 (no overlongs, no surrogates), no raw control characters, JSON's escapes
 *    only, \u escapes outside D800-DFFF; lengths count code points; patterns and formats run on the
 *    decoded code points, and a byte is refused as soon as no completion can satisfy the pattern and the
 *    length bounds together (a partial UTF-8 character or \u escape is checked against the classes);
 *  - numbers are bounded in length (15 significant digits, 2 exponent digits) so every parser reads
 *    them as finite doubles; integers with minimum / maximum / multipleOf: a digit is allowed only if
 *    some continuation lands in range on a multiple; a "number" with bounds: decimals of at most 12
 *    digits, no exponent, each digit allowed only if some completion parses to a value in range;
 *  - enum / const values match their compact serialization; uniqueItems over them is exact.
 * A frame is pushed only if the frames its cheapest instance needs still fit, so k2c_gram_close (the
 * greedy minimal completion of the shortest branch) always finishes, also in recursive schemas. */
#include "text/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRAM_DEPTH 64
#define MAXB 16
#define NUM_MAX_DIGITS 15
#define DEC_MAX_DIGITS 12   /* bounded decimals: every such text is an exact grid the checks below can walk */

enum { F_VALUE, F_OBJ, F_ARR, F_STR, F_NUM, F_LIT, F_KEY, F_KEYSEL };
enum { O_START, O_KEY_DONE, O_VALUE_DONE, O_COMMA, O_IN_VALUE };
enum { A_START, A_VALUE_DONE, A_COMMA };
enum { S_NORMAL, S_ESC, S_U1, S_U2, S_U3, S_U4 };
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };
enum { OK = 0, REJECT = -1, FORK = 1 };

typedef struct {
    const gnode *n;
    uint64_t mask;          /* literal / key candidates; object: declared keys seen; free key: declared keys it still spells */
    uint64_t used;          /* uniqueItems array: literal indexes written */
    uint64_t num;           /* number: magnitude so far */
    uint64_t rx[GN_MAX_RX][RX_WORDS];
    uint32_t count;         /* code points (string), items (array), bytes matched (literal / key), keys (object) */
    uint32_t cp;            /* string: the code point being decoded */
    uint16_t kpos;          /* free key: raw bytes compared with the declared keys */
    int16_t key;            /* object: the declared key being written, -1 an undeclared one */
    uint64_t frac;          /* decimal-mode number: the fraction digits so far, as an integer (fdig of them) */
    uint8_t kind, st, need, lo, hi, is_key, digits, edigits, intonly, neg, ulen;   /* ulen: bytes of the UTF-8 character */
    uint8_t dec, fdig;      /* dec: a bounded "number" written with decimals (digits counts its integer part) */
} frame;

typedef struct {
    int depth, done;
    frame f[GRAM_DEPTH];
} branch;

struct k2c_gram {
    int nb;
    branch b[MAXB];
};

static const gnode plain_string = {.kind = GN_TYPES, .types = T_STR, .max_len = -1, .max_items = -1, .max_props = -1, .cost = 2, .depth = 1};
static char *const keywords[3] = {"true", "false", "null"};

static void frame_init(frame *f, int kind, const gnode *n) {
    memset(f, 0, sizeof *f);
    f->kind = (uint8_t)kind;
    f->n = n;
    f->key = -1;
}

k2c_gram *k2c_gram_new(const k2c_schema *s) {
    k2c_gram *g = malloc(sizeof *g);
    if (!g) { k2c_seterr("out of memory"); return NULL; }
    k2c_gram_reset(g, s);
    return g;
}

void k2c_gram_reset(k2c_gram *g, const k2c_schema *s) {
    g->nb = 1;
    g->b[0].depth = 1;
    g->b[0].done = 0;
    frame_init(&g->b[0].f[0], F_VALUE, s->root);
}

void k2c_gram_free(k2c_gram *g) { free(g); }

static void branch_copy(branch *d, const branch *s) {
    d->depth = s->depth;
    d->done = s->done;
    memcpy(d->f, s->f, (size_t)s->depth * sizeof s->f[0]);
}

/* Only the live frames are copied: this is the hot path of token checking. */
void k2c_gram_copy(k2c_gram *dst, const k2c_gram *src) {
    dst->nb = src->nb;
    for (int i = 0; i < src->nb; i++) branch_copy(&dst->b[i], &src->b[i]);
}

size_t k2c_gram_size(void) { return sizeof(k2c_gram); }

/* A frame for node n fits if the frames n's cheapest instance needs still fit. */
static int push(branch *b, const frame *fr) {
    int need = fr->kind == F_VALUE && fr->n->depth < RX_INF ? fr->n->depth : 1;
    if (b->depth + need > GRAM_DEPTH) return -1;
    b->f[b->depth++] = *fr;
    return 0;
}

static int lit_len_match(const frame *f, char *const *lits, int nlits) {   /* a candidate ends exactly here */
    for (int i = 0; i < nlits; i++)
        if ((f->mask >> i & 1) && strlen(lits[i]) == f->count) return i;
    return -1;
}

static const gnode *item_node(const gnode *n, uint32_t i) { return (int)i < n->nprefix ? n->prefix[i] : n->items; }

static int more_items(const frame *f) {   /* may another item follow? */
    const gnode *n = f->n;
    if (n->max_items >= 0 && (int)f->count >= n->max_items) return 0;
    if (!item_node(n, f->count)) return 0;
    if (n->uniq && __builtin_popcountll(f->used) >= n->items->nlits) return 0;
    return 1;
}

static uint64_t all_keys(const gnode *n) { return n->nprops >= 64 ? ~0ull : (1ull << n->nprops) - 1; }

static int more_keys(const frame *f) {   /* may another key follow? */
    const gnode *n = f->n;
    if (n->max_props >= 0 && (int)f->count >= n->max_props) return 0;
    return (all_keys(n) & ~f->mask) || n->extra;
}

static int obj_can_close(const frame *f) { return (f->n->required & ~f->mask) == 0 && (int)f->count >= f->n->min_props; }

/* The top frame finished: pop it and tell the parent (which may still refuse it). */
static int pop_done(branch *b) {
    frame *c = &b->f[--b->depth];
    if (b->depth == 0) { b->done = 1; return OK; }
    frame *p = &b->f[b->depth - 1];
    if (p->kind == F_OBJ) {
        if (c->kind == F_KEY) { p->st = O_KEY_DONE; p->key = (int16_t)__builtin_ctzll(c->mask); p->count++; }
        else if (c->is_key) { p->st = O_KEY_DONE; p->key = -1; p->count++; }
        else p->st = O_VALUE_DONE;
    } else if (p->kind == F_ARR) {
        if (p->n->uniq && c->kind == F_LIT && c->n) {
            int i = lit_len_match(c, c->n->lits, c->n->nlits);
            if (i < 0 || (p->used >> i & 1)) return REJECT;
            p->used |= 1ull << i;
        }
        p->count++;
        p->st = A_VALUE_DONE;
    }
    return OK;
}

static int step(branch *b, unsigned char c);

/* ---- numbers ---- */
/* Can a number that starts with k digits of magnitude p (sign neg) still end inside [lo, hi] on a
 * multiple? Its values are p * 10^j .. p * 10^j + 10^j - 1 for every j that keeps it within
 * NUM_MAX_DIGITS digits; "0" cannot grow. */
static int num_feasible(const gnode *n, int neg, uint64_t p, int k) {
    if (!n->bounded) return 1;
    double pw = 1;
    for (int j = 0; k + j <= NUM_MAX_DIGITS; j++, pw *= 10) {
        double a = p ? (double)p * pw : 0, bb = p ? a + pw - 1 : 0;
        double x = neg ? -bb : a, y = neg ? -a : bb;
        if (x < n->lo) x = n->lo;
        if (y > n->hi) y = n->hi;
        if (x <= y && (n->mult <= 0 || floor(y / n->mult) * n->mult >= x)) return 1;
        if (!p) break;
    }
    return 0;
}

static int num_in_range(const frame *f) {
    const gnode *n = f->n;
    if (!n->bounded) return 1;
    double v = f->neg ? -(double)f->num : (double)f->num;
    return v >= n->lo && v <= n->hi && (n->mult <= 0 || fmod(fabs(v), n->mult) == 0);
}

static int num_start_ok(const gnode *n, int neg) {
    for (int d = 0; d <= 9; d++) if (num_feasible(n, neg, (uint64_t)d, 1)) return 1;
    return 0;
}

/* ---- bounded decimals ----
 * A prefix of at most DEC_MAX_DIGITS digits can still become exactly the values (U + k) / 10^fd,
 * 0 <= k < count, for a few (U, fd, count) grids (one per length of the integer part). A value is in
 * range when the text of it, parsed as a validator parses it (strtod: correctly rounded, like JSON.parse),
 * passes the bounds; the values in range form one run of k, so its first k decides. Exact, hence no
 * prefix is accepted that no completion can satisfy. */
static const uint64_t pow10u[] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
                                  1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull};

static double dec_value(int neg, uint64_t units, int fd) {   /* -/+ units / 10^fd, as a parser reads its text */
    char t[48];
    uint64_t ip = units / pow10u[fd], fp = units % pow10u[fd];
    if (fd) snprintf(t, sizeof t, "%s%llu.%0*llu", neg ? "-" : "", (unsigned long long)ip, fd, (unsigned long long)fp);
    else snprintf(t, sizeof t, "%s%llu", neg ? "-" : "", (unsigned long long)ip);
    return strtod(t, NULL);
}

static int dec_low_ok(const gnode *n, double v) { return n->exlo ? v > n->flo : v >= n->flo; }
static int dec_high_ok(const gnode *n, double v) { return n->exhi ? v < n->fhi : v <= n->fhi; }

/* Is some k in [0, count) with value (U + k) / 10^fd (sign neg) in range? In magnitudes the range is
 * [mlo, mhi]; the first k at or above mlo is found from an estimate (exact to within a unit: the units
 * stay below 10^13) and checked against the text's parsed value. */
static int dec_grid_hits(const gnode *n, int neg, uint64_t U, int fd, uint64_t count) {
    double mlo = neg ? -n->fhi : n->flo, mhi = neg ? -n->flo : n->fhi, scale = (double)pow10u[fd];
    double lo_u = mlo == -INFINITY ? -INFINITY : mlo * scale;
    if (lo_u > (double)(U + count) + 2 || (mhi != INFINITY && mhi * scale < (double)U - 2)) return 0;
    double kd = lo_u <= (double)U ? 0 : floor(lo_u - (double)U) - 2;
    uint64_t k = kd <= 0 ? 0 : (uint64_t)kd;
    for (int guard = 0; k < count && guard < 8; k++, guard++) {
        double v = dec_value(neg, U + k, fd);
        if (!(neg ? dec_high_ok(n, v) : dec_low_ok(n, v))) continue;   /* still below the range, in magnitude */
        return neg ? dec_low_ok(n, v) : dec_high_ok(n, v);
    }
    return 0;
}

/* Can the decimal prefix (sign, integer part p of k digits, [".", fraction F of m digits]) still end in range? */
static int dec_feasible(const gnode *n, int neg, uint64_t p, int k, int in_frac, uint64_t F, int m) {
    int r = DEC_MAX_DIGITS - k - m;
    if (r < 0) return 0;
    if (in_frac) {
        if (m == 0 && r == 0) return 0;   /* "p." needs a digit */
        uint64_t U = (p * pow10u[m] + F) * pow10u[r];
        return dec_grid_hits(n, neg, U, m + r, pow10u[r]);
    }
    if (p == 0) return dec_grid_hits(n, neg, 0, r, pow10u[r]);   /* "0" only takes a fraction */
    for (int j = 0; j <= r; j++)   /* j more integer digits, then r - j fraction digits */
        if (dec_grid_hits(n, neg, p * pow10u[r], r - j, pow10u[r])) return 1;
    return 0;
}

static int dec_complete_ok(const frame *f) {   /* the number as written, in range */
    if (f->st != N_ZERO && f->st != N_INT && f->st != N_FRAC) return 0;
    int fd = f->st == N_FRAC ? f->fdig : 0;
    double v = dec_value(f->neg, f->num * pow10u[fd] + (fd ? f->frac : 0), fd);
    return dec_low_ok(f->n, v) && dec_high_ok(f->n, v);
}

/* A decimal-mode number takes a byte; as feed_num, minus exponents, every digit kept feasible. */
static int feed_dec(branch *b, frame *f, unsigned char c) {
    const gnode *n = f->n;
    int digit = c >= '0' && c <= '9';
    uint64_t d = digit ? (uint64_t)(c - '0') : 0;
    switch (f->st) {
    case N_MINUS:
        if (!digit || !dec_feasible(n, f->neg, d, 1, 0, 0, 0)) return REJECT;
        f->num = d; f->digits = 1; f->st = d ? N_INT : N_ZERO;
        return OK;
    case N_ZERO: case N_INT:
        if (digit && f->st == N_INT) {
            if (!dec_feasible(n, f->neg, f->num * 10 + d, f->digits + 1, 0, 0, 0)) return REJECT;
            f->num = f->num * 10 + d; f->digits++;
            return OK;
        }
        if (c == '.') {
            if (!dec_feasible(n, f->neg, f->num, f->digits, 1, 0, 0)) return REJECT;
            f->st = N_DOT; f->frac = 0; f->fdig = 0;
            return OK;
        }
        if (digit) return REJECT;   /* after a leading 0 */
        break;
    case N_DOT: case N_FRAC:
        if (digit) {
            if (!dec_feasible(n, f->neg, f->num, f->digits, 1, f->frac * 10 + d, f->fdig + 1)) return REJECT;
            f->frac = f->frac * 10 + d; f->fdig++; f->st = N_FRAC;
            return OK;
        }
        if (f->st == N_DOT) return REJECT;
        break;
    default: return REJECT;
    }
    /* the number is complete and c belongs to the parent */
    if (!dec_complete_ok(f)) return REJECT;
    if (pop_done(b) != OK || b->done) return REJECT;
    return step(b, c);
}

/* ---- strings ---- */
static int str_has_rx(const frame *f) { return f->n && f->n->nrx; }

/* Can a character in [lo, hi] come next (maxLength, patterns)? */
static int str_room(const frame *f, uint32_t lo, uint32_t hi) {
    const gnode *n = f->n;
    if (n->max_len >= 0 && (int)f->count >= n->max_len) return 0;
    /* after this character: at most maxrem more (maxLength), at least minrem more possible (minLength) */
    int have = (int)f->count + 1, maxrem = n->max_len >= 0 ? n->max_len - have : RX_INF, minrem = n->min_len - have;
    for (int r = 0; r < n->nrx; r++) if (!k2c_regex_can(n->rx[r], f->rx[r], f->count == 0, lo, hi, maxrem, minrem)) return 0;
    return 1;
}

/* A whole code point: step the patterns, count it, and refuse it if the bounds become unreachable. */
static int str_emit(frame *f, uint32_t cp) {
    const gnode *n = f->n;
    if (n->max_len >= 0 && (int)f->count >= n->max_len) return REJECT;
    uint64_t next[GN_MAX_RX][RX_WORDS];
    for (int r = 0; r < n->nrx; r++) {
        if (!k2c_regex_step(n->rx[r], f->rx[r], f->count == 0, cp, next[r])) return REJECT;
        int mind, maxd, have = (int)f->count + 1;
        k2c_regex_span(n->rx[r], next[r], 0, &mind, &maxd);
        if (mind >= RX_INF) return REJECT;
        if (n->max_len >= 0 && have + mind > n->max_len) return REJECT;
        if (maxd != RX_INF && have + maxd < n->min_len) return REJECT;
    }
    memcpy(f->rx, next, (size_t)n->nrx * sizeof next[0]);
    f->count++;
    return OK;
}

/* The code points a partial UTF-8 character can still become: the payload so far, any continuation,
 * and no overlong form (the least code point of its length). */
static int str_partial_ok(const frame *f) {
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t lo = f->cp << (6 * f->need), hi = lo | ((1u << (6 * f->need)) - 1);
    if (lo < least[f->ulen]) lo = least[f->ulen];
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (lo > hi) return 0;
    return str_room(f, lo, hi);
}

static int str_can_end(const frame *f) {
    const gnode *n = f->n;
    if ((int)f->count < n->min_len) return 0;
    for (int r = 0; r < n->nrx; r++) if (!k2c_regex_accepting(n->rx[r], f->rx[r], f->count == 0)) return 0;
    return 1;
}

static int hexv(unsigned char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int feed_str(branch *b, frame *f, unsigned char c) {
    if (f->is_key && b->depth >= 2 && b->f[b->depth - 2].kind == F_OBJ) {
        /* an undeclared key must not spell a declared one (it would be validated as that one) */
        const gnode *o = b->f[b->depth - 2].n;
        if (c == '"' && f->st == S_NORMAL && !f->need) {
            for (int k = 0; k < o->nprops; k++)
                if ((f->mask >> k & 1) && strlen(o->keys[k]) == (size_t)f->kpos + 1u) return REJECT;
        }
        uint64_t m = 0;
        for (int k = 0; k < o->nprops; k++)
            if ((f->mask >> k & 1) && strlen(o->keys[k]) > f->kpos && (unsigned char)o->keys[k][f->kpos] == c) m |= 1ull << k;
        f->mask = m;
        if (f->kpos < 60000) f->kpos++;
    }
    if (f->need) {
        if (c < f->lo || c > f->hi) return REJECT;
        f->cp = f->cp << 6 | (c & 0x3F);
        f->lo = 0x80; f->hi = 0xBF;
        f->need--;
        if (!f->need) return str_emit(f, f->cp);
        if (str_has_rx(f) && !str_partial_ok(f)) return REJECT;
        return OK;
    }
    switch (f->st) {
    case S_NORMAL:
        if (c == '"') return str_can_end(f) ? pop_done(b) : REJECT;
        if (c == '\\') {   /* an escape writes a character of the BMP (\uXXXX) */
            if (!str_room(f, 0, 0xFFFF)) return REJECT;
            f->st = S_ESC;
            return OK;
        }
        if (c < 0x20) return REJECT;
        if (c < 0x80) return str_emit(f, c);
        f->lo = 0x80; f->hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) { f->need = 1; f->cp = c & 0x1F; }
        else if (c == 0xE0) { f->need = 2; f->lo = 0xA0; f->cp = 0; }
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) { f->need = 2; f->cp = c & 0x0F; }
        else if (c == 0xED) { f->need = 2; f->hi = 0x9F; f->cp = 0xD; }
        else if (c == 0xF0) { f->need = 3; f->lo = 0x90; f->cp = 0; }
        else if (c >= 0xF1 && c <= 0xF3) { f->need = 3; f->cp = c & 0x07; }
        else if (c == 0xF4) { f->need = 3; f->hi = 0x8F; f->cp = 4; }
        else return REJECT;
        f->ulen = (uint8_t)(f->need + 1);
        return str_partial_ok(f) ? OK : REJECT;
    case S_ESC: {
        static const char esc[] = "\"\\/bfnrt";
        static const uint32_t val[] = {'"', '\\', '/', 8, 12, 10, 13, 9};
        const char *p = c ? strchr(esc, c) : NULL;
        if (p) { f->st = S_NORMAL; return str_emit(f, val[p - esc]); }
        if (c == 'u') { f->st = S_U1; f->cp = 0; return OK; }
        return REJECT;
    }
    default: {   /* \uXXXX */
        int h = hexv(c);
        if (h < 0) return REJECT;
        f->cp = f->cp << 4 | (uint32_t)h;
        int left = S_U4 - f->st;   /* hex digits still to come */
        uint32_t lo = f->cp << (4 * left), hi = lo | ((1u << (4 * left)) - 1);
        if (lo >= 0xD800 && hi <= 0xDFFF) return REJECT;   /* a lone surrogate: strict parsers refuse it */
        if (!left) { f->st = S_NORMAL; return str_emit(f, f->cp); }
        if (!str_room(f, lo, hi)) return REJECT;
        f->st++;
        return OK;
    }
    }
}

/* ---- literals, numbers ---- */
static int feed_lit(branch *b, frame *f, unsigned char c, char *const *lits, int nlits) {
    uint64_t m = 0;
    for (int i = 0; i < nlits; i++)
        if ((f->mask >> i & 1) && strlen(lits[i]) > f->count && (unsigned char)lits[i][f->count] == c) m |= 1ull << i;
    if (!m) {
        /* nothing continues: if a candidate ended here (a number literal), the value is over */
        if (f->kind == F_LIT && lit_len_match(f, lits, nlits) >= 0) {
            int i = lit_len_match(f, lits, nlits);
            f->mask = 1ull << i;
            if (pop_done(b) != OK || b->done) return REJECT;
            return step(b, c);
        }
        return REJECT;
    }
    f->mask = m;
    f->count++;
    /* finished when no remaining candidate is longer (only one can end here, the texts being distinct) */
    int more = 0;
    for (int i = 0; i < nlits; i++) if ((m >> i & 1) && strlen(lits[i]) > f->count) more = 1;
    if (!more) return pop_done(b);
    return OK;
}

static int feed_num(branch *b, frame *f, unsigned char c) {
    int digit = c >= '0' && c <= '9';
    switch (f->st) {
    case N_MINUS:
        if (!digit || !num_feasible(f->n, 1, (uint64_t)(c - '0'), 1)) return REJECT;
        f->num = (uint64_t)(c - '0');
        f->st = c == '0' ? N_ZERO : N_INT;
        f->digits = 1;
        return OK;
    case N_ZERO: case N_INT:
        if (digit && f->st == N_INT && f->digits < NUM_MAX_DIGITS) {
            uint64_t p = f->num * 10 + (uint64_t)(c - '0');
            if (!num_feasible(f->n, f->neg, p, f->digits + 1)) return REJECT;
            f->num = p;
            f->digits++;
            return OK;
        }
        if (!f->intonly && c == '.' && f->digits < NUM_MAX_DIGITS) { f->st = N_DOT; return OK; }
        if (!f->intonly && (c == 'e' || c == 'E')) { f->st = N_E; return OK; }
        break;
    case N_DOT:
        if (digit) { f->st = N_FRAC; f->digits++; return OK; }
        return REJECT;
    case N_FRAC:
        if (digit && f->digits < NUM_MAX_DIGITS) { f->digits++; return OK; }
        if (c == 'e' || c == 'E') { f->st = N_E; return OK; }
        break;
    case N_E:
        if (c == '+' || c == '-') { f->st = N_ESIGN; return OK; }
        /* fall through */
    case N_ESIGN:
        if (digit) { f->st = N_EXP; f->edigits = 1; return OK; }
        return REJECT;
    case N_EXP:
        if (digit && f->edigits < 2) { f->edigits++; return OK; }
        break;
    }
    /* the number is complete and c belongs to the parent */
    if (f->st == N_MINUS || f->st == N_DOT || f->st == N_E || f->st == N_ESIGN) return REJECT;
    if ((f->st == N_ZERO || f->st == N_INT) && !num_in_range(f)) return REJECT;
    if (pop_done(b) != OK || b->done) return REJECT;   /* nothing may follow a top-level value */
    return step(b, c);
}

/* A fresh value frame takes its first byte: becomes an object/array/string/number/literal frame.
 * An alternative node cannot: the caller forks the branch, one per alternative. */
static int start_value(branch *b, frame *f, unsigned char c) {
    const gnode *n = f->n;
    if (n->kind == GN_ALT) return FORK;
    if (n->kind == GN_LITS) {
        uint64_t m = 0;
        for (int i = 0; i < n->nlits; i++) if ((unsigned char)n->lits[i][0] == c) m |= 1ull << i;
        if (b->depth >= 2 && b->f[b->depth - 2].kind == F_ARR && b->f[b->depth - 2].n->uniq) m &= ~b->f[b->depth - 2].used;
        if (!m) return REJECT;
        f->kind = F_LIT; f->mask = m; f->count = 0;
        return feed_lit(b, f, c, n->lits, n->nlits);
    }
    int t = n->types;
    if (c == '{' && (t & T_OBJ)) { f->kind = F_OBJ; f->st = O_START; f->mask = 0; f->count = 0; return OK; }
    if (c == '[' && (t & T_ARR)) { f->kind = F_ARR; f->st = A_START; f->count = 0; f->used = 0; return OK; }
    if (c == '"' && (t & T_STR)) {
        f->kind = F_STR; f->st = S_NORMAL; f->count = 0; f->need = 0;
        if (f->is_key && b->depth >= 2 && b->f[b->depth - 2].kind == F_OBJ) { f->mask = all_keys(b->f[b->depth - 2].n); f->kpos = 1; }
        return OK;
    }
    if ((c == '-' || (c >= '0' && c <= '9')) && (t & (T_INT | T_NUM)) && n->dec) {
        f->kind = F_NUM; f->dec = 1; f->neg = c == '-'; f->st = N_MINUS; f->digits = 0; f->fdig = 0; f->frac = 0;
        if (c == '-') {
            for (int d = 0; d <= 9; d++) if (dec_feasible(n, 1, (uint64_t)d, 1, 0, 0, 0)) return OK;
            return REJECT;
        }
        f->neg = 0;
        return feed_dec(b, f, c);   /* N_MINUS with neg 0: the first digit of a positive number */
    }
    if ((c == '-' || (c >= '0' && c <= '9')) && (t & (T_INT | T_NUM))) {
        if (c == '-' ? !num_start_ok(n, 1) : !num_feasible(n, 0, (uint64_t)(c - '0'), 1)) return REJECT;
        f->kind = F_NUM; f->intonly = !(t & T_NUM) || n->bounded; f->digits = 0; f->edigits = 0;
        f->neg = c == '-';
        f->num = c == '-' ? 0 : (uint64_t)(c - '0');
        if (c == '-') f->st = N_MINUS;
        else { f->st = c == '0' ? N_ZERO : N_INT; f->digits = 1; }
        return OK;
    }
    for (int w = 0; w < 3; w++) {
        if (c != (unsigned char)keywords[w][0] || !(t & (w < 2 ? T_BOOL : T_NULL))) continue;
        f->kind = F_LIT; f->mask = 1ull << w; f->count = 1;
        f->n = NULL;   /* a keyword literal: matched against keywords[] */
        return OK;
    }
    return REJECT;
}

static int step(branch *b, unsigned char c) {
    if (b->done || b->depth == 0) return REJECT;
    frame *f = &b->f[b->depth - 1];
    switch (f->kind) {
    case F_VALUE: return start_value(b, f, c);
    case F_KEYSEL: return FORK;
    case F_LIT:
        if (!f->n) return feed_lit(b, f, c, keywords, 3);
        return feed_lit(b, f, c, f->n->lits, f->n->nlits);
    case F_KEY: return feed_lit(b, f, c, f->n->keys, f->n->nprops);
    case F_STR: return feed_str(b, f, c);
    case F_NUM: return f->dec ? feed_dec(b, f, c) : feed_num(b, f, c);
    case F_ARR: {
        const gnode *n = f->n;
        if (f->st == A_START || f->st == A_COMMA) {
            if (c == ']' && f->st == A_START && (int)f->count >= n->min_items) return pop_done(b);
            if (!more_items(f)) return REJECT;
            frame v;
            frame_init(&v, F_VALUE, item_node(n, f->count));
            if (push(b, &v)) return REJECT;
            return step(b, c);
        }
        if (c == ',' && more_items(f)) { f->st = A_COMMA; return OK; }
        if (c == ']' && (int)f->count >= n->min_items) return pop_done(b);
        return REJECT;
    }
    case F_OBJ: {
        const gnode *n = f->n;
        switch (f->st) {
        case O_START: case O_COMMA: {
            if (c == '}' && f->st == O_START && obj_can_close(f)) return pop_done(b);
            if (c != '"' || !more_keys(f)) return REJECT;
            uint64_t m = all_keys(n) & ~f->mask;
            if (n->max_props >= 0 && (int)f->count >= n->max_props) return REJECT;
            frame k;
            if (m && n->extra) frame_init(&k, F_KEYSEL, n);
            else if (m) { frame_init(&k, F_KEY, n); k.mask = m; k.is_key = 1; }
            else { frame_init(&k, F_VALUE, n->keyschema ? n->keyschema : &plain_string); k.is_key = 1; }
            if (push(b, &k)) return REJECT;
            return step(b, c);
        }
        case O_KEY_DONE: {
            if (c != ':') return REJECT;
            const gnode *vn = f->key >= 0 ? n->props[f->key] : n->extra;
            if (f->key >= 0) f->mask |= 1ull << f->key;
            frame v;
            frame_init(&v, F_VALUE, vn);
            f->st = O_IN_VALUE;   /* until the value frame pops */
            return push(b, &v) ? REJECT : OK;
        }
        case O_VALUE_DONE:
            if (c == ',' && more_keys(f)) { f->st = O_COMMA; return OK; }
            if (c == '}' && obj_can_close(f)) return pop_done(b);
            return REJECT;
        default: return REJECT;
        }
    }
    }
    return REJECT;
}

/* Alternative i of the top frame (a forking value or key choice); 0 if it cannot be taken. */
static int nalts_of(const frame *f) { return f->kind == F_KEYSEL ? 2 : f->n->nalts; }

static int take_alt(branch *b, int i) {
    frame *f = &b->f[b->depth - 1];
    if (f->kind == F_KEYSEL) {
        const gnode *n = f->n;
        if (i == 0) { uint64_t m = all_keys(n) & ~b->f[b->depth - 2].mask; frame_init(f, F_KEY, n); f->mask = m; f->is_key = 1; }
        else { frame_init(f, F_VALUE, n->keyschema ? n->keyschema : &plain_string); f->is_key = 1; }
        return 1;
    }
    const gnode *a = f->n->alts[i];
    if (a->cost >= RX_INF || b->depth - 1 + (a->depth < RX_INF ? a->depth : 1) > GRAM_DEPTH) return 0;
    f->n = a;
    return 1;
}

static int branch_eq(const branch *x, const branch *y) {
    return x->depth == y->depth && x->done == y->done && !memcmp(x->f, y->f, (size_t)x->depth * sizeof x->f[0]);
}

/* One byte into every branch; forks expand in place, dead branches go, duplicates merge. */
static int feed1(k2c_gram *g, unsigned char c) {
    int n = g->nb, out = 0, forks = 0;
    for (int i = 0; i < n;) {
        branch *b = &g->b[i];
        int r = step(b, c);
        if (r == OK) {
            int dup = 0;
            for (int k = 0; k < out && !dup; k++) dup = branch_eq(&g->b[k], b);
            if (!dup) { if (out != i) branch_copy(&g->b[out], b); out++; }
            i++;
            continue;
        }
        if (r == FORK && forks++ < 4 * MAXB) {
            int na = nalts_of(&b->f[b->depth - 1]);
            for (int a = 0; a < na; a++) {
                if (n == MAXB && out < i) {   /* make room: move the unprocessed branches down */
                    for (int k = i; k < n; k++) branch_copy(&g->b[out + k - i], &g->b[k]);
                    n = out + (n - i);
                    i = out;
                    b = &g->b[i];
                }
                if (n == MAXB) break;   /* the cap drops the latest alternatives: the language only shrinks */
                branch_copy(&g->b[n], b);
                if (take_alt(&g->b[n], a)) n++;
            }
        }
        i++;
    }
    g->nb = out;
    return out ? 0 : -1;
}

int k2c_gram_feed(k2c_gram *g, const char *bytes, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (feed1(g, (unsigned char)bytes[i]) != 0) return -1;
    return 0;
}

int k2c_gram_done(const k2c_gram *g) {
    for (int i = 0; i < g->nb; i++) if (g->b[i].done) return 1;
    return 0;
}

/* Could the value end here? Done, or a top-level number / number literal in a complete state. */
static int branch_accepting(const branch *b) {
    if (b->done) return 1;
    if (b->depth != 1) return 0;
    const frame *f = &b->f[0];
    if (f->kind == F_NUM && f->dec) return dec_complete_ok(f);
    if (f->kind == F_NUM)
        return ((f->st == N_ZERO || f->st == N_INT) && num_in_range(f)) || (!f->n->bounded && (f->st == N_FRAC || f->st == N_EXP));
    if (f->kind == F_LIT && f->n) return lit_len_match(f, f->n->lits, f->n->nlits) >= 0;
    return 0;
}

int k2c_gram_accepting(const k2c_gram *g) {
    for (int i = 0; i < g->nb; i++) if (branch_accepting(&g->b[i])) return 1;
    return 0;
}

void k2c_gram_first_bytes(const k2c_gram *g, uint8_t allowed[32]) {
    memset(allowed, 0, 32);
    k2c_gram *t = malloc(sizeof *t);
    if (!t) return;
    for (int c = 0; c < 256; c++) {
        k2c_gram_copy(t, g);
        if (feed1(t, (unsigned char)c) == 0) allowed[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    free(t);
}

/* ------------------------------------------------------------------ closing */
static const gnode *close_pick(const gnode *n) {   /* follow alternatives to the cheapest concrete node */
    for (int i = 0; i < 64 && n->kind == GN_ALT && n->close_alt >= 0; i++) n = n->alts[n->close_alt];
    return n;
}

static int close_byte_value(const gnode *n) {
    n = close_pick(n);
    if (n->kind == GN_ALT) return -1;
    if (n->kind == GN_LITS) return (unsigned char)n->lits[n->close_alt >= 0 ? n->close_alt : 0][0];
    switch (n->close_type) {
    case T_NULL: return 'n';
    case T_BOOL: return 't';
    case T_INT: case T_NUM:
        if (n->dec) {   /* the first digit (or '-') some in-range value starts with */
            for (int d = 0; d <= 9; d++) if (dec_feasible(n, 0, (uint64_t)d, 1, 0, 0, 0)) return '0' + d;
            return '-';
        }
        if (!n->bounded || num_feasible(n, 0, 0, 1)) return '0';
        for (int d = 1; d <= 9; d++) if (num_feasible(n, 0, (uint64_t)d, 1)) return '0' + d;
        return '-';
    case T_STR: return '"';
    case T_ARR: return '[';
    default: return '{';
    }
}

static int utf8_lead(uint32_t cp) {
    return cp < 0x80 ? (int)cp : cp < 0x800 ? (int)(0xC0 | cp >> 6) : cp < 0x10000 ? (int)(0xE0 | cp >> 12) : (int)(0xF0 | cp >> 18);
}

/* The byte that moves the top frame fastest toward completion (-1: the value can end here). */
static int close_byte(const branch *b) {
    const frame *f = &b->f[b->depth - 1];
    const gnode *n = f->n;
    switch (f->kind) {
    case F_VALUE: return close_byte_value(n);
    case F_KEYSEL: return '"';
    case F_LIT: {
        char *const *lits = n ? n->lits : keywords;
        int nl = n ? n->nlits : 3;
        for (int i = 0; i < nl; i++) if ((f->mask >> i & 1) && strlen(lits[i]) > f->count) return (unsigned char)lits[i][f->count];
        return -1;
    }
    case F_KEY: {
        /* a required key among the candidates first */
        int pick = -1;
        for (int i = 0; i < n->nprops; i++)
            if (f->mask >> i & 1) { if (pick < 0) pick = i; if (n->required >> i & 1) { pick = i; break; } }
        return pick < 0 ? -1 : (unsigned char)n->keys[pick][f->count];
    }
    case F_STR:
        if (f->need) return f->lo;
        if (f->st == S_ESC) return 'n';
        if (f->st >= S_U1) return '0';
        if (str_can_end(f)) return '"';
        if (n->nrx) {
            uint32_t cp;
            if (k2c_regex_close_char(n->rx[0], f->rx[0], f->count == 0, n->min_len - (int)f->count, &cp) == 0) {
                if (cp == '"' || cp == '\\') return '\\';
                if (cp < 0x20) return '\\';
                return utf8_lead(cp);
            }
        }
        return 'a';
    case F_NUM:
        if (f->dec) {
            /* ends when in range; else a fraction, whose digits the feasibility checks steer (the closer
             * falls back to the first feasible byte when the preferred one is refused) */
            if (dec_complete_ok(f)) return -1;
            if (f->st == N_MINUS) return '0';
            return f->st == N_ZERO || f->st == N_INT ? '.' : '5';
        }
        if (n->bounded && (f->st == N_MINUS || !num_in_range(f))) {
            /* the smallest digit that keeps the range reachable; the range check ends it */
            for (int d = 0; d <= 9; d++)
                if (num_feasible(n, f->neg, f->st == N_MINUS ? (uint64_t)d : f->num * 10 + (uint64_t)d,
                                 f->st == N_MINUS ? 1 : f->digits + 1)) return '0' + d;
            return -1;
        }
        if (f->st == N_MINUS || f->st == N_DOT || f->st == N_E || f->st == N_ESIGN) return '0';
        return -1;
    case F_ARR:
        if (f->st == A_VALUE_DONE) return (int)f->count < n->min_items ? ',' : ']';
        if (f->st == A_START && (int)f->count >= n->min_items) return ']';
        return close_byte_value(item_node(n, f->count));
    case F_OBJ:
        if (f->st == O_KEY_DONE) return ':';
        if (f->st == O_START || f->st == O_COMMA) return obj_can_close(f) && f->st == O_START ? '}' : '"';
        if (f->st == O_VALUE_DONE) return obj_can_close(f) ? '}' : ',';
        return -1;
    }
    return -1;
}

/* Feeds c into one branch, taking the cheapest alternative at every fork (the declared key at a key
 * choice). */
static int close_step(branch *b, unsigned char c) {
    for (int tries = 0; tries < 64; tries++) {
        int r = step(b, c);
        if (r != FORK) return r;
        /* the forking frame is on top and c is not consumed yet: choose, then step again */
        frame *f = &b->f[b->depth - 1];
        int alt = f->kind == F_KEYSEL ? 0 : f->n->close_alt;
        if (alt < 0 || !take_alt(b, alt)) return REJECT;
    }
    return REJECT;
}

/* The greedy completion of one branch into out (cap bytes); its length, or -1. */
static long close_branch(const branch *src, char *out, size_t cap) {
    branch *t = malloc(sizeof *t), *tmp = malloc(sizeof *tmp);
    if (!t || !tmp) { free(t); free(tmp); return -1; }
    branch_copy(t, src);
    size_t n = 0;
    long rc = -1;
    static const unsigned char fallback[] = "\"a0A_-.:/ Z9zn}]";
    for (int steps = 0; n + 1 < cap && steps < 1 << 16; steps++) {
        if (t->done || (t->depth == 1 && branch_accepting(t))) { rc = (long)n; break; }
        int c = close_byte(t);
        if (c < 0) {
            /* a number (or number literal) that can end: the parent's next byte ends it */
            branch_copy(tmp, t);
            if (pop_done(tmp) != OK) break;
            c = tmp->done ? -1 : close_byte(tmp);
            if (c < 0) break;
        }
        branch_copy(tmp, t);
        if (close_step(tmp, (unsigned char)c) != OK) {
            /* the preferred byte is refused (a pattern, a used literal): the first byte that is not */
            int found = 0;
            for (size_t k = 0; k < sizeof fallback - 1 && !found; k++) {
                branch_copy(tmp, t);
                if (close_step(tmp, fallback[k]) == OK) { c = fallback[k]; found = 1; }
            }
            for (int k = 0x20; k < 0x100 && !found; k++) {
                branch_copy(tmp, t);
                if (close_step(tmp, (unsigned char)k) == OK) { c = k; found = 1; }
            }
            if (!found) break;
        }
        branch_copy(t, tmp);
        out[n++] = (char)c;
    }
    free(t);
    free(tmp);
    return rc;
}

char *k2c_gram_close(const k2c_gram *g, size_t *len) {
    size_t cap = 1 << 16;
    char *best = NULL, *buf = malloc(cap);
    long bestn = -1;
    if (!buf) { k2c_seterr("out of memory"); return NULL; }
    for (int i = 0; i < g->nb; i++) {
        long n = close_branch(&g->b[i], buf, cap);
        if (n < 0 || (bestn >= 0 && n >= bestn)) continue;
        char *c = realloc(best, (size_t)n + 1);
        if (!c) { free(best); free(buf); k2c_seterr("out of memory"); return NULL; }
        best = c;
        memcpy(best, buf, (size_t)n);
        best[n] = 0;
        bestn = n;
    }
    free(buf);
    if (!best) { k2c_seterr("grammar: cannot close"); return NULL; }
    if (len) *len = (size_t)bestn;
    return best;
}
