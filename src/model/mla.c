/* Multi-head Latent Attention (spec section 4). Only c = RMSNorm(kv_a x)[:r] and the roped k_pe [dr] are
 * cached per token and layer (576 floats for K2). Two forms of the same attention, which must agree:
 *
 * absorbed (latent): W_kvb is folded into the query and the output: q'_h = W_kvb[h, k rows]^T q_nope_h,
 *   score = q'_h . c_t + q_pe_h . k_pe_t, o_h = W_kvb[h, v rows] (sum_t p_t c_t). Every query of a token
 *   (all heads) meets each cached row once, so a layer reads its cache once per token, whatever H is.
 *   Decode always; prefill chunks that are short next to what is cached.
 * expanded: keys and values are rebuilt from the cache in blocks of positions, kv = W_kvb c, and ordinary
 *   causal softmax attention runs per head over each block. Costs a GEMM over the cache per call, but
 *   (dn + dr + dv) instead of (2r + dr) per (query, key, head): long prompts from an empty cache.
 *
 * Both are tiled with an online softmax (running max and sum per query and head, rescaled as the max
 * rises), so no buffer grows with T x N, and the absorbed form splits long caches over threads
 * flash-decoding style: each thread a block of positions with its own max/sum/accumulator, merged in a
 * fixed order (a result depends on the thread count, never on scheduling).
 *
 * The latent cache rows (c then k_pe) live in the state's pages (cache.c); every read goes through
 * k2c_cache_rows_f32 a tile at a time, and no tile crosses a page. On a BF16 cache outside exact mode (and a CPU
 * with AVX512-BF16) the two products of a tile read the stored rows directly as BF16 dot products instead
 * (attn_bf16.c: the queries and softmax weights rounded to BF16, the accumulator in its own lane order). */
#include "model/model.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define QK_NORM_EPS 1e-6f   /* the reference builds q_a_layernorm and kv_a_layernorm with eps 1e-6 */
#define TILE 64             /* cached positions per score tile (absorbed): H x TILE scores per thread */
#define MIN_SPLIT 128       /* fewest positions a thread takes of one token's cache (absorbed) */
#define QBLOCK 16           /* queries of one head per task (expanded) */
/* Fewest query rows of a block whose scores take the table's GEMM tile: packing each cached tile into the tile's
 * panel pays off from a whole 32-row block of the micro-kernel on. Measured, one layer, one thread (ms): BF16
 * cache, Moonlight shape at depth 8000, decode (16 rows) 1.8 with attn_bf16.c's dot products vs 2.5 with the tile,
 * a 64-token chunk 75 vs 69; the server benchmark's model at depth 4000, chunk 7.5 vs 6.3; fp32 decode 3.2 vs 3.4. */
#define GEMM_ROWS 32
#define KBLOCK 256          /* positions expanded at once (expanded): KBLOCK x H x (dn + dv) floats */
_Static_assert(K2C_PAGE % KBLOCK == 0, "an expanded block must not cross a cache page");

/* The vector kernel (sum of squares in double, as before). */
void k2c_rmsnorm(float *y, const float *x, const float *w, int n, float eps) { k2c_vrms_row(y, x, w, n, eps); }

/* Scratch of ws (stack-like: the caller's mark is restored on return). */
#define TAKE(p, n) ((p) = k2c_ws_take(ws, (size_t)(n) * sizeof *(p)))

typedef struct { int H, dn, dr, dv, r, qd, kvd, rs; } dims;
static dims dims_of(const k2c_config *c) {
    dims d = {c->num_attention_heads, c->qk_nope_head_dim, c->qk_rope_head_dim, c->v_head_dim, c->kv_lora_rank, 0, 0, 0};
    d.qd = d.dn + d.dr; d.kvd = d.dn + d.dv; d.rs = d.r + d.dr;
    return d;
}

/* Waking a second thread costs more than a tiny model's whole attention (about 1 MFLOP: a few hundred us on one
 * core, against fork/join and spinning that a busy machine stretches to milliseconds). */
static int worth_threads(const k2c_model *m, double flops) { return m->cx.nthreads > 1 && flops > 1e6; }

/* Q [T, H*(dn+dr)] and the new cache rows; q_pe roped in place. Token t goes to state ss[t] at position
 * ss[t]->pos + pos_off[t]: a prefill passes one state T times with offsets 0..T-1, a batched decode n
 * different states with offset 0. */
static int project_qkv(k2c_state *const *ss, const int *pos_off, int layer, const float *XN, int T, float *Q, k2c_ws *ws) {
    const k2c_model *m = ss[0]->m;
    const k2c_config *c = &m->cfg;
    const k2c_layer *ly = &m->layers[layer];
    dims d = dims_of(c);
    int ql = c->q_lora_rank;
    size_t mark = ws->used;
    float *tmp;
    if (!TAKE(tmp, (size_t)T * (size_t)((ql > d.rs ? ql : d.rs)) + (size_t)ql + (size_t)d.dr + (size_t)d.rs)) {
        k2c_seterr("workspace too small (projections of %d tokens)", T);
        return -1;
    }
    float *kva = tmp, *cs = tmp + (size_t)T * (size_t)((ql > d.rs ? ql : d.rs)) + (size_t)ql, *rowtmp = cs + d.dr;
    if (T == 1) {   /* decode: both projections of x in one parallel loop */
        kva = tmp + (ql > 0 ? ql : 0);
        k2c_matvec_job j[2] = {{ql ? &ly->q_a : &ly->q, XN, ql ? tmp : Q}, {&ly->kv_a, XN, kva}};
        k2c_matvec_batch_ws(j, 2, ws);
        if (ql) {
            k2c_rmsnorm(tmp, tmp, ly->q_a_norm, ql, QK_NORM_EPS);
            k2c_matvec_ws(&ly->q_b, tmp, Q, ws);
        }
    } else {
        int bad = 0;
        if (ql) {
            bad |= k2c_matmul_ws(&ly->q_a, XN, T, tmp, ws);
            for (int t = 0; t < T; t++) k2c_rmsnorm(tmp + (size_t)t * ql, tmp + (size_t)t * ql, ly->q_a_norm, ql, QK_NORM_EPS);
            bad |= k2c_matmul_ws(&ly->q_b, tmp, T, Q, ws);
        } else {
            bad |= k2c_matmul_ws(&ly->q, XN, T, Q, ws);
        }
        bad |= k2c_matmul_ws(&ly->kv_a, XN, T, tmp, ws);
        if (bad) { ws->used = mark; return -1; }
    }
    for (int t = 0; t < T; t++) {
        int pos = ss[t]->pos + pos_off[t];
        float *a = kva + (size_t)t * d.rs, *row = rowtmp;
        k2c_rmsnorm(row, a, ly->kv_a_norm, d.r, QK_NORM_EPS);
        memcpy(row + d.r, a + d.r, (size_t)d.dr * sizeof *row);
        k2c_rope_table(cs, d.dr, pos, m->inv_freq, m->rope_mscale);     /* once per position, not per head */
        k2c_rope_apply_table(row + d.r, d.dr, cs);
        k2c_cache_write(ss[t], layer, pos, row);                         /* in the state's format */
        for (int h = 0; h < d.H; h++) k2c_rope_apply_table(Q + (size_t)t * d.H * d.qd + (size_t)h * d.qd + d.dn, d.dr, cs);
    }
    ws->used = mark;
    return 0;
}

/* ------------------------------------------------------------------ absorbed (latent) attention */
/* Head h of QA [nq, H, r + dr]: (q'_{i,h}, q_pe_{i,h}) with q' = W_kvb[h, key rows]^T q_nope_{i,h}, laid out like a
 * cache row so that one product gives the whole score; each weight row dequantized once for all nq tokens.
 * row: scratch [r]. */
static const k2c_linear *kvb_abs(const k2c_layer *ly) { return ly->kv_b_abs.w ? &ly->kv_b_abs : &ly->kv_b; }
/* Row r of kv_b as fp32: in place when stored so (no copy of 2 x H x 256 rows per layer and token), else
 * converted into row. */
static const float *kvb_row(const k2c_linear *kvb, int r, float *row) {
    if (kvb->fmt == K2C_FMT_F32) return (const float *)kvb->w + (size_t)r * (size_t)kvb->cols;
    k2c_linear_rows_f32(kvb, r, 1, row);
    return row;
}

static void absorb_query_head(const dims *d, const k2c_layer *ly, int h, const float *Q, int nq, float *QA, float *row) {
    const k2c_linear *kvb = kvb_abs(ly);
    for (int i = 0; i < nq; i++) {
        float *qa = QA + ((size_t)i * d->H + h) * d->rs;
        memset(qa, 0, (size_t)d->r * sizeof *QA);
        memcpy(qa + d->r, Q + ((size_t)i * d->H + h) * d->qd + d->dn, (size_t)d->dr * sizeof *QA);   /* q_pe */
    }
    for (int k = 0; k < d->dn; k++) {
        const float *w = kvb_row(kvb, h * d->kvd + k, row);
        for (int i = 0; i < nq; i++) k2c_vaxpy(QA + ((size_t)i * d->H + h) * d->rs, Q[((size_t)i * d->H + h) * d->qd + k], w, d->r);
    }
}

/* The same from kv_b_qt (model.h: k2c_model_derive_absorbed): q'_{i,h} [r] = kv_b_qt's rows h r .. h r + r - 1
 * times q_nope_{i,h} [dn], through the matvec kernels (a BF16 copy, or a GGUF file's attn_k_b as stored: for a
 * block format 2 bytes a weight or fewer, against the 4 of kv_b_abs's fp32 copy). xq: scratch of k2c_matvec_rows_scratch(kv_b_qt). */
static void absorb_query_head_t(const dims *d, const k2c_layer *ly, int h, const float *Q, int nq, float *QA, void *xq) {
    for (int i = 0; i < nq; i++) {
        float *qa = QA + ((size_t)i * d->H + h) * d->rs;
        const float *q = Q + ((size_t)i * d->H + h) * d->qd;
        k2c_matvec_rows_s(&ly->kv_b_qt, h * d->r, d->r, q, qa, xq);
        memcpy(qa + d->r, q + d->dn, (size_t)d->dr * sizeof *QA);                                       /* q_pe */
    }
}

/* Head h of A [nq, H, dv]: o_{i,h} = W_kvb[h, value rows] ctx_{i,h}. With kv_b_qt set (see above) from the stored
 * rows (kv_b's, or attn_v_b's) through the matvec kernels (xq: scratch of k2c_matvec_rows_scratch of those): a Q8_0
 * row is 1.06 bytes a weight against the fp32 copy's 4. */
static void absorb_value_head_rows(const dims *d, const k2c_layer *ly, int h, const float *CTX, int nq, float *A, void *xq) {
    const k2c_linear *v = ly->kv_b_v.w ? &ly->kv_b_v : &ly->kv_b;       /* attn_v_b as stored, or kv_b's value rows */
    int r0 = ly->kv_b_v.w ? h * d->dv : h * d->kvd + d->dn;
    for (int i = 0; i < nq; i++)
        k2c_matvec_rows_s(v, r0, d->dv, CTX + ((size_t)i * d->H + h) * d->r, A + ((size_t)i * d->H + h) * d->dv, xq);
}

static void absorb_value_head(const dims *d, const k2c_layer *ly, int h, const float *CTX, int nq, float *A, float *row) {
    const k2c_linear *kvb = kvb_abs(ly);
    for (int k = 0; k < d->dv; k++) {
        const float *w = kvb_row(kvb, h * d->kvd + d->dn + k, row);
        for (int i = 0; i < nq; i++) A[((size_t)i * d->H + h) * d->dv + k] = k2c_vdot(w, CTX + ((size_t)i * d->H + h) * d->r, d->r);
    }
}

static int ldq_of(int rs) { return (rs + 31) / 32 * 32; }
/* Query rows of one block (tokens x heads). A prefill chunk's tokens go through the cache together, several
 * tokens' heads per block, so each tile of cached rows is read once for all of them (a chunk of 64 tokens read
 * the cache 64 times when each token had its own pass) and the score product has enough rows to run as the
 * kernel table's GEMM tile. Bounded so that a block's accumulators [R, r] (256 KB at most), scores [R, TILE] and
 * packed queries stay in L2 while it walks the cache; at least one token's H rows. */
static int rows_max(const dims *d) {
    int R = 65536 / d->r;
    R = R > 256 ? 256 : R;
    R = R / d->H * d->H;
    return R < d->H ? d->H : R;
}
/* A thread's scratch: scores S [R, TILE], a weight row [r] (absorption), the block's queries packed for the
 * table's gemm_tile [k2c_gemm_packed_size(R, rs)] and its panel [K2C_GEMM_RB, rs], a converted tile of a BF16 or
 * q8_0 cache [TILE, rs], the BF16 path's rounded queries [R, ldq] and P pairs [R, TILE / 2], and the prepared
 * input of kv_b_qt's / the value rows' products (xq: the most k2c_matvec_rows_scratch of any layer's). */
typedef struct { float *S, *row, *xp, *panel, *conv; uint16_t *qb; uint32_t *pp; char *xq; } lat_scr;
static size_t lat_scratch(const k2c_model *m, const dims *d, char *base, lat_scr *o) {
    size_t R = (size_t)rows_max(d), off = 0, bf = m->cache_type == K2C_CACHE_BF16, nxq = 1;
    for (int L = 0; L < m->cfg.num_hidden_layers; L++) {    /* the layers' kv_b may differ in type (and form) */
        const k2c_layer *ly = &m->layers[L];
        if (!ly->kv_b_qt.w) continue;
        size_t a = k2c_matvec_rows_scratch(ly->kv_b_v.w ? &ly->kv_b_v : &ly->kv_b), b = k2c_matvec_rows_scratch(&ly->kv_b_qt);
        nxq = a > nxq ? a : nxq;
        nxq = b > nxq ? b : nxq;
    }
#define PIECE(field, type, n)                                                   \
    do {                                                                        \
        if (base) o->field = (type *)(void *)(base + off);                      \
        off += k2c_ws_bytes((size_t)(n) * sizeof(type));                        \
    } while (0)
    PIECE(S, float, R * TILE);
    PIECE(row, float, d->r);
    PIECE(xp, float, k2c_gemm_packed_size((int)R, d->rs));
    PIECE(panel, float, (size_t)K2C_GEMM_RB * d->rs);
    PIECE(conv, float, m->cache_type ? (size_t)TILE * d->rs : 1);
    PIECE(qb, uint16_t, bf ? R * ldq_of(d->rs) : 1);
    PIECE(pp, uint32_t, bf ? R * (TILE / 2) : 1);
    PIECE(xq, char, nxq);
#undef PIECE
    return off;
}

/* One block: g tokens of state st at consecutive positions (cache lengths len0, len0 + 1, ...; g > 1 only in a
 * prefill chunk) against the positions [j0, j1) of their cache (layer), all H heads of each: R = g H query rows
 * qa [R, r + dr], running max m [R], sum l [R] and unnormalized accumulator acc [R, r]. Each tile of cached rows
 * is read once for all R rows. A row's positions at or past its token's length weigh exactly 0, so no token sees
 * a later one. Within one kind of product a score or an accumulator element does not depend on which rows were
 * computed with it; a block of GEMM_ROWS rows or more takes the GEMM tile for its scores, a smaller one the dot
 * products, which sum in another order (a float rounding apart). */
static void latent_block(const k2c_model *mdl, const dims *d, const k2c_state *st, int layer, int g, int len0, int j0, int j1,
                         const float *qa, float scale, float *m, float *l, float *acc, const lat_scr *w, int fast) {
    const k2c_kernels *k = mdl->cx.k;
    int R = g * d->H, ldq = ldq_of(d->rs);
    float *S = w->S;
    for (int i = 0; i < R; i++) { m[i] = -FLT_MAX; l[i] = 0; }
    memset(acc, 0, (size_t)R * d->r * sizeof *acc);
    /* the queries in the score product's layout, once per block */
    int bftile = fast && k->gemm_tile_bf16 && R >= GEMM_ROWS, tiled = !fast && k->gemm_tile && R >= GEMM_ROWS;
    if (bftile) {
        k2c_gemm_pack_x_bf16(qa, R, d->rs, (uint32_t *)w->xp);
    } else if (fast) {
        for (int i = 0; i < R; i++) k2c_attn_bf16_round(qa + (size_t)i * d->rs, d->rs, ldq, w->qb + (size_t)i * ldq);
    } else if (tiled) {
        k2c_gemm_pack_x(qa, R, d->rs, w->xp);
    }
    for (int t0 = j0, nt; t0 < j1; t0 += nt) {
        int pend = (t0 / K2C_PAGE + 1) * K2C_PAGE, ld;        /* a tile never crosses a page */
        nt = j1 - t0 < TILE ? j1 - t0 : TILE;
        nt = pend - t0 < nt ? pend - t0 : nt;
        /* S [R, nt] = scale (Q' C^T + Q_pe K_pe^T) as one product: query rows (q', q_pe) against cache rows (c, k_pe);
         * a BF16 or q8_0 cache's tile converted once (L2-sized) for both products. The table's GEMM tile takes the
         * cached rows as its weight rows and the queries as its tokens: broadcast cache values against 32 query
         * rows at once, no horizontal sums (the dot products end every score with one). */
        const float *tile = NULL;
        if (bftile) {
            k->gemm_tile_bf16((const uint16_t *)k2c_cache_row(st, layer, t0), (size_t)d->rs, nt, d->rs, (const uint32_t *)w->xp, R, S,
                              TILE, (uint32_t *)w->panel);
            for (int i = 0; i < R; i++) k2c_vscale(S + (size_t)i * TILE, nt, scale);
        } else if (fast) {
            k2c_attn_bf16_scores(R, w->qb, ldq, k2c_cache_row(st, layer, t0), d->rs, nt, scale, S, TILE);
        } else {
            tile = k2c_cache_rows_f32(st, layer, t0, nt, 0, d->rs, w->conv, &ld);
            if (tiled && ld == d->rs) {
                k->gemm_tile(tile, nt, d->rs, w->xp, R, S, TILE, w->panel);
                for (int i = 0; i < R; i++) k2c_vscale(S + (size_t)i * TILE, nt, scale);
            } else {
                k2c_vgemm_nt(S, TILE, qa, d->rs, R, tile, ld, nt, d->rs, scale, 0);
            }
        }
        for (int u = 0; u < g; u++) {
            int jn = len0 + u - t0;                  /* positions of this tile that token u sees */
            jn = jn < nt ? jn : nt;
            for (int h = 0; h < d->H; h++) {
                int i = u * d->H + h;
                float *sh = S + (size_t)i * TILE;
                if (jn <= 0) { memset(sh, 0, (size_t)nt * sizeof *sh); continue; }
                float tm = k2c_vmax(sh, jn);
                if (tm > m[i]) {
                    if (m[i] != -FLT_MAX) {
                        float alpha = k2c_vexpf(m[i] - tm);
                        k2c_vscale(acc + (size_t)i * d->r, d->r, alpha);
                        l[i] *= alpha;
                    }
                    m[i] = tm;
                }
                l[i] += k2c_vexp_sum(sh, jn, m[i]);
                for (int j = jn; j < nt; j++) sh[j] = 0;
            }
        }
        if (fast) k2c_attn_bf16_acc(R, acc, d->r, S, TILE, w->pp, k2c_cache_row(st, layer, t0), d->rs, nt, d->r);
        else k2c_vgemm_acc(acc, d->r, S, TILE, R, tile, ld, nt, d->r);     /* acc [R, r] += P [R, nt] C */
    }
}

/* A block of attend_latent: tokens [i0, i0 + g) against positions [j0, j1); its accumulators at row `part` of the
 * split tokens' buffer (-1: straight in CTX), its max and sum at ml + mlo ([g H] each). */
typedef struct { int i0, g, j0, j1, part, mlo; } lblock;

/* Absorbed attention of nq tokens (all heads each), in one parallel region: absorb the queries (threads take
 * heads), attend (threads take blocks), merge, project the values (heads again). Token i's cache is state st[i]'s,
 * positions [0, len[i]); Q [nq, H, dn + dr] holds its roped queries. Out: A [nq, H, dv] and mx [nq, H] (largest
 * scaled logit). Scratch: QA [nq, H, r + dr], CTX [nq, H, r]. Consecutive tokens of one state (a prefill chunk)
 * share blocks of up to rows_max / H tokens; a lone token (decode) whose cache is long next to the work per thread
 * is split into blocks of positions, flash-decoding style, merged in block order. */
static int attend_latent(const k2c_model *m, int layer, int nq, const k2c_state *const *st, const int *len,
                         const float *Q, float *QA, float *CTX, float *A, float *mx, k2c_ws *ws) {
    dims d = dims_of(&m->cfg);
    const k2c_layer *ly = &m->layers[layer];
    size_t mark = ws->used;
    int nth = m->cx.nthreads, rc = -1;
    double flops = 0;
    for (int i = 0; i < nq; i++) flops += (double)len[i] * d.H * (2 * d.r + d.dr) + (double)d.H * d.kvd * d.r;
    int par = worth_threads(m, flops);
    /* lone tokens: enough blocks each to give every thread work when tokens are fewer than threads */
    int want = par ? (nth + nq - 1) / nq : 1, G = rows_max(&d) / d.H, nblk = 0, nml = 0, npart = 0;
    int *tfirst, *tcnt;
    lblock *bl;
    if (!TAKE(tfirst, nq) || !TAKE(tcnt, nq) || !TAKE(bl, nq + nth)) {
        k2c_seterr("workspace too small (attention of %d tokens)", nq);
        goto done;
    }
    for (int i = 0; i < nq;) {
        int run = 1;
        while (i + run < nq && st[i + run] == st[i] && len[i + run] == len[i] + run) run++;
        int g = run < G ? run : G;
        if (par && g > (run + nth - 1) / nth) g = (run + nth - 1) / nth;     /* a block per thread at least */
        if (g > 1) {
            for (int u = 0; u < run; u += g) {
                int gg = run - u < g ? run - u : g;
                bl[nblk] = (lblock){i + u, gg, 0, len[i + u + gg - 1], -1, nml};
                for (int v = 0; v < gg; v++) { tfirst[i + u + v] = nblk; tcnt[i + u + v] = 1; }
                nml += 2 * gg * d.H;
                nblk++;
            }
        } else {
            for (int u = i; u < i + run; u++) {
                int nb = (len[u] + MIN_SPLIT - 1) / MIN_SPLIT;
                nb = nb < want ? nb : want;
                nb = nb < 1 ? 1 : nb;
                tfirst[u] = nblk;
                tcnt[u] = nb;
                for (int k = 0; k < nb; k++) {
                    int j0 = (int)((long long)len[u] * k / nb), j1 = (int)((long long)len[u] * (k + 1) / nb);
                    bl[nblk++] = (lblock){u, 1, j0, j1, nb > 1 ? npart++ : -1, nml};
                    nml += 2 * d.H;
                }
            }
        }
        i += run;
    }
    /* per block: m, l [g H]; accumulators: a split token's blocks in `part`, the others' in CTX */
    float *ml, *part;
    char *scr;
    int fast = k2c_attn_bf16_ok(m);
    size_t per = lat_scratch(m, &d, NULL, NULL);
    if (!TAKE(ml, nml) || !TAKE(part, (size_t)npart * d.H * d.r + 1) || !(scr = k2c_ws_take(ws, per * (size_t)nth))) {
        k2c_seterr("workspace too small (attention of %d tokens in %d blocks)", nq, nblk);
        goto done;
    }
    float scale = m->attn_scale;
    #pragma omp parallel if (par) num_threads(m->cx.team)
    {
        lat_scr w;
        lat_scratch(m, &d, scr + per * (size_t)omp_get_thread_num(), &w);
        #pragma omp for schedule(static)
        for (int h = 0; h < d.H; h++) {
            if (ly->kv_b_qt.w) absorb_query_head_t(&d, ly, h, Q, nq, QA, w.xq);
            else absorb_query_head(&d, ly, h, Q, nq, QA, w.row);
        }
        #pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nblk; b++) {
            const lblock *B = &bl[b];
            float *acc = B->part < 0 ? CTX + (size_t)B->i0 * d.H * d.r : part + (size_t)B->part * d.H * d.r;
            latent_block(m, &d, st[B->i0], layer, B->g, len[B->i0], B->j0, B->j1, QA + (size_t)B->i0 * d.H * d.rs, scale,
                         ml + B->mlo, ml + B->mlo + (size_t)B->g * d.H, acc, &w, fast);
        }
        /* merge: ctx = sum_b e^(m_b - M) acc_b / sum_b e^(m_b - M) l_b, blocks in order */
        #pragma omp for schedule(static)
        for (int ih = 0; ih < nq * d.H; ih++) {
            int i = ih / d.H, h = ih % d.H, b0 = tfirst[i], nb = tcnt[i];
            float *ctx = CTX + (size_t)ih * d.r, M = -FLT_MAX, L = 0;
            for (int b = b0; b < b0 + nb; b++) {
                float mb = ml[bl[b].mlo + (i - bl[b].i0) * d.H + h];
                M = mb > M ? mb : M;
            }
            if (nb > 1) memset(ctx, 0, (size_t)d.r * sizeof *ctx);
            for (int b = b0; b < b0 + nb; b++) {
                int ri = (i - bl[b].i0) * d.H + h;
                float mb = ml[bl[b].mlo + ri], w8 = nb > 1 ? k2c_vexpf(mb - M) : 1.0f;
                L += w8 * ml[bl[b].mlo + bl[b].g * d.H + ri];
                if (nb > 1) k2c_vaxpy(ctx, w8, part + ((size_t)bl[b].part * d.H + h) * d.r, d.r);
            }
            k2c_vscale(ctx, d.r, 1.0f / L);
            if (fast) k2c_attn_bf16_unpermute(ctx, d.r);       /* the fast path's accumulator order */
            mx[ih] = M;
        }
        #pragma omp for schedule(static)
        for (int h = 0; h < d.H; h++) {
            if (ly->kv_b_qt.w) absorb_value_head_rows(&d, ly, h, CTX, nq, A, w.xq);
            else absorb_value_head(&d, ly, h, CTX, nq, A, w.row);
        }
    }
    rc = 0;
done:
    ws->used = mark;
    return rc;
}

/* ------------------------------------------------------------------ expanded attention (prefill) */
/* T new tokens of s at positions s->pos.., Q [T, H, dn + dr] roped, their rows already in the cache. Keys and
 * values are expanded KBLOCK positions at a time; A [T, H, dv] and mx [T, H] out. */
static int attend_expanded(k2c_state *s, int layer, const float *Q, int T, float *A, float *mx, k2c_ws *ws) {
    const k2c_model *m = s->m;
    const k2c_layer *ly = &m->layers[layer];
    dims d = dims_of(&m->cfg);
    int N = s->pos + T, B = N < KBLOCK ? N : KBLOCK, rc = -1, nth = m->cx.nthreads;
    size_t mark = ws->used, nS = k2c_ws_bytes((size_t)QBLOCK * B * sizeof(float));
    size_t per = nS + k2c_ws_bytes((size_t)QBLOCK * d.dv * sizeof(float));      /* S and O per thread */
    float *C, *KV, *l, *KP = NULL;
    char *scr;
    if (!TAKE(C, (size_t)B * d.r) || !TAKE(KV, (size_t)B * d.H * d.kvd) || !TAKE(l, (size_t)T * d.H) ||
        (s->cache_type && !TAKE(KP, (size_t)B * d.dr)) ||
        !(scr = k2c_ws_take(ws, per * (size_t)nth))) {
        k2c_seterr("workspace too small (prefill attention of %d tokens)", T);
        goto done;
    }
    for (int i = 0; i < T * d.H; i++) { mx[i] = -FLT_MAX; l[i] = 0; }
    memset(A, 0, (size_t)T * d.H * d.dv * sizeof *A);
    float scale = m->attn_scale;
    for (int j0 = 0; j0 < N; j0 += B) {
        int nb = N - j0 < B ? N - j0 : B;
        int ldc, ldk;       /* a block [j0, j0 + B) lies in one page: B divides K2C_PAGE, or B = N < KBLOCK */
        const float *cr = k2c_cache_rows_f32(s, layer, j0, nb, 0, d.r, C, &ldc);
        if (cr != C) for (int j = 0; j < nb; j++) memcpy(C + (size_t)j * d.r, cr + (size_t)j * ldc, (size_t)d.r * sizeof *C);
        const float *kpe = k2c_cache_rows_f32(s, layer, j0, nb, d.r, d.dr, KP, &ldk);   /* k_pe of the block */
        if (k2c_matmul_ws(&ly->kv_b, C, nb, KV, ws)) goto done;
        /* queries that see this block: t with s->pos + t >= j0, in groups of QBLOCK per head */
        int tfirst = j0 - s->pos > 0 ? j0 - s->pos : 0, nt = T - tfirst, ng = (nt + QBLOCK - 1) / QBLOCK;
        int par = worth_threads(m, (double)nt * d.H * nb * (d.dn + d.dr + d.dv));
        #pragma omp parallel if (par) num_threads(m->cx.team)
        {
            char *mine = scr + per * (size_t)omp_get_thread_num();
            float *S = (float *)mine, *O = (float *)(mine + nS);
            /* head-major: a thread runs a group of queries of one head against that head's block of keys */
            #pragma omp for schedule(dynamic, 1)
            for (int hg = 0; hg < ng * d.H; hg++) {
                int h = hg / ng, t0 = tfirst + (hg % ng) * QBLOCK, nq = T - t0 < QBLOCK ? T - t0 : QBLOCK;
                int jmax = s->pos + t0 + nq - j0;              /* keys the last query of the group sees */
                jmax = jmax < nb ? jmax : nb;
                const float *q = Q + ((size_t)t0 * d.H + h) * d.qd;
                /* S [nq, jmax] = scale (Q_nope K^T + Q_pe K_pe^T) */
                k2c_vgemm_nt(S, B, q, d.H * d.qd, nq, KV + (size_t)h * d.kvd, d.H * d.kvd, jmax, d.dn, scale, 0);
                k2c_vgemm_nt(S, B, q + d.dn, d.H * d.qd, nq, kpe, ldk, jmax, d.dr, scale, 1);
                for (int u = 0; u < nq; u++) {
                    int th = (t0 + u) * d.H + h, jn = s->pos + t0 + u + 1 - j0;
                    jn = jn < jmax ? jn : jmax;
                    float *p = S + (size_t)u * B, *o = O + (size_t)u * d.dv, tm = k2c_vmax(p, jn);
                    float alpha = 1;
                    if (tm > mx[th]) {
                        if (mx[th] != -FLT_MAX) alpha = k2c_vexpf(mx[th] - tm);
                        else alpha = 0;
                        mx[th] = tm;
                    }
                    l[th] = l[th] * alpha + k2c_vexp_sum(p, jn, mx[th]);
                    for (int j = jn; j < jmax; j++) p[j] = 0;     /* causal: later keys weigh exactly 0 */
                    k2c_vscaled(o, alpha, A + (size_t)th * d.dv, d.dv);
                }
                k2c_vgemm_acc(O, d.dv, S, B, nq, KV + (size_t)h * d.kvd + d.dn, d.H * d.kvd, jmax, d.dv);
                for (int u = 0; u < nq; u++)
                    memcpy(A + ((size_t)(t0 + u) * d.H + h) * d.dv, O + (size_t)u * d.dv, (size_t)d.dv * sizeof *O);
            }
        }
    }
    for (int th = 0; th < T * d.H; th++) k2c_vscale(A + (size_t)th * d.dv, d.dv, 1.0f / l[th]);
    rc = 0;
done:
    ws->used = mark;
    return rc;
}

/* Which form a prefill of T tokens after `pos` cached ones takes, by arithmetic per call: the expanded form
 * rebuilds N = pos + T keys/values (a GEMM over the cache) and spends dn + dr + dv per (query, key, head);
 * the absorbed form absorbs T queries and outputs and spends 2r + dr per (query, key, head), with no GEMM over
 * the cache. Measured on the Moonlight shape (one layer, one thread, ms for depth/chunk; absorbed vs
 * expanded): 0/64 30 vs 24, 0/512 349 vs 184, 0/2048 2461 vs 1311, 512/64 47 vs 60, 2048/64 92 vs 178,
 * 4096/256 671 vs 637: the expansion's GEMM FLOPs and either form's attention FLOPs run at about the same
 * rate (GEMM_GAIN 1), and this model picks the faster form in each of those cases. */
#define GEMM_GAIN 1.0
int k2c_mla_prefill_absorbed(const k2c_model *m, int pos, int T) {
    if (m->prefill_path) return m->prefill_path == 1;
    dims d = dims_of(&m->cfg);
    double pairs = (double)T * pos + (double)T * (T + 1) / 2;
    double expd = (double)(pos + T) * d.H * d.kvd * d.r / GEMM_GAIN + pairs * d.H * (d.dn + d.dr + d.dv);
    double absd = pairs * d.H * (2 * d.r + d.dr) + (double)T * d.H * d.kvd * d.r;
    return absd < expd;
}

int k2c_mla_prefill(k2c_state *s, int layer, const float *XN, int T, float *out, float *attn_max) {
    const k2c_model *m = s->m;
    const k2c_layer *ly = &m->layers[layer];
    dims d = dims_of(&m->cfg);
    int absorbed = k2c_mla_prefill_absorbed(m, s->pos, T), rc = -1;
    k2c_ws *ws = &s->ws;
    size_t mark = ws->used;
    float *Q, *A, *mx, *QA = NULL;
    k2c_state **ss;
    int *off, *len;
    if (!TAKE(Q, (size_t)T * d.H * d.qd) || !TAKE(A, (size_t)T * d.H * d.dv) || !TAKE(mx, (size_t)T * d.H) ||
        (absorbed && !TAKE(QA, (size_t)T * d.H * (d.r + d.rs))) || !TAKE(ss, T) || !TAKE(off, T) || !TAKE(len, T)) {
        k2c_seterr("workspace too small (prefill of %d tokens)", T);
        goto done;
    }
    for (int t = 0; t < T; t++) { ss[t] = s; off[t] = t; len[t] = s->pos + t + 1; }
    if (project_qkv(ss, off, layer, XN, T, Q, ws)) goto done;
    if (absorbed) {
        float *CTX = QA + (size_t)T * d.H * d.rs;
        if (attend_latent(m, layer, T, (const k2c_state *const *)ss, len, Q, QA, CTX, A, mx, ws)) goto done;
    } else if (attend_expanded(s, layer, Q, T, A, mx, ws)) {
        goto done;
    }
    if (attn_max)
        for (int h = 0; h < d.H; h++)
            for (int t = 0; t < T; t++) if (mx[t * d.H + h] > attn_max[h]) attn_max[h] = mx[t * d.H + h];
    if (k2c_matmul_ws(&ly->o, A, T, out, ws)) goto done;
    rc = 0;
done:
    ws->used = mark;
    return rc;
}

/* One new token for each of n states (n = 1 for plain decode) and, in the same call, T prompt tokens of
 * state p after them (a server's prefill chunk batched with its decodes; p NULL or T 0: none): the
 * projections run as one matmul over the n + T tokens, so a step reads each weight once for all of them;
 * then latent attention of all of them at once (the chunk's tokens attend causally: its rows are in the
 * cache before any query reads it). Scratch from the first state's workspace (p's when n is 0). */
int k2c_mla_batch(k2c_state *const *ss, int n, k2c_state *p, int T, int layer, const float *XN, float *out, float *attn_max) {
    if (!p) T = 0;
    int N = n + T, rc = -1;
    k2c_state *s0 = n ? ss[0] : p;
    const k2c_model *m = s0->m;
    const k2c_layer *ly = &m->layers[layer];
    dims d = dims_of(&m->cfg);
    k2c_ws *ws = &s0->ws;
    size_t mark = ws->used;
    float *Q, *A, *mx, *QA;
    k2c_state **rs;
    int *off, *len;
    if (!TAKE(Q, (size_t)N * d.H * d.qd) || !TAKE(A, (size_t)N * d.H * d.dv) || !TAKE(mx, (size_t)N * d.H) ||
        !TAKE(QA, (size_t)N * d.H * (d.r + d.rs)) || !TAKE(rs, N) || !TAKE(off, N) || !TAKE(len, N)) {
        k2c_seterr("workspace too small (decode of %d states and %d prompt tokens)", n, T);
        goto done;
    }
    for (int i = 0; i < n; i++) { rs[i] = ss[i]; off[i] = 0; len[i] = ss[i]->pos + 1; }
    for (int t = 0; t < T; t++) { rs[n + t] = p; off[n + t] = t; len[n + t] = p->pos + t + 1; }
    if (project_qkv(rs, off, layer, XN, N, Q, ws)) goto done;
    float *CTX = QA + (size_t)N * d.H * d.rs;
    if (attend_latent(m, layer, N, (const k2c_state *const *)rs, len, Q, QA, CTX, A, mx, ws)) goto done;
    if (attn_max)
        for (int i = 0; i < N; i++)
            for (int h = 0; h < d.H; h++) if (mx[i * d.H + h] > attn_max[h]) attn_max[h] = mx[i * d.H + h];
    if (k2c_matmul_ws(&ly->o, A, N, out, ws)) goto done;
    rc = 0;
done:
    ws->used = mark;
    return rc;
}

int k2c_mla_decode_batch(k2c_state *const *ss, int n, int layer, const float *XN, float *out, float *attn_max) {
    return k2c_mla_batch(ss, n, NULL, 0, layer, XN, out, attn_max);
}

/* Upper bound of what the functions above take for T tokens (prefill in either form, or a decode batch). */
size_t k2c_mla_ws_bytes(const k2c_model *m, int T, int max_ctx, size_t lin, size_t xs) {
    dims d = dims_of(&m->cfg);
    size_t t = (size_t)T, H = (size_t)d.H, nth = (size_t)m->cx.nthreads, ql = (size_t)m->cfg.q_lora_rank;
#define B(n) k2c_ws_bytes((size_t)(n) * 4)
#define P(n) k2c_ws_bytes((size_t)(n) * 8)
#define MAX(a, b) ((a) > (b) ? (a) : (b))
    size_t base = B(t * H * d.qd) + B(t * H * d.dv) + B(t * H) + 3 * P(t);
    size_t proj = B(t * MAX(ql, (size_t)d.rs) + ql + d.dr + d.rs) + MAX(lin, 2 * xs);
    size_t nblk = t + nth;
    /* token -> blocks, the blocks (6 ints each), max and sum per (token, head) and per split block, the split
     * blocks' accumulators, each thread's scratch */
    size_t lat = 2 * P(t) + P(nblk * 3) + B(nblk * 2 * H) + B(nblk * H * d.r + 1) + nth * lat_scratch(m, &d, NULL, NULL);
    size_t Bk = (size_t)(max_ctx < KBLOCK ? max_ctx : KBLOCK);
    size_t expd = B(Bk * d.r) + B(Bk * H * d.kvd) + B(t * H) + B(Bk * d.dr) + nth * (B(QBLOCK * Bk) + B(QBLOCK * d.dv)) + lin;
    /* absorbed (and decode): QA [T, H, r + rs] lives through the projections, the attention and the output */
    size_t absd = B(t * H * (d.r + d.rs)) + MAX(MAX(proj, lin), lat);
    return base + MAX(absd, MAX(MAX(proj, lin), expd));
#undef B
#undef P
#undef MAX
}
