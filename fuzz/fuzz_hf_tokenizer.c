/* Hugging Face tokenizer.json (byte-level BPE: model.vocab, model.merges, added_tokens, pre_tokenizer
 * Split regexes), optionally followed by FZ_SEP and a tokenizer_config.json, through k2c_tokenizer_load
 * on the folder. */
#include "fuzz_util.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    int n = fz_split(data, size, part, len, 2);
    fz_write("tokenizer.json", part[0], len[0]);
    if (n > 1) fz_write("tokenizer_config.json", part[1], len[1]);
    else fz_unlink("tokenizer_config.json");
    k2c_tokenizer *t;
    if (k2c_tokenizer_load(&t, fz_dir()) != 0) fz_rejected("k2c_tokenizer_load");
    else {
        fz_accepted("k2c_tokenizer_load");
        fz_tok_exercise(t, part[0], len[0] > 256 ? 256 : len[0]);
        k2c_tokenizer_free(t);
    }
    return 0;
}
