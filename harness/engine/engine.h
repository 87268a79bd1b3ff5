/* engine.h: replay of a recorded trace under many (policy, budget) cells in one pass.
 *
 * Layer by layer (layers are independent: a policy instance manages one layer), the engine
 * reads the layer's q, k, v, computes at every decode step t the dense reference once per
 * query head (scaled logits over 0..t, their log-sum-exp and the output o*), then steps
 * every cell's stepper and scores it against the shared reference. Steps go in chunks: the
 * chunk's references first, then each stepper runs the whole chunk, so its pools stay in
 * cache between its steps. The chunk's references are one causal block (the backend's
 * causal_chunk: Q K^T and P V as matrix products, K and V read once per chunk) or, with
 * ENGINE_REF_STEPS, one dense pass per step (dense_heads: K and V re-read every step; the
 * path before the block, kept for comparison). A step whose set is the whole attended range
 * takes the reference's output instead of attending again (engine_full_sets). Scores:
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

/* How a chunk's dense reference is computed. The two agree within the tolerance of
 * tests/attn_backend_check.h (float32 sums in another order), not bit for bit. */
typedef enum {
    ENGINE_REF_BLOCK = 0, /* the chunk as one causal block (ref_backend->causal_chunk) */
    ENGINE_REF_STEPS = 1, /* step by step (ref_backend->dense_heads) */
} engine_reference;

/* How a step is computed whose attended set is the whole range the reference covers (0..t,
 * or the window on a sliding-window layer): a dense cell's, every cell's on a forced dense
 * or window layer, a policy's before its budget fills. The reference already is that
 * step's attention. */
typedef enum {
    /* Take the reference's output o* instead of attending again (the policy still
     * appends, selects and observes): out_err 0 on those steps; recall, attended, kv_bytes
     * and every policy choice as before. Timed steps: a policy without an observe slot
     * (dense, window, ...) attends such a step for real and times it only on one timed step
     * in ENGINE_FULL_TIMED_EVERY, latency_ns -1 on the others, so a run whose steps include
     * a dense or window layer samples latency that often; a policy that observes attends
     * every timed step (what it observes there is its own softmax, as before). Untimed
     * steps (latency_every) take o* for every policy. */
    ENGINE_FULL_REFERENCE = 0,
    /* Attend for real on every timed step, as the engine did before (bit-identical). */
    ENGINE_FULL_ATTEND = 1,
} engine_full_sets;

/* One timed step in this many attends a whole-range set for real (ENGINE_FULL_REFERENCE):
 * 512 latency samples per layer of an 8k-step decode, for 1/16 of the cost. */
#define ENGINE_FULL_TIMED_EVERY 16

typedef struct engine_config {
    trace *trace;
    const cell *cells;
    int n_cells;
    const attn_backend *backend; /* every stepper, and the reference unless ref_backend
                                    (NULL: default) */
    const attn_backend *ref_backend; /* the dense reference (NULL: backend) */
    engine_reference reference;
    engine_full_sets full_sets;
    int chunk;          /* steps per chunk (0: chosen from the shapes, engine.c) */
    int page_size;      /* P */
    int dense_layers;   /* layers with index < dense_layers are attended densely */
    int elem_bytes;     /* bytes per K/V element for kv_bytes (2 = fp16) */
    int per_head;       /* also store per-head recall and out_err */
    int dump_selection; /* store uint8 [T, n_q_heads, n_tokens] per layer */
    int threads;        /* worker threads over layers (>= 1) */
    uint64_t seed;
    const uint8_t *separator; /* [n_tokens] policy_config.separator of every stepper (NULL:
                                 none; cells_trace_separators) */
    int progress;       /* draw a progress bar on stderr */
    int n_steps;        /* replay only the first n_steps decode steps, 0 = all */
    int latency_every;  /* attend for real and time every this many steps (0 or 1: every
                           step); the steps between take stepper_step_ref's cached path: the same
                           policy work and exact metrics from the shared reference, no
                           timing (latency_ns -1). Trades latency samples for sweep speed. */
    int64_t *cell_ns;   /* optional [n_cells], added to: each cell's steps and scoring in ns,
                           summed over layers (a stepper shared by cells is its first's) */
} engine_config;

typedef struct engine_stats {
    int64_t read_ns;       /* reading the trace (summed over threads) */
    int64_t dense_ns;      /* the shared dense reference pass (summed over threads) */
    int64_t dense_bytes;   /* K+V bytes the dense pass streamed */
    int64_t dense_flops;   /* useful flops of the dense pass: 4 d per (step, head, key) */
    int64_t cells_ns;      /* all cells' policy steps (summed over threads) */
    int64_t metrics_ns;    /* scoring against the reference */
    int64_t wall_ns;       /* wall time of engine_replay */
} engine_stats;

/* Run every cell over the trace. runs[0..n_cells) are filled (caller frees with
 * results_run_free). Fails on bad trace data (NaN found as read) or an impossible budget
 * (checked for every cell before any work starts). */
rb_status engine_replay(const engine_config *c, results_run *runs, engine_stats *stats,
                        rb_err *e);

/* The --reference and --device options of replay and sweep: "block" or "steps"; "cpu" or
 * "cuda" (*ref_be: the backend the reference runs on; cuda only when its backend runs the
 * trace's shapes on this machine, RB_EINPUT saying why not otherwise). */
rb_status engine_parse_reference(const char *s, engine_reference *out, rb_err *e);
rb_status engine_parse_device(const char *s, const trace_meta *m, const attn_backend **ref_be,
                              rb_err *e);

/* The --full-sets option of replay: "reference" (ENGINE_FULL_REFERENCE) or "attend". */
rb_status engine_parse_full_sets(const char *s, engine_full_sets *out, rb_err *e);

/* Check that every cell can be created on this trace's shapes (budget possible, ...). */
rb_status engine_check_cells(const engine_config *c, rb_err *e);

#endif
