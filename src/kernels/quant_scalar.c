/* GGUF block formats in portable C: each ggml block dequantized to fp32 exactly as its layout says (the
 * reference every SIMD path is checked against), and the row dot with fp32 activations (exact mode).
 *
 * Layouts (little-endian; d, dmin are IEEE half floats; a "row" of a matrix is ne[0] elements):
 *   Q4_0   32: d, qs[16]                 x = d * (nibble - 8); low nibbles are elements 0..15, high 16..31
 *   Q4_1   32: d, m, qs[16]              x = d * nibble + m
 *   Q5_0   32: d, qh[4], qs[16]          5th bit of element j is bit j of qh (u32); x = d * (q - 16)
 *   Q5_1   32: d, m, qh[4], qs[16]       x = d * q + m
 *   Q6_0   32: d, qh[8], qs[16]          (ik_llama.cpp's) element j < 16: low nibble of qs[j], 5th+6th bits
 *                                        (qh[j % 8] >> 4 (j / 8)) & 3; element j + 16: high nibble, the next two
 *                                        bits ((qh[j % 8] >> (4 (j / 8) + 2)) & 3); x = d * (q - 32)
 *   Q8_0   32: d, i8 qs[32]              x = d * q
 *   IQ4_NL 32: d, qs[16]                 x = d * k2c_iq4_nl[nibble] (a fixed non-linear table)
 *   Q2_K  256: scales[16], qs[64], d, dmin     16 groups of 16; 4-bit scale and 4-bit min per group
 *   Q3_K  256: hmask[32], qs[64], scales[12], d 16 groups of 16; 6-bit signed scales; 3rd bit in hmask
 *   Q4_K  256: d, dmin, scales[12], qs[128]    8 groups of 32; 6-bit scale and min per group
 *   Q5_K  256: d, dmin, scales[12], qh[32], qs[128]
 *   Q6_K  256: ql[128], qh[64], i8 scales[16], d   16 groups of 16
 *   IQ4_XS 256: d, scales_h (u16), scales_l[4], qs[128]   8 groups of 32, 6-bit scales, NL table
 * The codebook types: groups of 8 (or 4) values are one index into a grid (iq_grids.h), with signs stored
 * apart (IQ2/IQ3: a 7-bit index into ksigns or 8 plain bits per 8 values) and 4-bit scales:
 *   IQ2_XXS 256: d, 8 x (u32 four grid bytes, u32 four 7-bit sign indices + 4-bit scale)   x = d (0.5 + s) / 4 g
 *   IQ2_XS  256: d, u16[32] (9-bit grid index + 7-bit sign index), scales[8] (a nibble per 16)
 *   IQ2_S   256: d, qs[32] (grid index low 8), signs[32], qh[8] (2 high bits each), scales[8]
 *   IQ3_XXS 256: d, qs[64] (grid bytes, 4 values each), 8 x u32 (four sign indices + scale)  x = d (0.5 + s) / 2 g
 *   IQ3_S   256: d, qs[64], qh[8] (9th bits), signs[32], scales[4] (a nibble per 32)     x = d (1 + 2 s) g
 *   IQ1_S   256: d, qs[32], u16 qh[8] (3 high bits per index, 3-bit scale, delta sign)  x = d (2 s + 1) (g +- 1/8)
 *   IQ1_M   256: qs[32], qh[16] (3 high bits + delta sign per index), u16 scales[4] (3-bit scales; d in their top nibbles) */
#include "kernels/iq_grids.h"
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
    [K2C_FMT_IQ2_XXS] = {"IQ2_XXS", K2C_GGML_IQ2_XXS, 256, 66}, [K2C_FMT_IQ2_XS] = {"IQ2_XS", K2C_GGML_IQ2_XS, 256, 74},
    [K2C_FMT_IQ2_S] = {"IQ2_S", K2C_GGML_IQ2_S, 256, 82},       [K2C_FMT_IQ3_XXS] = {"IQ3_XXS", K2C_GGML_IQ3_XXS, 256, 98},
    [K2C_FMT_IQ3_S] = {"IQ3_S", K2C_GGML_IQ3_S, 256, 110},      [K2C_FMT_IQ1_S] = {"IQ1_S", K2C_GGML_IQ1_S, 256, 50},
    [K2C_FMT_IQ1_M] = {"IQ1_M", K2C_GGML_IQ1_M, 256, 56},       [K2C_FMT_Q6_0] = {"Q6_0", K2C_GGML_Q6_0, 32, 26},
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

static void dq_q6_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    const uint8_t *qh = b + 2, *qs = b + 10;
    for (int j = 0; j < 16; j++) {
        int h = qh[j % 8] >> (4 * (j / 8));
        y[j] = d * (float)(((qs[j] & 15) | (h & 3) << 4) - 32);
        y[j + 16] = d * (float)(((qs[j] >> 4) | ((h >> 2) & 3) << 4) - 32);
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

static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline int gv(uint64_t g, int j) { return (int)(int8_t)(uint8_t)(g >> (8 * j)); }     /* value j of a grid entry */

/* 8 values of grid entry g times db, minus signs from the bits of sg */
static inline void put8(float *y, uint64_t g, unsigned sg, float db) {
    for (int j = 0; j < 8; j++) y[j] = db * (float)gv(g, j) * ((sg >> j) & 1 ? -1.0f : 1.0f);
}

static void dq_iq2_xxs(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int ib = 0; ib < 8; ib++, y += 32) {
        uint32_t q0 = rd32(b + 2 + 8 * ib), q1 = rd32(b + 6 + 8 * ib);
        float db = d * (0.5f + (float)(q1 >> 28)) * 0.25f;
        for (int l = 0; l < 4; l++) put8(y + 8 * l, k2c_iq2xxs_grid[(q0 >> 8 * l) & 255], k2c_iq_ksigns[(q1 >> 7 * l) & 127], db);
    }
}

static void dq_iq2_xs(const uint8_t *b, float *y) {
    float d = h2f(b);
    const uint8_t *sc = b + 66;
    for (int s = 0; s < 16; s++, y += 16) {
        float db = d * (0.5f + (float)((sc[s / 2] >> 4 * (s % 2)) & 15)) * 0.25f;
        for (int k = 0; k < 2; k++) {
            int q = b[2 + 2 * (2 * s + k)] | b[3 + 2 * (2 * s + k)] << 8;
            put8(y + 8 * k, k2c_iq2xs_grid[q & 511], k2c_iq_ksigns[q >> 9], db);
        }
    }
}

static void dq_iq2_s(const uint8_t *b, float *y) {
    float d = h2f(b);
    const uint8_t *qs = b + 2, *sg = b + 34, *qh = b + 66, *sc = b + 74;
    for (int s = 0; s < 16; s++, y += 16) {
        float db = d * (0.5f + (float)((sc[s / 2] >> 4 * (s % 2)) & 15)) * 0.25f;
        for (int k = 0; k < 2; k++) {
            int i = 2 * s + k, idx = qs[i] | ((qh[i / 4] >> 2 * (i % 4)) & 3) << 8;
            put8(y + 8 * k, k2c_iq2s_grid[idx], sg[i], db);
        }
    }
}

static void dq_iq3_xxs(const uint8_t *b, float *y) {
    float d = h2f(b);
    const uint8_t *qs = b + 2;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        uint32_t sc = rd32(b + 66 + 4 * ib);
        float db = d * (0.5f + (float)(sc >> 28)) * 0.5f;
        for (int l = 0; l < 4; l++) {
            uint64_t g = (uint64_t)k2c_iq3xxs_grid[qs[8 * ib + 2 * l]] | (uint64_t)k2c_iq3xxs_grid[qs[8 * ib + 2 * l + 1]] << 32;
            put8(y + 8 * l, g, k2c_iq_ksigns[(sc >> 7 * l) & 127], db);
        }
    }
}

static void dq_iq3_s(const uint8_t *b, float *y) {
    float d = h2f(b);
    const uint8_t *qs = b + 2, *qh = b + 66, *sg = b + 74, *sc = b + 106;
    for (int s = 0; s < 8; s++, y += 32) {
        float db = d * (float)(1 + 2 * ((sc[s / 2] >> 4 * (s % 2)) & 15));
        for (int l = 0; l < 4; l++) {
            int i0 = 8 * s + 2 * l, i1 = i0 + 1;
            int a = qs[i0] | ((qh[i0 / 8] >> (i0 % 8)) & 1) << 8, c = qs[i1] | ((qh[i1 / 8] >> (i1 % 8)) & 1) << 8;
            put8(y + 8 * l, (uint64_t)k2c_iq3s_grid[a] | (uint64_t)k2c_iq3s_grid[c] << 32, sg[4 * s + l], db);
        }
    }
}

/* IQ1: grid values -1, 0, 1 plus a shared delta of +-1/8 */
static void dq_iq1_s(const uint8_t *b, float *y) {
    float d = h2f(b);
    const uint8_t *qs = b + 2, *qh = b + 34;
    for (int ib = 0; ib < 8; ib++, y += 32) {
        int h = qh[2 * ib] | qh[2 * ib + 1] << 8;
        float dl = d * (float)(2 * ((h >> 12) & 7) + 1), delta = h & 0x8000 ? -0.125f : 0.125f;
        for (int l = 0; l < 4; l++) {
            uint64_t g = k2c_iq1s_grid[qs[4 * ib + l] | ((h >> 3 * l) & 7) << 8];
            for (int j = 0; j < 8; j++) y[8 * l + j] = dl * ((float)gv(g, j) + delta);
        }
    }
}

static void dq_iq1_m(const uint8_t *b, float *y) {
    const uint8_t *qs = b, *qh = b + 32, *sc = b + 48;
    int w[4];
    for (int i = 0; i < 4; i++) w[i] = sc[2 * i] | sc[2 * i + 1] << 8;
    float d = k2c_f16_to_f32((uint16_t)((w[0] >> 12) | (w[1] >> 8 & 0xF0) | (w[2] >> 4 & 0xF00) | (w[3] & 0xF000)));
    for (int ib = 0; ib < 8; ib++)
        for (int half = 0; half < 2; half++) {
            int si = 2 * ib + half;
            float dl = d * (float)(2 * ((w[si / 4] >> 3 * (si % 4)) & 7) + 1);
            for (int q = 0; q < 2; q++, y += 8) {
                int i = 4 * ib + 2 * half + q, nib = (qh[i / 2] >> 4 * (i % 2)) & 15;
                uint64_t g = k2c_iq1s_grid[qs[i] | (nib & 7) << 8];
                float delta = nib & 8 ? -0.125f : 0.125f;
                for (int j = 0; j < 8; j++) y[j] = dl * ((float)gv(g, j) + delta);
            }
        }
}

void k2c_quant_dequant_block(k2c_wfmt f, const uint8_t *b, float *y) {
    switch (f) {
    case K2C_FMT_Q4_0: dq_q4_0(b, y); break;
    case K2C_FMT_Q4_1: dq_q4_1(b, y); break;
    case K2C_FMT_Q5_0: dq_q5(b, y, 0); break;
    case K2C_FMT_Q5_1: dq_q5(b, y, 1); break;
    case K2C_FMT_Q6_0: dq_q6_0(b, y); break;
    case K2C_FMT_Q8_0: dq_q8_0(b, y); break;
    case K2C_FMT_Q2_K: dq_q2_k(b, y); break;
    case K2C_FMT_Q3_K: dq_q3_k(b, y); break;
    case K2C_FMT_Q4_K: dq_q45_k(b, y, 0); break;
    case K2C_FMT_Q5_K: dq_q45_k(b, y, 1); break;
    case K2C_FMT_Q6_K: dq_q6_k(b, y); break;
    case K2C_FMT_IQ4_NL: dq_iq4_nl(b, y); break;
    case K2C_FMT_IQ4_XS: dq_iq4_xs(b, y); break;
    case K2C_FMT_IQ2_XXS: dq_iq2_xxs(b, y); break;
    case K2C_FMT_IQ2_XS: dq_iq2_xs(b, y); break;
    case K2C_FMT_IQ2_S: dq_iq2_s(b, y); break;
    case K2C_FMT_IQ3_XXS: dq_iq3_xxs(b, y); break;
    case K2C_FMT_IQ3_S: dq_iq3_s(b, y); break;
    case K2C_FMT_IQ1_S: dq_iq1_s(b, y); break;
    case K2C_FMT_IQ1_M: dq_iq1_m(b, y); break;
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
