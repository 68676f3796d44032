/* GGUF: the whole input is a .gguf file image, parsed with k2c_gguf_parse (the checks of k2c_gguf_open, from
 * memory). Every accepted tensor must lie inside the image with the byte count its type and shape give (each
 * byte is read, so ASan sees any excess), names sorted and found, no two tensors overlapping; every string
 * array element inside the image; the deepseek2 config builder and the block dequantizers run on whatever
 * was accepted. Seeds: python3 tests/gguf_ref.py seeds fuzz/corpus/gguf. */
#include "fuzz_util.h"
#include "kernels/kernels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    k2c_gguf g;
    if (k2c_gguf_parse(&g, "fuzz.gguf", data, size) != 0) {
        fz_rejected("k2c_gguf_parse");
        FZ_CHECK(g.ntensors == 0 && g.tensors == NULL && g.kv == NULL, "failed parse left %d tensors", g.ntensors);
        return 0;
    }
    fz_accepted("k2c_gguf_parse");
    volatile uint8_t sink = 0;
    const uint8_t *lo = data, *hi = data + size;
    for (int i = 0; i < g.nkv; i++) {
        const k2c_gguf_kv *kv = &g.kv[i];
        FZ_CHECK(k2c_gguf_get(&g, kv->key) == kv, "get %s", kv->key);
        if (kv->type == K2C_GGUF_ARRAY && kv->atype == K2C_GGUF_STRING)
            for (uint64_t j = 0; j < kv->n; j++) {
                const uint8_t *p = (const uint8_t *)kv->sv[j];
                FZ_CHECK(p >= lo && p + kv->sl[j] <= hi, "%s[%llu] outside the image", kv->key, (unsigned long long)j);
                for (uint32_t k = 0; k < kv->sl[j]; k++) sink ^= p[k];
            }
        if (kv->type == K2C_GGUF_ARRAY && kv->atype != K2C_GGUF_STRING)
            FZ_CHECK(kv->arr >= lo && kv->arr <= hi, "%s outside the image", kv->key);
    }
    for (int i = 0; i < g.ntensors; i++) {
        const k2c_gguf_tensor *t = &g.tensors[i];
        const uint8_t *p = t->data;
        int be, bb;
        FZ_CHECK(k2c_ggml_type_block(t->type, &be, &bb) == 0, "tensor %s: type %d", t->name, t->type);
        FZ_CHECK(t->ndim >= 1 && t->ndim <= 4 && t->ne[0] % be == 0, "tensor %s: shape", t->name);
        FZ_CHECK(t->nbytes == (size_t)(t->numel / be) * (size_t)bb, "tensor %s: bytes vs shape", t->name);
        FZ_CHECK(p >= lo && p + t->nbytes <= hi, "tensor %s outside the image", t->name);
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
        FZ_CHECK(k2c_gguf_find(&g, t->name) == t, "find %s", t->name);
        if (i) FZ_CHECK(strcmp(g.tensors[i - 1].name, t->name) < 0, "not sorted");
        for (int j = 0; j < i; j++) {
            const k2c_gguf_tensor *u = &g.tensors[j];
            if (!u->nbytes || !t->nbytes) continue;
            const uint8_t *a = u->data;
            FZ_CHECK(a + u->nbytes <= p || p + t->nbytes <= a, "tensors %s and %s overlap", u->name, t->name);
        }
        /* the first row through the kernels' dequantizer (bounded work) */
        k2c_wfmt f;
        if (k2c_wfmt_from_ggml(t->type, &f) == 0 && k2c_wfmt_is_block(f) && t->ne[0] > 0 && t->ne[0] <= 4096) {
            float out[256];
            size_t rb = k2c_wfmt_row_bytes(f, (int)t->ne[0]);
            for (size_t off = 0; off + (size_t)bb <= rb && off + (size_t)bb <= t->nbytes; off += (size_t)bb)
                k2c_quant_dequant_block(f, p + off, out);
        }
    }
    k2c_config c;
    if (k2c_gguf_config(&g, &c) == 0)
        FZ_CHECK(c.hidden_size > 0 && c.num_hidden_layers > 0 && c.qk_nope_head_dim > 0, "config accepted with bad sizes");
    (void)sink;
    k2c_gguf_close(&g);
    return 0;
}
