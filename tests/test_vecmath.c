/* The trainer's vector kernels (src/vecmath.c) against float64 formulas, on whichever clone (AVX-512,
 * AVX2, baseline) this CPU selects. */
#include "check.h"
#include "kernels/kernels.h"

#include <string.h>

static unsigned rng = 12345;
static float frand(float a) {   /* uniform in [-a, a) */
    rng = rng * 1664525u + 1013904223u;
    return a * ((float)(rng >> 8) / 8388608.0f - 1.0f);
}
static double rel(double got, double want) { return fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1e-30); }

static void test_exp(void) {
    double worst = 0;
    float at = 0;
    for (int i = -870000; i <= 880000; i++) {
        float x = i * 1e-4f;
        double e = rel(k2c_vexpf(x), exp((double)x));
        if (isnan(e) || e > worst) { worst = e; at = x; }
    }
    printf("  exp: worst rel err %.3g at %g over [-87, 88]\n", worst, at);
    EXPECT(worst < 3.6e-7, "exp worst rel err %g at %g (over 3 ulp)", worst, at);
    float lo = k2c_vexpf(-1000.0f), hi = k2c_vexpf(1000.0f);
    EXPECT(lo > 0 && lo < 1e-37f && isfinite(hi) && hi > 1e38f, "clamped ends: exp(-1000) = %g, exp(1000) = %g", lo, hi);
    EXPECT(k2c_vexpf(0.0f) == 1.0f, "exp(0) = %.9g", k2c_vexpf(0.0f));
    EXPECT(isnan(k2c_vexpf(NAN)), "exp(NaN) = %g: a diverged run must stay visible", k2c_vexpf(NAN));
}

static void test_softmax_parts(void) {
    enum { NMAX = 4099 };
    static float x[NMAX], y[NMAX];
    int sizes[] = {1, 2, 15, 16, 17, 31, 100, 4096, NMAX};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int n = sizes[s];
        for (int i = 0; i < n; i++) x[i] = frand(20);
        x[n / 2] = 25.0f;                                /* the maximum somewhere in the middle */
        EXPECT(k2c_vmax(x, n) == (n == 1 ? x[0] : 25.0f), "max of %d", n);
        memcpy(y, x, (size_t)n * sizeof *x);
        double want = 0, worst = 0;
        for (int i = 0; i < n; i++) want += exp((double)(x[i] - 3.0f));   /* the shift is a float op */
        float sum = k2c_vexp_sum(y, n, 3.0f);
        for (int i = 0; i < n; i++) worst = check_worse(worst, rel(y[i], exp((double)(x[i] - 3.0f))));
        EXPECT(rel(sum, want) < 1e-5 && worst < 3.6e-7, "exp_sum n=%d: sum rel err %g, element %g", n, rel(sum, want), worst);
        k2c_vscale(y, n, 0.5f);
        EXPECT(y[n - 1] == 0.5f * (float)k2c_vexpf(x[n - 1] - 3.0f), "scale n=%d", n);
    }
}

static void test_silu(void) {
    enum { N = 1000 };
    static float g[N], u[N], h[N], dh[N], dg[N], du[N];
    for (int i = 0; i < N; i++) { g[i] = frand(12); u[i] = frand(3); dh[i] = frand(2); }
    k2c_vsilu_mul(h, g, u, N);
    memcpy(dg, dh, sizeof dg);
    k2c_vsilu_mul_bwd(dg, du, dg, g, u, N);              /* dg in place of dh, as the trainer calls it */
    double e1 = 0, e2 = 0, e3 = 0;
    for (int i = 0; i < N; i++) {
        double s = 1 / (1 + exp(-(double)g[i])), hw = g[i] * s * u[i];
        double duw = dh[i] * g[i] * s, dgw = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
        e1 = check_worse(e1, fabs(h[i] - hw) / (fabs(hw) + 1e-6));
        e2 = check_worse(e2, fabs(du[i] - duw) / (fabs(duw) + 1e-6));
        e3 = check_worse(e3, fabs(dg[i] - dgw) / (fabs(dgw) + 1e-6));
    }
    EXPECT(e1 < 2e-6 && e2 < 2e-6 && e3 < 5e-6, "silu rel err h %g du %g dg %g", e1, e2, e3);
}

static void test_adamw(void) {
    enum { N = 5003 };
    static float w[N], m[N], v[N], g[N], w0[N], m0[N], v0[N];
    for (int i = 0; i < N; i++) {
        w0[i] = w[i] = frand(1); m0[i] = m[i] = frand(0.01f); v0[i] = v[i] = fabsf(frand(1e-4f)); g[i] = frand(0.1f);
    }
    float b1 = 0.9f, b2 = 0.95f, lr = 1e-3f, wd = 0.1f, eps = 1e-8f;
    double c1 = 1 - pow(b1, 3), c2 = 1 - pow(b2, 3), worst = 0;
    k2c_vadamw(w, m, v, g, N, b1, b2, (float)(1 / c1), (float)(1 / c2), lr, 1 - lr * wd, eps);
    for (int i = 0; i < N; i++) {
        double mm = b1 * m0[i] + (1 - b1) * (double)g[i], vv = b2 * v0[i] + (1 - b2) * (double)g[i] * g[i];
        double ww = w0[i] * (1 - lr * wd) - lr * (mm / c1) / (sqrt(vv / c2) + eps);
        worst = check_worse(worst, fabs(w[i] - ww) / lr);       /* relative to the size of a step */
        worst = check_worse(worst, fabs(m[i] - mm) / (fabs(mm) + 1e-9) * 1e-3);
    }
    EXPECT(worst < 1e-3, "adamw: worst error %g of a step", worst);
}

static void test_rms_rows(void) {
    enum { n = 77 };
    float x[n], w[n], y[n], dy[n], dx[n], dx2[n];
    for (int i = 0; i < n; i++) { x[i] = frand(3); w[i] = 1 + frand(0.5f); dy[i] = frand(1); dx2[i] = 1; }
    float r = k2c_vrms_row(y, x, w, n, 1e-6f);
    double ss = 0, ey = 0, edx = 0, m = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double rw = 1 / sqrt(ss / n + 1e-6);
    for (int i = 0; i < n; i++) ey = check_worse(ey, fabs(y[i] - w[i] * x[i] * rw));
    EXPECT(rel(r, rw) < 1e-6 && ey < 1e-5, "rms row: rstd rel err %g, y err %g", rel(r, rw), ey);
    for (int i = 0; i < n; i++) m += (double)dy[i] * w[i] * x[i] * rw;
    m /= n;
    k2c_vrms_row_bwd(dx, dy, x, w, r, n, 0);
    k2c_vrms_row_bwd(dx2, dy, x, w, r, n, 1);
    for (int i = 0; i < n; i++) {
        double want = rw * (dy[i] * w[i] - x[i] * rw * m);
        edx = check_worse(edx, fabs(dx[i] - want));
        edx = check_worse(edx, fabs(dx2[i] - 1 - want));
    }
    EXPECT(edx < 1e-5, "rms row backward err %g", edx);
}

static void test_blas1(void) {
    enum { N = 203 };
    float a[N], b[N], y[N], z[N];
    double dot = 0;
    for (int i = 0; i < N; i++) { a[i] = frand(2); b[i] = frand(2); y[i] = frand(1); dot += (double)a[i] * b[i]; }
    float d = k2c_vdot(a, b, N);
    EXPECT(fabs(d - dot) < 1e-5 * N, "dot %g want %g", d, dot);
    EXPECT(k2c_vdot(a, b, 0) == 0 && k2c_vdot(a, b, 1) == a[0] * b[0], "dot of 0 and 1 elements");
    memcpy(z, y, sizeof z);
    k2c_vaxpy(z, 0.5f, a, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += z[i] != y[i] + 0.5f * a[i];
    k2c_vscaled(z, -2.0f, b, N);
    for (int i = 0; i < N; i++) bad += z[i] != -2.0f * b[i];
    EXPECT(bad == 0, "axpy / scaled: %d elements off", bad);
}

/* attention's small products: every block shape (4x4, 4x1, 1x1 and column tails) against float64, and a row's
 * result the same whichever rows were computed with it */
static void test_attn_gemm(void) {
    enum { NA = 7, NB = 9, N = 37, LD = 41 };
    static float A[NA * LD], B[NB * LD], S[NA * NB], S1[NB], C[NA * LD], C0[NA * LD], P[NA * NB];
    for (int i = 0; i < NA * LD; i++) { A[i] = frand(1); C[i] = C0[i] = frand(1); }
    for (int i = 0; i < NB * LD; i++) B[i] = frand(1);
    for (int i = 0; i < NA * NB; i++) { S[i] = frand(1); P[i] = frand(1); }
    double worst = 0, worst_acc = 0;
    int moved = 0;
    for (int acc = 0; acc < 2; acc++) {
        float old[NA * NB];
        memcpy(old, S, sizeof old);
        k2c_vgemm_nt(S, NB, A, LD, NA, B, LD, NB, N, 0.5f, acc);
        for (int i = 0; i < NA; i++)
            for (int j = 0; j < NB; j++) {
                double want = acc ? old[i * NB + j] : 0;
                for (int k = 0; k < N; k++) want += 0.5 * A[i * LD + k] * B[j * LD + k];
                worst = fmax(worst, fabs(S[i * NB + j] - want));
            }
    }
    for (int i = 0; i < NA; i++) {          /* one query alone */
        k2c_vgemm_nt(S1, NB, A + i * LD, LD, 1, B, LD, NB, N, 0.5f, 0);
        float both[NB];
        k2c_vgemm_nt(both, NB, A + i * LD, LD, 1, B, LD, NB, N, 0.5f, 0);
        for (int j = 0; j < NB; j++) moved += S1[j] != both[j];
    }
    float S4[4 * NB], Sx[NB];
    k2c_vgemm_nt(S4, NB, A, LD, 4, B, LD, NB, N, 1.0f, 0);
    k2c_vgemm_nt(Sx, NB, A + 2 * LD, LD, 1, B, LD, NB, N, 1.0f, 0);
    for (int j = 0; j < NB; j++) moved += S4[2 * NB + j] != Sx[j];
    k2c_vgemm_acc(C, LD, P, NB, NA, B, LD, NB, N);
    for (int i = 0; i < NA; i++)
        for (int k = 0; k < N; k++) {
            double want = C0[i * LD + k];
            for (int j = 0; j < NB; j++) want += (double)P[i * NB + j] * B[j * LD + k];
            worst_acc = fmax(worst_acc, fabs(C[i * LD + k] - want));
        }
    EXPECT(worst < 1e-5 && worst_acc < 1e-5, "gemm_nt err %g, gemm_acc err %g", worst, worst_acc);
    EXPECT(moved == 0, "%d results depend on the block they were computed in", moved);
    /* both blockings (16 and 32 vector registers) give the same bits */
    float Sw[NA * NB], Sn[NA * NB], Cw[NA * LD], Cn[NA * LD];
    int differ = 0;
    for (int wide = 0; wide < 2; wide++) {
        k2c_vgemm_wide = wide;
        float *s = wide ? Sw : Sn, *c = wide ? Cw : Cn;
        memcpy(c, C0, sizeof Cw);
        k2c_vgemm_nt(s, NB, A, LD, NA, B, LD, NB, N, 0.5f, 0);
        k2c_vgemm_acc(c, LD, P, NB, NA, B, LD, NB, N);
    }
    k2c_vgemm_wide = -1;
    for (int i = 0; i < NA * NB; i++) differ += memcmp(&Sw[i], &Sn[i], sizeof(float)) != 0;
    for (int i = 0; i < NA * LD; i++) differ += memcmp(&Cw[i], &Cn[i], sizeof(float)) != 0;
    EXPECT(differ == 0, "%d results differ between the wide and the narrow blocking", differ);
}

static void test_muon_parts(void) {
    enum { N = 99 };
    float m[N], u[N], g[N], w[N], m0[N], w0[N];
    for (int i = 0; i < N; i++) { m0[i] = m[i] = frand(1); g[i] = frand(1); w0[i] = w[i] = frand(1); }
    k2c_vnesterov(m, u, g, 0.95f, N);
    k2c_vdecay_step(w, 0.99f, 0.01f, u, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float mm = 0.95f * m0[i] + g[i], uu = g[i] + 0.95f * mm;
        bad += m[i] != mm || u[i] != uu || w[i] != w0[i] * 0.99f - 0.01f * uu;
    }
    EXPECT(bad == 0, "nesterov / decay step: %d elements off", bad);
}

static void test_rms_dw(void) {
    enum { T = 37, C = 40, cn = 19 };
    float dy[T * C], x[T * C], r[T];
    double acc[cn], want[cn];
    for (int i = 0; i < T * C; i++) { dy[i] = frand(1); x[i] = frand(2); }
    for (int t = 0; t < T; t++) r[t] = 0.5f + (float)t / T;
    for (int k = 0; k < cn; k++) { acc[k] = 1; want[k] = 1; }
    k2c_vrms_dw(acc, dy + 3, C, x + 3, C, r, T, cn);
    double worst = 0;
    for (int k = 0; k < cn; k++) {
        for (int t = 0; t < T; t++) want[k] += (double)dy[t * C + 3 + k] * (x[t * C + 3 + k] * r[t]);
        worst = check_worse(worst, fabs(acc[k] - want[k]));
    }
    EXPECT(worst < 1e-9, "rms dw worst err %g", worst);
}

int main(void) {
    run_test("vec_exp", test_exp);
    run_test("vec_softmax_parts", test_softmax_parts);
    run_test("vec_silu", test_silu);
    run_test("vec_adamw", test_adamw);
    run_test("vec_rms_rows", test_rms_rows);
    run_test("vec_blas1", test_blas1);
    run_test("vec_attn_gemm", test_attn_gemm);
    run_test("vec_rms_dw", test_rms_dw);
    run_test("vec_muon_parts", test_muon_parts);
    return check_exit();
}
