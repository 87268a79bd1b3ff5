/* cells.c: user choices -> engine cells (see cells.h). */
#include "cells.h"

#include <string.h>

rb_status replay_make_cells(const char *const *policies, int n_policies, const int *budgets,
                            int n_budgets, const char *const *params, int n_params,
                            const char *label, engine_cell **cells, int *n_cells, rb_err *e) {
    *cells = NULL;
    *n_cells = 0;
    engine_cell *cs = rb_calloc((size_t)(n_policies * n_budgets + 1), sizeof *cs);
    int n = 0;
    rb_status s = RB_OK;
    for (int p = 0; p < n_policies && !s; p++) {
        const policy_ops *ops = policy_find(policies[p], e);
        if (!ops) {
            s = RB_EINPUT;
            break;
        }
        policy_params pp;
        if ((s = policy_params_for(ops, params, n_params, &pp, e))) break;
        for (int b = 0; b < n_budgets; b++) {
            if (budgets[b] < 1) {
                s = rb_fail(e, RB_EINPUT, "--budgets", "budget %d must be positive", budgets[b]);
                break;
            }
            engine_cell *c = &cs[n++];
            c->ops = ops;
            c->params = pp;
            c->budget = budgets[b];
            c->params_json = policy_params_json(ops, &pp);
            snprintf(c->run_id, sizeof c->run_id, "%s%s%s_L%d", ops->name, label ? "-" : "",
                     label ? label : "", budgets[b]);
            for (int j = 0; j < n - 1; j++)
                if (!strcmp(cs[j].run_id, c->run_id)) {
                    s = rb_fail(e, RB_EINPUT, c->run_id, "the same cell is asked for twice");
                    break;
                }
        }
    }
    if (s) {
        replay_cells_free(cs, n);
        return s;
    }
    *cells = cs;
    *n_cells = n;
    return RB_OK;
}

void replay_cells_free(engine_cell *cells, int n) {
    if (!cells) return;
    for (int i = 0; i < n; i++) free(cells[i].params_json);
    free(cells);
}

void replay_print_summary(FILE *f, const results_run *runs, int n) {
    fprintf(f, "%-24s %-13s %7s %9s %10s %9s %11s %11s %12s\n", "run_id", "policy", "budget",
            "recall", "out_err", "attended", "p50_lat_us", "p99_lat_us", "peak_kv_KiB");
    for (int i = 0; i < n; i++) {
        results_summary s;
        results_summarise(&runs[i], &s);
        fprintf(f, "%-24s %-13s %7d %9.4f %10.4g %9.1f %11.1f %11.1f %12.1f\n", s.run_id,
                s.policy, s.budget, s.mean_recall, s.mean_out_err, s.mean_attended,
                s.p50_latency_ns / 1e3, s.p99_latency_ns / 1e3, s.peak_kv_bytes / 1024.0);
    }
}
