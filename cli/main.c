/* k2c: entry point and option parsing shared by every subcommand. */
#include "cli.h"
#include "k2c_dist.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ------------------------------------------------------------------ MPI ranks */
static const k2c_comm *g_comm;      /* this command's ranks (CLI_EP / CLI_ALL under mpirun) */
const k2c_comm *cli_comm(void) { return g_comm; }

/* mpirun stops every rank with SIGTERM when one of them dies or mpirun itself is stopped; rank 0 says so. */
static void on_job_end(int sig) {
    static const char msg[] = "k2c: error: the MPI job is being stopped: another rank exited or was killed, or mpirun "
                              "was interrupted (mpirun names the rank)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) {}
    _exit(1);
}

/* Runs the command on the ranks its policy names. A command that fails on a rank while others may wait for it
 * ends the job (k2c_dist_abort), so no rank hangs; rank 0 has printed the reason by then. */
static int run_command(const cli_command *c, int argc, char **argv) {
    const k2c_comm *comm = k2c_dist_comm();
    if (!comm) return c->run(argc, argv);
    if (c->ranks == CLI_RANK0 && comm->rank > 0) { k2c_dist_finalize(); return 0; }
    if (c->ranks != CLI_RANK0) g_comm = comm;
    if (comm->rank == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_job_end;
        sigaction(SIGTERM, &sa, NULL);
    }
    int rc = c->run(argc, argv);
    fflush(stdout);
    fflush(stderr);
    if (rc != 0 && g_comm) k2c_dist_abort(rc);
    k2c_dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    if (k2c_dist_init(&argc, &argv) != 0) { fprintf(stderr, "k2c: error: %s\n", k2c_errmsg()); return 1; }
    atexit(k2c_dist_finalize);      /* the paths that end before a command ran (usage, --help) end MPI too */
    qsort(commands, (size_t)ncommands, sizeof *commands, cmp_cmd);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) { usage(stdout); return argc < 2 ? 2 : 0; }
    for (int i = 0; i < ncommands; i++)
        if (!strcmp(argv[1], commands[i]->name)) {
            for (int j = 2; j < argc; j++)
                if (!strcmp(argv[j], "--help")) {
                    printf("usage: k2c %s %s\n\n%s\n", commands[i]->name, commands[i]->usage, commands[i]->summary);
                    return 0;
                }
            return run_command(commands[i], argc - 1, argv + 1);
        }
    fprintf(stderr, "k2c: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
