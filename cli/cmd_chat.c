/* k2c chat / k2c run: conversations with a model folder (default: the bundled models/k2-mini).
 *
 * Each turn renders the whole conversation with the Kimi chat template (or, for a base model without a
 * template, appends the user's text to a running document), tokenizes it, and keeps the latent cache
 * for the longest prefix it shares with what the cache already holds, so a turn only prefills what is
 * new. Ctrl-C stops the answer being generated, not the program. */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int cancel_flag;
static volatile int generating;

static void on_sigint(int sig) {
    (void)sig;
    cancel_flag = 1;
}

/* models/k2-mini next to the build directory of this binary, else relative to the working directory. */
static const char *default_model(char *buf, size_t n) {
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, n, "%s/../models/k2-mini", exe);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    snprintf(buf, n, "models/k2-mini");
    return buf;
}

typedef struct {
    k2c_model *m;
    k2c_tokenizer *tok;
    k2c_state *s;
    int max_ctx;            /* tokens the state holds */
    k2c_sampler sm;
    int templated;          /* the tokenizer carries the Kimi chat template */
    int *cached; int ncached, cap;   /* ids whose keys are in the cache, in order */
    json_t *messages;       /* the conversation (templated models) */
    char *doc; size_t doclen;        /* the running text (base models) */
    int stop_ids[2], nstop;
    int max_tokens, ignore_eos;
    float temperature, top_p;
    uint64_t seed;
    k2c_detok dt;
    char *answer; size_t alen, acap; /* text of the answer being generated */
} chat;

static int chat_token(void *ctx, int id) {
    chat *c = ctx;
    const char *t;
    size_t n;
    c->cached[c->ncached++] = id;            /* in the cache once decoded; see the fix-up after generate */
    if (k2c_detok_push(&c->dt, id, &t, &n) == 0 && n) {
        fwrite(t, 1, n, stdout);
        fflush(stdout);
        if (c->alen + n + 1 > c->acap) {
            size_t nc = (c->alen + n + 1) * 2;
            char *na = realloc(c->answer, nc);
            if (!na) return 1;
            c->answer = na; c->acap = nc;
        }
        memcpy(c->answer + c->alen, t, n);
        c->alen += n;
        c->answer[c->alen] = 0;
    }
    return 0;
}

/* The prompt ids for the next answer. Templated: the rendered conversation with specials only where the
 * template puts them (what the user types is ordinary text, "<|im_end|>" included). Base model: the
 * running document is the user's own continuation text, encoded with specials allowed as the model's
 * own answers (appended to it) were emitted. */
static int prompt_ids(chat *c, int **ids, int *n) {
    if (!c->templated) {
        const char *d = c->doc ? c->doc : "";
        return k2c_tokenizer_encode(c->tok, d, strlen(d), 1, ids, n);
    }
    char *js = json_dumps(c->messages, JSON_COMPACT);
    if (!js) { k2c_seterr("out of memory"); return -1; }
    int rc = k2c_chat_render_ids(c->tok, js, NULL, 1, "conversation", NULL, ids, n);
    free(js);
    return rc;
}

static int append_doc(chat *c, const char *text) {
    size_t n = strlen(text);
    char *d = realloc(c->doc, c->doclen + n + 1);
    if (!d) { k2c_seterr("out of memory"); return -1; }
    memcpy(d + c->doclen, text, n + 1);
    c->doc = d;
    c->doclen += n;
    return 0;
}

/* Adds the user's turn, generates and prints the answer, adds it to the conversation. */
static int turn(chat *c, const char *user, int show_speed) {
    if (c->templated) {
        json_array_append_new(c->messages, json_pack("{s:s, s:s}", "role", "user", "content", user));
    } else if (append_doc(c, user) != 0) return -1;
    int *ids = NULL, n = 0, rc = -1;
    if (prompt_ids(c, &ids, &n) != 0) goto done;
    if (n == 0) { k2c_seterr("empty prompt"); goto done; }
    if (n + c->max_tokens + 1 > c->max_ctx) {
        k2c_seterr("the conversation (%d tokens) no longer fits the %d-token context: /reset starts over", n, c->max_ctx);
        goto done;
    }
    /* Keep the cache for the longest prefix it shares with the new prompt (at least one token is
     * always run, for the logits). */
    int keep = 0;
    while (keep < c->ncached && keep < n - 1 && c->cached[keep] == ids[keep]) keep++;
    k2c_state_truncate(c->s, keep);
    if (n + c->max_tokens + 1 > c->cap) {
        int *nc = realloc(c->cached, (size_t)(n + c->max_tokens + 1) * sizeof *nc);
        if (!nc) { k2c_seterr("out of memory"); goto done; }
        c->cached = nc; c->cap = n + c->max_tokens + 1;
    }
    memcpy(c->cached, ids, (size_t)n * sizeof *ids);
    c->ncached = n;
    c->alen = 0;
    k2c_detok_init(&c->dt, c->tok);
    k2c_gen_opts o = {.max_tokens = c->max_tokens, .stop_ids = c->stop_ids, .nstop = c->nstop, .cancel = &cancel_flag,
                      .ignore_eos = c->ignore_eos};
    k2c_gen_stats st;
    cancel_flag = 0;
    generating = 1;
    int r = k2c_generate(c->s, &c->sm, ids + keep, n - keep, &o, chat_token, c, &st);
    generating = 0;
    const char *t;
    size_t tn;
    k2c_detok_flush(&c->dt, &t, &tn);
    fwrite(t, 1, tn, stdout);
    k2c_detok_free(&c->dt);
    if (r != 0) goto done;
    /* the last emitted token was never decoded when the loop ended on the length limit */
    if (st.pending >= 0 && st.stop != K2C_STOP_EOS) c->ncached--;
    if (k2c_state_pos(c->s) != c->ncached) c->ncached = 0;      /* cannot happen; never reuse a cache we cannot vouch for */
    const char *answer = c->answer ? c->answer : "";
    if (c->templated) json_array_append_new(c->messages, json_pack("{s:s, s:s}", "role", "assistant", "content", answer));
    else if (append_doc(c, answer) != 0) goto done;
    printf("\n");
    if (st.stop == K2C_STOP_CANCEL) printf("[stopped]\n");
    if (show_speed)
        printf("[%d tokens, %.1f tok/s; prompt %d new tokens at %.1f tok/s]\n", st.generated,
               st.decode_s > 0 ? st.generated / st.decode_s : 0.0, n - keep, st.prefill_s > 0 ? (n - keep) / st.prefill_s : 0.0);
    fflush(stdout);
    rc = 0;
done:
    free(ids);
    return rc;
}

static void chat_free(chat *c) {
    k2c_state_delete(c->s);
    k2c_sampler_free(&c->sm);
    k2c_tokenizer_free(c->tok);
    k2c_model_close(c->m);
    json_decref(c->messages);
    free(c->doc);
    free(c->cached);
    free(c->answer);
}

static void reset(chat *c) {
    json_array_clear(c->messages);
    c->doclen = 0;
    if (c->doc) c->doc[0] = 0;
    c->ncached = 0;
    k2c_state_reset(c->s);
}

/* Shared set-up of chat and run. */
static int chat_open(chat *c, cli_args *a, const char *cmd) {
    char buf[4200];
    const char *dir = cli_str(a, "model", NULL);
    if (!dir) dir = default_model(buf, sizeof buf);
    memset(c, 0, sizeof *c);
    c->max_tokens = (int)cli_int(a, "max-tokens", 200);
    c->temperature = (float)cli_num(a, "temperature", 0.7);
    c->top_p = (float)cli_num(a, "top-p", 0.9);
    c->seed = (uint64_t)cli_int(a, "seed", 0);
    c->ignore_eos = cli_flag(a, "ignore-eos");
    int ctx = (int)cli_int(a, "ctx", 0);
    if (c->seed == 0) c->seed = (uint64_t)k2c_now() * 1000003u;
    if (cli_load_tokenizer(a, dir, &c->tok) != 0 || cli_load_model(a, &c->m, dir) != 0) { cli_done(a); return cli_fail(cmd); }
    if (cli_done(a)) return 2;
    const k2c_config *mc = k2c_model_config(c->m);
    if (k2c_tokenizer_vocab_size(c->tok) > mc->vocab_size) {
        k2c_seterr("%s: tokenizer has %d ids but the model's vocab_size is %d", dir, k2c_tokenizer_vocab_size(c->tok), mc->vocab_size);
        return cli_fail(cmd);
    }
    if (ctx <= 0) ctx = mc->max_position_embeddings < 4096 ? mc->max_position_embeddings : 4096;
    if (!(c->s = k2c_state_new(c->m, ctx))) return cli_fail(cmd);
    c->max_ctx = ctx;
    if (k2c_sampler_init(&c->sm, mc->vocab_size, c->temperature, c->top_p, 0, 0.0f, c->seed) != 0) return cli_fail(cmd);
    c->templated = k2c_tokenizer_has_kimi_template(c->tok);
    c->messages = json_array();
    int im_end = k2c_tokenizer_token_id(c->tok, "<|im_end|>");
    if (c->templated && im_end >= 0) c->stop_ids[c->nstop++] = im_end;
    int eos = k2c_tokenizer_eos(c->tok);
    if (eos >= 0) c->stop_ids[c->nstop++] = eos;
    return 0;
}

static const char *HELP =
    "commands: /help  /reset (forget the conversation)  /temp T (sampling temperature)  /quit\n"
    "Ctrl-C stops the answer being written; Ctrl-D or /quit leaves.\n";

static int cmd_chat(int argc, char **argv) {
    cli_args a;
    chat c;
    if (cli_parse(&a, argc, argv, "ignore-eos")) return 2;
    int rc = chat_open(&c, &a, "chat");
    if (rc) { chat_free(&c); return rc; }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;      /* no SA_RESTART: Ctrl-C at the prompt interrupts the read */
    sigaction(SIGINT, &sa, NULL);
    int tty = isatty(0);
    if (tty) printf("k2c chat — %s model, %s. /help for commands.\n", k2c_model_config(c.m)->model_type,
                    c.templated ? "Kimi chat template" : "base model (plain continuation)");
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (tty) { printf("> "); fflush(stdout); }
        errno = 0;
        cancel_flag = 0;
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) {
            if (errno == EINTR || cancel_flag) { clearerr(stdin); printf("\n(/quit leaves)\n"); continue; }
            break;   /* end of input */
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/help")) { fputs(HELP, stdout); continue; }
        if (!strcmp(line, "/reset")) { reset(&c); printf("(conversation cleared)\n"); continue; }
        if (!strncmp(line, "/temp", 5)) {
            char *end;
            float t = strtof(line + 5, &end);
            if (end == line + 5 || t < 0 || t > 5) { printf("usage: /temp T with 0 <= T <= 5 (now %.2f)\n", c.sm.temperature); continue; }
            c.sm.temperature = t;
            printf("(temperature %.2f)\n", t);
            continue;
        }
        if (line[0] == '/') { printf("unknown command %s\n%s", line, HELP); continue; }
        if (turn(&c, line, 1) != 0) fprintf(stderr, "k2c chat: error: %s\n", k2c_errmsg());
    }
    free(line);
    chat_free(&c);
    return 0;
}
CLI_COMMAND_ON(cmd_chat_def, CLI_EP, "chat",
            "[--model DIR] [--tokenizer DIR] [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--ctx N] [--threads N] [--ignore-eos]",
            "Interactive, streaming, multi-turn conversation (default model: the bundled models/k2-mini).", cmd_chat)

static int cmd_run(int argc, char **argv) {
    cli_args a;
    chat c;
    if (cli_parse(&a, argc, argv, "ignore-eos")) return 2;
    if (a.npos != 1) { fprintf(stderr, "k2c run: give the prompt as one argument\n"); cli_done(&a); return 2; }
    const char *prompt = a.pos[0];
    int rc = chat_open(&c, &a, "run");
    if (rc) { chat_free(&c); return rc; }
    if (turn(&c, prompt, 0) != 0) rc = cli_fail("run");
    chat_free(&c);
    return rc;
}
CLI_COMMAND_ON(cmd_run_def, CLI_EP, "run", "[--model DIR] [--max-tokens N] [--temperature T] [--seed S] \"prompt\"",
            "One completion for scripts: a single chat turn (or a plain continuation for a base model).", cmd_run)
