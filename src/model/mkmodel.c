/* Random checkpoints in the exact Hugging Face layout (config.json, shards with unpadded names, index),
 * in any of the published formats: F32, BF16, FP8 (e4m3 + 128x128 weight_scale_inv, as Kimi-K2 and
 * DeepSeek-V3) or INT4 (compressed-tensors pack-quantized routed experts, as K2-Thinking). Tests and
 * benchmarks use them because no real weights can be downloaded here; the loader sees the same layout.
 *
 * Values are uniform with variance 1/fan_in so that activations keep unit scale through the layers.
 * Every tensor's values derive from (seed, tensor index, row) alone, so shards can be streamed and
 * rows filled in parallel with identical results. */
#include "model/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>

typedef enum { KIND_VEC_ONE, KIND_BIAS, KIND_EMBED, KIND_LINEAR, KIND_SCALE_FP8, KIND_INT4_PACKED, KIND_INT4_SCALE,
               KIND_INT4_SHAPE } fill_kind;

typedef struct {
    k2c_tensor t;
    fill_kind kind;
    int rows, cols;     /* of the logical weight */
    int gidx;           /* position in the whole list: seeds the values, whatever the sharding */
} gen_tensor;

typedef struct {
    gen_tensor *v;
    int n, cap;
    uint64_t seed;
    int block;          /* FP8 block */
    int group;          /* INT4 group */
} gen_list;

static int push(gen_list *g, const char *name, k2c_dtype dt, int ndim, int64_t d0, int64_t d1, fill_kind kind, int rows, int cols) {
    if (g->n == g->cap) {
        int nc = g->cap ? g->cap * 2 : 256;
        gen_tensor *nv = realloc(g->v, (size_t)nc * sizeof *nv);
        if (!nv) { k2c_seterr("out of memory"); return -1; }
        g->v = nv; g->cap = nc;
    }
    gen_tensor *x = &g->v[g->n];
    memset(x, 0, sizeof *x);
    int64_t shape[2] = {d0, d1};
    k2c_tensor_set_shape(&x->t, dt, ndim, shape);
    x->t.name = strdup(name);
    x->kind = kind; x->rows = rows; x->cols = cols; x->gidx = g->n;
    if (!x->t.name) { k2c_seterr("out of memory"); return -1; }
    g->n++;
    return 0;
}

/* A weight in the requested format: plain, FP8 + scale, or INT4 triple. */
static int push_linear(gen_list *g, const char *base, int rows, int cols, const char *dtype, int quantizable_int4) {
    char n[320];
    if (!strcmp(dtype, "fp8")) {
        int B = g->block;
        snprintf(n, sizeof n, "%s.weight", base);
        if (push(g, n, K2C_F8_E4M3, 2, rows, cols, KIND_LINEAR, rows, cols)) return -1;
        snprintf(n, sizeof n, "%s.weight_scale_inv", base);
        return push(g, n, K2C_F32, 2, (rows + B - 1) / B, (cols + B - 1) / B, KIND_SCALE_FP8, rows, cols);
    }
    if (!strcmp(dtype, "int4") && quantizable_int4) {
        snprintf(n, sizeof n, "%s.weight_packed", base);
        if (push(g, n, K2C_I32, 2, rows, cols / 8, KIND_INT4_PACKED, rows, cols)) return -1;
        snprintf(n, sizeof n, "%s.weight_scale", base);
        if (push(g, n, K2C_BF16, 2, rows, cols / g->group, KIND_INT4_SCALE, rows, cols)) return -1;
        snprintf(n, sizeof n, "%s.weight_shape", base);
        return push(g, n, K2C_I32, 1, 2, 0, KIND_INT4_SHAPE, rows, cols);
    }
    snprintf(n, sizeof n, "%s.weight", base);
    return push(g, n, !strcmp(dtype, "f32") ? K2C_F32 : K2C_BF16, 2, rows, cols, KIND_LINEAR, rows, cols);
}

static int build_list(gen_list *g, const k2c_config *c, const char *dtype) {
    int D = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim;
    int dv = c->v_head_dim, r = c->kv_lora_rank, V = c->vocab_size;
    k2c_dtype vec = !strcmp(dtype, "f32") ? K2C_F32 : K2C_BF16;
    /* embeddings, head and norms stay BF16 in FP8/INT4 checkpoints, like the published ones */
    const char *plain = !strcmp(dtype, "f32") ? "f32" : "bf16";
    char p[256], n[320];
    if (push(g, "model.embed_tokens.weight", vec, 2, V, D, KIND_EMBED, V, D)) return -1;
    for (int L = 0; L < c->num_hidden_layers; L++) {
        snprintf(p, sizeof p, "model.layers.%d", L);
#define NM(s) (snprintf(n, sizeof n, "%s.%s", p, s), n)
        if (push(g, NM("input_layernorm.weight"), vec, 1, D, 0, KIND_VEC_ONE, 0, 0)) return -1;
        if (push(g, NM("post_attention_layernorm.weight"), vec, 1, D, 0, KIND_VEC_ONE, 0, 0)) return -1;
        if (c->q_lora_rank) {
            if (push_linear(g, NM("self_attn.q_a_proj"), c->q_lora_rank, D, dtype, 0)) return -1;
            if (push(g, NM("self_attn.q_a_layernorm.weight"), vec, 1, c->q_lora_rank, 0, KIND_VEC_ONE, 0, 0)) return -1;
            if (push_linear(g, NM("self_attn.q_b_proj"), H * (dn + dr), c->q_lora_rank, dtype, 0)) return -1;
        } else if (push_linear(g, NM("self_attn.q_proj"), H * (dn + dr), D, dtype, 0)) return -1;
        if (push_linear(g, NM("self_attn.kv_a_proj_with_mqa"), r + dr, D, dtype, 0)) return -1;
        if (push(g, NM("self_attn.kv_a_layernorm.weight"), vec, 1, r, 0, KIND_VEC_ONE, 0, 0)) return -1;
        if (push_linear(g, NM("self_attn.kv_b_proj"), H * (dn + dv), r, dtype, 0)) return -1;
        if (push_linear(g, NM("self_attn.o_proj"), D, H * dv, dtype, 0)) return -1;
        if (!k2c_config_is_moe_layer(c, L)) {
            int I = c->intermediate_size;
            if (push_linear(g, NM("mlp.gate_proj"), I, D, dtype, 0)) return -1;
            if (push_linear(g, NM("mlp.up_proj"), I, D, dtype, 0)) return -1;
            if (push_linear(g, NM("mlp.down_proj"), D, I, dtype, 0)) return -1;
            continue;
        }
        int E = c->n_routed_experts, I = c->moe_intermediate_size;
        if (push_linear(g, NM("mlp.gate"), E, D, plain, 0)) return -1;
        if (push(g, NM("mlp.gate.e_score_correction_bias"), K2C_F32, 1, E, 0, KIND_BIAS, 0, 0)) return -1;
        for (int e = 0; e < E; e++) {
            char b[320];
            snprintf(b, sizeof b, "%s.mlp.experts.%d.gate_proj", p, e);
            if (push_linear(g, b, I, D, dtype, 1)) return -1;
            snprintf(b, sizeof b, "%s.mlp.experts.%d.up_proj", p, e);
            if (push_linear(g, b, I, D, dtype, 1)) return -1;
            snprintf(b, sizeof b, "%s.mlp.experts.%d.down_proj", p, e);
            if (push_linear(g, b, D, I, dtype, 1)) return -1;
        }
        if (c->n_shared_experts) {
            int IS = I * c->n_shared_experts;
            const char *sd = !strcmp(dtype, "int4") ? "bf16" : dtype;
            if (push_linear(g, NM("mlp.shared_experts.gate_proj"), IS, D, sd, 0)) return -1;
            if (push_linear(g, NM("mlp.shared_experts.up_proj"), IS, D, sd, 0)) return -1;
            if (push_linear(g, NM("mlp.shared_experts.down_proj"), D, IS, sd, 0)) return -1;
        }
#undef NM
    }
    if (push(g, "model.norm.weight", vec, 1, D, 0, KIND_VEC_ONE, 0, 0)) return -1;
    if (!c->tie_word_embeddings && push_linear(g, "lm_head", V, D, plain, 0)) return -1;
    return 0;
}

static uint64_t row_seed(uint64_t seed, int tensor, int64_t row) {
    uint64_t s = seed ^ ((uint64_t)(tensor + 1) * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(row + 1) * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 2; i++) k2c_rng_next(&s);
    return s;
}

/* Uniform in [-a, a) with a = sqrt(3 / fan_in): unit variance per output for unit inputs. */
static int fill(void *ctx, int index, void *dst) {
    gen_list *g = ctx;
    gen_tensor *x = &g->v[index];
    const k2c_tensor *t = &x->t;
    int64_t rows = t->ndim == 2 ? t->shape[0] : 1, cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
    float a = x->cols ? sqrtf(3.0f / (float)x->cols) : 1.0f;
    if (x->kind == KIND_EMBED) a = 1.0f;
    #pragma omp parallel for schedule(dynamic, 16)
    for (int64_t r = 0; r < rows; r++) {
        uint64_t s = row_seed(g->seed, x->gidx, r);
        for (int64_t j = 0; j < cols; j++) {
            size_t i = (size_t)(r * cols + j);
            float u = 2.0f * k2c_rng_uniform(&s) - 1.0f;
            switch (x->kind) {
            case KIND_VEC_ONE: {
                float v = 1.0f + 0.1f * u;
                if (t->dtype == K2C_F32) ((float *)dst)[i] = v; else ((uint16_t *)dst)[i] = k2c_f32_to_bf16(v);
                break; }
            case KIND_BIAS: ((float *)dst)[i] = 0.01f * u; break;
            case KIND_EMBED: case KIND_LINEAR:
                if (t->dtype == K2C_F32) ((float *)dst)[i] = a * u;
                else if (t->dtype == K2C_BF16) ((uint16_t *)dst)[i] = k2c_f32_to_bf16(a * u);
                else {  /* FP8 code with exponent 5..8: |v| in [0.25, 3.75]; the scale brings it to ~a */
                    uint64_t b = k2c_rng_next(&s);
                    ((uint8_t *)dst)[i] = (uint8_t)(((b & 1) << 7) | ((5 + (b >> 1) % 4) << 3) | ((b >> 4) & 7));
                }
                break;
            case KIND_SCALE_FP8: ((float *)dst)[i] = a * (0.4f + 0.1f * u); break;
            case KIND_INT4_PACKED: ((uint32_t *)dst)[i] = (uint32_t)k2c_rng_next(&s); break;
            case KIND_INT4_SCALE: ((uint16_t *)dst)[i] = k2c_f32_to_bf16(a * (0.3f + 0.05f * u)); break;
            case KIND_INT4_SHAPE: ((int32_t *)dst)[i] = i == 0 ? x->rows : x->cols; break;
            }
        }
    }
    return 0;
}

int k2c_mkmodel(const k2c_config *cfg, const char *dtype, int shards, uint64_t seed, const char *outdir) {
    gen_list g = {0};
    k2c_config c = *cfg;
    json_t *wm = NULL;
    char *cj = NULL;
    int rc = -1;
    if (strcmp(dtype, "f32") && strcmp(dtype, "bf16") && strcmp(dtype, "fp8") && strcmp(dtype, "int4")) {
        k2c_seterr("--dtype must be f32, bf16, fp8 or int4 (got '%s')", dtype);
        return -1;
    }
    c.quant = !strcmp(dtype, "fp8") ? K2C_QUANT_FP8 : !strcmp(dtype, "int4") ? K2C_QUANT_INT4 : K2C_QUANT_NONE;
    if (!c.fp8_block[0]) c.fp8_block[0] = c.fp8_block[1] = 128;
    if (!c.int4_group) c.int4_group = 32;
    if (c.quant == K2C_QUANT_INT4 && (c.hidden_size % c.int4_group || c.moe_intermediate_size % c.int4_group)) {
        k2c_seterr("int4 needs hidden_size and moe_intermediate_size to be multiples of %d", c.int4_group);
        return -1;
    }
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) { k2c_seterr("%s: %s", outdir, strerror(errno)); return -1; }
    g.seed = seed; g.block = c.fp8_block[0]; g.group = c.int4_group;
    if (build_list(&g, &c, dtype)) goto done;
    if (shards < 1) shards = 1;
    if (shards > g.n) shards = g.n;
    size_t total = 0;
    for (int i = 0; i < g.n; i++) total += g.v[i].t.nbytes;
    /* Cut the tensor list into shards of about equal bytes, keeping order. */
    int start = 0;
    wm = json_object();
    double t0 = k2c_now();
    for (int s = 0; s < shards; s++) {
        size_t goal = total * (size_t)(s + 1) / (size_t)shards, acc = 0;
        for (int i = 0; i < start; i++) acc += g.v[i].t.nbytes;
        int end = start;
        while (end < g.n && (acc < goal || end == start) && g.n - end > shards - s - 1) acc += g.v[end++].t.nbytes;
        if (s == shards - 1) end = g.n;
        char fname[128], *path;
        if (shards == 1) snprintf(fname, sizeof fname, "model.safetensors");
        else snprintf(fname, sizeof fname, "model-%d-of-%d.safetensors", s + 1, shards);
        if (!(path = k2c_path_join(outdir, fname))) { k2c_seterr("out of memory"); goto done; }
        k2c_tensor *ts = malloc((size_t)(end - start) * sizeof *ts);
        if (!ts) { free(path); k2c_seterr("out of memory"); goto done; }
        for (int i = start; i < end; i++) {
            ts[i - start] = g.v[i].t;
            json_object_set_new(wm, g.v[i].t.name, json_string(fname));
        }
        /* fill() receives the index in this shard's array: shift the generator list accordingly */
        gen_list sub = g;
        sub.v = g.v + start;
        int w = k2c_st_write(path, end - start, ts, fill, &sub);
        free(ts);
        free(path);
        if (w) goto done;
        if (shards > 1) k2c_log("mkmodel: wrote %s (%d/%d, %.0f s)\n", fname, s + 1, shards, k2c_now() - t0);
        start = end;
    }
    if (shards > 1) {
        json_t *idx = json_pack("{s:{s:I}, s:O}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        char *js = json_dumps(idx, JSON_INDENT(2) | JSON_SORT_KEYS);
        char *p = k2c_path_join(outdir, "model.safetensors.index.json");
        int w = js && p ? k2c_write_file_atomic(p, js, strlen(js)) : -1;
        free(js); free(p); json_decref(idx);
        if (w) goto done;
    }
    cj = k2c_config_to_json(&c);
    char *p = k2c_path_join(outdir, "config.json");
    int w = cj && p ? k2c_write_file_atomic(p, cj, strlen(cj)) : -1;
    free(p);
    if (w) goto done;
    rc = 0;
done:
    for (int i = 0; i < g.n; i++) free(g.v[i].t.name);
    free(g.v);
    free(cj);
    json_decref(wm);
    return rc;
}
