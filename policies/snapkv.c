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

typedef struct snap_head {
    pu_tokens tok;
    int n, cap;   /* resident entries, capacity */
    int32_t *pos; /* [cap] resident positions, ascending */
} snap_head;

struct policy_state {
    pu_shape sh;
    int last, W, C, kernel, avg;
    float scale;
    snap_head *heads;  /* [n_kv] */
    float *qbuf;       /* [W, n_q, d] the last W queries, ring by position % W */
    int32_t *qpos;     /* [W] position of each ring row, -1 when empty */
    double *score;     /* [cap] scratch: votes, then pooled */
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
    s->heads = rb_calloc((size_t)s->sh.n_kv, sizeof *s->heads);
    int cap = L + 1;
    for (int g = 0; g < s->sh.n_kv; g++) {
        snap_head *hd = &s->heads[g];
        pu_tokens_init(&hd->tok, cfg->pools[g], cfg->max_tokens);
        hd->cap = cap;
        hd->pos = rb_malloc(sizeof *hd->pos * (size_t)cap);
    }
    int wq = s->W > 0 ? s->W : 1;
    s->qbuf = rb_calloc((size_t)wq * s->sh.n_q * s->sh.d, sizeof *s->qbuf);
    s->qpos = rb_malloc(sizeof *s->qpos * (size_t)wq);
    for (int i = 0; i < wq; i++) s->qpos[i] = -1;
    s->score = rb_malloc(sizeof *s->score * (size_t)cap);
    s->pooled = rb_malloc(sizeof *s->pooled * (size_t)cap);
    s->lg = rb_malloc(sizeof *s->lg * (size_t)cap);
    s->top = rb_malloc(sizeof *s->top * (size_t)cap);
    *out = s;
    return RB_OK;
}

static void snap_destroy(policy_state *s) {
    if (!s) return;
    for (int g = 0; g < s->sh.n_kv; g++) {
        pu_tokens_free(&s->heads[g].tok);
        free(s->heads[g].pos);
    }
    free(s->heads);
    free(s->qbuf), free(s->qpos);
    free(s->score), free(s->pooled), free(s->lg), free(s->top);
    free(s);
}

/* Grow the per-entry arrays for a prompt longer than L. */
static void grow(policy_state *s, snap_head *hd, int need) {
    if (need <= hd->cap) return;
    hd->cap = need;
    hd->pos = rb_realloc(hd->pos, sizeof *hd->pos * (size_t)need);
    s->score = rb_realloc(s->score, sizeof *s->score * (size_t)need);
    s->pooled = rb_realloc(s->pooled, sizeof *s->pooled * (size_t)need);
    s->lg = rb_realloc(s->lg, sizeof *s->lg * (size_t)need);
    s->top = rb_realloc(s->top, sizeof *s->top * (size_t)need);
}

static void remember_query(policy_state *s, int pos, const float *q) {
    if (s->W == 0) return;
    size_t row = (size_t)s->sh.n_q * s->sh.d;
    memcpy(s->qbuf + (size_t)(pos % s->W) * row, q, sizeof(float) * row);
    s->qpos[pos % s->W] = pos;
}

static void snap_prefill(policy_state *s, int n, const float *q, const float *k,
                         const float *v) {
    RB_CHECK(s->last == -1);
    size_t row = (size_t)s->sh.n_kv * s->sh.d;
    for (int g = 0; g < s->sh.n_kv; g++) {
        snap_head *hd = &s->heads[g];
        grow(s, hd, n + 1);
        for (int i = 0; i < n; i++) {
            pu_tokens_store(&hd->tok, i, k + i * row + (size_t)g * s->sh.d,
                            v + i * row + (size_t)g * s->sh.d);
            hd->pos[hd->n++] = i;
        }
    }
    for (int i = n - s->W > 0 ? n - s->W : 0; i < n; i++)
        remember_query(s, i, q + (size_t)i * s->sh.n_q * s->sh.d);
    s->last = n - 1;
}

/* Compress KV head g down to keep = L - C entries: the last W entries (the window) and the
 * keep - W candidates before them with the best pooled votes (ties: the lower position). */
static void compress(policy_state *s, int g) {
    snap_head *hd = &s->heads[g];
    int n = hd->n, keep = s->sh.budget - s->C, W = s->W, d = s->sh.d, G = s->sh.group;
    if (keep < W) W = keep; /* only L - C < 1 gets here (W = 0 then) */
    int m = n - W;          /* candidates: entries 0..m-1 */
    int want = keep - W;
    for (int i = 0; i < m; i++) s->score[i] = 0;
    /* Votes: each window query's softmax over the resident keys it may see (positions <= its
     * own), summed over the group's heads and the window's queries; only the candidates'
     * shares are kept (as the paper's attn_weights[..., :-W]). */
    for (int w = 0; w < W; w++) {
        int qp = hd->pos[m + w];
        const float *qrow = s->qbuf + (size_t)(qp % s->W) * s->sh.n_q * d;
        RB_CHECK(s->qpos[qp % s->W] == qp);
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
    int r = s->kernel / 2;
    for (int i = 0; i < m; i++) {
        double acc = s->avg ? 0 : -INFINITY;
        for (int j = i - r; j <= i + r; j++) {
            if (j < 0 || j >= m) continue;
            if (s->avg) acc += s->score[j];
            else if (s->score[j] > acc) acc = s->score[j];
        }
        s->pooled[i] = s->avg ? acc / s->kernel : acc;
    }
    int nk = pu_topk(s->pooled, m, want, s->top);
    /* s->top is ascending: drop the rest, compact the survivors in order */
    int o = 0, t = 0;
    for (int i = 0; i < m; i++) {
        if (t < nk && s->top[t] == i) {
            hd->pos[o++] = hd->pos[i];
            t++;
        } else {
            pu_tokens_drop(&hd->tok, hd->pos[i]);
        }
    }
    for (int i = m; i < n; i++) hd->pos[o++] = hd->pos[i];
    hd->n = o;
}

static void snap_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        snap_head *hd = &s->heads[g];
        if (hd->n >= s->sh.budget) compress(s, g);
        pu_tokens_store(&hd->tok, pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d);
        hd->pos[hd->n++] = pos;
    }
    s->last = pos;
}

static void snap_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    remember_query(s, step->pos, step->q);
    pu_sel_begin(sel, 1);
    for (int g = 0; g < s->sh.n_kv; g++) {
        snap_head *hd = &s->heads[g];
        for (int i = 0; i < hd->n; i++) {
            int p = hd->pos[i];
            pu_sel_add(sel, g * s->sh.group, p, pu_tokens_k(&hd->tok, p),
                       pu_tokens_v(&hd->tok, p));
        }
    }
}

static int64_t snap_meta_bytes(const policy_state *s) {
    /* a position and a slot per resident token, and the window's queries */
    int64_t b = (int64_t)s->W * s->sh.n_q * s->sh.d * (int64_t)sizeof(float);
    for (int g = 0; g < s->sh.n_kv; g++)
        b += (int64_t)s->heads[g].n * (int64_t)(sizeof(int32_t) + sizeof(kv_slot));
    return b;
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
