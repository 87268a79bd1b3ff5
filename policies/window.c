/* window.c: a sliding window of the most recent L tokens: what the engine runs on a model's
 * local (sliding-window) layers, with L = the layer's window (DESIGN §2, §3). */
#include "policy_util.h"

struct policy_state {
    pu_sinkwin *w;
};

static rb_status window_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "window", PU_BUDGET_TOKENS, e);
    if (st) return st;
    policy_state *s = rb_calloc(1, sizeof *s);
    st = pu_sinkwin_create(cfg, 0, &s->w);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return RB_OK;
}

static void window_destroy(policy_state *s) {
    if (!s) return;
    pu_sinkwin_destroy(s->w);
    free(s);
}

static void window_prefill(policy_state *s, int n, const float *q, const float *k,
                           const float *v) {
    (void)q;
    pu_sinkwin_prefill(s->w, n, k, v);
}

static void window_append(policy_state *s, int pos, const float *k, const float *v) {
    pu_sinkwin_append(s->w, pos, k, v);
}

static void window_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    pu_sinkwin_select(s->w, step, sel);
}

static int64_t window_meta_bytes(const policy_state *s) {
    return pu_sinkwin_meta_bytes(s->w);
}

const policy_ops policy_window = {
    .name = "window",
    .summary = "the most recent L tokens (for sliding-window layers; L = the window)",
    .flags = POLICY_INTERNAL,
    .params = NULL,
    .create = window_create,
    .destroy = window_destroy,
    .prefill = window_prefill,
    .append = window_append,
    .select = window_select,
    .observe = NULL,
    .meta_bytes = window_meta_bytes,
};
