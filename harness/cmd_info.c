/* cmd_info.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: info: not built yet\n");
    return RB_EINTERNAL;
}
