/* quant_dot.h — the GGUF decode fast path, written once and compiled into every ISA's kernel file.
 *
 * A row of a block format against activations quantized to int8 (k2c_q8x). Each chunk of up to 256 elements
 * is unpacked into int8 weights w[] and, per 16 elements g, a float scale F[g] and min M[g] such that the
 * stored weights are F[g] * w - M[g]. Then, with the integer products isum[g] = sum w * q over the 16,
 *
 *     row . x  ~  sum_g  F[g] * isum[g] * d16[g]  -  M[g] * s16[g]
 *
 * which is the exact dot of the stored weights with the quantized x, up to float rounding (the test checks
 * it so). The unpacking is plain C that the vectorizer turns into the file's ISA (shifts and masks on
 * bytes); only the int8 products differ per ISA, so a file defines before including this:
 *
 *     QD_ATTR                        attributes of every function here (target ISA), may be empty
 *     void qd_isum16(const int8_t *w, const int8_t *q, int n, int32_t *out)
 *                                    out[g] = sum over w[16g .. 16g+16) * q[...], n a multiple of 32 (<= 256)
 *
 * and gets `static float qd_dot_q8(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n)` for its table.
 * The layouts are those of quant_scalar.c (the reference, whose header lists them). */
#ifndef QD_ATTR
#error "define QD_ATTR and qd_isum16 before including quant_dot.h"
#endif

typedef struct { int8_t w[256]; float F[16], M[16]; } qd_chunk;

QD_ATTR static inline float qd_h(const uint8_t *p) { return k2c_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* ---- 32-element formats: nb blocks (nb <= 8) from b into u */
QD_ATTR static void qd_q4_0(const uint8_t *b, int nb, qd_chunk *u) {
    for (int k = 0; k < nb; k++, b += 18) {
        int8_t *w = u->w + 32 * k;
        for (int j = 0; j < 16; j++) { w[j] = (int8_t)((b[2 + j] & 15) - 8); w[j + 16] = (int8_t)((b[2 + j] >> 4) - 8); }
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = 0;
    }
}

QD_ATTR static void qd_q4_1(const uint8_t *b, int nb, qd_chunk *u) {
    for (int k = 0; k < nb; k++, b += 20) {
        int8_t *w = u->w + 32 * k;
        for (int j = 0; j < 16; j++) { w[j] = (int8_t)(b[4 + j] & 15); w[j + 16] = (int8_t)(b[4 + j] >> 4); }
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = -qd_h(b + 2);        /* + m: a negative min */
    }
}

QD_ATTR static void qd_q5(const uint8_t *b, int nb, qd_chunk *u, int with_min) {
    int bb = with_min ? 24 : 22;
    for (int k = 0; k < nb; k++, b += bb) {
        const uint8_t *h = b + (with_min ? 4 : 2), *qs = h + 4;
        uint32_t qh = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        int8_t *w = u->w + 32 * k, off = with_min ? 0 : 16;
        for (int j = 0; j < 16; j++) {
            w[j] = (int8_t)(((qs[j] & 15) | (int)((qh >> j) & 1) << 4) - off);
            w[j + 16] = (int8_t)(((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - off);
        }
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = with_min ? -qd_h(b + 2) : 0;
    }
}

QD_ATTR static void qd_q8_0(const uint8_t *b, int nb, qd_chunk *u) {
    for (int k = 0; k < nb; k++, b += 34) {
        memcpy(u->w + 32 * k, b + 2, 32);
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = 0;
    }
}

QD_ATTR static void qd_iq4_nl(const uint8_t *b, int nb, qd_chunk *u) {
    for (int k = 0; k < nb; k++, b += 18) {
        int8_t *w = u->w + 32 * k;
        for (int j = 0; j < 16; j++) { w[j] = k2c_iq4_nl[b[2 + j] & 15]; w[j + 16] = k2c_iq4_nl[b[2 + j] >> 4]; }
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = 0;
    }
}

/* ---- 256-element super-blocks: one block b into u */
QD_ATTR static void qd_q2_k(const uint8_t *b, qd_chunk *u) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = qd_h(b + 80), dmin = qd_h(b + 82);
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++) u->w[128 * h + 32 * p + l] = (int8_t)((qs[32 * h + l] >> (2 * p)) & 3);
    for (int g = 0; g < 16; g++) { u->F[g] = d * (float)(sc[g] & 15); u->M[g] = dmin * (float)(sc[g] >> 4); }
}

QD_ATTR static void qd_q3_k(const uint8_t *b, qd_chunk *u) {
    const uint8_t *hm = b, *qs = b + 32, *raw = b + 96;
    float d = qd_h(b + 108);
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++)
                u->w[128 * h + 32 * p + l] =
                    (int8_t)(((qs[32 * h + l] >> (2 * p)) & 3) - (((hm[l] >> (4 * h + p)) & 1) ? 0 : 4));
    for (int g = 0; g < 16; g++) {
        int lo = g < 8 ? raw[g] & 15 : raw[g - 8] >> 4, hi = (raw[8 + g % 4] >> (2 * (g / 4))) & 3;
        u->F[g] = d * (float)((lo | hi << 4) - 32);
        u->M[g] = 0;
    }
}

QD_ATTR static void qd_q45_k(const uint8_t *b, qd_chunk *u, int five) {
    float d = qd_h(b), dmin = qd_h(b + 2);
    const uint8_t *raw = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
    for (int g = 0; g < 8; g += 2)
        for (int l = 0; l < 32; l++) {
            u->w[32 * g + l] = (int8_t)(qs[16 * g + l] & 15);
            u->w[32 * g + 32 + l] = (int8_t)(qs[16 * g + l] >> 4);
        }
    if (five)
        for (int g = 0; g < 8; g++)
            for (int l = 0; l < 32; l++) u->w[32 * g + l] = (int8_t)(u->w[32 * g + l] | ((qh[l] >> g) & 1) << 4);
    for (int g = 0; g < 8; g++) {
        int s, m;
        if (g < 4) { s = raw[g] & 63; m = raw[g + 4] & 63; }
        else { s = (raw[g + 4] & 15) | ((raw[g - 4] >> 6) << 4); m = (raw[g + 4] >> 4) | ((raw[g] >> 6) << 4); }
        u->F[2 * g] = u->F[2 * g + 1] = d * (float)s;
        u->M[2 * g] = u->M[2 * g + 1] = dmin * (float)m;
    }
}

QD_ATTR static void qd_q6_k(const uint8_t *b, qd_chunk *u) {
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = qd_h(b + 208);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        int8_t *w = u->w + 128 * h;
        for (int l = 0; l < 32; l++) {
            w[l] = (int8_t)(((ql[l] & 15) | (qh[l] & 3) << 4) - 32);
            w[l + 32] = (int8_t)(((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32);
            w[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
            w[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
        }
    }
    for (int g = 0; g < 16; g++) { u->F[g] = d * (float)sc[g]; u->M[g] = 0; }
}

QD_ATTR static void qd_iq4_xs(const uint8_t *b, qd_chunk *u) {
    float d = qd_h(b);
    int sh = b[2] | b[3] << 8;
    const uint8_t *sl = b + 4, *qs = b + 8;
    for (int g = 0; g < 8; g++) {
        int8_t *w = u->w + 32 * g;
        for (int j = 0; j < 16; j++) { w[j] = k2c_iq4_nl[qs[16 * g + j] & 15]; w[j + 16] = k2c_iq4_nl[qs[16 * g + j] >> 4]; }
        int ls = ((sl[g / 2] >> (4 * (g % 2))) & 15) | ((sh >> (2 * g)) & 3) << 4;
        u->F[2 * g] = u->F[2 * g + 1] = d * (float)(ls - 32);
        u->M[2 * g] = u->M[2 * g + 1] = 0;
    }
}

/* Unpacks the chunk of row starting at element j0 (a multiple of 256); returns its element count. */
QD_ATTR static int qd_unpack(k2c_wfmt f, const uint8_t *row, int j0, int n, qd_chunk *u) {
    int left = n - j0, nb = left < 256 ? left / 32 : 8;
    switch (f) {
    case K2C_FMT_Q4_0: qd_q4_0(row + (size_t)(j0 / 32) * 18, nb, u); return 32 * nb;
    case K2C_FMT_Q4_1: qd_q4_1(row + (size_t)(j0 / 32) * 20, nb, u); return 32 * nb;
    case K2C_FMT_Q5_0: qd_q5(row + (size_t)(j0 / 32) * 22, nb, u, 0); return 32 * nb;
    case K2C_FMT_Q5_1: qd_q5(row + (size_t)(j0 / 32) * 24, nb, u, 1); return 32 * nb;
    case K2C_FMT_Q8_0: qd_q8_0(row + (size_t)(j0 / 32) * 34, nb, u); return 32 * nb;
    case K2C_FMT_IQ4_NL: qd_iq4_nl(row + (size_t)(j0 / 32) * 18, nb, u); return 32 * nb;
    case K2C_FMT_Q2_K: qd_q2_k(row + (size_t)(j0 / 256) * 84, u); return 256;
    case K2C_FMT_Q3_K: qd_q3_k(row + (size_t)(j0 / 256) * 110, u); return 256;
    case K2C_FMT_Q4_K: qd_q45_k(row + (size_t)(j0 / 256) * 144, u, 0); return 256;
    case K2C_FMT_Q5_K: qd_q45_k(row + (size_t)(j0 / 256) * 176, u, 1); return 256;
    case K2C_FMT_Q6_K: qd_q6_k(row + (size_t)(j0 / 256) * 210, u); return 256;
    case K2C_FMT_IQ4_XS: qd_iq4_xs(row + (size_t)(j0 / 256) * 136, u); return 256;
    default: return 0;
    }
}

QD_ATTR static float qd_dot_q8(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n) {
    qd_chunk u;
    int32_t is[16];
    float acc[16] = {0};
    for (int j0 = 0; j0 < n;) {
        int m = qd_unpack(f, row, j0, n, &u);
        if (m <= 0) break;                         /* not a block format: the caller never asks */
        qd_isum16(u.w, x->q + j0, m, is);
        const float *d16 = x->d16 + j0 / 16, *s16 = x->s16 + j0 / 16;
        if (m == 256)
            for (int g = 0; g < 16; g++) acc[g] += u.F[g] * (float)is[g] * d16[g] - u.M[g] * s16[g];
        else
            for (int g = 0; g < m / 16; g++) acc[g] += u.F[g] * (float)is[g] * d16[g] - u.M[g] * s16[g];
        j0 += m;
    }
    float s = 0;
    for (int g = 0; g < 16; g++) s += acc[g];
    return s;
}
