/* Vectorized row kernels for the trainer (declared in kernels.h).
 *
 * Why not libm's expf: glibc only offers its vector expf to -ffast-math builds, and a scalar call per
 * element kept the softmax over the vocabulary and the SiLU gates at a few hundred MFLOP/s. The exp below
 * is the classic Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial for e^r (the
 * Cephes coefficients) and 2^n put straight into the exponent bits; every step is plain arithmetic that
 * the compiler turns into vector instructions.
 *
 * The Makefile builds this file with -mprefer-vector-width=512 on x86-64: GCC's tuning would otherwise keep
 * the AVX-512 clone at 256-bit vectors. */
#include "kernels/kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define VEC K2C_CLONES

static inline float exp_inline(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* n = round(x / ln2) by the 1.5 * 2^23 trick (exact for |x / ln2| < 2^22): t's low mantissa bits hold n */
    float t = x * 1.44269504088896341f + 12582912.0f, n = t - 12582912.0f;
    float r = x - n * 0.693359375f;              /* ln2 split in two so that n * hi is exact */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * (r * r) + r + 1.0f;
    /* 2^n from t's bits (n is in [-126, 127] after the clamp). Integer arithmetic on the bits rather than a
     * float-to-int conversion: a NaN x then stays NaN (e is NaN) without an out-of-range conversion. */
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    uint32_t bits = (tb - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return e * s;
}

float k2c_vexpf(float x) { return exp_inline(x); }

VEC float k2c_vmax(const float *x, int n) {
    float m = x[0];
    #pragma omp simd reduction(max : m)
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

VEC float k2c_vexp_sum(float *x, int n, float shift) {
    /* 16 partial sums by hand: GCC does not vectorize an omp simd reduction around the inlined exp */
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += (x[i + k] = exp_inline(x[i + k] - shift));
    for (; i < n; i++) acc[0] += (x[i] = exp_inline(x[i] - shift));
    float s = 0;
    for (int k = 0; k < 16; k++) s += acc[k];
    return s;
}

VEC float k2c_vdot(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[i + k] * b[i + k];
    for (; i < n; i++) acc[0] += a[i] * b[i];
    float s = 0;
    for (int k = 0; k < 16; k++) s += acc[k];
    return s;
}

/* ---- small matrix products for attention. 16-float GCC vectors (one zmm under the AVX-512 clone); every dot
 * product is 16 lanes then the same horizontal order then the tail in order, whatever block it falls in, so a
 * result does not depend on how many rows or queries were computed with it. */
/* Loads, stores and the horizontal sum are macros, not functions: a 64-byte vector passed to or returned from a
 * function compiled without AVX-512 (the baseline clone) changes the ABI, which clang rejects outright. */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));     /* the same at any float's address */
typedef float v4 __attribute__((vector_size(16)));
#define ld16(p) (*(const v16u *)(const void *)(p))
#define st16(p, v) (*(v16u *)(void *)(p) = (v))
/* a fixed tree: lanes i and i+8 first, then j and j+4 of that, then pairs */
#define hsum16(v) hsum4((__builtin_shufflevector((v), (v), 0, 1, 2, 3) + __builtin_shufflevector((v), (v), 8, 9, 10, 11)) + \
                        (__builtin_shufflevector((v), (v), 4, 5, 6, 7) + __builtin_shufflevector((v), (v), 12, 13, 14, 15)))
static inline float hsum4(v4 b) { return (b[0] + b[2]) + (b[1] + b[3]); }
static inline float dot_tail(const float *a, const float *b, int n0, int n) {
    float s = 0;
    for (int k = n0; k < n; k++) s += a[k] * b[k];
    return s;
}

/* These two contract multiply-adds into FMAs (ISO C mode keeps them apart elsewhere in this file): attention
 * over a long cache is bound by their arithmetic, and an FMA does both at the rate of one. */
#if !defined(__clang__)        /* clang: -ffp-contract=on already fuses within an expression */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#endif
/* The same products for CPUs with 16 vector registers (AVX2; NEON's 32 hold 8 of these 64-byte vectors): the
 * 4 x 4 blocks of 16-float accumulators below are 32 ymm, and GCC spilled them every k-step (the attention of
 * a 512-token prefill took a quarter of it on AMD Zen 2). Here 2 x 2 blocks of dots (nt) and 4 rows x 16
 * columns (acc), each 16-lane sum held as two 8-float halves: the same lanes, the same multiply-adds in the
 * same order and the same horizontal tree, so the results are the wide code's bits. */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
#define ld8(p) (*(const v8u *)(const void *)(p))
#define st8(p, v) (*(v8u *)(void *)(p) = (v))
#define hsum8x2(lo, hi) hsum4((__builtin_shufflevector((lo), (lo), 0, 1, 2, 3) + __builtin_shufflevector((hi), (hi), 0, 1, 2, 3)) + \
                              (__builtin_shufflevector((lo), (lo), 4, 5, 6, 7) + __builtin_shufflevector((hi), (hi), 4, 5, 6, 7)))
int k2c_vgemm_wide = -1;
static int narrow_vectors(void) {
    if (k2c_vgemm_wide >= 0) return !k2c_vgemm_wide;
#if defined(__x86_64__)
    static int narrow = -1;
    if (narrow < 0) narrow = !__builtin_cpu_supports("avx512f");
    return narrow;
#else
    return 1;
#endif
}
/* S block [ni x nj] (ni, nj <= 2, constants after inlining) of k2c_vgemm_nt */
__attribute__((always_inline)) static inline void nt_block(float *S, int lds, const float *A, int lda, int ni,
                                                           const float *B, int ldb, int nj, int n, float alpha,
                                                           int accumulate) {
    int n16 = n & ~15;
    const float *a0 = A, *a1 = A + (ni > 1 ? lda : 0), *b0 = B, *b1 = B + (nj > 1 ? ldb : 0);
    v8 z = {0}, c00l = z, c00h = z, c01l = z, c01h = z, c10l = z, c10h = z, c11l = z, c11h = z;
    for (int k = 0; k < n16; k += 16) {
        v8 x0l = ld8(b0 + k), x0h = ld8(b0 + k + 8), x1l = z, x1h = z;
        if (nj > 1) { x1l = ld8(b1 + k); x1h = ld8(b1 + k + 8); }
        v8 ql = ld8(a0 + k), qh = ld8(a0 + k + 8);
        c00l += ql * x0l; c00h += qh * x0h;
        if (nj > 1) { c01l += ql * x1l; c01h += qh * x1h; }
        if (ni > 1) {
            ql = ld8(a1 + k); qh = ld8(a1 + k + 8);
            c10l += ql * x0l; c10h += qh * x0h;
            if (nj > 1) { c11l += ql * x1l; c11h += qh * x1h; }
        }
    }
    float v[2][2] = {{hsum8x2(c00l, c00h) + dot_tail(a0, b0, n16, n), 0}, {0, 0}};
    if (nj > 1) v[0][1] = hsum8x2(c01l, c01h) + dot_tail(a0, b1, n16, n);
    if (ni > 1) v[1][0] = hsum8x2(c10l, c10h) + dot_tail(a1, b0, n16, n);
    if (ni > 1 && nj > 1) v[1][1] = hsum8x2(c11l, c11h) + dot_tail(a1, b1, n16, n);
    for (int u = 0; u < ni; u++)
        for (int w = 0; w < nj; w++) {
            float *o = S + (size_t)u * lds + w, r = alpha * v[u][w];
            *o = accumulate ? *o + r : r;
        }
}
#define NT_BLOCK(ni, nj) nt_block(S + (size_t)i * lds + j, lds, A + (size_t)i * lda, lda, ni, B + (size_t)j * ldb, ldb, nj, \
                                  n, alpha, accumulate)

VEC void k2c_vgemm_nt(float *S, int lds, const float *A, int lda, int na, const float *B, int ldb, int nb, int n,
                      float alpha, int accumulate) {
    int n16 = n & ~15, i = 0;
    if (narrow_vectors()) {
        for (; i + 2 <= na; i += 2) {
            int j = 0;
            for (; j + 2 <= nb; j += 2) NT_BLOCK(2, 2);
            if (j < nb) NT_BLOCK(2, 1);
        }
        if (i < na)
            for (int j = 0; j < nb; j++) NT_BLOCK(1, 1);
        return;
    }
    for (; i + 4 <= na; i += 4) {
        const float *a0 = A + (size_t)i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        int j = 0;
        for (; j + 4 <= nb; j += 4) {
            const float *b0 = B + (size_t)j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            v16 c[4][4];
            memset(c, 0, sizeof c);
            for (int k = 0; k < n16; k += 16) {
                v16 x0 = ld16(b0 + k), x1 = ld16(b1 + k), x2 = ld16(b2 + k), x3 = ld16(b3 + k), q;
                q = ld16(a0 + k); c[0][0] += q * x0; c[0][1] += q * x1; c[0][2] += q * x2; c[0][3] += q * x3;
                q = ld16(a1 + k); c[1][0] += q * x0; c[1][1] += q * x1; c[1][2] += q * x2; c[1][3] += q * x3;
                q = ld16(a2 + k); c[2][0] += q * x0; c[2][1] += q * x1; c[2][2] += q * x2; c[2][3] += q * x3;
                q = ld16(a3 + k); c[3][0] += q * x0; c[3][1] += q * x1; c[3][2] += q * x2; c[3][3] += q * x3;
            }
            const float *ar[4] = {a0, a1, a2, a3}, *br[4] = {b0, b1, b2, b3};
            for (int u = 0; u < 4; u++)
                for (int w = 0; w < 4; w++) {
                    float v = alpha * (hsum16(c[u][w]) + dot_tail(ar[u], br[w], n16, n));
                    float *o = S + (size_t)(i + u) * lds + j + w;
                    *o = accumulate ? *o + v : v;
                }
        }
        for (; j < nb; j++) {
            const float *b0 = B + (size_t)j * ldb, *ar[4] = {a0, a1, a2, a3};
            v16 c[4];
            memset(c, 0, sizeof c);
            for (int k = 0; k < n16; k += 16) {
                v16 x0 = ld16(b0 + k);
                c[0] += ld16(a0 + k) * x0; c[1] += ld16(a1 + k) * x0; c[2] += ld16(a2 + k) * x0; c[3] += ld16(a3 + k) * x0;
            }
            for (int u = 0; u < 4; u++) {
                float v = alpha * (hsum16(c[u]) + dot_tail(ar[u], b0, n16, n));
                float *o = S + (size_t)(i + u) * lds + j;
                *o = accumulate ? *o + v : v;
            }
        }
    }
    for (; i < na; i++) {
        const float *a0 = A + (size_t)i * lda;
        for (int j = 0; j < nb; j++) {
            const float *b0 = B + (size_t)j * ldb;
            v16 c;
            memset(&c, 0, sizeof c);
            for (int k = 0; k < n16; k += 16) c += ld16(a0 + k) * ld16(b0 + k);
            float v = alpha * (hsum16(c) + dot_tail(a0, b0, n16, n));
            float *o = S + (size_t)i * lds + j;
            *o = accumulate ? *o + v : v;
        }
    }
}

VEC void k2c_vgemm_acc(float *C, int ldc, const float *P, int ldp, int m, const float *B, int ldb, int kdim, int n) {
    int n32 = n & ~31, i = 0;
    if (narrow_vectors()) {         /* 4 rows x 16 columns: 8 ymm accumulators */
        int n16 = n & ~15;
        for (; i < m; i += 4) {
            int nr = m - i < 4 ? m - i : 4;
            const float *p0 = P + (size_t)i * ldp, *p1 = p0 + (nr > 1 ? ldp : 0), *p2 = p0 + (nr > 2 ? 2 * ldp : 0);
            const float *p3 = p0 + (nr > 3 ? 3 * (size_t)ldp : 0);
            float *c0 = C + (size_t)i * ldc, *c1 = c0 + (nr > 1 ? ldc : 0), *c2 = c0 + (nr > 2 ? 2 * ldc : 0);
            float *c3 = c0 + (nr > 3 ? 3 * (size_t)ldc : 0);
            for (int k = 0; k < n16; k += 16) {
                v8 z = {0}, a00 = ld8(c0 + k), a01 = ld8(c0 + k + 8), a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
                if (nr > 1) { a10 = ld8(c1 + k); a11 = ld8(c1 + k + 8); }
                if (nr > 2) { a20 = ld8(c2 + k); a21 = ld8(c2 + k + 8); }
                if (nr > 3) { a30 = ld8(c3 + k); a31 = ld8(c3 + k + 8); }
                for (int j = 0; j < kdim; j++) {
                    const float *b = B + (size_t)j * ldb + k;
                    v8 x0 = ld8(b), x1 = ld8(b + 8);
                    a00 += p0[j] * x0; a01 += p0[j] * x1; a10 += p1[j] * x0; a11 += p1[j] * x1;
                    a20 += p2[j] * x0; a21 += p2[j] * x1; a30 += p3[j] * x0; a31 += p3[j] * x1;
                }
                st8(c0 + k, a00); st8(c0 + k + 8, a01);
                if (nr > 1) { st8(c1 + k, a10); st8(c1 + k + 8, a11); }
                if (nr > 2) { st8(c2 + k, a20); st8(c2 + k + 8, a21); }
                if (nr > 3) { st8(c3 + k, a30); st8(c3 + k + 8, a31); }
            }
            for (int u = 0; u < nr; u++) {
                const float *pu = P + (size_t)(i + u) * ldp;
                float *cu = C + (size_t)(i + u) * ldc;
                for (int j = 0; j < kdim; j++)
                    for (int k = n16; k < n; k++) cu[k] += pu[j] * B[(size_t)j * ldb + k];
            }
        }
        return;
    }
    for (; i + 4 <= m; i += 4) {
        const float *p0 = P + (size_t)i * ldp, *p1 = p0 + ldp, *p2 = p1 + ldp, *p3 = p2 + ldp;
        float *c0 = C + (size_t)i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        for (int k = 0; k < n32; k += 32) {
            v16 a00 = ld16(c0 + k), a01 = ld16(c0 + k + 16), a10 = ld16(c1 + k), a11 = ld16(c1 + k + 16);
            v16 a20 = ld16(c2 + k), a21 = ld16(c2 + k + 16), a30 = ld16(c3 + k), a31 = ld16(c3 + k + 16);
            for (int j = 0; j < kdim; j++) {
                const float *b = B + (size_t)j * ldb + k;
                v16 x0 = ld16(b), x1 = ld16(b + 16);
                a00 += p0[j] * x0; a01 += p0[j] * x1; a10 += p1[j] * x0; a11 += p1[j] * x1;
                a20 += p2[j] * x0; a21 += p2[j] * x1; a30 += p3[j] * x0; a31 += p3[j] * x1;
            }
            st16(c0 + k, a00); st16(c0 + k + 16, a01); st16(c1 + k, a10); st16(c1 + k + 16, a11);
            st16(c2 + k, a20); st16(c2 + k + 16, a21); st16(c3 + k, a30); st16(c3 + k + 16, a31);
        }
        for (int j = 0; j < kdim; j++)
            for (int k = n32; k < n; k++) {
                float b = B[(size_t)j * ldb + k];
                c0[k] += p0[j] * b; c1[k] += p1[j] * b; c2[k] += p2[j] * b; c3[k] += p3[j] * b;
            }
    }
    for (; i < m; i++) {
        const float *p0 = P + (size_t)i * ldp;
        float *c0 = C + (size_t)i * ldc;
        for (int k = 0; k < n32; k += 32) {
            v16 a00 = ld16(c0 + k), a01 = ld16(c0 + k + 16);
            for (int j = 0; j < kdim; j++) {
                const float *b = B + (size_t)j * ldb + k;
                a00 += p0[j] * ld16(b); a01 += p0[j] * ld16(b + 16);
            }
            st16(c0 + k, a00); st16(c0 + k + 16, a01);
        }
        for (int j = 0; j < kdim; j++)
            for (int k = n32; k < n; k++) c0[k] += p0[j] * B[(size_t)j * ldb + k];
    }
}

#if !defined(__clang__)
#pragma GCC pop_options
#endif

VEC void k2c_vaxpy(float *y, float a, const float *x, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

VEC void k2c_vscaled(float *y, float a, const float *x, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = a * x[i];
}

VEC void k2c_vrms_dw(double *acc, const float *dy, int dys, const float *x, int xs, const float *rstd, int N, int cn) {
    for (int t = 0; t < N; t++) {
        const float *dyr = dy + (size_t)t * dys, *xr = x + (size_t)t * xs;
        float r = rstd[t];
        #pragma omp simd
        for (int k = 0; k < cn; k++) acc[k] += (double)dyr[k] * (xr[k] * r);
    }
}

VEC void k2c_vscale(float *x, int n, float s) {
    #pragma omp simd
    for (int i = 0; i < n; i++) x[i] *= s;
}

VEC void k2c_vsilu_mul(float *h, const float *g, const float *u, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) h[i] = g[i] / (1.0f + exp_inline(-g[i])) * u[i];
}

VEC void k2c_vsilu_mul_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + exp_inline(-g[i])), d = dh[i];
        du[i] = d * g[i] * s;
        dg[i] = d * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

VEC void k2c_vadamw(float *w, float *m, float *v, const float *g, size_t n, float b1, float b2, float ic1, float ic2,
                    float lr, float decay, float eps) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        float mh = m[i] * ic1, vh = v[i] * ic2;
        w[i] = w[i] * decay - lr * mh / (sqrtf(vh) + eps);
    }
}

VEC void k2c_vnesterov(float *m, float *u, const float *g, float mu, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        m[i] = mu * m[i] + g[i];
        u[i] = g[i] + mu * m[i];
    }
}

VEC void k2c_vdecay_step(float *w, float decay, float step, const float *u, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) w[i] = w[i] * decay - step * u[i];
}

VEC float k2c_vrms_row(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    #pragma omp simd reduction(+ : ss)
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / n + eps));
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = w[i] * (x[i] * inv);
    return inv;
}

VEC void k2c_vrms_row_bwd(float *dx, const float *dy, const float *x, const float *w, float r, int n, int acc) {
    double m = 0;
    #pragma omp simd reduction(+ : m)
    for (int i = 0; i < n; i++) m += (double)(dy[i] * w[i]) * (x[i] * r);
    float mf = (float)(m / n);
    if (acc) {
        #pragma omp simd
        for (int i = 0; i < n; i++) dx[i] += r * (dy[i] * w[i] - x[i] * r * mf);
    } else {
        #pragma omp simd
        for (int i = 0; i < n; i++) dx[i] = r * (dy[i] * w[i] - x[i] * r * mf);
    }
}
