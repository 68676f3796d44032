/* Portable kernels: plain C that any CPU runs, and the reference the ISA files are tested against. Every
 * stored format is dequantized element by element; FP8 and INT4 sum each block or group first and scale once,
 * as the ISA kernels do.
 *
 * Written for the compiler's vectorizer: conversions are inline (a BF16 is the top half of an fp32, no call
 * per weight), and the row dots keep NACC independent partial sums, element j going to sum j % NACC, so the
 * loop is neither one dependent chain of additions nor in need of -ffast-math to become vector code. */
#include "kernels/kernels.h"

#include <string.h>


#define fp8_lut k2c_fp8_lut
#define NACC 8

static inline float bf16f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* sum of w[j] * x[j] over n elements, w converted by CONV */
#define DOT_BODY(CONV)                                                                  \
    float a[NACC] = {0};                                                                \
    int j = 0;                                                                          \
    for (; j + NACC <= n; j += NACC)                                                    \
        for (int k = 0; k < NACC; k++) a[k] += CONV(w[j + k]) * x[j + k];               \
    float s = 0;                                                                        \
    for (; j < n; j++) s += CONV(w[j]) * x[j];                                          \
    for (int k = 0; k < NACC; k++) s += a[k];                                           \
    return s;

#define AS_IS(v) (v)
static float dot_f32_n(const float *w, const float *x, int n) { DOT_BODY(AS_IS) }
static float dot_bf16_n(const uint16_t *w, const float *x, int n) { DOT_BODY(bf16f) }
static float dot_f16_n(const uint16_t *w, const float *x, int n) { DOT_BODY(k2c_f16_to_f32) }
static float dot_fp8_n(const uint8_t *w, const float *x, int n) {
#define FP8(v) fp8_lut[v]
    DOT_BODY(FP8)
#undef FP8
}

/* ------------------------------------------------------------------ dequantization (reference path) */
void k2c_scalar_row_dequant(const k2c_linear *l, int r, float *out) {
    int n = l->cols;
    size_t off = (size_t)r * (size_t)n;
    switch (l->fmt) {
    case K2C_FMT_F32: memcpy(out, (const float *)l->w + off, (size_t)n * 4); break;
    case K2C_FMT_BF16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) out[j] = bf16f(w[j]);
        break; }
    case K2C_FMT_F16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) out[j] = k2c_f16_to_f32(w[j]);
        break; }
    case K2C_FMT_FP8: { const uint8_t *w = (const uint8_t *)l->w + off;
        const float *s = l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols;
        for (int j0 = 0; j0 < n; j0 += l->block) {
            int j1 = j0 + l->block < n ? j0 + l->block : n;
            float sc = s[j0 / l->block];
            for (int j = j0; j < j1; j++) out[j] = fp8_lut[w[j]] * sc;
        }
        break; }
    case K2C_FMT_INT4: { const uint32_t *w = (const uint32_t *)l->w + (size_t)r * (size_t)(n / 8);
        const uint16_t *s = l->scale_bf16 + (size_t)r * (size_t)l->scale_cols;
        for (int j = 0; j < n; j++) {
            int q = (int)((w[j / 8] >> (4 * (j % 8))) & 0xf) - 8;
            out[j] = (float)q * bf16f(s[j / l->block]);
        }
        break; }
    default: k2c_quant_dequant_row(l, r, out); break;   /* GGUF block formats (quant_scalar.c) */
    }
}

/* ------------------------------------------------------------------ scalar row dots */
float k2c_scalar_row_dot(const k2c_linear *l, int r, const float *x) {
    int n = l->cols;
    size_t off = (size_t)r * (size_t)n;
    float acc = 0;
    switch (l->fmt) {
    case K2C_FMT_F32: return dot_f32_n((const float *)l->w + off, x, n);
    case K2C_FMT_BF16: return dot_bf16_n((const uint16_t *)l->w + off, x, n);
    case K2C_FMT_F16: return dot_f16_n((const uint16_t *)l->w + off, x, n);
    case K2C_FMT_FP8: { const uint8_t *w = (const uint8_t *)l->w + off;
        const float *s = l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols;
        for (int j0 = 0; j0 < n; j0 += l->block) {
            int j1 = j0 + l->block < n ? j0 + l->block : n;
            acc += dot_fp8_n(w + j0, x + j0, j1 - j0) * s[j0 / l->block];
        }
        break; }
    case K2C_FMT_INT4: { const uint32_t *w = (const uint32_t *)l->w + (size_t)r * (size_t)(n / 8);
        const uint16_t *s = l->scale_bf16 + (size_t)r * (size_t)l->scale_cols;
        for (int g = 0; g < n / l->block; g++) {
            float b[NACC] = {0};
            for (int j = g * l->block; j < (g + 1) * l->block; j++)
                b[j % NACC] += (float)((int)((w[j / 8] >> (4 * (j % 8))) & 0xf) - 8) * x[j];
            float t = 0;
            for (int k = 0; k < NACC; k++) t += b[k];
            acc += t * bf16f(s[g]);
        }
        break; }
    default: return k2c_quant_dot_row(l, r, x);          /* GGUF block formats (quant_scalar.c) */
    }
    return acc;
}

static float dot_f32(const float *a, const float *b, int n) { return dot_f32_n(a, b, n); }

/* GGUF block formats on quantized activations: int8 products in plain C (the vectorizer widens them). */
static void qd_isum16(const int8_t *w, const int8_t *q, int n, int32_t *out) {
    for (int g = 0; g < n / 16; g++) {
        int32_t s = 0;
        for (int k = 0; k < 16; k++) s += (int32_t)w[16 * g + k] * (int32_t)q[16 * g + k];
        out[g] = s;
    }
}
#define QD_ATTR
#include "kernels/quant_dot.h"

const k2c_kernels k2c_kernels_scalar = {
    .name = "scalar",
    .dot_f32 = dot_f32,         /* every other entry NULL: k2c_row_dot / k2c_row_dequant come here */
    .dot_q8 = qd_dot_q8,
    .gemm_tile = NULL,          /* OpenBLAS sgemm on dequantized tiles */
    .gemm_tile_bf16 = NULL,
};
