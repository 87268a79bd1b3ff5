/* stepper.c: one policy instance on one layer (see stepper.h). The stepper is where a
 * policy's decisions meet real memory: it owns the pools the policy stores into, builds the
 * selection buffers, runs attention over exactly the rows the policy selected, and times
 * the whole step (append + select + attention + observe). */
#include "stepper.h"

#include <math.h>
#include <string.h>

struct stepper {
    const policy_ops *ops;
    const attn_backend *be;  /* every attention of the stepper runs here */
    policy_config cfg;       /* cfg.params points at params: the caller's may not outlive create */
    policy_params params;
    policy_state *state;
    kv_pool **pools;         /* [n_kv_heads] */
    policy_selection sel;
    float *probs;            /* [n_q_heads, cap] */
    float *work;             /* [n_q_heads, cap] scratch for attention */
    /* Prompt buffered token by token (live decode) until the first decode step. */
    float *pq, *pk, *pv;     /* [cap, heads, d] */
    int n_prompt;
    int prefilled;
    /* Full key copy for policies that need dense logits when the caller has none. */
    float *k_all;            /* [cap, n_kv_heads, d] */
    float *dense_logits, *dense_lse;
    int64_t last_ns;
};

rb_status stepper_create(const policy_ops *ops, const policy_config *cfg, int elem_bytes,
                         const attn_backend *backend, stepper **out, rb_err *e) {
    *out = NULL;
    RB_CHECK(cfg->n_kv_heads > 0 && cfg->n_q_heads % cfg->n_kv_heads == 0 && cfg->max_tokens > 0);
    stepper *s = rb_calloc(1, sizeof *s);
    s->ops = ops;
    s->be = backend ? backend : attn_backend_default();
    s->cfg = *cfg;
    if (cfg->params) s->params = *cfg->params, s->cfg.params = &s->params;
    s->pools = rb_calloc((size_t)cfg->n_kv_heads, sizeof *s->pools);
    for (int h = 0; h < cfg->n_kv_heads; h++)
        s->pools[h] = kv_pool_create(cfg->head_dim, cfg->page_size, elem_bytes);
    s->cfg.pools = s->pools;
    rb_status st = ops->create(&s->cfg, &s->state, e);
    if (st) {
        stepper_destroy(s);
        return st;
    }
    int cap = cfg->max_tokens, H = cfg->n_q_heads;
    s->sel.n_q_heads = H;
    s->sel.group_size = H / cfg->n_kv_heads;
    s->sel.cap = cap;
    s->sel.n = rb_calloc((size_t)H, sizeof(int));
    s->sel.pos = rb_malloc(sizeof(int32_t) * (size_t)H * cap);
    s->sel.k = rb_malloc(sizeof(float *) * (size_t)H * cap);
    s->sel.v = rb_malloc(sizeof(float *) * (size_t)H * cap);
    s->probs = rb_malloc(sizeof(float) * (size_t)H * cap);
    s->work = rb_malloc(sizeof(float) * (size_t)H * cap);
    *out = s;
    return RB_OK;
}

void stepper_destroy(stepper *s) {
    if (!s) return;
    if (s->state) s->ops->destroy(s->state);
    for (int h = 0; s->pools && h < s->cfg.n_kv_heads; h++) kv_pool_destroy(s->pools[h]);
    free(s->pools);
    free(s->sel.n), free(s->sel.pos), free(s->sel.k), free(s->sel.v);
    free(s->probs), free(s->work), free(s->pq), free(s->pk), free(s->pv);
    free(s->k_all), free(s->dense_logits), free(s->dense_lse);
    free(s);
}

static void keep_keys(stepper *s, int pos0, int n, const float *k) {
    if (!(s->ops->flags & POLICY_NEEDS_DENSE)) return;
    size_t row = (size_t)s->cfg.n_kv_heads * s->cfg.head_dim;
    if (!s->k_all) s->k_all = rb_malloc(sizeof(float) * row * (size_t)s->cfg.max_tokens);
    memcpy(s->k_all + (size_t)pos0 * row, k, sizeof(float) * row * (size_t)n);
}

void stepper_prefill(stepper *s, int n, const float *q, const float *k, const float *v,
                     float *out) {
    RB_CHECK(!s->prefilled && s->n_prompt == 0 && n > 0 && n < s->cfg.max_tokens);
    const policy_config *c = &s->cfg;
    if (out)
        s->be->causal(q, k, v, n, c->n_q_heads, c->n_kv_heads, c->head_dim, c->attn_scale, out,
                      NULL);
    keep_keys(s, 0, n, k);
    s->ops->prefill(s->state, n, q, k, v);
    s->prefilled = 1;
    s->n_prompt = n;
}

void stepper_prefill_token(stepper *s, int pos, const float *q, const float *k, const float *v,
                           float *out) {
    const policy_config *c = &s->cfg;
    RB_CHECK(!s->prefilled && pos == s->n_prompt && pos < c->max_tokens);
    size_t qrow = (size_t)c->n_q_heads * c->head_dim, krow = (size_t)c->n_kv_heads * c->head_dim;
    if (!s->pq) {
        s->pq = rb_malloc(sizeof(float) * qrow * (size_t)c->max_tokens);
        s->pk = rb_malloc(sizeof(float) * krow * (size_t)c->max_tokens);
        s->pv = rb_malloc(sizeof(float) * krow * (size_t)c->max_tokens);
    }
    memcpy(s->pq + (size_t)pos * qrow, q, sizeof(float) * qrow);
    memcpy(s->pk + (size_t)pos * krow, k, sizeof(float) * krow);
    memcpy(s->pv + (size_t)pos * krow, v, sizeof(float) * krow);
    s->n_prompt = pos + 1;
    s->be->dense_heads(q, c->n_q_heads, c->n_kv_heads, s->pk, s->pv, pos + 1, c->head_dim,
                       (int)krow, c->attn_scale, NULL, NULL, out);
}

/* Hand a prompt buffered by stepper_prefill_token to the policy. */
static void flush_prompt(stepper *s) {
    if (s->prefilled) return;
    if (s->n_prompt == 0) { /* no prompt: the policy starts from its empty state */
        s->prefilled = 1;
        return;
    }
    keep_keys(s, 0, s->n_prompt, s->pk);
    s->ops->prefill(s->state, s->n_prompt, s->pq, s->pk, s->pv);
    free(s->pq), free(s->pk), free(s->pv);
    s->pq = s->pk = s->pv = NULL;
    s->prefilled = 1;
}

/* Dense logits over 0..pos from the stepper's own key copy (policies that need them when
 * the caller, a live decode, has none). Not the backend's dense_heads: this scalar loop
 * (products summed in order, lse through double exp) is what the published oracle results
 * of live decode were computed with, and dense_heads's vector sums give different logits in
 * the last bits (most of them, measured), which can change a top-k choice. */
static void own_dense_logits(stepper *s, int pos, const float *q) {
    const policy_config *c = &s->cfg;
    int H = c->n_q_heads, G = H / c->n_kv_heads, n = pos + 1, stride = c->max_tokens;
    if (!s->dense_logits) {
        s->dense_logits = rb_malloc(sizeof(float) * (size_t)H * stride);
        s->dense_lse = rb_malloc(sizeof(float) * (size_t)H);
    }
    size_t krow = (size_t)c->n_kv_heads * c->head_dim;
    for (int h = 0; h < H; h++) {
        const float *qh = q + (size_t)h * c->head_dim;
        const float *kb = s->k_all + (size_t)(h / G) * c->head_dim;
        float *lg = s->dense_logits + (size_t)h * stride, m = -INFINITY;
        for (int j = 0; j < n; j++) {
            float dot = 0;
            for (int i = 0; i < c->head_dim; i++) dot += qh[i] * kb[(size_t)j * krow + i];
            lg[j] = dot * c->attn_scale;
            if (lg[j] > m) m = lg[j];
        }
        double z = 0;
        for (int j = 0; j < n; j++) z += exp(lg[j] - m);
        s->dense_lse[h] = (float)(m + log(z));
    }
}

/* The policy's part of a step: append, then select. */
static void append_select(stepper *s, policy_step *st, int pos, const float *q, const float *k,
                          const float *v, const float *dense_logits, const float *dense_lse,
                          int stride) {
    const policy_config *c = &s->cfg;
    RB_CHECK(pos < c->max_tokens);
    flush_prompt(s);
    *st = (policy_step){.pos = pos, .q = q};
    if (s->ops->flags & POLICY_NEEDS_DENSE) {
        keep_keys(s, pos, 1, k);
        if (!dense_logits) {
            own_dense_logits(s, pos, q);
            dense_logits = s->dense_logits, dense_lse = s->dense_lse, stride = c->max_tokens;
        }
        st->dense_logits = dense_logits, st->dense_lse = dense_lse, st->score_stride = stride;
    }
    s->ops->append(s->state, pos, k, v);
    s->sel.shared_by_group = 0;
    s->ops->select(s->state, st, &s->sel);
}

/* Real attention of every query head over its selected pool rows. */
static void attend(stepper *s, const float *q, float *out) {
    const policy_config *c = &s->cfg;
    int G = c->n_q_heads / c->n_kv_heads, d = c->head_dim, cap = s->sel.cap;
    for (int g = 0; g < c->n_kv_heads; g++) {
        size_t h0 = (size_t)g * G;
        s->be->gather(q + h0 * d, G, s->sel.k + h0 * cap, s->sel.v + h0 * cap, s->sel.n + h0,
                      cap, s->sel.shared_by_group, d, c->attn_scale, s->probs + h0 * cap,
                      out + h0 * d, s->work);
    }
}

void stepper_step(stepper *s, int pos, const float *q, const float *k, const float *v,
                  const float *dense_logits, const float *dense_lse, int stride, float *out) {
    int64_t t0 = rb_now_ns();
    policy_step st;
    append_select(s, &st, pos, q, k, v, dense_logits, dense_lse, stride);
    attend(s, q, out);
    if (s->ops->observe) s->ops->observe(s->state, &st, &s->sel, s->probs);
    s->last_ns = rb_now_ns() - t0;
}

/* Whether every set of the selection is the whole range j0..pos: as many positions as the
 * range holds (distinct, at most pos) and, when j0 > 0, none below j0. */
static int sets_full(const stepper *s, int pos, int j0) {
    const policy_selection *sel = &s->sel;
    int H = sel->n_q_heads, rows = sel->shared_by_group ? sel->group_size : 1, n = pos + 1 - j0;
    for (int h = 0; h < H; h += rows) {
        if (sel->n[h] != n) return 0;
        const int32_t *p = sel->pos + (size_t)h * sel->cap;
        for (int i = 0; j0 > 0 && i < n; i++)
            if (p[i] < j0) return 0;
    }
    return 1;
}

/* The attention of the selected sets from the reference (stepper_step_ref). Returns 0 when a
 * set's dense mass underflows in float and the step must attend for real instead. */
static int from_reference(stepper *s, const stepper_ref *ref, int full, float *out) {
    const policy_config *c = &s->cfg;
    int H = c->n_q_heads, G = H / c->n_kv_heads, d = c->head_dim, cap = s->sel.cap;
    /* A whole range's output is o* itself (the reference already attended every position):
     * only a policy that observes still needs the probabilities. */
    int use_out = full && ref->out;
    if (use_out) {
        memcpy(out, ref->out, sizeof(float) * (size_t)H * d);
        if (!s->ops->observe) return 1;
    }
    /* softmax over S from the dense probabilities: p_S = p* / sum_S p*, the same function
     * as attention over S up to rounding, with no q.k and no exp. */
    for (int h = 0; h < H; h++) {
        int row = stepper_set_row(&s->sel, h), n = s->sel.n[row];
        const int32_t *pos_s = s->sel.pos + (size_t)row * cap;
        const float *pr = ref->probs + (size_t)h * ref->stride - ref->j0;
        float *ph = s->probs + (size_t)h * cap;
        double m4[4] = {0, 0, 0, 0};
        int i = 0;
        for (; i + 4 <= n; i += 4)
            for (int u = 0; u < 4; u++) m4[u] += ph[i + u] = pr[pos_s[i + u]];
        for (; i < n; i++) m4[0] += ph[i] = pr[pos_s[i]];
        double mass = (m4[0] + m4[1]) + (m4[2] + m4[3]);
        if (!(mass > 1e-30)) return 0;
        float inv = (float)(1.0 / mass);
        for (i = 0; i < n; i++) ph[i] *= inv;
    }
    if (use_out) return 1;
    for (int g = 0; g < c->n_kv_heads; g++) {
        size_t h0 = (size_t)g * G;
        if (s->sel.shared_by_group) {
            s->be->weighted_rows(s->probs + h0 * cap, G, cap, s->sel.v + h0 * cap,
                                 s->sel.n[h0], d, out + h0 * d);
        } else {
            for (int j = 0; j < G; j++)
                s->be->weighted_rows(s->probs + (h0 + j) * cap, 1, cap,
                                     s->sel.v + (h0 + j) * cap, s->sel.n[h0 + j], d,
                                     out + (h0 + j) * d);
        }
    }
    return 1;
}

/* Read every cache line of the selected K and V rows, as attending them would, without
 * the arithmetic: the cache state a step leaves for the next. */
static void touch_rows(const stepper *s) {
    const policy_selection *sel = &s->sel;
    int rows = sel->shared_by_group ? sel->group_size : 1, d = s->cfg.head_dim;
    float sum = 0;
    for (int h = 0; h < sel->n_q_heads; h += rows)
        for (int i = 0; i < sel->n[h]; i++) {
            const float *k = sel->k[(size_t)h * sel->cap + i];
            const float *v = sel->v[(size_t)h * sel->cap + i];
            for (int c = 0; c < d; c += 16) sum += k[c] + v[c];
            sum += k[d - 1] + v[d - 1];
        }
    volatile float sink = sum; /* keeps the reads */
    (void)sink;
}

void stepper_step_ref(stepper *s, int pos, const float *q, const float *k, const float *v,
                      const stepper_ref *ref, stepper_mode mode, float *out) {
    int64_t t0 = rb_now_ns();
    policy_step st;
    int j0 = ref->j0;
    append_select(s, &st, pos, q, k, v, j0 == 0 ? ref->logits : NULL,
                  j0 == 0 ? ref->lse : NULL, ref->stride);
    int full = mode != STEPPER_ATTEND && sets_full(s, pos, j0);
    /* A timed step of a policy that observes attends for real even on a whole range: what
     * it observes would otherwise be p*_S / sum_S p* rather than its own softmax, and its
     * later choices could move on a near tie (H2O's did on a long synthetic trace). */
    int full_timed = full && !s->ops->observe;
    int cached = mode == STEPPER_CACHED || (mode == STEPPER_FULL_CACHED && full_timed);
    int64_t warm_ns = 0;
    if (mode == STEPPER_FULL_WARM && full_timed) { /* untimed: rows as warm as after a step */
        int64_t a = rb_now_ns();
        touch_rows(s);
        warm_ns = rb_now_ns() - a;
    }
    /* a set whose mass underflows attends for real, untimed like the rest of a cached step */
    if (!cached || !from_reference(s, ref, full, out)) attend(s, q, out);
    if (s->ops->observe) s->ops->observe(s->state, &st, &s->sel, s->probs);
    s->last_ns = cached ? -1 : rb_now_ns() - t0 - warm_ns;
}

const policy_selection *stepper_selection(const stepper *s) { return &s->sel; }
const float *stepper_probs(const stepper *s) { return s->probs; }
int64_t stepper_last_step_ns(const stepper *s) { return s->last_ns; }
const policy_ops *stepper_ops(const stepper *s) { return s->ops; }

int64_t stepper_kv_bytes(const stepper *s) {
    int64_t b = 0;
    for (int h = 0; h < s->cfg.n_kv_heads; h++) b += kv_pool_resident_bytes(s->pools[h]);
    return b;
}

int64_t stepper_meta_bytes(const stepper *s) {
    return s->ops->meta_bytes ? s->ops->meta_bytes(s->state) : 0;
}
