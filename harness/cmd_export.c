/* cmd_export.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_export(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: export: not built yet\n");
    return RB_EINTERNAL;
}
