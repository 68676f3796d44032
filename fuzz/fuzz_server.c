/* The server's request path without a socket or a model: the request line and headers (Authorization,
 * Content-Length) then the JSON body, as "METHOD PATH\nHeader: value\n..." FZ_SEP BODY. Runs the
 * checks the HTTP handler runs before queueing: srv_key_ok, srv_length_over_cap, srv_make_job (JSON
 * validation, chat template, tokenization, tools / response_format grammars). A job must fit the
 * context; a refusal must be a 4xx with a message. The tokenizer is models/k2-mini's (K2C_FUZZ_TOKENIZER
 * overrides). */
#include "fuzz_util.h"
#include "serve/serve.h"

static srv S;

static void setup(void) {
    const char *dir = getenv("K2C_FUZZ_TOKENIZER");
    if (!dir) dir = "models/k2-mini";
    if (k2c_tokenizer_load(&S.tok, dir) != 0) { fprintf(stderr, "fuzz_server: %s\n", k2c_errmsg()); abort(); }
    S.vi = k2c_vocab_info_new(S.tok);
    if (!S.vi) abort();
    S.opts.api_key = "sekret";
    S.opts.max_body = 65536;
    S.opts.timeout_s = 60;
    S.opts.default_max_tokens = 64;
    S.model.cfg.vocab_size = k2c_tokenizer_vocab_size(S.tok);
    S.model_name = (char *)"k2c";
    S.ctx = 2048;
    S.nslots = 1;
}

static const char *header(char *hdrs, const char *name) {   /* hdrs: NUL-separated lines */
    size_t nl = strlen(name);
    for (char *l = hdrs; *l; l += strlen(l) + 1)
        if (!strncasecmp(l, name, nl) && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ') v++;
            return v;
        }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!S.tok) setup();
    const uint8_t *part[2];
    size_t len[2];
    int n = fz_split(data, size, part, len, 2);
    char *hdrs = malloc(len[0] + 2);
    memcpy(hdrs, part[0], len[0]);
    hdrs[len[0]] = hdrs[len[0] + 1] = 0;
    for (size_t i = 0; i < len[0]; i++) if (hdrs[i] == '\n') hdrs[i] = 0;
    const uint8_t *body = n > 1 ? part[1] : (const uint8_t *)"";
    size_t blen = n > 1 ? len[1] : 0;
    int chat = !strstr(hdrs, "/v1/completions");
    const char *rest = hdrs + strlen(hdrs) + 1;   /* header lines after the request line */
    if ((size_t)(rest - hdrs) > len[0]) rest = "";
    char *h = (char *)rest;
    (void)srv_key_ok(&S, header(h, "Authorization"));
    const char *cl = header(h, "Content-Length");
    int over = srv_length_over_cap(cl, S.opts.max_body);
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end != cl && v <= S.opts.max_body && strlen(cl) < 19) FZ_CHECK(!over, "Content-Length %s under the cap refused", cl);
    }
    /* The body as the handler stores it: at most max_body bytes, NUL-terminated. */
    if (blen > S.opts.max_body) blen = S.opts.max_body;
    char *b = fz_strndup(body, blen);
    srv_perr e = {0};
    srv_job *j = srv_make_job(&S, b, blen, chat, &e);
    if (!j) fz_rejected(e.msg);
    if (j) {
        fz_accepted("srv_make_job");
        FZ_CHECK(j->nprompt > 0 && j->nprompt < S.ctx, "prompt of %d tokens", j->nprompt);
        FZ_CHECK(j->gen != NULL, "job without a turn");
        FZ_CHECK(j->nstops <= 4, "%d stops", j->nstops);
        srv_job_release(j);
    } else {
        FZ_CHECK(e.status >= 400 && e.status < 500 && e.msg[0], "refusal %d '%s'", e.status, e.msg);
        char *ej = srv_error_json(e.msg, "invalid_request_error", e.param);
        FZ_CHECK(ej, "error json");
        free(ej);
    }
    free(b);
    free(hdrs);
    return 0;
}
