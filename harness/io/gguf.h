/* gguf.h: read-only GGUF v3 files through mmap (header, metadata, tensor table, data).
 *
 * gguf_open validates the whole structure before returning: magic, version 3, every
 * length and offset inside the mapping, alignment, tensor types known, tensor data inside
 * the file. A truncated or inconsistent file is refused with RB_EINPUT; nothing is ever
 * read past the mapping. */
#ifndef GGUF_H
#define GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "quant_types.h"
#include "rb.h"

/* Metadata value types (GGUF spec). */
typedef enum {
    GGUF_VT_UINT8 = 0, GGUF_VT_INT8 = 1, GGUF_VT_UINT16 = 2, GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4, GGUF_VT_INT32 = 5, GGUF_VT_FLOAT32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_UINT64 = 10, GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
} gguf_value_type;


typedef struct gguf_str {
    const char *s; /* not NUL-terminated: points into the mapping */
    uint64_t n;
} gguf_str;

typedef struct gguf_tensor {
    char name[128];     /* names of 128 bytes or more are refused */
    int n_dims;
    int64_t ne[4];      /* ne[0] is the contiguous (row) dimension, as in ggml; ne[d] = 1
                         * for d >= n_dims; every ne >= 1 (empty tensors are refused) */
    ggml_type type;
    const void *data;   /* inside the mapping */
    size_t nbytes;
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Map and validate `path`. On failure *out is NULL and e names the file and the problem
 * (RB_EINPUT for anything about the file's contents or a file that cannot be opened). */
rb_status gguf_open(const char *path, gguf_file **out, rb_err *e);
void gguf_close(gguf_file *g); /* NULL is a no-op */

/* Metadata. Each getter fails with RB_EINPUT naming the key when it is missing or of
 * another type; integer getters accept any integer type whose value fits. */
int gguf_has_key(const gguf_file *g, const char *key);
rb_status gguf_get_int(const gguf_file *g, const char *key, int64_t *out, rb_err *e);
rb_status gguf_get_float(const gguf_file *g, const char *key, double *out, rb_err *e);
rb_status gguf_get_bool(const gguf_file *g, const char *key, int *out, rb_err *e);
rb_status gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, rb_err *e);
/* Arrays: element type and length; then elements by index. */
rb_status gguf_get_array(const gguf_file *g, const char *key, gguf_value_type *elem_type,
                         uint64_t *n, rb_err *e);
/* Element i of a string array; {NULL, 0} when the key is missing, not an array of strings
 * or i is out of range. O(1): string offsets are indexed at open. */
gguf_str gguf_array_str(const gguf_file *g, const char *key, uint64_t i);
/* Element i of an array of numbers (any integer, float or bool element type) as a double;
 * NAN when the key is missing, not such an array or i is out of range. */
double gguf_array_num(const gguf_file *g, const char *key, uint64_t i);

/* Every key, in file order: i in [0, gguf_n_kv), NULL past the end. A key's value type is
 * GGUF_VT_* (for arrays, GGUF_VT_ARRAY; gguf_get_array gives the element type). */
int gguf_n_kv(const gguf_file *g);
const char *gguf_key_at(const gguf_file *g, int i);
gguf_value_type gguf_key_type(const gguf_file *g, int i);

/* The file: path as given to gguf_open, size in bytes, general.alignment (32 when absent)
 * and where the tensor data section starts. */
const char *gguf_path(const gguf_file *g);
size_t gguf_file_size(const gguf_file *g);
size_t gguf_alignment(const gguf_file *g);
size_t gguf_data_offset(const gguf_file *g);

/* A human summary for `raasbench info M.gguf`: architecture, name, size, tensor count, a
 * histogram of tensor types (count and bytes), the architecture's hyperparameters and the
 * tokenizer. Writes only to f. */
void gguf_print_summary(FILE *f, const gguf_file *g);

/* Tensors. */
int gguf_n_tensors(const gguf_file *g);
const gguf_tensor *gguf_tensor_at(const gguf_file *g, int i);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name); /* NULL if absent */


#endif
