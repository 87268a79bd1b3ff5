/* attn.c: fast single-threaded CPU attention kernels (contract in attn.h), AVX2/FMA.
 *
 * One engine serves all three kernels: a set of query rows attends key/value rows given by
 * pointers, one block of keys at a time, with an online softmax (running max m, running sum
 * l, output accumulator rescaled when m grows). K and V are each read from memory once per
 * call whatever the number of query rows, and nothing of size n is written except the
 * logits the caller asked for, so the dense pass runs at memory speed.
 *   attn_dense:  G query rows over n strided rows.
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

/* Keys per block: the block's K rows stay in L1/L2 while every query row passes over them,
 * and the logits scratch is [nq, BLK_MAX]. Kept a multiple of 8 (vector width). */
enum { BLK_MAX = 64 };

static int block_keys(int d) { return d <= 128 ? 64 : 32; }

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
    return _mm256_add_ps(_mm256_permute2f128_ps(t0, t2, 0x20), _mm256_permute2f128_ps(t0, t2, 0x31));
}

static inline float dot1(const float *a, const float *b, int d) {
    __m256 acc = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= d; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), acc);
    float s = hsum8(acc);
    for (; c < d; c++) s += a[c] * b[c];
    return s;
}

/* s[r * ss + j] = scale * q_r . k_j for r < nq, j < nb; lanes nb .. round8(nb) of each row
 * are set to -inf so whole vectors can be exponentiated. */
static void qk_block(const float *const *qr, int nq, const float *const *kr, int nb, int d,
                     float scale, float *s, int ss) {
    int d8 = d & ~7;
    __m256 vscale = _mm256_set1_ps(scale);
    for (int r = 0; r < nq; r++) {
        const float *q = qr[r];
        float *sr = s + (size_t)r * ss;
        int j = 0;
        for (; j + 8 <= nb; j += 8) {
            const float *const *k = kr + j;
            __m256 a[8];
            for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
            for (int c = 0; c < d8; c += 8) {
                __m256 qv = _mm256_loadu_ps(q + c);
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
            _mm256_storeu_ps(sr + j, _mm256_mul_ps(dots, vscale));
        }
        for (; j < nb; j++) sr[j] = scale * dot1(q, kr[j], d);
        for (; j & 7; j++) sr[j] = -INFINITY;
    }
}

/* acc[r] += sum_j p[r * ps + j] * v_j for the RN rows r0 .. r0+RN-1, over the d floats.
 * Columns are walked in chunks so the RN accumulators stay in registers across the block. */
static inline __attribute__((always_inline)) void pv_rows(const float *p, int ps, int RN,
                                                          const float *const *vr, int nb, int d,
                                                          float *acc) {
    int c = 0;
    for (; c + 16 <= d; c += 16) {
        __m256 a0[4], a1[4];
        for (int r = 0; r < RN; r++) {
            a0[r] = _mm256_loadu_ps(acc + (size_t)r * d + c);
            a1[r] = _mm256_loadu_ps(acc + (size_t)r * d + c + 8);
        }
        for (int j = 0; j < nb; j++) {
            __m256 v0 = _mm256_loadu_ps(vr[j] + c), v1 = _mm256_loadu_ps(vr[j] + c + 8);
            for (int r = 0; r < RN; r++) {
                __m256 pr = _mm256_broadcast_ss(p + (size_t)r * ps + j);
                a0[r] = _mm256_fmadd_ps(pr, v0, a0[r]);
                a1[r] = _mm256_fmadd_ps(pr, v1, a1[r]);
            }
        }
        for (int r = 0; r < RN; r++) {
            _mm256_storeu_ps(acc + (size_t)r * d + c, a0[r]);
            _mm256_storeu_ps(acc + (size_t)r * d + c + 8, a1[r]);
        }
    }
    for (; c + 8 <= d; c += 8) {
        __m256 a0[4];
        for (int r = 0; r < RN; r++) a0[r] = _mm256_loadu_ps(acc + (size_t)r * d + c);
        for (int j = 0; j < nb; j++) {
            __m256 v0 = _mm256_loadu_ps(vr[j] + c);
            for (int r = 0; r < RN; r++)
                a0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + (size_t)r * ps + j), v0, a0[r]);
        }
        for (int r = 0; r < RN; r++) _mm256_storeu_ps(acc + (size_t)r * d + c, a0[r]);
    }
    for (; c < d; c++)
        for (int r = 0; r < RN; r++) {
            float t = acc[(size_t)r * d + c];
            for (int j = 0; j < nb; j++) t += p[(size_t)r * ps + j] * vr[j][c];
            acc[(size_t)r * d + c] = t;
        }
}

/* acc [nq, d] += p [nq, ps] . V [nb rows]; query rows four at a time (the constant RN lets
 * the compiler keep the accumulators in registers). */
static void pv_block(const float *p, int ps, int nq, const float *const *vr, int nb, int d,
                     float *acc) {
    int r = 0;
    for (; r + 4 <= nq; r += 4) pv_rows(p + (size_t)r * ps, ps, 4, vr, nb, d, acc + (size_t)r * d);
    switch (nq - r) {
    case 3: pv_rows(p + (size_t)r * ps, ps, 3, vr, nb, d, acc + (size_t)r * d); break;
    case 2: pv_rows(p + (size_t)r * ps, ps, 2, vr, nb, d, acc + (size_t)r * d); break;
    case 1: pv_rows(p + (size_t)r * ps, ps, 1, vr, nb, d, acc + (size_t)r * d); break;
    default: break;
    }
}

/* Online-softmax state of nq query rows. */
typedef struct {
    int nq, d;
    const float *const *q; /* [nq] query rows of d floats */
    float *m;              /* [nq] running max of the logits seen */
    float *l;              /* [nq] running sum of exp(logit - m) */
    float *acc;            /* [nq, d] running sum of exp(logit - m) * v */
    float *s;              /* [nq, BLK_MAX] logits, then weights, of the current block */
} online;

static void online_reset(online *o) {
    for (int r = 0; r < o->nq; r++) o->m[r] = -INFINITY, o->l[r] = 0;
    memset(o->acc, 0, sizeof(float) * (size_t)o->nq * o->d);
}

/* Attend one block of nb <= BLK_MAX keys. valid (may be NULL): row r sees only the first
 * valid[r] keys of the block (causal mask). logit_rows (may be NULL): row r's logits of the
 * block are copied to logit_rows[r] + logit_off. */
static void online_block(online *o, const float *const *kr, const float *const *vr, int nb,
                         const int *valid, float *const *logit_rows, size_t logit_off) {
    int nq = o->nq, nb8 = (nb + 7) & ~7;
    qk_block(o->q, nq, kr, nb, o->d, 1.0f, o->s, BLK_MAX);
    for (int r = 0; r < nq; r++) {
        float *sr = o->s + (size_t)r * BLK_MAX;
        if (logit_rows) memcpy(logit_rows[r] + logit_off, sr, sizeof(float) * (size_t)nb);
        if (valid)
            for (int j = valid[r] < 0 ? 0 : valid[r]; j < nb; j++) sr[j] = -INFINITY;
        __m256 vm = _mm256_set1_ps(-INFINITY);
        for (int j = 0; j < nb8; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(sr + j));
        float bmax = hmax8(vm);
        if (bmax == -INFINITY) { /* whole row masked: its weights are all 0 */
            memset(sr, 0, sizeof(float) * (size_t)nb);
            continue;
        }
        if (bmax > o->m[r]) {
            /* exp(-inf) = 0 on the first block: acc and l are 0 anyway. */
            float alpha = expf(o->m[r] - bmax);
            if (alpha != 1.0f) {
                o->l[r] *= alpha;
                float *a = o->acc + (size_t)r * o->d;
                for (int c = 0; c < o->d; c++) a[c] *= alpha;
            }
            o->m[r] = bmax;
        }
        __m256 vmax = _mm256_set1_ps(o->m[r]), vsum = _mm256_setzero_ps();
        for (int j = 0; j < nb8; j += 8) {
            __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(sr + j), vmax));
            _mm256_storeu_ps(sr + j, p);
            vsum = _mm256_add_ps(vsum, p);
        }
        o->l[r] += hsum8(vsum);
    }
    pv_block(o->s, BLK_MAX, nq, vr, nb, o->d, o->acc);
}

/* out rows (may be NULL) = acc / l; lse (may be NULL) = m + log l. A row that saw no key
 * gets out 0 and lse -inf, as the reference's empty sums do. */
static void online_finish(const online *o, float *const *out_rows, float *lse) {
    for (int r = 0; r < o->nq; r++) {
        float l = o->l[r];
        if (lse) lse[r] = l > 0 ? o->m[r] + logf(l) : -INFINITY;
        if (out_rows) {
            float inv = l > 0 ? 1.0f / l : 0.0f;
            const float *a = o->acc + (size_t)r * o->d;
            for (int c = 0; c < o->d; c++) out_rows[r][c] = a[c] * inv;
        }
    }
}

/* Scratch for an online state of nq rows: one allocation, carved up. The scale is folded
 * into the query rows (q' = scale * q) so logits need no extra multiply. */
typedef struct {
    online o;
    float *mem;
    float *qs;        /* [nq, d] scaled queries */
    const float **qp; /* [nq] */
} online_buf;

static void online_buf_init(online_buf *b, int nq, int d) {
    size_t floats = (size_t)nq * (3 + BLK_MAX + 2 * (size_t)d);
    b->mem = rb_malloc(sizeof(float) * floats);
    b->qp = rb_malloc(sizeof(*b->qp) * (size_t)(nq > 0 ? nq : 1));
    b->o.nq = nq, b->o.d = d;
    b->o.m = b->mem;
    b->o.l = b->o.m + nq;
    b->o.s = b->o.l + nq;
    b->o.acc = b->o.s + (size_t)nq * BLK_MAX;
    b->qs = b->o.acc + (size_t)nq * d;
    for (int r = 0; r < nq; r++) b->qp[r] = b->qs + (size_t)r * d;
    b->o.q = b->qp;
}

static void online_buf_free(online_buf *b) {
    free(b->mem);
    free(b->qp);
}

/* Copy query rows into the scratch, multiplied by scale. Scaling q first rounds
 * differently from scaling q.k by at most one rounding of each q element (2^-24 relative),
 * well inside the tolerance of tests/test_attn.c. */
static void online_load_queries(online_buf *b, const float *const *q, float scale) {
    int d = b->o.d;
    for (int r = 0; r < b->o.nq; r++)
        for (int c = 0; c < d; c++) b->qs[(size_t)r * d + c] = scale * q[r][c];
}

/* Row pointers of `nb` strided rows starting at row j0. */
static void strided_rows(const float *base, size_t ld, int j0, int nb, const float **rows) {
    for (int i = 0; i < nb; i++) rows[i] = base + (size_t)(j0 + i) * ld;
}

void attn_dense(const float *q, int G, const float *k, const float *v, int n, int d, int ld,
                float scale, float *logits, float *lse, float *out, float *work) {
    (void)work; /* the online softmax needs only [G, BLK_MAX] of its own */
    RB_CHECK(G >= 0 && n >= 0 && d > 0 && ld >= d);
    online_buf b;
    online_buf_init(&b, G, d);
    const float *qrow[G > 0 ? G : 1];
    float *lrow[G > 0 ? G : 1], *orow[G > 0 ? G : 1];
    for (int g = 0; g < G; g++) {
        qrow[g] = q + (size_t)g * d;
        if (logits) lrow[g] = logits + (size_t)g * n;
        if (out) orow[g] = out + (size_t)g * d;
    }
    online_load_queries(&b, qrow, scale);
    online_reset(&b.o);
    const float *kr[BLK_MAX], *vr[BLK_MAX];
    int blk = block_keys(d);
    for (int j0 = 0; j0 < n; j0 += blk) {
        int nb = n - j0 < blk ? n - j0 : blk;
        strided_rows(k, (size_t)ld, j0, nb, kr);
        strided_rows(v, (size_t)ld, j0, nb, vr);
        online_block(&b.o, kr, vr, nb, NULL, logits ? lrow : NULL, (size_t)j0);
    }
    online_finish(&b.o, out ? orow : NULL, lse);
    online_buf_free(&b);
}

/* One gather problem: nq query rows over cnt pointer rows; logits to logit_rows (each row
 * has room for cnt floats), then probabilities exp(logit - lse) into prob_rows if wanted. */
static void gather_run(online_buf *b, const float *const *qrow, const float *const *kr,
                       const float *const *vr, int cnt, float scale, float *const *logit_rows,
                       float *const *prob_rows, float *const *out_rows) {
    online *o = &b->o;
    online_load_queries(b, qrow, scale);
    online_reset(o);
    int blk = block_keys(o->d);
    for (int j0 = 0; j0 < cnt; j0 += blk) {
        int nb = cnt - j0 < blk ? cnt - j0 : blk;
        online_block(o, kr + j0, vr + j0, nb, NULL, logit_rows, (size_t)j0);
    }
    float lse[o->nq > 0 ? o->nq : 1];
    online_finish(o, out_rows, lse);
    if (!prob_rows) return;
    for (int r = 0; r < o->nq; r++) {
        const float *s = logit_rows[r];
        float *p = prob_rows[r];
        __m256 vl = _mm256_set1_ps(lse[r]);
        int j = 0;
        for (; j + 8 <= cnt; j += 8) _mm256_storeu_ps(p + j, exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vl)));
        for (; j < cnt; j++) p[j] = expf(s[j] - lse[r]);
    }
}

void attn_gather(const float *q, int G, const float *const *k_rows, const float *const *v_rows,
                 const int *n, int stride, int shared, int d, float scale, float *probs,
                 float *out, float *work) {
    RB_CHECK(G >= 0 && stride >= 0 && d > 0 && work);
    if (G == 0) return;
    if (shared) {
        int cnt = n[0];
        RB_CHECK(cnt >= 0 && cnt <= stride);
        online_buf b;
        online_buf_init(&b, G, d);
        const float *qrow[G];
        float *lrow[G], *prow[G], *orow[G];
        for (int g = 0; g < G; g++) {
            qrow[g] = q + (size_t)g * d;
            lrow[g] = work + (size_t)g * stride;
            prow[g] = probs ? probs + (size_t)g * stride : NULL;
            orow[g] = out + (size_t)g * d;
        }
        gather_run(&b, qrow, k_rows, v_rows, cnt, scale, lrow, probs ? prow : NULL, orow);
        online_buf_free(&b);
        return;
    }
    online_buf b;
    online_buf_init(&b, 1, d);
    for (int g = 0; g < G; g++) {
        int cnt = n[g];
        RB_CHECK(cnt >= 0 && cnt <= stride);
        const float *qrow[1] = {q + (size_t)g * d};
        float *lrow[1] = {work + (size_t)g * stride};
        float *prow[1] = {probs ? probs + (size_t)g * stride : NULL};
        float *orow[1] = {out + (size_t)g * d};
        gather_run(&b, qrow, k_rows + (size_t)g * stride, v_rows + (size_t)g * stride, cnt, scale,
                   lrow, probs ? prow : NULL, orow);
    }
    online_buf_free(&b);
}

/* Query positions per block of attn_causal: with the G heads of a KV head that makes up to
 * 16 * G query rows sharing every K/V block read. */
enum { CAUSAL_QPOS = 16 };

void attn_causal(const float *q, const float *k, const float *v, int n, int Hq, int Hkv, int d,
                 float scale, float *out, float *col_mass) {
    RB_CHECK(n >= 0 && Hkv > 0 && Hq % Hkv == 0 && d > 0);
    int G = Hq / Hkv, nq_max = CAUSAL_QPOS * G, blk = block_keys(d);
    size_t ldq = (size_t)Hq * d, ldk = (size_t)Hkv * d;
    if (col_mass) memset(col_mass, 0, sizeof(float) * (size_t)Hkv * n);
    if (n == 0 || G == 0) return;
    online_buf b;
    online_buf_init(&b, nq_max, d);
    const float **qrow = rb_malloc(sizeof(*qrow) * (size_t)nq_max);
    float **orow = rb_malloc(sizeof(*orow) * (size_t)nq_max);
    int *pos = rb_malloc(sizeof(int) * (size_t)nq_max);   /* [nq] query position of row */
    int *valid = rb_malloc(sizeof(int) * (size_t)nq_max); /* [nq] keys seen in this block */
    float *lse = rb_malloc(sizeof(float) * (size_t)nq_max);
    const float *kr[BLK_MAX], *vr[BLK_MAX];
    for (int kh = 0; kh < Hkv; kh++) {
        const float *kh_k = k + (size_t)kh * d, *kh_v = v + (size_t)kh * d;
        for (int i0 = 0; i0 < n; i0 += CAUSAL_QPOS) {
            int i1 = i0 + CAUSAL_QPOS < n ? i0 + CAUSAL_QPOS : n, nq = (i1 - i0) * G;
            for (int i = i0; i < i1; i++)
                for (int g = 0; g < G; g++) {
                    int r = (i - i0) * G + g;
                    size_t off = (size_t)i * ldq + (size_t)(kh * G + g) * d;
                    qrow[r] = q + off, orow[r] = out + off, pos[r] = i;
                }
            b.o.nq = nq;
            online_load_queries(&b, qrow, scale);
            online_reset(&b.o);
            for (int j0 = 0; j0 < i1; j0 += blk) {
                int nb = i1 - j0 < blk ? i1 - j0 : blk;
                strided_rows(kh_k, ldk, j0, nb, kr);
                strided_rows(kh_v, ldk, j0, nb, vr);
                int masked = j0 + nb > i0 + 1; /* some row of the block has a key after it */
                if (masked)
                    for (int r = 0; r < nq; r++) valid[r] = pos[r] - j0 + 1 < nb ? pos[r] - j0 + 1 : nb;
                online_block(&b.o, kr, vr, nb, masked ? valid : NULL, NULL, 0);
            }
            online_finish(&b.o, orow, lse);
            if (!col_mass) continue;
            /* Second pass: the probabilities need each row's final lse. */
            float *cm = col_mass + (size_t)kh * n;
            for (int j0 = 0; j0 < i1; j0 += blk) {
                int nb = i1 - j0 < blk ? i1 - j0 : blk;
                strided_rows(kh_k, ldk, j0, nb, kr);
                qk_block(b.o.q, nq, kr, nb, d, 1.0f, b.o.s, BLK_MAX);
                for (int r = 0; r < nq; r++) {
                    int vis = pos[r] - j0 + 1 < nb ? pos[r] - j0 + 1 : nb;
                    const float *sr = b.o.s + (size_t)r * BLK_MAX;
                    for (int j = 0; j < vis; j++) cm[j0 + j] += expf(sr[j] - lse[r]);
                }
            }
        }
    }
    b.o.nq = nq_max;
    online_buf_free(&b);
    free(qrow);
    free(orow);
    free(pos);
    free(valid);
    free(lse);
}
