/* sepllm.c: SepLLM (Chen et al., arXiv 2412.12094): the initial tokens, the separator tokens
 * (punctuation and newlines, into which the paper finds a segment's information is
 * condensed) and a recent window stay resident; everything else goes. At most L tokens:
 * when full, the oldest resident token that is neither initial nor a separator goes, unless
 * more than S separators are resident, when the oldest separator goes instead. Which
 * positions are separators comes from policy_config.separator (the trace's tokens read
 * through the model's vocabulary, harness/engine/cells.h; live decode fills it as tokens
 * come); without it the policy refuses to run. Token-granular slots. */
#include <string.h>

#include "policy_util.h"

int policy_separator_text(const char *text, size_t len) {
    if (len > 0 && text[0] == ' ') text++, len--;
    if (len == 1 && text[0] && strchr(".,?!;:", text[0])) return 1;
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] != '\n' && !(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')) return 0;
    return 1;
}

static const policy_param_spec params[] = {
    {"initial", PARAM_INT, "4", NULL, 0, 1 << 20,
     "initial tokens always kept (the paper's initial cache: 4); at most L/4"},
    {"separators", PARAM_INT, "64", NULL, 0, 1 << 20,
     "S: separators kept beyond which the oldest separator goes (the paper's separator "
     "cache: 64); at most (L - initial)/2"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};

struct policy_state {
    pu_shape sh;
    int last, a, S, n_sep; /* n_sep: resident separators past the initial tokens */
    const uint8_t *is_sep; /* [max_tokens] */
    pu_list *heads;        /* [n_kv] */
};

static rb_status sep_create(const policy_config *cfg, policy_state **out, rb_err *e) {
    rb_status st = pu_check_config(cfg, "sepllm", PU_BUDGET_TOKENS, e);
    if (st) return st;
    if (!cfg->separator)
        return rb_fail(e, RB_EINPUT, "sepllm",
                       "needs to know which tokens are separators (punctuation, newlines): this "
                       "run has no token text (a trace without /tokens, or no vocabulary to read "
                       "them with)");
    policy_state *s = rb_calloc(1, sizeof *s);
    s->sh = pu_shape_of(cfg);
    int L = cfg->budget;
    s->a = (int)policy_param_num(cfg->params, "initial");
    if (s->a > L / 4) s->a = L / 4;
    s->S = (int)policy_param_num(cfg->params, "separators");
    if (s->S > (L - s->a) / 2) s->S = (L - s->a) / 2;
    s->is_sep = cfg->separator;
    s->last = -1;
    s->heads = pu_lists_create(cfg);
    *out = s;
    return RB_OK;
}

static void sep_destroy(policy_state *s) {
    if (!s) return;
    pu_lists_destroy(s->heads, s->sh.n_kv);
    free(s);
}

static void sep_prefill(policy_state *s, int n, const float *q, const float *k,
                        const float *v) {
    (void)q;
    RB_CHECK(s->last == -1);
    pu_lists_prefill(s->heads, &s->sh, n, k, v);
    for (int i = 0; i < n; i++) s->n_sep += i >= s->a && s->is_sep[i];
    s->last = n - 1;
}

/* The entry to evict: the oldest non-initial separator when more than S are resident, else
 * the oldest non-initial other token (there is one: at most S separators and a < L/4 initial
 * tokens leave >= L/4 others in a full cache). The rule depends on positions alone, so every
 * KV head makes the same choice. */
static int victim(const policy_state *s, const pu_list *hd) {
    int want_sep = s->n_sep > s->S;
    for (int i = 0; i < hd->n; i++) {
        int p = hd->pos[i];
        if (p >= s->a && (s->is_sep[p] != 0) == want_sep) return i;
    }
    RB_CHECK(0);
}

static void sep_append(policy_state *s, int pos, const float *k, const float *v) {
    RB_CHECK(pos == s->last + 1);
    while (s->heads[0].n >= s->sh.budget) {
        int was_sep = 0;
        for (int g = 0; g < s->sh.n_kv; g++) {
            pu_list *hd = &s->heads[g];
            int i = victim(s, hd);
            was_sep = s->is_sep[hd->pos[i]] != 0;
            pu_list_remove(hd, i);
        }
        s->n_sep -= was_sep;
    }
    for (int g = 0; g < s->sh.n_kv; g++)
        pu_list_push(&s->heads[g], pos, k + (size_t)g * s->sh.d, v + (size_t)g * s->sh.d);
    s->n_sep += pos >= s->a && s->is_sep[pos];
    s->last = pos;
}

static void sep_select(policy_state *s, const policy_step *step, policy_selection *sel) {
    RB_CHECK(step->pos == s->last);
    pu_sel_begin(sel, 1);
    pu_lists_select(s->heads, &s->sh, sel);
}

static int64_t sep_meta_bytes(const policy_state *s) {
    return pu_lists_meta_bytes(s->heads, s->sh.n_kv); /* a position and a slot per token */
}

const policy_ops policy_sepllm = {
    .name = "sepllm",
    .summary = "L tokens: initial + up to S separators (oldest go first) + the recent window",
    .flags = POLICY_NEEDS_SEPARATORS,
    .params = params,
    .create = sep_create,
    .destroy = sep_destroy,
    .prefill = sep_prefill,
    .append = sep_append,
    .select = sep_select,
    .observe = NULL,
    .meta_bytes = sep_meta_bytes,
};
