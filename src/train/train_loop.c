/* The training loop: learning-rate schedule, gradient accumulation, optimizer step, QK-Clip, router-bias
 * update (spec section 6 order), evaluation, the JSONL log and checkpoints.
 *
 * Reproducibility: window i of the run is a pure function of (seed, i) (data.c), every reduction runs in
 * a fixed order, and a checkpoint holds the fp32 master weights, the moments and the step. A resumed run
 * therefore logs exactly the losses the uninterrupted run logs (at the same thread count).
 *
 * Checkpoints go to OUT/step_NNNNNNN/ (each file written to a temp name and renamed), then OUT/LATEST is
 * replaced atomically, then the previous checkpoint folder is removed: a kill at any point leaves the
 * last complete checkpoint reachable through LATEST. */
#include "train/train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void k2c_train_opts_defaults(k2c_train_opts *t) {
    memset(t, 0, sizeof *t);
    t->steps = 100; t->batch = 8; t->seq = 128; t->accum = 1; t->warmup = 0; t->eval_every = 0;
    t->eval_batches = 8; t->save_every = 0; t->progress = 1; t->decay_frac = 0.2f; t->lr_min = -1;
    snprintf(t->schedule, sizeof t->schedule, "wsd");
    t->seed = 1; t->save_dtype = K2C_F32;
}

float k2c_lr_at(const k2c_train_opts *t, float peak, long step) {
    float lo = t->lr_min >= 0 ? t->lr_min : 0.1f * peak;
    if (t->warmup > 0 && step <= t->warmup) return peak * (float)step / (float)t->warmup;
    if (!strcmp(t->schedule, "const")) return peak;
    long start = t->warmup, len = t->steps - t->warmup;
    if (!strcmp(t->schedule, "wsd")) {                /* warm-up, stable, then a cosine decay */
        len = (long)ceil(t->decay_frac * t->steps);
        start = t->steps - len;
        if (start < t->warmup) { start = t->warmup; len = t->steps - start; }
        if (step <= start) return peak;
    }
    if (len <= 0) return peak;
    double x = (double)(step - start) / (double)len;
    if (x > 1) x = 1;
    return lo + (peak - lo) * (float)(0.5 * (1.0 + cos(M_PI * x)));
}

/* ------------------------------------------------------------------ checkpoints */
typedef struct { const k2c_tmodel *m; const k2c_optim *o; } opt_ctx;

int k2c_ckpt_save(const k2c_tmodel *m, const k2c_optim *o, const char *dir, k2c_dtype dtype, uint64_t seed) {
    if (mkdir(dir, 0777) && errno != EEXIST) { k2c_seterr("%s: %s", dir, strerror(errno)); return -1; }
    if (k2c_tmodel_save(m, dir, dtype)) return -1;
    int64_t step = o->step, sd = (int64_t)seed, kind = o->kind;
    int64_t one = 1, nw = (int64_t)m->nw;
    k2c_tensor ts[6] = {{.name = "optim.step", .data = &step}, {.name = "optim.kind", .data = &kind},
                        {.name = "train.seed", .data = &sd}, {.name = "optim.m", .data = o->m},
                        {.name = "optim.v", .data = o->v}, {.name = "master.w", .data = m->w}};
    for (int i = 0; i < 3; i++) k2c_tensor_set_shape(&ts[i], K2C_I64, 1, &one);
    for (int i = 3; i < 6; i++) k2c_tensor_set_shape(&ts[i], K2C_F32, 1, &nw);
    char *p = k2c_path_join(dir, "optimizer.safetensors");
    if (!p) { k2c_seterr("out of memory"); return -1; }
    int rc = k2c_st_write(p, 6, ts, NULL, NULL);
    free(p);
    return rc;
}

/* OUT/LATEST names the newest checkpoint folder; path may also be a checkpoint folder itself. */
static char *resolve(const char *path) {
    char *opt = k2c_path_join(path, "optimizer.safetensors");
    if (!opt) return NULL;
    int direct = access(opt, R_OK) == 0;
    free(opt);
    if (direct) return strdup(path);
    char *lp = k2c_path_join(path, "LATEST");
    size_t n;
    char *name = lp ? k2c_read_file(lp, &n) : NULL;
    free(lp);
    if (!name) { k2c_seterr("%s: neither a checkpoint (optimizer.safetensors) nor a run folder (LATEST)", path); return NULL; }
    while (n && (name[n - 1] == '\n' || name[n - 1] == ' ')) name[--n] = 0;
    char *d = k2c_path_join(path, name);
    free(name);
    return d;
}

int k2c_ckpt_load(k2c_tmodel *m, k2c_optim *o, const char *path, uint64_t *seed) {
    char *dir = resolve(path), *op = NULL;
    k2c_safetensors st = {0};
    int rc = -1, have_m = 0;
    if (!dir) return -1;
    if (k2c_tmodel_load(m, dir)) goto done;
    have_m = 1;
    if (k2c_optim_init(o, m)) goto done;
    op = k2c_path_join(dir, "optimizer.safetensors");
    if (!op || k2c_st_open(&st, op)) goto done;
    const char *need[] = {"optim.step", "train.seed", "optim.m", "optim.v", "master.w"};
    const k2c_tensor *t[5];
    for (int i = 0; i < 5; i++) {
        t[i] = k2c_st_find(&st, need[i]);
        size_t want = i < 2 ? 1 : m->nw;
        k2c_dtype dt = i < 2 ? K2C_I64 : K2C_F32;
        if (!t[i] || t[i]->dtype != dt || (size_t)t[i]->numel != want) {
            k2c_seterr("%s: tensor '%s' missing or not %s [%zu] (checkpoint of another model?)", op, need[i],
                       k2c_dtype_name(dt), want);
            goto done;
        }
    }
    int64_t v;
    memcpy(&v, t[0]->data, 8); o->step = (long)v;
    memcpy(&v, t[1]->data, 8); if (seed) *seed = (uint64_t)v;
    memcpy(o->m, t[2]->data, m->nw * sizeof(float));
    memcpy(o->v, t[3]->data, m->nw * sizeof(float));
    memcpy(m->w, t[4]->data, m->nw * sizeof(float));   /* fp32 master copy: exact even for a BF16 model file */
    rc = 0;
done:
    if (rc) {
        k2c_optim_free(o);
        if (have_m) k2c_tmodel_free(m);
    }
    k2c_st_close(&st);
    free(op);
    free(dir);
    return rc;
}

static int rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = k2c_path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
    return rmdir(dir);
}

static int save_run(const k2c_tmodel *m, const k2c_optim *o, const k2c_train_opts *t) {
    char name[64], *dir = NULL, *lp = NULL, *old = NULL;
    int rc = -1;
    snprintf(name, sizeof name, "step_%07ld", o->step);
    if (mkdir(t->out_dir, 0777) && errno != EEXIST) { k2c_seterr("%s: %s", t->out_dir, strerror(errno)); return -1; }
    dir = k2c_path_join(t->out_dir, name);
    lp = k2c_path_join(t->out_dir, "LATEST");
    if (!dir || !lp) { k2c_seterr("out of memory"); goto done; }
    size_t n;
    old = k2c_read_file(lp, &n);
    if (k2c_ckpt_save(m, o, dir, t->save_dtype, t->seed)) goto done;
    if (k2c_write_file_atomic(lp, name, strlen(name))) goto done;
    if (old) {
        while (n && (old[n - 1] == '\n' || old[n - 1] == ' ')) old[--n] = 0;
        if (strcmp(old, name) && !strchr(old, '/') && old[0] != '.') {
            char *od = k2c_path_join(t->out_dir, old);
            if (od) rm_tree(od);
            free(od);
        }
    }
    rc = 0;
done:
    free(dir); free(lp); free(old);
    return rc;
}

/* A resumed run drops log lines past the checkpoint (steps that were redone), then appends. */
static FILE *open_log(const char *path, long keep_steps) {
    if (keep_steps <= 0) return fopen(path, "w");
    size_t n;
    char *text = k2c_read_file(path, &n);
    if (text) {
        size_t keep = 0;
        for (char *line = text; *line;) {
            char *nl = strchr(line, '\n');
            if (!nl) break;
            const char *s = strstr(line, "\"step\":");
            if (s && s < nl && atol(s + 7) > keep_steps) break;
            keep = (size_t)(nl + 1 - text);
            line = nl + 1;
        }
        int rc = k2c_write_file_atomic(path, text, keep);
        free(text);
        if (rc) return NULL;
    }
    return fopen(path, "a");
}

/* ------------------------------------------------------------------ the loop */
/* This rank's sequences of every global batch: [b0, b1) of t->batch (all of them in one process). */
typedef struct { const k2c_comm *comm; int b0, b1; } rank_share;

static double eval_loss(const k2c_tmodel *m, k2c_tacts *a, const k2c_dataset *val, const k2c_train_opts *t,
                        const rank_share *rs, int *ids, int *tg) {
    double sc[2] = {0, 0};      /* loss sum, targets */
    int nb = rs->b1 - rs->b0;
    for (int e = 0; e < t->eval_batches; e++) {
        for (int b = rs->b0; b < rs->b1; b++)
            k2c_dataset_window(val, 0x5EEDull, (uint64_t)e * t->batch + b, t->seq, ids + (size_t)(b - rs->b0) * t->seq,
                               tg + (size_t)(b - rs->b0) * t->seq);
        double l;
        int n;
        if (k2c_train_forward(m, a, ids, tg, nb, t->seq, 0, &l, &n, NULL)) return NAN;
        sc[0] += l;
        sc[1] += n;
    }
    if (rs->comm && rs->comm->reduce(rs->comm, sc, 2, K2C_COMM_F64, K2C_COMM_SUM, -1)) return NAN;
    return sc[1] ? sc[0] / sc[1] : NAN;
}

/* This rank's part of micro-batch mi of a step: windows that depend only on (seed, step, mi, sequence), so a
 * resumed run sees the same data, on any number of ranks. */
static void load_batch(const k2c_dataset *d, const k2c_train_opts *t, const rank_share *rs, long step, int mi, int *ids,
                       int *tg) {
    uint64_t base = ((uint64_t)(step - 1) * t->accum + mi) * t->batch;
    for (int b = rs->b0; b < rs->b1; b++)
        k2c_dataset_window(d, t->seed, base + b, t->seq, ids + (size_t)(b - rs->b0) * t->seq,
                           tg + (size_t)(b - rs->b0) * t->seq);
}

/* Forward of all the step's micro-batches without backward: fills a->attn_max (and a->load), over every rank. */
static int forward_only(const k2c_tmodel *m, k2c_tacts *a, const k2c_dataset *d, const k2c_train_opts *t,
                        const rank_share *rs, long step, int *ids, int *tg) {
    k2c_tacts_reset_stats(a, m);
    for (int mi = 0; mi < t->accum; mi++) {
        load_batch(d, t, rs, step, mi, ids, tg);
        double l;
        int n;
        if (k2c_train_forward(m, a, ids, tg, rs->b1 - rs->b0, t->seq, 0, &l, &n, NULL)) return -1;
    }
    return rs->comm ? k2c_dp_stats(a, m, rs->comm, NULL) : 0;
}

/* x[0..n) = 0 on every thread (40 MB at 10M parameters: the other thread would otherwise sleep through it) */
static void zero_floats(float *x, size_t n) {
    enum { CHUNK = 1 << 16 };
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < (n + CHUNK - 1) / CHUNK; c++)
        memset(x + c * CHUNK, 0, (c * CHUNK + CHUNK < n ? CHUNK : n - c * CHUNK) * sizeof *x);
}

/* sum of x^2 in double: fixed chunks of 64k summed in order, so the value does not depend on the thread
 * count (the log of a resumed run must match) */
enum { SQ_CHUNK = 1 << 16 };
static double chunk_squares(const float *x, size_t n, size_t c) {
    size_t e = (c + 1) * SQ_CHUNK < n ? (c + 1) * SQ_CHUNK : n;
    double a = 0;
    #pragma omp simd reduction(+ : a)
    for (size_t i = c * SQ_CHUNK; i < e; i++) a += (double)x[i] * x[i];
    return a;
}

static double sum_squares(const float *x, size_t n) {
    size_t nc = (n + SQ_CHUNK - 1) / SQ_CHUNK;
    double *part = malloc((nc ? nc : 1) * sizeof *part), s = 0;
    if (!part) {                                        /* no memory for the partial sums: the same sums, serially */
        for (size_t c = 0; c < nc; c++) s += chunk_squares(x, n, c);
        return s;
    }
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nc; c++) part[c] = chunk_squares(x, n, c);
    for (size_t c = 0; c < nc; c++) s += part[c];
    free(part);
    return s;
}

static float max_of(const float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
    return mx;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, n, "?"); return; }
    int h = (int)(s / 3600), mi = (int)(s / 60) % 60, se = (int)s % 60;
    if (h) snprintf(buf, n, "%dh%02dm", h, mi);
    else snprintf(buf, n, "%dm%02ds", mi, se);
}

/* Rank 0 writes the checkpoint; in a data-parallel run every rank first sends its block of the moments. */
static int save_ranks(const k2c_tmodel *m, const k2c_optim *o, const k2c_train_opts *t) {
    if (!t->comm) return save_run(m, o, t);
    k2c_optim full;
    if (k2c_dp_gather(o, m, t->comm, &full)) return -1;
    if (t->comm->rank != 0) return 0;
    int rc = save_run(m, &full, t);
    k2c_optim_free(&full);
    return rc;
}

static int train_run_impl(k2c_tmodel *m, k2c_optim *o, const k2c_train_opts *t) {
    const k2c_config *c = &m->cfg;
    const k2c_comm *comm = t->comm && t->comm->size > 1 ? t->comm : NULL;
    int L = c->num_hidden_layers, H = c->num_attention_heads, B = t->batch, T = t->seq, rc = -1;
    int rank0 = !comm || comm->rank == 0, setup = -1;
    rank_share rs = {comm, 0, B};
    if (comm) {
        size_t lo, hi;
        k2c_comm_block((size_t)(B > 0 ? B : 0), comm->size, comm->rank, &lo, &hi);
        rs.b0 = (int)lo;
        rs.b1 = (int)hi;
    }
    int Bl = rs.b1 - rs.b0;
    k2c_dataset train = {0}, val = {0};
    k2c_tacts a = {0};
    int have_val = 0;
    FILE *log = NULL;
    int *ids = malloc((size_t)(Bl > 0 ? Bl : 1) * T * sizeof *ids), *tg = malloc((size_t)(Bl > 0 ? Bl : 1) * T * sizeof *tg);
    float *maxvio = calloc((size_t)L, sizeof *maxvio);
    double *load = malloc((size_t)L * (c->n_routed_experts + 1) * sizeof *load);
    unsigned char *clipped = calloc((size_t)L * H, 1);
    if (!ids || !tg || !maxvio || !load || !clipped) { k2c_seterr("out of memory"); goto setup_done; }
    if (t->accum <= 0 || t->steps <= 0) { k2c_seterr("--steps and --accum must be positive"); goto setup_done; }
    if (comm && B < comm->size) {
        k2c_seterr("--batch %d is smaller than the %d ranks: each rank needs at least one sequence", B, comm->size);
        goto setup_done;
    }
    if (k2c_dataset_open(&train, t->data_dir, "train")) goto setup_done;
    if (t->eval_every > 0) {
        if (k2c_dataset_open(&val, t->data_dir, "val") == 0) have_val = 1;
        else if (rank0) k2c_log("no validation shards in %s: evaluation off", t->data_dir);
    }
    if (k2c_tacts_init(&a, m, Bl, T)) goto setup_done;
    if (rank0 && t->log_path && !(log = open_log(t->log_path, o->step))) {
        k2c_seterr("%s: %s", t->log_path, strerror(errno));
        goto setup_done;
    }
    setup = 0;
setup_done:
    /* Every rank learns whether every other one is ready and runs the same job, before the first collective
     * of a step (a rank that failed alone would leave the others waiting in it). */
    if (comm) {
        if (k2c_dp_agree(comm, setup, m, o, t, train.total)) goto done;
        if (!o->sharded && k2c_dp_shard(o, m, comm)) goto done;
        if (t->eval_every > 0) {
            int hv = have_val;      /* evaluation is collective: only if every rank has the shards */
            if (comm->reduce(comm, &hv, 1, K2C_COMM_I32, K2C_COMM_SUM, -1)) goto done;
            have_val = hv == comm->size;
        }
    } else if (setup) {
        goto done;
    }
    float peak = o->lr, scale = 1.0f / ((float)B * T * t->accum);
    long first = o->step + 1;
    int tty = isatty(2), every = t->steps / 20 > 0 ? t->steps / 20 : 1;   /* a line per 5% when logged to a file */
    double t0 = k2c_now(), tokens = (double)o->step * B * T * t->accum;
    for (long step = first; step <= t->steps; step++) {
        float lr = k2c_lr_at(t, peak, step);
        zero_floats(m->g, m->nw);
        k2c_tacts_reset_stats(&a, m);
        double loss = 0;
        if (train.masked) {
            /* SFT shards: the step's mean is over the targets that carry loss, so count them first (the
             * windows are a pure function of the step: loading them twice costs a copy, not a reread) */
            double cnt = 0;
            for (int mi = 0; mi < t->accum; mi++) {
                load_batch(&train, t, &rs, step, mi, ids, tg);
                for (int i = 0; i < Bl * T; i++) cnt += tg[i] >= 0;
            }
            /* data parallel: every rank's share counts toward the one global mean */
            if (rs.comm && rs.comm->size > 1 && rs.comm->reduce(rs.comm, &cnt, 1, K2C_COMM_F64, K2C_COMM_SUM, -1) != 0) goto done;
            scale = cnt > 0 ? (float)(1.0 / cnt) : 0.0f;
        }
        for (int mi = 0; mi < t->accum; mi++) {
            load_batch(&train, t, &rs, step, mi, ids, tg);
            double l;
            int n;
            if (k2c_train_forward(m, &a, ids, tg, Bl, T, t->aux_alpha, &l, &n, NULL)) goto done;
            if (k2c_train_backward(m, &a, scale)) goto done;
            loss += l;
        }
        double gn;
        if (comm) {     /* the global loss, maxima and loads; the gradient reduced once, over this rank's block */
            if (k2c_dp_stats(&a, m, comm, &loss) || k2c_dp_reduce_grads(m, o, comm, &gn)) goto done;
        } else {
            gn = sqrt(sum_squares(m->g, m->nw));
        }
        loss *= scale;
        if (!isfinite(loss) || !isfinite(gn)) { k2c_seterr("step %ld: loss %g, grad norm %g (diverged)", step, loss, gn); goto done; }
        /* order (train_hparams.json): optimizer step, QK-Clip with this step's max logits, bias update */
        float mx = max_of(a.attn_max, L * H), after = NAN;
        memcpy(load, a.load, (size_t)L * (c->n_routed_experts + 1) * sizeof *load);
        if (!comm) k2c_optim_step(o, m, lr);
        else if (k2c_dp_step(o, m, lr, comm)) goto done;
        int ncl = 0, measured = 0, clip = o->kind == K2C_OPT_MUONCLIP && o->tau > 0;
        if (clip && o->clip_updated) {
            /* K2 clips with S_h from this step's forward, measured before the update, and the update moves the
             * logits again (a few percent a step at a high lr). This mode re-measures S_h on the weights the
             * step leaves (bias update first: it changes routing and so later layers' inputs), clips, and
             * measures again, because clipping layer l changes the input of layer l + 1. */
            k2c_bias_update(m, load, o->bias_u, maxvio);
            for (int it = 0; it < 4 && !measured; it++) {
                if (forward_only(m, &a, &train, t, &rs, step, ids, tg)) goto done;
                int n = k2c_qk_clip(m, a.attn_max, o->tau, clipped);
                ncl += n;
                measured = n == 0;
            }
        } else {
            if (clip) ncl = k2c_qk_clip(m, a.attn_max, o->tau, clipped);
            k2c_bias_update(m, load, o->bias_u, maxvio);
        }
        if (t->measure_after_step) {
            /* what the weights leave the step with, on the step's own batch */
            if (!measured && forward_only(m, &a, &train, t, &rs, step, ids, tg)) goto done;
            after = max_of(a.attn_max, L * H);
        }
        tokens += (double)B * T * t->accum;
        double ev = NAN;
        int do_eval = have_val && (step % t->eval_every == 0 || step == t->steps);
        if (do_eval) ev = eval_loss(m, &a, &val, t, &rs, ids, tg);
        if (log) {
            /* max_logit: this step's forward, the S_h that QK-Clip acts on */
            fprintf(log, "{\"step\":%ld,\"tokens\":%.0f,\"loss\":%.17g,\"lr\":%.9g,\"grad_norm\":%.9g,\"max_logit\":%.9g,"
                         "\"clipped\":%d", step, tokens, loss, lr, gn, mx, ncl);
            if (t->measure_after_step) fprintf(log, ",\"max_logit_after_step\":%.9g", after);
            if (clip) fprintf(log, ",\"tau\":%.7g", o->tau);
            if (do_eval) fprintf(log, ",\"eval_loss\":%.17g", ev);
            if (t->aux_alpha > 0) fprintf(log, ",\"aux_loss\":%.9g", a.aux_loss);
            fprintf(log, ",\"maxvio\":[");
            int first_moe = 1;
            for (int l = 0; l < L; l++) {
                if (!m->layers[l].is_moe) continue;
                fprintf(log, "%s%.6g", first_moe ? "" : ",", maxvio[l]);
                first_moe = 0;
            }
            fprintf(log, "],\"time\":%.3f}\n", k2c_now() - t0);
            fflush(log);
        }
        if (rank0 && t->progress && (tty || step % every == 0 || step == t->steps || do_eval)) {
            double el = k2c_now() - t0, tps = (double)(step - first + 1) * B * T * t->accum / (el > 0 ? el : 1e-9);
            char eta[32];
            fmt_time(eta, sizeof eta, (double)(t->steps - step) * B * T * t->accum / tps);
            fprintf(stderr, "%sstep %ld/%d  loss %.4f  lr %.3g  %.0f tok/s  ETA %s   %s", tty ? "\r" : "", step, t->steps,
                    loss, lr, tps, eta, tty ? "" : "\n");
            if (do_eval) fprintf(stderr, "%s  eval loss %.4f\n", tty ? "\n" : "", ev);
            if (step == t->steps && tty) fputc('\n', stderr);
            fflush(stderr);
        }
        if (t->out_dir && ((t->save_every > 0 && step % t->save_every == 0) || step == t->steps))
            if (save_ranks(m, o, t)) goto done;
        if (t->stop_after > 0 && step >= t->stop_after) {
            if (rank0 && t->progress) fputc('\n', stderr);
            break;
        }
    }
    rc = 0;
done:
    if (log) fclose(log);
    k2c_tacts_free(&a);
    k2c_dataset_close(&train);
    if (have_val) k2c_dataset_close(&val);
    free(ids); free(tg); free(maxvio); free(load); free(clipped);
    return rc;
}

int k2c_train_run(k2c_tmodel *m, k2c_optim *o, const k2c_train_opts *t) {
    int nt = k2c_tthreads_enter(m);
    int rc = train_run_impl(m, o, t);
    k2c_tthreads_leave(nt);
    return rc;
}
