/* Hard limits that must be clear errors rather than gigabytes, hangs or crashes (issue 11 point 4, found
 * with the fuzz/ harnesses): token ids past 2^24 in every tokenizer file, read_file on a FIFO, the
 * request-size check, and the in-memory safetensors parser the fuzzer drives. */
#include "serve/serve.h"
#include "check.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[512];

static char *dir_with(const char *name, const char *file, const char *text) {
    char *d = k2c_path_join(tmpdir, name);
    mkdir(d, 0755);
    char *p = k2c_path_join(d, file);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
    free(p);
    return d;
}

static void expect_tok_error(const char *name, const char *file, const char *text, const char *want) {
    char *d = dir_with(name, file, text);
    k2c_tokenizer *t = NULL;
    int rc = k2c_tokenizer_load(&t, d);
    EXPECT(rc == -1 && strstr(k2c_errmsg(), want), "%s: rc %d, '%s' (want '%s')", name, rc, rc ? k2c_errmsg() : "", want);
    if (rc == 0) k2c_tokenizer_free(t);
    free(d);
}

/* A rank of 10^9 used to size an 8 GB id table; now every id is below 2^24. */
static void huge_token_ids(void) {
    expect_tok_error("rank", "tiktoken.model", "QQ== 0\nQg== 1000000000\n", "rank '1000000000' is too large");
    expect_tok_error("rank_digits", "tiktoken.model", "QQ== 99999999999999999999999\n", "is too large");
    expect_tok_error("rank_limit", "tiktoken.model", "QQ== 16777216\n", "is too large");
    char *d = dir_with("cfg", "tiktoken.model", "QQ== 0\nQg== 1\n");
    char *p = k2c_path_join(d, "tokenizer_config.json");
    FILE *f = fopen(p, "wb");
    fputs("{\"added_tokens_decoder\": {\"1000000000\": {\"content\": \"<|x|>\"}}}", f);
    fclose(f);
    k2c_tokenizer *t = NULL;
    int rc = k2c_tokenizer_load(&t, d);
    EXPECT(rc == -1 && strstr(k2c_errmsg(), "added_tokens_decoder.1000000000: token id is too large"), "rc %d: %s", rc, rc ? k2c_errmsg() : "");
    if (rc == 0) k2c_tokenizer_free(t);
    free(p);
    free(d);
    expect_tok_error("hf_vocab", "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 536870912}, \"merges\": []}}",
                     "model.vocab.a: id is not an integer in 0 .. 16777215");
    expect_tok_error("hf_added", "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                     " \"added_tokens\": [{\"id\": 100000000, \"content\": \"<s>\"}]}", "added_tokens[0]: want {\"id\": INT below 16777216");
    /* found by fuzz_hf_tokenizer: an empty vocab key (memcpy onto a NULL arena, UB) */
    expect_tok_error("hf_empty", "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\": 0, \"a\": 1}, \"merges\": []}}",
                     "model.vocab: empty token (id 0)");
    /* the largest id that is allowed still loads */
    d = dir_with("rank_ok", "tiktoken.model", "QQ== 0\nQg== 1000\n");
    rc = k2c_tokenizer_load(&t, d);
    EXPECT(rc == 0 && k2c_tokenizer_vocab_size(t) == 1001, "rc %d: %s", rc, rc ? k2c_errmsg() : "");
    if (rc == 0) k2c_tokenizer_free(t);
    free(d);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "FAIL read_file_fifo (blocked on the FIFO)\n";
    if (write(1, m, sizeof m - 1) < 0) {}
    _exit(1);
}

/* read_file on a FIFO used to block in open() until a writer came. */
static void read_file_fifo(void) {
    char *wd = k2c_path_join(tmpdir, "agentwd");
    mkdir(wd, 0755);
    char *fifo = k2c_path_join(wd, "pipe");
    EXPECT(mkfifo(fifo, 0644) == 0, "mkfifo");
    signal(SIGALRM, on_alarm);
    alarm(10);
    int is_error = 0;
    char *out = k2c_builtin_tool(wd, "read_file", "{\"path\": \"pipe\"}", &is_error);
    alarm(0);
    EXPECT(!out && is_error && strstr(k2c_errmsg(), "not a regular file (a FIFO)"), "out %s, error '%s'", out ? out : "NULL", k2c_errmsg());
    free(out);
    /* list_dir and write_file next to it still work, and a regular file still reads */
    out = k2c_builtin_tool(wd, "write_file", "{\"path\": \"a.txt\", \"content\": \"hi\"}", &is_error);
    EXPECT(out && !is_error, "write: %s", out ? out : k2c_errmsg());
    free(out);
    out = k2c_builtin_tool(wd, "read_file", "{\"path\": \"a.txt\"}", &is_error);
    EXPECT(out && !is_error && !strcmp(out, "hi"), "read: %s", out ? out : k2c_errmsg());
    free(out);
    unlink(fifo);
    free(fifo);
    free(wd);
}

/* The Content-Length check the server applies before reading a body. */
static void body_cap(void) {
    EXPECT(!srv_length_over_cap(NULL, 1024), "absent");
    EXPECT(!srv_length_over_cap("1024", 1024), "at the cap");
    EXPECT(srv_length_over_cap("1025", 1024), "one over");
    EXPECT(srv_length_over_cap("10737418240", 1 << 20), "10 GB");
    EXPECT(srv_length_over_cap("99999999999999999999999999", 1 << 20), "more digits than uint64");
    EXPECT(!srv_length_over_cap(" 12", 1024), "leading blank");
}

/* k2c_st_parse: the header checks on an image in memory, as the fuzz harness drives them. */
static void st_parse_memory(void) {
    static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t img[8 + sizeof hdr - 1 + 8];
    size_t h = sizeof hdr - 1;
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(img + 8, hdr, h);
    memset(img + 8 + h, 7, 8);
    k2c_safetensors st;
    EXPECT(k2c_st_parse(&st, "mem", img, sizeof img) == 0, "%s", k2c_errmsg());
    const k2c_tensor *t = k2c_st_find(&st, "a");
    EXPECT(t && t->data == img + 8 + h && t->nbytes == 8 && t->file == NULL, "tensor a");
    k2c_st_close(&st);
    EXPECT(k2c_st_parse(&st, "mem", img, sizeof img - 1) == -1 && strstr(k2c_errmsg(), "mem: tensor 'a'"), "%s", k2c_errmsg());
    EXPECT(st.ntensors == 0 && st.tensors == NULL, "failed parse leaves nothing");
    EXPECT(k2c_st_parse(&st, "mem", img, 5) == -1 && strstr(k2c_errmsg(), "too short"), "%s", k2c_errmsg());
    /* found by fuzz_safetensors: a header with no tensors sorted a NULL array (UB under UBSan) */
    static const char meta[] = "{\"__metadata__\":{}}";
    uint8_t img2[8 + sizeof meta - 1];
    memset(img2, 0, 8);
    img2[0] = (uint8_t)(sizeof meta - 1);
    memcpy(img2 + 8, meta, sizeof meta - 1);
    EXPECT(k2c_st_parse(&st, "mem", img2, sizeof img2) == 0 && st.ntensors == 0 && !k2c_st_find(&st, "a"), "%s", k2c_errmsg());
    k2c_st_close(&st);
}

/* found by fuzz_st_index: an empty weight_map sorted a NULL tensor array; now a clear error */
static void empty_weight_map(void) {
    char *d = dir_with("emptyidx", "model.safetensors.index.json", "{\"weight_map\": {}}");
    k2c_safetensors st;
    EXPECT(k2c_st_open(&st, d) == -1 && strstr(k2c_errmsg(), "\"weight_map\" lists no tensors"), "%s", k2c_errmsg());
    free(d);
}

/* found by fuzz_toolparse: whitespace inside a tool-call section was dropped when it came in a piece
 * of its own and kept when it came with stray text, so the content depended on the cut points */
static void toolparse_cut_points(void) {
    const char *text = "x<|tool_calls_section_begin|> a b <|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{}"
                       "<|tool_call_end|>  \n <|tool_calls_section_end|>tail";
    char *want = NULL;
    for (size_t step = 0; step <= 3; step++) {
        k2c_toolparse *p = k2c_toolparse_new();
        size_t n = strlen(text);
        for (size_t off = 0; off < n;) {
            size_t k = step ? step : n;
            if (k > n - off) k = n - off;
            k2c_toolparse_feed(p, text + off, k, NULL);
            off += k;
        }
        k2c_toolparse_finish(p, NULL);
        size_t cl;
        const char *c = k2c_toolparse_content(p, &cl);
        if (!want) {
            want = strndup(c, cl);
            EXPECT(!strcmp(want, "x a b tail") && k2c_toolparse_ncalls(p) == 1, "whole: '%s'", want);
        } else EXPECT(strlen(want) == cl && !memcmp(want, c, cl), "pieces of %zu: '%.*s' vs '%s'", step, (int)cl, c, want);
        k2c_toolparse_free(p);
    }
    free(want);
}

int main(void) {
    const char *base = getenv("K2C_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_limits.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) { perror(tmpdir); return 1; }
    run_test("huge_token_ids", huge_token_ids);
    run_test("read_file_fifo", read_file_fifo);
    run_test("body_cap", body_cap);
    run_test("st_parse_memory", st_parse_memory);
    run_test("empty_weight_map", empty_weight_map);
    run_test("toolparse_cut_points", toolparse_cut_points);
    return check_exit();
}
