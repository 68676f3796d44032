/* Agentic post-training commands: k2c synth (tasks with verifiers and reference trajectories), k2c eval-agent
 * (a task file through the agent, success per category), k2c rl (cmd_rl.c). */
#include "cli.h"
#include "posttrain.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ shared with cmd_rl.c */
/* A fresh folder holding the task's files (none: *dir = ""); removed by pt_workdir_remove. */
int pt_workdir_make(const k2c_task *t, char dir[64]) {
    dir[0] = 0;
    if (!t->files_json) return 0;
    snprintf(dir, 64, "/tmp/k2c-task-XXXXXX");
    if (!mkdtemp(dir)) { k2c_seterr("mkdtemp: %s", strerror(errno)); dir[0] = 0; return -1; }
    json_t *f = json_loads(t->files_json, 0, NULL);
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(f, k, v) {
        char *p = k2c_path_join(dir, k);
        if (!p || k2c_write_file_atomic(p, json_string_value(v), json_string_length(v))) rc = -1;
        free(p);
    }
    json_decref(f);
    return rc;
}

void pt_workdir_remove(char dir[64]) {
    if (!dir[0]) return;
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    dir[0] = 0;
}

/* Runs one task on the session: its tools and files, the rollout, the verdict. */
int pt_run_task(k2c_agent *ag, const k2c_task *t, float temperature, uint64_t seed, int max_turns, int max_tokens,
                k2c_agent_result *r, k2c_verdict *v) {
    char wd[64];
    unsigned groups;
    if (k2c_tool_groups_parse(t->tools, &groups) || pt_workdir_make(t, wd)) return -1;
    int rc = k2c_agent_set_tools(ag, groups, wd[0] ? wd : NULL);
    k2c_agent_task_opts to = {.task = t->task, .temperature = temperature, .seed = seed, .max_turns = max_turns, .max_tokens = max_tokens};
    if (rc == 0) rc = k2c_agent_task(ag, &to, r);
    if (rc == 0 && k2c_task_verify(t, r->answer, r->transcript, v)) { k2c_agent_result_free(r); rc = -1; }
    pt_workdir_remove(wd);
    return rc;
}

/* ------------------------------------------------------------------ k2c synth */
static int cmd_synth(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    k2c_synth_opts o = {0};
    o.n = (int)cli_int(&a, "n", 1000);
    o.seed = (uint64_t)cli_int(&a, "seed", 1);
    o.split = cli_str(&a, "split", "train");
    o.categories = cli_str(&a, "categories", NULL);
    const char *out = cli_need(&a, "out");
    if (cli_done(&a) || !out) return 2;
    if (o.n < 1 || o.n > 10000000) { fprintf(stderr, "k2c synth: --n must be 1..10000000\n"); return 2; }
    double t0 = k2c_now();
    if (k2c_synth_tasks(&o, out)) return cli_fail("synth");
    printf("%d %s tasks -> %s (%.1f s)\n", o.n, o.split, out, k2c_now() - t0);
    return 0;
}
CLI_COMMAND(synth_def, "synth", "--out FILE [--n N] [--split train|heldout|all] [--seed S] [--categories a,b,...]",
            "Synthesise agent tasks over the built-in tools: verifiers and reference trajectories (JSONL); held-out templates never appear in train.",
            cmd_synth)

/* ------------------------------------------------------------------ k2c eval-agent */
#define MAXCAT 32
typedef struct { char name[24]; int n, ok; double score; } cat_stat;

static int cat_index(cat_stat *c, int *nc, const char *name) {
    for (int i = 0; i < *nc; i++) if (!strcmp(c[i].name, name)) return i;
    if (*nc == MAXCAT) return MAXCAT - 1;
    snprintf(c[*nc].name, sizeof c[*nc].name, "%s", name);
    return (*nc)++;
}

static int cmd_eval_agent(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    k2c_agent_opts o = {0};
    o.model_dir = cli_need(&a, "model");
    const char *tasks = cli_need(&a, "tasks"), *split = cli_str(&a, "split", "all"), *out = cli_str(&a, "out", NULL);
    int limit = (int)cli_int(&a, "limit", 0);
    o.max_turns = (int)cli_int(&a, "max-turns", 6);
    o.max_tokens = (int)cli_int(&a, "max-tokens", 256);
    o.ctx = (int)cli_int(&a, "ctx", 4096);
    o.threads = (int)cli_int(&a, "threads", 0);
    float temp = (float)cli_num(&a, "temperature", 0);
    uint64_t seed = (uint64_t)cli_int(&a, "seed", 1);
    k2c_model_opts mo;
    if (cli_model_opts(&a, &mo) != 0) { cli_done(&a); return cli_fail("eval-agent"); }
    o.model_opts = &mo;
    if (cli_done(&a) || !o.model_dir || !tasks) return 2;
    k2c_task *t = NULL;
    int n = 0;
    if (k2c_tasks_load(tasks, split, &t, &n)) return cli_fail("eval-agent");
    int ntot = n;
    if (limit > 0 && limit < n) n = limit;
    o.tool_choice = K2C_TOOLS_AUTO;
    k2c_agent *ag = k2c_agent_new(&o);
    if (!ag) { k2c_tasks_free(t, ntot); return cli_fail("eval-agent"); }
    FILE *jf = NULL;
    char *tmp = NULL;
    if (out) {
        /* written as it goes to OUT.tmp, renamed at the end: a finished file is always whole */
        if (asprintf(&tmp, "%s.tmp", out) < 0 || !(jf = fopen(tmp, "w"))) {
            k2c_seterr("%s: %s", out, strerror(errno));
            k2c_agent_free(ag); k2c_tasks_free(t, ntot); free(tmp);
            return cli_fail("eval-agent");
        }
    }
    cat_stat cats[MAXCAT];
    int nc = 0, ok = 0, rc = 0;
    double t0 = k2c_now(), score = 0;
    memset(cats, 0, sizeof cats);
    for (int i = 0; i < n; i++) {
        k2c_agent_result r;
        k2c_verdict v;
        if (pt_run_task(ag, &t[i], temp, seed + (uint64_t)i * 1000, 0, 0, &r, &v)) {
            /* a task the agent could not even run (a broken file fixture): reported and scored as failed */
            fprintf(stderr, "k2c eval-agent: %s: %s\n", t[i].id, k2c_errmsg());
            memset(&r, 0, sizeof r);
            memset(&v, 0, sizeof v);
            snprintf(v.why, sizeof v.why, "error: %s", k2c_errmsg());
        }
        int c = cat_index(cats, &nc, t[i].category);
        cats[c].n++;
        cats[c].ok += v.success;
        cats[c].score += v.score;
        ok += v.success;
        score += v.score;
        if (jf) {
            json_t *tr = r.transcript ? json_loads(r.transcript, 0, NULL) : json_null();
            json_t *line = json_pack("{s:s,s:s,s:s,s:s,s:b,s:f,s:s,s:s,s:i,s:i,s:o}", "id", t[i].id, "category", t[i].category, "template",
                                     t[i].template_id, "split", t[i].split, "success", v.success, "score", v.score, "why", v.why,
                                     "finish", r.finish ? r.finish : "error", "turns", r.turns, "gen_tokens", r.gen_tokens,
                                     "transcript", tr ? tr : json_null());
            char *s = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            if (s) fprintf(jf, "%s\n", s);
            free(s);
            json_decref(line);
        }
        fprintf(stderr, "\r%d/%d tasks, %d solved (%.0f s)  ", i + 1, n, ok, k2c_now() - t0);
        k2c_agent_result_free(&r);
    }
    fprintf(stderr, "\n");
    printf("%-16s %6s %8s %8s\n", "category", "tasks", "success", "score");
    for (int c = 0; c < nc; c++)
        printf("%-16s %6d %7.1f%% %8.3f\n", cats[c].name, cats[c].n, 100.0 * cats[c].ok / cats[c].n, cats[c].score / cats[c].n);
    printf("%-16s %6d %7.1f%% %8.3f\n", "overall", n, n ? 100.0 * ok / n : 0, n ? score / n : 0);
    if (jf) {
        if (fclose(jf) || rename(tmp, out)) { k2c_seterr("%s: %s", out, strerror(errno)); rc = cli_fail("eval-agent"); }
        else printf("transcripts -> %s\n", out);
    }
    free(tmp);
    k2c_agent_free(ag);
    k2c_tasks_free(t, ntot);
    return rc;
}
CLI_COMMAND(eval_agent_def, "eval-agent",
            "--model DIR --tasks FILE [--split all|train|heldout] [--out RESULTS.jsonl] [--limit N] [--temperature T] [--seed S] "
            "[--max-turns N] [--max-tokens N] [--ctx N] [--threads N]",
            "Run a task file through the agent: success per category and overall, a JSONL line (verdict + transcript) per task.",
            cmd_eval_agent)
