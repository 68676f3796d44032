/* BPE trainer: learns a tiktoken rank list from text files with Kimi's pre-tokenizer.
 *
 * The corpus is split into pieces with the same pattern encoding uses, and only the unique pieces
 * ("words") with their counts are kept. Ranks 0..255 are the single bytes; each further rank is the
 * adjacent symbol pair with the highest total count (ties: smaller left id, then smaller right id),
 * merged everywhere. Pair counts are updated incrementally — only the words that contain the merged
 * pair are touched, through a per-pair list of words — and the best pair comes from a max-heap with
 * lazy entries (a popped entry whose count is out of date is pushed again with the current count), so
 * a merge costs time proportional to where the pair occurs, not to the corpus. */
#include "text/text.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t key;           /* left << 32 | right */
    int64_t count;
    int *words;             /* words that contained the pair when it was counted (may repeat, may be stale) */
    int nwords, capwords;
    int stamp;              /* the merge step that last queued it */
} pair_t;

typedef struct {
    pair_t *p;
    int n, cap;
    int *slot;              /* open addressing: index into p, -1 empty */
    size_t mask;
} pair_table;

typedef struct { int64_t count; uint64_t key; } heap_ent;

typedef struct {
    int **sym; int *len;    /* per word: its symbols */
    int64_t *wcount;        /* per word: occurrences in the corpus */
    int nwords;
    pair_table pt;
    heap_ent *heap;
    size_t nheap, capheap;
} trainer;

static size_t key_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 31)) & mask;
}

static int pt_grow(pair_table *t) {
    size_t cap = t->mask ? (t->mask + 1) * 2 : 1 << 16;
    int *ns = malloc(cap * sizeof *ns);
    if (!ns) return -1;
    memset(ns, 0xff, cap * sizeof *ns);
    for (int i = 0; i < t->n; i++) {
        size_t j = key_slot(t->p[i].key, cap - 1);
        while (ns[j] >= 0) j = (j + 1) & (cap - 1);
        ns[j] = i;
    }
    free(t->slot);
    t->slot = ns;
    t->mask = cap - 1;
    return 0;
}

/* The pair's index, created with count 0 if absent; -1 when out of memory. */
static int pt_get(pair_table *t, int a, int b, int create) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    if (t->mask) {
        for (size_t j = key_slot(key, t->mask); t->slot[j] >= 0; j = (j + 1) & t->mask)
            if (t->p[t->slot[j]].key == key) return t->slot[j];
    }
    if (!create) return -1;
    if ((size_t)(t->n + 1) * 2 > t->mask + 1 && pt_grow(t) != 0) return -1;
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 1 << 15;
        pair_t *np = realloc(t->p, (size_t)cap * sizeof *np);
        if (!np) return -1;
        t->p = np;
        t->cap = cap;
    }
    size_t j = key_slot(key, t->mask);
    while (t->slot[j] >= 0) j = (j + 1) & t->mask;
    t->slot[j] = t->n;
    t->p[t->n] = (pair_t){.key = key};
    return t->n++;
}

static int heap_better(const heap_ent *x, const heap_ent *y) {   /* x before y */
    return x->count != y->count ? x->count > y->count : x->key < y->key;
}

static int heap_push(trainer *tr, int64_t count, uint64_t key) {
    if (tr->nheap == tr->capheap) {
        size_t cap = tr->capheap ? tr->capheap * 2 : 1 << 16;
        heap_ent *nh = realloc(tr->heap, cap * sizeof *nh);
        if (!nh) return -1;
        tr->heap = nh;
        tr->capheap = cap;
    }
    heap_ent x = {count, key};
    size_t i = tr->nheap++;
    while (i > 0 && heap_better(&x, &tr->heap[(i - 1) / 2])) {
        tr->heap[i] = tr->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->heap[i] = x;
    return 0;
}

static heap_ent heap_pop(trainer *tr) {
    heap_ent top = tr->heap[0], x = tr->heap[--tr->nheap];
    size_t i = 0, n = tr->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_better(&tr->heap[c + 1], &tr->heap[c])) c++;
        if (!heap_better(&tr->heap[c], &x)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n) tr->heap[i] = x;
    return top;
}

/* Adds delta * word count to every adjacent pair of word w; when adding, lists w under pairs that
 * involve `only` (the new symbol; -1: every pair). */
static int count_word(trainer *tr, int w, int64_t delta, int only) {
    const int *s = tr->sym[w];
    for (int i = 0; i + 1 < tr->len[w]; i++) {
        int k = pt_get(&tr->pt, s[i], s[i + 1], delta > 0);
        if (k < 0) { if (delta > 0) return -1; continue; }
        pair_t *p = &tr->pt.p[k];
        p->count += delta * tr->wcount[w];
        if (delta > 0 && (only < 0 || s[i] == only || s[i + 1] == only)) {
            if (p->nwords == p->capwords) {
                int cap = p->capwords ? p->capwords * 2 : 4;
                int *nw = realloc(p->words, (size_t)cap * sizeof *nw);
                if (!nw) return -1;
                p->words = nw;
                p->capwords = cap;
            }
            if (!p->nwords || p->words[p->nwords - 1] != w) p->words[p->nwords++] = w;
        }
    }
    return 0;
}

typedef struct { tok_vocab words; tok_map map; int64_t *count; int n, cap; } word_counter;

static int on_word(void *ctx, const unsigned char *p, size_t n) {
    word_counter *wc = ctx;
    if (wc->n == wc->cap) {
        int cap = wc->cap ? wc->cap * 2 : 1 << 14;
        int64_t *nc = realloc(wc->count, (size_t)cap * sizeof *nc);
        if (!nc) { k2c_seterr("out of memory"); return -1; }
        wc->count = nc;
        wc->cap = cap;
    }
    /* store tentatively as word n; tok_map_put tells whether it was already there */
    if (tok_vocab_set(&wc->words, wc->n, p, n) != 0) return -1;
    int prev = tok_map_put(&wc->map, &wc->words, p, n, wc->n);
    if (prev == -2) return -1;
    if (prev >= 0) {
        wc->count[prev]++;
        wc->words.arena_len -= n;               /* drop the tentative copy */
        wc->words.span[wc->n] = UINT64_MAX;
        return 0;
    }
    wc->count[wc->n++] = 1;
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *dir) {
    char *d = strdup(dir);
    if (!d) { k2c_seterr("out of memory"); return -1; }
    for (char *p = d + 1;; p++) {
        if (*p && *p != '/') continue;
        char c = *p;
        *p = 0;
        if (mkdir(d, 0755) != 0 && errno != EEXIST) { k2c_seterr("%s: cannot create: %s", d, strerror(errno)); free(d); return -1; }
        if (!c) break;
        *p = c;
    }
    free(d);
    return 0;
}

static int write_outputs(const tok_vocab *tv, int nranks, const char *out_dir) {
    char *model = k2c_path_join(out_dir, "tiktoken.model"), *cfg = k2c_path_join(out_dir, "tokenizer_config.json");
    char *text = NULL, *js = NULL;
    json_t *root = NULL;
    int rc = -1;
    if (!model || !cfg) { k2c_seterr("out of memory"); goto done; }
    if (make_dirs(out_dir) != 0) goto done;
    size_t cap = 64;
    for (int i = 0; i < nranks; i++) {
        const unsigned char *p;
        size_t n;
        tok_vocab_get(tv, i, &p, &n);
        cap += (n + 2) / 3 * 4 + 16;
    }
    text = malloc(cap);
    if (!text) { k2c_seterr("out of memory"); goto done; }
    size_t o = 0;
    for (int i = 0; i < nranks; i++) {
        const unsigned char *p;
        size_t n;
        tok_vocab_get(tv, i, &p, &n);
        o += tok_b64_encode(p, n, text + o);
        o += (size_t)sprintf(text + o, " %d\n", i);
    }
    if (k2c_write_file_atomic(model, text, o) != 0) goto done;
    root = json_object();
    json_t *dec = json_object();
    json_object_set_new(root, "added_tokens_decoder", dec);
    for (int s = 0; s < 256; s++) {
        char name[64], key[32];
        tok_kimi_special_name(s, nranks, name, sizeof name);
        snprintf(key, sizeof key, "%d", nranks + s);
        json_object_set_new(dec, key, json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content", name, "lstrip", 0,
                                                "normalized", 0, "rstrip", 0, "single_word", 0, "special", 1));
    }
    json_object_set_new(root, "bos_token", json_string("[BOS]"));
    json_object_set_new(root, "eos_token", json_string("[EOS]"));
    json_object_set_new(root, "pad_token", json_string("[PAD]"));
    json_object_set_new(root, "unk_token", json_string("[UNK]"));
    /* Marks the Kimi chat format (rendered by k2c_chat_render); a Jinja comment, so it renders as nothing
     * rather than failing in tools that evaluate it. */
    json_object_set_new(root, "chat_template", json_string("{# k2c: kimi-k2 chat format (<|im_user|>, <|im_middle|>, <|im_end|>) #}"));
    json_object_set_new(root, "tokenizer_class", json_string("TikTokenTokenizer"));
    js = json_dumps(root, JSON_INDENT(2));
    if (!js) { k2c_seterr("out of memory"); goto done; }
    if (k2c_write_file_atomic(cfg, js, strlen(js)) != 0) goto done;
    rc = 0;
done:
    json_decref(root);
    free(js);
    free(text);
    free(model);
    free(cfg);
    return rc;
}

int k2c_bpe_train(const char *const *files, int nfiles, int vocab_size, const char *out_dir) {
    trainer tr = {0};
    word_counter wc = {0};
    tok_vocab tv = {0};
    tok_map tm = {0};
    k2c_tokenizer pat = {0};
    pcre2_match_data *md = NULL;
    pcre2_match_context *mc = NULL;
    pcre2_jit_stack *js = NULL;
    int rc = -1;
    if (vocab_size < 256 || vocab_size > (1 << 24)) { k2c_seterr("--vocab %d: want 256 .. 16777216 base tokens", vocab_size); return -1; }
    if (tok_compile_split(&pat, tok_kimi_pattern, "kimi pattern") != 0) return -1;
    md = pcre2_match_data_create(4, NULL);
    mc = pcre2_match_context_create(NULL);
    js = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
    if (!md || !mc || !js || tok_map_init(&wc.map, 1 << 16) != 0) { k2c_seterr("out of memory"); goto done; }
    pcre2_jit_stack_assign(mc, NULL, js);
    double t0 = k2c_now();
    size_t total = 0;
    for (int f = 0; f < nfiles; f++) {
        size_t len;
        char *text = k2c_read_file(files[f], &len);
        if (!text) goto done;
        int r = tok_split(pat.split_re[0], pat.split_re_bad[0], (const unsigned char *)text, len, md, mc, on_word, &wc);
        free(text);
        if (r != 0) goto done;
        total += len;
    }
    k2c_log("bpe train: %zu bytes, %d unique words (%.2fs)\n", total, wc.n, k2c_now() - t0);

    /* symbols: bytes first */
    if (tok_map_init(&tm, (size_t)vocab_size) != 0) goto done;
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if (tok_vocab_set(&tv, b, &c, 1) != 0 || tok_map_put(&tm, &tv, &c, 1, b) == -2) goto done;
    }
    tr.nwords = wc.n;
    tr.sym = calloc((size_t)wc.n + 1, sizeof *tr.sym);
    tr.len = calloc((size_t)wc.n + 1, sizeof *tr.len);
    tr.wcount = wc.count;
    if (!tr.sym || !tr.len) { k2c_seterr("out of memory"); goto done; }
    for (int w = 0; w < wc.n; w++) {
        const unsigned char *p;
        size_t n;
        tok_vocab_get(&wc.words, w, &p, &n);
        tr.sym[w] = malloc((n ? n : 1) * sizeof(int));
        if (!tr.sym[w]) { k2c_seterr("out of memory"); goto done; }
        for (size_t i = 0; i < n; i++) tr.sym[w][i] = p[i];
        tr.len[w] = (int)n;
        if (count_word(&tr, w, 1, -1) != 0) { k2c_seterr("out of memory"); goto done; }
    }
    for (int k = 0; k < tr.pt.n; k++)
        if (heap_push(&tr, tr.pt.p[k].count, tr.pt.p[k].key) != 0) { k2c_seterr("out of memory"); goto done; }

    int next = 256, *queued = NULL, nq = 0, capq = 0;
    unsigned char *cat = NULL;
    size_t catcap = 0;
    while (next < vocab_size && tr.nheap) {
        heap_ent e = heap_pop(&tr);
        int a = (int)(e.key >> 32), b = (int)(uint32_t)e.key;
        int k = pt_get(&tr.pt, a, b, 0);
        if (k < 0 || tr.pt.p[k].count <= 0) continue;
        if (tr.pt.p[k].count != e.count) {          /* stale: requeue with the current count */
            if (heap_push(&tr, tr.pt.p[k].count, e.key) != 0) { k2c_seterr("out of memory"); free(cat); free(queued); goto done; }
            continue;
        }
        /* the new symbol's bytes; if some other merge order made them already, reuse that id */
        const unsigned char *pa, *pb;
        size_t na, nb;
        tok_vocab_get(&tv, a, &pa, &na);
        tok_vocab_get(&tv, b, &pb, &nb);
        if (na + nb > catcap) {
            unsigned char *nc = realloc(cat, catcap = (na + nb) * 2);
            if (!nc) { k2c_seterr("out of memory"); free(cat); free(queued); goto done; }
            cat = nc;
        }
        memcpy(cat, pa, na);
        memcpy(cat + na, pb, nb);
        int id = tok_map_get(&tm, &tv, cat, na + nb);
        if (id < 0) {
            id = next++;
            if (tok_vocab_set(&tv, id, cat, na + nb) != 0 || tok_map_put(&tm, &tv, cat, na + nb, id) == -2) { free(cat); free(queued); goto done; }
        }
        /* merge in every word listed under the pair; the list is taken over since the pair dies */
        int *ws = tr.pt.p[k].words, nws = tr.pt.p[k].nwords;
        tr.pt.p[k].words = NULL;
        tr.pt.p[k].nwords = tr.pt.p[k].capwords = 0;
        int fail = 0;
        for (int i = 0; i < nws && !fail; i++) {
            int w = ws[i], *s = tr.sym[w], n = tr.len[w], has = 0;
            for (int j = 0; j + 1 < n; j++) if (s[j] == a && s[j + 1] == b) { has = 1; break; }
            if (!has) continue;                     /* stale entry */
            count_word(&tr, w, -1, -1);
            int o = 0;
            for (int j = 0; j < n;) {
                if (j + 1 < n && s[j] == a && s[j + 1] == b) { s[o++] = id; j += 2; }
                else s[o++] = s[j++];
            }
            tr.len[w] = o;
            if (count_word(&tr, w, 1, id) != 0) fail = 1;
            /* the pairs with the new symbol are new or grown: queue each once, after all words */
            for (int j = 0; j + 1 < o && !fail; j++)
                if (s[j] == id || s[j + 1] == id) {
                    int q = pt_get(&tr.pt, s[j], s[j + 1], 0);
                    if (q < 0 || tr.pt.p[q].stamp == next + 1) continue;
                    tr.pt.p[q].stamp = next + 1;
                    if (nq == capq) {
                        int *nqv = realloc(queued, (size_t)(capq = capq ? capq * 2 : 64) * sizeof *nqv);
                        if (!nqv) { fail = 1; break; }
                        queued = nqv;
                    }
                    queued[nq++] = q;
                }
        }
        for (int i = 0; i < nq && !fail; i++)
            if (heap_push(&tr, tr.pt.p[queued[i]].count, tr.pt.p[queued[i]].key) != 0) fail = 1;
        nq = 0;
        free(ws);
        if (fail) { k2c_seterr("out of memory"); free(cat); free(queued); goto done; }
    }
    free(cat);
    free(queued);
    k2c_log("bpe train: %d base tokens (%.2fs)\n", next, k2c_now() - t0);
    if (write_outputs(&tv, next, out_dir) != 0) goto done;
    rc = 0;
done:
    for (int w = 0; w < tr.nwords; w++) free(tr.sym[w]);
    free(tr.sym);
    free(tr.len);
    for (int k = 0; k < tr.pt.n; k++) free(tr.pt.p[k].words);
    free(tr.pt.p);
    free(tr.pt.slot);
    free(tr.heap);
    free(wc.count);
    tok_vocab_free(&wc.words);
    tok_map_free(&wc.map);
    tok_vocab_free(&tv);
    tok_map_free(&tm);
    pcre2_code_free(pat.split_re[0]);
    pcre2_code_free(pat.split_re_bad[0]);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(js);
    return rc;
}
