/* The kernel tables a test runs every check on, and why one is skipped. Include after kernels/kernels.h.
 * K2C_SIMD=X stands for a CPU that has nothing above X (scalar < avx2, neon < avx512), so every SKIP line can be
 * seen on any machine; K2C_TEST_LEVELS=a,b runs only those levels (the emulated AArch64 run checks only neon:
 * the scalar path is already checked natively). */
#ifndef K2C_TEST_SIMD_LEVELS_H
#define K2C_TEST_SIMD_LEVELS_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIMD_NLEVELS 4
static const char *const SIMD_LEVELS[SIMD_NLEVELS] = {"avx512", "avx2", "neon", "scalar"};

static inline int simd_rank(const char *lv) {
    return !strcmp(lv, "avx512") ? 2 : !strcmp(lv, "avx2") || !strcmp(lv, "neon") ? 1 : 0;
}

/* NULL if this run can use level lv, else why not (valid until the next call). */
static inline const char *level_missing(const char *lv) {
    static char why[256];
    const char *env = getenv("K2C_SIMD"), *only = getenv("K2C_TEST_LEVELS");
    if (only && *only) {
        size_t n = strlen(lv);
        const char *p = only;
        while ((p = strstr(p, lv)) && !((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0))) p += n;
        if (!p) { snprintf(why, sizeof why, "not in K2C_TEST_LEVELS=%s", only); return why; }
    }
    if (env && *env && simd_rank(lv) > simd_rank(env)) {
        snprintf(why, sizeof why, "K2C_SIMD=%s (%s treated as absent)", env, lv);
        return why;
    }
    k2c_kctx probe;
    if (k2c_kctx_init(&probe, lv, 1, 0) != 0) { snprintf(why, sizeof why, "%s", k2c_errmsg()); return why; }
    return NULL;
}
#endif
