/* policy_util.c: shared pieces of the policies (see policy_util.h). */
#include "policy_util.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

void pu_pages_init(pu_pages *pg, kv_pool *pool, int max_tokens, int track_bounds) {
    RB_CHECK(pool && max_tokens > 0 && kv_pool_pages_held(pool) == 0);
    memset(pg, 0, sizeof *pg);
    pg->pool = pool;
    pg->P = kv_pool_page_size(pool);
    pg->d = kv_pool_head_dim(pool);
    pg->max_pages = (max_tokens + pg->P - 1) / pg->P;
    pg->track_bounds = track_bounds;
    pg->pool_id = rb_malloc(sizeof *pg->pool_id * (size_t)pg->max_pages);
    for (int i = 0; i < pg->max_pages; i++) pg->pool_id[i] = -1;
}

void pu_pages_free(pu_pages *pg) {
    if (!pg->pool_id) return;
    for (int i = 0; i < pg->n_seen; i++)
        if (pg->pool_id[i] >= 0) kv_pool_page_give(pg->pool, pg->pool_id[i]);
    free(pg->pool_id);
    free(pg->kmin);
    free(pg->kmax);
    memset(pg, 0, sizeof *pg);
}

void pu_pages_store(pu_pages *pg, int pos, const float *k, const float *v) {
    int page = pos / pg->P, slot = pos % pg->P, d = pg->d;
    RB_CHECK(pos >= 0 && page < pg->max_pages);
    int fresh = 0;
    if (pg->pool_id[page] < 0) {
        RB_CHECK(page >= pg->n_seen); /* never refill an evicted page */
        int id = kv_pool_page_take(pg->pool);
        pg->pool_id[page] = id;
        pg->n_held++;
        pg->n_seen = page + 1;
        fresh = 1;
        if (pg->track_bounds && id >= pg->cap_ids) {
            int cap = pg->cap_ids ? 2 * pg->cap_ids : 16;
            while (cap <= id) cap *= 2;
            pg->kmin = rb_realloc(pg->kmin, sizeof(float) * (size_t)cap * d);
            pg->kmax = rb_realloc(pg->kmax, sizeof(float) * (size_t)cap * d);
            pg->cap_ids = cap;
        }
    }
    int id = pg->pool_id[page];
    kv_pool_store(pg->pool, (kv_slot){.page = id, .slot = slot}, k, v);
    if (!pg->track_bounds) return;
    float *mn = pg->kmin + (size_t)id * d, *mx = pg->kmax + (size_t)id * d;
    if (fresh) {
        memcpy(mn, k, sizeof(float) * d);
        memcpy(mx, k, sizeof(float) * d);
    } else {
        for (int i = 0; i < d; i++) {
            if (k[i] < mn[i]) mn[i] = k[i];
            if (k[i] > mx[i]) mx[i] = k[i];
        }
    }
}

void pu_pages_drop(pu_pages *pg, int page) {
    RB_CHECK(page >= 0 && page < pg->n_seen && pg->pool_id[page] >= 0);
    kv_pool_page_give(pg->pool, pg->pool_id[page]);
    pg->pool_id[page] = -1;
    pg->n_held--;
}

const float *pu_pages_k(const pu_pages *pg, int pos) {
    int page = pos / pg->P;
    RB_CHECK(page < pg->n_seen && pg->pool_id[page] >= 0);
    return kv_pool_k(pg->pool, pg->pool_id[page], pos % pg->P);
}

const float *pu_pages_v(const pu_pages *pg, int pos) {
    int page = pos / pg->P;
    RB_CHECK(page < pg->n_seen && pg->pool_id[page] >= 0);
    return kv_pool_v(pg->pool, pg->pool_id[page], pos % pg->P);
}

double pu_pages_bound(const pu_pages *pg, int page, const float *q) {
    RB_CHECK(pg->track_bounds && pg->pool_id[page] >= 0);
    int id = pg->pool_id[page];
    const float *mn = pg->kmin + (size_t)id * pg->d, *mx = pg->kmax + (size_t)id * pg->d;
    double u = 0;
    for (int i = 0; i < pg->d; i++) {
        double a = (double)q[i] * mx[i], b = (double)q[i] * mn[i];
        u += a > b ? a : b;
    }
    return u;
}

/* sum_i max(q_i mx_i, q_i mn_i) = q+ . mx + q- . mn with q+ = max(q, 0), q- = min(q, 0):
 * two fused multiply-adds per channel, four channels per vector, four query rows per pass
 * over the page's min/max (a group of fewer rows repeats its last, which leaves the max
 * unchanged). Products of two floats are exact in double, as in pu_pages_bound. */
void pu_pages_bounds_max(const pu_pages *pg, const int *pages, int n, const float *q, int nq,
                         double *out) {
    RB_CHECK(pg->track_bounds && nq > 0 && n >= 0);
    int d = pg->d, d4 = d & ~3;
    double qbuf[8 * (size_t)d]; /* q+ and q- of four rows; per step, so not on the heap */
    double *qp = qbuf, *qn = qbuf + 4 * (size_t)d;
    for (int i = 0; i < n; i++) out[i] = -INFINITY;
    for (int r0 = 0; r0 < nq; r0 += 4) {
        for (int h = 0; h < 4; h++) {
            const float *qr = q + (size_t)(r0 + h < nq ? r0 + h : nq - 1) * d;
            for (int c = 0; c < d; c++) {
                qp[(size_t)h * d + c] = qr[c] > 0 ? qr[c] : 0;
                qn[(size_t)h * d + c] = qr[c] < 0 ? qr[c] : 0;
            }
        }
        for (int i = 0; i < n; i++) {
            int page = pages ? pages[i] : i, id = pg->pool_id[page];
            RB_CHECK(id >= 0);
            const float *mn = pg->kmin + (size_t)id * d, *mx = pg->kmax + (size_t)id * d;
            __m256d a[4];
            for (int h = 0; h < 4; h++) a[h] = _mm256_setzero_pd();
            for (int c = 0; c < d4; c += 4) {
                __m256d vmx = _mm256_cvtps_pd(_mm_loadu_ps(mx + c));
                __m256d vmn = _mm256_cvtps_pd(_mm_loadu_ps(mn + c));
                for (int h = 0; h < 4; h++) {
                    a[h] = _mm256_fmadd_pd(_mm256_loadu_pd(qp + (size_t)h * d + c), vmx, a[h]);
                    a[h] = _mm256_fmadd_pd(_mm256_loadu_pd(qn + (size_t)h * d + c), vmn, a[h]);
                }
            }
            for (int h = 0; h < 4; h++) {
                __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(a[h]), _mm256_extractf128_pd(a[h], 1));
                double u = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
                for (int c = d4; c < d; c++)
                    u += qp[(size_t)h * d + c] * mx[c] + qn[(size_t)h * d + c] * mn[c];
                if (u > out[i]) out[i] = u;
            }
        }
    }
}

int64_t pu_pages_meta_bytes(const pu_pages *pg) {
    /* A serving system's block table holds one (logical, physical) pair per resident page;
     * the dense map here is a convenience of the harness, not a cost of the policy. */
    int64_t b = (int64_t)pg->n_held * 2 * (int64_t)sizeof(int32_t);
    if (pg->track_bounds) b += (int64_t)pg->n_held * pg->d * 2 * (int64_t)sizeof(float);
    return b;
}

void pu_sel_add_pages(policy_selection *sel, int h, const pu_pages *pg, const int *pages, int n,
                      int last_pos) {
    for (int i = 0; i < n; i++) {
        int lo = pages[i] * pg->P, hi = lo + pg->P - 1;
        if (hi > last_pos) hi = last_pos;
        for (int t = lo; t <= hi; t++) pu_sel_add(sel, h, t, pu_pages_k(pg, t), pu_pages_v(pg, t));
    }
}

/* k-th largest of x[0..n) (k in 1..n), by quickselect on a scratch copy: O(n) expected. */
static double kth_largest(double *x, int n, int k) {
    int lo = 0, hi = n - 1, want = k - 1; /* index in descending order */
    while (lo < hi) {
        /* median of three as pivot keeps sorted and reversed inputs linear */
        int mid = lo + (hi - lo) / 2;
        double a = x[lo], b = x[mid], c = x[hi];
        double piv = (a > b) == (b > c) ? b : (a > b) == (a > c) ? c : a;
        int i = lo, j = hi;
        while (i <= j) {
            while (x[i] > piv) i++;
            while (x[j] < piv) j--;
            if (i <= j) {
                double t = x[i]; x[i] = x[j]; x[j] = t;
                i++, j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return x[want];
    }
    return x[want];
}

int pu_topk(const double *score, int n, int k, int *out) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    /* Threshold, then one pass in index order: everything above the k-th best, then the
     * ties at it from the lowest index. Output comes out ascending without a sort. */
    double *tmp = rb_malloc(sizeof *tmp * (size_t)n);
    memcpy(tmp, score, sizeof *tmp * (size_t)n);
    double thr = kth_largest(tmp, n, k);
    free(tmp);
    int above = 0;
    for (int i = 0; i < n; i++) above += score[i] > thr;
    int ties = k - above, m = 0;
    for (int i = 0; i < n; i++) {
        if (score[i] > thr) out[m++] = i;
        else if (score[i] == thr && ties > 0) out[m++] = i, ties--;
    }
    return m;
}

rb_status pu_check_config(const policy_config *cfg, const char *policy, pu_budget_rule rule,
                          rb_err *e) {
    if (cfg->n_q_heads <= 0 || cfg->n_kv_heads <= 0 || cfg->head_dim <= 0 ||
        cfg->n_q_heads % cfg->n_kv_heads != 0)
        return rb_fail(e, RB_EINPUT, policy,
                       "bad head layout: %d query heads, %d KV heads, head_dim %d",
                       cfg->n_q_heads, cfg->n_kv_heads, cfg->head_dim);
    if (cfg->max_tokens <= 0)
        return rb_fail(e, RB_EINPUT, policy, "max_tokens must be positive (got %d)",
                       cfg->max_tokens);
    if (cfg->page_size <= 0)
        return rb_fail(e, RB_EINPUT, policy, "page size must be positive (got %d)",
                       cfg->page_size);
    if (rule != PU_BUDGET_NONE && cfg->budget < 1)
        return rb_fail(e, RB_EINPUT, policy, "budget L=%d: must be at least 1 token",
                       cfg->budget);
    if (rule == PU_BUDGET_PAGES && cfg->budget < 2 * cfg->page_size)
        return rb_fail(e, RB_EINPUT, policy,
                       "budget L=%d is below two pages (L >= 2P = %d with page size P=%d): a "
                       "page policy needs the current page plus at least one other",
                       cfg->budget, 2 * cfg->page_size, cfg->page_size);
    if (!cfg->pools)
        return rb_fail(e, RB_EINPUT, policy, "no KV pools given");
    for (int g = 0; g < cfg->n_kv_heads; g++) {
        if (!cfg->pools[g] || kv_pool_head_dim(cfg->pools[g]) != cfg->head_dim ||
            kv_pool_page_size(cfg->pools[g]) != cfg->page_size ||
            kv_pool_pages_held(cfg->pools[g]) != 0)
            return rb_fail(e, RB_EINPUT, policy,
                           "KV pool %d must exist, be empty and match head_dim %d and page "
                           "size %d",
                           g, cfg->head_dim, cfg->page_size);
    }
    return RB_OK;
}

/* ---- token-granular store ---- */

void pu_tokens_init(pu_tokens *tk, kv_pool *pool, int max_tokens) {
    RB_CHECK(pool && max_tokens > 0);
    memset(tk, 0, sizeof *tk);
    tk->pool = pool;
    tk->d = kv_pool_head_dim(pool);
    tk->max_tokens = max_tokens;
    tk->slot_of = rb_malloc(sizeof *tk->slot_of * (size_t)max_tokens);
    for (int i = 0; i < max_tokens; i++) tk->slot_of[i] = (kv_slot){.page = -1, .slot = -1};
}

void pu_tokens_free(pu_tokens *tk) {
    if (!tk->slot_of) return;
    for (int i = 0; i < tk->max_tokens; i++)
        if (tk->slot_of[i].page >= 0) kv_pool_slot_give(tk->pool, tk->slot_of[i]);
    free(tk->slot_of);
    memset(tk, 0, sizeof *tk);
}

void pu_tokens_store(pu_tokens *tk, int pos, const float *k, const float *v) {
    RB_CHECK(pos >= 0 && pos < tk->max_tokens && tk->slot_of[pos].page < 0);
    kv_slot s = kv_pool_slot_take(tk->pool);
    kv_pool_store(tk->pool, s, k, v);
    tk->slot_of[pos] = s;
    tk->n_res++;
}

void pu_tokens_drop(pu_tokens *tk, int pos) {
    RB_CHECK(pos >= 0 && pos < tk->max_tokens && tk->slot_of[pos].page >= 0);
    kv_pool_slot_give(tk->pool, tk->slot_of[pos]);
    tk->slot_of[pos] = (kv_slot){.page = -1, .slot = -1};
    tk->n_res--;
}

const float *pu_tokens_k(const pu_tokens *tk, int pos) {
    RB_CHECK(pos >= 0 && pos < tk->max_tokens && tk->slot_of[pos].page >= 0);
    return kv_pool_k(tk->pool, tk->slot_of[pos].page, tk->slot_of[pos].slot);
}

const float *pu_tokens_v(const pu_tokens *tk, int pos) {
    RB_CHECK(pos >= 0 && pos < tk->max_tokens && tk->slot_of[pos].page >= 0);
    return kv_pool_v(tk->pool, tk->slot_of[pos].page, tk->slot_of[pos].slot);
}

/* ---- a KV head's resident tokens as a list of entries ---- */

pu_list *pu_lists_create(const policy_config *cfg) {
    pu_list *l = rb_calloc((size_t)cfg->n_kv_heads, sizeof *l);
    for (int g = 0; g < cfg->n_kv_heads; g++) {
        pu_tokens_init(&l[g].tok, cfg->pools[g], cfg->max_tokens);
        l[g].cap = cfg->budget + 1;
        l[g].pos = rb_malloc(sizeof *l[g].pos * (size_t)l[g].cap);
    }
    return l;
}

void pu_lists_destroy(pu_list *l, int n_kv) {
    if (!l) return;
    for (int g = 0; g < n_kv; g++) {
        pu_tokens_free(&l[g].tok);
        free(l[g].pos);
    }
    free(l);
}

void pu_list_push(pu_list *l, int pos, const float *k, const float *v) {
    RB_CHECK(l->n == 0 || pos > l->pos[l->n - 1]);
    if (l->n == l->cap) { /* a prompt longer than L */
        l->cap *= 2;
        l->pos = rb_realloc(l->pos, sizeof *l->pos * (size_t)l->cap);
    }
    pu_tokens_store(&l->tok, pos, k, v);
    l->pos[l->n++] = pos;
}

void pu_lists_prefill(pu_list *l, const pu_shape *sh, int n, const float *k, const float *v) {
    size_t row = (size_t)sh->n_kv * sh->d;
    for (int g = 0; g < sh->n_kv; g++)
        for (int i = 0; i < n; i++)
            pu_list_push(&l[g], i, k + i * row + (size_t)g * sh->d,
                         v + i * row + (size_t)g * sh->d);
}

void pu_list_remove(pu_list *l, int i) {
    RB_CHECK(i >= 0 && i < l->n);
    pu_tokens_drop(&l->tok, l->pos[i]);
    memmove(l->pos + i, l->pos + i + 1, sizeof *l->pos * (size_t)(l->n - i - 1));
    l->n--;
}

void pu_list_keep(pu_list *l, int m, const int *top, int nk) {
    RB_CHECK(m >= 0 && m <= l->n && nk <= m);
    int o = 0, t = 0;
    for (int i = 0; i < m; i++) {
        if (t < nk && top[t] == i) {
            l->pos[o++] = l->pos[i];
            t++;
        } else {
            pu_tokens_drop(&l->tok, l->pos[i]);
        }
    }
    RB_CHECK(t == nk); /* top ascending, every index < m */
    for (int i = m; i < l->n; i++) l->pos[o++] = l->pos[i];
    l->n = o;
}

void pu_lists_select(const pu_list *l, const pu_shape *sh, policy_selection *sel) {
    for (int g = 0; g < sh->n_kv; g++)
        for (int i = 0; i < l[g].n; i++) {
            int p = l[g].pos[i];
            pu_sel_add(sel, g * sh->group, p, pu_tokens_k(&l[g].tok, p),
                       pu_tokens_v(&l[g].tok, p));
        }
}

int64_t pu_lists_meta_bytes(const pu_list *l, int n_kv) {
    int64_t b = 0;
    for (int g = 0; g < n_kv; g++)
        b += (int64_t)l[g].n * (int64_t)(sizeof(int32_t) + sizeof(kv_slot));
    return b;
}

pu_scored *pu_scored_create(const policy_config *cfg) {
    pu_scored *h = rb_calloc((size_t)cfg->n_kv_heads, sizeof *h);
    for (int g = 0; g < cfg->n_kv_heads; g++) {
        pu_tokens_init(&h[g].tok, cfg->pools[g], cfg->max_tokens);
        h[g].cap = cfg->budget + 1;
        h[g].ent = rb_malloc(sizeof *h[g].ent * (size_t)h[g].cap);
    }
    return h;
}

void pu_scored_destroy(pu_scored *h, int n_kv) {
    if (!h) return;
    for (int g = 0; g < n_kv; g++) {
        pu_tokens_free(&h[g].tok);
        free(h[g].ent);
    }
    free(h);
}

void pu_scored_push(pu_scored *hd, int pos, const float *k, const float *v, double score) {
    if (hd->n == hd->cap) { /* a prompt longer than L, or a head above L (adakv) */
        hd->cap *= 2;
        hd->ent = rb_realloc(hd->ent, sizeof *hd->ent * (size_t)hd->cap);
    }
    pu_tokens_store(&hd->tok, pos, k, v);
    hd->ent[hd->n++] = (pu_entry){.pos = pos, .score = score};
}

void pu_scored_drop_swap(pu_scored *hd, int i) {
    RB_CHECK(i >= 0 && i < hd->n);
    pu_tokens_drop(&hd->tok, hd->ent[i].pos);
    hd->ent[i] = hd->ent[--hd->n];
}

void pu_scored_drop_ordered(pu_scored *hd, int i) {
    RB_CHECK(i >= 0 && i < hd->n);
    pu_tokens_drop(&hd->tok, hd->ent[i].pos);
    memmove(hd->ent + i, hd->ent + i + 1, sizeof *hd->ent * (size_t)(hd->n - i - 1));
    hd->n--;
}

void pu_scored_select(const pu_scored *h, const pu_shape *sh, policy_selection *sel) {
    for (int g = 0; g < sh->n_kv; g++)
        for (int i = 0; i < h[g].n; i++) {
            int p = h[g].ent[i].pos;
            pu_sel_add(sel, g * sh->group, p, pu_tokens_k(&h[g].tok, p),
                       pu_tokens_v(&h[g].tok, p));
        }
}

void pu_scored_observe(pu_scored *h, const pu_shape *sh, const policy_selection *sel,
                       const float *probs, pu_score_rule rule) {
    int G = sh->group;
    for (int g = 0; g < sh->n_kv; g++) {
        pu_scored *hd = &h[g];
        int h0 = g * G;
        /* select listed the entries in array order and nothing moved since: probs line up
         * with the entries by index */
        RB_CHECK(sel->shared_by_group && sel->n[h0] == hd->n);
        for (int i = 0; i < hd->n; i++) {
            RB_CHECK(sel->pos[(size_t)h0 * sel->cap + i] == hd->ent[i].pos);
            double m = 0;
            for (int q = h0; q < h0 + G; q++) m += probs[(size_t)q * sel->cap + i];
            if (rule == PU_SCORE_ADD) hd->ent[i].score += m;
            else hd->ent[i].score = m / G;
        }
    }
}

int64_t pu_scored_meta_bytes(const pu_scored *h, int n_kv) {
    int64_t b = 0;
    for (int g = 0; g < n_kv; g++)
        b += (int64_t)h[g].n * (int64_t)(sizeof(int32_t) + sizeof(double) + sizeof(kv_slot));
    return b;
}

/* ---- the last W queries ---- */

void pu_qring_init(pu_qring *r, int W, const pu_shape *sh) {
    int rows = W > 0 ? W : 1;
    r->W = W;
    r->row = (size_t)sh->n_q * sh->d;
    r->q = rb_calloc((size_t)rows * r->row, sizeof *r->q);
    r->pos = rb_malloc(sizeof *r->pos * (size_t)rows);
    for (int i = 0; i < rows; i++) r->pos[i] = -1;
}

void pu_qring_free(pu_qring *r) {
    free(r->q);
    free(r->pos);
    memset(r, 0, sizeof *r);
}

void pu_qring_put(pu_qring *r, int pos, const float *q) {
    if (r->W == 0) return;
    memcpy(r->q + (size_t)(pos % r->W) * r->row, q, sizeof(float) * r->row);
    r->pos[pos % r->W] = pos;
}

void pu_qring_prefill(pu_qring *r, int n, const float *q) {
    for (int i = n - r->W > 0 ? n - r->W : 0; i < n; i++) pu_qring_put(r, i, q + (size_t)i * r->row);
}

const float *pu_qring_get(const pu_qring *r, int pos) {
    RB_CHECK(r->W > 0 && r->pos[pos % r->W] == pos);
    return r->q + (size_t)(pos % r->W) * r->row;
}

void pu_pool1d(const double *x, int m, int kernel, int avg, double *out) {
    int r = kernel / 2;
    for (int i = 0; i < m; i++) {
        double acc = avg ? 0 : -INFINITY;
        for (int j = i - r > 0 ? i - r : 0; j <= i + r && j < m; j++) {
            if (avg) acc += x[j];
            else if (x[j] > acc) acc = x[j];
        }
        out[i] = avg ? acc / kernel : acc;
    }
}

/* ---- every token resident ---- */

/* The policy's state begins with its pu_all (policy_util.h). */
static pu_all *all_of(policy_state *s) { return (pu_all *)(void *)s; }
static const pu_all *all_of_c(const policy_state *s) { return (const pu_all *)(const void *)s; }

rb_status pu_all_create(const policy_config *cfg, const pu_all_spec *spec, size_t state_bytes,
                        policy_state **out, rb_err *e) {
    RB_CHECK(state_bytes >= sizeof(pu_all));
    rb_status st = pu_check_config(cfg, spec->policy, spec->rule, e);
    if (st) return st;
    pu_all *a = rb_calloc(1, state_bytes);
    a->sh = pu_shape_of(cfg);
    a->last = -1;
    a->pages = rb_calloc((size_t)cfg->n_kv_heads, sizeof *a->pages);
    for (int g = 0; g < cfg->n_kv_heads; g++)
        pu_pages_init(&a->pages[g], cfg->pools[g], cfg->max_tokens, spec->with_bounds);
    int n_scratch = spec->scratch == PU_SCRATCH_TOKENS ? cfg->max_tokens
                    : spec->scratch == PU_SCRATCH_PAGES ? a->pages[0].max_pages
                                                        : 0;
    if (n_scratch > 0) {
        a->score = rb_calloc((size_t)n_scratch, sizeof *a->score);
        a->idx = rb_calloc((size_t)n_scratch, sizeof *a->idx);
    }
    *out = (policy_state *)(void *)a;
    return RB_OK;
}

void pu_all_destroy(policy_state *s) {
    if (!s) return;
    pu_all *a = all_of(s);
    for (int g = 0; g < a->sh.n_kv; g++) pu_pages_free(&a->pages[g]);
    free(a->pages);
    free(a->score);
    free(a->idx);
    free(a);
}

static void all_store(pu_all *a, int pos, const float *k, const float *v) {
    RB_CHECK(pos == a->last + 1);
    for (int g = 0; g < a->sh.n_kv; g++)
        pu_pages_store(&a->pages[g], pos, k + (size_t)g * a->sh.d, v + (size_t)g * a->sh.d);
    a->last = pos;
}

void pu_all_prefill(policy_state *s, int n, const float *q, const float *k, const float *v) {
    (void)q;
    pu_all *a = all_of(s);
    size_t row = (size_t)a->sh.n_kv * a->sh.d;
    for (int i = 0; i < n; i++) all_store(a, i, k + i * row, v + i * row);
}

void pu_all_append(policy_state *s, int pos, const float *k, const float *v) {
    all_store(all_of(s), pos, k, v);
}

int64_t pu_all_meta_bytes(const policy_state *s) {
    const pu_all *a = all_of_c(s);
    int64_t b = 0;
    for (int g = 0; g < a->sh.n_kv; g++) b += pu_pages_meta_bytes(&a->pages[g]);
    return b;
}

void pu_all_sel_begin(const pu_all *a, const policy_step *step, policy_selection *sel,
                      int shared) {
    RB_CHECK(step->pos == a->last);
    pu_sel_begin(sel, shared);
}

void pu_all_sel_range(policy_selection *sel, int h, const pu_all *a, int g, int lo, int hi) {
    const pu_pages *pg = &a->pages[g];
    for (int t = lo; t <= hi; t++) pu_sel_add(sel, h, t, pu_pages_k(pg, t), pu_pages_v(pg, t));
}

void pu_all_sel_list(policy_selection *sel, int h, const pu_all *a, int g, const int *pos,
                     int n) {
    const pu_pages *pg = &a->pages[g];
    for (int i = 0; i < n; i++)
        pu_sel_add(sel, h, pos[i], pu_pages_k(pg, pos[i]), pu_pages_v(pg, pos[i]));
}

/* ---- sinks + recent window ---- */

struct pu_sinkwin {
    pu_shape sh;
    int sinks;
    int last;    /* highest position stored */
    int lo;      /* lowest resident position >= sinks (the window's start) */
    pu_tokens *tok; /* [n_kv] */
};

/* A sinks+window policy's state is the pu_sinkwin itself (policy_util.h). */
static pu_sinkwin *sinkwin_of(policy_state *s) { return (pu_sinkwin *)(void *)s; }

rb_status pu_sinkwin_create(const policy_config *cfg, const char *policy, int sinks,
                            policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, policy, PU_BUDGET_TOKENS, e);
    if (st) return st;
    RB_CHECK(sinks >= 0);
    if (cfg->budget <= sinks)
        return rb_fail(e, RB_EINPUT, policy,
                       "budget L=%d must exceed the %d sink tokens (L > sinks) to leave room "
                       "for the current token",
                       cfg->budget, sinks);
    pu_sinkwin *w = rb_calloc(1, sizeof *w);
    w->sh = pu_shape_of(cfg);
    w->sinks = sinks;
    w->last = -1;
    w->lo = sinks;
    w->tok = rb_calloc((size_t)cfg->n_kv_heads, sizeof *w->tok);
    for (int g = 0; g < cfg->n_kv_heads; g++)
        pu_tokens_init(&w->tok[g], cfg->pools[g], cfg->max_tokens);
    *out = (policy_state *)(void *)w;
    return RB_OK;
}

void pu_sinkwin_destroy(policy_state *s) {
    if (!s) return;
    pu_sinkwin *w = sinkwin_of(s);
    for (int g = 0; g < w->sh.n_kv; g++) pu_tokens_free(&w->tok[g]);
    free(w->tok);
    free(w);
}

static void sinkwin_store(pu_sinkwin *w, int pos, const float *k, const float *v) {
    RB_CHECK(pos == w->last + 1);
    for (int g = 0; g < w->sh.n_kv; g++)
        pu_tokens_store(&w->tok[g], pos, k + (size_t)g * w->sh.d, v + (size_t)g * w->sh.d);
    w->last = pos;
}

void pu_sinkwin_prefill(policy_state *s, int n, const float *q, const float *k, const float *v) {
    (void)q;
    pu_sinkwin *w = sinkwin_of(s);
    size_t row = (size_t)w->sh.n_kv * w->sh.d;
    for (int i = 0; i < n; i++) sinkwin_store(w, i, k + i * row, v + i * row);
}

void pu_sinkwin_append(policy_state *s, int pos, const float *k, const float *v) {
    pu_sinkwin *w = sinkwin_of(s);
    /* Evict before storing so the freed slot is the one the new token reuses. After the
     * append the window is [pos - (L - sinks) + 1, pos]. */
    int new_lo = pos - (w->sh.budget - w->sinks) + 1;
    for (; w->lo < new_lo && w->lo <= w->last; w->lo++)
        if (w->lo >= w->sinks)
            for (int g = 0; g < w->sh.n_kv; g++) pu_tokens_drop(&w->tok[g], w->lo);
    sinkwin_store(w, pos, k, v);
}

void pu_sinkwin_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    pu_sinkwin *w = sinkwin_of(s);
    RB_CHECK(step->pos == w->last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < w->sh.n_kv; g++) {
        const pu_tokens *tk = &w->tok[g];
        for (int t = 0; t < w->sinks && t <= step->pos; t++)
            pu_sel_add(sel, g * w->sh.group, t, pu_tokens_k(tk, t), pu_tokens_v(tk, t));
        for (int t = w->lo; t <= step->pos; t++)
            pu_sel_add(sel, g * w->sh.group, t, pu_tokens_k(tk, t), pu_tokens_v(tk, t));
    }
}

int64_t pu_sinkwin_meta_bytes(const policy_state *s) {
    const pu_sinkwin *w = (const pu_sinkwin *)(const void *)s;
    /* A serving system needs one slot address per resident token. */
    int64_t b = 0;
    for (int g = 0; g < w->sh.n_kv; g++) b += (int64_t)w->tok[g].n_res * (int64_t)sizeof(kv_slot);
    return b;
}
