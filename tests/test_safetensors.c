/* safetensors reader/writer and config parser against the golden checkpoints and hand-made files. */
#include "core/core.h"
#include "check.h"

#include <string.h>

static void golden_single_file(void) {
    k2c_safetensors st;
    int rc = k2c_st_open(&st, "tests/data/golden/k2-tiny-f32");
    EXPECT(rc == 0, "%s", k2c_errmsg());
    if (rc) return;
    const k2c_tensor *t = k2c_st_find(&st, "model.embed_tokens.weight");
    EXPECT(t && t->dtype == K2C_F32 && t->ndim == 2 && t->shape[0] == 512 && t->shape[1] == 64, "embed shape");
    EXPECT(k2c_st_find(&st, "no.such.tensor") == NULL, "missing tensor found");
    k2c_st_close(&st);
}

static void golden_sharded_unpadded(void) {
    k2c_safetensors st;
    int rc = k2c_st_open(&st, "tests/data/golden/k2-tiny-bf16-sharded");
    EXPECT(rc == 0, "%s", k2c_errmsg());
    if (rc) return;
    EXPECT(st.nfiles == 3, "nfiles %d", st.nfiles);
    const k2c_tensor *t = k2c_st_find(&st, "lm_head.weight");
    EXPECT(t && t->dtype == K2C_BF16, "lm_head bf16");
    k2c_st_close(&st);
}

static void write_read_roundtrip(void) {
    const char *path = "build/tests/roundtrip.safetensors";
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[3] = {k2c_f32_to_bf16(1.5f), k2c_f32_to_bf16(-2.0f), k2c_f32_to_bf16(0.25f)};
    k2c_tensor t[2] = {{.name = "a", .data = a}, {.name = "b", .data = b}};
    int64_t sa[2] = {2, 3}, sb[1] = {3};
    k2c_tensor_set_shape(&t[0], K2C_F32, 2, sa);
    k2c_tensor_set_shape(&t[1], K2C_BF16, 1, sb);
    EXPECT(k2c_st_write(path, 2, t, NULL, NULL) == 0, "%s", k2c_errmsg());
    k2c_safetensors st;
    if (k2c_st_open(&st, path) != 0) { EXPECT(0, "%s", k2c_errmsg()); return; }
    const k2c_tensor *ra = k2c_st_find(&st, "a"), *rb = k2c_st_find(&st, "b");
    EXPECT(ra && ra->nbytes == sizeof a && !memcmp(ra->data, a, sizeof a), "a roundtrip");
    EXPECT(rb && k2c_elem_to_f32(rb->dtype, rb->data, 1) == -2.0f, "b roundtrip");
    EXPECT(((uintptr_t)ra->data & 7) == 0, "data aligned");
    k2c_st_close(&st);
}

static void dtype_conversions(void) {
    EXPECT(k2c_fp8_to_f32(0x7e) == 448.0f, "fp8 max");
    EXPECT(isnan(k2c_fp8_to_f32(0x7f)) && isnan(k2c_fp8_to_f32(0xff)), "fp8 nan");
    EXPECT(k2c_fp8_to_f32(0x01) == ldexpf(1, -9), "fp8 min subnormal");
    EXPECT(k2c_fp8_to_f32(0x38) == 1.0f && k2c_fp8_to_f32(0xb8) == -1.0f, "fp8 one");
    int bad = 0;
    for (int i = 0; i < 256; i++) {
        if ((i & 0x7f) == 0x7f) continue;
        float v = k2c_fp8_to_f32((uint8_t)i);
        uint8_t back = k2c_f32_to_fp8(v);
        if (back != i && !(v == 0 && (back & 0x7f) == 0)) bad++;
    }
    EXPECT(bad == 0, "%d fp8 codes do not round-trip", bad);
    EXPECT(k2c_f32_to_fp8(1000.0f) == 0x7e, "fp8 saturates");
    EXPECT(k2c_bf16_to_f32(k2c_f32_to_bf16(1.00390625f)) == 1.0f, "bf16 ties to even");
    EXPECT(k2c_f16_to_f32(k2c_f32_to_f16(0.333251953125f)) == 0.333251953125f, "f16 exact");
    EXPECT(k2c_f16_to_f32(k2c_f32_to_f16(65504.0f)) == 65504.0f, "f16 max");
    EXPECT(k2c_f16_to_f32(0x0001) == ldexpf(1, -24), "f16 subnormal");
}

static void config_golden(void) {
    const char *cases[] = {"k2-tiny-f32", "k2-tiny-fp8", "k2-thinking-tiny-int4", "moonlight-tiny", "dsv3-tiny"};
    for (int i = 0; i < 5; i++) {
        char p[256];
        snprintf(p, sizeof p, "tests/data/golden/%s", cases[i]);
        k2c_config c;
        EXPECT(k2c_config_load(&c, p) == 0, "%s: %s", cases[i], k2c_errmsg());
    }
    k2c_config c;
    k2c_config_load(&c, "tests/data/golden/k2-tiny-fp8");
    EXPECT(c.quant == K2C_QUANT_FP8 && c.fp8_block[0] == 128, "fp8 quant");
    k2c_config_load(&c, "tests/data/golden/k2-thinking-tiny-int4");
    EXPECT(c.quant == K2C_QUANT_INT4 && c.int4_group == 32, "int4 quant");
    k2c_config_load(&c, "tests/data/golden/moonlight-tiny");
    EXPECT(c.q_lora_rank == 0 && !c.rope_yarn && c.n_shared_experts == 2, "moonlight fields");
    /* round trip through our writer */
    k2c_config_load(&c, "tests/data/golden/dsv3-tiny");
    char *js = k2c_config_to_json(&c);
    k2c_config d;
    EXPECT(js && k2c_config_parse(&d, js, "roundtrip") == 0, "%s", k2c_errmsg());
    EXPECT(d.n_group == 4 && d.topk_group == 2 && d.rope_factor == 40.0 && d.first_k_dense_replace == 2, "dsv3 roundtrip");
    free(js);
}

static void config_errors(void) {
    k2c_config c;
    EXPECT(k2c_config_parse(&c, "{", "cfg") != 0 && strstr(k2c_errmsg(), "cfg"), "bad json: %s", k2c_errmsg());
    EXPECT(k2c_config_parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\"}", "cfg") != 0 &&
           strstr(k2c_errmsg(), "LlamaForCausalLM"), "unknown arch: %s", k2c_errmsg());
    char *good = k2c_read_file("tests/data/golden/k2-tiny-f32/config.json", NULL);
    /* break one field at a time */
    struct { const char *from, *to, *field; } muts[] = {
        {"\"hidden_size\": 64", "\"hidden_size\": -64", "hidden_size"},
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "hidden_size"},
        {"\"num_experts_per_tok\": 4", "\"num_experts_per_tok\": 17", "num_experts_per_tok"},
        {"\"qk_rope_head_dim\": 8", "\"qk_rope_head_dim\": 7", "qk_rope_head_dim"},
        {"\"type\": \"yarn\"", "\"type\": \"dynamic\"", "rope_scaling.type"},
        {"\"kv_lora_rank\": 32,", "", "kv_lora_rank"},
        {"\"scoring_func\": \"sigmoid\"", "\"scoring_func\": \"relu\"", "scoring_func"},
    };
    for (size_t i = 0; i < sizeof muts / sizeof *muts; i++) {
        char *p = strstr(good, muts[i].from);
        EXPECT(p, "mutation %zu not applicable", i);
        if (!p) continue;
        size_t n = strlen(good) + strlen(muts[i].to) + 1;
        char *bad = malloc(n);
        snprintf(bad, n, "%.*s%s%s", (int)(p - good), good, muts[i].to, p + strlen(muts[i].from));
        int rc = k2c_config_parse(&c, bad, "cfg.json");
        EXPECT(rc != 0 && strstr(k2c_errmsg(), muts[i].field) && strstr(k2c_errmsg(), "cfg.json"),
               "mutation %s: rc %d msg %s", muts[i].field, rc, k2c_errmsg());
        free(bad);
    }
    free(good);
}

static void load_modes_agree(void) {
    k2c_safetensors a, b;
    int ra = k2c_st_open_mode(&a, "tests/data/golden/k2-tiny-fp8", K2C_LOAD_MMAP);
    int rb = k2c_st_open_mode(&b, "tests/data/golden/k2-tiny-fp8", K2C_LOAD_COPY);
    EXPECT(ra == 0 && rb == 0, "%s", k2c_errmsg());
    if (ra || rb) return;
    int same = a.ntensors == b.ntensors;
    for (int i = 0; same && i < a.ntensors; i++)
        same = !strcmp(a.tensors[i].name, b.tensors[i].name) && a.tensors[i].nbytes == b.tensors[i].nbytes &&
               !memcmp(a.tensors[i].data, b.tensors[i].data, a.tensors[i].nbytes);
    EXPECT(same, "mmap and copy loads differ");
    k2c_st_close(&a);
    k2c_st_close(&b);
}

int main(void) {
    run_test("safetensors_mmap_and_copy_agree", load_modes_agree);
    run_test("safetensors_golden_single_file", golden_single_file);
    run_test("safetensors_golden_sharded_unpadded", golden_sharded_unpadded);
    run_test("safetensors_write_read_roundtrip", write_read_roundtrip);
    run_test("dtype_conversions", dtype_conversions);
    run_test("config_golden", config_golden);
    run_test("config_errors", config_errors);
    return check_exit();
}
