/* Model loading: binds the tensors of a Hugging Face checkpoint to the layer structs (spec section 2),
 * checking every name, shape and dtype. Weights are not copied: a k2c_linear points into the mmap'ed
 * file in its stored format. Only norm gains and the router bias (a few KB per layer) become fp32 copies. */
#include "model/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    k2c_model *m;
    const char *dir;
    const char *prefix;     /* "" or "language_model." (K2.5-style checkpoints) */
} binder;

static void *own(k2c_model *m, size_t bytes) {
    if (m->nowned == m->cap_owned) {
        int nc = m->cap_owned ? 2 * m->cap_owned : 64;
        void **n = realloc(m->owned, (size_t)nc * sizeof *n);
        if (!n) return NULL;
        m->owned = n; m->cap_owned = nc;
    }
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (p) m->owned[m->nowned++] = p;
    return p;
}

void *k2c_model_own(k2c_model *m, size_t bytes) { return own(m, bytes); }

static const k2c_tensor *find(binder *b, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    return k2c_st_find(&b->m->st, full);
}

static int shape_is(const k2c_tensor *t, int64_t a, int64_t c) {
    return t->ndim == 2 && t->shape[0] == a && t->shape[1] == c;
}

static const char *tfile(const k2c_tensor *t) { return t->file ? t->file : "?"; }

/* Data whose address is not a multiple of its element size gets an aligned copy (never the case for
 * files written by Hugging Face or k2c, which pad the header to 8 bytes). */
static const void *aligned_data(binder *b, const k2c_tensor *t) {
    size_t es = k2c_dtype_size(t->dtype);
    if (((uintptr_t)t->data % es) == 0) return t->data;
    void *p = own(b->m, t->nbytes);
    if (p) memcpy(p, t->data, t->nbytes);
    return p;
}

static int bind_linear(binder *b, const char *base, int rows, int cols, k2c_linear *l) {
    char name[512];
    const k2c_tensor *w, *s;
    memset(l, 0, sizeof *l);
    l->cx = &b->m->cx;
    l->rows = rows;
    l->cols = cols;
    snprintf(name, sizeof name, "%s.weight_packed", base);
    if ((w = find(b, name))) {                      /* compressed-tensors INT4 */
        int G = b->m->cfg.int4_group ? b->m->cfg.int4_group : 32;
        if (w->dtype != K2C_I32 || cols % 8 || cols % G || !shape_is(w, rows, cols / 8)) {
            k2c_seterr("%s: tensor '%s': %s %dD, expected I32 [%d, %d] (packed INT4)", tfile(w), name,
                       k2c_dtype_name(w->dtype), w->ndim, rows, cols / 8);
            return -1;
        }
        snprintf(name, sizeof name, "%s.weight_scale", base);
        if (!(s = find(b, name))) { k2c_seterr("%s: missing tensor '%s'", b->dir, name); return -1; }
        if (s->dtype != K2C_BF16 || !shape_is(s, rows, cols / G)) {
            k2c_seterr("%s: tensor '%s': expected BF16 [%d, %d]", tfile(s), name, rows, cols / G);
            return -1;
        }
        snprintf(name, sizeof name, "%s.weight_shape", base);
        const k2c_tensor *sh = find(b, name);
        if (sh && (sh->numel != 2 || k2c_elem_to_f32(sh->dtype, sh->data, 0) != rows ||
                   k2c_elem_to_f32(sh->dtype, sh->data, 1) != cols)) {
            k2c_seterr("%s: tensor '%s' does not say (%d, %d)", tfile(sh), name, rows, cols);
            return -1;
        }
        l->fmt = K2C_FMT_INT4;
        l->w = aligned_data(b, w);
        l->scale_bf16 = aligned_data(b, s);
        l->block = G;
        l->scale_cols = cols / G;
        return l->w && l->scale_bf16 ? 0 : (k2c_seterr("out of memory"), -1);
    }
    snprintf(name, sizeof name, "%s.weight", base);
    if (!(w = find(b, name))) { k2c_seterr("%s: missing tensor '%s%s'", b->dir, b->prefix, name); return -1; }
    if (!shape_is(w, rows, cols)) {
        k2c_seterr("%s: tensor '%s': shape [%lld%s%lld], expected [%d, %d]", tfile(w), name, (long long)w->shape[0],
                   w->ndim > 1 ? ", " : "", w->ndim > 1 ? (long long)w->shape[1] : 0LL, rows, cols);
        return -1;
    }
    switch (w->dtype) {
    case K2C_F32: l->fmt = K2C_FMT_F32; break;
    case K2C_BF16: l->fmt = K2C_FMT_BF16; break;
    case K2C_F16: l->fmt = K2C_FMT_F16; break;
    case K2C_F8_E4M3: {
        int B = b->m->cfg.fp8_block[0] ? b->m->cfg.fp8_block[0] : 128;
        int sr = (rows + B - 1) / B, sc = (cols + B - 1) / B;
        snprintf(name, sizeof name, "%s.weight_scale_inv", base);
        if (!(s = find(b, name))) { k2c_seterr("%s: missing tensor '%s' (FP8 weights need block scales)", b->dir, name); return -1; }
        if (s->dtype != K2C_F32 || !shape_is(s, sr, sc)) {
            k2c_seterr("%s: tensor '%s': expected F32 [%d, %d] for %dx%d blocks", tfile(s), name, sr, sc, B, B);
            return -1;
        }
        l->scale_f32 = aligned_data(b, s);
        if (!l->scale_f32) { k2c_seterr("out of memory"); return -1; }
        for (int64_t i = 0; i < s->numel; i++)
            if (!isfinite(l->scale_f32[i])) {
                k2c_seterr("%s: tensor '%s': scale [%lld, %lld] is %g", tfile(s), name, (long long)(i / sc),
                           (long long)(i % sc), (double)l->scale_f32[i]);
                return -1;
            }
        l->fmt = K2C_FMT_FP8;
        l->block = B;
        l->scale_cols = sc;
        break;
    }
    default:
        k2c_seterr("%s: tensor '%s': dtype %s is not a weight format (F32, BF16, F16, F8_E4M3)", tfile(w), name,
                   k2c_dtype_name(w->dtype));
        return -1;
    }
    l->w = aligned_data(b, w);
    return l->w ? 0 : (k2c_seterr("out of memory"), -1);
}

/* A vector (norm gain, router bias) as an fp32 copy; any float dtype. */
static int bind_vec(binder *b, const char *name, int n, const float **out) {
    const k2c_tensor *t = find(b, name);
    if (!t) { k2c_seterr("%s: missing tensor '%s%s'", b->dir, b->prefix, name); return -1; }
    if (t->ndim != 1 || t->shape[0] != n) { k2c_seterr("%s: tensor '%s': expected shape [%d]", tfile(t), name, n); return -1; }
    if (t->dtype != K2C_F32 && t->dtype != K2C_BF16 && t->dtype != K2C_F16 && t->dtype != K2C_F64) {
        k2c_seterr("%s: tensor '%s': dtype %s, expected a float type", tfile(t), name, k2c_dtype_name(t->dtype));
        return -1;
    }
    float *v = own(b->m, (size_t)n * sizeof *v);
    if (!v) { k2c_seterr("out of memory"); return -1; }
    for (int i = 0; i < n; i++) {
        v[i] = k2c_elem_to_f32(t->dtype, t->data, (size_t)i);
        if (!isfinite(v[i])) { k2c_seterr("%s: tensor '%s': element %d is %g", tfile(t), name, i, (double)v[i]); return -1; }
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ the shared binding */
static int bind_layer(const k2c_bind_ops *ops, void *b, k2c_model *m, int L) {
    const k2c_config *c = &m->cfg;
    k2c_layer *ly = &m->layers[L];
    int D = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim;
    int dv = c->v_head_dim, r = c->kv_lora_rank;
    char p[64], n[320];
    snprintf(p, sizeof p, ops->layer_fmt, L);
#define NAME(role_) (snprintf(n, sizeof n, "%s%s", p, ops->names[role_]), n)
#define LIN(role_, rows_, cols_, dst_) ops->linear(b, NAME(role_), rows_, cols_, dst_)
#define VEC(role_, n_, dst_) ops->vec(b, NAME(role_), n_, dst_)
    if (VEC(KB_ATTN_NORM, D, &ly->attn_norm)) return -1;
    if (VEC(KB_FFN_NORM, D, &ly->ffn_norm)) return -1;
    if (c->q_lora_rank) {
        if (LIN(KB_Q_A, c->q_lora_rank, D, &ly->q_a)) return -1;
        if (VEC(KB_Q_A_NORM, c->q_lora_rank, &ly->q_a_norm)) return -1;
        if (LIN(KB_Q_B, H * (dn + dr), c->q_lora_rank, &ly->q_b)) return -1;
    } else {
        if (LIN(KB_Q, H * (dn + dr), D, &ly->q)) return -1;
    }
    if (LIN(KB_KV_A, r + dr, D, &ly->kv_a)) return -1;
    if (VEC(KB_KV_A_NORM, r, &ly->kv_a_norm)) return -1;
    if (ops->kv_b(b, L, NAME(KB_KV_B), H * (dn + dv), r, &ly->kv_b)) return -1;
    if (LIN(KB_O, D, H * dv, &ly->o)) return -1;
    ly->is_moe = k2c_config_is_moe_layer(c, L);
    if (!ly->is_moe) {
        int I = c->intermediate_size;
        if (LIN(KB_GATE, I, D, &ly->gate)) return -1;
        if (LIN(KB_UP, I, D, &ly->up)) return -1;
        if (LIN(KB_DOWN, D, I, &ly->down)) return -1;
        return 0;
    }
    int E = c->n_routed_experts, I = c->moe_intermediate_size;
    if (LIN(KB_ROUTER, E, D, &ly->router)) return -1;
    if (ops->has(b, NAME(KB_ROUTER_BIAS))) {
        if (ops->vec(b, n, E, &ly->router_bias)) return -1;
    } else if (strcmp(c->model_type, "kimi_k2") == 0 || c->n_group > 1) {
        k2c_seterr("%s: missing tensor '%s' (the router's score correction bias)", ops->where, n);
        return -1;
    }
    if (c->n_shared_experts) {
        int IS = I * c->n_shared_experts;
        if (LIN(KB_SH_GATE, IS, D, &ly->gate)) return -1;
        if (LIN(KB_SH_UP, IS, D, &ly->up)) return -1;
        if (LIN(KB_SH_DOWN, D, IS, &ly->down)) return -1;
    }
    ly->exp_gate = own(m, 3 * (size_t)E * sizeof(k2c_linear));
    if (!ly->exp_gate) { k2c_seterr("out of memory"); return -1; }
    ly->exp_up = ly->exp_gate + E;
    ly->exp_down = ly->exp_up + E;
    if (ops->experts(b, NAME(KB_EXP_GATE), E, I, D, ly->exp_gate)) return -1;
    if (ops->experts(b, NAME(KB_EXP_UP), E, I, D, ly->exp_up)) return -1;
    if (ops->experts(b, NAME(KB_EXP_DOWN), E, D, I, ly->exp_down)) return -1;
#undef NAME
#undef LIN
#undef VEC
    return 0;
}

int k2c_model_begin(k2c_model *m, const k2c_model_opts *o) {
    memset(m, 0, sizeof *m);
    if (k2c_kctx_init(&m->cx, o->simd, o->threads, o->bf16_prompt) != 0) return -1;
    m->cx.exact = o->exact != 0;
    if (o->cache_type < K2C_CACHE_F32 || o->cache_type > K2C_CACHE_Q8_0) {
        k2c_seterr("unknown cache type %d (K2C_CACHE_F32, _BF16 or _Q8_0)", o->cache_type);
        return -1;
    }
    m->cache_type = o->cache_type;
    if (!(m->tune = k2c_model_own(m, sizeof *m->tune))) { k2c_seterr("out of memory"); return -1; }
    k2c_tune_init(m->tune, &m->cx, o->adapt_threads);
    return 0;
}

int k2c_bind_model(const k2c_bind_ops *ops, void *b, k2c_model *m, const k2c_model_opts *o) {
    const k2c_config *c = &m->cfg;
    int D = c->hidden_size, V = c->vocab_size;
    m->layers = own(m, (size_t)c->num_hidden_layers * sizeof *m->layers);
    m->inv_freq = own(m, (size_t)c->qk_rope_head_dim * sizeof(float));
    if (!m->layers || !m->inv_freq) { k2c_seterr("out of memory"); return -1; }
    memset(m->layers, 0, (size_t)c->num_hidden_layers * sizeof *m->layers);
    if (ops->linear(b, ops->embed, V, D, &m->embed)) return -1;
    if (m->embed.fmt == K2C_FMT_INT4 || m->embed.fmt == K2C_FMT_FP8) {
        k2c_seterr("%s: tensor '%s' must be F32/BF16/F16", ops->where, ops->embed);
        return -1;
    }
    if (c->tie_word_embeddings && !ops->has(b, ops->head)) m->head = m->embed;
    else if (ops->linear(b, ops->head, V, D, &m->head)) return -1;
    if (ops->vec(b, ops->final_norm, D, &m->final_norm)) return -1;
    double t0 = k2c_now();
    for (int L = 0; L < c->num_hidden_layers; L++) {
        if (bind_layer(ops, b, m, L)) return -1;
        if (c->num_hidden_layers >= 8 && k2c_now() - t0 > 1.0 && isatty(2) && L % 4 == 3)
            k2c_log("\rloading layer %d/%d", L + 1, c->num_hidden_layers);
    }
    k2c_rope_init(c, m->inv_freq, &m->rope_mscale, &m->attn_scale);
    k2c_model_set_ubatch(m, o->ubatch);
    return 0;
}

/* ------------------------------------------------------------------ the absorbed attention's forms of kv_b */
/* Layer L's kv_b_qt (model.h): the key rows of each head, dequantized and transposed into BF16 [H * r, dn]. */
static int kvb_key_t(k2c_model *m, int L, const char *where) {
    const k2c_config *c = &m->cfg;
    const k2c_linear *kv = &m->layers[L].kv_b;
    int H = c->num_attention_heads, dn = c->qk_nope_head_dim, kvd = dn + c->v_head_dim, r = c->kv_lora_rank;
    uint16_t *t = own(m, (size_t)H * r * dn * sizeof *t);
    float *row = malloc((size_t)r * sizeof *row);
    if (!t || !row) {
        free(row);
        k2c_seterr("%s: out of memory for layer %d's transposed kv_b keys (%d x %d)", where, L, H * r, dn);
        return -1;
    }
    for (int h = 0; h < H; h++)
        for (int k = 0; k < dn; k++) {
            k2c_linear_dequant_rows(kv, h * kvd + k, 1, row);
            for (int j = 0; j < r; j++) t[((size_t)h * r + j) * dn + k] = k2c_f32_to_bf16(row[j]);
        }
    free(row);
    m->layers[L].kv_b_qt = (k2c_linear){.fmt = K2C_FMT_BF16, .rows = H * r, .cols = dn, .w = t, .cx = &m->cx};
    return 0;
}

/* Which form each layer's absorbed attention reads kv_b in (model.h, mla.c), by kv_b's format:
 *   BF16: kv_b_qt, the keys transposed (the same values: exact mode too), values as stored;
 *   the GGUF block formats: outside exact mode the same (BF16 keys: a rounding like the int8 inputs of that
 *     mode); in exact mode kv_b_abs, an fp32 copy;
 *   FP8, F16: rows converted per step through their kernels. Their normal mode is exact (fp32 inputs), and BF16
 *     keys moved the tiny golden FP8 model's logits by 0.15 x max|logit| (its chaotic routing amplifies any
 *     rounding), far outside the golden tolerance;
 *   F32 (kv_b rebuilt from a GGUF's attn_k_b + attn_v_b, or stored so): as stored; a split file's own
 *     tensors, bound as kv_b_qt / kv_b_v by model_gguf.c outside exact mode, are left as they are.
 * Not for tools that only read the weights (stored_only), nor on an expert-parallel rank > 0 (it runs no
 * attention and touches only its experts' pages). */
int k2c_model_derive_absorbed(k2c_model *m, const k2c_model_opts *o, const char *where) {
    if (o->stored_only || (o->comm && o->comm->size > 1 && o->comm->rank != 0)) return 0;
    for (int L = 0; L < m->cfg.num_hidden_layers; L++) {
        k2c_layer *ly = &m->layers[L];
        const k2c_linear *kv = &ly->kv_b;
        int block = k2c_wfmt_is_block(kv->fmt);
        if (ly->kv_b_qt.w || !(block || kv->fmt == K2C_FMT_BF16)) continue;
        if (kv->fmt == K2C_FMT_BF16 || !m->cx.exact) {
            if (kvb_key_t(m, L, where)) return -1;
            continue;
        }
        float *w = own(m, (size_t)kv->rows * kv->cols * sizeof *w);
        if (!w) { k2c_seterr("%s: out of memory for layer %d's fp32 kv_b (%d x %d)", where, L, kv->rows, kv->cols); return -1; }
        k2c_linear_dequant_rows(kv, 0, kv->rows, w);
        ly->kv_b_abs = (k2c_linear){.fmt = K2C_FMT_F32, .rows = kv->rows, .cols = kv->cols, .w = w, .cx = &m->cx};
    }
    return 0;
}

/* ------------------------------------------------------------------ Hugging Face names */
static int hf_linear(void *b, const char *name, int rows, int cols, k2c_linear *l) { return bind_linear(b, name, rows, cols, l); }
static int hf_vec(void *b, const char *name, int n, const float **out) { return bind_vec(b, name, n, out); }
static int hf_has(void *b, const char *name) {
    char w[512];
    snprintf(w, sizeof w, "%s.weight", name);
    return find(b, name) || find(b, w);
}
static int hf_kv_b(void *b, int L, const char *name, int rows, int cols, k2c_linear *l) {
    (void)L;
    return bind_linear(b, name, rows, cols, l);
}
/* name: "model.layers.N.mlp.experts.%d.gate_proj" (the expert number left to fill in) */
static int hf_experts(void *b, const char *name, int E, int rows, int cols, k2c_linear *ls) {
    char n[512];
    for (int e = 0; e < E; e++) {
        snprintf(n, sizeof n, name, e);
        if (bind_linear(b, n, rows, cols, &ls[e])) return -1;
    }
    return 0;
}

static const k2c_bind_ops HF_OPS = {
    .embed = "model.embed_tokens", .head = "lm_head", .final_norm = "model.norm.weight",
    .layer_fmt = "model.layers.%d.",
    .names = {
        [KB_ATTN_NORM] = "input_layernorm.weight", [KB_FFN_NORM] = "post_attention_layernorm.weight",
        [KB_Q_A] = "self_attn.q_a_proj", [KB_Q_A_NORM] = "self_attn.q_a_layernorm.weight",
        [KB_Q_B] = "self_attn.q_b_proj", [KB_Q] = "self_attn.q_proj", [KB_KV_A] = "self_attn.kv_a_proj_with_mqa",
        [KB_KV_A_NORM] = "self_attn.kv_a_layernorm.weight", [KB_KV_B] = "self_attn.kv_b_proj",
        [KB_O] = "self_attn.o_proj", [KB_GATE] = "mlp.gate_proj", [KB_UP] = "mlp.up_proj", [KB_DOWN] = "mlp.down_proj",
        [KB_ROUTER] = "mlp.gate", [KB_ROUTER_BIAS] = "mlp.gate.e_score_correction_bias",
        [KB_SH_GATE] = "mlp.shared_experts.gate_proj", [KB_SH_UP] = "mlp.shared_experts.up_proj",
        [KB_SH_DOWN] = "mlp.shared_experts.down_proj", [KB_EXP_GATE] = "mlp.experts.%d.gate_proj",
        [KB_EXP_UP] = "mlp.experts.%d.up_proj", [KB_EXP_DOWN] = "mlp.experts.%d.down_proj",
    },
    .linear = hf_linear, .vec = hf_vec, .has = hf_has, .kv_b = hf_kv_b, .experts = hf_experts,
};

int k2c_model_load(k2c_model *m, const char *dir) { return k2c_model_load_opts(m, dir, NULL); }

static int load_one(k2c_model *m, const char *dir, const k2c_model_opts *o) {
    char *gguf = NULL;
    int is_gguf = k2c_gguf_locate(dir, &gguf);
    if (is_gguf < 0) return -1;
    if (is_gguf) {
        int rc = k2c_model_load_gguf(m, gguf, o, 0);
        free(gguf);
        return rc;
    }
    /* from k2c_model_begin on the model owns memory (its tuner), so every failure below frees it */
    if (k2c_model_begin(m, o) != 0 || k2c_config_load(&m->cfg, dir) != 0 || k2c_st_open_mode(&m->st, dir, o->load) != 0) {
        k2c_model_free(m);
        return -1;
    }
    binder b = {m, dir, ""};
    if (!find(&b, "model.embed_tokens.weight")) {
        b.prefix = "language_model.";
        if (!find(&b, "model.embed_tokens.weight")) b.prefix = "";
    }
    k2c_bind_ops ops = HF_OPS;
    ops.where = dir;
    if (k2c_bind_model(&ops, &b, m, o) != 0 || k2c_model_derive_absorbed(m, o, dir) != 0) {
        k2c_model_free(m);
        return -1;
    }
    return 0;
}

int k2c_model_load_opts(k2c_model *m, const char *dir, const k2c_model_opts *o) {
    k2c_model_opts dflt = {0};
    if (!o) o = &dflt;
    if (!o->comm || o->comm->size <= 1) return load_one(m, dir, o);
    /* Expert parallelism: the files are mapped, not copied, unless the caller insists, so that a rank's
     * resident memory is the pages it reads (its experts, and on rank 0 the dense part), not the whole model. */
    k2c_model_opts eo = *o;
    if (eo.load == K2C_LOAD_AUTO) eo.load = K2C_LOAD_MMAP;
    int rc = load_one(m, dir, &eo);
    return k2c_ep_handshake(m, &eo, rc, dir);
}

void k2c_model_free(k2c_model *m) {
    k2c_ep_close(m);
    for (int i = 0; i < m->nowned; i++) free(m->owned[i]);
    free(m->owned);
    k2c_st_close(&m->st);
    k2c_gguf_close(&m->gg);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ the public face (k2c.h) */
void k2c_model_opts_default(k2c_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->load = K2C_LOAD_AUTO;
    const char *simd = getenv("K2C_SIMD"), *pp = getenv("K2C_PROMPT_PRECISION");
    if (simd && *simd) o->simd = simd;
    const char *ct = getenv("K2C_CACHE_TYPE");
    if (ct && !strcmp(ct, "bf16")) o->cache_type = K2C_CACHE_BF16;
    if (ct && !strcmp(ct, "q8_0")) o->cache_type = K2C_CACHE_Q8_0;
    const char *at = getenv("K2C_ADAPT_THREADS");
    o->adapt_threads = !(at && !strcmp(at, "0"));
    const char *ex = getenv("K2C_EXACT");
    o->exact = ex && *ex && strcmp(ex, "0") != 0;
    /* "bf16": round prompt inputs to BF16 for vdpbf16ps, or AMX tiles where the CPU has them ("bf16-avx512":
     * never AMX). Opt-in: on the Xeon we measured vdpbf16ps was no faster than the fp32 kernel (it issues at
     * half the rate of FMA there), and fp32 inputs are exact; AMX is another matter (BENCHMARKS).
     * Asked for on a CPU without AVX512-BF16 it is ignored, not an error: the variable is a preference. */
    int bfp = pp && !strcmp(pp, "bf16") ? 1 : pp && !strcmp(pp, "bf16-avx512") ? 2 : 0;
    o->bf16_prompt = bfp && k2c_cpu_has_avx512bf16() && (!o->simd || !strcmp(o->simd, "avx512") || !strcmp(o->simd, "auto"))
                         ? bfp : 0;
}

k2c_model *k2c_model_open(const char *dir, const k2c_model_opts *o) {
    k2c_model *m = malloc(sizeof *m);
    if (!m) { k2c_seterr("out of memory"); return NULL; }
    if (k2c_model_load_opts(m, dir, o) != 0) { free(m); return NULL; }
    return m;
}

void k2c_model_close(k2c_model *m) {
    if (!m) return;
    k2c_model_free(m);
    free(m);
}

const k2c_config *k2c_model_config(const k2c_model *m) { return &m->cfg; }

int k2c_model_set_threads(k2c_model *m, int n) {
    m->cx.nthreads = m->cx.team = n > 0 ? n : omp_get_max_threads();
    if (m->tune) k2c_tune_init(m->tune, &m->cx, m->tune->on);
    return 0;
}

int k2c_model_set_ubatch(k2c_model *m, int n) {
    m->ubatch = n > 0 ? n : K2C_UBATCH_DEFAULT;
    return 0;
}

/* Weight bytes one decode step reads: attention, dense FFN or shared experts, router, the top-k routed
 * experts (assuming each expert of a layer is the same size), the head row block and one embedding row. */
static double decode_bytes(const k2c_model *m) {
    const k2c_config *c = &m->cfg;
    double b = (double)k2c_linear_bytes(&m->head) + (double)c->hidden_size * 2;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const k2c_layer *ly = &m->layers[l];
        const k2c_linear *att[] = {&ly->q_a, &ly->q_b, &ly->q, &ly->kv_a, &ly->o};
        for (int i = 0; i < 5; i++) if (att[i]->w) b += (double)k2c_linear_bytes(att[i]);
        /* kv_b as the absorbed attention reads it (k2c_model_derive_absorbed) */
        if (ly->kv_b_qt.w)
            b += (double)k2c_linear_bytes(&ly->kv_b_qt) +
                 (ly->kv_b_v.w ? (double)k2c_linear_bytes(&ly->kv_b_v)
                               : (double)k2c_linear_bytes(&ly->kv_b) * c->v_head_dim / (c->qk_nope_head_dim + c->v_head_dim));
        else b += (double)k2c_linear_bytes(ly->kv_b_abs.w ? &ly->kv_b_abs : &ly->kv_b);
        if (ly->gate.w) b += (double)(k2c_linear_bytes(&ly->gate) + k2c_linear_bytes(&ly->up) + k2c_linear_bytes(&ly->down));
        if (ly->is_moe) {
            b += (double)k2c_linear_bytes(&ly->router);
            b += (double)c->num_experts_per_tok *
                 (double)(k2c_linear_bytes(&ly->exp_gate[0]) + k2c_linear_bytes(&ly->exp_up[0]) + k2c_linear_bytes(&ly->exp_down[0]));
        }
    }
    return b;
}

void k2c_model_get_info(const k2c_model *m, k2c_model_info *info) {
    memset(info, 0, sizeof *info);
    info->nfiles = m->gguf ? m->gg.nfiles : m->st.nfiles;
    info->ntensors = m->gguf ? m->gg.ntensors : m->st.ntensors;
    info->gguf = m->gguf;
    for (int i = 0; i < m->gg.ntensors; i++) {
        const k2c_gguf_tensor *t = &m->gg.tensors[i];
        if (t->type >= 0 && t->type < K2C_GGML_TYPES) info->bytes_by_ggml[t->type] += t->nbytes;
        info->bytes += t->nbytes;
    }
    for (int i = 0; i < m->st.ntensors; i++) {
        info->bytes_by_dtype[m->st.tensors[i].dtype] += m->st.tensors[i].nbytes;
        info->bytes += m->st.tensors[i].nbytes;
    }
    info->decode_bytes = decode_bytes(m);
    info->attn_scale = m->attn_scale;
    info->kernels = m->cx.k->name;
    info->ubatch = m->ubatch > 0 ? m->ubatch : K2C_UBATCH_DEFAULT;
    info->prompt_products = m->cx.amx ? "bf16 (AMX)" : m->cx.bf16_prompt ? "bf16 (AVX512-BF16)" : "fp32";
    info->exact = m->cx.exact;
    info->cache_type = m->cache_type;
    info->threads = m->cx.nthreads;
    info->threads_now = m->tune && m->tune->on ? m->tune->cand[m->tune->cur] : m->cx.nthreads;
    info->tune_switches = m->tune ? m->tune->switches : 0;
}

/* Parameters: total and active per token (embeddings and head included; routed experts count k of E). */
void k2c_model_counts(const k2c_config *c, double *total, double *active) {
    double D = c->hidden_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim;
    double dv = c->v_head_dim, r = c->kv_lora_rank, V = c->vocab_size;
    double attn = (c->q_lora_rank ? c->q_lora_rank * D + c->q_lora_rank + H * (dn + dr) * c->q_lora_rank : H * (dn + dr) * D)
                  + (r + dr) * D + r + H * (dn + dv) * r + D * H * dv + 2 * D;
    double dense = 3 * D * c->intermediate_size;
    double expert = 3 * D * c->moe_intermediate_size;
    double shared = expert * c->n_shared_experts + c->n_routed_experts * D + c->n_routed_experts;
    double t = V * D * (c->tie_word_embeddings ? 1 : 2) + D, a = t;
    for (int L = 0; L < c->num_hidden_layers; L++) {
        t += attn; a += attn;
        if (k2c_config_is_moe_layer(c, L)) {
            t += shared + expert * c->n_routed_experts;
            a += shared + expert * c->num_experts_per_tok;
        } else {
            t += dense; a += dense;
        }
    }
    *total = t;
    *active = a;
}
