/* bench_matvec.c: speed of quant_matvec at Gemma 3 270M shapes, against the plain
 * reference and against cblas_sgemv on the same matrix already dequantized to float; and of
 * quant_matmat over 32 vectors (a prefill block) against 32 quant_matvec calls.
 * Prints, per format, shape and thread count: median ms per call, GB/s of weight bytes
 * streamed, and the ratios. Not a test: timings on a shared machine are noisy. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "quant.h"
#include "rb.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median wall time in ms of `reps` calls after one warm-up call. */
#define TIME_MEDIAN(out_ms, reps, call)                                                      \
    do {                                                                                     \
        double t_[64];                                                                       \
        int n_ = (reps) < 64 ? (reps) : 64;                                                  \
        call;                                                                                \
        for (int i_ = 0; i_ < n_; i_++) {                                                    \
            int64_t t0_ = rb_now_ns();                                                       \
            call;                                                                            \
            t_[i_] = (double)(rb_now_ns() - t0_) / 1e6;                                      \
        }                                                                                    \
        qsort(t_, (size_t)n_, sizeof t_[0], cmp_double);                                     \
        (out_ms) = t_[n_ / 2];                                                               \
    } while (0)

typedef struct shape {
    int64_t rows, cols;
    const char *what;
} shape;

/* --types: supported format names into types[0..16). */
static rb_status parse_types(const char *arg, ggml_type *types, int *n_types, rb_err *e) {
    char *storage = NULL;
    const char *names[16];
    rb_status st = args_name_list("--types", arg, &storage, names, 16, n_types, e);
    for (int i = 0; !st && i < *n_types; i++) {
        int found = 0;
        for (int t = 0; t < 64 && !found; t++)
            if (quant_supported((ggml_type)t) && strcmp(ggml_type_name((ggml_type)t), names[i]) == 0)
                types[i] = (ggml_type)t, found = 1;
        if (!found) st = rb_fail(e, RB_EINPUT, "--types", "unknown or unsupported format '%s'", names[i]);
    }
    free(storage);
    return st;
}

int main(int argc, char **argv) {
    int reps = 21, big = 1;
    const char *threads_arg = "1,2";
    const char *types_arg = "Q4_K,Q6_K,Q8_0,Q5_0,F16,F32";
    arg_spec specs[] = {
        {"reps", ARG_INT, &reps, "N", "timed calls per case for the small shapes (median; default 21)"},
        {"big", ARG_INT, &big, "0|1", "also run the 262144 x 640 output projection (default 1)"},
        {"threads", ARG_STR, &threads_arg, "LIST", "thread counts to run (default 1,2)"},
        {"types", ARG_STR, &types_arg, "LIST", "formats (default Q4_K,Q6_K,Q8_0,Q5_0,F16,F32)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    int rc = args_parse_cmd("bench_matvec", "[options]", specs, argc - 1, argv + 1, NULL, 0, NULL);
    if (rc >= 0) return rc;
    rb_err e = {0};
    int thread_counts[8], n_tc = 0;
    if (args_int_list("--threads", threads_arg, thread_counts, 8, &n_tc, &e)) return rb_err_print(&e);
    for (int k = 0; k < n_tc; k++)
        if (thread_counts[k] < 1) reps = 0;
    if (reps < 1 || n_tc < 1)
        return rb_report(RB_EINPUT, "bench_matvec", "--reps and every --threads value must be >= 1");
    ggml_type types[16];
    int n_types = 0;
    if (parse_types(types_arg, types, &n_types, &e)) return rb_err_print(&e);

    shape shapes[] = {
        {640, 2048, "o/down proj"},
        {2048, 640, "gate/up proj"},
        {262144, 640, "output proj"},
    };
    quant_pool *pools[8];
    for (int k = 0; k < n_tc; k++) pools[k] = quant_pool_create(thread_counts[k]);

    // Two phases: every quant_matvec timing first, every cblas_sgemv timing after. OpenBLAS
    // threads keep spinning for a while after a call; timed in between, they would take
    // cores from the pool under test.
    enum { MAX_CASES = 64, MM_X = 32 };
    typedef struct bench_case {
        ggml_type t;
        shape s;
        uint64_t seed;
        double ref_ms, fast_ms[8], blas_ms[8], relerr[8], mm_ms[8]; // mm: quant_matmat of MM_X vectors
    } bench_case;
    bench_case cases[MAX_CASES];
    int n_cases = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        if (shapes[si].rows > 100000 && !big) continue;
        for (int ti = 0; ti < n_types && n_cases < MAX_CASES; ti++) {
            if (shapes[si].cols % ggml_block_elems(types[ti]) != 0) {
                printf("# %-5s %lld x %lld: n/a, cols not a multiple of %d\n", ggml_type_name(types[ti]),
                       (long long)shapes[si].rows, (long long)shapes[si].cols, ggml_block_elems(types[ti]));
                continue;
            }
            cases[n_cases] = (bench_case){.t = types[ti], .s = shapes[si], .seed = 7 + (uint64_t)n_cases};
            n_cases++;
        }
    }

    for (int phase = 0; phase < 2; phase++) {
        for (int ci = 0; ci < n_cases; ci++) {
            bench_case *bc = &cases[ci];
            ggml_type t = bc->t;
            shape s = bc->s;
            int is_big = s.rows > 100000, reps_here = is_big ? 3 : reps;
            size_t rb = quant_row_bytes(t, s.cols);
            uint8_t *w = rb_malloc((size_t)s.rows * rb);
            uint64_t seed = bc->seed;
            for (int64_t r = 0; r < s.rows; r++) quant_random_row(t, w + (size_t)r * rb, s.cols, &seed);
            float *x = rb_malloc((size_t)s.cols * sizeof *x);
            for (int64_t c = 0; c < s.cols; c++) x[c] = sinf((float)c * 0.37f);
            float *y = rb_malloc((size_t)s.rows * sizeof *y);
            if (phase == 0) {
                float *yref = rb_malloc((size_t)s.rows * sizeof *yref);
                TIME_MEDIAN(bc->ref_ms, is_big ? 1 : 3, quant_matvec_ref(t, w, s.rows, s.cols, x, yref));
                double ysum = 0;
                for (int64_t r = 0; r < s.rows; r++) ysum += fabs(yref[r]);
                double ymean = ysum / (double)s.rows;
                for (int k = 0; k < n_tc; k++) {
                    TIME_MEDIAN(bc->fast_ms[k], reps_here, quant_matvec(pools[k], t, w, s.rows, s.cols, x, y));
                    // largest error relative to the mean |y| (one y near 0 would inflate a per-row ratio)
                    double maxerr = 0;
                    for (int64_t r = 0; r < s.rows; r++) maxerr = fmax(maxerr, fabs((double)y[r] - yref[r]));
                    bc->relerr[k] = maxerr / (ymean > 0 ? ymean : 1);
                }
                if (!is_big) {
                    float *xs = rb_malloc((size_t)(MM_X * s.cols) * sizeof *xs);
                    float *ys = rb_malloc((size_t)(MM_X * s.rows) * sizeof *ys);
                    for (int64_t c = 0; c < MM_X * s.cols; c++) xs[c] = sinf((float)c * 0.37f);
                    for (int k = 0; k < n_tc; k++)
                        TIME_MEDIAN(bc->mm_ms[k], reps_here,
                                    quant_matmat(pools[k], t, w, s.rows, s.cols, xs, MM_X, ys));
                    free(xs), free(ys);
                }
                free(yref);
            } else {
                float *wf = rb_malloc((size_t)s.rows * (size_t)s.cols * sizeof *wf); // [rows, cols]
                for (int64_t r = 0; r < s.rows; r++)
                    quant_dequant_row(t, w + (size_t)r * rb, wf + (size_t)r * (size_t)s.cols, s.cols);
                for (int k = 0; k < n_tc; k++) {
                    openblas_set_num_threads(thread_counts[k]);
                    TIME_MEDIAN(bc->blas_ms[k], reps_here,
                                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)s.rows, (int)s.cols, 1.0f, wf,
                                            (int)s.cols, x, 1, 0.0f, y, 1));
                }
                free(wf);
            }
            free(w), free(x), free(y);
        }
    }

    printf("# bench_matvec: y = W x; W rows x cols in the format; times are medians in ms\n");
    printf("# x_ref = reference time / fast time (reference: 1 thread, dequantize + double dot)\n");
    printf("# x_sgemv = cblas_sgemv time on the dequantized float32 W / fast time (same thread count)\n");
    printf("# relerr = max |y - y_ref| / mean |y_ref| (x quantized to 8 bits for the quantized formats)\n");
    printf("# mm_ms = quant_matmat of %d vectors / %d (ms per vector); x_mm = fast_ms / mm_ms\n", MM_X, MM_X);
    printf("%-5s %8s %6s %3s %10s %8s %10s %8s %10s %8s %10s %9s %7s\n", "type", "rows", "cols", "thr", "fast_ms",
           "GB/s", "ref_ms", "x_ref", "sgemv_ms", "x_sgemv", "relerr", "mm_ms", "x_mm");
    for (int ci = 0; ci < n_cases; ci++) {
        bench_case *bc = &cases[ci];
        double wbytes = (double)bc->s.rows * (double)quant_row_bytes(bc->t, bc->s.cols);
        for (int k = 0; k < n_tc; k++)
            printf("%-5s %8lld %6lld %3d %10.3f %8.2f %10.3f %8.1f %10.3f %8.2f %10.2e %9.4f %7.2f\n",
                   ggml_type_name(bc->t), (long long)bc->s.rows, (long long)bc->s.cols, thread_counts[k],
                   bc->fast_ms[k], wbytes / (bc->fast_ms[k] * 1e6), bc->ref_ms, bc->ref_ms / bc->fast_ms[k],
                   bc->blas_ms[k], bc->blas_ms[k] / bc->fast_ms[k], bc->relerr[k], bc->mm_ms[k] / MM_X,
                   bc->mm_ms[k] > 0 ? bc->fast_ms[k] / (bc->mm_ms[k] / MM_X) : 0.0);
    }
    for (int k = 0; k < n_tc; k++) quant_pool_destroy(pools[k]);
    return 0;
}
