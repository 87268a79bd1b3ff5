/* cmd_replay.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_replay(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: replay: not built yet\n");
    return RB_EINTERNAL;
}
