/* cells.c: user choices -> cells, layer roles and run setup (see cells.h). */
#include "cells.h"

#include <string.h>

#include "synth.h"
#include "tokenizer.h"

rb_status cells_init(cell *c, const policy_ops *ops, const policy_params *params, int budget,
                     const char *label, const char *suffix, rb_err *e) {
    memset(c, 0, sizeof *c);
    /* a budget-free policy (dense) may be given none: 0 */
    if (budget < ((ops->flags & POLICY_BUDGET_FREE) ? 0 : 1))
        return rb_fail(e, RB_EINPUT, "--budgets", "budget %d must be positive", budget);
    label = label ? label : "";
    suffix = suffix ? suffix : "";
    if (strlen(label) >= sizeof c->label)
        return rb_fail(e, RB_EINPUT, label, "label too long (at most %d characters)",
                       (int)sizeof c->label - 1);
    int n = snprintf(c->run_id, sizeof c->run_id, "%s%s%s_L%d%s%s", ops->name, *label ? "-" : "",
                     label, budget, *suffix ? "@" : "", suffix);
    if (n < 0 || (size_t)n >= sizeof c->run_id)
        return rb_fail(e, RB_EINPUT, c->run_id, "run id too long (shorten the label)");
    c->ops = ops;
    c->params = *params;
    c->budget = budget;
    snprintf(c->label, sizeof c->label, "%s", label);
    c->params_json = policy_params_json(ops, params);
    return RB_OK;
}

void cells_trace_stem(const char *path, char *buf, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, cap, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
}

rb_status cells_check_unique(const cell *cells, int n, rb_err *e) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(cells[i].run_id, cells[j].run_id))
                return rb_fail(e, RB_EINPUT, cells[i].run_id,
                               "the same cell is asked for twice (give variants distinct labels)");
    return RB_OK;
}

/* One --policies entry "[LABEL=]POLICY[:KEY=VALUE]...": its policy, its label (or the
 * common one) and its parameters, the entry's own after the common ones (a later entry wins). */
static rb_status parse_choice(const char *entry, const char *const *params, int n_params,
                              const char *label, const policy_ops **ops, policy_params *pp,
                              char *own_label, size_t cap, rb_err *e) {
    char buf[256];
    if (strlen(entry) >= sizeof buf)
        return rb_fail(e, RB_EINPUT, "--policies", "entry '%.40s...' too long", entry);
    snprintf(buf, sizeof buf, "%s", entry);
    char *name = buf, *colon = strchr(buf, ':'), *eq = strchr(buf, '=');
    snprintf(own_label, cap, "%s", label ? label : "");
    if (eq && (!colon || eq < colon)) { /* LABEL=POLICY... */
        *eq = 0;
        name = eq + 1;
        if (!*buf || strlen(buf) >= cap || strpbrk(buf, "/ @\t:"))
            return rb_fail(e, RB_EINPUT, entry, "a label must be 1..%d characters without "
                           "'/', ' ', '@', ':' or tabs", (int)cap - 1);
        snprintf(own_label, cap, "%s", buf);
    }
    if (colon) *colon = 0;
    if (!(*ops = policy_find_choice(name, e))) return RB_EINPUT;
    if (colon && !strcmp(own_label, label ? label : ""))
        return rb_fail(e, RB_EINPUT, entry, "a policy with its own parameters needs a label "
                       "that names the variant: LABEL=%s:...", name);
    /* the common entries, then this entry's as "policy.key=value" */
    int n_own = 0;
    for (const char *c = colon ? colon + 1 : NULL; c; c = strchr(c, ':'), c = c ? c + 1 : c)
        n_own++;
    const char **kv = rb_calloc((size_t)(n_params + n_own + 1), sizeof *kv);
    char **own = rb_calloc((size_t)(n_own + 1), sizeof *own);
    for (int i = 0; i < n_params; i++) kv[i] = params[i];
    char *c = colon ? colon + 1 : NULL;
    for (int i = 0; i < n_own; i++) {
        char *next = strchr(c, ':');
        if (next) *next = 0;
        size_t len = strlen(name) + strlen(c) + 2;
        own[i] = rb_malloc(len);
        snprintf(own[i], len, "%s.%s", name, c);
        kv[n_params + i] = own[i];
        c = next ? next + 1 : NULL;
    }
    rb_status s = RB_OK;
    for (int i = 0; i < n_own && !s; i++)
        if (!strchr(own[i] + strlen(name) + 1, '=') || own[i][strlen(name) + 1] == '=')
            s = rb_fail(e, RB_EINPUT, entry, "'%s' is not KEY=VALUE", own[i] + strlen(name) + 1);
    if (!s) s = policy_params_for(*ops, kv, n_params + n_own, pp, e);
    for (int i = 0; i < n_own; i++) free(own[i]);
    free(own);
    free(kv);
    return s;
}

rb_status cells_make(const char *const *policies, int n_policies, const int *budgets,
                     int n_budgets, const char *const *params, int n_params, const char *label,
                     cell **cells, int *n_cells, rb_err *e) {
    *cells = NULL;
    *n_cells = 0;
    cell *cs = rb_calloc((size_t)(n_policies * n_budgets + 1), sizeof *cs);
    int n = 0;
    rb_status s = RB_OK;
    for (int p = 0; p < n_policies && !s; p++) {
        const policy_ops *ops = NULL;
        policy_params pp;
        char own_label[sizeof cs->label];
        if ((s = parse_choice(policies[p], params, n_params, label, &ops, &pp, own_label,
                              sizeof own_label, e)))
            break;
        for (int b = 0; b < n_budgets && !s; b++)
            if (!(s = cells_init(&cs[n], ops, &pp, budgets[b], own_label, NULL, e))) n++;
    }
    if (!s) s = cells_check_unique(cs, n, e);
    if (s) {
        cells_free(cs, n);
        return s;
    }
    *cells = cs;
    *n_cells = n;
    return RB_OK;
}

void cells_free(cell *cells, int n) {
    if (!cells) return;
    for (int i = 0; i < n; i++) free(cells[i].params_json);
    free(cells);
}

layer_role cells_layer_role(int layer, int sliding_window, int dense_layers) {
    if (sliding_window > 0) return LAYER_WINDOW;
    if (layer < dense_layers) return LAYER_DENSE;
    return LAYER_POLICY;
}

rb_status cells_check_layers(const trace_meta *m, int dense_layers, rb_err *e) {
    for (int l = 0; l < m->n_stored; l++)
        if (cells_layer_role(m->layers[l], m->sliding_window[l], dense_layers) == LAYER_POLICY)
            return RB_OK;
    return rb_fail(e, RB_EINPUT, "--dense-layers", "%d leaves no layer of the trace to the "
                   "policies (it stores %d layers, the last one %d; sliding-window layers keep "
                   "their window): nothing would be measured", dense_layers, m->n_stored,
                   m->layers[m->n_stored - 1]);
}

rb_status cells_layer_policy(layer_role role, const cell *c, int sliding_window, int max_tokens,
                             layer_policy *out, rb_err *e) {
    if (role == LAYER_POLICY) {
        RB_CHECK(c != NULL);
        out->ops = c->ops, out->params = c->params;
        /* a budget-free policy behaves the same at every budget: give it room for all */
        out->budget = (c->ops->flags & POLICY_BUDGET_FREE) ? max_tokens : c->budget;
        return RB_OK;
    }
    const char *name = role == LAYER_WINDOW ? "window" : "dense";
    if (!(out->ops = policy_find(name, e))) return RB_EINTERNAL;
    out->budget = role == LAYER_WINDOW ? sliding_window : max_tokens;
    return policy_params_for(out->ops, NULL, 0, &out->params, e);
}

int cells_same_work(const cell *a, const cell *b) {
    return a->ops == b->ops && (a->ops->flags & POLICY_BUDGET_FREE) &&
           !strcmp(a->params_json ? a->params_json : "", b->params_json ? b->params_json : "");
}

int cells_need_separators(const cell *cells, int n) {
    for (int i = 0; i < n; i++)
        if (cells[i].ops->flags & POLICY_NEEDS_SEPARATORS) return 1;
    return 0;
}

rb_status cells_vocab_separators(const gguf_file *g, uint8_t **table, int *n_vocab, rb_err *e) {
    *table = NULL;
    *n_vocab = 0;
    tokenizer *tok;
    rb_status st = tokenizer_load(g, &tok, e);
    if (st) return st;
    int n = tokenizer_n_vocab(tok);
    uint8_t *sep = rb_calloc((size_t)n, 1);
    for (int32_t id = 0; id < n; id++) {
        size_t len;
        const char *text = tokenizer_decode_token(tok, id, &len);
        /* control tokens decode to their names ("<start_of_turn>"): never separators */
        sep[id] = text && tokenizer_token_type(tok, id) != TOKEN_CONTROL &&
                  policy_separator_text(text, len);
    }
    tokenizer_destroy(tok);
    *table = sep;
    *n_vocab = n;
    return RB_OK;
}

rb_status cells_trace_separators(trace *t, const char *model_path, uint8_t **mask, rb_err *e) {
    *mask = NULL;
    const trace_meta *m = trace_get_meta(t);
    int32_t *ids = rb_malloc(sizeof(int32_t) * (size_t)m->n_tokens);
    int present = 0;
    rb_status st = trace_read_tokens(t, ids, &present, e);
    if (!st && !present)
        st = rb_fail(e, RB_EINPUT, trace_path(t), "has no /tokens: sepllm keeps the separator "
                     "tokens (punctuation, line breaks) and needs the token ids to find them");
    int synthetic = !strcmp(m->model, "synthetic");
    if (!st && !synthetic && !model_path)
        st = rb_fail(e, RB_EINPUT, "--model", "sepllm reads the tokens of %s through the "
                     "vocabulary of the model that made them ('%s'): give its GGUF file",
                     trace_path(t), m->model);
    uint8_t *table = NULL;
    int n_vocab = 0;
    if (!st && synthetic) {
        n_vocab = SYNTH_N_VOCAB;
        table = rb_calloc((size_t)n_vocab, 1);
        for (int32_t id = 0; id < n_vocab; id++) {
            const char *text = synth_token_text(id);
            table[id] = policy_separator_text(text, strlen(text));
        }
    } else if (!st) {
        gguf_file *g;
        if (!(st = gguf_open(model_path, &g, e))) {
            st = cells_vocab_separators(g, &table, &n_vocab, e);
            gguf_close(g);
        }
    }
    uint8_t *out = NULL;
    if (!st) {
        out = rb_malloc((size_t)m->n_tokens);
        for (int i = 0; i < m->n_tokens && !st; i++) {
            if (ids[i] < 0 || ids[i] >= n_vocab)
                st = rb_fail(e, RB_EINPUT, trace_path(t), "token %d at position %d is not in the "
                             "vocabulary of %s (%d tokens): the trace was made by another model",
                             (int)ids[i], i, synthetic ? "synth" : model_path, n_vocab);
            else
                out[i] = table[ids[i]];
        }
    }
    free(table);
    free(ids);
    if (st) {
        free(out);
        return st;
    }
    *mask = out;
    return RB_OK;
}

void cells_run_init(results_run *r, const cell *c, const run_facts *f, int T, int n_layers,
                    int n_q_heads, int per_head) {
    memset(r, 0, sizeof *r);
    results_run_alloc(r, T, n_layers, n_q_heads, per_head);
    snprintf(r->run_id, sizeof r->run_id, "%s", c->run_id);
    snprintf(r->policy, sizeof r->policy, "%s", c->ops->name);
    snprintf(r->trace, sizeof r->trace, "%s", f->source);
    r->budget = c->budget;
    r->params_json = rb_strdup(c->params_json ? c->params_json : "{}");
    r->page_size = f->page_size, r->dense_layers = f->dense_layers;
    r->latency_every = f->latency_every;
    r->n_tokens = f->n_tokens;
    for (int t = 0; t < T; t++) r->step[t] = f->n_prefill + t;
    for (int l = 0; l < n_layers; l++) {
        r->layers[l] = f->layers[l];
        r->sparse[l] = cells_layer_role(f->layers[l], f->sliding_window[l], f->dense_layers) ==
                       LAYER_POLICY;
    }
}

void cells_print_summary(FILE *f, const results_run *runs, int n) {
    fprintf(f, "%-24s %-13s %7s %9s %10s %9s %11s %11s %12s\n", "run_id", "policy", "budget",
            "recall", "out_err", "attended", "p50_lat_us", "p99_lat_us", "peak_kv_KiB");
    for (int i = 0; i < n; i++) {
        results_summary s;
        results_summarise(&runs[i], &s);
        fprintf(f, "%-24s %-13s %7d %9.4f %10.4g %9.1f %11.1f %11.1f %12.1f\n", s.run_id,
                s.policy, s.budget, s.mean_recall, s.mean_out_err, s.mean_attended,
                s.p50_latency_ns / 1e3, s.p99_latency_ns / 1e3, s.peak_kv_bytes / 1024.0);
    }
}
