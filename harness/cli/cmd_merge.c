/* cmd_merge.c: `raasbench merge`: assemble the final file of a sharded run from what its
 * shards wrote (docs/DESIGN.md §6, tools/slurm/).
 *
 *   raasbench merge CONFIG.json         the sweep's <out> from <out>.cells/
 *   raasbench merge --eval ARGS...      the eval's --out from <out>.parts/ (ARGS: the same
 *                                       as the eval's, --shard left out)
 *
 * Nothing runs: every cell (task) must be there, made by the same configuration (the
 * identity file of the directory and, for a sweep, each cell's own provenance), else the
 * merge is refused naming what is missing. Merging again gives the same file. The work is
 * the sweep's and the eval's own assembly (cmd_sweep.c, cmd_eval.c: their --merge), so a
 * merged file cannot differ from one a single machine would have written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "rb.h"

static const char usage[] =
    "usage: raasbench merge CONFIG.json [--quiet]\n"
    "       raasbench merge --eval --model M.gguf --tasks F.jsonl ... --out R.h5\n\n"
    "Assemble the results file of a sweep (or, with --eval, an eval) whose cells were run\n"
    "as shards (--shard I/N). Runs nothing; refuses when a cell or task is missing or was\n"
    "made by another configuration. Idempotent.\n";

/* cmd(argv[0..argc) + "--merge"), argv copied so the callee parses it as its own. */
static int forward(int (*cmd)(int, char **), int argc, char **argv) {
    char **v = rb_calloc((size_t)argc + 2, sizeof *v);
    for (int i = 0; i < argc; i++) v[i] = argv[i];
    v[argc] = "--merge";
    int rc = cmd(argc + 1, v);
    free(v);
    return rc;
}

int cmd_merge(int argc, char **argv) {
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc >= 1 && !strcmp(argv[0], "--eval")) return forward(cmd_eval, argc - 1, argv + 1);
    if (argc < 1)
        return rb_report(RB_EINPUT, "merge", "expected CONFIG.json, or --eval and the eval's "
                         "arguments (see --help)");
    return forward(cmd_sweep, argc, argv); /* sweep checks the rest (one CONFIG, --quiet) */
}
