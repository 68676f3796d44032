/* quant_dot_iq_x86.h — direct decode kernels of the GGUF codebook ("IQ") types for the x86 kernel files
 * (kern_avx2.c, kern_avx512.c): IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M. Included by
 * quant_dot_x86.h after quant_dot_kq_x86.h (whose helpers, kq_dot, kq_h8, KQ_STEP, ... they use); 256-bit code
 * shared by both tables, as IQ4_XS is.
 *
 * Each 256-element super-block is decoded in registers, 32 elements per vector, straight into the products:
 *
 *   - the grid entries of a vector (4 entries of 8 values for IQ1/IQ2, 8 of 4 for IQ3) are loaded into one
 *     vector by scalar table loads and insertions (vmovq + vpinsrq, vinserti128). Measured on Zen 5
 *     (bench/quant_dot.c, a loaded machine): vpgatherdq / vpgatherdd instead were 8-40% slower on every type,
 *     and a super-block's indices computed in vectors (stored, then loaded one by one as addresses) no faster
 *     than the scalar shifts and masks; unrolling the 8 vectors of a super-block (products kept in registers)
 *     gained 15-25%;
 *   - IQ2/IQ3 grid values are unsigned (IQ2: 8, 25, 43; IQ3: up to 62) and their signs stored apart, so the
 *     signs go onto the activations (vpsignb) and the grid bytes into vpdpbusd / vpmaddubsw as they are
 *     (pairs: 2 x 62 x 127 < 32767). The 7-bit sign indices (IQ2_XXS, IQ2_XS, IQ3_XXS: 7 bits, the 8th the
 *     parity) become their ksigns bytes in vectors (IQ3_XXS, IQ2_XS: kq_par7, the parity from a nibble table;
 *     16% and 10% faster) or are looked up in kq_iq_sgn, the ksigns table already expanded to 8 bytes of +-1
 *     per index (IQ2_XXS, where that measured the same or 3% faster);
 *     plain sign bits (IQ2_S, IQ3_S: a byte per 8 values) are spread to bytes with a shuffle, and and cmpeq;
 *   - IQ1 values are 8 (g + delta) with g in {-1, 0, 1}, delta = +-1/8: IQ1_S (one delta per 32) takes
 *     sum g q (vpsignb of q by g against ones) and its delta as a min term, delta times the group's s16;
 *     IQ1_M (a delta per 8) builds the int8 weights 8 g + delta (-9..9) and multiplies |w| by q with w's sign;
 *   - the 8 vectors' products become the 16 per-16 sums (kq_h8) and one float step per super-block scales
 *     them by the type's integer scales (2 s + 1, the common factor in d) and d16 (KQ_STEP).
 *
 * Every row is whole super-blocks (the formats have no 32-element block), so there are no tails. */
#ifndef QD_ATTR
#error "define QD_ATTR before including quant_dot_iq_x86.h"
#endif

/* the 8 vectors of a super-block: unrolled, so that their products stay in registers */
#define KQ_UNROLL8 _Pragma("GCC unroll 8")

/* ksigns expanded: entry i is 8 bytes, byte j = -1 where value j is negative (bit j of i for j < 7, the parity
 * of i for j = 7), else +1: vpsignb of q against it applies the signs */
#define KQ_SB(i, j) ((uint64_t)((((i) >> (j)) & 1) ? 0xFF : 0x01) << (8 * (j)))
#define KQ_PAR(i) (((i) ^ ((i) >> 1) ^ ((i) >> 2) ^ ((i) >> 3) ^ ((i) >> 4) ^ ((i) >> 5) ^ ((i) >> 6)) & 1)
#define KQ_SGN(i) (KQ_SB(i, 0) | KQ_SB(i, 1) | KQ_SB(i, 2) | KQ_SB(i, 3) | KQ_SB(i, 4) | KQ_SB(i, 5) | KQ_SB(i, 6) | \
                   ((uint64_t)(KQ_PAR(i) ? 0xFF : 0x01) << 56))
#define KQ_SGN8(i) KQ_SGN(i), KQ_SGN(i + 1), KQ_SGN(i + 2), KQ_SGN(i + 3), KQ_SGN(i + 4), KQ_SGN(i + 5), KQ_SGN(i + 6), KQ_SGN(i + 7)
static const uint64_t kq_iq_sgn[128] = {
    KQ_SGN8(0),  KQ_SGN8(8),  KQ_SGN8(16), KQ_SGN8(24), KQ_SGN8(32),  KQ_SGN8(40),  KQ_SGN8(48),  KQ_SGN8(56),
    KQ_SGN8(64), KQ_SGN8(72), KQ_SGN8(80), KQ_SGN8(88), KQ_SGN8(96), KQ_SGN8(104), KQ_SGN8(112), KQ_SGN8(120),
};
#undef KQ_SGN8
#undef KQ_SGN
#undef KQ_PAR
#undef KQ_SB

/* 4 entries of a 64-bit table, entry k in 64-bit lane k (scalar loads and insertions) */
KQ_INLINE __m256i kq_t64(const uint64_t *t, unsigned i0, unsigned i1, unsigned i2, unsigned i3) {
    return _mm256_set_epi64x((long long)t[i3], (long long)t[i2], (long long)t[i1], (long long)t[i0]);
}
/* 8 entries of a 32-bit table (IQ3 grids): indices p[j] | the 9th bit j of h (IQ3_S; 0 for IQ3_XXS) */
KQ_INLINE __m256i kq_t32(const uint32_t *t, const uint8_t *p, unsigned h) {
#define KQ_T(j) (int)t[p[j] | ((h << (8 - j)) & 256)]
    return _mm256_setr_epi32(KQ_T(0), KQ_T(1), KQ_T(2), KQ_T(3), KQ_T(4), KQ_T(5), KQ_T(6), KQ_T(7));
#undef KQ_T
}
/* the sign masks of the four 7-bit sign indices in bits 0-27 of s (IQ2_XXS) */
KQ_INLINE __m256i kq_sgn7x4(uint32_t s) { return kq_t64(kq_iq_sgn, s & 127, (s >> 7) & 127, (s >> 14) & 127, (s >> 21) & 127); }
/* q with the signs of 32 plain bits (bit j: value j negative), the 32 bits in every int32 lane of bits, applied */
KQ_INLINE __m256i kq_sgnb(__m256i q, __m256i bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i m = _mm256_shuffle_epi8(bits, spread);
    m = _mm256_cmpeq_epi8(_mm256_and_si256(m, bit), bit);           /* -1 where negative */
    return _mm256_sub_epi8(_mm256_xor_si256(q, m), m);
}
KQ_INLINE __m256i kq_sgn32(__m256i q, uint32_t bits) { return kq_sgnb(q, _mm256_set1_epi32((int)bits)); }
/* 32 7-bit sign indices, one a byte (bit 7 clear), to their ksigns bytes: bit 7 the parity of the other 7 (a
 * nibble table) */
KQ_INLINE __m256i kq_par7(__m256i v) {
    const __m256i m4 = _mm256_set1_epi8(15);
#define P_ (char)0x80
    const __m256i par = _mm256_setr_epi8(0, P_, P_, 0, P_, 0, 0, P_, P_, 0, 0, P_, 0, P_, P_, 0,
                                         0, P_, P_, 0, P_, 0, 0, P_, P_, 0, 0, P_, 0, P_, P_, 0);
#undef P_
    __m256i p = _mm256_xor_si256(_mm256_shuffle_epi8(par, _mm256_and_si256(v, m4)),
                                 _mm256_shuffle_epi8(par, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)));
    return _mm256_or_si256(v, p);
}
/* the four 7-bit sign indices in bits 0-27 of each int32 lane to their ksigns bytes, lane k then holding the 32
 * sign bits of sub-block k (IQ3_XXS) */
KQ_INLINE __m256i kq_ks(__m256i sw) {
    __m256i v = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(sw, _mm256_set1_epi32(0x7F)),
                                                _mm256_and_si256(_mm256_slli_epi32(sw, 1), _mm256_set1_epi32(0x7F00))),
                                _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi32(sw, 2), _mm256_set1_epi32(0x7F0000)),
                                                _mm256_and_si256(_mm256_slli_epi32(sw, 3), _mm256_set1_epi32(0x7F000000))));
    return kq_par7(v);
}
/* lane k of v in every lane */
KQ_INLINE __m256i kq_lane(__m256i v, int k) { return _mm256_permutevar8x32_epi32(v, _mm256_set1_epi32(k)); }
/* per-32 int32 scales (lane k: sub-block k) to the two per-16 float vectors (groups 0-7, 8-15) */
KQ_INLINE void kq_s32to16(__m256i s, __m256 *s0, __m256 *s1) {
    __m256 f = _mm256_cvtepi32_ps(s);
    *s0 = _mm256_permutevar8x32_ps(f, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    *s1 = _mm256_permutevar8x32_ps(f, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
}
/* 16 nibble scales (8 bytes at p, low nibble first) to 2 s + 1 per group, as two float vectors */
KQ_INLINE void kq_nib16(const uint8_t *p, __m256 *s0, __m256 *s1) {
    __m128i v = _mm_loadl_epi64((const __m128i *)p), m4 = _mm_set1_epi8(15);
    __m128i s = _mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));  /* group order */
    s = _mm_add_epi8(_mm_add_epi8(s, s), _mm_set1_epi8(1));
    *s0 = kq_u8f(s);
    *s1 = kq_u8f(_mm_srli_si128(s, 8));
}

/* IQ2_XXS: d, then per 32 (ib) a u32 of 4 grid indices (bytes) and a u32 of 4 sign indices (7 bits each) and the
 * scale (top 4 bits); x = d (2 s + 1) / 8 g */
KQ_INLINE float kq_iq2_xxs(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m256i odd = _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7);
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 66;
        const int8_t *q = x->q + 256 * i;
        __m256i p[8];
        KQ_UNROLL8
        for (int ib = 0; ib < 8; ib++) {
            uint32_t q0 = kq_u32(b + 2 + 8 * ib), q1 = kq_u32(b + 6 + 8 * ib);
            __m256i w = kq_t64(k2c_iq2xxs_grid, q0 & 255, (q0 >> 8) & 255, (q0 >> 16) & 255, q0 >> 24);
            p[ib] = kq_dot(vnni, w, _mm256_sign_epi8(kq_ld(q + 32 * ib), kq_sgn7x4(q1)));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        /* the scales: the top nibbles of the 8 sign words (the odd u32 of each half of the block) */
        __m256i sw = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(kq_ld(b + 2), odd),
                                        _mm256_permutevar8x32_epi32(kq_ld(b + 34), odd), 0xF0);
        __m256i s = _mm256_srli_epi32(sw, 28);
        s = _mm256_add_epi32(_mm256_add_epi32(s, s), _mm256_set1_epi32(1));
        __m256 S0, S1;
        kq_s32to16(s, &S0, &S1);
        KQ_STEP(is0, is1, S0, S1, 0.125f * kq_h(b), x->d16 + 16 * i, a);
    }
    return kq_hsum(a);
}

/* IQ2_XS: d, u16[32] (per 8 values a 9-bit grid index and a 7-bit sign index), scales[8] (a nibble per 16) */
KQ_INLINE float kq_iq2_xs(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 74;
        const int8_t *q = x->q + 256 * i;
        /* the 32 sign indices (the words' top 7 bits) as bytes in order (vpackuswb pairs 128-bit lanes: vpermq),
         * then their ksigns bytes */
        __m256i v = _mm256_packus_epi16(_mm256_srli_epi16(kq_ld(b + 2), 9), _mm256_srli_epi16(kq_ld(b + 34), 9));
        __m256i ks = kq_par7(_mm256_permute4x64_epi64(v, 0xD8));
        __m256i p[8];
        KQ_UNROLL8
        for (int k = 0; k < 8; k++) {
            uint64_t u;
            memcpy(&u, b + 2 + 8 * k, 8);
            unsigned w0 = (unsigned)u & 0xFFFF, w1 = (unsigned)(u >> 16) & 0xFFFF, w2 = (unsigned)(u >> 32) & 0xFFFF,
                     w3 = (unsigned)(u >> 48);
            __m256i w = kq_t64(k2c_iq2xs_grid, w0 & 511, w1 & 511, w2 & 511, w3 & 511);
            p[k] = kq_dot(vnni, w, kq_sgnb(kq_ld(q + 32 * k), kq_lane(ks, k)));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        __m256 S0, S1;
        kq_nib16(b + 66, &S0, &S1);
        KQ_STEP(is0, is1, S0, S1, 0.125f * kq_h(b), x->d16 + 16 * i, a);
    }
    return kq_hsum(a);
}

/* IQ2_S: d, qs[32] (grid index low bytes), signs[32] (a byte per 8 values), qh[8] (2 high index bits each, 4
 * indices per byte), scales[8] (a nibble per 16) */
KQ_INLINE float kq_iq2_s(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 82, *qs = b + 2, *sg = b + 34, *qh = b + 66;
        const int8_t *q = x->q + 256 * i;
        __m256i p[8];
        KQ_UNROLL8
        for (int k = 0; k < 8; k++) {
            unsigned h = qh[k];
            unsigned i0 = qs[4 * k] | (h & 3) << 8, i1 = qs[4 * k + 1] | (h & 12) << 6;
            unsigned i2 = qs[4 * k + 2] | (h & 48) << 4, i3 = qs[4 * k + 3] | (h & 192) << 2;
            __m256i w = kq_t64(k2c_iq2s_grid, i0, i1, i2, i3);
            p[k] = kq_dot(vnni, w, kq_sgn32(kq_ld(q + 32 * k), kq_u32(sg + 4 * k)));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        __m256 S0, S1;
        kq_nib16(b + 74, &S0, &S1);
        KQ_STEP(is0, is1, S0, S1, 0.125f * kq_h(b), x->d16 + 16 * i, a);
    }
    return kq_hsum(a);
}

/* IQ3_XXS: d, qs[64] (grid indices, 4 values each), then per 32 a u32 of 4 sign indices and the scale (top 4
 * bits); x = d (2 s + 1) / 4 g */
KQ_INLINE float kq_iq3_xxs(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 98, *qs = b + 2;
        const int8_t *q = x->q + 256 * i;
        /* the 8 sign words: their ksigns bytes in vectors, the scales in their top nibbles */
        __m256i sw = kq_ld(b + 66), ks = kq_ks(sw);
        __m256i p[8];
        KQ_UNROLL8
        for (int ib = 0; ib < 8; ib++)
            p[ib] = kq_dot(vnni, kq_t32(k2c_iq3xxs_grid, qs + 8 * ib, 0), kq_sgnb(kq_ld(q + 32 * ib), kq_lane(ks, ib)));
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        __m256i s = _mm256_srli_epi32(sw, 28);
        s = _mm256_add_epi32(_mm256_add_epi32(s, s), _mm256_set1_epi32(1));
        __m256 S0, S1;
        kq_s32to16(s, &S0, &S1);
        KQ_STEP(is0, is1, S0, S1, 0.25f * kq_h(b), x->d16 + 16 * i, a);
    }
    return kq_hsum(a);
}

/* IQ3_S: d, qs[64] (grid index low bytes), qh[8] (9th bits, 8 indices per byte), signs[32], scales[4] (a nibble
 * per 32); x = d (2 s + 1) g */
KQ_INLINE float kq_iq3_s(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 110, *qs = b + 2, *qh = b + 66, *sg = b + 74;
        const int8_t *q = x->q + 256 * i;
        __m256i p[8];
        KQ_UNROLL8
        for (int k = 0; k < 8; k++) {
            /* index j: qs[8k + j] | bit j of qh[k] << 8 */
            p[k] = kq_dot(vnni, kq_t32(k2c_iq3s_grid, qs + 8 * k, qh[k]), kq_sgn32(kq_ld(q + 32 * k), kq_u32(sg + 4 * k)));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        __m256i s = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)kq_u32(b + 106)),
                                                       _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                     _mm256_set1_epi32(15));
        s = _mm256_add_epi32(_mm256_add_epi32(s, s), _mm256_set1_epi32(1));
        __m256 S0, S1;
        kq_s32to16(s, &S0, &S1);
        KQ_STEP(is0, is1, S0, S1, kq_h(b), x->d16 + 16 * i, a);
    }
    return kq_hsum(a);
}

/* IQ1_S: d, qs[32] (grid index low bytes), u16 qh[8] (per 32: 3 high bits of each of its 4 indices, a 3-bit
 * scale, the delta's sign); x = d (2 s + 1) (g + delta), delta = +-1/8. sum (g + delta) q = sum g q + delta
 * sum q: the second is a min term on s16, M = -+(2 s + 1) with d / 8. */
KQ_INLINE float kq_iq1_s(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m256i one = _mm256_set1_epi8(1);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 50, *qs = b + 2, *qh = b + 34;
        const int8_t *q = x->q + 256 * i;
        __m256i p[8];
        KQ_UNROLL8
        for (int ib = 0; ib < 8; ib++) {
            unsigned h = qh[2 * ib] | qh[2 * ib + 1] << 8;
            unsigned i0 = qs[4 * ib] | (h & 7) << 8, i1 = qs[4 * ib + 1] | (h & 0x38) << 5;
            unsigned i2 = qs[4 * ib + 2] | (h & 0x1C0) << 2, i3 = qs[4 * ib + 3] | (h & 0xE00) >> 1;
            __m256i g = kq_t64(k2c_iq1s_grid, i0, i1, i2, i3);
            p[ib] = kq_dot(vnni, one, _mm256_sign_epi8(kq_ld(q + 32 * ib), g));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)qh));
        __m256i s = _mm256_and_si256(_mm256_srli_epi32(h, 12), _mm256_set1_epi32(7));
        s = _mm256_add_epi32(_mm256_add_epi32(s, s), _mm256_set1_epi32(1));
        /* M = -(2 s + 1) for a positive delta, + for a negative one (bit 15): (s ^ m) - m with m = 0 or -1 */
        __m256i neg = _mm256_cmpeq_epi32(_mm256_setzero_si256(), _mm256_srli_epi32(h, 15));       /* -1: positive */
        __m256i m = _mm256_sub_epi32(_mm256_xor_si256(s, neg), neg);
        __m256 S0, S1, M0, M1;
        kq_s32to16(s, &S0, &S1);
        kq_s32to16(m, &M0, &M1);
        float d = kq_h(b);
        KQ_STEP(is0, is1, S0, S1, d, x->d16 + 16 * i, a);
        KQ_MIN(M0, M1, 0.125f * d, x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

/* IQ1_M: qs[32] (grid index low bytes), qh[16] (a nibble per 8 values: 3 high index bits, the delta's sign),
 * u16 scales[4] (3 bits per 16; d's four nibbles in their top nibbles); x = d (2 s + 1) (g + delta). The delta
 * changes every 8 values, finer than s16, so the weights are built as 8 g + delta (-9..9): x = d / 8 (2 s + 1) w. */
KQ_INLINE float kq_iq1_m(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m256i eight = _mm256_set1_epi8(8), one = _mm256_set1_epi8(1);
    /* the delta's sign of value j of a vector: bit 3 or 7 of byte 0 or 1 of its two qh bytes */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m256i dbit = _mm256_setr_epi64x(0x0808080808080808ll, (long long)0x8080808080808080ull,
                                            0x0808080808080808ll, (long long)0x8080808080808080ull);
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 56, *qs = b, *qh = b + 32, *sc = b + 48;
        const int8_t *q = x->q + 256 * i;
        __m256i p[8];
        KQ_UNROLL8
        for (int k = 0; k < 8; k++) {
            unsigned h = qh[2 * k] | qh[2 * k + 1] << 8;
            unsigned i0 = qs[4 * k] | (h & 7) << 8, i1 = qs[4 * k + 1] | (h & 0x70) << 4;
            unsigned i2 = qs[4 * k + 2] | (h & 0x700), i3 = qs[4 * k + 3] | (h & 0x7000) >> 4;
            __m256i g = kq_t64(k2c_iq1s_grid, i0, i1, i2, i3);
            __m256i dm = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread);
            dm = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(dm, dbit), dbit), one);    /* -1 or +1 */
            __m256i w = _mm256_add_epi8(_mm256_sign_epi8(eight, g), dm);
            p[k] = kq_dot_s(vnni, w, kq_ld(q + 32 * k));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        uint64_t sw;
        memcpy(&sw, sc, 8);
        unsigned d16b = (unsigned)((sw >> 12) & 0xF) | (unsigned)((sw >> 24) & 0xF0) | (unsigned)((sw >> 36) & 0xF00) |
                        (unsigned)((sw >> 48) & 0xF000);
        /* group g: bits 3 (g % 4) of word g / 4 */
        __m256i wv = _mm256_castsi128_si256(_mm_cvtepu16_epi32(_mm_cvtsi64_si128((long long)sw)));
        const __m256i sh = _mm256_setr_epi32(0, 3, 6, 9, 0, 3, 6, 9), m7 = _mm256_set1_epi32(7);
        __m256i w01 = _mm256_permutevar8x32_epi32(wv, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
        __m256i w23 = _mm256_permutevar8x32_epi32(wv, _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3));
        __m256i s0 = _mm256_and_si256(_mm256_srlv_epi32(w01, sh), m7), s1 = _mm256_and_si256(_mm256_srlv_epi32(w23, sh), m7);
        s0 = _mm256_add_epi32(_mm256_add_epi32(s0, s0), _mm256_set1_epi32(1));
        s1 = _mm256_add_epi32(_mm256_add_epi32(s1, s1), _mm256_set1_epi32(1));
        KQ_STEP(is0, is1, _mm256_cvtepi32_ps(s0), _mm256_cvtepi32_ps(s1), 0.125f * _cvtsh_ss((unsigned short)d16b),
                x->d16 + 16 * i, a);
    }
    return kq_hsum(a);
}

KQ_PAIR(kq_iq2_xxs, kq_iq2_xxs)
KQ_PAIR(kq_iq2_xs, kq_iq2_xs)
KQ_PAIR(kq_iq2_s, kq_iq2_s)
KQ_PAIR(kq_iq3_xxs, kq_iq3_xxs)
KQ_PAIR(kq_iq3_s, kq_iq3_s)
KQ_PAIR(kq_iq1_s, kq_iq1_s)
KQ_PAIR(kq_iq1_m, kq_iq1_m)
