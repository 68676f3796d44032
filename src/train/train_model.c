/* The trainable model: every tensor of a checkpoint (spec section 2) in fp32 in one block.
 *
 * The tensor table is built once from the config; a tensor is (name, shape, offset). Weights w and
 * gradients g share the layout, and so do the optimizer moments (muon.c), so "the gradient of
 * q_b_proj of layer 3" is g + layers[3].q_b. Experts of a layer are laid out back to back
 * (gate, up, down per expert) so a layer's expert e is experts + e * expert_stride. */
#include "train/train.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NONE ((size_t)-1)

typedef struct {
    k2c_tmodel *m;
    int cap;
} table;

static size_t add(table *t, int layer, k2c_pkind kind, int64_t a, int64_t b, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static size_t add(table *t, int layer, k2c_pkind kind, int64_t a, int64_t b, const char *fmt, ...) {
    k2c_tmodel *m = t->m;
    if (m->nparams == t->cap) {
        int nc = t->cap ? 2 * t->cap : 256;
        k2c_param *n = realloc(m->params, (size_t)nc * sizeof *n);
        if (!n) return NONE;
        m->params = n;
        t->cap = nc;
    }
    k2c_param *p = &m->params[m->nparams++];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = b ? 2 : 1;
    p->shape[0] = a;
    p->shape[1] = b;
    p->numel = (size_t)a * (size_t)(b ? b : 1);
    p->off = m->nw;
    p->kind = kind;
    p->layer = layer;
    m->nw += p->numel;
    return p->off;
}

/* Builds the table and allocates w and g (zeroed). */
static int build(k2c_tmodel *m, const k2c_config *c) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    table t = {m, 0};
    int D = c->hidden_size, V = c->vocab_size, L = c->num_hidden_layers, H = c->num_attention_heads;
    int dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim, dv = c->v_head_dim, r = c->kv_lora_rank;
    int ql = c->q_lora_rank, E = c->n_routed_experts, I = c->moe_intermediate_size;
    if (c->quant != K2C_QUANT_NONE) { k2c_seterr("training a quantized config is not supported"); return -1; }
    if (c->tie_word_embeddings) { k2c_seterr("tie_word_embeddings is not supported by the trainer"); return -1; }
    if (dr / 2 > 512 || dr % 2) { k2c_seterr("qk_rope_head_dim %d not supported", dr); return -1; }
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) goto oom;
    m->embed = add(&t, -1, K2C_P_ADAMW, V, D, "model.embed_tokens.weight");
    m->final_norm = add(&t, -1, K2C_P_ADAMW, D, 0, "model.norm.weight");
    m->head = add(&t, -1, K2C_P_ADAMW, V, D, "lm_head.weight");
    for (int l = 0; l < L; l++) {
        k2c_tlayer *ly = &m->layers[l];
        const char *p = "model.layers";
        ly->q_a = ly->q_a_norm = ly->q_b = ly->q = ly->router = ly->bias = ly->experts = NONE;
        ly->attn_norm = add(&t, l, K2C_P_ADAMW, D, 0, "%s.%d.input_layernorm.weight", p, l);
        ly->ffn_norm = add(&t, l, K2C_P_ADAMW, D, 0, "%s.%d.post_attention_layernorm.weight", p, l);
        if (ql) {
            ly->q_a = add(&t, l, K2C_P_MUON, ql, D, "%s.%d.self_attn.q_a_proj.weight", p, l);
            ly->q_a_norm = add(&t, l, K2C_P_ADAMW, ql, 0, "%s.%d.self_attn.q_a_layernorm.weight", p, l);
            ly->q_b = add(&t, l, K2C_P_MUON, (int64_t)H * (dn + dr), ql, "%s.%d.self_attn.q_b_proj.weight", p, l);
        } else {
            ly->q = add(&t, l, K2C_P_MUON, (int64_t)H * (dn + dr), D, "%s.%d.self_attn.q_proj.weight", p, l);
        }
        ly->kv_a = add(&t, l, K2C_P_MUON, r + dr, D, "%s.%d.self_attn.kv_a_proj_with_mqa.weight", p, l);
        ly->kv_a_norm = add(&t, l, K2C_P_ADAMW, r, 0, "%s.%d.self_attn.kv_a_layernorm.weight", p, l);
        ly->kv_b = add(&t, l, K2C_P_MUON, (int64_t)H * (dn + dv), r, "%s.%d.self_attn.kv_b_proj.weight", p, l);
        ly->o = add(&t, l, K2C_P_MUON, D, (int64_t)H * dv, "%s.%d.self_attn.o_proj.weight", p, l);
        ly->is_moe = k2c_config_is_moe_layer(c, l);
        if (!ly->is_moe) {
            int F = c->intermediate_size;
            ly->gate = add(&t, l, K2C_P_MUON, F, D, "%s.%d.mlp.gate_proj.weight", p, l);
            ly->up = add(&t, l, K2C_P_MUON, F, D, "%s.%d.mlp.up_proj.weight", p, l);
            ly->down = add(&t, l, K2C_P_MUON, D, F, "%s.%d.mlp.down_proj.weight", p, l);
            continue;
        }
        ly->router = add(&t, l, K2C_P_MUON, E, D, "%s.%d.mlp.gate.weight", p, l);
        ly->bias = add(&t, l, K2C_P_BIAS, E, 0, "%s.%d.mlp.gate.e_score_correction_bias", p, l);
        ly->expert_stride = (size_t)3 * I * D;
        for (int e = 0; e < E; e++) {
            size_t o = add(&t, l, K2C_P_MUON, I, D, "%s.%d.mlp.experts.%d.gate_proj.weight", p, l, e);
            if (e == 0) ly->experts = o;
            add(&t, l, K2C_P_MUON, I, D, "%s.%d.mlp.experts.%d.up_proj.weight", p, l, e);
            add(&t, l, K2C_P_MUON, D, I, "%s.%d.mlp.experts.%d.down_proj.weight", p, l, e);
        }
        if (c->n_shared_experts) {
            int S = I * c->n_shared_experts;
            ly->gate = add(&t, l, K2C_P_MUON, S, D, "%s.%d.mlp.shared_experts.gate_proj.weight", p, l);
            ly->up = add(&t, l, K2C_P_MUON, S, D, "%s.%d.mlp.shared_experts.up_proj.weight", p, l);
            ly->down = add(&t, l, K2C_P_MUON, D, S, "%s.%d.mlp.shared_experts.down_proj.weight", p, l);
        } else {
            ly->gate = ly->up = ly->down = NONE;
        }
    }
    for (int i = 0; i < m->nparams; i++) if (m->params[i].off == NONE) goto oom;
    m->w = aligned_alloc(64, ((m->nw * sizeof(float)) + 63) & ~(size_t)63);
    m->g = aligned_alloc(64, ((m->nw * sizeof(float)) + 63) & ~(size_t)63);
    if (!m->w || !m->g) goto oom;
    memset(m->w, 0, m->nw * sizeof(float));
    memset(m->g, 0, m->nw * sizeof(float));
    k2c_rope_init(c, m->inv_freq, &m->rope_mscale, &m->attn_scale);
    return 0;
oom:
    k2c_seterr("out of memory for a %zu-parameter model", m->nw);
    k2c_tmodel_free(m);
    return -1;
}

void k2c_tmodel_free(k2c_tmodel *m) {
    free(m->params);
    free(m->layers);
    free(m->w);
    free(m->g);
    memset(m, 0, sizeof *m);
}

const k2c_param *k2c_tmodel_find(const k2c_tmodel *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *s) {  /* Box-Muller */
    double u1 = ((splitmix(s) >> 11) + 1.0) * 0x1.0p-53, u2 = (splitmix(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int k2c_tmodel_init(k2c_tmodel *m, const k2c_config *c, uint64_t seed) {
    if (build(m, c)) return -1;
    /* Each tensor gets its own stream (seed, index) so the values do not depend on the table order. */
    for (int i = 0; i < m->nparams; i++) {
        const k2c_param *p = &m->params[i];
        float *w = m->w + p->off;
        uint64_t s = seed * 0x100000001B3ull + (uint64_t)i * 0x9E3779B97F4A7C15ull;
        if (p->kind == K2C_P_BIAS) continue;            /* zero */
        if (p->ndim == 1) { for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f; continue; }
        for (size_t j = 0; j < p->numel; j++) w[j] = (float)(0.02 * gauss(&s));
    }
    return 0;
}

int k2c_tmodel_load(k2c_tmodel *m, const char *dir) {
    k2c_config c;
    int rc = -1;
    if (k2c_config_load(&c, dir)) return -1;
    if (c.quant != K2C_QUANT_NONE) {
        k2c_seterr("%s: quantized checkpoints (FP8/INT4) cannot be trained; start from an F32/BF16 one", dir);
        return -1;
    }
    k2c_safetensors st;
    if (build(m, &c)) return -1;
    if (k2c_st_open(&st, dir)) { k2c_tmodel_free(m); return -1; }
    for (int i = 0; i < m->nparams; i++) {
        const k2c_param *p = &m->params[i];
        const k2c_tensor *t = k2c_st_find(&st, p->name);
        if (!t) {
            if (p->kind == K2C_P_BIAS) continue;        /* checkpoints without a bias start at zero */
            k2c_seterr("%s: missing tensor '%s'", dir, p->name);
            goto done;
        }
        int ok = t->ndim == p->ndim && t->shape[0] == p->shape[0] && (p->ndim == 1 || t->shape[1] == p->shape[1]);
        if (!ok) {
            k2c_seterr("%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld]", t->file, p->name,
                       (long long)t->shape[0], t->ndim > 1 ? ", " : "", t->ndim > 1 ? (long long)t->shape[1] : 0LL,
                       (long long)p->shape[0], (long long)p->shape[1]);
            goto done;
        }
        if (t->dtype == K2C_F32) memcpy(m->w + p->off, t->data, p->numel * sizeof(float));
        else for (size_t j = 0; j < p->numel; j++) m->w[p->off + j] = k2c_elem_to_f32(t->dtype, t->data, j);
    }
    rc = 0;
done:
    k2c_st_close(&st);
    if (rc) k2c_tmodel_free(m);
    return rc;
}

typedef struct {
    const k2c_tmodel *m;
    const k2c_dtype *dt;
} save_ctx;

static int fill(void *ctx, int index, void *dst) {
    save_ctx *s = ctx;
    const k2c_param *p = &s->m->params[index];
    const float *w = s->m->w + p->off;
    if (s->dt[index] == K2C_F32) memcpy(dst, w, p->numel * sizeof(float));
    else for (size_t j = 0; j < p->numel; j++) ((uint16_t *)dst)[j] = k2c_f32_to_bf16(w[j]);
    return 0;
}

int k2c_tmodel_save(const k2c_tmodel *m, const char *dir, k2c_dtype dtype) {
    int rc = -1;
    k2c_tensor *ts = calloc((size_t)m->nparams, sizeof *ts);
    k2c_dtype *dt = calloc((size_t)m->nparams, sizeof *dt);
    char *json = NULL, *cpath = NULL, *mpath = NULL;
    if (!ts || !dt) { k2c_seterr("out of memory"); goto done; }
    if (dtype != K2C_F32 && dtype != K2C_BF16) { k2c_seterr("checkpoint dtype must be F32 or BF16"); goto done; }
    mkdir(dir, 0777);
    for (int i = 0; i < m->nparams; i++) {
        const k2c_param *p = &m->params[i];
        dt[i] = p->kind == K2C_P_BIAS ? K2C_F32 : dtype;   /* the reference keeps the bias in F32 */
        ts[i].name = (char *)p->name;
        k2c_tensor_set_shape(&ts[i], dt[i], p->ndim, p->shape);
        ts[i].data = NULL;
    }
    k2c_config c = m->cfg;
    json = k2c_config_to_json(&c);
    cpath = k2c_path_join(dir, "config.json");
    mpath = k2c_path_join(dir, "model.safetensors");
    if (!json || !cpath || !mpath) { k2c_seterr("out of memory"); goto done; }
    save_ctx sc = {m, dt};
    if (k2c_st_write(mpath, m->nparams, ts, fill, &sc)) goto done;
    if (k2c_write_file_atomic(cpath, json, strlen(json))) goto done;
    rc = 0;
done:
    free(ts); free(dt); free(json); free(cpath); free(mpath);
    return rc;
}
