/* test_cuda_attn.c: the GPU decode attention (kernels/cuda/attn_cuda.cu) against the plain
 * CPU references (kernels/attn_ref.c, double accumulation) on random data: dense and gather,
 * float32 and half K/V, every supported group size G and head_dim, token counts from 1 up,
 * logits of magnitude ~80, several split plans, the backend's plain kernels (scores,
 * weighted rows, column mass; their bounds are stated above check_one), and bad input
 * (refused shapes, misaligned pointers, out-of-range gather indices reported by the next
 * sync without breaking the context). Outputs are poisoned with NaN on the device before every call, so an unwritten
 * element fails. Exits 77 ("no GPU") where no CUDA device is usable or CUDA is not built.
 *
 * TOLERANCE, per query head, from first-order worst-case bounds (u = 2^-24, float32):
 *  - logit: the GPU prescales q by scale*log2(e) (2u), sums 8 products in sequence per lane
 *    and then log2(d/8) <= 5 shuffle adds: |ds| <= 20 u S, S = max_j |scale| sum_c |q_c k_jc|.
 *    Every weight p_j is then off by a factor within exp(+-2 E_s), E_s = 20 u S.
 *  - exponentials: exp2f is within 2 ulp (CUDA guide), the argument's subtraction within
 *    u * spread (spread = max_j (m - s_j)): 4u + u*spread.
 *  - rescales: a partial multiplies its sum by alpha at most once per key (<= 2u each), plus
 *    one merge in the block and one in the combine: (2 R + 20) u, R = attn_cuda_max_run.
 *  - sums: R keys in sequence, <= 32 lane groups in the block, and at most len/R + 1 splits:
 *    n_acc = R + 33 + len / R terms, n_acc u relative.
 *  So the weights are right within eps = 2 E_s + (4 + spread) u + (2R + 20) u, relative;
 *  o_c within (2 eps + 2 n_acc u) A_c, A_c = sum_j p_j |v_jc| (o_c's natural scale), and lse
 *  within eps + n_acc u. Every tolerance below is twice that, plus the reference's own final
 *  rounding to float (u |x|). The bound stays tight enough (~1e-5 relative at these sizes)
 *  that a key left out or counted twice (weight ~ 1/n >= 2e-4 here) fails. */
#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "cuda/attn_cuda.h"
#include "rb.h"

static const double U = 0x1p-24;

static uint64_t rng_state = 0x243f6a8885a308d3ull;
/* The stream of testutil.h (splitmix64, Box-Muller), on this file's own state. */
static uint64_t rng_next(void) { return tu_next(&rng_state); }
static float rng_gauss(void) { return (float)tu_randn(&rng_state); }

static int n_fail, n_checked;
static double worst_o, worst_lse; /* largest err/tol seen */

#define CHECK_OK(call)                                                                         \
    do {                                                                                       \
        rb_err e_ = {0};                                                                       \
        if ((call) != RB_OK) {                                                                 \
            rb_err_print(&e_);                                                                 \
            fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #call);                  \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)
/* CHECK_OK's calls name their error argument e_. */

static attn_cuda *ctx;

/* Device copies of a problem, with the host data the reference reads. */
typedef struct problem {
    attn_cuda_shape s;
    int n, L;        /* tokens in k, v; indices per KV head (0: dense) */
    float *q;        /* [Hq, d] */
    float *k, *v;    /* [n, Hkv, d] as the GPU sees them (half-rounded for F16) */
    int32_t *idx;    /* [Hkv, L] or NULL */
    void *dq, *dk, *dv, *didx, *dout, *dlse;
} problem;

static void problem_make(problem *p, int Hq, int Hkv, int d, attn_cuda_dtype dt, int n, int L,
                         float q_gain) {
    memset(p, 0, sizeof *p);
    p->s = (attn_cuda_shape){Hq, Hkv, d, (float)(1.0 / sqrt((double)d)), dt};
    p->n = n, p->L = L;
    size_t nq = (size_t)Hq * d, nkv = (size_t)n * Hkv * d;
    size_t elt = dt == ATTN_CUDA_F16 ? 2 : 4;
    p->q = rb_malloc(sizeof(float) * nq);
    p->k = rb_malloc(sizeof(float) * nkv);
    p->v = rb_malloc(sizeof(float) * nkv);
    for (size_t i = 0; i < nq; i++) p->q[i] = q_gain * rng_gauss();
    void *hk = rb_malloc(elt * nkv), *hv = rb_malloc(elt * nkv);
    for (size_t i = 0; i < nkv; i++) {
        float a = rng_gauss(), b = rng_gauss();
        if (dt == ATTN_CUDA_F16) {
            uint16_t ha = rb_float_to_half(a), hb = rb_float_to_half(b);
            ((uint16_t *)hk)[i] = ha, ((uint16_t *)hv)[i] = hb;
            p->k[i] = rb_half_to_float(ha), p->v[i] = rb_half_to_float(hb);
        } else {
            ((float *)hk)[i] = a, ((float *)hv)[i] = b;
            p->k[i] = a, p->v[i] = b;
        }
    }
    rb_err e_ = {0};
    (void)e_;
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * nq, &p->dq, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, elt * nkv, &p->dk, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, elt * nkv, &p->dv, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * nq, &p->dout, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * Hq, &p->dlse, &e_));
    CHECK_OK(attn_cuda_upload(ctx, p->dq, p->q, sizeof(float) * nq, &e_));
    CHECK_OK(attn_cuda_upload(ctx, p->dk, hk, elt * nkv, &e_));
    CHECK_OK(attn_cuda_upload(ctx, p->dv, hv, elt * nkv, &e_));
    free(hk), free(hv);
    if (L > 0) {
        p->idx = rb_malloc(sizeof(int32_t) * (size_t)Hkv * L);
        for (size_t i = 0; i < (size_t)Hkv * L; i++) p->idx[i] = (int32_t)(rng_next() % (uint64_t)n);
        CHECK_OK(attn_cuda_alloc(ctx, sizeof(int32_t) * (size_t)Hkv * L, &p->didx, &e_));
        CHECK_OK(attn_cuda_upload(ctx, p->didx, p->idx, sizeof(int32_t) * (size_t)Hkv * L, &e_));
    }
}

static void problem_free(problem *p) {
    attn_cuda_free(ctx, p->dq), attn_cuda_free(ctx, p->dk), attn_cuda_free(ctx, p->dv);
    attn_cuda_free(ctx, p->didx), attn_cuda_free(ctx, p->dout), attn_cuda_free(ctx, p->dlse);
    free(p->q), free(p->k), free(p->v), free(p->idx);
}

static rb_status problem_run(problem *p, rb_err *e) {
    if (p->L > 0)
        return attn_cuda_gather(ctx, &p->s, p->dq, p->dk, p->dv, p->n, p->didx, p->L, p->dout,
                                p->dlse, e);
    return attn_cuda_dense(ctx, &p->s, p->dq, p->dk, p->dv, p->n, p->dout, p->dlse, e);
}

/* Poison, run, fetch, and compare every output element with the reference. */
static void problem_check(problem *p, const char *what) {
    int Hq = p->s.n_q_heads, Hkv = p->s.n_kv_heads, d = p->s.head_dim, G = Hq / Hkv;
    int len = p->L > 0 ? p->L : p->n;
    float *out = rb_malloc(sizeof(float) * Hq * d), *lse = rb_malloc(sizeof(float) * Hq);
    for (int i = 0; i < Hq * d; i++) out[i] = NAN;
    for (int i = 0; i < Hq; i++) lse[i] = NAN;
    rb_err e_ = {0};
    (void)e_;
    CHECK_OK(attn_cuda_upload(ctx, p->dout, out, sizeof(float) * Hq * d, &e_));
    CHECK_OK(attn_cuda_upload(ctx, p->dlse, lse, sizeof(float) * Hq, &e_));
    CHECK_OK(problem_run(p, &e_));
    CHECK_OK(attn_cuda_sync(ctx, &e_));
    CHECK_OK(attn_cuda_download(ctx, out, p->dout, sizeof(float) * Hq * d, &e_));
    CHECK_OK(attn_cuda_download(ctx, lse, p->dlse, sizeof(float) * Hq, &e_));

    int R = attn_cuda_max_run(ctx, &p->s, len);
    if (R < 1) {
        printf("FAIL %s: attn_cuda_max_run = %d\n", what, R);
        n_fail++;
        R = len;
    }
    double n_acc = R + 33.0 + (double)len / R;
    const float **kr = rb_malloc(sizeof(float *) * len), **vr = rb_malloc(sizeof(float *) * len);
    float *ref_out = rb_malloc(sizeof(float) * G * d), *ref_lse = rb_malloc(sizeof(float) * G);
    double *s = rb_malloc(sizeof(double) * len), *A = rb_malloc(sizeof(double) * d);
    for (int h = 0; h < Hkv; h++) {
        const float *qh = p->q + (size_t)h * G * d;
        for (int j = 0; j < len; j++) {
            int t = p->L > 0 ? p->idx[(size_t)h * p->L + j] : j;
            kr[j] = p->k + ((size_t)t * Hkv + h) * d, vr[j] = p->v + ((size_t)t * Hkv + h) * d;
        }
        if (p->L > 0) {
            int cnt = len;
            attn_gather_ref(qh, G, kr, vr, &cnt, len, 1, d, p->s.scale, NULL, ref_out);
        } else {
            attn_dense_ref(qh, G, p->k + (size_t)h * d, p->v + (size_t)h * d, p->n, d, Hkv * d,
                           p->s.scale, NULL, ref_lse, ref_out);
        }
        for (int g = 0; g < G; g++) {
            const float *qg = qh + (size_t)g * d;
            double m = -INFINITY, S = 0;
            for (int j = 0; j < len; j++) {
                double dot = 0, mag = 0;
                for (int c = 0; c < d; c++) dot += (double)qg[c] * kr[j][c], mag += fabs((double)qg[c] * kr[j][c]);
                s[j] = dot * p->s.scale;
                if (s[j] > m) m = s[j];
                if (mag * p->s.scale > S) S = mag * p->s.scale;
            }
            double z = 0, spread = 0;
            for (int j = 0; j < len; j++) z += exp(s[j] - m), spread = fmax(spread, m - s[j]);
            double lse_ref = m + log(z);
            if (p->L > 0) ref_lse[g] = (float)lse_ref;
            for (int c = 0; c < d; c++) A[c] = 0;
            for (int j = 0; j < len; j++) {
                double pj = exp(s[j] - m) / z;
                for (int c = 0; c < d; c++) A[c] += pj * fabs((double)vr[j][c]);
            }
            double eps = 2 * 20 * U * S + (4 + spread) * U + (2.0 * R + 20) * U;
            int hq = h * G + g;
            double want = ref_lse[g], got = lse[hq];
            double tol = 2 * (eps + n_acc * U) + 2 * U * fabs(want);
            double err = fabs(got - want);
            n_checked++;
            if (!(err <= tol)) {
                if (n_fail++ < 20)
                    printf("FAIL %s lse[%d]: got %.9g want %.9g (err %.3g > tol %.3g)\n", what, hq,
                           got, want, err, tol);
            } else if (err / tol > worst_lse) worst_lse = err / tol;
            for (int c = 0; c < d; c++) {
                want = ref_out[(size_t)g * d + c], got = out[(size_t)hq * d + c];
                tol = 2 * (2 * eps + 2 * n_acc * U) * A[c] + 2 * U * fabs(want);
                err = fabs(got - want);
                n_checked++;
                if (!(err <= tol)) {
                    if (n_fail++ < 20)
                        printf("FAIL %s o[%d][%d]: got %.9g want %.9g (err %.3g > tol %.3g)\n", what,
                               hq, c, got, want, err, tol);
                } else if (err / tol > worst_o) worst_o = err / tol;
            }
        }
    }
    free(kr), free(vr), free(ref_out), free(ref_lse), free(s), free(A), free(out), free(lse);
}

static void run_case(int Hq, int Hkv, int d, attn_cuda_dtype dt, int n, int L, float q_gain) {
    char what[160];
    snprintf(what, sizeof what, "%s Hq=%d Hkv=%d d=%d %s n=%d L=%d gain=%g", L ? "gather" : "dense",
             Hq, Hkv, d, dt == ATTN_CUDA_F16 ? "f16" : "f32", n, L, q_gain);
    problem p;
    problem_make(&p, Hq, Hkv, d, dt, n, L, q_gain);
    problem_check(&p, what);
    problem_free(&p);
}

static void expect_input_error(rb_status st, const rb_err *e, const char *what) {
    if (st != RB_EINPUT) {
        printf("FAIL %s: status %d, want RB_EINPUT\n", what, (int)st);
        n_fail++;
    } else if (!strstr(e->what, "attn_cuda")) {
        printf("FAIL %s: error names '%s'\n", what, e->what);
        n_fail++;
    }
}

static void bad_input_cases(void) {
    problem p;
    problem_make(&p, 8, 2, 128, ATTN_CUDA_F32, 100, 64, 1.0f);
    rb_err e = {0};
    attn_cuda_shape s = p.s;
    s.n_q_heads = 6; /* not a multiple of Hkv */
    expect_input_error(attn_cuda_dense(ctx, &s, p.dq, p.dk, p.dv, p.n, p.dout, p.dlse, &e), &e, "Hq % Hkv");
    s = p.s, s.n_q_heads = 32; /* G = 16 */
    expect_input_error(attn_cuda_dense(ctx, &s, p.dq, p.dk, p.dv, p.n, p.dout, p.dlse, &e), &e, "G = 16");
    s = p.s, s.head_dim = 96;
    expect_input_error(attn_cuda_dense(ctx, &s, p.dq, p.dk, p.dv, p.n, p.dout, p.dlse, &e), &e, "d = 96");
    s = p.s, s.scale = NAN;
    expect_input_error(attn_cuda_dense(ctx, &s, p.dq, p.dk, p.dv, p.n, p.dout, p.dlse, &e), &e, "NaN scale");
    s = p.s, s.kv_dtype = (attn_cuda_dtype)7;
    expect_input_error(attn_cuda_dense(ctx, &s, p.dq, p.dk, p.dv, p.n, p.dout, p.dlse, &e), &e, "dtype");
    expect_input_error(attn_cuda_dense(ctx, &p.s, p.dq, p.dk, p.dv, 0, p.dout, p.dlse, &e), &e, "n = 0");
    expect_input_error(attn_cuda_dense(ctx, &p.s, p.dq, (float *)p.dk + 1, p.dv, p.n - 1, p.dout,
                                       p.dlse, &e), &e, "misaligned k");
    expect_input_error(attn_cuda_dense(ctx, &p.s, p.dq, NULL, p.dv, p.n, p.dout, p.dlse, &e), &e, "NULL k");
    expect_input_error(attn_cuda_dense(NULL, &p.s, p.dq, p.dk, p.dv, p.n, p.dout, p.dlse, &e), &e, "NULL ctx");
    expect_input_error(attn_cuda_gather(ctx, &p.s, p.dq, p.dk, p.dv, p.n, p.didx, 0, p.dout, p.dlse, &e),
                       &e, "L = 0");
    expect_input_error(attn_cuda_gather(ctx, &p.s, p.dq, p.dk, p.dv, p.n, NULL, p.L, p.dout, p.dlse, &e),
                       &e, "no indices");

    /* Out-of-range indices (n and -1): not read, reported at the next sync, then cleared. */
    int32_t saved0 = p.idx[3], saved1 = p.idx[p.L + 5];
    p.idx[3] = p.n, p.idx[p.L + 5] = -1;
    CHECK_OK(attn_cuda_upload(ctx, p.didx, p.idx, sizeof(int32_t) * 2 * p.L, &e_));
    rb_status st = attn_cuda_gather(ctx, &p.s, p.dq, p.dk, p.dv, p.n, p.didx, p.L, p.dout, p.dlse, &e);
    if (st != RB_OK) printf("FAIL bad index: launch status %d\n", (int)st), n_fail++;
    expect_input_error(attn_cuda_sync(ctx, &e), &e, "bad index at sync");
    if (attn_cuda_sync(ctx, &e) != RB_OK) printf("FAIL bad-index flag not cleared\n"), n_fail++;
    p.idx[3] = saved0, p.idx[p.L + 5] = saved1;
    CHECK_OK(attn_cuda_upload(ctx, p.didx, p.idx, sizeof(int32_t) * 2 * p.L, &e_));
    problem_check(&p, "gather after a bad index"); /* the context still works */
    problem_free(&p);
}

/* ---- The backend's plain kernels: scores, weighted rows, column mass -------------------
 * One thread per output, sums in order (attn_cuda.h), so first-order worst-case bounds are
 * short: a dot of d products in sequence is within d u S of exact (S = scale sum_c
 * |q_c k_c|), the scale multiply adds u |x|; expf is within 2 ulp (4 u relative) and its
 * argument's subtraction within u |x - lse|; a sequential sum of n products within
 * n u sum_j |p_j v_j|. Each tolerance below is twice that bound, plus the reference's own
 * rounding to float (u |want|). */

static void check_one(const char *what, int i, double got, double want, double tol) {
    n_checked++;
    if (!(fabs(got - want) <= tol)) {
        if (n_fail++ < 20)
            printf("FAIL %s [%d]: got %.9g want %.9g (err %.3g > tol %.3g)\n", what, i, got, want,
                   fabs(got - want), tol);
    } else if (fabs(got - want) / tol > worst_o) {
        worst_o = fabs(got - want) / tol;
    }
}

/* q_h . k_t in double, and its magnitude sum_c |q_c k_c|. */
static double dot_mag(const float *q, const float *k, int d, double *mag) {
    double x = 0, m = 0;
    for (int c = 0; c < d; c++) x += (double)q[c] * k[c], m += fabs((double)q[c] * k[c]);
    *mag = m;
    return x;
}

/* attn_cuda_scores on problem p: logits (with_lse 0) or probabilities with the reference's
 * lse, rows ldp = len + 3 apart; the 3 floats after each row must stay untouched. */
static void scores_check(problem *p, int with_lse, const char *what) {
    int Hq = p->s.n_q_heads, Hkv = p->s.n_kv_heads, d = p->s.head_dim, G = Hq / Hkv;
    int len = p->L > 0 ? p->L : p->n, ldp = len + 3;
    double sc = p->s.scale;
    float *lse = rb_malloc(sizeof(float) * Hq), *got = rb_malloc(sizeof(float) * Hq * ldp);
    double *x = rb_malloc(sizeof(double) * Hq * len), *mag = rb_malloc(sizeof(double) * Hq * len);
    for (int h = 0; h < Hq; h++) {
        double m = -INFINITY, z = 0;
        for (int j = 0; j < len; j++) {
            int t = p->L > 0 ? p->idx[(size_t)(h / G) * p->L + j] : j;
            const float *kt = p->k + ((size_t)t * Hkv + h / G) * d;
            size_t o = (size_t)h * len + j;
            x[o] = sc * dot_mag(p->q + (size_t)h * d, kt, d, &mag[o]);
            m = fmax(m, x[o]);
        }
        for (int j = 0; j < len; j++) z += exp(x[(size_t)h * len + j] - m);
        lse[h] = (float)(m + log(z));
    }
    for (int i = 0; i < Hq * ldp; i++) got[i] = NAN;
    void *dp;
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * Hq * ldp, &dp, &e_));
    CHECK_OK(attn_cuda_upload(ctx, dp, got, sizeof(float) * Hq * ldp, &e_));
    CHECK_OK(attn_cuda_upload(ctx, p->dlse, lse, sizeof(float) * Hq, &e_));
    CHECK_OK(attn_cuda_scores(ctx, &p->s, p->dq, p->dk, p->n, p->L > 0 ? p->didx : NULL, p->L,
                              with_lse ? p->dlse : NULL, dp, ldp, &e_));
    CHECK_OK(attn_cuda_sync(ctx, &e_));
    CHECK_OK(attn_cuda_download(ctx, got, dp, sizeof(float) * Hq * ldp, &e_));
    for (int h = 0; h < Hq; h++) {
        for (int j = 0; j < len; j++) {
            double xj = x[(size_t)h * len + j];
            double dx = d * U * sc * mag[(size_t)h * len + j] + U * fabs(xj);
            double want = with_lse ? exp(xj - lse[h]) : xj;
            double tol = with_lse ? 2 * want * (dx + U * fabs(xj - lse[h]) + 4 * U) + U * want
                                  : 2 * dx + U * fabs(want);
            check_one(what, h * ldp + j, got[(size_t)h * ldp + j], want, tol);
        }
        for (int j = len; j < ldp; j++) {
            n_checked++;
            if (!isnan(got[(size_t)h * ldp + j]))
                printf("FAIL %s: wrote [%d][%d] past the %d keys\n", what, h, j, len), n_fail++;
        }
    }
    attn_cuda_free(ctx, dp);
    free(lse), free(got), free(x), free(mag);
}

static void scores_case(int Hq, int Hkv, int d, attn_cuda_dtype dt, int n, int L) {
    char what[160];
    problem p;
    problem_make(&p, Hq, Hkv, d, dt, n, L, 1.0f);
    for (int with_lse = 0; with_lse < 2; with_lse++) {
        snprintf(what, sizeof what, "scores (%s) Hq=%d Hkv=%d d=%d %s n=%d L=%d",
                 with_lse ? "probs" : "logits", Hq, Hkv, d, dt == ATTN_CUDA_F16 ? "f16" : "f32", n,
                 L);
        scores_check(&p, with_lse, what);
    }
    problem_free(&p);
}

static void weighted_case(int n_rows, int n, int d) {
    int ldp = n + 5;
    float *p = rb_malloc(sizeof(float) * n_rows * ldp), *v = rb_malloc(sizeof(float) * n * d);
    float *o = rb_malloc(sizeof(float) * n_rows * d);
    for (int i = 0; i < n_rows * ldp; i++) p[i] = (float)tu_uniform(&rng_state) * 2 / n;
    for (int i = 0; i < n * d; i++) v[i] = rng_gauss();
    void *dp, *dv, *dout;
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * n_rows * ldp, &dp, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * n * d, &dv, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * n_rows * d, &dout, &e_));
    CHECK_OK(attn_cuda_upload(ctx, dp, p, sizeof(float) * n_rows * ldp, &e_));
    CHECK_OK(attn_cuda_upload(ctx, dv, v, sizeof(float) * n * d, &e_));
    CHECK_OK(attn_cuda_weighted(ctx, dp, n_rows, ldp, dv, n, d, dout, &e_));
    CHECK_OK(attn_cuda_sync(ctx, &e_));
    CHECK_OK(attn_cuda_download(ctx, o, dout, sizeof(float) * n_rows * d, &e_));
    char what[80];
    snprintf(what, sizeof what, "weighted rows=%d n=%d d=%d", n_rows, n, d);
    for (int r = 0; r < n_rows; r++)
        for (int c = 0; c < d; c++) {
            double want = 0, A = 0;
            for (int j = 0; j < n; j++) {
                double t = (double)p[(size_t)r * ldp + j] * v[(size_t)j * d + c];
                want += t, A += fabs(t);
            }
            check_one(what, r * d + c, o[(size_t)r * d + c], want, 2 * n * U * A + U * fabs(want));
        }
    attn_cuda_free(ctx, dp), attn_cuda_free(ctx, dv), attn_cuda_free(ctx, dout);
    free(p), free(v), free(o);
}

/* A causal prompt of n positions: lse from the double reference, column mass on the GPU. */
static void col_mass_case(int Hq, int Hkv, int d, attn_cuda_dtype dt, int n) {
    int G = Hq / Hkv;
    double sc = 1.0 / sqrt((double)d);
    size_t nq = (size_t)n * Hq * d, nk = (size_t)n * Hkv * d, elt = dt == ATTN_CUDA_F16 ? 2 : 4;
    float *q = rb_malloc(sizeof(float) * nq), *k = rb_malloc(sizeof(float) * nk);
    void *hk = rb_malloc(elt * nk);
    for (size_t i = 0; i < nq; i++) q[i] = rng_gauss();
    for (size_t i = 0; i < nk; i++) {
        float a = rng_gauss();
        if (dt == ATTN_CUDA_F16) {
            uint16_t h = rb_float_to_half(a);
            ((uint16_t *)hk)[i] = h, k[i] = rb_half_to_float(h);
        } else {
            ((float *)hk)[i] = a, k[i] = a;
        }
    }
    float *lse = rb_malloc(sizeof(float) * n * Hq), *col = rb_malloc(sizeof(float) * Hkv * n);
    double mag;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < Hq; h++) {
            double m = -INFINITY, z = 0, *x = rb_malloc(sizeof(double) * (i + 1));
            const float *qi = q + ((size_t)i * Hq + h) * d;
            for (int j = 0; j <= i; j++)
                x[j] = sc * dot_mag(qi, k + ((size_t)j * Hkv + h / G) * d, d, &mag),
                m = fmax(m, x[j]);
            for (int j = 0; j <= i; j++) z += exp(x[j] - m);
            lse[(size_t)i * Hq + h] = (float)(m + log(z));
            free(x);
        }
    void *dq, *dk, *dlse, *dcol;
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * nq, &dq, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, elt * nk, &dk, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * n * Hq, &dlse, &e_));
    CHECK_OK(attn_cuda_alloc(ctx, sizeof(float) * Hkv * n, &dcol, &e_));
    CHECK_OK(attn_cuda_upload(ctx, dq, q, sizeof(float) * nq, &e_));
    CHECK_OK(attn_cuda_upload(ctx, dk, hk, elt * nk, &e_));
    CHECK_OK(attn_cuda_upload(ctx, dlse, lse, sizeof(float) * n * Hq, &e_));
    attn_cuda_shape s = {Hq, Hkv, d, (float)sc, dt};
    CHECK_OK(attn_cuda_col_mass(ctx, &s, dq, dk, n, dlse, dcol, &e_));
    CHECK_OK(attn_cuda_sync(ctx, &e_));
    CHECK_OK(attn_cuda_download(ctx, col, dcol, sizeof(float) * Hkv * n, &e_));
    char what[120];
    snprintf(what, sizeof what, "col_mass Hq=%d Hkv=%d d=%d %s n=%d", Hq, Hkv, d,
             dt == ATTN_CUDA_F16 ? "f16" : "f32", n);
    for (int kv = 0; kv < Hkv; kv++)
        for (int j = 0; j < n; j++) {
            /* every term's relative bound as in scores; the double sum adds nothing visible */
            double want = 0, err = 0;
            for (int i = j; i < n; i++)
                for (int g = 0; g < G; g++) {
                    size_t row = (size_t)i * Hq + kv * G + g;
                    double x = sc * dot_mag(q + row * d, k + ((size_t)j * Hkv + kv) * d, d, &mag);
                    double t = exp(x - lse[row]);
                    want += t;
                    err += t * (d * U * sc * mag + U * fabs(x) + U * fabs(x - lse[row]) + 4 * U);
                }
            check_one(what, kv * n + j, col[(size_t)kv * n + j], want, 2 * err + U * want);
        }
    attn_cuda_free(ctx, dq), attn_cuda_free(ctx, dk);
    attn_cuda_free(ctx, dlse), attn_cuda_free(ctx, dcol);
    free(q), free(k), free(hk), free(lse), free(col);
}

static void plain_kernel_cases(void) {
    for (int dt = 0; dt < 2; dt++) {
        attn_cuda_dtype t = dt ? ATTN_CUDA_F16 : ATTN_CUDA_F32;
        scores_case(8, 8, 64, t, 1, 0);
        scores_case(32, 8, 128, t, 1000, 0);
        scores_case(16, 2, 256, t, 300, 0);  /* G = 8 */
        scores_case(32, 8, 128, t, 3000, 500); /* gathered keys */
        scores_case(4, 2, 64, t, 50, 200);    /* more indices than tokens */
        col_mass_case(8, 2, 64, t, 1);
        col_mass_case(8, 2, 64, t, 200);
        col_mass_case(4, 4, 128, t, 150);
    }
    weighted_case(1, 1, 64);
    weighted_case(8, 300, 128);
    weighted_case(3, 2000, 100); /* any d */
    weighted_case(2, 0, 64);     /* no rows: zeros */

    problem p;
    problem_make(&p, 8, 2, 64, ATTN_CUDA_F32, 100, 10, 1.0f);
    rb_err e = {0};
    attn_cuda_shape s = p.s;
    s.head_dim = 96;
    expect_input_error(attn_cuda_scores(ctx, &s, p.dq, p.dk, p.n, NULL, 0, NULL, p.dout, p.n, &e),
                       &e, "scores d = 96");
    expect_input_error(
        attn_cuda_scores(ctx, &p.s, p.dq, p.dk, p.n, NULL, 0, NULL, p.dout, p.n - 1, &e), &e,
        "scores ldp < n");
    expect_input_error(attn_cuda_weighted(ctx, p.dq, 2, 5, p.dk, 6, 64, p.dout, &e), &e,
                       "weighted ldp < n");
    expect_input_error(attn_cuda_col_mass(ctx, &p.s, p.dq, p.dk, 0, p.dlse, p.dout, &e), &e,
                       "col_mass n = 0");
    /* an out-of-range index: p is 0 there, and the next sync says so */
    int32_t saved = p.idx[4];
    p.idx[4] = p.n;
    CHECK_OK(attn_cuda_upload(ctx, p.didx, p.idx, sizeof(int32_t) * 2 * p.L, &e_));
    rb_status st = attn_cuda_scores(ctx, &p.s, p.dq, p.dk, p.n, p.didx, p.L, NULL, p.dout, p.L, &e);
    if (st != RB_OK) printf("FAIL scores bad index: launch status %d\n", (int)st), n_fail++;
    expect_input_error(attn_cuda_sync(ctx, &e), &e, "scores bad index at sync");
    p.idx[4] = saved;
    problem_free(&p);
}

int main(void) {
    if (attn_cuda_device_count() == 0) {
        rb_err e = {0};
        attn_cuda *c = NULL;
        attn_cuda_create(&c, &e);
        printf("skip: %s\n", e.why);
        return 77;
    }
    rb_err e_ = {0};
    (void)e_;
    CHECK_OK(attn_cuda_create(&ctx, &e_));
    char desc[300];
    attn_cuda_describe(ctx, desc, sizeof desc);
    printf("# device: %s\n", desc);

    /* Both load pipelines with every shape, in the heads-inner block order; the other order
     * (a different block-to-work mapping only) with a dense and a gather case below. */
    for (int pf = 0; pf < 2; pf++)
    for (int dt = 0; dt < 2; dt++) {
        attn_cuda_tuning tun = {4, pf, 1};
        CHECK_OK(attn_cuda_tune(ctx, &tun, &e_));
        attn_cuda_dtype t = dt ? ATTN_CUDA_F16 : ATTN_CUDA_F32;
        static const int ns[] = {1, 5, 37, 300, 4099};
        for (int i = 0; i < 5; i++) run_case(32, 8, 128, t, ns[i], 0, 1.0f);
        run_case(8, 8, 64, t, 1, 0, 1.0f);     /* G = 1 */
        run_case(8, 8, 64, t, 1000, 0, 1.0f);
        run_case(8, 4, 256, t, 777, 0, 1.0f);  /* G = 2 */
        run_case(16, 2, 64, t, 3000, 0, 1.0f); /* G = 8 */
        run_case(8, 1, 128, t, 2049, 0, 1.0f);
        run_case(16, 2, 256, t, 513, 0, 1.0f);
        run_case(32, 8, 128, t, 2000, 0, 12.0f); /* logits ~ +-80: no overflow, few keys dominate */
        run_case(32, 8, 128, t, 5000, 1, 1.0f);  /* gather */
        run_case(32, 8, 128, t, 5000, 100, 1.0f);
        run_case(32, 8, 128, t, 5000, 1024, 1.0f);
        run_case(8, 1, 256, t, 3000, 300, 1.0f);
        run_case(4, 2, 64, t, 200, 4096, 3.0f); /* more indices than tokens: repeats count */
    }
    /* Other split plans: one block per SM (long runs) and 64 (the shortest chunks). */
    static const int bps[] = {1, 64};
    for (int i = 0; i < 4; i++) {
        attn_cuda_tuning tun = {bps[i % 2], i / 2, i % 2};
        CHECK_OK(attn_cuda_tune(ctx, &tun, &e_));
        run_case(32, 8, 128, ATTN_CUDA_F32, 20000, 0, 1.0f);
        run_case(32, 8, 128, ATTN_CUDA_F16, 20000, 2048, 1.0f);
    }
    for (int pf = 0; pf < 2; pf++) {
        attn_cuda_tuning tun = {4, pf, 0};
        CHECK_OK(attn_cuda_tune(ctx, &tun, &e_));
        run_case(32, 8, 128, pf ? ATTN_CUDA_F16 : ATTN_CUDA_F32, 4099, 0, 1.0f);
        run_case(16, 2, 64, pf ? ATTN_CUDA_F32 : ATTN_CUDA_F16, 5000, 1024, 1.0f);
    }
    {
        rb_err e = {0};
        attn_cuda_tuning bad[3] = {{0, 1, 1}, {4, 2, 1}, {4, 1, -1}};
        for (int i = 0; i < 3; i++) expect_input_error(attn_cuda_tune(ctx, &bad[i], &e), &e, "tuning");
        attn_cuda_tuning def = attn_cuda_tuning_default();
        CHECK_OK(attn_cuda_tune(ctx, &def, &e_));
    }
    bad_input_cases();
    plain_kernel_cases();

    attn_cuda_destroy(ctx);
    printf("# %d values checked, largest err/tol: out (and the plain kernels) %.3g, lse %.3g\n",
           n_checked, worst_o, worst_lse);
    if (n_fail) {
        printf("%d failures\n", n_fail);
        return 1;
    }
    return 0;
}
