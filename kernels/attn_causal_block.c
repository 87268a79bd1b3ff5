/* attn_causal_block.c: a chunk of decode steps' dense reference as one causal block
 * (attn_causal_block.h): the reference, and the fast version on OpenBLAS sgemm.
 *
 * Why sgemm and not a kernel of our own: the products are [G*W, d] x [d, n] and
 * [G*W, n] x [n, d] with n in the thousands, where OpenBLAS runs near the machine's FMA
 * peak; the online kernels of attn_block.c reach about a tenth of it on these shapes
 * (they read every key once per step). The softmax between the products is done a row at
 * a time, so a row's logits are read back from L1/L2, not from memory. */
#include "attn_causal_block.h"

#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "attn_online.h"
#include "rb.h"

#ifndef RB_NO_BLAS
#include <cblas.h>
#else
/* Builds without OpenBLAS (kernels/cuda/gpu_check.sh on a machine that has only the CUDA
 * toolkit): the two products as plain loops, correct and slow. Only the row-major forms
 * this file calls: C [m, n] = alpha A [m, k] B^T (B [n, k], transB) or A B (B [k, n]). */
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
static void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb, float beta, float *c,
                        int ldc) {
    (void)order, (void)ta, (void)beta; /* always row-major, A not transposed, beta 0 */
    for (int i = 0; i < m; i++) {
        const float *ai = a + (size_t)i * lda;
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int p = 0; p < k; p++)
                acc += ai[p] * (tb == CblasTrans ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j]);
            ci[j] = alpha * acc;
        }
    }
}
static void openblas_set_num_threads(int n) { (void)n; }
#endif

static int first_key(const attn_chunk *c, int t) {
    return c->window > 0 && t + 1 > c->window ? t + 1 - c->window : 0;
}

size_t attn_chunk_work_floats(int W, int Hq, int d) { return 2 * (size_t)W * Hq * d; }

void attn_causal_chunk_ref(const attn_chunk *c) {
    int G = c->Hq / c->Hkv, d = c->d;
    size_t krow = (size_t)c->Hkv * d;
    double *lg = rb_malloc(sizeof(double) * (size_t)(c->t0 + c->W));
    for (int w = 0; w < c->W; w++) {
        int t = c->t0 + w, j0 = first_key(c, t), n = t + 1 - j0;
        for (int h = 0; h < c->Hq; h++) {
            float *lrow = c->logits + ((size_t)h * c->W + w) * c->ldn;
            float *prow = c->probs + ((size_t)h * c->W + w) * c->ldn;
            float *lse = c->lse + (size_t)w * c->Hq + h;
            attn_dense_ref(c->q + ((size_t)w * c->Hq + h) * d, 1, c->k + (size_t)j0 * krow +
                           (size_t)(h / G) * d, c->v + (size_t)j0 * krow + (size_t)(h / G) * d,
                           n, d, (int)krow, c->scale, lrow + j0, lse,
                           c->out + ((size_t)w * c->Hq + h) * d);
            for (int j = j0; j <= t; j++) lg[j] = exp((double)lrow[j] - *lse);
            for (int j = j0; j <= t; j++) prow[j] = (float)lg[j];
        }
    }
    free(lg);
}

/* Row softmax of s[j0..t] into p (the same indices), zeros in p over [lo, j0) and (t, hi);
 * returns the log-sum-exp. Sums in double: rows are up to ~1e5 terms. */
static float row_softmax(const float *s, float *p, int lo, int j0, int t, int hi) {
    int n = t + 1 - j0;
    const float *x = s + j0;
    float *y = p + j0;
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float m = hmax8(vm);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    __m256 shift = _mm256_set1_ps(m);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
        _mm256_storeu_ps(y + i, e);
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double a[4];
    _mm256_storeu_pd(a, _mm256_add_pd(acc0, acc1));
    double z = (a[0] + a[1]) + (a[2] + a[3]);
    for (; i < n; i++) z += y[i] = expf(x[i] - m);
    __m256 inv = _mm256_set1_ps((float)(1.0 / z));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(inv, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= (float)(1.0 / z);
    if (j0 > lo) memset(p + lo, 0, sizeof(float) * (size_t)(j0 - lo));
    if (hi > t + 1) memset(p + t + 1, 0, sizeof(float) * (size_t)(hi - t - 1));
    return (float)(m + log(z));
}

void attn_causal_chunk(const attn_chunk *c) {
    int W = c->W, Hq = c->Hq, G = Hq / c->Hkv, d = c->d, GW = G * W;
    int t_end = c->t0 + W - 1, lo = first_key(c, c->t0), nk = t_end + 1 - lo;
    size_t krow = (size_t)c->Hkv * d, ldn = (size_t)c->ldn;
    float *qp = c->work, *op = c->work + (size_t)GW * d; /* [G*W, d] each, rows (i, w) */
    for (int g = 0; g < c->Hkv; g++) {
        for (int i = 0; i < G; i++)
            for (int w = 0; w < W; w++)
                memcpy(qp + ((size_t)i * W + w) * d, c->q + ((size_t)w * Hq + g * G + i) * d,
                       sizeof(float) * d);
        float *S = c->logits + (size_t)g * GW * ldn, *P = c->probs + (size_t)g * GW * ldn;
        const float *kg = c->k + (size_t)lo * krow + (size_t)g * d;
        const float *vg = c->v + (size_t)lo * krow + (size_t)g * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, GW, nk, d, c->scale, qp, d, kg,
                    (int)krow, 0.0f, S + lo, (int)ldn);
        for (int i = 0; i < G; i++)
            for (int w = 0; w < W; w++) {
                int t = c->t0 + w, r = i * W + w;
                c->lse[(size_t)w * Hq + g * G + i] =
                    row_softmax(S + r * ldn, P + r * ldn, lo, first_key(c, t), t, t_end + 1);
            }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, GW, d, nk, 1.0f, P + lo,
                    (int)ldn, vg, (int)krow, 0.0f, op, d);
        for (int i = 0; i < G; i++)
            for (int w = 0; w < W; w++)
                memcpy(c->out + ((size_t)w * Hq + g * G + i) * d, op + ((size_t)i * W + w) * d,
                       sizeof(float) * d);
    }
}

void attn_blas_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double attn_sgemm_gflops(int m, int n, int k, int reps) {
    float *a = rb_malloc(sizeof(float) * (size_t)m * k);
    float *b = rb_malloc(sizeof(float) * (size_t)n * k);
    float *cm = rb_malloc(sizeof(float) * (size_t)m * n);
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i * 37) % 17) * 0.01f;
    for (size_t i = 0; i < (size_t)n * k; i++) b[i] = (float)((i * 11) % 13) * 0.01f;
    int64_t t[64];
    reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
    for (int r = 0; r < reps; r++) {
        int64_t t0 = rb_now_ns();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, cm,
                    n);
        t[r] = rb_now_ns() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_i64);
    free(a), free(b), free(cm);
    return 2.0 * m * n * k / (double)t[reps / 2];
}
