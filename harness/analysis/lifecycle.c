/* lifecycle.c: streaming detection of milestone and phoenix tokens (see lifecycle.h for the
 * definitions), the trace-backed importance source and the HDF5 writer. */
#define _POSIX_C_SOURCE 200809L
#include "lifecycle.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attn.h"
#include "h5util.h"
#include "output.h"

void lifecycle_config_default(lifecycle_config *c) {
    *c = (lifecycle_config){
        .k_sigma = 3.0,
        .min_ratio = 4.0,
        .max_gap = 16,
        .min_span = 32,
        .min_fill = 0.5,
        .dormant_steps = 128,
        .revive_min = 12,
        .recency = -1,
        .smooth = 4,
        .heat_rows = 512,
        .heat_cols = 512,
        .hist_bins = 24,
    };
}

rb_status lifecycle_config_check(const lifecycle_config *c, rb_err *e) {
    if (!(c->k_sigma >= 0 && c->k_sigma <= 100))
        return rb_fail(e, RB_EINPUT, "--k-sigma", "must be in [0, 100], got %g", c->k_sigma);
    if (!(c->min_ratio > 0 && c->min_ratio <= 1e6))
        return rb_fail(e, RB_EINPUT, "--min-ratio", "must be in (0, 1e6], got %g", c->min_ratio);
    if (c->max_gap < 0 || c->max_gap > 1000000)
        return rb_fail(e, RB_EINPUT, "--max-gap", "must be in [0, 1e6], got %d", c->max_gap);
    if (c->min_span < 1 || c->min_span > 1000000)
        return rb_fail(e, RB_EINPUT, "--min-span", "must be in [1, 1e6], got %d", c->min_span);
    if (!(c->min_fill >= 0 && c->min_fill <= 1))
        return rb_fail(e, RB_EINPUT, "--min-fill", "must be in [0, 1], got %g", c->min_fill);
    if (c->dormant_steps < 1 || c->dormant_steps > 1000000)
        return rb_fail(e, RB_EINPUT, "--dormant", "must be in [1, 1e6], got %d",
                       c->dormant_steps);
    if (c->dormant_steps <= c->max_gap)
        return rb_fail(e, RB_EINPUT, "--dormant",
                       "must exceed --max-gap (%d), or a pause inside one segment would count as "
                       "a dormancy; got %d", c->max_gap, c->dormant_steps);
    if (c->smooth < 1 || c->smooth > 10000)
        return rb_fail(e, RB_EINPUT, "--smooth", "must be in [1, 10000], got %d", c->smooth);
    if (c->revive_min < 1)
        return rb_fail(e, RB_EINPUT, "--revive-min", "must be >= 1, got %d", c->revive_min);
    if (c->recency < -1 || c->recency > 1000000)
        return rb_fail(e, RB_EINPUT, "--recency", "must be -1 (measure) or in [0, 1e6], got %d",
                       c->recency);
    if (c->heat_rows < 1 || c->heat_rows > 4096 || c->heat_cols < 1 || c->heat_cols > 4096)
        return rb_fail(e, RB_EINPUT, "--heat-size", "must be in [1, 4096], got %dx%d",
                       c->heat_rows, c->heat_cols);
    if (c->hist_bins < 1 || c->hist_bins > 10000)
        return rb_fail(e, RB_EINPUT, "--hist-bins", "must be in [1, 10000], got %d",
                       c->hist_bins);
    return RB_OK;
}

/* ---- per-step threshold ---- */

/* k-th smallest of a[0..n) (Hoare selection; reorders a). */
static float select_kth(float *a, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                float x = a[i];
                a[i] = a[j];
                a[j] = x;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return a[k];
}

static float median_of(float *a, int n) {
    float hi = select_kth(a, n, n / 2);
    if (n % 2) return hi;
    /* after selection, a[0..n/2) holds the lower half: its maximum is the other middle */
    float lo = a[0];
    for (int i = 1; i < n / 2; i++)
        if (a[i] > lo) lo = a[i];
    return 0.5f * (lo + hi);
}

/* The step's activity threshold on smoothed log ratios e[0..n) (scratch [n]): the log of
 * max(min_ratio, exp(median + k_sigma * 1.4826 * MAD)). */
static double step_threshold(const lifecycle_config *c, const float *e, int n, float *scratch,
                             float *median) {
    memcpy(scratch, e, sizeof(float) * (size_t)n);
    float med = median_of(scratch, n);
    *median = med;
    for (int j = 0; j < n; j++) scratch[j] = fabsf(e[j] - med);
    float mad = median_of(scratch, n);
    double thr = (double)med + c->k_sigma * 1.4826 * (double)mad;
    return thr > log(c->min_ratio) ? thr : log(c->min_ratio);
}

/* ---- streaming state ---- */

typedef struct tok_state {
    float e;              /* smoothed log ratio to uniform */
    int32_t last;         /* last active step, -1 when never active in the decode */
    int32_t seg_start;    /* current segment */
    int32_t seg_active;   /* active steps in it */
    int32_t dormant_from; /* >= 0: the current segment is a revival after this dormancy */
    float gap_e, gap_thr; /* over the inactive steps since the last active: sums of
                             e - median and log thr - median of the step */
} tok_state;

/* A closed segment: token, first and last active step, active steps, dormancy before it
 * (-1: none of at least dormant_steps). Classified once the recency width is known. */
typedef struct segment {
    int32_t pos, start, last, n_active, dormant_from;
} segment;

typedef struct detector {
    const lifecycle_config *c;
    int n_prefill;
    tok_state *tok; /* [n_tokens] */
    segment *seg;
    int n_seg, cap_seg;
    int64_t *lag_pairs, *lag_active; /* [LAG_MAX] for the recency width */
} detector;

enum { LAG_MAX = 1024 };

static void segment_close(detector *d, int j, tok_state *s) {
    if (s->last < 0) return;
    if (d->n_seg == d->cap_seg) {
        d->cap_seg = d->cap_seg ? 2 * d->cap_seg : 256;
        d->seg = rb_realloc(d->seg, sizeof(segment) * (size_t)d->cap_seg);
    }
    d->seg[d->n_seg++] = (segment){j, s->seg_start, s->last, s->seg_active, s->dormant_from};
    s->dormant_from = -1;
}

static void token_active(detector *d, int j, int t) {
    tok_state *s = &d->tok[j];
    const lifecycle_config *c = d->c;
    if (s->last >= 0 && t - s->last <= c->max_gap + 1) {
        s->seg_active++;
    } else {
        /* a new segment: was the token dormant long enough before it? */
        int dormant_from = -1;
        if (s->last >= 0) {
            segment_close(d, j, s);
            if (t - s->last - 1 >= c->dormant_steps) dormant_from = s->last + 1;
        } else if (j < d->n_prefill && t - d->n_prefill >= c->dormant_steps) {
            dormant_from = d->n_prefill;
        }
        /* dormant means like a typical token: over the gap, on average nearer the step's
         * median than its threshold (in log ratio). A token that stays well above typical
         * but under the threshold, as a sink does while milestones take the mass, is not
         * dormant, and its next crossing is no revival. */
        if (dormant_from >= 0 && !(s->gap_e <= 0.5f * s->gap_thr)) dormant_from = -1;
        s->seg_start = t;
        s->seg_active = 1;
        s->dormant_from = dormant_from;
    }
    s->last = t;
    s->gap_e = 0;
    s->gap_thr = 0;
}

static int cmp_rows(const void *a, const void *b) {
    const int32_t *x = a, *y = b;
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

static int cmp_segments(const void *a, const void *b) {
    const segment *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

static rb_status check_row(const float *imp, int n, int t, rb_err *e) {
    for (int j = 0; j < n; j++)
        if (!(imp[j] >= 0) || isinf(imp[j]))
            return rb_fail(e, RB_EINPUT, "lifecycle",
                           "importance of token %d at step %d is %g (must be finite, >= 0)", j, t,
                           (double)imp[j]);
    return RB_OK;
}

/* Recency width: the smallest lag at which fewer than half the decode tokens are active. */
static int recency_width(const detector *d) {
    for (int lag = 0; lag < LAG_MAX; lag++)
        if (d->lag_pairs[lag] > 0 && 2 * d->lag_active[lag] < d->lag_pairs[lag]) return lag;
    return LAG_MAX;
}

/* Milestones and phoenix rows from the closed segments (sorted by token, then start). */
static void classify(detector *d, int W, lifecycle_result *out) {
    const lifecycle_config *c = d->c;
    qsort(d->seg, (size_t)d->n_seg, sizeof(segment), cmp_segments);
    int32_t *ms = rb_malloc(sizeof(int32_t) * 3 * (size_t)(d->n_seg + 1));
    int32_t *ph = rb_malloc(sizeof(int32_t) * 3 * (size_t)(d->n_seg + 1));
    int n_ms = 0, n_ph = 0, found = 0; /* 1: this token's milestone is alive, 2: ended */
    for (int i = 0; i < d->n_seg; i++) {
        const segment *g = &d->seg[i];
        int j = g->pos;
        int first_of_token = i == 0 || d->seg[i - 1].pos != j;
        if (first_of_token) found = 0;
        /* only a token that was important before can come back: a prompt token (attended in
         * the prompt) or a decode token that had a milestone life. A decode token whose one
         * earlier use was its recency band, attended again long after, is chance: the
         * background of a synth trace brings such tokens back for a dozen steps (hundreds
         * of them over 8192 steps), and nothing in their past says they mattered. */
        int had_life = j < d->n_prefill || found;
        if (j >= d->n_prefill && !found) {
            int from = g->start > j + W ? g->start : j + W;
            int span = g->last - from + 1, len = g->last - g->start + 1;
            if (span >= c->min_span && g->n_active >= c->min_fill * len) {
                int32_t *r = ms + 3 * n_ms++;
                r[0] = j, r[1] = g->start, r[2] = g->last;
                found = 1;
            }
        } else if (found == 1 && g->dormant_from < 0) {
            /* a pause shorter than a dormancy does not end a milestone's life: it goes on */
            ms[3 * (n_ms - 1) + 2] = g->last;
        } else if (found) {
            found = 2; /* revived after a dormancy: a phoenix from here on, not the same life */
        }
        if (had_life && g->dormant_from >= 0 && g->n_active >= c->revive_min) {
            int32_t *r = ph + 3 * n_ph++;
            r[0] = j, r[1] = g->dormant_from, r[2] = g->start;
        }
    }
    qsort(ms, (size_t)n_ms, 3 * sizeof(int32_t), cmp_rows);
    qsort(ph, (size_t)n_ph, 3 * sizeof(int32_t), cmp_rows);
    out->milestones = ms;
    out->n_milestones = n_ms;
    out->phoenix = ph;
    out->n_phoenix = n_ph;
}

rb_status lifecycle_analyze(const lifecycle_config *c, int n_prefill, int n_tokens,
                            lifecycle_row_fn row, void *ctx, lifecycle_result *out, rb_err *e) {
    memset(out, 0, sizeof *out);
    rb_status st = lifecycle_config_check(c, e);
    if (st) return st;
    if (n_prefill < 1 || n_tokens <= n_prefill)
        return rb_fail(e, RB_EINPUT, "lifecycle",
                       "need a prompt and at least one decode step (n_prefill %d, n_tokens %d)",
                       n_prefill, n_tokens);
    int T = n_tokens - n_prefill;
    float *imp = rb_malloc(sizeof(float) * (size_t)n_tokens);     // [t+1]
    float *ev = rb_malloc(sizeof(float) * (size_t)n_tokens);      // [t+1] smoothed log ratios
    float *scratch = rb_malloc(sizeof(float) * (size_t)n_tokens); // [t+1]
    detector d = {.c = c, .n_prefill = n_prefill};
    d.tok = rb_malloc(sizeof(tok_state) * (size_t)n_tokens);
    for (int j = 0; j < n_tokens; j++) d.tok[j] = (tok_state){.last = -1, .dormant_from = -1};
    d.lag_pairs = rb_calloc(LAG_MAX, sizeof(int64_t));
    d.lag_active = rb_calloc(LAG_MAX, sizeof(int64_t));

    out->step_bin = (T + c->heat_rows - 1) / c->heat_rows;
    out->token_bin = (n_tokens + c->heat_cols - 1) / c->heat_cols;
    out->heat_rows = (T + out->step_bin - 1) / out->step_bin;
    out->heat_cols = (n_tokens + out->token_bin - 1) / out->token_bin;
    size_t n_cells = (size_t)out->heat_rows * out->heat_cols;
    out->heatmap = rb_malloc(sizeof(float) * n_cells); // [heat_rows, heat_cols]
    for (size_t i = 0; i < n_cells; i++) out->heatmap[i] = NAN;

    /* exponential smoothing over steps of the log ratio: one step's spike moves it by only
     * 1/smooth of the jump, a sustained change is followed within ~smooth steps */
    const float a = 1.0f / (float)c->smooth;
    double thr_sum = 0;
    /* below-typical importance says nothing about activity: log ratios are floored at the
     * previous step's median smoothed value, so a token waking from deep dormancy is seen
     * within ~smooth steps however low it had sunk */
    float floor_lr = -INFINITY;
    for (int t = n_prefill; t < n_tokens; t++) {
        int n = t + 1;
        if ((st = row(ctx, t, imp, e)) != RB_OK || (st = check_row(imp, n, t, e)) != RB_OK)
            goto done;
        float *hrow = out->heatmap + (size_t)((t - n_prefill) / out->step_bin) * out->heat_cols;
        for (int j = 0; j < n; j++) {
            float r = imp[j] * (float)n;
            float *cell = &hrow[j / out->token_bin];
            if (isnan(*cell) || r > *cell) *cell = r;
            /* floor at 1e-30 so a zero probability (underflow) stays finite */
            float lr = logf(r > 1e-30f ? r : 1e-30f);
            if (lr < floor_lr) lr = floor_lr;
            /* a token enters the smoothing at its first decode step (prompt tokens) or at
             * its creation (decode tokens) */
            if (t == n_prefill || j == t) d.tok[j].e = lr;
            else d.tok[j].e += a * (lr - d.tok[j].e);
            ev[j] = d.tok[j].e;
        }
        double thr = step_threshold(c, ev, n, scratch, &floor_lr);
        thr_sum += exp(thr);
        for (int j = 0; j < n; j++) {
            int act = ev[j] >= thr;
            if (act) {
                token_active(&d, j, t);
            } else {
                d.tok[j].gap_e += ev[j] - floor_lr; /* floor_lr: this step's median now */
                d.tok[j].gap_thr += (float)thr - floor_lr;
            }
            int lag = t - j;
            if (j >= n_prefill && lag < LAG_MAX) {
                d.lag_pairs[lag]++;
                d.lag_active[lag] += act;
            }
        }
    }
    for (int j = 0; j < n_tokens; j++) segment_close(&d, j, &d.tok[j]);
    int W = c->recency >= 0 ? c->recency : recency_width(&d);
    classify(&d, W, out);
    out->n_prefill = n_prefill;
    out->n_tokens = n_tokens;
    out->recency = W;
    out->mean_threshold = thr_sum / T;
done:
    free(d.seg);
    free(d.tok);
    free(d.lag_pairs);
    free(d.lag_active);
    free(imp);
    free(ev);
    free(scratch);
    if (st) lifecycle_result_free(out);
    return st;
}

void lifecycle_result_free(lifecycle_result *r) {
    if (!r) return;
    free(r->milestones);
    free(r->phoenix);
    free(r->heatmap);
    memset(r, 0, sizeof *r);
}

/* ---- importance from a trace ---- */

const char *lifecycle_reduce_name(lifecycle_reduce r) {
    return r == LIFECYCLE_MAX ? "max" : r == LIFECYCLE_MEDIAN ? "median" : "mean";
}

struct lifecycle_trace_src {
    trace *tr;
    const trace_meta *m;
    int slot;
    lifecycle_reduce reduce;
    int n_heads;
    int heads[TRACE_MAX_LAYERS]; /* selected query heads, ascending */
    float *k;                    // [n_tokens, n_kv_heads, head_dim], filled up to k_have
    int k_have;
    float *q;                    // [Q_BLOCK, n_q_heads, head_dim] from position q_pos0
    int q_pos0, q_n;
    float *qg;                   // [group, head_dim] gathered rows of one KV head
    float *logits;               // [n_heads, n_tokens] selected heads' logits, then probs
    float *lse;                  // [n_heads]
};

enum { Q_BLOCK = 64, K_BLOCK = 256 };

rb_status lifecycle_trace_src_create(trace *tr, int layer, int head, int kv_head,
                                     lifecycle_reduce reduce, lifecycle_trace_src **out,
                                     rb_err *e) {
    *out = NULL;
    const trace_meta *m = trace_get_meta(tr);
    int slot = -1;
    for (int i = 0; i < m->n_stored; i++)
        if (m->layers[i] == layer) slot = i;
    if (slot < 0) return rb_fail(e, RB_EINPUT, "--layer", "layer %d is not stored in %s", layer,
                                 trace_path(tr));
    if (head >= 0 && kv_head >= 0)
        return rb_fail(e, RB_EINPUT, "--head", "give --head or --kv-head, not both");
    if (head >= m->n_q_heads)
        return rb_fail(e, RB_EINPUT, "--head", "%d out of range (the trace has %d query heads)",
                       head, m->n_q_heads);
    if (kv_head >= m->n_kv_heads)
        return rb_fail(e, RB_EINPUT, "--kv-head", "%d out of range (the trace has %d KV heads)",
                       kv_head, m->n_kv_heads);
    if (m->n_q_heads > TRACE_MAX_LAYERS)
        return rb_fail(e, RB_EINPUT, trace_path(tr), "more than %d query heads",
                       TRACE_MAX_LAYERS);
    lifecycle_trace_src *s = rb_calloc(1, sizeof *s);
    s->tr = tr;
    s->m = m;
    s->slot = slot;
    s->reduce = reduce;
    int G = m->n_q_heads / m->n_kv_heads;
    for (int h = 0; h < m->n_q_heads; h++)
        if ((head < 0 && kv_head < 0) || h == head || (kv_head >= 0 && h / G == kv_head))
            s->heads[s->n_heads++] = h;
    size_t d = (size_t)m->head_dim;
    s->k = rb_malloc(sizeof(float) * (size_t)m->n_tokens * m->n_kv_heads * d);
    s->q = rb_malloc(sizeof(float) * Q_BLOCK * (size_t)m->n_q_heads * d);
    s->q_pos0 = -1;
    s->qg = rb_malloc(sizeof(float) * (size_t)G * d);
    s->logits = rb_malloc(sizeof(float) * (size_t)s->n_heads * m->n_tokens);
    s->lse = rb_malloc(sizeof(float) * (size_t)s->n_heads);
    *out = s;
    return RB_OK;
}

rb_status lifecycle_trace_row(void *src, int t, float *imp, rb_err *e) {
    lifecycle_trace_src *s = src;
    const trace_meta *m = s->m;
    int n = t + 1, d = m->head_dim, Hkv = m->n_kv_heads, G = m->n_q_heads / Hkv;
    RB_CHECK(t >= 0 && t < m->n_tokens);
    rb_status st;
    while (s->k_have < n) { /* K only grows: the main pass asks for steps in order */
        int cnt = m->n_tokens - s->k_have < K_BLOCK ? m->n_tokens - s->k_have : K_BLOCK;
        st = trace_read(s->tr, s->slot, TRACE_K, s->k_have, cnt,
                        s->k + (size_t)s->k_have * Hkv * d, e);
        if (st) return st;
        s->k_have += cnt;
    }
    if (s->q_pos0 < 0 || t < s->q_pos0 || t >= s->q_pos0 + s->q_n) {
        int cnt = m->n_tokens - t < Q_BLOCK ? m->n_tokens - t : Q_BLOCK;
        if ((st = trace_read(s->tr, s->slot, TRACE_Q, t, cnt, s->q, e))) return st;
        s->q_pos0 = t;
        s->q_n = cnt;
    }
    const float *qt = s->q + (size_t)(t - s->q_pos0) * m->n_q_heads * d; // [n_q_heads, d]
    int done = 0; /* heads computed so far: heads[] is ascending, so grouped by KV head */
    for (int g = 0; g < Hkv; g++) {
        int ng = 0;
        for (int i = 0; i < s->n_heads; i++)
            if (s->heads[i] / G == g)
                memcpy(s->qg + (size_t)ng++ * d, qt + (size_t)s->heads[i] * d, sizeof(float) * d);
        if (!ng) continue;
        const float *kg = s->k + (size_t)g * d;
        /* v is unused without `out`; k is passed as valid memory */
        attn_dense(s->qg, ng, kg, kg, n, d, Hkv * d, m->attn_scale,
                   s->logits + (size_t)done * n, s->lse + done, NULL, NULL);
        done += ng;
    }
    int H = s->n_heads;
    for (int h = 0; h < H; h++) {
        float *row = s->logits + (size_t)h * n;
        for (int j = 0; j < n; j++) row[j] = expf(row[j] - s->lse[h]);
    }
    float v[TRACE_MAX_LAYERS];
    for (int j = 0; j < n; j++) {
        for (int h = 0; h < H; h++) v[h] = s->logits[(size_t)h * n + j];
        double acc = 0;
        if (s->reduce == LIFECYCLE_MEAN) {
            for (int h = 0; h < H; h++) acc += v[h];
            acc /= H;
        } else if (s->reduce == LIFECYCLE_MAX) {
            for (int h = 0; h < H; h++) acc = v[h] > acc ? v[h] : acc;
        } else { /* lower median (at least half the heads give this much): insertion sort */
            for (int a = 1; a < H; a++)
                for (int b = a; b > 0 && v[b - 1] > v[b]; b--) {
                    float x = v[b];
                    v[b] = v[b - 1];
                    v[b - 1] = x;
                }
            acc = v[(H - 1) / 2];
        }
        imp[j] = (float)acc;
    }
    return RB_OK;
}

void lifecycle_trace_src_destroy(lifecycle_trace_src *s) {
    if (!s) return;
    free(s->k);
    free(s->q);
    free(s->qg);
    free(s->logits);
    free(s->lse);
    free(s);
}

/* ---- histogram and scoring ---- */

int lifecycle_hist(const int32_t *rows, int n, int max_lifespan, int nb_max, int32_t *edges,
                   int32_t *counts) {
    for (int i = 0; i < n; i++) {
        int len = rows[3 * i + 2] - rows[3 * i + 1] + 1;
        if (len > max_lifespan) max_lifespan = len;
    }
    /* a bin width a reader can use: the smallest 1, 2 or 5 times a power of ten that covers
     * 0..max_lifespan in nb_max bins */
    int need = (max_lifespan + nb_max) / nb_max, width = 1;
    for (int64_t p = 1; width < need; p *= 10) {
        if (p >= need) width = (int)p;
        else if (2 * p >= need) width = (int)(2 * p);
        else if (5 * p >= need) width = (int)(5 * p);
    }
    int nb = max_lifespan / width + 1;
    RB_CHECK(nb <= nb_max);
    for (int b = 0; b <= nb; b++) edges[b] = b * width;
    for (int b = 0; b < nb; b++) counts[b] = 0;
    for (int i = 0; i < n; i++) counts[(rows[3 * i + 2] - rows[3 * i + 1] + 1) / width]++;
    return nb;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void lifecycle_stats_compute(const int32_t *milestones, int n_milestones, const int32_t *phoenix,
                             int n_phoenix, int n_prefill, int n_tokens, lifecycle_stats *s) {
    static const double q[7] = LIFECYCLE_STATS_Q;
    memset(s, 0, sizeof *s);
    s->n_prompt = n_prefill;
    s->n_decode = n_tokens - n_prefill;
    s->n_milestones = n_milestones;
    s->milestones_per_1k = s->n_decode > 0 ? 1000.0 * n_milestones / s->n_decode : NAN;
    int *life = rb_malloc(sizeof(int) * (size_t)(n_milestones > 0 ? n_milestones : 1));
    double sum = 0;
    for (int i = 0; i < n_milestones; i++) {
        life[i] = milestones[3 * i + 2] - milestones[3 * i + 1] + 1;
        sum += life[i];
    }
    qsort(life, (size_t)n_milestones, sizeof(int), cmp_int);
    s->life_mean = n_milestones ? sum / n_milestones : NAN;
    for (int k = 0; k < 7; k++) {
        int rank = (int)ceil(q[k] * n_milestones); /* nearest rank, 1-based; q = 0: the min */
        s->life_q[k] = n_milestones ? life[(rank < 1 ? 1 : rank) - 1] : NAN;
    }
    free(life);
    /* phoenix rows are sorted by position: distinct tokens are the changes of position */
    s->n_phoenix_rows = n_phoenix;
    for (int i = 0; i < n_phoenix; i++) {
        if (i > 0 && phoenix[3 * i] == phoenix[3 * (i - 1)]) continue;
        s->n_phoenix_tokens++;
        if (phoenix[3 * i] < n_prefill) s->n_phoenix_prompt++;
        else s->n_phoenix_decode++;
    }
    s->phoenix_prompt_frac = s->n_phoenix_tokens ? (double)s->n_phoenix_prompt / s->n_phoenix_tokens : NAN;
    s->prompt_phoenix_share = s->n_prompt ? (double)s->n_phoenix_prompt / s->n_prompt : NAN;
    s->decode_phoenix_share = s->n_decode ? (double)s->n_phoenix_decode / s->n_decode : NAN;
}

lifecycle_score lifecycle_match(int kind, const int32_t *det, int n_det, const int32_t *truth,
                                int n_truth, int tol) {
    lifecycle_score s = {.n_detected = n_det, .n_truth = n_truth};
    uint8_t *used = rb_calloc((size_t)(n_truth > 0 ? n_truth : 1), 1);
    for (int i = 0; i < n_det; i++) {
        const int32_t *a = det + 3 * i;
        for (int k = 0; k < n_truth; k++) {
            const int32_t *b = truth + 3 * k;
            if (used[k] || a[0] != b[0]) continue;
            int ok = kind == 0 ? (a[1] <= b[2] && b[1] <= a[2]) : abs(a[2] - b[2]) <= tol;
            if (ok) {
                used[k] = 1;
                s.n_matched++;
                break;
            }
        }
    }
    free(used);
    s.precision = n_det ? (double)s.n_matched / n_det : (n_truth ? 0 : 1);
    s.recall = n_truth ? (double)s.n_matched / n_truth : 1;
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0;
    return s;
}

/* ---- writing ---- */

/* The writers below record a failure (a full disk) in *bad and go on: the file is then
 * discarded whole by h5_finish. */
static void attr_str(int *bad, hid_t loc, const char *name, const char *v) {
    *bad |= h5_attr_write_str(loc, name, v) != 0;
}
static void attr_int(int *bad, hid_t loc, const char *name, int v) {
    *bad |= h5_attr_write_i64(loc, name, v) != 0;
}
static void attr_dbl(int *bad, hid_t loc, const char *name, double v) {
    *bad |= h5_attr_write_f64(loc, name, v) != 0;
}

/* A dataset of `rank` dims; an empty [0, 3] table is written as such (h5py reads shape
 * (0, 3)). */
static hid_t write_ds(int *bad, hid_t loc, const char *name, hid_t file_ty, hid_t mem_ty,
                      int rank, const hsize_t *dims, const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, file_ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) total *= dims[i];
    if (ds < 0 || (total && H5Dwrite(ds, mem_ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        *bad = 1;
    H5Sclose(sp);
    return ds;
}
static void close_ds(hid_t ds) {
    if (ds >= 0) H5Dclose(ds);
}
static void close_group(hid_t g) {
    if (g >= 0) H5Gclose(g);
}
static void write_rows(int *bad, hid_t loc, const char *name, const int32_t *v, int n) {
    hsize_t dims[2] = {(hsize_t)n, 3};
    close_ds(write_ds(bad, loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, v));
}

static void write_score(int *bad, hid_t f, const char *prefix, lifecycle_score s) {
    char name[64];
    snprintf(name, sizeof name, "%s_precision", prefix);
    attr_dbl(bad, f, name, s.precision);
    snprintf(name, sizeof name, "%s_recall", prefix);
    attr_dbl(bad, f, name, s.recall);
    snprintf(name, sizeof name, "%s_f1", prefix);
    attr_dbl(bad, f, name, s.f1);
}

rb_status lifecycle_write(const char *path, const lifecycle_config *c, const lifecycle_meta *m,
                          const lifecycle_result *r, rb_err *e) {
    size_t len = strlen(path) + 32;
    char *tmp = rb_malloc(len);
    hid_t f;
    int bad = 0;
    rb_status st = h5_create(path, tmp, len, &f, e);
    if (st) {
        free(tmp);
        return st;
    }
    attr_str(&bad, f, "format", LIFECYCLE_FORMAT);
    attr_int(&bad, f, "format_version", LIFECYCLE_FORMAT_VERSION);
    attr_str(&bad, f, "raasbench_version", rb_version);
    attr_str(&bad, f, "git_commit", rb_git_commit);
    attr_str(&bad, f, "trace", m->trace_path ? m->trace_path : "");
    attr_int(&bad, f, "layer", m->layer);
    attr_int(&bad, f, "head", m->head);
    attr_int(&bad, f, "kv_head", m->kv_head);
    char sel[128];
    if (m->head >= 0) snprintf(sel, sizeof sel, "query head %d", m->head);
    else if (m->kv_head >= 0)
        snprintf(sel, sizeof sel, "%s over the query heads of KV head %d",
                 lifecycle_reduce_name(m->reduce), m->kv_head);
    else snprintf(sel, sizeof sel, "%s over every query head of the layer",
                  lifecycle_reduce_name(m->reduce));
    attr_str(&bad, f, "selection", sel);
    attr_str(&bad, f, "reduce", lifecycle_reduce_name(m->reduce));
    attr_str(&bad, f, "importance", "ratio to uniform attention: p_t(j) * (t + 1)");
    attr_int(&bad, f, "n_prefill", r->n_prefill);
    attr_int(&bad, f, "n_tokens", r->n_tokens);
    attr_dbl(&bad, f, "k_sigma", c->k_sigma);
    attr_dbl(&bad, f, "min_ratio", c->min_ratio);
    attr_int(&bad, f, "max_gap", c->max_gap);
    attr_int(&bad, f, "min_span", c->min_span);
    attr_dbl(&bad, f, "min_fill", c->min_fill);
    attr_int(&bad, f, "dormant_steps", c->dormant_steps);
    attr_int(&bad, f, "revive_min", c->revive_min);
    attr_int(&bad, f, "smooth", c->smooth);
    attr_int(&bad, f, "recency", r->recency);
    attr_int(&bad, f, "recency_measured", c->recency < 0);
    attr_dbl(&bad, f, "mean_threshold", r->mean_threshold);

    write_rows(&bad, f, "milestones", r->milestones, r->n_milestones);
    write_rows(&bad, f, "phoenix", r->phoenix, r->n_phoenix);

    int nb = c->hist_bins, max_len = 1;
    int32_t *edges = rb_malloc(sizeof(int32_t) * (size_t)(nb + 1));
    int32_t *counts = rb_malloc(sizeof(int32_t) * (size_t)nb);
    /* with truth, both histograms share edges wide enough for either */
    for (int i = 0; i < m->n_truth_milestones; i++) {
        const int32_t *row = m->truth_milestones + 3 * i;
        if (row[2] - row[1] + 1 > max_len) max_len = row[2] - row[1] + 1;
    }
    for (int i = 0; i < r->n_milestones; i++) {
        const int32_t *row = r->milestones + 3 * i;
        if (row[2] - row[1] + 1 > max_len) max_len = row[2] - row[1] + 1;
    }
    nb = lifecycle_hist(r->milestones, r->n_milestones, max_len, nb, edges, counts);
    hid_t g = H5Gcreate2(f, "lifespan_hist", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t de = (hsize_t)nb + 1, dc = (hsize_t)nb;
    close_ds(write_ds(&bad, g, "edges", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &de, edges));
    close_ds(write_ds(&bad, g, "counts", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &dc, counts));
    attr_str(&bad, g, "unit", "decode steps (lifespan = last - first + 1); bin b is [edges[b], "
                        "edges[b+1])");
    close_group(g);

    hsize_t hd[2] = {(hsize_t)r->heat_rows, (hsize_t)r->heat_cols};
    hid_t ds = write_ds(&bad, f, "heatmap", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, hd, r->heatmap);
    attr_int(&bad, ds, "step_bin", r->step_bin);
    attr_int(&bad, ds, "token_bin", r->token_bin);
    attr_int(&bad, ds, "step0", r->n_prefill);
    attr_int(&bad, ds, "token0", 0);
    attr_str(&bad, ds, "value", "max over the cell of p_t(j) * (t + 1); NaN where no token existed");
    close_ds(ds);

    if (m->truth_milestones || m->truth_phoenix) {
        hid_t tg = H5Gcreate2(f, "truth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        write_rows(&bad, tg, "milestones", m->truth_milestones, m->n_truth_milestones);
        write_rows(&bad, tg, "phoenix", m->truth_phoenix, m->n_truth_phoenix);
        int32_t *tedges = rb_malloc(sizeof(int32_t) * (size_t)(nb + 1));
        RB_CHECK(lifecycle_hist(m->truth_milestones, m->n_truth_milestones, max_len,
                                c->hist_bins, tedges, counts) == nb);
        RB_CHECK(!memcmp(tedges, edges, sizeof(int32_t) * (size_t)(nb + 1)));
        hid_t hg = H5Gcreate2(tg, "lifespan_hist", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        close_ds(write_ds(&bad, hg, "counts", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &dc, counts));
        close_group(hg);
        close_group(tg);
        free(tedges);
        write_score(&bad, f, "milestone",
                    lifecycle_match(0, r->milestones, r->n_milestones, m->truth_milestones,
                                    m->n_truth_milestones, 0));
        write_score(&bad, f, "phoenix",
                    lifecycle_match(1, r->phoenix, r->n_phoenix, m->truth_phoenix,
                                    m->n_truth_phoenix, m->phoenix_tol));
        attr_int(&bad, f, "phoenix_tol", m->phoenix_tol);
    }
    free(edges);
    free(counts);
    if (bad) st = output_write_error(e, path, "the lifecycle file");
    st = h5_finish(f, tmp, path, st, e);
    free(tmp);
    return st;
}

/* ---- reading ---- */

/* A [n, 3] table of rows. */
static rb_status read_rows(hid_t f, const char *name, int32_t **rows, int *n, const char *path,
                           rb_err *e) {
    hsize_t d[2];
    rb_status st = h5_read_dataset(f, name, H5T_NATIVE_INT32, 2, d, (void **)rows, path, e);
    if (st) return st;
    if (d[1] != 3) return rb_fail(e, RB_EINPUT, path, "%s is not [n, 3]", name);
    *n = (int)d[0];
    return RB_OK;
}

static int has_link(hid_t f, const char *name) { return H5Lexists(f, name, H5P_DEFAULT) > 0; }

static rb_status read_tables(hid_t f, const char *path, lifecycle_file *o, rb_err *e) {
    rb_status st;
    int truth = has_link(f, "truth");
    if ((st = read_rows(f, "milestones", &o->milestones, &o->n_milestones, path, e)) ||
        (st = read_rows(f, "phoenix", &o->phoenix, &o->n_phoenix, path, e)))
        return st;
    if (truth && has_link(f, "truth/milestones") &&
        (st = read_rows(f, "truth/milestones", &o->truth_milestones, &o->n_truth_milestones,
                        path, e)))
        return st;
    if (truth && has_link(f, "truth/phoenix") &&
        (st = read_rows(f, "truth/phoenix", &o->truth_phoenix, &o->n_truth_phoenix, path, e)))
        return st;
    hsize_t de, dc, dt, dh[2];
    if ((st = h5_read_dataset(f, "lifespan_hist/edges", H5T_NATIVE_INT32, 1, &de,
                              (void **)&o->hist_edges, path, e)) ||
        (st = h5_read_dataset(f, "lifespan_hist/counts", H5T_NATIVE_INT32, 1, &dc,
                              (void **)&o->hist_counts, path, e)))
        return st;
    if (de != dc + 1)
        return rb_fail(e, RB_EINPUT, path, "lifespan_hist: %llu edges for %llu counts",
                       (unsigned long long)de, (unsigned long long)dc);
    o->n_bins = (int)dc;
    if (truth && has_link(f, "truth/lifespan_hist")) {
        if ((st = h5_read_dataset(f, "truth/lifespan_hist/counts", H5T_NATIVE_INT32, 1, &dt,
                                  (void **)&o->truth_hist_counts, path, e)))
            return st;
        if (dt != dc)
            return rb_fail(e, RB_EINPUT, path, "truth/lifespan_hist has %llu bins, not %llu",
                           (unsigned long long)dt, (unsigned long long)dc);
    }
    if ((st = h5_read_dataset(f, "heatmap", H5T_NATIVE_FLOAT, 2, dh, (void **)&o->heatmap,
                              path, e)))
        return st;
    o->heat_rows = (int)dh[0], o->heat_cols = (int)dh[1];
    hid_t ds = H5Dopen2(f, "heatmap", H5P_DEFAULT);
    int64_t sb = 0, tb = 0, s0 = 0, t0 = 0; /* read even when an attribute is missing */
    if (h5_attr_read_i64(ds, "step_bin", &sb) || h5_attr_read_i64(ds, "token_bin", &tb) ||
        h5_attr_read_i64(ds, "step0", &s0) || h5_attr_read_i64(ds, "token0", &t0) || sb < 1 ||
        tb < 1)
        st = rb_fail(e, RB_EINPUT, path, "heatmap lacks valid step_bin/token_bin/step0/token0");
    H5Dclose(ds);
    o->step_bin = (int)sb, o->token_bin = (int)tb, o->step0 = (int)s0, o->token0 = (int)t0;
    int64_t np, nt, ly;
    if (!st && (h5_attr_read_i64(f, "n_prefill", &np) || h5_attr_read_i64(f, "n_tokens", &nt) ||
                h5_attr_read_i64(f, "layer", &ly) || np < 1 || nt <= np))
        st = rb_fail(e, RB_EINPUT, path, "lacks valid n_prefill/n_tokens/layer attributes");
    if (!st) o->n_prefill = (int)np, o->n_tokens = (int)nt, o->layer = (int)ly;
    return st;
}

rb_status lifecycle_read(const char *path, lifecycle_file *out, rb_err *e) {
    memset(out, 0, sizeof *out);
    char fmt[64];
    int64_t version;
    if (rb_input_check(path, e)) return RB_EINPUT;
    if (h5_file_format(path, fmt, sizeof fmt, &version) != 0)
        return rb_fail(e, RB_EINPUT, path, "not an HDF5 file");
    if (strcmp(fmt, LIFECYCLE_FORMAT))
        return rb_fail(e, RB_EINPUT, path, "not a raasbench lifecycle file (format '%s')", fmt);
    if (version != LIFECYCLE_FORMAT_VERSION)
        return rb_fail(e, RB_EINPUT, path, "lifecycle format_version %lld not supported",
                       (long long)version);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    rb_status st = read_tables(f, path, out, e);
    H5Fclose(f);
    if (st) lifecycle_file_free(out);
    return st;
}

void lifecycle_file_free(lifecycle_file *f) {
    free(f->milestones), free(f->phoenix), free(f->truth_milestones), free(f->truth_phoenix);
    free(f->hist_edges), free(f->hist_counts), free(f->truth_hist_counts), free(f->heatmap);
    memset(f, 0, sizeof *f);
}
