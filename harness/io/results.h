/* results.h: results files (HDF5, format_version 1, DESIGN §5; results/FORMAT.md).
 *
 * A results file holds runs: one (trace, policy, parameters, budget) cell each, with its
 * per-step series, and a /summary table of one row per run. Files are written to a
 * temporary name and renamed when complete. A sweep writes each finished cell as its own
 * one-run file and assembles them (results_assemble), so a killed sweep loses nothing. */
#ifndef RESULTS_H
#define RESULTS_H

#include <stdint.h>

#include "rb.h"

#define RESULTS_FORMAT "raasbench-results"
#define RESULTS_FORMAT_VERSION 1

/* One run's series. Arrays are owned by the run (results_run_free frees them). */
typedef struct results_run {
    char run_id[160];
    char policy[32];
    char trace[512];
    int budget;
    char *params_json;   /* the resolved parameters, a JSON object */
    int page_size, dense_layers;
    int latency_every;    /* latency_ns was measured every this many steps (-1 between) */
    int T, n_layers, n_q_heads; /* decode steps, stored layers, query heads */
    int32_t *layers;      /* [n_layers] model layer index of each column */
    int32_t *sparse;      /* [n_layers] 1 where the policy acts (counts in summary means) */
    int32_t *step;        /* [T] decode positions */
    float *recall;        /* [T, n_layers] */
    float *out_err;       /* [T, n_layers] */
    float *attended;      /* [T, n_layers] mean |S| over query heads */
    float *recall_head;   /* optional [T, n_layers, n_q_heads] (--per-head), else NULL */
    float *out_err_head;  /* optional [T, n_layers, n_q_heads] */
    int64_t *kv_bytes;    /* [T] resident K+V bytes, all layers */
    int64_t *meta_bytes;  /* [T] */
    int64_t *latency_ns;  /* [T] policy step time, all layers; -1 where not measured */
    /* live decode only (NULL otherwise) */
    float *token_match;   /* [T] */
    float *kl;            /* [T] */
    int64_t *token_latency_ns; /* [T] */
    /* optional selection dump: [n_layers] arrays uint8 [T, n_q_heads, n_tokens] */
    uint8_t **selection;
    int n_tokens;
} results_run;

/* Allocate the series of a run (zeroed). per_head adds the per-head arrays. */
void results_run_alloc(results_run *r, int T, int n_layers, int n_q_heads, int per_head);
void results_run_free(results_run *r);

/* The summary row of a run: means over sparse layers and all steps; latency percentiles
 * over the measured steps. */
typedef struct results_summary {
    char run_id[160], trace[512], policy[32];
    int32_t budget;
    double mean_recall, mean_out_err, mean_attended;
    int64_t p50_latency_ns, p99_latency_ns, peak_kv_bytes, final_kv_bytes, peak_meta_bytes;
    double mean_token_match, mean_kl; /* NaN when not a live decode */
} results_summary;
void results_summarise(const results_run *r, results_summary *s);

/* Provenance written to the root of every results file. */
typedef struct results_provenance {
    const char *trace;        /* path of the (first) trace */
    const char *trace_sha256; /* hex */
    const char *config_json;  /* the resolved configuration */
} results_provenance;

typedef struct results_writer results_writer;
rb_status results_create(const char *path, const results_provenance *p, results_writer **out,
                         rb_err *e);
rb_status results_add_run(results_writer *w, const results_run *r, rb_err *e);
/* Write /summary, close and rename into place; frees the writer whatever happens. */
rb_status results_finish(results_writer *w, rb_err *e);
void results_abort(results_writer *w); /* NULL is a no-op */

/* Read back: the run ids of a file, and one run whole. */
rb_status results_list_runs(const char *path, char ***ids, int *n, rb_err *e);
rb_status results_read_run(const char *path, const char *run_id, results_run *r, rb_err *e);

/* Copy every run of the files srcs[0..n) into a new results file at path (provenance p). */
rb_status results_assemble(const char *path, const results_provenance *p,
                           const char *const *srcs, int n, rb_err *e);

/* `raasbench info` for a results file: provenance and the summary table. Exit code. */
int results_print_info(const char *path);

/* SHA-256 of a file as 64 hex characters + NUL. */
rb_status results_file_sha256(const char *path, char hex[65], rb_err *e);

#endif
