/* quant.h: ggml tensor formats: dequantization and matrix-vector products.
 *
 * A weight matrix W is [rows, cols] with rows stored one after another, each row `cols`
 * elements in blocks of ggml_block_elems(type) (cols is a multiple of it). Every format has
 * a plain reference dequantizer (quant_dequant_row_ref), obviously right and slow, and
 * the fast paths are tested against it. */
#ifndef QUANT_H
#define QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "quant_types.h"

/* 1 if the type is supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
 * Q6_K. Every other function below requires a supported type (checked with RB_CHECK:
 * callers holding a type read from a file test quant_supported first and refuse the file
 * with a clean error). */
int quant_supported(ggml_type t);
/* Bytes of one row of `cols` elements: (cols / block elems) * block bytes; 0 for an unknown
 * type or negative cols. Requires cols to be a multiple of ggml_block_elems(t) to be
 * meaningful (the callers check that). */
size_t quant_row_bytes(ggml_type t, int64_t cols);
/* Blocks in one row of `cols` elements. Requires (RB_CHECK) a supported type and cols >= 0 a
 * multiple of ggml_block_elems(t): what every function below asks of a row. */
int64_t quant_row_blocks(ggml_type t, int64_t cols);

/* Reference: dequantize one row of `cols` elements into dst (float32).
 * Requires: cols >= 0 and a multiple of ggml_block_elems(t); row holds
 * quant_row_bytes(t, cols) bytes (no alignment needed); dst holds cols floats.
 * Guarantees: the value the format defines, computed in float32 in the order the ggml and
 * gguf-py dequantizers use (every product is exact; only the add of a min rounds). */
void quant_dequant_row_ref(ggml_type t, const void *row, float *dst, int64_t cols);
/* Fast dequantization of one row: same requirements, same results bit for bit. */
void quant_dequant_row(ggml_type t, const void *row, float *dst, int64_t cols);

/* y[r] = sum_c W[r, c] * x[c] for r in [0, rows). Reference: dequantize each row, dot in
 * double, round once to float. w holds rows * quant_row_bytes(t, cols) bytes. */
void quant_matvec_ref(ggml_type t, const void *w, int64_t rows, int64_t cols, const float *x,
                      float *y);

/* Fast matrix-vector product over a thread pool.
 * quant_pool_create(n): n threads in all, the caller's included (n - 1 workers are started
 * once and sleep between calls); n <= 0 means all online cores. Never returns NULL (dies on
 * a failed pthread_create). quant_pool_destroy joins the workers; NULL is a no-op.
 * quant_matvec: same requirements as quant_matvec_ref; p may be NULL (runs on the calling
 * thread). A pool serves one call at a time (it is not reentrant: do not call quant_matvec
 * on the same pool from two threads at once). Rows are split among the threads in chunks
 * taken from a shared counter; products under 64K weights run on the calling thread alone.
 * Workers that have not joined a call by the time the caller has taken every chunk skip
 * it, so an oversubscribed machine costs at most the single-thread time, not a wake-up.
 * After a call the workers spin for up to 50 us before sleeping (back-to-back calls of a
 * decode step then start at once), then sleep until the next call. x is finite.
 * Float weights (F32, F16, BF16) use AVX2/FMA dot products in float. Quantized weights
 * quantize x once per call (blocks of 32 with a float scale for the 32-element formats,
 * blocks of 256 with sums of 16 for the K formats, symmetric, q in [-127, 127]) and use
 * integer dot products. Guarantees: |y - y_ref| within the bound derived in
 * tests/test_quant.c (x's quantization error, amax_block / 254 per element, plus float
 * rounding). y does not depend on the number of threads (each row is computed by one thread
 * in a fixed order). */
typedef struct quant_pool quant_pool;
quant_pool *quant_pool_create(int n_threads);
void quant_pool_destroy(quant_pool *p);
int quant_pool_threads(const quant_pool *p);
void quant_matvec(quant_pool *p, ggml_type t, const void *w, int64_t rows, int64_t cols,
                  const float *x, float *y);

/* Y = X W^T for n_x vectors at once: y[b * rows + r] = sum_c W[r, c] * x[b * cols + c] for
 * b in [0, n_x), r in [0, rows); x is [n_x, cols], y is [n_x, rows] (prompt prefill: one
 * vector per prompt token). Same requirements as quant_matvec, n_x >= 1. Guarantees: y[b]
 * equals quant_matvec(p, t, w, rows, cols, x + b * cols, .) bit for bit (each element is
 * the same dot product on the same quantized x), for any pool and thread count; the weights
 * are read from memory once per call rather than once per vector (rows are taken in tiles
 * that stay in the L1 cache while every vector passes over them). The plain reference is
 * n_x calls of quant_matvec_ref. */
void quant_matmat(quant_pool *p, ggml_type t, const void *w, int64_t rows, int64_t cols,
                  const float *x, int64_t n_x, float *y);

/* Test and benchmark support: fill one row of `cols` elements (a multiple of the block
 * elems) with random blocks that are valid: fp16 scales and mins finite, magnitude in
 * [2^-10, 2^-4); F16 values in [2^-6, 2); F32 and BF16 values in [-1, 1); quants uniform.
 * Deterministic in *seed, which it advances. */
void quant_random_row(ggml_type t, void *row, int64_t cols, uint64_t *seed);

#endif
