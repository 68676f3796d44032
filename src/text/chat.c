/* Chat templates: OpenAI-style messages + tool definitions -> the prompt text. Kimi K2's (below) and
 * DeepSeek-V3's (render_deepseek), each checked byte for byte against @huggingface/jinja rendering the
 * template (tests/test_templates.sh).
 *
 * Mirrors the Jinja template shipped in Kimi-K2's tokenizer_config.json (spec section 5). Two details
 * decide exact token matches and are why JSON is written here rather than with json_dumps:
 *  - the tool list is `tools | tojson(separators=(',', ':'))` and object arguments `| tojson`, i.e.
 *    Python's json.dumps with ensure_ascii=False: keys in input order, non-ASCII kept, control
 *    characters as \n \t or \u00XX (lowercase), floats in Python's repr (1.0, 1e-05, 1e+16);
 *  - the default separators of `tojson` are ", " and ": ". */
#include "text/text.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The prompt text, and (when track) where the template itself put special tokens: only there may a
 * special's text become the special id (k2c_chat_render_ids). Everything from the request (content,
 * names, roles, tool-call ids and arguments, tool results, the tool declarations) is appended with
 * sb_add / sb_str and stays ordinary text whatever it contains. */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
    int track;
    tok_span *sp;
    size_t nsp, spcap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) { b->oom = 1; return; }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Template text (a constant of this file): appended, and each <|...|> in it recorded as a special span. */
static void sb_tpl(sbuf *b, const char *s) {
    size_t start = b->n;
    sb_str(b, s);
    if (!b->track || b->oom) return;
    /* Kimi's specials are <|...|>, DeepSeek's <\xef\xbd\x9c...\xef\xbd\x9c> (full-width bars, U+FF5C) */
    for (const char *q = s; (q = strstr(q, "<")) != NULL;) {
        int wide = !strncmp(q + 1, "\xef\xbd\x9c", 3);
        if (q[1] != '|' && !wide) { q++; continue; }
        const char *e = strstr(q + (wide ? 4 : 2), wide ? "\xef\xbd\x9c>" : "|>");
        if (!e) break;
        e += wide ? 2 : 0;   /* e + 2 is the end either way */
        if (b->nsp == b->spcap) {
            size_t cap = b->spcap ? 2 * b->spcap : 64;
            tok_span *ns = realloc(b->sp, cap * sizeof *ns);
            if (!ns) { b->oom = 1; return; }
            b->sp = ns;
            b->spcap = cap;
        }
        b->sp[b->nsp].off = start + (size_t)(q - s);
        b->sp[b->nsp].len = (size_t)(e + 2 - q);
        b->nsp++;
        q = e + 2;
    }
}

/* Python repr() of a float: shortest digits that round-trip; exponent form outside 1e-4 <= |x| < 1e16. */
static void py_float(sbuf *b, double x) {
    char buf[64];
    if (isnan(x)) { sb_str(b, "NaN"); return; }
    if (isinf(x)) { sb_str(b, x < 0 ? "-Infinity" : "Infinity"); return; }
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, x);
        if (strtod(buf, NULL) == x) break;
    }
    /* buf: [-]d[.ddd]e[+-]XX */
    char digits[32];
    int nd = 0, neg = buf[0] == '-';
    char *p = buf + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char out[64];
    int o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out[o++] = '0'; out[o++] = '.';
            for (int i = -1; i > exp; i--) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1) for (int i = exp + 1; i < nd; i++) out[o++] = digits[i];
            else out[o++] = '0';
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    sb_str(b, out);
}

static void py_string(sbuf *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) { snprintf(u, sizeof u, "\\u%04x", c); esc = u; }
        if (!esc) continue;
        sb_add(b, s + run, i - run);
        sb_str(b, esc);
        run = i + 1;
    }
    sb_add(b, s + run, n - run);
    sb_add(b, "\"", 1);
}

/* json.dumps(v, ensure_ascii=False, separators=(item, key)) */
static void py_json(sbuf *b, json_t *v, const char *item, const char *key) {
    char buf[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        sb_str(b, "{");
        json_object_foreach(v, k, x) {
            if (!first) sb_str(b, item);
            first = 0;
            py_string(b, k, strlen(k));
            sb_str(b, key);
            py_json(b, x, item, key);
        }
        sb_str(b, "}");
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        sb_str(b, "[");
        json_array_foreach(v, i, x) {
            if (i) sb_str(b, item);
            py_json(b, x, item, key);
        }
        sb_str(b, "]");
        break;
    }
    case JSON_STRING: py_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)); sb_str(b, buf); break;
    case JSON_REAL: py_float(b, json_real_value(v)); break;
    case JSON_TRUE: sb_str(b, "true"); break;
    case JSON_FALSE: sb_str(b, "false"); break;
    case JSON_NULL: sb_str(b, "null"); break;
    }
}

/* Message content: a string, null, or an array of {"type":"text","text":...} parts. */
static int add_content(sbuf *b, json_t *c, const char *where, size_t mi) {
    if (!c || json_is_null(c)) return 0;
    if (json_is_string(c)) { sb_add(b, json_string_value(c), json_string_length(c)); return 0; }
    if (!json_is_array(c)) {
        k2c_seterr("%s: [%zu].content: expected a string, null or an array of text parts", where, mi);
        return -1;
    }
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || (type && !json_is_string(type)) ||
            (type && strcmp(json_string_value(type), "text") != 0) || !json_is_string(text)) {
            k2c_seterr("%s: [%zu].content[%zu]: expected {\"type\": \"text\", \"text\": STRING}", where, mi, i);
            return -1;
        }
        sb_add(b, json_string_value(text), json_string_length(text));
    }
    return 0;
}

static int content_truthy(json_t *c) {
    return (json_is_string(c) && json_string_length(c) > 0) || (json_is_array(c) && json_array_size(c) > 0);
}

/* Tool-call ids as the Kimi template expects them: functions.NAME:IDX, IDX counting the tool calls of the
 * whole conversation from 0 (the form the model itself emits). An id already of that form for the call's
 * own function is kept; any other (an OpenAI client's "call_abc", a missing id) is replaced, and a later
 * tool result naming the original id gets the new one (the most recent call with that id). */
typedef struct { const char *from; char *to; } idmap;
typedef struct {
    idmap *m;
    size_t n, cap;
    size_t ncalls;              /* tool calls rendered so far */
} ids_state;

static int kimi_id_ok(const char *id, const char *name) {
    size_t nl = strlen(name);
    if (strncmp(id, "functions.", 10) != 0 || strncmp(id + 10, name, nl) != 0 || id[10 + nl] != ':') return 0;
    const char *d = id + 11 + nl;
    if (!*d) return 0;
    for (; *d; d++)
        if (*d < '0' || *d > '9') return 0;
    return 1;
}

static const char *ids_lookup(const ids_state *st, const char *from) {
    for (size_t i = st->n; i-- > 0;)
        if (st->m[i].from && !strcmp(st->m[i].from, from)) return st->m[i].to;
    return from;
}

static void ids_free(ids_state *st) {
    for (size_t i = 0; i < st->n; i++) free(st->m[i].to);
    free(st->m);
}

static int add_tool_calls(sbuf *b, json_t *calls, ids_state *st, const char *where, size_t mi) {
    size_t j;
    json_t *tc;
    sb_tpl(b, "<|tool_calls_section_begin|>");
    json_array_foreach(calls, j, tc) {
        json_t *fn = json_object_get(tc, "function");
        json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        json_t *id = json_object_get(tc, "id");
        if (!json_is_object(tc) || !json_is_object(fn) || !json_is_string(name)) {
            k2c_seterr("%s: [%zu].tool_calls[%zu]: expected {\"function\": {\"name\": STRING, \"arguments\": ...}}", where, mi, j);
            return -1;
        }
        if (id && !json_is_string(id) && !json_is_null(id)) {
            k2c_seterr("%s: [%zu].tool_calls[%zu].id: not a string", where, mi, j);
            return -1;
        }
        const char *nm = json_string_value(name), *given = json_string_value(id);
        size_t idx = st->ncalls++;
        char *norm;
        if (given && kimi_id_ok(given, nm)) norm = strdup(given);
        else {
            size_t cap = strlen(nm) + 40;
            if ((norm = malloc(cap))) snprintf(norm, cap, "functions.%s:%zu", nm, idx);
        }
        if (st->n == st->cap) {
            size_t cap = st->cap ? 2 * st->cap : 16;
            idmap *nmap = realloc(st->m, cap * sizeof *nmap);
            if (!nmap) { free(norm); norm = NULL; }
            else { st->m = nmap; st->cap = cap; }
        }
        if (!norm) { k2c_seterr("out of memory"); return -1; }
        st->m[st->n].from = given;
        st->m[st->n++].to = norm;
        sb_tpl(b, "<|tool_call_begin|>");
        sb_str(b, norm);
        sb_tpl(b, "<|tool_call_argument_begin|>");
        if (json_is_string(args)) sb_add(b, json_string_value(args), json_string_length(args));
        else if (args) py_json(b, args, ", ", ": ");
        else sb_str(b, "{}");
        sb_tpl(b, "<|tool_call_end|>");
    }
    sb_tpl(b, "<|tool_calls_section_end|>");
    return 0;
}

/* Renders into b (b.track set by the caller); 0, or -1 + error (b is then freed). */
static int render_kimi(sbuf *bp, const char *messages_json, const char *tools_json, int add_generation_prompt,
                       const char *where, const char *tw) {
    json_error_t je;
    json_t *msgs = NULL, *tools = NULL;
    ids_state st = {0};
    sbuf b = *bp;
    if (!where) where = "messages";
    if (!tw) tw = "tools";
    msgs = json_loads(messages_json, 0, &je);
    if (!msgs) { k2c_seterr("%s:%d: bad JSON: %s", where, je.line, je.text); goto fail; }
    if (!json_is_array(msgs)) { k2c_seterr("%s: messages: expected a JSON array of messages", where); goto fail; }
    if (tools_json) {
        tools = json_loads(tools_json, 0, &je);
        if (!tools) { k2c_seterr("%s:%d: bad JSON: %s", tw, je.line, je.text); goto fail; }
        if (!json_is_array(tools)) { k2c_seterr("%s: tools: expected a JSON array of tool definitions", tw); goto fail; }
    }
    if (tools && json_array_size(tools) > 0) {
        sb_tpl(&b, "<|im_system|>tool_declare<|im_middle|>");
        py_json(&b, tools, ",", ":");
        sb_tpl(&b, "<|im_end|>");
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m)) { k2c_seterr("%s: [%zu]: expected a message object", where, i); goto fail; }
        json_t *jrole = json_object_get(m, "role");
        if (!json_is_string(jrole)) { k2c_seterr("%s: [%zu].role: missing or not a string", where, i); goto fail; }
        const char *role = json_string_value(jrole);
        json_t *content = json_object_get(m, "content"), *name = json_object_get(m, "name");
        json_t *calls = json_object_get(m, "tool_calls");
        if (name && !json_is_string(name) && !json_is_null(name)) { k2c_seterr("%s: [%zu].name: not a string", where, i); goto fail; }
        if (calls && !json_is_array(calls) && !json_is_null(calls)) { k2c_seterr("%s: [%zu].tool_calls: not an array", where, i); goto fail; }
        if (i == 0 && strcmp(role, "system") != 0)
            sb_tpl(&b, "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>");
        sb_tpl(&b, !strcmp(role, "user") ? "<|im_user|>" : !strcmp(role, "assistant") ? "<|im_assistant|>" : "<|im_system|>");
        sb_str(&b, json_is_string(name) && json_string_length(name) ? json_string_value(name) : role);
        sb_tpl(&b, "<|im_middle|>");
        if (!strcmp(role, "assistant") && json_is_array(calls) && json_array_size(calls) > 0) {
            if (content_truthy(content) && add_content(&b, content, where, i) != 0) goto fail;
            if (add_tool_calls(&b, calls, &st, where, i) != 0) goto fail;
        } else if (!strcmp(role, "tool")) {
            json_t *tid = json_object_get(m, "tool_call_id");
            if (!json_is_string(tid)) { k2c_seterr("%s: [%zu].tool_call_id: missing or not a string", where, i); goto fail; }
            sb_tpl(&b, "## Return of ");
            sb_str(&b, ids_lookup(&st, json_string_value(tid)));
            sb_str(&b, "\n");
            if (add_content(&b, content, where, i) != 0) goto fail;
        } else if (add_content(&b, content, where, i) != 0) goto fail;
        sb_tpl(&b, "<|im_end|>");
    }
    if (add_generation_prompt) sb_tpl(&b, "<|im_assistant|>assistant<|im_middle|>");
    if (b.oom) { k2c_seterr("out of memory"); goto fail; }
    if (!b.s) sb_add(&b, "", 0);
    if (b.oom) { k2c_seterr("out of memory"); goto fail; }
    json_decref(msgs);
    json_decref(tools);
    ids_free(&st);
    *bp = b;
    return 0;
fail:
    json_decref(msgs);
    json_decref(tools);
    ids_free(&st);
    free(b.s);
    free(b.sp);
    memset(bp, 0, sizeof *bp);
    return -1;
}

/* ------------------------------------------------------------------ DeepSeek-V3 */
/* DeepSeek-V3's template (its tokenizer_config.json), statement by statement. Its state lives across
 * messages as in the template's namespace: is_first (a tool call was written: later calls take the
 * "continuation" form, whatever message they are in), is_tool (inside tool outputs), is_output_first.
 * String concatenation in the template means contents, tool-call types, names and arguments must be
 * strings (a text-part array is joined, which the template itself would refuse). */
#define DS_BAR "\xef\xbd\x9c"
#define DS(x) "<" DS_BAR x DS_BAR ">"
#define DS_SP "\xe2\x96\x81"   /* U+2581, the template's word separator inside marker names */

static int ds_text(sbuf *b, json_t *v, const char *where, size_t mi, const char *field) {
    if (json_is_string(v)) { sb_add(b, json_string_value(v), json_string_length(v)); return 0; }
    if (json_is_array(v)) return add_content(b, v, where, mi);
    k2c_seterr("%s: [%zu].%s: a string is required by the DeepSeek-V3 template", where, mi, field);
    return -1;
}

static int render_deepseek(sbuf *bp, const char *messages_json, int add_generation_prompt, const char *where) {
    json_error_t je;
    sbuf b = *bp;
    if (!where) where = "messages";
    json_t *msgs = json_loads(messages_json, 0, &je);
    int is_first = 0, is_tool = 0, is_output_first = 1, first_sp = 1;
    size_t i;
    json_t *m;
    if (!msgs) { k2c_seterr("%s:%d: bad JSON: %s", where, je.line, je.text); goto fail; }
    if (!json_is_array(msgs)) { k2c_seterr("%s: messages: expected a JSON array of messages", where); goto fail; }
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) { k2c_seterr("%s: [%zu].role: missing or not a string", where, i); goto fail; }
    }
    sb_tpl(&b, DS("begin" DS_SP "of" DS_SP "sentence"));
    json_array_foreach(msgs, i, m) {   /* the system prompt: every system message, joined by a blank line */
        if (strcmp(json_string_value(json_object_get(m, "role")), "system")) continue;
        if (!first_sp) sb_str(&b, "\n\n");
        first_sp = 0;
        if (ds_text(&b, json_object_get(m, "content"), where, i, "content")) goto fail;
    }
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!strcmp(role, "user")) {
            is_tool = 0;
            sb_tpl(&b, DS("User"));
            if (ds_text(&b, content, where, i, "content")) goto fail;
        }
        if (!strcmp(role, "assistant") && json_is_null(content)) {
            is_tool = 0;
            json_t *calls = json_object_get(m, "tool_calls"), *tc;
            size_t j;
            if (!json_is_array(calls)) { k2c_seterr("%s: [%zu].tool_calls: an array is required when content is null", where, i); goto fail; }
            json_array_foreach(calls, j, tc) {
                json_t *fn = json_object_get(tc, "function");
                json_t *type = json_object_get(tc, "type"), *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
                if (!json_is_string(type) || !json_is_string(name) || !json_is_string(args)) {
                    k2c_seterr("%s: [%zu].tool_calls[%zu]: type, function.name and function.arguments must be strings", where, i, j);
                    goto fail;
                }
                if (!is_first) sb_tpl(&b, DS("Assistant") DS("tool" DS_SP "calls" DS_SP "begin") DS("tool" DS_SP "call" DS_SP "begin"));
                else { sb_str(&b, "\n"); sb_tpl(&b, DS("tool" DS_SP "call" DS_SP "begin")); }
                sb_str(&b, json_string_value(type));
                sb_tpl(&b, DS("tool" DS_SP "sep"));
                sb_str(&b, json_string_value(name));
                sb_str(&b, "\n```json\n");
                sb_add(&b, json_string_value(args), json_string_length(args));
                sb_str(&b, "\n```");
                sb_tpl(&b, DS("tool" DS_SP "call" DS_SP "end"));
                if (is_first) sb_tpl(&b, DS("tool" DS_SP "calls" DS_SP "end") DS("end" DS_SP "of" DS_SP "sentence"));
                is_first = 1;
            }
        }
        if (!strcmp(role, "assistant") && content && !json_is_null(content)) {
            sb_tpl(&b, is_tool ? DS("tool" DS_SP "outputs" DS_SP "end") : DS("Assistant"));
            is_tool = 0;
            if (ds_text(&b, content, where, i, "content")) goto fail;
            sb_tpl(&b, DS("end" DS_SP "of" DS_SP "sentence"));
        }
        if (!strcmp(role, "tool")) {
            is_tool = 1;
            if (!is_output_first) sb_str(&b, "\n");
            sb_tpl(&b, is_output_first ? DS("tool" DS_SP "outputs" DS_SP "begin") DS("tool" DS_SP "output" DS_SP "begin") : DS("tool" DS_SP "output" DS_SP "begin"));
            is_output_first = 0;
            if (ds_text(&b, content, where, i, "content")) goto fail;
            sb_tpl(&b, DS("tool" DS_SP "output" DS_SP "end"));
        }
    }
    if (is_tool) sb_tpl(&b, DS("tool" DS_SP "outputs" DS_SP "end"));
    if (add_generation_prompt && !is_tool) sb_tpl(&b, DS("Assistant"));
    if (b.oom) { k2c_seterr("out of memory"); goto fail; }
    json_decref(msgs);
    *bp = b;
    return 0;
fail:
    json_decref(msgs);
    free(b.s);
    free(b.sp);
    memset(bp, 0, sizeof *bp);
    return -1;
}

static int render(sbuf *b, k2c_chat_format f, const char *messages_json, const char *tools_json, int add_generation_prompt,
                  const char *where, const char *tw) {
    if (f == K2C_CHAT_DEEPSEEK_V3) return render_deepseek(b, messages_json, add_generation_prompt, where);
    return render_kimi(b, messages_json, tools_json, add_generation_prompt, where, tw);
}

char *k2c_chat_render_as(k2c_chat_format f, const char *messages_json, const char *tools_json, int add_generation_prompt,
                         const char *where, const char *tw) {
    sbuf b = {0};
    if (render(&b, f, messages_json, tools_json, add_generation_prompt, where, tw) != 0) return NULL;
    return b.s;
}

char *k2c_chat_render(const char *messages_json, const char *tools_json, int add_generation_prompt,
                      const char *where, const char *tw) {
    return k2c_chat_render_as(K2C_CHAT_KIMI, messages_json, tools_json, add_generation_prompt, where, tw);
}

/* The same text, with specials only at the template's own spans (see tok_encode_marked): for a
 * conversation whose contents hold no special-token text the ids equal encode(render(...), specials
 * allowed), because template text and request text between two specials are pre-tokenized as one run,
 * exactly as the reference does with the whole prompt ("## Return of " ID "\n" CONTENT is one run). */
int k2c_chat_render_ids(const k2c_tokenizer *t, const char *messages_json, const char *tools_json,
                        int add_generation_prompt, const char *where, const char *tw, int **ids, int *n) {
    sbuf b = {0};
    b.track = 1;
    *ids = NULL;
    *n = 0;
    if (render(&b, k2c_tokenizer_chat_format(t), messages_json, tools_json, add_generation_prompt, where, tw) != 0) return -1;
    int rc = tok_encode_marked(t, b.s, b.n, b.sp, b.nsp, ids, n);
    free(b.s);
    free(b.sp);
    return rc;
}

/* Supervised fine-tuning targets: the conversation's ids and a loss mask [n] that is 1 on the tokens the
 * assistant produced (its content, its tool-call section, its closing <|im_end|>) and 0 on everything the
 * model is given (system, tool declarations, user turns, tool results, the role header
 * "<|im_assistant|>assistant<|im_middle|>" that the generation prompt supplies).
 *
 * The spans come from the template itself rather than from searching the ids: assistant message i covers
 * exactly the tokens between render(messages[0..i), generation prompt) and render(messages[0..i]). That
 * holds because both renders end at a special token, which the tokenizer never merges across, so each
 * shorter render's ids are a prefix of the longer one's; the code checks it rather than assuming it. */
int k2c_chat_render_masked(const k2c_tokenizer *t, const char *messages_json, const char *tools_json, const char *where,
                           int **ids_out, unsigned char **mask_out, int *n_out) {
    *ids_out = NULL; *mask_out = NULL; *n_out = 0;
    json_error_t je;
    json_t *msgs = json_loads(messages_json, 0, &je);
    int *ids = NULL, n = 0, rc = -1;
    unsigned char *mask = NULL;
    if (!json_is_array(msgs)) { k2c_seterr("%s: messages must be a JSON array (%s)", where, msgs ? "not an array" : je.text); goto done; }
    if (k2c_chat_render_ids(t, messages_json, tools_json, 0, where, where, &ids, &n)) goto done;
    if (!(mask = calloc((size_t)(n > 0 ? n : 1), 1))) { k2c_seterr("out of memory"); goto done; }
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const char *role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
        if (!role || strcmp(role, "assistant")) continue;
        int span[2];
        for (int k = 0; k < 2; k++) {
            json_t *part = json_array();
            for (size_t j = 0; j < i + (size_t)k; j++) json_array_append(part, json_array_get(msgs, j));
            char *txt = json_dumps(part, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(part);
            int *pid = NULL, pn = 0;
            int r = txt ? k2c_chat_render_ids(t, txt, tools_json, k == 0, where, where, &pid, &pn) : -1;
            free(txt);
            if (r) goto done;
            int prefix = pn <= n && !memcmp(pid, ids, (size_t)pn * sizeof *ids);
            free(pid);
            if (!prefix) { k2c_seterr("%s: [%zu]: the template's tokens up to this message do not prefix the conversation's", where, i); goto done; }
            span[k] = pn;
        }
        memset(mask + span[0], 1, (size_t)(span[1] - span[0]));
    }
    *ids_out = ids; *mask_out = mask; *n_out = n;
    ids = NULL; mask = NULL;
    rc = 0;
done:
    json_decref(msgs);
    free(ids);
    free(mask);
    return rc;
}
