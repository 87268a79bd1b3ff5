/* test_metrics: the one definition of recall, out_err and attended (metrics.h) on
 * hand-worked steps: per-head and shared sets, a windowed layer (j0 > 0), the absolute error
 * when the dense output is zero, and attended before any selection. */
#include <string.h>

#include "metrics.h"
#include "testutil.h"

#define H 4
#define CAP 8
#define D 2

static void near(double got, double want, const char *what) {
    TU_ASSERT(fabs(got - want) <= 1e-12 * (1 + fabs(want)), "%s: %.17g, want %.17g", what, got,
              want);
}

/* Per-head sets over positions 0..4 (j0 0). */
static void test_per_head(void) {
    int n[H] = {5, 2, 1, 0};
    int32_t pos[H * CAP] = {0};
    const int32_t rows[H][CAP] = {{0, 1, 2, 3, 4}, {4, 1}, {3}, {0}};
    memcpy(pos, rows, sizeof rows);
    policy_selection sel = {.n_q_heads = H, .group_size = 2, .cap = CAP, .n = n, .pos = pos};
    /* probabilities of head h at position j: row h */
    const float probs[H * 5] = {0.1f, 0.2f, 0.3f, 0.25f, 0.15f, /* all five: 1 */
                                0.5f, 0.25f, 0, 0, 0.125f,      /* {4, 1}: 0.375 */
                                0.2f, 0.2f, 0.2f, 0.2f, 0.2f,   /* {3}: 0.2 */
                                1, 0, 0, 0, 0};                 /* {}: 0 */
    const float ostar[H * D] = {3, 4, 1, 0, 0, 0, 0, 0};
    const float out[H * D] = {3, 4, 1, 1, 0.5f, 0, 0, 0};
    double rec[H], err[H];
    step_metrics m = {.recall = rec, .out_err = err};
    metrics_score_step(&sel, out, probs, 5, 0, ostar, D, &m);
    near(rec[0], (double)0.1f + 0.2f + 0.3f + 0.25f + 0.15f, "recall head 0");
    near(rec[1], 0.375, "recall head 1");
    near(rec[2], 0.2f, "recall head 2");
    near(rec[3], 0, "recall of an empty set");
    near(err[0], 0, "out_err of an exact output");
    near(err[1], 1, "out_err |(0,1)| / |(1,0)|");
    near(err[2], 0.5, "out_err when o* = 0 is absolute");
    near(err[3], 0, "out_err 0 against 0");
    near(m.attended, (5 + 2 + 1 + 0) / 4.0, "attended");
    near(metrics_attended(&sel), m.attended, "metrics_attended");
    near(metrics_mean(rec, H), (rec[0] + rec[1] + rec[2] + rec[3]) / 4, "mean");
}

/* Shared sets (groups of 2) on a windowed layer: positions 10..13, j0 = 10. */
static void test_shared_window(void) {
    int n[H] = {2, 99, 3, 99}; /* heads 1 and 3 are not read: they share their group's set */
    int32_t pos[H * CAP] = {0};
    pos[0] = 13, pos[1] = 10;
    pos[2 * CAP + 0] = 11, pos[2 * CAP + 1] = 12, pos[2 * CAP + 2] = 13;
    policy_selection sel = {.n_q_heads = H, .group_size = 2, .cap = CAP, .shared_by_group = 1,
                            .n = n, .pos = pos};
    const int stride = 6; /* rows longer than the window: only indices 0..3 are read */
    float probs[H * 6];
    for (int h = 0; h < H; h++)
        for (int i = 0; i < stride; i++) probs[h * stride + i] = i < 4 ? (h + 1) * 0.01f * (i + 1) : 1e9f;
    float ostar[H * D] = {1, 1, 1, 1, 1, 1, 1, 1}, out[H * D];
    memcpy(out, ostar, sizeof out);
    double rec[H], err[H];
    step_metrics m = {.recall = rec, .out_err = err};
    metrics_score_step(&sel, out, probs, stride, 10, ostar, D, &m);
    /* head h: positions {13, 10} -> indices 3, 0; head 2, 3: {11, 12, 13} -> 1, 2, 3 */
    for (int h = 0; h < 2; h++)
        near(rec[h], (double)probs[h * stride + 3] + probs[h * stride + 0], "shared recall");
    for (int h = 2; h < 4; h++)
        near(rec[h], (double)probs[h * stride + 1] + probs[h * stride + 2] + probs[h * stride + 3],
             "shared recall");
    near(m.attended, (2 + 2 + 3 + 3) / 4.0, "attended counts a shared set once per head");
    near(metrics_attended(&sel), m.attended, "metrics_attended, shared");
    for (int h = 0; h < H; h++) near(err[h], 0, "exact output");
}

static void test_attended_before_any_step(void) {
    policy_selection sel = {.n_q_heads = H, .group_size = 1, .cap = CAP};
    near(metrics_attended(&sel), 0, "no selection yet");
}

/* Products in float, sums in double: the published arithmetic, kept bit for bit. */
static void test_out_err_arithmetic(void) {
    const float o[3] = {1.0f + 0x1p-23f, 2, -3}, os[3] = {1, 2.5f, -3};
    double num = 0, den = 0;
    for (int i = 0; i < 3; i++) {
        float diff = o[i] - os[i];
        num += diff * diff, den += os[i] * os[i];
    }
    TU_ASSERT(metrics_out_err(o, os, 3) == sqrt(num / den), "out_err arithmetic changed");
}

int main(void) {
    test_per_head();
    test_shared_window();
    test_attended_before_any_step();
    test_out_err_arithmetic();
    return tu_done("test_metrics");
}
