/* cmd_synth.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_synth(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: synth: not built yet\n");
    return RB_EINTERNAL;
}
