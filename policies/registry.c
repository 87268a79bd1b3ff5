/* registry.c: the one list of policies, table checks and parameter resolution (policy.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "policy.h"

extern const policy_ops policy_dense, policy_streamingllm, policy_h2o, policy_quest,
    policy_raas, policy_oracle, policy_random, policy_window, policy_tova, policy_snapkv,
    policy_rkv, policy_lazyeviction, policy_adakv, policy_sepllm;

static const policy_ops *const registered[] = {
    &policy_dense, &policy_streamingllm, &policy_h2o, &policy_quest,
    &policy_raas,  &policy_oracle,       &policy_random, &policy_window,
    &policy_tova,  &policy_snapkv,      &policy_rkv,    &policy_lazyeviction,
    &policy_adakv, &policy_sepllm,
};
#define N_REGISTERED ((int)(sizeof registered / sizeof registered[0]))

const policy_ops *const *policy_list(int *n) {
    /* A built-in table that fails its check is a programming error: stop at once, and do it
     * on every call path that hands tables out, so no caller ever runs a bad one. */
    static int checked;
    if (!checked) {
        for (int i = 0; i < N_REGISTERED; i++) {
            rb_err e = {0};
            if (policy_ops_check(registered[i], &e) != RB_OK)
                rb_die(__FILE__, __LINE__, "bad policy table: %s: %s", e.what, e.why);
            for (int j = 0; j < i; j++)
                if (!strcmp(registered[i]->name, registered[j]->name))
                    rb_die(__FILE__, __LINE__, "policy '%s' registered twice",
                           registered[i]->name);
        }
        checked = 1;
    }
    *n = N_REGISTERED;
    return registered;
}

/* Find `name` among the registered policies (internal ones only when `internal_too`); when
 * absent, fail naming the ones that were looked through. */
static const policy_ops *find(const char *name, int internal_too, rb_err *e) {
    int n;
    const policy_ops *const *l = policy_list(&n);
    for (int i = 0; i < n; i++)
        if (name && !strcmp(l[i]->name, name)) {
            if (internal_too || !(l[i]->flags & POLICY_INTERNAL)) return l[i];
            rb_fail(e, RB_EINPUT, name,
                    "an internal policy: the engine runs it itself, a run cannot choose it "
                    "(see raasbench policies)");
            return NULL;
        }
    char known[512] = "";
    for (int i = 0; i < n; i++) {
        if (!internal_too && (l[i]->flags & POLICY_INTERNAL)) continue;
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", len ? ", " : "", l[i]->name);
    }
    rb_fail(e, RB_EINPUT, name ? name : "(null)", "unknown policy (known: %s)", known);
    return NULL;
}

const policy_ops *policy_find(const char *name, rb_err *e) { return find(name, 1, e); }

const policy_ops *policy_find_choice(const char *name, rb_err *e) { return find(name, 0, e); }

/* ---- values ---- */

static int choice_ok(const char *choices, const char *s) {
    size_t n = strlen(s);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && n > 0 && !strncmp(c, s, n)) return 1;
        if (!bar) break;
        c = bar + 1;
    }
    return 0;
}

/* Parse text for a spec into num; what names the entry in messages. */
static rb_status parse_value(const policy_param_spec *sp, const char *what, const char *text,
                             double *num, rb_err *e) {
    *num = 0;
    if (strlen(text) >= 32)
        return rb_fail(e, RB_EINPUT, what, "value '%s' is too long (at most 31 characters)",
                       text);
    if (sp->type == PARAM_CHOICE) {
        if (!sp->choices || !choice_ok(sp->choices, text))
            return rb_fail(e, RB_EINPUT, what, "'%s' is not one of %s", text,
                           sp->choices ? sp->choices : "(none)");
        return RB_OK;
    }
    if (!*text) return rb_fail(e, RB_EINPUT, what, "expected a number, got nothing");
    char *end;
    errno = 0;
    double v;
    if (sp->type == PARAM_INT) {
        long long i = strtoll(text, &end, 10);
        v = (double)i;
        if (errno || *end || isspace((unsigned char)*text))
            return rb_fail(e, RB_EINPUT, what, "expected an integer, got '%s'", text);
    } else {
        v = strtod(text, &end);
        if (errno || *end || !isfinite(v) || isspace((unsigned char)*text))
            return rb_fail(e, RB_EINPUT, what, "expected a finite number, got '%s'", text);
    }
    if (v < sp->min || v > sp->max)
        return rb_fail(e, RB_EINPUT, what, "%s is out of range [%g, %g]", text, sp->min,
                       sp->max);
    *num = v;
    return RB_OK;
}

rb_status policy_ops_check(const policy_ops *ops, rb_err *e) {
    if (!ops) return rb_fail(e, RB_EINPUT, "policy table", "is NULL");
    const char *nm = ops->name ? ops->name : "policy table";
    if (!ops->name || !*ops->name) return rb_fail(e, RB_EINPUT, nm, "has no name");
    for (const char *c = ops->name; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_'))
            return rb_fail(e, RB_EINPUT, nm, "name must be lower-case letters, digits or _");
    if (!ops->summary || !*ops->summary) return rb_fail(e, RB_EINPUT, nm, "has no summary");
    const char *missing = !ops->create    ? "create"
                          : !ops->destroy ? "destroy"
                          : !ops->prefill ? "prefill"
                          : !ops->append  ? "append"
                          : !ops->select  ? "select"
                                          : NULL;
    if (missing) return rb_fail(e, RB_EINPUT, nm, "required slot '%s' is missing", missing);
    int n = 0;
    for (const policy_param_spec *sp = ops->params; sp && sp->key; sp++, n++) {
        char what[96];
        snprintf(what, sizeof what, "%s.%s", ops->name, sp->key);
        if (n >= POLICY_MAX_PARAMS)
            return rb_fail(e, RB_EINPUT, nm, "more than %d parameters", POLICY_MAX_PARAMS);
        if (strchr(sp->key, '.') || strchr(sp->key, '=') || !*sp->key)
            return rb_fail(e, RB_EINPUT, what, "bad parameter key");
        if (!sp->help || !sp->def) return rb_fail(e, RB_EINPUT, what, "needs help and a default");
        if (sp->type == PARAM_CHOICE && !sp->choices)
            return rb_fail(e, RB_EINPUT, what, "a choice parameter needs its choices");
        if (sp->type != PARAM_CHOICE && !(sp->min <= sp->max))
            return rb_fail(e, RB_EINPUT, what, "range is empty");
        for (const policy_param_spec *o = ops->params; o != sp; o++)
            if (!strcmp(o->key, sp->key)) return rb_fail(e, RB_EINPUT, what, "declared twice");
        double num;
        rb_err sub = {0};
        if (parse_value(sp, what, sp->def, &num, &sub))
            return rb_fail(e, RB_EINPUT, what, "bad default: %s", sub.why);
    }
    return RB_OK;
}

static const policy_param_spec *spec_find(const policy_ops *ops, const char *key,
                                          size_t len) {
    for (const policy_param_spec *sp = ops->params; sp && sp->key; sp++)
        if (strlen(sp->key) == len && !strncmp(sp->key, key, len)) return sp;
    return NULL;
}

static void spec_keys(const policy_ops *ops, char *buf, size_t n) {
    buf[0] = 0;
    for (const policy_param_spec *sp = ops->params; sp && sp->key; sp++) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s.%s", len ? ", " : "", ops->name, sp->key);
    }
    if (!buf[0]) snprintf(buf, n, "none");
}

/* Defaults into out, in spec order. */
static void fill_defaults(const policy_ops *ops, policy_params *out) {
    memset(out, 0, sizeof *out);
    for (const policy_param_spec *sp = ops->params; sp && sp->key; sp++) {
        int i = out->n++;
        out->v[i].key = sp->key;
        snprintf(out->v[i].str, sizeof out->v[i].str, "%s", sp->def);
        rb_err ignore;
        RB_CHECK(parse_value(sp, sp->key, sp->def, &out->v[i].num, &ignore) == RB_OK);
    }
}

/* Set one "key=value" (prefix already stripped). `entry` is the user's text for messages. */
static rb_status set_one(const policy_ops *ops, const char *kv, const char *entry,
                         policy_params *out, rb_err *e) {
    const char *eq = strchr(kv, '=');
    if (!eq) return rb_fail(e, RB_EINPUT, entry, "expected policy.key=value");
    const policy_param_spec *sp = spec_find(ops, kv, (size_t)(eq - kv));
    if (!sp) {
        char keys[512];
        spec_keys(ops, keys, sizeof keys);
        return rb_fail(e, RB_EINPUT, entry, "policy '%s' has no parameter '%.*s' (it has: %s)",
                       ops->name, (int)(eq - kv), kv, keys);
    }
    double num;
    rb_status st = parse_value(sp, entry, eq + 1, &num, e);
    if (st) return st;
    for (int i = 0; i < out->n; i++)
        if (out->v[i].key == sp->key) {
            out->v[i].num = num;
            snprintf(out->v[i].str, sizeof out->v[i].str, "%s", eq + 1);
        }
    return RB_OK;
}

rb_status policy_params_resolve(const policy_ops *ops, const char *const *kv, int n_kv,
                                policy_params *out, rb_err *e) {
    fill_defaults(ops, out);
    for (int i = 0; i < n_kv; i++) {
        rb_status st = set_one(ops, kv[i], kv[i], out, e);
        if (st) return st;
    }
    return RB_OK;
}

rb_status policy_params_for(const policy_ops *ops, const char *const *kv, int n_kv,
                            policy_params *out, rb_err *e) {
    fill_defaults(ops, out);
    for (int i = 0; i < n_kv; i++) {
        const char *s = kv[i];
        const char *dot = strchr(s, '.'), *eq = strchr(s, '=');
        if (!dot || (eq && eq < dot) || dot == s)
            return rb_fail(e, RB_EINPUT, s, "expected policy.key=value (e.g. raas.r=0.3)");
        size_t plen = (size_t)(dot - s);
        char prefix[64];
        if (plen >= sizeof prefix) return rb_fail(e, RB_EINPUT, s, "policy name is too long");
        memcpy(prefix, s, plen);
        prefix[plen] = 0;
        rb_err sub = {0};
        const policy_ops *owner = policy_find(prefix, &sub);
        if (!owner) return rb_fail(e, RB_EINPUT, s, "'%s' is not a policy: %s", prefix, sub.why);
        /* Entries for other policies are theirs to use, but they must still be valid, so a
         * typo is caught whichever policy is being resolved. */
        policy_params scratch;
        policy_params *dst = owner == ops ? out : &scratch;
        if (owner != ops) fill_defaults(owner, &scratch);
        rb_status st = set_one(owner, dot + 1, s, dst, e);
        if (st) return st;
    }
    return RB_OK;
}

static int find_index(const policy_params *p, const char *key) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].key, key)) return i;
    rb_die(__FILE__, __LINE__, "policy asked for undeclared parameter '%s'", key);
}

double policy_param_num(const policy_params *p, const char *key) {
    return p->v[find_index(p, key)].num;
}

const char *policy_param_str(const policy_params *p, const char *key) {
    return p->v[find_index(p, key)].str;
}

char *policy_params_json(const policy_ops *ops, const policy_params *p) {
    cJSON *o = cJSON_CreateObject();
    RB_CHECK(o);
    for (int i = 0; i < p->n; i++) {
        const policy_param_spec *sp = spec_find(ops, p->v[i].key, strlen(p->v[i].key));
        RB_CHECK(sp);
        cJSON *item = sp->type == PARAM_CHOICE ? cJSON_AddStringToObject(o, sp->key, p->v[i].str)
                                               : cJSON_AddNumberToObject(o, sp->key, p->v[i].num);
        RB_CHECK(item);
    }
    char *txt = cJSON_PrintUnformatted(o);
    RB_CHECK(txt);
    cJSON_Delete(o);
    /* cJSON allocates with malloc by default, so the caller's free() matches; copy anyway so
     * the contract holds whatever hooks cJSON was built with. */
    char *out = rb_strdup(txt);
    cJSON_free(txt);
    return out;
}
