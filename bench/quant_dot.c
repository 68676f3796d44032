/* The GGUF decode kernels' speed: each table's dot_q8 (quant_dot.h) on rows of each block type, against one
 * quantized activation vector, in G weights/s on one thread. The matrix (ROWS x COLS) is sized to stay in L2,
 * so this is the kernel's arithmetic, not memory bandwidth (`k2c bench` measures decode end to end). Each table
 * runs on the activations a decode gives it (its q8x_span: one dx per 32 or, on some formats, per 256), or on
 * those of SPAN=32 / SPAN=256 where set.
 *   bash bench/quant_dot.sh [TYPES]      (builds build/ first; TYPES: comma-separated, default every block type) */
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { COLS = 4096, ROWS = 128 };

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);       /* a shared machine's other work does not count */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float gauss(void) {
    double u[2];
    for (int k = 0; k < 2; k++) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        u[k] = ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

int main(int argc, char **argv) {
    static const char *all[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q6_0", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS",
                                "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"};
    const char *want = argc > 1 ? argv[1] : NULL;
    const k2c_kernels *tabs[3];
    int nt = 0;
    tabs[nt++] = &k2c_kernels_scalar;
#if defined(__x86_64__)
    if (k2c_cpu_has_avx2()) tabs[nt++] = &k2c_kernels_avx2;
    if (k2c_cpu_has_avx512()) tabs[nt++] = &k2c_kernels_avx512;
#elif defined(__aarch64__)
    tabs[nt++] = &k2c_kernels_neon;
#endif
    float *x = malloc(COLS * sizeof *x), *w = malloc((size_t)COLS * ROWS * sizeof *w);
    void *xb = aligned_alloc(64, (k2c_q8x_bytes(COLS) + 63) / 64 * 64), *xb2 = aligned_alloc(64, (k2c_q8x_bytes(COLS) + 63) / 64 * 64);
    uint8_t *q = malloc((size_t)COLS * ROWS * 2);
    if (!x || !w || !xb || !xb2 || !q) return 1;
    for (int j = 0; j < COLS; j++) x[j] = gauss();
    for (size_t i = 0; i < (size_t)COLS * ROWS; i++) w[i] = 0.02f * gauss();
    const k2c_q8x *xq32 = k2c_q8x_quantize(x, COLS, xb);
    printf("dot_q8, rows of %d, 1 thread, G weights/s (CPU time)\n%-8s", COLS, "type");
    for (int k = 0; k < nt; k++) printf(" %13s", tabs[k]->name);
    printf("\n");
    for (size_t t = 0; t < sizeof all / sizeof all[0]; t++) {
        if (want && !strstr(want, all[t])) continue;
        k2c_wfmt f = K2C_FMT_COUNT;
        for (int g = 0; g < K2C_GGML_TYPES && f == K2C_FMT_COUNT; g++) {
            k2c_wfmt c;
            if (k2c_wfmt_from_ggml(g, &c) == 0 && !strcmp(k2c_wfmt_name(c), all[t])) f = c;
        }
        if (f == K2C_FMT_COUNT) continue;
        size_t rb = k2c_wfmt_row_bytes(f, COLS);
        int ok = 1;
        if (f >= K2C_FMT_IQ2_XXS) {
            /* the codebook types have no writer: random blocks (every byte pattern is a valid block, indices
             * spread over the whole grid) with a small positive d (IQ1_M: in its scale words' top nibbles) */
            size_t bb = k2c_wfmt_row_bytes(f, 256);
            for (size_t i = 0; i < rb * ROWS; i++) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; q[i] = (uint8_t)(rng >> 56); }
            for (size_t b = 0; b < rb * ROWS / bb; b++) {
                uint8_t *p = q + b * bb;
                if (f == K2C_FMT_IQ1_M)
                    for (int k = 0; k < 4; k++) p[49 + 2 * k] = (uint8_t)((p[49 + 2 * k] & 15) | ((0x1c00u >> 4 * k) & 15) << 4);
                else { p[0] = 0; p[1] = 0x1c; }
            }
        } else
            for (int r = 0; r < ROWS && ok; r++) ok = k2c_quantize_row(f, w + (size_t)r * COLS, NULL, COLS, q + (size_t)r * rb) == 0;
        if (!ok) { printf("%-8s (cannot write: %s)\n", all[t], k2c_errmsg()); continue; }
        printf("%-8s", all[t]);
        for (int k = 0; k < nt; k++) {
            volatile float sink = 0;
            long n = 0;
            int span = getenv("SPAN") ? atoi(getenv("SPAN")) : tabs[k]->q8x_span ? tabs[k]->q8x_span(f) : 32;
            const k2c_q8x *xq = span == 32 ? xq32 : k2c_q8x_quantize_span(x, COLS, span, xb2);
            double t0 = cpu_seconds(), el;
            do {
                for (int r = 0; r < ROWS; r++) sink += tabs[k]->dot_q8(f, q + (size_t)r * rb, xq, COLS);
                n += ROWS;
                el = cpu_seconds() - t0;
            } while (el < 0.3);
            printf(" %9.2f%s", (double)n * COLS / el / 1e9, xq->span == 32 ? "    " : "/256");
        }
        printf("\n");
    }
    free(x); free(w); free(xb); free(xb2); free(q);
    return 0;
}
