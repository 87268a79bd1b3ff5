/* attn.c: fast single-threaded CPU attention kernels (contract in attn.h), AVX2/FMA.
 *
 * One engine serves all three kernels: a set of query rows attends key/value rows a small
 * group of keys at a time (8; 4 for d >= 128; 2 for d >= 256), with an online softmax (running max m,
 * running sum l, output accumulator rescaled when m grows). Per group every query row takes
 * its logits, then its weights are applied to the same V rows, so K and V are each read from
 * memory once per call whatever the number of query rows, and nothing of size n is written
 * except the logits the caller asked for.
 *
 * Memory speed comes from the order of the reads, measured on the 2-core EPYC dev VM
 * (kernels/bench_attn.c): the hardware prefetcher keeps up best when K and V are fetched
 * as two interleaved streams in bursts of ~2 KiB; at the start of each group its K and V
 * rows are requested row by row, alternating (4 KiB bursts, i.e. groups of 8 at d = 128
 * or of 4 at d = 256, ran at 0.5-0.65 the speed). Software prefetch further ahead, of the next
 * group or spread over the current one, made every variant slower, for strided rows and
 * for the random rows of a gather alike, so there is none.
 *   attn_dense:  G query rows over n strided rows.
 *   attn_dense_heads: the Hq query rows of a layer over n token rows holding its Hkv heads;
 *                per group the whole token rows are fetched, then each head's rows run.
 *   attn_gather: one row per head over its own set, or G rows over one shared set; the
 *                logits go to `work` so the probabilities come out exactly normalised.
 *   attn_causal: blocks of query positions (x the G heads of a KV head) over the keys up
 *                to the block's end, masked on the diagonal; col_mass recomputes the logits
 *                once the final log-sum-exp of every row is known. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attn.h"
#include "rb.h"

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

static inline float hsum8(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax8(__m256 a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
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
static inline __m256 qk8(const float *q, const float *const *k, int nk, int d) {
    if (nk < 8) {
        float t[8];
        for (int i = 0; i < 8; i++) t[i] = i < nk ? dot1(q, k[i], d) : -INFINITY;
        return _mm256_loadu_ps(t);
    }
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
        for (int i = 0; i < 8; i++) {
            t[i] = 0;
            for (int c = d8; c < d; c++) t[i] += q[c] * k[i][c];
        }
        dots = _mm256_add_ps(dots, _mm256_loadu_ps(t));
    }
    return dots;
}

/* q . k_i for the nk <= 4 keys k[0..nk) in lanes 0..3; lanes >= nk are -inf. */
static inline __m256 qk4(const float *q, const float *const *k, int nk, int d) {
    if (nk < 4) return qk8(q, k, nk, d);
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
        for (int i = 0; i < 4; i++) {
            r[i] = 0;
            for (int c = d8; c < d; c++) r[i] += q[c] * k[i][c];
        }
        s = _mm_add_ps(s, _mm_loadu_ps(r));
    }
    return _mm256_insertf128_ps(_mm256_set1_ps(-INFINITY), s, 0);
}

/* q . k_i for the nk <= 2 keys k[0..nk) in lanes 0..1; lanes >= nk are -inf. Two
 * accumulators per key (even and odd chunks) keep four FMA chains in flight. */
static inline __m256 qk2(const float *q, const float *const *k, int nk, int d) {
    if (nk < 2) return qk8(q, k, nk, d);
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

static inline void prefetch_row(const float *row, int d) {
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

/* Online-softmax state of nq query rows (scale already folded into the queries). */
typedef struct {
    int nq, d;
    const float *q; /* [nq, d] scaled query rows */
    float *m;       /* [nq] running max of the logits seen */
    double *l;      /* [nq] running sum of exp(logit - m); double, so its rounding does not
                     * grow with n (one hsum of 8 floats per group is all the float error) */
    float *acc;     /* [nq, d] running sum of exp(logit - m) * v */
    float *p;       /* [nq, 8] weights of the current group */
} online;

static void online_reset(online *o) {
    for (int r = 0; r < o->nq; r++) o->m[r] = -INFINITY;
    for (int r = 0; r < o->nq; r++) o->l[r] = 0;
    memset(o->acc, 0, sizeof(float) * (size_t)o->nq * o->d);
}

/* Keys per group for rows of d floats: about 2 KiB of K and 2 KiB of V (see the top of the
 * file), at least 2. */
static int group_keys(int d) { return d >= 256 ? 2 : d >= 128 ? 4 : 8; }

/* Attend keys j0 .. j1-1 of src in groups of gk (8, 4 or 2) keys. pos (may be NULL): row r
 * sees only keys j <= pos[r] (causal mask). logit_rows (may be NULL): row r's logit of key j
 * is stored at logit_rows[r][j]. */
static void online_run(online *o, const row_src *src, int j0, int j1, const int *pos,
                       float *const *logit_rows, int gk) {
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
            int r0 = h * rph, r1 = r0 + rph;
            for (int r = r0; r < r1; r++) {
                const float *q = o->q + (size_t)r * d;
                __m256 s = gk == 2   ? qk2(q, kr, nk, d)
                           : gk == 4 ? qk4(q, kr, nk, d)
                                     : qk8(q, kr, nk, d);
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
                if (pos && j + nk - 1 > pos[r])
                    s = mask_from(s, pos[r] - j + 1 < 0 ? 0 : pos[r] - j + 1);
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
                _mm256_storeu_ps(o->p + r * 8, p);
            }
            const float *pr = o->p + (size_t)r0 * 8;
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

/* out rows (may be NULL) = acc / l; lse (may be NULL) = m + log l. A row that saw no key
 * gets out 0 and lse -inf, as the reference's empty sums do. */
static void online_finish(const online *o, float *const *out_rows, float *lse) {
    for (int r = 0; r < o->nq; r++) {
        double l = o->l[r];
        if (lse) lse[r] = l > 0 ? (float)(o->m[r] + log(l)) : -INFINITY;
        if (out_rows) {
            float inv = l > 0 ? (float)(1.0 / l) : 0.0f;
            const float *a = o->acc + (size_t)r * o->d;
            for (int c = 0; c < o->d; c++) out_rows[r][c] = a[c] * inv;
        }
    }
}

/* Scratch of an online state for up to nq rows: one allocation, carved up. */
typedef struct {
    online o;
    void *mem;
} online_buf;

static void online_buf_init(online_buf *b, int nq, int d) {
    size_t floats = (size_t)nq * (1 + 8 + 2 * (size_t)d);
    b->mem = rb_malloc(sizeof(double) * (size_t)nq + sizeof(float) * floats);
    b->o.nq = nq, b->o.d = d;
    b->o.l = (double *)b->mem; /* first: malloc aligns it for double */
    b->o.m = (float *)(b->o.l + nq);
    b->o.p = b->o.m + nq;
    b->o.acc = b->o.p + (size_t)nq * 8;
    b->o.q = b->o.acc + (size_t)nq * d;
}

/* Set the query rows (copied, multiplied by scale). Scaling q first rounds differently from
 * scaling q.k by at most one rounding of each q element (2^-24 relative), well inside the
 * tolerance of tests/test_attn.c, and saves a multiply per logit. */
static void online_load_queries(online_buf *b, int nq, const float *const *q, float scale) {
    int d = b->o.d;
    float *qs = (float *)b->o.q;
    b->o.nq = nq;
    for (int r = 0; r < nq; r++)
        for (int c = 0; c < d; c++) qs[(size_t)r * d + c] = scale * q[r][c];
}

void attn_dense(const float *q, int G, const float *k, const float *v, int n, int d, int ld,
                float scale, float *logits, float *lse, float *out, float *work) {
    (void)work; /* the online softmax needs only O(G d) of its own */
    RB_CHECK(G >= 0 && n >= 0 && d > 0 && ld >= d);
    if (G == 0) return;
    online_buf b;
    online_buf_init(&b, G, d);
    const float *qrow[G];
    float *lrow[G], *orow[G];
    for (int g = 0; g < G; g++) {
        qrow[g] = q + (size_t)g * d;
        lrow[g] = logits ? logits + (size_t)g * n : NULL;
        orow[g] = out ? out + (size_t)g * d : NULL;
    }
    online_load_queries(&b, G, qrow, scale);
    online_reset(&b.o);
    row_src src = {k, v, (size_t)ld, NULL, NULL, 1, G};
    online_run(&b.o, &src, 0, n, NULL, logits ? lrow : NULL, group_keys(d));
    online_finish(&b.o, out ? orow : NULL, lse);
    free(b.mem);
}

void attn_dense_heads(const float *q, int Hq, int Hkv, const float *k, const float *v, int n,
                      int d, int ld, float scale, float *logits, float *lse, float *out) {
    RB_CHECK(Hkv > 0 && Hq >= 0 && Hq % Hkv == 0 && n >= 0 && d > 0 && ld >= Hkv * d);
    if (Hq == 0) return;
    online_buf b;
    online_buf_init(&b, Hq, d);
    const float *qrow[Hq];
    float *lrow[Hq], *orow[Hq];
    for (int r = 0; r < Hq; r++) {
        qrow[r] = q + (size_t)r * d;
        lrow[r] = logits ? logits + (size_t)r * n : NULL;
        orow[r] = out ? out + (size_t)r * d : NULL;
    }
    online_load_queries(&b, Hq, qrow, scale);
    online_reset(&b.o);
    row_src src = {k, v, (size_t)ld, NULL, NULL, Hkv, Hq / Hkv};
    /* a group's burst spans whole token rows of Hkv * d floats */
    online_run(&b.o, &src, 0, n, NULL, logits ? lrow : NULL, group_keys(Hkv * d));
    online_finish(&b.o, out ? orow : NULL, lse);
    free(b.mem);
}

/* One gather problem: nq query rows over cnt pointer rows; logits to logit_rows (each row
 * has room for cnt floats), then probabilities exp(logit - lse) into prob_rows if wanted. */
static void gather_run(online_buf *b, int nq, const float *const *qrow, const float *const *kr,
                       const float *const *vr, int cnt, float scale, float *const *logit_rows,
                       float *const *prob_rows, float *const *out_rows) {
    online *o = &b->o;
    online_load_queries(b, nq, qrow, scale);
    online_reset(o);
    row_src src = {NULL, NULL, 0, kr, vr, 1, nq};
    online_run(o, &src, 0, cnt, NULL, logit_rows, group_keys(o->d));
    float lse[nq];
    online_finish(o, out_rows, lse);
    if (!prob_rows) return;
    for (int r = 0; r < nq; r++) {
        const float *s = logit_rows[r];
        float *p = prob_rows[r];
        __m256 vl = _mm256_set1_ps(lse[r]);
        int j = 0;
        for (; j + 8 <= cnt; j += 8)
            _mm256_storeu_ps(p + j, exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vl)));
        for (; j < cnt; j++) p[j] = expf(s[j] - lse[r]);
    }
}

void attn_gather(const float *q, int G, const float *const *k_rows, const float *const *v_rows,
                 const int *n, int stride, int shared, int d, float scale, float *probs, float *out,
                 float *work) {
    RB_CHECK(G >= 0 && stride >= 0 && d > 0 && work);
    if (G == 0) return;
    online_buf b;
    if (shared) {
        int cnt = n[0];
        RB_CHECK(cnt >= 0 && cnt <= stride);
        online_buf_init(&b, G, d);
        const float *qrow[G];
        float *lrow[G], *prow[G], *orow[G];
        for (int g = 0; g < G; g++) {
            qrow[g] = q + (size_t)g * d;
            lrow[g] = work + (size_t)g * stride;
            prow[g] = probs ? probs + (size_t)g * stride : NULL;
            orow[g] = out + (size_t)g * d;
        }
        gather_run(&b, G, qrow, k_rows, v_rows, cnt, scale, lrow, probs ? prow : NULL, orow);
    } else {
        online_buf_init(&b, 1, d);
        for (int g = 0; g < G; g++) {
            int cnt = n[g];
            RB_CHECK(cnt >= 0 && cnt <= stride);
            const float *qrow[1] = {q + (size_t)g * d};
            float *lrow[1] = {work + (size_t)g * stride};
            float *prow[1] = {probs ? probs + (size_t)g * stride : NULL};
            float *orow[1] = {out + (size_t)g * d};
            gather_run(&b, 1, qrow, k_rows + (size_t)g * stride, v_rows + (size_t)g * stride, cnt,
                       scale, lrow, probs ? prow : NULL, orow);
        }
    }
    free(b.mem);
}

/* Query positions per block of attn_causal: with the G heads of a KV head that makes up to
 * 16 * G query rows sharing every K/V row read. */
enum { CAUSAL_QPOS = 16 };

void attn_causal(const float *q, const float *k, const float *v, int n, int Hq, int Hkv, int d,
                 float scale, float *out, float *col_mass) {
    RB_CHECK(n >= 0 && Hkv > 0 && Hq % Hkv == 0 && d > 0);
    int G = Hq / Hkv, nq_max = CAUSAL_QPOS * G;
    size_t ldq = (size_t)Hq * d, ldk = (size_t)Hkv * d;
    if (col_mass) memset(col_mass, 0, sizeof(float) * (size_t)Hkv * n);
    if (n == 0 || G == 0) return;
    online_buf b;
    online_buf_init(&b, nq_max, d);
    const float **qrow = rb_malloc(sizeof(*qrow) * (size_t)nq_max);
    float **orow = rb_malloc(sizeof(*orow) * (size_t)nq_max);
    int *pos = rb_malloc(sizeof(int) * (size_t)nq_max); /* [nq] query position of row */
    float *lse = rb_malloc(sizeof(float) * (size_t)nq_max);
    for (int kh = 0; kh < Hkv; kh++) {
        row_src src = {k + (size_t)kh * d, v + (size_t)kh * d, ldk, NULL, NULL, 1, 0};
        for (int i0 = 0; i0 < n; i0 += CAUSAL_QPOS) {
            int i1 = i0 + CAUSAL_QPOS < n ? i0 + CAUSAL_QPOS : n, nq = (i1 - i0) * G;
            for (int i = i0; i < i1; i++)
                for (int g = 0; g < G; g++) {
                    int r = (i - i0) * G + g;
                    size_t off = (size_t)i * ldq + (size_t)(kh * G + g) * d;
                    qrow[r] = q + off, orow[r] = out + off, pos[r] = i;
                }
            online_load_queries(&b, nq, qrow, scale);
            online_reset(&b.o);
            src.rows_per_head = nq;
            /* keys before the block are seen by every row; the rest are masked */
            int j_diag = i0 & ~7; /* a multiple of every group size */
            /* compute-bound here (every K/V row serves up to 16 G query rows from cache):
             * the largest group */
            online_run(&b.o, &src, 0, j_diag, NULL, NULL, 8);
            online_run(&b.o, &src, j_diag, i1, pos, NULL, 8);
            online_finish(&b.o, orow, lse);
            if (!col_mass) continue;
            /* Second pass: the probabilities need each row's final lse. */
            float *cm = col_mass + (size_t)kh * n;
            const float *kr[8];
            for (int j = 0; j < i1; j += 8) {
                int nk = i1 - j < 8 ? i1 - j : 8;
                for (int t = 0; t < nk; t++) kr[t] = src.k + (size_t)(j + t) * ldk;
                __m256 sum = _mm256_setzero_ps();
                for (int r = 0; r < nq; r++) {
                    __m256 s = qk8(b.o.q + (size_t)r * d, kr, nk, d);
                    if (j + 7 > pos[r]) s = mask_from(s, pos[r] - j + 1 < 0 ? 0 : pos[r] - j + 1);
                    sum = _mm256_add_ps(sum, exp8(_mm256_sub_ps(s, _mm256_set1_ps(lse[r]))));
                }
                float t[8];
                _mm256_storeu_ps(t, sum);
                for (int x = 0; x < nk; x++) cm[j + x] += t[x];
            }
        }
    }
    free(b.mem);
    free(qrow);
    free(orow);
    free(pos);
    free(lse);
}

void attn_exp_shift(const float *x, float shift, int n, float *out) {
    __m256 s = _mm256_set1_ps(shift);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
    for (; i < n; i++) out[i] = expf(x[i] - shift);
}
