/* core — the bottom layer: errors and files (util.c), element types (dtype.c), config.json (config.c) and
 * the safetensors reader (safetensors.c). Internal to libk2c; everything above includes this header.
 * Nothing here knows about weights as matrices (kernels/) or about the model (model/). */
#ifndef K2C_CORE_H
#define K2C_CORE_H

#include "k2c.h"

#include <string.h>

/* FNV-1a over n bytes, continuing from h (start with 0xcbf29ce484222325): the fingerprints ranks compare */
uint64_t k2c_fnv64(uint64_t h, const void *p, size_t n);
/* The "KEY: N kB" line of a /proc file (/proc/meminfo MemAvailable, /proc/self/status VmHWM) in bytes, 0 if absent */
size_t k2c_proc_kb(const char *file, const char *key);

/* ------------------------------------------------------------------ dtype conversions (dtype.c) */
/* BF16 both ways inline: the prompt GEMM's input packing and the cache writers convert in loops that must
 * compile to vector code, which an out-of-line call per element prevents. */
static inline float k2c_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t k2c_f32_to_bf16(float f) {        /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);                /* round to nearest even */
}
float k2c_f16_to_f32(uint16_t h);
uint16_t k2c_f32_to_f16(float f);
float k2c_fp8_to_f32(uint8_t b);                          /* e4m3fn */
uint8_t k2c_f32_to_fp8(float f);                          /* e4m3fn, saturating at 448 */
/* Any scalar element of a tensor as float (F32, F16, BF16, F8_E4M3, F64, integer types). */
float k2c_elem_to_f32(k2c_dtype t, const void *data, size_t i);

/* ------------------------------------------------------------------ files (util.c) */
/* Brings a whole file into memory: mmap, or a copy into anonymous memory on transparent huge pages
 * (K2C_LOAD_COPY; AUTO copies while the file takes under half of the available memory). A file shorter
 * than min_size (or empty) is an error "PATH: N bytes, too short for a WHAT (truncated?)". munmap to free. */
int k2c_map_file(const char *path, k2c_load_mode mode, size_t min_size, const char *what, void **map, size_t *size);

/* ------------------------------------------------------------------ safetensors reader (safetensors.c) */
typedef struct {
    char *path;
    void *map;
    size_t size;
} k2c_st_file;

typedef struct {
    int nfiles;
    k2c_st_file *files;
    int ntensors;
    k2c_tensor *tensors;    /* sorted by name */
    k2c_load_mode mode;     /* how the files were brought into memory */
} k2c_safetensors;

/* Opens one .safetensors file, or a model folder (model.safetensors, or shards through
 * model.safetensors.index.json). Every header entry is checked: dtype, shape, offsets inside the data
 * area, no overlaps, byte count = numel * dtype size. k2c_st_open uses K2C_LOAD_AUTO. */
int k2c_st_open(k2c_safetensors *st, const char *path);
int k2c_st_open_mode(k2c_safetensors *st, const char *path, k2c_load_mode mode);
/* The same header checks on a whole file image in memory (name: for errors); st does not own image,
 * which must outlive st (tensor data points into it; file is NULL). For fuzzing and tests. */
int k2c_st_parse(k2c_safetensors *st, const char *name, const void *image, size_t size);
void k2c_st_close(k2c_safetensors *st);
const k2c_tensor *k2c_st_find(const k2c_safetensors *st, const char *name);

/* ------------------------------------------------------------------ GGUF reader (gguf.c)
 * GGUF v2/v3, little-endian: "GGUF", version, tensor count, metadata count (u64), metadata key/value pairs,
 * tensor infos (name, dims innermost first, ggml type, offset), padding to general.alignment (32), data.
 * Every count, length, type, dimension and offset is checked before any pointer is formed; errors name the
 * file and the key or tensor. */
enum {                                      /* metadata value types */
    K2C_GGUF_U8, K2C_GGUF_I8, K2C_GGUF_U16, K2C_GGUF_I16, K2C_GGUF_U32, K2C_GGUF_I32, K2C_GGUF_F32,
    K2C_GGUF_BOOL, K2C_GGUF_STRING, K2C_GGUF_ARRAY, K2C_GGUF_U64, K2C_GGUF_I64, K2C_GGUF_F64, K2C_GGUF_NVTYPES
};
/* ggml tensor types (the numbers of the file format) that k2c knows the block layout of */
enum {
    K2C_GGML_F32 = 0, K2C_GGML_F16 = 1, K2C_GGML_Q4_0 = 2, K2C_GGML_Q4_1 = 3, K2C_GGML_Q5_0 = 6, K2C_GGML_Q5_1 = 7,
    K2C_GGML_Q8_0 = 8, K2C_GGML_Q8_1 = 9, K2C_GGML_Q2_K = 10, K2C_GGML_Q3_K = 11, K2C_GGML_Q4_K = 12,
    K2C_GGML_Q5_K = 13, K2C_GGML_Q6_K = 14, K2C_GGML_Q8_K = 15, K2C_GGML_IQ2_XXS = 16, K2C_GGML_IQ2_XS = 17,
    K2C_GGML_IQ3_XXS = 18, K2C_GGML_IQ1_S = 19, K2C_GGML_IQ4_NL = 20, K2C_GGML_IQ3_S = 21, K2C_GGML_IQ2_S = 22,
    K2C_GGML_IQ4_XS = 23, K2C_GGML_I8 = 24, K2C_GGML_I16 = 25, K2C_GGML_I32 = 26, K2C_GGML_I64 = 27,
    K2C_GGML_F64 = 28, K2C_GGML_IQ1_M = 29, K2C_GGML_BF16 = 30, K2C_GGML_TQ1_0 = 34, K2C_GGML_TQ2_0 = 35,
    K2C_GGML_Q6_0 = 133,                    /* ik_llama.cpp's */
    K2C_GGML_NTYPES = K2C_GGML_TYPES
};
/* Elements per block and bytes per block of ggml type t (k2c_ggml_type_name in k2c.h gives its name). */
int k2c_ggml_type_block(int t, int *elems, int *bytes);     /* 0, or -1 for an unknown type */

typedef struct {
    char *key;
    int type;                       /* K2C_GGUF_* */
    int atype;                      /* arrays: element type (never ARRAY) */
    uint64_t n;                     /* arrays: element count */
    union { uint64_t u; int64_t i; double f; } v;   /* integer, bool and float scalars */
    char *str;                      /* STRING: NUL-terminated copy; len bytes (may hold NULs) */
    size_t len;
    const uint8_t *arr;             /* numeric arrays: the little-endian elements inside the file image */
    const char **sv;                /* string arrays: element i is sv[i] (in the image, not NUL-terminated) */
    uint32_t *sl;                   /*   of sl[i] bytes */
} k2c_gguf_kv;

typedef struct {
    char *name;
    int type;                       /* ggml type */
    int ndim;                       /* 1..4 */
    int64_t ne[4];                  /* innermost first: ne[0] is the row length (columns) */
    int64_t numel;
    uint64_t offset;                /* from the start of the data area */
    size_t nbytes;
    const void *data;
    const char *file;
} k2c_gguf_tensor;

typedef struct {
    int nfiles;
    k2c_st_file *files;             /* map NULL for a parsed buffer the caller owns */
    uint32_t version;
    size_t alignment;
    int nkv;
    k2c_gguf_kv *kv;                /* of the first file (later splits hold only split.*) */
    int ntensors;
    k2c_gguf_tensor *tensors;       /* sorted by name */
    k2c_load_mode mode;
} k2c_gguf;

/* What --model names: 1 and *path malloc'd when it is a .gguf file or a folder holding one GGUF model (and no
 * safetensors checkpoint; of a split set the -00001-of- file), 0 when not GGUF, -1 + error (several GGUFs). */
int k2c_gguf_locate(const char *path, char **gguf_path);
/* A .gguf file; a split set (NAME-00001-of-0000N.gguf) is opened from its first file. */
int k2c_gguf_open(k2c_gguf *g, const char *path, k2c_load_mode mode);
/* The same checks on a file image in memory (kept by the caller; tensors point into it). name: for errors. */
int k2c_gguf_parse(k2c_gguf *g, const char *name, const void *data, size_t size);
void k2c_gguf_close(k2c_gguf *g);
const k2c_gguf_tensor *k2c_gguf_find(const k2c_gguf *g, const char *name);
const k2c_gguf_kv *k2c_gguf_get(const k2c_gguf *g, const char *key);
/* Typed lookups: 1 found (converted), 0 absent, -1 present with a type that does not convert (error set). */
int k2c_gguf_int(const k2c_gguf *g, const char *key, int64_t *out);      /* any integer or bool type */
int k2c_gguf_num(const k2c_gguf *g, const char *key, double *out);       /* any integer or float type */
int k2c_gguf_str(const k2c_gguf *g, const char *key, const char **out);
/* The k2c_config of a deepseek2 GGUF (general.architecture = deepseek2, deepseek2.* keys), checked as
 * k2c_config_parse checks a config.json. */
int k2c_gguf_config(const k2c_gguf *g, k2c_config *c);

/* ------------------------------------------------------------------ GGUF writer (gguf_write.c)
 * v3, general.alignment 32. Collect the metadata and tensor infos (offsets follow from shapes and types), then
 * k2c_gguf_w_begin writes the header to PATH.tmp.PID and k2c_gguf_w_data takes the tensors' bytes in the order
 * they were added, in pieces of any size (padding between tensors is the writer's); k2c_gguf_w_finish checks
 * that every byte came, fsyncs and renames. k2c_gguf_w_free of an unfinished writer removes the temporary file.
 * Every call returns 0, or -1 with the error set (duplicate key or tensor, a row not whole blocks, I/O). */
typedef struct k2c_gguf_writer k2c_gguf_writer;
k2c_gguf_writer *k2c_gguf_w_new(void);
int k2c_gguf_w_u32(k2c_gguf_writer *w, const char *key, uint32_t v);
int k2c_gguf_w_i32(k2c_gguf_writer *w, const char *key, int32_t v);
int k2c_gguf_w_f32(k2c_gguf_writer *w, const char *key, float v);
int k2c_gguf_w_bool(k2c_gguf_writer *w, const char *key, int v);
int k2c_gguf_w_str(k2c_gguf_writer *w, const char *key, const char *s);
/* numeric array of n elements of type atype (K2C_GGUF_U8 ... F64), little-endian bytes */
int k2c_gguf_w_array(k2c_gguf_writer *w, const char *key, int atype, uint64_t n, const void *le_elems);
/* string array: sv[i] of sl[i] bytes (sl NULL: NUL-terminated) */
int k2c_gguf_w_str_array(k2c_gguf_writer *w, const char *key, uint64_t n, const char *const *sv, const uint32_t *sl);
int k2c_gguf_w_copy(k2c_gguf_writer *w, const k2c_gguf_kv *kv);      /* a pair read from another GGUF */
int k2c_gguf_w_tensor(k2c_gguf_writer *w, const char *name, int ggml_type, int ndim, const int64_t *ne);
uint64_t k2c_gguf_w_data_bytes(const k2c_gguf_writer *w);            /* the data area, padding included */
int k2c_gguf_w_begin(k2c_gguf_writer *w, const char *path);
int k2c_gguf_w_data(k2c_gguf_writer *w, const void *data, size_t n);
int k2c_gguf_w_finish(k2c_gguf_writer *w);
void k2c_gguf_w_free(k2c_gguf_writer *w);

#endif
