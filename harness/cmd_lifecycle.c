/* cmd_lifecycle.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_lifecycle(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: lifecycle: not built yet\n");
    return RB_EINTERNAL;
}
