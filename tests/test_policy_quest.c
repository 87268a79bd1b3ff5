/* test_policy_quest.c: Quest. The page bound from the pool's incremental min/max is never
 * below the true max q.k of the page and equals the bound from the page's keys; the
 * selection is exactly the current page plus the floor(L/P)-1 other pages of largest bound
 * (recomputed here by brute force from the raw keys, ties to the lower page), per KV group
 * or per query head; everything is attended while t+1 <= L; memory grows linearly. */
#include "policy_testkit.h"
#include "policy_util.h"

static void test_bound(void) {
    const int d = 16, P = 8, n = 100;
    uint64_t s = 11;
    kv_pool *pool = kv_pool_create(d, P, 2);
    pu_pages pg;
    pu_pages_init(&pg, pool, n, 1);
    float k[100][16], v[16] = {0};
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < d; c++) k[i][c] = (float)(tu_randn(&s) * (1 + i % 3));
        pu_pages_store(&pg, i, k[i], v);
    }
    for (int trial = 0; trial < 50; trial++) {
        float q[16];
        for (int c = 0; c < d; c++) q[c] = (float)tu_randn(&s);
        for (int p = 0; p * P < n; p++) {
            double best = -INFINITY, brute = 0, mag = 0;
            for (int c = 0; c < d; c++) {
                double mx = -INFINITY, mn = INFINITY;
                for (int i = p * P; i < (p + 1) * P && i < n; i++) {
                    if (k[i][c] > mx) mx = k[i][c];
                    if (k[i][c] < mn) mn = k[i][c];
                }
                brute += fmax((double)q[c] * mx, (double)q[c] * mn);
                mag += fabs(q[c]) * fmax(fabs(mx), fabs(mn));
            }
            for (int i = p * P; i < (p + 1) * P && i < n; i++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += (double)q[c] * k[i][c];
                if (dot > best) best = dot;
            }
            double u = pu_pages_bound(&pg, p, q);
            /* Both sides are double sums of d products of floats: rounding is ~d * 1e-16
             * of the magnitude; 1e-12 relative is far above it and far below any real gap. */
            TK_CHECK(u >= best - 1e-12 * mag, "page %d: bound %.9g below max %.9g", p, u, best);
            TK_CHECK(fabs(u - brute) <= 1e-12 * mag, "page %d: bound %.9g, from keys %.9g", p, u, brute);
        }
    }
    /* The fast group bound against the plain one: 1..6 query rows (padding of a group of
     * four, and more than one group of four), all pages or a scattered list of them. */
    int n_pages = (n + P - 1) / P, list[16];
    for (int i = 0; i < n_pages; i++) list[i] = (i * 5 + 3) % n_pages;
    for (int nq = 1; nq <= 6; nq++)
        for (int use_list = 0; use_list < 2; use_list++) {
            float q[6 * 16];
            for (int c = 0; c < nq * d; c++) q[c] = (float)tu_randn(&s);
            double fast[16];
            pu_pages_bounds_max(&pg, use_list ? list : NULL, n_pages, q, nq, fast);
            for (int i = 0; i < n_pages; i++) {
                int p = use_list ? list[i] : i;
                double want = -INFINITY, mag = 0;
                for (int r = 0; r < nq; r++) {
                    double u = pu_pages_bound(&pg, p, q + r * d);
                    if (u > want) want = u;
                    for (int c = 0; c < d; c++) mag += fabs(q[r * d + c]) * 8;
                }
                TK_CHECK(fabs(fast[i] - want) <= 1e-12 * mag,
                         "bounds_max nq %d page %d: %.17g, plain %.17g", nq, p, fast[i], want);
            }
        }
    pu_pages_free(&pg);
    TK_CHECK(kv_pool_pages_held(pool) == 0, "pages back");
    kv_pool_destroy(pool);
}

/* Brute-force bound of page p for query head h at step data t (max over heads h0..h1). */
static double brute_bound(const tk *t, const float *q, int g, int p, int h0, int h1) {
    int d = t->c.d, P = t->c.page_size, nkv = t->c.n_kv;
    double best = -INFINITY;
    for (int h = h0; h < h1; h++) {
        double u = 0;
        for (int c = 0; c < d; c++) {
            double mx = -INFINITY, mn = INFINITY;
            for (int i = p * P; i < (p + 1) * P; i++) {
                double x = t->k[((size_t)i * nkv + g) * d + c];
                if (x > mx) mx = x;
                if (x < mn) mn = x;
            }
            u += fmax((double)q[(size_t)h * d + c] * mx, (double)q[(size_t)h * d + c] * mn);
        }
        if (u > best) best = u;
    }
    return best;
}

static void test_select(const char *gqa, int L, int n_prefill) {
    char param[32];
    snprintf(param, sizeof param, "quest.gqa=%s", gqa);
    const char *kv[] = {param};
    int per_head = !strcmp(gqa, "head");
    tk_cfg c = {.policy = "quest", .params = kv, .n_params = 1, .n_q = 4, .n_kv = 2, .d = 8,
                .budget = L, .page_size = 8, .n_prefill = n_prefill, .n_tokens = 170, .seed = 9};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    tk_prefill(&t);
    int P = c.page_size, k_pages = L / P;
    double *score = rb_malloc(sizeof(double) * 64);
    uint8_t *want = rb_malloc(64);
    for (int pos = n_prefill; pos < c.n_tokens; pos++) {
        tk_step(&t, pos);
        const float *q = t.q + (size_t)pos * c.n_q * c.d;
        int cur = pos / P;
        for (int h = 0; h < c.n_q; h++) {
            int g = h / t.G;
            if (pos + 1 <= L) {
                TK_CHECK(tk_attended(&t, h) == pos + 1, "step %d: all %d attended, got %d", pos,
                         pos + 1, tk_attended(&t, h));
                continue;
            }
            int h0 = per_head ? h : g * t.G, h1 = per_head ? h + 1 : (g + 1) * t.G;
            for (int p = 0; p < cur; p++) score[p] = brute_bound(&t, q, g, p, h0, h1);
            /* pick k_pages-1 by repeated max: larger score, then lower page */
            memset(want, 0, 64);
            want[cur] = 1;
            for (int r = 0; r < k_pages - 1 && r < cur; r++) {
                int b = -1;
                for (int p = 0; p < cur; p++)
                    if (!want[p] && (b < 0 || score[p] > score[b])) b = p;
                want[b] = 1;
            }
            int n_want = 0;
            for (int p = 0; p <= pos; p++) {
                n_want += want[p / P];
                if (want[p / P]) TK_CHECK(tk_in_sel(&t, h, p), "%s step %d head %d: %d missing", gqa, pos, h, p);
            }
            TK_CHECK(tk_attended(&t, h) == n_want, "%s step %d head %d: |S|=%d want %d", gqa, pos,
                     h, tk_attended(&t, h), n_want);
            TK_CHECK(tk_attended(&t, h) <= L, "step %d: over budget", pos);
        }
        /* min/max (2 x d floats) and a block-table entry (2 ints) per page: linear too */
        TK_CHECK(tk_meta_bytes(&t) == (int64_t)(cur + 1) * (2 * c.d * 4 + 8) * c.n_kv,
                 "step %d: meta %lld", pos, (long long)tk_meta_bytes(&t));
        int64_t lin = (int64_t)(cur + 1) * P * c.d * 2 * 2 * c.n_kv;
        TK_CHECK(tk_kv_bytes(&t) == lin, "step %d: bytes %lld, linear %lld", pos,
                 (long long)tk_kv_bytes(&t), (long long)lin);
    }
    free(score);
    free(want);
    tk_destroy(&t);
}

int main(void) {
    test_bound();
    test_select("group", 32, 30);
    test_select("head", 32, 30);
    test_select("group", 16, 3);
    test_select("head", 40, 50); /* L not a multiple of P: floor(40/8) = 5 pages */
    if (tk_failures) return 1;
    printf("# quest: bound >= true max; current + top floor(L/P)-1 pages (group and head)\n");
    return 0;
}
