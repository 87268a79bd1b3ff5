/* kv_logic.h: the decisions of the device KV policies (kernels/cuda/kv_cuda.cu) as plain
 * code that compiles both as C (tests/test_kv_logic.c runs it on the CPU against the CPU
 * policies) and as CUDA device code (one thread of a kernel runs it per lane).
 *
 * A lane is one (layer, KV head). Its state lives in arrays it points to (device memory in
 * kv_cuda.cu, host memory in the CPU test); pages come from one pool free stack shared by
 * every lane. Each function here mirrors a named piece of the CPU policies:
 *   - paged store (dense, quest, raas): pu_pages_store / pu_pages_drop (policy_util.c);
 *   - the window: pu_sinkwin_append with no sinks over kv_pool's slot allocator
 *     (kvpool.c: partial-page stack, freed slots reused before a page is taken, a page
 *     given back when its last slot is), modelled to the page so resident bytes agree;
 *   - raas: raas_prefill (at the first decode step, as the stepper hands the prompt),
 *     raas_append's eviction (oldest timestamp, ties to the lowest page), and the refresh
 *     rule of raas_observe given each evictable page's score;
 *   - the top-k rule of pu_topk (larger is better, ties to the lower index).
 * Nothing here allocates; a broken invariant sets lane/pool error codes (KVL_E_*) that the
 * host reads at kvd_sync. */
#ifndef KV_LOGIC_H
#define KV_LOGIC_H

#include <stdint.h>

#ifdef __CUDACC__
#define KVL_FN __host__ __device__ static inline
#else
#define KVL_FN static inline
#endif

enum { KVL_DENSE = 0, KVL_WINDOW = 1, KVL_QUEST = 2, KVL_RAAS = 3 };
enum { KVL_PG_NONE = 0, KVL_PG_PINNED = 1, KVL_PG_CURRENT = 2, KVL_PG_EVICTABLE = 3 };
enum { KVL_LOC_FREE = 0, KVL_LOC_SLOTS = 1 };
/* error codes (first one wins) */
enum {
    KVL_E_NONE = 0,
    KVL_E_POOL_EMPTY = 1,  /* no free page: kvd_reserve was not called */
    KVL_E_ORDER = 2,       /* a position out of order (not last + 1) */
    KVL_E_REFILL = 3,      /* a store into a page already evicted */
    KVL_E_RANGE = 4,       /* a position >= max_tokens */
    KVL_E_PROMPT = 5,      /* a prompt token after the first decode step */
};

/* The pool's free stack of physical page ids. */
typedef struct kvl_pool {
    int32_t *free_ids; /* [cap] */
    int n_free;
    int held, peak;    /* pages held by all lanes; the most held at the end of any step */
    int err;
} kvl_pool;

typedef struct kvl_lane {
    /* configuration */
    int policy, P, d, budget, max_pages, max_tokens, max_loc;
    int raas_exact, raas_threshold, raas_budget_decode, raas_pin_prefill;
    double raas_r, raas_alpha;
    /* every policy */
    int last;     /* highest position stored, -1 before the first */
    int n_prompt; /* prompt tokens stored before the first decode step */
    int decoding; /* 1 from the first decode step on */
    int n_held;   /* pages this lane holds */
    int err;
    /* paged (dense, quest, raas): logical page t / P -> physical page */
    int n_seen;
    int32_t *ltp; /* [max_pages] physical id, -1 when not resident */
    /* window: kv_pool's slot allocator over local page ids, each backed by a physical page */
    int lo, n_loc, n_free_loc, n_partial;
    int32_t *loc_phys;   /* [max_loc] */
    uint8_t *loc_mode;   /* [max_loc] KVL_LOC_* */
    int32_t *loc_used_n; /* [max_loc] slots holding a token */
    uint64_t *loc_used;  /* [max_loc] bit s: slot s holds a token (P <= 64) */
    int32_t *free_loc;   /* [max_loc] stack of local ids to reuse */
    int32_t *partial;    /* [max_loc] stack of local ids that may have a free slot */
    uint8_t *in_partial; /* [max_loc] */
    int32_t *slot_of;    /* [max_tokens] local * P + slot, -1 when not resident */
    /* raas */
    int cap_pages, n_ev, n_res;
    uint8_t *state; /* [max_pages] KVL_PG_* */
    int32_t *ts;    /* [max_pages] */
    int32_t *ev;    /* [max_pages] evictable pages, in no order */
    int32_t *res;   /* [max_pages] resident logical pages, ascending */
} kvl_lane;

KVL_FN void kvl_set_err(int *err, int code) {
    if (*err == KVL_E_NONE) *err = code;
}

/* ---- the pool ---- */

KVL_FN int kvl_pool_take(kvl_pool *pool, kvl_lane *ln) {
    if (pool->n_free <= 0) {
        kvl_set_err(&pool->err, KVL_E_POOL_EMPTY);
        return -1;
    }
    int id = pool->free_ids[--pool->n_free];
    pool->held++;
    ln->n_held++;
    return id;
}

KVL_FN void kvl_pool_give(kvl_pool *pool, kvl_lane *ln, int id) {
    pool->free_ids[pool->n_free++] = id;
    pool->held--;
    ln->n_held--;
}

/* ---- paged store (pu_pages_store / pu_pages_drop) ---- */

/* Where position pos goes: returns the physical page (-1 on error), *fresh = 1 when the
 * page was opened by this store. */
KVL_FN int kvl_paged_store(kvl_pool *pool, kvl_lane *ln, int pos, int *fresh) {
    int page = pos / ln->P;
    *fresh = 0;
    if (pos < 0 || page >= ln->max_pages) {
        kvl_set_err(&ln->err, KVL_E_RANGE);
        return -1;
    }
    if (ln->ltp[page] < 0) {
        if (page < ln->n_seen) { /* never refill an evicted page */
            kvl_set_err(&ln->err, KVL_E_REFILL);
            return -1;
        }
        int id = kvl_pool_take(pool, ln);
        if (id < 0) return -1;
        ln->ltp[page] = id;
        ln->n_seen = page + 1;
        *fresh = 1;
        if (ln->policy == KVL_RAAS) ln->res[ln->n_res++] = page; /* the largest so far */
    }
    return ln->ltp[page];
}

KVL_FN void kvl_paged_drop(kvl_pool *pool, kvl_lane *ln, int page) {
    kvl_pool_give(pool, ln, ln->ltp[page]);
    ln->ltp[page] = -1;
    if (ln->policy == KVL_RAAS) { /* keep res ascending */
        int i = 0;
        while (i < ln->n_res && ln->res[i] != page) i++;
        for (; i + 1 < ln->n_res; i++) ln->res[i] = ln->res[i + 1];
        ln->n_res--;
    }
}

/* ---- window: kv_pool's slot allocator (kvpool.c), local ids over physical pages ---- */

KVL_FN int kvl_loc_take(kvl_pool *pool, kvl_lane *ln) {
    int phys = kvl_pool_take(pool, ln);
    if (phys < 0) return -1;
    int id;
    if (ln->n_free_loc > 0) {
        id = ln->free_loc[--ln->n_free_loc];
    } else {
        if (ln->n_loc >= ln->max_loc) { /* cannot happen: local ids <= resident tokens + 1 */
            kvl_set_err(&ln->err, KVL_E_RANGE);
            kvl_pool_give(pool, ln, phys);
            return -1;
        }
        id = ln->n_loc++;
        ln->in_partial[id] = 0;
    }
    ln->loc_phys[id] = phys;
    ln->loc_mode[id] = KVL_LOC_SLOTS;
    ln->loc_used_n[id] = 0;
    ln->loc_used[id] = 0;
    return id;
}

KVL_FN void kvl_partial_push(kvl_lane *ln, int id) {
    if (ln->in_partial[id]) return;
    ln->in_partial[id] = 1;
    ln->partial[ln->n_partial++] = id;
}

/* kv_pool_slot_take: local * P + slot, or -1 on error. */
KVL_FN int kvl_slot_take(kvl_pool *pool, kvl_lane *ln) {
    int id = -1;
    while (ln->n_partial > 0) {
        int c = ln->partial[ln->n_partial - 1];
        if (ln->loc_mode[c] == KVL_LOC_SLOTS && ln->loc_used_n[c] < ln->P) {
            id = c;
            break;
        }
        ln->n_partial--;
        ln->in_partial[c] = 0;
    }
    if (id < 0) {
        id = kvl_loc_take(pool, ln);
        if (id < 0) return -1;
        kvl_partial_push(ln, id);
    }
    int s = 0;
    while ((ln->loc_used[id] >> s) & 1u) s++;
    ln->loc_used[id] |= (uint64_t)1 << s;
    ln->loc_used_n[id]++;
    return id * ln->P + s;
}

/* kv_pool_slot_give */
KVL_FN void kvl_slot_give(kvl_pool *pool, kvl_lane *ln, int where) {
    int id = where / ln->P, s = where % ln->P;
    ln->loc_used[id] &= ~((uint64_t)1 << s);
    if (--ln->loc_used_n[id] == 0) {
        kvl_pool_give(pool, ln, ln->loc_phys[id]);
        ln->loc_mode[id] = KVL_LOC_FREE;
        ln->free_loc[ln->n_free_loc++] = id;
        return;
    }
    kvl_partial_push(ln, id);
}

/* pu_sinkwin_append with no sinks: drop what leaves the window, then take a slot for pos.
 * Returns local * P + slot, or -1 on error. */
KVL_FN int kvl_window_append(kvl_pool *pool, kvl_lane *ln, int pos) {
    if (pos != ln->last + 1) {
        kvl_set_err(&ln->err, KVL_E_ORDER);
        return -1;
    }
    if (pos >= ln->max_tokens) {
        kvl_set_err(&ln->err, KVL_E_RANGE);
        return -1;
    }
    int new_lo = pos - ln->budget + 1;
    for (; ln->lo < new_lo && ln->lo <= ln->last; ln->lo++) {
        kvl_slot_give(pool, ln, ln->slot_of[ln->lo]);
        ln->slot_of[ln->lo] = -1;
    }
    int w = kvl_slot_take(pool, ln);
    if (w < 0) return -1;
    ln->slot_of[pos] = w;
    ln->last = pos;
    return w;
}

/* ---- raas ---- */

/* raas_prefill's decisions over the n_prompt tokens already stored (every prompt page is
 * resident): run at the first decode step, where the CPU stepper hands the prompt over. */
KVL_FN void kvl_raas_flush(kvl_lane *ln) {
    int n = ln->n_prompt, P = ln->P;
    int n_pages = n > 0 ? (n - 1) / P + 1 : 0;
    for (int p = 0; p < n_pages; p++) ln->state[p] = KVL_PG_PINNED;
    if (ln->raas_budget_decode && ln->raas_pin_prefill) ln->cap_pages += n_pages;
    if (!ln->raas_pin_prefill)
        for (int p = 0; p < n_pages; p++) {
            if (p == n_pages - 1) {
                ln->state[p] = KVL_PG_CURRENT;
            } else {
                ln->state[p] = KVL_PG_EVICTABLE;
                ln->ts[p] = n - 1;
                ln->ev[ln->n_ev++] = p;
            }
        }
}

/* The evictable page with the oldest timestamp (ties: lowest page); its index in ev. */
KVL_FN int kvl_raas_oldest(const kvl_lane *ln) {
    int w = -1;
    for (int i = 0; i < ln->n_ev; i++) {
        int p = ln->ev[i];
        if (w < 0 || ln->ts[p] < ln->ts[ln->ev[w]] ||
            (ln->ts[p] == ln->ts[ln->ev[w]] && p < ln->ev[w]))
            w = i;
    }
    return w;
}

/* raas_append's page bookkeeping before position pos is stored (decode steps). */
KVL_FN void kvl_raas_open(kvl_pool *pool, kvl_lane *ln, int pos) {
    int page = pos / ln->P;
    if (page < ln->n_seen) return;
    if (page > 0 && ln->state[page - 1] == KVL_PG_CURRENT) {
        ln->state[page - 1] = KVL_PG_EVICTABLE;
        ln->ts[page - 1] = pos;
        ln->ev[ln->n_ev++] = page - 1;
    }
    while (ln->n_held >= ln->cap_pages && ln->n_ev > 0) {
        int w = kvl_raas_oldest(ln);
        int p = ln->ev[w];
        ln->ev[w] = ln->ev[--ln->n_ev];
        ln->state[p] = KVL_PG_NONE;
        kvl_paged_drop(pool, ln, p);
    }
    ln->state[page] = KVL_PG_CURRENT;
}

/* ---- one token of a paged lane ---- */

/* Store position pos (prefill = 1: a prompt token; 0: a decode step, which first hands the
 * prompt to the policy and runs raas's eviction). Returns the physical page, *fresh as
 * kvl_paged_store; -1 on error. */
KVL_FN int kvl_paged_append(kvl_pool *pool, kvl_lane *ln, int pos, int prefill, int *fresh) {
    *fresh = 0;
    if (pos != ln->last + 1) {
        kvl_set_err(&ln->err, KVL_E_ORDER);
        return -1;
    }
    if (prefill) {
        if (ln->decoding) {
            kvl_set_err(&ln->err, KVL_E_PROMPT);
            return -1;
        }
        ln->n_prompt++;
    } else {
        if (!ln->decoding && ln->policy == KVL_RAAS) kvl_raas_flush(ln);
        ln->decoding = 1;
        if (ln->policy == KVL_RAAS) kvl_raas_open(pool, ln, pos);
    }
    int id = kvl_paged_store(pool, ln, pos, fresh);
    if (id >= 0) ln->last = pos;
    return id;
}

/* ---- ranking ---- */

/* A double as an unsigned key with the same order (and -0 == +0, as C compares them). */
KVL_FN uint64_t kvl_order_key(double x) {
    if (x == 0) x = 0; /* -0 -> +0 */
    union {
        double d;
        uint64_t u;
    } b;
    b.d = x;
    return (b.u >> 63) ? ~b.u : (b.u | ((uint64_t)1 << 63));
}

/* Quest's bound of one page for one query row: sum_i max(q_i mx_i, q_i mn_i) in double
 * (pu_pages_bound; the products of two floats are exact in double, only the order of the
 * sum differs from the CPU's vector sum). */
KVL_FN double kvl_bound(const float *q, const float *mn, const float *mx, int d) {
    double u = 0;
    for (int i = 0; i < d; i++) {
        double a = (double)q[i] * mx[i], b = (double)q[i] * mn[i];
        u += a > b ? a : b;
    }
    return u;
}

/* pu_topk's choice by ranks, O(n^2): i is chosen when fewer than k entries beat it (a
 * larger score, or an equal score at a lower index). The device runs this rule in
 * parallel for small n; the CPU test uses it as the plain reference. */
KVL_FN int kvl_topk_rank_chosen(const double *score, int n, int k, int i) {
    int beat = 0;
    for (int j = 0; j < n && beat < k; j++)
        beat += score[j] > score[i] || (score[j] == score[i] && j < i);
    return beat < k;
}

/* raas_observe's refresh count for top_frac: ceil(r * n_ev - 1e-9). */
KVL_FN int kvl_raas_refresh_k(double r, int n_ev) {
    double x = r * n_ev - 1e-9;
    int k = (int)x;
    if ((double)k < x) k++;
    return k;
}

/* Quest attends everything while pos + 1 <= L; then floor(L/P) - 1 pages + the current. */
KVL_FN int kvl_quest_all(const kvl_lane *ln, int pos) { return pos + 1 <= ln->budget; }

/* ---- host-side checks (not device code) ---- */
#include "rb.h"

/* The budget check of the CPU policy's create (pu_check_config's rule and message): window
 * needs L >= 1 token; quest and raas L >= 2P; dense ignores L. */
static inline rb_status kvl_check_budget(int policy, int budget, int page_size, rb_err *e) {
    const char *name = policy == KVL_WINDOW  ? "window"
                       : policy == KVL_QUEST ? "quest"
                       : policy == KVL_RAAS  ? "raas"
                                             : "dense";
    if (policy == KVL_DENSE) return RB_OK;
    if (budget < 1)
        return rb_fail(e, RB_EINPUT, name, "budget L=%d: must be at least 1 token", budget);
    if (policy != KVL_WINDOW && budget < 2 * page_size)
        return rb_fail(e, RB_EINPUT, name,
                       "budget L=%d is below two pages (L >= 2P = %d with page size P=%d): a "
                       "page policy needs the current page plus at least one other",
                       budget, 2 * page_size, page_size);
    return RB_OK;
}

#endif
