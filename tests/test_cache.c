/* The latent cache's row formats and the BF16 attention kernels (model/cache.c, model/attn_bf16.c), against
 * plain double-precision references: q8_0 rounding error bounds, saturation and zero blocks; the AVX512-BF16
 * score and accumulation products (head groups 8 + 4 + 1, a row length that is not a multiple of 32, an odd
 * tile) equal to the exact products of the BF16-rounded inputs up to fp32 summation order; and a prefill chunk's
 * tokens attending together (blocks of several tokens' heads, the GEMM tile for their scores) against the same
 * tokens one at a time, on every kernel table. */
#include "model/model.h"
#include "check.h"
#include "simd_levels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static float urand(void) {      /* [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}
static float bf(float x) { return k2c_bf16_to_f32(k2c_f32_to_bf16(x)); }

static void q8_rounding(void) {
    enum { N = 72 };                     /* blocks of 32, 32 and 8 */
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = urand() * (i < 32 ? 3.0f : i < 64 ? 0.02f : 400.0f);
    memcpy(y, x, sizeof x);
    k2c_cache_round_row(K2C_CACHE_Q8_0, y, N);
    for (int b = 0; b < 3; b++) {
        int lo = 32 * b, hi = lo + 32 < N ? lo + 32 : N;
        float amax = 0;
        for (int i = lo; i < hi; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = k2c_f16_to_f32(k2c_f32_to_f16(amax / 127));
        for (int i = lo; i < hi; i++) {
            float q = y[i] / d;
            EXPECT(fabsf(y[i] - x[i]) <= 0.5f * d * 1.0001f, "block %d value %d: %g -> %g (step %g)", b, i, x[i], y[i], d);
            EXPECT(q == rintf(q) && fabsf(q) <= 127, "block %d value %d: %g is not an int8 multiple of %g", b, i, y[i], d);
        }
    }
    /* a zero block stays zero; a block beyond fp16's range saturates instead of becoming inf or NaN */
    float z[40] = {0}, big[32];
    k2c_cache_round_row(K2C_CACHE_Q8_0, z, 40);
    for (int i = 0; i < 40; i++) EXPECT(z[i] == 0, "zero row value %d became %g", i, z[i]);
    for (int i = 0; i < 32; i++) big[i] = (i % 2 ? -1 : 1) * 1e30f;
    k2c_cache_round_row(K2C_CACHE_Q8_0, big, 32);
    for (int i = 0; i < 32; i++) EXPECT(isfinite(big[i]) && fabsf(big[i]) > 1e6f, "saturated value %d: %g", i, big[i]);
    /* BF16 rounding is round-to-nearest-even of the top 16 bits */
    float v[3] = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.5f};
    k2c_cache_round_row(K2C_CACHE_BF16, v, 3);
    EXPECT(v[0] == 1.0f && v[1] == 1.0f + 4.0f / 256 && v[2] == -2.5f, "bf16: %g %g %g", v[0], v[1], v[2]);
}

/* scores and acc for H heads, rows of rs values (r latent ones), nt positions */
static void bf16_kernels_case(int H, int r, int rs, int nt) {
    int ldq = (rs + 31) / 32 * 32, lds = 64, np = (nt + 1) / 2;
    float *q = malloc(sizeof(float) * H * rs), *S = malloc(sizeof(float) * H * lds), *acc = malloc(sizeof(float) * H * r);
    float *acc0 = malloc(sizeof(float) * H * r);
    uint16_t *qb = malloc(2 * (size_t)H * ldq), *c = malloc(2 * (size_t)nt * rs);
    uint32_t *pp = malloc(4 * (size_t)H * np);
    for (int i = 0; i < H * rs; i++) q[i] = urand();
    for (int i = 0; i < nt * rs; i++) c[i] = k2c_f32_to_bf16(urand());
    for (int h = 0; h < H; h++) k2c_attn_bf16_round(q + (size_t)h * rs, rs, ldq, qb + (size_t)h * ldq);
    for (int h = 0; h < H; h++)
        for (int k = 0; k < ldq; k++)
            EXPECT(qb[(size_t)h * ldq + k] == (k < rs ? k2c_f32_to_bf16(q[(size_t)h * rs + k]) : 0), "query %d,%d rounded wrong", h, k);
    float scale = 0.37f;
    k2c_attn_bf16_scores(H, qb, ldq, c, rs, nt, scale, S, lds);
    double worst = 0;
    for (int h = 0; h < H; h++)
        for (int t = 0; t < nt; t++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < rs; k++) {
                double p = (double)bf(q[(size_t)h * rs + k]) * k2c_bf16_to_f32(c[(size_t)t * rs + k]);
                ref += p; mag += fabs(p);
            }
            ref *= scale; mag *= scale;
            double e = fabs(S[(size_t)h * lds + t] - ref) / (mag + 1e-30);
            worst = e > worst ? e : worst;
        }
    EXPECT(worst < 1e-6, "H %d rs %d nt %d: scores rel err %g", H, rs, nt, worst);
    /* acc += P C with P = exp-like weights in [0, 1] */
    for (int h = 0; h < H; h++)
        for (int t = 0; t < nt; t++) S[(size_t)h * lds + t] = 0.5f * (urand() + 1);
    /* acc is in the kernel's permuted order throughout: the reference starts from the same values unpermuted */
    for (int i = 0; i < H * r; i++) acc0[i] = acc[i] = urand();
    for (int h = 0; h < H; h++) k2c_attn_bf16_unpermute(acc0 + (size_t)h * r, r);
    k2c_attn_bf16_acc(H, acc, r, S, lds, pp, c, rs, nt, r);
    for (int h = 0; h < H; h++) k2c_attn_bf16_unpermute(acc + (size_t)h * r, r);
    worst = 0;
    for (int h = 0; h < H; h++)
        for (int k = 0; k < r; k++) {
            double ref = acc0[(size_t)h * r + k], mag = fabs(ref);
            for (int t = 0; t < nt; t++) {
                double p = (double)bf(S[(size_t)h * lds + t]) * k2c_bf16_to_f32(c[(size_t)t * rs + k]);
                ref += p; mag += fabs(p);
            }
            double e = fabs(acc[(size_t)h * r + k] - ref) / mag;
            worst = e > worst ? e : worst;
        }
    EXPECT(worst < 1e-6, "H %d r %d nt %d: acc rel err %g", H, r, nt, worst);
    free(q); free(S); free(acc); free(acc0); free(qb); free(c); free(pp);
}

static void bf16_kernels(void) {
    bf16_kernels_case(13, 32, 40, 37);     /* the golden models' rows (32 + 8), head groups 8 + 4 + 1, odd tile */
    bf16_kernels_case(16, 512, 576, 64);   /* Moonlight / Kimi-K2 rows, a whole tile */
    bf16_kernels_case(2, 64, 72, 1);       /* one position */
}

/* The flash-decoding split (a long cache over both threads, partial softmaxes merged) with each cache format: the
 * same logits as one thread up to the merge's rounding. The BF16 dot-product path keeps its accumulators in the
 * unpacks' lane order until the merged context vector, so a wrong order there would show as an O(1) error. The
 * golden models are too small to split (their attention stays on one thread), so this uses the k2-tiny shape at
 * a depth of 4000 positions (filled by repetition). */
static void split_threads(void) {
    const char *dir = "build/tests/cache_k2tiny";
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    EXPECT(k2c_mkmodel(&c, "bf16", 1, 5, dir) == 0, "%s", k2c_errmsg());
    for (int ct = K2C_CACHE_F32; ct <= K2C_CACHE_Q8_0; ct++) {
        k2c_model m1, m2;
        k2c_model_opts o1 = {.threads = 1, .cache_type = ct}, o2 = {.threads = 2, .cache_type = ct};
        if (k2c_model_load_opts(&m1, dir, &o1) || k2c_model_load_opts(&m2, dir, &o2)) { EXPECT(0, "%s", k2c_errmsg()); return; }
        int V = m1.cfg.vocab_size, ids[64];
        for (int i = 0; i < 64; i++) ids[i] = (i * 7919 + 13) % V;
        float *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
        k2c_state s1, s2;
        EXPECT(k2c_state_init(&s1, &m1, 4100) == 0 && k2c_state_init(&s2, &m2, 4100) == 0, "%s", k2c_errmsg());
        EXPECT(k2c_prefill(&s1, ids, 64, NULL, a, NULL) == 0 && k2c_prefill(&s2, ids, 64, NULL, b, NULL) == 0, "%s", k2c_errmsg());
        EXPECT(k2c_state_fill_repeat(&s1, 4000) == 0 && k2c_state_fill_repeat(&s2, 4000) == 0, "%s", k2c_errmsg());
        double e = 0, mx = 0;
        for (int step = 0; step < 3; step++) {
            EXPECT(k2c_decode(&s1, ids[step], a, NULL) == 0 && k2c_decode(&s2, ids[step], b, NULL) == 0, "%s", k2c_errmsg());
            for (int v = 0; v < V; v++) { e = fmax(e, fabs(a[v] - b[v])); mx = fmax(mx, fabs(a[v])); }
        }
        int fast = k2c_attn_bf16_ok(&m2);
        printf("  cache %d%s: 1 vs 2 threads at depth 4000: %.2g x max|logit|\n", ct, fast ? " (BF16 dot products)" : "", e / mx);
        /* fp32 tiles: the merge's and the threads' summation orders differ (9e-6 measured); the BF16 path also
         * rounds each block's weights against its own running max (7e-4) */
        EXPECT(mx > 0 && e / mx < (fast ? 2e-3 : 1e-4), "cache %d: 1 vs 2 threads differ by %g", ct, e / mx);
        k2c_state_free(&s1); k2c_state_free(&s2);
        k2c_model_free(&m1); k2c_model_free(&m2);
        free(a); free(b);
    }
}

/* A prefill chunk in latent form: its tokens share blocks (up to rows_max query rows of several tokens) that walk
 * the cache once, each row masked at its own token's length, and blocks of 32 rows or more take the table's GEMM
 * tile for the scores. Reference: the same tokens prefilled one at a time (a block per token, the dot products,
 * no mask), and the expanded form. Depth 701 (pages of 256: three, and an odd tail), chunks of 7, 64 and 100
 * tokens (the last crosses the page at 768), every logit of the chunk and one decode step after it; each cache
 * format, 1 and 2 threads, every kernel table this CPU runs. A token that saw a later token of its chunk (a wrong
 * mask) or a row of another token's accumulator would be off by O(1), far above the tolerance. */
static void chunk_blocks(void) {
    const char *dir = "build/tests/cache_k2tiny";
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    EXPECT(k2c_mkmodel(&c, "bf16", 1, 5, dir) == 0, "%s", k2c_errmsg());
    enum { DEPTH = 701, MAXT = 100 };
    const int Ts[] = {7, 64, MAXT};
    for (int lv = 0; lv < SIMD_NLEVELS; lv++) {
        const char *why = level_missing(SIMD_LEVELS[lv]);
        if (why) { printf("  [%s] skipped: %s\n", SIMD_LEVELS[lv], why); continue; }
        for (int ct = K2C_CACHE_F32; ct <= K2C_CACHE_Q8_0; ct++)
            for (int nth = 1; nth <= 2; nth++) {
                k2c_model m;
                k2c_model_opts o = {.threads = nth, .cache_type = ct, .simd = SIMD_LEVELS[lv]};
                if (k2c_model_load_opts(&m, dir, &o)) { EXPECT(0, "%s", k2c_errmsg()); return; }
                int V = m.cfg.vocab_size, ids[64 + MAXT];
                for (int i = 0; i < 64 + MAXT; i++) ids[i] = (i * 7919 + 13) % V;
                float *ref = malloc(sizeof(float) * (size_t)V * (MAXT + 1)), *got = malloc(sizeof(float) * (size_t)V * (MAXT + 1));
                double worst = 0;
                for (int ti = 0; ti < 3; ti++) {
                    int T = Ts[ti];
                    /* 0: one at a time (the reference), 1: the chunk absorbed, 2: expanded. Not the expanded form
                     * with the BF16 dot products: it attends to the exact BF16 rows with fp32 queries, 1e-3 away
                     * from the rounded queries, which flipped one token's expert choice (0.44 x max|logit|) */
                    int fast = k2c_attn_bf16_ok(&m);
                    for (int path = 0; path < 3 - fast; path++) {
                        k2c_state s;
                        float *out = path ? got : ref;
                        EXPECT(k2c_state_init(&s, &m, DEPTH + MAXT + 8) == 0, "%s", k2c_errmsg());
                        EXPECT(k2c_prefill(&s, ids, 64, NULL, NULL, NULL) == 0 && k2c_state_fill_repeat(&s, DEPTH) == 0, "%s", k2c_errmsg());
                        m.prefill_path = path ? path : 1;
                        if (path == 0) {
                            for (int t = 0; t < T; t++)
                                EXPECT(k2c_prefill(&s, ids + 64 + t, 1, out + (size_t)t * V, NULL, NULL) == 0, "%s", k2c_errmsg());
                        } else {
                            EXPECT(k2c_prefill(&s, ids + 64, T, out, NULL, NULL) == 0, "%s", k2c_errmsg());
                        }
                        m.prefill_path = 0;
                        EXPECT(k2c_decode(&s, ids[5], out + (size_t)T * V, NULL) == 0, "%s", k2c_errmsg());
                        k2c_state_free(&s);
                        if (!path) continue;
                        double e = 0, mx = 0;
                        for (size_t i = 0; i < (size_t)V * (T + 1); i++) { e = fmax(e, fabs(got[i] - ref[i])); mx = fmax(mx, fabs(ref[i])); }
                        /* fp32: summation orders (1e-6 measured); BF16 dot products: each form rounds the queries
                         * and the softmax weights of its own blocks to BF16; q8_0 and BF16 rows: a chunk's rows are
                         * rounded from its own projection, whose summation order (100 tokens at once or one) can
                         * move a value across a step of 1/127 of its block's max or a BF16 step (2^-9 of it):
                         * 1.2e-4 measured (q8_0, scalar table, expanded; 2e-6 for the chunks of 7 and 64) and
                         * 2e-4 (BF16 rows, scalar table, 2 threads, absorbed: one value rounded the other way
                         * after the absorbed query's products changed order; 1.3e-5 before) */
                        double tol = fast ? 1e-2 : ct != K2C_CACHE_F32 ? 1e-3 : 1e-4;
                        EXPECT(mx > 0 && e / mx < tol, "[%s] cache %d, %d threads, chunk of %d (%s): %g x max|logit| from one at a time",
                               SIMD_LEVELS[lv], ct, nth, T, path == 1 ? "absorbed" : "expanded", e / mx);
                        worst = fmax(worst, e / mx);
                    }
                }
                printf("  [%s] cache %d, %d thread%s: chunks of 7, 64, 100 after %d positions: worst %.2g x max|logit|\n",
                       SIMD_LEVELS[lv], ct, nth, nth > 1 ? "s" : "", DEPTH, worst);
                free(ref); free(got);
                k2c_model_free(&m);
            }
    }
}

int main(void) {
    run_test("cache_q8_0_rounding", q8_rounding);
    run_test("cache_split_over_threads", split_threads);
    run_test("cache_chunk_blocks", chunk_blocks);
#if defined(__x86_64__)
    if (k2c_cpu_has_avx512bf16()) run_test("cache_bf16_attention_kernels", bf16_kernels);
    else skip_test("cache_bf16_attention_kernels", "this CPU lacks AVX512-BF16");
#else
    skip_test("cache_bf16_attention_kernels", "AVX512-BF16 kernels are x86-64 only");
#endif
    return check_exit();
}
