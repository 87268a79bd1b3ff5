/* oracle.c: the ceiling: everything resident, and each query head attends the current
 * position plus the L-1 others with the largest true attention, read from the dense logits
 * the engine provides (DESIGN §3). No real system can do this; it bounds what any policy
 * attending L tokens could recall. */
#include "policy_util.h"

struct policy_state {
    pu_all all; /* first: every token resident (the pu_all_* slots); scratch per token */
};

static rb_status oracle_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    static const pu_all_spec spec = {
        .policy = "oracle", .rule = PU_BUDGET_TOKENS, .scratch = PU_SCRATCH_TOKENS};
    return pu_all_create(cfg, &spec, sizeof(policy_state), out, e);
}

static void oracle_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    pu_all *a = &s->all;
    int pos = step->pos;
    pu_all_sel_begin(a, step, sel, 0);
    for (int h = 0; h < a->sh.n_q; h++) {
        int g = h / a->sh.group;
        if (pos + 1 <= a->sh.budget) {
            pu_all_sel_range(sel, h, a, g, 0, pos);
            continue;
        }
        RB_CHECK(step->dense_logits && step->score_stride > pos);
        const float *lg = step->dense_logits + (size_t)h * step->score_stride;
        for (int j = 0; j < pos; j++) a->score[j] = lg[j];
        int n = pu_topk(a->score, pos, a->sh.budget - 1, a->idx);
        pu_all_sel_list(sel, h, a, g, a->idx, n);
        pu_all_sel_range(sel, h, a, g, pos, pos);
    }
}

const policy_ops policy_oracle = {
    .name = "oracle",
    .summary = "ceiling: per query head the L tokens of largest true attention (all resident)",
    .flags = POLICY_NEEDS_DENSE | POLICY_KEEPS_ALL,
    .params = NULL,
    .create = oracle_create,
    .destroy = pu_all_destroy,
    .prefill = pu_all_prefill,
    .append = pu_all_append,
    .select = oracle_select,
    .observe = NULL,
    .meta_bytes = pu_all_meta_bytes,
};
