/* attn_backend_cuda.c: the "cuda" attention backend: the backend slots over the device
 * kernels of kernels/cuda/attn_cuda.h (attn_backend.h). Listed only in a CUDA build.
 *
 * The slots take host pointers, so each call packs and uploads what it reads, runs the
 * kernels and downloads what it writes: correct, not fast (every call moves its whole K/V
 * across the bus and waits for it). It is the seam that lets every path run its attention
 * on the GPU and be checked against the reference; device-resident KV pages are the GPU
 * decode's work. What runs where, for a shape supports() accepts:
 *   dense_heads    attn_cuda_dense (out, lse), attn_cuda_scores (logits); the rows of a
 *                  window inside a wider layout (ld > Hkv * d) are packed on the host first
 *   gather         each set's rows packed on the host, attn_cuda_dense over them (one call
 *                  for a set shared by the G heads, one per query head otherwise), then
 *                  attn_cuda_scores with that lse for the probabilities
 *   weighted_rows  the value rows packed, attn_cuda_weighted
 *   causal         attn_cuda_dense for each query position i over keys 0..i, then
 *                  attn_cuda_col_mass from those positions' lse
 *   causal_chunk   attn_cuda_causal_chunk (replay's reference of a chunk of steps, any G):
 *                  the chunk's query rows go up each call, the layer's K and V rows only
 *                  once: a call on the same k, v buffers with a later t0 than the previous
 *                  call uploads just the rows past those already on the device (replay
 *                  walks a layer's chunks in order; any other call uploads them all), and
 *                  logits, probabilities, lse and output come back
 * The CPU kernels of attn.h run instead exactly where attn_cuda cannot: a shape supports()
 * refuses (no device; G = Hq / Hkv not 1, 2, 4 or 8; d not 64, 128 or 256; weighted_rows
 * has no such limit), and a call over no keys (n = 0, an empty gather set, an empty prompt),
 * which the device kernels refuse and the CPU kernels define.
 * A device failure once the context is up (out of memory, a kernel fault) stops the
 * program with CUDA's message: a quiet fall back to the CPU would hide a broken device path
 * from tests/test_attn_backends.c, which checks this table against "ref".
 * Threads: one context on device 0 serves every thread and a mutex serialises the calls
 * (the scratch below is shared), so the threads of a sweep take turns here. */
#include <pthread.h>
#include <string.h>

#include "attn.h"
#include "attn_backend.h"
#include "cuda/attn_cuda.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static attn_cuda *ctx; /* created on first use, under lock; lives until exit */
static int ctx_failed;

/* Scratch grown as needed, under lock: device buffers and host staging for packed rows. */
typedef struct {
    void *p;
    size_t cap;
} buf;
static buf d_q, d_k, d_v, d_o, d_lse, d_p, d_col;
static buf h_k, h_v, h_p;

static int device_ready(void) {
    if (!ctx && !ctx_failed) {
        rb_err e;
        if (attn_cuda_device_count() < 1 || attn_cuda_create(&ctx, &e)) ctx_failed = 1;
    }
    return ctx != NULL;
}

static int shape_ok(int Hq, int Hkv, int d) {
    if (Hkv < 1 || Hq < 1 || Hq % Hkv) return 0;
    int G = Hq / Hkv;
    return (G == 1 || G == 2 || G == 4 || G == 8) && (d == 64 || d == 128 || d == 256);
}

static int cuda_supports(const attn_shape *s) {
    pthread_mutex_lock(&lock);
    int ok = shape_ok(s->n_q_heads, s->n_kv_heads, s->head_dim) && device_ready();
    pthread_mutex_unlock(&lock);
    return ok;
}

/* A device call that must work once the context is up. */
#define DEV(call)                                                                             \
    do {                                                                                      \
        rb_err e_ = {0};                                                                      \
        if ((call) != RB_OK)                                                                  \
            rb_die(__FILE__, __LINE__, "cuda backend: %s: %s", e_.what, e_.why);              \
    } while (0)

/* Device buffer b with room for `bytes`. */
static float *dev(buf *b, size_t bytes) {
    if (b->cap < bytes) {
        attn_cuda_free(ctx, b->p);
        b->p = NULL, b->cap = 0;
        DEV(attn_cuda_alloc(ctx, bytes, &b->p, &e_));
        b->cap = bytes;
    }
    return b->p;
}

/* Device buffer b holding a copy of `bytes` of host memory. */
static float *upload(buf *b, const void *host, size_t bytes) {
    float *p = dev(b, bytes);
    DEV(attn_cuda_upload(ctx, p, host, bytes, &e_));
    return p;
}

static void download(void *to, const float *from, size_t bytes) {
    DEV(attn_cuda_download(ctx, to, from, bytes, &e_));
}

/* Host staging b with room for `bytes`. */
static float *host(buf *b, size_t bytes) {
    if (b->cap < bytes) {
        free(b->p);
        b->p = rb_malloc(bytes), b->cap = bytes;
    }
    return b->p;
}

/* n rows of w floats, `ld` apart (ld < 0: through the pointers rows[]), packed into [n, w]. */
static const float *pack(buf *b, const float *base, size_t ld, const float *const *rows, int n,
                         int w) {
    float *p = host(b, sizeof(float) * (size_t)n * w);
    for (int i = 0; i < n; i++)
        memcpy(p + (size_t)i * w, rows ? rows[i] : base + (size_t)i * ld, sizeof(float) * w);
    return p;
}

static void sync_checked(void) { DEV(attn_cuda_sync(ctx, &e_)); }

static void dense_on_device(const float *q, int Hq, int Hkv, const float *k, const float *v,
                            int n, int d, int ld, float scale, float *logits, float *lse,
                            float *out) {
    size_t row = (size_t)Hkv * d, kb = sizeof(float) * row * n;
    if ((size_t)ld != row) /* a window inside a wider layout: the kernels read packed rows */
        k = pack(&h_k, k, (size_t)ld, NULL, n, (int)row),
        v = pack(&h_v, v, (size_t)ld, NULL, n, (int)row);
    attn_cuda_shape sh = {Hq, Hkv, d, scale, ATTN_CUDA_F32};
    float *dq = upload(&d_q, q, sizeof(float) * Hq * d), *dk = upload(&d_k, k, kb);
    if (out || lse) {
        float *dv = upload(&d_v, v, kb), *dout = dev(&d_o, sizeof(float) * Hq * d);
        float *dlse = dev(&d_lse, sizeof(float) * Hq);
        DEV(attn_cuda_dense(ctx, &sh, dq, dk, dv, n, dout, dlse, &e_));
        if (out) download(out, dout, sizeof(float) * Hq * d);
        if (lse) download(lse, dlse, sizeof(float) * Hq);
    }
    if (logits) {
        float *dp = dev(&d_p, sizeof(float) * Hq * n);
        DEV(attn_cuda_scores(ctx, &sh, dq, dk, n, NULL, 0, NULL, dp, n, &e_));
        download(logits, dp, sizeof(float) * Hq * n);
    }
    sync_checked();
}

static void cuda_dense_heads(const float *q, int Hq, int Hkv, const float *k, const float *v,
                             int n, int d, int ld, float scale, float *logits, float *lse,
                             float *out) {
    pthread_mutex_lock(&lock);
    int on_device = n >= 1 && shape_ok(Hq, Hkv, d) && device_ready();
    if (on_device) dense_on_device(q, Hq, Hkv, k, v, n, d, ld, scale, logits, lse, out);
    pthread_mutex_unlock(&lock);
    if (!on_device) attn_dense_heads(q, Hq, Hkv, k, v, n, d, ld, scale, logits, lse, out);
}

/* One set of n rows attended by `heads` query rows q [heads, d]: out [heads, d]; probs
 * (may be NULL) rows `stride` apart. */
static void set_on_device(const float *q, int heads, const float *const *k_rows,
                          const float *const *v_rows, int n, int stride, int d, float scale,
                          float *probs, float *out) {
    size_t kb = sizeof(float) * (size_t)n * d;
    attn_cuda_shape sh = {heads, 1, d, scale, ATTN_CUDA_F32};
    float *dq = upload(&d_q, q, sizeof(float) * heads * d);
    float *dk = upload(&d_k, pack(&h_k, NULL, 0, k_rows, n, d), kb);
    float *dv = upload(&d_v, pack(&h_v, NULL, 0, v_rows, n, d), kb);
    float *dout = dev(&d_o, sizeof(float) * heads * d);
    float *dlse = dev(&d_lse, sizeof(float) * heads);
    DEV(attn_cuda_dense(ctx, &sh, dq, dk, dv, n, dout, dlse, &e_));
    download(out, dout, sizeof(float) * heads * d);
    if (probs) {
        float *dp = dev(&d_p, sizeof(float) * heads * n);
        float *hp = host(&h_p, sizeof(float) * heads * n);
        DEV(attn_cuda_scores(ctx, &sh, dq, dk, n, NULL, 0, dlse, dp, n, &e_));
        download(hp, dp, sizeof(float) * heads * n);
        for (int h = 0; h < heads; h++) /* only [0, n) of each row: the rest is the caller's */
            memcpy(probs + (size_t)h * stride, hp + (size_t)h * n, sizeof(float) * n);
    }
}

static void cuda_gather(const float *q, int G, const float *const *k_rows,
                        const float *const *v_rows, const int *n, int stride, int shared, int d,
                        float scale, float *probs, float *out, float *work) {
    int sets = shared ? 1 : G, heads = shared ? G : 1, nonempty = G >= 1;
    for (int s = 0; s < sets && nonempty; s++) nonempty = n[s] >= 1;
    pthread_mutex_lock(&lock);
    int on_device = nonempty && shape_ok(G, 1, d) && device_ready();
    for (int s = 0; on_device && s < sets; s++) {
        size_t r = (size_t)s * stride;
        set_on_device(q + (size_t)s * d, heads, k_rows + r, v_rows + r, n[s], stride, d, scale,
                      probs ? probs + r : NULL, out + (size_t)s * d);
    }
    if (on_device) sync_checked();
    pthread_mutex_unlock(&lock);
    if (!on_device)
        attn_gather(q, G, k_rows, v_rows, n, stride, shared, d, scale, probs, out, work);
}

static void cuda_weighted_rows(const float *p, int G, int ldp, const float *const *v_rows, int n,
                               int d, float *out) {
    pthread_mutex_lock(&lock);
    int on_device = G >= 1 && n >= 1 && device_ready();
    if (on_device) {
        float *dp = upload(&d_p, p, sizeof(float) * ((size_t)(G - 1) * ldp + n));
        const float *vp = pack(&h_v, NULL, 0, v_rows, n, d);
        float *dv = upload(&d_v, vp, sizeof(float) * (size_t)n * d);
        float *dout = dev(&d_o, sizeof(float) * G * d);
        DEV(attn_cuda_weighted(ctx, dp, G, ldp, dv, n, d, dout, &e_));
        download(out, dout, sizeof(float) * G * d);
        sync_checked();
    }
    pthread_mutex_unlock(&lock);
    if (!on_device) attn_weighted_rows(p, G, ldp, v_rows, n, d, out);
}

/* The layer rows on the device for causal_chunk: rows [0, chunk_rows) of the host buffers
 * chunk_k, chunk_v, last used with first position chunk_t0. */
static buf d_ck, d_cv;
static const float *chunk_k, *chunk_v;
static int chunk_rows, chunk_t0 = -1;

static void chunk_on_device(const attn_chunk *c) {
    size_t row = (size_t)c->Hkv * c->d, need = (size_t)c->t0 + c->W, rb = sizeof(float) * row;
    int fresh = c->k != chunk_k || c->v != chunk_v || c->t0 <= chunk_t0;
    if (d_ck.cap < rb * need || d_cv.cap < rb * need) { /* grown: what was there is gone */
        dev(&d_ck, 2 * rb * need), dev(&d_cv, 2 * rb * need);
        fresh = 1;
    }
    size_t from = fresh ? 0 : (size_t)chunk_rows;
    if (need > from) {
        size_t bytes = rb * (need - from);
        DEV(attn_cuda_upload(ctx, (char *)d_ck.p + rb * from, c->k + row * from, bytes, &e_));
        DEV(attn_cuda_upload(ctx, (char *)d_cv.p + rb * from, c->v + row * from, bytes, &e_));
    }
    chunk_k = c->k, chunk_v = c->v, chunk_rows = (int)need, chunk_t0 = c->t0;
    attn_cuda_shape sh = {c->Hq, c->Hkv, c->d, c->scale, ATTN_CUDA_F32};
    size_t nq = (size_t)c->W * c->Hq * c->d, nl = (size_t)c->Hq * c->W * c->ldn;
    float *dq = upload(&d_q, c->q, sizeof(float) * nq), *dout = dev(&d_o, sizeof(float) * nq);
    float *dlse = dev(&d_lse, sizeof(float) * c->W * c->Hq);
    float *dl = dev(&d_p, sizeof(float) * 2 * nl), *dp = dl + nl;
    DEV(attn_cuda_causal_chunk(ctx, &sh, dq, d_ck.p, d_cv.p, c->W, c->t0, c->window, c->ldn, dl,
                               dp, dlse, dout, &e_));
    download(c->out, dout, sizeof(float) * nq);
    download(c->lse, dlse, sizeof(float) * c->W * c->Hq);
    download(c->logits, dl, sizeof(float) * nl);
    download(c->probs, dp, sizeof(float) * nl);
    sync_checked();
}

static void cuda_causal_chunk(const attn_chunk *c) {
    pthread_mutex_lock(&lock);
    int on_device = (c->d == 64 || c->d == 128 || c->d == 256) && device_ready();
    if (on_device) chunk_on_device(c);
    pthread_mutex_unlock(&lock);
    if (!on_device) attn_causal_chunk(c);
}

static void cuda_causal(const float *q, const float *k, const float *v, int n, int Hq, int Hkv,
                        int d, float scale, float *out, float *col_mass) {
    pthread_mutex_lock(&lock);
    int on_device = n >= 1 && shape_ok(Hq, Hkv, d) && device_ready();
    if (on_device) {
        size_t qrow = (size_t)Hq * d, krow = (size_t)Hkv * d;
        attn_cuda_shape sh = {Hq, Hkv, d, scale, ATTN_CUDA_F32};
        float *dq = upload(&d_q, q, sizeof(float) * qrow * n);
        float *dk = upload(&d_k, k, sizeof(float) * krow * n);
        float *dv = upload(&d_v, v, sizeof(float) * krow * n);
        float *dout = dev(&d_o, sizeof(float) * qrow * n);
        float *dlse = dev(&d_lse, sizeof(float) * Hq * n); /* [n, Hq] */
        /* queued back to back on the stream: position i attends keys 0..i */
        for (int i = 0; i < n; i++)
            DEV(attn_cuda_dense(ctx, &sh, dq + i * qrow, dk, dv, i + 1, dout + i * qrow,
                                dlse + (size_t)i * Hq, &e_));
        if (out) download(out, dout, sizeof(float) * qrow * n);
        if (col_mass) {
            float *dcol = dev(&d_col, sizeof(float) * Hkv * n);
            DEV(attn_cuda_col_mass(ctx, &sh, dq, dk, n, dlse, dcol, &e_));
            download(col_mass, dcol, sizeof(float) * Hkv * n);
        }
        sync_checked();
    }
    pthread_mutex_unlock(&lock);
    if (!on_device) attn_causal(q, k, v, n, Hq, Hkv, d, scale, out, col_mass);
}

extern const attn_backend attn_backend_cuda_table; /* listed in attn_backends.c */
const attn_backend attn_backend_cuda_table = {
    .name = "cuda",
    .summary = "CUDA kernels (kernels/cuda), data moved per call: correct, not fast",
    .supports = cuda_supports,
    .dense_heads = cuda_dense_heads,
    .gather = cuda_gather,
    .weighted_rows = cuda_weighted_rows,
    .causal = cuda_causal,
    .causal_chunk = cuda_causal_chunk,
};
