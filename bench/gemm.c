/* GFLOP/s of k2c_matmul (prompt products) per weight format and kernel table: a 1408 x 2048 weight (a
 * Moonlight-sized expert's gate) from random fp32 rows quantized with k2c_quantize_row, times T tokens.
 * (GEMM_ROWS sets another row count.) Each measurement is the best of REPS runs of at least 0.2 s; "exact" is the fp32-activation path (dequantized
 * tiles + the ISA's fp32 GEMM or OpenBLAS), "int8" the default (int8 activations on the GGUF block formats).
 * usage: gemm THREADS TABLE[,TABLE..] FORMAT[,FORMAT..] T[,T..]     (bench/gemm.sh builds and runs it)
 * TABLE: avx512, avx2, neon, scalar; with -noext (avx2-noext) the int8 kernels without VNNI / dotprod, with -blas
 * (avx2-blas) OpenBLAS sgemm on the dequantized tiles instead of the table's fp32 GEMM tile (A/B in one run),
 * avx512-bf16 the BF16 prompt products (K2C_PROMPT_PRECISION=bf16) on BF16 weights. */
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static int fmt_of(const char *name, k2c_wfmt *f) {
    for (int i = 0; i < K2C_FMT_COUNT; i++)
        if (k2c_wfmt_name((k2c_wfmt)i) && !strcmp(k2c_wfmt_name((k2c_wfmt)i), name)) { *f = (k2c_wfmt)i; return 0; }
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: gemm THREADS TABLES FORMATS TS\n"); return 2; }
    /* GEMM_ROWS: more rows than 1408 (e.g. 16384: a weight larger than L3, read from memory as a model's are);
     * GEMM_NO_EXACT=1 skips the fp32-activation rows */
    int threads = atoi(argv[1]), R = getenv("GEMM_ROWS") ? atoi(getenv("GEMM_ROWS")) : 1408, C = 2048, reps = 3;
    int no_exact = getenv("GEMM_NO_EXACT") && atoi(getenv("GEMM_NO_EXACT"));
    if (R < 1 || R > (1 << 20)) { fprintf(stderr, "GEMM_ROWS out of range\n"); return 2; }
    char tables[256], fmts[256], ts[256];
    snprintf(tables, sizeof tables, "%s", argv[2]);
    snprintf(fmts, sizeof fmts, "%s", argv[3]);
    snprintf(ts, sizeof ts, "%s", argv[4]);
    float *W = malloc((size_t)R * C * sizeof *W), *X = malloc((size_t)512 * C * sizeof *X), *Y = malloc((size_t)512 * R * sizeof *Y);
    uint64_t st = 7;
    for (size_t i = 0; i < (size_t)R * C; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; W[i] = (float)((int64_t)(st >> 11) % 2001 - 1000) * 1e-3f; }
    for (size_t i = 0; i < (size_t)512 * C; i++) X[i] = (float)((i * 2654435761u) % 1999) * 1e-3f - 1.0f;
    printf("%-12s %-8s %-6s %5s %9s\n", "table", "format", "path", "T", "GFLOP/s");
    for (char *fs = strtok(fmts, ","); fs; fs = strtok(NULL, ",")) {
        k2c_wfmt f;
        if (fmt_of(fs, &f)) { fprintf(stderr, "unknown format %s\n", fs); return 2; }
        size_t rb = f == K2C_FMT_F32 ? (size_t)C * 4 : f == K2C_FMT_BF16 ? (size_t)C * 2 : k2c_wfmt_row_bytes(f, C);
        uint8_t *w = aligned_alloc(64, ((size_t)R * rb + 63) & ~(size_t)63);
        for (int r = 0; r < R; r++)
            if (f == K2C_FMT_F32) memcpy(w + (size_t)r * rb, W + (size_t)r * C, rb);
            else if (k2c_quantize_row(f, W + (size_t)r * C, NULL, C, w + (size_t)r * rb)) { fprintf(stderr, "%s\n", k2c_errmsg()); return 1; }
        char tcopy[256];
        snprintf(tcopy, sizeof tcopy, "%s", tables);
        char *save1 = NULL;
        for (char *tb = strtok_r(tcopy, ",", &save1); tb; tb = strtok_r(NULL, ",", &save1)) {
            k2c_kctx cx;
            char isa[32];
            snprintf(isa, sizeof isa, "%s", tb);
            char *dash = strstr(isa, "-noext");     /* e.g. avx2-noext: without VNNI / dotprod (an older CPU) */
            if (dash) *dash = 0;
            char *blas = strstr(isa, "-blas");      /* e.g. avx2-blas: OpenBLAS sgemm instead of the ISA's fp32 tile */
            if (blas) *blas = 0;
            char *bf = strstr(isa, "-bf16");        /* avx512-bf16: BF16-rounded inputs, vdpbf16ps on BF16 weights */
            if (bf) *bf = 0;
            char *amx = strstr(isa, "-amx");        /* avx512-amx: BF16 products on AMX tiles, every format */
            if (amx) *amx = 0;
            if (k2c_kctx_init(&cx, isa, threads, amx ? 1 : bf ? 2 : 0)) { printf("%-8s SKIP: %s\n", tb, k2c_errmsg()); continue; }
            if (amx && !cx.amx) { printf("%-8s SKIP: no AMX-BF16 here\n", tb); continue; }
            cx.no_ext = dash != NULL;
            static k2c_kernels copy;
            if (blas) { copy = *cx.k; copy.gemm_tile = NULL; cx.k = &copy; }
            for (int exact = 1; exact >= 0; exact--) {
                cx.exact = exact;
                if (!exact && !k2c_wfmt_is_block(f) && !amx) continue;
                if (exact && amx) continue;         /* exact keeps fp32 inputs: not the AMX path */
                if (exact && no_exact && k2c_wfmt_is_block(f)) continue;
                k2c_linear l = {.fmt = f, .rows = R, .cols = C, .w = w, .cx = &cx};
                char tcp[256];
                snprintf(tcp, sizeof tcp, "%s", ts);
                char *save2 = NULL;
                for (char *tt = strtok_r(tcp, ",", &save2); tt; tt = strtok_r(NULL, ",", &save2)) {
                    int T = atoi(tt);
                    if (T < 1 || T > 512) continue;
                    size_t need = k2c_matmul_ws_bytes(&l, T);
                    k2c_ws ws = {aligned_alloc(64, k2c_ws_bytes(need)), need, 0};
                    double best = 0;
                    for (int rep = 0; rep < reps; rep++) {
                        int n = 0;
                        double t0 = now(), t;
                        do { k2c_matmul_ws(&l, X, T, Y, &ws); n++; } while ((t = now() - t0) < 0.2);
                        double g = 2.0 * R * C * T * n / t / 1e9;
                        best = g > best ? g : best;
                    }
                    free(ws.base);
                    printf("%-12s %-8s %-6s %5d %9.1f\n", tb, fs, exact ? "exact" : amx ? "bf16" : "int8", T, best);
                    fflush(stdout);
                }
            }
        }
        free(w);
    }
    free(W); free(X); free(Y);
    return 0;
}
