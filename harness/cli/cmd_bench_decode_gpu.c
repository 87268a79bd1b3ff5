/* cmd_bench_decode_gpu.c: `raasbench bench decode --device cuda`: the paper's RQ2 on the GPU.
 * For each policy, one greedy decode on the device from a short prompt to the longest
 * decode length, every token a CUDA graph replay with no host round trip (the tokens are
 * read back in segments); per-token device time (CUDA events) and the KV bytes the device
 * pages hold, sampled every --sample tokens. Prints, at each of --lengths, tokens/s and the
 * per-token latency percentiles over the --window tokens ending there, the KV memory held,
 * and the physical floor of a token (the weight bytes a token reads plus the KV bytes its
 * attention reads, over the device copy bandwidth measured in the same run); --out writes
 * the samples in the results format (token_latency_ns, kv_bytes) for plots/gpu_decode.gp. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cuda/attn_cuda.h"
#include "cells.h"
#include "commands.h"
#include "model.h"
#include "output.h"
#include "results.h"
#include "tokenizer.h"

#define MAX_LENGTHS 16
#define MAX_POLICIES 16

typedef struct gpu_bench_opts {
    const char *model, *prompt, *policies, *lengths_s, *out;
    int budget, page_size, dense_layers, window, sample;
    arg_multi params;
    int lengths[MAX_LENGTHS], n_lengths;
} gpu_bench_opts;

/* Device copy bandwidth (bytes read + written per second), median of 5 copies of 1 GiB, on
 * a context of its own: the memory-bound ceiling every figure is set beside. 0 on failure. */
static double copy_bandwidth(rb_err *e) {
    attn_cuda *c = NULL;
    void *a = NULL, *b = NULL;
    const size_t bytes = (size_t)1 << 30;
    double best[5] = {0}, bw = 0;
    if (attn_cuda_create(&c, e) || attn_cuda_alloc(c, bytes, &a, e) || attn_cuda_alloc(c, bytes, &b, e))
        goto done;
    if (attn_cuda_fill_random(c, a, bytes / 4, ATTN_CUDA_F32, 1, e) || attn_cuda_copy(c, b, a, bytes, e))
        goto done; /* warm */
    for (int i = 0; i < 5; i++) {
        float ms = 0;
        if (attn_cuda_mark(c, 0, e) || attn_cuda_copy(c, b, a, bytes, e) || attn_cuda_mark(c, 1, e) ||
            attn_cuda_elapsed_ms(c, 0, 1, &ms, e))
            goto done;
        best[i] = 2.0 * (double)bytes / (ms * 1e-3);
    }
    for (int i = 1; i < 5; i++) /* median of five */
        for (int j = i; j > 0 && best[j - 1] > best[j]; j--) {
            double t = best[j]; best[j] = best[j - 1]; best[j - 1] = t;
        }
    bw = best[2];
done:
    attn_cuda_free(c, a);
    attn_cuda_free(c, b);
    attn_cuda_destroy(c);
    return bw;
}

/* One policy's decode: prompt, then generation to the longest length in segments of
 * o->sample tokens; the results run gets one row per segment end. step_ns receives every
 * step's device time, kv_at[i] the KV bytes at lengths[i]. */
static rb_status bench_cell(const gpu_bench_opts *o, model *m, const cell *c, const int32_t *ids,
                            int n_prompt, int max_len, int64_t *step_ns, int64_t *kv_at,
                            double *attended_at, results_run *run, rb_err *e) {
    const model_hparams *hp = model_get_hparams(m);
    model_cache_config cc = {.cell = c, .page_size = o->page_size, .dense_layers = o->dense_layers,
                             .max_tokens = max_len, .seed = 1, .device = MODEL_DEVICE_CUDA};
    model_session *s = NULL;
    rb_status st = model_session_create(m, &cc, &s, e);
    if (st) return st;
    float *logits = rb_malloc(sizeof(float) * (size_t)hp->n_vocab);
    model_session_prefill(s, ids, n_prompt, 0, logits);
    if ((st = model_session_status(s, e))) goto done;
    int first = model_argmax(logits, hp->n_vocab), pos = n_prompt;
    int32_t *toks = rb_malloc(sizeof(int32_t) * (size_t)o->sample);
    int li = 0;
    while (pos < max_len && !st) {
        int n = max_len - pos < o->sample ? max_len - pos : o->sample, got = 0;
        /* segments end on the lengths, so each length's KV is read exactly there */
        while (li < o->n_lengths && o->lengths[li] <= pos) li++;
        if (li < o->n_lengths && pos + n > o->lengths[li]) n = o->lengths[li] - pos;
        if ((st = model_session_generate(s, first, pos, n, NULL, 0, toks, &got, step_ns + pos, e)))
            break;
        RB_CHECK(got == n);
        first = toks[n - 1];
        pos += n;
        int t = run->T++, at = pos - 1; /* the row is the segment's last step */
        run->step[t] = at;
        run->token_latency_ns[t] = step_ns[at];
        run->latency_ns[t] = -1; /* the device times whole tokens, not the policy alone */
        run->kv_bytes[t] = model_session_kv_bytes(s);
        run->meta_bytes[t] = model_session_meta_bytes(s);
        double att = 0;
        int n_att = 0;
        for (int il = 0; il < hp->n_layers; il++) {
            size_t i = (size_t)t * hp->n_layers + il;
            model_session_metrics(s, il, &run->recall[i], &run->out_err[i], &run->attended[i]);
            if (run->sparse[il]) att += run->attended[i], n_att++;
        }
        for (int k = 0; k < o->n_lengths; k++)
            if (o->lengths[k] == pos) {
                kv_at[k] = run->kv_bytes[t];
                attended_at[k] = n_att ? att / n_att : NAN;
            }
        if (!st) st = model_session_status(s, e);
    }
    free(toks);
done:
    free(logits);
    model_session_destroy(s);
    return st;
}

static char *config_json(const gpu_bench_opts *o, const char *device, double bw) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "command", "bench decode --device cuda");
    cJSON_AddStringToObject(c, "model", o->model);
    cJSON_AddStringToObject(c, "prompt", o->prompt);
    cJSON_AddStringToObject(c, "policies", o->policies);
    cJSON_AddNumberToObject(c, "budget", o->budget);
    cJSON_AddStringToObject(c, "lengths", o->lengths_s);
    cJSON_AddNumberToObject(c, "window", o->window);
    cJSON_AddNumberToObject(c, "sample", o->sample);
    cJSON_AddNumberToObject(c, "page_size", o->page_size);
    cJSON_AddNumberToObject(c, "dense_layers", o->dense_layers);
    cJSON_AddStringToObject(c, "device", device);
    cJSON_AddNumberToObject(c, "copy_bandwidth_bytes_per_s", bw);
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    char *r = rb_strdup(s);
    cJSON_free(s);
    return r;
}

static const char usage[] =
    "--device cuda [--model M.gguf] [--prompt TEXT] [--policies dense,quest,raas]\n"
    "                              [--budget 1024] [--lengths 1024,4096,16384,32768]\n"
    "                              [--window 64] [--sample 64] [--page-size 16]\n"
    "                              [--dense-layers 2] [--param k=v ...] [--out R.h5]\n"
    "The RQ2 figure on the GPU: for each policy one greedy decode to the longest length;\n"
    "at each length, tokens/s and per-token latency percentiles (device time, CUDA events)\n"
    "over the --window tokens ending there, the KV bytes the device holds, and the physical\n"
    "floor of a token (weight + attended KV bytes over the copy bandwidth measured in the\n"
    "same run). --out: samples every --sample tokens in the results format\n"
    "(plots/gpu_decode.gp draws latency and KV memory against decode length).";

int cmd_bench_decode_gpu(int argc, char **argv) {
    gpu_bench_opts o = {.model = "models/gemma-3-270m-q4_k_m.gguf",
                        .prompt = "Solve step by step: a train leaves at 3 pm at 80 km/h.",
                        .policies = "dense,quest,raas", .lengths_s = "1024,4096,16384,32768",
                        .budget = 1024, .page_size = 16, .dense_layers = 2, .window = 64,
                        .sample = 64};
    const char *device = "cuda";
    int help = 0, n_pos = 0;
    arg_spec specs[] = {
        {"device", ARG_STR, &device, "cuda", "cuda (the CPU bench is `bench decode` without it)"},
        {"model", ARG_STR, &o.model, "M.gguf", "model (default models/gemma-3-270m-q4_k_m.gguf)"},
        {"prompt", ARG_STR, &o.prompt, "TEXT", "prompt"},
        {"policies", ARG_STR, &o.policies, "a,b", "policies (default dense,quest,raas)"},
        {"budget", ARG_INT_IN(&o.budget, 1, INT_MAX), "L", "budget of every policy (default 1024)"},
        {"lengths", ARG_STR, &o.lengths_s, "N1,N2", "decode lengths (positions) to report, ascending"},
        {"window", ARG_INT_IN(&o.window, 1, 1 << 20), "W", "tokens timed before each length (64)"},
        {"sample", ARG_INT_IN(&o.sample, 1, 1 << 20), "K", "a results row every K tokens (64)"},
        {"page-size", ARG_INT_IN(&o.page_size, 1, 4096), "P", "page size (16)"},
        {"dense-layers", ARG_INT_IN(&o.dense_layers, 0, 256), "N", "leading layers kept dense (2)"},
        {"param", ARG_MULTI, &o.params, "k=v", "policy parameter (policy.key=value), repeatable"},
        {"out", ARG_STR, &o.out, "R.h5", "results file of the samples"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    if (args_parse("bench decode", usage, specs, argc, argv, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (strcmp(device, "cuda"))
        rb_fail(&e, RB_EINPUT, "--device", "'%s': this is the GPU bench (cuda)", device);
    else if (!args_int_list("--lengths", o.lengths_s, o.lengths, MAX_LENGTHS, &o.n_lengths, &e))
        for (int i = 0; i < o.n_lengths && !e.status; i++)
            if (o.lengths[i] < 2 || (i && o.lengths[i] <= o.lengths[i - 1]))
                rb_fail(&e, RB_EINPUT, "--lengths", "must be ascending, each >= 2");
    if (e.status) return rb_err_print(&e);
    if (o.out) {
        const char *ins[] = {o.model};
        if (output_check_all(&o.out, 1, ins, 1, &e)) return rb_err_print(&e);
    }

    char *names_buf = NULL;
    const char *names[MAX_POLICIES];
    int n_names = 0, n_cells = 0, n_prompt = 0, rc = 0;
    cell *cells = NULL;
    model *m = NULL;
    tokenizer *tok = NULL;
    int32_t *ids = NULL;
    results_run *runs = NULL;
    results_writer *w = NULL;
    int64_t *step_ns = NULL, *kv_at = NULL;
    double *att_at = NULL;
    char *cfg = NULL;
    if (args_name_list("--policies", o.policies, &names_buf, names, MAX_POLICIES, &n_names, &e) ||
        cells_make(names, n_names, &o.budget, 1, o.params.v, o.params.n, NULL, &cells, &n_cells, &e) ||
        model_load(o.model, 1, &m, &e) || model_use_device(m, MODEL_DEVICE_CUDA, &e) ||
        tokenizer_load(model_gguf(m), &tok, &e) ||
        tokenizer_encode(tok, o.prompt, tokenizer_add_bos(tok), &ids, &n_prompt, &e))
        goto fail;
    const model_hparams *hp = model_get_hparams(m);
    int max_len = o.lengths[o.n_lengths - 1];
    if (max_len > hp->n_ctx_train) {
        rb_fail(&e, RB_EINPUT, "--lengths", "%d exceeds the model's context length %d", max_len,
                hp->n_ctx_train);
        goto fail;
    }
    if (o.lengths[0] - o.window < n_prompt) {
        rb_fail(&e, RB_EINPUT, "--lengths", "the first length must leave --window %d decode steps "
                "after the %d-token prompt", o.window, n_prompt);
        goto fail;
    }
    char dev[256];
    model_device_describe(m, MODEL_DEVICE_CUDA, dev, sizeof dev);
    double bw = copy_bandwidth(&e);
    if (bw <= 0) goto fail;
    int64_t wbytes = model_weight_bytes_per_token(m);
    printf("# bench decode --device cuda: %s on %s; prompt %d tokens; budget %d, page %d\n",
           hp->name, dev, n_prompt, o.budget, o.page_size);
    /* HBM's bandwidth is shared by reads and writes: a pure read stream moves bytes at about
     * the copy's read + write rate, so a token's floor is the bytes it reads over bw */
    printf("# device copy bandwidth %.0f GB/s (read + write, median of 5 x 1 GiB); weights read per "
           "token %.1f MB: floor %.4f ms/token before KV\n", bw * 1e-9, wbytes * 1e-6,
           wbytes / bw * 1e3);
    printf("policy\tlength\ttokens_per_s\tp50_ms\tp90_ms\tp99_ms\tkv_mib\tattended\tfloor_ms\tfloor_ratio\n");
    if (o.out) {
        cfg = config_json(&o, dev, bw);
        results_provenance p = {.trace = "", .trace_sha256 = "", .config_json = cfg};
        if (results_create(o.out, &p, &w, &e)) goto fail;
    }
    step_ns = rb_calloc((size_t)max_len + 1, sizeof *step_ns);
    kv_at = rb_calloc(MAX_LENGTHS, sizeof *kv_at);
    att_at = rb_calloc(MAX_LENGTHS, sizeof *att_at);
    runs = rb_calloc((size_t)n_cells, sizeof *runs);
    int layers[MODEL_MAX_LAYERS];
    for (int il = 0; il < hp->n_layers; il++) layers[il] = il;
    for (int ci = 0; ci < n_cells; ci++) {
        run_facts f = {.source = o.model, .page_size = o.page_size, .dense_layers = o.dense_layers,
                       .latency_every = 1, .n_tokens = 0, .n_prefill = n_prompt, .layers = layers,
                       .sliding_window = hp->sliding_window};
        int rows = (max_len - n_prompt) / o.sample + o.n_lengths + 2;
        cells_run_init(&runs[ci], &cells[ci], &f, rows, hp->n_layers, hp->n_q_heads, 0);
        runs[ci].T = 0;
        runs[ci].token_latency_ns = rb_calloc((size_t)rows, sizeof(int64_t));
        if (bench_cell(&o, m, &cells[ci], ids, n_prompt, max_len, step_ns, kv_at, att_at, &runs[ci], &e))
            goto fail;
        for (int k = 0; k < o.n_lengths; k++) {
            int hi = o.lengths[k], lo = hi - o.window;
            int64_t sum = 0;
            for (int i = lo; i < hi; i++) sum += step_ns[i];
            const int64_t *win = step_ns + lo;
            double p50 = results_percentile(win, o.window, 50) * 1e-6;
            double p90 = results_percentile(win, o.window, 90) * 1e-6;
            double p99 = results_percentile(win, o.window, 99) * 1e-6;
            /* the floor: weights once, plus K and V of the attended tokens of every layer; the
             * resident pages a policy does not attend are not read */
            double kv_read = 0;
            for (int il = 0; il < hp->n_layers; il++) {
                layer_role role = cells_layer_role(il, hp->sliding_window[il], o.dense_layers);
                double toks = role == LAYER_WINDOW ? (hp->sliding_window[il] < hi ? hp->sliding_window[il] : hi)
                              : role == LAYER_DENSE ? hi : att_at[k];
                kv_read += toks * hp->n_kv_heads * hp->head_dim * 2 * 2;
            }
            double floor_ms = (wbytes + kv_read) / bw * 1e3, mean_ms = sum * 1e-6 / o.window;
            printf("%s\t%d\t%.1f\t%.4f\t%.4f\t%.4f\t%.2f\t%.1f\t%.4f\t%.2f\n", cells[ci].run_id, hi,
                   o.window / (sum * 1e-9), p50, p90, p99, kv_at[k] / 1048576.0, att_at[k], floor_ms,
                   mean_ms / floor_ms);
        }
        fflush(stdout);
        if (w && results_add_run(w, &runs[ci], &e)) goto fail;
    }
    if (w) {
        rb_status st = results_finish(w, &e);
        w = NULL;
        if (st) goto fail;
    }
    goto done;
fail:
    rc = rb_err_print(&e);
done:
    results_abort(w);
    for (int ci = 0; runs && ci < n_cells; ci++) results_run_free(&runs[ci]);
    free(runs), free(step_ns), free(kv_at), free(att_at), free(cfg), free(ids);
    free(names_buf);
    cells_free(cells, n_cells);
    tokenizer_destroy(tok);
    model_destroy(m);
    return rc;
}
