/* oracle.c: the ceiling: everything resident, and each query head attends the current
 * position plus the L-1 others with the largest true attention, read from the dense logits
 * the engine provides (DESIGN §3). No real system can do this; it bounds what any policy
 * attending L tokens could recall. */
#include "policy_util.h"

struct policy_state {
    int n_kv, n_q, group, d, budget, last;
    pu_pages *pages; /* [n_kv] */
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
    s->last = -1;
    s->pages = rb_calloc((size_t)s->n_kv, sizeof *s->pages);
    for (int g = 0; g < s->n_kv; g++) pu_pages_init(&s->pages[g], cfg->pools[g], cfg->max_tokens, 0);
    s->score = rb_malloc(sizeof *s->score * (size_t)cfg->max_tokens);
    s->top = rb_malloc(sizeof *s->top * (size_t)cfg->max_tokens);
    *out = s;
    return RB_OK;
}

static void oracle_destroy(policy_state *s) {
    if (!s) return;
    for (int g = 0; g < s->n_kv; g++) pu_pages_free(&s->pages[g]);
    free(s->pages);
    free(s->score);
    free(s->top);
    free(s);
}

static void store(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    for (int g = 0; g < s->n_kv; g++)
        pu_pages_store(&s->pages[g], pos, k + (size_t)g * s->d, v + (size_t)g * s->d);
    s->last = pos;
}

static void oracle_prefill(policy_state *s, int n, const float *q, const float *k,
                           const float *v) {
    (void)q;
    size_t row = (size_t)s->n_kv * s->d;
    for (int i = 0; i < n; i++) store(s, i, k + i * row, v + i * row);
}

static void oracle_append(policy_state *s, int pos, const float *k, const float *v) {
    store(s, pos, k, v);
}

static void oracle_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    int pos = step->pos;
    RB_CHECK(pos == s->last);
    pu_sel_begin(sel, 0);
    for (int h = 0; h < s->n_q; h++) {
        const pu_pages *pg = &s->pages[h / s->group];
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
    int64_t b = 0;
    for (int g = 0; g < s->n_kv; g++) b += pu_pages_meta_bytes(&s->pages[g]);
    return b;
}

const policy_ops policy_oracle = {
    .name = "oracle",
    .summary = "ceiling: per query head the L tokens of largest true attention (all resident)",
    .flags = POLICY_NEEDS_DENSE,
    .params = NULL,
    .create = oracle_create,
    .destroy = oracle_destroy,
    .prefill = oracle_prefill,
    .append = oracle_append,
    .select = oracle_select,
    .observe = NULL,
    .meta_bytes = oracle_meta_bytes,
};
