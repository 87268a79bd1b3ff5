/* fuzz_sweep_config.c: libFuzzer target for the sweep configuration parser (cJSON and
 * raasbench's checks of every key, policy variants and their parameters) and the sweep's
 * identity. The parser is static in cmd_sweep.c, so the file is included here; nothing of
 * the sweep itself runs (no trace is opened, nothing is written). */
#include "fuzz_util.h"

#define cmd_sweep fuzz_unused_cmd_sweep
#include "../../harness/cli/cmd_sweep.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path);
    sweep_config c;
    rb_err e;
    if (parse_config(path, &c, &e) == RB_OK) {
        char *id = sweep_identity(&c);
        free(id);
    }
    cJSON_Delete(c.root);
    close(fd);
    return 0;
}
