/* oracle.c: the ceiling: everything resident, and each query head attends the current
 * position plus the L-1 others with the largest true attention, read from the dense logits
 * the engine provides (docs/DESIGN.md §3). No real system can do this; it bounds what any policy
 * attending L tokens could recall. */
#include "policy_util.h"

struct policy_state {
    pu_keep keep;    /* every token resident */
    double *score;   /* [max_tokens] scratch */
    int *top;        /* [max_tokens] scratch */
};

static rb_status oracle_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_keep_create(cfg, "oracle", PU_BUDGET_TOKENS, 0, sizeof(policy_state), out, e);
    if (st) return st;
    policy_state *s = *out;
    s->score = rb_malloc(sizeof *s->score * (size_t)cfg->max_tokens);
    s->top = rb_malloc(sizeof *s->top * (size_t)cfg->max_tokens);
    return RB_OK;
}

static void oracle_destroy(policy_state *s) {
    if (!s) return;
    free(s->score);
    free(s->top);
    pu_keep_destroy(s);
}

static void oracle_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    int pos = step->pos;
    RB_CHECK(pos == s->keep.all.last);
    pu_sel_begin(sel, 0);
    for (int h = 0; h < s->keep.n_q; h++) {
        const pu_pages *pg = &s->keep.all.pages[h / s->keep.group];
        int n;
        if (pos + 1 <= s->keep.budget) {
            n = pos;
            for (int j = 0; j < pos; j++) s->top[j] = j;
        } else {
            RB_CHECK(step->dense_logits && step->score_stride > pos);
            const float *lg = step->dense_logits + (size_t)h * step->score_stride;
            for (int j = 0; j < pos; j++) s->score[j] = lg[j];
            n = pu_topk(s->score, pos, s->keep.budget - 1, s->top);
        }
        for (int i = 0; i < n; i++)
            pu_sel_add(sel, h, s->top[i], pu_pages_k(pg, s->top[i]), pu_pages_v(pg, s->top[i]));
        pu_sel_add(sel, h, pos, pu_pages_k(pg, pos), pu_pages_v(pg, pos));
    }
}

const policy_ops policy_oracle = {
    .name = "oracle",
    .summary = "ceiling: per query head the L tokens of largest true attention (all resident)",
    .flags = POLICY_NEEDS_DENSE | POLICY_KEEPS_ALL | POLICY_BOUND,
    .params = NULL,
    .create = oracle_create,
    .destroy = oracle_destroy,
    .prefill = pu_keep_prefill,
    .append = pu_keep_append,
    .select = oracle_select,
    .observe = NULL,
    .meta_bytes = pu_keep_meta_bytes,
};
