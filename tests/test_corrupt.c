/* Corrupt and hostile checkpoints: each must give an error naming the file and the tensor or field,
 * never a crash or a read outside the file (the sanitizer build runs this too). */
#include "model/model.h"
#include "check.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMPDIR "build/tests/corrupt"

static void write_raw(const char *path, const char *header, uint64_t hlen_field, size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(hlen_field >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

/* Opens a crafted file and expects failure with every `want` substring in the message. */
static void expect_open_fails(const char *header, uint64_t hlen, size_t data, const char *want1, const char *want2) {
    const char *path = TMPDIR "/x.safetensors";
    write_raw(path, header, hlen, data);
    k2c_safetensors st;
    int rc = k2c_st_open(&st, path);
    EXPECT(rc != 0, "accepted: %s", header);
    if (rc == 0) { k2c_st_close(&st); return; }
    EXPECT(strstr(k2c_errmsg(), path), "message lacks the file: %s", k2c_errmsg());
    EXPECT(!want1 || strstr(k2c_errmsg(), want1), "message lacks '%s': %s", want1, k2c_errmsg());
    EXPECT(!want2 || strstr(k2c_errmsg(), want2), "message lacks '%s': %s", want2, k2c_errmsg());
}

#define H(s) s, strlen(s)

static void truncated_file(void) {
    size_t n;
    char *buf = k2c_read_file("tests/data/golden/k2-tiny-f32/model.safetensors", &n);
    EXPECT(buf != NULL, "%s", k2c_errmsg());
    if (!buf) return;
    const char *path = TMPDIR "/trunc.safetensors";
    size_t cuts[] = {0, 5, 8, 100, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, cuts[i], f);
        fclose(f);
        k2c_safetensors st;
        int rc = k2c_st_open(&st, path);
        EXPECT(rc != 0 && strstr(k2c_errmsg(), path), "cut at %zu: rc %d: %s", cuts[i], rc, k2c_errmsg());
        if (rc == 0) k2c_st_close(&st);
    }
    free(buf);
}

static void hostile_headers(void) {
    expect_open_fails("{}", 1u << 30, 0, "header length", NULL);
    expect_open_fails("{}", UINT64_MAX, 0, "header length", NULL);
    expect_open_fails(H("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]"), 8, NULL, NULL);
    expect_open_fails(H("[1, 2]"), 0, "JSON object", NULL);
    expect_open_fails(H("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}"), 8, "'w'", "past the end");
    expect_open_fails(H("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 4]}}"), 16, "'w'", "begin <= end");
    expect_open_fails(H("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 16]}}"), 16, "'w'", "mismatch");
    expect_open_fails(H("{\"w\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [0, 16]}}"), 16, "'w'", "mismatch");
    expect_open_fails(H("{\"w\": {\"dtype\": \"F31\", \"shape\": [4], \"data_offsets\": [0, 16]}}"), 16, "'w'", "dtype");
    expect_open_fails(H("{\"w\": {\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}}"), 16, "'w'", "shape");
    expect_open_fails(H("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 16]}}"),
                      16, "'w'", NULL);
    expect_open_fails(H("{\"w\": {\"dtype\": \"F32\", \"shape\": [4]}}"), 16, "'w'", "data_offsets");
    expect_open_fails(H("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                        " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}"), 16, "overlap", NULL);
    /* an empty tensor sorted between two overlapping ones must not hide the overlap */
    expect_open_fails(H("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                        " \"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                        " \"c\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}"), 16, "overlap", NULL);
    expect_open_fails(H("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                        " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}"), 8, NULL, NULL);
}

/* Copies a golden model folder, letting `edit` change the tensors of its (single) checkpoint file. */
typedef void (*edit_fn)(k2c_tensor *t, int *n, void *scratch);

static int copy_case(const char *src_case, const char *dst, edit_fn edit) {
    char src[256], p[512];
    snprintf(src, sizeof src, "tests/data/golden/%s", src_case);
    mkdir(dst, 0755);
    snprintf(p, sizeof p, "%s/config.json", src);
    size_t n;
    char *cfg = k2c_read_file(p, &n);
    snprintf(p, sizeof p, "%s/config.json", dst);
    if (!cfg || k2c_write_file_atomic(p, cfg, n)) { free(cfg); return -1; }
    free(cfg);
    k2c_safetensors st;
    if (k2c_st_open(&st, src) != 0) return -1;
    int nt = st.ntensors;
    k2c_tensor *ts = malloc((size_t)nt * sizeof *ts);
    memcpy(ts, st.tensors, (size_t)nt * sizeof *ts);
    static float scratch[1 << 16];
    if (edit) edit(ts, &nt, scratch);
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    int rc = k2c_st_write(p, nt, ts, NULL, NULL);
    free(ts);
    k2c_st_close(&st);
    return rc;
}

static void drop_kv_b(k2c_tensor *t, int *n, void *s) {
    (void)s;
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "model.layers.1.self_attn.kv_b_proj.weight")) { t[i] = t[--*n]; return; }
}
static void nan_scale(k2c_tensor *t, int *n, void *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "model.layers.2.mlp.experts.3.up_proj.weight_scale_inv")) {
            float *f = s;
            memcpy(f, t[i].data, t[i].nbytes);
            f[0] = NAN;
            t[i].data = f;
        }
}
static void wrong_shape(k2c_tensor *t, int *n, void *s) {
    (void)s;
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "model.layers.0.self_attn.o_proj.weight")) {   /* [64, 64] viewed as [32, 128] */
            t[i].shape[0] = 32; t[i].shape[1] = 128;
        }
}
static void wrong_dtype(k2c_tensor *t, int *n, void *s) {
    (void)s;
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "model.norm.weight")) {     /* F32 [64] -> I32 [64] */
            t[i].dtype = K2C_I32;
        }
}

static void model_level_errors(void) {
    struct { const char *src, *dst; edit_fn fn; const char *want1, *want2; } cases[] = {
        {"k2-tiny-f32", TMPDIR "/missing", drop_kv_b, "model.layers.1.self_attn.kv_b_proj.weight", "missing"},
        {"k2-tiny-fp8", TMPDIR "/nanscale", nan_scale, "model.layers.2.mlp.experts.3.up_proj.weight_scale_inv", "nan"},
        {"k2-tiny-f32", TMPDIR "/shape", wrong_shape, "model.layers.0.self_attn.o_proj.weight", "expected [64, 64]"},
        {"k2-tiny-f32", TMPDIR "/dtype", wrong_dtype, "model.norm.weight", "I32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        EXPECT(copy_case(cases[i].src, cases[i].dst, cases[i].fn) == 0, "copy %s: %s", cases[i].src, k2c_errmsg());
        k2c_model m;
        int rc = k2c_model_load(&m, cases[i].dst);
        EXPECT(rc != 0, "%s loaded", cases[i].dst);
        if (rc == 0) { k2c_model_free(&m); continue; }
        EXPECT(strstr(k2c_errmsg(), cases[i].want1) && strstr(k2c_errmsg(), cases[i].want2), "%s: %s", cases[i].dst, k2c_errmsg());
        EXPECT(strstr(k2c_errmsg(), cases[i].dst), "no file named: %s", k2c_errmsg());
    }
}

static void index_errors(void) {
    const char *dir = TMPDIR "/idx";
    char p[256];
    EXPECT(copy_case("k2-tiny-f32", dir, NULL) == 0, "%s", k2c_errmsg());
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    const char *bad[] = {
        "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd\"}}",
        "{\"weight_map\": {\"model.norm.weight\": \"model-9-of-9.safetensors\"}}",
        "{\"weight_map\": {\"model.nothere.weight\": \"model.safetensors\"}}",
        "{\"weight_map\": [1]}",
        "{\"weight_map\": {",
    };
    const char *want[] = {"plain file name", "model-9-of-9.safetensors", "model.nothere.weight", "weight_map", "bad JSON"};
    for (int i = 0; i < 5; i++) {
        k2c_write_file_atomic(p, bad[i], strlen(bad[i]));
        k2c_safetensors st;
        int rc = k2c_st_open(&st, dir);
        EXPECT(rc != 0 && strstr(k2c_errmsg(), want[i]), "index case %d: rc %d: %s", i, rc, k2c_errmsg());
        if (rc == 0) k2c_st_close(&st);
    }
    unlink(p);
}

int main(void) {
    mkdir("build/tests", 0755);
    mkdir(TMPDIR, 0755);
    run_test("corrupt_truncated_file", truncated_file);
    run_test("corrupt_hostile_headers", hostile_headers);
    run_test("corrupt_model_level", model_level_errors);
    run_test("corrupt_index", index_errors);
    return check_exit();
}
