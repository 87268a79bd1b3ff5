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

/* ------------------------------------------------------------------ runs */

void results_run_alloc(results_run *r, int T, int n_layers, int n_q_heads, int per_head) {
    r->T = T, r->n_layers = n_layers, r->n_q_heads = n_q_heads;
    size_t tl = (size_t)T * n_layers;
    r->layers = rb_calloc((size_t)n_layers, sizeof(int32_t));
    r->sparse = rb_calloc((size_t)n_layers, sizeof(int32_t));
    r->step = rb_calloc((size_t)T, sizeof(int32_t));
    r->recall = rb_calloc(tl, sizeof(float));
    r->out_err = rb_calloc(tl, sizeof(float));
    r->attended = rb_calloc(tl, sizeof(float));
    if (per_head) {
        r->recall_head = rb_calloc(tl * n_q_heads, sizeof(float));
        r->out_err_head = rb_calloc(tl * n_q_heads, sizeof(float));
    }
    r->kv_bytes = rb_calloc((size_t)T, sizeof(int64_t));
    r->meta_bytes = rb_calloc((size_t)T, sizeof(int64_t));
    r->latency_ns = rb_calloc((size_t)T, sizeof(int64_t));
}

void results_run_free(results_run *r) {
    free(r->params_json), free(r->layers), free(r->sparse), free(r->step);
    free(r->recall), free(r->out_err), free(r->attended), free(r->recall_head);
    free(r->out_err_head), free(r->kv_bytes), free(r->meta_bytes), free(r->latency_ns);
    free(r->token_match), free(r->kl), free(r->token_latency_ns);
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

static int write_f32(hid_t g, const char *name, const float *x, int rank, hsize_t *dims) {
    return x ? h5_write_dataset(g, name, H5T_NATIVE_FLOAT, rank, dims, x, 1) : 0;
}
static int write_i64(hid_t g, const char *name, const int64_t *x, hsize_t T) {
    return x ? h5_write_dataset(g, name, H5T_NATIVE_INT64, 1, &T, x, 1) : 0;
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
    hsize_t T = (hsize_t)r->T, tl[2] = {T, (hsize_t)r->n_layers},
            tlh[3] = {T, (hsize_t)r->n_layers, (hsize_t)r->n_q_heads};
    bad |= h5_write_dataset(g, "step", H5T_NATIVE_INT32, 1, &T, r->step, 1);
    bad |= write_f32(g, "recall", r->recall, 2, tl);
    bad |= write_f32(g, "out_err", r->out_err, 2, tl);
    bad |= write_f32(g, "attended", r->attended, 2, tl);
    bad |= write_f32(g, "recall_head", r->recall_head, 3, tlh);
    bad |= write_f32(g, "out_err_head", r->out_err_head, 3, tlh);
    bad |= write_i64(g, "kv_bytes", r->kv_bytes, T);
    bad |= write_i64(g, "meta_bytes", r->meta_bytes, T);
    bad |= write_i64(g, "latency_ns", r->latency_ns, T);
    bad |= write_f32(g, "token_match", r->token_match, 1, &T);
    bad |= write_f32(g, "kl", r->kl, 1, &T);
    bad |= write_i64(g, "token_latency_ns", r->token_latency_ns, T);
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
    hid_t s160 = fixed_str(160), s512 = fixed_str(512), s32 = fixed_str(32);
    H5Tinsert(t, "run_id", HOFFSET(results_summary, run_id), s160);
    H5Tinsert(t, "trace", HOFFSET(results_summary, trace), s512);
    H5Tinsert(t, "policy", HOFFSET(results_summary, policy), s32);
    H5Tinsert(t, "budget", HOFFSET(results_summary, budget), H5T_NATIVE_INT32);
    H5Tinsert(t, "mean_recall", HOFFSET(results_summary, mean_recall), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "mean_out_err", HOFFSET(results_summary, mean_out_err), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "mean_attended", HOFFSET(results_summary, mean_attended), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "p50_latency_ns", HOFFSET(results_summary, p50_latency_ns), H5T_NATIVE_INT64);
    H5Tinsert(t, "p99_latency_ns", HOFFSET(results_summary, p99_latency_ns), H5T_NATIVE_INT64);
    H5Tinsert(t, "peak_kv_bytes", HOFFSET(results_summary, peak_kv_bytes), H5T_NATIVE_INT64);
    H5Tinsert(t, "final_kv_bytes", HOFFSET(results_summary, final_kv_bytes), H5T_NATIVE_INT64);
    H5Tinsert(t, "peak_meta_bytes", HOFFSET(results_summary, peak_meta_bytes), H5T_NATIVE_INT64);
    H5Tinsert(t, "mean_token_match", HOFFSET(results_summary, mean_token_match), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "mean_kl", HOFFSET(results_summary, mean_kl), H5T_NATIVE_DOUBLE);
    H5Tclose(s160), H5Tclose(s512), H5Tclose(s32);
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

/* Read dataset `name` of group g into a new array of `elems` elements, or NULL if absent. */
static void *read_ds(hid_t g, const char *name, hid_t mt, size_t elem, size_t elems, int *bad) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    void *x = NULL;
    if (np != (hssize_t)elems) {
        *bad = 1;
    } else {
        x = rb_malloc(elem * (elems ? elems : 1));
        if (elems && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) *bad = 1;
    }
    H5Dclose(d);
    return x;
}

rb_status results_read_run(const char *path, const char *run_id, results_run *r, rb_err *e) {
    memset(r, 0, sizeof *r);
    hid_t f;
    rb_status s = open_results(path, &f, e);
    if (s) return s;
    char gp[256];
    snprintf(gp, sizeof gp, "runs/%s", run_id);
    if (H5Lexists(f, "runs", H5P_DEFAULT) <= 0 || H5Lexists(f, gp, H5P_DEFAULT) <= 0) {
        H5Fclose(f);
        return rb_fail(e, RB_EINPUT, path, "no run '%s'", run_id);
    }
    hid_t g = H5Gopen2(f, gp, H5P_DEFAULT);
    snprintf(r->run_id, sizeof r->run_id, "%s", run_id);
    int64_t v = 0;
    int bad = 0;
    char params[8192] = "{}";
    bad |= h5_attr_read_str(g, "policy", r->policy, sizeof r->policy);
    bad |= h5_attr_read_i64(g, "budget", &v), r->budget = (int)v;
    bad |= h5_attr_read_i64(g, "page_size", &v), r->page_size = (int)v;
    bad |= h5_attr_read_i64(g, "dense_layers", &v), r->dense_layers = (int)v;
    r->latency_every = h5_attr_read_i64(g, "latency_every", &v) ? 1 : (int)v;
    h5_attr_read_str(g, "params", params, sizeof params);
    r->params_json = rb_strdup(params);
    h5_attr_read_str(g, "trace", r->trace, sizeof r->trace);
    hid_t d = H5Lexists(g, "recall", H5P_DEFAULT) > 0 ? H5Dopen2(g, "recall", H5P_DEFAULT) : -1;
    hsize_t dims[2] = {0, 0};
    if (d >= 0) {
        hid_t sp = H5Dget_space(d);
        if (H5Sget_simple_extent_ndims(sp) == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
        else bad = 1;
        H5Sclose(sp);
        H5Dclose(d);
    } else {
        bad = 1;
    }
    int T = (int)dims[0], L = (int)dims[1];
    int n_heads = 0;
    if (!bad && H5Lexists(g, "recall_head", H5P_DEFAULT) > 0) {
        hid_t dh = H5Dopen2(g, "recall_head", H5P_DEFAULT);
        hid_t sp = H5Dget_space(dh);
        hsize_t d3[3] = {0, 0, 0};
        if (H5Sget_simple_extent_ndims(sp) == 3) H5Sget_simple_extent_dims(sp, d3, NULL);
        n_heads = (int)d3[2];
        H5Sclose(sp), H5Dclose(dh);
    }
    if (!bad) {
        size_t tl = (size_t)T * L;
        r->T = T, r->n_layers = L, r->n_q_heads = n_heads;
        r->layers = rb_calloc((size_t)L, sizeof(int32_t));
        r->sparse = rb_calloc((size_t)L, sizeof(int32_t));
        int n;
        if (h5_attr_read_i32_array(g, "layers", r->layers, L, &n)) bad = 1;
        if (h5_attr_read_i32_array(g, "sparse_layers", r->sparse, L, &n)) bad = 1;
        r->step = read_ds(g, "step", H5T_NATIVE_INT32, 4, (size_t)T, &bad);
        r->recall = read_ds(g, "recall", H5T_NATIVE_FLOAT, 4, tl, &bad);
        r->out_err = read_ds(g, "out_err", H5T_NATIVE_FLOAT, 4, tl, &bad);
        r->attended = read_ds(g, "attended", H5T_NATIVE_FLOAT, 4, tl, &bad);
        r->recall_head = read_ds(g, "recall_head", H5T_NATIVE_FLOAT, 4, tl * n_heads, &bad);
        r->out_err_head = read_ds(g, "out_err_head", H5T_NATIVE_FLOAT, 4, tl * n_heads, &bad);
        r->kv_bytes = read_ds(g, "kv_bytes", H5T_NATIVE_INT64, 8, (size_t)T, &bad);
        r->meta_bytes = read_ds(g, "meta_bytes", H5T_NATIVE_INT64, 8, (size_t)T, &bad);
        r->latency_ns = read_ds(g, "latency_ns", H5T_NATIVE_INT64, 8, (size_t)T, &bad);
        r->token_match = read_ds(g, "token_match", H5T_NATIVE_FLOAT, 4, (size_t)T, &bad);
        r->kl = read_ds(g, "kl", H5T_NATIVE_FLOAT, 4, (size_t)T, &bad);
        r->token_latency_ns = read_ds(g, "token_latency_ns", H5T_NATIVE_INT64, 8, (size_t)T, &bad);
        if (!r->step || !r->recall || !r->out_err || !r->attended || !r->kv_bytes ||
            !r->meta_bytes || !r->latency_ns)
            bad = 1;
    }
    H5Gclose(g);
    H5Fclose(f);
    if (bad) {
        results_run_free(r);
        return rb_fail(e, RB_EINPUT, path, "run '%s' is incomplete or malformed", run_id);
    }
    return RB_OK;
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
    int n_rows = 0;
    results_summary *rows = NULL;
    if (H5Lexists(f, "summary", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(f, "summary", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        n_rows = (int)H5Sget_simple_extent_npoints(sp);
        rows = rb_calloc((size_t)(n_rows ? n_rows : 1), sizeof *rows);
        hid_t t = summary_type();
        if (n_rows && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) n_rows = 0;
        H5Tclose(t), H5Sclose(sp), H5Dclose(d);
    }
    H5Fclose(f);
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
