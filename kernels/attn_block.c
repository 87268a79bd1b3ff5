/* attn_block.c: online_blocked (see attn_online.h): the CPU attention engine for rows in
 * cache (gathered pool rows, prompts).
 *
 * Keys go a block at a time (up to 32; about 16 KiB of K per block, so a block's K and V
 * stay in L1): per KV head, the logits of every query row for the whole block (two query
 * rows share each key load), then each row's weights (one max, at most one rescale and
 * vectorised exps per block), then the weighted sum of the block's V rows with the
 * accumulators of up to four rows held in registers across the block. Per logit that is a
 * fraction of the per-key bookkeeping of a small-group engine; on the 2-core EPYC dev VM a
 * gather runs 1.1-1.2x faster than on online_stream at d = 64 and 1.3-1.7x at d = 128-256
 * (build/bench_attn, before and after). Blocks are padded to a multiple of 8
 * keys by repeating the last row with weight 0. No software prefetch: every variant tried
 * (next block ahead, spread or burst; current block) was slower in cache and did not
 * recover the streaming speed of online_stream from memory. */
#include <string.h>

#include "attn_online.h"

/* acc[r] += sum_{j<nk} p[r * ldp + j] * v_j for the RN rows of acc (row stride d), over the
 * columns c .. c + 8 CW: RN * CW accumulators stay in registers across all nk keys. */
static inline __attribute__((always_inline)) void
pv_cols(const float *p, int ldp, int RN, int CW, int nk, const float *const *vr, int c,
        float *acc, int d) {
    __m256 a[12];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++)
#pragma GCC unroll 8
        for (int w = 0; w < CW; w++) a[r * CW + w] = _mm256_loadu_ps(acc + (size_t)r * d + c + 8 * w);
#pragma GCC unroll 2
    for (int j = 0; j < nk; j++) {
        __m256 v[8];
#pragma GCC unroll 8
        for (int w = 0; w < CW; w++) v[w] = _mm256_loadu_ps(vr[j] + c + 8 * w);
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            __m256 pr = _mm256_broadcast_ss(p + (size_t)r * ldp + j);
#pragma GCC unroll 8
            for (int w = 0; w < CW; w++) a[r * CW + w] = _mm256_fmadd_ps(pr, v[w], a[r * CW + w]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++)
#pragma GCC unroll 8
        for (int w = 0; w < CW; w++) _mm256_storeu_ps(acc + (size_t)r * d + c + 8 * w, a[r * CW + w]);
}

/* acc [RN, d] += p [RN, nk] . V [nk rows]: column chunks as wide as the registers allow
 * (8 vectors for one row, 4 for two or three, 2 for four). */
static inline __attribute__((always_inline)) void
pv_rows(const float *p, int ldp, int RN, int nk, const float *const *vr, int d, float *acc) {
    const int CW = RN == 1 ? 8 : RN == 4 ? 2 : 4;
    int c = 0;
    for (; c + 8 * CW <= d; c += 8 * CW) pv_cols(p, ldp, RN, CW, nk, vr, c, acc, d);
    for (; c + 8 <= d; c += 8) pv_cols(p, ldp, RN, 1, nk, vr, c, acc, d);
    for (; c < d; c++)
        for (int r = 0; r < RN; r++) {
            float t = acc[(size_t)r * d + c];
            for (int j = 0; j < nk; j++) t += p[(size_t)r * ldp + j] * vr[j][c];
            acc[(size_t)r * d + c] = t;
        }
}

static void pv_block(const float *p, int ldp, int nq, int nk, const float *const *vr, int d,
                     float *acc) {
    int r = 0;
    for (; r + 4 <= nq; r += 4) pv_rows(p + (size_t)r * ldp, ldp, 4, nk, vr, d, acc + (size_t)r * d);
    switch (nq - r) {
    case 3: pv_rows(p + (size_t)r * ldp, ldp, 3, nk, vr, d, acc + (size_t)r * d); break;
    case 2: pv_rows(p + (size_t)r * ldp, ldp, 2, nk, vr, d, acc + (size_t)r * d); break;
    case 1: pv_rows(p + (size_t)r * ldp, ldp, 1, nk, vr, d, acc + (size_t)r * d); break;
    default: break;
    }
}

/* Keys per block: about 16 KiB of K (and as much of V) for token rows of row_floats
 * floats, a multiple of 8 in 8..ONLINE_BLOCK_MAX. */
static int block_keys(int row_floats) {
    int b = 4096 / row_floats;
    b = b < 8 ? 8 : b > ONLINE_BLOCK_MAX ? ONLINE_BLOCK_MAX : b;
    return b & ~7;
}

/* Logits of query rows r0..r1 against the block's keys kr[0..nk8) into o->s (nk8: nk rounded
 * up to 8, kr padded by repeating its last row; lanes >= nk are set to -inf). */
static void block_logits(online *o, int r0, int r1, const float *const *kr, int nk, int d) {
    int r = r0;
    for (; r + 2 <= r1; r += 2) {
        const float *q0 = o->q + (size_t)r * d, *q1 = q0 + d;
        float *s0 = o->s + (size_t)r * ONLINE_BLOCK_MAX, *s1 = s0 + ONLINE_BLOCK_MAX;
        for (int i = 0; i < nk; i += 4) {
            __m256 x = qk2x4(q0, q1, kr + i, d);
            if (nk - i < 4) {
                __m128 lo = _mm256_castps256_ps128(x), hi = _mm256_extractf128_ps(x, 1);
                lo = _mm256_castps256_ps128(mask_from(_mm256_castps128_ps256(lo), nk - i));
                hi = _mm256_castps256_ps128(mask_from(_mm256_castps128_ps256(hi), nk - i));
                x = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
            }
            _mm_storeu_ps(s0 + i, _mm256_castps256_ps128(x));
            _mm_storeu_ps(s1 + i, _mm256_extractf128_ps(x, 1));
        }
        for (int i = (nk + 3) & ~3; i < ((nk + 7) & ~7); i++) s0[i] = s1[i] = -INFINITY;
    }
    for (; r < r1; r++) {
        const float *q = o->q + (size_t)r * d;
        float *s = o->s + (size_t)r * ONLINE_BLOCK_MAX;
        for (int i = 0; i < nk; i += 8) {
            __m256 x = qk8(q, kr + i, d);
            _mm256_storeu_ps(s + i, nk - i < 8 ? mask_from(x, nk - i) : x);
        }
    }
}

/* Turn row r's block logits (o->s, nk8 of them, already masked) into weights exp(s - m),
 * rescaling the row's running state first when the block raises its max. */
static void block_weights(online *o, int r, int nk8) {
    float *s = o->s + (size_t)r * ONLINE_BLOCK_MAX;
    __m256 mx = _mm256_loadu_ps(s);
    for (int i = 8; i < nk8; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + i));
    float bmax = hmax8(mx);
    if (bmax == -INFINITY) { /* nothing visible in this block */
        memset(s, 0, sizeof(float) * (size_t)nk8);
        return;
    }
    if (bmax > o->m[r]) {
        /* exp(-inf) = 0 on the first block: acc and l are 0 anyway. */
        float alpha = expf(o->m[r] - bmax);
        o->l[r] *= alpha;
        float *a = o->acc + (size_t)r * o->d;
        __m256 va = _mm256_set1_ps(alpha);
        int c = 0;
        for (; c + 8 <= o->d; c += 8) _mm256_storeu_ps(a + c, _mm256_mul_ps(va, _mm256_loadu_ps(a + c)));
        for (; c < o->d; c++) a[c] *= alpha;
        o->m[r] = bmax;
    }
    __m256 vm = _mm256_set1_ps(o->m[r]);
    double l = o->l[r];
    for (int i = 0; i < nk8; i += 8) {
        __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        _mm256_storeu_ps(s + i, p);
        l += hsum8(p);
    }
    o->l[r] = l;
}

void online_blocked(online *o, const row_src *src, int j0, int j1, const int *pos,
                    float *const *logit_rows) {
    int d = o->d, n_heads = src->n_heads, rph = src->rows_per_head;
    int block = block_keys(src->kp ? d : d * n_heads);
    const float *kr[ONLINE_BLOCK_MAX], *vr[ONLINE_BLOCK_MAX];
    for (int j = j0; j < j1; j += block) {
        int nk = j1 - j < block ? j1 - j : block, nk8 = (nk + 7) & ~7;
        for (int h = 0; h < n_heads; h++) {
            for (int i = 0; i < nk8; i++) {
                int jj = j + (i < nk ? i : nk - 1); /* padding repeats the last row, weight 0 */
                kr[i] = src->kp ? src->kp[jj] : src->k + (size_t)jj * src->ld + (size_t)h * d;
                vr[i] = src->vp ? src->vp[jj] : src->v + (size_t)jj * src->ld + (size_t)h * d;
            }
            int r0 = h * rph, r1 = r0 + rph;
            block_logits(o, r0, r1, kr, nk, d);
            for (int r = r0; r < r1; r++) {
                float *s = o->s + (size_t)r * ONLINE_BLOCK_MAX;
                if (logit_rows) memcpy(logit_rows[r] + j, s, sizeof(float) * (size_t)nk);
                if (pos && j + nk - 1 > pos[r])
                    for (int i = 0; i < nk8; i += 8) {
                        int vis = pos[r] - (j + i) + 1;
                        if (vis < 8)
                            _mm256_storeu_ps(s + i, mask_from(_mm256_loadu_ps(s + i), vis < 0 ? 0 : vis));
                    }
                block_weights(o, r, nk8);
            }
            pv_block(o->s + (size_t)r0 * ONLINE_BLOCK_MAX, ONLINE_BLOCK_MAX, rph, nk8, vr, d,
                     o->acc + (size_t)r0 * d);
        }
    }
}

void online_weighted(const float *p, int ldp, int nq, int n, const float *const *vr, int d,
                     float *acc) {
    for (int j = 0; j < n; j += ONLINE_BLOCK_MAX) {
        int nk = n - j < ONLINE_BLOCK_MAX ? n - j : ONLINE_BLOCK_MAX;
        pv_block(p + j, ldp, nq, nk, vr + j, d, acc);
    }
}
