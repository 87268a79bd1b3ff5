/* bench_cuda_chunk.c: device time of replay's whole dense reference on the GPU
 * (attn_cuda_causal_chunk over every chunk of every layer), beside the device's float32
 * matmul rate measured in the same run (cuBLAS sgemm, loaded at run time so the build needs
 * no cuBLAS; "n/a" when the library is not found).
 *
 *   build/bench_cuda_chunk [layers 32] [tokens 16384] [W 256]
 * Shape: 32 q / 8 kv heads, d 128 (a 7-8B-class model); every position 0..tokens-1 is a
 * step (the most work a trace of that length can ask for). lse and o* of every step are
 * computed (what the reference must give per step; logits and probabilities of a 16k-token
 * trace would be 1.1 TB to write, so the engine asks for them per chunk only when it needs
 * them). K and V in float32, half and bfloat16; q float32. Every layer reuses one layer's
 * buffers (the cost does not depend on the values). Useful flops: 4 d per (step, query head,
 * attended key). Device time between two events around the whole sequence, queued behind a
 * spin kernel. Exit 77 when there is no GPU. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/attn_cuda.h"
#include "rb.h"

enum { HQ = 32, HKV = 8, D = 128 };

#define TRY(call)                                                                              \
    do {                                                                                       \
        if ((call) != RB_OK) {                                                                 \
            fprintf(stderr, "bench_cuda_chunk: %s: %s\n", e.what, e.why);                      \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

/* cuBLAS sgemm TFLOP/s on n x n x n, median of 5 after 2 warm-ups; 0 when not available. */
static double sgemm_tflops(attn_cuda *c, int n) {
    void *lib = NULL;
    const char *names[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"};
    for (int i = 0; i < 4 && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) return 0;
    typedef int (*create_fn)(void **);
    typedef int (*gemm_fn)(void *, int, int, int, int, int, const float *, const float *, int,
                           const float *, int, const float *, float *, int);
    typedef int (*sync_fn)(void);
    create_fn create = (create_fn)dlsym(lib, "cublasCreate_v2");
    gemm_fn gemm = (gemm_fn)dlsym(lib, "cublasSgemm_v2");
    sync_fn sync = (sync_fn)dlsym(RTLD_DEFAULT, "cudaDeviceSynchronize");
    void *h = NULL;
    if (!create || !gemm || !sync || create(&h) != 0) return 0;
    rb_err e = {0};
    void *a, *b, *cm;
    size_t bytes = sizeof(float) * (size_t)n * n;
    if (attn_cuda_alloc(c, bytes, &a, &e) || attn_cuda_alloc(c, bytes, &b, &e) ||
        attn_cuda_alloc(c, bytes, &cm, &e) ||
        attn_cuda_fill_random(c, a, (size_t)n * n, ATTN_CUDA_F32, 1, &e) ||
        attn_cuda_fill_random(c, b, (size_t)n * n, ATTN_CUDA_F32, 2, &e) || attn_cuda_sync(c, &e))
        return 0;
    float one = 1, zero = 0;
    double t[7];
    for (int r = 0; r < 7; r++) {
        sync();
        int64_t t0 = rb_now_ns();
        if (gemm(h, 0, 0, n, n, n, &one, a, n, b, n, &zero, cm, n) != 0) return 0;
        sync();
        t[r] = (double)(rb_now_ns() - t0);
    }
    for (int i = 2; i < 7; i++) /* sort the 5 timed runs */
        for (int j = i + 1; j < 7; j++)
            if (t[j] < t[i]) {
                double x = t[i];
                t[i] = t[j], t[j] = x;
            }
    attn_cuda_free(c, a), attn_cuda_free(c, b), attn_cuda_free(c, cm);
    return 2.0 * n * n * (double)n / t[4] / 1e3;
}

int main(int argc, char **argv) {
    int layers = argc > 1 ? atoi(argv[1]) : 32, N = argc > 2 ? atoi(argv[2]) : 16384;
    int W = argc > 3 ? atoi(argv[3]) : 256;
    if (layers < 1 || N < 1 || W < 1) {
        fprintf(stderr, "usage: bench_cuda_chunk [layers] [tokens] [W]\n");
        return 2;
    }
    if (attn_cuda_device_count() == 0) {
        printf("bench_cuda_chunk: skipped (no usable CUDA device, or CUDA not built)\n");
        return 77;
    }
    rb_err e = {0};
    attn_cuda *c;
    TRY(attn_cuda_create(&c, &e));
    char desc[256];
    attn_cuda_describe(c, desc, sizeof desc);
    double sg = sgemm_tflops(c, 8192);
    printf("# %s; replay's dense reference: %d layers x %d tokens, %d q / %d kv heads, d %d, "
           "chunks of %d steps\n", desc, layers, N, HQ, HKV, D, W);
    if (sg > 0) printf("# cuBLAS sgemm 8192^3 (float32, same run): %.1f TFLOP/s\n", sg);
    else printf("# cuBLAS not found: no matmul rate beside\n");
    printf("%-6s %12s %12s %12s %12s\n", "K/V", "device s", "TFLOP/s", "of sgemm", "acceptance");
    double flops = 4.0 * D * HQ * ((double)N * (N + 1) / 2) * layers;
    static const attn_cuda_dtype dts[] = {ATTN_CUDA_F32, ATTN_CUDA_F16, ATTN_CUDA_BF16};
    static const char *const dn[] = {"f32", "f16", "bf16"};
    for (int a = 0; a < 3; a++) {
        size_t eb = dts[a] == ATTN_CUDA_F32 ? 4 : 2, kn = (size_t)N * HKV * D;
        size_t qn = (size_t)N * HQ * D;
        void *q, *k, *v, *lse, *out;
        TRY(attn_cuda_alloc(c, 4 * qn, &q, &e));
        TRY(attn_cuda_alloc(c, eb * kn, &k, &e));
        TRY(attn_cuda_alloc(c, eb * kn, &v, &e));
        TRY(attn_cuda_alloc(c, 4 * (size_t)W * HQ, &lse, &e));
        TRY(attn_cuda_alloc(c, 4 * (size_t)W * HQ * D, &out, &e));
        TRY(attn_cuda_fill_random(c, q, qn, ATTN_CUDA_F32, 3, &e));
        TRY(attn_cuda_fill_random(c, k, kn, dts[a], 4, &e));
        TRY(attn_cuda_fill_random(c, v, kn, dts[a], 5, &e));
        attn_cuda_shape sh = {HQ, HKV, D, 0.08838834764831845f, dts[a]};
        /* warm-up: one chunk */
        TRY(attn_cuda_causal_chunk(c, &sh, q, k, v, W < N ? W : N, 0, 0, 0, NULL, NULL, lse, out,
                                   &e));
        TRY(attn_cuda_sync(c, &e));
        TRY(attn_cuda_spin(c, 2000, &e));
        TRY(attn_cuda_mark(c, 0, &e));
        for (int l = 0; l < layers; l++)
            for (int t0 = 0; t0 < N; t0 += W) {
                int w = N - t0 < W ? N - t0 : W;
                TRY(attn_cuda_causal_chunk(c, &sh, (const float *)q + (size_t)t0 * HQ * D, k, v, w,
                                           t0, 0, 0, NULL, NULL, lse, out, &e));
            }
        TRY(attn_cuda_mark(c, 1, &e));
        float ms;
        TRY(attn_cuda_elapsed_ms(c, 0, 1, &ms, &e));
        TRY(attn_cuda_sync(c, &e));
        double tf = flops / (ms * 1e-3) / 1e12;
        char of[32] = "n/a";
        if (sg > 0) snprintf(of, sizeof of, "%.2f", tf / sg);
        printf("%-6s %12.3f %12.2f %12s %12s\n", dn[a], ms * 1e-3, tf, of,
               ms < 10000 ? "< 10 s: met" : "NOT met");
        void *bufs[] = {q, k, v, lse, out};
        for (int i = 0; i < 5; i++) attn_cuda_free(c, bufs[i]);
    }
    attn_cuda_destroy(c);
    return 0;
}
