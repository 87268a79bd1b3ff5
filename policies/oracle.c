/* oracle.c: the ceiling: everything resident, and each query head attends the current
 * position plus the L-1 others with the largest true attention, read from the dense logits
 * the engine provides (DESIGN §3). No real system can do this; it bounds what any policy
 * attending L tokens could recall. */
#include "policy_util.h"

struct policy_state {
    int n_kv, n_q, group, d, budget;
    pu_all all;      /* every token resident */
    double *score;   /* [max_tokens] scratch */
    int *top;        /* [max_tokens] scratch */
};

static rb_status oracle_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "oracle", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->n_kv = cfg->n_kv_heads;
    s->n_q = cfg->n_q_heads;
    s->group = cfg->n_q_heads / cfg->n_kv_heads;
    s->d = cfg->head_dim;
    s->budget = cfg->budget;
    pu_all_init(&s->all, cfg, 0);
    s->score = rb_malloc(sizeof *s->score * (size_t)cfg->max_tokens);
    s->top = rb_malloc(sizeof *s->top * (size_t)cfg->max_tokens);
    *out = s;
    return RB_OK;
}

static void oracle_destroy(policy_state *s) {
    if (!s) return;
    pu_all_free(&s->all);
    free(s->score);
    free(s->top);
    free(s);
}

static void oracle_prefill(policy_state *s, int n, const float *q, const float *k,
                           const float *v) {
    (void)q;
    pu_all_prefill(&s->all, n, k, v);
}

static void oracle_append(policy_state *s, int pos, const float *k, const float *v) {
    pu_all_store(&s->all, pos, k, v);
}

static void oracle_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    int pos = step->pos;
    RB_CHECK(pos == s->all.last);
    pu_sel_begin(sel, 0);
    for (int h = 0; h < s->n_q; h++) {
        const pu_pages *pg = &s->all.pages[h / s->group];
        int n;
        if (pos + 1 <= s->budget) {
            n = pos;
            for (int j = 0; j < pos; j++) s->top[j] = j;
        } else {
            RB_CHECK(step->dense_logits && step->score_stride > pos);
            const float *lg = step->dense_logits + (size_t)h * step->score_stride;
            for (int j = 0; j < pos; j++) s->score[j] = lg[j];
            n = pu_topk(s->score, pos, s->budget - 1, s->top);
        }
        for (int i = 0; i < n; i++)
            pu_sel_add(sel, h, s->top[i], pu_pages_k(pg, s->top[i]), pu_pages_v(pg, s->top[i]));
        pu_sel_add(sel, h, pos, pu_pages_k(pg, pos), pu_pages_v(pg, pos));
    }
}

static int64_t oracle_meta_bytes(const policy_state *s) {
    return pu_all_meta_bytes(&s->all);
}

const policy_ops policy_oracle = {
    .name = "oracle",
    .summary = "ceiling: per query head the L tokens of largest true attention (all resident)",
    .flags = POLICY_NEEDS_DENSE | POLICY_KEEPS_ALL | POLICY_BOUND,
    .params = NULL,
    .create = oracle_create,
    .destroy = oracle_destroy,
    .prefill = oracle_prefill,
    .append = oracle_append,
    .select = oracle_select,
    .observe = NULL,
    .meta_bytes = oracle_meta_bytes,
};
