/* test_policy_adakv.c: Ada-KV over H2O's scorer. Where the rule reduces to H2O (one KV head,
 * or a safeguard of 1, which pins every head at L) its sets must equal h2o's step for step;
 * with several heads it must follow a by-position simulation of the layer-wide rule fed the
 * same probabilities, and keep its invariants: the layer within L x n_kv tokens, every head
 * within [min(floor, t+1), B - (n_kv-1) floor], the R most recent kept per head, and the
 * resident bytes bounded by what the heads' peaks occupy. */
#include "policy_testkit.h"

/* adakv beside h2o on the same data: the same sets at every step. */
static void same_as_h2o(int L, int n_q, int n_kv, int n_prefill, const char *param) {
    const char *kv[] = {param};
    tk_cfg c = {.policy = "adakv", .params = kv, .n_params = param ? 1 : 0, .n_q = n_q,
                .n_kv = n_kv, .d = 8, .budget = L, .page_size = 8, .n_prefill = n_prefill,
                .n_tokens = 200, .seed = 11};
    tk a, b;
    rb_err e = {0};
    RB_CHECK(tk_create(&a, &c, &e) == RB_OK);
    c.policy = "h2o", c.n_params = 0;
    RB_CHECK(tk_create(&b, &c, &e) == RB_OK);
    tk_prefill(&a), tk_prefill(&b);
    for (int pos = n_prefill; pos < c.n_tokens; pos++) {
        tk_step(&a, pos), tk_step(&b, pos);
        for (int h = 0; h < n_q; h++) {
            TK_CHECK(tk_attended(&a, h) == tk_attended(&b, h), "%s L=%d step %d head %d: %d vs h2o %d",
                     param ? param : "", L, pos, h, tk_attended(&a, h), tk_attended(&b, h));
            for (int j = 0; j <= pos; j++)
                TK_CHECK(tk_in_sel(&a, h, j) == tk_in_sel(&b, h, j), "L=%d step %d head %d: %d differs",
                         L, pos, h, j);
        }
    }
    tk_destroy(&a), tk_destroy(&b);
}

static void simulate(int L, int n_q, int n_kv, int n_prefill, double recent, double safeguard,
                     uint64_t seed) {
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "adakv.recent=%g", recent);
    snprintf(p2, sizeof p2, "adakv.safeguard=%g", safeguard);
    const char *kv[] = {p1, p2};
    tk_cfg c = {.policy = "adakv", .params = kv, .n_params = 2, .n_q = n_q, .n_kv = n_kv, .d = 8,
                .budget = L, .page_size = 8, .n_prefill = n_prefill, .n_tokens = 240, .seed = seed};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    int N = c.n_tokens, G = t.G, R = (int)floor(L * recent), B = L * n_kv;
    int fl = (int)ceil(L * safeguard - 1e-9);
    uint8_t *res = rb_calloc((size_t)N * n_kv, 1);
    double *score = rb_calloc((size_t)N * n_kv, sizeof(double));
    float *out = rb_malloc(sizeof(float) * (size_t)n_prefill * n_q * c.d + 1);
    float *col = rb_malloc(sizeof(float) * (size_t)n_prefill * n_kv + 1);
    if (n_prefill) attn_causal(t.q, t.k, t.v, n_prefill, n_q, n_kv, c.d, t.cfg.attn_scale, out, col);
    for (int g = 0; g < n_kv; g++)
        for (int j = 0; j < n_prefill; j++) {
            res[g * N + j] = 1;
            score[g * N + j] = col[(size_t)g * n_prefill + j];
        }
    tk_prefill(&t);
    int *peak = rb_calloc((size_t)n_kv, sizeof(int));
    int spread = 0; /* steps where the heads held different counts */
    for (int pos = n_prefill; pos < N; pos++) {
        for (;;) {
            int total = 0, wg = -1, wj = -1;
            for (int g = 0; g < n_kv; g++)
                for (int j = 0; j < pos; j++) total += res[g * N + j];
            if (total + n_kv <= B) break;
            for (int j = 0; j <= pos - R && j < pos; j++) /* ascending j, then g: ties */
                for (int g = 0; g < n_kv; g++) {
                    int n = 0;
                    for (int i = 0; i < pos; i++) n += res[g * N + i];
                    if (!res[g * N + j] || n + 1 <= fl) continue;
                    if (wg < 0 || score[g * N + j] < score[wg * N + wj]) wg = g, wj = j;
                }
            RB_CHECK(wg >= 0);
            res[wg * N + wj] = 0;
        }
        for (int g = 0; g < n_kv; g++) res[g * N + pos] = 1, score[g * N + pos] = 0;
        tk_step(&t, pos);
        int total = 0, n0 = -1;
        for (int g = 0; g < n_kv; g++) {
            int h = g * G, cnt = 0;
            for (int j = 0; j <= pos; j++) {
                cnt += res[g * N + j];
                if (res[g * N + j]) TK_CHECK(tk_in_sel(&t, h, j), "L=%d step %d head %d: %d missing", L, pos, g, j);
            }
            TK_CHECK(tk_attended(&t, h) == cnt, "L=%d step %d KV head %d: |S|=%d, simulation %d", L,
                     pos, g, tk_attended(&t, h), cnt);
            for (int j = pos - R + 1; j <= pos; j++)
                if (j >= 0) TK_CHECK(tk_in_sel(&t, h, j), "step %d: recent %d missing", pos, j);
            int lo = fl < pos + 1 ? fl : pos + 1;
            TK_CHECK(cnt >= lo && cnt <= B - (n_kv - 1) * lo, "step %d head %d: %d tokens", pos, g, cnt);
            total += cnt;
            if (cnt > peak[g]) peak[g] = cnt;
            spread |= n0 >= 0 && cnt != n0;
            n0 = cnt;
        }
        TK_CHECK(total <= B, "step %d: %d tokens over the layer, budget %d", pos, total, B);
        /* resident bytes: each head's pages never exceed what its peak filled (the slot
         * allocator fills holes before it opens a page) */
        if (n_prefill <= L) {
            int64_t bound = 0;
            for (int g = 0; g < n_kv; g++) bound += (int64_t)((peak[g] + 7) / 8) * 8 * c.d * 2 * 2;
            TK_CHECK(tk_kv_bytes(&t) <= bound, "step %d: %lld bytes > %lld", pos,
                     (long long)tk_kv_bytes(&t), (long long)bound);
        }
        for (int g = 0; g < n_kv; g++) {
            int h0 = g * G;
            for (int j = 0; j < t.sel.n[h0]; j++) {
                double m = 0;
                for (int h = h0; h < h0 + G; h++) m += t.probs[(size_t)h * t.sel.cap + j];
                score[g * N + t.sel.pos[(size_t)h0 * t.sel.cap + j]] += m;
            }
        }
    }
    if (n_kv > 1 && safeguard < 1 && N > L + 20) TK_CHECK(spread, "L=%d: the heads never held different counts", L);
    free(res), free(score), free(out), free(col), free(peak);
    tk_destroy(&t);
}

int main(void) {
    same_as_h2o(32, 4, 1, 20, NULL);                /* one KV head: H2O */
    same_as_h2o(32, 4, 2, 70, "adakv.safeguard=1"); /* every head pinned at L: H2O */
    same_as_h2o(1, 2, 2, 5, "adakv.safeguard=1");   /* L at its minimum */
    simulate(32, 4, 2, 20, 0.5, 0.2, 3);            /* GQA groups of 2 */
    simulate(32, 8, 4, 70, 0.5, 0.2, 4);            /* prompt longer than L */
    simulate(17, 4, 4, 9, 0.25, 0.5, 5);
    simulate(10, 2, 2, 0, 0, 0, 6);                 /* no recent window, no floor */
    simulate(300, 4, 2, 10, 0.5, 0.2, 7);           /* budget above the sequence */
    if (tk_failures) return 1;
    printf("# adakv: equals h2o with one head or safeguard 1; the layer-wide rule as simulated; "
           "<= L x n_kv tokens, per-head floors, bytes bounded by the heads' peaks\n");
    return 0;
}
