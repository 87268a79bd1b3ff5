/* eval.c: the graded evaluation engine (eval.h). */
#include "eval.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "model.h"
#include "progress.h"
#include "tokenizer.h"

typedef struct shared {
    const eval_config *c;
    pthread_mutex_t lock; /* the task queue, the callback, the first error */
    int next;
    rb_status status;
    rb_err err;
    progress *bar;
} shared;

/* A growing text buffer. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void text_add(text *t, const char *p, size_t n) {
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->s = rb_realloc(t->s, t->cap);
    }
    memcpy(t->s + t->n, p, n);
    t->n += n;
    t->s[t->n] = 0;
}

/* Where the first stop sequence begins in t, looking only where the last piece (n_new bytes)
 * can have completed one; -1 when none has. */
static long stop_at(const eval_config *c, const text *t, size_t n_new) {
    long best = -1;
    for (int i = 0; i < c->n_stop; i++) {
        size_t len = strlen(c->stop[i]);
        size_t from = t->n > n_new + len ? t->n - n_new - len : 0;
        const char *hit = strstr(t->s + from, c->stop[i]);
        if (hit && (best < 0 || hit - t->s < best)) best = hit - t->s;
    }
    return best;
}

/* Token slots resident per KV head on the layers where the policy acts, averaged. */
static double resident_tokens(const model_session *s, const model_hparams *hp,
                              int dense_layers) {
    double sum = 0;
    int n = 0;
    int64_t per_token = (int64_t)hp->n_kv_heads * hp->head_dim * 2 /* K and V */ * 2 /* fp16 */;
    for (int il = 0; il < hp->n_layers; il++) {
        if (cells_layer_role(il, hp->sliding_window[il], dense_layers) != LAYER_POLICY) continue;
        sum += (double)model_session_layer_kv_bytes(s, il) / per_token;
        n++;
    }
    return n ? sum / n : 0;
}

/* The prompt of a task: captured once on the CPU and loaded into each cell's session, or, on
 * the GPU, its token ids, which each cell's session runs itself (a device prefill is cheaper
 * than moving the captured keys and values there). */
typedef struct task_prompt {
    model_prompt cap; /* CPU */
    const int32_t *ids;
    int n;
} task_prompt;

/* One cell's free-running decode of the task's prompt. */
static rb_status decode_cell(const eval_config *c, const model *m, const tokenizer *tok,
                             const cell *cl, const task_prompt *p, const task *t,
                             eval_result *r, rb_err *e) {
    const model_hparams *hp = model_get_hparams(m);
    memset(r, 0, sizeof *r);
    int64_t t0 = rb_now_ns();
    model_cache_config cc = {.cell = cl, .page_size = c->page_size,
                             .dense_layers = c->dense_layers,
                             .max_tokens = p->n + c->max_tokens + 1, .seed = c->seed,
                             .device = c->device};
    model_session *s;
    rb_status st = model_session_create(m, &cc, &s, e);
    if (st) return st;
    float *logits = rb_malloc(sizeof(float) * (size_t)hp->n_vocab);
    if (c->device == MODEL_DEVICE_CPU) {
        model_session_load_prompt(s, &p->cap);
        memcpy(logits, p->cap.logits, sizeof(float) * (size_t)hp->n_vocab);
    } else {
        model_session_prefill(s, p->ids, p->n, 0, logits);
    }
    if ((st = model_session_status(s, e))) {
        free(logits);
        model_session_destroy(s);
        return st;
    }
    text out = {0};
    text_add(&out, "", 0);
    double resident = 0;
    r->stop = EVAL_STOP_MAX;
    for (int i = 0; i < c->max_tokens; i++) {
        int next = model_argmax(logits, hp->n_vocab);
        if (tokenizer_is_eog(tok, next)) {
            r->stop = EVAL_STOP_EOS;
            break;
        }
        size_t len = 0;
        const char *piece = tokenizer_decode_token(tok, next, &len);
        if (piece && len) text_add(&out, piece, len);
        r->n_generated++;
        long cut = stop_at(c, &out, len);
        if (cut >= 0) {
            out.s[cut] = 0, out.n = (size_t)cut;
            r->stop = EVAL_STOP_SEQUENCE;
            break;
        }
        if (answer_complete(out.s, out.n)) {
            r->stop = EVAL_STOP_ANSWER;
            break;
        }
        if (i + 1 == c->max_tokens) break; /* its logits would not be used */
        model_session_forward(s, next, p->n + i, 0, logits);
        if ((st = model_session_status(s, e))) break;
        int64_t kv = model_session_kv_bytes(s);
        if (kv > r->peak_kv_bytes) r->peak_kv_bytes = kv;
        resident += resident_tokens(s, hp, c->dense_layers);
    }
    if (st) {
        free(out.s);
        free(logits);
        model_session_destroy(s);
        return st;
    }
    if (r->n_generated > 1) r->mean_resident_tokens = resident / (r->n_generated - 1);
    else r->mean_resident_tokens = resident_tokens(s, hp, c->dense_layers);
    if (!r->peak_kv_bytes) r->peak_kv_bytes = model_session_kv_bytes(s);
    answer_value v;
    if (answer_extract(out.s, out.n, &v, NULL) != ANSWER_NONE) {
        r->answered = 1;
        answer_format(v, r->extracted, sizeof r->extracted);
        r->correct = answer_equal(v, t->gold);
    }
    r->generated = out.s;
    free(logits);
    model_session_destroy(s);
    r->wall_s = (rb_now_ns() - t0) * 1e-9;
    return RB_OK;
}

/* Every cell of one task: the prompt captured once, then each cell's decode. */
static rb_status run_task(const eval_config *c, const model *m, const tokenizer *tok, int ti,
                          eval_result *res, rb_err *e) {
    const task *t = &c->tasks->t[ti];
    const model_hparams *hp = model_get_hparams(m);
    char *prompt = tasks_prompt(t, c->template_text);
    int32_t *ids = NULL;
    int n = 0;
    rb_status st = tokenizer_encode(tok, prompt, tokenizer_add_bos(tok), &ids, &n, e);
    free(prompt);
    if (st) return st;
    char what[160];
    snprintf(what, sizeof what, "task %.100s", t->id);
    if (n < 1) st = rb_fail(e, RB_EINPUT, what, "the prompt has no tokens");
    else if ((int64_t)n + c->max_tokens + 1 > hp->n_ctx_train)
        st = rb_fail(e, RB_EINPUT, what, "prompt (%d tokens) + --max-tokens %d exceeds the "
                     "model's context length %d", n, c->max_tokens, hp->n_ctx_train);
    task_prompt p = {.ids = ids, .n = n};
    if (!st && (c->device != MODEL_DEVICE_CPU || !(st = model_prompt_capture(m, ids, n, &p.cap, e)))) {
        for (int i = 0; i < c->n_cells && !st; i++) {
            int same = -1; /* a budget-free policy decodes the same at every budget: once */
            for (int j = 0; j < i && same < 0; j++)
                if (cells_same_work(&c->cells[i], &c->cells[j])) same = j;
            if (same < 0) {
                st = decode_cell(c, m, tok, &c->cells[i], &p, t, &res[i], e);
            } else {
                res[i] = res[same];
                res[i].generated = rb_strdup(res[same].generated);
            }
        }
        model_prompt_free(&p.cap);
    }
    free(ids);
    return st;
}

static void *worker(void *arg) {
    shared *x = arg;
    const eval_config *c = x->c;
    rb_err e = {0};
    model *m = NULL;
    tokenizer *tok = NULL;
    eval_result *res = rb_calloc((size_t)c->n_cells, sizeof *res);
    rb_status st = model_load(c->model_path, 1, &m, &e);
    if (!st) st = model_use_device(m, c->device, &e);
    if (!st) st = tokenizer_load(model_gguf(m), &tok, &e);
    for (;;) {
        pthread_mutex_lock(&x->lock);
        if (st && !x->status) x->status = st, x->err = e;
        int ti = -1;
        while (!x->status && x->next < c->tasks->n && ti < 0) {
            int i = x->next++;
            if (!c->todo || c->todo[i]) ti = i;
        }
        pthread_mutex_unlock(&x->lock);
        if (ti < 0) break;
        st = run_task(c, m, tok, ti, res, &e);
        pthread_mutex_lock(&x->lock);
        if (!st && !x->status && c->on_task) st = c->on_task(c->ctx, ti, res, &e);
        if (st && !x->status) x->status = st, x->err = e;
        progress_add(x->bar, 1);
        pthread_mutex_unlock(&x->lock);
        for (int i = 0; i < c->n_cells; i++) eval_result_free(&res[i]);
    }
    free(res);
    tokenizer_destroy(tok);
    model_destroy(m);
    return NULL;
}

rb_status eval_run(const eval_config *c, rb_err *e) {
    shared x = {.c = c};
    pthread_mutex_init(&x.lock, NULL);
    int todo = 0;
    for (int i = 0; i < c->tasks->n; i++) todo += !c->todo || c->todo[i];
    if (c->progress && todo) x.bar = progress_create("eval", todo);
    int n = c->threads < 1 ? 1 : c->threads > todo ? (todo ? todo : 1) : c->threads;
    pthread_t *th = rb_malloc(sizeof(pthread_t) * (size_t)n);
    for (int i = 1; i < n; i++) RB_CHECK(pthread_create(&th[i], NULL, worker, &x) == 0);
    worker(&x);
    for (int i = 1; i < n; i++) pthread_join(th[i], NULL);
    free(th);
    progress_destroy(x.bar);
    pthread_mutex_destroy(&x.lock);
    if (x.status && e) *e = x.err;
    return x.status;
}

void eval_result_free(eval_result *r) {
    free(r->generated);
    memset(r, 0, sizeof *r);
}

void eval_wilson(int correct, int n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    const double z = 1.96;
    double p = (double)correct / n, z2 = z * z / n;
    double centre = (p + z2 / 2) / (1 + z2);
    double half = z * sqrt(p * (1 - p) / n + z2 / (4 * n)) / (1 + z2);
    *lo = centre - half < 0 ? 0 : centre - half;
    *hi = centre + half > 1 ? 1 : centre + half;
}
