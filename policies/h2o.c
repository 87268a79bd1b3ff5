/* h2o.c: Heavy-Hitter Oracle (Zhang et al., H2O): at most L tokens per KV head, the most
 * recent R = floor(L*recent) plus the L-R others with the largest accumulated attention
 * (docs/DESIGN.md §3). Token-granular: an evicted token's slot is reused by the next one. */
#include <math.h>

#include "attn.h"
#include "policy_util.h"

static const policy_param_spec params[] = {
    {"recent", PARAM_FLOAT, "0.5", NULL, 0, 1,
     "fraction of the budget kept for the most recent tokens (R = floor(L*recent))"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_shape sh;
    int recent, last;
    float scale;
    pu_scored *heads; /* [n_kv] the resident tokens, in no particular order */
};

static rb_status h2o_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "h2o", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    s->recent = (int)floor(cfg->budget * policy_param_num(cfg->params, "recent"));
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = pu_scored_create(cfg);
    *out = s;
    return RB_OK;
}

static void h2o_destroy(policy_state *s) {
    if (!s) return;
    pu_scored_destroy(s->heads, s->sh.n_kv);
    free(s);
}

static void h2o_prefill(policy_state *s, int n, const float *q, const float *k,
                        const float *v) {
    RB_CHECK(s->last == -1);
    if (n <= 0) return;
    /* Initial scores: each key's causal attention mass over the prompt, summed over the
     * query heads of its group. */
    float *out = rb_malloc(sizeof(float) * (size_t)n * s->sh.n_q * s->sh.d);
    float *col = rb_malloc(sizeof(float) * (size_t)n * s->sh.n_kv); /* [n_kv, n] */
    attn_causal(q, k, v, n, s->sh.n_q, s->sh.n_kv, s->sh.d, s->scale, out, col);
    size_t row = (size_t)s->sh.n_kv * s->sh.d;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->sh.n_kv; g++)
            pu_scored_push(&s->heads[g], i, k + i * row + (size_t)g * s->sh.d,
                           v + i * row + (size_t)g * s->sh.d, col[(size_t)g * n + i]);
    s->last = n - 1;
    free(out);
    free(col);
}

static void h2o_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    int oldest_recent = pos - s->recent; /* candidates: positions <= pos - R */
    for (int g = 0; g < s->sh.n_kv; g++) {
        pu_scored *hd = &s->heads[g];
        while (hd->n >= s->sh.budget) {
            int w = -1;
            for (int i = 0; i < hd->n; i++) {
                const pu_entry *c = &hd->ent[i];
                if (c->pos > oldest_recent) continue;
                if (w < 0 || c->score < hd->ent[w].score ||
                    (c->score == hd->ent[w].score && c->pos < hd->ent[w].pos))
                    w = i;
            }
            /* n >= L tokens below pos, at most R-1 of them above pos-R: a candidate exists. */
            RB_CHECK(w >= 0);
            pu_scored_drop_swap(hd, w);
        }
        pu_scored_push(hd, pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d, 0.0);
    }
    s->last = pos;
}

static void h2o_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    pu_scored_select(s->heads, &s->sh, sel);
}

static void h2o_observe(policy_state *s, const policy_step *step, const policy_selection *sel,
                        const float *probs) {
    (void)step;
    pu_scored_observe(s->heads, &s->sh, sel, probs, PU_SCORE_ADD);
}

static int64_t h2o_meta_bytes(const policy_state *s) {
    return pu_scored_meta_bytes(s->heads, s->sh.n_kv);
}

const policy_ops policy_h2o = {
    .name = "h2o",
    .summary = "L tokens: the most recent R plus the heaviest by accumulated attention",
    .flags = 0,
    .params = params,
    .create = h2o_create,
    .destroy = h2o_destroy,
    .prefill = h2o_prefill,
    .append = h2o_append,
    .select = h2o_select,
    .observe = h2o_observe,
    .meta_bytes = h2o_meta_bytes,
};
