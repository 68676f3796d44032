/* The HTTP side of the server: routing, body limits, API key, request validation (every malformed or
 * out-of-range field is a 400 with OpenAI's error object naming the field), job creation, and the
 * responses: a blocking wait for non-streaming requests, an SSE reader for streaming ones. */
#include "serve/serve.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EP_CHAT, EP_COMPLETIONS, EP_MODELS, EP_HEALTH, EP_METRICS, EP_OTHER };

typedef struct {
    char *body;
    size_t len, seen;
    int too_big;
} req_ctx;

/* A body over the cap is still read (and dropped) up to this much more, so that an ordinary client
 * sees the 413 instead of a reset while it is still sending; beyond it the connection is given up. */
#define DRAIN_MAX ((size_t)16 << 20)

static void count(srv *s, int status, int ep) {
    pthread_mutex_lock(&s->mu);
    if (status >= 100 && status < 600) s->m_requests[status / 100]++;
    s->m_by_endpoint[ep]++;
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result send_text_w(struct MHD_Connection *c, int status, const char *type, char *text, const char *warning) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(text); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", type);
    if (warning) MHD_add_response_header(r, "Warning", warning);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *type, char *text) {
    return send_text_w(c, status, type, text, NULL);
}

/* RFC 7234 warn-code 299 ("miscellaneous persistent warning"): printable ASCII, quotes and backslashes
 * replaced, bounded, so any schema text makes a valid header. */
static char *warning_header(const char *w) {
    size_t n = strlen(w), cap = n < 1500 ? n : 1500;
    char *h = malloc(cap + 32);
    if (!h) return NULL;
    size_t o = (size_t)sprintf(h, "299 k2c \"");
    for (size_t i = 0; i < cap; i++) {
        unsigned char c = (unsigned char)w[i];
        h[o++] = c < 0x20 || c > 0x7e || c == '"' || c == '\\' ? '\'' : (char)c;
    }
    if (cap < n) { memcpy(h + o, "...", 3); o += 3; }
    h[o++] = '"';
    h[o] = 0;
    return h;
}

static enum MHD_Result send_error(srv *s, struct MHD_Connection *c, int ep, int status, const char *type,
                                  const char *param, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static enum MHD_Result send_error(srv *s, struct MHD_Connection *c, int ep, int status, const char *type,
                                  const char *param, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    count(s, status, ep);
    return send_text(c, status, "application/json", srv_error_json(msg, type, param));
}

/* ------------------------------------------------------------------ streaming */
static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_job *j = cls;
    pthread_mutex_lock(&j->mu);
    /* blocking is fine: this connection has its own thread; the wait is bounded by the job's deadline */
    while (j->sse_off == j->sse_len && !j->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    ssize_t n;
    if (j->sse_off < j->sse_len) {
        size_t k = j->sse_len - j->sse_off < max ? j->sse_len - j->sse_off : max;
        memcpy(buf, j->sse + j->sse_off, k);
        j->sse_off += k;
        if (j->sse_off == j->sse_len) j->sse_off = j->sse_len = 0;   /* all sent: reuse the buffer */
        n = (ssize_t)k;
    } else n = MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* Called when the response is gone: finished, or the client went away (the scheduler frees the slot). */
static void sse_free(void *cls) {
    srv_job *j = cls;
    pthread_mutex_lock(&j->mu);
    if (!j->done) j->cancelled = 1;
    pthread_mutex_unlock(&j->mu);
    srv_job_release(j);
}

/* ------------------------------------------------------------------ request parsing */
typedef srv_perr perr;

static int bad(perr *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(perr *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = 400;
    e->param = param;
    return -1;
}

static int get_num(json_t *o, const char *k, double lo, double hi, double *out, perr *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return bad(e, k, "'%s' must be a number", k);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) return bad(e, k, "'%s' must be between %g and %g", k, lo, hi);
    *out = x;
    return 0;
}

static int get_int(json_t *o, const char *k, long lo, long hi, long *out, perr *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return bad(e, k, "'%s' must be an integer", k);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return bad(e, k, "'%s' must be between %ld and %ld", k, lo, hi);
    *out = (long)x;
    return 0;
}

static int get_bool(json_t *o, const char *k, int *out, perr *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return bad(e, k, "'%s' must be a boolean", k);
    *out = json_is_true(v);
    return 0;
}

/* The request fields each endpoint understands. Anything else is a 400 naming it: a parameter the
 * server would silently ignore (logit_bias, audio, ...) changes what the client gets. */
static const char *const chat_fields[] = {
    "model", "messages", "tools", "tool_choice", "response_format", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "seed", "n", "stream", "stream_options", "stop", "parallel_tool_calls", "logprobs",
    "top_logprobs", "presence_penalty", "frequency_penalty", "user", NULL};
static const char *const completion_fields[] = {
    "model", "prompt", "temperature", "top_p", "max_tokens", "seed", "n", "stream", "stream_options", "stop",
    "presence_penalty", "frequency_penalty", "user", NULL};

static int check_fields(json_t *r, int chat, perr *e) {
    const char *k; json_t *v;
    json_object_foreach(r, k, v) {
        if (json_is_null(v)) continue;   /* clients send null for "not set" */
        const char *const *f = chat ? chat_fields : completion_fields;
        while (*f && strcmp(*f, k)) f++;
        if (*f) continue;
        /* the harmless spellings of "off" */
        if (!strcmp(k, "logit_bias") && json_is_object(v) && !json_object_size(v)) continue;
        if (!strcmp(k, "echo") && json_is_false(v)) continue;
        if (!strcmp(k, "best_of") && json_is_integer(v) && json_integer_value(v) == 1) continue;
        if (!strcmp(k, "store") && json_is_false(v)) continue;
        snprintf(e->pbuf, sizeof e->pbuf, "%s", k);   /* k dies with the request's JSON */
        return bad(e, e->pbuf, "'%s' is not supported by this server%s", e->pbuf,
                   !chat && !strcmp(k, "logprobs") ? " on /v1/completions (use /v1/chat/completions)" : "");
    }
    json_t *so = json_object_get(r, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return bad(e, "stream_options", "'stream_options' must be an object");
        json_object_foreach(so, k, v)
            if (strcmp(k, "include_usage") || !json_is_boolean(v)) return bad(e, "stream_options", "stream_options: only include_usage (a boolean) is supported, not '%s'", k);
        if (!json_is_true(json_object_get(r, "stream"))) return bad(e, "stream_options", "'stream_options' requires stream: true");
    }
    return 0;
}

srv_job *srv_make_job(srv *s, const char *body, size_t len, int chat, perr *e) { return srv_make_job_choice(s, body, len, chat, e, 0); }

/* Builds a job from a request body (choice: which of n, offsetting the seed). Returns the job or NULL
 * with e filled. */
srv_job *srv_make_job_choice(srv *s, const char *body, size_t len, int chat, perr *e, int choice) {
    json_error_t je;
    json_t *r = json_loadb(body, len, 0, &je), *tools = NULL;
    srv_job *j = NULL;
    char *prompt = NULL, *msgs = NULL, *tools_txt = NULL, *schema_txt = NULL, *fn_name = NULL;
    int *chat_ids = NULL, nchat_ids = 0;
    if (!r) { bad(e, NULL, "invalid JSON body: %s (line %d, column %d)", je.text, je.line, je.column); goto fail; }
    if (!json_is_object(r)) { bad(e, NULL, "the body must be a JSON object"); goto fail; }
    if (check_fields(r, chat, e)) goto fail;
    k2c_turn_opts go = {.tool_choice = K2C_TOOLS_AUTO, .parallel_tool_calls = 1, .temperature = 1.0f, .top_p = 1.0f};
    double temp = 1.0, top_p = 1.0, pres = 0, freq = 0;
    long max_tokens = -1, seed = 0, nchoices = 1, top_lp = 0;
    int stream = 0, parallel = 1, logprobs = 0, usage = 0;
    if (get_num(r, "temperature", 0, 2, &temp, e) || get_num(r, "top_p", 0, 1, &top_p, e) ||
        get_int(r, "max_tokens", 1, 1 << 30, &max_tokens, e) || get_int(r, "max_completion_tokens", 1, 1 << 30, &max_tokens, e) ||
        get_int(r, "seed", -(1L << 62), 1L << 62, &seed, e) || get_int(r, "n", 1, SRV_MAX_N, &nchoices, e) ||
        get_bool(r, "stream", &stream, e) || get_bool(r, "parallel_tool_calls", &parallel, e) ||
        get_num(r, "presence_penalty", -2, 2, &pres, e) || get_num(r, "frequency_penalty", -2, 2, &freq, e) ||
        get_bool(r, "logprobs", &logprobs, e) || get_int(r, "top_logprobs", 0, K2C_TOP_LOGPROBS, &top_lp, e) ||
        get_bool(json_object_get(r, "stream_options"), "include_usage", &usage, e))
        goto fail;
    if (top_lp && !logprobs) { bad(e, "top_logprobs", "'top_logprobs' requires logprobs: true"); goto fail; }
    if (nchoices > 1 && stream) { bad(e, "n", "'n' > 1 is supported without stream only"); goto fail; }
    go.presence_penalty = (float)pres;
    go.frequency_penalty = (float)freq;
    go.logprobs = logprobs;
    go.top_logprobs = (int)top_lp;
    seed += choice;   /* the n choices of one request differ, reproducibly */
    json_t *model = json_object_get(r, "model");
    if (model && !json_is_string(model)) { bad(e, "model", "'model' must be a string"); goto fail; }
    go.temperature = (float)temp;
    go.top_p = (float)top_p;
    go.seed = (uint64_t)seed;
    go.parallel_tool_calls = parallel;
    if (chat) {
        json_t *m = json_object_get(r, "messages");
        if (!json_is_array(m) || json_array_size(m) == 0) { bad(e, "messages", "'messages' must be a non-empty array"); goto fail; }
        tools = json_object_get(r, "tools");
        if (tools && !json_is_null(tools)) {
            if (!json_is_array(tools)) { bad(e, "tools", "'tools' must be an array"); goto fail; }
            if (json_array_size(tools) && !(tools_txt = json_dumps(tools, JSON_COMPACT))) { bad(e, "tools", "bad tools"); goto fail; }
        }
        json_t *tc = json_object_get(r, "tool_choice");
        if (tc && !json_is_null(tc)) {
            const char *t = json_string_value(tc);
            if (t && !strcmp(t, "auto")) go.tool_choice = K2C_TOOLS_AUTO;
            else if (t && !strcmp(t, "none")) go.tool_choice = K2C_TOOLS_NONE;
            else if (t && !strcmp(t, "required")) go.tool_choice = K2C_TOOLS_REQUIRED;
            else if (json_is_object(tc) && json_is_string(json_object_get(json_object_get(tc, "function"), "name"))) {
                go.tool_choice = K2C_TOOLS_FUNCTION;
                fn_name = strdup(json_string_value(json_object_get(json_object_get(tc, "function"), "name")));
            } else { bad(e, "tool_choice", "'tool_choice' must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":...}}"); goto fail; }
        }
        json_t *rf = json_object_get(r, "response_format");
        if (rf && !json_is_null(rf)) {
            const char *t = json_string_value(json_object_get(rf, "type"));
            if (!json_is_object(rf) || !t) { bad(e, "response_format", "'response_format' must be an object with a type"); goto fail; }
            if (!strcmp(t, "json_object")) schema_txt = strdup("{\"type\":\"object\"}");
            else if (!strcmp(t, "json_schema")) {
                json_t *sch = json_object_get(json_object_get(rf, "json_schema"), "schema");
                if (!json_is_object(sch)) { bad(e, "response_format", "response_format.json_schema.schema must be an object"); goto fail; }
                schema_txt = json_dumps(sch, JSON_COMPACT);
            } else if (strcmp(t, "text")) { bad(e, "response_format", "response_format.type must be text, json_object or json_schema"); goto fail; }
        }
        if (!(msgs = json_dumps(m, JSON_COMPACT))) { bad(e, "messages", "bad messages"); goto fail; }
        /* specials only where the template puts them: request text can never forge a turn or a call */
        if (k2c_chat_render_ids(s->tok, msgs, tools_txt, 1, "messages", "tools", &chat_ids, &nchat_ids) != 0) {
            bad(e, strncmp(k2c_errmsg(), "tools", 5) ? "messages" : "tools", "%s", k2c_errmsg());
            goto fail;
        }
    } else {
        json_t *p = json_object_get(r, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
        if (!json_is_string(p)) { bad(e, "prompt", "'prompt' must be a string"); goto fail; }
        if (!(prompt = strdup(json_string_value(p)))) { bad(e, NULL, "out of memory"); goto fail; }
    }
    go.tools_json = tools_txt;
    go.function = fn_name;
    go.schema_json = schema_txt;
    if (!(j = srv_job_new())) { bad(e, NULL, "out of memory"); goto fail; }
    j->chat = chat;
    j->stream = stream;
    j->include_usage = usage;
    j->logprobs = logprobs;
    j->nchoices = (int)nchoices;
    j->tok = s->tok;
    /* stop: a string or up to 4 strings */
    json_t *st = json_object_get(r, "stop");
    if (st && !json_is_null(st)) {
        size_t n = json_is_string(st) ? 1 : json_is_array(st) ? json_array_size(st) : 99;
        if (n > 4) { bad(e, "stop", "'stop' must be a string or an array of up to 4 strings"); goto fail; }
        j->stops = calloc(n ? n : 1, sizeof *j->stops);
        for (size_t i = 0; j->stops && i < n; i++) {
            json_t *v = json_is_string(st) ? st : json_array_get(st, i);
            const char *sv = json_string_value(v);
            if (!sv || !*sv || strlen(sv) > 256) { bad(e, "stop", "stop strings must be non-empty strings of at most 256 bytes"); goto fail; }
            j->stops[j->nstops++] = strdup(sv);
            if (strlen(sv) > j->maxstop) j->maxstop = strlen(sv);
        }
    }
    if (chat) {
        j->prompt = chat_ids;
        j->nprompt = nchat_ids;
        chat_ids = NULL;
    } else if (k2c_tokenizer_encode(s->tok, prompt, strlen(prompt), 0, &j->prompt, &j->nprompt) != 0) {
        /* a raw completion prompt is plain text: "<|im_end|>" in it is ordinary text (docs/SERVER.md) */
        bad(e, "prompt", "%s", k2c_errmsg());
        goto fail;
    }
    if (j->nprompt == 0) { bad(e, "prompt", "the prompt is empty"); goto fail; }
    if (j->nprompt >= s->ctx) {
        bad(e, chat ? "messages" : "prompt", "the prompt has %d tokens; this server's context is %d tokens", j->nprompt, s->ctx);
        goto fail;
    }
    long room = s->ctx - j->nprompt;
    if (max_tokens < 0) max_tokens = s->opts.default_max_tokens;
    go.max_tokens = (int)(max_tokens < room ? max_tokens : room);
    go.vocab_info = s->vi;
    if (!(j->gen = k2c_turn_new(s->tok, s->model.cfg.vocab_size, &go))) {
        bad(e, strstr(k2c_errmsg(), "response_format") ? "response_format" : strstr(k2c_errmsg(), "tool_choice") ? "tool_choice" : "tools",
            "%s", k2c_errmsg());
        goto fail;
    }
    const char *mn = json_string_value(model);
    j->model_name = strdup(mn && *mn ? mn : s->model_name);
    unsigned long id = __atomic_add_fetch(&s->next_id, 1, __ATOMIC_RELAXED);
    snprintf(j->id, sizeof j->id, "%s-%lx%04lx", chat ? "chatcmpl" : "cmpl", (unsigned long)time(NULL), id & 0xffff);
    if (k2c_turn_warnings(j->gen)) {
        /* never silently ignored: in the log and in the answer's headers */
        k2c_log("server: %s: schema keywords not enforced exactly: %s\n", j->id, k2c_turn_warnings(j->gen));
        j->warning = warning_header(k2c_turn_warnings(j->gen));
    }
    j->created = (long)time(NULL);
    j->deadline = k2c_now() + s->opts.timeout_s;
    goto out;
fail:
    if (j) { srv_job_release(j); j = NULL; }
    if (!e->status) bad(e, NULL, "invalid request");
out:
    free(prompt); free(msgs); free(tools_txt); free(schema_txt); free(fn_name); free(chat_ids);
    json_decref(r);
    return j;
}

/* A Content-Length (decimal, as MHD already checked) over max_body; absent or unparsable: not over. */
int srv_length_over_cap(const char *content_length, size_t max_body) {
    if (!content_length) return 0;
    const char *p = content_length;
    while (*p == ' ' || *p == '\t') p++;
    uint64_t n = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10) return 1;   /* more digits than any cap */
        n = n * 10 + (uint64_t)(*p - '0');
    }
    return n > max_body;
}

/* ------------------------------------------------------------------ endpoints */
static char *metrics_text(srv *s) {
    char *buf = malloc(8192);
    if (!buf) return NULL;
    pthread_mutex_lock(&s->mu);
    int n = 0;
    const char *eps[] = {"chat_completions", "completions", "models", "health", "metrics", "other"};
    n += snprintf(buf + n, 8192 - (size_t)n, "# HELP k2c_requests_total HTTP requests by endpoint.\n# TYPE k2c_requests_total counter\n");
    for (int i = 0; i < 6; i++) n += snprintf(buf + n, 8192 - (size_t)n, "k2c_requests_total{endpoint=\"%s\"} %llu\n", eps[i], (unsigned long long)s->m_by_endpoint[i]);
    n += snprintf(buf + n, 8192 - (size_t)n, "# TYPE k2c_responses_total counter\n");
    for (int i = 1; i < 6; i++) n += snprintf(buf + n, 8192 - (size_t)n, "k2c_responses_total{code=\"%dxx\"} %llu\n", i, (unsigned long long)s->m_requests[i]);
    n += snprintf(buf + n, 8192 - (size_t)n,
                  "# TYPE k2c_prompt_tokens_total counter\nk2c_prompt_tokens_total %llu\n"
                  "# TYPE k2c_completion_tokens_total counter\nk2c_completion_tokens_total %llu\n"
                  "# TYPE k2c_prefix_cache_hit_tokens_total counter\nk2c_prefix_cache_hit_tokens_total %llu\n"
                  "# TYPE k2c_decode_tokens_total counter\nk2c_decode_tokens_total %llu\n"
                  "# TYPE k2c_decode_steps_total counter\nk2c_decode_steps_total %llu\n"
                  "# TYPE k2c_decode_seconds_total counter\nk2c_decode_seconds_total %.6f\n"
                  "# TYPE k2c_prefill_seconds_total counter\nk2c_prefill_seconds_total %.6f\n"
                  "# HELP k2c_prefill_chunks_total Prompt chunks prefilled (batched into decode steps while requests decode).\n"
                  "# TYPE k2c_prefill_chunks_total counter\nk2c_prefill_chunks_total %llu\n"
                  "# HELP k2c_tokens_per_second Aggregate decode tokens/s (moving average over steps).\n"
                  "# TYPE k2c_tokens_per_second gauge\nk2c_tokens_per_second %.3f\n"
                  "# TYPE k2c_cancelled_total counter\nk2c_cancelled_total %llu\n"
                  "# TYPE k2c_queue_length gauge\nk2c_queue_length %d\n"
                  "# TYPE k2c_slots_busy gauge\nk2c_slots_busy %d\n"
                  "# TYPE k2c_slots_total gauge\nk2c_slots_total %d\n"
                  "# TYPE k2c_uptime_seconds gauge\nk2c_uptime_seconds %.1f\n",
                  (unsigned long long)s->m_prompt_tokens, (unsigned long long)s->m_completion_tokens,
                  (unsigned long long)s->m_cached_tokens, (unsigned long long)s->m_decode_tokens,
                  (unsigned long long)s->m_steps, s->m_decode_s, s->m_prefill_s, (unsigned long long)s->m_prefill_chunks, s->m_rate,
                  (unsigned long long)s->m_cancelled, s->nqueue, s->busy, s->nslots, k2c_now() - s->started);
    pthread_mutex_unlock(&s->mu);
    return buf;
}

/* Waits for a queued non-streaming job; its result (status in *status), or NULL. A client that closes
 * its connection meanwhile (recv sees an orderly EOF) cancels the job, so its slot is freed at the
 * scheduler's next step as for a dropped stream. */
static char *wait_job(struct MHD_Connection *c, srv_job *j, int *status, char **warning) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        char b;
        if (!j->done && ci && recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) j->cancelled = 1;
    }
    char *res = j->result;
    *status = j->status;
    j->result = NULL;
    if (warning) { *warning = j->warning; j->warning = NULL; }
    pthread_mutex_unlock(&j->mu);
    return res;
}

/* "n" > 1: one job per choice (seeds seed, seed+1, ...), run side by side in the batch, merged into one
 * answer: choices re-indexed, completion tokens summed (the prompt counts once). */
static enum MHD_Result answer_n(srv *s, struct MHD_Connection *c, int ep, const req_ctx *rc, srv_job *first) {
    int n = first->nchoices;
    srv_job *jobs[SRV_MAX_N] = {first};
    perr e = {0};
    for (int i = 1; i < n; i++)
        if (!(jobs[i] = srv_make_job_choice(s, rc->body ? rc->body : "", rc->len, ep == EP_CHAT, &e, i))) {
            for (int k = 0; k < i; k++) srv_job_release(jobs[k]);
            return send_error(s, c, ep, e.status ? e.status : 400, "invalid_request_error", e.param, "%s", e.msg);
        }
    int queued = 0;
    while (queued < n && srv_enqueue(s, jobs[queued]) == 0) queued++;
    if (queued < n) {
        for (int i = 0; i < queued; i++) { pthread_mutex_lock(&jobs[i]->mu); jobs[i]->cancelled = 1; pthread_mutex_unlock(&jobs[i]->mu); }
        for (int i = 0; i < n; i++) srv_job_release(jobs[i]);
        return send_error(s, c, ep, 503, "server_error", NULL, "the server is busy (queue full); retry later");
    }
    json_t *out = NULL, *choices = json_array();
    json_int_t completion = 0;
    int status = 200;
    char *warning = NULL, *errtext = NULL;
    for (int i = 0; i < n; i++) {
        int st = 500;
        char *w = NULL, *res = wait_job(c, jobs[i], &st, i ? NULL : &warning);
        free(w);
        srv_job_release(jobs[i]);
        json_t *o = res && st == 200 ? json_loads(res, 0, NULL) : NULL;
        if (!o) { if (status == 200) { status = res ? st : 500; errtext = res; res = NULL; } free(res); continue; }
        free(res);
        json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
        if (ch) { json_object_set_new(ch, "index", json_integer(i)); json_array_append(choices, ch); }
        completion += json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens"));
        if (!out) out = o; else json_decref(o);
    }
    if (status != 200 || !out) {
        json_decref(out); json_decref(choices); free(warning);
        count(s, status, ep);
        return send_text(c, status, "application/json", errtext ? errtext : srv_error_json("internal error", "server_error", NULL));
    }
    free(errtext);
    json_object_set_new(out, "choices", choices);
    json_t *u = json_object_get(out, "usage");
    json_int_t prompt = json_integer_value(json_object_get(u, "prompt_tokens"));
    json_object_set_new(u, "completion_tokens", json_integer(completion));
    json_object_set_new(u, "total_tokens", json_integer(prompt + completion));
    char *txt = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (!txt) { free(warning); return MHD_NO; }
    count(s, 200, ep);
    enum MHD_Result ret = send_text_w(c, 200, "application/json", txt, warning);
    free(warning);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    srv *s = cls;
    req_ctx *rc = *con_cls;
    int ep = !strcmp(url, "/v1/chat/completions") ? EP_CHAT : !strcmp(url, "/v1/completions") ? EP_COMPLETIONS
           : !strcmp(url, "/v1/models") ? EP_MODELS : !strcmp(url, "/health") ? EP_HEALTH
           : !strcmp(url, "/metrics") ? EP_METRICS : EP_OTHER;
    if (!rc) {
        if (!(rc = calloc(1, sizeof *rc))) return MHD_NO;
        *con_cls = rc;
        /* A declared body past what we would drain is answered now, before any of it is read: MHD
         * then discards the rest of the request and closes the connection after the 413. */
        if (srv_length_over_cap(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH),
                                s->opts.max_body + DRAIN_MAX))
            return send_error(s, c, ep, 413, "invalid_request_error", NULL, "request body over %zu bytes", s->opts.max_body);
        return MHD_YES;
    }
    if (*upload_size) {
        /* Over the cap: nothing more is stored (the 413 is sent once the body is in); an undeclared
         * (chunked) body that keeps going past DRAIN_MAX closes the connection, as MHD cannot answer
         * in the middle of an upload. */
        rc->seen += *upload_size;
        if (rc->too_big || rc->len + *upload_size > s->opts.max_body) {
            rc->too_big = 1;
            *upload_size = 0;
            return rc->seen > s->opts.max_body + DRAIN_MAX ? MHD_NO : MHD_YES;
        }
        char *nb = realloc(rc->body, rc->len + *upload_size + 1);
        if (!nb) return MHD_NO;
        rc->body = nb;
        memcpy(rc->body + rc->len, upload, *upload_size);
        rc->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    if (get && (!strcmp(url, "/") || !strcmp(url, "/index.html"))) {
        /* the chat page: static, no data in it, so no key (its API calls carry the key) */
        struct MHD_Response *r = MHD_create_response_from_buffer(k2c_web_chat_html_len, (void *)k2c_web_chat_html, MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(r, "Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        count(s, 200, ep);
        return ret;
    }
    if (ep == EP_OTHER) return send_error(s, c, ep, 404, "invalid_request_error", NULL, "unknown path %.200s", url);
    if (ep == EP_HEALTH) {
        char *b = malloc(256);
        if (!b) return MHD_NO;
        pthread_mutex_lock(&s->mu);
        snprintf(b, 256, "{\"status\":\"ok\",\"slots_total\":%d,\"slots_busy\":%d,\"queue\":%d}", s->nslots, s->busy, s->nqueue);
        pthread_mutex_unlock(&s->mu);
        count(s, 200, ep);
        return send_text(c, 200, "application/json", b);
    }
    if (!srv_key_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
        return send_error(s, c, ep, 401, "invalid_request_error", NULL, "invalid or missing API key (Authorization: Bearer KEY)");
    if (ep == EP_METRICS || ep == EP_MODELS) {
        if (!get) return send_error(s, c, ep, 405, "invalid_request_error", NULL, "use GET for %s", url);
        if (ep == EP_METRICS) {
            char *m = metrics_text(s);
            if (!m) return MHD_NO;
            count(s, 200, ep);
            return send_text(c, 200, "text/plain; version=0.0.4", m);
        }
        json_t *o = json_pack("{s:s,s:[{s:s,s:s,s:I,s:s}]}", "object", "list", "data", "id", s->model_name, "object", "model",
                              "created", (json_int_t)time(NULL), "owned_by", "k2c");
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!t) return MHD_NO;
        count(s, 200, ep);
        return send_text(c, 200, "application/json", t);
    }
    if (!post) return send_error(s, c, ep, 405, "invalid_request_error", NULL, "use POST for %s", url);
    if (rc->too_big) return send_error(s, c, ep, 413, "invalid_request_error", NULL, "request body over %zu bytes", s->opts.max_body);
    perr e = {0};
    srv_job *j = srv_make_job(s, rc->body ? rc->body : "", rc->len, ep == EP_CHAT, &e);
    if (!j) return send_error(s, c, ep, e.status ? e.status : 400, "invalid_request_error", e.param, "%s", e.msg);
    if (j->nchoices > 1) return answer_n(s, c, ep, rc, j);
    if (srv_enqueue(s, j) != 0) {
        srv_job_release(j);
        return send_error(s, c, ep, 503, "server_error", NULL, "the server is busy (queue full); retry later");
    }
    if (j->stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_reader, j, sse_free);
        if (!r) { sse_free(j); return MHD_NO; }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        if (j->warning) MHD_add_response_header(r, "Warning", j->warning);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        count(s, 200, ep);
        return ret;
    }
    int status = 500;
    char *warning = NULL, *res = wait_job(c, j, &status, &warning);
    srv_job_release(j);
    if (!res) { free(warning); return send_error(s, c, ep, 500, "server_error", NULL, "internal error"); }
    count(s, status, ep);
    enum MHD_Result ret = send_text_w(c, status, "application/json", res, warning);
    free(warning);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls; (void)c; (void)toe;
    req_ctx *rc = *con_cls;
    if (rc) { free(rc->body); free(rc); }
    *con_cls = NULL;
}

int srv_http_start(srv *s) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->opts.port);
    if (inet_pton(AF_INET, s->opts.host, &addr.sin_addr) != 1) { k2c_seterr("--host: '%s' is not an IPv4 address", s->opts.host); return -1; }
    s->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                                 (uint16_t)s->opts.port, NULL, NULL, handler, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->opts.max_queue + s->nslots + 16),
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                 MHD_OPTION_END);
    if (!s->daemon) { k2c_seterr("cannot listen on %s:%d (in use?)", s->opts.host, s->opts.port); return -1; }
    return 0;
}

void srv_http_stop(srv *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
