/* attn.h: single-query-position attention kernels for decode steps.
 *
 * All functions handle one KV head and the G query heads that share it (grouped-query
 * attention): q [G, d] rows, scale = attn_scale. Logits are scale * q.k; probabilities are
 * their softmax over the attended keys. Every kernel has a plain reference (attn_*_ref in
 * attn_ref.c: double accumulation, obviously right) and a fast version (attn.c) tested
 * against it in tests/test_attn.c with the tolerance stated there. Kernels are
 * single-threaded: callers parallelise over layers, heads and cells. */
#ifndef ATTN_H
#define ATTN_H

/* Dense attention over n contiguous keys/values: k, v rows of d floats, consecutive rows
 * `ld` floats apart (ld >= d; ld = n_kv_heads * d for token-major layer buffers).
 * Outputs (each may be NULL when not wanted):
 *   logits [G, n]   (row stride n) scaled logits
 *   lse    [G]      log-sum-exp of each row's logits
 *   out    [G, d]   sum_j p_j v_j
 * `work` is scratch of at least G * n floats when logits is NULL (may be NULL otherwise). */
void attn_dense_ref(const float *q, int G, const float *k, const float *v, int n, int d, int ld,
                    float scale, float *logits, float *lse, float *out);
void attn_dense(const float *q, int G, const float *k, const float *v, int n, int d, int ld,
                float scale, float *logits, float *lse, float *out, float *work);

/* attn_dense for every KV head of a layer in one pass (added by the attn branch): q [Hq, d]
 * (query head h uses KV head h / (Hq / Hkv)); k, v token rows `ld` floats apart (ld >=
 * Hkv * d) holding the Hkv heads side by side (head g at + g * d); logits [Hq, n], lse [Hq],
 * out [Hq, d], each may be NULL. Same results as attn_dense called per KV head g with
 * q + g*G*d, k + g*d, v + g*d, ld, logits + g*G*n, lse + g*G, out + g*G*d (G = Hq / Hkv),
 * but every token row is read once, contiguously: a per-head call reads a strided column,
 * several times slower from memory when Hkv > 1 (kernels/bench_attn.c). Needs no work. */
void attn_dense_heads(const float *q, int Hq, int Hkv, const float *k, const float *v, int n,
                      int d, int ld, float scale, float *logits, float *lse, float *out);

/* Probabilities from logits: out[i] = exp(x[i] - shift) for i in [0, n) (vectorised exp,
 * ~1 ulp; exactly 0 below e^-87). The reference is expf per element. */
void attn_exp_shift_ref(const float *x, float shift, int n, float *out);
void attn_exp_shift(const float *x, float shift, int n, float *out);

/* Attention over a gathered set: key/value rows given by pointers (pool rows).
 * Either every query head has its own set (q row g attends k_rows[g*stride .. +n[g]]) or,
 * with shared=1, all G heads attend the set of row 0.
 * probs [G, stride] receives each head's softmax over its set (may be NULL);
 * out [G, d] the attention output. `work` scratch: at least G * stride floats. */
void attn_gather_ref(const float *q, int G, const float *const *k_rows,
                     const float *const *v_rows, const int *n, int stride, int shared, int d,
                     float scale, float *probs, float *out);
void attn_gather(const float *q, int G, const float *const *k_rows, const float *const *v_rows,
                 const int *n, int stride, int shared, int d, float scale, float *probs,
                 float *out, float *work);

/* Weighted sum of gathered value rows: out[g] = sum_{i<n} p[g * ldp + i] * v_rows[i], for
 * the G rows of weights (out [G, d]). Replay's untimed steps use it to form o_S from the
 * dense probabilities. */
void attn_weighted_rows_ref(const float *p, int G, int ldp, const float *const *v_rows, int n,
                            int d, float *out);
void attn_weighted_rows(const float *p, int G, int ldp, const float *const *v_rows, int n,
                        int d, float *out);

/* Causal dense attention of a prompt: q [n, Hq, d], k, v [n, Hkv, d]; out [n, Hq, d];
 * optional col_mass [Hkv, n]: for each KV head, sum over its query heads and over query
 * positions i >= j of the probability on key j (H2O's initial scores). */
void attn_causal_ref(const float *q, const float *k, const float *v, int n, int Hq, int Hkv,
                     int d, float scale, float *out, float *col_mass);
void attn_causal(const float *q, const float *k, const float *v, int n, int Hq, int Hkv, int d,
                 float scale, float *out, float *col_mass);

#endif
