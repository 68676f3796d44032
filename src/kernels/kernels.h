/* kernels — weights in the format they were published in, and the kernels that read them.
 *
 * A k2c_linear is a weight matrix as stored (F32, BF16, F16, FP8 e4m3 with 128x128 block scales, INT4
 * groups with BF16 scales) plus the kernel context it runs under. linear.c drives the work (matvec for
 * decode, matmul for prompts, threads); the arithmetic lives in one file per ISA behind one table:
 *   kern_scalar.c   portable C, any CPU
 *   kern_avx2.c     AVX2 + FMA + F16C
 *   kern_avx512.c   AVX-512 F/BW/DQ/VL (+ AVX512-BF16 and AMX-BF16 prompt products)
 *   kern_neon.c     AArch64 Advanced SIMD
 * chosen once per model at load (k2c_model_opts.simd, or the best the CPU has). vecmath.c holds the
 * element-wise row kernels (exp, softmax, SiLU, RMSNorm, AdamW) as GCC target clones.
 * Internal to libk2c. */
#ifndef K2C_KERNELS_H
#define K2C_KERNELS_H

#include "core/core.h"

/* ------------------------------------------------------------------ the kernel table and its context */
typedef enum {
    K2C_FMT_F32, K2C_FMT_BF16, K2C_FMT_F16, K2C_FMT_FP8, K2C_FMT_INT4,
    /* GGUF block formats (quant_scalar.c): each row is cols / block-size blocks of the ggml layout */
    K2C_FMT_Q4_0, K2C_FMT_Q4_1, K2C_FMT_Q5_0, K2C_FMT_Q5_1, K2C_FMT_Q8_0, K2C_FMT_Q2_K, K2C_FMT_Q3_K,
    K2C_FMT_Q4_K, K2C_FMT_Q5_K, K2C_FMT_Q6_K, K2C_FMT_IQ4_NL, K2C_FMT_IQ4_XS, K2C_FMT_Q6_0,
    /* the codebook types of the low-bit "IQ" files (grids in iq_grids.h) */
    K2C_FMT_IQ2_XXS, K2C_FMT_IQ2_XS, K2C_FMT_IQ2_S, K2C_FMT_IQ3_XXS, K2C_FMT_IQ3_S, K2C_FMT_IQ1_S, K2C_FMT_IQ1_M,
    K2C_FMT_COUNT
} k2c_wfmt;
typedef struct k2c_linear k2c_linear;

/* Activations quantized for the GGUF decode fast path (as ggml's Q8 activations): per 32 elements (span 256:
 * per 256, as ggml's Q8_K) an int8 block q with one scale, x ~ dx * q. Kept per 16 elements, the granule of the
 * K-quants' scales: d16[g] = dx of g's block, s16[g] = dx * (sum of q over the 16), which the formats with a
 * min need. Every kernel takes either span; some have a faster road for 256 (the table's q8x_span). */
typedef struct {
    const int8_t *q;                /* [n] */
    const float *d16, *s16;         /* [n / 16] */
    int span;                       /* 32 or 256: the elements one dx covers */
} k2c_q8x;
size_t k2c_q8x_bytes(int n);        /* one buffer holding the struct and its arrays (n a multiple of 32) */
/* x [n] quantized into buf (k2c_q8x_bytes(n), 64-byte aligned); returns the struct at its start. span 256
 * where n is a multiple of 256, else 32. */
const k2c_q8x *k2c_q8x_quantize_span(const float *x, int n, int span, void *buf);
const k2c_q8x *k2c_q8x_quantize(const float *x, int n, void *buf);      /* span 32 */
/* x's codes (n a multiple of 32) reordered in place for an INT4 kernel with int4_q8_eo: per 64 elements the even
 * codes of its two blocks of 32, then their odd codes; a last 32 as its 16 even then 16 odd codes. d16 and s16
 * stay (per block sums do not depend on the order). */
void k2c_q8x_even_odd(const k2c_q8x *x, int n);

/* Prompt GEMM on the GGUF block formats with int8 activations (quant_gemm.h, qgemm.c). X [T, C] is quantized
 * once per matmul as k2c_q8x does at span 32 (per 32 elements dx = max|x| / 127, q = round(x / dx)) and packed for the
 * micro-kernels in blocks of 16 tokens: per block, per 4 columns (a "k-step") the 16 tokens' 4 bytes side by
 * side, q [nblk][C/4][16][4]; per scale group of sg columns (16 or 32, the weight format's granule) and token
 * the scale d = dx and s = dx * (sum of q over the group), d, s [nblk][C/sg][16]. Padding tokens are zero.
 * span: the columns one dx covers, 32 as k2c_q8x, or 256 for Q2_K (k2c_q8p_span), as ggml's Q8_K: with the
 * weights' 16 sub-scales folded in (quant_gemm.h), a super-block's products then need one float step, not 8 */
#define K2C_Q8P_TB 16
typedef struct {
    const int8_t *q;
    const float *d, *s;
    int T, C, sg, span, nblk;
} k2c_q8p;
/* sg of a weight for the int8 prompt GEMM (16 or 32), 0 where it has none (not a block format or INT4 with
 * groups a multiple of 32, or columns that are not whole 32s) */
int k2c_q8p_group(const k2c_linear *l);
size_t k2c_q8p_bytes(int T, int C, int sg);             /* the arrays, 64-byte aligned parts */
/* Lays out p over buf (k2c_q8p_bytes) without filling it; then k2c_q8p_fill(X, p, b) quantizes token block b
 * (blocks are independent: callers run them in parallel). */
void k2c_q8p_init(k2c_q8p *p, int T, int C, int sg, int span, void *buf);
/* the span of l's activations (32 or 256; see k2c_q8p) */
int k2c_q8p_span(const k2c_linear *l);
void k2c_q8p_fill(const float *X, const k2c_q8p *p, int b);
/* Per-thread scratch of a k2c_kernels.gemm_q8 tile of nr rows: the unpacked int8 weights and their scales */
size_t k2c_q8w_bytes(int nr, int C, int sg);
/* What a quad's scales say to the micro-kernels (their flags argument): QG_MIN, M is not all zero; QG_PAIR,
 * the two 16-column groups of each 32 share F (Q2_K with its integer sub-scales folded into the weights), so a
 * kernel may sum both in integers and scale once per 32 columns (one that does not stays exact) */
/* QG_SB: F and the activations' d constant over 256 columns; QG_UNS: the weights are unsigned bytes of at most
 * 64 (quant_gemm.h's QG_OFF), so vpmaddubsw's int16 pair sums of two k-steps add without overflow; QG_UNS4:
 * at most 31, four k-steps */
enum { QG_MIN = 1, QG_PAIR = 2, QG_SB = 4, QG_UNS = 8, QG_UNS4 = 16 };

/* Prompt GEMM blocking shared by every ISA: inputs packed in blocks of K2C_GEMM_TB tokens, micro-kernels of
 * K2C_GEMM_RB weight rows. */
#define K2C_GEMM_TB 32
#define K2C_GEMM_RB 8

typedef struct {
    const char *name;                       /* "scalar", "avx2", "avx512", "neon" */
    /* Decode: the dot of one stored row with x, per format. Any of them may be NULL: the portable kernel then
     * runs that format (and every GGUF block format), so a table holds only what its ISA does better. */
    float (*dot_f32)(const float *w, const float *x, int n);           /* never NULL (prompts use it too) */
    float (*dot_bf16)(const uint16_t *w, const float *x, int n);
    /* A BF16 row (n a multiple of 32) against xs, reordered as for dot_int4; NULL: dot_bf16 on x */
    float (*dot_bf16_xs)(const uint16_t *w, const float *xs, int n);
    float (*dot_f16)(const uint16_t *w, const float *x, int n);
    float (*dot_fp8)(const uint8_t *w, const float *x, int n, const float *scale, int block);
    /* INT4 groups (a multiple of 32) against xs: x reordered per 32 elements into the 16 even then the 16 odd
     * ones (the driver does it once per matvec) */
    float (*dot_int4)(const uint32_t *w, const float *xs, int n, const uint16_t *scale, int group);
    /* A GGUF block-format row (cols a multiple of 32) against quantized activations: integer products per
     * 16 elements, scaled in float (quant_dot.h, shared by every ISA; only the int8 product differs). */
    float (*dot_q8)(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n);
    /* dot_q8 of nr consecutive rows (rb bytes apart from row0) into y [nr], the same values; rows up to avail
     * past row0 exist, and the ones ahead are prefetched pf bytes ahead (pf 0: none). */
    void (*dot_q8_rows)(k2c_wfmt f, const uint8_t *row0, size_t rb, int nr, int avail, const k2c_q8x *x, int n,
                        float *y, size_t pf);
    /* An INT4 row (groups a multiple of 32) against quantized activations, as dot_q8 (int4_q8.h): used unless
     * exact. ext: the ISA's optional instructions (VNNI, dotprod) where the CPU has them (k2c_kctx.no_ext). */
    float (*dot_int4_q8)(const uint32_t *w, const k2c_q8x *x, int n, const uint16_t *scale, int group, int ext);
    /* nonzero: dot_int4_q8 takes x's codes reordered even / odd (k2c_q8x_even_odd), as the matvec prepares them */
    int int4_q8_eo;
    /* the span (32 or 256) of the activations a decode on format f should quantize for dot_q8 (NULL: 32) */
    int (*q8x_span)(k2c_wfmt f);
    /* Prompts: one stored row to fp32, per format (NULL: the portable kernel). */
    void (*cvt_bf16)(const uint16_t *w, int n, float *out);
    void (*cvt_f16)(const uint16_t *w, int n, float *out);
    void (*cvt_fp8)(const uint8_t *w, int n, const float *scale, int block, float *out);
    void (*cvt_q8_0)(const uint8_t *row, int n, float *out);      /* a Q8_0 row of n (a multiple of 32) */
    /* Y[:, 0..nr) (row stride ldy) = packed X (k2c_gemm_pack_x) times fp32 rows w [nr, C]; panel: scratch
     * of K2C_GEMM_RB * C floats. NULL: the driver runs OpenBLAS sgemm on dequantized tiles instead. */
    void (*gemm_tile)(const float *w, int nr, int C, const float *Xp, int T, float *Y, int ldy, float *panel);
    /* The same on BF16 rows (ldw elements apart) with BF16-rounded inputs (k2c_gemm_pack_x_bf16) and fp32
     * sums; panel: K2C_GEMM_RB * ceil(C/2) words. NULL where not compiled; used only where the CPU has it. */
    void (*gemm_tile_bf16)(const uint16_t *w, size_t ldw, int nr, int C, const uint32_t *Xp, int T, float *Y,
                           int ldy, uint32_t *panel);
    /* gemm_tile_bf16 on AMX tiles (C a multiple of 32; panel: 16 * C words); used only where the CPU and OS allow
     * AMX (k2c_kctx.amx) */
    void (*gemm_tile_bf16_amx)(const uint16_t *w, size_t ldw, int nr, int C, const uint32_t *Xp, int T, float *Y,
                               int ldy, uint32_t *panel);
    /* Y[:, 0..nr) (row stride ldy) = rows r0 .. r0+nr-1 of a block-format weight (k2c_q8p_group > 0) times the
     * packed int8 activations x: the exact products of the stored weights with the dequantized activations,
     * up to float rounding. scratch: k2c_q8w_bytes(nr, C, x->sg), 64-byte aligned. NULL: not compiled. */
    void (*gemm_q8)(const k2c_linear *l, int r0, int nr, const k2c_q8p *x, float *Y, int ldy, void *scratch);
    /* nonzero where the fp32 tile (gemm_tile on dequantized rows, exact) beats gemm_q8 on format f at T tokens
     * (ext as dot_int4_q8's); NULL: never */
    int (*q8_prefer_tile)(k2c_wfmt f, int T, int ext);
    /* dot_q8 without the ISA's optional instructions (VNNI) even where the CPU has them, so that tests check
     * both paths on one machine; NULL: dot_q8 has none. */
    float (*dot_q8_base)(k2c_wfmt f, const uint8_t *row, const k2c_q8x *x, int n);
} k2c_kernels;

extern const k2c_kernels k2c_kernels_scalar;
#if defined(__x86_64__)
extern const k2c_kernels k2c_kernels_avx2;
extern const k2c_kernels k2c_kernels_avx512;
#elif defined(__aarch64__)
extern const k2c_kernels k2c_kernels_neon;
#endif
extern float k2c_fp8_lut[256];
extern int k2c_pf_bf16;                     /* prefetch distance of dot_bf16_xs (linear.c), set before main */
extern int k2c_pf_block;                    /* the same for the GGUF block formats' decode rows (linear.c) */
extern const int8_t k2c_iq4_nl[16];         /* IQ4_NL / IQ4_XS: the 16 non-linear levels */
/* IQ1/IQ2/IQ3 codebooks (iq_grids.h): entry i holds 8 (or 4) values in its bytes, little-endian */
extern const uint8_t k2c_iq_ksigns[128];
extern const uint64_t k2c_iq2xxs_grid[256], k2c_iq2xs_grid[512], k2c_iq2s_grid[1024], k2c_iq1s_grid[2048];
extern const uint32_t k2c_iq3xxs_grid[256], k2c_iq3s_grid[512];              /* e4m3 byte -> float, filled before main */
/* Row r of W times x and row r of W to fp32, through table k with the portable kernels for what it lacks: the
 * one switch over formats. xp: x as the format's fast kernel wants it, or NULL (fp32 x only): for INT4 the
 * reordered floats of dot_int4 (and dot_bf16_xs), for the GGUF block formats a k2c_q8x. */
float k2c_row_dot(const k2c_kernels *k, const k2c_linear *l, int r, const float *x, const void *xp);
void k2c_row_dequant(const k2c_kernels *k, const k2c_linear *l, int r, float *out);
/* The portable kernels on every format (kern_scalar.c): the fallback of every table. */
float k2c_scalar_row_dot(const k2c_linear *l, int r, const float *x);
void k2c_scalar_row_dequant(const k2c_linear *l, int r, float *out);

/* What the kernels run under: one per model (no process-wide setting), read-only while it runs. */
typedef struct k2c_kctx {
    const k2c_kernels *k;
    int nthreads;                           /* > 0: the work of every parallel region is split for this many */
    int team;                               /* 1..nthreads: the threads a parallel region starts. The model's
                                             * thread tuner (model/tune.c) lowers it while another process
                                             * holds cores; as work is split by nthreads, the results do not
                                             * depend on it */
    int bf16_prompt;                        /* BF16 x BF16 prompt GEMM (the CPU has AVX512-BF16) */
    int amx;                                /* ... on AMX tiles (the CPU has AMX-BF16, the OS granted the
                                             * tile state, and bf16_prompt was 1, not 2) */
    int exact;                              /* fp32 activations everywhere (no k2c_q8x decode path) */
    int no_ext;                             /* the int8 prompt kernels without the ISA's optional instructions
                                             * (VNNI, dotprod) even where the CPU has them: tests check both */
    /* Sees the inputs of every product before it runs (k2c imatrix collects activation statistics with it):
     * X [T, l->cols]. Called from the thread that calls the product, never from inside its parallel loop.
     * NULL: none (the default; one pointer test per product). */
    void (*observe)(void *ctx, const k2c_linear *l, const float *X, int T);
    void *observe_ctx;
} k2c_kctx;
/* simd: NULL / "auto" (best), "scalar", "avx2", "avx512", "neon"; threads 0: OMP_NUM_THREADS or every core. -1 + error (unknown name, or an
 * ISA this CPU lacks, or bf16_prompt without AVX512-BF16). bf16_prompt: 0 fp32 inputs, 1 BF16 products on AMX
 * where present, 2 BF16 products on AVX512-BF16 only. */
int k2c_kctx_init(k2c_kctx *cx, const char *simd, int threads, int bf16_prompt);
const k2c_kctx *k2c_kctx_default(void);     /* best kernels, every core: for a k2c_linear without a context */
int k2c_cpu_has_avx2(void);                  /* AVX2 + FMA + F16C */
int k2c_cpu_has_avx512(void);
int k2c_cpu_has_avx512bf16(void);
int k2c_cpu_has_avxvnni(void);               /* AVX-VNNI (VEX vpdpbusd) */
/* AMX-TILE + AMX-BF16, with the tile data state granted to this process (asked for once, arch_prctl) */
int k2c_cpu_has_amx_bf16(void);

/* ------------------------------------------------------------------ linear (weights in stored format) */
struct k2c_linear {
    k2c_wfmt fmt;
    int rows, cols;                 /* [out, in] */
    const void *w;                  /* F32/BF16/F16: [rows, cols]; FP8: u8 [rows, cols]; INT4: i32 [rows, cols/8];
                                     * block formats: rows of k2c_wfmt_row_bytes(fmt, cols) bytes, unaligned */
    const float *scale_f32;         /* FP8: weight_scale_inv [ceil(rows/B), ceil(cols/B)] */
    const uint16_t *scale_bf16;     /* INT4: weight_scale BF16 [rows, cols/G] */
    int block;                      /* FP8 block size (128) or INT4 group size (32) */
    int scale_cols;                 /* columns of the scale matrix */
    const k2c_kctx *cx;             /* kernels + threads; NULL: k2c_kctx_default() */
};

/* ------------------------------------------------------------------ GGUF block formats (quant_scalar.c) */
/* The weight format of ggml type t (F32, F16, BF16 and the block formats above); -1 if k2c has no kernel. */
int k2c_wfmt_from_ggml(int ggml_type, k2c_wfmt *out);
const char *k2c_wfmt_name(k2c_wfmt f);
int k2c_wfmt_is_block(k2c_wfmt f);                      /* a GGUF block format */
int k2c_wfmt_block_elems(k2c_wfmt f);                   /* elements per block (1 for F32/F16/BF16/FP8/INT4) */
size_t k2c_wfmt_row_bytes(k2c_wfmt f, int cols);        /* bytes of one row of a block format */
/* Row r of a block-format matrix: dequantized to fp32, and dotted with x (fp32 activations). The reference
 * the SIMD tables fall back to. */
void k2c_quant_dequant_row(const k2c_linear *l, int r, float *out);
float k2c_quant_dot_row(const k2c_linear *l, int r, const float *x);
/* One block of format f (elements k2c_wfmt_block_elems(f)) to fp32. */
void k2c_quant_dequant_block(k2c_wfmt f, const uint8_t *block, float *out);
/* Quantizer (quantize.c): x [n] (a whole number of blocks) to format f (a block format, or F32/F16/BF16) at out
 * (k2c_wfmt_row_bytes(f, n) bytes). w: per-element importance [n] (an imatrix) for the error each block's scale
 * search minimizes, or NULL (plain squared error). -1 + error when n is not a multiple of the block. Pure: no
 * state, safe to call from many threads at once. */
int k2c_quantize_row(k2c_wfmt f, const float *x, const float *w, int n, uint8_t *out);

/* ------------------------------------------------------------------ scratch workspace
 * One caller-owned buffer (64-byte aligned) handed out stack-like in 64-byte pieces: a caller saves `used`,
 * takes, and restores `used` when done, so a forward pass runs without allocating (the state owns one,
 * sized once). Not thread-safe: pieces are taken outside parallel regions, per-thread parts carved from one. */
typedef struct { char *base; size_t cap, used; } k2c_ws;
#define K2C_WS_ALIGN 64
static inline size_t k2c_ws_bytes(size_t b) { return (b + K2C_WS_ALIGN - 1) & ~(size_t)(K2C_WS_ALIGN - 1); }
/* bytes rounded to the alignment, or NULL when the workspace is too small (no error set; callers say what). */
void *k2c_ws_take(k2c_ws *w, size_t bytes);

size_t k2c_linear_bytes(const k2c_linear *l);           /* bytes read per full pass over the weights */
/* out [nrows, cols] = rows r0 .. r0+nrows-1 dequantized to fp32 (reference path, any CPU) */
void k2c_linear_dequant_rows(const k2c_linear *l, int r0, int nrows, float *out);
/* y [rows] = W x [cols]; multi-threaded over rows. */
void k2c_matvec(const k2c_linear *l, const float *x, float *y);
/* Several independent matvecs in one parallel loop (one fork/join for all), under jobs[0]'s context. */
#define K2C_MATVEC_BATCH_MAX 160
typedef struct { const k2c_linear *l; const float *x; float *y; } k2c_matvec_job;
void k2c_matvec_batch(const k2c_matvec_job *jobs, int n);
/* The same with the INT4 input shuffles from ws (NULL: malloc); ws too small: the unshuffled path (same result).
 * Bytes it takes: at most n * k2c_ws_bytes(4 * cols) over its jobs. */
void k2c_matvec_batch_ws(const k2c_matvec_job *jobs, int n, k2c_ws *ws);
void k2c_matvec_ws(const k2c_linear *l, const float *x, float *y, k2c_ws *ws);
/* Y [T, rows] = X [T, cols] W^T. Small T: matvec per row; large T: dequantized tiles + GEMM. -1 + error
 * when scratch memory cannot be had. */
int k2c_matmul(const k2c_linear *l, const float *X, int T, float *Y);
/* The same, never with BF16-rounded inputs: for the router, whose top-k choice a rounding can flip. */
int k2c_matmul_fp32(const k2c_linear *l, const float *X, int T, float *Y);
/* Both with their scratch (packed inputs, per-thread tiles) from ws; NULL: one malloc per call. -1 + error when
 * ws is too small. k2c_matmul_ws_bytes: the most either takes for any T' <= T (per-thread parts for the
 * context's thread count). */
int k2c_matmul_ws(const k2c_linear *l, const float *X, int T, float *Y, k2c_ws *ws);
/* Ya = X a^T and Yb = X b^T (an expert's gate and up): one quantization of X and one parallel loop on the int8
 * path, else the two products in turn; the workspace of the larger k2c_matmul_ws_bytes of the two */
int k2c_matmul2_ws(const k2c_linear *a, const k2c_linear *b, const float *X, int T, float *Ya, float *Yb, k2c_ws *ws);
int k2c_matmul_fp32_ws(const k2c_linear *l, const float *X, int T, float *Y, k2c_ws *ws);
size_t k2c_matmul_ws_bytes(const k2c_linear *l, int T);
/* y [cols] = W^T x [rows] over rows r0 .. r0+nrows-1 of W (x has nrows entries); single-threaded;
 * row: scratch of cols floats. */
void k2c_matvec_t_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y, float *row);
/* out [nrows, cols] = rows r0 .. r0+nrows-1 as fp32 through the context's kernels; single-threaded. */
void k2c_linear_rows_f32(const k2c_linear *l, int r0, int nrows, float *out);
/* y [nrows] = rows r0 .. r0+nrows-1 of W times x [cols]; single-threaded (callers parallelize). */
void k2c_matvec_rows(const k2c_linear *l, int r0, int nrows, const float *x, float *y);
/* The same with the prepared input (int8 or shuffled x) in scratch of k2c_matvec_rows_scratch(l) bytes (0: none
 * needed, scratch may be NULL), 64-byte aligned: no allocation. */
size_t k2c_matvec_rows_scratch(const k2c_linear *l);
void k2c_matvec_rows_s(const k2c_linear *l, int r0, int nrows, const float *x, float *y, void *scratch);
/* Prompt GEMM inputs: X [T, C] packed into blocks of 32 tokens [ceil(T/32)][C][32], zero padded. */
size_t k2c_gemm_packed_size(int T, int C);
void k2c_gemm_pack_x(const float *X, int T, int C, float *Xp);
/* BF16 pairs [ceil(T/32)][ceil(C/2)][32] (two BF16-rounded columns per word), zero padded. */
size_t k2c_gemm_bf16_packed_size(int T, int C);
void k2c_gemm_pack_x_bf16(const float *X, int T, int C, uint32_t *Xp);

/* A function compiled for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and the baseline, the loader picking the one the
 * CPU runs (GCC target_clones, an ifunc): for plain C loops outside the per-ISA kernel files that must become
 * vector code (vecmath.c, the int8 GEMM's activation packing, the cache's row converters). */
#if defined(__x86_64__) && defined(__linux__) && !defined(K2C_NO_CLONES)
#define K2C_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define K2C_CLONES
#endif

/* max |x| over 32 floats, NaN ignored (as `a > amax ? a : amax` does), and the rounding below, in GCC vector
 * types of 8 lanes (one AVX2 register, half an AVX-512 one, two SSE2 ones): the float loops stayed a scalar vmaxss
 * chain at -O2 (two fifths of the activation quantization), and 16-lane forms with unsigned compares, which x86
 * has only from AVX-512 on, became scalar code in the AVX2 clone (13.6 us per 2048 elements on AMD Zen 2). */
typedef float k2c_f32x8 __attribute__((vector_size(32)));
typedef int32_t k2c_i32x8 __attribute__((vector_size(32)));
typedef int8_t k2c_i8x8 __attribute__((vector_size(8)));
typedef int8_t k2c_i8x32 __attribute__((vector_size(32)));
/* lanes rotated by n (0 < n < 8), for horizontal reductions as shuffle trees (a lane at a time was 8 extracts) */
#if defined(__clang__)
#define K2C_ROT8(v, n) __builtin_shufflevector(v, v, ((n) + 0) % 8, ((n) + 1) % 8, ((n) + 2) % 8, ((n) + 3) % 8,      \
                                               ((n) + 4) % 8, ((n) + 5) % 8, ((n) + 6) % 8, ((n) + 7) % 8)
#else
#define K2C_ROT8(v, n) __builtin_shuffle(v, (k2c_i32x8){((n) + 0) % 8, ((n) + 1) % 8, ((n) + 2) % 8, ((n) + 3) % 8,   \
                                                        ((n) + 4) % 8, ((n) + 5) % 8, ((n) + 6) % 8, ((n) + 7) % 8})
#endif
/* m = where a > m: a, else m (lane-wise; false for a NaN a, so a NaN lane never wins) */
#define K2C_FMAX8(m, a)                                                                                          \
    do {                                                                                                       \
        k2c_f32x8 a_ = (a);                                                                                    \
        k2c_i32x8 gt_ = (k2c_i32x8)(a_ > (m));                                                                 \
        (m) = (k2c_f32x8)(((k2c_i32x8)a_ & gt_) | ((k2c_i32x8)(m) & ~gt_));                                    \
    } while (0)
static inline __attribute__((always_inline)) float k2c_amax32(const float *x) {
    k2c_f32x8 v0, v1, v2, v3, z = {0};
    memcpy(&v0, x, sizeof v0);
    memcpy(&v1, x + 8, sizeof v1);
    memcpy(&v2, x + 16, sizeof v2);
    memcpy(&v3, x + 24, sizeof v3);
    v0 = (k2c_f32x8)((k2c_i32x8)v0 & 0x7fffffff);
    v1 = (k2c_f32x8)((k2c_i32x8)v1 & 0x7fffffff);
    v2 = (k2c_f32x8)((k2c_i32x8)v2 & 0x7fffffff);
    v3 = (k2c_f32x8)((k2c_i32x8)v3 & 0x7fffffff);
    k2c_f32x8 z1 = z;           /* two chains from 0 (a NaN never lands in m, so none is carried) */
    K2C_FMAX8(z, v0);
    K2C_FMAX8(z1, v2);
    K2C_FMAX8(z, v1);
    K2C_FMAX8(z1, v3);
    K2C_FMAX8(z, z1);
    K2C_FMAX8(z, K2C_ROT8(z, 4));
    K2C_FMAX8(z, K2C_ROT8(z, 2));
    K2C_FMAX8(z, K2C_ROT8(z, 1));
    return z[0];
}

/* q[k] = round(x[k] id) within +-127 (ties to even, NaN -> -127, as lrintf clamped) for 32 elements, and the
 * sums of each half, in vector types (the scalar loop was the rest of the activation quantization):
 * (y + 1.5 x 2^23) - 1.5 x 2^23 is lrintf(y) for |y| < 2^22, the product its own statement so no compiler fuses
 * it into the add (lrintf rounds the product first) */
static inline __attribute__((always_inline)) void k2c_q8_round32(const float *x, float id, int8_t *q, int sum[2]) {
    const k2c_f32x8 lo = (k2c_f32x8){0} - 127.0f, hi = (k2c_f32x8){0} + 127.0f;
    for (int h = 0; h < 2; h++) {
        k2c_i32x8 acc = {0};
        for (int k = 0; k < 2; k++) {
            k2c_f32x8 v;
            memcpy(&v, x + 16 * h + 8 * k, sizeof v);
            k2c_f32x8 p = v * id;
            k2c_f32x8 y = (p + 12582912.0f) - 12582912.0f;
            k2c_i32x8 m = (k2c_i32x8)(y > -127.0f);                /* false for NaN */
            y = (k2c_f32x8)(((k2c_i32x8)y & m) | ((k2c_i32x8)lo & ~m));
            m = (k2c_i32x8)(y < 127.0f);
            y = (k2c_f32x8)(((k2c_i32x8)y & m) | ((k2c_i32x8)hi & ~m));
            k2c_i32x8 iv = __builtin_convertvector(y, k2c_i32x8);
            /* the low byte of each lane (little-endian; |iv| <= 127): a byte shuffle, where convertvector's
             * narrowing was 8 extracts and inserts */
            k2c_i8x8 q8 = __builtin_shufflevector((k2c_i8x32)iv, (k2c_i8x32)iv, 0, 4, 8, 12, 16, 20, 24, 28);
            memcpy(q + 16 * h + 8 * k, &q8, sizeof q8);
            acc += iv;
        }
        acc += K2C_ROT8(acc, 4);
        acc += K2C_ROT8(acc, 2);
        acc += K2C_ROT8(acc, 1);
        sum[h] = acc[0];
    }
}

/* ------------------------------------------------------------------ vecmath.c: element-wise row kernels
 * Each is compiled three times (x86-64-v4 = AVX-512, v3 = AVX2+FMA, and the baseline) and the loader picks
 * the one the CPU runs (GCC target_clones, an ifunc). Within a build and CPU the arithmetic order is fixed,
 * so results are bit-reproducible; they are not bit-identical across CPUs of different levels. */
/* exp(x) for float, to about 2 ulp; x is clamped to [-87, 88] (no infinities, no subnormal results) */
float k2c_vexpf(float x);
/* largest of x[0..n) (n >= 1) */
float k2c_vmax(const float *x, int n);
/* x[i] = exp(x[i] - shift); returns the sum of the new x (float lanes, then in order) */
float k2c_vexp_sum(float *x, int n, float shift);
/* sum of a[i] * b[i] (16 lanes, then in order) */
float k2c_vdot(const float *a, const float *b, int n);
/* y[i] += a * x[i] */
void k2c_vaxpy(float *y, float a, const float *x, int n);
/* Attention's small products (dot products of 16 lanes, then in order; a row's result does not depend on the
 * rows computed with it). S [na, nb] (row stride lds) = alpha * A B^T, plus the old S when accumulate:
 * A [na, n] (stride lda), B [nb, n] (stride ldb). */
void k2c_vgemm_nt(float *S, int lds, const float *A, int lda, int na, const float *B, int ldb, int nb, int n,
                  float alpha, int accumulate);
/* C [m, n] (stride ldc) += P [m, kdim] (stride ldp) B [kdim, n] (stride ldb) */
void k2c_vgemm_acc(float *C, int ldc, const float *P, int ldp, int m, const float *B, int ldb, int kdim, int n);
/* k2c_vgemm_nt / k2c_vgemm_acc's blocking: -1 (default) by the CPU's vector registers, 0 the 16-register one,
 * 1 the wide one (the results are the same bits; tests compare them) */
extern int k2c_vgemm_wide;
/* y[i] = a * x[i] */
void k2c_vscaled(float *y, float a, const float *x, int n);
/* RMSNorm weight gradient over a block of cn columns: acc[k] += sum_t dy[t][k] * x[t][k] * rstd[t], rows
 * in order, in double */
void k2c_vrms_dw(double *acc, const float *dy, int dys, const float *x, int xs, const float *rstd, int N, int cn);
/* x[i] *= s */
void k2c_vscale(float *x, int n, float s);
/* h = silu(g) * u = g / (1 + e^-g) * u */
void k2c_vsilu_mul(float *h, const float *g, const float *u, size_t n);
/* from dh (the gradient at h): du = dh * silu(g), dg = dh * u * silu'(g). dg may be dh. */
void k2c_vsilu_mul_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
/* AdamW on n elements: m, v moments; ic1 = 1 / (1 - b1^t), ic2 = 1 / (1 - b2^t); decay = 1 - lr * wd */
void k2c_vadamw(float *w, float *m, float *v, const float *g, size_t n, float b1, float b2, float ic1, float ic2,
                float lr, float decay, float eps);
/* Muon's Nesterov momentum: m = mu m + g; u = g + mu m */
void k2c_vnesterov(float *m, float *u, const float *g, float mu, size_t n);
/* w = w * decay - step * u (a decoupled-weight-decay update) */
void k2c_vdecay_step(float *w, float decay, float step, const float *u, size_t n);
/* RMSNorm of one row: y = w * x * rstd with rstd = 1 / sqrt(mean(x^2) + eps) (sum of squares in double);
 * returns rstd */
float k2c_vrms_row(float *y, const float *x, const float *w, int n, float eps);
/* the row part of the RMSNorm backward: dx = r * (dy * w - x * r * mean(dy * w * x * r)); acc: dx += */
void k2c_vrms_row_bwd(float *dx, const float *dy, const float *x, const float *w, float r, int n, int acc);

#endif
