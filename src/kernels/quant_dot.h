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
 * and may define (else portable C is used)
 *
 *     QD_F16(bits)                   an IEEE half (uint16_t) to float, in registers (F16C, FCVT)
 *     void qd_nl16(const uint8_t *qs, int8_t *w)
 *                                    IQ4 levels: w[j] = k2c_iq4_nl[qs[j] & 15], w[j + 16] = ...[qs[j] >> 4]
 *                                    for j < 16 (a byte shuffle where the ISA has one)
 *     void qd_nib(const uint8_t *qs, int n, int off, int8_t *lo, int8_t *hi)
 *                                    nibbles: lo[j] = (qs[j] & 15) - off, hi[j] = (qs[j] >> 4) - off, j < n
 *                                    (n = 16 or 32). Given per ISA because GCC vectorizes the plain loop
 *                                    across blocks with byte gathers, many times slower.
 *     void qd_bits(const uint8_t *src, int shift, int mask, int8_t *dst)
 *                                    dst[l] = (src[l] >> shift) & mask for l < 32 (x86 has no byte shifts)
 *     void qd_q5w(const uint8_t *qs, uint32_t qh, int off, int8_t *w)
 *                                    one Q5 block: w[j] = (nibble j of qs | 16 * bit j of qh) - off, j < 32
 *                                    (nibble j: qs[j] & 15, nibble j + 16: qs[j] >> 4), in registers and one
 *                                    store (pieces stored and read back as one vector wait for the store buffer:
 *                                    a third of the other types' speed)
 *     void qd_q6w(const uint8_t *qs, const uint8_t *qh, int8_t *w)
 *                                    one Q6_0 block: w[j] = (nibble j | 16 * its two high bits) - 32, the same way
 *
 *     int qd_dot_direct(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n, int ext, float *out)
 *                                    (define QD_HAVE_DOT_DIRECT) a whole row of f straight from its blocks where
 *                                    the file has a kernel for f (returns 1), else 0; ext: the optional
 *                                    instructions (QD_EXT()) may be used (quant_dot_x86.h: the K-quants, IQ4_XS,
 *                                    Q4_0, Q5_0, IQ4_NL, Q8_0 of quant_dot_kq_x86.h and the IQ1/IQ2/IQ3 codebook
 *                                    types of quant_dot_iq_x86.h)
 *     int QD_EXT()                   whether the CPU has the file's optional instructions (default 0)
 *
 * and gets `static float qd_dot_q8(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n)` for its table
 * (and, with QD_HAVE_DOT_DIRECT, qd_dot_q8_base: the same with ext = 0).
 * The layouts are those of quant_scalar.c (the reference, whose header lists them). */
#ifndef QD_ATTR
#error "define QD_ATTR and qd_isum16 before including quant_dot.h"
#endif

typedef struct { int8_t w[256]; float F[16], M[16]; } qd_chunk;

#ifdef QD_F16
#define QD_HALF(bits) QD_F16(bits)
#else
#define QD_HALF(bits) k2c_f16_to_f32(bits)
#endif
QD_ATTR static inline float qd_h(const uint8_t *p) { return QD_HALF((uint16_t)(p[0] | p[1] << 8)); }

#ifndef QD_HAVE_NIB
QD_ATTR static inline void qd_nib(const uint8_t *qs, int n, int off, int8_t *lo, int8_t *hi) {
    for (int j = 0; j < n; j++) { lo[j] = (int8_t)((qs[j] & 15) - off); hi[j] = (int8_t)((qs[j] >> 4) - off); }
}
#endif

#ifndef QD_HAVE_BITS
QD_ATTR static inline void qd_bits(const uint8_t *src, int shift, int mask, int8_t *dst) {
    for (int l = 0; l < 32; l++) dst[l] = (int8_t)((src[l] >> shift) & mask);
}
#endif

#ifndef QD_HAVE_Q5W
QD_ATTR static inline void qd_q5w(const uint8_t *qs, uint32_t qh, int off, int8_t *w) {
    for (int j = 0; j < 16; j++) {
        w[j] = (int8_t)(((qs[j] & 15) | (int)((qh >> j) & 1) << 4) - off);
        w[j + 16] = (int8_t)(((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - off);
    }
}
#endif

#ifndef QD_HAVE_Q6W
QD_ATTR static inline void qd_q6w(const uint8_t *qs, const uint8_t *qh, int8_t *w) {
    for (int j = 0; j < 8; j++) {
        int h = qh[j];
        w[j] = (int8_t)(((qs[j] & 15) | (h & 3) << 4) - 32);
        w[j + 8] = (int8_t)(((qs[j + 8] & 15) | ((h >> 4) & 3) << 4) - 32);
        w[j + 16] = (int8_t)(((qs[j] >> 4) | ((h >> 2) & 3) << 4) - 32);
        w[j + 24] = (int8_t)(((qs[j + 8] >> 4) | ((h >> 6) & 3) << 4) - 32);
    }
}
#endif

#ifndef QD_HAVE_NL16
QD_ATTR static inline void qd_nl16(const uint8_t *qs, int8_t *w) {
    for (int j = 0; j < 16; j++) { w[j] = k2c_iq4_nl[qs[j] & 15]; w[j + 16] = k2c_iq4_nl[qs[j] >> 4]; }
}
#endif

/* ---- 32-element formats: nb blocks (nb <= 8) from b into u */
QD_ATTR static void qd_q4_0(const uint8_t *b, int nb, qd_chunk *u) {
    for (int k = 0; k < nb; k++, b += 18) {
        qd_nib(b + 2, 16, 8, u->w + 32 * k, u->w + 32 * k + 16);
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = 0;
    }
}

QD_ATTR static void qd_q4_1(const uint8_t *b, int nb, qd_chunk *u) {
    for (int k = 0; k < nb; k++, b += 20) {
        qd_nib(b + 4, 16, 0, u->w + 32 * k, u->w + 32 * k + 16);
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = -qd_h(b + 2);        /* + m: a negative min */
    }
}

QD_ATTR static void qd_q5(const uint8_t *b, int nb, qd_chunk *u, int with_min) {
    int bb = with_min ? 24 : 22;
    for (int k = 0; k < nb; k++, b += bb) {
        const uint8_t *h = b + (with_min ? 4 : 2), *qs = h + 4;
        uint32_t qh = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        qd_q5w(qs, qh, with_min ? 0 : 16, u->w + 32 * k);
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = with_min ? -qd_h(b + 2) : 0;
    }
}

QD_ATTR static void qd_q6_0(const uint8_t *b, int nb, qd_chunk *u) {
    for (int k = 0; k < nb; k++, b += 26) {
        qd_q6w(b + 10, b + 2, u->w + 32 * k);
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = 0;
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
        qd_nl16(b + 2, u->w + 32 * k);
        u->F[2 * k] = u->F[2 * k + 1] = qd_h(b);
        u->M[2 * k] = u->M[2 * k + 1] = 0;
    }
}

/* ---- 256-element super-blocks: one block b into u */
QD_ATTR static void qd_q2_k(const uint8_t *b, qd_chunk *u) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = qd_h(b + 80), dmin = qd_h(b + 82);
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++) qd_bits(qs + 32 * h, 2 * p, 3, u->w + 128 * h + 32 * p);
    for (int g = 0; g < 16; g++) { u->F[g] = d * (float)(sc[g] & 15); u->M[g] = dmin * (float)(sc[g] >> 4); }
}

QD_ATTR static void qd_q3_k(const uint8_t *b, qd_chunk *u) {
    const uint8_t *hm = b, *qs = b + 32, *raw = b + 96;
    float d = qd_h(b + 108);
    int8_t hb[32];
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++) {
            int8_t *w = u->w + 128 * h + 32 * p;
            qd_bits(qs + 32 * h, 2 * p, 3, w);
            qd_bits(hm, 4 * h + p, 1, hb);                  /* the high bit clear: the value is 4 lower */
            for (int l = 0; l < 32; l++) w[l] = (int8_t)(w[l] + 4 * hb[l] - 4);
        }
    for (int g = 0; g < 16; g++) {
        int lo = g < 8 ? raw[g] & 15 : raw[g - 8] >> 4, hi = (raw[8 + g % 4] >> (2 * (g / 4))) & 3;
        u->F[g] = d * (float)((lo | hi << 4) - 32);
        u->M[g] = 0;
    }
}

QD_ATTR static void qd_q45_k(const uint8_t *b, qd_chunk *u, int five) {
    float d = qd_h(b), dmin = qd_h(b + 2);
    const uint8_t *raw = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
    for (int g = 0; g < 8; g += 2) qd_nib(qs + 16 * g, 32, 0, u->w + 32 * g, u->w + 32 * g + 32);
    if (five) {
        int8_t hb[32];
        for (int g = 0; g < 8; g++) {
            qd_bits(qh, g, 1, hb);
            for (int l = 0; l < 32; l++) u->w[32 * g + l] = (int8_t)(u->w[32 * g + l] | hb[l] << 4);
        }
    }
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
        qd_nl16(qs + 16 * g, u->w + 32 * g);
        int ls = ((sl[g / 2] >> (4 * (g % 2))) & 15) | ((sh >> (2 * g)) & 3) << 4;
        u->F[2 * g] = u->F[2 * g + 1] = d * (float)(ls - 32);
        u->M[2 * g] = u->M[2 * g + 1] = 0;
    }
}

/* ---- the codebook types: grid values (small integers) with their signs; IQ1's delta of +-1/8 becomes +-1 on
 * values scaled by 8 */
QD_ATTR static inline uint32_t qd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
QD_ATTR static inline void qd_grid8(int8_t *w, uint64_t g, unsigned sg) {
    for (int j = 0; j < 8; j++) { int v = (int8_t)(uint8_t)(g >> (8 * j)); w[j] = (int8_t)((sg >> j) & 1 ? -v : v); }
}

QD_ATTR static void qd_iq2_xxs(const uint8_t *b, qd_chunk *u) {
    float d = qd_h(b);
    for (int ib = 0; ib < 8; ib++) {
        uint32_t q0 = qd_u32(b + 2 + 8 * ib), q1 = qd_u32(b + 6 + 8 * ib);
        for (int l = 0; l < 4; l++)
            qd_grid8(u->w + 32 * ib + 8 * l, k2c_iq2xxs_grid[(q0 >> 8 * l) & 255], k2c_iq_ksigns[(q1 >> 7 * l) & 127]);
        u->F[2 * ib] = u->F[2 * ib + 1] = d * (0.5f + (float)(q1 >> 28)) * 0.25f;
        u->M[2 * ib] = u->M[2 * ib + 1] = 0;
    }
}

QD_ATTR static void qd_iq2_xs(const uint8_t *b, qd_chunk *u) {
    float d = qd_h(b);
    for (int s = 0; s < 16; s++) {
        for (int k = 0; k < 2; k++) {
            int q = b[2 + 2 * (2 * s + k)] | b[3 + 2 * (2 * s + k)] << 8;
            qd_grid8(u->w + 16 * s + 8 * k, k2c_iq2xs_grid[q & 511], k2c_iq_ksigns[q >> 9]);
        }
        u->F[s] = d * (0.5f + (float)((b[66 + s / 2] >> 4 * (s % 2)) & 15)) * 0.25f;
        u->M[s] = 0;
    }
}

QD_ATTR static void qd_iq2_s(const uint8_t *b, qd_chunk *u) {
    float d = qd_h(b);
    const uint8_t *qs = b + 2, *sg = b + 34, *qh = b + 66, *sc = b + 74;
    for (int s = 0; s < 16; s++) {
        for (int k = 0; k < 2; k++) {
            int i = 2 * s + k;
            qd_grid8(u->w + 8 * i, k2c_iq2s_grid[qs[i] | ((qh[i / 4] >> 2 * (i % 4)) & 3) << 8], sg[i]);
        }
        u->F[s] = d * (0.5f + (float)((sc[s / 2] >> 4 * (s % 2)) & 15)) * 0.25f;
        u->M[s] = 0;
    }
}

QD_ATTR static void qd_iq3_xxs(const uint8_t *b, qd_chunk *u) {
    float d = qd_h(b);
    const uint8_t *qs = b + 2;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t sc = qd_u32(b + 66 + 4 * ib);
        for (int l = 0; l < 4; l++)
            qd_grid8(u->w + 32 * ib + 8 * l,
                     (uint64_t)k2c_iq3xxs_grid[qs[8 * ib + 2 * l]] | (uint64_t)k2c_iq3xxs_grid[qs[8 * ib + 2 * l + 1]] << 32,
                     k2c_iq_ksigns[(sc >> 7 * l) & 127]);
        u->F[2 * ib] = u->F[2 * ib + 1] = d * (0.5f + (float)(sc >> 28)) * 0.5f;
        u->M[2 * ib] = u->M[2 * ib + 1] = 0;
    }
}

QD_ATTR static void qd_iq3_s(const uint8_t *b, qd_chunk *u) {
    float d = qd_h(b);
    const uint8_t *qs = b + 2, *qh = b + 66, *sg = b + 74, *sc = b + 106;
    for (int s = 0; s < 8; s++) {
        for (int l = 0; l < 4; l++) {
            int i0 = 8 * s + 2 * l, i1 = i0 + 1;
            int a = qs[i0] | ((qh[i0 / 8] >> (i0 % 8)) & 1) << 8, c = qs[i1] | ((qh[i1 / 8] >> (i1 % 8)) & 1) << 8;
            qd_grid8(u->w + 32 * s + 8 * l, (uint64_t)k2c_iq3s_grid[a] | (uint64_t)k2c_iq3s_grid[c] << 32, sg[4 * s + l]);
        }
        u->F[2 * s] = u->F[2 * s + 1] = d * (float)(1 + 2 * ((sc[s / 2] >> 4 * (s % 2)) & 15));
        u->M[2 * s] = u->M[2 * s + 1] = 0;
    }
}

/* 8 * (grid value + delta), delta = -1/8 when neg: -9 .. 9 */
QD_ATTR static inline void qd_grid1(int8_t *w, uint64_t g, int neg) {
    for (int j = 0; j < 8; j++) w[j] = (int8_t)(8 * (int8_t)(uint8_t)(g >> (8 * j)) + (neg ? -1 : 1));
}

QD_ATTR static void qd_iq1_s(const uint8_t *b, qd_chunk *u) {
    float d = qd_h(b);
    const uint8_t *qs = b + 2, *qh = b + 34;
    for (int ib = 0; ib < 8; ib++) {
        int h = qh[2 * ib] | qh[2 * ib + 1] << 8;
        for (int l = 0; l < 4; l++) qd_grid1(u->w + 32 * ib + 8 * l, k2c_iq1s_grid[qs[4 * ib + l] | ((h >> 3 * l) & 7) << 8], h & 0x8000);
        u->F[2 * ib] = u->F[2 * ib + 1] = d * (float)(2 * ((h >> 12) & 7) + 1) * 0.125f;
        u->M[2 * ib] = u->M[2 * ib + 1] = 0;
    }
}

QD_ATTR static void qd_iq1_m(const uint8_t *b, qd_chunk *u) {
    const uint8_t *qs = b, *qh = b + 32, *sc = b + 48;
    int w[4];
    for (int i = 0; i < 4; i++) w[i] = sc[2 * i] | sc[2 * i + 1] << 8;
    float d = QD_HALF((uint16_t)((w[0] >> 12) | (w[1] >> 8 & 0xF0) | (w[2] >> 4 & 0xF00) | (w[3] & 0xF000)));
    for (int si = 0; si < 16; si++) {
        for (int q = 0; q < 2; q++) {
            int i = 2 * si + q, nib = (qh[i / 2] >> 4 * (i % 2)) & 15;
            qd_grid1(u->w + 8 * i, k2c_iq1s_grid[qs[i] | (nib & 7) << 8], nib & 8);
        }
        u->F[si] = d * (float)(2 * ((w[si / 4] >> 3 * (si % 4)) & 7) + 1) * 0.125f;
        u->M[si] = 0;
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
    case K2C_FMT_Q6_0: qd_q6_0(row + (size_t)(j0 / 32) * 26, nb, u); return 32 * nb;
    case K2C_FMT_Q8_0: qd_q8_0(row + (size_t)(j0 / 32) * 34, nb, u); return 32 * nb;
    case K2C_FMT_IQ4_NL: qd_iq4_nl(row + (size_t)(j0 / 32) * 18, nb, u); return 32 * nb;
    case K2C_FMT_Q2_K: qd_q2_k(row + (size_t)(j0 / 256) * 84, u); return 256;
    case K2C_FMT_Q3_K: qd_q3_k(row + (size_t)(j0 / 256) * 110, u); return 256;
    case K2C_FMT_Q4_K: qd_q45_k(row + (size_t)(j0 / 256) * 144, u, 0); return 256;
    case K2C_FMT_Q5_K: qd_q45_k(row + (size_t)(j0 / 256) * 176, u, 1); return 256;
    case K2C_FMT_Q6_K: qd_q6_k(row + (size_t)(j0 / 256) * 210, u); return 256;
    case K2C_FMT_IQ4_XS: qd_iq4_xs(row + (size_t)(j0 / 256) * 136, u); return 256;
    case K2C_FMT_IQ2_XXS: qd_iq2_xxs(row + (size_t)(j0 / 256) * 66, u); return 256;
    case K2C_FMT_IQ2_XS: qd_iq2_xs(row + (size_t)(j0 / 256) * 74, u); return 256;
    case K2C_FMT_IQ2_S: qd_iq2_s(row + (size_t)(j0 / 256) * 82, u); return 256;
    case K2C_FMT_IQ3_XXS: qd_iq3_xxs(row + (size_t)(j0 / 256) * 98, u); return 256;
    case K2C_FMT_IQ3_S: qd_iq3_s(row + (size_t)(j0 / 256) * 110, u); return 256;
    case K2C_FMT_IQ1_S: qd_iq1_s(row + (size_t)(j0 / 256) * 50, u); return 256;
    case K2C_FMT_IQ1_M: qd_iq1_m(row + (size_t)(j0 / 256) * 56, u); return 256;
    default: return 0;
    }
}

/* Two chunks in flight: the next chunk is unpacked before the current one is multiplied. The unpacking writes
 * w, F and M in small pieces and the products read them back as whole vectors; a load that spans several
 * recent stores cannot be forwarded from the store buffer and waits for them to reach the cache, so giving
 * the stores a chunk's worth of work to drain in keeps those waits off the critical path (measured on Zen 5,
 * one thread: 10-30% depending on the type). */
QD_ATTR static float qd_dot_q8_ext(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n, int ext) {
#ifdef QD_HAVE_DOT_DIRECT
    float r;
    if (qd_dot_direct(f, row, x, n, ext, &r)) return r;
#else
    (void)ext;
#endif
    qd_chunk u[2];
    int32_t is[16];
    float acc[16] = {0};
    int m[2], cur = 0, j0 = 0;
    m[0] = qd_unpack(f, row, 0, n, &u[0]);
    while (m[cur] > 0) {
        int jn = j0 + m[cur];
        m[!cur] = jn < n ? qd_unpack(f, row, jn, n, &u[!cur]) : 0;
        const qd_chunk *c = &u[cur];
        qd_isum16(c->w, x->q + j0, m[cur], is);
        const float *d16 = x->d16 + j0 / 16, *s16 = x->s16 + j0 / 16;
        if (m[cur] == 256)
            for (int g = 0; g < 16; g++) acc[g] += c->F[g] * (float)is[g] * d16[g] - c->M[g] * s16[g];
        else
            for (int g = 0; g < m[cur] / 16; g++) acc[g] += c->F[g] * (float)is[g] * d16[g] - c->M[g] * s16[g];
        j0 = jn;
        cur = !cur;
    }
    float s = 0;
    for (int g = 0; g < 16; g++) s += acc[g];
    return s;
}

/* the table's dot_q8: the optional instructions (QD_EXT(), e.g. VNNI) where the CPU has them */
#ifndef QD_EXT
#define QD_EXT() 0
#endif
QD_ATTR static float qd_dot_q8(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n) {
    return qd_dot_q8_ext(f, row, x, n, QD_EXT());
}
/* the table's dot_q8_rows: nr rows rb bytes apart, the ones up to avail past row0 prefetched pf bytes ahead */
QD_ATTR static void qd_dot_q8_rows(k2c_wfmt f, const uint8_t *row0, size_t rb, int nr, int avail, const k2c_q8x *x,
                                   int n, float *y, size_t pf) {
#ifdef QD_HAVE_DOT_DIRECT
    if (qd_rows_direct(f, row0, rb, nr, avail, x, n, QD_EXT(), y, pf)) return;
#endif
    int ahead = pf ? (int)((pf + rb - 1) / rb) : avail;
    for (int i = 0; i < nr; i++) {
        if (i + ahead < avail)
            for (size_t o = 0; o < rb; o += 64) __builtin_prefetch(row0 + (size_t)(i + ahead) * rb + o);
        y[i] = qd_dot_q8(f, row0 + (size_t)i * rb, x, n);
    }
}
#ifdef QD_HAVE_DOT_DIRECT
/* dot_q8_base: the same kernels without them, which the tests check beside dot_q8 on a CPU that has them */
QD_ATTR static float qd_dot_q8_base(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n) {
    return qd_dot_q8_ext(f, row, x, n, 0);
}
#endif
