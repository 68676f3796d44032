/* Sampling a token from logits: greedy at temperature 0, otherwise softmax(logits / T) restricted by
 * top-k, then min-p (drop tokens below min_p * p_max), then top-p (smallest set with mass >= top_p).
 * The generator is xorshift64*, seeded explicitly, so a seed reproduces a generation exactly. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t k2c_rng_next(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float k2c_rng_uniform(uint64_t *s) { return (float)(k2c_rng_next(s) >> 40) / 16777216.0f; }

int k2c_sampler_init(k2c_sampler *s, int vocab, float temperature, float top_p, int top_k, float min_p, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->temperature = temperature; s->top_p = top_p; s->top_k = top_k; s->min_p = min_p;
    s->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    s->n = vocab;
    s->scratch_p = malloc((size_t)vocab * sizeof *s->scratch_p);
    s->scratch_i = malloc((size_t)vocab * sizeof *s->scratch_i);
    if (!s->scratch_p || !s->scratch_i) {
        k2c_sampler_free(s);
        k2c_seterr("out of memory for a sampler over %d tokens", vocab);
        return -1;
    }
    return 0;
}

void k2c_sampler_free(k2c_sampler *s) {
    free(s->scratch_p);
    free(s->scratch_i);
    memset(s, 0, sizeof *s);
}

static int by_prob_desc(const void *a, const void *b, void *key) {
    const float *p = key;
    float x = p[*(const int *)a], y = p[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : (*(const int *)a - *(const int *)b);
}

int k2c_sample(k2c_sampler *s, const float *logits) {
    int n = s->n, best = 0;
    for (int i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0 || !s->scratch_p || !s->scratch_i) return best;
    float *p = s->scratch_p;
    int *id = s->scratch_i;
    float inv_t = 1.0f / s->temperature;
    for (int i = 0; i < n; i++) p[i] = (logits[i] - logits[best]) * inv_t;
    float inv_sum = 1.0f / k2c_vexp_sum(p, n, 0.0f);       /* softmax: the largest term is e^0 = 1, so sum >= 1 */
    /* the vector exp clamps its argument (e^-87, not 0): a masked token (-inf logit) keeps probability 0 */
    for (int i = 0; i < n; i++) p[i] = logits[i] == -INFINITY ? 0.0f : p[i] * inv_sum;
    /* Candidates: tokens not cut by min-p (relative to the best), then top-k / top-p over them sorted. */
    int m = 0;
    float floor_p = s->min_p > 0 ? s->min_p * p[best] : 0;
    for (int i = 0; i < n; i++) if (p[i] >= floor_p && p[i] > 0) id[m++] = i;
    int need_sort = (s->top_k > 0 && s->top_k < m) || (s->top_p > 0 && s->top_p < 1);
    if (need_sort) {
        /* Cheap pre-cut before sorting 160k entries: tokens under 1e-6 of the best matter to no top-p < 1. */
        if (m > 4096) {
            int k = 0;
            for (int i = 0; i < m; i++) if (p[id[i]] >= 1e-6f * p[best]) id[k++] = id[i];
            m = k;
        }
        qsort_r(id, (size_t)m, sizeof *id, by_prob_desc, p);
        if (s->top_k > 0 && s->top_k < m) m = s->top_k;
        if (s->top_p > 0 && s->top_p < 1) {
            double c = 0;
            for (int i = 0; i < m; i++) { c += p[id[i]]; if (c >= s->top_p) { m = i + 1; break; } }
        }
    }
    double mass = 0;
    for (int i = 0; i < m; i++) mass += p[id[i]];
    double u = k2c_rng_uniform(&s->rng) * mass, c = 0;
    for (int i = 0; i < m; i++) { c += p[id[i]]; if (u < c) return id[i]; }
    return m ? id[m - 1] : best;
}
