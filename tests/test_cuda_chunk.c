/* test_cuda_chunk.c: attn_cuda_causal_chunk (replay's chunk reference on the GPU) against
 * the CPU reference attn_causal_chunk_ref on the same inputs: K and V in float32, half and
 * bfloat16 (the host reference reads the same rounded values), G = 1, 3, 4, 8, d = 64, 128,
 * 256, chunks of 1 to 64 steps from position 0 to 3000, with and without a sliding window,
 * and lse/out alone (no logits) equal to the full call's. Exits 77 ("no GPU") where no CUDA
 * device is usable or CUDA is not built.
 *
 * Tolerance: the kernel's arithmetic is float32 throughout (fmaf dot products, expf, an
 * online softmax over tiles of 32 keys), against a double reference; with N(0, 1) inputs
 * and scale 1/sqrt(d) the same argument as tests/attn_backend_check.h gives errors of a few
 * float32 ulp times the longest sum, observed ~1e-7. We allow 2e-5 relative to the largest
 * |value| (absolute for logits, probabilities and lse), that file's tolerance: loose for
 * any summation order, tight enough to catch a wrong or dropped key (about 1/n >= 3e-4). */
#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <string.h>

#include "attn_causal_block.h"
#include "cuda/attn_cuda.h"

#define TOL 2e-5

static uint64_t rng = 7;
static double worst;

static uint16_t float_to_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16); /* nearest, ties to even */
}
static float bf16_to_float(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void close_enough(const char *what, const float *got, const float *want, size_t n,
                         double scale, const char *ctx) {
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]), tol = TOL * (scale > 1 ? scale : 1);
        if (err / tol > worst) worst = err / tol;
        TU_ASSERT(err <= tol, "%s: %s[%zu]: got %.9g want %.9g (err %.3g > tol %.3g)", ctx, what,
                  i, got[i], want[i], err, tol);
    }
}

static void *to_device(attn_cuda *c, const void *host, size_t bytes) {
    rb_err e = {0};
    void *d;
    TU_OK(attn_cuda_alloc(c, bytes ? bytes : 4, &d, &e), e);
    if (host) TU_OK(attn_cuda_upload(c, d, host, bytes, &e), e);
    return d;
}

static void run_case(attn_cuda *c, attn_cuda_dtype dt, int Hq, int Hkv, int d, int t0, int W,
                     int window) {
    char ctx[128];
    snprintf(ctx, sizeof ctx, "dtype %d, %d q / %d kv, d %d, t0 %d, W %d, window %d", (int)dt,
             Hq, Hkv, d, t0, W, window);
    int N = t0 + W, ldn = N + 3;
    size_t kn = (size_t)N * Hkv * d, qn = (size_t)W * Hq * d, nl = (size_t)Hq * W * ldn;
    float *q = rb_malloc(sizeof(float) * qn), *k = rb_malloc(sizeof(float) * kn);
    float *v = rb_malloc(sizeof(float) * kn);
    uint16_t *hk = rb_malloc(2 * kn), *hv = rb_malloc(2 * kn);
    for (size_t i = 0; i < qn; i++) q[i] = (float)tu_randn(&rng);
    for (size_t i = 0; i < kn; i++) {
        float a = (float)tu_randn(&rng), b = (float)tu_randn(&rng);
        if (dt == ATTN_CUDA_F16) hk[i] = rb_float_to_half(a), hv[i] = rb_float_to_half(b),
                                 a = rb_half_to_float(hk[i]), b = rb_half_to_float(hv[i]);
        if (dt == ATTN_CUDA_BF16) hk[i] = float_to_bf16(a), hv[i] = float_to_bf16(b),
                                  a = bf16_to_float(hk[i]), b = bf16_to_float(hv[i]);
        k[i] = a, v[i] = b;
    }
    float scale = 1 / sqrtf((float)d);
    /* the CPU reference */
    float *lg = rb_calloc(nl, 4), *pb = rb_calloc(nl, 4), *lse = rb_malloc(4 * (size_t)W * Hq);
    float *out = rb_malloc(4 * qn);
    attn_chunk ch = {.q = q, .k = k, .v = v, .W = W, .t0 = t0, .window = window, .Hq = Hq,
                     .Hkv = Hkv, .d = d, .scale = scale, .ldn = ldn, .logits = lg, .probs = pb,
                     .lse = lse, .out = out};
    attn_causal_chunk_ref(&ch);
    /* the device */
    size_t eb = dt == ATTN_CUDA_F32 ? 4 : 2;
    void *dq = to_device(c, q, 4 * qn);
    void *dk = to_device(c, dt == ATTN_CUDA_F32 ? (void *)k : (void *)hk, eb * kn);
    void *dv = to_device(c, dt == ATTN_CUDA_F32 ? (void *)v : (void *)hv, eb * kn);
    float *dl = to_device(c, NULL, 4 * nl), *dp = to_device(c, NULL, 4 * nl);
    float *dlse = to_device(c, NULL, 4 * (size_t)W * Hq), *dout = to_device(c, NULL, 4 * qn);
    attn_cuda_shape sh = {Hq, Hkv, d, scale, dt};
    rb_err e = {0};
    float *g_lg = rb_malloc(4 * nl), *g_pb = rb_malloc(4 * nl);
    float *g_lse = rb_malloc(4 * (size_t)W * Hq), *g_out = rb_malloc(4 * qn);
    for (int alone = 0; alone < 2; alone++) {
        TU_OK(attn_cuda_causal_chunk(c, &sh, dq, dk, dv, W, t0, window, ldn, alone ? NULL : dl,
                                     alone ? NULL : dp, dlse, dout, &e), e);
        TU_OK(attn_cuda_sync(c, &e), e);
        TU_OK(attn_cuda_download(c, g_lse, dlse, 4 * (size_t)W * Hq, &e), e);
        TU_OK(attn_cuda_download(c, g_out, dout, 4 * qn, &e), e);
        close_enough("lse", g_lse, lse, (size_t)W * Hq, 1, ctx);
        double vmax = 0;
        for (size_t i = 0; i < kn; i++) vmax = fabs(v[i]) > vmax ? fabs(v[i]) : vmax;
        close_enough("out", g_out, out, qn, vmax, ctx);
        if (alone) break;
        TU_OK(attn_cuda_download(c, g_lg, dl, 4 * nl, &e), e);
        TU_OK(attn_cuda_download(c, g_pb, dp, 4 * nl, &e), e);
        for (int h = 0; h < Hq; h++)
            for (int w = 0; w < W; w++) {
                int t = t0 + w, j0 = window > 0 && t + 1 > window ? t + 1 - window : 0;
                size_t at = ((size_t)h * W + w) * ldn + j0;
                close_enough("logits", g_lg + at, lg + at, (size_t)(t + 1 - j0), 1, ctx);
                close_enough("probs", g_pb + at, pb + at, (size_t)(t + 1 - j0), 1, ctx);
            }
    }
    /* refusals: checked before any launch */
    TU_ASSERT(attn_cuda_causal_chunk(c, &sh, dq, dk, dv, 0, t0, window, ldn, dl, dp, dlse, dout,
                                     &e) == RB_EINPUT, "W = 0 refused");
    TU_ASSERT(attn_cuda_causal_chunk(c, &sh, dq, dk, dv, W, t0, window, ldn, NULL, dp, dlse, dout,
                                     &e) == RB_EINPUT, "probs without logits refused");
    TU_ASSERT(attn_cuda_causal_chunk(c, &sh, dq, dk, dv, W, t0, window, t0, dl, dp, dlse, dout,
                                     &e) == RB_EINPUT, "ldn < t0 + W refused");
    void *bufs[] = {dq, dk, dv, dl, dp, dlse, dout};
    for (int i = 0; i < 7; i++) attn_cuda_free(c, bufs[i]);
    free(q), free(k), free(v), free(hk), free(hv), free(lg), free(pb), free(lse), free(out);
    free(g_lg), free(g_pb), free(g_lse), free(g_out);
}

int main(void) {
    if (attn_cuda_device_count() == 0) {
        printf("test_cuda_chunk: skipped (no usable CUDA device, or CUDA not built)\n");
        return 77;
    }
    attn_cuda *c;
    rb_err e = {0};
    TU_OK(attn_cuda_create(&c, &e), e);
    static const attn_cuda_dtype dts[] = {ATTN_CUDA_F32, ATTN_CUDA_F16, ATTN_CUDA_BF16};
    static const int ds[] = {64, 128, 256};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            run_case(c, dts[a], 8, 2, ds[b], 0, 1, 0);      /* the first position alone */
            run_case(c, dts[a], 8, 2, ds[b], 5, 7, 0);      /* a chunk longer than its past */
            run_case(c, dts[a], 8, 8, ds[b], 300, 32, 0);   /* G = 1 */
            run_case(c, dts[a], 12, 4, ds[b], 1000, 33, 0); /* G = 3, a partial block */
            run_case(c, dts[a], 32, 4, ds[b], 3000, 64, 0); /* G = 8, long rows */
            run_case(c, dts[a], 8, 2, ds[b], 90, 32, 100);  /* the window starts inside */
            run_case(c, dts[a], 8, 2, ds[b], 700, 16, 64);  /* window shorter than W + t0 */
        }
    attn_cuda_destroy(c);
    printf("# causal_chunk on the GPU against the CPU reference: largest error / tolerance %.3g\n",
           worst);
    return tu_done("test_cuda_chunk");
}
