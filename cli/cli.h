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
} cli_command;

void cli_register(const cli_command *c);
#define CLI_COMMAND(var, ...) \
    static const cli_command var = {__VA_ARGS__}; \
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
/* --threads, --load, --ubatch and the environment (K2C_SIMD, K2C_PROMPT_PRECISION) as model options. */
int cli_model_opts(cli_args *a, k2c_model_opts *o);
/* Loads a model folder with those options, timing it. 0, or -1 with k2c_errmsg() set. */
int cli_load_model(cli_args *a, k2c_model **m, const char *dir);
/* --tokenizer DIR, else the model folder. */
int cli_load_tokenizer(cli_args *a, const char *model_dir, k2c_tokenizer **tok);                               /* prints "k2c CMD: error: <k2c_errmsg()>", returns 1 */
#endif
