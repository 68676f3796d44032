/* Model commands: logits, generate, info, mkmodel. */
#include "cli.h"
#include "k2c_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_cache_type(const char *name) {
    return !strcmp(name, "f32") ? K2C_CACHE_F32 : !strcmp(name, "bf16") ? K2C_CACHE_BF16 : !strcmp(name, "q8_0") ? K2C_CACHE_Q8_0 : -1;
}
const char *cli_cache_name(int type) { return type == K2C_CACHE_BF16 ? "bf16" : type == K2C_CACHE_Q8_0 ? "q8_0" : "f32"; }

int cli_model_opts(cli_args *a, k2c_model_opts *o) {
    k2c_model_opts_default(o);      /* K2C_SIMD, K2C_PROMPT_PRECISION, K2C_EXACT */
    if (cli_flag(a, "exact")) o->exact = 1;
    const char *ct = cli_str(a, "cache-type", NULL);
    if (ct && (o->cache_type = cli_cache_type(ct)) < 0) { k2c_seterr("--cache-type must be f32, bf16 or q8_0"); return -1; }
    o->threads = (int)cli_int(a, "threads", 0);
    o->ubatch = (int)cli_int(a, "ubatch", 0);
    if (o->ubatch < 0) { k2c_seterr("--ubatch must be positive (tokens per prefill pass)"); return -1; }
    const char *load = cli_str(a, "load", "auto");
    if (strcmp(load, "auto") && strcmp(load, "mmap") && strcmp(load, "copy")) { k2c_seterr("--load must be auto, mmap or copy"); return -1; }
    o->load = !strcmp(load, "copy") ? K2C_LOAD_COPY : !strcmp(load, "mmap") ? K2C_LOAD_MMAP : K2C_LOAD_AUTO;
    o->comm = cli_comm();
    return 0;
}

int cli_open_model(const char *dir, const k2c_model_opts *o, k2c_model **m) {
    double t0 = k2c_now();
    *m = k2c_model_open(dir, o);
    int size, rank = *m ? k2c_model_rank(*m, &size) : (o->comm ? o->comm->rank : 0);
    if (rank > 0) {
        /* A failed open failed on every rank at once, and rank 0 says why; this rank ends quietly. */
        int rc = *m ? k2c_model_follow(*m) : -1;
        if (*m && rc) fprintf(stderr, "k2c: rank %d: error: %s\n", rank, k2c_errmsg());
        k2c_model_close(*m);
        if (*m && rc) k2c_dist_abort(1);
        k2c_dist_finalize();
        exit(*m ? 0 : 1);
    }
    if (!*m) return -1;
    double dt = k2c_now() - t0;
    if (dt > 0.5) k2c_log("\rloaded %s in %.1f s\n", dir, dt);
    return 0;
}

/* Loads DIR with a progress note; --threads, --load, K2C_SIMD. Returns 0 or -1 with the error set. */
int cli_load_model(cli_args *a, k2c_model **m, const char *dir) {
    k2c_model_opts o;
    *m = NULL;
    if (cli_model_opts(a, &o) != 0) return -1;
    return cli_open_model(dir, &o, m);
}

static int cmd_logits(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "decode,exact")) return 2;
    const char *dir = cli_need(&a, "model"), *ids_s = cli_need(&a, "ids"), *out = cli_need(&a, "out");
    int decode = cli_flag(&a, "decode");
    k2c_model_opts mo;
    if (cli_model_opts(&a, &mo) != 0) { cli_done(&a); return cli_fail("logits"); }
    if (!dir || !ids_s || !out || cli_done(&a)) return 2;
    int T, rc = 1;
    int *ids = cli_parse_ids(ids_s, &T);
    if (!ids) return cli_fail("logits");
    k2c_model *m;
    k2c_state *s = NULL;
    float *logits = NULL;
    if (cli_open_model(dir, &mo, &m)) { free(ids); return cli_fail("logits"); }
    int V = k2c_model_config(m)->vocab_size;
    logits = malloc((size_t)T * V * sizeof *logits);
    if (!logits) { k2c_seterr("out of memory"); goto done; }
    if (!(s = k2c_state_new(m, T))) goto done;
    if (decode) {
        for (int t = 0; t < T; t++) if (k2c_decode(s, ids[t], logits + (size_t)t * V, NULL) != 0) goto done;
    } else if (k2c_prefill(s, ids, T, logits, NULL, NULL) != 0) goto done;
    k2c_tensor t = {.name = "logits", .data = logits};
    int64_t shape[2] = {T, V};
    k2c_tensor_set_shape(&t, K2C_F32, 2, shape);
    if (k2c_st_write(out, 1, &t, NULL, NULL) != 0) goto done;
    rc = 0;
done:
    if (rc) cli_fail("logits");
    k2c_state_delete(s);
    free(logits);
    free(ids);
    k2c_model_close(m);
    return rc;
}
CLI_COMMAND_ON(cmd_logits_def, CLI_EP, "logits", "--model DIR --ids 3,17,42 [--decode] --out FILE [--threads N] [--load auto|mmap|copy] [--exact] [--cache-type f32|bf16|q8_0]",
            "Write the logits F32 [T, vocab] of every position (prefill, or token by token with --decode) as safetensors.",
            cmd_logits)

typedef struct { k2c_detok dt; int text; int count; } gen_out;

static int print_token(void *ctx, int id) {
    gen_out *g = ctx;
    if (!g->text) { printf("%s%d", g->count++ ? " " : "", id); fflush(stdout); return 0; }
    const char *t;
    size_t n;
    if (k2c_detok_push(&g->dt, id, &t, &n) == 0 && n) { fwrite(t, 1, n, stdout); fflush(stdout); }
    return 0;
}

/* Loads the tokenizer from --tokenizer, else from the model folder. */
int cli_load_tokenizer(cli_args *a, const char *model_dir, k2c_tokenizer **tok) {
    const char *dir = cli_str(a, "tokenizer", model_dir);
    return k2c_tokenizer_load(tok, dir);
}

static int cmd_generate(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "exact")) return 2;
    const char *dir = cli_need(&a, "model"), *ids_s = cli_str(&a, "ids", NULL), *prompt = cli_str(&a, "prompt", NULL);
    int max_tokens = (int)cli_int(&a, "max-tokens", 64), top_k = (int)cli_int(&a, "top-k", 0);
    float temp = (float)cli_num(&a, "temperature", 0.8), top_p = (float)cli_num(&a, "top-p", 0.95);
    float min_p = (float)cli_num(&a, "min-p", 0.0);
    uint64_t seed = (uint64_t)cli_int(&a, "seed", 0);
    int ctx = (int)cli_int(&a, "ctx", 0), rc = 1, T = 0, *ids = NULL;
    k2c_model *m = NULL;
    k2c_tokenizer *tok = NULL;
    k2c_state *s = NULL;
    k2c_sampler sm = {0};
    gen_out g = {0};
    if (!dir || (!ids_s == !prompt)) {
        if (dir) fprintf(stderr, "k2c generate: give exactly one of --ids or --prompt\n");
        cli_done(&a);
        return 2;
    }
    if (prompt && cli_load_tokenizer(&a, dir, &tok) != 0) { cli_done(&a); return cli_fail("generate"); }
    if (cli_load_model(&a, &m, dir) != 0) { cli_done(&a); k2c_tokenizer_free(tok); return cli_fail("generate"); }
    if (cli_done(&a)) { rc = 2; goto out; }
    if (prompt ? k2c_tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids, &T) != 0 : !(ids = cli_parse_ids(ids_s, &T))) goto done;
    int V = k2c_model_config(m)->vocab_size;
    if (tok && k2c_tokenizer_vocab_size(tok) > V) {
        k2c_seterr("tokenizer has %d ids but the model's vocab_size is %d", k2c_tokenizer_vocab_size(tok), V);
        goto done;
    }
    if (ctx <= 0) ctx = T + max_tokens + 1;
    if (!(s = k2c_state_new(m, ctx))) goto done;
    if (k2c_sampler_init(&sm, V, temp, top_p, top_k, min_p, seed) != 0) goto done;
    g.text = tok != NULL;
    if (tok) k2c_detok_init(&g.dt, tok);
    k2c_gen_opts o = {.max_tokens = max_tokens};
    k2c_gen_stats st;
    if (k2c_generate(s, &sm, ids, T, &o, print_token, &g, &st) != 0) goto done;
    if (tok) {
        const char *t;
        size_t n;
        k2c_detok_flush(&g.dt, &t, &n);
        fwrite(t, 1, n, stdout);
    }
    printf("\n");
    fflush(stdout);
    k2c_log("prompt %d tokens: %.1f tok/s; generated %d tokens: %.2f tok/s (%s)\n", T, T / st.prefill_s, st.generated,
            st.decode_s > 0 ? st.generated / st.decode_s : 0.0, st.stop == K2C_STOP_EOS ? "end of text" : "token limit");
    rc = 0;
done:
    if (rc) cli_fail("generate");
out:
    if (tok) k2c_detok_free(&g.dt);
    k2c_sampler_free(&sm);
    k2c_state_delete(s);
    free(ids);
    k2c_tokenizer_free(tok);
    k2c_model_close(m);
    return rc;
}
CLI_COMMAND_ON(cmd_generate_def, CLI_EP, "generate",
            "--model DIR (--ids 1,2,3 | --prompt TEXT) [--tokenizer DIR] [--max-tokens N] [--temperature T] [--top-p P] "
            "[--top-k K] [--min-p P] [--seed S] [--ctx N] [--threads N] [--load auto|mmap|copy] [--exact] [--cache-type f32|bf16|q8_0]",
            "Sample a continuation: ids in, ids out; or text in (tokenizer from the model folder), text streamed out.",
            cmd_generate)

static const char *fmt_bytes(double b, char *buf, size_t n) {
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) { b /= 1000; i++; }
    snprintf(buf, n, "%.2f %s", b, u[i]);
    return buf;
}

/* k2c info --as-type T: the bytes `k2c quantize --type T` would write for these shapes (config only: a folder
 * with just config.json, a preset, or any model k2c opens). */
static int info_as_type(const char *dir, const char *preset, const char *type, int ctx) {
    k2c_config c;
    k2c_model *m = NULL;
    if (preset) {
        if (k2c_config_preset(&c, preset) != 0) return cli_fail("info");
    } else if (k2c_config_load(&c, dir) != 0) {
        k2c_model_opts mo = {.load = K2C_LOAD_MMAP};
        if (!(m = k2c_model_open(dir, &mo))) return cli_fail("info");
        c = *k2c_model_config(m);
        k2c_model_close(m);
    }
    k2c_quantize_opts qo = {.type = type};
    uint64_t bytes, by[K2C_GGML_TYPES];
    if (k2c_quantize_size(&c, &qo, &bytes, by) != 0) return cli_fail("info");
    char b1[32], b2[32], b3[32];
    double total, active;
    k2c_model_counts(&c, &total, &active);
    printf("model:        %s (%s), %.3fB parameters\n", preset ? preset : dir, c.model_type, total / 1e9);
    printf("as %-10s %s of tensor data (what k2c quantize --type %s writes):", type, fmt_bytes((double)bytes, b1, sizeof b1), type);
    for (int t = 0; t < K2C_GGML_TYPES; t++)
        if (by[t]) printf(" %s %s", k2c_ggml_type_name(t), fmt_bytes((double)by[t], b2, sizeof b2));
    printf("\n");
    if (ctx <= 0) ctx = c.max_position_embeddings;
    double kv = (double)k2c_cache_bytes(&c, K2C_CACHE_F32, ctx);
    printf("bits/weight:  %.2f\n", 8.0 * (double)bytes / total);
    printf("memory:       %s weights + %s cache at %d tokens = %s\n", fmt_bytes((double)bytes, b1, sizeof b1),
           fmt_bytes(kv, b2, sizeof b2), ctx, fmt_bytes((double)bytes + kv, b3, sizeof b3));
    printf("KV cache at %d tokens (%d layers, pages of 256 positions):", ctx, c.num_hidden_layers);
    for (int t = K2C_CACHE_F32; t <= K2C_CACHE_Q8_0; t++)
        printf(" %s %s (%zu bytes)", cli_cache_name(t), fmt_bytes((double)k2c_cache_bytes(&c, t, ctx), b1, sizeof b1),
               k2c_cache_bytes(&c, t, ctx));
    printf("\n");
    return 0;
}

static int cmd_info(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    const char *as = cli_str(&a, "as-type", NULL), *preset = as ? cli_str(&a, "preset", NULL) : NULL;
    const char *dir = preset ? NULL : cli_need(&a, "model");
    int ctx = (int)cli_int(&a, "ctx", 0);
    const char *ct = cli_str(&a, "cache-type", "f32");
    int threads = (int)cli_int(&a, "threads", 0), ubatch = (int)cli_int(&a, "ubatch", 0);
    if ((!dir && !preset) || cli_done(&a)) return 2;
    if (cli_cache_type(ct) < 0) { fprintf(stderr, "k2c info: --cache-type must be f32, bf16 or q8_0\n"); return 2; }
    if (as) return info_as_type(dir, preset, as, ctx);
    k2c_model_opts mo;      /* the environment's choices (K2C_SIMD, K2C_PROMPT_PRECISION, ...), then the flags */
    k2c_model_opts_default(&mo);
    mo.load = K2C_LOAD_MMAP;    /* headers, not weights */
    mo.cache_type = cli_cache_type(ct);
    mo.threads = threads;
    mo.ubatch = ubatch;
    k2c_model *m = k2c_model_open(dir, &mo);
    if (!m) return cli_fail("info");
    const k2c_config *c = k2c_model_config(m);
    k2c_model_info mi;
    k2c_model_get_info(m, &mi);
    double total, active;
    k2c_model_counts(c, &total, &active);
    char b1[32], b2[32], b3[32], b4[32];
    printf("model:        %s (%s)\n", dir, c->model_type);
    printf("architecture: DeepseekV3ForCausalLM, %d layers (%d dense), hidden %d, %d heads, vocab %d\n",
           c->num_hidden_layers, c->first_k_dense_replace < c->num_hidden_layers ? c->first_k_dense_replace : c->num_hidden_layers,
           c->hidden_size, c->num_attention_heads, c->vocab_size);
    printf("attention:    MLA, q_lora %d, kv_lora %d, nope/rope/v %d/%d/%d, rope theta %g%s\n", c->q_lora_rank,
           c->kv_lora_rank, c->qk_nope_head_dim, c->qk_rope_head_dim, c->v_head_dim, c->rope_theta,
           c->rope_yarn ? ", YaRN" : "");
    if (c->rope_yarn) printf("              YaRN factor %g, original context %d, softmax scale %.7f\n", c->rope_factor, c->rope_original_max, mi.attn_scale);
    printf("experts:      %d routed (top %d, %s, groups %d/%d) + %d shared, intermediate %d\n", c->n_routed_experts,
           c->num_experts_per_tok, c->scoring_softmax ? "softmax" : "sigmoid", c->topk_group, c->n_group, c->n_shared_experts,
           c->moe_intermediate_size);
    printf("parameters:   %.3fB total, %.3fB active per token\n", total / 1e9, active / 1e9);
    size_t all = mi.bytes;
    printf("weights:      %s in %d %sfile(s):", fmt_bytes((double)all, b1, sizeof b1), mi.nfiles, mi.gguf ? "GGUF " : "");
    for (int t = 0; t < K2C_DTYPE_COUNT; t++)
        if (mi.bytes_by_dtype[t]) printf(" %s %s", k2c_dtype_name((k2c_dtype)t), fmt_bytes((double)mi.bytes_by_dtype[t], b2, sizeof b2));
    for (int t = 0; t < K2C_GGML_TYPES; t++)     /* GGUF: bytes per ggml type */
        if (mi.bytes_by_ggml[t]) printf(" %s %s", k2c_ggml_type_name(t), fmt_bytes((double)mi.bytes_by_ggml[t], b2, sizeof b2));
    printf("\n");
    if (ctx <= 0) ctx = c->max_position_embeddings;
    /* the real bytes: the cache's whole pages at ctx positions for each format, and the workspace a state of that
     * context allocates (fixed: it does not grow with the context) */
    k2c_state *st = k2c_state_new(m, ctx);
    if (!st) { k2c_model_close(m); return cli_fail("info"); }
    size_t wsb = k2c_state_ws_bytes(st), kv = k2c_cache_bytes(c, mi.cache_type, ctx);
    k2c_state_delete(st);
    printf("KV cache:     %zu bytes per token (latent c + k_pe, %s; --cache-type f32|bf16|q8_0), %s at %d tokens\n",
           (size_t)c->num_hidden_layers * k2c_cache_row_bytes(c, mi.cache_type), cli_cache_name(mi.cache_type),
           fmt_bytes((double)kv, b2, sizeof b2), ctx);
    printf("cache at %d:", ctx);
    for (int t = K2C_CACHE_F32; t <= K2C_CACHE_Q8_0; t++)
        printf(" %s %zu bytes (%s)", cli_cache_name(t), k2c_cache_bytes(c, t, ctx), fmt_bytes((double)k2c_cache_bytes(c, t, ctx), b1, sizeof b1));
    printf("\n");
    printf("workspace:    %zu bytes (%s, fixed: ubatch %d, %d threads); cache + workspace = %.3f x the cache\n", wsb,
           fmt_bytes((double)wsb, b1, sizeof b1), ubatch > 0 ? ubatch : K2C_UBATCH_DEFAULT, mi.threads,
           kv ? (double)(kv + wsb) / (double)kv : 0.0);
    printf("memory:       %s weights (memory-mapped) + %s cache + %s workspace = %s\n", fmt_bytes((double)all, b1, sizeof b1),
           fmt_bytes((double)kv, b2, sizeof b2), fmt_bytes((double)wsb, b3, sizeof b3),
           fmt_bytes((double)all + (double)kv + (double)wsb, b4, sizeof b4));
    printf("kernels:      %s (K2C_SIMD=scalar|avx2|avx512 forces one), %d threads; prompt products %s\n", mi.kernels,
           mi.threads, mi.prompt_products);
    if (mi.gguf)
        printf("activations:  %s\n", mi.exact ? "fp32 (exact)"
                                               : "int8 in decode, a scale per 32 (per 256 on the K-quants where the kernels "
                                                 "ask for it, as ggml's Q8_K; K2C_EXACT=1 or --exact: fp32)");
    k2c_model_close(m);
    return 0;
}
CLI_COMMAND(cmd_info_def, "info", "--model DIR [--ctx N] [--cache-type f32|bf16|q8_0] [--threads N] [--ubatch N] | (--model DIR | --preset NAME) --as-type TYPE [--ctx N]",
            "Architecture, parameter counts (total / active), bytes per format, KV-cache bytes per token, memory needed; "
            "--as-type: the bytes `k2c quantize --type TYPE` would write for these shapes (config.json suffices).", cmd_info)

static int cmd_mkmodel(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    const char *cfgp = cli_str(&a, "config", NULL), *preset = cli_str(&a, "preset", NULL);
    const char *dtype = cli_str(&a, "dtype", "bf16"), *out = cli_need(&a, "out");
    int shards = (int)cli_int(&a, "shards", 1);
    uint64_t seed = (uint64_t)cli_int(&a, "seed", 1);
    int layers = (int)cli_int(&a, "layers", 0), experts = (int)cli_int(&a, "experts", 0);
    int topk = (int)cli_int(&a, "experts-per-tok", 0), vocab = (int)cli_int(&a, "vocab", 0);
    int shared = (int)cli_int(&a, "shared-experts", -1), dense = (int)cli_int(&a, "dense-layers", -1);
    cli_int(&a, "threads", 0);     /* accepted for symmetry; mkmodel uses every core */
    if (!out || cli_done(&a)) return 2;
    if (!cfgp == !preset) { fprintf(stderr, "k2c mkmodel: give exactly one of --config FILE or --preset NAME\n"); return 2; }
    k2c_config c;
    if ((cfgp ? k2c_config_load(&c, cfgp) : k2c_config_preset(&c, preset)) != 0) return cli_fail("mkmodel");
    if (layers > 0) c.num_hidden_layers = layers;
    if (experts > 0) { c.n_routed_experts = experts; if (c.n_group > 1 && experts % c.n_group) c.n_group = c.topk_group = 1; }
    if (topk > 0) c.num_experts_per_tok = topk;
    if (vocab > 0) c.vocab_size = vocab;
    if (shared >= 0) c.n_shared_experts = shared;
    if (dense >= 0) c.first_k_dense_replace = dense;
    /* re-validate after overrides by a round trip through the parser */
    char *js = k2c_config_to_json(&c);
    k2c_config chk;
    int bad = !js || k2c_config_parse(&chk, js, "mkmodel overrides") != 0;
    free(js);
    if (bad) return cli_fail("mkmodel");
    double t0 = k2c_now();
    if (k2c_mkmodel(&c, dtype, shards, seed, out) != 0) return cli_fail("mkmodel");
    double total, active;
    k2c_model_counts(&c, &total, &active);
    k2c_log("mkmodel: %s %s, %.3fB parameters (%.3fB active), %.1f s\n", out, dtype, total / 1e9, active / 1e9, k2c_now() - t0);
    return 0;
}
CLI_COMMAND(cmd_mkmodel_def, "mkmodel",
            "--config FILE|--preset NAME --dtype f32|bf16|fp8|int4 [--shards N] [--layers N] [--experts N] "
            "[--experts-per-tok K] [--shared-experts N] [--dense-layers N] [--vocab V] [--seed S] --out DIR",
            "Write a random checkpoint in the Hugging Face layout (presets: kimi-k2, kimi-k2-thinking, moonlight-16b-a3b, deepseek-v3, k2-tiny).",
            cmd_mkmodel)
