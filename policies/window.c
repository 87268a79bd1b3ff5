/* window.c: a sliding window of the most recent L tokens: what the engine runs on a model's
 * local (sliding-window) layers, with L = the layer's window (DESIGN §2, §3). Internal: not
 * listed for users, not a sweep's choice. StreamingLLM's store with no sinks. */
#include "policy_util.h"

static rb_status window_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    return pu_sinkwin_create(cfg, "window", 0, out, e);
}

const policy_ops policy_window = {
    .name = "window",
    .summary = "the most recent L tokens (for sliding-window layers; L = the window)",
    .flags = POLICY_INTERNAL,
    .params = NULL,
    .create = window_create,
    .destroy = pu_sinkwin_destroy,
    .prefill = pu_sinkwin_prefill,
    .append = pu_sinkwin_append,
    .select = pu_sinkwin_select,
    .observe = NULL,
    .meta_bytes = pu_sinkwin_meta_bytes,
};
