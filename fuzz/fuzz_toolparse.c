/* Tool-call parser: the input (after 8 bytes that seed the cut points) is fed to k2c_toolparse_feed in
 * random pieces (1..16 bytes, sometimes 1), then finished. Checks: the result (content, calls, flags) is
 * the same as when the whole text is fed at once, the streamed content events add up to the content,
 * and each call's argument deltas add up to its arguments. */
#include "fuzz_util.h"

typedef struct { char *s; size_t n, cap; } sb;
static void sb_add(sb *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

#define MAXC 64
typedef struct { sb content; sb args[MAXC]; int named[MAXC]; } evlog;

static void take(evlog *L, const k2c_tool_events *ev) {
    if (ev->content_len) sb_add(&L->content, ev->content, ev->content_len);
    for (int i = 0; i < ev->ndeltas; i++) {
        const k2c_tool_delta *d = &ev->deltas[i];
        FZ_CHECK(d->index >= 0, "negative delta index");
        if (d->index >= MAXC) continue;
        if (d->name) L->named[d->index] = 1;
        if (d->args_len) sb_add(&L->args[d->index], d->args, d->args_len);
    }
}

static char *result(k2c_toolparse *p) {
    size_t cl;
    const char *c = k2c_toolparse_content(p, &cl);
    char *calls = k2c_toolparse_json(p);   /* NULL (documented) when a call holds invalid UTF-8 */
    if (!calls) calls = strdup("(not representable)");
    sb r = {0};
    char hdr[64];
    snprintf(hdr, sizeof hdr, "flags %d ncalls %d\n", k2c_toolparse_flags(p), k2c_toolparse_ncalls(p));
    sb_add(&r, hdr, strlen(hdr));
    sb_add(&r, c ? c : "", c ? cl : 0);
    sb_add(&r, "\n", 1);
    sb_add(&r, calls, strlen(calls));
    for (int i = 0; i < k2c_toolparse_ncalls(p); i++) {
        const k2c_tool_call *tc = k2c_toolparse_call(p, i);
        snprintf(hdr, sizeof hdr, "\n%d %d ", tc->index, tc->flags);
        sb_add(&r, hdr, strlen(hdr));
        if (tc->name) sb_add(&r, tc->name, strlen(tc->name));
    }
    free(calls);
    return r.s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t seed = 0;
    for (size_t i = 0; i < 8 && i < size; i++) seed = seed << 8 | data[i];
    const char *text = (const char *)data + (size < 8 ? size : 8);
    size_t n = size < 8 ? 0 : size - 8;

    k2c_toolparse *whole = k2c_toolparse_new(), *cut = k2c_toolparse_new();
    if (!whole || !cut) abort();
    k2c_tool_events ev;
    FZ_CHECK(k2c_toolparse_feed(whole, text, n, NULL) == 0, "feed");
    FZ_CHECK(k2c_toolparse_finish(whole, NULL) == 0, "finish");

    evlog *L = calloc(1, sizeof *L);
    int small = seed & 1;
    for (size_t off = 0; off < n;) {
        size_t k = small ? 1 + fz_rand(&seed) % 3 : 1 + fz_rand(&seed) % 16;
        if (k > n - off) k = n - off;
        memset(&ev, 0, sizeof ev);
        FZ_CHECK(k2c_toolparse_feed(cut, text + off, k, &ev) == 0, "feed piece");
        take(L, &ev);
        off += k;
    }
    memset(&ev, 0, sizeof ev);
    FZ_CHECK(k2c_toolparse_finish(cut, &ev) == 0, "finish");
    take(L, &ev);

    char *a = result(whole), *b = result(cut);
    FZ_CHECK(!strcmp(a, b), "pieces change the result:\n--- whole\n%s\n--- pieces\n%s", a, b);
    size_t cl;
    const char *c = k2c_toolparse_content(cut, &cl);
    FZ_CHECK(cl == L->content.n && (!cl || !memcmp(c, L->content.s, cl)), "content events (%zu bytes) != content (%zu)", L->content.n, cl);
    for (int i = 0; i < k2c_toolparse_ncalls(cut) && i < MAXC; i++) {
        const k2c_tool_call *tc = k2c_toolparse_call(cut, i);
        const char *args = tc->arguments ? tc->arguments : "";
        /* arguments is a C string: a NUL byte in the model output ends it there, while the streamed
         * deltas carry every byte (known, not fixed: only a NUL byte token can cause it) */
        size_t al = strlen(args);
        FZ_CHECK((al == L->args[i].n || (al < L->args[i].n && L->args[i].s[al] == 0)) && !memcmp(args, L->args[i].s ? L->args[i].s : "", al),
                 "call %d: argument deltas '%s' != arguments '%s'", i, L->args[i].s ? L->args[i].s : "", args);
    }
    free(a);
    free(b);
    free(L->content.s);
    for (int i = 0; i < MAXC; i++) free(L->args[i].s);
    free(L);
    k2c_toolparse_free(whole);
    k2c_toolparse_free(cut);
    return 0;
}
