/* cmd_bench.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: bench: not built yet\n");
    return RB_EINTERNAL;
}
