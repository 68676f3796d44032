/* JSON-Schema grammar: k2c_schema_compile on the schema part, then bytes fed through k2c_gram_*.
 * Input: SCHEMA [FZ_SEP BYTES]. Each byte of BYTES is fed if the matcher allows it; otherwise it picks
 * one of the allowed bytes (so runs go deep into the schema). Checks: a byte that feeds is in
 * k2c_gram_first_bytes; k2c_gram_close completes every accepted prefix to a value the matcher accepts,
 * and that text parses as JSON. */
#include "fuzz_util.h"
#include <jansson.h>

static int allowed(const uint8_t bm[32], int b) { return bm[b >> 3] >> (b & 7) & 1; }

static void check_close(const k2c_gram *g, const char *text, size_t n) {
    size_t cl = 0;
    char *close = k2c_gram_close(g, &cl);
    FZ_CHECK(close, "close failed: %s", k2c_errmsg());
    k2c_gram *h = malloc(k2c_gram_size());
    k2c_gram_copy(h, g);
    FZ_CHECK(k2c_gram_feed(h, close, cl) == 0, "close text '%s' rejected after '%.*s'", close, (int)n, text);
    FZ_CHECK(k2c_gram_accepting(h), "not accepting after close '%s' (prefix '%.*s')", close, (int)n, text);
    char *all = malloc(n + cl + 1);
    memcpy(all, text, n);
    memcpy(all + n, close, cl);
    json_error_t je;
    json_t *v = json_loadb(all, n + cl, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    /* jansson refuses "\u0000" in object keys, which is valid JSON (and allowed by the grammar) */
    FZ_CHECK(v || strstr(je.text, "NUL byte in object key"), "accepted text is not JSON (%s): %.*s", je.text, (int)(n + cl), all);
    json_decref(v);
    free(all);
    free(h);
    free(close);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    int np = fz_split(data, size, part, len, 2);
    char *schema = fz_strndup(part[0], len[0]);
    k2c_schema *s = k2c_schema_compile(schema, "schema");
    free(schema);
    if (!s) { fz_rejected("k2c_schema_compile"); return 0; }
    fz_accepted("k2c_schema_compile");
    k2c_gram *g = k2c_gram_new(s), *t = malloc(k2c_gram_size());
    FZ_CHECK(g && t, "gram_new");
    size_t nb = np > 1 ? len[1] : 0;
    if (nb > 4096) nb = 4096;
    char *text = malloc(nb + 1);
    size_t n = 0;
    for (size_t i = 0; i < nb && !k2c_gram_done(g); i++) {
        uint8_t bm[32];
        k2c_gram_first_bytes(g, bm);
        int want = part[1][i], cnt = 0;
        for (int b = 0; b < 256; b++) cnt += allowed(bm, b);
        k2c_gram_copy(t, g);
        char c = (char)want;
        int ok = k2c_gram_feed(t, &c, 1) == 0;
        FZ_CHECK(!ok || allowed(bm, want), "byte 0x%02x feeds but is not in first_bytes after '%.*s'", want, (int)n, text);
        if (!ok) {
            if (!cnt) break;   /* only possible when accepting: nothing may follow */
            int k = want % cnt;
            for (want = 0; want < 256; want++) if (allowed(bm, want) && k-- == 0) break;
            k2c_gram_copy(t, g);
            c = (char)want;
            /* first_bytes may over-approximate; a byte it offers that does not feed is skipped */
            if (k2c_gram_feed(t, &c, 1) != 0) continue;
        }
        k2c_gram_copy(g, t);
        text[n++] = c;
        if ((i & 63) == 63) check_close(g, text, n);
    }
    check_close(g, text, n);
    k2c_gram_reset(g, s);
    free(text);
    free(t);
    k2c_gram_free(g);
    k2c_schema_free(s);
    return 0;
}
