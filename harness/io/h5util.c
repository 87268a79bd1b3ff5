/* h5util.c: HDF5 helpers (see h5util.h). */
#define _POSIX_C_SOURCE 200809L
#include "h5util.h"
#include "output.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* The library's error printing is a per-thread setting in a threadsafe build (Debian's is
 * one): each thread turns it off once, the first time it enters one of our readers or
 * writers. */
void h5_quiet(void) {
    static _Thread_local int quiet;
    if (!quiet) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    quiet = 1;
}

hid_t h5_type_f16(void) {
    static hid_t t = -1;
    if (t < 0) {
        /* IEEE binary16: sign bit 15, exponent bits 10..14 (bias 15), mantissa bits 0..9.
         * Readers such as h5py map exactly this layout to numpy float16. */
        t = H5Tcopy(H5T_IEEE_F32LE);
        RB_CHECK(t >= 0);
        RB_CHECK(H5Tset_fields(t, 15, 10, 5, 0, 10) >= 0);
        RB_CHECK(H5Tset_precision(t, 16) >= 0);
        RB_CHECK(H5Tset_size(t, 2) >= 0);
        RB_CHECK(H5Tset_ebias(t, 15) >= 0);
    }
    return t;
}

hid_t h5_type_vlen_str(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

hid_t h5_type_fixed_str(size_t n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                      const void *buf) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -1;
    int rc = H5Awrite(a, mtype, buf) < 0 ? -1 : 0;
    H5Aclose(a);
    return rc;
}

int h5_attr_write_str(hid_t obj, const char *name, const char *value) {
    hid_t t = h5_type_vlen_str(), s = H5Screate(H5S_SCALAR);
    int rc = attr_write(obj, name, t, t, s, &value);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

int h5_attr_write_i64(hid_t obj, const char *name, int64_t value) {
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, s, &value);
    H5Sclose(s);
    return rc;
}

int h5_attr_write_f64(hid_t obj, const char *name, double value) {
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = attr_write(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, &value);
    H5Sclose(s);
    return rc;
}

int h5_attr_write_i32_array(hid_t obj, const char *name, const int32_t *v, int n) {
    hsize_t d = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &d, NULL);
    int rc = attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, s, v);
    H5Sclose(s);
    return rc;
}

int h5_attr_exists(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

static hid_t attr_open_class(hid_t obj, const char *name, H5T_class_t want, H5T_class_t alt) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    H5T_class_t c = H5Tget_class(t);
    H5Tclose(t);
    if (c != want && c != alt) {
        H5Aclose(a);
        return -1;
    }
    return a;
}

char *h5_attr_read_strdup(hid_t obj, const char *name) {
    hid_t a = attr_open_class(obj, name, H5T_STRING, H5T_STRING);
    if (a < 0) return NULL;
    hid_t ft = H5Aget_type(a);
    hid_t space = H5Aget_space(a);
    char *out = NULL;
    if (H5Sget_simple_extent_npoints(space) == 1) {
        if (H5Tis_variable_str(ft) > 0) {
            char *p = NULL;
            hid_t mt = h5_type_vlen_str();
            if (H5Aread(a, mt, &p) >= 0 && p) {
                out = rb_strdup(p);
                H5free_memory(p);
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(ft);
            char *tmp = rb_calloc(n + 1, 1);
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, n + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            if (H5Aread(a, mt, tmp) >= 0) out = tmp;
            else free(tmp);
            H5Tclose(mt);
        }
    }
    H5Sclose(space);
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t cap) {
    char *s = h5_attr_read_strdup(obj, name);
    if (!s) return -1;
    snprintf(buf, cap, "%s", s);
    free(s);
    return 0;
}

static int attr_read_scalar(hid_t obj, const char *name, H5T_class_t c1, H5T_class_t c2,
                            hid_t mt, void *out) {
    hid_t a = attr_open_class(obj, name, c1, c2);
    if (a < 0) return -1;
    hid_t space = H5Aget_space(a);
    int rc = (H5Sget_simple_extent_npoints(space) == 1 && H5Aread(a, mt, out) >= 0) ? 0 : -1;
    H5Sclose(space);
    H5Aclose(a);
    return rc;
}

int h5_attr_read_i64(hid_t obj, const char *name, int64_t *out) {
    return attr_read_scalar(obj, name, H5T_INTEGER, H5T_INTEGER, H5T_NATIVE_INT64, out);
}

int h5_attr_read_f64(hid_t obj, const char *name, double *out) {
    return attr_read_scalar(obj, name, H5T_FLOAT, H5T_INTEGER, H5T_NATIVE_DOUBLE, out);
}

int h5_attr_read_i32_array(hid_t obj, const char *name, int32_t *v, int cap, int *n) {
    hid_t a = attr_open_class(obj, name, H5T_INTEGER, H5T_INTEGER);
    if (a < 0) return -1;
    hid_t space = H5Aget_space(a);
    hssize_t np = H5Sget_simple_extent_npoints(space);
    int rc = -1;
    if (np >= 0 && np <= cap) {
        rc = H5Aread(a, H5T_NATIVE_INT32, v) >= 0 ? 0 : -1;
        *n = (int)np;
    }
    H5Sclose(space);
    H5Aclose(a);
    return rc;
}

int h5_file_format(const char *path, char *fmt, size_t cap, int64_t *version) {
    h5_quiet();
    fmt[0] = 0;
    *version = -1;
    if (H5Fis_hdf5(path) <= 0) return -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -2;
    h5_attr_read_str(f, "format", fmt, cap);
    h5_attr_read_i64(f, "format_version", version);
    H5Fclose(f);
    return 0;
}

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    name_list *l = data;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = rb_realloc(l->v, sizeof(char *) * (size_t)l->cap);
    }
    l->v[l->n++] = rb_strdup(name);
    return 0;
}

int h5_link_names(hid_t loc, const char *group, char ***names) {
    name_list l = {0};
    if (H5Lexists(loc, group, H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(loc, group, H5P_DEFAULT);
        if (g >= 0) {
            H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &l);
            H5Gclose(g);
        }
    }
    *names = l.v;
    return l.n;
}

void h5_tmp_path(const char *path, char *buf, size_t cap) { output_tmp_begin(path, buf, cap); }

/* HDF5 1.10 leaves a file id that failed to close (its flush failed: disk full) pointing at
 * freed memory; the library's own atexit handler then closes it again and crashes. With no
 * atexit handler nothing touches it: the process ends without the library's cleanup, which
 * our writers never relied on (each closes its file). Must run before the first HDF5 call. */
__attribute__((constructor)) static void h5_no_atexit(void) { H5dont_atexit(); }

rb_status h5_create(const char *path, char *tmp, size_t cap, hid_t *f, rb_err *e) {
    h5_quiet();
    *f = -1;
    rb_status st = output_check(path, e);
    if (st) return st;
    output_tmp_begin(path, tmp, cap);
    if ((*f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        return output_tmp_end(tmp, path, rb_fail(e, RB_EINPUT, path, "cannot create %s "
                                                 "(directory missing or not writable?)", tmp), e);
    return RB_OK;
}

rb_status h5_finish(hid_t f, const char *tmp, const char *path, rb_status st, rb_err *e) {
    errno = 0;
    /* never close a file twice, even after a failed close (see h5_no_atexit) */
    if (f > 0 && H5Fclose(f) < 0 && !st) st = output_write_error(e, path, "the HDF5 file");
    return output_tmp_end(tmp, path, st, e);
}

int h5_write_dataset(hid_t loc, const char *name, hid_t mem_type, int rank,
                     const hsize_t *dims, const void *data, int compress) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) total *= dims[i];
    if (compress && rank >= 1 && total > 0) {
        hsize_t chunk[8];
        hsize_t row = 1;
        for (int i = 1; i < rank; i++) row *= dims[i], chunk[i] = dims[i];
        hsize_t rows = (256 * 1024) / (row * H5Tget_size(mem_type) + 1) + 1;
        chunk[0] = rows < dims[0] ? rows : dims[0];
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t d = H5Dcreate2(loc, name, mem_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = -1;
    if (d >= 0) {
        rc = (total == 0 || H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) ? 0 : -1;
        H5Dclose(d);
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc;
}

hid_t h5_xfer(size_t n, size_t elem) {
    const size_t cap = (size_t)1 << 20; /* H5D_TEMP_BUF_SIZE_DEF */
    size_t bytes = n && elem <= cap / n ? n * elem : cap;
    if (bytes < elem) bytes = elem;         /* one element at least, or HDF5 refuses */
    if (bytes < 64) bytes = 64;
    hid_t x = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_buffer(x, bytes, NULL, NULL);
    return x;
}

H5I_type_t h5_kind(hid_t loc, const char *path) {
    if (!h5_exists(loc, path)) return H5I_BADID;
    hid_t o = H5Oopen(loc, path, H5P_DEFAULT);
    if (o < 0) return H5I_BADID;
    H5I_type_t k = H5Iget_type(o);
    H5Oclose(o);
    return k;
}

int h5_exists(hid_t loc, const char *path) {
    /* H5Lexists wants every group above the last link to exist: test each prefix */
    char buf[512];
    size_t n = strlen(path);
    if (n >= sizeof buf) return 0;
    memcpy(buf, path, n + 1);
    for (char *p = buf; (p = strchr(p + 1, '/'));) {
        *p = 0;
        int ok = H5Lexists(loc, buf, H5P_DEFAULT) > 0;
        *p = '/';
        if (!ok) return 0;
    }
    return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

/* Deflate, the only compression our files use, cannot shrink data more than 1032 : 1
 * (a length-258 match in at most two bits): more than that is a declaration the stored
 * bytes cannot fill. */
#define H5_MAX_RATIO 1100

static void human_bytes(double b, char *buf, size_t cap) {
    const char *u[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int i = 0;
    while (b >= 1024 && i < 6) b /= 1024, i++;
    if (i == 0) snprintf(buf, cap, "%.0f bytes", b);
    else snprintf(buf, cap, "%.1f %s", b, u[i]);
}

rb_status h5_dataset_check(hid_t ds, const char *name, rb_err *e) {
    char file[1024] = "?";
    hsize_t file_bytes = 0;
    hid_t f = H5Iget_file_id(ds);
    if (f >= 0) {
        H5Fget_name(f, file, sizeof file);
        H5Fget_filesize(f, &file_bytes);
        H5Fclose(f);
    }
    hid_t sp = H5Dget_space(ds), ft = H5Dget_type(ds);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (rank > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t elem = H5Tget_size(ft);
    H5Sclose(sp);
    H5Tclose(ft);
    if (rank < 0 || elem == 0)
        return rb_fail(e, RB_EINPUT, file, "%s: has no readable shape or type", name);
    /* the declared size, in floating point: a product of lies can overflow 64 bits */
    double declared = (double)elem;
    char shape[256] = "[";
    for (int i = 0; i < rank; i++) {
        declared *= (double)dims[i];
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", i ? ", " : "",
                 (unsigned long long)dims[i]);
    }
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "]");
    if (declared == 0) return RB_OK;
    char dh[32], sh[32], fh[32];
    human_bytes(declared, dh, sizeof dh);
    human_bytes((double)file_bytes, fh, sizeof fh);
    /* Every chunk (or the contiguous block) must have been written: a declaration with no
     * data behind it reads as fill values, and is how a file claims sizes it does not
     * hold. */
    hid_t dcpl = H5Dget_create_plist(ds);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    double want_chunks = 1, have_chunks = 1;
    if (layout == H5D_CHUNKED) {
        hsize_t chunk[H5S_MAX_RANK] = {0};
        int cr = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        for (int i = 0; i < cr && i < rank; i++)
            want_chunks *= chunk[i] ? ceil((double)dims[i] / (double)chunk[i]) : 0;
        hsize_t nc = 0;
        hid_t all = H5Dget_space(ds); /* 1.10 refuses H5S_ALL here */
        have_chunks = H5Dget_num_chunks(ds, all, &nc) < 0 ? 0 : (double)nc;
        H5Sclose(all);
    } else {
        H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
        H5Dget_space_status(ds, &status);
        have_chunks = status == H5D_SPACE_STATUS_ALLOCATED;
    }
    H5Pclose(dcpl);
    if (have_chunks < want_chunks) {
        if (layout == H5D_CHUNKED)
            return rb_fail(e, RB_EINPUT, file, "%s: declares %s of %zu-byte elements (%s) but only "
                           "%.0f of its %.0f chunks were written", name, shape, elem, dh,
                           have_chunks, want_chunks);
        return rb_fail(e, RB_EINPUT, file, "%s: declares %s of %zu-byte elements (%s) but none of "
                       "it was written", name, shape, elem, dh);
    }
    double stored = (double)H5Dget_storage_size(ds);
    human_bytes(stored, sh, sizeof sh);
    if (stored > (double)file_bytes || declared > stored * H5_MAX_RATIO + 65536)
        return rb_fail(e, RB_EINPUT, file, "%s: declares %s of %zu-byte elements (%s) but stores "
                       "%s in a file of %s", name, shape, elem, dh, sh, fh);
    if (declared > (double)H5_MAX_DATASET_BYTES)
        return rb_fail(e, RB_EINPUT, file, "%s: declares %s of %zu-byte elements (%s) but this "
                       "build reads at most %d GiB per dataset", name, shape, elem, dh,
                       (int)(H5_MAX_DATASET_BYTES >> 30));
    return RB_OK;
}

rb_status h5_dataset_open(hid_t loc, const char *name, hid_t *ds, const char *what, rb_err *e) {
    h5_quiet();
    *ds = -1;
    if (!h5_exists(loc, name)) return rb_fail(e, RB_EINPUT, what, "missing dataset %s", name);
    if ((*ds = H5Dopen2(loc, name, H5P_DEFAULT)) < 0)
        return rb_fail(e, RB_EINPUT, what, "%s is not a dataset", name);
    rb_status st = h5_dataset_check(*ds, name, e);
    if (st) {
        H5Dclose(*ds);
        *ds = -1;
    }
    return st;
}

rb_status h5_read_dataset(hid_t loc, const char *name, hid_t mem_type, int rank, hsize_t *dims,
                          void **out, const char *what, rb_err *e) {
    *out = NULL;
    hid_t ds;
    rb_status st = h5_dataset_open(loc, name, &ds, what, e);
    if (st) return st;
    hid_t sp = H5Dget_space(ds);
    int r = H5Sget_simple_extent_ndims(sp);
    if (r != rank) {
        st = rb_fail(e, RB_EINPUT, what, "%s has rank %d, expected %d", name, r, rank);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < rank && !st; i++)
            if (dims[i] > INT32_MAX) /* callers index with int */
                st = rb_fail(e, RB_EINPUT, what, "%s: dimension %d is %llu, more than this build "
                             "reads (%d)", name, i, (unsigned long long)dims[i], INT32_MAX);
    }
    if (!st) {
        size_t n = 1;
        for (int i = 0; i < rank; i++) n *= dims[i];
        *out = rb_malloc(H5Tget_size(mem_type) * (n ? n : 1));
        hid_t ft = H5Dget_type(ds);
        size_t fe = H5Tget_size(ft), me = H5Tget_size(mem_type);
        H5Tclose(ft);
        hid_t x = h5_xfer(n, fe > me ? fe : me);
        herr_t rc = n ? H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, x, *out) : 0;
        H5Pclose(x);
        if (rc < 0) {
            free(*out);
            *out = NULL;
            st = rb_fail(e, RB_EINPUT, what, "%s cannot be read as numbers", name);
        }
    }
    H5Sclose(sp);
    H5Dclose(ds);
    return st;
}
