/* test_policy_h2o.c: H2O step by step. Two hand-worked examples (expected sets written from
 * the rules, below), then random data against a plain by-position simulation of the rules,
 * with the invariants: never more than L tokens, the R most recent always kept, memory flat
 * once the cache is full. */
#include "policy_testkit.h"

static void hand_example(void) {
    /* L=4, recent=0.5: R=2 recent, H=2 heavy. Prompt of 2 zero-query tokens:
     * s0 = 1 + 1/2 = 1.5, s1 = 1/2. All the probabilities below are dyadic, so every score
     * is exact and the tie at t=5 is a real tie. */
    drv d;
    drv_create(&d, "h2o", NULL, NULL, 4, 4);
    drv_prefill(&d, 2);
    double p[64] = {0};
    /* t=2: 2 resident < 4, nothing evicted. s0=1.75 s1=0.75 s2=0.5 */
    p[0] = .25, p[1] = .25, p[2] = .5;
    drv_step(&d, 2, (int[]){0, 1, 2}, 3, p);
    /* t=3: 3 < 4. All 1/4: s0=2 s1=1 s2=0.75 s3=0.25 */
    p[0] = p[1] = p[2] = p[3] = .25;
    drv_step(&d, 3, (int[]){0, 1, 2, 3}, 4, p);
    /* t=4: full; candidates are positions <= t-R = 2: {0,1,2}; least is 2 (0.75): evicted.
     * Then s0=2.125 s1=1 s3=1 s4=0.125 */
    memset(p, 0, sizeof p);
    p[0] = .125, p[1] = 0, p[3] = .75, p[4] = .125;
    drv_step(&d, 4, (int[]){0, 1, 3, 4}, 4, p);
    /* t=5: candidates <= 3: {0,1,3}; s1 = s3 = 1: the tie goes to the lower position, 1.
     * Then s0=2.375 s3=1.25 s4=0.375 s5=0.25 */
    memset(p, 0, sizeof p);
    p[0] = p[3] = p[4] = p[5] = .25;
    drv_step(&d, 5, (int[]){0, 3, 4, 5}, 4, p);
    /* t=6: candidates <= 4: {0,3,4}; least is 4 (0.375). Position 5 has less (0.25) but is
     * one of the R=2 most recent, so it stays. Then s0=2.625 s3=1.5 s5=0.5 s6=0.25 */
    memset(p, 0, sizeof p);
    p[0] = p[3] = p[5] = p[6] = .25;
    drv_step(&d, 6, (int[]){0, 3, 5, 6}, 4, p);
    /* t=7: candidates <= 5: {0,3,5}; least is 5 (0.5). */
    drv_step(&d, 7, (int[]){0, 3, 6, 7}, 4, NULL);
    drv_destroy(&d);

    /* A prompt longer than L: 6 zero-query tokens, L=4. Scores decrease with position
     * (s_j = sum_{i=j}^{5} 1/(i+1)), so the first decode step (t=6) evicts the least-scored
     * non-recent tokens (<= t-R = 4) until 3 remain: 4, then 3, then 2. */
    drv_create(&d, "h2o", NULL, NULL, 4, 4);
    drv_prefill(&d, 6);
    drv_step(&d, 6, (int[]){0, 1, 5, 6}, 4, NULL);
    drv_destroy(&d);

    /* recent=0: no protection; L=3 with 3 zero-query tokens: s0 > s1 > s2, t=3 evicts 2. */
    drv_create(&d, "h2o", "h2o.recent=0", NULL, 3, 4);
    drv_prefill(&d, 3);
    drv_step(&d, 3, (int[]){0, 1, 3}, 3, NULL);
    drv_destroy(&d);
}

/* ---- random data against a by-position simulation ---- */
static void random_run(int L, const char *param, double recent, int n_prefill, uint64_t seed) {
    const char *kv[] = {param};
    tk_cfg c = {.policy = "h2o", .params = kv, .n_params = param ? 1 : 0, .n_q = 4, .n_kv = 2,
                .d = 8, .budget = L, .page_size = 8, .n_prefill = n_prefill, .n_tokens = 240,
                .seed = seed};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    int R = (int)floor(L * recent), N = c.n_tokens, G = t.G;
    /* The simulation: resident flags and scores by position, per KV head. Initial scores
     * come from the same kernel h2o uses (tests/test_attn.c checks it against the
     * reference), so near-ties break the same way. */
    uint8_t *res = rb_calloc((size_t)N * c.n_kv, 1);
    double *score = rb_calloc((size_t)N * c.n_kv, sizeof(double));
    float *out = rb_malloc(sizeof(float) * (size_t)n_prefill * c.n_q * c.d + 1);
    float *col = rb_malloc(sizeof(float) * (size_t)n_prefill * c.n_kv + 1);
    if (n_prefill) attn_causal(t.q, t.k, t.v, n_prefill, c.n_q, c.n_kv, c.d, t.cfg.attn_scale, out, col);
    for (int g = 0; g < c.n_kv; g++)
        for (int j = 0; j < n_prefill; j++) {
            res[g * N + j] = 1;
            score[g * N + j] = col[(size_t)g * n_prefill + j];
        }
    tk_prefill(&t);
    int64_t flat = -1;
    for (int pos = n_prefill; pos < N; pos++) {
        for (int g = 0; g < c.n_kv; g++) {
            uint8_t *r = res + g * N;
            double *s = score + g * N;
            for (;;) {
                int cnt = 0, w = -1;
                for (int j = 0; j < pos; j++) cnt += r[j];
                if (cnt < L) break;
                for (int j = 0; j <= pos - R && j < pos; j++)
                    if (r[j] && (w < 0 || s[j] < s[w])) w = j; /* ascending j: ties keep lowest */
                r[w] = 0;
            }
            r[pos] = 1;
            s[pos] = 0;
        }
        tk_step(&t, pos);
        for (int h = 0; h < c.n_q; h++) {
            const uint8_t *r = res + (h / G) * N;
            int cnt = 0;
            for (int j = 0; j <= pos; j++) {
                cnt += r[j];
                if (r[j]) TK_CHECK(tk_in_sel(&t, h, j), "L=%d step %d head %d: %d evicted early", L, pos, h, j);
            }
            TK_CHECK(tk_attended(&t, h) == cnt, "L=%d step %d head %d: |S|=%d, simulation %d",
                     L, pos, h, tk_attended(&t, h), cnt);
            TK_CHECK(tk_attended(&t, h) <= L || pos < n_prefill, "step %d: |S| = %d > L", pos,
                     tk_attended(&t, h));
            for (int j = pos - R + 1; j <= pos; j++)
                if (j >= 0) TK_CHECK(tk_in_sel(&t, h, j), "step %d: recent %d missing", pos, j);
        }
        /* Scores: the group's probabilities over S, summed over the heads, as h2o adds them. */
        for (int g = 0; g < c.n_kv; g++) {
            int h0 = g * G;
            for (int j = 0; j < t.sel.n[h0]; j++) {
                double m = 0;
                for (int h = h0; h < h0 + G; h++) m += t.probs[(size_t)h * t.sel.cap + j];
                score[g * N + t.sel.pos[(size_t)h0 * t.sel.cap + j]] += m;
            }
        }
        if (pos + 1 > L) {
            if (flat >= 0)
                TK_CHECK(tk_kv_bytes(&t) <= flat, "step %d: bytes grew %lld -> %lld", pos,
                         (long long)flat, (long long)tk_kv_bytes(&t));
            flat = tk_kv_bytes(&t);
            /* once full, exactly L entries of bookkeeping */
            if (pos >= n_prefill + 1 || n_prefill <= L)
                TK_CHECK(tk_meta_bytes(&t) == (int64_t)L * c.n_kv * 20, "step %d: meta %lld", pos,
                         (long long)tk_meta_bytes(&t));
        }
    }
    /* A prompt shorter than L fills ceil(L/P) pages before the first eviction and slot
     * reuse never needs another. (A longer prompt's survivors stay scattered over its pages:
     * flat, as checked above, but not compact.) */
    if (n_prefill <= L)
        for (int g = 0; g < c.n_kv; g++)
            TK_CHECK(tk_pages_held(&t, g) <= (L + 7) / 8, "L=%d: %d pages at the end", L,
                     tk_pages_held(&t, g));
    free(res);
    free(score);
    free(out);
    free(col);
    tk_destroy(&t);
}

int main(void) {
    hand_example();
    random_run(32, NULL, 0.5, 20, 3);
    random_run(32, NULL, 0.5, 70, 4);          /* prompt longer than L */
    random_run(17, "h2o.recent=0.25", 0.25, 9, 5);
    random_run(10, "h2o.recent=1", 1.0, 0, 6);
    random_run(10, "h2o.recent=0", 0.0, 12, 7);
    if (tk_failures) return 1;
    printf("# h2o: hand examples and simulation agree; <= L tokens, R recent kept, flat bytes\n");
    return 0;
}
