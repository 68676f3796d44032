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
static float dot_bf16_n(const uint16_t *w, const float *x, int n) { DOT_BODY(k2c_bf16_to_f32) }
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
        for (int j = 0; j < n; j++) out[j] = k2c_bf16_to_f32(w[j]);
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
            out[j] = (float)q * k2c_bf16_to_f32(s[j / l->block]);
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
            acc += t * k2c_bf16_to_f32(s[g]);
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

/* The int8 prompt GEMM's micro-kernel in plain C: 4 rows x 16 tokens, integer sums per scale group. */
#define QG_NT 16
static void qg_kernel(const int8_t *w, const float *F, const float *M, const k2c_q8p *x, int b,
                      int ntok, float *Y, int ldy, int nrows, int fl, int ext) {
    int ng = x->C / x->sg, kg = x->sg / 4, has_min = fl & QG_MIN;
    const int8_t *xq = x->q + (size_t)b * K2C_Q8P_TB * (size_t)x->C;
    const float *d = x->d + (size_t)b * (size_t)ng * K2C_Q8P_TB, *s = x->s + (size_t)b * (size_t)ng * K2C_Q8P_TB;
    float acc[4][K2C_Q8P_TB] = {{0}};
    (void)ext;
    for (int g = 0; g < ng; g++) {
        int32_t ia[4][K2C_Q8P_TB] = {{0}};
        for (int ks = g * kg; ks < (g + 1) * kg; ks++) {
            const int8_t *xk = xq + (size_t)ks * 4 * K2C_Q8P_TB, *wk = w + (size_t)ks * 16;
            for (int r = 0; r < 4; r++)
                for (int t = 0; t < K2C_Q8P_TB; t++)
                    for (int e = 0; e < 4; e++) ia[r][t] += (int32_t)wk[4 * r + e] * (int32_t)xk[4 * t + e];
        }
        const float *dg = d + (size_t)g * K2C_Q8P_TB, *sgp = s + (size_t)g * K2C_Q8P_TB;
        for (int r = 0; r < 4; r++)
            for (int t = 0; t < K2C_Q8P_TB; t++) {
                acc[r][t] += F[4 * g + r] * dg[t] * (float)ia[r][t];
                if (has_min) acc[r][t] -= M[4 * g + r] * sgp[t];
            }
    }
    for (int t = 0; t < ntok; t++)
        for (int r = 0; r < nrows; r++) Y[(size_t)t * ldy + r] = acc[r][t];
}
#include "kernels/int4_q8.h"      /* INT4 on the int8 paths (before quant_gemm.h, which unpacks with it) */
#include "kernels/quant_gemm.h"

const k2c_kernels k2c_kernels_scalar = {
    .name = "scalar",
    .dot_f32 = dot_f32,         /* every other entry NULL: k2c_row_dot / k2c_row_dequant come here */
    .dot_q8 = qd_dot_q8,
    .dot_q8_rows = qd_dot_q8_rows,
    .dot_int4_q8 = qi_dot_int4_q8,
    .int4_q8_eo = QI_EO,
    .gemm_q8 = qg_gemm_q8,
    .gemm_tile = NULL,          /* OpenBLAS sgemm on dequantized tiles */
    .gemm_tile_bf16 = NULL,
};
