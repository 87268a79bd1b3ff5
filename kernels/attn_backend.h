/* attn_backend.h: the attention backend table, the one seam between the engine and the
 * attention kernels (as ggml's backend interface: named slots, one table per backend).
 *
 * The stepper (harness/engine/stepper.c), the replay engine and live decode call attention
 * only through a backend; a backend is a `const attn_backend` table with every slot filled.
 * The backends:
 *   "ref"   the plain references of attn_ref.c: double accumulation, obviously right, slow
 *   "cpu"   the fast CPU kernels (attn.c, attn_stream.c, attn_block.c): the default
 *   "cuda"  the CUDA kernels of kernels/cuda/, behind host-pointer wrappers that move the
 *           data every call (correct, not fast): kernels/attn_backend_cuda.c says which
 *           slot runs what where. Listed only in a CUDA build (RB_HAVE_CUDA).
 * kernels/attn_backends.c is the only list. Every slot has the contract of the CPU kernel of
 * the same name in attn.h (layouts, strides, which outputs may be NULL; an output is written
 * only where that kernel writes it) and returns the same numbers as "ref" within the
 * tolerances tests/test_attn_backends.c states. "cpu" is what every number raasbench has
 * published came from: another backend changes results within those tolerances, not bit for
 * bit. Slots take host pointers. Every slot may be called from several threads at once (a
 * device backend serialises inside) and, whatever supports() says, computes the right
 * numbers for any input the CPU kernel accepts (a device backend runs the CPU kernel for
 * what its device cannot do).
 *
 * Not a slot: attn_exp_shift (probabilities from logits the caller already holds in host
 * memory). It is an elementwise map, not attention; a device backend would have to upload
 * the logits to exponentiate them, so the callers keep calling the CPU kernel directly. */
#ifndef ATTN_BACKEND_H
#define ATTN_BACKEND_H

#include "attn_causal_block.h"

/* The shape a call works on: what `supports` decides on. n_keys is the number of keys a
 * dense call attends (or the largest set of a gather); 0 when unknown. */
typedef struct attn_shape {
    int n_q_heads, n_kv_heads, head_dim;
    int n_keys;
} attn_shape;

typedef struct attn_backend {
    const char *name;    /* required: "ref", "cpu", "cuda" */
    const char *summary; /* required: one line */

    /* required: 1 if this backend is usable on this machine now (a GPU backend without a
     * device answers 0) and runs the shape itself; 0 otherwise. A caller that wants the
     * device asks first and picks "cpu" on 0 (the slots would work, on the CPU). */
    int (*supports)(const attn_shape *s);

    /* required: attn_dense_heads (every KV head of a layer, one query position). */
    void (*dense_heads)(const float *q, int Hq, int Hkv, const float *k, const float *v, int n,
                        int d, int ld, float scale, float *logits, float *lse, float *out);
    /* required: attn_gather (one KV head's G query heads over pool rows). work: at least
     * G * stride floats (a backend may ignore it). */
    void (*gather)(const float *q, int G, const float *const *k_rows, const float *const *v_rows,
                   const int *n, int stride, int shared, int d, float scale, float *probs,
                   float *out, float *work);
    /* required: attn_weighted_rows. */
    void (*weighted_rows)(const float *p, int G, int ldp, const float *const *v_rows, int n,
                          int d, float *out);
    /* required: attn_causal (a prompt, every head). */
    void (*causal)(const float *q, const float *k, const float *v, int n, int Hq, int Hkv,
                   int d, float scale, float *out, float *col_mass);
    /* required: attn_causal_chunk (replay's dense reference of W consecutive decode steps
     * as one causal block: logits, probabilities, lse and output; attn_causal_block.h).
     * Its summation order differs from the per-step dense_heads, so replay's reference
     * numbers move within tests/attn_backend_check.h's tolerance (and the replay results
     * within tests/test_engine_reference.c's). A device backend may keep the k, v rows it
     * uploaded for the next call: callers walk a layer's chunks in order of t0 over the same
     * buffers and do not change rows below t0 + W between those calls; a call on the same
     * buffers whose t0 is not later than the previous call's means new contents. */
    void (*causal_chunk)(const attn_chunk *c);
} attn_backend;

/* The registered backends, in display order: ref, cpu, then cuda in a CUDA build. *n
 * receives the count. A backend listed may answer supports() = 0 (cuda without a GPU). */
const attn_backend *const *attn_backend_list(int *n);
/* By name; NULL when unknown. */
const attn_backend *attn_backend_find(const char *name);
/* The default: "cpu". */
const attn_backend *attn_backend_default(void);

#endif
