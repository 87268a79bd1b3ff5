/* engine.h: replay of a recorded trace under many (policy, budget) cells in one pass.
 *
 * Layer by layer (layers are independent: a policy instance manages one layer), the engine
 * reads the layer's q, k, v, computes at every decode step t the dense reference once per
 * query head (scaled logits over 0..t, their log-sum-exp and the output o*), then steps
 * every cell's stepper and scores it against the shared reference. Steps go in chunks of
 * up to 32: the chunk's references first, then each stepper runs the whole chunk, so its
 * pools stay in cache between its steps. Scores:
 *   recall  = sum over S of exp(logit_j - lse)          O(|S|)
 *   out_err = |o_S - o*| / |o*|                         O(d)
 * (metrics.h, the one definition), so each extra cell costs O(L) per step, not O(N)
 * (docs/DESIGN.md §4). Each layer's role comes from cells_layer_role: dense layers (index <
 * dense_layers) run the dense policy and sliding-window layers the window policy, in every
 * cell; both are excluded from the summary means. Layers are spread over threads. Cells
 * that would compute the same thing (forced layers; cells_same_work) share one stepper,
 * scored once. */
#ifndef ENGINE_H
#define ENGINE_H

#include "attn_backend.h"
#include "cells.h"
#include "policy.h"
#include "results.h"
#include "trace.h"

typedef struct engine_config {
    trace *trace;
    const cell *cells;
    int n_cells;
    const attn_backend *backend; /* the dense reference and every stepper (NULL: default) */
    int page_size;      /* P */
    int dense_layers;   /* layers with index < dense_layers are attended densely */
    int elem_bytes;     /* bytes per K/V element for kv_bytes (2 = fp16) */
    int per_head;       /* also store per-head recall and out_err */
    int dump_selection; /* store uint8 [T, n_q_heads, n_tokens] per layer */
    int threads;        /* worker threads over layers (>= 1) */
    uint64_t seed;
    int progress;       /* draw a progress bar on stderr */
    int n_steps;        /* replay only the first n_steps decode steps, 0 = all */
    int latency_every;  /* attend for real and time every this many steps (0 or 1: every
                           step); the steps between take stepper_step_cached: the same
                           policy work and exact metrics from the shared reference, no
                           timing (latency_ns -1). Trades latency samples for sweep speed. */
} engine_config;

typedef struct engine_stats {
    int64_t read_ns;       /* reading the trace (summed over threads) */
    int64_t dense_ns;      /* the shared dense reference pass (summed over threads) */
    int64_t dense_bytes;   /* K+V bytes the dense pass streamed */
    int64_t cells_ns;      /* all cells' policy steps (summed over threads) */
    int64_t metrics_ns;    /* scoring against the reference */
    int64_t wall_ns;       /* wall time of engine_replay */
} engine_stats;

/* Run every cell over the trace. runs[0..n_cells) are filled (caller frees with
 * results_run_free). Fails on bad trace data (NaN found as read) or an impossible budget
 * (checked for every cell before any work starts). */
rb_status engine_replay(const engine_config *c, results_run *runs, engine_stats *stats,
                        rb_err *e);

/* Check that every cell can be created on this trace's shapes (budget possible, ...). */
rb_status engine_check_cells(const engine_config *c, rb_err *e);

#endif
