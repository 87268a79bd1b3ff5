/* model.h: live decoding of GGUF transformer models (gemma3, qwen2, llama) on the CPU, one
 * token at a time (the prompt in blocks, bit-identical), with every layer's KV cache managed
 * by a policy through a stepper.
 *
 * A model (weights, mmap'd, and hyperparameters from the GGUF metadata) is shared by any
 * number of sessions; a session is one sequence being decoded: its own per-layer steppers
 * (its own KV cache), its own scratch. Teacher-forced comparisons run several sessions of
 * one model side by side, fed the same tokens. */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#include "attn_backend.h"
#include "cells.h"
#include "gguf.h"
#include "policy.h"
#include "quant.h"
#include "rb.h"

#define MODEL_MAX_LAYERS 256

typedef enum { MODEL_ARCH_GEMMA3 = 0, MODEL_ARCH_QWEN2 = 1, MODEL_ARCH_LLAMA = 2 } model_arch;

typedef struct model_hparams {
    model_arch arch;
    char arch_name[32];
    char name[128];       /* general.name, or the file's base name */
    int n_layers, n_embd, n_ff, n_vocab;
    int n_q_heads, n_kv_heads, head_dim; /* head_dim = key_length = value_length */
    int n_ctx_train;
    float rms_eps;
    float attn_scale;     /* <arch>.attention.scale if present, else 1/sqrt(head_dim) */
    float final_softcap;  /* 0 = none */
    int rope_neox;        /* 1: pairs (i, i + d/2) (gemma3, qwen2); 0: pairs (2i, 2i+1) */
    float rope_base[MODEL_MAX_LAYERS];   /* per layer: gemma3 local layers use 10000 */
    int sliding_window[MODEL_MAX_LAYERS]; /* per layer, 0 = global */
} model_hparams;

typedef struct model model;

/* Open a GGUF file and check it: architecture supported, hyperparameters present and
 * coherent (heads divide, n_layers <= MODEL_MAX_LAYERS), every tensor the forward needs
 * present with the expected shape and a supported type. Bad files fail with RB_EINPUT naming
 * the key or tensor. n_threads: matrix-vector threads (<= 0: all cores). */
rb_status model_load(const char *path, int n_threads, model **out, rb_err *e);
void model_destroy(model *m); /* NULL is a no-op */
const model_hparams *model_get_hparams(const model *m);
/* Where sessions run. A session on the GPU runs the same forward (harness/model/model_cuda.h:
 * weights uploaded once, the KV cache in device pages, each layer's policy on the device);
 * the session calls below behave the same on either, except where they say otherwise. */
typedef enum { MODEL_DEVICE_CPU = 0, MODEL_DEVICE_CUDA = 1 } model_device;
/* "cpu" or "cuda" (RB_EINPUT naming --device otherwise). */
rb_status model_device_parse(const char *name, model_device *out, rb_err *e);
const char *model_device_name(model_device d);
/* Make sessions on device d possible: for cuda, upload the weights (once; later calls are
 * no-ops). RB_EINPUT "--device cuda: ..." when this build has no CUDA or no device is usable,
 * or a weight type has no device kernel. Not thread-safe: call before creating sessions. */
rb_status model_use_device(model *m, model_device d, rb_err *e);
/* "NVIDIA H200, ..." for cuda (after model_use_device), "cpu" otherwise. */
void model_device_describe(const model *m, model_device d, char *buf, size_t n);

/* exact=1: every matrix-vector product through quant_matvec_ref (dequantized weights, double
 * accumulation, activations unquantized): slow, for checking the forward against an exact
 * float64 reference without the quantized-activation noise of the fast path. */
void model_set_exact(model *m, int exact);
const gguf_file *model_gguf(const model *m);
/* Weight bytes one decode step reads: every layer's matrices and the output matrix, in their
 * stored formats (norms, biases and the one embedding row aside). */
int64_t model_weight_bytes_per_token(const model *m);
int model_threads(const model *m);
/* RoPE details beyond the hyperparameters, for the GPU forward (model_cuda.c): the linear
 * scaling's position factor (positions times this in global layers; 1 = none) and the llama 3
 * frequency factors [head_dim / 2] (NULL when the file has none). */
float model_rope_pos_scale(const model *m);
const float *model_rope_freq_factors(const model *m);

/* ---- sessions ---- */

/* How one session manages its caches: each layer's role comes from cells_layer_role
 * (sliding-window layers run `window` with L = the window, the first dense_layers layers run
 * `dense`, every other layer runs the cell's policy at the cell's budget). max_tokens bounds
 * every position (prompt + generated). */
typedef struct model_cache_config {
    const cell *cell;            /* the policy, its parameters and budget */
    const attn_backend *backend; /* attention of every layer (NULL: attn_backend_default()) */
    int page_size, dense_layers, max_tokens;
    uint64_t seed;
    int measure; /* 1: keep a full copy of every global layer's keys and values and score
                  * each decode step against dense attention (metrics.h); CPU only */
    model_device device; /* MODEL_DEVICE_CPU (0) or MODEL_DEVICE_CUDA (model_use_device
                          * first); on cuda, backend is ignored and measure refused */
} model_cache_config;

typedef struct model_session model_session;

/* Fails (RB_EINPUT) as the policy's create fails (impossible budget), or when a policy the
 * layers need (window, dense) is not registered. */
rb_status model_session_create(const model *m, const model_cache_config *cc,
                               model_session **out, rb_err *e);
void model_session_destroy(model_session *s); /* NULL is a no-op */
model_device model_session_device(const model_session *s);
/* RB_OK, or the first device fault any call of this session met (a GPU session's calls
 * cannot fail on the CPU; on the device they record the fault here, and the calls after it do
 * nothing). Callers check it after each step they run. */
rb_status model_session_status(const model_session *s, rb_err *e);

/* Greedy decode of n tokens: token `first` at pos0, then each step's greedy choice
 * (model_argmax) fed back; out[i] is the token chosen after position pos0 + i. Stops after a
 * token in stop[0..n_stop) (written and counted); *n_out receives the count. On the GPU the
 * choice is made on the device and one CUDA graph replay runs each token with no host round
 * trip; step_ns (may be NULL) receives each step's time [n]: device time on the GPU (CUDA
 * events), wall time on the CPU. */
rb_status model_session_generate(model_session *s, int first, int pos0, int n,
                                 const int32_t *stop, int n_stop, int32_t *out, int *n_out,
                                 int64_t *step_ns, rb_err *e);

/* Run one token at position pos (0, 1, ... with no gaps). prefill=1: a prompt token,
 * attended densely (stepper_prefill_token), except in sliding-window layers once pos >=
 * the window, where it is a step of the window policy; prefill=0: a decode step
 * (stepper_step); every prefill token must come before the first decode step. logits [n_vocab] (may be NULL to
 * skip the output projection) receives the next-token logits. Requires 0 <= token <
 * n_vocab and pos < max_tokens (checked: RB_CHECK). */
void model_session_forward(model_session *s, int token, int pos, int prefill, float *logits);

/* Prompt tokens per block of model_session_prefill. Measured on Gemma 3 270M Q4_K_M, 300
 * prompt tokens, 1 thread (process CPU time, this shared 2-core Xeon): blocks of 16, 32 and
 * 64 within 2% of each other (the products are compute-bound from 16 on); 32 keeps the
 * block buffers small ([32, n_ff] floats twice) for 7B-class models. */
#define MODEL_PREFILL_BLOCK 32

/* Run prompt tokens ids[0..n) at positions pos0 .. pos0 + n - 1: the same results, bit for
 * bit, as n calls of model_session_forward(s, ids[i], pos0 + i, 1, ...) with logits only
 * after the last (logits: NULL or [n_vocab]). KV caches, policy state, measured copies,
 * model_session_qkv (of the last token) and the logits are identical; only the timings
 * differ. The matrix products run over blocks of MODEL_PREFILL_BLOCK tokens
 * (quant_matmat), so the weights are read once per block instead of once per token;
 * attention still runs token by token in position order. Requires n >= 1, every id in
 * [0, n_vocab) and pos0 + n <= max_tokens (RB_CHECK), and pos0 the session's next position
 * with no decode step run yet. model_session_last_timing covers the whole call. */
void model_session_prefill(model_session *s, const int32_t *ids, int n, int pos0, float *logits);

/* After a forward: the post-RoPE query [n_q_heads, head_dim], key and value
 * [n_kv_heads, head_dim] of layer il for the token just run (for trace recording). */
void model_session_qkv(const model_session *s, int il, const float **q, const float **k,
                       const float **v);

/* Timing of the last forward (ns): matrix-vector products, attention plus policy (the
 * steppers), everything else (norms, RoPE, activations, embedding). On the GPU only
 * total_ns is measured (device time between CUDA events); the parts are -1. */
typedef struct model_timing {
    int64_t total_ns, matvec_ns, attn_ns, other_ns;
} model_timing;
model_timing model_session_last_timing(const model_session *s);

/* A prompt run once and handed to any number of sessions (eval: one prefill per task, shared
 * by every cell). The prompt's attention is dense in every policy, so a session that loads
 * a captured prompt continues exactly as if it had run the prompt itself. */
typedef struct model_prompt {
    int n;              /* prompt tokens */
    int n_layers, qd, kd;
    float *q, *k, *v;   /* [n_layers, n, qd or kd] post-RoPE, as the attention saw them */
    float *logits;      /* [n_vocab] next-token logits after the last prompt token */
    int32_t *ids;       /* [n] the prompt's tokens (a policy reading separators needs them) */
} model_prompt;

/* Run ids[0..n) through a fresh dense CPU session and capture the prompt. max_tokens bounds the
 * capture session only (n < max_tokens). */
rb_status model_prompt_capture(const model *m, const int32_t *ids, int n, model_prompt *out,
                               rb_err *e);
void model_prompt_free(model_prompt *p);
/* Load a captured prompt into a fresh session (no token run yet): each layer's policy gets
 * the prompt as if the session had run it; the next forward is position p->n. CPU sessions
 * only: a GPU session runs its prompt itself (model_session_prefill). */
void model_session_load_prompt(model_session *s, const model_prompt *p);

/* Resident KV bytes (fp16 elements) and policy bookkeeping bytes over all layers. On the GPU:
 * device pages held (kv_cuda.h), synchronising. */
int64_t model_session_kv_bytes(const model_session *s);
/* Resident KV bytes of layer il alone. */
int64_t model_session_layer_kv_bytes(const model_session *s, int il);
int64_t model_session_meta_bytes(const model_session *s);
/* With measure set, the last decode step of layer il scored by metrics_score_step against
 * the dense attention of this session's own q and keys (docs/DESIGN.md §4), as means over query
 * heads. Sliding-window layers attend their whole window: recall 1, out_err 0. recall and
 * out_err are NaN without measure or before any decode step; attended (metrics_attended)
 * is the mean |S_h| of the last decode step (0 before any) with or without measure. The measuring is excluded
 * from the timings. */
void model_session_metrics(const model_session *s, int il, float *recall, float *out_err,
                           float *attended);

/* ---- sampling ---- */

/* Greedy: the lowest index of the maximum. */
int model_argmax(const float *logits, int n);
/* Temperature sampling from softmax(logits / temperature) with a uniform u in [0, 1). */
int model_sample(const float *logits, int n, double temperature, double u);
/* KL(p || q) of the softmax distributions of logits a (p) and b (q), in nats (double
 * accumulation); 0 when a == b. */
double model_kl(const float *a, const float *b, int n);

#endif
