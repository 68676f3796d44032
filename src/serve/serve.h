/* serve — what runs a model for someone else:
 *   turn.c          one assistant turn under constraints (tool-call markers, tool names, JSON Schema)
 *   server.c        the OpenAI-compatible server's scheduler: slots, batched decode, prefix reuse
 *   server_http.c   HTTP (libmicrohttpd), request parsing, streaming
 *   mcp.c           MCP client over stdio
 *   agent_tools.c   built-in agent tools, confined to a work folder
 *   agent.c         the agent loop
 * The only layer that links an HTTP library. Internal to libk2c. */
#ifndef K2C_SERVE_H
#define K2C_SERVE_H
#include "model/model.h"
#include "text/text.h"

#include <pthread.h>

typedef struct srv_job srv_job;
struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                       /* HTTP side + scheduler */
    /* request (read-only once queued) */
    int *prompt, nprompt;
    k2c_turn *gen;
    int stream, chat, include_usage, logprobs, nchoices;
    const k2c_tokenizer *tok;       /* for logprobs' token texts */
    char id[48];
    long created;
    char *model_name;
    char *warning;                  /* Warning header value (schema keywords not enforced), or NULL */
    char **stops; int nstops;
    size_t maxstop;                 /* longest stop string */
    double deadline;
    /* state shared with the HTTP thread (under mu) */
    int done, cancelled;
    char *sse; size_t sse_len, sse_cap, sse_off;
    char *result; int status;       /* non-streaming answer */
    /* scheduler-only progress */
    size_t content_sent, content_end;
    int stopped, role_sent, calls_announced, nargs_sent;
    size_t *args_sent;
    int lp_sent; size_t lp_bytes;   /* logprobs entries streamed, and the content bytes they cover */
    int ntok, cached;
    srv_job *next;
};

typedef struct {
    k2c_state st;
    int *hist;                      /* token ids of the rows in st's cache (st.pos of them) */
    float *logits, *cur;            /* own logits (after prefill); cur: the logits for the next pick, NULL while prefilling */
    srv_job *job;
    uint64_t admitted;              /* the scheduler's admission count when job came in: prompts prefill in this order */
} srv_slot;

typedef struct {
    k2c_server_opts opts;
    k2c_model model;
    k2c_tokenizer *tok;
    k2c_vocab_info *vi;
    char *model_name;
    int ctx, nslots;
    srv_slot *slots;
    float *batch_logits;
    pthread_t sched;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job *queue; int nqueue, busy, stopping;
    uint64_t admissions;            /* jobs given a slot so far (scheduler thread only) */
    void *daemon;
    double started;
    unsigned long next_id;          /* request ids (atomic) */
    /* metrics (under mu) */
    uint64_t m_requests[6];         /* by status class: 1xx .. 5xx (index 1..5) */
    uint64_t m_by_endpoint[6];
    uint64_t m_prompt_tokens, m_completion_tokens, m_cached_tokens, m_decode_tokens, m_steps, m_cancelled, m_prefill_chunks;
    double m_prefill_s, m_decode_s, m_rate;
} srv;

srv_job *srv_job_new(void);
void srv_job_release(srv_job *j);
int srv_enqueue(srv *s, srv_job *j);            /* -1: queue full or stopping */
char *srv_error_json(const char *msg, const char *type, const char *param);
int srv_key_ok(const srv *s, const char *authorization);
char *srv_utf8_clean(const char *s, size_t n, size_t *out_len);
/* Request checks that need neither a socket nor a model run (server_http.c; fuzz/fuzz_server.c calls them):
 * a declared Content-Length over the cap (refused before any of the body is read), and the body itself. */
typedef struct { int status; const char *param; char msg[512]; char pbuf[80]; } srv_perr;   /* pbuf: a param named by the request */
int srv_length_over_cap(const char *content_length, size_t max_body);
srv_job *srv_make_job(srv *s, const char *body, size_t len, int chat, srv_perr *e);   /* NULL + e (4xx) */
#define SRV_MAX_N 8   /* "n": choices per request, each its own job */
srv_job *srv_make_job_choice(srv *s, const char *body, size_t len, int chat, srv_perr *e, int choice);
int srv_http_start(srv *s);
/* The chat page served at / (web/chat.html, embedded by scripts/embed.sh). */
extern const unsigned char k2c_web_chat_html[];
extern const size_t k2c_web_chat_html_len;
void srv_http_stop(srv *s);

/* ------------------------------------------------------------------ MCP, built-in tools */
/* MCP client over stdio (mcp.c): cmdline runs under /bin/sh; JSON-RPC 2.0, one message per line;
 * every wait bounded by timeout_s. */
typedef struct k2c_mcp k2c_mcp;
k2c_mcp *k2c_mcp_start(const char *cmdline, double timeout_s);       /* initialize + initialized */
void k2c_mcp_close(k2c_mcp *m);                                      /* EOF, then kill after 2 s */
char *k2c_mcp_list_tools(k2c_mcp *m);            /* OpenAI tools array (parameters = inputSchema), malloc'd */
/* tools/call: the result's text parts joined (malloc'd), *is_error = isError; NULL + error on failure. */
char *k2c_mcp_call_tool(k2c_mcp *m, const char *name, const char *args_json, int *is_error);

/* Built-in agent tools (agent_tools.c): calculator, read_file, list_dir, write_file. File tools are
 * confined to workdir: relative paths only, no "..", no symbolic link followed anywhere (each
 * component opened with O_NOFOLLOW from a directory descriptor), writes atomic (temp file + rename). */
int k2c_calc_eval(const char *expr, double *out);   /* arithmetic only; -1 + error */
const char *k2c_builtin_tools_json(void);           /* their OpenAI tool declarations */
/* The result text (malloc'd) with *is_error 0, or NULL with *is_error 1 and the reason in k2c_errmsg(). */
char *k2c_builtin_tool(const char *workdir, const char *name, const char *args_json, int *is_error);

/* Environments (agent_env.c). Dates are days since 1970-01-01. */
int k2c_date_parse(const char *iso, long *days);            /* strict YYYY-MM-DD; -1 + error */
void k2c_date_format(long days, char out[11]);
const char *k2c_weekday_name(long days);
/* value in unit from -> unit to (canonical unit name in *unit); -1 + error for unknown or mismatched units */
int k2c_convert_units(double value, const char *from, const char *to, double *out, const char **unit);
char *k2c_env_tool(const char *name, const char *args_json);   /* convert_units, days_between, weekday, add_days */
typedef struct k2c_travel k2c_travel;
k2c_travel *k2c_travel_new(uint64_t seed);
void k2c_travel_free(k2c_travel *t);
char *k2c_travel_call(k2c_travel *t, const char *name, const char *args_json);   /* NULL + error */
char *k2c_travel_state_json(const k2c_travel *t);


#endif
