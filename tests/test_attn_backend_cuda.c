/* test_attn_backend_cuda.c: the host side of the "cuda" backend table
 * (kernels/attn_backend_cuda.c: packing rows, offsets, which slot calls which device
 * function with which arguments, the CPU fall backs) on any machine, GPU or not.
 *
 * This file defines the whole attn_cuda.h API itself, as an emulated device: "device"
 * memory is host memory whose every block is recorded, and each kernel is the plain
 * computation its header contract describes (dense through attn_dense_ref, double). The
 * linker takes these definitions before the library's (the real kernels or the stub), so
 * the table runs unchanged on top of them. Every call is checked as the real one checks it
 * (shape, n >= 1, alignment) and every pointer range against the blocks allocated, so a
 * slot that hands the device a bad argument or too small a buffer fails here, not first on
 * a GPU. The checks and tolerances are attn_backend_check.h's; on a GPU,
 * test_attn_backends.c runs the same checks on the real device. */
#include "attn_backend_check.h"

#include "attn.h"
#include "cuda/attn_cuda.h"

extern const attn_backend attn_backend_cuda_table; /* kernels/attn_backend_cuda.c */

/* ---- the emulated device ---------------------------------------------------------------- */

struct attn_cuda {
    int unused;
};

enum { MAX_BLOCKS = 64 };
static struct {
    const char *p;
    size_t bytes;
} blocks[MAX_BLOCKS];
static int n_dense, n_scores, n_weighted, n_col_mass, n_copies, n_chunk;

/* [p, p + bytes) lies inside one allocated block. */
static void in_device(const void *p, size_t bytes, const char *what) {
    const char *c = p;
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (blocks[i].p && c >= blocks[i].p && c + bytes <= blocks[i].p + blocks[i].bytes) return;
    TU_ASSERT(0, "%s: %zu bytes at %p are not inside one device block", what, bytes, p);
}

static int shape_ok(const attn_cuda_shape *s) {
    if (!s || s->n_q_heads < 1 || s->n_kv_heads < 1 || s->n_q_heads % s->n_kv_heads) return 0;
    int G = s->n_q_heads / s->n_kv_heads, d = s->head_dim;
    return (G == 1 || G == 2 || G == 4 || G == 8) && (d == 64 || d == 128 || d == 256) &&
           isfinite(s->scale) && s->kv_dtype == ATTN_CUDA_F32; /* the backend sends float32 */
}

static int aligned(const void *p, size_t a) { return p && (uintptr_t)p % a == 0; }

static rb_status refuse(rb_err *e, const char *why) {
    return rb_fail(e, RB_EINPUT, "attn_cuda", "%s", why);
}

int attn_cuda_device_count(void) { return 1; }

rb_status attn_cuda_create(attn_cuda **out, rb_err *e) {
    (void)e;
    *out = rb_calloc(1, sizeof **out);
    return RB_OK;
}

void attn_cuda_destroy(attn_cuda *c) { free(c); }

void attn_cuda_describe(const attn_cuda *c, char *buf, size_t buf_size) {
    (void)c;
    snprintf(buf, buf_size, "emulated device (tests)");
}

rb_status attn_cuda_alloc(attn_cuda *c, size_t bytes, void **dev, rb_err *e) {
    (void)c, (void)e;
    /* 256-byte aligned, as cudaMalloc */
    *dev = aligned_alloc(256, (bytes + 255) / 256 * 256);
    TU_ASSERT(*dev, "emulated alloc of %zu bytes", bytes);
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (!blocks[i].p) {
            blocks[i].p = *dev, blocks[i].bytes = bytes;
            return RB_OK;
        }
    TU_ASSERT(0, "more than %d device blocks live", MAX_BLOCKS);
    return RB_OK;
}

void attn_cuda_free(attn_cuda *c, void *dev) {
    (void)c;
    if (!dev) return;
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (blocks[i].p == dev) blocks[i].p = NULL;
    free(dev);
}

rb_status attn_cuda_upload(attn_cuda *c, void *dev, const void *host, size_t bytes, rb_err *e) {
    (void)c, (void)e;
    in_device(dev, bytes, "upload");
    memcpy(dev, host, bytes);
    n_copies++;
    return RB_OK;
}

rb_status attn_cuda_download(attn_cuda *c, void *host, const void *dev, size_t bytes, rb_err *e) {
    (void)c, (void)e;
    in_device(dev, bytes, "download");
    memcpy(host, dev, bytes);
    n_copies++;
    return RB_OK;
}

rb_status attn_cuda_copy(attn_cuda *c, void *dst, const void *src, size_t bytes, rb_err *e) {
    (void)c, (void)e;
    in_device(dst, bytes, "copy"), in_device(src, bytes, "copy");
    memmove(dst, src, bytes);
    return RB_OK;
}

rb_status attn_cuda_fill_random(attn_cuda *c, void *dev, size_t count, attn_cuda_dtype dtype,
                                uint64_t seed, rb_err *e) {
    (void)c, (void)dev, (void)count, (void)dtype, (void)seed;
    return refuse(e, "not emulated");
}

rb_status attn_cuda_dense(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                          const void *v, int n, float *o, float *lse, rb_err *e) {
    if (!c || !shape_ok(s) || n < 1) return refuse(e, "dense: bad context, shape or n");
    if (!aligned(q, 16) || !aligned(k, 16) || !aligned(v, 16) || !aligned(o, 4) || !aligned(lse, 4))
        return refuse(e, "dense: NULL or misaligned pointer");
    int Hq = s->n_q_heads, Hkv = s->n_kv_heads, d = s->head_dim, G = Hq / Hkv;
    size_t kv = sizeof(float) * (size_t)n * Hkv * d;
    in_device(q, sizeof(float) * Hq * d, "dense q"), in_device(k, kv, "dense k");
    in_device(v, kv, "dense v"), in_device(o, sizeof(float) * Hq * d, "dense o");
    in_device(lse, sizeof(float) * Hq, "dense lse");
    for (int h = 0; h < Hkv; h++)
        attn_dense_ref(q + (size_t)h * G * d, G, (const float *)k + (size_t)h * d,
                       (const float *)v + (size_t)h * d, n, d, Hkv * d, s->scale, NULL,
                       lse + (size_t)h * G, o + (size_t)h * G * d);
    n_dense++;
    return RB_OK;
}

rb_status attn_cuda_gather(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           const void *v, int n, const int32_t *idx, int L, float *o, float *lse,
                           rb_err *e) {
    (void)c, (void)s, (void)q, (void)k, (void)v, (void)n, (void)idx, (void)L, (void)o, (void)lse;
    return refuse(e, "gather: not emulated (the backend packs sets and runs dense)");
}

static double dot(const float *a, const float *b, int d) {
    double x = 0;
    for (int i = 0; i < d; i++) x += (double)a[i] * b[i];
    return x;
}

rb_status attn_cuda_scores(attn_cuda *c, const attn_cuda_shape *s, const float *q, const void *k,
                           int n, const int32_t *idx, int L, const float *lse, float *p, int ldp,
                           rb_err *e) {
    int len = idx ? L : n;
    if (!c || !shape_ok(s) || n < 1 || len < 1 || ldp < len)
        return refuse(e, "scores: bad context, shape, n, L or ldp");
    if (!aligned(q, 4) || !aligned(k, 4) || !aligned(p, 4))
        return refuse(e, "scores: NULL or misaligned pointer");
    int Hq = s->n_q_heads, Hkv = s->n_kv_heads, d = s->head_dim, G = Hq / Hkv;
    in_device(q, sizeof(float) * Hq * d, "scores q");
    in_device(k, sizeof(float) * (size_t)n * Hkv * d, "scores k");
    in_device(p, sizeof(float) * ((size_t)(Hq - 1) * ldp + len), "scores p");
    if (lse) in_device(lse, sizeof(float) * Hq, "scores lse");
    if (idx) in_device(idx, sizeof(int32_t) * (size_t)Hkv * L, "scores idx");
    for (int h = 0; h < Hq; h++)
        for (int j = 0; j < len; j++) {
            int t = idx ? idx[(size_t)(h / G) * L + j] : j;
            TU_ASSERT(t >= 0 && t < n, "scores: index %d outside [0, %d)", t, n);
            const float *kt = (const float *)k + ((size_t)t * Hkv + h / G) * d;
            double x = s->scale * dot(q + (size_t)h * d, kt, d);
            p[(size_t)h * ldp + j] = (float)(lse ? exp(x - lse[h]) : x);
        }
    n_scores++;
    return RB_OK;
}

rb_status attn_cuda_weighted(attn_cuda *c, const float *p, int n_rows, int ldp, const float *v,
                             int n, int d, float *o, rb_err *e) {
    if (!c || n_rows < 1 || n < 0 || d < 1 || ldp < n)
        return refuse(e, "weighted: bad context, rows, n, d or ldp");
    in_device(o, sizeof(float) * n_rows * d, "weighted o");
    if (n > 0) {
        in_device(p, sizeof(float) * ((size_t)(n_rows - 1) * ldp + n), "weighted p");
        in_device(v, sizeof(float) * (size_t)n * d, "weighted v");
    }
    for (int r = 0; r < n_rows; r++)
        for (int col = 0; col < d; col++) {
            double a = 0;
            for (int j = 0; j < n; j++)
                a += (double)p[(size_t)r * ldp + j] * v[(size_t)j * d + col];
            o[(size_t)r * d + col] = (float)a;
        }
    n_weighted++;
    return RB_OK;
}

rb_status attn_cuda_col_mass(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                             const void *k, int n, const float *lse, float *col, rb_err *e) {
    if (!c || !shape_ok(s) || n < 1) return refuse(e, "col_mass: bad context, shape or n");
    int Hq = s->n_q_heads, Hkv = s->n_kv_heads, d = s->head_dim, G = Hq / Hkv;
    in_device(q, sizeof(float) * (size_t)n * Hq * d, "col_mass q");
    in_device(k, sizeof(float) * (size_t)n * Hkv * d, "col_mass k");
    in_device(lse, sizeof(float) * (size_t)n * Hq, "col_mass lse");
    in_device(col, sizeof(float) * (size_t)Hkv * n, "col_mass col");
    for (int kv = 0; kv < Hkv; kv++)
        for (int j = 0; j < n; j++) {
            const float *kj = (const float *)k + ((size_t)j * Hkv + kv) * d;
            double acc = 0;
            for (int i = j; i < n; i++)
                for (int g = 0; g < G; g++) {
                    size_t row = (size_t)i * Hq + kv * G + g;
                    acc += exp(s->scale * dot(q + row * d, kj, d) - lse[row]);
                }
            col[(size_t)kv * n + j] = (float)acc;
        }
    n_col_mass++;
    return RB_OK;
}

rb_status attn_cuda_sync(attn_cuda *c, rb_err *e) {
    (void)e;
    return c ? RB_OK : refuse(e, "sync: no context");
}

int attn_cuda_max_run(const attn_cuda *c, const attn_cuda_shape *s, int len) {
    (void)c, (void)s;
    return len;
}

attn_cuda_tuning attn_cuda_tuning_default(void) {
    attn_cuda_tuning t = ATTN_CUDA_TUNING_DEFAULT;
    return t;
}

rb_status attn_cuda_tune(attn_cuda *c, const attn_cuda_tuning *t, rb_err *e) {
    (void)c, (void)t;
    return refuse(e, "not emulated");
}

rb_status attn_cuda_mark(attn_cuda *c, int slot, rb_err *e) {
    (void)c, (void)slot;
    return refuse(e, "not emulated");
}

rb_status attn_cuda_elapsed_ms(attn_cuda *c, int from, int to, float *ms, rb_err *e) {
    (void)c, (void)from, (void)to, (void)ms;
    return refuse(e, "not emulated");
}

rb_status attn_cuda_spin(attn_cuda *c, int us, rb_err *e) {
    (void)c, (void)us;
    return refuse(e, "not emulated");
}

rb_status attn_cuda_causal_chunk(attn_cuda *c, const attn_cuda_shape *s, const float *q,
                                 const void *k, const void *v, int W, int t0, int window,
                                 int ldn, float *logits, float *probs, float *lse, float *out,
                                 rb_err *e) {
    if (!c || !s || s->n_q_heads < 1 || s->n_kv_heads < 1 || s->n_q_heads % s->n_kv_heads ||
        (s->head_dim != 64 && s->head_dim != 128 && s->head_dim != 256) ||
        s->kv_dtype != ATTN_CUDA_F32)
        return refuse(e, "causal_chunk: bad context or shape");
    if (W < 1 || t0 < 0 || window < 0 || (logits && ldn < t0 + W) || (probs && !logits))
        return refuse(e, "causal_chunk: bad W, t0, window or ldn");
    int Hq = s->n_q_heads, Hkv = s->n_kv_heads, d = s->head_dim, G = Hq / Hkv, N = t0 + W;
    size_t krow = (size_t)Hkv * d, nl = (size_t)Hq * W * ldn;
    in_device(q, sizeof(float) * W * Hq * d, "causal_chunk q");
    in_device(k, sizeof(float) * krow * N, "causal_chunk k");
    in_device(v, sizeof(float) * krow * N, "causal_chunk v");
    in_device(lse, sizeof(float) * W * Hq, "causal_chunk lse");
    in_device(out, sizeof(float) * W * Hq * d, "causal_chunk out");
    if (logits) in_device(logits, sizeof(float) * nl, "causal_chunk logits");
    if (probs) in_device(probs, sizeof(float) * nl, "causal_chunk probs");
    float *lg = rb_malloc(sizeof(float) * (size_t)N);
    for (int w = 0; w < W; w++) {
        int t = t0 + w, j0 = window > 0 && t + 1 > window ? t + 1 - window : 0;
        for (int h = 0; h < Hq; h++) {
            size_t at = (size_t)w * Hq + h, row = ((size_t)h * W + w) * ldn;
            attn_dense_ref(q + at * d, 1, (const float *)k + (size_t)j0 * krow + (size_t)(h / G) * d,
                           (const float *)v + (size_t)j0 * krow + (size_t)(h / G) * d, t + 1 - j0,
                           d, (int)krow, s->scale, lg, lse + at, out + at * d);
            for (int j = j0; j <= t; j++) {
                if (logits) logits[row + j] = lg[j - j0];
                if (probs) probs[row + j] = (float)exp((double)lg[j - j0] - lse[at]);
            }
        }
    }
    free(lg);
    n_chunk++;
    return RB_OK;
}

/* ---- the test ------------------------------------------------------------------------- */

int main(void) {
    const attn_backend *be = &attn_backend_cuda_table, *ref = attn_backend_find("ref");
    TU_ASSERT(ref && !strcmp(be->name, "cuda"), "the cuda table and ref");

    int skipped, run = check_backend(be, ref, &skipped);
    TU_ASSERT(run == 12 && skipped == 0, "every shape on the (emulated) device: %d run, %d skipped",
              run, skipped);
    TU_ASSERT(n_dense > 0 && n_scores > 0 && n_weighted > 0 && n_col_mass > 0 && n_chunk > 0,
              "every device kernel used: %d dense, %d scores, %d weighted, %d col_mass, %d "
              "causal_chunk", n_dense, n_scores, n_weighted, n_col_mass, n_chunk);
    /* causal_chunk keeps a layer's rows on the device across a layer's chunks: a second
     * chunk on the same buffers must see the rows the first uploaded and the new ones,
     * and a call on new contents at an earlier t0 must not reuse them. */
    {
        int Hq = 4, Hkv = 2, d = 64, W = 8, N = 40, ldn = N;
        size_t kn = (size_t)N * Hkv * d, nl = (size_t)Hq * W * ldn;
        float *q = randn((size_t)W * Hq * d), *k = randn(kn), *v = randn(kn);
        float *lg[2], *pb[2], *lse[2], *out[2];
        for (int i = 0; i < 2; i++) {
            lg[i] = rb_calloc(nl, 4), pb[i] = rb_calloc(nl, 4);
            lse[i] = rb_calloc((size_t)W * Hq, 4), out[i] = rb_calloc((size_t)W * Hq * d, 4);
        }
        for (int round = 0; round < 2; round++) {
            if (round) /* the buffers' contents change: the next layer in the same memory */
                for (size_t i = 0; i < kn; i++) k[i] = -k[i], v[i] = 0.5f * v[i];
            for (int t0 = 16; t0 <= 32; t0 += 16) {
                for (int i = 0; i < 2; i++) {
                    attn_chunk c = {.q = q, .k = k, .v = v, .W = W, .t0 = t0, .Hq = Hq,
                                    .Hkv = Hkv, .d = d, .scale = 0.125f, .ldn = ldn,
                                    .logits = lg[i], .probs = pb[i], .lse = lse[i],
                                    .out = out[i], .work = NULL};
                    (i ? be : ref)->causal_chunk(&c);
                }
                close_enough("cuda", "chunk after chunk lse", lse[1], lse[0], (size_t)W * Hq, 1);
                close_enough("cuda", "chunk after chunk out", out[1], out[0],
                             (size_t)W * Hq * d, 4);
            }
        }
        for (int i = 0; i < 2; i++) free(lg[i]), free(pb[i]), free(lse[i]), free(out[i]);
        free(q), free(k), free(v);
    }

    /* What the device cannot do goes to the CPU kernels, and is still right (weighted_rows
     * has no shape limit: it stays on the device). */
    int device_attention = n_dense + n_scores + n_col_mass;
    attn_shape g3 = {.n_q_heads = 6, .n_kv_heads = 2, .head_dim = 64}, d96 = g3;
    d96.n_q_heads = 4, d96.head_dim = 96;
    TU_ASSERT(!be->supports(&g3) && !be->supports(&d96), "G = 3 and d = 96 are not supported");
    test_dense(be, ref, 6, 2, 64, 100, 0);
    test_dense(be, ref, 4, 2, 96, 100, 32);
    test_gather(be, ref, 3, 64, 100, 0, 0);
    test_causal(be, ref, 4, 2, 96, 20);
    TU_ASSERT(n_dense + n_scores + n_col_mass == device_attention,
              "unsupported shapes ran on the CPU (%d device calls)",
              n_dense + n_scores + n_col_mass - device_attention);
    printf("# cuda table on an emulated device: %d shapes; %d dense, %d scores, %d weighted, "
           "%d col_mass calls; largest error / tolerance %.3g\n",
           run, n_dense, n_scores, n_weighted, n_col_mass, worst);
    return tu_done("test_attn_backend_cuda");
}
