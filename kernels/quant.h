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

#include "gguf.h"

/* 1 if the type is supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
 * Q6_K. */
int quant_supported(ggml_type t);
/* Bytes of one row of `cols` elements. */
size_t quant_row_bytes(ggml_type t, int64_t cols);

/* Reference: dequantize one row of `cols` elements into dst (float32). */
void quant_dequant_row_ref(ggml_type t, const void *row, float *dst, int64_t cols);
/* Fast dequantization of one row (same results as the reference, bit for bit). */
void quant_dequant_row(ggml_type t, const void *row, float *dst, int64_t cols);

/* y[r] = sum_c W[r, c] * x[c] for r in [0, rows). Reference: dequantize each row, dot in
 * double. */
void quant_matvec_ref(ggml_type t, const void *w, int64_t rows, int64_t cols, const float *x,
                      float *y);

/* Fast matrix-vector product over a thread pool; n_threads <= 0 means all cores.
 * Float weights use OpenBLAS or SIMD; quantized weights quantize x once (Q8 style, as
 * llama.cpp does) and use integer dot products. Tolerance against the reference is stated
 * in tests/test_quant.c. */
typedef struct quant_pool quant_pool;
quant_pool *quant_pool_create(int n_threads);
void quant_pool_destroy(quant_pool *p);
int quant_pool_threads(const quant_pool *p);
void quant_matvec(quant_pool *p, ggml_type t, const void *w, int64_t rows, int64_t cols,
                  const float *x, float *y);

#endif
