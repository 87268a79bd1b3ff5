/* quant_ref.c: plain reference dequantizers, one per ggml format, written straight from
 * the block layouts; the reference matrix-vector product; random valid blocks for tests
 * and benchmarks. Nothing here is fast on purpose: the fast paths in quant.c are checked
 * against these, and these are checked against the gguf Python package. */
#include <math.h>
#include <string.h>

#include "quant.h"
#include "rb.h"

int quant_supported(ggml_type t) {
    switch (t) {
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16:
    case GGML_T_Q8_0: case GGML_T_Q4_0: case GGML_T_Q4_1: case GGML_T_Q5_0: case GGML_T_Q5_1:
    case GGML_T_Q4_K: case GGML_T_Q5_K: case GGML_T_Q6_K:
        return 1;
    default:
        return 0;
    }
}

size_t quant_row_bytes(ggml_type t, int64_t cols) {
    int be = ggml_block_elems(t);
    if (be <= 0 || cols < 0) return 0;
    return (size_t)(cols / be) * ggml_block_bytes(t);
}

int64_t quant_row_blocks(ggml_type t, int64_t cols) {
    RB_CHECK(quant_supported(t));
    int be = ggml_block_elems(t);
    RB_CHECK(cols >= 0 && cols % be == 0);
    return cols / be;
}

static float f16_at(const uint8_t *p) {
    return rb_half_to_float((uint16_t)(p[0] | (p[1] << 8)));
}

/* Q4_0, 18 bytes: d, then 16 bytes; byte i holds element i (low nibble) and element
 * 16 + i (high nibble); value (q - 8) * d. */
static void dequant_q4_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    const uint8_t *qs = b + 2;
    for (int i = 0; i < 16; i++) {
        y[i] = d * (float)((qs[i] & 0x0F) - 8);
        y[i + 16] = d * (float)((qs[i] >> 4) - 8);
    }
}

/* Q4_1, 20 bytes: d, m, nibbles as Q4_0; value q * d + m. */
static void dequant_q4_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    const uint8_t *qs = b + 4;
    for (int i = 0; i < 16; i++) {
        y[i] = d * (float)(qs[i] & 0x0F) + m;
        y[i + 16] = d * (float)(qs[i] >> 4) + m;
    }
}

/* Bit j of the 32-bit little-endian word qh is the fifth bit of element j. */
static uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Q5_0, 22 bytes: d, qh (4 bytes), nibbles as Q4_0; value (q - 16) * d. */
static void dequant_q5_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    uint32_t qh = u32_at(b + 2);
    const uint8_t *qs = b + 6;
    for (int i = 0; i < 16; i++) {
        int lo = (qs[i] & 0x0F) | (int)(((qh >> i) & 1) << 4);
        int hi = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
        y[i] = d * (float)(lo - 16);
        y[i + 16] = d * (float)(hi - 16);
    }
}

/* Q5_1, 24 bytes: d, m, qh, nibbles; value q * d + m. */
static void dequant_q5_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = u32_at(b + 4);
    const uint8_t *qs = b + 8;
    for (int i = 0; i < 16; i++) {
        int lo = (qs[i] & 0x0F) | (int)(((qh >> i) & 1) << 4);
        int hi = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
        y[i] = d * (float)lo + m;
        y[i + 16] = d * (float)hi + m;
    }
}

/* Q8_0, 34 bytes: d, 32 int8; value q * d. */
static void dequant_q8_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    for (int i = 0; i < 32; i++) y[i] = (float)(int8_t)b[2 + i] * d;
}

/* The 12 scale bytes of Q4_K and Q5_K hold eight 6-bit scales and eight 6-bit mins.
 * Sub-blocks 0..3: scale = low 6 bits of byte j, min = low 6 bits of byte j + 4.
 * Sub-blocks 4..7: low 4 bits from byte j + 4 (scale: low nibble, min: high nibble), the
 * top 2 bits from the top 2 bits of byte j - 4 (scale) and byte j (min). */
static void k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K, 144 bytes: d, dmin, 12 scale bytes, 128 bytes of nibbles (qs at b + 16). Eight
 * sub-blocks of 32; 32 bytes serve two sub-blocks: sub-block 2c takes the low nibbles of
 * bytes 32c..32c+31, sub-block 2c + 1 the high nibbles. Value (d * sc) * q - (dmin * m).
 * Q5_K, 176 bytes: the same with 32 bytes qh at b + 16 before the nibbles (qs at b + 48);
 * bit j of qh[l] is the fifth bit of element l of sub-block j. qh is NULL for Q4_K. */
static void dequant_q45_k(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *scales = b + 4;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        k_scale_min(scales, j, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        const uint8_t *q = qs + 32 * (j / 2);
        int shift = 4 * (j % 2);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> shift) & 0x0F) | (qh ? ((qh[l] >> j) & 1) << 4 : 0);
            y[32 * j + l] = d1 * (float)v - m1;
        }
    }
}

/* Q6_K, 210 bytes: ql (128), qh (64), 16 int8 scales, d. Two halves of 128 elements; in
 * half h, element 32k + l (k = 0..3, l = 0..31) takes its low 4 bits from
 * ql[64h + 32(k % 2) + l] (low nibble for k < 2, high for k >= 2) and its top 2 bits from
 * bits 2k, 2k+1 of qh[32h + l]. Element e uses scale e / 16. Value (d * sc) * (q - 32). */
static void dequant_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int h = 0; h < 2; h++) {
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                int e = 128 * h + 32 * k + l;
                int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
                int hi = (qh[32 * h + l] >> (2 * k)) & 3;
                int q = (lo | (hi << 4)) - 32;
                y[e] = (d * (float)scales[e / 16]) * (float)q;
            }
        }
    }
}

void quant_dequant_row_ref(ggml_type t, const void *row, float *dst, int64_t cols) {
    int64_t nb = quant_row_blocks(t, cols);
    int be = ggml_block_elems(t);
    const uint8_t *b = row;
    size_t bb = ggml_block_bytes(t);
    for (int64_t i = 0; i < nb; i++, b += bb) {
        float *y = dst + i * be;
        switch (t) {
        case GGML_T_F32: memcpy(y, b, 4); break;
        case GGML_T_F16: *y = f16_at(b); break;
        case GGML_T_BF16: *y = rb_bf16_to_float((uint16_t)(b[0] | (b[1] << 8))); break;
        case GGML_T_Q4_0: dequant_q4_0(b, y); break;
        case GGML_T_Q4_1: dequant_q4_1(b, y); break;
        case GGML_T_Q5_0: dequant_q5_0(b, y); break;
        case GGML_T_Q5_1: dequant_q5_1(b, y); break;
        case GGML_T_Q8_0: dequant_q8_0(b, y); break;
        case GGML_T_Q4_K: dequant_q45_k(b, NULL, b + 16, y); break;
        case GGML_T_Q5_K: dequant_q45_k(b, b + 16, b + 48, y); break;
        case GGML_T_Q6_K: dequant_q6_k(b, y); break;
        default: RB_CHECK(!"unreachable");
        }
    }
}

void quant_matvec_ref(ggml_type t, const void *w, int64_t rows, int64_t cols, const float *x,
                      float *y) {
    RB_CHECK(rows >= 0);
    float *wr = rb_malloc((size_t)cols * sizeof *wr); // [cols]
    size_t rb = quant_row_bytes(t, cols);
    for (int64_t r = 0; r < rows; r++) {
        quant_dequant_row_ref(t, (const uint8_t *)w + (size_t)r * rb, wr, cols);
        double acc = 0;
        for (int64_t c = 0; c < cols; c++) acc += (double)wr[c] * (double)x[c];
        y[r] = (float)acc;
    }
    free(wr);
}

/* splitmix64: a small, good generator so tests and benchmarks are reproducible. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A finite half with magnitude in [2^lo, 2^hi) and a random sign (sign only if `neg`). */
static uint16_t random_half(uint64_t *s, int lo, int hi, int neg) {
    uint64_t r = rng_next(s);
    int e = lo + (int)(r % (uint64_t)(hi - lo)); // unbiased exponent
    uint16_t mant = (uint16_t)((r >> 16) & 0x3FF);
    uint16_t h = (uint16_t)(((e + 15) << 10) | mant);
    if (neg && ((r >> 40) & 1)) h |= 0x8000;
    return h;
}

static void put_half(uint8_t *p, uint16_t h) {
    p[0] = (uint8_t)(h & 0xFF);
    p[1] = (uint8_t)(h >> 8);
}

void quant_random_row(ggml_type t, void *row, int64_t cols, uint64_t *seed) {
    int64_t nb = quant_row_blocks(t, cols);
    size_t bb = ggml_block_bytes(t);
    uint8_t *b = row;
    for (int64_t i = 0; i < nb; i++, b += bb) {
        for (size_t k = 0; k < bb; k++) b[k] = (uint8_t)rng_next(seed);
        switch (t) {
        case GGML_T_F32: {
            float v = (float)((double)(rng_next(seed) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
            memcpy(b, &v, 4);
            break;
        }
        case GGML_T_F16: put_half(b, random_half(seed, -6, 1, 1)); break;
        case GGML_T_BF16: {
            float v = (float)((double)(rng_next(seed) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
            uint32_t u;
            memcpy(&u, &v, 4);
            put_half(b, (uint16_t)(u >> 16));
            break;
        }
        case GGML_T_Q4_0: case GGML_T_Q5_0: case GGML_T_Q8_0:
            put_half(b, random_half(seed, -10, -4, 1));
            break;
        case GGML_T_Q4_1: case GGML_T_Q5_1: case GGML_T_Q4_K: case GGML_T_Q5_K:
            put_half(b, random_half(seed, -10, -4, 1));
            put_half(b + 2, random_half(seed, -10, -4, 1));
            break;
        case GGML_T_Q6_K: put_half(b + 208, random_half(seed, -10, -4, 1)); break;
        default: RB_CHECK(!"unreachable");
        }
    }
}
