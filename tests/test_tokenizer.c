/* Tokenizer on hand-made vocabularies: merge order, specials, decode, streaming decode, invalid UTF-8,
 * malformed files, the BPE trainer, tokenizer.json, and token-id feeding of the tool-call parser.
 * (Exactness against tiktoken on a real 200k vocabulary: tests/test_tokenizer_oracle.sh.) */
#include "text/text.h"
#include "check.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[512];

static void write_text(const char *dir, const char *name, const char *text) {
    char *p = k2c_path_join(dir, name);
    FILE *f = fopen(p, "wb");
    if (f) { fputs(text, f); fclose(f); }
    free(p);
}

static char *make_dir(const char *name) {
    char *d = k2c_path_join(tmpdir, name);
    mkdir(d, 0755);
    return d;
}

/* 256 byte tokens (rank = byte) + "ab" 256, "abc" 257, "aa" 258; specials 259.. */
static char *small_model(const char *extra_lines) {
    static char buf[65536];
    size_t o = 0;
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int b = 0; b < 256; b++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%c%c== %d\n", abc[b >> 2], abc[(b & 3) << 4], b);
    o += (size_t)snprintf(buf + o, sizeof buf - o, "YWI= 256\nYWJj 257\nYWE= 258\n%s", extra_lines ? extra_lines : "");
    return buf;
}

static const char *small_config =
    "{\"added_tokens_decoder\": {\"259\": {\"content\": \"<|im_end|>\", \"special\": true},"
    " \"260\": {\"content\": \"[BOS]\"}, \"261\": {\"content\": \"<|im_end|>x\"}},"
    " \"bos_token\": \"[BOS]\", \"eos_token\": {\"content\": \"<|im_end|>\"}, \"chat_template\": \"...<|im_middle|>...\"}";

static k2c_tokenizer *small_tok(void) {
    char *d = make_dir("small");
    write_text(d, "tiktoken.model", small_model(NULL));
    write_text(d, "tokenizer_config.json", small_config);
    k2c_tokenizer *t = NULL;
    if (k2c_tokenizer_load(&t, d) != 0) EXPECT(0, "load: %s", k2c_errmsg());
    free(d);
    return t;
}

static int encode_eq(const k2c_tokenizer *t, const char *text, size_t len, int special, const int *want, int nwant) {
    int *ids = NULL, n = 0;
    if (k2c_tokenizer_encode(t, text, len, special, &ids, &n) != 0) { printf("  encode: %s\n", k2c_errmsg()); return 0; }
    int ok = n == nwant && (n == 0 || !memcmp(ids, want, (size_t)n * sizeof *ids));
    if (!ok) {
        printf("  '%.40s' ->", text);
        for (int i = 0; i < n && i < 20; i++) printf(" %d", ids[i]);
        printf(" (n=%d)\n", n);
    }
    free(ids);
    return ok;
}

static void merge_order_and_specials(void) {
    k2c_tokenizer *t = small_tok();
    if (!t) return;
    EXPECT(k2c_tokenizer_vocab_size(t) == 262, "vocab %d", k2c_tokenizer_vocab_size(t));
    EXPECT(encode_eq(t, "abcab", 5, 1, (int[]){257, 256}, 2), "abcab");          /* leftmost ab first, then abc */
    EXPECT(encode_eq(t, "aaa", 3, 1, (int[]){258, 'a'}, 2), "aaa");               /* tie: the leftmost pair */
    EXPECT(encode_eq(t, "ab", 2, 1, (int[]){256}, 1), "ab whole");
    EXPECT(encode_eq(t, "", 0, 1, NULL, 0), "empty");
    EXPECT(encode_eq(t, "x<|im_end|>xy[BOS]", 18, 1, (int[]){'x', 261, 'y', 260}, 4), "specials, longest wins");
    EXPECT(encode_eq(t, "<|im_end|>", 10, 0, (int[]){'<', '|', 'i', 'm', '_', 'e', 'n', 'd', '|', '>'}, 10), "specials off");
    EXPECT(k2c_tokenizer_token_id(t, "<|im_end|>") == 259 && k2c_tokenizer_token_id(t, "abc") == 257 &&
           k2c_tokenizer_token_id(t, "nope!") == -1, "token_id");
    EXPECT(k2c_tokenizer_bos(t) == 260 && k2c_tokenizer_eos(t) == 259 && k2c_tokenizer_has_kimi_template(t), "bos/eos/template");
    EXPECT(k2c_tokenizer_is_special(t, 259) && !k2c_tokenizer_is_special(t, 257), "is_special");
    size_t len;
    char *s = k2c_tokenizer_decode(t, (int[]){257, 259, 'z', 0}, 4, &len);
    EXPECT(s && len == 15 && !memcmp(s, "abc<|im_end|>z\0", 15), "decode");
    free(s);
    EXPECT(k2c_tokenizer_decode(t, (int[]){1, 262}, 2, NULL) == NULL && strstr(k2c_errmsg(), "262"), "bad id: %s", k2c_errmsg());
    EXPECT(k2c_tokenizer_decode(t, (int[]){-5}, 1, NULL) == NULL, "negative id");
    /* a 30,000-letter word: cut after 25,000 characters, each part merged with the heap */
    char *big = malloc(30001);
    memset(big, 'a', 30000);
    int *ids = NULL, n = 0;
    EXPECT(k2c_tokenizer_encode(t, big, 30000, 1, &ids, &n) == 0 && n == 15000 && ids[0] == 258 && ids[n - 1] == 258, "long word n=%d", n);
    free(ids);
    free(big);
    k2c_tokenizer_free(t);
}

static void invalid_utf8(void) {
    k2c_tokenizer *t = small_tok();
    if (!t) return;
    /* invalid bytes are pieces of their own: their byte tokens; valid text around them as usual */
    const char bad[] = "ab\xff" "ab \xe4\xb8 \xc0\xaf";
    EXPECT(encode_eq(t, bad, sizeof bad - 1, 1, (int[]){256, 0xff, 256, ' ', 0xe4, 0xb8, ' ', 0xc0, 0xaf}, 9), "invalid utf-8");
    int *ids = NULL, n = 0;
    EXPECT(k2c_tokenizer_encode(t, bad, sizeof bad - 1, 1, &ids, &n) == 0, "%s", k2c_errmsg());
    size_t len;
    char *s = k2c_tokenizer_decode(t, ids, n, &len);
    EXPECT(s && len == sizeof bad - 1 && !memcmp(s, bad, len), "roundtrip");
    free(s);
    free(ids);
    k2c_tokenizer_free(t);
}

static void streaming_decode(void) {
    k2c_tokenizer *t = small_tok();
    if (!t) return;
    const char *text = "h\xc3\xa9llo \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80!";
    int *ids = NULL, n = 0;
    k2c_tokenizer_encode(t, text, strlen(text), 1, &ids, &n);
    EXPECT(n == (int)strlen(text), "byte tokens: n %d", n);     /* no merges apply: one token per byte */
    k2c_detok d;
    k2c_detok_init(&d, t);
    char out[256] = "";
    int partial = 0;
    for (int i = 0; i < n; i++) {
        const char *s;
        size_t l;
        EXPECT(k2c_detok_push(&d, ids[i], &s, &l) == 0, "push");
        if (l && (unsigned char)s[l - 1] >= 0xC0) partial = 1;    /* a lead byte at the end: a split character */
        for (size_t k = 0; k < l; k++)
            if (l && k + 1 == l && (unsigned char)s[k] >= 0x80 && (s[k] & 0xC0) != 0x80) partial = 1;
        strncat(out, s, l);
    }
    const char *s;
    size_t l;
    k2c_detok_flush(&d, &s, &l);
    EXPECT(l == 0, "nothing left over");
    EXPECT(!partial, "emitted a partial character");
    EXPECT(!strcmp(out, text), "stream '%s'", out);
    /* invalid bytes pass through at once; a lead byte waits, then goes out with what follows */
    EXPECT(k2c_detok_push(&d, 0xff, &s, &l) == 0 && l == 1 && (unsigned char)s[0] == 0xff, "0xff");
    EXPECT(k2c_detok_push(&d, 0xe4, &s, &l) == 0 && l == 0, "lead held");
    EXPECT(k2c_detok_push(&d, 'a', &s, &l) == 0 && l == 2 && !memcmp(s, "\xe4" "a", 2), "lead released");
    EXPECT(k2c_detok_push(&d, 0xf0, &s, &l) == 0 && l == 0, "4-byte lead held");
    k2c_detok_flush(&d, &s, &l);
    EXPECT(l == 1 && (unsigned char)s[0] == 0xf0, "flush releases");
    EXPECT(k2c_detok_push(&d, 99999, &s, &l) == -1, "bad id");
    k2c_detok_free(&d);
    free(ids);
    k2c_tokenizer_free(t);
}

static void expect_load_error(const char *name, const char *model, const char *config, const char *needle1, const char *needle2) {
    char *d = make_dir(name);
    if (model) write_text(d, "tiktoken.model", model);
    if (config) write_text(d, "tokenizer_config.json", config);
    k2c_tokenizer *t = NULL;
    int rc = k2c_tokenizer_load(&t, d);
    EXPECT(rc == -1 && t == NULL, "%s: loaded", name);
    EXPECT(strstr(k2c_errmsg(), needle1) && strstr(k2c_errmsg(), needle2), "%s: error '%s' lacks '%s' / '%s'", name, k2c_errmsg(), needle1, needle2);
    free(d);
}

static void bad_files(void) {
    char m[70000];
    snprintf(m, sizeof m, "%sQUJD!! 300\n", small_model(NULL));
    expect_load_error("b64", m, NULL, "tiktoken.model:260", "bad base64");
    snprintf(m, sizeof m, "%sQUJD 257\n", small_model(NULL));
    expect_load_error("duprank", m, NULL, "tiktoken.model:260", "duplicate rank 257");
    snprintf(m, sizeof m, "%sQUJD\n", small_model(NULL));
    expect_load_error("norank", m, NULL, "tiktoken.model:260", "missing rank");
    snprintf(m, sizeof m, "%sQUJD 12x\n", small_model(NULL));
    expect_load_error("badrank", m, NULL, "tiktoken.model:260", "bad rank");
    snprintf(m, sizeof m, "%sYWI= 300\n", small_model(NULL));
    expect_load_error("duptoken", m, NULL, "tiktoken.model:260", "already has rank 256");
    expect_load_error("empty", "", NULL, "tiktoken.model", "no tokens");
    expect_load_error("cfgjson", small_model(NULL), "{\"added_tokens_decoder\": {", "tokenizer_config.json", "bad JSON");
    expect_load_error("cfgobj", small_model(NULL), "{\"added_tokens_decoder\": []}", "tokenizer_config.json", "added_tokens_decoder");
    expect_load_error("cfgkey", small_model(NULL), "{\"added_tokens_decoder\": {\"x1\": {\"content\": \"a\"}}}", "tokenizer_config.json", "added_tokens_decoder.x1");
    expect_load_error("cfgcontent", small_model(NULL), "{\"added_tokens_decoder\": {\"300\": {\"x\": 1}}}", "tokenizer_config.json", "added_tokens_decoder.300.content");
    expect_load_error("cfgclash", small_model(NULL), "{\"added_tokens_decoder\": {\"256\": {\"content\": \"<s>\"}}}", "added_tokens_decoder.256", "collides");
    expect_load_error("nothing", NULL, NULL, "no tiktoken.model or tokenizer.json", "nothing");
}

static void trainer(void) {
    char *d = make_dir("trained");
    const char *files[] = {"tests/data/tokenizer_corpus.txt"};
    EXPECT(k2c_bpe_train(files, 1, 1000, d) == 0, "train: %s", k2c_errmsg());
    k2c_tokenizer *t = NULL;
    if (k2c_tokenizer_load(&t, d) != 0) { EXPECT(0, "load trained: %s", k2c_errmsg()); free(d); return; }
    EXPECT(k2c_tokenizer_vocab_size(t) == 1256, "vocab %d", k2c_tokenizer_vocab_size(t));
    struct { const char *name; int off; } sp[] = {
        {"[BOS]", 0}, {"[EOS]", 1}, {"<|im_end|>", 2}, {"<|im_user|>", 3}, {"<|im_assistant|>", 4},
        {"<|start_header_id|>", 6}, {"<|end_header_id|>", 7}, {"[EOT]", 9}, {"<|im_system|>", 10},
        {"<|tool_calls_section_begin|>", 11}, {"<|tool_calls_section_end|>", 12}, {"<|tool_call_begin|>", 13},
        {"<|tool_call_argument_begin|>", 14}, {"<|tool_call_end|>", 15}, {"<|im_middle|>", 17}, {"[UNK]", 254},
        {"[PAD]", 255}, {"<|reserved_token_1005|>", 5}, {"<|reserved_token_1253|>", 253},
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        EXPECT(k2c_tokenizer_token_id(t, sp[i].name) == 1000 + sp[i].off, "%s -> %d", sp[i].name, k2c_tokenizer_token_id(t, sp[i].name));
    EXPECT(k2c_tokenizer_bos(t) == 1000 && k2c_tokenizer_eos(t) == 1001 && k2c_tokenizer_has_kimi_template(t), "bos/eos/template");
    size_t len;
    char *text = k2c_read_file("tests/data/tokenizer_corpus.txt", &len);
    int *ids = NULL, n = 0;
    EXPECT(text && k2c_tokenizer_encode(t, text, len, 0, &ids, &n) == 0, "encode: %s", k2c_errmsg());
    EXPECT(n > 0 && (size_t)n < len * 2 / 3, "merges compress: %d ids for %zu bytes", n, len);
    size_t dl;
    char *back = k2c_tokenizer_decode(t, ids, n, &dl);
    EXPECT(back && dl == len && !memcmp(back, text, len), "roundtrip");
    free(back);
    free(ids);
    free(text);
    k2c_tokenizer_free(t);
    EXPECT(k2c_bpe_train(files, 1, 100, d) == -1 && strstr(k2c_errmsg(), "--vocab"), "small vocab: %s", k2c_errmsg());
    const char *missing[] = {"tests/data/no-such-file.txt"};
    EXPECT(k2c_bpe_train(missing, 1, 300, d) == -1 && strstr(k2c_errmsg(), "no-such-file"), "missing file: %s", k2c_errmsg());
    free(d);
}

/* The tool-call parser fed token ids: marker tokens and multi-byte characters split over byte tokens. */
static void toolparse_tokens(void) {
    char *d = make_dir("trained");
    k2c_tokenizer *t = NULL;
    if (k2c_tokenizer_load(&t, d) != 0) { EXPECT(0, "load: %s", k2c_errmsg()); free(d); return; }
    const char *out = "Sure \xe4\xb8\xad\xe6\x96\x87<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0"
                      "<|tool_call_argument_begin|>{\"x\": \"\xf0\x9f\x98\x80\"}<|tool_call_end|><|tool_calls_section_end|><|im_end|>";
    int *ids = NULL, n = 0;
    EXPECT(k2c_tokenizer_encode(t, out, strlen(out), 1, &ids, &n) == 0, "%s", k2c_errmsg());
    k2c_toolparse *p = k2c_toolparse_new();
    k2c_tool_events ev;
    char content[256] = "";
    for (int i = 0; i < n; i++) {
        EXPECT(k2c_toolparse_feed_token(p, t, ids[i], &ev) == 0, "feed");
        strncat(content, ev.content, ev.content_len);
    }
    k2c_toolparse_finish(p, &ev);
    strncat(content, ev.content, ev.content_len);
    EXPECT(!strcmp(content, "Sure \xe4\xb8\xad\xe6\x96\x87<|im_end|>"), "content '%s'", content);
    EXPECT(k2c_toolparse_ncalls(p) == 1 && !strcmp(k2c_toolparse_call(p, 0)->arguments, "{\"x\": \"\xf0\x9f\x98\x80\"}") &&
           k2c_toolparse_call(p, 0)->flags == 0, "call");
    k2c_toolparse_free(p);
    free(ids);
    k2c_tokenizer_free(t);
    free(d);
}


/* tokenizer.json: GPT-2 byte alphabet, merges ranked by their position, DeepSeek-V3's pre-tokenizer. */
static void hf_tokenizer_json(void) {
    char *d = make_dir("hf");
    static char js[32768];
    size_t o = 0;
    int extra = 0;
    o += (size_t)snprintf(js + o, sizeof js - o, "{\"version\": \"1.0\", \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": []},"
                          " \"added_tokens\": [{\"id\": 259, \"content\": \"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>\", \"special\": true}],"
                          " \"model\": {\"type\": \"BPE\", \"merges\": [\"a b\", \"ab c\", [\"\xc4\xa0\", \"a\"]], \"vocab\": {");
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)extra++;
        char u[8];
        if (cp < 0x80) snprintf(u, sizeof u, "%s%c", cp == '"' || cp == '\\' ? "\\" : "", (char)cp);
        else snprintf(u, sizeof u, "%c%c", (char)(0xC0 | cp >> 6), (char)(0x80 | (cp & 0x3F)));
        o += (size_t)snprintf(js + o, sizeof js - o, "\"%s\": %d, ", u, b);
    }
    o += (size_t)snprintf(js + o, sizeof js - o, "\"ab\": 256, \"abc\": 257, \"\xc4\xa0" "a\": 258,"
                          " \"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>\": 259}},"
                          " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
                          "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\p{N}{1,3}\"}, \"behavior\": \"Isolated\", \"invert\": false},"
                          "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"[!\\\"#$%%&'()*+,\\\\-./:;<=>?@\\\\[\\\\\\\\\\\\]^_`{|}~][A-Za-z]+|"
                          "[^\\r\\n\\\\p{L}\\\\p{P}\\\\p{S}]?[\\\\p{L}\\\\p{M}]+| ?[\\\\p{P}\\\\p{S}]+[\\r\\n]*|\\\\s*[\\r\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
                          " \"behavior\": \"Isolated\", \"invert\": false},"
                          "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},"
                          " \"decoder\": {\"type\": \"ByteLevel\"}}");
    write_text(d, "tokenizer.json", js);
    k2c_tokenizer *t = NULL;
    if (k2c_tokenizer_load(&t, d) != 0) { EXPECT(0, "load: %s", k2c_errmsg()); free(d); return; }
    const char *text = "abc ab 1234<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
    EXPECT(encode_eq(t, text, strlen(text), 1, (int[]){257, 32, 256, 32, 49, 50, 51, 52, 259}, 9), "hf encode");
    EXPECT(k2c_tokenizer_token_id(t, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>") == 259, "special id");
    size_t len;
    char *s = k2c_tokenizer_decode(t, (int[]){258, 257, 259}, 3, &len);
    EXPECT(s && !strcmp(s, " aabc<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"), "hf decode '%s'", s ? s : "");
    free(s);
    k2c_tokenizer_free(t);
    /* refused features name their JSON path */
    char *bad = make_dir("hfbad");
    write_text(bad, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                                      " \"pre_tokenizer\": {\"type\": \"Metaspace\"}}");
    EXPECT(k2c_tokenizer_load(&t, bad) == -1 && strstr(k2c_errmsg(), "tokenizer.json: pre_tokenizer.type"), "%s", k2c_errmsg());
    write_text(bad, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a q\"]}}");
    EXPECT(k2c_tokenizer_load(&t, bad) == -1 && strstr(k2c_errmsg(), "model.merges[0]"), "%s", k2c_errmsg());
    write_text(bad, "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}");
    EXPECT(k2c_tokenizer_load(&t, bad) == -1 && strstr(k2c_errmsg(), "model.vocab.a"), "%s", k2c_errmsg());
    write_text(bad, "tokenizer.json", "{\"model\": ");
    EXPECT(k2c_tokenizer_load(&t, bad) == -1 && strstr(k2c_errmsg(), "tokenizer.json:1: bad JSON"), "%s", k2c_errmsg());
    free(bad);
    free(d);
}

int main(void) {
    const char *base = getenv("K2C_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_tokenizer.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    run_test("tokenizer_merge_order_and_specials", merge_order_and_specials);
    run_test("tokenizer_invalid_utf8", invalid_utf8);
    run_test("tokenizer_streaming_decode", streaming_decode);
    run_test("tokenizer_bad_files", bad_files);
    run_test("tokenizer_trainer", trainer);
    run_test("toolparse_token_ids", toolparse_tokens);
    run_test("tokenizer_hf_json", hf_tokenizer_json);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_exit();
}
