/* Trainer tests: every op's backward against central finite differences, the whole model's gradient
 * against the golden float64 reference (k2-tiny-train), two MuonClip steps against after2.*, the
 * optimizer pieces, and a saved checkpoint read back by the inference loader. */
#include "train/train.h"
#include "check.h"

#include <assert.h>
#include <cblas.h>
#include <omp.h>
#include <string.h>

#define GOLD "tests/data/golden/k2-tiny-train"

static uint64_t rs = 12345;
static float frand(void) {   /* uniform in [-1, 1) */
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) * 0x1.0p-24) * 2.0f - 1.0f;
}
static void fill(float *x, size_t n, float s) { for (size_t i = 0; i < n; i++) x[i] = s * frand(); }

static float max_abs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = (float)check_worse(m, fabsf(a[i]));
    return m;
}

/* max |a - ref| / max |ref|; NaN if any element is NaN */
static float rel_err(const float *a, const float *ref, size_t n) {
    float m = max_abs(ref, n), e = 0;
    for (size_t i = 0; i < n; i++) e = (float)check_worse(e, fabsf(a[i] - ref[i]));
    return e / (m > 0 ? m : 1);
}


/* ---- finite differences. Objective J = sum(out * R) accumulated in double; central differences with
 * step h; tolerance |fd - an| <= rtol * max|an| + atol over each input. */
static double dsum(const float *a, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
    return s;
}

typedef double (*objective)(void *ctx);

/* checks an [n] against central differences of f with respect to x [n]; a NaN difference (an objective that
 * reports a discontinuity) makes the result NaN, so the check fails rather than skipping the coordinate */
static float fd_check(objective f, void *ctx, float *x, const float *an, size_t n, float h) {
    float worst = 0, m = max_abs(an, n);
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + h; double fp = f(ctx);
        x[i] = x0 - h; double fm = f(ctx);
        x[i] = x0;
        float fd = (float)((fp - fm) / (2.0 * h));
        worst = (float)check_worse(worst, fabsf(fd - an[i]) / (m > 0 ? m : 1));
    }
    return worst;
}

typedef struct { float *x, *w, *y, *rstd, *R; int N, n; } rms_ctx;
static double rms_obj(void *c) {
    rms_ctx *r = c;
    k2c_rmsnorm_fwd(r->y, r->rstd, r->x, r->w, r->N, r->n, 1e-6f);
    return dsum(r->y, r->R, (size_t)r->N * r->n);
}
static void test_fd_rmsnorm(void) {
    enum { N = 3, n = 16 };
    float x[N * n], w[n], y[N * n], rstd[N], R[N * n], dx[N * n], dw[n] = {0};
    fill(x, N * n, 1); fill(w, n, 1); fill(R, N * n, 1);
    rms_ctx c = {x, w, y, rstd, R, N, n};
    rms_obj(&c);
    k2c_rmsnorm_bwd(dx, dw, R, x, rstd, w, N, n);
    float ex = fd_check(rms_obj, &c, x, dx, N * n, 1e-2f), ew = fd_check(rms_obj, &c, w, dw, n, 1e-2f);
    EXPECT(ex < 1e-3f && ew < 1e-3f, "rmsnorm dx err %g dw err %g", ex, ew);
}

static void test_fd_rope(void) {
    float inv[4], cs, as, x[8], y[8], R[8], d[8];
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    k2c_rope_init(&c, inv, &cs, &as);
    fill(x, 8, 1); fill(R, 8, 1);
    memcpy(d, R, sizeof d);
    k2c_rope_backward(d, 8, 13, inv, cs);          /* d = J^T R */
    float worst = 0;
    for (int i = 0; i < 8; i++) {                   /* linear map: differences are exact up to rounding */
        double f[2];
        for (int s = 0; s < 2; s++) {
            memcpy(y, x, sizeof y);
            y[i] += s ? -0.5f : 0.5f;
            k2c_rope_apply(y, 8, 13, inv, cs);
            f[s] = dsum(y, R, 8);
        }
        worst = (float)check_worse(worst, fabsf((float)(f[0] - f[1]) - d[i]));
    }
    EXPECT(worst < 1e-5f, "rope backward err %g", worst);
}

typedef struct { float *q, *kv, *kp, *P, *o, *R; int T, dn, dr, dv; } att_ctx;
static double att_obj(void *cx) {
    att_ctx *a = cx;
    float mx;
    k2c_attn_fwd(a->q, a->dn + a->dr, a->kv, a->dn + a->dv, a->kp, a->T, a->dn, a->dr, a->dv, 0.4f, a->P, a->o, a->dv, &mx);
    return dsum(a->o, a->R, (size_t)a->T * a->dv);
}
static void test_fd_attention(void) {
    enum { T = 6, dn = 4, dr = 4, dv = 3 };
    float q[T * (dn + dr)], kv[T * (dn + dv)], kp[T * dr], P[T * T], o[T * dv], R[T * dv];
    float dq[T * (dn + dr)], dkv[T * (dn + dv)], dkp[T * dr], tmp[T * T];
    fill(q, sizeof q / 4, 1.5f); fill(kv, sizeof kv / 4, 1.5f); fill(kp, sizeof kp / 4, 1.5f); fill(R, sizeof R / 4, 1);
    att_ctx c = {q, kv, kp, P, o, R, T, dn, dr, dv};
    att_obj(&c);
    k2c_attn_bwd(q, dn + dr, kv, dn + dv, kp, T, dn, dr, dv, 0.4f, P, R, dv, dq, dkv, dkp, tmp);
    float e1 = fd_check(att_obj, &c, q, dq, sizeof q / 4, 1e-2f), e2 = fd_check(att_obj, &c, kv, dkv, sizeof kv / 4, 1e-2f);
    float e3 = fd_check(att_obj, &c, kp, dkp, sizeof kp / 4, 1e-2f);
    EXPECT(e1 < 2e-3f && e2 < 2e-3f && e3 < 2e-3f, "attention dq %g dkv %g dkp %g", e1, e2, e3);
}

typedef struct { float *x, *Wgu, *Wd, *gu, *h, *y, *R; int N, D, F; } sw_ctx;
static double sw_obj(void *cx) {
    sw_ctx *s = cx;
    k2c_swiglu_fwd(s->x, s->N, s->D, s->F, s->Wgu, s->Wd, s->gu, s->h, s->y);
    return dsum(s->y, s->R, (size_t)s->N * s->D);
}
static void test_fd_swiglu(void) {
    enum { N = 3, D = 6, F = 5 };
    float x[N * D], Wgu[2 * F * D], Wd[D * F], gu[N * 2 * F], h[N * F], dh[N * F], dgu[N * 2 * F], y[N * D], R[N * D];
    float dx[N * D], dWgu[2 * F * D] = {0}, dWd[D * F] = {0};
    fill(x, N * D, 1); fill(Wgu, 2 * F * D, 1); fill(Wd, D * F, 1); fill(R, N * D, 1);
    sw_ctx c = {x, Wgu, Wd, gu, h, y, R, N, D, F};
    sw_obj(&c);
    k2c_swiglu_bwd(x, N, D, F, Wgu, Wd, gu, h, dh, dgu, R, dx, dWgu, dWd);
    float e[4] = {fd_check(sw_obj, &c, x, dx, N * D, 1e-2f), fd_check(sw_obj, &c, Wgu, dWgu, F * D, 1e-2f),
                  fd_check(sw_obj, &c, Wgu + F * D, dWgu + F * D, F * D, 1e-2f), fd_check(sw_obj, &c, Wd, dWd, D * F, 1e-2f)};
    EXPECT(e[0] < 1e-3f && e[1] < 1e-3f && e[2] < 1e-3f && e[3] < 1e-3f, "swiglu x %g gate %g up %g down %g", e[0], e[1],
           e[2], e[3]);
}

typedef struct { k2c_config *c; float *z, *w, *R; int *idx; } rt_ctx;
static double rt_obj(void *cx) {
    rt_ctx *r = cx;
    int idx[16];
    k2c_moe_route(r->c, r->z, NULL, idx, r->w, NULL);
    for (int k = 0; k < r->c->num_experts_per_tok; k++)
        if (idx[k] != r->idx[k]) return NAN;         /* the selection must not move under the perturbation */
    return dsum(r->w, r->R, (size_t)r->c->num_experts_per_tok);
}
static void test_fd_router(void) {
    for (int variant = 0; variant < 3; variant++) {
        k2c_config c;
        k2c_config_preset(&c, "k2-tiny");
        c.n_routed_experts = 8; c.num_experts_per_tok = 3;
        if (variant == 1) c.scoring_softmax = 1;
        if (variant == 2) c.norm_topk_prob = 0;
        float z[8], w[3], R[3], dz[8];
        int idx[3];
        for (int e = 0; e < 8; e++) z[e] = 0.7f * (e - 3.5f) + 0.05f * frand();   /* well separated */
        fill(R, 3, 1);
        k2c_moe_route(&c, z, NULL, idx, w, NULL);
        rt_ctx ctx = {&c, z, w, R, idx};
        k2c_router_bwd(&c, z, idx, R, dz);
        float e = fd_check(rt_obj, &ctx, z, dz, 8, 1e-2f);
        EXPECT(e < 1e-3f, "router variant %d err %g", variant, e);
    }
}

typedef struct { float *z, *tmp; int *tg; int N, V; } xe_ctx;
static double xe_obj(void *cx) {
    xe_ctx *x = cx;
    memcpy(x->tmp, x->z, (size_t)x->N * x->V * sizeof(float));
    return k2c_xent_fwd_bwd(x->tmp, x->tg, x->N, x->V, 1.0f);
}
static void test_fd_xent(void) {
    enum { N = 4, V = 9 };
    float z[N * V], tmp[N * V], d[N * V];
    int tg[N] = {3, -1, 0, 8};
    fill(z, N * V, 3);
    memcpy(d, z, sizeof d);
    double l = k2c_xent_fwd_bwd(d, tg, N, V, 1.0f);
    xe_ctx c = {z, tmp, tg, N, V};
    EXPECT(fabs(l - xe_obj(&c)) < 1e-9, "loss not repeatable");
    float e = fd_check(xe_obj, &c, z, d, N * V, 1e-2f);
    EXPECT(e < 1e-3f, "cross-entropy err %g", e);
}

/* Whole model on random parameters: for a few coordinates of every kind of tensor, the gradient against
 * central differences of the mean loss. Two shapes: K2-like (q_lora, YaRN, 1 shared expert) and
 * Moonlight-like (plain q_proj, no rope scaling, 2 shared experts, aux loss on). */
typedef struct { k2c_tmodel *m; k2c_tacts *a; int *ids, *tg, B, T; float alpha; double *load0; size_t nload; } model_ctx;
static double model_obj(void *cx) {
    model_ctx *c = cx;
    double loss;
    int n;
    k2c_tacts_reset_stats(c->a, c->m);
    k2c_train_forward(c->m, c->a, c->ids, c->tg, c->B, c->T, c->alpha, &loss, &n, NULL);
    /* a perturbation that moves a top-k choice crosses a discontinuity: report it as NaN */
    if (c->load0 && memcmp(c->load0, c->a->load, c->nload * sizeof(double))) return NAN;
    return (loss + c->alpha * c->T * c->a->aux_loss) / n;
}
static void model_fd(int variant) {
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    c.vocab_size = 48; c.num_hidden_layers = 2; c.hidden_size = 32; c.intermediate_size = 40;
    c.moe_intermediate_size = 16; c.n_routed_experts = 8; c.num_experts_per_tok = 2;
    c.q_lora_rank = 16; c.kv_lora_rank = 16;
    float alpha = 0;
    if (variant == 1) { c.q_lora_rank = 0; c.rope_yarn = 0; c.n_shared_experts = 2; alpha = 0.01f; }
    k2c_tmodel m;
    k2c_tacts a;
    if (k2c_tmodel_init(&m, &c, 7 + variant)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    for (int i = 0; i < m.nparams; i++)                /* std 0.1: gradients well above fp32 noise */
        if (m.params[i].ndim == 2) for (size_t j = 0; j < m.params[i].numel; j++) m.w[m.params[i].off + j] *= 5;
    enum { B = 2, T = 7 };
    int ids[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (int)((frand() + 1) * 24) % 48;
    for (int i = 0; i < B * T; i++) tg[i] = (i % T == T - 1) ? -1 : ids[i + 1];
    EXPECT(k2c_tacts_init(&a, &m, B, T) == 0, "%s", k2c_errmsg());
    model_ctx mc = {&m, &a, ids, tg, B, T, alpha, NULL, 0};
    memset(m.g, 0, m.nw * sizeof(float));
    double l0 = model_obj(&mc);
    mc.nload = (size_t)c.num_hidden_layers * (c.n_routed_experts + 1);
    double load0[64];
    memcpy(load0, a.load, mc.nload * sizeof(double));
    int n = 0;
    for (int i = 0; i < B * T; i++) n += tg[i] >= 0;
    k2c_train_backward(&m, &a, 1.0f / n);
    mc.load0 = load0;
    int checked = 0, bad = 0, tried = 0;
    for (int i = 0; i < m.nparams; i++) {
        const k2c_param *p = &m.params[i];
        if (p->kind == K2C_P_BIAS || (strstr(p->name, "experts.") && !strstr(p->name, "experts.1."))) continue;
        /* the coordinate with the largest gradient, and one more */
        size_t best = 0;
        for (size_t j = 0; j < p->numel; j++) if (fabsf(m.g[p->off + j]) > fabsf(m.g[p->off + best])) best = j;
        size_t js[2] = {best, (best * 7 + 3) % p->numel};
        for (int k = 0; k < 2; k++) {
            float *x = m.w + p->off + js[k], x0 = *x, h = 1e-3f;
            *x = x0 + h; double fp = model_obj(&mc);
            *x = x0 - h; double fm = model_obj(&mc);
            *x = x0;
            float fd = (float)((fp - fm) / (2 * h)), an = m.g[p->off + js[k]];
            tried++;
            if (isnan(fd)) continue;   /* the perturbation moved a top-k choice: no derivative there */
            checked++;
            if (fabsf(fd - an) > 0.03f * fabsf(an) + 2e-4f) {
                bad++;
                printf("  variant %d %s[%zu]: analytic %g fd %g\n", variant, p->name, js[k], an, fd);
            }
        }
    }
    EXPECT(bad <= 1, "variant %d: %d of %d coordinates off (loss %g)", variant, bad, checked, l0);
    /* a coordinate whose perturbation moves the routing is not checked; most must be */
    EXPECT(tried >= 40 && checked >= tried * 3 / 4, "variant %d: only %d of %d coordinates checked", variant, checked, tried);
    printf("  model variant %d: %d of %d coordinates checked, %d off\n", variant, checked, tried, bad);
    k2c_tacts_free(&a);
    k2c_tmodel_free(&m);
}
static void test_fd_model(void) { model_fd(0); model_fd(1); }

/* golden step inputs: ids [n], targets = ids shifted, last -1 */
static int load_ids(const k2c_safetensors *ref, const char *name, int *ids, int *tg) {
    const k2c_tensor *t = k2c_st_find(ref, name);
    if (!t) return 0;
    int n = (int)t->numel;
    for (int i = 0; i < n; i++) ids[i] = (int)k2c_elem_to_f32(t->dtype, t->data, i);
    for (int i = 0; i < n; i++) tg[i] = i + 1 < n ? ids[i + 1] : -1;
    return n;
}

static void test_golden_grad(void) {
    k2c_tmodel m;
    k2c_safetensors ref;
    if (k2c_tmodel_load(&m, GOLD)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    if (k2c_st_open(&ref, GOLD "/expected_train.safetensors")) { EXPECT(0, "%s", k2c_errmsg()); k2c_tmodel_free(&m); return; }
    int ids[64], tg[64], T = load_ids(&ref, "step1.input_ids", ids, tg);
    EXPECT(T == 40, "T %d", T);
    k2c_tacts a;
    EXPECT(k2c_tacts_init(&a, &m, 1, T) == 0, "%s", k2c_errmsg());
    double loss;
    int cnt;
    EXPECT(k2c_train_forward(&m, &a, ids, tg, 1, T, 0, &loss, &cnt, NULL) == 0, "%s", k2c_errmsg());
    float want = *(const float *)k2c_st_find(&ref, "step1.loss")->data;
    EXPECT(fabs(loss / cnt - want) < 1e-4, "loss %g want %g", loss / cnt, want);
    EXPECT(k2c_train_backward(&m, &a, 1.0f / cnt) == 0, "%s", k2c_errmsg());
    int checked = 0;
    float worst = 0;
    for (int i = 0; i < m.nparams; i++) {
        const k2c_param *p = &m.params[i];
        if (p->kind == K2C_P_BIAS) continue;
        char name[160];
        snprintf(name, sizeof name, "grad.%s", p->name);
        const k2c_tensor *g = k2c_st_find(&ref, name);
        if (!g) { EXPECT(0, "reference lacks %s", name); continue; }
        float e = rel_err(m.g + p->off, g->data, p->numel);
        if (e > worst) worst = e;
        EXPECT(e < 1e-4f, "%s rel err %g (max ref %g)", p->name, e, max_abs(g->data, p->numel));
        checked++;
    }
    printf("  golden grad: %d tensors, worst rel err %.3g\n", checked, worst);
    float *am = a.attn_max;
    for (int l = 0; l < m.cfg.num_hidden_layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "step1.attn_max_logit.%d", l);
        const k2c_tensor *t = k2c_st_find(&ref, name);
        EXPECT(t && rel_err(am + l * 4, t->data, 4) < 1e-4f, "%s", name);
    }
    k2c_tacts_free(&a);
    k2c_st_close(&ref);
    k2c_tmodel_free(&m);
}


/* Two MuonClip steps with train_hparams.json: loss, clipped heads, router bias and every tensor. */
static void test_golden_steps(void) {
    k2c_tmodel m;
    k2c_safetensors ref;
    if (k2c_tmodel_load(&m, GOLD)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    if (k2c_st_open(&ref, GOLD "/expected_train.safetensors")) { EXPECT(0, "%s", k2c_errmsg()); k2c_tmodel_free(&m); return; }
    k2c_optim o;
    k2c_optim_defaults(&o, K2C_OPT_MUONCLIP);
    o.lr = 0.02f; o.wd = 0.1f; o.momentum = 0.95f; o.beta1 = 0.9f; o.beta2 = 0.95f; o.eps = 1e-8f; o.rms_scale = 0.2f;
    o.bias_u = 1e-3f;
    o.tau = *(const float *)k2c_st_find(&ref, "hparams.tau")->data;
    EXPECT(k2c_optim_init(&o, &m) == 0, "%s", k2c_errmsg());
    k2c_tacts a;
    EXPECT(k2c_tacts_init(&a, &m, 1, 64) == 0, "%s", k2c_errmsg());
    int L = m.cfg.num_hidden_layers, H = m.cfg.num_attention_heads;
    assert(L * H <= 64);   /* the clipped-head arrays below */
    for (int step = 1; step <= 2; step++) {
        char name[64];
        int ids[64], tg[64], cnt;
        snprintf(name, sizeof name, "step%d.input_ids", step);
        int T = load_ids(&ref, name, ids, tg);
        double loss;
        memset(m.g, 0, m.nw * sizeof(float));
        k2c_tacts_reset_stats(&a, &m);
        EXPECT(k2c_train_forward(&m, &a, ids, tg, 1, T, 0, &loss, &cnt, NULL) == 0, "%s", k2c_errmsg());
        EXPECT(k2c_train_backward(&m, &a, 1.0f / cnt) == 0, "%s", k2c_errmsg());
        snprintf(name, sizeof name, "step%d.loss", step);
        float want = *(const float *)k2c_st_find(&ref, name)->data;
        EXPECT(fabs(loss / cnt - want) < 1e-4 * fabs(want), "step %d loss %.7g want %.7g", step, loss / cnt, want);
        k2c_optim_step(&o, &m, o.lr);
        unsigned char clipped[64];
        int n = k2c_qk_clip(&m, a.attn_max, o.tau, clipped);
        snprintf(name, sizeof name, "step%d.clipped_heads", step);
        const k2c_tensor *ch = k2c_st_find(&ref, name);
        /* The generator picked tau equal to one head's S_h, so that head sits on the threshold: S_h > tau is
         * decided by the last bit of an fp32 sum, which depends on the BLAS kernel the CPU gets. A head within
         * 1e-5 relative of tau may go either way (its clip factor is 1 - 1e-7 anyway); every other head must
         * be clipped exactly when the reference clipped it. */
        int nref = ch ? (int)ch->shape[0] : -1, same = nref >= 0, ties = 0;
        unsigned char want_clip[64] = {0};
        for (int i = 0; same && i < nref; i++) {
            int l = (int)k2c_elem_to_f32(ch->dtype, ch->data, 2 * i), h = (int)k2c_elem_to_f32(ch->dtype, ch->data, 2 * i + 1);
            same = l >= 0 && h >= 0 && l < L && h < H;
            if (same) want_clip[l * H + h] = 1;
        }
        for (int i = 0; same && i < L * H; i++) {
            if (fabsf(a.attn_max[i] - o.tau) <= 1e-5f * o.tau) { ties++; continue; }
            if (clipped[i] != want_clip[i]) same = 0;
        }
        EXPECT(same && ties <= 1, "step %d: %d clipped heads, reference %d (%d on the threshold)", step, n, nref, ties);
        k2c_bias_update(&m, a.load, o.bias_u, NULL);
    }
    float worst = 0;
    for (int i = 0; i < m.nparams; i++) {
        const k2c_param *p = &m.params[i];
        char name[160];
        snprintf(name, sizeof name, "after2.%s", p->name);
        const k2c_tensor *t = k2c_st_find(&ref, name);
        if (!t) { EXPECT(0, "reference lacks %s", name); continue; }
        float e = rel_err(m.w + p->off, t->data, p->numel);
        if (e > worst) worst = e;
        EXPECT(e < 1e-3f, "%s rel err %g", p->name, e);
    }
    printf("  after two MuonClip steps: worst rel err %.3g\n", worst);
    k2c_tacts_free(&a);
    k2c_optim_free(&o);
    k2c_st_close(&ref);
    k2c_tmodel_free(&m);
}


/* Train a few steps, save (F32 and BF16), load with the inference loader and compare its prefill logits
 * with the training forward's logits. Also for a plain-q_proj model. */
static void ckpt_roundtrip(int variant) {
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    if (variant) { c.q_lora_rank = 0; c.n_shared_experts = 2; c.rope_yarn = 0; }
    k2c_tmodel m;
    k2c_optim o;
    k2c_tacts a;
    if (k2c_tmodel_init(&m, &c, 3)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    k2c_optim_defaults(&o, K2C_OPT_MUONCLIP);
    o.lr = 0.01f; o.tau = 1.0f;
    EXPECT(k2c_optim_init(&o, &m) == 0 && k2c_tacts_init(&a, &m, 2, 24) == 0, "%s", k2c_errmsg());
    enum { B = 2, T = 24 };
    int ids[B * T], tg[B * T];
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < B * T; i++) ids[i] = (int)((frand() + 1) * 256) % 512;
        for (int i = 0; i < B * T; i++) tg[i] = i % T == T - 1 ? -1 : ids[i + 1];
        double l; int n;
        memset(m.g, 0, m.nw * sizeof(float));
        k2c_tacts_reset_stats(&a, &m);
        EXPECT(k2c_train_forward(&m, &a, ids, tg, B, T, 0, &l, &n, NULL) == 0, "%s", k2c_errmsg());
        k2c_train_backward(&m, &a, 1.0f / n);
        k2c_optim_step(&o, &m, o.lr);
        k2c_qk_clip(&m, a.attn_max, o.tau, NULL);
        k2c_bias_update(&m, a.load, 1e-2f, NULL);
    }
    float *lt = malloc((size_t)B * T * 512 * sizeof *lt), *li = malloc((size_t)T * 512 * sizeof *li);
    double l; int n;
    k2c_train_forward(&m, &a, ids, tg, B, T, 0, &l, &n, lt);
    const char *tmp = getenv("K2C_TMP") ? getenv("K2C_TMP") : "/tmp";
    for (int bf = 0; bf < 2; bf++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/train_ckpt_%d_%d", tmp, variant, bf);
        EXPECT(k2c_ckpt_save(&m, &o, dir, bf ? K2C_BF16 : K2C_F32, 1) == 0, "%s", k2c_errmsg());
        k2c_model im;
        if (k2c_model_load(&im, dir)) { EXPECT(0, "inference load: %s", k2c_errmsg()); continue; }
        k2c_state s;
        EXPECT(k2c_state_init(&s, &im, 64) == 0, "%s", k2c_errmsg());
        for (int b = 0; b < B; b++) {          /* each training row is its own sequence */
            k2c_state_reset(&s);
            EXPECT(k2c_prefill(&s, ids + b * T, T, li, NULL, NULL) == 0, "%s", k2c_errmsg());
            float e = rel_err(li, lt + (size_t)b * T * 512, (size_t)T * 512);
            EXPECT(e < (bf ? 3e-2f : 1e-4f), "variant %d %s row %d: inference vs training logits rel err %g", variant,
                   bf ? "bf16" : "f32", b, e);
        }
        k2c_state_free(&s);
        k2c_model_free(&im);
        /* the optimizer state comes back exactly */
        k2c_tmodel m2;
        k2c_optim o2;
        k2c_optim_defaults(&o2, K2C_OPT_MUONCLIP);
        uint64_t seed = 0;
        if (k2c_ckpt_load(&m2, &o2, dir, &seed)) { EXPECT(0, "%s", k2c_errmsg()); continue; }
        EXPECT(o2.step == 3 && seed == 1 && !memcmp(m2.w, m.w, m.nw * 4) && !memcmp(o2.m, o.m, m.nw * 4) &&
               !memcmp(o2.v, o.v, m.nw * 4), "checkpoint state differs");
        k2c_optim_free(&o2);
        k2c_tmodel_free(&m2);
    }
    free(lt); free(li);
    k2c_tacts_free(&a);
    k2c_optim_free(&o);
    k2c_tmodel_free(&m);
}
static void test_ckpt_inference(void) { ckpt_roundtrip(0); ckpt_roundtrip(1); }

/* NS5 output has singular values near 1 (the quintic's fixed band is about [0.7, 1.2]). */
static void test_ns5(void) {
    enum { A = 12, Bc = 20 };
    float X[A * Bc], tmp[2 * A * A + 2 * A * Bc], Xt[Bc * A], G[A * A];
    fill(X, A * Bc, 1);
    for (int i = 0; i < A; i++) for (int j = 0; j < Bc; j++) Xt[j * A + i] = X[i * Bc + j];
    k2c_ns5(X, A, Bc, 5, tmp);
    k2c_ns5(Xt, Bc, A, 5, tmp);                    /* tall: the transpose of the wide result */
    float e = 0, dmin = 9, dmax = 0;
    for (int i = 0; i < A; i++) for (int j = 0; j < Bc; j++) e = (float)check_worse(e, fabsf(Xt[j * A + i] - X[i * Bc + j]));
    for (int i = 0; i < A; i++)
        for (int j = 0; j < A; j++) {
            double s = 0;
            for (int k = 0; k < Bc; k++) s += (double)X[i * Bc + k] * X[j * Bc + k];
            G[i * A + j] = (float)s;
        }
    for (int i = 0; i < A; i++) { dmin = fminf(dmin, G[i * A + i]); dmax = fmaxf(dmax, G[i * A + i]); }
    EXPECT(e < 1e-5f, "tall vs wide NS5 differ by %g", e);
    EXPECT(dmin > 0.4f && dmax < 1.5f, "X X^T diagonal in [%g, %g]", dmin, dmax);
}

/* The bias update moves overloaded experts down and underloaded ones up; MaxVio as defined. */
static void test_bias_update(void) {
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    c.num_hidden_layers = 2; c.n_routed_experts = 4; c.num_experts_per_tok = 1;
    k2c_tmodel m;
    if (k2c_tmodel_init(&m, &c, 1)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    double load[2 * 5] = {0, 0, 0, 0, 0, 6, 2, 2, 2, 12};   /* layer 1: 12 tokens, mean 3 */
    float mv[2];
    k2c_bias_update(&m, load, 0.5f, mv);
    const float *b = m.w + m.layers[1].bias;
    EXPECT(b[0] == -0.5f && b[1] == 0.5f && b[3] == 0.5f, "bias %g %g %g %g", b[0], b[1], b[2], b[3]);
    EXPECT(mv[0] == 0 && fabsf(mv[1] - 1.0f) < 1e-6f, "maxvio %g %g", mv[0], mv[1]);
    k2c_tmodel_free(&m);
}

int main(void) {
    /* the tensors here are tiny: threads only add synchronization (and noise on a shared machine) */
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    run_test("train_fd_rmsnorm", test_fd_rmsnorm);
    run_test("train_fd_rope", test_fd_rope);
    run_test("train_fd_attention", test_fd_attention);
    run_test("train_fd_swiglu", test_fd_swiglu);
    run_test("train_fd_router", test_fd_router);
    run_test("train_fd_xent", test_fd_xent);
    run_test("train_fd_model", test_fd_model);
    run_test("train_golden_grad", test_golden_grad);
    run_test("train_golden_muonclip_2steps", test_golden_steps);
    run_test("train_ns5", test_ns5);
    run_test("train_bias_update", test_bias_update);
    run_test("train_checkpoint_inference_logits", test_ckpt_inference);
    return check_exit();
}
