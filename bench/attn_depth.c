/* Attention at depth, in CPU time: one layer's MLA decode call (projections, cache write, attention over the cache,
 * output projection) repeated at a fixed depth, then whole decode steps, each timed by the calling thread's CPU
 * clock, so that other processes on a shared machine do not stretch the figures (wall time there varies by 2x).
 * Built by bench/attn_depth.sh against a library (this tree's, or an older commit's for a before/after pair: it
 * uses only calls every version since the paged cache's predecessor has). One thread.
 * With CHUNK > 0 it also times one layer's MLA prefill of a CHUNK-token chunk after DEPTH cached positions (the
 * server's chunked prefill, issue 15), in the form the cost model picks.
 *   attn_depth MODEL DEPTH CACHE_TYPE(0 f32, 1 bf16, 2 q8_0) [REPS [CHUNK]] */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: attn_depth MODEL DEPTH CACHE_TYPE [REPS]\n"); return 2; }
    int depth = atoi(argv[2]), ct = atoi(argv[3]), reps = argc > 4 ? atoi(argv[4]) : 30, steps = 24;
    int chunk = argc > 5 ? atoi(argv[5]) : 0;
    if (reps < 1 || reps > 1000 || depth < 64 || chunk < 0 || chunk > 512) {
        fprintf(stderr, "attn_depth: REPS 1..1000, DEPTH >= 64, CHUNK 0..512\n");
        return 2;
    }
    k2c_model_opts o = {.threads = 1, .cache_type = ct};
    k2c_model m;
    if (k2c_model_load_opts(&m, argv[1], &o)) { fprintf(stderr, "%s\n", k2c_errmsg()); return 1; }
    k2c_state s;
    int D = m.cfg.hidden_size, V = m.cfg.vocab_size, ids[64];
    for (int i = 0; i < 64; i++) ids[i] = i * 7 % V;
    float *lg = malloc(sizeof(float) * (size_t)V), *xn = calloc((size_t)D, 4), *out = calloc((size_t)D, 4);
    double *t = malloc(sizeof(double) * (size_t)(reps > steps ? reps : steps));
    if (k2c_state_init(&s, &m, depth + steps + 8 + chunk) || k2c_prefill(&s, ids, 64, NULL, lg, NULL) || k2c_state_fill_repeat(&s, depth)) {
        fprintf(stderr, "%s\n", k2c_errmsg());
        return 1;
    }
    for (int i = 0; i < D; i++) xn[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    k2c_state *ss = &s;
    for (int ex = 1; ex >= 0; ex--) {      /* exact mode (fp32 activations), then the default */
        m.cx.exact = ex;
        for (int r = 0; r < reps; r++) {
            double t0 = cpu();
            if (k2c_mla_decode_batch(&ss, 1, 0, xn, out, NULL)) { fprintf(stderr, "%s\n", k2c_errmsg()); return 1; }
            t[r] = cpu() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        printf("cache %d depth %d exact %d: attention of one layer: min %.3f ms, median %.3f ms CPU\n", ct, depth, ex,
               t[0] * 1e3, t[reps / 2] * 1e3);
    }
    if (chunk) {       /* the chunk's rows overwrite the same positions each time: the cache stays at DEPTH */
        float *xc = malloc(sizeof(float) * (size_t)D * (size_t)chunk), *oc = malloc(sizeof(float) * (size_t)D * (size_t)chunk);
        for (size_t i = 0; i < (size_t)D * (size_t)chunk; i++) xc[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
        if (k2c_state_reserve(&s, depth + chunk)) { fprintf(stderr, "%s\n", k2c_errmsg()); return 1; }
        int n = reps < 10 ? reps : 10;
        for (int r = 0; r < n; r++) {
            double t0 = cpu();
            if (k2c_mla_prefill(&s, 0, xc, chunk, oc, NULL)) { fprintf(stderr, "%s\n", k2c_errmsg()); return 1; }
            t[r] = cpu() - t0;
        }
        qsort(t, (size_t)n, sizeof *t, cmp);
        printf("cache %d depth %d exact 0: prefill chunk of %d, one layer: median %.3f ms CPU (%s form)\n", ct, depth, chunk,
               t[n / 2] * 1e3, k2c_mla_prefill_absorbed(&m, depth, chunk) ? "absorbed" : "expanded");
        free(xc); free(oc);
    }
    int id = 5;
    for (int r = 0; r < steps; r++) {
        double t0 = cpu();
        if (k2c_decode(&s, id, lg, NULL)) { fprintf(stderr, "%s\n", k2c_errmsg()); return 1; }
        t[r] = cpu() - t0;
        id = (id * 31 + 7) % V;
    }
    qsort(t, (size_t)steps, sizeof *t, cmp);
    printf("cache %d depth %d exact 0: decode step: median %.3f ms CPU -> %.1f tok/s\n", ct, depth, t[steps / 2] * 1e3, 1 / t[steps / 2]);
    k2c_state_free(&s);
    k2c_model_free(&m);
    free(lg); free(xn); free(out); free(t);
    return 0;
}
