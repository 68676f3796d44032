/* k2c rl: reinforcement learning with verifiable rewards (spec section 6b).
 *
 * Each step:
 *   1. the current weights are written to OUT/policy (a loadable model folder) and an agent session loads
 *      them: rollouts go through the inference engine and the real tool executor, constrained decoding
 *      included, exactly as `k2c agent` and `k2c eval-agent` run;
 *   2. for each of the step's tasks (drawn from (seed, step), so a resumed run draws the same), K rollouts
 *      at the step's temperature (decayed linearly from --temp-start to --temp-end over the run);
 *   3. rewards: the verifier's score, plus --format-weight when the rollout ended with an answer and no turn
 *      was cut by the token limit, minus --budget-penalty when it generated more than the task's budget;
 *   4. the trainer scores log pi(y_i | x) of exactly the sampled tokens (each turn a row: its prompt as
 *      context, its sampled ids as targets), and accumulates the gradient of K2's objective
 *      (1/K) sum_i (r_i - rbar - tau log(pi/pi_old))^2 per task (k2c_rl_task_grad), with pi_old the weights
 *      that sampled; plus --ptx-weight times the next-token loss of a batch of SFT/text shards (--ptx-data);
 *   5. --updates optimizer steps on those rollouts (Muon by default; 1: pi = pi_old at the gradient, the update
 *      is REINFORCE with the group mean as baseline, scaled by tau; more: the tau term pulls pi back), a log line (reward, success, mean length, KL to the reference
 *      policy measured on the sampled tokens, losses) and, every --save-every steps, a checkpoint.
 * Checkpoints are OUT/step_NNNNNNN/ (model, optimizer state, step) with OUT/LATEST replaced atomically after
 * the folder is complete; --resume OUT continues from LATEST, trimming log lines past it. */
#include "cli.h"
#include "k2c_train.h"
#include "posttrain.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *tasks, *out, *init, *resume, *ptx_data, *log;
    int steps, stop_after, updates, tasks_per_step, k, max_turns, max_tokens, ctx, save_every, threads, ptx_batch, ptx_seq;
    float lr, wd, tau, temp_start, temp_end, format_weight, budget_penalty, ptx_weight;
    uint64_t seed;
    k2c_opt_kind opt;
    k2c_dtype save_dtype;       /* model.safetensors of checkpoints (the fp32 master copy is in optimizer.safetensors) */
} rl_opts;

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char *a = k2c_path_join(from_dir, name), *b = k2c_path_join(to_dir, name);
    size_t n;
    char *data = a ? k2c_read_file(a, &n) : NULL;
    int rc = data && b ? k2c_write_file_atomic(b, data, n) : -1;
    free(a); free(b); free(data);
    return rc;
}

/* The rows of one task's K rollouts: each turn of each sample a row, prompt + sampled ids, targets on the
 * sampled ids only. Rows are padded to the longest (ids 0, targets -1). */
typedef struct { int *ids, *tg, *sample, B, T; long ntok; } rows;

static int build_rows(rows *r, k2c_agent_result *res, int K, int max_T) {
    int B = 0, T = 1;
    /* a turn longer than the model's positions (only possible with --ctx above them) carries no gradient */
#define ROW_OK(i, j) (res[i].ngen[j] > 0 && res[i].nprompt[j] + res[i].ngen[j] - 1 <= max_T)
    for (int i = 0; i < K; i++)
        for (int j = 0; j < res[i].nrec; j++) {
            int L = res[i].nprompt[j] + res[i].ngen[j] - 1;
            if (!ROW_OK(i, j)) continue;
            B++;
            if (L > T) T = L;
        }
    r->B = B; r->T = T; r->ntok = 0;
    r->ids = calloc((size_t)(B ? B : 1) * T, sizeof(int));
    r->tg = malloc((size_t)(B ? B : 1) * T * sizeof(int));
    r->sample = malloc((size_t)(B ? B : 1) * sizeof(int));
    if (!r->ids || !r->tg || !r->sample) { k2c_seterr("out of memory"); return -1; }
    for (size_t x = 0; x < (size_t)(B ? B : 1) * T; x++) r->tg[x] = -1;
    int b = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < res[i].nrec; j++) {
            int np = res[i].nprompt[j], ng = res[i].ngen[j];
            if (!ROW_OK(i, j)) continue;
            int *row = r->ids + (size_t)b * T, *tg = r->tg + (size_t)b * T;
            for (int t = 0; t < np + ng - 1; t++) row[t] = t < np ? res[i].prompt[j][t] : res[i].gen[j][t - np];
            /* position t predicts token t + 1: the sampled ones are np .. np + ng - 1 */
            for (int t = np - 1; t < np + ng - 1; t++) tg[t] = res[i].gen[j][t + 1 - np];
            r->sample[b++] = i;
            r->ntok += ng;
        }
    return 0;
}

static void rows_free(rows *r) { free(r->ids); free(r->tg); free(r->sample); memset(r, 0, sizeof *r); }

/* activations sized for (B, T); regrown when a task needs more */
static int ensure_acts(k2c_tacts *a, int *have, const k2c_tmodel *m, int B, int T) {
    if (*have && a->B >= B && a->T >= T) return 0;
    int nb = *have && a->B > B ? a->B : B, nt = *have && a->T > T ? a->T : T;
    if (*have) k2c_tacts_free(a);
    *have = 0;
    if (k2c_tacts_init(a, m, nb, nt)) return -1;
    *have = 1;
    return 0;
}

static int save_ckpt(const k2c_tmodel *m, const k2c_optim *o, const rl_opts *r) {
    char name[64];
    snprintf(name, sizeof name, "step_%07ld", o->step);
    char *dir = k2c_path_join(r->out, name), *lp = k2c_path_join(r->out, "LATEST");
    size_t n;
    char *old = lp ? k2c_read_file(lp, &n) : NULL;
    int rc = dir && lp ? k2c_ckpt_save(m, o, dir, r->save_dtype, r->seed) : -1;
    if (rc == 0) rc = copy_file(r->init, dir, "tiktoken.model") || copy_file(r->init, dir, "tokenizer_config.json");
    if (rc == 0) rc = k2c_write_file_atomic(lp, name, strlen(name));
    if (rc == 0 && old && strcmp(old, name) && !strchr(old, '/') && old[0] == 's') {
        char *od = k2c_path_join(r->out, old), cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", od ? od : "");
        if (od && system(cmd) != 0) fprintf(stderr, "k2c rl: could not remove %s\n", od);
        free(od);
    }
    free(dir); free(lp); free(old);
    return rc;
}

/* a resumed run keeps the log lines up to the checkpoint's step */
static FILE *open_log(const char *path, long keep) {
    if (keep <= 0) return fopen(path, "w");
    size_t n;
    char *text = k2c_read_file(path, &n);
    if (text) {
        size_t k = 0;
        for (char *line = text; *line;) {
            char *nl = strchr(line, '\n');
            if (!nl) break;
            const char *s = strstr(line, "\"step\":");
            if (s && s < nl && atol(s + 7) > keep) break;
            k = (size_t)(nl + 1 - text);
            line = nl + 1;
        }
        int rc = k2c_write_file_atomic(path, text, k);
        free(text);
        if (rc) return NULL;
    }
    return fopen(path, "a");
}

static int rl_run(const rl_opts *r) {
    k2c_tmodel m = {0}, ref = {0};
    k2c_optim o = {0};
    k2c_tacts a = {0};
    k2c_dataset ptx = {0};
    k2c_task *tasks = NULL;
    int ntasks = 0, have_m = 0, have_ref = 0, have_a = 0, have_ptx = 0, rc = -1;
    FILE *log = NULL;
    k2c_agent_result *res = calloc((size_t)r->k, sizeof *res);
    k2c_verdict *ver = calloc((size_t)r->k, sizeof *ver);
    double *trew = calloc((size_t)r->k * r->tasks_per_step, sizeof *trew), *tlp_old = calloc((size_t)r->k * r->tasks_per_step, sizeof *tlp_old);
    double *lp_ref = calloc((size_t)r->k, sizeof *lp_ref);
    rows *trows = calloc((size_t)r->tasks_per_step, sizeof *trows);
    int *pids = NULL, *ptg = NULL;
    char *policy = k2c_path_join(r->out, "policy");
    if (!res || !ver || !trew || !tlp_old || !lp_ref || !trows || !policy) { k2c_seterr("out of memory"); goto done; }
    if (k2c_tasks_load(r->tasks, "train", &tasks, &ntasks)) goto done;
    if (mkdir(r->out, 0777) && errno != EEXIST) { k2c_seterr("%s: %s", r->out, strerror(errno)); goto done; }
    k2c_optim_defaults(&o, r->opt);
    o.lr = r->lr;
    o.wd = r->wd;           /* 0 by default: with zero advantages a step must leave the policy where it is */
    o.tau = r->opt == K2C_OPT_MUONCLIP ? 100 : 0;
    uint64_t seed = r->seed;
    if (r->resume) {
        if (k2c_ckpt_load(&m, &o, r->resume, &seed)) goto done;
        fprintf(stderr, "k2c rl: resumed at step %ld\n", o.step);
    } else {
        if (k2c_tmodel_load(&m, r->init) || k2c_optim_init(&o, &m)) goto done;
    }
    have_m = 1;
    m.nthreads = r->threads;
    /* the reference policy for the KL: the model RL started from */
    if (k2c_tmodel_load(&ref, r->init)) goto done;
    have_ref = 1;
    ref.nthreads = r->threads;
    if (r->ptx_data && r->ptx_weight > 0) {
        if (k2c_dataset_open(&ptx, r->ptx_data, "train")) goto done;
        have_ptx = 1;
        pids = malloc((size_t)r->ptx_batch * r->ptx_seq * sizeof *pids);
        ptg = malloc((size_t)r->ptx_batch * r->ptx_seq * sizeof *ptg);
        if (!pids || !ptg) { k2c_seterr("out of memory"); goto done; }
    }
    if (mkdir(policy, 0777) && errno != EEXIST) { k2c_seterr("%s: %s", policy, strerror(errno)); goto done; }
    if (copy_file(r->init, policy, "tiktoken.model") || copy_file(r->init, policy, "tokenizer_config.json")) goto done;
    if (!(log = open_log(r->log, o.step))) { k2c_seterr("%s: %s", r->log, strerror(errno)); goto done; }
    double t0 = k2c_now();
    for (long step = o.step + 1; step <= r->steps; step++) {
        float temp = r->steps > 1 ? r->temp_start + (r->temp_end - r->temp_start) * (float)(step - 1) / (float)(r->steps - 1) : r->temp_start;
        if (k2c_tmodel_save(&m, policy, K2C_F32)) goto done;
        /* the rollout's context never exceeds what the trainer can score: past it, a rollout is a scored failure */
        int ctx = r->ctx < m.cfg.max_position_embeddings ? r->ctx : m.cfg.max_position_embeddings;
        k2c_agent_opts ao = {.model_dir = policy, .max_turns = r->max_turns, .max_tokens = r->max_tokens, .ctx = ctx,
                             .threads = r->threads, .tool_choice = K2C_TOOLS_AUTO};
        k2c_agent *ag = k2c_agent_new(&ao);
        if (!ag) goto done;
        double sum_r = 0, sum_len = 0, sum_loss = 0, last_loss = 0, kl_num = 0, ptx_loss = 0, gn = 0;
        long kl_tok = 0;
        int nsucc = 0, nroll = 0, nformat = 0, step_ok = 1, T = r->tasks_per_step, K = r->k;
        /* rollouts of every task of the step, scored once by the sampling weights (pi_old) and the reference */
        for (int j = 0; j < T && step_ok; j++) {
            const k2c_task *t = &tasks[mix(seed ^ mix((uint64_t)step * 1000003u + (uint64_t)j)) % (uint64_t)ntasks];
            double *rew = trew + (size_t)j * K, *lp_old = tlp_old + (size_t)j * K;
            for (int i = 0; i < K; i++) {
                uint64_t s = mix(seed ^ ((uint64_t)step << 32) ^ ((uint64_t)j << 16) ^ (uint64_t)i);
                if (pt_run_task(ag, t, temp, s, r->max_turns, r->max_tokens, &res[i], &ver[i])) { step_ok = 0; break; }
                int fmt = res[i].answer && !res[i].truncated;
                double rw = ver[i].score + r->format_weight * fmt;
                if (t->budget > 0 && res[i].gen_tokens > t->budget) rw -= r->budget_penalty;     /* past the budget */
                rew[i] = rw;
                sum_r += rw; sum_len += res[i].gen_tokens; nsucc += ver[i].success; nformat += fmt; nroll++;
            }
            if (step_ok) step_ok = build_rows(&trows[j], res, K, m.cfg.max_position_embeddings) == 0;
            for (int i = 0; i < K; i++) k2c_agent_result_free(&res[i]);
            rows *rw = &trows[j];
            if (step_ok && rw->B > 0) {
                step_ok = ensure_acts(&a, &have_a, &m, rw->B, rw->T) == 0 &&
                          k2c_rl_logp(&m, &a, rw->ids, rw->tg, rw->sample, rw->B, rw->T, K, lp_old) == 0 &&
                          k2c_rl_logp(&ref, &a, rw->ids, rw->tg, rw->sample, rw->B, rw->T, K, lp_ref) == 0;
                for (int i = 0; step_ok && i < K; i++) kl_num += lp_old[i] - lp_ref[i];
                kl_tok += rw->ntok;
            }
        }
        k2c_agent_free(ag);
        if (!step_ok) { for (int j = 0; j < T; j++) rows_free(&trows[j]); goto done; }
        if (have_ptx)
            for (int b = 0; b < r->ptx_batch; b++)
                k2c_dataset_window(&ptx, seed ^ 0x5054585ull, (uint64_t)(step - 1) * r->ptx_batch + b, r->ptx_seq,
                                   pids + (size_t)b * r->ptx_seq, ptg + (size_t)b * r->ptx_seq);
        /* --updates optimizer steps on the same rollouts: from the second on, pi moves away from pi_old and the
         * tau term of the objective pulls it back */
        for (int u = 0; u < r->updates; u++) {
            memset(m.g, 0, m.nw * sizeof(float));
            double loss_u = 0;
            for (int j = 0; j < T; j++) {
                rows *rw = &trows[j];
                double l = 0;
                if (rw->B > 0 && (ensure_acts(&a, &have_a, &m, rw->B, rw->T) ||
                                  k2c_rl_task_grad(&m, &a, rw->ids, rw->tg, rw->sample, rw->B, rw->T, K, trew + (size_t)j * K,
                                                   tlp_old + (size_t)j * K, r->tau, 1.0f / (float)T, &l, NULL))) {
                    for (int q = 0; q < T; q++) rows_free(&trows[q]);
                    goto done;
                }
                loss_u += l / T;
            }
            if (u == 0) sum_loss = loss_u;
            last_loss = loss_u;
            if (have_ptx) {
                /* PTX: the next-token loss of curated data, weighted, in the same update so RL does not forget */
                double l;
                int n;
                if (ensure_acts(&a, &have_a, &m, r->ptx_batch, r->ptx_seq) ||
                    k2c_train_forward(&m, &a, pids, ptg, r->ptx_batch, r->ptx_seq, 0, &l, &n, NULL) ||
                    k2c_train_backward(&m, &a, n ? r->ptx_weight / (float)n : 0.0f)) {
                    for (int q = 0; q < T; q++) rows_free(&trows[q]);
                    goto done;
                }
                if (u == 0) ptx_loss = n ? l / n : 0;
            }
            gn = 0;
            for (size_t x = 0; x < m.nw; x++) gn += (double)m.g[x] * m.g[x];
            gn = sqrt(gn);
            if (!isfinite(gn)) { k2c_seterr("step %ld: gradient norm %g (diverged)", step, gn); for (int q = 0; q < T; q++) rows_free(&trows[q]); goto done; }
            k2c_optim_step(&o, &m, r->lr);
            if (o.kind == K2C_OPT_MUONCLIP && have_a) k2c_qk_clip(&m, a.attn_max, o.tau, NULL);
        }
        for (int j = 0; j < T; j++) rows_free(&trows[j]);
        fprintf(log, "{\"step\":%ld,\"temperature\":%.4g,\"reward\":%.6g,\"success\":%.6g,\"format\":%.6g,\"length\":%.6g,"
                     "\"kl\":%.6g,\"loss\":%.9g,\"loss_last_update\":%.9g,\"ptx_loss\":%.9g,\"grad_norm\":%.6g,\"rollouts\":%d,\"time\":%.2f}\n",
                step, temp, nroll ? sum_r / nroll : 0, nroll ? (double)nsucc / nroll : 0, nroll ? (double)nformat / nroll : 0,
                nroll ? sum_len / nroll : 0, kl_tok ? kl_num / kl_tok : 0, sum_loss, last_loss, ptx_loss, gn, nroll,
                k2c_now() - t0);
        fflush(log);
        fprintf(stderr, "step %ld/%d  reward %.3f  success %.2f  length %.0f  kl %.4f  (%.0f s)\n", step, r->steps,
                nroll ? sum_r / nroll : 0, nroll ? (double)nsucc / nroll : 0, nroll ? sum_len / nroll : 0, kl_tok ? kl_num / kl_tok : 0,
                k2c_now() - t0);
        if ((r->save_every > 0 && step % r->save_every == 0) || step == r->steps)
            if (save_ckpt(&m, &o, r)) goto done;
        if (r->stop_after > 0 && step >= r->stop_after) {       /* as if killed after this step (tests) */
            if (r->save_every <= 0 || step % r->save_every) fprintf(stderr, "k2c rl: stopped at step %ld without a checkpoint there\n", step);
            break;
        }
    }
    rc = 0;
done:
    if (log) fclose(log);
    if (have_a) k2c_tacts_free(&a);
    if (have_ptx) k2c_dataset_close(&ptx);
    if (have_m) { k2c_optim_free(&o); k2c_tmodel_free(&m); }
    if (have_ref) k2c_tmodel_free(&ref);
    k2c_tasks_free(tasks, ntasks);
    free(res); free(ver); free(trew); free(tlp_old); free(lp_ref); free(trows); free(pids); free(ptg); free(policy);
    return rc;
}

static int cmd_rl(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    rl_opts r = {0};
    r.tasks = cli_need(&a, "tasks");
    r.out = cli_need(&a, "out");
    r.init = cli_str(&a, "init", NULL);
    r.resume = cli_str(&a, "resume", NULL);
    r.ptx_data = cli_str(&a, "ptx-data", NULL);
    r.steps = (int)cli_int(&a, "steps", 100);
    r.stop_after = (int)cli_int(&a, "stop-after", 0);
    r.updates = (int)cli_int(&a, "updates", 1);
    r.tasks_per_step = (int)cli_int(&a, "tasks-per-step", 4);
    r.k = (int)cli_int(&a, "k", 4);
    r.max_turns = (int)cli_int(&a, "max-turns", 6);
    r.max_tokens = (int)cli_int(&a, "max-tokens", 128);
    r.ctx = (int)cli_int(&a, "ctx", 2048);
    r.save_every = (int)cli_int(&a, "save-every", 10);
    r.threads = (int)cli_int(&a, "threads", 0);
    r.ptx_batch = (int)cli_int(&a, "ptx-batch", 2);
    r.ptx_seq = (int)cli_int(&a, "ptx-seq", 256);
    r.lr = (float)cli_num(&a, "lr", 2e-4);
    r.wd = (float)cli_num(&a, "wd", 0);
    r.tau = (float)cli_num(&a, "tau", 0.1);
    r.temp_start = (float)cli_num(&a, "temp-start", 1.0);
    r.temp_end = (float)cli_num(&a, "temp-end", 0.3);
    r.format_weight = (float)cli_num(&a, "format-weight", 0.1);
    r.budget_penalty = (float)cli_num(&a, "budget-penalty", 0.5);
    r.ptx_weight = (float)cli_num(&a, "ptx-weight", 0.1);
    r.seed = (uint64_t)cli_int(&a, "seed", 1);
    const char *opt = cli_str(&a, "optimizer", "muon"), *logp = cli_str(&a, "log", NULL), *dts = cli_str(&a, "dtype", "f32");
    if (cli_done(&a) || !r.tasks || !r.out) return 2;
    /* --init is needed on resume too: it is the reference policy of the KL and holds the tokenizer */
    if (!r.init) { fprintf(stderr, "k2c rl: give --init DIR (the SFT model; with --resume OUT as well)\n"); return 2; }
    if (!strcmp(opt, "muon")) r.opt = K2C_OPT_MUON;
    else if (!strcmp(opt, "muonclip")) r.opt = K2C_OPT_MUONCLIP;
    else if (!strcmp(opt, "adamw")) r.opt = K2C_OPT_ADAMW;
    else { fprintf(stderr, "k2c rl: --optimizer is muon, muonclip or adamw\n"); return 2; }
    if (!strcmp(dts, "f32")) r.save_dtype = K2C_F32;
    else if (!strcmp(dts, "bf16")) r.save_dtype = K2C_BF16;
    else { fprintf(stderr, "k2c rl: --dtype is f32 or bf16\n"); return 2; }
    if (r.k < 2 || r.k > 64 || r.tasks_per_step < 1 || r.steps < 1 || r.tau <= 0 || r.ptx_batch < 1 || r.ptx_seq < 2 || r.updates < 1 || r.updates > 64) {
        fprintf(stderr, "k2c rl: need --k 2..64, --tasks-per-step >= 1, --steps >= 1, --tau > 0, --updates 1..64, --ptx-batch >= 1, --ptx-seq >= 2\n");
        return 2;
    }
    char *lp = NULL;
    if (!logp) { lp = k2c_path_join(r.out, "rl.jsonl"); logp = lp; }
    r.log = logp;
    int rc = rl_run(&r);
    free(lp);
    return rc ? cli_fail("rl") : 0;
}
CLI_COMMAND(rl_def, "rl",
            "--tasks FILE --out DIR --init SFT_DIR [--resume OUT] [--steps N] [--tasks-per-step N] [--k K] [--tau X] [--updates N] "
            "[--lr X] [--wd X] [--optimizer muon|muonclip|adamw] [--temp-start T] [--temp-end T] [--format-weight W] [--budget-penalty P] "
            "[--ptx-data DIR --ptx-weight W --ptx-batch B --ptx-seq T] [--max-turns N] [--max-tokens N] [--ctx N] [--save-every N] "
            "[--seed S] [--threads N] [--log FILE] [--stop-after N] [--dtype f32|bf16]",
            "RL with verifiable rewards: K rollouts per task through the agent, K2's policy objective with Muon, PTX, a decaying "
            "temperature; logs reward, success, length and KL; atomic, resumable checkpoints.",
            cmd_rl)
