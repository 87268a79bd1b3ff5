/* stepper.h: one policy instance driving one layer's KV cache through a decode: it owns the
 * layer's KV pools (one per KV head), the selection buffers and the attention over the
 * selection, and it counts the resident bytes from the pools. Replay (engine.c) and live
 * decode (model.c) both run every policy through this one piece, so a policy behaves the
 * same on a recorded trace and on a real model's cache. */
#ifndef STEPPER_H
#define STEPPER_H

#include <stdint.h>

#include "attn_backend.h"
#include "policy.h"

typedef struct stepper stepper;

/* cfg->pools is ignored (the stepper makes the pools). elem_bytes: the element size resident
 * bytes are reported at (2 = fp16). backend: the attention kernels every step runs on (NULL:
 * attn_backend_default()). Fails as ops->create fails (impossible budget, ...). */
rb_status stepper_create(const policy_ops *ops, const policy_config *cfg, int elem_bytes,
                         const attn_backend *backend, stepper **out, rb_err *e);
void stepper_destroy(stepper *s); /* NULL is a no-op */

/* The prompt in one batch: q [n, n_q_heads, d], k and v [n, n_kv_heads, d]. out (may be
 * NULL): [n, n_q_heads, d], the dense causal attention of the prompt. */
void stepper_prefill(stepper *s, int n, const float *q, const float *k, const float *v,
                     float *out);
/* The prompt one token at a time (live decode): position pos (0, 1, ...); out [n_q_heads, d]
 * is the dense causal attention of that token. The prompt is handed to the policy at the
 * first stepper_step. */
void stepper_prefill_token(stepper *s, int pos, const float *q, const float *k, const float *v,
                           float *out);

/* One decode step at position pos: append k, v [n_kv_heads, d], select, attend, observe.
 * q [n_q_heads, d]; out [n_q_heads, d]. dense_logits [n_q_heads, stride] and dense_lse
 * [n_q_heads] are the dense scaled logits over 0..pos: pass them when the caller has them
 * (replay); when NULL and the policy needs them, the stepper computes them. */
void stepper_step(stepper *s, int pos, const float *q, const float *k, const float *v,
                  const float *dense_logits, const float *dense_lse, int stride, float *out);

/* The same step without attending for real: the attended set's softmax and output are
 * computed from the dense probabilities the caller already has (replay's shared
 * reference): dense_probs [n_q_heads, stride] holds exp(logit - lse) for positions
 * j0..pos (j0 > 0 on sliding-window layers). Exact metrics at O(|S| d) per head with no
 * q.k; the policy's append, select and observe run as in stepper_step. The step is not
 * timed: stepper_last_step_ns returns -1. */
void stepper_step_cached(stepper *s, int pos, const float *q, const float *k, const float *v,
                         const float *dense_logits, const float *dense_lse,
                         const float *dense_probs, int stride, int j0, float *out);

const policy_selection *stepper_selection(const stepper *s); /* of the last step */
/* The row of the selection that query head h attends: h itself, or the first head of its
 * group when the policy shared one set across the group (sel->shared_by_group). */
static inline int stepper_set_row(const policy_selection *sel, int h) {
    return sel->shared_by_group ? h - h % sel->group_size : h;
}
const float *stepper_probs(const stepper *s); /* [n_q_heads, cap], aligned with selection */
int64_t stepper_kv_bytes(const stepper *s);   /* resident, from the pools */
int64_t stepper_meta_bytes(const stepper *s);
int64_t stepper_last_step_ns(const stepper *s); /* wall time of the last step, -1 if untimed */
const policy_ops *stepper_ops(const stepper *s);

#endif
