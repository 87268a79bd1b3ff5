/* streamingllm.c: attention sinks plus a recent window (Xiao et al., StreamingLLM): the first
 * `sinks` positions and the most recent L-sinks stay resident, everything else is evicted
 * (DESIGN §3). Token-granular: evicted slots are reused, so memory stays flat. */
#include "policy_util.h"

struct policy_state {
    pu_sinkwin *w;
};

static const policy_param_spec params[] = {
    {"sinks", PARAM_INT, "4", NULL, 0, 1 << 20, "number of initial positions always kept"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

static rb_status sl_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "streamingllm", PU_BUDGET_TOKENS, e);
    if (st) return st;
    int sinks = (int)policy_param_num(cfg->params, "sinks");
    if (cfg->budget <= sinks)
        return rb_fail(e, RB_EINPUT, "streamingllm",
                       "budget L=%d must exceed the %d sink tokens (L > sinks) to leave room "
                       "for the current token",
                       cfg->budget, sinks);
    policy_state *s = rb_calloc(1, sizeof *s);
    st = pu_sinkwin_create(cfg, sinks, &s->w);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return RB_OK;
}

static void sl_destroy(policy_state *s) {
    if (!s) return;
    pu_sinkwin_destroy(s->w);
    free(s);
}

static void sl_prefill(policy_state *s, int n, const float *q, const float *k, const float *v) {
    (void)q;
    pu_sinkwin_prefill(s->w, n, k, v);
}

static void sl_append(policy_state *s, int pos, const float *k, const float *v) {
    pu_sinkwin_append(s->w, pos, k, v);
}

static void sl_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    pu_sinkwin_select(s->w, step, sel);
}

static int64_t sl_meta_bytes(const policy_state *s) {
    return pu_sinkwin_meta_bytes(s->w);
}

const policy_ops policy_streamingllm = {
    .name = "streamingllm",
    .summary = "first `sinks` tokens + the most recent L-sinks; the rest evicted",
    .flags = 0,
    .params = params,
    .create = sl_create,
    .destroy = sl_destroy,
    .prefill = sl_prefill,
    .append = sl_append,
    .select = sl_select,
    .observe = NULL,
    .meta_bytes = sl_meta_bytes,
};
