/* cmd_decode.c: placeholder until the subcommand lands. */
#include "commands.h"
#include "rb.h"

int cmd_decode(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "raasbench: decode: not built yet\n");
    return RB_EINTERNAL;
}
