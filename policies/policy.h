/* policy.h: the one interface every KV-cache policy implements (DESIGN §3).
 *
 * A policy is policies/<name>.c exporting one `const policy_ops` table; policies/registry.c
 * is the only list. One policy *instance* manages one layer: all of its KV heads, each
 * backed by a kv_pool owned by the engine. The engine drives an instance like this:
 *
 *   create(cfg)                       once, before the prompt
 *   prefill(q, k, v, n_prefill)       once: the prompt, attended densely; every prefill
 *                                     token becomes resident
 *   for each decode position t:
 *     append(t, k_t, v_t)             the new token's key/value (evict first if needed)
 *     select(ctx, sel)                the attended set S_h of every query head
 *     -- engine: attention of each query head over S_h, from the pool's rows --
 *     observe(ctx, sel, probs)        optional: learn from the attention just computed
 *   destroy()
 *
 * Selections name pool rows, so attention reads only what the policy keeps resident. */
#ifndef POLICY_H
#define POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "kvpool.h"
#include "rb.h"

/* ---- parameters: key=value, typed, validated against the policy's spec ---- */

typedef enum { PARAM_INT, PARAM_FLOAT, PARAM_CHOICE } param_type;

typedef struct policy_param_spec {
    const char *key;     /* e.g. "r" (given on the CLI as raas.r=0.3) */
    param_type type;
    const char *def;     /* default, as text */
    const char *choices; /* PARAM_CHOICE: "bound|exact"; else NULL */
    double min, max;     /* inclusive range for numbers */
    const char *help;
} policy_param_spec;

#define POLICY_MAX_PARAMS 16
typedef struct policy_params {
    int n;
    struct {
        const char *key; /* points into the spec */
        double num;      /* PARAM_INT, PARAM_FLOAT */
        char str[32];    /* PARAM_CHOICE (and the text of every value) */
    } v[POLICY_MAX_PARAMS];
} policy_params;

/* Value of a resolved parameter; dies if the policy asks for a key it did not declare. */
double policy_param_num(const policy_params *p, const char *key);
const char *policy_param_str(const policy_params *p, const char *key);

/* ---- configuration of one instance ---- */

typedef struct policy_config {
    int layer;                 /* model layer index (for seeds and messages) */
    int n_q_heads, n_kv_heads, head_dim;
    int budget;                /* L, tokens per KV head */
    int page_size;             /* P */
    int max_tokens;            /* every position is < max_tokens */
    float attn_scale;
    uint64_t seed;             /* run seed; mix in `layer` for per-layer streams */
    const policy_params *params; /* resolved, defaults filled in */
    /* [max_tokens] 1 where the token at that position is a separator (punctuation or a
     * newline, SepLLM), from the trace's tokens and the model's vocabulary; NULL when the
     * caller does not know (a trace without tokens). Only policies/sepllm.c reads it. */
    const uint8_t *separator;  /* entry t is read once position t is prefilled or appended,
                                  not before: live decode fills it as tokens come */
    kv_pool **pools;           /* [n_kv_heads], owned by the engine, empty at create */
} policy_config;

/* Whether a token whose text (its bytes, as the tokenizer decodes it: SentencePiece's "▁"
 * and byte-level BPE's "Ġ" already spaces) is len bytes at `text` is a separator: at most
 * one leading space, then one of . , ? ! ; : alone, or then only line breaks ("\n" runs,
 * "\r\n"). SepLLM's set (policies/README.md); policies/sepllm.c. */
int policy_separator_text(const char *text, size_t len);

/* ---- one step ---- */

typedef struct policy_step {
    int pos;                   /* t: the position being decoded */
    const float *q;            /* [n_q_heads, head_dim] the queries of position t */
    /* Dense scaled logits attn_scale * q.k_j for j in 0..t, per query head, with their
     * log-sum-exp: [n_q_heads, score_stride]. Only for policies with POLICY_NEEDS_DENSE
     * (the oracle); NULL otherwise. */
    const float *dense_logits;
    const float *dense_lse;    /* [n_q_heads] */
    int score_stride;
} policy_step;

/* The attended sets. The engine allocates it with cap >= max_tokens entries per query
 * head. With shared_by_group set, the policy fills only the first query head of each
 * group (h = g * group_size) and every head of the group attends that set. */
typedef struct policy_selection {
    int n_q_heads, group_size, cap;
    int shared_by_group;
    int *n;           /* [n_q_heads] |S_h| */
    int32_t *pos;     /* [n_q_heads, cap] token positions */
    const float **k;  /* [n_q_heads, cap] key rows in the pool (head_dim floats) */
    const float **v;  /* [n_q_heads, cap] value rows */
} policy_selection;

typedef struct policy_state policy_state; /* each policy's own struct */

enum {
    POLICY_NEEDS_DENSE = 1u << 0, /* select() reads policy_step.dense_logits */
    POLICY_PAGED = 1u << 1,       /* budget counts pages: needs L >= 2P */
    POLICY_BUDGET_FREE = 1u << 2, /* behaves the same at every budget (dense): the engine
                                     runs one instance for all of a sweep's budgets */
    POLICY_KEEPS_ALL = 1u << 3,   /* every token stays resident (memory grows with t): the
                                     budget bounds what is attended, not what is kept */
    POLICY_PINS_PROMPT = 1u << 4, /* may keep the prompt outside the budget: resident tokens
                                     may exceed L, up to L + P * ceil(n_prefill / P) */
    POLICY_INTERNAL = 1u << 5,    /* run by the engine itself (window on sliding-window
                                     layers), not a choice for users: `raasbench policies`
                                     and its --names leave it out, policy_find_choice
                                     refuses it */
    POLICY_LAYER_BUDGET = 1u << 6, /* the budget bounds the layer, not each KV head: resident
                                      tokens summed over the KV heads stay <= L * n_kv_heads,
                                      and one head may hold more than L (Ada-KV) */
    POLICY_NEEDS_SEPARATORS = 1u << 7, /* create reads policy_config.separator and refuses a
                                          NULL one (SepLLM): callers build the mask only for
                                          such policies (harness/engine/cells.h) */
};
/* Without POLICY_KEEPS_ALL or POLICY_PINS_PROMPT, a policy holds at most L tokens per KV
 * head after every append (with POLICY_LAYER_BUDGET: L * n_kv_heads summed over the heads;
 * tests/test_policy_contract.c checks every registered policy). */

typedef struct policy_ops {
    const char *name;    /* required: lower-case, unique */
    const char *summary; /* required: one line */
    unsigned flags;      /* POLICY_* */
    const policy_param_spec *params; /* optional: terminated by a row with key NULL */

    /* required: check cfg (budget possible for this policy, parameters coherent) and build
     * the state. Impossible budgets fail with RB_EINPUT and a message naming the budget. */
    rb_status (*create)(const policy_config *cfg, policy_state **out, rb_err *e);
    /* required: free the state and give back every page it holds. NULL is a no-op. */
    void (*destroy)(policy_state *s);
    /* required: the prompt. q [n, n_q_heads, head_dim]; k, v [n, n_kv_heads, head_dim].
     * Every prompt token must be resident afterwards. */
    void (*prefill)(policy_state *s, int n, const float *q, const float *k, const float *v);
    /* required: append position `pos` (k, v [n_kv_heads, head_dim]); evict first if the
     * policy's rule says so. After append, position pos must be resident. */
    void (*append)(policy_state *s, int pos, const float *k, const float *v);
    /* required: fill the attended set of every query head for step->pos. Every entry must
     * be resident; the current position must be included. */
    void (*select)(policy_state *s, const policy_step *step, policy_selection *sel);
    /* optional: after attention, probs [n_q_heads, sel->cap] holds each query head's
     * softmax over its own S_h, aligned with sel->pos. With shared_by_group, row h is
     * aligned with the set of its group's first head (h - h % group_size). The selection
     * is the one select() filled this step, unchanged. */
    void (*observe)(policy_state *s, const policy_step *step, const policy_selection *sel,
                    const float *probs);
    /* optional: bytes of the policy's own bookkeeping (page min/max, scores, timestamps,
     * maps); 0 when absent. */
    int64_t (*meta_bytes)(const policy_state *s);
} policy_ops;

/* ---- registry (policies/registry.c) ---- */

/* The registered policies, in display order; *n receives the count. */
const policy_ops *const *policy_list(int *n);
/* Find by name; NULL (and e filled with the list of known names) when unknown. */
const policy_ops *policy_find(const char *name, rb_err *e);
/* Find a policy a user may choose for a run (replay, sweep, decode): as policy_find, but an
 * internal policy (POLICY_INTERNAL) fails with RB_EINPUT saying so, and the list of known
 * names in the message leaves internal ones out. */
const policy_ops *policy_find_choice(const char *name, rb_err *e);
/* Check a table: every required slot present, name and summary set, parameter specs
 * well-formed (defaults valid). Registration (policy_list) rejects a bad table. */
rb_status policy_ops_check(const policy_ops *ops, rb_err *e);

/* Resolve parameters for `ops`: defaults, then each "key=value" (the policy prefix
 * "name." already stripped). Unknown keys and bad values fail with RB_EINPUT. */
rb_status policy_params_resolve(const policy_ops *ops, const char *const *kv, int n_kv,
                                policy_params *out, rb_err *e);
/* Resolve parameters for `ops` from ALL the user's "policy.key=value" entries (as given to
 * --param): defaults first, then every entry whose prefix is ops->name, in order (a later
 * entry wins). Every entry is checked, also those for other policies: an entry whose prefix
 * is not a registered policy, whose key that policy does not declare, or whose value is bad
 * (not a number, out of range, not one of the choices, longer than 31 characters) fails
 * with RB_EINPUT and e->what naming the entry. */
rb_status policy_params_for(const policy_ops *ops, const char *const *kv, int n_kv,
                            policy_params *out, rb_err *e);
/* The resolved parameters as a JSON object text (for results provenance). malloc'd. */
char *policy_params_json(const policy_ops *ops, const policy_params *p);

#endif
