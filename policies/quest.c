/* quest.c: Quest (Tang et al.): keeps everything resident (O(N) memory) and attends the
 * current page plus the pages whose upper bound on q.k is largest, from per-page channel
 * min/max of the keys maintained at append (DESIGN §3). */
#include <string.h>

#include "policy_util.h"

static const policy_param_spec params[] = {
    {"gqa", PARAM_CHOICE, "group", "group|head", 0, 0,
     "group: one page choice per KV head (max of the group's bounds); head: per query head"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_all all; /* first: every token resident, pages with key bounds; scratch per page */
    int per_head;
};

static rb_status quest_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    static const pu_all_spec spec = {.policy = "quest", .rule = PU_BUDGET_PAGES,
                                     .with_bounds = 1, .scratch = PU_SCRATCH_PAGES};
    rb_status st = pu_all_create(cfg, &spec, sizeof(policy_state), out, e);
    if (st) return st;
    (*out)->per_head = !strcmp(policy_param_str(cfg->params, "gqa"), "head");
    return RB_OK;
}

/* Heads h0..h0+nh-1 share one choice: the best floor(L/P)-1 pages before `cur` by the max of
 * their bounds, then the current page, into head h0's set. */
static void choose(pu_all *a, const pu_pages *pg, const float *q, int h0, int nh, int cur,
                   int pos, policy_selection *sel) {
    pu_pages_bounds_max(pg, NULL, cur, q + (size_t)h0 * a->sh.d, nh, a->score);
    int n = pu_topk(a->score, cur, a->sh.budget / a->sh.P - 1, a->idx);
    a->idx[n++] = cur;
    pu_sel_add_pages(sel, h0, pg, a->idx, n, pos);
}

static void quest_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    pu_all *a = &s->all;
    int pos = step->pos, cur = pos / a->sh.P;
    pu_all_sel_begin(a, step, sel, !s->per_head);
    for (int g = 0; g < a->sh.n_kv; g++) {
        const pu_pages *pg = &a->pages[g];
        int h0 = g * a->sh.group;
        if (pos + 1 <= a->sh.budget) { /* everything fits: attend it all */
            for (int h = h0; h < h0 + (s->per_head ? a->sh.group : 1); h++)
                pu_all_sel_range(sel, h, a, g, 0, pos);
            continue;
        }
        if (s->per_head)
            for (int h = h0; h < h0 + a->sh.group; h++) choose(a, pg, step->q, h, 1, cur, pos, sel);
        else
            choose(a, pg, step->q, h0, a->sh.group, cur, pos, sel);
    }
}

const policy_ops policy_quest = {
    .name = "quest",
    .summary = "all resident; attends the current page + the top pages by a min/max key bound",
    .flags = POLICY_PAGED | POLICY_KEEPS_ALL,
    .params = params,
    .create = quest_create,
    .destroy = pu_all_destroy,
    .prefill = pu_all_prefill,
    .append = pu_all_append,
    .select = quest_select,
    .observe = NULL,
    .meta_bytes = pu_all_meta_bytes,
};
