/* cmd_sweep.c: `raasbench sweep CONFIG.json`: traces x policies x budgets, resumable.
 *
 * Every finished cell is written, atomically (temporary name, then rename), as a one-run
 * results file in `<out>.cells/`; the final file is assembled from those. Killed at any
 * moment, a sweep loses no finished cell and leaves no file that looks whole but is not;
 * rerun, it runs only the cells whose file is missing, then assembles again. The cells
 * directory remembers the sweep's resolved configuration and refuses to mix sweeps. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "engine.h"
#include "json.h"
#include "output.h"
#include "shard.h"

#define MAX_ITEMS 64

typedef struct sweep_policy {
    const policy_ops *ops;
    policy_params params;
    char label[48]; /* "" or a label given in the config */
} sweep_policy;

typedef struct sweep_config {
    const char *traces[MAX_ITEMS];
    int n_traces;
    sweep_policy policies[MAX_ITEMS];
    int n_policies;
    int budgets[MAX_ITEMS];
    int n_budgets;
    int page_size, dense_layers, elem_bytes, steps, threads, batch, latency_every;
    uint64_t seed;
    const char *out;
    const char *model; /* the GGUF whose vocabulary reads the traces' tokens (sepllm), or NULL */
    cJSON *root;
} sweep_config;

static const char *const top_keys[] = {"traces", "policies", "budgets", "page_size",
                                       "dense_layers", "elem_bytes", "steps", "seed", "threads",
                                       "batch", "latency_every", "out", "model", "comment", NULL};

static rb_status want_int(const cJSON *o, const char *key, int min, int max, int *out, rb_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return RB_OK;
    /* The range first: converting a double outside int's range to int is undefined. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= min && v->valuedouble <= max) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return rb_fail(e, RB_EINPUT, key, "must be an integer in %d..%d", min, max);
    *out = (int)v->valuedouble;
    return RB_OK;
}

static rb_status parse_policy(const cJSON *item, int idx, sweep_policy *p, rb_err *e) {
    char what[64];
    snprintf(what, sizeof what, "policies[%d]", idx);
    memset(p, 0, sizeof *p);
    const char *kv[POLICY_MAX_PARAMS];
    char kvbuf[POLICY_MAX_PARAMS][96];
    int n_kv = 0;
    if (cJSON_IsString(item)) {
        if (!(p->ops = policy_find_choice(item->valuestring, e))) return RB_EINPUT;
    } else if (cJSON_IsObject(item)) {
        for (const cJSON *c = item->child; c; c = c->next)
            if (strcmp(c->string, "name") && strcmp(c->string, "params") && strcmp(c->string, "label"))
                return rb_fail(e, RB_EINPUT, what, "unknown key '%s' (expected name, params, "
                               "label)", c->string);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
        if (!cJSON_IsString(name)) return rb_fail(e, RB_EINPUT, what, "needs a string 'name'");
        if (!(p->ops = policy_find_choice(name->valuestring, e))) return RB_EINPUT;
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(item, "label");
        if (label) {
            if (!cJSON_IsString(label) || !*label->valuestring ||
                strlen(label->valuestring) >= sizeof p->label ||
                strpbrk(label->valuestring, "/ @\t"))
                return rb_fail(e, RB_EINPUT, what, "'label' must be a short string without "
                               "'/', '@' or spaces");
            snprintf(p->label, sizeof p->label, "%s", label->valuestring);
        }
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(item, "params");
        if (params && !cJSON_IsObject(params))
            return rb_fail(e, RB_EINPUT, what, "'params' must be an object");
        for (const cJSON *c = params ? params->child : NULL; c; c = c->next) {
            if (n_kv == POLICY_MAX_PARAMS) return rb_fail(e, RB_EINPUT, what, "too many params");
            if (cJSON_IsNumber(c))
                snprintf(kvbuf[n_kv], sizeof kvbuf[n_kv], "%s=%.17g", c->string, c->valuedouble);
            else if (cJSON_IsString(c))
                snprintf(kvbuf[n_kv], sizeof kvbuf[n_kv], "%s=%s", c->string, c->valuestring);
            else
                return rb_fail(e, RB_EINPUT, what, "param '%s' must be a number or a string",
                               c->string);
            kv[n_kv] = kvbuf[n_kv];
            n_kv++;
        }
        if (n_kv && !p->label[0])
            return rb_fail(e, RB_EINPUT, what, "a policy with params needs a 'label' that names "
                           "the variant in run ids");
    } else {
        return rb_fail(e, RB_EINPUT, what, "must be a policy name or {name, params, label}");
    }
    rb_status s = policy_params_resolve(p->ops, kv, n_kv, &p->params, e);
    if (s && e) {
        char why[sizeof e->why + sizeof e->what + 4];
        snprintf(why, sizeof why, "%s: %s", e->what, e->why);
        rb_fail(e, s, what, "%s", why);
    }
    return s;
}

static rb_status parse_config(const char *path, sweep_config *c, rb_err *e) {
    memset(c, 0, sizeof *c);
    c->page_size = 16, c->dense_layers = 2, c->elem_bytes = 2, c->seed = 1, c->latency_every = 1;
    c->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char *text;
    size_t len;
    rb_status rs = rb_read_file(path, (size_t)1 << 24, &text, &len, e);
    if (rs) return rs;
    rs = rb_json_parse(text, len, path, &c->root, e);
    free(text);
    if (rs) return rs;
    const cJSON *r = c->root;
    if (!cJSON_IsObject(r)) return rb_fail(e, RB_EINPUT, path, "the config must be a JSON object");
    for (const cJSON *it = r->child; it; it = it->next) {
        int known = 0;
        for (int i = 0; top_keys[i]; i++) known |= !strcmp(it->string, top_keys[i]);
        if (!known) return rb_fail(e, RB_EINPUT, it->string, "unknown key in %s", path);
    }
    const cJSON *traces = cJSON_GetObjectItemCaseSensitive(r, "traces");
    const cJSON *pols = cJSON_GetObjectItemCaseSensitive(r, "policies");
    const cJSON *buds = cJSON_GetObjectItemCaseSensitive(r, "budgets");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(r, "out");
    if (!cJSON_IsArray(traces) || !cJSON_GetArraySize(traces) || cJSON_GetArraySize(traces) > MAX_ITEMS)
        return rb_fail(e, RB_EINPUT, "traces", "must be a non-empty list of trace paths");
    if (!cJSON_IsArray(pols) || !cJSON_GetArraySize(pols) || cJSON_GetArraySize(pols) > MAX_ITEMS)
        return rb_fail(e, RB_EINPUT, "policies", "must be a non-empty list");
    if (!cJSON_IsArray(buds) || !cJSON_GetArraySize(buds) || cJSON_GetArraySize(buds) > MAX_ITEMS)
        return rb_fail(e, RB_EINPUT, "budgets", "must be a non-empty list of integers");
    if (!cJSON_IsString(out) || !*out->valuestring)
        return rb_fail(e, RB_EINPUT, "out", "must be the path of the results file");
    c->out = out->valuestring;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(r, "model");
    if (model && (!cJSON_IsString(model) || !*model->valuestring))
        return rb_fail(e, RB_EINPUT, "model", "must be the path of the GGUF model that recorded "
                       "the traces (its vocabulary tells sepllm which tokens are separators)");
    c->model = model ? model->valuestring : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, traces) {
        if (!cJSON_IsString(it)) return rb_fail(e, RB_EINPUT, "traces", "entries must be strings");
        c->traces[c->n_traces++] = it->valuestring;
    }
    cJSON_ArrayForEach(it, pols) {
        rb_status s = parse_policy(it, c->n_policies, &c->policies[c->n_policies], e);
        if (s) return s;
        c->n_policies++;
    }
    cJSON_ArrayForEach(it, buds) {
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 1 && it->valuedouble <= INT_MAX) ||
            it->valuedouble != (double)(int)it->valuedouble)
            return rb_fail(e, RB_EINPUT, "budgets", "entries must be positive integers");
        c->budgets[c->n_budgets++] = (int)it->valuedouble;
    }
    int seed = 1;
    rb_status s;
    if ((s = want_int(r, "page_size", 1, 4096, &c->page_size, e)) ||
        (s = want_int(r, "dense_layers", 0, 1 << 20, &c->dense_layers, e)) ||
        (s = want_int(r, "elem_bytes", 1, 8, &c->elem_bytes, e)) ||
        (s = want_int(r, "steps", 0, 1 << 30, &c->steps, e)) ||
        (s = want_int(r, "threads", 1, 1024, &c->threads, e)) ||
        (s = want_int(r, "batch", 0, 1 << 20, &c->batch, e)) ||
        (s = want_int(r, "latency_every", 1, 1 << 20, &c->latency_every, e)) ||
        (s = want_int(r, "seed", 0, 1 << 30, &seed, e)))
        return s;
    c->seed = (uint64_t)seed;
    return RB_OK;
}

/* The separator mask of a trace when a policy of the sweep needs one (sepllm), else NULL. */
static rb_status sweep_separators(const sweep_config *c, trace *t, uint8_t **sep, rb_err *e) {
    *sep = NULL;
    for (int p = 0; p < c->n_policies; p++)
        if (c->policies[p].ops->flags & POLICY_NEEDS_SEPARATORS)
            return cells_trace_separators(t, c->model, sep, e);
    return RB_OK;
}

static void cell_file(const char *dir, const char *run_id, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s.h5", dir, run_id);
}

/* Whether the cell file at p is whole: a results file holding run run_id and a readable
 * summary. A file that is there but not whole (truncated by a crash of the machine, or a
 * full disk under another tool) is removed, so that its cell is run again. */
static int file_exists(const char *p) { return access(p, F_OK) == 0; }

/* A refused sweep leaves no trace of itself: a cells directory that holds only its identity
 * file (no cell of any run) is removed. One with cells is kept: they are finished work. */
static void drop_empty_cells_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    int others = 0;
    for (struct dirent *x; (x = readdir(d));)
        others += strcmp(x->d_name, ".") && strcmp(x->d_name, "..") && strcmp(x->d_name, "sweep.json");
    closedir(d);
    if (others) return;
    char id[4200];
    snprintf(id, sizeof id, "%s/sweep.json", dir);
    remove(id);
    rmdir(dir);
}

static int cell_done(const char *p, const char *run_id) {
    if (access(p, F_OK) != 0) return 0;
    results_reader *rd;
    int whole = 0;
    if (!results_reader_open(p, &rd, NULL)) {
        char **ids;
        int n = 0;
        results_summary *rows = NULL;
        int n_rows = 0;
        results_reader_runs(rd, &ids, &n, NULL);
        whole = n == 1 && !strcmp(ids[0], run_id) &&
                !results_reader_summary(rd, &rows, &n_rows, NULL, NULL) && n_rows == 1;
        for (int i = 0; i < n; i++) free(ids[i]);
        free(ids);
        free(rows);
        results_reader_close(rd);
    }
    if (!whole) {
        fprintf(stderr, "raasbench: %s: note: not a whole cell file; running the cell again\n", p);
        remove(p);
    }
    return whole;
}

/* The cells directory remembers which sweep it belongs to. */
static rb_status claim_cells_dir(const char *dir, const char *identity, rb_err *e) {
    return output_claim_dir(dir, "sweep.json", identity,
                            "holds the cells of a different sweep (its sweep.json differs from "
                            "this config); use another 'out' or remove it", e);
}

/* Remove temporary files a killed run left behind. */
/* Identity of the sweep: everything that changes a cell's content (not 'threads'). */
static char *sweep_identity(const sweep_config *c) {
    cJSON *o = cJSON_Duplicate(c->root, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "threads");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "batch");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "comment");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* A sweep while it runs: where its cells go and what has been done. */
typedef struct sweep_run {
    const sweep_config *c;
    char dir[4096];   /* <out>.cells */
    char *identity;   /* sweep_identity: every cell file's provenance */
    char **cell_paths; /* [traces x policies x budgets] every cell's file, in order */
    int n_cell_paths, n_ran, n_skipped;
    int progress;
    /* --reference and --device: where and how the dense reference is computed, not what a
     * cell is (results agree within tests/test_engine_reference.c's tolerance), so like
     * threads they stay out of the sweep's identity */
    engine_reference reference;
    const attn_backend *ref_be;
    /* --shard I/N: owner[cell] is its 0-based shard (cells in config order, traces outer);
     * NULL runs every cell. merge_only: run nothing (`raasbench merge`). */
    const int *owner;
    int shard, merge_only;
} sweep_run;

/* The cells of trace ti still to run, in config order; the finished ones (their file
 * exists) are counted as skipped. Every cell's file joins cell_paths; one asked for twice
 * is refused. todo holds room for every (policy, budget). */
static rb_status trace_cells(sweep_run *sr, int ti, cell *todo, int *n_todo, rb_err *e) {
    const sweep_config *c = sr->c;
    char stem[64];
    cells_trace_stem(c->traces[ti], stem, sizeof stem);
    *n_todo = 0;
    for (int p = 0; p < c->n_policies; p++)
        for (int b = 0; b < c->n_budgets; b++) {
            const sweep_policy *sp = &c->policies[p];
            cell *cl = &todo[*n_todo];
            char path[4600];
            rb_status st = cells_init(cl, sp->ops, &sp->params, c->budgets[b], sp->label,
                                      c->n_traces > 1 ? stem : NULL, e);
            if (st) return st;
            cell_file(sr->dir, cl->run_id, path, sizeof path);
            for (int k = 0; k < sr->n_cell_paths; k++)
                if (!strcmp(sr->cell_paths[k], path)) {
                    free(cl->params_json);
                    return rb_fail(e, RB_EINPUT, cl->run_id, "the same cell appears twice in the "
                                   "sweep (give variants distinct labels)");
                }
            int mine = !sr->merge_only && (!sr->owner || sr->owner[sr->n_cell_paths] == sr->shard);
            sr->cell_paths[sr->n_cell_paths++] = rb_strdup(path);
            if (!mine || cell_done(path, cl->run_id)) {
                free(cl->params_json);
                sr->n_skipped += mine;
                continue;
            }
            (*n_todo)++;
        }
    return RB_OK;
}

/* Replay the cells of trace ti, batch cells per pass over it; each finished cell goes to
 * its own file, atomically. */
static rb_status run_cells(sweep_run *sr, int ti, trace *t, const cell *todo, int n_todo,
                           rb_err *e) {
    const sweep_config *c = sr->c;
    char sha[65] = "";
    rb_status st = n_todo ? results_file_sha256(c->traces[ti], sha, e) : RB_OK;
    uint8_t *sep = NULL;
    if (!st && n_todo) st = sweep_separators(c, t, &sep, e);
    int batch = c->batch > 0 ? c->batch : n_todo;
    for (int first = 0; first < n_todo && !st; first += batch) {
        int n = n_todo - first < batch ? n_todo - first : batch;
        engine_config ec = {.trace = t, .cells = todo + first, .n_cells = n,
                            .page_size = c->page_size, .dense_layers = c->dense_layers,
                            .elem_bytes = c->elem_bytes, .threads = c->threads,
                            .seed = c->seed, .progress = sr->progress, .n_steps = c->steps,
                            .latency_every = c->latency_every, .reference = sr->reference,
                            .ref_backend = sr->ref_be, .separator = sep};
        results_run *runs = rb_calloc((size_t)n, sizeof *runs);
        if (!(st = engine_replay(&ec, runs, NULL, e))) {
            for (int i = 0; i < n && !st; i++) {
                char path[4600];
                cell_file(sr->dir, runs[i].run_id, path, sizeof path);
                results_provenance prov = {.trace = c->traces[ti], .trace_sha256 = sha,
                                           .config_json = sr->identity};
                results_writer *w;
                if (!(st = results_create(path, &prov, &w, e))) {
                    if ((st = results_add_run(w, &runs[i], e))) results_abort(w);
                    else if (!(st = results_finish(w, e))) sr->n_ran++;
                }
            }
            for (int i = 0; i < n; i++) results_run_free(&runs[i]);
        }
        free(runs);
    }
    free(sep);
    return st;
}

/* ---- --shard I/N and merge ---- */

/* Estimated cost of a cell, in units of one context token's work at one decode step, for
 * balancing shards. At a step with ctx tokens in context a cell scores its selection
 * against the dense probabilities of all ctx tokens (metrics: ~ctx), attends to the tokens
 * it keeps (kept = min(ctx, L); ctx for a budget-free policy) and does its own bookkeeping
 * over them: ~2.5 kept in all. A policy reading the dense logits (oracle) ranks every token
 * each step: 2 ctx + 5 kept more. Summed over the replayed steps in closed form. The weights
 * are rough: single-cell and four-cell sweeps timed on a loaded 2-core Xeon (synthetic
 * trace, 256 + 3000 tokens, L 64 and 1024); LPT needs only the ratios. */
static double cell_cost(const policy_ops *ops, int budget, int n_prefill, int steps) {
    double T = steps, P = n_prefill;
    double sum_ctx = T * P + T * (T - 1) / 2; /* ctx = P + t at step t = 0..T-1 */
    double sum_kept = sum_ctx;
    if (!(ops->flags & POLICY_BUDGET_FREE)) {
        double L = budget;
        double k = L <= P ? 0 : (L - P < T ? L - P : T); /* steps before ctx reaches L */
        sum_kept = k * P + k * (k - 1) / 2 + (T - k) * L;
    }
    double cost = sum_ctx + 2.5 * sum_kept;
    if (ops->flags & POLICY_NEEDS_DENSE) cost += 2 * sum_ctx + 5 * sum_kept;
    return cost;
}

/* The shard of every cell (config order: traces, then policies, then budgets); meta: each
 * trace's. A function of the config and the traces alone, never of which cells are done,
 * so every array task agrees on the split. A shard with any cell of a trace pays one pass
 * over it (reading it, the dense reference every cell's metrics share): about 20 sum_ctx
 * in cell_cost's units, from the same timings (a 36-cell sweep over 4 traces took 6.8 s
 * whole and 17.3 s in all as 4 shards that each passed over every trace), so cells of one
 * trace are kept on few shards when that balances as well (shard.h). */
static int *sweep_owners(const sweep_config *c, const trace_meta *meta, int n_shards) {
    int n = c->n_traces * c->n_policies * c->n_budgets, i = 0;
    double *cost = rb_malloc(sizeof *cost * (size_t)n);
    double *pass = rb_malloc(sizeof *pass * (size_t)c->n_traces);
    int *group = rb_malloc(sizeof *group * (size_t)n);
    for (int ti = 0; ti < c->n_traces; ti++) {
        int decode = meta[ti].n_tokens - meta[ti].n_prefill;
        double T = c->steps > 0 && c->steps < decode ? c->steps : decode, P = meta[ti].n_prefill;
        pass[ti] = 20 * (T * P + T * (T - 1) / 2);
        for (int p = 0; p < c->n_policies; p++)
            for (int b = 0; b < c->n_budgets; b++, i++) {
                cost[i] = cell_cost(c->policies[p].ops, c->budgets[b], (int)P, (int)T);
                group[i] = ti;
            }
    }
    int *owner = rb_malloc(sizeof *owner * (size_t)n);
    shard_assign(cost, group, pass, c->n_traces, n, n_shards, owner);
    free(cost), free(pass), free(group);
    return owner;
}

/* Before assembling: every cell file present and made by this sweep (its provenance holds
 * the same identity), so cells copied in from another configuration are refused even
 * under the right name. *n_missing counts the absent ones (then nothing is assembled and
 * the others are not opened); first_missing names one. */
static rb_status check_cells(const sweep_run *sr, int *n_missing, char *first_missing,
                             size_t cap, rb_err *e) {
    *n_missing = 0;
    for (int i = 0; i < sr->n_cell_paths; i++)
        if (!file_exists(sr->cell_paths[i]) && !(*n_missing)++)
            snprintf(first_missing, cap, "%s", sr->cell_paths[i]);
    for (int i = 0; i < sr->n_cell_paths && !*n_missing; i++) {
        const char *path = sr->cell_paths[i];
        results_reader *rd;
        rb_status st = results_reader_open(path, &rd, e);
        if (st) return st;
        results_header h;
        results_reader_header(rd, &h);
        int same = h.config && !strcmp(h.config, sr->identity);
        results_header_free(&h);
        results_reader_close(rd);
        if (!same)
            return rb_fail(e, RB_EINPUT, path, "this cell was made by a different sweep (its "
                           "config differs from this one); remove it and run its shard again");
    }
    return RB_OK;
}

int cmd_sweep(int argc, char **argv) {
    int quiet = 0, merge = 0, shard = 0, n_shards = 0;
    const char *reference = "block", *device = "cpu", *shard_spec = NULL;
    const arg_spec specs[] = {
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress and no summary table"},
        {"reference", ARG_STR, &reference, "block|steps", "the dense reference: chunks of steps "
         "as causal blocks (default) or step by step"},
        {"device", ARG_STR, &device, "cpu|cuda", "where the dense reference runs (default cpu)"},
        {"shard", ARG_STR, &shard_spec, "I/N", "run shard I of N only (split by estimated cost)"},
        {"merge", ARG_FLAG, &merge, NULL, "run nothing: assemble from the cells (raasbench merge)"},
        {NULL, ARG_FLAG, NULL, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("sweep", "CONFIG.json [--shard I/N | --merge]\n"
                   "The config's schema: README.md, section 'Sweeps'; shards and Slurm: section\n"
                   "'Shards and Slurm'.", specs, argc,
                   argv, pos, 1, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (n_pos != 1) {
        rb_fail(&e, RB_EINPUT, "sweep", "expected one CONFIG.json (see --help)");
        return rb_err_print(&e);
    }
    engine_reference ref_kind;
    if (engine_parse_reference(reference, &ref_kind, &e)) return rb_err_print(&e);
    if (shard_spec && (args_shard("--shard", shard_spec, &shard, &n_shards, &e) ||
                       (merge && rb_fail(&e, RB_EINPUT, "--shard", "a merge takes no shard"))))
        return rb_err_print(&e);
    sweep_config c;
    sweep_run sr = {.c = &c, .progress = !quiet, .reference = ref_kind, .shard = shard - 1,
                    .merge_only = merge};
    trace_meta *meta = NULL;
    int *owner = NULL;
    int rc = 0;
    if (parse_config(pos[0], &c, &e)) goto fail;
    /* the results file is none of the inputs, checked before any work */
    const char *inputs[MAX_ITEMS + 2];
    for (int ti = 0; ti < c.n_traces; ti++) inputs[ti] = c.traces[ti];
    inputs[c.n_traces] = pos[0];
    inputs[c.n_traces + 1] = c.model;
    if (output_check_all(&c.out, 1, inputs, c.n_traces + 1 + !!c.model, &e)) goto fail;
    /* Open every trace before any work: a typo in the last trace must not surface after an
     * hour. */
    meta = rb_calloc((size_t)c.n_traces, sizeof *meta);
    for (int ti = 0; ti < c.n_traces; ti++) {
        trace *t;
        if (trace_open(c.traces[ti], &t, &e)) goto fail;
        rb_status s = engine_parse_device(device, trace_get_meta(t), &sr.ref_be, &e);
        uint8_t *sep = NULL;
        if (!s) s = sweep_separators(&c, t, &sep, &e); /* tokens and vocabulary: checked now */
        free(sep);
        meta[ti] = *trace_get_meta(t);
        trace_close(t);
        if (s) goto fail;
    }
    snprintf(sr.dir, sizeof sr.dir, "%s.cells", c.out);
    sr.identity = sweep_identity(&c);
    if (merge && access(sr.dir, F_OK) != 0) {
        rb_fail(&e, RB_EINPUT, sr.dir, "no cells to merge: run the sweep (or its shards) first");
        goto fail;
    }
    if (claim_cells_dir(sr.dir, sr.identity, &e)) goto fail;
    if (n_shards) sr.owner = owner = sweep_owners(&c, meta, n_shards);
    int total = c.n_traces * c.n_policies * c.n_budgets;
    sr.cell_paths = rb_calloc((size_t)total, sizeof(char *));
    for (int ti = 0; ti < c.n_traces; ti++) {
        trace *t = NULL;
        cell *todo = rb_calloc((size_t)(c.n_policies * c.n_budgets), sizeof *todo);
        int n_todo = 0;
        /* a trace none of whose cells is left to run here is not opened again */
        if (!trace_cells(&sr, ti, todo, &n_todo, &e) &&
            (!n_todo || !trace_open(c.traces[ti], &t, &e)))
            run_cells(&sr, ti, t, todo, n_todo, &e);
        cells_free(todo, n_todo);
        trace_close(t);
        if (e.status) goto fail;
    }
    int n_missing = 0;
    char missing[4600] = "";
    if (check_cells(&sr, &n_missing, missing, sizeof missing, &e)) goto fail;
    if (n_missing && merge) {
        rb_fail(&e, RB_EINPUT, sr.dir, "%d of %d cells missing (%s, ...): run their shards again "
                "(raasbench sweep %s --shard I/N runs only missing cells), then merge", n_missing,
                total, missing, pos[0]);
        goto fail;
    }
    if (n_missing) { /* a shard whose peers are not done: its cells are in, no final file */
        if (!quiet)
            printf("sweep: shard %d/%d: %d cells (%d run now, %d already done); %d cells of "
                   "other shards still missing, so no %s yet\n", shard, n_shards,
                   sr.n_ran + sr.n_skipped, sr.n_ran, sr.n_skipped, n_missing, c.out);
        goto done;
    }
    results_provenance prov = {.trace = c.traces[0], .trace_sha256 = "",
                               .config_json = sr.identity};
    char sha0[65];
    if (c.n_traces == 1 && !results_file_sha256(c.traces[0], sha0, &e)) prov.trace_sha256 = sha0;
    if (results_assemble(c.out, &prov, (const char *const *)sr.cell_paths, sr.n_cell_paths, &e))
        goto fail;
    if (!quiet && merge) {
        printf("merge: %d cells -> %s\n", total, c.out);
        printf("       `raasbench info %s` shows the summary\n", c.out);
    } else if (!quiet) {
        if (n_shards)
            printf("sweep: shard %d/%d: %d cells (%d run now, %d already done); all %d cells "
                   "done -> %s\n", shard, n_shards, sr.n_ran + sr.n_skipped, sr.n_ran,
                   sr.n_skipped, total, c.out);
        else
            printf("sweep: %d cells (%d run now, %d already done) -> %s\n", total, sr.n_ran,
                   sr.n_skipped, c.out);
        printf("       `raasbench info %s` shows the summary\n", c.out);
    }
    goto done;
fail:
    rc = rb_err_print(&e);
    if (sr.dir[0] && !n_shards && !merge) drop_empty_cells_dir(sr.dir); /* shards share it */
done:
    for (int i = 0; i < sr.n_cell_paths; i++) free(sr.cell_paths[i]);
    free(sr.cell_paths);
    free(sr.identity);
    free(meta), free(owner);
    cJSON_Delete(c.root);
    return rc;
}
