/* attn_stream.c: online_stream (see attn_online.h): the CPU attention engine for keys
 * streaming from memory.
 *
 * Keys go a small group at a time (8; 4 for rows of >= 128 floats; 2 for >= 256), with an
 * online softmax (running max m, running sum l, output accumulator rescaled when m grows).
 * Per group every query row takes its logits, then its weights are applied to the same V
 * rows, so K and V are each read from memory once per call whatever the number of query
 * rows, and nothing of size n is written except the logits the caller asked for.
 *
 * Memory speed comes from the order of the reads, measured on the 2-core EPYC dev VM
 * (kernels/bench_attn.c): the hardware prefetcher keeps up best when K and V are fetched
 * as two interleaved streams in bursts of ~2 KiB; at the start of each group its K and V
 * rows are requested row by row, alternating (4 KiB bursts, i.e. groups of 8 at d = 128
 * or of 4 at d = 256, ran at 0.5-0.65 the speed). Without that request the hardware
 * prefetcher alone reaches ~0.6 of the speed. Every other variant measured was slower
 * from memory: prefetching 1-8 groups ahead (in a burst or spread over the group, with or
 * without the current group), L2 or non-temporal hints, a group per KV head of a token
 * row, key-major logit loads, row-major weighted sums, and the block order of
 * online_blocked (all of a block's K, then all of its V: 0.5-0.7 the speed with 4 query
 * rows per key). On one core of the dev VM this engine is latency-bound from memory at
 * ~0.4-0.5 of memcpy with 2 KV heads of 64 and ~0.6 with one; two threads reach 0.6-0.95. */
#include <string.h>

#include "attn_online.h"

static inline float dot1(const float *a, const float *b, int d) {
    __m256 acc = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= d; c += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), acc);
    float s = hsum8(acc);
    for (; c < d; c++) s += a[c] * b[c];
    return s;
}

/* q . k_i for the nk <= 8 keys k[0..nk); lanes >= nk are -inf. */
static inline __m256 qk8n(const float *q, const float *const *k, int nk, int d) {
    if (nk == 8) return qk8(q, k, d);
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = i < nk ? dot1(q, k[i], d) : -INFINITY;
    return _mm256_loadu_ps(t);
}

/* q . k_i for the nk <= 4 keys k[0..nk) in lanes 0..3; lanes >= nk are -inf. */
static inline __m256 qk4(const float *q, const float *const *k, int nk, int d) {
    if (nk < 4) return qk8n(q, k, nk, d);
    int d8 = d & ~7;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < d8; c += 8) {
        __m256 qv = _mm256_loadu_ps(q + c);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[0] + c), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[1] + c), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[2] + c), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[3] + c), a3);
    }
    /* [a0..a3 low-half sums | a0..a3 high-half sums] */
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    if (d8 < d) {
        float r[4];
        tail_dots(q, k, 4, d8, d, r);
        s = _mm_add_ps(s, _mm_loadu_ps(r));
    }
    return _mm256_insertf128_ps(_mm256_set1_ps(-INFINITY), s, 0);
}

/* q . k_i for the nk <= 2 keys k[0..nk) in lanes 0..1; lanes >= nk are -inf. Two
 * accumulators per key (even and odd chunks) keep four FMA chains in flight. */
static inline __m256 qk2(const float *q, const float *const *k, int nk, int d) {
    if (nk < 2) return qk8n(q, k, nk, d);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    int c = 0;
    for (; c + 16 <= d; c += 16) {
        __m256 q0 = _mm256_loadu_ps(q + c), q1 = _mm256_loadu_ps(q + c + 8);
        a0 = _mm256_fmadd_ps(q0, _mm256_loadu_ps(k[0] + c), a0);
        b0 = _mm256_fmadd_ps(q0, _mm256_loadu_ps(k[1] + c), b0);
        a1 = _mm256_fmadd_ps(q1, _mm256_loadu_ps(k[0] + c + 8), a1);
        b1 = _mm256_fmadd_ps(q1, _mm256_loadu_ps(k[1] + c + 8), b1);
    }
    float s0 = hsum8(_mm256_add_ps(a0, a1)), s1 = hsum8(_mm256_add_ps(b0, b1));
    for (; c < d; c++) s0 += q[c] * k[0][c], s1 += q[c] * k[1][c];
    return _mm256_setr_ps(s0, s1, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY);
}

/* acc[r] += sum_{i<NK} p[r * 8 + i] * v_i for the RN rows of acc (row stride d). All NK V
 * rows must be readable (weights of missing keys are 0). Columns are walked in chunks so the
 * RN accumulators stay in registers across the group. */
static inline __attribute__((always_inline)) void
pv_rows(const float *p, int RN, int NK, const float *const *vr, int d, float *acc) {
    int c = 0;
    for (; c + 16 <= d; c += 16) {
        __m256 a0[4], a1[4];
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            a0[r] = _mm256_loadu_ps(acc + (size_t)r * d + c);
            a1[r] = _mm256_loadu_ps(acc + (size_t)r * d + c + 8);
        }
#pragma GCC unroll 8
        for (int j = 0; j < NK; j++) {
            __m256 v0 = _mm256_loadu_ps(vr[j] + c), v1 = _mm256_loadu_ps(vr[j] + c + 8);
#pragma GCC unroll 4
            for (int r = 0; r < RN; r++) {
                __m256 pr = _mm256_broadcast_ss(p + r * 8 + j);
                a0[r] = _mm256_fmadd_ps(pr, v0, a0[r]);
                a1[r] = _mm256_fmadd_ps(pr, v1, a1[r]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            _mm256_storeu_ps(acc + (size_t)r * d + c, a0[r]);
            _mm256_storeu_ps(acc + (size_t)r * d + c + 8, a1[r]);
        }
    }
    for (; c + 8 <= d; c += 8) {
        __m256 a0[4];
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) a0[r] = _mm256_loadu_ps(acc + (size_t)r * d + c);
#pragma GCC unroll 8
        for (int j = 0; j < NK; j++) {
            __m256 v0 = _mm256_loadu_ps(vr[j] + c);
#pragma GCC unroll 4
            for (int r = 0; r < RN; r++)
                a0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + r * 8 + j), v0, a0[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) _mm256_storeu_ps(acc + (size_t)r * d + c, a0[r]);
    }
    for (; c < d; c++)
        for (int r = 0; r < RN; r++) {
            float t = acc[(size_t)r * d + c];
            for (int j = 0; j < NK; j++) t += p[r * 8 + j] * vr[j][c];
            acc[(size_t)r * d + c] = t;
        }
}

/* acc [nq, d] += p [nq, 8] . V [NK rows]; query rows four at a time (the constants RN, NK
 * let the compiler unroll fully and keep the accumulators in registers). */
#define PV_ALL(NK)                                                                                 \
    do {                                                                                           \
        int r = 0;                                                                                 \
        for (; r + 4 <= nq; r += 4) pv_rows(p + r * 8, 4, NK, vr, d, acc + (size_t)r * d);         \
        switch (nq - r) {                                                                          \
        case 3: pv_rows(p + r * 8, 3, NK, vr, d, acc + (size_t)r * d); break;                      \
        case 2: pv_rows(p + r * 8, 2, NK, vr, d, acc + (size_t)r * d); break;                      \
        case 1: pv_rows(p + r * 8, 1, NK, vr, d, acc + (size_t)r * d); break;                      \
        default: break;                                                                            \
        }                                                                                          \
    } while (0)
static void pv8(const float *p, int nq, const float *const *vr, int d, float *acc) { PV_ALL(8); }
static void pv4(const float *p, int nq, const float *const *vr, int d, float *acc) { PV_ALL(4); }
static void pv2(const float *p, int nq, const float *const *vr, int d, float *acc) { PV_ALL(2); }

/* Keys per group for rows of d floats: about 2 KiB of K and 2 KiB of V (see the top of the
 * file), at least 2. */
static int group_keys(int d) { return d >= 256 ? 2 : d >= 128 ? 4 : 8; }

/* Weights of a full group of 4 keys for rows r and r + 1 from their logits s (row r in
 * lanes 0-3, row r + 1 in lanes 4-7): each row's max and rescale, then one exp8 for both;
 * the weights go to the first 4 floats of each row of o->s. Logits are finite here (no
 * mask, no padding), so every group max is too. */
static inline void pair_weights(online *o, int r, __m256 s) {
    __m256 t = _mm256_max_ps(s, _mm256_permute_ps(s, 0xB1)); /* max within each half */
    t = _mm256_max_ps(t, _mm256_permute_ps(t, 0x4E));
    float gmax[2] = {_mm256_cvtss_f32(t), _mm_cvtss_f32(_mm256_extractf128_ps(t, 1))};
    for (int u = 0; u < 2; u++) {
        int rr = r + u;
        if (gmax[u] > o->m[rr]) {
            float alpha = expf(o->m[rr] - gmax[u]); /* 0 on the first group */
            o->l[rr] *= alpha;
            float *a = o->acc + (size_t)rr * o->d;
            for (int c = 0; c < o->d; c++) a[c] *= alpha;
            o->m[rr] = gmax[u];
        }
    }
    __m256 mv = _mm256_set_m128(_mm_set1_ps(o->m[r + 1]), _mm_set1_ps(o->m[r]));
    __m256 p = exp8(_mm256_sub_ps(s, mv));
    __m128 p0 = _mm256_castps256_ps128(p), p1 = _mm256_extractf128_ps(p, 1);
    __m128 h = _mm_hadd_ps(p0, p1); /* [p0 01, p0 23, p1 01, p1 23] */
    h = _mm_hadd_ps(h, h);          /* [sum p0, sum p1, ...] */
    o->l[r] += _mm_cvtss_f32(h);
    o->l[r + 1] += _mm_cvtss_f32(_mm_shuffle_ps(h, h, 1));
    _mm_storeu_ps(o->s + (size_t)r * 8, p0);
    _mm_storeu_ps(o->s + (size_t)(r + 1) * 8, p1);
}

/* Attend keys j0 .. j1-1 of src in groups of gk (8, 4 or 2) keys. logit_rows (may be NULL):
 * row r's logit of key j
 * is stored at logit_rows[r][j]. */
static void stream_run(online *o, const row_src *src, int j0, int j1, float *const *logit_rows,
                       int gk) {
    int d = o->d, n_heads = src->n_heads, rph = src->rows_per_head;
    const float *kr[8], *vr[8];
    for (int j = j0; j < j1; j += gk) {
        int nk = j1 - j < gk ? j1 - j : gk;
        /* the group's rows, K and V alternating (all heads of a token row at once) */
        for (int i = 0; i < nk; i++) {
            if (src->kp) {
                prefetch_row(src->kp[j + i], d);
                prefetch_row(src->vp[j + i], d);
            } else {
                prefetch_row(src->k + (size_t)(j + i) * src->ld, d * n_heads);
                prefetch_row(src->v + (size_t)(j + i) * src->ld, d * n_heads);
            }
        }
        for (int h = 0; h < n_heads; h++) {
            for (int i = 0; i < gk; i++) {
                int jj = j + (i < nk ? i : nk - 1); /* missing keys repeat the last row, weight 0 */
                kr[i] = src->kp ? src->kp[jj] : src->k + (size_t)jj * src->ld + (size_t)h * d;
                vr[i] = src->vp ? src->vp[jj] : src->v + (size_t)jj * src->ld + (size_t)h * d;
            }
            int r0 = h * rph, r1 = r0 + rph, r = r0;
            if (gk == 4 && nk == 4) /* two query rows per pass: shared key loads, one exp8 */
                for (; r + 2 <= r1; r += 2) {
                    const float *q = o->q + (size_t)r * d;
                    __m256 s = qk2x4(q, q + d, kr, d);
                    if (logit_rows) {
                        _mm_storeu_ps(logit_rows[r] + j, _mm256_castps256_ps128(s));
                        _mm_storeu_ps(logit_rows[r + 1] + j, _mm256_extractf128_ps(s, 1));
                    }
                    pair_weights(o, r, s);
                }
            for (; r < r1; r++) {
                const float *q = o->q + (size_t)r * d;
                __m256 s = gk == 2   ? qk2(q, kr, nk, d)
                           : gk == 4 ? qk4(q, kr, nk, d)
                                     : qk8n(q, kr, nk, d);
                if (logit_rows) {
                    if (nk == 8)
                        _mm256_storeu_ps(logit_rows[r] + j, s);
                    else if (nk == 4)
                        _mm_storeu_ps(logit_rows[r] + j, _mm256_castps256_ps128(s));
                    else if (nk == 2)
                        _mm_storel_pi((__m64 *)(logit_rows[r] + j), _mm256_castps256_ps128(s));
                    else {
                        float t[8];
                        _mm256_storeu_ps(t, s);
                        memcpy(logit_rows[r] + j, t, sizeof(float) * (size_t)nk);
                    }
                }
                float gmax = hmax8(s);
                __m256 p = _mm256_setzero_ps();
                if (gmax != -INFINITY) {
                    if (gmax > o->m[r]) {
                        /* exp(-inf) = 0 on the first group: acc and l are 0 anyway. */
                        float alpha = expf(o->m[r] - gmax);
                        o->l[r] *= alpha;
                        float *a = o->acc + (size_t)r * d;
                        for (int c = 0; c < d; c++) a[c] *= alpha;
                        o->m[r] = gmax;
                    }
                    p = exp8(_mm256_sub_ps(s, _mm256_set1_ps(o->m[r])));
                    o->l[r] += hsum8(p);
                }
                _mm256_storeu_ps(o->s + r * 8, p);
            }
            const float *pr = o->s + (size_t)r0 * 8;
            float *acc = o->acc + (size_t)r0 * d;
            if (gk == 2)
                pv2(pr, rph, vr, d, acc);
            else if (gk == 4)
                pv4(pr, rph, vr, d, acc);
            else
                pv8(pr, rph, vr, d, acc);
        }
    }
}


/* Rows of width d (the strided sources hold n_heads heads per token row: the bursts span
 * whole token rows). The weights use the first 8 floats of each row of o->s. */
void online_stream(online *o, const row_src *src, int j0, int j1, float *const *logit_rows) {
    int width = src->kp ? o->d : o->d * src->n_heads;
    stream_run(o, src, j0, j1, logit_rows, group_keys(width));
}
