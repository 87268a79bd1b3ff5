/* tova.c: TOVA, Token Omission Via Attention (Oren et al., arXiv 2401.06104): at most L tokens
 * per KV head; when the cache is full, the token the latest query attended least (its
 * probability averaged over the query heads of the KV group) is evicted, one per step.
 * Token-granular: an evicted token's slot is reused by the next one.
 *
 * The paper evicts right after a step's attention, keeping L of the L+1 tokens it attended;
 * here the eviction happens at the next append, from the scores observe stored, which is the
 * same choice (the scores are those of the latest query) made one call later. */
#include <math.h>
#include <string.h>

#include "policy_util.h"

struct policy_state {
    pu_shape sh;
    int last;
    float scale;
    pu_scored *heads; /* [n_kv] ascending position; score: the latest query's attention on
                         the token, mean over the group's heads */
};

static rb_status tova_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "tova", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = pu_scored_create(cfg);
    *out = s;
    return RB_OK;
}

static void tova_destroy(policy_state *s) {
    if (!s) return;
    pu_scored_destroy(s->heads, s->sh.n_kv);
    free(s);
}

static void tova_prefill(policy_state *s, int n, const float *q, const float *k,
                         const float *v) {
    RB_CHECK(s->last == -1);
    if (n <= 0) return;
    int d = s->sh.d, G = s->sh.group;
    size_t row = (size_t)s->sh.n_kv * d;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->sh.n_kv; g++)
            pu_scored_push(&s->heads[g], i, k + i * row + (size_t)g * d,
                           v + i * row + (size_t)g * d, 0);
    /* Scores of a long prompt: the last prompt query's attention over the prompt, as if the
     * prompt had been attended by its last query like a decode step (in double). */
    double *lg = rb_malloc(sizeof(double) * (size_t)n);
    const float *qn = q + (size_t)(n - 1) * s->sh.n_q * d;
    for (int g = 0; g < s->sh.n_kv; g++) {
        pu_scored *hd = &s->heads[g];
        for (int h = g * G; h < (g + 1) * G; h++) {
            double m = -INFINITY, z = 0;
            for (int j = 0; j < n; j++) {
                const float *kj = k + j * row + (size_t)g * d;
                double dot = 0;
                for (int c = 0; c < d; c++) dot += (double)qn[(size_t)h * d + c] * kj[c];
                lg[j] = dot * s->scale;
                if (lg[j] > m) m = lg[j];
            }
            for (int j = 0; j < n; j++) z += exp(lg[j] - m);
            for (int j = 0; j < n; j++) hd->ent[j].score += exp(lg[j] - m) / z / G;
        }
    }
    free(lg);
    s->last = n - 1;
}

static void tova_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        pu_scored *hd = &s->heads[g];
        while (hd->n >= s->sh.budget) {
            int w = 0; /* least score; ties: the lower position (first in order) */
            for (int i = 1; i < hd->n; i++)
                if (hd->ent[i].score < hd->ent[w].score) w = i;
            pu_scored_drop_ordered(hd, w);
        }
        pu_scored_push(hd, pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d, 0);
    }
    s->last = pos;
}

static void tova_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    pu_scored_select(s->heads, &s->sh, sel);
}

static void tova_observe(policy_state *s, const policy_step *step, const policy_selection *sel,
                         const float *probs) {
    (void)step;
    /* replaced, not accumulated: TOVA looks at one query */
    pu_scored_observe(s->heads, &s->sh, sel, probs, PU_SCORE_MEAN);
}

static int64_t tova_meta_bytes(const policy_state *s) {
    return pu_scored_meta_bytes(s->heads, s->sh.n_kv);
}

const policy_ops policy_tova = {
    .name = "tova",
    .summary = "L tokens: when full, the one the latest query attended least (group mean) goes",
    .flags = 0,
    .params = NULL,
    .create = tova_create,
    .destroy = tova_destroy,
    .prefill = tova_prefill,
    .append = tova_append,
    .select = tova_select,
    .observe = tova_observe,
    .meta_bytes = tova_meta_bytes,
};
