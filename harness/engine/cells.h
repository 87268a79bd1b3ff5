/* cells.h: the one layer between user choices and the engines (docs/DESIGN.md §7).
 *
 * A cell is one (policy, resolved parameters, budget) with its label and run id. Replay,
 * sweep, bench, live decode and eval all build their cells here, decide each layer's role
 * here, and start each run's results here, so a run id, a layer's policy or a run's
 * provenance cannot mean different things on different paths.
 *
 * Run ids: "<policy>[-<label>]_L<budget>[@<suffix>]" ("raas_L256", "raas-exact_L256",
 * "h2o_L64@long" when a sweep spans several traces).
 *
 * Layer roles: a layer with a sliding window runs the `window` policy with L = the window;
 * a layer with index < dense_layers runs `dense`; every other layer runs the cell's policy.
 * Roles depend on the layer alone, never on the policy's name. */
#ifndef CELLS_H
#define CELLS_H

#include <stdio.h>

#include "gguf.h"
#include "policy.h"
#include "results.h"
#include "trace.h"

typedef struct cell {
    const policy_ops *ops;
    policy_params params;
    int budget;
    char label[64];    /* "" when none */
    char run_id[160];
    char *params_json; /* owned: the resolved parameters as JSON */
} cell;

/* Fill a cell and its run id (suffix may be NULL). Fails (RB_EINPUT) on a budget < 1 (< 0 for
 * a budget-free policy) or a run id that does not fit. The caller frees params_json (cells_free). */
rb_status cells_init(cell *c, const policy_ops *ops, const policy_params *params, int budget,
                     const char *label, const char *suffix, rb_err *e);

/* The run id suffix of a trace when a sweep spans several: the file name without its
 * directory and last extension ("runs/long.h5" -> "long"; a leading dot is kept), cut to
 * cap - 1 bytes before the extension is removed. */
void cells_trace_stem(const char *path, char *buf, size_t cap);

/* Cells for every (policy, budget) pair, policies outer. params are all the user's
 * "policy.key=value" strings; each policy takes its own (unknown prefixes and keys are
 * refused). label (may be NULL) joins every run id. A run id asked for twice is refused.
 * An entry of policies may name a labelled variant, "[LABEL=]POLICY[:KEY=VALUE]...":
 * "decode=raas:budget=decode" is raas with raas.budget=decode after the common params,
 * labelled "decode" (run ids "raas-decode_L<budget>"); an entry with its own parameters
 * must have its own label, so variants never share a run id or a figure's series.
 * *cells is malloc'd; free with cells_free. */
rb_status cells_make(const char *const *policies, int n_policies, const int *budgets,
                     int n_budgets, const char *const *params, int n_params, const char *label,
                     cell **cells, int *n_cells, rb_err *e);
/* RB_EINPUT naming the run id when two of the n cells share one. */
rb_status cells_check_unique(const cell *cells, int n, rb_err *e);
void cells_free(cell *cells, int n); /* frees params_json and the array; NULL is a no-op */

/* ---- layers ---- */

typedef enum {
    LAYER_POLICY = 0, /* the cell's policy at the cell's budget */
    LAYER_DENSE = 1,  /* `dense`: one of the first dense_layers layers */
    LAYER_WINDOW = 2, /* `window` with L = the layer's sliding window */
} layer_role;

layer_role cells_layer_role(int layer, int sliding_window, int dense_layers);
/* RB_OK when at least one stored layer of m is left to the policy with dense_layers;
 * otherwise RB_EINPUT naming --dense-layers (every summary figure would be NaN). */
rb_status cells_check_layers(const trace_meta *m, int dense_layers, rb_err *e);

/* What one layer runs: ops, parameters (resolved defaults for dense and window) and budget.
 * For LAYER_POLICY, c must not be NULL; for the forced roles it is ignored. max_tokens is
 * the budget dense and every other budget-free policy get. */
typedef struct layer_policy {
    const policy_ops *ops;
    policy_params params;
    int budget;
} layer_policy;
rb_status cells_layer_policy(layer_role role, const cell *c, int sliding_window, int max_tokens,
                             layer_policy *out, rb_err *e);

/* Whether two cells compute the same thing on a layer where the policy acts: the same
 * budget-free policy (dense) with the same parameters, at any budgets. Engines run such
 * cells once and credit every one of them. */
int cells_same_work(const cell *a, const cell *b);

/* ---- separators (policies with POLICY_NEEDS_SEPARATORS: SepLLM) ----
 *
 * Which positions hold a separator (policy_separator_text) comes from the tokens: a trace's
 * /tokens read through the vocabulary of the model that made them. A recorded trace names
 * its model but not the file, so replay and sweep take the GGUF with --model; a synthetic
 * trace (model "synthetic") uses synth's two-token vocabulary (synth.h). Live decode knows
 * its tokens and vocabulary (model.c). */

/* 1 when some cell's policy needs separators. */
int cells_need_separators(const cell *cells, int n);
/* The separator table of a GGUF's vocabulary: *table [*n_vocab] (malloc'd), 1 where the
 * token's text (tokenizer_decode_token) is a separator. Fails as tokenizer_load fails. */
rb_status cells_vocab_separators(const gguf_file *g, uint8_t **table, int *n_vocab, rb_err *e);
/* The separator mask of a trace, *mask [n_tokens] (malloc'd): its /tokens through the
 * vocabulary of model_path (a GGUF; may be NULL for a synthetic trace). RB_EINPUT naming the
 * trace when it has no /tokens, naming --model when a recorded trace's vocabulary is not
 * given, naming the position of a token the vocabulary does not have. */
rb_status cells_trace_separators(trace *t, const char *model_path, uint8_t **mask, rb_err *e);

/* ---- runs ---- */

/* The facts of a run that do not come from its cell. */
typedef struct run_facts {
    const char *source;  /* the trace or model path */
    int page_size, dense_layers, latency_every;
    int n_tokens;        /* positions in the trace or decode */
    int n_prefill;       /* step[t] = n_prefill + t */
    const int *layers;   /* [n_layers] model layer index of each stored layer */
    const int *sliding_window; /* [n_layers] 0 = global */
} run_facts;

/* Start a run's results for a cell: allocate its series (results_run_alloc) and fill its id,
 * policy, budget, parameters, source and layer columns (sparse = LAYER_POLICY layers). */
void cells_run_init(results_run *r, const cell *c, const run_facts *f, int T, int n_layers,
                    int n_q_heads, int per_head);

/* Print a short summary table of runs. */
void cells_print_summary(FILE *f, const results_run *runs, int n);

#endif
