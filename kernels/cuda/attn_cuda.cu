/* attn_cuda.cu: GPU decode-step attention (see attn_cuda.h): split-K dense and gather
 * attention over float32 or half K/V, a combine kernel, and the device plumbing (memory,
 * random fill, timing events) the test and the benchmark need without CUDA headers.
 *
 * Design. One block handles one KV head and a chunk of its tokens, for all G query heads
 * of that head, so each K/V row is read from memory once per step. A row of d elements is
 * split over d/8 lanes, 8 elements each (two 16-byte loads for float32, one for half); a
 * warp thus covers 32/(d/8) tokens at once and each lane group keeps its own online-softmax
 * state (max, sum, acc) in registers, in log2 units (q is prescaled by scale*log2(e) so
 * every exponential is one ex2). Each warp issues the loads of U token rows before using
 * any, for memory-level parallelism. The block merges its lane groups through shared memory
 * and writes one partial per (KV head, split, query head); combine_kernel merges the splits. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda_rb.cuh"
#include "cuda/attn_cuda.h"

namespace {

constexpr int kThreads = 128; /* 4 warps per split block */
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

/* 8 consecutive K or V elements of one lane, loaded raw (so loads can be issued early) and
 * widened to float only when used. */
template <typename T> struct vec8;
template <> struct vec8<float> {
    float4 a, b;
    __device__ static vec8 load(const float *p) {
        vec8 r;
        r.a = __ldg(reinterpret_cast<const float4 *>(p));
        r.b = __ldg(reinterpret_cast<const float4 *>(p) + 1);
        return r;
    }
    __device__ static vec8 zero() { return {make_float4(0, 0, 0, 0), make_float4(0, 0, 0, 0)}; }
    __device__ void widen(float (&x)[8]) const {
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w;
        x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    }
};
template <> struct vec8<__half> {
    uint4 r;
    __device__ static vec8 load(const __half *p) { return {__ldg(reinterpret_cast<const uint4 *>(p))}; }
    __device__ static vec8 zero() { return {make_uint4(0, 0, 0, 0)}; }
    __device__ void widen(float (&x)[8]) const {
        const unsigned w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            __half2 h;
            memcpy(&h, &w[i], 4);
            float2 f = __half22float2(h);
            x[2 * i] = f.x, x[2 * i + 1] = f.y;
        }
    }
};

/* Geometry shared by the host (sizing, error bounds) and the kernel. */
template <typename T, int D> struct geom {
    static constexpr int lanes = D / 8;                    /* lanes per token row */
    static constexpr int tokens_per_warp = 32 / lanes;
    static constexpr int groups = (kThreads / 32) * tokens_per_warp; /* lane groups per block */
    static constexpr int unroll = sizeof(T) == 2 ? 4 : 2; /* rows in flight per lane group:
                                                              32 bytes of K and of V per lane */
};

/* Partials of split `split` of KV head h, query head g of its group:
 *   part_acc [Hkv, n_splits, G, D]  unnormalised sum_j 2^(s_j - m) v_j
 *   part_ml  [Hkv, n_splits, G, 2]  (m, sum_j 2^(s_j - m)), m = -inf when no key was seen */
template <typename T, int D, int G, bool PREFETCH>
__global__ void __launch_bounds__(kThreads)
split_kernel(const float *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v, int n,
             int n_kv, const int *__restrict__ idx, int L, int chunk, float q_scale,
             float *__restrict__ part_acc, float *__restrict__ part_ml, int *__restrict__ bad,
             int heads_inner) {
    using gm = geom<T, D>;
    constexpr int LANES = gm::lanes, TPW = gm::tokens_per_warp, GROUPS = gm::groups, U = gm::unroll;
    /* heads_inner: blockIdx.x is the KV head, so the blocks the scheduler starts together read
     * all heads of the same tokens, i.e. whole contiguous token rows of K and V; otherwise
     * blockIdx.x is the split and concurrent blocks read one head's slice of each row. */
    const int h = heads_inner ? blockIdx.x : blockIdx.y, split = heads_inner ? blockIdx.y : blockIdx.x;
    const int n_splits = heads_inner ? gridDim.y : gridDim.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int sub = lane % LANES, grp = warp * TPW + lane / LANES;
    const int len = idx ? L : n;
    const int begin = split * chunk, end = min(len, begin + chunk);

    float qr[G][8]; /* this lane's 8 dims of each query head, in log2 units */
#pragma unroll
    for (int g = 0; g < G; g++) {
        const float4 *qp = reinterpret_cast<const float4 *>(q + (size_t)(h * G + g) * D + sub * 8);
        float4 a = qp[0], b = qp[1];
        qr[g][0] = a.x * q_scale, qr[g][1] = a.y * q_scale, qr[g][2] = a.z * q_scale;
        qr[g][3] = a.w * q_scale, qr[g][4] = b.x * q_scale, qr[g][5] = b.y * q_scale;
        qr[g][6] = b.z * q_scale, qr[g][7] = b.w * q_scale;
    }
    float m[G], l[G], acc[G][8];
#pragma unroll
    for (int g = 0; g < G; g++) {
        m[g] = -INFINITY, l[g] = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) acc[g][i] = 0;
    }
    const size_t row = (size_t)n_kv * D;
    const T *kh = k + (size_t)h * D + sub * 8;
    const T *vh = v + (size_t)h * D + sub * 8;
    const int *ih = idx ? idx + (size_t)h * L : nullptr;

    /* Rows p = wbase + lane/LANES + u*GROUPS, u < U, of one round; a row past `end` or an
     * out-of-range index is not loaded (ok = false, zeros). */
    auto load_round = [&](int wbase, vec8<T>(&kr)[U], vec8<T>(&vr)[U], bool(&ok)[U]) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            int p = wbase + lane / LANES + u * GROUPS, t = p;
            ok[u] = p < end;
            if (ok[u] && ih) {
                t = ih[p];
                if ((unsigned)t >= (unsigned)n) ok[u] = false, *bad = 1;
            }
            kr[u] = ok[u] ? vec8<T>::load(kh + (size_t)t * row) : vec8<T>::zero();
            vr[u] = ok[u] ? vec8<T>::load(vh + (size_t)t * row) : vec8<T>::zero();
        }
    };
    constexpr int STEP = GROUPS * U;
    vec8<T> kr[U], vr[U];
    bool ok[U];
    if (PREFETCH) load_round(begin + warp * TPW, kr, vr, ok);
    /* The trip count depends on the warp only, never the lane: the shuffles below need
     * every lane of the warp. */
    for (int wbase = begin + warp * TPW; wbase < end; wbase += STEP) {
        /* With PREFETCH the next round's loads are in flight while this round computes;
         * without, a warp waits out the memory latency every round. */
        vec8<T> kn[U], vn[U];
        bool okn[U];
        if (PREFETCH) load_round(wbase + STEP, kn, vn, okn);
        else load_round(wbase, kr, vr, ok);
        float s[U][G];
#pragma unroll
        for (int u = 0; u < U; u++) {
            float kf[8];
            kr[u].widen(kf);
#pragma unroll
            for (int g = 0; g < G; g++) {
                float d0 = 0;
#pragma unroll
                for (int i = 0; i < 8; i++) d0 = fmaf(qr[g][i], kf[i], d0);
                s[u][g] = d0;
            }
        }
#pragma unroll
        for (int off = LANES / 2; off > 0; off >>= 1)
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int g = 0; g < G; g++) s[u][g] += __shfl_xor_sync(0xffffffffu, s[u][g], off);
        float vf[U][8];
#pragma unroll
        for (int u = 0; u < U; u++) vr[u].widen(vf[u]);
#pragma unroll
        for (int g = 0; g < G; g++) {
            float mx = -INFINITY;
#pragma unroll
            for (int u = 0; u < U; u++)
                if (ok[u]) mx = fmaxf(mx, s[u][g]);
            if (mx == -INFINITY) continue; /* no key this round for this lane group */
            float m_new = fmaxf(m[g], mx), alpha = exp2f(m[g] - m_new);
            l[g] *= alpha;
#pragma unroll
            for (int i = 0; i < 8; i++) acc[g][i] *= alpha;
#pragma unroll
            for (int u = 0; u < U; u++) {
                float p = ok[u] ? exp2f(s[u][g] - m_new) : 0.f;
                l[g] += p;
#pragma unroll
                for (int i = 0; i < 8; i++) acc[g][i] = fmaf(p, vf[u][i], acc[g][i]);
            }
            m[g] = m_new;
        }
        if (PREFETCH) {
#pragma unroll
            for (int u = 0; u < U; u++) kr[u] = kn[u], vr[u] = vn[u], ok[u] = okn[u];
        }
    }

    /* Merge the block's lane groups. GROUPS * D = 1024 for every D, so this is G * 4 KiB. */
    __shared__ float sm_ml[GROUPS][G][2];
    __shared__ float sm_acc[GROUPS][G][D];
#pragma unroll
    for (int g = 0; g < G; g++) {
        if (sub == 0) sm_ml[grp][g][0] = m[g], sm_ml[grp][g][1] = l[g];
#pragma unroll
        for (int i = 0; i < 8; i++) sm_acc[grp][g][sub * 8 + i] = acc[g][i];
    }
    __syncthreads();
    for (int o = threadIdx.x; o < G * D; o += kThreads) {
        int g = o / D, c = o % D;
        float M = -INFINITY;
        for (int r = 0; r < GROUPS; r++) M = fmaxf(M, sm_ml[r][g][0]);
        float sl = 0, sa = 0;
        for (int r = 0; r < GROUPS; r++) {
            float mr = sm_ml[r][g][0];
            if (mr == -INFINITY) continue;
            float w = exp2f(mr - M);
            sl = fmaf(w, sm_ml[r][g][1], sl);
            sa = fmaf(w, sm_acc[r][g][c], sa);
        }
        size_t slot = ((size_t)h * n_splits + split) * G + g;
        part_acc[slot * D + c] = sa;
        if (c == 0) part_ml[slot * 2] = M, part_ml[slot * 2 + 1] = sl;
    }
}

/* Block-wide max or sum of one value per thread (all threads get the result). */
template <bool MAX> __device__ float block_reduce(float x, float *red /* [32] */) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        float y = __shfl_xor_sync(0xffffffffu, x, off);
        x = MAX ? fmaxf(x, y) : x + y;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 0) red[warp] = x;
    __syncthreads();
    x = red[0];
    for (int w = 1; w < n_warps; w++) x = MAX ? fmaxf(x, red[w]) : x + red[w];
    return x;
}

/* One block of kCombineThreads per query head. The split count can reach thousands, so the
 * splits' (m, l) are read in parallel into shared memory, and each output dimension is summed
 * by kCombineThreads / D threads with four loads in flight each: a serial walk over the
 * splits would pay one memory latency per split. */
constexpr int kCombineThreads = 256;
constexpr int kMaxSplits = 2048; /* plan_make keeps n_splits <= this (16 KiB of shared memory) */
__global__ void __launch_bounds__(kCombineThreads)
combine_kernel(const float *__restrict__ part_acc, const float *__restrict__ part_ml, int n_splits,
               int G, int D, float *__restrict__ o, float *__restrict__ lse) {
    __shared__ float sm_w[kMaxSplits], sm_l[kMaxSplits], red[32], sm_acc[kCombineThreads];
    const int h = blockIdx.x, kv = h / G, g = h % G, tid = threadIdx.x;
    const size_t slot0 = (size_t)kv * n_splits * G + g; /* slot of split s: slot0 + s * G */
    float mx = -INFINITY;
    for (int s = tid; s < n_splits; s += kCombineThreads) {
        float ms = part_ml[(slot0 + (size_t)s * G) * 2];
        sm_w[s] = ms, sm_l[s] = part_ml[(slot0 + (size_t)s * G) * 2 + 1];
        mx = fmaxf(mx, ms);
    }
    const float M = block_reduce<true>(mx, red);
    float sl = 0;
    for (int s = tid; s < n_splits; s += kCombineThreads) {
        float ms = sm_w[s], w = ms == -INFINITY ? 0.f : exp2f(ms - M);
        sm_w[s] = w;
        sl = fmaf(w, sm_l[s], sl);
    }
    const float L = block_reduce<false>(sl, red); /* its barriers also publish sm_w */
    const int slices = kCombineThreads / D, c = tid % D, slice = tid / D;
    float a[4] = {0, 0, 0, 0};
    if (slice < slices)
        for (int s = slice; s < n_splits; s += 4 * slices) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int si = s + i * slices;
                if (si < n_splits) a[i] = fmaf(sm_w[si], part_acc[(slot0 + (size_t)si * G) * D + c], a[i]);
            }
        }
    sm_acc[tid] = (a[0] + a[1]) + (a[2] + a[3]);
    __syncthreads();
    if (tid < D) {
        float sa = 0;
        for (int r = 0; r < slices; r++) sa += sm_acc[r * D + tid];
        o[(size_t)h * D + tid] = L > 0 ? sa / L : 0.f;
        if (tid == 0) lse[h] = L > 0 ? M * kLn2 + logf(L) : -INFINITY;
    }
}

__device__ inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__global__ void fill_kernel(void *dev, size_t count, int dtype, uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = (float)(mix64(seed + 0x9e3779b97f4a7c15ull * (i + 1)) >> 40) * 0x1p-23f - 1.f;
        if (dtype == ATTN_CUDA_F16) static_cast<__half *>(dev)[i] = __float2half(x);
        else if (dtype == ATTN_CUDA_BF16) static_cast<__nv_bfloat16 *>(dev)[i] = __float2bfloat16(x);
        else static_cast<float *>(dev)[i] = x;
    }
}

__global__ void spin_kernel(uint64_t ns) {
    uint64_t t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); while (t - t0 < ns);
}

/* The backend's plain kernels (attn_cuda_scores, _weighted, _col_mass): one thread per
 * output, sums in order, no tiling. They serve the outputs the split kernels do not give
 * (logits, probabilities, column mass) and are checked against the references, not tuned. */
__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__half x) { return __half2float(x); }

template <typename T> __device__ float dot_row(const float *q, const T *k, int d) {
    float a = 0;
    for (int c = 0; c < d; c++) a = fmaf(q[c], to_float(k[c]), a);
    return a;
}

/* Thread (j, h): query head h's score of its j-th key. */
template <typename T>
__global__ void scores_kernel(const float *__restrict__ q, const T *__restrict__ k, int n, int n_kv,
                              int G, int d, const int *__restrict__ idx, int L, float scale,
                              const float *__restrict__ lse, float *__restrict__ p, int ldp,
                              int *__restrict__ bad) {
    const int h = blockIdx.y, kv = h / G, len = idx ? L : n;
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= len) return;
    const int t = idx ? idx[(size_t)kv * L + j] : j;
    float *out = p + (size_t)h * ldp + j;
    if ((unsigned)t >= (unsigned)n) {
        *bad = 1, *out = 0.f;
        return;
    }
    float x = scale * dot_row(q + (size_t)h * d, k + ((size_t)t * n_kv + kv) * d, d);
    *out = lse ? expf(x - lse[h]) : x;
}

/* Block r, thread column c (strided by the block): o[r, c]. */
__global__ void weighted_kernel(const float *__restrict__ p, int ldp, const float *__restrict__ v,
                                int n, int d, float *__restrict__ o) {
    const int r = blockIdx.x;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        float a = 0;
        for (int j = 0; j < n; j++) a = fmaf(p[(size_t)r * ldp + j], v[(size_t)j * d + c], a);
        o[(size_t)r * d + c] = a;
    }
}

/* Thread (j, kv): the mass key j of KV head kv receives from every later query row. */
template <typename T>
__global__ void col_mass_kernel(const float *__restrict__ q, const T *__restrict__ k, int n,
                                int n_kv, int G, int d, float scale, const float *__restrict__ lse,
                                float *__restrict__ col) {
    const int kv = blockIdx.y, Hq = n_kv * G;
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    const T *kj = k + ((size_t)j * n_kv + kv) * d;
    double acc = 0;
    for (int i = j; i < n; i++)
        for (int g = 0; g < G; g++) {
            const size_t row = (size_t)i * Hq + kv * G + g;
            acc += expf(scale * dot_row(q + row * d, kj, d) - lse[row]);
        }
    col[(size_t)kv * n + j] = (float)acc;
}

} // namespace

struct attn_cuda {
    int device, n_sm;
    attn_cuda_tuning tuning;
    size_t l2_bytes;
    char name[256];
    cudaStream_t stream;
    float *work; /* split partials; grown on demand */
    size_t work_bytes;
    int *bad; /* device flag: a gather met an out-of-range index */
    cudaEvent_t marks[ATTN_CUDA_MAX_MARKS];
};

extern "C" void *attn_cuda_stream(const attn_cuda *c) { return c ? (void *)c->stream : NULL; }

#define CU_TRY(call) CU_TRY_AS("cuda", call)

namespace {

struct plan {
    int G, n_splits, chunk, groups, max_run;
};

bool shape_ok(const attn_cuda_shape *s) {
    if (!s || s->n_q_heads < 1 || s->n_kv_heads < 1 || s->n_q_heads % s->n_kv_heads) return false;
    if (s->n_q_heads > 65535) return false; /* a grid dimension */
    int G = s->n_q_heads / s->n_kv_heads;
    return (G == 1 || G == 2 || G == 4 || G == 8) &&
           (s->head_dim == 64 || s->head_dim == 128 || s->head_dim == 256) && isfinite(s->scale) &&
           (s->kv_dtype == ATTN_CUDA_F32 || s->kv_dtype == ATTN_CUDA_F16);
}

int groups_of(const attn_cuda_shape *s) {
    /* geom<T, D>::groups = 4 warps * 32 / (D / 8), independent of T */
    return (kThreads / 32) * (32 / (s->head_dim / 8));
}
int unroll_of(const attn_cuda_shape *s) { return s->kv_dtype == ATTN_CUDA_F16 ? 4 : 2; }

/* Splits per KV head: enough blocks to fill the chip, but at least one full round of loads
 * (groups * unroll rows) per block so short sequences are not spread thin. */
plan plan_make(const attn_cuda *c, const attn_cuda_shape *s, int len) {
    plan p;
    p.G = s->n_q_heads / s->n_kv_heads;
    p.groups = groups_of(s);
    int target = c->n_sm * c->tuning.blocks_per_sm;
    int n_splits = (target + s->n_kv_heads - 1) / s->n_kv_heads;
    int min_chunk = p.groups * unroll_of(s);
    long chunk = ((long)len + n_splits - 1) / n_splits;
    if (chunk < min_chunk) chunk = min_chunk;
    if (chunk < ((long)len + kMaxSplits - 1) / kMaxSplits) chunk = ((long)len + kMaxSplits - 1) / kMaxSplits;
    p.chunk = (int)chunk;
    p.n_splits = (int)(((long)len + chunk - 1) / chunk);
    p.max_run = (p.chunk + p.groups - 1) / p.groups;
    return p;
}

template <typename T, int D, int G>
void launch_split(const attn_cuda *c, const plan &p, const attn_cuda_shape *s, const float *q,
                  const void *k, const void *v, int n, const int32_t *idx, int L) {
    const attn_cuda_tuning &t = c->tuning;
    dim3 grid = t.heads_inner ? dim3(s->n_kv_heads, p.n_splits) : dim3(p.n_splits, s->n_kv_heads);
    bool prefetch = t.prefetch < 0 ? s->kv_dtype == ATTN_CUDA_F16 : t.prefetch != 0;
    float *part_acc = c->work;
    float *part_ml = c->work + (size_t)s->n_q_heads * p.n_splits * D;
    auto kernel = prefetch ? split_kernel<T, D, G, true> : split_kernel<T, D, G, false>;
    kernel<<<grid, kThreads, 0, c->stream>>>(q, static_cast<const T *>(k), static_cast<const T *>(v), n,
                                              s->n_kv_heads, idx, L, p.chunk, s->scale * kLog2e,
                                              part_acc, part_ml, c->bad, t.heads_inner);
}

template <typename T, int D>
void launch_split_g(const attn_cuda *c, const plan &p, const attn_cuda_shape *s, const float *q,
                    const void *k, const void *v, int n, const int32_t *idx, int L) {
    switch (p.G) {
    case 1: launch_split<T, D, 1>(c, p, s, q, k, v, n, idx, L); break;
    case 2: launch_split<T, D, 2>(c, p, s, q, k, v, n, idx, L); break;
    case 4: launch_split<T, D, 4>(c, p, s, q, k, v, n, idx, L); break;
    default: launch_split<T, D, 8>(c, p, s, q, k, v, n, idx, L); break;
    }
}

template <typename T>
void launch_split_d(const attn_cuda *c, const plan &p, const attn_cuda_shape *s, const float *q,
                    const void *k, const void *v, int n, const int32_t *idx, int L) {
    switch (s->head_dim) {
    case 64: launch_split_g<T, 64>(c, p, s, q, k, v, n, idx, L); break;
    case 128: launch_split_g<T, 128>(c, p, s, q, k, v, n, idx, L); break;
    default: launch_split_g<T, 256>(c, p, s, q, k, v, n, idx, L); break;
    }
}

bool aligned(const void *p, size_t a) { return p && (uintptr_t)p % a == 0; }

rb_status run_attention(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                        const void *v, int n, const int32_t *idx, int L, float *o, float *lse,
                        rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "attn_cuda", "no context");
    if (!shape_ok(s))
        return rb_fail(e, RB_EINPUT, "attn_cuda",
                       "unsupported shape (need Hq %% Hkv == 0 with Hq/Hkv in 1,2,4,8, head_dim "
                       "64, 128 or 256, finite scale, a known K/V dtype)");
    if (n < 1) return rb_fail(e, RB_EINPUT, "attn_cuda", "n = %d tokens (need >= 1)", n);
    if (idx && L < 1) return rb_fail(e, RB_EINPUT, "attn_cuda", "L = %d indices (need >= 1)", L);
    if (!aligned(q, 16) || !aligned(k, 16) || !aligned(v, 16) || !aligned(o, 4) ||
        !aligned(lse, 4) || (L >= 1 && idx && !aligned(idx, 4)))
        return rb_fail(e, RB_EINPUT, "attn_cuda", "NULL or misaligned pointer (q, k, v need 16 bytes)");
    plan p = plan_make(c, s, idx ? L : n);
    size_t need = sizeof(float) * (size_t)s->n_q_heads * p.n_splits * (s->head_dim + 2);
    if (need > c->work_bytes) {
        CU_TRY(cudaStreamSynchronize(c->stream));
        CU_TRY(cudaFree(c->work));
        c->work = nullptr, c->work_bytes = 0;
        CU_TRY(cudaMalloc(&c->work, need));
        c->work_bytes = need;
    }
    if (s->kv_dtype == ATTN_CUDA_F16) launch_split_d<__half>(c, p, s, q, k, v, n, idx, L);
    else launch_split_d<float>(c, p, s, q, k, v, n, idx, L);
    CU_TRY(cudaGetLastError());
    const float *part_acc = c->work;
    const float *part_ml = c->work + (size_t)s->n_q_heads * p.n_splits * s->head_dim;
    combine_kernel<<<s->n_q_heads, kCombineThreads, 0, c->stream>>>(part_acc, part_ml, p.n_splits, p.G,
                                                                 s->head_dim, o, lse);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

} // namespace

extern "C" {

int attn_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return 0;
    }
    return n;
}

rb_status attn_cuda_create(attn_cuda **out, rb_err *e) {
    *out = nullptr;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0)
        return rb_fail(e, RB_EINTERNAL, "attn_cuda", "no usable GPU (cudaGetDeviceCount: %s, %d devices)",
                       cudaGetErrorString(err), n);
    attn_cuda *c = static_cast<attn_cuda *>(rb_calloc(1, sizeof *c));
    c->tuning = attn_cuda_tuning_default();
    cudaDeviceProp prop;
    rb_status st = RB_OK;
    do {
        if ((err = cudaSetDevice(0)) != cudaSuccess) break;
        if ((err = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) break;
        c->n_sm = prop.multiProcessorCount;
        c->l2_bytes = (size_t)prop.l2CacheSize;
        snprintf(c->name, sizeof c->name, "%s", prop.name);
        if ((err = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) break;
        if ((err = cudaMalloc(&c->bad, sizeof(int))) != cudaSuccess) break;
        if ((err = cudaMemset(c->bad, 0, sizeof(int))) != cudaSuccess) break;
        for (int i = 0; i < ATTN_CUDA_MAX_MARKS && err == cudaSuccess; i++)
            err = cudaEventCreate(&c->marks[i]);
    } while (0);
    if (err != cudaSuccess) {
        st = rb_fail(e, RB_EINTERNAL, "attn_cuda", "device setup: %s", cudaGetErrorString(err));
        attn_cuda_destroy(c);
        return st;
    }
    *out = c;
    return RB_OK;
}

void attn_cuda_destroy(attn_cuda *c) {
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (int i = 0; i < ATTN_CUDA_MAX_MARKS; i++)
        if (c->marks[i]) cudaEventDestroy(c->marks[i]);
    cudaFree(c->work);
    cudaFree(c->bad);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

void attn_cuda_describe(const attn_cuda *c, char *buf, size_t buf_size) {
    if (!buf || !buf_size) return;
    if (!c) snprintf(buf, buf_size, "no device");
    else snprintf(buf, buf_size, "%s, %d SMs, L2 %zu MiB", c->name, c->n_sm, c->l2_bytes >> 20);
}

rb_status attn_cuda_alloc(attn_cuda *c, size_t bytes, void **dev, rb_err *e) {
    (void)c;
    *dev = nullptr;
    CU_TRY(cudaMalloc(dev, bytes ? bytes : 1));
    return RB_OK;
}

void attn_cuda_free(attn_cuda *c, void *dev) {
    if (c && c->stream) cudaStreamSynchronize(c->stream);
    cudaFree(dev);
}

/* On the context's stream, then waited for: a plain cudaMemcpy runs on the legacy default
 * stream, which a non-blocking stream's kernels do not wait for, and from pageable memory it
 * may return before its DMA has landed. */
rb_status attn_cuda_upload(attn_cuda *c, void *dev, const void *host, size_t bytes, rb_err *e) {
    CU_TRY(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, c->stream));
    CU_TRY(cudaStreamSynchronize(c->stream));
    return RB_OK;
}

rb_status attn_cuda_download(attn_cuda *c, void *host, const void *dev, size_t bytes, rb_err *e) {
    CU_TRY(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, c->stream));
    CU_TRY(cudaStreamSynchronize(c->stream));
    return RB_OK;
}

rb_status attn_cuda_copy(attn_cuda *c, void *dst, const void *src, size_t bytes, rb_err *e) {
    CU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
    return RB_OK;
}

rb_status attn_cuda_fill_random(attn_cuda *c, void *dev, size_t count, attn_cuda_dtype dtype,
                                uint64_t seed, rb_err *e) {
    if (dtype != ATTN_CUDA_F32 && dtype != ATTN_CUDA_F16 && dtype != ATTN_CUDA_BF16)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "unknown dtype %d", (int)dtype);
    if (!count) return RB_OK;
    fill_kernel<<<c->n_sm * 8, 256, 0, c->stream>>>(dev, count, (int)dtype, seed);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status attn_cuda_dense(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                          const void *v, int n, float *o, float *lse, rb_err *e) {
    return run_attention(c, s, q, k, v, n, nullptr, 0, o, lse, e);
}

rb_status attn_cuda_gather(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           const void *v, int n, const int32_t *idx, int L, float *o, float *lse,
                           rb_err *e) {
    if (!idx) return rb_fail(e, RB_EINPUT, "attn_cuda", "gather without indices");
    return run_attention(c, s, q, k, v, n, idx, L, o, lse, e);
}

rb_status attn_cuda_scores(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           int n, const int32_t *idx, int L, const float *lse, float *p, int ldp,
                           rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "attn_cuda", "no context");
    if (!shape_ok(s)) return rb_fail(e, RB_EINPUT, "attn_cuda", "unsupported shape");
    const int len = idx ? L : n;
    if (n < 1 || len < 1 || ldp < len)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "scores: n = %d, %d keys, ldp = %d", n, len, ldp);
    const size_t elt = s->kv_dtype == ATTN_CUDA_F16 ? 2 : 4;
    if (!aligned(q, 4) || !aligned(k, elt) || !aligned(p, 4) || (lse && !aligned(lse, 4)) ||
        (idx && !aligned(idx, 4)))
        return rb_fail(e, RB_EINPUT, "attn_cuda", "scores: NULL or misaligned pointer");
    const int G = s->n_q_heads / s->n_kv_heads;
    dim3 grid((unsigned)((len + 127) / 128), (unsigned)s->n_q_heads);
    if (s->kv_dtype == ATTN_CUDA_F16)
        scores_kernel<__half><<<grid, 128, 0, c->stream>>>(q, static_cast<const __half *>(k), n,
                                                           s->n_kv_heads, G, s->head_dim, idx, L,
                                                           s->scale, lse, p, ldp, c->bad);
    else
        scores_kernel<float><<<grid, 128, 0, c->stream>>>(q, static_cast<const float *>(k), n,
                                                          s->n_kv_heads, G, s->head_dim, idx, L,
                                                          s->scale, lse, p, ldp, c->bad);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status attn_cuda_weighted(attn_cuda *c, const float *p, int n_rows, int ldp, const float *v,
                             int n, int d, float *o, rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "attn_cuda", "no context");
    if (n_rows < 1 || n < 0 || d < 1 || ldp < n)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "weighted: %d rows, n = %d, d = %d, ldp = %d",
                       n_rows, n, d, ldp);
    if (!aligned(o, 4) || (n > 0 && (!aligned(p, 4) || !aligned(v, 4))))
        return rb_fail(e, RB_EINPUT, "attn_cuda", "weighted: NULL or misaligned pointer");
    weighted_kernel<<<n_rows, 256, 0, c->stream>>>(p, ldp, v, n, d, o);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status attn_cuda_col_mass(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                             const void *k, int n, const float *lse, float *col, rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "attn_cuda", "no context");
    if (!shape_ok(s)) return rb_fail(e, RB_EINPUT, "attn_cuda", "unsupported shape");
    if (n < 1) return rb_fail(e, RB_EINPUT, "attn_cuda", "col_mass: n = %d (need >= 1)", n);
    const size_t elt = s->kv_dtype == ATTN_CUDA_F16 ? 2 : 4;
    if (!aligned(q, 4) || !aligned(k, elt) || !aligned(lse, 4) || !aligned(col, 4))
        return rb_fail(e, RB_EINPUT, "attn_cuda", "col_mass: NULL or misaligned pointer");
    const int G = s->n_q_heads / s->n_kv_heads;
    dim3 grid((unsigned)((n + 127) / 128), (unsigned)s->n_kv_heads);
    if (s->kv_dtype == ATTN_CUDA_F16)
        col_mass_kernel<__half><<<grid, 128, 0, c->stream>>>(q, static_cast<const __half *>(k), n,
                                                             s->n_kv_heads, G, s->head_dim,
                                                             s->scale, lse, col);
    else
        col_mass_kernel<float><<<grid, 128, 0, c->stream>>>(q, static_cast<const float *>(k), n,
                                                            s->n_kv_heads, G, s->head_dim,
                                                            s->scale, lse, col);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status attn_cuda_sync(attn_cuda *c, rb_err *e) {
    CU_TRY(cudaStreamSynchronize(c->stream));
    int bad = 0;
    CU_TRY(cudaMemcpy(&bad, c->bad, sizeof bad, cudaMemcpyDeviceToHost));
    if (bad) {
        CU_TRY(cudaMemset(c->bad, 0, sizeof(int)));
        return rb_fail(e, RB_EINPUT, "attn_cuda", "gather index outside [0, n)");
    }
    return RB_OK;
}

int attn_cuda_max_run(const attn_cuda *c, const attn_cuda_shape *s, int len) {
    if (!c || !shape_ok(s) || len < 1) return 0;
    return plan_make(c, s, len).max_run;
}

attn_cuda_tuning attn_cuda_tuning_default(void) {
    attn_cuda_tuning t = ATTN_CUDA_TUNING_DEFAULT;
    return t;
}

rb_status attn_cuda_tune(attn_cuda *c, const attn_cuda_tuning *t, rb_err *e) {
    if (!c || !t) return rb_fail(e, RB_EINPUT, "attn_cuda", "no context or tuning");
    if (t->blocks_per_sm < 1 || t->blocks_per_sm > 64)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "blocks per SM %d (need 1..64)", t->blocks_per_sm);
    if (t->prefetch < -1 || t->prefetch > 1)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "prefetch %d (need -1, 0 or 1)", t->prefetch);
    if (t->heads_inner != 0 && t->heads_inner != 1)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "heads_inner %d (need 0 or 1)", t->heads_inner);
    c->tuning = *t;
    return RB_OK;
}

rb_status attn_cuda_mark(attn_cuda *c, int slot, rb_err *e) {
    if (slot < 0 || slot >= ATTN_CUDA_MAX_MARKS)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "mark %d outside [0, %d)", slot, ATTN_CUDA_MAX_MARKS);
    CU_TRY(cudaEventRecord(c->marks[slot], c->stream));
    return RB_OK;
}

rb_status attn_cuda_elapsed_ms(attn_cuda *c, int from, int to, float *ms, rb_err *e) {
    if (from < 0 || from >= ATTN_CUDA_MAX_MARKS || to < 0 || to >= ATTN_CUDA_MAX_MARKS)
        return rb_fail(e, RB_EINPUT, "attn_cuda", "marks %d, %d outside [0, %d)", from, to,
                       ATTN_CUDA_MAX_MARKS);
    CU_TRY(cudaEventSynchronize(c->marks[to]));
    CU_TRY(cudaEventElapsedTime(ms, c->marks[from], c->marks[to]));
    return RB_OK;
}

rb_status attn_cuda_spin(attn_cuda *c, int us, rb_err *e) {
    if (us < 0) return rb_fail(e, RB_EINPUT, "attn_cuda", "spin of %d us", us);
    spin_kernel<<<1, 1, 0, c->stream>>>((uint64_t)us * 1000);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

} // extern "C"

/* ---- replay's chunk reference: a causal block of W query positions (attn_cuda_causal_chunk)
 *
 * Flash-attention style, fp32 arithmetic: a block of 128 threads (4 warps) takes 32 query
 * rows (16 at d = 256) of one KV head (rows r = (query head of the group, step) in that order, so a block's
 * rows are consecutive steps of one head and share their key range) and walks their keys
 * 32 at a time: the tile's K and V rows are widened to float into shared memory (K rows
 * padded to D + 1 floats so the 32 lanes, one key each, read distinct banks), each lane
 * computes its key's logit for the warp's 8 rows (4 at d = 256; q read as broadcast
 * 16-byte loads), the rows' running (max, sum) are updated
 * with warp shuffles, and each lane accumulates D / 32 output columns of its warp's rows from the
 * tile's V. The causal mask and the sliding window are per row (a key outside j0..t has
 * weight 0). Logits, when asked for, are written as computed; probabilities need the final
 * lse, so a second kernel forms them from the logits. Not tuned for tensor cores: the shared
 * memory reads bound it at a fraction of the FP32 peak, which is still far beyond what the
 * replay engine can consume. */
namespace {

/* Query rows per warp: each K element loaded from shared memory serves this many rows
 * (4 at d = 256, where 8 rows' accumulators would spill registers). */
template <int D> __host__ __device__ constexpr int chunk_rows() { return D > 128 ? 4 : 8; }
template <int D> __host__ __device__ constexpr int chunk_block_rows() { return 4 * chunk_rows<D>(); }
constexpr int kChunkKeys = 32; /* keys per tile: one per lane */

template <typename T> __device__ inline float widen1(T x);
template <> __device__ inline float widen1<float>(float x) { return x; }
template <> __device__ inline float widen1<__half>(__half x) { return __half2float(x); }
template <> __device__ inline float widen1<__nv_bfloat16>(__nv_bfloat16 x) {
    return __bfloat162float(x);
}

__device__ inline int chunk_first_key(int t, int window) {
    return window > 0 && t + 1 > window ? t + 1 - window : 0;
}

__device__ inline float warp_max(float x) {
#pragma unroll
    for (int o = 16; o; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
__device__ inline float warp_sum(float x) {
#pragma unroll
    for (int o = 16; o; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

template <int D> constexpr size_t chunk_smem_bytes() {
    return sizeof(float) * ((size_t)kChunkKeys * (D + 1) + (size_t)kChunkKeys * D +
                            (size_t)chunk_block_rows<D>() * D);
}

template <typename T, int D>
__global__ void __launch_bounds__(128)
chunk_kernel(const float *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v, int W,
             int t0, int window, int Hq, int Hkv, float scale, int ldn, float *__restrict__ logits,
             float *__restrict__ lse_out, float *__restrict__ out) {
    constexpr int R = chunk_rows<D>(), BR = chunk_block_rows<D>(), BC = kChunkKeys, U = D / 32;
    extern __shared__ float sm[];
    float *qs = sm;                  /* [BR][D], prescaled; first: 16-byte aligned rows */
    float *vs = qs + BR * D;         /* [BC][D] */
    float *ks = vs + BC * D;         /* [BC][D + 1] */
    const int g = blockIdx.y, G = Hq / Hkv, GW = G * W;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, rb = blockIdx.x * BR;
    for (int i = threadIdx.x; i < BR * D; i += blockDim.x) {
        int r = rb + i / D, c = i % D;
        float x = 0;
        if (r < GW) x = q[((size_t)(r % W) * Hq + g * G + r / W) * D + c] * scale;
        qs[i] = x;
    }
    /* The block's key range: the union of its rows' j0..t. */
    int lo = 1 << 30, hi = -1;
    for (int i = 0; i < BR; i++) {
        int r = rb + i;
        if (r >= GW) break;
        int t = t0 + r % W;
        lo = min(lo, chunk_first_key(t, window)), hi = max(hi, t);
    }
    int row_t[R], row_j0[R], row_h[R], row_w[R];
    bool row_ok[R];
    float m[R], l[R], acc[R][U];
#pragma unroll
    for (int i = 0; i < R; i++) {
        int r = rb + warp * R + i;
        row_ok[i] = r < GW;
        row_w[i] = r % W, row_h[i] = g * G + r / W, row_t[i] = t0 + r % W;
        row_j0[i] = chunk_first_key(row_t[i], window);
        m[i] = -INFINITY, l[i] = 0;
#pragma unroll
        for (int u = 0; u < U; u++) acc[i][u] = 0;
    }
    for (int j = lo; j <= hi; j += BC) {
        __syncthreads(); /* the previous tile is consumed (and qs written, the first time) */
        for (int i = threadIdx.x; i < BC * D; i += blockDim.x) {
            int jj = i / D, c = i % D, key = j + jj;
            float kx = 0, vx = 0;
            if (key <= hi) {
                size_t at = ((size_t)key * Hkv + g) * D + c;
                kx = widen1<T>(k[at]), vx = widen1<T>(v[at]);
            }
            ks[jj * (D + 1) + c] = kx, vs[jj * D + c] = vx;
        }
        __syncthreads();
        const int key = j + lane;
        float s[R];
#pragma unroll
        for (int i = 0; i < R; i++) s[i] = 0;
        const float *kr = ks + lane * (D + 1), *qr = qs + warp * R * D;
#pragma unroll 2
        for (int c = 0; c < D; c += 4) {
            /* four K elements of this lane's key (scalar: its row is padded), four q
             * elements of each row in one broadcast 16-byte load */
            float k0 = kr[c], k1 = kr[c + 1], k2 = kr[c + 2], k3 = kr[c + 3];
#pragma unroll
            for (int i = 0; i < R; i++) {
                float4 qv = *reinterpret_cast<const float4 *>(qr + i * D + c);
                s[i] = fmaf(qv.x, k0, s[i]), s[i] = fmaf(qv.y, k1, s[i]);
                s[i] = fmaf(qv.z, k2, s[i]), s[i] = fmaf(qv.w, k3, s[i]);
            }
        }
        float p[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            bool vis = row_ok[i] && key >= row_j0[i] && key <= row_t[i];
            if (logits && vis) logits[((size_t)row_h[i] * W + row_w[i]) * ldn + key] = s[i];
            float x = vis ? s[i] : -INFINITY;
            float mn = fmaxf(m[i], warp_max(x));
            p[i] = 0;
            if (mn == -INFINITY) continue; /* nothing of this row seen yet */
            float alpha = expf(m[i] - mn); /* 0 when m was -inf */
            p[i] = vis ? expf(x - mn) : 0.f;
            l[i] = l[i] * alpha + warp_sum(p[i]);
            m[i] = mn;
#pragma unroll
            for (int u = 0; u < U; u++) acc[i][u] *= alpha;
        }
#pragma unroll 4
        for (int jj = 0; jj < BC; jj++) {
            float vj[U];
#pragma unroll
            for (int u = 0; u < U; u++) vj[u] = vs[jj * D + lane + 32 * u];
#pragma unroll
            for (int i = 0; i < R; i++) {
                float pj = __shfl_sync(0xffffffffu, p[i], jj);
#pragma unroll
                for (int u = 0; u < U; u++) acc[i][u] = fmaf(pj, vj[u], acc[i][u]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < R; i++) {
        if (!row_ok[i]) continue;
        size_t at = (size_t)row_w[i] * Hq + row_h[i];
        if (lane == 0) lse_out[at] = m[i] + logf(l[i]);
        float inv = 1.f / l[i];
#pragma unroll
        for (int u = 0; u < U; u++) out[at * D + lane + 32 * u] = acc[i][u] * inv;
    }
}

/* probs[(h, w), j] = exp(logits[(h, w), j] - lse[w, h]) over j0(w)..t0+w: one block per row. */
__global__ void chunk_probs_kernel(const float *__restrict__ logits, const float *__restrict__ lse,
                                   int W, int t0, int window, int Hq, int ldn,
                                   float *__restrict__ probs) {
    int row = blockIdx.x, h = row / W, w = row % W, t = t0 + w;
    float shift = lse[(size_t)w * Hq + h];
    size_t base = (size_t)row * ldn;
    for (int j = chunk_first_key(t, window) + threadIdx.x; j <= t; j += blockDim.x)
        probs[base + j] = expf(logits[base + j] - shift);
}

template <typename T, int D>
rb_status launch_chunk(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                       const void *v, int W, int t0, int window, int ldn, float *logits,
                       float *lse, float *out, rb_err *e) {
    const size_t smem = chunk_smem_bytes<D>();
    CU_TRY(cudaFuncSetAttribute(chunk_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)smem));
    const int G = s->n_q_heads / s->n_kv_heads, BR = chunk_block_rows<D>();
    dim3 grid((unsigned)((G * W + BR - 1) / BR), (unsigned)s->n_kv_heads);
    chunk_kernel<T, D><<<grid, 128, smem, c->stream>>>(
        q, static_cast<const T *>(k), static_cast<const T *>(v), W, t0, window, s->n_q_heads,
        s->n_kv_heads, s->scale, ldn, logits, lse, out);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

template <typename T>
rb_status launch_chunk_d(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                         const void *v, int W, int t0, int window, int ldn, float *logits,
                         float *lse, float *out, rb_err *e) {
    switch (s->head_dim) {
    case 64: return launch_chunk<T, 64>(c, s, q, k, v, W, t0, window, ldn, logits, lse, out, e);
    case 128: return launch_chunk<T, 128>(c, s, q, k, v, W, t0, window, ldn, logits, lse, out, e);
    default: return launch_chunk<T, 256>(c, s, q, k, v, W, t0, window, ldn, logits, lse, out, e);
    }
}

} // namespace

extern "C" {

rb_status attn_cuda_causal_chunk(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                                 const void *k, const void *v, int W, int t0, int window,
                                 int ldn, float *logits, float *probs, float *lse, float *out,
                                 rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "attn_cuda", "no context");
    if (!s || s->n_q_heads < 1 || s->n_kv_heads < 1 || s->n_q_heads % s->n_kv_heads ||
        (s->head_dim != 64 && s->head_dim != 128 && s->head_dim != 256) || !isfinite(s->scale) ||
        (s->kv_dtype != ATTN_CUDA_F32 && s->kv_dtype != ATTN_CUDA_F16 &&
         s->kv_dtype != ATTN_CUDA_BF16))
        return rb_fail(e, RB_EINPUT, "attn_cuda", "causal_chunk: unsupported shape");
    const int G = s->n_q_heads / s->n_kv_heads;
    if (W < 1 || t0 < 0 || window < 0 || (long)G * W > (1L << 30) ||
        (logits && ldn < t0 + W) || (probs && !logits))
        return rb_fail(e, RB_EINPUT, "attn_cuda",
                       "causal_chunk: W = %d, t0 = %d, window = %d, ldn = %d%s", W, t0, window,
                       ldn, probs && !logits ? ", probs without logits" : "");
    const size_t elt = s->kv_dtype == ATTN_CUDA_F32 ? 4 : 2;
    if (!aligned(q, 4) || !aligned(k, elt) || !aligned(v, elt) || !aligned(lse, 4) ||
        !aligned(out, 4) || (logits && !aligned(logits, 4)) || (probs && !aligned(probs, 4)))
        return rb_fail(e, RB_EINPUT, "attn_cuda", "causal_chunk: NULL or misaligned pointer");
    rb_status st;
    if (s->kv_dtype == ATTN_CUDA_F16)
        st = launch_chunk_d<__half>(c, s, q, k, v, W, t0, window, ldn, logits, lse, out, e);
    else if (s->kv_dtype == ATTN_CUDA_BF16)
        st = launch_chunk_d<__nv_bfloat16>(c, s, q, k, v, W, t0, window, ldn, logits, lse, out, e);
    else
        st = launch_chunk_d<float>(c, s, q, k, v, W, t0, window, ldn, logits, lse, out, e);
    if (st || !probs) return st;
    chunk_probs_kernel<<<(unsigned)(s->n_q_heads * W), 256, 0, c->stream>>>(
        logits, lse, W, t0, window, s->n_q_heads, ldn, probs);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

} // extern "C"
