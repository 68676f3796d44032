/* Quantizers: fp32 rows to the GGUF block formats that quant_scalar.c reads (layouts in its header comment),
 * written from the format, not from any other implementation.
 *
 * Every format stores x ~ scale * level (+ offset). The levels are fixed by the format; what a quantizer
 * chooses is the scales, and the error is set by how well it chooses them. Taking the scale from max|x| alone
 * wastes range (one outlier decides the step for the whole group), so each group searches, within a bound
 * (a 1T-parameter model has to pass through here in hours: `k2c quantize --bench` prints values/s per type):
 *   Q8_0 without importance: max|x| / 127 as llama.cpp does, then the least-squares scale for those levels;
 *   symmetric (Q4_0, Q5_0, Q6_0, Q8_0 with importance, Q3_K, Q6_K, and the non-linear IQ4_NL / IQ4_XS levels):
 *     a few candidate scales max|x| / (level_end + s) on both ends of the range (asymmetric: Q4_0 holds -8..7),
 *     s from one level inside the end to just past it (32-blocks: -1, -1/2, 0, +1/2; Q8_0 with importance and
 *     the K-quant groups: quarters), each rounded and given the least-squares scale for its levels
 *     (d = sum w x q / sum w q^2, error sum w x^2 - d sum w x q in closed form, one pass a candidate), keeping
 *     the best;
 *   affine (Q4_1, Q5_1, and the K-quants' scale + min Q2_K, Q4_K, Q5_K): from 5 shrunken ranges and the spans
 *     as whole numbers of steps, two rounds each of round-then-refit of the 2x2 least-squares (scale, offset),
 *     again with the error in closed form from the same sums.
 * The K-quants then quantize the per-group scales (and mins) against one fp16 super-block scale tried on several
 * levels (the largest group scale on the top level or a few below it), round the elements again with the
 * scales as stored, refit the super-block scale(s) by least squares over the whole block, and finally move each
 * group's integer scale/min to a neighbour (or a level-shifted min) where that lowers its error; every pass
 * keeps whichever result had the smaller error. Every error is the weighted squared error with per-element
 * importance w (an imatrix), or plain squared error when w is NULL. Rows are independent (the caller runs them
 * in parallel), so the output does not depend on the thread count.
 *
 * Measured RMS error / RMS(x) per format on uniform and Gaussian rows: tests/test_quantize.c prints and bounds
 * them, the README has the table (e.g. Gaussian: Q8_0 0.0053, Q6_K 0.0168, Q5_K 0.034, Q4_K 0.070, Q3_K 0.145,
 * Q2_K 0.263), below the Lloyd-Max optimum for a single known-variance scale at the same bits. */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

static inline void put_f16(uint8_t *p, float v) {
    uint16_t h = k2c_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}
static inline float f16r(float v) { return k2c_f16_to_f32(k2c_f32_to_f16(v)); }   /* v as stored */
static inline float wt(const float *w, int i) { return w ? w[i] : 1.0f; }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline int nearest(float v) { return (int)lrintf(v); }
/* v rounded to the nearest integer (ties to even: the sum with 1.5 * 2^23 leaves the integer in the mantissa)
 * and clamped to lo..hi as integers, where the compiler picks conditional moves (a float compare here became a
 * branch, mispredicted about every other element). |v| beyond 2^22 is clamped first. */
static inline int round_clamp_i(float v, int lo, int hi) {
    v = v < 4194304.0f ? v : 4194304.0f;
    v = v > -4194304.0f ? v : -4194304.0f;
    int i = (int)((v + 12582912.0f) - 12582912.0f);
    i = i < lo ? lo : i;
    return i > hi ? hi : i;
}

static float amax_of(const float *x, int n, float *signed_max) {
    float a = 0, s = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > a) { a = fabsf(x[i]); s = x[i]; }
    if (signed_max) *signed_max = s;
    return a;
}

/* ------------------------------------------------------------------ symmetric: x ~ d * level */
/* Levels: the integers qmin..qmax (tab NULL) or the values tab[0..16) sorted ascending (IQ4), found by
 * the midpoints at or below v (ties go up). */
typedef struct { int qmin, qmax; const int8_t *tab; float mid[15]; } levels;

static levels lev_int(int qmin, int qmax) { levels L = {qmin, qmax, NULL, {0}}; return L; }
static levels lev_tab(const int8_t *tab) {
    levels L = {0, 15, tab, {0}};
    for (int j = 0; j < 15; j++) L.mid[j] = 0.5f * ((float)tab[j] + (float)tab[j + 1]);
    return L;
}
static inline int level_of(const levels *L, float v) {
    if (!L->tab) return round_clamp_i(v, L->qmin, L->qmax);
    int k = v >= L->mid[7] ? 8 : 0;            /* a branch-free binary search over the 15 midpoints */
    k += v >= L->mid[k + 3] ? 4 : 0;
    k += v >= L->mid[k + 1] ? 2 : 0;
    return k + (v >= L->mid[k] ? 1 : 0);
}
static inline float level_val(const levels *L, int i) { return L->tab ? (float)L->tab[i] : (float)i; }

/* The scale of one group: candidates d = smax / (lev +- k step), k = -K..K-1, lev either end of the level range
 * (the extreme element on that end; down to one level less: a block that did not reach the end of the range, as
 * a dequantized block may; a little past it: clipping the extreme), each rounded and given its least-squares
 * d = sum w x l / sum w l^2, whose error is sum w x^2 - (sum w x l)^2 / sum w l^2 (one pass per candidate).
 * K = 0 on one end: d from max|x| alone. Returns the best d. */
static float sym_fit(const float *x, const float *w, int n, const levels *L, int K, float step, int one_end) {
    float smax, amax = amax_of(x, n, &smax);
    if (amax == 0) return 0;
    float lmin = L->tab ? (float)L->tab[0] : (float)L->qmin, lmax = L->tab ? (float)L->tab[15] : (float)L->qmax;
    double best = INFINITY;
    float best_d = 0;
    for (int side = 0; side < 2; side++) {
        float lev = side ? lmax : lmin;
        if (one_end) { lev = fabsf(lmax) >= fabsf(lmin) ? lmax : lmin; if (side) break; }
        if (lev == 0) continue;
        for (int k = -K; k <= (K > 0 ? K - 1 : 0); k++) {
            float d = smax / (lev + (lev > 0 ? step : -step) * (float)k);
            if (!(d > 0 || d < 0)) continue;
            float id = 1.0f / d, axl[4] = {0}, all[4] = {0};    /* four partial sums (n is a multiple of 16) */
            if (L->tab) {
                for (int i = 0; i < n; i += 4)
                    for (int j = 0; j < 4; j++) {
                        float l = level_val(L, level_of(L, x[i + j] * id)), ww = wt(w, i + j);
                        axl[j] += ww * x[i + j] * l;
                        all[j] += ww * l * l;
                    }
            } else {
                for (int i = 0; i < n; i += 4)
                    for (int j = 0; j < 4; j++) {
                        float l = (float)round_clamp_i(x[i + j] * id, L->qmin, L->qmax), ww = wt(w, i + j);
                        axl[j] += ww * x[i + j] * l;
                        all[j] += ww * l * l;
                    }
            }
            double sxl = ((double)axl[0] + axl[1]) + ((double)axl[2] + axl[3]);
            double sll = ((double)all[0] + all[1]) + ((double)all[2] + all[3]);
            if (sll <= 0) continue;
            double e = -sxl * sxl / sll;
            if (e < best) { best = e; best_d = (float)(sxl / sll); }
        }
    }
    return best_d;
}

/* The levels for a fixed (stored) d: nearest in range; returns the error. */
static float sym_round(const float *x, const float *w, int n, float d, const levels *L, int *q) {
    float id = d != 0 ? 1.0f / d : 0, e[4] = {0};     /* four partial sums (n is a multiple of 16) */
    for (int i = 0; i < n; i += 4)
        for (int j = 0; j < 4; j++) {
            q[i + j] = level_of(L, x[i + j] * id);
            float r = x[i + j] - d * level_val(L, q[i + j]);
            e[j] += wt(w, i + j) * r * r;
        }
    return (e[0] + e[1]) + (e[2] + e[3]);
}

/* ------------------------------------------------------------------ affine: x ~ s * q + m, q in 0..nmax */
/* min_le0: the format subtracts a non-negative min (K-quants): m is kept <= 0. Each round is one pass: the
 * levels for (s, m), the 2x2 least-squares (s, m) for those levels and its error in closed form from the same
 * sums. Returns the error; q: the levels of the best round. */
static float aff_fit(const float *x, const float *w, int n, int nmax, int min_le0, float *s_out, float *m_out, int *q) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) { lo = fminf(lo, x[i]); hi = fmaxf(hi, x[i]); }
    if (min_le0 && lo > 0) lo = 0;
    double best = INFINITY;
    float bs = 0, bm = lo;
    int tq[256];
    if (hi == lo) {
        for (int i = 0; i < n; i++) q[i] = 0;
        *s_out = 0;
        *m_out = lo;
        return 0;
    }
    double sw = 0, sx = 0, sxx = 0;
    for (int i = 0; i < n; i++) { double ww = wt(w, i); sw += ww; sx += ww * x[i]; sxx += ww * x[i] * x[i]; }
    /* starts: ranges from the full span down to ~64% of it, centred; then the span as a whole number of steps
     * k < nmax from the minimum (a group that uses only part of the levels, as a dequantized block does) */
    int nint = nmax - 1 < 6 ? nmax - 1 : 6;
    for (int k = 0; k <= 4 + nint; k++) {
        float shrink = k <= 4 ? 1.0f - 0.09f * (float)k : 1.0f;
        float s = k <= 4 ? (hi - lo) * shrink / (float)nmax : (hi - lo) / (float)(nmax - (k - 4)), m = lo + (hi - lo) * (1 - shrink) * 0.5f;
        if (min_le0 && m > 0) m = 0;
        for (int it = 0; it < 2; it++) {
            float is = 1.0f / s, aq[4] = {0}, aqq[4] = {0}, axq[4] = {0};    /* four partial sums */
            for (int i = 0; i < n; i += 4)
                for (int j = 0; j < 4; j++) {
                    int qi = round_clamp_i((x[i + j] - m) * is, 0, nmax);
                    float t = (float)qi, ww = wt(w, i + j);
                    tq[i + j] = qi;
                    aq[j] += ww * t; aqq[j] += ww * t * t; axq[j] += ww * x[i + j] * t;
                }
            double sq = ((double)aq[0] + aq[1]) + ((double)aq[2] + aq[3]);
            double sqq = ((double)aqq[0] + aqq[1]) + ((double)aqq[2] + aqq[3]);
            double sxq = ((double)axq[0] + axq[1]) + ((double)axq[2] + axq[3]);
            double det = sw * sqq - sq * sq, ns, nm;
            if (det > 0) {
                ns = (sw * sxq - sq * sx) / det;
                nm = (sqq * sx - sq * sxq) / det;
            } else { ns = s; nm = m; }
            if (min_le0 && nm > 0) { nm = 0; ns = sqq > 0 ? sxq / sqq : s; }
            if (!((float)ns > 0)) break;
            s = (float)ns;
            m = (float)nm;
            double e = sxx - 2 * (double)s * sxq - 2 * (double)m * sx + (double)s * s * sqq + 2 * (double)s * m * sq +
                       (double)m * m * sw;
            if (e < best) { best = e; bs = s; bm = m; memcpy(q, tq, (size_t)n * sizeof *q); }
        }
    }
    if (best == INFINITY) {                     /* degenerate weights: plain min/max */
        bs = (hi - lo) / (float)nmax; bm = lo;
        for (int i = 0; i < n; i++) q[i] = clampi(nearest((x[i] - bm) / bs), 0, nmax);
    }
    *s_out = bs;
    *m_out = bm;
    return best == INFINITY ? 0 : (float)(best > 0 ? best : 0);
}

static float aff_round(const float *x, const float *w, int n, float s, float m, int nmax, int *q) {
    float is = s > 0 ? 1.0f / s : 0, e[4] = {0};      /* four partial sums (n is a multiple of 16) */
    for (int i = 0; i < n; i += 4)
        for (int j = 0; j < 4; j++) {
            int qi = round_clamp_i((x[i + j] - m) * is, 0, nmax);
            q[i + j] = qi;
            float r = x[i + j] - s * (float)qi - m;
            e[j] += wt(w, i + j) * r * r;
        }
    return (e[0] + e[1]) + (e[2] + e[3]);
}

/* ------------------------------------------------------------------ 32-element formats */
/* K: the half-width of the scale search (sym_fit); Q8_0 without importance takes max|x| / 127 as llama.cpp does,
 * then only its least-squares refit. */
static void q_sym32(const float *x, const float *w, uint8_t *b, const levels *L, int K, int one_end, int *q) {
    float d = f16r(sym_fit(x, w, 32, L, K, 1.0f / (float)(K ? K : 1), one_end));
    put_f16(b, d);
    sym_round(x, w, 32, d, L, q);
}

static void q4_0(const float *x, const float *w, uint8_t *b) {
    int q[32];
    levels L = lev_int(-8, 7);
    q_sym32(x, w, b, &L, 2, 0, q);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)((q[j] + 8) | (q[j + 16] + 8) << 4);
}

static void iq4_nl(const float *x, const float *w, uint8_t *b) {
    int q[32];
    levels L = lev_tab(k2c_iq4_nl);
    q_sym32(x, w, b, &L, 2, 0, q);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void q8_0(const float *x, const float *w, uint8_t *b) {
    int q[32];
    levels L = lev_int(-127, 127);
    q_sym32(x, w, b, &L, w ? 4 : 0, 1, q);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)q[j];
}

static void q5_pack(const int *u, uint8_t *h, uint8_t *qs) {     /* u in 0..31 */
    uint32_t qh = 0;
    for (int j = 0; j < 32; j++) qh |= (uint32_t)(u[j] >> 4) << j;
    for (int i = 0; i < 4; i++) h[i] = (uint8_t)(qh >> 8 * i);
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((u[j] & 15) | (u[j + 16] & 15) << 4);
}

static void q5_0(const float *x, const float *w, uint8_t *b) {
    int q[32];
    levels L = lev_int(-16, 15);
    q_sym32(x, w, b, &L, 2, 0, q);
    for (int j = 0; j < 32; j++) q[j] += 16;
    q5_pack(q, b + 2, b + 6);
}

static void q6_0(const float *x, const float *w, uint8_t *b) {
    int q[32];
    levels L = lev_int(-32, 31);
    q_sym32(x, w, b, &L, 2, 0, q);
    uint8_t *qh = b + 2, *qs = b + 10;
    memset(qh, 0, 8);
    for (int j = 0; j < 16; j++) {
        int u0 = q[j] + 32, u1 = q[j + 16] + 32;
        qs[j] = (uint8_t)((u0 & 15) | (u1 & 15) << 4);
        qh[j % 8] |= (uint8_t)(((u0 >> 4) | (u1 >> 4) << 2) << (4 * (j / 8)));
    }
}

/* Q4_1 / Q5_1: x = d * q + m with d, m as fp16 */
static void q_aff32(const float *x, const float *w, uint8_t *b, int nmax, int *q) {
    float s, m;
    aff_fit(x, w, 32, nmax, 0, &s, &m, q);
    s = f16r(s);
    m = f16r(m);
    put_f16(b, s);
    put_f16(b + 2, m);
    aff_round(x, w, 32, s, m, nmax, q);
}

static void q4_1(const float *x, const float *w, uint8_t *b) {
    int q[32];
    q_aff32(x, w, b, 15, q);
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void q5_1(const float *x, const float *w, uint8_t *b) {
    int q[32];
    q_aff32(x, w, b, 31, q);
    q5_pack(q, b + 4, b + 8);
}

/* ------------------------------------------------------------------ K-quants with scale + min */
/* The best super-block pass so far: its error, scales, and the integers it gave (the caller's arrays). */
typedef struct { float err, d, dmin; int *sc, *mi, *q; } kbest;

/* Group scales s_g and mins mn_g rounded against d, dmin; the elements rounded with them as stored. */
static void kmin_eval(const float *x, const float *w, int ng, int gs, int nmax, int smax, float d, float dmin, kbest *b,
                      const float *s, const float *mn) {
    int tq[256], tsc[16], tmi[16];
    float id = d > 0 ? 1.0f / d : 0, idm = dmin > 0 ? 1.0f / dmin : 0, e = 0;
    for (int g = 0; g < ng && e < b->err; g++) {
        tsc[g] = clampi(nearest(s[g] * id), 0, smax);
        tmi[g] = clampi(nearest(mn[g] * idm), 0, smax);
        e += aff_round(x + g * gs, w ? w + g * gs : NULL, gs, d * (float)tsc[g], -dmin * (float)tmi[g], nmax, tq + g * gs);
    }
    if (e < b->err) {
        b->err = e; b->d = d; b->dmin = dmin;
        memcpy(b->sc, tsc, (size_t)ng * sizeof *tsc); memcpy(b->mi, tmi, (size_t)ng * sizeof *tmi); memcpy(b->q, tq, 256 * sizeof *tq);
    }
}

/* One super-block of 256 = ng groups of gs: group scales s_g >= 0 and mins mn_g >= 0 (x = s q - mn), quantized
 * to 0..smax against d and dmin. Fills sc, mn (integers) and q; returns d and dmin as stored (fp16). */
static void kmin_block(const float *x, const float *w, int ng, int gs, int nmax, int smax, float *d_out,
                       float *dmin_out, int *sc, int *mi, int *q) {
    float s[16], mn[16];
    for (int g = 0; g < ng; g++) {
        float m;
        aff_fit(x + g * gs, w ? w + g * gs : NULL, gs, nmax, 1, &s[g], &m, q + g * gs);
        mn[g] = -m;
    }
    float ms = 0, mm = 0;
    for (int g = 0; g < ng; g++) { ms = fmaxf(ms, s[g]); mm = fmaxf(mm, mn[g]); }
    kbest b = {INFINITY, 0, 0, sc, mi, q};
    /* the super-block scales: the largest group scale (min) on level smax, or on one of the levels below it
     * (fewer groups rounded to a coarse step against finer steps: a dequantized block is on one of these),
     * both on the same level, then dmin alone, then d alone; then least-squares refits of both over the block */
    for (int k = 0; k < 8 && k < smax; k++)
        kmin_eval(x, w, ng, gs, nmax, smax, f16r(ms / (float)(smax - k)), f16r(mm / (float)(smax - k)), &b, s, mn);
    float d0 = b.d;
    for (int k = 0; k < 8 && k < smax; k++) kmin_eval(x, w, ng, gs, nmax, smax, d0, f16r(mm / (float)(smax - k)), &b, s, mn);
    float m0 = b.dmin;
    for (int k = 0; k < 8 && k < smax; k++) kmin_eval(x, w, ng, gs, nmax, smax, f16r(ms / (float)(smax - k)), m0, &b, s, mn);
    for (int it = 0; it < 3 && b.err < INFINITY; it++) {
        /* x ~ d * (sc_g q) - dmin * m_g with the best pass's integers */
        double a11 = 0, a12 = 0, a22 = 0, b1 = 0, b2 = 0;
        for (int i = 0; i < 256; i++) {
            double ww = wt(w, i), u = (double)sc[i / gs] * q[i], v = -(double)mi[i / gs];
            a11 += ww * u * u; a12 += ww * u * v; a22 += ww * v * v; b1 += ww * u * x[i]; b2 += ww * v * x[i];
        }
        double det = a11 * a22 - a12 * a12;
        float d = b.d, dmin = b.dmin;
        if (det > 1e-12 * (a11 * a22) && det > 0) {
            double nd = (b1 * a22 - b2 * a12) / det, ndm = (a11 * b2 - a12 * b1) / det;
            if (nd > 0) d = f16r((float)nd);
            if (ndm >= 0) dmin = f16r((float)ndm);
        } else if (a11 > 0 && b1 > 0) {
            d = f16r((float)(b1 / a11));
        }
        if (d == b.d && dmin == b.dmin) break;
        kmin_eval(x, w, ng, gs, nmax, smax, d, dmin, &b, s, mn);
    }
    /* each group's integer scale and min against the final d, dmin: the rounded pair or a neighbour of it,
     * whichever gives the group the smaller error (rounding s_g / d is not the best pair when q moves too) */
    for (int g = 0; g < ng && b.err < INFINITY; g++) {
        const float *xg = x + g * gs, *wg = w ? w + g * gs : NULL;
        int tq[32], bsc = sc[g], bmi = mi[g];
        float be = aff_round(xg, wg, gs, b.d * (float)bsc, -b.dmin * (float)bmi, nmax, tq);
        /* a group fit is only defined up to a shift of its levels (x = s q - mn = s (q + t) - (mn + s t)): the
         * min that is on the dmin grid may be one of the shifted ones */
        for (int ds = -1; ds <= 1; ds++)
            for (int t = 0; t < 3; t++)
                for (int dm = -1; dm <= 1; dm++) {
                    int cs = sc[g] + ds;
                    if (cs < 0 || cs > smax || b.dmin <= 0) continue;
                    int cm = (t ? nearest((mn[g] + (float)t * b.d * (float)cs) / b.dmin) : mi[g]) + dm;
                    if (cm < 0 || cm > smax || (cs == bsc && cm == bmi)) continue;
                    float e = aff_round(xg, wg, gs, b.d * (float)cs, -b.dmin * (float)cm, nmax, tq);
                    if (e < be) { be = e; bsc = cs; bmi = cm; }
                }
        sc[g] = bsc;
        mi[g] = bmi;
        aff_round(xg, wg, gs, b.d * (float)bsc, -b.dmin * (float)bmi, nmax, q + g * gs);
    }
    if (b.err == INFINITY) {                        /* all zero */
        b.d = b.dmin = 0;
        memset(sc, 0, (size_t)ng * sizeof *sc); memset(mi, 0, (size_t)ng * sizeof *mi); memset(q, 0, 256 * sizeof *q);
    }
    *d_out = b.d;
    *dmin_out = b.dmin;
}

static void q2_k(const float *x, const float *w, uint8_t *b) {
    int q[256], sc[16], mi[16];
    float d, dmin;
    kmin_block(x, w, 16, 16, 3, 15, &d, &dmin, sc, mi, q);
    for (int g = 0; g < 16; g++) b[g] = (uint8_t)(sc[g] | mi[g] << 4);
    uint8_t *qs = b + 16;
    memset(qs, 0, 64);
    for (int e = 0; e < 256; e++) qs[32 * (e / 128) + e % 32] |= (uint8_t)(q[e] << (2 * ((e / 32) % 4)));
    put_f16(b + 80, d);
    put_f16(b + 82, dmin);
}

static void pack_scales_k4(const int *sc, const int *m, uint8_t *p) {
    for (int j = 0; j < 4; j++) {
        p[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        p[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        p[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

static void q45_k(const float *x, const float *w, uint8_t *b, int five) {
    int q[256], sc[16], mi[16];
    float d, dmin;
    kmin_block(x, w, 8, 32, five ? 31 : 15, 63, &d, &dmin, sc, mi, q);
    put_f16(b, d);
    put_f16(b + 2, dmin);
    pack_scales_k4(sc, mi, b + 4);
    uint8_t *qh = five ? b + 16 : NULL, *qs = b + (five ? 48 : 16);
    memset(qs, 0, 128);
    if (qh) memset(qh, 0, 32);
    for (int g = 0; g < 8; g++)
        for (int l = 0; l < 32; l++) {
            int v = q[32 * g + l];
            qs[32 * (g / 2) + l] |= (uint8_t)((v & 15) << (g % 2 ? 4 : 0));
            if (qh) qh[l] |= (uint8_t)((v >> 4) << g);
        }
}

/* ------------------------------------------------------------------ K-quants with signed group scales */
/* 16 groups of 16 (or 8 of 32 with a table): group scales quantized to smin..smax (signed) against d. */
static float ksym_block(const float *x, const float *w, int ng, int gs, const levels *L, int K, int smin, int smax, int *sc, int *q) {
    float s[16];
    for (int g = 0; g < ng; g++) s[g] = sym_fit(x + g * gs, w ? w + g * gs : NULL, gs, L, K, 0.25f, 0);
    float sm = 0, am = amax_of(s, ng, &sm);
    float best = INFINITY, bd = 0;
    int tq[256], tsc[16];
    if (am == 0) { memset(sc, 0, (size_t)ng * sizeof *sc); for (int i = 0; i < 256; i++) q[i] = level_of(L, 0); return 0; }
    for (int cand = 0; cand < 12; cand++) {
        /* the largest |scale| on a level at or near the negative end (the longer one) or the positive end (a
         * dequantized block is on one of these), each followed by least-squares refits of d */
        float lev = cand < 6 ? (float)(smin + cand) : (float)(smax - (cand - 6));
        float d = f16r(sm / lev);
        for (int it = 0; it < 3 && d != 0; it++) {
            float id = 1.0f / d, e = 0;
            for (int g = 0; g < ng; g++) {
                tsc[g] = clampi(nearest(s[g] * id), smin, smax);
                e += sym_round(x + g * gs, w ? w + g * gs : NULL, gs, d * (float)tsc[g], L, tq + g * gs);
            }
            if (e < best) { best = e; bd = d; memcpy(sc, tsc, (size_t)ng * sizeof *sc); memcpy(q, tq, 256 * sizeof *q); }
            double sxu = 0, suu = 0;
            for (int i = 0; i < 256; i++) {
                double u = (double)tsc[i / gs] * level_val(L, tq[i]);
                sxu += wt(w, i) * x[i] * u;
                suu += wt(w, i) * u * u;
            }
            float nd = suu > 0 && sxu != 0 ? f16r((float)(sxu / suu)) : d;
            if (nd == d) break;
            d = nd;
        }
    }
    return bd;
}

static void q3_k(const float *x, const float *w, uint8_t *b) {
    int q[256], sc[16];
    levels L = lev_int(-4, 3);
    float d = ksym_block(x, w, 16, 16, &L, 2, -32, 31, sc, q);
    uint8_t *hm = b, *qs = b + 32, *raw = b + 96;
    memset(b, 0, 108);
    for (int e = 0; e < 256; e++) {
        int u = q[e] + 4, h = e / 128, p = (e / 32) % 4, l = e % 32;
        qs[32 * h + l] |= (uint8_t)((u & 3) << (2 * p));
        if (u >> 2) hm[l] |= (uint8_t)(1 << (4 * h + p));
    }
    for (int i = 0; i < 16; i++) {
        int v = sc[i] + 32;
        if (i < 8) raw[i] |= (uint8_t)(v & 15); else raw[i - 8] |= (uint8_t)((v & 15) << 4);
        raw[8 + i % 4] |= (uint8_t)((v >> 4) << (2 * (i / 4)));
    }
    put_f16(b + 108, d);
}

static void q6_k(const float *x, const float *w, uint8_t *b) {
    int q[256], sc[16];
    levels L = lev_int(-32, 31);
    float d = ksym_block(x, w, 16, 16, &L, 4, -128, 127, sc, q);
    uint8_t *ql = b, *qh = b + 128;
    memset(b, 0, 192);
    for (int e = 0; e < 256; e++) {
        int u = q[e] + 32, h = e / 128, el = e % 128, k = el / 32, l = el % 32;
        ql[64 * h + l + 32 * (k & 1)] |= (uint8_t)((u & 15) << (k >= 2 ? 4 : 0));
        qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * k));
    }
    for (int i = 0; i < 16; i++) b[192 + i] = (uint8_t)(int8_t)sc[i];
    put_f16(b + 208, d);
}

static void iq4_xs(const float *x, const float *w, uint8_t *b) {
    int q[256], sc[16];
    levels L = lev_tab(k2c_iq4_nl);
    float d = ksym_block(x, w, 8, 32, &L, 2, -32, 31, sc, q);
    put_f16(b, d);
    int sh = 0;
    memset(b + 4, 0, 4);
    for (int g = 0; g < 8; g++) {
        int ls = sc[g] + 32;
        b[4 + g / 2] |= (uint8_t)((ls & 15) << (4 * (g % 2)));
        sh |= (ls >> 4) << (2 * g);
        for (int j = 0; j < 16; j++) b[8 + 16 * g + j] = (uint8_t)(q[32 * g + j] | q[32 * g + j + 16] << 4);
    }
    b[2] = (uint8_t)sh;
    b[3] = (uint8_t)(sh >> 8);
}

/* ------------------------------------------------------------------ rows */
int k2c_quantize_row(k2c_wfmt f, const float *x, const float *w, int n, uint8_t *out) {
    int be = k2c_wfmt_block_elems(f);
    if (n <= 0 || n % be) {
        k2c_seterr("a row of %d elements is not a whole number of %s blocks (%d)", n, k2c_wfmt_name(f), be);
        return -1;
    }
    if (!k2c_wfmt_is_block(f)) {
        for (int i = 0; i < n; i++) {
            if (f == K2C_FMT_F32) memcpy(out + 4 * (size_t)i, &x[i], 4);
            else if (f == K2C_FMT_F16 || f == K2C_FMT_BF16) {
                uint16_t h = f == K2C_FMT_F16 ? k2c_f32_to_f16(x[i]) : k2c_f32_to_bf16(x[i]);
                out[2 * i] = (uint8_t)h;
                out[2 * i + 1] = (uint8_t)(h >> 8);
            } else {
                k2c_seterr("k2c cannot write %s rows", k2c_wfmt_name(f));
                return -1;
            }
        }
        return 0;
    }
    size_t bb = k2c_wfmt_row_bytes(f, be);
    for (int j = 0; j < n; j += be, out += bb) {
        const float *xb = x + j, *wb = w ? w + j : NULL;
        switch (f) {
        case K2C_FMT_Q4_0: q4_0(xb, wb, out); break;
        case K2C_FMT_Q4_1: q4_1(xb, wb, out); break;
        case K2C_FMT_Q5_0: q5_0(xb, wb, out); break;
        case K2C_FMT_Q5_1: q5_1(xb, wb, out); break;
        case K2C_FMT_Q6_0: q6_0(xb, wb, out); break;
        case K2C_FMT_Q8_0: q8_0(xb, wb, out); break;
        case K2C_FMT_Q2_K: q2_k(xb, wb, out); break;
        case K2C_FMT_Q3_K: q3_k(xb, wb, out); break;
        case K2C_FMT_Q4_K: q45_k(xb, wb, out, 0); break;
        case K2C_FMT_Q5_K: q45_k(xb, wb, out, 1); break;
        case K2C_FMT_Q6_K: q6_k(xb, wb, out); break;
        case K2C_FMT_IQ4_NL: iq4_nl(xb, wb, out); break;
        case K2C_FMT_IQ4_XS: iq4_xs(xb, wb, out); break;
        default: k2c_seterr("k2c cannot write %s rows", k2c_wfmt_name(f)); return -1;
        }
    }
    return 0;
}
