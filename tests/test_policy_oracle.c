/* test_policy_oracle.c: the oracle is a ceiling: on the same data and budget its recall is
 * at least every other policy's, per head and step, wherever that policy attends at most L
 * tokens. Also: it attends min(L, t+1) tokens per query head. */
#include "policy_testkit.h"

int main(void) {
    struct { const char *policy, *param; } runs[] = {
        {"oracle", NULL},     {"dense", NULL},          {"streamingllm", NULL},
        {"h2o", NULL},        {"quest", NULL},          {"quest", "quest.gqa=head"},
        {"raas", NULL},       {"raas", "raas.score=exact"}, {"random", NULL},
        {"window", NULL},
    };
    enum { R = sizeof runs / sizeof runs[0] };
    const int budgets[] = {16, 32, 48};
    int compared = 0;
    double gap_sum[R] = {0};
    int gap_n[R] = {0};
    for (int b = 0; b < 3; b++) {
        int L = budgets[b];
        tk t[R];
        for (int i = 0; i < R; i++) {
            const char *kv[] = {runs[i].param};
            tk_cfg c = {.policy = runs[i].policy, .params = kv, .n_params = runs[i].param ? 1 : 0,
                        .n_q = 4, .n_kv = 2, .d = 16, .budget = L, .page_size = 8,
                        .n_prefill = 24, .n_tokens = 180, .seed = 31};
            rb_err e = {0};
            RB_CHECK(tk_create(&t[i], &c, &e) == RB_OK);
            tk_prefill(&t[i]);
        }
        for (int pos = 24; pos < 180; pos++) {
            for (int i = 0; i < R; i++) tk_step(&t[i], pos);
            for (int h = 0; h < 4; h++) {
                int want = pos + 1 < L ? pos + 1 : L;
                TK_CHECK(tk_attended(&t[0], h) == want, "oracle |S|=%d want %d", tk_attended(&t[0], h), want);
                for (int i = 1; i < R; i++) {
                    if (tk_attended(&t[i], h) > L) continue;
                    compared++;
                    /* The oracle ranks by float logits, recall sums exp of double logits: a
                     * near-tie that float rounding reorders can cost ~1e-7 of one term. */
                    TK_CHECK(t[0].recall[h] >= t[i].recall[h] - 1e-6,
                             "L=%d step %d head %d: oracle %.9f < %s %.9f", L, pos, h, t[0].recall[h],
                             runs[i].policy, t[i].recall[h]);
                    gap_sum[i] += t[0].recall[h] - t[i].recall[h];
                    gap_n[i]++;
                }
            }
        }
        for (int i = 0; i < R; i++) tk_destroy(&t[i]);
    }
    TK_CHECK(compared > 10000, "enough comparisons: %d", compared);
    if (tk_failures) return 1;
    for (int i = 1; i < R; i++)
        if (gap_n[i])
            printf("# oracle recall minus %s%s%s: %.4f mean over %d head-steps\n", runs[i].policy,
                   runs[i].param ? " " : "", runs[i].param ? runs[i].param : "",
                   gap_sum[i] / gap_n[i], gap_n[i]);
    return 0;
}
