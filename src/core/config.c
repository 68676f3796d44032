/* config.json: the Hugging Face model configuration of the DeepSeek-V3 family (Kimi K2, K2-Thinking,
 * Moonlight, DeepSeek-V3). Every field the forward pass uses is read and range-checked here, so that the
 * rest of the library can trust the numbers; errors name the file and the field. */
#include "core/core.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct { const char *where; int failed; } ctx;

static json_t *field(json_t *o, const char *name) { return json_object_get(o, name); }

/* Integer field; `dflt` < -1 means the field is required. Range [lo, hi]. */
static int get_int(ctx *c, json_t *o, const char *name, int dflt, int lo, int hi) {
    json_t *v = field(o, name);
    if (!v || json_is_null(v)) {
        if (dflt < -1) { if (!c->failed) k2c_seterr("%s: missing field \"%s\"", c->where, name); c->failed = 1; return 0; }
        return dflt;
    }
    double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : NAN;
    if (!json_is_number(v) || d != floor(d) || d < lo || d > hi) {
        if (!c->failed) k2c_seterr("%s: field \"%s\" must be an integer in [%d, %d]", c->where, name, lo, hi);
        c->failed = 1;
        return 0;
    }
    return (int)d;
}

static double get_num(ctx *c, json_t *o, const char *name, double dflt, int required, double lo, double hi) {
    json_t *v = field(o, name);
    if (!v || json_is_null(v)) {
        if (required) { if (!c->failed) k2c_seterr("%s: missing field \"%s\"", c->where, name); c->failed = 1; }
        return dflt;
    }
    double d = json_number_value(v);
    if (!json_is_number(v) || !(d >= lo && d <= hi)) {
        if (!c->failed) k2c_seterr("%s: field \"%s\" must be a number in [%g, %g]", c->where, name, lo, hi);
        c->failed = 1;
        return dflt;
    }
    return d;
}

static const char *get_str(ctx *c, json_t *o, const char *name, const char *dflt) {
    json_t *v = field(o, name);
    if (!v || json_is_null(v)) return dflt;
    if (!json_is_string(v)) {
        if (!c->failed) k2c_seterr("%s: field \"%s\" must be a string", c->where, name);
        c->failed = 1;
        return dflt;
    }
    return json_string_value(v);
}

static int get_bool(ctx *c, json_t *o, const char *name, int dflt) {
    json_t *v = field(o, name);
    if (!v || json_is_null(v)) return dflt;
    if (!json_is_boolean(v)) {
        if (!c->failed) k2c_seterr("%s: field \"%s\" must be true or false", c->where, name);
        c->failed = 1;
        return dflt;
    }
    return json_is_true(v);
}

static void fail(ctx *c, const char *field_name, const char *why) {
    if (!c->failed) k2c_seterr("%s: field \"%s\": %s", c->where, field_name, why);
    c->failed = 1;
}

static int parse_quant(ctx *c, json_t *q, k2c_config *cfg) {
    if (!q || json_is_null(q)) { cfg->quant = K2C_QUANT_NONE; return 0; }
    if (!json_is_object(q)) { fail(c, "quantization_config", "must be an object"); return -1; }
    const char *method = get_str(c, q, "quant_method", "");
    if (strcmp(method, "fp8") == 0) {
        cfg->quant = K2C_QUANT_FP8;
        const char *fmt = get_str(c, q, "fmt", "e4m3");
        if (strcmp(fmt, "e4m3") != 0) { fail(c, "quantization_config.fmt", "only e4m3 FP8 is supported"); return -1; }
        json_t *bs = field(q, "weight_block_size");
        cfg->fp8_block[0] = cfg->fp8_block[1] = 128;
        if (bs) {
            if (!json_is_array(bs) || json_array_size(bs) != 2 || !json_is_integer(json_array_get(bs, 0)) ||
                !json_is_integer(json_array_get(bs, 1)) || json_integer_value(json_array_get(bs, 0)) < 1 ||
                json_integer_value(json_array_get(bs, 0)) > 65536 ||
                json_integer_value(json_array_get(bs, 0)) != json_integer_value(json_array_get(bs, 1))) {
                fail(c, "quantization_config.weight_block_size", "must be [B, B] with 1 <= B <= 65536");
                return -1;
            }
            cfg->fp8_block[0] = cfg->fp8_block[1] = (int)json_integer_value(json_array_get(bs, 0));
        }
        return 0;
    }
    if (strcmp(method, "compressed-tensors") == 0) {
        cfg->quant = K2C_QUANT_INT4;
        const char *fmt = get_str(c, q, "format", "");
        if (strcmp(fmt, "pack-quantized") != 0) { fail(c, "quantization_config.format", "only \"pack-quantized\" is supported"); return -1; }
        json_t *groups = field(q, "config_groups"), *g0 = NULL;
        const char *k;
        json_t *v;
        if (json_is_object(groups)) json_object_foreach(groups, k, v) { g0 = v; break; }
        json_t *w = g0 ? field(g0, "weights") : NULL;
        if (!json_is_object(w)) { fail(c, "quantization_config.config_groups", "needs a group with \"weights\""); return -1; }
        int bits = get_int(c, w, "num_bits", 4, 1, 64);
        if (bits != 4) { fail(c, "quantization_config.config_groups.weights.num_bits", "only 4-bit is supported"); return -1; }
        if (!get_bool(c, w, "symmetric", 1)) { fail(c, "quantization_config.config_groups.weights.symmetric", "only symmetric is supported"); return -1; }
        cfg->int4_group = get_int(c, w, "group_size", 32, 8, 1 << 20);
        if (cfg->int4_group % 8) { fail(c, "quantization_config.config_groups.weights.group_size", "must be a multiple of 8"); return -1; }
        return c->failed ? -1 : 0;
    }
    if (!c->failed) k2c_seterr("%s: quantization_config.quant_method \"%s\" is not supported (fp8 or compressed-tensors)", c->where, method);
    c->failed = 1;
    return -1;
}

int k2c_config_parse(k2c_config *cfg, const char *text, const char *where) {
    ctx c = {where, 0};
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    memset(cfg, 0, sizeof *cfg);
    if (!o || !json_is_object(o)) {
        k2c_seterr("%s: not a JSON object: %s (line %d)", where, o ? "wrong type" : jerr.text, jerr.line);
        json_decref(o);
        return -1;
    }
    /* Architecture first: anything else would be read with the wrong meaning. */
    json_t *arch = field(o, "architectures");
    const char *a0 = json_is_array(arch) && json_is_string(json_array_get(arch, 0)) ? json_string_value(json_array_get(arch, 0)) : NULL;
    const char *mt = get_str(&c, o, "model_type", "");
    int known_arch = a0 && (!strcmp(a0, "DeepseekV3ForCausalLM") || !strcmp(a0, "DeepseekV2ForCausalLM") ||
                            !strcmp(a0, "KimiK2ForCausalLM"));
    int known_type = !strcmp(mt, "kimi_k2") || !strcmp(mt, "deepseek_v3") || !strcmp(mt, "deepseek_v2");
    if (!known_arch || !known_type) {
        k2c_seterr("%s: architecture %s / model_type \"%s\" is not supported (k2c runs DeepseekV3ForCausalLM: "
                   "kimi_k2, deepseek_v3)", where, a0 ? a0 : "(none)", mt);
        json_decref(o);
        return -1;
    }
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", mt);
    const int BIG = 1 << 24, REQ = -2;
    cfg->vocab_size = get_int(&c, o, "vocab_size", REQ, 2, BIG);
    cfg->hidden_size = get_int(&c, o, "hidden_size", REQ, 1, 1 << 16);
    cfg->intermediate_size = get_int(&c, o, "intermediate_size", REQ, 1, 1 << 20);
    cfg->moe_intermediate_size = get_int(&c, o, "moe_intermediate_size", REQ, 1, 1 << 20);
    cfg->num_hidden_layers = get_int(&c, o, "num_hidden_layers", REQ, 1, 1024);
    cfg->first_k_dense_replace = get_int(&c, o, "first_k_dense_replace", 0, 0, 1024);
    cfg->moe_layer_freq = get_int(&c, o, "moe_layer_freq", 1, 1, 1024);
    cfg->num_attention_heads = get_int(&c, o, "num_attention_heads", REQ, 1, 1024);
    cfg->n_routed_experts = get_int(&c, o, "n_routed_experts", 0, 0, 1024);
    cfg->n_shared_experts = get_int(&c, o, "n_shared_experts", 0, 0, 64);
    cfg->num_experts_per_tok = get_int(&c, o, "num_experts_per_tok", 0, 0, 64);
    cfg->n_group = get_int(&c, o, "n_group", 1, 1, 1024);
    cfg->topk_group = get_int(&c, o, "topk_group", 1, 1, 1024);
    const char *sf = get_str(&c, o, "scoring_func", "sigmoid");
    const char *tm = get_str(&c, o, "topk_method", "noaux_tc");
    cfg->norm_topk_prob = get_bool(&c, o, "norm_topk_prob", 1);
    cfg->routed_scaling_factor = (float)get_num(&c, o, "routed_scaling_factor", 1.0, 0, 0, 1e6);
    cfg->q_lora_rank = get_int(&c, o, "q_lora_rank", 0, 0, 1 << 16);
    cfg->kv_lora_rank = get_int(&c, o, "kv_lora_rank", REQ, 1, 1 << 16);
    cfg->qk_nope_head_dim = get_int(&c, o, "qk_nope_head_dim", REQ, 1, 4096);
    cfg->qk_rope_head_dim = get_int(&c, o, "qk_rope_head_dim", REQ, 2, 4096);
    cfg->v_head_dim = get_int(&c, o, "v_head_dim", REQ, 1, 4096);
    cfg->rope_theta = get_num(&c, o, "rope_theta", 10000.0, 0, 1.0, 1e12);
    cfg->max_position_embeddings = get_int(&c, o, "max_position_embeddings", 4096, 1, 1 << 30);
    cfg->rms_norm_eps = get_num(&c, o, "rms_norm_eps", 1e-6, 0, 0, 1);
    cfg->tie_word_embeddings = get_bool(&c, o, "tie_word_embeddings", 0);
    cfg->bos_token_id = get_int(&c, o, "bos_token_id", -1, -1, BIG);
    cfg->eos_token_id = get_int(&c, o, "eos_token_id", -1, -1, BIG);
    cfg->aux_loss_alpha = get_num(&c, o, "aux_loss_alpha", 0.0, 0, 0, 1e6);
    if (!c.failed && strcmp(sf, "sigmoid") && strcmp(sf, "softmax")) fail(&c, "scoring_func", "must be \"sigmoid\" or \"softmax\"");
    cfg->scoring_softmax = !strcmp(sf, "softmax");
    if (!c.failed && strcmp(tm, "noaux_tc") && strcmp(tm, "greedy") && strcmp(tm, "group_limited_greedy"))
        fail(&c, "topk_method", "must be noaux_tc, greedy or group_limited_greedy");
    const char *act = get_str(&c, o, "hidden_act", "silu");
    if (!c.failed && strcmp(act, "silu")) fail(&c, "hidden_act", "only silu is supported");
    if (!c.failed && get_bool(&c, o, "attention_bias", 0)) fail(&c, "attention_bias", "attention biases are not supported");

    json_t *rs = field(o, "rope_scaling");
    cfg->rope_factor = 1.0;
    if (rs && !json_is_null(rs) && !c.failed) {
        if (!json_is_object(rs)) fail(&c, "rope_scaling", "must be an object or null");
        else {
            const char *type = get_str(&c, rs, "type", NULL);
            if (!type) type = get_str(&c, rs, "rope_type", "");
            if (strcmp(type, "yarn") != 0) fail(&c, "rope_scaling.type", "only \"yarn\" is supported");
            cfg->rope_yarn = 1;
            cfg->rope_factor = get_num(&c, rs, "factor", 1.0, 1, 1.0, 1e6);
            cfg->beta_fast = get_num(&c, rs, "beta_fast", 32, 0, 1e-6, 1e6);
            cfg->beta_slow = get_num(&c, rs, "beta_slow", 1, 0, 1e-6, 1e6);
            cfg->mscale = get_num(&c, rs, "mscale", 1, 0, 0, 1e6);
            cfg->mscale_all_dim = get_num(&c, rs, "mscale_all_dim", 0, 0, 0, 1e6);
            cfg->rope_original_max = get_int(&c, rs, "original_max_position_embeddings", 4096, 1, 1 << 30);
        }
    }
    if (!c.failed) parse_quant(&c, field(o, "quantization_config"), cfg);

    /* Cross-field consistency. */
    if (!c.failed && cfg->qk_rope_head_dim % 2) fail(&c, "qk_rope_head_dim", "must be even (RoPE rotates pairs)");
    if (!c.failed && cfg->first_k_dense_replace < cfg->num_hidden_layers) {
        if (cfg->n_routed_experts < 1) fail(&c, "n_routed_experts", "MoE layers need at least one routed expert");
        else if (cfg->num_experts_per_tok < 1 || cfg->num_experts_per_tok > cfg->n_routed_experts)
            fail(&c, "num_experts_per_tok", "must be in [1, n_routed_experts]");
        else if (cfg->n_routed_experts % cfg->n_group) fail(&c, "n_group", "must divide n_routed_experts");
        else if (cfg->topk_group > cfg->n_group) fail(&c, "topk_group", "must be <= n_group");
        else if (cfg->n_group > 1 && cfg->topk_group * (cfg->n_routed_experts / cfg->n_group) < cfg->num_experts_per_tok)
            fail(&c, "topk_group", "the kept groups hold fewer experts than num_experts_per_tok");
        else if (cfg->n_group > 1 && cfg->n_routed_experts / cfg->n_group < 2)
            fail(&c, "n_group", "groups need at least 2 experts (a group scores by its top-2)");
    }
    if (!c.failed && cfg->quant == K2C_QUANT_INT4 && cfg->moe_intermediate_size % cfg->int4_group)
        fail(&c, "moe_intermediate_size", "must be a multiple of the INT4 group size");
    json_decref(o);
    return c.failed ? -1 : 0;
}

int k2c_config_load(k2c_config *c, const char *path) {
    struct stat sb;
    char *p = (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) ? k2c_path_join(path, "config.json") : strdup(path);
    if (!p) { k2c_seterr("out of memory"); return -1; }
    char *text = k2c_read_file(p, NULL);
    int rc = text ? k2c_config_parse(c, text, p) : -1;
    free(text);
    free(p);
    return rc;
}

int k2c_config_is_moe_layer(const k2c_config *c, int layer) {
    return c->n_routed_experts > 0 && layer >= c->first_k_dense_replace && layer % c->moe_layer_freq == 0;
}

char *k2c_config_to_json(const k2c_config *c) {
    json_t *o = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string("DeepseekV3ForCausalLM"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string(c->model_type[0] ? c->model_type : "kimi_k2"));
#define I(name) json_object_set_new(o, #name, json_integer(c->name))
#define R(name) json_object_set_new(o, #name, json_real(c->name))
    I(vocab_size); I(hidden_size); I(intermediate_size); I(moe_intermediate_size); I(num_hidden_layers);
    I(first_k_dense_replace); I(moe_layer_freq); I(num_attention_heads);
    json_object_set_new(o, "num_key_value_heads", json_integer(c->num_attention_heads));
    I(n_routed_experts); I(n_shared_experts); I(num_experts_per_tok); I(n_group); I(topk_group);
    json_object_set_new(o, "scoring_func", json_string(c->scoring_softmax ? "softmax" : "sigmoid"));
    json_object_set_new(o, "topk_method", json_string("noaux_tc"));
    json_object_set_new(o, "norm_topk_prob", json_boolean(c->norm_topk_prob));
    json_object_set_new(o, "routed_scaling_factor", json_real((double)c->routed_scaling_factor));
    json_object_set_new(o, "q_lora_rank", c->q_lora_rank ? json_integer(c->q_lora_rank) : json_null());
    I(kv_lora_rank); I(qk_nope_head_dim); I(qk_rope_head_dim); I(v_head_dim);
    R(rope_theta); I(max_position_embeddings);
    if (c->rope_yarn) {
        json_t *rs = json_object();
        json_object_set_new(rs, "type", json_string("yarn"));
        json_object_set_new(rs, "factor", json_real(c->rope_factor));
        json_object_set_new(rs, "beta_fast", json_real(c->beta_fast));
        json_object_set_new(rs, "beta_slow", json_real(c->beta_slow));
        json_object_set_new(rs, "mscale", json_real(c->mscale));
        json_object_set_new(rs, "mscale_all_dim", json_real(c->mscale_all_dim));
        json_object_set_new(rs, "original_max_position_embeddings", json_integer(c->rope_original_max));
        json_object_set_new(o, "rope_scaling", rs);
    } else {
        json_object_set_new(o, "rope_scaling", json_null());
    }
    R(rms_norm_eps);
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "num_nextn_predict_layers", json_integer(0));
    I(bos_token_id); I(eos_token_id);
    if (c->aux_loss_alpha > 0) R(aux_loss_alpha);
    if (c->quant == K2C_QUANT_FP8) {
        json_t *q = json_object(), *bs = json_array();
        json_object_set_new(q, "quant_method", json_string("fp8"));
        json_object_set_new(q, "fmt", json_string("e4m3"));
        json_object_set_new(q, "activation_scheme", json_string("dynamic"));
        json_array_append_new(bs, json_integer(c->fp8_block[0]));
        json_array_append_new(bs, json_integer(c->fp8_block[1]));
        json_object_set_new(q, "weight_block_size", bs);
        json_object_set_new(o, "quantization_config", q);
        json_object_set_new(o, "torch_dtype", json_string("bfloat16"));
    } else if (c->quant == K2C_QUANT_INT4) {
        json_t *q = json_pack("{s:s, s:s, s:{s:{s:[s], s:n, s:n, s:{s:i, s:s, s:b, s:s, s:i, s:b, s:s}}}, s:[s,s,s,s]}",
            "quant_method", "compressed-tensors", "format", "pack-quantized", "config_groups", "group_0",
            "targets", "Linear", "input_activations", "output_activations", "weights", "num_bits", 4, "type", "int",
            "symmetric", 1, "strategy", "group", "group_size", c->int4_group, "dynamic", 0, "observer", "minmax",
            "ignore", "lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", "re:.*mlp\\.(gate|up|gate_up|down)_proj.*");
        json_object_set_new(o, "quantization_config", q);
        json_object_set_new(o, "torch_dtype", json_string("bfloat16"));
    }
#undef I
#undef R
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}

/* Shapes of the published models (spec section 1) and a tiny one for tests. num_hidden_layers can be
 * overridden by the caller to make a few-layer model of a real shape. */
int k2c_config_preset(k2c_config *c, const char *name) {
    memset(c, 0, sizeof *c);
    /* Kimi-K2 defaults, changed below per model. */
    snprintf(c->model_type, sizeof c->model_type, "kimi_k2");
    c->vocab_size = 163840; c->hidden_size = 7168; c->intermediate_size = 18432; c->moe_intermediate_size = 2048;
    c->num_hidden_layers = 61; c->first_k_dense_replace = 1; c->moe_layer_freq = 1; c->num_attention_heads = 64;
    c->n_routed_experts = 384; c->n_shared_experts = 1; c->num_experts_per_tok = 8; c->n_group = 1; c->topk_group = 1;
    c->norm_topk_prob = 1; c->routed_scaling_factor = 2.827f; c->q_lora_rank = 1536; c->kv_lora_rank = 512;
    c->qk_nope_head_dim = 128; c->qk_rope_head_dim = 64; c->v_head_dim = 128; c->rope_theta = 50000;
    c->max_position_embeddings = 131072; c->rope_yarn = 1; c->rope_factor = 32; c->beta_fast = 1; c->beta_slow = 1;
    c->mscale = 1; c->mscale_all_dim = 1; c->rope_original_max = 4096; c->rms_norm_eps = 1e-6;
    c->bos_token_id = 163584; c->eos_token_id = 163585; c->fp8_block[0] = c->fp8_block[1] = 128; c->int4_group = 32;
    if (!strcmp(name, "kimi-k2")) return 0;
    if (!strcmp(name, "kimi-k2-thinking")) {
        c->max_position_embeddings = 262144; c->rope_factor = 64; c->rms_norm_eps = 1e-5; c->quant = K2C_QUANT_INT4;
        return 0;
    }
    if (!strcmp(name, "moonlight-16b-a3b")) {
        snprintf(c->model_type, sizeof c->model_type, "deepseek_v3");
        c->hidden_size = 2048; c->num_hidden_layers = 27; c->num_attention_heads = 16; c->q_lora_rank = 0;
        c->n_routed_experts = 64; c->num_experts_per_tok = 6; c->n_shared_experts = 2; c->moe_intermediate_size = 1408;
        c->intermediate_size = 11264; c->routed_scaling_factor = 2.446f; c->rope_yarn = 0; c->rope_factor = 1;
        c->max_position_embeddings = 8192; c->rms_norm_eps = 1e-5;
        return 0;
    }
    if (!strcmp(name, "deepseek-v3")) {
        snprintf(c->model_type, sizeof c->model_type, "deepseek_v3");
        c->num_attention_heads = 128; c->n_routed_experts = 256; c->first_k_dense_replace = 3; c->n_group = 8;
        c->topk_group = 4; c->routed_scaling_factor = 2.5f; c->rope_theta = 10000; c->rope_factor = 40;
        c->beta_fast = 32; c->beta_slow = 1; c->max_position_embeddings = 163840; c->vocab_size = 129280;
        c->bos_token_id = 0; c->eos_token_id = 1;
        return 0;
    }
    if (!strcmp(name, "k2-tiny")) {
        c->vocab_size = 512; c->hidden_size = 64; c->intermediate_size = 96; c->moe_intermediate_size = 32;
        c->num_hidden_layers = 3; c->num_attention_heads = 4; c->n_routed_experts = 16; c->num_experts_per_tok = 4;
        c->q_lora_rank = 32; c->kv_lora_rank = 32; c->qk_nope_head_dim = 16; c->qk_rope_head_dim = 8;
        c->v_head_dim = 16; c->max_position_embeddings = 512; c->rope_original_max = 16; c->bos_token_id = 0;
        c->eos_token_id = 1;
        return 0;
    }
    k2c_seterr("unknown preset '%s' (kimi-k2, kimi-k2-thinking, moonlight-16b-a3b, deepseek-v3, k2-tiny)", name);
    return -1;
}
