/* tokenizer_config.json next to a fixed small tiktoken.model (256 bytes + a few merges): the
 * added_tokens_decoder specials, bos/eos names, chat template. The input is the config file. */
#include "fuzz_util.h"
#include "fuzz_tok.h"

static int ready;

static void write_base(void) {
    /* ranks 0..255: the single bytes; then a few merges */
    static const char *merges[] = {"he", "ll", "llo", "hello", " w", "or", "orld", " world", "<|", "|>"};
    size_t cap = 256 * 16 + 256, n = 0;
    char *buf = malloc(cap);
    char b64[16];
    extern size_t tok_b64_encode(const unsigned char *p, size_t n, char *out);
    for (int i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        size_t k = tok_b64_encode(&c, 1, b64);
        n += (size_t)snprintf(buf + n, cap - n, "%.*s %d\n", (int)k, b64, i);
    }
    for (int i = 0; i < (int)(sizeof merges / sizeof *merges); i++) {
        size_t k = tok_b64_encode((const unsigned char *)merges[i], strlen(merges[i]), b64);
        n += (size_t)snprintf(buf + n, cap - n, "%.*s %d\n", (int)k, b64, 256 + i);
    }
    fz_write("tiktoken.model", buf, n);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) { write_base(); ready = 1; }
    fz_write("tokenizer_config.json", data, size);
    k2c_tokenizer *t;
    if (k2c_tokenizer_load(&t, fz_dir()) != 0) fz_rejected("k2c_tokenizer_load");
    else {
        fz_accepted("k2c_tokenizer_load");
        fz_tok_exercise(t, data, size > 256 ? 256 : size);
        k2c_tokenizer_free(t);
    }
    return 0;
}
