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

typedef struct h2o_head {
    pu_tokens tok;
    int n, cap;      /* resident entries, capacity of the arrays */
    int32_t *pos;    /* [cap] resident positions, in no particular order */
    double *score;   /* [cap] accumulated attention of each entry (sum over the group) */
} h2o_head;

struct policy_state {
    int n_kv, n_q, group, d, budget, recent, last;
    float scale;
    h2o_head *heads; /* [n_kv] */
};

static rb_status h2o_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "h2o", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->n_kv = cfg->n_kv_heads;
    s->n_q = cfg->n_q_heads;
    s->group = cfg->n_q_heads / cfg->n_kv_heads;
    s->d = cfg->head_dim;
    s->budget = cfg->budget;
    s->recent = (int)floor(cfg->budget * policy_param_num(cfg->params, "recent"));
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = rb_calloc((size_t)s->n_kv, sizeof *s->heads);
    for (int g = 0; g < s->n_kv; g++) {
        h2o_head *hd = &s->heads[g];
        pu_tokens_init(&hd->tok, cfg->pools[g], cfg->max_tokens);
        hd->cap = cfg->budget + 1;
        hd->pos = rb_malloc(sizeof *hd->pos * (size_t)hd->cap);
        hd->score = rb_malloc(sizeof *hd->score * (size_t)hd->cap);
    }
    *out = s;
    return RB_OK;
}

static void h2o_destroy(policy_state *s) {
    if (!s) return;
    for (int g = 0; g < s->n_kv; g++) {
        pu_tokens_free(&s->heads[g].tok);
        free(s->heads[g].pos);
        free(s->heads[g].score);
    }
    free(s->heads);
    free(s);
}

static void head_push(policy_state *s, h2o_head *hd, int pos, const float *k, const float *v,
                      double score) {
    (void)s;
    if (hd->n == hd->cap) { /* only a prompt longer than L gets here */
        hd->cap *= 2;
        hd->pos = rb_realloc(hd->pos, sizeof *hd->pos * (size_t)hd->cap);
        hd->score = rb_realloc(hd->score, sizeof *hd->score * (size_t)hd->cap);
    }
    pu_tokens_store(&hd->tok, pos, k, v);
    hd->pos[hd->n] = pos;
    hd->score[hd->n] = score;
    hd->n++;
}

static void h2o_prefill(policy_state *s, int n, const float *q, const float *k,
                        const float *v) {
    RB_CHECK(s->last == -1);
    if (n <= 0) return;
    /* Initial scores: each key's causal attention mass over the prompt, summed over the
     * query heads of its group. */
    float *out = rb_malloc(sizeof(float) * (size_t)n * s->n_q * s->d);
    float *col = rb_malloc(sizeof(float) * (size_t)n * s->n_kv); /* [n_kv, n] */
    attn_causal(q, k, v, n, s->n_q, s->n_kv, s->d, s->scale, out, col);
    size_t row = (size_t)s->n_kv * s->d;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->n_kv; g++)
            head_push(s, &s->heads[g], i, k + i * row + (size_t)g * s->d,
                      v + i * row + (size_t)g * s->d, col[(size_t)g * n + i]);
    s->last = n - 1;
    free(out);
    free(col);
}

static void h2o_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    int oldest_recent = pos - s->recent; /* candidates: positions <= pos - R */
    for (int g = 0; g < s->n_kv; g++) {
        h2o_head *hd = &s->heads[g];
        while (hd->n >= s->budget) {
            int w = -1;
            for (int i = 0; i < hd->n; i++) {
                if (hd->pos[i] > oldest_recent) continue;
                if (w < 0 || hd->score[i] < hd->score[w] ||
                    (hd->score[i] == hd->score[w] && hd->pos[i] < hd->pos[w]))
                    w = i;
            }
            /* n >= L tokens below pos, at most R-1 of them above pos-R: a candidate exists. */
            RB_CHECK(w >= 0);
            pu_tokens_drop(&hd->tok, hd->pos[w]);
            hd->n--;
            hd->pos[w] = hd->pos[hd->n];
            hd->score[w] = hd->score[hd->n];
        }
        head_push(s, hd, pos, k + (size_t)g * s->d, v + (size_t)g * s->d, 0.0);
    }
    s->last = pos;
}

static void h2o_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->n_kv; g++) {
        h2o_head *hd = &s->heads[g];
        for (int i = 0; i < hd->n; i++)
            pu_sel_add(sel, g * s->group, hd->pos[i], pu_tokens_k(&hd->tok, hd->pos[i]),
                       pu_tokens_v(&hd->tok, hd->pos[i]));
    }
}

static void h2o_observe(policy_state *s, const policy_step *step, const policy_selection *sel,
                        const float *probs) {
    (void)step;
    for (int g = 0; g < s->n_kv; g++) {
        h2o_head *hd = &s->heads[g];
        int h0 = g * s->group;
        /* The selection lists the entries in array order (select above, nothing moved
         * since), so probs line up with the entries by index. */
        RB_CHECK(sel->shared_by_group && sel->n[h0] == hd->n);
        for (int i = 0; i < hd->n; i++) {
            RB_CHECK(sel->pos[(size_t)h0 * sel->cap + i] == hd->pos[i]);
            double m = 0;
            for (int h = h0; h < h0 + s->group; h++) m += probs[(size_t)h * sel->cap + i];
            hd->score[i] += m;
        }
    }
}

static int64_t h2o_meta_bytes(const policy_state *s) {
    int64_t b = 0;
    for (int g = 0; g < s->n_kv; g++)
        b += (int64_t)s->heads[g].n * (int64_t)(sizeof(int32_t) + sizeof(double) + sizeof(kv_slot));
    return b;
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
