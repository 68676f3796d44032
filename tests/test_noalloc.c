/* The forward pass allocates nothing after a state is made: decode steps, batched decode and prefills of up to
 * the state's workspace (both MLA forms) run on the workspace sized at k2c_state_init. Linked with
 * -Wl,--wrap=malloc (and calloc, realloc, aligned_alloc, posix_memalign): every call from libk2c's objects and
 * this file goes through the counters below while armed. Allocations inside shared libraries (libgomp,
 * OpenBLAS) are not seen. */
#include "model/model.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t al, size_t n);
int __real_posix_memalign(void **p, size_t al, size_t n);

static volatile int armed;
static volatile long nalloc;
static void count(void) { if (armed) __atomic_add_fetch(&nalloc, 1, __ATOMIC_RELAXED); }
static volatile int fail_malloc;    /* page_growth: the next malloc fails (an out-of-memory page) */
void *__wrap_malloc(size_t n) {
    count();
    if (fail_malloc) { fail_malloc = 0; return NULL; }
    return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b) { count(); return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { count(); return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t al, size_t n) { count(); return __real_aligned_alloc(al, n); }
int __wrap_posix_memalign(void **p, size_t al, size_t n) { count(); return __real_posix_memalign(p, al, n); }

static void arm(void) { nalloc = 0; armed = 1; }
static long disarm(void) { armed = 0; return nalloc; }

/* The counter sees an allocation (the check can fail). */
static void counter_works(void) {
    arm();
    void *volatile p = malloc(16);
    long n = disarm();
    free(p);
    EXPECT(n == 1, "malloc not counted (%ld): is the test linked with -Wl,--wrap=malloc?", n);
}

static void one(const char *dtype, int q_lora) {
    char dir[128];
    snprintf(dir, sizeof dir, "build/tests/noalloc_%s_%d", dtype, q_lora);
    k2c_config c;
    k2c_config_preset(&c, "k2-tiny");
    if (!q_lora) { c.q_lora_rank = 0; c.rope_yarn = 0; c.n_shared_experts = 2; }
    EXPECT(k2c_mkmodel(&c, dtype, 1, 11, dir) == 0, "%s: %s", dtype, k2c_errmsg());
    k2c_model m;
    if (k2c_model_load(&m, dir) != 0) { EXPECT(0, "%s load: %s", dtype, k2c_errmsg()); return; }
    int V = m.cfg.vocab_size, N = 96, ids[96];
    for (int i = 0; i < N; i++) ids[i] = (i * 37 + 5) % V;
    float *lg = malloc((size_t)N * V * sizeof *lg);
    k2c_state a, b;
    EXPECT(k2c_state_init(&a, &m, N) == 0 && k2c_state_init(&b, &m, N) == 0, "%s", k2c_errmsg());
    EXPECT(a.ws_tokens == N, "workspace of %d tokens, want %d", a.ws_tokens, N);
    /* the first calls: OpenMP's thread pool and anything else lazy */
    EXPECT(k2c_prefill(&a, ids, 6, lg, NULL, NULL) == 0 && k2c_decode(&a, ids[6], lg, NULL) == 0, "%s", k2c_errmsg());
    EXPECT(k2c_prefill(&b, ids, 3, NULL, lg, NULL) == 0, "%s", k2c_errmsg());
    long n_dec, n_batch, n_pre[3];
    arm();
    for (int t = 0; t < 8; t++) EXPECT(k2c_decode(&a, ids[7 + t], lg, NULL) == 0, "%s", k2c_errmsg());
    n_dec = disarm();
    k2c_state *both[2] = {&a, &b};
    int two[2] = {1, 2};
    arm();
    for (int t = 0; t < 4; t++) EXPECT(k2c_decode_batch(both, two, 2, lg) == 0, "%s", k2c_errmsg());
    n_batch = disarm();
    /* a server step: a decode of a with chunks of b's prompt in the same pass (k2c_decode_batch_prefill) */
    long n_step;
    k2c_state *one_st[1] = {&a};
    arm();
    for (int t = 0; t < 4; t++) EXPECT(k2c_decode_batch_prefill(one_st, two, 1, &b, ids + 3 + 4 * t, 4, lg, lg + V) == 0, "%s", k2c_errmsg());
    n_step = disarm();
    /* prefills filling the whole workspace (and context): chosen form, absorbed, expanded */
    for (int path = 0; path < 3; path++) {
        m.prefill_path = path;
        k2c_state_reset(&a);
        arm();
        EXPECT(k2c_prefill(&a, ids, N, lg, lg, NULL) == 0, "path %d: %s", path, k2c_errmsg());
        n_pre[path] = disarm();
    }
    m.prefill_path = 0;
    EXPECT(n_dec == 0, "%s: %ld allocations in 8 decode steps", dtype, n_dec);
    EXPECT(n_batch == 0, "%s: %ld allocations in 4 batched decode steps", dtype, n_batch);
    EXPECT(n_step == 0, "%s: %ld allocations in 4 decode steps with a prompt chunk", dtype, n_step);
    for (int p = 0; p < 3; p++) EXPECT(n_pre[p] == 0, "%s: %ld allocations in a %d-token prefill (path %d)", dtype, n_pre[p], N, p);
    free(lg);
    k2c_state_free(&a);
    k2c_state_free(&b);
    k2c_model_free(&m);
}

/* A decode batch larger than the first state's workspace runs in turns of K2C_DECODE_BATCH_MAX: same logits as
 * one state at a time, still no allocation. */
static void batch_turns(void) {
    const char *dir = "build/tests/noalloc_bf16_1";     /* written by noalloc_bf16 */
    k2c_model m;
    if (k2c_model_load(&m, dir) != 0) { EXPECT(0, "load: %s", k2c_errmsg()); return; }
    enum { N = K2C_DECODE_BATCH_MAX + 6 };
    int V = m.cfg.vocab_size, ids[N];
    k2c_state *ss[N];
    float *lg = malloc((size_t)N * V * sizeof *lg), *one_lg = malloc((size_t)V * sizeof *one_lg);
    for (int i = 0; i < N; i++) { ids[i] = (i * 13 + 1) % V; ss[i] = k2c_state_new(&m, 8); }
    EXPECT(ss[0]->ws_tokens == K2C_DECODE_BATCH_MAX, "workspace of %d tokens", ss[0]->ws_tokens);
    EXPECT(k2c_decode(ss[0], ids[0], one_lg, NULL) == 0, "%s", k2c_errmsg());    /* warm-up */
    for (int i = 0; i < N; i++) {
        k2c_state_reset(ss[i]);
        EXPECT(k2c_state_reserve(ss[i], 1) == 0, "%s", k2c_errmsg());    /* each state's first cache page */
    }
    arm();
    int rc = k2c_decode_batch(ss, ids, N, lg);
    long n = disarm();
    EXPECT(rc == 0, "%s", k2c_errmsg());
    EXPECT(n == 0, "%ld allocations in a decode batch of %d states", n, N);
    float worst = 0, mx = 0;
    for (int i = 0; i < N; i += 7) {
        k2c_state_reset(ss[i]);
        k2c_decode(ss[i], ids[i], one_lg, NULL);
        for (int v = 0; v < V; v++) {
            mx = fmaxf(mx, fabsf(one_lg[v]));
            worst = fmaxf(worst, fabsf(one_lg[v] - lg[(size_t)i * V + v]));
        }
    }
    EXPECT(mx > 0 && worst / mx < 1e-4f, "batched in turns vs one at a time: rel err %g", worst / mx);
    for (int i = 0; i < N; i++) k2c_state_delete(ss[i]);
    free(lg); free(one_lg);
    k2c_model_free(&m);
}

/* The cache grows a page (K2C_PAGE positions of every layer) at a time: decode steps that cross into a new page
 * make exactly one allocation, the steps inside a page none; a reset keeps the pages (a second pass allocates
 * nothing), and a page that cannot be had is an error that leaves the state as it was. */
static void page_growth(void) {
    const char *dir = "build/tests/noalloc_bf16_1";     /* written by noalloc_bf16 */
    k2c_model m;
    if (k2c_model_load(&m, dir) != 0) { EXPECT(0, "load: %s", k2c_errmsg()); return; }
    int V = m.cfg.vocab_size, N = K2C_PAGE + 8;
    float *lg = malloc((size_t)V * sizeof *lg);
    k2c_state s;
    EXPECT(k2c_state_init(&s, &m, 2 * K2C_PAGE) == 0, "%s", k2c_errmsg());
    EXPECT(k2c_state_cache_bytes(&s) == 0, "a new state holds %zu cache bytes", k2c_state_cache_bytes(&s));
    EXPECT(k2c_decode(&s, 1, lg, NULL) == 0, "%s", k2c_errmsg());     /* warm-up, and the first page */
    EXPECT(k2c_state_cache_bytes(&s) == k2c_cache_bytes(&m.cfg, m.cache_type, 1), "one page: %zu bytes", k2c_state_cache_bytes(&s));
    long per[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        k2c_state_reset(&s);
        arm();
        for (int t = 0; t < N; t++) EXPECT(k2c_decode(&s, (t * 7 + 3) % V, lg, NULL) == 0, "%s", k2c_errmsg());
        per[pass] = disarm();
    }
    EXPECT(per[0] == 1, "%ld allocations in %d decode steps across a page boundary (want 1: the new page)", per[0], N);
    EXPECT(per[1] == 0, "%ld allocations when the pages are already held", per[1]);
    EXPECT(k2c_state_cache_bytes(&s) == k2c_cache_bytes(&m.cfg, m.cache_type, N) &&
           k2c_state_cache_bytes(&s) == 2 * (size_t)K2C_PAGE * m.cfg.num_hidden_layers * k2c_state_row_bytes(&s),
           "%zu bytes for %d positions", k2c_state_cache_bytes(&s), N);
    /* a page that cannot be allocated: the step fails with the reason and leaves the state as it was */
    k2c_state t;
    EXPECT(k2c_state_init(&t, &m, 2 * K2C_PAGE) == 0, "%s", k2c_errmsg());
    fail_malloc = 1;
    EXPECT(k2c_decode(&t, 1, lg, NULL) != 0 && strstr(k2c_errmsg(), "out of memory for the latent cache"),
           "a failed page: %s", k2c_errmsg());
    EXPECT(k2c_state_pos(&t) == 0 && k2c_state_cache_bytes(&t) == 0, "a failed page changed the state");
    EXPECT(k2c_decode(&t, 1, lg, NULL) == 0 && k2c_state_pos(&t) == 1, "after a failed page: %s", k2c_errmsg());
    k2c_state_free(&t);
    /* the context is full at max_ctx: an error, nothing changed */
    int pos = k2c_state_pos(&s);
    EXPECT(k2c_state_reserve(&s, 2 * K2C_PAGE + 1) != 0 && strstr(k2c_errmsg(), "context full"), "reserve past max_ctx: %s", k2c_errmsg());
    EXPECT(k2c_state_pos(&s) == pos, "a failed reserve moved the state");
    k2c_state_free(&s);
    free(lg);
    k2c_model_free(&m);
}

static void bf16(void) { one("bf16", 1); }
static void int4(void) { one("int4", 1); }
static void fp8_q_proj(void) { one("fp8", 0); }

int main(void) {
    run_test("noalloc_counter", counter_works);
    run_test("noalloc_bf16", bf16);
    run_test("noalloc_batch_in_turns", batch_turns);
    run_test("noalloc_page_growth", page_growth);
    run_test("noalloc_int4", int4);
    run_test("noalloc_fp8_q_proj", fp8_q_proj);
    return check_exit();
}
