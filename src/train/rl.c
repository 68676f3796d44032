/* K2's RL policy objective (spec section 6b, after Kimi k1.5) and its gradient through the trainer.
 *
 * For one task with K samples, L = (1/K) sum_i e_i^2 with e_i = r_i - rbar - tau * (logp_i - logp_old_i).
 * Rewards and pi_old are constants, so dL/dlogp_i = -(2 tau / K) e_i, and logp_i = -sum_t nll_t over the
 * sample's tokens: every token of sample i carries the same coefficient c_i = (2 tau / K) e_i on its nll.
 * The gradient is therefore a weighted next-token backward, one forward for all samples (to get every
 * logp_i and e_i) and one backward with per-token weights c_i (k2c_train_backward_rows).
 *
 * With one update per batch of rollouts the weights at the gradient are pi_old's, e_i = r_i - rbar and
 * the step is REINFORCE with the group mean as baseline; tau matters from the second update on the same
 * rollouts, pulling logp back toward pi_old. */
#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double k2c_rl_objective(int K, const double *reward, const double *logp, const double *logp_old, double tau, double *dlogp) {
    if (K <= 0) return 0;
    double rbar = 0, L = 0;
    for (int i = 0; i < K; i++) rbar += reward[i];
    rbar /= K;
    for (int i = 0; i < K; i++) {
        double e = reward[i] - rbar - tau * (logp[i] - logp_old[i]);
        L += e * e;
        if (dlogp) dlogp[i] = -2.0 * tau * e / K;
    }
    return L / K;
}

static int check_rows(const int *sample, int B, int K) {
    for (int b = 0; b < B; b++)
        if (sample[b] < 0 || sample[b] >= K) { k2c_seterr("rl: row %d belongs to sample %d, outside 0..%d", b, sample[b], K - 1); return -1; }
    return 0;
}

/* logp [K] from the forward's per-token losses (summed in row order: deterministic) */
static void sum_logp(const double *nll, const int *targets, const int *sample, int B, int T, int K, double *logp) {
    for (int i = 0; i < K; i++) logp[i] = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            if (targets[(size_t)b * T + t] >= 0) logp[sample[b]] -= nll[(size_t)b * T + t];
}

int k2c_rl_logp(const k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *targets, const int *sample, int B, int T,
                int K, double *logp) {
    if (check_rows(sample, B, K)) return -1;
    double l;
    int n;
    if (k2c_train_forward(m, a, ids, targets, B, T, 0, &l, &n, NULL)) return -1;
    sum_logp(k2c_tacts_token_loss(a), targets, sample, B, T, K, logp);
    /* no backward follows: the next forward overwrites the arena */
    return 0;
}

int k2c_rl_task_grad(k2c_tmodel *m, k2c_tacts *a, const int *ids, const int *targets, const int *sample, int B, int T,
                     int K, const double *reward, const double *logp_old, double tau, float weight, double *loss,
                     double *logp_out) {
    if (check_rows(sample, B, K)) return -1;
    double *lp = malloc((size_t)K * 2 * sizeof *lp);
    float *rs = malloc((size_t)B * T * sizeof *rs);
    int rc = -1;
    if (!lp || !rs) { k2c_seterr("out of memory"); goto done; }
    double l;
    int n;
    if (k2c_train_forward(m, a, ids, targets, B, T, 0, &l, &n, NULL)) goto done;
    sum_logp(k2c_tacts_token_loss(a), targets, sample, B, T, K, lp);
    double *dlogp = lp + K;
    *loss = k2c_rl_objective(K, reward, lp, logp_old, tau, dlogp);
    /* d nll_t = -d logp_i: the weight of each token's nll is -dL/dlogp_i of its sample */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) rs[(size_t)b * T + t] = (float)(-weight * dlogp[sample[b]]);
    if (k2c_train_backward_rows(m, a, rs)) goto done;
    if (logp_out) memcpy(logp_out, lp, (size_t)K * sizeof *lp);
    rc = 0;
done:
    free(lp);
    free(rs);
    return rc;
}
