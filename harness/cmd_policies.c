/* cmd_policies.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_policies(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: policies: not built yet\n");
    return RB_EINTERNAL;
}
