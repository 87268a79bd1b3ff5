/* kvpool.h: paged KV storage for one (layer, KV head).
 *
 * A pool hands out pages of `page_size` token slots; each slot holds one token's key and
 * value (head_dim floats each). Page memory is allocated when a page is taken and freed
 * when it is given back, so the bytes a policy holds are the bytes it really keeps. The
 * engine owns the pools and reads resident bytes from them, never from what a policy
 * attends. A slot allocator on top serves token-granular policies (H2O, StreamingLLM):
 * freed slots are reused before a new page is taken, and a page whose slots are all free is
 * given back. */
#ifndef KVPOOL_H
#define KVPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv_pool kv_pool;

/* A token's place in the pool. */
typedef struct kv_slot {
    int32_t page;
    int32_t slot;
} kv_slot;

/* elem_bytes: the element size resident bytes are reported at (2 = fp16, as a serving
 * system would store them); the pool itself stores float32. */
kv_pool *kv_pool_create(int head_dim, int page_size, int elem_bytes);
void kv_pool_destroy(kv_pool *p); /* NULL is a no-op */

/* Pages. kv_pool_page_take returns a page id >= 0 (ids of freed pages are reused); its memory
 * is zeroed. A page taken whole is given back whole; pages the slot allocator opened are
 * given back through their slots only (mixing the two on one page is a broken invariant). */
int kv_pool_page_take(kv_pool *p);
void kv_pool_page_give(kv_pool *p, int page);

/* Slots: take a free slot (in a partly used page if any, else a new page); give one back
 * (its page is given back when it becomes empty). */
kv_slot kv_pool_slot_take(kv_pool *p);
void kv_pool_slot_give(kv_pool *p, kv_slot s);

/* Key and value rows of a slot (head_dim floats), valid while the page is held. */
float *kv_pool_k(kv_pool *p, int page, int slot);
float *kv_pool_v(kv_pool *p, int page, int slot);
/* Copy one token's k and v into a slot. */
void kv_pool_store(kv_pool *p, kv_slot s, const float *k, const float *v);

int kv_pool_page_size(const kv_pool *p);
int kv_pool_head_dim(const kv_pool *p);
int kv_pool_pages_held(const kv_pool *p);
/* Held pages x page_size x head_dim x 2 (K and V) x elem_bytes: whole pages count. */
int64_t kv_pool_resident_bytes(const kv_pool *p);
/* Bytes of float32 storage the pool really has allocated right now. */
int64_t kv_pool_allocated_bytes(const kv_pool *p);
/* High-water mark of pages held. */
int kv_pool_peak_pages(const kv_pool *p);
/* Slots holding a token: slots taken from the slot allocator, and the slots of pages taken
 * whole that have been written (kv_pool_store) since the page was taken. */
int kv_pool_tokens_held(const kv_pool *p);
/* 1 when k_row is the key row (kv_pool_k) of a slot holding a token, else 0. For checks:
 * O(pages ever taken). */
int kv_pool_holds_row(const kv_pool *p, const float *k_row);

#endif
