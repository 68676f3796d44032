/* k2c serve: the OpenAI-compatible HTTP server (src/server.c). */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

/* OpenMP's default wait policy spins idle worker threads; in the server the scheduler thread does work
 * between parallel regions (picking tokens, streaming) and the HTTP threads need the cores too, so
 * spinning workers steal the CPU (4x slower on a 2-core machine). The policy is read when libgomp
 * loads, so the process re-executes itself once with OMP_WAIT_POLICY=passive unless the user set it. */
static void passive_omp(void) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *nb = realloc(buf, len + n + 1);
        if (!nb) { free(buf); fclose(f); return; }
        buf = nb;
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf) return;
    char *args[256];
    int na = 0;
    for (size_t i = 0; i < len && na < 255; i += strlen(buf + i) + 1) args[na++] = buf + i;
    args[na] = NULL;
    execv("/proc/self/exe", args);
    free(buf);   /* exec failed: go on with the default policy */
}

static int cmd_serve(int argc, char **argv) {
    /* Not under mpirun: the re-exec would come after MPI started (there, pass -x OMP_WAIT_POLICY=passive). */
    if (!cli_comm()) passive_omp();
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    k2c_server_opts o = {0};
    o.model_dir = cli_need(&a, "model");
    o.host = cli_str(&a, "host", "127.0.0.1");
    o.port = (int)cli_int(&a, "port", 8080);
    o.api_key = cli_str(&a, "api-key", NULL);
    o.parallel = (int)cli_int(&a, "parallel", 4);
    o.ctx = (int)cli_int(&a, "ctx", 0);
    o.threads = (int)cli_int(&a, "threads", 0);
    k2c_model_opts mo;
    if (cli_model_opts(&a, &mo) != 0) { cli_done(&a); return cli_fail("serve"); }
    o.model_opts = &mo;
    o.max_body = (size_t)cli_int(&a, "max-body", 1 << 20);
    o.max_queue = (int)cli_int(&a, "max-queue", 64);
    o.prefill_chunk = (int)cli_int(&a, "prefill-chunk", 16);
    o.timeout_s = cli_num(&a, "timeout", 300);
    o.default_max_tokens = (int)cli_int(&a, "max-tokens", 256);
    if (!o.model_dir || cli_done(&a)) return 2;
    if (o.parallel < 1 || o.parallel > 256 || o.port < 0 || o.port > 65535) {
        fprintf(stderr, "k2c serve: --parallel must be 1..256 and --port 0..65535\n");
        return 2;
    }
    if (!o.api_key) o.api_key = getenv("K2C_API_KEY");
    const k2c_comm *comm = cli_comm();
    if (comm && comm->rank > 0) {       /* expert parallel: this rank only serves its experts */
        k2c_model *m;
        mo.threads = o.threads > 0 ? o.threads : mo.threads;
        cli_open_model(o.model_dir, &mo, &m);     /* returns on rank 0 only */
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    /* Under mpirun a SIGTERM means the job is being torn down (a rank died, or mpirun was stopped): the other
     * ranks are gone, so there is no orderly shutdown to run; main.c's handler reports it and exits. */
    if (!comm) sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);   /* a client closing mid-stream must not kill the server */
    if (k2c_server_run(&o, &stop_flag) != 0) return cli_fail("serve");
    return 0;
}
CLI_COMMAND_ON(cmd_serve_def, CLI_EP, "serve",
            "--model DIR [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--parallel N] [--ctx N] [--threads N] "
            "[--max-body BYTES] [--max-queue N] [--timeout S] [--max-tokens N] [--prefill-chunk N]",
            "OpenAI-compatible HTTP server: /v1/chat/completions (tools, streaming, json_schema), /v1/completions, "
            "/v1/models, /health, /metrics.",
            cmd_serve)

/* k2c genbench: decode speed of one generation with and without constrained decoding, picking through
 * k2c_turn in both cases (and plain k2c_sample for reference), so the difference is the grammar's cost. */
static k2c_vocab_info *bench_vi;

static int run_gen(k2c_model *m, k2c_tokenizer *tok, const int *prompt, int np, int ntok, const char *schema,
                   const char *tools, double *pick_s, double *dec_s) {
    int V = k2c_model_config(m)->vocab_size;
    k2c_state *s = NULL;
    float *logits = malloc((size_t)V * sizeof *logits);
    int done = 0, rc = -1;
    if (!logits || !(s = k2c_state_new(m, np + ntok + 8))) goto out;
    double tp = 0, td = 0;
    for (int round = 0; done < ntok; round++) {
        k2c_state_reset(s);
        if (k2c_prefill(s, prompt, np, NULL, logits, NULL) != 0) goto out;
        k2c_turn_opts o = {.tools_json = tools, .tool_choice = tools ? K2C_TOOLS_REQUIRED : K2C_TOOLS_AUTO,
                          .parallel_tool_calls = 1, .schema_json = schema, .temperature = 0.8f, .top_p = 1.0f,
                          .seed = (uint64_t)round, .max_tokens = ntok - done, .vocab_info = bench_vi};
        k2c_turn *g = k2c_turn_new(tok, V, &o);
        if (!g) goto out;
        int id, r;
        /* the pick (k2c_turn_step: grammar, sampling) and the forward pass timed apart: the forward cost
         * depends on the position, which differs between modes (constrained answers end and restart) */
        for (;;) {
            double t0 = k2c_now();
            r = k2c_turn_step(g, logits, &id);
            double t1 = k2c_now();
            tp += t1 - t0;
            if (r != 1) break;
            if (k2c_decode(s, id, logits, NULL) != 0) { r = -1; break; }
            td += k2c_now() - t1;
        }
        done += k2c_turn_ntokens(g) > 0 ? k2c_turn_ntokens(g) : 1;
        k2c_turn_free(g);
        if (r < 0) goto out;
    }
    *pick_s = tp / done;
    *dec_s = td / done;
    rc = 0;
out:
    k2c_state_delete(s);
    free(logits);
    return rc;
}

static int cmd_genbench(int argc, char **argv) {
    passive_omp();
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    const char *dir = cli_need(&a, "model");
    int ntok = (int)cli_int(&a, "tokens", 256);
    k2c_model *m;
    if (!dir || cli_load_model(&a, &m, dir) != 0) { cli_done(&a); return dir ? cli_fail("genbench") : 2; }
    if (cli_done(&a)) { k2c_model_close(m); return 2; }
    k2c_tokenizer *tok = NULL;
    int *prompt = NULL, np = 0, rc = 1;
    const char *text = "<|im_user|>user<|im_middle|>Write some JSON.<|im_end|><|im_assistant|>assistant<|im_middle|>";
    if (k2c_tokenizer_load(&tok, dir) != 0 || k2c_tokenizer_encode(tok, text, strlen(text), 1, &prompt, &np) != 0 ||
        !(bench_vi = k2c_vocab_info_new(tok))) goto done;
    const char *schema = "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                         "\"properties\":{\"name\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"},\"ok\":{\"type\":\"boolean\"}},"
                         "\"required\":[\"name\",\"n\",\"ok\"]}}},\"required\":[\"items\"]}";
    char tools[1024];
    snprintf(tools, sizeof tools, "[{\"type\":\"function\",\"function\":{\"name\":\"record\",\"parameters\":%s}}]", schema);
    double p[3], d[3];
    if (run_gen(m, tok, prompt, np, ntok, NULL, NULL, &p[0], &d[0]) || run_gen(m, tok, prompt, np, ntok, schema, NULL, &p[1], &d[1]) ||
        run_gen(m, tok, prompt, np, ntok, NULL, tools, &p[2], &d[2])) goto done;
    double dec = (d[0] + d[1] + d[2]) / 3;   /* the forward pass does not depend on the mode */
    printf("{\"tokens\":%d,\"decode_ms_per_token\":%.3f,\"pick_us_per_token\":{\"free\":%.1f,\"json_schema\":%.1f,\"tool_call\":%.1f},"
           "\"tok_s\":{\"free\":%.1f,\"json_schema\":%.1f,\"tool_call\":%.1f},\"drop_pct\":{\"json_schema\":%.2f,\"tool_call\":%.2f}}\n",
           ntok, dec * 1e3, p[0] * 1e6, p[1] * 1e6, p[2] * 1e6, 1 / (dec + p[0]), 1 / (dec + p[1]), 1 / (dec + p[2]),
           100 * (1 - (dec + p[0]) / (dec + p[1])), 100 * (1 - (dec + p[0]) / (dec + p[2])));
    rc = 0;
done:
    if (rc) cli_fail("genbench");
    free(prompt);
    k2c_vocab_info_free(bench_vi);
    if (tok) k2c_tokenizer_free(tok);
    k2c_model_close(m);
    return rc;
}
CLI_COMMAND(cmd_genbench_def, "genbench", "--model DIR [--tokens N] [--threads N]",
            "Decode tokens/s of one generation: free text vs json_schema-constrained vs forced tool call (bench/server.sh).",
            cmd_genbench)
