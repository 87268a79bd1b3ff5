/* attn_backends.c: the backend tables and the only list of them (attn_backend.h). */
#include <string.h>

#include "attn.h"
#include "attn_backend.h"

static int cpu_supports(const attn_shape *s) {
    return s->n_q_heads > 0 && s->n_kv_heads > 0 && s->n_q_heads % s->n_kv_heads == 0 &&
           s->head_dim > 0;
}

static void ref_gather(const float *q, int G, const float *const *k_rows,
                       const float *const *v_rows, const int *n, int stride, int shared, int d,
                       float scale, float *probs, float *out, float *work) {
    (void)work;
    attn_gather_ref(q, G, k_rows, v_rows, n, stride, shared, d, scale, probs, out);
}

/* attn_dense_ref per KV head: the reference has no all-heads form. */
static void ref_dense_heads(const float *q, int Hq, int Hkv, const float *k, const float *v,
                            int n, int d, int ld, float scale, float *logits, float *lse,
                            float *out) {
    int G = Hq / Hkv;
    for (int g = 0; g < Hkv; g++)
        attn_dense_ref(q + (size_t)g * G * d, G, k + (size_t)g * d, v + (size_t)g * d, n, d, ld,
                       scale, logits ? logits + (size_t)g * G * n : NULL,
                       lse ? lse + (size_t)g * G : NULL, out ? out + (size_t)g * G * d : NULL);
}

static const attn_backend backend_ref = {
    .name = "ref",
    .summary = "plain references in double (attn_ref.c): obviously right, slow",
    .supports = cpu_supports,
    .dense_heads = ref_dense_heads,
    .gather = ref_gather,
    .weighted_rows = attn_weighted_rows_ref,
    .causal = attn_causal_ref,
    .causal_chunk = attn_causal_chunk_ref,
};

static const attn_backend backend_cpu = {
    .name = "cpu",
    .summary = "fast CPU kernels (AVX2 + FMA, one thread per call; replay's chunk reference on OpenBLAS sgemm)",
    .supports = cpu_supports,
    .dense_heads = attn_dense_heads,
    .gather = attn_gather,
    .weighted_rows = attn_weighted_rows,
    .causal = attn_causal,
    .causal_chunk = attn_causal_chunk,
};

#ifdef RB_HAVE_CUDA
extern const attn_backend attn_backend_cuda_table; /* attn_backend_cuda.c */
#endif

static const attn_backend *const backends[] = {
    &backend_ref,
    &backend_cpu,
#ifdef RB_HAVE_CUDA
    &attn_backend_cuda_table,
#endif
};

const attn_backend *const *attn_backend_list(int *n) {
    *n = (int)(sizeof backends / sizeof backends[0]);
    return backends;
}

const attn_backend *attn_backend_find(const char *name) {
    int n;
    const attn_backend *const *l = attn_backend_list(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(l[i]->name, name)) return l[i];
    return NULL;
}

const attn_backend *attn_backend_default(void) { return &backend_cpu; }
