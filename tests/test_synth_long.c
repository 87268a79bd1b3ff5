/* test_synth_long.c: the generator's "never again" contract on a long decode (issue 14).
 *
 * A faded milestone must look like an ordinary key to every later query, however long the
 * decode: 8192 decode steps (over 200 milestone tokens planted, past the length at which
 * the old generator let faded milestones take 33-64% of the mass), 2 layers, head_dim 32
 * (the smallest: the fewest content channels, so the most reuse of heavy channels), every
 * 8th step checked in every query head. Bars: the dense attention mass on faded milestones
 * (8 steps after their last active step, when the recency band has passed) <= 2% at every
 * checked step; on dormant phoenixes <= 2%; active milestones still attended (mean per
 * token over their span > 5x uniform), so the bars are not met by attending nothing.
 * Prompt phoenixes only where planted: the old generator gave dormant phoenixes 34-54% of
 * the mass on these seeds (and faded milestones 100% at some step). Unplanted prompt
 * tokens are ordinary keys and take the background's designed heavy tail: a 64-step
 * window mean of at most 361-413x uniform at head_dim 32 and 70x at 64 (the old generator:
 * 324-369x and 94x; 1/8000 of the mass is 1x uniform there), so the bar is a tail bound,
 * 500x and 150x, not "never above 10x" (about 100 of the 124 prompt tokens pass 10x in
 * some window, before and after the change: at 8k tokens, a logit 3 over an ordinary key
 * is 10x uniform). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "synth.h"

static int failures = 0;
#define EXPECT(cond, ...)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                            \
            printf(__VA_ARGS__);                                                              \
            printf("\n");                                                                     \
        }                                                                                     \
    } while (0)

#define STRIDE 8
#define WINDOW 64 /* steps of the windowed mean that judges prompt tokens */

static void check_seed(uint64_t seed, int head_dim, int n_decode, double max_prompt) {
    synth_config c;
    synth_config_default(&c);
    c.seed = seed;
    c.n_layers = 2;
    c.n_q_heads = 2;
    c.n_kv_heads = 1;
    c.head_dim = head_dim;
    c.n_decode = n_decode;
    c.n_phoenix = synth_max_active(&c) < 2 ? synth_max_active(&c) : 2;
    c.dtype = TRACE_F32;
    rb_err e = {0};
    EXPECT(synth_config_check(&c, &e) == RB_OK, "%s: %s", e.what, e.why);
    synth_truth t;
    EXPECT(synth_truth_make(&c, &t, &e) == RB_OK, "%s", e.why);
    EXPECT(t.n_milestones >= 100, "seed %llu: only %d milestone tokens",
           (unsigned long long)seed, t.n_milestones);
    int n = synth_n_tokens(&c), d = c.head_dim;
    int32_t *first = rb_malloc(sizeof(int32_t) * (size_t)n), *last = rb_malloc(sizeof(int32_t) * (size_t)n);
    char *phoenix = rb_calloc((size_t)n, 1);
    for (int j = 0; j < n; j++) first[j] = -1, last[j] = -1;
    for (int i = 0; i < t.n_milestones; i++) {
        first[t.milestones[3 * i]] = t.milestones[3 * i + 1];
        last[t.milestones[3 * i]] = t.milestones[3 * i + 2];
    }
    for (int i = 0; i < t.n_phoenix; i++) phoenix[t.phoenix[3 * i]] = 1;
    float *q = rb_malloc(sizeof(float) * (size_t)n * c.n_q_heads * d);
    float *k = rb_malloc(sizeof(float) * (size_t)n * d), *v = rb_malloc(sizeof(float) * (size_t)n * d);
    float *lg = rb_malloc(sizeof(float) * (size_t)n);
    double *act_sum = rb_calloc((size_t)n, sizeof(double));
    int *act_n = rb_calloc((size_t)n, sizeof(int));
    double *win = rb_calloc((size_t)c.n_prefill, sizeof(double));
    char *revived = rb_calloc((size_t)c.n_prefill, 1);
    double worst_faded = 0, worst_dormant = 0, worst_prompt = 0;
    int worst_step = -1;
    for (int layer = 0; layer < c.n_layers; layer++) {
        synth_layer(&c, &t, layer, q, k, v);
        for (int s = c.n_prefill; s < n; s += STRIDE)
            for (int h = 0; h < c.n_q_heads; h++) {
                float lse;
                attn_dense_ref(q + ((size_t)s * c.n_q_heads + h) * d, 1, k, NULL, s + 1, d, d,
                               synth_attn_scale(&c), lg, &lse, NULL);
                double faded = 0, dormant = 0;
                for (int j = 0; j <= s; j++) {
                    double p = exp(lg[j] - lse);
                    if (last[j] >= 0 && last[j] + 8 < s) faded += p;
                    if (last[j] >= 0 && first[j] <= s && s <= last[j])
                        act_sum[j] += p * (s + 1), act_n[j]++;
                    if (j < c.n_prefill) win[j] += p * (s + 1) / (WINDOW / STRIDE * c.n_q_heads);
                }
                for (int i = 0; i < t.n_phoenix; i++)
                    if (s < t.phoenix[3 * i + 2] || s > t.phoenix_last[i] + 8)
                        dormant += exp(lg[t.phoenix[3 * i]] - lse);
                if (h == c.n_q_heads - 1 && (s - c.n_prefill + STRIDE) % WINDOW == 0) {
                    /* a window closed: unplanted prompt tokens (not sinks) past the first */
                    for (int j = c.n_sinks; j < c.n_prefill; j++) {
                        if (!phoenix[j] && s >= c.n_prefill + WINDOW) {
                            worst_prompt = fmax(worst_prompt, win[j]);
                            if (win[j] > 10) revived[j] = 1;
                        }
                        win[j] = 0;
                    }
                }
                if (faded > worst_faded) worst_faded = faded, worst_step = s;
                worst_dormant = fmax(worst_dormant, dormant);
            }
    }
    double weakest = INFINITY;
    for (int j = 0; j < n; j++)
        if (act_n[j]) weakest = fmin(weakest, act_sum[j] / act_n[j]);
    EXPECT(worst_faded <= 0.02, "seed %llu head_dim %d: faded milestones take %.1f%% of the mass at step %d",
           (unsigned long long)seed, head_dim, 100 * worst_faded, worst_step);
    EXPECT(worst_dormant <= 0.02, "seed %llu: dormant phoenixes take %.1f%% of the mass",
           (unsigned long long)seed, 100 * worst_dormant);
    int n_revived = 0;
    for (int j = 0; j < c.n_prefill; j++) n_revived += revived[j];
    EXPECT(worst_prompt < max_prompt, "seed %llu: an unplanted prompt token gets %.1fx uniform "
           "over a %d-step window", (unsigned long long)seed, worst_prompt, WINDOW);
    EXPECT(weakest > 5, "seed %llu: an active milestone token averages %.1fx uniform",
           (unsigned long long)seed, weakest);
    printf("# seed %llu head_dim %d, %d decode steps, %d milestone tokens: faded milestones at most "
           "%.2f%% of the mass (step %d), dormant phoenixes %.3f%%, %d unplanted prompt tokens "
           "above 10x uniform over a window (at most %.1fx), weakest active token %.1fx uniform\n",
           (unsigned long long)seed, head_dim, n_decode, t.n_milestones, 100 * worst_faded,
           worst_step, 100 * worst_dormant, n_revived, worst_prompt, weakest);
    free(q), free(k), free(v), free(lg), free(act_sum), free(act_n), free(first), free(last);
    free(phoenix), free(win), free(revived);
    synth_truth_free(&t);
}

int main(void) {
    check_seed(1, 32, 8192, 500);
    check_seed(2, 32, 8192, 500);
    check_seed(3, 64, 8192, 150);
    printf("# test_synth_long: %d failures\n", failures);
    return failures ? 1 : 0;
}
