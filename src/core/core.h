/* core — the bottom layer: errors and files (util.c), element types (dtype.c), config.json (config.c) and
 * the safetensors reader (safetensors.c). Internal to libk2c; everything above includes this header.
 * Nothing here knows about weights as matrices (kernels/) or about the model (model/). */
#ifndef K2C_CORE_H
#define K2C_CORE_H

#include "k2c.h"

/* ------------------------------------------------------------------ dtype conversions (dtype.c) */
float k2c_bf16_to_f32(uint16_t h);
uint16_t k2c_f32_to_bf16(float f);                        /* round to nearest even */
float k2c_f16_to_f32(uint16_t h);
uint16_t k2c_f32_to_f16(float f);
float k2c_fp8_to_f32(uint8_t b);                          /* e4m3fn */
uint8_t k2c_f32_to_fp8(float f);                          /* e4m3fn, saturating at 448 */
/* Any scalar element of a tensor as float (F32, F16, BF16, F8_E4M3, F64, integer types). */
float k2c_elem_to_f32(k2c_dtype t, const void *data, size_t i);

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

#endif
