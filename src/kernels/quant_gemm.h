/* quant_gemm.h — the int8 prompt GEMM on GGUF block formats, written once and compiled into every ISA's kernel
 * file after quant_dot.h (whose qd_unpack it reuses).
 *
 * A tile of weight rows is unpacked once into 4-row groups ("quads"): per 4 columns (a k-step) the 4 rows'
 * 4 int8 weights side by side, so one 32-bit broadcast gives a row's 4 weights against the 4 bytes each token
 * has in the same k-step of the packed activations (k2c_q8p). Per scale group g (sg = 16 or 32 columns) a quad
 * holds each row's float scale F and min M (stored weight = F w - M). With isum[r][t][g] = sum of w * q over
 * the group,
 *
 *     Y[t][r] = sum_g  F[r][g] d[t][g] isum[r][t][g]  -  M[r][g] s[t][g]
 *
 * the exact product of the stored weights with the dequantized activations, up to float rounding. The ISA file
 * defines before including this (besides what quant_dot.h asks for):
 *
 *     QG_NT      tokens one micro-kernel call covers (a multiple of K2C_Q8P_TB)
 *     void qg_kernel(const int8_t *w, const float *F, const float *M, const k2c_q8p *x,
 *                    int b, int ntok, float *Y, int ldy, int nrows, int fl, int ext)
 *                Y[t][r] for tokens 16 b .. 16 b + ntok (ntok <= QG_NT; whole blocks are read) and rows
 *                r < nrows of the quad (w, F, M as below); fl: QG_MIN / QG_PAIR / QG_SB / QG_UNS (kernels.h);
 *                ext: the ISA's optional instructions (VNNI, dotprod) may be used where the CPU has them
 *                (k2c_kctx.no_ext)
 *     QG_OFF(ext, f) optional: the offset o added to format f's weights where qg_kernel (given this ext)
 *                multiplies them as unsigned bytes, or -1 where it takes them signed (the default). The quad
 *                then holds u = w + o and M + o F in place of M (F u - (M + o F) = F w - M), so the activations
 *                go in as they are. o = 128 for x86 VNNI (vpdpbusd takes one side unsigned: the flip and the
 *                start of every group from the weights' sums were a fifth of a Q2_K prompt's micro-kernel);
 *                without VNNI qg_small_off's offset, which leaves u <= 64: vpmaddubsw's pairs of u q then fit
 *                int16 with room for a second k-step's (QG_UNS), where signed weights need the sign trick
 *
  * and gets `static void qg_gemm_q8(...)` for its table's gemm_q8. */
#ifndef QG_OFF
#define QG_OFF(ext, f) (-1)
#endif
#ifndef QD_ATTR
#error "include quant_dot.h (and its definitions) before quant_gemm.h"
#endif

/* qg_small_off: the offset that makes format f's unpacked weights unsigned and at most 64 (QG_OFF without
 * VNNI), or -1 where their range is wider (Q8_0 and the codebook types stay signed). Q2_K's weights are
 * unsigned once its sub-scales are folded in (q sc <= 45). qg_uns_flags: what the offset weights' largest
 * value allows (QG_UNS, QG_UNS4 in kernels.h). */
static inline int qg_small_off(k2c_wfmt f) {
    switch (f) {
    case K2C_FMT_Q4_1: case K2C_FMT_Q5_1: case K2C_FMT_Q2_K: case K2C_FMT_Q4_K: case K2C_FMT_Q5_K: return 0;
    case K2C_FMT_Q3_K: return 4;
    case K2C_FMT_Q4_0: case K2C_FMT_INT4: return 8;
    case K2C_FMT_Q5_0: return 16;
    case K2C_FMT_Q6_0: case K2C_FMT_Q6_K: return 32;
    default: return -1;
    }
}
static inline int qg_uns_flags(k2c_wfmt f) {
    switch (f) {
    case K2C_FMT_Q3_K: case K2C_FMT_Q4_0: case K2C_FMT_Q4_1: case K2C_FMT_Q4_K: case K2C_FMT_INT4:
    case K2C_FMT_Q5_0: case K2C_FMT_Q5_1: case K2C_FMT_Q5_K: return QG_UNS | QG_UNS4;      /* u <= 15, 31 */
    case K2C_FMT_Q2_K: case K2C_FMT_Q6_0: case K2C_FMT_Q6_K: return QG_UNS;               /* u <= 45, 63 */
    default: return 0;
    }
}

/* the parts of quad qi of a tile's scratch (k2c_q8w_bytes) */
QD_ATTR static inline void qg_quad(void *scratch, int C, int sg, int qi, int8_t **w, float **F, float **M) {
    size_t nw = k2c_ws_bytes(16 * (size_t)(C / 4)), nf = k2c_ws_bytes((size_t)(C / sg) * 4 * sizeof(float));
    char *b = (char *)scratch + (size_t)qi * (nw + 2 * nf);
    *w = (int8_t *)b;
    *F = (float *)(b + nw);
    *M = (float *)(b + nw + nf);
}

/* The 4 rows' unpacked chunks (m elements, a multiple of 32) side by side per k-step, plus off where off > 0
 * (QG_OFF): dst [m/4][4 rows][4]. */
#ifdef QG_X86
/* A 4 x 8 transpose of 32-bit words per 32 columns (the unpack's interleave was a quarter of a Q8_0 prompt's
 * time as byte copies and scalar sums) */
/* sc: Q2_K's sub-scales to fold in (qg_unpack_quad), per row and group, or NULL; w = q sc by a table lookup of
 * q (0..3) in [0, sc, 2 sc, 3 sc], one per 16-column lane (an 8-bit product has no instruction) */
QD_ATTR static inline __m256i qg_fold(__m256i r, const uint8_t *sc2) {
    __m256i lut = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_cvtsi32_si128((int)(sc2[0] * 0x03020100u))),
                                          _mm_cvtsi32_si128((int)(sc2[1] * 0x03020100u)), 1);
    return _mm256_shuffle_epi8(lut, r);
}
QD_ATTR static inline void qg_interleave(const qd_chunk *u, int m, int8_t *dst, int off, const uint8_t (*sc)[16]) {
    const __m256i o = _mm256_set1_epi8((char)(off > 0 ? off : 0));     /* 128 wraps to 0x80: the flip */
    for (int j = 0; j < m; j += 32) {
        __m256i r0 = _mm256_loadu_si256((const __m256i *)(u[0].w + j)), r1 = _mm256_loadu_si256((const __m256i *)(u[1].w + j));
        __m256i r2 = _mm256_loadu_si256((const __m256i *)(u[2].w + j)), r3 = _mm256_loadu_si256((const __m256i *)(u[3].w + j));
        if (sc) {
            r0 = qg_fold(r0, sc[0] + j / 16); r1 = qg_fold(r1, sc[1] + j / 16);
            r2 = qg_fold(r2, sc[2] + j / 16); r3 = qg_fold(r3, sc[3] + j / 16);
        }
        __m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1);   /* [k0 k1 | k4 k5], [k2 k3 | k6 k7] of rows 0, 1 */
        __m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3);
        __m256i v0 = _mm256_unpacklo_epi64(t0, t2), v1 = _mm256_unpackhi_epi64(t0, t2);   /* [k0 | k4], [k1 | k5]: rows 0-3 each */
        __m256i v2 = _mm256_unpacklo_epi64(t1, t3), v3 = _mm256_unpackhi_epi64(t1, t3);   /* [k2 | k6], [k3 | k7] */
        __m256i o0 = _mm256_permute2x128_si256(v0, v1, 0x20), o1 = _mm256_permute2x128_si256(v2, v3, 0x20);  /* k0 k1, k2 k3 */
        __m256i o2 = _mm256_permute2x128_si256(v0, v1, 0x31), o3 = _mm256_permute2x128_si256(v2, v3, 0x31);  /* k4 k5, k6 k7 */
        int8_t *d = dst + 4 * j;
        _mm256_storeu_si256((__m256i *)d, _mm256_add_epi8(o0, o));
        _mm256_storeu_si256((__m256i *)(d + 32), _mm256_add_epi8(o1, o));
        _mm256_storeu_si256((__m256i *)(d + 64), _mm256_add_epi8(o2, o));
        _mm256_storeu_si256((__m256i *)(d + 96), _mm256_add_epi8(o3, o));
    }
}
#else
QD_ATTR static inline void qg_interleave(const qd_chunk *u, int m, int8_t *dst, int off, const uint8_t (*sc)[16]) {
    for (int ks = 0; ks < m / 4; ks++)
        for (int rr = 0; rr < 4; rr++) memcpy(dst + 16 * ks + 4 * rr, u[rr].w + 4 * ks, 4);
    if (sc)     /* Q2_K's sub-scales folded in (qg_unpack_quad) */
        for (int k = 0; k < 4 * m; k++) dst[k] = (int8_t)(dst[k] * sc[(k / 4) % 4][k / 64]);   /* k: [k-step][row][4] */
    if (off > 0)
        for (int k = 0; k < 4 * m; k++) dst[k] = (int8_t)(uint8_t)((uint8_t)dst[k] + off);
}
#endif

/* rows r0 .. r0+nrows-1 (nrows <= 4) of l into a quad, chunk by chunk: the 4 rows' chunks unpacked side by side,
 * then their 4-byte k-steps interleaved; missing rows are zero (the padding of a last quad) */
QD_ATTR static void qg_unpack_quad(const k2c_linear *l, int r0, int nrows, int sg, int off, int8_t *w, float *F,
                                   float *M) {
    int C = l->cols;
    size_t rb = k2c_wfmt_row_bytes(l->fmt, C);
    qd_chunk u[4];
    /* The next quad's rows (contiguous after these) are prefetched a slice per chunk: the unpacking reads 4 rows
     * in interleaved pieces, which the hardware prefetcher followed too late (the loads from memory were most
     * of the unpack time on weights larger than the cache) */
    const char *next = NULL;
    size_t span = 0, done = 0;
    if (r0 + 4 < l->rows) {
        size_t prb = l->fmt == K2C_FMT_INT4 ? (size_t)C / 2 : rb;
        int nn = l->rows - (r0 + 4) < 4 ? l->rows - (r0 + 4) : 4;
        next = (const char *)l->w + (size_t)(r0 + 4) * prb;
        span = (size_t)nn * prb;
    }
    /* Q2_K: the 4-bit sub-scales go into the weights (w = sc q <= 45 still fits a byte and the sign trick's int16
     * pairs) and F = d for every group, so each 32 columns' two groups share F (QG_PAIR): the float step per 16
     * columns (4 k-steps of integer work) was as long as the integer work */
    int fold = l->fmt == K2C_FMT_Q2_K;
    uint8_t sc[4][16] = {{0}};
    float dq[4] = {0};
    for (int j0 = 0; j0 < C;) {
        int m = 0;
        if (next) {     /* the slice of this chunk: the share of the columns it covers */
            size_t upto = j0 + 256 >= C ? span : span * (size_t)(j0 + 256) / (size_t)C;
            for (; done < upto; done += 64) __builtin_prefetch(next + done);
        }
        for (int rr = 0; rr < 4; rr++) {
            if (rr < nrows) {
                const uint8_t *row = (const uint8_t *)l->w + (size_t)(r0 + rr) * rb;
                m = l->fmt == K2C_FMT_INT4 ? qi_unpack_int4(l, r0 + rr, j0, &u[rr])    /* int4_q8.h */
                                           : qd_unpack(l->fmt, row, j0, C, &u[rr]);
                if (fold) {
                    const uint8_t *blk = row + (size_t)(j0 / 256) * 84;
                    for (int g = 0; g < 16; g++) sc[rr][g] = blk[g] & 15;
                    dq[rr] = qd_h(blk + 80);
                }
            } else {
                memset(u[rr].w, 0, sizeof u[rr].w);
                memset(u[rr].F, 0, sizeof u[rr].F);
                memset(u[rr].M, 0, sizeof u[rr].M);
            }
        }
        if (m <= 0) {       /* not reached for the formats k2c_q8p_group accepts; zeros rather than garbage */
            memset(w + (size_t)j0 * 4, 0, (size_t)(C - j0) * 4);
            for (int g = j0 / sg; g < C / sg; g++)
                for (int rr = 0; rr < 4; rr++) F[4 * g + rr] = M[4 * g + rr] = 0;
            return;
        }
        qg_interleave(u, m, w + (size_t)j0 * 4, off, fold ? (const uint8_t (*)[16])sc : NULL);
        for (int g = 0; g < m / sg; g++) {
            int gg = j0 / sg + g;
            for (int rr = 0; rr < 4; rr++) {
                float f = fold ? dq[rr] : u[rr].F[g * sg / 16];
                F[4 * gg + rr] = f;
                M[4 * gg + rr] = u[rr].M[g * sg / 16] + (off > 0 ? (float)off * f : 0.0f);
            }
        }
        j0 += m;
    }
}

QD_ATTR static void qg_gemm_q8(const k2c_linear *l, int r0, int nr, const k2c_q8p *x, float *Y, int ldy, void *scratch) {
    int C = l->cols, sg = x->sg, nq = (nr + 3) / 4;
    k2c_wfmt f = l->fmt;
    int ext = !(l->cx && l->cx->no_ext);
    int off = QG_OFF(ext, f);
    int has_min = off > 0 || f == K2C_FMT_Q4_1 || f == K2C_FMT_Q5_1 || f == K2C_FMT_Q2_K || f == K2C_FMT_Q4_K || f == K2C_FMT_Q5_K;
    /* qg_unpack_quad's fold: F = d per super-block; with the activations' dx per 256 (k2c_q8p_span) too, one
     * float step per super-block */
    int fl = (has_min ? QG_MIN : 0) | (f == K2C_FMT_Q2_K && sg == 16 ? QG_PAIR | (x->span == 256 ? QG_SB : 0) : 0) |
             (off >= 0 && off == qg_small_off(f) ? qg_uns_flags(f) : 0);
    int8_t *w;
    float *F, *M;
    for (int qi = 0; qi < nq; qi++) {
        qg_quad(scratch, C, sg, qi, &w, &F, &M);
        qg_unpack_quad(l, r0 + 4 * qi, nr - 4 * qi < 4 ? nr - 4 * qi : 4, sg, off, w, F, M);
    }
    /* token blocks outside: one block's activations stay in cache while the tile's quads pass by */
    for (int t0 = 0; t0 < x->T; t0 += QG_NT) {
        int ntok = x->T - t0 < QG_NT ? x->T - t0 : QG_NT;
        for (int qi = 0; qi < nq; qi++) {
            qg_quad(scratch, C, sg, qi, &w, &F, &M);
            int rows = nr - 4 * qi < 4 ? nr - 4 * qi : 4;
            qg_kernel(w, F, M, x, t0 / K2C_Q8P_TB, ntok, Y + (size_t)t0 * ldy + 4 * qi, ldy, rows, fl, ext);
        }
    }
}
