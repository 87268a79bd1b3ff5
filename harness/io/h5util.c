/* h5util.c: HDF5 helpers (see h5util.h). */
#define _POSIX_C_SOURCE 200809L
#include "h5util.h"
#include "output.h"

#include <string.h>
#include <unistd.h>

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

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

void h5_tmp_path(const char *path, char *buf, size_t cap) { output_tmp_path(path, buf, cap); }

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

rb_status h5_read_dataset(hid_t loc, const char *name, hid_t mem_type, int rank, hsize_t *dims,
                          void **out, const char *what, rb_err *e) {
    *out = NULL;
    hid_t ds = H5Lexists(loc, name, H5P_DEFAULT) > 0 ? H5Dopen2(loc, name, H5P_DEFAULT) : -1;
    if (ds < 0) return rb_fail(e, RB_EINPUT, what, "missing dataset %s", name);
    hid_t sp = H5Dget_space(ds);
    int r = H5Sget_simple_extent_ndims(sp);
    rb_status st = RB_OK;
    if (r != rank) {
        st = rb_fail(e, RB_EINPUT, what, "%s has rank %d, expected %d", name, r, rank);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        size_t n = 1;
        for (int i = 0; i < rank; i++) n *= dims[i];
        *out = rb_malloc(H5Tget_size(mem_type) * (n ? n : 1));
        if (n && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
            free(*out);
            *out = NULL;
            st = rb_fail(e, RB_EINPUT, what, "%s cannot be read as numbers", name);
        }
    }
    H5Sclose(sp);
    H5Dclose(ds);
    return st;
}
