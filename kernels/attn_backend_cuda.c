/* attn_backend_cuda.c: the "cuda" attention backend: the backend slots over the device
 * kernels of kernels/cuda/attn_cuda.h (attn_backend.h).
 *
 * The slots take host pointers, so each call uploads what it reads and downloads what it
 * writes: correct, not fast. It is the seam that lets every path run its attention on the
 * GPU and be checked against the reference; device-resident KV pages are the GPU decode's
 * work. What runs where:
 *   dense_heads   on the GPU (split-K flash-decoding) when no logits are asked for and the
 *                 K/V rows are packed (ld = Hkv * d); else the CPU kernel
 *   gather        on the GPU (the selected rows packed per KV head, then the gather
 *                 kernel) when no probabilities are asked for; else the CPU kernel
 *   weighted_rows, causal: the CPU kernels (no device kernel yet)
 * One context serves every thread; a lock serialises the calls. Without a GPU (or in a
 * build without CUDA, where attn_cuda is a stub) supports() answers 0. */
#include <pthread.h>
#include <string.h>

#include "attn.h"
#include "attn_backend.h"
#include "cuda/attn_cuda.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static attn_cuda *ctx;       /* created on first use, under lock */
static int ctx_failed;
/* Device scratch, grown as needed (under lock). */
static void *d_q, *d_k, *d_v, *d_o, *d_lse, *d_idx;
static size_t cap_q, cap_k, cap_v, cap_o, cap_lse, cap_idx;
static float *h_k, *h_v;     /* host staging for gathered rows */
static size_t cap_hk;

static int device_ready(void) {
    if (!ctx && !ctx_failed) {
        rb_err e;
        if (attn_cuda_device_count() < 1 || attn_cuda_create(&ctx, &e)) ctx_failed = 1;
    }
    return ctx != NULL;
}

static int shape_ok(int Hq, int Hkv, int d) {
    if (Hkv < 1 || Hq % Hkv) return 0;
    int G = Hq / Hkv;
    return (G == 1 || G == 2 || G == 4 || G == 8) && (d == 64 || d == 128 || d == 256);
}

static int cuda_supports(const attn_shape *s) {
    pthread_mutex_lock(&lock);
    int ok = shape_ok(s->n_q_heads, s->n_kv_heads, s->head_dim) && device_ready();
    pthread_mutex_unlock(&lock);
    return ok;
}

/* Grow a device buffer to at least `need` bytes. */
static int ensure(void **buf, size_t *cap, size_t need) {
    if (*cap >= need) return 1;
    rb_err e;
    attn_cuda_free(ctx, *buf);
    *buf = NULL, *cap = 0;
    if (attn_cuda_alloc(ctx, need, buf, &e)) return 0;
    *cap = need;
    return 1;
}

static void cuda_dense_heads(const float *q, int Hq, int Hkv, const float *k, const float *v,
                             int n, int d, int ld, float scale, float *logits, float *lse,
                             float *out) {
    int done = 0;
    pthread_mutex_lock(&lock);
    if (!logits && ld == Hkv * d && shape_ok(Hq, Hkv, d) && device_ready()) {
        size_t qb = sizeof(float) * (size_t)Hq * d, kb = sizeof(float) * (size_t)n * ld;
        size_t lb = sizeof(float) * (size_t)Hq;
        attn_cuda_shape sh = {.n_q_heads = Hq, .n_kv_heads = Hkv, .head_dim = d, .scale = scale,
                              .kv_dtype = ATTN_CUDA_F32};
        rb_err e;
        done = ensure(&d_q, &cap_q, qb) && ensure(&d_k, &cap_k, kb) && ensure(&d_v, &cap_v, kb) &&
               ensure(&d_o, &cap_o, qb) && ensure(&d_lse, &cap_lse, lb) &&
               !attn_cuda_upload(ctx, d_q, q, qb, &e) && !attn_cuda_upload(ctx, d_k, k, kb, &e) &&
               !attn_cuda_upload(ctx, d_v, v, kb, &e) &&
               !attn_cuda_dense(ctx, &sh, d_q, d_k, d_v, n, d_o, d_lse, &e) &&
               !attn_cuda_sync(ctx, &e) &&
               (!out || !attn_cuda_download(ctx, out, d_o, qb, &e)) &&
               (!lse || !attn_cuda_download(ctx, lse, d_lse, lb, &e));
    }
    pthread_mutex_unlock(&lock);
    if (!done) attn_dense_heads(q, Hq, Hkv, k, v, n, d, ld, scale, logits, lse, out);
}

/* One KV head's gather on the device: rows packed into [n_max, d] buffers, the kernel's
 * index list names them. Only for a set shared by the G heads, or G = 1. */
static int gather_on_device(const float *q, int G, const float *const *k_rows,
                            const float *const *v_rows, int n, int d, float scale, float *out) {
    size_t rb = sizeof(float) * (size_t)d, kb = rb * (size_t)n, qb = rb * (size_t)G;
    if (cap_hk < kb) {
        free(h_k), free(h_v);
        h_k = rb_malloc(kb), h_v = rb_malloc(kb), cap_hk = kb;
    }
    for (int i = 0; i < n; i++) {
        memcpy(h_k + (size_t)i * d, k_rows[i], rb);
        memcpy(h_v + (size_t)i * d, v_rows[i], rb);
    }
    attn_cuda_shape sh = {.n_q_heads = G, .n_kv_heads = 1, .head_dim = d, .scale = scale,
                          .kv_dtype = ATTN_CUDA_F32};
    rb_err e;
    if (!ensure(&d_q, &cap_q, qb) || !ensure(&d_k, &cap_k, kb) || !ensure(&d_v, &cap_v, kb) ||
        !ensure(&d_o, &cap_o, qb) || !ensure(&d_lse, &cap_lse, sizeof(float) * (size_t)G) ||
        !ensure(&d_idx, &cap_idx, sizeof(int32_t) * (size_t)n))
        return 0;
    int32_t *idx = rb_malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = i;
    int ok = !attn_cuda_upload(ctx, d_q, q, qb, &e) && !attn_cuda_upload(ctx, d_k, h_k, kb, &e) &&
             !attn_cuda_upload(ctx, d_v, h_v, kb, &e) &&
             !attn_cuda_upload(ctx, d_idx, idx, sizeof(int32_t) * (size_t)n, &e) &&
             !attn_cuda_gather(ctx, &sh, d_q, d_k, d_v, n, d_idx, n, d_o, d_lse, &e) &&
             !attn_cuda_sync(ctx, &e) && !attn_cuda_download(ctx, out, d_o, qb, &e);
    free(idx);
    return ok;
}

static void cuda_gather(const float *q, int G, const float *const *k_rows,
                        const float *const *v_rows, const int *n, int stride, int shared, int d,
                        float scale, float *probs, float *out, float *work) {
    int done = 0;
    pthread_mutex_lock(&lock);
    if (!probs && (shared || G == 1) && n[0] >= 1 && shape_ok(G, 1, d) && device_ready())
        done = gather_on_device(q, G, k_rows, v_rows, n[0], d, scale, out);
    pthread_mutex_unlock(&lock);
    if (!done)
        attn_gather(q, G, k_rows, v_rows, n, stride, shared, d, scale, probs, out, work);
}

extern const attn_backend attn_backend_cuda_table; /* listed in attn_backends.c */
const attn_backend attn_backend_cuda_table = {
    .name = "cuda",
    .summary = "CUDA kernels (kernels/cuda): dense and gather on the GPU, data moved per call",
    .supports = cuda_supports,
    .dense_heads = cuda_dense_heads,
    .gather = cuda_gather,
    .weighted_rows = attn_weighted_rows,
    .causal = attn_causal,
};
