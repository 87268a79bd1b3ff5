/* test_fwd_dequant.c: the GPU forward's block dequantizers (kernels/cuda/fwd_dequant.h,
 * __host__ __device__ code) run on the CPU against quant_dequant_row_ref, bit for bit: every
 * format quant_supported() takes, random valid rows (quant_random_row) of several widths
 * (float formats also at widths that are not a multiple of 32, whose last chunk is short),
 * every chunk of every row read through qd_chunk_at the way the kernels read it; every half
 * value through qd_half against rb_half_to_float; and the header's format table against
 * quant_types.c's. No GPU needed. */
#include "testutil.h"

#include <string.h>

#include "cuda/fwd_dequant.h"
#include "quant.h"

static const ggml_type types[] = {
    GGML_T_F32, GGML_T_F16, GGML_T_BF16, GGML_T_Q4_0, GGML_T_Q4_1, GGML_T_Q5_0,
    GGML_T_Q5_1, GGML_T_Q8_0, GGML_T_Q4_K, GGML_T_Q5_K, GGML_T_Q6_K,
};
#define N_TYPES (int)(sizeof types / sizeof types[0])

static void test_table(void) {
    for (int t = 0; t <= 40; t++) {
        TU_ASSERT(qd_supported(t) == quant_supported((ggml_type)t), "type %d supported", t);
        if (!qd_supported(t)) continue;
        TU_ASSERT(qd_block_elems(t) == ggml_block_elems((ggml_type)t), "type %d block elems", t);
        TU_ASSERT((size_t)qd_block_bytes(t) == ggml_block_bytes((ggml_type)t), "type %d bytes", t);
    }
    int n = 0;
    for (int i = 0; i < N_TYPES; i++) n += qd_supported((int)types[i]);
    TU_ASSERT(n == N_TYPES, "every type of the list is supported (%d of %d)", n, N_TYPES);
}

static void test_half(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float a = qd_half((uint16_t)h), b = rb_half_to_float((uint16_t)h);
        TU_ASSERT(memcmp(&a, &b, 4) == 0, "half 0x%04x: %a vs %a", h, a, b);
    }
}

/* One row of cols elements: each chunk against the reference's elements, bit for bit. */
static void check_row(ggml_type t, int64_t cols, uint64_t *seed) {
    size_t rb = quant_row_bytes(t, cols);
    uint8_t *row = rb_malloc(rb + 1);
    float *ref = rb_malloc(sizeof(float) * (size_t)(cols + 1));
    quant_random_row(t, row, cols, seed);
    quant_dequant_row_ref(t, row, ref, cols);
    int64_t nc = qd_row_chunks(cols);
    for (int64_t c = 0; c < nc; c++) {
        float y[QD_CHUNK];
        int sub;
        int64_t off = qd_chunk_at((int)t, c, &sub);
        int n = cols - c * QD_CHUNK < QD_CHUNK ? (int)(cols - c * QD_CHUNK) : QD_CHUNK;
        TU_ASSERT(off >= 0 && (size_t)off < rb, "%s chunk %lld: offset %lld outside the row",
                  ggml_type_name(t), (long long)c, (long long)off);
        qd_chunk((int)t, row + off, sub, n, y);
        TU_ASSERT(memcmp(y, ref + c * QD_CHUNK, sizeof(float) * (size_t)n) == 0,
                  "%s cols %lld chunk %lld differs from quant_dequant_row_ref", ggml_type_name(t),
                  (long long)cols, (long long)c);
    }
    free(row);
    free(ref);
}

static void test_rows(void) {
    uint64_t seed = 12345;
    for (int i = 0; i < N_TYPES; i++) {
        ggml_type t = types[i];
        int be = ggml_block_elems(t);
        int64_t widths[] = {256, 512, 640 - 640 % (be > 32 ? 256 : 32), 2048, 1, 33, 95};
        int nw = be == 1 ? 7 : 4; /* odd widths only where the format allows them */
        for (int w = 0; w < nw; w++)
            for (int rep = 0; rep < 20; rep++) check_row(t, widths[w], &seed);
    }
}

int main(void) {
    test_table();
    test_half();
    test_rows();
    return tu_done("test_fwd_dequant");
}
