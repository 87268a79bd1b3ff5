/* snapkv.c: SnapKV for decoding (Li et al., arXiv 2404.14469): the queries of an observation
 * window (the last W positions) vote for the keys before them; the votes, pooled along the
 * positions, pick which keys stay. The paper compresses the prompt once; here the same
 * compression runs during the decode whenever the cache is full: down to L-C tokens (the W
 * window tokens plus the L-C-W best voted), so it runs every C steps once full and at most L
 * tokens are ever resident. Token-granular: evicted slots are reused. */
#include <math.h>
#include <string.h>

#include "policy_util.h"

static const policy_param_spec params[] = {
    {"window", PARAM_INT, "32", NULL, 1, 1 << 16,
     "observation window W: the last W queries vote and their W keys are kept (paper: 32); "
     "at most max(1, (L-C)/2) are used"},
    {"kernel", PARAM_INT, "7", NULL, 1, 257,
     "pooling kernel along positions (paper: 7, odd; padding kernel/2)"},
    {"pool", PARAM_CHOICE, "max", "max|avg", 0, 0,
     "max: the paper's max pooling; avg: the official code's default (zero padding counted)"},
    {"interval", PARAM_INT, "16", NULL, 1, 1 << 20,
     "C: a compression frees C slots, so it runs every C steps once full (ours; at most "
     "max(1, L/4))"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_shape sh;
    int last, W, C, kernel, avg;
    float scale;
    pu_list *heads;    /* [n_kv] */
    pu_qring qr;       /* the last W queries */
    int cap;           /* entries of the scratch arrays */
    double *score;     /* [cap] scratch: votes */
    double *pooled;    /* [cap] scratch */
    double *lg;        /* [cap] scratch: logits of one query */
    int *top;          /* [cap] scratch */
};

static rb_status snap_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "snapkv", PU_BUDGET_TOKENS, e);
    if (st) return st;
    int kernel = (int)policy_param_num(cfg->params, "kernel");
    if (kernel % 2 == 0)
        return rb_fail(e, RB_EINPUT, "snapkv.kernel", "must be odd (got %d): pooling is "
                       "centred, padding kernel/2 on each side", kernel);
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    int L = cfg->budget;
    s->C = (int)policy_param_num(cfg->params, "interval");
    if (s->C > L / 4) s->C = L / 4 > 1 ? L / 4 : 1;
    s->W = (int)policy_param_num(cfg->params, "window");
    int room = (L - s->C) / 2 > 1 ? (L - s->C) / 2 : 1;
    if (s->W > room) s->W = room;
    if (L - s->C < 1) s->W = 0;
    s->kernel = kernel;
    s->avg = !strcmp(policy_param_str(cfg->params, "pool"), "avg");
    s->scale = cfg->attn_scale;
    s->last = -1;
    s->heads = pu_lists_create(cfg);
    pu_qring_init(&s->qr, s->W, &s->sh);
    *out = s;
    return RB_OK;
}

static void snap_destroy(policy_state *s) {
    if (!s) return;
    pu_lists_destroy(s->heads, s->sh.n_kv);
    pu_qring_free(&s->qr);
    free(s->score), free(s->pooled), free(s->lg), free(s->top);
    free(s);
}

/* Scratch for n entries (allocated at the first compression: only then is it needed). */
static void scratch(policy_state *s, int n) {
    if (n <= s->cap) return;
    s->cap = n;
    s->score = rb_realloc(s->score, sizeof *s->score * (size_t)n);
    s->pooled = rb_realloc(s->pooled, sizeof *s->pooled * (size_t)n);
    s->lg = rb_realloc(s->lg, sizeof *s->lg * (size_t)n);
    s->top = rb_realloc(s->top, sizeof *s->top * (size_t)n);
}

static void snap_prefill(policy_state *s, int n, const float *q, const float *k,
                         const float *v) {
    RB_CHECK(s->last == -1);
    pu_lists_prefill(s->heads, &s->sh, n, k, v);
    pu_qring_prefill(&s->qr, n, q);
    s->last = n - 1;
}

/* Compress KV head g down to keep = L - C entries: the last W entries (the window) and the
 * keep - W candidates before them with the best pooled votes (ties: the lower position). */
static void compress(policy_state *s, int g) {
    pu_list *hd = &s->heads[g];
    int n = hd->n, keep = s->sh.budget - s->C, W = s->W, d = s->sh.d, G = s->sh.group;
    if (keep < W) W = keep; /* only L - C < 1 gets here (W = 0 then) */
    int m = n - W;          /* candidates: entries 0..m-1 */
    int want = keep - W;
    scratch(s, n);
    for (int i = 0; i < m; i++) s->score[i] = 0;
    /* Votes: each window query's softmax over the resident keys it may see (positions <= its
     * own), summed over the group's heads and the window's queries; only the candidates'
     * shares are kept (as the paper's attn_weights[..., :-W]). */
    for (int w = 0; w < W; w++) {
        int qp = hd->pos[m + w];
        const float *qrow = pu_qring_get(&s->qr, qp);
        int nv = m + w + 1; /* keys at entries 0..m+w (ascending positions <= qp) */
        for (int h = g * G; h < (g + 1) * G; h++) {
            const float *qh = qrow + (size_t)h * d;
            double mx = -INFINITY, z = 0;
            for (int j = 0; j < nv; j++) {
                const float *kj = pu_tokens_k(&hd->tok, hd->pos[j]);
                double dot = 0;
                for (int c = 0; c < d; c++) dot += (double)qh[c] * kj[c];
                s->lg[j] = dot * s->scale;
                if (s->lg[j] > mx) mx = s->lg[j];
            }
            for (int j = 0; j < nv; j++) z += exp(s->lg[j] - mx);
            for (int j = 0; j < m; j++) s->score[j] += exp(s->lg[j] - mx) / z;
        }
    }
    /* Pooling along the candidates in position order, centred, padding kernel/2. */
    pu_pool1d(s->score, m, s->kernel, s->avg, s->pooled);
    int nk = pu_topk(s->pooled, m, want, s->top);
    pu_list_keep(hd, m, s->top, nk);
}

static void snap_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        if (s->heads[g].n >= s->sh.budget) compress(s, g);
        pu_list_push(&s->heads[g], pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d);
    }
    s->last = pos;
}

static void snap_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_qring_put(&s->qr, step->pos, step->q);
    pu_sel_begin(sel, 1);
    pu_lists_select(s->heads, &s->sh, sel);
}

static int64_t snap_meta_bytes(const policy_state *s) {
    /* a position and a slot per resident token, and the window's queries */
    return pu_qring_bytes(&s->qr) + pu_lists_meta_bytes(s->heads, s->sh.n_kv);
}

const policy_ops policy_snapkv = {
    .name = "snapkv",
    .summary = "L tokens: when full, the last W queries' pooled votes keep L-C (window kept)",
    .flags = 0,
    .params = params,
    .create = snap_create,
    .destroy = snap_destroy,
    .prefill = snap_prefill,
    .append = snap_append,
    .select = snap_select,
    .observe = NULL,
    .meta_bytes = snap_meta_bytes,
};
