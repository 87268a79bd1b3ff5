/* fuzz_trace.c: libFuzzer target for the trace reader: the input is an HDF5 file (seeds:
 * small traces from `raasbench synth` and `decode --record`); trace_open's validation, then
 * a few token windows of every stored layer and tensor, /tokens, /text and the planted truth.
 * An input is either the file's bytes or a program that builds it through libhdf5
 * (h5tree.h; seeds of both kinds from tests/fuzz/h5tree.py). libhdf5 itself is not
 * instrumented: coverage guides only through raasbench's code. */
#include "fuzz_util.h"
#include "h5tree.h"

#include "h5util.h"
#include "trace.h"

/* Floats read at most per call: the target reads windows, as replay does, never a whole
 * declared extent. */
#define MAX_FLOATS (1u << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_h5_input(data, size);
    if (!path) return -1;
    trace *t = NULL;
    rb_err e;
    rb_status st = trace_open(path, &t, &e);
    fuzz_say(st, &e);
    if (st == RB_OK) {
        const trace_meta *m = trace_get_meta(t);
        int heads = m->n_q_heads > m->n_kv_heads ? m->n_q_heads : m->n_kv_heads;
        int n = m->n_tokens < 3 ? m->n_tokens : 3;
        size_t per = (size_t)heads * (size_t)m->head_dim;
        if (n > 0 && per && per * (size_t)n <= MAX_FLOATS) {
            float *buf = malloc(per * (size_t)n * sizeof *buf);
            for (int s = 0; s < m->n_stored; s++)
                for (int w = TRACE_Q; w <= TRACE_V; w++) {
                    (void)trace_read(t, s, (trace_tensor)w, 0, n, buf, &e);
                    (void)trace_read(t, s, (trace_tensor)w, m->n_tokens - n, n, buf, &e);
                }
            free(buf);
        }
        if (m->n_tokens <= (1 << 20)) {
            int32_t *tok = malloc((size_t)m->n_tokens * sizeof *tok);
            int present;
            (void)trace_read_tokens(t, tok, &present, &e);
            free(tok);
        }
        char *text = NULL;
        if (trace_read_text(t, &text, &e) == RB_OK) free(text);
        static const char *const truth[] = {"milestones", "phoenix"};
        for (int i = 0; i < 2; i++) {
            int32_t *rows = NULL;
            int nr = 0;
            if (trace_read_truth(t, truth[i], &rows, &nr, &e) == RB_OK) free(rows);
        }
        (void)trace_file_bytes(t);
        trace_close(t);
    }
    return 0;
}
