/* fwd_cuda_stub.c: the fwd_cuda.h API in builds without CUDA (CUDA=0 or no nvcc): every call
 * fails cleanly with "no CUDA in this build", so harness/model/model_cuda.c and the tests
 * link everywhere. With CUDA the kernels are kernels/cuda/fwd_cuda.cu and this file compiles
 * to nothing. */
#include "cuda/fwd_cuda.h"

#ifndef RB_HAVE_CUDA
static rb_status no_cuda(rb_err *e) {
    return rb_fail(e, RB_EINTERNAL, "fwd_cuda", "no CUDA in this build");
}

rb_status fwd_cuda_matvec(attn_cuda *c, const fwd_mv *jobs, int n_jobs, float softcap,
                          uint64_t *argmax, rb_err *e) {
    (void)c, (void)jobs, (void)n_jobs, (void)softcap, (void)argmax;
    return no_cuda(e);
}

rb_status fwd_cuda_embed(attn_cuda *c, fwd_mat table, const int32_t *tokens, const int32_t *pos,
                         float scale, float *x, const float *norm_w, float eps, float *xn,
                         rb_err *e) {
    (void)c, (void)table, (void)tokens, (void)pos, (void)scale, (void)x, (void)norm_w, (void)eps;
    (void)xn;
    return no_cuda(e);
}

rb_status fwd_cuda_residual_norm(attn_cuda *c, const float *o, const float *post_w, float *x,
                                 const float *w, int n, float eps, float *xn, rb_err *e) {
    (void)c, (void)o, (void)post_w, (void)x, (void)w, (void)n, (void)eps, (void)xn;
    return no_cuda(e);
}

rb_status fwd_cuda_qk_finish(attn_cuda *c, float *q, int n_q, const float *q_norm, float *k,
                             int n_k, const float *k_norm, int d, float eps, const int32_t *pos,
                             const fwd_rope *rope, rb_err *e) {
    (void)c, (void)q, (void)n_q, (void)q_norm, (void)k, (void)n_k, (void)k_norm, (void)d;
    (void)eps, (void)pos, (void)rope;
    return no_cuda(e);
}

rb_status fwd_cuda_advance(attn_cuda *c, int32_t *pos, int pos_step, uint64_t *argmax,
                           int32_t *tokens, int max_pos, int32_t *last, rb_err *e) {
    (void)c, (void)pos, (void)pos_step, (void)argmax, (void)tokens, (void)max_pos, (void)last;
    return no_cuda(e);
}

rb_status fwd_cuda_capture_begin(attn_cuda *c, rb_err *e) {
    (void)c;
    return no_cuda(e);
}

rb_status fwd_cuda_capture_end(attn_cuda *c, fwd_graph **out, rb_err *e) {
    (void)c;
    if (out) *out = NULL;
    return no_cuda(e);
}

rb_status fwd_cuda_graph_launch(attn_cuda *c, fwd_graph *g, rb_err *e) {
    (void)c, (void)g;
    return no_cuda(e);
}

void fwd_cuda_graph_destroy(fwd_graph *g) { (void)g; }

rb_status fwd_cuda_events_create(int n, fwd_events **out, rb_err *e) {
    (void)n;
    if (out) *out = NULL;
    return no_cuda(e);
}

void fwd_cuda_events_destroy(fwd_events *ev) { (void)ev; }

rb_status fwd_cuda_event_record(attn_cuda *c, fwd_events *ev, int i, rb_err *e) {
    (void)c, (void)ev, (void)i;
    return no_cuda(e);
}

rb_status fwd_cuda_event_ms(fwd_events *ev, int from, int to, float *ms, rb_err *e) {
    (void)ev, (void)from, (void)to;
    if (ms) *ms = 0;
    return no_cuda(e);
}

rb_status fwd_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, rb_err *e) {
    if (free_bytes) *free_bytes = 0;
    if (total_bytes) *total_bytes = 0;
    return no_cuda(e);
}
#else
typedef int fwd_cuda_stub_unused; /* a translation unit may not be empty */
#endif
