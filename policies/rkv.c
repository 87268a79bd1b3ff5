/* rkv.c: R-KV, redundancy-aware KV compression for reasoning models (Cai et al., arXiv
 * 2505.24133): when the cache is full it is compressed to L-C tokens, the last W kept (their
 * queries are the observers) and the rest chosen by a score that mixes importance (the
 * window queries' attention, max-pooled along positions) with redundancy (how similar a
 * key is to the other keys, by cosine): lambda * importance - (1 - lambda) * redundancy.
 * Once full it compresses every C steps (the paper's buffer). Token-granular slots. */
#include <math.h>
#include <string.h>

#include "policy_util.h"

static const policy_param_spec params[] = {
    {"window", PARAM_INT, "8", NULL, 1, 1 << 16,
     "alpha: the last alpha queries score the keys and their keys are kept (paper and code: "
     "8); at most max(1, (L-C)/2) are used"},
    {"interval", PARAM_INT, "128", NULL, 1, 1 << 20,
     "C: the paper's buffer; a compression frees C slots, so it runs every C steps once full "
     "(at most max(1, L/2))"},
    {"lambda", PARAM_FLOAT, "0.1", NULL, 0, 1,
     "weight of importance against redundancy (paper: 0.1; official code: 0.07)"},
    {"kernel", PARAM_INT, "7", NULL, 1, 257, "max-pooling kernel of the importance (code: 7, odd)"},
    {"threshold", PARAM_FLOAT, "0.5", NULL, -1, 1,
     "cosine above which two keys are similar: each key's latest similar key is not counted "
     "against it (code: 0.5)"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_shape sh;
    int last, W, C, kernel;
    double lambda, thr;
    float scale;
    pu_list *heads;  /* [n_kv] */
    pu_qring qr;     /* the last W queries */
    int cap;         /* entries of the scratch arrays */
    double *imp, *pooled, *red, *lg, *mx, *kn; /* scratch; kn [cap, d] unit keys */
    int *top;
};

static rb_status rkv_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "rkv", PU_BUDGET_TOKENS, e);
    if (st) return st;
    int kernel = (int)policy_param_num(cfg->params, "kernel");
    if (kernel % 2 == 0)
        return rb_fail(e, RB_EINPUT, "rkv.kernel", "must be odd (got %d): pooling is centred, "
                       "padding kernel/2 on each side", kernel);
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    int L = cfg->budget;
    s->C = (int)policy_param_num(cfg->params, "interval");
    if (s->C > L / 2) s->C = L / 2 > 1 ? L / 2 : 1;
    s->W = (int)policy_param_num(cfg->params, "window");
    int room = (L - s->C) / 2 > 1 ? (L - s->C) / 2 : 1;
    if (s->W > room) s->W = room;
    if (L - s->C < 1) s->W = 0;
    s->kernel = kernel;
    s->lambda = policy_param_num(cfg->params, "lambda");
    s->thr = policy_param_num(cfg->params, "threshold");
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = pu_lists_create(cfg);
    pu_qring_init(&s->qr, s->W, &s->sh);
    *out = s;
    return RB_OK;
}

static void rkv_destroy(policy_state *s) {
    if (!s) return;
    pu_lists_destroy(s->heads, s->sh.n_kv);
    pu_qring_free(&s->qr);
    free(s->imp), free(s->pooled), free(s->red), free(s->lg), free(s->mx), free(s->kn);
    free(s->top);
    free(s);
}

/* Scratch for n entries (allocated at the first compression: only then is it needed). */
static void scratch(policy_state *s, int n) {
    if (n <= s->cap) return;
    s->cap = n;
    size_t N = (size_t)n;
    s->imp = rb_realloc(s->imp, sizeof(double) * N);
    s->pooled = rb_realloc(s->pooled, sizeof(double) * N);
    s->red = rb_realloc(s->red, sizeof(double) * N);
    s->lg = rb_realloc(s->lg, sizeof(double) * N);
    s->mx = rb_realloc(s->mx, sizeof(double) * N);
    s->kn = rb_realloc(s->kn, sizeof(double) * N * (size_t)s->sh.d);
    s->top = rb_realloc(s->top, sizeof(int) * N);
}

static void rkv_prefill(policy_state *s, int n, const float *q, const float *k,
                        const float *v) {
    RB_CHECK(s->last == -1);
    pu_lists_prefill(s->heads, &s->sh, n, k, v);
    pu_qring_prefill(&s->qr, n, q);
    s->last = n - 1;
}

/* Importance of candidates 0..m-1 into s->imp: for each window query, the max over the
 * group's heads of the scaled logits, a softmax over the candidates, averaged over the
 * window; then max-pooled along the candidates into s->pooled. */
static void importance(policy_state *s, const pu_list *hd, int g, int m, int W) {
    int d = s->sh.d, G = s->sh.group;
    for (int j = 0; j < m; j++) s->imp[j] = 0;
    for (int w = 0; w < W; w++) {
        const float *qrow = pu_qring_get(&s->qr, hd->pos[m + w]);
        double top = -INFINITY, z = 0;
        for (int j = 0; j < m; j++) {
            const float *kj = pu_tokens_k(&hd->tok, hd->pos[j]);
            double best = -INFINITY;
            for (int h = g * G; h < (g + 1) * G; h++) {
                const float *qh = qrow + (size_t)h * d;
                double dot = 0;
                for (int c = 0; c < d; c++) dot += (double)qh[c] * kj[c];
                if (dot * s->scale > best) best = dot * s->scale;
            }
            s->lg[j] = best;
            if (best > top) top = best;
        }
        for (int j = 0; j < m; j++) z += exp(s->lg[j] - top);
        for (int j = 0; j < m; j++) s->imp[j] += exp(s->lg[j] - top) / z / W;
    }
    pu_pool1d(s->imp, m, s->kernel, 0, s->pooled);
}

/* Redundancy of every entry 0..n-1 into s->red, as the official code computes it: cosine
 * similarity of unit keys (norm + 1e-8), the diagonal zeroed; in each row i the entry of
 * the latest key j with similarity > threshold is zeroed too (j = 0 when there is none, as
 * the code's torch.where(..., 0) gives); then each column's mean over the n rows, and a
 * softmax over the n columns. O(n^2 d) time, O(n d) memory: row by row. */
static void redundancy(policy_state *s, const pu_list *hd, int n) {
    int d = s->sh.d;
    for (int i = 0; i < n; i++) {
        const float *k = pu_tokens_k(&hd->tok, hd->pos[i]);
        double nn = 0;
        for (int c = 0; c < d; c++) nn += (double)k[c] * k[c];
        double inv = 1.0 / (sqrt(nn) + 1e-8);
        for (int c = 0; c < d; c++) s->kn[(size_t)i * d + c] = k[c] * inv;
        s->red[i] = 0;
    }
    for (int i = 0; i < n; i++) {
        const double *ki = s->kn + (size_t)i * d;
        int keep = 0;
        for (int j = 0; j < n; j++) {
            double dot = 0;
            if (j != i) {
                const double *kj = s->kn + (size_t)j * d;
                for (int c = 0; c < d; c++) dot += ki[c] * kj[c];
            }
            s->lg[j] = dot;
            if (dot > s->thr) keep = j;
        }
        s->lg[keep] = 0;
        for (int j = 0; j < n; j++) s->red[j] += s->lg[j];
    }
    double top = -INFINITY, z = 0;
    for (int j = 0; j < n; j++) {
        s->red[j] /= n;
        if (s->red[j] > top) top = s->red[j];
    }
    for (int j = 0; j < n; j++) z += exp(s->red[j] - top);
    for (int j = 0; j < n; j++) s->red[j] = exp(s->red[j] - top) / z;
}

/* Compress KV head g down to L - C entries: the last W, and the best L - C - W before them
 * by lambda * pooled importance - (1 - lambda) * redundancy (ties: the lower position). */
static void compress(policy_state *s, int g) {
    pu_list *hd = &s->heads[g];
    int n = hd->n, keep = s->sh.budget - s->C, W = s->W;
    if (keep < W) W = keep;
    int m = n - W;
    scratch(s, n);
    importance(s, hd, g, m, W);
    redundancy(s, hd, n);
    for (int j = 0; j < m; j++) {
        double imp = W > 0 ? s->pooled[j] : 0; /* no observer: redundancy alone */
        s->mx[j] = s->lambda * imp - (1 - s->lambda) * s->red[j];
    }
    int nk = pu_topk(s->mx, m, keep - W, s->top);
    pu_list_keep(hd, m, s->top, nk);
}

static void rkv_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        if (s->heads[g].n >= s->sh.budget) compress(s, g);
        pu_list_push(&s->heads[g], pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d);
    }
    s->last = pos;
}

static void rkv_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_qring_put(&s->qr, step->pos, step->q);
    pu_sel_begin(sel, 1);
    pu_lists_select(s->heads, &s->sh, sel);
}

static int64_t rkv_meta_bytes(const policy_state *s) {
    /* a position and a slot per resident token, and the window's queries */
    return pu_qring_bytes(&s->qr) + pu_lists_meta_bytes(s->heads, s->sh.n_kv);
}

const policy_ops policy_rkv = {
    .name = "rkv",
    .summary = "L tokens: when full, keep L-C by window attention minus key redundancy (R-KV)",
    .flags = 0,
    .params = params,
    .create = rkv_create,
    .destroy = rkv_destroy,
    .prefill = rkv_prefill,
    .append = rkv_append,
    .select = rkv_select,
    .observe = NULL,
    .meta_bytes = rkv_meta_bytes,
};
