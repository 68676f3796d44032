/* What a fuzz harness does with a tokenizer that loaded: encode text (plain and with specials), check
 * decode(encode(x)) == x (promised for any bytes), and stream the ids through k2c_detok. */
#ifndef K2C_FUZZ_TOK_H
#define K2C_FUZZ_TOK_H
#include "fuzz_util.h"

static void fz_tok_roundtrip(const k2c_tokenizer *t, const char *text, size_t n, int allow_special) {
    int *ids = NULL, nids = 0;
    if (k2c_tokenizer_encode(t, text, n, allow_special, &ids, &nids) != 0) {
        /* a vocabulary without every single byte cannot encode everything; that is an error, not a crash */
        free(ids);
        return;
    }
    size_t len = 0;
    char *back = k2c_tokenizer_decode(t, ids, nids, &len);
    FZ_CHECK(back != NULL, "decode of own ids failed: %s", k2c_errmsg());
    FZ_CHECK(len == n && !memcmp(back, text, n), "decode(encode(x)) != x (%zu vs %zu bytes, special %d)", len, n, allow_special);
    k2c_detok d;
    k2c_detok_init(&d, t);
    size_t got = 0;
    for (int i = 0; i < nids; i++) {
        const char *p;
        size_t l;
        FZ_CHECK(k2c_detok_push(&d, ids[i], &p, &l) == 0, "detok push of id %d failed", ids[i]);
        FZ_CHECK(got + l <= n && !memcmp(text + got, p, l), "detok text differs at %zu", got);
        got += l;
        (void)k2c_tokenizer_is_special(t, ids[i]);
    }
    const char *p;
    size_t l;
    k2c_detok_flush(&d, &p, &l);
    FZ_CHECK(got + l == n && !memcmp(text + got, p, l), "detok flush differs");
    k2c_detok_free(&d);
    free(back);
    free(ids);
}

static void fz_tok_exercise(const k2c_tokenizer *t, const uint8_t *extra, size_t nextra) {
    static const char sample[] = "Hello, world! 你好 <|im_end|>[BOS] 12345  \n\n\t x\xff\xfe tail";
    fz_tok_roundtrip(t, sample, sizeof sample - 1, 0);
    fz_tok_roundtrip(t, sample, sizeof sample - 1, 1);
    if (nextra) {
        fz_tok_roundtrip(t, (const char *)extra, nextra, 0);
        fz_tok_roundtrip(t, (const char *)extra, nextra, 1);
    }
    int V = k2c_tokenizer_vocab_size(t);
    for (int id = -1; id <= V && id < 300; id++) { size_t l; (void)k2c_tokenizer_token(t, id, &l); }
    (void)k2c_tokenizer_token_id(t, "<|im_end|>");
    (void)k2c_tokenizer_bos(t);
    (void)k2c_tokenizer_eos(t);
}
#endif
