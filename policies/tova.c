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

typedef struct tova_entry {
    int32_t pos;  /* a resident position */
    double score; /* the latest query's attention on it, mean over the group's heads */
} tova_entry;

typedef struct tova_head {
    pu_tokens tok;
    int n, cap;      /* resident entries, capacity of the array */
    tova_entry *ent; /* [cap] ascending position */
} tova_head;

struct policy_state {
    pu_shape sh;
    int last;
    float scale;
    tova_head *heads; /* [n_kv] */
};

static rb_status tova_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "tova", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = rb_calloc((size_t)s->sh.n_kv, sizeof *s->heads);
    for (int g = 0; g < s->sh.n_kv; g++) {
        tova_head *hd = &s->heads[g];
        pu_tokens_init(&hd->tok, cfg->pools[g], cfg->max_tokens);
        hd->cap = cfg->budget + 1;
        hd->ent = rb_malloc(sizeof *hd->ent * (size_t)hd->cap);
    }
    *out = s;
    return RB_OK;
}

static void tova_destroy(policy_state *s) {
    if (!s) return;
    for (int g = 0; g < s->sh.n_kv; g++) {
        pu_tokens_free(&s->heads[g].tok);
        free(s->heads[g].ent);
    }
    free(s->heads);
    free(s);
}

static void head_push(tova_head *hd, int pos, const float *k, const float *v) {
    if (hd->n == hd->cap) { /* only a prompt longer than L gets here */
        hd->cap *= 2;
        hd->ent = rb_realloc(hd->ent, sizeof *hd->ent * (size_t)hd->cap);
    }
    pu_tokens_store(&hd->tok, pos, k, v);
    hd->ent[hd->n++] = (tova_entry){.pos = pos, .score = 0};
}

static void tova_prefill(policy_state *s, int n, const float *q, const float *k,
                         const float *v) {
    RB_CHECK(s->last == -1);
    if (n <= 0) return;
    int d = s->sh.d, G = s->sh.group;
    size_t row = (size_t)s->sh.n_kv * d;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->sh.n_kv; g++)
            head_push(&s->heads[g], i, k + i * row + (size_t)g * d, v + i * row + (size_t)g * d);
    /* Scores of a long prompt: the last prompt query's attention over the prompt, as if the
     * prompt had been attended by its last query like a decode step (in double). */
    double *lg = rb_malloc(sizeof(double) * (size_t)n);
    const float *qn = q + (size_t)(n - 1) * s->sh.n_q * d;
    for (int g = 0; g < s->sh.n_kv; g++) {
        tova_head *hd = &s->heads[g];
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
        tova_head *hd = &s->heads[g];
        while (hd->n >= s->sh.budget) {
            int w = 0; /* least score; ties: the lower position (first in order) */
            for (int i = 1; i < hd->n; i++)
                if (hd->ent[i].score < hd->ent[w].score) w = i;
            pu_tokens_drop(&hd->tok, hd->ent[w].pos);
            memmove(hd->ent + w, hd->ent + w + 1, sizeof *hd->ent * (size_t)(hd->n - w - 1));
            hd->n--;
        }
        head_push(hd, pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d);
    }
    s->last = pos;
}

static void tova_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        tova_head *hd = &s->heads[g];
        for (int i = 0; i < hd->n; i++) {
            int p = hd->ent[i].pos;
            pu_sel_add(sel, g * s->sh.group, p, pu_tokens_k(&hd->tok, p),
                       pu_tokens_v(&hd->tok, p));
        }
    }
}

static void tova_observe(policy_state *s, const policy_step *step, const policy_selection *sel,
                         const float *probs) {
    (void)step;
    int G = s->sh.group;
    for (int g = 0; g < s->sh.n_kv; g++) {
        tova_head *hd = &s->heads[g];
        int h0 = g * G;
        /* select listed the entries in order and nothing moved since: probs line up. */
        RB_CHECK(sel->shared_by_group && sel->n[h0] == hd->n);
        for (int i = 0; i < hd->n; i++) {
            RB_CHECK(sel->pos[(size_t)h0 * sel->cap + i] == hd->ent[i].pos);
            double m = 0;
            for (int h = h0; h < h0 + G; h++) m += probs[(size_t)h * sel->cap + i];
            hd->ent[i].score = m / G; /* replaced, not accumulated: TOVA looks at one query */
        }
    }
}

static int64_t tova_meta_bytes(const policy_state *s) {
    int64_t b = 0;
    for (int g = 0; g < s->sh.n_kv; g++)
        b += (int64_t)s->heads[g].n * (int64_t)(sizeof(int32_t) + sizeof(double) + sizeof(kv_slot));
    return b;
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
