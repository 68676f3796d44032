/* safetensors: reading (mmap, every header entry validated) and writing (atomic, streamed).
 *
 * Layout: u64 little-endian N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}} with
 * offsets relative to the end of the header, then the data. A model folder holds one model.safetensors
 * or shards listed in model.safetensors.index.json ("weight_map": tensor -> file). Shard names are not
 * always zero-padded (Kimi-K2 ships model-1-of-61.safetensors), so names always come from the index.
 *
 * A hostile or truncated file must produce an error that names the file and tensor, never a read outside
 * the mapping: every offset is checked against the file size before any pointer is formed. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


#define MAX_HEADER (256u << 20)   /* a real header is a few MB at most */

void k2c_tensor_set_shape(k2c_tensor *t, k2c_dtype dtype, int ndim, const int64_t *shape) {
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; t->numel *= shape[i]; }
    t->nbytes = (size_t)t->numel * k2c_dtype_size(dtype);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const k2c_tensor *)a)->name, ((const k2c_tensor *)b)->name);
}

typedef struct { size_t begin, end; const char *name; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static int add_tensor(k2c_safetensors *st, int *cap, const k2c_tensor *t) {
    if (st->ntensors == *cap) {
        int nc = *cap ? 2 * *cap : 256;
        k2c_tensor *n = realloc(st->tensors, (size_t)nc * sizeof *n);
        if (!n) { k2c_seterr("out of memory"); return -1; }
        st->tensors = n; *cap = nc;
    }
    st->tensors[st->ntensors++] = *t;
    return 0;
}

/* Parses one header entry into t (name already set). Returns 0 or -1 with an error naming file and tensor. */
static int parse_entry(const char *file, const char *name, json_t *v, size_t data_size, k2c_tensor *t) {
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"), *jo = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2) {
        k2c_seterr("%s: tensor '%s': header entry needs dtype, shape and data_offsets [begin, end]", file, name);
        return -1;
    }
    k2c_dtype dt;
    if (k2c_dtype_parse(json_string_value(jd), &dt) != 0) {
        k2c_seterr("%s: tensor '%s': unknown dtype '%s'", file, name, json_string_value(jd));
        return -1;
    }
    size_t nd = json_array_size(js);
    if (nd > K2C_MAX_DIMS) { k2c_seterr("%s: tensor '%s': %zu dimensions (at most %d)", file, name, nd, K2C_MAX_DIMS); return -1; }
    int64_t shape[K2C_MAX_DIMS];
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0) {
            k2c_seterr("%s: tensor '%s': shape[%zu] is not a non-negative integer", file, name, i);
            return -1;
        }
        shape[i] = json_integer_value(d);
        if (shape[i] != 0 && numel > (UINT64_MAX / 16) / (uint64_t)shape[i]) {
            k2c_seterr("%s: tensor '%s': shape overflows", file, name);
            return -1;
        }
        numel *= (uint64_t)shape[i];
    }
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 || json_integer_value(je) < json_integer_value(jb)) {
        k2c_seterr("%s: tensor '%s': data_offsets must be integers with 0 <= begin <= end", file, name);
        return -1;
    }
    uint64_t b = (uint64_t)json_integer_value(jb), e = (uint64_t)json_integer_value(je);
    if (e > data_size) {
        k2c_seterr("%s: tensor '%s': data_offsets [%llu, %llu] past the end of the data (%zu bytes; file truncated?)",
                   file, name, (unsigned long long)b, (unsigned long long)e, data_size);
        return -1;
    }
    if (e - b != numel * k2c_dtype_size(dt)) {
        k2c_seterr("%s: tensor '%s': %llu bytes for %llu elements of %s (expected %llu): shape/dtype mismatch",
                   file, name, (unsigned long long)(e - b), (unsigned long long)numel, k2c_dtype_name(dt),
                   (unsigned long long)(numel * k2c_dtype_size(dt)));
        return -1;
    }
    k2c_tensor_set_shape(t, dt, (int)nd, shape);
    t->nbytes = (size_t)(e - b);
    t->data = (const void *)(uintptr_t)b;   /* offset for now; made a pointer once the file is mapped */
    return 0;
}

/* Parses the header of a whole file image map[0 .. size) (path names it in errors) and appends its
 * tensors with data pointing into map. On error nothing is appended. */
static int parse_image(k2c_safetensors *st, int *cap, const char *path, const void *map, size_t size) {
    json_t *root = NULL;
    int first = st->ntensors;
    span *spans = NULL;
    if (size < 8) { k2c_seterr("%s: %zu bytes, too short for a safetensors header (truncated?)", path, size); return -1; }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)((const uint8_t *)map)[i] << (8 * i);
    if (hlen > MAX_HEADER || hlen > size - 8) {
        k2c_seterr("%s: header length %llu runs past the end of the file (%zu bytes)", path, (unsigned long long)hlen, size);
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb((const char *)map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        k2c_seterr("%s: header is not a JSON object: %s (line %d)", path, root ? "wrong type" : jerr.text, jerr.line);
        goto fail;
    }
    size_t data_size = size - 8 - (size_t)hlen;
    const char *data = (const char *)map + 8 + hlen;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        k2c_tensor t = {0};
        if (parse_entry(path, key, val, data_size, &t) != 0) goto fail;
        t.name = strdup(key);
        if (!t.name || add_tensor(st, cap, &t) != 0) { free(t.name); k2c_seterr("out of memory"); goto fail; }
    }
    /* No two tensors may share bytes: a crafted header could alias a scale with a weight. */
    int n = st->ntensors - first;
    spans = malloc((size_t)(n ? n : 1) * sizeof *spans);
    if (!spans) { k2c_seterr("out of memory"); goto fail; }
    for (int i = 0; i < n; i++) {
        k2c_tensor *t = &st->tensors[first + i];
        spans[i].begin = (size_t)(uintptr_t)t->data;
        spans[i].end = spans[i].begin + t->nbytes;
        spans[i].name = t->name;
    }
    /* sorted by start, each non-empty span must start at or after the furthest end so far (an empty tensor
     * between two overlapping ones must not hide them) */
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    for (int i = 0, far = 0; i < n; i++) {
        if (spans[i].end == spans[i].begin) continue;
        if (i && spans[i].begin < spans[far].end && spans[far].end > spans[far].begin) {
            k2c_seterr("%s: tensors '%s' and '%s' overlap in the data area", path, spans[far].name, spans[i].name);
            goto fail;
        }
        if (spans[i].end > spans[far].end || spans[far].end == spans[far].begin) far = i;
    }
    for (int i = first; i < st->ntensors; i++)
        st->tensors[i].data = data + (size_t)(uintptr_t)st->tensors[i].data;
    free(spans);
    json_decref(root);
    return 0;
fail:
    for (int i = first; i < st->ntensors; i++) free(st->tensors[i].name);
    st->ntensors = first;
    free(spans);
    if (root) json_decref(root);
    return -1;
}

static int open_file(k2c_safetensors *st, int *cap, const char *path) {
    void *map = MAP_FAILED;
    int first = st->ntensors;
    size_t size = 0;

    k2c_st_file *nf = realloc(st->files, (size_t)(st->nfiles + 1) * sizeof *nf);
    if (!nf) { k2c_seterr("out of memory"); return -1; }
    st->files = nf;
    k2c_st_file *f = &st->files[st->nfiles];
    memset(f, 0, sizeof *f);

    if (k2c_map_file(path, st->mode, 8, "safetensors header", &map, &size) != 0) { map = MAP_FAILED; goto fail; }
    if (parse_image(st, cap, path, map, size) != 0) goto fail;
    f->path = strdup(path);
    if (!f->path) { k2c_seterr("out of memory"); goto fail; }
    for (int i = first; i < st->ntensors; i++) st->tensors[i].file = f->path;
    f->map = map;
    f->size = size;
    st->nfiles++;
    return 0;
fail:
    for (int i = first; i < st->ntensors; i++) free(st->tensors[i].name);
    st->ntensors = first;
    if (map != MAP_FAILED) munmap(map, size);
    return -1;
}

static int is_dir(const char *p) { struct stat sb; return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode); }
static int exists(const char *p) { struct stat sb; return stat(p, &sb) == 0; }

/* Shard names come from a file we did not write: refuse anything that would leave the folder. */
static int safe_shard_name(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int open_index(k2c_safetensors *st, int *cap, const char *dir, const char *index_path) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    json_t *wm = root ? json_object_get(root, "weight_map") : NULL;
    const char **names = NULL;
    int nnames = 0, rc = -1;
    if (!root) { k2c_seterr("%s: bad JSON: %s (line %d)", index_path, jerr.text, jerr.line); goto done; }
    if (!json_is_object(wm)) { k2c_seterr("%s: no \"weight_map\" object", index_path); goto done; }
    if (json_object_size(wm) == 0) { k2c_seterr("%s: \"weight_map\" lists no tensors", index_path); goto done; }
    names = calloc(json_object_size(wm) + 1, sizeof *names);
    if (!names) { k2c_seterr("out of memory"); goto done; }
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val) || !safe_shard_name(json_string_value(val))) {
            k2c_seterr("%s: weight_map[\"%s\"] is not a plain file name in the folder", index_path, key);
            goto done;
        }
        const char *fn = json_string_value(val);
        int seen = 0;
        for (int i = 0; i < nnames && !seen; i++) seen = strcmp(names[i], fn) == 0;
        if (!seen) names[nnames++] = fn;
    }
    for (int i = 0; i < nnames; i++) {
        char *p = k2c_path_join(dir, names[i]);
        int r = p ? open_file(st, cap, p) : -1;
        free(p);
        if (r != 0) goto done;
    }
    if (st->ntensors > 1) qsort(st->tensors, (size_t)st->ntensors, sizeof *st->tensors, cmp_tensor_name);
    /* Every tensor the index promises must be in the shard it names. */
    json_object_foreach(wm, key, val) {
        const k2c_tensor *t = k2c_st_find(st, key);
        const char *fn = json_string_value(val), *base = t ? strrchr(t->file, '/') : NULL;
        base = base ? base + 1 : (t ? t->file : NULL);
        if (!t || strcmp(base, fn) != 0) {
            k2c_seterr("%s: tensor '%s' is listed in %s but not found there", index_path, key, fn);
            goto done;
        }
    }
    rc = 0;
done:
    free(names);
    if (root) json_decref(root);
    return rc;
}

int k2c_st_parse(k2c_safetensors *st, const char *name, const void *image, size_t size) {
    int cap = 0;
    memset(st, 0, sizeof *st);
    if (parse_image(st, &cap, name, image, size) != 0) { k2c_st_close(st); return -1; }
    if (st->ntensors > 1) qsort(st->tensors, (size_t)st->ntensors, sizeof *st->tensors, cmp_tensor_name);
    return 0;
}

int k2c_st_open(k2c_safetensors *st, const char *path) { return k2c_st_open_mode(st, path, K2C_LOAD_AUTO); }

int k2c_st_open_mode(k2c_safetensors *st, const char *path, k2c_load_mode mode) {
    int cap = 0, rc;
    memset(st, 0, sizeof *st);
    st->mode = mode;
    if (is_dir(path)) {
        char *idx = k2c_path_join(path, "model.safetensors.index.json");
        char *single = k2c_path_join(path, "model.safetensors");
        if (!idx || !single) { k2c_seterr("out of memory"); rc = -1; }
        else if (exists(idx)) rc = open_index(st, &cap, path, idx);
        else if (exists(single)) rc = open_file(st, &cap, single);
        else { k2c_seterr("%s: no model.safetensors or model.safetensors.index.json", path); rc = -1; }
        free(idx);
        free(single);
    } else {
        rc = open_file(st, &cap, path);
    }
    if (rc == 0) {
        if (st->ntensors > 1) qsort(st->tensors, (size_t)st->ntensors, sizeof *st->tensors, cmp_tensor_name);
        for (int i = 1; i < st->ntensors; i++)
            if (strcmp(st->tensors[i].name, st->tensors[i - 1].name) == 0) {
                k2c_seterr("%s: tensor '%s' appears in two shards (%s and %s)", path, st->tensors[i].name,
                           st->tensors[i - 1].file, st->tensors[i].file);
                rc = -1;
                break;
            }
    }
    if (rc != 0) k2c_st_close(st);
    return rc;
}

void k2c_st_close(k2c_safetensors *st) {
    for (int i = 0; i < st->ntensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->nfiles; i++) {
        munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->tensors);
    free(st->files);
    memset(st, 0, sizeof *st);
}

const k2c_tensor *k2c_st_find(const k2c_safetensors *st, const char *name) {
    k2c_tensor key = {.name = (char *)name};
    if (!st->ntensors) return NULL;
    return bsearch(&key, st->tensors, (size_t)st->ntensors, sizeof key, cmp_tensor_name);
}

static int write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (n && fwrite(p, 1, n, f) != n) { k2c_seterr("%s: write failed: %s", path, strerror(errno)); return -1; }
    return 0;
}

int k2c_st_write(const char *path, int n, const k2c_tensor *tensors, k2c_st_fill_fn fill, void *ctx) {
    json_t *root = json_object(), *meta = json_object();
    char *hdr = NULL, *tmp = NULL;
    void *buf = NULL;
    FILE *f = NULL;
    int rc = -1;
    if (!root || !meta) { k2c_seterr("out of memory"); goto done; }
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", meta);
    meta = NULL;
    size_t off = 0, maxbytes = 0;
    for (int i = 0; i < n; i++) {
        const k2c_tensor *t = &tensors[i];
        json_t *e = json_object(), *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(e, "dtype", json_string(k2c_dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + t->nbytes)));
        json_object_set_new(e, "data_offsets", offs);
        if (json_object_set_new(root, t->name, e) != 0) { k2c_seterr("%s: bad tensor name '%s'", path, t->name); goto done; }
        off += t->nbytes;
        if (t->nbytes > maxbytes) maxbytes = t->nbytes;
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) { k2c_seterr("out of memory"); goto done; }
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;   /* keeps the data 8-byte aligned */
    size_t tl = strlen(path) + 32;
    tmp = malloc(tl);
    if (!tmp) { k2c_seterr("out of memory"); goto done; }
    snprintf(tmp, tl, "%s.tmp.%d", path, (int)getpid());
    f = fopen(tmp, "wb");
    if (!f) { k2c_seterr("%s: %s", tmp, strerror(errno)); goto done; }
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    if (write_all(f, lenbuf, 8, tmp) || write_all(f, hdr, hlen, tmp)) goto done;
    for (size_t i = hlen; i < padded; i++) if (write_all(f, " ", 1, tmp)) goto done;
    for (int i = 0; i < n; i++) {
        const void *src = tensors[i].data;
        if (!src) {
            if (!fill) { k2c_seterr("%s: tensor '%s' has no data", path, tensors[i].name); goto done; }
            if (!buf && !(buf = malloc(maxbytes ? maxbytes : 1))) { k2c_seterr("out of memory (%zu bytes)", maxbytes); goto done; }
            if (fill(ctx, i, buf) != 0) goto done;
            src = buf;
        }
        if (write_all(f, src, tensors[i].nbytes, tmp)) goto done;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) { k2c_seterr("%s: %s", tmp, strerror(errno)); goto done; }
    if (fclose(f) != 0) { f = NULL; k2c_seterr("%s: %s", tmp, strerror(errno)); goto done; }
    f = NULL;
    if (rename(tmp, path) != 0) { k2c_seterr("%s: rename: %s", path, strerror(errno)); goto done; }
    rc = 0;
done:
    if (f) fclose(f);
    if (rc != 0 && tmp) unlink(tmp);
    free(tmp);
    free(buf);
    free(hdr);
    json_decref(meta);
    json_decref(root);
    return rc;
}
