/* test_kv_cuda.c: the device KV cache (kernels/cuda/kv_cuda.cu) against the CPU stepper
 * (harness/engine/stepper.c) with the policies cells_layer_policy gives, on the same q, k, v:
 * two layers (the policy under test, and a window layer of L = 100 as a model's sliding
 * layers), 600 positions (a 37-token prompt, none at d 64), every device policy and raas
 * parameter set, d 64/128/256, G 1/4, half KV (and float32 KV at d 128). Each decode step:
 *  - attended positions of every query head equal (kvd_selection vs the stepper's set);
 *    Quest may differ only where the bounds of a page chosen by one side and left by the
 *    other are within 1e-5 relative (float32 vs double sums of the same products could
 *    order them either way); such steps are counted and printed, and their outputs not
 *    compared;
 *  - outputs within tol * A_c per channel, A_c = sum_j p_j |v_jc| (the output's natural
 *    scale, from the CPU's probabilities): tol 2e-3 with half K/V (rounding K and V to
 *    half moves each logit by ~|q||k| 2^-11 scale and each value by 2^-11 relative) and
 *    1e-5 with float32 (summation order only: a few hundred terms of u = 6e-8);
 *  - kv_bytes equal: each layer's kvd_layer_kv_bytes and the total against the steppers'
 *    resident bytes (x2 for float32 KV, stored at 4 bytes).
 * Then the timing: per-step device time (CUDA events over 100 queued steps) of dense, quest
 * and raas at 1k and 32k positions, Hq 4, Hkv 1, d 256, L 1024, half KV.
 * Exits 77 without a usable GPU. */
#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cells.h"
#include "cuda/attn_cuda.h"
#include "cuda/kv_cuda.h"
#include "policy.h"
#include "stepper.h"

static attn_cuda *ctx;
static int quest_ties, n_runs;

static void *dev_alloc(size_t bytes) {
    rb_err e = {0};
    void *p = NULL;
    TU_OK(attn_cuda_alloc(ctx, bytes, &p, &e), e);
    return p;
}
static void upload(void *dev, const void *host, size_t bytes) {
    rb_err e = {0};
    TU_OK(attn_cuda_upload(ctx, dev, host, bytes, &e), e);
}
static void download(void *host, const void *dev, size_t bytes) {
    rb_err e = {0};
    TU_OK(attn_cuda_download(ctx, host, dev, bytes, &e), e);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct scenario {
    const char *policy;
    const char *params[3];
    int budget;
} scenario;

/* The Quest bound of logical page p for query rows h0..h0+nh-1 from the host's key history
 * kh [T, Hkv, d] (KV head g), max over the rows, in double. */
static double host_bound(const float *kh, int Hkv, int d, int P, int g, int p, int last,
                         const float *q, int h0, int nh) {
    double best = -INFINITY;
    for (int h = h0; h < h0 + nh; h++) {
        double u = 0;
        for (int c = 0; c < d; c++) {
            float mn = INFINITY, mx = -INFINITY;
            for (int t = p * P; t < (p + 1) * P && t <= last; t++) {
                float x = kh[((size_t)t * Hkv + g) * d + c];
                if (x < mn) mn = x;
                if (x > mx) mx = x;
            }
            double a = (double)q[(size_t)h * d + c] * mx, b = (double)q[(size_t)h * d + c] * mn;
            u += a > b ? a : b;
        }
        if (u > best) best = u;
    }
    return best;
}

/* Quest sets a (CPU) and b (device), sorted, differ: allowed when every page in one and not
 * the other has a bound within 1e-5 relative of the smallest bound the CPU chose (a tie the
 * two sums can break either way). */
static int quest_near_tie(const int32_t *a, int na, const int32_t *b, int nb, const float *kh,
                          int Hkv, int d, int P, int g, int pos, const float *q, int h0, int nh) {
    int cur = pos / P;
    double thr = INFINITY;
    for (int i = 0; i < na; i += P) {
        int p = a[i] / P;
        if (p == cur) continue;
        double u = host_bound(kh, Hkv, d, P, g, p, pos, q, h0, nh);
        if (u < thr) thr = u;
    }
    for (int side = 0; side < 2; side++) {
        const int32_t *x = side ? b : a, *y = side ? a : b;
        int nx = side ? nb : na, ny = side ? na : nb;
        for (int i = 0; i < nx; i++) {
            int found = 0;
            for (int j = 0; j < ny && !found; j++) found = y[j] == x[i];
            if (found) continue;
            double u = host_bound(kh, Hkv, d, P, g, x[i] / P, pos, q, h0, nh);
            if (fabs(u - thr) > 1e-5 * fabs(thr)) return 0;
        }
    }
    return 1;
}

static void run_one(const scenario *sc, int d, int G, attn_cuda_dtype dtype) {
    const int Hkv = 2, Hq = Hkv * G, P = 16, T = 600, NL = 2, WIN = 100;
    const int n_prompt = d == 64 ? 0 : 37;
    rb_err e = {0};
    /* the layers' CPU policies as the engine gets them */
    const policy_ops *ops = policy_find(sc->policy, &e);
    TU_ASSERT(ops, "%s", sc->policy);
    int n_params = 0;
    while (n_params < 3 && sc->params[n_params]) n_params++;
    policy_params params;
    TU_OK(policy_params_resolve(ops, sc->params, n_params, &params, &e), e);
    cell c;
    TU_OK(cells_init(&c, ops, &params, sc->budget, NULL, NULL, &e), e);
    layer_policy lp[2];
    TU_OK(cells_layer_policy(LAYER_POLICY, &c, 0, T, &lp[0], &e), e);
    TU_OK(cells_layer_policy(LAYER_WINDOW, NULL, WIN, T, &lp[1], &e), e);
    float scale = 1.0f / sqrtf((float)d);
    stepper *st[2];
    kvd_layer ly[2];
    for (int il = 0; il < NL; il++) {
        policy_config cfg = {.layer = il, .n_q_heads = Hq, .n_kv_heads = Hkv, .head_dim = d,
                             .budget = lp[il].budget, .page_size = P, .max_tokens = T,
                             .attn_scale = scale, .seed = 1, .params = &lp[il].params};
        TU_OK(stepper_create(lp[il].ops, &cfg, 2, NULL, &st[il], &e), e);
        TU_OK(kvd_layer_from_policy(lp[il].ops, &lp[il].params, lp[il].budget, &ly[il], &e), e);
    }
    kvd_config kcfg = {.n_layers = NL, .n_q_heads = Hq, .n_kv_heads = Hkv, .head_dim = d,
                       .page_size = P, .max_tokens = T, .attn_scale = scale, .kv_dtype = dtype,
                       .layers = ly};
    kvd_cache *kc;
    TU_OK(kvd_create(ctx, &kcfg, &kc, &e), e);
    int32_t *pos_h = rb_malloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++) pos_h[t] = t;
    int *pos_d = dev_alloc(sizeof(int32_t) * T);
    upload(pos_d, pos_h, sizeof(int32_t) * T);
    size_t qn = (size_t)Hq * d, kn = (size_t)Hkv * d;
    float *q = rb_malloc(sizeof(float) * qn * NL), *k = rb_malloc(sizeof(float) * kn * NL);
    float *v = rb_malloc(sizeof(float) * kn * NL), *o_cpu = rb_malloc(sizeof(float) * qn * NL);
    float *o_dev = rb_malloc(sizeof(float) * qn * NL);
    float *kh = rb_malloc(sizeof(float) * kn * T * NL); /* key history, per layer */
    float *qd = dev_alloc(sizeof(float) * qn * NL), *kd = dev_alloc(sizeof(float) * kn * NL);
    float *vd = dev_alloc(sizeof(float) * kn * NL), *od = dev_alloc(sizeof(float) * qn * NL);
    int32_t *a = rb_malloc(sizeof(int32_t) * T), *b = rb_malloc(sizeof(int32_t) * T);
    uint64_t rng = 0xc0ffee + (uint64_t)d * 3 + (uint64_t)G * 11 + (uint64_t)sc->budget;
    double tol = dtype == ATTN_CUDA_F16 ? 2e-3 : 1e-5, worst = 0;
    for (int pos = 0; pos < T; pos++) {
        for (size_t i = 0; i < qn * NL; i++) q[i] = (float)tu_randn(&rng);
        for (size_t i = 0; i < kn * NL; i++) k[i] = (float)tu_randn(&rng), v[i] = (float)tu_randn(&rng);
        for (int il = 0; il < NL; il++)
            memcpy(kh + ((size_t)il * T + pos) * kn, k + il * kn, sizeof(float) * kn);
        upload(qd, q, sizeof(float) * qn * NL);
        upload(kd, k, sizeof(float) * kn * NL);
        upload(vd, v, sizeof(float) * kn * NL);
        TU_OK(kvd_reserve(kc, 1, &e), e);
        int prefill = pos < n_prompt;
        for (int il = 0; il < NL; il++) {
            kvd_step(kc, il, prefill, pos_d + pos, qd + il * qn, kd + il * kn, vd + il * kn,
                     od + il * qn);
            int win = ly[il].policy == KVD_WINDOW ? ly[il].budget : 0;
            if (prefill && (win == 0 || pos < win))
                stepper_prefill_token(st[il], pos, q + il * qn, k + il * kn, v + il * kn, o_cpu + il * qn);
            else
                stepper_step(st[il], pos, q + il * qn, k + il * kn, v + il * kn, NULL, NULL, 0,
                             o_cpu + il * qn);
        }
        TU_OK(kvd_sync(kc, &e), e);
        download(o_dev, od, sizeof(float) * qn * NL);
        int64_t cpu_total = 0;
        for (int il = 0; il < NL; il++) {
            /* while a layer's prompt is buffered, the CPU holds it outside its pools */
            int buffered = prefill && (ly[il].policy != KVD_WINDOW || pos < WIN);
            const policy_selection *sel = stepper_selection(st[il]);
            const float *probs = stepper_probs(st[il]);
            int64_t cb = stepper_kv_bytes(st[il]) * (dtype == ATTN_CUDA_F16 ? 1 : 2);
            cpu_total += cb;
            if (!buffered)
                TU_ASSERT(kvd_layer_kv_bytes(kc, il) == cb,
                          "%s layer %d pos %d: device holds %lld bytes, CPU %lld", sc->policy, il,
                          pos, (long long)kvd_layer_kv_bytes(kc, il), (long long)cb);
            for (int h = 0; h < Hq; h++) {
                int nb = kvd_selection(kc, il, h, b, T);
                const float *oc = o_cpu + il * qn + (size_t)h * d, *og = o_dev + il * qn + (size_t)h * d;
                if (buffered) { /* dense over the prompt on both sides */
                    TU_ASSERT(nb == pos + 1, "prefill attends %d of %d", nb, pos + 1);
                    for (int ch = 0; ch < d; ch++) {
                        double err = fabs((double)og[ch] - oc[ch]);
                        TU_ASSERT(err <= tol * 4 + 1e-6, "%s prefill layer %d pos %d head %d ch %d: %g vs %g",
                                  sc->policy, il, pos, h, ch, og[ch], oc[ch]);
                    }
                    continue;
                }
                int row = stepper_set_row(sel, h), na = sel->n[row];
                memcpy(a, sel->pos + (size_t)row * sel->cap, sizeof(int32_t) * (size_t)na);
                qsort(a, (size_t)na, sizeof *a, cmp_i32);
                int same = na == nb && !memcmp(a, b, sizeof(int32_t) * (size_t)na);
                if (!same && ly[il].policy == KVD_QUEST) {
                    int per_head = ly[il].quest_per_head;
                    int h0 = per_head ? h : h - h % G, nh = per_head ? 1 : G;
                    TU_ASSERT(quest_near_tie(a, na, b, nb, kh + (size_t)il * T * kn, Hkv, d, P,
                                             h / G, pos, q + il * qn, h0, nh),
                              "%s L=%d d %d G %d pos %d head %d: quest sets differ beyond a tie",
                              sc->policy, sc->budget, d, G, pos, h);
                    quest_ties++;
                    continue;
                }
                TU_ASSERT(same, "%s (%s) L=%d layer %d d %d G %d pos %d head %d: CPU attends %d, "
                                "device %d (first %d vs %d)",
                          sc->policy, lp[il].ops->name, lp[il].budget, il, d, G, pos, h, na, nb,
                          na ? a[0] : -1, nb ? b[0] : -1);
                /* output within tol * A_c */
                const float *ph = probs + (size_t)h * sel->cap;
                for (int ch = 0; ch < d; ch++) {
                    double A = 0;
                    for (int j = 0; j < na; j++) A += ph[j] * fabs(sel->v[(size_t)row * sel->cap + j][ch]);
                    double err = fabs((double)og[ch] - oc[ch]);
                    if (err / (A + 1e-30) > worst) worst = err / (A + 1e-30);
                    TU_ASSERT(err <= tol * A + 1e-7,
                              "%s layer %d d %d G %d pos %d head %d ch %d: device %.8g, CPU %.8g "
                              "(A %.3g)",
                              sc->policy, il, d, G, pos, h, ch, og[ch], oc[ch], A);
                }
            }
        }
        if (!prefill || pos >= WIN) {
            kvd_stats s;
            TU_OK(kvd_stats_get(kc, &s, &e), e);
            if (!prefill)
                TU_ASSERT(s.kv_bytes == cpu_total, "%s pos %d: device %lld bytes, CPU %lld",
                          sc->policy, pos, (long long)s.kv_bytes, (long long)cpu_total);
            TU_ASSERT(s.peak_kv_bytes >= s.kv_bytes && s.reserved_bytes >= s.kv_bytes,
                      "peak/reserved below held");
        }
    }
    printf("  %-6s %-28s L=%-4d d=%-3d G=%d %s: 600 steps equal; worst out err %.2g x A\n",
           sc->policy, sc->params[0] ? sc->params[0] : "", sc->budget, d, G,
           dtype == ATTN_CUDA_F16 ? "f16" : "f32", worst);
    free(pos_h), free(q), free(k), free(v), free(o_cpu), free(o_dev), free(kh), free(a), free(b);
    attn_cuda_free(ctx, pos_d), attn_cuda_free(ctx, qd), attn_cuda_free(ctx, kd);
    attn_cuda_free(ctx, vd), attn_cuda_free(ctx, od);
    kvd_destroy(kc);
    for (int il = 0; il < NL; il++) stepper_destroy(st[il]);
    free(c.params_json);
    n_runs++;
}

/* Device time per step of one layer, Hq 4, Hkv 1, d 256, L 1024, at 1k and 32k positions. */
static void timing(const char *policy) {
    const int Hq = 4, Hkv = 1, d = 256, P = 16, T = 32768 + 128, L = 1024, RUN = 100;
    rb_err e = {0};
    const policy_ops *ops = policy_find(policy, &e);
    policy_params params;
    TU_OK(policy_params_resolve(ops, NULL, 0, &params, &e), e);
    kvd_layer ly;
    TU_OK(kvd_layer_from_policy(ops, &params, L, &ly, &e), e);
    kvd_config cfg = {.n_layers = 1, .n_q_heads = Hq, .n_kv_heads = Hkv, .head_dim = d,
                      .page_size = P, .max_tokens = T, .attn_scale = 0.0625f,
                      .kv_dtype = ATTN_CUDA_F16, .layers = &ly};
    kvd_cache *kc;
    TU_OK(kvd_create(ctx, &cfg, &kc, &e), e);
    int32_t *pos_h = rb_malloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++) pos_h[t] = t;
    int *pos_d = dev_alloc(sizeof(int32_t) * T);
    upload(pos_d, pos_h, sizeof(int32_t) * T);
    float *qd = dev_alloc(sizeof(float) * Hq * d), *kd = dev_alloc(sizeof(float) * Hkv * d);
    float *vd = dev_alloc(sizeof(float) * Hkv * d), *od = dev_alloc(sizeof(float) * Hq * d);
    TU_OK(attn_cuda_fill_random(ctx, qd, (size_t)Hq * d, ATTN_CUDA_F32, 1, &e), e);
    TU_OK(attn_cuda_fill_random(ctx, kd, (size_t)Hkv * d, ATTN_CUDA_F32, 2, &e), e);
    TU_OK(attn_cuda_fill_random(ctx, vd, (size_t)Hkv * d, ATTN_CUDA_F32, 3, &e), e);
    const int at[2] = {1024, 32768 - RUN};
    float ms[2] = {0, 0};
    int pos = 0;
    for (int m = 0; m < 2; m++) {
        while (pos < at[m]) {
            int n = at[m] - pos < 256 ? at[m] - pos : 256;
            TU_OK(kvd_reserve(kc, n, &e), e);
            for (int i = 0; i < n; i++, pos++) kvd_step(kc, 0, 0, pos_d + pos, qd, kd, vd, od);
        }
        TU_OK(kvd_reserve(kc, RUN, &e), e);
        TU_OK(kvd_sync(kc, &e), e);
        TU_OK(attn_cuda_mark(ctx, 0, &e), e);
        for (int i = 0; i < RUN; i++, pos++) kvd_step(kc, 0, 0, pos_d + pos, qd, kd, vd, od);
        TU_OK(attn_cuda_mark(ctx, 1, &e), e);
        TU_OK(attn_cuda_elapsed_ms(ctx, 0, 1, &ms[m], &e), e);
        TU_OK(kvd_sync(kc, &e), e);
    }
    kvd_stats s;
    TU_OK(kvd_stats_get(kc, &s, &e), e);
    printf("  timing %-5s Hq 4 Hkv 1 d 256 L 1024 f16: %.1f us/step at 1k, %.1f us/step at 32k "
           "(ratio %.2f); attends %.0f tokens, holds %.1f MB at the end\n",
           policy, 1e3 * ms[0] / RUN, 1e3 * ms[1] / RUN, ms[1] / ms[0], s.attended,
           s.kv_bytes / 1e6);
    free(pos_h);
    attn_cuda_free(ctx, pos_d), attn_cuda_free(ctx, qd), attn_cuda_free(ctx, kd);
    attn_cuda_free(ctx, vd), attn_cuda_free(ctx, od);
    kvd_destroy(kc);
}

/* Bad configurations are refused with the CPU's messages; a missing reserve is reported. */
static void test_refusals(void) {
    rb_err e = {0};
    kvd_layer ly = {.policy = KVD_QUEST, .budget = 20};
    kvd_config cfg = {.n_layers = 1, .n_q_heads = 4, .n_kv_heads = 1, .head_dim = 128,
                      .page_size = 16, .max_tokens = 256, .attn_scale = 1,
                      .kv_dtype = ATTN_CUDA_F16, .layers = &ly};
    kvd_cache *kc = NULL;
    TU_ASSERT(kvd_create(ctx, &cfg, &kc, &e) == RB_EINPUT && !kc && !strcmp(e.what, "quest") &&
                  strstr(e.why, "below two pages"),
              "quest L=20 refused: %s: %s", e.what, e.why);
    ly.budget = 64;
    cfg.head_dim = 96;
    TU_ASSERT(kvd_create(ctx, &cfg, &kc, &e) == RB_EINPUT, "head_dim 96 refused");
    cfg.head_dim = 128;
    cfg.page_size = 16;
    TU_OK(kvd_create(ctx, &cfg, &kc, &e), e);
    int *pos_d = dev_alloc(sizeof(int) * 256);
    int32_t pos_h[256];
    for (int i = 0; i < 256; i++) pos_h[i] = i;
    upload(pos_d, pos_h, sizeof pos_h);
    float *buf = dev_alloc(sizeof(float) * 4 * 128 * 4);
    TU_OK(attn_cuda_fill_random(ctx, buf, 4 * 128 * 4, ATTN_CUDA_F32, 9, &e), e);
    /* no kvd_reserve: the first chunk (4 pages) runs out after 64 positions */
    for (int p = 0; p < 200; p++) kvd_step(kc, 0, 0, pos_d + p, buf, buf + 512, buf + 1024, buf + 1536);
    TU_ASSERT(kvd_sync(kc, &e) == RB_EINTERNAL && strstr(e.why, "ran out of pages"),
              "missing reserve reported: %s", e.why);
    kvd_destroy(kc);
    attn_cuda_free(ctx, pos_d), attn_cuda_free(ctx, buf);
}

int main(void) {
    if (attn_cuda_device_count() == 0) {
        printf("skip: no usable GPU (or no CUDA in this build)\n");
        return 77;
    }
    rb_err e = {0};
    TU_OK(attn_cuda_create(&ctx, &e), e);
    char desc[300];
    attn_cuda_describe(ctx, desc, sizeof desc);
    printf("# device: %s\n", desc);
    test_refusals();
    /* the main policies over every shape; raas's other parameter sets at two shapes */
    static const scenario full[] = {
        {"dense", {NULL}, 64},
        {"quest", {NULL}, 64},
        {"quest", {"gqa=head", NULL}, 96},
        {"raas", {NULL}, 64},
    };
    static const scenario some[] = {
        {"raas", {"score=exact", NULL}, 64},
        {"raas", {"refresh=threshold", NULL}, 96},
        {"raas", {"pin_prefill=0", "r=0.3", NULL}, 64},
        {"raas", {"budget=decode", NULL}, 128},
    };
    static const int ds[] = {64, 128, 256}, gs[] = {1, 4};
    for (size_t i = 0; i < sizeof full / sizeof full[0]; i++) {
        for (int di = 0; di < 3; di++)
            for (int gi = 0; gi < 2; gi++) run_one(&full[i], ds[di], gs[gi], ATTN_CUDA_F16);
        run_one(&full[i], 128, 4, ATTN_CUDA_F32);
    }
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) {
        run_one(&some[i], 128, 1, ATTN_CUDA_F16);
        run_one(&some[i], 256, 4, ATTN_CUDA_F32);
    }
    printf("test_kv_cuda: %d runs equal to the CPU stepper; quest near-ties allowed: %d\n",
           n_runs, quest_ties);
    timing("dense");
    timing("quest");
    timing("raas");
    attn_cuda_destroy(ctx);
    return tu_done("test_kv_cuda");
}
