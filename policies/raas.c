/* raas.c: RaaS, Reasoning-Aware Attention Sparsity (arXiv 2502.11147): prefill pages pinned,
 * decode pages kept by a timestamp that attention refreshes; when a new page needs room the
 * page whose timestamp is oldest goes, so memory stays at L/P pages (docs/DESIGN.md §3). Everything
 * resident is attended. */
#include <math.h>
#include <string.h>

#include "policy_util.h"

static const policy_param_spec params[] = {
    {"score", PARAM_CHOICE, "bound", "bound|exact", 0, 0,
     "how pages are ranked for top_frac: the Quest bound (max over the group) or the exact "
     "attention mass of the page (max over the group's heads)"},
    {"refresh", PARAM_CHOICE, "top_frac", "top_frac|threshold", 0, 0,
     "top_frac: the top ceil(r * evictable) pages by score get timestamp t; threshold: pages "
     "whose exact attention mass exceeds alpha do"},
    {"r", PARAM_FLOAT, "0.5", NULL, 0, 1, "fraction of evictable pages refreshed (top_frac)"},
    {"alpha", PARAM_FLOAT, "1", NULL, 0, 1e6,
     "threshold: a page is refreshed when its tokens' mean attention exceeds alpha times "
     "uniform attention over the attended set, 1/|S| (free of t, P and L)"},
    {"budget", PARAM_CHOICE, "total", "total|decode", 0, 0,
     "total: floor(L/P) pages in all, pinned prompt pages included; decode: the paper's "
     "reading, the pinned prompt outside L and floor(L/P) pages for the decode"},
    {"pin_prefill", PARAM_INT, "1", NULL, 0, 1,
     "1: prompt pages are never evicted; 0: they are evicted like decode pages (RQ3)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

enum { PG_NONE = 0, PG_PINNED, PG_CURRENT, PG_EVICTABLE };

typedef struct raas_head {
    pu_pages pg;
    uint8_t *state; /* [max_pages] PG_* (PG_NONE: not opened yet, or evicted) */
    int32_t *ts;    /* [max_pages] timestamp of evictable pages */
    int *ev;        /* [max_pages] the evictable pages, in no order */
    int n_ev;
} raas_head;

struct policy_state {
    pu_shape sh;
    int cap_pages, last, n_prefill_pages;
    int exact_score, threshold, budget_decode, pin_prefill;
    double r, alpha;
    raas_head *heads; /* [n_kv] */
    double *score, *mass; /* [max_pages] scratch */
    int *top;             /* [max_pages] scratch */
};

static rb_status raas_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "raas", PU_BUDGET_PAGES, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    s->cap_pages = cfg->budget / cfg->page_size;
    s->last = -1;
    s->exact_score = !strcmp(policy_param_str(cfg->params, "score"), "exact");
    s->threshold = !strcmp(policy_param_str(cfg->params, "refresh"), "threshold");
    s->r = policy_param_num(cfg->params, "r");
    s->alpha = policy_param_num(cfg->params, "alpha");
    s->budget_decode = !strcmp(policy_param_str(cfg->params, "budget"), "decode");
    s->pin_prefill = (int)policy_param_num(cfg->params, "pin_prefill");
    s->heads = rb_calloc((size_t)s->sh.n_kv, sizeof *s->heads);
    for (int g = 0; g < s->sh.n_kv; g++) {
        raas_head *hd = &s->heads[g];
        pu_pages_init(&hd->pg, cfg->pools[g], cfg->max_tokens, !s->exact_score);
        int mp = hd->pg.max_pages;
        hd->state = rb_calloc((size_t)mp, 1);
        hd->ts = rb_calloc((size_t)mp, sizeof *hd->ts);
        hd->ev = rb_malloc(sizeof *hd->ev * (size_t)mp);
    }
    int mp = s->heads[0].pg.max_pages;
    s->score = rb_malloc(sizeof *s->score * (size_t)mp);
    s->mass = rb_malloc(sizeof *s->mass * (size_t)mp);
    s->top = rb_malloc(sizeof *s->top * (size_t)mp);
    *out = s;
    return RB_OK;
}

static void raas_destroy(policy_state *s) {
    if (!s) return;
    for (int g = 0; g < s->sh.n_kv; g++) {
        pu_pages_free(&s->heads[g].pg);
        free(s->heads[g].state);
        free(s->heads[g].ts);
        free(s->heads[g].ev);
    }
    free(s->heads);
    free(s->score);
    free(s->mass);
    free(s->top);
    free(s);
}

static void raas_prefill(policy_state *s, int n, const float *q, const float *k,
                         const float *v) {
    (void)q;
    RB_CHECK(s->last == -1);
    size_t row = (size_t)s->sh.n_kv * s->sh.d;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < s->sh.n_kv; g++) {
            raas_head *hd = &s->heads[g];
            pu_pages_store(&hd->pg, i, k + i * row + (size_t)g * s->sh.d,
                           v + i * row + (size_t)g * s->sh.d);
            /* The page holding the last prompt token is pinned even when the prompt fills
             * it only partly: it holds prompt tokens, and RaaS never evicts those. The
             * decode tokens that complete it ride along. */
            hd->state[i / s->sh.P] = PG_PINNED;
        }
    s->n_prefill_pages = n > 0 ? (n - 1) / s->sh.P + 1 : 0;
    s->last = n - 1;
    /* budget=decode: the pinned prompt is outside L */
    if (s->budget_decode && s->pin_prefill) s->cap_pages += s->n_prefill_pages;
    if (!s->pin_prefill)
        for (int g = 0; g < s->sh.n_kv; g++) {
            /* prompt pages compete like decode pages, stamped with the prompt's last
             * position; the page holding the last prompt token is the current page */
            raas_head *hd = &s->heads[g];
            for (int p = 0; p < s->n_prefill_pages; p++) {
                if (p == s->n_prefill_pages - 1) {
                    hd->state[p] = PG_CURRENT;
                } else {
                    hd->state[p] = PG_EVICTABLE;
                    hd->ts[p] = n - 1;
                    hd->ev[hd->n_ev++] = p;
                }
            }
        }
}

/* The evictable page with the oldest timestamp (ties: lowest position); its index in ev. */
static int oldest(const raas_head *hd) {
    int w = -1;
    for (int i = 0; i < hd->n_ev; i++) {
        int p = hd->ev[i];
        if (w < 0 || hd->ts[p] < hd->ts[hd->ev[w]] ||
            (hd->ts[p] == hd->ts[hd->ev[w]] && p < hd->ev[w]))
            w = i;
    }
    return w;
}

static void raas_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    int page = pos / s->sh.P;
    for (int g = 0; g < s->sh.n_kv; g++) {
        raas_head *hd = &s->heads[g];
        if (page >= hd->pg.n_seen) { /* step pos opens a new page */
            if (page > 0 && hd->state[page - 1] == PG_CURRENT) {
                hd->state[page - 1] = PG_EVICTABLE;
                hd->ts[page - 1] = pos;
                hd->ev[hd->n_ev++] = page - 1;
            }
            while (hd->pg.n_held >= s->cap_pages && hd->n_ev > 0) {
                int w = oldest(hd);
                int p = hd->ev[w];
                hd->ev[w] = hd->ev[--hd->n_ev];
                hd->state[p] = PG_NONE;
                pu_pages_drop(&hd->pg, p);
            }
            hd->state[page] = PG_CURRENT;
        }
        pu_pages_store(&hd->pg, pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d);
    }
    s->last = pos;
}

static void raas_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        raas_head *hd = &s->heads[g];
        int n = 0;
        for (int p = 0; p < hd->pg.n_seen; p++)
            if (pu_pages_resident(&hd->pg, p)) s->top[n++] = p;
        pu_sel_add_pages(sel, g * s->sh.group, &hd->pg, s->top, n, step->pos);
    }
}

/* s->mass[p] for every evictable page p: the page's attention mass, max over the group. */
static void exact_mass(policy_state *s, const raas_head *hd, int h0, const policy_selection *sel,
                       const float *probs) {
    for (int i = 0; i < hd->n_ev; i++) s->mass[hd->ev[i]] = 0;
    const int32_t *pos = sel->pos + (size_t)h0 * sel->cap;
    for (int h = h0; h < h0 + s->sh.group; h++) {
        /* mass of each page for this head, accumulated in s->score as scratch */
        for (int i = 0; i < hd->n_ev; i++) s->score[hd->ev[i]] = 0;
        const float *ph = probs + (size_t)h * sel->cap;
        for (int j = 0; j < sel->n[h0]; j++) {
            int p = pos[j] / s->sh.P;
            if (hd->state[p] == PG_EVICTABLE) s->score[p] += ph[j];
        }
        for (int i = 0; i < hd->n_ev; i++) {
            int p = hd->ev[i];
            if (s->score[p] > s->mass[p]) s->mass[p] = s->score[p];
        }
    }
}

static void raas_observe(policy_state *s, const policy_step *step, const policy_selection *sel,
                         const float *probs) {
    int t = step->pos;
    RB_CHECK(sel->shared_by_group);
    for (int g = 0; g < s->sh.n_kv; g++) {
        raas_head *hd = &s->heads[g];
        int h0 = g * s->sh.group;
        if (hd->n_ev == 0) continue;
        if (s->exact_score || s->threshold) exact_mass(s, hd, h0, sel, probs);
        if (s->threshold) {
            /* the page's mean attention per token against uniform attention over the attended
             * set, 1/|S|: free of t, P and L. (A page sum of P tokens passes any fixed alpha
             * once t grows, and every page refreshed makes RaaS a FIFO; against 1/(t+1) every
             * resident token looks heavy in a sparse cache.) */
            int n_att = sel->n[h0];
            for (int i = 0; i < hd->n_ev; i++) {
                int p = hd->ev[i], lo = p * s->sh.P, hi = lo + s->sh.P;
                int n_tok = (hi > t + 1 ? t + 1 : hi) - lo;
                if (s->mass[p] / n_tok * n_att > s->alpha) hd->ts[p] = t;
            }
            continue;
        }
        /* top_frac: rank the evictable pages; s->score is indexed by ev order here. */
        double *sc = s->score;
        if (s->exact_score)
            for (int i = 0; i < hd->n_ev; i++) sc[i] = s->mass[hd->ev[i]];
        else
            pu_pages_bounds_max(&hd->pg, hd->ev, hd->n_ev, step->q + (size_t)h0 * s->sh.d,
                                s->sh.group, sc);
        /* Ties go to the lower position: order ev by page first so index order is position
         * order (pu_topk breaks ties by index). */
        for (int i = 1; i < hd->n_ev; i++)
            for (int j = i; j > 0 && hd->ev[j - 1] > hd->ev[j]; j--) {
                int tp = hd->ev[j]; hd->ev[j] = hd->ev[j - 1]; hd->ev[j - 1] = tp;
                double ts = sc[j]; sc[j] = sc[j - 1]; sc[j - 1] = ts;
            }
        int k = (int)ceil(s->r * hd->n_ev - 1e-9);
        int n = pu_topk(sc, hd->n_ev, k, s->top);
        for (int i = 0; i < n; i++) hd->ts[hd->ev[s->top[i]]] = t;
    }
}

static int64_t raas_meta_bytes(const policy_state *s) {
    int64_t b = 0;
    for (int g = 0; g < s->sh.n_kv; g++) {
        const raas_head *hd = &s->heads[g];
        b += pu_pages_meta_bytes(&hd->pg) + (int64_t)hd->pg.n_held * (int64_t)(sizeof(int32_t) + 1);
    }
    return b;
}

const policy_ops policy_raas = {
    .name = "raas",
    .summary = "prefill pages pinned; decode pages kept by attention-refreshed timestamps",
    .flags = POLICY_PAGED | POLICY_PINS_PROMPT,
    .params = params,
    .create = raas_create,
    .destroy = raas_destroy,
    .prefill = raas_prefill,
    .append = raas_append,
    .select = raas_select,
    .observe = raas_observe,
    .meta_bytes = raas_meta_bytes,
};
