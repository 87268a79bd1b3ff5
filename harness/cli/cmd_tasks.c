/* cmd_tasks.c: `raasbench tasks --kind chain --out FILE.jsonl [knobs]`: write a seeded set
 * of reasoning-chain tasks (harness/eval/chains.h) in the task file format `eval` reads
 * (harness/io/tasks.h). The file is written under a temporary name and renamed. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "chains.h"
#include "commands.h"
#include "output.h"

static const char usage[] =
    "--kind chain --out FILE.jsonl [--n 100] [--steps 2] [--inits 3]\n"
    "                      [--lookback 1] [--lookback-min 1] [--max-value 99] [--max-add 0]\n"
    "                      [--p-add 0] [--shots 5] [--seed 1]\n"
    "Write reasoning-chain tasks with exact answers, one JSON object per line (id, prompt,\n"
    "answer and the knobs), for `raasbench eval --tasks`.";

static rb_status write_tasks(FILE *o, const chain_config *c, rb_err *e) {
    for (int i = 0; i < c->n; i++) {
        char *prompt, id[64];
        int64_t answer;
        chain_task(c, i, &prompt, &answer);
        snprintf(id, sizeof id, "chain-s%llu-%d", (unsigned long long)c->seed, i);
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "id", id);
        cJSON_AddStringToObject(t, "prompt", prompt);
        cJSON_AddNumberToObject(t, "answer", (double)answer);
        cJSON_AddNumberToObject(t, "steps", c->steps);
        cJSON_AddNumberToObject(t, "lookback", c->lookback);
        char *line = cJSON_PrintUnformatted(t);
        int ok = line && fprintf(o, "%s\n", line) >= 0;
        cJSON_free(line);
        cJSON_Delete(t);
        free(prompt);
        if (!ok) return rb_fail(e, RB_EINTERNAL, "tasks", "write failed");
    }
    return RB_OK;
}

int cmd_tasks(int argc, char **argv) {
    chain_config c = chain_config_default();
    const char *kind = NULL, *out = NULL;
    int64_t seed = (int64_t)c.seed;
    const arg_spec specs[] = {
        {"kind", ARG_STR, &kind, "chain", "task family (required): chain"},
        {"out", ARG_STR, &out, "FILE", "JSONL file to write (required)"},
        {"n", ARG_INT_IN(&c.n, 1, 1000000), "N", "tasks (default 100)"},
        {"steps", ARG_INT_IN(&c.steps, 1, 4095), "N", "derived variables per chain (default 2)"},
        {"inits", ARG_INT_IN(&c.inits, 1, 4095), "N", "literal variables per chain (default 3)"},
        {"lookback", ARG_INT_IN(&c.lookback, 1, 4095), "N", "a line refers up to N lines above (default 1)"},
        {"lookback-min", ARG_INT_IN(&c.lookback_min, 1, 4095), "N", "... and at least N lines above (default 1)"},
        {"max-value", ARG_INT_IN(&c.max_value, 1, 1000000000), "N", "literals are 1..N (default 99)"},
        {"max-add", ARG_INT_IN(&c.max_add, 0, 1000000), "N", "a derived line may add 1..N (default 0: copies)"},
        {"p-add", ARG_FLOAT, &c.p_add, "P", "chance a derived line adds (default 0)"},
        {"shots", ARG_INT_IN(&c.shots, 0, 16), "N", "solved examples before each problem (default 5)"},
        {"seed", ARG_I64_IN(&seed, 0, INT64_MAX), "S", "seed, >= 0 (default 1); same seed, same file"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    int help = 0, n_pos = 0;
    if (args_parse("tasks", usage, specs, argc, argv, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (!kind || !out) {
        rb_fail(&e, RB_EINPUT, "tasks", "--kind and --out are required");
        return rb_err_print(&e);
    }
    if (strcmp(kind, "chain")) {
        rb_fail(&e, RB_EINPUT, "--kind", "unknown task family '%s' (known: chain)", kind);
        return rb_err_print(&e);
    }
    char why[160];
    c.seed = (uint64_t)seed;
    if (!chain_config_check(&c, why, sizeof why)) {
        rb_fail(&e, RB_EINPUT, "tasks", "%s", why);
        return rb_err_print(&e);
    }
    output_text o;
    rb_status st = output_text_open(&o, out, &e);
    if (!st) st = output_text_close(&o, write_tasks(o.f, &c, &e), &e);
    return st ? rb_err_print(&e) : 0;
}
