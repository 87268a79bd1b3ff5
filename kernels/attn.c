/* attn.c: fast single-threaded CPU attention kernels (contract in attn.h), AVX2/FMA, on
 * the two online-softmax engines of attn_online.h:
 *   attn_dense:  G query rows over n strided rows                       (online_stream)
 *   attn_dense_heads: the Hq query rows of a layer over n token rows holding its Hkv heads;
 *                per group the whole token rows are fetched, then each head's rows run
 *                                                                        (online_stream)
 *   attn_gather: one row per head over its own set, or G rows over one shared set; the
 *                logits go to `work` so the probabilities come out exactly normalised
 *                                                                        (online_blocked)
 *   attn_causal: blocks of query positions (x the G heads of a KV head) over the keys up
 *                to the block's end, masked on the diagonal; col_mass recomputes the logits
 *                once the final log-sum-exp of every row is known       (online_blocked)
 *   attn_weighted_rows: weights times gathered value rows   (online_blocked's weighted sum)
 * The dense kernels read long contexts from memory, the gather and causal ones rows that a
 * decode step or a prompt keeps in cache: each uses the engine measured faster for that. */
#include <math.h>
#include <string.h>

#include "attn.h"
#include "attn_online.h"
#include "rb.h"

static void online_reset(online *o) {
    for (int r = 0; r < o->nq; r++) o->m[r] = -INFINITY;
    for (int r = 0; r < o->nq; r++) o->l[r] = 0;
    memset(o->acc, 0, sizeof(float) * (size_t)o->nq * o->d);
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
    size_t floats = (size_t)nq * (1 + ONLINE_BLOCK_MAX + 2 * (size_t)d);
    b->mem = rb_malloc(sizeof(double) * (size_t)nq + sizeof(float) * floats);
    b->o.nq = nq, b->o.d = d;
    b->o.l = (double *)b->mem; /* first: malloc aligns it for double */
    b->o.m = (float *)(b->o.l + nq);
    b->o.s = b->o.m + nq;
    b->o.acc = b->o.s + (size_t)nq * ONLINE_BLOCK_MAX;
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

/* One KV head is a layer of one KV head. */
void attn_dense(const float *q, int G, const float *k, const float *v, int n, int d, int ld,
                float scale, float *logits, float *lse, float *out, float *work) {
    (void)work; /* the online softmax needs only O(G d) of its own */
    RB_CHECK(G >= 0 && n >= 0 && d > 0 && ld >= d);
    attn_dense_heads(q, G, 1, k, v, n, d, ld, scale, logits, lse, out);
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
    /* a group spans whole token rows of Hkv * d floats */
    online_stream(&b.o, &src, 0, n, logits ? lrow : NULL);
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
    online_blocked(o, &src, 0, cnt, NULL, logit_rows);
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

void attn_weighted_rows(const float *p, int G, int ldp, const float *const *v_rows, int n,
                        int d, float *out) {
    RB_CHECK(G >= 0 && n >= 0 && d > 0 && (n == 0 || ldp >= n));
    memset(out, 0, sizeof(float) * (size_t)G * d);
    online_weighted(p, ldp, G, n, v_rows, d, out);
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
            online_blocked(&b.o, &src, 0, i0, NULL, NULL);
            online_blocked(&b.o, &src, i0, i1, pos, NULL);
            online_finish(&b.o, orow, lse);
            if (!col_mass) continue;
            /* Second pass: the probabilities need each row's final lse. */
            float *cm = col_mass + (size_t)kh * n;
            const float *kr[8];
            for (int j = 0; j < i1; j += 8) {
                int nk = i1 - j < 8 ? i1 - j : 8;
                for (int t = 0; t < 8; t++) kr[t] = src.k + (size_t)(j + (t < nk ? t : nk - 1)) * ldk;
                __m256 sum = _mm256_setzero_ps();
                for (int r = 0; r < nq; r++) {
                    __m256 s = qk8(b.o.q + (size_t)r * d, kr, d);
                    int vis = pos[r] - j + 1 < nk ? pos[r] - j + 1 : nk;
                    if (vis < 8) s = mask_from(s, vis < 0 ? 0 : vis);
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
