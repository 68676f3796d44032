/* The whole forward pass: embedding, layers (attention + FFN with pre-norms and residuals), final norm
 * and head. One function serves prefill and decode: decode (one token for each of n states) attends over the
 * latent cache in absorbed form; a prefill runs in chunks of the model's ubatch tokens, each in whichever MLA
 * form costs less for its length and the cache behind it (mla.c). */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

/* What one matmul or matvec of any weight takes for up to T tokens. */
static size_t lin_ws_bytes(const k2c_model *m, int T) {
    const k2c_config *c = &m->cfg;
    size_t most = k2c_matmul_ws_bytes(&m->head, T);
#define LIN(l) do { if ((l).w) { size_t b_ = k2c_matmul_ws_bytes(&(l), T); most = b_ > most ? b_ : most; } } while (0)
    for (int i = 0; i < c->num_hidden_layers; i++) {
        const k2c_layer *ly = &m->layers[i];
        LIN(ly->q_a); LIN(ly->q_b); LIN(ly->q); LIN(ly->kv_a); LIN(ly->kv_b); LIN(ly->o);
        LIN(ly->gate); LIN(ly->up); LIN(ly->down); LIN(ly->router);
        if (ly->is_moe)
            for (int e = 0; e < c->n_routed_experts; e++) { LIN(ly->exp_gate[e]); LIN(ly->exp_up[e]); LIN(ly->exp_down[e]); }
    }
#undef LIN
    return most;
}

size_t k2c_forward_ws_bytes(const k2c_model *m, int T, int max_ctx) {
    const k2c_config *c = &m->cfg;
    /* the expanded form's kv_b product runs over up to 256 cached positions, whatever T is */
    int tl = T > 256 ? T : (max_ctx < 256 ? (T > max_ctx ? T : max_ctx) : 256);
    size_t lin = lin_ws_bytes(m, tl), cols = (size_t)c->hidden_size;
    for (int i = 0; i < c->num_hidden_layers; i++) {      /* the widest input a matvec shuffles */
        const k2c_layer *ly = &m->layers[i];
        size_t w[4] = {(size_t)ly->o.cols, (size_t)ly->down.cols, ly->is_moe ? (size_t)ly->exp_down[0].cols : 0, (size_t)c->q_lora_rank};
        for (int k = 0; k < 4; k++) cols = w[k] > cols ? w[k] : cols;
    }
    size_t xs = k2c_ws_bytes(cols * 4);
    size_t att = k2c_mla_ws_bytes(m, T, max_ctx, lin, xs), ffn = k2c_ffn_ws_bytes(m, T, lin, xs);
    size_t most = att > ffn ? att : ffn;
    most = most > lin ? most : lin;                       /* the head */
    /* X, XN, Y, and a server step's token ids (k2c_decode_batch_prefill) */
    return 3 * k2c_ws_bytes((size_t)T * c->hidden_size * 4) + k2c_ws_bytes((size_t)T * sizeof(int)) + most;
}

/* The rows of one call: a decode token for each of n states ss[0..n) (absorbed attention), then Tp prompt
 * tokens of state p (NULL: none). n = 0 is a prefill chunk (either MLA form, mla.c); n > 0 with Tp > 0 a
 * server step that batches a prefill chunk with its decodes. ids [n + Tp]. logits: [Tp, V] of every prompt
 * row when n = 0, else [n, V] of the decode rows; last_logits [V]: the last row's. The trace's rows of
 * a prefill's tokens start at row t_off of its Ttr rows per layer (a chunk of a longer prefill). */
static int forward_run(k2c_state *const *ss, int n, k2c_state *p, int Tp, const int *ids, float *logits,
                       float *last_logits, k2c_trace *tr, int t_off, int Ttr) {
    if (!p) Tp = 0;
    int T = n + Tp;
    if (T <= 0) { k2c_seterr("no tokens to run"); return -1; }
    k2c_state *s = n ? ss[0] : p;
    const k2c_model *m = s->m;
    const k2c_config *c = &m->cfg;
    int D = c->hidden_size, V = c->vocab_size, L = c->num_hidden_layers, H = c->num_attention_heads;
    int K = c->num_experts_per_tok, rc = -1;
    float eps = (float)c->rms_norm_eps;
    if (T > s->ws_tokens) { k2c_seterr("%d tokens in one forward call > the workspace's %d", T, s->ws_tokens); return -1; }
    for (int i = 0; i <= n; i++) {
        k2c_state *st = i < n ? ss[i] : p;
        int need = i < n ? 1 : Tp;
        if (!st || !need) continue;
        if (st->m != m) { k2c_seterr("batched states belong to different models"); return -1; }
        if (st->pos + need > st->max_ctx) {
            k2c_seterr("context full: %d cached + %d new tokens > %d (raise --ctx)", st->pos, need, st->max_ctx);
            return -1;
        }
    }
    /* the cache pages the new rows go to, before anything is written (the only allocation of a forward call:
     * one page per K2C_PAGE positions) */
    for (int i = 0; i < n; i++)
        if (k2c_state_reserve(ss[i], ss[i]->pos + 1)) return -1;
    if (Tp && k2c_state_reserve(p, p->pos + Tp)) return -1;
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= V) { k2c_seterr("token id %d out of range [0, %d)", ids[t], V); return -1; }
    k2c_ws *ws = &s->ws;
    size_t mark = ws->used;
    float *X = k2c_ws_take(ws, (size_t)T * D * sizeof *X), *XN = k2c_ws_take(ws, (size_t)T * D * sizeof *XN);
    float *Y = k2c_ws_take(ws, (size_t)T * D * sizeof *Y);
    if (!X || !XN || !Y) { k2c_seterr("workspace too small for %d tokens (%zu bytes)", T, ws->cap); goto done; }
    for (int t = 0; t < T; t++) k2c_linear_dequant_rows(&m->embed, ids[t], 1, X + (size_t)t * D);
    for (int l = 0; l < L; l++) {
        const k2c_layer *ly = &m->layers[l];
        for (int t = 0; t < T; t++) k2c_vrms_row(XN + (size_t)t * D, X + (size_t)t * D, ly->attn_norm, D, eps);
        float *amax = tr && tr->attn_max ? tr->attn_max + (size_t)l * H : NULL;
        double ta = k2c_now();      /* attention's share of the step (k2c bench; a clock read per layer) */
        if (n ? k2c_mla_batch(ss, n, p, Tp, l, XN, Y, amax) : k2c_mla_prefill(p, l, XN, Tp, Y, amax)) goto done;
        s->attn_seconds += k2c_now() - ta;
        for (size_t i = 0; i < (size_t)T * D; i++) X[i] += Y[i];
        for (int t = 0; t < T; t++) k2c_vrms_row(XN + (size_t)t * D, X + (size_t)t * D, ly->ffn_norm, D, eps);
        int *ex = tr && tr->experts && ly->is_moe ? tr->experts + ((size_t)l * Ttr + t_off) * K : NULL;
        if (tr && tr->experts && !ly->is_moe)
            for (int i = 0; i < T * K; i++) tr->experts[((size_t)l * Ttr + t_off) * K + i] = -1;
        if (k2c_ffn_forward(m, ws, l, XN, T, Y, ex)) goto done;
        for (size_t i = 0; i < (size_t)T * D; i++) X[i] += Y[i];
        if (tr && tr->hidden) memcpy(tr->hidden + ((size_t)l * Ttr + t_off) * D, X, (size_t)T * D * sizeof *X);
    }
    for (int t = 0; t < T; t++) k2c_vrms_row(XN + (size_t)t * D, X + (size_t)t * D, m->final_norm, D, eps);
    /* the rows logits are asked for: every prompt row of a prefill, the decode rows of a batch */
    int nl = n ? n : Tp;
    if (logits && k2c_matmul_ws(&m->head, XN, nl, logits, ws)) goto done;
    if (last_logits) {     /* the last row: a prefill's last prompt token, or a lone decode's token */
        if (logits && !n) memcpy(last_logits, logits + (size_t)(Tp - 1) * V, (size_t)V * sizeof *logits);
        else k2c_matvec_ws(&m->head, XN + (size_t)(T - 1) * D, last_logits, ws);
    }
    for (int i = 0; i < n; i++) ss[i]->pos++;
    if (Tp) p->pos += Tp;
    rc = 0;
done:
    ws->used = mark;
    return rc;
}

/* A decode step runs under the thread tuner (tune.c); a prefill, or a step with a prefill chunk in it, runs on
 * the count the tuner settled on (not on a probe's, which is measured on decode steps alone). */
static int forward(k2c_state *const *ss, int n, k2c_state *p, int Tp, const int *ids, float *logits,
                   float *last_logits, k2c_trace *tr, int t_off, int Ttr) {
    k2c_tune *tn = (n ? ss[0] : p)->m->tune;
    if (!n || (p && Tp) || !tn) {
        if (tn) k2c_tune_settled(tn);
        return forward_run(ss, n, p, Tp, ids, logits, last_logits, tr, t_off, Ttr);
    }
    k2c_tune_begin(tn, n);
    double t0 = k2c_now();
    int rc = forward_run(ss, n, p, Tp, ids, logits, last_logits, tr, t_off, Ttr);
    if (rc == 0) k2c_tune_end(tn, k2c_now() - t0);
    return rc;
}

int k2c_prefill(k2c_state *s, const int *ids, int T, float *logits, float *last_logits, k2c_trace *trace) {
    int ub = s->m->ubatch > 0 ? s->m->ubatch : K2C_UBATCH_DEFAULT, pos0 = s->pos, V = s->m->cfg.vocab_size;
    if (ub > s->ws_tokens) ub = s->ws_tokens;     /* ubatch raised after the state was made: its workspace's chunks */
    if (T <= 0) { k2c_seterr("no tokens to run"); return -1; }
    if (s->pos + T > s->max_ctx) {
        k2c_seterr("context full: %d cached + %d new tokens > %d (raise --ctx)", s->pos, T, s->max_ctx);
        return -1;
    }
    for (int t = 0; t < T; t += ub) {
        int n = T - t < ub ? T - t : ub;
        if (forward(NULL, 0, s, n, ids + t, logits ? logits + (size_t)t * V : NULL, t + n == T ? last_logits : NULL,
                    trace, t, T)) {
            s->pos = pos0;
            return -1;
        }
    }
    return 0;
}

int k2c_decode(k2c_state *s, int id, float *logits, k2c_trace *trace) {
    return forward(&s, 1, NULL, 0, &id, NULL, logits, trace, 0, 1);
}

int k2c_decode_batch(k2c_state *const *states, const int *ids, int n, float *logits) {
    if (n <= 0) { k2c_seterr("empty decode batch"); return -1; }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (states[i] == states[j]) { k2c_seterr("a state appears twice in one decode batch"); return -1; }
    /* A batch runs in the first state's workspace, which holds ws_tokens states; a larger one runs in turns of
     * K2C_DECODE_BATCH_MAX (every workspace holds that many). A failed turn leaves the earlier turns' states
     * advanced. */
    int step = n <= states[0]->ws_tokens ? n : K2C_DECODE_BATCH_MAX, V = states[0]->m->cfg.vocab_size;
    for (int i = 0; i < n; i += step)
        if (forward(states + i, n - i < step ? n - i : step, NULL, 0, ids + i, logits ? logits + (size_t)i * V : NULL, NULL, NULL, 0, 1))
            return -1;
    return 0;
}

int k2c_decode_batch_prefill(k2c_state *const *states, const int *ids, int n, k2c_state *p, const int *pids, int T,
                             float *logits, float *p_last) {
    if (n < 0 || T < 0 || (T && !p)) { k2c_seterr("bad step: %d decodes, %d prompt tokens", n, T); return -1; }
    if (!T) return k2c_decode_batch(states, ids, n, logits);
    if (!n) return k2c_prefill(p, pids, T, NULL, p_last, NULL);
    for (int i = 0; i < n; i++)
        if (states[i] == p) { k2c_seterr("the prefilling state is also in the decode batch"); return -1; }
    k2c_state *s = states[0];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (states[i] == states[j]) { k2c_seterr("a state appears twice in one decode batch"); return -1; }
    if (n + T <= s->ws_tokens) {
        /* the rows' ids, decode tokens first, in the workspace's slot for them (k2c_forward_ws_bytes); a failed
         * joint pass advanced no state, and the halves run apart below so that one bad half fails alone */
        size_t mark = s->ws.used;
        int *all = k2c_ws_take(&s->ws, (size_t)(n + T) * sizeof *all);
        int rc = -1;
        if (all) {
            memcpy(all, ids, (size_t)n * sizeof *all);
            memcpy(all + n, pids, (size_t)T * sizeof *all);
            rc = forward(states, n, p, T, all, logits, p_last, NULL, 0, 1);
        }
        s->ws.used = mark;
        if (rc == 0) return 0;
    }
    if (k2c_decode_batch(states, ids, n, logits)) return -1;
    return k2c_prefill(p, pids, T, NULL, p_last, NULL) ? -2 : 0;
}
