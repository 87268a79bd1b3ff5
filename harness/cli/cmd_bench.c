/* cmd_bench.c: `raasbench bench replay|decode`: benchmark programs that print figures and
 * their ratio to a reference measured in the same run (never timed tests). Machines are
 * noisy: every figure is the median of repeats. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "attn.h"
#include "commands.h"
#include "model.h"
#include "engine.h"
#include "synth.h"

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}
static int64_t median(int64_t *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Copy bandwidth of this machine: memcpy of `bytes`, counting bytes read + written,
 * median of repeats, in GB/s. n_threads copies run side by side on separate buffers. */
typedef struct copy_job { char *src, *dst; size_t n; } copy_job;
static void *copy_run(void *a) {
    copy_job *j = a;
    memcpy(j->dst, j->src, j->n);
    return NULL;
}
static double copy_bandwidth(size_t bytes, int n_threads, int reps) {
    copy_job jobs[16];
    for (int i = 0; i < n_threads; i++) {
        jobs[i].n = bytes / n_threads;
        jobs[i].src = rb_malloc(jobs[i].n), jobs[i].dst = rb_malloc(jobs[i].n);
        memset(jobs[i].src, 1 + i, jobs[i].n), memset(jobs[i].dst, 0, jobs[i].n);
    }
    int64_t t[32];
    for (int r = 0; r < reps; r++) {
        pthread_t th[16];
        int64_t a = rb_now_ns();
        for (int i = 1; i < n_threads; i++) pthread_create(&th[i], NULL, copy_run, &jobs[i]);
        copy_run(&jobs[0]);
        for (int i = 1; i < n_threads; i++) pthread_join(th[i], NULL);
        t[r] = rb_now_ns() - a;
    }
    for (int i = 0; i < n_threads; i++) free(jobs[i].src), free(jobs[i].dst);
    return 2.0 * (double)(bytes / n_threads * n_threads) / (double)median(t, reps);
}

/* The dense pass's kernel (attn_dense_heads, replay's call: every KV head of a layer, logits
 * written) over K and V that come from memory, as in a decode whose KV cache of all layers
 * exceeds the caches: each call's buffers rotate through an arena of >= 192 MiB, so no call
 * finds its rows cached. n_threads run side by side on their own arenas, as replay's
 * threads run layers side by side. GB/s of K + V read, summed over threads, each from its
 * median call. */
typedef struct dense_job {
    int N, Hq, Hkv, d, reps;
    float scale;
    double gbs;
} dense_job;

static void *dense_job_run(void *arg) {
    dense_job *j = arg;
    size_t per = (size_t)j->N * j->Hkv * j->d; /* floats of K (and of V) per copy */
    size_t copies = (((size_t)192 << 20) / (2 * sizeof(float) * per)) + 2;
    float *k = rb_malloc(sizeof(float) * per * copies), *v = rb_malloc(sizeof(float) * per * copies);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < per * copies; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        k[i] = (float)((int32_t)(x >> 33) % 2000) * 1e-3f;
        v[i] = (float)((int32_t)(x >> 13) % 2000) * 1e-3f;
    }
    float *q = rb_malloc(sizeof(float) * j->Hq * j->d), *lg = rb_malloc(sizeof(float) * j->Hq * j->N);
    float *lse = rb_malloc(sizeof(float) * j->Hq), *out = rb_malloc(sizeof(float) * j->Hq * j->d);
    for (int i = 0; i < j->Hq * j->d; i++) q[i] = (float)((i * 37) % 17 - 8) * 0.1f;
    int64_t t[32];
    for (int r = 0; r < j->reps; r++) {
        size_t c = (size_t)r % copies;
        int64_t a = rb_now_ns();
        attn_dense_heads(q, j->Hq, j->Hkv, k + c * per, v + c * per, j->N, j->d, j->Hkv * j->d,
                         j->scale, lg, lse, out);
        t[r] = rb_now_ns() - a;
    }
    j->gbs = 2.0 * sizeof(float) * (double)per / (double)median(t, j->reps);
    free(k), free(v), free(q), free(lg), free(lse), free(out);
    return NULL;
}

static double dense_from_memory(int N, const dense_job *shape, int n_threads, int reps) {
    dense_job jobs[16];
    pthread_t th[16];
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = *shape;
        jobs[i].N = N, jobs[i].reps = reps;
    }
    for (int i = 1; i < n_threads; i++) pthread_create(&th[i], NULL, dense_job_run, &jobs[i]);
    dense_job_run(&jobs[0]);
    double sum = jobs[0].gbs;
    for (int i = 1; i < n_threads; i++) pthread_join(th[i], NULL), sum += jobs[i].gbs;
    return sum;
}

static rb_status make_trace(const char *dir, const char *name, int layers, int prefill,
                            int decode, char *path, size_t cap, rb_err *e) {
    synth_config c;
    synth_config_default(&c);
    c.n_layers = layers, c.n_prefill = prefill, c.n_decode = decode;
    snprintf(path, cap, "%s/%s.h5", dir, name);
    return synth_write(&c, path, NULL, e);
}

/* Median wall time of engine_replay over reps, with its stats of the median run. */
static rb_status time_replay(engine_config *ec, int reps, int64_t *wall, engine_stats *st,
                             rb_err *e) {
    int64_t t[16] = {0}; /* gcc 13 cannot see that reps >= 1 fills it */
    engine_stats s[16];
    for (int r = 0; r < reps; r++) {
        results_run *runs = rb_calloc((size_t)ec->n_cells, sizeof *runs);
        rb_status x = engine_replay(ec, runs, &s[r], e);
        for (int i = 0; !x && i < ec->n_cells; i++) results_run_free(&runs[i]);
        free(runs);
        if (x) return x;
        t[r] = s[r].wall_ns;
    }
    int64_t sorted[16];
    memcpy(sorted, t, sizeof(int64_t) * reps);
    *wall = median(sorted, reps);
    for (int r = 0; r < reps; r++)
        if (t[r] == *wall) *st = s[r];
    if (reps % 2 == 0) *st = s[0];
    return RB_OK;
}

/* Sweep cost: replay of dense alone against the whole sweep on the same trace, with latency
 * timed on every step (the default) and on every 8th step (exact metrics from the shared
 * reference in between). */
static rb_status sweep_cost(trace *t, const char *trace_path, const cell *dense, int n_dense,
                            const cell *sweep, int n_sweep, const char *policies,
                            const char *budgets, int threads, int reps, rb_err *e) {
    const trace_meta *m = trace_get_meta(t);
    printf("\n== sweep cost: %s (%d layers, %d q / %d kv heads, head_dim %d, %d prefill + %d "
           "decode), %d threads, median of %d\n", trace_path, m->n_stored, m->n_q_heads,
           m->n_kv_heads, m->head_dim, m->n_prefill, m->n_tokens - m->n_prefill, threads, reps);
    engine_config ec = {.trace = t, .page_size = 16, .dense_layers = 2, .elem_bytes = 2,
                        .threads = threads, .seed = 1};
    int T = m->n_tokens - m->n_prefill;
    engine_stats s_sweep = {0};
    const int every[] = {1, 8};
    for (int k = 0; k < 2; k++) {
        int64_t w_dense, w_sweep;
        engine_stats s_dense;
        ec.latency_every = every[k];
        ec.cells = dense, ec.n_cells = n_dense;
        rb_status st = time_replay(&ec, reps, &w_dense, &s_dense, e);
        ec.cells = sweep, ec.n_cells = n_sweep;
        if (st || (st = time_replay(&ec, reps, &w_sweep, &s_sweep, e))) return st;
        printf("-- latency timed on every %s step%s\n", every[k] == 1 ? "" : "8th",
               every[k] == 1 ? " (replay's default)" : " (replay --latency-every 8)");
        printf("%-44s %10.3f s\n", "replay dense alone (wall)", w_dense / 1e9);
        printf("%-44s %10.3f s   (%d cells: %s x %s)\n", "replay sweep (wall)", w_sweep / 1e9,
               n_sweep, policies, budgets);
        printf("%-44s %10.2fx   (acceptance: <= 3x)\n", "sweep / dense alone",
               (double)w_sweep / w_dense);
        printf("%-44s %10.1f us/step/layer\n", "dense reference pass",
               s_sweep.dense_ns / 1e3 / T / m->n_stored);
        printf("%-44s %10.2f us/step/layer\n", "one extra cell (mean over the sweep's cells)",
               s_sweep.cells_ns / 1e3 / T / m->n_stored / n_sweep);
        printf("%-44s %10.2f us/step/layer\n", "scoring one cell against the reference",
               s_sweep.metrics_ns / 1e3 / T / m->n_stored / n_sweep);
    }
    printf("%-44s %10.3f s\n", "reading the trace (summed over threads)", s_sweep.read_ns / 1e9);
    return RB_OK;
}

static const int long_Ns[] = {8192, 16384, 32768, 65536};

/* The dense pass as replay runs it on one thread, on 1-layer synthetic traces of each long
 * N: a layer's K and V re-read every step, from cache while they fit, beside memcpy of the
 * same size. *shape receives the traces' shapes. */
static rb_status bandwidth_in_replay(const char *dir, const cell *dense, int reps,
                                     dense_job *shape, rb_err *e) {
    printf("-- in replay, 1 thread, synthetic traces of 1 layer (the synthetic shapes): K and V\n"
           "   of the layer are re-read every step, from cache while they fit; beside memcpy of\n"
           "   the same size (in cache too: the dense pass is compute-bound there)\n");
    printf("%8s %10s %12s %12s %12s %10s\n", "N", "K+V MiB", "us/step", "GB/s", "memcpy GB/s",
           "ratio");
    for (int i = 0; i < 4; i++) {
        int N = long_Ns[i], steps = 64;
        char name[32], long_path[512];
        trace *tl = NULL;
        snprintf(name, sizeof name, "long%d", N);
        rb_status st = make_trace(dir, name, 1, N - steps, steps, long_path, sizeof long_path, e);
        if (st || (st = trace_open(long_path, &tl, e))) return st;
        const trace_meta *lm = trace_get_meta(tl);
        *shape = (dense_job){.Hq = lm->n_q_heads, .Hkv = lm->n_kv_heads, .d = lm->head_dim,
                             .scale = lm->attn_scale};
        engine_config el = {.trace = tl, .cells = dense, .n_cells = 1, .page_size = 16,
                            .dense_layers = 0, .elem_bytes = 2, .threads = 1, .seed = 1};
        int64_t wl;
        engine_stats sl;
        st = time_replay(&el, reps, &wl, &sl, e);
        double kv_mib = (double)N * lm->n_kv_heads * lm->head_dim * 2 * 4 / (1 << 20);
        trace_close(tl);
        remove(long_path);
        if (st) return st;
        /* Copy bandwidth at the same working-set size: a fair peer when K and V stay in
         * cache between steps, as they do in replay. */
        double copy_same = copy_bandwidth((size_t)(kv_mib * (1 << 20)), 1, 9);
        double gbs = (double)sl.dense_bytes / sl.dense_ns;
        printf("%8d %10.1f %12.1f %12.2f %12.2f %9.2fx\n", N, kv_mib, sl.dense_ns / 1e3 / steps,
               gbs, copy_same, gbs / copy_same);
    }
    return RB_OK;
}

/* The same kernel with K and V from memory, on one thread and on replay's thread count
 * (threads run layers side by side), against memcpy on as many threads: the acceptance
 * figures. */
static void bandwidth_from_memory(const dense_job *shape, int threads, double copy_dram) {
    int mem_threads[2] = {1, threads > 16 ? 16 : threads};
    double lowest[2] = {1e9, 1e9};
    for (int k = 0; k < (mem_threads[1] > 1 ? 2 : 1); k++) {
        int nt = mem_threads[k];
        double copy = k == 0 ? copy_dram : copy_bandwidth((size_t)256 << 20, nt, 5);
        printf("-- from memory, %d thread%s: the same kernel and shapes (%d q / %d kv heads, "
               "head_dim %d),\n   K and V rotating over >= 192 MiB per thread so no call finds "
               "them cached;\n   beside memcpy of 256 MiB on %d thread%s: %.2f GB/s\n",
               nt, nt > 1 ? "s" : "", shape->Hq, shape->Hkv, shape->d, nt,
               nt > 1 ? "s" : "", copy);
        printf("%8s %10s %12s %10s\n", "N", "K+V MiB", "GB/s", "of copy");
        for (int i = 0; i < 4; i++) {
            int N = long_Ns[i];
            double kv_mib = (double)N * shape->Hkv * shape->d * 2 * 4 / (1 << 20);
            double gbs = dense_from_memory(N, shape, nt, 15);
            printf("%8d %10.1f %12.2f %9.2fx\n", N, kv_mib, gbs, gbs / copy);
            if (gbs / copy < lowest[k]) lowest[k] = gbs / copy;
        }
    }
    printf("acceptance (dense pass >= 0.5 of copy bandwidth at N >= 8k, from memory): lowest "
           "%.2fx on 1 thread: %s", lowest[0], lowest[0] >= 0.5 ? "met" : "NOT met");
    if (mem_threads[1] > 1)
        printf("; %.2fx on %d threads: %s", lowest[1], mem_threads[1],
               lowest[1] >= 0.5 ? "met" : "NOT met");
    printf("\n");
}

static int bench_replay(int argc, char **argv) {
    const char *policies = "dense,streamingllm,h2o,quest,raas", *budgets = "128,256,512,1024";
    const char *trace_path = NULL;
    int layers = 4, decode = 3000, prefill = 128, reps = 3, threads = 0;
    const arg_spec specs[] = {
        {"trace", ARG_STR, &trace_path, "TRACE", "trace to replay (default: a synthetic one)"},
        {"layers", ARG_INT, &layers, "N", "layers of the synthetic trace (default 4)"},
        {"prefill", ARG_INT, &prefill, "N", "prompt length of the synthetic trace (default 128)"},
        {"decode", ARG_INT, &decode, "N", "decode steps of the synthetic trace (default 3000)"},
        {"policies", ARG_STR, &policies, "a,b", "policies of the sweep (default: the paper's five, dense,streamingllm,h2o,quest,raas)"},
        {"budgets", ARG_STR, &budgets, "L1,L2", "budgets of the sweep (default 128,256,512,1024)"},
        {"reps", ARG_INT, &reps, "R", "repeats, median reported (default 3)"},
        {"threads", ARG_INT, &threads, "N", "engine threads (default: all cores)"},
        {NULL, ARG_FLAG, NULL, NULL, NULL},
    };
    int help = 0;
    rb_err e = {0};
    if (args_parse("bench replay", "[options]", specs, argc, argv, NULL, 0, NULL, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (reps < 1 || reps > 15) {
        rb_fail(&e, RB_EINPUT, "--reps", "must be in 1..15");
        return rb_err_print(&e);
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char dir[] = "/tmp/raasbench-bench-XXXXXX", path[512];
    if (!mkdtemp(dir)) {
        rb_fail(&e, RB_EINTERNAL, "bench", "cannot create a temporary directory");
        return rb_err_print(&e);
    }
    int rc = 0;
    trace *t = NULL;
    cell *dense = NULL, *sweep = NULL;
    int n_dense = 0, n_sweep = 0;
    char *names_buf = NULL;
    const char *names[64];
    int n_names = 0, bud[64], n_bud = 0;
    const char *dense_name[] = {"dense"};
    int one_budget[] = {1024};
    if (!trace_path) {
        printf("generating synthetic trace: %d layers, prefill %d, decode %d ...\n", layers,
               prefill, decode);
        if (make_trace(dir, "sweep", layers, prefill, decode, path, sizeof path, &e)) goto fail;
        trace_path = path;
    }
    if (trace_open(trace_path, &t, &e) ||
        args_name_list("--policies", policies, &names_buf, names, 64, &n_names, &e) ||
        args_int_list("--budgets", budgets, bud, 64, &n_bud, &e) ||
        cells_make(dense_name, 1, one_budget, 1, NULL, 0, NULL, &dense, &n_dense, &e) ||
        cells_make(names, n_names, bud, n_bud, NULL, 0, NULL, &sweep, &n_sweep, &e) ||
        sweep_cost(t, trace_path, dense, n_dense, sweep, n_sweep, policies, budgets, threads,
                   reps, &e))
        goto fail;
    printf("\n== dense reference pass bandwidth (memcpy on the same number of threads)\n");
    double copy_dram = copy_bandwidth((size_t)256 << 20, 1, 5);
    printf("%-44s %10.2f GB/s   (read + written bytes)\n", "memcpy 256 MiB (from memory)",
           copy_dram);
    dense_job shape = {0};
    if (bandwidth_in_replay(dir, dense, reps, &shape, &e)) goto fail;
    bandwidth_from_memory(&shape, threads, copy_dram);
    goto done;
fail:
    rc = rb_err_print(&e);
done:
    trace_close(t);
    cells_free(dense, n_dense);
    cells_free(sweep, n_sweep);
    free(names_buf);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "raasbench: bench: could not remove %s\n", dir);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "usage: raasbench bench replay|decode|eval [options]   (bench <what> --help)\n\n"
                   "  replay   sweep cost against dense alone; dense pass bandwidth against memcpy\n"
                   "  decode   live decode tokens/s against llama.cpp, and where the time goes\n"
                   "  eval     graded eval tokens/s with T workers against T x single-stream decode\n"
                   "Kernel benchmarks are separate programs: build/bench_attn, build/bench_matvec.\n");
        return argc < 1 ? RB_EINPUT : 0;
    }
    if (!strcmp(argv[0], "replay")) return bench_replay(argc - 1, argv + 1);
    if (!strcmp(argv[0], "decode")) return cmd_bench_decode(argc - 1, argv + 1);
    if (!strcmp(argv[0], "eval")) return cmd_bench_eval(argc - 1, argv + 1);
    fprintf(stderr, "raasbench: bench: unknown benchmark '%s' (replay, decode or eval)\n", argv[0]);
    return RB_EINPUT;
}
