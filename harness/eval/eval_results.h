/* eval_results.h: the eval results file (HDF5, format "raasbench-eval", version 2; the
 * layout is in results/EVAL_FORMAT.md) and the per-task part files that make an evaluation
 * resumable.
 *
 * Parts: `<out>.parts/identity.json` (what the evaluation is: model, tasks, cells, knobs; a
 * directory of another evaluation is refused) and `task-<index>.json` per finished task with
 * every cell's result, each written under a temporary name and renamed. The final file is
 * assembled from the parts, in the tasks file's order, so a killed evaluation rerun gives
 * the same file as an uninterrupted one (wall times aside). */
#ifndef EVAL_RESULTS_H
#define EVAL_RESULTS_H

#include <stdint.h>

#include "cells.h"
#include "eval.h"
#include "tasks.h"

#define EVAL_FORMAT "raasbench-eval"
#define EVAL_FORMAT_VERSION 2

/* The summary row of one cell. */
typedef struct eval_summary {
    char run_id[160];
    char policy[32];
    char label[64];
    int32_t budget;
    int32_t n_tasks, n_correct;
    double accuracy, wilson_lo, wilson_hi;
    double retained;             /* share of the tasks the dense cell solved that this cell
                                    solves; NaN without a dense cell or when it solved none */
    double mean_resident_tokens; /* mean over tasks */
    int64_t peak_kv_bytes;       /* largest over tasks */
    double mean_generated;       /* tokens, mean over tasks */
} eval_summary;

/* results[c][t]: cell c, task t. */
void eval_summarise(const cell *cells, int n_cells, eval_result *const *results, int n_tasks,
                    eval_summary *rows);

/* Write the whole file (temporary name, then rename). config_json: the resolved
 * configuration; model and tasks paths go into the provenance. */
rb_status eval_results_write(const char *path, const char *model_path, const task_set *tasks,
                             const char *config_json, const cell *cells, int n_cells,
                             eval_result *const *results, rb_err *e);

/* ---- parts ---- */

/* Create or claim `dir` for the evaluation `identity` (a JSON text). */
rb_status eval_parts_claim(const char *dir, const char *identity, rb_err *e);
/* Store task `ti`'s results (n_cells of them) atomically. */
rb_status eval_parts_put(const char *dir, int ti, const task *t, const cell *cells,
                         int n_cells, const eval_result *res, rb_err *e);
/* Load task `ti`'s results if its part exists: 1 loaded, 0 absent; RB_EINPUT-style failure
 * (returned as -1 with e filled) for a damaged part. */
int eval_parts_get(const char *dir, int ti, const task *t, const cell *cells, int n_cells,
                   eval_result *res, rb_err *e);

/* `raasbench info` of an eval file: provenance and the summary. Exit code. */
int eval_results_print_info(const char *path);
/* `raasbench export` of an eval file as TSV: table "summary" (a row per run), "tasks" (a row
 * per run and task) or "length" (accuracy per run in four bins of generated length, cut by
 * the dense run's lengths so every run is graded on the same tasks per bin: RQ3). */
rb_status eval_results_export(const char *path, const char *table, const char *run, FILE *o,
                              rb_err *e);

#endif
