/* attn_online.h: internals shared by the CPU attention kernels (attn.c) and their two
 * online-softmax engines: AVX2 helpers, where key/value rows live, and the running state
 * of a set of query rows. Not a public interface: include only from kernels/attn*.c.
 *
 * Two engines, one state: both attend keys j0..j1-1 of a row source for the state's query
 * rows, updating (m, l, acc); attn.c turns the state into outputs.
 *   online_stream (attn_stream.c): keys a small group at a time (8, 4 or 2 by row width),
 *     the group's K and V rows requested together. Tuned for K and V streaming from memory
 *     (long contexts): the strided dense kernels use it.
 *   online_blocked (attn_block.c): keys a block of up to 32 at a time, all logits of the
 *     block, then all its weights, then its weighted sum with the accumulators in
 *     registers. Faster when the rows are in cache, but 1.5-2x slower than online_stream
 *     when K and V stream from memory with several query rows per key (measured on the dev
 *     VM with buffers rotating beyond the caches, however prefetched); the gather and causal
 *     kernels use it (pool rows of a decode step and prompts are cache-sized). */
#ifndef ATTN_ONLINE_H
#define ATTN_ONLINE_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#include "simd.h"

/* e^x for 8 floats: Cephes expf (range reduction by ln2 in two parts, degree-6 polynomial,
 * ~1 ulp). Lanes with x < -87.3 (including -inf) give exactly 0; x must be <= 88. */
static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    __m256 live = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
    x = _mm256_max_ps(x, lo);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127));
    __m256 pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
    return _mm256_and_ps(_mm256_mul_ps(y, pow2n), live);
}

/* Lane i of the result = sum of the 8 lanes of a[i]. */
static inline __m256 transpose_sum8(const __m256 a[8]) {
    __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    t0 = _mm256_hadd_ps(t0, t1); /* [a0..a3 low halves | a0..a3 high halves] */
    t2 = _mm256_hadd_ps(t2, t3); /* [a4..a7 low halves | a4..a7 high halves] */
    return _mm256_add_ps(_mm256_permute2f128_ps(t0, t2, 0x20),
                         _mm256_permute2f128_ps(t0, t2, 0x31));
}

/* Lanes i >= n set to -inf (0 <= n <= 8). */
static inline __m256 mask_from(__m256 s, int n) {
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), s, keep);
}

/* t[i] = sum over c in [c0, d) of q[c] * k[i][c], for the nk keys k[0..nk): the scalar tail
 * of the vector dot products below when d is not a multiple of 8. */
static inline void tail_dots(const float *q, const float *const *k, int nk, int c0, int d,
                             float *t) {
    for (int i = 0; i < nk; i++) {
        t[i] = 0;
        for (int c = c0; c < d; c++) t[i] += q[c] * k[i][c];
    }
}

/* q . k_i for the 8 keys k[0..8) (all readable), one per lane. */
static inline __m256 qk8(const float *q, const float *const *k, int d) {
    int d8 = d & ~7;
    __m256 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int c = 0; c < d8; c += 8) {
        __m256 qv = _mm256_loadu_ps(q + c);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) a[i] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[i] + c), a[i]);
    }
    __m256 dots = transpose_sum8(a);
    if (d8 < d) {
        float t[8];
        tail_dots(q, k, 8, d8, d, t);
        dots = _mm256_add_ps(dots, _mm256_loadu_ps(t));
    }
    return dots;
}

/* q0 . k_i and q1 . k_i for the 4 keys k[0..4): lanes 0-3 for q0, 4-7 for q1. Two query
 * rows share every key load (6 loads per 8 FMAs instead of 9). */
static inline __m256 qk2x4(const float *q0, const float *q1, const float *const *k, int d) {
    int d8 = d & ~7;
    __m256 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int c = 0; c < d8; c += 8) {
        __m256 x0 = _mm256_loadu_ps(q0 + c), x1 = _mm256_loadu_ps(q1 + c);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256 kv = _mm256_loadu_ps(k[i] + c);
            a[i] = _mm256_fmadd_ps(x0, kv, a[i]);
            a[4 + i] = _mm256_fmadd_ps(x1, kv, a[4 + i]);
        }
    }
    __m256 dots = transpose_sum8(a);
    if (d8 < d) {
        float t[8];
        tail_dots(q0, k, 4, d8, d, t), tail_dots(q1, k, 4, d8, d, t + 4);
        dots = _mm256_add_ps(dots, _mm256_loadu_ps(t));
    }
    return dots;
}

/* Request every cache line of a row of d floats. always_inline: GCC drops a call to a
 * function whose only effect is a prefetch (it counts as pure). */
static inline __attribute__((always_inline)) void prefetch_row(const float *row, int d) {
    const char *p = (const char *)row;
    size_t bytes = sizeof(float) * (size_t)d;
    for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    _mm_prefetch(p + bytes - 1, _MM_HINT_T0);
}

/* Where key/value row j lives: strided (base + j * ld) or through pointer arrays. A strided
 * source may hold n_heads KV heads side by side (head h at + h * d within each token row),
 * each attended by rows_per_head consecutive query rows. */
typedef struct {
    const float *k, *v;
    size_t ld;
    const float *const *kp, *const *vp; /* non-NULL: pointer rows (one head) */
    int n_heads, rows_per_head;
} row_src;

enum { ONLINE_BLOCK_MAX = 32 }; /* keys per block of online_blocked (and scratch width) */

/* Online-softmax state of nq query rows (scale already folded into the queries). */
typedef struct {
    int nq, d;
    const float *q; /* [nq, d] scaled query rows */
    float *m;       /* [nq] running max of the logits seen */
    double *l;      /* [nq] running sum of exp(logit - m); double, so its rounding does not
                     * grow with n (one hsum of 8 floats per 8 keys is all the float error) */
    float *acc;     /* [nq, d] running sum of exp(logit - m) * v */
    float *s;       /* [nq, ONLINE_BLOCK_MAX] logits, then weights, of the current keys */
} online;

/* Attend keys j0 .. j1-1 of src. logit_rows (may be NULL): row r's logit of key j is
 * stored at logit_rows[r][j]. pos (online_blocked only, may be NULL): row r sees only keys
 * j <= pos[r] (causal mask). */
void online_stream(online *o, const row_src *src, int j0, int j1, float *const *logit_rows);
void online_blocked(online *o, const row_src *src, int j0, int j1, const int *pos,
                    float *const *logit_rows);

/* acc [nq, d] += p [nq, ldp] . V for the n value rows vr (online_blocked's weighted sum,
 * blocks of ONLINE_BLOCK_MAX rows). */
void online_weighted(const float *p, int ldp, int nq, int n, const float *const *vr, int d,
                     float *acc);

#endif
