/* test_policy_lazyeviction.c: LazyEviction step by step. Hand-worked examples with the
 * attention given by hand (sets written from the rule: a token recurs at step t when its
 * attention times |S| exceeds alpha; when full, W tokens go at once, the W most recent
 * protected, the most overdue (t - last) / (MRI + 1) first, ties the lower position), then
 * random GQA runs with the invariants: never more than L tokens, the recent W resident, an
 * eviction exactly when full, memory bounded by L. */
#include "policy_testkit.h"

static void hand_examples(void) {
    drv d;
    double p[64] = {0};
    int all[64];
    for (int i = 0; i < 64; i++) all[i] = i;
    /* L=8: W = min(32, L/4) = 2: when full, keep 6: the last 2 and 4 of the others. */
    drv_create(&d, "lazyeviction", "lazyeviction.alpha=1.2", NULL, 8, 4);
    drv_prefill(&d, 0);
    for (int t = 0; t < 3; t++) drv_step(&d, t, all, t + 1, NULL);
    p[0] = .5, p[1] = .5; /* x4 = 2 > 1.2: 0 recurs (MRI 3), 1 recurs (MRI 2), both last 3 */
    drv_step(&d, 3, all, 4, p);
    memset(p, 0, sizeof p);
    drv_step(&d, 4, all, 5, NULL);
    drv_step(&d, 5, all, 6, NULL);
    p[0] = 1; /* 0 recurs again at 6: MRI max(3, 3) = 3, last 6 */
    drv_step(&d, 6, all, 7, p);
    drv_step(&d, 7, all, 8, NULL);
    /* t=8: full. Protected {6,7}. Overdue (8 - last) / (MRI + 1): 0: 2/4, 1: 5/3, 2: 6,
     * 3: 5, 4: 4, 5: 3. The 4 least overdue stay: 0, 1, 5, 4; 2 and 3 go. */
    drv_step(&d, 8, (int[]){0, 1, 4, 5, 6, 7, 8}, 7, NULL);
    drv_step(&d, 9, (int[]){0, 1, 4, 5, 6, 7, 8, 9}, 8, NULL);
    /* t=10: protected {8,9}; 0: 4/4, 1: 7/3, 4: 6, 5: 5, 6: 4, 7: 3. Token 1, idle 7 steps
     * but with an MRI of 2 behind it, outlives 4 and 5, never seen to recur. */
    drv_step(&d, 10, (int[]){0, 1, 6, 7, 8, 9, 10}, 7, NULL);
    drv_destroy(&d);

    /* A tie: L=3 (W=1: keep 2, the last protected, 1 other). 0 recurs at 1 and 2 (MRI 1,
     * last 2), 1 at 2 (MRI 1, last 2): at t=3 both are 1/2 overdue; the lower, 0, goes. */
    drv_create(&d, "lazyeviction", "lazyeviction.alpha=1.2", NULL, 3, 4);
    drv_prefill(&d, 0);
    drv_step(&d, 0, all, 1, NULL);
    memset(p, 0, sizeof p);
    p[0] = 1;
    drv_step(&d, 1, all, 2, p);
    p[0] = .5, p[1] = .5;
    drv_step(&d, 2, all, 3, p);
    drv_step(&d, 3, (int[]){1, 2, 3}, 3, NULL);
    drv_destroy(&d);

    /* A prompt longer than L, zero queries: every causal row uniform, nothing above 1.2 x
     * uniform, so nothing recurs and the oldest go: L=4 (W=1), prompt 6: keep 3, 5 protected,
     * 3 and 4 the least overdue. */
    drv_create(&d, "lazyeviction", "lazyeviction.alpha=1.2", NULL, 4, 4);
    drv_prefill(&d, 6);
    drv_step(&d, 6, (int[]){3, 4, 5, 6}, 4, NULL);
    drv_destroy(&d);

    /* L at its minimum, 1: only the current token. */
    drv_create(&d, "lazyeviction", NULL, NULL, 1, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 8; t++) drv_step(&d, t, (int[]){t}, 1, NULL);
    drv_destroy(&d);

    /* A budget larger than the sequence: nothing is ever evicted. */
    drv_create(&d, "lazyeviction", NULL, NULL, 64, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 30; t++) drv_step(&d, t, all, t + 1, NULL);
    drv_destroy(&d);
}

static void random_run(int L, int n_prefill, int n_q, int n_kv, const char *param, int W,
                       uint64_t seed) {
    tk t;
    tk_start(&t, "lazyeviction", param, L, n_prefill, n_q, n_kv, 240, seed);
    int evictions = tk_run_batched(&t, W, W < L - W ? W : L - W);
    if (t.c.n_tokens > L + W)
        TK_CHECK(evictions >= (t.c.n_tokens - n_prefill - L) / W - 1, "L=%d: %d evictions", L,
                 evictions);
    tk_destroy(&t);
}

int main(void) {
    hand_examples();
    random_run(64, 20, 4, 2, NULL, 16, 3);                   /* GQA; W = L/4 */
    random_run(64, 90, 8, 2, NULL, 16, 4);                   /* prompt longer than L */
    random_run(40, 10, 4, 1, "lazyeviction.window=3", 3, 5);
    random_run(40, 10, 2, 2, "lazyeviction.alpha=0", 10, 6); /* everything recurs */
    random_run(1, 5, 4, 1, NULL, 1, 7);                      /* L at its minimum */
    random_run(300, 10, 2, 2, NULL, 32, 8);                  /* budget above the sequence */
    if (tk_failures) return 1;
    printf("# lazyeviction: hand examples of recurrence, ties and lagged eviction; <= L tokens, "
           "recent W kept, bytes bounded by L\n");
    return 0;
}
