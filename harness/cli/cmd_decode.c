/* cmd_decode.c: `raasbench decode`: live decoding of a GGUF model with a policy managing the
 * KV cache of every global layer. Streams the text, and optionally records a trace v1 of the
 * post-RoPE q, k, v (--record), writes per-step results (--out), and runs teacher-forced
 * sparse cells beside the dense trajectory (--teacher-forced) for token_match and kl. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <limits.h>

#include "args.h"
#include "commands.h"
#include "cells.h"
#include "model.h"
#include "output.h"
#include "progress.h"
#include "results.h"
#include "tokenizer.h"
#include "trace.h"

#define MAX_CELLS 64
#define RECORD_CHUNK 64 /* tokens buffered per layer before a trace append */

typedef struct decode_opts {
    const char *model, *prompt, *prompt_file, *prompt_tokens, *policy, *record, *record_dtype;
    const char *out, *policies, *budgets, *logits_out, *device_name;
    model_device device;
    int max_tokens, budget, page_size, dense_layers, threads, teacher_forced, quiet, exact;
    double temperature;
    int64_t seed;
    arg_multi params;
} decode_opts;

/* One cell of the decode with its session and its results series. The free-running decode
 * has one, run on the main session (s NULL); --teacher-forced has one per (policy, budget),
 * each with its own session fed the dense trajectory's tokens. */
typedef struct decode_cell {
    cell c;
    model_session *s;
    results_run run;
    float *logits; /* [n_vocab], teacher-forced cells only */
} decode_cell;

/* ---- small helpers ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *x) { return (double)(splitmix64(x) >> 11) * 0x1.0p-53; }

/* A prompt file; a trailing newline is the file's, not the prompt's. */
static rb_status read_prompt_file(const char *path, char **out, rb_err *e) {
    size_t n;
    rb_status st = rb_read_file(path, (size_t)1 << 30, out, &n, e);
    if (!st && n > 0 && (*out)[n - 1] == '\n') (*out)[n - 1] = 0;
    return st;
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

static void run_init(results_run *r, const cell *c, const model_hparams *hp,
                     const decode_opts *o, int n_prompt, int live_metrics) {
    int layers[MODEL_MAX_LAYERS];
    for (int il = 0; il < hp->n_layers; il++) layers[il] = il;
    run_facts f = {
        .source = o->record ? o->record : o->model, .page_size = o->page_size,
        .dense_layers = o->dense_layers, .latency_every = 1, .n_tokens = 0,
        .n_prefill = n_prompt, .layers = layers, .sliding_window = hp->sliding_window,
    };
    cells_run_init(r, c, &f, o->max_tokens, hp->n_layers, hp->n_q_heads, 0);
    r->T = 0; /* steps are recorded as they are decoded */
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
        model_session_metrics(s, il, &r->recall[i], &r->out_err[i], &r->attended[i]);
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
    cJSON_AddStringToObject(c, "device", model_device_name(o->device));
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

static rb_status results_fill(results_writer *w, decode_cell *cells, int n_cells, rb_err *e) {
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
            if ((st = read_prompt_file(o->prompt_file, &text, e))) return st;
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

/* Everything one decode holds; the steps below fill it in order and run_decode frees it. */
typedef struct decode_run {
    const decode_opts *o;
    model *m;
    const model_hparams *hp;
    tokenizer *tok;
    int32_t *ids;          /* [n_prompt + max_tokens] prompt, then generated tokens */
    int n_prompt, n_gen;
    model_session *main_s; /* the trajectory: the chosen policy, or dense if teacher-forced */
    decode_cell *cells;
    int n_cells;
    float *logits;         /* [n_vocab] the trajectory's next-token logits */
    output_text lf;        /* --logits-out, written under a temporary name like every output */
    recorder rec;
    results_writer *rw;
    progress *bar;
} decode_run;

/* The teacher-forced cells: --policies x --budgets with every --param (cells_make). */
static rb_status teacher_forced_cells(const decode_opts *o, cell **cs, int *n, rb_err *e) {
    char *names_buf = NULL;
    const char *names[MAX_CELLS];
    int budgets[MAX_CELLS], n_names = 0, n_budgets = 0;
    rb_status st;
    if (!(st = args_name_list("--policies", o->policies, &names_buf, names, MAX_CELLS, &n_names, e)) &&
        !(st = args_int_list("--budgets", o->budgets, budgets, MAX_CELLS, &n_budgets, e))) {
        if (n_names * n_budgets > MAX_CELLS)
            st = rb_fail(e, RB_EINPUT, "--policies", "%d cells, at most %d", n_names * n_budgets,
                         MAX_CELLS);
        else
            st = cells_make(names, n_names, budgets, n_budgets, o->params.v, o->params.n, NULL,
                            cs, n, e);
    }
    free(names_buf);
    return st;
}

/* The trajectory's session and the cells: one free-running cell on the trajectory, or one
 * session per teacher-forced (policy, budget). */
static rb_status make_sessions(decode_run *d, rb_err *e) {
    const decode_opts *o = d->o;
    /* the trajectory of a teacher-forced run is the dense reference */
    const policy_ops *main_ops = policy_find_choice(o->teacher_forced ? "dense" : o->policy, e);
    if (!main_ops) return RB_EINPUT;
    /* policy_params_for checks every entry, also those naming other policies */
    policy_params main_params;
    cell main_cell;
    rb_status st = policy_params_for(main_ops, o->params.v, o->params.n, &main_params, e);
    if (st || (st = cells_init(&main_cell, main_ops, &main_params, o->budget, NULL, NULL, e)))
        return st;
    model_cache_config cc = {.cell = &main_cell, .page_size = o->page_size,
                             .dense_layers = o->dense_layers,
                             .max_tokens = d->n_prompt + o->max_tokens, .seed = (uint64_t)o->seed,
                             /* the free-running run's own metrics (teacher-forced: the
                              * cells'); the device has no dense reference to score against */
                             .measure = o->out && !o->teacher_forced && o->device == MODEL_DEVICE_CPU,
                             .device = o->device};
    if ((st = model_session_create(d->m, &cc, &d->main_s, e))) {
        free(main_cell.params_json);
        return st;
    }
    if (!o->teacher_forced) {
        d->cells = rb_calloc(1, sizeof *d->cells);
        d->n_cells = 1;
        d->cells[0].c = main_cell;
        run_init(&d->cells[0].run, &main_cell, d->hp, o, d->n_prompt, 0);
        return RB_OK;
    }
    free(main_cell.params_json);
    cell *cs = NULL;
    int n = 0;
    if ((st = teacher_forced_cells(o, &cs, &n, e))) return st;
    d->cells = rb_calloc((size_t)n, sizeof *d->cells);
    for (int i = 0; i < n; i++) d->cells[i].c = cs[i];
    free(cs); /* the cells' params_json moved into d->cells */
    d->n_cells = n;
    for (int i = 0; i < n && !st; i++) {
        decode_cell *dc = &d->cells[i];
        model_cache_config ccc = cc;
        ccc.cell = &dc->c;
        ccc.measure = o->device == MODEL_DEVICE_CPU;
        if ((st = model_session_create(d->m, &ccc, &dc->s, e))) break;
        run_init(&dc->run, &dc->c, d->hp, o, d->n_prompt, 1);
        dc->logits = rb_malloc((size_t)d->hp->n_vocab * sizeof(float));
    }
    return st;
}

/* --record, --out and --logits-out, each opened before any work so a bad path fails at once. */
static rb_status open_outputs(decode_run *d, rb_err *e) {
    const decode_opts *o = d->o;
    rb_status st;
    if (!o->record && strcmp(o->record_dtype, "f16"))
        return rb_fail(e, RB_EINPUT, "--record-dtype", "given without --record");
    if (o->record) {
        if (strcmp(o->record_dtype, "f32") && strcmp(o->record_dtype, "f16"))
            return rb_fail(e, RB_EINPUT, "--record-dtype", "'%s': expected f16 or f32", o->record_dtype);
        trace_dtype dt = !strcmp(o->record_dtype, "f32") ? TRACE_F32 : TRACE_F16;
        if ((st = recorder_open(&d->rec, o->record, d->hp, d->n_prompt, dt, e))) return st;
    }
    if (o->out && (st = results_open(o, d->hp, d->n_prompt, model_threads(d->m), &d->rw, e)))
        return st;
    if (o->logits_out && (st = output_text_open(&d->lf, o->logits_out, e))) return st;
    return RB_OK;
}

static rb_status write_logits(decode_run *d, rb_err *e) {
    size_t nv = (size_t)d->hp->n_vocab;
    if (d->lf.f && fwrite(d->logits, sizeof(float), nv, d->lf.f) != nv)
        return output_write_error(e, d->o->logits_out, "the logits");
    return RB_OK;
}

/* A device fault in any session (GPU sessions record it; CPU sessions cannot fail). */
static rb_status sessions_status(const decode_run *d, rb_err *e) {
    rb_status st = model_session_status(d->main_s, e);
    for (int c = 0; c < d->n_cells && !st; c++)
        if (d->cells[c].s) st = model_session_status(d->cells[c].s, e);
    return st;
}

/* The prompt through the trajectory and every teacher-forced session: batched
 * (model_session_prefill, bit-identical to the token-by-token forward) unless each prompt
 * token's logits (--logits-out) or q/k/v (--record) are written. */
static rb_status run_prompt(decode_run *d, rb_err *e) {
    if (!d->lf.f && !d->rec.w) {
        model_session_prefill(d->main_s, d->ids, d->n_prompt, 0, d->logits);
        /* the prompt is dense in every cell: they need its keys, not its logits */
        for (int c = 0; c < d->n_cells; c++)
            if (d->cells[c].s) model_session_prefill(d->cells[c].s, d->ids, d->n_prompt, 0, NULL);
        progress_add(d->bar, d->n_prompt);
        return sessions_status(d, e);
    }
    for (int i = 0; i < d->n_prompt; i++) {
        int want = d->lf.f || i == d->n_prompt - 1;
        model_session_forward(d->main_s, d->ids[i], i, 1, want ? d->logits : NULL);
        rb_status st = model_session_status(d->main_s, e);
        if (st || (st = write_logits(d, e)) || (st = recorder_add(&d->rec, d->main_s, e)))
            return st;
        /* the prompt is dense in every cell: they need its keys, not its logits */
        for (int c = 0; c < d->n_cells; c++)
            if (d->cells[c].s) model_session_forward(d->cells[c].s, d->ids[i], i, 1, NULL);
        progress_add(d->bar, 1);
        if ((st = sessions_status(d, e))) return st;
    }
    return RB_OK;
}

/* Teacher-forced cells: the same token through each cell's session, scored against the
 * trajectory (token_match: same greedy choice; kl: KL(dense || cell)). */
static rb_status step_cells(decode_run *d, int next, int pos, rb_err *e) {
    int nv = d->hp->n_vocab, dense_top = model_argmax(d->logits, nv);
    for (int c = 0; c < d->n_cells; c++) {
        decode_cell *dc = &d->cells[c];
        model_session_forward(dc->s, next, pos, 0, dc->logits);
        rb_status st = model_session_status(dc->s, e);
        if (st) return st;
        int t = dc->run.T;
        run_record(&dc->run, dc->s, d->hp, pos);
        dc->run.token_match[t] = model_argmax(dc->logits, nv) == dense_top;
        dc->run.kl[t] = (float)model_kl(d->logits, dc->logits, nv);
    }
    return RB_OK;
}

/* Generate until EOS or --max-tokens, streaming the text unless --quiet. */
static rb_status run_generation(decode_run *d, rb_err *e) {
    const decode_opts *o = d->o;
    uint64_t rng = (uint64_t)o->seed;
    for (d->n_gen = 0; d->n_gen < o->max_tokens;) {
        int next = model_sample(d->logits, d->hp->n_vocab, o->temperature, uniform01(&rng));
        int pos = d->n_prompt + d->n_gen;
        d->ids[pos] = next;
        d->n_gen++;
        if (!o->quiet && !tokenizer_is_eog(d->tok, next)) {
            size_t len = 0;
            const char *piece = tokenizer_decode_token(d->tok, next, &len);
            if (piece && len) fwrite(piece, 1, len, stdout);
            fflush(stdout);
        }
        model_session_forward(d->main_s, next, pos, 0, d->logits);
        rb_status st = model_session_status(d->main_s, e);
        if (st || (st = write_logits(d, e)) || (st = recorder_add(&d->rec, d->main_s, e)))
            return st;
        if (o->teacher_forced) {
            if ((st = step_cells(d, next, pos, e))) return st;
        } else {
            run_record(&d->cells[0].run, d->main_s, d->hp, pos);
        }
        progress_add(d->bar, 1);
        if (tokenizer_is_eog(d->tok, next)) break;
    }
    if (!o->quiet) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    return RB_OK;
}

/* Complete the outputs: the trace with its tokens and text, the logits, the results. */
static rb_status finish_outputs(decode_run *d, rb_err *e) {
    rb_status st;
    if (d->rec.w) {
        char *text = NULL;
        int n = d->n_prompt + d->n_gen;
        int skip_bos = d->ids[0] == tokenizer_bos(d->tok) && d->n_prompt > 0;
        if ((st = recorder_flush(&d->rec, e)) ||
            (st = trace_writer_set_tokens(d->rec.w, d->ids, n, e)) ||
            /* the text without a leading BOS, which would decode to its control text */
            (st = tokenizer_decode(d->tok, d->ids + skip_bos, n - skip_bos, &text, NULL, e)) ||
            (st = trace_writer_set_text(d->rec.w, text, e))) {
            free(text);
            return st;
        }
        free(text);
        st = trace_writer_finish(d->rec.w, e);
        d->rec.w = NULL;
        if (st) return st;
    }
    if (d->lf.f && (st = output_text_close(&d->lf, RB_OK, e))) return st;
    if (d->rw) {
        st = results_fill(d->rw, d->cells, d->n_cells, e);
        d->rw = NULL;
        if (st) return st;
    }
    return RB_OK;
}

static void decode_run_free(decode_run *d) {
    results_abort(d->rw);
    progress_destroy(d->bar);
    output_text_close(&d->lf, RB_EINPUT, NULL); /* removes an unfinished one */
    recorder_free(&d->rec);
    for (int c = 0; c < d->n_cells; c++) {
        model_session_destroy(d->cells[c].s);
        results_run_free(&d->cells[c].run);
        free(d->cells[c].logits);
        free(d->cells[c].c.params_json);
    }
    free(d->cells);
    model_session_destroy(d->main_s);
    free(d->logits);
    free(d->ids);
    tokenizer_destroy(d->tok);
    model_destroy(d->m);
}

static rb_status run_decode(const decode_opts *o, rb_err *e) {
    decode_run d;
    memset(&d, 0, sizeof d);
    d.o = o;
    rb_status st = model_load(o->model, o->threads, &d.m, e);
    if (st) return st;
    d.hp = model_get_hparams(d.m);
    model_set_exact(d.m, o->exact);
    if ((st = model_use_device(d.m, o->device, e))) goto done;
    if ((st = tokenizer_load(model_gguf(d.m), &d.tok, e)) ||
        (st = prompt_ids(o, d.m, d.tok, &d.ids, &d.n_prompt, e)))
        goto done;
    if ((int64_t)d.n_prompt + o->max_tokens > d.hp->n_ctx_train) {
        st = rb_fail(e, RB_EINPUT, "--max-tokens", "prompt (%d tokens) + %d exceeds the model's "
                     "context length %d", d.n_prompt, o->max_tokens, d.hp->n_ctx_train);
        goto done;
    }
    d.ids = rb_realloc(d.ids, (size_t)(d.n_prompt + o->max_tokens) * sizeof(int32_t));
    if ((st = make_sessions(&d, e)) || (st = open_outputs(&d, e))) goto done;
    d.logits = rb_malloc((size_t)d.hp->n_vocab * sizeof(float));
    /* the text is the progress when it is printed; a bar otherwise (terminal only) */
    if (o->quiet) d.bar = progress_create("decode", d.n_prompt + o->max_tokens);
    if ((st = run_prompt(&d, e)) || (st = run_generation(&d, e))) goto done;
    progress_destroy(d.bar);
    d.bar = NULL;
    st = finish_outputs(&d, e);
done:
    decode_run_free(&d);
    return st;
}

static const char usage[] =
    "--model M.gguf (--prompt TEXT | --prompt-file F | --prompt-tokens IDS)\n"
    "                        --max-tokens N [--temperature T --seed S] [--policy P --budget L]\n"
    "                        [--param k=v ...] [--page-size 16] [--dense-layers 2] [--threads N]\n"
    "                        [--record TRACE.h5 [--record-dtype f16|f32]] [--out RESULTS.h5]\n"
    "                        [--teacher-forced --policies a,b --budgets L1,L2] [--logits-out F]\n"
    "                        [--device cpu|cuda]\n"
    "Decode a GGUF model (gemma3, qwen2, llama) token by token; the policy manages the KV\n"
    "cache of every global layer past the first --dense-layers (sliding-window layers keep\n"
    "their window). Text streams to stdout; greedy unless --temperature > 0.";

int cmd_decode(int argc, char **argv) {
    decode_opts o = {.policy = "dense", .record_dtype = "f16", .max_tokens = 64, .device_name = "cpu",
                     .page_size = 16, .dense_layers = 2, .threads = 1, .seed = 0};
    int help = 0, n_pos = 0;
    arg_spec specs[] = {
        {"model", ARG_STR, &o.model, "M.gguf", "GGUF model file (gemma3, qwen2, llama)"},
        {"prompt", ARG_STR, &o.prompt, "TEXT", "prompt text"},
        {"prompt-file", ARG_STR, &o.prompt_file, "F", "prompt text from a file"},
        {"prompt-tokens", ARG_STR, &o.prompt_tokens, "IDS", "prompt as token ids (1,2,3), BOS included"},
        {"max-tokens", ARG_INT_IN(&o.max_tokens, 1, INT_MAX), "N", "tokens to generate (default 64)"},
        {"temperature", ARG_FLOAT, &o.temperature, "T", "sampling temperature (0 = greedy, default)"},
        {"seed", ARG_I64_IN(&o.seed, 0, INT64_MAX), "S", "sampling and policy seed, >= 0 (default 0)"},
        {"policy", ARG_STR, &o.policy, "P", "KV-cache policy (default dense)"},
        {"budget", ARG_INT_IN(&o.budget, 0, INT_MAX), "L", "cache budget in tokens per KV head"},
        {"param", ARG_MULTI, &o.params, "k=v", "policy parameter (policy.key=value), repeatable"},
        {"page-size", ARG_INT_IN(&o.page_size, 1, 4096), "P", "page size (default 16)"},
        {"dense-layers", ARG_INT_IN(&o.dense_layers, 0, TRACE_MAX_LAYERS), "N", "leading layers kept dense (default 2)"},
        {"threads", ARG_INT_IN(&o.threads, 0, 256), "N", "matrix-vector threads (default 1; 0 = all cores)"},
        {"record", ARG_STR, &o.record, "TRACE.h5", "record a trace v1 of q, k, v"},
        {"record-dtype", ARG_STR, &o.record_dtype, "f16|f32", "trace element type (default f16)"},
        {"out", ARG_STR, &o.out, "RESULTS.h5", "per-step results file"},
        {"teacher-forced", ARG_FLAG, &o.teacher_forced, NULL,
         "decode dense; run every (policy, budget) cell on the dense tokens"},
        {"policies", ARG_STR, &o.policies, "a,b", "teacher-forced cells: policies"},
        {"budgets", ARG_STR, &o.budgets, "L1,L2", "teacher-forced cells: budgets"},
        {"logits-out", ARG_STR, &o.logits_out, "F", "raw float32 logits of every position [n, vocab]"},
        {"quiet", ARG_FLAG, &o.quiet, NULL, "do not print the generated text"},
        {"device", ARG_STR, &o.device_name, "cpu|cuda",
         "where the forward, the KV cache and the policies run (default cpu); cuda runs dense, "
         "quest and raas (window on sliding-window layers); recall and out_err are CPU-only"},
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
    else if (model_device_parse(o.device_name, &o.device, &e)) st = RB_EINPUT;
    else if (o.device == MODEL_DEVICE_CUDA && o.exact)
        st = rb_fail(&e, RB_EINPUT, "--exact", "runs on the CPU only (not with --device cuda)");
    else if (!(o.temperature >= 0) || !isfinite(o.temperature))
        st = rb_fail(&e, RB_EINPUT, "--temperature", "must be >= 0");
    else if (o.teacher_forced && (!o.policies || !o.budgets))
        st = rb_fail(&e, RB_EINPUT, "--teacher-forced", "needs --policies and --budgets");
    else if (!o.teacher_forced && (o.policies || o.budgets))
        st = rb_fail(&e, RB_EINPUT, "--policies", "only with --teacher-forced");
    else if (!o.teacher_forced) {
        /* the policy's name first; then only a budget-free policy (dense) may go without a
         * budget */
        const policy_ops *ops = policy_find_choice(o.policy, &e);
        if (!ops) st = RB_EINPUT;
        else if (o.budget == 0 && !(ops->flags & POLICY_BUDGET_FREE))
            st = rb_fail(&e, RB_EINPUT, "--budget", "required with --policy %s", o.policy);
    }
    if (!st) {
        /* before any work: no output may be an input (the mapped model, truncated, would
         * kill the process with SIGBUS) or a directory or a device */
        const char *outs[] = {o.record, o.out, o.logits_out};
        const char *ins[] = {o.model, o.prompt_file};
        st = output_check_all(outs, 3, ins, 2, &e);
    }
    if (!st) st = run_decode(&o, &e);
    return st ? rb_err_print(&e) : 0;
}
