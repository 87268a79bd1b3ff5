/* args.h: declarative command-line parsing shared by every subcommand.
 *
 * A subcommand lists its options as arg_spec rows and calls args_parse. Options are
 * `--name value` or `--name=value`; flags take no value. Values are checked strictly
 * (an integer option refuses "12x"), unknown options and missing values are refused with
 * `raasbench: <cmd>: <why>` and status RB_EINPUT. `--help` prints the usage and the option
 * table on stdout and sets *help. */
#ifndef ARGS_H
#define ARGS_H

#include "rb.h"

typedef enum {
    ARG_FLAG,   /* int *dst set to 1 */
    ARG_STR,    /* const char **dst */
    ARG_INT,    /* int *dst */
    ARG_I64,    /* int64_t *dst */
    ARG_FLOAT,  /* double *dst */
    ARG_MULTI,  /* arg_multi *dst: repeatable, every value kept in order */
    ARG_RANGE,  /* const arg_range *dst: an integer with its bounds (ARG_INT_IN, ARG_I64_IN) */
} arg_kind;

/* An integer option's destination and bounds, declared once in its row:
 *   {"threads", ARG_INT_IN(&threads, 0, 1024), "N", "worker threads (0: all cores)"},
 * A value outside [min, max] is refused as `--threads: must be in 0..1024, got -5`; the help
 * shows the range. Every integer option should be declared this way. */
typedef struct arg_range {
    int *i32;     /* one of i32, i64 */
    int64_t *i64;
    int64_t min, max;
} arg_range;
#define ARG_INT_IN(p, lo, hi) ARG_RANGE, (void *)&(const arg_range){.i32 = (p), .min = (lo), .max = (hi)}
#define ARG_I64_IN(p, lo, hi) ARG_RANGE, (void *)&(const arg_range){.i64 = (p), .min = (lo), .max = (hi)}

typedef struct arg_multi {
    int n;
    const char *v[64];
} arg_multi;

typedef struct arg_spec {
    const char *name; /* without the leading dashes */
    arg_kind kind;
    void *dst;
    const char *metavar; /* shown in help, NULL for flags */
    const char *help;
} arg_spec;

/* Parse argv[0..argc) (argv[0] is the first argument after the subcommand name).
 * Positional arguments are collected into pos[0..max_pos); more than max_pos is an error.
 * `specs` ends with a row whose name is NULL. */
rb_status args_parse(const char *cmd, const char *usage, const arg_spec *specs, int argc,
                     char **argv, const char **pos, int max_pos, int *n_pos, int *help,
                     rb_err *e);

/* args_parse for a command's entry point, which has nothing to clean up yet: -1 when the
 * command goes on; else the exit code to return at once: 0 after --help, or the error's
 * code after its message on stderr. */
int args_parse_cmd(const char *cmd, const char *usage, const arg_spec *specs, int argc,
                   char **argv, const char **pos, int max_pos, int *n_pos);

/* Print usage and the option table (used by args_parse for --help). */
void args_print_help(FILE *f, const char *cmd, const char *usage, const arg_spec *specs);

/* Split a comma-separated list of integers ("128,256") into out[0..max); strict. */
rb_status args_int_list(const char *what, const char *s, int *out, int max, int *n, rb_err *e);

/* Split a comma-separated list of names in place into out[0..max) (modifies a copy it
 * allocates; *storage must be freed by the caller). */
rb_status args_name_list(const char *what, const char *s, char **storage, const char **out,
                         int max, int *n, rb_err *e);

/* Strict numeric parsing of a whole string. */
rb_status args_to_int(const char *what, const char *s, int *out, rb_err *e);
rb_status args_to_i64(const char *what, const char *s, int64_t *out, rb_err *e);
rb_status args_to_double(const char *what, const char *s, double *out, rb_err *e);

/* Budgets a user gave (--budgets): each must be >= 1 (a budget-free policy needs none, but
 * a 0 written out is a mistake). RB_EINPUT naming --budgets otherwise. */
rb_status args_check_budgets(const int *budgets, int n, rb_err *e);

/* A shard spec "I/N" (--shard): 1 <= I <= N, both plain decimal integers, nothing else.
 * On success *index = I (1-based) and *count = N. */
rb_status args_shard(const char *what, const char *s, int *index, int *count, rb_err *e);

#endif
