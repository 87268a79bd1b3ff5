/* kv_cuda.h: one decoding sequence's KV cache on the GPU: every layer's keys and values in
 * pages of one device page pool, and each layer's policy running on the device (dense,
 * window, Quest, RaaS), so a decode step moves nothing between host and device
 * (kernels/cuda/kv_cuda.cu; kernels/kv_cuda_stub.c in builds without CUDA, where every call
 * fails with "no CUDA in this build").
 *
 * Semantics: each device policy makes the decisions of its CPU policy (policies/<name>.c)
 * on the same inputs: the same pages resident, the same pages attended, the same
 * evictions. Page bounds are float32 on the device against double on the CPU, so a choice
 * between two pages whose bounds agree to float32 rounding may differ (tests state it).
 *
 * Layouts as the CPU model's: q [Hq, d], k and v [Hkv, d], out [Hq, d], float32, device
 * pointers; query head h reads KV head h / G. Keys and values are stored at kv_dtype
 * (half by default: the 2 bytes per element the CPU path reports as resident).
 *
 * Memory: one page is page_size tokens of one (layer, KV head), K and V, at kv_dtype. Pages come from chunks of device memory the
 * pool allocates as it needs them (kvd_reserve) and never shrinks before kvd_destroy (a
 * caching allocator, as serving systems keep a block pool); a page a policy evicts goes back
 * to the pool's free list at once and is reused by the next page any layer opens. Held =
 * pages policies hold now (what kv_bytes reports, the CPU's kv_pool_resident_bytes
 * accounting: whole pages); reserved = the chunks allocated.
 *
 * Steps are stream-ordered on the attn_cuda context's stream, launch nothing whose shape
 * depends on the position (the position is read from device memory), and synchronise
 * nothing: a whole decode step of every layer can be captured once into a CUDA graph and
 * replayed for every token. */
#ifndef KV_CUDA_H
#define KV_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "attn_cuda.h"
#include "rb.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KVD_DENSE = 0,  /* every token resident and attended */
    KVD_WINDOW = 1, /* the last `budget` tokens (sliding-window layers; policies/window.c) */
    KVD_QUEST = 2,  /* policies/quest.c: all resident; the current page + the top
                       floor(L/P) - 1 pages by the min/max key bound (gqa=group|head) */
    KVD_RAAS = 3,   /* policies/raas.c with every parameter (score, refresh, r, alpha,
                       budget, pin_prefill) */
} kvd_policy;

typedef struct kvd_layer {
    kvd_policy policy;
    int budget; /* L tokens per KV head (window: the window); ignored by dense */
    /* quest */
    int quest_per_head;     /* gqa=head */
    /* raas (policies/raas.c's parameters) */
    int raas_exact_score;   /* score=exact */
    int raas_threshold;     /* refresh=threshold */
    double raas_r, raas_alpha;
    int raas_budget_decode; /* budget=decode */
    int raas_pin_prefill;
} kvd_layer;

typedef struct kvd_config {
    int n_layers, n_q_heads, n_kv_heads, head_dim, page_size, max_tokens;
    float attn_scale;
    attn_cuda_dtype kv_dtype;  /* ATTN_CUDA_F16 or ATTN_CUDA_F32 */
    const kvd_layer *layers;   /* [n_layers] */
} kvd_config;

typedef struct kvd_cache kvd_cache;

/* The device form of a CPU policy with its resolved parameters at `budget` (the layer's
 * policy from cells_layer_policy): RB_EINPUT "<policy>: no device implementation (the
 * device runs dense, quest, raas; window on sliding-window layers)" for any other policy,
 * and likewise for a parameter value the device does not run. Needs no GPU. */
struct policy_ops;
struct policy_params;
rb_status kvd_layer_from_policy(const struct policy_ops *ops, const struct policy_params *params,
                                int budget, kvd_layer *out, rb_err *e);

/* Checks the shape (the same limits as attn_cuda_shape: d 64/128/256, G 1..8), every
 * layer's budget as the CPU policy's create would (RB_EINPUT with the same message), and
 * allocates the page tables and policy state (O(max_tokens / page_size) per layer and KV
 * head) and a first chunk of pages. c stays owned by the caller and must outlive the cache. */
rb_status kvd_create(attn_cuda *c, const kvd_config *cfg, kvd_cache **out, rb_err *e);
void kvd_destroy(kvd_cache *kc); /* NULL is a no-op */

/* Host side, before each step (not captured): make sure the pool has free pages for the
 * next `tokens` positions of every layer (at most one new page per layer and KV head per
 * position), allocating chunks when short. Reads the held-page count back from the device
 * only when its host-side bound says the pool might run short. */
rb_status kvd_reserve(kvd_cache *kc, int tokens, rb_err *e);

/* One token of layer il at the position *pos_dev (device memory; positions 0, 1, ... with no
 * gaps, every layer of a position before the next position): store k, v, run the layer's
 * policy and write the attention of q over the attended set to out.
 * prefill = 1: a prompt token, attended densely (the CPU's stepper_prefill_token); on a
 *   window layer once the position reaches the window it is a window step, as on the CPU.
 * prefill = 0: a decode step (append, select, attend, observe, as stepper_step); the first
 *   decode step hands the prompt to the policy (RaaS pins its pages then).
 * Every prompt token comes before the first decode step. Queued on the context's stream;
 * device faults and broken invariants (the pool out of pages: kvd_reserve not called) are
 * reported by the next kvd_sync. */
void kvd_step(kvd_cache *kc, int il, int prefill, const int *pos_dev, const float *q,
              const float *k, const float *v, float *out);

/* Waits for the stream; RB_EINTERNAL on a CUDA fault or a broken invariant found by a
 * kernel (named in the message). */
rb_status kvd_sync(kvd_cache *kc, rb_err *e);

/* Counts after the last step (synchronises). Bytes at the stored element size. */
typedef struct kvd_stats {
    int64_t kv_bytes;        /* pages held now, all layers: pages x P x d x 2 x elem */
    int64_t peak_kv_bytes;   /* the most held at the end of any step */
    int64_t reserved_bytes;  /* device memory of the pool's chunks */
    int64_t meta_bytes;      /* the policies' device bookkeeping (bounds, timestamps, tables),
                                counted as the CPU policies' meta_bytes count theirs */
    double attended;         /* mean |S| over query heads and policy layers, last step */
} kvd_stats;
rb_status kvd_stats_get(kvd_cache *kc, kvd_stats *out, rb_err *e);
/* Held KV bytes of layer il alone (synchronises). */
int64_t kvd_layer_kv_bytes(kvd_cache *kc, int il);

/* For tests: the attended token positions of query head h of layer il at the last step,
 * ascending, into pos[0..cap); returns |S_h| (synchronises). */
int kvd_selection(kvd_cache *kc, int il, int h, int32_t *pos, int cap);

#ifdef __cplusplus
}
#endif

#endif
