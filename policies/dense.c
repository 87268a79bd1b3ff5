/* dense.c: the baseline: every token stays resident and every query head attends all of
 * them (DESIGN §3). Also what the engine runs on dense layers. */
#include "policy_util.h"

struct policy_state {
    pu_all all; /* first: every token resident (the pu_all_* slots) */
};

static rb_status dense_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    static const pu_all_spec spec = {.policy = "dense", .rule = PU_BUDGET_NONE};
    return pu_all_create(cfg, &spec, sizeof(policy_state), out, e);
}

static void dense_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    const pu_all *a = &s->all;
    pu_all_sel_begin(a, step, sel, 1);
    for (int g = 0; g < a->sh.n_kv; g++) pu_all_sel_range(sel, g * a->sh.group, a, g, 0, step->pos);
}

const policy_ops policy_dense = {
    .name = "dense",
    .summary = "every token resident, every token attended (the reference)",
    .flags = POLICY_BUDGET_FREE | POLICY_KEEPS_ALL,
    .params = NULL,
    .create = dense_create,
    .destroy = pu_all_destroy,
    .prefill = pu_all_prefill,
    .append = pu_all_append,
    .select = dense_select,
    .observe = NULL,
    .meta_bytes = pu_all_meta_bytes,
};
