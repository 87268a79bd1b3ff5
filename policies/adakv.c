/* adakv.c: Ada-KV (Feng et al., arXiv 2407.11550) over H2O's scorer: the layer's budget,
 * L x n_kv_heads tokens, is shared by its KV heads instead of split evenly. Each KV head keeps
 * its own tokens in its own pool (memory per head follows what it holds), scored as H2O
 * scores them (attention accumulated over the group's query heads); when the layer is over
 * budget the least-scored token of the whole layer goes, whichever head holds it, so heads
 * whose attention is spread keep more than L and concentrated heads fewer. Each head keeps
 * its R = floor(L*recent) most recent tokens, and at least a safeguard share of the even
 * split (Ada-KV's safeguard). Token-granular slots. */
#include <math.h>

#include "attn.h"
#include "policy_util.h"

static const policy_param_spec params[] = {
    {"recent", PARAM_FLOAT, "0.5", NULL, 0, 1,
     "fraction of L each KV head keeps for its most recent tokens (H2O's; R = floor(L*recent))"},
    {"safeguard", PARAM_FLOAT, "0.2", NULL, 0, 1,
     "each KV head keeps at least ceil(safeguard * L) tokens (Ada-KV's safeguard alpha: 0.2)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_shape sh;
    int recent, floor_n, last, total; /* total: tokens resident over the layer */
    float scale;
    pu_scored *heads; /* [n_kv] in no particular order; score: accumulated attention (sum
                         over the group and the steps) */
};

static rb_status ada_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "adakv", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    s->recent = (int)floor(cfg->budget * policy_param_num(cfg->params, "recent"));
    s->floor_n = (int)ceil(cfg->budget * policy_param_num(cfg->params, "safeguard") - 1e-9);
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = pu_scored_create(cfg);
    *out = s;
    return RB_OK;
}

static void ada_destroy(policy_state *s) {
    if (!s) return;
    pu_scored_destroy(s->heads, s->sh.n_kv);
    free(s);
}

static void head_push(policy_state *s, pu_scored *hd, int pos, const float *k, const float *v,
                      double score) {
    pu_scored_push(hd, pos, k, v, score);
    s->total++;
}

static void ada_prefill(policy_state *s, int n, const float *q, const float *k,
                        const float *v) {
    RB_CHECK(s->last == -1);
    if (n <= 0) return;
    /* H2O's initial scores: each key's causal attention mass over the prompt, summed over
     * the query heads of its group. */
    float *out = rb_malloc(sizeof(float) * (size_t)n * s->sh.n_q * s->sh.d);
    float *col = rb_malloc(sizeof(float) * (size_t)n * s->sh.n_kv);
    attn_causal(q, k, v, n, s->sh.n_q, s->sh.n_kv, s->sh.d, s->scale, out, col);
    size_t row = (size_t)s->sh.n_kv * s->sh.d;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->sh.n_kv; g++)
            head_push(s, &s->heads[g], i, k + i * row + (size_t)g * s->sh.d,
                      v + i * row + (size_t)g * s->sh.d, col[(size_t)g * n + i]);
    s->last = n - 1;
    free(out);
    free(col);
}

static void ada_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    int oldest_recent = pos - s->recent; /* candidates: positions <= pos - R */
    int budget = s->sh.budget * s->sh.n_kv;
    /* Room for the n_kv new tokens: the least-scored candidate of the layer goes, one at a
     * time (ties: the lower position, then the lower head), from heads above the floor. The
     * floor counts the new token each head is about to take. */
    while (s->total + s->sh.n_kv > budget) {
        int wg = -1, wi = -1;
        for (int g = 0; g < s->sh.n_kv; g++) {
            pu_scored *hd = &s->heads[g];
            if (hd->n + 1 <= s->floor_n) continue;
            for (int i = 0; i < hd->n; i++) {
                const pu_entry *c = &hd->ent[i];
                if (c->pos > oldest_recent) continue;
                if (wg >= 0) {
                    const pu_entry *w = &s->heads[wg].ent[wi];
                    if (c->score > w->score) continue;
                    if (c->score == w->score && c->pos >= w->pos) continue; /* same pos: lower g */
                }
                wg = g, wi = i;
            }
        }
        /* Over budget, some head holds L or more: it is above the floor (<= L) and at most
         * R-1 < L of its tokens are recent, so a candidate exists. */
        RB_CHECK(wg >= 0);
        pu_scored_drop_swap(&s->heads[wg], wi);
        s->total--;
    }
    for (int g = 0; g < s->sh.n_kv; g++)
        head_push(s, &s->heads[g], pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d, 0.0);
    s->last = pos;
}

static void ada_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    pu_scored_select(s->heads, &s->sh, sel);
}

static void ada_observe(policy_state *s, const policy_step *step, const policy_selection *sel,
                        const float *probs) {
    (void)step;
    pu_scored_observe(s->heads, &s->sh, sel, probs, PU_SCORE_ADD);
}

static int64_t ada_meta_bytes(const policy_state *s) {
    return pu_scored_meta_bytes(s->heads, s->sh.n_kv);
}

const policy_ops policy_adakv = {
    .name = "adakv",
    .summary = "L x n_kv tokens per layer shared by its KV heads: the layer's least H2O score goes",
    .flags = POLICY_LAYER_BUDGET,
    .params = params,
    .create = ada_create,
    .destroy = ada_destroy,
    .prefill = ada_prefill,
    .append = ada_append,
    .select = ada_select,
    .observe = ada_observe,
    .meta_bytes = ada_meta_bytes,
};
