/* The int8 prompt GEMM's portable half: which weights it runs, and the activations quantized and packed once
 * per matmul for every ISA's micro-kernel (quant_gemm.h holds the weight unpacking and the kernels' driver,
 * compiled into each kern_<isa>.c).
 *
 * The activations are quantized as the decode path's k2c_q8x at span 32 (per 32 elements dx = max|x| / 127,
 * q = round(x / dx) within +-127; the AVX2 decode without VNNI takes span 256 on the K-quants, see the table's
 * q8x_span), except on Q2_K,
 * whose prompt activations take one dx per 256 (k2c_q8p_span, ggml's Q8_K): with its sub-scales folded into the
 * weights a super-block is then one float step, which made the Q2_K GEMM 25-35% faster (bench/gemm.sh, T = 48
 * and 128, AMD Zen 5); the bundled k2-mini's Q2_K file kept its KL from BF16 (0.046801 -> 0.046805 over 40
 * chunks of bench/kl.sh's text). */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

int k2c_q8p_group(const k2c_linear *l) {
    if (l->cols <= 0 || l->cols % 32) return 0;
    switch (l->fmt) {
    /* one scale (and min) per 32 elements */
    case K2C_FMT_Q4_0: case K2C_FMT_Q4_1: case K2C_FMT_Q5_0: case K2C_FMT_Q5_1: case K2C_FMT_Q8_0:
    case K2C_FMT_IQ4_NL: case K2C_FMT_Q4_K: case K2C_FMT_Q5_K: case K2C_FMT_IQ4_XS: case K2C_FMT_IQ2_XXS:
    case K2C_FMT_IQ3_XXS: case K2C_FMT_IQ3_S: case K2C_FMT_IQ1_S:
        return 32;
    /* INT4: a BF16 scale per group of 32 or a multiple (int4_q8.h unpacks it as Q4_0) */
    case K2C_FMT_INT4: return l->block > 0 && l->block % 32 == 0 && l->scale_bf16 ? 32 : 0;
    /* per 16 */
    case K2C_FMT_Q2_K: case K2C_FMT_Q3_K: case K2C_FMT_Q6_K: case K2C_FMT_IQ2_XS: case K2C_FMT_IQ2_S: case K2C_FMT_IQ1_M:
        return 16;
    default: return 0;
    }
}

static size_t al(size_t b) { return k2c_ws_bytes(b); }

size_t k2c_q8p_bytes(int T, int C, int sg) {
    size_t nblk = (size_t)(T + K2C_Q8P_TB - 1) / K2C_Q8P_TB, ng = (size_t)(C / sg);
    return al(nblk * K2C_Q8P_TB * (size_t)C) + 2 * al(nblk * ng * K2C_Q8P_TB * sizeof(float));
}

int k2c_q8p_span(const k2c_linear *l) { return l->fmt == K2C_FMT_Q2_K && l->cols % 256 == 0 ? 256 : 32; }

void k2c_q8p_init(k2c_q8p *p, int T, int C, int sg, int span, void *buf) {
    size_t nblk = (size_t)(T + K2C_Q8P_TB - 1) / K2C_Q8P_TB, ng = (size_t)(C / sg);
    char *b = buf;
    p->q = (const int8_t *)b;
    b += al(nblk * K2C_Q8P_TB * (size_t)C);
    p->d = (const float *)b;
    b += al(nblk * ng * K2C_Q8P_TB * sizeof(float));
    p->s = (const float *)b;
    p->T = T; p->C = C; p->sg = sg; p->span = span == 256 && C % 256 == 0 ? 256 : 32; p->nblk = (int)nblk;
}

/* compiled per x86 level (K2C_CLONES): the baseline build left this loop at SSE2, a twentieth of a prompt */
K2C_CLONES void k2c_q8p_fill(const float *X, const k2c_q8p *p, int b) {
    int C = p->C, sg = p->sg, ng = C / sg;
    int8_t *q = (int8_t *)p->q + (size_t)b * K2C_Q8P_TB * (size_t)C;
    float *d = (float *)p->d + (size_t)b * (size_t)ng * K2C_Q8P_TB, *s = (float *)p->s + (size_t)b * (size_t)ng * K2C_Q8P_TB;
    for (int i = 0; i < K2C_Q8P_TB; i++) {
        int t = b * K2C_Q8P_TB + i;
        if (t >= p->T) {            /* padding: zero products, zero scales */
            for (int ks = 0; ks < C / 4; ks++) memset(q + ((size_t)ks * K2C_Q8P_TB + i) * 4, 0, 4);
            for (int g = 0; g < ng; g++) d[(size_t)g * K2C_Q8P_TB + i] = s[(size_t)g * K2C_Q8P_TB + i] = 0;
            continue;
        }
        const float *x = X + (size_t)t * C;
        float dx = 0, id = 0;
        for (int j0 = 0; j0 < C; j0 += 32) {
            if (j0 % p->span == 0) {
                float amax = 0;         /* k2c_amax32 and the rounding below: vector code, no libm calls */
                for (int k = j0; k < j0 + p->span; k += 32) {
                    float a = k2c_amax32(x + k);
                    amax = a > amax ? a : amax;
                }
                dx = amax / 127.0f;
                id = dx > 0 ? 1.0f / dx : 0.0f;
            }
            int sum[2];
            int8_t v8[32];
            k2c_q8_round32(x + j0, id, v8, sum);
            for (int k = 0; k < 32; k += 4) memcpy(q + ((size_t)((j0 + k) / 4) * K2C_Q8P_TB + i) * 4, v8 + k, 4);
            if (sg == 32) {
                d[(size_t)(j0 / 32) * K2C_Q8P_TB + i] = dx;
                s[(size_t)(j0 / 32) * K2C_Q8P_TB + i] = dx * (float)(sum[0] + sum[1]);
            } else {
                for (int h = 0; h < 2; h++) {
                    d[(size_t)(j0 / 16 + h) * K2C_Q8P_TB + i] = dx;
                    s[(size_t)(j0 / 16 + h) * K2C_Q8P_TB + i] = dx * (float)sum[h];
                }
            }
        }
    }
}

/* 4-row groups ("quads") of the unpacked tile: int8 weights [C/4][4][4], then per scale group F, M [ng][4] */
size_t k2c_q8w_bytes(int nr, int C, int sg) {
    size_t nq = (size_t)(nr + 3) / 4, ng = (size_t)(C / sg);
    return nq * (al(16 * (size_t)(C / 4)) + 2 * al(ng * 4 * sizeof(float)));
}
