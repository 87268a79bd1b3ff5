/* policy_testkit.h: a header-only mini engine for policy tests. It makes the pools, feeds a
 * policy a prompt and decode steps of small random (but attention-peaky) data, computes the
 * attention over each selection from the pool rows with the plain reference kernel, hands
 * the probabilities back through observe, and computes the dense reference of every step,
 * so tests can check each policy's invariants step by step. It also checks what every
 * policy owes the engine: selected positions resident, distinct, <= t, the current one
 * included, and their pool rows equal to the token's true key and value. */
#ifndef POLICY_TESTKIT_H
#define POLICY_TESTKIT_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn.h"
#include "metrics.h"
#include "policy.h"

static int tk_failures;
#define TK_CHECK(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                    \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            if (++tk_failures > 50) exit(1);                                                   \
        }                                                                                      \
    } while (0)

typedef struct tk_cfg {
    const char *policy;
    const char *const *params; /* "policy.key=value" entries */
    int n_params;
    int n_q, n_kv, d, budget, page_size, n_prefill, n_tokens;
    uint64_t seed;
    int layer;
    int elem_bytes; /* 0: 2 */
} tk_cfg;

typedef struct tk {
    tk_cfg c;
    const policy_ops *ops;
    policy_params prm;
    policy_config cfg;
    kv_pool **pools;   /* [n_kv] */
    policy_state *st;
    int G, N;
    float *q;          /* [N, n_q, d] */
    float *k, *v;      /* [N, n_kv, d] */
    policy_selection sel;
    float *probs;      /* [n_q, cap] */
    float *out;        /* [n_q, d] sparse output */
    float *dlogits;    /* [n_q, N] dense logits of the step (stride N) */
    float *dlse;       /* [n_q] */
    double *dlog64;    /* [n_q, N] the same logits in double, for the metrics */
    double *dlse64;    /* [n_q] */
    float *dout;       /* [n_q, d] */
    float *dprobs;     /* [n_q, N] dense probabilities exp(logit - lse) from the double ones */
    double *recall;    /* [n_q] */
    double *out_err;   /* [n_q] */
} tk;

static inline uint64_t tk_rng_next(uint64_t *s) {
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static inline double tk_uniform(uint64_t *s) { return (tk_rng_next(s) >> 11) * 0x1.0p-53; }
static inline double tk_normal(uint64_t *s) {
    double u = tk_uniform(s), v = tk_uniform(s);
    return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* Keys: noise, and one in eight tokens carries a strong component along its head's
 * "topic" direction, which every query leans towards: attention is peaky, like a model's,
 * so policies that choose well recall visibly more than those that do not. */
static inline void tk_fill_random(tk *t, uint64_t seed) {
    int d = t->c.d;
    uint64_t s = seed;
    float *u = rb_malloc(sizeof(float) * (size_t)t->c.n_kv * d);
    for (int i = 0; i < t->c.n_kv * d; i++) u[i] = (float)tk_normal(&s) / sqrtf((float)d);
    for (int i = 0; i < t->N; i++) {
        for (int g = 0; g < t->c.n_kv; g++) {
            int heavy = tk_uniform(&s) < 0.125;
            double amp = heavy ? 4.0 + 4.0 * tk_uniform(&s) : 0.0;
            for (int c = 0; c < d; c++) {
                size_t at = ((size_t)i * t->c.n_kv + g) * d + c;
                t->k[at] = (float)(tk_normal(&s) + amp * u[g * d + c] * sqrt((double)d));
                t->v[at] = (float)tk_normal(&s);
            }
        }
        for (int h = 0; h < t->c.n_q; h++) {
            int g = h / t->G;
            for (int c = 0; c < d; c++)
                t->q[((size_t)i * t->c.n_q + h) * d + c] =
                    (float)(0.7 * tk_normal(&s) + 1.5 * u[g * d + c] * sqrt((double)d));
        }
    }
    free(u);
}

/* Creates pools and the policy; fills the data from cfg.seed. Fails as the policy's create
 * or the parameter resolution fails (then nothing needs freeing). */
static inline rb_status tk_create(tk *t, const tk_cfg *c, rb_err *e) {
    memset(t, 0, sizeof *t);
    t->c = *c;
    if (!t->c.elem_bytes) t->c.elem_bytes = 2;
    t->ops = policy_find(c->policy, e);
    if (!t->ops) return RB_EINPUT;
    rb_status st = policy_params_for(t->ops, c->params, c->n_params, &t->prm, e);
    if (st) return st;
    t->G = c->n_q / c->n_kv;
    t->N = c->n_tokens;
    t->pools = rb_calloc((size_t)c->n_kv, sizeof *t->pools);
    for (int g = 0; g < c->n_kv; g++)
        t->pools[g] = kv_pool_create(c->d, c->page_size, t->c.elem_bytes);
    t->cfg = (policy_config){.layer = c->layer, .n_q_heads = c->n_q, .n_kv_heads = c->n_kv,
                             .head_dim = c->d, .budget = c->budget, .page_size = c->page_size,
                             .max_tokens = c->n_tokens, .attn_scale = 1.0f / sqrtf((float)c->d),
                             .seed = c->seed, .params = &t->prm, .pools = t->pools};
    st = t->ops->create(&t->cfg, &t->st, e);
    if (st) {
        for (int g = 0; g < c->n_kv; g++) kv_pool_destroy(t->pools[g]);
        free(t->pools);
        return st;
    }
    size_t N = (size_t)t->N, cap = N;
    t->q = rb_malloc(sizeof(float) * N * c->n_q * c->d);
    t->k = rb_malloc(sizeof(float) * N * c->n_kv * c->d);
    t->v = rb_malloc(sizeof(float) * N * c->n_kv * c->d);
    t->sel = (policy_selection){.n_q_heads = c->n_q, .group_size = t->G, .cap = (int)cap};
    t->sel.n = rb_calloc((size_t)c->n_q, sizeof(int));
    t->sel.pos = rb_malloc(sizeof(int32_t) * cap * c->n_q);
    t->sel.k = rb_malloc(sizeof(float *) * cap * c->n_q);
    t->sel.v = rb_malloc(sizeof(float *) * cap * c->n_q);
    t->probs = rb_malloc(sizeof(float) * cap * c->n_q);
    t->out = rb_malloc(sizeof(float) * (size_t)c->n_q * c->d);
    t->dlogits = rb_malloc(sizeof(float) * N * c->n_q);
    t->dlse = rb_malloc(sizeof(float) * (size_t)c->n_q);
    t->dlog64 = rb_malloc(sizeof(double) * N * c->n_q);
    t->dlse64 = rb_malloc(sizeof(double) * (size_t)c->n_q);
    t->dout = rb_malloc(sizeof(float) * (size_t)c->n_q * c->d);
    t->dprobs = rb_malloc(sizeof(float) * N * c->n_q);
    t->recall = rb_calloc((size_t)c->n_q, sizeof(double));
    t->out_err = rb_calloc((size_t)c->n_q, sizeof(double));
    tk_fill_random(t, c->seed * 7919 + 17);
    return RB_OK;
}

static inline void tk_destroy(tk *t) {
    t->ops->destroy(t->st);
    for (int g = 0; g < t->c.n_kv; g++) {
        TK_CHECK(kv_pool_pages_held(t->pools[g]) == 0, "destroy left %d pages in pool %d",
                 kv_pool_pages_held(t->pools[g]), g);
        kv_pool_destroy(t->pools[g]);
    }
    free(t->pools);
    free(t->q); free(t->k); free(t->v);
    free(t->sel.n); free(t->sel.pos); free(t->sel.k); free(t->sel.v);
    free(t->probs); free(t->out); free(t->dlogits); free(t->dlse); free(t->dlog64); free(t->dlse64); free(t->dout);
    free(t->dprobs);
    free(t->recall); free(t->out_err);
}

static inline void tk_prefill(tk *t) {
    t->ops->prefill(t->st, t->c.n_prefill, t->q, t->k, t->v);
}

/* Row of head h's set in the selection (the group's first head when shared). */
static inline int tk_row(const tk *t, int h) { return t->sel.shared_by_group ? h - h % t->G : h; }
static inline int tk_attended(const tk *t, int h) { return t->sel.n[tk_row(t, h)]; }
static inline int tk_in_sel(const tk *t, int h, int pos) {
    int r = tk_row(t, h);
    for (int j = 0; j < t->sel.n[r]; j++)
        if (t->sel.pos[(size_t)r * t->sel.cap + j] == pos) return 1;
    return 0;
}
static inline int64_t tk_kv_bytes(const tk *t) {
    int64_t b = 0;
    for (int g = 0; g < t->c.n_kv; g++) b += kv_pool_resident_bytes(t->pools[g]);
    return b;
}
static inline int64_t tk_meta_bytes(const tk *t) {
    return t->ops->meta_bytes ? t->ops->meta_bytes(t->st) : 0;
}
static inline int tk_pages_held(const tk *t, int g) { return kv_pool_pages_held(t->pools[g]); }

/* Decode position pos: append, select, check the selection, attend, observe, then the
 * dense reference and each head's recall and output error. */
static inline void tk_step(tk *t, int pos) {
    int d = t->c.d, nq = t->c.n_q, nkv = t->c.n_kv, G = t->G, cap = t->sel.cap;
    const float *qt = t->q + (size_t)pos * nq * d;
    const float *kt = t->k + (size_t)pos * nkv * d, *vt = t->v + (size_t)pos * nkv * d;
    t->ops->append(t->st, pos, kt, vt);
    /* Dense reference (the oracle reads its logits; everyone is scored against it). */
    for (int g = 0; g < nkv; g++)
        attn_dense_ref(qt + (size_t)g * G * d, G, t->k + (size_t)g * d, t->v + (size_t)g * d,
                       pos + 1, d, nkv * d, t->cfg.attn_scale, NULL, t->dlse + g * G,
                       t->dout + (size_t)g * G * d);
    for (int h = 0; h < nq; h++) {
        double m = -INFINITY, z = 0;
        for (int j = 0; j <= pos; j++) {
            double dot = 0;
            const float *kj = t->k + ((size_t)j * nkv + h / G) * d;
            for (int c = 0; c < d; c++) dot += (double)qt[(size_t)h * d + c] * kj[c];
            t->dlog64[(size_t)h * t->N + j] = dot * t->cfg.attn_scale;
            t->dlogits[(size_t)h * t->N + j] = (float)(dot * t->cfg.attn_scale);
            if (dot * t->cfg.attn_scale > m) m = dot * t->cfg.attn_scale;
        }
        for (int j = 0; j <= pos; j++) z += exp(t->dlog64[(size_t)h * t->N + j] - m);
        t->dlse64[h] = m + log(z);
    }
    policy_step step = {.pos = pos, .q = qt, .score_stride = t->N};
    if (t->ops->flags & POLICY_NEEDS_DENSE) {
        step.dense_logits = t->dlogits;
        step.dense_lse = t->dlse;
    }
    for (int h = 0; h < nq; h++) t->sel.n[h] = -1;
    t->ops->select(t->st, &step, &t->sel);
    uint8_t *seen = rb_calloc((size_t)pos + 1, 1);
    for (int h = 0; h < nq; h++) {
        if (tk_row(t, h) != h) continue;
        int n = t->sel.n[h];
        TK_CHECK(n >= 1 && n <= pos + 1, "step %d head %d: |S| = %d", pos, h, n);
        if (n < 1 || n > pos + 1) continue;
        memset(seen, 0, (size_t)pos + 1);
        for (int j = 0; j < n; j++) {
            size_t at = (size_t)h * cap + j;
            int p = t->sel.pos[at];
            TK_CHECK(p >= 0 && p <= pos, "step %d head %d: position %d", pos, h, p);
            if (p < 0 || p > pos) continue;
            TK_CHECK(!seen[p], "step %d head %d: position %d twice", pos, h, p);
            seen[p] = 1;
            const float *kr = t->k + ((size_t)p * nkv + h / G) * d;
            const float *vr = t->v + ((size_t)p * nkv + h / G) * d;
            TK_CHECK(!memcmp(t->sel.k[at], kr, sizeof(float) * d) &&
                         !memcmp(t->sel.v[at], vr, sizeof(float) * d),
                     "step %d head %d: pool rows of position %d are not its k, v", pos, h, p);
        }
        TK_CHECK(seen[pos], "step %d head %d: current position not attended", pos, h);
    }
    free(seen);
    for (int g = 0; g < nkv; g++) {
        int h0 = g * G;
        attn_gather_ref(qt + (size_t)h0 * d, G, t->sel.k + (size_t)h0 * cap,
                        t->sel.v + (size_t)h0 * cap, t->sel.n + h0, cap, t->sel.shared_by_group,
                        d, t->cfg.attn_scale, t->probs + (size_t)h0 * cap,
                        t->out + (size_t)h0 * d);
    }
    if (t->ops->observe) t->ops->observe(t->st, &step, &t->sel, t->probs);
    /* Scored as every engine scores (metrics.h), against this kit's double reference. */
    for (int h = 0; h < nq; h++)
        for (int j = 0; j <= pos; j++)
            t->dprobs[(size_t)h * t->N + j] =
                (float)exp(t->dlog64[(size_t)h * t->N + j] - t->dlse64[h]);
    step_metrics sm = {.recall = t->recall, .out_err = t->out_err};
    metrics_score_step(&t->sel, t->out, t->dprobs, t->N, 0, t->dout, d, &sm);
}

/* Mean recall over the query heads of the last step. */
static inline double tk_mean_recall(const tk *t) {
    double s = 0;
    for (int h = 0; h < t->c.n_q; h++) s += t->recall[h];
    return s / t->c.n_q;
}

/* ---- a direct driver for hand-worked examples: one KV head, one query head, head_dim 2,
 * attention probabilities given by hand (by position) instead of computed. Key row i is
 * (i, 1), so a selection's rows can be checked against their positions. ---- */
typedef struct drv {
    const policy_ops *ops;
    policy_params prm;
    kv_pool *pool;
    policy_state *st;
    policy_selection sel;
    float probs[64];
    int n_pos[1];
    int32_t pos[64];
    const float *kr[64], *vr[64];
    float k[64][2], v[64][2];
} drv;

/* param, param2: "policy.key=value" entries or NULL. */
static inline void drv_create(drv *d, const char *policy, const char *param, const char *param2,
                              int L, int P) {
    memset(d, 0, sizeof *d);
    rb_err e = {0};
    d->ops = policy_find(policy, &e);
    const char *kv[2];
    int n_kv = 0;
    if (param) kv[n_kv++] = param;
    if (param2) kv[n_kv++] = param2;
    RB_CHECK(policy_params_for(d->ops, kv, n_kv, &d->prm, &e) == RB_OK);
    d->pool = kv_pool_create(2, P, 2);
    policy_config cfg = {.n_q_heads = 1, .n_kv_heads = 1, .head_dim = 2, .budget = L,
                         .page_size = P, .max_tokens = 64, .attn_scale = 1, .params = &d->prm,
                         .pools = &d->pool};
    RB_CHECK(d->ops->create(&cfg, &d->st, &e) == RB_OK);
    d->sel = (policy_selection){.n_q_heads = 1, .group_size = 1, .cap = 64, .n = d->n_pos,
                                .pos = d->pos, .k = d->kr, .v = d->vr};
    for (int i = 0; i < 64; i++) {
        d->k[i][0] = (float)i;
        d->k[i][1] = 1;
        d->v[i][0] = (float)-i;
        d->v[i][1] = 2;
    }
}

/* Prompt of n tokens with zero queries: every causal row is uniform, so key j's initial
 * score is sum_{i=j}^{n-1} 1/(i+1). */
static inline void drv_prefill(drv *d, int n) {
    float q[64][2] = {{0}};
    d->ops->prefill(d->st, n, &q[0][0], &d->k[0][0], &d->v[0][0]);
}

/* Append pos, select, compare with the expected set want[0..n_want), then observe with
 * attention probs[p] for each position p of the set (p indexes a 64-entry table). */
static inline void drv_step(drv *d, int pos, const int *want, int n_want, const double *prob_of) {
    d->ops->append(d->st, pos, d->k[pos], d->v[pos]);
    float q[2] = {0, 0};
    policy_step step = {.pos = pos, .q = q};
    d->ops->select(d->st, &step, &d->sel);
    int n = d->sel.n[0];
    TK_CHECK(n == n_want, "step %d: |S| = %d, want %d", pos, n, n_want);
    for (int i = 0; i < n_want; i++) {
        int found = 0;
        for (int j = 0; j < n; j++) found |= d->sel.pos[j] == want[i];
        TK_CHECK(found, "step %d: position %d should be kept", pos, want[i]);
    }
    for (int j = 0; j < n; j++) {
        TK_CHECK(d->sel.k[j][0] == (float)d->sel.pos[j], "step %d: row of %d", pos, d->sel.pos[j]);
        d->probs[j] = prob_of ? (float)prob_of[d->sel.pos[j]] : 0.0f;
    }
    if (d->ops->observe) d->ops->observe(d->st, &step, &d->sel, d->probs);
}

static inline void drv_destroy(drv *d) {
    d->ops->destroy(d->st);
    TK_CHECK(kv_pool_pages_held(d->pool) == 0, "pages given back");
    kv_pool_destroy(d->pool);
}

#endif
