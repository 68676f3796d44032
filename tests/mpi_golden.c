/* Expert parallelism against one process, run under mpirun by tests/test_mpi.sh (any number of ranks).
 * Every golden case (safetensors in every stored format, k2-long, the GGUF files) is opened by every rank with
 * the ranks' communicator; rank 0 also opens it alone and checks that the expert-parallel model gives the same
 * logits within 1e-5 x max|logit| for a prefill, token-by-token decode, prefill + decode, chunked prefill,
 * a batched decode of two states and the traced prefill (same chosen experts), and the reference logits within
 * 1e-4. The other ranks serve their experts until rank 0 closes each model. */
#include "model/model.h"
#include "k2c_dist.h"
#include "check.h"

#include <string.h>

static const char *CASES[] = {"k2-tiny-f32", "k2-tiny-bf16-sharded", "k2-tiny-fp8", "k2-thinking-tiny-int4",
                              "moonlight-tiny", "dsv3-tiny", "k2-long", "gguf/gguf-Q8_0", "gguf/gguf-Q4_K",
                              "gguf/gguf-Q6_K", "gguf/gguf-Q2_K", "gguf/gguf-Q4_K_M"};
static const k2c_comm *g_comm;
static const char *g_case;

/* max |a - b| / max |b| over n; NaN-safe */
static double rel(const float *a, const float *b, size_t n) {
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) { m = check_worse(m, fabsf(b[i])); e = check_worse(e, fabsf(a[i] - b[i])); }
    return e / (m > 0 ? m : 1);
}

/* logits [T, V] of ids through s: prefill (chunk: 0 one call, else chunks of that many), or decode */
static int run(k2c_state *s, const int *ids, int T, int V, int decode, int chunk, float *out) {
    k2c_state_reset(s);
    if (decode) {
        for (int t = 0; t < T; t++) if (k2c_decode(s, ids[t], out + (size_t)t * V, NULL)) return -1;
        return 0;
    }
    int step = chunk ? chunk : T;
    for (int t = 0; t < T; t += step)
        if (k2c_prefill(s, ids + t, T - t < step ? T - t : step, out + (size_t)t * V, NULL, NULL)) return -1;
    return 0;
}

static void check_case(void) {
    char dir[256], exp[300];
    snprintf(dir, sizeof dir, "tests/data/golden/%s", g_case);
    snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
    /* exact: fp32 activations on GGUF too, as test_gguf checks the reference (the int8 fast path rounds every
     * input vector, so a difference in the last bit of the residual stream moves whole quantization steps) */
    k2c_model_opts o = {.load = K2C_LOAD_MMAP, .threads = 1, .comm = g_comm, .exact = 1};
    k2c_model ep, one;
    k2c_safetensors ref = {0};
    if (k2c_model_load_opts(&ep, dir, &o) != 0) { EXPECT(0, "%s: %s", dir, k2c_errmsg()); return; }
    o.comm = NULL;
    if (k2c_model_load_opts(&one, dir, &o) != 0) { EXPECT(0, "%s: %s", dir, k2c_errmsg()); k2c_model_free(&ep); return; }
    if (k2c_st_open(&ref, exp) != 0) { EXPECT(0, "%s", k2c_errmsg()); goto out; }
    const k2c_tensor *ids_t = k2c_st_find(&ref, "input_ids"), *lg = k2c_st_find(&ref, "logits");
    int T = (int)ids_t->numel, V = ep.cfg.vocab_size, L = ep.cfg.num_hidden_layers, K = ep.cfg.num_experts_per_tok;
    int *ids = malloc((size_t)T * sizeof *ids), half = T / 2;
    for (int t = 0; t < T; t++) ids[t] = (int)k2c_elem_to_f32(ids_t->dtype, ids_t->data, t);
    size_t n = (size_t)T * V;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    k2c_state se, so;
    EXPECT(k2c_state_init(&se, &ep, T) == 0 && k2c_state_init(&so, &one, T) == 0, "%s", k2c_errmsg());
    const char *what[] = {"prefill", "decode", "chunked prefill (7)"};
    for (int k = 0; k < 3; k++) {
        int dec = k == 1, chunk = k == 2 ? 7 : 0;
        EXPECT(run(&se, ids, T, V, dec, chunk, a) == 0 && run(&so, ids, T, V, dec, chunk, b) == 0, "%s", k2c_errmsg());
        double e = rel(a, b, n), r = rel(a, lg->data, n);
        EXPECT(e < 1e-5, "%s %s: %d ranks vs one process: rel err %g", g_case, what[k], g_comm->size, e);
        EXPECT(r < 1e-4, "%s %s: %d ranks vs the reference: rel err %g", g_case, what[k], g_comm->size, r);
    }
    /* a prefill of half, then decode: both forms share the cache */
    k2c_state_reset(&se);
    k2c_state_reset(&so);
    EXPECT(k2c_prefill(&se, ids, half, NULL, NULL, NULL) == 0 && k2c_prefill(&so, ids, half, NULL, NULL, NULL) == 0, "%s", k2c_errmsg());
    for (int t = half; t < T; t++)
        EXPECT(k2c_decode(&se, ids[t], a + (size_t)t * V, NULL) == 0 && k2c_decode(&so, ids[t], b + (size_t)t * V, NULL) == 0, "%s", k2c_errmsg());
    EXPECT(rel(a + (size_t)half * V, b + (size_t)half * V, (size_t)(T - half) * V) < 1e-5, "%s prefill + decode", g_case);
    /* a batched decode of two states at different positions */
    {
        k2c_state s2e, s2o;
        EXPECT(k2c_state_init(&s2e, &ep, T) == 0 && k2c_state_init(&s2o, &one, T) == 0, "%s", k2c_errmsg());
        k2c_state_reset(&se);
        k2c_state_reset(&so);
        EXPECT(k2c_prefill(&s2e, ids, half, NULL, NULL, NULL) == 0 && k2c_prefill(&s2o, ids, half, NULL, NULL, NULL) == 0, "%s", k2c_errmsg());
        double worst = 0;
        for (int t = 0; t + half < T; t++) {
            k2c_state *be[2] = {&se, &s2e}, *bo[2] = {&so, &s2o};
            int two[2] = {ids[t], ids[half + t]};
            EXPECT(k2c_decode_batch(be, two, 2, a) == 0 && k2c_decode_batch(bo, two, 2, b) == 0, "%s", k2c_errmsg());
            worst = check_worse(worst, rel(a, b, 2 * (size_t)V));
        }
        EXPECT(worst < 1e-5, "%s batched decode: rel err %g", g_case, worst);
        k2c_state_free(&s2e);
        k2c_state_free(&s2o);
    }
    /* the traced prefill: rank 0 routes, so the chosen experts are the single process's */
    {
        int *xe = malloc((size_t)L * T * K * sizeof *xe), *xo = malloc((size_t)L * T * K * sizeof *xo);
        k2c_trace te = {.experts = xe}, to = {.experts = xo};
        k2c_state_reset(&se);
        k2c_state_reset(&so);
        EXPECT(k2c_prefill(&se, ids, T, NULL, a, &te) == 0 && k2c_prefill(&so, ids, T, NULL, b, &to) == 0, "%s", k2c_errmsg());
        EXPECT(!memcmp(xe, xo, (size_t)L * T * K * sizeof *xe), "%s: chosen experts differ", g_case);
        EXPECT(rel(a, b, (size_t)V) < 1e-5, "%s traced prefill's last logits", g_case);
        free(xe);
        free(xo);
    }
    k2c_state_free(&se);
    k2c_state_free(&so);
    free(ids); free(a); free(b);
out:
    k2c_st_close(&ref);
    k2c_model_free(&one);
    k2c_model_free(&ep);            /* releases the other ranks' k2c_model_follow */
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--built")) { printf("%s\n", k2c_dist_built() ? "mpi" : "none"); return 0; }
    if (k2c_dist_init(&argc, &argv) != 0) { printf("FAIL mpi_init: %s\n", k2c_errmsg()); return 1; }
    g_comm = k2c_dist_comm();
    if (!g_comm) { printf("FAIL mpi_golden: not started by mpirun with 2 or more ranks\n"); return 1; }
    int ncase = (int)(sizeof CASES / sizeof *CASES);
    for (int i = 0; i < ncase; i++) {
        g_case = CASES[i];
        if (g_comm->rank == 0) {
            char name[128];
            snprintf(name, sizeof name, "mpi_golden_n%d_%s", g_comm->size, CASES[i]);
            for (char *p = name; *p; p++) if (*p == '/') *p = '_';
            run_test(name, check_case);
        } else {
            char dir[256];
            snprintf(dir, sizeof dir, "tests/data/golden/%s", CASES[i]);
            k2c_model_opts o = {.load = K2C_LOAD_MMAP, .threads = 1, .comm = g_comm, .exact = 1};
            k2c_model m;
            if (k2c_model_load_opts(&m, dir, &o) != 0) { printf("FAIL rank %d: %s\n", g_comm->rank, k2c_errmsg()); continue; }
            if (k2c_model_follow(&m) != 0) printf("FAIL rank %d follow: %s\n", g_comm->rank, k2c_errmsg());
            k2c_model_free(&m);
        }
    }
    int rc = check_exit();
    k2c_dist_finalize();
    return rc;
}
