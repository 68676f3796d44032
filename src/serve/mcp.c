/* Model Context Protocol client over stdio: the server is a child process speaking JSON-RPC 2.0, one
 * message per line. We send initialize (+ notifications/initialized), tools/list (following
 * nextCursor) and tools/call. Lines that are not the response we wait for (notifications, logs that a
 * server prints on stdout by mistake, server-to-client requests) are skipped; every wait is bounded by a
 * deadline, so a hung server cannot hang the agent. */
#include "serve/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16 << 20)

struct k2c_mcp {
    pid_t pid;
    int in, out;                    /* our ends: write requests to in, read responses from out */
    char *buf; size_t len, cap;     /* bytes read but not yet consumed */
    int next_id;
    double timeout_s;
    char *cmd;
};

static int write_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_msg(k2c_mcp *m, json_t *msg) {
    char *t = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!t) { k2c_seterr("mcp: cannot serialize a request"); return -1; }
    int rc = write_all(m->in, t, strlen(t)) || write_all(m->in, "\n", 1);
    free(t);
    if (rc) { k2c_seterr("mcp %s: the server closed its input", m->cmd); return -1; }
    return 0;
}

/* Next line from the server (malloc'd, no newline), NULL on EOF / timeout / error. */
static char *read_line(k2c_mcp *m, double deadline) {
    for (;;) {
        char *nl = m->len ? memchr(m->buf, '\n', m->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - m->buf);
            char *line = strndup(m->buf, n);
            memmove(m->buf, nl + 1, m->len - n - 1);
            m->len -= n + 1;
            if (!line) k2c_seterr("out of memory");
            return line;
        }
        if (m->len > LINE_MAX_BYTES) { k2c_seterr("mcp %s: a message over %d bytes", m->cmd, LINE_MAX_BYTES); return NULL; }
        double left = deadline - k2c_now();
        if (left <= 0) { k2c_seterr("mcp %s: no answer within %.0f s", m->cmd, m->timeout_s); return NULL; }
        struct pollfd p = {.fd = m->out, .events = POLLIN};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        if (m->len + 65536 > m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 131072;
            char *nb = realloc(m->buf, cap);
            if (!nb) { k2c_seterr("out of memory"); return NULL; }
            m->buf = nb;
            m->cap = cap;
        }
        ssize_t got = read(m->out, m->buf + m->len, 65536);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) { k2c_seterr("mcp %s: the server exited", m->cmd); return NULL; }
        m->len += (size_t)got;
    }
}

/* Sends a request and waits for the response with its id: the "result" (new reference) or NULL. */
static json_t *call(k2c_mcp *m, const char *method, json_t *params) {
    int id = ++m->next_id;
    json_t *req = json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", id, "method", method);
    if (!req) { json_decref(params); k2c_seterr("out of memory"); return NULL; }
    if (params) json_object_set_new(req, "params", params);
    if (send_msg(m, req) != 0) return NULL;
    double deadline = k2c_now() + m->timeout_s;
    for (;;) {
        char *line = read_line(m, deadline);
        if (!line) return NULL;
        json_t *msg = json_loads(line, 0, NULL);
        free(line);
        if (!json_is_object(msg)) { json_decref(msg); continue; }   /* not JSON-RPC: a stray log line */
        json_t *mid = json_object_get(msg, "id");
        if (json_object_get(msg, "method")) {
            /* a request from the server (e.g. roots/list, ping): answer "method not found" so it moves on */
            if (mid) {
                json_t *err = json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", mid, "error", "code", -32601, "message", "not supported");
                if (err) send_msg(m, err);
            }
            json_decref(msg);
            continue;
        }
        if (!json_is_integer(mid) || json_integer_value(mid) != id) { json_decref(msg); continue; }
        json_t *err = json_object_get(msg, "error");
        if (err) {
            k2c_seterr("mcp %s: %s failed: %s", m->cmd, method, json_is_string(json_object_get(err, "message")) ? json_string_value(json_object_get(err, "message")) : "error");
            json_decref(msg);
            return NULL;
        }
        json_t *res = json_incref(json_object_get(msg, "result"));
        json_decref(msg);
        if (!res) k2c_seterr("mcp %s: %s: response without result", m->cmd, method);
        return res;
    }
}

k2c_mcp *k2c_mcp_start(const char *cmdline, double timeout_s) {
    k2c_mcp *m = calloc(1, sizeof *m);
    int to_child[2] = {-1, -1}, from_child[2] = {-1, -1};
    if (!m || !(m->cmd = strdup(cmdline))) { free(m); k2c_seterr("out of memory"); return NULL; }
    m->timeout_s = timeout_s > 0 ? timeout_s : 30;
    m->pid = -1;
    if (pipe2(to_child, O_CLOEXEC) || pipe2(from_child, O_CLOEXEC)) { k2c_seterr("mcp: pipe: %s", strerror(errno)); goto fail; }
    m->pid = fork();
    if (m->pid < 0) { k2c_seterr("mcp: fork: %s", strerror(errno)); goto fail; }
    if (m->pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        execl("/bin/sh", "sh", "-c", cmdline, (char *)NULL);
        _exit(127);
    }
    close(to_child[0]); close(from_child[1]);
    m->in = to_child[1];
    m->out = from_child[0];
    json_t *init = call(m, "initialize", json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", "2024-11-05", "capabilities",
                                                   "clientInfo", "name", "k2c", "version", "0.1"));
    if (!init) goto fail_started;
    json_decref(init);
    if (send_msg(m, json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", "notifications/initialized")) != 0) goto fail_started;
    return m;
fail:
    if (to_child[0] >= 0) { close(to_child[0]); close(to_child[1]); }
    if (from_child[0] >= 0) { close(from_child[0]); close(from_child[1]); }
    free(m->cmd);
    free(m);
    return NULL;
fail_started: {
        char msg[K2C_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", k2c_errmsg());
        k2c_mcp_close(m);
        k2c_seterr("%s", msg);
        return NULL;
    }
}

void k2c_mcp_close(k2c_mcp *m) {
    if (!m) return;
    if (m->in >= 0) close(m->in);   /* EOF on stdin: a well-behaved server exits */
    if (m->out >= 0) close(m->out);
    if (m->pid > 0) {
        int st;
        double end = k2c_now() + 2;
        while (waitpid(m->pid, &st, WNOHANG) == 0) {
            if (k2c_now() > end) { kill(m->pid, SIGKILL); waitpid(m->pid, &st, 0); break; }
            usleep(20000);
        }
    }
    free(m->buf);
    free(m->cmd);
    free(m);
}

/* tools/list -> OpenAI tools array text (name, description, parameters = inputSchema). */
char *k2c_mcp_list_tools(k2c_mcp *m) {
    json_t *out = json_array();
    char *cursor = NULL;
    for (int page = 0; page < 100; page++) {
        json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
        free(cursor);
        cursor = NULL;
        json_t *res = call(m, "tools/list", params);
        if (!res) { json_decref(out); return NULL; }
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(res, "tools"), i, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            if (!name) continue;
            json_t *schema = json_object_get(t, "inputSchema");
            const char *desc = json_string_value(json_object_get(t, "description"));
            json_t *fn = json_pack("{s:s,s:s,s:o}", "name", name, "description", desc ? desc : "", "parameters",
                                   json_is_object(schema) ? json_incref(schema) : json_pack("{s:s}", "type", "object"));
            json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
        }
        const char *next = json_string_value(json_object_get(res, "nextCursor"));
        if (next && *next) cursor = strdup(next);
        json_decref(res);
        if (!cursor) break;
    }
    free(cursor);
    char *txt = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return txt;
}

/* tools/call: the text parts of the result joined; *is_error from isError. NULL + error when the call
 * itself failed (protocol error, timeout). */
char *k2c_mcp_call_tool(k2c_mcp *m, const char *name, const char *args_json, int *is_error) {
    json_t *args = json_loads(args_json, 0, NULL);
    if (!json_is_object(args)) { json_decref(args); k2c_seterr("mcp: arguments must be a JSON object"); return NULL; }
    json_t *res = call(m, "tools/call", json_pack("{s:s,s:o}", "name", name, "arguments", args));
    if (!res) return NULL;
    *is_error = json_is_true(json_object_get(res, "isError"));
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(json_object_get(res, "content"), i, c) {
        const char *t = json_string_value(json_object_get(c, "text"));
        if (t) n += strlen(t) + 1;
    }
    char *out = malloc(n + 1), *p = out;
    if (!out) { json_decref(res); k2c_seterr("out of memory"); return NULL; }
    json_array_foreach(json_object_get(res, "content"), i, c) {
        const char *t = json_string_value(json_object_get(c, "text"));
        if (!t) continue;
        if (p != out) *p++ = '\n';
        size_t l = strlen(t);
        memcpy(p, t, l);
        p += l;
    }
    *p = 0;
    json_decref(res);
    return out;
}
