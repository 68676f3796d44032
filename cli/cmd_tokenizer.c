/* k2c encode / decode / template / tokenizer train: the tokenizer and chat format from the shell. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* All of stdin, NUL-terminated (the text may contain NULs: *len counts them). */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) { k2c_seterr("out of memory"); return NULL; }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); k2c_seterr("out of memory"); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) { free(buf); k2c_seterr("stdin: read error: %s", strerror(errno)); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int cmd_encode(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "no-special") != 0) return 2;
    const char *dir = cli_need(&a, "tokenizer");
    const char *file = cli_str(&a, "text-file", NULL);
    int no_special = cli_flag(&a, "no-special");
    long repeat = cli_int(&a, "repeat", 0);
    if (cli_done(&a) != 0 || !dir) return 2;
    k2c_tokenizer *t = NULL;
    char *text = NULL;
    int *ids = NULL, n = 0, rc = 1;
    size_t len = 0;
    if (k2c_tokenizer_load(&t, dir) != 0) goto done;
    text = file ? k2c_read_file(file, &len) : read_stdin(&len);
    if (!text) goto done;
    if (k2c_tokenizer_encode(t, text, len, !no_special, &ids, &n) != 0) goto done;
    /* --repeat N: benchmark mode, the best of N more encodes on stderr */
    double best = 1e30;
    for (long r = 0; r < repeat; r++) {
        int *again = NULL, m = 0;
        double t0 = k2c_now();
        if (k2c_tokenizer_encode(t, text, len, !no_special, &again, &m) != 0) goto done;
        double dt = k2c_now() - t0;
        free(again);
        if (dt < best) best = dt;
    }
    if (repeat > 0)
        fprintf(stderr, "encode: %zu bytes -> %d tokens, best of %ld: %.3f s, %.2f MB/s\n", len, n, repeat, best, len / 1e6 / best);
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    rc = 0;
done:
    if (rc) cli_fail(argv[0]);
    free(ids);
    free(text);
    k2c_tokenizer_free(t);
    return rc;
}
CLI_COMMAND(encode_cmd, "encode", "--tokenizer DIR [--text-file F] [--no-special] [--repeat N]",
            "Prints the token ids of the text (stdin when no file) on one line; special-token text becomes "
            "the special id unless --no-special. --repeat N: also time N encodes (stderr).", cmd_encode)

static int cmd_decode(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, NULL) != 0) return 2;
    const char *dir = cli_need(&a, "tokenizer");
    const char *file = cli_str(&a, "ids-file", NULL);
    if (cli_done(&a) != 0 || !dir) return 2;
    k2c_tokenizer *t = NULL;
    char *in = NULL, *text = NULL;
    int *ids = NULL, n = 0, rc = 1;
    size_t len = 0;
    if (k2c_tokenizer_load(&t, dir) != 0) goto done;
    in = file ? k2c_read_file(file, &len) : read_stdin(&len);
    if (!in) goto done;
    char *s = in;
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == ',' || *s == '\r') s++;
    for (char *e = s + strlen(s); e > s && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\t');) *--e = 0;
    for (char *q = s; *q; q++) if (*q == '\r') *q = ' ';
    if (*s) {
        ids = cli_parse_ids(s, &n);
        if (!ids) goto done;
    }
    text = k2c_tokenizer_decode(t, ids, n, &len);
    if (!text) goto done;
    fwrite(text, 1, len, stdout);
    rc = 0;
done:
    if (rc) cli_fail(argv[0]);
    free(text);
    free(ids);
    free(in);
    k2c_tokenizer_free(t);
    return rc;
}
CLI_COMMAND(decode_cmd, "decode", "--tokenizer DIR [--ids-file F]",
            "Reads token ids (stdin or the file; whitespace or comma separated) and prints the text.", cmd_decode)

static int cmd_template(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "no-generation-prompt") != 0) return 2;
    const char *dir = cli_str(&a, "tokenizer", NULL);
    const char *mfile = cli_need(&a, "messages");
    const char *tfile = cli_str(&a, "tools", NULL);
    int nogen = cli_flag(&a, "no-generation-prompt");
    const char *fmt = cli_str(&a, "format", NULL);
    if (cli_done(&a) != 0 || !mfile) return 2;
    if (fmt && strcmp(fmt, "kimi") && strcmp(fmt, "deepseek-v3")) { k2c_log("k2c template: --format: kimi or deepseek-v3, not '%s'\n", fmt); return 2; }
    k2c_tokenizer *t = NULL;
    char *msgs = NULL, *tools = NULL, *out = NULL;
    int rc = 1;
    /* The tokenizer is optional: when given it must load, and must carry Kimi's chat template. */
    k2c_chat_format f = fmt && !strcmp(fmt, "deepseek-v3") ? K2C_CHAT_DEEPSEEK_V3 : K2C_CHAT_KIMI;
    if (dir) {
        if (k2c_tokenizer_load(&t, dir) != 0) goto done;
        if (!fmt) f = k2c_tokenizer_chat_format(t);
        if (f == K2C_CHAT_KIMI && !k2c_tokenizer_has_kimi_template(t))
            k2c_log("k2c template: warning: %s has no Kimi chat_template; rendering Kimi's format anyway\n", dir);
    }
    if (!(msgs = k2c_read_file(mfile, NULL))) goto done;
    if (tfile && !(tools = k2c_read_file(tfile, NULL))) goto done;
    if (!(out = k2c_chat_render_as(f, msgs, tools, !nogen, mfile, tfile))) goto done;
    fputs(out, stdout);
    rc = 0;
done:
    if (rc) cli_fail(argv[0]);
    free(out);
    free(msgs);
    free(tools);
    k2c_tokenizer_free(t);
    return rc;
}
CLI_COMMAND(template_cmd, "template", "[--tokenizer DIR] [--format kimi|deepseek-v3] --messages FILE.json [--tools FILE.json] [--no-generation-prompt]",
            "Prints the chat prompt (the tokenizer's chat format, else --format, else Kimi's) for OpenAI-style messages (and tools).",
            cmd_template)

static int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "train") != 0) {
        fprintf(stderr, "k2c tokenizer: usage: k2c tokenizer train --vocab N --out DIR FILES...\n");
        return 2;
    }
    cli_args a;
    if (cli_parse(&a, argc - 1, argv + 1, NULL) != 0) return 2;
    long vocab = cli_int(&a, "vocab", -1);
    const char *out = cli_need(&a, "out");
    if (cli_done(&a) != 0 || !out) return 2;
    if (vocab < 0) { fprintf(stderr, "k2c tokenizer train: missing --vocab\n"); return 2; }
    if (a.npos == 0) { fprintf(stderr, "k2c tokenizer train: no input files\n"); return 2; }
    if (k2c_bpe_train(a.pos, a.npos, (int)vocab, out) != 0) return cli_fail("tokenizer train");
    return 0;
}
CLI_COMMAND(tokenizer_cmd, "tokenizer", "train --vocab N --out DIR FILES...",
            "Learns a BPE rank list (N base tokens: 256 bytes + merges) from text files with Kimi's "
            "pre-tokenizer; writes DIR/tiktoken.model and DIR/tokenizer_config.json (Kimi special block).",
            cmd_tokenizer)
