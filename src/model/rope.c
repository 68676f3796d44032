/* Rotary position embedding with YaRN, as in the DeepSeek-V3 reference (spec section 4).
 * Pairs are interleaved: (x[2i], x[2i+1]) rotate by pos * inv_freq[i]. The reference code de-interleaves
 * before rotating; since q_pe and k_pe get the same permutation, every dot product is identical. */
#include "model/model.h"

#include <math.h>

static double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

/* The dimension index at which a frequency completes n rotations over the original context. */
static double correction_dim(double n, int dim, double theta, int orig) {
    return dim * log(orig / (n * 2.0 * M_PI)) / (2.0 * log(theta));
}

void k2c_rope_init(const k2c_config *c, float *inv_freq, float *cos_sin_scale, float *attn_scale) {
    int dr = c->qk_rope_head_dim, half = dr / 2;
    double low = 0, high = 0;
    if (c->rope_yarn) {
        low = fmax(floor(correction_dim(c->beta_fast, dr, c->rope_theta, c->rope_original_max)), 0.0);
        high = fmin(ceil(correction_dim(c->beta_slow, dr, c->rope_theta, c->rope_original_max)), dr - 1.0);
        if (low == high) high += 0.001;
    }
    for (int i = 0; i < half; i++) {
        double extra = pow(c->rope_theta, -2.0 * i / dr);
        if (!c->rope_yarn) { inv_freq[i] = (float)extra; continue; }
        double ramp = fmin(fmax((i - low) / (high - low), 0.0), 1.0);
        inv_freq[i] = (float)(extra * (1.0 - ramp) + extra / c->rope_factor * ramp);
    }
    double s = 1.0 / sqrt((double)(c->qk_nope_head_dim + dr));
    double cs = 1.0;
    if (c->rope_yarn) {
        cs = yarn_mscale(c->rope_factor, c->mscale) / yarn_mscale(c->rope_factor, c->mscale_all_dim);
        if (c->mscale_all_dim != 0) {
            double m = yarn_mscale(c->rope_factor, c->mscale_all_dim);
            s *= m * m;
        }
    }
    *cos_sin_scale = (float)cs;
    *attn_scale = (float)s;
}

/* x [dr], rotated in place for position pos. Angles in double: at 128k positions a float angle loses
 * the low bits that the reference keeps. */
void k2c_rope_apply(float *x, int dr, int pos, const float *inv_freq, float mscale) {
    for (int i = 0; i < dr / 2; i++) {
        double a = (double)pos * (double)inv_freq[i];
        float co = (float)cos(a) * mscale, si = (float)sin(a) * mscale;
        float x0 = x[2 * i], x1 = x[2 * i + 1];
        x[2 * i] = x0 * co - x1 * si;
        x[2 * i + 1] = x0 * si + x1 * co;
    }
}

void k2c_rope_table(float *cs, int dr, int pos, const float *inv_freq, float mscale) {
    for (int i = 0; i < dr / 2; i++) {
        double a = (double)pos * (double)inv_freq[i];
        cs[2 * i] = (float)cos(a) * mscale;
        cs[2 * i + 1] = (float)sin(a) * mscale;
    }
}

void k2c_rope_apply_table(float *x, int dr, const float *cs) {
    for (int i = 0; i < dr / 2; i++) {
        float co = cs[2 * i], si = cs[2 * i + 1], x0 = x[2 * i], x1 = x[2 * i + 1];
        x[2 * i] = x0 * co - x1 * si;
        x[2 * i + 1] = x0 * si + x1 * co;
    }
}

/* Backward of k2c_rope_apply: the transpose of the rotation (dy -> dx). */
void k2c_rope_backward(float *dx, int dr, int pos, const float *inv_freq, float mscale) {
    for (int i = 0; i < dr / 2; i++) {
        double a = (double)pos * (double)inv_freq[i];
        float co = (float)cos(a) * mscale, si = (float)sin(a) * mscale;
        float g0 = dx[2 * i], g1 = dx[2 * i + 1];
        dx[2 * i] = g0 * co + g1 * si;
        dx[2 * i + 1] = -g0 * si + g1 * co;
    }
}
