/* test_policy_contract.c: every registered policy (policy_list(), no names written here)
 * through the test kit's invariants, on several shapes and budgets: what each policy owes
 * the engine whatever it is.
 *   - the kit's per-step checks (policy_testkit.h): attended positions resident, distinct,
 *     <= t, the current one included, their pool rows the token's true k and v
 *   - budget: a policy that does not keep every token (POLICY_KEEPS_ALL) holds at most
 *     ceil(L / P) + 1 pages per KV head (the +1: a page being filled) whenever its prompt
 *     fits in half the budget; every policy but a budget-free one attends at most L + P - 1
 *     positions per head (pages count whole for paged policies), or, for a policy that
 *     declares POLICY_PINS_PROMPT, its whole prompt's pages plus the current page when the
 *     prompt is longer
 *   - memory is real: pool bytes equal pages held x page bytes, and destroy gives every page
 *     back (the kit checks at destroy)
 *   - determinism: the same seed gives the same selections at every step
 * Budgets start at the smallest each policy accepts on the shape. */
#include "policy_testkit.h"
#include "testutil.h"

typedef struct shape {
    int n_q, n_kv, d, page_size;
} shape;

/* The smallest budget the policy accepts on this shape (create succeeds), up to 256. */
static int smallest_budget(const policy_ops *ops, const shape *sh) {
    for (int L = 1; L <= 256; L++) {
        tk t;
        rb_err e = {0};
        tk_cfg c = {.policy = ops->name, .n_q = sh->n_q, .n_kv = sh->n_kv, .d = sh->d,
                    .budget = L, .page_size = sh->page_size, .n_prefill = 2, .n_tokens = 8};
        if (tk_create(&t, &c, &e) == RB_OK) {
            tk_destroy(&t);
            return L;
        }
    }
    return -1;
}

/* One run; sel_out (may be NULL) receives every step's selection, [steps, n_q, cap]. */
static void run_one(const policy_ops *ops, const shape *sh, int L, int n_prefill, int n_tokens,
                    int32_t *sel_out, int *n_out) {
    tk t;
    rb_err e = {0};
    tk_cfg c = {.policy = ops->name, .n_q = sh->n_q, .n_kv = sh->n_kv, .d = sh->d, .budget = L,
                .page_size = sh->page_size, .n_prefill = n_prefill, .n_tokens = n_tokens,
                .seed = 5};
    TU_OK(tk_create(&t, &c, &e), e);
    tk_prefill(&t);
    int P = sh->page_size, cap = t.sel.cap;
    int page_cap = (L + P - 1) / P + 1;
    int64_t page_bytes = (int64_t)P * sh->d * 2 * 2; /* K and V rows, 2-byte elements */
    int check_budget = !(ops->flags & POLICY_KEEPS_ALL) && n_prefill * 2 <= L;
    for (int pos = n_prefill; pos < n_tokens; pos++) {
        tk_step(&t, pos);
        int64_t held = 0;
        for (int g = 0; g < sh->n_kv; g++) {
            held += tk_pages_held(&t, g);
            if (check_budget)
                TU_ASSERT(tk_pages_held(&t, g) <= page_cap, "%s L=%d P=%d step %d: %d pages held "
                          "by KV head %d, at most %d", ops->name, L, P, pos, tk_pages_held(&t, g),
                          g, page_cap);
        }
        TU_ASSERT(tk_kv_bytes(&t) == held * page_bytes, "%s step %d: %lld bytes for %lld pages",
                  ops->name, pos, (long long)tk_kv_bytes(&t), (long long)held);
        int most = L + P - 1, prompt_pages = (n_prefill + P - 1) / P;
        if ((ops->flags & POLICY_PINS_PROMPT) && (prompt_pages + 1) * P > most)
            most = (prompt_pages + 1) * P;
        for (int h = 0; h < sh->n_q; h++) {
            if (!(ops->flags & POLICY_BUDGET_FREE))
                TU_ASSERT(tk_attended(&t, h) <= most, "%s L=%d step %d head %d: %d attended, "
                          "at most %d", ops->name, L, pos, h, tk_attended(&t, h), most);
            if (sel_out) {
                int r = tk_row(&t, h), n = t.sel.n[r];
                int32_t *dst = sel_out + ((size_t)(pos - n_prefill) * sh->n_q + h) * (cap + 1);
                dst[0] = n;
                memcpy(dst + 1, t.sel.pos + (size_t)r * cap, sizeof(int32_t) * (size_t)n);
            }
        }
    }
    if (n_out) *n_out = cap;
    tk_destroy(&t);
    TU_ASSERT(tk_failures == 0, "%s: the kit found %d violations (above)", ops->name, tk_failures);
}

int main(void) {
    static const shape shapes[] = {{4, 2, 8, 8}, {2, 2, 16, 4}, {8, 1, 8, 16}};
    int n_pol;
    const policy_ops *const *list = policy_list(&n_pol);
    int runs = 0;
    for (int i = 0; i < n_pol; i++) {
        const policy_ops *ops = list[i];
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const shape *sh = &shapes[s];
            int L0 = smallest_budget(ops, sh);
            TU_ASSERT(L0 > 0, "%s accepts no budget up to 256 on shape %zu", ops->name, s);
            int budgets[] = {L0, 2 * L0 + 3, 64};
            for (int b = 0; b < 3; b++) {
                int L = budgets[b] < L0 ? L0 : budgets[b];
                int N = 3 * L + 40;
                /* a prompt inside half the budget, then one longer than the budget */
                int prompts[] = {L / 2 > 0 ? L / 2 : 1, L + 5};
                for (int p = 0; p < 2; p++) {
                    size_t per = (size_t)(N - prompts[p]) * sh->n_q * (N + 1);
                    int32_t *a = rb_calloc(per, sizeof(int32_t)), *c = rb_calloc(per, sizeof(int32_t));
                    run_one(ops, sh, L, prompts[p], N, a, NULL);
                    run_one(ops, sh, L, prompts[p], N, c, NULL);
                    TU_ASSERT(!memcmp(a, c, per * sizeof(int32_t)),
                              "%s L=%d: two runs with the same seed selected differently",
                              ops->name, L);
                    free(a), free(c);
                    runs += 2;
                }
            }
        }
    }
    printf("# contract: %d policies x 3 shapes x 3 budgets x 2 prompts, %d runs\n", n_pol, runs);
    return tu_done("test_policy_contract");
}
