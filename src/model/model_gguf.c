/* Model loading from GGUF: the deepseek2 architecture as llama.cpp and ik_llama.cpp write it. The config
 * comes from the deepseek2.* metadata (core/gguf.c); each tensor is bound in its stored ggml type, checked
 * against the config's shape. GGUF gives dimensions innermost first: a matrix [rows, cols] has ne = [cols,
 * rows], and the stacked experts ne = [cols, rows, E], so expert e is a block of rows inside one tensor.
 *
 *   token_embd, output_norm, output (absent: tied to token_embd)
 *   blk.N.attn_norm, ffn_norm, attn_q_a, attn_q_a_norm, attn_q_b (or attn_q), attn_kv_a_mqa, attn_kv_a_norm,
 *     attn_kv_b (or the split attn_k_b [H*r, dn] = per head kv_b's key rows transposed, attn_v_b [H*dv, r]),
 *     attn_output, ffn_gate / ffn_up / ffn_down (dense), ffn_gate_inp (router), exp_probs_b.bias,
 *     ffn_{gate,up,down}_exps (routed experts), ffn_{gate,up,down}_shexp (shared experts)
 *
 * Which tensors a model holds and the checks between them are model.c's (k2c_bind_model, shared with the Hugging
 * Face names); this file gives llama.cpp's names and how a GGUF tensor becomes a k2c_linear.
 *
 * The conversion keeps q/k in the Hugging Face layout (no RoPE permutation for deepseek2), which the golden
 * logits confirm. Norm gains and the router bias become fp32 copies; kv_b built from attn_k_b + attn_v_b is
 * an fp32 copy of the dequantized halves (2 GB for Kimi-K2), for the prompt's expanded attention. The absorbed
 * attention reads every row of kv_b each step, and gets its own forms (model.h): dequantizing them through the
 * scalar block decoders each step took 2.4 ms of a Moonlight-shaped Q4_K_M layer's attention, and reading an fp32
 * copy (kv_b_abs, now exact mode only) was 7% of a Q8_0 decode step's samples at 2 threads; outside exact mode
 * the value rows are read as stored and the key rows from attn_k_b or a transposed BF16 copy (kv_b_qt). */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    k2c_model *m;
    const char *file;
} gbinder;

static const k2c_gguf_tensor *gfind(gbinder *b, const char *name) { return k2c_gguf_find(&b->m->gg, name); }

static const k2c_gguf_tensor *need(gbinder *b, const char *name) {
    const k2c_gguf_tensor *t = gfind(b, name);
    if (!t) k2c_seterr("%s: missing tensor '%s'", b->file, name);
    return t;
}

static const char *tname(const k2c_gguf_tensor *t) {
    const char *n = k2c_ggml_type_name(t->type);
    return n ? n : "?";
}

static int fmt_of(gbinder *b, const k2c_gguf_tensor *t, k2c_wfmt *f) {
    (void)b;
    if (k2c_wfmt_from_ggml(t->type, f) != 0) {
        k2c_seterr("%s: tensor '%s': type %s has no kernel in k2c (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q6_0, Q8_0, "
                   "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, IQ1_S/M, IQ2_XXS/XS/S, IQ3_XXS/S)", t->file, t->name, tname(t));
        return -1;
    }
    return 0;
}

/* F32/F16/BF16 rows are read as arrays of their element: data must sit on an element boundary (GGUF aligns
 * every tensor to 32 bytes; a file that does not gets a copy). Block formats are read bytewise. */
static const void *elem_aligned(gbinder *b, const void *p, size_t nbytes, k2c_wfmt f) {
    size_t es = f == K2C_FMT_F32 ? 4 : (f == K2C_FMT_F16 || f == K2C_FMT_BF16) ? 2 : 1;
    if ((uintptr_t)p % es == 0) return p;
    void *c = k2c_model_own(b->m, nbytes);
    if (c) memcpy(c, p, nbytes);
    else k2c_seterr("out of memory");
    return c;
}

static int shape_err(const k2c_gguf_tensor *t, const char *want) {
    k2c_seterr("%s: tensor '%s': ne [%lld, %lld, %lld, %lld] (%dD), expected %s (ne innermost first)", t->file, t->name,
               (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], t->ndim, want);
    return -1;
}

/* A matrix [rows, cols]: ne = [cols, rows]. */
static int glinear(gbinder *b, const char *name, int rows, int cols, k2c_linear *l) {
    const k2c_gguf_tensor *t = need(b, name);
    char want[64];
    memset(l, 0, sizeof *l);
    if (!t) return -1;
    snprintf(want, sizeof want, "[%d, %d]", cols, rows);
    if (t->ndim != 2 || t->ne[0] != cols || t->ne[1] != rows) return shape_err(t, want);
    if (fmt_of(b, t, &l->fmt)) return -1;
    l->rows = rows;
    l->cols = cols;
    l->cx = &b->m->cx;
    l->w = elem_aligned(b, t->data, t->nbytes, l->fmt);
    return l->w ? 0 : -1;
}

/* Stacked experts: ne = [cols, rows, E]; expert e starts e * rows rows in. */
static int gexperts(gbinder *b, const char *name, int E, int rows, int cols, k2c_linear *ls) {
    const k2c_gguf_tensor *t = need(b, name);
    char want[80];
    if (!t) return -1;
    snprintf(want, sizeof want, "[%d, %d, %d]", cols, rows, E);
    if (t->ndim != 3 || t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != E) return shape_err(t, want);
    k2c_wfmt f;
    if (fmt_of(b, t, &f)) return -1;
    const uint8_t *base = elem_aligned(b, t->data, t->nbytes, f);
    if (!base) return -1;
    size_t eb = (size_t)rows * k2c_wfmt_row_bytes(f, cols);
    for (int e = 0; e < E; e++)
        ls[e] = (k2c_linear){.fmt = f, .rows = rows, .cols = cols, .w = base + (size_t)e * eb, .cx = &b->m->cx};
    return 0;
}

/* A vector (norm gain, router bias) as an fp32 copy: F32, F16 or BF16. */
static int gvec(gbinder *b, const char *name, int n, const float **out) {
    const k2c_gguf_tensor *t = need(b, name);
    char want[32];
    if (!t) return -1;
    snprintf(want, sizeof want, "[%d]", n);
    if (t->ndim != 1 || t->ne[0] != n) return shape_err(t, want);
    k2c_wfmt f;
    if (k2c_wfmt_from_ggml(t->type, &f) != 0 || k2c_wfmt_is_block(f)) {
        k2c_seterr("%s: tensor '%s': type %s, expected F32, F16 or BF16", t->file, t->name, tname(t));
        return -1;
    }
    float *v = k2c_model_own(b->m, (size_t)n * sizeof *v);
    if (!v) { k2c_seterr("out of memory"); return -1; }
    const uint8_t *p = t->data;
    for (int i = 0; i < n; i++) {
        if (f == K2C_FMT_F32) memcpy(&v[i], p + 4 * (size_t)i, 4);
        else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            v[i] = f == K2C_FMT_F16 ? k2c_f16_to_f32(h) : k2c_bf16_to_f32(h);
        }
        if (!isfinite(v[i])) { k2c_seterr("%s: tensor '%s': element %d is %g", t->file, t->name, i, (double)v[i]); return -1; }
    }
    *out = v;
    return 0;
}

/* kv_b [H*(dn+dv), r] in fp32 from attn_k_b (per head [r, dn]: kv_b's key rows transposed; 2-D [H*r, dn] as
 * ik_llama.cpp writes it or 3-D [H, r, dn] as llama.cpp does) and attn_v_b (per head [dv, r]). */
static int kv_b_from_split(gbinder *b, int L, int H, int dn, int dv, int r, k2c_linear *kvb) {
    char nk[96], nv[96], want[96];
    snprintf(nk, sizeof nk, "blk.%d.attn_k_b.weight", L);
    snprintf(nv, sizeof nv, "blk.%d.attn_v_b.weight", L);
    const k2c_gguf_tensor *tk = need(b, nk), *tv = tk ? need(b, nv) : NULL;
    if (!tv) return -1;
    int k2 = tk->ndim == 2 && tk->ne[0] == dn && tk->ne[1] == (int64_t)H * r;
    int k3 = tk->ndim == 3 && tk->ne[0] == dn && tk->ne[1] == r && tk->ne[2] == H;
    snprintf(want, sizeof want, "[%d, %d] or [%d, %d, %d]", dn, H * r, dn, r, H);
    if (!k2 && !k3) return shape_err(tk, want);
    int v2 = tv->ndim == 2 && tv->ne[0] == r && tv->ne[1] == (int64_t)H * dv;
    int v3 = tv->ndim == 3 && tv->ne[0] == r && tv->ne[1] == dv && tv->ne[2] == H;
    snprintf(want, sizeof want, "[%d, %d] or [%d, %d, %d]", r, H * dv, r, dv, H);
    if (!v2 && !v3) return shape_err(tv, want);
    k2c_linear lk = {.rows = H * r, .cols = dn, .cx = &b->m->cx}, lv = {.rows = H * dv, .cols = r, .cx = &b->m->cx};
    if (fmt_of(b, tk, &lk.fmt) || fmt_of(b, tv, &lv.fmt)) return -1;
    if (!(lk.w = elem_aligned(b, tk->data, tk->nbytes, lk.fmt)) || !(lv.w = elem_aligned(b, tv->data, tv->nbytes, lv.fmt)))
        return -1;
    int kvd = dn + dv;
    if (!b->m->cx.exact) {      /* the absorbed attention (decode, short chunks) reads these as stored (model.h) */
        b->m->layers[L].kv_b_qt = lk;
        b->m->layers[L].kv_b_v = lv;
    }
    float *w = k2c_model_own(b->m, (size_t)H * kvd * r * sizeof *w), *row = malloc((size_t)(dn > r ? dn : r) * sizeof *row);
    if (!w || !row) { free(row); k2c_seterr("out of memory"); return -1; }
    for (int h = 0; h < H; h++) {
        for (int c = 0; c < r; c++) {               /* k_b row (h, c) is column c of kv_b's key rows of head h */
            k2c_linear_dequant_rows(&lk, h * r + c, 1, row);
            for (int i = 0; i < dn; i++) w[((size_t)h * kvd + i) * r + c] = row[i];
        }
        k2c_linear_dequant_rows(&lv, h * dv, dv, w + ((size_t)h * kvd + dn) * r);
    }
    free(row);
    *kvb = (k2c_linear){.fmt = K2C_FMT_F32, .rows = H * kvd, .cols = r, .w = w, .cx = &b->m->cx};
    return 0;
}

/* ------------------------------------------------------------------ llama.cpp's names */
typedef struct { gbinder g; int kv_from_split; } gctx;

static int op_linear(void *b, const char *name, int rows, int cols, k2c_linear *l) { return glinear(&((gctx *)b)->g, name, rows, cols, l); }
static int op_vec(void *b, const char *name, int n, const float **out) { return gvec(&((gctx *)b)->g, name, n, out); }
static int op_has(void *b, const char *name) { return gfind(&((gctx *)b)->g, name) != NULL; }
static int op_experts(void *b, const char *name, int E, int rows, int cols, k2c_linear *ls) {
    return gexperts(&((gctx *)b)->g, name, E, rows, cols, ls);
}
/* attn_kv_b where stored (and not overridden), else rebuilt from attn_k_b + attn_v_b */
static int op_kv_b(void *b, int L, const char *name, int rows, int cols, k2c_linear *l) {
    gctx *x = b;
    const k2c_config *c = &x->g.m->cfg;
    if (!x->kv_from_split && gfind(&x->g, name)) return glinear(&x->g, name, rows, cols, l);
    return kv_b_from_split(&x->g, L, c->num_attention_heads, c->qk_nope_head_dim, c->v_head_dim, c->kv_lora_rank, l);
}

static const k2c_bind_ops GGUF_OPS = {
    .embed = "token_embd.weight", .head = "output.weight", .final_norm = "output_norm.weight",
    .layer_fmt = "blk.%d.",
    .names = {
        [KB_ATTN_NORM] = "attn_norm.weight", [KB_FFN_NORM] = "ffn_norm.weight", [KB_Q_A] = "attn_q_a.weight",
        [KB_Q_A_NORM] = "attn_q_a_norm.weight", [KB_Q_B] = "attn_q_b.weight", [KB_Q] = "attn_q.weight",
        [KB_KV_A] = "attn_kv_a_mqa.weight", [KB_KV_A_NORM] = "attn_kv_a_norm.weight", [KB_KV_B] = "attn_kv_b.weight",
        [KB_O] = "attn_output.weight", [KB_GATE] = "ffn_gate.weight", [KB_UP] = "ffn_up.weight",
        [KB_DOWN] = "ffn_down.weight", [KB_ROUTER] = "ffn_gate_inp.weight", [KB_ROUTER_BIAS] = "exp_probs_b.bias",
        [KB_SH_GATE] = "ffn_gate_shexp.weight", [KB_SH_UP] = "ffn_up_shexp.weight", [KB_SH_DOWN] = "ffn_down_shexp.weight",
        [KB_EXP_GATE] = "ffn_gate_exps.weight", [KB_EXP_UP] = "ffn_up_exps.weight", [KB_EXP_DOWN] = "ffn_down_exps.weight",
    },
    .linear = op_linear, .vec = op_vec, .has = op_has, .kv_b = op_kv_b, .experts = op_experts,
};

int k2c_model_load_gguf(k2c_model *m, const char *path, const k2c_model_opts *o, int kv_from_split) {
    k2c_model_opts dflt = {0};
    if (!o) o = &dflt;
    if (k2c_model_begin(m, o) != 0) goto fail;
    m->gguf = 1;
    if (k2c_gguf_open(&m->gg, path, o->load) != 0) goto fail;
    if (k2c_gguf_config(&m->gg, &m->cfg) != 0) goto fail;
    gctx b = {{m, path}, kv_from_split};
    k2c_bind_ops ops = GGUF_OPS;
    ops.where = path;
    if (k2c_bind_model(&ops, &b, m, o) != 0) goto fail;
    if (k2c_model_derive_absorbed(m, o, path)) goto fail;
    return 0;
fail:
    k2c_model_free(m);
    return -1;
}
