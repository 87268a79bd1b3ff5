/* streamingllm.c: attention sinks plus a recent window (Xiao et al., StreamingLLM): the first
 * `sinks` positions and the most recent L-sinks stay resident, everything else is evicted
 * (docs/DESIGN.md §3). Token-granular: evicted slots are reused, so memory stays flat. */
#include "policy_util.h"

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
    return pu_sinkwin_create(cfg, sinks, out);
}

const policy_ops policy_streamingllm = {
    .name = "streamingllm",
    .summary = "first `sinks` tokens + the most recent L-sinks; the rest evicted",
    .flags = 0,
    .params = params,
    .create = sl_create,
    .destroy = pu_sinkwin_destroy,
    .prefill = pu_sinkwin_prefill,
    .append = pu_sinkwin_append,
    .select = pu_sinkwin_select,
    .observe = NULL,
    .meta_bytes = pu_sinkwin_meta_bytes,
};
