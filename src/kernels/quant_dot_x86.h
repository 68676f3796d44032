/* quant_dot_x86.h — the byte helpers of quant_dot.h for the x86 kernel files (SSSE3 shuffles, AVX2 shifts),
 * compiled under the including file's QD_ATTR (kern_avx2.c, kern_avx512.c), and the dispatch of the direct kernels
 * (qd_dot_direct: quant_dot_kq_x86.h's and quant_dot_iq_x86.h's). Included just before quant_dot.h. */
#ifndef QD_ATTR
#error "define QD_ATTR before including quant_dot_x86.h"
#endif
#define QG_X86          /* quant_gemm.h: the AVX2 quad interleave */

QD_ATTR static inline void qd_nl16(const uint8_t *qs, int8_t *w) {
    const __m128i lut = _mm_loadu_si128((const __m128i *)k2c_iq4_nl), m4 = _mm_set1_epi8(15);
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    _mm_storeu_si128((__m128i *)w, _mm_shuffle_epi8(lut, _mm_and_si128(b, m4)));
    _mm_storeu_si128((__m128i *)(w + 16), _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(b, 4), m4)));
}
QD_ATTR static inline void qd_nib(const uint8_t *qs, int n, int off, int8_t *lo, int8_t *hi) {
    const __m128i m4 = _mm_set1_epi8(15), o = _mm_set1_epi8((char)off);
    for (int j = 0; j < n; j += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(qs + j));
        _mm_storeu_si128((__m128i *)(lo + j), _mm_sub_epi8(_mm_and_si128(b, m4), o));
        _mm_storeu_si128((__m128i *)(hi + j), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), m4), o));
    }
}
QD_ATTR static inline void qd_bits(const uint8_t *src, int shift, int mask, int8_t *dst) {
    __m256i b = _mm256_loadu_si256((const __m256i *)src);
    b = _mm256_srl_epi16(b, _mm_cvtsi32_si128(shift));     /* 16-bit shift; the mask drops the neighbour's bits */
    _mm256_storeu_si256((__m256i *)dst, _mm256_and_si256(b, _mm256_set1_epi8((char)mask)));
}
/* the nibbles side by side in one vector, and the fifth bits: byte j takes byte j / 8 of qh, keeps bit j % 8
 * of it, and becomes 16 where that bit is set */
QD_ATTR static inline void qd_q5w(const uint8_t *qs, uint32_t qh, int off, int8_t *w) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll), m4 = _mm256_set1_epi8(15);
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m256i nib = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1), m4);
    __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    h = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit), _mm256_set1_epi8(16));
    _mm256_storeu_si256((__m256i *)w, _mm256_sub_epi8(_mm256_or_si256(nib, h), _mm256_set1_epi8((char)off)));
}
/* Q6_0: the high-bit pairs of elements 0-7, 8-15, 16-23, 24-31 are qh >> 0, 4, 2, 6 (16-bit shifts: the mask
 * drops the neighbour's bits) */
QD_ATTR static inline void qd_q6w(const uint8_t *qs, const uint8_t *qh, int8_t *w) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    __m128i b = _mm_loadu_si128((const __m128i *)qs), h = _mm_loadl_epi64((const __m128i *)qh);
    __m256i nib = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1), m4);
    __m128i hl = _mm_unpacklo_epi64(h, _mm_srli_epi16(h, 4)), hh = _mm_unpacklo_epi64(_mm_srli_epi16(h, 2), _mm_srli_epi16(h, 6));
    __m256i hb = _mm256_slli_epi16(_mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(hl), hh, 1), m2), 4);
    _mm256_storeu_si256((__m256i *)w, _mm256_sub_epi8(_mm256_or_si256(nib, hb), _mm256_set1_epi8(32)));
}
#define QD_HAVE_Q6W
#define QD_HAVE_NIB
#define QD_HAVE_Q5W
#define QD_HAVE_BITS
#define QD_HAVE_NL16
#define QD_F16(h) _cvtsh_ss(h)
#include "kernels/quant_dot_kq_x86.h"
#include "kernels/quant_dot_iq_x86.h"

/* The types with a direct kernel (name##_v with VNNI, name##_b without), for the switches below */
#define QD_DIRECT_TYPES(X)                                                                                   \
    X(K2C_FMT_Q4_K, kq_q4_k) X(K2C_FMT_Q5_K, kq_q5_k) X(K2C_FMT_Q6_K, kq_q6_k) X(K2C_FMT_Q2_K, kq_q2_k)       \
    X(K2C_FMT_Q3_K, kq_q3_k) X(K2C_FMT_IQ4_XS, kq_iq4_xs) X(K2C_FMT_Q4_0, kq_q4_0) X(K2C_FMT_Q5_0, kq_q5_0)   \
    X(K2C_FMT_IQ4_NL, kq_iq4_nl) X(K2C_FMT_Q8_0, kq_q8_0) X(K2C_FMT_IQ2_XXS, kq_iq2_xxs)                      \
    X(K2C_FMT_IQ2_XS, kq_iq2_xs) X(K2C_FMT_IQ2_S, kq_iq2_s) X(K2C_FMT_IQ3_XXS, kq_iq3_xxs)                    \
    X(K2C_FMT_IQ3_S, kq_iq3_s) X(K2C_FMT_IQ1_S, kq_iq1_s) X(K2C_FMT_IQ1_M, kq_iq1_m)

/* The direct kernel of f where there is one: *out = the row's dot, returns 1; else 0 (quant_dot.h's path). */
QD_ATTR static int qd_dot_direct(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n, int ext, float *out) {
#define KQ_CASE(F, name) case F: *out = ext ? name##_v(row, x, n) : name##_b(row, x, n); return 1;
    switch (f) {
    QD_DIRECT_TYPES(KQ_CASE)
    default: return 0;
    }
#undef KQ_CASE
}

/* nr rows of f, rb bytes apart from row0, into y: the kernel chosen once (not per row, as dot_q8 does: the
 * dispatch was about a tenth of a 2048-wide Q2_K row's time) and inlined into the loop. Rows up to avail past
 * row0 exist: those ahead rows' pf bytes ahead are prefetched (pf 0: none). Returns 0 where f has no kernel. */
QD_ATTR static int qd_rows_direct(k2c_wfmt f, const uint8_t *row0, size_t rb, int nr, int avail, const k2c_q8x *x,
                                  int n, int ext, float *y, size_t pf) {
    int ahead = pf ? (int)((pf + rb - 1) / rb) : avail;
#define KQ_LOOP(fn)                                                                                             \
    for (int i = 0; i < nr; i++) {                                                                              \
        if (i + ahead < avail)                                                                                  \
            for (size_t o = 0; o < rb; o += 64) __builtin_prefetch(row0 + (size_t)(i + ahead) * rb + o);      \
        y[i] = fn(row0 + (size_t)i * rb, x, n);                                                                 \
    }
#define KQ_CASE(F, name) case F: if (ext) { KQ_LOOP(name##_v) } else { KQ_LOOP(name##_b) } return 1;
    switch (f) {
    QD_DIRECT_TYPES(KQ_CASE)
    default: return 0;
    }
#undef KQ_CASE
#undef KQ_LOOP
}
#define QD_HAVE_DOT_DIRECT
