/* metrics.c: recall, out_err and attended of one step (metrics.h). */
#include "metrics.h"

#include <math.h>

double metrics_out_err(const float *o, const float *o_star, int d) {
    /* Differences and products in float, sums in double: their rounding (relative 1e-7)
     * is far below the errors measured, and it is the arithmetic of every figure
     * raasbench has published, which stay reproducible bit for bit. */
    double num = 0, den = 0;
    for (int i = 0; i < d; i++) {
        float diff = o[i] - o_star[i];
        num += diff * diff, den += o_star[i] * o_star[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

void metrics_score_step(const policy_selection *sel, const float *out, const float *dense_probs,
                        int stride, int j0, const float *o_star, int d, step_metrics *m) {
    int H = sel->n_q_heads;
    int set_heads = sel->shared_by_group ? sel->group_size : 1;
    /* Recall is a gather of the dense mass over S, done once per set: the heads sharing a
     * set walk its positions together, eight at a time, two independent sums each. */
    for (int h0 = 0; h0 < H; h0 += set_heads) {
        int n_sel = sel->n[h0], nh = set_heads < 8 ? set_heads : 8;
        const int32_t *pos = sel->pos + (size_t)h0 * sel->cap;
        for (int g0 = h0; g0 < h0 + set_heads; g0 += nh) {
            double a[8][2] = {{0}};
            const float *pr[8];
            for (int g = 0; g < nh; g++) pr[g] = dense_probs + (size_t)(g0 + g) * stride - j0;
            int i = 0;
            for (; i + 2 <= n_sel; i += 2) {
                int p0 = pos[i], p1 = pos[i + 1];
                for (int g = 0; g < nh; g++) a[g][0] += pr[g][p0], a[g][1] += pr[g][p1];
            }
            for (; i < n_sel; i++)
                for (int g = 0; g < nh; g++) a[g][0] += pr[g][pos[i]];
            for (int g = 0; g < nh; g++) m->recall[g0 + g] = a[g][0] + a[g][1];
        }
    }
    for (int h = 0; h < H; h++)
        m->out_err[h] = metrics_out_err(out + (size_t)h * d, o_star + (size_t)h * d, d);
    m->attended = metrics_attended(sel);
}

double metrics_attended(const policy_selection *sel) {
    int H = sel->n_q_heads, set_heads = sel->shared_by_group ? sel->group_size : 1;
    if (!sel->n || H <= 0) return 0;
    /* integer counts: exact in double whatever the order */
    double att = 0;
    for (int h0 = 0; h0 < H; h0 += set_heads) att += (double)sel->n[h0] * set_heads;
    return att / H;
}

double metrics_mean(const double *per_head, int n_q_heads) {
    double s = 0;
    for (int h = 0; h < n_q_heads; h++) s += per_head[h];
    return s / n_q_heads;
}
