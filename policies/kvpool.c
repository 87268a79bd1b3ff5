/* kvpool.c: paged KV storage for one (layer, KV head) with a slot allocator on top (see
 * kvpool.h). Page memory is malloc'd on take and freed on give so that the process's real
 * footprint follows what a policy keeps, not its high-water mark. */
#include "kvpool.h"

#include <string.h>

#include "rb.h"

enum { PAGE_FREE = 0, PAGE_WHOLE = 1, PAGE_SLOTS = 2 };

struct kv_pool {
    int head_dim, page_size, elem_bytes;
    int n_ids;            /* page ids ever handed out: 0..n_ids-1 */
    int cap_ids;          /* capacity of the per-id arrays */
    float **mem;          /* [cap_ids] page memory: [page_size, 2, head_dim] or NULL */
    uint8_t *mode;        /* [cap_ids] PAGE_* */
    int *n_used;          /* [cap_ids] slots holding a token */
    uint8_t *used;        /* [cap_ids, page_size] 1 where a slot holds a token: taken from
                           * the slot allocator, or written in a page taken whole */
    int *free_ids;        /* [cap_ids] stack of page ids to reuse */
    int n_free_ids;
    int *partial;         /* [cap_ids] stack of ids that may have a free slot (entries may be
                           * stale: checked when popped) */
    uint8_t *in_partial;  /* [cap_ids] 1 while the id is on the stack: each id at most once */
    int n_partial;
    int held, peak;
    int tokens;           /* slots holding a token, over every held page */
};

kv_pool *kv_pool_create(int head_dim, int page_size, int elem_bytes) {
    RB_CHECK(head_dim > 0 && page_size > 0 && elem_bytes > 0);
    kv_pool *p = rb_calloc(1, sizeof *p);
    p->head_dim = head_dim;
    p->page_size = page_size;
    p->elem_bytes = elem_bytes;
    return p;
}

void kv_pool_destroy(kv_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n_ids; i++) free(p->mem[i]);
    free(p->mem);
    free(p->mode);
    free(p->n_used);
    free(p->used);
    free(p->free_ids);
    free(p->partial);
    free(p->in_partial);
    free(p);
}

static void grow(kv_pool *p) {
    int cap = p->cap_ids ? 2 * p->cap_ids : 8;
    p->mem = rb_realloc(p->mem, sizeof *p->mem * (size_t)cap);
    p->mode = rb_realloc(p->mode, (size_t)cap);
    p->n_used = rb_realloc(p->n_used, sizeof *p->n_used * (size_t)cap);
    p->used = rb_realloc(p->used, (size_t)cap * (size_t)p->page_size);
    p->free_ids = rb_realloc(p->free_ids, sizeof *p->free_ids * (size_t)cap);
    p->partial = rb_realloc(p->partial, sizeof *p->partial * (size_t)cap);
    p->in_partial = rb_realloc(p->in_partial, (size_t)cap);
    for (int i = p->cap_ids; i < cap; i++) p->in_partial[i] = 0;
    p->cap_ids = cap;
}

static int take(kv_pool *p, int mode) {
    int id;
    if (p->n_free_ids > 0) {
        id = p->free_ids[--p->n_free_ids];
    } else {
        if (p->n_ids == p->cap_ids) grow(p);
        id = p->n_ids++;
    }
    size_t floats = (size_t)p->page_size * 2 * (size_t)p->head_dim;
    p->mem[id] = rb_calloc(floats, sizeof(float));
    p->mode[id] = (uint8_t)mode;
    p->n_used[id] = 0;
    memset(p->used + (size_t)id * p->page_size, 0, (size_t)p->page_size);
    if (++p->held > p->peak) p->peak = p->held;
    return id;
}

static void partial_push(kv_pool *p, int id) {
    if (p->in_partial[id]) return;
    p->in_partial[id] = 1;
    p->partial[p->n_partial++] = id;
}

static void give(kv_pool *p, int id) {
    p->tokens -= p->n_used[id];
    free(p->mem[id]);
    p->mem[id] = NULL;
    p->mode[id] = PAGE_FREE;
    p->free_ids[p->n_free_ids++] = id;
    p->held--;
}

int kv_pool_page_take(kv_pool *p) { return take(p, PAGE_WHOLE); }

void kv_pool_page_give(kv_pool *p, int page) {
    RB_CHECK(page >= 0 && page < p->n_ids && p->mode[page] == PAGE_WHOLE);
    give(p, page);
}

kv_slot kv_pool_slot_take(kv_pool *p) {
    int id = -1;
    /* Entries of the partial stack go stale when their page fills up or is given back;
     * drop those lazily. */
    while (p->n_partial > 0) {
        int c = p->partial[p->n_partial - 1];
        if (p->mode[c] == PAGE_SLOTS && p->n_used[c] < p->page_size) {
            id = c;
            break;
        }
        p->n_partial--;
        p->in_partial[c] = 0;
    }
    if (id < 0) {
        id = take(p, PAGE_SLOTS);
        partial_push(p, id);
    }
    uint8_t *u = p->used + (size_t)id * p->page_size;
    int s = 0;
    while (u[s]) s++;
    u[s] = 1;
    p->n_used[id]++;
    p->tokens++;
    return (kv_slot){.page = id, .slot = s};
}

void kv_pool_slot_give(kv_pool *p, kv_slot s) {
    RB_CHECK(s.page >= 0 && s.page < p->n_ids && p->mode[s.page] == PAGE_SLOTS);
    RB_CHECK(s.slot >= 0 && s.slot < p->page_size);
    uint8_t *u = p->used + (size_t)s.page * p->page_size;
    RB_CHECK(u[s.slot]);
    u[s.slot] = 0;
    p->tokens--;
    if (--p->n_used[s.page] == 0) {
        give(p, s.page);
        return;
    }
    partial_push(p, s.page);
}

float *kv_pool_k(kv_pool *p, int page, int slot) {
    RB_CHECK(page >= 0 && page < p->n_ids && p->mem[page] && slot >= 0 && slot < p->page_size);
    return p->mem[page] + (size_t)slot * p->head_dim;
}

float *kv_pool_v(kv_pool *p, int page, int slot) {
    RB_CHECK(page >= 0 && page < p->n_ids && p->mem[page] && slot >= 0 && slot < p->page_size);
    return p->mem[page] + ((size_t)p->page_size + (size_t)slot) * p->head_dim;
}

void kv_pool_store(kv_pool *p, kv_slot s, const float *k, const float *v) {
    memcpy(kv_pool_k(p, s.page, s.slot), k, sizeof(float) * (size_t)p->head_dim);
    memcpy(kv_pool_v(p, s.page, s.slot), v, sizeof(float) * (size_t)p->head_dim);
    uint8_t *u = p->used + (size_t)s.page * p->page_size + s.slot;
    if (!*u) { /* a page taken whole: its slot holds a token from the first write */
        RB_CHECK(p->mode[s.page] == PAGE_WHOLE); /* the allocator's slots are marked at take */
        *u = 1;
        p->n_used[s.page]++;
        p->tokens++;
    }
}

int kv_pool_page_size(const kv_pool *p) { return p->page_size; }
int kv_pool_head_dim(const kv_pool *p) { return p->head_dim; }
int kv_pool_pages_held(const kv_pool *p) { return p->held; }

int64_t kv_pool_resident_bytes(const kv_pool *p) {
    return (int64_t)p->held * p->page_size * p->head_dim * 2 * p->elem_bytes;
}

int64_t kv_pool_allocated_bytes(const kv_pool *p) {
    return (int64_t)p->held * p->page_size * p->head_dim * 2 * (int64_t)sizeof(float);
}

int kv_pool_peak_pages(const kv_pool *p) { return p->peak; }

int kv_pool_tokens_held(const kv_pool *p) { return p->tokens; }

int kv_pool_holds_row(const kv_pool *p, const float *k_row) {
    /* Compared as integers: relational operators between pointers into different pages
     * are undefined in C. */
    uintptr_t r = (uintptr_t)k_row, row_bytes = sizeof(float) * (size_t)p->head_dim;
    for (int id = 0; id < p->n_ids; id++) {
        if (!p->mem[id]) continue;
        uintptr_t lo = (uintptr_t)p->mem[id];
        if (r < lo || r >= lo + row_bytes * (size_t)p->page_size) continue;
        if ((r - lo) % row_bytes) return 0;
        return p->used[(size_t)id * p->page_size + (r - lo) / row_bytes];
    }
    return 0;
}
