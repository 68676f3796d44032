/* One assistant turn under constraints: the phase machine that decides which tokens may come next.
 *
 *   CONTENT  free text (or text under the response_format schema); with tools and tool_choice auto the
 *            model may open <|tool_calls_section_begin|>, which moves to SECTION
 *   SECTION  <|tool_call_begin|> (another call) or <|tool_calls_section_end|> (the turn ends)
 *   HEADER   "functions.NAME:IDX" where NAME is a declared tool (token by token, prefix-checked)
 *   ARGS     the tool's arguments under its schema's grammar; when complete <|tool_call_end|> is forced
 *
 * Forced tokens (markers whose choice is not the model's) sit in a small queue and are emitted ahead of
 * any sampling. Each picked token is fed to the tool-call parser, which the callers read for content
 * and tool calls. Picking: the top 40 logits are tried in order (cheap, and enough when the model agrees
 * with the grammar); only if none is allowed is the vocabulary scanned, first by each token's first byte
 * against the grammar's allowed-first-byte bitmap, then by a full check of the survivors. */
#include "serve/serve.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOPK 40
#define MAX_CALLS 8
#define NFORCE 8

enum { P_CONTENT, P_SECTION, P_HEADER, P_ARGS, P_DONE };
enum { SP_SECTION_BEGIN, SP_SECTION_END, SP_CALL_BEGIN, SP_ARG_BEGIN, SP_CALL_END, SP_COUNT };
static const char *const sp_names[SP_COUNT] = {
    "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", "<|tool_call_begin|>",
    "<|tool_call_argument_begin|>", "<|tool_call_end|>",
};

typedef struct { char *name; k2c_schema *schema; } tool;

/* Per-token facts the picker needs on every candidate, computed once per tokenizer: asking the tokenizer
 * (a scan of its special list) for each of 160k candidates would cost more than the grammar itself. */
struct k2c_vocab_info {
    int n;
    uint8_t *special;
    const char **bytes;
    uint32_t *len;
};

k2c_vocab_info *k2c_vocab_info_new(const k2c_tokenizer *t) {
    k2c_vocab_info *v = calloc(1, sizeof *v);
    if (!v) { k2c_seterr("out of memory"); return NULL; }
    v->n = k2c_tokenizer_vocab_size(t);
    v->special = calloc((size_t)v->n + 1, 1);
    v->bytes = calloc((size_t)v->n + 1, sizeof *v->bytes);
    v->len = calloc((size_t)v->n + 1, sizeof *v->len);
    if (!v->special || !v->bytes || !v->len) { k2c_vocab_info_free(v); k2c_seterr("out of memory"); return NULL; }
    for (int i = 0; i < v->n; i++) {
        size_t len = 0;
        v->special[i] = (uint8_t)k2c_tokenizer_is_special(t, i);
        v->bytes[i] = k2c_tokenizer_token(t, i, &len);
        v->len[i] = v->bytes[i] ? (uint32_t)len : 0;
    }
    return v;
}

void k2c_vocab_info_free(k2c_vocab_info *v) {
    if (!v) return;
    free(v->special);
    free(v->bytes);
    free(v->len);
    free(v);
}

struct k2c_turn {
    const k2c_tokenizer *tok;
    const k2c_vocab_info *vi;
    k2c_vocab_info *own_vi;
    int vocab, tok_vocab;
    k2c_turn_opts o;
    tool *tools; int ntools;
    int allowed_tool;               /* FUNCTION: the only tool index; -1 any */
    k2c_schema *content_schema;
    int sp[SP_COUNT];
    int ends[3], nends;             /* <|im_end|>, [EOS], the tokenizer's eos */
    int phase, ncalls, max_calls, ntokens;
    int force[NFORCE], nforce, force_head;
    char header[256]; size_t header_len;
    k2c_gram *gram, *tmp;
    k2c_toolparse *parser;
    uint64_t rng;
    const char *finish;
    int top_i[TOPK]; float top_v[TOPK];
    float *probs;
    char **args; size_t *args_len; int nargs;
    int parser_done;   /* each call's argument text as streamed so far */
};

/* Collects the parser's argument deltas so callers can stream them (the parser keeps only whole calls). */
static int collect(k2c_turn *g, const k2c_tool_events *ev) {
    for (int i = 0; i < ev->ndeltas; i++) {
        const k2c_tool_delta *d = &ev->deltas[i];
        if (d->index < 0 || d->index > 4096) continue;
        while (g->nargs <= d->index) {
            char **na = realloc(g->args, (size_t)(g->nargs + 1) * sizeof *na);
            if (na) g->args = na;
            size_t *nl = realloc(g->args_len, (size_t)(g->nargs + 1) * sizeof *nl);
            if (nl) g->args_len = nl;
            if (!na || !nl) { k2c_seterr("out of memory"); return -1; }
            g->args[g->nargs] = NULL; g->args_len[g->nargs] = 0; g->nargs++;
        }
        if (!d->args_len) continue;
        char *a = realloc(g->args[d->index], g->args_len[d->index] + d->args_len + 1);
        if (!a) { k2c_seterr("out of memory"); return -1; }
        memcpy(a + g->args_len[d->index], d->args, d->args_len);
        g->args_len[d->index] += d->args_len;
        a[g->args_len[d->index]] = 0;
        g->args[d->index] = a;
    }
    return 0;
}

static int feed_tok(k2c_turn *g, int id) {
    k2c_tool_events ev;
    if (k2c_toolparse_feed_token(g->parser, g->tok, id, &ev) != 0) return -1;
    return collect(g, &ev);
}

/* Text the server adds itself (closing JSON, markers) goes through the tokenizer and the same per-token
 * path, so it joins any incomplete UTF-8 character the parser's decoder is holding back. */
static int feed_txt(k2c_turn *g, const char *s, size_t n) {
    int *ids = NULL, nid = 0;
    if (k2c_tokenizer_encode(g->tok, s, n, 1, &ids, &nid) != 0) return -1;
    for (int i = 0; i < nid; i++)
        if (feed_tok(g, ids[i]) != 0) { free(ids); return -1; }
    free(ids);
    return 0;
}

const char *k2c_turn_args(const k2c_turn *g, int i, size_t *len) {
    if (i < 0 || i >= g->nargs) { if (len) *len = 0; return ""; }
    if (len) *len = g->args_len[i];
    return g->args[i] ? g->args[i] : "";
}

static int is_end(const k2c_turn *g, int id) {
    for (int i = 0; i < g->nends; i++) if (g->ends[i] == id) return 1;
    return 0;
}

void k2c_turn_free(k2c_turn *g) {
    if (!g) return;
    for (int i = 0; i < g->ntools; i++) { free(g->tools[i].name); k2c_schema_free(g->tools[i].schema); }
    free(g->tools);
    k2c_schema_free(g->content_schema);
    k2c_gram_free(g->gram);
    k2c_gram_free(g->tmp);
    k2c_toolparse_free(g->parser);
    k2c_vocab_info_free(g->own_vi);
    free(g->probs);
    for (int i = 0; i < g->nargs; i++) free(g->args[i]);
    free(g->args);
    free(g->args_len);
    free(g);
}

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) return 0;
    }
    return 1;
}

static int load_tools(k2c_turn *g, const char *tools_json) {
    json_error_t e;
    json_t *arr = json_loads(tools_json, 0, &e);
    int rc = -1;
    if (!arr || !json_is_array(arr)) { k2c_seterr("tools: must be a JSON array%s%s", arr ? "" : ": ", arr ? "" : e.text); goto done; }
    size_t n = json_array_size(arr);
    if (n > 128) { k2c_seterr("tools: at most 128 tools"); goto done; }
    g->tools = calloc(n ? n : 1, sizeof *g->tools);
    if (!g->tools) { k2c_seterr("out of memory"); goto done; }
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(arr, i), *fn = json_object_get(t, "function");
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!json_is_object(t) || (type && strcmp(type, "function")) || !json_is_object(fn)) {
            k2c_seterr("tools[%zu]: expected {\"type\":\"function\",\"function\":{...}}", i); goto done;
        }
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name || !valid_name(name)) { k2c_seterr("tools[%zu].function.name: must match [A-Za-z0-9_.-]{1,64}", i); goto done; }
        for (int k = 0; k < g->ntools; k++)
            if (!strcmp(g->tools[k].name, name)) { k2c_seterr("tools[%zu]: duplicate name '%s'", i, name); goto done; }
        char where[128];
        snprintf(where, sizeof where, "tools[%zu].function.parameters", i);
        json_t *params = json_object_get(fn, "parameters"), *dflt = NULL;
        if (!params) params = dflt = json_pack("{s:s}", "type", "object");
        k2c_schema *s = k2c_schema_compile_json(params, where);
        json_decref(dflt);
        if (!s) goto done;
        g->tools[g->ntools].schema = s;
        if (!(g->tools[g->ntools].name = strdup(name))) { k2c_seterr("out of memory"); goto done; }
        g->ntools++;
    }
    rc = 0;
done:
    json_decref(arr);
    return rc;
}

static void force(k2c_turn *g, int id) {
    if (g->nforce < NFORCE) g->force[(g->force_head + g->nforce++) % NFORCE] = id;
}

k2c_turn *k2c_turn_new(const k2c_tokenizer *t, int vocab, const k2c_turn_opts *o) {
    k2c_turn *g = calloc(1, sizeof *g);
    if (!g) { k2c_seterr("out of memory"); return NULL; }
    g->tok = t;
    g->o = *o;
    g->o.tools_json = g->o.function = g->o.schema_json = NULL;   /* not kept: the caller owns them */
    g->o.vocab_info = NULL;
    g->vocab = vocab;
    g->vi = o->vocab_info;
    if (!g->vi && !(g->vi = g->own_vi = k2c_vocab_info_new(t))) goto fail;
    g->tok_vocab = g->vi->n;
    if (g->tok_vocab > vocab) g->tok_vocab = vocab;
    g->allowed_tool = -1;
    g->rng = o->seed * 0x9E3779B97F4A7C15ull + 7;
    g->max_calls = o->parallel_tool_calls ? MAX_CALLS : 1;
    for (int i = 0; i < SP_COUNT; i++) g->sp[i] = k2c_tokenizer_token_id(t, sp_names[i]);
    const char *endn[2] = {"<|im_end|>", "[EOS]"};
    for (int i = 0; i < 2; i++) { int id = k2c_tokenizer_token_id(t, endn[i]); if (id >= 0 && id < vocab) g->ends[g->nends++] = id; }
    int eos = k2c_tokenizer_eos(t);
    if (eos >= 0 && eos < vocab && k2c_tokenizer_is_special(t, eos) && !is_end(g, eos)) g->ends[g->nends++] = eos;
    if (!(g->parser = k2c_toolparse_new()) || !(g->gram = malloc(k2c_gram_size())) || !(g->tmp = malloc(k2c_gram_size())) ||
        !(g->probs = malloc(TOPK * sizeof *g->probs))) { k2c_seterr("out of memory"); goto fail; }
    if (o->tools_json && load_tools(g, o->tools_json) != 0) goto fail;
    k2c_tool_choice ch = o->tool_choice;
    if (ch != K2C_TOOLS_NONE && ch != K2C_TOOLS_AUTO && g->ntools == 0) { k2c_seterr("tool_choice: requires tools"); goto fail; }
    if (ch == K2C_TOOLS_FUNCTION) {
        for (int i = 0; i < g->ntools; i++) if (o->function && !strcmp(g->tools[i].name, o->function)) g->allowed_tool = i;
        if (g->allowed_tool < 0) { k2c_seterr("tool_choice: function '%s' is not among the tools", o->function ? o->function : ""); goto fail; }
    }
    if (g->ntools && ch != K2C_TOOLS_NONE) {
        for (int i = 0; i < SP_COUNT; i++)
            if (g->sp[i] < 0 || g->sp[i] >= vocab) { k2c_seterr("tokenizer lacks %s, needed for tool calls", sp_names[i]); goto fail; }
    }
    if (o->schema_json && !(g->content_schema = k2c_schema_compile(o->schema_json, "response_format"))) goto fail;
    g->phase = P_CONTENT;
    if (g->content_schema) k2c_gram_reset(g->gram, g->content_schema);
    if (ch == K2C_TOOLS_REQUIRED || ch == K2C_TOOLS_FUNCTION) {
        force(g, g->sp[SP_SECTION_BEGIN]);
        g->phase = P_SECTION;
    }
    return g;
fail:
    k2c_turn_free(g);
    return NULL;
}

/* "functions.NAME:IDX" for tool i, into buf. */
static size_t header_of(const k2c_turn *g, int i, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "functions.%s:%d", g->tools[i].name, g->ncalls);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* Is header text + bytes a prefix of (or equal to) some allowed tool's header? Returns the tool, -1 none. */
static int header_match(const k2c_turn *g, const char *bytes, size_t n, int *complete) {
    char h[256];
    for (int i = 0; i < g->ntools; i++) {
        if (g->allowed_tool >= 0 && i != g->allowed_tool) continue;
        size_t hl = header_of(g, i, h, sizeof h);
        if (g->header_len + n > hl) continue;
        if (memcmp(h, g->header, g->header_len) || memcmp(h + g->header_len, bytes, n)) continue;
        if (complete) *complete = g->header_len + n == hl;
        return i;
    }
    return -1;
}

static int allowed(k2c_turn *g, int id) {
    if (id < 0 || id >= g->tok_vocab) return 0;
    if (g->vi->special[id]) {
        switch (g->phase) {
        case P_CONTENT:
            if (is_end(g, id)) return !g->content_schema || k2c_gram_accepting(g->gram);
            return id == g->sp[SP_SECTION_BEGIN] && g->ntools && g->o.tool_choice == K2C_TOOLS_AUTO && !g->content_schema;
        case P_SECTION:
            if (id == g->sp[SP_CALL_BEGIN]) return g->ncalls < g->max_calls;
            return id == g->sp[SP_SECTION_END] && g->ncalls > 0;
        default: return 0;
        }
    }
    size_t n = g->vi->len[id];
    const char *b = g->vi->bytes[id];
    if (!b || n == 0) return 0;
    switch (g->phase) {
    case P_CONTENT:
        if (!g->content_schema) return 1;
        /* fallthrough */
    case P_ARGS:
        k2c_gram_copy(g->tmp, g->gram);
        return k2c_gram_feed(g->tmp, b, n) == 0;
    case P_HEADER: return header_match(g, b, n, NULL) >= 0;
    default: return 0;
    }
}

/* Applies a picked token: parser, phase changes, forced follow-ups. 1: the turn goes on, 0: it ended. */
static int apply(k2c_turn *g, int id) {
    g->ntokens++;
    int special = k2c_tokenizer_is_special(g->tok, id);
    /* the turn's end marker ends the content; fed to the parser it would become content text ("<|im_end|>") */
    if (g->phase == P_CONTENT && special && is_end(g, id)) { g->finish = "stop"; g->phase = P_DONE; return 0; }
    if (feed_tok(g, id) != 0) return -1;
    size_t n = 0;
    const char *b = special ? NULL : k2c_tokenizer_token(g->tok, id, &n);
    switch (g->phase) {
    case P_CONTENT:
        if (special && is_end(g, id)) { g->finish = "stop"; g->phase = P_DONE; return 0; }
        if (special && id == g->sp[SP_SECTION_BEGIN]) { g->phase = P_SECTION; return 1; }
        if (g->content_schema && b) {
            if (k2c_gram_feed(g->gram, b, n) != 0) { k2c_seterr("internal: grammar rejected a checked token"); return -1; }
            if (k2c_gram_done(g->gram)) { g->finish = "stop"; g->phase = P_DONE; return 0; }
        }
        return 1;
    case P_SECTION:
        if (id == g->sp[SP_CALL_BEGIN]) { g->phase = P_HEADER; g->header_len = 0; return 1; }
        if (id == g->sp[SP_SECTION_END]) { g->finish = "tool_calls"; g->phase = P_DONE; return 0; }
        return 1;   /* a forced section begin */
    case P_HEADER: {
        if (!b) return 1;
        int complete = 0, t = header_match(g, b, n, &complete);
        if (t < 0) { k2c_seterr("internal: header rejected a checked token"); return -1; }
        memcpy(g->header + g->header_len, b, n);
        g->header_len += n;
        if (complete) {
            force(g, g->sp[SP_ARG_BEGIN]);
            k2c_gram_reset(g->gram, g->tools[t].schema);
            g->phase = P_ARGS;
        }
        return 1;
    }
    case P_ARGS:
        if (!b) return 1;   /* the forced argument-begin marker */
        if (k2c_gram_feed(g->gram, b, n) != 0) { k2c_seterr("internal: grammar rejected a checked token"); return -1; }
        if (k2c_gram_done(g->gram)) {
            force(g, g->sp[SP_CALL_END]);
            g->ncalls++;
            g->phase = P_SECTION;
        }
        return 1;
    }
    return 0;
}

/* Chooses among the allowed candidates (sorted by logit, best first): greedy, or temperature + top-p. */
static int choose(k2c_turn *g, const int *ids, const float *lv, int n) {
    if (n == 1 || g->o.temperature <= 0) return ids[0];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (g->probs[i] = expf((lv[i] - lv[0]) / g->o.temperature));
    int m = n;
    if (g->o.top_p > 0 && g->o.top_p < 1) {
        double c = 0;
        for (int i = 0; i < n; i++) { c += g->probs[i] / sum; if (c >= g->o.top_p) { m = i + 1; break; } }
    }
    double mass = 0;
    for (int i = 0; i < m; i++) mass += g->probs[i];
    double u = k2c_rng_uniform(&g->rng) * mass, c = 0;
    for (int i = 0; i < m; i++) { c += g->probs[i]; if (u < c) return ids[i]; }
    return ids[m - 1];
}

static void top_insert(int *ti, float *tv, int *n, int id, float v) {
    if (*n == TOPK && v <= tv[TOPK - 1]) return;
    int i = *n < TOPK ? (*n)++ : TOPK - 1;
    while (i > 0 && tv[i - 1] < v) { tv[i] = tv[i - 1]; ti[i] = ti[i - 1]; i--; }
    tv[i] = v; ti[i] = id;
}

static int pick(k2c_turn *g, const float *logits) {
    int n = 0, ok_i[TOPK], nok = 0;
    float ok_v[TOPK];
    for (int i = 0; i < g->tok_vocab; i++) {
        float v = logits[i];
        if (n == TOPK && v <= g->top_v[TOPK - 1]) continue;
        top_insert(g->top_i, g->top_v, &n, i, isnan(v) ? -INFINITY : v);
    }
    for (int i = 0; i < n; i++)
        if (allowed(g, g->top_i[i])) { ok_i[nok] = g->top_i[i]; ok_v[nok++] = g->top_v[i]; if (g->o.temperature <= 0) break; }
    if (nok) return choose(g, ok_i, ok_v, nok);
    /* Slow path: nothing in the top candidates fits. First-byte filter, then the full check. */
    uint8_t first[32];
    int gram_phase = g->phase == P_ARGS || (g->phase == P_CONTENT && g->content_schema);
    if (gram_phase) k2c_gram_first_bytes(g->gram, first);
    for (int i = 0; i < g->tok_vocab; i++) {
        if (gram_phase && !g->vi->special[i]) {
            const char *b = g->vi->bytes[i];
            if (!b || !g->vi->len[i] || !(first[(unsigned char)b[0] >> 3] >> ((unsigned char)b[0] & 7) & 1)) continue;
        }
        if (!allowed(g, i)) continue;
        top_insert(ok_i, ok_v, &nok, i, isnan(logits[i]) ? -INFINITY : logits[i]);
    }
    if (!nok) { k2c_seterr("constrained decoding: no token is allowed (phase %d)", g->phase); return -1; }
    return choose(g, ok_i, ok_v, nok);
}

/* Finishes the turn without the model: owed forced tokens as text, then the minimal completion. */
static int close_out(k2c_turn *g) {
    for (; g->nforce; g->nforce--, g->force_head = (g->force_head + 1) % NFORCE)
        if (feed_tok(g, g->force[g->force_head]) != 0) return -1;
    char h[256];
    char *txt = NULL;
    size_t n;
    int rc = -1;
    switch (g->phase) {
    case P_CONTENT:
        g->finish = "length";
        if (g->content_schema) {
            if (!(txt = k2c_gram_close(g->gram, &n))) return -1;
            rc = feed_txt(g, txt, n);
            free(txt);
            return rc;
        }
        return 0;
    case P_SECTION:
        if (g->ncalls == 0) {
            int t = g->allowed_tool >= 0 ? g->allowed_tool : 0;
            header_of(g, t, h, sizeof h);
            k2c_gram_reset(g->gram, g->tools[t].schema);
            if (!(txt = k2c_gram_close(g->gram, &n))) return -1;
            size_t cap = strlen(h) + n + 128;
            char *all = malloc(cap);
            if (!all) { free(txt); k2c_seterr("out of memory"); return -1; }
            snprintf(all, cap, "%s%s%s%s%s", sp_names[SP_CALL_BEGIN], h, sp_names[SP_ARG_BEGIN], txt, sp_names[SP_CALL_END]);
            rc = feed_txt(g, all, strlen(all));
            free(all);
            free(txt);
            if (rc) return -1;
        }
        break;
    case P_HEADER: {
        int t = header_match(g, "", 0, NULL);
        if (t < 0) { k2c_seterr("internal: header prefix matches no tool"); return -1; }
        size_t hl = header_of(g, t, h, sizeof h);
        if (feed_txt(g, h + g->header_len, hl - g->header_len) ||
            feed_txt(g, sp_names[SP_ARG_BEGIN], strlen(sp_names[SP_ARG_BEGIN]))) return -1;
        k2c_gram_reset(g->gram, g->tools[t].schema);
    }
    /* fallthrough */
    case P_ARGS:
        if (!(txt = k2c_gram_close(g->gram, &n))) return -1;
        rc = feed_txt(g, txt, n);
        free(txt);
        if (rc || feed_txt(g, sp_names[SP_CALL_END], strlen(sp_names[SP_CALL_END]))) return -1;
        g->ncalls++;
        break;
    default: return 0;
    }
    g->finish = "tool_calls";
    return feed_txt(g, sp_names[SP_SECTION_END], strlen(sp_names[SP_SECTION_END]));
}

/* The turn is over: release text the parser held back (a possible marker prefix). */
static int end_turn(k2c_turn *g) {
    g->phase = P_DONE;
    if (g->parser_done) return 0;
    g->parser_done = 1;
    k2c_tool_events ev;
    if (k2c_toolparse_finish(g->parser, &ev) != 0) return -1;
    return collect(g, &ev);
}

int k2c_turn_step(k2c_turn *g, const float *logits, int *id) {
    if (g->phase == P_DONE) return end_turn(g);
    if (g->ntokens >= g->o.max_tokens) {
        int rc = close_out(g);
        return end_turn(g) || rc ? -1 : 0;
    }
    int t;
    if (g->nforce) {
        t = g->force[g->force_head];
        g->force_head = (g->force_head + 1) % NFORCE;
        g->nforce--;
    } else if ((t = pick(g, logits)) < 0) return -1;
    int rc = apply(g, t);
    if (rc < 0) return -1;
    if (rc == 0) return end_turn(g);
    *id = t;
    return 1;
}

void k2c_turn_stop(k2c_turn *g, const char *reason) {
    if (g->phase == P_DONE) return;
    if (g->phase != P_CONTENT || g->content_schema) {
        /* inside a call or a schema answer: still end in valid JSON */
        if (close_out(g) == 0 && reason && !strcmp(reason, "stop")) g->finish = g->ncalls ? "tool_calls" : "stop";
    } else g->finish = reason;
    end_turn(g);
}

const char *k2c_turn_finish_reason(const k2c_turn *g) { return g->finish; }
int k2c_turn_ntokens(const k2c_turn *g) { return g->ntokens; }
k2c_toolparse *k2c_turn_parser(k2c_turn *g) { return g->parser; }
