/* The k2c command-line tool: each cli/cmd_*.c registers its subcommands at start-up (a constructor),
 * so adding a command touches no shared table. Options are "--name value", "--name=value" or boolean
 * "--flag"; an option that no command asked for is reported as an error, so typos never pass silently. */
#ifndef K2C_CLI_H
#define K2C_CLI_H
#include "k2c.h"

typedef struct {
    const char *name;
    const char *usage;          /* one line after "k2c NAME " */
    const char *summary;
    int (*run)(int argc, char **argv);   /* argv[0] is the command name; returns the exit code */
    int ranks;                  /* under mpirun: CLI_RANK0 (rank 0 alone; the others exit), CLI_EP (expert parallel:
                                 * the others serve their experts from cli_load_model on), CLI_ALL (every rank) */
} cli_command;
enum { CLI_RANK0, CLI_EP, CLI_ALL };

void cli_register(const cli_command *c);
#define CLI_COMMAND(var, ...) CLI_COMMAND_ON(var, CLI_RANK0, __VA_ARGS__)
/* The same for a command that runs on more ranks than rank 0 under mpirun (CLI_EP, CLI_ALL). */
#define CLI_COMMAND_ON(var, ranks_, name_, usage_, summary_, run_) \
    static const cli_command var = {name_, usage_, summary_, run_, ranks_}; \
    __attribute__((constructor)) static void register_##var(void) { cli_register(&var); }

#define CLI_MAX_OPTS 64
#define CLI_MAX_POS 4096     /* input files of `data prepare`, `tokenizer train` */
typedef struct {
    int nopt;
    const char *key[CLI_MAX_OPTS], *val[CLI_MAX_OPTS];
    int used[CLI_MAX_OPTS];
    int npos;
    const char *pos[CLI_MAX_POS];
    const char *cmd;
} cli_args;

/* flags: comma-separated names of boolean options, e.g. "decode,json". Returns 0 or prints an error. */
int cli_parse(cli_args *a, int argc, char **argv, const char *flags);
const char *cli_str(cli_args *a, const char *name, const char *dflt);
long cli_int(cli_args *a, const char *name, long dflt);      /* exits with an error on a non-number */
double cli_num(cli_args *a, const char *name, double dflt);
int cli_flag(cli_args *a, const char *name);
const char *cli_need(cli_args *a, const char *name);        /* required: NULL + error message if absent */
int cli_done(cli_args *a);                                   /* -1 (after printing) if an option was never read */
/* "3,17,42" -> malloc'd ints; NULL + error on a bad list */
int *cli_parse_ids(const char *s, int *n);
int cli_fail(const char *cmd);
/* The MPI ranks of this command (CLI_EP and CLI_ALL commands under mpirun), else NULL. */
const k2c_comm *cli_comm(void);
/* Opens a model with these options. Under expert parallelism a rank > 0 serves its experts here until rank 0
 * closes the model and then ends the process: only rank 0 returns. 0, or -1 with k2c_errmsg() set. */
int cli_open_model(const char *dir, const k2c_model_opts *o, k2c_model **m);
/* --threads, --load, --ubatch and the environment (K2C_SIMD, K2C_PROMPT_PRECISION) as model options (with the
 * command's ranks, cli_comm). */
/* --cache-type names: K2C_CACHE_* of "f32" / "bf16" / "q8_0" (-1: none of them), and back. */
int cli_cache_type(const char *name);
const char *cli_cache_name(int type);
int cli_model_opts(cli_args *a, k2c_model_opts *o);
/* Loads a model folder with those options, timing it. 0, or -1 with k2c_errmsg() set. */
int cli_load_model(cli_args *a, k2c_model **m, const char *dir);
/* --tokenizer DIR, else the model folder. */
int cli_load_tokenizer(cli_args *a, const char *model_dir, k2c_tokenizer **tok);                               /* prints "k2c CMD: error: <k2c_errmsg()>", returns 1 */
#endif
