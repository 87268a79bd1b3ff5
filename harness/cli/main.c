/* main.c: the raasbench binary: dispatches to a subcommand (docs/DESIGN.md §6). */
#include <string.h>

#include "commands.h"
#include "rb.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"synth", cmd_synth, "write a synthetic reasoning trace with planted milestones"},
    {"replay", cmd_replay, "replay a trace under policies and budgets, write per-step metrics"},
    {"sweep", cmd_sweep, "run a resumable sweep described by a JSON config"},
    {"decode", cmd_decode, "decode a GGUF model live with a policy on its KV cache"},
    {"lifecycle", cmd_lifecycle, "find milestone and phoenix tokens in a trace's attention"},
    {"export", cmd_export, "write results as TSV for gnuplot or a spreadsheet"},
    {"info", cmd_info, "summarise a trace or a results file"},
    {"bench", cmd_bench, "benchmark kernels and the replay engine"},
    {"policies", cmd_policies, "list policies with their parameters and defaults"},
    {"tasks", cmd_tasks, "write graded reasoning tasks (seeded chains) for eval"},
    {"eval", cmd_eval, "graded task accuracy of free-running decodes under every cell"},
    {"merge", cmd_merge, "assemble a sharded sweep's or eval's results from its cells"},
};

static void usage(FILE *f) {
    fprintf(f, "raasbench %s: KV-cache sparsity for long reasoning decodes\n\n"
               "usage: raasbench <command> [options]   (raasbench <command> --help)\n\n"
               "commands:\n",
            rb_version);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return RB_EINPUT;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("raasbench %s (%s, %s)\n", rb_version, rb_git_commit, rb_compiler);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "raasbench: %s: unknown command (see raasbench --help)\n", argv[1]);
    return RB_EINPUT;
}
