/* test_policy_oracle.c: the oracle is a ceiling: on the same data and budget its recall is
 * at least every other registered policy's (each choice of its choice parameters too), per
 * head and step, wherever that policy attends at most L tokens. Also: it attends
 * min(L, t+1) tokens per query head. */
#include "policy_testkit.h"

typedef struct run {
    const char *policy;
    tk_entry param; /* "" or one "policy.key=choice" entry */
} run;

/* The oracle, then every other registered policy, with its defaults and with each other
 * choice of each of its choice parameters. */
static int runs_of(run *runs, int cap) {
    int n_pol, n = 0;
    const policy_ops *const *l = policy_list(&n_pol);
    runs[n++] = (run){.policy = "oracle"};
    for (int i = 0; i < n_pol; i++) {
        if (!strcmp(l[i]->name, "oracle")) continue;
        tk_entry choices[16];
        int n_choices = tk_choice_entries(l[i], choices, 16);
        RB_CHECK(n + 1 + n_choices <= cap);
        runs[n++] = (run){.policy = l[i]->name};
        for (int j = 0; j < n_choices; j++) {
            runs[n] = (run){.policy = l[i]->name};
            memcpy(runs[n++].param, choices[j], sizeof choices[j]);
        }
    }
    return n;
}

int main(void) {
    enum { MAX_RUNS = 64 };
    static run runs[MAX_RUNS];
    const int R = runs_of(runs, MAX_RUNS);
    const int budgets[] = {16, 32, 48};
    int compared = 0;
    double gap_sum[MAX_RUNS] = {0};
    int gap_n[MAX_RUNS] = {0};
    for (int b = 0; b < 3; b++) {
        int L = budgets[b];
        tk t[MAX_RUNS];
        for (int i = 0; i < R; i++) {
            const char *kv[] = {runs[i].param};
            tk_cfg c = {.policy = runs[i].policy, .params = kv, .n_params = runs[i].param[0] ? 1 : 0,
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
                    /* The oracle ranks by float logits, recall sums float probabilities
                     * (each within 6e-8 relative of exp of the double logit): a near-tie
                     * that rounding reorders, and the rounding of the sums, cost ~1e-7. */
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
                   runs[i].param[0] ? " " : "", runs[i].param,
                   gap_sum[i] / gap_n[i], gap_n[i]);
    return 0;
}
