/* cmd_bench_eval.c: `raasbench bench eval`: how an evaluation's workers scale. The figure
 * beside it is the machine's own: the single-stream decode speed of the same model, prompt
 * length and policy (bench decode's measurement, one thread), measured in the same run and
 * multiplied by the workers. Reported both all-in (the prompt's prefill in the wall time)
 * and for the decodes alone (the prefill is shared by a task's cells and is not what
 * `decode` times either). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "chains.h"
#include "commands.h"
#include "eval.h"
#include "model.h"
#include "tokenizer.h"

static const char usage[] =
    "[--model M.gguf] [--tasks FILE.jsonl] [--limit K] [--threads T]\n"
    "                            [--max-tokens N] [--policies a,b] [--budgets L1,L2]\n"
    "Generated tokens per second of `raasbench eval` with T workers over tasks, beside T x the\n"
    "single-stream decode speed of the same model measured in the same run. Without --tasks:\n"
    "K generated chains (raasbench tasks --kind chain's defaults, seed 1).";

typedef struct tally {
    int n_cells;
    int64_t tokens;   /* generated, every cell */
    double decode_s;  /* the cells' decode wall time, summed over workers */
} tally;

static rb_status count_task(void *ctx, int ti, const eval_result *res, rb_err *e) {
    (void)ti, (void)e;
    tally *t = ctx;
    for (int c = 0; c < t->n_cells; c++) t->tokens += res[c].n_generated, t->decode_s += res[c].wall_s;
    return RB_OK;
}

/* K default chains as an in-memory task set. */
static void chain_tasks(int k, task_set *s) {
    chain_config c = chain_config_default();
    s->n = k;
    s->t = rb_calloc((size_t)k, sizeof *s->t);
    s->path = rb_strdup("(generated chains)");
    for (int i = 0; i < k; i++) {
        int64_t answer;
        char id[48], num[32];
        chain_task(&c, i, &s->t[i].prompt, &answer);
        snprintf(id, sizeof id, "chain-s1-%d", i);
        snprintf(num, sizeof num, "%lld", (long long)answer);
        s->t[i].id = rb_strdup(id);
        RB_CHECK(answer_parse(num, &s->t[i].gold));
        s->t[i].line = i + 1;
    }
}

static void cpu_model(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            char *v = strchr(line, ':') + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = 0;
            snprintf(buf, cap, "%s", v);
            break;
        }
    fclose(f);
}

int cmd_bench_eval(int argc, char **argv) {
    const char *path = "models/gemma-3-270m-q4_k_m.gguf", *tasks_path = NULL;
    const char *policies = "dense", *budgets = NULL;
    int limit = 0, threads = 0, max_tokens = 64, help = 0, n_pos = 0;
    arg_spec specs[] = {
        {"model", ARG_STR, &path, "M.gguf", "model (default models/gemma-3-270m-q4_k_m.gguf)"},
        {"tasks", ARG_STR, &tasks_path, "FILE.jsonl", "task file (default: generated chains)"},
        {"limit", ARG_INT_IN(&limit, 0, 100000), "K", "tasks (default 4 per worker)"},
        {"threads", ARG_INT_IN(&threads, 0, 256), "T", "workers over tasks (default: all cores)"},
        {"max-tokens", ARG_INT_IN(&max_tokens, 1, 1 << 16), "N", "generated tokens per task at most (64)"},
        {"policies", ARG_STR, &policies, "a,b", "cells' policies (default dense)"},
        {"budgets", ARG_STR, &budgets, "L1,L2", "budgets (policies other than dense need them)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    if (args_parse("bench eval", usage, specs, argc, argv, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (threads == 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (!limit) limit = 4 * threads;

    task_set tasks = {0};
    cell *cells = NULL;
    int n_cells = 0, n_names = 0, n_bud = 1, bud[64] = {0}, rc = 0;
    const char *names[64];
    char *names_buf = NULL;
    model *m = NULL;
    tokenizer *tok = NULL;
    int32_t *ids = NULL;
    int n_prompt = 0;
    if (tasks_path ? tasks_read(tasks_path, limit, &tasks, &e) : (chain_tasks(limit, &tasks), 0))
        goto fail;
    if (args_name_list("--policies", policies, &names_buf, names, 64, &n_names, &e) ||
        (budgets && args_int_list("--budgets", budgets, bud, 64, &n_bud, &e)) ||
        cells_make(names, n_names, bud, n_bud, NULL, 0, NULL, &cells, &n_cells, &e))
        goto fail;
    /* the single-stream figure: the first task's prompt, the first cell, one thread */
    char *prompt = tasks_prompt(&tasks.t[0], NULL);
    rb_status st = model_load(path, 1, &m, &e);
    if (!st) st = tokenizer_load(model_gguf(m), &tok, &e);
    if (!st) st = tokenizer_encode(tok, prompt, tokenizer_add_bos(tok), &ids, &n_prompt, &e);
    free(prompt);
    char name[128], cpu[256];
    if (!st) snprintf(name, sizeof name, "%s", model_get_hparams(m)->name);
    tokenizer_destroy(tok), model_destroy(m);
    if (st) goto fail;
    cpu_model(cpu, sizeof cpu);
    printf("# bench eval: %s, %d tasks x %d cells, %d workers, at most %d tokens; %s, %ld cores\n",
           name, tasks.n, n_cells, threads, max_tokens, cpu, sysconf(_SC_NPROCESSORS_ONLN));
    bench_result one;
    if (bench_decode_run(path, 1, ids, n_prompt, max_tokens, &cells[0], &one, &e)) goto fail;
    printf("decode single stream (1 thread, prompt %d tokens, %d steps): %.2f tokens/s\n",
           n_prompt, max_tokens, one.tokens_per_s);
    fflush(stdout);

    tally acc = {.n_cells = n_cells};
    eval_config ec = {.model_path = path, .tasks = &tasks, .cells = cells, .n_cells = n_cells,
                      .max_tokens = max_tokens, .page_size = 16, .dense_layers = 2,
                      .threads = threads, .seed = 1, .on_task = count_task, .ctx = &acc};
    int64_t t0 = rb_now_ns();
    if (eval_run(&ec, &e)) goto fail;
    double wall = (rb_now_ns() - t0) * 1e-9, peer = one.tokens_per_s * threads;
    double all_in = acc.tokens / wall, decode_only = acc.tokens / acc.decode_s * threads;
    printf("eval all-in: %lld tokens in %.2f s = %.2f tokens/s = %.2f x (%d x single stream)\n",
           (long long)acc.tokens, wall, all_in, all_in / peer, threads);
    printf("eval decodes alone: %.2f tokens/s = %.2f x (%d x single stream); the prompts' "
           "prefill took %.0f%% of the workers' time\n", decode_only, decode_only / peer, threads,
           100.0 * (1 - acc.decode_s / (wall * threads)));
    goto done;
fail:
    rc = rb_err_print(&e);
done:
    free(ids), free(names_buf);
    cells_free(cells, n_cells);
    tasks_free(&tasks);
    return rc;
}
