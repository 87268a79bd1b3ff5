/* test_cells: the cells layer (cells.h) that replay, sweep, bench and decode share: run ids,
 * trace stems, layer roles and what each role runs, cells from lists with each policy's own
 * parameters, refusal of bad input (RB_EINPUT, which the CLI prints and exits 2 with), and
 * a run's results started from a cell. */
#include <string.h>

#include "cells.h"
#include "testutil.h"

static const policy_ops *find(const char *name) {
    rb_err e = {0};
    const policy_ops *ops = policy_find(name, &e);
    TU_ASSERT(ops, "policy %s not registered: %s", name, e.why);
    return ops;
}

static cell one(const char *name, const char *const *kv, int n_kv, int budget, const char *label,
                const char *suffix) {
    rb_err e = {0};
    const policy_ops *ops = find(name);
    policy_params pp;
    TU_OK(policy_params_for(ops, kv, n_kv, &pp, &e), e);
    cell c;
    TU_OK(cells_init(&c, ops, &pp, budget, label, suffix, &e), e);
    return c;
}

/* The run id rules: "<policy>[-<label>]_L<budget>[@<suffix>]". */
static void test_run_ids(void) {
    struct {
        const char *policy, *label, *suffix;
        int budget;
        const char *want;
    } cases[] = {
        {"raas", NULL, NULL, 256, "raas_L256"},
        {"raas", "exact", NULL, 256, "raas-exact_L256"},
        {"raas", "", "", 256, "raas_L256"},
        {"h2o", NULL, "long", 64, "h2o_L64@long"},
        {"raas", "r25", "milestones", 1024, "raas-r25_L1024@milestones"},
        {"dense", NULL, NULL, 0, "dense_L0"}, /* a budget-free policy may be given none */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cell c = one(cases[i].policy, NULL, 0, cases[i].budget, cases[i].label, cases[i].suffix);
        TU_ASSERT(!strcmp(c.run_id, cases[i].want), "run id '%s', want '%s'", c.run_id,
                  cases[i].want);
        TU_ASSERT(c.budget == cases[i].budget && c.ops == find(cases[i].policy), "%s", c.run_id);
        TU_ASSERT(!strcmp(c.label, cases[i].label ? cases[i].label : ""), "label '%s'", c.label);
        TU_ASSERT(c.params_json && c.params_json[0] == '{', "params_json '%s'", c.params_json);
        free(c.params_json);
    }
    /* the resolved parameters travel with the cell */
    const char *kv[] = {"raas.score=exact"};
    cell c = one("raas", kv, 1, 128, "exact", NULL);
    TU_ASSERT(strstr(c.params_json, "\"score\":\"exact\""), "params_json %s", c.params_json);
    free(c.params_json);

    struct {
        const char *path, *want;
    } stems[] = {
        {"results/milestones.h5", "milestones"}, {"long.h5", "long"},
        {"/a/b.c/trace", "trace"},               {"x.y.h5", "x.y"},
        {".hidden", ".hidden"},                  {"dir/", ""},
    };
    for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++) {
        char buf[64];
        cells_trace_stem(stems[i].path, buf, sizeof buf);
        TU_ASSERT(!strcmp(buf, stems[i].want), "stem of %s: '%s', want '%s'", stems[i].path, buf,
                  stems[i].want);
    }
    char small[6];
    cells_trace_stem("abcdefgh.h5", small, sizeof small); /* cut first, then the extension */
    TU_ASSERT(!strcmp(small, "abcde"), "cut stem '%s'", small);
}

/* Bad cells are refused with RB_EINPUT (exit 2 at the CLI) and a message naming the cause. */
static void test_cell_refusals(void) {
    rb_err e = {0};
    const policy_ops *raas = find("raas"), *dense = find("dense");
    policy_params pp;
    TU_OK(policy_params_for(raas, NULL, 0, &pp, &e), e);
    cell c;
    TU_ASSERT(cells_init(&c, raas, &pp, 0, NULL, NULL, &e) == RB_EINPUT, "budget 0 for raas");
    TU_ASSERT(strstr(e.why, "must be positive"), "why: %s", e.why);
    TU_ASSERT(cells_init(&c, raas, &pp, -3, NULL, NULL, &e) == RB_EINPUT, "negative budget");
    policy_params pd;
    TU_OK(policy_params_for(dense, NULL, 0, &pd, &e), e);
    TU_ASSERT(cells_init(&c, dense, &pd, -1, NULL, NULL, &e) == RB_EINPUT, "dense at -1");
    char label[200];
    memset(label, 'x', sizeof label - 1), label[sizeof label - 1] = 0;
    TU_ASSERT(cells_init(&c, raas, &pp, 64, label, NULL, &e) == RB_EINPUT, "long label");
    TU_ASSERT(strstr(e.why, "label too long"), "why: %s", e.why);
    char suffix[120];
    memcpy(suffix, label, sizeof suffix - 1), suffix[sizeof suffix - 1] = 0;
    label[60] = 0; /* the label fits, the run id with its suffix does not (160 bytes) */
    TU_ASSERT(cells_init(&c, raas, &pp, 64, label, suffix, &e) == RB_EINPUT &&
                  strstr(e.why, "run id too long"),
              "long run id: %s", e.why);
}

/* Layer roles come from the layer alone: a sliding window first, then dense_layers. */
static void test_layer_roles(void) {
    TU_ASSERT(cells_layer_role(0, 512, 2) == LAYER_WINDOW, "windowed layer 0");
    TU_ASSERT(cells_layer_role(5, 512, 2) == LAYER_WINDOW, "windowed layer 5");
    TU_ASSERT(cells_layer_role(0, 0, 2) == LAYER_DENSE, "layer 0 of 2 dense");
    TU_ASSERT(cells_layer_role(1, 0, 2) == LAYER_DENSE, "layer 1 of 2 dense");
    TU_ASSERT(cells_layer_role(2, 0, 2) == LAYER_POLICY, "layer 2 past the dense layers");
    TU_ASSERT(cells_layer_role(0, 0, 0) == LAYER_POLICY, "no dense layers");

    rb_err e = {0};
    layer_policy lp;
    cell h2o = one("h2o", (const char *const[]){"h2o.recent=0.25"}, 1, 96, NULL, NULL);
    cell dense = one("dense", NULL, 0, 64, NULL, NULL);
    const int max_tokens = 4096;
    /* a normal policy: its own ops, parameters and budget */
    TU_OK(cells_layer_policy(LAYER_POLICY, &h2o, 0, max_tokens, &lp, &e), e);
    TU_ASSERT(lp.ops == h2o.ops && lp.budget == 96, "h2o layer: budget %d", lp.budget);
    char *js = policy_params_json(lp.ops, &lp.params);
    TU_ASSERT(strstr(js, "0.25"), "h2o layer params %s", js);
    free(js);
    /* a budget-free policy gets room for every token whatever the cell's budget */
    TU_OK(cells_layer_policy(LAYER_POLICY, &dense, 0, max_tokens, &lp, &e), e);
    TU_ASSERT(lp.ops == dense.ops && lp.budget == max_tokens, "dense layer: budget %d", lp.budget);
    /* forced roles ignore the cell */
    TU_OK(cells_layer_policy(LAYER_WINDOW, &h2o, 512, max_tokens, &lp, &e), e);
    TU_ASSERT(lp.ops == find("window") && lp.budget == 512, "window layer: budget %d", lp.budget);
    TU_OK(cells_layer_policy(LAYER_DENSE, NULL, 0, max_tokens, &lp, &e), e);
    TU_ASSERT(lp.ops == find("dense") && lp.budget == max_tokens, "dense role: budget %d",
              lp.budget);

    /* one stepper serves several cells only when they compute the same thing */
    cell dense2 = one("dense", NULL, 0, 256, NULL, NULL);
    cell h2o2 = one("h2o", (const char *const[]){"h2o.recent=0.25"}, 1, 192, NULL, NULL);
    TU_ASSERT(cells_same_work(&dense, &dense2), "dense at two budgets is one piece of work");
    TU_ASSERT(!cells_same_work(&h2o, &h2o2), "h2o at two budgets is two");
    TU_ASSERT(!cells_same_work(&dense, &h2o), "dense and h2o");
    free(h2o.params_json), free(dense.params_json), free(dense2.params_json);
    free(h2o2.params_json);
}

/* Lists to cells: policies outer, budgets inner, each policy taking its own parameters. */
static void test_cells_make(void) {
    rb_err e = {0};
    const char *pol[] = {"streamingllm", "raas"};
    const int bud[] = {64, 256};
    const char *kv[] = {"raas.score=exact", "streamingllm.sinks=8"};
    cell *cs = NULL;
    int n = 0;
    TU_OK(cells_make(pol, 2, bud, 2, kv, 2, "v1", &cs, &n, &e), e);
    const char *want[] = {"streamingllm-v1_L64", "streamingllm-v1_L256", "raas-v1_L64",
                          "raas-v1_L256"};
    TU_ASSERT(n == 4, "%d cells", n);
    for (int i = 0; i < n; i++)
        TU_ASSERT(!strcmp(cs[i].run_id, want[i]), "cell %d: '%s', want '%s'", i, cs[i].run_id,
                  want[i]);
    TU_ASSERT(strstr(cs[0].params_json, "\"sinks\":8") && !strstr(cs[0].params_json, "score"),
              "streamingllm params %s", cs[0].params_json);
    TU_ASSERT(strstr(cs[2].params_json, "\"score\":\"exact\"") && !strstr(cs[2].params_json, "sinks"),
              "raas params %s", cs[2].params_json);
    cells_free(cs, n);
    cells_free(NULL, 0); /* a no-op */

    /* refusals: nothing is returned and the message names the cause */
    struct {
        const char *policies[2];
        int n_policies;
        const char *kv;
        const char *want_what, *want_why;
    } bad[] = {
        {{"raas", "nosuch"}, 2, NULL, "nosuch", "unknown policy"},
        {{"raas"}, 1, "raas.r=2", "raas.r=2", ""},
        {{"raas"}, 1, "raas.nokey=1", "raas.nokey=1", ""},
        {{"raas"}, 1, "nosuch.x=1", "nosuch.x=1", "not a policy"},
        {{"raas", "raas"}, 2, NULL, "raas_L64", "asked for twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *kvs[1] = {bad[i].kv};
        rb_err be = {0};
        cs = (cell *)&be; /* must come back NULL */
        n = -1;
        rb_status s = cells_make(bad[i].policies, bad[i].n_policies, bud, 2, kvs,
                                 bad[i].kv ? 1 : 0, NULL, &cs, &n, &be);
        TU_ASSERT(s == RB_EINPUT && !cs && n == 0, "case %zu: status %d", i, (int)s);
        TU_ASSERT(strstr(be.what, bad[i].want_what) && strstr(be.why, bad[i].want_why),
                  "case %zu: '%s: %s'", i, be.what, be.why);
    }
    /* a budget raas refuses, found while making the list */
    const int zero[] = {64, 0};
    TU_ASSERT(cells_make(pol, 2, zero, 2, NULL, 0, NULL, &cs, &n, &e) == RB_EINPUT && !cs,
              "budget 0 in a list");
}

/* Labelled variants in the policy list: their own parameters after the common ones, their
 * own label in the run id; an unlabelled variant and malformed entries are refused. */
static void test_cells_variants(void) {
    rb_err e = {0};
    const char *pol[] = {"raas", "decode=raas:budget=decode", "loose=raas:budget=decode:alpha=2",
                         "sinks4=streamingllm"};
    const int bud[] = {64};
    const char *kv[] = {"raas.alpha=3"};
    cell *cs = NULL;
    int n = 0;
    TU_OK(cells_make(pol, 4, bud, 1, kv, 1, NULL, &cs, &n, &e), e);
    const char *want[] = {"raas_L64", "raas-decode_L64", "raas-loose_L64", "streamingllm-sinks4_L64"};
    TU_ASSERT(n == 4, "%d cells", n);
    for (int i = 0; i < n; i++)
        TU_ASSERT(!strcmp(cs[i].run_id, want[i]), "cell %d: '%s', want '%s'", i, cs[i].run_id,
                  want[i]);
    TU_ASSERT(strstr(cs[0].params_json, "\"budget\":\"total\"") &&
              strstr(cs[0].params_json, "\"alpha\":3"), "plain raas %s", cs[0].params_json);
    TU_ASSERT(strstr(cs[1].params_json, "\"budget\":\"decode\"") &&
              strstr(cs[1].params_json, "\"alpha\":3"), "common then own: %s", cs[1].params_json);
    TU_ASSERT(strstr(cs[2].params_json, "\"alpha\":2"), "own wins: %s", cs[2].params_json);
    TU_ASSERT(!strcmp(cs[1].label, "decode"), "label '%s'", cs[1].label);
    cells_free(cs, n);

    struct {
        const char *entry, *want;
    } bad[] = {
        {"raas:budget=decode", "needs a label"},
        {"x=raas:budget", "not KEY=VALUE"},
        {"x=raas:=3", "not KEY=VALUE"},
        {"x=raas:budget=sideways", ""},
        {"x=nosuch", "unknown policy"},
        {"=raas", "a label must be"},
        {"a b=raas", "a label must be"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rb_err be = {0};
        const char *one_entry[] = {bad[i].entry};
        rb_status s = cells_make(one_entry, 1, bud, 1, NULL, 0, NULL, &cs, &n, &be);
        TU_ASSERT(s == RB_EINPUT && !cs && n == 0, "'%s': status %d", bad[i].entry, (int)s);
        TU_ASSERT(strstr(be.why, bad[i].want), "'%s': '%s: %s'", bad[i].entry, be.what, be.why);
    }
}

/* A run started from a cell carries its identity and the layer columns from the roles. */
static void test_run_init(void) {
    cell c = one("quest", NULL, 0, 128, "q", NULL);
    const int layers[] = {0, 1, 5, 11, 17};
    const int windows[] = {512, 0, 0, 512, 0};
    run_facts f = {.source = "t.h5", .page_size = 16, .dense_layers = 2, .latency_every = 4,
                   .n_tokens = 300, .n_prefill = 100, .layers = layers, .sliding_window = windows};
    results_run r;
    cells_run_init(&r, &c, &f, 200, 5, 4, 1);
    TU_ASSERT(!strcmp(r.run_id, "quest-q_L128") && !strcmp(r.policy, "quest"), "%s", r.run_id);
    TU_ASSERT(!strcmp(r.trace, "t.h5") && r.budget == 128 && r.page_size == 16 &&
                  r.dense_layers == 2 && r.latency_every == 4 && r.n_tokens == 300,
              "run facts");
    TU_ASSERT(!strcmp(r.params_json, c.params_json), "params %s", r.params_json);
    TU_ASSERT(r.T == 200 && r.n_layers == 5 && r.n_q_heads == 4 && r.recall_head, "shapes");
    const int want_sparse[] = {0, 0, 1, 0, 1}; /* window, dense, policy, window, policy */
    for (int l = 0; l < 5; l++)
        TU_ASSERT(r.layers[l] == layers[l] && r.sparse[l] == want_sparse[l], "layer %d: %d %d", l,
                  r.layers[l], r.sparse[l]);
    TU_ASSERT(r.step[0] == 100 && r.step[199] == 299, "steps %d..%d", r.step[0], r.step[199]);
    results_run_free(&r);
    free(c.params_json);
}

int main(void) {
    test_run_ids();
    test_cell_refusals();
    test_layer_roles();
    test_cells_make();
    test_cells_variants();
    test_run_init();
    return tu_done("test_cells");
}
