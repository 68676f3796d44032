/* Latent attention straight from a BF16 cache with AVX512-BF16 dot products (vdpbf16ps): the two products of
 * mla.c's latent_block, S = Q' C^T and acc += P C, without converting the cache tile to fp32 first. Used when
 * the cache is BF16, the model is not in exact mode (the queries and the softmax weights are rounded to BF16
 * here, as the GGUF decode path rounds its inputs to int8), the model runs the avx512 table and the CPU has
 * AVX512-BF16. Why: at depth a decode step is these two products over the whole cache, 2 x H x (r + dr) FLOPs
 * per position; vdpbf16ps does 32 multiply-adds per instruction against 16 for an fp32 FMA, and reads the BF16
 * rows as they are stored (half the bytes of a converted tile, no pass to write it).
 *
 * acc's layout: vdpbf16ps sums adjacent pairs, so acc += P C pairs positions (t, t+1): two rows interleaved by
 * 16-bit unpacks, which work inside 128-bit lanes. acc then holds each chunk of 32 latent values in the unpacks'
 * order (see unpermute); the online softmax only scales and adds whole rows, so the order matters only when the
 * context vector leaves the attention (k2c_attn_bf16_unpermute). */
#include "model/model.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define TGT __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define AI static inline __attribute__((always_inline))
#define PF_ROWS 8   /* rows ahead the score pass prefetches (past a tile's end: harmless hints) */
#define HG 8    /* heads per pass: 2 x 8 accumulators + the loaded rows fit the 32 registers */

/* S[h, t] = scale * (Qb_h . C_t) for nh heads (Qb rows of ldq BF16, zero past rs) and rows t < nt of c (stride rs). */
TGT AI void scores_g(const int nh, const uint16_t *qb, int ldq, const uint16_t *c, int rs, int nt, float scale, float *S,
                     int lds) {
    int nk = (rs + 31) / 32;
    __mmask32 tail = rs % 32 ? (__mmask32)((1u << (rs % 32)) - 1) : (__mmask32)~0u;
    for (int t = 0; t < nt; t += 2) {
        const uint16_t *c0 = c + (size_t)t * rs, *c1 = t + 1 < nt ? c0 + rs : c0;
        __m512 a0[HG], a1[HG];
        _Pragma("GCC unroll 8")
        for (int h = 0; h < nh; h++) { a0[h] = _mm512_setzero_ps(); a1[h] = _mm512_setzero_ps(); }
        for (int kc = 0; kc < nk; kc++) {
            __mmask32 mk = kc == nk - 1 ? tail : (__mmask32)~0u;
            __m512i x0 = _mm512_maskz_loadu_epi16(mk, c0 + kc * 32), x1 = _mm512_maskz_loadu_epi16(mk, c1 + kc * 32);
            _mm_prefetch((const char *)(c0 + PF_ROWS * rs + kc * 32), _MM_HINT_T0);
            _mm_prefetch((const char *)(c1 + PF_ROWS * rs + kc * 32), _MM_HINT_T0);
            _Pragma("GCC unroll 8")
            for (int h = 0; h < nh; h++) {
                __m512i q = _mm512_loadu_si512((const void *)(qb + (size_t)h * ldq + kc * 32));
                a0[h] = _mm512_dpbf16_ps(a0[h], (__m512bh)q, (__m512bh)x0);
                a1[h] = _mm512_dpbf16_ps(a1[h], (__m512bh)q, (__m512bh)x1);
            }
        }
        _Pragma("GCC unroll 8")
        for (int h = 0; h < nh; h++) {
            S[(size_t)h * lds + t] = scale * _mm512_reduce_add_ps(a0[h]);
            if (t + 1 < nt) S[(size_t)h * lds + t + 1] = scale * _mm512_reduce_add_ps(a1[h]);
        }
    }
}

/* acc[h] (permuted chunks of 32, stride lda) += sum_t P[h, t] C_t[0..r) for nh heads; pp[h, t/2]: the BF16 pair
 * (P[h, t], P[h, t + 1]) (high half 0 past nt). r % 32 == 0. */
TGT AI void acc_g(const int nh, float *acc, int lda, const uint32_t *pp, int ldp, const uint16_t *c, int rs, int nt, int r) {
    for (int kc = 0; kc < r; kc += 32) {
        __m512 lo[HG], hi[HG];
        _Pragma("GCC unroll 8")
        for (int h = 0; h < nh; h++) {
            lo[h] = _mm512_loadu_ps(acc + (size_t)h * lda + kc);
            hi[h] = _mm512_loadu_ps(acc + (size_t)h * lda + kc + 16);
        }
        for (int t = 0; t < nt; t += 2) {
            const uint16_t *c0 = c + (size_t)t * rs + kc, *c1 = t + 1 < nt ? c0 + rs : c0;  /* odd end: weight 0 */
            __m512i x0 = _mm512_loadu_si512((const void *)c0), x1 = _mm512_loadu_si512((const void *)c1);
            __m512i l = _mm512_unpacklo_epi16(x0, x1), u = _mm512_unpackhi_epi16(x0, x1);
            _Pragma("GCC unroll 8")
            for (int h = 0; h < nh; h++) {
                __m512i p = _mm512_set1_epi32((int)pp[(size_t)h * ldp + t / 2]);
                lo[h] = _mm512_dpbf16_ps(lo[h], (__m512bh)l, (__m512bh)p);
                hi[h] = _mm512_dpbf16_ps(hi[h], (__m512bh)u, (__m512bh)p);
            }
        }
        _Pragma("GCC unroll 8")
        for (int h = 0; h < nh; h++) {
            _mm512_storeu_ps(acc + (size_t)h * lda + kc, lo[h]);
            _mm512_storeu_ps(acc + (size_t)h * lda + kc + 16, hi[h]);
        }
    }
}

/* Groups of 8 heads, then 4, 2, 1: each a copy with its head count a constant, so the accumulators stay in
 * registers. */
#define BY_GROUPS(CALL)                                                     \
    do {                                                                    \
        int h0 = 0;                                                         \
        for (; h0 + 8 <= H; h0 += 8) CALL(8);                               \
        if (h0 + 4 <= H) { CALL(4); h0 += 4; }                              \
        if (h0 + 2 <= H) { CALL(2); h0 += 2; }                              \
        if (h0 < H) CALL(1);                                                \
    } while (0)

TGT void k2c_attn_bf16_scores(int H, const uint16_t *qb, int ldq, const uint16_t *c, int rs, int nt, float scale, float *S, int lds) {
#define SC(n) scores_g(n, qb + (size_t)h0 * ldq, ldq, c, rs, nt, scale, S + (size_t)h0 * lds, lds)
    BY_GROUPS(SC);
#undef SC
}

/* out [npad] = x [n] rounded to BF16 (nearest even), zeros after n; npad a multiple of 2. */
TGT void k2c_attn_bf16_round(const float *x, int n, int npad, uint16_t *out) {
    for (int i = 0; i < npad; i += 32) {
        int a = n - i < 0 ? 0 : n - i > 32 ? 32 : n - i, left = npad - i < 32 ? npad - i : 32;
        __mmask16 lo = (__mmask16)(a >= 16 ? 0xffff : (1u << a) - 1), hi = (__mmask16)(a <= 16 ? 0 : a >= 32 ? 0xffff : (1u << (a - 16)) - 1);
        __m512 v0 = _mm512_maskz_loadu_ps(lo, x + i), v1 = _mm512_maskz_loadu_ps(hi, x + i + 16);
        __m512i b = (__m512i)_mm512_cvtne2ps_pbh(v1, v0);      /* low 16 lanes from v0 */
        _mm512_mask_storeu_epi16(out + i, (__mmask32)(left >= 32 ? ~0u : (1u << left) - 1), b);
    }
}

TGT void k2c_attn_bf16_acc(int H, float *acc, int lda, const float *S, int lds, uint32_t *pp, const uint16_t *c, int rs,
                           int nt, int r) {
    /* the pairs (P[h, 2i], P[h, 2i + 1]) are the BF16 row of P itself, zero-padded to an even length */
    int np = (nt + 1) / 2;
    for (int h = 0; h < H; h++) k2c_attn_bf16_round(S + (size_t)h * lds, nt, 2 * np, (uint16_t *)(pp + (size_t)h * np));
#define AC(n) acc_g(n, acc + (size_t)h0 * lda, lda, pp + (size_t)h0 * np, np, c, rs, nt, r)
    BY_GROUPS(AC);
#undef AC
}

int k2c_attn_bf16_ok(const k2c_model *m) {
    const k2c_config *c = &m->cfg;
    return m->cache_type == K2C_CACHE_BF16 && !m->cx.exact && !strcmp(m->cx.k->name, "avx512") && k2c_cpu_has_avx512bf16() &&
           c->kv_lora_rank % 32 == 0;
}
#else
void k2c_attn_bf16_scores(int H, const uint16_t *qb, int ldq, const uint16_t *c, int rs, int nt, float scale, float *S, int lds) {
    (void)H; (void)qb; (void)ldq; (void)c; (void)rs; (void)nt; (void)scale; (void)S; (void)lds;
}
void k2c_attn_bf16_acc(int H, float *acc, int lda, const float *S, int lds, uint32_t *pp, const uint16_t *c, int rs, int nt, int r) {
    (void)H; (void)acc; (void)lda; (void)S; (void)lds; (void)pp; (void)c; (void)rs; (void)nt; (void)r;
}
int k2c_attn_bf16_ok(const k2c_model *m) { (void)m; return 0; }
void k2c_attn_bf16_round(const float *x, int n, int npad, uint16_t *out) { (void)x; (void)n; (void)npad; (void)out; }
#endif

/* acc's chunk of 32: lanes j of the low half hold k = 8 (j / 4) + j % 4, of the high half k = 8 (j / 4) + 4 + j % 4
 * (the 16-bit unpacks within 128-bit lanes). */
void k2c_attn_bf16_unpermute(float *x, int r) {
    for (int kc = 0; kc < r; kc += 32) {
        float t[32];
        for (int j = 0; j < 16; j++) {
            t[8 * (j / 4) + j % 4] = x[kc + j];
            t[8 * (j / 4) + 4 + j % 4] = x[kc + 16 + j];
        }
        memcpy(x + kc, t, sizeof t);
    }
}
