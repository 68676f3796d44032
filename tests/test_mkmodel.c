/* Checkpoints written by k2c_mkmodel in every dtype load back, shard through an unpadded index, and
 * run with prefill and absorbed decode agreeing. Also the sampler's basic guarantees. */
#include "model/model.h"
#include "check.h"

#include <string.h>

static void one(const char *dtype, int shards, int q_lora) {
    char dir[128];
    snprintf(dir, sizeof dir, "build/tests/mk_%s_%d_%d", dtype, shards, q_lora);
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    if (!q_lora) { c.q_lora_rank = 0; c.rope_yarn = 0; c.n_shared_experts = 2; }
    EXPECT(k2c_mkmodel(&c, dtype, shards, 7, dir) == 0, "%s: %s", dtype, k2c_errmsg());
    k2c_model m;
    if (k2c_model_load(&m, dir) != 0) { EXPECT(0, "%s load: %s", dtype, k2c_errmsg()); return; }
    EXPECT(m.st.nfiles == shards, "%s: %d files", dtype, m.st.nfiles);
    if (!strcmp(dtype, "fp8")) EXPECT(m.layers[1].exp_up[0].fmt == K2C_FMT_FP8 && m.layers[0].o.fmt == K2C_FMT_FP8, "fp8 fmt");
    if (!strcmp(dtype, "int4")) EXPECT(m.layers[1].exp_up[0].fmt == K2C_FMT_INT4 && m.layers[0].o.fmt == K2C_FMT_BF16, "int4 fmt");
    int ids[6] = {1, 7, 42, 300, 5, 511}, V = m.cfg.vocab_size;
    float *a = malloc(6 * V * sizeof *a), *b = malloc(6 * V * sizeof *b);
    k2c_state s;
    k2c_state_init(&s, &m, 8);
    EXPECT(k2c_prefill(&s, ids, 6, a, NULL, NULL) == 0, "%s", k2c_errmsg());
    k2c_state_reset(&s);
    for (int t = 0; t < 6; t++) k2c_decode(&s, ids[t], b + t * V, NULL);
    float mx = 0, e = 0;
    int finite = 1;
    for (int i = 0; i < 6 * V; i++) { mx = fmaxf(mx, fabsf(a[i])); e = (float)check_worse(e, fabsf(a[i] - b[i])); finite &= isfinite(a[i]); }
    EXPECT(finite && mx > 0.1f, "%s: logits degenerate (max %g)", dtype, mx);
    EXPECT(e / mx < 1e-4f, "%s: prefill vs decode rel err %g", dtype, e / mx);
    /* same seed, different sharding: same weights */
    if (shards > 1) {
        char d1[160];
        snprintf(d1, sizeof d1, "%s_single", dir);
        k2c_mkmodel(&c, dtype, 1, 7, d1);
        k2c_safetensors x;
        EXPECT(k2c_st_open(&x, d1) == 0, "%s", k2c_errmsg());
        int same = x.ntensors == m.st.ntensors;
        for (int i = 0; same && i < x.ntensors; i++)
            same = x.tensors[i].nbytes == m.st.tensors[i].nbytes && !memcmp(x.tensors[i].data, m.st.tensors[i].data, x.tensors[i].nbytes);
        EXPECT(same, "%s: sharding changed the weights", dtype);
        k2c_st_close(&x);
    }
    free(a); free(b);
    k2c_state_free(&s);
    k2c_model_free(&m);
}

static void mk_f32(void) { one("f32", 1, 1); }
static void mk_bf16(void) { one("bf16", 3, 1); }
static void mk_fp8(void) { one("fp8", 2, 1); }
static void mk_int4(void) { one("int4", 4, 1); }
static void mk_bf16_qproj(void) { one("bf16", 1, 0); }

static void sampler(void) {
    float lg[5] = {0.0f, 3.0f, 1.0f, 2.9f, -1.0f};
    k2c_sampler s;
    k2c_sampler_init(&s, 5, 0.0f, 1.0f, 0, 0.0f, 1);
    EXPECT(k2c_sample(&s, lg) == 1, "greedy");
    k2c_sampler_free(&s);
    k2c_sampler_init(&s, 5, 1.0f, 1.0f, 2, 0.0f, 1);     /* top-k 2: only 1 and 3 */
    int ok = 1, seen1 = 0, seen3 = 0;
    for (int i = 0; i < 2000; i++) { int t = k2c_sample(&s, lg); ok &= t == 1 || t == 3; seen1 += t == 1; seen3 += t == 3; }
    EXPECT(ok && seen1 > 800 && seen3 > 700, "top-k: %d %d", seen1, seen3);
    k2c_sampler_free(&s);
    k2c_sampler_init(&s, 5, 1.0f, 0.5f, 0, 0.0f, 1);     /* top-p 0.5: the best alone holds ~48%, so two */
    ok = 1;
    for (int i = 0; i < 1000; i++) { int t = k2c_sample(&s, lg); ok &= t == 1 || t == 3; }
    EXPECT(ok, "top-p");
    k2c_sampler_free(&s);
    k2c_sampler_init(&s, 5, 1.0f, 1.0f, 0, 0.5f, 1);     /* min-p 0.5: p >= 0.5 p_max -> 1, 3 */
    ok = 1;
    for (int i = 0; i < 1000; i++) { int t = k2c_sample(&s, lg); ok &= t == 1 || t == 3; }
    EXPECT(ok, "min-p");
    k2c_sampler_free(&s);
    int a[20], b[20];
    k2c_sampler_init(&s, 5, 1.0f, 1.0f, 0, 0.0f, 42);
    for (int i = 0; i < 20; i++) a[i] = k2c_sample(&s, lg);
    k2c_sampler_free(&s);
    k2c_sampler_init(&s, 5, 1.0f, 1.0f, 0, 0.0f, 42);
    for (int i = 0; i < 20; i++) b[i] = k2c_sample(&s, lg);
    k2c_sampler_free(&s);
    EXPECT(!memcmp(a, b, sizeof a), "seeded sampling not reproducible");
}

int main(void) {
    run_test("mkmodel_f32", mk_f32);
    run_test("mkmodel_bf16_3_shards", mk_bf16);
    run_test("mkmodel_fp8_2_shards", mk_fp8);
    run_test("mkmodel_int4_4_shards", mk_int4);
    run_test("mkmodel_bf16_q_proj_no_yarn", mk_bf16_qproj);
    run_test("sampler", sampler);
    return check_exit();
}
