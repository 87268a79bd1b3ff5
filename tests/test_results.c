/* test_results.c: the results schema is consistent (unique names, every summary column's
 * source a series of the type its reduction needs, steps columns of steps shapes); a run
 * with every series (per-head, live decode, selection dump) and one with the required ones
 * only round-trip bit for bit through the writer and the reader, the /summary read back
 * equals results_summarise and the reductions give what they say; results_assemble copies
 * runs whole; the reader refuses a missing dataset or attribute and disagreeing shapes,
 * naming them, and fills an optional attribute with its default. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"
#include "results.h"
#include "results_schema.h"
#include "testutil.h"

static void check_schema(void) {
    for (int p = 0; p < RESULTS_N_PLACES; p++) {
        int n;
        const results_column *c = results_columns((results_place)p, &n);
        TU_ASSERT(n > 0 && n <= 64, "place %d has %d rows", p, n);
        for (int i = 0; i < n; i++) {
            TU_ASSERT(results_column_find((results_place)p, c[i].name) == &c[i],
                      "%s appears twice in place %d", c[i].name, p);
            TU_ASSERT(c[i].meaning || p == RESULTS_SUMMARY, "%s has no meaning", c[i].name);
            TU_ASSERT(c[i].when != RESULTS_OPTIONAL || c[i].dflt, "%s: optional without default",
                      c[i].name);
            if (p == RESULTS_SERIES) {
                TU_ASSERT(c[i].offset + sizeof(void *) <= sizeof(results_run), "%s", c[i].name);
                TU_ASSERT(!(c[i].flags & RESULTS_F_STEPS) || c[i].shape == RESULTS_SHAPE_T ||
                              c[i].shape == RESULTS_SHAPE_T_L,
                          "%s: a steps column must be [T] or [T, n_layers]", c[i].name);
            }
            if (p != RESULTS_SUMMARY) continue;
            const results_column *src = results_column_find(
                c[i].reduce == RESULTS_COPY ? RESULTS_RUN_ATTR : RESULTS_SERIES, c[i].source);
            TU_ASSERT(src, "summary %s: no source %s", c[i].name, c[i].source);
            switch (c[i].reduce) {
            case RESULTS_COPY:
                TU_ASSERT(c[i].type == RESULTS_STR
                              ? src->type == RESULTS_STR
                              : src->type == RESULTS_INT && c[i].type == RESULTS_I32,
                          "summary %s copies %s of another type", c[i].name, src->name);
                break;
            case RESULTS_MEAN_SPARSE:
                TU_ASSERT(src->type == RESULTS_F32 && src->shape == RESULTS_SHAPE_T_L &&
                              c[i].type == RESULTS_F64, "summary %s", c[i].name);
                break;
            case RESULTS_MEAN:
                TU_ASSERT(src->type == RESULTS_F32 && src->shape == RESULTS_SHAPE_T &&
                              c[i].type == RESULTS_F64, "summary %s", c[i].name);
                break;
            default:
                TU_ASSERT(src->type == RESULTS_I64 && src->shape == RESULTS_SHAPE_T &&
                              c[i].type == RESULTS_I64, "summary %s", c[i].name);
            }
            TU_ASSERT(!(c[i].flags & RESULTS_F_INFO) || (c[i].info_head && c[i].info_conv),
                      "summary %s: info column without header or conversion", c[i].name);
        }
    }
}

enum { T = 7, L = 3, H = 2, N_TOK = 9 };

/* A run with random series; full: also per-head, live decode and selection. */
static void make_run(results_run *r, const char *id, int full, uint64_t *seed) {
    memset(r, 0, sizeof *r);
    results_run_alloc(r, T, L, H, full);
    snprintf(r->run_id, sizeof r->run_id, "%s", id);
    snprintf(r->policy, sizeof r->policy, "raas");
    snprintf(r->trace, sizeof r->trace, "traces/x.h5");
    r->budget = 64, r->page_size = 16, r->dense_layers = 1, r->latency_every = 2;
    r->params_json = rb_strdup("{\"r\":0.25}");
    r->n_tokens = N_TOK;
    for (int l = 0; l < L; l++) r->layers[l] = 2 * l, r->sparse[l] = l > 0;
    for (int t = 0; t < T; t++) {
        r->step[t] = 100 + t;
        r->kv_bytes[t] = 4096 * (t % 4 + 1);
        r->meta_bytes[t] = 8 * t;
        r->latency_ns[t] = t % 2 ? -1 : 1000 + 10 * (T - t); /* not timed on odd steps */
        for (int l = 0; l < L; l++) {
            size_t i = (size_t)t * L + l;
            r->recall[i] = (float)tu_uniform(seed);
            r->out_err[i] = (float)tu_uniform(seed);
            r->attended[i] = (float)(tu_uniform(seed) * 64);
        }
    }
    if (!full) return;
    for (size_t i = 0; i < (size_t)T * L * H; i++)
        r->recall_head[i] = (float)tu_uniform(seed), r->out_err_head[i] = (float)tu_randn(seed);
    r->token_match = rb_calloc(T, sizeof(float));
    r->kl = rb_calloc(T, sizeof(float));
    r->token_latency_ns = rb_calloc(T, sizeof(int64_t));
    for (int t = 0; t < T; t++)
        r->token_match[t] = t % 3 != 0, r->kl[t] = (float)tu_uniform(seed),
        r->token_latency_ns[t] = 5000 + t;
    r->selection = rb_calloc(L, sizeof(uint8_t *));
    for (int l = 0; l < L; l++) {
        r->selection[l] = rb_calloc((size_t)T * H * N_TOK, 1);
        for (int i = 0; i < T * H * N_TOK; i++) r->selection[l][i] = tu_next(seed) & 1;
    }
}

/* Every attribute and series of a equals b's, byte for byte. */
static void check_same_run(const results_run *a, const results_run *b) {
    TU_ASSERT(a->T == b->T && a->n_layers == b->n_layers, "%d %d", b->T, b->n_layers);
    int n;
    const results_column *c = results_columns(RESULTS_RUN_ATTR, &n);
    for (int i = 0; i < n; i++) {
        if (c[i].type == RESULTS_STR_HEAP) {
            TU_ASSERT(!strcmp(a->params_json, b->params_json), "%s", b->params_json);
        } else if (c[i].shape == RESULTS_SHAPE_L) {
            TU_ASSERT(!memcmp(results_field_ptr(a, &c[i]), results_field_ptr(b, &c[i]),
                              sizeof(int32_t) * L), "%s", c[i].name);
        } else {
            TU_ASSERT(!memcmp(results_field(a, &c[i]), results_field(b, &c[i]),
                              c[i].type == RESULTS_STR ? strlen(results_field(a, &c[i])) + 1
                                                       : results_type_size(c[i].type)),
                      "attribute %s differs", c[i].name);
        }
    }
    c = results_columns(RESULTS_SERIES, &n);
    for (int i = 0; i < n; i++) {
        const void *x = results_field_ptr(a, &c[i]), *y = results_field_ptr(b, &c[i]);
        TU_ASSERT(!x == !y, "%s is in one run only", c[i].name);
        if (!x) continue;
        size_t bytes = results_shape_elems(c[i].shape, a->T, a->n_layers, a->n_q_heads,
                                           a->n_tokens) * results_type_size(c[i].type);
        if (c[i].shape != RESULTS_SHAPE_LAYERS_T_H_N) {
            TU_ASSERT(!memcmp(x, y, bytes), "series %s differs", c[i].name);
        } else {
            TU_ASSERT(a->n_q_heads == b->n_q_heads && a->n_tokens == b->n_tokens, "%d %d",
                      b->n_q_heads, b->n_tokens);
            for (int l = 0; l < L; l++)
                TU_ASSERT(!memcmp(((void *const *)x)[l], ((void *const *)y)[l], bytes),
                          "%s layer %d differs", c[i].name, l);
        }
    }
}

static void check_summary_rows(const results_summary *got, const results_run *r) {
    results_summary want;
    results_summarise(r, &want);
    int n;
    const results_column *c = results_columns(RESULTS_SUMMARY, &n);
    for (int i = 0; i < n; i++)
        TU_ASSERT(!memcmp(results_field(got, &c[i]), results_field(&want, &c[i]),
                          c[i].type == RESULTS_STR ? c[i].size : results_type_size(c[i].type)),
                  "summary %s of %s differs", c[i].name, r->run_id);
}

/* The reductions, computed here the long way. */
static void check_reductions(const results_run *r, int live) {
    results_summary s;
    results_summarise(r, &s);
    double sum = 0;
    for (int t = 0; t < T; t++)
        for (int l = 1; l < L; l++) sum += r->recall[t * L + l]; /* layer 0 is dense */
    TU_ASSERT(s.mean_recall == sum / (T * (L - 1)), "mean_recall %.17g", s.mean_recall);
    /* timed steps 0, 2, 4, 6: latencies 1070, 1050, 1030, 1010 */
    TU_ASSERT(s.p50_latency_ns == 1030 && s.p99_latency_ns == 1070, "p50 %lld p99 %lld",
              (long long)s.p50_latency_ns, (long long)s.p99_latency_ns);
    TU_ASSERT(s.peak_kv_bytes == 4 * 4096 && s.final_kv_bytes == 4096 * 3 &&
                  s.peak_meta_bytes == 8 * (T - 1), "kv %lld %lld",
              (long long)s.peak_kv_bytes, (long long)s.final_kv_bytes);
    TU_ASSERT(!strcmp(s.run_id, r->run_id) && !strcmp(s.policy, "raas") && s.budget == 64,
              "%s %s %d", s.run_id, s.policy, s.budget);
    if (live) TU_ASSERT(fabs(s.mean_token_match - 4.0 / 7) < 1e-15, "%g", s.mean_token_match);
    else TU_ASSERT(isnan(s.mean_token_match) && isnan(s.mean_kl), "not live: NaN");
}

static void write_file(const char *path, results_run *runs, int n) {
    rb_err e = {0};
    results_writer *w;
    results_provenance p = {.trace = "traces/x.h5", .trace_sha256 = "ab", .config_json = "{}"};
    TU_OK(results_create(path, &p, &w, &e), e);
    for (int i = 0; i < n; i++) TU_OK(results_add_run(w, &runs[i], &e), e);
    TU_OK(results_finish(w, &e), e);
}

/* Edit run `id` of a file with HDF5 directly, then expect the reader to refuse it with a
 * message containing `want` (or, want NULL, to accept it). */
typedef void (*edit_fn)(hid_t g);
static void expect_read(const char *path, edit_fn edit, const char *want, results_run *out) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "runs/full", H5P_DEFAULT);
    edit(g);
    H5Gclose(g);
    H5Fclose(f);
    rb_err e = {0};
    results_run r;
    rb_status s = results_read_run(path, "full", &r, &e);
    if (!want) {
        TU_OK(s, e);
        *out = r;
        return;
    }
    TU_ASSERT(s == RB_EINPUT && strstr(e.why, want) && strstr(e.what, "run full"),
              "got %d '%s: %s', want '%s'", s, e.what, e.why, want);
}

static void drop_kv_bytes(hid_t g) { H5Ldelete(g, "kv_bytes", H5P_DEFAULT); }
static void drop_page_size(hid_t g) { H5Adelete(g, "page_size"); }
static void drop_latency_every(hid_t g) { H5Adelete(g, "latency_every"); }
static void long_attended(hid_t g) {
    H5Ldelete(g, "attended", H5P_DEFAULT);
    float x[(T + 1) * L] = {0};
    hsize_t d[2] = {T + 1, L};
    h5_write_dataset(g, "attended", H5T_NATIVE_FLOAT, 2, d, x, 0);
}
static void short_selection(hid_t g) {
    H5Ldelete(g, "selection/layer_002", H5P_DEFAULT);
    uint8_t x[T * H * (N_TOK - 1)];
    memset(x, 0, sizeof x);
    hsize_t d[3] = {T, H, N_TOK - 1};
    h5_write_dataset(g, "selection/layer_002", H5T_NATIVE_UINT8, 3, d, x, 0);
}

int main(void) {
    check_schema();
    char dir[] = "/tmp/rb_test_results_XXXXXX";
    TU_ASSERT(mkdtemp(dir), "mkdtemp");
    char path[256], path2[256], joined[256];
    snprintf(path, sizeof path, "%s/a.h5", dir);
    snprintf(path2, sizeof path2, "%s/b.h5", dir);
    snprintf(joined, sizeof joined, "%s/ab.h5", dir);
    uint64_t seed = 7;
    results_run runs[2];
    make_run(&runs[0], "full", 1, &seed);
    make_run(&runs[1], "plain", 0, &seed);
    check_reductions(&runs[0], 1);
    check_reductions(&runs[1], 0);
    write_file(path, runs, 2);

    rb_err e = {0};
    results_reader *rd;
    TU_OK(results_reader_open(path, &rd, &e), e);
    char **ids;
    int n_ids;
    TU_OK(results_reader_runs(rd, &ids, &n_ids, &e), e);
    TU_ASSERT(n_ids == 2 && !strcmp(ids[0], "full") && !strcmp(ids[1], "plain"), "%d runs", n_ids);
    for (int i = 0; i < 2; i++) {
        results_run back;
        TU_OK(results_reader_run(rd, ids[i], 0, &back, &e), e);
        check_same_run(&runs[i], &back);
        uint64_t has;
        TU_OK(results_reader_present(rd, ids[i], &has, &e), e);
        const results_column *kl = results_column_find(RESULTS_SERIES, "kl");
        int n;
        const results_column *c0 = results_columns(RESULTS_SERIES, &n);
        TU_ASSERT((int)(has >> (kl - c0) & 1) == (i == 0), "kl present bit of %s", ids[i]);
        results_run_free(&back);
        free(ids[i]);
    }
    free(ids);
    /* skipping the per-head and selection series leaves them NULL */
    results_run part;
    TU_OK(results_reader_run(rd, "full", RESULTS_SKIP(RESULTS_PER_HEAD) |
                                            RESULTS_SKIP(RESULTS_SELECTION), &part, &e), e);
    TU_ASSERT(!part.recall_head && !part.selection && part.kl && part.recall, "skip");
    results_run_free(&part);
    results_summary *rows;
    int n_rows;
    uint64_t present;
    TU_OK(results_reader_summary(rd, &rows, &n_rows, &present, &e), e);
    int n_sum;
    results_columns(RESULTS_SUMMARY, &n_sum);
    TU_ASSERT(n_rows == 2 && present == (1ull << n_sum) - 1, "%d rows", n_rows);
    for (int i = 0; i < 2; i++) check_summary_rows(&rows[i], &runs[i]);
    free(rows);
    results_header h;
    results_reader_header(rd, &h);
    TU_ASSERT(!strcmp(h.format, RESULTS_FORMAT) && h.format_version == 1 &&
                  !strcmp(h.trace_sha256, "ab") && !strcmp(h.config, "{}"), "header");
    results_header_free(&h);
    results_reader_close(rd);

    /* assemble: the runs of two files, whole */
    write_file(path2, &runs[1], 1);
    runs[1].run_id[0] = 'P'; /* the second file's run under another id */
    {
        char p3[256];
        snprintf(p3, sizeof p3, "%s/c.h5", dir);
        write_file(p3, &runs[1], 1);
        const char *srcs[] = {path, p3};
        TU_OK(results_assemble(joined, NULL, srcs, 2, &e), e);
        char **jids;
        int nj;
        TU_OK(results_list_runs(joined, &jids, &nj, &e), e);
        TU_ASSERT(nj == 3, "%d runs assembled", nj);
        for (int i = 0; i < nj; i++) free(jids[i]);
        free(jids);
        results_run back;
        TU_OK(results_read_run(joined, "full", &back, &e), e);
        check_same_run(&runs[0], &back);
        results_run_free(&back);
    }

    /* refusals, each on a fresh copy of the file */
    struct {
        edit_fn edit;
        const char *want;
    } bad[] = {
        {drop_kv_bytes, "missing dataset kv_bytes"},
        {drop_page_size, "missing attribute page_size"},
        {long_attended, "attended is [8, 3], expected [T, n_layers] = [7, 3]"},
        {short_selection, "selection/layer_002 is [7, 2, 8], expected [T, n_q_heads, "
                          "n_tokens] = [7, 2, 9]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, runs, 1);
        expect_read(path, bad[i].edit, bad[i].want, NULL);
    }
    write_file(path, runs, 1);
    results_run back;
    expect_read(path, drop_latency_every, NULL, &back);
    TU_ASSERT(back.latency_every == 1, "optional latency_every read as %d", back.latency_every);
    results_run_free(&back);
    TU_ASSERT(results_read_run(path, "nosuch", &back, &e) == RB_EINPUT &&
                  strstr(e.why, "no run 'nosuch'"), "%s", e.why);
    TU_ASSERT(results_reader_open(dir, &rd, &e) == RB_EINPUT, "a directory is no results file");

    results_run_free(&runs[0]);
    results_run_free(&runs[1]);
    tu_rmdir(dir);
    return tu_done("test_results");
}
