/* tiktoken.model (BASE64 RANK per line) through k2c_tokenizer_load on the file. A tokenizer that loads
 * must encode any bytes (the input itself, with and without specials) and decode them back exactly. */
#include "fuzz_util.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write("tiktoken.model", data, size);
    k2c_tokenizer *t;
    if (k2c_tokenizer_load(&t, fz_path("tiktoken.model")) != 0) fz_rejected("k2c_tokenizer_load");
    else {
        fz_accepted("k2c_tokenizer_load");
        fz_tok_exercise(t, data, size > 256 ? 256 : size);
        k2c_tokenizer_free(t);
    }
    return 0;
}
