/* safetensors header: the whole input is a .safetensors file image, parsed with k2c_st_parse (the header
 * checks of k2c_st_open, without the file). Every accepted tensor must lie inside the image: each byte
 * of its data is read (ASan sees the exact input buffer) and the entries must not overlap. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    k2c_safetensors st;
    if (k2c_st_parse(&st, "fuzz.safetensors", data, size) != 0) {
        fz_rejected("k2c_st_parse");
        FZ_CHECK(st.ntensors == 0 && st.tensors == NULL, "failed parse left %d tensors", st.ntensors);
        return 0;
    }
    fz_accepted("k2c_st_parse");
    volatile uint8_t sink = 0;
    const uint8_t *lo = data + 8, *hi = data + size;
    for (int i = 0; i < st.ntensors; i++) {
        const k2c_tensor *t = &st.tensors[i];
        const uint8_t *p = t->data;
        FZ_CHECK(p >= lo && p + t->nbytes <= hi, "tensor %s outside the image", t->name);
        FZ_CHECK(t->nbytes == (size_t)t->numel * k2c_dtype_size(t->dtype), "tensor %s: bytes vs shape", t->name);
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
        FZ_CHECK(k2c_st_find(&st, t->name) == t, "find %s", t->name);
        if (i) FZ_CHECK(strcmp(st.tensors[i - 1].name, t->name) < 0, "not sorted");
        if (i && t->nbytes && st.tensors[i - 1].nbytes) {
            /* overlap check (names sorted, so compare every earlier one) */
            for (int j = 0; j < i; j++) {
                const k2c_tensor *u = &st.tensors[j];
                const uint8_t *a = u->data, *b = t->data;
                if (!u->nbytes) continue;
                FZ_CHECK(a + u->nbytes <= b || b + t->nbytes <= a, "tensors %s and %s overlap", u->name, t->name);
            }
        }
    }
    (void)sink;
    k2c_st_close(&st);
    return 0;
}
