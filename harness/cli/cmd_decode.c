/* cmd_decode.c: `raasbench decode`: live decoding of a GGUF model with a policy managing the
 * KV cache of every global layer. Streams the text, and optionally records a trace v1 of the
 * post-RoPE q, k, v (--record), writes per-step results (--out), and runs teacher-forced
 * sparse cells beside the dense trajectory (--teacher-forced) for token_match and kl. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "model.h"
#include "progress.h"
#include "results.h"
#include "tokenizer.h"
#include "trace.h"

#define MAX_CELLS 64
#define RECORD_CHUNK 64 /* tokens buffered per layer before a trace append */

typedef struct decode_opts {
    const char *model, *prompt, *prompt_file, *prompt_tokens, *policy, *record, *record_dtype;
    const char *out, *policies, *budgets, *logits_out;
    int max_tokens, budget, page_size, dense_layers, threads, teacher_forced, quiet, exact;
    double temperature;
    int64_t seed;
    arg_multi params;
} decode_opts;

/* One (policy, budget) cache configuration with its session and its results series. */
typedef struct cell {
    const policy_ops *ops;
    policy_params params;
    int budget;
    model_session *s;
    results_run run;
    float *logits; /* [n_vocab] */
} cell;

/* ---- small helpers ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *x) { return (double)(splitmix64(x) >> 11) * 0x1.0p-53; }

static rb_status read_file(const char *path, char **out, rb_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return rb_fail(e, RB_EINPUT, path, "cannot open prompt file");
    size_t cap = 4096, n = 0;
    char *buf = rb_malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) buf = rb_realloc(buf, cap *= 2);
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return rb_fail(e, RB_EINPUT, path, "read error");
    }
    buf[n] = 0;
    /* a trailing newline is the file's, not the prompt's */
    if (n > 0 && buf[n - 1] == '\n') buf[--n] = 0;
    *out = buf;
    return RB_OK;
}

/* ---- trace recording: buffered appends of every layer's q, k, v ---- */

typedef struct recorder {
    trace_writer *w;
    int n_layers, qd, kd, n_buf;
    float *q, *k, *v; /* [n_layers, RECORD_CHUNK, qd or kd] */
} recorder;

static rb_status recorder_open(recorder *r, const char *path, const model_hparams *hp,
                               int n_prefill, trace_dtype dtype, rb_err *e) {
    memset(r, 0, sizeof *r);
    trace_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.source, sizeof m.source, "decode");
    snprintf(m.model, sizeof m.model, "%s", hp->name);
    m.n_layers = hp->n_layers;
    m.n_q_heads = hp->n_q_heads;
    m.n_kv_heads = hp->n_kv_heads;
    m.head_dim = hp->head_dim;
    m.n_prefill = n_prefill;
    m.attn_scale = hp->attn_scale;
    m.dtype = dtype;
    m.n_stored = hp->n_layers;
    for (int il = 0; il < hp->n_layers; il++) {
        m.layers[il] = il;
        m.sliding_window[il] = hp->sliding_window[il];
    }
    rb_status st = trace_writer_create(path, &m, &r->w, e);
    if (st) return st;
    r->n_layers = hp->n_layers;
    r->qd = hp->n_q_heads * hp->head_dim;
    r->kd = hp->n_kv_heads * hp->head_dim;
    size_t nl = (size_t)hp->n_layers * RECORD_CHUNK;
    r->q = rb_malloc(nl * r->qd * sizeof(float));
    r->k = rb_malloc(nl * r->kd * sizeof(float));
    r->v = rb_malloc(nl * r->kd * sizeof(float));
    return RB_OK;
}

static rb_status recorder_flush(recorder *r, rb_err *e) {
    for (int il = 0; il < r->n_layers && r->n_buf; il++) {
        size_t off = (size_t)il * RECORD_CHUNK;
        rb_status st = trace_writer_append(r->w, il, r->n_buf, r->q + off * r->qd,
                                           r->k + off * r->kd, r->v + off * r->kd, e);
        if (st) return st;
    }
    r->n_buf = 0;
    return RB_OK;
}

static rb_status recorder_add(recorder *r, const model_session *s, rb_err *e) {
    if (!r->w) return RB_OK;
    for (int il = 0; il < r->n_layers; il++) {
        const float *q, *k, *v;
        model_session_qkv(s, il, &q, &k, &v);
        size_t row = (size_t)il * RECORD_CHUNK + r->n_buf;
        memcpy(r->q + row * r->qd, q, (size_t)r->qd * sizeof(float));
        memcpy(r->k + row * r->kd, k, (size_t)r->kd * sizeof(float));
        memcpy(r->v + row * r->kd, v, (size_t)r->kd * sizeof(float));
    }
    if (++r->n_buf == RECORD_CHUNK) return recorder_flush(r, e);
    return RB_OK;
}

static void recorder_free(recorder *r) {
    trace_writer_abort(r->w); /* no-op after a successful finish (w set to NULL) */
    free(r->q), free(r->k), free(r->v);
    memset(r, 0, sizeof *r);
}

/* ---- results ---- */

static void run_init(results_run *r, const model_hparams *hp, const decode_opts *o,
                     const policy_ops *ops, const policy_params *params, int budget,
                     int live_metrics) {
    memset(r, 0, sizeof *r);
    results_run_alloc(r, o->max_tokens, hp->n_layers, hp->n_q_heads, 0);
    r->T = 0;
    snprintf(r->run_id, sizeof r->run_id, "%s_L%d", ops->name, budget); /* as replay names runs */
    snprintf(r->policy, sizeof r->policy, "%s", ops->name);
    snprintf(r->trace, sizeof r->trace, "%s", o->record ? o->record : o->model);
    r->budget = budget;
    r->params_json = policy_params_json(ops, params);
    r->page_size = o->page_size;
    r->dense_layers = o->dense_layers;
    for (int il = 0; il < hp->n_layers; il++) {
        r->layers[il] = il;
        r->sparse[il] = hp->sliding_window[il] == 0 && il >= o->dense_layers;
    }
    r->token_latency_ns = rb_calloc((size_t)o->max_tokens, sizeof(int64_t));
    if (live_metrics) {
        r->token_match = rb_calloc((size_t)o->max_tokens, sizeof(float));
        r->kl = rb_calloc((size_t)o->max_tokens, sizeof(float));
    }
}

/* Record one decode step of a session into its run. */
static void run_record(results_run *r, const model_session *s, const model_hparams *hp, int pos) {
    int t = r->T++;
    model_timing tm = model_session_last_timing(s);
    r->step[t] = pos;
    for (int il = 0; il < hp->n_layers; il++) {
        size_t i = (size_t)t * hp->n_layers + il;
        model_session_metrics(s, il, &r->recall[i], &r->out_err[i]);
        r->attended[i] = model_session_attended(s, il);
    }
    r->kv_bytes[t] = model_session_kv_bytes(s);
    r->meta_bytes[t] = model_session_meta_bytes(s);
    r->latency_ns[t] = tm.attn_ns;
    r->token_latency_ns[t] = tm.total_ns;
}

static char *config_json(const decode_opts *o, int n_prompt, const model_hparams *hp,
                         int n_threads) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "command", "decode");
    cJSON_AddStringToObject(c, "model", o->model);
    cJSON_AddStringToObject(c, "model_name", hp->name);
    cJSON_AddStringToObject(c, "architecture", hp->arch_name);
    if (o->prompt) cJSON_AddStringToObject(c, "prompt", o->prompt);
    if (o->prompt_file) cJSON_AddStringToObject(c, "prompt_file", o->prompt_file);
    cJSON_AddNumberToObject(c, "n_prompt", n_prompt);
    cJSON_AddNumberToObject(c, "max_tokens", o->max_tokens);
    cJSON_AddNumberToObject(c, "temperature", o->temperature);
    cJSON_AddNumberToObject(c, "seed", (double)o->seed);
    cJSON_AddNumberToObject(c, "page_size", o->page_size);
    cJSON_AddNumberToObject(c, "dense_layers", o->dense_layers);
    cJSON_AddNumberToObject(c, "threads", n_threads);
    cJSON_AddBoolToObject(c, "teacher_forced", o->teacher_forced);
    if (o->teacher_forced) {
        cJSON_AddStringToObject(c, "policies", o->policies);
        cJSON_AddStringToObject(c, "budgets", o->budgets);
    } else {
        cJSON_AddStringToObject(c, "policy", o->policy);
        cJSON_AddNumberToObject(c, "budget", o->budget);
    }
    cJSON *pa = cJSON_AddArrayToObject(c, "params");
    for (int i = 0; i < o->params.n; i++) cJSON_AddItemToArray(pa, cJSON_CreateString(o->params.v[i]));
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    char *r = rb_strdup(s);
    cJSON_free(s);
    return r;
}

/* The results file is created before decoding (so a bad path fails at once) and
 * filled after. */
static rb_status results_open(const decode_opts *o, const model_hparams *hp, int n_prompt,
                              int n_threads, results_writer **w, rb_err *e) {
    char *cfg = config_json(o, n_prompt, hp, n_threads);
    results_provenance p = {.trace = o->record ? o->record : "", .trace_sha256 = "",
                            .config_json = cfg};
    rb_status st = results_create(o->out, &p, w, e);
    free(cfg);
    return st;
}

static rb_status results_fill(results_writer *w, cell *cells, int n_cells, rb_err *e) {
    rb_status st = RB_OK;
    for (int i = 0; i < n_cells && !st; i++) st = results_add_run(w, &cells[i].run, e);
    if (!st) return results_finish(w, e);
    results_abort(w);
    return st;
}

/* ---- the decode ---- */

static rb_status prompt_ids(const decode_opts *o, const model *m, const tokenizer *tok,
                            int32_t **ids, int *n, rb_err *e) {
    const model_hparams *hp = model_get_hparams(m);
    *ids = NULL;
    *n = 0;
    rb_status st;
    if (o->prompt_tokens) {
        int cap = 1 << 16;
        int *tmp = rb_malloc((size_t)cap * sizeof(int));
        st = args_int_list("--prompt-tokens", o->prompt_tokens, tmp, cap, n, e);
        if (st) {
            free(tmp);
            return st;
        }
        *ids = rb_malloc((size_t)(*n ? *n : 1) * sizeof(int32_t));
        for (int i = 0; i < *n; i++) (*ids)[i] = tmp[i];
        free(tmp);
    } else {
        char *text = NULL;
        if (o->prompt_file) {
            if ((st = read_file(o->prompt_file, &text, e))) return st;
        } else {
            text = rb_strdup(o->prompt);
        }
        st = tokenizer_encode(tok, text, tokenizer_add_bos(tok), ids, n, e);
        free(text);
        if (st) return st;
    }
    if (*n < 1) return rb_fail(e, RB_EINPUT, "prompt", "is empty (no tokens)");
    for (int i = 0; i < *n; i++)
        if ((*ids)[i] < 0 || (*ids)[i] >= hp->n_vocab)
            return rb_fail(e, RB_EINPUT, "prompt", "token id %d out of range [0, %d)", (*ids)[i],
                           hp->n_vocab);
    return RB_OK;
}

static rb_status run_decode(const decode_opts *o, rb_err *e) {
    model *m = NULL;
    tokenizer *tok = NULL;
    int32_t *ids = NULL;
    cell cells[MAX_CELLS];
    int n_cells = 0;
    model_session *main_s = NULL;
    float *logits = NULL;
    FILE *lf = NULL;
    recorder rec;
    memset(&rec, 0, sizeof rec);
    char *policies_buf = NULL;
    progress *bar = NULL;
    results_writer *rw = NULL;
    int n_prompt = 0, n_gen = 0;
    rb_status st = model_load(o->model, o->threads, &m, e);
    if (st) return st;
    const model_hparams *hp = model_get_hparams(m);
    model_set_exact(m, o->exact);

    if ((st = tokenizer_load(model_gguf(m), &tok, e))) goto done;
    if ((st = prompt_ids(o, m, tok, &ids, &n_prompt, e))) goto done;
    if ((int64_t)n_prompt + o->max_tokens > hp->n_ctx_train) {
        st = rb_fail(e, RB_EINPUT, "--max-tokens", "prompt (%d tokens) + %d exceeds the model's "
                     "context length %d", n_prompt, o->max_tokens, hp->n_ctx_train);
        goto done;
    }
    int max_pos = n_prompt + o->max_tokens;
    ids = rb_realloc(ids, (size_t)max_pos * sizeof(int32_t));

    /* The trajectory's cache: the chosen policy, or dense under --teacher-forced. */
    const policy_ops *main_ops = policy_find(o->teacher_forced ? "dense" : o->policy, e);
    if (!main_ops) {
        st = RB_EINPUT;
        goto done;
    }
    const policy_ops *sel_ops[MAX_CELLS];
    int n_sel = 0, budgets[MAX_CELLS], n_budgets = 0;
    if (o->teacher_forced) {
        const char *names[MAX_CELLS];
        if ((st = args_name_list("--policies", o->policies, &policies_buf, names, MAX_CELLS, &n_sel, e)) ||
            (st = args_int_list("--budgets", o->budgets, budgets, MAX_CELLS, &n_budgets, e)))
            goto done;
        if (n_sel * n_budgets > MAX_CELLS) {
            st = rb_fail(e, RB_EINPUT, "--policies", "%d cells, at most %d", n_sel * n_budgets, MAX_CELLS);
            goto done;
        }
        for (int i = 0; i < n_sel; i++)
            if (!(sel_ops[i] = policy_find(names[i], e))) {
                st = RB_EINPUT;
                goto done;
            }
    } else {
        sel_ops[n_sel++] = main_ops;
    }
    /* policy_params_for checks every entry, also those naming other policies */
    policy_params main_params;
    if ((st = policy_params_for(main_ops, o->params.v, o->params.n, &main_params, e))) goto done;
    model_cache_config cc = {.ops = main_ops, .params = &main_params, .budget = o->budget,
                             .page_size = o->page_size, .dense_layers = o->dense_layers,
                             .max_tokens = max_pos, .seed = (uint64_t)o->seed,
                             /* the free-running run's own metrics (teacher-forced: the cells') */
                             .measure = o->out && !o->teacher_forced};
    if ((st = model_session_create(m, &cc, &main_s, e))) goto done;
    if (o->teacher_forced) {
        for (int i = 0; i < n_sel; i++)
            for (int b = 0; b < n_budgets; b++) {
                cell *c = &cells[n_cells];
                memset(c, 0, sizeof *c);
                c->ops = sel_ops[i];
                c->budget = budgets[b];
                if ((st = policy_params_for(c->ops, o->params.v, o->params.n, &c->params, e)))
                    goto done;
                model_cache_config ccc = cc;
                ccc.ops = c->ops, ccc.params = &c->params, ccc.budget = c->budget;
                ccc.measure = 1;
                n_cells++;
                if ((st = model_session_create(m, &ccc, &c->s, e))) goto done;
                run_init(&c->run, hp, o, c->ops, &c->params, c->budget, 1);
                c->logits = rb_malloc((size_t)hp->n_vocab * sizeof(float));
            }
    } else {
        cell *c = &cells[n_cells++];
        memset(c, 0, sizeof *c);
        c->ops = main_ops;
        c->budget = o->budget;
        c->params = main_params;
        run_init(&c->run, hp, o, main_ops, &main_params, o->budget, 0);
    }

    if (o->record) {
        trace_dtype dt = !strcmp(o->record_dtype, "f32") ? TRACE_F32 : TRACE_F16;
        if (strcmp(o->record_dtype, "f32") && strcmp(o->record_dtype, "f16")) {
            st = rb_fail(e, RB_EINPUT, "--record-dtype", "'%s': expected f16 or f32", o->record_dtype);
            goto done;
        }
        if ((st = recorder_open(&rec, o->record, hp, n_prompt, dt, e))) goto done;
    }
    if (o->out && (st = results_open(o, hp, n_prompt, model_threads(m), &rw, e))) goto done;
    if (o->logits_out && !(lf = fopen(o->logits_out, "wb"))) {
        st = rb_fail(e, RB_EINPUT, o->logits_out, "cannot open for writing");
        goto done;
    }

    logits = rb_malloc((size_t)hp->n_vocab * sizeof(float));
    uint64_t rng = (uint64_t)o->seed;
    /* the text is the progress when it is printed; a bar otherwise (terminal only) */
    if (o->quiet) bar = progress_create("decode", n_prompt + o->max_tokens);
    for (int i = 0; i < n_prompt; i++) {
        int want = lf || i == n_prompt - 1;
        model_session_forward(main_s, ids[i], i, 1, want ? logits : NULL);
        if (lf && fwrite(logits, sizeof(float), (size_t)hp->n_vocab, lf) != (size_t)hp->n_vocab) {
            st = rb_fail(e, RB_EINPUT, o->logits_out, "write failed");
            goto done;
        }
        if ((st = recorder_add(&rec, main_s, e))) goto done;
        /* the prompt is dense in every cell: they need its keys, not its logits */
        for (int c = 0; c < n_cells; c++)
            if (cells[c].s) model_session_forward(cells[c].s, ids[i], i, 1, NULL);
        progress_add(bar, 1);
    }

    for (n_gen = 0; n_gen < o->max_tokens;) {
        int next = model_sample(logits, hp->n_vocab, o->temperature, uniform01(&rng));
        int pos = n_prompt + n_gen;
        ids[pos] = next;
        n_gen++;
        if (!o->quiet && !tokenizer_is_eog(tok, next)) {
            size_t len = 0;
            const char *piece = tokenizer_decode_token(tok, next, &len);
            if (piece && len) fwrite(piece, 1, len, stdout);
            fflush(stdout);
        }
        model_session_forward(main_s, next, pos, 0, logits);
        if (lf && fwrite(logits, sizeof(float), (size_t)hp->n_vocab, lf) != (size_t)hp->n_vocab) {
            st = rb_fail(e, RB_EINPUT, o->logits_out, "write failed");
            goto done;
        }
        if ((st = recorder_add(&rec, main_s, e))) goto done;
        if (!o->teacher_forced) run_record(&cells[0].run, main_s, hp, pos);
        int dense_top = model_argmax(logits, hp->n_vocab);
        for (int c = 0; c < n_cells && o->teacher_forced; c++) {
            cell *ce = &cells[c];
            model_session_forward(ce->s, next, pos, 0, ce->logits);
            int t = ce->run.T;
            run_record(&ce->run, ce->s, hp, pos);
            ce->run.token_match[t] = model_argmax(ce->logits, hp->n_vocab) == dense_top;
            ce->run.kl[t] = (float)model_kl(logits, ce->logits, hp->n_vocab);
        }
        progress_add(bar, 1);
        if (tokenizer_is_eog(tok, next)) break;
    }
    progress_destroy(bar);
    bar = NULL;
    if (!o->quiet) {
        fputc('\n', stdout);
        fflush(stdout);
    }

    if (rec.w) {
        char *text = NULL;
        int skip_bos = ids[0] == tokenizer_bos(tok) && n_prompt > 0;
        if ((st = recorder_flush(&rec, e)) ||
            (st = trace_writer_set_tokens(rec.w, ids, n_prompt + n_gen, e)) ||
            /* the text without a leading BOS, which would decode to its control text */
            (st = tokenizer_decode(tok, ids + skip_bos, n_prompt + n_gen - skip_bos, &text, NULL, e)) ||
            (st = trace_writer_set_text(rec.w, text, e))) {
            free(text);
            goto done;
        }
        free(text);
        st = trace_writer_finish(rec.w, e);
        rec.w = NULL;
        if (st) goto done;
    }
    if (lf) {
        int bad = fclose(lf) != 0;
        lf = NULL;
        if (bad) {
            st = rb_fail(e, RB_EINPUT, o->logits_out, "write failed");
            goto done;
        }
    }
    if (rw) {
        st = results_fill(rw, cells, n_cells, e);
        rw = NULL;
    }

done:
    results_abort(rw);
    progress_destroy(bar);
    if (lf) fclose(lf);
    recorder_free(&rec);
    for (int c = 0; c < n_cells; c++) {
        model_session_destroy(cells[c].s);
        results_run_free(&cells[c].run);
        free(cells[c].logits);
    }
    model_session_destroy(main_s);
    free(logits);
    free(ids);
    free(policies_buf);
    tokenizer_destroy(tok);
    model_destroy(m);
    return st;
}

static const char usage[] =
    "--model M.gguf (--prompt TEXT | --prompt-file F | --prompt-tokens IDS)\n"
    "                        --max-tokens N [--temperature T --seed S] [--policy P --budget L]\n"
    "                        [--param k=v ...] [--page-size 16] [--dense-layers 2] [--threads N]\n"
    "                        [--record TRACE.h5 [--record-dtype f16|f32]] [--out RESULTS.h5]\n"
    "                        [--teacher-forced --policies a,b --budgets L1,L2] [--logits-out F]\n"
    "Decode a GGUF model (gemma3, qwen2, llama) token by token; the policy manages the KV\n"
    "cache of every global layer past the first --dense-layers (sliding-window layers keep\n"
    "their window). Text streams to stdout; greedy unless --temperature > 0.";

int cmd_decode(int argc, char **argv) {
    decode_opts o = {.policy = "dense", .record_dtype = "f16", .max_tokens = 64,
                     .page_size = 16, .dense_layers = 2, .threads = 1, .seed = 0};
    int help = 0, n_pos = 0;
    arg_spec specs[] = {
        {"model", ARG_STR, &o.model, "M.gguf", "GGUF model file (gemma3, qwen2, llama)"},
        {"prompt", ARG_STR, &o.prompt, "TEXT", "prompt text"},
        {"prompt-file", ARG_STR, &o.prompt_file, "F", "prompt text from a file"},
        {"prompt-tokens", ARG_STR, &o.prompt_tokens, "IDS", "prompt as token ids (1,2,3), BOS included"},
        {"max-tokens", ARG_INT, &o.max_tokens, "N", "tokens to generate (default 64)"},
        {"temperature", ARG_FLOAT, &o.temperature, "T", "sampling temperature (0 = greedy, default)"},
        {"seed", ARG_I64, &o.seed, "S", "sampling and policy seed (default 0)"},
        {"policy", ARG_STR, &o.policy, "P", "KV-cache policy (default dense)"},
        {"budget", ARG_INT, &o.budget, "L", "cache budget in tokens per KV head"},
        {"param", ARG_MULTI, &o.params, "k=v", "policy parameter (policy.key=value), repeatable"},
        {"page-size", ARG_INT, &o.page_size, "P", "page size (default 16)"},
        {"dense-layers", ARG_INT, &o.dense_layers, "N", "leading layers kept dense (default 2)"},
        {"threads", ARG_INT, &o.threads, "N", "matrix-vector threads (default 1; 0 = all cores)"},
        {"record", ARG_STR, &o.record, "TRACE.h5", "record a trace v1 of q, k, v"},
        {"record-dtype", ARG_STR, &o.record_dtype, "f16|f32", "trace element type (default f16)"},
        {"out", ARG_STR, &o.out, "RESULTS.h5", "per-step results file"},
        {"teacher-forced", ARG_FLAG, &o.teacher_forced, NULL,
         "decode dense; run every (policy, budget) cell on the dense tokens"},
        {"policies", ARG_STR, &o.policies, "a,b", "teacher-forced cells: policies"},
        {"budgets", ARG_STR, &o.budgets, "L1,L2", "teacher-forced cells: budgets"},
        {"logits-out", ARG_STR, &o.logits_out, "F", "raw float32 logits of every position [n, vocab]"},
        {"quiet", ARG_FLAG, &o.quiet, NULL, "do not print the generated text"},
        {"exact", ARG_FLAG, &o.exact, NULL,
         "reference matrix-vector products (dequantized weights, double sums): slow, for checks"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    if (args_parse("decode", usage, specs, argc, argv, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    rb_status st = RB_OK;
    int n_src = !!o.prompt + !!o.prompt_file + !!o.prompt_tokens;
    if (!o.model) st = rb_fail(&e, RB_EINPUT, "decode", "--model is required");
    else if (n_src != 1)
        st = rb_fail(&e, RB_EINPUT, "decode", "give exactly one of --prompt, --prompt-file, --prompt-tokens");
    else if (o.max_tokens < 1) st = rb_fail(&e, RB_EINPUT, "--max-tokens", "must be >= 1");
    else if (!(o.temperature >= 0) || !isfinite(o.temperature))
        st = rb_fail(&e, RB_EINPUT, "--temperature", "must be >= 0");
    else if (o.page_size < 1) st = rb_fail(&e, RB_EINPUT, "--page-size", "must be >= 1");
    else if (o.dense_layers < 0) st = rb_fail(&e, RB_EINPUT, "--dense-layers", "must be >= 0");
    else if (o.threads < 0 || o.threads > 256) st = rb_fail(&e, RB_EINPUT, "--threads", "must be in [0, 256]");
    else if (o.teacher_forced && (!o.policies || !o.budgets))
        st = rb_fail(&e, RB_EINPUT, "--teacher-forced", "needs --policies and --budgets");
    else if (!o.teacher_forced && (o.policies || o.budgets))
        st = rb_fail(&e, RB_EINPUT, "--policies", "only with --teacher-forced");
    else if (o.budget < 0) st = rb_fail(&e, RB_EINPUT, "--budget", "must be >= 0");
    else if (!o.teacher_forced && strcmp(o.policy, "dense") && o.budget == 0)
        st = rb_fail(&e, RB_EINPUT, "--budget", "required with --policy %s", o.policy);
    if (!st) st = run_decode(&o, &e);
    return st ? rb_err_print(&e) : 0;
}
