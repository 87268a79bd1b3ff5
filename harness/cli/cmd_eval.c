/* cmd_eval.c: `raasbench eval`: graded task accuracy of free-running decodes under every
 * (policy, budget) cell (harness/eval/eval.h). Resumable: each finished task is stored in
 * `<out>.parts/` at once; a rerun of the same evaluation runs only the missing tasks, then
 * assembles the results file. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "eval_results.h"
#include "model.h"
#include "output.h"
#include "results.h"
#include "shard.h"

static const char usage[] =
    "--model M.gguf --tasks FILE.jsonl --policies a,b [--budgets L1,L2] --out R.h5\n"
    "                      [--max-tokens 256] [--limit K] [--threads T] [--param k=v ...]\n"
    "                      [--template F] [--stop TEXT ...] [--page-size 16] [--dense-layers 2]\n"
    "                      [--quiet] [--shard I/N | --merge] [--device cpu|cuda]\n"
    "Free-running greedy decodes of every task under every (policy, budget) cell, the policy\n"
    "managing the model's KV cache; the answer is extracted and graded exactly. A task's\n"
    "prompt runs once and is shared by its cells. Finished tasks are kept in R.h5.parts/: a\n"
    "rerun runs only what is missing. --shard I/N runs 1/N of the tasks (split by prompt\n"
    "length) into the same parts, for job arrays; --merge (or `raasbench merge --eval` with\n"
    "these arguments) writes R.h5 from the parts of all shards. Task files: one JSON\n"
    "object per line with id, prompt (or question, put into --template at {question}) and\n"
    "answer.";

typedef struct eval_store {
    const char *dir;
    const task_set *tasks;
    const cell *cells;
    int n_cells;
    eval_result **results; /* [n_cells][n_tasks] */
} eval_store;

/* A finished task: into its part file, and into memory for the final file. */
static rb_status store_task(void *ctx, int ti, const eval_result *res, rb_err *e) {
    eval_store *s = ctx;
    rb_status st = eval_parts_put(s->dir, ti, &s->tasks->t[ti], s->cells, s->n_cells, res, e);
    if (st) return st;
    for (int c = 0; c < s->n_cells; c++) {
        s->results[c][ti] = res[c];
        s->results[c][ti].generated = rb_strdup(res[c].generated ? res[c].generated : "");
    }
    return RB_OK;
}

/* What the evaluation is, for the parts directory: everything that changes a result. */
static char *identity_json(const char *model, const task_set *tasks, int limit,
                           const char *template_text, const arg_multi *stops, const cell *cells,
                           int n_cells, int max_tokens, int page_size, int dense_layers,
                           model_device device, rb_err *e) {
    char sha[65];
    if (results_file_sha256(tasks->path, sha, e)) return NULL;
    struct stat st;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", "eval");
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddNumberToObject(o, "model_bytes", stat(model, &st) == 0 ? (double)st.st_size : -1);
    cJSON_AddStringToObject(o, "tasks", tasks->path);
    cJSON_AddStringToObject(o, "tasks_sha256", sha);
    cJSON_AddNumberToObject(o, "limit", limit);
    cJSON_AddStringToObject(o, "template", template_text ? template_text : "");
    cJSON *sa = cJSON_AddArrayToObject(o, "stop");
    for (int i = 0; i < stops->n; i++) cJSON_AddItemToArray(sa, cJSON_CreateString(stops->v[i]));
    cJSON_AddNumberToObject(o, "max_tokens", max_tokens);
    cJSON_AddNumberToObject(o, "page_size", page_size);
    cJSON_AddNumberToObject(o, "dense_layers", dense_layers);
    /* the GPU's float32 activations may change a greedy choice: its parts are its own (a CPU
     * evaluation's identity is unchanged, so its existing parts stay valid) */
    if (device != MODEL_DEVICE_CPU) cJSON_AddStringToObject(o, "device", model_device_name(device));
    cJSON *a = cJSON_AddArrayToObject(o, "cells");
    for (int i = 0; i < n_cells; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "run_id", cells[i].run_id);
        cJSON_AddStringToObject(c, "params", cells[i].params_json ? cells[i].params_json : "{}");
        cJSON_AddItemToArray(a, c);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    char *r = rb_strdup(s);
    cJSON_free(s);
    return r;
}

/* The shard of every task, balanced by estimated cost. A task's prompt is prefilled once
 * (in blocks; still much of an eval's time: `raasbench bench eval`), ~1 token per 4 bytes; then
 * each cell generates up to max_tokens, on average about half as many before the answer
 * is complete. A function of the task file, template and cells alone: every array task
 * agrees on the split whatever is done. */
static int *task_owners(const task_set *tasks, const char *template_text, int n_cells,
                        int max_tokens, int n_shards) {
    double *cost = rb_malloc(sizeof *cost * (size_t)tasks->n);
    for (int t = 0; t < tasks->n; t++) {
        char *prompt = tasks_prompt(&tasks->t[t], template_text);
        cost[t] = (double)strlen(prompt) / 4 + (double)n_cells * max_tokens / 2;
        free(prompt);
    }
    int *owner = rb_malloc(sizeof *owner * (size_t)tasks->n);
    shard_assign(cost, NULL, NULL, 0, tasks->n, n_shards, owner);
    free(cost);
    return owner;
}

/* A template file: its text less the file's final line break (an editor's, not the
 * prompt's: "Answer:\n" would make the model start a line of its own where the examples
 * answer on the same line). */
static rb_status read_template(const char *path, char **out, rb_err *e) {
    size_t n = 0;
    rb_status st = rb_read_file(path, (size_t)1 << 20, out, &n, e);
    if (!st && n && (*out)[n - 1] == '\n') (*out)[--n] = 0;
    if (!st && n && (*out)[n - 1] == '\r') (*out)[--n] = 0;
    if (!st && !strstr(*out, "{question}")) {
        free(*out), *out = NULL;
        return rb_fail(e, RB_EINPUT, path, "a template must contain {question}");
    }
    return st;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *tasks_path = NULL, *policies = NULL, *budgets = NULL;
    const char *out = NULL, *template_path = NULL, *shard_spec = NULL, *device_name = "cpu";
    model_device device = MODEL_DEVICE_CPU;
    int max_tokens = 256, limit = 0, threads = 0, page_size = 16, dense_layers = 2, quiet = 0;
    int merge = 0, shard = 0, n_shards = 0;
    arg_multi params = {0}, stops = {0};
    const arg_spec specs[] = {
        {"model", ARG_STR, &model, "M.gguf", "GGUF model (gemma3, qwen2, llama)"},
        {"tasks", ARG_STR, &tasks_path, "FILE.jsonl", "task file (raasbench tasks, GSM8K lines)"},
        {"policies", ARG_STR, &policies, "a,b",
         "policies (raasbench policies --names); a labelled variant: LABEL=POLICY:KEY=VALUE..."},
        {"budgets", ARG_STR, &budgets, "L1,L2", "budgets L in tokens per KV head (dense needs none)"},
        {"out", ARG_STR, &out, "R.h5", "eval results file"},
        {"max-tokens", ARG_INT_IN(&max_tokens, 1, 1 << 20), "N", "generated tokens per task at most (256)"},
        {"limit", ARG_INT_IN(&limit, 0, INT_MAX), "K", "only the first K tasks (0: all)"},
        {"threads", ARG_INT_IN(&threads, 0, 256), "T", "workers over tasks (default: all cores)"},
        {"param", ARG_MULTI, &params, "k=v", "policy parameter (policy.key=value), repeatable"},
        {"template", ARG_STR, &template_path, "F",
         "prompt template for question tasks, {question} replaced (its final newline dropped)"},
        {"stop", ARG_MULTI, &stops, "TEXT",
         "stop sequence, repeatable: the decode ends there, the text is cut before it"},
        {"page-size", ARG_INT_IN(&page_size, 1, 4096), "P", "page size (16)"},
        {"dense-layers", ARG_INT_IN(&dense_layers, 0, 256), "N", "leading layers kept dense (2)"},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress bar and no summary"},
        {"shard", ARG_STR, &shard_spec, "I/N", "run only shard I of N of the tasks (parts only)"},
        {"merge", ARG_FLAG, &merge, NULL, "run nothing: write R.h5 from every shard's parts"},
        {"device", ARG_STR, &device_name, "cpu|cuda",
         "where the decodes run (default cpu; cuda: dense, quest, raas; --threads defaults to 1)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    int help = 0, n_pos = 0;
    if (args_parse("eval", usage, specs, argc, argv, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (!model || !tasks_path || !policies || !out) {
        rb_fail(&e, RB_EINPUT, "eval", "--model, --tasks, --policies and --out are required");
        return rb_err_print(&e);
    }
    if (stops.n > 16) rb_fail(&e, RB_EINPUT, "--stop", "at most 16 stop sequences");
    for (int i = 0; i < stops.n && !e.status; i++)
        if (!*stops.v[i] || strlen(stops.v[i]) > 64)
            rb_fail(&e, RB_EINPUT, "--stop", "a stop sequence must be 1..64 bytes");
    if (!e.status && shard_spec && !args_shard("--shard", shard_spec, &shard, &n_shards, &e) && merge)
        rb_fail(&e, RB_EINPUT, "--shard", "a merge takes no shard");
    if (!e.status) model_device_parse(device_name, &device, &e);
    if (e.status) return rb_err_print(&e);
    if (threads == 0) threads = device == MODEL_DEVICE_CPU ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 1;
    const char *ins[] = {model, tasks_path, template_path}; /* no output may be an input */
    if (output_check_all(&out, 1, ins, 3, &e)) return rb_err_print(&e);
    output_clean_stale_of(out); /* what a killed run of this evaluation was writing */

    task_set tasks = {0};
    cell *cells = NULL;
    int n_cells = 0, rc = 0, n_names = 0, n_bud = 0, bud[64];
    char *template_text = NULL, *identity = NULL, *names_buf = NULL, dir[4200];
    const char *names[64];
    eval_store store = {0};
    int *owner = NULL, n_missing = 0, first_missing = -1;
    if ((template_path && read_template(template_path, &template_text, &e)) ||
        tasks_read(tasks_path, limit, &tasks, &e) ||
        args_name_list("--policies", policies, &names_buf, names, 64, &n_names, &e) ||
        (budgets && args_int_list("--budgets", budgets, bud, 64, &n_bud, &e)))
        goto fail;
    if (budgets && args_check_budgets(bud, n_bud, &e)) goto fail;
    if (!budgets) bud[0] = 0, n_bud = 1; /* budget-free policies only (dense): no L */
    if (cells_make(names, n_names, bud, n_bud, params.v, params.n, NULL, &cells, &n_cells, &e)) {
        if (!budgets && !strcmp(e.what, "--budgets"))
            rb_fail(&e, RB_EINPUT, "--budgets", "required: a policy in --policies needs a budget");
        goto fail;
    }
    if (!(identity = identity_json(model, &tasks, limit, template_text, &stops, cells, n_cells,
                                   max_tokens, page_size, dense_layers, device, &e)))
        goto fail;
    { /* the model must load before anything is written for this evaluation */
        struct model *m = NULL;
        if (model_load(model, 1, &m, &e) || model_use_device(m, device, &e)) {
            model_destroy(m);
            goto fail;
        }
        model_destroy(m);
    }
    snprintf(dir, sizeof dir, "%s.parts", out);
    if (merge && access(dir, F_OK) != 0) {
        rb_fail(&e, RB_EINPUT, dir, "no parts to merge: run the eval (or its shards) first");
        goto fail;
    }
    if (eval_parts_claim(dir, identity, &e)) goto fail;
    if (n_shards) owner = task_owners(&tasks, template_text, n_cells, max_tokens, n_shards);
    store = (eval_store){.dir = dir, .tasks = &tasks, .cells = cells, .n_cells = n_cells};
    store.results = rb_calloc((size_t)n_cells, sizeof *store.results);
    for (int c = 0; c < n_cells; c++)
        store.results[c] = rb_calloc((size_t)tasks.n, sizeof **store.results);
    uint8_t *todo = rb_calloc((size_t)tasks.n, 1);
    eval_result *res = rb_calloc((size_t)n_cells, sizeof *res);
    int n_done = 0;
    /* This shard's tasks (every task unless sharded; none for a merge): the finished ones
     * loaded, the others to run. The rest are read after the run: they may land meanwhile. */
    for (int t = 0; t < tasks.n && !e.status; t++) {
        if (merge || (owner && owner[t] != shard - 1)) continue;
        int got = eval_parts_get(dir, t, &tasks.t[t], cells, n_cells, res, &e);
        if (got == 1) {
            for (int c = 0; c < n_cells; c++) store.results[c][t] = res[c];
            n_done++;
        }
        todo[t] = got == 0;
    }
    if (!e.status && !merge) {
        eval_config ec = {.model_path = model, .tasks = &tasks, .template_text = template_text,
                          .cells = cells, .n_cells = n_cells, .max_tokens = max_tokens,
                          .stop = (const char *const *)stops.v, .n_stop = stops.n,
                          .page_size = page_size, .dense_layers = dense_layers,
                          .threads = threads, .device = device, .todo = todo, .progress = !quiet,
                          .on_task = store_task, .ctx = &store};
        eval_run(&ec, &e);
    }
    for (int t = 0; t < tasks.n && !e.status; t++) {
        if (!merge && !(owner && owner[t] != shard - 1)) continue; /* run or loaded above */
        int got = eval_parts_get(dir, t, &tasks.t[t], cells, n_cells, res, &e);
        if (got == 1)
            for (int c = 0; c < n_cells; c++) store.results[c][t] = res[c];
        else if (got == 0 && !n_missing++)
            first_missing = t;
    }
    free(res);
    if (!e.status && n_missing && merge)
        rb_fail(&e, RB_EINPUT, dir, "%d of %d tasks missing (task %s, ...): run their shards again "
                "(raasbench eval ... --shard I/N runs only missing tasks), then merge", n_missing,
                tasks.n, tasks.t[first_missing].id);
    if (!e.status && !n_missing)
        eval_results_write(out, model, &tasks, identity, cells, n_cells, store.results, &e);
    free(todo);
    if (e.status) goto fail;
    if (!quiet && n_missing) {
        printf("eval: shard %d/%d: its tasks done (%d already were); %d tasks of other shards "
               "still missing, so no %s yet\n", shard, n_shards, n_done, n_missing, out);
    } else if (!quiet) {
        if (merge) printf("merge: %d tasks x %d cells -> %s\n", tasks.n, n_cells, out);
        else if (n_shards) printf("eval: shard %d/%d: ", shard, n_shards);
        else printf("eval: ");
        if (!merge)
            printf("%d tasks x %d cells (%d tasks already done) -> %s\n", tasks.n, n_cells,
                   n_done, out);
        eval_results_print_info(out);
    }
    goto done;
fail:
    rc = rb_err_print(&e);
done:
    if (store.results) {
        for (int c = 0; c < n_cells; c++) {
            for (int t = 0; t < tasks.n; t++) eval_result_free(&store.results[c][t]);
            free(store.results[c]);
        }
        free(store.results);
    }
    cells_free(cells, n_cells);
    tasks_free(&tasks);
    free(template_text), free(identity), free(names_buf), free(owner);
    return rc;
}
