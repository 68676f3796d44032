/* AVX2 + FMA + F16C kernels: the decode row dots on every stored format, the row dequantization and the fp32
 * GEMM tile of prompts, and the int8 prompt GEMM of the GGUF formats (AVX-VNNI where present). This is the path of every x86 CPU without AVX-512 (AMD Zen 2 / Zen 3, Intel
 * desktop and laptop parts since Alder Lake). Compiled with target attributes, so the file builds under any
 * x86-64 flags; k2c_kctx_init picks it only where the CPU has the instructions.
 *
 * Decode is bound by memory bandwidth, so each kernel keeps four independent accumulators (eight lanes each)
 * to hide the FMA latency, converts the stored format in registers (no table, no function call per weight)
 * and prefetches ahead across 4 KB pages, where the hardware prefetcher stops. */
#include "kernels/kernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#ifndef K2C_PF_DIST
#define K2C_PF_DIST 2048
#endif
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 BF16 -> 8 floats: the BF16 bits are the top half of the fp32 bits. */
AVX2 static inline __m256 bf16x8(const uint16_t *w) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)w)), 16));
}

/* 8 e4m3 bytes -> 8 floats: sign to bit 31, exponent+mantissa to bits 20..26 reads as an fp32 whose exponent is
 * 120 too small (normals and subnormals alike), then times 2^120 (as kern_avx512.c). */
AVX2 static inline __m256 fp8x8(const uint8_t *w) {
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)w));
    __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x80)), 24);
    __m256i em = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x7f)), 20);
    return _mm256_mul_ps(_mm256_castsi256_ps(_mm256_or_si256(sign, em)), _mm256_set1_ps(0x1p120f));
}

AVX2 static float dot_f32(const float *w, const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 16), _mm256_loadu_ps(x + j + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 24), _mm256_loadu_ps(x + j + 24), a3);
    }
    for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), a0);
    float a = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; j < n; j++) a += w[j] * x[j];
    return a;
}

AVX2 static float dot_bf16(const uint16_t *w, const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        _mm_prefetch((const char *)(w + j) + K2C_PF_DIST, _MM_HINT_T0);
        a0 = _mm256_fmadd_ps(bf16x8(w + j), _mm256_loadu_ps(x + j), a0);
        a1 = _mm256_fmadd_ps(bf16x8(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
        a2 = _mm256_fmadd_ps(bf16x8(w + j + 16), _mm256_loadu_ps(x + j + 16), a2);
        a3 = _mm256_fmadd_ps(bf16x8(w + j + 24), _mm256_loadu_ps(x + j + 24), a3);
    }
    for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(bf16x8(w + j), _mm256_loadu_ps(x + j), a0);
    float a = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; j < n; j++) a += k2c_bf16_to_f32(w[j]) * x[j];
    return a;
}

/* The same row against xs (x reordered per 32 elements, 16 even then 16 odd; n a multiple of 32): one 256-bit
 * load gives 8 even and 8 odd weights by a shift and a mask, no widening. */
AVX2 static float dot_bf16_xs(const uint16_t *w, const float *xs, int n) {
    const int pf = k2c_pf_bf16;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int j = 0; j + 32 <= n; j += 32) {
        _mm_prefetch((const char *)(w + j) + pf, _MM_HINT_T0);
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(w + j)), v1 = _mm256_loadu_si256((const __m256i *)(w + j + 16));
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), _mm256_loadu_ps(xs + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, hi)), _mm256_loadu_ps(xs + j + 16), a1);
        a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), _mm256_loadu_ps(xs + j + 8), a2);
        a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, hi)), _mm256_loadu_ps(xs + j + 24), a3);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

AVX2 static float dot_f16(const uint16_t *w, const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        _mm_prefetch((const char *)(w + j) + K2C_PF_DIST, _MM_HINT_T0);
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + j))), _mm256_loadu_ps(x + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + j + 8))), _mm256_loadu_ps(x + j + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + j + 16))), _mm256_loadu_ps(x + j + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + j + 24))), _mm256_loadu_ps(x + j + 24), a3);
    }
    for (; j + 8 <= n; j += 8)
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + j))), _mm256_loadu_ps(x + j), a0);
    float a = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; j < n; j++) a += k2c_f16_to_f32(w[j]) * x[j];
    return a;
}

AVX2 static float dot_fp8(const uint8_t *w, const float *x, int n, const float *scale, int block) {
    float acc = 0;
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (; j + 32 <= j1; j += 32) {
            if ((j & 63) == 0) _mm_prefetch((const char *)(w + j) + K2C_PF_DIST, _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(fp8x8(w + j), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(fp8x8(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
            a2 = _mm256_fmadd_ps(fp8x8(w + j + 16), _mm256_loadu_ps(x + j + 16), a2);
            a3 = _mm256_fmadd_ps(fp8x8(w + j + 24), _mm256_loadu_ps(x + j + 24), a3);
        }
        float b = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; j < j1; j++) b += k2c_fp8_lut[w[j]] * x[j];
        acc += b * scale[j0 / block];
    }
    return acc;
}

/* INT4: each byte holds elements 2k (low nibble) and 2k+1 (high nibble). xs is x reordered per 32 elements into
 * the 16 even ones then the 16 odd ones (linear.c), so bytes 0..7 of a 16-byte chunk meet xs[0..8) with their
 * low nibbles and xs[16..24) with their high ones, bytes 8..15 meet xs[8..16) and xs[24..32). */
AVX2 static float dot_int4(const uint32_t *w, const float *xs, int n, const uint16_t *scale, int group) {
    const uint8_t *b = (const uint8_t *)w;
    const __m256i mask = _mm256_set1_epi32(0xf), eight = _mm256_set1_epi32(8);
    __m256 acc = _mm256_setzero_ps();
    for (int g = 0; g < n / group; g++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int j = g * group; j < (g + 1) * group; j += 32) {
            if ((j & 127) == 0) _mm_prefetch((const char *)(b + j / 2) + K2C_PF_DIST, _MM_HINT_T0);
            __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + j / 2)));
            __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + j / 2 + 8)));
            __m256 lo0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v0, mask), eight));
            __m256 hi0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v0, 4), eight));
            __m256 lo1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v1, mask), eight));
            __m256 hi1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v1, 4), eight));
            a0 = _mm256_fmadd_ps(lo0, _mm256_loadu_ps(xs + j), a0);
            a1 = _mm256_fmadd_ps(lo1, _mm256_loadu_ps(xs + j + 8), a1);
            a0 = _mm256_fmadd_ps(hi0, _mm256_loadu_ps(xs + j + 16), a0);
            a1 = _mm256_fmadd_ps(hi1, _mm256_loadu_ps(xs + j + 24), a1);
        }
        acc = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(k2c_bf16_to_f32(scale[g])), acc);
    }
    return hsum(acc);
}

/* ------------------------------------------------------------------ rows to fp32 (prompts) */
AVX2 static void cvt_bf16(const uint16_t *w, int n, float *out) {
    int j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, bf16x8(w + j));
    for (; j < n; j++) out[j] = k2c_bf16_to_f32(w[j]);
}

AVX2 static void cvt_f16(const uint16_t *w, int n, float *out) {
    int j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + j))));
    for (; j < n; j++) out[j] = k2c_f16_to_f32(w[j]);
}

/* Q8_0 rows (n a multiple of 32) to fp32 for the prompt tile (the signed formats take it on AVX2 from 128
 * tokens, q8_prefer_tile): d * q as the scalar dequantizer computes it, 8 at a time */
AVX2 static void cvt_q8_0(const uint8_t *b, int n, float *out) {
    for (int j = 0; j < n; j += 32, b += 34) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss((unsigned short)(b[0] | b[1] << 8)));
        for (int k = 0; k < 32; k += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + k)));
            _mm256_storeu_ps(out + j + k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
        }
    }
}

AVX2 static void cvt_fp8(const uint8_t *w, int n, const float *scale, int block, float *out) {
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        __m256 sc = _mm256_set1_ps(scale[j0 / block]);
        for (; j + 8 <= j1; j += 8) _mm256_storeu_ps(out + j, _mm256_mul_ps(fp8x8(w + j), sc));
        for (; j < j1; j++) out[j] = k2c_fp8_lut[w[j]] * scale[j0 / block];
    }
}

/* ------------------------------------------------------------------ fp32 prompt GEMM tile
 * Register-blocked: 6 weight rows x 16 tokens in 12 ymm accumulators; per column the 16 tokens' inputs are two
 * loads from the packed block (k2c_gemm_pack_x: 32 tokens per column) and each row's weight a broadcast straight
 * from its row (six sequential streams; no packed panel to build). Rows past the tile's end repeat its last row
 * and are not stored. */
#define RB6 6
AVX2 static void kernel_6x16(const float *w, size_t ldw, int nrows, int C, const float *xp, float *Y, int ldy, int ntok) {
    const float *w0 = w, *w1 = w + (nrows > 1 ? 1 : 0) * ldw, *w2 = w + (nrows > 2 ? 2 : 0) * ldw;
    const float *w3 = w + (nrows > 3 ? 3 : 0) * ldw, *w4 = w + (nrows > 4 ? 4 : 0) * ldw, *w5 = w + (nrows > 5 ? 5 : 0) * ldw;
    /* named accumulators: GCC keeps an array of vectors in registers but stores it back every iteration */
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    for (int c = 0; c < C; c++) {
        __m256 x0 = _mm256_loadu_ps(xp + (size_t)c * K2C_GEMM_TB), x1 = _mm256_loadu_ps(xp + (size_t)c * K2C_GEMM_TB + 8);
        __m256 wv = _mm256_broadcast_ss(w0 + c);
        a00 = _mm256_fmadd_ps(wv, x0, a00); a01 = _mm256_fmadd_ps(wv, x1, a01);
        wv = _mm256_broadcast_ss(w1 + c);
        a10 = _mm256_fmadd_ps(wv, x0, a10); a11 = _mm256_fmadd_ps(wv, x1, a11);
        wv = _mm256_broadcast_ss(w2 + c);
        a20 = _mm256_fmadd_ps(wv, x0, a20); a21 = _mm256_fmadd_ps(wv, x1, a21);
        wv = _mm256_broadcast_ss(w3 + c);
        a30 = _mm256_fmadd_ps(wv, x0, a30); a31 = _mm256_fmadd_ps(wv, x1, a31);
        wv = _mm256_broadcast_ss(w4 + c);
        a40 = _mm256_fmadd_ps(wv, x0, a40); a41 = _mm256_fmadd_ps(wv, x1, a41);
        wv = _mm256_broadcast_ss(w5 + c);
        a50 = _mm256_fmadd_ps(wv, x0, a50); a51 = _mm256_fmadd_ps(wv, x1, a51);
    }
    float out[RB6][16];
    _mm256_storeu_ps(out[0], a00); _mm256_storeu_ps(out[0] + 8, a01);
    _mm256_storeu_ps(out[1], a10); _mm256_storeu_ps(out[1] + 8, a11);
    _mm256_storeu_ps(out[2], a20); _mm256_storeu_ps(out[2] + 8, a21);
    _mm256_storeu_ps(out[3], a30); _mm256_storeu_ps(out[3] + 8, a31);
    _mm256_storeu_ps(out[4], a40); _mm256_storeu_ps(out[4] + 8, a41);
    _mm256_storeu_ps(out[5], a50); _mm256_storeu_ps(out[5] + 8, a51);
    for (int t = 0; t < ntok; t++)
        for (int r = 0; r < nrows; r++) Y[(size_t)t * ldy + r] = out[r][t];
}

/* Y[:, 0..nr) (row stride ldy) = packed X times the nr rows of w [nr, C]. Token blocks outside: one block of
 * inputs (16 x C floats) stays in cache while the tile's rows (L2-sized) pass by. The panel is not needed. */
AVX2 static void gemm_tile(const float *w, int nr, int C, const float *Xp, int T, float *Y, int ldy, float *panel) {
    (void)panel;
    for (int t0 = 0; t0 < T; t0 += 16) {
        int ntok = T - t0 < 16 ? T - t0 : 16;
        const float *xp = Xp + (size_t)(t0 / K2C_GEMM_TB) * C * K2C_GEMM_TB + t0 % K2C_GEMM_TB;
        for (int r = 0; r < nr; r += RB6)
            kernel_6x16(w + (size_t)r * C, (size_t)C, nr - r < RB6 ? nr - r : RB6, C, xp, Y + (size_t)t0 * ldy + r, ldy, ntok);
    }
}

/* GGUF block formats on quantized activations. vpmaddubsw multiplies unsigned by signed bytes, so w's sign
 * moves onto q (|w| * sign(q, w) = w * q); pairs of products fit int16 because q is within +-127. Four
 * 32-element chunks reduce together: two rounds of horizontal adds leave each 16-element sum in a lane. */
AVX2 static inline __m256i isum32(const int8_t *w, const int8_t *q) {
    __m256i a = _mm256_loadu_si256((const __m256i *)w), b = _mm256_loadu_si256((const __m256i *)q);
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));      /* lanes 0-3: elements 0..15, lanes 4-7: 16..31 */
}

AVX2 static void qd_isum16(const int8_t *w, const int8_t *q, int n, int32_t *out) {
    int j = 0;
    for (; j + 128 <= n; j += 128, out += 8) {
        __m256i h1 = _mm256_hadd_epi32(isum32(w + j, q + j), isum32(w + j + 32, q + j + 32));
        __m256i h2 = _mm256_hadd_epi32(isum32(w + j + 64, q + j + 64), isum32(w + j + 96, q + j + 96));
        __m256i h = _mm256_hadd_epi32(h1, h2);                  /* [A0 B0 C0 D0 | A1 B1 C1 D1] */
        h = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out, h);
    }
    for (; j < n; j += 32, out += 2) {
        __m256i p = isum32(w + j, q + j);
        __m128i lo = _mm256_castsi256_si128(p), hi = _mm256_extracti128_si256(p, 1);
        __m128i s = _mm_hadd_epi32(lo, hi);                     /* [lo01 lo23 hi01 hi23] */
        s = _mm_hadd_epi32(s, s);
        out[0] = _mm_cvtsi128_si32(s);
        out[1] = _mm_extract_epi32(s, 1);
    }
}
#define QD_ATTR AVX2
/* the decode kernels' VNNI: AVX-VNNI's VEX encoding (Alder Lake, Zen 5) */
#define QD_DPBUSD "%{vex%} vpdpbusd"
#define QD_EXT() k2c_cpu_has_avxvnni()
#include "kernels/quant_dot_x86.h"
#include "kernels/quant_dot.h"

/* The int8 prompt GEMM's micro-kernel: a quad as two passes of 2 rows x 16 tokens (two ymm of 8 int32 lanes
 * per row; 16 registers do not hold more with the float accumulators). Three ways to the integer sums:
 *   AVX-VNNI (Alder Lake, Zen 5): vpdpbusd on the weights as unsigned w + 128 (QG_OFF in quant_gemm.h);
 *   without VNNI (Zen 2 / Zen 3), weights that qg_small_off makes unsigned and at most 64 (QG_UNS: the K-quants,
 *     Q4_0/Q5_0, INT4): vpmaddubsw of u and q straight, the int16 pairs of two k-steps (four where u <= 31 and
 *     a float step spans 8 or more) added before one vpmaddwd to int32 (+23-30% over the sign trick on every
 *     such format, bench/gemm.sh at 128 tokens, 1 thread, AMD Zen 2; eight k-steps, and four over a float step
 *     of four, measured slower: GCC spills the 16 registers);
 *   signed weights without VNNI (Q8_0, the codebook types): the decode path's sign trick, |w| times q with w's
 *     sign, pairs added by vpmaddwd.
 * Integer sums per scale group, scaled into floats. */
#define QG_NT 16
#define AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
/* vpdpbusd in place (GCC 12 copies the intrinsic's accumulators around the loop); {vex}: the AVX-VNNI encoding */
AVXVNNI static inline __m256i qg_dpbusd256(__m256i acc, __m256i u8, __m256i s8) {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u8), "x"(s8));
    return acc;
}
/* DOT1(x, w): one k-step's products (int16 pairs from vpmaddubsw, int32 from vpdpbusd); DOTP(p, x, w): p plus
 * another k-step's; FIN(acc, p): p into the int32 sums. KSN k-steps go into p between FINs (int16 pairs of
 * unsigned weights u <= 64: two, 2 x 2 x 64 x 127 < 32768; u <= 31: four); vpdpbusd's int32 any number. */
#define QG2_DOT1_VNNI(xv, wv) qg_dpbusd256(_mm256_setzero_si256(), wv, xv)     /* weights w + 128, x signed */
#define QG2_DOTP_VNNI(p, xv, wv) qg_dpbusd256(p, wv, xv)
#define QG2_FIN_VNNI(acc, p) _mm256_add_epi32(acc, p)
#define QG2_DOT1_SIGN(xv, wv) _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv))
#define QG2_DOTP_SIGN(p, xv, wv) ((void)(xv), (void)(wv), p)    /* not reached: one k-step per FIN */
#define QG2_DOT1_UNS(xv, wv) _mm256_maddubs_epi16(wv, xv)
#define QG2_DOTP_UNS(p, xv, wv) _mm256_add_epi16(p, _mm256_maddubs_epi16(wv, xv))
#define QG2_FIN_16(acc, p) _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones))
/* k-step k's activations (16 tokens x 4 bytes, two ymm) and the two rows' 4 weights, broadcast */
#define QG2_LOAD(k)                                                                                                  \
    do {                                                                                                            \
        int32_t a4_, b4_;                                                                                           \
        x0 = _mm256_loadu_si256((const __m256i *)(xq + (size_t)(k) * 64));                                          \
        x1 = _mm256_loadu_si256((const __m256i *)(xq + (size_t)(k) * 64 + 32));                                     \
        memcpy(&a4_, w0 + (size_t)(k) * 16, 4);                                                                     \
        memcpy(&b4_, w1 + (size_t)(k) * 16, 4);                                                                     \
        wa = _mm256_set1_epi32(a4_); wb = _mm256_set1_epi32(b4_);                                                   \
    } while (0)
#define QG2_BODY(KSN, DOT1, DOTP, FIN)                                                                                   \
    int ng = x->C / x->sg, kg = x->sg / 4, has_min = fl & QG_MIN;                                                   \
    int gs = fl & QG_SB ? 256 / x->sg : fl & QG_PAIR ? 2 : 1;     /* scale groups per float step */                 \
    int ksn = KSN ? KSN : kg * gs;           /* KSN 0: the whole step; else at most kg * gs (qg_kernel) */         \
    const int8_t *xq = x->q + (size_t)b * K2C_Q8P_TB * (size_t)x->C;                                                \
    const float *d = x->d + (size_t)b * (size_t)ng * K2C_Q8P_TB, *s = x->s + (size_t)b * (size_t)ng * K2C_Q8P_TB;   \
    const __m256i ones = _mm256_set1_epi16(1);                                                                      \
    (void)ones;                                                                                                     \
    for (int rp = 0; rp < nrows; rp += 2) {                                                                         \
        __m256 fa00 = _mm256_setzero_ps(), fa01 = fa00, fa10 = fa00, fa11 = fa00;                                   \
        const int8_t *w0 = w + 4 * rp, *w1 = w + 4 * (rp + 1);                                                      \
        for (int g = 0; g < ng; g += gs) {                                                                          \
            __m256i i00 = _mm256_setzero_si256(), i01 = i00, i10 = i00, i11 = i00;                                  \
            for (int ks = g * kg; ks < (g + gs) * kg; ks += ksn) {                                                  \
                __m256i x0, x1, wa, wb;                                                                             \
                QG2_LOAD(ks);                                                                                       \
                __m256i p00 = DOT1(x0, wa), p01 = DOT1(x1, wa), p10 = DOT1(x0, wb), p11 = DOT1(x1, wb);             \
                for (int k = ks + 1; k < ks + ksn; k++) {                                                           \
                    QG2_LOAD(k);                                                                                    \
                    p00 = DOTP(p00, x0, wa); p01 = DOTP(p01, x1, wa);                                               \
                    p10 = DOTP(p10, x0, wb); p11 = DOTP(p11, x1, wb);                                               \
                }                                                                                                   \
                i00 = FIN(i00, p00); i01 = FIN(i01, p01); i10 = FIN(i10, p10); i11 = FIN(i11, p11);                 \
            }                                                                                                       \
            __m256 d0 = _mm256_loadu_ps(d + (size_t)g * 16), d1 = _mm256_loadu_ps(d + (size_t)g * 16 + 8);         \
            __m256 fr0 = _mm256_set1_ps(F[4 * g + rp]), fr1 = _mm256_set1_ps(F[4 * g + rp + 1]);                    \
            fa00 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i00), _mm256_mul_ps(d0, fr0), fa00);                          \
            fa01 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i01), _mm256_mul_ps(d1, fr0), fa01);                          \
            fa10 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i10), _mm256_mul_ps(d0, fr1), fa10);                          \
            fa11 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i11), _mm256_mul_ps(d1, fr1), fa11);                          \
            for (int h = g; has_min && h < g + gs; h++) {                                                           \
                __m256 s0 = _mm256_loadu_ps(s + (size_t)h * 16), s1 = _mm256_loadu_ps(s + (size_t)h * 16 + 8);     \
                __m256 m0 = _mm256_set1_ps(M[4 * h + rp]), m1 = _mm256_set1_ps(M[4 * h + rp + 1]);                  \
                fa00 = _mm256_fnmadd_ps(m0, s0, fa00); fa01 = _mm256_fnmadd_ps(m0, s1, fa01);                       \
                fa10 = _mm256_fnmadd_ps(m1, s0, fa10); fa11 = _mm256_fnmadd_ps(m1, s1, fa11);                       \
            }                                                                                                       \
        }                                                                                                           \
        float out[2][16];                                                                                           \
        _mm256_storeu_ps(out[0], fa00); _mm256_storeu_ps(out[0] + 8, fa01);                                         \
        _mm256_storeu_ps(out[1], fa10); _mm256_storeu_ps(out[1] + 8, fa11);                                         \
        for (int t = 0; t < ntok; t++)                                                                              \
            for (int r = 0; r < 2 && rp + r < nrows; r++) Y[(size_t)t * ldy + rp + r] = out[r][t];                  \
    }

#define QG2_ARGS const int8_t *w, const float *F, const float *M, const k2c_q8p *x, int b, int ntok, float *Y, int ldy, \
                 int nrows, int fl
AVXVNNI static void qg_k2_vnni(QG2_ARGS) { QG2_BODY(0, QG2_DOT1_VNNI, QG2_DOTP_VNNI, QG2_FIN_VNNI) }
AVX2 static void qg_k2_sign(QG2_ARGS) { QG2_BODY(1, QG2_DOT1_SIGN, QG2_DOTP_SIGN, QG2_FIN_16) }
AVX2 static void qg_k2_u2(QG2_ARGS) { QG2_BODY(2, QG2_DOT1_UNS, QG2_DOTP_UNS, QG2_FIN_16) }
AVX2 static void qg_k2_u4(QG2_ARGS) { QG2_BODY(4, QG2_DOT1_UNS, QG2_DOTP_UNS, QG2_FIN_16) }
#define QG_OFF(ext, f) ((ext) && k2c_cpu_has_avxvnni() ? 128 : qg_small_off(f))
AVX2 static void qg_kernel(QG2_ARGS, int ext) {
    /* the k-steps between two float steps: 4 (16-column groups), 8, or more where QG_PAIR / QG_SB join groups */
    int steps = x->sg / 4 * (fl & QG_SB ? 256 / x->sg : fl & QG_PAIR ? 2 : 1);
    void (*k)(QG2_ARGS) = ext && k2c_cpu_has_avxvnni() ? qg_k2_vnni
                          : fl & QG_UNS4 && steps >= 8 ? qg_k2_u4
                          : fl & QG_UNS ? qg_k2_u2 : qg_k2_sign;
    k(w, F, M, x, b, ntok, Y, ldy, nrows, fl);
}
#define QI_AVX2
#include "kernels/int4_q8.h"      /* INT4 on the int8 paths (before quant_gemm.h, which unpacks with it) */
#include "kernels/quant_gemm.h"

/* Without VNNI, the formats left signed (Q8_0, IQ4_NL, the codebook types) take the sign trick, two
 * multiply-unit instructions per 32 products besides the sign, against the fp32 tile's two FMA units: measured
 * on AMD Zen 2 (bench/gemm.sh, 1 thread, 1408 x 2048), Q8_0 int8 57-70 GFLOP/s from 16 to 512 tokens, the fp32
 * tile on the dequantized rows 33 at 16, 62 at 64, 72 at 128, 82 at 512 (IQ4_NL the same); from 128 tokens on
 * the tile is the faster road, and exact besides. */
AVX2 static int q8_prefer_tile(k2c_wfmt f, int T, int ext) {
    return T >= 128 && qg_small_off(f) < 0 && !(ext && k2c_cpu_has_avxvnni());
}

/* Without VNNI the K-quants decode on activations with one dx per super-block (quant_dot_kq_x86.h's *_s
 * kernels): the sub-scales then multiply the int16 pairs in vpmaddwd, and a super-block takes one float step */
AVX2 static int q8x_span(k2c_wfmt f) {
    int kq = f == K2C_FMT_Q2_K || f == K2C_FMT_Q3_K || f == K2C_FMT_Q4_K || f == K2C_FMT_Q5_K || f == K2C_FMT_Q6_K ||
             f == K2C_FMT_IQ4_XS;
    return kq && !QD_EXT() ? 256 : 32;
}

const k2c_kernels k2c_kernels_avx2 = {
    .name = "avx2",
    .dot_f32 = dot_f32,
    .dot_bf16 = dot_bf16,
    .dot_bf16_xs = dot_bf16_xs,
    .dot_f16 = dot_f16,
    .dot_fp8 = dot_fp8,
    .dot_int4 = dot_int4,
    .dot_q8 = qd_dot_q8,
    .dot_q8_rows = qd_dot_q8_rows,
    .dot_q8_base = qd_dot_q8_base,
    .dot_int4_q8 = qi_dot_int4_q8,
    .int4_q8_eo = QI_EO,
    .q8x_span = q8x_span,
    .gemm_q8 = qg_gemm_q8,
    .q8_prefer_tile = q8_prefer_tile,
    .cvt_bf16 = cvt_bf16,
    .cvt_f16 = cvt_f16,
    .cvt_fp8 = cvt_fp8,
    .cvt_q8_0 = cvt_q8_0,
    .gemm_tile = gemm_tile,
    .gemm_tile_bf16 = NULL,
};
#endif
