/* trace.c: reading and writing attention traces, format_version 1 (see trace.h). */
#define _POSIX_C_SOURCE 200809L
#include "trace.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "h5util.h"
#include "output.h"

static const char *tensor_names[3] = {"q", "k", "v"};

static int tensor_heads(const trace_meta *m, trace_tensor which) {
    return which == TRACE_Q ? m->n_q_heads : m->n_kv_heads;
}

static void layer_group_name(int layer, char *buf, size_t cap) {
    snprintf(buf, cap, "layer_%03d", layer);
}

/* Close the open datasets of n_stored layers and the file (ids <= 0 were never opened). */
static void close_h5(hid_t dsets[][3], int n_stored, hid_t file) {
    for (int s = 0; s < n_stored; s++)
        for (int w = 0; w < 3; w++)
            if (dsets[s][w] > 0) H5Dclose(dsets[s][w]);
    if (file > 0) H5Fclose(file);
}

/* The file space of dataset d [*, heads, head_dim] with rows pos0 .. pos0 + n - 1 selected,
 * and in *ms a memory space of that shape; the caller closes both. */
static hid_t select_rows(hid_t d, hsize_t pos0, int n, int heads, int head_dim, hid_t *ms) {
    hid_t fs = H5Dget_space(d);
    hsize_t start[3] = {pos0, 0, 0}, cnt[3] = {(hsize_t)n, (hsize_t)heads, (hsize_t)head_dim};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    *ms = H5Screate_simple(3, cnt, NULL);
    return fs;
}

/* ------------------------------------------------------------------ reading */

struct trace {
    char *path;
    hid_t file;
    trace_meta meta;
    hid_t dsets[TRACE_MAX_LAYERS][3];
    int64_t file_bytes;
};

const trace_meta *trace_get_meta(const trace *t) { return &t->meta; }
const char *trace_path(const trace *t) { return t->path; }
int64_t trace_file_bytes(const trace *t) { return t->file_bytes; }

void trace_close(trace *t) {
    if (!t) return;
    close_h5(t->dsets, t->meta.n_stored, t->file);
    free(t->path);
    free(t);
}

static rb_status read_int_attr(trace *t, const char *name, int min, int *out, rb_err *e) {
    int64_t v;
    if (h5_attr_read_i64(t->file, name, &v) != 0)
        return rb_fail(e, RB_EINPUT, t->path, "missing or non-integer attribute '%s'", name);
    if (v < min || v > 1000000000)
        return rb_fail(e, RB_EINPUT, t->path, "attribute '%s' = %lld is out of range", name,
                       (long long)v);
    *out = (int)v;
    return RB_OK;
}

static rb_status open_layer(trace *t, int slot, rb_err *e) {
    trace_meta *m = &t->meta;
    char gname[32];
    layer_group_name(m->layers[slot], gname, sizeof gname);
    if (H5Lexists(t->file, gname, H5P_DEFAULT) <= 0)
        return rb_fail(e, RB_EINPUT, t->path, "missing layer group /%s", gname);
    hid_t g = H5Gopen2(t->file, gname, H5P_DEFAULT);
    if (g < 0) return rb_fail(e, RB_EINPUT, t->path, "/%s is not a group", gname);
    int64_t win = 0;
    if (h5_attr_exists(g, "sliding_window") && h5_attr_read_i64(g, "sliding_window", &win) != 0) {
        H5Gclose(g);
        return rb_fail(e, RB_EINPUT, t->path, "/%s: sliding_window is not an integer", gname);
    }
    if (win < 0) {
        H5Gclose(g);
        return rb_fail(e, RB_EINPUT, t->path, "/%s: negative sliding_window", gname);
    }
    m->sliding_window[slot] = (int)win;
    for (int w = 0; w < 3; w++) {
        const char *tn = tensor_names[w];
        if (H5Lexists(g, tn, H5P_DEFAULT) <= 0) {
            H5Gclose(g);
            return rb_fail(e, RB_EINPUT, t->path, "missing dataset /%s/%s", gname, tn);
        }
        hid_t d = H5Dopen2(g, tn, H5P_DEFAULT);
        if (d < 0) {
            H5Gclose(g);
            return rb_fail(e, RB_EINPUT, t->path, "/%s/%s is not a dataset", gname, tn);
        }
        t->dsets[slot][w] = d;
        hid_t ft = H5Dget_type(d);
        H5T_class_t cls = H5Tget_class(ft);
        size_t sz = H5Tget_size(ft);
        H5Tclose(ft);
        trace_dtype dt = sz == 4 ? TRACE_F32 : TRACE_F16;
        if (cls != H5T_FLOAT || (sz != 4 && sz != 2)) {
            H5Gclose(g);
            return rb_fail(e, RB_EINPUT, t->path, "/%s/%s: expected float16 or float32 data",
                           gname, tn);
        }
        if (slot == 0 && w == 0) m->dtype = dt;
        else if (dt != m->dtype) {
            H5Gclose(g);
            return rb_fail(e, RB_EINPUT, t->path, "/%s/%s: dtype differs from /layer_%03d/q",
                           gname, tn, m->layers[0]);
        }
        hid_t sp = H5Dget_space(d);
        int rank = H5Sget_simple_extent_ndims(sp);
        hsize_t dims[H5S_MAX_RANK] = {0};
        if (rank > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
        H5Sclose(sp);
        int heads = tensor_heads(m, (trace_tensor)w);
        if (rank != 3 || dims[0] != (hsize_t)m->n_tokens || dims[1] != (hsize_t)heads ||
            dims[2] != (hsize_t)m->head_dim) {
            char got[160] = "";
            for (int i = 0; i < rank && i < H5S_MAX_RANK; i++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "",
                         (unsigned long long)dims[i]);
            H5Gclose(g);
            return rb_fail(e, RB_EINPUT, t->path,
                           "/%s/%s has shape [%s], expected [%d, %d, %d] (n_tokens, heads, "
                           "head_dim)", gname, tn, got, m->n_tokens, heads, m->head_dim);
        }
        char dname[48];
        snprintf(dname, sizeof dname, "/%s/%s", gname, tn);
        rb_status st = h5_dataset_check(d, dname, e);
        if (st) {
            H5Gclose(g);
            return st;
        }
    }
    H5Gclose(g);
    return RB_OK;
}

/* One planted-truth table /truth/<name>: int32 [n, 3], n <= n_tokens (one row per token at
 * most), its extent backed by storage. */
static rb_status check_truth_table(trace *t, const char *name, rb_err *e) {
    char path[64];
    snprintf(path, sizeof path, "truth/%s", name);
    if (h5_kind(t->file, path) == H5I_BADID) return RB_OK;
    hid_t d;
    rb_status s = h5_dataset_open(t->file, path, &d, t->path, e);
    if (s) return s;
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    hsize_t dims[2] = {0, 0};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (H5Tget_class(ft) != H5T_INTEGER || rank != 2 || dims[1] != 3)
        s = rb_fail(e, RB_EINPUT, t->path, "/%s must be integers [n, 3]", path);
    else if (dims[0] > (hsize_t)t->meta.n_tokens)
        s = rb_fail(e, RB_EINPUT, t->path, "/%s has %llu rows, more than n_tokens=%d", path,
                    (unsigned long long)dims[0], t->meta.n_tokens);
    H5Tclose(ft), H5Sclose(sp), H5Dclose(d);
    return s;
}

/* The optional objects, /tokens (integers [n_tokens]), /text (one string) and /truth (a
 * group of int32 [n, 3] tables), checked at open for kind and extent, so that no later
 * reader meets them wrong: present but of another kind is refused, never read as absent. */
static rb_status check_optional(trace *t, rb_err *e) {
    rb_status s = RB_OK;
    hid_t d;
    if (h5_exists(t->file, "tokens")) {
        if ((s = h5_dataset_open(t->file, "tokens", &d, t->path, e))) return s;
        hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
        int rank = H5Sget_simple_extent_ndims(sp);
        hssize_t np = H5Sget_simple_extent_npoints(sp);
        if (H5Tget_class(ft) != H5T_INTEGER || rank != 1)
            s = rb_fail(e, RB_EINPUT, t->path, "/tokens must be integers [n_tokens]");
        else if (np != t->meta.n_tokens)
            s = rb_fail(e, RB_EINPUT, t->path, "/tokens has %lld entries, expected n_tokens=%d",
                        (long long)np, t->meta.n_tokens);
        H5Tclose(ft), H5Sclose(sp), H5Dclose(d);
        if (s) return s;
    }
    if (h5_exists(t->file, "text")) {
        if ((s = h5_dataset_open(t->file, "text", &d, t->path, e))) return s;
        hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
        if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0 ||
            H5Sget_simple_extent_npoints(sp) != 1)
            s = rb_fail(e, RB_EINPUT, t->path, "/text must be one variable-length string");
        H5Tclose(ft), H5Sclose(sp), H5Dclose(d);
        if (s) return s;
    }
    H5I_type_t truth = h5_kind(t->file, "truth");
    if (truth == H5I_BADID) return RB_OK;
    if (truth != H5I_GROUP)
        return rb_fail(e, RB_EINPUT, t->path, "/truth must be a group (of milestones and "
                       "phoenix tables), not a %s", truth == H5I_DATASET ? "dataset" : "datatype");
    if ((s = check_truth_table(t, "milestones", e))) return s;
    return check_truth_table(t, "phoenix", e);
}

rb_status trace_open(const char *path, trace **out, rb_err *e) {
    *out = NULL;
    h5_quiet();
    if (rb_input_check(path, e)) return RB_EINPUT;
    struct stat st;
    if (stat(path, &st) != 0) return rb_fail(e, RB_EINPUT, path, "no such file");
    if (H5Fis_hdf5(path) <= 0) return rb_fail(e, RB_EINPUT, path, "not an HDF5 file");
    trace *t = rb_calloc(1, sizeof *t);
    t->path = rb_strdup(path);
    t->file_bytes = st.st_size;
    t->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    rb_status s = RB_OK;
    if (t->file < 0) {
        s = rb_fail(e, RB_EINPUT, path, "cannot open as HDF5 (damaged or truncated?)");
        goto fail;
    }
    trace_meta *m = &t->meta;
    char fmt[64] = "";
    if (h5_attr_read_str(t->file, "format", fmt, sizeof fmt) != 0 || strcmp(fmt, TRACE_FORMAT)) {
        s = rb_fail(e, RB_EINPUT, path, "not a raasbench trace (attribute format is '%s', "
                    "expected '%s')", fmt, TRACE_FORMAT);
        goto fail;
    }
    int version = 0;
    if ((s = read_int_attr(t, "format_version", 0, &version, e))) goto fail;
    if (version != TRACE_FORMAT_VERSION) {
        s = rb_fail(e, RB_EINPUT, path, "trace format_version %d is not supported (this build "
                    "reads version %d)", version, TRACE_FORMAT_VERSION);
        goto fail;
    }
    h5_attr_read_str(t->file, "source", m->source, sizeof m->source);
    h5_attr_read_str(t->file, "model", m->model, sizeof m->model);
    if ((s = read_int_attr(t, "n_layers", 1, &m->n_layers, e)) ||
        (s = read_int_attr(t, "n_q_heads", 1, &m->n_q_heads, e)) ||
        (s = read_int_attr(t, "n_kv_heads", 1, &m->n_kv_heads, e)) ||
        (s = read_int_attr(t, "head_dim", 1, &m->head_dim, e)) ||
        (s = read_int_attr(t, "n_prefill", 1, &m->n_prefill, e)) ||
        (s = read_int_attr(t, "n_tokens", 1, &m->n_tokens, e)))
        goto fail;
    double scale = 0;
    if (h5_attr_read_f64(t->file, "attn_scale", &scale) != 0 || !(scale > 0) || !isfinite(scale)) {
        s = rb_fail(e, RB_EINPUT, path, "missing or invalid attribute 'attn_scale'");
        goto fail;
    }
    m->attn_scale = (float)scale;
    if (m->n_q_heads % m->n_kv_heads) {
        s = rb_fail(e, RB_EINPUT, path, "n_q_heads (%d) is not a multiple of n_kv_heads (%d)",
                    m->n_q_heads, m->n_kv_heads);
        goto fail;
    }
    if (m->n_prefill >= m->n_tokens) {
        s = rb_fail(e, RB_EINPUT, path, "n_prefill (%d) >= n_tokens (%d): no decode steps",
                    m->n_prefill, m->n_tokens);
        goto fail;
    }
    if (m->n_layers > TRACE_MAX_LAYERS) {
        s = rb_fail(e, RB_EINPUT, path, "n_layers %d exceeds the supported %d", m->n_layers,
                    TRACE_MAX_LAYERS);
        goto fail;
    }
    if (h5_attr_exists(t->file, "layers")) {
        int32_t ls[TRACE_MAX_LAYERS];
        int n = 0;
        if (h5_attr_read_i32_array(t->file, "layers", ls, TRACE_MAX_LAYERS, &n) != 0 || n < 1) {
            s = rb_fail(e, RB_EINPUT, path, "attribute 'layers' is not a list of layer indices");
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            if (ls[i] < 0 || ls[i] >= m->n_layers || (i && ls[i] <= ls[i - 1])) {
                s = rb_fail(e, RB_EINPUT, path, "attribute 'layers': entry %d (%d) is not an "
                            "ascending layer index below n_layers=%d", i, ls[i], m->n_layers);
                goto fail;
            }
            m->layers[i] = ls[i];
        }
        m->n_stored = n;
    } else {
        m->n_stored = m->n_layers;
        for (int i = 0; i < m->n_layers; i++) m->layers[i] = i;
    }
    for (int sl = 0; sl < m->n_stored; sl++)
        if ((s = open_layer(t, sl, e))) goto fail;
    if ((s = check_optional(t, e))) goto fail;
    *out = t;
    return RB_OK;
fail:
    trace_close(t);
    return s;
}

rb_status trace_read(trace *t, int slot, trace_tensor which, int pos0, int n, float *dst,
                     rb_err *e) {
    const trace_meta *m = &t->meta;
    RB_CHECK(slot >= 0 && slot < m->n_stored && which <= TRACE_V);
    RB_CHECK(pos0 >= 0 && n >= 0 && pos0 + n <= m->n_tokens);
    if (n == 0) return RB_OK;
    h5_quiet(); /* worker threads read too */
    int heads = tensor_heads(m, which);
    size_t row = (size_t)heads * m->head_dim, count = (size_t)n * row;
    hid_t d = t->dsets[slot][which], ms;
    hid_t fs = select_rows(d, (hsize_t)pos0, n, heads, m->head_dim, &ms);
    herr_t rc;
    if (m->dtype == TRACE_F32) {
        rc = H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, dst);
    } else {
        /* Read the raw halves and widen here: exact, and much faster than HDF5's soft
         * conversion path for a user-defined float type. */
        uint16_t *h = rb_malloc(count * sizeof *h);
        rc = H5Dread(d, h5_type_f16(), ms, fs, H5P_DEFAULT, h);
        if (rc >= 0)
            for (size_t i = 0; i < count; i++) dst[i] = rb_half_to_float(h[i]);
        free(h);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    if (rc < 0)
        return rb_fail(e, RB_EINPUT, t->path, "cannot read /layer_%03d/%s tokens %d..%d "
                       "(damaged file?)", m->layers[slot], tensor_names[which], pos0, pos0 + n - 1);
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(dst[i])) {
            size_t tok = i / row, head = (i % row) / (size_t)m->head_dim;
            return rb_fail(e, RB_EINPUT, t->path, "%s in /layer_%03d/%s at position %zu, head %zu",
                           isnan(dst[i]) ? "NaN" : "Inf", m->layers[slot], tensor_names[which],
                           pos0 + tok, head);
        }
    }
    return RB_OK;
}

rb_status trace_read_tokens(trace *t, int32_t *dst, int *present, rb_err *e) {
    *present = 0;
    h5_quiet();
    if (H5Lexists(t->file, "tokens", H5P_DEFAULT) <= 0) return RB_OK;
    hid_t d = H5Dopen2(t->file, "tokens", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    rb_status s = RB_OK;
    if (np != t->meta.n_tokens)
        s = rb_fail(e, RB_EINPUT, t->path, "/tokens has %lld entries, expected n_tokens=%d",
                    (long long)np, t->meta.n_tokens);
    else {
        hid_t x = h5_xfer((size_t)np, 8); /* any integer type, up to 64 bits */
        if (H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, x, dst) < 0)
            s = rb_fail(e, RB_EINPUT, t->path, "cannot read /tokens");
        else
            *present = 1;
        H5Pclose(x);
    }
    H5Dclose(d);
    return s;
}

rb_status trace_read_text(trace *t, char **text, rb_err *e) {
    *text = NULL;
    h5_quiet();
    if (H5Lexists(t->file, "text", H5P_DEFAULT) <= 0) return RB_OK;
    hid_t d = H5Dopen2(t->file, "text", H5P_DEFAULT);
    hid_t ft = H5Dget_type(d);
    rb_status s = RB_OK;
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0) {
        s = rb_fail(e, RB_EINPUT, t->path, "/text is not a variable-length string");
    } else {
        char *p = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8);
        hid_t x = h5_xfer(1, sizeof p > H5Tget_size(ft) ? sizeof p : H5Tget_size(ft));
        herr_t rc = H5Dread(d, mt, H5S_ALL, H5S_ALL, x, &p);
        H5Pclose(x);
        if (rc < 0 || !p)
            s = rb_fail(e, RB_EINPUT, t->path, "cannot read /text");
        else {
            *text = rb_strdup(p);
            H5free_memory(p);
        }
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Dclose(d);
    return s;
}

/* Row i of a truth table against the trace's extent (synth.h says what the columns are):
 * milestones: n_prefill <= position < first active <= last active < n_tokens; phoenix:
 * position < n_prefill <= dormant from <= revived at < n_tokens. Returns the first broken
 * condition's text, or NULL. */
static const char *truth_row_error(const trace_meta *m, int phoenix, const int32_t *r) {
    if (!phoenix) {
        if (r[0] < m->n_prefill || r[0] >= m->n_tokens) return "position is not a decode position";
        if (r[1] <= r[0]) return "first active step is not after the position";
        if (r[2] < r[1]) return "last active step is before the first";
        if (r[2] >= m->n_tokens) return "last active step is past the trace";
    } else {
        if (r[0] < 0 || r[0] >= m->n_prefill) return "position is not a prompt position";
        if (r[1] < m->n_prefill) return "dormant-from step is in the prompt";
        if (r[2] < r[1]) return "revival is before the dormant-from step";
        if (r[2] >= m->n_tokens) return "revival is past the trace";
    }
    return NULL;
}

rb_status trace_read_truth(trace *t, const char *name, int32_t **rows, int *n, rb_err *e) {
    *rows = NULL;
    *n = 0;
    char path[64];
    snprintf(path, sizeof path, "truth/%s", name);
    h5_quiet();
    if (!h5_exists(t->file, path)) return RB_OK; /* kind and extent were checked at open */
    hsize_t dims[2];
    int32_t *r;
    rb_status s = h5_read_dataset(t->file, path, H5T_NATIVE_INT32, 2, dims, (void **)&r,
                                  t->path, e);
    if (s) return s;
    int phoenix = !strcmp(name, "phoenix");
    for (hsize_t i = 0; i < dims[0]; i++) {
        const char *why = truth_row_error(&t->meta, phoenix, r + 3 * i);
        if (why) {
            s = rb_fail(e, RB_EINPUT, t->path, "/%s row %llu [%d, %d, %d]: %s (n_prefill %d, "
                        "n_tokens %d)", path, (unsigned long long)i, r[3 * i], r[3 * i + 1],
                        r[3 * i + 2], why, t->meta.n_prefill, t->meta.n_tokens);
            free(r);
            return s;
        }
    }
    *rows = r; /* present, even when empty: callers tell absent from empty */
    *n = (int)dims[0];
    return RB_OK;
}

/* ------------------------------------------------------------------ writing */

struct trace_writer {
    char *path, *tmp;
    hid_t file;
    trace_meta meta;
    hid_t dsets[TRACE_MAX_LAYERS][3];
    int64_t n_written[TRACE_MAX_LAYERS][3];
    uint16_t *half; /* conversion buffer */
    size_t half_cap;
};

void trace_writer_abort(trace_writer *w) {
    if (!w) return;
    close_h5(w->dsets, w->meta.n_stored, 0);
    h5_finish(w->file, w->tmp, w->path, RB_EINPUT, NULL);
    free(w->half);
    free(w->path);
    free(w->tmp);
    free(w);
}

static rb_status meta_check(const char *path, const trace_meta *m, rb_err *e) {
    if (m->n_layers < 1 || m->n_layers > TRACE_MAX_LAYERS || m->n_q_heads < 1 ||
        m->n_kv_heads < 1 || m->head_dim < 1 || m->n_prefill < 1)
        return rb_fail(e, RB_EINPUT, path, "trace shape must be positive (layers %d, heads "
                       "%d/%d, head_dim %d, prefill %d)", m->n_layers, m->n_q_heads,
                       m->n_kv_heads, m->head_dim, m->n_prefill);
    if (m->n_q_heads % m->n_kv_heads)
        return rb_fail(e, RB_EINPUT, path, "n_q_heads (%d) is not a multiple of n_kv_heads (%d)",
                       m->n_q_heads, m->n_kv_heads);
    if (m->n_stored < 1 || m->n_stored > m->n_layers)
        return rb_fail(e, RB_EINPUT, path, "n_stored %d must be in 1..n_layers", m->n_stored);
    for (int i = 0; i < m->n_stored; i++)
        if (m->layers[i] < 0 || m->layers[i] >= m->n_layers || (i && m->layers[i] <= m->layers[i - 1]))
            return rb_fail(e, RB_EINPUT, path, "stored layers must be ascending indices below %d",
                           m->n_layers);
    if (!(m->attn_scale > 0) || !isfinite(m->attn_scale))
        return rb_fail(e, RB_EINPUT, path, "attn_scale must be positive");
    return RB_OK;
}

rb_status trace_writer_create(const char *path, const trace_meta *m, trace_writer **out,
                              rb_err *e) {
    *out = NULL;
    h5_quiet();
    rb_status s = meta_check(path, m, e);
    if (s) return s;
    trace_writer *w = rb_calloc(1, sizeof *w);
    w->path = rb_strdup(path);
    char tmp[4400];
    s = h5_create(path, tmp, sizeof tmp, &w->file, e);
    w->tmp = rb_strdup(tmp);
    w->meta = *m;
    w->meta.n_tokens = 0;
    if (s) {
        w->file = 0;
        trace_writer_abort(w);
        return s;
    }
    hid_t f = w->file;
    int bad = 0;
    bad |= h5_attr_write_str(f, "format", TRACE_FORMAT);
    bad |= h5_attr_write_i64(f, "format_version", TRACE_FORMAT_VERSION);
    bad |= h5_attr_write_str(f, "source", m->source);
    bad |= h5_attr_write_str(f, "model", m->model);
    bad |= h5_attr_write_i64(f, "n_layers", m->n_layers);
    bad |= h5_attr_write_i64(f, "n_q_heads", m->n_q_heads);
    bad |= h5_attr_write_i64(f, "n_kv_heads", m->n_kv_heads);
    bad |= h5_attr_write_i64(f, "head_dim", m->head_dim);
    bad |= h5_attr_write_i64(f, "n_prefill", m->n_prefill);
    bad |= h5_attr_write_i64(f, "n_tokens", 0);
    bad |= h5_attr_write_f64(f, "attn_scale", m->attn_scale);
    bad |= h5_attr_write_str(f, "raasbench_version", rb_version);
    bad |= h5_attr_write_str(f, "git_commit", rb_git_commit);
    int32_t ls[TRACE_MAX_LAYERS];
    for (int i = 0; i < m->n_stored; i++) ls[i] = m->layers[i];
    bad |= h5_attr_write_i32_array(f, "layers", ls, m->n_stored);
    hid_t ftype = m->dtype == TRACE_F16 ? h5_type_f16() : H5T_IEEE_F32LE;
    for (int sl = 0; sl < m->n_stored && !bad; sl++) {
        char gname[32];
        layer_group_name(m->layers[sl], gname, sizeof gname);
        hid_t g = H5Gcreate2(f, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) { bad = 1; break; }
        bad |= h5_attr_write_i64(g, "sliding_window", m->sliding_window[sl]);
        for (int k = 0; k < 3 && !bad; k++) {
            int heads = tensor_heads(m, (trace_tensor)k);
            hsize_t dims[3] = {0, (hsize_t)heads, (hsize_t)m->head_dim};
            hsize_t maxd[3] = {H5S_UNLIMITED, (hsize_t)heads, (hsize_t)m->head_dim};
            /* Chunks of ~64 KiB along the token axis: small enough for one-token appends
             * to stay in the chunk cache, large enough for deflate to work. */
            size_t row_bytes = (size_t)heads * m->head_dim * (m->dtype == TRACE_F16 ? 2 : 4);
            hsize_t ct = 65536 / row_bytes;
            if (ct < 1) ct = 1;
            hsize_t chunk[3] = {ct, (hsize_t)heads, (hsize_t)m->head_dim};
            hid_t sp = H5Screate_simple(3, dims, maxd);
            hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
            H5Pset_chunk(dcpl, 3, chunk);
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, 1);
            w->dsets[sl][k] = H5Dcreate2(g, tensor_names[k], ftype, sp, H5P_DEFAULT, dcpl,
                                         H5P_DEFAULT);
            if (w->dsets[sl][k] < 0) bad = 1;
            H5Pclose(dcpl);
            H5Sclose(sp);
        }
        H5Gclose(g);
    }
    if (bad) {
        s = output_write_error(e, path, "the trace layout");
        trace_writer_abort(w);
        return s;
    }
    *out = w;
    return RB_OK;
}

static rb_status append_one(trace_writer *w, int slot, trace_tensor which, int n,
                            const float *src, rb_err *e) {
    const trace_meta *m = &w->meta;
    int heads = tensor_heads(m, which);
    size_t count = (size_t)n * heads * m->head_dim;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(src[i]))
            return rb_fail(e, RB_EINPUT, w->path, "refusing to write %s into layer %d %s "
                           "(token %lld)", isnan(src[i]) ? "NaN" : "Inf", m->layers[slot],
                           tensor_names[which],
                           (long long)(w->n_written[slot][which] + (int64_t)(i / ((size_t)heads * m->head_dim))));
    hid_t d = w->dsets[slot][which];
    hsize_t cur = (hsize_t)w->n_written[slot][which];
    hsize_t newdims[3] = {cur + (hsize_t)n, (hsize_t)heads, (hsize_t)m->head_dim};
    if (H5Dset_extent(d, newdims) < 0) return output_write_error(e, w->path, "the trace");
    hid_t ms, fs = select_rows(d, cur, n, heads, m->head_dim, &ms);
    herr_t rc;
    if (m->dtype == TRACE_F32) {
        rc = H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, src);
    } else {
        if (w->half_cap < count) {
            free(w->half);
            w->half = rb_malloc(count * sizeof *w->half);
            w->half_cap = count;
        }
        for (size_t i = 0; i < count; i++) w->half[i] = rb_float_to_half(src[i]);
        rc = H5Dwrite(d, h5_type_f16(), ms, fs, H5P_DEFAULT, w->half);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    if (rc < 0) return output_write_error(e, w->path, "the trace");
    w->n_written[slot][which] += n;
    return RB_OK;
}

rb_status trace_writer_append(trace_writer *w, int slot, int n, const float *q, const float *k,
                              const float *v, rb_err *e) {
    RB_CHECK(slot >= 0 && slot < w->meta.n_stored && n >= 0);
    rb_status s;
    if ((s = append_one(w, slot, TRACE_Q, n, q, e)) || (s = append_one(w, slot, TRACE_K, n, k, e)) ||
        (s = append_one(w, slot, TRACE_V, n, v, e)))
        return s;
    return RB_OK;
}

rb_status trace_writer_set_tokens(trace_writer *w, const int32_t *tokens, int n, rb_err *e) {
    hsize_t d = (hsize_t)n;
    if (h5_write_dataset(w->file, "tokens", H5T_NATIVE_INT32, 1, &d, tokens, 1) != 0)
        return output_write_error(e, w->path, "/tokens");
    return RB_OK;
}

rb_status trace_writer_set_text(trace_writer *w, const char *text, rb_err *e) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(w->file, "text", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    return ok ? RB_OK : output_write_error(e, w->path, "/text");
}

rb_status trace_writer_set_truth(trace_writer *w, const char *name, const int32_t *rows, int n,
                                 rb_err *e) {
    if (H5Lexists(w->file, "truth", H5P_DEFAULT) <= 0) {
        hid_t g = H5Gcreate2(w->file, "truth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) return output_write_error(e, w->path, "/truth");
        H5Gclose(g);
    }
    char path[64];
    snprintf(path, sizeof path, "truth/%s", name);
    hsize_t dims[2] = {(hsize_t)n, 3};
    if (h5_write_dataset(w->file, path, H5T_NATIVE_INT32, 2, dims, rows, 0) != 0)
        return output_write_error(e, w->path, path);
    return RB_OK;
}

rb_status trace_writer_finish(trace_writer *w, rb_err *e) {
    const trace_meta *m = &w->meta;
    int64_t n = w->n_written[0][0];
    rb_status s = RB_OK;
    for (int sl = 0; sl < m->n_stored && !s; sl++)
        for (int k = 0; k < 3; k++)
            if (w->n_written[sl][k] != n) {
                s = rb_fail(e, RB_EINPUT, w->path, "layer %d %s holds %lld tokens, layer %d q "
                            "holds %lld: every layer must be complete", m->layers[sl],
                            tensor_names[k], (long long)w->n_written[sl][k], m->layers[0],
                            (long long)n);
                break;
            }
    if (!s && n <= m->n_prefill)
        s = rb_fail(e, RB_EINPUT, w->path, "%lld tokens written but n_prefill is %d: a trace "
                    "needs at least one decode step", (long long)n, m->n_prefill);
    if (!s && h5_attr_write_i64(w->file, "n_tokens", n) != 0)
        s = output_write_error(e, w->path, "n_tokens");
    if (s) {
        trace_writer_abort(w);
        return s;
    }
    for (int sl = 0; sl < m->n_stored; sl++)
        for (int k = 0; k < 3; k++) {
            H5Dclose(w->dsets[sl][k]);
            w->dsets[sl][k] = 0;
        }
    s = h5_finish(w->file, w->tmp, w->path, RB_OK, e);
    free(w->half);
    free(w->path);
    free(w->tmp);
    free(w);
    return s;
}
