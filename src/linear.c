/* A weight matrix in the format it was published in, and the kernels that read it.
 *
 * A 1T-parameter model cannot be expanded to fp32, so weights stay as stored (BF16, FP8 with 128x128
 * block scales, INT4 groups of 32) and every kernel dequantizes on the fly. Decode is bound by memory
 * bandwidth: the matvec kernels read each weight byte once and keep activations in fp32.
 * Prefill dequantizes tiles of rows to fp32 and hands them to sgemm, amortizing the conversion over
 * all tokens of the prompt.
 *
 * SIMD: AVX-512 kernels are compiled with target attributes and chosen at run time when the CPU has
 * them (K2C_SIMD=scalar forces the portable path, which the tests also run). */
#include "k2c.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static float fp8_lut[256];
static int simd_level;   /* 0 scalar, 2 avx512 */
static int bf16_prompt;  /* BF16 weights x BF16-rounded inputs for prompts (AVX512-BF16) */

__attribute__((constructor)) static void linear_init(void) {
    for (int i = 0; i < 256; i++) fp8_lut[i] = k2c_fp8_to_f32((uint8_t)i);
    const char *force = getenv("K2C_SIMD");
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) simd_level = 2;
#endif
    if (force && !strcmp(force, "scalar")) simd_level = 0;
    /* "bf16": round prompt inputs to BF16 for vdpbf16ps. Opt-in: on the Xeon we measured it was no faster
     * than the fp32 kernel (vdpbf16ps issues at half the rate of FMA there), and fp32 inputs are exact. */
    const char *pp = getenv("K2C_PROMPT_PRECISION");
    bf16_prompt = k2c_bf16_prompt_supported() && pp && !strcmp(pp, "bf16");
}

int k2c_bf16_prompt_supported(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

int k2c_set_bf16_prompt(int on) {
    if (on && !k2c_bf16_prompt_supported()) return -1;
    bf16_prompt = on;
    return 0;
}

int k2c_bf16_prompt(void) { return bf16_prompt && simd_level == 2; }

const char *k2c_simd_name(void) { return simd_level == 2 ? "avx512" : "scalar"; }

int k2c_simd_force(const char *name) {
    if (!strcmp(name, "scalar")) { simd_level = 0; return 0; }
#if defined(__x86_64__)
    if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
        simd_level = 2;
        return 0;
    }
#endif
    return -1;
}

size_t k2c_linear_bytes(const k2c_linear *l) {
    size_t n = (size_t)l->rows * (size_t)l->cols;
    switch (l->fmt) {
    case K2C_FMT_F32: return 4 * n;
    case K2C_FMT_BF16: case K2C_FMT_F16: return 2 * n;
    case K2C_FMT_FP8: return n + 4 * (size_t)((l->rows + l->block - 1) / l->block) * (size_t)l->scale_cols;
    case K2C_FMT_INT4: return n / 2 + 2 * (size_t)l->rows * (size_t)l->scale_cols;
    }
    return 0;
}

/* ------------------------------------------------------------------ dequantization (reference path) */
static void dequant_row(const k2c_linear *l, int r, float *out) {
    int n = l->cols;
    size_t off = (size_t)r * (size_t)n;
    switch (l->fmt) {
    case K2C_FMT_F32: memcpy(out, (const float *)l->w + off, (size_t)n * 4); break;
    case K2C_FMT_BF16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) out[j] = k2c_bf16_to_f32(w[j]);
        break; }
    case K2C_FMT_F16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) out[j] = k2c_f16_to_f32(w[j]);
        break; }
    case K2C_FMT_FP8: { const uint8_t *w = (const uint8_t *)l->w + off;
        const float *s = l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols;
        for (int j = 0; j < n; j++) out[j] = fp8_lut[w[j]] * s[j / l->block];
        break; }
    case K2C_FMT_INT4: { const uint32_t *w = (const uint32_t *)l->w + (size_t)r * (size_t)(n / 8);
        const uint16_t *s = l->scale_bf16 + (size_t)r * (size_t)l->scale_cols;
        for (int j = 0; j < n; j++) {
            int q = (int)((w[j / 8] >> (4 * (j % 8))) & 0xf) - 8;
            out[j] = (float)q * k2c_bf16_to_f32(s[j / l->block]);
        }
        break; }
    }
}

void k2c_linear_dequant_rows(const k2c_linear *l, int r0, int nrows, float *out) {
    for (int i = 0; i < nrows; i++) dequant_row(l, r0 + i, out + (size_t)i * (size_t)l->cols);
}

/* ------------------------------------------------------------------ scalar row dots */
static float dot_row_scalar(const k2c_linear *l, int r, const float *x) {
    int n = l->cols;
    size_t off = (size_t)r * (size_t)n;
    float acc = 0;
    switch (l->fmt) {
    case K2C_FMT_F32: { const float *w = (const float *)l->w + off;
        for (int j = 0; j < n; j++) acc += w[j] * x[j];
        break; }
    case K2C_FMT_BF16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) acc += k2c_bf16_to_f32(w[j]) * x[j];
        break; }
    case K2C_FMT_F16: { const uint16_t *w = (const uint16_t *)l->w + off;
        for (int j = 0; j < n; j++) acc += k2c_f16_to_f32(w[j]) * x[j];
        break; }
    case K2C_FMT_FP8: { const uint8_t *w = (const uint8_t *)l->w + off;
        const float *s = l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols;
        for (int j0 = 0; j0 < n; j0 += l->block) {
            int j1 = j0 + l->block < n ? j0 + l->block : n;
            float b = 0;
            for (int j = j0; j < j1; j++) b += fp8_lut[w[j]] * x[j];
            acc += b * s[j0 / l->block];
        }
        break; }
    case K2C_FMT_INT4: { const uint32_t *w = (const uint32_t *)l->w + (size_t)r * (size_t)(n / 8);
        const uint16_t *s = l->scale_bf16 + (size_t)r * (size_t)l->scale_cols;
        for (int g = 0; g < n / l->block; g++) {
            float b = 0;
            for (int j = g * l->block; j < (g + 1) * l->block; j++)
                b += (float)((int)((w[j / 8] >> (4 * (j % 8))) & 0xf) - 8) * x[j];
            acc += b * k2c_bf16_to_f32(s[g]);
        }
        break; }
    }
    return acc;
}

/* ------------------------------------------------------------------ AVX-512 row dots */
#if defined(__x86_64__)
#ifndef K2C_PF_DIST
#define K2C_PF_DIST 2048
#endif
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

AVX512 static inline float tail_bf16(const uint16_t *w, const float *x, int j, int n) {
    float a = 0;
    for (; j < n; j++) a += k2c_bf16_to_f32(w[j]) * x[j];
    return a;
}

AVX512 static float dot_bf16_avx512(const uint16_t *w, const float *x, int n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 64 <= n; j += 64) {
        /* The hardware prefetcher stops at 4 KB page boundaries (one BF16 row of 2048 is one page):
         * fetch the next rows ahead ourselves. */
        _mm_prefetch((const char *)(w + j) + K2C_PF_DIST, _MM_HINT_T0);
        _mm_prefetch((const char *)(w + j) + K2C_PF_DIST + 64, _MM_HINT_T0);
        __m512i w0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j)));
        __m512i w1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j + 16)));
        __m512i w2 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j + 32)));
        __m512i w3 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j + 48)));
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), _mm512_loadu_ps(x + j), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w1, 16)), _mm512_loadu_ps(x + j + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w2, 16)), _mm512_loadu_ps(x + j + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w3, 16)), _mm512_loadu_ps(x + j + 48), a3);
    }
    for (; j + 16 <= n; j += 16) {
        __m512i w0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j)));
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), _mm512_loadu_ps(x + j), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) + tail_bf16(w, x, j, n);
}

AVX512 static float dot_f32_avx512(const float *w, const float *x, int n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
    }
    float a = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; j < n; j++) a += w[j] * x[j];
    return a;
}

/* e4m3 -> f32 for 16 bytes: move sign to bit 31 and exponent+mantissa to bits 20..26, which reads as an
 * fp32 whose exponent is 120 too small (normals and subnormals alike), then multiply by 2^120. */
AVX512 static inline __m512 fp8x16_to_f32(__m128i b) {
    __m512i v = _mm512_cvtepu8_epi32(b);
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x80)), 24);
    __m512i em = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x7f)), 20);
    return _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(sign, em)), _mm512_set1_ps(0x1p120f));
}

AVX512 static float dot_fp8_avx512(const uint8_t *w, const float *x, int n, const float *scale, int block) {
    float acc = 0;
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (; j + 32 <= j1; j += 32) {
            if ((j & 63) == 0) _mm_prefetch((const char *)(w + j) + K2C_PF_DIST, _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(fp8x16_to_f32(_mm_loadu_si128((const __m128i *)(w + j))), _mm512_loadu_ps(x + j), a0);
            a1 = _mm512_fmadd_ps(fp8x16_to_f32(_mm_loadu_si128((const __m128i *)(w + j + 16))), _mm512_loadu_ps(x + j + 16), a1);
        }
        float b = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; j < j1; j++) b += fp8_lut[w[j]] * x[j];
        acc += b * scale[j0 / block];
    }
    return acc;
}

/* INT4: each byte holds elements 2k (low nibble) and 2k+1 (high nibble). xs is x split per group into
 * its even elements then its odd elements (done once per matvec), so 16 bytes -> two FMAs. */
AVX512 static float dot_int4_avx512(const uint32_t *w, const float *xs, int n, const uint16_t *scale, int group) {
    const uint8_t *b = (const uint8_t *)w;
    __m512 acc = _mm512_setzero_ps();
    const __m512i mask = _mm512_set1_epi32(0xf), eight = _mm512_set1_epi32(8);
    for (int g = 0; g < n / group; g++) {
        __m512 a = _mm512_setzero_ps();
        for (int j = g * group; j < (g + 1) * group; j += 32) {
            if ((j & 127) == 0) _mm_prefetch((const char *)(b + j / 2) + K2C_PF_DIST, _MM_HINT_T0);
            __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + j / 2)));
            __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, mask), eight));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight));
            a = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xs + j), a);
            a = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xs + j + 16), a);
        }
        acc = _mm512_fmadd_ps(a, _mm512_set1_ps(k2c_bf16_to_f32(scale[g])), acc);
    }
    return _mm512_reduce_add_ps(acc);
}
#endif

/* Reorders x for dot_int4_avx512: per 32 elements, the 16 even ones then the 16 odd ones. */
static void int4_shuffle_x(const float *x, int n, float *xs) {
    for (int j0 = 0; j0 < n; j0 += 32)
        for (int k = 0; k < 16; k++) { xs[j0 + k] = x[j0 + 2 * k]; xs[j0 + 16 + k] = x[j0 + 2 * k + 1]; }
}

static inline float dot_row(const k2c_linear *l, int r, const float *x, const float *xs) {
#if defined(__x86_64__)
    if (simd_level == 2) {
        size_t off = (size_t)r * (size_t)l->cols;
        switch (l->fmt) {
        case K2C_FMT_F32: return dot_f32_avx512((const float *)l->w + off, x, l->cols);
        case K2C_FMT_BF16: return dot_bf16_avx512((const uint16_t *)l->w + off, x, l->cols);
        case K2C_FMT_FP8:
            return dot_fp8_avx512((const uint8_t *)l->w + off, x, l->cols,
                                  l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols, l->block);
        case K2C_FMT_INT4:
            if (xs && l->block % 32 == 0)
                return dot_int4_avx512((const uint32_t *)l->w + (size_t)r * (size_t)(l->cols / 8), xs, l->cols,
                                       l->scale_bf16 + (size_t)r * (size_t)l->scale_cols, l->block);
            break;
        default: break;
        }
    }
#endif
    (void)xs;
    return dot_row_scalar(l, r, x);
}

/* SIMD dequantization of one row (prefill tiles). */
#if defined(__x86_64__)
AVX512 static void dequant_row_bf16_avx512(const uint16_t *w, int n, float *out) {
    int j = 0;
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_ps(out + j, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + j))), 16)));
    for (; j < n; j++) out[j] = k2c_bf16_to_f32(w[j]);
}
AVX512 static void dequant_row_fp8_avx512(const uint8_t *w, int n, const float *scale, int block, float *out) {
    for (int j0 = 0; j0 < n; j0 += block) {
        int j1 = j0 + block < n ? j0 + block : n, j = j0;
        __m512 sc = _mm512_set1_ps(scale[j0 / block]);
        for (; j + 16 <= j1; j += 16)
            _mm512_storeu_ps(out + j, _mm512_mul_ps(fp8x16_to_f32(_mm_loadu_si128((const __m128i *)(w + j))), sc));
        for (; j < j1; j++) out[j] = fp8_lut[w[j]] * scale[j0 / block];
    }
}
#endif

static void dequant_row_fast(const k2c_linear *l, int r, float *out) {
#if defined(__x86_64__)
    if (simd_level == 2) {
        size_t off = (size_t)r * (size_t)l->cols;
        if (l->fmt == K2C_FMT_BF16) { dequant_row_bf16_avx512((const uint16_t *)l->w + off, l->cols, out); return; }
        if (l->fmt == K2C_FMT_FP8) {
            dequant_row_fp8_avx512((const uint8_t *)l->w + off, l->cols, l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols,
                                   l->block, out);
            return;
        }
    }
#endif
    dequant_row(l, r, out);
}

static inline float dot_f32(const float *a, const float *b, int n) {
#if defined(__x86_64__)
    if (simd_level == 2) return dot_f32_avx512(a, b, n);
#endif
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ------------------------------------------------------------------ matvec */
/* Several independent y = W x share one parallel loop over row chunks, so a decode step pays for one
 * fork/join per stage (e.g. the gate and up projections of all chosen experts) instead of one per matrix.
 * Chunks are handed out dynamically: when another process takes a core, the other thread keeps going. */
#define MV_CHUNK 32
void k2c_matvec_batch(const k2c_matvec_job *jobs, int n) {
    int nchunks = 0;
    float *xs[K2C_MATVEC_BATCH_MAX] = {0};
    int start[K2C_MATVEC_BATCH_MAX + 1];
    assert(n <= K2C_MATVEC_BATCH_MAX);
    for (int i = 0; i < n; i++) {
        const k2c_linear *l = jobs[i].l;
        start[i] = nchunks;
        nchunks += (l->rows + MV_CHUNK - 1) / MV_CHUNK;
        if (l->fmt == K2C_FMT_INT4 && l->cols % 32 == 0 && (xs[i] = malloc((size_t)l->cols * sizeof(float))))
            int4_shuffle_x(jobs[i].x, l->cols, xs[i]);
    }
    start[n] = nchunks;
    size_t work = 0;
    for (int i = 0; i < n; i++) work += (size_t)jobs[i].l->rows * (size_t)jobs[i].l->cols;
    int par = work >= (1u << 16) && omp_get_max_threads() > 1 && !omp_in_parallel();
    #pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int c = 0; c < nchunks; c++) {
        int j = 0;
        while (start[j + 1] <= c) j++;
        const k2c_linear *l = jobs[j].l;
        int r0 = (c - start[j]) * MV_CHUNK, r1 = r0 + MV_CHUNK < l->rows ? r0 + MV_CHUNK : l->rows;
        for (int r = r0; r < r1; r++) jobs[j].y[r] = dot_row(l, r, jobs[j].x, xs[j]);
    }
    for (int i = 0; i < n; i++) free(xs[i]);
}

void k2c_matvec(const k2c_linear *l, const float *x, float *y) {
    k2c_matvec_job j = {l, x, y};
    k2c_matvec_batch(&j, 1);
}

void k2c_matvec_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y) {
    float *xs = NULL;
    if (l->fmt == K2C_FMT_INT4 && l->cols % 32 == 0 && (xs = malloc((size_t)l->cols * sizeof *xs))) int4_shuffle_x(x, l->cols, xs);
    for (int i = 0; i < nrows; i++) y[i] = dot_row(l, r0 + i, x, xs);
    free(xs);
}

void k2c_matvec_t_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y) {
    float *row = malloc((size_t)l->cols * sizeof *row);
    memset(y, 0, (size_t)l->cols * sizeof *y);
    if (!row) abort();   /* a few KB; nothing sensible to do without it */
    for (int i = 0; i < nrows; i++) {
        dequant_row_fast(l, r0 + i, row);
        float xi = x[i];
        for (int j = 0; j < l->cols; j++) y[j] += xi * row[j];
    }
    free(row);
}

/* ------------------------------------------------------------------ matmul */
/* Y [T, R] = X [T, C] W^T.
 *  T <= 2:  fused dequant-dot per token (memory bound, like decode).
 *  T <= 32: each weight row is dequantized once into L1 and dotted with all T inputs.
 *  larger:  each thread dequantizes tiles of rows into its own buffer and runs sgemm on them
 *           (OpenBLAS's OpenMP build runs single-threaded inside our parallel region). */
#define SMALL_T 32
static void matmul(const k2c_linear *l, const float *X, int T, float *Y, int allow_bf16) {
    int R = l->rows, C = l->cols;
    if (T <= 2) {
        float *y = malloc((size_t)R * sizeof *y);
        if (!y) abort();
        for (int t = 0; t < T; t++) {
            k2c_matvec(l, X + (size_t)t * C, y);
            memcpy(Y + (size_t)t * R, y, (size_t)R * sizeof *y);
        }
        free(y);
        return;
    }
    if (l->fmt == K2C_FMT_F32 && T > SMALL_T && simd_level != 2) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, R, C, 1.0f, X, C, (const float *)l->w, C, 0.0f, Y, R);
        return;
    }
    int par = (size_t)R * (size_t)C * (size_t)T >= (1u << 18) && !omp_in_parallel();
    if (T <= SMALL_T) {
        #pragma omp parallel if (par)
        {
            float *row = l->fmt == K2C_FMT_F32 ? NULL : malloc((size_t)C * sizeof *row);
            if (l->fmt != K2C_FMT_F32 && !row) abort();
            #pragma omp for schedule(dynamic, 16)
            for (int r = 0; r < R; r++) {
                const float *w = (const float *)l->w + (size_t)r * C;
                if (row) { dequant_row_fast(l, r, row); w = row; }
                for (int t = 0; t < T; t++) Y[(size_t)t * R + r] = dot_f32(w, X + (size_t)t * C, C);
            }
            free(row);
        }
        return;
    }
#if defined(__x86_64__)
    if (simd_level == 2 && bf16_prompt && allow_bf16 && l->fmt == K2C_FMT_BF16) {
        /* BF16 weights: vdpbf16ps on the stored rows and the inputs rounded to BF16 (as a BF16 reference
         * run rounds them), twice the fp32 kernel's multiply-adds per instruction. */
        uint32_t *Xp = malloc(k2c_gemm_bf16_packed_size(T, C) * sizeof *Xp);
        if (!Xp) abort();
        k2c_gemm_pack_x_bf16(X, T, C, Xp);
        int tr = 64, nt = (R + tr - 1) / tr;
        #pragma omp parallel for schedule(dynamic, 1) if (par)
        for (int ti = 0; ti < nt; ti++) {
            int r0 = ti * tr, nr = r0 + tr <= R ? tr : R - r0;
            k2c_gemm_tile_bf16((const uint16_t *)l->w + (size_t)r0 * C, (size_t)C, nr, C, Xp, T, Y + r0, R);
        }
        free(Xp);
        return;
    }
    if (simd_level == 2) {
        /* Our AVX-512 kernel on packed inputs: 64-row weight tiles dequantized per thread (L2-sized). */
        float *Xp = malloc(k2c_gemm_packed_size(T, C) * sizeof *Xp);
        if (!Xp) abort();
        k2c_gemm_pack_x(X, T, C, Xp);
        int tr = 64, nt = (R + tr - 1) / tr;
        #pragma omp parallel if (par)
        {
            float *buf = l->fmt == K2C_FMT_F32 ? NULL : malloc((size_t)tr * (size_t)C * sizeof *buf);
            if (l->fmt != K2C_FMT_F32 && !buf) abort();
            #pragma omp for schedule(dynamic, 1)
            for (int ti = 0; ti < nt; ti++) {
                int r0 = ti * tr, nr = r0 + tr <= R ? tr : R - r0;
                const float *w = (const float *)l->w + (size_t)r0 * C;
                if (buf) {
                    for (int i = 0; i < nr; i++) dequant_row_fast(l, r0 + i, buf + (size_t)i * C);
                    w = buf;
                }
                k2c_gemm_tile(w, nr, C, Xp, T, Y + r0, R);
            }
            free(buf);
        }
        free(Xp);
        return;
    }
#endif
    /* about 256 KB of fp32 weights per tile: stays in L2 while sgemm streams X past it */
    int tile = (int)((64u << 10) / (unsigned)C);
    if (tile < 16) tile = 16;
    int ntiles = (R + tile - 1) / tile;
    #pragma omp parallel if (par)
    {
        float *buf = malloc((size_t)tile * (size_t)C * sizeof *buf);
        if (!buf) abort();   /* 256 KB per thread */
        #pragma omp for schedule(dynamic, 1)
        for (int ti = 0; ti < ntiles; ti++) {
            int r0 = ti * tile, nr = r0 + tile <= R ? tile : R - r0;
            for (int i = 0; i < nr; i++) dequant_row_fast(l, r0 + i, buf + (size_t)i * C);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nr, C, 1.0f, X, C, buf, C, 0.0f, Y + r0, R);
        }
        free(buf);
    }
}

void k2c_matmul(const k2c_linear *l, const float *X, int T, float *Y) { matmul(l, X, T, Y, 1); }
void k2c_matmul_fp32(const k2c_linear *l, const float *X, int T, float *Y) { matmul(l, X, T, Y, 0); }
