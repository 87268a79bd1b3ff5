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

/* A step's dense reference as replay holds it, over positions j0..pos (j0 > 0 on
 * sliding-window layers): logits [n_q_heads, stride] (may be NULL; passed to a policy only
 * when j0 = 0), lse [n_q_heads], probs [n_q_heads, stride] = exp(logit - lse), and out
 * [n_q_heads, d] the dense output o* (may be NULL). Row h's entry of position j is at
 * h * stride + j - j0. */
typedef struct stepper_ref {
    const float *logits, *lse, *probs, *out;
    int stride, j0;
} stepper_ref;

/* How stepper_step_ref attends. */
typedef enum {
    STEPPER_ATTEND = 0, /* attend for real and time the step: stepper_step */
    STEPPER_CACHED = 1, /* from the reference, untimed (stepper_last_step_ns -1) */
    STEPPER_FULL_CACHED = 2, /* STEPPER_CACHED when every set the policy selected is the
                                whole range j0..pos (the reference already is that step's
                                attention) and the policy has no observe slot (an observer
                                sees its own softmax on timed steps, as before),
                                STEPPER_ATTEND otherwise */
    STEPPER_FULL_WARM = 3, /* STEPPER_ATTEND; where STEPPER_FULL_CACHED would have been
                              cached, the K and V rows are read once untimed first: after
                              STEPPER_FULL_CACHED steps, which read none, they are cold,
                              and a step of a decode finds them as its previous step left
                              them */
} stepper_mode;

/* One decode step against the shared reference. The policy's append, select and observe
 * run as in stepper_step; the attention is real (timed) or computed from the reference
 * (untimed): the attended set's softmax is p*_S / sum_S p* (the same function as attention
 * over S up to rounding, no q.k and no exp) and its output sum_S p_S v, O(|S| d) per head;
 * where the set is the whole range j0..pos and ref->out is given, the output is o* itself
 * and, for a policy without observe, no probabilities are formed (O(1) per head: the step
 * is exact up to the reference's own summation order). */
void stepper_step_ref(stepper *s, int pos, const float *q, const float *k, const float *v,
                      const stepper_ref *ref, stepper_mode mode, float *out);

const policy_selection *stepper_selection(const stepper *s); /* of the last step */
/* The row of the selection that query head h attends: h itself, or the first head of its
 * group when the policy shared one set across the group (sel->shared_by_group). */
static inline int stepper_set_row(const policy_selection *sel, int h) {
    return sel->shared_by_group ? h - h % sel->group_size : h;
}
/* [n_q_heads, cap], the last step's softmax over each set, aligned with the selection; not
 * written by a step served from the reference's output for a policy without observe. */
const float *stepper_probs(const stepper *s);
int64_t stepper_kv_bytes(const stepper *s);   /* resident, from the pools */
int64_t stepper_meta_bytes(const stepper *s);
int64_t stepper_last_step_ns(const stepper *s); /* wall time of the last step, -1 if untimed */
const policy_ops *stepper_ops(const stepper *s);

#endif
