/* Expert parallelism over a k2c_comm (MPI ranks; docs/SCALING.md has the cost model).
 *
 * Every rank opens the same checkpoint; rank r computes the routed experts e with e % N == r and never reads the
 * others' weights (the model is mapped, so their pages are never brought in). Rank 0 runs everything else:
 * embedding, attention and its latent cache, the dense FFN, routers, shared experts, head, sampling, and whatever
 * front end (generate, chat, serve) drives it. Per MoE layer it broadcasts the normed hidden states and the
 * routing of the layer's T tokens, every rank computes its experts' share, and a reduction sums the shares into
 * rank 0's output:
 *
 *   rank 0:  route ── bcast(op, layer, T) ── bcast(XN [T, D], w [T, k], idx [T, k]) ── own experts + shared ── reduce
 *   rank r:           └───────────── k2c_model_follow ─────────────────────────────── own experts ──────────── ┘
 *
 * Why not replicate attention on every rank and allreduce (the usual layout): the ranks would all compute the
 * same attention at the same time, so it costs rank 0 no time to do it alone, and the other ranks then hold no
 * dense weights, no KV cache and no state protocol (states, truncation, batching stay a rank-0 matter, so every
 * front end works unchanged). The bytes per layer are the same: a broadcast and a reduction of [T, D] against
 * an allreduce of [T, D]. An all-to-all that sends each rank only the tokens routed to it saves little for K2
 * (8 of 384 experts per token: nearly every token reaches every one of up to 8 ranks) and costs a second pass.
 *
 * Fault path: a rank that dies ends the job (mpirun stops every rank, cli/main.c says so on rank 0); a rank that
 * cannot load, or loads a different model, makes every rank's k2c_model_open fail with the reason. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EP_CLOSE = 0, EP_MOE = 1, EP_MSG = 4 };     /* a message: op, layer, T, decode form */
enum { EP_REC = 256 };                              /* one rank's handshake record, bytes */

/* Rank 0's account of the exchanges, for docs/SCALING.md's calibration: how many, how many bytes went out, the
 * time in broadcasts and in the reductions (which include waiting for the slowest rank's experts). */
struct k2c_ep_stats { double layers, tokens, bytes, t_bcast, t_reduce, t_local; };

typedef struct {
    int32_t rc, pad;
    uint64_t fingerprint;
    char msg[EP_REC - 16];
} ep_record;


/* What every rank must agree on: the config, the tensor table (names, types, shapes) and the small vectors the
 * load already copied (norm gains, router biases). Weights are not read: that would touch every page of the model
 * on every rank, which is what expert parallelism avoids; two checkpoints that differ only in expert weights of
 * the same shapes are not told apart. */
static uint64_t fingerprint(const k2c_model *m) {
    const k2c_config *c = &m->cfg;
    uint64_t h = 0xcbf29ce484222325ull;
    char *js = k2c_config_to_json(c);
    if (js) { h = k2c_fnv64(h, js, strlen(js)); free(js); }
    for (int i = 0; i < m->st.ntensors; i++) {
        const k2c_tensor *t = &m->st.tensors[i];
        h = k2c_fnv64(h, t->name, strlen(t->name) + 1);
        h = k2c_fnv64(h, &t->dtype, sizeof t->dtype);
        h = k2c_fnv64(h, t->shape, (size_t)t->ndim * sizeof *t->shape);
    }
    for (int i = 0; i < m->gg.ntensors; i++) {
        const k2c_gguf_tensor *t = &m->gg.tensors[i];
        h = k2c_fnv64(h, t->name, strlen(t->name) + 1);
        h = k2c_fnv64(h, &t->type, sizeof t->type);
        h = k2c_fnv64(h, t->ne, (size_t)t->ndim * sizeof *t->ne);
    }
    size_t D = (size_t)c->hidden_size, E = (size_t)c->n_routed_experts;
    h = k2c_fnv64(h, m->final_norm, D * sizeof(float));
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const k2c_layer *ly = &m->layers[l];
        h = k2c_fnv64(h, ly->attn_norm, D * sizeof(float));
        h = k2c_fnv64(h, ly->ffn_norm, D * sizeof(float));
        if (ly->router_bias) h = k2c_fnv64(h, ly->router_bias, E * sizeof(float));
    }
    return h;
}

int k2c_ep_handshake(k2c_model *m, const k2c_model_opts *o, int load_rc, const char *dir) {
    const k2c_comm *c = o->comm;
    int N = c->size, me = c->rank;
    unsigned char *all = calloc((size_t)N, EP_REC);
    size_t *counts = malloc((size_t)N * sizeof *counts);
    if (!all || !counts) {
        free(all); free(counts);
        if (!load_rc) k2c_model_free(m);
        k2c_seterr("out of memory");
        return -1;
    }
    for (int r = 0; r < N; r++) counts[r] = EP_REC;
    ep_record own = {.rc = load_rc ? 1 : 0};
    if (load_rc) snprintf(own.msg, sizeof own.msg, "%s", k2c_errmsg());
    else own.fingerprint = k2c_fnv64(fingerprint(m), &o->exact, sizeof o->exact);   /* GGUF arithmetic: one kind on all ranks */
    memcpy(all + (size_t)me * EP_REC, &own, sizeof own);
    char why[K2C_ERRMSG_MAX] = "";
    if (c->allgather(c, all, counts, K2C_COMM_U8)) snprintf(why, sizeof why, "%s", k2c_errmsg());
    for (int r = 0; r < N && !why[0]; r++) {
        ep_record rec, r0;
        memcpy(&rec, all + (size_t)r * EP_REC, sizeof rec);
        memcpy(&r0, all, sizeof r0);
        rec.msg[sizeof rec.msg - 1] = 0;
        if (rec.rc && r == me) snprintf(why, sizeof why, "%s", own.msg);   /* our own error, as the load set it */
        else if (rec.rc) snprintf(why, sizeof why, "rank %d of %d cannot load %s: %s", r, N, dir, rec.msg);
        else if (!r0.rc && rec.fingerprint != r0.fingerprint)
            snprintf(why, sizeof why,
                     "rank %d of %d holds a different model than rank 0 at %s (config, tensor names/shapes/types, norm "
                     "gains or router biases differ); every rank must open the same checkpoint", r, N, dir);
    }
    free(all);
    free(counts);
    if (why[0]) {
        if (!load_rc) k2c_model_free(m);
        k2c_seterr("%s", why);
        return -1;
    }
    if (me == 0 && !(m->ep_stats = k2c_model_own(m, sizeof *m->ep_stats))) {
        k2c_model_free(m);
        k2c_seterr("out of memory");
        return -1;
    }
    if (m->ep_stats) memset(m->ep_stats, 0, sizeof *m->ep_stats);
    m->comm = c;
    m->ep_rank = me;
    m->ep_size = N;
    return 0;
}

size_t k2c_ep_ws_bytes(const k2c_model *m, int T) {
    const k2c_config *c = &m->cfg;
    return k2c_ws_bytes((size_t)T * (size_t)(c->hidden_size + 2 * c->num_experts_per_tok) * 4);
}

int k2c_ep_moe(const k2c_model *m, k2c_ws *ws, int layer, const float *XN, int T, const int *idx, const float *w,
               float *out, int decode) {
    const k2c_comm *c = m->comm;
    const k2c_config *cf = &m->cfg;
    size_t D = (size_t)cf->hidden_size, K = (size_t)cf->num_experts_per_tok, t = (size_t)T, mark = ws->used;
    int32_t msg[EP_MSG] = {EP_MOE, layer, T, decode};
    float *buf = k2c_ws_take(ws, t * (D + 2 * K) * 4);
    if (!buf) { k2c_seterr("workspace too small (expert-parallel MoE of %d tokens)", T); return -1; }
    /* one message for the tokens and their routing: the other ranks wait on it, so fewer is faster */
    memcpy(buf, XN, t * D * sizeof *buf);
    memcpy(buf + t * D, w, t * K * sizeof *buf);
    memcpy(buf + t * (D + K), idx, t * K * sizeof *idx);
    int rc = -1;
    struct k2c_ep_stats *st = m->ep_stats;
    double t0 = k2c_now();
    if (c->bcast(c, msg, EP_MSG, K2C_COMM_I32) || c->bcast(c, buf, t * (D + 2 * K) * 4, K2C_COMM_U8)) goto done;
    ws->used = mark;        /* the other ranks have it: the experts may reuse the space */
    double t1 = k2c_now();
    if (k2c_moe_experts(m, ws, layer, XN, T, idx, w, out, 1, decode)) goto done;
    double t2 = k2c_now();
    if (c->reduce(c, out, t * D, K2C_COMM_F32, K2C_COMM_SUM, 0)) goto done;
    st->layers++;
    st->tokens += T;
    st->bytes += (double)(t * (D + 2 * K) * 4 + EP_MSG * 4);
    st->t_bcast += t1 - t0;
    st->t_local += t2 - t1;
    st->t_reduce += k2c_now() - t2;
    rc = 0;
done:
    ws->used = mark;
    return rc;
}


/* Every rank's peak RSS to rank 0, which logs it: the memory that expert parallelism is meant to split. */
static int report_rss(const k2c_model *m) {
    const k2c_comm *c = m->comm;
    double *rss = calloc((size_t)c->size, sizeof *rss);
    size_t *counts = malloc((size_t)c->size * sizeof *counts);
    int rc = -1;
    if (!rss || !counts) { k2c_seterr("out of memory"); goto done; }
    for (int r = 0; r < c->size; r++) counts[r] = 1;
    rss[c->rank] = (double)k2c_proc_kb("/proc/self/status", "VmHWM");    /* peak resident memory */
    if (c->gather(c, rss, counts, K2C_COMM_F64)) goto done;
    if (c->rank == 0) {
        char line[1024];
        int n = snprintf(line, sizeof line, "expert parallel over %d ranks: peak RSS", c->size);
        for (int r = 0; r < c->size && n < (int)sizeof line - 32; r++)
            n += snprintf(line + n, sizeof line - (size_t)n, "%s rank %d %.1f MB", r ? "," : "", r, rss[r] / 1e6);
        k2c_log("%s\n", line);
        const struct k2c_ep_stats *st = m->ep_stats;
        if (st && st->layers > 0)
            k2c_log("expert parallel exchanges: %.0f MoE layers x %.1f tokens, %.2f MB broadcast; rank 0 spent %.1f ms "
                    "broadcasting, %.1f ms on its experts and the shared expert, %.1f ms in reductions (waiting for the "
                    "slowest rank included)\n", st->layers, st->tokens / st->layers, st->bytes / 1e6, st->t_bcast * 1e3,
                    st->t_local * 1e3, st->t_reduce * 1e3);
    }
    rc = 0;
done:
    free(rss);
    free(counts);
    return rc;
}

void k2c_ep_close(k2c_model *m) {
    if (m->ep_size <= 1 || m->ep_rank != 0 || m->ep_closed) return;
    int32_t msg[EP_MSG] = {EP_CLOSE, 0, 0, 0};
    m->ep_closed = 1;
    if (m->comm->bcast(m->comm, msg, EP_MSG, K2C_COMM_I32) == 0) report_rss(m);
}

int k2c_model_follow(k2c_model *m) {
    if (m->ep_size <= 1 || m->ep_rank == 0) return 0;
    const k2c_comm *c = m->comm;
    const k2c_config *cf = &m->cfg;
    int L = cf->num_hidden_layers, E = cf->n_routed_experts, rc = -1, cap = 0;
    size_t D = (size_t)cf->hidden_size, K = (size_t)cf->num_experts_per_tok;
    k2c_ws ws = {0};
    for (;;) {
        int32_t msg[EP_MSG];
        if (c->bcast(c, msg, EP_MSG, K2C_COMM_I32)) goto done;
        if (msg[0] == EP_CLOSE) { rc = report_rss(m); break; }
        int layer = msg[1], T = msg[2];
        if (msg[0] != EP_MOE || layer < 0 || layer >= L || !m->layers[layer].is_moe || T <= 0 || T > (1 << 20)) {
            k2c_seterr("rank %d: unexpected message from rank 0 (op %d, layer %d, %d tokens): do the ranks run the "
                       "same k2c?", m->ep_rank, msg[0], layer, T);
            goto done;
        }
        if (T > cap) {      /* grown in powers of two, so a run allocates a few times, not per prompt */
            int nc = cap ? cap : 64;
            while (nc < T) nc *= 2;
            free(ws.base);
            ws.used = 0;
            ws.cap = k2c_forward_ws_bytes(m, nc, nc) + k2c_ep_ws_bytes(m, nc) + k2c_ws_bytes((size_t)nc * D * 4);
            if (!(ws.base = aligned_alloc(K2C_WS_ALIGN, ws.cap))) {
                k2c_seterr("rank %d: out of memory for a %zu-byte workspace", m->ep_rank, ws.cap);
                ws.cap = 0;
                goto done;
            }
            cap = nc;
        }
        ws.used = 0;
        size_t t = (size_t)T;
        float *buf = k2c_ws_take(&ws, t * (D + 2 * K) * 4), *Y = k2c_ws_take(&ws, t * D * 4);
        if (c->bcast(c, buf, t * (D + 2 * K) * 4, K2C_COMM_U8)) goto done;
        const float *XN = buf, *w = buf + t * D;
        const int *idx = (const int *)(buf + t * (D + K));
        for (size_t i = 0; i < t * K; i++)
            if (idx[i] < 0 || idx[i] >= E) { k2c_seterr("rank %d: expert %d from rank 0 out of range", m->ep_rank, idx[i]); goto done; }
        if (k2c_moe_experts(m, &ws, layer, XN, T, idx, w, Y, 0, msg[3])) goto done;
        if (c->reduce(c, Y, t * D, K2C_COMM_F32, K2C_COMM_SUM, 0)) goto done;
    }
done:
    free(ws.base);
    return rc;
}

int k2c_model_rank(const k2c_model *m, int *size) {
    if (size) *size = m->ep_size > 1 ? m->ep_size : 1;
    return m->ep_size > 1 ? m->ep_rank : 0;
}
