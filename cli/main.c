/* k2c: entry point and option parsing shared by every subcommand. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMMANDS 64
static const cli_command *commands[MAX_COMMANDS];
static int ncommands;

void cli_register(const cli_command *c) {
    if (ncommands < MAX_COMMANDS) commands[ncommands++] = c;
}

static int cmp_cmd(const void *a, const void *b) {
    return strcmp((*(const cli_command *const *)a)->name, (*(const cli_command *const *)b)->name);
}

static void usage(FILE *f) {
    fprintf(f, "k2c — the Kimi K2 system in C\n\nusage: k2c COMMAND [options]\n\ncommands:\n");
    for (int i = 0; i < ncommands; i++) fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\n'k2c COMMAND --help' shows a command's options.\n");
}

int cli_parse(cli_args *a, int argc, char **argv, const char *flags) {
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] == '-' && s[1] == '-' && s[2]) {
            if (a->nopt == CLI_MAX_OPTS) { fprintf(stderr, "k2c %s: too many options\n", a->cmd); return -1; }
            const char *name = s + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int is_flag = 0;
            for (const char *f = flags; f && *f;) {
                const char *e = strchr(f, ',');
                size_t fl = e ? (size_t)(e - f) : strlen(f);
                if (fl == len && !strncmp(f, name, len)) is_flag = 1;
                f = e ? e + 1 : f + fl;
            }
            if (len == 4 && !strncmp(name, "help", 4)) is_flag = 1;
            a->key[a->nopt] = strndup(name, len);
            if (eq) a->val[a->nopt] = eq + 1;
            else if (is_flag) a->val[a->nopt] = "1";
            else if (i + 1 < argc) a->val[a->nopt] = argv[++i];
            else { fprintf(stderr, "k2c %s: option --%s needs a value\n", a->cmd, a->key[a->nopt]); return -1; }
            a->nopt++;
        } else {
            if (a->npos == CLI_MAX_POS) { fprintf(stderr, "k2c %s: more than %d arguments\n", a->cmd, CLI_MAX_POS); return -1; }
            a->pos[a->npos++] = s;
        }
    }
    return 0;
}

static int find(cli_args *a, const char *name) {
    int hit = -1;
    for (int i = 0; i < a->nopt; i++)
        if (!strcmp(a->key[i], name)) { a->used[i] = 1; hit = i; }   /* the last one wins */
    return hit;
}

const char *cli_str(cli_args *a, const char *name, const char *dflt) {
    int i = find(a, name);
    return i < 0 ? dflt : a->val[i];
}

long cli_int(cli_args *a, const char *name, long dflt) {
    int i = find(a, name);
    if (i < 0) return dflt;
    char *end;
    errno = 0;
    long v = strtol(a->val[i], &end, 10);
    if (errno || end == a->val[i] || *end) {
        fprintf(stderr, "k2c %s: --%s wants an integer, got '%s'\n", a->cmd, name, a->val[i]);
        exit(2);
    }
    return v;
}

double cli_num(cli_args *a, const char *name, double dflt) {
    int i = find(a, name);
    if (i < 0) return dflt;
    char *end;
    double v = strtod(a->val[i], &end);
    if (end == a->val[i] || *end) {
        fprintf(stderr, "k2c %s: --%s wants a number, got '%s'\n", a->cmd, name, a->val[i]);
        exit(2);
    }
    return v;
}

int cli_flag(cli_args *a, const char *name) { return find(a, name) >= 0; }

const char *cli_need(cli_args *a, const char *name) {
    const char *v = cli_str(a, name, NULL);
    if (!v) fprintf(stderr, "k2c %s: missing --%s\n", a->cmd, name);
    return v;
}

int cli_done(cli_args *a) {
    int bad = 0;
    for (int i = 0; i < a->nopt; i++)
        if (!a->used[i]) { fprintf(stderr, "k2c %s: unknown option --%s\n", a->cmd, a->key[i]); bad = 1; }
    for (int i = 0; i < a->nopt; i++) free((void *)a->key[i]);
    a->nopt = 0;
    return bad ? -1 : 0;
}

int *cli_parse_ids(const char *s, int *n) {
    int cap = 16, *ids = malloc(cap * sizeof *ids);
    *n = 0;
    if (!ids) { k2c_seterr("out of memory"); return NULL; }
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > 0x7fffffff) { k2c_seterr("bad token id list near '%.20s'", s); free(ids); return NULL; }
        if (*n == cap) {
            int *nn = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            if (!nn) { free(ids); k2c_seterr("out of memory"); return NULL; }
            ids = nn;
        }
        ids[(*n)++] = (int)v;
        s = end;
        while (*s == ',' || *s == ' ' || *s == '\n' || *s == '\t') s++;
    }
    if (*n == 0) { k2c_seterr("empty token id list"); free(ids); return NULL; }
    return ids;
}

int cli_fail(const char *cmd) {
    fprintf(stderr, "k2c %s: error: %s\n", cmd, k2c_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    qsort(commands, (size_t)ncommands, sizeof *commands, cmp_cmd);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) { usage(stdout); return argc < 2 ? 2 : 0; }
    for (int i = 0; i < ncommands; i++)
        if (!strcmp(argv[1], commands[i]->name)) {
            for (int j = 2; j < argc; j++)
                if (!strcmp(argv[j], "--help")) {
                    printf("usage: k2c %s %s\n\n%s\n", commands[i]->name, commands[i]->usage, commands[i]->summary);
                    return 0;
                }
            return commands[i]->run(argc - 1, argv + 1);
        }
    fprintf(stderr, "k2c: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
