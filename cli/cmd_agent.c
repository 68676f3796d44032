/* k2c agent: the tool-calling loop (src/serve/agent.c) with built-in tools and MCP servers. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_agent(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "allow-write")) return 2;
    k2c_agent_opts o = {0};
    const char *mcp[16];
    int nmcp = 0;
    /* --mcp may be given several times: collect them all (cli_str keeps only the last) */
    for (int i = 0; i < a.nopt; i++)
        if (!strcmp(a.key[i], "mcp")) {
            a.used[i] = 1;
            if (nmcp == 16) { fprintf(stderr, "k2c agent: at most 16 --mcp servers\n"); return 2; }
            mcp[nmcp++] = a.val[i];
        }
    o.model_dir = cli_need(&a, "model");
    const char *tools = cli_str(&a, "tools", "builtin");
    o.workdir = cli_str(&a, "workdir", NULL);
    o.allow_write = cli_flag(&a, "allow-write");
    o.env_seed = (uint64_t)cli_int(&a, "env-seed", 2026);
    o.max_turns = (int)cli_int(&a, "max-turns", 8);
    o.max_tokens = (int)cli_int(&a, "max-tokens", 512);
    o.ctx = (int)cli_int(&a, "ctx", 8192);
    o.threads = (int)cli_int(&a, "threads", 0);
    k2c_model_opts mo;
    if (cli_model_opts(&a, &mo) != 0) { cli_done(&a); return cli_fail("agent"); }
    o.model_opts = &mo;
    o.temperature = (float)cli_num(&a, "temperature", 0.7);
    o.seed = (uint64_t)cli_int(&a, "seed", 1);
    o.transcript = cli_str(&a, "transcript", NULL);
    const char *choice = cli_str(&a, "tool-choice", "auto");
    if (!o.model_dir || cli_done(&a)) return 2;
    if (a.npos != 1) { fprintf(stderr, "k2c agent: give the task as one argument\n"); return 2; }
    if (k2c_tool_groups_parse(tools, &o.tools)) { fprintf(stderr, "k2c agent: %s\n", k2c_errmsg()); return 2; }
    /* a tool that changes files needs a folder named on purpose: never whatever directory the shell is in */
    if (o.allow_write && !o.workdir) { fprintf(stderr, "k2c agent: --allow-write needs --workdir DIR (the only folder write_file may change)\n"); return 2; }
    if (!strcmp(choice, "auto")) o.tool_choice = K2C_TOOLS_AUTO;
    else if (!strcmp(choice, "required")) o.tool_choice = K2C_TOOLS_REQUIRED;
    else { fprintf(stderr, "k2c agent: --tool-choice is auto or required\n"); return 2; }
    if (o.max_turns < 1 || o.max_turns > 1000) { fprintf(stderr, "k2c agent: --max-turns must be 1..1000\n"); return 2; }
    o.mcp = mcp;
    o.nmcp = nmcp;
    o.log = stderr;
    char *answer = NULL;
    if (k2c_agent_run(&o, a.pos[0], &answer) != 0) return cli_fail("agent");
    if (answer) printf("%s\n", answer);
    else printf("[no answer within %d turns]\n", o.max_turns);
    free(answer);
    return 0;
}
CLI_COMMAND(cmd_agent_def, "agent",
            "--model DIR [--tools builtin|none|calculator,files,dates,units,travel] [--mcp \"CMD ARGS\"]... [--workdir DIR] "
            "[--allow-write] [--env-seed S] [--max-turns N] [--max-tokens N] "
            "[--tool-choice auto|required] [--temperature T] [--seed S] [--ctx N] [--threads N] [--transcript FILE] \"task\"",
            "Tool-calling agent: the model calls built-in tools (calculator, confined file tools, dates, units, a travel-booking "
            "environment; write_file only with --allow-write) and MCP servers until it answers; --transcript is rewritten after every message.",
            cmd_agent)
