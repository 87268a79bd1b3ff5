/* cmd_replay.c: `raasbench replay TRACE --policies ... --budgets ... --out RESULTS.h5`. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "engine.h"
#include "output.h"

static char *config_json(const char *trace, const char *policies, const char *budgets,
                         const arg_multi *params, int page, int dense_layers, int elem_bytes,
                         int steps, int latency_every, uint64_t seed, const char *reference,
                         const char *device, const char *model, const char *full_sets) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", "replay");
    cJSON_AddStringToObject(o, "trace", trace);
    cJSON_AddStringToObject(o, "policies", policies);
    cJSON_AddStringToObject(o, "budgets", budgets);
    cJSON *p = cJSON_AddArrayToObject(o, "params");
    for (int i = 0; i < params->n; i++) cJSON_AddItemToArray(p, cJSON_CreateString(params->v[i]));
    cJSON_AddNumberToObject(o, "page_size", page);
    cJSON_AddNumberToObject(o, "dense_layers", dense_layers);
    cJSON_AddNumberToObject(o, "elem_bytes", elem_bytes);
    cJSON_AddNumberToObject(o, "steps", steps);
    cJSON_AddNumberToObject(o, "latency_every", latency_every);
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    /* recorded when not the default, so default runs keep the config they always had */
    if (strcmp(reference, "block")) cJSON_AddStringToObject(o, "reference", reference);
    if (strcmp(device, "cpu")) cJSON_AddStringToObject(o, "device", device);
    if (model) cJSON_AddStringToObject(o, "model", model);
    if (strcmp(full_sets, "reference")) cJSON_AddStringToObject(o, "full_sets", full_sets);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int cmd_replay(int argc, char **argv) {
    const char *policies = NULL, *budgets = NULL, *out = NULL;
    const char *reference = "block", *device = "cpu", *model = NULL, *full_sets = "reference";
    arg_multi params = {0};
    int page = 16, dense_layers = 2, per_head = 0, dump = 0, threads = 0, elem_bytes = 2;
    int steps = 0, quiet = 0, latency_every = 1, chunk = 0;
    int64_t seed = 1;
    const arg_spec specs[] = {
        {"policies", ARG_STR, &policies, "a,b,...", "policies to run (see raasbench policies)"},
        {"budgets", ARG_STR, &budgets, "L1,L2,...", "cache budgets L in tokens per KV head"},
        {"param", ARG_MULTI, &params, "policy.key=value", "a policy parameter (repeatable)"},
        {"page-size", ARG_INT_IN(&page, 1, 4096), "P", "page size in tokens (default 16)"},
        {"dense-layers", ARG_INT_IN(&dense_layers, 0, TRACE_MAX_LAYERS), "N", "layers attended densely (default 2)"},
        {"per-head", ARG_FLAG, &per_head, NULL, "also store recall and out_err per query head"},
        {"dump-selection", ARG_FLAG, &dump, NULL, "store each head's attended set (large)"},
        {"threads", ARG_INT_IN(&threads, 0, 1024), "N", "worker threads over layers (default: all cores)"},
        {"elem-bytes", ARG_INT_IN(&elem_bytes, 1, 8), "B", "bytes per K/V element for kv_bytes (default 2)"},
        {"steps", ARG_INT_IN(&steps, 0, INT_MAX), "T", "replay only the first T decode steps (default all)"},
        {"latency-every", ARG_INT_IN(&latency_every, 1, INT_MAX), "K", "attend for real and time every K-th step; "
         "steps between get exact metrics from the shared reference (default 1: every step)"},
        {"seed", ARG_I64_IN(&seed, 0, INT64_MAX), "S", "seed for random policies, >= 0 (default 1)"},
        {"reference", ARG_STR, &reference, "block|steps", "the dense reference: a chunk of steps "
         "as one causal block (default) or step by step (the slower path, for comparison)"},
        {"device", ARG_STR, &device, "cpu|cuda", "where the dense reference runs (default cpu); "
         "the cells run on the CPU either way"},
        {"chunk", ARG_INT_IN(&chunk, 0, 4096), "W", "decode steps per chunk (default: chosen by the engine)"},
        {"model", ARG_STR, &model, "M.gguf", "the model that recorded the trace: its vocabulary "
         "tells sepllm which tokens are separators"},
        {"full-sets", ARG_STR, &full_sets, "reference|attend", "a step whose set is every "
         "position (dense, dense and window layers): the reference's output, attended for real "
         "and timed on one timed step in 16 (default), or attended on every timed step"},
        {"out", ARG_STR, &out, "RESULTS.h5", "results file to write"},
        {"quiet", ARG_FLAG, &quiet, NULL, "no summary table"},
        {NULL, ARG_FLAG, NULL, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("replay", "TRACE --policies a,b --budgets L1,L2 --out RESULTS.h5 [options]",
                   specs, argc, argv, pos, 1, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (n_pos != 1) rb_fail(&e, RB_EINPUT, "replay", "expected one TRACE (see --help)");
    else if (!policies) rb_fail(&e, RB_EINPUT, "replay", "--policies is required");
    else if (!budgets) rb_fail(&e, RB_EINPUT, "replay", "--budgets is required");
    else if (!out) rb_fail(&e, RB_EINPUT, "replay", "--out is required");
    else { /* before the work, not after it */
        const char *ins[] = {pos[0], model};
        output_check_all(&out, 1, ins, model ? 2 : 1, &e);
    }
    engine_reference ref_kind = ENGINE_REF_BLOCK;
    engine_full_sets full_kind = ENGINE_FULL_REFERENCE;
    if (!e.status) engine_parse_reference(reference, &ref_kind, &e);
    if (!e.status) engine_parse_full_sets(full_sets, &full_kind, &e);
    if (e.status) return rb_err_print(&e);
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);

    char *names_buf = NULL;
    const char *names[64];
    int n_names = 0, bud[64], n_bud = 0;
    cell *cells = NULL;
    int n_cells = 0, rc = 0;
    trace *t = NULL;
    results_run *runs = NULL;
    results_writer *w = NULL;
    char *cfg = NULL;
    uint8_t *sep = NULL;
    if (args_name_list("--policies", policies, &names_buf, names, 64, &n_names, &e) ||
        args_int_list("--budgets", budgets, bud, 64, &n_bud, &e) ||
        args_check_budgets(bud, n_bud, &e) ||
        cells_make(names, n_names, bud, n_bud, params.v, params.n, NULL, &cells, &n_cells, &e) ||
        trace_open(pos[0], &t, &e) ||
        cells_check_layers(trace_get_meta(t), dense_layers, &e))
        goto fail;
    if (cells_need_separators(cells, n_cells) && cells_trace_separators(t, model, &sep, &e))
        goto fail;
    const attn_backend *ref_be;
    if (engine_parse_device(device, trace_get_meta(t), &ref_be, &e)) goto fail;
    engine_config ec = {.trace = t, .cells = cells, .n_cells = n_cells, .page_size = page,
                        .dense_layers = dense_layers, .elem_bytes = elem_bytes,
                        .per_head = per_head, .dump_selection = dump, .threads = threads,
                        .seed = (uint64_t)seed, .progress = !quiet, .n_steps = steps,
                        .latency_every = latency_every, .ref_backend = ref_be,
                        .reference = ref_kind, .chunk = chunk, .separator = sep,
                        .full_sets = full_kind};
    if (engine_check_cells(&ec, &e)) goto fail;
    char sha[65];
    if (results_file_sha256(pos[0], sha, &e)) goto fail;
    cfg = config_json(pos[0], policies, budgets, &params, page, dense_layers, elem_bytes, steps,
                      latency_every, (uint64_t)seed, reference, device, model, full_sets);
    results_provenance prov = {.trace = pos[0], .trace_sha256 = sha, .config_json = cfg};
    /* Create the output first so a bad path fails before the work, not after. */
    if (results_create(out, &prov, &w, &e)) goto fail;
    runs = rb_calloc((size_t)n_cells, sizeof *runs);
    engine_stats st;
    if (engine_replay(&ec, runs, &st, &e)) {
        free(runs);
        runs = NULL;
        goto fail;
    }
    for (int i = 0; i < n_cells; i++)
        if (results_add_run(w, &runs[i], &e)) goto fail;
    rb_status s = results_finish(w, &e);
    w = NULL;
    if (s) goto fail;
    if (!quiet) {
        cells_print_summary(stdout, runs, n_cells);
        printf("wrote %s (%d runs, %.2f s)\n", out, n_cells, st.wall_ns / 1e9);
    }
    goto done;
fail:
    rc = rb_err_print(&e);
done:
    results_abort(w);
    if (runs)
        for (int i = 0; i < n_cells; i++) results_run_free(&runs[i]);
    free(runs);
    cells_free(cells, n_cells);
    trace_close(t);
    free(names_buf);
    free(cfg);
    free(sep);
    return rc;
}
