/* Tool-call parser: Kimi's tool-call section in the assistant's output -> content + OpenAI tool_calls.
 *
 *   TEXT <|tool_calls_section_begin|>
 *        <|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>{JSON}<|tool_call_end|> ...
 *   <|tool_calls_section_end|>
 *
 * The parser is fed text as it is decoded (specials appear as their text). Text that could be the start
 * of a marker is held back until the next piece decides, so no marker leaks into the content however the
 * pieces are cut (one byte at a time included). What the model gets wrong is flagged, never fatal, and
 * no text is dropped: the singular <|tool_call_section_begin|>, a call begun without a section, a call
 * or section never closed, arguments that are not a JSON object, text where only calls belong. */
#include "text/text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum { M_SECTION_BEGIN, M_SECTION_BEGIN_1, M_SECTION_END, M_SECTION_END_1, M_CALL_BEGIN, M_ARG_BEGIN, M_CALL_END, M_COUNT };
static const char *const marker[M_COUNT] = {
    "<|tool_calls_section_begin|>", "<|tool_call_section_begin|>", "<|tool_calls_section_end|>",
    "<|tool_call_section_end|>", "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>",
};

enum { S_CONTENT, S_SECTION, S_ID, S_ARGS };

typedef struct { char *s; size_t n, cap; } buf;

static int buf_add(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) { k2c_seterr("out of memory"); return -1; }
        b->s = ns;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

typedef struct { int index, first; size_t off, len; } delta_rec;

struct k2c_toolparse {
    int state, flags;
    buf pending;                /* fed but not yet consumed (a possible marker prefix) */
    buf content;                /* all content */
    buf idtext, args;           /* the call being read */
    buf sect_ws;                /* whitespace inside the section, held until the text between two markers */
    int sect_stray;             /* turns out to hold stray text (then all of it is content) or not */
    k2c_tool_call *calls;
    int ncalls, cap;
    int announced;              /* the current call's first delta went out */
    /* this feed's events */
    buf ev_content, ev_args;
    delta_rec *recs;
    int nrec, caprec;
    k2c_tool_delta *deltas;
    int capdelta;
    k2c_detok detok;
    int has_detok;
};

k2c_toolparse *k2c_toolparse_new(void) {
    k2c_toolparse *p = calloc(1, sizeof *p);
    if (!p) k2c_seterr("out of memory");
    return p;
}

void k2c_toolparse_free(k2c_toolparse *p) {
    if (!p) return;
    for (int i = 0; i < p->ncalls; i++) {
        free(p->calls[i].id);
        free(p->calls[i].name);
        free(p->calls[i].arguments);
    }
    free(p->calls);
    free(p->pending.s);
    free(p->content.s);
    free(p->idtext.s);
    free(p->args.s);
    free(p->sect_ws.s);
    free(p->ev_content.s);
    free(p->ev_args.s);
    free(p->recs);
    free(p->deltas);
    if (p->has_detok) k2c_detok_free(&p->detok);
    free(p);
}

int k2c_toolparse_ncalls(const k2c_toolparse *p) { return p->ncalls; }
const k2c_tool_call *k2c_toolparse_call(const k2c_toolparse *p, int i) {
    return i >= 0 && i < p->ncalls ? &p->calls[i] : NULL;
}
int k2c_toolparse_flags(const k2c_toolparse *p) { return p->flags; }
const char *k2c_toolparse_content(const k2c_toolparse *p, size_t *len) {
    if (len) *len = p->content.n;
    return p->content.s ? p->content.s : "";
}

static int emit_content(k2c_toolparse *p, const char *s, size_t n) {
    if (!n) return 0;
    return buf_add(&p->content, s, n) || buf_add(&p->ev_content, s, n) ? -1 : 0;
}

static int add_rec(k2c_toolparse *p, int index, int first, const char *s, size_t n) {
    if (p->nrec && !first && p->recs[p->nrec - 1].index == index &&
        p->recs[p->nrec - 1].off + p->recs[p->nrec - 1].len == p->ev_args.n) {
        p->recs[p->nrec - 1].len += n;      /* extend the previous delta of the same call */
        return buf_add(&p->ev_args, s, n);
    }
    if (p->nrec == p->caprec) {
        int cap = p->caprec ? p->caprec * 2 : 8;
        delta_rec *nr = realloc(p->recs, (size_t)cap * sizeof *nr);
        if (!nr) { k2c_seterr("out of memory"); return -1; }
        p->recs = nr;
        p->caprec = cap;
    }
    p->recs[p->nrec++] = (delta_rec){index, first, p->ev_args.n, n};
    return buf_add(&p->ev_args, s, n);
}

/* The call being read is announced (id + name known) when its arguments begin. */
static int call_open(k2c_toolparse *p) {
    if (p->ncalls == p->cap) {
        int cap = p->cap ? p->cap * 2 : 4;
        k2c_tool_call *nc = realloc(p->calls, (size_t)cap * sizeof *nc);
        if (!nc) { k2c_seterr("out of memory"); return -1; }
        p->calls = nc;
        p->cap = cap;
    }
    k2c_tool_call *c = &p->calls[p->ncalls];
    memset(c, 0, sizeof *c);
    c->index = p->ncalls;
    /* id: trimmed text; name: between the first '.' and the following ':'; IDX: digits */
    const char *s = p->idtext.s ? p->idtext.s : "";
    size_t n = p->idtext.n;
    while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    c->id = strndup(s, n);
    const char *dot = memchr(s, '.', n);
    const char *ns = dot ? dot + 1 : s;
    const char *colon = memchr(ns, ':', (size_t)(s + n - ns));
    const char *ne = colon ? colon : s + n;
    c->name = strndup(ns, (size_t)(ne - ns));
    int ok = dot && colon && colon + 1 < s + n && ne > ns;
    for (const char *q = colon ? colon + 1 : s; ok && q < s + n; q++) ok = *q >= '0' && *q <= '9';
    if (!ok) c->flags |= K2C_TC_BAD_ID;
    if (!c->id || !c->name) { free(c->id); free(c->name); k2c_seterr("out of memory"); return -1; }
    p->ncalls++;
    p->announced = 1;
    p->args.n = 0;
    return add_rec(p, c->index, 1, "", 0);
}

/* The current call ends (flags: why, beyond a proper <|tool_call_end|>). */
static int call_close(k2c_toolparse *p, int flags) {
    if (!p->announced && call_open(p) != 0) return -1;
    k2c_tool_call *c = &p->calls[p->ncalls - 1];
    c->arguments = strndup(p->args.s ? p->args.s : "", p->args.n);
    if (!c->arguments) { k2c_seterr("out of memory"); return -1; }
    json_t *j = json_loadb(c->arguments, p->args.n, JSON_DECODE_ANY, NULL);
    if (!json_is_object(j)) c->flags |= K2C_TC_BAD_JSON;
    json_decref(j);
    c->flags |= flags;
    p->announced = 0;
    p->idtext.n = 0;
    p->args.n = 0;
    return 0;
}

/* Text of the current state (no marker inside). */
static int take_text(k2c_toolparse *p, const char *s, size_t n) {
    if (!n) return 0;
    switch (p->state) {
    case S_CONTENT: return emit_content(p, s, n);
    case S_SECTION: {
        /* Text between two markers that is only whitespace is dropped; with anything else in it, all of it
         * is content. Whitespace is held until that is known, so the pieces' cut points do not matter. */
        if (p->sect_stray) return emit_content(p, s, n);
        size_t i = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) i++;
        if (i == n) return buf_add(&p->sect_ws, s, n);
        p->flags |= K2C_TP_STRAY_TEXT;
        p->sect_stray = 1;
        if (emit_content(p, p->sect_ws.s, p->sect_ws.n) != 0) return -1;
        p->sect_ws.n = 0;
        return emit_content(p, s, n);
    }
    case S_ID: return buf_add(&p->idtext, s, n);
    default:
        if (buf_add(&p->args, s, n) != 0) return -1;
        return add_rec(p, p->ncalls - 1, 0, s, n);
    }
}

static int on_marker(k2c_toolparse *p, int m) {
    int st = p->state;
    switch (m) {
    case M_SECTION_BEGIN_1:
        p->flags |= K2C_TP_SINGULAR_SECTION;
        /* fall through */
    case M_SECTION_BEGIN:
        p->sect_ws.n = 0, p->sect_stray = 0;
        if (st == S_ID || st == S_ARGS) { if (call_close(p, K2C_TC_NO_END) != 0) return -1; }
        p->state = S_SECTION;
        return 0;
    case M_SECTION_END_1:
    case M_SECTION_END:
        p->sect_ws.n = 0, p->sect_stray = 0;
        if (st == S_ID || st == S_ARGS) { if (call_close(p, K2C_TC_NO_END) != 0) return -1; }
        else if (st == S_CONTENT) return emit_content(p, marker[m], strlen(marker[m]));   /* not ours: keep it */
        p->state = S_CONTENT;
        return 0;
    case M_CALL_BEGIN:
        p->sect_ws.n = 0, p->sect_stray = 0;
        if (st == S_CONTENT) p->flags |= K2C_TP_NO_SECTION_BEGIN;
        if (st == S_ID || st == S_ARGS) { if (call_close(p, K2C_TC_NO_END) != 0) return -1; }
        p->idtext.n = 0;
        p->state = S_ID;
        return 0;
    case M_ARG_BEGIN:
        if (st != S_ID) return take_text(p, marker[m], strlen(marker[m]));   /* out of place: plain text */
        if (call_open(p) != 0) return -1;
        p->state = S_ARGS;
        return 0;
    default:    /* M_CALL_END */
        if (st != S_ID && st != S_ARGS) return take_text(p, marker[m], strlen(marker[m]));
        if (call_close(p, 0) != 0) return -1;
        p->state = S_SECTION;
        return 0;
    }
}

/* Consumes pending text; at_end: nothing more will come, so hold nothing back. */
static int process(k2c_toolparse *p, int at_end) {
    const char *s = p->pending.s ? p->pending.s : "";
    size_t n = p->pending.n, pos = 0;
    while (pos < n) {
        const char *lt = memchr(s + pos, '<', n - pos);
        if (!lt) { if (take_text(p, s + pos, n - pos) != 0) return -1; pos = n; break; }
        size_t k = (size_t)(lt - s);
        if (take_text(p, s + pos, k - pos) != 0) return -1;
        pos = k;
        int hit = -1, partial = 0;
        for (int m = 0; m < M_COUNT; m++) {
            size_t ml = strlen(marker[m]), have = n - k < ml ? n - k : ml;
            if (memcmp(s + k, marker[m], have) != 0) continue;
            if (have == ml) { hit = m; break; }
            partial = 1;
        }
        if (hit >= 0) {
            pos = k + strlen(marker[hit]);
            if (on_marker(p, hit) != 0) return -1;
        } else if (partial && !at_end) {
            break;          /* could still become a marker: wait for more text */
        } else {
            if (take_text(p, s + k, 1) != 0) return -1;
            pos = k + 1;
        }
    }
    if (p->pending.s) memmove(p->pending.s, s + pos, n - pos);
    p->pending.n = n - pos;
    return 0;
}

static void events_begin(k2c_toolparse *p) {
    p->ev_content.n = 0;
    p->ev_args.n = 0;
    p->nrec = 0;
}

static int events_end(k2c_toolparse *p, k2c_tool_events *ev) {
    if (!ev) return 0;
    if (p->nrec > p->capdelta) {
        k2c_tool_delta *nd = realloc(p->deltas, (size_t)p->nrec * sizeof *nd);
        if (!nd) { k2c_seterr("out of memory"); return -1; }
        p->deltas = nd;
        p->capdelta = p->nrec;
    }
    for (int i = 0; i < p->nrec; i++) {
        const delta_rec *r = &p->recs[i];
        p->deltas[i] = (k2c_tool_delta){
            .index = r->index,
            .id = r->first ? p->calls[r->index].id : NULL,
            .name = r->first ? p->calls[r->index].name : NULL,
            .args = p->ev_args.s ? p->ev_args.s + r->off : "",
            .args_len = r->len,
        };
    }
    ev->content = p->ev_content.s ? p->ev_content.s : "";
    ev->content_len = p->ev_content.n;
    ev->ndeltas = p->nrec;
    ev->deltas = p->deltas;
    return 0;
}

int k2c_toolparse_feed(k2c_toolparse *p, const char *text, size_t len, k2c_tool_events *ev) {
    events_begin(p);
    if (buf_add(&p->pending, text, len) != 0 || process(p, 0) != 0) return -1;
    return events_end(p, ev);
}

int k2c_toolparse_feed_token(k2c_toolparse *p, const k2c_tokenizer *t, int id, k2c_tool_events *ev) {
    const char *s;
    size_t n;
    if (!p->has_detok) { k2c_detok_init(&p->detok, t); p->has_detok = 1; }
    if (k2c_detok_push(&p->detok, id, &s, &n) != 0) return -1;
    return k2c_toolparse_feed(p, s, n, ev);
}

int k2c_toolparse_finish(k2c_toolparse *p, k2c_tool_events *ev) {
    events_begin(p);
    if (p->has_detok) {
        const char *s;
        size_t n;
        k2c_detok_flush(&p->detok, &s, &n);
        if (buf_add(&p->pending, s, n) != 0) return -1;
    }
    if (process(p, 1) != 0) return -1;
    if (p->state == S_ID || p->state == S_ARGS) {
        if (call_close(p, K2C_TC_TRUNCATED) != 0) return -1;
        p->flags |= K2C_TP_NO_SECTION_END;
    } else if (p->state == S_SECTION) p->flags |= K2C_TP_NO_SECTION_END;
    p->state = S_CONTENT;
    return events_end(p, ev);
}

char *k2c_toolparse_json(const k2c_toolparse *p) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < p->ncalls; i++) {
        const k2c_tool_call *c = &p->calls[i];
        json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", c->id, "type", "function", "function", "name",
                              c->name, "arguments", c->arguments ? c->arguments : "");
        if (!o || json_array_append_new(arr, o) != 0) { json_decref(arr); arr = NULL; }
    }
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!s) k2c_seterr("tool_calls: cannot build JSON (out of memory or invalid UTF-8 in a call)");
    return s;
}
