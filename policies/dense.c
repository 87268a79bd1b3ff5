/* dense.c: the baseline: every token stays resident and every query head attends all of
 * them (DESIGN §3). Also what the engine runs on dense layers. */
#include "policy_util.h"

struct policy_state {
    int n_kv, group;
    pu_all all; /* every token resident */
};

static rb_status dense_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "dense", PU_BUDGET_NONE, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->n_kv = cfg->n_kv_heads;
    s->group = cfg->n_q_heads / cfg->n_kv_heads;
    pu_all_init(&s->all, cfg, 0);
    *out = s;
    return RB_OK;
}

static void dense_destroy(policy_state *s) {
    if (!s) return;
    pu_all_free(&s->all);
    free(s);
}

static void dense_prefill(policy_state *s, int n, const float *q, const float *k,
                          const float *v) {
    (void)q;
    pu_all_prefill(&s->all, n, k, v);
}

static void dense_append(policy_state *s, int pos, const float *k, const float *v) {
    pu_all_store(&s->all, pos, k, v);
}

static void dense_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->all.last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->n_kv; g++)
        for (int t = 0; t <= step->pos; t++)
            pu_sel_add(sel, g * s->group, t, pu_pages_k(&s->all.pages[g], t),
                       pu_pages_v(&s->all.pages[g], t));
}

static int64_t dense_meta_bytes(const policy_state *s) {
    return pu_all_meta_bytes(&s->all);
}

const policy_ops policy_dense = {
    .name = "dense",
    .summary = "every token resident, every token attended (the reference)",
    .flags = POLICY_BUDGET_FREE | POLICY_KEEPS_ALL,
    .params = NULL,
    .create = dense_create,
    .destroy = dense_destroy,
    .prefill = dense_prefill,
    .append = dense_append,
    .select = dense_select,
    .observe = NULL,
    .meta_bytes = dense_meta_bytes,
};
