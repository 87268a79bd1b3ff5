/* trace.h: attention traces in HDF5, format_version 1 (docs/DESIGN.md §2, traces/FORMAT.md).
 *
 * A trace is token-major: per stored layer, q [n_tokens, n_q_heads, head_dim] and k, v
 * [n_tokens, n_kv_heads, head_dim], float16 or float32, chunked along the token axis and
 * compressed (shuffle + deflate). Readers read by layer and token range, so a multi-GiB
 * trace is never loaded whole. Writers append token-major while a decode proceeds, write
 * to `<path>.tmp-<pid>` and rename to `path` only when trace_writer_finish succeeds. */
#ifndef TRACE_H
#define TRACE_H

#include <stdint.h>

#include "rb.h"

#define TRACE_FORMAT "raasbench-trace"
#define TRACE_FORMAT_VERSION 1
#define TRACE_MAX_LAYERS 256

typedef enum { TRACE_F32 = 0, TRACE_F16 = 1 } trace_dtype;
typedef enum { TRACE_Q = 0, TRACE_K = 1, TRACE_V = 2 } trace_tensor;

typedef struct trace_meta {
    char source[64];  /* "synth", "decode", a recorder's name */
    char model[128];  /* model name or "synthetic" */
    int n_layers;     /* layers of the model (stored layers may be a subset) */
    int n_q_heads, n_kv_heads, head_dim;
    int n_prefill;    /* positions 0..n_prefill-1 are the prompt */
    int n_tokens;     /* positions in the trace; decode steps are n_prefill..n_tokens-1 */
    float attn_scale; /* usually 1/sqrt(head_dim) */
    trace_dtype dtype;
    int n_stored;                          /* layers stored in the file */
    int layers[TRACE_MAX_LAYERS];          /* [n_stored] model layer index, ascending */
    int sliding_window[TRACE_MAX_LAYERS];  /* [n_stored] 0 = global layer */
} trace_meta;

typedef struct trace trace;
typedef struct trace_writer trace_writer;

/* ---- reading ---- */

/* Open and validate: HDF5, format name and version, attributes present and positive,
 * n_q_heads a multiple of n_kv_heads, n_prefill < n_tokens, every stored layer present with
 * the right shapes and dtype, and each optional object (/tokens, /text, /truth and its
 * tables) absent or of the right kind and extent. Values are checked as they are read (trace_read). */
rb_status trace_open(const char *path, trace **out, rb_err *e);
const trace_meta *trace_get_meta(const trace *t);
const char *trace_path(const trace *t);

/* Read tokens [pos0, pos0+n) of tensor `which` of stored layer `slot` (index into
 * meta.layers) into dst [n, heads, head_dim] as float32. NaN or Inf is refused with
 * RB_EINPUT naming the layer, tensor and position. */
rb_status trace_read(trace *t, int slot, trace_tensor which, int pos0, int n, float *dst,
                     rb_err *e);

/* Optional datasets. *present is 0 when the file does not have them (not an error). */
rb_status trace_read_tokens(trace *t, int32_t *dst /* [n_tokens] */, int *present, rb_err *e);
rb_status trace_read_text(trace *t, char **text /* malloc'd, or NULL */, rb_err *e);
/* name is "milestones" or "phoenix"; *rows is malloc'd int32 [*n, 3] (NULL when absent).
 * trace_open checked the tables' kind and extent; each row is checked here against n_prefill
 * and n_tokens (synth.h: what the columns mean), a row out of range refused as RB_EINPUT. */
rb_status trace_read_truth(trace *t, const char *name, int32_t **rows, int *n, rb_err *e);
/* Bytes the file takes on disk. */
int64_t trace_file_bytes(const trace *t);
void trace_close(trace *t); /* NULL is a no-op */

/* ---- writing ---- */

/* Create a writer. m->n_tokens is ignored (the file grows as tokens are appended); all
 * other fields must be set, with layers/sliding_window for the n_stored layers to write. */
rb_status trace_writer_create(const char *path, const trace_meta *m, trace_writer **out,
                              rb_err *e);
/* Append n tokens to stored layer `slot`: q [n, n_q_heads, head_dim], k and v
 * [n, n_kv_heads, head_dim]. Layers may be appended in any interleaving. */
rb_status trace_writer_append(trace_writer *w, int slot, int n, const float *q, const float *k,
                              const float *v, rb_err *e);
rb_status trace_writer_set_tokens(trace_writer *w, const int32_t *tokens, int n, rb_err *e);
rb_status trace_writer_set_text(trace_writer *w, const char *text, rb_err *e);
rb_status trace_writer_set_truth(trace_writer *w, const char *name, const int32_t *rows, int n,
                                 rb_err *e);
/* Check that every layer holds the same number of tokens (> n_prefill), write n_tokens,
 * close and rename into place. The writer is freed whatever the outcome. */
rb_status trace_writer_finish(trace_writer *w, rb_err *e);
/* Close and delete the temporary file. NULL is a no-op. */
void trace_writer_abort(trace_writer *w);

#endif
