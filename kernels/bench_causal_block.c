/* bench_causal_block.c: replay's dense reference of a chunk of W decode steps as one causal
 * block (attn_causal_chunk) against OpenBLAS sgemm measured in the same run on the same
 * threads (this machine's compute limit), and against the per-step path (attn_dense_heads
 * once per step, what replay did before). Useful GFLOP/s: 4 d flops per (step, query head,
 * attended key). Each of `threads` threads runs its own chunks side by side (as replay runs
 * layers), figures summed over threads, medians of repeats.
 *
 *   build/bench_causal_block [threads] [Hq Hkv d]     (default 1 thread, 8 q / 2 kv, d 64)
 * Prints, for N = 8k and 16k keys and W = 16..128 steps per chunk, the block's GFLOP/s, the
 * per-step path's, sgemm's on the logits product's shape and the ratio block / sgemm. The
 * sgemm is timed right after each block call, on the same thread and the same K, so a
 * shared machine's load falls on both alike: the ratio is the median of per-repeat ratios. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "attn.h"
#include "attn_causal_block.h"
#include "rb.h"

typedef struct job {
    int N, W, Hq, Hkv, d, reps, steps; /* steps: the per-step path instead */
    double gflops, sgemm_gflops, ratio;  /* medians over repeats */
} job;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void *run(void *arg) {
    job *j = arg;
    int N = j->N, W = j->W, Hq = j->Hq, Hkv = j->Hkv, d = j->d, t0 = N - W;
    size_t krow = (size_t)Hkv * d;
    float *q = rb_malloc(sizeof(float) * (size_t)W * Hq * d);
    float *k = rb_malloc(sizeof(float) * krow * N), *v = rb_malloc(sizeof(float) * krow * N);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < krow * N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        k[i] = (float)((int32_t)(x >> 33) % 2000) * 1e-3f;
        v[i] = (float)((int32_t)(x >> 13) % 2000) * 1e-3f;
    }
    for (size_t i = 0; i < (size_t)W * Hq * d; i++) q[i] = (float)((i * 37) % 17 - 8) * 0.1f;
    float *lg = rb_malloc(sizeof(float) * (size_t)W * Hq * N);
    float *pb = rb_malloc(sizeof(float) * (size_t)W * Hq * N);
    float *lse = rb_malloc(sizeof(float) * (size_t)W * Hq);
    float *out = rb_malloc(sizeof(float) * (size_t)W * Hq * d);
    float *work = rb_malloc(sizeof(float) * attn_chunk_work_floats(W, Hq, d));
    attn_chunk c = {.q = q, .k = k, .v = v, .W = W, .t0 = t0, .Hq = Hq, .Hkv = Hkv, .d = d,
                    .scale = 0.125f, .ldn = N, .logits = lg, .probs = pb, .lse = lse,
                    .out = out, .work = work};
    int64_t t[64], ts[64];
    double ratio[64];
    int G = Hq / Hkv;
    float *sc = rb_malloc(sizeof(float) * (size_t)G * W * N);
    double flops = 4.0 * d * Hq * ((double)W * t0 + (double)W * (W + 1) / 2);
    for (int r = 0; r < j->reps; r++) {
        int64_t a = rb_now_ns();
        if (j->steps)
            for (int w = 0; w < W; w++) {
                int n = t0 + w + 1;
                float *l = lg + (size_t)w * Hq * N;
                attn_dense_heads(q + (size_t)w * Hq * d, Hq, Hkv, k, v, n, d, (int)krow, 0.125f,
                                 l, lse + (size_t)w * Hq, out + (size_t)w * Hq * d);
                for (int h = 0; h < Hq; h++) /* as replay: the probabilities too */
                    attn_exp_shift(l + (size_t)h * n, lse[(size_t)w * Hq + h], n,
                                   pb + (size_t)w * Hq * N + (size_t)h * n);
            }
        else
            attn_causal_chunk(&c);
        t[r] = rb_now_ns() - a;
        /* the peer: the logits product's shape ([G*W, d] x [d, N] over the same K) */
        a = rb_now_ns();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G * W, N, d, 1.0f, q, d, k,
                    (int)krow, 0.0f, sc, N);
        ts[r] = rb_now_ns() - a;
        ratio[r] = (flops / (double)t[r]) / (2.0 * G * W * (double)N * d / (double)ts[r]);
    }
    qsort(t, (size_t)j->reps, sizeof t[0], cmp_i64);
    qsort(ts, (size_t)j->reps, sizeof ts[0], cmp_i64);
    for (int a = 1; a < j->reps; a++) /* insertion sort of the ratios */
        for (int b = a; b > 0 && ratio[b] < ratio[b - 1]; b--) {
            double x = ratio[b];
            ratio[b] = ratio[b - 1], ratio[b - 1] = x;
        }
    j->gflops = flops / (double)t[j->reps / 2];
    j->sgemm_gflops = 2.0 * G * W * (double)N * d / (double)ts[j->reps / 2];
    j->ratio = ratio[j->reps / 2];
    free(q), free(k), free(v), free(lg), free(pb), free(lse), free(out), free(work), free(sc);
    return NULL;
}

/* Every thread's job side by side; GFLOP/s summed over threads (*sgemm too), the ratio the
 * mean of the threads' median ratios. */
static double side_by_side(const job *shape, int threads, double *sgemm, double *ratio) {
    job jobs[16];
    pthread_t th[16];
    for (int i = 0; i < threads; i++) jobs[i] = *shape;
    for (int i = 1; i < threads; i++) pthread_create(&th[i], NULL, run, &jobs[i]);
    run(&jobs[0]);
    double sum = jobs[0].gflops, sg = jobs[0].sgemm_gflops, ra = jobs[0].ratio;
    for (int i = 1; i < threads; i++)
        pthread_join(th[i], NULL), sum += jobs[i].gflops, sg += jobs[i].sgemm_gflops,
                                   ra += jobs[i].ratio;
    if (sgemm) *sgemm = sg;
    if (ratio) *ratio = ra / threads;
    return sum;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, Hq = 8, Hkv = 2, d = 64;
    if (argc > 4) Hq = atoi(argv[2]), Hkv = atoi(argv[3]), d = atoi(argv[4]);
    if (threads < 1 || threads > 16 || Hq < 1 || Hkv < 1 || Hq % Hkv || d < 1) {
        fprintf(stderr, "usage: bench_causal_block [threads 1..16] [Hq Hkv d]\n");
        return 2;
    }
    attn_blas_threads(1); /* one sgemm thread per thread, side by side, as replay runs */
    printf("# replay's chunk reference: %d q / %d kv heads, d %d, %d thread%s side by side, "
           "GFLOP/s summed\n", Hq, Hkv, d, threads, threads > 1 ? "s" : "");
    printf("%7s %5s %10s %10s %10s %8s %8s\n", "N", "W", "block", "per-step", "sgemm",
           "blk/sgemm", "blk/step");
    static const int Ns[] = {8192, 16384}, Ws[] = {16, 32, 64, 128};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 4; b++) {
            job sh = {.N = Ns[a], .W = Ws[b], .Hq = Hq, .Hkv = Hkv, .d = d, .reps = 7};
            double sg, ratio, blk = side_by_side(&sh, threads, &sg, &ratio);
            sh.steps = 1, sh.reps = 3;
            static double stp_n;
            if (b == 0) stp_n = side_by_side(&sh, threads, NULL, NULL);
            printf("%7d %5d %10.1f %10.1f %10.1f %8.2f %8.2f\n", Ns[a], Ws[b], blk, stp_n, sg,
                   ratio, blk / stp_n);
        }
    printf("# sgemm: [G*W, d] x [d, N] (the logits product's shape) after each block call; "
           "blk/sgemm: median of per-repeat ratios; per-step: attn_dense_heads + exp per step "
           "(measured at W = 16; it does not depend on W)\n");
    return 0;
}
