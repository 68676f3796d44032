/* AVX-512 kernels (F, BW, DQ, VL, FMA; AVX512-BF16 for the BF16 prompt GEMM): decode row dots on every
 * stored format, row dequantization for prompts, and the prompt GEMM micro-kernels. Compiled with target
 * attributes, so the file builds with any x86-64 compiler flags; linear.c calls it only where the CPU has the
 * instructions (k2c_kctx_init checks).
 *
 * Prompt GEMM: Y [T, R] = X [T, C] W^T, where W rows arrive as dequantized tiles.
 *
 * Why not only sgemm: OpenBLAS packs both operands on every call, and our weights must first be
 * dequantized into a buffer anyway; folding the two copies into one and running an AVX-512 micro-kernel
 * on the result beats dequant + sgemm here. The inputs are packed once per matmul in blocks of 32 tokens
 * laid out [C][32], so the micro-kernel computes 8 weight rows x 32 tokens with 16 accumulators: per
 * input column, 2 vector loads of X, 8 broadcasts of W and 16 FMAs (FMA-bound, not load-bound). */
#include "kernels/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define TB K2C_GEMM_TB   /* tokens per packed block */
#define RB K2C_GEMM_RB   /* weight rows per micro-kernel */
#define fp8_lut k2c_fp8_lut
/* ------------------------------------------------------------------ AVX-512 row dots */
#ifndef K2C_PF_DIST
#define K2C_PF_DIST 2048
#endif
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

AVX512 static inline float tail_bf16(const uint16_t *w, const float *x, int j, int n) {
    float a = 0;
    for (; j < n; j++) a += k2c_bf16_to_f32(w[j]) * x[j];
    return a;
}

AVX512 static float dot_bf16_avx512(const uint16_t *w, const float *x, int n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 64 <= n; j += 64) {
        /* The hardware prefetcher stops at 4 KB page boundaries (one BF16 row of 2048 is one page):
         * fetch the next rows ahead ourselves. */
        _mm_prefetch((const char *)(w + j) + K2C_PF_DIST, _MM_HINT_T0);
        _mm_prefetch((const char *)(w + j) + K2C_PF_DIST + 64, _MM_HINT_T0);
        __m512i w0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j)));
        __m512i w1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j + 16)));
        __m512i w2 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j + 32)));
        __m512i w3 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j + 48)));
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), _mm512_loadu_ps(x + j), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w1, 16)), _mm512_loadu_ps(x + j + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w2, 16)), _mm512_loadu_ps(x + j + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w3, 16)), _mm512_loadu_ps(x + j + 48), a3);
    }
    for (; j + 16 <= n; j += 16) {
        __m512i w0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j)));
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), _mm512_loadu_ps(x + j), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) + tail_bf16(w, x, j, n);
}

/* The same row against xs, x reordered per 32 elements into the 16 even then the 16 odd ones (the driver does
 * it once per matvec; n a multiple of 32): a 32-bit lane of the weights then holds one even and one odd weight,
 * and a shift and a mask make them fp32 from one 512-bit load. Half the loads and no widening shuffles: on
 * Zen 4, which splits 512-bit shuffles in two, this (with k2c_pf_bf16 = 0) decodes the Moonlight-shaped BF16 model 1.45x faster than dot_bf16_avx512. */
AVX512 static float dot_bf16_xs_avx512(const uint16_t *w, const float *xs, int n) {
    const int pf = k2c_pf_bf16;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    int j = 0;
    for (; j + 64 <= n; j += 64) {
        _mm_prefetch((const char *)(w + j) + pf, _MM_HINT_T0);
        _mm_prefetch((const char *)(w + j) + pf + 64, _MM_HINT_T0);
        __m512i v0 = _mm512_loadu_si512((const void *)(w + j)), v1 = _mm512_loadu_si512((const void *)(w + j + 32));
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xs + j), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)), _mm512_loadu_ps(xs + j + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_loadu_ps(xs + j + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, hi)), _mm512_loadu_ps(xs + j + 48), a3);
    }
    if (j < n) {        /* the last 32 */
        __m512i v0 = _mm512_loadu_si512((const void *)(w + j));
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xs + j), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)), _mm512_loadu_ps(xs + j + 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

AVX512 static float dot_f32_avx512(const float *w, const float *x, int n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
    }
    float a = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; j < n; j++) a += w[j] * x[j];
    return a;
}

/* e4m3 -> f32 for 16 bytes: move sign to bit 31 and exponent+mantissa to bits 20..26, which reads as an
 * fp32 whose exponent is 120 too small (normals and subnormals alike), then multiply by 2^120. */
AVX512 static inline __m512 fp8x16_to_f32(__m128i b) {
    __m512i v = _mm512_cvtepu8_epi32(b);
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x80)), 24);
    __m512i em = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x7f)), 20);
    return _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(sign, em)), _mm512_set1_ps(0x1p120f));
}

AVX512 static float dot_fp8_avx512(const uint8_t *w, const float *x, int n, const float *scale, int block) {
    float acc = 0;
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (; j + 32 <= j1; j += 32) {
            if ((j & 63) == 0) _mm_prefetch((const char *)(w + j) + K2C_PF_DIST, _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(fp8x16_to_f32(_mm_loadu_si128((const __m128i *)(w + j))), _mm512_loadu_ps(x + j), a0);
            a1 = _mm512_fmadd_ps(fp8x16_to_f32(_mm_loadu_si128((const __m128i *)(w + j + 16))), _mm512_loadu_ps(x + j + 16), a1);
        }
        float b = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; j < j1; j++) b += fp8_lut[w[j]] * x[j];
        acc += b * scale[j0 / block];
    }
    return acc;
}

/* INT4: each byte holds elements 2k (low nibble) and 2k+1 (high nibble). xs is x split per group into
 * its even elements then its odd elements (done once per matvec), so 16 bytes -> two FMAs. */
AVX512 static float dot_int4_avx512(const uint32_t *w, const float *xs, int n, const uint16_t *scale, int group) {
    const uint8_t *b = (const uint8_t *)w;
    __m512 acc = _mm512_setzero_ps();
    const __m512i mask = _mm512_set1_epi32(0xf), eight = _mm512_set1_epi32(8);
    for (int g = 0; g < n / group; g++) {
        __m512 a = _mm512_setzero_ps();
        for (int j = g * group; j < (g + 1) * group; j += 32) {
            if ((j & 127) == 0) _mm_prefetch((const char *)(b + j / 2) + K2C_PF_DIST, _MM_HINT_T0);
            __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + j / 2)));
            __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, mask), eight));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight));
            a = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xs + j), a);
            a = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xs + j + 16), a);
        }
        acc = _mm512_fmadd_ps(a, _mm512_set1_ps(k2c_bf16_to_f32(scale[g])), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* SIMD dequantization of one row (prefill tiles). */
AVX512 static void dequant_row_bf16_avx512(const uint16_t *w, int n, float *out) {
    int j = 0;
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_ps(out + j, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j))), 16)));
    for (; j < n; j++) out[j] = k2c_bf16_to_f32(w[j]);
}
AVX512 static void dequant_row_fp8_avx512(const uint8_t *w, int n, const float *scale, int block, float *out) {
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        __m512 sc = _mm512_set1_ps(scale[j0 / block]);
        for (; j + 16 <= j1; j += 16)
            _mm512_storeu_ps(out + j, _mm512_mul_ps(fp8x16_to_f32(_mm_loadu_si128((const __m128i *)(w + j))), sc));
        for (; j < j1; j++) out[j] = fp8_lut[w[j]] * scale[j0 / block];
    }
}

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

/* Y[:, 0..nr) (row stride ldy) = packed X times the nr rows of w [nr, C]; panel: RB x C floats. */
static void gemm_tile(const float *w, int nr, int C, const float *Xp, int T, float *Y, int ldy, float *panel) {
    int nb = (T + TB - 1) / TB, full = nr / RB * RB;
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
AVX512BF16 static void gemm_tile_bf16(const uint16_t *w, size_t ldw, int nr, int C, const uint32_t *Xp, int T,
                                      float *Y, int ldy, uint32_t *panel) {
    int nb = (T + TB - 1) / TB, P = (C + 1) / 2;
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
}

/* ---- BF16 x BF16 -> fp32 on AMX (Sapphire Rapids and later): one TDPBF16PS multiplies a 16 x 32 tile of
 * weights by a 32 x 16 tile of inputs into 16 x 16 fp32 sums, 8192 multiply-adds, sixteen times what one
 * vdpbf16ps does. The packed inputs are already in the layout AMX wants for its second operand: a row of B
 * is one column pair p holding 16 tokens' (x[2p], x[2p+1]) words, so a B tile is 16 pairs of 16 tokens, read
 * with a stride of one packed row (32 tokens). The weights need no packing either: a tile of A is 16 stored
 * BF16 rows of 32 columns, repacked per 32 rows so that its loads are contiguous (panel: 32 x C BF16). Tiles: 0-3 the 2 x 2 sums (32 rows x 32 tokens),
 * 4-5 the weights, 6-7 the inputs. The result is Y^T (rows by tokens), written to Y through a small buffer.
 * Rows that do not fill 16 go to the AVX512-BF16 kernel; C must be a multiple of 32 (the caller checks). */
#define AMXBF16 __attribute__((target("amx-tile,amx-bf16,avx512f,fma,avx512bf16")))
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

AMXBF16 static void amx_store(float *Y, int ldy, int ntok, const float *buf) {
    /* buf [16 rows][16 tokens] -> Y[t][r] */
    for (int i = 0; i < ntok; i++)
        for (int j = 0; j < 16; j++) Y[(size_t)i * ldy + j] = buf[j * 16 + i];
}

AMXBF16 static void gemm_tile_bf16_amx(const uint16_t *w, size_t ldw, int nr, int C, const uint32_t *Xp, int T,
                                       float *Y, int ldy, uint32_t *panel) {
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) { cfg.colsb[i] = 64; cfg.rows[i] = 16; }
    _tile_loadconfig(&cfg);
    int nb = (T + TB - 1) / TB, P = C / 2, full = nr & ~15;
    size_t sx = TB * 4;
    float buf[256] __attribute__((aligned(64)));
    uint16_t *pw = (uint16_t *)panel;
    for (int r = 0; r < full; r += 32) {
        int two = r + 32 <= full, nrow = two ? 32 : 16;
        /* the 16 or 32 rows repacked per 32 columns [C/32][nrow][32], so that a k step's A tiles are one
         * contiguous 1-2 KB (read from the tensor they were 32 rows of 64 bytes 2*ldw apart: too many streams
         * for the prefetchers) */
        for (int k = 0; k < C; k += 32)
            for (int i = 0; i < nrow; i++)
                memcpy(pw + ((size_t)(k / 32) * nrow + i) * 32, w + (size_t)(r + i) * ldw + k, 64);
        const uint16_t *w0 = pw, *w1 = pw + 16 * 32;
        size_t sw = 64, kstep = (size_t)nrow * 32;
        for (int b = 0; b < nb; b++) {
            int ntok = T - b * TB < TB ? T - b * TB : TB;
            const uint32_t *xb = Xp + (size_t)b * P * TB;
            float *y = Y + (size_t)b * TB * ldy + r;
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            if (two && ntok > 16) {
                for (int k = 0; k < C; k += 32) {
                    _tile_loadd(4, w0 + (size_t)(k / 32) * kstep, sw);
                    _tile_loadd(6, xb + (size_t)(k / 2) * TB, sx);
                    _tile_loadd(5, w1 + (size_t)(k / 32) * kstep, sw);
                    _tile_loadd(7, xb + (size_t)(k / 2) * TB + 16, sx);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
            } else if (two) {
                for (int k = 0; k < C; k += 32) {
                    _tile_loadd(4, w0 + (size_t)(k / 32) * kstep, sw);
                    _tile_loadd(6, xb + (size_t)(k / 2) * TB, sx);
                    _tile_loadd(5, w1 + (size_t)(k / 32) * kstep, sw);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(2, 5, 6);
                }
            } else {
                for (int k = 0; k < C; k += 32) {
                    _tile_loadd(4, w0 + (size_t)(k / 32) * kstep, sw);
                    _tile_loadd(6, xb + (size_t)(k / 2) * TB, sx);
                    _tile_loadd(7, xb + (size_t)(k / 2) * TB + 16, sx);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                }
            }
            int n0 = ntok < 16 ? ntok : 16, n1 = ntok - n0;
            _tile_stored(0, buf, 64); amx_store(y, ldy, n0, buf);
            if (n1 > 0) { _tile_stored(1, buf, 64); amx_store(y + (size_t)16 * ldy, ldy, n1, buf); }
            if (two) {
                _tile_stored(2, buf, 64); amx_store(y + 16, ldy, n0, buf);
                if (n1 > 0) { _tile_stored(3, buf, 64); amx_store(y + (size_t)16 * ldy + 16, ldy, n1, buf); }
            }
        }
    }
    _tile_release();
    if (full < nr) gemm_tile_bf16(w + (size_t)full * ldw, ldw, nr - full, C, Xp, T, Y + full, ldy, panel);
}

/* GGUF block formats on quantized activations. As the AVX2 file, but 64 bytes at a time: the sign of w moves
 * onto q under a mask (AVX-512 has no vpsignb), and each 128-bit lane of the products is one 16-element group,
 * so four vectors reduce with two rounds of unpack-and-add and one permute. */
AVX512 static inline __m512i isum64(const int8_t *w, const int8_t *q) {
    __m512i a = _mm512_loadu_si512(w), b = _mm512_loadu_si512(q);
    __m512i bs = _mm512_mask_sub_epi8(b, _mm512_movepi8_mask(a), _mm512_setzero_si512(), b);
    __m512i p = _mm512_maddubs_epi16(_mm512_abs_epi8(a), bs);
    return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
}

AVX512 static void qd_isum16(const int8_t *w, const int8_t *q, int n, int32_t *out) {
    int j = 0;
    for (; j + 256 <= n; j += 256, out += 16) {
        __m512i p0 = isum64(w + j, q + j), p1 = isum64(w + j + 64, q + j + 64);
        __m512i p2 = isum64(w + j + 128, q + j + 128), p3 = isum64(w + j + 192, q + j + 192);
        __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(p0, p1), _mm512_unpackhi_epi32(p0, p1));
        __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(p2, p3), _mm512_unpackhi_epi32(p2, p3));
        __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
        /* u[4L + k] is group L of p_k, i.e. group 4k + L */
        u = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), u);
        _mm512_storeu_si512(out, u);
    }
    for (; j < n; j += 32, out += 2) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(w + j)), b = _mm256_loadu_si256((const __m256i *)(q + j));
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)),
                                      _mm256_set1_epi16(1));
        __m128i s = _mm_hadd_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        s = _mm_hadd_epi32(s, s);
        out[0] = _mm_cvtsi128_si32(s);
        out[1] = _mm_extract_epi32(s, 1);
    }
}
#define QD512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")))
#define QD_ATTR QD512
#define QD_X86_512
/* the decode kernels' VNNI: the EVEX AVX512-VNNI form (Ice Lake, Zen 4 and later) */
#define QD_DPBUSD "vpdpbusd"
#define QD_EXT() __builtin_cpu_supports("avx512vnni")
#include "kernels/quant_dot_x86.h"
#include "kernels/quant_dot.h"

/* The int8 prompt GEMM's micro-kernel: 4 weight rows x 48 tokens (three blocks of 16, one int32 lane each), per
 * k-step one 32-bit broadcast of a row's 4 weights against the tokens' 4 bytes. With VNNI, vpdpbusd takes the
 * weights unsigned: w + 128, its extra 128 F sum(x) in the quad's min term (QG_OFF in quant_gemm.h). Without,
 * the sign trick of the decode path (|w| times q with w's sign), pairs added by vpmaddwd. Integer sums per
 * scale group, then scaled into float accumulators. */
#define VNNI512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c")))
#define QG_NT 48
/* vpdpbusd in place: GCC 12 copies each accumulator of the intrinsic to a new register and back, every k-step */
VNNI512 static inline __m512i qg_dpbusd512(__m512i acc, __m512i u8, __m512i s8) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
    return acc;
}
#define QG512_DOT_VNNI(acc, xv, wv) qg_dpbusd512(acc, wv, xv)     /* weights unsigned (w + 128), x signed */
#define QG512_DOT_BW(acc, xv, wv)                                                                                   \
    _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(wv),                                \
                     _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), _mm512_setzero_si512(), xv)), ones))
/* the kernel body, 4 rows x 16 NB tokens (NB = 1, 2, 3: the statements on blocks past NB are compiled away), with
 * named accumulators (GCC copies arrays of vectors around the loop) */
#define QG512_BODY(NB, DOT) \
    int ng = x->C / x->sg, kg = x->sg / 4, has_min = fl & QG_MIN;                                                      \
    int gs = fl & QG_SB ? 256 / x->sg : fl & QG_PAIR ? 2 : 1;     /* scale groups per float step */                    \
    size_t xstride = (size_t)K2C_Q8P_TB * (size_t)x->C, sstride = (size_t)ng * K2C_Q8P_TB;                             \
    const int8_t *xq = x->q + (size_t)b * xstride;                                                                     \
    const float *d = x->d + (size_t)b * sstride, *s = x->s + (size_t)b * sstride;                                      \
    const __m512i ones = _mm512_set1_epi16(1);                                                                         \
    (void)ones; (void)xstride;                                                                                \
    __m512 f00 = _mm512_setzero_ps(), f01 = _mm512_setzero_ps(), f02 = _mm512_setzero_ps();                            \
    __m512 f10 = _mm512_setzero_ps(), f11 = _mm512_setzero_ps(), f12 = _mm512_setzero_ps();                            \
    __m512 f20 = _mm512_setzero_ps(), f21 = _mm512_setzero_ps(), f22 = _mm512_setzero_ps();                            \
    __m512 f30 = _mm512_setzero_ps(), f31 = _mm512_setzero_ps(), f32 = _mm512_setzero_ps();                            \
    for (int g = 0; g < ng; g += gs) {                                                                                 \
        __m512i i00 = _mm512_setzero_si512(), i01 = i00, i02 = i00, i10 = i00, i11 = i00, i12 = i00;                   \
        __m512i i20 = i00, i21 = i00, i22 = i00, i30 = i00, i31 = i00, i32 = i00;                                      \
        const int8_t *xk = xq + (size_t)g * kg * 64, *wk = w + (size_t)g * kg * 16;                                    \
        for (int ks = 0; ks < kg * gs; ks++, xk += 64, wk += 16) {                                                     \
            __m512i x0 = _mm512_loadu_si512(xk), x1 = x0, x2 = x0;                                                     \
            if (NB > 1) x1 = _mm512_loadu_si512(xk + xstride);                                                         \
            if (NB > 2) x2 = _mm512_loadu_si512(xk + 2 * xstride);                                                     \
            { int32_t w4; memcpy(&w4, wk + 0, 4); __m512i wv = _mm512_set1_epi32(w4);                                  \
              i00 = DOT(i00, x0, wv); if (NB > 1) i01 = DOT(i01, x1, wv); if (NB > 2) i02 = DOT(i02, x2, wv); }        \
            { int32_t w4; memcpy(&w4, wk + 4, 4); __m512i wv = _mm512_set1_epi32(w4);                                  \
              i10 = DOT(i10, x0, wv); if (NB > 1) i11 = DOT(i11, x1, wv); if (NB > 2) i12 = DOT(i12, x2, wv); }        \
            { int32_t w4; memcpy(&w4, wk + 8, 4); __m512i wv = _mm512_set1_epi32(w4);                                  \
              i20 = DOT(i20, x0, wv); if (NB > 1) i21 = DOT(i21, x1, wv); if (NB > 2) i22 = DOT(i22, x2, wv); }        \
            { int32_t w4; memcpy(&w4, wk + 12, 4); __m512i wv = _mm512_set1_epi32(w4);                                 \
              i30 = DOT(i30, x0, wv); if (NB > 1) i31 = DOT(i31, x1, wv); if (NB > 2) i32 = DOT(i32, x2, wv); }        \
        }                                                                                                              \
        __m512 d0 = _mm512_loadu_ps(d + (size_t)g * 16), d1 = d0, d2 = d0;                                             \
        if (NB > 1) d1 = _mm512_loadu_ps(d + sstride + (size_t)g * 16);                                                \
        if (NB > 2) d2 = _mm512_loadu_ps(d + 2 * sstride + (size_t)g * 16);                                            \
        { __m512 fr = _mm512_set1_ps(F[4 * g + 0]);                                                                    \
          f00 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i00), _mm512_mul_ps(d0, fr), f00);                                  \
          if (NB > 1) { f01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i01), _mm512_mul_ps(d1, fr), f01); }                  \
          if (NB > 2) { f02 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i02), _mm512_mul_ps(d2, fr), f02); }                  \
        }                                                                                                              \
        { __m512 fr = _mm512_set1_ps(F[4 * g + 1]);                                                                    \
          f10 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i10), _mm512_mul_ps(d0, fr), f10);                                  \
          if (NB > 1) { f11 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i11), _mm512_mul_ps(d1, fr), f11); }                  \
          if (NB > 2) { f12 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i12), _mm512_mul_ps(d2, fr), f12); }                  \
        }                                                                                                              \
        { __m512 fr = _mm512_set1_ps(F[4 * g + 2]);                                                                    \
          f20 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i20), _mm512_mul_ps(d0, fr), f20);                                  \
          if (NB > 1) { f21 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i21), _mm512_mul_ps(d1, fr), f21); }                  \
          if (NB > 2) { f22 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i22), _mm512_mul_ps(d2, fr), f22); }                  \
        }                                                                                                              \
        { __m512 fr = _mm512_set1_ps(F[4 * g + 3]);                                                                    \
          f30 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i30), _mm512_mul_ps(d0, fr), f30);                                  \
          if (NB > 1) { f31 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i31), _mm512_mul_ps(d1, fr), f31); }                  \
          if (NB > 2) { f32 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i32), _mm512_mul_ps(d2, fr), f32); }                  \
        }                                                                                                              \
        for (int h = g; has_min && h < g + gs; h++) {                                                                  \
            __m512 s0 = _mm512_loadu_ps(s + (size_t)h * 16), s1 = s0, s2 = s0;                                         \
            if (NB > 1) s1 = _mm512_loadu_ps(s + sstride + (size_t)h * 16);                                            \
            if (NB > 2) s2 = _mm512_loadu_ps(s + 2 * sstride + (size_t)h * 16);                                        \
            { __m512 mr = _mm512_set1_ps(M[4 * h + 0]);                                                                \
              f00 = _mm512_fnmadd_ps(mr, s0, f00); if (NB > 1) f01 = _mm512_fnmadd_ps(mr, s1, f01); if (NB > 2) f02 = _mm512_fnmadd_ps(mr, s2, f02); } \
            { __m512 mr = _mm512_set1_ps(M[4 * h + 1]);                                                                \
              f10 = _mm512_fnmadd_ps(mr, s0, f10); if (NB > 1) f11 = _mm512_fnmadd_ps(mr, s1, f11); if (NB > 2) f12 = _mm512_fnmadd_ps(mr, s2, f12); } \
            { __m512 mr = _mm512_set1_ps(M[4 * h + 2]);                                                                \
              f20 = _mm512_fnmadd_ps(mr, s0, f20); if (NB > 1) f21 = _mm512_fnmadd_ps(mr, s1, f21); if (NB > 2) f22 = _mm512_fnmadd_ps(mr, s2, f22); } \
            { __m512 mr = _mm512_set1_ps(M[4 * h + 3]);                                                                \
              f30 = _mm512_fnmadd_ps(mr, s0, f30); if (NB > 1) f31 = _mm512_fnmadd_ps(mr, s1, f31); if (NB > 2) f32 = _mm512_fnmadd_ps(mr, s2, f32); } \
        }                                                                                                              \
    }                                                                                                                  \
    float out[4][48];                                                                                                  \
    _mm512_storeu_ps(out[0], f00); if (NB > 1) _mm512_storeu_ps(out[0] + 16, f01); if (NB > 2) _mm512_storeu_ps(out[0] + 32, f02); \
    _mm512_storeu_ps(out[1], f10); if (NB > 1) _mm512_storeu_ps(out[1] + 16, f11); if (NB > 2) _mm512_storeu_ps(out[1] + 32, f12); \
    _mm512_storeu_ps(out[2], f20); if (NB > 1) _mm512_storeu_ps(out[2] + 16, f21); if (NB > 2) _mm512_storeu_ps(out[2] + 32, f22); \
    _mm512_storeu_ps(out[3], f30); if (NB > 1) _mm512_storeu_ps(out[3] + 16, f31); if (NB > 2) _mm512_storeu_ps(out[3] + 32, f32); \
    for (int t = 0; t < ntok; t++)                                                                                     \
        for (int r = 0; r < nrows; r++) Y[(size_t)t * ldy + r] = out[r][t];

#define QG512_ARGS const int8_t *w, const float *F, const float *M, const k2c_q8p *x, int b, int ntok, \
                   float *Y, int ldy, int nrows, int fl
VNNI512 static void qg_k512_v3(QG512_ARGS) { QG512_BODY(3, QG512_DOT_VNNI) }
VNNI512 static void qg_k512_v2(QG512_ARGS) { QG512_BODY(2, QG512_DOT_VNNI) }
VNNI512 static void qg_k512_v1(QG512_ARGS) { QG512_BODY(1, QG512_DOT_VNNI) }
/* without VNNI (Skylake-X, Cascade Lake: AVX-512 BW only) */
QD512 static void qg_k512_b3(QG512_ARGS) { QG512_BODY(3, QG512_DOT_BW) }
QD512 static void qg_k512_b2(QG512_ARGS) { QG512_BODY(2, QG512_DOT_BW) }
QD512 static void qg_k512_b1(QG512_ARGS) { QG512_BODY(1, QG512_DOT_BW) }
/* ext: VNNI where the CPU has it (0: the BW kernel, which the tests check on a VNNI CPU too) */
#define QG_OFF(ext, f) ((ext) && __builtin_cpu_supports("avx512vnni") ? 128 : -1)
QD512 static void qg_kernel(QG512_ARGS, int ext) {
    if (ext && __builtin_cpu_supports("avx512vnni"))
        (ntok > 32 ? qg_k512_v3 : ntok > 16 ? qg_k512_v2 : qg_k512_v1)(w, F, M, x, b, ntok, Y, ldy, nrows, fl);
    else (ntok > 32 ? qg_k512_b3 : ntok > 16 ? qg_k512_b2 : qg_k512_b1)(w, F, M, x, b, ntok, Y, ldy, nrows, fl);
}
#define QI_AVX512
#include "kernels/int4_q8.h"      /* INT4 on the int8 paths (before quant_gemm.h, which unpacks with it) */
#include "kernels/quant_gemm.h"

const k2c_kernels k2c_kernels_avx512 = {
    .name = "avx512",
    .dot_f32 = dot_f32_avx512,
    .dot_bf16 = dot_bf16_avx512,
    .dot_bf16_xs = dot_bf16_xs_avx512,
    .dot_f16 = NULL,            /* the AVX2 table's F16C kernel would do; F16 checkpoints are rare */
    .dot_fp8 = dot_fp8_avx512,
    .dot_int4 = dot_int4_avx512,
    .dot_q8 = qd_dot_q8,
    .dot_q8_rows = qd_dot_q8_rows,
    .dot_q8_base = qd_dot_q8_base,
    .dot_int4_q8 = qi_dot_int4_q8,
    .int4_q8_eo = QI_EO,
    .gemm_q8 = qg_gemm_q8,
    .cvt_bf16 = dequant_row_bf16_avx512,
    .cvt_f16 = NULL,
    .cvt_fp8 = dequant_row_fp8_avx512,
    .gemm_tile = gemm_tile,
    .gemm_tile_bf16 = gemm_tile_bf16,
    .gemm_tile_bf16_amx = gemm_tile_bf16_amx,
};
#endif
