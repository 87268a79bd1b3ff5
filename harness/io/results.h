/* results.h: results files (HDF5, format_version 1, DESIGN §5; results/FORMAT.md).
 *
 * A results file holds runs: one (trace, policy, parameters, budget) cell each, with its
 * per-step series, and a /summary table of one row per run. Files are written to a
 * temporary name and renamed when complete. A sweep writes each finished cell as its own
 * one-run file and assembles them (results_assemble), so a killed sweep loses nothing.
 *
 * Every attribute, dataset and summary column is one row of the schema in
 * results_schema.{h,c}; the writer, the reader and results_summarise below go through
 * those rows, never through a list of their own. */
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

/* Allocate the series of a run (zeroed): the [n_layers] attributes and every series present
 * in every run; per_head adds the per-head arrays. Live-decode series and the selection
 * dump are left NULL for their producers. */
void results_run_alloc(results_run *r, int T, int n_layers, int n_q_heads, int per_head);
void results_run_free(results_run *r);

/* The summary row of a run: means over sparse layers and all steps; latency percentiles
 * over the measured steps (each column's rule is its row in results_schema.c). */
typedef struct results_summary {
    char run_id[160], trace[512], policy[32];
    int32_t budget;
    double mean_recall, mean_out_err, mean_attended;
    int64_t p50_latency_ns, p99_latency_ns, peak_kv_bytes, final_kv_bytes, peak_meta_bytes;
    double mean_token_match, mean_kl; /* NaN when not a live decode */
} results_summary;
void results_summarise(const results_run *r, results_summary *s);
/* Nearest-rank percentile p (0..100) of the measured (>= 0) values of x[0..T); -1 when none
 * (the summary's p50/p99 latencies). */
int64_t results_percentile(const int64_t *x, int T, double p);

/* The attributes of a results file's root (rows of RESULTS_ROOT in results_schema.c). */
typedef struct results_header {
    char format[64];
    int format_version;
    char raasbench_version[64], git_commit[64], compiler[256], libraries[256], created[64];
    char host[256], trace[512], trace_sha256[72];
    char *config;     /* the resolved configuration, JSON; owned (results_header_free) */
    uint64_t present; /* bit i: root row i was in the file (reading) */
} results_header;
void results_header_free(results_header *h);

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

/* Reading. A reader holds one results file open (its format and version checked).
 * Messages name the file, and the run, dataset or attribute at fault. */
typedef struct results_reader results_reader;
rb_status results_reader_open(const char *path, results_reader **out, rb_err *e);
void results_reader_close(results_reader *rd); /* NULL is a no-op */
/* The root attributes; those missing are empty and their bit of h->present clear. */
void results_reader_header(results_reader *rd, results_header *h);
/* The run ids, in name order (ids and each id malloc'd). */
rb_status results_reader_runs(results_reader *rd, char ***ids, int *n, rb_err *e);
/* Which series (RESULTS_SERIES rows, bit i for row i) run `id` has, without reading them. */
rb_status results_reader_present(results_reader *rd, const char *id, uint64_t *series,
                                 rb_err *e);
/* One run, checked against the schema: every required attribute and series present, every
 * shape consistent in T, n_layers, n_q_heads and n_tokens. Series whose `when` is in skip
 * (RESULTS_SKIP bits) are not read. On failure *r is empty. */
rb_status results_reader_run(results_reader *rd, const char *id, unsigned skip, results_run *r,
                             rb_err *e);
/* The /summary table: *rows (malloc'd, *n of them) with the members the file has, by
 * name, whatever their order or string kind; the others zero. present (may be NULL): bit i
 * for RESULTS_SUMMARY row i found in the file. */
rb_status results_reader_summary(results_reader *rd, results_summary **rows, int *n,
                                 uint64_t *present, rb_err *e);

/* One-shot forms: the run ids of a file, and one run whole. */
rb_status results_list_runs(const char *path, char ***ids, int *n, rb_err *e);
rb_status results_read_run(const char *path, const char *run_id, results_run *r, rb_err *e);

/* Copy every run of the files srcs[0..n) into a new results file at path (provenance p). */
rb_status results_assemble(const char *path, const results_provenance *p,
                           const char *const *srcs, int n, rb_err *e);

/* SHA-256 of a file as 64 hex characters + NUL. */
rb_status results_file_sha256(const char *path, char hex[65], rb_err *e);

#endif
