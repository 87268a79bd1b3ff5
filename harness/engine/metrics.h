/* metrics.h: the one definition of the per-step metrics (docs/DESIGN.md §4). Replay, live
 * decode and the test kit score a policy's step through these functions and nothing else.
 *
 * For one decode step and one query head h, with p*_h the dense softmax over the positions
 * the layer may attend (0..t, or the window on sliding-window layers), o*_h the dense output,
 * S_h the attended set and o_h the attention output over S_h only:
 *   recall_h   = sum_{j in S_h} p*_h[j]                    (1 when S_h covers everything)
 *   out_err_h  = ||o_h - o*_h|| / ||o*_h||, or ||o_h - o*_h|| when o*_h = 0 (absolute)
 *   attended   = mean over heads of |S_h|
 * Layer and step figures are plain means over query heads. kv_bytes and meta_bytes are
 * counted by the stepper from the pools and the policy (stepper_kv_bytes,
 * stepper_meta_bytes) and summed over layers. */
#ifndef METRICS_H
#define METRICS_H

#include "policy.h"

/* One step of one layer, scored. recall and out_err are caller-owned arrays [n_q_heads]. */
typedef struct step_metrics {
    double *recall;  /* [n_q_heads] */
    double *out_err; /* [n_q_heads] */
    double attended; /* mean |S_h| over query heads */
} step_metrics;

/* out_err of one head (d elements), accumulated in double. */
double metrics_out_err(const float *o, const float *o_star, int d);

/* Score a step: sel is the selection the policy made (shared_by_group honoured); out
 * [n_q_heads, d] the attention over it; dense_probs [n_q_heads, stride] with row h holding
 * p*_h[j] at index j - j0 for j in j0..t (j0 > 0 on sliding-window layers); o_star
 * [n_q_heads, d]. Every selected position must lie in j0..t. Cost O(|S| + d) per head. */
void metrics_score_step(const policy_selection *sel, const float *out, const float *dense_probs,
                        int stride, int j0, const float *o_star, int d, step_metrics *m);

/* Mean |S_h| over the query heads of a selection (shared sets counted once per head that
 * shares them); 0 before the policy has selected anything (sel->n NULL). metrics_score_step
 * fills m->attended with this. */
double metrics_attended(const policy_selection *sel);

/* Means over the n_q_heads of a scored step. */
double metrics_mean(const double *per_head, int n_q_heads);

#endif
