/* tune.c — decode's thread count on a busy machine.
 *
 * A decode step is a chain of short parallel regions (a few per layer, tens of microseconds each on a small
 * model). When another process holds one of the cores, the OpenMP thread that shares a core with it is
 * descheduled for whole scheduler slices (milliseconds) and every region waits for it at its barrier: measured on
 * a 2-core VM, k2-mini's decode on 2 threads went 2.2x slower beside one CPU-bound process (4.7x with
 * OMP_WAIT_POLICY=active), while 1 thread lost 1.3x. No setting is right for both a quiet and a busy machine, and
 * the machine changes while a server runs, so the decode loop measures itself: it times each step, and now and
 * then runs a few steps on another thread count (a probe); a count that is clearly faster takes over. A step that
 * turns much slower (or faster) than the count's usual time brings the next probe forward; otherwise probes grow
 * rarer (every 64 steps doubling to every 1024), so on a quiet machine they cost a few % at most.
 *
 * Only cx->team changes (the threads a region starts); work is still split for cx->nthreads, so the results are
 * the same bits whatever the tuner picks. Steps are compared only with steps of the same batch size. */
#include "model.h"

#include <string.h>

#define HIST 64         /* recent step times at the current count */
#define WIN 0.02        /* a mean is taken over at least this many seconds (and 3 steps): a descheduled thread
                         * shows as a few steps of milliseconds among fast ones, so means, not medians, and long
                         * enough windows to hold some */
#define FIRST 64        /* steps before the first probe, and after a switch or a change in step time */
#define LAST 1024       /* the longest wait between probes */

/* mean of the last steps of v[0..n) that add up to WIN seconds (at least 3 steps, all if fewer); *k: how many */
static double recent_mean(const double *v, int n, int *k) {
    double sum = 0;
    int i = n;
    while (i > 0 && (n - i < 3 || sum < WIN)) sum += v[--i];
    *k = n - i;
    return n > i ? sum / (n - i) : 0;
}

void k2c_tune_init(k2c_tune *t, k2c_kctx *cx, int on) {
    memset(t, 0, sizeof *t);
    t->cx = cx;
    int n = cx->nthreads, c[3] = {n, n - 1, n / 2};
    /* every core, one fewer (the core another process holds), half; distinct and >= 1 */
    for (int i = 0; i < 3; i++) {
        int dup = c[i] < 1;
        for (int j = 0; j < t->ncand; j++) dup |= t->cand[j] == c[i];
        if (!dup) t->cand[t->ncand++] = c[i];
    }
    t->on = on && t->ncand > 1;
    t->probing = -1;
    t->period = t->until = FIRST;
    cx->team = n;
}

static void restart(k2c_tune *t) { t->nh = 0; t->ref = 0; t->period = t->until = FIRST; }

void k2c_tune_begin(k2c_tune *t, int batch) {
    if (!t->on) return;
    if (batch != t->batch) { t->batch = batch; t->probing = -1; restart(t); }
    t->cx->team = t->cand[t->probing >= 0 ? t->probing : t->cur];
}

void k2c_tune_settled(k2c_tune *t) {
    if (t->on) t->cx->team = t->cand[t->cur];
}

void k2c_tune_end(k2c_tune *t, double seconds) {
    if (!t->on) return;
    t->steps++;
    if (t->probing >= 0) {
        t->psum += seconds;
        if (++t->np < 3 || (t->psum < WIN && t->np < HIST)) return;
        int k;
        double p = t->psum / t->np, here = recent_mean(t->hist, t->nh, &k);
        if (p < 0.9 * here) {           /* clearly faster: the probed count takes over */
            t->cur = t->probing;
            t->switches++;
            restart(t);
        } else {
            t->period = t->period * 2 < LAST ? t->period * 2 : LAST;
            t->until = t->period;
        }
        t->probing = -1;
        t->cx->team = t->cand[t->cur];
        return;
    }
    if (t->nh == HIST) { memmove(t->hist, t->hist + 1, (HIST - 1) * sizeof *t->hist); t->nh--; }
    t->hist[t->nh++] = seconds;
    int k;
    double mean = recent_mean(t->hist, t->nh, &k);
    int full = k >= 3 && (k < t->nh || mean * k >= WIN || t->nh == HIST);   /* a whole window behind us */
    if (full) {
        if (t->ref == 0) t->ref = mean;
        /* the machine changed (a process started or ended, or the context grew): probe soon, from a new reference */
        if (mean > 1.3 * t->ref || mean < 0.75 * t->ref) { t->ref = mean; t->period = FIRST; if (t->until > 4) t->until = 4; }
    }
    if (--t->until <= 0 && full) {
        int j = t->next++ % (t->ncand - 1);          /* the other counts in turn */
        t->probing = j >= t->cur ? j + 1 : j;
        t->np = 0;
        t->psum = 0;
    }
}
