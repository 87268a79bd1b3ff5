/* cmd_info.c: `raasbench info FILE`: what a trace, results file or GGUF model holds, at a
 * glance. */
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "gguf.h"
#include "eval_results.h"
#include "h5util.h"
#include "results.h"
#include "results_schema.h"
#include "trace.h"

static void human_bytes(int64_t b, char *buf, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)b;
    int i = 0;
    while (x >= 1024 && i < 4) x /= 1024, i++;
    snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", x, u[i]);
}

static int info_trace(const char *path) {
    rb_err e = {0};
    trace *t;
    if (trace_open(path, &t, &e)) return rb_err_print(&e);
    const trace_meta *m = trace_get_meta(t);
    char sz[32];
    human_bytes(trace_file_bytes(t), sz, sizeof sz);
    printf("trace          %s\n", path);
    printf("format         raasbench-trace v%d\n", TRACE_FORMAT_VERSION);
    printf("source         %s\nmodel          %s\n", m->source, m->model);
    printf("shape          %d layers (%d stored), %d query heads, %d KV heads (group %d), "
           "head_dim %d\n", m->n_layers, m->n_stored, m->n_q_heads, m->n_kv_heads,
           m->n_q_heads / m->n_kv_heads, m->head_dim);
    printf("dtype          %s\n", m->dtype == TRACE_F16 ? "float16" : "float32");
    printf("tokens         %d = %d prefill + %d decode steps\n", m->n_tokens, m->n_prefill,
           m->n_tokens - m->n_prefill);
    printf("attn_scale     %.6g\n", m->attn_scale);
    int n_win = 0;
    for (int s = 0; s < m->n_stored; s++) n_win += m->sliding_window[s] > 0;
    printf("layers         %d global, %d sliding-window\n", m->n_stored - n_win, n_win);
    printf("               ");
    for (int s = 0; s < m->n_stored; s++) {
        if (m->sliding_window[s]) printf("%d(w%d) ", m->layers[s], m->sliding_window[s]);
        else printf("%d ", m->layers[s]);
    }
    printf("\n");
    int32_t *rows;
    int n_ms = 0, n_ph = 0;
    rb_status s = trace_read_truth(t, "milestones", &rows, &n_ms, &e);
    free(rows);
    if (!s) s = trace_read_truth(t, "phoenix", &rows, &n_ph, &e);
    if (!s) free(rows);
    if (s) {
        trace_close(t);
        return rb_err_print(&e);
    }
    printf("planted truth  %d milestones, %d phoenix tokens\n", n_ms, n_ph);
    char *text = NULL;
    if (!trace_read_text(t, &text, &e) && text) {
        size_t len = strlen(text);
        printf("text           %.*s%s\n", 120, text, len > 120 ? "..." : "");
        free(text);
    }
    printf("size on disk   %s\n", sz);
    trace_close(t);
    return 0;
}

/* A results file: the provenance and one line per run, both as the schema's RESULTS_F_INFO
 * rows say. */
static int info_results(const char *path) {
    rb_err e = {0};
    results_reader *rd;
    if (results_reader_open(path, &rd, &e)) return rb_err_print(&e);
    results_header h;
    results_reader_header(rd, &h);
    printf("results        %s\n", path);
    int n;
    const results_column *c = results_columns(RESULTS_ROOT, &n);
    for (int i = 0; i < n; i++)
        if ((c[i].flags & RESULTS_F_INFO) && (h.present >> i & 1))
            printf("%-14s %s\n", c[i].name, (const char *)results_field(&h, &c[i]));
    results_header_free(&h);
    results_summary *rows = NULL;
    int n_rows = 0;
    if (results_reader_summary(rd, &rows, &n_rows, NULL, &e)) {
        n_rows = 0;
        if (strcmp(e.why, "has no /summary table")) { /* none is 0 runs; a damaged one is not */
            results_reader_close(rd);
            return rb_err_print(&e);
        }
    }
    results_reader_close(rd);
    printf("runs           %d\n\n", n_rows);
    c = results_columns(RESULTS_SUMMARY, &n);
    for (int r = -1; r < n_rows; r++) {
        const char *sep = "";
        for (int i = 0; i < n; i++) {
            if (!(c[i].flags & RESULTS_F_INFO)) continue;
            char v[128];
            if (r >= 0) results_column_info(&c[i], &rows[r], v, sizeof v);
            printf("%s%*s", sep, c[i].info_width, r < 0 ? c[i].info_head : v);
            sep = " ";
        }
        putchar('\n');
    }
    free(rows);
    return 0;
}

int cmd_info(int argc, char **argv) {
    static const arg_spec specs[] = {{NULL, ARG_FLAG, NULL, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("info", "FILE (a trace, a results file or a GGUF model)", specs, argc, argv, pos, 1, &n_pos,
                   &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (n_pos != 1) {
        rb_fail(&e, RB_EINPUT, "info", "expected one FILE (see --help)");
        return rb_err_print(&e);
    }
    const char *path = pos[0];
    if (rb_input_check(path, &e)) return rb_err_print(&e);
    char magic[4] = {0};
    FILE *fp = fopen(path, "rb");
    if (fp) {
        if (fread(magic, 1, 4, fp) != 4) memset(magic, 0, sizeof magic);
        fclose(fp);
    }
    if (!memcmp(magic, "GGUF", 4)) {
        gguf_file *g;
        if (gguf_open(path, &g, &e)) return rb_err_print(&e);
        gguf_print_summary(stdout, g);
        gguf_close(g);
        return 0;
    }
    char fmt[64];
    int64_t version;
    int rc = h5_file_format(path, fmt, sizeof fmt, &version);
    if (rc == -1) {
        rb_fail(&e, RB_EINPUT, path, "not an HDF5 file (expected a raasbench trace or results "
                "file, or a GGUF model)");
        return rb_err_print(&e);
    }
    if (!strcmp(fmt, RESULTS_FORMAT)) return info_results(path);
    if (!strcmp(fmt, EVAL_FORMAT)) return eval_results_print_info(path);
    return info_trace(path);
}
