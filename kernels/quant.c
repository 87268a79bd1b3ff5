/* quant.c: fast dequantization and matrix-vector products for the ggml formats (AVX2,
 * F16C, FMA), and the persistent thread pool that spreads rows over cores. The plain
 * references are in quant_ref.c; tests/test_quant.c holds these to them. */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "quant.h"
#include "rb.h"
#include "simd.h"

/* ---- small helpers ---------------------------------------------------------------- */

/* Blocks sit at any byte offset (34-byte Q8_0 blocks, say): scalars are read through
 * memcpy, vectors with unaligned loads. F16C's conversion is exact, as is the reference. */
static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline uint32_t u32_at(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles first (elements 0..15), then the
 * high nibbles (elements 16..31), the layout of the 32-element formats. */
static inline __m256i nibbles_split16(const uint8_t *p) {
    // the 16 bytes in both lanes (a broadcast load), the high lane shifted: no lane-crossing
    // shuffle, which would compete with the byte shuffles for one execution port
    __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    __m256i v = _mm256_blend_epi32(b, _mm256_srli_epi16(b, 4), 0xF0);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* The 32 bits of qh -> 32 bytes, byte j = 0x10 if bit j is set, else 0: the fifth bit of
 * element j in Q5_0 / Q5_1. */
static inline __m256i qh_bits_to_bytes(uint32_t qh) {
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                             0x0101010101010101LL, 0x0000000000000000LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Eight of 32 bytes (signed), number i = 0..3, as floats. */
static inline __m256 bytes8_to_ps(__m256i q, int i) {
    __m128i h = i < 2 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(i % 2 ? _mm_srli_si128(h, 8) : h));
}

/* y[0..31] = d * q, or d * q + m, or d * q - m. Multiply and add are separate instructions,
 * as in the reference: -std=c11 keeps GCC from contracting them into an FMA, and every
 * product here is exact anyway, so only the add rounds, in both. (Four stores written out:
 * with an array and a loop GCC keeps the vectors on the stack.) */
#define STORE4(y, q, EXPR)                                                                     \
    do {                                                                                      \
        __m256 f_;                                                                            \
        f_ = bytes8_to_ps(q, 0), _mm256_storeu_ps((y), EXPR);                                 \
        f_ = bytes8_to_ps(q, 1), _mm256_storeu_ps((y) + 8, EXPR);                             \
        f_ = bytes8_to_ps(q, 2), _mm256_storeu_ps((y) + 16, EXPR);                            \
        f_ = bytes8_to_ps(q, 3), _mm256_storeu_ps((y) + 24, EXPR);                            \
    } while (0)

static inline void store_dq(float *y, __m256i q, float d) {
    __m256 dv = _mm256_set1_ps(d);
    STORE4(y, q, _mm256_mul_ps(f_, dv));
}

static inline void store_dq_add(float *y, __m256i q, float d, float m) {
    __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    STORE4(y, q, _mm256_add_ps(_mm256_mul_ps(dv, f_), mv));
}

static inline void store_dq_sub(float *y, __m256i q, float d, float m) {
    __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    STORE4(y, q, _mm256_sub_ps(_mm256_mul_ps(dv, f_), mv));
}

/* Eight 6-bit scales and mins of Q4_K / Q5_K (layout in quant_ref.c). */
static inline void k_scales_mins(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0x0F) | ((s[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

/* ---- fast dequantization ------------------------------------------------------------ */

void quant_dequant_row(ggml_type t, const void *row, float *y, int64_t cols) {
    int64_t nb = quant_row_blocks(t, cols);
    const uint8_t *b = row;
    size_t bb = ggml_block_bytes(t);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    switch (t) {
    case GGML_T_F32:
        memcpy(y, b, (size_t)cols * 4);
        return;
    case GGML_T_F16: {
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8)
            _mm256_storeu_ps(y + c, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 2 * c))));
        for (; c < cols; c++) y[c] = f16_at(b + 2 * c);
        return;
    }
    case GGML_T_BF16: {
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b + 2 * c)));
            _mm256_storeu_ps(y + c, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
        for (; c < cols; c++) y[c] = rb_bf16_to_float((uint16_t)(b[2 * c] | (b[2 * c + 1] << 8)));
        return;
    }
    case GGML_T_Q8_0:
        for (int64_t i = 0; i < nb; i++, b += bb) store_dq(y + 32 * i, load256(b + 2), f16_at(b));
        return;
    case GGML_T_Q4_0:
        for (int64_t i = 0; i < nb; i++, b += bb) {
            __m256i q = _mm256_sub_epi8(nibbles_split16(b + 2), _mm256_set1_epi8(8));
            store_dq(y + 32 * i, q, f16_at(b));
        }
        return;
    case GGML_T_Q4_1:
        for (int64_t i = 0; i < nb; i++, b += bb)
            store_dq_add(y + 32 * i, nibbles_split16(b + 4), f16_at(b), f16_at(b + 2));
        return;
    case GGML_T_Q5_0:
        for (int64_t i = 0; i < nb; i++, b += bb) {
            __m256i q = _mm256_or_si256(nibbles_split16(b + 6), qh_bits_to_bytes(u32_at(b + 2)));
            store_dq(y + 32 * i, _mm256_sub_epi8(q, _mm256_set1_epi8(16)), f16_at(b));
        }
        return;
    case GGML_T_Q5_1:
        for (int64_t i = 0; i < nb; i++, b += bb) {
            __m256i q = _mm256_or_si256(nibbles_split16(b + 8), qh_bits_to_bytes(u32_at(b + 4)));
            store_dq_add(y + 32 * i, q, f16_at(b), f16_at(b + 2));
        }
        return;
    case GGML_T_Q4_K:
    case GGML_T_Q5_K:
        for (int64_t i = 0; i < nb; i++, b += bb) {
            float d = f16_at(b), dmin = f16_at(b + 2);
            uint8_t sc[8], m[8];
            k_scales_mins(b + 4, sc, m);
            const uint8_t *qs = b + (t == GGML_T_Q4_K ? 16 : 48);
            __m256i qh = t == GGML_T_Q5_K ? load256(b + 16) : _mm256_setzero_si256();
            for (int j = 0; j < 8; j++) {
                __m256i v = load256(qs + 32 * (j / 2));
                __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
                if (t == GGML_T_Q5_K) {
                    __m256i bit = _mm256_set1_epi8((char)(1 << j));
                    __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
                    q = _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
                }
                store_dq_sub(y + 256 * i + 32 * j, q, d * (float)sc[j], dmin * (float)m[j]);
            }
        }
        return;
    case GGML_T_Q6_K:
        for (int64_t i = 0; i < nb; i++, b += bb) {
            const uint8_t *ql = b, *qhp = b + 128;
            const int8_t *sc = (const int8_t *)(b + 192);
            float d = f16_at(b + 208);
            const __m256i m30 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi8(32);
            for (int h = 0; h < 2; h++) {
                __m256i l0 = load256(ql + 64 * h), l1 = load256(ql + 64 * h + 32);
                __m256i qh = load256(qhp + 32 * h);
                __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                    _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
                };
                for (int k = 0; k < 4; k++) {
                    __m256i qk = _mm256_sub_epi8(q[k], k32);
                    float *yk = y + 256 * i + 128 * h + 32 * k;
                    for (int s = 0; s < 4; s++) {
                        // eight elements share one scale: scale index (128h + 32k + 8s) / 16
                        __m256 dv = _mm256_set1_ps(d * (float)sc[8 * h + 2 * k + s / 2]);
                        _mm256_storeu_ps(yk + 8 * s, _mm256_mul_ps(dv, bytes8_to_ps(qk, s)));
                    }
                }
            }
        }
        return;
    default:
        RB_CHECK(!"unreachable");
    }
}

/* ---- x quantized once per call ---------------------------------------------------- */

/* x in quantized form: xq[c] * d[block of c] approximates x[c]. For the 32-element formats
 * the blocks are 32 long and s32[b] is the sum of the block's quants (it carries the
 * offsets -8, -16 and the mins). For the K formats the blocks are 256 long and
 * s16[16b + j] is the sum of quants 16j .. 16j+15 of block b (|sum| <= 16 * 127 fits). */
typedef struct xact {
    const float *x;     // [cols] the float input (float weights use it directly)
    const int8_t *q;    // [cols]
    const float *d;     // [cols / 32] or [cols / 256]
    const int32_t *s32; // [cols / 32], 32-element formats
    const int16_t *s16; // [cols / 16], K formats
} xact;

/* Symmetric: d = amax / 127, q = round(x * 127 / amax) in [-127, 127], so |x - q d| is at
 * most d / 2 (plus float rounding), and -128 never appears (the sign trick in the Q8_0
 * product relies on that). */
static float quantize_chunk(const float *x, int n, int8_t *q) {
    __m256 amax = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < n; i += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float a = _mm_cvtss_f32(m);
    float d = a / 127.0f;
    __m256 id = _mm256_set1_ps(a > 0 ? 127.0f / a : 0.0f);
    for (int i = 0; i < n; i += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), id),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        // packs work within 128-bit lanes; the permute restores element order
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), p);
    }
    return d;
}

static int32_t sum_bytes16(const int8_t *q) {
    __m256i v = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)q));
    return hsum_epi32(_mm256_madd_epi16(v, _mm256_set1_epi16(1)));
}

static void quantize_x_32(const float *x, int64_t cols, int8_t *q, float *d, int32_t *s) {
    for (int64_t b = 0; b < cols / 32; b++) {
        d[b] = quantize_chunk(x + 32 * b, 32, q + 32 * b);
        s[b] = sum_bytes16(q + 32 * b) + sum_bytes16(q + 32 * b + 16);
    }
}

static void quantize_x_256(const float *x, int64_t cols, int8_t *q, float *d, int16_t *s) {
    for (int64_t b = 0; b < cols / 256; b++) {
        d[b] = quantize_chunk(x + 256 * b, 256, q + 256 * b);
        for (int j = 0; j < 16; j++) s[16 * b + j] = (int16_t)sum_bytes16(q + 256 * b + 16 * j);
    }
}

/* Storage for n_x vectors of x in quantized form, grown as needed and kept by a pool. */
typedef struct xact_buf {
    xact *xa;   // [cap_x]
    int8_t *q;  // [cap_x * cap_cols]
    float *d;   // [cap_x * (cap_cols / 32 + 1)]
    void *s;    // [cap_x * (cap_cols / 8 + 8)] bytes: int32 per 32 or int16 per 16
    int64_t cap_x, cap_cols;
} xact_buf;

static void xact_buf_free(xact_buf *b) {
    free(b->xa), free(b->q), free(b->d), free(b->s);
    memset(b, 0, sizeof *b);
}

/* x [n_x, cols] prepared for the dot functions of type t: each vector on its own, exactly as
 * a single product would prepare it. */
static const xact *xact_prepare(xact_buf *b, ggml_type t, const float *x, int64_t n_x, int64_t cols) {
    if (b->cap_x < n_x || b->cap_cols < cols) {
        int64_t nx = b->cap_x > n_x ? b->cap_x : n_x, nc = b->cap_cols > cols ? b->cap_cols : cols;
        xact_buf_free(b);
        b->xa = rb_malloc((size_t)nx * sizeof *b->xa);
        b->q = rb_malloc((size_t)(nx * nc));
        b->d = rb_malloc((size_t)(nx * (nc / 32 + 1)) * sizeof *b->d);
        b->s = rb_malloc((size_t)(nx * (nc / 8 + 8)));
        b->cap_x = nx, b->cap_cols = nc;
    }
    int quantized = t != GGML_T_F32 && t != GGML_T_F16 && t != GGML_T_BF16;
    for (int64_t i = 0; i < n_x; i++) {
        const float *xi = x + i * cols;
        b->xa[i] = (xact){.x = xi};
        if (!quantized) continue;
        int8_t *q = b->q + i * cols;
        float *d = b->d + i * (cols / 32 + 1);
        void *s = (char *)b->s + i * (cols / 8 + 8);
        b->xa[i].q = q, b->xa[i].d = d;
        if (ggml_block_elems(t) == 256) {
            quantize_x_256(xi, cols, q, d, s);
            b->xa[i].s16 = s;
        } else {
            quantize_x_32(xi, cols, q, d, s);
            b->xa[i].s32 = s;
        }
    }
    return b->xa;
}

/* ---- dot products of one weight row with x ------------------------------------------ */

typedef float (*dot_fn)(const uint8_t *w, const xact *xa, int64_t cols);

static inline __m256 load_f32x8(const uint8_t *p) { return _mm256_loadu_ps((const float *)(const void *)p); }
static inline __m256 load_f16x8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 load_bf16x8(const uint8_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
static inline float f32_at(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}
static inline float bf16_at(const uint8_t *p) { return rb_bf16_to_float((uint16_t)(p[0] | (p[1] << 8))); }

/* Float weights: four independent accumulators keep the FMA pipeline full. They are
 * written out one by one: an array of accumulators with an inner loop is kept on the stack
 * by GCC at -O2, which halves the speed. */
#define FLOAT_DOT(name, LOAD8, AT, ESIZE)                                                     \
    static float name(const uint8_t *w, const xact *xa, int64_t cols) {                       \
        const float *x = xa->x;                                                               \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                           \
        int64_t c = 0;                                                                        \
        for (; c + 32 <= cols; c += 32) {                                                     \
            a0 = _mm256_fmadd_ps(LOAD8(w + ESIZE * c), _mm256_loadu_ps(x + c), a0);           \
            a1 = _mm256_fmadd_ps(LOAD8(w + ESIZE * (c + 8)), _mm256_loadu_ps(x + c + 8), a1); \
            a2 = _mm256_fmadd_ps(LOAD8(w + ESIZE * (c + 16)), _mm256_loadu_ps(x + c + 16), a2); \
            a3 = _mm256_fmadd_ps(LOAD8(w + ESIZE * (c + 24)), _mm256_loadu_ps(x + c + 24), a3); \
        }                                                                                     \
        for (; c + 8 <= cols; c += 8) a0 = _mm256_fmadd_ps(LOAD8(w + ESIZE * c), _mm256_loadu_ps(x + c), a0); \
        float r = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));       \
        for (; c < cols; c++) r += AT(w + ESIZE * c) * x[c];                                  \
        return r;                                                                             \
    }
FLOAT_DOT(dot_f32, load_f32x8, f32_at, 4)
FLOAT_DOT(dot_f16, load_f16x8, f16_at, 2)
FLOAT_DOT(dot_bf16, load_bf16x8, bf16_at, 2)
#undef FLOAT_DOT

/* Sum over a 32-block of unsigned weight quants (0..31) times signed x quants, as 8 int32
 * lanes: maddubs pairs stay below 2 * 31 * 127 < 2^15, so nothing saturates. */
static inline __m256i dot_u8_s8(__m256i wq, __m256i xq) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xq), _mm256_set1_epi16(1));
}

/* Both sides signed: maddubs wants one unsigned operand, so take |w| and move w's sign
 * onto x. |w| <= 128 and |x| <= 127 keep each pair below 2^15. */
static inline __m256i dot_s8_s8(__m256i w, __m256i x) {
    return dot_u8_s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

/* The 32-element formats with signed quants and value d*q (Q8_0, and Q5_0 made signed):
 * sum = sum_b d_b dx_b sum(q x). QUANTS(block) gives a block's 32 signed quants, BB is the
 * block's size in bytes, its scale d the first two. Two blocks an iteration give the core
 * two independent chains. */
#define SIGNED32_DOT(name, QUANTS, BB)                                                         \
    static float name(const uint8_t *w, const xact *xa, int64_t cols) {                       \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                       \
        int64_t nb = cols / 32, b = 0;                                                        \
        for (; b + 2 <= nb; b += 2, w += 2 * (BB)) {                                          \
            __m256i p0 = dot_s8_s8(QUANTS(w), load256(xa->q + 32 * b));                       \
            __m256i p1 = dot_s8_s8(QUANTS(w + (BB)), load256(xa->q + 32 * b + 32));           \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w) * xa->d[b]), _mm256_cvtepi32_ps(p0), acc0); \
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w + (BB)) * xa->d[b + 1]),         \
                                   _mm256_cvtepi32_ps(p1), acc1);                             \
        }                                                                                     \
        for (; b < nb; b++, w += (BB)) {                                                      \
            __m256i p0 = dot_s8_s8(QUANTS(w), load256(xa->q + 32 * b));                       \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w) * xa->d[b]), _mm256_cvtepi32_ps(p0), acc0); \
        }                                                                                     \
        return hsum8(_mm256_add_ps(acc0, acc1));                                              \
    }

/* Q8_0: d, then 32 int8. */
static inline __m256i q8_0_signed(const uint8_t *b) { return load256(b + 2); }
SIGNED32_DOT(dot_q8_0, q8_0_signed, 34)

/* The 32-element formats with unsigned quants q and value d*q + off (off = -8d, -16d or m):
 * sum = sum_b d_b dx_b sum(q x) + off_b dx_b sum(x). */
static float dot_q4_0(const uint8_t *w, const xact *xa, int64_t cols) {
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t b = 0; b < cols / 32; b++, w += 18) {
        float f = f16_at(w) * xa->d[b];
        __m256i p = dot_u8_s8(nibbles_split16(w + 2), load256(xa->q + 32 * b));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f), _mm256_cvtepi32_ps(p), acc);
        corr += f * (float)xa->s32[b];
    }
    return hsum8(acc) - 8.0f * corr;
}

static float dot_q4_1(const uint8_t *w, const xact *xa, int64_t cols) {
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t b = 0; b < cols / 32; b++, w += 20) {
        float dx = xa->d[b];
        __m256i p = dot_u8_s8(nibbles_split16(w + 4), load256(xa->q + 32 * b));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w) * dx), _mm256_cvtepi32_ps(p), acc);
        corr += f16_at(w + 2) * dx * (float)xa->s32[b];
    }
    return hsum8(acc) + corr;
}

/* Q5_0 as signed quants: q - 16 = nibble - 16 (1 - bit), i.e. the nibble with 0xF0 or-ed in
 * where the fifth bit is clear; then the Q8_0 product. */
static inline __m256i q5_0_signed(const uint8_t *b) {
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                             0x0101010101010101LL, 0x0000000000000000LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u32_at(b + 2)), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_or_si256(nibbles_split16(b + 6), _mm256_andnot_si256(set, _mm256_set1_epi8((char)0xF0)));
}
SIGNED32_DOT(dot_q5_0, q5_0_signed, 22)
#undef SIGNED32_DOT

static float dot_q5_1(const uint8_t *w, const xact *xa, int64_t cols) {
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int64_t b = 0; b < cols / 32; b++, w += 24) {
        float dx = xa->d[b];
        __m256i q = _mm256_or_si256(nibbles_split16(w + 8), qh_bits_to_bytes(u32_at(w + 4)));
        __m256i p = dot_u8_s8(q, load256(xa->q + 32 * b));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w) * dx), _mm256_cvtepi32_ps(p), acc);
        corr += f16_at(w + 2) * dx * (float)xa->s32[b];
    }
    return hsum8(acc) + corr;
}

/* The 8 scales and 8 mins of a Q4_K / Q5_K super-block as two vectors of 8 int16, unpacked
 * four at a time from 32-bit words (the same bit layout as k_scales_mins). */
static inline void k_scales_mins_v(const uint8_t *s, __m128i *sc, __m128i *m) {
    uint32_t s0 = u32_at(s), s1 = u32_at(s + 4), s2 = u32_at(s + 8);
    uint32_t sc_lo = s0 & 0x3F3F3F3Fu, m_lo = s1 & 0x3F3F3F3Fu;
    uint32_t sc_hi = (s2 & 0x0F0F0F0Fu) | ((s0 >> 2) & 0x30303030u);
    uint32_t m_hi = ((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 2) & 0x30303030u);
    *sc = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo));
    *m = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)m_hi, (int)m_lo));
}

/* Shuffle controls that broadcast int16 number j of a 128-bit lane to the whole lane. */
static _Alignas(32) const uint8_t k_bcast16[8][32] = {
#define B(j) {2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, \
              2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1}
    B(0), B(1), B(2), B(3), B(4), B(5), B(6), B(7)
#undef B
};

/* Q4_K / Q5_K against 256-blocks of x: within a super-block everything is an integer
 * (scale * q * x summed: at most 256 * 31 * 127 * 63 < 2^31), so one float multiply per
 * super-block; the mins meet x through the sums of 16 (paired into sums of 32). */
static inline float dot_k45(const uint8_t *w, const xact *xa, int64_t cols, int five) {
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), h5 = _mm256_set1_epi8(0x10);
    size_t bb = five ? 176 : 144;
    for (int64_t b = 0; b < cols / 256; b++, w += bb) {
        float dx = xa->d[b];
        __m128i sc8, m8;
        k_scales_mins_v(w + 4, &sc8, &m8);
        __m256i sc = _mm256_broadcastsi128_si256(sc8);
        const uint8_t *qs = w + (five ? 48 : 16);
        const int8_t *xq = xa->q + 256 * b;
        __m256i qh = five ? load256(w + 16) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i v = load256(qs + 32 * c);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five) {
                __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * c))), b1 = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), h5));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), h5));
            }
            __m256i plo = _mm256_maddubs_epi16(lo, load256(xq + 64 * c));
            __m256i phi = _mm256_maddubs_epi16(hi, load256(xq + 64 * c + 32));
            __m256i slo = _mm256_shuffle_epi8(sc, load256(k_bcast16[2 * c]));
            __m256i shi = _mm256_shuffle_epi8(sc, load256(k_bcast16[2 * c + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, slo));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, shi));
        }
        // sums of 32 from the sums of 16, then against the mins: 4 int32 lanes
        const __m128i *xs = (const __m128i *)(const void *)(xa->s16 + 16 * b);
        __m128i s32 = _mm_hadd_epi16(_mm_loadu_si128(xs), _mm_loadu_si128(xs + 1));
        __m128i mm = _mm_madd_epi16(m8, s32);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w) * dx), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm_fmadd_ps(_mm_set1_ps(f16_at(w + 2) * dx), _mm_cvtepi32_ps(mm), accm);
    }
    accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
    return hsum8(acc) - _mm_cvtss_f32(accm);
}

static float dot_q4_k(const uint8_t *w, const xact *xa, int64_t cols) { return dot_k45(w, xa, cols, 0); }
static float dot_q5_k(const uint8_t *w, const xact *xa, int64_t cols) { return dot_k45(w, xa, cols, 1); }

/* Shuffle controls for Q6_K: with a half's 8 scales as int16 in both lanes, control k puts
 * scale 2k in the low lane (elements 0..15 of group k) and 2k + 1 in the high lane. */
static _Alignas(32) const uint8_t k_q6_scale_pick[4][32] = {
#define P(a, b) {2*a, 2*a+1, 2*a, 2*a+1, 2*a, 2*a+1, 2*a, 2*a+1, 2*a, 2*a+1, 2*a, 2*a+1, 2*a, 2*a+1, 2*a, 2*a+1, \
                 2*b, 2*b+1, 2*b, 2*b+1, 2*b, 2*b+1, 2*b, 2*b+1, 2*b, 2*b+1, 2*b, 2*b+1, 2*b, 2*b+1, 2*b, 2*b+1}
    P(0, 1), P(2, 3), P(4, 5), P(6, 7)
#undef P
};

/* One group of 32 Q6_K quants against x, weighted by its two scales: 8 int32 lanes. The
 * low 8 int16 lanes of maddubs are elements 0..15 of the 32, the high 8 are 16..31. */
static inline __m256i q6_group(__m256i q, const int8_t *x, __m256i sc, int k) {
    __m256i p = _mm256_maddubs_epi16(q, load256(x));
    return _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc, load256(k_q6_scale_pick[k])));
}

/* Q6_K: quants 0..63 unsigned against x, int8 scales per 16, the -32 offset through the
 * sums of 16. Bounds: pairs 2 * 63 * 127 < 2^15; a super-block 256 * 63 * 127 * 128 < 2^31. */
static float dot_q6_k(const uint8_t *w, const xact *xa, int64_t cols) {
    __m256 acc = _mm256_setzero_ps(), accb = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < cols / 256; b++, w += 210) {
        const uint8_t *ql = w, *qhp = w + 128;
        const int8_t *xq = xa->q + 256 * b;
        __m128i sc8 = _mm_loadu_si128((const __m128i *)(w + 192));
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8); // [16] int16
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i l0 = load256(ql + 64 * h), l1 = load256(ql + 64 * h + 32), qh = load256(qhp + 32 * h);
            __m256i sc = _mm256_broadcastsi128_si256(h ? _mm256_extracti128_si256(sc16, 1) : _mm256_castsi256_si128(sc16));
            __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            const int8_t *xh = xq + 128 * h;
            sumi = _mm256_add_epi32(sumi, q6_group(q0, xh, sc, 0));
            sumi = _mm256_add_epi32(sumi, q6_group(q1, xh + 32, sc, 1));
            sumi = _mm256_add_epi32(sumi, q6_group(q2, xh + 64, sc, 2));
            sumi = _mm256_add_epi32(sumi, q6_group(q3, xh + 96, sc, 3));
        }
        // 32 * sum_j sc_j * (sum of x quants j): 8 int32 lanes
        __m256i bias = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(const void *)(xa->s16 + 16 * b)));
        __m256 f = _mm256_set1_ps(f16_at(w + 208) * xa->d[b]);
        acc = _mm256_fmadd_ps(f, _mm256_cvtepi32_ps(sumi), acc);
        accb = _mm256_fmadd_ps(f, _mm256_cvtepi32_ps(bias), accb);
    }
    return hsum8(acc) - 32.0f * hsum8(accb);
}

/* ---- one weight row against several x at once ---------------------------------------
 *
 * For prefill (quant_matmat): a row's blocks are decoded once and applied to up to MANY
 * prepared vectors. Each vector keeps its own accumulators and sees exactly the operations
 * of the single-vector function above, in the same order: the same integer products (exact,
 * whoever computes them), the same scale products, the same FMA chains and the same final
 * reduction, so y[v] equals dot(w, xa[v]) bit for bit. Only the weight-side work (unpacking
 * nibbles and scales) is shared. */

#define MANY 16
typedef void (*dot_many_fn)(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y,
                            int64_t y_stride);

/* SIGNED32_DOT (Q8_0, Q5_0) for n_x <= MANY vectors: dot_s8_s8 split into its weight part
 * (|w|) and its per-vector part (x with w's sign). */
#define SIGNED32_DOT_MANY(name, QUANTS, BB)                                                    \
    static void name(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y,        \
                     int64_t y_stride) {                                                       \
        __m256 acc0[MANY], acc1[MANY];                                                        \
        for (int v = 0; v < n_x; v++) acc0[v] = acc1[v] = _mm256_setzero_ps();                \
        int64_t nb = cols / 32, b = 0;                                                        \
        for (; b + 2 <= nb; b += 2, w += 2 * (BB)) {                                          \
            __m256i q0 = QUANTS(w), q1 = QUANTS(w + (BB));                                    \
            __m256i a0 = _mm256_sign_epi8(q0, q0), a1 = _mm256_sign_epi8(q1, q1);             \
            float d0 = f16_at(w), d1 = f16_at(w + (BB));                                      \
            for (int v = 0; v < n_x; v++) {                                                   \
                const xact *x = &xa[v];                                                       \
                __m256i p0 = dot_u8_s8(a0, _mm256_sign_epi8(load256(x->q + 32 * b), q0));    \
                __m256i p1 = dot_u8_s8(a1, _mm256_sign_epi8(load256(x->q + 32 * b + 32), q1)); \
                acc0[v] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * x->d[b]), _mm256_cvtepi32_ps(p0), acc0[v]); \
                acc1[v] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * x->d[b + 1]), _mm256_cvtepi32_ps(p1), acc1[v]); \
            }                                                                                 \
        }                                                                                     \
        for (; b < nb; b++, w += (BB)) {                                                      \
            __m256i q0 = QUANTS(w), a0 = _mm256_sign_epi8(q0, q0);                            \
            float d0 = f16_at(w);                                                             \
            for (int v = 0; v < n_x; v++) {                                                   \
                __m256i p0 = dot_u8_s8(a0, _mm256_sign_epi8(load256(xa[v].q + 32 * b), q0));  \
                acc0[v] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * xa[v].d[b]), _mm256_cvtepi32_ps(p0), acc0[v]); \
            }                                                                                 \
        }                                                                                     \
        for (int v = 0; v < n_x; v++) y[v * y_stride] = hsum8(_mm256_add_ps(acc0[v], acc1[v])); \
    }
SIGNED32_DOT_MANY(dot_many_q8_0, q8_0_signed, 34)
SIGNED32_DOT_MANY(dot_many_q5_0, q5_0_signed, 22)
#undef SIGNED32_DOT_MANY

/* dot_q4_0, dot_q4_1, dot_q5_1 for n_x <= MANY vectors: the unsigned quants once; each
 * vector's float chain (acc) and scalar correction (corr) as in the single-vector code. */
static void dot_many_q4_0(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y, int64_t y_stride) {
    __m256 acc[MANY];
    float corr[MANY];
    for (int v = 0; v < n_x; v++) acc[v] = _mm256_setzero_ps(), corr[v] = 0;
    for (int64_t b = 0; b < cols / 32; b++, w += 18) {
        __m256i q = nibbles_split16(w + 2);
        float dw = f16_at(w);
        for (int v = 0; v < n_x; v++) {
            float f = dw * xa[v].d[b];
            __m256i p = dot_u8_s8(q, load256(xa[v].q + 32 * b));
            acc[v] = _mm256_fmadd_ps(_mm256_set1_ps(f), _mm256_cvtepi32_ps(p), acc[v]);
            corr[v] += f * (float)xa[v].s32[b];
        }
    }
    for (int v = 0; v < n_x; v++) y[v * y_stride] = hsum8(acc[v]) - 8.0f * corr[v];
}

/* Q4_1 (five = 0) and Q5_1 (five = 1): value d*q + m. */
static inline void dot_many_q41_q51(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y,
                                    int64_t y_stride, int five) {
    __m256 acc[MANY];
    float corr[MANY];
    for (int v = 0; v < n_x; v++) acc[v] = _mm256_setzero_ps(), corr[v] = 0;
    size_t bb = five ? 24 : 20;
    for (int64_t b = 0; b < cols / 32; b++, w += bb) {
        __m256i q = five ? _mm256_or_si256(nibbles_split16(w + 8), qh_bits_to_bytes(u32_at(w + 4)))
                         : nibbles_split16(w + 4);
        float dw = f16_at(w), mw = f16_at(w + 2);
        for (int v = 0; v < n_x; v++) {
            float dx = xa[v].d[b];
            __m256i p = dot_u8_s8(q, load256(xa[v].q + 32 * b));
            acc[v] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(p), acc[v]);
            corr[v] += mw * dx * (float)xa[v].s32[b];
        }
    }
    for (int v = 0; v < n_x; v++) y[v * y_stride] = hsum8(acc[v]) + corr[v];
}

static void dot_many_q4_1(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y, int64_t ys) {
    dot_many_q41_q51(w, xa, n_x, cols, y, ys, 0);
}
static void dot_many_q5_1(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y, int64_t ys) {
    dot_many_q41_q51(w, xa, n_x, cols, y, ys, 1);
}

/* dot_k45 for n_x <= MANY vectors: the super-block's quants and scale shuffles once. */
static inline void dot_many_k45(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y,
                                int64_t y_stride, int five) {
    __m256 acc[MANY];
    __m128 accm[MANY];
    for (int v = 0; v < n_x; v++) acc[v] = _mm256_setzero_ps(), accm[v] = _mm_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), h5 = _mm256_set1_epi8(0x10);
    size_t bb = five ? 176 : 144;
    for (int64_t b = 0; b < cols / 256; b++, w += bb) {
        __m128i sc8, m8;
        k_scales_mins_v(w + 4, &sc8, &m8);
        __m256i sc = _mm256_broadcastsi128_si256(sc8);
        const uint8_t *qs = w + (five ? 48 : 16);
        __m256i qh = five ? load256(w + 16) : _mm256_setzero_si256();
        __m256i lo[4], hi[4], slo[4], shi[4];
        for (int c = 0; c < 4; c++) {
            __m256i v = load256(qs + 32 * c);
            lo[c] = _mm256_and_si256(v, m4), hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five) {
                __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * c))), b1 = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
                lo[c] = _mm256_or_si256(lo[c], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), h5));
                hi[c] = _mm256_or_si256(hi[c], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), h5));
            }
            slo[c] = _mm256_shuffle_epi8(sc, load256(k_bcast16[2 * c]));
            shi[c] = _mm256_shuffle_epi8(sc, load256(k_bcast16[2 * c + 1]));
        }
        float d = f16_at(w), dmin = f16_at(w + 2);
        for (int v = 0; v < n_x; v++) {
            const xact *x = &xa[v];
            float dx = x->d[b];
            const int8_t *xq = x->q + 256 * b;
            __m256i sumi = _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                __m256i plo = _mm256_maddubs_epi16(lo[c], load256(xq + 64 * c));
                __m256i phi = _mm256_maddubs_epi16(hi[c], load256(xq + 64 * c + 32));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, slo[c]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, shi[c]));
            }
            const __m128i *xs = (const __m128i *)(const void *)(x->s16 + 16 * b);
            __m128i s32 = _mm_hadd_epi16(_mm_loadu_si128(xs), _mm_loadu_si128(xs + 1));
            __m128i mm = _mm_madd_epi16(m8, s32);
            acc[v] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(sumi), acc[v]);
            accm[v] = _mm_fmadd_ps(_mm_set1_ps(dmin * dx), _mm_cvtepi32_ps(mm), accm[v]);
        }
    }
    for (int v = 0; v < n_x; v++) {
        __m128 am = _mm_add_ps(accm[v], _mm_movehl_ps(accm[v], accm[v]));
        am = _mm_add_ss(am, _mm_movehdup_ps(am));
        y[v * y_stride] = hsum8(acc[v]) - _mm_cvtss_f32(am);
    }
}

static void dot_many_q4_k(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y, int64_t ys) {
    dot_many_k45(w, xa, n_x, cols, y, ys, 0);
}
static void dot_many_q5_k(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y, int64_t ys) {
    dot_many_k45(w, xa, n_x, cols, y, ys, 1);
}

/* dot_q6_k for n_x <= MANY vectors: the eight groups of quants and their scale vectors once. */
static void dot_many_q6_k(const uint8_t *w, const xact *xa, int n_x, int64_t cols, float *y, int64_t y_stride) {
    __m256 acc[MANY], accb[MANY];
    for (int v = 0; v < n_x; v++) acc[v] = accb[v] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < cols / 256; b++, w += 210) {
        const uint8_t *ql = w, *qhp = w + 128;
        __m128i sc8 = _mm_loadu_si128((const __m128i *)(w + 192));
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8); // [16] int16
        __m256i q[8], scp[8];                     // group 4h + k: quants, scales per int16 lane
        for (int h = 0; h < 2; h++) {
            __m256i l0 = load256(ql + 64 * h), l1 = load256(ql + 64 * h + 32), qh = load256(qhp + 32 * h);
            __m256i sc = _mm256_broadcastsi128_si256(h ? _mm256_extracti128_si256(sc16, 1) : _mm256_castsi256_si128(sc16));
            q[4 * h] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
            q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            for (int k = 0; k < 4; k++) scp[4 * h + k] = _mm256_shuffle_epi8(sc, load256(k_q6_scale_pick[k]));
        }
        float dw = f16_at(w + 208);
        for (int v = 0; v < n_x; v++) {
            const xact *x = &xa[v];
            const int8_t *xq = x->q + 256 * b;
            __m256i sumi = _mm256_setzero_si256();
            for (int g = 0; g < 8; g++)
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], load256(xq + 32 * g)), scp[g]));
            __m256i bias = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(const void *)(x->s16 + 16 * b)));
            __m256 f = _mm256_set1_ps(dw * x->d[b]);
            acc[v] = _mm256_fmadd_ps(f, _mm256_cvtepi32_ps(sumi), acc[v]);
            accb[v] = _mm256_fmadd_ps(f, _mm256_cvtepi32_ps(bias), accb[v]);
        }
    }
    for (int v = 0; v < n_x; v++) y[v * y_stride] = hsum8(acc[v]) - 32.0f * hsum8(accb[v]);
}

/* The several-vector function of a type, or NULL: the float formats call their dot per
 * vector (their x groups and row tiles sized to stay in L1 together). */
static dot_many_fn dot_many_for(ggml_type t) {
    switch (t) {
    case GGML_T_Q8_0: return dot_many_q8_0;
    case GGML_T_Q4_0: return dot_many_q4_0;
    case GGML_T_Q4_1: return dot_many_q4_1;
    case GGML_T_Q5_0: return dot_many_q5_0;
    case GGML_T_Q5_1: return dot_many_q5_1;
    case GGML_T_Q4_K: return dot_many_q4_k;
    case GGML_T_Q5_K: return dot_many_q5_k;
    case GGML_T_Q6_K: return dot_many_q6_k;
    default: return NULL;
    }
}

static dot_fn dot_for(ggml_type t) {
    switch (t) {
    case GGML_T_F32: return dot_f32;
    case GGML_T_F16: return dot_f16;
    case GGML_T_BF16: return dot_bf16;
    case GGML_T_Q8_0: return dot_q8_0;
    case GGML_T_Q4_0: return dot_q4_0;
    case GGML_T_Q4_1: return dot_q4_1;
    case GGML_T_Q5_0: return dot_q5_0;
    case GGML_T_Q5_1: return dot_q5_1;
    case GGML_T_Q4_K: return dot_q4_k;
    case GGML_T_Q5_K: return dot_q5_k;
    case GGML_T_Q6_K: return dot_q6_k;
    default: return NULL;
    }
}

/* ---- the thread pool ------------------------------------------------------------------ */

typedef struct job {
    dot_fn dot;
    dot_many_fn many;  // NULL: dot per vector
    const uint8_t *w;
    size_t row_bytes;
    int64_t rows, cols, chunk;
    const xact *xa;    // [n_x] the activation vectors, each prepared as quant_matvec does
    int64_t n_x;
    int64_t tile;      // rows whose weights stay in L1 while every x passes over them
    int64_t x_group;   // vectors whose x stay in L1 with the tile (dot-per-vector types)
    float *y;          // [n_x, rows]
    atomic_llong next; // first row of the next chunk to take
} job;

/* One word says where the pool stands: the generation of the current call (bits 63..32),
 * whether it still takes helpers (bit 31) and how many workers have joined it and not yet
 * left (bits 30..0). Workers join a call only while it is open; the caller closes it once
 * every chunk is taken and then waits only for the workers that joined. A worker the
 * operating system was slow to wake (a descheduled virtual CPU, say) therefore never holds
 * up a call it did not join; it finds the call closed and goes back to waiting. The job's
 * fields are written only while no worker has joined, and read only by joined workers. */
#define STATE_OPEN (1ull << 31)
#define STATE_ACTIVE_MASK (STATE_OPEN - 1)
static inline uint32_t state_gen(uint64_t s) { return (uint32_t)(s >> 32); }

struct quant_pool {
    int n_threads;
    pthread_t *workers;    // [n_threads - 1]
    pthread_mutex_t mu;    // only for sleeping and waking; the fast path is lock-free
    pthread_cond_t cv_go, cv_done;
    _Atomic uint64_t state; // see STATE_OPEN
    atomic_int stop;
    char pad[64];          // keeps the chunk counter off the line the idle workers poll
    job job;
    xact_buf xb;           // x in quantized form, reused from call to call
};

/* Every output element is one call of the row's dot function on one prepared x, whatever
 * the number of vectors or threads: that is what makes quant_matmat's y[b] equal to
 * quant_matvec's bit for bit. Several vectors share a tile of rows while it is in L1, so
 * the weights are read from memory once per call, not once per vector. */
static void job_run(job *j) {
    for (;;) {
        int64_t r0 = atomic_fetch_add(&j->next, j->chunk);
        if (r0 >= j->rows) return;
        int64_t r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
        for (int64_t t0 = r0; t0 < r1; t0 += j->tile) {
            int64_t t1 = t0 + j->tile < r1 ? t0 + j->tile : r1;
            if (j->many && j->n_x > 1) {
                for (int64_t v0 = 0; v0 < j->n_x; v0 += MANY) {
                    int nv = j->n_x - v0 < MANY ? (int)(j->n_x - v0) : MANY;
                    for (int64_t r = t0; r < t1; r++)
                        j->many(j->w + (size_t)r * j->row_bytes, j->xa + v0, nv, j->cols,
                                j->y + v0 * j->rows + r, j->rows);
                }
                continue;
            }
            // the x of a group stay in L1 beside the tile
            for (int64_t g0 = 0; g0 < j->n_x; g0 += j->x_group) {
                int64_t g1 = g0 + j->x_group < j->n_x ? g0 + j->x_group : j->n_x;
                for (int64_t r = t0; r < t1; r++)
                    for (int64_t b = g0; b < g1; b++)
                        j->y[b * j->rows + r] = j->dot(j->w + (size_t)r * j->row_bytes, &j->xa[b], j->cols);
            }
        }
    }
}

/* Back-to-back calls (a decode step is a few dozen of them) arrive within microseconds, so
 * a worker spins briefly before sleeping: a wake-up through the condition variable costs
 * tens of microseconds (more in a virtual machine), as much as a whole small product. */
#define SPIN_NS 50000

static void *worker_main(void *arg) {
    quant_pool *p = arg;
    uint32_t seen = 0;
    for (;;) {
        int64_t t0 = rb_now_ns();
        for (int i = 0; state_gen(atomic_load(&p->state)) == seen && !atomic_load(&p->stop); i++) {
            _mm_pause();
            if ((i & 63) == 63 && rb_now_ns() - t0 > SPIN_NS) break;
        }
        if (state_gen(atomic_load(&p->state)) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (state_gen(atomic_load(&p->state)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv_go, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        uint64_t s = atomic_load(&p->state);
        seen = state_gen(s);
        int joined = 0;
        while (state_gen(s) == seen && (s & STATE_OPEN))
            if (atomic_compare_exchange_weak(&p->state, &s, s + 1)) {
                joined = 1;
                break;
            }
        if (!joined) continue; // that call is over (or a newer one is up: the loop sees it)
        job_run(&p->job);
        uint64_t after = atomic_fetch_sub(&p->state, 1) - 1;
        if (!(after & STATE_OPEN) && (after & STATE_ACTIVE_MASK) == 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

quant_pool *quant_pool_create(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    quant_pool *p = rb_calloc(1, sizeof *p);
    p->n_threads = n_threads;
    RB_CHECK(pthread_mutex_init(&p->mu, NULL) == 0);
    RB_CHECK(pthread_cond_init(&p->cv_go, NULL) == 0);
    RB_CHECK(pthread_cond_init(&p->cv_done, NULL) == 0);
    atomic_init(&p->state, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->job.next, 0);
    p->workers = rb_calloc((size_t)n_threads, sizeof *p->workers);
    for (int i = 0; i < n_threads - 1; i++) RB_CHECK(pthread_create(&p->workers[i], NULL, worker_main, p) == 0);
    return p;
}

void quant_pool_destroy(quant_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv_go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1; i++) RB_CHECK(pthread_join(p->workers[i], NULL) == 0);
    pthread_cond_destroy(&p->cv_go);
    pthread_cond_destroy(&p->cv_done);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    xact_buf_free(&p->xb);
    free(p);
}

int quant_pool_threads(const quant_pool *p) { return p ? p->n_threads : 1; }

/* Below this many multiply-adds a product is done on the calling thread: waking the
 * workers would cost more than it saves. */
#define PARALLEL_MIN_ELEMS (64 * 1024)
/* Weight bytes of a row tile: with the tile's x blocks this stays within a 32 KiB L1. */
#define TILE_BYTES (16 * 1024)

static void product(quant_pool *p, ggml_type t, const void *w, int64_t rows, int64_t cols,
                    const float *x, int64_t n_x, float *y) {
    (void)quant_row_blocks(t, cols); /* dies unless t is supported and cols whole blocks */
    RB_CHECK(rows >= 0 && n_x >= 1);
    if (rows == 0) return;
    xact_buf tmp = {0};
    xact_buf *xb = p ? &p->xb : &tmp;
    job *j = p ? &p->job : &(job){0};
    j->dot = dot_for(t);
    j->many = dot_many_for(t);
    j->w = w;
    j->row_bytes = quant_row_bytes(t, cols);
    j->rows = rows;
    j->cols = cols;
    j->y = y;
    j->n_x = n_x;
    j->xa = xact_prepare(xb, t, x, n_x, cols);
    int64_t tile = TILE_BYTES / (int64_t)j->row_bytes;
    j->tile = n_x == 1 ? rows : tile < 1 ? 1 : tile;
    int64_t x_bytes = j->xa[0].q ? cols : 4 * cols, group = TILE_BYTES / x_bytes;
    j->x_group = group < 1 ? 1 : group;

    int n = p ? p->n_threads : 1;
    if (n == 1 || rows < 2 || rows * cols * n_x < PARALLEL_MIN_ELEMS) {
        j->chunk = rows;
        atomic_store(&j->next, 0);
        job_run(j);
    } else {
        // several chunks a thread balance the load when another process takes a core now
        // and then; not so small that the shared counter's cache line becomes the bottleneck
        int64_t chunk = rows / (n * 8);
        j->chunk = chunk < 8 ? 8 : chunk;
        atomic_store(&j->next, 0);
        pthread_mutex_lock(&p->mu);
        uint32_t gen = state_gen(atomic_load(&p->state)) + 1; // wraps after 2^32 calls: harmless
        atomic_store(&p->state, ((uint64_t)gen << 32) | STATE_OPEN);
        pthread_cond_broadcast(&p->cv_go);
        pthread_mutex_unlock(&p->mu);
        job_run(j);
        // every chunk is taken: close the call, then wait for those who joined it
        uint64_t s = atomic_fetch_and(&p->state, ~(uint64_t)STATE_OPEN) & ~(uint64_t)STATE_OPEN;
        if (s & STATE_ACTIVE_MASK) {
            int64_t t0 = rb_now_ns();
            for (int i = 0; atomic_load(&p->state) & STATE_ACTIVE_MASK; i++) {
                _mm_pause();
                if ((i & 63) == 63 && rb_now_ns() - t0 > SPIN_NS) break;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->state) & STATE_ACTIVE_MASK) pthread_cond_wait(&p->cv_done, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
    }
    xact_buf_free(&tmp);
}

void quant_matvec(quant_pool *p, ggml_type t, const void *w, int64_t rows, int64_t cols,
                  const float *x, float *y) {
    product(p, t, w, rows, cols, x, 1, y);
}

void quant_matmat(quant_pool *p, ggml_type t, const void *w, int64_t rows, int64_t cols,
                  const float *x, int64_t n_x, float *y) {
    product(p, t, w, rows, cols, x, n_x, y);
}
