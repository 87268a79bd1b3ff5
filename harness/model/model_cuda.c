/* model_cuda.c: TEMPORARY placeholder so the device dispatch in model.c links until the GPU
 * forward (helper branch fwdgpu) is merged; replaced wholesale by that branch. */
#include "model_cuda.h"

#include <stdio.h>

static rb_status none(rb_err *e) {
    return rb_fail(e, RB_EINPUT, "--device cuda", "no GPU forward in this build yet");
}
int model_cuda_available(void) { return 0; }
rb_status model_cuda_load(const model *m, model_cuda **out, rb_err *e) { (void)m; *out = NULL; return none(e); }
void model_cuda_destroy(model_cuda *g) { (void)g; }
void model_cuda_describe(const model_cuda *g, char *buf, size_t n) { (void)g; snprintf(buf, n, "none"); }
int64_t model_cuda_weight_bytes(const model_cuda *g) { (void)g; return 0; }
rb_status model_cuda_session_create(model_cuda *g, const model_cache_config *cc, model_cuda_session **out, rb_err *e) { (void)g, (void)cc; *out = NULL; return none(e); }
void model_cuda_session_destroy(model_cuda_session *s) { (void)s; }
rb_status model_cuda_session_forward(model_cuda_session *s, int token, int pos, int prefill, float *logits, int *next, rb_err *e) { (void)s, (void)token, (void)pos, (void)prefill, (void)logits, (void)next; return none(e); }
rb_status model_cuda_session_prefill(model_cuda_session *s, const int32_t *ids, int n, int pos0, float *logits, int *next, rb_err *e) { (void)s, (void)ids, (void)n, (void)pos0, (void)logits, (void)next; return none(e); }
rb_status model_cuda_session_generate(model_cuda_session *s, int first, int pos0, int n, const int32_t *stop, int n_stop, int32_t *out, int *n_out, float *step_ms, rb_err *e) { (void)s, (void)first, (void)pos0, (void)n, (void)stop, (void)n_stop, (void)out, (void)step_ms; *n_out = 0; return none(e); }
rb_status model_cuda_session_qkv(model_cuda_session *s, int il, float *q, float *k, float *v, rb_err *e) { (void)s, (void)il, (void)q, (void)k, (void)v; return none(e); }
int64_t model_cuda_session_layer_kv_bytes(model_cuda_session *s, int il) { (void)s, (void)il; return 0; }
double model_cuda_session_layer_attended(model_cuda_session *s, int il) { (void)s, (void)il; return 0; }
int64_t model_cuda_session_kv_bytes(model_cuda_session *s) { (void)s; return 0; }
int64_t model_cuda_session_meta_bytes(model_cuda_session *s) { (void)s; return 0; }
int64_t model_cuda_session_reserved_bytes(model_cuda_session *s) { (void)s; return 0; }
double model_cuda_session_attended(model_cuda_session *s) { (void)s; return 0; }
double model_cuda_session_last_ms(const model_cuda_session *s) { (void)s; return 0; }
