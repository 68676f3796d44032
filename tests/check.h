/* Minimal test harness shared by tests/test_*.c.
 * A test is a void function; EXPECT records a failure without stopping it, so one run reports
 * every broken check. run_test prints "PASS name" or "FAIL name" for tests/run.sh to count. */
#ifndef K2C_CHECK_H
#define K2C_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <math.h>

static int check_failures;      /* failed EXPECTs in the current test */
static int check_total_failed;  /* failed tests in this program */

#define EXPECT(cond, ...) do { \
    if (!(cond)) { check_failures++; \
      fprintf(stdout, "  %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stdout, __VA_ARGS__); fputc('\n', stdout); } } while (0)

static inline void run_test(const char *name, void (*fn)(void)) {
    check_failures = 0;
    fn();
    printf("%s %s\n", check_failures ? "FAIL" : "PASS", name);
    fflush(stdout);
    if (check_failures) check_total_failed++;
}

static inline int check_exit(void) { return check_total_failed ? 1 : 0; }
#endif
