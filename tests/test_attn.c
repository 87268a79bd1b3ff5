/* test_attn.c: the fast attention kernels (kernels/attn.c) against the plain references
 * (kernels/attn_ref.c) on random data over many shapes: dense (G 1..8, d 16..256 and a d
 * that is not a multiple of 8, n 0..4096, ld > d, logits/lse/out each wanted or not),
 * gather (per-head and shared sets, sets of size 0 and 1, probs wanted or not), causal
 * (several head groupings, col_mass), and logits of magnitude ~80 (no overflow).
 * Every output is poisoned with NaN before each call so an unwritten element fails.
 *
 * TOLERANCES. The fast kernels compute in float32 with FMA; the references in double
 * (rounded to float once at the end). With u = 2^-24 (unit roundoff) the classic
 * worst-case bounds (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1) are:
 *  - logit s_j = sum_c (scale q_c) k_jc, d products (plus the rounding of scale*q_c):
 *      |ds_j| <= (d + 2) u S_j,   S_j = |scale| sum_c |q_c k_jc|.        E_s = max_j of it.
 *    The fast softmax is then an exact softmax of logits perturbed by at most E_s, whose
 *    probabilities differ from the exact ones by a factor within exp(+-2 E_s).
 *  - weights exp(s_j - m): the subtraction rounds (u |s_j - m| <= u * spread, spread =
 *    max_j (m - s_j)), the vector exp is Cephes' (<= ~2 ulp; we allow 4 u), and each
 *    rescale by alpha = exp(m_old - m_new) adds <= 5 u. Keys go in groups of 8, 4 or 2
 *    (online_stream) or blocks of 8..32 (online_blocked), and a rescale happens only when a
 *    group's max exceeds the running max; n_rescale counts, from the exact logits, the
 *    groups of 2 whose max exceeds the running max minus 2 E_s (every group that could
 *    rescale once the logits are perturbed; a larger group or block that rescales contains
 *    such a pair, so this bounds every group and block size).
 *  - the running sum l adds each 8 weights in float (3 roundings) into a double:
 *      6 u relative with the final conversions; log(l) turns that into the same absolute
 *      error in lse.
 *  - each output element accumulates n products in sequence: n u relative to
 *      A_c = sum_j p_j |v_jc|  (the natural scale of o_c = sum_j p_j v_jc).
 *  - the reference's final rounding to float: u |x|.
 * Every test tolerance below is twice the sum of these terms (margin for the second-order
 * terms the first-order bounds drop). These are worst-case bounds, so a pass is not luck;
 * the observed errors are far smaller (the largest err/tol ratio of each kind is printed),
 * and a bound this tight on logits and lse still catches a skipped key or block: a key with
 * weight p moves lse by ~p and its logit would be left unwritten (NaN). */
#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "rb.h"

static const double U = 0x1p-24;

/* ---- random data ---- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
/* The stream of testutil.h (splitmix64, Box-Muller), on this file's own state. */
static uint64_t rng_next(void) { return tu_next(&rng_state); }
static double rng_unif(void) { return tu_uniform(&rng_state); }
static float rng_gauss(void) { return (float)tu_randn(&rng_state); }
static int rng_int(int n) { return (int)(rng_next() % (uint64_t)n); }
static float *rand_floats(size_t n) {
    float *x = rb_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = rng_gauss();
    return x;
}
static void poison(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

/* ---- checking ---- */
static int n_fail;
static double worst[5]; /* largest err/tol seen: logits, lse, out, probs, col_mass */
static const char *const kind_name[5] = {"logits", "lse", "out", "probs", "col_mass"};
enum { K_LOGIT, K_LSE, K_OUT, K_PROB, K_COLMASS };

static void check(int kind, double got, double want, double tol, const char *ctx, int i) {
    double err = fabs(got - want);
    if (want == -INFINITY && got == -INFINITY) err = 0;
    if (err <= tol) {
        if (tol > 0 && err / tol > worst[kind]) worst[kind] = err / tol;
        return;
    }
    if (n_fail++ < 25)
        printf("FAIL %s %s[%d]: got %.9g want %.9g (err %.3g > tol %.3g)\n", ctx, kind_name[kind],
               i, got, want, err, tol);
}

/* What the tolerance of one query row needs: computed here in double from the inputs. */
typedef struct {
    double E_s;   /* bound on any logit's error */
    double eps_l; /* bound on the relative error of the softmax sum, = abs error of its log */
    double eps_w; /* bound on the relative error of one unnormalised weight */
    double lse;   /* exact log-sum-exp */
} row_bound;

/* rows kr[0..cnt) against q: fills p [cnt] (exact probabilities), S [cnt] (logit scales),
 * s [cnt] (exact logits) and the row's bounds. */
static row_bound row_analyse(const float *q, const float *const *kr, int cnt, int d, float scale,
                             double *s, double *S, double *p) {
    row_bound b = {0, 0, 0, -INFINITY};
    double m = -INFINITY;
    for (int j = 0; j < cnt; j++) {
        double dot = 0, mag = 0;
        for (int c = 0; c < d; c++)
            dot += (double)q[c] * kr[j][c], mag += fabs((double)q[c] * kr[j][c]);
        s[j] = dot * scale, S[j] = mag * fabs(scale);
        if (s[j] > m) m = s[j];
        double e = (d + 2) * U * S[j];
        if (e > b.E_s) b.E_s = e;
    }
    double z = 0, spread = 0;
    for (int j = 0; j < cnt; j++) {
        z += exp(s[j] - m);
        if (m - s[j] > spread) spread = m - s[j];
    }
    for (int j = 0; j < cnt; j++) p[j] = exp(s[j] - m) / z;
    int n_rescale = 0;
    double run = -INFINITY;
    for (int g0 = 0; g0 < cnt; g0 += 2) {
        double gm = -INFINITY;
        for (int j = g0; j < g0 + 2 && j < cnt; j++) gm = s[j] > gm ? s[j] : gm;
        if (g0 > 0 && gm > run - 2 * b.E_s) n_rescale++;
        run = gm > run ? gm : run;
    }
    b.lse = cnt ? m + log(z) : -INFINITY;
    b.eps_w = 2.01 * b.E_s + (spread + 4 + 5.0 * n_rescale) * U;
    b.eps_l = b.eps_w + 6 * U;
    return b;
}

/* Check one row's lse, out and (optionally) probs against the reference's values. */
static void check_row(const char *ctx, int g, const row_bound *b, const double *s, const double *p,
                      const float *const *vr, int cnt, int d, const float *lse_got,
                      const float *lse_want, const float *out_got, const float *out_want,
                      const float *probs_got, const float *probs_want) {
    if (lse_got) check(K_LSE, *lse_got, *lse_want, 2 * (b->eps_l + U * fabs(b->lse)), ctx, g);
    if (out_got)
        for (int c = 0; c < d; c++) {
            double A = 0;
            for (int j = 0; j < cnt; j++) A += p[j] * fabs(vr[j][c]);
            double tol =
                2 * ((b->eps_w + b->eps_l + (cnt + 3) * U) * A + U * fabs(out_want[c])) + 1e-37;
            check(K_OUT, out_got[c], out_want[c], tol, ctx, g * d + c);
        }
    if (probs_got)
        for (int j = 0; j < cnt; j++) {
            double tol = 2 * (b->E_s + b->eps_l + U * fabs(s[j] - b->lse) + 5 * U) * p[j] + 1e-37;
            check(K_PROB, probs_got[j], probs_want[j], tol, ctx, j);
        }
}

/* ---- dense ---- */
/* ramp > 0: keys get + ramp * (2j/n - 1) * q_0, so head 0's logits rise with j and the
 * running max grows at nearly every group (the most rescales). */
static void test_dense(int G, int n, int d, int ld, float scale_mult, int want_logits, int want_lse,
                       int want_out, float ramp) {
    char ctx[128];
    snprintf(ctx, sizeof ctx, "dense G=%d n=%d d=%d ld=%d x%g L%d S%d O%d ramp%g", G, n, d, ld,
             scale_mult, want_logits, want_lse, want_out, ramp);
    float *q = rand_floats((size_t)G * d);
    size_t rows = n > 0 ? (size_t)(n - 1) * ld + d : 0;
    float *k = rand_floats(rows), *v = rand_floats(rows);
    for (int j = 0; j < n && ramp > 0; j++)
        for (int c = 0; c < d; c++) k[(size_t)j * ld + c] += ramp * (2.0f * j / n - 1) * q[c];
    float scale = scale_mult / sqrtf((float)d);
    size_t nl = (size_t)G * n;
    float *lg_ref = rb_malloc(sizeof(float) * (nl ? nl : 1)),
          *lg = rb_malloc(sizeof(float) * (nl ? nl : 1));
    float *lse_ref = rb_malloc(sizeof(float) * G), *lse = rb_malloc(sizeof(float) * G);
    float *out_ref = rb_malloc(sizeof(float) * G * d), *out = rb_malloc(sizeof(float) * G * d);
    float *work = rb_malloc(sizeof(float) * (nl ? nl : 1));
    attn_dense_ref(q, G, k, v, n, d, ld, scale, lg_ref, lse_ref, out_ref);
    poison(lg, nl), poison(lse, G), poison(out, (size_t)G * d), poison(work, nl);
    attn_dense(q, G, k, v, n, d, ld, scale, want_logits ? lg : NULL, want_lse ? lse : NULL,
               want_out ? out : NULL, want_logits ? NULL : work);

    const float **kr = rb_malloc(sizeof(*kr) * (n ? n : 1)),
                **vr = rb_malloc(sizeof(*vr) * (n ? n : 1));
    for (int j = 0; j < n; j++) kr[j] = k + (size_t)j * ld, vr[j] = v + (size_t)j * ld;
    double *s = rb_malloc(sizeof(double) * (n ? n : 1)),
           *S = rb_malloc(sizeof(double) * (n ? n : 1));
    double *p = rb_malloc(sizeof(double) * (n ? n : 1));
    for (int g = 0; g < G; g++) {
        row_bound b = row_analyse(q + (size_t)g * d, kr, n, d, scale, s, S, p);
        if (want_logits)
            for (int j = 0; j < n; j++)
                check(K_LOGIT, lg[(size_t)g * n + j], lg_ref[(size_t)g * n + j],
                      2 * ((d + 2) * U * S[j] + U * fabs(s[j])), ctx, g * n + j);
        check_row(ctx, g, &b, s, p, vr, n, d, want_lse ? lse + g : NULL, lse_ref + g,
                  want_out ? out + (size_t)g * d : NULL, out_ref + (size_t)g * d, NULL, NULL);
    }
    free(q), free(k), free(v), free(lg_ref), free(lg), free(lse_ref), free(lse), free(out_ref);
    free(out), free(work), free(kr), free(vr), free(s), free(S), free(p);
}

/* ---- dense over every KV head of a layer (attn_dense_heads) ---- */
/* The reference is attn_dense_ref per KV head; the tolerances those of test_dense. */
static void test_dense_heads(int Hq, int Hkv, int n, int d, int pad, int want_logits) {
    char ctx[128];
    snprintf(ctx, sizeof ctx, "dense_heads Hq=%d Hkv=%d n=%d d=%d pad=%d L%d", Hq, Hkv, n, d, pad,
             want_logits);
    int G = Hq / Hkv, ld = Hkv * d + pad;
    float *q = rand_floats((size_t)Hq * d);
    size_t rows = n > 0 ? (size_t)(n - 1) * ld + (size_t)Hkv * d : 0;
    float *k = rand_floats(rows), *v = rand_floats(rows);
    float scale = 1 / sqrtf((float)d);
    size_t nl = (size_t)Hq * n;
    float *lg_ref = rb_malloc(sizeof(float) * (nl ? nl : 1)), *lg = rb_malloc(sizeof(float) * (nl ? nl : 1));
    float *lse_ref = rb_malloc(sizeof(float) * Hq), *lse = rb_malloc(sizeof(float) * Hq);
    float *out_ref = rb_malloc(sizeof(float) * Hq * d), *out = rb_malloc(sizeof(float) * Hq * d);
    for (int g = 0; g < Hkv; g++)
        attn_dense_ref(q + (size_t)g * G * d, G, k + (size_t)g * d, v + (size_t)g * d, n, d, ld,
                       scale, lg_ref + (size_t)g * G * n, lse_ref + g * G, out_ref + (size_t)g * G * d);
    poison(lg, nl), poison(lse, Hq), poison(out, (size_t)Hq * d);
    attn_dense_heads(q, Hq, Hkv, k, v, n, d, ld, scale, want_logits ? lg : NULL, lse, out);
    const float **kr = rb_malloc(sizeof(*kr) * (n ? n : 1)), **vr = rb_malloc(sizeof(*vr) * (n ? n : 1));
    double *s = rb_malloc(sizeof(double) * (n ? n : 1)), *S = rb_malloc(sizeof(double) * (n ? n : 1));
    double *p = rb_malloc(sizeof(double) * (n ? n : 1));
    for (int h = 0; h < Hq; h++) {
        int g = h / G;
        for (int j = 0; j < n; j++)
            kr[j] = k + (size_t)j * ld + (size_t)g * d, vr[j] = v + (size_t)j * ld + (size_t)g * d;
        row_bound b = row_analyse(q + (size_t)h * d, kr, n, d, scale, s, S, p);
        if (want_logits)
            for (int j = 0; j < n; j++)
                check(K_LOGIT, lg[(size_t)h * n + j], lg_ref[(size_t)h * n + j],
                      2 * ((d + 2) * U * S[j] + U * fabs(s[j])), ctx, h * n + j);
        check_row(ctx, h, &b, s, p, vr, n, d, lse + h, lse_ref + h, out + (size_t)h * d,
                  out_ref + (size_t)h * d, NULL, NULL);
    }
    free(q), free(k), free(v), free(lg_ref), free(lg), free(lse_ref), free(lse), free(out_ref);
    free(out), free(kr), free(vr), free(s), free(S), free(p);
}

/* ---- gather ---- */
static void test_gather(int G, int d, int shared, const int *sizes, int want_probs,
                        float scale_mult) {
    int stride = 0;
    for (int g = 0; g < (shared ? 1 : G); g++)
        if (sizes[g] > stride) stride = sizes[g];
    stride += 3; /* rows are stride apart, longer than any set */
    char ctx[128];
    snprintf(ctx, sizeof ctx, "gather G=%d d=%d shared=%d n0=%d stride=%d P%d x%g", G, d, shared,
             sizes[0], stride, want_probs, scale_mult);
    enum { POOL = 3000 };
    float *kp = rand_floats((size_t)POOL * d), *vp = rand_floats((size_t)POOL * d);
    float *q = rand_floats((size_t)G * d);
    float scale = scale_mult / sqrtf((float)d);
    int n[8];
    size_t nr = (size_t)G * stride;
    const float **kr = rb_calloc(nr, sizeof(*kr)), **vr = rb_calloc(nr, sizeof(*vr));
    for (int g = 0; g < (shared ? 1 : G); g++) {
        n[g] = sizes[g];
        for (int j = 0; j < n[g]; j++) {
            int row = rng_int(POOL); /* pointer-chased rows, repeats allowed */
            kr[(size_t)g * stride + j] = kp + (size_t)row * d;
            vr[(size_t)g * stride + j] = vp + (size_t)row * d;
        }
    }
    float *pr_ref = rb_malloc(sizeof(float) * nr), *pr = rb_malloc(sizeof(float) * nr);
    float *out_ref = rb_malloc(sizeof(float) * G * d), *out = rb_malloc(sizeof(float) * G * d);
    float *work = rb_malloc(sizeof(float) * nr);
    attn_gather_ref(q, G, kr, vr, n, stride, shared, d, scale, pr_ref, out_ref);
    poison(pr, nr), poison(out, (size_t)G * d), poison(work, nr);
    attn_gather(q, G, kr, vr, n, stride, shared, d, scale, want_probs ? pr : NULL, out, work);

    double *s = rb_malloc(sizeof(double) * stride), *S = rb_malloc(sizeof(double) * stride);
    double *p = rb_malloc(sizeof(double) * stride);
    for (int g = 0; g < G; g++) {
        int set = shared ? 0 : g;
        const float *const *ks = kr + (size_t)set * stride, *const *vs = vr + (size_t)set * stride;
        row_bound b = row_analyse(q + (size_t)g * d, ks, n[set], d, scale, s, S, p);
        check_row(ctx, g, &b, s, p, vs, n[set], d, NULL, NULL, out + (size_t)g * d,
                  out_ref + (size_t)g * d, want_probs ? pr + (size_t)g * stride : NULL,
                  pr_ref + (size_t)g * stride);
    }
    free(kp), free(vp), free(q), free(kr), free(vr), free(pr_ref), free(pr), free(out_ref);
    free(out), free(work), free(s), free(S), free(p);
}

/* ---- causal ---- */
static void test_causal(int n, int Hq, int Hkv, int d, int want_cm) {
    char ctx[128];
    snprintf(ctx, sizeof ctx, "causal n=%d Hq=%d Hkv=%d d=%d C%d", n, Hq, Hkv, d, want_cm);
    int G = Hq / Hkv;
    float *q = rand_floats((size_t)n * Hq * d), *k = rand_floats((size_t)n * Hkv * d);
    float *v = rand_floats((size_t)n * Hkv * d);
    float scale = 1 / sqrtf((float)d);
    size_t no = (size_t)n * Hq * d, nc = (size_t)Hkv * n;
    float *out_ref = rb_malloc(sizeof(float) * (no ? no : 1)),
          *out = rb_malloc(sizeof(float) * (no ? no : 1));
    float *cm_ref = rb_malloc(sizeof(float) * (nc ? nc : 1)),
          *cm = rb_malloc(sizeof(float) * (nc ? nc : 1));
    attn_causal_ref(q, k, v, n, Hq, Hkv, d, scale, out_ref, cm_ref);
    poison(out, no), poison(cm, nc);
    attn_causal(q, k, v, n, Hq, Hkv, d, scale, out, want_cm ? cm : NULL);

    const float **kr = rb_malloc(sizeof(*kr) * (n ? n : 1)),
                **vr = rb_malloc(sizeof(*vr) * (n ? n : 1));
    double *s = rb_malloc(sizeof(double) * (n ? n : 1)),
           *S = rb_malloc(sizeof(double) * (n ? n : 1));
    double *p = rb_malloc(sizeof(double) * (n ? n : 1));
    double *cm_tol = rb_calloc(nc ? nc : 1, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int h = 0; h < Hq; h++) {
            int kh = h / G;
            for (int j = 0; j <= i; j++) {
                kr[j] = k + ((size_t)j * Hkv + kh) * d;
                vr[j] = v + ((size_t)j * Hkv + kh) * d;
            }
            size_t off = ((size_t)i * Hq + h) * d;
            row_bound b = row_analyse(q + off, kr, i + 1, d, scale, s, S, p);
            check_row(ctx, i * Hq + h, &b, s, p, vr, i + 1, d, NULL, NULL, out + off, out_ref + off,
                      NULL, NULL);
            /* each probability summed into col_mass carries the error of a gather prob */
            for (int j = 0; j <= i; j++)
                cm_tol[(size_t)kh * n + j] +=
                    (b.E_s + b.eps_l + U * fabs(s[j] - b.lse) + 5 * U) * p[j];
        }
    if (want_cm)
        for (size_t x = 0; x < nc; x++) {
            /* both sides add up to n*G floats in sequence: (n G) u each, relative */
            double tol = 2 * (cm_tol[x] + 2.0 * n * G * U * fabs(cm_ref[x])) + 1e-30;
            check(K_COLMASS, cm[x], cm_ref[x], tol, ctx, (int)x);
        }
    free(q), free(k), free(v), free(out_ref), free(out), free(cm_ref), free(cm), free(kr);
    free(vr), free(s), free(S), free(p), free(cm_tol);
}

/* ---- edge cases with exact answers ---- */
static void test_exact(void) {
    /* One key: probability 1, output = v, lse = the logit. */
    float q[4] = {1, 2, 3, 4}, k[4] = {0.5f, 0.25f, -1, 2}, v[4] = {7, -3, 0.125f, 9};
    float lg = NAN, lse = NAN, out[4] = {NAN, NAN, NAN, NAN};
    attn_dense(q, 1, k, v, 1, 4, 4, 0.5f, &lg, &lse, out, NULL);
    float want = 0.5f * (0.5f + 0.5f - 3 + 8);
    check(K_LOGIT, lg, want, 0, "exact one key", 0);
    check(K_LSE, lse, want, 0, "exact one key", 0);
    for (int c = 0; c < 4; c++) check(K_OUT, out[c], v[c], 0, "exact one key", c);
    /* No keys: lse -inf, output 0 (the reference's empty sums). */
    lse = NAN;
    for (int c = 0; c < 4; c++) out[c] = NAN;
    attn_dense(q, 1, k, v, 0, 4, 4, 0.5f, NULL, &lse, out, &lg);
    check(K_LSE, lse, -INFINITY, 0, "exact no keys", 0);
    for (int c = 0; c < 4; c++) check(K_OUT, out[c], 0, 0, "exact no keys", c);
    /* Two equal keys far beyond exp's range: probabilities 1/2 each, lse = s + log 2. */
    float big[8] = {100, 0, 0, 0, 100, 0, 0, 0}, vv[8] = {1, 2, 3, 4, 3, 2, 1, 0}, o[8];
    float qq[4] = {1, 0, 0, 0};
    attn_dense(qq, 1, big, vv, 2, 4, 4, 1.0f, NULL, &lse, o, (float[2]){0});
    check(K_LSE, lse, 100 + log(2.0), 2 * U * 101, "exact huge logits", 0);
    for (int c = 0; c < 4; c++) check(K_OUT, o[c], 2, 4 * U, "exact huge logits", c);
}


/* attn_exp_shift against expf: Cephes' polynomial is within ~2 ulp (relative 2.4e-7) of
 * expf over the whole range, bound taken as 1e-6 relative; below e^-87.3 the fast version
 * flushes to 0 where expf gives a denormal under 1.2e-38 (absolute bound 2e-38). Inputs
 * span the shifted-logit range replay feeds it (x - shift in [-120, 0]) plus -inf. */
static void test_exp_shift(void) {
    int n = 1003;
    float *x = rb_malloc(sizeof(float) * n), *a = rb_malloc(sizeof(float) * n),
          *b = rb_malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = (float)(-120.0 * rng_unif()) + 3.5f;
    x[0] = -INFINITY, x[1] = 3.5f, x[2] = 3.5f - 87.0f;
    for (int i = 0; i < n; i++) a[i] = NAN;
    attn_exp_shift(x, 3.5f, n, a);
    attn_exp_shift_ref(x, 3.5f, n, b);
    for (int i = 0; i < n; i++) {
        double err = fabs((double)a[i] - b[i]), tol = 1e-6 * b[i] + 2e-38;
        if (!(err <= tol)) {
            fprintf(stderr, "attn_exp_shift: x=%g got %g want %g\n", x[i], a[i], b[i]);
            exit(1);
        }
    }
    free(x), free(a), free(b);
}

/* attn_weighted_rows against its double reference: each output element is n products
 * accumulated in float in sequence, so |err| <= (n + 1) u A_c with A_c = sum_i |p_i v_ic|;
 * the tolerance is twice that. Weights of any sign (the kernel does not assume
 * probabilities), rows gathered in a scrambled order, ldp > n. */
static void test_weighted(int G, int n, int d) {
    char ctx[64];
    snprintf(ctx, sizeof ctx, "weighted G=%d n=%d d=%d", G, n, d);
    int ldp = n + 3, pool = n + 7;
    float *p = rand_floats((size_t)G * ldp), *v = rand_floats((size_t)pool * d);
    const float **vr = rb_malloc(sizeof(*vr) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) vr[i] = v + (size_t)((i * 7 + 3) % pool) * d;
    float *out = rb_malloc(sizeof(float) * (size_t)G * d), *want = rb_malloc(sizeof(float) * (size_t)G * d);
    poison(out, (size_t)G * d);
    attn_weighted_rows(p, G, ldp, vr, n, d, out);
    attn_weighted_rows_ref(p, G, ldp, vr, n, d, want);
    for (int g = 0; g < G; g++)
        for (int c = 0; c < d; c++) {
            double A = 0;
            for (int i = 0; i < n; i++) A += fabs((double)p[(size_t)g * ldp + i] * vr[i][c]);
            check(K_OUT, out[(size_t)g * d + c], want[(size_t)g * d + c],
                  2 * (n + 1) * U * A + 1e-37, ctx, g * d + c);
        }
    free(p), free(v), free(vr), free(out), free(want);
}

int main(void) {
    int64_t t0 = rb_now_ns();
    test_exact();
    test_exp_shift();
    for (int G = 1; G <= 9; G += 2)
        for (int n = 0; n <= 100; n += 33) test_weighted(G, n, 8 + 28 * (G % 4));
    test_weighted(4, 1000, 64);
    test_weighted(3, 257, 256);
    static const int ds[] = {16, 20, 64, 128, 256};
    static const int ns[] = {0, 1, 2, 15, 16, 17, 63, 64, 65, 1000, 4096};
    int idx = 0;
    for (size_t a = 0; a < sizeof ds / sizeof *ds; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++, idx++) {
            int d = ds[a], n = ns[b], G = 1 + idx % 8;
            if (n == 4096 && G > 4) G = 4; /* keep the double reference quick */
            int ld = idx % 2 ? d : 3 * d + 5;
            test_dense(G, n, d, ld, 1.0f, idx % 3 != 1, idx % 4 != 3, idx % 5 != 4, 0);
        }
    for (int G = 1; G <= 8; G++) {
        test_dense(G, 17, 64, 4 * 64, 1.0f, 1, 1, 1, 0);
        test_dense(G, 200, 128, 128, 1.0f, 1, 1, 1, 0);
    }
    /* Large-magnitude logits: random q, k have |q.k| / sqrt(d) ~ 1..4; x20 reaches ~+-80. */
    test_dense(4, 1000, 64, 64, 20.0f, 1, 1, 1, 0);
    test_dense(2, 4096, 256, 512, 20.0f, 1, 1, 1, 0);
    test_dense(8, 65, 16, 16, 20.0f, 1, 1, 1, 0);
    /* Rising logits (head 0 spans about -40 .. +40 over 1000 keys): a rescale per group. */
    test_dense(2, 1000, 64, 64, 1.0f, 1, 1, 1, 5.0f);

    /* Every KV head in one pass: group sizes 8, 4, 2 (by Hkv * d), padded token rows. */
    test_dense_heads(8, 2, 1000, 64, 0, 1);
    test_dense_heads(8, 8, 333, 16, 3, 1);
    test_dense_heads(4, 1, 65, 20, 0, 0);
    test_dense_heads(6, 3, 17, 128, 5, 1);
    test_dense_heads(16, 2, 130, 256, 0, 1);
    test_dense_heads(2, 2, 0, 64, 0, 1);

    /* Gather: per-head sets of assorted sizes (0, 1, block edges, large), then shared. */
    static const int gd[] = {16, 20, 64, 128, 256};
    for (size_t a = 0; a < sizeof gd / sizeof *gd; a++) {
        int d = gd[a];
        int sizes[8] = {1, 0, 8, 17, 64, 65, 256, 1024};
        for (int G = 1; G <= 8; G += 3) {
            int sz[8];
            for (int g = 0; g < G; g++) sz[g] = sizes[(g + (int)a) % 8];
            test_gather(G, d, 0, sz, (int)a % 2, 1.0f);
        }
        static const int shared_n[] = {1, 7, 64, 256, 1024};
        for (size_t b = 0; b < sizeof shared_n / sizeof *shared_n; b++) {
            int sz[1] = {shared_n[b]};
            test_gather(1 + (int)(a + b) % 8, d, 1, sz, (int)b % 2 == 0, 1.0f);
        }
    }
    int one[1] = {1}, big_set[1] = {1024};
    test_gather(8, 64, 1, one, 1, 1.0f);
    test_gather(4, 128, 1, big_set, 1, 20.0f);
    int per[4] = {300, 1, 77, 1024};
    test_gather(4, 64, 0, per, 1, 20.0f);

    /* Causal: block edges of 16 query positions and 32/64 keys; col_mass on and off. */
    test_causal(1, 1, 1, 16, 1);
    test_causal(5, 4, 1, 64, 1);
    test_causal(17, 8, 2, 20, 1);
    test_causal(40, 6, 3, 16, 0);
    test_causal(130, 4, 1, 64, 1);
    test_causal(200, 2, 2, 256, 1);

    for (int i = 0; i < 5; i++) printf("# largest err/tol of %s: %.3g\n", kind_name[i], worst[i]);
    printf("# test_attn: %.2f s\n", (rb_now_ns() - t0) * 1e-9);
    if (n_fail) {
        printf("%d checks failed\n", n_fail);
        return 1;
    }
    return 0;
}
