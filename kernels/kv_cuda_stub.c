/* kv_cuda_stub.c: the kv_cuda.h API in builds without CUDA: every call fails with "no CUDA
 * in this build" (kvd_layer_from_policy, which needs no GPU, is policies/kv_device.c). With
 * CUDA the real code is kernels/cuda/kv_cuda.cu and this file compiles to nothing. */
#include "cuda/kv_cuda.h"

#ifndef RB_HAVE_CUDA
#include <string.h>

static rb_status no_cuda(rb_err *e) {
    return rb_fail(e, RB_EINTERNAL, "kv_cuda", "no CUDA in this build");
}

rb_status kvd_create(attn_cuda *c, const kvd_config *cfg, kvd_cache **out, rb_err *e) {
    (void)c, (void)cfg;
    if (out) *out = NULL;
    return no_cuda(e);
}

void kvd_destroy(kvd_cache *kc) { (void)kc; }

rb_status kvd_reserve(kvd_cache *kc, int tokens, rb_err *e) {
    (void)kc, (void)tokens;
    return no_cuda(e);
}

void kvd_step(kvd_cache *kc, int il, int prefill, const int *pos_dev, const float *q,
              const float *k, const float *v, float *out) {
    (void)kc, (void)il, (void)prefill, (void)pos_dev, (void)q, (void)k, (void)v, (void)out;
}

rb_status kvd_sync(kvd_cache *kc, rb_err *e) {
    (void)kc;
    return no_cuda(e);
}

rb_status kvd_stats_get(kvd_cache *kc, kvd_stats *out, rb_err *e) {
    (void)kc;
    if (out) memset(out, 0, sizeof *out);
    return no_cuda(e);
}

int64_t kvd_layer_kv_bytes(kvd_cache *kc, int il) {
    (void)kc, (void)il;
    return -1;
}

int kvd_selection(kvd_cache *kc, int il, int h, int32_t *pos, int cap) {
    (void)kc, (void)il, (void)h, (void)pos, (void)cap;
    return -1;
}
#else
typedef int kv_cuda_stub_empty; /* ISO C forbids an empty translation unit */
#endif
