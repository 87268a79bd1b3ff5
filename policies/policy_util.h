/* policy_util.h: pieces several policies share: a position-aligned page store over one
 * kv_pool (with per-page key min/max for the Quest bound), a token-slot store, top-k with
 * the project's tie rule, budget checks, selection filling, per-KV-head token lists (by
 * position, or scored), the ring of an observation window's queries and its pooling, a
 * small seeded generator, and two slot-ready stores (keep everything; sinks + window) whose
 * functions fill a policy's table directly. */
#ifndef POLICY_UTIL_H
#define POLICY_UTIL_H

#include <stdint.h>

#include "policy.h"

/* ---- position-aligned pages: position t lives in logical page t/P, slot t%P ---- */

typedef struct pu_pages {
    kv_pool *pool;
    int P, d, max_pages;
    int track_bounds;   /* keep per-page channel min/max of keys */
    int n_seen;         /* logical pages 0..n_seen-1 have been opened */
    int n_held;         /* logical pages resident now */
    int32_t *pool_id;   /* [max_pages] pool page of each logical page, -1 when not resident */
    int cap_ids;        /* rows of kmin/kmax (indexed by pool page id, which the pool reuses,
                         * so this stays as small as the pages held at peak) */
    float *kmin, *kmax; /* [cap_ids, d] */
} pu_pages;

/* Requires pool empty, max_tokens > 0. */
void pu_pages_init(pu_pages *pg, kv_pool *pool, int max_tokens, int track_bounds);
/* Gives back every resident page and frees the arrays. */
void pu_pages_free(pu_pages *pg);
/* Store position pos (< max_tokens): takes its page when not resident; updates the bounds.
 * Requires that pos's page is either resident or not yet opened (policies never store into
 * a page they evicted). */
void pu_pages_store(pu_pages *pg, int pos, const float *k, const float *v);
/* Give back a resident logical page. */
void pu_pages_drop(pu_pages *pg, int page);
static inline int pu_pages_resident(const pu_pages *pg, int page) {
    return pg->pool_id[page] >= 0;
}
/* Rows of a resident position. */
const float *pu_pages_k(const pu_pages *pg, int pos);
const float *pu_pages_v(const pu_pages *pg, int pos);
/* Quest bound of a resident page for query q [d]: sum_i max(q_i*max_i, q_i*min_i). It is
 * >= q.k for every key k stored in the page (exact arithmetic; computed in double). */
double pu_pages_bound(const pu_pages *pg, int page, const float *q);
/* The bounds a GQA group needs, fast: out[i] = max over the nq query rows q [nq, d] of
 * pu_pages_bound(pg, page_i, q_r), for page_i = pages[i] (pages NULL: page_i = i), i < n.
 * Every page must be resident. The same double products, summed in another order: equal
 * to pu_pages_bound's up to ~d ulps of the magnitude (tested to 1e-12 relative). */
void pu_pages_bounds_max(const pu_pages *pg, const int *pages, int n, const float *q, int nq,
                         double *out);
/* Bookkeeping bytes: a block-table entry (logical, physical) per held page, plus the key
 * min/max of each held page when bounds are tracked. */
int64_t pu_pages_meta_bytes(const pu_pages *pg);

/* ---- token-granular store: one pool slot per resident position ---- */

typedef struct pu_tokens {
    kv_pool *pool;
    int d, max_tokens, n_res;
    kv_slot *slot_of; /* [max_tokens] page -1 when not resident */
} pu_tokens;

void pu_tokens_init(pu_tokens *tk, kv_pool *pool, int max_tokens);
void pu_tokens_free(pu_tokens *tk); /* gives back every slot */
/* Requires pos not resident. Reuses a freed slot before taking a page (kvpool.h). */
void pu_tokens_store(pu_tokens *tk, int pos, const float *k, const float *v);
void pu_tokens_drop(pu_tokens *tk, int pos); /* requires pos resident */
static inline int pu_tokens_resident(const pu_tokens *tk, int pos) {
    return tk->slot_of[pos].page >= 0;
}
const float *pu_tokens_k(const pu_tokens *tk, int pos);
const float *pu_tokens_v(const pu_tokens *tk, int pos);

/* ---- selection ---- */

/* Start filling: every |S_h| = 0; shared: one set per KV group (its first head's row). */
static inline void pu_sel_begin(policy_selection *sel, int shared) {
    sel->shared_by_group = shared;
    for (int h = 0; h < sel->n_q_heads; h++) sel->n[h] = 0;
}

/* Append position pos (rows k, v) to query head h's set. */
static inline void pu_sel_add(policy_selection *sel, int h, int pos, const float *k,
                              const float *v) {
    int i = sel->n[h]++;
    size_t at = (size_t)h * sel->cap + i;
    sel->pos[at] = pos;
    sel->k[at] = k;
    sel->v[at] = v;
}
/* Add every position of pages[0..n) (resident, ascending) up to last_pos to head h. */
void pu_sel_add_pages(policy_selection *sel, int h, const pu_pages *pg, const int *pages, int n,
                      int last_pos);

/* ---- ranking ---- */

/* The k best of score[0..n) (larger is better; ties: lower index), returned in out[0..k')
 * in ascending index order, k' = min(k, n). Returns k'. O(n) expected (quickselect).
 * Scores must not be NaN. */
int pu_topk(const double *score, int n, int k, int *out);

/* ---- checks ---- */

/* What a policy asks of the budget L. */
typedef enum {
    PU_BUDGET_NONE,   /* ignored (dense) */
    PU_BUDGET_TOKENS, /* L >= 1 */
    PU_BUDGET_PAGES,  /* L >= 2P: the current page plus at least one other */
} pu_budget_rule;

/* Head layout, sizes, pools (present, empty, matching) and the budget rule; fails with
 * RB_EINPUT and a message naming the policy, the budget and the rule. */
rb_status pu_check_config(const policy_config *cfg, const char *policy, pu_budget_rule rule,
                          rb_err *e);

/* The layout of one instance, as every policy reads it from its (checked) config. */
typedef struct pu_shape {
    int n_q, n_kv, group, d; /* query heads, KV heads, query heads per KV head, head_dim */
    int budget, P;           /* L tokens per KV head, page size */
} pu_shape;
static inline pu_shape pu_shape_of(const policy_config *cfg) {
    return (pu_shape){.n_q = cfg->n_q_heads, .n_kv = cfg->n_kv_heads,
                      .group = cfg->n_q_heads / cfg->n_kv_heads, .d = cfg->head_dim,
                      .budget = cfg->budget, .P = cfg->page_size};
}

/* ---- a KV head's resident tokens as a list of entries (token-granular policies) ----
 *
 * Each KV head keeps its tokens in its own pool through a pu_tokens, and the policy's list of
 * them: ascending positions (pu_list: snapkv, rkv, sepllm) or positions with a score
 * (pu_scored: h2o, tova, adakv). Arrays start with room for L+1 entries and double when a
 * prompt longer than L (or a head above L, adakv) needs more. Every resident token is
 * attended, one set per KV group, in list order; bookkeeping counts a position and a slot
 * per resident token (and a score for pu_scored). */

typedef struct pu_list {
    pu_tokens tok;
    int n, cap;   /* entries, room */
    int32_t *pos; /* [cap] resident positions, ascending */
} pu_list;

/* [sh.n_kv] lists over cfg->pools (checked config). */
pu_list *pu_lists_create(const policy_config *cfg);
void pu_lists_destroy(pu_list *l, int n_kv); /* gives back every slot; NULL is a no-op */
/* Store position pos (above every listed one) at the end. */
void pu_list_push(pu_list *l, int pos, const float *k, const float *v);
/* The prompt: positions 0..n-1 of every KV head from k, v [n, n_kv, d]. */
void pu_lists_prefill(pu_list *l, const pu_shape *sh, int n, const float *k, const float *v);
/* Drop entry i, the order kept. O(n). */
void pu_list_remove(pu_list *l, int i);
/* Of the first m entries keep only top[0..nk) (ascending indices < m, as pu_topk returns
 * them), dropping the others; entries m..n-1 all stay. Order kept. O(n). */
void pu_list_keep(pu_list *l, int m, const int *top, int nk);
/* Every listed token of KV head g to its group's set (pu_sel_begin(sel, 1) first). */
void pu_lists_select(const pu_list *l, const pu_shape *sh, policy_selection *sel);
int64_t pu_lists_meta_bytes(const pu_list *l, int n_kv);

typedef struct pu_entry {
    int32_t pos;  /* a resident position */
    double score; /* what the policy ranks it by */
} pu_entry;

typedef struct pu_scored {
    pu_tokens tok;
    int n, cap;    /* entries, room */
    pu_entry *ent; /* [cap] in the order the policy keeps them */
} pu_scored;

/* [sh.n_kv] heads over cfg->pools (checked config). */
pu_scored *pu_scored_create(const policy_config *cfg);
void pu_scored_destroy(pu_scored *h, int n_kv); /* gives back every slot; NULL is a no-op */
/* Store position pos with its score at the end. */
void pu_scored_push(pu_scored *hd, int pos, const float *k, const float *v, double score);
/* Drop entry i: the last entry takes its place (order not kept), O(1); or the order kept,
 * O(n). */
void pu_scored_drop_swap(pu_scored *hd, int i);
void pu_scored_drop_ordered(pu_scored *hd, int i);
/* Every entry of KV head g to its group's set, in array order (pu_sel_begin(sel, 1)). */
void pu_scored_select(const pu_scored *h, const pu_shape *sh, policy_selection *sel);
/* After pu_scored_select (nothing moved since): each entry's probability summed over its
 * group's query heads, m; PU_SCORE_ADD adds m to the score (accumulated attention: h2o,
 * adakv), PU_SCORE_MEAN replaces it by m / group (the latest query's: tova). */
typedef enum { PU_SCORE_ADD, PU_SCORE_MEAN } pu_score_rule;
void pu_scored_observe(pu_scored *h, const pu_shape *sh, const policy_selection *sel,
                       const float *probs, pu_score_rule rule);
int64_t pu_scored_meta_bytes(const pu_scored *h, int n_kv);

/* ---- the last W queries, a ring by position % W (observation windows: snapkv, rkv) ---- */

typedef struct pu_qring {
    int W;          /* rows kept; 0: none (put is a no-op) */
    size_t row;     /* floats per row: n_q * d */
    float *q;       /* [max(W, 1), row] */
    int32_t *pos;   /* [max(W, 1)] position of each row, -1 when empty */
} pu_qring;

void pu_qring_init(pu_qring *r, int W, const pu_shape *sh);
void pu_qring_free(pu_qring *r);
void pu_qring_put(pu_qring *r, int pos, const float *q /* [n_q, d] */);
/* The last W rows of the prompt q [n, n_q, d]. */
void pu_qring_prefill(pu_qring *r, int n, const float *q);
/* The queries of position pos, which must be among the last W put (checked). */
const float *pu_qring_get(const pu_qring *r, int pos);
static inline int64_t pu_qring_bytes(const pu_qring *r) {
    return (int64_t)r->W * (int64_t)r->row * (int64_t)sizeof(float);
}

/* Pooling along positions, centred, padding kernel/2 (kernel odd): out[i] = the max of
 * x[i-r..i+r] within 0..m-1 (avg: their sum, in that order, over kernel: the padding counts
 * as zeros, as torch's avg_pool1d with count_include_pad). */
void pu_pool1d(const double *x, int m, int kernel, int avg, double *out);

/* ---- slot-ready stores: whole policies but for what makes each one different ----
 *
 * The functions below have the signatures of policy_ops slots, so a policy names them in its
 * table as they are. Each reads the policy's state through the store it declares: a
 * keep-everything policy's state struct has a pu_all as its FIRST member (C lets a pointer
 * to a struct stand for a pointer to its first member); a sinks+window policy's state is
 * the pu_sinkwin itself. */

/* Every token of every KV head resident in position-aligned pages: the store of dense,
 * quest, oracle and random, which differ only in what they attend. */
typedef struct pu_all {
    pu_shape sh;
    int last;        /* highest position stored, -1 before the first */
    pu_pages *pages; /* [n_kv] */
    double *score;   /* [n_scratch] per-step scratch, zeroed at create */
    int *idx;        /* [n_scratch] per-step scratch, zeroed at create */
} pu_all;

typedef enum {
    PU_SCRATCH_NONE,   /* no scratch */
    PU_SCRATCH_TOKENS, /* n_scratch = max_tokens */
    PU_SCRATCH_PAGES,  /* n_scratch = the most pages max_tokens can open */
} pu_scratch;

/* What a keep-everything policy asks of the store. */
typedef struct pu_all_spec {
    const char *policy;  /* its name, for messages */
    pu_budget_rule rule; /* checked at create */
    int with_bounds;     /* keep per-page key min/max (Quest's bound) */
    pu_scratch scratch;
} pu_all_spec;

/* Checks cfg against spec->rule (pu_check_config), then allocates a zeroed state of
 * state_bytes (>= sizeof(pu_all)) whose first member, the pu_all, it sets up. The policy
 * fills its own members after. */
rb_status pu_all_create(const policy_config *cfg, const pu_all_spec *spec, size_t state_bytes,
                        policy_state **out, rb_err *e);
/* Slots. destroy gives back every page and frees the state (NULL: no-op); prefill stores
 * the prompt (q unused); append stores position pos (== last + 1); meta_bytes counts one
 * block-table entry per held page, plus the key min/max with bounds (pu_pages_meta_bytes). */
void pu_all_destroy(policy_state *s);
void pu_all_prefill(policy_state *s, int n, const float *q, const float *k, const float *v);
void pu_all_append(policy_state *s, int pos, const float *k, const float *v);
int64_t pu_all_meta_bytes(const policy_state *s);

/* For select: start the sets of step->pos, which must be the last position stored. */
void pu_all_sel_begin(const pu_all *a, const policy_step *step, policy_selection *sel,
                      int shared);
/* Add positions lo..hi of KV head g to query head h's set. */
void pu_all_sel_range(policy_selection *sel, int h, const pu_all *a, int g, int lo, int hi);
/* Add the n positions pos[0..n) of KV head g to query head h's set, in that order. */
void pu_all_sel_list(policy_selection *sel, int h, const pu_all *a, int g, const int *pos,
                     int n);

/* Sinks + recent window, token-granular (StreamingLLM; window = no sinks): positions
 * 0..sinks-1 and the most recent L-sinks stay resident, every resident token is attended
 * (one set per KV group), and one slot address per resident token is counted. */
typedef struct pu_sinkwin pu_sinkwin;
/* Checks cfg (budget: L >= 1 tokens, and L > sinks, named in the message under `policy`)
 * and makes the state. */
rb_status pu_sinkwin_create(const policy_config *cfg, const char *policy, int sinks,
                            policy_state **out, rb_err *e);
void pu_sinkwin_destroy(policy_state *s);
void pu_sinkwin_prefill(policy_state *s, int n, const float *q, const float *k, const float *v);
void pu_sinkwin_append(policy_state *s, int pos, const float *k, const float *v);
void pu_sinkwin_select(policy_state *s, const policy_step *step, policy_selection *sel);
int64_t pu_sinkwin_meta_bytes(const policy_state *s);

/* ---- seeded stream: splitmix64 ---- */
static inline uint64_t pu_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#endif
