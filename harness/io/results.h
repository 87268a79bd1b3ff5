/* results.h: results files (HDF5, format_version 1, docs/DESIGN.md §5; results/FORMAT.md).
 *
 * A results file holds runs: one (trace, policy, parameters, budget) cell each, with its
 * per-step series, and a /summary table of one row per run. Files are written to a
 * temporary name and renamed when complete. A sweep writes each finished cell as its own
 * one-run file and assembles them (results_assemble), so a killed sweep loses nothing. */
#ifndef RESULTS_H
#define RESULTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* Read /summary, rows in file order (*rows malloc'd). present[c] is set to 1 for each summary
 * column c (results_summary_columns order) the file holds: a file of another writer may
 * lack some, and those fields are then 0 or NaN. */
rb_status results_read_summary(const char *path, results_summary **rows, int *n,
                               uint8_t *present, rb_err *e);

/* `raasbench info` for a results file: provenance and the summary table. Exit code. */
int results_print_info(const char *path);

/* ---- the format, described once ----
 * Every per-step dataset of a run and every column of /summary is one row below. The
 * writer, the reader, `export` (its steps and summary tables) and `info` iterate these rows,
 * and results/FORMAT.md prints them (`raasbench export --schema`, checked by
 * tests/e2e_results_schema.sh). A new per-step metric is one row here, one array in
 * results_run, and its computation where it is measured. */

typedef enum { RESULTS_I32, RESULTS_I64, RESULTS_F32, RESULTS_F64, RESULTS_STR } results_type;
typedef enum {
    RESULTS_SHAPE_T,             /* [T] */
    RESULTS_SHAPE_T_LAYERS,      /* [T, n_layers] */
    RESULTS_SHAPE_T_LAYERS_HEADS /* [T, n_layers, n_q_heads] */
} results_shape;
enum {
    RESULTS_COL_REQUIRED = 1u << 0, /* every run has it */
    RESULTS_COL_PER_HEAD = 1u << 1, /* only with --per-head */
    RESULTS_COL_LIVE = 1u << 2,     /* only from a live decode */
    RESULTS_COL_STEPS = 1u << 3,    /* a column of `export --table steps` ([T, n_layers]:
                                       the mean over the run's sparse layers, NaN skipped) */
    RESULTS_COL_NEG_NA = 1u << 4,   /* a negative value means not measured: NaN in exports */
};

typedef struct results_column {
    const char *name;
    results_type type;
    results_shape shape;
    unsigned flags;
    const char *unit;
    const char *meaning;
    size_t offset; /* of the array's pointer in results_run */
} results_column;
const results_column *results_columns(int *n);

typedef struct results_summary_column {
    const char *name;
    results_type type;
    size_t offset, size; /* in results_summary; size: strings' buffer */
    const char *unit;
    const char *meaning;
} results_summary_column;
const results_summary_column *results_summary_columns(int *n);
#define RESULTS_MAX_SUMMARY_COLUMNS 32

/* The markdown tables of results/FORMAT.md's per-step datasets and /summary columns. */
void results_print_schema(FILE *f);

/* SHA-256 of a file as 64 hex characters + NUL. */
rb_status results_file_sha256(const char *path, char hex[65], rb_err *e);

#endif
