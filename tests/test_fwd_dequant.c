/* test_fwd_dequant.c: the GPU forward's block dequantizers (kernels/cuda/fwd_dequant.h,
 * __host__ __device__ code) run on the CPU against quant_dequant_row_ref, bit for bit: every
 * format quant_supported() takes, random valid rows (quant_random_row) of several widths
 * (float formats also at widths that are not a multiple of 32, whose last chunk is short),
 * every chunk of every row read through qd_chunk_at the way the kernels read it; the
 * matrix-vector kernel's staging of row bytes (qd_stage_range, 16-byte words, shared-memory
 * size, padding after the matrix) emulated on the CPU; every half value through qd_half
 * against rb_half_to_float; and the header's format table against quant_types.c's. No GPU
 * needed. */
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

/* The matrix-vector kernel's data path, emulated: a matrix of `rows` rows in one buffer whose
 * start is 256-byte aligned with 16 bytes of padding after it (FWD_PAD); per row and per
 * round of 32 chunks, the staged stretch (qd_stage_range widened to 16-byte words) must stay
 * inside the buffer and fit QD_STAGE_BYTES, and every chunk dequantized from the staged copy
 * must equal the reference's elements bit for bit. */
static void check_staging(ggml_type t, int rows, int64_t cols, uint64_t *seed) {
    size_t rb = quant_row_bytes(t, cols), total = rb * (size_t)rows;
    uint8_t *raw = rb_malloc(total + 16 + 256);
    uint8_t *base = (uint8_t *)(((uintptr_t)raw + 255) & ~(uintptr_t)255);
    float *ref = rb_malloc(sizeof(float) * (size_t)cols);
    uint8_t stage[QD_STAGE_BYTES];
    for (int r = 0; r < rows; r++) quant_random_row(t, base + (size_t)r * rb, cols, seed);
    int64_t nch = qd_row_chunks(cols);
    for (int r = 0; r < rows; r++) {
        const uint8_t *rp = base + (size_t)r * rb;
        quant_dequant_row_ref(t, rp, ref, cols);
        for (int64_t c0 = 0; c0 < nch; c0 += 32) {
            int64_t c1 = nch < c0 + 32 ? nch : c0 + 32, b0, b1;
            qd_stage_range((int)t, (int64_t)rb, c0, c1, &b0, &b1);
            uintptr_t a0 = (uintptr_t)(rp + b0) & ~(uintptr_t)15;
            uintptr_t a1 = ((uintptr_t)(rp + b1) + 15) & ~(uintptr_t)15;
            TU_ASSERT(a0 >= (uintptr_t)base && a1 <= (uintptr_t)(base + total + 16),
                      "%s [%d x %lld] row %d round %lld: staged words leave the padded buffer",
                      ggml_type_name(t), rows, (long long)cols, r, (long long)c0);
            TU_ASSERT(a1 - a0 <= QD_STAGE_BYTES, "%s: %zu staged bytes", ggml_type_name(t),
                      (size_t)(a1 - a0));
            memcpy(stage, (const void *)a0, a1 - a0);
            for (int64_t c = c0; c < c1; c++) {
                int sub;
                int64_t off = qd_chunk_at((int)t, c, &sub);
                int n = cols - c * QD_CHUNK < QD_CHUNK ? (int)(cols - c * QD_CHUNK) : QD_CHUNK;
                int64_t need = qd_block_elems((int)t) == 1 ? (int64_t)n * qd_block_bytes((int)t)
                                                           : qd_block_bytes((int)t);
                TU_ASSERT(off >= b0 && off + need <= b1, "%s chunk %lld outside the staged range",
                          ggml_type_name(t), (long long)c);
                float y[QD_CHUNK];
                qd_chunk((int)t, stage + ((uintptr_t)(rp + off) - a0), sub, n, y);
                TU_ASSERT(memcmp(y, ref + c * QD_CHUNK, sizeof(float) * (size_t)n) == 0,
                          "%s [%d x %lld] row %d chunk %lld: staged dequant differs",
                          ggml_type_name(t), rows, (long long)cols, r, (long long)c);
            }
        }
    }
    free(raw);
    free(ref);
}

static void test_staging(void) {
    uint64_t seed = 777;
    for (int i = 0; i < N_TYPES; i++) {
        ggml_type t = types[i];
        int be = ggml_block_elems(t);
        int64_t widths[] = {be == 256 ? 256 : 32, be == 256 ? 2048 : 640, be == 256 ? 8448 : 4160,
                            33, 95, 1};
        int nw = be == 1 ? 6 : 3;
        for (int w = 0; w < nw; w++) check_staging(t, 7, widths[w], &seed);
    }
}

int main(void) {
    test_table();
    test_half();
    test_rows();
    test_staging();
    return tu_done("test_fwd_dequant");
}
