/* streamingllm.c: attention sinks plus a recent window (Xiao et al., StreamingLLM): the first
 * `sinks` positions and the most recent L-sinks stay resident, everything else is evicted
 * (DESIGN §3). Token-granular: evicted slots are reused, so memory stays flat. The state is
 * the shared sinks+window store (policy_util.h), which fills every slot but create. */
#include "policy_util.h"

static const policy_param_spec params[] = {
    {"sinks", PARAM_INT, "4", NULL, 0, 1 << 20, "number of initial positions always kept"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

static rb_status sl_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    int sinks = (int)policy_param_num(cfg->params, "sinks");
    return pu_sinkwin_create(cfg, "streamingllm", sinks, out, e);
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
