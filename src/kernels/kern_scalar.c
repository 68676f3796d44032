/* Portable kernels: plain C that any CPU runs, and the reference the ISA files are tested against. Every
 * stored format is dequantized element by element; FP8 and INT4 sum each block or group first and scale once,
 * as the ISA kernels do. */
#include "kernels/kernels.h"

#include <string.h>

#define fp8_lut k2c_fp8_lut

/* ------------------------------------------------------------------ dequantization (reference path) */
static void dequant_row(const k2c_linear *l, int r, float *out) {
    int n = l->cols;
    size_t off = (size_t)r * (size_t)n;
    switch (l->fmt) {
    case K2C_FMT_F32: memcpy(out, (const float *)l->w + off, (size_t)n * 4); break;
    case K2C_FMT_BF16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) out[j] = k2c_bf16_to_f32(w[j]);
        break; }
    case K2C_FMT_F16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) out[j] = k2c_f16_to_f32(w[j]);
        break; }
    case K2C_FMT_FP8: { const uint8_t *w = (const uint8_t *)l->w + off;
        const float *s = l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols;
        for (int j = 0; j < n; j++) out[j] = fp8_lut[w[j]] * s[j / l->block];
        break; }
    case K2C_FMT_INT4: { const uint32_t *w = (const uint32_t *)l->w + (size_t)r * (size_t)(n / 8);
        const uint16_t *s = l->scale_bf16 + (size_t)r * (size_t)l->scale_cols;
        for (int j = 0; j < n; j++) {
            int q = (int)((w[j / 8] >> (4 * (j % 8))) & 0xf) - 8;
            out[j] = (float)q * k2c_bf16_to_f32(s[j / l->block]);
        }
        break; }
    default: k2c_quant_dequant_row(l, r, out); break;   /* GGUF block formats (quant_scalar.c) */
    }
}

/* ------------------------------------------------------------------ scalar row dots */
static float dot_row(const k2c_linear *l, int r, const float *x) {
    int n = l->cols;
    size_t off = (size_t)r * (size_t)n;
    float acc = 0;
    switch (l->fmt) {
    case K2C_FMT_F32: { const float *w = (const float *)l->w + off;
        for (int j = 0; j < n; j++) acc += w[j] * x[j];
        break; }
    case K2C_FMT_BF16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) acc += k2c_bf16_to_f32(w[j]) * x[j];
        break; }
    case K2C_FMT_F16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) acc += k2c_f16_to_f32(w[j]) * x[j];
        break; }
    case K2C_FMT_FP8: { const uint8_t *w = (const uint8_t *)l->w + off;
        const float *s = l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols;
        for (int j0 = 0; j0 < n; j0 += l->block) {
            int j1 = j0 + l->block < n ? j0 + l->block : n;
            float b = 0;
            for (int j = j0; j < j1; j++) b += fp8_lut[w[j]] * x[j];
            acc += b * s[j0 / l->block];
        }
        break; }
    case K2C_FMT_INT4: { const uint32_t *w = (const uint32_t *)l->w + (size_t)r * (size_t)(n / 8);
        const uint16_t *s = l->scale_bf16 + (size_t)r * (size_t)l->scale_cols;
        for (int g = 0; g < n / l->block; g++) {
            float b = 0;
            for (int j = g * l->block; j < (g + 1) * l->block; j++)
                b += (float)((int)((w[j / 8] >> (4 * (j % 8))) & 0xf) - 8) * x[j];
            acc += b * k2c_bf16_to_f32(s[g]);
        }
        break; }
    default: return k2c_quant_dot_row(l, r, x);          /* GGUF block formats (quant_scalar.c) */
    }
    return acc;
}

static float dot_row_x(const k2c_linear *l, int r, const float *x, const float *xs) {
    (void)xs;
    return dot_row(l, r, x);
}

static float dot_f32(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

const k2c_kernels k2c_kernels_scalar = {
    .name = "scalar",
    .dot_row = dot_row_x,
    .int4_xs = 0,
    .dequant_row = dequant_row,
    .dot_f32 = dot_f32,
    .gemm_tile = NULL,          /* OpenBLAS sgemm on dequantized tiles */
    .gemm_tile_bf16 = NULL,
};
