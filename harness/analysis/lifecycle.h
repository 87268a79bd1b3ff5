/* lifecycle.h: milestone and phoenix tokens in the dense attention of a decode (issue 4).
 *
 * Importance. At decode step t (position t) a token j <= t has importance
 *     imp_t(j) = reduce over the selected query heads of p_t,h(j),
 *     p_t,h = softmax(attn_scale * q_t,h . K[0..t]),
 * with reduce = the lower median (default: at least half the heads give the token this
 * much, so one KV head's chance attention is not a layer's milestone), mean or max. The
 * analysis works on the ratio to uniform attention, r_t(j) = imp_t(j) * (t+1), so steps of
 * every length are comparable, smoothed over steps in log space:
 *     e_t(j) = e_{t-1}(j) + (log r_t(j) - e_{t-1}(j)) / smooth,
 * starting at the token's creation (decode tokens) or the first decode step (prompt
 * tokens), with log r floored at the previous step's median of e (below-typical importance
 * says nothing about activity, and a token waking from deep dormancy is then seen within a
 * few time constants). A one-step spike moves e by 1/smooth of its height; a sustained
 * change is followed within ~smooth steps (detected spans end up to ~2 smooth steps late).
 *
 * Activity. Token j is active at step t when
 *     e_t(j) >= log thr_t,  thr_t = max(min_ratio, exp(median_t + k_sigma * 1.4826 * MAD_t)),
 * where median_t and MAD_t are the median and median absolute deviation of e_t over all
 * tokens 0..t: a token is active when it gets at least min_ratio times uniform attention
 * and stands k_sigma robust standard deviations above the step's typical token. Nothing is
 * tuned to a trace: the threshold follows each step's own distribution.
 *
 * Segments. A token's active steps are grouped into segments: consecutive active steps at
 * most max_gap apart belong to one segment. Recency: every new token is attended for a few
 * steps just because it is recent; the recency width W is the smallest lag d = t - j at
 * which fewer than half of the decode tokens at that lag are active, counted over the whole
 * decode for lags below 1024 (or given). Segments are classified once W is known.
 *
 * Milestone (a decode token that rises, stays in use, then fades): the first segment of a
 * decode token j whose part at lags >= W lasts at least min_span steps (last - max(start,
 * j+W) + 1 >= min_span) and is active on at least min_fill of its steps. Its life goes on
 * through later segments that start after a pause shorter than dormant_steps; it ends
 * ("fades for good") at the last of them, or at the end of the trace. Reported as
 * (position j, first active step, last active step). A comeback after >= dormant_steps is
 * a phoenix revival, not the same life.
 *
 * Phoenix (dormant for at least G = dormant_steps, then important again): a segment that
 * starts after at least G inactive steps, for a token that was important before (a prompt
 * token, important during prefill, counts as dormant from the first decode step when it
 * has not been active since; a decode token must have had a milestone life: one whose
 * only earlier use was its recency band was never important, and its coming back is
 * chance), with at least revive_min active steps (12: a revival of 10 steps well above
 * the threshold stays active 12 or more, the smoothing carrying its end; the chance
 * crossings of ordinary prompt tokens in synth traces last 8-11). Dormant means like a
 * typical token: over the inactive steps, e stays on average nearer the step's median than
 * its threshold (sum of e_t - median_t <= half the sum of log thr_t - median_t); a token
 * that stays well above typical but under the threshold (a sink while milestones take the
 * mass) is not dormant, and its next crossing is no revival. Reported as (position,
 * dormant from = first inactive step, revived at = segment start). A token may revive more
 * than once.
 *
 * Cost: O(n_steps * n_tokens) time (two order-statistic passes per step) and O(n_tokens +
 * heatmap + segments) memory: steps are streamed, each token keeps a small running state,
 * and only closed segments (a few per token) are kept until the end. */
#ifndef LIFECYCLE_H
#define LIFECYCLE_H

#include <stdint.h>

#include "rb.h"
#include "trace.h"

#define LIFECYCLE_FORMAT "raasbench-lifecycle"
#define LIFECYCLE_FORMAT_VERSION 1

typedef enum { LIFECYCLE_MEAN = 0, LIFECYCLE_MAX = 1, LIFECYCLE_MEDIAN = 2 } lifecycle_reduce;
const char *lifecycle_reduce_name(lifecycle_reduce r); /* "mean", "max", "median" */

typedef struct lifecycle_config {
    double k_sigma;    /* robust sigmas above the step's median log ratio (default 3) */
    double min_ratio;  /* floor of the threshold, times uniform (default 4) */
    int max_gap;       /* steps of inactivity that still continue a segment (default 16) */
    int min_span;      /* milestone: steps in use beyond the recency band (default 32) */
    double min_fill;   /* milestone: fraction of those steps active (default 0.5) */
    int dormant_steps; /* phoenix: G, inactive steps before a revival (default 128) */
    int revive_min;    /* phoenix: active steps of the revived segment (default 12) */
    int recency;       /* W in steps; -1 = measure it (default -1) */
    int smooth;        /* smoothing time constant in steps; 1 = none (default 4) */
    int heat_rows;     /* heatmap size limits, max-pooled (default 512 x 512) */
    int heat_cols;
    int hist_bins;     /* lifespan histogram bins (default 24) */
} lifecycle_config;

void lifecycle_config_default(lifecycle_config *c);
/* Refuse out-of-range parameters (RB_EINPUT naming the parameter). */
rb_status lifecycle_config_check(const lifecycle_config *c, rb_err *e);

/* A source of importance rows: fill imp[0..t] (t+1 values, >= 0, summing to about 1 for
 * mean reduction) for decode step t, n_prefill <= t < n_tokens. Called with steps in
 * increasing order during the main pass, and for a sample of steps before it. */
typedef rb_status (*lifecycle_row_fn)(void *ctx, int t, float *imp, rb_err *e);

typedef struct lifecycle_result {
    int n_prefill, n_tokens;
    int recency;              /* W used */
    double mean_threshold;    /* mean of thr_t over the steps (times uniform) */
    int32_t *milestones;      /* [n_milestones, 3] position, first, last; by position */
    int n_milestones;
    int32_t *phoenix;         /* [n_phoenix, 3] position, dormant from, revived at */
    int n_phoenix;
    float *heatmap;           /* [heat_rows, heat_cols] max of r over each cell; NaN where
                                 no token of the cell existed yet */
    int heat_rows, heat_cols;
    int step_bin, token_bin;  /* steps and tokens per heatmap cell; row 0 starts at
                                 step n_prefill, column 0 at token 0 */
} lifecycle_result;

/* Run the analysis over decode steps n_prefill..n_tokens-1. On success *out owns its
 * arrays (free with lifecycle_result_free). Fails with the source's error, or RB_EINPUT for
 * shapes that are not a decode (n_prefill < 1 or n_tokens <= n_prefill) or NaN/negative
 * importance. */
rb_status lifecycle_analyze(const lifecycle_config *c, int n_prefill, int n_tokens,
                            lifecycle_row_fn row, void *ctx, lifecycle_result *out, rb_err *e);
void lifecycle_result_free(lifecycle_result *r); /* NULL or zeroed is fine */

/* Importance from a trace: stored layer with model index `layer`; heads are either one
 * query head (`head` >= 0), the query heads of one KV head (`kv_head` >= 0), or, both -1,
 * every query head of the layer; `reduce` combines them (see the top of this file). Dense attention through attn_dense. The source reads K
 * of the layer incrementally (O(n_tokens * n_kv_heads * head_dim) floats) and q a block at
 * a time. */
typedef struct lifecycle_trace_src lifecycle_trace_src;
rb_status lifecycle_trace_src_create(trace *tr, int layer, int head, int kv_head,
                                     lifecycle_reduce reduce, lifecycle_trace_src **out,
                                     rb_err *e);
rb_status lifecycle_trace_row(void *src, int t, float *imp, rb_err *e); /* a lifecycle_row_fn */
void lifecycle_trace_src_destroy(lifecycle_trace_src *s);             /* NULL is a no-op */

/* Linear histogram of lifespans (last - first + 1 of each [n,3] row, rows with last >=
 * first) over 0..max(max_lifespan, longest row): bins of one width, the smallest of 1, 2 or
 * 5 times a power of ten that needs at most nb_max bins; bin b is [edges[b], edges[b+1]).
 * edges [nb_max+1] and counts [nb_max] are filled for the nb bins used; returns nb. */
int lifecycle_hist(const int32_t *rows, int n, int max_lifespan, int nb_max, int32_t *edges,
                   int32_t *counts);

/* Statistics of one analysis a researcher can quote (`raasbench lifecycle` prints them,
 * `export --table stats` writes them). Lifespans are last - first + 1 of the milestone rows;
 * quantiles are nearest-rank (q-th: the ceil(q n)-th smallest), NaN without milestones.
 * Phoenix tokens are the distinct positions of the phoenix rows (sorted by position, as
 * lifecycle_analyze gives them; a token may revive more than once); shares are NaN where
 * their denominator is 0. */
typedef struct lifecycle_stats {
    int n_prompt, n_decode;       /* prompt length n_prefill, decode steps n_tokens - n_prefill */
    int n_milestones;
    double milestones_per_1k;     /* milestones per 1000 decode tokens */
    double life_mean;             /* mean lifespan, steps */
    double life_q[7];             /* lifespan quantiles at LIFECYCLE_STATS_Q */
    int n_phoenix_rows, n_phoenix_tokens, n_phoenix_prompt, n_phoenix_decode;
    double phoenix_prompt_frac;   /* prompt tokens / phoenix tokens */
    double prompt_phoenix_share;  /* phoenix prompt tokens / n_prompt */
    double decode_phoenix_share;  /* phoenix decode tokens / n_decode */
} lifecycle_stats;
#define LIFECYCLE_STATS_Q {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0}
void lifecycle_stats_compute(const int32_t *milestones, int n_milestones, const int32_t *phoenix,
                             int n_phoenix, int n_prefill, int n_tokens, lifecycle_stats *s);

/* Scoring against planted truth. Milestones match when the position is equal and the
 * active spans [first, last] overlap; phoenix rows match when the position is equal and
 * the revival steps are at most `tol` apart. Matching is one-to-one (greedy in row order).
 * kind: 0 = milestones, 1 = phoenix. */
typedef struct lifecycle_score {
    int n_detected, n_truth, n_matched;
    double precision, recall, f1; /* 1 for an empty set against an empty set */
} lifecycle_score;
lifecycle_score lifecycle_match(int kind, const int32_t *det, int n_det, const int32_t *truth,
                                int n_truth, int tol);

/* Write the analysis to `path` (through `<path>.tmp-<pid>` and rename): /milestones,
 * /phoenix, /lifespan_hist/{edges,counts}, /heatmap with its bins as attributes, root
 * attributes format, format_version, the provenance, every threshold, the trace path and
 * the layer/head selection (`selection`, a description). With truth rows (may be NULL),
 * also /truth/milestones, /truth/phoenix, /truth/lifespan_hist/counts (same edges) and the
 * scores as root attributes. */
typedef struct lifecycle_meta {
    const char *trace_path;
    int layer, head, kv_head;
    lifecycle_reduce reduce;
    const int32_t *truth_milestones; int n_truth_milestones;
    const int32_t *truth_phoenix; int n_truth_phoenix;
    int phoenix_tol;
} lifecycle_meta;
rb_status lifecycle_write(const char *path, const lifecycle_config *c, const lifecycle_meta *m,
                          const lifecycle_result *r, rb_err *e);

/* A lifecycle file read back (lifecycle_read): the tables lifecycle_write stored. The truth
 * tables are NULL when the file has none (an empty table is not NULL). */
typedef struct lifecycle_file {
    int32_t *milestones, *phoenix;             /* [n, 3], as in lifecycle_result */
    int n_milestones, n_phoenix;
    int32_t *truth_milestones, *truth_phoenix; /* [n, 3] planted rows, or NULL */
    int n_truth_milestones, n_truth_phoenix;
    int32_t *hist_edges, *hist_counts;         /* [n_bins + 1], [n_bins] */
    int32_t *truth_hist_counts;                /* [n_bins] of the planted rows, or NULL */
    int n_bins;
    float *heatmap;                            /* [heat_rows, heat_cols] */
    int heat_rows, heat_cols;
    int step_bin, token_bin; /* steps and tokens per heatmap cell (>= 1) */
    int step0, token0;       /* step of row 0, token of column 0 */
    int n_prefill, n_tokens; /* of the decode analysed */
    int layer;               /* model layer analysed */
} lifecycle_file;
/* Read every table of a lifecycle file, checked (format, shapes, heatmap attributes);
 * RB_EINPUT naming the file and the table at fault. On failure *out is empty. */
rb_status lifecycle_read(const char *path, lifecycle_file *out, rb_err *e);
void lifecycle_file_free(lifecycle_file *f); /* zeroed is fine */

#endif
