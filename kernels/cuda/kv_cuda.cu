/* kv_cuda.cu: one sequence's KV cache on the GPU with its policies (kv_cuda.h).
 *
 * Per kvd_step of layer il, on the context's stream, with the position read from device
 * memory (so a step can be captured in a CUDA graph):
 *   k_append       1 block: thread 0 runs the lanes' decisions (kv_logic.h: store, raas
 *                  eviction, window slot allocator, pages from the pool's free stack); then
 *                  every thread writes k, v (at kv_dtype) and the page's key min/max; then
 *                  the attended pages of each set row (physical id, slot mask, logical page)
 *                  of dense, window, raas, and of quest while it attends all.
 *   k_quest_bounds (quest past L) warps over many blocks: each page's bound in double.
 *   k_quest_topk   one block per row: the top floor(L/P)-1 pages by radix select on the
 *                  bounds' order keys, ties to the lower page, then the current page.
 *   k_attn         split-K over the row's page list: a fixed grid (row, split), each block
 *                  reads the list's length from device memory; per-page softmax stats for
 *                  raas's exact mass.
 *   k_combine      merges the active splits into out and lse, a block per (head, 32
 *                  channels), the splits spread over its warps.
 *   k_raas_observe one block per KV head: the refresh of raas_observe.
 * A page is K [P, d] and V [P, d] at kv_dtype, then the keys' channel min [d] and max [d]
 * in float32 (quest and raas bounds, from the float32 keys as the CPU keeps them). */
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_rb.cuh"
#include "kv_cuda.h"
#include "kv_logic.h"

#define CU_TRY(call) CU_TRY_AS("kv_cuda", call)

namespace {

constexpr int MAX_KV_HEADS = 64;
constexpr int TOPK_SMEM = 4096; /* keys held in shared memory by the top-k kernel */
constexpr int OBS_SMEM = 2048;  /* raas observe: evictable pages ranked in shared memory */
constexpr int OBS_THREADS = 1024;

struct layer_dev {
    int policy, per_head, rows, row_heads, n_split;
};

__device__ __forceinline__ uint64_t full_mask(int P) {
    return P >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << P) - 1);
}

__device__ __forceinline__ float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ double warp_sum_d(double x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

template <typename T> __device__ __forceinline__ T to_kv(float x);
template <> __device__ __forceinline__ float to_kv<float>(float x) { return x; }
template <> __device__ __forceinline__ __half to_kv<__half>(float x) { return __float2half_rn(x); }

/* E consecutive elements (E = 2, 4, 8; p aligned to E elements) into floats, in 4-, 8- or
 * 16-byte loads. */
template <int E> __device__ __forceinline__ void load_row(const float *p, float *x) {
    if (E == 2) {
        float2 a = *(const float2 *)p;
        x[0] = a.x, x[1] = a.y;
    } else {
#pragma unroll
        for (int j = 0; j < E; j += 4) {
            float4 a = *(const float4 *)(p + j);
            x[j] = a.x, x[j + 1] = a.y, x[j + 2] = a.z, x[j + 3] = a.w;
        }
    }
}
template <int E> __device__ __forceinline__ void load_row(const __half *p, float *x) {
    if (E == 2) {
        float2 a = __half22float2(*(const __half2 *)p);
        x[0] = a.x, x[1] = a.y;
    } else if (E == 4) {
        uint2 u = *(const uint2 *)p;
        const __half2 *h = (const __half2 *)&u;
        float2 a = __half22float2(h[0]), b = __half22float2(h[1]);
        x[0] = a.x, x[1] = a.y, x[2] = b.x, x[3] = b.y;
    } else {
        uint4 u = *(const uint4 *)p;
        const __half2 *h = (const __half2 *)&u;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 a = __half22float2(h[j]);
            x[2 * j] = a.x, x[2 * j + 1] = a.y;
        }
    }
}

/* ---- append and the attended page lists ---- */

__device__ __forceinline__ int lane_of_row(int r, int per_head, int G) { return per_head ? r / G : r; }

__device__ void select_row(const kvl_lane *lanes, int r, int per_head, int G, int pos,
                           int prefill, int list_cap, int32_t *list_phys, uint64_t *list_mask,
                           int32_t *list_log, int *cnt, int *ntok);

/* One block: the decisions (thread 0), the stores and bounds (every thread), then the
 * attended page list of each set row (entries: physical page, slot mask, logical page). */
template <typename T>
__global__ void k_append(kvl_lane *lanes, int n_kv, kvl_pool *pool, const int *pos_dev,
                         int prefill, const float *k, const float *v, void *const *page_addr,
                         int d, int P, int rows, int per_head, int G, int list_cap,
                         int32_t *list_phys, uint64_t *list_mask, int32_t *list_log, int *cnt,
                         int *ntok) {
    __shared__ int s_phys[MAX_KV_HEADS], s_slot[MAX_KV_HEADS], s_fresh[MAX_KV_HEADS];
    int pos = *pos_dev;
    if (threadIdx.x == 0) {
        /* the scalars in registers: one load and one store of each struct, not a chain of
         * dependent global accesses */
        kvl_pool pl = *pool;
        for (int g = 0; g < n_kv; g++) {
            kvl_lane ln = lanes[g];
            int phys = -1, slot = 0, fresh = 0;
            if (ln.policy == KVL_WINDOW) {
                int w = kvl_window_append(&pl, &ln, pos);
                if (w >= 0) phys = ln.loc_phys[w / P], slot = w % P;
            } else {
                phys = kvl_paged_append(&pl, &ln, pos, prefill, &fresh);
                slot = pos % P;
            }
            s_phys[g] = phys, s_slot[g] = slot, s_fresh[g] = fresh;
            lanes[g] = ln;
        }
        if (pl.held > pl.peak) pl.peak = pl.held;
        *pool = pl;
    }
    __syncthreads();
    for (int g = 0; g < n_kv; g++) {
        if (s_phys[g] < 0) continue;
        T *base = (T *)page_addr[s_phys[g]];
        T *kr = base + (size_t)s_slot[g] * d, *vr = base + (size_t)(P + s_slot[g]) * d;
        float *mn = (float *)(base + (size_t)2 * P * d), *mx = mn + d;
        int pol = lanes[g].policy;
        int bounds = pol == KVL_QUEST || (pol == KVL_RAAS && !lanes[g].raas_exact);
        for (int i = threadIdx.x; i < d; i += blockDim.x) {
            float kx = k[(size_t)g * d + i];
            kr[i] = to_kv<T>(kx);
            vr[i] = to_kv<T>(v[(size_t)g * d + i]);
            if (!bounds) continue;
            if (s_fresh[g]) {
                mn[i] = kx, mx[i] = kx;
            } else {
                if (kx < mn[i]) mn[i] = kx;
                if (kx > mx[i]) mx[i] = kx;
            }
        }
    }
    /* the lanes' new state (thread 0's global writes) is visible to the block after this */
    __syncthreads();
    for (int r = 0; r < rows; r++)
        select_row(lanes, r, per_head, G, pos, prefill, list_cap, list_phys, list_mask, list_log,
                   cnt, ntok);
}

/* ---- the attended page lists ---- */


/* The attended pages of set row r (quest past L: left to k_quest_topk), by the whole block. */
__device__ void select_row(const kvl_lane *lanes, int r, int per_head, int G, int pos,
                           int prefill, int list_cap, int32_t *list_phys, uint64_t *list_mask,
                           int32_t *list_log, int *cnt, int *ntok) {
    const kvl_lane *ln = &lanes[lane_of_row(r, per_head, G)];
    int P = ln->P, cur = pos / P;
    int32_t *lp = list_phys + (size_t)r * list_cap, *ll = list_log + (size_t)r * list_cap;
    uint64_t *lm = list_mask + (size_t)r * list_cap;
    if (ln->policy == KVL_WINDOW) {
        int n = ln->n_loc;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            int on = ln->loc_mode[i] == KVL_LOC_SLOTS;
            lp[i] = on ? ln->loc_phys[i] : -1;
            lm[i] = on ? ln->loc_used[i] : 0;
            ll[i] = i;
        }
        if (threadIdx.x == 0) cnt[r] = n, ntok[r] = ln->last - ln->lo + 1;
        return;
    }
    if (ln->policy == KVL_QUEST && !prefill && !kvl_quest_all(ln, pos)) return; /* top-k's */
    int use_res = ln->policy == KVL_RAAS && !prefill;
    int n = use_res ? ln->n_res : cur + 1;
    uint64_t full = full_mask(P), part = full_mask(pos % P + 1);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int page = use_res ? ln->res[i] : i;
        lp[i] = ln->ltp[page];
        lm[i] = page < cur ? full : part;
        ll[i] = page;
    }
    if (threadIdx.x == 0) cnt[r] = n, ntok[r] = (n - 1) * P + pos % P + 1;
}

/* Bound of one resident page for the heads of row r, max over them (warp-wide; lane 0's
 * value is the result on every lane). */
__device__ double page_bound(const float *q, int h0, int nh, const float *mn, const float *mx,
                             int d) {
    double best = -INFINITY;
    for (int h = 0; h < nh; h++) {
        const float *qh = q + (size_t)(h0 + h) * d;
        double u = 0;
        for (int i = threadIdx.x % 32; i < d; i += 32) {
            double a = (double)qh[i] * mx[i], b = (double)qh[i] * mn[i];
            u += a > b ? a : b;
        }
        u = warp_sum_d(u);
        if (u > best) best = u;
    }
    return best;
}

template <typename T>
__global__ void k_quest_bounds(const kvl_lane *lanes, int per_head, int G, const int *pos_dev,
                               int prefill, const float *q, void *const *page_addr,
                               int list_cap, double *score) {
    int r = blockIdx.x;
    const kvl_lane *ln = &lanes[lane_of_row(r, per_head, G)];
    int pos = *pos_dev, P = ln->P, d = ln->d, cur = pos / P;
    if (prefill || kvl_quest_all(ln, pos)) return;
    int h0 = per_head ? r : r * G, nh = per_head ? 1 : G;
    int warps = blockDim.x / 32, w = blockIdx.y * warps + threadIdx.x / 32;
    for (int page = w; page < cur; page += gridDim.y * warps) {
        int phys = ln->ltp[page];
        double b = -INFINITY; /* a page missing after an error (reported at kvd_sync) */
        if (phys >= 0) {
            const T *base = (const T *)page_addr[phys];
            const float *mn = (const float *)(base + (size_t)2 * P * d), *mx = mn + d;
            b = page_bound(q, h0, nh, mn, mx, d);
        }
        if (threadIdx.x % 32 == 0) score[(size_t)r * list_cap + page] = b;
    }
}

/* Exclusive scan of x over the block (blockDim.x a multiple of 32, <= 1024); *total gets the
 * sum. Every thread must call it. */
__device__ int block_scan(int x, int *total) {
    __shared__ int warp_tot[32], grand;
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    int incl = x;
    for (int o = 1; o < 32; o <<= 1) {
        int y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
    }
    if (lane == 31) warp_tot[w] = incl;
    __syncthreads();
    if (w == 0) {
        int t = lane < nw ? warp_tot[lane] : 0, ti = t;
        for (int o = 1; o < 32; o <<= 1) {
            int y = __shfl_up_sync(0xffffffffu, ti, o);
            if (lane >= o) ti += y;
        }
        if (lane < nw) warp_tot[lane] = ti - t; /* exclusive prefix of warp totals */
        if (lane == 31) grand = ti;             /* nw <= 32: lane 31 holds the grand total */
    }
    __syncthreads();
    int res = warp_tot[w] + incl - x;
    int tot = grand;
    __syncthreads(); /* warp_tot is reused by the next call */
    *total = tot;
    return res;
}

/* pu_topk(score, cur, floor(L/P) - 1) over pages 0..cur-1, then the current page. */
__global__ void __launch_bounds__(1024)
k_quest_topk(const kvl_lane *lanes, int per_head, int G, const int *pos_dev, int prefill,
             int list_cap, const double *score, int32_t *list_phys, uint64_t *list_mask,
             int32_t *list_log, int *cnt, int *ntok) {
    __shared__ uint64_t s_keys[TOPK_SMEM];
    __shared__ unsigned hist[256];
    __shared__ uint64_t s_prefix, s_pmask;
    __shared__ int s_kk, s_done;
    int r = blockIdx.x;
    const kvl_lane *ln = &lanes[lane_of_row(r, per_head, G)];
    int pos = *pos_dev, P = ln->P, cur = pos / P;
    if (prefill || kvl_quest_all(ln, pos)) return;
    int n = cur, k = ln->budget / P - 1; /* n > k here: pos >= L */
    const double *sc = score + (size_t)r * list_cap;
    int in_smem = n <= TOPK_SMEM;
    if (in_smem)
        for (int i = threadIdx.x; i < n; i += blockDim.x) s_keys[i] = kvl_order_key(sc[i]);
    if (threadIdx.x == 0) s_prefix = 0, s_pmask = 0, s_kk = k, s_done = 0;
    __syncthreads();
    /* Radix select, 8 bits a pass from the top: the k-th largest key. It stops early when
     * the digit's bin holds exactly the keys still wanted: then every key >= the prefix is
     * chosen and no tie needs breaking. */
    for (int shift = 56; shift >= 0 && !s_done; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        uint64_t prefix = s_prefix, pmask = s_pmask;
        for (int base = 0; base < n; base += blockDim.x) { /* whole warps: match_any below */
            int i = base + threadIdx.x, bin = -1;
            if (i < n) {
                uint64_t key = in_smem ? s_keys[i] : kvl_order_key(sc[i]);
                if ((key & pmask) == prefix) bin = (int)((key >> shift) & 255);
            }
            /* the keys share their high bits: one atomic per distinct bin in the warp */
            unsigned peers = __match_any_sync(0xffffffffu, bin);
            if (bin >= 0 && (int)(threadIdx.x % 32) == __ffs(peers) - 1)
                atomicAdd(&hist[bin], (unsigned)__popc(peers));
        }
        __syncthreads();
        if (threadIdx.x < 32) { /* warp 0 finds the digit: lane l sums bins 255-8l..248-8l */
            int l = threadIdx.x, top = 255 - 8 * l, mine = 0;
            int kk = s_kk; /* read before the shuffles: the lane that writes it comes after */
            for (int j = 0; j < 8; j++) mine += hist[top - j];
            int incl = mine;
            for (int o = 1; o < 32; o <<= 1) {
                int y = __shfl_up_sync(0xffffffffu, incl, o);
                if (l >= o) incl += y;
            }
            int cum = incl - mine; /* keys in the bins above lane l's */
            if (cum < kk && kk <= incl) {
                for (int j = 0; j < 8; j++) {
                    int dg = top - j;
                    if (cum + (int)hist[dg] >= kk) {
                        s_prefix |= (uint64_t)dg << shift;
                        s_pmask |= (uint64_t)255 << shift;
                        s_kk = kk - cum;
                        if ((int)hist[dg] == kk - cum) s_done = 1;
                        break;
                    }
                    cum += hist[dg];
                }
            }
        }
        __syncthreads();
    }
    /* done early: every key >= thr (the prefix, low bits 0) is chosen, exactly k of them;
     * otherwise the keys > thr and the first `ties` keys == thr */
    int done = s_done;
    uint64_t thr = s_prefix;
    int ties = done ? 0 : s_kk;
    int32_t *lp = list_phys + (size_t)r * list_cap, *ll = list_log + (size_t)r * list_cap;
    uint64_t *lm = list_mask + (size_t)r * list_cap;
    uint64_t full = full_mask(P);
    int eq_base = 0, out_base = 0;
    for (int base = 0; base < n; base += blockDim.x) {
        int i = base + threadIdx.x;
        uint64_t key = 0;
        if (i < n) key = in_smem ? s_keys[i] : kvl_order_key(sc[i]);
        int above = i < n && (done ? key >= thr : key > thr);
        int eq = i < n && !done && key == thr, eq_tot, sel_tot;
        int eq_rank = block_scan(eq, &eq_tot);
        int sel = above || (eq && eq_base + eq_rank < ties);
        int at = block_scan(sel, &sel_tot);
        if (sel) {
            lp[out_base + at] = ln->ltp[i];
            lm[out_base + at] = full;
            ll[out_base + at] = i;
        }
        eq_base += eq_tot, out_base += sel_tot;
    }
    if (threadIdx.x == 0) {
        lp[out_base] = ln->ltp[cur];
        lm[out_base] = full_mask(pos % P + 1);
        ll[out_base] = cur;
        cnt[r] = out_base + 1;
        ntok[r] = out_base * P + pos % P + 1;
    }
}

/* ---- attention over a page list: split-K ---- */

constexpr int ATT_WARPS = 4;

/* Pages per split: the list spread over the n_split blocks, but at least min_pages (a page
 * per warp when per-page statistics are kept, else one page: its tokens are then cut into
 * ATT_WARPS slices, a warp each, so a short list's serial chain per warp is a quarter page). */
__device__ __forceinline__ int split_chunk(int n, int n_split, int min_pages) {
    int c = (n + n_split - 1) / n_split;
    return c < min_pages ? min_pages : c;
}

template <int D, int GM, typename T>
__global__ void __launch_bounds__(ATT_WARPS * 32)
k_attn(const int32_t *list_phys, const uint64_t *list_mask, const int *cnt, int list_cap,
       int row_heads, int P, void *const *page_addr, const float *q, float scale, int n_split,
       float *part_m, float *part_l, float *part_acc, float *stat_m, float *stat_l) {
    constexpr int E = D / 32;
    __shared__ float sm[ATT_WARPS][GM], sl[ATT_WARPS][GM];
    __shared__ float sacc[ATT_WARPS][GM][D];
    int r = blockIdx.x, b = blockIdx.y, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int h0 = r * row_heads;
    /* S slices a page (1 with per-page statistics: a warp must see its whole page) */
    const int S = stat_m ? 1 : ATT_WARPS, tb = (P + S - 1) / S;
    int n = cnt[r], chunk = split_chunk(n, n_split, stat_m ? ATT_WARPS : 1);
    int e0 = b * chunk, e1 = min(n, e0 + chunk);
    if (e0 >= e1) return; /* an idle split: k_combine reads only the first ceil(n / chunk) */
    float qr[GM][E], m[GM], s[GM], acc[GM][E];
#pragma unroll
    for (int h = 0; h < GM; h++) {
        m[h] = -INFINITY, s[h] = 0;
#pragma unroll
        for (int j = 0; j < E; j++) {
            qr[h][j] = h < row_heads ? q[(size_t)(h0 + h) * D + lane * E + j] * scale : 0.f;
            acc[h][j] = 0;
        }
    }
    for (int u = e0 * S + warp; u < e1 * S; u += ATT_WARPS) {
        const int e = u / S, t_lo = (u % S) * tb, t_hi = min(P, t_lo + tb);
        int phys = list_phys[(size_t)r * list_cap + e];
        uint64_t mask = list_mask[(size_t)r * list_cap + e];
        float pm[GM], pl[GM];
#pragma unroll
        for (int h = 0; h < GM; h++) pm[h] = -INFINITY, pl[h] = 0;
        if (phys >= 0 && mask) {
            const T *base = (const T *)page_addr[phys];
            /* U tokens' rows are loaded before any is used, so their latencies overlap */
            constexpr int U = 4;
            for (int t0 = t_lo; t0 < t_hi; t0 += U) {
                float kx[U][E], vx[U][E];
#pragma unroll
                for (int i = 0; i < U; i++) {
                    int t = t0 + i;
                    if (t < t_hi && ((mask >> t) & 1)) {
                        load_row<E>(base + (size_t)t * D + lane * E, kx[i]);
                        load_row<E>(base + (size_t)(P + t) * D + lane * E, vx[i]);
                    }
                }
#pragma unroll
                for (int i = 0; i < U; i++) {
                    int t = t0 + i;
                    if (t >= t_hi || !((mask >> t) & 1)) continue;
#pragma unroll
                    for (int h = 0; h < GM; h++) {
                        if (h >= row_heads) break;
                        float dot = 0;
#pragma unroll
                        for (int j = 0; j < E; j++) dot += qr[h][j] * kx[i][j];
                        dot = warp_sum(dot);
                        if (dot > m[h]) {
                            float c = expf(m[h] - dot);
                            s[h] *= c;
#pragma unroll
                            for (int j = 0; j < E; j++) acc[h][j] *= c;
                            m[h] = dot;
                        }
                        float p = expf(dot - m[h]);
                        s[h] += p;
#pragma unroll
                        for (int j = 0; j < E; j++) acc[h][j] += p * vx[i][j];
                        if (stat_m) {
                            if (dot > pm[h]) pl[h] *= expf(pm[h] - dot), pm[h] = dot;
                            pl[h] += expf(dot - pm[h]);
                        }
                    }
                }
            }
        }
        if (stat_m && lane == 0)
            for (int h = 0; h < row_heads && h < GM; h++) {
                stat_m[(size_t)(h0 + h) * list_cap + e] = pm[h];
                stat_l[(size_t)(h0 + h) * list_cap + e] = pl[h];
            }
    }
#pragma unroll
    for (int h = 0; h < GM; h++) {
        if (lane == 0) sm[warp][h] = m[h], sl[warp][h] = s[h];
#pragma unroll
        for (int j = 0; j < E; j++) sacc[warp][h][lane * E + j] = acc[h][j];
    }
    __syncthreads();
    for (int h = 0; h < row_heads && h < GM; h++) {
        float M = -INFINITY;
        for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, sm[w][h]);
        float L = 0;
        for (int w = 0; w < ATT_WARPS; w++)
            if (sm[w][h] > -INFINITY) L += sl[w][h] * expf(sm[w][h] - M);
        size_t at = (size_t)(h0 + h) * n_split + b;
        if (threadIdx.x == 0) part_m[at] = M, part_l[at] = L;
        for (int i = threadIdx.x; i < D; i += blockDim.x) {
            float a = 0;
            for (int w = 0; w < ATT_WARPS; w++)
                if (sm[w][h] > -INFINITY) a += sacc[w][h][i] * expf(sm[w][h] - M);
            part_acc[at * D + i] = a;
        }
    }
}

/* Merges the active splits of each query head: grid (Hq, d / 32), 8 warps a block; the
 * splits' (max, sum) are reduced by the lanes of every warp, then warp w sums the channels'
 * partials of splits w, w + 8, ... (independent loads, no long serial chain), and the warps'
 * sums meet in shared memory. */
constexpr int CMB_WARPS = 8;
__global__ void __launch_bounds__(CMB_WARPS * 32)
k_combine(int d, int n_split, int min_pages, const int *cnt, int per_head, int G,
          const float *part_m, const float *part_l, const float *part_acc, float *out, float *lse) {
    __shared__ float s_acc[CMB_WARPS][32];
    int h = blockIdx.x, c = blockIdx.y * 32 + threadIdx.x % 32, w = threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    int n = cnt[per_head ? h : h / G], chunk = split_chunk(n, n_split, min_pages);
    int n_act = (n + chunk - 1) / chunk;
    const float *pm = part_m + (size_t)h * n_split, *pl = part_l + (size_t)h * n_split;
    float M = -INFINITY;
    for (int s = lane; s < n_act; s += 32) M = fmaxf(M, pm[s]);
    for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
    float L = 0;
    for (int s = lane; s < n_act; s += 32)
        if (pm[s] > -INFINITY) L += pl[s] * expf(pm[s] - M);
    L = warp_sum(L);
    float a = 0;
#pragma unroll 4
    for (int s = w; s < n_act; s += CMB_WARPS)
        if (pm[s] > -INFINITY) a += part_acc[((size_t)h * n_split + s) * d + c] * expf(pm[s] - M);
    s_acc[w][lane] = a;
    __syncthreads();
    if (w == 0) {
        float t = 0;
        for (int j = 0; j < CMB_WARPS; j++) t += s_acc[j][lane];
        out[(size_t)h * d + c] = t / L;
        if (blockIdx.y == 0 && lane == 0) lse[h] = M + logf(L);
    }
}

/* ---- raas observe ---- */

template <typename T>
__global__ void __launch_bounds__(OBS_THREADS) k_raas_observe(kvl_lane *lanes, int G, const int *pos_dev, int prefill,
                               const float *q, const float *lse, const float *stat_m,
                               const float *stat_l, const int32_t *list_log, const int *cnt,
                               const int *ntok, int list_cap, void *const *page_addr,
                               double *scratch, int *chosen) {
    int g = blockIdx.x;
    kvl_lane *ln = &lanes[g];
    if (prefill || ln->n_ev == 0) return;
    int t = *pos_dev, P = ln->P, d = ln->d, n_ev = ln->n_ev, h0 = g * G;
    double *mass = scratch + (size_t)g * 2 * list_cap, *sc = mass + list_cap;
    int *ch = chosen + (size_t)g * list_cap;
    if (ln->raas_exact || ln->raas_threshold) {
        int n = cnt[g];
        const int32_t *ll = list_log + (size_t)g * list_cap;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            int p = ll[i];
            if (ln->state[p] != KVL_PG_EVICTABLE) continue;
            double best = 0;
            for (int h = h0; h < h0 + G; h++) {
                double v = exp((double)stat_m[(size_t)h * list_cap + i] - (double)lse[h]) *
                           (double)stat_l[(size_t)h * list_cap + i];
                if (v > best) best = v;
            }
            mass[p] = best;
        }
        __syncthreads();
        if (ln->raas_threshold) {
            int n_att = ntok[g];
            for (int i = threadIdx.x; i < n_ev; i += blockDim.x) {
                int p = ln->ev[i], lo = p * P, hi = lo + P;
                int n_tok = (hi > t + 1 ? t + 1 : hi) - lo;
                if (mass[p] / n_tok * n_att > ln->raas_alpha) ln->ts[p] = t;
            }
            return;
        }
        for (int i = threadIdx.x; i < n_ev; i += blockDim.x) sc[i] = mass[ln->ev[i]];
    } else {
        int warps = blockDim.x / 32;
        for (int i = threadIdx.x / 32; i < n_ev; i += warps) {
            const T *base = (const T *)page_addr[ln->ltp[ln->ev[i]]];
            const float *mn = (const float *)(base + (size_t)2 * P * d), *mx = mn + d;
            double b = page_bound(q, h0, G, mn, mx, d);
            if (threadIdx.x % 32 == 0) sc[i] = b;
        }
    }
    __syncthreads();
    int k = kvl_raas_refresh_k(ln->raas_r, n_ev);
    /* pu_topk over the evictable pages in page order: ties to the lower page. Scores and
     * pages in shared memory when they fit, so each thread's scan is not a chain of L2
     * loads. */
    __shared__ double s_sc[OBS_SMEM];
    __shared__ int s_ev[OBS_SMEM];
    int in_smem = n_ev <= OBS_SMEM;
    if (in_smem)
        for (int i = threadIdx.x; i < n_ev; i += blockDim.x) s_sc[i] = sc[i], s_ev[i] = ln->ev[i];
    __syncthreads();
    const double *scr = in_smem ? s_sc : sc;
    const int *evr = in_smem ? s_ev : ln->ev;
    for (int i = threadIdx.x; i < n_ev; i += blockDim.x) {
        int beat = 0, pi = evr[i];
        double si = scr[i];
        for (int j = 0; j < n_ev && beat < k; j++)
            beat += scr[j] > si || (scr[j] == si && evr[j] < pi);
        ch[i] = beat < k;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n_ev; i += blockDim.x)
        if (ch[i]) ln->ts[ln->ev[i]] = t;
}

} // namespace

/* ---- host side ---- */

struct kvd_cache {
    attn_cuda *c;
    cudaStream_t stream;
    kvd_config cfg;
    kvd_layer *layers;     /* [n_layers] a copy */
    layer_dev *ld;         /* [n_layers] */
    int n_lanes, G, elem, n_sm, list_cap, max_pages, n_split_max;
    size_t page_bytes;
    kvl_lane *h_lanes;     /* [n_lanes] host copy with device pointers (the configuration) */
    kvl_lane *d_lanes;     /* [n_lanes] */
    void *d_arena0, *d_arenaff;
    kvl_pool *d_pool;
    int32_t *d_free;
    void **d_page_addr;
    int pool_cap, n_pages_total;
    void **chunks;
    int n_chunks;
    int held_known, pending;
    /* per layer lists */
    int32_t *d_list_phys, *d_list_log;
    uint64_t *d_list_mask;
    int *d_cnt, *d_ntok;
    /* scratch */
    double *d_score, *d_scratch;
    int *d_chosen;
    float *d_part_m, *d_part_l, *d_part_acc, *d_stat_m, *d_stat_l, *d_lse;
};

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static rb_status add_chunk(kvd_cache *kc, int pages, rb_err *e) {
    if (pages > kc->pool_cap - kc->n_pages_total) pages = kc->pool_cap - kc->n_pages_total;
    if (pages <= 0) return rb_fail(e, RB_EINTERNAL, "kv_cuda", "page pool at its capacity");
    void *mem = nullptr;
    CU_TRY(cudaMalloc(&mem, (size_t)pages * kc->page_bytes));
    kc->chunks = (void **)rb_realloc(kc->chunks, sizeof(void *) * (size_t)(kc->n_chunks + 1));
    kc->chunks[kc->n_chunks++] = mem;
    /* the pool is idle here (kvd_reserve synchronised): host copies are exact */
    kvl_pool pool;
    CU_TRY(cudaMemcpyAsync(&pool, kc->d_pool, sizeof pool, cudaMemcpyDeviceToHost, kc->stream));
    CU_TRY(cudaStreamSynchronize(kc->stream));
    void **addr = (void **)rb_malloc(sizeof(void *) * (size_t)pages);
    int32_t *ids = (int32_t *)rb_malloc(sizeof(int32_t) * (size_t)pages);
    for (int i = 0; i < pages; i++) {
        addr[i] = (char *)mem + (size_t)i * kc->page_bytes;
        ids[i] = kc->n_pages_total + pages - 1 - i; /* lowest id on top */
    }
    cudaError_t err = cudaMemcpyAsync(kc->d_page_addr + kc->n_pages_total, addr,
                                      sizeof(void *) * (size_t)pages, cudaMemcpyHostToDevice,
                                      kc->stream);
    if (err == cudaSuccess)
        err = cudaMemcpyAsync(kc->d_free + pool.n_free, ids, sizeof(int32_t) * (size_t)pages,
                              cudaMemcpyHostToDevice, kc->stream);
    pool.n_free += pages;
    if (err == cudaSuccess)
        err = cudaMemcpyAsync(&kc->d_pool->n_free, &pool.n_free, sizeof(int),
                              cudaMemcpyHostToDevice, kc->stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(kc->stream);
    free(addr);
    free(ids);
    if (err != cudaSuccess)
        return rb_fail(e, RB_EINTERNAL, "kv_cuda", "adding pages: %s", cudaGetErrorString(err));
    kc->n_pages_total += pages;
    return RB_OK;
}

static int lane_max_loc(const kvd_config *cfg, const kvd_layer *ly) {
    int b = ly->budget < cfg->max_tokens ? ly->budget : cfg->max_tokens;
    return b + 1;
}

extern "C" {

rb_status kvd_create(attn_cuda *c, const kvd_config *cfg, kvd_cache **out, rb_err *e) {
    *out = nullptr;
    if (!c || !cfg || !cfg->layers) return rb_fail(e, RB_EINPUT, "kv_cuda", "no context, config or layers");
    int Hq = cfg->n_q_heads, Hkv = cfg->n_kv_heads, d = cfg->head_dim, P = cfg->page_size;
    if (cfg->n_layers < 1 || Hq < 1 || Hkv < 1 || Hq % Hkv || Hq / Hkv > 8 || Hkv > MAX_KV_HEADS)
        return rb_fail(e, RB_EINPUT, "kv_cuda",
                       "bad head layout: %d query heads, %d KV heads (need G = Hq/Hkv in 1..8, "
                       "Hkv <= %d), %d layers",
                       Hq, Hkv, MAX_KV_HEADS, cfg->n_layers);
    if (d != 64 && d != 128 && d != 256)
        return rb_fail(e, RB_EINPUT, "kv_cuda", "head_dim %d (the device runs 64, 128, 256)", d);
    if (P < 1 || P > 64)
        return rb_fail(e, RB_EINPUT, "kv_cuda", "page size %d (the device runs 1..64)", P);
    if (cfg->max_tokens < 1)
        return rb_fail(e, RB_EINPUT, "kv_cuda", "max_tokens must be positive (got %d)", cfg->max_tokens);
    if (cfg->kv_dtype != ATTN_CUDA_F16 && cfg->kv_dtype != ATTN_CUDA_F32)
        return rb_fail(e, RB_EINPUT, "kv_cuda", "kv_dtype must be half or float32");
    for (int il = 0; il < cfg->n_layers; il++) {
        const kvd_layer *ly = &cfg->layers[il];
        if ((int)ly->policy < KVD_DENSE || (int)ly->policy > KVD_RAAS)
            return rb_fail(e, RB_EINPUT, "kv_cuda", "layer %d: unknown policy %d", il, (int)ly->policy);
        rb_status st = kvl_check_budget((int)ly->policy, ly->budget, P, e);
        if (st) return st;
    }
    kvd_cache *kc = (kvd_cache *)rb_calloc(1, sizeof *kc);
    kc->c = c;
    kc->stream = (cudaStream_t)attn_cuda_stream(c);
    kc->cfg = *cfg;
    kc->layers = (kvd_layer *)rb_malloc(sizeof(kvd_layer) * (size_t)cfg->n_layers);
    memcpy(kc->layers, cfg->layers, sizeof(kvd_layer) * (size_t)cfg->n_layers);
    kc->cfg.layers = kc->layers;
    kc->G = Hq / Hkv;
    kc->n_lanes = cfg->n_layers * Hkv;
    kc->elem = cfg->kv_dtype == ATTN_CUDA_F16 ? 2 : 4;
    kc->max_pages = (cfg->max_tokens + P - 1) / P;
    kc->page_bytes = align_up((size_t)2 * P * d * kc->elem + (size_t)2 * d * sizeof(float), 256);
    int dev = 0;
    cudaGetDevice(&dev);
    kc->n_sm = 0;
    cudaDeviceGetAttribute(&kc->n_sm, cudaDevAttrMultiProcessorCount, dev);
    if (kc->n_sm < 1) kc->n_sm = 1;

    /* sizes and the lanes' configuration */
    kc->list_cap = kc->max_pages;
    kc->pool_cap = 0;
    size_t sz0 = 0, szff = 0;
    kc->h_lanes = (kvl_lane *)rb_calloc((size_t)kc->n_lanes, sizeof(kvl_lane));
    kc->ld = (layer_dev *)rb_calloc((size_t)cfg->n_layers, sizeof(layer_dev));
    for (int il = 0; il < cfg->n_layers; il++) {
        const kvd_layer *ly = &kc->layers[il];
        int pol = (int)ly->policy;
        layer_dev *L = &kc->ld[il];
        L->policy = pol;
        L->per_head = pol == KVD_QUEST && ly->quest_per_head;
        L->rows = L->per_head ? Hq : Hkv;
        L->row_heads = L->per_head ? 1 : kc->G;
        int ml = lane_max_loc(cfg, ly);
        if (pol == KVD_WINDOW && ml > kc->list_cap) kc->list_cap = ml;
        for (int g = 0; g < Hkv; g++) {
            kvl_lane *ln = &kc->h_lanes[il * Hkv + g];
            ln->policy = pol, ln->P = P, ln->d = d, ln->budget = ly->budget;
            ln->max_pages = kc->max_pages, ln->max_tokens = cfg->max_tokens;
            ln->last = -1;
            if (pol == KVD_RAAS) {
                ln->raas_exact = ly->raas_exact_score, ln->raas_threshold = ly->raas_threshold;
                ln->raas_budget_decode = ly->raas_budget_decode;
                ln->raas_pin_prefill = ly->raas_pin_prefill;
                ln->raas_r = ly->raas_r, ln->raas_alpha = ly->raas_alpha;
                ln->cap_pages = ly->budget / P;
            }
            if (pol == KVD_WINDOW) {
                ln->max_loc = ml;
                kc->pool_cap += ml;
                sz0 += align_up((size_t)ml * (8 + 1 + 4 + 4 + 4 + 4 + 1), 16);
                szff += align_up((size_t)cfg->max_tokens * 4, 16);
            } else {
                kc->pool_cap += kc->max_pages;
                szff += align_up((size_t)kc->max_pages * 4, 16);
                if (pol == KVD_RAAS) sz0 += align_up((size_t)kc->max_pages * (1 + 4 + 4 + 4), 16);
            }
        }
    }
    rb_status st = RB_OK;
    cudaError_t err = cudaSuccess;
#define KV_TRY(call)                                                                           \
    do {                                                                                       \
        if ((err = (call)) != cudaSuccess) goto fail;                                          \
    } while (0)
    {
        KV_TRY(cudaMalloc(&kc->d_arena0, sz0 ? sz0 : 16));
        KV_TRY(cudaMalloc(&kc->d_arenaff, szff ? szff : 16));
        KV_TRY(cudaMemsetAsync(kc->d_arena0, 0, sz0 ? sz0 : 16, kc->stream));
        KV_TRY(cudaMemsetAsync(kc->d_arenaff, 0xff, szff ? szff : 16, kc->stream));
        char *a0 = (char *)kc->d_arena0, *aff = (char *)kc->d_arenaff;
        for (int i = 0; i < kc->n_lanes; i++) {
            kvl_lane *ln = &kc->h_lanes[i];
            if (ln->policy == KVL_WINDOW) {
                int ml = ln->max_loc;
                char *p = a0;
                ln->loc_used = (uint64_t *)p, p += (size_t)ml * 8;
                ln->loc_phys = (int32_t *)p, p += (size_t)ml * 4;
                ln->loc_used_n = (int32_t *)p, p += (size_t)ml * 4;
                ln->free_loc = (int32_t *)p, p += (size_t)ml * 4;
                ln->partial = (int32_t *)p, p += (size_t)ml * 4;
                ln->loc_mode = (uint8_t *)p, p += ml;
                ln->in_partial = (uint8_t *)p, p += ml;
                a0 += align_up((size_t)ml * (8 + 1 + 4 + 4 + 4 + 4 + 1), 16);
                ln->slot_of = (int32_t *)aff;
                aff += align_up((size_t)cfg->max_tokens * 4, 16);
            } else {
                int mp = kc->max_pages;
                ln->ltp = (int32_t *)aff;
                aff += align_up((size_t)mp * 4, 16);
                if (ln->policy == KVL_RAAS) {
                    char *p = a0;
                    ln->ts = (int32_t *)p, p += (size_t)mp * 4;
                    ln->ev = (int32_t *)p, p += (size_t)mp * 4;
                    ln->res = (int32_t *)p, p += (size_t)mp * 4;
                    ln->state = (uint8_t *)p, p += mp;
                    a0 += align_up((size_t)mp * (1 + 4 + 4 + 4), 16);
                }
            }
        }
        KV_TRY(cudaMalloc(&kc->d_lanes, sizeof(kvl_lane) * (size_t)kc->n_lanes));
        KV_TRY(cudaMemcpyAsync(kc->d_lanes, kc->h_lanes, sizeof(kvl_lane) * (size_t)kc->n_lanes,
                               cudaMemcpyHostToDevice, kc->stream));
        KV_TRY(cudaMalloc(&kc->d_pool, sizeof(kvl_pool)));
        KV_TRY(cudaMalloc(&kc->d_free, sizeof(int32_t) * (size_t)kc->pool_cap));
        KV_TRY(cudaMalloc(&kc->d_page_addr, sizeof(void *) * (size_t)kc->pool_cap));
        kvl_pool hp;
        memset(&hp, 0, sizeof hp);
        hp.free_ids = kc->d_free;
        KV_TRY(cudaMemcpyAsync(kc->d_pool, &hp, sizeof hp, cudaMemcpyHostToDevice, kc->stream));
        /* lists and scratch */
        size_t lst = (size_t)cfg->n_layers * Hq * kc->list_cap;
        KV_TRY(cudaMalloc(&kc->d_list_phys, sizeof(int32_t) * lst));
        KV_TRY(cudaMalloc(&kc->d_list_log, sizeof(int32_t) * lst));
        KV_TRY(cudaMalloc(&kc->d_list_mask, sizeof(uint64_t) * lst));
        KV_TRY(cudaMalloc(&kc->d_cnt, sizeof(int) * (size_t)cfg->n_layers * Hq));
        KV_TRY(cudaMalloc(&kc->d_ntok, sizeof(int) * (size_t)cfg->n_layers * Hq));
        KV_TRY(cudaMemsetAsync(kc->d_cnt, 0, sizeof(int) * (size_t)cfg->n_layers * Hq, kc->stream));
        KV_TRY(cudaMemsetAsync(kc->d_ntok, 0, sizeof(int) * (size_t)cfg->n_layers * Hq, kc->stream));
        KV_TRY(cudaMalloc(&kc->d_score, sizeof(double) * (size_t)Hq * kc->list_cap));
        KV_TRY(cudaMalloc(&kc->d_scratch, sizeof(double) * (size_t)Hkv * 2 * kc->list_cap));
        KV_TRY(cudaMalloc(&kc->d_chosen, sizeof(int) * (size_t)Hkv * kc->list_cap));
        KV_TRY(cudaMalloc(&kc->d_stat_m, sizeof(float) * (size_t)Hq * kc->list_cap));
        KV_TRY(cudaMalloc(&kc->d_stat_l, sizeof(float) * (size_t)Hq * kc->list_cap));
        KV_TRY(cudaMalloc(&kc->d_lse, sizeof(float) * (size_t)Hq));
        /* splits: about two blocks per SM over the rows, at most one page each */
        kc->n_split_max = 1;
        for (int il = 0; il < cfg->n_layers; il++) {
            layer_dev *L = &kc->ld[il];
            int ns = (2 * kc->n_sm + L->rows - 1) / L->rows;
            if (ns > kc->list_cap) ns = kc->list_cap;
            if (ns < 1) ns = 1;
            L->n_split = ns;
            if (ns > kc->n_split_max) kc->n_split_max = ns;
        }
        KV_TRY(cudaMalloc(&kc->d_part_m, sizeof(float) * (size_t)Hq * kc->n_split_max));
        KV_TRY(cudaMalloc(&kc->d_part_l, sizeof(float) * (size_t)Hq * kc->n_split_max));
        KV_TRY(cudaMalloc(&kc->d_part_acc, sizeof(float) * (size_t)Hq * kc->n_split_max * d));
        KV_TRY(cudaStreamSynchronize(kc->stream));
    }
#undef KV_TRY
    /* a first chunk: a few pages per lane */
    st = add_chunk(kc, kc->n_lanes * 4 < kc->pool_cap ? kc->n_lanes * 4 : kc->pool_cap, e);
    if (st) {
        kvd_destroy(kc);
        return st;
    }
    *out = kc;
    return RB_OK;
fail:
    st = rb_fail(e, RB_EINTERNAL, "kv_cuda", "device setup: %s", cudaGetErrorString(err));
    kvd_destroy(kc);
    return st;
}

void kvd_destroy(kvd_cache *kc) {
    if (!kc) return;
    if (kc->stream) cudaStreamSynchronize(kc->stream);
    for (int i = 0; i < kc->n_chunks; i++) cudaFree(kc->chunks[i]);
    free(kc->chunks);
    cudaFree(kc->d_arena0), cudaFree(kc->d_arenaff), cudaFree(kc->d_lanes);
    cudaFree(kc->d_pool), cudaFree(kc->d_free), cudaFree(kc->d_page_addr);
    cudaFree(kc->d_list_phys), cudaFree(kc->d_list_log), cudaFree(kc->d_list_mask);
    cudaFree(kc->d_cnt), cudaFree(kc->d_ntok), cudaFree(kc->d_score), cudaFree(kc->d_scratch);
    cudaFree(kc->d_chosen), cudaFree(kc->d_stat_m), cudaFree(kc->d_stat_l), cudaFree(kc->d_lse);
    cudaFree(kc->d_part_m), cudaFree(kc->d_part_l), cudaFree(kc->d_part_acc);
    free(kc->h_lanes);
    free(kc->ld);
    free(kc->layers);
    free(kc);
}

rb_status kvd_reserve(kvd_cache *kc, int tokens, rb_err *e) {
    if (!kc || tokens < 0) return rb_fail(e, RB_EINPUT, "kv_cuda", "kvd_reserve: bad arguments");
    /* a pool as large as every lane's most pages at once never runs short */
    if (kc->n_pages_total >= kc->pool_cap) return RB_OK;
    int need = tokens * kc->n_lanes;
    if (kc->held_known + kc->pending + need > kc->n_pages_total) {
        kvl_pool pool;
        CU_TRY(cudaMemcpyAsync(&pool, kc->d_pool, sizeof pool, cudaMemcpyDeviceToHost, kc->stream));
        CU_TRY(cudaStreamSynchronize(kc->stream));
        kc->held_known = pool.held;
        kc->pending = 0;
        /* Grow when short, or when fewer than 16 positions' worth would be left (so the next
         * read-back is at least 16 positions away): by half the pool at least, O(log) chunks,
         * never past what every lane can hold at once. */
        int slack = 16 * kc->n_lanes;
        int short_by = kc->held_known + need + slack - kc->n_pages_total;
        int room = kc->pool_cap - kc->n_pages_total;
        if (short_by > 0 && room > 0) {
            int grow = kc->n_pages_total / 2;
            if (grow < short_by) grow = short_by;
            if (grow > room) grow = room;
            rb_status st = add_chunk(kc, grow, e);
            if (st) return st;
        }
        if (kc->n_pages_total < kc->pool_cap && kc->held_known + need > kc->n_pages_total)
            return rb_fail(e, RB_EINTERNAL, "kv_cuda",
                           "the page pool cannot hold %d more positions (%d pages held of %d)",
                           tokens, kc->held_known, kc->n_pages_total);
    }
    kc->pending += need;
    return RB_OK;
}

void kvd_step(kvd_cache *kc, int il, int prefill, const int *pos_dev, const float *q,
              const float *k, const float *v, float *out) {
    RB_CHECK(kc && il >= 0 && il < kc->cfg.n_layers);
    const kvd_config *cfg = &kc->cfg;
    const layer_dev *L = &kc->ld[il];
    int Hq = cfg->n_q_heads, Hkv = cfg->n_kv_heads, d = cfg->head_dim, P = cfg->page_size;
    int G = kc->G, cap = kc->list_cap, f16 = cfg->kv_dtype == ATTN_CUDA_F16;
    cudaStream_t s = kc->stream;
    kvl_lane *lanes = kc->d_lanes + (size_t)il * Hkv;
    size_t lo = (size_t)il * Hq * cap;
    int32_t *lp = kc->d_list_phys + lo, *ll = kc->d_list_log + lo;
    uint64_t *lm = kc->d_list_mask + lo;
    int *cnt = kc->d_cnt + (size_t)il * Hq, *ntok = kc->d_ntok + (size_t)il * Hq;
    void *const *pa = kc->d_page_addr;
    if (f16)
        k_append<__half><<<1, 256, 0, s>>>(lanes, Hkv, kc->d_pool, pos_dev, prefill, k, v, pa, d,
                                           P, L->rows, L->per_head, G, cap, lp, lm, ll, cnt, ntok);
    else
        k_append<float><<<1, 256, 0, s>>>(lanes, Hkv, kc->d_pool, pos_dev, prefill, k, v, pa, d,
                                          P, L->rows, L->per_head, G, cap, lp, lm, ll, cnt, ntok);
    if (L->policy == KVD_QUEST) {
        int nb = (2 * kc->n_sm + L->rows - 1) / L->rows;
        int want = (kc->max_pages + 7) / 8;
        if (nb > want) nb = want;
        if (nb < 1) nb = 1;
        dim3 grid(L->rows, nb);
        if (f16)
            k_quest_bounds<__half><<<grid, 256, 0, s>>>(lanes, L->per_head, G, pos_dev, prefill, q,
                                                        pa, cap, kc->d_score);
        else
            k_quest_bounds<float><<<grid, 256, 0, s>>>(lanes, L->per_head, G, pos_dev, prefill, q,
                                                       pa, cap, kc->d_score);
        k_quest_topk<<<L->rows, 1024, 0, s>>>(lanes, L->per_head, G, pos_dev, prefill, cap,
                                              kc->d_score, lp, lm, ll, cnt, ntok);
    }
    int stats = L->policy == KVD_RAAS && (kc->layers[il].raas_exact_score || kc->layers[il].raas_threshold);
    float *sm = stats ? kc->d_stat_m : nullptr, *sl = stats ? kc->d_stat_l : nullptr;
    dim3 grid(L->rows, L->n_split);
    int rh = L->row_heads;
    float scale = cfg->attn_scale;
#define KV_ATTN(D, GM)                                                                          \
    do {                                                                                       \
        if (f16)                                                                               \
            k_attn<D, GM, __half><<<grid, ATT_WARPS * 32, 0, s>>>(                             \
                lp, lm, cnt, cap, rh, P, pa, q, scale, L->n_split, kc->d_part_m,               \
                kc->d_part_l, kc->d_part_acc, sm, sl);                                         \
        else                                                                                   \
            k_attn<D, GM, float><<<grid, ATT_WARPS * 32, 0, s>>>(                              \
                lp, lm, cnt, cap, rh, P, pa, q, scale, L->n_split, kc->d_part_m,               \
                kc->d_part_l, kc->d_part_acc, sm, sl);                                         \
    } while (0)
#define KV_ATTN_G(D)                                                                           \
    do {                                                                                       \
        if (rh == 1) KV_ATTN(D, 1);                                                            \
        else if (rh == 2) KV_ATTN(D, 2);                                                       \
        else if (rh <= 4) KV_ATTN(D, 4);                                                       \
        else KV_ATTN(D, 8);                                                                    \
    } while (0)
    if (d == 64) KV_ATTN_G(64);
    else if (d == 128) KV_ATTN_G(128);
    else KV_ATTN_G(256);
#undef KV_ATTN_G
#undef KV_ATTN
    /* k_attn's pages per split: a page per warp with statistics, else a page per block */
    k_combine<<<dim3(Hq, d / 32), CMB_WARPS * 32, 0, s>>>(d, L->n_split, sm ? ATT_WARPS : 1, cnt,
                                                          L->per_head, G,
                                                          kc->d_part_m, kc->d_part_l,
                                                          kc->d_part_acc, out, kc->d_lse);
    if (L->policy == KVD_RAAS) {
        if (f16)
            k_raas_observe<__half><<<Hkv, OBS_THREADS, 0, s>>>(lanes, G, pos_dev, prefill, q, kc->d_lse,
                                                       kc->d_stat_m, kc->d_stat_l, ll, cnt, ntok,
                                                       cap, pa, kc->d_scratch, kc->d_chosen);
        else
            k_raas_observe<float><<<Hkv, OBS_THREADS, 0, s>>>(lanes, G, pos_dev, prefill, q, kc->d_lse,
                                                      kc->d_stat_m, kc->d_stat_l, ll, cnt, ntok,
                                                      cap, pa, kc->d_scratch, kc->d_chosen);
    }
}

static const char *lane_err_name(int code) {
    switch (code) {
    case KVL_E_POOL_EMPTY: return "the page pool ran out of pages (kvd_reserve not called)";
    case KVL_E_ORDER: return "a position out of order (not the last + 1)";
    case KVL_E_REFILL: return "a store into an evicted page";
    case KVL_E_RANGE: return "a position at or past max_tokens";
    case KVL_E_PROMPT: return "a prompt token after the first decode step";
    default: return "unknown error";
    }
}

rb_status kvd_sync(kvd_cache *kc, rb_err *e) {
    CU_TRY(cudaStreamSynchronize(kc->stream));
    CU_TRY(cudaGetLastError());
    kvl_pool pool;
    CU_TRY(cudaMemcpy(&pool, kc->d_pool, sizeof pool, cudaMemcpyDeviceToHost));
    if (pool.err)
        return rb_fail(e, RB_EINTERNAL, "kv_cuda", "pool: %s", lane_err_name(pool.err));
    kvl_lane *ln = (kvl_lane *)rb_malloc(sizeof(kvl_lane) * (size_t)kc->n_lanes);
    cudaError_t err = cudaMemcpy(ln, kc->d_lanes, sizeof(kvl_lane) * (size_t)kc->n_lanes,
                                 cudaMemcpyDeviceToHost);
    rb_status st = RB_OK;
    if (err != cudaSuccess)
        st = rb_fail(e, RB_EINTERNAL, "kv_cuda", "reading the lanes: %s", cudaGetErrorString(err));
    for (int i = 0; !st && i < kc->n_lanes; i++)
        if (ln[i].err)
            st = rb_fail(e, RB_EINTERNAL, "kv_cuda", "layer %d KV head %d: %s",
                         i / kc->cfg.n_kv_heads, i % kc->cfg.n_kv_heads, lane_err_name(ln[i].err));
    free(ln);
    return st;
}

rb_status kvd_stats_get(kvd_cache *kc, kvd_stats *out, rb_err *e) {
    memset(out, 0, sizeof *out);
    rb_status st = kvd_sync(kc, e);
    if (st) return st;
    const kvd_config *cfg = &kc->cfg;
    kvl_pool pool;
    CU_TRY(cudaMemcpy(&pool, kc->d_pool, sizeof pool, cudaMemcpyDeviceToHost));
    int64_t page_kv = (int64_t)cfg->page_size * cfg->head_dim * 2 * kc->elem;
    out->kv_bytes = (int64_t)pool.held * page_kv;
    out->peak_kv_bytes = (int64_t)pool.peak * page_kv;
    out->reserved_bytes = (int64_t)kc->n_pages_total * (int64_t)kc->page_bytes;
    kvl_lane *ln = (kvl_lane *)rb_malloc(sizeof(kvl_lane) * (size_t)kc->n_lanes);
    int Hq = cfg->n_q_heads, n = cfg->n_layers * Hq;
    int *ntok = (int *)rb_malloc(sizeof(int) * (size_t)n);
    cudaError_t err = cudaMemcpy(ln, kc->d_lanes, sizeof(kvl_lane) * (size_t)kc->n_lanes,
                                 cudaMemcpyDeviceToHost);
    if (err == cudaSuccess)
        err = cudaMemcpy(ntok, kc->d_ntok, sizeof(int) * (size_t)n, cudaMemcpyDeviceToHost);
    if (err != cudaSuccess) {
        free(ln), free(ntok);
        return rb_fail(e, RB_EINTERNAL, "kv_cuda", "reading stats: %s", cudaGetErrorString(err));
    }
    /* meta bytes as the CPU policies count theirs (policy_util.c, raas.c) */
    int64_t meta = 0, d = cfg->head_dim;
    for (int i = 0; i < kc->n_lanes; i++) {
        const kvl_lane *l = &ln[i];
        if (l->policy == KVL_WINDOW) {
            meta += (int64_t)(l->last >= 0 ? l->last - l->lo + 1 : 0) * 8;
            continue;
        }
        meta += (int64_t)l->n_held * 2 * 4;
        if (l->policy == KVL_QUEST || (l->policy == KVL_RAAS && !l->raas_exact))
            meta += (int64_t)l->n_held * d * 2 * 4;
        if (l->policy == KVL_RAAS) meta += (int64_t)l->n_held * 5;
    }
    out->meta_bytes = meta;
    double att = 0;
    for (int il = 0; il < cfg->n_layers; il++)
        for (int h = 0; h < Hq; h++) {
            int row = kc->ld[il].per_head ? h : h / kc->G;
            att += ntok[il * Hq + row];
        }
    out->attended = att / n;
    free(ln), free(ntok);
    return RB_OK;
}

int64_t kvd_layer_kv_bytes(kvd_cache *kc, int il) {
    const kvd_config *cfg = &kc->cfg;
    RB_CHECK(il >= 0 && il < cfg->n_layers);
    int Hkv = cfg->n_kv_heads;
    kvl_lane *ln = (kvl_lane *)rb_malloc(sizeof(kvl_lane) * (size_t)Hkv);
    RB_CHECK(cudaStreamSynchronize(kc->stream) == cudaSuccess);
    RB_CHECK(cudaMemcpy(ln, kc->d_lanes + (size_t)il * Hkv, sizeof(kvl_lane) * (size_t)Hkv,
                        cudaMemcpyDeviceToHost) == cudaSuccess);
    int64_t held = 0;
    for (int g = 0; g < Hkv; g++) held += ln[g].n_held;
    free(ln);
    return held * cfg->page_size * cfg->head_dim * 2 * kc->elem;
}

int kvd_selection(kvd_cache *kc, int il, int h, int32_t *pos, int cap) {
    const kvd_config *cfg = &kc->cfg;
    RB_CHECK(il >= 0 && il < cfg->n_layers && h >= 0 && h < cfg->n_q_heads);
    const layer_dev *L = &kc->ld[il];
    int row = L->per_head ? h : h / kc->G, g = h / kc->G, P = cfg->page_size;
    RB_CHECK(cudaStreamSynchronize(kc->stream) == cudaSuccess);
    kvl_lane ln;
    RB_CHECK(cudaMemcpy(&ln, kc->d_lanes + (size_t)il * cfg->n_kv_heads + g, sizeof ln,
                        cudaMemcpyDeviceToHost) == cudaSuccess);
    int n_out = 0, last = ln.last;
    if (ln.policy == KVL_WINDOW) {
        for (int t = ln.lo; t <= last; t++, n_out++)
            if (n_out < cap) pos[n_out] = t;
        return n_out;
    }
    int n = 0;
    size_t at = ((size_t)il * cfg->n_q_heads + row) * kc->list_cap;
    RB_CHECK(cudaMemcpy(&n, kc->d_cnt + (size_t)il * cfg->n_q_heads + row, sizeof n,
                        cudaMemcpyDeviceToHost) == cudaSuccess);
    int32_t *lg = (int32_t *)rb_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    RB_CHECK(cudaMemcpy(lg, kc->d_list_log + at, sizeof(int32_t) * (size_t)n,
                        cudaMemcpyDeviceToHost) == cudaSuccess);
    for (int i = 0; i < n; i++)
        for (int t = lg[i] * P; t < (lg[i] + 1) * P && t <= last; t++, n_out++)
            if (n_out < cap) pos[n_out] = t;
    free(lg);
    return n_out;
}

} // extern "C"
