/* The inference state: the latent (MLA) cache and the forward workspace.
 *
 * Storage. A state's cache grows in pages of K2C_PAGE positions as the context fills (k2c_state_reserve),
 * instead of one allocation for max_ctx up front: a server with many slots of a 128k context holds only what
 * its conversations use. One page holds K2C_PAGE positions of every layer (one allocation per K2C_PAGE tokens,
 * not one per layer), layer-major inside: rows [layer][position % K2C_PAGE]. Why 256 positions: it is a
 * multiple of the attention tiles (64) and equal to the expanded form's block, so those never straddle a page
 * (mla.c still cuts every tile at a page end for the blocks of the flash-decoding split, which start anywhere);
 * it costs an allocation only every 256 tokens of decode; the most a state wastes is one page (255 positions:
 * under 0.2% of a 128k context), and a page of Kimi-K2 (61 layers) is 18 MB in BF16, large enough that malloc
 * maps it directly (no fragmentation of the heap) and small enough that the page table of a 128k context is
 * 512 pointers. Pages are kept when a state is reset or truncated: a server slot reuses them.
 *
 * Row formats (k2c_model_opts.cache_type), each row kv_lora_rank + rope_dim values (576 for K2):
 *   f32   4 bytes a value.
 *   bf16  2 bytes a value (round to nearest even).
 *   q8_0  the row in blocks of 32 (the last may be shorter), each an fp16 scale d = max|x| / 127 and 32 int8
 *         q = round(x / d): value q * d. Laid out as the row's scales, then its int8 values (612 bytes for K2).
 *         The scale is fp16, not fp32: 36 bytes a K2 row instead of 72 (6% of every step's cache traffic and of
 *         the memory), and its rounding (relative 2^-11) is an eighth of the int8 step's (1/254 of max|x|).
 *         fp16's range covers every block whose max|x| lies in [8e-3, 8e6] at full precision; the cached values
 *         are RMS-normalized latents and roped keys, far inside it (a larger block saturates at 65504 * 127).
 * Every reader goes through k2c_cache_rows_f32, which gives an fp32 cache's rows in place and converts a tile of
 * any other format into the caller's scratch; a written row can also be rounded to another format's values
 * and kept in fp32 (cache_round, tests: the format's arithmetic without its storage). */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define Q8_BLOCK 32

static int row_values(const k2c_config *c) { return c->kv_lora_rank + c->qk_rope_head_dim; }
static int q8_blocks(int n) { return (n + Q8_BLOCK - 1) / Q8_BLOCK; }

size_t k2c_cache_row_bytes(const k2c_config *c, int type) {
    int n = row_values(c);
    switch (type) {
    case K2C_CACHE_BF16: return (size_t)n * 2;
    case K2C_CACHE_Q8_0: return (size_t)q8_blocks(n) * 2 + (size_t)n;
    default: return (size_t)n * 4;
    }
}

size_t k2c_state_row_bytes(const k2c_state *s) { return s->rb; }

size_t k2c_cache_bytes(const k2c_config *c, int type, int n) {
    size_t pages = n > 0 ? ((size_t)n + K2C_PAGE - 1) / K2C_PAGE : 0;
    return pages * K2C_PAGE * (size_t)c->num_hidden_layers * k2c_cache_row_bytes(c, type);
}

static size_t page_bytes(const k2c_state *s) { return (size_t)K2C_PAGE * (size_t)s->m->cfg.num_hidden_layers * s->rb; }

int k2c_state_init(k2c_state *s, const k2c_model *m, int max_ctx) {
    const k2c_config *c = &m->cfg;
    memset(s, 0, sizeof *s);
    if (max_ctx <= 0) max_ctx = c->max_position_embeddings < 4096 ? c->max_position_embeddings : 4096;
    s->m = m;
    s->max_ctx = max_ctx;
    s->cache_type = m->cache_type;
    s->rb = k2c_cache_row_bytes(c, s->cache_type);
    s->maxpages = (max_ctx + K2C_PAGE - 1) / K2C_PAGE;
    s->pages = calloc((size_t)s->maxpages, sizeof *s->pages);
    if (!s->pages) { k2c_seterr("out of memory for the page table of a %d-token cache", max_ctx); return -1; }
    /* The workspace: one forward call of a prefill chunk (ubatch tokens, at most the context) or a decode batch. */
    int ub = m->ubatch > 0 ? m->ubatch : K2C_UBATCH_DEFAULT;
    s->ws_tokens = ub < max_ctx ? ub : max_ctx;
    if (s->ws_tokens < K2C_DECODE_BATCH_MAX) s->ws_tokens = K2C_DECODE_BATCH_MAX;
    s->ws.cap = k2c_ws_bytes(k2c_forward_ws_bytes(m, s->ws_tokens, max_ctx));
    s->ws.base = aligned_alloc(K2C_WS_ALIGN, s->ws.cap);
    if (!s->ws.base) {
        k2c_seterr("out of memory for the forward workspace (%zu bytes for %d tokens)", s->ws.cap, s->ws_tokens);
        free(s->pages);
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

void k2c_state_free(k2c_state *s) {
    for (int p = 0; p < s->npages; p++) free(s->pages[p]);
    free(s->pages);
    free(s->ws.base);
    memset(s, 0, sizeof *s);
}

int k2c_state_reserve(k2c_state *s, int n) {
    if (n > s->max_ctx) {
        k2c_seterr("context full: %d positions > %d (raise --ctx)", n, s->max_ctx);
        return -1;
    }
    int want = (n + K2C_PAGE - 1) / K2C_PAGE;
    while (s->npages < want) {
        void *p = malloc(page_bytes(s));
        if (!p) {
            k2c_seterr("out of memory for the latent cache: page %d (%zu bytes, positions %d-%d)", s->npages,
                       page_bytes(s), s->npages * K2C_PAGE, (s->npages + 1) * K2C_PAGE - 1);
            return -1;       /* the pages already held stay: the state is as it was, plus capacity */
        }
        s->pages[s->npages++] = p;
    }
    return 0;
}

size_t k2c_state_cache_bytes(const k2c_state *s) { return (size_t)s->npages * page_bytes(s); }
size_t k2c_state_ws_bytes(const k2c_state *s) { return s->ws.cap; }
double k2c_state_attn_seconds(const k2c_state *s) { return s->attn_seconds; }

k2c_state *k2c_state_new(const k2c_model *m, int max_ctx) {
    k2c_state *s = malloc(sizeof *s);
    if (!s) { k2c_seterr("out of memory"); return NULL; }
    if (k2c_state_init(s, m, max_ctx) != 0) { free(s); return NULL; }
    return s;
}

void k2c_state_delete(k2c_state *s) {
    if (!s) return;
    k2c_state_free(s);
    free(s);
}

void k2c_state_reset(k2c_state *s) { s->pos = 0; }
int k2c_state_pos(const k2c_state *s) { return s->pos; }

int k2c_state_truncate(k2c_state *s, int pos) {
    if (pos < 0 || pos > s->pos) { k2c_seterr("cannot keep %d tokens of a cache holding %d", pos, s->pos); return -1; }
    s->pos = pos;
    return 0;
}

/* Rows are copied a page-run at a time: a run of positions inside one page is contiguous per layer. */
static void copy_rows(k2c_state *dst, const k2c_state *src, int from, int to, int n) {
    int L = dst->m->cfg.num_hidden_layers;
    for (int done = 0; done < n;) {
        int a = from + done, b = to + done;
        int run = n - done, ra = K2C_PAGE - a % K2C_PAGE, rb = K2C_PAGE - b % K2C_PAGE;
        run = run < ra ? run : ra;
        run = run < rb ? run : rb;
        for (int l = 0; l < L; l++) memcpy(k2c_cache_row(dst, l, b), k2c_cache_row(src, l, a), (size_t)run * dst->rb);
        done += run;
    }
}

int k2c_state_copy_prefix(k2c_state *dst, const k2c_state *src, int n) {
    if (dst->m != src->m || dst->cache_type != src->cache_type || dst->cache_round != src->cache_round || n < 0 ||
        n > src->pos || n > dst->max_ctx) {
        k2c_seterr("cannot copy %d cached positions between these states", n);
        return -1;
    }
    if (dst == src || n == 0) return 0;
    if (k2c_state_reserve(dst, n)) return -1;      /* before any row moves: a failure leaves dst as it was */
    copy_rows(dst, src, 0, 0, n);
    return 0;
}

int k2c_state_fill_repeat(k2c_state *s, int n) {
    if (s->pos < 1 || n > s->max_ctx) {
        k2c_seterr("cannot repeat %d cached rows to %d positions of %d", s->pos, n, s->max_ctx);
        return -1;
    }
    if (k2c_state_reserve(s, n)) return -1;
    for (int t = s->pos; t < n;) {          /* runs of at most pos rows: the source never overlaps the target */
        int run = n - t < s->pos ? n - t : s->pos, from = t % s->pos;
        if (from + run > s->pos) run = s->pos - from;
        copy_rows(s, s, from, t, run);
        t += run;
    }
    if (n > s->pos) s->pos = n;
    return 0;
}

/* ------------------------------------------------------------------ row formats */

/* One block of n <= 32 values as q8_0: the scale, and q into q[0..n). */
static uint16_t q8_block(const float *x, int n, int8_t *q) {
    float amax = 0;
    for (int k = 0; k < n; k++) amax = fmaxf(amax, fabsf(x[k]));
    float d = amax / 127.0f;
    if (!(d <= 65504.0f)) d = 65504.0f;         /* saturate (and a NaN row becomes the largest scale) */
    uint16_t dh = k2c_f32_to_f16(d);
    float df = k2c_f16_to_f32(dh);
    for (int k = 0; k < n; k++) {
        float v = df > 0 ? x[k] / df : 0;
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[k] = (int8_t)lrintf(v == v ? v : 0);
    }
    return dh;
}

void k2c_cache_round_row(int type, float *row, int n) {
    if (type == K2C_CACHE_BF16) {
        for (int k = 0; k < n; k++) row[k] = k2c_bf16_to_f32(k2c_f32_to_bf16(row[k]));
    } else if (type == K2C_CACHE_Q8_0) {
        int8_t q[Q8_BLOCK];
        for (int b = 0; b * Q8_BLOCK < n; b++) {
            int nb = n - b * Q8_BLOCK < Q8_BLOCK ? n - b * Q8_BLOCK : Q8_BLOCK;
            float d = k2c_f16_to_f32(q8_block(row + b * Q8_BLOCK, nb, q));
            for (int k = 0; k < nb; k++) row[b * Q8_BLOCK + k] = (float)q[k] * d;
        }
    }
}

void k2c_cache_write(k2c_state *s, int layer, int t, float *row) {
    int n = row_values(&s->m->cfg);
    void *dst = k2c_cache_row(s, layer, t);
    switch (s->cache_type) {
    case K2C_CACHE_BF16:
        for (int k = 0; k < n; k++) ((uint16_t *)dst)[k] = k2c_f32_to_bf16(row[k]);
        break;
    case K2C_CACHE_Q8_0: {
        uint16_t *d = dst;
        int8_t *q = (int8_t *)(d + q8_blocks(n));
        for (int b = 0; b * Q8_BLOCK < n; b++) {
            int nb = n - b * Q8_BLOCK < Q8_BLOCK ? n - b * Q8_BLOCK : Q8_BLOCK;
            uint16_t h = q8_block(row + b * Q8_BLOCK, nb, q + b * Q8_BLOCK);
            memcpy(d + b, &h, sizeof h);
        }
        break;
    }
    default:
        if (s->cache_round) k2c_cache_round_row(s->cache_round, row, n);
        memcpy(dst, row, (size_t)n * sizeof *row);
    }
}

/* The conversions are plain loops over whole rows that the compiler vectorizes for each ISA (one clone per
 * level, picked when the library loads, as vecmath.c does): a tile is converted at memory speed, not one
 * out-of-line call per value. */
#if defined(__GNUC__) && !defined(__clang__)
#define VEC K2C_CLONES __attribute__((optimize("tree-vectorize")))     /* GCC vectorizes only at -O3 otherwise */
#else
#define VEC K2C_CLONES                                                  /* clang vectorizes at -O2 */
#endif

VEC static void bf16_rows(const uint16_t *src, size_t lds, int n, int nc, float *dst) {
    for (int j = 0; j < n; j++) {
        const uint16_t *r = src + (size_t)j * lds;
        float *o = dst + (size_t)j * nc;
        for (int k = 0; k < nc; k++) {
            uint32_t u = (uint32_t)r[k] << 16;
            memcpy(o + k, &u, sizeof u);
        }
    }
}

/* Columns [c0, c0 + nc) of n q8_0 rows (rb bytes each, rs values). */
VEC static void q8_rows(const uint8_t *src, size_t rb, int rs, int n, int c0, int nc, float *dst) {
    int nbk = q8_blocks(rs);
    for (int j = 0; j < n; j++) {
        const uint8_t *row = src + (size_t)j * rb;
        const int8_t *q = (const int8_t *)(row + 2 * (size_t)nbk);
        float *o = dst + (size_t)j * nc;
        for (int k0 = c0; k0 < c0 + nc;) {
            int b = k0 / Q8_BLOCK, k1 = (b + 1) * Q8_BLOCK < c0 + nc ? (b + 1) * Q8_BLOCK : c0 + nc;
            uint16_t h;
            memcpy(&h, row + 2 * (size_t)b, sizeof h);
            float d = k2c_f16_to_f32(h);
            for (int k = k0; k < k1; k++) o[k - c0] = (float)q[k] * d;
            k0 = k1;
        }
    }
}

const float *k2c_cache_rows_f32(const k2c_state *s, int layer, int t0, int n, int c0, int nc, float *buf, int *ld) {
    int rs = row_values(&s->m->cfg);
    const void *rows = k2c_cache_row(s, layer, t0);
    switch (s->cache_type) {
    case K2C_CACHE_BF16: bf16_rows((const uint16_t *)rows + c0, (size_t)rs, n, nc, buf); break;
    case K2C_CACHE_Q8_0: q8_rows(rows, s->rb, rs, n, c0, nc, buf); break;
    default: *ld = rs; return (const float *)rows + c0;
    }
    *ld = nc;
    return buf;
}
