/* test_policy_contract.c: what policy.h asks of every policy, checked on every registered
 * one (policy_list(); no policy is named here, so a new policy is checked by registering it).
 *
 * Each policy runs through the test kit (tests/policy_testkit.h), whose rules read the
 * pools: attended sets distinct, within 0..t, held in the pool with the true rows, the
 * current position included; resident tokens within the budget (all of them for
 * POLICY_KEEPS_ALL, the prompt on top for POLICY_PINS_PROMPT); pool bytes equal to the pages
 * held times the page bytes; the prompt resident after prefill; every page back after
 * destroy. On top, here: budgets below the smallest the policy accepts are refused with
 * RB_EINPUT and a message naming L, and two runs with the same seed make the same choices.
 * Shapes: MHA and GQA, page sizes 4 to 16, budgets from the smallest accepted up, prompts
 * shorter and longer than L, every choice of every choice parameter.
 *
 * Then the checks themselves: policies broken on purpose (wrappers around registered ones,
 * picked by their flags) must each be caught by the rule they break. */
#include "policy_testkit.h"

/* The contract's own rule, beside the kit's TK_INV_*: two runs, the same choices. */
enum { CT_NONDET = 1u << 16 };

typedef struct shape {
    int n_q, n_kv, d, P, elem_bytes;
} shape;

static const shape shapes[] = {
    {2, 2, 8, 4, 2},   /* MHA, small pages */
    {4, 1, 16, 16, 2}, /* GQA: one KV head for four query heads, pages of 16 */
    {8, 2, 8, 8, 4},   /* GQA over two KV heads, bytes counted at fp32 */
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0], DECODE_STEPS = 80 };

static tk_cfg cfg_of(const policy_ops *ops, const shape *sh, int L, int n_prefill,
                     const char *param, int expect_broken) {
    static const char *kv[1];
    kv[0] = param;
    return (tk_cfg){.ops = ops, .params = kv, .n_params = param ? 1 : 0, .n_q = sh->n_q,
                    .n_kv = sh->n_kv, .d = sh->d, .budget = L, .page_size = sh->P,
                    .n_prefill = n_prefill, .n_tokens = n_prefill + DECODE_STEPS, .seed = 17,
                    .layer = 1, .elem_bytes = sh->elem_bytes, .expect_broken = expect_broken};
}

/* The smallest budget ops accepts on this shape; every smaller one must be refused with
 * RB_EINPUT and a message naming it (policy.h, create). */
static int smallest_budget(const policy_ops *ops, const shape *sh) {
    for (int L = 0; L <= 8 * sh->P + 64; L++) {
        tk_cfg c = cfg_of(ops, sh, L, 4, NULL, 0);
        tk t;
        rb_err e = {0};
        if (tk_create(&t, &c, &e) == RB_OK) {
            tk_destroy(&t);
            return L;
        }
        char lbuf[32];
        snprintf(lbuf, sizeof lbuf, "L=%d", L);
        TK_CHECK(e.status == RB_EINPUT && strstr(e.why, lbuf),
                 "%s P=%d: budget %d refused without RB_EINPUT naming it: %s", ops->name, sh->P,
                 L, e.why);
    }
    TK_CHECK(0, "%s P=%d: no budget up to %d accepted", ops->name, sh->P, 8 * sh->P + 64);
    return -1;
}

/* Same choices in a and b at the step just taken: sets, pool use, bookkeeping, scores. */
static int same_step(const tk *a, const tk *b) {
    if (a->sel.shared_by_group != b->sel.shared_by_group) return 0;
    for (int h = 0; h < a->c.n_q; h++) {
        int r = tk_row(a, h), n = a->sel.n[r];
        if (n != b->sel.n[r]) return 0;
        const int32_t *pa = a->sel.pos + (size_t)r * a->sel.cap;
        const int32_t *pb = b->sel.pos + (size_t)r * b->sel.cap;
        if (n > 0 && memcmp(pa, pb, sizeof(int32_t) * (size_t)n)) return 0;
    }
    for (int g = 0; g < a->c.n_kv; g++)
        if (kv_pool_tokens_held(a->pools[g]) != kv_pool_tokens_held(b->pools[g]) ||
            kv_pool_pages_held(a->pools[g]) != kv_pool_pages_held(b->pools[g]))
            return 0;
    return tk_meta_bytes(a) == tk_meta_bytes(b) &&
           !memcmp(a->recall, b->recall, sizeof(double) * (size_t)a->c.n_q) &&
           !memcmp(a->out_err, b->out_err, sizeof(double) * (size_t)a->c.n_q);
}

static int n_cases, n_steps;

/* Two runs of one case in lockstep; returns the rules broken (TK_INV_*, CT_NONDET). */
static unsigned run_case(const policy_ops *ops, const shape *sh, int L, int n_prefill,
                         const char *param, int expect_broken) {
    tk_cfg c = cfg_of(ops, sh, L, n_prefill, param, expect_broken);
    tk a, b;
    rb_err e = {0};
    if (tk_create(&a, &c, &e) != RB_OK) {
        TK_CHECK(0, "%s %s L=%d P=%d: refused a budget >= the smallest it accepts: %s",
                 ops->name, param ? param : "", L, sh->P, e.why);
        return 0;
    }
    RB_CHECK(tk_create(&b, &c, &e) == RB_OK);
    tk_prefill(&a), tk_prefill(&b);
    unsigned broken = 0;
    for (int pos = n_prefill; pos < c.n_tokens; pos++) {
        tk_step(&a, pos), tk_step(&b, pos);
        n_steps++;
        if (!same_step(&a, &b)) {
            broken |= CT_NONDET;
            if (!expect_broken)
                TK_CHECK(0, "%s %s L=%d P=%d prompt %d step %d: two runs with the same seed "
                         "chose differently", ops->name, param ? param : "", L, sh->P,
                         n_prefill, pos);
        }
    }
    tk_destroy(&a), tk_destroy(&b);
    n_cases++;
    return broken | a.violated | b.violated;
}

/* Every shape, budgets from the smallest accepted up, prompts shorter and longer than L. */
static void check_policy(const policy_ops *ops, const char *param) {
    for (int i = 0; i < N_SHAPES; i++) {
        const shape *sh = &shapes[i];
        int Lmin = smallest_budget(ops, sh);
        if (Lmin < 0) continue;
        const int budgets[] = {Lmin, Lmin + sh->P + 1, Lmin + 40};
        for (int b = 0; b < 3; b++) {
            int L = budgets[b] > 0 ? budgets[b] : 1; /* a prompt "shorter than 0" is none */
            run_case(ops, sh, budgets[b], L / 2, param, 0);
            run_case(ops, sh, budgets[b], L + sh->P + 3, param, 0);
        }
    }
}

/* Every other choice of every choice parameter of ops (the defaults already ran). */
static void check_choices(const policy_ops *ops) {
    tk_entry choices[16];
    int n = tk_choice_entries(ops, choices, 16);
    for (int i = 0; i < n; i++) check_policy(ops, choices[i]);
}

/* ---- the checks, checked: policies broken on purpose ---- */

typedef enum {
    BREAK_NONE,
    BREAK_DUP,          /* the first entry of the first set repeated */
    BREAK_DROP_CURRENT, /* the current position left out */
    BREAK_FUTURE,       /* a position after t */
    BREAK_FOREIGN_ROW,  /* a row with the right numbers, not in the pool */
    BREAK_SWAP_ROWS,    /* two entries' rows exchanged */
    BREAK_PREFILL,      /* the last prompt token stored late, at the first append */
    BREAK_LEAK,         /* an extra page taken and never given back */
    BREAK_META,         /* negative bookkeeping bytes */
    BREAK_NONDET,       /* the second instance leaves a token out */
} breakage;

static const policy_ops *inner;
static breakage brk;
static int n_wrapped;

/* The wrapper's state: the inner policy's, and what the breakage needs. */
struct policy_state {
    void *in; /* the inner policy's state */
    int instance, d, n_kv, late; /* late: the position BREAK_PREFILL holds back, or -1 */
    kv_pool *pool0;
    float k[64], v[64];   /* BREAK_FOREIGN_ROW: copies of a selected key and value row */
    float *late_k, *late_v; /* [n_kv, d] BREAK_PREFILL: the held-back token's rows */
};

static rb_status w_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    policy_state *w = rb_calloc(1, sizeof *w);
    policy_state *in = NULL;
    rb_status st = inner->create(cfg, &in, e);
    if (st) {
        free(w);
        return st;
    }
    w->in = in;
    w->instance = n_wrapped++;
    w->pool0 = cfg->pools[0];
    w->d = cfg->head_dim;
    w->n_kv = cfg->n_kv_heads;
    w->late = -1;
    w->late_k = rb_malloc(sizeof(float) * (size_t)w->n_kv * w->d);
    w->late_v = rb_malloc(sizeof(float) * (size_t)w->n_kv * w->d);
    RB_CHECK(w->d <= 64);
    *out = w;
    return RB_OK;
}

static void w_destroy(policy_state *w) {
    inner->destroy(w->in);
    free(w->late_k), free(w->late_v);
    free(w);
}

static void w_prefill(policy_state *w, int n, const float *q, const float *k, const float *v) {
    if (brk == BREAK_PREFILL && n > 0) {
        size_t row = (size_t)w->n_kv * w->d;
        w->late = n - 1;
        memcpy(w->late_k, k + (size_t)(n - 1) * row, sizeof(float) * row);
        memcpy(w->late_v, v + (size_t)(n - 1) * row, sizeof(float) * row);
        n--;
    }
    inner->prefill(w->in, n, q, k, v);
    if (brk == BREAK_LEAK) kv_pool_page_take(w->pool0);
}

static void w_append(policy_state *w, int pos, const float *k, const float *v) {
    if (w->late >= 0) inner->append(w->in, w->late, w->late_k, w->late_v);
    w->late = -1;
    inner->append(w->in, pos, k, v);
}

static void w_select(policy_state *w, const policy_step *step, policy_selection *sel) {
    inner->select(w->in, step, sel);
    int32_t *pos = sel->pos; /* the first set: query head 0's row */
    int n = sel->n[0];
    if (n < 2) return; /* breakages need two entries */
    switch (brk) {
    case BREAK_DUP:
        sel->pos[n] = pos[0], sel->k[n] = sel->k[0], sel->v[n] = sel->v[0];
        sel->n[0]++;
        break;
    case BREAK_DROP_CURRENT:
    case BREAK_NONDET:
        if (brk == BREAK_NONDET && w->instance % 2 == 0) break;
        for (int j = 0; j < n; j++)
            if (pos[j] == step->pos || brk == BREAK_NONDET) {
                pos[j] = pos[n - 1], sel->k[j] = sel->k[n - 1], sel->v[j] = sel->v[n - 1];
                sel->n[0]--;
                break;
            }
        break;
    case BREAK_FUTURE:
        pos[0] = step->pos + 1;
        break;
    case BREAK_FOREIGN_ROW:
        memcpy(w->k, sel->k[0], sizeof(float) * (size_t)w->d);
        memcpy(w->v, sel->v[0], sizeof(float) * (size_t)w->d);
        sel->k[0] = w->k, sel->v[0] = w->v;
        break;
    case BREAK_SWAP_ROWS: {
        const float *k0 = sel->k[0];
        sel->k[0] = sel->k[1], sel->k[1] = k0;
        break;
    }
    default:
        break;
    }
}

static void w_observe(policy_state *w, const policy_step *step, const policy_selection *sel,
                      const float *probs) {
    /* Only selections the policy made go back to it: a broken one ends here. */
    if (inner->observe && brk == BREAK_NONE) inner->observe(w->in, step, sel, probs);
}

static int64_t w_meta_bytes(const policy_state *w) {
    int64_t b = inner->meta_bytes ? inner->meta_bytes(w->in) : 0;
    return brk == BREAK_META ? -1 - b : b;
}

static policy_ops wrap(const policy_ops *ops, breakage how) {
    inner = ops, brk = how, n_wrapped = 0;
    policy_ops w = *ops;
    w.create = w_create, w.destroy = w_destroy, w.prefill = w_prefill, w.append = w_append;
    w.select = w_select, w.observe = w_observe, w.meta_bytes = w_meta_bytes;
    return w;
}

/* The first registered policy whose flags include `with` and exclude `without`. */
static const policy_ops *first_with(unsigned with, unsigned without) {
    int n;
    const policy_ops *const *l = policy_list(&n);
    for (int i = 0; i < n; i++)
        if ((l[i]->flags & with) == with && !(l[i]->flags & without)) return l[i];
    return NULL;
}

static void expect_caught(const char *what, const policy_ops *ops, int L, int n_prefill,
                          unsigned rule) {
    TK_CHECK(ops != NULL, "%s: no registered policy to break", what);
    if (!ops) return;
    unsigned got = run_case(ops, &shapes[2], L, n_prefill, NULL, 1);
    TK_CHECK(got & rule, "%s (%s): not caught (rules broken: %#x, want %#x)", what, ops->name,
             got, rule);
    printf("# caught: %-44s %s, rules %#x\n", what, ops->name, got);
}

static void check_the_checks(void) {
    const shape *sh = &shapes[2];
    /* Flags that lie: keeps everything but claims to evict, and the other way round. */
    const policy_ops *keeps = first_with(POLICY_KEEPS_ALL, POLICY_BUDGET_FREE);
    const policy_ops *evicts =
        first_with(0, POLICY_KEEPS_ALL | POLICY_PINS_PROMPT | POLICY_BUDGET_FREE);
    const policy_ops *pins = first_with(POLICY_PINS_PROMPT, 0);
    policy_ops lie;
    if (keeps) {
        lie = *keeps;
        lie.flags &= ~POLICY_KEEPS_ALL;
        expect_caught("keeps everything without POLICY_KEEPS_ALL", &lie, 2 * sh->P, 4,
                      TK_INV_BUDGET);
    }
    if (evicts) {
        lie = *evicts;
        lie.flags |= POLICY_KEEPS_ALL;
        expect_caught("evicts under POLICY_KEEPS_ALL", &lie, 2 * sh->P, 4, TK_INV_BUDGET);
    }
    if (pins) {
        lie = *pins;
        lie.flags &= ~POLICY_PINS_PROMPT;
        expect_caught("pins a long prompt without POLICY_PINS_PROMPT", &lie, 2 * sh->P,
                      5 * sh->P, TK_INV_BUDGET);
    }
    TK_CHECK(keeps && evicts && pins, "flags to break: keeps %p evicts %p pins %p",
             (const void *)keeps, (const void *)evicts, (const void *)pins);

    /* Wrappers around an evicting policy (the rules bite there) that break one rule each. */
    static const struct {
        breakage how;
        const char *what;
        unsigned rule;
    } cases[] = {
        {BREAK_DUP, "a position twice", TK_INV_DUP},
        {BREAK_DROP_CURRENT, "the current position left out", TK_INV_CURRENT},
        {BREAK_FUTURE, "a position after t", TK_INV_SET},
        {BREAK_FOREIGN_ROW, "a row not held in the pool", TK_INV_RESIDENT},
        {BREAK_SWAP_ROWS, "rows of other positions", TK_INV_ROWS},
        {BREAK_PREFILL, "a prompt token stored late", TK_INV_PREFILL},
        {BREAK_LEAK, "a page never given back", TK_INV_DESTROY},
        {BREAK_META, "negative meta_bytes", TK_INV_BYTES},
        {BREAK_NONDET, "two runs choosing differently", CT_NONDET},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!evicts) break;
        policy_ops w = wrap(evicts, cases[i].how);
        expect_caught(cases[i].what, &w, 2 * sh->P, 4, cases[i].rule);
    }
    brk = BREAK_NONE;
}

int main(void) {
    int n;
    const policy_ops *const *l = policy_list(&n);
    TK_CHECK(n > 0, "policies registered: %d", n);
    for (int i = 0; i < n; i++) {
        check_policy(l[i], NULL);
        check_choices(l[i]);
    }
    int cases = n_cases, steps = n_steps;
    check_the_checks();
    if (tk_failures) return 1;
    printf("# contract: %d policies, %d cases (x2 runs), %d steps: every rule held; each rule "
           "caught when broken\n", n, cases, steps);
    return 0;
}
