/* config.json: k2c_config_parse on the input text. An accepted config must survive the round trip
 * through k2c_config_to_json (the same fields again, accepted again) and describe positive sizes. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fz_strndup(data, size);
    k2c_config c, c2;
    memset(&c, 0, sizeof c);
    if (k2c_config_parse(&c, text, "config.json") != 0) fz_rejected("k2c_config_parse");
    else {
        fz_accepted("k2c_config_parse");
        FZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.num_hidden_layers > 0 && c.num_attention_heads > 0,
                 "accepted config with V=%d D=%d L=%d H=%d", c.vocab_size, c.hidden_size, c.num_hidden_layers,
                 c.num_attention_heads);
        for (int l = 0; l < c.num_hidden_layers && l < 4096; l++) (void)k2c_config_is_moe_layer(&c, l);
        char *j = k2c_config_to_json(&c);
        FZ_CHECK(j != NULL, "to_json failed");
        memset(&c2, 0, sizeof c2);
        FZ_CHECK(k2c_config_parse(&c2, j, "roundtrip") == 0, "own output rejected: %s\n%s", k2c_errmsg(), j);
        char *j2 = k2c_config_to_json(&c2);
        FZ_CHECK(j2 && !strcmp(j, j2), "round trip differs:\n%s\n%s", j, j2 ? j2 : "(null)");
        free(j);
        free(j2);
    }
    free(text);
    return 0;
}
