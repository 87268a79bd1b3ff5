/* test_policy_snapkv.c: SnapKV for decoding. Hand-worked examples with zero queries (every
 * vote uniform, so the choice is the tie rule: the lower positions stay) that show when it
 * compresses, what the window keeps and the clamps at small L; then random GQA runs with the
 * invariants: never more than L tokens, the window always resident, a compression exactly
 * when full (the resident count cycles L-C+1..L), memory bounded by L. The choices
 * themselves are checked against a float64 reference in tests/e2e_policy_refs.sh. */
#include "policy_testkit.h"

static int all[64];

static void hand_examples(void) {
    drv d;
    /* L=8: C = min(16, L/4) = 2, W = min(32, (8-2)/2) = 3. Zero queries: uniform votes. */
    drv_create(&d, "snapkv", NULL, NULL, 8, 4);
    drv_prefill(&d, 0);
    for (int t = 0; t < 8; t++) drv_step(&d, t, all, t + 1, NULL); /* not full yet */
    /* t=8: full. Keep L-C = 6: the window {5,6,7} and 3 of {0..4}, all tied: {0,1,2}. */
    drv_step(&d, 8, (int[]){0, 1, 2, 5, 6, 7, 8}, 7, NULL);
    drv_step(&d, 9, (int[]){0, 1, 2, 5, 6, 7, 8, 9}, 8, NULL);
    /* t=10: full again, C=2 steps later: window {7,8,9}, candidates {0,1,2,5,6}. */
    drv_step(&d, 10, (int[]){0, 1, 2, 7, 8, 9, 10}, 7, NULL);
    drv_destroy(&d);

    /* L at its minimum, 1: C = 1, nothing kept but the current token. */
    drv_create(&d, "snapkv", NULL, NULL, 1, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 8; t++) drv_step(&d, t, (int[]){t}, 1, NULL);
    drv_destroy(&d);

    /* L=2: C=1, W=1: the previous token (the window) and the current one. */
    drv_create(&d, "snapkv", NULL, NULL, 2, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 8; t++) drv_step(&d, t, (int[]){t - 1, t}, 2, NULL);
    drv_destroy(&d);

    /* A prompt longer than L compresses at the first append: L=8, prompt 12: window
     * {9,10,11}, 3 of {0..8} tied: {0,1,2}. */
    drv_create(&d, "snapkv", NULL, NULL, 8, 4);
    drv_prefill(&d, 12);
    drv_step(&d, 12, (int[]){0, 1, 2, 9, 10, 11, 12}, 7, NULL);
    drv_destroy(&d);

    /* interval and window given: L=8, C=1, W=1: keep 7 = {6} + {0..5}. */
    drv_create(&d, "snapkv", "snapkv.interval=1", "snapkv.window=1", 8, 4);
    drv_prefill(&d, 8);
    drv_step(&d, 8, (int[]){0, 1, 2, 3, 4, 5, 7, 8}, 8, NULL);
    drv_destroy(&d);

    /* A budget larger than the sequence: nothing is ever evicted. */
    drv_create(&d, "snapkv", NULL, NULL, 64, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 30; t++) drv_step(&d, t, all, t + 1, NULL);
    drv_destroy(&d);
}

static void random_run(int L, int n_prefill, int n_q, int n_kv, const char *param, int C,
                       int W, uint64_t seed) {
    tk t;
    tk_start(&t, "snapkv", param, L, n_prefill, n_q, n_kv, 220, seed);
    /* Bounded, not flat: a compression frees C slots at once and gives back the pages it
     * empties, so the pages held move between compressions; freed slots are reused before a
     * page is opened, so they never exceed ceil(L/P), or what a long prompt's survivors
     * occupy after the first compression (tk_run_batched). */
    int compressions = tk_run_batched(&t, C, W);
    if (t.c.n_tokens > L + C)
        TK_CHECK(compressions >= (t.c.n_tokens - n_prefill - L) / C - 1, "L=%d: %d compressions",
                 L, compressions);
    if (n_prefill <= L)
        for (int g = 0; g < n_kv; g++)
            TK_CHECK(kv_pool_resident_bytes(t.pools[g]) <= (int64_t)((L + 7) / 8) * 8 * t.c.d * 2 * 2,
                     "L=%d: %lld resident bytes, budget %d tokens", L,
                     (long long)kv_pool_resident_bytes(t.pools[g]), L);
    tk_destroy(&t);
}

int main(void) {
    for (int i = 0; i < 64; i++) all[i] = i;
    hand_examples();
    tk_expect_refused("snapkv", "snapkv.kernel=4"); /* pooling is centred: an odd kernel */
    random_run(64, 20, 4, 2, NULL, 16, 24, 3);             /* GQA; C=16, W=min(32,24) */
    random_run(64, 90, 8, 2, NULL, 16, 24, 4);             /* prompt longer than L */
    random_run(40, 10, 4, 1, "snapkv.interval=3", 3, 18, 5);
    random_run(40, 10, 2, 2, "snapkv.pool=avg", 10, 15, 6);
    random_run(1, 5, 4, 1, NULL, 1, 0, 7);                 /* L at its minimum */
    random_run(300, 10, 2, 2, NULL, 16, 32, 8);            /* budget above the sequence */
    if (tk_failures) return 1;
    printf("# snapkv: compresses exactly when full, to L-C with the window kept; <= L tokens, "
           "bytes bounded by L; ties keep the older\n");
    return 0;
}
