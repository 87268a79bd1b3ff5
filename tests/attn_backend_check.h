/* attn_backend_check.h: one backend's slots against the "ref" backend on the same inputs
 * (check_backend), for test_attn_backends.c (every backend listed) and
 * test_attn_backend_cuda.c (the cuda table's host side on an emulated device):
 * G (query heads per KV head) 1, 2, 4, 8; d 64, 128, 256; n from 1 to 4096 keys; per-head
 * and shared gathers of scattered rows (and an empty set); windows (rows ld > Hkv * d
 * apart); causal prompts with column mass; replay's chunk references (causal_chunk: W = 1
 * to 32 steps, rows up to 4k keys, sliding windows); every optional output asked for alone
 * and with the others (a backend may take another path for each). Header-only, for tests.
 *
 * Tolerance: inputs are N(0, 1) with scale 1/sqrt(d), so logits are O(1) and every output is
 * a convex combination of value rows. A float32 kernel's error is then a few units of
 * float32 rounding (u = 6e-8) times the number of terms in the longest sum it forms, at
 * worst n * u = 2.4e-4 for n = 4096 if every rounding went the same way; observed errors are
 * ~1e-7 because they cancel. We allow 2e-5 relative to the largest |value| (absolute for lse,
 * logits and probabilities): two orders above the observed, loose enough for any summation
 * order (split-K on the GPU), and tight enough to catch a dropped or wrong key, which moves
 * an output by about 1/n >= 2.4e-4 here. Column mass sums up to n * G probabilities, so its
 * tolerance is scaled by n * G. test_attn.c proves the CPU kernels' tighter per-element
 * bounds and test_cuda_attn.c the GPU kernels'; these checks are about the tables. */
#ifndef ATTN_BACKEND_CHECK_H
#define ATTN_BACKEND_CHECK_H

#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <string.h>

#include "attn_backend.h"

#define TOL 2e-5

static uint64_t rng = 42;

static float *randn(size_t n) {
    float *x = rb_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = (float)tu_randn(&rng);
    return x;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

static double worst; /* largest err / tolerance seen over every check */

static void close_enough(const char *be, const char *what, const float *got, const float *want,
                         size_t n, double scale) {
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]), tol = TOL * (scale > 1 ? scale : 1);
        if (err / tol > worst) worst = err / tol;
        TU_ASSERT(err <= tol, "%s %s[%zu]: got %.9g want %.9g (err %.3g > tol %.3g)", be, what, i,
                  got[i], want[i], err, tol);
    }
}

static void test_dense(const attn_backend *be, const attn_backend *ref, int Hq, int Hkv, int d,
                       int n, int pad) {
    int ld = Hkv * d + pad; /* pad > 0: rows of a wider layout (a window inside a layer) */
    float *q = randn((size_t)Hq * d), *k = randn((size_t)n * ld), *v = randn((size_t)n * ld);
    float *lg[2], *lse[2], *out[2];
    for (int i = 0; i < 2; i++) {
        lg[i] = rb_calloc((size_t)Hq * n, sizeof(float));
        lse[i] = rb_calloc((size_t)Hq, sizeof(float));
        out[i] = rb_calloc((size_t)Hq * d, sizeof(float));
    }
    ref->dense_heads(q, Hq, Hkv, k, v, n, d, ld, 1 / sqrtf((float)d), lg[0], lse[0], out[0]);
    /* every output, and the outputs alone (a backend may take another path without logits) */
    be->dense_heads(q, Hq, Hkv, k, v, n, d, ld, 1 / sqrtf((float)d), lg[1], lse[1], out[1]);
    close_enough(be->name, "dense logits", lg[1], lg[0], (size_t)Hq * n, 1);
    close_enough(be->name, "dense lse", lse[1], lse[0], (size_t)Hq, 1);
    close_enough(be->name, "dense out", out[1], out[0], (size_t)Hq * d, max_abs(v, (size_t)n * ld));
    memset(out[1], 0, sizeof(float) * (size_t)Hq * d);
    be->dense_heads(q, Hq, Hkv, k, v, n, d, ld, 1 / sqrtf((float)d), NULL, lse[1], out[1]);
    close_enough(be->name, "dense lse (no logits)", lse[1], lse[0], (size_t)Hq, 1);
    close_enough(be->name, "dense out (no logits)", out[1], out[0], (size_t)Hq * d,
                 max_abs(v, (size_t)n * ld));
    memset(lg[1], 0, sizeof(float) * (size_t)Hq * n);
    be->dense_heads(q, Hq, Hkv, k, v, n, d, ld, 1 / sqrtf((float)d), lg[1], NULL, NULL);
    close_enough(be->name, "dense logits (alone)", lg[1], lg[0], (size_t)Hq * n, 1);
    for (int i = 0; i < 2; i++) free(lg[i]), free(lse[i]), free(out[i]);
    free(q), free(k), free(v);
}

/* G query heads of one KV head over scattered rows of a pool of n_pool rows; set sizes
 * differ per head unless shared; with `empty`, the last head's set (or the shared one) has
 * no row. */
static void test_gather(const attn_backend *be, const attn_backend *ref, int G, int d,
                        int n_pool, int shared, int empty) {
    int stride = n_pool;
    float *q = randn((size_t)G * d), *k = randn((size_t)n_pool * d), *v = randn((size_t)n_pool * d);
    const float **kr = rb_malloc(sizeof(float *) * (size_t)G * stride);
    const float **vr = rb_malloc(sizeof(float *) * (size_t)G * stride);
    int *n = rb_malloc(sizeof(int) * (size_t)G);
    for (int g = 0; g < G; g++) {
        n[g] = shared ? n_pool / 2 + 1 : 1 + (int)(tu_next(&rng) % (uint64_t)n_pool);
        if (empty && g == (shared ? 0 : G - 1)) n[g] = 0;
        for (int i = 0; i < n[g]; i++) {
            int row = (int)(tu_next(&rng) % (uint64_t)n_pool); /* scattered, repeats allowed */
            kr[(size_t)g * stride + i] = k + (size_t)row * d;
            vr[(size_t)g * stride + i] = v + (size_t)row * d;
        }
    }
    float *pr[2], *out[2], *work = rb_malloc(sizeof(float) * (size_t)G * stride);
    for (int i = 0; i < 2; i++) {
        pr[i] = rb_calloc((size_t)G * stride, sizeof(float));
        out[i] = rb_calloc((size_t)G * d, sizeof(float));
    }
    for (size_t i = 0; i < (size_t)G * stride; i++) pr[1][i] = -1; /* not a probability */
    float sc = 1 / sqrtf((float)d);
    ref->gather(q, G, kr, vr, n, stride, shared, d, sc, pr[0], out[0], NULL);
    be->gather(q, G, kr, vr, n, stride, shared, d, sc, pr[1], out[1], work);
    double vmax = max_abs(v, (size_t)n_pool * d);
    for (int g = 0; g < G; g++) {
        int cnt = n[shared ? 0 : g];
        close_enough(be->name, "gather probs", pr[1] + (size_t)g * stride,
                     pr[0] + (size_t)g * stride, (size_t)cnt, 1);
        for (int j = cnt; j < stride; j++) /* the contract: probs only over each set */
            TU_ASSERT(pr[1][(size_t)g * stride + j] == -1, "%s gather wrote probs[%d][%d] past its "
                      "set of %d", be->name, g, j, cnt);
    }
    close_enough(be->name, "gather out", out[1], out[0], (size_t)G * d, vmax);
    memset(out[1], 0, sizeof(float) * (size_t)G * d);
    be->gather(q, G, kr, vr, n, stride, shared, d, sc, NULL, out[1], work);
    close_enough(be->name, "gather out (no probs)", out[1], out[0], (size_t)G * d, vmax);
    /* weighted rows over the reference's probabilities */
    int nw = n[0];
    ref->weighted_rows(pr[0], G, stride, vr, nw, d, out[0]);
    be->weighted_rows(pr[0], G, stride, vr, nw, d, out[1]);
    close_enough(be->name, "weighted rows", out[1], out[0], (size_t)G * d, vmax);
    for (int i = 0; i < 2; i++) free(pr[i]), free(out[i]);
    free(work), free(kr), free(vr), free(n), free(q), free(k), free(v);
}

static void test_causal(const attn_backend *be, const attn_backend *ref, int Hq, int Hkv, int d,
                        int n) {
    float *q = randn((size_t)n * Hq * d), *k = randn((size_t)n * Hkv * d);
    float *v = randn((size_t)n * Hkv * d);
    float *out[2], *cm[2];
    for (int i = 0; i < 2; i++) {
        out[i] = rb_calloc((size_t)n * Hq * d, sizeof(float));
        cm[i] = rb_calloc((size_t)Hkv * n, sizeof(float));
    }
    float sc = 1 / sqrtf((float)d);
    double vmax = max_abs(v, (size_t)n * Hkv * d);
    ref->causal(q, k, v, n, Hq, Hkv, d, sc, out[0], cm[0]);
    be->causal(q, k, v, n, Hq, Hkv, d, sc, out[1], cm[1]);
    close_enough(be->name, "causal out", out[1], out[0], (size_t)n * Hq * d, vmax);
    /* column mass sums up to n * G probabilities: its rounding grows with that count */
    close_enough(be->name, "causal col_mass", cm[1], cm[0], (size_t)Hkv * n, (double)n * Hq / Hkv);
    memset(out[1], 0, sizeof(float) * (size_t)n * Hq * d);
    be->causal(q, k, v, n, Hq, Hkv, d, sc, out[1], NULL);
    close_enough(be->name, "causal out (no col_mass)", out[1], out[0], (size_t)n * Hq * d, vmax);
    for (int i = 0; i < 2; i++) free(out[i]), free(cm[i]);
    free(q), free(k), free(v);
}

/* replay's chunk reference (causal_chunk): W query rows at positions t0..t0+W-1 over keys
 * 0..t0+W-1 (a sliding window when window > 0); entries outside each row's range are
 * unspecified, so only j0..t is compared. */
static void test_causal_chunk(const attn_backend *be, const attn_backend *ref, int Hq, int Hkv,
                              int d, int t0, int W, int window) {
    int N = t0 + W, ldn = N + 5; /* ldn > N: a row stride wider than the keys */
    size_t nl = (size_t)Hq * W * ldn;
    float *q = randn((size_t)W * Hq * d), *k = randn((size_t)N * Hkv * d);
    float *v = randn((size_t)N * Hkv * d);
    float *lg[2], *pb[2], *lse[2], *out[2];
    float *work = rb_malloc(sizeof(float) * attn_chunk_work_floats(W, Hq, d));
    for (int i = 0; i < 2; i++) {
        lg[i] = rb_calloc(nl, sizeof(float)), pb[i] = rb_calloc(nl, sizeof(float));
        lse[i] = rb_calloc((size_t)W * Hq, sizeof(float));
        out[i] = rb_calloc((size_t)W * Hq * d, sizeof(float));
        attn_chunk c = {.q = q, .k = k, .v = v, .W = W, .t0 = t0, .window = window, .Hq = Hq,
                        .Hkv = Hkv, .d = d, .scale = 1 / sqrtf((float)d), .ldn = ldn,
                        .logits = lg[i], .probs = pb[i], .lse = lse[i], .out = out[i],
                        .work = work};
        (i ? be : ref)->causal_chunk(&c);
    }
    for (int h = 0; h < Hq; h++)
        for (int w = 0; w < W; w++) {
            int t = t0 + w, j0 = window > 0 && t + 1 > window ? t + 1 - window : 0;
            size_t at = ((size_t)h * W + w) * ldn + j0;
            close_enough(be->name, "chunk logits", lg[1] + at, lg[0] + at, (size_t)(t + 1 - j0), 1);
            close_enough(be->name, "chunk probs", pb[1] + at, pb[0] + at, (size_t)(t + 1 - j0), 1);
        }
    close_enough(be->name, "chunk lse", lse[1], lse[0], (size_t)W * Hq, 1);
    close_enough(be->name, "chunk out", out[1], out[0], (size_t)W * Hq * d,
                 max_abs(v, (size_t)N * Hkv * d));
    for (int i = 0; i < 2; i++) free(lg[i]), free(pb[i]), free(lse[i]), free(out[i]);
    free(work), free(q), free(k), free(v);
}

/* Every shape (G 1, 2, 4, 8 x d 64, 128, 256 over 2 KV heads) that be->supports(), against
 * ref; then, when any was, the edges (empty gather sets, prompts of 1 and 300 tokens).
 * Returns the number of shapes checked; *skipped receives the number be refused. */
static int check_backend(const attn_backend *be, const attn_backend *ref, int *skipped) {
    static const int Gs[] = {1, 2, 4, 8}, ds[] = {64, 128, 256}, ns[] = {1, 7, 333, 4096};
    int run = 0;
    *skipped = 0;
    for (int gi = 0; gi < 4; gi++)
        for (int di = 0; di < 3; di++) {
            int G = Gs[gi], d = ds[di], Hkv = 2, Hq = G * Hkv;
            attn_shape sh = {.n_q_heads = Hq, .n_kv_heads = Hkv, .head_dim = d, .n_keys = 4096};
            if (!be->supports(&sh)) {
                ++*skipped;
                continue;
            }
            for (int ni = 0; ni < 4; ni++) {
                test_dense(be, ref, Hq, Hkv, d, ns[ni], 0);
                if (ns[ni] > 1) test_dense(be, ref, Hq, Hkv, d, ns[ni] / 3 + 1, d); /* window */
            }
            test_gather(be, ref, G, d, 300, 0, 0);
            test_gather(be, ref, G, d, 300, 1, 0);
            if (d == 64) test_causal(be, ref, Hq, Hkv, d, 96);
            test_causal_chunk(be, ref, Hq, Hkv, d, 333, 32, 0);
            test_causal_chunk(be, ref, Hq, Hkv, d, 90, 32, 100); /* the window starts inside */
            run++;
        }
    if (run) {
        int Hq = 8, Hkv = 2, d = 64;
        test_gather(be, ref, Hq / Hkv, d, 50, 0, 1);
        test_gather(be, ref, Hq / Hkv, d, 50, 1, 1);
        test_causal(be, ref, Hq, Hkv, d, 1);
        test_causal(be, ref, Hq, Hkv, d, 300);
        test_causal_chunk(be, ref, Hq, Hkv, d, 0, 1, 0);   /* the first position alone */
        test_causal_chunk(be, ref, Hq, Hkv, d, 5, 7, 0);   /* a chunk longer than its past */
        test_causal_chunk(be, ref, Hq, Hkv, d, 4000, 9, 0); /* long rows */
        test_causal_chunk(be, ref, Hq, Hkv, d, 700, 32, 64); /* window shorter than W + t0 */
    }
    return run;
}

#endif
