/* Element types of safetensors files and their conversions to and from fp32.
 * FP8 is e4m3fn (the DeepSeek/Kimi weight format): 1 sign, 4 exponent (bias 7), 3 mantissa bits,
 * no infinities, S.1111.111 is NaN, largest finite 448. */
#include "core/core.h"

#include <math.h>
#include <string.h>

static const struct { const char *name; size_t size; } dtypes[K2C_DTYPE_COUNT] = {
    [K2C_F32] = {"F32", 4},  [K2C_F16] = {"F16", 2}, [K2C_BF16] = {"BF16", 2}, [K2C_F8_E4M3] = {"F8_E4M3", 1},
    [K2C_F64] = {"F64", 8},  [K2C_I64] = {"I64", 8}, [K2C_I32] = {"I32", 4},   [K2C_I16] = {"I16", 2},
    [K2C_I8] = {"I8", 1},    [K2C_U8] = {"U8", 1},   [K2C_BOOL] = {"BOOL", 1},
};

size_t k2c_dtype_size(k2c_dtype t) { return t < K2C_DTYPE_COUNT ? dtypes[t].size : 0; }
const char *k2c_dtype_name(k2c_dtype t) { return t < K2C_DTYPE_COUNT ? dtypes[t].name : "?"; }

int k2c_dtype_parse(const char *name, k2c_dtype *out) {
    for (int i = 0; i < K2C_DTYPE_COUNT; i++)
        if (strcmp(name, dtypes[i].name) == 0) { *out = (k2c_dtype)i; return 0; }
    return -1;
}

static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float k2c_f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return bits_f32(s | 0x7f800000u | (m << 13));
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return s ? -v : v;
    }
    return bits_f32(s | ((e + 112) << 23) | (m << 13));
}

uint16_t k2c_f32_to_f16(float f) {
    uint32_t u = f32_bits(f), s = (u >> 16) & 0x8000;
    float a = fabsf(f);
    if (isnan(f)) return (uint16_t)(s | 0x7e00);
    if (a >= 65520.0f) return (uint16_t)(s | 0x7c00);
    if (a < 6.103515625e-05f) return (uint16_t)(s | (uint32_t)lrintf(a * 16777216.0f));  /* subnormal */
    uint32_t e = ((f32_bits(a) >> 23) - 112), m = f32_bits(a) & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(s | h);
}

float k2c_fp8_to_f32(uint8_t b) {
    uint32_t s = b >> 7, e = (b >> 3) & 0xf, m = b & 7;
    float v;
    if (e == 0xf && m == 7) return NAN;
    if (e == 0) v = ldexpf((float)m, -9);
    else v = ldexpf(1.0f + (float)m / 8.0f, (int)e - 7);
    return s ? -v : v;
}

/* Nearest e4m3fn value (ties to even), saturating to +-448 as the FP8 quantizers of the reference do. */
uint8_t k2c_f32_to_fp8(float f) {
    if (isnan(f)) return 0x7f;
    uint8_t sign = signbit(f) ? 0x80 : 0;
    float a = fabsf(f);
    if (a >= 448.0f) return sign | 0x7e;
    /* Search the 127 non-negative finite codes; they are monotonic in value. */
    int lo = 0, hi = 0x7e;
    while (lo < hi) {               /* first code with value >= a */
        int mid = (lo + hi) / 2;
        if (k2c_fp8_to_f32((uint8_t)mid) < a) lo = mid + 1; else hi = mid;
    }
    if (lo > 0) {
        float up = k2c_fp8_to_f32((uint8_t)lo), dn = k2c_fp8_to_f32((uint8_t)(lo - 1));
        if (a - dn < up - a || (a - dn == up - a && ((lo - 1) & 1) == 0)) lo--;
    }
    return sign | (uint8_t)lo;
}

float k2c_elem_to_f32(k2c_dtype t, const void *data, size_t i) {
    switch (t) {
    case K2C_F32: { float v; memcpy(&v, (const char *)data + 4 * i, 4); return v; }
    case K2C_F16: { uint16_t h; memcpy(&h, (const char *)data + 2 * i, 2); return k2c_f16_to_f32(h); }
    case K2C_BF16: { uint16_t h; memcpy(&h, (const char *)data + 2 * i, 2); return k2c_bf16_to_f32(h); }
    case K2C_F8_E4M3: return k2c_fp8_to_f32(((const uint8_t *)data)[i]);
    case K2C_F64: { double v; memcpy(&v, (const char *)data + 8 * i, 8); return (float)v; }
    case K2C_I64: { int64_t v; memcpy(&v, (const char *)data + 8 * i, 8); return (float)v; }
    case K2C_I32: { int32_t v; memcpy(&v, (const char *)data + 4 * i, 4); return (float)v; }
    case K2C_I16: { int16_t v; memcpy(&v, (const char *)data + 2 * i, 2); return (float)v; }
    case K2C_I8: return (float)((const int8_t *)data)[i];
    case K2C_U8: case K2C_BOOL: return (float)((const uint8_t *)data)[i];
    default: return NAN;
    }
}
