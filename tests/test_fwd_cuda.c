/* test_fwd_cuda.c: the GPU forward's kernels (kernels/cuda/fwd_cuda.cu) against CPU
 * references on random data. Exits 77 where no CUDA device is usable or CUDA is not built.
 *
 *  - matvec: every format quant_supported() takes, against quant_matvec_ref (dequantized
 *    weights, double sums), at shapes with odd row counts, products of >= 16384 short rows
 *    (the output product's shape class), float formats at widths that are
 *    not a multiple of 32, several jobs in one launch with biases, the gated activations
 *    (gelu_tanh, silu: x' = act(gate) * up), the final softcap, and Gemma 3's output product
 *    (262144 x 640, Q8_0) whose time and bandwidth are printed beside a device copy of the
 *    same bytes. TOLERANCE per row, from first-order bounds (u = 2^-24): the device sums 32
 *    products per lane in sequence (fma), then its lane's chunks (ceil(chunks / 32) adds),
 *    then 5 shuffle adds: |y - y_ref| <= n u S, n = 32 + ceil(chunks / 32) + 6, S = sum_c
 *    |w_c x'_c|; with an activation x' itself is off by the device tanhf/expf's error (<= 2
 *    ulp, CUDA guide) plus 3 roundings: 6 more u S, and where gelu's 1 + tanh cancels
 *    (x very negative) by about u |x| |x2| absolute: 4 u sum_c |w_c x_c x2_c| more; the
 *    softcap's tanh another 4 u |y|. The
 *    check is twice that plus u |y_ref| (the reference's own rounding). A weight block
 *    dequantized wrongly moves a row by ~|w| |x| >> u S, so it fails.
 *  - greedy choice: the lowest index of the largest y, with ties made on purpose.
 *  - residual/RMS norm, q/k norm with RoPE (neox and normal pairs, frequency factors,
 *    position scale, positions up to 32767), embedding: against model.c's formulas written
 *    out here. The norms sum in double on both sides (order differs: the factor r can move
 *    by 1 ulp), every product rounds alone: 4 u |ref| + 1e-30. RoPE's angles are double on
 *    both sides; cos/sin (CUDA: 2 ulp in double) round to the same float but at a tie:
 *    4 u (|x0| + |x1|) per element.
 *  - bookkeeping (position step, greedy token into the history), a captured graph replayed
 *    three times equal to the same launches run directly, and bad input refused before
 *    anything is launched. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "cuda/attn_cuda.h"
#include "cuda/fwd_cuda.h"
#include "quant.h"

static const double U = 0x1p-24;
static attn_cuda *ctx;
static uint64_t seed = 0x5eed;

#define OK(call)                                                                               \
    do {                                                                                       \
        rb_err e_ = {0};                                                                       \
        rb_status s_ = (call);                                                                 \
        tu_checks++;                                                                           \
        if (s_ != RB_OK) {                                                                     \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call, e_.what,  \
                    e_.why);                                                                   \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)
/* OK's calls name their error argument &e_. */

static void *dev_alloc(size_t n) {
    void *p;
    OK(attn_cuda_alloc(ctx, n + FWD_PAD, &p, &e_));
    return p;
}
static void *dev_from(const void *h, size_t n) {
    void *p = dev_alloc(n);
    OK(attn_cuda_upload(ctx, p, h, n, &e_));
    return p;
}
static void dev_to(void *h, const void *d, size_t n) {
    OK(attn_cuda_sync(ctx, &e_));
    OK(attn_cuda_download(ctx, h, d, n, &e_));
}

static float *randn_vec(int n, float gain) {
    float *v = rb_malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) v[i] = gain * (float)tu_randn(&seed);
    return v;
}

static float gelu_ref(float x) {
    const float k = 0.7978845608028654f;
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}
static float silu_ref(float x) { return x / (1.0f + expf(-x)); }

/* A random matrix in type t on host and device. */
typedef struct hmat {
    ggml_type t;
    int rows, cols;
    uint8_t *h;
    void *d;
    size_t bytes;
} hmat;

static hmat mat_make(ggml_type t, int rows, int cols) {
    hmat m = {t, rows, cols, NULL, NULL, 0};
    size_t rb = quant_row_bytes(t, cols);
    m.bytes = rb * (size_t)rows;
    m.h = rb_malloc(m.bytes);
    for (int r = 0; r < rows; r++) quant_random_row(t, m.h + (size_t)r * rb, cols, &seed);
    m.d = dev_from(m.h, m.bytes);
    return m;
}
static void mat_free(hmat *m) {
    free(m->h);
    attn_cuda_free(ctx, m->d);
}
static fwd_mat mat_dev(const hmat *m) { return (fwd_mat){m->d, (int)m->t, m->rows, m->cols}; }

static double worst_ratio;

/* y (device result) against W x' (+bias), x' = act(x) * x2 or x. */
static void check_rows(const hmat *m, const float *x, const float *x2, int act, const float *bias,
                       float softcap, const float *y, const char *what) {
    size_t rb = quant_row_bytes(m->t, m->cols);
    float *xp = rb_malloc(sizeof(float) * (size_t)m->cols), *w = rb_malloc(sizeof(float) * (size_t)m->cols);
    for (int c = 0; c < m->cols; c++)
        xp[c] = act == FWD_ACT_GELU_TANH ? gelu_ref(x[c]) * x2[c]
              : act == FWD_ACT_SILU ? silu_ref(x[c]) * x2[c] : x[c];
    long long nch = (m->cols + 31) / 32;
    double n_seq = 32 + (double)((nch + 31) / 32) + 6 + (act ? 6 : 0);
    for (int r = 0; r < m->rows; r++) {
        quant_dequant_row_ref(m->t, m->h + (size_t)r * rb, w, m->cols);
        double acc = 0, S = 0, S_act = 0;
        for (int c = 0; c < m->cols; c++) {
            acc += (double)w[c] * xp[c];
            S += fabs((double)w[c] * xp[c]);
            if (act) S_act += fabs((double)w[c] * x[c] * x2[c]);
        }
        float ref = (float)acc;
        /* with an activation, gelu's 1 + tanh cancels where x is very negative: tanhf's 2 ulp
         * of 1 there is an absolute error of about u |x| in gelu(x) (relative to nothing) */
        double tol = n_seq * U * S + 4 * U * S_act;
        if (bias) {
            ref += bias[r];
            tol += U * fabs(ref);
        }
        if (softcap > 0) {
            /* d tanh(y/c) c / dy <= 1: the product error passes through, plus tanh's own */
            ref = tanhf(ref / softcap) * softcap;
            tol += 4 * U * fabs(ref);
        }
        tol = 2 * tol + U * fabs(ref) + 1e-30;
        double err = fabs((double)y[r] - ref);
        if (err / tol > worst_ratio) worst_ratio = err / tol;
        TU_ASSERT(err <= tol, "%s: %s [%d x %d] row %d: %.9g vs %.9g (err %.3g, tol %.3g)", what,
                  ggml_type_name(m->t), m->rows, m->cols, r, y[r], ref, err, tol);
    }
    free(xp);
    free(w);
}

static const ggml_type types[] = {
    GGML_T_F32, GGML_T_F16, GGML_T_BF16, GGML_T_Q4_0, GGML_T_Q4_1, GGML_T_Q5_0,
    GGML_T_Q5_1, GGML_T_Q8_0, GGML_T_Q4_K, GGML_T_Q5_K, GGML_T_Q6_K,
};
#define N_TYPES (int)(sizeof types / sizeof types[0])

static void one_matvec(ggml_type t, int rows, int cols, int act, int with_bias, float softcap) {
    hmat m = mat_make(t, rows, cols);
    float *x = randn_vec(cols, 1.0f), *x2 = act ? randn_vec(cols, 1.0f) : NULL;
    float *bias = with_bias ? randn_vec(rows, 0.5f) : NULL;
    float *dx = dev_from(x, sizeof(float) * cols), *dx2 = x2 ? dev_from(x2, sizeof(float) * cols) : NULL;
    float *db = bias ? dev_from(bias, sizeof(float) * rows) : NULL;
    float *dy = dev_alloc(sizeof(float) * rows);
    fwd_mv j = {.m = mat_dev(&m), .x = dx, .x2 = dx2, .act = act, .bias = db, .y = dy};
    OK(fwd_cuda_matvec(ctx, &j, 1, softcap, NULL, &e_));
    float *y = rb_malloc(sizeof(float) * rows);
    dev_to(y, dy, sizeof(float) * rows);
    char what[64];
    snprintf(what, sizeof what, "matvec act %d bias %d cap %g", act, with_bias, softcap);
    check_rows(&m, x, x2, act, bias, softcap, y, what);
    free(x), free(x2), free(bias), free(y);
    attn_cuda_free(ctx, dx), attn_cuda_free(ctx, dx2), attn_cuda_free(ctx, db), attn_cuda_free(ctx, dy);
    mat_free(&m);
}

static void test_matvec_types(void) {
    for (int i = 0; i < N_TYPES; i++) {
        ggml_type t = types[i];
        int be = ggml_block_elems(t), kq = be == 256;
        one_matvec(t, 1, kq ? 256 : 32, 0, 0, 0);
        one_matvec(t, 37, kq ? 512 : 640, 0, 0, 0);
        one_matvec(t, 333, kq ? 2048 : 640, 0, 1, 0);
        one_matvec(t, 1025, kq ? 1280 : 2048, 0, 0, 0);
        one_matvec(t, 77, kq ? 8192 : 4096, 0, 0, 0); /* several 32-chunk rounds per row */
        if (be == 1) {
            one_matvec(t, 45, 33, 0, 1, 0);
            one_matvec(t, 7, 95, 0, 0, 0);
            one_matvec(t, 3, 1, 0, 0, 0);
        }
        one_matvec(t, 129, kq ? 512 : 640, FWD_ACT_GELU_TANH, 0, 0);
        one_matvec(t, 65, kq ? 512 : 640, FWD_ACT_SILU, 0, 0);
        one_matvec(t, 50, kq ? 256 : 96, 0, 1, 30.0f);
        /* >= 16384 short rows, as the output product */
        one_matvec(t, 20001, kq ? 256 : be == 1 ? 200 : 640, 0, 1, 0);
        if (i % 4 == 0) one_matvec(t, 16500, kq ? 256 : 96, FWD_ACT_SILU, 0, 0);
    }
    printf("matvec: every type, worst error %.3f of its tolerance\n", worst_ratio);
}

/* q, k, v of different formats in one launch, with biases, sharing x. */
static void test_matvec_jobs(void) {
    hmat a = mat_make(GGML_T_Q5_0, 1024, 640), b = mat_make(GGML_T_Q8_0, 256, 640);
    hmat c = mat_make(GGML_T_Q4_K, 257, 640 - 128);
    float *x = randn_vec(640, 1.0f), *ba = randn_vec(1024, 1.0f), *bb = randn_vec(256, 1.0f);
    float *dx = dev_from(x, sizeof(float) * 640);
    float *dba = dev_from(ba, 1024 * 4), *dbb = dev_from(bb, 256 * 4);
    float *ya = dev_alloc(1024 * 4), *yb = dev_alloc(256 * 4), *yc = dev_alloc(257 * 4);
    fwd_mv j[3] = {
        {.m = mat_dev(&a), .x = dx, .bias = dba, .y = ya},
        {.m = mat_dev(&b), .x = dx, .bias = dbb, .y = yb},
        {.m = mat_dev(&c), .x = dx, .y = yc},
    };
    OK(fwd_cuda_matvec(ctx, j, 3, 0, NULL, &e_));
    float *h = rb_malloc(1024 * 4);
    dev_to(h, ya, 1024 * 4);
    check_rows(&a, x, NULL, 0, ba, 0, h, "job 0 of 3");
    dev_to(h, yb, 256 * 4);
    check_rows(&b, x, NULL, 0, bb, 0, h, "job 1 of 3");
    dev_to(h, yc, 257 * 4);
    check_rows(&c, x, NULL, 0, NULL, 0, h, "job 2 of 3");
    free(x), free(ba), free(bb), free(h);
    attn_cuda_free(ctx, dx), attn_cuda_free(ctx, dba), attn_cuda_free(ctx, dbb);
    attn_cuda_free(ctx, ya), attn_cuda_free(ctx, yb), attn_cuda_free(ctx, yc);
    mat_free(&a), mat_free(&b), mat_free(&c);
}

static int argmax_host(const float *y, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (y[i] > y[b]) b = i;
    return b;
}

/* The greedy choice folded into the product, read out by fwd_cuda_advance into the token
 * history at the advanced position; ties to the lowest index. */
static void test_argmax(void) {
    /* F32 rows 900 and 300 identical and largest; 100 equal to them but negated x gives
     * less: the choice must be 300 */
    const int rows = 1000, cols = 64;
    float *w = randn_vec(rows * cols, 0.1f), *x = randn_vec(cols, 1.0f);
    for (int c = 0; c < cols; c++) w[300 * cols + c] = w[900 * cols + c] = x[c] > 0 ? 1.0f : -1.0f;
    float *dw = dev_from(w, sizeof(float) * rows * cols), *dx = dev_from(x, sizeof(float) * cols);
    float *dy = dev_alloc(sizeof(float) * rows);
    int32_t zero[8] = {0};
    uint64_t *dk = dev_from(zero, 8);
    int32_t *dpos = dev_from(zero, 4), *dtok = dev_from(zero, 32), *dlast = dev_from(zero, 4);
    int32_t p3 = 3;
    OK(attn_cuda_upload(ctx, dpos, &p3, 4, &e_));
    fwd_mv j = {.m = {dw, GGML_T_F32, rows, cols}, .x = dx, .y = dy};
    OK(fwd_cuda_matvec(ctx, &j, 1, 0, dk, &e_));
    OK(fwd_cuda_advance(ctx, dpos, 1, dk, dtok, 7, dlast, &e_));
    float *y = rb_malloc(sizeof(float) * rows);
    dev_to(y, dy, sizeof(float) * rows);
    int32_t tok[8], pos, last;
    uint64_t key;
    dev_to(tok, dtok, 32);
    dev_to(&pos, dpos, 4);
    dev_to(&last, dlast, 4);
    dev_to(&key, dk, 8);
    TU_ASSERT(argmax_host(y, rows) == 300, "host argmax of the device y: %d", argmax_host(y, rows));
    TU_ASSERT(y[300] == y[900], "identical rows give identical sums");
    TU_ASSERT(pos == 4 && tok[4] == 300 && last == 300, "pos %d, tokens[4] %d, last %d", pos, tok[4], last);
    TU_ASSERT(key == 0, "the accumulator is zeroed after reading");
    /* a random Q8_0 product with a softcap: the device's choice is the host's on its y */
    hmat m = mat_make(GGML_T_Q8_0, 70001, 640);
    float *x2 = randn_vec(640, 1.0f);
    float *dx2 = dev_from(x2, 640 * 4), *dy2 = dev_alloc(70001 * 4);
    fwd_mv j2 = {.m = mat_dev(&m), .x = dx2, .y = dy2};
    OK(fwd_cuda_matvec(ctx, &j2, 1, 30.0f, dk, &e_));
    OK(fwd_cuda_advance(ctx, dpos, 0, dk, dtok, 7, dlast, &e_));
    float *y2 = rb_malloc(70001 * 4);
    dev_to(y2, dy2, 70001 * 4);
    dev_to(&last, dlast, 4);
    dev_to(tok, dtok, 32);
    TU_ASSERT(last == argmax_host(y2, 70001) && tok[4] == last, "device %d host %d", last,
              argmax_host(y2, 70001));
    free(w), free(x), free(y), free(x2), free(y2);
    attn_cuda_free(ctx, dw), attn_cuda_free(ctx, dx), attn_cuda_free(ctx, dy), attn_cuda_free(ctx, dk);
    attn_cuda_free(ctx, dpos), attn_cuda_free(ctx, dtok), attn_cuda_free(ctx, dlast);
    attn_cuda_free(ctx, dx2), attn_cuda_free(ctx, dy2);
    mat_free(&m);
}

/* model.c's rmsnorm */
static void rmsnorm_ref(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

static void near(const float *a, const float *ref, int n, double rel, const char *what) {
    for (int i = 0; i < n; i++) {
        double tol = rel * fabs(ref[i]) + 1e-30;
        TU_ASSERT(fabs((double)a[i] - ref[i]) <= tol, "%s [%d]: %.9g vs %.9g", what, i, a[i], ref[i]);
    }
}

static void test_residual_norm(void) {
    const int sizes[] = {640, 1, 33, 4096, 5120};
    for (int si = 0; si < 5; si++) {
        int n = sizes[si];
        for (int post = 0; post < 3; post++) { /* 0: no o, 1: o, 2: o with post norm */
            float *o = randn_vec(n, 3.0f), *pw = randn_vec(n, 1.0f), *x = randn_vec(n, 2.0f);
            float *w = randn_vec(n, 1.0f);
            float *dx = dev_from(x, 4 * n), *do_ = dev_from(o, 4 * n), *dpw = dev_from(pw, 4 * n);
            float *dw = dev_from(w, 4 * n), *dxn = dev_alloc(4 * n);
            OK(fwd_cuda_residual_norm(ctx, post ? do_ : NULL, post == 2 ? dpw : NULL, dx, dw, n,
                                      1e-6f, dxn, &e_));
            float *rx = rb_malloc(4 * n), *rxn = rb_malloc(4 * n), *gx = rb_malloc(4 * n);
            float *gxn = rb_malloc(4 * n);
            memcpy(rx, x, 4 * n);
            if (post == 2) rmsnorm_ref(o, o, pw, n, 1e-6f);
            if (post)
                for (int i = 0; i < n; i++) rx[i] += o[i];
            rmsnorm_ref(rxn, rx, w, n, 1e-6f);
            dev_to(gx, dx, 4 * n);
            dev_to(gxn, dxn, 4 * n);
            /* x: a plain add is exact; the post-normed o may differ by the norm factor's
             * ulp (and its two products), then one add */
            for (int i = 0; i < n; i++) {
                double tol = post == 2 ? 8 * U * fabs(o[i]) + 2 * U * fabs(rx[i]) + 1e-30 : 0;
                TU_ASSERT(fabs((double)gx[i] - rx[i]) <= tol, "residual post %d [%d]: %.9g vs %.9g",
                          post, i, gx[i], rx[i]);
            }
            near(gxn, rxn, n, 8 * U, "rmsnorm");
            free(o), free(pw), free(x), free(w), free(rx), free(rxn), free(gx), free(gxn);
            attn_cuda_free(ctx, dx), attn_cuda_free(ctx, do_), attn_cuda_free(ctx, dpw);
            attn_cuda_free(ctx, dw), attn_cuda_free(ctx, dxn);
        }
    }
}

/* model.c's rope_table and rope_apply */
static void rope_ref(float *x, int d, double pos, double base, const float *factors, int neox) {
    for (int i = 0; i < d / 2; i++) {
        double theta = pos * pow(base, -2.0 * i / d);
        if (factors) theta /= factors[i];
        float c = (float)cos(theta), sn = (float)sin(theta);
        int a = neox ? i : 2 * i, b = neox ? i + d / 2 : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * sn;
        x[b] = x0 * sn + x1 * c;
    }
}

static void test_qk_finish(void) {
    const int ds[] = {256, 128, 64, 2};
    const int positions[] = {0, 1, 17, 511, 4096, 32767};
    for (int di = 0; di < 4; di++)
        for (int variant = 0; variant < 4; variant++) {
            int d = ds[di], nq = 4, nk = variant == 3 ? 0 : 2;
            int neox = variant != 1, norm = variant == 0 || variant == 3;
            float *q = randn_vec(nq * d, 2.0f), *k = randn_vec(nk * d, 2.0f);
            float *qn = randn_vec(d, 1.0f), *kn = randn_vec(d, 1.0f), *fac = rb_malloc(2 * d);
            for (int i = 0; i < d / 2; i++) fac[i] = 1.0f + (float)i / 7.0f;
            const float *use_fac = variant == 2 ? fac : NULL;
            float base = variant == 1 ? 10000.0f : 1e6f, scale = variant == 2 ? 0.25f : 1.0f;
            float *dq = dev_alloc(4 * nq * d), *dk = dev_alloc(4 * (nk ? nk : 1) * d);
            float *dqn = dev_from(qn, 4 * d), *dkn = dev_from(kn, 4 * d), *dfac = dev_from(fac, 2 * d);
            int32_t *dpos = dev_alloc(4);
            for (int pi = 0; pi < 6; pi++) {
                int32_t p = positions[pi];
                OK(attn_cuda_upload(ctx, dq, q, 4 * nq * d, &e_));
                if (nk) OK(attn_cuda_upload(ctx, dk, k, 4 * nk * d, &e_));
                OK(attn_cuda_upload(ctx, dpos, &p, 4, &e_));
                fwd_rope rope = {neox, base, scale, use_fac ? dfac : NULL};
                OK(fwd_cuda_qk_finish(ctx, dq, nq, norm ? dqn : NULL, nk ? dk : NULL, nk,
                                      norm ? dkn : NULL, d, 1e-6f, dpos, &rope, &e_));
                float *gq = rb_malloc(4 * nq * d), *gk = rb_malloc(4 * (nk ? nk : 1) * d);
                float *rq = rb_malloc(4 * nq * d), *rk = rb_malloc(4 * (nk ? nk : 1) * d);
                dev_to(gq, dq, 4 * nq * d);
                if (nk) dev_to(gk, dk, 4 * nk * d);
                memcpy(rq, q, 4 * nq * d);
                if (nk) memcpy(rk, k, 4 * nk * d);
                for (int h = 0; h < nq + nk; h++) {
                    float *v = h < nq ? rq + h * d : rk + (h - nq) * d;
                    float *pre = rb_malloc(4 * d);
                    if (norm) rmsnorm_ref(v, v, h < nq ? qn : kn, d, 1e-6f);
                    memcpy(pre, v, 4 * d);
                    rope_ref(v, d, (double)p * (double)scale, base, use_fac, neox);
                    const float *g = h < nq ? gq + h * d : gk + (h - nq) * d;
                    for (int i = 0; i < d / 2; i++) {
                        int a = neox ? i : 2 * i, b = neox ? i + d / 2 : 2 * i + 1;
                        /* the norm's factor (1 ulp) and a cos/sin rounding tie (1 ulp) */
                        double tol = 8 * U * (fabs(pre[a]) + fabs(pre[b])) + 1e-30;
                        TU_ASSERT(fabs(g[a] - v[a]) <= tol && fabs(g[b] - v[b]) <= tol,
                                  "qk_finish d %d variant %d pos %d head %d pair %d: %.9g %.9g vs %.9g %.9g",
                                  d, variant, p, h, i, g[a], g[b], v[a], v[b]);
                    }
                    free(pre);
                }
                free(gq), free(gk), free(rq), free(rk);
            }
            free(q), free(k), free(qn), free(kn), free(fac);
            attn_cuda_free(ctx, dq), attn_cuda_free(ctx, dk), attn_cuda_free(ctx, dqn);
            attn_cuda_free(ctx, dkn), attn_cuda_free(ctx, dfac), attn_cuda_free(ctx, dpos);
        }
}

static void test_embed(void) {
    for (int ti = 0; ti < 3; ti++) {
        ggml_type t = ti == 0 ? GGML_T_Q8_0 : ti == 1 ? GGML_T_F32 : GGML_T_Q6_K;
        int n = t == GGML_T_Q6_K ? 512 : 640, rows = 1000;
        hmat m = mat_make(t, rows, n);
        float *w = randn_vec(n, 1.0f), *dw = dev_from(w, 4 * n);
        int32_t toks[4] = {5, 999, 0, 2000}, p;
        int32_t *dt = dev_from(toks, 16), *dp = dev_alloc(4);
        float *dx = dev_alloc(4 * n), *dxn = dev_alloc(4 * n);
        float sc = sqrtf(640.0f);
        for (p = 0; p < 4; p++) {
            OK(attn_cuda_upload(ctx, dp, &p, 4, &e_));
            OK(fwd_cuda_embed(ctx, mat_dev(&m), dt, dp, sc, dx, dw, 1e-6f, dxn, &e_));
            float *gx = rb_malloc(4 * n), *gxn = rb_malloc(4 * n), *rx = rb_malloc(4 * n);
            float *rxn = rb_malloc(4 * n);
            dev_to(gx, dx, 4 * n);
            dev_to(gxn, dxn, 4 * n);
            if (toks[p] < rows) {
                quant_dequant_row_ref(t, m.h + (size_t)toks[p] * quant_row_bytes(t, n), rx, n);
                for (int i = 0; i < n; i++) rx[i] *= sc;
                TU_ASSERT(memcmp(gx, rx, 4 * n) == 0, "embed %s token %d: x bit for bit",
                          ggml_type_name(t), toks[p]);
                rmsnorm_ref(rxn, rx, w, n, 1e-6f);
                near(gxn, rxn, n, 8 * U, "embed norm");
            } else {
                for (int i = 0; i < n; i++) TU_ASSERT(gx[i] == 0, "token out of range: x = 0");
            }
            free(gx), free(gxn), free(rx), free(rxn);
        }
        free(w);
        attn_cuda_free(ctx, dw), attn_cuda_free(ctx, dt), attn_cuda_free(ctx, dp);
        attn_cuda_free(ctx, dx), attn_cuda_free(ctx, dxn);
        mat_free(&m);
    }
}

/* matvec then advance, captured once and replayed three times, against the same launches
 * run directly: the same y, and the position advanced once per replay. */
static void test_graph(void) {
    hmat m = mat_make(GGML_T_Q4_K, 300, 512);
    float *x = randn_vec(512, 1.0f);
    float *dx = dev_from(x, 2048), *dy = dev_alloc(1200);
    int32_t zero[4] = {0};
    int32_t *dpos = dev_from(zero, 4);
    fwd_mv j = {.m = mat_dev(&m), .x = dx, .y = dy};
    OK(fwd_cuda_matvec(ctx, &j, 1, 0, NULL, &e_));
    float ya[300], yb[300];
    dev_to(ya, dy, 1200);
    fwd_graph *g;
    OK(fwd_cuda_capture_begin(ctx, &e_));
    OK(fwd_cuda_matvec(ctx, &j, 1, 0, NULL, &e_));
    OK(fwd_cuda_advance(ctx, dpos, 1, NULL, NULL, 0, NULL, &e_));
    OK(fwd_cuda_capture_end(ctx, &g, &e_));
    int32_t pos;
    dev_to(&pos, dpos, 4);
    TU_ASSERT(pos == 0, "capturing runs nothing (pos %d)", pos);
    for (int r = 0; r < 3; r++) OK(fwd_cuda_graph_launch(ctx, g, &e_));
    dev_to(&pos, dpos, 4);
    dev_to(yb, dy, 1200);
    TU_ASSERT(pos == 3, "three replays advance three positions (pos %d)", pos);
    TU_ASSERT(memcmp(ya, yb, sizeof ya) == 0, "a replay computes what the launch computes");
    fwd_cuda_graph_destroy(g);
    free(x);
    attn_cuda_free(ctx, dx), attn_cuda_free(ctx, dy), attn_cuda_free(ctx, dpos);
    mat_free(&m);
}

static void test_bad_input(void) {
    rb_err e = {0};
    float *d = dev_alloc(4096);
    fwd_mv j = {.m = {d, GGML_T_Q2_K, 4, 256}, .x = d, .y = d};
    TU_ASSERT(fwd_cuda_matvec(ctx, &j, 1, 0, NULL, &e) == RB_EINPUT, "Q2_K has no device kernel");
    j.m.type = GGML_T_Q8_0, j.m.cols = 48;
    TU_ASSERT(fwd_cuda_matvec(ctx, &j, 1, 0, NULL, &e) == RB_EINPUT, "cols not a block multiple");
    j.m.cols = 64, j.x = d + 1;
    TU_ASSERT(fwd_cuda_matvec(ctx, &j, 1, 0, NULL, &e) == RB_EINPUT, "x misaligned");
    j.x = d;
    TU_ASSERT(fwd_cuda_matvec(ctx, &j, 0, 0, NULL, &e) == RB_EINPUT, "no job");
    TU_ASSERT(fwd_cuda_residual_norm(ctx, NULL, NULL, d, d, 0, 1e-6f, d, &e) == RB_EINPUT, "n = 0");
    fwd_rope r = {1, 1e4f, 1, NULL};
    TU_ASSERT(fwd_cuda_qk_finish(ctx, d, 1, NULL, NULL, 0, NULL, 3, 1e-6f, (int32_t *)d, &r, &e) == RB_EINPUT,
              "odd head_dim");
    OK(attn_cuda_sync(ctx, &e_));
    attn_cuda_free(ctx, d);
}

/* Gemma 3 270M's output product (262144 x 640 Q8_0, 178 MB) and a layer-sized one: checked,
 * then timed beside a device copy of the same bytes. */
static void test_big(void) {
    const int rows = 262144, cols = 640;
    hmat m = mat_make(GGML_T_Q8_0, rows, cols);
    float *x = randn_vec(cols, 1.0f);
    float *dx = dev_from(x, 4 * cols), *dy = dev_alloc(4 * (size_t)rows);
    void *dcopy = dev_alloc(m.bytes);
    fwd_mv j = {.m = mat_dev(&m), .x = dx, .y = dy};
    OK(fwd_cuda_matvec(ctx, &j, 1, 0, NULL, &e_));
    float *y = rb_malloc(4 * (size_t)rows);
    dev_to(y, dy, 4 * (size_t)rows);
    check_rows(&m, x, NULL, 0, NULL, 0, y, "gemma output");
    fwd_events *ev;
    OK(fwd_cuda_events_create(4, &ev, &e_));
    const int reps = 20;
    OK(fwd_cuda_event_record(ctx, ev, 0, &e_));
    for (int r = 0; r < reps; r++) OK(fwd_cuda_matvec(ctx, &j, 1, 0, NULL, &e_));
    OK(fwd_cuda_event_record(ctx, ev, 1, &e_));
    for (int r = 0; r < reps; r++) OK(attn_cuda_copy(ctx, dcopy, m.d, m.bytes, &e_));
    OK(fwd_cuda_event_record(ctx, ev, 2, &e_));
    float t_mv, t_cp;
    OK(fwd_cuda_event_ms(ev, 0, 1, &t_mv, &e_));
    OK(fwd_cuda_event_ms(ev, 1, 2, &t_cp, &e_));
    t_mv /= reps, t_cp /= reps;
    double gb = m.bytes / 1e9;
    printf("matvec Q8_0 262144 x 640 (%.1f MB): %.1f us, %.0f GB/s; copy of the same bytes "
           "(read + write) %.1f us, %.0f GB/s read+write: matvec reads at %.2f of copy's "
           "read+write rate\n",
           m.bytes / 1e6, 1e3 * t_mv, gb / (t_mv * 1e-3), 1e3 * t_cp, 2 * gb / (t_cp * 1e-3),
           (gb / (t_mv * 1e-3)) / (2 * gb / (t_cp * 1e-3)));
    /* a Gemma layer's gate product: latency-bound */
    hmat g = mat_make(GGML_T_Q5_0, 2048, 640);
    float *dg = dev_alloc(4 * 2048);
    fwd_mv jg = {.m = mat_dev(&g), .x = dx, .y = dg};
    OK(fwd_cuda_event_record(ctx, ev, 0, &e_));
    for (int r = 0; r < 200; r++) OK(fwd_cuda_matvec(ctx, &jg, 1, 0, NULL, &e_));
    OK(fwd_cuda_event_record(ctx, ev, 1, &e_));
    OK(fwd_cuda_event_ms(ev, 0, 1, &t_mv, &e_));
    printf("matvec Q5_0 2048 x 640 (%.2f MB): %.2f us per launch (back to back, no graph)\n",
           g.bytes / 1e6, 1e3 * t_mv / 200);
    fwd_cuda_events_destroy(ev);
    free(x), free(y);
    attn_cuda_free(ctx, dx), attn_cuda_free(ctx, dy), attn_cuda_free(ctx, dcopy), attn_cuda_free(ctx, dg);
    mat_free(&m), mat_free(&g);
}

int main(void) {
    if (attn_cuda_device_count() == 0) {
        printf("test_fwd_cuda: no GPU (or no CUDA in this build): skipped\n");
        return 77;
    }
    rb_err e = {0};
    TU_OK(attn_cuda_create(&ctx, &e), e);
    char desc[256];
    attn_cuda_describe(ctx, desc, sizeof desc);
    printf("device: %s\n", desc);
    test_matvec_types();
    test_matvec_jobs();
    test_argmax();
    test_residual_norm();
    test_qk_finish();
    test_embed();
    test_graph();
    test_bad_input();
    test_big();
    attn_cuda_destroy(ctx);
    return tu_done("test_fwd_cuda");
}
