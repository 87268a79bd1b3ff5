/* cmd_sweep.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_sweep(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: sweep: not built yet\n");
    return RB_EINTERNAL;
}
