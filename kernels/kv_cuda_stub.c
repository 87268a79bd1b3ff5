/* kv_cuda_stub.c: PLACEHOLDER on the fwdgpu branch only, so model_cuda.c links before the
 * device KV cache (helper kvgpu: kernels/cuda/kv_cuda.cu, policies/kv_device.c and their own
 * kernels/kv_cuda_stub.c) is merged: every call fails with "no device KV cache in this
 * build", in every build. On merge, take kvgpu's version of this file. */
#include <string.h>

#include "cuda/kv_cuda.h"

static rb_status no_kv(rb_err *e) {
    return rb_fail(e, RB_EINTERNAL, "kv_cuda", "no device KV cache in this build");
}

rb_status kvd_layer_from_policy(const struct policy_ops *ops, const struct policy_params *params,
                                int budget, kvd_layer *out, rb_err *e) {
    (void)ops, (void)params, (void)budget;
    if (out) memset(out, 0, sizeof *out);
    return no_kv(e);
}

rb_status kvd_create(attn_cuda *c, const kvd_config *cfg, kvd_cache **out, rb_err *e) {
    (void)c, (void)cfg;
    if (out) *out = NULL;
    return no_kv(e);
}

void kvd_destroy(kvd_cache *kc) { (void)kc; }

rb_status kvd_reserve(kvd_cache *kc, int tokens, rb_err *e) {
    (void)kc, (void)tokens;
    return no_kv(e);
}

void kvd_step(kvd_cache *kc, int il, int prefill, const int *pos_dev, const float *q,
              const float *k, const float *v, float *out) {
    (void)kc, (void)il, (void)prefill, (void)pos_dev, (void)q, (void)k, (void)v, (void)out;
}

rb_status kvd_sync(kvd_cache *kc, rb_err *e) {
    (void)kc;
    return no_kv(e);
}

rb_status kvd_stats_get(kvd_cache *kc, kvd_stats *out, rb_err *e) {
    (void)kc;
    if (out) memset(out, 0, sizeof *out);
    return no_kv(e);
}

int64_t kvd_layer_kv_bytes(kvd_cache *kc, int il) {
    (void)kc, (void)il;
    return -1;
}

int kvd_selection(kvd_cache *kc, int il, int h, int32_t *pos, int cap) {
    (void)kc, (void)il, (void)h, (void)pos, (void)cap;
    return -1;
}
