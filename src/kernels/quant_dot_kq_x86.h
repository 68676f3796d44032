/* quant_dot_kq_x86.h — direct decode kernels of the K-quants, IQ4_XS, Q4_0, Q5_0, IQ4_NL and Q8_0 for the x86 kernel
 * files (kern_avx2.c, kern_avx512.c), included at the end of quant_dot_x86.h, before quant_dot.h.
 *
 * quant_dot.h's generic path unpacks each 256-element super-block into int8 w[256] and float F[16], M[16] in
 * memory, reads them back as vectors and scales every 16 elements in float: the stores, the reloads (which
 * wait for the store buffer) and the per-16 float step made these types compute-bound at a third of the read
 * bandwidth. Here each super-block is unpacked in registers, straight into the integer products:
 *
 *   - the weights become unsigned bytes (the K-quants' codes are unsigned: Q4_K 0..15, Q5_K 0..31, Q6_K 0..63,
 *     Q2_K 0..3, Q3_K 0..7), so one vpdpbusd (VNNI: u8 x s8, 4 products summed into each int32 lane) or
 *     vpmaddubsw + vpmaddwd (pairs: at most 2 x 63 x 127 < 32767, no saturation) takes them against q as is.
 *     The formats' offsets (Q6_K's -32, Q3_K's -4) are moved out of the products: sum (u - o) q = sum u q -
 *     o sum q, and dx sum q over 16 elements is s16, so they act like a min of o times the group's scale;
 *   - the 8 chunks of 32 products of a super-block are added down to the 16 per-16 sums by 6 vphaddd (two
 *     vectors, groups 0-7 and 8-15, in order after one vpermd each), which stay int32;
 *   - the float step is then two vectors per super-block: F (the weight scale of each group) times
 *     isum * d16, and the min term M * s16, in separate accumulators (no FMA latency chain per super-block);
 *   - without VNNI, on activations with one dx per super-block (span 256), the *_s kernels below take the
 *     sub-block scales into vpmaddwd instead, with no per-group sums at all.
 *
 * IQ4_XS's and IQ4_NL's levels are signed (-127..113): vpshufb looks them up; with VNNI they are taken + 128 as
 * unsigned bytes and the offset leaves the products as a min term, without it the products use |w| against q
 * with w's sign (both sides then fit vpmaddubsw: 2 x 127 x 127 < 32767, which 241 x 127 would not).
 *
 * The including file defines QD_ATTR and QD_DPBUSD (the vpdpbusd mnemonic: "{vex} vpdpbusd" for AVX-VNNI,
 * "vpdpbusd" for the EVEX AVX512-VNNI form). ext (qd_dot_direct's argument) selects VNNI; the caller passes
 * it only where the CPU has it, and the kernels table's dot_q8_base runs the same kernels without, so the tests
 * check both on one machine. Rows of the K-quants are whole super-blocks, so there are no tails.
 *
 * kern_avx512.c (QD_X86_512) takes Q2_K..Q6_K from 512-bit versions (kq_*512): two 32-element chunks per
 * vector, their bytes paired with the activations by 256-bit half swaps or broadcasts, per-half shift counts
 * by 64-bit variable shifts, and the 16 group sums of a super-block gathered in one vector (kq_h16 + one
 * vpermd) for a single 16-wide float step. IQ4_XS keeps the 256-bit kernel there. */
#ifndef QD_ATTR
#error "define QD_ATTR before including quant_dot_kq_x86.h"
#endif
#ifndef QD_DPBUSD
#error "define QD_DPBUSD (the vpdpbusd mnemonic) before including quant_dot_kq_x86.h"
#endif

#define KQ_INLINE QD_ATTR static inline __attribute__((always_inline))

/* vpdpbusd from zero in inline assembly: the function then needs no VNNI target attribute (the kernels are
 * compiled once for both paths), and GCC 12 does not copy its accumulator around as it does the intrinsic's */
KQ_INLINE __m256i kq_dp(__m256i u8, __m256i s8) {
    __m256i acc = _mm256_setzero_si256();
    __asm__(QD_DPBUSD " %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
    return acc;
}
/* 8 int32 lanes, lane k the sum of the products of bytes 4k..4k+3: w unsigned, q signed */
KQ_INLINE __m256i kq_dot(int vnni, __m256i w, __m256i q) {
    if (vnni) return kq_dp(w, q);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, q), _mm256_set1_epi16(1));
}
/* the same with signed w: |w| against q with w's sign */
KQ_INLINE __m256i kq_dot_s(int vnni, __m256i w, __m256i q) {
    return kq_dot(vnni, _mm256_abs_epi8(w), _mm256_sign_epi8(q, w));
}
KQ_INLINE __m256i kq_ld(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* four chunks' lanes (chunk c: lanes 0-3 group 2c, 4-7 group 2c + 1) to the 8 group sums, in order */
KQ_INLINE __m256i kq_h8(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));  /* [0 2 4 6 | 1 3 5 7] */
    return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
/* 8 bytes (unsigned, signed) to 8 floats */
KQ_INLINE __m256 kq_u8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
KQ_INLINE __m256 kq_i8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
KQ_INLINE float kq_hsum(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}
KQ_INLINE float kq_h(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }
KQ_INLINE uint32_t kq_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The float step of one super-block: a += d * sum_g S[g] * isum[g] * d16[g] - (dm * sum_g M[g] * s16[g]) into
 * am; S, M per group (lo: groups 0-7, hi: 8-15). Q3_K/Q6_K pass their offset as M = o S and dm = d. */
#define KQ_STEP(is0, is1, S0, S1, d, d16, a)                                                                      \
    do {                                                                                                       \
        __m256 t_ = _mm256_mul_ps(S0, _mm256_mul_ps(_mm256_cvtepi32_ps(is0), _mm256_loadu_ps(d16)));           \
        t_ = _mm256_fmadd_ps(S1, _mm256_mul_ps(_mm256_cvtepi32_ps(is1), _mm256_loadu_ps((d16) + 8)), t_);        \
        a = _mm256_fmadd_ps(t_, _mm256_set1_ps(d), a);                                                         \
    } while (0)
#define KQ_MIN(M0, M1, dm, s16, am)                                                                               \
    do {                                                                                                       \
        __m256 t_ = _mm256_fmadd_ps(M1, _mm256_loadu_ps((s16) + 8), _mm256_mul_ps(M0, _mm256_loadu_ps(s16)));  \
        am = _mm256_fmadd_ps(t_, _mm256_set1_ps(dm), am);                                                      \
    } while (0)

/* Q4_K (five = 0) and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins in 12 bytes; the nibbles of bytes
 * 32p..32p+31 are sub-blocks 2p (low) and 2p + 1 (high); Q5_K's fifth bit of element l of sub-block g is bit
 * g of qh[l]. */
KQ_INLINE float kq_q45_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni, int five) {
    const __m256i m4 = _mm256_set1_epi8(15), b5 = _mm256_set1_epi8(16);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    const int bb = five ? 176 : 144;
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * bb, *qs = b + (five ? 48 : 16);
        const int8_t *q = x->q + 256 * i;
        __m256i p[8], hb = five ? kq_ld(b + 16) : _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            __m256i v = kq_ld(qs + 32 * k);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five) {
                /* bit g of each byte to bit 4 (16-bit shifts: the mask drops what crosses from the neighbour) */
                int g = 2 * k;
                __m256i h0 = g < 4 ? _mm256_slli_epi16(hb, 4 - g) : _mm256_srli_epi16(hb, g - 4);
                __m256i h1 = g + 1 < 4 ? _mm256_slli_epi16(hb, 3 - g) : _mm256_srli_epi16(hb, g - 3);
                lo = _mm256_or_si256(lo, _mm256_and_si256(h0, b5));
                hi = _mm256_or_si256(hi, _mm256_and_si256(h1, b5));
            }
            p[2 * k] = kq_dot(vnni, lo, kq_ld(q + 64 * k));
            p[2 * k + 1] = kq_dot(vnni, hi, kq_ld(q + 64 * k + 32));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        /* the 12 scale bytes as three words: scales 0-3 and mins 0-3 are the low 6 bits of words 0 and 1;
         * scales (mins) 4-7 the low (high) nibbles of word 2 with the top two bits of word 0 (1) above them */
        uint32_t u0 = kq_u32(b + 4), u1 = kq_u32(b + 8), u2 = kq_u32(b + 12);
        uint64_t sc = (u0 & 0x3f3f3f3fu) | (uint64_t)((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
        uint64_t mn = (u1 & 0x3f3f3f3fu) | (uint64_t)(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u)) << 32;
        __m128i sm = _mm_set_epi64x((long long)mn, (long long)sc);
        __m128i s2 = _mm_unpacklo_epi8(sm, sm), m2 = _mm_unpackhi_epi8(sm, sm);    /* each sub-block's twice */
        KQ_STEP(is0, is1, kq_u8f(s2), kq_u8f(_mm_srli_si128(s2, 8)), kq_h(b), x->d16 + 16 * i, a);
        KQ_MIN(kq_u8f(m2), kq_u8f(_mm_srli_si128(m2, 8)), kq_h(b + 2), x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

/* Q6_K: per half h (128 elements) ql[64], qh[32]; element 32p + l is a nibble of ql (low: p = 0, 1 from ql[l],
 * ql[l + 32]; high: p = 2, 3) with bits 2p, 2p + 1 of qh[l] above it; int8 scales per 16; x = d sc (u - 32). */
KQ_INLINE float kq_q6_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 210;
        const int8_t *q = x->q + 256 * i;
        __m256i is[2];
        for (int h = 0; h < 2; h++) {
            __m256i l0 = kq_ld(b + 64 * h), l1 = kq_ld(b + 64 * h + 32), hh = kq_ld(b + 128 + 32 * h);
            __m256i w0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 4), m30));
            __m256i w1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 2), m30));
            __m256i w2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hh, m30));
            __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(hh, 2), m30));
            const int8_t *qh = q + 128 * h;
            is[h] = kq_h8(kq_dot(vnni, w0, kq_ld(qh)), kq_dot(vnni, w1, kq_ld(qh + 32)),
                          kq_dot(vnni, w2, kq_ld(qh + 64)), kq_dot(vnni, w3, kq_ld(qh + 96)));
        }
        __m128i sv = _mm_loadu_si128((const __m128i *)(b + 192));
        __m256 s0 = kq_i8f(sv), s1 = kq_i8f(_mm_srli_si128(sv, 8));
        float d = kq_h(b + 208);
        KQ_STEP(is[0], is[1], s0, s1, d, x->d16 + 16 * i, a);
        KQ_MIN(s0, s1, 32.0f * d, x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

/* Q2_K: element 128h + 32p + l is bits 2p, 2p + 1 of qs[32h + l]; per 16 a 4-bit scale (low) and min (high). */
KQ_INLINE float kq_q2_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(15);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 84;
        const int8_t *q = x->q + 256 * i;
        __m256i is[2];
        for (int h = 0; h < 2; h++) {
            __m256i v = kq_ld(b + 16 + 32 * h);
            const int8_t *qh = q + 128 * h;
            is[h] = kq_h8(kq_dot(vnni, _mm256_and_si256(v, m3), kq_ld(qh)),
                          kq_dot(vnni, _mm256_and_si256(_mm256_srli_epi16(v, 2), m3), kq_ld(qh + 32)),
                          kq_dot(vnni, _mm256_and_si256(_mm256_srli_epi16(v, 4), m3), kq_ld(qh + 64)),
                          kq_dot(vnni, _mm256_and_si256(_mm256_srli_epi16(v, 6), m3), kq_ld(qh + 96)));
        }
        __m128i sv = _mm_loadu_si128((const __m128i *)b);
        __m128i sl = _mm_and_si128(sv, m4), sh = _mm_and_si128(_mm_srli_epi16(sv, 4), m4);
        KQ_STEP(is[0], is[1], kq_u8f(sl), kq_u8f(_mm_srli_si128(sl, 8)), kq_h(b + 80), x->d16 + 16 * i, a);
        KQ_MIN(kq_u8f(sh), kq_u8f(_mm_srli_si128(sh, 8)), kq_h(b + 82), x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

/* bit k (0..7) of each byte of v to bit 2 */
KQ_INLINE __m256i kq_bit2(__m256i v, int k) {
    __m256i s = k < 2 ? _mm256_slli_epi16(v, 2 - k) : _mm256_srli_epi16(v, k - 2);
    return _mm256_and_si256(s, _mm256_set1_epi8(4));
}
/* Q3_K: Q2_K's two low bits with a third in hmask (bit 4h + p of hmask[l]); the value is u - 4 for u = the
 * three bits; 6-bit signed scales per 16 (low nibbles in 8 bytes, the top two bits in 4 more). */
KQ_INLINE float kq_q3_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 110;
        const int8_t *q = x->q + 256 * i;
        __m256i hm = kq_ld(b), is[2];
        for (int h = 0; h < 2; h++) {
            __m256i v = kq_ld(b + 32 + 32 * h);
            const int8_t *qh = q + 128 * h;
            __m256i w0 = _mm256_or_si256(_mm256_and_si256(v, m3), kq_bit2(hm, 4 * h));
            __m256i w1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 2), m3), kq_bit2(hm, 4 * h + 1));
            __m256i w2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m3), kq_bit2(hm, 4 * h + 2));
            __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 6), m3), kq_bit2(hm, 4 * h + 3));
            is[h] = kq_h8(kq_dot(vnni, w0, kq_ld(qh)), kq_dot(vnni, w1, kq_ld(qh + 32)),
                          kq_dot(vnni, w2, kq_ld(qh + 64)), kq_dot(vnni, w3, kq_ld(qh + 96)));
        }
        /* scale g: low nibble of byte g (g < 8) or high nibble of byte g - 8; top bits 2 (g / 4) of byte 8 + g % 4 */
        uint64_t lo8;
        memcpy(&lo8, b + 96, 8);
        uint32_t hh = kq_u32(b + 104);
        const uint32_t m2 = 0x03030303u;
        __m128i lo = _mm_set_epi64x((long long)((lo8 >> 4) & 0x0f0f0f0f0f0f0f0full), (long long)(lo8 & 0x0f0f0f0f0f0f0f0full));
        __m128i hi = _mm_set_epi32((int)((hh >> 6) & m2), (int)((hh >> 4) & m2), (int)((hh >> 2) & m2), (int)(hh & m2));
        __m128i sv = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
        __m256 s0 = kq_i8f(sv), s1 = kq_i8f(_mm_srli_si128(sv, 8));
        float d = kq_h(b + 108);
        KQ_STEP(is[0], is[1], s0, s1, d, x->d16 + 16 * i, a);
        KQ_MIN(s0, s1, 4.0f * d, x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

/* IQ4_XS: sub-block g (32) is the 16 bytes qs[16g..]: low nibbles elements 0-15, high 16-31, each an index into
 * the 16 signed levels; 6-bit scales (low nibbles in 4 bytes, top two bits in a 16-bit word), x = d (ls - 32) w */
KQ_INLINE float kq_iq4_xs(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m256i m4 = _mm256_set1_epi8(15);
    /* with VNNI the levels + 128 (unsigned) and the offset out of the products as a min term, as IQ4_NL's */
    const __m256i lut = _mm256_add_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k2c_iq4_nl)),
                                        _mm256_set1_epi8(vnni ? (char)0x80 : 0));
    const __m256i shl = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), shh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 136;
        const int8_t *q = x->q + 256 * i;
        __m256i p[8];
        for (int k = 0; k < 4; k++) {
            __m256i v = kq_ld(b + 8 + 32 * k);
            __m256i tl = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, m4));
            __m256i th = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            __m256i w0 = _mm256_permute2x128_si256(tl, th, 0x20), w1 = _mm256_permute2x128_si256(tl, th, 0x31);
            p[2 * k] = vnni ? kq_dot(1, w0, kq_ld(q + 64 * k)) : kq_dot_s(0, w0, kq_ld(q + 64 * k));
            p[2 * k + 1] = vnni ? kq_dot(1, w1, kq_ld(q + 64 * k + 32)) : kq_dot_s(0, w1, kq_ld(q + 64 * k + 32));
        }
        __m256i is0 = kq_h8(p[0], p[1], p[2], p[3]), is1 = kq_h8(p[4], p[5], p[6], p[7]);
        /* the 8 scales as int32 lanes: variable shifts of the broadcast words */
        __m256i ls = _mm256_or_si256(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)kq_u32(b + 4)), shl), _mm256_set1_epi32(15)),
                                     _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(b[2] | b[3] << 8), shh),
                                                                        _mm256_set1_epi32(3)), 4));
        __m256 s = _mm256_cvtepi32_ps(_mm256_sub_epi32(ls, _mm256_set1_epi32(32)));
        __m256 s0 = _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
        __m256 s1 = _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
        KQ_STEP(is0, is1, s0, s1, kq_h(b), x->d16 + 16 * i, a);
        if (vnni) KQ_MIN(s0, s1, 128.0f * kq_h(b), x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

/* ---- the K-quants without VNNI on activations with one dx per super-block (x->span 256, ggml's Q8_K; the
 * kernels table's q8x_span asks the matvec for them). vpmaddwd takes the sub-block scales as int16 in place of
 * the ones, so a super-block's products add up in one int32 vector and take one float step: no per-group sums
 * (vphaddd), no per-group float multiplies. The offsets and mins stay the float min term of the kernels above.
 * Bounds: a vpmaddubsw pair <= 2 x 63 x 127 = 16002 (IQ4_XS's |w| pairs 2 x 127 x 127 = 32258, scales |s| <= 32);
 * times a scale (|s| <= 128) two per lane, 8 chunks per super-block: < 2^26. */
/* the scales of 16-element groups 0..15 as int16, even groups in the low 128 bits, odd ones in the high:
 * chunk c (elements 32c..32c+31) takes its scales with kq_sc16(S, c) */
KQ_INLINE __m256i kq_eo16(__m128i s8, int sign) {
    __m128i eo = _mm_shuffle_epi8(s8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    return sign ? _mm256_cvtepi8_epi16(eo) : _mm256_cvtepu8_epi16(eo);
}
/* int16 lane j of the result: S's lane c of j's 128-bit half (kq_eo16: group 2c low, 2c + 1 high) */
KQ_INLINE __m256i kq_sc16(__m256i S, int c) { return _mm256_shuffle_epi8(S, _mm256_set1_epi16((short)(0x0100 + 0x0202 * c))); }
/* chunk products scaled: w unsigned, q signed, sc the int16 scales of its lanes */
KQ_INLINE __m256i kq_dsc(__m256i w, const int8_t *q, __m256i sc) { return _mm256_madd_epi16(_mm256_maddubs_epi16(w, kq_ld(q)), sc); }

KQ_INLINE float kq_q45_k_s(const uint8_t *row, const k2c_q8x *x, int n, int five) {
    const __m256i m4 = _mm256_set1_epi8(15), b5 = _mm256_set1_epi8(16);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    const int bb = five ? 176 : 144;
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * bb, *qs = b + (five ? 48 : 16);
        const int8_t *q = x->q + 256 * i;
        uint32_t u0 = kq_u32(b + 4), u1 = kq_u32(b + 8), u2 = kq_u32(b + 12);
        uint64_t sc = (u0 & 0x3f3f3f3fu) | (uint64_t)((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
        uint64_t mn = (u1 & 0x3f3f3f3fu) | (uint64_t)(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u)) << 32;
        /* the 8 sub-block scales as int16 in both halves: sub-block g's with the control of kq_sc16(., g) */
        __m256i S = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
        __m256i acc = _mm256_setzero_si256(), hb = five ? kq_ld(b + 16) : _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            __m256i v = kq_ld(qs + 32 * k);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five) {
                int g = 2 * k;
                __m256i h0 = g < 4 ? _mm256_slli_epi16(hb, 4 - g) : _mm256_srli_epi16(hb, g - 4);
                __m256i h1 = g + 1 < 4 ? _mm256_slli_epi16(hb, 3 - g) : _mm256_srli_epi16(hb, g - 3);
                lo = _mm256_or_si256(lo, _mm256_and_si256(h0, b5));
                hi = _mm256_or_si256(hi, _mm256_and_si256(h1, b5));
            }
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(kq_dsc(lo, q + 64 * k, kq_sc16(S, 2 * k)),
                                                         kq_dsc(hi, q + 64 * k + 32, kq_sc16(S, 2 * k + 1))));
        }
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(kq_h(b) * x->d16[16 * i]), a);
        __m128i mm = _mm_cvtsi64_si128((long long)mn), m2 = _mm_unpacklo_epi8(mm, mm);
        KQ_MIN(kq_u8f(m2), kq_u8f(_mm_srli_si128(m2, 8)), kq_h(b + 2), x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

KQ_INLINE float kq_q6_k_s(const uint8_t *row, const k2c_q8x *x, int n) {
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 210;
        const int8_t *q = x->q + 256 * i;
        __m128i sv = _mm_loadu_si128((const __m128i *)(b + 192));
        __m256i S = kq_eo16(sv, 1), acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i l0 = kq_ld(b + 64 * h), l1 = kq_ld(b + 64 * h + 32), hh = kq_ld(b + 128 + 32 * h);
            __m256i w0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 4), m30));
            __m256i w1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hh, 2), m30));
            __m256i w2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hh, m30));
            __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(hh, 2), m30));
            const int8_t *qh = q + 128 * h;
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(kq_dsc(w0, qh, kq_sc16(S, 4 * h)), kq_dsc(w1, qh + 32, kq_sc16(S, 4 * h + 1))));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(kq_dsc(w2, qh + 64, kq_sc16(S, 4 * h + 2)), kq_dsc(w3, qh + 96, kq_sc16(S, 4 * h + 3))));
        }
        float d = kq_h(b + 208);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(d * x->d16[16 * i]), a);
        KQ_MIN(kq_i8f(sv), kq_i8f(_mm_srli_si128(sv, 8)), 32.0f * d, x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

KQ_INLINE float kq_q2_k_s(const uint8_t *row, const k2c_q8x *x, int n) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(15);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 84;
        const int8_t *q = x->q + 256 * i;
        __m128i sv = _mm_loadu_si128((const __m128i *)b);
        __m128i sl = _mm_and_si128(sv, m4), sh = _mm_and_si128(_mm_srli_epi16(sv, 4), m4);
        __m256i S = kq_eo16(sl, 0), acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i v = kq_ld(b + 16 + 32 * h);
            const int8_t *qh = q + 128 * h;
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(kq_dsc(_mm256_and_si256(v, m3), qh, kq_sc16(S, 4 * h)),
                                                         kq_dsc(_mm256_and_si256(_mm256_srli_epi16(v, 2), m3), qh + 32, kq_sc16(S, 4 * h + 1))));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(kq_dsc(_mm256_and_si256(_mm256_srli_epi16(v, 4), m3), qh + 64, kq_sc16(S, 4 * h + 2)),
                                                         kq_dsc(_mm256_and_si256(_mm256_srli_epi16(v, 6), m3), qh + 96, kq_sc16(S, 4 * h + 3))));
        }
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(kq_h(b + 80) * x->d16[16 * i]), a);
        KQ_MIN(kq_u8f(sh), kq_u8f(_mm_srli_si128(sh, 8)), kq_h(b + 82), x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

KQ_INLINE float kq_q3_k_s(const uint8_t *row, const k2c_q8x *x, int n) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 a = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 110;
        const int8_t *q = x->q + 256 * i;
        uint64_t lo8;
        memcpy(&lo8, b + 96, 8);
        uint32_t hh = kq_u32(b + 104);
        const uint32_t m2 = 0x03030303u;
        __m128i lo = _mm_set_epi64x((long long)((lo8 >> 4) & 0x0f0f0f0f0f0f0f0full), (long long)(lo8 & 0x0f0f0f0f0f0f0f0full));
        __m128i hi = _mm_set_epi32((int)((hh >> 6) & m2), (int)((hh >> 4) & m2), (int)((hh >> 2) & m2), (int)(hh & m2));
        __m128i sv = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
        __m256i S = kq_eo16(sv, 1), hm = kq_ld(b), acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i v = kq_ld(b + 32 + 32 * h);
            const int8_t *qh = q + 128 * h;
            __m256i w0 = _mm256_or_si256(_mm256_and_si256(v, m3), kq_bit2(hm, 4 * h));
            __m256i w1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 2), m3), kq_bit2(hm, 4 * h + 1));
            __m256i w2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m3), kq_bit2(hm, 4 * h + 2));
            __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 6), m3), kq_bit2(hm, 4 * h + 3));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(kq_dsc(w0, qh, kq_sc16(S, 4 * h)), kq_dsc(w1, qh + 32, kq_sc16(S, 4 * h + 1))));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(kq_dsc(w2, qh + 64, kq_sc16(S, 4 * h + 2)), kq_dsc(w3, qh + 96, kq_sc16(S, 4 * h + 3))));
        }
        float d = kq_h(b + 108);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(d * x->d16[16 * i]), a);
        KQ_MIN(kq_i8f(sv), kq_i8f(_mm_srli_si128(sv, 8)), 4.0f * d, x->s16 + 16 * i, am);
    }
    return kq_hsum(_mm256_sub_ps(a, am));
}

/* IQ4_XS: the signed levels as |w| against q with w's sign (kq_dot_s), the 8 scales ls - 32 (|s| <= 32) */
KQ_INLINE float kq_iq4_xs_s(const uint8_t *row, const k2c_q8x *x, int n) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k2c_iq4_nl));
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 136;
        const int8_t *q = x->q + 256 * i;
        /* scale g: low nibble g of the word at 4, top two bits pair g of the 16-bit word at 2 */
        uint32_t lo = kq_u32(b + 4), hi = (uint32_t)(b[2] | b[3] << 8);
        uint64_t l8 = 0;
        for (int g = 0; g < 8; g++) l8 |= (uint64_t)(((lo >> 4 * g) & 15) | ((hi >> 2 * g) & 3) << 4) << 8 * g;
        __m128i s8 = _mm_sub_epi8(_mm_cvtsi64_si128((long long)l8), _mm_set1_epi8(32));
        __m256i S = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(s8)), acc = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            __m256i v = kq_ld(b + 8 + 32 * k);
            __m256i tl = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, m4));
            __m256i th = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            __m256i w0 = _mm256_permute2x128_si256(tl, th, 0x20), w1 = _mm256_permute2x128_si256(tl, th, 0x31);
            __m256i q0 = kq_ld(q + 64 * k), q1 = kq_ld(q + 64 * k + 32);
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w0), _mm256_sign_epi8(q0, w0)), kq_sc16(S, 2 * k));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w1), _mm256_sign_epi8(q1, w1)), kq_sc16(S, 2 * k + 1));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
        }
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(kq_h(b) * x->d16[16 * i]), a);
    }
    return kq_hsum(a);
}

/* ---- the 32-element formats the K-quant recipes fall back to for rows their 256-block does not divide (the
 * experts' down projections, 1408 wide in Moonlight: Q5_0 under Q4_K_M, IQ4_NL under Q2_K), and Q4_0: one block's
 * 32 signed weights in one vector (element j: low nibble of qs[j], j + 16: its high nibble), |w| against q with
 * w's sign, then scaled by d_w d_x per block in float as Q8_0 is (two accumulators: no FMA chain per block). */
enum { KQ_B_Q4_0, KQ_B_Q5_0, KQ_B_IQ4_NL, KQ_B_Q8_0 };
KQ_INLINE __m256i kq_nib32(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1), _mm256_set1_epi8(15));
}
/* one block's weights; b points at the block (its fp16 d first) */
KQ_INLINE __m256i kq_b32w(const uint8_t *b, int kind, __m256i lut) {
    if (kind == KQ_B_Q8_0) return kq_ld(b + 2);
    if (kind == KQ_B_IQ4_NL) return _mm256_shuffle_epi8(lut, kq_nib32(b + 2));
    if (kind == KQ_B_Q4_0) return _mm256_sub_epi8(kq_nib32(b + 2), _mm256_set1_epi8(8));
    /* Q5_0: byte j takes byte j / 8 of qh, keeps bit j % 8 of it, and becomes 16 where that bit is set */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32((int)kq_u32(b + 2)), spread);
    h = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit), _mm256_set1_epi8(16));
    return _mm256_sub_epi8(_mm256_or_si256(kq_nib32(b + 6), h), _mm256_set1_epi8(16));
}
KQ_INLINE uint16_t kq_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
/* the fp16 d of 8 consecutive blocks (bb bytes apart, d first), converted at once */
KQ_INLINE __m256 kq_wd8(const uint8_t *b, int bb) {
    __m128i h = _mm_setr_epi16((short)kq_u16(b), (short)kq_u16(b + bb), (short)kq_u16(b + 2 * bb), (short)kq_u16(b + 3 * bb),
                               (short)kq_u16(b + 4 * bb), (short)kq_u16(b + 5 * bb), (short)kq_u16(b + 6 * bb),
                               (short)kq_u16(b + 7 * bb));
    return _mm256_cvtph_ps(h);
}
/* the activations' scale of 8 consecutive 32-blocks: the even entries of d16 */
KQ_INLINE __m256 kq_xd8(const float *d16) {
    __m256 ev = _mm256_shuffle_ps(_mm256_loadu_ps(d16), _mm256_loadu_ps(d16 + 8), 0x88);  /* 64-bit pairs [0 2 | 8 10 | 4 6 | 12 14] */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
}
/* dx * (sum of q) of 8 consecutive 32-blocks: pair sums of s16 */
KQ_INLINE __m256 kq_xs8(const float *s16) {
    __m256 ps = _mm256_hadd_ps(_mm256_loadu_ps(s16), _mm256_loadu_ps(s16 + 8));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ps), 0xD8));
}
/* 8 blocks' int32 lanes to the vector of the 8 blocks' sums: two rounds of pair sums leave [p0 p1 p2 p3] per
 * 128-bit half, and the halves are added */
KQ_INLINE __m256i kq_sum8(const __m256i *p) {
    __m256i u = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    __m256i v = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(u, v, 0x20), _mm256_permute2x128_si256(u, v, 0x31));
}
/* Q4_0 / Q5_0 codes as unsigned bytes (0..15, 0..31): their offset (8, 16) leaves the products, as the
 * K-quants' does (sum (u - o) q = sum u q - o sum q): no sign trick, no subtraction per block */
KQ_INLINE __m256i kq_b32u(const uint8_t *b, int kind, __m256i lut_u) {
    if (kind == KQ_B_Q4_0) return kq_nib32(b + 2);
    if (kind == KQ_B_IQ4_NL) return _mm256_shuffle_epi8(lut_u, kq_nib32(b + 2));
#ifdef QD_X86_512
    __m256i h = _mm256_maskz_mov_epi8((__mmask32)kq_u32(b + 2), _mm256_set1_epi8(16));   /* bit j of qh -> byte j */
#else
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32((int)kq_u32(b + 2)), spread);
    h = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit), _mm256_set1_epi8(16));
#endif
    return _mm256_or_si256(kq_nib32(b + 6), h);
}
/* Eight blocks per step: their products, the 8 sums in one vector, one conversion and one FMA with the 8
 * scales (per block this was a scalar fp16 conversion, a multiply, a broadcast and a float step on 8 lanes;
 * Q8_0's 512-bit kernel had one FMA chain per two blocks). The blocks past the last 8 one at a time. */
KQ_INLINE float kq_b32(const uint8_t *row, const k2c_q8x *x, int n, int vnni, int kind) {
    const int bb = kind == KQ_B_Q8_0 ? 34 : kind == KQ_B_Q5_0 ? 22 : 18, nb = n / 32;
    /* IQ4_NL's signed levels (-127..113) become unsigned with an offset of 128 where vpdpbusd sums the products
     * (4 per int32 lane, no saturation); vpmaddubsw's int16 pairs would overflow, so without VNNI they keep the
     * sign trick */
    const int off = kind == KQ_B_Q4_0 ? 8 : kind == KQ_B_Q5_0 ? 16 : kind == KQ_B_IQ4_NL && vnni ? 128 : 0;
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)k2c_iq4_nl));
    const __m256i lut_u = _mm256_add_epi8(lut, _mm256_set1_epi8((char)0x80));
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), am = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= nb; k += 8) {
        const uint8_t *b = row + (size_t)k * bb;
        __m256i p[8];
        if (off)
            for (int j = 0; j < 8; j++) p[j] = kq_dot(vnni, kq_b32u(b + j * bb, kind, lut_u), kq_ld(x->q + 32 * (k + j)));
        else
            for (int j = 0; j < 8; j++) p[j] = kq_dot_s(vnni, kq_b32w(b + j * bb, kind, lut), kq_ld(x->q + 32 * (k + j)));
        __m256 wd = kq_wd8(b, bb);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(kq_sum8(p)), _mm256_mul_ps(wd, kq_xd8(x->d16 + 2 * k)), a0);
        if (off) am = _mm256_fmadd_ps(wd, kq_xs8(x->s16 + 2 * k), am);
    }
    for (; k < nb; k++) {
        const uint8_t *b0 = row + (size_t)k * bb;
        __m256i p0 = kq_dot_s(vnni, kq_b32w(b0, kind, lut), kq_ld(x->q + 32 * k));
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(kq_h(b0) * x->d16[2 * k]), a1);
    }
    return kq_hsum(_mm256_add_ps(a0, a1)) - (float)off * kq_hsum(am);
}
KQ_INLINE float kq_q4_0(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_b32(row, x, n, vnni, KQ_B_Q4_0); }
KQ_INLINE float kq_q5_0(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_b32(row, x, n, vnni, KQ_B_Q5_0); }
KQ_INLINE float kq_iq4_nl(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_b32(row, x, n, vnni, KQ_B_IQ4_NL); }
KQ_INLINE float kq_q8_0(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_b32(row, x, n, vnni, KQ_B_Q8_0); }

#ifdef QD_X86_512
/* ---- the same on 512-bit vectors (kern_avx512.c): two chunks of 32 per vector */
KQ_INLINE __m512i kq_dp512(__m512i u8, __m512i s8) {
    __m512i acc = _mm512_setzero_si512();
    __asm__(QD_DPBUSD " %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
    return acc;
}
KQ_INLINE __m512i kq_dot512(int vnni, __m512i w, __m512i q) {
    if (vnni) return kq_dp512(w, q);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(w, q), _mm512_set1_epi16(1));
}
KQ_INLINE __m512i kq_ld512(const void *p) { return _mm512_loadu_si512(p); }
/* 32 bytes in both halves */
KQ_INLINE __m512i kq_bc(const void *p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)); }
/* four vectors' lanes to their 16 group sums (a 128-bit lane of 4 int32 is one group of 16): out lane 4L + k =
 * the group in lane L of p_k; callers permute that to their order */
KQ_INLINE __m512i kq_h16(__m512i p0, __m512i p1, __m512i p2, __m512i p3) {
    __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(p0, p1), _mm512_unpackhi_epi32(p0, p1));
    __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(p2, p3), _mm512_unpackhi_epi32(p2, p3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
}
/* p_k = elements 64k..64k+63 in order: group 4k + L is in lane 4L + k */
#define KQ_NATURAL _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
KQ_INLINE __m512 kq_u8f16(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }
KQ_INLINE __m512 kq_i8f16(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
/* a += d * S * isum * d16; am += dm * M * s16 (16 groups) */
#define KQ_STEP512(is, S, d, d16, a)                                                                              \
    a = _mm512_fmadd_ps(_mm512_mul_ps(S, _mm512_set1_ps(d)), _mm512_mul_ps(_mm512_cvtepi32_ps(is), _mm512_loadu_ps(d16)), a)
#define KQ_MIN512(M, dm, s16, am) am = _mm512_fmadd_ps(_mm512_mul_ps(M, _mm512_set1_ps(dm)), _mm512_loadu_ps(s16), am)

/* Q4_K / Q5_K: bytes 0-63 of qs hold sub-blocks 0 and 2 (low nibbles) and 1 and 3 (high), bytes 64-127 sub-blocks
 * 4-7 alike; the activations are paired to match (256-bit halves of q swapped across), and the fifth bits moved
 * per half with variable shifts */
KQ_INLINE float kq_q45_k512(const uint8_t *row, const k2c_q8x *x, int n, int vnni, int five) {
    const __m512i m4 = _mm512_set1_epi8(15), b5 = _mm512_set1_epi8(16);
    /* lane group of each vector: a [0 | 2], b [1 | 3], c [4 | 6], d [5 | 7]; bit g to bit 4: left 4 - g or right g - 4 */
    const __m512i sa = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2), sb = _mm512_setr_epi64(3, 3, 3, 3, 1, 1, 1, 1);
    const __m512i sc_ = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2), sd = _mm512_setr_epi64(1, 1, 1, 1, 3, 3, 3, 3);
    /* group order of kq_h16's output (lane L of a, b, c, d: groups [0 1 4 5], [2 3 6 7], [8 9 12 13], [10 11 14 15]) */
    const __m512i order = _mm512_setr_epi32(0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15);
    __m512 a = _mm512_setzero_ps(), am = _mm512_setzero_ps();
    const int bb = five ? 176 : 144;
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * bb, *qs = b + (five ? 48 : 16);
        const int8_t *q = x->q + 256 * i;
        __m512i v0 = kq_ld512(qs), v1 = kq_ld512(qs + 64);
        __m512i q0 = kq_ld512(q), q1 = kq_ld512(q + 64), q2 = kq_ld512(q + 128), q3 = kq_ld512(q + 192);
        __m512i wa = _mm512_and_si512(v0, m4), wb = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
        __m512i wc = _mm512_and_si512(v1, m4), wd = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
        if (five) {
            /* 64-bit variable shifts, one count per 256-bit half: bit 4 of a byte comes from bit 4 -+ k of the same
             * byte for the counts used (<= 4), so nothing crosses between bytes under the mask */
            __m512i hb = kq_bc(b + 16);
            wa = _mm512_or_si512(wa, _mm512_and_si512(_mm512_sllv_epi64(hb, sa), b5));
            wb = _mm512_or_si512(wb, _mm512_and_si512(_mm512_sllv_epi64(hb, sb), b5));
            wc = _mm512_or_si512(wc, _mm512_and_si512(_mm512_srlv_epi64(hb, sc_), b5));
            wd = _mm512_or_si512(wd, _mm512_and_si512(_mm512_srlv_epi64(hb, sd), b5));
        }
        /* activations [0 | 2] = 256-bit halves q0.lo, q1.lo; [1 | 3] = q0.hi, q1.hi */
        __m512i pa = kq_dot512(vnni, wa, _mm512_shuffle_i64x2(q0, q1, 0x44));
        __m512i pb = kq_dot512(vnni, wb, _mm512_shuffle_i64x2(q0, q1, 0xEE));
        __m512i pc = kq_dot512(vnni, wc, _mm512_shuffle_i64x2(q2, q3, 0x44));
        __m512i pd = kq_dot512(vnni, wd, _mm512_shuffle_i64x2(q2, q3, 0xEE));
        __m512i is = _mm512_permutexvar_epi32(order, kq_h16(pa, pb, pc, pd));
        uint32_t u0 = kq_u32(b + 4), u1 = kq_u32(b + 8), u2 = kq_u32(b + 12);
        uint64_t sc = (u0 & 0x3f3f3f3fu) | (uint64_t)((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
        uint64_t mn = (u1 & 0x3f3f3f3fu) | (uint64_t)(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u)) << 32;
        __m128i sm = _mm_set_epi64x((long long)mn, (long long)sc);
        KQ_STEP512(is, kq_u8f16(_mm_unpacklo_epi8(sm, sm)), kq_h(b), x->d16 + 16 * i, a);
        KQ_MIN512(kq_u8f16(_mm_unpackhi_epi8(sm, sm)), kq_h(b + 2), x->s16 + 16 * i, am);
    }
    return _mm512_reduce_add_ps(_mm512_sub_ps(a, am));
}

/* Q6_K: per half, ql[0..63] in one vector is elements 0-63 (low nibbles) and 64-127 (high); qh's bit pairs moved
 * per 256-bit half with 64-bit variable shifts (bits 4, 5 of a byte come from the same byte for these counts) */
KQ_INLINE float kq_q6_k512(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i s42 = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2), s02 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    __m512 a = _mm512_setzero_ps(), am = _mm512_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * 210;
        const int8_t *q = x->q + 256 * i;
        __m512i p[4];
        for (int h = 0; h < 2; h++) {
            __m512i l = kq_ld512(b + 64 * h), hh = kq_bc(b + 128 + 32 * h);
            __m512i wl = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi64(hh, s42), m30));
            __m512i wh = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                         _mm512_and_si512(_mm512_srlv_epi64(hh, s02), m30));
            p[2 * h] = kq_dot512(vnni, wl, kq_ld512(q + 128 * h));
            p[2 * h + 1] = kq_dot512(vnni, wh, kq_ld512(q + 128 * h + 64));
        }
        __m512i is = _mm512_permutexvar_epi32(KQ_NATURAL, kq_h16(p[0], p[1], p[2], p[3]));
        __m512 sc = kq_i8f16(_mm_loadu_si128((const __m128i *)(b + 192)));
        float d = kq_h(b + 208);
        KQ_STEP512(is, sc, d, x->d16 + 16 * i, a);
        KQ_MIN512(sc, 32.0f * d, x->s16 + 16 * i, am);
    }
    return _mm512_reduce_add_ps(_mm512_sub_ps(a, am));
}

/* Q2_K and Q3_K: per half the 32 bytes of qs in both 256-bit halves, shifted by 0, 2 (elements 0-63) and 4, 6
 * (64-127); Q3_K's third bit (bit 4h + p of hmask) moved to bit 2 the same way */
KQ_INLINE float kq_q23_k512(const uint8_t *row, const k2c_q8x *x, int n, int vnni, int three) {
    const __m512i m3 = _mm512_set1_epi8(3), b2 = _mm512_set1_epi8(4);
    const __m512i s02 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2), s46 = _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6);
    const __m512i l21 = _mm512_setr_epi64(2, 2, 2, 2, 1, 1, 1, 1), r01 = _mm512_setr_epi64(0, 0, 0, 0, 1, 1, 1, 1);
    const __m512i r23 = _mm512_setr_epi64(2, 2, 2, 2, 3, 3, 3, 3), r45 = _mm512_setr_epi64(4, 4, 4, 4, 5, 5, 5, 5);
    const __m128i m4 = _mm_set1_epi8(15);
    const int bb = three ? 110 : 84;
    __m512 a = _mm512_setzero_ps(), am = _mm512_setzero_ps();
    for (int i = 0; i < n / 256; i++) {
        const uint8_t *b = row + (size_t)i * bb, *qs = b + (three ? 32 : 16);
        const int8_t *q = x->q + 256 * i;
        __m512i p[4], hm = three ? kq_bc(b) : _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m512i v = kq_bc(qs + 32 * h);
            __m512i wl = _mm512_and_si512(_mm512_srlv_epi64(v, s02), m3), wh = _mm512_and_si512(_mm512_srlv_epi64(v, s46), m3);
            if (three) {
                __m512i hl = h ? _mm512_srlv_epi64(hm, r23) : _mm512_sllv_epi64(hm, l21);
                __m512i hh = h ? _mm512_srlv_epi64(hm, r45) : _mm512_srlv_epi64(hm, r01);
                wl = _mm512_or_si512(wl, _mm512_and_si512(hl, b2));
                wh = _mm512_or_si512(wh, _mm512_and_si512(hh, b2));
            }
            p[2 * h] = kq_dot512(vnni, wl, kq_ld512(q + 128 * h));
            p[2 * h + 1] = kq_dot512(vnni, wh, kq_ld512(q + 128 * h + 64));
        }
        __m512i is = _mm512_permutexvar_epi32(KQ_NATURAL, kq_h16(p[0], p[1], p[2], p[3]));
        if (three) {
            uint64_t lo8;
            memcpy(&lo8, b + 96, 8);
            uint32_t hh = kq_u32(b + 104);
            const uint32_t m2 = 0x03030303u;
            __m128i lo = _mm_set_epi64x((long long)((lo8 >> 4) & 0x0f0f0f0f0f0f0f0full), (long long)(lo8 & 0x0f0f0f0f0f0f0f0full));
            __m128i hi = _mm_set_epi32((int)((hh >> 6) & m2), (int)((hh >> 4) & m2), (int)((hh >> 2) & m2), (int)(hh & m2));
            __m512 sc = kq_i8f16(_mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32)));
            float d = kq_h(b + 108);
            KQ_STEP512(is, sc, d, x->d16 + 16 * i, a);
            KQ_MIN512(sc, 4.0f * d, x->s16 + 16 * i, am);
        } else {
            __m128i sv = _mm_loadu_si128((const __m128i *)b);
            KQ_STEP512(is, kq_u8f16(_mm_and_si128(sv, m4)), kq_h(b + 80), x->d16 + 16 * i, a);
            KQ_MIN512(kq_u8f16(_mm_and_si128(_mm_srli_epi16(sv, 4), m4)), kq_h(b + 82), x->s16 + 16 * i, am);
        }
    }
    return _mm512_reduce_add_ps(_mm512_sub_ps(a, am));
}
#endif

/* The two instances of each (ext: with VNNI) */
#define KQ_PAIR(name, call)                                                                                       \
    QD_ATTR static float name##_v(const uint8_t *row, const k2c_q8x *x, int n) { return call(row, x, n, 1); }   \
    QD_ATTR static float name##_b(const uint8_t *row, const k2c_q8x *x, int n) { return call(row, x, n, 0); }
#ifdef QD_X86_512
KQ_INLINE float kq_q4_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_q45_k512(row, x, n, vnni, 0); }
KQ_INLINE float kq_q5_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_q45_k512(row, x, n, vnni, 1); }
KQ_INLINE float kq_q2_k_(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_q23_k512(row, x, n, vnni, 0); }
KQ_INLINE float kq_q3_k_(const uint8_t *row, const k2c_q8x *x, int n, int vnni) { return kq_q23_k512(row, x, n, vnni, 1); }
KQ_PAIR(kq_q6_k, kq_q6_k512)
#define kq_iq4_xs_ kq_iq4_xs
#else
/* without VNNI, span-256 activations take the kernels above (x->span: how the matvec quantized them) */
#define KQ_S(x, vnni) (!(vnni) && (x)->span == 256)
KQ_INLINE float kq_q4_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    return KQ_S(x, vnni) ? kq_q45_k_s(row, x, n, 0) : kq_q45_k(row, x, n, vnni, 0);
}
KQ_INLINE float kq_q5_k(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    return KQ_S(x, vnni) ? kq_q45_k_s(row, x, n, 1) : kq_q45_k(row, x, n, vnni, 1);
}
KQ_INLINE float kq_q2_k_(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    return KQ_S(x, vnni) ? kq_q2_k_s(row, x, n) : kq_q2_k(row, x, n, vnni);
}
KQ_INLINE float kq_q3_k_(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    return KQ_S(x, vnni) ? kq_q3_k_s(row, x, n) : kq_q3_k(row, x, n, vnni);
}
KQ_INLINE float kq_q6_k_(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    return KQ_S(x, vnni) ? kq_q6_k_s(row, x, n) : kq_q6_k(row, x, n, vnni);
}
KQ_PAIR(kq_q6_k, kq_q6_k_)
KQ_INLINE float kq_iq4_xs_(const uint8_t *row, const k2c_q8x *x, int n, int vnni) {
    return KQ_S(x, vnni) ? kq_iq4_xs_s(row, x, n) : kq_iq4_xs(row, x, n, vnni);
}
#endif
KQ_PAIR(kq_q4_k, kq_q4_k)
KQ_PAIR(kq_q5_k, kq_q5_k)
KQ_PAIR(kq_q2_k, kq_q2_k_)
KQ_PAIR(kq_q3_k, kq_q3_k_)
KQ_PAIR(kq_iq4_xs, kq_iq4_xs_)
KQ_PAIR(kq_q4_0, kq_q4_0)
KQ_PAIR(kq_q5_0, kq_q5_0)
KQ_PAIR(kq_iq4_nl, kq_iq4_nl)
KQ_PAIR(kq_q8_0, kq_q8_0)
