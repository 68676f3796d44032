/* The driver of the kernel layer: which kernels and how many threads (a k2c_kctx per model), how many bytes
 * a weight costs, and the two shapes of work the forward pass asks for — matvec (decode) and matmul
 * (prompts) — split over threads. The arithmetic is in kern_<isa>.c behind k2c_kernels.
 *
 * A 1T-parameter model cannot be expanded to fp32, so weights stay as stored (BF16, FP8 with 128x128
 * block scales, INT4 groups of 32) and every kernel dequantizes on the fly. Decode is bound by memory
 * bandwidth: the matvec kernels read each weight byte once and keep activations in fp32. Prefill
 * dequantizes tiles of rows to fp32 and runs a GEMM on them, amortizing the conversion over all tokens. */
#include "kernels/kernels.h"

#include <cblas.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

float k2c_fp8_lut[256];
/* How far ahead (bytes) the BF16 row kernels prefetch; 0: they leave it to the hardware. Measured on Zen 4
 * (docs/BENCHMARKS.md, machine G): its stream prefetcher keeps up with a row on its own and a software
 * prefetch 2 KB ahead cost 12-15% of decode; on the Intel Xeon of machine X the 2 KB prefetch was part of
 * reaching 84% of bandwidth. So AMD gets none and the others 2 KB; K2C_PF_DIST=<bytes> overrides both.
 * The block formats' distance (k2c_pf_block, below at MV_PREFETCH) is chosen apart: K2C_PF_DIST sets it too. */
int k2c_pf_bf16 = 2048;
int k2c_pf_block = 2048;
static k2c_kctx default_cx;

int k2c_cpu_has_avx2(void) {
#if defined(__x86_64__)
    /* F16C is not asked for separately: every CPU with AVX2 has it (and clang's builtin does not know the name) */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int k2c_cpu_has_avx512(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

/* AVX-VNNI (the VEX-encoded vpdpbusd of Alder Lake and Zen 4+): CPUID leaf 7 subleaf 1, EAX bit 4, read once;
 * asked of cpuid itself because clang's __builtin_cpu_supports does not know the name. */
int k2c_cpu_has_avxvnni(void) {
#if defined(__x86_64__)
    static int known = -1;
    if (known < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        known = k2c_cpu_has_avx2() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1);
    }
    return known;
#else
    return 0;
#endif
}

int k2c_cpu_has_amx_bf16(void) {
#if defined(__x86_64__) && defined(__linux__)
    static int known = -1;
    if (known < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        /* CPUID.7.0:EDX bit 22 AMX-BF16, bit 24 AMX-TILE; then Linux must grant the tile data state
         * (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA), process-wide, before any thread touches a tile */
        int cpu = k2c_cpu_has_avx512bf16() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1) && (d >> 24 & 1);
        known = cpu && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    }
    return known;
#else
    return 0;
#endif
}

int k2c_cpu_has_avx512bf16(void) {
#if defined(__x86_64__)
    return k2c_cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static const k2c_kernels *best_kernels(void) {
#if defined(__x86_64__)
    if (k2c_cpu_has_avx512()) return &k2c_kernels_avx512;
    if (k2c_cpu_has_avx2()) return &k2c_kernels_avx2;
#elif defined(__aarch64__)
    return &k2c_kernels_neon;     /* Advanced SIMD is part of every AArch64 CPU */
#endif
    return &k2c_kernels_scalar;
}

int k2c_kctx_init(k2c_kctx *cx, const char *simd, int threads, int bf16_prompt) {
    memset(cx, 0, sizeof *cx);
    if (!simd || !*simd || !strcmp(simd, "auto")) cx->k = best_kernels();
    else if (!strcmp(simd, "scalar")) cx->k = &k2c_kernels_scalar;
#if defined(__x86_64__)
    else if (!strcmp(simd, "avx512") && k2c_cpu_has_avx512()) cx->k = &k2c_kernels_avx512;
    else if (!strcmp(simd, "avx2") && k2c_cpu_has_avx2()) cx->k = &k2c_kernels_avx2;
#elif defined(__aarch64__)
    else if (!strcmp(simd, "neon")) cx->k = &k2c_kernels_neon;
#endif
    else if (!strcmp(simd, "avx512")) { k2c_seterr("simd 'avx512': this CPU lacks AVX-512 F/BW/DQ/VL"); return -1; }
    else if (!strcmp(simd, "avx2")) { k2c_seterr("simd 'avx2': this CPU lacks AVX2 + FMA + F16C"); return -1; }
    else if (!strcmp(simd, "neon")) { k2c_seterr("simd 'neon': this CPU is not AArch64"); return -1; }
    else { k2c_seterr("simd '%s': unknown (auto, scalar, avx2, avx512, neon)", simd); return -1; }
    if (bf16_prompt && !(cx->k->gemm_tile_bf16 && k2c_cpu_has_avx512bf16())) {
        k2c_seterr("BF16 prompt products need AVX512-BF16 and the avx512 kernels");
        return -1;
    }
    cx->bf16_prompt = bf16_prompt != 0;
    /* 1: AMX tiles where the CPU and OS have them; 2: the AVX512-BF16 kernel even there */
    cx->amx = bf16_prompt == 1 && cx->k->gemm_tile_bf16_amx && k2c_cpu_has_amx_bf16();
    /* 0: what OpenMP would use (OMP_NUM_THREADS, else every core) */
    cx->nthreads = threads > 0 ? threads : omp_get_max_threads();
    cx->team = cx->nthreads;
    return 0;
}

const k2c_kctx *k2c_kctx_default(void) { return &default_cx; }

#if defined(__x86_64__)
/* the CPU family of an AMD CPU (0x17 Zen 1/2, 0x19 Zen 3/4, 0x1A Zen 5), 0 for any other vendor */
static int amd_family(void) {
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0));
    if (!(b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u)) return 0;     /* "AuthenticAMD" */
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1));
    unsigned fam = (a >> 8) & 15;
    return (int)(fam == 15 ? fam + ((a >> 20) & 255) : fam);
}
#endif

__attribute__((constructor)) static void kernels_init(void) {
    for (int i = 0; i < 256; i++) k2c_fp8_lut[i] = k2c_fp8_to_f32((uint8_t)i);
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_is("amd")) k2c_pf_bf16 = 0;
    if (amd_family() == 0x17) k2c_pf_block = 0;
#endif
    const char *pf = getenv("K2C_PF_DIST");
    if (pf && *pf) {
        char *end;
        long v = strtol(pf, &end, 10);
        if (*end == 0 && v >= 0 && v <= 65536) k2c_pf_bf16 = k2c_pf_block = (int)v;
        else fprintf(stderr, "k2c: K2C_PF_DIST=%s ignored (bytes, 0 to 65536)\n", pf);
    }
    k2c_kctx_init(&default_cx, NULL, 0, 0);
}

static inline const k2c_kctx *ctx_of(const k2c_linear *l) { return l->cx ? l->cx : &default_cx; }

size_t k2c_linear_bytes(const k2c_linear *l) {
    size_t n = (size_t)l->rows * (size_t)l->cols;
    switch (l->fmt) {
    case K2C_FMT_F32: return 4 * n;
    case K2C_FMT_BF16: case K2C_FMT_F16: return 2 * n;
    case K2C_FMT_FP8: return n + 4 * (size_t)((l->rows + l->block - 1) / l->block) * (size_t)l->scale_cols;
    case K2C_FMT_INT4: return n / 2 + 2 * (size_t)l->rows * (size_t)l->scale_cols;
    default: return (size_t)l->rows * k2c_wfmt_row_bytes(l->fmt, l->cols);   /* GGUF block formats */
    }
}

/* INT4 on int8 activations (a k2c_q8x, as the GGUF formats), unless exact: the one rule that the matvec's
 * preparation of x and the row dot both follow, so they agree on what xp holds. */
static int int4_q8(const k2c_linear *l, const k2c_kernels *k) {
    return l->fmt == K2C_FMT_INT4 && k->dot_int4_q8 && !ctx_of(l)->exact && l->block > 0 && l->block % 32 == 0 &&
           l->cols % 32 == 0;
}

float k2c_row_dot(const k2c_kernels *k, const k2c_linear *l, int r, const float *x, const void *xp) {
    size_t off = (size_t)r * (size_t)l->cols;
    int n = l->cols;
    switch (l->fmt) {
    case K2C_FMT_F32: return k->dot_f32((const float *)l->w + off, x, n);
    case K2C_FMT_BF16:
        if (xp && k->dot_bf16_xs && n % 32 == 0) return k->dot_bf16_xs((const uint16_t *)l->w + off, (const float *)xp, n);
        if (k->dot_bf16) return k->dot_bf16((const uint16_t *)l->w + off, x, n);
        break;
    case K2C_FMT_F16: if (k->dot_f16) return k->dot_f16((const uint16_t *)l->w + off, x, n); break;
    case K2C_FMT_FP8:
        if (k->dot_fp8)
            return k->dot_fp8((const uint8_t *)l->w + off, x, n, l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols,
                              l->block);
        break;
    case K2C_FMT_INT4:
        if (xp && int4_q8(l, k))
            return k->dot_int4_q8((const uint32_t *)l->w + (size_t)r * (size_t)(n / 8), (const k2c_q8x *)xp, n,
                                  l->scale_bf16 + (size_t)r * (size_t)l->scale_cols, l->block, !ctx_of(l)->no_ext);
        if (k->dot_int4 && xp && l->block % 32 == 0)
            return k->dot_int4((const uint32_t *)l->w + (size_t)r * (size_t)(n / 8), (const float *)xp, n,
                               l->scale_bf16 + (size_t)r * (size_t)l->scale_cols, l->block);
        break;
    default:
        if (xp && k->dot_q8)        /* GGUF block formats, quantized activations */
            return k->dot_q8(l->fmt, (const uint8_t *)l->w + (size_t)r * k2c_wfmt_row_bytes(l->fmt, n),
                             (const k2c_q8x *)xp, n);
        break;
    }
    return k2c_scalar_row_dot(l, r, x);
}

void k2c_row_dequant(const k2c_kernels *k, const k2c_linear *l, int r, float *out) {
    size_t off = (size_t)r * (size_t)l->cols;
    int n = l->cols;
    switch (l->fmt) {
    case K2C_FMT_F32: memcpy(out, (const float *)l->w + off, (size_t)n * sizeof *out); return;
    case K2C_FMT_BF16: if (k->cvt_bf16) { k->cvt_bf16((const uint16_t *)l->w + off, n, out); return; } break;
    case K2C_FMT_F16: if (k->cvt_f16) { k->cvt_f16((const uint16_t *)l->w + off, n, out); return; } break;
    case K2C_FMT_FP8:
        if (k->cvt_fp8) {
            k->cvt_fp8((const uint8_t *)l->w + off, n, l->scale_f32 + (size_t)(r / l->block) * (size_t)l->scale_cols,
                       l->block, out);
            return;
        }
        break;
    case K2C_FMT_Q8_0:
        if (k->cvt_q8_0 && n % 32 == 0) {
            k->cvt_q8_0((const uint8_t *)l->w + (size_t)r * k2c_wfmt_row_bytes(l->fmt, n), n, out);
            return;
        }
        break;
    default: break;
    }
    k2c_scalar_row_dequant(l, r, out);
}

void k2c_linear_dequant_rows(const k2c_linear *l, int r0, int nrows, float *out) {
    for (int i = 0; i < nrows; i++) k2c_scalar_row_dequant(l, r0 + i, out + (size_t)i * (size_t)l->cols);
}

/* ------------------------------------------------------------------ prompt GEMM inputs */
size_t k2c_gemm_packed_size(int T, int C) { return (size_t)((T + K2C_GEMM_TB - 1) / K2C_GEMM_TB) * K2C_GEMM_TB * (size_t)C; }

/* Xp [ceil(T/32)][C][32], zero padded past T; pack_x_block: token block b alone (blocks are independent, so the
 * GEMM packs them in parallel: serial, the packing was 6% of a 2-thread BF16 prefill, the other thread waiting) */
static void pack_x_block(const float *X, int T, int C, float *Xp, int b) {
    float *dst = Xp + (size_t)b * C * K2C_GEMM_TB;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < K2C_GEMM_TB; i++) {
            int t = b * K2C_GEMM_TB + i;
            dst[(size_t)c * K2C_GEMM_TB + i] = t < T ? X[(size_t)t * C + c] : 0.0f;
        }
}
void k2c_gemm_pack_x(const float *X, int T, int C, float *Xp) {
    for (int b = 0; b < (T + K2C_GEMM_TB - 1) / K2C_GEMM_TB; b++) pack_x_block(X, T, C, Xp, b);
}

size_t k2c_gemm_bf16_packed_size(int T, int C) { return (size_t)((T + K2C_GEMM_TB - 1) / K2C_GEMM_TB) * K2C_GEMM_TB * (size_t)((C + 1) / 2); }

/* Xp [ceil(T/32)][ceil(C/2)][32] pairs, zero padded past T and past C. */

/* token block b of k2c_gemm_pack_x_bf16 (blocks are independent: callers may run them in parallel); the
 * conversion is inline (core.h), so this loop compiles to vector code (it was a tenth of a BF16 prefill) */
static void pack_x_bf16_block(const float *X, int T, int C, uint32_t *Xp, int b) {
    int P = (C + 1) / 2, even = C & ~1;
    uint32_t *dst = Xp + (size_t)b * P * K2C_GEMM_TB;
    for (int i = 0; i < K2C_GEMM_TB; i++) {
        int t = b * K2C_GEMM_TB + i;
        const float *x = X + (size_t)t * C;
        if (t >= T) {
            for (int p = 0; p < P; p++) dst[(size_t)p * K2C_GEMM_TB + i] = 0;
            continue;
        }
        for (int p = 0; p < even / 2; p++)
            dst[(size_t)p * K2C_GEMM_TB + i] = k2c_f32_to_bf16(x[2 * p]) | (uint32_t)k2c_f32_to_bf16(x[2 * p + 1]) << 16;
        if (C & 1) dst[(size_t)(P - 1) * K2C_GEMM_TB + i] = k2c_f32_to_bf16(x[C - 1]);
    }
}

void k2c_gemm_pack_x_bf16(const float *X, int T, int C, uint32_t *Xp) {
    for (int b = 0; b < (T + K2C_GEMM_TB - 1) / K2C_GEMM_TB; b++) pack_x_bf16_block(X, T, C, Xp, b);
}

/* Reorders x for the INT4 kernels that want it: per 32 elements, the 16 even ones then the 16 odd ones. */
static void int4_shuffle_x(const float *x, int n, float *xs) {
    for (int j0 = 0; j0 < n; j0 += 32)
        for (int k = 0; k < 16; k++) { xs[j0 + k] = x[j0 + 2 * k]; xs[j0 + 16 + k] = x[j0 + 2 * k + 1]; }
}

/* ------------------------------------------------------------------ quantized activations (k2c_q8x) */
#define Q8X_HEAD 64                     /* the struct, padded so q starts 64-byte aligned */
size_t k2c_q8x_bytes(int n) { return Q8X_HEAD + k2c_ws_bytes((size_t)n) + 2 * (size_t)(n / 16) * sizeof(float); }

/* Per block of span elements (32, or 256 as ggml's Q8_K): dx = max|x| / 127, q = round(x / dx), as ggml's Q8_0 (so
 * a q is never -128, which the int8 kernels rely on). Compiled per x86 level, with the max and the rounding written so they vectorize (fmaxf and
 * lrintf were library calls per element: 3% of a Q2_K decode step): (y + 1.5 x 2^23) - 1.5 x 2^23 rounds y to
 * the nearest integer, ties to even, as lrintf does, for |y| < 2^22 (here |y| <= 127). */
K2C_CLONES const k2c_q8x *k2c_q8x_quantize_span(const float *x, int n, int span, void *buf) {
    k2c_q8x *h = buf;
    int8_t *q = (int8_t *)buf + Q8X_HEAD;
    float *d16 = (float *)((char *)q + k2c_ws_bytes((size_t)n)), *s16 = d16 + n / 16;
    if (span != 256 || n % 256) span = 32;
    for (int s0 = 0; s0 < n; s0 += span) {
        float amax = 0;
        for (int b = s0; b < s0 + span; b += 32) {
            float m = k2c_amax32(x + b);
            amax = m > amax ? m : amax;
        }
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        for (int b = s0 / 32; b < (s0 + span) / 32; b++) {
            int sum[2];
            k2c_q8_round32(x + 32 * b, id, q + 32 * b, sum);
            for (int g = 0; g < 2; g++) { d16[2 * b + g] = d; s16[2 * b + g] = d * (float)sum[g]; }
        }
    }
    h->q = q; h->d16 = d16; h->s16 = s16; h->span = span;
    return h;
}

const k2c_q8x *k2c_q8x_quantize(const float *x, int n, void *buf) { return k2c_q8x_quantize_span(x, n, 32, buf); }

void k2c_q8x_even_odd(const k2c_q8x *x, int n) {
    int8_t *q = (int8_t *)x->q, t[64];
    int j0 = 0;
    for (; j0 + 64 <= n; j0 += 64) {
        for (int k = 0; k < 16; k++) {
            t[k] = q[j0 + 2 * k];
            t[16 + k] = q[j0 + 32 + 2 * k];
            t[32 + k] = q[j0 + 2 * k + 1];
            t[48 + k] = q[j0 + 32 + 2 * k + 1];
        }
        memcpy(q + j0, t, 64);
    }
    if (j0 < n) {
        for (int k = 0; k < 16; k++) { t[k] = q[j0 + 2 * k]; t[16 + k] = q[j0 + 2 * k + 1]; }
        memcpy(q + j0, t, 32);
    }
}

/* What a matvec on l prepares from x once for all rows: nothing (the rows read x as it is), x reordered per 32
 * elements (dot_int4, dot_bf16_xs), or x quantized to int8 (the GGUF formats, INT4 on int8). */
enum { PREP_NONE, PREP_SHUFFLE, PREP_Q8 };
static int prep_kind(const k2c_linear *l, const k2c_kctx *cx) {
    if (int4_q8(l, cx->k)) return PREP_Q8;
    if (cx->k->dot_int4 && l->fmt == K2C_FMT_INT4 && l->cols % 32 == 0) return PREP_SHUFFLE;
    if (cx->k->dot_bf16_xs && l->fmt == K2C_FMT_BF16 && l->cols % 32 == 0) return PREP_SHUFFLE;
    if (cx->k->dot_q8 && !cx->exact && k2c_wfmt_is_block(l->fmt) && l->cols % 32 == 0) return PREP_Q8;
    return PREP_NONE;
}

/* ... and its size in bytes (0: nothing) */
static size_t prep_bytes(const k2c_linear *l, const k2c_kctx *cx) {
    switch (prep_kind(l, cx)) {
    case PREP_SHUFFLE: return (size_t)l->cols * sizeof(float);
    case PREP_Q8: return k2c_q8x_bytes(l->cols);
    default: return 0;
    }
}

/* the span of l's quantized activations (k2c_q8x), where its kernels ask for 256 */
static int q8x_span(const k2c_linear *l, const k2c_kctx *cx) {
    return l->fmt != K2C_FMT_INT4 && cx->k->q8x_span ? cx->k->q8x_span(l->fmt) : 32;
}
/* two matrices on one x can share what it prepares when this is the same: kind, span, INT4's code order */
static int prep_sig(const k2c_linear *l, const k2c_kctx *cx) {
    int kind = prep_kind(l, cx);
    if (kind != PREP_Q8) return kind;
    return kind | (q8x_span(l, cx) == 256) << 4 | (l->fmt == K2C_FMT_INT4 && cx->k->int4_q8_eo) << 5;
}

static const void *prep_x(const k2c_linear *l, const k2c_kctx *cx, const float *x, void *buf) {
    if (prep_kind(l, cx) == PREP_SHUFFLE) { int4_shuffle_x(x, l->cols, buf); return buf; }
    const k2c_q8x *q = k2c_q8x_quantize_span(x, l->cols, q8x_span(l, cx), buf);
    if (l->fmt == K2C_FMT_INT4 && cx->k->int4_q8_eo) k2c_q8x_even_odd(q, l->cols);
    return q;
}

/* ------------------------------------------------------------------ workspace */
void *k2c_ws_take(k2c_ws *w, size_t bytes) {
    size_t n = k2c_ws_bytes(bytes ? bytes : 1);
    if (!w || !w->base || n > w->cap - w->used) return NULL;
    void *p = w->base + w->used;
    w->used += n;
    return p;
}

/* ------------------------------------------------------------------ matvec */
/* Several independent y = W x share one parallel loop over row chunks, so a decode step pays for one
 * fork/join per stage (e.g. the gate and up projections of all chosen experts) instead of one per matrix.
 * The chunks are split statically: each thread streams one contiguous run of rows. Handed out dynamically
 * (one chunk of 32 rows at a time, as before), the threads' chunks interleaved in memory and each thread's
 * reads stopped looking like one stream to the hardware prefetchers: measured on Zen 4 (machine G, 2
 * threads, Moonlight-shaped model), decode went 8.0-8.9 -> 10.3-10.4 tok/s on Q4_K_M, 7.8-7.9 -> 8.4-9.1 on
 * Q8_0 and 3.9-4.6 -> 5.1-5.7 on BF16. A core taken by another process then holds up its half: the thread
 * tuner (model/tune.c) sees the slower steps and drops to fewer threads. */
#define MV_CHUNK 32
/* Decode on the GGUF block formats prefetches the rows about k2c_pf_block bytes ahead of the one being dotted
 * (set in kernels_init). On AMD Zen 5 one thread's stream of rows was below the read bandwidth and 2 KB ahead
 * gave +6% on the Moonlight-shaped Q8_0 model, 1 thread, in alternating pairs (4 KB and 8 KB no better; Q4_K_M
 * and Q2_K within the VM's spread). On AMD Zen 2 the same prefetch cost 18-20% of the Q8_0 decode (1 and 2
 * threads: 4.55 / 8.2 tok/s without, 3.72 / 6.6 with; 4 KB and 8 KB ahead as slow), Q4_K_M and Q2_K within
 * 1%, so family 0x17 (Zen 1/2) leaves it to the hardware. BF16 and INT4 rows keep the hardware prefetcher
 * alone everywhere on AMD (INT4 rows prefetched the same way lost 6-15%). */
#define MV_PREFETCH ((size_t)k2c_pf_block)
static size_t pf_row_bytes(const k2c_linear *l) {
    return k2c_wfmt_is_block(l->fmt) ? k2c_wfmt_row_bytes(l->fmt, l->cols) : 0;
}
void k2c_matvec_batch_ws(const k2c_matvec_job *jobs, int n, k2c_ws *ws) {
    if (n <= 0) return;
    const k2c_kctx *cx = ctx_of(jobs[0].l);
    const k2c_kernels *k = cx->k;
    int nchunks = 0;
    const void *xs[K2C_MATVEC_BATCH_MAX] = {0};
    char owned[K2C_MATVEC_BATCH_MAX] = {0};
    int start[K2C_MATVEC_BATCH_MAX + 1];
    size_t mark = ws ? ws->used : 0;
    if (n > K2C_MATVEC_BATCH_MAX) {       /* more than one loop holds: run them in turns */
        for (int i = 0; i < n; i += K2C_MATVEC_BATCH_MAX)
            k2c_matvec_batch_ws(jobs + i, n - i < K2C_MATVEC_BATCH_MAX ? n - i : K2C_MATVEC_BATCH_MAX, ws);
        return;
    }
    if (cx->observe)
        for (int i = 0; i < n; i++) cx->observe(cx->observe_ctx, jobs[i].l, jobs[i].x, 1);
    for (int i = 0; i < n; i++) {
        const k2c_linear *l = jobs[i].l;
        start[i] = nchunks;
        nchunks += (l->rows + MV_CHUNK - 1) / MV_CHUNK;
        size_t bytes = prep_bytes(l, cx);
        if (!bytes) continue;
        for (int j = 0; j < i && !xs[i]; j++)     /* the same input (an expert's gate and up): prepared once */
            if (xs[j] && jobs[j].x == jobs[i].x && jobs[j].l->cols == l->cols && prep_sig(jobs[j].l, cx) == prep_sig(l, cx))
                xs[i] = xs[j];
        if (xs[i]) continue;
        /* without the buffer the row kernels read x as it is: slower (INT4) or exact (block formats) */
        void *b = ws ? k2c_ws_take(ws, bytes) : aligned_alloc(64, k2c_ws_bytes(bytes));
        owned[i] = !ws;
        if (b) xs[i] = prep_x(l, cx, jobs[i].x, b);
    }
    start[n] = nchunks;
    size_t work = 0;
    double total = 0, bpr[K2C_MATVEC_BATCH_MAX];        /* bytes per row: the cost of a chunk */
    for (int i = 0; i < n; i++) {
        work += (size_t)jobs[i].l->rows * (size_t)jobs[i].l->cols;
        bpr[i] = (double)k2c_linear_bytes(jobs[i].l) / (double)jobs[i].l->rows;
        total += bpr[i] * (double)jobs[i].l->rows;
    }
    int par = work >= (1u << 16) && cx->nthreads > 1 && !omp_in_parallel();
    /* Each thread takes one contiguous run of chunks holding its share of the bytes (a chunk goes where its middle
     * falls), not of the chunks: a batch mixes formats (the routed experts' INT4 or Q4_K rows beside the shared
     * expert's BF16 or Q6_K), and equal chunk counts left one thread with 2.4x the other's bytes on the
     * K2-Thinking layout (its OpenMP waits were a sixth of a 2-thread decode step). */
    #pragma omp parallel if (par) num_threads(cx->team)
    {
        int nt = omp_get_num_threads(), me = omp_get_thread_num();
        double lo = total * me / nt, hi = me == nt - 1 ? total * 2 + 1 : total * (me + 1) / nt, cum = 0;
        int j = 0;
        for (int c = 0; c < nchunks; c++) {
            while (start[j + 1] <= c) j++;
            const k2c_linear *l = jobs[j].l;
            int r0 = (c - start[j]) * MV_CHUNK, r1 = r0 + MV_CHUNK < l->rows ? r0 + MV_CHUNK : l->rows;
            double cc = bpr[j] * (double)(r1 - r0), mid = cum + cc / 2;
            cum += cc;
            if (mid < lo || mid >= hi) continue;
            size_t rb = pf_row_bytes(l);
            if (rb && xs[j] && k->dot_q8_rows) {       /* quantized activations: the row loop in the kernel file */
                k->dot_q8_rows(l->fmt, (const uint8_t *)l->w + (size_t)r0 * rb, rb, r1 - r0, l->rows - r0, xs[j], l->cols,
                               jobs[j].y + r0, MV_PREFETCH);
            } else if (rb) {
                const char *base = (const char *)l->w;
                int ahead = MV_PREFETCH ? (int)((MV_PREFETCH + rb - 1) / rb) : l->rows;     /* 0: no prefetch */
                for (int r = r0; r < r1; r++) {
                    if (r + ahead < l->rows)
                        for (size_t o = 0; o < rb; o += 64) __builtin_prefetch(base + (size_t)(r + ahead) * rb + o);
                    jobs[j].y[r] = k2c_row_dot(k, l, r, jobs[j].x, xs[j]);
                }
            } else {
                for (int r = r0; r < r1; r++) jobs[j].y[r] = k2c_row_dot(k, l, r, jobs[j].x, xs[j]);
            }
        }
    }
    for (int i = 0; i < n; i++) if (owned[i]) free((void *)xs[i]);
    if (ws) ws->used = mark;
}

void k2c_matvec_batch(const k2c_matvec_job *jobs, int n) { k2c_matvec_batch_ws(jobs, n, NULL); }

void k2c_matvec_ws(const k2c_linear *l, const float *x, float *y, k2c_ws *ws) {
    k2c_matvec_job j = {l, x, y};
    k2c_matvec_batch_ws(&j, 1, ws);
}

void k2c_matvec(const k2c_linear *l, const float *x, float *y) { k2c_matvec_ws(l, x, y, NULL); }

size_t k2c_matvec_rows_scratch(const k2c_linear *l) {
    size_t b = prep_bytes(l, ctx_of(l));
    return b ? k2c_ws_bytes(b) : 0;
}

void k2c_matvec_rows_s(const k2c_linear *l, int r0, int nrows, const float *x, float *y, void *scratch) {
    const k2c_kctx *cx = ctx_of(l);
    const void *xs = scratch && prep_bytes(l, cx) ? prep_x(l, cx, x, scratch) : NULL;
    if (xs && k2c_wfmt_is_block(l->fmt) && cx->k->dot_q8_rows) {
        size_t rb = k2c_wfmt_row_bytes(l->fmt, l->cols);
        cx->k->dot_q8_rows(l->fmt, (const uint8_t *)l->w + (size_t)r0 * rb, rb, nrows, nrows, xs, l->cols, y, 0);
        return;
    }
    for (int i = 0; i < nrows; i++) y[i] = k2c_row_dot(cx->k, l, r0 + i, x, xs);
}

void k2c_matvec_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y) {
    size_t bytes = k2c_matvec_rows_scratch(l);
    void *b = bytes ? aligned_alloc(64, bytes) : NULL;
    k2c_matvec_rows_s(l, r0, nrows, x, y, b);
    free(b);
}

void k2c_linear_rows_f32(const k2c_linear *l, int r0, int nrows, float *out) {
    const k2c_kernels *k = ctx_of(l)->k;
    for (int i = 0; i < nrows; i++) k2c_row_dequant(k, l, r0 + i, out + (size_t)i * (size_t)l->cols);
}

void k2c_matvec_t_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y, float *row) {
    const k2c_kernels *k = ctx_of(l)->k;
    memset(y, 0, (size_t)l->cols * sizeof *y);
    for (int i = 0; i < nrows; i++) {
        k2c_row_dequant(k, l, r0 + i, row);
        float xi = x[i];
        for (int j = 0; j < l->cols; j++) y[j] += xi * row[j];
    }
}

/* ------------------------------------------------------------------ matmul */
/* Y [T, R] = X [T, C] W^T.
 *  T <= 2:  fused dequant-dot per token (memory bound, like decode).
 *  T <= 32: each weight row is dequantized once into L1 and dotted with all T inputs (T <= 8 where the ISA
 *           has its own GEMM tile).
 *  larger:  each thread dequantizes tiles of rows into its own buffer and runs the ISA's GEMM tile on them,
 *           or OpenBLAS sgemm where the ISA has none (OpenBLAS's OpenMP build runs single-threaded inside
 *           our parallel region).
 *  GGUF block formats, T > 2 (unless exact): the int8 GEMM (quant_gemm.h) on activations quantized once.
 * Scratch memory that cannot be had is an error for the caller, never an abort: one oversized request
 * must not take down a server. */
#define SMALL_T 32
/* With the ISA's own GEMM tile the tiles win from 9 tokens on (1408 x 2048 BF16, one thread on Zen 5:
 * 1.8x at 16 tokens, 2x at 32, even at 8; bench/gemm.sh); OpenBLAS needs more tokens to pay off. */
#define SMALL_T_TILE 8
static int oom(const char *what, size_t bytes) {
    k2c_seterr("out of memory: %zu bytes for %s", bytes, what);
    return -1;
}

/* Rows r0 .. r0+nr-1 of W as fp32: the stored rows themselves for F32 (buf NULL), else dequantized into buf. */
static const float *tile_rows(const k2c_linear *l, const k2c_kernels *k, int r0, int nr, float *buf) {
    if (!buf) return (const float *)l->w + (size_t)r0 * (size_t)l->cols;
    for (int i = 0; i < nr; i++) k2c_row_dequant(k, l, r0 + i, buf + (size_t)i * (size_t)l->cols);
    return buf;
}

/* The path matmul takes for T tokens, and the workspace bytes it needs (per-thread parts at a 64-byte stride). */
enum { MM_MATVEC, MM_SMALL, MM_BF16, MM_TILE, MM_BLAS, MM_Q8, MM_AMX };
static int mm_path(const k2c_linear *l, const k2c_kctx *cx, int T, int allow_bf16) {
    if (T <= 2) return MM_MATVEC;
    /* GGUF block formats, unless exact: int8 activations, as decode's k2c_q8x (Q2_K: one dx per 256 columns) */
    if (!cx->exact && cx->k->gemm_q8 && k2c_q8p_group(l) &&
        !(cx->k->q8_prefer_tile && cx->k->q8_prefer_tile(l->fmt, T, !cx->no_ext)))
        return MM_Q8;
    /* BF16 prompt products on AMX (the opt-in BF16 precision, bf16_prompt) for BF16 rows as stored and for the
     * formats that would otherwise be dequantized to fp32 tiles (FP8, F16: here dequantized to BF16 per tile
     * instead). Not for the block formats and INT4: their int8 path above reads the stored blocks without
     * dequantizing, and beat AMX on dequantized rows (bench/gemm.sh, 1 thread: Q4_K at 512 tokens 98 against
     * 62 GFLOP/s, 28 against 4 at 16). From 9 tokens on: a routed expert of Kimi-K2 sees about 10 tokens of a
     * 512-token chunk. */
    if (cx->amx && !cx->exact && allow_bf16 && T > SMALL_T_TILE && l->cols % 32 == 0 && l->fmt != K2C_FMT_F32)
        return l->fmt == K2C_FMT_BF16 ? MM_BF16 : MM_AMX;
    if (T <= SMALL_T_TILE || (T <= SMALL_T && !cx->k->gemm_tile)) return MM_SMALL;
    /* BF16 products from 9 tokens on, as AMX's: a Moonlight-shaped expert sees about 48 tokens of a 128-token
     * prompt, some fewer than 32 (+5-10% at 128 tokens, 1 thread, Zen 5, over the fp32 tile below 33) */
    if (cx->bf16_prompt && !cx->exact && allow_bf16 && l->fmt == K2C_FMT_BF16 && cx->k->gemm_tile_bf16) return MM_BF16;
    if (T <= SMALL_T) return MM_TILE;
    return cx->k->gemm_tile ? MM_TILE : MM_BLAS;
}
#define TILE_ROWS 64
static int blas_tile(int C) {   /* about 256 KB of fp32 weights per tile: stays in L2 while sgemm streams X past it */
    int tile = (int)((64u << 10) / (unsigned)C);
    return tile < 16 ? 16 : tile;
}
/* per-thread part, packed-input part */
static void mm_need(const k2c_linear *l, const k2c_kctx *cx, int T, int path, size_t *per, size_t *shared) {
    size_t C = (size_t)l->cols, nf32 = l->fmt == K2C_FMT_F32;
    *per = *shared = 0;
    switch (path) {
    case MM_MATVEC: *shared = k2c_ws_bytes(prep_bytes(l, cx)); break;
    case MM_SMALL: *per = nf32 ? 0 : k2c_ws_bytes(C * 4); break;
    case MM_BF16:
        *shared = k2c_ws_bytes(k2c_gemm_bf16_packed_size(T, (int)C) * 4);
        /* the AMX tile repacks 32 rows, the AVX512-BF16 one K2C_GEMM_RB */
        *per = k2c_ws_bytes((size_t)(cx->amx ? 32 : K2C_GEMM_RB) * ((C + 1) / 2) * 4);
        break;
    case MM_AMX:     /* packed inputs; per thread a tile of BF16 rows, the kernel's panel and one fp32 row */
        *shared = k2c_ws_bytes(k2c_gemm_bf16_packed_size(T, (int)C) * 4);
        *per = k2c_ws_bytes((size_t)TILE_ROWS * C * 2) + k2c_ws_bytes((size_t)32 * C * 2) + k2c_ws_bytes(C * 4);
        break;
    case MM_TILE:
        *shared = k2c_ws_bytes(k2c_gemm_packed_size(T, (int)C) * 4);
        *per = k2c_ws_bytes((size_t)K2C_GEMM_RB * C * 4) + (nf32 ? 0 : k2c_ws_bytes((size_t)TILE_ROWS * C * 4));
        break;
    case MM_Q8: {
        int sg = k2c_q8p_group(l);
        *shared = k2c_ws_bytes(k2c_q8p_bytes(T, (int)C, sg));
        *per = k2c_ws_bytes(k2c_q8w_bytes(TILE_ROWS, (int)C, sg));
        break; }
    default: *per = nf32 ? 0 : k2c_ws_bytes((size_t)blas_tile((int)C) * C * 4); break;
    }
}

size_t k2c_matmul_ws_bytes(const k2c_linear *l, int T) {
    const k2c_kctx *cx = ctx_of(l);
    size_t most = 0;
    int ts[4] = {T < 2 ? T : 2, T < SMALL_T_TILE ? T : SMALL_T_TILE, T < SMALL_T ? T : SMALL_T, T};  /* the largest T of each path */
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 2; b++) {
            if (ts[i] <= 0) continue;
            size_t per, sh;
            mm_need(l, cx, ts[i], mm_path(l, cx, ts[i], b), &per, &sh);
            size_t n = sh + per * (size_t)cx->nthreads;
            most = n > most ? n : most;
        }
    return most;
}

static int matmul2(const k2c_linear *l, const k2c_linear *l2, const float *X, int T, float *Y, float *Y2, int allow_bf16,
                   k2c_ws *ws);
static int matmul(const k2c_linear *l, const float *X, int T, float *Y, int allow_bf16, k2c_ws *ws) {
    return matmul2(l, NULL, X, T, Y, NULL, allow_bf16, ws);
}

/* Y = X l^T and, where l2 is not NULL, Y2 = X l2^T: on the int8 path the two (an expert's gate and up) share one
 * quantization of X and one parallel loop over both weights' tiles; other paths run them one after the other */
static int matmul2(const k2c_linear *l, const k2c_linear *l2, const float *X, int T, float *Y, float *Y2, int allow_bf16,
                   k2c_ws *ws) {
    const k2c_kctx *cx = ctx_of(l);
    const k2c_kernels *k = cx->k;
    int R = l->rows, C = l->cols, nt = cx->nthreads, path = mm_path(l, cx, T, allow_bf16);
    if (T <= 0) return 0;
    if (l2 && (path != MM_Q8 || ctx_of(l2) != cx || mm_path(l2, cx, T, allow_bf16) != MM_Q8 || l2->cols != C ||
               k2c_q8p_group(l2) != k2c_q8p_group(l) || k2c_q8p_span(l2) != k2c_q8p_span(l)))
        return matmul2(l, NULL, X, T, Y, NULL, allow_bf16, ws) || matmul2(l2, NULL, X, T, Y2, NULL, allow_bf16, ws) ? -1 : 0;
    if (path == MM_MATVEC) {
        for (int t = 0; t < T; t++) k2c_matvec_ws(l, X + (size_t)t * C, Y + (size_t)t * R, ws);
        return 0;
    }
    if (cx->observe) cx->observe(cx->observe_ctx, l, X, T);
    if (cx->observe && l2) cx->observe(cx->observe_ctx, l2, X, T);
    size_t per, sh;
    mm_need(l, cx, T, path, &per, &sh);
    k2c_ws local = {0};
    if (!ws) {      /* no workspace from the caller: one allocation for this call */
        local.cap = k2c_ws_bytes(sh + per * (size_t)nt + 1);
        if (!(local.base = aligned_alloc(K2C_WS_ALIGN, local.cap))) return oom("matmul scratch", local.cap);
        ws = &local;
    }
    size_t mark = ws->used;
    char *shared = sh ? k2c_ws_take(ws, sh) : NULL, *part = per ? k2c_ws_take(ws, per * (size_t)nt) : NULL;
    if ((sh && !shared) || (per && !part)) {
        ws->used = mark;
        free(local.base);
        k2c_seterr("workspace too small: %zu bytes for matmul scratch, %zu left", sh + per * (size_t)nt, ws->cap - ws->used);
        return -1;
    }
    int par = (size_t)(R + (l2 ? l2->rows : 0)) * (size_t)C * (size_t)T >= (1u << 18) && nt > 1 && !omp_in_parallel();
    if (path == MM_SMALL) {
        #pragma omp parallel if (par) num_threads(cx->team)
        {
            float *row = part ? (float *)(part + per * (size_t)omp_get_thread_num()) : NULL;
            #pragma omp for schedule(dynamic, 16)
            for (int r = 0; r < R; r++) {
                const float *w = (const float *)l->w + (size_t)r * C;
                if (row) { k2c_row_dequant(k, l, r, row); w = row; }
                for (int t = 0; t < T; t++) Y[(size_t)t * R + r] = k->dot_f32(w, X + (size_t)t * C, C);
            }
        }
    } else if (path == MM_BF16) {
        /* BF16 weights: vdpbf16ps on the stored rows and the inputs rounded to BF16 (as a BF16 reference
         * run rounds them), twice the fp32 kernel's multiply-adds per instruction. */
        uint32_t *Xp = (uint32_t *)shared;
        void (*tile)(const uint16_t *, size_t, int, int, const uint32_t *, int, float *, int, uint32_t *) =
            cx->amx && C % 32 == 0 ? k->gemm_tile_bf16_amx : k->gemm_tile_bf16;
        int tr = TILE_ROWS, ntl = (R + tr - 1) / tr;
        #pragma omp parallel if (par) num_threads(cx->team)
        {
            uint32_t *panel = (uint32_t *)(part + per * (size_t)omp_get_thread_num());
            #pragma omp for schedule(static)
            for (int b = 0; b < (T + K2C_GEMM_TB - 1) / K2C_GEMM_TB; b++) pack_x_bf16_block(X, T, C, Xp, b);
            #pragma omp for schedule(dynamic, 1)
            for (int ti = 0; ti < ntl; ti++) {
                int r0 = ti * tr, nr = r0 + tr <= R ? tr : R - r0;
                tile((const uint16_t *)l->w + (size_t)r0 * C, (size_t)C, nr, C, Xp, T, Y + r0, R, panel);
            }
        }
    } else if (path == MM_AMX) {
        uint32_t *Xp = (uint32_t *)shared;
        size_t nt16 = k2c_ws_bytes((size_t)TILE_ROWS * C * 2), npan = k2c_ws_bytes((size_t)32 * C * 2);
        int tr = TILE_ROWS, ntl = (R + tr - 1) / tr;
        #pragma omp parallel if (par) num_threads(cx->team)
        {
            char *mine = part + per * (size_t)omp_get_thread_num();
            uint16_t *wt = (uint16_t *)mine;
            uint32_t *panel = (uint32_t *)(mine + nt16);
            float *row = (float *)(mine + nt16 + npan);
            #pragma omp for schedule(static)
            for (int b = 0; b < (T + K2C_GEMM_TB - 1) / K2C_GEMM_TB; b++) pack_x_bf16_block(X, T, C, Xp, b);
            #pragma omp for schedule(dynamic, 1)
            for (int ti = 0; ti < ntl; ti++) {
                int r0 = ti * tr, nr = r0 + tr <= R ? tr : R - r0;
                for (int i = 0; i < nr; i++) {
                    k2c_row_dequant(k, l, r0 + i, row);
                    uint16_t *d = wt + (size_t)i * C;
                    for (int j = 0; j < C; j++) d[j] = k2c_f32_to_bf16(row[j]);
                }
                k->gemm_tile_bf16_amx(wt, (size_t)C, nr, C, Xp, T, Y + r0, R, panel);
            }
        }
    } else if (path == MM_Q8) {
        /* int8 activations quantized once (per 16-token block, in parallel), then the ISA's int8 kernel on
         * 64-row tiles unpacked per thread */
        k2c_q8p xq;
        k2c_q8p_init(&xq, T, C, k2c_q8p_group(l), k2c_q8p_span(l), shared);
        int tr = TILE_ROWS, ntl = (R + tr - 1) / tr, ntl2 = l2 ? (l2->rows + tr - 1) / tr : 0;
        #pragma omp parallel if (par) num_threads(cx->team)
        {
            void *mine = part + per * (size_t)omp_get_thread_num();
            #pragma omp for schedule(static)
            for (int b = 0; b < xq.nblk; b++) k2c_q8p_fill(X, &xq, b);
            #pragma omp for schedule(dynamic, 1)
            for (int ti = 0; ti < ntl + ntl2; ti++) {
                const k2c_linear *lt = ti < ntl ? l : l2;
                float *Yt = ti < ntl ? Y : Y2;
                int r0 = (ti < ntl ? ti : ti - ntl) * tr, nr = r0 + tr <= lt->rows ? tr : lt->rows - r0;
                k->gemm_q8(lt, r0, nr, &xq, Yt + r0, lt->rows, mine);
            }
        }
    } else if (path == MM_TILE) {
        /* The ISA's kernel on packed inputs: 64-row weight tiles dequantized per thread (L2-sized). */
        float *Xp = (float *)shared;
        int tr = TILE_ROWS, ntl = (R + tr - 1) / tr;
        size_t npanel = k2c_ws_bytes((size_t)K2C_GEMM_RB * (size_t)C * 4);
        #pragma omp parallel if (par) num_threads(cx->team)
        {
            char *mine = part + per * (size_t)omp_get_thread_num();
            float *panel = (float *)mine, *buf = l->fmt == K2C_FMT_F32 ? NULL : (float *)(mine + npanel);
            #pragma omp for schedule(static)
            for (int b = 0; b < (T + K2C_GEMM_TB - 1) / K2C_GEMM_TB; b++) pack_x_block(X, T, C, Xp, b);
            #pragma omp for schedule(dynamic, 1)
            for (int ti = 0; ti < ntl; ti++) {
                int r0 = ti * tr, nr = r0 + tr <= R ? tr : R - r0;
                k->gemm_tile(tile_rows(l, k, r0, nr, buf), nr, C, Xp, T, Y + r0, R, panel);
            }
        }
    } else {
        int tile = blas_tile(C), ntiles = (R + tile - 1) / tile;
        #pragma omp parallel if (par) num_threads(cx->team)
        {
            float *buf = part ? (float *)(part + per * (size_t)omp_get_thread_num()) : NULL;
            #pragma omp for schedule(dynamic, 1)
            for (int ti = 0; ti < ntiles; ti++) {
                int r0 = ti * tile, nr = r0 + tile <= R ? tile : R - r0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nr, C, 1.0f, X, C, tile_rows(l, k, r0, nr, buf), C,
                            0.0f, Y + r0, R);
            }
        }
    }
    ws->used = mark;
    free(local.base);
    return 0;
}

int k2c_matmul(const k2c_linear *l, const float *X, int T, float *Y) { return matmul(l, X, T, Y, 1, NULL); }
int k2c_matmul_fp32(const k2c_linear *l, const float *X, int T, float *Y) { return matmul(l, X, T, Y, 0, NULL); }
int k2c_matmul_ws(const k2c_linear *l, const float *X, int T, float *Y, k2c_ws *ws) { return matmul(l, X, T, Y, 1, ws); }
int k2c_matmul2_ws(const k2c_linear *a, const k2c_linear *b, const float *X, int T, float *Ya, float *Yb, k2c_ws *ws) {
    return matmul2(a, b, X, T, Ya, Yb, 1, ws);
}
int k2c_matmul_fp32_ws(const k2c_linear *l, const float *X, int T, float *Y, k2c_ws *ws) { return matmul(l, X, T, Y, 0, ws); }
