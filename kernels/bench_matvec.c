/* bench_matvec.c: speed of quant_matvec at Gemma 3 270M shapes, against the plain
 * reference and against cblas_sgemv on the same matrix already dequantized to float.
 * Prints, per format, shape and thread count: median ms per call, GB/s of weight bytes
 * streamed, and the two ratios. Not a test: timings on a shared machine are noisy. */
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

int main(int argc, char **argv) {
    int reps = 21, big = 1, max_threads = 2;
    const char *types_arg = "Q4_K,Q6_K,Q8_0,Q5_0,F16,F32";
    arg_spec specs[] = {
        {"reps", ARG_INT, &reps, "N", "timed calls per case for the small shapes (median; default 21)"},
        {"big", ARG_INT, &big, "0|1", "also run the 262144 x 640 output projection (default 1)"},
        {"threads", ARG_INT, &max_threads, "N", "largest thread count; runs 1 and N (default 2)"},
        {"types", ARG_STR, &types_arg, "LIST", "formats (default Q4_K,Q6_K,Q8_0,Q5_0,F16,F32)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    int help = 0, n_pos = 0;
    if (args_parse("bench_matvec", "bench_matvec [options]", specs, argc - 1, argv + 1, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (reps < 1 || max_threads < 1) {
        rb_fail(&e, RB_EINPUT, "bench_matvec", "--reps and --threads must be >= 1");
        return rb_err_print(&e);
    }
    char *storage = NULL;
    const char *names[16];
    int n_types = 0;
    if (args_name_list("--types", types_arg, &storage, names, 16, &n_types, &e)) return rb_err_print(&e);
    ggml_type types[16];
    for (int i = 0; i < n_types; i++) {
        int found = 0;
        for (int t = 0; t < 64 && !found; t++)
            if (quant_supported((ggml_type)t) && strcmp(ggml_type_name((ggml_type)t), names[i]) == 0)
                types[i] = (ggml_type)t, found = 1;
        if (!found) {
            rb_fail(&e, RB_EINPUT, "--types", "unknown or unsupported format '%s'", names[i]);
            free(storage);
            return rb_err_print(&e);
        }
    }
    free(storage);

    shape shapes[] = {
        {640, 2048, "o/down proj"},
        {2048, 640, "gate/up proj"},
        {262144, 640, "output proj"},
    };
    int thread_counts[2] = {1, max_threads};
    int n_tc = max_threads > 1 ? 2 : 1;
    quant_pool *pools[2] = {quant_pool_create(1), n_tc > 1 ? quant_pool_create(max_threads) : NULL};

    printf("# bench_matvec: y = W x; W rows x cols in the format; times are medians in ms\n");
    printf("# x_ref = reference time / fast time (reference: 1 thread, dequantize + double dot)\n");
    printf("# x_sgemv = cblas_sgemv time on the dequantized float32 W / fast time (same thread count)\n");
    printf("%-5s %8s %6s %3s %10s %8s %10s %8s %10s %8s %10s\n", "type", "rows", "cols", "thr", "fast_ms",
           "GB/s", "ref_ms", "x_ref", "sgemv_ms", "x_sgemv", "max_relerr");
    uint64_t seed = 7;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        shape s = shapes[si];
        int is_big = s.rows > 100000;
        if (is_big && !big) continue;
        for (int ti = 0; ti < n_types; ti++) {
            ggml_type t = types[ti];
            if (s.cols % ggml_block_elems(t) != 0) {
                printf("%-5s %8lld %6lld   - n/a: cols not a multiple of %d\n", ggml_type_name(t),
                       (long long)s.rows, (long long)s.cols, ggml_block_elems(t));
                continue;
            }
            size_t rb = quant_row_bytes(t, s.cols);
            size_t wbytes = (size_t)s.rows * rb;
            uint8_t *w = rb_malloc(wbytes);
            for (int64_t r = 0; r < s.rows; r++) quant_random_row(t, w + (size_t)r * rb, s.cols, &seed);
            float *x = rb_malloc((size_t)s.cols * sizeof *x);
            for (int64_t c = 0; c < s.cols; c++) x[c] = sinf((float)c * 0.37f);
            float *y = rb_malloc((size_t)s.rows * sizeof *y), *yref = rb_malloc((size_t)s.rows * sizeof *yref);
            float *wf = rb_malloc((size_t)s.rows * (size_t)s.cols * sizeof *wf); // [rows, cols]
            for (int64_t r = 0; r < s.rows; r++)
                quant_dequant_row(t, w + (size_t)r * rb, wf + (size_t)r * (size_t)s.cols, s.cols);

            double ref_ms;
            int reps_here = is_big ? 3 : reps;
            TIME_MEDIAN(ref_ms, is_big ? 1 : 3, quant_matvec_ref(t, w, s.rows, s.cols, x, yref));
            double ysum = 0;
            for (int64_t r = 0; r < s.rows; r++) ysum += fabs(yref[r]);
            double ymean = ysum / (double)s.rows;
            for (int k = 0; k < n_tc; k++) {
                int nt = thread_counts[k];
                double fast_ms, blas_ms;
                TIME_MEDIAN(fast_ms, reps_here, quant_matvec(pools[k], t, w, s.rows, s.cols, x, y));
                // error relative to the typical |y| (a single y near 0 would inflate a per-row ratio)
                double maxerr = 0;
                for (int64_t r = 0; r < s.rows; r++) maxerr = fmax(maxerr, fabs((double)y[r] - yref[r]));
                openblas_set_num_threads(nt);
                TIME_MEDIAN(blas_ms, reps_here,
                            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)s.rows, (int)s.cols, 1.0f, wf,
                                        (int)s.cols, x, 1, 0.0f, y, 1));
                printf("%-5s %8lld %6lld %3d %10.3f %8.2f %10.3f %8.1f %10.3f %8.2f %10.2e\n", ggml_type_name(t),
                       (long long)s.rows, (long long)s.cols, nt, fast_ms, (double)wbytes / (fast_ms * 1e6), ref_ms,
                       ref_ms / fast_ms, blas_ms, blas_ms / fast_ms, maxerr / (ymean > 0 ? ymean : 1));
                fflush(stdout);
            }
            free(w), free(x), free(y), free(yref), free(wf);
        }
    }
    quant_pool_destroy(pools[0]);
    quant_pool_destroy(pools[1]);
    return 0;
}
