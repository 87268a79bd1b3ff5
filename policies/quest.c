/* quest.c: Quest (Tang et al.): keeps everything resident (O(N) memory) and attends the
 * current page plus the pages whose upper bound on q.k is largest, from per-page channel
 * min/max of the keys maintained at append (docs/DESIGN.md §3). */
#include <math.h>
#include <string.h>

#include "policy_util.h"

static const policy_param_spec params[] = {
    {"gqa", PARAM_CHOICE, "group", "group|head", 0, 0,
     "group: one page choice per KV head (max of the group's bounds); head: per query head"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_keep keep;    /* every token resident, pages with key bounds */
    int per_head;    /* gqa=head: a page choice per query head */
    double *score;   /* [max_pages] scratch */
    int *top;        /* [max_pages] scratch */
};

static rb_status quest_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_keep_create(cfg, "quest", PU_BUDGET_PAGES, 1, sizeof(policy_state), out, e);
    if (st) return st;
    policy_state *s = *out;
    s->per_head = !strcmp(policy_param_str(cfg->params, "gqa"), "head");
    int max_pages = s->keep.all.pages[0].max_pages;
    s->score = rb_malloc(sizeof *s->score * (size_t)max_pages);
    s->top = rb_malloc(sizeof *s->top * (size_t)max_pages);
    return RB_OK;
}

static void quest_destroy(policy_state *s) {
    if (!s) return;
    free(s->score);
    free(s->top);
    pu_keep_destroy(s);
}

/* Heads h0..h0+nh-1 share one choice: the best floor(L/P)-1 pages before `cur` by the max of
 * their bounds, then the current page, into head h0's set. */
static void choose(policy_state *s, const pu_pages *pg, const float *q, int h0, int nh, int cur,
                   int pos, policy_selection *sel) {
    pu_pages_bounds_max(pg, NULL, cur, q + (size_t)h0 * s->keep.d, nh, s->score);
    int n = pu_topk(s->score, cur, s->keep.budget / s->keep.P - 1, s->top);
    s->top[n++] = cur;
    pu_sel_add_pages(sel, h0, pg, s->top, n, pos);
}

static void quest_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    int pos = step->pos;
    RB_CHECK(pos == s->keep.all.last);
    pu_sel_begin(sel, !s->per_head);
    int cur = pos / s->keep.P;
    for (int g = 0; g < s->keep.n_kv; g++) {
        const pu_pages *pg = &s->keep.all.pages[g];
        int h0 = g * s->keep.group;
        if (pos + 1 <= s->keep.budget) { /* everything fits: attend it all */
            for (int i = 0; i <= cur; i++) s->top[i] = i;
            for (int h = h0; h < h0 + (s->per_head ? s->keep.group : 1); h++)
                pu_sel_add_pages(sel, h, pg, s->top, cur + 1, pos);
            continue;
        }
        if (s->per_head)
            for (int h = h0; h < h0 + s->keep.group; h++) choose(s, pg, step->q, h, 1, cur, pos, sel);
        else
            choose(s, pg, step->q, h0, s->keep.group, cur, pos, sel);
    }
}

const policy_ops policy_quest = {
    .name = "quest",
    .summary = "all resident; attends the current page + the top pages by a min/max key bound",
    .flags = POLICY_PAGED | POLICY_KEEPS_ALL,
    .params = params,
    .create = quest_create,
    .destroy = quest_destroy,
    .prefill = pu_keep_prefill,
    .append = pu_keep_append,
    .select = quest_select,
    .observe = NULL,
    .meta_bytes = pu_keep_meta_bytes,
};
