/* lazyeviction.c: LazyEviction (Zhang et al., arXiv 2506.15969), lagged eviction by
 * recurrence: each token's importance is observed every step (attention above alpha times
 * uniform), and its recurrence is tracked: the step it was last important and the longest
 * interval it has gone between two important steps (its maximum recurrence interval, MRI).
 * Eviction is lagged: when the cache is full, W tokens go at once (so once full, every W
 * steps), the W most recent are protected (not yet observed long enough), and the tokens
 * that go are those most overdue: idle longest relative to their MRI, the least likely to
 * recur. A token idle for less than its MRI (a phoenix between two revivals) is kept over
 * one that never came back. Token-granular slots. See policies/README.md for which parts
 * are our reading. */
#include <math.h>
#include <string.h>

#include "policy_util.h"

static const policy_param_spec params[] = {
    {"window", PARAM_INT, "32", NULL, 1, 1 << 20,
     "W: the observation window: the W most recent tokens are protected and a full cache "
     "evicts W at once (every W steps once full); at most max(1, L/4)"},
    {"alpha", PARAM_FLOAT, "1", NULL, 0, 1e6,
     "a token is important at a step when its attention (max over the group's heads) times "
     "|S| exceeds alpha: alpha times uniform attention over the attended set"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

typedef struct lazy_head {
    pu_tokens tok;
    int n, cap;    /* resident entries, capacity */
    int32_t *pos;  /* [cap] resident positions, ascending */
    int32_t *last; /* [cap] the last step the token was important (its position at first) */
    int32_t *mri;  /* [cap] its longest interval between two important steps (0 at first) */
} lazy_head;

struct policy_state {
    pu_shape sh;
    int last, W;
    double alpha;
    float scale;
    lazy_head *heads; /* [n_kv] */
    double *score;    /* [cap] scratch */
    int *top;         /* [cap] scratch */
    int cap;
};

static rb_status lazy_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "lazyeviction", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    int L = cfg->budget;
    s->W = (int)policy_param_num(cfg->params, "window");
    if (s->W > L / 4) s->W = L / 4 > 1 ? L / 4 : 1;
    s->alpha = policy_param_num(cfg->params, "alpha");
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = rb_calloc((size_t)s->sh.n_kv, sizeof *s->heads);
    for (int g = 0; g < s->sh.n_kv; g++)
        pu_tokens_init(&s->heads[g].tok, cfg->pools[g], cfg->max_tokens);
    *out = s;
    return RB_OK;
}

static void lazy_destroy(policy_state *s) {
    if (!s) return;
    for (int g = 0; g < s->sh.n_kv; g++) {
        lazy_head *hd = &s->heads[g];
        pu_tokens_free(&hd->tok);
        free(hd->pos), free(hd->last), free(hd->mri);
    }
    free(s->heads);
    free(s->score), free(s->top);
    free(s);
}

static void push(policy_state *s, lazy_head *hd, int pos, const float *k, const float *v) {
    if (hd->n == hd->cap) {
        hd->cap = hd->cap ? 2 * hd->cap : s->sh.budget + 1;
        hd->pos = rb_realloc(hd->pos, sizeof(int32_t) * (size_t)hd->cap);
        hd->last = rb_realloc(hd->last, sizeof(int32_t) * (size_t)hd->cap);
        hd->mri = rb_realloc(hd->mri, sizeof(int32_t) * (size_t)hd->cap);
    }
    if (hd->cap > s->cap) {
        s->cap = hd->cap;
        s->score = rb_realloc(s->score, sizeof(double) * (size_t)s->cap);
        s->top = rb_realloc(s->top, sizeof(int) * (size_t)s->cap);
    }
    pu_tokens_store(&hd->tok, pos, k, v);
    int i = hd->n++;
    hd->pos[i] = pos, hd->last[i] = pos, hd->mri[i] = 0;
}

/* Importance of the entries of KV head g at step t from the group's probabilities p
 * [G, stride] over the n entries (the step's set): max over the heads, times n, above
 * alpha: the token recurs at t. */
static void recur(policy_state *s, lazy_head *hd, int t, const float *p, size_t stride, int n) {
    for (int i = 0; i < n; i++) {
        double m = 0;
        for (int h = 0; h < s->sh.group; h++)
            if (p[(size_t)h * stride + i] > m) m = p[(size_t)h * stride + i];
        if (m * n > s->alpha) {
            if (t - hd->last[i] > hd->mri[i]) hd->mri[i] = t - hd->last[i];
            hd->last[i] = t;
        }
    }
}

static void lazy_prefill(policy_state *s, int n, const float *q, const float *k,
                         const float *v) {
    RB_CHECK(s->last == -1);
    int d = s->sh.d, G = s->sh.group;
    size_t row = (size_t)s->sh.n_kv * d;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->sh.n_kv; g++)
            push(s, &s->heads[g], i, k + i * row + (size_t)g * d, v + i * row + (size_t)g * d);
    /* The prompt is observed like decode steps: query i's causal softmax over keys 0..i
     * (in double, rounded to float as the engine's probabilities are) marks what recurs at
     * step i, so a long prompt is evicted by recurrence, not in arrival order. O(n^2 d G). */
    float *p = rb_malloc(sizeof(float) * (size_t)G * (n > 0 ? n : 1));
    double *lg = rb_malloc(sizeof(double) * (n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->sh.n_kv; g++) {
            for (int h = 0; h < G; h++) {
                const float *qh = q + ((size_t)i * s->sh.n_q + g * G + h) * d;
                double mx = -INFINITY, z = 0;
                for (int j = 0; j <= i; j++) {
                    const float *kj = k + j * row + (size_t)g * d;
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += (double)qh[c] * kj[c];
                    lg[j] = dot * s->scale;
                    if (lg[j] > mx) mx = lg[j];
                }
                for (int j = 0; j <= i; j++) z += exp(lg[j] - mx);
                for (int j = 0; j <= i; j++) p[(size_t)h * n + j] = (float)(exp(lg[j] - mx) / z);
            }
            recur(s, &s->heads[g], i, p, (size_t)n, i + 1);
        }
    free(p);
    free(lg);
    s->last = n - 1;
}

/* Evict from KV head g down to L - W entries at step t: the last min(W, L - W) are
 * protected; among the others, those with the largest overdue ratio (t - last) / (MRI + 1)
 * go (ties: the lower position goes). */
static void evict(policy_state *s, int g, int t) {
    lazy_head *hd = &s->heads[g];
    int keep = s->sh.budget - s->W, prot = s->W < keep ? s->W : keep;
    if (keep < 0) keep = 0;
    int m = hd->n - prot;
    for (int i = 0; i < m; i++)
        s->score[i] = -(double)(t - hd->last[i]) / (double)(hd->mri[i] + 1);
    /* pu_topk keeps the lower index on ties; reverse so the higher position stays */
    for (int i = 0; i < m / 2; i++) {
        double x = s->score[i];
        s->score[i] = s->score[m - 1 - i], s->score[m - 1 - i] = x;
    }
    int nk = pu_topk(s->score, m, keep - prot, s->top);
    /* s->top holds reversed indices in ascending order: walk it from its end */
    int o = 0, j = nk - 1;
    for (int i = 0; i < m; i++) {
        if (j >= 0 && s->top[j] == m - 1 - i) {
            j--;
            hd->pos[o] = hd->pos[i], hd->last[o] = hd->last[i], hd->mri[o] = hd->mri[i];
            o++;
        } else {
            pu_tokens_drop(&hd->tok, hd->pos[i]);
        }
    }
    for (int i = m; i < hd->n; i++, o++)
        hd->pos[o] = hd->pos[i], hd->last[o] = hd->last[i], hd->mri[o] = hd->mri[i];
    hd->n = o;
}

static void lazy_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        lazy_head *hd = &s->heads[g];
        if (hd->n >= s->sh.budget) evict(s, g, pos);
        push(s, hd, pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d);
    }
    s->last = pos;
}

static void lazy_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        lazy_head *hd = &s->heads[g];
        for (int i = 0; i < hd->n; i++) {
            int p = hd->pos[i];
            pu_sel_add(sel, g * s->sh.group, p, pu_tokens_k(&hd->tok, p),
                       pu_tokens_v(&hd->tok, p));
        }
    }
}

static void lazy_observe(policy_state *s, const policy_step *step, const policy_selection *sel,
                         const float *probs) {
    int G = s->sh.group;
    for (int g = 0; g < s->sh.n_kv; g++) {
        lazy_head *hd = &s->heads[g];
        int h0 = g * G;
        /* select listed the entries in order and nothing moved since: probs line up */
        RB_CHECK(sel->shared_by_group && sel->n[h0] == hd->n);
        for (int i = 0; i < hd->n; i++)
            RB_CHECK(sel->pos[(size_t)h0 * sel->cap + i] == hd->pos[i]);
        recur(s, hd, step->pos, probs + (size_t)h0 * sel->cap, (size_t)sel->cap, hd->n);
    }
}

static int64_t lazy_meta_bytes(const policy_state *s) {
    int64_t b = 0; /* position, last, MRI and slot per resident token */
    for (int g = 0; g < s->sh.n_kv; g++)
        b += (int64_t)s->heads[g].n * (int64_t)(3 * sizeof(int32_t) + sizeof(kv_slot));
    return b;
}

const policy_ops policy_lazyeviction = {
    .name = "lazyeviction",
    .summary = "L tokens: when full, W go at once, the most overdue against their recurrence",
    .flags = 0,
    .params = params,
    .create = lazy_create,
    .destroy = lazy_destroy,
    .prefill = lazy_prefill,
    .append = lazy_append,
    .select = lazy_select,
    .observe = lazy_observe,
    .meta_bytes = lazy_meta_bytes,
};
