/* k2c quantize: a checkpoint to a deepseek2 GGUF (model/quantize.c has the recipes). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_quantize(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "bench,weighted")) return 2;
    if (cli_flag(&a, "bench")) {         /* the quantizers' speed, no model */
        const char *types = cli_str(&a, "type", NULL);
        int th = (int)cli_int(&a, "threads", 0), wtd = cli_flag(&a, "weighted");
        double secs = cli_num(&a, "seconds", 0.5);
        if (cli_done(&a)) return 2;
        return k2c_quantize_bench(types, th, secs, wtd) ? cli_fail("quantize") : 0;
    }
    const char *in = cli_need(&a, "model"), *out = cli_need(&a, "out");
    k2c_quantize_opts o = {0};
    o.type = cli_need(&a, "type");
    o.type_experts = cli_str(&a, "type-experts", NULL);
    o.type_attn = cli_str(&a, "type-attn", NULL);
    o.type_embd = cli_str(&a, "type-embd", NULL);
    o.type_output = cli_str(&a, "type-output", NULL);
    o.imatrix = cli_str(&a, "imatrix", NULL);
    o.threads = (int)cli_int(&a, "threads", 0);
    const char *tokdir = cli_str(&a, "tokenizer", NULL);
    if (!in || !out || !o.type || cli_done(&a)) return 2;
    double t0 = k2c_now();
    /* a Hugging Face folder's tokenizer as tokenizer.ggml.* (a GGUF input keeps its own) */
    k2c_gguf_vocab gv = {0};
    uint32_t *tlen = NULL;
    char *o_pads = NULL;
    k2c_tokenizer *tok = NULL;
    k2c_config cfg;
    size_t inl = strlen(in);
    int is_gguf = inl > 5 && !strcmp(in + inl - 5, ".gguf");
    if (!is_gguf && k2c_config_load(&cfg, in) == 0 && k2c_tokenizer_load(&tok, tokdir ? tokdir : in) == 0) {
        /* the vocabulary as llama.cpp stores it (a tiktoken one's merges rebuilt from its ranks), padded to the
         * model's vocab_size */
        if (k2c_tokenizer_gguf_vocab(tok, &gv) != 0 || gv.n_tokens > cfg.vocab_size) {
            if (gv.n_tokens > cfg.vocab_size) k2c_seterr("tokenizer has %d ids, the model %d", gv.n_tokens, cfg.vocab_size);
            k2c_tokenizer_gguf_vocab_free(&gv);
            k2c_tokenizer_free(tok);
            return cli_fail("quantize");
        }
        int V = cfg.vocab_size;
        const char **toks = calloc((size_t)V, sizeof *toks);
        int32_t *types = calloc((size_t)V, sizeof *types);
        char *pads = malloc((size_t)V * 24);
        tlen = calloc((size_t)V, sizeof *tlen);
        if (!toks || !types || !pads || !tlen) {
            free(toks); free(types); free(pads); free(tlen);
            k2c_tokenizer_gguf_vocab_free(&gv);
            k2c_tokenizer_free(tok);
            k2c_seterr("out of memory");
            return cli_fail("quantize");
        }
        for (int id = 0; id < V; id++) {
            if (id < gv.n_tokens) { toks[id] = gv.tokens[id]; types[id] = gv.types[id]; }
            else { snprintf(pads + (size_t)id * 24, 24, "[PAD%d]", id); toks[id] = pads + (size_t)id * 24; types[id] = 5; }
            tlen[id] = (uint32_t)strlen(toks[id]);
        }
        o.tok_model = "gpt2";
        /* llama.cpp's names: Kimi's vocabulary "kimi-k2", DeepSeek-V3's "deepseek-v3" */
        o.tok_pre = !strcmp(gv.pre, "kimi-k2") ? "kimi-k2" : !strcmp(cfg.model_type, "kimi_k2") ? "kimi-k2" : "deepseek-v3";
        o.ntokens = V;
        o.tokens = toks;
        o.token_len = tlen;
        o.token_type = types;
        o.nmerges = gv.n_merges;
        o.merges = gv.merges;
        o_pads = pads;
        k2c_log("quantize: tokenizer: %d tokens, %d merges\n", V, gv.n_merges);
    } else if (tokdir) {
        k2c_tokenizer_free(tok);
        return cli_fail("quantize");
    }
    int rc = k2c_quantize(in, out, &o);
    free((void *)o.tokens); free((void *)o.token_type); free(o_pads); free(tlen);
    k2c_tokenizer_gguf_vocab_free(&gv);
    k2c_tokenizer_free(tok);
    if (rc != 0) return cli_fail("quantize");
    k2c_log("quantize: wrote %s in %.1f s\n", out, k2c_now() - t0);
    return 0;
}
CLI_COMMAND(cmd_quantize_def, "quantize",
            "--model IN --type TYPE [--type-experts T] [--type-attn T] [--type-embd T] [--type-output T] [--imatrix FILE] [--tokenizer DIR] [--threads N] --out OUT.gguf | --bench [--type T,T,...] [--weighted] [--seconds S] [--threads N]",
            "Write a model (Hugging Face folder in any stored format, or a GGUF) as a deepseek2 GGUF: TYPE is a ggml type "
            "(F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS Q6_0) or a recipe (Q2_K Q3_K_M Q4_K_M Q6_K Q8_0). --bench: the quantizers' values/s per type.",
            cmd_quantize)

/* k2c imatrix: activation statistics over a text file, or (--eval) what they buy on held-out text. */
static int cmd_imatrix(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    const char *model = cli_need(&a, "model"), *text = cli_need(&a, "text");
    const char *out = cli_str(&a, "out", NULL), *eval = cli_str(&a, "eval", NULL);
    const char *types = cli_str(&a, "eval-types", "Q2_K,Q3_K");
    int chunk = (int)cli_int(&a, "chunk", 512), threads = (int)cli_int(&a, "threads", 0);
    long maxtok = cli_int(&a, "max-tokens", 0);
    k2c_tokenizer *tok = NULL;
    if (model && text && cli_load_tokenizer(&a, model, &tok) != 0) { cli_done(&a); return cli_fail("imatrix"); }
    if (!model || !text || cli_done(&a)) { k2c_tokenizer_free(tok); return 2; }
    if (!out == !eval) { fprintf(stderr, "k2c imatrix: give --out FILE (collect) or --eval IMATRIX (measure)\n"); k2c_tokenizer_free(tok); return 2; }
    size_t len;
    char *txt = k2c_read_file(text, &len);
    int *ids = NULL, n = 0, rc = 1;
    if (!txt || k2c_tokenizer_encode(tok, txt, len, 0, &ids, &n) != 0) goto done;
    if (maxtok > 0 && n > maxtok) n = (int)maxtok;
    k2c_log("imatrix: %s: %d tokens\n", text, n);
    if (out) {
        if (k2c_imatrix(model, ids, n, chunk, threads, out) != 0) goto done;
        k2c_log("imatrix: wrote %s\n", out);
    } else {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", types);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            double plain, imp;
            if (k2c_imatrix_eval(model, ids, n, chunk, threads, eval, t, &plain, &imp) != 0) goto done;
            printf("%-7s RMS (W - Wq) x / RMS W x over held-out inputs: %.5f plain, %.5f with the imatrix (%+.1f%%)\n", t, plain,
                   imp, plain > 0 ? 100.0 * (imp - plain) / plain : 0.0);
        }
    }
    rc = 0;
done:
    if (rc) cli_fail("imatrix");
    free(ids);
    free(txt);
    k2c_tokenizer_free(tok);
    return rc;
}
CLI_COMMAND(cmd_imatrix_def, "imatrix",
            "--model DIR --text FILE (--out IMATRIX.gguf | --eval IMATRIX.gguf [--eval-types Q2_K,Q3_K]) [--chunk N] [--max-tokens N] [--tokenizer DIR] [--threads N]",
            "Importance statistics (mean square of every weight matrix's inputs) over a text file, for k2c quantize --imatrix; "
            "--eval measures the layer-output error they save on held-out text.",
            cmd_imatrix)
