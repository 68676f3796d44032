/* Row kernels of the trainer's element-wise work (softmax, SiLU gates, RMSNorm rows, AdamW), vectorized.
 * Internal to the library (the trainer and its tests): not part of k2c.h.
 *
 * Each is compiled three times (x86-64-v4 = AVX-512, v3 = AVX2+FMA, and the baseline) and the loader picks
 * the one the CPU runs (GCC target_clones, an ifunc). Within a build and CPU the arithmetic order is fixed,
 * so results are bit-reproducible; they are not bit-identical across CPUs of different levels. */
#ifndef K2C_VECMATH_H
#define K2C_VECMATH_H

#include <stddef.h>

/* exp(x) for float, to about 2 ulp; x is clamped to [-87, 88] (no infinities, no subnormal results) */
float k2c_vexpf(float x);
/* largest of x[0..n) (n >= 1) */
float k2c_vmax(const float *x, int n);
/* x[i] = exp(x[i] - shift); returns the sum of the new x (float lanes, then in order) */
float k2c_vexp_sum(float *x, int n, float shift);
/* sum of a[i] * b[i] (16 lanes, then in order) */
float k2c_vdot(const float *a, const float *b, int n);
/* y[i] += a * x[i] */
void k2c_vaxpy(float *y, float a, const float *x, int n);
/* y[i] = a * x[i] */
void k2c_vscaled(float *y, float a, const float *x, int n);
/* RMSNorm weight gradient over a block of cn columns: acc[k] += sum_t dy[t][k] * x[t][k] * rstd[t], rows
 * in order, in double */
void k2c_vrms_dw(double *acc, const float *dy, int dys, const float *x, int xs, const float *rstd, int N, int cn);
/* x[i] *= s */
void k2c_vscale(float *x, int n, float s);
/* h = silu(g) * u = g / (1 + e^-g) * u */
void k2c_vsilu_mul(float *h, const float *g, const float *u, size_t n);
/* from dh (the gradient at h): du = dh * silu(g), dg = dh * u * silu'(g). dg may be dh. */
void k2c_vsilu_mul_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
/* AdamW on n elements: m, v moments; ic1 = 1 / (1 - b1^t), ic2 = 1 / (1 - b2^t); decay = 1 - lr * wd */
void k2c_vadamw(float *w, float *m, float *v, const float *g, size_t n, float b1, float b2, float ic1, float ic2,
                float lr, float decay, float eps);
/* Muon's Nesterov momentum: m = mu m + g; u = g + mu m */
void k2c_vnesterov(float *m, float *u, const float *g, float mu, size_t n);
/* w = w * decay - step * u (a decoupled-weight-decay update) */
void k2c_vdecay_step(float *w, float decay, float step, const float *u, size_t n);
/* RMSNorm of one row: y = w * x * rstd with rstd = 1 / sqrt(mean(x^2) + eps) (sum of squares in double);
 * returns rstd */
float k2c_vrms_row(float *y, const float *x, const float *w, int n, float eps);
/* the row part of the RMSNorm backward: dx = r * (dy * w - x * r * mean(dy * w * x * r)); acc: dx += */
void k2c_vrms_row_bwd(float *dx, const float *dy, const float *x, const float *w, float r, int n, int acc);

#endif
