/* policy_testkit.h: a header-only mini engine for policy tests. It makes the pools, feeds a
 * policy a prompt and decode steps of small random (but attention-peaky) data, computes the
 * attention over each selection from the pool rows with the plain reference kernel, hands
 * the probabilities back through observe, computes the dense reference of every step (the
 * tests' own, in double) and scores the step through metrics.h, the one definition of
 * recall and out_err the engine uses.
 *
 * At every step it checks what every policy owes the engine (policy.h), reading the pools
 * rather than trusting the policy: each attended position is distinct, <= t, held in the
 * pool (kv_pool_holds_row) with the token's true key and value, and the current one is
 * included; resident tokens stay within the budget (exactly all of them for
 * POLICY_KEEPS_ALL, the prompt on top for POLICY_PINS_PROMPT, summed over the KV heads for
 * POLICY_LAYER_BUDGET); pool bytes are the pages
 * held times the page bytes; every prompt token is resident after prefill; destroy gives
 * back every page. A broken rule is recorded in tk.violated (TK_INV_*) and fails the test,
 * unless tk_cfg.expect_broken is set (a test of these checks themselves). */
#ifndef POLICY_TESTKIT_H
#define POLICY_TESTKIT_H

#include "testutil.h" /* first: it sets the POSIX level */

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

/* The rules tk_step and friends check, one bit each in tk.violated. */
enum {
    TK_INV_SET = 1u << 0,      /* |S_h| in 1..t+1, every position in 0..t */
    TK_INV_DUP = 1u << 1,      /* a position twice in one set */
    TK_INV_CURRENT = 1u << 2,  /* the current position missing */
    TK_INV_ROWS = 1u << 3,     /* a selected row is not the token's key and value */
    TK_INV_RESIDENT = 1u << 4, /* a selected row is not held in the pool, or |S_h| exceeds
                                  the tokens held */
    TK_INV_BUDGET = 1u << 5,   /* more tokens resident than the budget allows, or a
                                  POLICY_KEEPS_ALL policy lost one */
    TK_INV_BYTES = 1u << 6,    /* pool bytes not pages x page bytes, more tokens than the
                                  pages' slots, or negative meta_bytes */
    TK_INV_PREFILL = 1u << 7,  /* a prompt token not resident after prefill */
    TK_INV_DESTROY = 1u << 8,  /* pages left in a pool after destroy */
};

typedef struct tk_cfg {
    const char *policy;
    const policy_ops *ops; /* a table to run instead of looking `policy` up (unregistered) */
    const char *const *params; /* "policy.key=value" entries */
    int n_params;
    int n_q, n_kv, d, budget, page_size, n_prefill, n_tokens;
    uint64_t seed;
    int layer;
    int elem_bytes; /* 0: 2 */
    int expect_broken; /* record broken rules in tk.violated without failing the test */
    const uint8_t *separator; /* [n_tokens] passed as policy_config.separator; NULL: the kit
                                 plants one in five for a policy that needs separators
                                 (POLICY_NEEDS_SEPARATORS), unless without_separators */
    int without_separators;   /* pass NULL even to a policy that needs separators */
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
    double *dlog64;    /* [n_q, N] the same logits in double: the reference */
    float *dprobs;     /* [n_q, N] dense probabilities exp(logit - lse), for the metrics */
    float *dout;       /* [n_q, d] */
    double *recall;    /* [n_q] of the last step (metrics_score_step) */
    double *out_err;   /* [n_q] */
    double attended;   /* mean |S_h| of the last step */
    unsigned violated; /* TK_INV_* rules broken so far */
    uint8_t *own_sep;  /* [N] the separators the kit planted, or NULL */
} tk;

/* Record a broken rule of the policy under test (see the top of this file). */
#define TK_RULE(t, inv, cond, ...)                                                             \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            (t)->violated |= (inv);                                                            \
            if (!(t)->c.expect_broken) TK_CHECK(cond, __VA_ARGS__);                            \
        }                                                                                      \
    } while (0)

/* Keys: noise, and one in eight tokens carries a strong component along its head's
 * "topic" direction, which every query leans towards: attention is peaky, like a model's,
 * so policies that choose well recall visibly more than those that do not. */
static inline void tk_fill_random(tk *t, uint64_t seed) {
    int d = t->c.d;
    uint64_t s = seed;
    float *u = rb_malloc(sizeof(float) * (size_t)t->c.n_kv * d);
    for (int i = 0; i < t->c.n_kv * d; i++) u[i] = (float)tu_randn(&s) / sqrtf((float)d);
    for (int i = 0; i < t->N; i++) {
        for (int g = 0; g < t->c.n_kv; g++) {
            int heavy = tu_uniform(&s) < 0.125;
            double amp = heavy ? 4.0 + 4.0 * tu_uniform(&s) : 0.0;
            for (int c = 0; c < d; c++) {
                size_t at = ((size_t)i * t->c.n_kv + g) * d + c;
                t->k[at] = (float)(tu_randn(&s) + amp * u[g * d + c] * sqrt((double)d));
                t->v[at] = (float)tu_randn(&s);
            }
        }
        for (int h = 0; h < t->c.n_q; h++) {
            int g = h / t->G;
            for (int c = 0; c < d; c++)
                t->q[((size_t)i * t->c.n_q + h) * d + c] =
                    (float)(0.7 * tu_randn(&s) + 1.5 * u[g * d + c] * sqrt((double)d));
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
    t->ops = c->ops ? c->ops : policy_find(c->policy, e);
    if (!t->ops) return RB_EINPUT;
    t->c.policy = t->ops->name;
    rb_status st = policy_params_for(t->ops, c->params, c->n_params, &t->prm, e);
    if (st) return st;
    t->G = c->n_q / c->n_kv;
    t->N = c->n_tokens;
    const uint8_t *sep = c->separator;
    if (!sep && !c->without_separators && (t->ops->flags & POLICY_NEEDS_SEPARATORS)) {
        uint64_t r = c->seed ^ 0x5e9u;
        t->own_sep = rb_malloc((size_t)t->N);
        for (int i = 0; i < t->N; i++) t->own_sep[i] = tu_uniform(&r) < 0.2;
        sep = t->own_sep;
    }
    t->pools = rb_calloc((size_t)c->n_kv, sizeof *t->pools);
    for (int g = 0; g < c->n_kv; g++)
        t->pools[g] = kv_pool_create(c->d, c->page_size, t->c.elem_bytes);
    t->cfg = (policy_config){.layer = c->layer, .n_q_heads = c->n_q, .n_kv_heads = c->n_kv,
                             .head_dim = c->d, .budget = c->budget, .page_size = c->page_size,
                             .max_tokens = c->n_tokens, .attn_scale = 1.0f / sqrtf((float)c->d),
                             .seed = c->seed, .params = &t->prm, .pools = t->pools,
                             .separator = sep};
    st = t->ops->create(&t->cfg, &t->st, e);
    if (st) {
        free(t->own_sep);
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
    t->dprobs = rb_malloc(sizeof(float) * N * c->n_q);
    t->dout = rb_malloc(sizeof(float) * (size_t)c->n_q * c->d);
    t->recall = rb_calloc((size_t)c->n_q, sizeof(double));
    t->out_err = rb_calloc((size_t)c->n_q, sizeof(double));
    tk_fill_random(t, c->seed * 7919 + 17);
    return RB_OK;
}

/* Destroys the policy (checking that every page came back) and the pools. */
static inline void tk_destroy(tk *t) {
    t->ops->destroy(t->st);
    for (int g = 0; g < t->c.n_kv; g++) {
        TK_RULE(t, TK_INV_DESTROY, kv_pool_pages_held(t->pools[g]) == 0,
                "%s: destroy left %d pages in pool %d", t->c.policy,
                kv_pool_pages_held(t->pools[g]), g);
        kv_pool_destroy(t->pools[g]);
    }
    free(t->pools);
    free(t->q); free(t->k); free(t->v);
    free(t->sel.n); free(t->sel.pos); free(t->sel.k); free(t->sel.v);
    free(t->probs); free(t->out); free(t->dlogits); free(t->dlse); free(t->dlog64); free(t->dprobs); free(t->dout);
    free(t->recall); free(t->out_err);
    free(t->own_sep);
}

/* The most tokens a KV head may hold after an append (policy.h): L, or with
 * POLICY_PINS_PROMPT the prompt's pages on top of L; everything for POLICY_KEEPS_ALL (checked
 * exactly). */
static inline int tk_resident_bound(const tk *t) {
    int L = t->c.budget, P = t->c.page_size;
    return (t->ops->flags & POLICY_PINS_PROMPT) ? L + P * ((t->c.n_prefill + P - 1) / P) : L;
}

/* Pool bookkeeping after prefill or append at position pos: tokens within the budget,
 * bytes equal to whole pages, bookkeeping bytes not negative. */
static inline void tk_check_pools(tk *t, int pos) {
    const char *nm = t->c.policy;
    int P = t->c.page_size, d = t->c.d;
    for (int g = 0; g < t->c.n_kv; g++) {
        const kv_pool *pl = t->pools[g];
        int held = kv_pool_tokens_held(pl), pages = kv_pool_pages_held(pl);
        if (t->ops->flags & POLICY_KEEPS_ALL)
            TK_RULE(t, TK_INV_BUDGET, held == pos + 1,
                    "%s step %d KV head %d: keeps everything, yet holds %d tokens", nm, pos, g,
                    held);
        else if (pos >= t->c.n_prefill && !(t->ops->flags & POLICY_LAYER_BUDGET))
            /* a long prompt is evicted from the first append */
            TK_RULE(t, TK_INV_BUDGET, held <= tk_resident_bound(t),
                    "%s step %d KV head %d: %d tokens resident, budget L=%d allows %d", nm, pos,
                    g, held, t->c.budget, tk_resident_bound(t));
        int64_t page_floats = (int64_t)P * d * 2;
        TK_RULE(t, TK_INV_BYTES,
                kv_pool_resident_bytes(pl) == pages * page_floats * t->c.elem_bytes &&
                    kv_pool_allocated_bytes(pl) == pages * page_floats * (int64_t)sizeof(float),
                "%s step %d KV head %d: pool bytes %lld are not %d pages x %d bytes", nm, pos, g,
                (long long)kv_pool_resident_bytes(pl), pages, P * d * 2 * t->c.elem_bytes);
        TK_RULE(t, TK_INV_BYTES, (int64_t)pages * P >= held,
                "%s step %d KV head %d: %d pages hold %d tokens", nm, pos, g, pages, held);
    }
    if ((t->ops->flags & POLICY_LAYER_BUDGET) && pos >= t->c.n_prefill) {
        int held = 0;
        for (int g = 0; g < t->c.n_kv; g++) held += kv_pool_tokens_held(t->pools[g]);
        TK_RULE(t, TK_INV_BUDGET, held <= t->c.budget * t->c.n_kv,
                "%s step %d: %d tokens resident over the layer, budget L=%d x %d KV heads", nm,
                pos, held, t->c.budget, t->c.n_kv);
    }
    TK_RULE(t, TK_INV_BYTES, !t->ops->meta_bytes || t->ops->meta_bytes(t->st) >= 0,
            "%s step %d: meta_bytes %lld", nm, pos, (long long)t->ops->meta_bytes(t->st));
}

/* The prompt; afterwards every prompt token is resident. */
static inline void tk_prefill(tk *t) {
    int n = t->c.n_prefill;
    t->ops->prefill(t->st, n, t->q, t->k, t->v);
    for (int g = 0; g < t->c.n_kv; g++)
        TK_RULE(t, TK_INV_PREFILL, kv_pool_tokens_held(t->pools[g]) == n,
                "%s: %d of the %d prompt tokens resident in KV head %d", t->c.policy,
                kv_pool_tokens_held(t->pools[g]), n, g);
    if (n > 0) tk_check_pools(t, n - 1);
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

/* Decode position pos: append, the dense reference, the pools checked, select, the
 * selection checked, attend over it, observe, and the step scored (t->recall, t->out_err,
 * t->attended). A selection attention cannot read (sizes or positions out of range) ends
 * the step after the checks. */
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
        double *lg = t->dlog64 + (size_t)h * t->N, m = -INFINITY, z = 0;
        for (int j = 0; j <= pos; j++) {
            double dot = 0;
            const float *kj = t->k + ((size_t)j * nkv + h / G) * d;
            for (int c = 0; c < d; c++) dot += (double)qt[(size_t)h * d + c] * kj[c];
            lg[j] = dot * t->cfg.attn_scale;
            t->dlogits[(size_t)h * t->N + j] = (float)lg[j];
            if (lg[j] > m) m = lg[j];
        }
        for (int j = 0; j <= pos; j++) z += exp(lg[j] - m);
        double lse = m + log(z);
        for (int j = 0; j <= pos; j++) t->dprobs[(size_t)h * t->N + j] = (float)exp(lg[j] - lse);
    }
    tk_check_pools(t, pos);
    policy_step step = {.pos = pos, .q = qt, .score_stride = t->N};
    if (t->ops->flags & POLICY_NEEDS_DENSE) {
        step.dense_logits = t->dlogits;
        step.dense_lse = t->dlse;
    }
    for (int h = 0; h < nq; h++) t->sel.n[h] = -1;
    t->ops->select(t->st, &step, &t->sel);
    const char *nm = t->c.policy;
    uint8_t *seen = rb_calloc((size_t)pos + 1, 1);
    int unusable = 0; /* a set attention cannot read: the step ends after the checks */
    for (int h = 0; h < nq; h++) {
        if (tk_row(t, h) != h) continue;
        int n = t->sel.n[h], g = h / G;
        TK_RULE(t, TK_INV_SET, n >= 1 && n <= pos + 1, "%s step %d head %d: |S| = %d", nm, pos,
                h, n);
        if (n < 1 || n > pos + 1) {
            unusable = 1;
            continue;
        }
        TK_RULE(t, TK_INV_RESIDENT, n <= kv_pool_tokens_held(t->pools[g]),
                "%s step %d head %d: |S| = %d, but %d tokens resident", nm, pos, h, n,
                kv_pool_tokens_held(t->pools[g]));
        memset(seen, 0, (size_t)pos + 1);
        for (int j = 0; j < n; j++) {
            size_t at = (size_t)h * cap + j;
            int p = t->sel.pos[at];
            TK_RULE(t, TK_INV_SET, p >= 0 && p <= pos, "%s step %d head %d: position %d", nm,
                    pos, h, p);
            if (p < 0 || p > pos) {
                unusable = 1;
                continue;
            }
            TK_RULE(t, TK_INV_DUP, !seen[p], "%s step %d head %d: position %d twice", nm, pos, h,
                    p);
            seen[p] = 1;
            int held = kv_pool_holds_row(t->pools[g], t->sel.k[at]);
            TK_RULE(t, TK_INV_RESIDENT, held,
                    "%s step %d head %d: the row of position %d is not held in the pool", nm,
                    pos, h, p);
            if (!held) continue; /* its memory may be gone: not read */
            const float *kr = t->k + ((size_t)p * nkv + g) * d;
            const float *vr = t->v + ((size_t)p * nkv + g) * d;
            TK_RULE(t, TK_INV_ROWS,
                    !memcmp(t->sel.k[at], kr, sizeof(float) * d) &&
                        !memcmp(t->sel.v[at], vr, sizeof(float) * d),
                    "%s step %d head %d: pool rows of position %d are not its k, v", nm, pos, h, p);
        }
        TK_RULE(t, TK_INV_CURRENT, seen[pos], "%s step %d head %d: current position not attended",
                nm, pos, h);
    }
    free(seen);
    if (unusable) return;
    for (int g = 0; g < nkv; g++) {
        int h0 = g * G;
        attn_gather_ref(qt + (size_t)h0 * d, G, t->sel.k + (size_t)h0 * cap,
                        t->sel.v + (size_t)h0 * cap, t->sel.n + h0, cap, t->sel.shared_by_group,
                        d, t->cfg.attn_scale, t->probs + (size_t)h0 * cap,
                        t->out + (size_t)h0 * d);
    }
    if (t->ops->observe) t->ops->observe(t->st, &step, &t->sel, t->probs);
    step_metrics m = {.recall = t->recall, .out_err = t->out_err};
    metrics_score_step(&t->sel, t->out, t->dprobs, t->N, 0, t->dout, d, &m);
    t->attended = m.attended;
}

/* ---- the random runs of the policies' own tests ---- */

/* A run of `policy` on random GQA data (tk_fill_random) in the shape the policies' own tests
 * use, head_dim 8 and pages of 8, with at most one parameter (NULL: the defaults): created
 * and its prompt stored. A refusal stops the test. */
static inline void tk_start(tk *t, const char *policy, const char *param, int L, int n_prefill,
                            int n_q, int n_kv, int n_tokens, uint64_t seed) {
    const char *kv[] = {param};
    tk_cfg c = {.policy = policy, .params = kv, .n_params = param ? 1 : 0, .n_q = n_q,
                .n_kv = n_kv, .d = 8, .budget = L, .page_size = 8, .n_prefill = n_prefill,
                .n_tokens = n_tokens, .seed = seed};
    rb_err e = {0};
    if (tk_create(t, &c, &e) != RB_OK)
        rb_die(__FILE__, __LINE__, "%s %s: %s: %s", policy, param ? param : "", e.what, e.why);
    tk_prefill(t);
}

/* `param` ("policy.key=value") is refused at create: RB_EINPUT with e.what naming the key. */
static inline void tk_expect_refused(const char *policy, const char *param) {
    tk_cfg c = {.policy = policy, .params = (const char *[]){param}, .n_params = 1, .n_q = 2,
                .n_kv = 1, .d = 8, .budget = 32, .page_size = 8, .n_prefill = 4, .n_tokens = 40,
                .seed = 1};
    tk t;
    rb_err e = {0};
    char key[96];
    snprintf(key, sizeof key, "%.*s", (int)strcspn(param, "="), param);
    rb_status st = tk_create(&t, &c, &e);
    if (st == RB_OK) tk_destroy(&t);
    TK_CHECK(st == RB_EINPUT && strstr(e.what, key), "%s accepted or badly refused: %s: %s",
             param, e.what, e.why);
}

/* Decode every step left of a run (tk_start) under a policy that, once full, evicts `drop`
 * tokens at once (snapkv and rkv: C; lazyeviction: W). At each step: every query head
 * attends at most L tokens; the `recent` newest positions are attended; the count grows by
 * one or falls from L to L - drop + 1 (a batch); the resident bytes stay within ceil(L/P)
 * pages per KV head, or the first step's when a long prompt's survivors hold more. Returns
 * the batches. */
static inline int tk_run_batched(tk *t, int drop, int recent) {
    int L = t->c.budget, prev = -1, batches = 0;
    int64_t first = -1;
    int64_t page_bytes = (int64_t)t->c.page_size * t->c.d * t->c.elem_bytes * 2;
    int64_t bound = (int64_t)t->c.n_kv * ((L + t->c.page_size - 1) / t->c.page_size) * page_bytes;
    for (int pos = t->c.n_prefill; pos < t->c.n_tokens; pos++) {
        tk_step(t, pos);
        int n = tk_attended(t, 0);
        for (int h = 0; h < t->c.n_q; h++) {
            TK_CHECK(tk_attended(t, h) <= L, "%s L=%d step %d: %d attended", t->c.policy, L, pos,
                     tk_attended(t, h));
            for (int j = pos - recent; j <= pos; j++)
                if (j >= 0)
                    TK_CHECK(tk_in_sel(t, h, j), "%s L=%d step %d: recent %d missing",
                             t->c.policy, L, pos, j);
        }
        if (prev >= 0) {
            TK_CHECK(n == prev + 1 || (prev == L && n == L - drop + 1), "%s L=%d step %d: %d -> %d",
                     t->c.policy, L, pos, prev, n);
            batches += prev == L;
        }
        prev = n;
        if (pos == t->c.n_prefill) first = tk_kv_bytes(t);
        TK_CHECK(tk_kv_bytes(t) <= (first > bound ? first : bound),
                 "%s L=%d step %d: %lld resident bytes > %lld", t->c.policy, L, pos,
                 (long long)tk_kv_bytes(t), (long long)(first > bound ? first : bound));
    }
    return batches;
}

/* Every choice of every choice parameter of ops but its default, as "policy.key=choice"
 * entries in out[0..n) (n returned, at most cap): the variants a test runs besides the
 * defaults, read from the parameter specs. */
typedef char tk_entry[96];
static inline int tk_choice_entries(const policy_ops *ops, tk_entry *out, int cap) {
    int n = 0;
    for (const policy_param_spec *sp = ops->params; sp && sp->key; sp++) {
        if (sp->type != PARAM_CHOICE) continue;
        for (const char *c = sp->choices; *c;) {
            const char *bar = strchr(c, '|');
            int len = bar ? (int)(bar - c) : (int)strlen(c);
            if (strncmp(c, sp->def, (size_t)len) || sp->def[len]) {
                RB_CHECK(n < cap);
                snprintf(out[n++], sizeof out[0], "%s.%s=%.*s", ops->name, sp->key, len, c);
            }
            c = bar ? bar + 1 : c + len;
        }
    }
    return n;
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
