/* k2c quantize: a checkpoint to a deepseek2 GGUF (model/quantize.c has the recipes). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the vocabulary as llama.cpp stores it
 * tokenizer.ggml.model "gpt2": every token's bytes through GPT-2's byte-to-unicode table (the printable bytes
 * 33-126, 161-172, 174-255 as themselves, the others as U+0100 onwards in order), and the merges that rebuild
 * each token: a tiktoken-style vocabulary has no merge list, only ranks (ids), so each token's bytes are merged
 * by byte-pair encoding with the ranks below its own, which ends in the two pieces it was made from. */
typedef struct {
    int V, nmerges;
    char **tokens;
    uint32_t *len;
    int32_t *type;
    char **merges;
} gguf_vocab;

static int byte_cp(int b) {
    static int map[256], done;
    if (!done) {
        int n = 0;
        for (int i = 0; i < 256; i++) {
            int keep = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174);
            map[i] = keep ? i : 256 + n++;
        }
        done = 1;
    }
    return map[b];
}

/* bytes [n] mapped, UTF-8, appended at *o (room for 2 bytes per input byte) */
static char *put_mapped(char *o, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int c = byte_cp(p[i]);
        if (c < 0x80) *o++ = (char)c;
        else { *o++ = (char)(0xc0 | (c >> 6)); *o++ = (char)(0x80 | (c & 63)); }
    }
    *o = 0;
    return o;
}

typedef struct { const char *p; size_t n; int id; } hent;
static uint64_t hbytes(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}
static int hget(const hent *h, size_t cap, const char *p, size_t n) {
    for (size_t i = hbytes(p, n) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (!h[i].p) return -1;
        if (h[i].n == n && !memcmp(h[i].p, p, n)) return h[i].id;
    }
}

static void vocab_free(gguf_vocab *v) {
    for (int i = 0; v->tokens && i < v->V; i++) free(v->tokens[i]);
    for (int i = 0; v->merges && i < v->nmerges; i++) free(v->merges[i]);
    free(v->tokens); free(v->len); free(v->type); free(v->merges);
    memset(v, 0, sizeof *v);
}

static int vocab_build(const k2c_tokenizer *t, int V, gguf_vocab *v) {
    memset(v, 0, sizeof *v);
    size_t cap = 1;
    while (cap < 2 * (size_t)V + 2) cap <<= 1;
    hent *h = calloc(cap, sizeof *h);
    v->V = V;
    v->tokens = calloc((size_t)V, sizeof *v->tokens);
    v->len = calloc((size_t)V, sizeof *v->len);
    v->type = calloc((size_t)V, sizeof *v->type);
    v->merges = calloc((size_t)V, sizeof *v->merges);
    size_t *pos = NULL;
    if (!h || !v->tokens || !v->len || !v->type || !v->merges) goto oom;
    for (int id = 0; id < V; id++) {
        size_t n;
        const char *b = k2c_tokenizer_token(t, id, &n);
        char *s;
        if (!b) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%d]", id);
            s = strdup(pad);
            v->type[id] = 5;
        } else if (k2c_tokenizer_is_special(t, id)) {
            if ((s = malloc(n + 1))) { memcpy(s, b, n); s[n] = 0; }
            v->type[id] = 3;
        } else {
            if ((s = malloc(2 * n + 1))) put_mapped(s, (const unsigned char *)b, n);
            v->type[id] = 1;
            size_t i = hbytes(b, n) & (cap - 1);
            while (h[i].p) i = (i + 1) & (cap - 1);
            h[i] = (hent){b, n, id};
        }
        if (!s) goto oom;
        v->tokens[id] = s;
        v->len[id] = (uint32_t)strlen(s);
    }
    size_t most = 1;
    for (int id = 0; id < V; id++) { size_t n; if (k2c_tokenizer_token(t, id, &n) && n > most) most = n; }
    if (!(pos = malloc((most + 1) * sizeof *pos))) goto oom;
    for (int id = 0; id < V; id++) {
        size_t n;
        const char *b = k2c_tokenizer_token(t, id, &n);
        if (!b || v->type[id] != 1 || n < 2) continue;
        /* parts are [pos[k], pos[k+1]); merge the adjacent pair of lowest rank below id until none is left */
        size_t np = n;
        for (size_t k = 0; k <= n; k++) pos[k] = k;
        for (;;) {
            int best = -1;
            size_t at = 0;
            for (size_t k = 0; k + 1 < np; k++) {
                int r = hget(h, cap, b + pos[k], pos[k + 2] - pos[k]);
                if (r >= 0 && r < id && (best < 0 || r < best)) { best = r; at = k; }
            }
            if (best < 0) break;
            memmove(pos + at + 1, pos + at + 2, (np - at - 1) * sizeof *pos);
            np--;
        }
        if (np != 2) continue;      /* not made by a merge of two tokens (a byte-level base token, or odd) */
        char *m = malloc(4 * n + 2), *o = m;
        if (!m) goto oom;
        o = put_mapped(o, (const unsigned char *)b, pos[1]);
        *o++ = ' ';
        put_mapped(o, (const unsigned char *)b + pos[1], n - pos[1]);
        v->merges[v->nmerges++] = m;
    }
    free(pos);
    free(h);
    return 0;
oom:
    free(pos);
    free(h);
    vocab_free(v);
    k2c_seterr("out of memory");
    return -1;
}

static int cmd_quantize(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
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
    gguf_vocab gv = {0};
    k2c_tokenizer *tok = NULL;
    k2c_config cfg;
    size_t inl = strlen(in);
    int is_gguf = inl > 5 && !strcmp(in + inl - 5, ".gguf");
    if (!is_gguf && k2c_config_load(&cfg, in) == 0 && k2c_tokenizer_load(&tok, tokdir ? tokdir : in) == 0) {
        if (vocab_build(tok, cfg.vocab_size, &gv) != 0) { k2c_tokenizer_free(tok); return cli_fail("quantize"); }
        o.tok_model = "gpt2";
        o.tok_pre = !strcmp(cfg.model_type, "kimi_k2") ? "kimi-k2" : "deepseek-v3";
        o.ntokens = gv.V;
        o.tokens = (const char *const *)gv.tokens;
        o.token_len = gv.len;
        o.token_type = gv.type;
        o.nmerges = gv.nmerges;
        o.merges = (const char *const *)gv.merges;
        k2c_log("quantize: tokenizer: %d tokens, %d merges rebuilt from the ranks\n", gv.V, gv.nmerges);
    } else if (tokdir) {
        k2c_tokenizer_free(tok);
        return cli_fail("quantize");
    }
    int rc = k2c_quantize(in, out, &o);
    vocab_free(&gv);
    k2c_tokenizer_free(tok);
    if (rc != 0) return cli_fail("quantize");
    k2c_log("quantize: wrote %s in %.1f s\n", out, k2c_now() - t0);
    return 0;
}
CLI_COMMAND(cmd_quantize_def, "quantize",
            "--model IN --type TYPE [--type-experts T] [--type-attn T] [--type-embd T] [--type-output T] [--imatrix FILE] [--tokenizer DIR] [--threads N] --out OUT.gguf",
            "Write a model (Hugging Face folder in any stored format, or a GGUF) as a deepseek2 GGUF: TYPE is a ggml type "
            "(F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS) or a recipe (Q2_K Q3_K_M Q4_K_M Q6_K Q8_0).",
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
