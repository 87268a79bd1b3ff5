/* test_policy_streamingllm.c: StreamingLLM keeps exactly the sinks and the last L-sinks
 * (and window, the last L), attends everything while fewer than L tokens exist, evicts a
 * prompt longer than L at the first decode step, and holds flat memory after warm-up. */
#include "policy_testkit.h"

/* Expected set at step pos: {0..sinks-1} U {pos-(L-sinks)+1..pos}, or all of 0..pos. */
static int expected(int p, int pos, int L, int sinks) {
    if (pos + 1 <= L) return 1;
    return p < sinks || p > pos - (L - sinks);
}

static void run(const char *policy, const char *param, int sinks, int L, int n_prefill) {
    const char *kv[] = {param};
    tk_cfg c = {.policy = policy, .params = kv, .n_params = param ? 1 : 0, .n_q = 4, .n_kv = 2,
                .d = 8, .budget = L, .page_size = 8, .n_prefill = n_prefill, .n_tokens = 220,
                .seed = 2};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    tk_prefill(&t);
    int64_t flat = -1;
    for (int pos = n_prefill; pos < c.n_tokens; pos++) {
        tk_step(&t, pos);
        for (int h = 0; h < c.n_q; h++) {
            int n_exp = 0;
            for (int p = 0; p <= pos; p++) {
                int want = expected(p, pos, L, sinks);
                n_exp += want;
                if (want) TK_CHECK(tk_in_sel(&t, h, p), "%s step %d head %d: %d missing", policy, pos, h, p);
            }
            TK_CHECK(tk_attended(&t, h) == n_exp, "%s step %d head %d: |S|=%d want %d", policy,
                     pos, h, tk_attended(&t, h), n_exp);
        }
        /* Once the window is full every step frees one slot before taking one, so a new
         * page is never needed: bytes never grow again (they may shrink as the prompt's
         * partly freed pages empty out). */
        if (pos + 1 > L) {
            if (flat >= 0)
                TK_CHECK(tk_kv_bytes(&t) <= flat, "%s step %d: bytes grew %lld -> %lld", policy,
                         pos, (long long)flat, (long long)tk_kv_bytes(&t));
            flat = tk_kv_bytes(&t);
        }
    }
    /* Steady state: the L tokens fit in ceil(L/P) pages, plus one for the sinks' page. */
    for (int g = 0; g < c.n_kv; g++)
        TK_CHECK(tk_pages_held(&t, g) <= (L + 7) / 8 + 1, "%s: %d pages at the end", policy,
                 tk_pages_held(&t, g));
    tk_destroy(&t);
}

int main(void) {
    run("streamingllm", NULL, 4, 24, 10);              /* short prompt: grows, then slides */
    run("streamingllm", NULL, 4, 24, 60);              /* prompt longer than L */
    run("streamingllm", "streamingllm.sinks=1", 1, 9, 3);
    run("streamingllm", "streamingllm.sinks=0", 0, 5, 0);
    run("window", NULL, 0, 16, 5);
    run("window", NULL, 0, 16, 40);
    if (tk_failures) return 1;
    printf("# streamingllm, window: exact sink+recent sets, flat bytes after warm-up\n");
    return 0;
}
