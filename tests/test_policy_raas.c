/* test_policy_raas.c: RaaS step by step. Two hand-worked examples (expected sets written
 * from the rules in the comments), then random data against a plain by-page simulation of
 * the rules for every score/refresh combination, with the invariants: prefill pages never
 * evicted, at most max(floor(L/P), pinned+1) pages held, memory flat after warm-up. */
#include "policy_testkit.h"

/* Positions of pages pages[0..n) up to pos, as an expected set. */
static int set_of(const int *pages, int n, int pos, int *out) {
    int m = 0;
    for (int i = 0; i < n; i++)
        for (int t = 2 * pages[i]; t <= 2 * pages[i] + 1 && t <= pos; t++) out[m++] = t;
    return m;
}

static void step_pages(drv *d, int pos, const int *pages, int n, const double *p) {
    int want[64];
    int m = set_of(pages, n, pos, want);
    drv_step(d, pos, want, m, p);
}

static void hand_top_frac(void) {
    /* P=2 (page p holds positions 2p, 2p+1), L=12: capacity 6 pages. score=exact,
     * refresh=top_frac r=0.5: ceil(0.5 * #evictable) pages are refreshed each step.
     * The prompt is 3 tokens: pages 0 and 1 are pinned; page 1 is only partly filled by the
     * prompt and stays pinned (position 3, a decode token, rides along). */
    drv d;
    drv_create(&d, "raas", "raas.score=exact", NULL, 12, 2);
    drv_prefill(&d, 3);
    double p[64] = {0};
    step_pages(&d, 3, (int[]){0, 1}, 2, NULL);
    /* t=4 opens page 2; the old current page 1 is a prompt page: still pinned. */
    step_pages(&d, 4, (int[]){0, 1, 2}, 3, NULL);
    step_pages(&d, 5, (int[]){0, 1, 2}, 3, NULL);
    /* t=6 opens page 3: page 2 becomes evictable (ts 6); 3 pages held < 6, nothing goes. */
    step_pages(&d, 6, (int[]){0, 1, 2, 3}, 4, NULL); /* refresh: {2} -> ts 6 */
    step_pages(&d, 7, (int[]){0, 1, 2, 3}, 4, NULL); /* {2} -> ts 7 */
    /* t=8 opens page 4: page 3 evictable, ts 8. Evictable {2,3}: refresh 1 page. Page 2 gets
     * more mass: page 2 -> ts 8 (3 has 8). */
    p[4] = .3, p[6] = .1;
    step_pages(&d, 8, (int[]){0, 1, 2, 3, 4}, 5, p);
    /* t=9: page 3 gets more: 3 -> ts 9; 2 stays 8. */
    memset(p, 0, sizeof p);
    p[5] = .1, p[7] = .3;
    step_pages(&d, 9, (int[]){0, 1, 2, 3, 4}, 5, p);
    /* t=10 opens page 5: page 4 evictable ts 10; 6 pages held = capacity, none evicted yet.
     * Evictable {2,3,4}: refresh ceil(1.5) = 2: pages 2 and 4 -> ts 10; 3 stays 9. */
    memset(p, 0, sizeof p);
    p[4] = .2, p[8] = .2, p[6] = .05;
    step_pages(&d, 10, (int[]){0, 1, 2, 3, 4, 5}, 6, p);
    /* t=11: pages 3 and 4 -> ts 11; 2 stays 10. */
    memset(p, 0, sizeof p);
    p[6] = .2, p[9] = .2, p[5] = .05;
    step_pages(&d, 11, (int[]){0, 1, 2, 3, 4, 5}, 6, p);
    /* t=12 opens page 6: page 5 evictable ts 12; full: the oldest is page 2 (ts 10): gone.
     * Evictable {3,4,5}, no attention on them: a three-way tie, the lower pages win: 3 and 4
     * -> ts 12 (5 has 12). */
    step_pages(&d, 12, (int[]){0, 1, 3, 4, 5, 6}, 6, NULL);
    /* t=13: pages 5 and 4 -> ts 13; 3 stays 12. */
    memset(p, 0, sizeof p);
    p[10] = .3, p[8] = .2;
    step_pages(&d, 13, (int[]){0, 1, 3, 4, 5, 6}, 6, p);
    /* t=14 opens page 7: page 6 evictable ts 14; the oldest, page 3 (12), goes. Tie among
     * {4,5,6} again: 4, 5 -> 14. */
    step_pages(&d, 14, (int[]){0, 1, 4, 5, 6, 7}, 6, NULL);
    step_pages(&d, 15, (int[]){0, 1, 4, 5, 6, 7}, 6, NULL); /* 4, 5 -> 15; 6 stays 14 */
    /* t=16 opens page 8: page 7 evictable ts 16; the oldest, page 6 (14), goes. */
    step_pages(&d, 16, (int[]){0, 1, 4, 5, 7, 8}, 6, NULL); /* 4, 5 -> 16 */
    step_pages(&d, 17, (int[]){0, 1, 4, 5, 7, 8}, 6, NULL); /* 4, 5 -> 17; 7 stays 16 */
    /* t=18 opens page 9: page 8 evictable ts 18; the oldest is page 7 (16). */
    step_pages(&d, 18, (int[]){0, 1, 4, 5, 8, 9}, 6, NULL);
    drv_destroy(&d);
}

static void hand_threshold(void) {
    /* P=2, L=8: capacity 4 pages. refresh=threshold alpha=0.5: evictable pages whose mean
     * attention per token exceeds 0.5 times uniform over the attended set, mass / 2 * |S|
     * > 0.5, get the step's timestamp. The prompt is 2 tokens: page 0 pinned. */
    drv d;
    drv_create(&d, "raas", "raas.refresh=threshold", "raas.alpha=0.5", 8, 2);
    drv_prefill(&d, 2);
    double p[64] = {0};
    step_pages(&d, 2, (int[]){0, 1}, 2, NULL);
    step_pages(&d, 3, (int[]){0, 1}, 2, NULL);
    /* t=4 opens page 2: page 1 evictable, ts 4. */
    step_pages(&d, 4, (int[]){0, 1, 2}, 3, NULL);
    p[2] = .25; /* page 1: .25 / 2 * |S| (6) = .75 > .5: ts 5 */
    step_pages(&d, 5, (int[]){0, 1, 2}, 3, p);
    /* t=6 opens page 3: page 2 evictable ts 6; 4 pages held. Nothing above alpha: each page
     * .05 / 2 * 7 = .175. */
    memset(p, 0, sizeof p);
    p[2] = .05, p[4] = .05;
    step_pages(&d, 6, (int[]){0, 1, 2, 3}, 4, p);
    /* t=7: page 1 (.2 / 2 * 8 = .8) and page 2 (1.2) both refreshed: both ts 7. */
    memset(p, 0, sizeof p);
    p[3] = .2, p[5] = .3;
    step_pages(&d, 7, (int[]){0, 1, 2, 3}, 4, p);
    /* t=8 opens page 4: page 3 evictable ts 8; full; pages 1 and 2 tie at ts 7: the lower
     * one, page 1, goes. */
    step_pages(&d, 8, (int[]){0, 2, 3, 4}, 4, NULL);
    step_pages(&d, 9, (int[]){0, 2, 3, 4}, 4, NULL);
    /* t=10 opens page 5: page 4 evictable ts 10; the oldest is page 2 (7). */
    step_pages(&d, 10, (int[]){0, 3, 4, 5}, 4, NULL);
    drv_destroy(&d);
}

/* A decode of n steps after a prompt of n_prefill tokens on the driver (P=2, L=8: 4 pages),
 * where position `milestone` gets attention mass `m` at every step and the rest is spread
 * evenly. Returns 1 if the milestone is still attended at the end. */
static int milestone_kept(const char *p1, const char *p2, int n_prefill, int milestone, double m,
                          int steps) {
    drv d;
    drv_create(&d, "raas", p1, p2, 8, 2);
    drv_prefill(&d, n_prefill);
    for (int pos = n_prefill; pos < n_prefill + steps; pos++) {
        d.ops->append(d.st, pos, d.k[pos], d.v[pos]);
        float q[2] = {0, 0};
        policy_step step = {.pos = pos, .q = q};
        d.ops->select(d.st, &step, &d.sel);
        int n = d.sel.n[0], has = 0;
        for (int j = 0; j < n; j++) has |= d.sel.pos[j] == milestone;
        for (int j = 0; j < n; j++)
            d.probs[j] = has ? (d.sel.pos[j] == milestone ? (float)m : (float)((1 - m) / (n - 1)))
                             : (float)(1.0 / n);
        d.ops->observe(d.st, &step, &d.sel, d.probs);
        if (!has) {
            drv_destroy(&d);
            return 0;
        }
    }
    drv_destroy(&d);
    return 1;
}

static void threshold_keeps_milestones(void) {
    /* A milestone at position 2 (page 1) that draws half the attention at every step. The
     * threshold rule (a page's mean attention per token above alpha = 2 times uniform) keeps
     * refreshing its page, so it survives 40 steps in a 4-page cache, while the other pages
     * (about 0.7 times uniform) are not refreshed; with no refresh (top_frac r=0) RaaS is
     * FIFO and the page goes as soon as three newer pages need room. */
    TK_CHECK(milestone_kept("raas.refresh=threshold", "raas.alpha=2", 2, 2, 0.5, 40),
             "threshold refresh lost the milestone");
    TK_CHECK(!milestone_kept("raas.refresh=top_frac", "raas.r=0", 2, 2, 0.5, 40),
             "FIFO kept the milestone");
    /* and a page of ordinary tokens (no milestone) is not kept by the threshold rule */
    TK_CHECK(!milestone_kept("raas.refresh=threshold", "raas.alpha=2", 2, 2, 0.0, 40),
             "an unattended page survived the threshold rule");
}

/* budget=decode keeps the pinned prompt outside L; pin_prefill=0 lets prompt pages go. */
static void budget_modes(void) {
    /* P=8, L=32 (4 pages), a prompt of 40 tokens (5 pages). */
    const char *modes[][2] = {{"raas.budget=total", NULL}, {"raas.budget=decode", NULL},
                              {"raas.pin_prefill=0", NULL}};
    int want_pages[] = {6, 9, 4}; /* max(4, 5 + 1); 5 + 4; 4 */
    for (int m = 0; m < 3; m++) {
        tk_cfg c = {.policy = "raas", .params = modes[m], .n_params = 1, .n_q = 4, .n_kv = 2,
                    .d = 8, .budget = 32, .page_size = 8, .n_prefill = 40, .n_tokens = 200,
                    .seed = 3};
        tk t;
        rb_err e = {0};
        RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
        tk_prefill(&t);
        for (int pos = 40; pos < 200; pos++) tk_step(&t, pos);
        for (int g = 0; g < 2; g++)
            TK_CHECK(tk_pages_held(&t, g) == want_pages[m], "%s: %d pages held, want %d",
                     modes[m][0], tk_pages_held(&t, g), want_pages[m]);
        int prompt_attended = 0;
        for (int j = 0; j < 40; j++) prompt_attended += tk_in_sel(&t, 0, j);
        TK_CHECK(m == 2 ? prompt_attended < 40 : prompt_attended == 40,
                 "%s: %d of 40 prompt tokens attended at the end", modes[m][0], prompt_attended);
        tk_destroy(&t);
    }
}

/* ---- random data against a by-page simulation ---- */
enum { S_NONE, S_PIN, S_CUR, S_EV };

static void random_run(int L, int P, int n_prefill, const char *score, const char *refresh,
                       double r, double alpha, uint64_t seed) {
    char p1[40], p2[40], p3[40], p4[40];
    snprintf(p1, sizeof p1, "raas.score=%s", score);
    snprintf(p2, sizeof p2, "raas.refresh=%s", refresh);
    snprintf(p3, sizeof p3, "raas.r=%g", r);
    snprintf(p4, sizeof p4, "raas.alpha=%g", alpha);
    const char *kv[] = {p1, p2, p3, p4};
    tk_cfg c = {.policy = "raas", .params = kv, .n_params = 4, .n_q = 4, .n_kv = 2, .d = 8,
                .budget = L, .page_size = P, .n_prefill = n_prefill, .n_tokens = 260, .seed = seed};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    int N = c.n_tokens, G = t.G, d = c.d, cap = L / P, MP = (N + P - 1) / P;
    RB_CHECK(MP <= 128);
    int exact = !strcmp(score, "exact"), thr = !strcmp(refresh, "threshold");
    int pinned = n_prefill ? (n_prefill - 1) / P + 1 : 0;
    int *st = rb_calloc((size_t)MP * c.n_kv, sizeof(int));
    int *ts = rb_calloc((size_t)MP * c.n_kv, sizeof(int));
    double *sc = rb_malloc(sizeof(double) * MP), *mass = rb_malloc(sizeof(double) * MP);
    for (int g = 0; g < c.n_kv; g++)
        for (int p = 0; p < pinned; p++) st[g * MP + p] = S_PIN;
    tk_prefill(&t);
    int64_t flat = -1, flat_meta = -1;
    for (int pos = n_prefill; pos < N; pos++) {
        int page = pos / P;
        for (int g = 0; g < c.n_kv; g++) {
            int *s = st + g * MP, *tsg = ts + g * MP;
            if (pos % P == 0 && s[page] == S_NONE) {
                if (page > 0 && s[page - 1] == S_CUR) s[page - 1] = S_EV, tsg[page - 1] = pos;
                for (;;) {
                    int held = 0, w = -1;
                    for (int p = 0; p < page; p++) held += s[p] != S_NONE;
                    if (held < cap) break;
                    for (int p = 0; p < page; p++) /* ascending p: ties keep the lowest */
                        if (s[p] == S_EV && (w < 0 || tsg[p] < tsg[w])) w = p;
                    if (w < 0) break;
                    s[w] = S_NONE;
                }
                s[page] = S_CUR;
            }
        }
        tk_step(&t, pos);
        const float *q = t.q + (size_t)pos * c.n_q * d;
        for (int g = 0; g < c.n_kv; g++) {
            int *s = st + g * MP, *tsg = ts + g * MP, h0 = g * G, held = 0;
            for (int p = 0; p <= page; p++) held += s[p] != S_NONE;
            TK_CHECK(held == tk_pages_held(&t, g), "step %d kv %d: %d pages held, simulation %d",
                     pos, g, tk_pages_held(&t, g), held);
            TK_CHECK(held <= (cap > pinned + 1 ? cap : pinned + 1), "step %d: %d pages", pos, held);
            for (int h = h0; h < h0 + G; h++) {
                int cnt = 0;
                for (int j = 0; j <= pos; j++) {
                    int want = s[j / P] != S_NONE;
                    cnt += want;
                    if (want) TK_CHECK(tk_in_sel(&t, h, j), "step %d head %d: %d missing", pos, h, j);
                    if (j < n_prefill) TK_CHECK(tk_in_sel(&t, h, j), "prefill %d evicted", j);
                }
                TK_CHECK(tk_attended(&t, h) == cnt, "step %d head %d: |S|=%d sim %d", pos, h,
                         tk_attended(&t, h), cnt);
            }
            /* refresh */
            int ev[128], n_ev = 0;
            for (int p = 0; p <= page; p++)
                if (s[p] == S_EV) ev[n_ev++] = p;
            for (int i = 0; i < n_ev; i++) mass[ev[i]] = 0;
            for (int h = h0; h < h0 + G; h++) {
                double m[128] = {0}; /* pages: at most 260/4 + 1 */
                for (int j = 0; j < t.sel.n[h0]; j++) {
                    int pp = t.sel.pos[(size_t)h0 * t.sel.cap + j] / P;
                    m[pp] += t.probs[(size_t)h * t.sel.cap + j];
                }
                for (int i = 0; i < n_ev; i++) mass[ev[i]] = fmax(mass[ev[i]], m[ev[i]]);
            }
            if (thr) { /* mean attention per token against uniform 1/|S| */
                for (int i = 0; i < n_ev; i++) {
                    int n_tok = (ev[i] + 1) * P > pos + 1 ? pos + 1 - ev[i] * P : P;
                    if (mass[ev[i]] / n_tok * t.sel.n[h0] > alpha) tsg[ev[i]] = pos;
                }
                continue;
            }
            for (int i = 0; i < n_ev; i++) {
                int p = ev[i];
                if (exact) {
                    sc[p] = mass[p];
                } else {
                    double best = -INFINITY;
                    for (int h = h0; h < h0 + G; h++) {
                        double u = 0;
                        for (int cc = 0; cc < d; cc++) {
                            double mx = -INFINITY, mn = INFINITY;
                            for (int j = p * P; j < (p + 1) * P; j++) {
                                double x = t.k[((size_t)j * c.n_kv + g) * d + cc];
                                mx = fmax(mx, x), mn = fmin(mn, x);
                            }
                            u += fmax((double)q[h * d + cc] * mx, (double)q[h * d + cc] * mn);
                        }
                        best = fmax(best, u);
                    }
                    sc[p] = best;
                }
            }
            int k = (int)ceil(r * n_ev - 1e-9);
            uint8_t taken[128] = {0};
            for (int it = 0; it < k; it++) {
                int b = -1;
                for (int i = 0; i < n_ev; i++)
                    if (!taken[i] && (b < 0 || sc[ev[i]] > sc[ev[b]])) b = i;
                taken[b] = 1;
                tsg[ev[b]] = pos;
            }
        }
        if (pos > n_prefill + L) { /* warm-up over: the cache has been full for a while */
            if (flat >= 0)
                TK_CHECK(tk_kv_bytes(&t) == flat, "step %d: bytes %lld, flat at %lld", pos,
                         (long long)tk_kv_bytes(&t), (long long)flat);
            flat = tk_kv_bytes(&t);
            if (flat_meta >= 0)
                TK_CHECK(tk_meta_bytes(&t) == flat_meta, "step %d: meta bytes %lld, flat at %lld",
                         pos, (long long)tk_meta_bytes(&t), (long long)flat_meta);
            flat_meta = tk_meta_bytes(&t);
        }
    }
    free(st);
    free(ts);
    free(sc);
    free(mass);
    tk_destroy(&t);
}

int main(void) {
    hand_top_frac();
    hand_threshold();
    threshold_keeps_milestones();
    budget_modes();
    random_run(32, 8, 20, "bound", "top_frac", 0.5, 1e-4, 21);
    random_run(32, 8, 20, "exact", "top_frac", 0.5, 1e-4, 22);
    random_run(48, 8, 5, "exact", "threshold", 0.5, 0.8, 23);
    random_run(40, 8, 0, "bound", "threshold", 0.5, 1.5, 24);
    random_run(32, 8, 17, "bound", "top_frac", 0.2, 1e-4, 25);
    random_run(16, 8, 50, "bound", "top_frac", 0.5, 1e-4, 26); /* pinned (7) > capacity (2) */
    random_run(16, 4, 16, "exact", "top_frac", 1.0, 1e-4, 27);
    if (tk_failures) return 1;
    printf("# raas: hand examples and simulation agree; prefill pinned, <= max(L/P, pinned+1) pages, flat bytes;\n"
           "# budget=decode holds prompt + L/P pages, pin_prefill=0 evicts prompt pages; the threshold rule keeps\n"
           "# a milestone FIFO loses\n");
    return 0;
}
