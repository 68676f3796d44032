/* GGUF: the file format of llama.cpp and ik_llama.cpp, read as it is published (v2/v3, little-endian).
 *
 * Layout: "GGUF", u32 version, u64 tensor count, u64 metadata count; the metadata (key string, u32 value
 * type, value; strings are u64 length + bytes, arrays u32 element type + u64 count + elements); the tensor
 * infos (name, u32 dims, u64 ne[dims] innermost first, u32 ggml type, u64 offset into the data area); zero
 * padding to general.alignment (default 32); the data area. A model may be split into NAME-00001-of-0000N.gguf
 * files (split.no, split.count): every file has the whole layout, metadata beyond split.* only in the first.
 *
 * The file is untrusted: every count, string length, value type, dimension, ggml type, offset and size is
 * checked against the bytes that are there before anything is allocated for it or any pointer is formed,
 * and errors name the file and the key or tensor. */
#include "core/core.h"

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define MAX_KEY 65535               /* the format's limit for keys */
#define MAX_NAME 255                /* tensor names (ggml's own limit is 63) */
#define MAX_STRING (1u << 30)
#define MAX_ALIGN (1u << 20)

/* ------------------------------------------------------------------ ggml types */
typedef struct { const char *name; int elems, bytes; } type_info;
static const type_info TYPES[K2C_GGML_NTYPES] = {
    [K2C_GGML_F32] = {"F32", 1, 4},         [K2C_GGML_F16] = {"F16", 1, 2},
    [K2C_GGML_Q4_0] = {"Q4_0", 32, 18},     [K2C_GGML_Q4_1] = {"Q4_1", 32, 20},
    [K2C_GGML_Q5_0] = {"Q5_0", 32, 22},     [K2C_GGML_Q5_1] = {"Q5_1", 32, 24},
    [K2C_GGML_Q8_0] = {"Q8_0", 32, 34},     [K2C_GGML_Q8_1] = {"Q8_1", 32, 36},
    [K2C_GGML_Q2_K] = {"Q2_K", 256, 84},    [K2C_GGML_Q3_K] = {"Q3_K", 256, 110},
    [K2C_GGML_Q4_K] = {"Q4_K", 256, 144},   [K2C_GGML_Q5_K] = {"Q5_K", 256, 176},
    [K2C_GGML_Q6_K] = {"Q6_K", 256, 210},   [K2C_GGML_Q8_K] = {"Q8_K", 256, 292},
    [K2C_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [K2C_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [K2C_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [K2C_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [K2C_GGML_IQ4_NL] = {"IQ4_NL", 32, 18}, [K2C_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [K2C_GGML_IQ2_S] = {"IQ2_S", 256, 82},  [K2C_GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [K2C_GGML_I8] = {"I8", 1, 1},           [K2C_GGML_I16] = {"I16", 1, 2},
    [K2C_GGML_I32] = {"I32", 1, 4},         [K2C_GGML_I64] = {"I64", 1, 8},
    [K2C_GGML_F64] = {"F64", 1, 8},         [K2C_GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [K2C_GGML_BF16] = {"BF16", 1, 2},       [K2C_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [K2C_GGML_TQ2_0] = {"TQ2_0", 256, 66},  [K2C_GGML_Q6_0] = {"Q6_0", 32, 26},
};

const char *k2c_ggml_type_name(int t) { return t >= 0 && t < K2C_GGML_NTYPES ? TYPES[t].name : NULL; }

int k2c_ggml_type_block(int t, int *elems, int *bytes) {
    if (!k2c_ggml_type_name(t)) return -1;
    if (elems) *elems = TYPES[t].elems;
    if (bytes) *bytes = TYPES[t].bytes;
    return 0;
}

static const int VSIZE[K2C_GGUF_NVTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const VNAME[K2C_GGUF_NVTYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                                    "string", "array", "u64", "i64", "f64"};

/* ------------------------------------------------------------------ a bounds-checked cursor */
typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *file;
    char what[320];     /* the item being read, for errors: "metadata key 3 ('general.name')" */
} rd;

static int need(rd *r, uint64_t n) {
    if (n > r->size - r->pos) {
        k2c_seterr("%s: truncated in %s: %llu bytes needed at offset %zu, %zu left (file of %zu bytes)", r->file,
                   r->what, (unsigned long long)n, r->pos, r->size - r->pos, r->size);
        return -1;
    }
    return 0;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int get_u32(rd *r, uint32_t *v) {
    if (need(r, 4)) return -1;
    *v = (uint32_t)le(r->p + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int get_u64(rd *r, uint64_t *v) {
    if (need(r, 8)) return -1;
    *v = le(r->p + r->pos, 8);
    r->pos += 8;
    return 0;
}

/* A string of at most cap bytes: *s points into the image. */
static int get_str(rd *r, uint64_t cap, const char **s, uint64_t *len) {
    if (get_u64(r, len)) return -1;
    if (*len > cap) {
        k2c_seterr("%s: %s: string length %llu is over the limit of %llu bytes", r->file, r->what,
                   (unsigned long long)*len, (unsigned long long)cap);
        return -1;
    }
    if (*len > r->size - r->pos) {
        k2c_seterr("%s: %s: string length %llu runs past the end of the file (%zu bytes left)", r->file, r->what,
                   (unsigned long long)*len, r->size - r->pos);
        return -1;
    }
    *s = (const char *)r->p + r->pos;
    r->pos += (size_t)*len;
    return 0;
}

static char *dup_name(rd *r, const char *s, uint64_t len) {
    if (memchr(s, 0, (size_t)len)) { k2c_seterr("%s: %s: name holds a NUL byte", r->file, r->what); return NULL; }
    char *d = malloc((size_t)len + 1);
    if (!d) { k2c_seterr("out of memory"); return NULL; }
    memcpy(d, s, (size_t)len);
    d[len] = 0;
    return d;
}

static void kv_free(k2c_gguf_kv *kv) {
    free(kv->key);
    free(kv->str);
    free(kv->sv);
    free(kv->sl);
    memset(kv, 0, sizeof *kv);
}

/* One value of type t into kv (kv->key already set). */
static int get_value(rd *r, int t, k2c_gguf_kv *kv) {
    if (t < 0 || t >= K2C_GGUF_NVTYPES) {
        k2c_seterr("%s: %s: unknown value type %d", r->file, r->what, t);
        return -1;
    }
    kv->type = t;
    if (t == K2C_GGUF_STRING) {
        const char *s;
        uint64_t len;
        if (get_str(r, MAX_STRING, &s, &len)) return -1;
        if (!(kv->str = malloc((size_t)len + 1))) { k2c_seterr("out of memory"); return -1; }
        memcpy(kv->str, s, (size_t)len);
        kv->str[len] = 0;
        kv->len = (size_t)len;
        return 0;
    }
    if (t == K2C_GGUF_ARRAY) {
        uint32_t at;
        uint64_t n;
        if (get_u32(r, &at) || get_u64(r, &n)) return -1;
        if (at >= K2C_GGUF_NVTYPES) { k2c_seterr("%s: %s: array of unknown type %u", r->file, r->what, at); return -1; }
        if (at == K2C_GGUF_ARRAY) { k2c_seterr("%s: %s: arrays of arrays are not supported", r->file, r->what); return -1; }
        kv->atype = (int)at;
        uint64_t es = at == K2C_GGUF_STRING ? 8 : (uint64_t)VSIZE[at];
        if (n > (r->size - r->pos) / es) {
            k2c_seterr("%s: %s: array of %llu %s elements cannot fit in the %zu bytes left", r->file, r->what,
                       (unsigned long long)n, VNAME[at], r->size - r->pos);
            return -1;
        }
        kv->n = n;
        if (at != K2C_GGUF_STRING) {
            kv->arr = r->p + r->pos;
            r->pos += (size_t)(n * es);
            return 0;
        }
        kv->sv = malloc((size_t)(n ? n : 1) * sizeof *kv->sv);
        kv->sl = malloc((size_t)(n ? n : 1) * sizeof *kv->sl);
        if (!kv->sv || !kv->sl) { k2c_seterr("out of memory"); return -1; }
        size_t wl = strlen(r->what);
        for (uint64_t i = 0; i < n; i++) {
            const char *s;
            uint64_t len;
            snprintf(r->what + wl, sizeof r->what - wl, " element %llu", (unsigned long long)i);
            if (get_str(r, UINT32_MAX, &s, &len)) return -1;
            kv->sv[i] = s;
            kv->sl[i] = (uint32_t)len;
        }
        r->what[wl] = 0;
        return 0;
    }
    if (need(r, (uint64_t)VSIZE[t])) return -1;
    uint64_t raw = le(r->p + r->pos, VSIZE[t]);
    r->pos += (size_t)VSIZE[t];
    switch (t) {
    case K2C_GGUF_I8: kv->v.i = (int8_t)raw; break;
    case K2C_GGUF_I16: kv->v.i = (int16_t)raw; break;
    case K2C_GGUF_I32: kv->v.i = (int32_t)raw; break;
    case K2C_GGUF_I64: kv->v.i = (int64_t)raw; break;
    case K2C_GGUF_F32: { uint32_t b = (uint32_t)raw; float f; memcpy(&f, &b, 4); kv->v.f = f; break; }
    case K2C_GGUF_F64: { double d; memcpy(&d, &raw, 8); kv->v.f = d; break; }
    default: kv->v.u = raw; break;   /* unsigned, bool */
    }
    return 0;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const k2c_gguf_tensor *)a)->name, ((const k2c_gguf_tensor *)b)->name);
}
static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const k2c_gguf_kv *)a)->key, ((const k2c_gguf_kv *)b)->key);
}
typedef struct { uint64_t begin, end; const char *name; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static const k2c_gguf_kv *kv_find(const k2c_gguf_kv *kv, int n, const char *key) {
    k2c_gguf_kv k = {.key = (char *)key};
    return n ? bsearch(&k, kv, (size_t)n, sizeof k, cmp_kv) : NULL;
}

/* Parses one file image. Its metadata go to *kv_out / *nkv_out (sorted by key), its tensors are appended to
 * g->tensors with data pointers into the image and file = fname. */
static int parse_image(k2c_gguf *g, const char *fname, const uint8_t *p, size_t size, k2c_gguf_kv **kv_out,
                       int *nkv_out) {
    rd r = {p, size, 0, fname, "the header"};
    k2c_gguf_kv *kv = NULL;
    span *spans = NULL;
    uint64_t nkv = 0, nt = 0;
    int got_kv = 0, first = g->ntensors, rc = -1;
    uint32_t version;
    *kv_out = NULL;
    *nkv_out = 0;

    if (size < 4 || memcmp(p, "GGUF", 4) != 0) {
        k2c_seterr("%s: not a GGUF file (no \"GGUF\" magic at the start)", fname);
        return -1;
    }
    r.pos = 4;
    if (get_u32(&r, &version)) return -1;
    if (version == 1) { k2c_seterr("%s: GGUF version 1 is not supported (only v2 and v3)", fname); return -1; }
    if (version != 2 && version != 3) {
        uint32_t sw = __builtin_bswap32(version);
        if (sw == 2 || sw == 3) k2c_seterr("%s: big-endian GGUF (version %u byte-swapped) is not supported", fname, sw);
        else k2c_seterr("%s: GGUF version %u is not supported (only v2 and v3)", fname, version);
        return -1;
    }
    if (g->nfiles == 0 || !g->version) g->version = version;
    if (get_u64(&r, &nt) || get_u64(&r, &nkv)) return -1;
    /* the least a tensor info takes is 33 bytes, a metadata pair 13: a count beyond that is a lie */
    if (nt > (size - r.pos) / 33 || nt > (1u << 24)) {
        k2c_seterr("%s: tensor count %llu cannot fit in a file of %zu bytes", fname, (unsigned long long)nt, size);
        return -1;
    }
    if (nkv > (size - r.pos) / 13 || nkv > (1u << 24)) {
        k2c_seterr("%s: metadata count %llu cannot fit in a file of %zu bytes", fname, (unsigned long long)nkv, size);
        return -1;
    }
    kv = calloc((size_t)(nkv ? nkv : 1), sizeof *kv);
    if (!kv) { k2c_seterr("out of memory"); return -1; }
    for (uint64_t i = 0; i < nkv; i++) {
        const char *s;
        uint64_t len;
        uint32_t t;
        snprintf(r.what, sizeof r.what, "metadata key %llu", (unsigned long long)i);
        if (get_str(&r, MAX_KEY, &s, &len)) goto done;
        if (len == 0) { k2c_seterr("%s: %s: empty key", fname, r.what); goto done; }
        if (!(kv[i].key = dup_name(&r, s, len))) goto done;
        got_kv = (int)i + 1;
        snprintf(r.what, sizeof r.what, "metadata key %llu ('%.200s')", (unsigned long long)i, kv[i].key);
        if (get_u32(&r, &t) || get_value(&r, (int)t, &kv[i])) goto done;
    }
    qsort(kv, (size_t)nkv, sizeof *kv, cmp_kv);
    for (uint64_t i = 1; i < nkv; i++)
        if (!strcmp(kv[i].key, kv[i - 1].key)) { k2c_seterr("%s: metadata key '%s' appears twice", fname, kv[i].key); goto done; }

    size_t align = 32;
    const k2c_gguf_kv *a = kv_find(kv, (int)nkv, "general.alignment");
    if (a) {
        if (a->type != K2C_GGUF_U32 || a->v.u == 0 || (a->v.u & (a->v.u - 1)) || a->v.u > MAX_ALIGN) {
            k2c_seterr("%s: general.alignment must be a u32 power of two up to %u", fname, MAX_ALIGN);
            goto done;
        }
        align = (size_t)a->v.u;
    }
    if (g->nfiles == 0 || !g->alignment) g->alignment = align;

    k2c_gguf_tensor *nts = realloc(g->tensors, (size_t)(g->ntensors + nt + 1) * sizeof *nts);
    if (!nts) { k2c_seterr("out of memory"); goto done; }
    g->tensors = nts;
    for (uint64_t i = 0; i < nt; i++) {
        k2c_gguf_tensor *t = &g->tensors[g->ntensors];
        const char *s;
        uint64_t len, off;
        uint32_t nd, type;
        memset(t, 0, sizeof *t);
        snprintf(r.what, sizeof r.what, "tensor info %llu", (unsigned long long)i);
        if (get_str(&r, MAX_NAME, &s, &len)) goto done;
        if (len == 0) { k2c_seterr("%s: %s: empty name", fname, r.what); goto done; }
        if (!(t->name = dup_name(&r, s, len))) goto done;
        g->ntensors++;
        snprintf(r.what, sizeof r.what, "tensor '%s'", t->name);
        if (get_u32(&r, &nd)) goto done;
        if (nd < 1 || nd > 4) { k2c_seterr("%s: tensor '%s': %u dimensions (1 to 4)", fname, t->name, nd); goto done; }
        t->ndim = (int)nd;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            if (get_u64(&r, &ne)) goto done;
            if (ne > ((uint64_t)1 << 40)) {
                k2c_seterr("%s: tensor '%s': dimension %u is %llu", fname, t->name, d, (unsigned long long)ne);
                goto done;
            }
            if (ne && numel > ((uint64_t)1 << 50) / ne) {
                k2c_seterr("%s: tensor '%s': shape overflows (more than 2^50 elements)", fname, t->name);
                goto done;
            }
            numel *= ne;
            t->ne[d] = (int64_t)ne;
        }
        for (int d = (int)nd; d < 4; d++) t->ne[d] = 1;
        if (get_u32(&r, &type) || get_u64(&r, &off)) goto done;
        int be, bb;
        if (k2c_ggml_type_block((int)type, &be, &bb) != 0) {
            k2c_seterr("%s: tensor '%s': unknown ggml type %u", fname, t->name, type);
            goto done;
        }
        if (t->ne[0] % be) {
            k2c_seterr("%s: tensor '%s': row length %lld is not a multiple of the %s block (%d)", fname, t->name,
                       (long long)t->ne[0], TYPES[type].name, be);
            goto done;
        }
        if (off % align) {
            k2c_seterr("%s: tensor '%s': offset %llu is not a multiple of the alignment %zu", fname, t->name,
                       (unsigned long long)off, align);
            goto done;
        }
        t->type = (int)type;
        t->numel = (int64_t)numel;
        t->nbytes = (size_t)(numel / (uint64_t)be * (uint64_t)bb);
        t->offset = off;
        t->file = fname;
    }
    size_t data_start = (r.pos + align - 1) / align * align;
    size_t data_size = data_start <= size ? size - data_start : 0;
    if (nt && data_start > size) {
        k2c_seterr("%s: no data area after the tensor infos (file truncated?)", fname);
        goto done;
    }
    spans = malloc((size_t)(nt ? nt : 1) * sizeof *spans);
    if (!spans) { k2c_seterr("out of memory"); goto done; }
    for (uint64_t i = 0; i < nt; i++) {
        k2c_gguf_tensor *t = &g->tensors[first + (int)i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            k2c_seterr("%s: tensor '%s': data [%llu, %llu) past the end of the data area (%zu bytes; file truncated?)",
                       fname, t->name, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes), data_size);
            goto done;
        }
        t->data = p + data_start + t->offset;
        spans[i] = (span){t->offset, t->offset + t->nbytes, t->name};
    }
    /* sorted by start, each non-empty span must start at or after the furthest end so far (not just the
     * previous one's: an empty tensor between two overlapping ones must not hide them) */
    qsort(spans, (size_t)nt, sizeof *spans, cmp_span);
    for (uint64_t i = 0, far = 0; i < nt; i++) {
        if (spans[i].end == spans[i].begin) continue;
        if (i && spans[i].begin < spans[far].end && spans[far].end > spans[far].begin) {
            k2c_seterr("%s: tensors '%s' and '%s' overlap in the data area", fname, spans[far].name, spans[i].name);
            goto done;
        }
        if (spans[i].end > spans[far].end || spans[far].end == spans[far].begin) far = i;
    }
    *kv_out = kv;
    *nkv_out = (int)nkv;
    kv = NULL;
    rc = 0;
done:
    if (kv) {
        for (int i = 0; i < got_kv; i++) kv_free(&kv[i]);
        free(kv);
    }
    if (rc != 0) {
        for (int i = first; i < g->ntensors; i++) free(g->tensors[i].name);
        g->ntensors = first;
    }
    free(spans);
    return rc;
}

static int add_file(k2c_gguf *g, const char *path, void *map, size_t size) {
    k2c_st_file *nf = realloc(g->files, (size_t)(g->nfiles + 1) * sizeof *nf);
    if (!nf) { k2c_seterr("out of memory"); return -1; }
    g->files = nf;
    g->files[g->nfiles] = (k2c_st_file){strdup(path), map, size};
    if (!g->files[g->nfiles].path) { k2c_seterr("out of memory"); return -1; }
    g->nfiles++;
    return 0;
}

static void free_kvs(k2c_gguf_kv *kv, int n) {
    for (int i = 0; i < n; i++) kv_free(&kv[i]);
    free(kv);
}

/* After all files: names sorted, no name twice. */
static int finish(k2c_gguf *g, const char *path) {
    qsort(g->tensors, (size_t)g->ntensors, sizeof *g->tensors, cmp_tensor);
    for (int i = 1; i < g->ntensors; i++)
        if (!strcmp(g->tensors[i].name, g->tensors[i - 1].name)) {
            k2c_seterr("%s: tensor '%s' appears twice (%s, %s)", path, g->tensors[i].name, g->tensors[i - 1].file,
                       g->tensors[i].file);
            return -1;
        }
    return 0;
}

int k2c_gguf_parse(k2c_gguf *g, const char *name, const void *data, size_t size) {
    memset(g, 0, sizeof *g);
    g->mode = K2C_LOAD_MMAP;
    if (add_file(g, name, NULL, size) != 0) { k2c_gguf_close(g); return -1; }
    if (parse_image(g, g->files[0].path, data, size, &g->kv, &g->nkv) != 0 || finish(g, name) != 0) {
        k2c_gguf_close(g);
        return -1;
    }
    return 0;
}

/* "DIR/NAME-00001-of-00003.gguf": *count = 3 and the length of the part before "-00001". 0 if not a split name. */
static int split_name(const char *path, int *count, size_t *stem) {
    size_t n = strlen(path);
    const char *suf = "-00001-of-";
    if (n < 25 || strcmp(path + n - 5, ".gguf")) return 0;
    const char *q = path + n - 5 - 5;   /* the five digits of the count */
    if (strncmp(q - strlen(suf), suf, strlen(suf))) return 0;
    for (int i = 0; i < 5; i++) if (!isdigit((unsigned char)q[i])) return 0;
    *count = atoi(q);
    *stem = (size_t)(q - strlen(suf) - path);
    return *count >= 1;
}

int k2c_gguf_open(k2c_gguf *g, const char *path, k2c_load_mode mode) {
    memset(g, 0, sizeof *g);
    g->mode = mode;
    int count = 1;
    size_t stem = 0;
    int is_split = split_name(path, &count, &stem);
    for (int i = 0; i < count; i++) {
        char pb[4096];
        if (i == 0) snprintf(pb, sizeof pb, "%s", path);
        else snprintf(pb, sizeof pb, "%.*s-%05d-of-%05d.gguf", (int)stem, path, i + 1, count);
        void *map;
        size_t size;
        if (k2c_map_file(pb, mode, 24, "GGUF header", &map, &size) != 0) goto fail;
        if (add_file(g, pb, map, size) != 0) { munmap(map, size); goto fail; }
        k2c_gguf_kv *kv;
        int nkv;
        if (parse_image(g, g->files[i].path, map, size, &kv, &nkv) != 0) goto fail;
        const k2c_gguf_kv *sc = kv_find(kv, nkv, "split.count"), *sn = kv_find(kv, nkv, "split.no");
        int64_t want_count = sc && (sc->type == K2C_GGUF_U16 || sc->type == K2C_GGUF_U32 || sc->type == K2C_GGUF_I32) ? (int64_t)sc->v.u : 1;
        int64_t no = sn ? (int64_t)sn->v.u : 0;
        if (sc && sc->type == K2C_GGUF_I32) want_count = sc->v.i;
        if (i == 0) {
            g->kv = kv;
            g->nkv = nkv;
            if (want_count > 1 && !is_split) {
                k2c_seterr("%s: split.count is %lld but the name is not NAME-00001-of-%05lld.gguf", pb,
                           (long long)want_count, (long long)want_count);
                goto fail;
            }
            if (is_split && want_count != count) {
                k2c_seterr("%s: split.count is %lld, the name says %d", pb, (long long)want_count, count);
                goto fail;
            }
        } else {
            free_kvs(kv, nkv);
        }
        if (no != i || (i > 0 && want_count != count)) {
            k2c_seterr("%s: split.no %lld / split.count %lld, expected %d of %d", pb, (long long)no, (long long)want_count, i, count);
            goto fail;
        }
    }
    if (finish(g, path) != 0) goto fail;
    int64_t tc;
    if (count > 1 && k2c_gguf_int(g, "split.tensors.count", &tc) == 1 && tc != g->ntensors) {
        k2c_seterr("%s: split.tensors.count is %lld, the %d files hold %d tensors", path, (long long)tc, count, g->ntensors);
        goto fail;
    }
    return 0;
fail:
    k2c_gguf_close(g);
    return -1;
}

void k2c_gguf_close(k2c_gguf *g) {
    free_kvs(g->kv, g->nkv);
    for (int i = 0; i < g->ntensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    for (int i = 0; i < g->nfiles; i++) {
        if (g->files[i].map) munmap(g->files[i].map, g->files[i].size);
        free(g->files[i].path);
    }
    free(g->files);
    memset(g, 0, sizeof *g);
}

const k2c_gguf_tensor *k2c_gguf_find(const k2c_gguf *g, const char *name) {
    k2c_gguf_tensor key = {.name = (char *)name};
    return g->ntensors ? bsearch(&key, g->tensors, (size_t)g->ntensors, sizeof key, cmp_tensor) : NULL;
}

const k2c_gguf_kv *k2c_gguf_get(const k2c_gguf *g, const char *key) { return kv_find(g->kv, g->nkv, key); }

static const char *fname0(const k2c_gguf *g) { return g->nfiles ? g->files[0].path : "?"; }

int k2c_gguf_int(const k2c_gguf *g, const char *key, int64_t *out) {
    const k2c_gguf_kv *kv = k2c_gguf_get(g, key);
    if (!kv) return 0;
    switch (kv->type) {
    case K2C_GGUF_U8: case K2C_GGUF_U16: case K2C_GGUF_U32: case K2C_GGUF_BOOL: *out = (int64_t)kv->v.u; return 1;
    case K2C_GGUF_U64:
        if (kv->v.u > (uint64_t)INT64_MAX) break;
        *out = (int64_t)kv->v.u;
        return 1;
    case K2C_GGUF_I8: case K2C_GGUF_I16: case K2C_GGUF_I32: case K2C_GGUF_I64: *out = kv->v.i; return 1;
    default: break;
    }
    k2c_seterr("%s: metadata '%s' is a %s, expected an integer", fname0(g), key, VNAME[kv->type]);
    return -1;
}

int k2c_gguf_num(const k2c_gguf *g, const char *key, double *out) {
    const k2c_gguf_kv *kv = k2c_gguf_get(g, key);
    if (!kv) return 0;
    if (kv->type == K2C_GGUF_F32 || kv->type == K2C_GGUF_F64) { *out = kv->v.f; return 1; }
    int64_t i;
    if (kv->type != K2C_GGUF_STRING && kv->type != K2C_GGUF_ARRAY && k2c_gguf_int(g, key, &i) == 1) {
        *out = (double)i;
        return 1;
    }
    k2c_seterr("%s: metadata '%s' is a %s, expected a number", fname0(g), key, VNAME[kv->type]);
    return -1;
}

int k2c_gguf_str(const k2c_gguf *g, const char *key, const char **out) {
    const k2c_gguf_kv *kv = k2c_gguf_get(g, key);
    if (!kv) return 0;
    if (kv->type != K2C_GGUF_STRING) {
        k2c_seterr("%s: metadata '%s' is a %s, expected a string", fname0(g), key, VNAME[kv->type]);
        return -1;
    }
    *out = kv->str;
    return 1;
}

/* ------------------------------------------------------------------ deepseek2 metadata -> k2c_config */
typedef struct { const k2c_gguf *g; json_t *o; int failed; } cfgb;

/* deepseek2.KEY (integer) as config.json field NAME; absent: dflt (required when dflt == REQ). */
#define REQ INT64_MIN
static int64_t put_int(cfgb *b, json_t *o, const char *key, const char *name, int64_t dflt) {
    char full[160];
    int64_t v = dflt;
    if (b->failed) return 0;
    snprintf(full, sizeof full, "deepseek2.%s", key);
    int r = k2c_gguf_int(b->g, full, &v);
    if (r < 0) { b->failed = 1; return 0; }
    if (r == 0 && dflt == REQ) {
        k2c_seterr("%s: missing metadata '%s'", fname0(b->g), full);
        b->failed = 1;
        return 0;
    }
    if (name) json_object_set_new(o, name, json_integer(v));
    return v;
}

static double put_num(cfgb *b, json_t *o, const char *key, const char *name, double dflt) {
    char full[160];
    double v = dflt;
    if (b->failed) return 0;
    snprintf(full, sizeof full, "deepseek2.%s", key);
    if (k2c_gguf_num(b->g, full, &v) < 0) { b->failed = 1; return 0; }
    if (name) json_object_set_new(o, name, json_real(v));
    return v;
}

int k2c_gguf_config(const k2c_gguf *g, k2c_config *c) {
    const char *arch = NULL, *gname = NULL, *rtype = NULL;
    const char *f = fname0(g);
    memset(c, 0, sizeof *c);
    if (k2c_gguf_str(g, "general.architecture", &arch) <= 0) {
        if (!arch) k2c_seterr("%s: no general.architecture string", f);
        return -1;
    }
    if (strcmp(arch, "deepseek2") != 0) {
        k2c_seterr("%s: general.architecture '%.100s' is not supported (k2c runs deepseek2: Kimi K2, DeepSeek-V3)", f, arch);
        return -1;
    }
    cfgb b = {g, json_object(), 0};
    json_t *o = b.o;
    if (!o) { k2c_seterr("out of memory"); return -1; }
    if (k2c_gguf_str(g, "general.name", &gname) < 0) b.failed = 1;
    int kimi = gname && strcasestr(gname, "kimi");
    json_t *archs = json_array();
    json_array_append_new(archs, json_string("DeepseekV3ForCausalLM"));
    json_object_set_new(o, "architectures", archs);
    json_object_set_new(o, "model_type", json_string(kimi ? "kimi_k2" : "deepseek_v3"));

    int64_t vocab = 0;
    const k2c_gguf_kv *toks = k2c_gguf_get(g, "tokenizer.ggml.tokens");
    const k2c_gguf_tensor *emb = k2c_gguf_find(g, "token_embd.weight");
    int64_t vdef = toks && toks->type == K2C_GGUF_ARRAY ? (int64_t)toks->n : emb && emb->ndim == 2 ? emb->ne[1] : REQ;
    vocab = put_int(&b, o, "vocab_size", "vocab_size", vdef);
    (void)vocab;
    put_int(&b, o, "embedding_length", "hidden_size", REQ);
    int64_t ff = put_int(&b, o, "feed_forward_length", "intermediate_size", REQ);
    put_int(&b, o, "expert_feed_forward_length", "moe_intermediate_size", ff);
    put_int(&b, o, "block_count", "num_hidden_layers", REQ);
    put_int(&b, o, "leading_dense_block_count", "first_k_dense_replace", 0);
    put_int(&b, o, "attention.head_count", "num_attention_heads", REQ);
    put_int(&b, o, "expert_count", "n_routed_experts", 0);
    put_int(&b, o, "expert_shared_count", "n_shared_experts", 0);
    put_int(&b, o, "expert_used_count", "num_experts_per_tok", 0);
    put_int(&b, o, "expert_group_count", "n_group", 1);
    put_int(&b, o, "expert_group_used_count", "topk_group", 1);
    /* llama.cpp: 1 softmax, 2 sigmoid; files from before the key are DeepSeek-V2 (softmax) */
    int64_t gating = put_int(&b, o, "expert_gating_func", NULL, 1);
    if (!b.failed && gating != 1 && gating != 2) {
        k2c_seterr("%s: deepseek2.expert_gating_func %lld is not supported (1 softmax, 2 sigmoid)", f, (long long)gating);
        b.failed = 1;
    }
    json_object_set_new(o, "scoring_func", json_string(gating == 1 ? "softmax" : "sigmoid"));
    int64_t norm = put_int(&b, o, "expert_weights_norm", NULL, 0);
    json_object_set_new(o, "norm_topk_prob", json_boolean(norm != 0));
    put_num(&b, o, "expert_weights_scale", "routed_scaling_factor", 1.0);
    int64_t ql = put_int(&b, o, "attention.q_lora_rank", NULL, 0);
    json_object_set_new(o, "q_lora_rank", ql ? json_integer(ql) : json_null());
    put_int(&b, o, "attention.kv_lora_rank", "kv_lora_rank", REQ);
    int64_t dr = put_int(&b, o, "rope.dimension_count", "qk_rope_head_dim", REQ);
    /* files converted for llama.cpp's MLA path give the per-head q/k and v sizes under *_mla */
    int mla = k2c_gguf_get(g, "deepseek2.attention.key_length_mla") != NULL;
    int64_t kl = put_int(&b, o, mla ? "attention.key_length_mla" : "attention.key_length", NULL, REQ);
    put_int(&b, o, mla ? "attention.value_length_mla" : "attention.value_length", "v_head_dim", REQ);
    if (!b.failed && kl <= dr) {
        k2c_seterr("%s: deepseek2.attention.key_length %lld must exceed rope.dimension_count %lld", f, (long long)kl, (long long)dr);
        b.failed = 1;
    }
    json_object_set_new(o, "qk_nope_head_dim", json_integer(kl - dr));
    put_num(&b, o, "rope.freq_base", "rope_theta", 10000.0);
    put_int(&b, o, "context_length", "max_position_embeddings", 4096);
    put_num(&b, o, "attention.layer_norm_rms_epsilon", "rms_norm_eps", 1e-6);
    json_object_set_new(o, "tie_word_embeddings", json_boolean(k2c_gguf_find(g, "output.weight") == NULL));
    int64_t bos = -1, eos = -1;
    if (k2c_gguf_int(g, "tokenizer.ggml.bos_token_id", &bos) < 0 || k2c_gguf_int(g, "tokenizer.ggml.eos_token_id", &eos) < 0)
        b.failed = 1;
    json_object_set_new(o, "bos_token_id", json_integer(bos));
    json_object_set_new(o, "eos_token_id", json_integer(eos));
    if (!b.failed && k2c_gguf_str(g, "deepseek2.rope.scaling.type", &rtype) < 0) b.failed = 1;
    if (!b.failed && rtype && !strcmp(rtype, "yarn")) {
        json_t *rs = json_object();
        json_object_set_new(rs, "type", json_string("yarn"));
        put_num(&b, rs, "rope.scaling.factor", "factor", 1.0);
        put_int(&b, rs, "rope.scaling.original_context_length", "original_max_position_embeddings", 4096);
        put_num(&b, rs, "rope.scaling.yarn_beta_fast", "beta_fast", 32.0);
        put_num(&b, rs, "rope.scaling.yarn_beta_slow", "beta_slow", 1.0);
        /* llama.cpp keeps 0.1 * mscale_all_dim and takes mscale equal to it (their ratio scales cos/sin) */
        double lm = put_num(&b, rs, "rope.scaling.yarn_log_multiplier", NULL, 0.0);
        json_object_set_new(rs, "mscale", json_real(lm / 0.1));
        json_object_set_new(rs, "mscale_all_dim", json_real(lm / 0.1));
        json_object_set_new(o, "rope_scaling", rs);
    } else if (!b.failed && rtype && strcmp(rtype, "none")) {
        k2c_seterr("%s: deepseek2.rope.scaling.type '%.100s' is not supported (yarn or none)", f, rtype);
        b.failed = 1;
    }
    int rc = -1;
    if (!b.failed) {
        char *text = json_dumps(o, JSON_REAL_PRECISION(17));
        char where[4200];
        snprintf(where, sizeof where, "%s (GGUF metadata, as config.json fields)", f);
        rc = text ? k2c_config_parse(c, text, where) : (k2c_seterr("out of memory"), -1);
        free(text);
    }
    json_decref(o);
    return rc;
}

/* ------------------------------------------------------------------ where the GGUF is */
static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* N of "NAME-0000N-of-0000M.gguf", 0 if the name is not a split name. */
static int split_part(const char *s) {
    size_t n = strlen(s);
    if (n < 20 || !has_suffix(s, ".gguf") || s[n - 20] != '-' || strncmp(s + n - 14, "-of-", 4)) return 0;
    for (size_t i = n - 19; i < n - 14; i++) if (!isdigit((unsigned char)s[i])) return 0;
    for (size_t i = n - 10; i < n - 5; i++) if (!isdigit((unsigned char)s[i])) return 0;
    return atoi(s + n - 19);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int k2c_gguf_locate(const char *path, char **out) {
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) {
        if (!has_suffix(path, ".gguf")) return 0;
        return (*out = strdup(path)) ? 1 : (k2c_seterr("out of memory"), -1);
    }
    /* a folder: GGUF only when it holds no safetensors checkpoint */
    char *p1 = k2c_path_join(path, "model.safetensors"), *p2 = k2c_path_join(path, "model.safetensors.index.json");
    int st = p1 && p2 && (stat(p1, &sb) == 0 || stat(p2, &sb) == 0);
    free(p1);
    free(p2);
    if (st) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    char *names[64];
    int n = 0, more = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".gguf")) continue;
        if (split_part(e->d_name) > 1) continue;     /* of a split set, only its first file counts */
        if (n < 64) { if (!(names[n++] = strdup(e->d_name))) { rc = -1; break; } }
        else more = 1;
    }
    closedir(d);
    if (rc == 0 && n == 1) {
        *out = k2c_path_join(path, names[0]);
        rc = *out ? 1 : -1;
        if (rc < 0) k2c_seterr("out of memory");
    } else if (rc == 0 && n > 1) {
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        k2c_seterr("%s: %d%s GGUF models in the folder (%s, %s%s): give --model the file", path, n, more ? "+" : "",
                   names[0], names[1], n > 2 ? ", ..." : "");
        rc = -1;
    } else if (rc < 0) {
        k2c_seterr("out of memory");
    }
    for (int i = 0; i < n; i++) free(names[i]);
    return rc;
}
