/* fwd_cuda.cu: the transformer forward's kernels on the GPU (fwd_cuda.h): quantized
 * matrix-vector products, fused residual/RMS norm, q/k norm with RoPE, embedding, greedy
 * choice and bookkeeping, plus graph and event plumbing.
 *
 * Matrix-vector design. Decode multiplies a vector by matrices whose rows are a few hundred
 * bytes to a few KiB in a GGUF format whose blocks (18, 22, 34, 210 bytes...) do not sit on
 * 16-byte boundaries. One warp takes one row at a time: it copies the bytes of 32 chunks of
 * 32 elements (a contiguous stretch of the row) into its own shared-memory buffer with
 * 16-byte loads of the surrounding aligned words, then each lane dequantizes one chunk from
 * there (fwd_dequant.h, byte reads from shared memory) and multiplies it by the 32 elements
 * of x, and the warp sums its lanes. Warps stride over rows (grid-stride), so a big product
 * (the 262144-row output matrix) keeps every SM busy with one launch and its greedy choice is
 * folded per block before one atomic. Everything memory-bound is read once; x stays in L1/L2. */
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda_rb.cuh"
#include "cuda/fwd_cuda.h"
#include "cuda/fwd_dequant.h"

#define CU_TRY(call) CU_TRY_AS("fwd_cuda", call)

namespace {

constexpr int kMvWarps = 4;                   /* warps per matvec block */
constexpr int kStageBytes = QD_STAGE_BYTES; /* 32 float32 chunks plus the aligned margins */

struct mv_job {
    const uint8_t *w;
    long long row_bytes;
    const float *x, *x2;
    const float *bias;
    float *y;
    int type, rows, cols, act, row0; /* row0: the job's first row in the launch's row space */
};

struct mv_args {
    mv_job j[FWD_MAX_JOBS];
    int n_jobs, total_rows;
    int one_stage; /* every row one stage of <= 16 * 32 * kMvPrefetch bytes: double-buffered */
    float softcap;
    unsigned long long *argmax;
};

__device__ __forceinline__ float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi), model.c's */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

__device__ __forceinline__ float act_in(int act, float x, float x2) {
    if (act == FWD_ACT_GELU_TANH) return gelu_tanh(x) * x2;
    if (act == FWD_ACT_SILU) return silu(x) * x2;
    return x;
}

/* A float's order as an unsigned key (larger float, larger key), the index inverted so the
 * largest key of equal values is the lowest index: model_argmax's rule under atomicMax. */
__device__ __forceinline__ unsigned long long argmax_key(float v, int idx) {
    unsigned u = __float_as_uint(v);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)u << 32) | (unsigned long long)(0xFFFFFFFFu - (unsigned)idx);
}

/* The job of row r of a launch's row space. */
__device__ __forceinline__ int job_of(const mv_args &a, int r) {
    int ji = 0;
#pragma unroll
    for (int i = 1; i < FWD_MAX_JOBS; i++)
        if (i < a.n_jobs && r >= a.j[i].row0) ji = i;
    return ji;
}

/* The 16-byte words [a0, a0 + 16 * n16) that chunks [c0, c1) of row `row` of J read. */
__device__ __forceinline__ void stage_span(const mv_job &J, int row, int c0, int c1,
                                           uintptr_t *a0, int *n16) {
    const uint8_t *rp = J.w + (long long)row * J.row_bytes;
    int64_t b0, bend;
    qd_stage_range(J.type, J.row_bytes, c0, c1, &b0, &bend);
    *a0 = (uintptr_t)(rp + b0) & ~(uintptr_t)15;
    const uintptr_t a1 = ((uintptr_t)(rp + bend) + 15) & ~(uintptr_t)15;
    *n16 = (int)((a1 - *a0) >> 4);
}

/* This lane's part of the dot product of chunks [c0, c1) of a row (staged in buf from the
 * aligned address a0) with x: lane takes chunk c0 + lane. */
__device__ __forceinline__ float chunk_dot(const mv_job &J, int row, int c0, int c1, int lane,
                                           const uint8_t *buf, uintptr_t a0) {
    const int c = c0 + lane;
    if (c >= c1) return 0.f;
    const uint8_t *rp = J.w + (long long)row * J.row_bytes;
    int sub;
    const long long off = qd_chunk_at(J.type, c, &sub);
    const uint8_t *p = buf + ((uintptr_t)(rp + off) - a0);
    const int n = min(QD_CHUNK, J.cols - c * QD_CHUNK);
    float wv[QD_CHUNK];
    qd_chunk(J.type, p, sub, n, wv);
    const float *xp = J.x + (size_t)c * QD_CHUNK;
    float part = 0.f;
    if (n == QD_CHUNK && !J.act) {
#pragma unroll
        for (int i = 0; i < QD_CHUNK; i += 4) {
            float4 xv = __ldg(reinterpret_cast<const float4 *>(xp + i));
            part = fmaf(wv[i], xv.x, part);
            part = fmaf(wv[i + 1], xv.y, part);
            part = fmaf(wv[i + 2], xv.z, part);
            part = fmaf(wv[i + 3], xv.w, part);
        }
    } else {
        const float *x2p = J.x2 ? J.x2 + (size_t)c * QD_CHUNK : nullptr;
        for (int i = 0; i < n; i++) {
            float xv = act_in(J.act, __ldg(xp + i), x2p ? __ldg(x2p + i) : 0.f);
            part = fmaf(wv[i], xv, part);
        }
    }
    return part;
}

/* The end of a row: the warp's sum, bias, softcap, y and the greedy key (lane 0). */
__device__ __forceinline__ void row_out(const mv_args &a, const mv_job &J, int row, int r,
                                        float acc, int lane, unsigned long long *best) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0) {
        if (J.bias) acc += J.bias[row];
        if (a.softcap > 0) acc = tanhf(acc / a.softcap) * a.softcap;
        J.y[row] = acc;
        if (a.argmax) {
            unsigned long long k = argmax_key(acc, r);
            *best = k > *best ? k : *best;
        }
    }
}

/* Rows of one stage (at most 32 chunks, at most 16 * 32 * kMvPrefetch bytes staged) take the
 * double-buffered path: a lane holds its words of the warp's next row in registers, issued
 * before the current row's arithmetic, so each warp keeps one row's loads in flight while
 * it computes (fwd_cuda_matvec decides, mv_args.one_stage). */
constexpr int kMvPrefetch = 2;

__global__ void __launch_bounds__(kMvWarps * 32) matvec_kernel(const mv_args a) {
    __shared__ __align__(16) uint8_t stage[kMvWarps][kStageBytes];
    __shared__ unsigned long long best_sm[kMvWarps];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int stride = gridDim.x * kMvWarps;
    unsigned long long best = 0;
    uint8_t *buf = stage[warp];
    int r = blockIdx.x * kMvWarps + warp;
    if (a.one_stage) {
        uint4 nx[kMvPrefetch];
        uintptr_t a0 = 0;
        int n16 = 0;
        if (r < a.total_rows) { /* the first row: load and stage */
            const mv_job &J = a.j[job_of(a, r)];
            stage_span(J, r - J.row0, 0, (int)qd_row_chunks(J.cols), &a0, &n16);
#pragma unroll
            for (int k = 0; k < kMvPrefetch; k++)
                if (lane + 32 * k < n16) nx[k] = __ldg(reinterpret_cast<const uint4 *>(a0) + lane + 32 * k);
#pragma unroll
            for (int k = 0; k < kMvPrefetch; k++)
                if (lane + 32 * k < n16) reinterpret_cast<uint4 *>(buf)[lane + 32 * k] = nx[k];
            __syncwarp();
        }
        for (; r < a.total_rows; r += stride) {
            const int ji = job_of(a, r);
            const mv_job &J = a.j[ji];
            const int row = r - J.row0;
            /* issue the next row's loads before this row's arithmetic */
            const int rn = r + stride;
            uintptr_t a0n = 0;
            int n16n = 0;
            if (rn < a.total_rows) {
                const mv_job &Jn = a.j[job_of(a, rn)];
                stage_span(Jn, rn - Jn.row0, 0, (int)qd_row_chunks(Jn.cols), &a0n, &n16n);
#pragma unroll
                for (int k = 0; k < kMvPrefetch; k++)
                    if (lane + 32 * k < n16n)
                        nx[k] = __ldg(reinterpret_cast<const uint4 *>(a0n) + lane + 32 * k);
            }
            const float acc = chunk_dot(J, row, 0, (int)qd_row_chunks(J.cols), lane, buf, a0);
            __syncwarp(); /* every lane is done with buf */
#pragma unroll
            for (int k = 0; k < kMvPrefetch; k++)
                if (lane + 32 * k < n16n) reinterpret_cast<uint4 *>(buf)[lane + 32 * k] = nx[k];
            __syncwarp();
            a0 = a0n, n16 = n16n;
            row_out(a, J, row, r, acc, lane, &best);
        }
        (void)n16;
    } else {
        for (; r < a.total_rows; r += stride) {
            const mv_job &J = a.j[job_of(a, r)];
            const int row = r - J.row0;
            const int nch = (int)qd_row_chunks(J.cols);
            float acc = 0.f;
            for (int c0 = 0; c0 < nch; c0 += 32) {
                const int c1 = min(nch, c0 + 32);
                uintptr_t a0;
                int n16;
                stage_span(J, row, c0, c1, &a0, &n16);
                for (int i = lane; i < n16; i += 32)
                    reinterpret_cast<uint4 *>(buf)[i] = __ldg(reinterpret_cast<const uint4 *>(a0) + i);
                __syncwarp();
                acc += chunk_dot(J, row, c0, c1, lane, buf, a0);
                __syncwarp();
            }
            row_out(a, J, row, r, acc, lane, &best);
        }
    }
    if (a.argmax) {
        if (lane == 0) best_sm[warp] = best;
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned long long b = best_sm[0];
            for (int w = 1; w < kMvWarps; w++) b = best_sm[w] > b ? best_sm[w] : b;
            if (b) atomicMax(a.argmax, b);
        }
    }
}

/* Sum over the block of one double per thread; every thread gets the total. red [32]. */
__device__ double block_sum(double v, double *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    __syncthreads(); /* red may still be read from the previous call */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double t = 0;
    for (int w = 0; w < nw; w++) t += red[w];
    return t;
}

__device__ __forceinline__ float rms_factor(double ss, int n, float eps) {
    return (float)(1.0 / sqrt(ss / n + (double)eps));
}

constexpr int kNormThreads = 1024;

__global__ void __launch_bounds__(kNormThreads)
residual_norm_kernel(const float *o, const float *post_w, float *x, const float *w, int n,
                     float eps, float *xn) {
    __shared__ double red[32];
    if (o) {
        float r_o = 1.f;
        if (post_w) {
            double ss = 0;
            for (int i = threadIdx.x; i < n; i += blockDim.x) ss += (double)o[i] * o[i];
            r_o = rms_factor(block_sum(ss, red), n, eps);
        }
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            float oi = post_w ? __fmul_rn(__fmul_rn(o[i], r_o), post_w[i]) : o[i];
            x[i] = __fadd_rn(x[i], oi);
        }
        /* each thread reads back only the elements it wrote */
    }
    double ss = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += (double)x[i] * x[i];
    float r = rms_factor(block_sum(ss, red), n, eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) xn[i] = __fmul_rn(__fmul_rn(x[i], r), w[i]);
}

__global__ void __launch_bounds__(256)
embed_kernel(const uint8_t *table, long long row_bytes, int type, int rows, int n,
             const int32_t *tokens, const int32_t *pos, float scale, float *x, const float *norm_w,
             float eps, float *xn) {
    __shared__ double red[32];
    const int tok = tokens[*pos];
    const bool ok = tok >= 0 && tok < rows;
    const uint8_t *rp = table + (ok ? (long long)tok * row_bytes : 0);
    const int nch = (int)qd_row_chunks(n);
    for (int c = threadIdx.x; c < nch; c += blockDim.x) {
        int sub;
        long long off = qd_chunk_at(type, c, &sub);
        int cnt = min(QD_CHUNK, n - c * QD_CHUNK);
        float v[QD_CHUNK];
        qd_chunk(type, rp + off, sub, cnt, v);
        for (int i = 0; i < cnt; i++) x[c * QD_CHUNK + i] = ok ? __fmul_rn(v[i], scale) : 0.f;
    }
    if (!norm_w) return;
    __syncthreads();
    double ss = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += (double)x[i] * x[i];
    float r = rms_factor(block_sum(ss, red), n, eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) xn[i] = __fmul_rn(__fmul_rn(x[i], r), norm_w[i]);
}

/* One block per head: heads [0, n_q) of q, then [0, n_k) of k. */
__global__ void __launch_bounds__(128)
qk_finish_kernel(float *q, int n_q, const float *q_norm, float *k, const float *k_norm, int d,
                 float eps, const int32_t *pos, int neox, float base, float pos_scale,
                 const float *factors) {
    extern __shared__ float hv[]; /* [d] */
    __shared__ double red[32];
    const bool is_q = (int)blockIdx.x < n_q;
    float *v = is_q ? q + (size_t)blockIdx.x * d : k + (size_t)(blockIdx.x - n_q) * d;
    const float *nw = is_q ? q_norm : k_norm;
    float r = 1.f;
    if (nw) {
        double ss = 0;
        for (int i = threadIdx.x; i < d; i += blockDim.x) ss += (double)v[i] * v[i];
        r = rms_factor(block_sum(ss, red), d, eps);
    }
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        hv[i] = nw ? __fmul_rn(__fmul_rn(v[i], r), nw[i]) : v[i];
    __syncthreads();
    const double p = (double)*pos * (double)pos_scale;
    const int half = d / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        double theta = p * pow((double)base, -2.0 * i / d);
        if (factors) theta /= factors[i];
        const float c = (float)cos(theta), s = (float)sin(theta);
        const int ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
        const float x0 = hv[ia], x1 = hv[ib];
        v[ia] = __fadd_rn(__fmul_rn(x0, c), -__fmul_rn(x1, s));
        v[ib] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    }
}

__global__ void advance_kernel(int32_t *pos, int pos_step, unsigned long long *argmax,
                               int32_t *tokens, int max_pos, int32_t *last) {
    int p = *pos + pos_step;
    *pos = p;
    if (!argmax) return;
    unsigned long long k = *argmax;
    *argmax = 0;
    int t = (int)(0xFFFFFFFFu - (unsigned)(k & 0xFFFFFFFFull));
    if (last) *last = t;
    if (tokens && p <= max_pos) tokens[p] = t;
}

int n_sms() {
    static int n = 0;
    if (!n) {
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1)
            n = 132;
    }
    return n;
}

/* Matvec blocks resident on the whole device at once: the grid-stride loop then keeps every
 * block busy to the end instead of leaving a second, partial wave. */
int mv_resident_blocks() {
    static int n = 0;
    if (!n) {
        int per_sm = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, matvec_kernel, kMvWarps * 32, 0) !=
                cudaSuccess || per_sm < 1) {
            (void)cudaGetLastError();
            per_sm = 4;
        }
        n = per_sm * n_sms();
    }
    return n;
}

bool aligned(const void *p, size_t a) { return p && (uintptr_t)p % a == 0; }

cudaStream_t stream_of(attn_cuda *c) { return static_cast<cudaStream_t>(attn_cuda_stream(c)); }

} // namespace

struct fwd_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

struct fwd_events {
    int n;
    cudaEvent_t *ev;
};

extern "C" {

rb_status fwd_cuda_matvec(attn_cuda *c, const fwd_mv *jobs, int n_jobs, float softcap,
                          uint64_t *argmax, rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context");
    if (n_jobs < 1 || n_jobs > FWD_MAX_JOBS)
        return rb_fail(e, RB_EINPUT, "fwd_cuda", "matvec: %d jobs (1..%d)", n_jobs, FWD_MAX_JOBS);
    mv_args a;
    memset(&a, 0, sizeof a);
    long long total = 0;
    for (int i = 0; i < n_jobs; i++) {
        const fwd_mv *j = &jobs[i];
        int t = j->m.type;
        if (!qd_supported(t))
            return rb_fail(e, RB_EINPUT, "fwd_cuda", "matvec: weight type %d has no device kernel", t);
        if (j->m.rows < 1 || j->m.cols < 1 || j->m.cols % qd_block_elems(t))
            return rb_fail(e, RB_EINPUT, "fwd_cuda", "matvec: shape [%d, %d] for type %d",
                           j->m.rows, j->m.cols, t);
        if (!j->m.w || !j->y || !aligned(j->x, 16) || (j->act && !aligned(j->x2, 16)) ||
            (j->act < FWD_ACT_NONE || j->act > FWD_ACT_SILU))
            return rb_fail(e, RB_EINPUT, "fwd_cuda",
                           "matvec: NULL pointer, x not 16-byte aligned or unknown activation");
        mv_job &m = a.j[i];
        m.w = static_cast<const uint8_t *>(j->m.w);
        m.row_bytes = (long long)(j->m.cols / qd_block_elems(t)) * qd_block_bytes(t);
        m.x = j->x, m.x2 = j->x2, m.bias = j->bias, m.y = j->y;
        m.type = t, m.rows = j->m.rows, m.cols = j->m.cols, m.act = j->act;
        m.row0 = (int)total;
        total += j->m.rows;
    }
    if (total > 0x7fffffff) return rb_fail(e, RB_EINPUT, "fwd_cuda", "matvec: too many rows");
    a.n_jobs = n_jobs;
    a.total_rows = (int)total;
    /* one stage per row (<= 32 chunks) whose widened span fits the prefetch registers */
    a.one_stage = 1;
    for (int i = 0; i < n_jobs; i++) {
        const mv_job &m = a.j[i];
        int64_t b0, b1;
        const int64_t nch = qd_row_chunks(m.cols);
        qd_stage_range(m.type, m.row_bytes, 0, nch, &b0, &b1);
        /* a span starting anywhere in a 16-byte word covers at most this many words */
        if (nch > 32 || (b1 - b0 + 30) / 16 + 1 > 32 * kMvPrefetch) a.one_stage = 0;
    }
    a.softcap = softcap;
    a.argmax = reinterpret_cast<unsigned long long *>(argmax);
    long long blocks = (total + kMvWarps - 1) / kMvWarps, cap = mv_resident_blocks();
    if (blocks > cap) blocks = cap;
    matvec_kernel<<<(unsigned)blocks, kMvWarps * 32, 0, stream_of(c)>>>(a);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status fwd_cuda_embed(attn_cuda *c, fwd_mat table, const int32_t *tokens, const int32_t *pos,
                         float scale, float *x, const float *norm_w, float eps, float *xn,
                         rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context");
    if (!qd_supported(table.type) || table.rows < 1 || table.cols < 1 ||
        table.cols % qd_block_elems(table.type) || !table.w || !tokens || !pos || !x ||
        (norm_w && !xn))
        return rb_fail(e, RB_EINPUT, "fwd_cuda", "embed: bad table or NULL pointer");
    long long rb = (long long)(table.cols / qd_block_elems(table.type)) * qd_block_bytes(table.type);
    embed_kernel<<<1, 256, 0, stream_of(c)>>>(static_cast<const uint8_t *>(table.w), rb, table.type,
                                              table.rows, table.cols, tokens, pos, scale, x,
                                              norm_w, eps, xn);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status fwd_cuda_residual_norm(attn_cuda *c, const float *o, const float *post_w, float *x,
                                 const float *w, int n, float eps, float *xn, rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context");
    if (n < 1 || !x || !w || !xn)
        return rb_fail(e, RB_EINPUT, "fwd_cuda", "residual_norm: n = %d or a NULL pointer", n);
    int threads = n < kNormThreads ? (n + 31) / 32 * 32 : kNormThreads;
    residual_norm_kernel<<<1, threads, 0, stream_of(c)>>>(o, post_w, x, w, n, eps, xn);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status fwd_cuda_qk_finish(attn_cuda *c, float *q, int n_q, const float *q_norm, float *k,
                             int n_k, const float *k_norm, int d, float eps, const int32_t *pos,
                             const fwd_rope *rope, rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context");
    if (d < 2 || d % 2 || d > 8192 || n_q < 0 || n_k < 0 || n_q + n_k < 1 || (n_q && !q) ||
        (n_k && !k) || !pos || !rope)
        return rb_fail(e, RB_EINPUT, "fwd_cuda", "qk_finish: d = %d, %d + %d heads or a NULL pointer",
                       d, n_q, n_k);
    qk_finish_kernel<<<n_q + n_k, 128, sizeof(float) * d, stream_of(c)>>>(
        q, n_q, q_norm, k, k_norm, d, eps, pos, rope->neox, rope->base, rope->pos_scale,
        rope->freq_factors);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status fwd_cuda_advance(attn_cuda *c, int32_t *pos, int pos_step, uint64_t *argmax,
                           int32_t *tokens, int max_pos, int32_t *last, rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context");
    if (!pos) return rb_fail(e, RB_EINPUT, "fwd_cuda", "advance: no position");
    advance_kernel<<<1, 1, 0, stream_of(c)>>>(pos, pos_step, reinterpret_cast<unsigned long long *>(argmax),
                                              tokens, max_pos, last);
    CU_TRY(cudaGetLastError());
    return RB_OK;
}

rb_status fwd_cuda_capture_begin(attn_cuda *c, rb_err *e) {
    if (!c) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context");
    (void)mv_resident_blocks(); /* device queries before the capture, not inside it */
    CU_TRY(cudaStreamBeginCapture(stream_of(c), cudaStreamCaptureModeThreadLocal));
    return RB_OK;
}

rb_status fwd_cuda_capture_end(attn_cuda *c, fwd_graph **out, rb_err *e) {
    *out = nullptr;
    if (!c) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context");
    cudaGraph_t g = nullptr;
    cudaError_t err = cudaStreamEndCapture(stream_of(c), &g);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        if (g) cudaGraphDestroy(g);
        return rb_fail(e, RB_EINTERNAL, "fwd_cuda", "graph capture: %s", cudaGetErrorString(err));
    }
    cudaGraphExec_t x = nullptr;
    err = cudaGraphInstantiate(&x, g, 0);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        cudaGraphDestroy(g);
        return rb_fail(e, RB_EINTERNAL, "fwd_cuda", "graph instantiate: %s", cudaGetErrorString(err));
    }
    fwd_graph *fg = static_cast<fwd_graph *>(rb_calloc(1, sizeof *fg));
    fg->graph = g, fg->exec = x;
    *out = fg;
    return RB_OK;
}

rb_status fwd_cuda_graph_launch(attn_cuda *c, fwd_graph *g, rb_err *e) {
    if (!c || !g) return rb_fail(e, RB_EINPUT, "fwd_cuda", "no context or graph");
    CU_TRY(cudaGraphLaunch(g->exec, stream_of(c)));
    return RB_OK;
}

void fwd_cuda_graph_destroy(fwd_graph *g) {
    if (!g) return;
    if (g->exec) cudaGraphExecDestroy(g->exec);
    if (g->graph) cudaGraphDestroy(g->graph);
    free(g);
}

rb_status fwd_cuda_events_create(int n, fwd_events **out, rb_err *e) {
    *out = nullptr;
    if (n < 1) return rb_fail(e, RB_EINPUT, "fwd_cuda", "%d events", n);
    fwd_events *ev = static_cast<fwd_events *>(rb_calloc(1, sizeof *ev));
    ev->ev = static_cast<cudaEvent_t *>(rb_calloc((size_t)n, sizeof(cudaEvent_t)));
    for (int i = 0; i < n; i++) {
        cudaError_t err = cudaEventCreate(&ev->ev[i]);
        if (err != cudaSuccess) {
            ev->n = i;
            fwd_cuda_events_destroy(ev);
            return rb_fail(e, RB_EINTERNAL, "fwd_cuda", "cudaEventCreate: %s", cudaGetErrorString(err));
        }
    }
    ev->n = n;
    *out = ev;
    return RB_OK;
}

void fwd_cuda_events_destroy(fwd_events *ev) {
    if (!ev) return;
    for (int i = 0; i < ev->n; i++) cudaEventDestroy(ev->ev[i]);
    free(ev->ev);
    free(ev);
}

rb_status fwd_cuda_event_record(attn_cuda *c, fwd_events *ev, int i, rb_err *e) {
    if (!c || !ev || i < 0 || i >= ev->n)
        return rb_fail(e, RB_EINPUT, "fwd_cuda", "event %d outside the pool", i);
    CU_TRY(cudaEventRecord(ev->ev[i], stream_of(c)));
    return RB_OK;
}

rb_status fwd_cuda_event_ms(fwd_events *ev, int from, int to, float *ms, rb_err *e) {
    if (!ev || from < 0 || from >= ev->n || to < 0 || to >= ev->n)
        return rb_fail(e, RB_EINPUT, "fwd_cuda", "events %d, %d outside the pool", from, to);
    CU_TRY(cudaEventSynchronize(ev->ev[to]));
    CU_TRY(cudaEventElapsedTime(ms, ev->ev[from], ev->ev[to]));
    return RB_OK;
}

rb_status fwd_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, rb_err *e) {
    CU_TRY(cudaMemGetInfo(free_bytes, total_bytes));
    return RB_OK;
}

} // extern "C"
