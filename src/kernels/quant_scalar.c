/* GGUF block formats in portable C: each ggml block dequantized to fp32 exactly as its layout says (the
 * reference every SIMD path is checked against), and the row dot with fp32 activations (exact mode).
 *
 * Layouts (little-endian; d, dmin are IEEE half floats; a "row" of a matrix is ne[0] elements):
 *   Q4_0   32: d, qs[16]                 x = d * (nibble - 8); low nibbles are elements 0..15, high 16..31
 *   Q4_1   32: d, m, qs[16]              x = d * nibble + m
 *   Q5_0   32: d, qh[4], qs[16]          5th bit of element j is bit j of qh (u32); x = d * (q - 16)
 *   Q5_1   32: d, m, qh[4], qs[16]       x = d * q + m
 *   Q8_0   32: d, i8 qs[32]              x = d * q
 *   IQ4_NL 32: d, qs[16]                 x = d * k2c_iq4_nl[nibble] (a fixed non-linear table)
 *   Q2_K  256: scales[16], qs[64], d, dmin     16 groups of 16; 4-bit scale and 4-bit min per group
 *   Q3_K  256: hmask[32], qs[64], scales[12], d 16 groups of 16; 6-bit signed scales; 3rd bit in hmask
 *   Q4_K  256: d, dmin, scales[12], qs[128]    8 groups of 32; 6-bit scale and min per group
 *   Q5_K  256: d, dmin, scales[12], qh[32], qs[128]
 *   Q6_K  256: ql[128], qh[64], i8 scales[16], d   16 groups of 16
 *   IQ4_XS 256: d, scales_h (u16), scales_l[4], qs[128]   8 groups of 32, 6-bit scales, NL table */
#include "kernels/kernels.h"

#include <string.h>

const int8_t k2c_iq4_nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

typedef struct { const char *name; int ggml, elems, bytes; } fmt_info;
static const fmt_info FMTS[K2C_FMT_COUNT] = {
    [K2C_FMT_F32] = {"F32", K2C_GGML_F32, 1, 4},        [K2C_FMT_BF16] = {"BF16", K2C_GGML_BF16, 1, 2},
    [K2C_FMT_F16] = {"F16", K2C_GGML_F16, 1, 2},        [K2C_FMT_FP8] = {"FP8", -1, 1, 1},
    [K2C_FMT_INT4] = {"INT4", -1, 1, 0},
    [K2C_FMT_Q4_0] = {"Q4_0", K2C_GGML_Q4_0, 32, 18},   [K2C_FMT_Q4_1] = {"Q4_1", K2C_GGML_Q4_1, 32, 20},
    [K2C_FMT_Q5_0] = {"Q5_0", K2C_GGML_Q5_0, 32, 22},   [K2C_FMT_Q5_1] = {"Q5_1", K2C_GGML_Q5_1, 32, 24},
    [K2C_FMT_Q8_0] = {"Q8_0", K2C_GGML_Q8_0, 32, 34},   [K2C_FMT_Q2_K] = {"Q2_K", K2C_GGML_Q2_K, 256, 84},
    [K2C_FMT_Q3_K] = {"Q3_K", K2C_GGML_Q3_K, 256, 110}, [K2C_FMT_Q4_K] = {"Q4_K", K2C_GGML_Q4_K, 256, 144},
    [K2C_FMT_Q5_K] = {"Q5_K", K2C_GGML_Q5_K, 256, 176}, [K2C_FMT_Q6_K] = {"Q6_K", K2C_GGML_Q6_K, 256, 210},
    [K2C_FMT_IQ4_NL] = {"IQ4_NL", K2C_GGML_IQ4_NL, 32, 18}, [K2C_FMT_IQ4_XS] = {"IQ4_XS", K2C_GGML_IQ4_XS, 256, 136},
};

int k2c_wfmt_from_ggml(int t, k2c_wfmt *out) {
    for (int f = 0; f < K2C_FMT_COUNT; f++)
        if (FMTS[f].name && FMTS[f].ggml == t && t >= 0) { *out = (k2c_wfmt)f; return 0; }
    return -1;
}

const char *k2c_wfmt_name(k2c_wfmt f) { return (unsigned)f < K2C_FMT_COUNT ? FMTS[f].name : "?"; }
int k2c_wfmt_is_block(k2c_wfmt f) { return f >= K2C_FMT_Q4_0 && f < K2C_FMT_COUNT; }
int k2c_wfmt_block_elems(k2c_wfmt f) { return k2c_wfmt_is_block(f) ? FMTS[f].elems : 1; }
size_t k2c_wfmt_row_bytes(k2c_wfmt f, int cols) {
    return (size_t)(cols / FMTS[f].elems) * (size_t)FMTS[f].bytes;
}

static inline float h2f(const uint8_t *p) { return k2c_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* The 6-bit scale and min of group j (0..7) of a Q4_K/Q5_K block's 12 scale bytes. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) { *sc = q[j] & 63; *m = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 16; j++) { y[j] = d * (float)((b[2 + j] & 15) - 8); y[j + 16] = d * (float)((b[2 + j] >> 4) - 8); }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    for (int j = 0; j < 16; j++) { y[j] = d * (float)(b[4 + j] & 15) + m; y[j + 16] = d * (float)(b[4 + j] >> 4) + m; }
}

static void dq_q5(const uint8_t *b, float *y, int with_min) {
    float d = h2f(b), m = with_min ? h2f(b + 2) : 0;
    const uint8_t *h = b + (with_min ? 4 : 2), *qs = h + 4;
    uint32_t qh = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    for (int j = 0; j < 16; j++) {
        int q0 = (qs[j] & 15) | (int)((qh >> j) & 1) << 4, q1 = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        if (with_min) { y[j] = d * (float)q0 + m; y[j + 16] = d * (float)q1 + m; }
        else { y[j] = d * (float)(q0 - 16); y[j + 16] = d * (float)(q1 - 16); }
    }
}

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

static void dq_iq4_nl(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 16; j++) { y[j] = d * (float)k2c_iq4_nl[b[2 + j] & 15]; y[j + 16] = d * (float)k2c_iq4_nl[b[2 + j] >> 4]; }
}

static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = h2f(b + 80), dmin = h2f(b + 82);
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++)
            for (int half = 0; half < 2; half++) {
                int s = sc[8 * h + 2 * p + half];
                float dl = d * (float)(s & 15), ml = dmin * (float)(s >> 4);
                const uint8_t *q = qs + 32 * h + 16 * half;
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l] >> (2 * p)) & 3) - ml;
            }
}

static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *raw = b + 96;
    float d = h2f(b + 108);
    int sc[16];
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? raw[i] & 15 : raw[i - 8] >> 4, hi = (raw[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (lo | hi << 4) - 32;
    }
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++)
            for (int half = 0; half < 2; half++) {
                float dl = d * (float)sc[8 * h + 2 * p + half];
                for (int l = 16 * half; l < 16 * half + 16; l++) {
                    int q = (qs[32 * h + l] >> (2 * p)) & 3;
                    if (!((hm[l] >> (4 * h + p)) & 1)) q -= 4;
                    *y++ = dl * (float)q;
                }
            }
}

static void dq_q45_k(const uint8_t *b, float *y, int five) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *raw = b + 4, *qh = five ? b + 16 : NULL, *qs = b + (five ? 48 : 16);
    for (int g = 0; g < 8; g++) {
        int s, m;
        scale_min_k4(g, raw, &s, &m);
        float dl = d * (float)s, ml = dmin * (float)m;
        const uint8_t *q = qs + 32 * (g / 2);
        for (int l = 0; l < 32; l++) {
            int v = g % 2 ? q[l] >> 4 : q[l] & 15;
            if (qh) v += ((qh[l] >> g) & 1) << 4;
            *y++ = dl * (float)v - ml;
        }
    }
}

static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h2f(b + 208);
    for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
            int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
            int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
}

static void dq_iq4_xs(const uint8_t *b, float *y) {
    float d = h2f(b);
    int sh = b[2] | b[3] << 8;
    const uint8_t *sl = b + 4, *qs = b + 8;
    for (int g = 0; g < 8; g++, qs += 16, y += 32) {
        int ls = ((sl[g / 2] >> (4 * (g % 2))) & 15) | ((sh >> (2 * g)) & 3) << 4;
        float dl = d * (float)(ls - 32);
        for (int j = 0; j < 16; j++) { y[j] = dl * (float)k2c_iq4_nl[qs[j] & 15]; y[j + 16] = dl * (float)k2c_iq4_nl[qs[j] >> 4]; }
    }
}

void k2c_quant_dequant_block(k2c_wfmt f, const uint8_t *b, float *y) {
    switch (f) {
    case K2C_FMT_Q4_0: dq_q4_0(b, y); break;
    case K2C_FMT_Q4_1: dq_q4_1(b, y); break;
    case K2C_FMT_Q5_0: dq_q5(b, y, 0); break;
    case K2C_FMT_Q5_1: dq_q5(b, y, 1); break;
    case K2C_FMT_Q8_0: dq_q8_0(b, y); break;
    case K2C_FMT_Q2_K: dq_q2_k(b, y); break;
    case K2C_FMT_Q3_K: dq_q3_k(b, y); break;
    case K2C_FMT_Q4_K: dq_q45_k(b, y, 0); break;
    case K2C_FMT_Q5_K: dq_q45_k(b, y, 1); break;
    case K2C_FMT_Q6_K: dq_q6_k(b, y); break;
    case K2C_FMT_IQ4_NL: dq_iq4_nl(b, y); break;
    case K2C_FMT_IQ4_XS: dq_iq4_xs(b, y); break;
    default: memset(y, 0, (size_t)k2c_wfmt_block_elems(f) * sizeof *y); break;   /* not a block format */
    }
}

static inline const uint8_t *row_ptr(const k2c_linear *l, int r) {
    return (const uint8_t *)l->w + (size_t)r * k2c_wfmt_row_bytes(l->fmt, l->cols);
}

void k2c_quant_dequant_row(const k2c_linear *l, int r, float *out) {
    int n = FMTS[l->fmt].elems, bb = FMTS[l->fmt].bytes;
    const uint8_t *b = row_ptr(l, r);
    for (int j = 0; j < l->cols; j += n, b += bb) k2c_quant_dequant_block(l->fmt, b, out + j);
}

/* Each block dequantized into registers-sized scratch and dotted with its slice of x; block sums are added
 * in order, so the result does not depend on the CPU. */
float k2c_quant_dot_row(const k2c_linear *l, int r, const float *x) {
    int n = FMTS[l->fmt].elems, bb = FMTS[l->fmt].bytes;
    const uint8_t *b = row_ptr(l, r);
    float tmp[256], acc = 0;
    for (int j = 0; j < l->cols; j += n, b += bb) {
        k2c_quant_dequant_block(l->fmt, b, tmp);
        float s = 0;
        for (int k = 0; k < n; k++) s += tmp[k] * x[j + k];
        acc += s;
    }
    return acc;
}
