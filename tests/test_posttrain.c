/* Post-training in the trainer: the SFT loss mask (shard format v2, backward compatibility, masked tokens
 * get no gradient) and K2's RL objective (its value against a direct computation from the logits with tau
 * and the rewards fixed, its gradient against central finite differences on a tiny model). */
#include "train/train.h"
#include "check.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rs = 777;
static float frand(void) {   /* uniform in [-1, 1) */
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) * 0x1.0p-24) * 2.0f - 1.0f;
}

/* A tiny model with dense FFNs only: no top-k routing, so the objective is smooth in every weight and
 * every finite difference is meaningful. */
static int tiny(k2c_tmodel *m, uint64_t seed) {
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    c.vocab_size = 40; c.num_hidden_layers = 2; c.first_k_dense_replace = 2; c.hidden_size = 32; c.intermediate_size = 40;
    c.q_lora_rank = 16; c.kv_lora_rank = 16;
    if (k2c_tmodel_init(m, &c, seed)) return -1;
    for (int i = 0; i < m->nparams; i++)                /* std 0.1: gradients well above fp32 noise */
        if (m->params[i].ndim == 2) for (size_t j = 0; j < m->params[i].numel; j++) m->w[m->params[i].off + j] *= 5;
    return 0;
}

/* ------------------------------------------------------------------ shards */
static char tmpdir[64];

static char *path_in(const char *sub, const char *name) {
    char d[160];
    snprintf(d, sizeof d, "%s/%s", tmpdir, sub);
    mkdir(d, 0755);
    return k2c_path_join(d, name);
}

static void shard_format(void) {
    enum { N = 40 };
    uint32_t ids[N];
    uint8_t mask[N];
    for (int i = 0; i < N; i++) { ids[i] = (uint32_t)(100 + i); mask[i] = (i / 5) % 2; }   /* distinct: id locates the token */
    char *p2 = path_in("v2", "train_000.bin"), *p1 = path_in("v1", "train_000.bin");
    EXPECT(k2c_shard_write_masked(p2, ids, mask, N) == 0 && k2c_shard_write(p1, ids, N) == 0, "%s", k2c_errmsg());
    k2c_dataset d2, d1;
    char dir[160];
    snprintf(dir, sizeof dir, "%s/v2", tmpdir);
    EXPECT(k2c_dataset_open(&d2, dir, "train") == 0 && d2.masked && d2.total == N, "v2: %s", k2c_errmsg());
    snprintf(dir, sizeof dir, "%s/v1", tmpdir);
    EXPECT(k2c_dataset_open(&d1, dir, "train") == 0 && !d1.masked && d1.total == N, "v1: %s", k2c_errmsg());
    int ids_w[12], tg2[12], tg1[12], ids1[12];
    int wrong = 0, masked = 0;
    for (uint64_t w = 0; w < 20; w++) {
        k2c_dataset_window(&d2, 5, w, 12, ids_w, tg2);
        k2c_dataset_window(&d1, 5, w, 12, ids1, tg1);
        for (int t = 0; t < 12; t++) {
            /* the same window in both; the target of position t is the next token, kept only where its mask is 1 */
            int pos = ids_w[t] - 100 + 1;
            if (ids_w[t] != ids1[t] || pos < 1 || pos >= N || tg1[t] != (int)ids[pos]) { wrong++; continue; }
            if (tg2[t] != (mask[pos] ? tg1[t] : -1)) wrong++;
            masked += tg2[t] < 0;
        }
    }
    EXPECT(wrong == 0 && masked > 0, "%d window positions wrong, %d masked", wrong, masked);
    k2c_dataset_close(&d2);
    k2c_dataset_close(&d1);
    /* conversation starts (bit 1): every window begins at one of them */
    for (int i = 0; i < N; i++) mask[i] = (uint8_t)(((i / 5) % 2) | (i % 10 == 3 ? 2 : 0));
    char *ps = path_in("starts", "train_000.bin");
    EXPECT(k2c_shard_write_masked(ps, ids, mask, N) == 0, "%s", k2c_errmsg());
    snprintf(dir, sizeof dir, "%s/starts", tmpdir);
    k2c_dataset ds;
    EXPECT(k2c_dataset_open(&ds, dir, "train") == 0 && ds.nstarts == 4, "starts: %d, %s", (int)ds.nstarts, k2c_errmsg());
    int off_start = 0, seen[4] = {0};
    for (uint64_t w = 0; w < 40; w++) {
        k2c_dataset_window(&ds, 9, w, 6, ids_w, tg2);
        int pos = ids_w[0] - 100;
        if (pos % 10 != 3) off_start++;
        else seen[pos / 10] = 1;
        for (int t = 0; t < 6; t++)      /* the start bit is not a loss bit */
            if (tg2[t] >= 0 && !(mask[tg2[t] - 100] & 1)) off_start++;
    }
    EXPECT(off_start == 0 && seen[0] + seen[1] + seen[2] + seen[3] >= 3, "%d windows off a start or with a masked target", off_start);
    k2c_dataset_close(&ds);
    free(ps);
    /* a version this build does not know, and a mask that does not fit the size: named errors */
    size_t len;
    char *bytes = k2c_read_file(p2, &len);
    EXPECT(bytes != NULL, "read back");
    if (bytes) {
        uint32_t v3 = 3;
        memcpy(bytes + 8, &v3, 4);
        char *p3 = path_in("v3", "train_000.bin");
        k2c_write_file_atomic(p3, bytes, len);
        snprintf(dir, sizeof dir, "%s/v3", tmpdir);
        k2c_dataset d3;
        EXPECT(k2c_dataset_open(&d3, dir, "train") != 0 && strstr(k2c_errmsg(), "unsupported version 3") && strstr(k2c_errmsg(), p3),
               "v3: %s", k2c_errmsg());
        uint32_t v2 = 2;
        memcpy(bytes + 8, &v2, 4);
        k2c_write_file_atomic(p3, bytes, len - 3);      /* mask cut short */
        EXPECT(k2c_dataset_open(&d3, dir, "train") != 0 && strstr(k2c_errmsg(), "does not match the size"), "short: %s", k2c_errmsg());
        free(p3);
        free(bytes);
    }
    free(p1); free(p2);
}

/* Masked tokens get no gradient: the model's gradient with some targets masked equals the finite
 * differences of a loss computed here, independently, from the logits over the unmasked tokens only, and it
 * does not change when the masked tokens' labels change. The cross-entropy rows of masked tokens are exactly
 * zero. */
static double masked_loss(const k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *tg, int B, int T, float *logits) {
    double l;
    int n;
    int none[64];
    if (B * T > 64) return NAN;
    for (int i = 0; i < 64; i++) none[i] = -1;
    if (k2c_train_forward(m, a, ids, none, B, T, 0, &l, &n, logits)) return NAN;
    int V = m->cfg.vocab_size;
    double sum = 0;
    for (int i = 0; i < B * T; i++) {
        if (tg[i] < 0) continue;
        const float *z = logits + (size_t)i * V;
        double mx = z[0], se = 0;
        for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
        for (int v = 0; v < V; v++) se += exp(z[v] - mx);
        sum += log(se) + mx - z[tg[i]];
    }
    return sum;
}

static void mask_zero_grad(void) {
    /* the cross-entropy backward leaves masked rows exactly zero */
    enum { NR = 4, VV = 9 };
    float lg[NR * VV];
    for (int i = 0; i < NR * VV; i++) lg[i] = frand();
    int tgx[NR] = {3, -1, 5, -1};
    k2c_xent_fwd_bwd(lg, tgx, NR, VV, 1.0f);
    int nonzero = 0;
    for (int v = 0; v < VV; v++) nonzero += lg[1 * VV + v] != 0 || lg[3 * VV + v] != 0;
    EXPECT(nonzero == 0, "%d gradient entries on masked rows", nonzero);

    k2c_tmodel m;
    k2c_tacts a;
    if (tiny(&m, 11)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    enum { B = 2, T = 8 };
    int ids[B * T], tg[B * T], tg_other[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (int)((frand() + 1) * 20) % 40;
    for (int i = 0; i < B * T; i++) {
        int t = i % T, keep = t >= 3 && t != 5 && t < T - 1;      /* "assistant" positions */
        tg[i] = keep ? ids[i + 1] : -1;
        tg_other[i] = tg[i];
    }
    float *logits = malloc((size_t)B * T * m.cfg.vocab_size * sizeof *logits);
    EXPECT(k2c_tacts_init(&a, &m, B, T) == 0, "%s", k2c_errmsg());
    memset(m.g, 0, m.nw * sizeof(float));
    double l;
    int n;
    EXPECT(k2c_train_forward(&m, &a, ids, tg, B, T, 0, &l, &n, NULL) == 0 && k2c_train_backward(&m, &a, 1.0f) == 0, "%s", k2c_errmsg());
    double direct = masked_loss(&m, &a, ids, tg, B, T, logits);
    EXPECT(fabs(direct - l) < 1e-4 * fabs(l), "the trainer's masked loss %g, direct %g", l, direct);
    float *g1 = malloc(m.nw * sizeof *g1);
    memcpy(g1, m.g, m.nw * sizeof *g1);
    /* relabel the masked positions (they stay masked): the gradient must not move at all */
    memset(m.g, 0, m.nw * sizeof(float));
    EXPECT(k2c_train_forward(&m, &a, ids, tg_other, B, T, 0, &l, &n, NULL) == 0 && k2c_train_backward(&m, &a, 1.0f) == 0, "%s", k2c_errmsg());
    EXPECT(!memcmp(g1, m.g, m.nw * sizeof *g1), "masked labels changed the gradient");
    /* and unmasking one of them does move it: the check can fail */
    tg_other[5] = ids[6];
    memset(m.g, 0, m.nw * sizeof(float));
    k2c_train_forward(&m, &a, ids, tg_other, B, T, 0, &l, &n, NULL);
    k2c_train_backward(&m, &a, 1.0f);
    EXPECT(memcmp(g1, m.g, m.nw * sizeof *g1) != 0, "an unmasked token must contribute");
    /* finite differences of the direct masked loss */
    int bad = 0, checked = 0;
    for (int i = 0; i < m.nparams; i++) {
        const k2c_param *p = &m.params[i];
        if (p->kind == K2C_P_BIAS) continue;
        size_t best = 0;
        for (size_t j = 0; j < p->numel; j++) if (fabsf(g1[p->off + j]) > fabsf(g1[p->off + best])) best = j;
        float *x = m.w + p->off + best, x0 = *x, h = 1e-3f;
        *x = x0 + h; double fp = masked_loss(&m, &a, ids, tg, B, T, logits);
        *x = x0 - h; double fm = masked_loss(&m, &a, ids, tg, B, T, logits);
        *x = x0;
        float fd = (float)((fp - fm) / (2 * h)), an = g1[p->off + best];
        checked++;
        if (!(fabsf(fd - an) <= 0.03f * fabsf(an) + 2e-4f)) { bad++; printf("  %s[%zu]: analytic %g fd %g\n", p->name, best, an, fd); }
    }
    EXPECT(bad == 0 && checked > 10, "%d of %d coordinates off", bad, checked);
    free(g1);
    free(logits);
    k2c_tacts_free(&a);
    k2c_tmodel_free(&m);
}

/* ------------------------------------------------------------------ the RL objective */
/* K = 3 samples of one task; sample 1 spans two rows (a two-turn rollout). Targets: the sampled tokens. */
enum { RK = 3, RB = 4, RT = 7 };
static const int SAMPLE[RB] = {0, 1, 1, 2};
static const double REWARD[RK] = {1.0, 0.25, -0.5};
static const double TAU = 0.7;

static void rl_rows(int *ids, int *tg) {
    for (int i = 0; i < RB * RT; i++) ids[i] = (int)((frand() + 1) * 20) % 40;
    for (int i = 0; i < RB * RT; i++) {
        int t = i % RT;
        tg[i] = t >= 3 && t < RT - 1 ? ids[i + 1] : -1;     /* prompt 0..2, response after it */
    }
}

/* log pi of each sample from the logits, in double: no trainer code besides the forward */
static void direct_logp(const k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *tg, float *logits, double *logp) {
    double l;
    int n, none[RB * RT];
    for (int i = 0; i < RB * RT; i++) none[i] = -1;
    k2c_train_forward(m, a, ids, none, RB, RT, 0, &l, &n, logits);
    int V = m->cfg.vocab_size;
    for (int k = 0; k < RK; k++) logp[k] = 0;
    for (int i = 0; i < RB * RT; i++) {
        if (tg[i] < 0) continue;
        const float *z = logits + (size_t)i * V;
        double mx = z[0], se = 0;
        for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
        for (int v = 0; v < V; v++) se += exp(z[v] - mx);
        logp[SAMPLE[i / RT]] += z[tg[i]] - mx - log(se);
    }
}

static double direct_objective(const double *logp, const double *old) {
    double rbar = (REWARD[0] + REWARD[1] + REWARD[2]) / 3, L = 0;
    for (int i = 0; i < RK; i++) {
        double e = REWARD[i] - rbar - TAU * (logp[i] - old[i]);
        L += e * e;
    }
    return L / 3;
}

static void rl_value(void) {
    /* the formula on plain numbers, worked by hand: rbar = 0.25; e = (0.75 - 0.7*0.5, 0, -0.75 + 0.7*1) */
    double lp[3] = {-1.5, -2.0, -3.0}, old[3] = {-2.0, -2.0, -2.0}, d[3];
    double L = k2c_rl_objective(3, REWARD, lp, old, TAU, d);
    double e0 = 0.75 - 0.35, e2 = -0.75 + 0.7;
    EXPECT(fabs(L - (e0 * e0 + e2 * e2) / 3) < 1e-12, "L %g", L);
    EXPECT(fabs(d[0] + 2 * TAU * e0 / 3) < 1e-12 && fabs(d[1]) < 1e-12 && fabs(d[2] + 2 * TAU * e2 / 3) < 1e-12, "dL/dlogp %g %g %g", d[0], d[1], d[2]);
    /* equal rewards and pi = pi_old: nothing to learn */
    double same[3] = {0.5, 0.5, 0.5};
    EXPECT(k2c_rl_objective(3, same, lp, lp, TAU, d) == 0 && d[0] == 0, "zero objective");
    /* on the model: the trainer's value equals the direct computation from the logits */
    k2c_tmodel m;
    k2c_tacts a;
    if (tiny(&m, 21)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    int ids[RB * RT], tg[RB * RT];
    rl_rows(ids, tg);
    float *logits = malloc((size_t)RB * RT * m.cfg.vocab_size * sizeof *logits);
    EXPECT(k2c_tacts_init(&a, &m, RB, RT) == 0, "%s", k2c_errmsg());
    double lpd[RK], lpt[RK], oldm[RK];
    direct_logp(&m, &a, ids, tg, logits, lpd);
    for (int k = 0; k < RK; k++) oldm[k] = lpd[k] + 0.3 * (k - 1);    /* pi_old != pi: the tau term counts */
    memset(m.g, 0, m.nw * sizeof(float));
    double loss;
    EXPECT(k2c_rl_task_grad(&m, &a, ids, tg, SAMPLE, RB, RT, RK, REWARD, oldm, TAU, 1.0f, &loss, lpt) == 0, "%s", k2c_errmsg());
    for (int k = 0; k < RK; k++) EXPECT(fabs(lpt[k] - lpd[k]) < 1e-4, "logp[%d] %g direct %g", k, lpt[k], lpd[k]);
    double want = direct_objective(lpd, oldm);
    EXPECT(fabs(loss - want) < 1e-5 * (1 + want), "loss %.9g direct %.9g", loss, want);
    double lpl[RK];
    EXPECT(k2c_rl_logp(&m, &a, ids, tg, SAMPLE, RB, RT, RK, lpl) == 0 && fabs(lpl[1] - lpd[1]) < 1e-4, "k2c_rl_logp");
    int badrow[RB] = {0, 1, 3, 0};
    EXPECT(k2c_rl_logp(&m, &a, ids, tg, badrow, RB, RT, RK, lpl) != 0 && strstr(k2c_errmsg(), "sample 3"), "bad sample index: %s", k2c_errmsg());
    free(logits);
    k2c_tacts_free(&a);
    k2c_tmodel_free(&m);
}

static void rl_fd(void) {
    k2c_tmodel m;
    k2c_tacts a;
    if (tiny(&m, 31)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    int ids[RB * RT], tg[RB * RT];
    rl_rows(ids, tg);
    float *logits = malloc((size_t)RB * RT * m.cfg.vocab_size * sizeof *logits);
    EXPECT(k2c_tacts_init(&a, &m, RB, RT) == 0, "%s", k2c_errmsg());
    double lp[RK], old[RK];
    direct_logp(&m, &a, ids, tg, logits, lp);
    for (int k = 0; k < RK; k++) old[k] = lp[k] - 0.4 + 0.5 * k;
    memset(m.g, 0, m.nw * sizeof(float));
    double loss;
    const float weight = 0.5f;
    EXPECT(k2c_rl_task_grad(&m, &a, ids, tg, SAMPLE, RB, RT, RK, REWARD, old, TAU, weight, &loss, NULL) == 0, "%s", k2c_errmsg());
    int bad = 0, checked = 0;
    for (int i = 0; i < m.nparams; i++) {
        const k2c_param *p = &m.params[i];
        if (p->kind == K2C_P_BIAS) continue;
        size_t best = 0;
        for (size_t j = 0; j < p->numel; j++) if (fabsf(m.g[p->off + j]) > fabsf(m.g[p->off + best])) best = j;
        size_t js[2] = {best, (best * 13 + 5) % p->numel};
        for (int k = 0; k < 2; k++) {
            float *x = m.w + p->off + js[k], x0 = *x, h = 1e-3f;
            double l1[RK], l2[RK];
            *x = x0 + h; direct_logp(&m, &a, ids, tg, logits, l1);
            *x = x0 - h; direct_logp(&m, &a, ids, tg, logits, l2);
            *x = x0;
            float fd = (float)(weight * (direct_objective(l1, old) - direct_objective(l2, old)) / (2 * h)), an = m.g[p->off + js[k]];
            checked++;
            if (!(fabsf(fd - an) <= 0.03f * fabsf(an) + 2e-4f)) { bad++; printf("  %s[%zu]: analytic %g fd %g\n", p->name, js[k], an, fd); }
        }
    }
    EXPECT(bad <= 1 && checked >= 30, "%d of %d coordinates off (loss %g)", bad, checked, loss);
    printf("  rl objective: %d coordinates checked, %d off, loss %.6g\n", checked, bad, loss);
    free(logits);
    k2c_tacts_free(&a);
    k2c_tmodel_free(&m);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/k2c-posttrain-XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL posttrain (mkdtemp)\n"); return 1; }
    run_test("sft_shard_mask_format", shard_format);
    run_test("sft_masked_tokens_no_gradient", mask_zero_grad);
    run_test("rl_objective_value", rl_value);
    run_test("rl_objective_gradient_fd", rl_fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("  (could not remove %s)\n", tmpdir);
    return check_exit();
}
