/* random.c: a floor: everything resident, and each KV group attends the current position
 * plus L-1 others drawn uniformly without replacement, from a stream fixed by the seed, the
 * layer, the step and the KV head (DESIGN §3), so runs repeat exactly. */
#include "policy_util.h"

static const policy_param_spec params[] = {
    {"seed", PARAM_INT, "-1", NULL, -1, 9007199254740992.0,
     "seed of the draws; -1 uses the run seed"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_all all; /* first: every token resident (the pu_all_* slots); idx: marks per token */
    int layer;
    uint64_t seed;
};

static rb_status random_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    static const pu_all_spec spec = {
        .policy = "random", .rule = PU_BUDGET_TOKENS, .scratch = PU_SCRATCH_TOKENS};
    rb_status st = pu_all_create(cfg, &spec, sizeof(policy_state), out, e);
    if (st) return st;
    double sd = policy_param_num(cfg->params, "seed");
    (*out)->layer = cfg->layer;
    (*out)->seed = sd >= 0 ? (uint64_t)sd : cfg->seed;
    return RB_OK;
}

static void random_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    pu_all *a = &s->all;
    int pos = step->pos, *mark = a->idx; /* [max_tokens] all 0 between steps */
    pu_all_sel_begin(a, step, sel, 1);
    for (int g = 0; g < a->sh.n_kv; g++) {
        int h0 = g * a->sh.group;
        if (pos + 1 <= a->sh.budget) {
            pu_all_sel_range(sel, h0, a, g, 0, pos);
            continue;
        }
        uint64_t x = pu_mix64(pu_mix64(pu_mix64(pu_mix64(s->seed) ^ (uint64_t)s->layer) ^
                                       (uint64_t)pos) ^ (uint64_t)g);
        /* Floyd's sampling: k = L-1 distinct draws from 0..pos-1 in O(k). */
        int k = a->sh.budget - 1;
        for (int j = pos - k; j < pos; j++) {
            x = pu_mix64(x);
            int r = (int)(x % (uint64_t)(j + 1));
            mark[mark[r] ? j : r] = 1;
        }
        /* Emit in position order by scanning the marks: O(pos), as the dense reference. */
        for (int t = 0; t < pos; t++)
            if (mark[t]) {
                mark[t] = 0;
                pu_all_sel_range(sel, h0, a, g, t, t);
            }
        pu_all_sel_range(sel, h0, a, g, pos, pos);
    }
}

const policy_ops policy_random = {
    .name = "random",
    .summary = "floor: the current token + L-1 others drawn uniformly (seeded; all resident)",
    .flags = POLICY_KEEPS_ALL,
    .params = params,
    .create = random_create,
    .destroy = pu_all_destroy,
    .prefill = pu_all_prefill,
    .append = pu_all_append,
    .select = random_select,
    .observe = NULL,
    .meta_bytes = pu_all_meta_bytes,
};
