/* GGUF v3 writer, streaming: the metadata and the tensor infos are collected first (a few MB at most: the
 * tokenizer's strings), then the header goes out and each tensor's bytes follow in order as the caller makes
 * them, so no tensor ever has to be in memory whole. Offsets follow from the shapes and types, padded to
 * general.alignment (32, written as a key). The file is PATH.tmp.PID until k2c_gguf_w_finish has written every
 * byte, fsync'd and renamed it; any failure (or a writer freed unfinished) removes the temporary file, so a
 * failed quantize never leaves a partial OUT behind. Layout: see gguf.c. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALIGN 32
#define WBUF (4u << 20)      /* bytes buffered before a write(2) */

typedef struct { uint8_t *p; size_t n, cap; int failed; } bytes;

typedef struct { char *name; int type, ndim; int64_t ne[4]; uint64_t offset, nbytes; } winfo;

struct k2c_gguf_writer {
    bytes kv;                   /* the serialized key/value pairs */
    uint64_t nkv;
    char **keys;                /* for duplicate checks */
    winfo *t;
    int nt, cap_t;
    uint64_t data_size;
    /* while writing */
    int fd;
    char *path, *tmp;
    int cur;                    /* tensor being written */
    uint64_t cur_done;          /* its bytes so far */
    bytes out;                  /* write buffer */
    uint64_t written;           /* bytes of the file so far */
    int failed;
};

static void put(bytes *b, const void *d, size_t n) {
    if (b->failed) return;
    if (b->n + n > b->cap) {
        size_t nc = (b->n + n) * 2 + 256;
        uint8_t *np = realloc(b->p, nc);
        if (!np) { b->failed = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_le(bytes *b, uint64_t v, int n) {
    uint8_t x[8];
    for (int i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, (size_t)n);
}
static void put_str(bytes *b, const char *s, size_t n) { put_le(b, n, 8); put(b, s, n); }

k2c_gguf_writer *k2c_gguf_w_new(void) {
    k2c_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) { k2c_seterr("out of memory"); return NULL; }
    w->fd = -1;
    if (k2c_gguf_w_u32(w, "general.alignment", ALIGN) != 0) { k2c_gguf_w_free(w); return NULL; }
    return w;
}

/* The key, checked and written, then the value type. */
static int begin_kv(k2c_gguf_writer *w, const char *key, int type) {
    size_t n = strlen(key);
    if (n == 0 || n > 65535) { k2c_seterr("GGUF writer: key '%.60s' must have 1 to 65535 bytes", key); return -1; }
    for (uint64_t i = 0; i < w->nkv; i++)
        if (!strcmp(w->keys[i], key)) { k2c_seterr("GGUF writer: metadata key '%s' given twice", key); return -1; }
    char **nk = realloc(w->keys, (size_t)(w->nkv + 1) * sizeof *nk);
    if (!nk) { k2c_seterr("out of memory"); return -1; }
    w->keys = nk;
    if (!(w->keys[w->nkv] = strdup(key))) { k2c_seterr("out of memory"); return -1; }
    w->nkv++;
    put_str(&w->kv, key, n);
    put_le(&w->kv, (uint64_t)type, 4);
    return 0;
}
static int end_kv(k2c_gguf_writer *w) {
    if (w->kv.failed) { k2c_seterr("out of memory"); return -1; }
    return 0;
}

int k2c_gguf_w_u32(k2c_gguf_writer *w, const char *key, uint32_t v) {
    if (begin_kv(w, key, K2C_GGUF_U32)) return -1;
    put_le(&w->kv, v, 4);
    return end_kv(w);
}
int k2c_gguf_w_i32(k2c_gguf_writer *w, const char *key, int32_t v) {
    if (begin_kv(w, key, K2C_GGUF_I32)) return -1;
    put_le(&w->kv, (uint32_t)v, 4);
    return end_kv(w);
}
int k2c_gguf_w_f32(k2c_gguf_writer *w, const char *key, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if (begin_kv(w, key, K2C_GGUF_F32)) return -1;
    put_le(&w->kv, u, 4);
    return end_kv(w);
}
int k2c_gguf_w_bool(k2c_gguf_writer *w, const char *key, int v) {
    if (begin_kv(w, key, K2C_GGUF_BOOL)) return -1;
    put_le(&w->kv, v != 0, 1);
    return end_kv(w);
}
int k2c_gguf_w_str(k2c_gguf_writer *w, const char *key, const char *s) {
    if (begin_kv(w, key, K2C_GGUF_STRING)) return -1;
    put_str(&w->kv, s, strlen(s));
    return end_kv(w);
}

static const int VSIZE[K2C_GGUF_NVTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

int k2c_gguf_w_array(k2c_gguf_writer *w, const char *key, int atype, uint64_t n, const void *le_elems) {
    if (atype < 0 || atype >= K2C_GGUF_NVTYPES || atype == K2C_GGUF_STRING || atype == K2C_GGUF_ARRAY) {
        k2c_seterr("GGUF writer: key '%s': array element type %d is not numeric", key, atype);
        return -1;
    }
    if (begin_kv(w, key, K2C_GGUF_ARRAY)) return -1;
    put_le(&w->kv, (uint64_t)atype, 4);
    put_le(&w->kv, n, 8);
    put(&w->kv, le_elems, (size_t)(n * (uint64_t)VSIZE[atype]));
    return end_kv(w);
}

int k2c_gguf_w_str_array(k2c_gguf_writer *w, const char *key, uint64_t n, const char *const *sv, const uint32_t *sl) {
    if (begin_kv(w, key, K2C_GGUF_ARRAY)) return -1;
    put_le(&w->kv, K2C_GGUF_STRING, 4);
    put_le(&w->kv, n, 8);
    for (uint64_t i = 0; i < n; i++) put_str(&w->kv, sv[i], sl ? sl[i] : strlen(sv[i]));
    return end_kv(w);
}

/* A key/value pair of a file being read, as it is (tokenizer.*, general.* of a GGUF input). */
int k2c_gguf_w_copy(k2c_gguf_writer *w, const k2c_gguf_kv *kv) {
    switch (kv->type) {
    case K2C_GGUF_STRING:
        if (begin_kv(w, kv->key, K2C_GGUF_STRING)) return -1;
        put_str(&w->kv, kv->str, kv->len);
        return end_kv(w);
    case K2C_GGUF_ARRAY:
        if (kv->atype == K2C_GGUF_STRING) return k2c_gguf_w_str_array(w, kv->key, kv->n, kv->sv, kv->sl);
        return k2c_gguf_w_array(w, kv->key, kv->atype, kv->n, kv->arr);
    case K2C_GGUF_F32: return k2c_gguf_w_f32(w, kv->key, (float)kv->v.f);
    case K2C_GGUF_F64: {
        uint64_t u;
        memcpy(&u, &kv->v.f, 8);
        if (begin_kv(w, kv->key, K2C_GGUF_F64)) return -1;
        put_le(&w->kv, u, 8);
        return end_kv(w);
    }
    default:
        if (kv->type < 0 || kv->type >= K2C_GGUF_NVTYPES) { k2c_seterr("GGUF writer: key '%s': bad type", kv->key); return -1; }
        if (begin_kv(w, kv->key, kv->type)) return -1;
        put_le(&w->kv, kv->v.u, VSIZE[kv->type]);
        return end_kv(w);
    }
}

int k2c_gguf_w_tensor(k2c_gguf_writer *w, const char *name, int ggml_type, int ndim, const int64_t *ne) {
    int be, bb;
    size_t nl = strlen(name);
    if (nl == 0 || nl > 63) { k2c_seterr("GGUF writer: tensor name '%s' must have 1 to 63 bytes (ggml's limit)", name); return -1; }
    if (k2c_ggml_type_block(ggml_type, &be, &bb) != 0) { k2c_seterr("GGUF writer: tensor '%s': unknown ggml type %d", name, ggml_type); return -1; }
    if (ndim < 1 || ndim > 4) { k2c_seterr("GGUF writer: tensor '%s': %d dimensions", name, ndim); return -1; }
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (ne[d] <= 0) { k2c_seterr("GGUF writer: tensor '%s': dimension %d is %lld", name, d, (long long)ne[d]); return -1; }
        numel *= (uint64_t)ne[d];
    }
    if (ne[0] % be) {
        k2c_seterr("GGUF writer: tensor '%s': row of %lld is not a multiple of the %s block (%d)", name, (long long)ne[0],
                   k2c_ggml_type_name(ggml_type), be);
        return -1;
    }
    for (int i = 0; i < w->nt; i++)
        if (!strcmp(w->t[i].name, name)) { k2c_seterr("GGUF writer: tensor '%s' given twice", name); return -1; }
    if (w->nt == w->cap_t) {
        int nc = w->cap_t ? 2 * w->cap_t : 64;
        winfo *n = realloc(w->t, (size_t)nc * sizeof *n);
        if (!n) { k2c_seterr("out of memory"); return -1; }
        w->t = n;
        w->cap_t = nc;
    }
    winfo *t = &w->t[w->nt];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) { k2c_seterr("out of memory"); return -1; }
    t->type = ggml_type;
    t->ndim = ndim;
    for (int d = 0; d < 4; d++) t->ne[d] = d < ndim ? ne[d] : 1;
    t->nbytes = numel / (uint64_t)be * (uint64_t)bb;
    t->offset = w->data_size;
    w->data_size += (t->nbytes + ALIGN - 1) / ALIGN * ALIGN;
    w->nt++;
    return 0;
}

uint64_t k2c_gguf_w_data_bytes(const k2c_gguf_writer *w) { return w->data_size; }

static int flush(k2c_gguf_writer *w) {
    const uint8_t *p = w->out.p;
    size_t n = w->out.n;
    while (n > 0) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            k2c_seterr("%s: write failed: %s", w->path, strerror(errno));
            w->failed = 1;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    w->out.n = 0;
    return 0;
}

static int emit(k2c_gguf_writer *w, const void *d, size_t n) {
    w->written += n;
    while (n > 0) {
        size_t room = WBUF - w->out.n, k = n < room ? n : room;
        memcpy(w->out.p + w->out.n, d, k);
        w->out.n += k;
        d = (const uint8_t *)d + k;
        n -= k;
        if (w->out.n == WBUF && flush(w)) return -1;
    }
    return 0;
}

static int pad(k2c_gguf_writer *w) {
    static const uint8_t zero[ALIGN];
    size_t r = (size_t)(w->written % ALIGN);
    return r ? emit(w, zero, ALIGN - r) : 0;
}

int k2c_gguf_w_begin(k2c_gguf_writer *w, const char *path) {
    size_t n = strlen(path) + 32;
    if (w->fd >= 0 || w->path) { k2c_seterr("GGUF writer: already started"); return -1; }
    if (!(w->path = strdup(path)) || !(w->tmp = malloc(n)) || !(w->out.p = malloc(WBUF))) { k2c_seterr("out of memory"); return -1; }
    snprintf(w->tmp, n, "%s.tmp.%d", path, (int)getpid());
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) { k2c_seterr("%s: cannot create: %s", w->tmp, strerror(errno)); free(w->tmp); w->tmp = NULL; return -1; }
    bytes h = {0};
    put(&h, "GGUF", 4);
    put_le(&h, 3, 4);
    put_le(&h, (uint64_t)w->nt, 8);
    put_le(&h, w->nkv, 8);
    put(&h, w->kv.p, w->kv.n);
    for (int i = 0; i < w->nt; i++) {
        const winfo *t = &w->t[i];
        put_str(&h, t->name, strlen(t->name));
        put_le(&h, (uint64_t)t->ndim, 4);
        for (int d = 0; d < t->ndim; d++) put_le(&h, (uint64_t)t->ne[d], 8);
        put_le(&h, (uint64_t)t->type, 4);
        put_le(&h, t->offset, 8);
    }
    if (h.failed) { free(h.p); k2c_seterr("out of memory"); return -1; }
    int rc = emit(w, h.p, h.n) || pad(w) ? -1 : 0;
    free(h.p);
    w->cur = 0;
    w->cur_done = 0;
    return rc;
}

int k2c_gguf_w_data(k2c_gguf_writer *w, const void *d, size_t n) {
    if (w->failed || w->fd < 0) { if (!w->failed) k2c_seterr("GGUF writer: data before k2c_gguf_w_begin"); return -1; }
    while (n > 0) {
        if (w->cur >= w->nt) { k2c_seterr("%s: more tensor data than the %d tensors hold", w->path, w->nt); return -1; }
        const winfo *t = &w->t[w->cur];
        uint64_t left = t->nbytes - w->cur_done;
        size_t k = n < left ? n : (size_t)left;
        if (emit(w, d, k)) return -1;
        w->cur_done += k;
        d = (const uint8_t *)d + k;
        n -= k;
        if (w->cur_done == t->nbytes) {
            if (pad(w)) return -1;
            w->cur++;
            w->cur_done = 0;
        }
    }
    return 0;
}

int k2c_gguf_w_finish(k2c_gguf_writer *w) {
    if (w->failed || w->fd < 0) { if (!w->failed) k2c_seterr("GGUF writer: finish before begin"); return -1; }
    if (w->cur < w->nt) {
        k2c_seterr("%s: tensor '%s' got %llu of its %llu bytes", w->path, w->t[w->cur].name, (unsigned long long)w->cur_done,
                   (unsigned long long)w->t[w->cur].nbytes);
        return -1;
    }
    if (flush(w)) return -1;
    if (fsync(w->fd) != 0 || close(w->fd) != 0) {
        k2c_seterr("%s: write failed: %s", w->path, strerror(errno));
        w->fd = -1;
        w->failed = 1;
        return -1;
    }
    w->fd = -1;
    if (rename(w->tmp, w->path) != 0) {
        k2c_seterr("%s: rename from %s failed: %s", w->path, w->tmp, strerror(errno));
        w->failed = 1;
        return -1;
    }
    free(w->tmp);
    w->tmp = NULL;
    return 0;
}

void k2c_gguf_w_free(k2c_gguf_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->tmp) unlink(w->tmp);     /* unfinished: no partial file stays */
    free(w->tmp);
    free(w->path);
    free(w->out.p);
    free(w->kv.p);
    for (uint64_t i = 0; i < w->nkv; i++) free(w->keys[i]);
    free(w->keys);
    for (int i = 0; i < w->nt; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}
