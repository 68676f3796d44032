/* model.safetensors.index.json through k2c_st_open on a folder. The input is the index, then any
 * number of shard files, each "NAME\n" + its bytes, separated by FZ_SEP. Names outside
 * [A-Za-z0-9._-] are skipped (the harness must not write outside its scratch folder). */
#include "fuzz_util.h"

static int plain_name(const uint8_t *p, size_t n) {
    if (n == 0 || n > 64 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '.' || p[i] == '_' || p[i] == '-'))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[FZ_MAXPARTS];
    size_t len[FZ_MAXPARTS];
    int n = fz_split(data, size, part, len, FZ_MAXPARTS);
    fz_clear();
    fz_write("model.safetensors.index.json", part[0], len[0]);
    for (int i = 1; i < n; i++) {
        const uint8_t *nl = memchr(part[i], '\n', len[i]);
        if (!nl || !plain_name(part[i], (size_t)(nl - part[i]))) continue;
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)(nl - part[i]), (const char *)part[i]);
        if (!strcmp(name, "model.safetensors.index.json")) continue;
        fz_write(name, nl + 1, len[i] - (size_t)(nl + 1 - part[i]));
    }
    k2c_safetensors st;
    /* copy: no /proc/meminfo read per run */
    if (k2c_st_open_mode(&st, fz_dir(), K2C_LOAD_COPY) != 0) fz_rejected("k2c_st_open");
    else {
        fz_accepted("k2c_st_open");
        for (int i = 0; i < st.ntensors; i++) {
            const k2c_tensor *t = &st.tensors[i];
            FZ_CHECK(t->file && strncmp(t->file, fz_dir(), strlen(fz_dir())) == 0, "tensor %s from %s", t->name, t->file);
            FZ_CHECK(k2c_st_find(&st, t->name) == t, "find %s", t->name);
            volatile uint8_t sink = 0;
            for (size_t k = 0; k < t->nbytes; k++) sink ^= ((const uint8_t *)t->data)[k];
            (void)sink;
        }
        k2c_st_close(&st);
    }
    return 0;
}
