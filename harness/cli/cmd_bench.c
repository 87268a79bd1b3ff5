/* cmd_bench.c: `raasbench bench replay|decode`: benchmark programs that print figures and
 * their ratio to a reference measured in the same run (never timed tests). Machines are
 * noisy: every figure is the median of repeats. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "attn.h"
#include "attn_causal_block.h"
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

/* OpenBLAS sgemm of the chunk reference's logits shape, [m, k] x [k, n], on n_threads side by
 * side with one sgemm thread each (as replay's layer threads call it): GFLOP/s summed, each
 * thread's the median of its repeats. The machine's compute limit the reference is held to. */
typedef struct sgemm_job { int m, n, k; double gflops; } sgemm_job;
static void *sgemm_run(void *a) {
    sgemm_job *j = a;
    j->gflops = attn_sgemm_gflops(j->m, j->n, j->k, 7);
    return NULL;
}
static double sgemm_side_by_side(int m, int n, int k, int n_threads) {
    sgemm_job jobs[16];
    pthread_t th[16];
    attn_blas_threads(1);
    for (int i = 0; i < n_threads; i++) jobs[i] = (sgemm_job){m, n, k, 0};
    for (int i = 1; i < n_threads; i++)
        RB_CHECK(pthread_create(&th[i], NULL, sgemm_run, &jobs[i]) == 0);
    sgemm_run(&jobs[0]);
    double sum = jobs[0].gflops;
    for (int i = 1; i < n_threads; i++) pthread_join(th[i], NULL), sum += jobs[i].gflops;
    return sum;
}

/* GFLOP/s of a replay's dense reference on its threads: its useful flops over its time
 * (dense_ns is summed over the threads that ran layers side by side). */
static double ref_gflops(const engine_stats *s, int threads_busy) {
    return s->dense_ns > 0 ? (double)s->dense_flops * threads_busy / (double)s->dense_ns : 0;
}

static rb_status make_trace(const char *dir, const char *name, int layers, int prefill,
                            int decode, char *path, size_t cap, rb_err *e) {
    synth_config c;
    synth_config_default(&c);
    c.n_layers = layers, c.n_prefill = prefill, c.n_decode = decode;
    snprintf(path, cap, "%s/%s.h5", dir, name);
    return synth_write(&c, path, NULL, e);
}

/* CPU time of the process (every thread): on a shared machine its load moves wall times
 * far more than the CPU time a replay takes. */
static int64_t cpu_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Median wall time and median CPU time of engine_replay over reps, with the stats of the
 * median-wall run. */
static rb_status time_replay(engine_config *ec, int reps, int64_t *wall, int64_t *cpu,
                             engine_stats *st, rb_err *e) {
    int64_t t[16] = {0}, sorted[16] = {0}, cpus[16] = {0};
    engine_stats s[16];
    for (int r = 0; r < reps; r++) {
        results_run *runs = rb_calloc((size_t)ec->n_cells, sizeof *runs);
        int64_t c0 = cpu_now_ns();
        rb_status x = engine_replay(ec, runs, &s[r], e);
        cpus[r] = cpu_now_ns() - c0;
        for (int i = 0; !x && i < ec->n_cells; i++) results_run_free(&runs[i]);
        free(runs);
        if (x) return x;
        sorted[r] = t[r] = s[r].wall_ns; /* no memcpy of a prefix: gcc 13's fortified
                                            memcpy warned that t may be uninitialized */
    }
    *wall = median(sorted, reps);
    *cpu = median(cpus, reps);
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
                            const char *budgets, int threads, int reps, int chunk,
                            int dense_layers, const attn_backend *ref_be, const uint8_t *sep,
                            rb_err *e) {
    const trace_meta *m = trace_get_meta(t);
    printf("\n== sweep cost: %s (%d layers, %d q / %d kv heads, head_dim %d, %d prefill + %d "
           "decode), %d threads, %d dense layers, median of %d\n", trace_path, m->n_stored,
           m->n_q_heads, m->n_kv_heads, m->head_dim, m->n_prefill, m->n_tokens - m->n_prefill,
           threads, dense_layers, reps);
    engine_config ec = {.trace = t, .page_size = 16, .dense_layers = dense_layers, .elem_bytes = 2,
                        .threads = threads, .seed = 1, .chunk = chunk, .ref_backend = ref_be,
                        .separator = sep};
    int busy = threads < m->n_stored ? threads : m->n_stored;
    int T = m->n_tokens - m->n_prefill;
    engine_stats s_sweep = {0};
    const int every[] = {1, 8};
    for (int k = 0; k < 2; k++) {
        int64_t w_dense, w_sweep, c_dense, c_sweep;
        engine_stats s_dense;
        ec.latency_every = every[k];
        ec.cells = dense, ec.n_cells = n_dense;
        rb_status st = time_replay(&ec, reps, &w_dense, &c_dense, &s_dense, e);
        ec.cells = sweep, ec.n_cells = n_sweep;
        int64_t *cell_ns = k == 0 ? rb_calloc((size_t)n_sweep, sizeof *cell_ns) : NULL;
        ec.cell_ns = cell_ns; /* summed over the reps */
        if (!st) st = time_replay(&ec, reps, &w_sweep, &c_sweep, &s_sweep, e);
        ec.cell_ns = NULL;
        if (st) {
            free(cell_ns);
            return st;
        }
        printf("-- latency timed on every%s step%s\n", every[k] == 1 ? "" : " 8th",
               every[k] == 1 ? " (replay's default)" : " (replay --latency-every 8)");
        printf("%-44s %10.3f s   (cpu %.3f s)\n", "replay dense alone (wall)", w_dense / 1e9,
               c_dense / 1e9);
        printf("%-44s %10.3f s   (cpu %.3f s; %d cells: %s x %s)\n", "replay sweep (wall)",
               w_sweep / 1e9, c_sweep / 1e9, n_sweep, policies, budgets);
        printf("%-44s %10.2fx   (acceptance: <= 3x)\n", "sweep / dense alone",
               (double)w_sweep / w_dense);
        printf("%-44s %10.1f us/step/layer\n", "dense reference pass",
               s_sweep.dense_ns / 1e3 / T / m->n_stored);
        printf("%-44s %10.2f us/step/layer\n", "one extra cell (mean over the sweep's cells)",
               s_sweep.cells_ns / 1e3 / T / m->n_stored / n_sweep);
        printf("%-44s %10.2f us/step/layer\n", "scoring one cell against the reference",
               s_sweep.metrics_ns / 1e3 / T / m->n_stored / n_sweep);
        double busy_ns = (double)(s_sweep.dense_ns + s_sweep.cells_ns + s_sweep.metrics_ns);
        printf("%-44s %10.1f GFLOP/s (%d threads); cells' share of the sweep %.0f%%\n",
               "dense reference as causal blocks", ref_gflops(&s_sweep, busy), busy,
               100.0 * (s_sweep.cells_ns + s_sweep.metrics_ns) / busy_ns);
        if (k == 0) { /* each cell's steps and scoring: its share of the cells' time */
            int64_t all = 0;
            for (int i = 0; i < n_sweep; i++) all += cell_ns[i];
            printf("   each cell's steps and scoring, ms per replay (share of the cells' time):\n");
            for (int i = 0; i < n_sweep; i++)
                printf("     %-22s %9.1f ms (%4.1f%%)%s", sweep[i].run_id, cell_ns[i] / 1e6 / reps,
                       all > 0 ? 100.0 * cell_ns[i] / all : 0, i % 2 ? "\n" : "   ");
            if (n_sweep % 2) printf("\n");
            free(cell_ns);
        }
        if (k == 0) { /* the engine before, in the same run: whole-range steps attended
                         for real (--full-sets attend), then also the per-step reference */
            static const struct { engine_reference ref; const char *what; } was[] = {
                {ENGINE_REF_BLOCK, "--full-sets attend"},
                {ENGINE_REF_STEPS, "--full-sets attend --reference steps"},
            };
            for (int v = 0; v < 2 && !st; v++) {
                int64_t w[2], c[2];
                engine_stats s_was[2];
                ec.full_sets = ENGINE_FULL_ATTEND, ec.reference = was[v].ref;
                ec.cells = dense, ec.n_cells = n_dense;
                st = time_replay(&ec, reps, &w[0], &c[0], &s_was[0], e);
                ec.cells = sweep, ec.n_cells = n_sweep;
                if (!st) st = time_replay(&ec, reps, &w[1], &c[1], &s_was[1], e);
                ec.full_sets = ENGINE_FULL_REFERENCE, ec.reference = ENGINE_REF_BLOCK;
                if (st) break;
                printf("-- %s%s\n", was[v].what, v ? " (the engine before issue 11)" : "");
                printf("%-44s %10.3f s   (cpu %.3f s): default %.2fx faster (cpu %.2fx)\n",
                       "replay dense alone (wall)", w[0] / 1e9, c[0] / 1e9, (double)w[0] / w_dense,
                       (double)c[0] / c_dense);
                printf("%-44s %10.3f s   (cpu %.3f s): default %.2fx faster (cpu %.2fx)\n",
                       "replay sweep (wall)", w[1] / 1e9, c[1] / 1e9, (double)w[1] / w_sweep,
                       (double)c[1] / c_sweep);
                if (v) printf("%-44s %10.1f GFLOP/s\n", "dense reference step by step",
                              ref_gflops(&s_was[1], busy));
            }
            if (st) return st;
            printf("acceptance (default over the engine before, wall: dense alone >= 4x, sweep "
                   ">= 1.8x)\n");
        }
    }
    printf("%-44s %10.3f s\n", "reading the trace (summed over threads)", s_sweep.read_ns / 1e9);
    return RB_OK;
}

/* Per-cell cost: one replay of every cell with every layer sparse, each step timed on one
 * thread (no neighbour in the cache): a cell's cost per step and layer is its step (append,
 * select, attention over its set, observe) over the layers, over the second half of the
 * decode, where every budget up to half the decode is full: the median step, and the mean
 * (which carries the compressions a policy runs every C steps, amortized); each the median
 * of the repeats. Then, per policy, how the mean grows from its smallest budget to its
 * largest against how the budget grows: equal for O(L) per step, more for worse. */
static rb_status per_cell_cost(trace *t, const char *trace_path, const cell *cells, int n,
                               const uint8_t *sep, int reps, rb_err *e) {
    const trace_meta *m = trace_get_meta(t);
    int T = m->n_tokens - m->n_prefill, L = m->n_stored;
    printf("\n== per-cell cost: %s (%d layers, every one sparse, %d q / %d kv heads, head_dim %d, "
           "%d prefill + %d decode), 1 thread, median of %d\n", trace_path, L, m->n_q_heads,
           m->n_kv_heads, m->head_dim, m->n_prefill, T, reps);
    engine_config ec = {.trace = t, .cells = cells, .n_cells = n, .page_size = 16,
                        .dense_layers = 0, .elem_bytes = 2, .threads = 1, .seed = 1,
                        .latency_every = 1, .separator = sep};
    int64_t *med = rb_calloc((size_t)n * reps, sizeof *med);
    int64_t *mean = rb_calloc((size_t)n * reps, sizeof *mean);
    int64_t *v = rb_malloc(sizeof *v * (size_t)(T + reps));
    rb_status st = RB_OK;
    for (int r = 0; r < reps && !st; r++) {
        results_run *runs = rb_calloc((size_t)n, sizeof *runs);
        if (!(st = engine_replay(&ec, runs, NULL, e)))
            for (int i = 0; i < n; i++) {
                int k = 0;
                int64_t sum = 0;
                for (int s = T / 2; s < T; s++)
                    if (runs[i].latency_ns[s] >= 0) sum += v[k++] = runs[i].latency_ns[s];
                med[(size_t)i * reps + r] = k ? median(v, k) / L : -1;
                mean[(size_t)i * reps + r] = k ? sum / k / L : -1;
                results_run_free(&runs[i]);
            }
        free(runs);
    }
    if (!st) {
        printf("%-24s %-13s %7s %12s %12s  (us per step and layer)\n", "run_id", "policy",
               "budget", "median", "mean");
        double *us = rb_malloc(sizeof *us * (size_t)n);
        for (int i = 0; i < n; i++) {
            us[i] = median(mean + (size_t)i * reps, reps) / 1e3;
            printf("%-24s %-13s %7d %12.2f %12.2f\n", cells[i].run_id, cells[i].ops->name,
                   cells[i].budget, median(med + (size_t)i * reps, reps) / 1e3, us[i]);
        }
        printf("%-13s %17s %10s %10s\n", "policy", "budgets", "mean x", "budget x");
        for (int i = 0; i < n; i++) {
            int lo = i, hi = i, first = 1;
            for (int j = 0; j < n; j++) {
                if (cells[j].ops != cells[i].ops || strcmp(cells[j].label, cells[i].label)) continue;
                first &= j >= i;
                if (cells[j].budget < cells[lo].budget) lo = j;
                if (cells[j].budget > cells[hi].budget) hi = j;
            }
            if (!first || lo == hi) continue;
            char b[40];
            snprintf(b, sizeof b, "%d -> %d", cells[lo].budget, cells[hi].budget);
            printf("%-13s %17s %9.2fx %9.2fx\n", cells[i].ops->name, b, us[hi] / us[lo],
                   (double)cells[hi].budget / cells[lo].budget);
        }
        free(us);
    }
    free(med);
    free(mean);
    free(v);
    return st;
}

/* The dense reference's compute rate in replay, on 1 thread and on `threads`: synthetic
 * traces with one layer per thread, N tokens (N - 64 prompt + 64 decode steps), replayed with
 * dense alone; the reference's GFLOP/s as causal blocks and step by step, beside sgemm of the
 * block's logits shape on as many threads in the same run: measured before, between and
 * after the two replays, the median of the three (a shared machine's load moves all). */
static rb_status reference_compute(const char *dir, const cell *dense, int threads, int reps,
                                   int chunk, const attn_backend *ref_be, rb_err *e) {
    static const int Ns[] = {8192, 16384};
    int tc[2] = {1, threads > 16 ? 16 : threads}, lowest_ok = 1;
    printf("\n== dense reference compute rate (useful flops: 4 d per step, query head and key)\n");
    printf("%8s %8s %12s %12s %12s %10s %10s\n", "threads", "N", "block GF/s", "steps GF/s",
           "sgemm GF/s", "blk/sgemm", "blk/steps");
    for (int a = 0; a < (tc[1] > 1 ? 2 : 1); a++)
        for (int i = 0; i < 2; i++) {
            int N = Ns[i], steps = 64, nt = tc[a];
            char name[48], path[512];
            trace *tl = NULL;
            snprintf(name, sizeof name, "ref%d_%d", nt, N);
            rb_status st = make_trace(dir, name, nt, N - steps, steps, path, sizeof path, e);
            if (st || (st = trace_open(path, &tl, e))) return st;
            const trace_meta *lm = trace_get_meta(tl);
            engine_config el = {.trace = tl, .cells = dense, .n_cells = 1, .page_size = 16,
                                .dense_layers = 0, .elem_bytes = 2, .threads = nt, .seed = 1,
                                .chunk = chunk, .ref_backend = ref_be};
            int64_t wl, cl;
            engine_stats sb, ss;
            int G = lm->n_q_heads / lm->n_kv_heads, d = lm->head_dim, W = chunk > 0 ? chunk : 32;
            double sgs[3];
            sgs[0] = sgemm_side_by_side(G * W, N, d, nt);
            st = time_replay(&el, reps, &wl, &cl, &sb, e);
            sgs[1] = sgemm_side_by_side(G * W, N, d, nt);
            el.reference = ENGINE_REF_STEPS;
            if (!st) st = time_replay(&el, reps, &wl, &cl, &ss, e);
            sgs[2] = sgemm_side_by_side(G * W, N, d, nt);
            trace_close(tl);
            remove(path);
            if (st) return st;
            double lo = fmin(sgs[0], fmin(sgs[1], sgs[2])), hi = fmax(sgs[0], fmax(sgs[1], sgs[2]));
            double sg = sgs[0] + sgs[1] + sgs[2] - lo - hi; /* the median */
            double gb = ref_gflops(&sb, nt), gs = ref_gflops(&ss, nt);
            printf("%8d %8d %12.1f %12.1f %12.1f %9.2fx %9.2fx\n", nt, N, gb, gs, sg, gb / sg,
                   gb / gs);
            lowest_ok &= gb / sg >= 0.5;
        }
    printf("acceptance (reference >= 0.5 of same-run sgemm at N >= 8k, 1 and %d threads): %s\n",
           tc[1], lowest_ok ? "met" : "NOT met");
    return RB_OK;
}

static int bench_replay(int argc, char **argv) {
    const char *policies = "dense,streamingllm,h2o,quest,raas", *budgets = "128,256,512,1024";
    const char *trace_path = NULL;
    int layers = 4, decode = 3000, prefill = 128, reps = 3, threads = 0, chunk = 0;
    const char *device = "cpu", *model = NULL;
    int per_cell = 0, dense_layers = 2;
    const arg_spec specs[] = {
        {"trace", ARG_STR, &trace_path, "TRACE", "trace to replay (default: a synthetic one)"},
        {"layers", ARG_INT_IN(&layers, 1, 256), "N", "layers of the synthetic trace (default 4)"},
        {"prefill", ARG_INT_IN(&prefill, 1, 1 << 20), "N", "prompt length of the synthetic trace (default 128)"},
        {"decode", ARG_INT_IN(&decode, 1, 1 << 20), "N", "decode steps of the synthetic trace (default 3000)"},
        {"policies", ARG_STR, &policies, "a,b", "policies of the sweep (default: the paper's five, dense,streamingllm,h2o,quest,raas)"},
        {"budgets", ARG_STR, &budgets, "L1,L2", "budgets of the sweep (default 128,256,512,1024)"},
        {"reps", ARG_INT_IN(&reps, 1, 15), "R", "repeats, median reported (default 3)"},
        {"threads", ARG_INT_IN(&threads, 0, 1024), "N", "engine threads (default: all cores)"},
        {"dense-layers", ARG_INT_IN(&dense_layers, 0, 256), "N", "layers of the sweep attended densely (default 2; every cell shares one stepper there)"},
        {"chunk", ARG_INT_IN(&chunk, 0, 4096), "W", "decode steps per chunk (default: the engine's)"},
        {"device", ARG_STR, &device, "cpu|cuda", "where the dense reference runs (default cpu)"},
        {"per-cell", ARG_FLAG, &per_cell, NULL, "only each cell's cost per step and layer (every "
         "layer sparse, one thread) and, per policy, how it grows with the budget"},
        {"model", ARG_STR, &model, "M.gguf", "the model that recorded --trace (sepllm reads its "
         "tokens through the vocabulary)"},
        {NULL, ARG_FLAG, NULL, NULL, NULL},
    };
    int help = 0;
    rb_err e = {0};
    if (args_parse("bench replay", "[options]", specs, argc, argv, NULL, 0, NULL, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
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
    uint8_t *sep = NULL;
    if (!trace_path) {
        printf("generating synthetic trace: %d layers, prefill %d, decode %d ...\n", layers,
               prefill, decode);
        if (make_trace(dir, "sweep", layers, prefill, decode, path, sizeof path, &e)) goto fail;
        trace_path = path;
    }
    const attn_backend *ref_be = NULL;
    if (trace_open(trace_path, &t, &e) ||
        engine_parse_device(device, trace_get_meta(t), &ref_be, &e) ||
        args_name_list("--policies", policies, &names_buf, names, 64, &n_names, &e) ||
        args_int_list("--budgets", budgets, bud, 64, &n_bud, &e) ||
        cells_make(dense_name, 1, one_budget, 1, NULL, 0, NULL, &dense, &n_dense, &e) ||
        cells_make(names, n_names, bud, n_bud, NULL, 0, NULL, &sweep, &n_sweep, &e) ||
        (cells_need_separators(sweep, n_sweep) && cells_trace_separators(t, model, &sep, &e)))
        goto fail;
    if (per_cell) {
        if (per_cell_cost(t, trace_path, sweep, n_sweep, sep, reps, &e)) goto fail;
        goto done;
    }
    if (sweep_cost(t, trace_path, dense, n_dense, sweep, n_sweep, policies, budgets, threads,
                   reps, chunk, dense_layers, ref_be, sep, &e) ||
        reference_compute(dir, dense, threads, reps, chunk, ref_be, &e))
        goto fail;
    goto done;
fail:
    rc = rb_err_print(&e);
done:
    trace_close(t);
    cells_free(dense, n_dense);
    cells_free(sweep, n_sweep);
    free(names_buf);
    free(sep);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "raasbench: bench: could not remove %s\n", dir);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "usage: raasbench bench replay|decode|eval [options]   (bench <what> --help)\n\n"
                   "  replay   sweep cost against dense alone and with the per-step reference;\n"
                   "           the dense reference's GFLOP/s against sgemm's on the same threads\n"
                   "  decode   live decode tokens/s against llama.cpp, and where the time goes\n"
                   "  eval     graded eval tokens/s with T workers against T x single-stream decode\n"
                   "Kernel benchmarks are separate programs: build/bench_attn, build/bench_matvec,\n"
                   "build/bench_causal_block.\n");
        return argc < 1 ? RB_EINPUT : 0;
    }
    if (!strcmp(argv[0], "replay")) return bench_replay(argc - 1, argv + 1);
    if (!strcmp(argv[0], "decode")) return cmd_bench_decode(argc - 1, argv + 1);
    if (!strcmp(argv[0], "eval")) return cmd_bench_eval(argc - 1, argv + 1);
    fprintf(stderr, "raasbench: bench: unknown benchmark '%s' (replay, decode or eval)\n", argv[0]);
    return RB_EINPUT;
}
