/* Prompt matmul paths (k2c_matmul with T > 8: kern_<isa>.c GEMM tiles; T > 32: sgemm on dequantized tiles) against a float64 reference, on shapes that hit every
 * edge: T not a multiple of the 32-token block, rows not a multiple of the 8-row panel or the 64-row tile, an
 * odd number of columns (the BF16 kernel works on column pairs). The BF16-prompt path is checked against a
 * reference on the same BF16-rounded inputs, so it must agree to fp32 summation error, not to BF16 error. */
#include "kernels/kernels.h"
#include "check.h"
#include "simd_levels.h"

#include <stdint.h>
#include <string.h>

static k2c_kctx cx;     /* the kernels under test */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

/* max |Y - ref| / max |ref| with ref = X W^T in float64; round_x rounds X to BF16 first */
static double check_shape(k2c_wfmt fmt, int T, int R, int C, int round_x) {
    float *X = malloc((size_t)T * C * sizeof *X), *Y = malloc((size_t)T * R * sizeof *Y);
    float *Wf = malloc((size_t)R * C * sizeof *Wf);
    uint16_t *Wb = malloc((size_t)R * C * sizeof *Wb);
    for (size_t i = 0; i < (size_t)T * C; i++) X[i] = frand();
    for (size_t i = 0; i < (size_t)R * C; i++) {
        Wb[i] = k2c_f32_to_bf16(frand());
        Wf[i] = k2c_bf16_to_f32(Wb[i]);    /* the same values in both formats */
    }
    k2c_linear l = {.fmt = fmt, .rows = R, .cols = C, .w = fmt == K2C_FMT_BF16 ? (const void *)Wb : (const void *)Wf,
                    .cx = &cx};
    if (k2c_matmul(&l, X, T, Y) != 0) { EXPECT(0, "matmul: %s", k2c_errmsg()); return 1; }
    double err = 0, mx = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int c = 0; c < C; c++) {
                float x = X[(size_t)t * C + c];
                if (round_x) x = k2c_bf16_to_f32(k2c_f32_to_bf16(x));
                s += (double)Wf[(size_t)r * C + c] * x;
            }
            err = check_worse(err, fabs(Y[(size_t)t * R + r] - s));
            mx = fmax(mx, fabs(s));
        }
    free(X); free(Y); free(Wf); free(Wb);
    return err / mx;
}

static const int SHAPES[][3] = {{33, 8, 16}, {45, 70, 129}, {64, 64, 64}, {100, 13, 7}, {77, 130, 512}, {9, 70, 129}, {20, 13, 64}};
#define NSHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static void fp32_inputs(void) {
    for (int s = 0; s < NSHAPES; s++)
        for (int f = 0; f < 2; f++) {
            k2c_wfmt fmt = f ? K2C_FMT_BF16 : K2C_FMT_F32;
            double e = check_shape(fmt, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], 0);
            EXPECT(e < 1e-5, "[%s] %s T=%d R=%d C=%d rel err %g", cx.k->name, f ? "bf16" : "f32", SHAPES[s][0],
                   SHAPES[s][1], SHAPES[s][2], e);
        }
}

/* T > 32 (the BF16 path), C a multiple of 32 (AMX) or not, rows that fill 32, 16 or neither, last token blocks of
 * more and fewer than 16 */
static const int BF16_SHAPES[][3] = {{33, 8, 16}, {45, 70, 129}, {64, 64, 64}, {100, 13, 7}, {77, 130, 512},
                                     {50, 48, 64}, {40, 100, 96}, {33, 16, 32}, {9, 40, 64}, {17, 64, 128}};
static int want_amx;
static void bf16_inputs(void) {
    EXPECT(k2c_kctx_init(&cx, "avx512", 2, want_amx ? 1 : 2) == 0, "AVX512-BF16 reported but cannot be enabled: %s",
           k2c_errmsg());
    EXPECT(cx.bf16_prompt, "BF16 prompt path not active");
    EXPECT(cx.amx == want_amx, "AMX %s", want_amx ? "not active" : "active with bf16_prompt 2");
    for (int s = 0; s < (int)(sizeof BF16_SHAPES / sizeof BF16_SHAPES[0]); s++) {
        const int *sh = BF16_SHAPES[s];
        if (!want_amx && sh[0] <= 32) continue;     /* AVX512-BF16 from 33 tokens on; fewer run the fp32 tile */
        double e = check_shape(K2C_FMT_BF16, sh[0], sh[1], sh[2], 1);
        EXPECT(e < 1e-5, "bf16 x bf16 T=%d R=%d C=%d rel err %g", sh[0], sh[1], sh[2], e);
        /* and it really rounds: against fp32 inputs the error is BF16-sized, far above fp32 summation */
        double e32 = check_shape(K2C_FMT_BF16, sh[0], sh[1], sh[2], 0);
        EXPECT(e32 > 1e-5 && e32 < 2e-2, "bf16 path vs fp32 inputs T=%d rel err %g", sh[0], e32);
    }
    k2c_kctx_init(&cx, "avx512", 2, 0);
}

/* F16 and FP8 weights on AMX (bf16_prompt): each row dequantized and rounded to BF16, times BF16-rounded inputs;
 * checked against float64 on exactly those rounded values, so only summation error remains. (The GGUF block
 * formats keep their int8 path, which must not change: checked below too.) */
static double check_fmt_amx(k2c_wfmt fmt, int T, int R, int C) {
    int sc = (C + 127) / 128, sr = (R + 127) / 128;
    size_t rb = fmt == K2C_FMT_F16 ? (size_t)C * 2 : fmt == K2C_FMT_FP8 ? (size_t)C : k2c_wfmt_row_bytes(fmt, C);
    uint8_t *W = malloc(rb * R);
    float *X = malloc((size_t)T * C * sizeof *X), *Y = malloc((size_t)T * R * sizeof *Y), *row = malloc((size_t)C * sizeof *row);
    float *scale = malloc((size_t)sc * sr * sizeof *scale);
    double *Wd = malloc((size_t)R * C * sizeof *Wd);
    for (int i = 0; i < sc * sr; i++) scale[i] = 0.01f * (1 + i % 5);
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < C; c++) row[c] = frand();
        if (fmt == K2C_FMT_FP8)
            for (int c = 0; c < C; c++) {
                uint8_t v = (uint8_t)(rng >> (c % 56));
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                W[rb * r + c] = (v & 0x7f) == 0x7f ? 0x3c : v;      /* no NaN codes */
            }
        else EXPECT(k2c_quantize_row(fmt, row, NULL, C, W + rb * r) == 0, "quantize: %s", k2c_errmsg());
    }
    for (size_t i = 0; i < (size_t)T * C; i++) X[i] = frand();
    k2c_linear l = {.fmt = fmt, .rows = R, .cols = C, .w = W, .cx = &cx, .scale_f32 = scale, .block = 128, .scale_cols = sc};
    for (int r = 0; r < R; r++) {
        k2c_scalar_row_dequant(&l, r, row);
        for (int c = 0; c < C; c++) Wd[(size_t)r * C + c] = k2c_bf16_to_f32(k2c_f32_to_bf16(row[c]));
    }
    double err = 1, mx = 0;
    if (k2c_matmul(&l, X, T, Y) != 0) EXPECT(0, "matmul: %s", k2c_errmsg());
    else {
        err = 0;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < R; r++) {
                double s = 0;
                for (int c = 0; c < C; c++) s += Wd[(size_t)r * C + c] * k2c_bf16_to_f32(k2c_f32_to_bf16(X[(size_t)t * C + c]));
                err = check_worse(err, fabs(Y[(size_t)t * R + r] - s));
                mx = fmax(mx, fabs(s));
            }
        err /= mx;
    }
    free(W); free(X); free(Y); free(row); free(Wd); free(scale);
    return err;
}

static void fmts_amx(void) {
    EXPECT(k2c_kctx_init(&cx, "avx512", 2, 1) == 0 && cx.amx, "AMX not active: %s", k2c_errmsg());
    static const int shapes[][3] = {{40, 70, 256}, {64, 48, 512}, {33, 130, 256}, {9, 20, 256}, {20, 33, 96}};
    k2c_wfmt fmts[] = {K2C_FMT_F16, K2C_FMT_FP8};
    for (int f = 0; f < 2; f++)
        for (int s = 0; s < 5; s++) {
            double e = check_fmt_amx(fmts[f], shapes[s][0], shapes[s][1], shapes[s][2]);
            EXPECT(e < 1e-5, "%s on AMX T=%d R=%d C=%d rel err %g", f ? "FP8" : "F16", shapes[s][0], shapes[s][1],
                   shapes[s][2], e);
        }
    /* a block format keeps int8 activations: its error is int8-sized, not summation-sized */
    double e = check_fmt_amx(K2C_FMT_Q8_0, 64, 48, 512);
    EXPECT(e > 1e-5 && e < 2e-2, "Q8_0 with bf16_prompt: rel err %g from the BF16 product (the int8 path?)", e);
    k2c_kctx_init(&cx, "avx512", 2, 0);
}

/* Every BF16 tile kernel reads this packing; check the packed layout. */
static void bf16_packing(void) {
    float X[3 * 5];
    for (int i = 0; i < 15; i++) X[i] = (float)(i + 1);
    uint32_t *Xp = calloc(k2c_gemm_bf16_packed_size(3, 5), sizeof *Xp);
    EXPECT(k2c_gemm_bf16_packed_size(3, 5) == 32 * 3, "size %zu", k2c_gemm_bf16_packed_size(3, 5));
    k2c_gemm_pack_x_bf16(X, 3, 5, Xp);
    /* token 1, pair 1 = columns 2, 3 -> X[1*5+2] = 8, X[1*5+3] = 9; token 2, pair 2 = column 4 and padding */
    EXPECT(k2c_bf16_to_f32((uint16_t)(Xp[1 * 32 + 1] & 0xffff)) == 8.0f && k2c_bf16_to_f32((uint16_t)(Xp[1 * 32 + 1] >> 16)) == 9.0f,
           "pair layout");
    EXPECT(k2c_bf16_to_f32((uint16_t)(Xp[2 * 32 + 2] & 0xffff)) == 15.0f && (Xp[2 * 32 + 2] >> 16) == 0, "odd column padding");
    EXPECT(Xp[0 * 32 + 3] == 0, "token padding");
    free(Xp);
}

/* BF16-rounded prompt inputs are opt-in: the defaults keep fp32 inputs, and so does K2C_PROMPT_PRECISION unset. */
static void fp32_by_default(void) {
    EXPECT(!k2c_kctx_default()->bf16_prompt, "BF16 prompt inputs on in the default context");
    k2c_model_opts o;
    unsetenv("K2C_PROMPT_PRECISION");
    k2c_model_opts_default(&o);
    EXPECT(!o.bf16_prompt, "BF16 prompt inputs on without K2C_PROMPT_PRECISION=bf16");
    if (k2c_cpu_has_avx512bf16()) {
        setenv("K2C_PROMPT_PRECISION", "bf16", 1);
        k2c_model_opts_default(&o);
        EXPECT(o.bf16_prompt, "K2C_PROMPT_PRECISION=bf16 ignored on an AVX512-BF16 CPU");
        unsetenv("K2C_PROMPT_PRECISION");
    }
}



int main(void) {
    run_test("gemm_fp32_prompt_by_default", fp32_by_default);
    run_test("gemm_bf16_packing", bf16_packing);
        for (int lv = 0; lv < SIMD_NLEVELS; lv++) {
        char name[64];
        snprintf(name, sizeof name, "gemm_fp32_inputs_%s", SIMD_LEVELS[lv]);
        const char *why = level_missing(SIMD_LEVELS[lv]);
        if (why) {
            skip_test(name, why);
            if (lv == 0) {
                skip_test("gemm_bf16_inputs_avx512bf16", why);
                skip_test("gemm_bf16_inputs_amx", why);
                skip_test("gemm_f16_fp8_amx", why);
            }
            continue;
        }
        k2c_kctx_init(&cx, SIMD_LEVELS[lv], 0, 0);
        run_test(name, fp32_inputs);
        if (lv == 0) {
            if (k2c_cpu_has_avx512bf16()) run_test("gemm_bf16_inputs_avx512bf16", bf16_inputs);
            else skip_test("gemm_bf16_inputs_avx512bf16", "this CPU lacks AVX512-BF16");
            want_amx = 1;
            if (k2c_cpu_has_amx_bf16()) {
                run_test("gemm_bf16_inputs_amx", bf16_inputs);
                run_test("gemm_f16_fp8_amx", fmts_amx);
            } else {
                skip_test("gemm_bf16_inputs_amx", "this CPU (or OS) lacks AMX-BF16");
                skip_test("gemm_f16_fp8_amx", "this CPU (or OS) lacks AMX-BF16");
            }
            want_amx = 0;
        }
    }
    return check_exit();
}
