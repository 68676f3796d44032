/* NEON (AArch64 Advanced SIMD) kernels: the decode row dots on every stored format, and the row dequantization
 * and register-blocked fp32 tile that prompts multiply with, for Apple Silicon, Graviton and Ampere machines.
 * Advanced SIMD is part of every AArch64 CPU, so this file needs no feature test; the FP16 conversion (FCVTL)
 * is baseline too.
 *
 * Like the AVX2 file: four independent accumulators hide the FMA latency, formats are converted in registers,
 * and a prefetch runs ahead of the stream. */
#include "kernels/kernels.h"

#include <string.h>

#if defined(__aarch64__)
#include <arm_neon.h>

#ifndef K2C_PF_DIST
#define K2C_PF_DIST 2048
#endif

static inline float32x4_t bf16x4(const uint16_t *w) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w), 16)); }

static inline float32x4_t f16x4(const uint16_t *w) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w))); }

/* 4 e4m3 bytes (already widened to u32) -> floats: sign to bit 31, exponent+mantissa to bits 20..26, which reads
 * as an fp32 whose exponent is 120 too small (normals and subnormals alike), times 2^120. */
static inline float32x4_t fp8_u32(uint32x4_t v) {
    uint32x4_t sign = vshlq_n_u32(vandq_u32(v, vdupq_n_u32(0x80)), 24);
    uint32x4_t em = vshlq_n_u32(vandq_u32(v, vdupq_n_u32(0x7f)), 20);
    return vmulq_f32(vreinterpretq_f32_u32(vorrq_u32(sign, em)), vdupq_n_f32(0x1p120f));
}

/* 16 e4m3 bytes -> four float vectors */
static inline void fp8x16(const uint8_t *w, float32x4_t f[4]) {
    uint8x16_t b = vld1q_u8(w);
    uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_u8(vget_high_u8(b));
    f[0] = fp8_u32(vmovl_u16(vget_low_u16(lo)));
    f[1] = fp8_u32(vmovl_u16(vget_high_u16(lo)));
    f[2] = fp8_u32(vmovl_u16(vget_low_u16(hi)));
    f[3] = fp8_u32(vmovl_u16(vget_high_u16(hi)));
}

static inline float sum4(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

static float dot_f32(const float *w, const float *x, int n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(w + j), vld1q_f32(x + j));
        a1 = vfmaq_f32(a1, vld1q_f32(w + j + 4), vld1q_f32(x + j + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(w + j + 8), vld1q_f32(x + j + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(w + j + 12), vld1q_f32(x + j + 12));
    }
    for (; j + 4 <= n; j += 4) a0 = vfmaq_f32(a0, vld1q_f32(w + j), vld1q_f32(x + j));
    float a = sum4(a0, a1, a2, a3);
    for (; j < n; j++) a += w[j] * x[j];
    return a;
}

/* BF16 and F16 rows share the loop; cvt converts four stored values. */
#define DOT_HALF(NAME, CVT, SCALAR)                                                         \
    static float NAME(const uint16_t *w, const float *x, int n) {                           \
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;                         \
        int j = 0;                                                                          \
        for (; j + 16 <= n; j += 16) {                                                      \
            __builtin_prefetch((const char *)(w + j) + K2C_PF_DIST);                        \
            a0 = vfmaq_f32(a0, CVT(w + j), vld1q_f32(x + j));                               \
            a1 = vfmaq_f32(a1, CVT(w + j + 4), vld1q_f32(x + j + 4));                       \
            a2 = vfmaq_f32(a2, CVT(w + j + 8), vld1q_f32(x + j + 8));                       \
            a3 = vfmaq_f32(a3, CVT(w + j + 12), vld1q_f32(x + j + 12));                     \
        }                                                                                   \
        for (; j + 4 <= n; j += 4) a0 = vfmaq_f32(a0, CVT(w + j), vld1q_f32(x + j));        \
        float a = sum4(a0, a1, a2, a3);                                                     \
        for (; j < n; j++) a += SCALAR(w[j]) * x[j];                                        \
        return a;                                                                           \
    }
DOT_HALF(dot_bf16, bf16x4, k2c_bf16_to_f32)
DOT_HALF(dot_f16, f16x4, k2c_f16_to_f32)

static float dot_fp8(const uint8_t *w, const float *x, int n, const float *scale, int block) {
    float acc = 0;
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0, f[4];
        for (; j + 16 <= j1; j += 16) {
            if ((j & 63) == 0) __builtin_prefetch((const char *)(w + j) + K2C_PF_DIST);
            fp8x16(w + j, f);
            a0 = vfmaq_f32(a0, f[0], vld1q_f32(x + j));
            a1 = vfmaq_f32(a1, f[1], vld1q_f32(x + j + 4));
            a2 = vfmaq_f32(a2, f[2], vld1q_f32(x + j + 8));
            a3 = vfmaq_f32(a3, f[3], vld1q_f32(x + j + 12));
        }
        float b = sum4(a0, a1, a2, a3);
        for (; j < j1; j++) b += k2c_fp8_lut[w[j]] * x[j];
        acc += b * scale[j0 / block];
    }
    return acc;
}

/* 8 signed int8 -> two float vectors */
static inline void s8x8(int8x8_t v, float32x4_t *lo, float32x4_t *hi) {
    int16x8_t h = vmovl_s8(v);
    *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
    *hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(h)));
}

/* INT4: 16 bytes hold 32 elements, element 2k in the low nibble of byte k and 2k+1 in the high one; xs is x
 * reordered per 32 into the 16 even elements then the 16 odd ones (linear.c), so low nibbles meet xs[0..16) and
 * high nibbles xs[16..32) in order. */
static float dot_int4(const uint32_t *w, const float *xs, int n, const uint16_t *scale, int group) {
    const uint8_t *b = (const uint8_t *)w;
    const int8x16_t eight = vdupq_n_s8(8);
    float acc = 0;
    for (int g = 0; g < n / group; g++) {
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int j = g * group; j < (g + 1) * group; j += 32) {
            if ((j & 127) == 0) __builtin_prefetch((const char *)(b + j / 2) + K2C_PF_DIST);
            uint8x16_t v = vld1q_u8(b + j / 2);
            int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0xf))), eight);
            int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
            float32x4_t f0, f1, f2, f3;
            s8x8(vget_low_s8(lo), &f0, &f1);
            s8x8(vget_high_s8(lo), &f2, &f3);
            a0 = vfmaq_f32(a0, f0, vld1q_f32(xs + j));
            a1 = vfmaq_f32(a1, f1, vld1q_f32(xs + j + 4));
            a2 = vfmaq_f32(a2, f2, vld1q_f32(xs + j + 8));
            a3 = vfmaq_f32(a3, f3, vld1q_f32(xs + j + 12));
            s8x8(vget_low_s8(hi), &f0, &f1);
            s8x8(vget_high_s8(hi), &f2, &f3);
            a0 = vfmaq_f32(a0, f0, vld1q_f32(xs + j + 16));
            a1 = vfmaq_f32(a1, f1, vld1q_f32(xs + j + 20));
            a2 = vfmaq_f32(a2, f2, vld1q_f32(xs + j + 24));
            a3 = vfmaq_f32(a3, f3, vld1q_f32(xs + j + 28));
        }
        acc += sum4(a0, a1, a2, a3) * k2c_bf16_to_f32(scale[g]);
    }
    return acc;
}

/* ------------------------------------------------------------------ rows to fp32 (prompts) */
static void cvt_bf16(const uint16_t *w, int n, float *out) {
    int j = 0;
    for (; j + 4 <= n; j += 4) vst1q_f32(out + j, bf16x4(w + j));
    for (; j < n; j++) out[j] = k2c_bf16_to_f32(w[j]);
}

static void cvt_f16(const uint16_t *w, int n, float *out) {
    int j = 0;
    for (; j + 4 <= n; j += 4) vst1q_f32(out + j, f16x4(w + j));
    for (; j < n; j++) out[j] = k2c_f16_to_f32(w[j]);
}

static void cvt_fp8(const uint8_t *w, int n, const float *scale, int block, float *out) {
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        float32x4_t sc = vdupq_n_f32(scale[j0 / block]), f[4];
        for (; j + 16 <= j1; j += 16) {
            fp8x16(w + j, f);
            for (int q = 0; q < 4; q++) vst1q_f32(out + j + 4 * q, vmulq_f32(f[q], sc));
        }
        for (; j < j1; j++) out[j] = k2c_fp8_lut[w[j]] * scale[j0 / block];
    }
}

/* GGUF block formats on quantized activations: widening byte products (SMULL), pairs added in int16 (they fit:
 * q is within +-127), then added across the vector in int32. */
static void qd_isum16(const int8_t *w, const int8_t *q, int n, int32_t *out) {
    for (int g = 0; g < n / 16; g++) {
        int8x16_t a = vld1q_s8(w + 16 * g), b = vld1q_s8(q + 16 * g);
        int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        p = vmlal_high_s8(p, a, b);
        out[g] = vaddlvq_s16(p);
    }
}
static inline void qd_nl16(const uint8_t *qs, int8_t *w) {
    const int8x16_t lut = vld1q_s8(k2c_iq4_nl);
    uint8x16_t b = vld1q_u8(qs);
    vst1q_s8(w, vqtbl1q_s8(lut, vandq_u8(b, vdupq_n_u8(15))));
    vst1q_s8(w + 16, vqtbl1q_s8(lut, vshrq_n_u8(b, 4)));
}
static inline float qd_f16(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
static inline void qd_nib(const uint8_t *qs, int n, int off, int8_t *lo, int8_t *hi) {
    const int8x16_t o = vdupq_n_s8((int8_t)off);
    for (int j = 0; j < n; j += 16) {
        uint8x16_t b = vld1q_u8(qs + j);
        vst1q_s8(lo + j, vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(15))), o));
        vst1q_s8(hi + j, vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), o));
    }
}
#define QD_HAVE_NIB
static inline void qd_bits(const uint8_t *src, int shift, int mask, int8_t *dst) {
    int8x16_t sh = vdupq_n_s8((int8_t)-shift);                  /* a negative USHL count shifts right */
    for (int j = 0; j < 32; j += 16)
        vst1q_s8(dst + j, vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(src + j), sh), vdupq_n_u8((uint8_t)mask))));
}
#define QD_HAVE_BITS
static inline void qd_q5w(const uint8_t *qs, uint32_t qh, int off, int8_t *w) {     /* fifth bits: CMTST */
    const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull)), sixteen = vdupq_n_u8(16);
    const int8x16_t o = vdupq_n_s8((int8_t)off);
    uint8x8_t h = vcreate_u8((uint64_t)qh);
    uint8x16_t hl = vcombine_u8(vdup_lane_u8(h, 0), vdup_lane_u8(h, 1)), hh = vcombine_u8(vdup_lane_u8(h, 2), vdup_lane_u8(h, 3));
    uint8x16_t b = vld1q_u8(qs);
    uint8x16_t lo = vorrq_u8(vandq_u8(b, vdupq_n_u8(15)), vandq_u8(vtstq_u8(hl, bit), sixteen));
    uint8x16_t hi = vorrq_u8(vshrq_n_u8(b, 4), vandq_u8(vtstq_u8(hh, bit), sixteen));
    vst1q_s8(w, vsubq_s8(vreinterpretq_s8_u8(lo), o));
    vst1q_s8(w + 16, vsubq_s8(vreinterpretq_s8_u8(hi), o));
}
#define QD_HAVE_Q5W
static inline void qd_q6w(const uint8_t *qs, const uint8_t *qh, int8_t *w) {     /* Q6_0's high-bit pairs */
    const uint8x16_t m2 = vdupq_n_u8(3);
    uint8x8_t h = vld1_u8(qh);
    uint8x16_t hl = vcombine_u8(h, vshr_n_u8(h, 4)), hh = vcombine_u8(vshr_n_u8(h, 2), vshr_n_u8(h, 6));
    uint8x16_t b = vld1q_u8(qs);
    uint8x16_t lo = vorrq_u8(vandq_u8(b, vdupq_n_u8(15)), vshlq_n_u8(vandq_u8(hl, m2), 4));
    uint8x16_t hi = vorrq_u8(vshrq_n_u8(b, 4), vshlq_n_u8(vandq_u8(hh, m2), 4));
    vst1q_s8(w, vsubq_s8(vreinterpretq_s8_u8(lo), vdupq_n_s8(32)));
    vst1q_s8(w + 16, vsubq_s8(vreinterpretq_s8_u8(hi), vdupq_n_s8(32)));
}
#define QD_HAVE_Q6W
#define QD_HAVE_NL16
#define QD_F16(h) qd_f16(h)
#define QD_ATTR
#include "kernels/quant_dot.h"

/* The int8 prompt GEMM's micro-kernel: a quad as passes of 2 rows x 16 tokens (dotprod: SDOT adds a row's 4
 * weights times each token's 4 bytes into that token's int32 lane, 4 tokens a vector) or 2 rows x 8 tokens
 * (baseline: SMULL products, pairs added into int32 by SADALP, and the pairs of each token added at the end of
 * the group). Integer sums per scale group, scaled into float accumulators. */
#define QG_NT 16
#define QGN_ARGS const int8_t *w, const float *F, const float *M, const k2c_q8p *x, int b, int ntok, \
                 float *Y, int ldy, int nrows, int fl
#define QGN_SETUP                                                                                                   \
    int ng = x->C / x->sg, kg = x->sg / 4, has_min = fl & QG_MIN;                                                   \
    int gs = fl & QG_SB ? 256 / x->sg : fl & QG_PAIR ? 2 : 1;     /* scale groups per float step */                 \
    const int8_t *xq = x->q + (size_t)b * K2C_Q8P_TB * (size_t)x->C;                                                \
    const float *d = x->d + (size_t)b * (size_t)ng * K2C_Q8P_TB, *s = x->s + (size_t)b * (size_t)ng * K2C_Q8P_TB;   \
/* fa[r][v] += F d isum - M s for token vector v (tokens tv + 4 v); gs groups g .. g+gs-1 share F and d */
#define QGN_SCALE(NV, tv)                                                                                           \
    for (int r = 0; r < 2; r++) {                                                                                   \
        float32x4_t fr = vdupq_n_f32(F[4 * g + rp + r]);                                                            \
        for (int v = 0; v < NV; v++) {                                                                              \
            const float *dg = d + (size_t)g * 16 + tv + 4 * v;                                                      \
            fa[r][v] = vfmaq_f32(fa[r][v], vcvtq_f32_s32(ia[r][v]), vmulq_f32(vld1q_f32(dg), fr));                  \
            for (int h = g; has_min && h < g + gs; h++)                                                             \
                fa[r][v] = vfmsq_f32(fa[r][v], vdupq_n_f32(M[4 * h + rp + r]), vld1q_f32(s + (size_t)h * 16 + tv + 4 * v)); \
        }                                                                                                           \
    }
#define QGN_STORE(NV, tv)                                                                                           \
    float out[2][4 * NV];                                                                                           \
    for (int r = 0; r < 2; r++)                                                                                     \
        for (int v = 0; v < NV; v++) vst1q_f32(out[r] + 4 * v, fa[r][v]);                                           \
    for (int t = tv; t < tv + 4 * NV && t < ntok; t++)                                                              \
        for (int r = 0; r < 2 && rp + r < nrows; r++) Y[(size_t)t * ldy + rp + r] = out[r][t - tv];

__attribute__((target("arch=armv8.2-a+dotprod"))) static void qg_kn_dot(QGN_ARGS) {
    QGN_SETUP
    for (int rp = 0; rp < nrows; rp += 2) {
        float32x4_t fa[2][4];
        for (int r = 0; r < 2; r++)
            for (int v = 0; v < 4; v++) fa[r][v] = vdupq_n_f32(0);
        for (int g = 0; g < ng; g += gs) {
            int32x4_t ia[2][4];
            for (int r = 0; r < 2; r++)
                for (int v = 0; v < 4; v++) ia[r][v] = vdupq_n_s32(0);
            for (int ks = g * kg; ks < (g + gs) * kg; ks++) {
                int8x16_t xv[4];
                for (int v = 0; v < 4; v++) xv[v] = vld1q_s8(xq + (size_t)ks * 64 + 16 * v);
                for (int r = 0; r < 2; r++) {
                    int32_t w4;
                    memcpy(&w4, w + (size_t)ks * 16 + 4 * (rp + r), 4);
                    int8x16_t wv = vreinterpretq_s8_s32(vdupq_n_s32(w4));
                    for (int v = 0; v < 4; v++) ia[r][v] = vdotq_s32(ia[r][v], xv[v], wv);
                }
            }
            QGN_SCALE(4, 0)
        }
        QGN_STORE(4, 0)
    }
}

static void qg_kn_mull(QGN_ARGS) {
    QGN_SETUP
    for (int rp = 0; rp < nrows; rp += 2)
        for (int tv = 0; tv < 16 && tv < ntok; tv += 8) {
            float32x4_t fa[2][2];
            for (int r = 0; r < 2; r++) fa[r][0] = fa[r][1] = vdupq_n_f32(0);
            for (int g = 0; g < ng; g += gs) {
                int32x4_t pa[2][2][2];      /* [row][vector][half]: pairs of each token's 4 products */
                for (int r = 0; r < 2; r++)
                    for (int v = 0; v < 2; v++) pa[r][v][0] = pa[r][v][1] = vdupq_n_s32(0);
                for (int ks = g * kg; ks < (g + gs) * kg; ks++) {
                    int8x16_t xv[2];
                    for (int v = 0; v < 2; v++) xv[v] = vld1q_s8(xq + (size_t)ks * 64 + 4 * tv + 16 * v);
                    for (int r = 0; r < 2; r++) {
                        int32_t w4;
                        memcpy(&w4, w + (size_t)ks * 16 + 4 * (rp + r), 4);
                        int8x16_t wv = vreinterpretq_s8_s32(vdupq_n_s32(w4));
                        for (int v = 0; v < 2; v++) {
                            pa[r][v][0] = vpadalq_s16(pa[r][v][0], vmull_s8(vget_low_s8(xv[v]), vget_low_s8(wv)));
                            pa[r][v][1] = vpadalq_s16(pa[r][v][1], vmull_high_s8(xv[v], wv));
                        }
                    }
                }
                int32x4_t ia[2][2];
                for (int r = 0; r < 2; r++)
                    for (int v = 0; v < 2; v++) ia[r][v] = vpaddq_s32(pa[r][v][0], pa[r][v][1]);
                QGN_SCALE(2, tv)
            }
            QGN_STORE(2, tv)
        }
}

/* ------------------------------------------------------------------ fp32 prompt GEMM tile
 * Register-blocked like the AVX2 tile: 6 weight rows x 16 tokens in 24 q-register accumulators; per column the
 * 16 tokens' inputs are four loads from the packed block (k2c_gemm_pack_x: 32 tokens per column) and each row's
 * weight one scalar load that FMLA uses by element (vfmaq_n_f32), so 24 + 4 + 1 of the 32 vector registers are
 * live and nothing spills. Against the OpenBLAS path this saves packing a dequantized tile into sgemm's own
 * layout for every call (the AVX2 and AVX-512 tiles beat sgemm that way for prompt-sized T). Rows past the
 * tile's end repeat its last row and are not stored. */
#define RB6 6
static void kernel_6x16(const float *w, size_t ldw, int nrows, int C, const float *xp, float *Y, int ldy, int ntok) {
    const float *wr[RB6];
    for (int r = 0; r < RB6; r++) wr[r] = w + (size_t)(r < nrows ? r : nrows - 1) * ldw;
    float32x4_t a[RB6][4];
    for (int r = 0; r < RB6; r++)
        for (int v = 0; v < 4; v++) a[r][v] = vdupq_n_f32(0.f);
    for (int c = 0; c < C; c++) {
        const float *x = xp + (size_t)c * K2C_GEMM_TB;
        float32x4_t x0 = vld1q_f32(x), x1 = vld1q_f32(x + 4), x2 = vld1q_f32(x + 8), x3 = vld1q_f32(x + 12);
        for (int r = 0; r < RB6; r++) {
            float wv = wr[r][c];
            a[r][0] = vfmaq_n_f32(a[r][0], x0, wv);
            a[r][1] = vfmaq_n_f32(a[r][1], x1, wv);
            a[r][2] = vfmaq_n_f32(a[r][2], x2, wv);
            a[r][3] = vfmaq_n_f32(a[r][3], x3, wv);
        }
    }
    float out[RB6][16];
    for (int r = 0; r < RB6; r++)
        for (int v = 0; v < 4; v++) vst1q_f32(out[r] + 4 * v, a[r][v]);
    for (int t = 0; t < ntok; t++)
        for (int r = 0; r < nrows; r++) Y[(size_t)t * ldy + r] = out[r][t];
}

/* Y[:, 0..nr) (row stride ldy) = packed X times the nr rows of w [nr, C]; token blocks outside, so one block of
 * inputs (16 x C floats) stays in cache while the tile's rows pass by. The panel is not needed. */
static void gemm_tile(const float *w, int nr, int C, const float *Xp, int T, float *Y, int ldy, float *panel) {
    (void)panel;
    for (int t0 = 0; t0 < T; t0 += 16) {
        int ntok = T - t0 < 16 ? T - t0 : 16;
        const float *xp = Xp + (size_t)(t0 / K2C_GEMM_TB) * C * K2C_GEMM_TB + t0 % K2C_GEMM_TB;
        for (int r = 0; r < nr; r += RB6)
            kernel_6x16(w + (size_t)r * C, (size_t)C, nr - r < RB6 ? nr - r : RB6, C, xp, Y + (size_t)t0 * ldy + r, ldy, ntok);
    }
}

#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
static void qg_kernel(QGN_ARGS, int ext) {
    (ext && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? qg_kn_dot : qg_kn_mull)(w, F, M, x, b, ntok, Y, ldy, nrows, fl);
}
#define QI_NEON
#include "kernels/int4_q8.h"      /* INT4 on the int8 paths (before quant_gemm.h, which unpacks with it) */
#include "kernels/quant_gemm.h"

const k2c_kernels k2c_kernels_neon = {
    .name = "neon",
    .dot_f32 = dot_f32,
    .dot_bf16 = dot_bf16,
    .dot_f16 = dot_f16,
    .dot_fp8 = dot_fp8,
    .dot_int4 = dot_int4,
    .dot_q8 = qd_dot_q8,
    .dot_q8_rows = qd_dot_q8_rows,
    .dot_int4_q8 = qi_dot_int4_q8,
    .int4_q8_eo = QI_EO,
    .gemm_q8 = qg_gemm_q8,
    .cvt_bf16 = cvt_bf16,
    .cvt_f16 = cvt_f16,
    .cvt_fp8 = cvt_fp8,
    .gemm_tile = gemm_tile,
    .gemm_tile_bf16 = NULL,
};
#endif
