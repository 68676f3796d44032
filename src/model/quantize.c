/* k2c quantize: any checkpoint k2c runs (a Hugging Face folder in F32/BF16/FP8 blocks/INT4 groups, or a GGUF)
 * to a deepseek2 GGUF in llama.cpp's conventions, with the quantizers of kernels/quantize.c.
 *
 * The input is loaded as a k2c_model with every file memory-mapped (nothing read up front): each of its
 * weights is already a k2c_linear in its stored format, so one path reads every input format. The output is
 * written by core/gguf_write.c, one tensor at a time and within a tensor a chunk of rows at a time (at most
 * CHUNK_FLOATS fp32 values): dequantized from the input, quantized in parallel over rows, appended. Peak memory
 * is a chunk of fp32 rows and its quantized bytes, whatever the model's size.
 *
 * Names and metadata are what model/model_gguf.c reads (and llama.cpp / ik_llama.cpp): token_embd, output_norm,
 * output, blk.N.{attn_norm, ffn_norm, attn_q_a, attn_q_a_norm, attn_q_b | attn_q, attn_kv_a_mqa, attn_kv_a_norm,
 * attn_kv_b, attn_k_b, attn_v_b, attn_output, ffn_{gate,up,down} | ffn_gate_inp, exp_probs_b.bias,
 * ffn_{gate,up,down}_exps (stacked [cols, rows, E]), ffn_{gate,up,down}_shexp}. attn_k_b / attn_v_b are the
 * split halves of kv_b that ik_llama.cpp and newer llama.cpp converters add ([H*r, dn]: per head the key rows
 * transposed; [H*dv, r]); model_gguf.c reads attn_kv_b when present and rebuilds it from the halves otherwise.
 *
 * Types per tensor: a recipe (RECIPES below) names the type of each tensor class, --type-* override a class,
 * norms / the router / exp_probs_b stay F32. A type whose block does not divide a row falls back as
 * llama-quantize does (a 256-block K/IQ type to Q5_0 / Q5_1 / Q8_0 / IQ4_NL by bits; a 32-block type to F16),
 * with a log line naming the tensor. */
#include "model/model.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_FLOATS (4u << 20)     /* fp32 values dequantized per step (16 MB) */

/* ------------------------------------------------------------------ types and recipes */
/* the tensor classes a recipe gives types to */
enum { C_EMBD, C_OUTPUT, C_ATTN_Q, C_ATTN_KVA, C_ATTN_KVB, C_ATTN_KB, C_ATTN_VB, C_ATTN_OUT, C_FFN_GATE_UP,
       C_FFN_DOWN, C_SHEXP_GATE_UP, C_SHEXP_DOWN, C_EXPS_GATE_UP, C_EXPS_DOWN, C_F32, C_NCLASS };

typedef struct { const char *name; k2c_wfmt f; } tname;
static const tname TYPES[] = {
    {"F32", K2C_FMT_F32}, {"F16", K2C_FMT_F16}, {"BF16", K2C_FMT_BF16}, {"Q8_0", K2C_FMT_Q8_0}, {"Q4_0", K2C_FMT_Q4_0},
    {"Q4_1", K2C_FMT_Q4_1}, {"Q5_0", K2C_FMT_Q5_0}, {"Q5_1", K2C_FMT_Q5_1}, {"Q2_K", K2C_FMT_Q2_K},
    {"Q3_K", K2C_FMT_Q3_K}, {"Q4_K", K2C_FMT_Q4_K}, {"Q5_K", K2C_FMT_Q5_K}, {"Q6_K", K2C_FMT_Q6_K},
    {"IQ4_NL", K2C_FMT_IQ4_NL}, {"IQ4_XS", K2C_FMT_IQ4_XS}, {"Q6_0", K2C_FMT_Q6_0},
};
#define NTYPES ((int)(sizeof TYPES / sizeof TYPES[0]))
#define TYPE_LIST "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, Q6_0"

static int parse_type(const char *s, k2c_wfmt *f) {
    for (int i = 0; i < NTYPES; i++)
        if (!strcasecmp(s, TYPES[i].name)) { *f = TYPES[i].f; return 0; }
    return -1;
}

/* The recipes: what llama.cpp's llama-quantize mixes do, restated for deepseek2's tensors (its rules, not its
 * code): the output head a step up (Q6_K), the small attention projections every token and head reads
 * (attn_kv_a_mqa, attn_kv_b, attn_k_b) higher still, attn_output one step up, and ffn_down (dense, shared and
 * routed experts) raised on the "more bits" layers: the first and last eighth and every third between
 * (MORE below). Columns: base (everything not named), embd, output, kv_a/kv_b/k_b, attn_output, ffn_down on
 * MORE layers, ffn_down elsewhere. A plain type name (Q4_K, IQ4_XS, ...) is that type everywhere (llama-quantize
 * --pure) except that the norms, router and exp_probs_b stay F32.
 *
 *   recipe   base  embd  output kv_a/kv_b/k_b attn_output ffn_down(MORE) ffn_down  file_type
 *   Q2_K     Q2_K  Q2_K  Q6_K   Q4_K          Q3_K        Q4_K           Q3_K      10
 *   Q3_K_M   Q3_K  Q3_K  Q6_K   Q6_K          Q4_K        Q5_K           Q4_K      12
 *   Q4_K_M   Q4_K  Q4_K  Q6_K   Q8_0          Q5_K        Q6_K           Q4_K      15
 *   Q6_K     Q6_K  Q6_K  Q6_K   Q8_0          Q6_K        Q6_K           Q6_K      18
 *   Q8_0     Q8_0  Q8_0  Q8_0   Q8_0          Q8_0        Q8_0           Q8_0       7 */
typedef struct { const char *name; k2c_wfmt base, embd, output, kv, attn_out, down_more, down; int file_type; } recipe;
static const recipe RECIPES[] = {
    {"Q2_K", K2C_FMT_Q2_K, K2C_FMT_Q2_K, K2C_FMT_Q6_K, K2C_FMT_Q4_K, K2C_FMT_Q3_K, K2C_FMT_Q4_K, K2C_FMT_Q3_K, 10},
    {"Q3_K_M", K2C_FMT_Q3_K, K2C_FMT_Q3_K, K2C_FMT_Q6_K, K2C_FMT_Q6_K, K2C_FMT_Q4_K, K2C_FMT_Q5_K, K2C_FMT_Q4_K, 12},
    {"Q4_K_M", K2C_FMT_Q4_K, K2C_FMT_Q4_K, K2C_FMT_Q6_K, K2C_FMT_Q8_0, K2C_FMT_Q5_K, K2C_FMT_Q6_K, K2C_FMT_Q4_K, 15},
    {"Q6_K", K2C_FMT_Q6_K, K2C_FMT_Q6_K, K2C_FMT_Q6_K, K2C_FMT_Q8_0, K2C_FMT_Q6_K, K2C_FMT_Q6_K, K2C_FMT_Q6_K, 18},
    {"Q8_0", K2C_FMT_Q8_0, K2C_FMT_Q8_0, K2C_FMT_Q8_0, K2C_FMT_Q8_0, K2C_FMT_Q8_0, K2C_FMT_Q8_0, K2C_FMT_Q8_0, 7},
};
#define NRECIPES ((int)(sizeof RECIPES / sizeof RECIPES[0]))

/* llama.cpp's general.file_type of a plain type */
static int file_type_of(k2c_wfmt f) {
    switch (f) {
    case K2C_FMT_F32: return 0;     case K2C_FMT_F16: return 1;     case K2C_FMT_Q4_0: return 2;
    case K2C_FMT_Q4_1: return 3;    case K2C_FMT_Q8_0: return 7;    case K2C_FMT_Q5_0: return 8;
    case K2C_FMT_Q5_1: return 9;    case K2C_FMT_Q2_K: return 10;   case K2C_FMT_Q3_K: return 12;
    case K2C_FMT_Q4_K: return 15;   case K2C_FMT_Q5_K: return 17;   case K2C_FMT_Q6_K: return 18;
    case K2C_FMT_IQ4_NL: return 25; case K2C_FMT_IQ4_XS: return 30; case K2C_FMT_BF16: return 32;
    case K2C_FMT_Q6_0: return 135;  /* ik_llama.cpp's LLAMA_FTYPE_MOSTLY_Q6_0 */
    default: return 0;
    }
}

/* The first and last eighth of the layers and every third one between: where llama.cpp's _M mixes spend the
 * extra bits on ffn_down. */
static int more_bits(int L, int n) { return L < n / 8 || L >= 7 * n / 8 || (L - n / 8) % 3 == 2; }

typedef struct {
    k2c_wfmt cls[C_NCLASS];
    int more_down_differs;          /* ffn_down on MORE layers has its own type */
    k2c_wfmt down_more;
    int file_type;
} typeplan;

static int make_typeplan(const k2c_quantize_opts *o, typeplan *tp) {
    const char *ty = o && o->type ? o->type : NULL;
    if (!ty) { k2c_seterr("quantize: no --type given (" TYPE_LIST ", or a recipe Q2_K, Q3_K_M, Q4_K_M, Q6_K, Q8_0)"); return -1; }
    memset(tp, 0, sizeof *tp);
    const recipe *r = NULL;
    k2c_wfmt f;
    /* a plain type (--pure) unless it names a recipe; "Q2_K", "Q6_K", "Q8_0" are recipes, as in llama-quantize */
    for (int i = 0; i < NRECIPES; i++) if (!strcasecmp(ty, RECIPES[i].name)) r = &RECIPES[i];
    if (r) {
        for (int c = 0; c < C_NCLASS; c++) tp->cls[c] = r->base;
        tp->cls[C_EMBD] = r->embd;
        tp->cls[C_OUTPUT] = r->output;
        tp->cls[C_ATTN_KVA] = tp->cls[C_ATTN_KVB] = tp->cls[C_ATTN_KB] = r->kv;
        tp->cls[C_ATTN_OUT] = r->attn_out;
        tp->cls[C_FFN_DOWN] = tp->cls[C_SHEXP_DOWN] = tp->cls[C_EXPS_DOWN] = r->down;
        tp->more_down_differs = 1;
        tp->down_more = r->down_more;
        tp->file_type = r->file_type;
    } else if (parse_type(ty, &f) == 0) {
        for (int c = 0; c < C_NCLASS; c++) tp->cls[c] = f;
        tp->file_type = file_type_of(f);
    } else {
        k2c_seterr("quantize: unknown type '%s' (types: " TYPE_LIST "; recipes: Q2_K, Q3_K_M, Q4_K_M, Q6_K, Q8_0)", ty);
        return -1;
    }
    tp->cls[C_F32] = K2C_FMT_F32;
    const char *ov[4] = {o->type_experts, o->type_attn, o->type_embd, o->type_output};
    const char *on[4] = {"--type-experts", "--type-attn", "--type-embd", "--type-output"};
    for (int i = 0; i < 4; i++) {
        if (!ov[i]) continue;
        if (parse_type(ov[i], &f) != 0) {
            k2c_seterr("quantize: %s: unknown type '%s' (" TYPE_LIST ")", on[i], ov[i]);
            return -1;
        }
        if (i == 0) { tp->cls[C_EXPS_GATE_UP] = tp->cls[C_EXPS_DOWN] = f; }
        if (i == 1) for (int c = C_ATTN_Q; c <= C_ATTN_OUT; c++) tp->cls[c] = f;
        if (i == 2) tp->cls[C_EMBD] = f;
        if (i == 3) tp->cls[C_OUTPUT] = f;
    }
    return 0;
}

/* llama-quantize's fallback for rows its block does not divide: by bits, to a 32-block type; then F16. */
static k2c_wfmt fallback(k2c_wfmt f, int cols) {
    if (cols % k2c_wfmt_block_elems(f) == 0) return f;
    k2c_wfmt g;
    switch (f) {
    case K2C_FMT_Q2_K: case K2C_FMT_Q3_K: case K2C_FMT_IQ4_XS: g = K2C_FMT_IQ4_NL; break;
    case K2C_FMT_Q4_K: g = K2C_FMT_Q5_0; break;
    case K2C_FMT_Q5_K: g = K2C_FMT_Q5_1; break;
    case K2C_FMT_Q6_K: g = K2C_FMT_Q8_0; break;
    default: g = K2C_FMT_F16; break;
    }
    return cols % k2c_wfmt_block_elems(g) == 0 ? g : K2C_FMT_F16;
}

static int ggml_of(k2c_wfmt f) {
    switch (f) {
    case K2C_FMT_F32: return K2C_GGML_F32;       case K2C_FMT_F16: return K2C_GGML_F16;
    case K2C_FMT_BF16: return K2C_GGML_BF16;     case K2C_FMT_Q4_0: return K2C_GGML_Q4_0;
    case K2C_FMT_Q4_1: return K2C_GGML_Q4_1;     case K2C_FMT_Q5_0: return K2C_GGML_Q5_0;
    case K2C_FMT_Q5_1: return K2C_GGML_Q5_1;     case K2C_FMT_Q8_0: return K2C_GGML_Q8_0;
    case K2C_FMT_Q2_K: return K2C_GGML_Q2_K;     case K2C_FMT_Q3_K: return K2C_GGML_Q3_K;
    case K2C_FMT_Q4_K: return K2C_GGML_Q4_K;     case K2C_FMT_Q5_K: return K2C_GGML_Q5_K;
    case K2C_FMT_Q6_K: return K2C_GGML_Q6_K;     case K2C_FMT_IQ4_NL: return K2C_GGML_IQ4_NL;
    case K2C_FMT_IQ4_XS: return K2C_GGML_IQ4_XS; case K2C_FMT_Q6_0: return K2C_GGML_Q6_0;
    default: return -1;
    }
}

/* ------------------------------------------------------------------ the tensor plan */
enum { S_LIN, S_VEC, S_EXPS, S_KB, S_VB };
typedef struct {
    char name[64];
    int ndim;
    int64_t ne[3];
    int cls, layer;
    k2c_wfmt want, fmt;             /* the class's type, and what the row length allows */
    int src;                        /* S_* */
    const k2c_linear *lin;          /* S_LIN, S_EXPS (E of them), S_KB / S_VB (the layer's kv_b) */
    const float *vec;               /* S_VEC */
} qtensor;

typedef struct { qtensor *t; int n, cap; } plan;

static qtensor *add(plan *p, int cls, int layer, const char *name, int ndim, int64_t ne0, int64_t ne1, int64_t ne2) {
    if (p->n == p->cap) {
        int nc = p->cap ? 2 * p->cap : 128;
        qtensor *n = realloc(p->t, (size_t)nc * sizeof *n);
        if (!n) { k2c_seterr("out of memory"); return NULL; }
        p->t = n;
        p->cap = nc;
    }
    qtensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->ne[0] = ne0; t->ne[1] = ne1; t->ne[2] = ne2;
    t->cls = cls;
    t->layer = layer;
    return t;
}

/* Every output tensor of config c, with its source in m when m is not NULL (sizes need only c). */
static int build_plan(const k2c_config *c, const k2c_model *m, const typeplan *tp, plan *p) {
    int D = c->hidden_size, V = c->vocab_size, H = c->num_attention_heads, dn = c->qk_nope_head_dim;
    int dr = c->qk_rope_head_dim, dv = c->v_head_dim, r = c->kv_lora_rank, NL = c->num_hidden_layers;
    char n[64];
    qtensor *t;
    memset(p, 0, sizeof *p);
#define LIN(cls_, L_, lin_, rows_, cols_, ...) do { snprintf(n, sizeof n, __VA_ARGS__); \
        if (!(t = add(p, cls_, L_, n, 2, cols_, rows_, 1))) return -1; \
        t->src = S_LIN; t->lin = m ? (lin_) : NULL; } while (0)
#define VEC(L_, vec_, len_, ...) do { snprintf(n, sizeof n, __VA_ARGS__); \
        if (!(t = add(p, C_F32, L_, n, 1, len_, 1, 1))) return -1; \
        t->src = S_VEC; t->vec = m ? (vec_) : NULL; } while (0)
    LIN(C_EMBD, -1, &m->embed, V, D, "token_embd.weight");
    VEC(-1, m->final_norm, D, "output_norm.weight");
    if (!c->tie_word_embeddings) LIN(C_OUTPUT, -1, &m->head, V, D, "output.weight");
    for (int L = 0; L < NL; L++) {
        const k2c_layer *ly = m ? &m->layers[L] : NULL;
        VEC(L, ly->attn_norm, D, "blk.%d.attn_norm.weight", L);
        VEC(L, ly->ffn_norm, D, "blk.%d.ffn_norm.weight", L);
        if (c->q_lora_rank) {
            LIN(C_ATTN_Q, L, &ly->q_a, c->q_lora_rank, D, "blk.%d.attn_q_a.weight", L);
            VEC(L, ly->q_a_norm, c->q_lora_rank, "blk.%d.attn_q_a_norm.weight", L);
            LIN(C_ATTN_Q, L, &ly->q_b, H * (dn + dr), c->q_lora_rank, "blk.%d.attn_q_b.weight", L);
        } else {
            LIN(C_ATTN_Q, L, &ly->q, H * (dn + dr), D, "blk.%d.attn_q.weight", L);
        }
        LIN(C_ATTN_KVA, L, &ly->kv_a, r + dr, D, "blk.%d.attn_kv_a_mqa.weight", L);
        VEC(L, ly->kv_a_norm, r, "blk.%d.attn_kv_a_norm.weight", L);
        LIN(C_ATTN_KVB, L, &ly->kv_b, H * (dn + dv), r, "blk.%d.attn_kv_b.weight", L);
        LIN(C_ATTN_KB, L, &ly->kv_b, H * r, dn, "blk.%d.attn_k_b.weight", L);
        t->src = S_KB;
        LIN(C_ATTN_VB, L, &ly->kv_b, H * dv, r, "blk.%d.attn_v_b.weight", L);
        t->src = S_VB;
        LIN(C_ATTN_OUT, L, &ly->o, D, H * dv, "blk.%d.attn_output.weight", L);
        if (!k2c_config_is_moe_layer(c, L)) {
            int I = c->intermediate_size;
            LIN(C_FFN_GATE_UP, L, &ly->gate, I, D, "blk.%d.ffn_gate.weight", L);
            LIN(C_FFN_GATE_UP, L, &ly->up, I, D, "blk.%d.ffn_up.weight", L);
            LIN(C_FFN_DOWN, L, &ly->down, D, I, "blk.%d.ffn_down.weight", L);
            continue;
        }
        int E = c->n_routed_experts, I = c->moe_intermediate_size;
        LIN(C_F32, L, &ly->router, E, D, "blk.%d.ffn_gate_inp.weight", L);
        if (!m || ly->router_bias) VEC(L, ly->router_bias, E, "blk.%d.exp_probs_b.bias", L);
        const char *pn[3] = {"gate", "up", "down"};
        for (int k = 0; k < 3; k++) {
            snprintf(n, sizeof n, "blk.%d.ffn_%s_exps.weight", L, pn[k]);
            int rows = k == 2 ? D : I, cols = k == 2 ? I : D;
            if (!(t = add(p, k == 2 ? C_EXPS_DOWN : C_EXPS_GATE_UP, L, n, 3, cols, rows, E))) return -1;
            t->src = S_EXPS;
            t->lin = m ? (k == 0 ? ly->exp_gate : k == 1 ? ly->exp_up : ly->exp_down) : NULL;
        }
        if (c->n_shared_experts) {
            int IS = I * c->n_shared_experts;
            LIN(C_SHEXP_GATE_UP, L, &ly->gate, IS, D, "blk.%d.ffn_gate_shexp.weight", L);
            LIN(C_SHEXP_GATE_UP, L, &ly->up, IS, D, "blk.%d.ffn_up_shexp.weight", L);
            LIN(C_SHEXP_DOWN, L, &ly->down, D, IS, "blk.%d.ffn_down_shexp.weight", L);
        }
    }
#undef LIN
#undef VEC
    for (int i = 0; i < p->n; i++) {
        qtensor *q = &p->t[i];
        q->want = tp->cls[q->cls];
        if (tp->more_down_differs && q->layer >= 0 && more_bits(q->layer, NL) &&
            (q->cls == C_FFN_DOWN || q->cls == C_SHEXP_DOWN || q->cls == C_EXPS_DOWN)) {
            q->want = tp->down_more;
            /* an explicit --type-experts wins over the recipe's raise */
            if (q->cls == C_EXPS_DOWN && tp->cls[C_EXPS_DOWN] != tp->cls[C_FFN_DOWN]) q->want = tp->cls[C_EXPS_DOWN];
        }
        q->fmt = q->cls == C_F32 ? K2C_FMT_F32 : fallback(q->want, (int)q->ne[0]);
    }
    return 0;
}

static uint64_t tensor_bytes(const qtensor *t) {
    return (uint64_t)k2c_wfmt_row_bytes(t->fmt, (int)t->ne[0]) * (uint64_t)t->ne[1] * (uint64_t)t->ne[2];
}

int k2c_quantize_size(const k2c_config *c, const k2c_quantize_opts *o, uint64_t *bytes, uint64_t *by_ggml) {
    typeplan tp;
    plan p;
    if (make_typeplan(o, &tp) != 0 || build_plan(c, NULL, &tp, &p) != 0) return -1;
    *bytes = 0;
    if (by_ggml) memset(by_ggml, 0, K2C_GGML_TYPES * sizeof *by_ggml);
    for (int i = 0; i < p.n; i++) {
        uint64_t b = tensor_bytes(&p.t[i]);
        *bytes += b;
        if (by_ggml) by_ggml[ggml_of(p.t[i].fmt)] += b;
    }
    free(p.t);
    return 0;
}

/* ------------------------------------------------------------------ rows of a tensor as fp32 */
/* Rows r0 .. r0+nr-1 of t (ne[1] * ne[2] rows of ne[0]) into out. */
static int fill_rows(const qtensor *t, const k2c_config *c, int64_t r0, int nr, float *out, float *scratch) {
    int cols = (int)t->ne[0];
    switch (t->src) {
    case S_VEC:
        memcpy(out, t->vec, (size_t)cols * sizeof *out);
        return 0;
    case S_LIN:
        k2c_linear_dequant_rows(t->lin, (int)r0, nr, out);
        return 0;
    case S_EXPS: {
        int rows = (int)t->ne[1];
        for (int i = 0; i < nr; i++) {
            int64_t g = r0 + i;
            k2c_linear_dequant_rows(&t->lin[g / rows], (int)(g % rows), 1, out + (size_t)i * cols);
        }
        return 0;
    }
    case S_VB: {        /* row h*dv + j of v_b = row h*(dn+dv) + dn + j of kv_b */
        int dn = c->qk_nope_head_dim, dv = c->v_head_dim;
        for (int i = 0; i < nr; i++) {
            int64_t g = r0 + i;
            k2c_linear_dequant_rows(t->lin, (int)((g / dv) * (dn + dv) + dn + g % dv), 1, out + (size_t)i * cols);
        }
        return 0;
    }
    case S_KB: {        /* row h*r + k of k_b, element i = kv_b[h*(dn+dv) + i][k]: per head the key rows transposed */
        int dn = c->qk_nope_head_dim, dv = c->v_head_dim, r = c->kv_lora_rank, cur = -1;
        for (int i = 0; i < nr; i++) {
            int64_t g = r0 + i;
            int h = (int)(g / r), k = (int)(g % r);
            if (h != cur) { k2c_linear_dequant_rows(t->lin, h * (dn + dv), dn, scratch); cur = h; }
            for (int e = 0; e < dn; e++) out[(size_t)i * cols + e] = scratch[(size_t)e * r + k];
        }
        return 0;
    }
    }
    return -1;
}

/* ------------------------------------------------------------------ metadata */
static int basename_has_kimi(const char *path) {
    const char *b = strrchr(path, '/');
    return strcasestr(b ? b + 1 : path, "kimi") != NULL;
}

static int write_meta(k2c_gguf_writer *w, const k2c_model *m, const char *in, const typeplan *tp, const k2c_quantize_opts *o) {
    const k2c_config *c = &m->cfg;
    int rc = 0;
    const char *name = NULL;
    char nb[256];
    if (m->gguf && k2c_gguf_str(&m->gg, "general.name", &name) < 0) return -1;
    if (!name) {
        /* model_gguf.c takes model_type kimi_k2 from a general.name that says Kimi */
        const char *b = strrchr(in, '/');
        b = b && b[1] ? b + 1 : in;
        snprintf(nb, sizeof nb, "%s%s", !strcmp(c->model_type, "kimi_k2") && !basename_has_kimi(in) ? "Kimi-K2 " : "", b);
        name = nb;
    }
    rc |= k2c_gguf_w_str(w, "general.architecture", "deepseek2");
    rc |= k2c_gguf_w_str(w, "general.type", "model");
    rc |= k2c_gguf_w_str(w, "general.name", name);
    rc |= k2c_gguf_w_u32(w, "general.file_type", (uint32_t)tp->file_type);
    rc |= k2c_gguf_w_u32(w, "general.quantization_version", 2);
    rc |= k2c_gguf_w_u32(w, "deepseek2.block_count", (uint32_t)c->num_hidden_layers);
    rc |= k2c_gguf_w_u32(w, "deepseek2.context_length", (uint32_t)c->max_position_embeddings);
    rc |= k2c_gguf_w_u32(w, "deepseek2.embedding_length", (uint32_t)c->hidden_size);
    rc |= k2c_gguf_w_u32(w, "deepseek2.feed_forward_length", (uint32_t)c->intermediate_size);
    rc |= k2c_gguf_w_u32(w, "deepseek2.attention.head_count", (uint32_t)c->num_attention_heads);
    rc |= k2c_gguf_w_u32(w, "deepseek2.attention.head_count_kv", (uint32_t)c->num_attention_heads);
    rc |= k2c_gguf_w_f32(w, "deepseek2.rope.freq_base", (float)c->rope_theta);
    rc |= k2c_gguf_w_f32(w, "deepseek2.attention.layer_norm_rms_epsilon", (float)c->rms_norm_eps);
    rc |= k2c_gguf_w_u32(w, "deepseek2.expert_used_count", (uint32_t)c->num_experts_per_tok);
    rc |= k2c_gguf_w_u32(w, "deepseek2.leading_dense_block_count", (uint32_t)c->first_k_dense_replace);
    rc |= k2c_gguf_w_u32(w, "deepseek2.vocab_size", (uint32_t)c->vocab_size);
    if (c->q_lora_rank) rc |= k2c_gguf_w_u32(w, "deepseek2.attention.q_lora_rank", (uint32_t)c->q_lora_rank);
    rc |= k2c_gguf_w_u32(w, "deepseek2.attention.kv_lora_rank", (uint32_t)c->kv_lora_rank);
    rc |= k2c_gguf_w_u32(w, "deepseek2.attention.key_length", (uint32_t)(c->qk_nope_head_dim + c->qk_rope_head_dim));
    rc |= k2c_gguf_w_u32(w, "deepseek2.attention.value_length", (uint32_t)c->v_head_dim);
    rc |= k2c_gguf_w_u32(w, "deepseek2.expert_feed_forward_length", (uint32_t)c->moe_intermediate_size);
    rc |= k2c_gguf_w_u32(w, "deepseek2.expert_count", (uint32_t)c->n_routed_experts);
    rc |= k2c_gguf_w_u32(w, "deepseek2.expert_shared_count", (uint32_t)c->n_shared_experts);
    rc |= k2c_gguf_w_u32(w, "deepseek2.expert_group_count", (uint32_t)c->n_group);
    rc |= k2c_gguf_w_u32(w, "deepseek2.expert_group_used_count", (uint32_t)c->topk_group);
    rc |= k2c_gguf_w_f32(w, "deepseek2.expert_weights_scale", c->routed_scaling_factor);
    rc |= k2c_gguf_w_bool(w, "deepseek2.expert_weights_norm", c->norm_topk_prob);
    rc |= k2c_gguf_w_u32(w, "deepseek2.expert_gating_func", c->scoring_softmax ? 1 : 2);
    rc |= k2c_gguf_w_u32(w, "deepseek2.rope.dimension_count", (uint32_t)c->qk_rope_head_dim);
    if (c->rope_yarn) {
        rc |= k2c_gguf_w_str(w, "deepseek2.rope.scaling.type", "yarn");
        rc |= k2c_gguf_w_f32(w, "deepseek2.rope.scaling.factor", (float)c->rope_factor);
        rc |= k2c_gguf_w_u32(w, "deepseek2.rope.scaling.original_context_length", (uint32_t)c->rope_original_max);
        rc |= k2c_gguf_w_f32(w, "deepseek2.rope.scaling.yarn_log_multiplier", (float)(0.1 * c->mscale_all_dim));
        rc |= k2c_gguf_w_f32(w, "deepseek2.rope.scaling.yarn_beta_fast", (float)c->beta_fast);
        rc |= k2c_gguf_w_f32(w, "deepseek2.rope.scaling.yarn_beta_slow", (float)c->beta_slow);
        if (c->mscale != c->mscale_all_dim)
            k2c_log("quantize: warning: rope_scaling mscale %g differs from mscale_all_dim %g; GGUF keeps one "
                    "(yarn_log_multiplier), readers take mscale equal to it\n", c->mscale, c->mscale_all_dim);
    }
    if (rc) return -1;
    if (m->gguf) {      /* the tokenizer (and anything else tokenizer.*) as the input has it */
        for (int i = 0; i < m->gg.nkv; i++)
            if (!strncmp(m->gg.kv[i].key, "tokenizer.", 10) && k2c_gguf_w_copy(w, &m->gg.kv[i]) != 0) return -1;
    } else {
        if (o->ntokens > 0) {
            if (o->ntokens != c->vocab_size) {
                k2c_seterr("quantize: the tokenizer has %d tokens, the model's vocab_size is %d", o->ntokens, c->vocab_size);
                return -1;
            }
            if (k2c_gguf_w_str(w, "tokenizer.ggml.model", o->tok_model ? o->tok_model : "gpt2") ||
                k2c_gguf_w_str(w, "tokenizer.ggml.pre", o->tok_pre ? o->tok_pre : "default") ||
                k2c_gguf_w_str_array(w, "tokenizer.ggml.tokens", (uint64_t)o->ntokens, o->tokens, o->token_len) ||
                k2c_gguf_w_array(w, "tokenizer.ggml.token_type", K2C_GGUF_I32, (uint64_t)o->ntokens, o->token_type) ||
                (o->nmerges > 0 && k2c_gguf_w_str_array(w, "tokenizer.ggml.merges", (uint64_t)o->nmerges, o->merges, NULL)))
                return -1;
        }
        if (c->bos_token_id >= 0 && k2c_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_token_id)) return -1;
        if (c->eos_token_id >= 0 && k2c_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token_id)) return -1;
    }
    return 0;
}

/* The input folder's tokenizer files next to OUT (k2c reads its tokenizer from these files, not yet from GGUF
 * metadata). Existing files are left alone. */
static void copy_tokenizer_files(const char *in, const char *out) {
    static const char *FILES[] = {"tiktoken.model", "tokenizer_config.json", "tokenizer.json", "tokenization_kimi.py"};
    struct stat sb;
    if (stat(in, &sb) != 0 || !S_ISDIR(sb.st_mode)) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *sl = strrchr(dir, '/');
    if (sl) *sl = 0; else snprintf(dir, sizeof dir, ".");
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char *src = k2c_path_join(in, FILES[i]), *dst = k2c_path_join(dir, FILES[i]);
        size_t len;
        char *data;
        if (src && dst && stat(src, &sb) == 0 && stat(dst, &sb) != 0 && (data = k2c_read_file(src, &len))) {
            if (k2c_write_file_atomic(dst, data, len) == 0) k2c_log("quantize: copied %s to %s\n", FILES[i], dir);
            free(data);
        }
        free(src);
        free(dst);
    }
}

/* ------------------------------------------------------------------ the conversion */
static int imatrix_weights(const k2c_gguf *im, const char *name, int cols, int E, float *w);

int k2c_quantize(const char *in, const char *out, const k2c_quantize_opts *o) {
    k2c_quantize_opts dflt = {0};
    if (!o) o = &dflt;
    typeplan tp;
    if (make_typeplan(o, &tp) != 0) return -1;
    if (!in || !out) { k2c_seterr("quantize: need an input model and an output file"); return -1; }
    struct stat sb;
    if (stat(in, &sb) != 0) { k2c_seterr("quantize: %s: %s", in, strerror(errno)); return -1; }
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) { k2c_seterr("quantize: --out %s is a folder; give a .gguf file name", out); return -1; }
    k2c_model_opts mo = {.load = K2C_LOAD_MMAP, .threads = o->threads, .simd = "scalar", .stored_only = 1};
    k2c_model *m = malloc(sizeof *m);
    k2c_gguf_writer *w = NULL;
    plan p = {0};
    float *x = NULL, *scratch = NULL, *iw = NULL;
    uint8_t *qb = NULL;
    k2c_gguf im = {0};
    int have_im = 0;
    int rc = -1, nth = o->threads > 0 ? o->threads : omp_get_max_threads();
    if (!m) { k2c_seterr("out of memory"); return -1; }
    if (o->imatrix) {
        const char *gt = NULL;
        if (k2c_gguf_open(&im, o->imatrix, K2C_LOAD_MMAP) != 0) { free(m); return -1; }
        have_im = 1;
        if (k2c_gguf_str(&im, "general.type", &gt) != 1 || strcmp(gt, "imatrix")) {
            k2c_seterr("quantize: --imatrix %s is not an importance matrix (general.type is not 'imatrix')", o->imatrix);
            k2c_gguf_close(&im);
            free(m);
            return -1;
        }
    }
    if (k2c_model_load_opts(m, in, &mo) != 0) { free(m); if (have_im) k2c_gguf_close(&im); return -1; }
    const k2c_config *c = &m->cfg;
    if (build_plan(c, m, &tp, &p) != 0) goto done;
    if (!(w = k2c_gguf_w_new()) || write_meta(w, m, in, &tp, o) != 0) goto done;
    uint64_t total = 0;
    size_t max_cols = 0;
    for (int i = 0; i < p.n; i++) {
        qtensor *t = &p.t[i];
        if (t->fmt != t->want && t->cls != C_F32)
            k2c_log("quantize: %s: rows of %lld are not a multiple of the %s block (%d): %s instead\n", t->name,
                    (long long)t->ne[0], k2c_wfmt_name(t->want), k2c_wfmt_block_elems(t->want), k2c_wfmt_name(t->fmt));
        if (k2c_gguf_w_tensor(w, t->name, ggml_of(t->fmt), t->ndim, t->ne) != 0) goto done;
        total += tensor_bytes(t);
        if ((size_t)t->ne[0] > max_cols) max_cols = (size_t)t->ne[0];
    }
    size_t chunk_rows_max = CHUNK_FLOATS / max_cols ? CHUNK_FLOATS / max_cols : 1;
    size_t iw_most = 0;
    for (int i = 0; i < p.n; i++) {
        size_t k = (size_t)p.t[i].ne[0] * (size_t)(p.t[i].src == S_EXPS ? p.t[i].ne[2] : 1);
        if (k > iw_most) iw_most = k;
    }
    if (have_im && !(iw = malloc(iw_most * sizeof *iw))) { k2c_seterr("out of memory"); goto done; }
    int im_used = 0;
    size_t kb_scratch = (size_t)c->qk_nope_head_dim * (size_t)c->kv_lora_rank;
    /* a step holds per = CHUNK_FLOATS / cols rows of the tensor at hand: up to CHUNK_FLOATS values (or one row
     * when a row is longer), which a buffer of chunk_rows_max * max_cols values need not hold */
    size_t most = CHUNK_FLOATS > max_cols ? CHUNK_FLOATS : max_cols;
    (void)chunk_rows_max;
    x = malloc(most * sizeof *x);
    qb = malloc(most * 4 + (most / 32 + 1) * 64);
    scratch = malloc(kb_scratch * sizeof *scratch);
    if (!x || !qb || !scratch) { k2c_seterr("out of memory"); goto done; }
    if (k2c_gguf_w_begin(w, out) != 0) goto done;
    k2c_log("quantize: %s -> %s (%s): %d tensors, %.2f GB\n", in, out, o->type, p.n, (double)total / 1e9);
    double t0 = k2c_now(), last = 0;
    uint64_t done_bytes = 0;
    for (int i = 0; i < p.n; i++) {
        const qtensor *t = &p.t[i];
        int cols = (int)t->ne[0];
        int64_t rows = t->ne[1] * t->ne[2];
        size_t rb = k2c_wfmt_row_bytes(t->fmt, cols);
        size_t per = CHUNK_FLOATS / (size_t)cols ? CHUNK_FLOATS / (size_t)cols : 1;
        int use_w = 0;
        if (have_im && k2c_wfmt_is_block(t->fmt) && t->src != S_KB && t->src != S_VEC) {
            /* attn_v_b multiplies what attn_kv_b does: its statistics */
            char src[64];
            snprintf(src, sizeof src, "%s", t->name);
            char *vb = strstr(src, "attn_v_b");
            if (vb) { memmove(vb + 9, vb + 8, strlen(vb + 8) + 1); memcpy(vb, "attn_kv_b", 9); }
            use_w = imatrix_weights(&im, src, cols, t->src == S_EXPS ? (int)t->ne[2] : 1, iw);
            im_used += use_w;
        }
        for (int64_t r0 = 0; r0 < rows; r0 += (int64_t)per) {
            int nr = (int)(rows - r0 < (int64_t)per ? rows - r0 : (int64_t)per);
            /* rows that come from one source row each are dequantized by the thread that quantizes them */
            int par_fill = t->src == S_LIN || t->src == S_EXPS || t->src == S_VB;
            if (!par_fill && fill_rows(t, c, r0, nr, x, scratch) != 0) { k2c_seterr("quantize: %s: no source", t->name); goto done; }
            int bad = -1;
            #pragma omp parallel for num_threads(nth) schedule(dynamic, 4)
            for (int j = 0; j < nr; j++) {
                float *xr = x + (size_t)j * cols;
                if (par_fill) fill_rows(t, c, r0 + j, 1, xr, NULL);
                int ok = 1;
                for (int e = 0; e < cols; e++) ok &= isfinite(xr[e]) != 0;
                const float *wr = use_w ? iw + (size_t)(t->src == S_EXPS ? (r0 + j) / t->ne[1] : 0) * cols : NULL;
                if (ok) ok = k2c_quantize_row(t->fmt, xr, wr, cols, qb + (size_t)j * rb) == 0;
                if (ok && t->fmt == K2C_FMT_F16)    /* F16 cannot hold values past 65504 */
                    for (int e = 0; e < cols; e++) ok &= fabsf(xr[e]) <= 65504.0f;
                if (!ok) {
                    #pragma omp critical
                    if (bad < 0 || j < bad) bad = j;
                }
            }
            if (bad >= 0) {
                const float *xr = x + (size_t)bad * cols;
                int e = 0;
                while (e < cols - 1 && isfinite(xr[e]) && !(t->fmt == K2C_FMT_F16 && fabsf(xr[e]) > 65504.0f)) e++;
                k2c_seterr("quantize: tensor '%s' row %lld element %d is %g, which %s cannot hold", t->name,
                           (long long)(r0 + bad), e, (double)xr[e], k2c_wfmt_name(t->fmt));
                goto done;
            }
            if (k2c_gguf_w_data(w, qb, (size_t)nr * rb) != 0) goto done;
            done_bytes += (uint64_t)nr * rb;
            double now = k2c_now() - t0;
            if (now - last > 2.0 || (i == p.n - 1 && r0 + nr >= rows)) {
                last = now;
                k2c_log("quantize: [%d/%d] %-32s %-6s %5.1f%% of %.2f GB, %.0f s\n", i + 1, p.n, t->name,
                        k2c_wfmt_name(t->fmt), 100.0 * (double)done_bytes / (double)(total ? total : 1), (double)total / 1e9, now);
            }
        }
    }
    if (k2c_gguf_w_finish(w) != 0) goto done;
    if (have_im) k2c_log("quantize: importance from %s for %d tensors\n", o->imatrix, im_used);
    if (!m->gguf) copy_tokenizer_files(in, out);
    rc = 0;
done:
    k2c_gguf_w_free(w);
    free(p.t);
    free(x);
    free(qb);
    free(scratch);
    free(iw);
    if (have_im) k2c_gguf_close(&im);
    k2c_model_free(m);
    free(m);
    return rc;
}

/* ------------------------------------------------------------------ importance matrix (k2c imatrix)
 * For each weight matrix W the mean of x_j^2 over the inputs x it multiplies on a text: the diagonal of E[x x^T],
 * which turns the quantizer's error sum_j (dw_j)^2 into the expected output error E[(dw . x)^2] (less the
 * cross terms). Collected through the kernel context's observer while prefills run (exact mode, the expanded
 * MLA form so kv_b sees its inputs), per expert for the stacked experts. Stored as a GGUF (general.type
 * "imatrix"): per tensor NAME.in_sum2 F32 [cols, E] (sum of x^2) and NAME.counts F32 [1, E] (inputs seen). */
typedef struct { const k2c_linear *l; int t, e; } lkey;
typedef struct {
    plan p;
    lkey *keys;
    int nkeys;
    double **sum2;                  /* per plan tensor: [cols * E] or NULL */
    double **count;                 /* [E] */
    /* held-out mode: up to NSAMP input rows per (tensor, expert) */
    float **samp;
    int **nsamp;
} iacc;
#define NSAMP 64

static int cmp_key(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const lkey *)a)->l, y = (uintptr_t)((const lkey *)b)->l;
    return x < y ? -1 : x > y;
}

static int nexp_of(const qtensor *t) { return t->src == S_EXPS ? (int)t->ne[2] : 1; }

static void observe(void *ctx, const k2c_linear *l, const float *X, int T) {
    iacc *a = ctx;
    lkey k = {.l = l};
    const lkey *hit = bsearch(&k, a->keys, (size_t)a->nkeys, sizeof k, cmp_key);
    if (!hit) return;
    const qtensor *t = &a->p.t[hit->t];
    int cols = (int)t->ne[0], e = hit->e;
    if (l->cols != cols) return;
    #pragma omp critical(k2c_imatrix)
    {
        if (a->sum2) {
            double *s = a->sum2[hit->t] + (size_t)e * cols;
            for (int i = 0; i < T; i++)
                for (int j = 0; j < cols; j++) s[j] += (double)X[(size_t)i * cols + j] * X[(size_t)i * cols + j];
            a->count[hit->t][e] += T;
        }
        if (a->samp) {
            int *ns = &a->nsamp[hit->t][e];
            for (int i = 0; i < T && *ns < NSAMP; i++, (*ns)++)
                memcpy(a->samp[hit->t] + ((size_t)e * NSAMP + (size_t)*ns) * cols, X + (size_t)i * cols, (size_t)cols * sizeof *X);
        }
    }
}

static void iacc_free(iacc *a) {
    for (int i = 0; i < a->p.n; i++) {
        if (a->sum2) free(a->sum2[i]);
        if (a->count) free(a->count[i]);
        if (a->samp) free(a->samp[i]);
        if (a->nsamp) free(a->nsamp[i]);
    }
    free(a->sum2); free(a->count); free(a->samp); free(a->nsamp); free(a->keys); free(a->p.t);
    memset(a, 0, sizeof *a);
}

/* The matrices whose inputs are observed: every S_LIN / S_EXPS tensor but the F32 router (and attn_k_b, whose
 * input, the per-head q_nope, is not a product's input in k2c's forward; attn_v_b takes attn_kv_b's). */
static int iacc_init(iacc *a, k2c_model *m, int stats, int samples) {
    typeplan tp;
    k2c_quantize_opts qo = {.type = "F32"};
    memset(a, 0, sizeof *a);
    if (make_typeplan(&qo, &tp) || build_plan(&m->cfg, m, &tp, &a->p)) return -1;
    int n = a->p.n, nk = 0;
    for (int i = 0; i < n; i++) if (a->p.t[i].src == S_LIN || a->p.t[i].src == S_EXPS) nk += nexp_of(&a->p.t[i]);
    a->keys = calloc((size_t)nk + 1, sizeof *a->keys);
    if (stats) { a->sum2 = calloc((size_t)n, sizeof *a->sum2); a->count = calloc((size_t)n, sizeof *a->count); }
    if (samples) { a->samp = calloc((size_t)n, sizeof *a->samp); a->nsamp = calloc((size_t)n, sizeof *a->nsamp); }
    if (!a->keys || (stats && (!a->sum2 || !a->count)) || (samples && (!a->samp || !a->nsamp))) goto oom;
    for (int i = 0; i < n; i++) {
        qtensor *t = &a->p.t[i];
        if ((t->src != S_LIN && t->src != S_EXPS) || t->cls == C_F32) continue;
        int E = nexp_of(t);
        size_t cols = (size_t)t->ne[0];
        for (int e = 0; e < E; e++) a->keys[a->nkeys++] = (lkey){t->lin + e, i, e};
        if (stats && (!(a->sum2[i] = calloc(cols * (size_t)E, sizeof(double))) || !(a->count[i] = calloc((size_t)E, sizeof(double))))) goto oom;
        if (samples && (!(a->samp[i] = malloc(cols * (size_t)E * NSAMP * sizeof(float))) || !(a->nsamp[i] = calloc((size_t)E, sizeof(int))))) goto oom;
    }
    /* kv_b is bound twice (attn_kv_b, and the halves' source): keep the first, attn_kv_b */
    qsort(a->keys, (size_t)a->nkeys, sizeof *a->keys, cmp_key);
    int w = 0;
    for (int i = 0; i < a->nkeys; i++) if (!w || a->keys[i].l != a->keys[w - 1].l) a->keys[w++] = a->keys[i];
    a->nkeys = w;
    m->cx.observe = observe;
    m->cx.observe_ctx = a;
    return 0;
oom:
    k2c_seterr("out of memory");
    iacc_free(a);
    return -1;
}

/* Prefills of chunk tokens over ids, each from an empty cache. */
static int run_text(k2c_model *m, const int *ids, int n, int chunk) {
    int V = m->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) { k2c_seterr("imatrix: token id %d is outside the vocabulary (%d)", ids[i], V); return -1; }
    double t0 = k2c_now();
    for (int s = 0; s < n; s += chunk) {
        int T = n - s < chunk ? n - s : chunk;
        k2c_state *st = k2c_state_new(m, T);
        int rc = st ? k2c_prefill(st, ids + s, T, NULL, NULL, NULL) : -1;
        k2c_state_delete(st);
        if (rc) return -1;
        k2c_log("\rimatrix: %d / %d tokens, %.0f s", s + T, n, k2c_now() - t0);
    }
    k2c_log("\n");
    return 0;
}

static int open_for_stats(k2c_model *m, const char *model, int threads) {
    k2c_model_opts mo = {.load = K2C_LOAD_MMAP, .exact = 1, .threads = threads, .stored_only = 1};
    if (k2c_model_load_opts(m, model, &mo) != 0) return -1;
    m->prefill_path = 2;        /* expanded attention: kv_b's inputs (the latents) go through a product */
    return 0;
}

int k2c_imatrix(const char *model, const int *ids, int n, int chunk, int threads, const char *out) {
    k2c_model m;
    iacc a;
    k2c_gguf_writer *w = NULL;
    int rc = -1;
    float *buf = NULL;
    if (chunk <= 0) chunk = 512;
    if (n <= 0) { k2c_seterr("imatrix: no tokens"); return -1; }
    if (open_for_stats(&m, model, threads) != 0) return -1;
    if (iacc_init(&a, &m, 1, 0) != 0) { k2c_model_free(&m); return -1; }
    if (run_text(&m, ids, n, chunk) != 0) goto done;
    if (!(w = k2c_gguf_w_new())) goto done;
    if (k2c_gguf_w_str(w, "general.type", "imatrix") || k2c_gguf_w_u32(w, "imatrix.chunk_count", (uint32_t)((n + chunk - 1) / chunk)) ||
        k2c_gguf_w_u32(w, "imatrix.chunk_size", (uint32_t)chunk))
        goto done;
    size_t most = 0;
    for (int i = 0; i < a.p.n; i++) {
        const qtensor *t = &a.p.t[i];
        if (!a.sum2[i]) continue;
        char nm[96];
        int64_t ne[2] = {t->ne[0], nexp_of(t)}, ne1[2] = {1, nexp_of(t)};
        snprintf(nm, sizeof nm, "%s.in_sum2", t->name);
        if (k2c_gguf_w_tensor(w, nm, K2C_GGML_F32, 2, ne)) goto done;
        snprintf(nm, sizeof nm, "%s.counts", t->name);
        if (k2c_gguf_w_tensor(w, nm, K2C_GGML_F32, 2, ne1)) goto done;
        if ((size_t)(ne[0] * ne[1]) > most) most = (size_t)(ne[0] * ne[1]);
    }
    if (!(buf = malloc((most ? most : 1) * sizeof *buf))) { k2c_seterr("out of memory"); goto done; }
    if (k2c_gguf_w_begin(w, out)) goto done;
    for (int i = 0; i < a.p.n; i++) {
        const qtensor *t = &a.p.t[i];
        if (!a.sum2[i]) continue;
        size_t k = (size_t)t->ne[0] * (size_t)nexp_of(t);
        for (size_t j = 0; j < k; j++) buf[j] = (float)a.sum2[i][j];
        if (k2c_gguf_w_data(w, buf, k * sizeof *buf)) goto done;
        for (int e = 0; e < nexp_of(t); e++) buf[e] = (float)a.count[i][e];
        if (k2c_gguf_w_data(w, buf, (size_t)nexp_of(t) * sizeof *buf)) goto done;
    }
    if (k2c_gguf_w_finish(w)) goto done;
    rc = 0;
done:
    free(buf);
    k2c_gguf_w_free(w);
    iacc_free(&a);
    k2c_model_free(&m);
    return rc;
}

/* The quantizer's per-column importance of tensor t (expert e's slab): mean x^2 from the imatrix file, floored
 * at 1e-3 of its mean so that no column is ignored. name: the tensor whose statistics apply. 1 found, 0 not. */
static int imatrix_weights(const k2c_gguf *im, const char *name, int cols, int E, float *w) {
    char nm[96];
    snprintf(nm, sizeof nm, "%s.in_sum2", name);
    const k2c_gguf_tensor *s = k2c_gguf_find(im, nm);
    snprintf(nm, sizeof nm, "%s.counts", name);
    const k2c_gguf_tensor *c = k2c_gguf_find(im, nm);
    if (!s || !c || s->type != K2C_GGML_F32 || c->type != K2C_GGML_F32 || s->ne[0] != cols || s->ne[1] != E || c->ne[1] != E) return 0;
    for (int e = 0; e < E; e++) {
        float cnt, mean = 0;
        memcpy(&cnt, (const uint8_t *)c->data + 4 * (size_t)e, 4);
        float *we = w + (size_t)e * cols;
        for (int j = 0; j < cols; j++) {
            float v;
            memcpy(&v, (const uint8_t *)s->data + 4 * ((size_t)e * cols + j), 4);
            we[j] = cnt > 0 ? v / cnt : 1.0f;
            mean += we[j] / (float)cols;
        }
        if (!(mean > 0)) { for (int j = 0; j < cols; j++) we[j] = 1.0f; continue; }
        for (int j = 0; j < cols; j++) we[j] += 1e-3f * mean;
    }
    return 1;
}

/* Output error of each observed matrix on held-out inputs, quantized to `type` without and with the imatrix. */
int k2c_imatrix_eval(const char *model, const int *ids, int n, int chunk, int threads, const char *imatrix,
                     const char *type, double *rel_plain, double *rel_imatrix) {
    k2c_model m;
    iacc a;
    k2c_gguf im;
    k2c_wfmt f;
    int rc = -1;
    if (parse_type(type, &f) != 0 || !k2c_wfmt_is_block(f)) { k2c_seterr("imatrix: --eval-type '%s' is not a block type", type); return -1; }
    if (k2c_gguf_open(&im, imatrix, K2C_LOAD_MMAP) != 0) return -1;
    if (open_for_stats(&m, model, threads) != 0) { k2c_gguf_close(&im); return -1; }
    if (iacc_init(&a, &m, 0, 1) != 0) { k2c_model_free(&m); k2c_gguf_close(&im); return -1; }
    m.cx.observe = observe;
    if (run_text(&m, ids, n, chunk > 0 ? chunk : 512) != 0) goto done;
    m.cx.observe = NULL;
    double num[2] = {0, 0}, den = 0;
    for (int i = 0; i < a.p.n; i++) {
        const qtensor *t = &a.p.t[i];
        if (!a.samp || !a.samp[i]) continue;
        int cols = (int)t->ne[0], rows = (int)t->ne[1], E = nexp_of(t);
        if (cols % k2c_wfmt_block_elems(f)) continue;       /* only the tensors the type holds */
        float *w = malloc((size_t)cols * E * sizeof *w), *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)cols * sizeof *y);
        uint8_t *q = malloc(k2c_wfmt_row_bytes(f, cols));
        if (!w || !x || !y || !q) { free(w); free(x); free(y); free(q); k2c_seterr("out of memory"); goto done; }
        int have = imatrix_weights(&im, t->name, cols, E, w);
        for (int e = 0; e < E; e++) {
            int ns = a.nsamp[i][e];
            const float *S = a.samp[i] + (size_t)e * NSAMP * cols;
            if (!ns) continue;
            for (int r = 0; r < rows; r++) {
                k2c_linear_dequant_rows(&t->lin[t->src == S_EXPS ? e : 0], r, 1, x);
                for (int pass = 0; pass < 2; pass++) {
                    k2c_quantize_row(f, x, pass && have ? w + (size_t)e * cols : NULL, cols, q);
                    k2c_linear one = {.fmt = f, .rows = 1, .cols = cols, .w = q};
                    k2c_linear_dequant_rows(&one, 0, 1, y);
                    for (int s = 0; s < ns; s++) {
                        double d = 0, o = 0;
                        for (int j = 0; j < cols; j++) { d += ((double)x[j] - y[j]) * S[(size_t)s * cols + j]; o += (double)x[j] * S[(size_t)s * cols + j]; }
                        num[pass] += d * d;
                        if (!pass) den += o * o;
                    }
                }
            }
        }
        free(w); free(x); free(y); free(q);
    }
    *rel_plain = den > 0 ? sqrt(num[0] / den) : 0;
    *rel_imatrix = den > 0 ? sqrt(num[1] / den) : 0;
    rc = 0;
done:
    iacc_free(&a);
    k2c_model_free(&m);
    k2c_gguf_close(&im);
    return rc;
}

/* ------------------------------------------------------------------ quantizer speed */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int k2c_quantize_bench(const char *types, int threads, double seconds, int weighted) {
    enum { COLS = 4096, ROWS = 64 };
    int nth = threads > 0 ? threads : omp_get_max_threads();
    if (seconds <= 0) seconds = 0.5;
    float *x = malloc((size_t)COLS * ROWS * sizeof *x), *w = malloc((size_t)COLS * sizeof *w);
    uint8_t *q = malloc((size_t)ROWS * COLS * 4);
    int rc = -1;
    if (!x || !w || !q) { k2c_seterr("out of memory"); goto done; }
    /* Gaussian rows (Box-Muller on a fixed xorshift stream) with a few outliers, as trained weights have */
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < (size_t)COLS * ROWS; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            u[k] = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        }
        double r = sqrt(-2.0 * log(u[0]));
        x[i] = (float)(0.02 * r * cos(6.283185307179586 * u[1]));
        x[i + 1] = (float)(0.02 * r * sin(6.283185307179586 * u[1]));
        if (i % 997 == 0) x[i] *= 8;
    }
    for (int j = 0; j < COLS; j++) w[j] = 0.5f + (float)((j * 2654435761u) % 1000) / 1000.0f;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", types && *types ? types : "Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q6_0,Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,IQ4_NL,IQ4_XS");
    printf("quantize bench: rows of %d, %d threads%s, %.1f s per type (1 thread: CPU time; %d: wall time)\n", COLS, nth, weighted ? ", with importance weights" : "", seconds, nth);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        k2c_wfmt f;
        if (parse_type(t, &f) != 0) { k2c_seterr("quantize bench: unknown type '%s' (one of " TYPE_LIST ")", t); goto done; }
        size_t rb = k2c_wfmt_row_bytes(f, COLS);
        double r1 = 0, rn = 0;
        for (int pass = 0; pass < 2; pass++) {
            int use = pass ? nth : 1;
            long done_rows = 0;
            /* one thread: its CPU time (a shared machine's other work and pauses do not count); more: wall time */
            double t0 = pass ? k2c_now() : cpu_seconds(), el;
            do {
                int bad = 0;
                #pragma omp parallel for num_threads(use) schedule(dynamic, 1) reduction(|:bad)
                for (int r = 0; r < ROWS; r++)
                    bad |= k2c_quantize_row(f, x + (size_t)r * COLS, weighted ? w : NULL, COLS, q + (size_t)r * rb) != 0;
                if (bad) goto done;
                done_rows += ROWS;
                el = (pass ? k2c_now() : cpu_seconds()) - t0;
            } while (el < seconds);
            double vps = (double)done_rows * COLS / el;
            if (pass) rn = vps; else r1 = vps;
        }
        printf("  %-7s %9.2f M values/s on 1 thread, %9.2f M values/s on %d\n", k2c_wfmt_name(f), r1 / 1e6, rn / 1e6, nth);
        fflush(stdout);
    }
    rc = 0;
done:
    free(x);
    free(w);
    free(q);
    return rc;
}
