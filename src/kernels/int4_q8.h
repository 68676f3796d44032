/* int4_q8.h — INT4 weights (compressed-tensors "pack-quantized", as Kimi-K2-Thinking ships its routed experts)
 * on the int8-activation paths of the GGUF formats: the decode row dot against a k2c_q8x, and the unpacking
 * the int8 prompt GEMM (quant_gemm.h) runs on a tile. Compiled into every kern_<isa>.c after quant_dot.h (whose
 * QD_ATTR and qd_chunk it uses) and before quant_gemm.h; the file defines QI_AVX512, QI_AVX2 or QI_NEON first
 * to get its ISA's kernel, else the portable C one.
 *
 * The format (spec section 3): a row is cols / 8 little-endian int32 words, element j in bits 4 (j % 8) ..
 * 4 (j % 8) + 3 of word j / 8, so byte k holds elements 2k (low nibble) and 2k + 1 (high nibble); the value
 * is (nibble - 8) * scale[j / group], a BF16 scale per group of 32 (or any multiple of 32). That is Q4_0 with
 * another nibble order (Q4_0 puts elements k and k + 16 in byte k) and a BF16 instead of an fp16 scale, so the
 * same integer arithmetic applies: per block b of 32 with activation scale dx_b,
 *
 *     row . x  ~  sum_b  s_b dx_b sum_j (nib_j - 8) q_j  =  sum_b  s_b (dx_b U_b - 8 dx_b Q_b)
 *
 * with U_b = sum nib_j q_j (unsigned 4-bit times signed 8-bit: the operand order of vpmaddubsw and vpdpbusd,
 * so the x86 kernels need no sign trick) and dx_b Q_b = s16[2b] + s16[2b+1] of the k2c_q8x (the sum of q that
 * the formats with a min already need). It is the exact dot of the stored weights with the quantized x, up
 * to float rounding (tests/test_int4_q8.c checks it so).
 *
 * Gives
 *     static float qi_dot_int4_q8(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group,
 *                                 int ext)       the table's dot_int4_q8 (ext: VNNI / dotprod where present)
 *     QI_EO                                      the table's int4_q8_eo: 1 where that kernel wants x's codes
 *                                                reordered even / odd (AVX2), else 0
 *     static int qi_unpack_int4(const k2c_linear *l, int r, int j0, qd_chunk *u)
 *                                                qd_unpack for INT4 rows: signed int8 weights, F per 16, M = 0 */
#ifndef QD_ATTR
#error "include quant_dot.h (and its definitions) before int4_q8.h"
#endif

#ifndef QI_PF_DIST
#define QI_PF_DIST 2048     /* bytes ahead: the hardware prefetcher stops at 4 KB pages, decode streams rows */
#endif

/* 16 bytes of a block to its 32 values, signed (nibble - 8), in element order */
#if defined(QI_AVX512) || defined(QI_AVX2)
QD_ATTR static inline __m256i qi_nib32_x86(const uint8_t *b) {     /* unsigned nibbles, element order */
    const __m128i m4 = _mm_set1_epi8(15);
    __m128i v = _mm_loadu_si128((const __m128i *)b);
    __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
    return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
}
QD_ATTR static inline void qi_block(const uint8_t *b, int8_t *w) {
    _mm256_storeu_si256((__m256i *)w, _mm256_sub_epi8(qi_nib32_x86(b), _mm256_set1_epi8(8)));
}
#elif defined(QI_NEON)
QD_ATTR static inline void qi_block(const uint8_t *b, int8_t *w) {
    uint8x16_t v = vld1q_u8(b), lo = vandq_u8(v, vdupq_n_u8(15)), hi = vshrq_n_u8(v, 4);
    vst1q_s8(w, vsubq_s8(vreinterpretq_s8_u8(vzip1q_u8(lo, hi)), vdupq_n_s8(8)));
    vst1q_s8(w + 16, vsubq_s8(vreinterpretq_s8_u8(vzip2q_u8(lo, hi)), vdupq_n_s8(8)));
}
#else
QD_ATTR static inline void qi_block(const uint8_t *b, int8_t *w) {
    for (int k = 0; k < 16; k++) { w[2 * k] = (int8_t)((b[k] & 15) - 8); w[2 * k + 1] = (int8_t)((b[k] >> 4) - 8); }
}
#endif

QD_ATTR static inline float qi_scale(const uint16_t *scale, int j, int group) {
    return k2c_bf16_to_f32(scale[j / group]);
}

#if defined(QI_AVX512) || defined(QI_AVX2)
/* blocks b .. b+3: their weight scales f, the activations' dx and dx * (sum of q) per block */
QD_ATTR static inline void qi_scales4(const uint16_t *scale, const k2c_q8x *x, int b, int group, __m128 *f, __m128 *dx,
                                      __m128 *sq) {
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6), odd = _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7);
    if (group == 32)
        *f = _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)(scale + b))), 16));
    else
        *f = _mm_setr_ps(qi_scale(scale, 32 * b, group), qi_scale(scale, 32 * b + 32, group),
                         qi_scale(scale, 32 * b + 64, group), qi_scale(scale, 32 * b + 96, group));
    __m256 d8 = _mm256_loadu_ps(x->d16 + 2 * b), s8 = _mm256_loadu_ps(x->s16 + 2 * b);
    *dx = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(d8, even));
    *sq = _mm_add_ps(_mm256_castps256_ps128(_mm256_permutevar8x32_ps(s8, even)),
                     _mm256_castps256_ps128(_mm256_permutevar8x32_ps(s8, odd)));
}
#endif

QD_ATTR static int qi_unpack_int4(const k2c_linear *l, int r, int j0, qd_chunk *u) {
    int C = l->cols, left = C - j0, nb = left < 256 ? left / 32 : 8;
    const uint8_t *b = (const uint8_t *)l->w + (size_t)r * (size_t)(C / 2) + (size_t)(j0 / 2);
    const uint16_t *sc = l->scale_bf16 + (size_t)r * (size_t)l->scale_cols;
    for (int k = 0; k < nb; k++) {
        qi_block(b + 16 * k, u->w + 32 * k);
        u->F[2 * k] = u->F[2 * k + 1] = qi_scale(sc, j0 + 32 * k, l->block);
        u->M[2 * k] = u->M[2 * k + 1] = 0;
    }
    return 32 * nb;
}

/* One block the portable way (the ISA kernels' tails too): s dx sum (nib - 8) q */
QD_ATTR static inline float qi_block_dot(const uint8_t *b, const int8_t *q, float sdx) {
    int8_t w[32];
    qi_block(b, w);
    int s = 0;
    for (int k = 0; k < 32; k++) s += w[k] * q[k];
    return sdx * (float)s;
}

#if defined(QI_AVX512)
/* 4 blocks (64 bytes of weights, 128 elements) per step. Unpacking a 128-bit lane's low and high nibbles and
 * interleaving them (vpunpck{l,h}bw) gives block k's elements 0-15 in lane k of one vector and 16-31 in lane k
 * of another; the activations' 128-bit lanes are reordered to match (vshufi64x2), so each lane of the int32
 * sums belongs to one block and the block scales are a per-lane broadcast. */
#define QI_VNNI512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c")))
QI_VNNI512 static inline __m512i qi_dpbusd512(__m512i acc, __m512i u8, __m512i s8) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));  /* in place (see kern_avx512.c's qg_dpbusd512) */
    return acc;
}
#define QI512_BODY(VNNI)                                                                                             \
    const uint8_t *wb = (const uint8_t *)w;                                                                          \
    const __m512i m4 = _mm512_set1_epi8(15), ones = _mm512_set1_epi16(1);                                            \
    const __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);                         \
    (void)ones;                                                                                                      \
    __m512 acc = _mm512_setzero_ps();                                                                                \
    __m128 corr = _mm_setzero_ps();                                                                                  \
    int nb = n / 32, b = 0;                                                                                          \
    for (; b + 4 <= nb; b += 4) {                                                                                    \
        const uint8_t *p = wb + (size_t)b * 16;                                                                      \
        _mm_prefetch((const char *)p + QI_PF_DIST, _MM_HINT_T0);                                                     \
        __m512i v = _mm512_loadu_si512(p);                                                                           \
        __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);                    \
        __m512i A = _mm512_unpacklo_epi8(lo, hi), B = _mm512_unpackhi_epi8(lo, hi);                                  \
        __m512i q0 = _mm512_loadu_si512(x->q + (size_t)b * 32), q1 = _mm512_loadu_si512(x->q + (size_t)b * 32 + 64); \
        __m512i qa = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));                                          \
        __m512i qb = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));                                          \
        __m512i is;                                                                                                  \
        if (VNNI) is = qi_dpbusd512(qi_dpbusd512(_mm512_setzero_si512(), A, qa), B, qb);                             \
        else is = _mm512_madd_epi16(_mm512_add_epi16(_mm512_maddubs_epi16(A, qa), _mm512_maddubs_epi16(B, qb)), ones);\
        __m128 f, dx, sq;                                                                                            \
        qi_scales4(scale, x, b, group, &f, &dx, &sq);                                                                \
        __m512 sc = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(_mm_mul_ps(f, dx)));                         \
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), sc, acc);                                                      \
        corr = _mm_fmadd_ps(f, sq, corr);                                                                            \
    }                                                                                                                \
    corr = _mm_add_ps(corr, _mm_movehl_ps(corr, corr));                                                              \
    corr = _mm_add_ss(corr, _mm_movehdup_ps(corr));                                                                  \
    float s = _mm512_reduce_add_ps(acc) - 8.0f * _mm_cvtss_f32(corr);                                                \
    for (; b < nb; b++)                                                                                              \
        s += qi_block_dot(wb + (size_t)b * 16, x->q + (size_t)b * 32, qi_scale(scale, 32 * b, group) * x->d16[2 * b]);\
    return s;

QI_VNNI512 static float qi_dot512_vnni(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group) {
    QI512_BODY(1)
}
QD_ATTR static float qi_dot512_bw(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group) {
    QI512_BODY(0)
}
QD_ATTR static float qi_dot_int4_q8(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group, int ext) {
    return (ext && __builtin_cpu_supports("avx512vnni") ? qi_dot512_vnni : qi_dot512_bw)(w, x, n, scale, group);
}

#elif defined(QI_AVX2)
/* Against the codes reordered even / odd (k2c_kernels.int4_q8_eo: per 64 elements the even codes of both
 * blocks, then their odd codes; a last 32 as its 16 even then 16 odd): a byte's low nibble meets an even
 * element's code and its high nibble the next odd one, so 32 bytes of weights (two blocks) are two masks, two
 * vpmaddubsw against two plain loads, with no unpacking or lane crossing (the element-order kernel's nibble
 * interleave and activation permutes made INT4 decode compute-bound on AMD Zen 2: 0.55x ik_llama.cpp's Q4_0).
 * Lanes 0-3 of the int32 sums are the first block, 4-7 the second. Four blocks per step into two accumulators,
 * their four scales converted at once. The pairs fit int16 (2 x 15 x 127), and so do two of them added.
 * AVX-VNNI's vpdpbusd where the CPU has it. */
#define QI_VNNI256 __attribute__((target("avx2,fma,f16c,avxvnni")))
QI_VNNI256 static inline __m256i qi_dpbusd256(__m256i acc, __m256i u8, __m256i s8) {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u8), "x"(s8));
    return acc;
}
/* int32 sums of the two blocks at wb (32 bytes) against their 64 reordered codes at q */
#define QI256_PAIR(VNNI, wb, q, out)                                                                                 \
    do {                                                                                                            \
        __m256i v_ = _mm256_loadu_si256((const __m256i *)(wb));                                                     \
        __m256i lo_ = _mm256_and_si256(v_, m4), hi_ = _mm256_and_si256(_mm256_srli_epi16(v_, 4), m4);              \
        __m256i qe_ = _mm256_loadu_si256((const __m256i *)(q)), qo_ = _mm256_loadu_si256((const __m256i *)((q) + 32)); \
        if (VNNI) out = qi_dpbusd256(qi_dpbusd256(_mm256_setzero_si256(), lo_, qe_), hi_, qo_);                     \
        else out = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo_, qe_), _mm256_maddubs_epi16(hi_, qo_)), ones); \
    } while (0)
#define QI256_BODY(VNNI)                                                                                             \
    const uint8_t *wb = (const uint8_t *)w;                                                                          \
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);                                            \
    const __m256i bl01 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), bl23 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3); \
    (void)ones;                                                                                                      \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                                                   \
    __m128 corr = _mm_setzero_ps();                                                                                  \
    int nb = n / 32, b = 0;                                                                                          \
    for (; b + 4 <= nb; b += 4) {                                                                                    \
        const uint8_t *p = wb + (size_t)b * 16;                                                                      \
        _mm_prefetch((const char *)p + QI_PF_DIST, _MM_HINT_T0);                                                     \
        __m256i is0, is1;                                                                                            \
        QI256_PAIR(VNNI, p, x->q + (size_t)b * 32, is0);                                                             \
        QI256_PAIR(VNNI, p + 32, x->q + (size_t)b * 32 + 64, is1);                                                   \
        __m128 f, dx, sq;                                                                                            \
        qi_scales4(scale, x, b, group, &f, &dx, &sq);                                                                \
        __m256 sdx = _mm256_castps128_ps256(_mm_mul_ps(f, dx));                                                      \
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is0), _mm256_permutevar8x32_ps(sdx, bl01), acc0);                  \
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is1), _mm256_permutevar8x32_ps(sdx, bl23), acc1);                  \
        corr = _mm_fmadd_ps(f, sq, corr);                                                                            \
    }                                                                                                                \
    for (; b + 2 <= nb; b += 2) {                                                                                    \
        __m256i is0;                                                                                                 \
        QI256_PAIR(VNNI, wb + (size_t)b * 16, x->q + (size_t)b * 32, is0);                                           \
        float f0 = qi_scale(scale, 32 * b, group), f1 = qi_scale(scale, 32 * b + 32, group);                         \
        __m256 sc = _mm256_set_m128(_mm_set1_ps(f1 * x->d16[2 * b + 2]), _mm_set1_ps(f0 * x->d16[2 * b]));           \
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is0), sc, acc0);                                                   \
        corr = _mm_add_ss(corr, _mm_set_ss(f0 * (x->s16[2 * b] + x->s16[2 * b + 1]) +                                \
                                           f1 * (x->s16[2 * b + 2] + x->s16[2 * b + 3])));                           \
    }                                                                                                                \
    acc0 = _mm256_add_ps(acc0, acc1);                                                                                \
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));                             \
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));                                                                          \
    corr = _mm_add_ps(corr, _mm_movehl_ps(corr, corr));                                                              \
    corr = _mm_add_ss(corr, _mm_movehdup_ps(corr));                                                                  \
    float s = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h))) - 8.0f * _mm_cvtss_f32(corr);                         \
    if (b < nb) {           /* a last block of 32: its 16 even codes, then 16 odd */                                 \
        const uint8_t *p = wb + (size_t)b * 16;                                                                      \
        const int8_t *q = x->q + (size_t)b * 32;                                                                     \
        int is = 0;                                                                                                  \
        for (int k = 0; k < 16; k++) is += ((p[k] & 15) - 8) * q[k] + ((p[k] >> 4) - 8) * q[16 + k];                \
        s += qi_scale(scale, 32 * b, group) * x->d16[2 * b] * (float)is;                                            \
    }                                                                                                                \
    return s;

QI_VNNI256 static float qi_dot256_vnni(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group) {
    QI256_BODY(1)
}
QD_ATTR static float qi_dot256(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group) {
    QI256_BODY(0)
}
QD_ATTR static float qi_dot_int4_q8(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group, int ext) {
    return (ext && k2c_cpu_has_avxvnni() ? qi_dot256_vnni : qi_dot256)(w, x, n, scale, group);
}
#define QI_EO 1         /* the table's int4_q8_eo */

#elif defined(QI_NEON)
/* Per block: the signed weights (nibble - 8) in element order (vzip of the low and high nibbles), then SDOT
 * into int32 where the CPU has dotprod, else SMULL/SMLAL pairs in int16 (4 products of |w| <= 8, |q| <= 127
 * per lane fit). */
__attribute__((target("arch=armv8.2-a+dotprod"))) static float qi_dot_neon_dot(const uint32_t *w, const k2c_q8x *x, int n,
                                                                               const uint16_t *scale, int group) {
    const uint8_t *wb = (const uint8_t *)w;
    float32x4_t acc = vdupq_n_f32(0);
    int nb = n / 32;
    for (int b = 0; b < nb; b++) {
        uint8x16_t v = vld1q_u8(wb + (size_t)b * 16), lo = vandq_u8(v, vdupq_n_u8(15)), hi = vshrq_n_u8(v, 4);
        int8x16_t a = vsubq_s8(vreinterpretq_s8_u8(vzip1q_u8(lo, hi)), vdupq_n_s8(8));
        int8x16_t c = vsubq_s8(vreinterpretq_s8_u8(vzip2q_u8(lo, hi)), vdupq_n_s8(8));
        int32x4_t is = vdotq_s32(vdotq_s32(vdupq_n_s32(0), a, vld1q_s8(x->q + (size_t)b * 32)), c,
                                 vld1q_s8(x->q + (size_t)b * 32 + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(is), qi_scale(scale, 32 * b, group) * x->d16[2 * b]);
    }
    return vaddvq_f32(acc);
}
static float qi_dot_neon_mull(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group) {
    const uint8_t *wb = (const uint8_t *)w;
    float s = 0;
    int nb = n / 32;
    for (int b = 0; b < nb; b++) {
        uint8x16_t v = vld1q_u8(wb + (size_t)b * 16), lo = vandq_u8(v, vdupq_n_u8(15)), hi = vshrq_n_u8(v, 4);
        int8x16_t a = vsubq_s8(vreinterpretq_s8_u8(vzip1q_u8(lo, hi)), vdupq_n_s8(8));
        int8x16_t c = vsubq_s8(vreinterpretq_s8_u8(vzip2q_u8(lo, hi)), vdupq_n_s8(8));
        int8x16_t q0 = vld1q_s8(x->q + (size_t)b * 32), q1 = vld1q_s8(x->q + (size_t)b * 32 + 16);
        int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(q0));
        p = vmlal_high_s8(p, a, q0);
        p = vmlal_s8(p, vget_low_s8(c), vget_low_s8(q1));
        p = vmlal_high_s8(p, c, q1);
        s += qi_scale(scale, 32 * b, group) * x->d16[2 * b] * (float)vaddlvq_s16(p);
    }
    return s;
}
static float qi_dot_int4_q8(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group, int ext) {
    return (ext && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? qi_dot_neon_dot : qi_dot_neon_mull)(w, x, n, scale, group);
}

#else
QD_ATTR static float qi_dot_int4_q8(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group, int ext) {
    const uint8_t *wb = (const uint8_t *)w;
    float s = 0;
    (void)ext;
    for (int b = 0; b < n / 32; b++)
        s += qi_block_dot(wb + (size_t)b * 16, x->q + (size_t)b * 32, qi_scale(scale, 32 * b, group) * x->d16[2 * b]);
    return s;
}
#endif
#ifndef QI_EO
#define QI_EO 0
#endif
