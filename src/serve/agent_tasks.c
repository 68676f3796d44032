/* Agent task files and their verifiers.
 *
 * A task file is JSONL, one task per line:
 *   {"id": "...", "category": "calculator", "difficulty": 1, "template": "calc.times.3", "split": "train",
 *    "tools": "calculator",                       built-in groups the task declares (k2c_tool_groups_parse)
 *    "task": "what's 37 times 41?",               the user message
 *    "files": {"notes.txt": "..."},               optional: the working folder's files for the file tools
 *    "budget": 256,                               optional: generated tokens past which a rollout is penalised
 *    "verify": {...},                             the checks below
 *    "reference": [messages]}                     optional: a reference trajectory (SFT data)
 * verify holds any of
 *   "answer": ["1517", ...]       every string appears in the final answer (case and thousands separators
 *                                 ignored: "1,517" matches "1517")
 *   "number": {"value": x, "tol": t}   some number in the answer is within t of x
 *   "state": [{"type": "flight", "id": "...", "count": 2}, ...]   the environment's bookings at the end are
 *                                 exactly these (order ignored; count = passengers or nights)
 *   "calls": ["search_flights", ...]   each tool was called at least once
 * and every task also checks that the agent ended with an answer. A verdict is the share of checks passed;
 * success means all of them. */
#include "serve/serve.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

static char *dump_opt(json_t *v) {
    return v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

static void task_clear(k2c_task *t) {
    free(t->id); free(t->category); free(t->template_id); free(t->split); free(t->task); free(t->tools);
    free(t->files_json); free(t->verify_json); free(t->reference_json);
    memset(t, 0, sizeof *t);
}

void k2c_tasks_free(k2c_task *t, int n) {
    for (int i = 0; t && i < n; i++) task_clear(&t[i]);
    free(t);
}

/* One line into *t; -1 + an error naming where and the field. */
static int parse_task(json_t *o, const char *where, k2c_task *t) {
    memset(t, 0, sizeof *t);
    if (!json_is_object(o)) { k2c_seterr("%s: a task must be a JSON object", where); return -1; }
    static const char *need[] = {"id", "task", "tools"};
    for (int i = 0; i < 3; i++)
        if (!json_is_string(json_object_get(o, need[i]))) { k2c_seterr("%s: field '%s' missing or not a string", where, need[i]); return -1; }
    json_t *v = json_object_get(o, "verify");
    if (!json_is_object(v)) { k2c_seterr("%s: field 'verify' missing or not an object", where); return -1; }
    json_t *ans = json_object_get(v, "answer"), *num = json_object_get(v, "number"), *st = json_object_get(v, "state"),
           *calls = json_object_get(v, "calls");
    size_t i;
    json_t *x;
    if (ans) {
        if (!json_is_array(ans)) { k2c_seterr("%s: verify.answer must be an array of strings", where); return -1; }
        json_array_foreach(ans, i, x) if (!json_is_string(x)) { k2c_seterr("%s: verify.answer[%zu] is not a string", where, i); return -1; }
    }
    if (num && (!json_is_number(json_object_get(num, "value")) || !json_is_number(json_object_get(num, "tol")))) {
        k2c_seterr("%s: verify.number needs numbers 'value' and 'tol'", where);
        return -1;
    }
    if (st) {
        if (!json_is_array(st)) { k2c_seterr("%s: verify.state must be an array of bookings", where); return -1; }
        json_array_foreach(st, i, x)
            if (!json_is_string(json_object_get(x, "type")) || !json_is_string(json_object_get(x, "id")) || !json_is_integer(json_object_get(x, "count"))) {
                k2c_seterr("%s: verify.state[%zu] needs 'type', 'id' (strings) and 'count' (integer)", where, i);
                return -1;
            }
    }
    if (calls) {
        if (!json_is_array(calls)) { k2c_seterr("%s: verify.calls must be an array of tool names", where); return -1; }
        json_array_foreach(calls, i, x) if (!json_is_string(x)) { k2c_seterr("%s: verify.calls[%zu] is not a string", where, i); return -1; }
    }
    unsigned groups;
    if (k2c_tool_groups_parse(json_string_value(json_object_get(o, "tools")), &groups)) {
        char msg[K2C_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", k2c_errmsg());
        k2c_seterr("%s: field 'tools': %s", where, msg);
        return -1;
    }
    json_t *files = json_object_get(o, "files");
    if (files && !json_is_object(files)) { k2c_seterr("%s: field 'files' must be an object of name: content", where); return -1; }
    const char *k;
    json_object_foreach(files, k, x)
        if (!json_is_string(x) || !*k || strchr(k, '/') || k[0] == '.') {
            k2c_seterr("%s: files['%s']: a plain file name with string content", where, k);
            return -1;
        }
    json_t *ref = json_object_get(o, "reference");
    if (ref && !json_is_array(ref) && !json_is_null(ref)) { k2c_seterr("%s: field 'reference' must be an array of messages", where); return -1; }
    json_t *b = json_object_get(o, "budget");
    if (b && (!json_is_integer(b) || json_integer_value(b) < 0)) { k2c_seterr("%s: field 'budget' must be a non-negative integer", where); return -1; }
    t->id = dup_str(o, "id");
    t->task = dup_str(o, "task");
    t->tools = dup_str(o, "tools");
    t->category = json_is_string(json_object_get(o, "category")) ? dup_str(o, "category") : strdup("task");
    t->template_id = json_is_string(json_object_get(o, "template")) ? dup_str(o, "template") : strdup("");
    t->split = json_is_string(json_object_get(o, "split")) ? dup_str(o, "split") : strdup("");
    t->difficulty = (int)json_integer_value(json_object_get(o, "difficulty"));
    t->budget = b ? (int)json_integer_value(b) : 0;
    t->files_json = dump_opt(files);
    t->verify_json = dump_opt(v);
    t->reference_json = dump_opt(ref);
    if (!t->id || !t->task || !t->tools || !t->category || !t->template_id || !t->split || !t->verify_json) {
        k2c_seterr("out of memory");
        return -1;
    }
    return 0;
}

int k2c_tasks_load(const char *path, const char *split, k2c_task **out, int *nout) {
    *out = NULL;
    *nout = 0;
    size_t len;
    char *text = k2c_read_file(path, &len);
    if (!text) return -1;
    k2c_task *t = NULL;
    int n = 0, cap = 0, line = 0, rc = -1;
    for (char *ln = text; ln && *ln;) {
        char *nl = strchr(ln, '\n');
        if (nl) *nl = 0;
        line++;
        const char *q = ln;
        while (isspace((unsigned char)*q)) q++;
        if (*q) {
            char where[600];
            snprintf(where, sizeof where, "%.512s:%d", path, line);
            json_error_t je;
            json_t *o = json_loads(ln, 0, &je);
            if (!o) { k2c_seterr("%s: not JSON: %s (column %d)", where, je.text, je.column); goto done; }
            if (n == cap) {
                k2c_task *nt = realloc(t, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *nt);
                if (!nt) { json_decref(o); k2c_seterr("out of memory"); goto done; }
                t = nt;
            }
            int r = parse_task(o, where, &t[n]);
            json_decref(o);
            n++;
            if (r) goto done;
            if (split && *split && strcmp(split, "all") && strcmp(t[n - 1].split, split)) task_clear(&t[--n]);   /* another split */
        }
        ln = nl ? nl + 1 : NULL;
    }
    if (!n) { k2c_seterr("%s: no tasks%s%s", path, split && *split ? " in split " : "", split && *split ? split : ""); goto done; }
    rc = 0;
done:
    free(text);
    if (rc) k2c_tasks_free(t, n);
    else { *out = t; *nout = n; }
    return rc;
}

/* lower case, thousands separators between digits dropped, runs of space collapsed */
static char *normalize(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ',' && i > 0 && i + 1 < n && isdigit((unsigned char)s[i - 1]) && isdigit((unsigned char)s[i + 1])) continue;
        if (isspace((unsigned char)c)) { if (p > o && p[-1] != ' ') *p++ = ' '; continue; }
        *p++ = (char)tolower((unsigned char)c);
    }
    *p = 0;
    return o;
}

static int has_number(const char *norm, double want, double tol) {
    for (const char *p = norm; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > norm && (isdigit((unsigned char)p[-1]) || p[-1] == '.'))) continue;
        const char *start = p > norm && p[-1] == '-' ? p - 1 : p;
        char *end;
        double v = strtod(start, &end);
        if (fabs(v - want) <= tol) return 1;
        p = end > p ? end - 1 : p;
    }
    return 0;
}

static void note(k2c_verdict *v, int ok, const char *fmt, const char *what) {
    v->checks++;
    v->passed += ok;
    if (!ok && strlen(v->why) + strlen(what) + 32 < sizeof v->why) {
        size_t l = strlen(v->why);
        snprintf(v->why + l, sizeof v->why - l, fmt, what);
    }
}

int k2c_task_verify(const k2c_task *t, const char *answer, const char *transcript_json, k2c_verdict *v) {
    memset(v, 0, sizeof *v);
    json_t *ver = json_loads(t->verify_json, 0, NULL), *tr = transcript_json ? json_loads(transcript_json, 0, NULL) : NULL;
    char *norm = normalize(answer ? answer : "");
    int rc = -1;
    if (!ver || !norm) { k2c_seterr("%s: verify: %s", t->id, norm ? "bad JSON" : "out of memory"); goto done; }
    note(v, answer != NULL, "%s", "no final answer; ");
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(ver, "answer"), i, x) {
        char *w = normalize(json_string_value(x));
        int ok = w && strstr(norm, w) != NULL;
        note(v, ok, "answer lacks '%s'; ", json_string_value(x));
        free(w);
    }
    json_t *num = json_object_get(ver, "number");
    if (num) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.10g", json_number_value(json_object_get(num, "value")));
        note(v, has_number(norm, json_number_value(json_object_get(num, "value")), json_number_value(json_object_get(num, "tol"))),
             "answer lacks the number %s; ", buf);
    }
    json_t *want = json_object_get(ver, "state");
    if (want) {
        json_t *got = json_object_get(json_object_get(tr, "state"), "bookings");
        int ok = json_is_array(got) && json_array_size(got) == json_array_size(want);
        json_array_foreach(want, i, x) {
            int found = 0;
            size_t j;
            json_t *g;
            json_array_foreach(got, j, g) {
                json_t *cnt = json_object_get(g, "passengers");
                if (!cnt) cnt = json_object_get(g, "nights");
                if (json_equal(json_object_get(g, "type"), json_object_get(x, "type")) && json_equal(json_object_get(g, "id"), json_object_get(x, "id")) &&
                    json_integer_value(cnt) == json_integer_value(json_object_get(x, "count"))) found = 1;
            }
            ok &= found;
        }
        note(v, ok, "%s", "the bookings are not the expected ones; ");
    }
    json_array_foreach(json_object_get(ver, "calls"), i, x) {
        int called = 0;
        size_t j, k;
        json_t *m, *c;
        json_array_foreach(json_object_get(tr, "messages"), j, m)
            json_array_foreach(json_object_get(m, "tool_calls"), k, c)
                if (json_equal(json_object_get(json_object_get(c, "function"), "name"), x)) called = 1;
        note(v, called, "%s was never called; ", json_string_value(x));
    }
    v->score = v->checks ? (double)v->passed / v->checks : 0;
    v->success = v->passed == v->checks;
    rc = 0;
done:
    json_decref(ver);
    json_decref(tr);
    free(norm);
    return rc;
}
