/* Training commands: k2c train, k2c grad, k2c data prepare, k2c data sft, k2c plot. */
#include "cli.h"
#include "k2c_train.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;


static int parse_opt(const char *s, k2c_opt_kind *k) {
    if (!strcmp(s, "muonclip")) *k = K2C_OPT_MUONCLIP;
    else if (!strcmp(s, "muon")) *k = K2C_OPT_MUON;
    else if (!strcmp(s, "adamw")) *k = K2C_OPT_ADAMW;
    else { k2c_seterr("--optimizer must be muonclip, muon or adamw (got '%s')", s); return -1; }
    return 0;
}

/* ------------------------------------------------------------------ k2c train */
static int cmd_train(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "quiet,measure-after-step")) return 2;
    k2c_train_opts t;
    k2c_train_opts_defaults(&t);
    const char *config = cli_str(&a, "config", NULL), *preset = cli_str(&a, "preset", NULL);
    const char *init = cli_str(&a, "init", NULL), *resume = cli_str(&a, "resume", NULL);
    long layers = cli_int(&a, "layers", 0);
    t.data_dir = cli_need(&a, "data");
    t.out_dir = cli_str(&a, "out", NULL);
    t.log_path = cli_str(&a, "log", NULL);
    t.steps = (int)cli_int(&a, "steps", t.steps);
    t.batch = (int)cli_int(&a, "batch", t.batch);
    t.seq = (int)cli_int(&a, "seq", t.seq);
    t.accum = (int)cli_int(&a, "accum", t.accum);
    t.warmup = (int)cli_int(&a, "warmup", t.warmup);
    snprintf(t.schedule, sizeof t.schedule, "%s", cli_str(&a, "schedule", "wsd"));
    t.decay_frac = (float)cli_num(&a, "decay-frac", t.decay_frac);
    t.lr_min = (float)cli_num(&a, "lr-min", -1);
    t.seed = (uint64_t)cli_int(&a, "seed", 1);
    t.eval_every = (int)cli_int(&a, "eval-every", 0);
    t.eval_batches = (int)cli_int(&a, "eval-batches", t.eval_batches);
    t.save_every = (int)cli_int(&a, "save-every", 0);
    t.aux_alpha = (float)cli_num(&a, "aux-alpha", 0);
    t.stop_after = (int)cli_int(&a, "stop-after", 0);
    t.progress = !cli_flag(&a, "quiet");
    t.measure_after_step = cli_flag(&a, "measure-after-step");
    const char *dts = cli_str(&a, "dtype", "f32"), *opts = cli_str(&a, "optimizer", "muonclip");
    k2c_opt_kind kind;
    if (parse_opt(opts, &kind)) { cli_done(&a); return cli_fail("train"); }
    k2c_optim o;
    k2c_optim_defaults(&o, kind);
    o.lr = (float)cli_num(&a, "lr", 2e-3);
    o.wd = (float)cli_num(&a, "wd", 0.1);
    o.tau = (float)cli_num(&a, "tau", kind == K2C_OPT_MUONCLIP ? 100 : 0);
    o.bias_u = (float)cli_num(&a, "bias-u", 1e-3);
    const char *clip_from = cli_str(&a, "clip-logits", "forward");
    uint64_t init_seed = (uint64_t)cli_int(&a, "init-seed", 1);
    int threads = (int)cli_int(&a, "threads", 0);
    if (cli_done(&a) || !t.data_dir) return 2;
    if (!strcmp(clip_from, "updated")) o.clip_updated = 1;
    else if (strcmp(clip_from, "forward")) { fprintf(stderr, "k2c train: --clip-logits must be forward or updated\n"); return 2; }
    if (!strcmp(dts, "f32")) t.save_dtype = K2C_F32;
    else if (!strcmp(dts, "bf16")) t.save_dtype = K2C_BF16;
    else { fprintf(stderr, "k2c train: --dtype must be f32 or bf16\n"); return 2; }
    if (strcmp(t.schedule, "wsd") && strcmp(t.schedule, "cosine") && strcmp(t.schedule, "const")) {
        fprintf(stderr, "k2c train: --schedule must be wsd, cosine or const\n");
        return 2;
    }
    if (!!config + !!preset + !!init + !!resume != 1) {
        fprintf(stderr, "k2c train: give exactly one of --config FILE, --preset NAME, --init DIR, --resume DIR\n");
        return 2;
    }
    if (!t.out_dir && !resume) { fprintf(stderr, "k2c train: missing --out\n"); return 2; }
    if (!t.out_dir) t.out_dir = resume;
    char *logp = NULL;
    if (!t.log_path) t.log_path = logp = k2c_path_join(t.out_dir, "train.jsonl");
    mkdir(t.out_dir, 0777);
    k2c_tmodel m;
    int rc = 1;
    if (resume) {
        float lr = o.lr, wd = o.wd, tau = o.tau, u = o.bias_u;
        int clip_updated = o.clip_updated;
        uint64_t seed;
        if (k2c_ckpt_load(&m, &o, resume, &seed)) { free(logp); return cli_fail("train"); }
        o.lr = lr; o.wd = wd; o.tau = tau; o.bias_u = u; o.clip_updated = clip_updated;
        t.seed = seed;
        if (!cli_comm() || cli_comm()->rank == 0) k2c_log("resuming at step %ld from %s\n", o.step, resume);
    } else {
        k2c_config c;
        if (config && k2c_config_load(&c, config)) { free(logp); return cli_fail("train"); }
        if (preset && k2c_config_preset(&c, preset)) { free(logp); return cli_fail("train"); }
        if (layers > 0 && !init) c.num_hidden_layers = (int)layers;
        if (init ? k2c_tmodel_load(&m, init) : k2c_tmodel_init(&m, &c, init_seed)) { free(logp); return cli_fail("train"); }
        if (k2c_optim_init(&o, &m)) { k2c_tmodel_free(&m); free(logp); return cli_fail("train"); }
    }
    m.nthreads = threads;
    t.comm = cli_comm();            /* mpirun: data parallel over the ranks */
    int rank = t.comm ? t.comm->rank : 0;
    double total, active;
    k2c_model_counts(&m.cfg, &total, &active);
    if (rank == 0 && t.comm) k2c_log("data parallel over %d ranks: %d sequences of each batch per rank (at most)\n",
                                      t.comm->size, (t.batch + t.comm->size - 1) / t.comm->size);
    if (rank == 0) k2c_log("model: %zu parameters (%.2fM), %s, %d x %d tokens x %d accum per step\n", m.nw, m.nw / 1e6, opts, t.batch,
            t.seq, t.accum);
    if (k2c_train_run(&m, &o, &t) == 0) rc = 0;
    else cli_fail("train");
    k2c_optim_free(&o);
    k2c_tmodel_free(&m);
    free(logp);
    return rc;
}
CLI_COMMAND_ON(train_cmd, CLI_ALL, "train", "(--config F | --preset N [--layers L] | --init DIR | --resume DIR) --data DIR --out DIR "
            "[--steps N --batch B --seq T --accum A --lr X --schedule wsd|cosine|const --warmup N --decay-frac F "
            "--lr-min X --optimizer muonclip|muon|adamw --wd X --tau X --bias-u X --aux-alpha X --clip-logits forward|updated --measure-after-step --seed S --init-seed S "
            "--eval-every N --eval-batches N --save-every N --stop-after N --threads N --dtype f32|bf16 --log FILE --quiet]",
            "Train a K2-architecture model with MuonClip / Muon / AdamW.", cmd_train)

/* ------------------------------------------------------------------ k2c grad */
static int cmd_grad(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    const char *model = cli_need(&a, "model"), *ids_s = cli_need(&a, "ids"), *out = cli_need(&a, "out");
    int threads = (int)cli_int(&a, "threads", 0);
    if (cli_done(&a) || !model || !ids_s || !out) return 2;
    int n, rc = 1;
    int *ids = cli_parse_ids(ids_s, &n);
    if (!ids) return cli_fail("grad");
    if (n < 2) { free(ids); fprintf(stderr, "k2c grad: need at least 2 ids\n"); return 2; }
    k2c_tmodel m;
    k2c_tacts act = {0};
    int *tg = malloc((size_t)n * sizeof *tg);
    k2c_tensor *ts = NULL;
    char **names = NULL;
    if (!tg || k2c_tmodel_load(&m, model)) { free(ids); free(tg); return cli_fail("grad"); }
    m.nthreads = threads;
    for (int i = 0; i < n; i++) tg[i] = i + 1 < n ? ids[i + 1] : -1;
    double loss;
    int cnt;
    if (k2c_tacts_init(&act, &m, 1, n) || k2c_train_forward(&m, &act, ids, tg, 1, n, 0, &loss, &cnt, NULL) ||
        k2c_train_backward(&m, &act, 1.0f / cnt)) { cli_fail("grad"); goto done; }
    float lf = (float)(loss / cnt);
    ts = calloc((size_t)m.nparams + 1, sizeof *ts);
    names = calloc((size_t)m.nparams, sizeof *names);
    if (!ts || !names) { k2c_seterr("out of memory"); cli_fail("grad"); goto done; }
    int64_t one = 1;
    ts[0].name = "loss";
    ts[0].data = &lf;
    k2c_tensor_set_shape(&ts[0], K2C_F32, 1, &one);
    int nt = 1;
    for (int i = 0; i < m.nparams; i++) {
        const k2c_param *p = &m.params[i];
        if (p->kind == K2C_P_BIAS) continue;            /* not trained by gradient */
        size_t l = strlen(p->name) + 6;
        names[i] = malloc(l);
        if (!names[i]) { k2c_seterr("out of memory"); cli_fail("grad"); goto done; }
        snprintf(names[i], l, "grad.%s", p->name);
        ts[nt].name = names[i];
        ts[nt].data = m.g + p->off;
        k2c_tensor_set_shape(&ts[nt], K2C_F32, p->ndim, p->shape);
        nt++;
    }
    if (k2c_st_write(out, nt, ts, NULL, NULL)) { cli_fail("grad"); goto done; }
    printf("loss %.6f over %d predictions; %d gradients written to %s\n", lf, cnt, nt - 1, out);
    rc = 0;
done:
    if (names) for (int i = 0; i < m.nparams; i++) free(names[i]);
    free(names); free(ts);
    k2c_tacts_free(&act);
    k2c_tmodel_free(&m);
    free(ids); free(tg);
    return rc;
}
CLI_COMMAND(grad_cmd, "grad", "--model DIR --ids 3,17,42 --out FILE [--threads N]",
            "Write the loss and the gradient of every trained tensor (mean next-token cross-entropy).", cmd_grad)

/* ------------------------------------------------------------------ k2c data prepare */
typedef struct { uint32_t *v; size_t n, cap; } idvec;

static int idpush(idvec *d, uint32_t x) {
    if (d->n == d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 1 << 16;
        uint32_t *p = realloc(d->v, nc * sizeof *p);
        if (!p) { k2c_seterr("out of memory"); return -1; }
        d->v = p; d->cap = nc;
    }
    d->v[d->n++] = x;
    return 0;
}

/* numbers separated by anything that is not a digit */
static int read_ids_file(idvec *d, const char *path) {
    size_t n;
    char *text = k2c_read_file(path, &n);
    if (!text) return -1;
    int rc = 0;
    for (char *p = text; *p && !rc;) {
        if (*p < '0' || *p > '9') { p++; continue; }
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        rc = idpush(d, (uint32_t)v);
        p = end;
    }
    free(text);
    return rc;
}

static int write_shards(const char *out, const char *prefix, const uint32_t *v, size_t n, size_t per) {
    for (size_t s = 0, i = 0; i < n || s == 0; s++, i += per) {
        char name[64];
        snprintf(name, sizeof name, "%s_%03zu.bin", prefix, s);
        char *p = k2c_path_join(out, name);
        size_t cnt = n - i < per ? n - i : per;
        int rc = p ? k2c_shard_write(p, v + i, cnt) : -1;
        free(p);
        if (rc) return -1;
        if (cnt < per) break;
    }
    return 0;
}

/* ------------------------------------------------------------------ k2c data sft */
typedef struct { uint8_t *v; size_t n, cap; } maskvec;

static int maskpush(maskvec *d, uint8_t x) {
    if (d->n == d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 1 << 16;
        uint8_t *p = realloc(d->v, nc);
        if (!p) { k2c_seterr("out of memory"); return -1; }
        d->v = p; d->cap = nc;
    }
    d->v[d->n++] = x;
    return 0;
}

static int write_masked_shards(const char *out, const char *prefix, const uint32_t *v, const uint8_t *m, size_t n, size_t per) {
    for (size_t s = 0, i = 0; i < n || s == 0; s++, i += per) {
        char name[64];
        snprintf(name, sizeof name, "%s_%03zu.bin", prefix, s);
        char *p = k2c_path_join(out, name);
        size_t cnt = n - i < per ? n - i : per;
        int rc = p ? k2c_shard_write_masked(p, v + i, m + i, cnt) : -1;
        free(p);
        if (rc) return -1;
        if (cnt < per) break;
    }
    return 0;
}

/* One conversation per line: {"messages": [...], "tools": [...]?}. Loss only on the assistant's tokens
 * (k2c_chat_render_masked); EOS after each conversation as context. --text files are plain text with loss on
 * every token, the mixture that keeps the model's English. */
static int data_sft(cli_args *a, const char *tokdir, const char *out, double vf, long per) {
    idvec d = {0};
    maskvec mk = {0};
    k2c_tokenizer *tk = NULL;
    long nconv = 0;
    size_t nloss = 0;
    if (!tokdir) { k2c_seterr("k2c data sft needs --tokenizer DIR"); goto fail; }
    if (k2c_tokenizer_load(&tk, tokdir)) goto fail;
    int eos = k2c_tokenizer_eos(tk);
    const char *text_list = cli_str(a, "text", NULL);
    for (int i = 1; i < a->npos; i++) {
        size_t n;
        char *text = k2c_read_file(a->pos[i], &n);
        if (!text) goto fail;
        int line = 0;
        for (char *ln = text; ln && *ln;) {
            char *nl = strchr(ln, '\n');
            if (nl) *nl = 0;
            line++;
            char where[600];
            snprintf(where, sizeof where, "%.512s:%d", a->pos[i], line);
            const char *q = ln;
            while (*q == ' ' || *q == '\t' || *q == '\r') q++;
            if (*q) {
                json_error_t je;
                json_t *o = json_loads(ln, 0, &je);
                /* a conversation {"messages", "tools": [declarations]}, or a k2c synth task line whose
                 * "reference" is the conversation and "tools" names built-in groups (declared as the agent does) */
                json_t *msgs = json_object_get(o, "messages"), *tools = json_object_get(o, "tools");
                if (!msgs) msgs = json_object_get(o, "reference");
                char *tt = NULL;
                if (json_is_string(tools)) {
                    k2c_toolbox_opts to = {0};
                    k2c_toolbox *box = NULL;
                    if (k2c_tool_groups_parse(json_string_value(tools), &to.groups) || !(box = k2c_toolbox_new(&to))) {
                        char msg[K2C_ERRMSG_MAX];
                        snprintf(msg, sizeof msg, "%s", k2c_errmsg());
                        k2c_seterr("%s: tools: %s", where, msg);
                        json_decref(o); free(text); goto fail;
                    }
                    if (to.groups) tt = strdup(k2c_toolbox_json(box));
                    k2c_toolbox_free(box);
                } else if (!json_is_array(msgs) || (tools && !json_is_array(tools) && !json_is_null(tools))) {
                    k2c_seterr("%s: %s", where, !o ? je.text : "want {\"messages\": [...], \"tools\": [...]}");
                    json_decref(o); free(text); goto fail;
                } else if (json_is_array(tools) && json_array_size(tools)) tt = json_dumps(tools, JSON_COMPACT | JSON_PRESERVE_ORDER);
                if (!json_is_array(msgs)) {
                    k2c_seterr("%s: %s", where, "want {\"messages\": [...]} or a task with a \"reference\"");
                    free(tt); json_decref(o); free(text); goto fail;
                }
                char *mt = json_dumps(msgs, JSON_COMPACT | JSON_PRESERVE_ORDER);
                json_decref(o);
                int *ids = NULL, nid = 0;
                unsigned char *m = NULL;
                int r = mt ? k2c_chat_render_masked(tk, mt, tt, where, &ids, &m, &nid) : -1;
                free(mt); free(tt);
                /* bit 1 on the first token: windows start at conversations */
                for (int j = 0; r == 0 && j < nid; j++) { r = idpush(&d, (uint32_t)ids[j]) || maskpush(&mk, (uint8_t)(m[j] | (j == 0 ? 2 : 0))); nloss += m[j]; }
                if (r == 0 && eos >= 0) r = idpush(&d, (uint32_t)eos) || maskpush(&mk, 0);
                free(ids); free(m);
                if (r) { free(text); goto fail; }
                nconv++;
            }
            ln = nl ? nl + 1 : NULL;
        }
        free(text);
    }
    for (const char *p = text_list; p && *p;) {           /* --text a.txt,b.txt */
        size_t l = strcspn(p, ",");
        char path[4096];
        snprintf(path, sizeof path, "%.*s", (int)(l < 4000 ? l : 4000), p);
        p += l + (p[l] == ',');
        size_t n;
        char *text = k2c_read_file(path, &n);
        if (!text) goto fail;
        int *ids = NULL, nid = 0;
        int r = k2c_tokenizer_encode(tk, text, n, 0, &ids, &nid);
        /* plain text has no conversations: a window may start every 128 tokens of it */
        for (int j = 0; r == 0 && j < nid; j++) r = idpush(&d, (uint32_t)ids[j]) || maskpush(&mk, (uint8_t)(j % 128 == 0 ? 3 : 1));
        if (r == 0 && eos >= 0) r = idpush(&d, (uint32_t)eos) || maskpush(&mk, 1);
        nloss += (size_t)nid + 1;
        free(ids); free(text);
        if (r) goto fail;
    }
    if (!d.n) { k2c_seterr("no tokens"); goto fail; }
    size_t nval = (size_t)(d.n * vf), ntr = d.n - nval;
    mkdir(out, 0777);
    if (write_masked_shards(out, "train", d.v, mk.v, ntr, (size_t)per)) goto fail;
    if (nval && write_masked_shards(out, "val", d.v + ntr, mk.v + ntr, nval, (size_t)per)) goto fail;
    printf("%ld conversations, %zu tokens (%zu with loss): %zu train, %zu validation -> %s\n", nconv, d.n, nloss, ntr, nval, out);
    free(d.v); free(mk.v);
    k2c_tokenizer_free(tk);
    return 0;
fail:
    free(d.v); free(mk.v);
    k2c_tokenizer_free(tk);
    return cli_fail("data sft");
}

static int cmd_data(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "allow-special")) return 2;
    if (a.npos >= 1 && !strcmp(a.pos[0], "sft")) {
        const char *tok = cli_str(&a, "tokenizer", NULL), *out = cli_need(&a, "out");
        double vf = cli_num(&a, "val-fraction", 0.01);
        long per = cli_int(&a, "shard-tokens", 1L << 26);
        cli_str(&a, "text", NULL);
        if (cli_done(&a) || !out) return 2;
        if (vf < 0 || vf >= 1 || per <= 0) { fprintf(stderr, "k2c data sft: --val-fraction in [0, 1), --shard-tokens > 0\n"); return 2; }
        return data_sft(&a, tok, out, vf, per);
    }
    const char *tok = cli_str(&a, "tokenizer", NULL), *out = cli_need(&a, "out"), *idsf = cli_str(&a, "ids-file", NULL);
    int allow_special = cli_flag(&a, "allow-special");
    double vf = cli_num(&a, "val-fraction", 0.01);
    long per = cli_int(&a, "shard-tokens", 1L << 26);
    if (cli_done(&a) || !out) return 2;
    if (a.npos < 1 || strcmp(a.pos[0], "prepare")) { fprintf(stderr, "usage: k2c data prepare ...\n"); return 2; }
    if (!idsf && !tok) { fprintf(stderr, "k2c data prepare: give --tokenizer DIR|bytes or --ids-file FILE\n"); return 2; }
    if (vf < 0 || vf >= 1 || per <= 0) { fprintf(stderr, "k2c data prepare: --val-fraction in [0, 1), --shard-tokens > 0\n"); return 2; }
    idvec d = {0};
    int rc = 1;
    k2c_tokenizer *tk = NULL;
    if (idsf && read_ids_file(&d, idsf)) goto fail;
    if (a.npos > 1 && !tok) { k2c_seterr("text files need --tokenizer DIR|bytes"); goto fail; }
    if (a.npos > 1 && strcmp(tok, "bytes") && k2c_tokenizer_load(&tk, tok)) goto fail;
    int eos = tk ? k2c_tokenizer_eos(tk) : -1;
    for (int i = 1; i < a.npos; i++) {
        size_t n;
        char *text = k2c_read_file(a.pos[i], &n);
        if (!text) goto fail;
        if (!tk) {                                  /* byte-level: id = byte value (vocab 256) */
            for (size_t j = 0; j < n; j++) if (idpush(&d, (unsigned char)text[j])) { free(text); goto fail; }
        } else {
            /* special-token text in the documents stays plain text (a web page that quotes "<|im_end|>"
             * must not end a turn) unless --allow-special says the files are formatted conversations;
             * EOS separates documents */
            int *ids = NULL, nid = 0;
            int r = k2c_tokenizer_encode(tk, text, n, allow_special, &ids, &nid);
            for (int j = 0; r == 0 && j < nid; j++) r = idpush(&d, (uint32_t)ids[j]);
            if (r == 0 && eos >= 0) r = idpush(&d, (uint32_t)eos);
            free(ids);
            if (r) { free(text); goto fail; }
        }
        free(text);
    }
    if (!d.n) { k2c_seterr("no tokens"); goto fail; }
    size_t nval = (size_t)(d.n * vf), ntr = d.n - nval;
    mkdir(out, 0777);
    if (write_shards(out, "train", d.v, ntr, (size_t)per)) goto fail;
    if (nval && write_shards(out, "val", d.v + ntr, nval, (size_t)per)) goto fail;
    printf("%zu tokens: %zu train, %zu validation -> %s\n", d.n, ntr, nval, out);
    rc = 0;
    free(d.v);
    k2c_tokenizer_free(tk);
    return rc;
fail:
    free(d.v);
    k2c_tokenizer_free(tk);
    return cli_fail("data");
}
CLI_COMMAND(data_cmd, "data", "prepare (--tokenizer DIR|bytes FILES... | --ids-file FILE) --out DIR [--val-fraction F] [--shard-tokens N] [--allow-special]"
            " | sft --tokenizer DIR --out DIR CONVERSATIONS.jsonl... [--text A.txt,B.txt] [--val-fraction F]",
            "Tokenize text into training shards (train_NNN.bin, val_NNN.bin); sft: conversations with a loss mask (assistant tokens only) plus plain text.", cmd_data)

/* ------------------------------------------------------------------ k2c plot */
static int cmd_plot(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    const char *out = cli_need(&a, "out"), *x = cli_str(&a, "x", "tokens");
    if (cli_done(&a) || !out) return 2;
    if (a.npos < 1) { fprintf(stderr, "k2c plot: give one or more JSONL logs\n"); return 2; }
    size_t l = strlen(out);
    int png = l > 4 && !strcmp(out + l - 4, ".png");
    if (!png) return k2c_plot_logs(out, a.npos, a.pos, x) ? cli_fail("plot") : 0;
    /* PNG through rsvg-convert (Debian librsvg2-bin, installed by scripts/install-deps.sh): SVG is what k2c
     * itself draws, and rasterizing text needs fonts and a real renderer. Spawned without a shell, so any
     * file name is safe. */
    char *svg = malloc(l + 8), *tmp = malloc(l + 8);
    int rc = 1;
    if (!svg || !tmp) { free(svg); free(tmp); return 1; }
    snprintf(svg, l + 8, "%s.svg", out);    /* curves.png.svg: never a file of the user's */
    snprintf(tmp, l + 8, "%s.tmp", out);
    if (k2c_plot_logs(svg, a.npos, a.pos, x)) { cli_fail("plot"); goto done; }
    char *args[] = {"rsvg-convert", "-f", "png", "-o", tmp, svg, NULL};
    pid_t pid;
    int st;
    if (posix_spawnp(&pid, "rsvg-convert", NULL, NULL, args, environ) != 0) {
        fprintf(stderr, "k2c plot: rsvg-convert not found (Debian package librsvg2-bin); wrote %s instead\n", svg);
        goto done;
    }
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "k2c plot: rsvg-convert failed on %s; the SVG is there\n", svg);
        goto done;
    }
    if (rename(tmp, out)) { fprintf(stderr, "k2c plot: %s: %s\n", out, strerror(errno)); goto done; }
    remove(svg);
    rc = 0;
done:
    remove(tmp);
    free(svg); free(tmp);
    return rc;
}
CLI_COMMAND(plot_cmd, "plot", "LOG.jsonl... --out FILE.svg|png [--x tokens|step]",
            "Draw loss and max-logit curves of training logs, or reward, success, length and KL of k2c rl logs (SVG, or PNG through a converter).", cmd_plot)
