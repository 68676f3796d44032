/* Byte-level BPE core: the token table (bytes <-> id) and the two merge rules.
 *
 * tiktoken (Kimi): a piece that is a token as a whole is that token (one hash lookup, the common case);
 * otherwise start from single bytes and repeatedly merge the adjacent pair whose concatenated bytes
 * have the lowest rank, the leftmost one on ties — exactly what tiktoken's _byte_pair_merge computes,
 * but with a heap of candidate pairs (stale entries skipped on pop) instead of a rescan per merge, so a
 * piece of n bytes costs O(n log n) rather than O(n^2).
 *
 * Hugging Face: the same loop, but a pair's priority is its position in the merges list and the result
 * is the merge's target id (the tokenizers crate orders its queue by (rank, position) as well). */
#include "text/text.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

uint64_t tok_hash(const unsigned char *p, size_t n) {
    /* 8 bytes per step, multiply-xorshift mixing; keys are short (tokens average ~6 bytes). */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8; n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x94d049bb133111ebull;
        h ^= h >> 29;
    }
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* ------------------------------------------------------------------ vocab */
int tok_vocab_set(tok_vocab *v, int id, const unsigned char *p, size_t n) {
    if (id < 0) { k2c_seterr("negative token id %d", id); return -1; }
    if (id >= TOK_MAX_IDS) { k2c_seterr("token id %d: ids must be below %d", id, TOK_MAX_IDS); return -1; }
    if (n >= (1u << 24)) { k2c_seterr("token %d is %zu bytes long", id, n); return -1; }
    if (id >= v->n_ids) {
        int cap = v->n_ids ? v->n_ids : 1024;
        while (cap <= id) cap *= 2;
        uint64_t *ns = realloc(v->span, (size_t)cap * sizeof *ns);
        if (!ns) { k2c_seterr("out of memory"); return -1; }
        for (int i = v->n_ids; i < cap; i++) ns[i] = UINT64_MAX;
        v->span = ns;
        v->n_ids = cap;   /* trimmed to the largest id + 1 by the loaders */
    }
    if (v->arena_len + n > v->arena_cap) {
        size_t cap = v->arena_cap ? v->arena_cap : 1 << 16;
        while (cap < v->arena_len + n) cap *= 2;
        unsigned char *na = realloc(v->arena, cap);
        if (!na) { k2c_seterr("out of memory"); return -1; }
        v->arena = na;
        v->arena_cap = cap;
    }
    if (n) memcpy(v->arena + v->arena_len, p, n);   /* arena may still be NULL for an empty first token */
    v->span[id] = (uint64_t)v->arena_len << 24 | n;
    v->arena_len += n;
    return 0;
}

void tok_vocab_free(tok_vocab *v) {
    free(v->arena);
    free(v->span);
    memset(v, 0, sizeof *v);
}

/* ------------------------------------------------------------------ bytes -> id */
int tok_map_init(tok_map *m, size_t expected) {
    size_t cap = 64;
    while (cap < expected * 2) cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) { k2c_seterr("out of memory"); return -1; }
    for (size_t i = 0; i < cap; i++) m->slots[i].id = -1;
    m->mask = cap - 1;
    m->n = 0;
    return 0;
}

void tok_map_free(tok_map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int slot_matches(const tok_slot *s, uint32_t h, const tok_vocab *v, const unsigned char *p, size_t n) {
    if (s->hash != h) return 0;
    const unsigned char *q;
    size_t qn;
    if (tok_vocab_get(v, s->id, &q, &qn) != 0) return 0;
    return qn == n && memcmp(q, p, n) == 0;
}

static int map_grow(tok_map *m, const tok_vocab *v) {
    tok_map nm;
    if (tok_map_init(&nm, (m->mask + 1)) != 0) return -1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].id < 0) continue;
        size_t j = m->slots[i].hash & nm.mask;
        while (nm.slots[j].id >= 0) j = (j + 1) & nm.mask;
        nm.slots[j] = m->slots[i];
        nm.n++;
    }
    (void)v;
    free(m->slots);
    *m = nm;
    return 0;
}

int tok_map_put(tok_map *m, const tok_vocab *v, const unsigned char *p, size_t n, int id) {
    if ((m->n + 1) * 2 > m->mask + 1 && map_grow(m, v) != 0) return -2;
    uint32_t h = (uint32_t)tok_hash(p, n);
    size_t i = h & m->mask;
    for (; m->slots[i].id >= 0; i = (i + 1) & m->mask)
        if (slot_matches(&m->slots[i], h, v, p, n)) return m->slots[i].id;
    m->slots[i].hash = h;
    m->slots[i].id = id;
    m->n++;
    return -1;
}

int tok_map_get(const tok_map *m, const tok_vocab *v, const unsigned char *p, size_t n) {
    uint32_t h = (uint32_t)tok_hash(p, n);
    for (size_t i = h & m->mask; m->slots[i].id >= 0; i = (i + 1) & m->mask)
        if (slot_matches(&m->slots[i], h, v, p, n)) return m->slots[i].id;
    return -1;
}

/* ------------------------------------------------------------------ (a, b) -> merge */
int tok_pairs_init(tok_pairs *p, size_t expected) {
    size_t cap = 64;
    while (cap < expected * 2) cap *= 2;
    p->keys = malloc(cap * sizeof *p->keys);
    p->rank = malloc(cap * sizeof *p->rank);
    p->merged = malloc(cap * sizeof *p->merged);
    if (!p->keys || !p->rank || !p->merged) { tok_pairs_free(p); k2c_seterr("out of memory"); return -1; }
    for (size_t i = 0; i < cap; i++) p->keys[i] = UINT64_MAX;
    p->mask = cap - 1;
    p->n = 0;
    return 0;
}

void tok_pairs_free(tok_pairs *p) {
    free(p->keys);
    free(p->rank);
    free(p->merged);
    memset(p, 0, sizeof *p);
}

static size_t pair_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

/* The table is sized once from the merges count, so it never grows. Returns 1 for a duplicate pair
 * (the first occurrence keeps its rank, as in the tokenizers crate), 0 when inserted. */
int tok_pairs_put(tok_pairs *p, int a, int b, int rank, int merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    if ((p->n + 1) * 2 > p->mask + 1) { k2c_seterr("merge table full"); return -1; }
    size_t i = pair_slot(key, p->mask);
    for (; p->keys[i] != UINT64_MAX; i = (i + 1) & p->mask)
        if (p->keys[i] == key) return 1;
    p->keys[i] = key;
    p->rank[i] = rank;
    p->merged[i] = merged;
    p->n++;
    return 0;
}

int tok_pairs_get(const tok_pairs *p, int a, int b, int *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = pair_slot(key, p->mask); p->keys[i] != UINT64_MAX; i = (i + 1) & p->mask)
        if (p->keys[i] == key) { *merged = p->merged[i]; return p->rank[i]; }
    return -1;
}

/* ------------------------------------------------------------------ shared pieces */
int tok_ids_push(tok_ids *a, int id) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        int *nv = realloc(a->v, cap * sizeof *nv);
        if (!nv) { k2c_seterr("out of memory"); return -1; }
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

void tok_scratch_free(tok_scratch *s) {
    free(s->mem);
    s->mem = NULL;
    s->cap = 0;
}

static void *scratch_get(tok_scratch *s, size_t bytes) {
    if (bytes > s->cap) {
        void *nm = realloc(s->mem, bytes);
        if (!nm) { k2c_seterr("out of memory"); return NULL; }
        s->mem = nm;
        s->cap = bytes;
    }
    return s->mem;
}

/* Binary min-heap of (priority << 32 | node). Ordering the packed value orders by priority, then by
 * node index, which is the byte position: the leftmost pair wins a tie. */
static void heap_push(uint64_t *h, size_t *n, uint64_t x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h[up] <= x) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = x;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], x = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (x <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = x;
    return top;
}

/* Node layout in the scratch block: next, prev, pri (int32 each, n entries), heap (uint64, 3n). Every
 * merge pushes at most two entries, so n initial + 2(n-1) bounds the heap. */
typedef struct {
    int32_t *next, *prev, *pri, *id;
    uint64_t *heap;
    size_t nheap;
} merge_nodes;

static int nodes_alloc(merge_nodes *mn, size_t n, tok_scratch *s) {
    size_t ints = 4 * n, bytes = (ints * sizeof(int32_t) + 7) / 8 * 8 + 3 * n * sizeof(uint64_t);
    char *mem = scratch_get(s, bytes);
    if (!mem) return -1;
    mn->next = (int32_t *)mem;
    mn->prev = mn->next + n;
    mn->pri = mn->prev + n;
    mn->id = mn->pri + n;
    mn->heap = (uint64_t *)(mem + (ints * sizeof(int32_t) + 7) / 8 * 8);
    mn->nheap = 0;
    return 0;
}

/* Rank of the bytes from node i through the end of node next[i]; INT_MAX when not a token. */
static int32_t rank_pair(const tok_map *m, const tok_vocab *v, const unsigned char *p, size_t n,
                         const merge_nodes *mn, int i) {
    int j = mn->next[i];
    if (j < 0) return INT_MAX;
    size_t end = mn->next[j] < 0 ? n : (size_t)mn->next[j];
    int r = tok_map_get(m, v, p + i, end - (size_t)i);
    return r < 0 ? INT_MAX : r;
}

int tok_bpe_ranks(const tok_map *m, const tok_vocab *v, const unsigned char *p, size_t n, tok_scratch *s,
                  tok_ids *out) {
    merge_nodes mn;
    if (n == 0) return 0;
    if (n >= INT_MAX / 4) { k2c_seterr("piece of %zu bytes is too long", n); return -1; }
    if (nodes_alloc(&mn, n, s) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        mn.next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        mn.prev[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        mn.pri[i] = rank_pair(m, v, p, n, &mn, (int)i);
        if (mn.pri[i] != INT_MAX) heap_push(mn.heap, &mn.nheap, (uint64_t)mn.pri[i] << 32 | i);
    }
    mn.pri[n - 1] = INT_MAX;
    while (mn.nheap) {
        uint64_t top = heap_pop(mn.heap, &mn.nheap);
        int i = (int)(uint32_t)top;
        int32_t r = (int32_t)(top >> 32);
        if (mn.pri[i] != r) continue;           /* stale: the node merged or its pair changed */
        int j = mn.next[i];
        mn.next[i] = mn.next[j];
        if (mn.next[j] >= 0) mn.prev[mn.next[j]] = i;
        mn.pri[j] = INT_MAX;                    /* dead: its heap entries are now stale */
        mn.pri[i] = rank_pair(m, v, p, n, &mn, i);
        if (mn.pri[i] != INT_MAX) heap_push(mn.heap, &mn.nheap, (uint64_t)mn.pri[i] << 32 | (uint32_t)i);
        int h = mn.prev[i];
        if (h >= 0) {
            mn.pri[h] = rank_pair(m, v, p, n, &mn, h);
            if (mn.pri[h] != INT_MAX) heap_push(mn.heap, &mn.nheap, (uint64_t)mn.pri[h] << 32 | (uint32_t)h);
        }
    }
    for (int i = 0; i >= 0; i = mn.next[i]) {
        size_t end = mn.next[i] < 0 ? n : (size_t)mn.next[i];
        int id = tok_map_get(m, v, p + i, end - (size_t)i);
        if (id < 0) { k2c_seterr("byte 0x%02x has no token in the vocabulary", p[i]); return -1; }
        if (tok_ids_push(out, id) != 0) return -1;
    }
    return 0;
}

static int32_t pair_pri(const tok_pairs *pairs, const merge_nodes *mn, int i) {
    int j = mn->next[i], merged;
    if (j < 0) return INT_MAX;
    int r = tok_pairs_get(pairs, mn->id[i], mn->id[j], &merged);
    return r < 0 ? INT_MAX : r;
}

int tok_bpe_pairs(const tok_pairs *pairs, const int *byte_id, const unsigned char *p, size_t n, tok_scratch *s,
                  tok_ids *out) {
    merge_nodes mn;
    if (n == 0) return 0;
    if (n >= INT_MAX / 4) { k2c_seterr("piece of %zu bytes is too long", n); return -1; }
    if (nodes_alloc(&mn, n, s) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        mn.next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        mn.prev[i] = (int32_t)i - 1;
        mn.id[i] = byte_id[p[i]];
        if (mn.id[i] < 0) { k2c_seterr("byte 0x%02x has no token in the vocabulary", p[i]); return -1; }
    }
    for (size_t i = 0; i < n; i++) {
        mn.pri[i] = pair_pri(pairs, &mn, (int)i);
        if (mn.pri[i] != INT_MAX) heap_push(mn.heap, &mn.nheap, (uint64_t)mn.pri[i] << 32 | i);
    }
    while (mn.nheap) {
        uint64_t top = heap_pop(mn.heap, &mn.nheap);
        int i = (int)(uint32_t)top, merged;
        int32_t r = (int32_t)(top >> 32);
        if (mn.pri[i] != r) continue;
        int j = mn.next[i];
        tok_pairs_get(pairs, mn.id[i], mn.id[j], &merged);
        mn.id[i] = merged;
        mn.next[i] = mn.next[j];
        if (mn.next[j] >= 0) mn.prev[mn.next[j]] = i;
        mn.pri[j] = INT_MAX;
        mn.pri[i] = pair_pri(pairs, &mn, i);
        if (mn.pri[i] != INT_MAX) heap_push(mn.heap, &mn.nheap, (uint64_t)mn.pri[i] << 32 | (uint32_t)i);
        int h = mn.prev[i];
        if (h >= 0) {
            mn.pri[h] = pair_pri(pairs, &mn, h);
            if (mn.pri[h] != INT_MAX) heap_push(mn.heap, &mn.nheap, (uint64_t)mn.pri[h] << 32 | (uint32_t)h);
        }
    }
    for (int i = 0; i >= 0; i = mn.next[i])
        if (tok_ids_push(out, mn.id[i]) != 0) return -1;
    return 0;
}
