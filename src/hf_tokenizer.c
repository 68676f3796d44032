/* Hugging Face tokenizer.json (byte-level BPE). */
#include "tok_internal.h"

int tok_hf_load(k2c_tokenizer *t, const char *path) {
    (void)t;
    k2c_seterr("%s: not supported yet", path);
    return -1;
}
