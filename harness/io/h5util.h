/* h5util.h: small HDF5 helpers shared by the trace and results files: typed attributes
 * (strings are variable-length UTF-8, as h5py writes them), the float16 file type, silencing
 * the library's own error printing (we report errors ourselves), and write-to-temporary then
 * rename. */
#ifndef H5UTIL_H
#define H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#include "rb.h"

/* Turn off HDF5's automatic error stack printing for the calling thread (cheap after the
 * first call; every entry point of the readers and writers calls it, since worker threads
 * read traces). */
void h5_quiet(void);

/* The IEEE half-precision little-endian file type (HDF5 1.10 has none predefined).
 * Owned by h5util; do not close. */
hid_t h5_type_f16(void);
/* String types (the caller closes them): variable-length UTF-8, as h5py writes strings, and
 * NUL-terminated fixed-size buffers of n bytes (structs' char arrays). */
hid_t h5_type_vlen_str(void);
hid_t h5_type_fixed_str(size_t n);

/* Attributes on any object. Writers overwrite an existing attribute. */
int h5_attr_write_str(hid_t obj, const char *name, const char *value);
int h5_attr_write_i64(hid_t obj, const char *name, int64_t value);
int h5_attr_write_f64(hid_t obj, const char *name, double value);
int h5_attr_write_i32_array(hid_t obj, const char *name, const int32_t *v, int n);
/* Readers return 0 on success, -1 when missing or of the wrong class. Strings are copied
 * into buf (truncated to cap-1 bytes); integer readers accept any integer type; the float
 * reader accepts floats and integers. */
int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t cap);
/* A string attribute whole, as a new string (malloc'd); NULL when missing or not a string. */
char *h5_attr_read_strdup(hid_t obj, const char *name);
int h5_attr_read_i64(hid_t obj, const char *name, int64_t *out);
int h5_attr_read_f64(hid_t obj, const char *name, double *out);
/* Integer array attribute: *n receives the element count; reads at most cap values. */
int h5_attr_read_i32_array(hid_t obj, const char *name, int32_t *v, int cap, int *n);
int h5_attr_exists(hid_t obj, const char *name);

/* The `format` and `format_version` attributes of an HDF5 file's root ("" and -1 where
 * absent). Returns 0; -1 when path is not an HDF5 file (or missing), -2 when it is one that
 * does not open (damaged). */
int h5_file_format(const char *path, char *fmt, size_t cap, int64_t *version);

/* The names of the links in group `group` of loc, in name order (*names and each name
 * malloc'd); none when the group is missing. Returns the count. */
int h5_link_names(hid_t loc, const char *group, char ***names);

/* Temporary-file discipline: "<path>.tmp-<pid>", begun with output_tmp_begin (stale ones
 * removed, this one registered for removal on a signal). */
void h5_tmp_path(const char *path, char *buf, size_t cap);

/* Every HDF5 writer starts and ends here. h5_create checks path (output_check: not a
 * directory, device or link), and creates the file under its temporary name (buf, cap >=
 * strlen(path) + 32). h5_finish closes f (when > 0) and, when st is RB_OK and the close
 * succeeded, renames it into place; otherwise removes it. A failed write, a full disk
 * included, is RB_EINPUT naming errno. Returns st or the failure. */
rb_status h5_create(const char *path, char *tmp, size_t cap, hid_t *f, rb_err *e);
rb_status h5_finish(hid_t f, const char *tmp, const char *path, rb_status st, rb_err *e);

/* Write a whole dataset (creating it, chunked+deflate when compress and rank >= 1).
 * dims: rank sizes. Returns 0 or -1. */
int h5_write_dataset(hid_t loc, const char *name, hid_t mem_type, int rank,
                     const hsize_t *dims, const void *data, int compress);

/* A dataset-transfer property list for moving n elements whose larger type (in the file or
 * in memory) takes elem bytes: its type-conversion buffer holds them all, up to HDF5's own
 * default of 1 MiB. libhdf5 allocates and clears that whole default for every read or write
 * that converts, however few elements it moves. The caller closes it (H5Pclose). */
hid_t h5_xfer(size_t n, size_t elem);

/* The kind of object at path below loc: H5I_GROUP, H5I_DATASET, H5I_DATATYPE, or H5I_BADID
 * when there is none (no such link, or a link below something that is not a group). Readers
 * check an optional object's kind with it, so that one of the wrong kind is refused, never
 * read as absent. */
H5I_type_t h5_kind(hid_t loc, const char *path);

/* Whether the link path ("a/b/c") exists below loc, every group on the way included. */
int h5_exists(hid_t loc, const char *path);

/* Every reader opens its datasets here before it allocates for them. The checked open:
 * `name` (a path below loc) must exist and be a dataset whose declared extent the file can
 * hold: all of its storage written, no more stored than the file holds, no more declared
 * than that storage can decompress to, and at most H5_MAX_DATASET_BYTES. A lie is refused
 * with RB_EINPUT as `<file>: <name>: declares [dims] ... but ...`; a missing dataset as
 * `<what>: missing dataset <name>`. *ds is closed by the caller. */
#define H5_MAX_DATASET_BYTES ((hsize_t)64 << 30)
rb_status h5_dataset_open(hid_t loc, const char *name, hid_t *ds, const char *what, rb_err *e);
/* The same check on an open dataset. */
rb_status h5_dataset_check(hid_t ds, const char *name, rb_err *e);

/* Read the whole dataset `name` of loc, which must have rank `rank`, as mem_type into a new
 * array *out (at least one element allocated); dims receives its sizes. Fails with RB_EINPUT
 * naming `what` when it is missing, of another rank, or not convertible. */
rb_status h5_read_dataset(hid_t loc, const char *name, hid_t mem_type, int rank, hsize_t *dims,
                          void **out, const char *what, rb_err *e);

#endif
