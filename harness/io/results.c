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
#include "output.h"
#include "results_schema.h"
#include "sha256.h"

/* Symbols of the shapes (results_schema.h) and the axes of each shape. */
enum { SYM_T, SYM_L, SYM_H, SYM_N, N_SYMS };
static const char *const sym_names[N_SYMS] = {"T", "n_layers", "n_q_heads", "n_tokens"};
static const struct {
    int rank, sym[3];
} shapes[] = {
    [RESULTS_SCALAR] = {0, {0}},
    [RESULTS_SHAPE_T] = {1, {SYM_T}},
    [RESULTS_SHAPE_T_L] = {2, {SYM_T, SYM_L}},
    [RESULTS_SHAPE_T_L_H] = {3, {SYM_T, SYM_L, SYM_H}},
    [RESULTS_SHAPE_L] = {1, {SYM_L}},
    [RESULTS_SHAPE_LAYERS_T_H_N] = {3, {SYM_T, SYM_H, SYM_N}},
};

static int shape_dims(results_shape s, const int sym[N_SYMS], hsize_t *dims) {
    for (int k = 0; k < shapes[s].rank; k++) dims[k] = (hsize_t)sym[shapes[s].sym[k]];
    return shapes[s].rank;
}

/* The HDF5 memory (and dataset) type of a numeric schema type; a copy, to be closed. */
static hid_t h5_type(results_type t) {
    switch (t) {
    case RESULTS_I32: return H5Tcopy(H5T_NATIVE_INT32);
    case RESULTS_I64: return H5Tcopy(H5T_NATIVE_INT64);
    case RESULTS_F32: return H5Tcopy(H5T_NATIVE_FLOAT);
    case RESULTS_F64: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case RESULTS_U8: return H5Tcopy(H5T_NATIVE_UINT8);
    default: return H5Tcopy(H5T_NATIVE_INT);
    }
}

/* A NUL-terminated fixed-size string type of n bytes. */
/* ------------------------------------------------------------------ runs */

void results_run_alloc(results_run *r, int T, int n_layers, int n_q_heads, int per_head) {
    r->T = T, r->n_layers = n_layers, r->n_q_heads = n_q_heads;
    int n;
    const results_column *c = results_columns(RESULTS_RUN_ATTR, &n);
    for (int i = 0; i < n; i++)
        if (c[i].shape == RESULTS_SHAPE_L)
            results_field_set_ptr(r, &c[i], rb_calloc((size_t)n_layers, sizeof(int32_t)));
    c = results_columns(RESULTS_SERIES, &n);
    for (int i = 0; i < n; i++) {
        if (c[i].when != RESULTS_ALWAYS && !(c[i].when == RESULTS_PER_HEAD && per_head)) continue;
        size_t elems = results_shape_elems(c[i].shape, T, n_layers, n_q_heads, 0);
        results_field_set_ptr(r, &c[i], rb_calloc(elems, results_type_size(c[i].type)));
    }
}

void results_run_free(results_run *r) {
    int n;
    const results_column *c = results_columns(RESULTS_RUN_ATTR, &n);
    for (int i = 0; i < n; i++)
        if (c[i].shape == RESULTS_SHAPE_L || c[i].type == RESULTS_STR_HEAP)
            free(results_field_ptr(r, &c[i]));
    c = results_columns(RESULTS_SERIES, &n);
    for (int i = 0; i < n; i++) {
        void *x = results_field_ptr(r, &c[i]);
        if (x && c[i].shape == RESULTS_SHAPE_LAYERS_T_H_N)
            for (int l = 0; l < r->n_layers; l++) free(((void **)x)[l]);
        free(x);
    }
    memset(r, 0, sizeof *r);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t results_percentile(const int64_t *x, int T, double p) {
    int64_t *v = rb_malloc(sizeof(int64_t) * (size_t)(T ? T : 1));
    int n = 0;
    for (int t = 0; t < T; t++)
        if (x[t] >= 0) v[n++] = x[t];
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int64_t out = -1;
    if (n) {
        int k = (int)ceil(p / 100.0 * n) - 1;
        out = v[k < 0 ? 0 : k >= n ? n - 1 : k];
    }
    free(v);
    return out;
}

/* One summary column of run r into *out (see results_reduce). */
static void summarise_column(const results_run *r, const results_column *c, void *out) {
    if (c->reduce == RESULTS_COPY) {
        const results_column *src = results_column_find(RESULTS_RUN_ATTR, c->source);
        RB_CHECK(src && src->type == (c->type == RESULTS_STR ? RESULTS_STR : RESULTS_INT));
        const void *p = results_field(r, src);
        if (c->type == RESULTS_STR) snprintf(out, c->size, "%s", (const char *)p);
        else *(int32_t *)out = *(const int *)p;
        return;
    }
    const results_column *src = results_column_find(RESULTS_SERIES, c->source);
    RB_CHECK(src);
    const void *x = results_field_ptr(r, src);
    int T = r->T, L = r->n_layers;
    switch (c->reduce) {
    case RESULTS_MEAN_SPARSE: {
        RB_CHECK(src->type == RESULTS_F32 && src->shape == RESULTS_SHAPE_T_L);
        const float *v = x;
        double sum = 0;
        long cnt = 0;
        for (int t = 0; x && t < T; t++)
            for (int l = 0; l < L; l++) {
                if (!r->sparse[l]) continue;
                sum += v[(size_t)t * L + l];
                cnt++;
            }
        *(double *)out = cnt ? sum / cnt : NAN;
        break;
    }
    case RESULTS_MEAN: {
        RB_CHECK(src->type == RESULTS_F32 && src->shape == RESULTS_SHAPE_T);
        const float *v = x;
        double sum = 0;
        for (int t = 0; x && t < T; t++) sum += v[t];
        *(double *)out = x && T ? sum / T : NAN;
        break;
    }
    default: {
        RB_CHECK(src->type == RESULTS_I64 && src->shape == RESULTS_SHAPE_T);
        const int64_t *v = x;
        int64_t *o = out;
        if (c->reduce == RESULTS_P50 || c->reduce == RESULTS_P99) {
            *o = x ? results_percentile(v, T, c->reduce == RESULTS_P50 ? 50 : 99) : -1;
        } else if (c->reduce == RESULTS_PEAK) {
            *o = 0;
            for (int t = 0; x && t < T; t++)
                if (v[t] > *o) *o = v[t];
        } else {
            *o = x && T ? v[T - 1] : 0;
        }
    }
    }
}

void results_summarise(const results_run *r, results_summary *s) {
    memset(s, 0, sizeof *s);
    int n;
    const results_column *c = results_columns(RESULTS_SUMMARY, &n);
    for (int i = 0; i < n; i++) summarise_column(r, &c[i], results_field(s, &c[i]));
}

void results_header_free(results_header *h) {
    free(h->config);
    h->config = NULL;
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
    h5_finish(w->file, w->tmp, w->path, RB_EINPUT, NULL);
    free(w->rows), free(w->path), free(w->tmp), free(w);
}

/* The attributes of one place (root or run) from the fields of rec; non-zero on failure. */
static int write_attrs(hid_t obj, results_place place, const void *rec, int n_layers) {
    int n, bad = 0;
    const results_column *c = results_columns(place, &n);
    for (int i = 0; i < n; i++) {
        const void *p = results_field(rec, &c[i]);
        if (c[i].flags & RESULTS_F_GROUP_NAME) continue;
        if (c[i].type == RESULTS_STR) {
            bad |= h5_attr_write_str(obj, c[i].name, p);
        } else if (c[i].type == RESULTS_STR_HEAP) {
            const char *s = results_field_ptr(rec, &c[i]);
            bad |= h5_attr_write_str(obj, c[i].name, s ? s : c[i].dflt ? c[i].dflt : "");
        } else if (c[i].shape == RESULTS_SHAPE_L) {
            bad |= h5_attr_write_i32_array(obj, c[i].name,
                                           results_field_ptr(rec, &c[i]), n_layers);
        } else {
            bad |= h5_attr_write_i64(obj, c[i].name, *(const int *)p);
        }
    }
    return bad;
}

rb_status results_create(const char *path, const results_provenance *p, results_writer **out,
                         rb_err *e) {
    *out = NULL;
    h5_quiet();
    results_writer *w = rb_calloc(1, sizeof *w);
    w->path = rb_strdup(path);
    char tmp[4400];
    rb_status cs = h5_create(path, tmp, sizeof tmp, &w->file, e);
    w->tmp = rb_strdup(tmp);
    if (cs) {
        w->file = 0;
        results_abort(w);
        return cs;
    }
    results_header h = {.format_version = RESULTS_FORMAT_VERSION, .host = "unknown"};
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(h.created, sizeof h.created, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    gethostname(h.host, sizeof h.host - 1);
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(h.libraries, sizeof h.libraries, "hdf5 %u.%u.%u", maj, min, rel);
    snprintf(h.format, sizeof h.format, "%s", RESULTS_FORMAT);
    snprintf(h.raasbench_version, sizeof h.raasbench_version, "%s", rb_version);
    snprintf(h.git_commit, sizeof h.git_commit, "%s", rb_git_commit);
    snprintf(h.compiler, sizeof h.compiler, "%s", rb_compiler);
    snprintf(h.trace, sizeof h.trace, "%s", p && p->trace ? p->trace : "");
    snprintf(h.trace_sha256, sizeof h.trace_sha256, "%s",
             p && p->trace_sha256 ? p->trace_sha256 : "");
    h.config = p && p->config_json ? (char *)p->config_json : NULL; /* not owned */
    int bad = write_attrs(w->file, RESULTS_ROOT, &h, 0);
    w->runs = H5Gcreate2(w->file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (bad || w->runs < 0) {
        rb_status s = output_write_error(e, path, "the file header");
        results_abort(w);
        return s;
    }
    *out = w;
    return RB_OK;
}

/* One series of a run, if the run has it; non-zero on failure. */
static int write_series(hid_t g, const results_column *c, const results_run *r) {
    const void *x = results_field_ptr(r, c);
    if (!x) return 0;
    int sym[N_SYMS] = {r->T, r->n_layers, r->n_q_heads, r->n_tokens};
    hsize_t dims[3];
    int rank = shape_dims(c->shape, sym, dims), bad = 0;
    hid_t t = h5_type(c->type);
    if (c->shape != RESULTS_SHAPE_LAYERS_T_H_N) {
        bad = h5_write_dataset(g, c->name, t, rank, dims, x, 1);
    } else {
        hid_t sg = H5Gcreate2(g, c->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        for (int l = 0; l < r->n_layers && !bad; l++) {
            char name[32];
            snprintf(name, sizeof name, "layer_%03d", r->layers[l]);
            bad |= h5_write_dataset(sg, name, t, rank, dims, ((void *const *)x)[l], 1);
        }
        H5Gclose(sg);
    }
    H5Tclose(t);
    return bad;
}

rb_status results_add_run(results_writer *w, const results_run *r, rb_err *e) {
    if (H5Lexists(w->runs, r->run_id, H5P_DEFAULT) > 0)
        return rb_fail(e, RB_EINPUT, r->run_id, "run id appears twice in one results file");
    hid_t g = H5Gcreate2(w->runs, r->run_id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return rb_fail(e, RB_EINTERNAL, r->run_id, "cannot create run group");
    int bad = write_attrs(g, RESULTS_RUN_ATTR, r, r->n_layers), n;
    const results_column *c = results_columns(RESULTS_SERIES, &n);
    for (int i = 0; i < n; i++) bad |= write_series(g, &c[i], r);
    H5Gclose(g);
    if (bad) {
        char what[sizeof r->run_id + 8];
        snprintf(what, sizeof what, "run %s", r->run_id);
        return output_write_error(e, w->path, what);
    }
    if (w->n_rows == w->cap_rows) {
        w->cap_rows = w->cap_rows ? 2 * w->cap_rows : 16;
        w->rows = rb_realloc(w->rows, sizeof *w->rows * (size_t)w->cap_rows);
    }
    results_summarise(r, &w->rows[w->n_rows++]);
    return RB_OK;
}

/* The type of one /summary member in memory and in the file; a copy, to be closed. */
static hid_t summary_member_type(const results_column *c) {
    return c->type == RESULTS_STR ? h5_type_fixed_str(c->size) : h5_type(c->type);
}

/* The /summary compound type, in memory and in the file (same layout). */
static hid_t summary_type(void) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(results_summary));
    int n;
    const results_column *c = results_columns(RESULTS_SUMMARY, &n);
    for (int i = 0; i < n; i++) {
        hid_t mt = summary_member_type(&c[i]);
        H5Tinsert(t, c[i].name, c[i].offset, mt);
        H5Tclose(mt);
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
    rb_status st = ok ? RB_OK : output_write_error(e, w->path, "/summary");
    st = h5_finish(w->file, w->tmp, w->path, st, e);
    free(w->rows), free(w->path), free(w->tmp), free(w);
    return st;
}

/* ------------------------------------------------------------------ reading */

struct results_reader {
    char *path;
    hid_t file;
};

/* The optional objects, checked at open so that none of the wrong kind reads as absent:
 * /runs a group whose every member is a run group, /summary a dataset whose declared extent
 * the file holds (its type is checked where it is read). */
static rb_status check_kinds(hid_t f, const char *path, rb_err *e) {
    H5I_type_t k = h5_kind(f, "runs");
    if (k != H5I_BADID && k != H5I_GROUP)
        return rb_fail(e, RB_EINPUT, path, "/runs must be a group of runs, not a %s",
                       k == H5I_DATASET ? "dataset" : "datatype");
    char **ids;
    int n = h5_link_names(f, "runs", &ids);
    rb_status st = RB_OK;
    for (int i = 0; i < n; i++) {
        char gp[300];
        snprintf(gp, sizeof gp, "runs/%s", ids[i]);
        if (!st && h5_kind(f, gp) != H5I_GROUP)
            st = rb_fail(e, RB_EINPUT, path, "/runs/%s is not a run group", ids[i]);
        free(ids[i]);
    }
    free(ids);
    if (st) return st;
    k = h5_kind(f, "summary");
    if (k == H5I_BADID) return RB_OK;
    if (k != H5I_DATASET)
        return rb_fail(e, RB_EINPUT, path, "/summary must be a table (a dataset), not a %s",
                       k == H5I_GROUP ? "group" : "datatype");
    hid_t d;
    if ((st = h5_dataset_open(f, "summary", &d, path, e))) return st;
    H5Dclose(d);
    return RB_OK;
}

rb_status results_reader_open(const char *path, results_reader **out, rb_err *e) {
    *out = NULL;
    h5_quiet();
    if (rb_input_check(path, e)) return RB_EINPUT;
    if (H5Fis_hdf5(path) <= 0) return rb_fail(e, RB_EINPUT, path, "not an HDF5 file");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return rb_fail(e, RB_EINPUT, path, "cannot open (damaged file?)");
    char fmt[64] = "";
    int64_t ver = 0;
    rb_status st = RB_OK;
    if (h5_attr_read_str(f, "format", fmt, sizeof fmt) || strcmp(fmt, RESULTS_FORMAT))
        st = rb_fail(e, RB_EINPUT, path, "not a raasbench results file (format '%s')", fmt);
    else if (h5_attr_read_i64(f, "format_version", &ver) || ver != RESULTS_FORMAT_VERSION)
        st = rb_fail(e, RB_EINPUT, path, "results format_version %lld not supported",
                     (long long)ver);
    if (st) {
        H5Fclose(f);
        return st;
    }
    if ((st = check_kinds(f, path, e))) {
        H5Fclose(f);
        return st;
    }
    results_reader *rd = rb_calloc(1, sizeof *rd);
    rd->path = rb_strdup(path);
    rd->file = f;
    *out = rd;
    return RB_OK;
}

void results_reader_close(results_reader *rd) {
    if (!rd) return;
    H5Fclose(rd->file);
    free(rd->path), free(rd);
}

/* The attributes of one place (root or run) into the fields of rec; the [n_layers] ones
 * allocated. strict: fail on a missing attribute that is always present. */
static rb_status read_attrs(hid_t obj, results_place place, void *rec, int n_layers,
                            int strict, uint64_t *present, const char *what, rb_err *e) {
    int n;
    const results_column *c = results_columns(place, &n);
    for (int i = 0; i < n; i++) {
        void *p = results_field(rec, &c[i]);
        int64_t v;
        int found = 1, len;
        if (c[i].flags & RESULTS_F_GROUP_NAME) continue;
        if (c[i].type == RESULTS_STR) {
            found = !h5_attr_read_str(obj, c[i].name, p, c[i].size);
            if (!found) snprintf(p, c[i].size, "%s", c[i].dflt ? c[i].dflt : "");
        } else if (c[i].type == RESULTS_STR_HEAP) {
            char *s = h5_attr_read_strdup(obj, c[i].name);
            found = s != NULL;
            if (!s) s = rb_strdup(c[i].dflt ? c[i].dflt : "");
            results_field_set_ptr(rec, &c[i], s);
        } else if (c[i].shape == RESULTS_SHAPE_L) {
            int32_t *x = rb_calloc((size_t)n_layers, sizeof(int32_t));
            results_field_set_ptr(rec, &c[i], x);
            found = h5_attr_exists(obj, c[i].name);
            if (found &&
                (h5_attr_read_i32_array(obj, c[i].name, x, n_layers, &len) || len != n_layers))
                return rb_fail(e, RB_EINPUT, what, "attribute %s is not int32 [n_layers] = [%d]",
                               c[i].name, n_layers);
        } else {
            found = !h5_attr_read_i64(obj, c[i].name, &v);
            *(int *)p = found ? (int)v : c[i].dflt ? atoi(c[i].dflt) : 0;
        }
        if (!found && strict && c[i].when == RESULTS_ALWAYS)
            return rb_fail(e, RB_EINPUT, what, "missing attribute %s", c[i].name);
        if (found && present) *present |= 1ull << i;
    }
    return RB_OK;
}

void results_reader_header(results_reader *rd, results_header *h) {
    memset(h, 0, sizeof *h);
    read_attrs(rd->file, RESULTS_ROOT, h, 0, 0, &h->present, rd->path, NULL);
}

rb_status results_reader_runs(results_reader *rd, char ***ids, int *n, rb_err *e) {
    (void)e;
    *n = h5_link_names(rd->file, "runs", ids);
    return RB_OK;
}

static hid_t open_run(results_reader *rd, const char *id, rb_err *e) {
    char gp[256];
    snprintf(gp, sizeof gp, "runs/%s", id);
    hid_t g = -1;
    if (H5Lexists(rd->file, "runs", H5P_DEFAULT) > 0 && H5Lexists(rd->file, gp, H5P_DEFAULT) > 0)
        g = H5Gopen2(rd->file, gp, H5P_DEFAULT);
    if (g < 0) rb_fail(e, RB_EINPUT, rd->path, "no run '%s'", id);
    return g;
}

rb_status results_reader_present(results_reader *rd, const char *id, uint64_t *series,
                                 rb_err *e) {
    *series = 0;
    hid_t g = open_run(rd, id, e);
    if (g < 0) return RB_EINPUT;
    int n;
    const results_column *c = results_columns(RESULTS_SERIES, &n);
    for (int i = 0; i < n; i++)
        if (H5Lexists(g, c[i].name, H5P_DEFAULT) > 0) *series |= 1ull << i;
    H5Gclose(g);
    return RB_OK;
}

/* Read dataset `name` of g as column c's type into *x, matching its dims against the
 * symbols known so far (sym[s] < 0: not yet known, taken from this dataset). */
static rb_status read_dataset(hid_t g, const char *name, const results_column *c,
                              int sym[N_SYMS], void **x, const char *what, rb_err *e) {
    hsize_t dims[3];
    int rank = shapes[c->shape].rank;
    hid_t t = h5_type(c->type);
    rb_status st = h5_read_dataset(g, name, t, rank, dims, x, what, e);
    H5Tclose(t);
    if (st) return st;
    int want[3], ok = 1;
    for (int k = 0; k < rank; k++) {
        int s = shapes[c->shape].sym[k];
        want[k] = sym[s] >= 0 ? sym[s] : (int)dims[k];
        ok &= (hsize_t)want[k] == dims[k];
    }
    if (ok) {
        for (int k = 0; k < rank; k++) sym[shapes[c->shape].sym[k]] = want[k];
        return RB_OK;
    }
    char got[96] = "", exp[96] = "", syms[96] = "";
    for (int k = 0; k < rank; k++) {
        const char *sep = k ? ", " : "";
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", sep,
                 (unsigned long long)dims[k]);
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%d", sep, want[k]);
        snprintf(syms + strlen(syms), sizeof syms - strlen(syms), "%s%s", sep,
                 sym_names[shapes[c->shape].sym[k]]);
    }
    free(*x);
    *x = NULL;
    return rb_fail(e, RB_EINPUT, what, "%s is [%s], expected [%s] = [%s]", name, got, syms, exp);
}

/* The layer-group series c (selection): one dataset per layer, named by r->layers. */
static rb_status read_layer_group(hid_t g, const results_column *c, results_run *r,
                                  int sym[N_SYMS], const char *what, rb_err *e) {
    void **x = rb_calloc((size_t)(r->n_layers ? r->n_layers : 1), sizeof(void *));
    results_field_set_ptr(r, c, x);
    rb_status st = RB_OK;
    for (int l = 0; l < r->n_layers && !st; l++) {
        char name[64];
        snprintf(name, sizeof name, "%s/layer_%03d", c->name, r->layers[l]);
        st = read_dataset(g, name, c, sym, &x[l], what, e);
    }
    return st;
}

rb_status results_reader_run(results_reader *rd, const char *id, unsigned skip, results_run *r,
                             rb_err *e) {
    memset(r, 0, sizeof *r);
    hid_t g = open_run(rd, id, e);
    if (g < 0) return RB_EINPUT;
    char what[1024];
    snprintf(what, sizeof what, "%s: run %s", rd->path, id);
    snprintf(r->run_id, sizeof r->run_id, "%s", id);
    int sym[N_SYMS] = {-1, -1, -1, -1}, n;
    const results_column *c = results_columns(RESULTS_SERIES, &n);
    rb_status st = RB_OK;
    for (int i = 0; i < n && !st; i++) {
        if ((skip & RESULTS_SKIP(c[i].when)) || c[i].shape == RESULTS_SHAPE_LAYERS_T_H_N) continue;
        if (H5Lexists(g, c[i].name, H5P_DEFAULT) <= 0) {
            if (c[i].when == RESULTS_ALWAYS)
                st = rb_fail(e, RB_EINPUT, what, "missing dataset %s", c[i].name);
            continue;
        }
        void *x;
        st = read_dataset(g, c[i].name, &c[i], sym, &x, what, e);
        results_field_set_ptr(r, &c[i], x);
    }
    r->T = sym[SYM_T] > 0 ? sym[SYM_T] : 0;
    r->n_layers = sym[SYM_L] > 0 ? sym[SYM_L] : 0;
    if (!st) st = read_attrs(g, RESULTS_RUN_ATTR, r, r->n_layers, 1, NULL, what, e);
    for (int i = 0; i < n && !st; i++)
        if (c[i].shape == RESULTS_SHAPE_LAYERS_T_H_N && !(skip & RESULTS_SKIP(c[i].when)) &&
            H5Lexists(g, c[i].name, H5P_DEFAULT) > 0)
            st = read_layer_group(g, &c[i], r, sym, what, e);
    r->n_q_heads = sym[SYM_H] > 0 ? sym[SYM_H] : 0;
    r->n_tokens = sym[SYM_N] > 0 ? sym[SYM_N] : 0;
    H5Gclose(g);
    if (st) results_run_free(r);
    return st;
}

/* One member of /summary (dataset d, file type ft) into the rows, by name; 0 when the file
 * has no such member, 1 when read, -1 on failure. */
static int read_summary_member(hid_t d, hid_t ft, const results_column *c,
                               results_summary *rows, size_t n) {
    int idx = H5Tget_member_index(ft, c->name);
    if (idx < 0) return 0;
    hid_t fm = H5Tget_member_type(ft, (unsigned)idx);
    int vlen = c->type == RESULTS_STR && H5Tget_class(fm) == H5T_STRING &&
               H5Tis_variable_str(fm) > 0;
    hid_t mt;
    if (vlen) {
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(fm));
    } else {
        mt = summary_member_type(c);
    }
    H5Tclose(fm);
    size_t sz = H5Tget_size(mt);
    hid_t mem = H5Tcreate(H5T_COMPOUND, sz);
    H5Tinsert(mem, c->name, 0, mt);
    char *buf = rb_calloc(n ? n : 1, sz);
    size_t row = H5Tget_size(ft) > sz ? H5Tget_size(ft) : sz;
    hid_t x = h5_xfer(n, row);
    int rc = H5Dread(d, mem, H5S_ALL, H5S_ALL, x, buf) < 0 ? -1 : 1;
    H5Pclose(x);
    for (size_t i = 0; i < n && rc > 0; i++) {
        char *dst = results_field(&rows[i], c);
        if (vlen) {
            const char *s = *(char **)(buf + i * sz);
            snprintf(dst, c->size, "%s", s ? s : "");
        } else {
            memcpy(dst, buf + i * sz, sz);
        }
    }
    if (vlen && rc > 0) {
        hsize_t dn = (hsize_t)n;
        hid_t sp = H5Screate_simple(1, &dn, NULL);
        H5Dvlen_reclaim(mem, sp, H5P_DEFAULT, buf);
        H5Sclose(sp);
    }
    free(buf);
    H5Tclose(mem);
    H5Tclose(mt);
    return rc;
}

rb_status results_reader_summary(results_reader *rd, results_summary **rows, int *n,
                                 uint64_t *present, rb_err *e) {
    *rows = NULL, *n = 0;
    if (present) *present = 0;
    h5_quiet();
    if (!h5_exists(rd->file, "summary"))
        return rb_fail(e, RB_EINPUT, rd->path, "has no /summary table");
    hid_t d;
    rb_status st0 = h5_dataset_open(rd->file, "summary", &d, rd->path, e);
    if (st0) return st0;
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
    rb_status st = RB_OK;
    hsize_t n_rows = 0;
    if (H5Tget_class(ft) != H5T_COMPOUND || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_npoints(sp) > INT32_MAX) {
        st = rb_fail(e, RB_EINPUT, rd->path, "/summary is not a one-dimensional compound table");
    } else {
        H5Sget_simple_extent_dims(sp, &n_rows, NULL);
        *rows = rb_calloc(n_rows ? n_rows : 1, sizeof **rows);
        int nc;
        const results_column *c = results_columns(RESULTS_SUMMARY, &nc);
        for (int i = 0; i < nc && !st; i++) {
            int rc = n_rows ? read_summary_member(d, ft, &c[i], *rows, n_rows)
                            : H5Tget_member_index(ft, c[i].name) >= 0;
            if (rc < 0)
                st = rb_fail(e, RB_EINPUT, rd->path, "/summary member %s cannot be read",
                             c[i].name);
            if (rc > 0 && present) *present |= 1ull << i;
        }
        if (st) {
            free(*rows);
            *rows = NULL;
        } else {
            *n = (int)n_rows;
        }
    }
    H5Sclose(sp), H5Tclose(ft), H5Dclose(d);
    return st;
}

rb_status results_list_runs(const char *path, char ***ids, int *n, rb_err *e) {
    results_reader *rd;
    rb_status s = results_reader_open(path, &rd, e);
    if (s) return s;
    s = results_reader_runs(rd, ids, n, e);
    results_reader_close(rd);
    return s;
}

rb_status results_read_run(const char *path, const char *run_id, results_run *r, rb_err *e) {
    memset(r, 0, sizeof *r);
    results_reader *rd;
    rb_status s = results_reader_open(path, &rd, e);
    if (s) return s;
    s = results_reader_run(rd, run_id, 0, r, e);
    results_reader_close(rd);
    return s;
}

rb_status results_assemble(const char *path, const results_provenance *p,
                           const char *const *srcs, int n, rb_err *e) {
    results_writer *w;
    rb_status s = results_create(path, p, &w, e);
    if (s) return s;
    for (int i = 0; i < n && !s; i++) {
        results_reader *rd;
        if ((s = results_reader_open(srcs[i], &rd, e))) break;
        char **ids;
        int n_ids;
        s = results_reader_runs(rd, &ids, &n_ids, e);
        for (int j = 0; !s && j < n_ids; j++) {
            results_run r;
            if (!(s = results_reader_run(rd, ids[j], 0, &r, e))) {
                s = results_add_run(w, &r, e);
                results_run_free(&r);
            }
        }
        for (int j = 0; j < n_ids; j++) free(ids[j]);
        free(ids);
        results_reader_close(rd);
    }
    if (s) {
        results_abort(w);
        return s;
    }
    return results_finish(w, e);
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
