/* k2c kl: how far a quantized model's next-token distribution is from the model it was made from.
 *
 * The method is llama-perplexity's --kl-divergence, so the two engines' figures sit side by side: the text is
 * tokenized once, cut into chunks of --ctx tokens, and each chunk is a fresh prompt for both models; the logits
 * of the chunk's second half (positions ctx/2 .. ctx-2, each predicting the next token, so every scored
 * position has at least ctx/2 tokens of context) are compared as distributions:
 *   KL(base || model) = sum_v p_base(v) (log p_base(v) - log p_model(v)),
 * with the perplexity of each model on the same tokens and how often both put the same token first.
 * Both models are open at once (the base's logits are not written to a file); that suits the checkpoints
 * this is run on here, and a chunk's logits [ctx, vocab] are the only per-chunk memory. --ubatch 1 runs each
 * chunk one token per forward pass, so the scores are those of the decode path (matvec kernels, their activation
 * quantization) rather than the prompt GEMM's. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* log-softmax of z [V] into out; returns nothing, out may not alias z */
static void log_softmax(const float *z, int V, double *out) {
    double mx = z[0], s = 0;
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    for (int v = 0; v < V; v++) s += exp((double)z[v] - mx);
    double lse = mx + log(s);
    for (int v = 0; v < V; v++) out[v] = (double)z[v] - lse;
}

static int argmax(const float *z, int V) {
    int b = 0;
    for (int v = 1; v < V; v++) if (z[v] > z[b]) b = v;
    return b;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_kl(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "exact")) return 2;
    const char *base_dir = cli_need(&a, "base"), *dir = cli_need(&a, "model"), *text_path = cli_need(&a, "text");
    int ctx = (int)cli_int(&a, "ctx", 512), chunks = (int)cli_int(&a, "chunks", 40);
    k2c_model_opts mo;
    if (cli_model_opts(&a, &mo) != 0) { cli_done(&a); return cli_fail("kl"); }
    k2c_tokenizer *tok = NULL;
    if (!base_dir || !dir || !text_path) { cli_done(&a); return 2; }
    if (cli_load_tokenizer(&a, base_dir, &tok) != 0) { cli_done(&a); return cli_fail("kl"); }
    if (cli_done(&a)) { k2c_tokenizer_free(tok); return 2; }
    if (ctx < 8 || chunks < 1) {
        k2c_tokenizer_free(tok);
        fprintf(stderr, "k2c kl: --ctx must be at least 8 and --chunks at least 1\n");
        return 2;
    }
    int rc = 1, *ids = NULL, n = 0;
    k2c_model *mb = NULL, *mq = NULL;
    k2c_state *sb = NULL, *sq = NULL;
    float *lb = NULL, *lq = NULL;
    double *pb = NULL, *pq = NULL, *kls = NULL;
    size_t len;
    char *text = k2c_read_file(text_path, &len);
    if (!text) goto done;
    if (k2c_tokenizer_encode(tok, text, len, 0, &ids, &n) != 0) goto done;
    if (n / ctx < chunks) {
        if (n / ctx < 1) { k2c_seterr("%s: %d tokens, fewer than one chunk of %d", text_path, n, ctx); goto done; }
        k2c_log("kl: %s has %d tokens: %d chunks of %d instead of %d\n", text_path, n, n / ctx, ctx, chunks);
        chunks = n / ctx;
    }
    if (cli_open_model(base_dir, &mo, &mb) || cli_open_model(dir, &mo, &mq)) goto done;
    int V = k2c_model_config(mb)->vocab_size;
    if (k2c_model_config(mq)->vocab_size != V) {
        k2c_seterr("%s has a vocabulary of %d, %s of %d", dir, k2c_model_config(mq)->vocab_size, base_dir, V);
        goto done;
    }
    int first = ctx / 2, per = ctx - 1 - first;
    size_t nl = (size_t)ctx * (size_t)V;
    lb = malloc(nl * sizeof *lb);
    lq = malloc(nl * sizeof *lq);
    pb = malloc((size_t)V * sizeof *pb);
    pq = malloc((size_t)V * sizeof *pq);
    kls = malloc((size_t)chunks * (size_t)per * sizeof *kls);
    if (!lb || !lq || !pb || !pq || !kls) { k2c_seterr("out of memory for %d x %d logits", ctx, V); goto done; }
    if (!(sb = k2c_state_new(mb, ctx)) || !(sq = k2c_state_new(mq, ctx))) goto done;
    double nll_b = 0, nll_q = 0, kl_sum = 0, kl_sq = 0;
    long same = 0, scored = 0;
    double t0 = k2c_now();
    for (int c = 0; c < chunks; c++) {
        const int *x = ids + (size_t)c * (size_t)ctx;
        k2c_state_reset(sb);
        k2c_state_reset(sq);
        if (k2c_prefill(sb, x, ctx, lb, NULL, NULL) != 0 || k2c_prefill(sq, x, ctx, lq, NULL, NULL) != 0) goto done;
        for (int j = first; j < ctx - 1; j++) {
            const float *zb = lb + (size_t)j * V, *zq = lq + (size_t)j * V;
            log_softmax(zb, V, pb);
            log_softmax(zq, V, pq);
            double kl = 0;
            for (int v = 0; v < V; v++) kl += exp(pb[v]) * (pb[v] - pq[v]);
            kls[scored++] = kl;
            kl_sum += kl;
            kl_sq += kl * kl;
            nll_b -= pb[x[j + 1]];
            nll_q -= pq[x[j + 1]];
            same += argmax(zb, V) == argmax(zq, V);
        }
        k2c_log("\rkl: chunk %d/%d, mean KL %.6f, %.1f s", c + 1, chunks, kl_sum / (double)scored, k2c_now() - t0);
    }
    k2c_log("\n");
    double mean = kl_sum / (double)scored, var = kl_sq / (double)scored - mean * mean;
    qsort(kls, (size_t)scored, sizeof *kls, cmp_double);
    printf("text               %s: %d tokens; %d chunks of %d, positions %d..%d of each scored (%ld tokens)\n",
           text_path, n, chunks, ctx, first, ctx - 2, scored);
    printf("perplexity         base %.4f, model %.4f (ratio %.4f)\n", exp(nll_b / (double)scored),
           exp(nll_q / (double)scored), exp((nll_q - nll_b) / (double)scored));
    printf("KL(base || model)  mean %.6f +- %.6f, median %.6f, p99 %.6f, max %.6f\n", mean,
           sqrt((var > 0 ? var : 0) / (double)scored), kls[scored / 2], kls[(size_t)((double)scored * 0.99)],
           kls[scored - 1]);
    printf("same top token     %.2f%%\n", 100.0 * (double)same / (double)scored);
    rc = 0;
done:
    if (rc) cli_fail("kl");
    k2c_state_delete(sb);
    k2c_state_delete(sq);
    k2c_model_close(mq);
    k2c_model_close(mb);
    free(lb); free(lq); free(pb); free(pq); free(kls);
    free(ids);
    free(text);
    k2c_tokenizer_free(tok);
    return rc;
}
CLI_COMMAND(cmd_kl_def, "kl",
            "--base DIR --model DIR --text FILE [--ctx 512] [--chunks 40] [--tokenizer DIR] [--threads N] [--ubatch N] [--exact]",
            "KL divergence of a model's next-token distributions from a base model's (e.g. a quantized GGUF from its "
            "source), with both perplexities, over chunks of a text as llama-perplexity --kl-divergence scores them.",
            cmd_kl)
