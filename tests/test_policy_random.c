/* test_policy_random.c: the random floor attends exactly L tokens once more than L exist
 * (the current one included), repeats exactly for the same seed, layer and step, changes
 * with the layer, and draws the others uniformly. */
#include "policy_testkit.h"

static tk make(int layer, uint64_t seed, const char *param, int L, int n_prefill, int n_tokens) {
    const char *kv[] = {param};
    tk_cfg c = {.policy = "random", .params = kv, .n_params = param ? 1 : 0, .n_q = 4, .n_kv = 2,
                .d = 4, .budget = L, .page_size = 8, .n_prefill = n_prefill,
                .n_tokens = n_tokens, .seed = seed, .layer = layer};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    tk_prefill(&t);
    return t;
}

static int same_sel(const tk *a, const tk *b) {
    for (int h = 0; h < a->c.n_q; h++) {
        int r = a->sel.shared_by_group ? h - h % a->G : h;
        if (a->sel.n[r] != b->sel.n[r]) return 0;
        for (int j = 0; j < a->sel.n[r]; j++)
            if (a->sel.pos[(size_t)r * a->sel.cap + j] != b->sel.pos[(size_t)r * b->sel.cap + j]) return 0;
    }
    return 1;
}

int main(void) {
    const int L = 12;
    tk a = make(3, 5, NULL, L, 4, 100), b = make(3, 5, NULL, L, 4, 100), c = make(4, 5, NULL, L, 4, 100);
    tk d = make(3, 6, "random.seed=77", L, 4, 100), e = make(3, 5, "random.seed=77", L, 4, 100);
    int differ_layer = 0;
    for (int pos = 4; pos < 100; pos++) {
        tk_step(&a, pos), tk_step(&b, pos), tk_step(&c, pos), tk_step(&d, pos), tk_step(&e, pos);
        TK_CHECK(same_sel(&a, &b), "step %d: same seed, layer, step: same draw", pos);
        TK_CHECK(same_sel(&d, &e), "step %d: random.seed overrides the run seed", pos);
        differ_layer += !same_sel(&a, &c);
        for (int h = 0; h < 4; h++)
            TK_CHECK(tk_attended(&a, h) == (pos + 1 < L ? pos + 1 : L), "step %d: |S| = %d", pos,
                     tk_attended(&a, h));
    }
    TK_CHECK(differ_layer > 80, "another layer draws differently (%d of 96 steps)", differ_layer);
    tk_destroy(&a), tk_destroy(&b), tk_destroy(&c), tk_destroy(&d), tk_destroy(&e);

    /* Uniformity: at step t=40, over 3000 seeds, each of positions 0..39 is drawn with
     * probability (L-1)/40. Binomial sd = sqrt(n p (1-p)) ~ 15; 6 sd bounds a false alarm
     * far below 1e-6 per position. */
    enum { T = 40, SEEDS = 3000 };
    int count[T] = {0};
    for (int s = 0; s < SEEDS; s++) {
        char param[32];
        snprintf(param, sizeof param, "random.seed=%d", s);
        tk t = make(0, 0, param, L, T, T + 1);
        tk_step(&t, T);
        for (int j = 0; j < t.sel.n[0]; j++) {
            int p = t.sel.pos[j];
            if (p < T) count[p]++;
        }
        tk_destroy(&t);
    }
    double pr = (double)(L - 1) / T, mean = SEEDS * pr, sd = sqrt(SEEDS * pr * (1 - pr));
    for (int p = 0; p < T; p++)
        TK_CHECK(fabs(count[p] - mean) < 6 * sd, "position %d drawn %d times, expected %.0f +- %.0f",
                 p, count[p], mean, sd);
    if (tk_failures) return 1;
    printf("# random: deterministic per (seed, layer, step), |S| = L, uniform draws\n");
    return 0;
}
