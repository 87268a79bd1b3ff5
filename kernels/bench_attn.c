/* bench_attn.c: how fast the attention kernels run against this machine's memory.
 *
 * attn_dense (G = 4 query heads on one KV head, ld = d, logits written as replay asks) for
 * N = 1k..32k and d = 64, 128 (and 256): median time per call, bytes moved (K + V read, logits
 * written), achieved GB/s, the copy bandwidth of this machine measured in the same run
 * (memcpy of 256 MiB counting read + write bytes) and the ratio, and attn_dense_ref's time
 * and the speedup. Then attn_gather over L = 256 and 1024 pool rows (random rows or random
 * pages of 16), per-head and shared sets, and a whole layer of several KV heads: attn_dense per head (strided rows)
 * against attn_dense_heads. Inputs rotate over an
 * arena much larger than the last-level cache so every call streams from memory.
 * Single-threaded, like the kernels. ~10-20 s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <math.h>

#include "attn.h"
#include "rb.h"

enum { ARENA_MIB = 192, COPY_MIB = 256 };

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double median_ns(int64_t *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_i64);
    return n % 2 ? (double)t[n / 2] : 0.5 * (double)(t[n / 2 - 1] + t[n / 2]);
}

/* The same dense attention through OpenBLAS, the peer a BLAS-minded implementation would
 * write: logits [G, n] = scale Q K^T (sgemm), each row's softmax with the kernels' vector
 * exp, out [G, d] = P V (sgemm) divided by the row sums. Three passes over n instead of
 * one; K and V are each read once. p: scratch [G, n]. */
static void attn_dense_blas(const float *q, int G, const float *k, const float *v, int n, int d,
                            int ld, float scale, float *logits, float *lse, float *out, float *p) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, n, d, scale, q, d, k, ld, 0.0f, logits,
                n);
    float sum[64];
    for (int g = 0; g < G; g++) {
        const float *s = logits + (size_t)g * n;
        float m = s[0];
        for (int j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
        attn_exp_shift(s, m, n, p + (size_t)g * n);
        double z = 0;
        for (int j = 0; j < n; j++) z += p[(size_t)g * n + j];
        sum[g] = (float)z;
        lse[g] = m + (float)log(z);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, G, d, n, 1.0f, p, n, v, ld, 0.0f, out, d);
    for (int g = 0; g < G; g++)
        for (int c = 0; c < d; c++) out[(size_t)g * d + c] /= sum[g];
}

static void fill(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((int32_t)seed >> 8) * 0x1p-23f;
    }
}

/* Bytes per second of memcpy over a 256 MiB buffer (src, dst), counting the read and the
 * write: median of reps copies. */
static double copy_bandwidth(char *src, char *dst, int reps) {
    size_t bytes = (size_t)COPY_MIB << 20;
    int64_t t[16];
    for (int r = 0; r < reps; r++) {
        int64_t t0 = rb_now_ns();
        memcpy(dst, src, bytes);
        t[r] = rb_now_ns() - t0;
        src[r] = dst[bytes - 1 - r]; /* keep the copies observable */
    }
    return 2.0 * (double)bytes / (median_ns(t, reps) * 1e-9);
}

int main(void) {
    const int G = 4;
    size_t arena_floats = ((size_t)ARENA_MIB << 20) / sizeof(float);
    float *arena = rb_malloc(arena_floats * sizeof(float));
    fill(arena, arena_floats, 12345u);
    float *q = rb_malloc(sizeof(float) * G * 256), lse[8],
          *out = rb_malloc(sizeof(float) * 8 * 256);
    fill(q, (size_t)G * 256, 777u);

    size_t copy_bytes = (size_t)COPY_MIB << 20;
    char *csrc = rb_malloc(copy_bytes), *cdst = rb_malloc(copy_bytes);
    memset(csrc, 1, copy_bytes);
    memset(cdst, 2, copy_bytes);
    double copy_bw = copy_bandwidth(csrc, cdst, 7);
    printf("copy bandwidth (memcpy of %d MiB, read + write bytes, median of 7): %.2f GB/s\n"
           "(each dense row below is compared with the copy bandwidth measured just before it,\n"
           " median of 5, so a busy neighbour on a shared machine slows both alike)\n\n",
           COPY_MIB, copy_bw * 1e-9);

    printf("attn_dense: G=%d, one KV head group, ld=d; MB = K + V read + logits [G,N] written;\n"
           "inputs rotate over %d MiB; GB/s from the median time (best: from the fastest call)\n",
           G, ARENA_MIB);
    printf("blas_us: the same through OpenBLAS sgemm on 1 thread (logits, softmax, P V); "
           "x_blas = blas_us / fast_us\n");
    printf("%4s %6s %9s %8s %7s %7s %7s %8s %10s %8s %9s %7s\n", "d", "N", "fast_us", "MB", "GB/s",
           "best", "copy", "of_copy", "ref_us", "speedup", "blas_us", "x_blas");
    openblas_set_num_threads(1);
    float *pscratch = rb_malloc(sizeof(float) * (size_t)G * 32768);
    static const int Ns[] = {1024, 4096, 8192, 16384, 32768};
    static const int ds[] = {64, 128, 256};
    double worst_big = 1e9;
    for (size_t a = 0; a < sizeof ds / sizeof *ds; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++) {
            int d = ds[a], N = Ns[b];
            size_t set_floats = 2 * (size_t)N * d + (size_t)G * N; /* K, V, logits */
            int n_sets = (int)(arena_floats / set_floats);
            RB_CHECK(n_sets >= 2);
            double bytes = (2.0 * N * d + (double)G * N) * sizeof(float);
            /* ~1.5 GB of traffic per configuration, at least 9 and at most 400 calls */
            int reps = (int)(1.5e9 / bytes);
            reps = reps < 9 ? 9 : reps > 400 ? 400 : reps;
            int64_t *t = rb_malloc(sizeof(int64_t) * (size_t)reps);
            float scale = 1.0f / 8;
            for (int r = 0; r < reps; r++) {
                float *base = arena + (size_t)(r % n_sets) * set_floats;
                float *k = base, *v = base + (size_t)N * d, *lg = v + (size_t)N * d;
                int64_t t0 = rb_now_ns();
                attn_dense(q, G, k, v, N, d, d, scale, lg, lse, out, NULL);
                t[r] = rb_now_ns() - t0;
            }
            double row_copy = copy_bandwidth(csrc, cdst, 5);
            double fast = median_ns(t, reps), best = (double)t[0]; /* sorted by median_ns */
            int ref_reps = N <= 4096 ? 3 : 1;
            for (int r = 0; r < ref_reps; r++) {
                float *base = arena + (size_t)((r + 1) % n_sets) * set_floats;
                float *k = base, *v = base + (size_t)N * d, *lg = v + (size_t)N * d;
                int64_t t0 = rb_now_ns();
                attn_dense_ref(q, G, k, v, N, d, d, scale, lg, lse, out);
                t[r] = rb_now_ns() - t0;
            }
            double ref = median_ns(t, ref_reps);
            int blas_reps = reps < 45 ? reps : 45;
            for (int r = 0; r < blas_reps; r++) {
                float *base = arena + (size_t)((r + 2) % n_sets) * set_floats;
                float *k = base, *v = base + (size_t)N * d, *lg = v + (size_t)N * d;
                int64_t t0 = rb_now_ns();
                attn_dense_blas(q, G, k, v, N, d, d, scale, lg, lse, out, pscratch);
                t[r] = rb_now_ns() - t0;
            }
            double blas = median_ns(t, blas_reps);
            double bw = bytes / (fast * 1e-9);
            if (N >= 8192 && d <= 128 && bw / row_copy < worst_big) worst_big = bw / row_copy;
            printf("%4d %6d %9.1f %8.3f %7.2f %7.2f %7.2f %8.2f %10.1f %7.1fx %9.1f %6.2fx\n", d, N,
                   fast * 1e-3, bytes * 1e-6, bw * 1e-9, bytes / best, row_copy * 1e-9,
                   bw / row_copy, ref * 1e-3, ref / fast, blas * 1e-3, blas / fast);
            fflush(stdout);
            free(t);
        }
    printf(
        "acceptance (dense pass >= 50%% of copy bandwidth at N >= 8k, d = 64 and 128): lowest ratio "
        "%.2f: %s\n\n",
        worst_big, worst_big >= 0.5 ? "met" : "NOT met");

    /* A layer of Hkv KV heads (token rows of Hkv * d floats), G=4 query heads each: attn_dense
     * once per KV head (each call reads a strided column) against attn_dense_heads (one pass
     * over whole token rows). */
    printf("whole layer of Hkv KV heads, G=%d each, N=8192, logits written: attn_dense per head "
           "vs attn_dense_heads\n", G);
    printf("%4s %4s %12s %8s %12s %8s %8s\n", "d", "Hkv", "per_head_us", "GB/s", "heads_us",
           "GB/s", "speedup");
    static const int layers[][2] = {{64, 1}, {64, 2}, {64, 8}, {128, 2}, {128, 8}, {256, 2}};
    for (size_t a = 0; a < sizeof layers / sizeof *layers; a++) {
        int d = layers[a][0], H = layers[a][1], N = 8192, Hq = G * H;
        size_t set_floats = 2 * (size_t)N * d * H;
        int n_sets = (int)(arena_floats / set_floats), reps = 21;
        RB_CHECK(n_sets >= 2);
        float *ql = rb_malloc(sizeof(float) * (size_t)Hq * d), *ll = rb_malloc(sizeof(float) * Hq);
        float *ol = rb_malloc(sizeof(float) * (size_t)Hq * d);
        float *lg = rb_malloc(sizeof(float) * (size_t)Hq * N);
        fill(ql, (size_t)Hq * d, 99u);
        int64_t t[2][21];
        for (int r = 0; r < 2 * reps; r++) {
            float *k = arena + (size_t)(r % n_sets) * set_floats, *v = k + (size_t)N * d * H;
            int64_t t0 = rb_now_ns();
            if (r % 2 == 0)
                for (int g = 0; g < H; g++)
                    attn_dense(ql + (size_t)g * G * d, G, k + g * d, v + g * d, N, d, d * H, 0.125f,
                               lg + (size_t)g * G * N, ll + g * G, ol + (size_t)g * G * d, NULL);
            else
                attn_dense_heads(ql, Hq, H, k, v, N, d, d * H, 0.125f, lg, ll, ol);
            t[r % 2][r / 2] = rb_now_ns() - t0;
        }
        double per = median_ns(t[0], reps), heads = median_ns(t[1], reps);
        double bytes = (2.0 * N * d * H + (double)Hq * N) * sizeof(float);
        printf("%4d %4d %12.1f %8.2f %12.1f %8.2f %7.2fx\n", d, H, per * 1e-3, bytes / per,
               heads * 1e-3, bytes / heads, per / heads);
        free(ql), free(ll), free(ol), free(lg);
    }
    printf("\n");

    /* Gather: rows from the whole arena, either single rows at random (worst case) or random
     * pages of 16 consecutive rows (what page-based policies select). */
    printf("attn_gather: G=%d, L rows of the %d MiB arena, random single rows or random pages of\n"
           "16 consecutive rows (probs written)\n", G, ARENA_MIB);
    printf("%4s %5s %5s %9s %10s %9s %8s %11s %9s\n", "d", "L", "rows", "sets", "fast_us", "ns/row",
           "GB/s", "ref_us", "speedup");
    static const int Ls[] = {256, 1024};
    for (size_t a = 0; a < sizeof ds / sizeof *ds; a++)
        for (size_t b = 0; b < sizeof Ls / sizeof *Ls; b++)
            for (int mode = 0; mode < 4; mode++) {
                int shared = mode % 2 == 0, paged = mode >= 2;
                int d = ds[a], L = Ls[b], stride = L;
                size_t n_rows = arena_floats / (size_t)d;
                const float **kr = rb_malloc(sizeof(*kr) * (size_t)G * stride);
                const float **vr = rb_malloc(sizeof(*vr) * (size_t)G * stride);
                float *probs = rb_malloc(sizeof(float) * (size_t)G * stride);
                float *work = rb_malloc(sizeof(float) * (size_t)G * stride);
                int n[8];
                enum { REPS = 41 };
                int64_t tf[REPS], tr[5];
                uint64_t x = 88172645463325252ull;
                for (int r = 0; r < REPS + 5; r++) {
                    /* fresh random rows each call, so they come from memory, not cache */
                    size_t row = 0, vrow = 0;
                    for (int i = 0; i < G * stride; i++) {
                        if (!paged || i % 16 == 0) {
                            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                            row = (size_t)(x % (n_rows - 16)), vrow = (row * 7919 + 1) % (n_rows - 16);
                        } else
                            row++, vrow++;
                        kr[i] = arena + row * d;
                        vr[i] = arena + vrow * d;
                    }
                    for (int g = 0; g < G; g++) n[g] = L;
                    int64_t t0 = rb_now_ns();
                    if (r < REPS)
                        attn_gather(q, G, kr, vr, n, stride, shared, d, 0.125f, probs, out, work);
                    else
                        attn_gather_ref(q, G, kr, vr, n, stride, shared, d, 0.125f, probs, out);
                    int64_t dt = rb_now_ns() - t0;
                    if (r < REPS)
                        tf[r] = dt;
                    else
                        tr[r - REPS] = dt;
                }
                double fast = median_ns(tf, REPS), ref = median_ns(tr, 5);
                double rows = (double)L * (shared ? 1 : G), bytes = rows * 2 * d * sizeof(float);
                printf("%4d %5d %5s %9s %10.1f %9.1f %8.2f %11.1f %8.1fx\n", d, L,
                       paged ? "pages" : "rand", shared ? "shared" : "per-head", fast * 1e-3,
                       fast / rows, bytes / fast, ref * 1e-3, ref / fast);
                fflush(stdout);
                free(kr), free(vr), free(probs), free(work);
            }
    free(arena), free(q), free(out), free(csrc), free(cdst), free(pscratch);
    return 0;
}
