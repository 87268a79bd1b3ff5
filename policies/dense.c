/* dense.c: the baseline: every token stays resident and every query head attends all of
 * them (docs/DESIGN.md §3). Also what the engine runs on dense layers. */
#include "policy_util.h"

struct policy_state {
    pu_keep keep; /* every token resident */
};

static rb_status dense_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    return pu_keep_create(cfg, "dense", PU_BUDGET_NONE, 0, sizeof(policy_state), out, e);
}

static void dense_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->keep.all.last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->keep.n_kv; g++)
        for (int t = 0; t <= step->pos; t++)
            pu_sel_add(sel, g * s->keep.group, t, pu_pages_k(&s->keep.all.pages[g], t),
                       pu_pages_v(&s->keep.all.pages[g], t));
}

const policy_ops policy_dense = {
    .name = "dense",
    .summary = "every token resident, every token attended (the reference)",
    .flags = POLICY_BUDGET_FREE | POLICY_KEEPS_ALL,
    .params = NULL,
    .create = dense_create,
    .destroy = pu_keep_destroy,
    .prefill = pu_keep_prefill,
    .append = pu_keep_append,
    .select = dense_select,
    .observe = NULL,
    .meta_bytes = pu_keep_meta_bytes,
};
