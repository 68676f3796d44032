/* Minimal test harness shared by tests/test_*.c.
 * A test is a void function; EXPECT records a failure without stopping it, so one run reports
 * every broken check. run_test prints "PASS name" or "FAIL name" for tests/run.sh to count;
 * skip_test prints "SKIP name: why" for a test this machine cannot run (tests/run.sh counts those too).
 * An EXPECT outside run_test fails the program (check_exit), so no check can go unnoticed. */
#ifndef K2C_CHECK_H
#define K2C_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <math.h>

static int check_failures;      /* failed EXPECTs in the current test */
static int check_total_failed;  /* failed tests (and failed EXPECTs outside any test) in this program */
static int check_in_test;       /* inside run_test */

static inline void check_failed(void) {
    check_failures++;
    if (!check_in_test) { check_total_failed++; printf("FAIL (a check outside run_test)\n"); }
}

#define EXPECT(cond, ...) do { \
    if (!(cond)) { check_failed(); \
      fprintf(stdout, "  %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stdout, __VA_ARGS__); fputc('\n', stdout); } } while (0)

/* K2C_TEST_SHARD=i/n: run only every n-th test from the i-th (0-based); the others (skips too) print nothing. The slow
 * emulated AArch64 run splits a program over the cores this way (tests/test_arm64.sh). */
static inline int check_in_shard(void) {
    static int seen = -1, idx = 0, cnt = 1;
    if (seen < 0) {
        const char *s = getenv("K2C_TEST_SHARD");
        seen = 0;
        if (!s || sscanf(s, "%d/%d", &idx, &cnt) != 2 || cnt < 1 || idx < 0 || idx >= cnt) { idx = 0; cnt = 1; }
    }
    return seen++ % cnt == idx;
}

static inline void run_test(const char *name, void (*fn)(void)) {
    if (!check_in_shard()) return;
    check_failures = 0;
    check_in_test = 1;
    fn();
    check_in_test = 0;
    printf("%s %s\n", check_failures ? "FAIL" : "PASS", name);
    fflush(stdout);
    if (check_failures) check_total_failed++;
}

/* A test that cannot run here (an ISA this CPU lacks, ...): said, never passed. */
static inline void skip_test(const char *name, const char *why) {
    if (!check_in_shard()) return;
    printf("SKIP %s: %s\n", name, why);
    fflush(stdout);
}

/* max(worst, e) that keeps a NaN: fmax/fmaxf drop NaN arguments, which would let a NaN result pass. */
static inline double check_worse(double worst, double e) { return (isnan(e) || e > worst) ? e : worst; }

static inline int check_exit(void) { return check_total_failed ? 1 : 0; }
#endif
