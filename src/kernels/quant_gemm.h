/* quant_gemm.h — the int8 prompt GEMM on GGUF block formats, written once and compiled into every ISA's kernel
 * file after quant_dot.h (whose qd_unpack it reuses).
 *
 * A tile of weight rows is unpacked once into 4-row groups ("quads"): per 4 columns (a k-step) the 4 rows'
 * 4 int8 weights side by side, so one 32-bit broadcast gives a row's 4 weights against the 4 bytes each token
 * has in the same k-step of the packed activations (k2c_q8p). Per scale group g (sg = 16 or 32 columns) a quad
 * holds each row's float scale F and min M (stored weight = F w - M) and the integer sum S of its w. With
 * isum[r][t][g] = sum of w * q over the group,
 *
 *     Y[t][r] = sum_g  F[r][g] d[t][g] isum[r][t][g]  -  M[r][g] s[t][g]
 *
 * the exact product of the stored weights with the dequantized activations, up to float rounding. The ISA file
 * defines before including this (besides what quant_dot.h asks for):
 *
 *     QG_NT      tokens one micro-kernel call covers (a multiple of K2C_Q8P_TB)
 *     void qg_kernel(const int8_t *w, const float *F, const float *M, const int32_t *S, const k2c_q8p *x,
 *                    int b, int ntok, float *Y, int ldy, int nrows, int has_min, int ext)
 *                Y[t][r] for tokens 16 b .. 16 b + ntok (ntok <= QG_NT; whole blocks are read) and rows
 *                r < nrows of the quad (w, F, M, S as below); has_min: M is not all zero; ext: the ISA's
 *                optional instructions (VNNI, dotprod) may be used where the CPU has them (k2c_kctx.no_ext)
 *
 * and gets `static void qg_gemm_q8(...)` for its table's gemm_q8. */
#ifndef QD_ATTR
#error "include quant_dot.h (and its definitions) before quant_gemm.h"
#endif

/* the parts of quad qi of a tile's scratch (k2c_q8w_bytes) */
QD_ATTR static inline void qg_quad(void *scratch, int C, int sg, int qi, int8_t **w, float **F, float **M, int32_t **S) {
    size_t nw = k2c_ws_bytes(16 * (size_t)(C / 4)), nf = k2c_ws_bytes((size_t)(C / sg) * 4 * sizeof(float));
    char *b = (char *)scratch + (size_t)qi * (nw + 3 * nf);
    *w = (int8_t *)b;
    *F = (float *)(b + nw);
    *M = (float *)(b + nw + nf);
    *S = (int32_t *)(b + nw + 2 * nf);
}

/* rows r0 .. r0+nrows-1 (nrows <= 4) of l into a quad, chunk by chunk: the 4 rows' chunks unpacked side by side,
 * then their 4-byte k-steps interleaved; missing rows are zero (the padding of a last quad) */
QD_ATTR static void qg_unpack_quad(const k2c_linear *l, int r0, int nrows, int sg, int8_t *w, float *F, float *M, int32_t *S) {
    int C = l->cols;
    size_t rb = k2c_wfmt_row_bytes(l->fmt, C);
    qd_chunk u[4];
    for (int j0 = 0; j0 < C;) {
        int m = 0;
        for (int rr = 0; rr < 4; rr++) {
            if (rr < nrows) {
                m = l->fmt == K2C_FMT_INT4 ? qi_unpack_int4(l, r0 + rr, j0, &u[rr])    /* int4_q8.h */
                                           : qd_unpack(l->fmt, (const uint8_t *)l->w + (size_t)(r0 + rr) * rb, j0, C, &u[rr]);
            } else {
                memset(u[rr].w, 0, sizeof u[rr].w);
                memset(u[rr].F, 0, sizeof u[rr].F);
                memset(u[rr].M, 0, sizeof u[rr].M);
            }
        }
        if (m <= 0) {       /* not reached for the formats k2c_q8p_group accepts; zeros rather than garbage */
            memset(w + (size_t)j0 * 4, 0, (size_t)(C - j0) * 4);
            for (int g = j0 / sg; g < C / sg; g++)
                for (int rr = 0; rr < 4; rr++) { F[4 * g + rr] = M[4 * g + rr] = 0; S[4 * g + rr] = 0; }
            return;
        }
        int8_t *dst = w + (size_t)j0 * 4;
        for (int ks = 0; ks < m / 4; ks++)
            for (int rr = 0; rr < 4; rr++) memcpy(dst + 16 * ks + 4 * rr, u[rr].w + 4 * ks, 4);
        for (int g = 0; g < m / sg; g++) {
            int gg = j0 / sg + g;
            for (int rr = 0; rr < 4; rr++) {
                int sum = 0;
                for (int k = 0; k < sg; k++) sum += u[rr].w[g * sg + k];
                F[4 * gg + rr] = u[rr].F[g * sg / 16];
                M[4 * gg + rr] = u[rr].M[g * sg / 16];
                S[4 * gg + rr] = sum;
            }
        }
        j0 += m;
    }
}

QD_ATTR static void qg_gemm_q8(const k2c_linear *l, int r0, int nr, const k2c_q8p *x, float *Y, int ldy, void *scratch) {
    int C = l->cols, sg = x->sg, nq = (nr + 3) / 4;
    k2c_wfmt f = l->fmt;
    int ext = !(l->cx && l->cx->no_ext);
    int has_min = f == K2C_FMT_Q4_1 || f == K2C_FMT_Q5_1 || f == K2C_FMT_Q2_K || f == K2C_FMT_Q4_K || f == K2C_FMT_Q5_K;
    int8_t *w;
    float *F, *M;
    int32_t *S;
    for (int qi = 0; qi < nq; qi++) {
        qg_quad(scratch, C, sg, qi, &w, &F, &M, &S);
        qg_unpack_quad(l, r0 + 4 * qi, nr - 4 * qi < 4 ? nr - 4 * qi : 4, sg, w, F, M, S);
    }
    /* token blocks outside: one block's activations stay in cache while the tile's quads pass by */
    for (int t0 = 0; t0 < x->T; t0 += QG_NT) {
        int ntok = x->T - t0 < QG_NT ? x->T - t0 : QG_NT;
        for (int qi = 0; qi < nq; qi++) {
            qg_quad(scratch, C, sg, qi, &w, &F, &M, &S);
            int rows = nr - 4 * qi < 4 ? nr - 4 * qi : 4;
            qg_kernel(w, F, M, S, x, t0 / K2C_Q8P_TB, ntok, Y + (size_t)t0 * ldy + 4 * qi, ldy, rows, has_min, ext);
        }
    }
}
