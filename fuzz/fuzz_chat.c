/* Chat template: k2c_chat_render on messages JSON [+ FZ_SEP + tools JSON], with and without the
 * generation prompt. The prompt must be a NUL-terminated string. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    int n = fz_split(data, size, part, len, 2);
    char *msgs = fz_strndup(part[0], len[0]), *tools = n > 1 ? fz_strndup(part[1], len[1]) : NULL;
    for (int gen = 0; gen < 2; gen++) {
        char *p = k2c_chat_render(msgs, tools, gen, "messages", "tools");
        if (!p) fz_rejected("k2c_chat_render");
        if (p) {
            FZ_CHECK(!gen || strlen(p) > 0, "empty prompt");
            free(p);
        }
    }
    free(msgs);
    free(tools);
    return 0;
}
