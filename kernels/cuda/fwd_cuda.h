/* fwd_cuda.h: the pieces of a transformer forward on the GPU (C-callable;
 * kernels/cuda/fwd_cuda.cu with CUDA, kernels/fwd_cuda_stub.c otherwise, whose every call
 * fails with "no CUDA in this build"): matrix-vector products over weights kept in their GGUF
 * block formats, RMS norms fused with the residual add, q/k norms and RoPE, the embedding
 * row, the greedy choice, and the CUDA graph and event plumbing harness/model/model_cuda.c
 * needs without CUDA headers.
 *
 * Everything is queued on the attn_cuda context's stream (attn_cuda_stream), synchronises
 * nothing and takes positions and tokens from device memory, so a whole decode step can be
 * captured once (fwd_cuda_capture_begin/end) and replayed. Launch errors are returned at
 * once (RB_EINTERNAL); input errors (RB_EINPUT) are found before anything is launched.
 * Arithmetic is float32; the RMS norms sum squares in double, as the CPU model does.
 * Pointers are device pointers unless said otherwise. */
#ifndef FWD_CUDA_H
#define FWD_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "attn_cuda.h"
#include "rb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A weight matrix [rows, cols] in a GGUF format (a ggml type number quant_supported()
 * takes), rows stored one after another as in the file (quant_row_bytes(type, cols) each).
 * The kernels read whole 16-byte words around a row's bytes: the allocation must start
 * 16-byte aligned below the data (any attn_cuda_alloc does) and extend FWD_PAD bytes past
 * the last row. */
#define FWD_PAD 16
typedef struct fwd_mat {
    const void *w;
    int type;
    int rows, cols;
} fwd_mat;

typedef enum { FWD_ACT_NONE = 0, FWD_ACT_GELU_TANH = 1, FWD_ACT_SILU = 2 } fwd_act;

/* One product y = W x' (+ bias), x' = x, or act(x) * x2 with an activation (the gated
 * feed-forward: gelu_tanh or silu of the gate times up, computed as x is read). x, x2 [cols]
 * 16-byte aligned; bias [rows] or NULL; y [rows]. */
typedef struct fwd_mv {
    fwd_mat m;
    const float *x, *x2;
    int act; /* fwd_act */
    const float *bias;
    float *y;
} fwd_mv;

#define FWD_MAX_JOBS 4
/* Up to FWD_MAX_JOBS products in one launch (q, k and v; gate and up), each row computed by
 * one warp: the row's bytes staged through shared memory in 16-byte loads, dequantized in
 * registers (fwd_dequant.h), multiplied by x and summed in float32. softcap > 0: every y
 * becomes tanh(y / softcap) * softcap. argmax (NULL or one uint64 the caller zeroes before
 * the first use; fwd_cuda_advance zeroes it after reading): the greedy choice over every row
 * of every job, folded in atomically (fwd_cuda_advance reads it out). */
rb_status fwd_cuda_matvec(attn_cuda *c, const fwd_mv *jobs, int n_jobs, float softcap,
                          uint64_t *argmax, rb_err *e);

/* The embedding of token tokens[*pos]: x [n] = row of table (dequantized) times scale; then,
 * when norm_w is not NULL, xn [n] = rmsnorm(x) * norm_w. table.cols = n. A token outside
 * [0, table.rows) gives x = 0 (the host checks tokens before they reach the device). */
rb_status fwd_cuda_embed(attn_cuda *c, fwd_mat table, const int32_t *tokens, const int32_t *pos,
                         float scale, float *x, const float *norm_w, float eps, float *xn,
                         rb_err *e);

/* The residual step of a block and the next norm, over n elements:
 *   o' = rmsnorm(o) * post_w  (post_w not NULL: gemma's post-attention/post-ffw norm)
 *      = o                    (post_w NULL)
 *   x += o'                   (o not NULL)
 *   xn = rmsnorm(x) * w
 * rmsnorm(v) = v * (float)(1 / sqrt(sum v^2 / n + eps)), the sum in double (model.c's). */
rb_status fwd_cuda_residual_norm(attn_cuda *c, const float *o, const float *post_w, float *x,
                                 const float *w, int n, float eps, float *xn, rb_err *e);

/* RoPE of one layer: angles theta_i = p * base^(-2i/d) (divided by freq_factors[i] when not
 * NULL, [d/2]), p = *pos * pos_scale, in double, then rounded to float cosines and sines
 * (model.c's rope_table); neox pairs (i, i + d/2), else (2i, 2i + 1). */
typedef struct fwd_rope {
    int neox;
    float base, pos_scale;
    const float *freq_factors;
} fwd_rope;

/* q [n_q, d] and k [n_k, d] of one token, in place: per head the RMS norm with q_norm /
 * k_norm [d] when not NULL, then RoPE at *pos. d even, <= 8192. */
rb_status fwd_cuda_qk_finish(attn_cuda *c, float *q, int n_q, const float *q_norm, float *k,
                             int n_k, const float *k_norm, int d, float eps, const int32_t *pos,
                             const fwd_rope *rope, rb_err *e);

/* One thread of bookkeeping at the end of a step: *pos += pos_step; then, with argmax not
 * NULL, t = the greedy token it holds (the lowest index of the largest value), argmax is
 * zeroed, *last = t (last may be NULL) and tokens[*pos] = t when *pos <= max_pos. */
rb_status fwd_cuda_advance(attn_cuda *c, int32_t *pos, int pos_step, uint64_t *argmax,
                           int32_t *tokens, int max_pos, int32_t *last, rb_err *e);

/* CUDA graphs of the work queued on the context's stream between begin and end (captured,
 * not run); launch replays one on the stream. end returns RB_EINTERNAL when something queued
 * during the capture could not be captured (the capture is then abandoned). */
typedef struct fwd_graph fwd_graph;
rb_status fwd_cuda_capture_begin(attn_cuda *c, rb_err *e);
rb_status fwd_cuda_capture_end(attn_cuda *c, fwd_graph **out, rb_err *e);
rb_status fwd_cuda_graph_launch(attn_cuda *c, fwd_graph *g, rb_err *e);
void fwd_cuda_graph_destroy(fwd_graph *g); /* NULL is a no-op */

/* Timing events: n of them; record queues event i on the stream; ms waits for event `to`
 * and gives the device time from `from` to `to`. */
typedef struct fwd_events fwd_events;
rb_status fwd_cuda_events_create(int n, fwd_events **out, rb_err *e);
void fwd_cuda_events_destroy(fwd_events *ev); /* NULL is a no-op */
rb_status fwd_cuda_event_record(attn_cuda *c, fwd_events *ev, int i, rb_err *e);
rb_status fwd_cuda_event_ms(fwd_events *ev, int from, int to, float *ms, rb_err *e);

/* Device memory free and total (bytes), for messages. */
rb_status fwd_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, rb_err *e);

#ifdef __cplusplus
}
#endif

#endif
