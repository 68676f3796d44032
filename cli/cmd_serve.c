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
    passive_omp();
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
    o.max_body = (size_t)cli_int(&a, "max-body", 1 << 20);
    o.max_queue = (int)cli_int(&a, "max-queue", 64);
    o.timeout_s = cli_num(&a, "timeout", 300);
    o.default_max_tokens = (int)cli_int(&a, "max-tokens", 256);
    if (!o.model_dir || cli_done(&a)) return 2;
    if (o.parallel < 1 || o.parallel > 256 || o.port < 0 || o.port > 65535) {
        fprintf(stderr, "k2c serve: --parallel must be 1..256 and --port 0..65535\n");
        return 2;
    }
    if (!o.api_key) o.api_key = getenv("K2C_API_KEY");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);   /* a client closing mid-stream must not kill the server */
    if (k2c_server_run(&o, &stop_flag) != 0) return cli_fail("serve");
    return 0;
}
CLI_COMMAND(cmd_serve_def, "serve",
            "--model DIR [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--parallel N] [--ctx N] [--threads N] "
            "[--max-body BYTES] [--max-queue N] [--timeout S] [--max-tokens N]",
            "OpenAI-compatible HTTP server: /v1/chat/completions (tools, streaming, json_schema), /v1/completions, "
            "/v1/models, /health, /metrics.",
            cmd_serve)
