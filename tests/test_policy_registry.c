/* test_policy_registry.c: the registry and parameters: every built-in table passes its
 * check, a table missing a required slot (or with a bad parameter spec) is refused, unknown
 * policies and bad --param entries are refused with a message naming the entry, defaults
 * resolve, and impossible budgets are refused at create with a message naming the budget. */
#include <cjson/cJSON.h>

#include "policy_testkit.h"

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static void test_list_and_check(void) {
    /* The registry is the list: every table in it passes its check, has a unique name, and
     * is what policy_find returns for that name. */
    int n;
    const policy_ops *const *l = policy_list(&n);
    TK_CHECK(n > 0, "policies registered: %d", n);
    for (int i = 0; i < n; i++) {
        rb_err e = {0};
        TK_CHECK(l[i] != NULL, "entry %d", i);
        if (!l[i]) continue;
        TK_CHECK(policy_ops_check(l[i], &e) == RB_OK, "%s passes: %s", l[i]->name, e.why);
        TK_CHECK(policy_find(l[i]->name, &e) == l[i], "find %s", l[i]->name);
        for (int j = 0; j < i; j++)
            TK_CHECK(strcmp(l[i]->name, l[j]->name), "%s registered twice", l[i]->name);
        /* Flags that cannot go together: a policy keeping everything pins nothing more. */
        TK_CHECK(!((l[i]->flags & POLICY_KEEPS_ALL) && (l[i]->flags & POLICY_PINS_PROMPT)),
                 "%s: POLICY_KEEPS_ALL with POLICY_PINS_PROMPT", l[i]->name);
        TK_CHECK(!(l[i]->flags & POLICY_BUDGET_FREE) || (l[i]->flags & POLICY_KEEPS_ALL),
                 "%s: POLICY_BUDGET_FREE must keep everything (no budget to evict to)",
                 l[i]->name);
        /* A run may choose every policy but the internal ones, which are refused saying so. */
        const policy_ops *chosen = policy_find_choice(l[i]->name, &e);
        if (l[i]->flags & POLICY_INTERNAL)
            TK_CHECK(!chosen && e.status == RB_EINPUT && contains(e.why, "internal"),
                     "internal %s refused as a choice: %s", l[i]->name, e.why);
        else
            TK_CHECK(chosen == l[i], "%s is a choice", l[i]->name);
    }
    rb_err ce = {0};
    TK_CHECK(!policy_find_choice("lru", &ce) && ce.status == RB_EINPUT, "unknown choice refused");
    for (int i = 0; i < n; i++)
        TK_CHECK(!contains(ce.why, l[i]->name) == !!(l[i]->flags & POLICY_INTERNAL),
                 "the known choices listed are the non-internal ones: %s", ce.why);
    rb_err e = {0};
    TK_CHECK(policy_find("lru", &e) == NULL && e.status == RB_EINPUT, "unknown policy refused");
    TK_CHECK(contains(e.what, "lru") && contains(e.why, l[n - 1]->name),
             "message names it and the known ones: %s: %s", e.what, e.why);

    /* A table missing each required slot in turn. */
    const char *slots[] = {"create", "destroy", "prefill", "append", "select"};
    for (int i = 0; i < 5; i++) {
        policy_ops bad = *l[0];
        if (i == 0) bad.create = NULL;
        if (i == 1) bad.destroy = NULL;
        if (i == 2) bad.prefill = NULL;
        if (i == 3) bad.append = NULL;
        if (i == 4) bad.select = NULL;
        rb_err be = {0};
        TK_CHECK(policy_ops_check(&bad, &be) == RB_EINPUT && contains(be.why, slots[i]),
                 "missing %s refused: %s", slots[i], be.why);
    }
    policy_ops noname = *l[0];
    noname.name = NULL;
    TK_CHECK(policy_ops_check(&noname, &e) == RB_EINPUT, "no name refused");
    policy_ops nosum = *l[0];
    nosum.summary = "";
    TK_CHECK(policy_ops_check(&nosum, &e) == RB_EINPUT, "no summary refused");
    policy_ops upper = *l[0];
    upper.name = "Dense";
    TK_CHECK(policy_ops_check(&upper, &e) == RB_EINPUT, "upper-case name refused");
    /* Parameter specs whose default is out of range or not a choice. */
    static const policy_param_spec bad_range[] = {
        {"x", PARAM_FLOAT, "2", NULL, 0, 1, "x"}, {NULL, 0, NULL, NULL, 0, 0, NULL}};
    static const policy_param_spec bad_choice[] = {
        {"x", PARAM_CHOICE, "c", "a|b", 0, 0, "x"}, {NULL, 0, NULL, NULL, 0, 0, NULL}};
    static const policy_param_spec dup[] = {{"x", PARAM_INT, "1", NULL, 0, 9, "x"},
                                            {"x", PARAM_INT, "1", NULL, 0, 9, "x"},
                                            {NULL, 0, NULL, NULL, 0, 0, NULL}};
    policy_ops bp = *l[0];
    bp.params = bad_range;
    TK_CHECK(policy_ops_check(&bp, &e) == RB_EINPUT && contains(e.why, "default"),
             "default out of range refused: %s", e.why);
    bp.params = bad_choice;
    TK_CHECK(policy_ops_check(&bp, &e) == RB_EINPUT, "default not a choice refused");
    bp.params = dup;
    TK_CHECK(policy_ops_check(&bp, &e) == RB_EINPUT, "duplicate key refused");
}

static void expect_param_fail(const policy_ops *ops, const char *entry, const char *why_has) {
    const char *kv[] = {"raas.r=0.25", entry};
    policy_params p;
    rb_err e = {0};
    rb_status st = policy_params_for(ops, kv, 2, &p, &e);
    TK_CHECK(st == RB_EINPUT, "'%s' refused", entry);
    TK_CHECK(!strcmp(e.what, entry), "message names the entry '%s' (what = '%s')", entry, e.what);
    TK_CHECK(contains(e.why, why_has), "'%s': why '%s' mentions '%s'", entry, e.why, why_has);
}

static void test_params(void) {
    const policy_ops *raas = policy_find("raas", NULL);
    policy_params p;
    rb_err e = {0};
    /* Defaults. */
    TK_CHECK(policy_params_for(raas, NULL, 0, &p, &e) == RB_OK, "no entries");
    TK_CHECK(policy_param_num(&p, "r") == 0.5 && policy_param_num(&p, "alpha") == 1 &&
                 !strcmp(policy_param_str(&p, "budget"), "total") &&
                 policy_param_num(&p, "pin_prefill") == 1,
             "defaults r=0.5 alpha=1 budget=total pin_prefill=1");
    TK_CHECK(!strcmp(policy_param_str(&p, "score"), "bound") &&
                 !strcmp(policy_param_str(&p, "refresh"), "top_frac"),
             "default choices");
    /* Own entries applied, other policies' entries skipped (but valid), later wins. */
    const char *kv[] = {"raas.r=0.3", "h2o.recent=0.25", "raas.score=exact", "raas.r=0.125"};
    TK_CHECK(policy_params_for(raas, kv, 4, &p, &e) == RB_OK, "valid entries: %s", e.why);
    TK_CHECK(policy_param_num(&p, "r") == 0.125, "later entry wins: r=%g", policy_param_num(&p, "r"));
    TK_CHECK(!strcmp(policy_param_str(&p, "score"), "exact"), "score=exact");
    const policy_ops *h2o = policy_find("h2o", NULL);
    TK_CHECK(policy_params_for(h2o, kv, 4, &p, &e) == RB_OK &&
                 policy_param_num(&p, "recent") == 0.25,
             "h2o takes its own entry");
    /* The prefix-stripped form. */
    const char *stripped[] = {"sinks=8"};
    TK_CHECK(policy_params_resolve(policy_find("streamingllm", NULL), stripped, 1, &p, &e) == RB_OK &&
                 policy_param_num(&p, "sinks") == 8,
             "resolve sinks=8");
    TK_CHECK(policy_params_resolve(raas, stripped, 1, &p, &e) == RB_EINPUT, "raas has no sinks");

    expect_param_fail(raas, "lru.size=4", "not a policy");
    expect_param_fail(raas, "raas.q=1", "no parameter");
    expect_param_fail(raas, "dense.x=1", "no parameter");
    expect_param_fail(raas, "raas.r=abc", "number");
    expect_param_fail(raas, "raas.r=1.5", "out of range");
    expect_param_fail(raas, "raas.r=-0.1", "out of range");
    expect_param_fail(raas, "raas.r=", "nothing");
    expect_param_fail(raas, "raas.r=nan", "number");
    expect_param_fail(raas, "raas.score=median", "bound|exact");
    expect_param_fail(raas, "quest.gqa=both", "group|head"); /* another policy's bad value */
    expect_param_fail(raas, "streamingllm.sinks=1.5", "integer");
    expect_param_fail(raas, "random.seed=-2", "out of range");
    expect_param_fail(raas, "r=0.3", "policy.key=value");
    expect_param_fail(raas, "raas.r", "policy.key=value");
    expect_param_fail(raas, "raas.score=boundboundboundboundboundboundbound", "too long");

    /* JSON provenance. */
    const char *kv2[] = {"raas.r=0.3", "raas.refresh=threshold"};
    TK_CHECK(policy_params_for(raas, kv2, 2, &p, &e) == RB_OK, "kv2");
    char *js = policy_params_json(raas, &p);
    cJSON *o = cJSON_Parse(js);
    TK_CHECK(o != NULL, "json parses: %s", js);
    if (o) {
        cJSON *r = cJSON_GetObjectItem(o, "r"), *rf = cJSON_GetObjectItem(o, "refresh");
        TK_CHECK(r && cJSON_IsNumber(r) && r->valuedouble == 0.3, "r in json");
        TK_CHECK(rf && cJSON_IsString(rf) && !strcmp(rf->valuestring, "threshold"), "refresh");
        TK_CHECK(cJSON_GetArraySize(o) == 6, "6 parameters in json");
        cJSON_Delete(o);
    }
    free(js);
}

static void expect_create_fail(const char *policy, int L, int P, const char *param,
                               const char *why_has) {
    const char *kv[] = {param};
    tk_cfg c = {.policy = policy, .params = kv, .n_params = param ? 1 : 0, .n_q = 2, .n_kv = 1,
                .d = 4, .budget = L, .page_size = P, .n_prefill = 4, .n_tokens = 64};
    tk t;
    rb_err e = {0};
    rb_status st = tk_create(&t, &c, &e);
    TK_CHECK(st == RB_EINPUT, "%s L=%d P=%d refused", policy, L, P);
    if (st == RB_OK) {
        tk_destroy(&t);
        return;
    }
    char lbuf[32];
    snprintf(lbuf, sizeof lbuf, "L=%d", L);
    TK_CHECK(contains(e.why, lbuf) && contains(e.why, why_has),
             "%s: message names the budget and rule: %s", policy, e.why);
}

static void expect_create_ok(const char *policy, int L, int P, const char *param) {
    const char *kv[] = {param};
    tk_cfg c = {.policy = policy, .params = kv, .n_params = param ? 1 : 0, .n_q = 2, .n_kv = 1,
                .d = 4, .budget = L, .page_size = P, .n_prefill = 4, .n_tokens = 64};
    tk t;
    rb_err e = {0};
    TK_CHECK(tk_create(&t, &c, &e) == RB_OK, "%s L=%d P=%d accepted: %s", policy, L, P, e.why);
    if (!e.status) tk_destroy(&t);
}

static void test_budgets(void) {
    expect_create_fail("quest", 31, 16, NULL, "2P");
    expect_create_fail("raas", 31, 16, NULL, "2P");
    expect_create_fail("raas", 7, 4, NULL, "2P");
    expect_create_ok("quest", 32, 16, NULL);
    expect_create_ok("raas", 8, 4, NULL);
    expect_create_fail("streamingllm", 4, 16, NULL, "sinks");
    expect_create_fail("streamingllm", 3, 16, "streamingllm.sinks=3", "sinks");
    expect_create_ok("streamingllm", 5, 16, NULL);
    expect_create_ok("streamingllm", 1, 16, "streamingllm.sinks=0");
    /* No budget: refused by every policy that has one; a budget-free policy (dense) takes
     * any, since the engine passes it the run's budget whatever it is. */
    int n;
    const policy_ops *const *l = policy_list(&n);
    for (int i = 0; i < n; i++) {
        if (l[i]->flags & POLICY_BUDGET_FREE)
            expect_create_ok(l[i]->name, 0, 16, NULL);
        else
            expect_create_fail(l[i]->name, 0, 16, NULL, "at least 1");
    }
    tk t;
    rb_err e = {0};
    tk_cfg c = {.policy = "nosuch", .n_q = 2, .n_kv = 1, .d = 4, .budget = 8, .page_size = 4,
                .n_tokens = 16};
    TK_CHECK(tk_create(&t, &c, &e) == RB_EINPUT && contains(e.why, "unknown policy"),
             "unknown policy: %s", e.why);
    const char *bad[] = {"raas.alpha=-1"};
    tk_cfg c2 = {.policy = "raas", .params = bad, .n_params = 1, .n_q = 2, .n_kv = 1, .d = 4,
                 .budget = 8, .page_size = 4, .n_tokens = 16};
    TK_CHECK(tk_create(&t, &c2, &e) == RB_EINPUT && !strcmp(e.what, "raas.alpha=-1"),
             "bad value refused before create: %s", e.what);
}

int main(void) {
    test_list_and_check();
    test_params();
    test_budgets();
    if (tk_failures) return 1;
    int n;
    policy_list(&n);
    printf("# registry: %d policies checked; bad tables, entries and budgets refused\n", n);
    return 0;
}
