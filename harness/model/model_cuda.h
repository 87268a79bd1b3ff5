/* model_cuda.h: live decoding of a loaded GGUF model (model.h) on the GPU: the same forward
 * as model_session_forward (gemma3, qwen2, llama; every weight type quant_supported() takes),
 * weights uploaded once in their GGUF formats and dequantized inside the matrix-vector
 * kernels, every layer's KV cache in device pages run by the layer's policy on the device
 * (kernels/cuda/kv_cuda.h), one decode step replayed as a CUDA graph.
 * (harness/model/model_cuda.c with CUDA; without CUDA every call fails with RB_EINPUT "no
 * CUDA in this build" and model_cuda_available() is 0.)
 *
 * Numbers: float32 activations throughout (the CPU fast path rounds activations to 8 bits
 * per block before each product; the GPU does not), keys and values stored as half. Logits
 * agree with the CPU path's within the tolerance tests/test_model_cuda.c states; greedy
 * tokens agree except where the CPU's top two logits are closer than that. */
#ifndef MODEL_CUDA_H
#define MODEL_CUDA_H

#include <stdint.h>

#include "model.h"
#include "rb.h"

/* 1 when this build has CUDA and a usable device is present. */
int model_cuda_available(void);

typedef struct model_cuda model_cuda;

/* Upload m's weights to device 0. RB_EINPUT "--device cuda: no CUDA in this build" or "...:
 * no usable CUDA device" when there is none (the CLI turns it into exit 2); RB_EINPUT for a
 * weight type with no device kernel; RB_EINTERNAL when the device runs out of memory. m must
 * outlive the result. */
rb_status model_cuda_load(const model *m, model_cuda **out, rb_err *e);
void model_cuda_destroy(model_cuda *g); /* NULL is a no-op */
/* "NVIDIA H200, 132 SMs, ..." */
void model_cuda_describe(const model_cuda *g, char *buf, size_t n);
/* Device bytes the weights take. */
int64_t model_cuda_weight_bytes(const model_cuda *g);

typedef struct model_cuda_session model_cuda_session;

/* As model_session_create: each layer's role and policy from cc (cells_layer_role,
 * cells_layer_policy), the policies through kvd_layer_from_policy (RB_EINPUT naming a policy
 * the device does not run). cc->measure and cc->backend are not supported on the device
 * (RB_EINPUT saying so when measure is set; backend is ignored). */
rb_status model_cuda_session_create(model_cuda *g, const model_cache_config *cc,
                                    model_cuda_session **out, rb_err *e);
void model_cuda_session_destroy(model_cuda_session *s); /* NULL is a no-op */

/* As model_session_forward (same preconditions, RB_CHECKed): one token at pos. logits
 * (host, [n_vocab], may be NULL) receives the next-token logits; *next (may be NULL) the
 * greedy token (model_argmax's rule, computed on the device). Returns RB_EINTERNAL on a
 * device fault. Synchronises once (to return logits or next). */
rb_status model_cuda_session_forward(model_cuda_session *s, int token, int pos, int prefill,
                                     float *logits, int *next, rb_err *e);

/* As model_session_prefill: prompt tokens ids[0..n) at pos0.. (batched on the device as it
 * sees fit; the KV caches and policy state end as n forwards would leave them). logits and
 * next as in model_cuda_session_forward, for the last token. */
rb_status model_cuda_session_prefill(model_cuda_session *s, const int32_t *ids, int n, int pos0,
                                     float *logits, int *next, rb_err *e);

/* Greedy decode of n tokens with no host round trip between them: token first at pos0 is
 * run, its greedy successor fed back on the device, and so on; out[i] receives the token
 * generated at step i (the greedy successor of position pos0 + i). Stops early after a
 * token in stop[0..n_stop) (written, counted); returns the count in *n_out. One CUDA graph
 * replay per token; the host reads the tokens back in batches. step_ms (may be NULL)
 * receives each token's device time [n] (from CUDA events). */
rb_status model_cuda_session_generate(model_cuda_session *s, int first, int pos0, int n,
                                      const int32_t *stop, int n_stop, int32_t *out, int *n_out,
                                      float *step_ms, rb_err *e);

/* After a forward: post-RoPE q [Hq, d], k and v [Hkv, d] of layer il for the token just run,
 * copied to host buffers (for trace recording; synchronises). */
rb_status model_cuda_session_qkv(model_cuda_session *s, int il, float *q, float *k, float *v,
                                 rb_err *e);

/* Held KV bytes of layer il alone (kvd_layer_kv_bytes; synchronises). */
int64_t model_cuda_session_layer_kv_bytes(model_cuda_session *s, int il);
/* Mean |S_h| over the query heads of layer il at the last decode step (0 before any;
 * synchronises). */
double model_cuda_session_layer_attended(model_cuda_session *s, int il);

/* Resident KV bytes (device pages held, all layers), the policies' device bookkeeping and the
 * pool's reserved device bytes (kvd_stats). */
int64_t model_cuda_session_kv_bytes(model_cuda_session *s);
int64_t model_cuda_session_meta_bytes(model_cuda_session *s);
int64_t model_cuda_session_reserved_bytes(model_cuda_session *s);
/* The mean attended set |S_h| of the last decode step (as model_session_metrics' attended). */
double model_cuda_session_attended(model_cuda_session *s);
/* Device time of the last forward or prefill call (ms), from CUDA events. */
double model_cuda_session_last_ms(const model_cuda_session *s);
/* Whether steps replay CUDA graphs: "on", or "off (<why>)" (RB_CUDA_GRAPHS=0 in the
 * environment when the session was created, or a capture that failed; the session then
 * queues the same launches directly). */
const char *model_cuda_session_graphs(const model_cuda_session *s);

#endif
