/* fp32 GEMM for prompts: Y [T, R] = X [T, C] W^T, where W rows arrive as dequantized tiles.
 *
 * Why not only sgemm: OpenBLAS packs both operands on every call, and our weights must first be
 * dequantized into a buffer anyway; folding the two copies into one and running an AVX-512 micro-kernel
 * on the result beats dequant + sgemm here. The inputs are packed once per matmul in blocks of 32 tokens
 * laid out [C][32], so the micro-kernel computes 8 weight rows x 32 tokens with 16 accumulators: per
 * input column, 2 vector loads of X, 8 broadcasts of W and 16 FMAs (FMA-bound, not load-bound). */
#include "k2c.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define TB 32   /* tokens per packed block */
#define RB 8    /* weight rows per micro-kernel */

size_t k2c_gemm_packed_size(int T, int C) { return (size_t)((T + TB - 1) / TB) * TB * (size_t)C; }

/* Xp [ceil(T/32)][C][32], zero padded past T. */
void k2c_gemm_pack_x(const float *X, int T, int C, float *Xp) {
    int nb = (T + TB - 1) / TB;
    for (int b = 0; b < nb; b++) {
        float *dst = Xp + (size_t)b * C * TB;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < TB; i++) {
                int t = b * TB + i;
                dst[(size_t)c * TB + i] = t < T ? X[(size_t)t * C + c] : 0.0f;
            }
    }
}

size_t k2c_gemm_bf16_packed_size(int T, int C) { return (size_t)((T + TB - 1) / TB) * TB * (size_t)((C + 1) / 2); }

/* Xp [ceil(T/32)][ceil(C/2)][32] pairs, zero padded past T and past C. */
void k2c_gemm_pack_x_bf16(const float *X, int T, int C, uint32_t *Xp) {
    int nb = (T + TB - 1) / TB, P = (C + 1) / 2;
    for (int b = 0; b < nb; b++) {
        uint32_t *dst = Xp + (size_t)b * P * TB;
        for (int i = 0; i < TB; i++) {
            int t = b * TB + i;
            const float *x = X + (size_t)t * C;
            for (int p = 0; p < P; p++) {
                uint32_t lo = t < T ? k2c_f32_to_bf16(x[2 * p]) : 0;
                uint32_t hi = t < T && 2 * p + 1 < C ? k2c_f32_to_bf16(x[2 * p + 1]) : 0;
                dst[(size_t)p * TB + i] = lo | hi << 16;
            }
        }
    }
}

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,fma")))
/* The 16 accumulators must live in registers: without a full unroll of the row loop gcc -O2 keeps a[][] on
 * the stack and every multiply-add waits on a store and a reload (measured: 3x slower). */
#define UNROLL_RB _Pragma("GCC unroll 8")

/* dst[j][i] = 32-bit element j of row i, for 16 elements of 8 rows (rows ld bytes apart): the panel layout
 * of the micro-kernels, as an 8 x 16 transpose in registers. The elements are fp32 values, or pairs of
 * BF16 columns; a scalar loop doing this cost a fifth of a prompt GEMM. */
AVX512 static void pack_8x16(const void *w, size_t ld, uint32_t *dst) {
    __m512i v[RB], t[RB], u[RB];
    UNROLL_RB
    for (int i = 0; i < RB; i++) v[i] = _mm512_loadu_si512((const char *)w + i * ld);
    /* per 128-bit lane q (elements 4q..4q+3): t[2k] = rows 2k, 2k+1 of elements 4q, 4q+1; t[2k+1] of 4q+2, 4q+3 */
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]);
    }
    /* u[j] = rows 0-3 of element 4q+j, u[4+j] = rows 4-7 of element 4q+j */
    for (int h = 0; h < 2; h++) {
        __m512i *a = t + 4 * h, *o = u + 4 * h;
        o[0] = _mm512_unpacklo_epi64(a[0], a[2]);
        o[1] = _mm512_unpackhi_epi64(a[0], a[2]);
        o[2] = _mm512_unpacklo_epi64(a[1], a[3]);
        o[3] = _mm512_unpackhi_epi64(a[1], a[3]);
    }
    uint32_t tmp[RB][16];
    for (int i = 0; i < RB; i++) _mm512_storeu_si512(tmp[i], u[i]);
    for (int q = 0; q < 4; q++)
        for (int j = 0; j < 4; j++) {
            memcpy(dst + (4 * q + j) * RB, &tmp[j][4 * q], 16);
            memcpy(dst + (4 * q + j) * RB + 4, &tmp[4 + j][4 * q], 16);
        }
}

/* A panel of RB rows packed column-major ([C][RB]) times one packed block -> Y[t, r] for the block's
 * valid tokens. Packing the rows side by side keeps the 8 broadcasts of a column in one cache line;
 * read straight from the row-major tile they would sit 8 KB apart and fight over one L1 set. */
AVX512 static void kernel_8x32(const float *wp, int C, const float *xp, float *Y, int ldy, int ntok) {
    __m512 a[RB][2];
    UNROLL_RB
    for (int r = 0; r < RB; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int c = 0; c < C; c++) {
        __m512 x0 = _mm512_loadu_ps(xp + (size_t)c * TB), x1 = _mm512_loadu_ps(xp + (size_t)c * TB + 16);
        UNROLL_RB
        for (int r = 0; r < RB; r++) {
            __m512 wv = _mm512_set1_ps(wp[(size_t)c * RB + r]);
            a[r][0] = _mm512_fmadd_ps(wv, x0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(wv, x1, a[r][1]);
        }
    }
    float out[TB];
    UNROLL_RB
    for (int r = 0; r < RB; r++) {
        _mm512_storeu_ps(out, a[r][0]);
        _mm512_storeu_ps(out + 16, a[r][1]);
        for (int i = 0; i < ntok; i++) Y[(size_t)i * ldy + r] = out[i];
    }
}

/* The same for a last block of at most 16 tokens (an expert's tail of tokens): half the work of 8x32. */
AVX512 static void kernel_8x16(const float *wp, int C, const float *xp, float *Y, int ldy, int ntok) {
    __m512 a[RB];
    UNROLL_RB
    for (int r = 0; r < RB; r++) a[r] = _mm512_setzero_ps();
    for (int c = 0; c < C; c++) {
        __m512 x0 = _mm512_loadu_ps(xp + (size_t)c * TB);
        UNROLL_RB
        for (int r = 0; r < RB; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(wp[(size_t)c * RB + r]), x0, a[r]);
    }
    float out[16];
    UNROLL_RB
    for (int r = 0; r < RB; r++) {
        _mm512_storeu_ps(out, a[r]);
        for (int i = 0; i < ntok; i++) Y[(size_t)i * ldy + r] = out[i];
    }
}

AVX512 static void kernel_1x32(const float *w, int C, const float *xp, float *Y, int ldy, int ntok) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int c = 0; c < C; c++) {
        __m512 wv = _mm512_set1_ps(w[c]);
        a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xp + (size_t)c * TB), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xp + (size_t)c * TB + 16), a1);
    }
    float out[TB];
    _mm512_storeu_ps(out, a0);
    _mm512_storeu_ps(out + 16, a1);
    for (int i = 0; i < ntok; i++) Y[(size_t)i * ldy] = out[i];
}

/* Y[:, 0..nr) (row stride ldy) = packed X times the nr rows of w [nr, C]. */
void k2c_gemm_tile(const float *w, int nr, int C, const float *Xp, int T, float *Y, int ldy) {
    int nb = (T + TB - 1) / TB, full = nr / RB * RB;
    float *panel = malloc((size_t)C * RB * sizeof *panel);
    if (!panel) abort();   /* 8 x C floats */
    for (int r = 0; r < full; r += RB) {
        int c = 0;
        for (; c + 16 <= C; c += 16) pack_8x16(w + (size_t)r * C + c, (size_t)C * sizeof *w, (uint32_t *)panel + (size_t)c * RB);
        for (; c < C; c++)
            for (int i = 0; i < RB; i++) panel[(size_t)c * RB + i] = w[(size_t)(r + i) * C + c];
        for (int b = 0; b < nb; b++) {
            int ntok = T - b * TB < TB ? T - b * TB : TB;
            (ntok <= 16 ? kernel_8x16 : kernel_8x32)(panel, C, Xp + (size_t)b * C * TB, Y + (size_t)b * TB * ldy + r, ldy, ntok);
        }
    }
    for (int r = full; r < nr; r++)
        for (int b = 0; b < nb; b++) {
            int ntok = T - b * TB < TB ? T - b * TB : TB;
            kernel_1x32(w + (size_t)r * C, C, Xp + (size_t)b * C * TB, Y + (size_t)b * TB * ldy + r, ldy, ntok);
        }
    free(panel);
}

/* ---- BF16 x BF16 -> fp32 (AVX512-BF16 vdpbf16ps): twice the multiply-adds per instruction of fp32 FMA.
 * A 32-bit lane holds a pair of consecutive columns (c, c+1) as two bf16, so one vdpbf16ps adds
 * w[r][c] x[t][c] + w[r][c+1] x[t][c+1] into token t's accumulator; the kernel has the fp32 kernel's shape
 * over C/2 column pairs. Weight rows are read straight from the BF16 tensor, no dequantization. */
#define AVX512BF16 __attribute__((target("avx512f,fma,avx512bf16")))

AVX512BF16 static void kernel_bf16_8x32(const uint32_t *wp, int P, const uint32_t *xp, float *Y, int ldy, int ntok) {
    __m512 a[RB][2];
    UNROLL_RB
    for (int r = 0; r < RB; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < P; p++) {
        __m512bh x0 = (__m512bh)_mm512_loadu_si512(xp + (size_t)p * TB);
        __m512bh x1 = (__m512bh)_mm512_loadu_si512(xp + (size_t)p * TB + 16);
        UNROLL_RB
        for (int r = 0; r < RB; r++) {
            __m512bh wv = (__m512bh)_mm512_set1_epi32((int)wp[(size_t)p * RB + r]);
            a[r][0] = _mm512_dpbf16_ps(a[r][0], wv, x0);
            a[r][1] = _mm512_dpbf16_ps(a[r][1], wv, x1);
        }
    }
    float out[TB];
    UNROLL_RB
    for (int r = 0; r < RB; r++) {
        _mm512_storeu_ps(out, a[r][0]);
        _mm512_storeu_ps(out + 16, a[r][1]);
        for (int i = 0; i < ntok; i++) Y[(size_t)i * ldy + r] = out[i];
    }
}

/* The same for a last block of at most 16 tokens (an expert's tail of tokens): half the work of 8x32. */
AVX512BF16 static void kernel_bf16_8x16(const uint32_t *wp, int P, const uint32_t *xp, float *Y, int ldy, int ntok) {
    __m512 a[RB];
    UNROLL_RB
    for (int r = 0; r < RB; r++) a[r] = _mm512_setzero_ps();
    for (int p = 0; p < P; p++) {
        __m512bh x0 = (__m512bh)_mm512_loadu_si512(xp + (size_t)p * TB);
        UNROLL_RB
        for (int r = 0; r < RB; r++)
            a[r] = _mm512_dpbf16_ps(a[r], (__m512bh)_mm512_set1_epi32((int)wp[(size_t)p * RB + r]), x0);
    }
    float out[16];
    UNROLL_RB
    for (int r = 0; r < RB; r++) {
        _mm512_storeu_ps(out, a[r]);
        for (int i = 0; i < ntok; i++) Y[(size_t)i * ldy + r] = out[i];
    }
}

/* Y[:, 0..nr) = packed X times the nr BF16 rows of w (row stride ldw elements). */
AVX512BF16 void k2c_gemm_tile_bf16(const uint16_t *w, size_t ldw, int nr, int C, const uint32_t *Xp, int T, float *Y,
                                   int ldy) {
    int nb = (T + TB - 1) / TB, P = (C + 1) / 2;
    uint32_t *panel = malloc((size_t)P * RB * sizeof *panel);
    if (!panel) abort();   /* 8 x C bf16 */
    for (int r = 0; r < nr; r += RB) {
        int rows = nr - r < RB ? nr - r : RB, p = 0;
        if (rows == RB)   /* whole 16-pair chunks inside every row; the rest (and short tiles) one by one */
            for (; p + 16 <= C / 2; p += 16) pack_8x16(w + (size_t)r * ldw + 2 * p, ldw * 2, panel + (size_t)p * RB);
        for (; p < P; p++)
            for (int i = 0; i < RB; i++) {
                const uint16_t *row = w + (size_t)(r + (i < rows ? i : 0)) * ldw;
                uint32_t lo = i < rows ? row[2 * p] : 0, hi = i < rows && 2 * p + 1 < C ? row[2 * p + 1] : 0;
                panel[(size_t)p * RB + i] = lo | hi << 16;
            }
        for (int b = 0; b < nb; b++) {
            int ntok = T - b * TB < TB ? T - b * TB : TB;
            float *y = Y + (size_t)b * TB * ldy + r;
            void (*kernel)(const uint32_t *, int, const uint32_t *, float *, int, int) =
                ntok <= 16 ? kernel_bf16_8x16 : kernel_bf16_8x32;
            if (rows == RB) {
                kernel(panel, P, Xp + (size_t)b * P * TB, y, ldy, ntok);
            } else {            /* the last rows of a tile: compute 8, keep `rows` */
                float tmp[TB * RB];
                kernel(panel, P, Xp + (size_t)b * P * TB, tmp, RB, ntok);
                for (int i = 0; i < ntok; i++)
                    for (int j = 0; j < rows; j++) y[(size_t)i * ldy + j] = tmp[i * RB + j];
            }
        }
    }
    free(panel);
}
#else
void k2c_gemm_tile_bf16(const uint16_t *w, size_t ldw, int nr, int C, const uint32_t *Xp, int T, float *Y, int ldy) {
    int P = (C + 1) / 2;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < nr; r++) {
            const uint32_t *xp = Xp + (size_t)(t / TB) * P * TB + t % TB;
            float s = 0;
            for (int c = 0; c < C; c++)
                s += k2c_bf16_to_f32(w[(size_t)r * ldw + c]) * k2c_bf16_to_f32((uint16_t)(xp[(size_t)(c / 2) * TB] >> (16 * (c % 2))));
            Y[(size_t)t * ldy + r] = s;
        }
}

void k2c_gemm_tile(const float *w, int nr, int C, const float *Xp, int T, float *Y, int ldy) {
    for (int t = 0; t < T; t++)
        for (int r = 0; r < nr; r++) {
            const float *xp = Xp + (size_t)(t / TB) * C * TB + t % TB;
            float s = 0;
            for (int c = 0; c < C; c++) s += w[(size_t)r * C + c] * xp[(size_t)c * TB];
            Y[(size_t)t * ldy + r] = s;
        }
}
#endif
