/* cells.h: turning user choices (policy names, budgets, key=value parameters) into
 * engine cells, and the resolved configuration into JSON provenance. Shared by `replay`,
 * `sweep` and `bench`. */
#ifndef CELLS_H
#define CELLS_H

#include "engine.h"

/* Build cells for every (policy, budget) pair, policies outer. Parameters are all the
 * user's "policy.key=value" strings; each policy takes its own (unknown prefixes and keys
 * are refused). label (may be NULL) is appended to run ids ("raas_L256" or
 * "raas-r0.3_L256"). *cells is malloc'd; free with replay_cells_free. */
rb_status replay_make_cells(const char *const *policies, int n_policies, const int *budgets,
                            int n_budgets, const char *const *params, int n_params,
                            const char *label, engine_cell **cells, int *n_cells, rb_err *e);
void replay_cells_free(engine_cell *cells, int n);

/* Print a short summary table of runs on stdout. */
void replay_print_summary(FILE *f, const results_run *runs, int n);

#endif
