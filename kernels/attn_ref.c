/* attn_ref.c: plain reference attention kernels (see attn.h): double accumulation, two
 * passes, no cleverness. The fast kernels in attn.c are tested against these. */
#include <math.h>
#include <stdlib.h>

#include "attn.h"
#include "rb.h"

void attn_dense_ref(const float *q, int G, const float *k, const float *v, int n, int d, int ld,
                    float scale, float *logits, float *lse, float *out) {
    double *s = rb_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int g = 0; g < G; g++) {
        const float *qg = q + (size_t)g * d;
        double m = -INFINITY;
        for (int j = 0; j < n; j++) {
            double dot = 0;
            for (int c = 0; c < d; c++) dot += (double)qg[c] * k[(size_t)j * ld + c];
            s[j] = dot * scale;
            if (s[j] > m) m = s[j];
            if (logits) logits[(size_t)g * n + j] = (float)s[j];
        }
        double z = 0;
        for (int j = 0; j < n; j++) z += exp(s[j] - m);
        if (lse) lse[g] = (float)(m + log(z));
        if (out) {
            for (int c = 0; c < d; c++) {
                double acc = 0;
                for (int j = 0; j < n; j++) acc += exp(s[j] - m) / z * v[(size_t)j * ld + c];
                out[(size_t)g * d + c] = (float)acc;
            }
        }
    }
    free(s);
}

void attn_gather_ref(const float *q, int G, const float *const *k_rows,
                     const float *const *v_rows, const int *n, int stride, int shared, int d,
                     float scale, float *probs, float *out) {
    double *s = rb_malloc(sizeof(double) * (size_t)(stride > 0 ? stride : 1));
    for (int g = 0; g < G; g++) {
        int set = shared ? 0 : g, cnt = n[set];
        const float *const *kr = k_rows + (size_t)set * stride;
        const float *const *vr = v_rows + (size_t)set * stride;
        const float *qg = q + (size_t)g * d;
        double m = -INFINITY;
        for (int j = 0; j < cnt; j++) {
            double dot = 0;
            for (int c = 0; c < d; c++) dot += (double)qg[c] * kr[j][c];
            s[j] = dot * scale;
            if (s[j] > m) m = s[j];
        }
        double z = 0;
        for (int j = 0; j < cnt; j++) z += exp(s[j] - m);
        if (probs)
            for (int j = 0; j < cnt; j++) probs[(size_t)g * stride + j] = (float)(exp(s[j] - m) / z);
        for (int c = 0; c < d; c++) {
            double acc = 0;
            for (int j = 0; j < cnt; j++) acc += exp(s[j] - m) / z * vr[j][c];
            out[(size_t)g * d + c] = (float)acc;
        }
    }
    free(s);
}

void attn_causal_ref(const float *q, const float *k, const float *v, int n, int Hq, int Hkv,
                     int d, float scale, float *out, float *col_mass) {
    int group = Hq / Hkv;
    double *s = rb_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (col_mass)
        for (size_t i = 0; i < (size_t)Hkv * n; i++) col_mass[i] = 0;
    for (int i = 0; i < n; i++) {
        for (int h = 0; h < Hq; h++) {
            int kh = h / group;
            const float *qi = q + ((size_t)i * Hq + h) * d;
            double m = -INFINITY;
            for (int j = 0; j <= i; j++) {
                double dot = 0;
                const float *kj = k + ((size_t)j * Hkv + kh) * d;
                for (int c = 0; c < d; c++) dot += (double)qi[c] * kj[c];
                s[j] = dot * scale;
                if (s[j] > m) m = s[j];
            }
            double z = 0;
            for (int j = 0; j <= i; j++) z += exp(s[j] - m);
            for (int c = 0; c < d; c++) {
                double acc = 0;
                for (int j = 0; j <= i; j++)
                    acc += exp(s[j] - m) / z * v[((size_t)j * Hkv + kh) * d + c];
                out[((size_t)i * Hq + h) * d + c] = (float)acc;
            }
            if (col_mass)
                for (int j = 0; j <= i; j++) col_mass[(size_t)kh * n + j] += (float)(exp(s[j] - m) / z);
        }
    }
    free(s);
}

void attn_exp_shift_ref(const float *x, float shift, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = expf(x[i] - shift);
}

void attn_weighted_rows_ref(const float *p, int G, int ldp, const float *const *v_rows, int n,
                            int d, float *out) {
    for (int g = 0; g < G; g++)
        for (int c = 0; c < d; c++) {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += (double)p[(size_t)g * ldp + i] * v_rows[i][c];
            out[(size_t)g * d + c] = (float)acc;
        }
}
