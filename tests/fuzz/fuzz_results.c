/* fuzz_results.c: libFuzzer target for the results reader: the input is an HDF5 file
 * (seeds: results of `raasbench replay` and `synth`'s trace, seeds.sh); the header, the run
 * list, each run's present series and the run itself (every shape checked against the
 * schema), and /summary. Inputs: the file's bytes, or a program that builds it (h5tree.h).
 * libhdf5 itself is not instrumented. */
#include "fuzz_util.h"
#include "h5tree.h"

#include "results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_h5_input(data, size);
    if (!path) return -1;
    results_reader *rd = NULL;
    rb_err e;
    rb_status st = results_reader_open(path, &rd, &e);
    fuzz_say(st, &e);
    if (st == RB_OK) {
        results_header h;
        results_reader_header(rd, &h);
        results_header_free(&h);
        char **ids = NULL;
        int n = 0;
        if (results_reader_runs(rd, &ids, &n, &e) == RB_OK) {
            for (int i = 0; i < n; i++) {
                if (i < 4) {
                    uint64_t series;
                    (void)results_reader_present(rd, ids[i], &series, &e);
                    results_run r;
                    if (results_reader_run(rd, ids[i], 0, &r, &e) == RB_OK) {
                        results_summary s;
                        results_summarise(&r, &s);
                        results_run_free(&r);
                    }
                }
                free(ids[i]);
            }
            free(ids);
        }
        results_summary *rows = NULL;
        int nr = 0;
        uint64_t present;
        if (results_reader_summary(rd, &rows, &nr, &present, &e) == RB_OK) free(rows);
        results_reader_close(rd);
    }
    return 0;
}
