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

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,fma")))

/* A panel of RB rows packed column-major ([C][RB]) times one packed block -> Y[t, r] for the block's
 * valid tokens. Packing the rows side by side keeps the 8 broadcasts of a column in one cache line;
 * read straight from the row-major tile they would sit 8 KB apart and fight over one L1 set. */
AVX512 static void kernel_8x32(const float *wp, int C, const float *xp, float *Y, int ldy, int ntok) {
    __m512 a[RB][2];
    for (int r = 0; r < RB; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int c = 0; c < C; c++) {
        __m512 x0 = _mm512_loadu_ps(xp + (size_t)c * TB), x1 = _mm512_loadu_ps(xp + (size_t)c * TB + 16);
        for (int r = 0; r < RB; r++) {
            __m512 wv = _mm512_set1_ps(wp[(size_t)c * RB + r]);
            a[r][0] = _mm512_fmadd_ps(wv, x0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(wv, x1, a[r][1]);
        }
    }
    float out[TB];
    for (int r = 0; r < RB; r++) {
        _mm512_storeu_ps(out, a[r][0]);
        _mm512_storeu_ps(out + 16, a[r][1]);
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
        for (int c = 0; c < C; c++)
            for (int i = 0; i < RB; i++) panel[(size_t)c * RB + i] = w[(size_t)(r + i) * C + c];
        for (int b = 0; b < nb; b++) {
            int ntok = T - b * TB < TB ? T - b * TB : TB;
            kernel_8x32(panel, C, Xp + (size_t)b * C * TB, Y + (size_t)b * TB * ldy + r, ldy, ntok);
        }
    }
    for (int r = full; r < nr; r++)
        for (int b = 0; b < nb; b++) {
            int ntok = T - b * TB < TB ? T - b * TB : TB;
            kernel_1x32(w + (size_t)r * C, C, Xp + (size_t)b * C * TB, Y + (size_t)b * TB * ldy + r, ldy, ntok);
        }
    free(panel);
}
#else
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
