/* attn_causal_block.h: the dense reference of a chunk of consecutive decode steps as one
 * causal block (replay's reference, harness/engine/engine.c).
 *
 * In replay every query of a trace is known in advance, so the references of W consecutive
 * steps t0..t0+W-1 are one causal attention of W query rows over the keys 0..t0+W-1: two
 * matrix products per KV head (the logits Q K^T, then P V) with the causal mask inside the
 * chunk, instead of W matrix-vector passes that each re-read K and V. The fast CPU version
 * runs the products as OpenBLAS sgemm; the reference is attn_dense_ref per step and head.
 *
 * Layouts (d = head_dim, G = Hq / Hkv, query head h uses KV head h / G):
 *   q       [W, Hq, d]        the chunk's query rows (row w is position t0 + w)
 *   k, v    [>= t0+W, Hkv, d] the layer's token rows from position 0, Hkv * d floats apart
 *   logits  [Hq, W, ldn]      row (h, w) holds scale * q.k_j at index j (absolute position)
 *                             for j0(w) <= j <= t0 + w; other entries unspecified
 *   probs   [Hq, W, ldn]      the softmax of the same row at the same indices, entries
 *                             outside j0(w)..t0+w unspecified
 *   lse     [W, Hq]           log-sum-exp of each row over j0(w)..t0+w
 *   out     [W, Hq, d]        sum_j p_j v_j
 * where j0(w) = 0, or max(0, t0 + w + 1 - window) when window > 0 (sliding-window layers).
 * ldn >= t0 + W. Head-major logits let one product per KV head write the G * W rows of its
 * query heads with one row stride (ldn); a step w of the chunk sees its heads' rows at
 * logits + w * ldn with row stride W * ldn. */
#ifndef ATTN_CAUSAL_BLOCK_H
#define ATTN_CAUSAL_BLOCK_H

#include <stddef.h>

typedef struct attn_chunk {
    const float *q, *k, *v;
    int W, t0, window;   /* steps, first position, sliding window (0: none) */
    int Hq, Hkv, d;
    float scale;
    int ldn;             /* row length of logits and probs (>= t0 + W) */
    float *logits, *probs, *lse, *out; /* all required */
    float *work;         /* scratch of attn_chunk_work_floats(W, Hq, d) floats */
} attn_chunk;

/* Scratch the fast kernel needs (the reference needs none; NULL is then fine). */
size_t attn_chunk_work_floats(int W, int Hq, int d);

/* The plain reference: attn_dense_ref (double accumulation) for every step and KV head,
 * probabilities as exp(logit - lse). Obviously right, slow. */
void attn_causal_chunk_ref(const attn_chunk *c);

/* The fast version: per KV head, Q K^T over keys j0(0)..t0+W-1 by sgemm written in place
 * into logits, each row's softmax (vectorised exp, sums in double) written into probs with
 * zeros outside the row's range, then probs . V by sgemm. Equal to the reference within the
 * tolerances of tests/attn_backend_check.h (float32 products: a few ulp of rounding times
 * the longest sum). Single-threaded unless attn_blas_threads says otherwise. */
void attn_causal_chunk(const attn_chunk *c);

/* Threads each sgemm of attn_causal_chunk may use (OpenBLAS's setting, process-wide): the
 * replay engine runs layers on its own threads and asks for threads / layers in flight. */
void attn_blas_threads(int n);

/* Same-run peer of attn_causal_chunk's speed: GFLOP/s of cblas_sgemm on [m, k] x [k, n]
 * (row-major, k-major B as the logits product reads K), median of reps, on one thread of
 * the caller with the current attn_blas_threads setting. */
double attn_sgemm_gflops(int m, int n, int k, int reps);

#endif
