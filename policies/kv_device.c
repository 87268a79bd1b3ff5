/* kv_device.c: kvd_layer_from_policy (kernels/cuda/kv_cuda.h): which CPU policies the device
 * KV cache runs, with their resolved parameters. It lives with the policies because it reads
 * their parameter tables; it needs no GPU, so it is in every build. */
#include <string.h>

#include "cuda/kv_cuda.h"
#include "policy.h"

rb_status kvd_layer_from_policy(const policy_ops *ops, const policy_params *params, int budget,
                                kvd_layer *out, rb_err *e) {
    memset(out, 0, sizeof *out);
    out->budget = budget;
    const char *name = ops->name;
    if (!strcmp(name, "dense")) {
        out->policy = KVD_DENSE;
    } else if (!strcmp(name, "window")) {
        out->policy = KVD_WINDOW;
    } else if (!strcmp(name, "quest")) {
        out->policy = KVD_QUEST;
        out->quest_per_head = !strcmp(policy_param_str(params, "gqa"), "head");
    } else if (!strcmp(name, "raas")) {
        out->policy = KVD_RAAS;
        out->raas_exact_score = !strcmp(policy_param_str(params, "score"), "exact");
        out->raas_threshold = !strcmp(policy_param_str(params, "refresh"), "threshold");
        out->raas_r = policy_param_num(params, "r");
        out->raas_alpha = policy_param_num(params, "alpha");
        out->raas_budget_decode = !strcmp(policy_param_str(params, "budget"), "decode");
        out->raas_pin_prefill = (int)policy_param_num(params, "pin_prefill");
    } else {
        return rb_fail(e, RB_EINPUT, name,
                       "no device implementation (the device runs dense, quest, raas; window on "
                       "sliding-window layers)");
    }
    return RB_OK;
}
