/* random.c: a floor: everything resident, and each KV group attends the current position
 * plus L-1 others drawn uniformly without replacement, from a stream fixed by the seed, the
 * layer, the step and the KV head (docs/DESIGN.md §3), so runs repeat exactly. */
#include "policy_util.h"

static const policy_param_spec params[] = {
    {"seed", PARAM_INT, "-1", NULL, -1, 9007199254740992.0,
     "seed of the draws; -1 uses the run seed"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_keep keep;    /* every token resident */
    uint64_t seed;
    uint8_t *mark;   /* [max_tokens] scratch, all 0 between steps */
    int *pick;       /* [max_tokens] scratch */
};

static rb_status random_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_keep_create(cfg, "random", PU_BUDGET_TOKENS, 0, sizeof(policy_state), out, e);
    if (st) return st;
    policy_state *s = *out;
    double sd = policy_param_num(cfg->params, "seed");
    s->seed = sd >= 0 ? (uint64_t)sd : cfg->seed;
    s->mark = rb_calloc((size_t)cfg->max_tokens, 1);
    s->pick = rb_malloc(sizeof *s->pick * (size_t)cfg->max_tokens);
    return RB_OK;
}

static void random_destroy(policy_state *s) {
    if (!s) return;
    free(s->mark);
    free(s->pick);
    pu_keep_destroy(s);
}

static void random_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    int pos = step->pos;
    RB_CHECK(pos == s->keep.all.last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->keep.n_kv; g++) {
        const pu_pages *pg = &s->keep.all.pages[g];
        int h0 = g * s->keep.group;
        if (pos + 1 <= s->keep.budget) {
            for (int t = 0; t <= pos; t++) pu_sel_add(sel, h0, t, pu_pages_k(pg, t), pu_pages_v(pg, t));
            continue;
        }
        uint64_t x = pu_mix64(pu_mix64(pu_mix64(pu_mix64(s->seed) ^ (uint64_t)s->keep.layer) ^
                                       (uint64_t)pos) ^ (uint64_t)g);
        /* Floyd's sampling: k = L-1 distinct draws from 0..pos-1 in O(k). */
        int k = s->keep.budget - 1, n = 0;
        for (int j = pos - k; j < pos; j++) {
            x = pu_mix64(x);
            int r = (int)(x % (uint64_t)(j + 1));
            s->mark[s->mark[r] ? j : r] = 1;
        }
        /* Emit in position order by scanning the marks: O(pos), as the dense reference. */
        for (int t = 0; t < pos; t++)
            if (s->mark[t]) {
                s->mark[t] = 0;
                s->pick[n++] = t;
            }
        for (int i = 0; i < n; i++)
            pu_sel_add(sel, h0, s->pick[i], pu_pages_k(pg, s->pick[i]), pu_pages_v(pg, s->pick[i]));
        pu_sel_add(sel, h0, pos, pu_pages_k(pg, pos), pu_pages_v(pg, pos));
    }
}

const policy_ops policy_random = {
    .name = "random",
    .summary = "floor: the current token + L-1 others drawn uniformly (seeded; all resident)",
    .flags = POLICY_KEEPS_ALL | POLICY_BOUND,
    .params = params,
    .create = random_create,
    .destroy = random_destroy,
    .prefill = pu_keep_prefill,
    .append = pu_keep_append,
    .select = random_select,
    .observe = NULL,
    .meta_bytes = pu_keep_meta_bytes,
};
