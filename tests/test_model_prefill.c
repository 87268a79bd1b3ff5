/* test_model_prefill.c: the batched prompt prefill (model_session_prefill and
 * model_prompt_capture) against the token-by-token forward, bit for bit.
 *
 * Tiny random-weight models are written here as GGUF files (no Python needed): a gemma3
 * whose matrices use the K formats (n_embd 256) with five sliding-window layers (window 8)
 * and one global layer, a qwen2 with biases, and a llama, between them every supported
 * format. For prompt lengths 1, B-1, B, B+1 and 2B+6 (B = MODEL_PREFILL_BLOCK; all but the
 * first two longer than the window) on 1 and 2 threads it requires, bit for bit:
 * the logits after the prompt, every layer's q/k/v of the last token (model_session_qkv),
 * the captured q/k/v of every token (model_prompt_capture against the same loop run token
 * by token), the full K/V copies kept for measuring, and then three decode steps whose
 * logits, recall, output error and attended counts can only agree if every layer's cache
 * and policy state agree; also a prefill split in two calls (pos0 > 0), a sparse policy
 * (h2o) on the global layers, and the exact (quant_matvec_ref) path. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cells.h"
#include "model.h"
#include "quant.h"
#include "testutil.h"

#include "gguf_writer.h"

static const tiny_spec k_specs[] = {
    {"gemma3", 256, 512, 6, 4, 1, 32, 300, 8,
     {GGML_T_Q4_K, GGML_T_Q6_K, GGML_T_Q5_K, GGML_T_Q8_0, GGML_T_Q4_K, GGML_T_Q5_0, GGML_T_Q6_K,
      GGML_T_Q8_0, (ggml_type)-1}},
    {"qwen2", 64, 128, 2, 4, 2, 16, 300, 0,
     {GGML_T_Q8_0, GGML_T_F16, GGML_T_Q4_0, GGML_T_Q5_0, GGML_T_Q4_1, GGML_T_Q5_1, GGML_T_BF16,
      GGML_T_Q8_0, GGML_T_F32}},
    {"llama", 64, 128, 2, 4, 2, 16, 300, 0,
     {GGML_T_F32, GGML_T_Q5_1, GGML_T_BF16, GGML_T_Q4_0, GGML_T_Q8_0, GGML_T_F16, GGML_T_Q5_0,
      GGML_T_F16, GGML_T_Q4_1}},
};

/* ---- the comparisons ------------------------------------------------------------------- */

typedef struct run_cfg {
    const char *policy; /* of the global layers: "dense" or a budgeted one */
    int budget, measure;
} run_cfg;

static model_session *new_session(const model *m, const run_cfg *rc, int max_tokens, cell *c) {
    rb_err e = {0};
    const policy_ops *ops = policy_find(rc->policy, &e);
    TU_ASSERT(ops != NULL, "policy %s", rc->policy);
    policy_params pp;
    TU_OK(policy_params_for(ops, NULL, 0, &pp, &e), e);
    TU_OK(cells_init(c, ops, &pp, rc->budget, NULL, NULL, &e), e);
    model_cache_config cc = {.cell = c, .page_size = 4, .dense_layers = 0, .max_tokens = max_tokens,
                             .seed = 3, .measure = rc->measure};
    model_session *s = NULL;
    TU_OK(model_session_create(m, &cc, &s, &e), e);
    return s;
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static int all_finite(const float *a, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* One prompt of n tokens: token by token (recording every token's q/k/v) against
 * model_session_prefill (in one call, or two when split > 0) and, for the dense
 * configuration, model_prompt_capture; then 3 decode steps on both sessions. */
static void check_prompt(const model *m, const int32_t *ids, int n, int split, const run_cfg *rc,
                         const char *what) {
    const model_hparams *hp = model_get_hparams(m);
    const int L = hp->n_layers, V = hp->n_vocab;
    const size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
    const int n_dec = 3, max_tokens = n + n_dec + 1;
    cell ca, cb;
    model_session *a = new_session(m, rc, max_tokens, &ca), *b = new_session(m, rc, max_tokens, &cb);
    float *la = rb_malloc((size_t)V * sizeof(float)), *lb = rb_malloc((size_t)V * sizeof(float));
    float *q = rb_malloc((size_t)L * n * QD * sizeof(float));  /* [L, n, QD] as model_prompt */
    float *k = rb_malloc((size_t)L * n * KD * sizeof(float)), *v = rb_malloc((size_t)L * n * KD * sizeof(float));
    for (int i = 0; i < n; i++) {
        model_session_forward(a, ids[i], i, 1, i == n - 1 ? la : NULL);
        for (int il = 0; il < L; il++) {
            const float *qi, *ki, *vi;
            model_session_qkv(a, il, &qi, &ki, &vi);
            size_t row = (size_t)il * n + i;
            memcpy(q + row * QD, qi, QD * sizeof(float));
            memcpy(k + row * KD, ki, KD * sizeof(float));
            memcpy(v + row * KD, vi, KD * sizeof(float));
        }
    }
    TU_ASSERT(all_finite(la, V), "%s n=%d: token-by-token logits not finite", what, n);
    float *lp = rb_malloc((size_t)V * sizeof(float)); /* the prompt's logits, kept */
    memcpy(lp, la, (size_t)V * sizeof(float));
    if (split > 0) {
        model_session_prefill(b, ids, split, 0, NULL);
        model_session_prefill(b, ids + split, n - split, split, lb);
    } else {
        model_session_prefill(b, ids, n, 0, lb);
    }
    TU_ASSERT(same(la, lb, (size_t)V), "%s n=%d split=%d: prompt logits differ", what, n, split);
    for (int il = 0; il < L; il++) {
        const float *qa, *ka, *va, *qb, *kb, *vb;
        model_session_qkv(a, il, &qa, &ka, &va);
        model_session_qkv(b, il, &qb, &kb, &vb);
        TU_ASSERT(same(qa, qb, QD) && same(ka, kb, KD) && same(va, vb, KD),
                  "%s n=%d: layer %d q/k/v of the last token differ", what, n, il);
        TU_ASSERT(model_session_layer_kv_bytes(a, il) == model_session_layer_kv_bytes(b, il),
                  "%s n=%d: layer %d KV bytes differ", what, n, il);
    }
    /* decode steps: their logits read every layer's cache through its policy */
    for (int t = 0; t < n_dec; t++) {
        int next = model_argmax(la, V), pos = n + t;
        model_session_forward(a, next, pos, 0, la);
        model_session_forward(b, next, pos, 0, lb);
        TU_ASSERT(same(la, lb, (size_t)V), "%s n=%d: decode step %d logits differ", what, n, t);
        for (int il = 0; il < L && rc->measure; il++) {
            float ra, ea, aa, rb_, eb, ab;
            model_session_metrics(a, il, &ra, &ea, &aa);
            model_session_metrics(b, il, &rb_, &eb, &ab);
            TU_ASSERT(same(&ra, &rb_, 1) && same(&ea, &eb, 1) && same(&aa, &ab, 1),
                      "%s n=%d: decode step %d layer %d metrics differ", what, n, t, il);
        }
    }
    TU_ASSERT(model_session_kv_bytes(a) == model_session_kv_bytes(b) &&
              model_session_meta_bytes(a) == model_session_meta_bytes(b), "%s n=%d: cache sizes differ", what, n);

    if (!strcmp(rc->policy, "dense") && !rc->measure && split == 0) {
        model_prompt p;
        rb_err e = {0};
        TU_OK(model_prompt_capture(m, ids, n, &p, &e), e);
        /* the capture session is dense everywhere but the windowed layers, like session a */
        size_t nl = (size_t)L * n;
        TU_ASSERT(p.n == n && same(p.q, q, nl * QD) && same(p.k, k, nl * KD) && same(p.v, v, nl * KD),
                  "%s n=%d: captured q/k/v differ from the token-by-token ones", what, n);
        TU_ASSERT(same(p.logits, lp, (size_t)V), "%s n=%d: captured logits differ", what, n);
        model_prompt_free(&p);
    }
    model_session_destroy(a);
    model_session_destroy(b);
    free(ca.params_json), free(cb.params_json);
    free(la), free(lb), free(lp), free(q), free(k), free(v);
}

int main(void) {
    char dir[] = "/tmp/test_model_prefill_XXXXXX";
    TU_ASSERT(mkdtemp(dir) != NULL, "mkdtemp");
    const int B = MODEL_PREFILL_BLOCK;
    const int lengths[] = {1, B - 1, B, B + 1, 2 * B + 6};
    uint64_t rng = 11;
    for (size_t si = 0; si < sizeof k_specs / sizeof k_specs[0]; si++) {
        const tiny_spec *sp = &k_specs[si];
        char path[256];
        snprintf(path, sizeof path, "%s/tiny-%s.gguf", dir, sp->arch);
        write_tiny(sp, path, 100 + si);
        for (int threads = 1; threads <= 2; threads++) {
            model *m = NULL;
            rb_err e = {0};
            TU_OK(model_load(path, threads, &m, &e), e);
            int32_t ids[2 * MODEL_PREFILL_BLOCK + 6];
            for (int i = 0; i < 2 * B + 6; i++) ids[i] = (int32_t)(tu_next(&rng) % (uint64_t)sp->n_vocab);
            char what[96];
            snprintf(what, sizeof what, "%s threads=%d", sp->arch, threads);
            const run_cfg dense = {"dense", 0, 0}, dense_m = {"dense", 0, 1}, h2o = {"h2o", 12, 1};
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                check_prompt(m, ids, lengths[li], 0, &dense, what);
                check_prompt(m, ids, lengths[li], 0, &dense_m, what);
            }
            check_prompt(m, ids, B + 1, B / 2 + 3, &dense_m, what); /* pos0 > 0, off the block grid */
            check_prompt(m, ids, 2 * B + 6, 0, &h2o, what);
            if (threads == 1) {
                model_set_exact(m, 1);
                snprintf(what, sizeof what, "%s exact", sp->arch);
                check_prompt(m, ids, B + 1, 0, &dense, what);
                check_prompt(m, ids, 2, 0, &dense_m, what);
            }
            model_destroy(m);
        }
    }
    tu_rmdir(dir);
    return tu_done("test_model_prefill");
}
