/* test_quant.c: the ggml format kernels against their references.
 *
 * Without arguments: hand-decoded blocks check the reference dequantizers against the
 * layouts; random blocks check the fast dequantizer bit for bit against the reference; the
 * threaded matrix-vector product is checked against the double-precision reference within
 * a bound derived below; unsupported types are refused.
 * With `--fixture DIR` (run by tests/e2e_quant_vs_gguf.sh): compares the reference with the
 * gguf Python package's dequantization of the blocks tools/quant_fixture.py wrote. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "rb.h"

static int n_fail;
#define EXPECT(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            n_fail++;                                                                        \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                           \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
        }                                                                                    \
    } while (0)

static const ggml_type k_types[] = {GGML_T_F32,  GGML_T_F16,  GGML_T_BF16, GGML_T_Q8_0,
                                    GGML_T_Q4_0, GGML_T_Q4_1, GGML_T_Q5_0, GGML_T_Q5_1,
                                    GGML_T_Q4_K, GGML_T_Q5_K, GGML_T_Q6_K};
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])

static uint64_t rng_state = 12345;
static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rng_unit(void) { return (double)(rng_u64() >> 11) * 0x1.0p-53; } // [0, 1)

static void put_half(uint8_t *p, float v) {
    uint16_t h = rb_float_to_half(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* ---- the references against the layouts, decoded by hand ------------------------------ */

static void test_hand_blocks(void) {
    float y[256];
    uint8_t b[256];

    // Q8_0: d = 0.5, q = -128, 3 at 0 and 31 -> -64, 1.5
    memset(b, 0, sizeof b);
    put_half(b, 0.5f);
    b[2] = 0x80, b[2 + 31] = 3;
    quant_dequant_row_ref(GGML_T_Q8_0, b, y, 32);
    EXPECT(y[0] == -64.0f && y[31] == 1.5f && y[5] == 0.0f, "q8_0 %g %g %g", y[0], y[31], y[5]);

    // Q4_0: d = 2; byte 0 = 0x21 -> element 0 is (1 - 8) * 2, element 16 is (2 - 8) * 2
    memset(b, 0x88, sizeof b);
    put_half(b, 2.0f);
    b[2] = 0x21;
    quant_dequant_row_ref(GGML_T_Q4_0, b, y, 32);
    EXPECT(y[0] == -14.0f && y[16] == -12.0f && y[1] == 0.0f && y[17] == 0.0f, "q4_0 %g %g", y[0], y[16]);

    // Q4_1: d = 0.25, m = -1; byte 15 = 0xF3 -> element 15: 3 * .25 - 1, element 31: 15 * .25 - 1
    memset(b, 0, sizeof b);
    put_half(b, 0.25f);
    put_half(b + 2, -1.0f);
    b[4 + 15] = 0xF3;
    quant_dequant_row_ref(GGML_T_Q4_1, b, y, 32);
    EXPECT(y[15] == -0.25f && y[31] == 2.75f && y[0] == -1.0f, "q4_1 %g %g %g", y[15], y[31], y[0]);

    // Q5_0: d = 1; qh bit 3 and bit 20 set; byte 3 = 0x0F -> element 3: (15|16) - 16 = 15;
    // byte 4 = 0x50 -> element 20: (5|16) - 16 = 5; element 0: 0 - 16
    memset(b, 0, sizeof b);
    put_half(b, 1.0f);
    uint32_t qh = (1u << 3) | (1u << 20);
    memcpy(b + 2, &qh, 4); // little-endian host (x86-64)
    b[6 + 3] = 0x0F, b[6 + 4] = 0x50;
    quant_dequant_row_ref(GGML_T_Q5_0, b, y, 32);
    EXPECT(y[3] == 15.0f && y[20] == 5.0f && y[0] == -16.0f && y[19] == -16.0f, "q5_0 %g %g %g", y[3], y[20], y[0]);

    // Q5_1: d = 0.5, m = 1; qh bit 31; byte 15 high nibble 1 -> element 31: 17 * .5 + 1
    memset(b, 0, sizeof b);
    put_half(b, 0.5f);
    put_half(b + 2, 1.0f);
    qh = 1u << 31;
    memcpy(b + 4, &qh, 4);
    b[8 + 15] = 0x10;
    quant_dequant_row_ref(GGML_T_Q5_1, b, y, 32);
    EXPECT(y[31] == 9.5f && y[15] == 1.0f, "q5_1 %g %g", y[31], y[15]);

    // Q4_K: d = 1, dmin = 0.5. Sub-block 1: scale byte 1 = 3, min byte 5 = 2. Sub-block 6:
    // scale = low nibble of byte 10 (5) | top bits of byte 2 (01) << 4 = 21; min = high
    // nibble of byte 10 (1) | top bits of byte 6 (10) << 4 = 33. Nibbles: byte 16 + 0 high
    // nibble 7 -> element 32 (sub-block 1, l = 0): 3 * 7 - 0.5 * 2 = 20. Byte 16 + 96 + 4
    // low nibble 9 -> element 192 + 4 (sub-block 6): 21 * 9 - 0.5 * 33 = 172.5.
    memset(b, 0, sizeof b);
    put_half(b, 1.0f);
    put_half(b + 2, 0.5f);
    b[4 + 1] = 3, b[4 + 5] = 2;
    b[4 + 10] = 0x15, b[4 + 2] = 0x40, b[4 + 6] = 0x80;
    b[16 + 0] = 0x70;
    b[16 + 96 + 4] = 0x09;
    quant_dequant_row_ref(GGML_T_Q4_K, b, y, 256);
    EXPECT(y[32] == 20.0f && y[196] == 172.5f, "q4_k %g %g", y[32], y[196]);
    EXPECT(y[0] == 0.0f && y[200] == -16.5f, "q4_k %g %g", y[0], y[200]);

    // Q5_K: as Q4_K plus qh: bit 6 of qh[4] set -> element 196 gets 16: 21 * 25 - 16.5
    memset(b, 0, sizeof b);
    put_half(b, 1.0f);
    put_half(b + 2, 0.5f);
    b[4 + 10] = 0x15, b[4 + 2] = 0x40, b[4 + 6] = 0x80;
    b[16 + 4] = 1 << 6;
    b[48 + 96 + 4] = 0x09;
    quant_dequant_row_ref(GGML_T_Q5_K, b, y, 256);
    EXPECT(y[196] == 21.0f * 25.0f - 16.5f && y[197] == -16.5f, "q5_k %g %g", y[196], y[197]);

    // Q6_K: d = 0.5 at byte 208; scale 13 (elements 208..223) = -3. Element 213 is half 1,
    // k = 2, l = 21: low 4 bits from the high nibble of ql[64 + 21], top 2 bits from bits
    // 4,5 of qh[32 + 21]. ql = 0xA0 (10), qh bits 4,5 = 2 -> q = 10 | 32 = 42; value
    // 0.5 * -3 * (42 - 32) = -15. Every other element: q = 0 -> 0.5 * sc * -32.
    memset(b, 0, sizeof b);
    put_half(b + 208, 0.5f);
    for (int j = 0; j < 16; j++) b[192 + j] = 1;
    b[192 + 13] = (uint8_t)(int8_t)-3;
    b[64 + 21] = 0xA0;
    b[128 + 32 + 21] = 2 << 4;
    quant_dequant_row_ref(GGML_T_Q6_K, b, y, 256);
    EXPECT(y[213] == -15.0f && y[212] == 48.0f && y[0] == -16.0f, "q6_k %g %g %g", y[213], y[212], y[0]);

    // F16 / BF16: 1.5 in each
    put_half(b, 1.5f);
    quant_dequant_row_ref(GGML_T_F16, b, y, 1);
    EXPECT(y[0] == 1.5f, "f16 %g", y[0]);
    b[0] = 0xC0, b[1] = 0x3F; // bf16 0x3FC0 = 1.5
    quant_dequant_row_ref(GGML_T_BF16, b, y, 1);
    EXPECT(y[0] == 1.5f, "bf16 %g", y[0]);
}

/* ---- geometry and refusal ------------------------------------------------------------ */

static void test_geometry(void) {
    // ggml's block structs (ggml-common.h): elements, bytes
    struct { ggml_type t; int be; size_t bb; } want[] = {
        {GGML_T_F32, 1, 4},      {GGML_T_F16, 1, 2},      {GGML_T_BF16, 1, 2},
        {GGML_T_Q4_0, 32, 18},   {GGML_T_Q4_1, 32, 20},   {GGML_T_Q5_0, 32, 22},
        {GGML_T_Q5_1, 32, 24},   {GGML_T_Q8_0, 32, 34},   {GGML_T_Q8_1, 32, 36},
        {GGML_T_Q2_K, 256, 84},  {GGML_T_Q3_K, 256, 110}, {GGML_T_Q4_K, 256, 144},
        {GGML_T_Q5_K, 256, 176}, {GGML_T_Q6_K, 256, 210}, {GGML_T_Q8_K, 256, 292},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        EXPECT(ggml_block_elems(want[i].t) == want[i].be, "%s", ggml_type_name(want[i].t));
        EXPECT(ggml_block_bytes(want[i].t) == want[i].bb, "%s", ggml_type_name(want[i].t));
    }
    EXPECT(strcmp(ggml_type_name(GGML_T_Q4_K), "Q4_K") == 0, "%s", ggml_type_name(GGML_T_Q4_K));
    EXPECT(quant_row_bytes(GGML_T_Q4_K, 1024) == 4 * 144, "%zu", quant_row_bytes(GGML_T_Q4_K, 1024));

    // unknown types: no geometry, not supported
    int bad[] = {-1, 4, 5, 16, 29, 31, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ggml_type t = (ggml_type)bad[i];
        EXPECT(ggml_block_elems(t) == 0 && ggml_block_bytes(t) == 0, "type %d", bad[i]);
        EXPECT(!quant_supported(t), "type %d", bad[i]);
        EXPECT(quant_row_bytes(t, 256) == 0, "type %d", bad[i]);
        EXPECT(strcmp(ggml_type_name(t), "unknown") == 0, "type %d", bad[i]);
    }
    // known to ggml but not supported here
    ggml_type unsup[] = {GGML_T_Q8_1, GGML_T_Q2_K, GGML_T_Q3_K, GGML_T_Q8_K};
    for (size_t i = 0; i < sizeof unsup / sizeof unsup[0]; i++)
        EXPECT(!quant_supported(unsup[i]), "%s", ggml_type_name(unsup[i]));
    for (int i = 0; i < N_TYPES; i++) EXPECT(quant_supported(k_types[i]), "%s", ggml_type_name(k_types[i]));
}

/* ---- fast dequantization == reference, bit for bit -------------------------------------- */

static void test_dequant_fast(void) {
    for (int i = 0; i < N_TYPES; i++) {
        ggml_type t = k_types[i];
        int be = ggml_block_elems(t);
        // several blocks, plus tails for the float types (cols not a multiple of 8)
        int64_t cols = be == 1 ? 1027 : 8 * (int64_t)be;
        size_t rb = quant_row_bytes(t, cols);
        uint8_t *buf = rb_malloc(rb + 1);
        float *a = rb_malloc((size_t)cols * sizeof *a), *f = rb_malloc((size_t)cols * sizeof *f);
        for (int rep = 0; rep < 20; rep++) {
            // every other repetition at an odd address: no alignment may be assumed
            uint8_t *row = buf + (rep & 1);
            quant_random_row(t, row, cols, &rng_state);
            quant_dequant_row_ref(t, row, a, cols);
            quant_dequant_row(t, row, f, cols);
            int64_t bad = -1;
            for (int64_t c = 0; c < cols && bad < 0; c++)
                if (memcmp(&a[c], &f[c], 4) != 0) bad = c;
            EXPECT(bad < 0, "%s rep %d element %lld: ref %.9g fast %.9g", ggml_type_name(t), rep,
                   (long long)bad, bad < 0 ? 0 : a[bad], bad < 0 ? 0 : f[bad]);
            int finite = 1;
            for (int64_t c = 0; c < cols; c++) finite &= isfinite(a[c]);
            EXPECT(finite, "%s: random blocks must be valid", ggml_type_name(t));
        }
        free(buf);
        free(a);
        free(f);
    }
}

/* ---- matrix-vector product against the reference ---------------------------------------
 *
 * Where the tolerance comes from. For quantized weights the fast product computes
 * sum_c w_c * xh_c where xh_c = q_c * d_b is x quantized in blocks b (32 or 256 long,
 * d_b = amax_b / 127, |q_c| <= 127, as quant.h states), and the integer parts are exact.
 *   (a) quantizing x: |x_c - xh_c| <= d_b / 2 = amax_b / 254, so the exact sums differ by
 *       at most A = sum_c |w_c| * amax_b(c) / 254.
 *   (b) float rounding, in both codes: each weight is d*q + off (off = the min, -8d, -16d,
 *       -32 d sc, or 0), with |d q| <= |w| + |off| =: M_c; the fast code rounds a scale
 *       product, an int -> float conversion, one FMA per block along a chain of at most
 *       cols / 32 blocks, a horizontal sum (3 adds) and the min/offset correction; the
 *       reference rounds the weight (1 rounding) and its final sum (1). So with
 *       u = FLT_EPSILON / 2 the rounding is at most (cols / 32 + 16) * u * sum_c M_c |xh_c|,
 *       |xh_c| <= |x_c| + d_b. We allow twice that (FLT_EPSILON).
 * For float weights there is no (a): four FMA chains of cols / 32 steps, 8 lanes summed,
 * a scalar tail of at most 7, so (cols / 32 + 16) * eps * sum_c |w_c x_c| holds too.
 * off_c is found by dequantizing the row with its quant bits zeroed (scales kept).
 *
 * A bound this general is loose for random x (errors of (a) mostly cancel), so a second
 * check uses x on the quantization grid: x_c = n_c * 2^-k, one k per 256 elements, integer
 * |n_c| <= 127 with |n| = 127 in every 32-block; then d_b = 2^-k exactly, xh = x, A = 0,
 * and only (b) remains: a bug that moves a scale or a nibble cannot hide in it. */

/* Byte ranges holding the quants (zeroed to find the offsets); scales stay. */
static void zero_quants(ggml_type t, uint8_t *row, int64_t cols) {
    int be = ggml_block_elems(t);
    size_t bb = ggml_block_bytes(t), q0 = 0, q1 = 0;
    switch (t) {
    case GGML_T_Q4_0: case GGML_T_Q5_0: case GGML_T_Q8_0: q0 = 2, q1 = bb; break;
    case GGML_T_Q4_1: case GGML_T_Q5_1: q0 = 4, q1 = bb; break;
    case GGML_T_Q4_K: case GGML_T_Q5_K: q0 = 16, q1 = bb; break;
    case GGML_T_Q6_K: q0 = 0, q1 = 192; break;
    default: memset(row, 0, quant_row_bytes(t, cols)); return; // floats: no offset
    }
    for (int64_t i = 0; i < cols / be; i++) memset(row + i * bb + q0, 0, q1 - q0);
}

typedef struct mv_case {
    ggml_type t;
    int64_t rows, cols;
} mv_case;

/* amax[c / 32]: the largest |x| of the block of x that element c is quantized in (32 or 256
 * long: the same for every 32 of a 256-block). */
static void x_amax(ggml_type t, const float *x, int64_t cols, double *amax) {
    int64_t xblock = ggml_block_elems(t) == 256 ? 256 : 32;
    for (int64_t c = 0; c < cols; c += 32) {
        int64_t b0 = c / xblock * xblock;
        double a = 0;
        for (int64_t k = b0; k < b0 + xblock && k < cols; k++) a = fmax(a, fabs(x[k]));
        amax[c / 32] = a;
    }
}

/* The bound above on |fast - reference| for one row and one x (grid: x on the quantization
 * grid, so no term (a)). wr, wo: cols floats of scratch; wz: a row's bytes of scratch. */
static double row_bound(ggml_type t, const uint8_t *row, int64_t cols, const float *x, const double *amax,
                        int grid, float *wr, float *wo, uint8_t *wz) {
    int quantized = ggml_block_elems(t) > 1;
    quant_dequant_row_ref(t, row, wr, cols);
    memcpy(wz, row, quant_row_bytes(t, cols));
    zero_quants(t, wz, cols);
    if (quantized) quant_dequant_row_ref(t, wz, wo, cols);
    else memset(wo, 0, (size_t)cols * sizeof *wo);
    double a_term = 0, mag = 0;
    for (int64_t c = 0; c < cols; c++) {
        double am = quantized ? amax[c / 32] : 0;
        if (quantized && !grid) a_term += fabs(wr[c]) * am / 254.0;
        mag += (fabs(wr[c]) + fabs(wo[c])) * (fabs(x[c]) + am / 127.0);
    }
    return a_term * (1 + 1e-6) + (double)(cols / 32 + 16) * FLT_EPSILON * mag;
}

/* Fills x (grid or not), runs the reference and the pools, checks each row against its
 * bound; returns the largest error / bound seen. */
static double check_matvec(const mv_case *mc, int grid, quant_pool **pools, int n_pools) {
    ggml_type t = mc->t;
    int64_t rows = mc->rows, cols = mc->cols;
    size_t rb = quant_row_bytes(t, cols);
    uint8_t *w = rb_malloc((size_t)rows * rb), *wz = rb_malloc(rb);
    float *x = rb_malloc((size_t)cols * sizeof *x);
    float *wr = rb_malloc((size_t)cols * sizeof *wr), *wo = rb_malloc((size_t)cols * sizeof *wo);
    float *yref = rb_malloc((size_t)rows * sizeof *yref);
    float *y = rb_malloc((size_t)rows * sizeof *y), *y1 = rb_malloc((size_t)rows * sizeof *y1);
    double *amax = rb_malloc((size_t)(cols / 32 + 1) * sizeof *amax);
    for (int64_t r = 0; r < rows; r++) quant_random_row(t, w + (size_t)r * rb, cols, &rng_state);
    for (int64_t c = 0; c < cols; c++) {
        if (grid) {
            int n = (int)(rng_u64() % 255) - 127;
            if (c % 32 == 0) n = (rng_u64() & 1) ? 127 : -127;
            x[c] = ldexpf((float)n, -(int)((c / 256) % 5));
        } else {
            x[c] = (float)(rng_unit() * 2 - 1) * (c % 97 == 0 ? 4.0f : 1.0f);
        }
    }
    if (!grid && cols >= 64) memset(x + 32, 0, 32 * sizeof *x); // an all-zero block: d = 0
    x_amax(t, x, cols, amax);
    quant_matvec_ref(t, w, rows, cols, x, yref);

    double worst = 0;
    for (int ip = 0; ip < n_pools; ip++) {
        quant_matvec(pools[ip], t, w, rows, cols, x, y);
        if (ip == 0) memcpy(y1, y, (size_t)rows * sizeof *y);
        else {
            EXPECT(memcmp(y, y1, (size_t)rows * sizeof *y) == 0, "%s %lldx%lld: result depends on the pool",
                   ggml_type_name(t), (long long)rows, (long long)cols);
        }
        for (int64_t r = 0; r < rows; r++) {
            double bound = row_bound(t, w + (size_t)r * rb, cols, x, amax, grid, wr, wo, wz);
            double err = fabs((double)y[r] - (double)yref[r]);
            EXPECT(err <= bound, "%s %lldx%lld grid=%d pool %d row %lld: fast %.9g ref %.9g err %.3g bound %.3g",
                   ggml_type_name(t), (long long)rows, (long long)cols, grid, ip, (long long)r, y[r], yref[r],
                   err, bound);
            if (bound > 0 && err / bound > worst) worst = err / bound;
        }
    }
    free(w), free(wz), free(x), free(wr), free(wo), free(yref), free(y), free(y1), free(amax);
    return worst;
}

static void test_matvec(void) {
    // NULL (calling thread), 1 thread, 2 threads, 3 threads (more threads than cores here)
    quant_pool *pools[4] = {NULL, quant_pool_create(1), quant_pool_create(2), quant_pool_create(3)};
    EXPECT(quant_pool_threads(pools[1]) == 1 && quant_pool_threads(pools[2]) == 2, "threads");
    for (int i = 0; i < N_TYPES; i++) {
        ggml_type t = k_types[i];
        int be = ggml_block_elems(t);
        // odd row counts; small (one thread does it) and large enough to go parallel
        mv_case cases[] = {
            {t, 1, be == 1 ? 13 : be},
            {t, 7, be == 256 ? 512 : 96},
            {t, 301, be == 256 ? 768 : (be == 1 ? 643 : 640)},
        };
        double worst[2] = {0, 0};
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
            for (int grid = 0; grid < 2; grid++) {
                double wv = check_matvec(&cases[k], grid, pools, 4);
                if (wv > worst[grid]) worst[grid] = wv;
            }
        printf("# matvec %-5s worst err/bound: random x %.3f, grid x %.3f\n", ggml_type_name(t), worst[0], worst[1]);
    }
    for (int i = 1; i < 4; i++) quant_pool_destroy(pools[i]);
    quant_pool_destroy(NULL);
}

/* quant_matmat: every output row y[b] equal bit for bit to quant_matvec of x[b] (its
 * guarantee: the batched kernels share only the weight-side decoding), for n_x in
 * {1, 3, 16, 64} (below, at and above the 16 vectors a batched kernel takes at a time), odd
 * row counts, on the calling thread, 1 and 2 threads; and every y[b] within the bound of
 * test_matvec of the reference (quant_matvec_ref of x[b]). The x are random, a few of them
 * with an all-zero block and one with a spike. */
static void test_matmat(void) {
    quant_pool *pools[3] = {NULL, quant_pool_create(1), quant_pool_create(2)};
    const int64_t n_xs[] = {1, 3, 16, 64}, max_x = 64;
    for (int i = 0; i < N_TYPES; i++) {
        ggml_type t = k_types[i];
        int be = ggml_block_elems(t);
        mv_case cases[] = {
            {t, 1, be == 1 ? 13 : be},
            {t, 7, be == 256 ? 512 : 96},
            {t, 301, be == 256 ? 768 : (be == 1 ? 643 : 640)},
        };
        double worst = 0;
        int mismatches = 0;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            int64_t rows = cases[k].rows, cols = cases[k].cols;
            size_t rb = quant_row_bytes(t, cols);
            uint8_t *w = rb_malloc((size_t)rows * rb), *wz = rb_malloc(rb);
            float *x = rb_malloc((size_t)(max_x * cols) * sizeof *x);          // [max_x, cols]
            float *yv = rb_malloc((size_t)(max_x * rows) * sizeof *yv);        // [max_x, rows] matvec
            float *yref = rb_malloc((size_t)(max_x * rows) * sizeof *yref);
            float *y = rb_malloc((size_t)(max_x * rows) * sizeof *y);
            float *wr = rb_malloc((size_t)cols * sizeof *wr), *wo = rb_malloc((size_t)cols * sizeof *wo);
            double *amax = rb_malloc((size_t)(max_x * (cols / 32 + 1)) * sizeof *amax);
            for (int64_t r = 0; r < rows; r++) quant_random_row(t, w + (size_t)r * rb, cols, &rng_state);
            for (int64_t b = 0; b < max_x; b++) {
                float *xb = x + b * cols;
                for (int64_t c = 0; c < cols; c++) xb[c] = (float)(rng_unit() * 2 - 1);
                if (b % 5 == 1 && cols >= 64) memset(xb + 32, 0, 32 * sizeof *xb);
                if (b == 2) xb[cols / 2] = 50.0f;
                x_amax(t, xb, cols, amax + b * (cols / 32 + 1));
                quant_matvec(NULL, t, w, rows, cols, xb, yv + b * rows);
                quant_matvec_ref(t, w, rows, cols, xb, yref + b * rows);
            }
            for (size_t ni = 0; ni < sizeof n_xs / sizeof n_xs[0]; ni++)
                for (int ip = 0; ip < 3; ip++) {
                    memset(y, 0xff, (size_t)(max_x * rows) * sizeof *y);
                    quant_matmat(pools[ip], t, w, rows, cols, x, n_xs[ni], y);
                    if (memcmp(y, yv, (size_t)(n_xs[ni] * rows) * sizeof *y) != 0) {
                        mismatches++;
                        EXPECT(0, "%s %lldx%lld n_x %lld pool %d: matmat differs from matvec", ggml_type_name(t),
                               (long long)rows, (long long)cols, (long long)n_xs[ni], ip);
                    }
                }
            // y of n_x = 64 equals yv (checked above): yv against the reference
            for (int64_t r = 0; r < rows; r++)
                for (int64_t b = 0; b < max_x; b++) {
                    double bound = row_bound(t, w + (size_t)r * rb, cols, x + b * cols, amax + b * (cols / 32 + 1),
                                             0, wr, wo, wz);
                    double err = fabs((double)yv[b * rows + r] - (double)yref[b * rows + r]);
                    EXPECT(err <= bound, "%s %lldx%lld x %lld row %lld: err %.3g bound %.3g", ggml_type_name(t),
                           (long long)rows, (long long)cols, (long long)b, (long long)r, err, bound);
                    if (bound > 0 && err / bound > worst) worst = err / bound;
                }
            free(w), free(wz), free(x), free(yv), free(yref), free(y), free(wr), free(wo), free(amax);
        }
        printf("# matmat %-5s %s, worst err/bound against the reference %.3f\n", ggml_type_name(t),
               mismatches ? "DIFFERS from matvec" : "equal to matvec bit for bit", worst);
    }
    for (int i = 1; i < 3; i++) quant_pool_destroy(pools[i]);
}

/* The pool is reused across many back-to-back calls of different shapes (as in decode),
 * and pools come and go: every result must match the single-thread one. With more threads
 * than cores some workers wake after the caller has done all the work and closed the call:
 * they must skip it, not run a stale job. */
static void test_pool_reuse(int n_threads) {
    quant_pool *p = quant_pool_create(n_threads);
    int64_t rows = 257, cols = 512;
    ggml_type ts[] = {GGML_T_Q4_K, GGML_T_Q8_0, GGML_T_F16, GGML_T_Q6_K, GGML_T_Q5_0};
    uint8_t *w[5];
    float *x = rb_malloc((size_t)cols * sizeof *x), *y = rb_malloc((size_t)rows * sizeof *y);
    float *want[5];
    for (int64_t c = 0; c < cols; c++) x[c] = (float)(rng_unit() - 0.5);
    for (int i = 0; i < 5; i++) {
        size_t rb = quant_row_bytes(ts[i], cols);
        w[i] = rb_malloc((size_t)rows * rb);
        for (int64_t r = 0; r < rows; r++) quant_random_row(ts[i], w[i] + (size_t)r * rb, cols, &rng_state);
        want[i] = rb_malloc((size_t)rows * sizeof *want[i]);
        quant_matvec(NULL, ts[i], w[i], rows, cols, x, want[i]);
    }
    int mismatches = 0;
    for (int it = 0; it < 300; it++) {
        int i = it % 5;
        int64_t r = it % 3 == 0 ? rows : 129 + it % 7; // varying row counts
        quant_matvec(p, ts[i], w[i], r, cols, x, y);
        if (memcmp(y, want[i], (size_t)r * sizeof *y) != 0) mismatches++;
    }
    EXPECT(mismatches == 0, "%d of 300 calls on %d threads differ from the single-thread result", mismatches,
           n_threads);
    quant_pool_destroy(p);
    for (int k = 0; k < 10; k++) quant_pool_destroy(quant_pool_create(2 + k % 3));
    for (int i = 0; i < 5; i++) free(w[i]), free(want[i]);
    free(x), free(y);
}

/* ---- against the gguf Python package (fixture written by tools/quant_fixture.py) ------- */

static uint8_t *read_file(const char *dir, const char *name, size_t *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0) {
        fclose(f);
        return NULL;
    }
    uint8_t *buf = rb_malloc((size_t)len);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static int run_fixture(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *m = fopen(path, "r");
    if (!m) {
        printf("FAIL: cannot open %s\n", path);
        return 1;
    }
    char name[200];
    int type;
    long long cols, rows;
    int n_entries = 0, n_models = 0;
    while (fscanf(m, "%199s %d %lld %lld", name, &type, &cols, &rows) == 4) {
        ggml_type t = (ggml_type)type;
        n_entries++;
        if (strncmp(name, "model_", 6) == 0) n_models++;
        if (!quant_supported(t) || cols <= 0 || rows <= 0 || cols % ggml_block_elems(t) != 0) {
            EXPECT(0, "%s: bad manifest entry (type %d, %lld x %lld)", name, type, rows, cols);
            continue;
        }
        char qn[256], fn[256];
        snprintf(qn, sizeof qn, "%s.q", name);
        snprintf(fn, sizeof fn, "%s.f32", name);
        size_t nq = 0, nf = 0;
        uint8_t *q = read_file(dir, qn, &nq), *f = read_file(dir, fn, &nf);
        size_t rb = quant_row_bytes(t, cols);
        if (!q || !f || nq != (size_t)rows * rb || nf != (size_t)(rows * cols) * 4) {
            EXPECT(0, "%s: fixture files missing or of the wrong size (%zu, %zu)", name, nq, nf);
            free(q), free(f);
            continue;
        }
        float *want = (float *)(void *)f, *got = rb_malloc((size_t)cols * sizeof *got);
        long long n_diff = 0, first = -1;
        for (long long r = 0; r < rows; r++) {
            quant_dequant_row_ref(t, q + (size_t)r * rb, got, cols);
            for (long long c = 0; c < cols; c++) {
                float wv;
                memcpy(&wv, f + 4 * (size_t)(r * cols + c), 4);
                // equal as numbers (numpy and C may differ only in the sign of a zero)
                if (!(got[c] == wv)) {
                    if (first < 0) first = r * cols + c;
                    n_diff++;
                }
            }
            // the fast dequantizer agrees too, on real and random blocks alike
            float *fast = rb_malloc((size_t)cols * sizeof *fast);
            quant_dequant_row(t, q + (size_t)r * rb, fast, cols);
            quant_dequant_row_ref(t, q + (size_t)r * rb, got, cols);
            EXPECT(memcmp(fast, got, (size_t)cols * 4) == 0, "%s row %lld: fast != reference", name, r);
            free(fast);
        }
        EXPECT(n_diff == 0, "%s (%s): %lld of %lld values differ from gguf's, first at %lld", name,
               ggml_type_name(t), n_diff, rows * cols, first);
        // the comparison is live: changing one quant byte of a quantized row must show
        // (a zero scale hides a byte, so walk back from the row's last byte to one that shows)
        if (n_diff == 0) {
            long long changed = 0;
            for (size_t off = rb; off-- > 0 && changed == 0;) {
                q[off] ^= 0x11;
                quant_dequant_row_ref(t, q, got, cols);
                for (long long c = 0; c < cols; c++) changed += !(got[c] == want[c]);
                q[off] ^= 0x11;
            }
            EXPECT(changed > 0, "%s: flipping bits of the first row changed nothing", name);
        }
        printf("# gguf %-18s %-5s %5lld x %-5lld %s\n", name, ggml_type_name(t), rows, cols,
               n_diff == 0 ? "identical" : "DIFFERENT");
        free(got), free(q), free(f);
    }
    fclose(m);
    EXPECT(n_entries >= N_TYPES, "manifest has %d entries, want one per type at least", n_entries);

    // block geometry against the package's GGML_QUANT_SIZES
    snprintf(path, sizeof path, "%s/sizes.txt", dir);
    FILE *s = fopen(path, "r");
    EXPECT(s != NULL, "cannot open %s", path);
    int n_sizes = 0;
    long long be, bb;
    while (s && fscanf(s, "%d %lld %lld", &type, &be, &bb) == 3) {
        ggml_type t = (ggml_type)type;
        if (ggml_block_elems(t) == 0) continue; // a type gguf.h does not know
        // Q8_1: gguf-py lists 40 bytes (the old float d, s layout); ggml's block_q8_1 is
        // 36 (half d, s). It is an activation format and never a stored tensor.
        if (t == GGML_T_Q8_1) continue;
        n_sizes++;
        EXPECT(ggml_block_elems(t) == be && ggml_block_bytes(t) == (size_t)bb, "%s: %d/%zu, gguf says %lld/%lld",
               ggml_type_name(t), ggml_block_elems(t), ggml_block_bytes(t), be, bb);
    }
    if (s) fclose(s);
    EXPECT(n_sizes >= 14, "only %d block sizes compared", n_sizes);
    printf("# %d fixture tensors (%d from the model file), %d block sizes compared\n", n_entries, n_models, n_sizes);
    return n_fail ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--fixture") == 0) return run_fixture(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: test_quant [--fixture DIR]\n");
        return 2;
    }
    test_geometry();
    test_hand_blocks();
    test_dequant_fast();
    test_matvec();
    test_matmat();
    test_pool_reuse(2);
    test_pool_reuse(8);
    if (n_fail) {
        printf("%d checks failed\n", n_fail);
        return 1;
    }
    printf("all quant checks passed\n");
    return 0;
}
