/* test_policy_tova.c: TOVA step by step. Hand-worked examples (sets written from the rule:
 * when full, the token the latest query attended least goes, ties the lower position), then
 * random GQA data against a by-position simulation fed the same probabilities, with the
 * invariants: never more than L tokens, memory flat once full, bookkeeping L entries. */
#include "policy_testkit.h"

static void hand_examples(void) {
    drv d;
    double p[64] = {0};
    /* L=3, a 2-token prompt of zero queries: scores 1/2 and 1/2. */
    drv_create(&d, "tova", NULL, NULL, 3, 4);
    drv_prefill(&d, 2);
    p[0] = .5, p[1] = .125, p[2] = .375;
    drv_step(&d, 2, (int[]){0, 1, 2}, 3, p); /* not full yet */
    memset(p, 0, sizeof p);
    p[0] = .25, p[2] = .25, p[3] = .5;
    drv_step(&d, 3, (int[]){0, 2, 3}, 3, p); /* 1 had the least (0.125) */
    memset(p, 0, sizeof p);
    p[2] = .5, p[3] = .25, p[4] = .25;
    drv_step(&d, 4, (int[]){2, 3, 4}, 3, p); /* 0 and 2 tie at 0.25: the lower, 0, goes */
    drv_step(&d, 5, (int[]){2, 4, 5}, 3, NULL); /* 3 and 4 tie: 3 goes; then all zero */
    drv_step(&d, 6, (int[]){4, 5, 6}, 3, NULL); /* all tie at 0: the lowest, 2, goes */
    drv_destroy(&d);

    /* The scores are the latest query's, not accumulated: 0 was heavy once, then light. */
    drv_create(&d, "tova", NULL, NULL, 3, 4);
    drv_prefill(&d, 0);
    memset(p, 0, sizeof p);
    p[0] = 1;
    drv_step(&d, 0, (int[]){0}, 1, p);
    p[0] = .9, p[1] = .1;
    drv_step(&d, 1, (int[]){0, 1}, 2, p);
    p[0] = .1, p[1] = .5, p[2] = .4;
    drv_step(&d, 2, (int[]){0, 1, 2}, 3, p);
    drv_step(&d, 3, (int[]){1, 2, 3}, 3, NULL); /* H2O would keep 0 (2.0 accumulated) */
    drv_destroy(&d);

    /* L at its minimum, 1: only the current token, whatever the prompt. */
    drv_create(&d, "tova", NULL, NULL, 1, 4);
    drv_prefill(&d, 5);
    for (int t = 5; t < 9; t++) drv_step(&d, t, (int[]){t}, 1, NULL);
    drv_destroy(&d);

    /* A prompt longer than L: 6 zero-query tokens score 1/6 each (a tie), so the first
     * append keeps the most recent L-1 = 3 of them. */
    drv_create(&d, "tova", NULL, NULL, 4, 4);
    drv_prefill(&d, 6);
    drv_step(&d, 6, (int[]){3, 4, 5, 6}, 4, NULL);
    drv_destroy(&d);

    /* A budget larger than the sequence: nothing is ever evicted. */
    drv_create(&d, "tova", NULL, NULL, 64, 4);
    drv_prefill(&d, 3);
    int all[64];
    for (int t = 0; t < 64; t++) all[t] = t;
    for (int t = 3; t < 20; t++) drv_step(&d, t, all, t + 1, NULL);
    drv_destroy(&d);
}

/* ---- random GQA data against a by-position simulation ---- */
static void random_run(int L, int n_prefill, int n_q, int n_kv, uint64_t seed) {
    tk t;
    tk_start(&t, "tova", NULL, L, n_prefill, n_q, n_kv, 200, seed);
    const tk_cfg c = t.c;
    int N = c.n_tokens, G = t.G;
    uint8_t *res = rb_calloc((size_t)N * n_kv, 1);
    double *score = rb_calloc((size_t)N * n_kv, sizeof(double));
    /* prompt scores: the last prompt query's softmax, mean over the group (double) */
    for (int g = 0; g < n_kv && n_prefill > 0; g++)
        for (int h = g * G; h < (g + 1) * G; h++) {
            double lg[256], m = -INFINITY, z = 0;
            for (int j = 0; j < n_prefill; j++) {
                double dot = 0;
                for (int i = 0; i < c.d; i++)
                    dot += (double)t.q[((size_t)(n_prefill - 1) * n_q + h) * c.d + i] *
                           t.k[((size_t)j * n_kv + g) * c.d + i];
                lg[j] = dot * t.cfg.attn_scale;
                if (lg[j] > m) m = lg[j];
            }
            for (int j = 0; j < n_prefill; j++) z += exp(lg[j] - m);
            for (int j = 0; j < n_prefill; j++) {
                res[g * N + j] = 1;
                score[g * N + j] += exp(lg[j] - m) / z / G;
            }
        }
    int64_t flat = -1;
    for (int pos = n_prefill; pos < N; pos++) {
        for (int g = 0; g < n_kv; g++) {
            uint8_t *r = res + g * N;
            double *s = score + g * N;
            for (;;) {
                int cnt = 0, w = -1;
                for (int j = 0; j < pos; j++) cnt += r[j];
                if (cnt < L) break;
                for (int j = 0; j < pos; j++)
                    if (r[j] && (w < 0 || s[j] < s[w])) w = j;
                r[w] = 0;
            }
            r[pos] = 1;
        }
        tk_step(&t, pos);
        for (int h = 0; h < n_q; h++) {
            const uint8_t *r = res + (h / G) * N;
            int cnt = 0;
            for (int j = 0; j <= pos; j++) {
                cnt += r[j];
                if (r[j]) TK_CHECK(tk_in_sel(&t, h, j), "L=%d step %d head %d: %d missing", L, pos, h, j);
            }
            TK_CHECK(tk_attended(&t, h) == cnt, "L=%d step %d: |S|=%d, simulation %d", L, pos,
                     tk_attended(&t, h), cnt);
            TK_CHECK(cnt <= L, "step %d: %d > L", pos, cnt);
        }
        /* new scores: this step's probabilities, mean over the group, replacing the old */
        for (int g = 0; g < n_kv; g++) {
            int h0 = g * G;
            for (int j = 0; j < t.sel.n[h0]; j++) {
                double m = 0;
                for (int h = h0; h < h0 + G; h++) m += t.probs[(size_t)h * t.sel.cap + j];
                score[g * N + t.sel.pos[(size_t)h0 * t.sel.cap + j]] = m / G;
            }
        }
        if (pos + 1 > L) {
            if (flat >= 0)
                TK_CHECK(tk_kv_bytes(&t) <= flat, "step %d: bytes grew %lld -> %lld", pos,
                         (long long)flat, (long long)tk_kv_bytes(&t));
            flat = tk_kv_bytes(&t);
            if (pos > n_prefill || n_prefill <= L)
                TK_CHECK(tk_meta_bytes(&t) == (int64_t)L * n_kv * 20, "step %d: meta %lld", pos,
                         (long long)tk_meta_bytes(&t));
        }
    }
    /* resident bytes bounded by the budget: ceil(L/P) pages of a prompt shorter than L */
    if (n_prefill <= L)
        for (int g = 0; g < n_kv; g++) {
            TK_CHECK(tk_pages_held(&t, g) <= (L + 7) / 8, "L=%d: %d pages", L, tk_pages_held(&t, g));
            TK_CHECK(kv_pool_resident_bytes(t.pools[g]) <= (int64_t)((L + 7) / 8) * 8 * c.d * 2 * 2,
                     "L=%d: %lld bytes", L, (long long)kv_pool_resident_bytes(t.pools[g]));
        }
    free(res);
    free(score);
    tk_destroy(&t);
}

int main(void) {
    hand_examples();
    random_run(32, 20, 4, 2, 3);  /* GQA, groups of 2 */
    random_run(32, 70, 8, 2, 4);  /* groups of 4, prompt longer than L */
    random_run(1, 5, 4, 1, 5);    /* L at its minimum */
    random_run(250, 10, 2, 2, 6); /* budget larger than the sequence */
    if (tk_failures) return 1;
    printf("# tova: hand examples and simulation agree; <= L tokens, flat bytes, ties to the older\n");
    return 0;
}
