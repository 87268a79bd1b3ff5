/* test_policy_dense.c: dense attends everything: recall 1 and output equal to the dense
 * reference at every step; resident bytes grow linearly (whole pages of P tokens). */
#include "policy_testkit.h"

int main(void) {
    tk_cfg c = {.policy = "dense", .n_q = 4, .n_kv = 2, .d = 16, .budget = 1, .page_size = 8,
                .n_prefill = 21, .n_tokens = 140, .seed = 1};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    tk_prefill(&t);
    double worst_rec = 0, worst_err = 0;
    for (int pos = c.n_prefill; pos < c.n_tokens; pos++) {
        tk_step(&t, pos);
        for (int h = 0; h < c.n_q; h++) {
            TK_CHECK(tk_attended(&t, h) == pos + 1, "step %d: |S| = %d", pos, tk_attended(&t, h));
            /* recall (metrics.h) sums the dense probabilities, each exp(logit - lse) from
             * double logits rounded once to float (relative 2^-24 ~ 6e-8): the error of the
             * sum is at most ~6e-8 of the total, 1; 1e-6 leaves room. */
            double dr = fabs(t.recall[h] - 1);
            /* Sparse and dense outputs both accumulate in double over the same terms in the
             * same order and round once to float: they differ by float rounding, ~1e-7. */
            if (dr > worst_rec) worst_rec = dr;
            if (t.out_err[h] > worst_err) worst_err = t.out_err[h];
            TK_CHECK(dr < 1e-6, "step %d head %d recall %.9f", pos, h, t.recall[h]);
            TK_CHECK(t.out_err[h] < 1e-5, "step %d head %d out_err %.3g", pos, h, t.out_err[h]);
        }
        /* linear: ceil((pos+1)/P) pages x P x d x 2 (K,V) x 2 bytes, per KV head */
        int64_t want = (int64_t)((pos + 1 + c.page_size - 1) / c.page_size) * c.page_size * c.d * 2 * 2 * c.n_kv;
        TK_CHECK(tk_kv_bytes(&t) == want, "step %d: kv bytes %lld, want %lld", pos,
                 (long long)tk_kv_bytes(&t), (long long)want);
    }
    tk_destroy(&t);
    if (tk_failures) return 1;
    printf("# dense: recall within %.1e of 1, out_err <= %.1e, bytes linear\n", worst_rec, worst_err);
    return 0;
}
