/* results.c: writing, reading and summarising results files (see results.h). */
#define _POSIX_C_SOURCE 200809L
#include "results.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"
#include "sha256.h"

/* ------------------------------------------------------------------ the schema */

#define RUN_COL(field) offsetof(results_run, field)
/* In `export --table steps` order (the TSV's columns), then the per-head ones. */
static const results_column columns[] = {
    {"step", RESULTS_I32, RESULTS_SHAPE_T, RESULTS_COL_REQUIRED | RESULTS_COL_STEPS, "position",
     "decode position of the step", RUN_COL(step)},
    {"recall", RESULTS_F32, RESULTS_SHAPE_T_LAYERS, RESULTS_COL_REQUIRED | RESULTS_COL_STEPS, "",
     "attention mass kept: sum over S of the dense softmax, mean over query heads",
     RUN_COL(recall)},
    {"out_err", RESULTS_F32, RESULTS_SHAPE_T_LAYERS, RESULTS_COL_REQUIRED | RESULTS_COL_STEPS, "",
     "\u2016o_S \u2212 o*\u2016 / \u2016o*\u2016 (absolute when o* = 0), mean over query heads",
     RUN_COL(out_err)},
    {"attended", RESULTS_F32, RESULTS_SHAPE_T_LAYERS, RESULTS_COL_REQUIRED | RESULTS_COL_STEPS,
     "tokens", "mean size of S over query heads", RUN_COL(attended)},
    {"latency_ns", RESULTS_I64, RESULTS_SHAPE_T,
     RESULTS_COL_REQUIRED | RESULTS_COL_STEPS | RESULTS_COL_NEG_NA, "ns",
     "wall time of the policy's step over all layers: append + select + attention over S + "
     "observe; -1 on steps not timed (latency_every > 1)",
     RUN_COL(latency_ns)},
    {"kv_bytes", RESULTS_I64, RESULTS_SHAPE_T, RESULTS_COL_REQUIRED | RESULTS_COL_STEPS, "bytes",
     "resident K and V bytes, all layers and KV heads, pages counted whole, at elem_bytes per "
     "element",
     RUN_COL(kv_bytes)},
    {"meta_bytes", RESULTS_I64, RESULTS_SHAPE_T, RESULTS_COL_REQUIRED | RESULTS_COL_STEPS, "bytes",
     "the policy's own bookkeeping", RUN_COL(meta_bytes)},
    {"token_match", RESULTS_F32, RESULTS_SHAPE_T, RESULTS_COL_LIVE | RESULTS_COL_STEPS, "",
     "1 where the cell's argmax equals the dense trajectory's (teacher-forced decode)",
     RUN_COL(token_match)},
    {"kl", RESULTS_F32, RESULTS_SHAPE_T, RESULTS_COL_LIVE | RESULTS_COL_STEPS, "nats",
     "KL(dense \u2016 cell) of the next-token distributions (teacher-forced decode)",
     RUN_COL(kl)},
    {"token_latency_ns", RESULTS_I64, RESULTS_SHAPE_T,
     RESULTS_COL_LIVE | RESULTS_COL_STEPS | RESULTS_COL_NEG_NA, "ns",
     "whole-token time of the live decode", RUN_COL(token_latency_ns)},
    {"recall_head", RESULTS_F32, RESULTS_SHAPE_T_LAYERS_HEADS, RESULTS_COL_PER_HEAD, "",
     "recall of each query head (--per-head)", RUN_COL(recall_head)},
    {"out_err_head", RESULTS_F32, RESULTS_SHAPE_T_LAYERS_HEADS, RESULTS_COL_PER_HEAD, "",
     "out_err of each query head (--per-head)", RUN_COL(out_err_head)},
};
#define N_COLUMNS ((int)(sizeof columns / sizeof columns[0]))

#define SUM_COL(field) offsetof(results_summary, field), sizeof(((results_summary *)0)->field)
static const results_summary_column summary_columns[] = {
    {"run_id", RESULTS_STR, SUM_COL(run_id), "", "the run"},
    {"trace", RESULTS_STR, SUM_COL(trace), "", "the trace (or model) it ran on"},
    {"policy", RESULTS_STR, SUM_COL(policy), "", "policy name"},
    {"budget", RESULTS_I32, SUM_COL(budget), "tokens", "L, per KV head"},
    {"mean_recall", RESULTS_F64, SUM_COL(mean_recall), "", "mean over steps and sparse layers"},
    {"mean_out_err", RESULTS_F64, SUM_COL(mean_out_err), "", "mean over steps and sparse layers"},
    {"mean_attended", RESULTS_F64, SUM_COL(mean_attended), "tokens",
     "mean over steps and sparse layers"},
    {"p50_latency_ns", RESULTS_I64, SUM_COL(p50_latency_ns), "ns",
     "median over the timed steps (nearest rank); -1 when none"},
    {"p99_latency_ns", RESULTS_I64, SUM_COL(p99_latency_ns), "ns",
     "99th percentile over the timed steps (nearest rank); -1 when none"},
    {"peak_kv_bytes", RESULTS_I64, SUM_COL(peak_kv_bytes), "bytes", "largest kv_bytes"},
    {"final_kv_bytes", RESULTS_I64, SUM_COL(final_kv_bytes), "bytes", "kv_bytes at the last step"},
    {"peak_meta_bytes", RESULTS_I64, SUM_COL(peak_meta_bytes), "bytes", "largest meta_bytes"},
    {"mean_token_match", RESULTS_F64, SUM_COL(mean_token_match), "",
     "mean token_match; NaN unless a teacher-forced decode"},
    {"mean_kl", RESULTS_F64, SUM_COL(mean_kl), "nats",
     "mean kl; NaN unless a teacher-forced decode"},
};
#define N_SUMMARY ((int)(sizeof summary_columns / sizeof summary_columns[0]))
_Static_assert(N_SUMMARY <= RESULTS_MAX_SUMMARY_COLUMNS, "raise RESULTS_MAX_SUMMARY_COLUMNS");

const results_column *results_columns(int *n) {
    *n = N_COLUMNS;
    return columns;
}

const results_summary_column *results_summary_columns(int *n) {
    *n = N_SUMMARY;
    return summary_columns;
}

static void **col_ptr(const results_run *r, const results_column *c) {
    return (void **)((char *)r + c->offset);
}

static size_t type_size(results_type t) {
    return t == RESULTS_I32 || t == RESULTS_F32 ? 4 : 8;
}

static hid_t mem_type(results_type t) {
    switch (t) {
    case RESULTS_I32: return H5T_NATIVE_INT32;
    case RESULTS_I64: return H5T_NATIVE_INT64;
    case RESULTS_F32: return H5T_NATIVE_FLOAT;
    default: return H5T_NATIVE_DOUBLE;
    }
}

/* The dimensions of a column in a run of T steps, L layers, H query heads; returns the rank. */
static int col_dims(results_shape sh, hsize_t T, hsize_t L, hsize_t H, hsize_t *dims) {
    dims[0] = T, dims[1] = L, dims[2] = H;
    return sh == RESULTS_SHAPE_T ? 1 : sh == RESULTS_SHAPE_T_LAYERS ? 2 : 3;
}

static size_t col_elems(results_shape sh, size_t T, size_t L, size_t H) {
    return sh == RESULTS_SHAPE_T ? T : sh == RESULTS_SHAPE_T_LAYERS ? T * L : T * L * H;
}

/* ------------------------------------------------------------------ runs */

void results_run_alloc(results_run *r, int T, int n_layers, int n_q_heads, int per_head) {
    r->T = T, r->n_layers = n_layers, r->n_q_heads = n_q_heads;
    r->layers = rb_calloc((size_t)n_layers, sizeof(int32_t));
    r->sparse = rb_calloc((size_t)n_layers, sizeof(int32_t));
    for (int i = 0; i < N_COLUMNS; i++) {
        const results_column *c = &columns[i];
        if ((c->flags & RESULTS_COL_REQUIRED) || (per_head && (c->flags & RESULTS_COL_PER_HEAD)))
            *col_ptr(r, c) = rb_calloc(col_elems(c->shape, (size_t)T, (size_t)n_layers,
                                                 (size_t)n_q_heads),
                                       type_size(c->type));
    }
}

void results_run_free(results_run *r) {
    for (int i = 0; i < N_COLUMNS; i++) free(*col_ptr(r, &columns[i]));
    free(r->params_json), free(r->layers), free(r->sparse);
    if (r->selection) {
        for (int l = 0; l < r->n_layers; l++) free(r->selection[l]);
        free(r->selection);
    }
    memset(r, 0, sizeof *r);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t percentile(const int64_t *sorted, int n, double p) {
    if (n == 0) return 0;
    int k = (int)ceil(p / 100.0 * n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return sorted[k];
}

void results_summarise(const results_run *r, results_summary *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->run_id, sizeof s->run_id, "%s", r->run_id);
    snprintf(s->trace, sizeof s->trace, "%s", r->trace);
    snprintf(s->policy, sizeof s->policy, "%s", r->policy);
    s->budget = r->budget;
    double sr = 0, se = 0, sa = 0;
    long cnt = 0;
    for (int t = 0; t < r->T; t++)
        for (int l = 0; l < r->n_layers; l++) {
            if (!r->sparse[l]) continue;
            size_t i = (size_t)t * r->n_layers + l;
            sr += r->recall[i], se += r->out_err[i], sa += r->attended[i];
            cnt++;
        }
    s->mean_recall = cnt ? sr / cnt : NAN;
    s->mean_out_err = cnt ? se / cnt : NAN;
    s->mean_attended = cnt ? sa / cnt : NAN;
    /* Percentiles over the measured steps (-1 marks a step that was not timed). */
    int64_t *lat = rb_malloc(sizeof(int64_t) * (size_t)(r->T ? r->T : 1));
    int n_lat = 0;
    for (int t = 0; t < r->T; t++)
        if (r->latency_ns[t] >= 0) lat[n_lat++] = r->latency_ns[t];
    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_i64);
    s->p50_latency_ns = n_lat ? percentile(lat, n_lat, 50) : -1;
    s->p99_latency_ns = n_lat ? percentile(lat, n_lat, 99) : -1;
    free(lat);
    for (int t = 0; t < r->T; t++) {
        if (r->kv_bytes[t] > s->peak_kv_bytes) s->peak_kv_bytes = r->kv_bytes[t];
        if (r->meta_bytes[t] > s->peak_meta_bytes) s->peak_meta_bytes = r->meta_bytes[t];
    }
    s->final_kv_bytes = r->T ? r->kv_bytes[r->T - 1] : 0;
    s->mean_token_match = s->mean_kl = NAN;
    if (r->token_match && r->kl && r->T) {
        double a = 0, b = 0;
        for (int t = 0; t < r->T; t++) a += r->token_match[t], b += r->kl[t];
        s->mean_token_match = a / r->T, s->mean_kl = b / r->T;
    }
}

/* ------------------------------------------------------------------ writing */

struct results_writer {
    char *path, *tmp;
    hid_t file, runs;
    results_summary *rows;
    int n_rows, cap_rows;
};

void results_abort(results_writer *w) {
    if (!w) return;
    if (w->runs > 0) H5Gclose(w->runs);
    if (w->file > 0) H5Fclose(w->file);
    remove(w->tmp);
    free(w->rows), free(w->path), free(w->tmp), free(w);
}

rb_status results_create(const char *path, const results_provenance *p, results_writer **out,
                         rb_err *e) {
    *out = NULL;
    h5_quiet();
    results_writer *w = rb_calloc(1, sizeof *w);
    w->path = rb_strdup(path);
    char tmp[4096];
    h5_tmp_path(path, tmp, sizeof tmp);
    w->tmp = rb_strdup(tmp);
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        rb_status s = rb_fail(e, RB_EINPUT, path, "cannot create %s (directory missing or not "
                              "writable?)", w->tmp);
        results_abort(w);
        return s;
    }
    char created[64], host[256] = "unknown", libs[256];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    gethostname(host, sizeof host - 1);
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(libs, sizeof libs, "hdf5 %u.%u.%u", maj, min, rel);
    hid_t f = w->file;
    int bad = 0;
    bad |= h5_attr_write_str(f, "format", RESULTS_FORMAT);
    bad |= h5_attr_write_i64(f, "format_version", RESULTS_FORMAT_VERSION);
    bad |= h5_attr_write_str(f, "raasbench_version", rb_version);
    bad |= h5_attr_write_str(f, "git_commit", rb_git_commit);
    bad |= h5_attr_write_str(f, "compiler", rb_compiler);
    bad |= h5_attr_write_str(f, "libraries", libs);
    bad |= h5_attr_write_str(f, "created", created);
    bad |= h5_attr_write_str(f, "host", host);
    bad |= h5_attr_write_str(f, "trace", p && p->trace ? p->trace : "");
    bad |= h5_attr_write_str(f, "trace_sha256", p && p->trace_sha256 ? p->trace_sha256 : "");
    bad |= h5_attr_write_str(f, "config", p && p->config_json ? p->config_json : "{}");
    w->runs = H5Gcreate2(f, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (bad || w->runs < 0) {
        rb_status s = rb_fail(e, RB_EINTERNAL, path, "HDF5 failed writing the file header");
        results_abort(w);
        return s;
    }
    *out = w;
    return RB_OK;
}

rb_status results_add_run(results_writer *w, const results_run *r, rb_err *e) {
    if (H5Lexists(w->runs, r->run_id, H5P_DEFAULT) > 0)
        return rb_fail(e, RB_EINPUT, r->run_id, "run id appears twice in one results file");
    hid_t g = H5Gcreate2(w->runs, r->run_id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return rb_fail(e, RB_EINTERNAL, r->run_id, "cannot create run group");
    int bad = 0;
    bad |= h5_attr_write_str(g, "policy", r->policy);
    bad |= h5_attr_write_i64(g, "budget", r->budget);
    bad |= h5_attr_write_str(g, "params", r->params_json ? r->params_json : "{}");
    bad |= h5_attr_write_i64(g, "page_size", r->page_size);
    bad |= h5_attr_write_i64(g, "dense_layers", r->dense_layers);
    bad |= h5_attr_write_i64(g, "latency_every", r->latency_every > 0 ? r->latency_every : 1);
    bad |= h5_attr_write_str(g, "trace", r->trace);
    bad |= h5_attr_write_i32_array(g, "layers", r->layers, r->n_layers);
    bad |= h5_attr_write_i32_array(g, "sparse_layers", r->sparse, r->n_layers);
    hsize_t T = (hsize_t)r->T;
    for (int i = 0; i < N_COLUMNS && !bad; i++) {
        const results_column *c = &columns[i];
        const void *x = *col_ptr(r, c);
        if (!x) {
            bad |= (c->flags & RESULTS_COL_REQUIRED) != 0;
            continue;
        }
        hsize_t dims[3];
        int rank = col_dims(c->shape, T, (hsize_t)r->n_layers, (hsize_t)r->n_q_heads, dims);
        bad |= h5_write_dataset(g, c->name, mem_type(c->type), rank, dims, x, 1);
    }
    if (r->selection) {
        hid_t sg = H5Gcreate2(g, "selection", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t dims[3] = {T, (hsize_t)r->n_q_heads, (hsize_t)r->n_tokens};
        for (int l = 0; l < r->n_layers && !bad; l++) {
            char name[32];
            snprintf(name, sizeof name, "layer_%03d", r->layers[l]);
            bad |= h5_write_dataset(sg, name, H5T_NATIVE_UINT8, 3, dims, r->selection[l], 1);
        }
        H5Gclose(sg);
    }
    H5Gclose(g);
    if (bad) return rb_fail(e, RB_EINTERNAL, w->path, "HDF5 failed writing run %s", r->run_id);
    if (w->n_rows == w->cap_rows) {
        w->cap_rows = w->cap_rows ? 2 * w->cap_rows : 16;
        w->rows = rb_realloc(w->rows, sizeof *w->rows * (size_t)w->cap_rows);
    }
    results_summarise(r, &w->rows[w->n_rows++]);
    return RB_OK;
}

static hid_t fixed_str(size_t n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

/* The /summary compound type, in memory and in the file (same layout). */
static hid_t summary_type(void) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(results_summary));
    for (int i = 0; i < N_SUMMARY; i++) {
        const results_summary_column *c = &summary_columns[i];
        if (c->type == RESULTS_STR) {
            hid_t st = fixed_str(c->size);
            H5Tinsert(t, c->name, c->offset, st);
            H5Tclose(st);
        } else {
            H5Tinsert(t, c->name, c->offset, mem_type(c->type));
        }
    }
    return t;
}

rb_status results_finish(results_writer *w, rb_err *e) {
    hid_t t = summary_type();
    hsize_t n = (hsize_t)w->n_rows;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(w->file, "summary", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && (n == 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->rows) >= 0);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    H5Gclose(w->runs);
    w->runs = 0;
    ok = ok && H5Fclose(w->file) >= 0;
    w->file = 0;
    if (!ok || rename(w->tmp, w->path) != 0) {
        rb_status s = rb_fail(e, RB_EINTERNAL, w->path, "could not complete the results file");
        results_abort(w);
        return s;
    }
    free(w->rows), free(w->path), free(w->tmp), free(w);
    return RB_OK;
}

/* ------------------------------------------------------------------ reading */

static rb_status open_results(const char *path, hid_t *f, rb_err *e) {
    h5_quiet();
    if (access(path, R_OK) != 0) return rb_fail(e, RB_EINPUT, path, "no such file");
    if (H5Fis_hdf5(path) <= 0) return rb_fail(e, RB_EINPUT, path, "not an HDF5 file");
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return rb_fail(e, RB_EINPUT, path, "cannot open (damaged file?)");
    char fmt[64] = "";
    int64_t ver = 0;
    if (h5_attr_read_str(*f, "format", fmt, sizeof fmt) || strcmp(fmt, RESULTS_FORMAT)) {
        H5Fclose(*f);
        return rb_fail(e, RB_EINPUT, path, "not a raasbench results file (format '%s')", fmt);
    }
    if (h5_attr_read_i64(*f, "format_version", &ver) || ver != RESULTS_FORMAT_VERSION) {
        H5Fclose(*f);
        return rb_fail(e, RB_EINPUT, path, "results format_version %lld not supported",
                       (long long)ver);
    }
    return RB_OK;
}

typedef struct name_list { char **v; int n; } name_list;
static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g, (void)info;
    name_list *l = op;
    l->v = rb_realloc(l->v, sizeof(char *) * (size_t)(l->n + 1));
    l->v[l->n++] = rb_strdup(name);
    return 0;
}

rb_status results_list_runs(const char *path, char ***ids, int *n, rb_err *e) {
    hid_t f;
    rb_status s = open_results(path, &f, e);
    if (s) return s;
    name_list l = {0};
    if (H5Lexists(f, "runs", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "runs", H5P_DEFAULT);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &l);
        H5Gclose(g);
    }
    H5Fclose(f);
    *ids = l.v;
    *n = l.n;
    return RB_OK;
}

/* Read column c of run group g, whose shape must be dims[0..rank). Absent: NULL and RB_OK.
 * A wrong shape or unreadable data: RB_EINPUT naming the dataset. */
static rb_status read_column(hid_t g, const results_column *c, const hsize_t *dims,
                             const char *what, void **out, rb_err *e) {
    *out = NULL;
    if (H5Lexists(g, c->name, H5P_DEFAULT) <= 0) return RB_OK;
    hid_t d = H5Dopen2(g, c->name, H5P_DEFAULT);
    if (d < 0) return rb_fail(e, RB_EINPUT, what, "%s is not a dataset", c->name);
    hid_t sp = H5Dget_space(d);
    int rank = col_dims(c->shape, dims[0], dims[1], dims[2], (hsize_t[3]){0, 0, 0});
    hsize_t got[3] = {0, 0, 0};
    int got_rank = H5Sget_simple_extent_ndims(sp);
    if (got_rank == rank) H5Sget_simple_extent_dims(sp, got, NULL);
    H5Sclose(sp);
    size_t n = 1;
    int ok = got_rank == rank;
    for (int i = 0; i < rank && ok; i++) ok = got[i] == dims[i], n *= (size_t)dims[i];
    rb_status st = RB_OK;
    if (!ok) {
        st = rb_fail(e, RB_EINPUT, what, "%s has shape [%llu, %llu, %llu] (rank %d), expected rank %d "
                     "[%llu, %llu, %llu] (not all of step's T and the layers agree)", c->name,
                     (unsigned long long)got[0], (unsigned long long)got[1],
                     (unsigned long long)got[2], got_rank, rank, (unsigned long long)dims[0],
                     (unsigned long long)(rank > 1 ? dims[1] : 0),
                     (unsigned long long)(rank > 2 ? dims[2] : 0));
    } else {
        *out = rb_malloc(type_size(c->type) * (n ? n : 1));
        if (n && H5Dread(d, mem_type(c->type), H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
            free(*out);
            *out = NULL;
            st = rb_fail(e, RB_EINPUT, what, "%s cannot be read as numbers", c->name);
        }
    }
    H5Dclose(d);
    return st;
}

/* The extent of dimension k of a dataset of g, 0 when absent or of another rank. */
static hsize_t extent(hid_t g, const char *name, int rank, int k) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[3] = {0, 0, 0};
    if (H5Sget_simple_extent_ndims(sp) == rank) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    return dims[k];
}

rb_status results_read_run(const char *path, const char *run_id, results_run *r, rb_err *e) {
    memset(r, 0, sizeof *r);
    hid_t f;
    rb_status s = open_results(path, &f, e);
    if (s) return s;
    char gp[256], what[600];
    snprintf(gp, sizeof gp, "runs/%s", run_id);
    snprintf(what, sizeof what, "%s: run %s", path, run_id);
    if (H5Lexists(f, "runs", H5P_DEFAULT) <= 0 || H5Lexists(f, gp, H5P_DEFAULT) <= 0) {
        H5Fclose(f);
        return rb_fail(e, RB_EINPUT, path, "no run '%s'", run_id);
    }
    hid_t g = H5Gopen2(f, gp, H5P_DEFAULT);
    snprintf(r->run_id, sizeof r->run_id, "%s", run_id);
    int64_t v = 0;
    char params[8192] = "{}";
    h5_attr_read_str(g, "policy", r->policy, sizeof r->policy);
    r->budget = h5_attr_read_i64(g, "budget", &v) ? -1 : (int)v;
    r->page_size = h5_attr_read_i64(g, "page_size", &v) ? 0 : (int)v;
    r->dense_layers = h5_attr_read_i64(g, "dense_layers", &v) ? 0 : (int)v;
    r->latency_every = h5_attr_read_i64(g, "latency_every", &v) ? 1 : (int)v;
    h5_attr_read_str(g, "params", params, sizeof params);
    r->params_json = rb_strdup(params);
    h5_attr_read_str(g, "trace", r->trace, sizeof r->trace);
    /* T from step, the layers from recall, the heads from recall_head (when present) */
    hsize_t dims[3] = {extent(g, "step", 1, 0), extent(g, "recall", 2, 1),
                       extent(g, "recall_head", 3, 2)};
    r->T = (int)dims[0], r->n_layers = (int)dims[1], r->n_q_heads = (int)dims[2];
    for (int i = 0; i < N_COLUMNS && !s; i++) {
        const results_column *c = &columns[i];
        void *x;
        if ((s = read_column(g, c, dims, what, &x, e))) break;
        *col_ptr(r, c) = x;
        if (!x && (c->flags & RESULTS_COL_REQUIRED))
            s = rb_fail(e, RB_EINPUT, what, "missing dataset %s", c->name);
    }
    if (!s) {
        int L = r->n_layers, n;
        r->layers = rb_calloc((size_t)(L ? L : 1), sizeof(int32_t));
        r->sparse = rb_calloc((size_t)(L ? L : 1), sizeof(int32_t));
        /* layers: absent means 0..L-1; sparse_layers is required */
        if (h5_attr_read_i32_array(g, "layers", r->layers, L, &n))
            for (int l = 0; l < L; l++) r->layers[l] = l;
        else if (n != L)
            s = rb_fail(e, RB_EINPUT, what, "layers has %d entries for %d layers", n, L);
        if (!s && (h5_attr_read_i32_array(g, "sparse_layers", r->sparse, L, &n) || n != L))
            s = rb_fail(e, RB_EINPUT, what, "sparse_layers missing or not %d entries", L);
    }
    H5Gclose(g);
    H5Fclose(f);
    if (s) results_run_free(r);
    return s;
}

/* One /summary field as read: the file's member type converted to int64, double or a C
 * string (fixed or variable in the file). */
typedef struct sum_field {
    int col;     /* index in summary_columns */
    hid_t mt;
    int vlen;    /* a variable-length string */
    size_t off;  /* in the read row */
} sum_field;

rb_status results_read_summary(const char *path, results_summary **rows, int *n,
                               uint8_t *present, rb_err *e) {
    *rows = NULL, *n = 0;
    memset(present, 0, N_SUMMARY);
    hid_t f;
    rb_status st = open_results(path, &f, e);
    if (st) return st;
    if (H5Lexists(f, "summary", H5P_DEFAULT) <= 0) {
        H5Fclose(f);
        return rb_fail(e, RB_EINPUT, path, "has no /summary table");
    }
    hid_t ds = H5Dopen2(f, "summary", H5P_DEFAULT);
    hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds);
    hsize_t n_rows = 0;
    if (H5Tget_class(ft) != H5T_COMPOUND || H5Sget_simple_extent_ndims(sp) != 1) {
        st = rb_fail(e, RB_EINPUT, path, "/summary is not a one-dimensional compound table");
    } else {
        H5Sget_simple_extent_dims(sp, &n_rows, NULL);
        sum_field fl[RESULTS_MAX_SUMMARY_COLUMNS];
        int nf = 0;
        size_t row = 0;
        for (int i = 0; i < N_SUMMARY; i++) {
            const results_summary_column *c = &summary_columns[i];
            int k = H5Tget_member_index(ft, c->name);
            if (k < 0) continue;
            hid_t mt = H5Tget_member_type(ft, (unsigned)k);
            sum_field *x = &fl[nf++];
            x->col = i, x->vlen = 0;
            if (c->type == RESULTS_STR) {
                x->mt = H5Tcopy(H5T_C_S1);
                x->vlen = H5Tget_class(mt) == H5T_STRING && H5Tis_variable_str(mt) > 0;
                H5Tset_size(x->mt, x->vlen ? H5T_VARIABLE : c->size);
                H5Tset_strpad(x->mt, H5T_STR_NULLTERM);
                if (H5Tget_class(mt) == H5T_STRING) H5Tset_cset(x->mt, H5Tget_cset(mt));
            } else {
                x->mt = H5Tcopy(c->type == RESULTS_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64);
            }
            H5Tclose(mt);
            row = (row + 7) / 8 * 8;
            x->off = row;
            row += H5Tget_size(x->mt);
            present[i] = 1;
        }
        row = (row + 7) / 8 * 8;
        hid_t mem = H5Tcreate(H5T_COMPOUND, row ? row : 8);
        for (int i = 0; i < nf; i++) H5Tinsert(mem, summary_columns[fl[i].col].name, fl[i].off, fl[i].mt);
        char *buf = rb_calloc(n_rows ? n_rows : 1, row ? row : 8);
        if (n_rows && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            st = rb_fail(e, RB_EINPUT, path, "/summary cannot be read");
        } else {
            *rows = rb_calloc(n_rows ? n_rows : 1, sizeof **rows);
            for (hsize_t r = 0; r < n_rows; r++) {
                results_summary *o = &(*rows)[r];
                o->mean_token_match = o->mean_kl = NAN; /* absent: not a live decode */
                for (int i = 0; i < nf; i++) {
                    const results_summary_column *c = &summary_columns[fl[i].col];
                    const char *src = buf + r * row + fl[i].off;
                    char *dst = (char *)o + c->offset;
                    if (c->type == RESULTS_STR) {
                        const char *str = fl[i].vlen ? *(char *const *)src : src;
                        snprintf(dst, c->size, "%s", str ? str : "");
                    } else if (c->type == RESULTS_F64) {
                        memcpy(dst, src, sizeof(double));
                    } else if (c->type == RESULTS_I32) {
                        int64_t x;
                        memcpy(&x, src, sizeof x);
                        *(int32_t *)dst = (int32_t)x;
                    } else {
                        memcpy(dst, src, sizeof(int64_t));
                    }
                }
            }
            *n = (int)n_rows;
            hid_t msp = H5Screate_simple(1, &n_rows, NULL);
            if (n_rows) H5Dvlen_reclaim(mem, msp, H5P_DEFAULT, buf);
            H5Sclose(msp);
        }
        free(buf);
        H5Tclose(mem);
        for (int i = 0; i < nf; i++) H5Tclose(fl[i].mt);
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Dclose(ds);
    H5Fclose(f);
    return st;
}

rb_status results_assemble(const char *path, const results_provenance *p,
                           const char *const *srcs, int n, rb_err *e) {
    results_writer *w;
    rb_status s = results_create(path, p, &w, e);
    if (s) return s;
    for (int i = 0; i < n; i++) {
        char **ids;
        int n_ids;
        if ((s = results_list_runs(srcs[i], &ids, &n_ids, e))) break;
        for (int j = 0; j < n_ids; j++) {
            results_run r;
            if (!s && !(s = results_read_run(srcs[i], ids[j], &r, e))) {
                s = results_add_run(w, &r, e);
                results_run_free(&r);
            }
            free(ids[j]);
        }
        free(ids);
        if (s) break;
    }
    if (s) {
        results_abort(w);
        return s;
    }
    return results_finish(w, e);
}

/* ------------------------------------------------------------------ info */

int results_print_info(const char *path) {
    rb_err e = {0};
    hid_t f;
    if (open_results(path, &f, &e)) return rb_err_print(&e);
    char buf[512];
    printf("results        %s\n", path);
    const char *keys[] = {"raasbench_version", "git_commit", "created", "host", "trace",
                          "trace_sha256"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!h5_attr_read_str(f, keys[i], buf, sizeof buf)) printf("%-14s %s\n", keys[i], buf);
    H5Fclose(f);
    int n_rows = 0;
    results_summary *rows = NULL;
    uint8_t present[RESULTS_MAX_SUMMARY_COLUMNS];
    rb_err ignored = {0}; /* a file without a readable /summary shows no rows */
    if (results_read_summary(path, &rows, &n_rows, present, &ignored)) n_rows = 0;
    printf("runs           %d\n\n", n_rows);
    printf("%-28s %-13s %7s %9s %10s %9s %11s %11s %11s\n", "run_id", "policy", "budget",
           "recall", "out_err", "attended", "p50_lat_us", "p99_lat_us", "peak_kv_KiB");
    for (int i = 0; i < n_rows; i++) {
        const results_summary *s = &rows[i];
        printf("%-28s %-13s %7d %9.4f %10.4g %9.1f %11.1f %11.1f %11.1f\n", s->run_id, s->policy,
               s->budget, s->mean_recall, s->mean_out_err, s->mean_attended,
               s->p50_latency_ns / 1e3, s->p99_latency_ns / 1e3, s->peak_kv_bytes / 1024.0);
    }
    free(rows);
    return 0;
}

static const char *type_name(results_type t) {
    static const char *const names[] = {"int32", "int64", "float32", "float64", "string"};
    return names[t];
}

void results_print_schema(FILE *f) {
    static const char *const shapes[] = {"[T]", "[T, n_layers]", "[T, n_layers, n_q_heads]"};
    fprintf(f, "| dataset `/runs/<run_id>/...` | type | shape | unit | present | meaning |\n"
               "|---|---|---|---|---|---|\n");
    for (int i = 0; i < N_COLUMNS; i++) {
        const results_column *c = &columns[i];
        const char *when = (c->flags & RESULTS_COL_REQUIRED) ? "always"
                           : (c->flags & RESULTS_COL_PER_HEAD) ? "with --per-head"
                                                               : "live decode";
        fprintf(f, "| `%s` | %s | `%s` | %s | %s | %s |\n", c->name, type_name(c->type),
                shapes[c->shape], *c->unit ? c->unit : "", when, c->meaning);
    }
    fprintf(f, "\n| `/summary` column | type | unit | meaning |\n|---|---|---|---|\n");
    for (int i = 0; i < N_SUMMARY; i++) {
        const results_summary_column *c = &summary_columns[i];
        fprintf(f, "| `%s` | %s | %s | %s |\n", c->name, type_name(c->type), c->unit, c->meaning);
    }
}

rb_status results_file_sha256(const char *path, char hex[65], rb_err *e) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return rb_fail(e, RB_EINPUT, path, "cannot open for hashing");
    sha256_ctx c;
    sha256_init(&c);
    static unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) sha256_update(&c, buf, n);
    int err = ferror(fp);
    fclose(fp);
    if (err) return rb_fail(e, RB_EINPUT, path, "read error while hashing");
    uint8_t dg[32];
    sha256_final(&c, dg);
    sha256_hex(dg, hex);
    return RB_OK;
}
