/* attn_cuda_stub.c: the attn_cuda.h API in builds without CUDA (CUDA=0 or no nvcc): every
 * function fails cleanly with "no CUDA in this build" so CPU-only builds link and their
 * callers (tests, the benchmark) skip. With CUDA the real kernels live in
 * kernels/cuda/attn_cuda.cu and this file compiles to nothing. */
#include "cuda/attn_cuda.h"

#ifndef RB_HAVE_CUDA
#include <stdio.h>

static rb_status no_cuda(rb_err *e) {
    return rb_fail(e, RB_EINTERNAL, "attn_cuda", "no CUDA in this build");
}

int attn_cuda_device_count(void) { return 0; }

rb_status attn_cuda_create(attn_cuda **out, rb_err *e) {
    if (out) *out = NULL;
    return no_cuda(e);
}

void attn_cuda_destroy(attn_cuda *c) { (void)c; }

void attn_cuda_describe(const attn_cuda *c, char *buf, size_t buf_size) {
    (void)c;
    if (buf && buf_size) snprintf(buf, buf_size, "no CUDA in this build");
}

void *attn_cuda_stream(const attn_cuda *c) {
    (void)c;
    return NULL;
}

rb_status attn_cuda_alloc(attn_cuda *c, size_t bytes, void **dev, rb_err *e) {
    (void)c, (void)bytes;
    if (dev) *dev = NULL;
    return no_cuda(e);
}

void attn_cuda_free(attn_cuda *c, void *dev) { (void)c, (void)dev; }

rb_status attn_cuda_upload(attn_cuda *c, void *dev, const void *host, size_t bytes, rb_err *e) {
    (void)c, (void)dev, (void)host, (void)bytes;
    return no_cuda(e);
}

rb_status attn_cuda_download(attn_cuda *c, void *host, const void *dev, size_t bytes, rb_err *e) {
    (void)c, (void)host, (void)dev, (void)bytes;
    return no_cuda(e);
}

rb_status attn_cuda_copy(attn_cuda *c, void *dst, const void *src, size_t bytes, rb_err *e) {
    (void)c, (void)dst, (void)src, (void)bytes;
    return no_cuda(e);
}

rb_status attn_cuda_fill_random(attn_cuda *c, void *dev, size_t count, attn_cuda_dtype dtype,
                                uint64_t seed, rb_err *e) {
    (void)c, (void)dev, (void)count, (void)dtype, (void)seed;
    return no_cuda(e);
}

rb_status attn_cuda_dense(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                          const void *v, int n, float *o, float *lse, rb_err *e) {
    (void)c, (void)s, (void)q, (void)k, (void)v, (void)n, (void)o, (void)lse;
    return no_cuda(e);
}

rb_status attn_cuda_gather(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           const void *v, int n, const int32_t *idx, int L, float *o,
                           float *lse, rb_err *e) {
    (void)c, (void)s, (void)q, (void)k, (void)v, (void)n, (void)idx, (void)L, (void)o, (void)lse;
    return no_cuda(e);
}

rb_status attn_cuda_scores(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           int n, const int32_t *idx, int L, const float *lse, float *p, int ldp,
                           rb_err *e) {
    (void)c, (void)s, (void)q, (void)k, (void)n, (void)idx, (void)L, (void)lse, (void)p, (void)ldp;
    return no_cuda(e);
}

rb_status attn_cuda_weighted(attn_cuda *c, const float *p, int n_rows, int ldp, const float *v,
                             int n, int d, float *o, rb_err *e) {
    (void)c, (void)p, (void)n_rows, (void)ldp, (void)v, (void)n, (void)d, (void)o;
    return no_cuda(e);
}

rb_status attn_cuda_col_mass(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                             const void *k, int n, const float *lse, float *col, rb_err *e) {
    (void)c, (void)s, (void)q, (void)k, (void)n, (void)lse, (void)col;
    return no_cuda(e);
}

rb_status attn_cuda_causal_chunk(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                                 const void *k, const void *v, int W, int t0, int window,
                                 int ldn, float *logits, float *probs, float *lse, float *out,
                                 rb_err *e) {
    (void)c, (void)s, (void)q, (void)k, (void)v, (void)W, (void)t0, (void)window, (void)ldn;
    (void)logits, (void)probs, (void)lse, (void)out;
    return no_cuda(e);
}

rb_status attn_cuda_sync(attn_cuda *c, rb_err *e) {
    (void)c;
    return no_cuda(e);
}

int attn_cuda_max_run(const attn_cuda *c, const attn_cuda_shape *s, int len) {
    (void)c, (void)s, (void)len;
    return 0;
}

attn_cuda_tuning attn_cuda_tuning_default(void) {
    attn_cuda_tuning t = ATTN_CUDA_TUNING_DEFAULT;
    return t;
}

rb_status attn_cuda_tune(attn_cuda *c, const attn_cuda_tuning *t, rb_err *e) {
    (void)c, (void)t;
    return no_cuda(e);
}

rb_status attn_cuda_mark(attn_cuda *c, int slot, rb_err *e) {
    (void)c, (void)slot;
    return no_cuda(e);
}

rb_status attn_cuda_elapsed_ms(attn_cuda *c, int from, int to, float *ms, rb_err *e) {
    (void)c, (void)from, (void)to;
    if (ms) *ms = 0;
    return no_cuda(e);
}

rb_status attn_cuda_spin(attn_cuda *c, int us, rb_err *e) {
    (void)c, (void)us;
    return no_cuda(e);
}
#else
typedef int attn_cuda_stub_unused; /* a translation unit may not be empty */
#endif
