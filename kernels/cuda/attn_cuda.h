/* attn_cuda.h: GPU attention for one decode step (C-callable; kernels/cuda/attn_cuda.cu when
 * built with CUDA, kernels/attn_cuda_stub.c otherwise, whose every function fails with
 * "no CUDA in this build" and whose attn_cuda_device_count returns 0).
 *
 * Layouts (docs/DESIGN.md §1, token-major as raasbench stores a layer):
 *   q   [Hq, d]        float32, device memory
 *   k,v [n, Hkv, d]    float32 or IEEE half (attn_cuda_dtype), device memory, 16-byte aligned
 *   idx [Hkv, L]       int32 token indices into k, v (gather only)
 *   o   [Hq, d]        float32: sum_j p_j v_j
 *   lse [Hq]           float32: log sum_j exp(scale * q.k_j), natural log
 * Query head h uses KV head h / G, G = Hq / Hkv (grouped-query attention, as attn_causal_ref).
 * Arithmetic is float32 throughout (half K/V are widened on load).
 *
 * All kernels run asynchronously on the context's own stream; a launch that fails is
 * reported at once, while faults inside a kernel and out-of-range gather indices are
 * reported by the next attn_cuda_sync. Pointers marked "device" must come from
 * attn_cuda_alloc (or any cudaMalloc on the context's device). */
#ifndef ATTN_CUDA_H
#define ATTN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "rb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* bfloat16 only for attn_cuda_causal_chunk and attn_cuda_fill_random; the decode-step
 * kernels take float32 and half. */
typedef enum { ATTN_CUDA_F32 = 0, ATTN_CUDA_F16 = 1, ATTN_CUDA_BF16 = 2 } attn_cuda_dtype;

/* One layer's attention shape. Requires Hq <= 65535, Hq % Hkv == 0, G = Hq / Hkv in {1, 2, 4, 8},
 * head_dim in {64, 128, 256}, scale finite; anything else is RB_EINPUT. */
typedef struct attn_cuda_shape {
    int n_q_heads;  /* Hq */
    int n_kv_heads; /* Hkv */
    int head_dim;   /* d */
    float scale;    /* logits are scale * q.k (usually 1/sqrt(d)) */
    attn_cuda_dtype kv_dtype;
} attn_cuda_shape;

typedef struct attn_cuda attn_cuda; /* a device, a stream, scratch, timing events */

/* Number of usable CUDA devices: 0 when none, when the driver is missing or broken, or in a
 * build without CUDA. Never fails; tests skip when it returns 0. */
int attn_cuda_device_count(void);

/* A context on device 0. RB_EINTERNAL when there is no usable GPU or no CUDA in this build.
 * attn_cuda_destroy(NULL) is a no-op; destroy frees the context's scratch, not user buffers. */
rb_status attn_cuda_create(attn_cuda **out, rb_err *e);
void attn_cuda_destroy(attn_cuda *c);

/* "NVIDIA H200, 132 SMs, L2 60 MiB" and the like, into buf (always NUL-terminated). */
void attn_cuda_describe(const attn_cuda *c, char *buf, size_t buf_size);

/* The context's stream (a cudaStream_t), for other CUDA modules that queue work in order with
 * this context's (the GPU forward and the device KV cache share one stream, so one CUDA graph
 * can capture a whole decode step). NULL in a build without CUDA. */
void *attn_cuda_stream(const attn_cuda *c);

/* Device memory. alloc: RB_EINTERNAL when the device is out of memory. free(NULL) no-op. */
rb_status attn_cuda_alloc(attn_cuda *c, size_t bytes, void **dev, rb_err *e);
void attn_cuda_free(attn_cuda *c, void *dev);
/* Synchronous copies between host and device, ordered on the context's stream after
 * everything queued before them. */
rb_status attn_cuda_upload(attn_cuda *c, void *dev, const void *host, size_t bytes, rb_err *e);
rb_status attn_cuda_download(attn_cuda *c, void *host, const void *dev, size_t bytes, rb_err *e);
/* Asynchronous device-to-device copy on the stream (the bench's bandwidth ceiling). */
rb_status attn_cuda_copy(attn_cuda *c, void *dst, const void *src, size_t bytes, rb_err *e);
/* Fills count elements of dtype at dev with uniform values in [-1, 1) from a hash of
 * (seed, index): reproducible, asynchronous, for benchmarks' inputs. */
rb_status attn_cuda_fill_random(attn_cuda *c, void *dev, size_t count, attn_cuda_dtype dtype,
                                uint64_t seed, rb_err *e);

/* Dense attention of one decode step over all n >= 1 tokens (split-K / flash-decoding:
 * blocks over the token axis write partial (max, sum, acc), a second kernel combines them).
 * q, k, v, o, lse are device pointers; RB_EINPUT on a bad shape, n < 1 or a misaligned or
 * NULL pointer (checked before anything is launched). */
rb_status attn_cuda_dense(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                          const void *v, int n, float *o, float *lse, rb_err *e);

/* Sparse gather attention: KV head h (and its G query heads) attends tokens idx[h*L + j],
 * j < L (L >= 1; order and repeats are allowed and count as given). k, v hold n tokens.
 * An index outside [0, n) is never read: it is left out and the next attn_cuda_sync
 * returns RB_EINPUT (o, lse of that call are then unspecified). */
rb_status attn_cuda_gather(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           const void *v, int n, const int32_t *idx, int L, float *o,
                           float *lse, rb_err *e);

/* The pieces the split kernels do not give, for the attention backend table
 * (kernels/attn_backend_cuda.c): plain kernels, one thread per output, correct and not tuned.
 * Pointers are device pointers (4-byte aligned); every check is made before any launch.
 *
 * attn_cuda_scores: per query head h (KV head h / G) and j < len (len = L with idx, else n),
 * with t = idx ? idx[(h / G) * L + j] : j and x = scale * q_h . k_t (float32, c in order):
 *   p[h * ldp + j] = x                   when lse is NULL (the scaled logits)
 *   p[h * ldp + j] = exp(x - lse[h])     otherwise (the probabilities of the softmax whose
 *                                        log-sum-exp lse holds, e.g. attn_cuda_dense's)
 * q [Hq, d]; k [n, Hkv, d] of s->kv_dtype; lse [Hq]; p [Hq, ldp], ldp >= len. An index outside
 * [0, n) is not read: p is 0 there and the next attn_cuda_sync returns RB_EINPUT. */
rb_status attn_cuda_scores(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           int n, const int32_t *idx, int L, const float *lse, float *p, int ldp,
                           rb_err *e);

/* o[r * d + c] = sum_{j < n} p[r * ldp + j] * v[j * d + c] for the n_rows >= 1 rows r, summed
 * in j order in float32: p [n_rows, ldp] (ldp >= n), v float32 [n, d], o [n_rows, d]; any
 * d >= 1; n = 0 writes zeros (v may then be NULL). */
rb_status attn_cuda_weighted(attn_cuda *c, const float *p, int n_rows, int ldp, const float *v,
                             int n, int d, float *o, rb_err *e);

/* The column mass of a causal prompt (attn_causal's col_mass): for KV head kv and key j < n,
 * col[kv * n + j] = sum over the G query heads h of kv and the positions i >= j of
 * exp(scale * q_{i,h} . k_{j,kv} - lse[i * Hq + h]), accumulated in double. q [n, Hq, d];
 * k [n, Hkv, d] of s->kv_dtype; lse [n, Hq]: position i's log-sum-exp over keys 0..i (as
 * attn_cuda_dense gives it with n = i + 1); col [Hkv, n]; n >= 1. */
rb_status attn_cuda_col_mass(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                             const void *k, int n, const float *lse, float *col, rb_err *e);

/* Replay's dense reference of a chunk of W decode steps as one causal block (the device form
 * of attn_causal_block.h's attn_chunk; flash-attention style, float32 arithmetic): query rows
 * q [W, Hq, d] float32 at positions t0..t0+W-1 attend keys j0(w)..t0+w of k, v
 * [>= t0+W, Hkv, d] (s->kv_dtype: float32, half or bfloat16), j0(w) = 0, or
 * max(0, t0+w+1-window) when window > 0. Any G = Hq / Hkv; d 64, 128 or 256.
 *   lse    [W, Hq]         required
 *   out    [W, Hq, d]      required
 *   logits [Hq, W, ldn]    optional (NULL): the scaled logits at j0(w)..t0+w, ldn >= t0+W
 *   probs  [Hq, W, ldn]    optional, needs logits: exp(logit - lse) at the same entries
 * Entries outside each row's range are not written. Device pointers, checked before any
 * launch (RB_EINPUT). Without logits and probs only O(W Hq d) is written: the replay of a
 * long trace's reference streams K and V and nothing else. */
rb_status attn_cuda_causal_chunk(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                                 const void *k, const void *v, int W, int t0, int window,
                                 int ldn, float *logits, float *probs, float *lse, float *out,
                                 rb_err *e);

/* Waits for everything queued; RB_EINTERNAL on a CUDA fault, RB_EINPUT when a gather since
 * the last sync met an out-of-range index (the flag is then cleared). */
rb_status attn_cuda_sync(attn_cuda *c, rb_err *e);

/* For error bounds: the most keys any one partial accumulates in sequence when attending
 * `len` keys (n for dense, L for gather) with shape s. 0 on a bad shape. */
int attn_cuda_max_run(const attn_cuda *c, const attn_cuda_shape *s, int len);

/* Tuning: every setting computes the same function (the test checks each); only speed
 * differs. attn_cuda_tune copies *t into the context; RB_EINPUT outside the ranges. */
typedef struct attn_cuda_tuning {
    int blocks_per_sm; /* split-K sizing: about blocks_per_sm * SMs blocks a call (1..64) */
    int prefetch;      /* 1: the next round of K/V rows is in flight while a warp computes;
                          0: each round is loaded when needed; -1: 1 for half K/V, 0 for float32 */
    int heads_inner;   /* 1: consecutive blocks take the KV heads of one split (together they
                          read whole token rows); 0: consecutive splits of one head */
} attn_cuda_tuning;
/* What a new context uses: 4 blocks per SM, prefetch for half only, heads-inner order. One
 * definition for the CUDA build and the stub. */
#define ATTN_CUDA_TUNING_DEFAULT {4, -1, 1}
attn_cuda_tuning attn_cuda_tuning_default(void);
rb_status attn_cuda_tune(attn_cuda *c, const attn_cuda_tuning *t, rb_err *e);

/* Timing. attn_cuda_mark records timing event `slot` (0 <= slot < ATTN_CUDA_MAX_MARKS) on
 * the stream; attn_cuda_elapsed_ms waits for `to` and gives the device time between two
 * recorded marks. attn_cuda_spin queues a kernel that keeps one SM busy for about `us`
 * microseconds, so the host can queue a whole timed sequence behind it and launches then
 * run back to back instead of waiting on the host. */
#define ATTN_CUDA_MAX_MARKS 1024
rb_status attn_cuda_mark(attn_cuda *c, int slot, rb_err *e);
rb_status attn_cuda_elapsed_ms(attn_cuda *c, int from, int to, float *ms, rb_err *e);
rb_status attn_cuda_spin(attn_cuda *c, int us, rb_err *e);

#ifdef __cplusplus
}
#endif

#endif
