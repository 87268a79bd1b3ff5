/* engine.c: one pass over a trace serves every (policy, budget) cell (see engine.h). */
#define _POSIX_C_SOURCE 200809L
#include "engine.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "attn.h"
#include "attn_causal_block.h"
#include "metrics.h"
#include "progress.h"
#include "stepper.h"

typedef struct shared_ctx {
    const engine_config *c;
    const trace_meta *m;
    results_run *runs;
    int T;                     /* decode steps replayed */
    int latency_every;         /* steps attended for real and timed: every this many */
    int full_ref;              /* whole-range sets from the reference (ENGINE_FULL_REFERENCE) */
    int64_t *kv, *meta, *lat;  /* [n_cells, n_stored, T] per-layer series, summed at the end */
    const attn_backend *be;    /* the steppers' */
    const attn_backend *ref_be; /* the dense reference's */
    int block;                 /* the reference as causal blocks (ENGINE_REF_BLOCK) */
    int W;                     /* steps per chunk */
    pthread_mutex_t lock;      /* trace reads (HDF5 is not thread-safe), queue, stats */
    int next_slot;
    rb_status status;
    rb_err err;
    engine_stats stats;
    progress *bar;
} shared_ctx;

static size_t series_at(const shared_ctx *x, int cell, int slot, int ti) {
    return ((size_t)cell * x->m->n_stored + slot) * x->T + ti;
}

static layer_role role_of(const shared_ctx *x, int slot) {
    return cells_layer_role(x->m->layers[slot], x->m->sliding_window[slot], x->c->dense_layers);
}

/* The stepper of a cell on a layer; cell NULL on a forced (dense or window) layer. */
static rb_status make_stepper(const shared_ctx *x, int slot, const cell *cell, stepper **out,
                              rb_err *e) {
    const trace_meta *m = x->m;
    const engine_config *c = x->c;
    layer_policy lp;
    rb_status s = cells_layer_policy(cell ? LAYER_POLICY : role_of(x, slot), cell,
                                     m->sliding_window[slot], m->n_tokens, &lp, e);
    if (s) return s;
    policy_config pc = {
        .layer = m->layers[slot], .n_q_heads = m->n_q_heads, .n_kv_heads = m->n_kv_heads,
        .head_dim = m->head_dim, .budget = lp.budget, .page_size = c->page_size,
        .max_tokens = m->n_tokens, .attn_scale = m->attn_scale, .seed = c->seed,
        .params = &lp.params, .separator = c->separator,
    };
    return stepper_create(lp.ops, &pc, c->elem_bytes, x->be, out, e);
}

/* The reference of a chunk of W consecutive steps is computed first, then each cell runs
 * the chunk: a cell's pools stay in cache across W steps instead of every cell's pools being
 * walked every step (20 cells over a 3k-token layer hold ~25 MB, more than the last-level
 * cache of the dev VM). Entry w of the reference arrays is step c0 + w of the chunk; where
 * step w's logits and probabilities lie depends on the path (block: [Hq, W, N] as
 * attn_causal_chunk writes them; steps: [W, Hq, n] as dense_heads writes them), so the
 * steppers and the scoring read them through lg_at, pb_at and stride_at. */
typedef struct layer_buf {
    float *q, *k, *v;            /* [N, heads, d] */
    int W;                       /* steps per chunk */
    float *logits, *lse, *ostar; /* W * Hq * N floats, [W, Hq], [W, Hq, d] */
    float *out;                  /* [Hq, d] a cell's output */
    float *probs;                /* W * Hq * N floats: dense probabilities exp(logit - lse) */
    float *work;                 /* attn_chunk_work_floats (block path) */
    const float **lg_at, **pb_at; /* [W]: step w's logits / probabilities, head 0's entry of
                                     position j at index j - j0 */
    int *stride_at;              /* [W]: their row stride (between query heads) */
    step_metrics sc;             /* a stepper's last step, scored */
} layer_buf;

/* Steps per chunk of the per-step path: the reference arrays (logits and probs) within
 * ~8 MiB, 1..32 (what the engine has always used; the results do not depend on it). */
static int chunk_steps(int H, int N) {
    double per_step = 2.0 * sizeof(float) * (double)H * N;
    int W = (int)((8 << 20) / per_step);
    return W < 1 ? 1 : W > 32 ? 32 : W;
}

/* Steps per chunk of the block path: the products are [G*W, d] x [d, n], so W sets how
 * well sgemm runs (build/bench_causal_block on the 2-core Xeon dev VM, 8 q / 2 kv heads,
 * d 64, N 8k-16k: W = 16..128 within the VM's noise of each other, 2.2-2.5x the per-step
 * path), and the reference arrays (2 W Hq N floats per thread) what memory a long trace
 * costs: 32, fewer (down to 8) where the arrays would pass 64 MiB (a 32-head layer of 16k
 * tokens). */
static int block_chunk_steps(int H, int N) {
    double per_step = 2.0 * sizeof(float) * (double)H * N;
    int W = (int)((64 << 20) / per_step);
    return W < 8 ? 8 : W > 32 ? 32 : W;
}


/* Write a step's scores into a run's columns (every cell that shares the stepper). */
static void record_score(const trace_meta *m, results_run *r, int slot, int ti,
                         const stepper *s, const step_metrics *sc) {
    int H = m->n_q_heads;
    if (r->recall_head)
        for (int h = 0; h < H; h++) {
            size_t i = ((size_t)ti * r->n_layers + slot) * H + h;
            r->recall_head[i] = (float)sc->recall[h], r->out_err_head[i] = (float)sc->out_err[h];
        }
    if (r->selection) {
        const policy_selection *sel = stepper_selection(s);
        for (int h = 0; h < H; h++) {
            int row = stepper_set_row(sel, h);
            const int32_t *pos = sel->pos + (size_t)row * sel->cap;
            uint8_t *dump = r->selection[slot] + ((size_t)ti * H + h) * m->n_tokens;
            for (int i = 0; i < sel->n[row]; i++) dump[pos[i]] = 1;
        }
    }
    size_t i = (size_t)ti * r->n_layers + slot;
    r->recall[i] = (float)metrics_mean(sc->recall, H);
    r->out_err[i] = (float)metrics_mean(sc->out_err, H);
    r->attended[i] = (float)sc->attended;
}

/* Cells that would compute the same thing share one stepper, its figures credited to each:
 * on forced layers (dense or windowed) every cell; elsewhere the budgets of a budget-free
 * policy (dense) with the same parameters. st_of [n_cells]: cell -> stepper; cell_of: stepper
 * -> its first cell. Returns the number of steppers. */
static int share_steppers(const engine_config *c, int forced, int *st_of, int *cell_of) {
    int n_st = 0;
    for (int i = 0; i < c->n_cells; i++) {
        st_of[i] = -1;
        for (int j = 0; j < i && st_of[i] < 0; j++)
            if (forced || cells_same_work(&c->cells[i], &c->cells[j])) st_of[i] = st_of[j];
        if (st_of[i] < 0) cell_of[n_st] = i, st_of[i] = n_st++;
    }
    return n_st;
}

/* The positions step t attends: j0..t (n of them), the window's on sliding-window layers. */
static int attended_range(int t, int win, int *j0) {
    int n = win > 0 && t + 1 > win ? win : t + 1;
    *j0 = t + 1 - n;
    return n;
}

/* The reference of steps c0..c1 (decode indices): every head together, each token row of K
 * and V read once, then the dense probabilities once per step, so every cell's recall is a
 * gather. Logits are laid out [H, n] (row stride n, the step's own n), which is what the
 * steppers are told. */
static void chunk_reference(const shared_ctx *x, int slot, layer_buf *b, int c0, int c1,
                            int64_t *dense_ns, int64_t *metrics_ns) {
    const trace_meta *m = x->m;
    int N = m->n_prefill + x->T, H = m->n_q_heads, Hkv = m->n_kv_heads, d = m->head_dim;
    size_t krow = (size_t)Hkv * d, qrow = (size_t)H * d;
    if (x->block) {
        /* One causal block: the chunk's query rows against keys 0..t0+W-1. The arrays are
         * laid out for the chunk's own W, so a short last chunk is as dense as a full one. */
        int W = c1 - c0, t0 = m->n_prefill + c0, win = m->sliding_window[slot];
        attn_chunk ch = {.q = b->q + (size_t)t0 * qrow, .k = b->k, .v = b->v, .W = W, .t0 = t0,
                         .window = win, .Hq = H, .Hkv = Hkv, .d = d, .scale = m->attn_scale,
                         .ldn = N, .logits = b->logits, .probs = b->probs, .lse = b->lse,
                         .out = b->ostar, .work = b->work};
        int64_t a = rb_now_ns();
        x->ref_be->causal_chunk(&ch);
        *dense_ns += rb_now_ns() - a;
        for (int w = 0; w < W; w++) {
            int j0;
            attended_range(t0 + w, win, &j0);
            b->lg_at[w] = b->logits + (size_t)w * N + j0;
            b->pb_at[w] = b->probs + (size_t)w * N + j0;
            b->stride_at[w] = W * N;
        }
        return;
    }
    for (int ti = c0; ti < c1; ti++) {
        int t = m->n_prefill + ti, w = ti - c0, j0;
        int n = attended_range(t, m->sliding_window[slot], &j0);
        float *lg = b->logits + (size_t)w * H * N, *pb = b->probs + (size_t)w * H * N;
        int64_t a = rb_now_ns();
        x->ref_be->dense_heads(b->q + (size_t)t * qrow, H, Hkv, b->k + (size_t)j0 * krow,
                               b->v + (size_t)j0 * krow, n, d, (int)krow, m->attn_scale, lg,
                               b->lse + (size_t)w * H, b->ostar + (size_t)w * H * d);
        int64_t bb = rb_now_ns();
        *dense_ns += bb - a;
        for (int h = 0; h < H; h++)
            attn_exp_shift(lg + (size_t)h * n, b->lse[(size_t)w * H + h], n, pb + (size_t)h * n);
        *metrics_ns += rb_now_ns() - bb;
        b->lg_at[w] = lg, b->pb_at[w] = pb, b->stride_at[w] = n;
    }
}

/* Whether the k-th timed step times whole-range sets (ENGINE_FULL_REFERENCE): one in
 * ENGINE_FULL_TIMED_EVERY, by a multiplicative hash of k, not every 16th: a fixed stride
 * would land on the same steps of every chunk (every second one a chunk's first, colder
 * step, with 32-step chunks), the hash lands on every step of a chunk alike. The same
 * steps on every layer and for every chunk size. */
static int full_sampled(int k) {
    uint32_t h = (uint32_t)k * 2654435761u; /* Knuth's: consecutive k spread over 2^32 */
    return (uint64_t)h * ENGINE_FULL_TIMED_EVERY < ((uint64_t)1 << 32);
}

/* Stepper i over steps c0..c1: each step attended for real and timed (every latency_every-th)
 * or from the shared reference, scored, and its figures written to every cell it serves. */
static void step_chunk(shared_ctx *x, int slot, layer_buf *b, stepper *st, int i,
                       const int *st_of, int c0, int c1, int64_t *cells_ns, int64_t *metrics_ns,
                       int64_t *st_ns) {
    const trace_meta *m = x->m;
    int H = m->n_q_heads, d = m->head_dim;
    size_t krow = (size_t)m->n_kv_heads * d, qrow = (size_t)H * d;
    for (int ti = c0; ti < c1; ti++) {
        int t = m->n_prefill + ti, w = ti - c0, j0;
        attended_range(t, m->sliding_window[slot], &j0);
        int timed = ti % x->latency_every == 0, stride = b->stride_at[w];
        const float *qt = b->q + (size_t)t * qrow, *lg = b->lg_at[w];
        const float *lse = b->lse + (size_t)w * H, *pb = b->pb_at[w];
        const float *kt = b->k + (size_t)t * krow, *vt = b->v + (size_t)t * krow;
        stepper_ref ref = {.logits = lg, .lse = lse, .probs = pb, .stride = stride, .j0 = j0,
                           .out = x->full_ref ? b->ostar + (size_t)w * H * d : NULL};
        /* A sampled whole-range step is timed with its rows warmed (the steps since the
         * last sample read none), except at a chunk's first step: every cell and the
         * reference ran since this stepper's previous step, so every-step timing finds
         * them cold there too. */
        stepper_mode mode = !timed         ? STEPPER_CACHED
                            : !x->full_ref ? STEPPER_ATTEND
                            : !full_sampled(ti / x->latency_every) ? STEPPER_FULL_CACHED
                            : ti > c0 ? STEPPER_FULL_WARM : STEPPER_ATTEND;
        int64_t c0_ns = rb_now_ns();
        stepper_step_ref(st, t, qt, kt, vt, &ref, mode, b->out);
        int64_t c1_ns = rb_now_ns();
        *cells_ns += c1_ns - c0_ns;
        int64_t lat = stepper_last_step_ns(st), kvb = stepper_kv_bytes(st),
                mb = stepper_meta_bytes(st);
        metrics_score_step(stepper_selection(st), b->out, pb, stride, j0,
                           b->ostar + (size_t)w * H * d, d, &b->sc);
        for (int cell = 0; cell < x->c->n_cells; cell++) {
            if (st_of[cell] != i) continue;
            size_t at = series_at(x, cell, slot, ti);
            x->lat[at] = lat, x->kv[at] = kvb, x->meta[at] = mb;
            record_score(m, &x->runs[cell], slot, ti, st, &b->sc);
        }
        int64_t c2_ns = rb_now_ns();
        *metrics_ns += c2_ns - c1_ns;
        *st_ns += c2_ns - c0_ns;
    }
}

static rb_status run_layer(shared_ctx *x, int slot, layer_buf *b, rb_err *e) {
    const trace_meta *m = x->m;
    const engine_config *c = x->c;
    int N = m->n_prefill + x->T, krow = m->n_kv_heads * m->head_dim;
    rb_status s = RB_OK;
    int64_t t0 = rb_now_ns();
    pthread_mutex_lock(&x->lock);
    if ((s = trace_read(c->trace, slot, TRACE_Q, 0, N, b->q, e)) == RB_OK &&
        (s = trace_read(c->trace, slot, TRACE_K, 0, N, b->k, e)) == RB_OK)
        s = trace_read(c->trace, slot, TRACE_V, 0, N, b->v, e);
    pthread_mutex_unlock(&x->lock);
    if (s) return s;
    int64_t read_ns = rb_now_ns() - t0, dense_ns = 0, cells_ns = 0, metrics_ns = 0;

    int forced = role_of(x, slot) != LAYER_POLICY;
    int *st_of = rb_malloc(sizeof(int) * (size_t)c->n_cells);
    int *cell_of = rb_malloc(sizeof(int) * (size_t)c->n_cells);
    int n_st = share_steppers(c, forced, st_of, cell_of);
    stepper **st = rb_calloc((size_t)n_st, sizeof *st);
    int64_t *st_ns = rb_calloc((size_t)n_st, sizeof *st_ns);
    for (int i = 0; i < n_st && !s; i++)
        s = make_stepper(x, slot, forced ? NULL : &c->cells[cell_of[i]], &st[i], e);
    if (!s)
        for (int i = 0; i < n_st; i++) stepper_prefill(st[i], m->n_prefill, b->q, b->k, b->v, NULL);
    for (int c0 = 0; c0 < x->T && !s; c0 += b->W) {
        int c1 = c0 + b->W < x->T ? c0 + b->W : x->T;
        chunk_reference(x, slot, b, c0, c1, &dense_ns, &metrics_ns);
        for (int i = 0; i < n_st; i++)
            step_chunk(x, slot, b, st[i], i, st_of, c0, c1, &cells_ns, &metrics_ns, &st_ns[i]);
        if (x->bar) progress_add(x->bar, c1 - c0);
    }
    for (int i = 0; i < n_st; i++) stepper_destroy(st[i]);
    pthread_mutex_lock(&x->lock);
    for (int i = 0; c->cell_ns && i < n_st; i++) c->cell_ns[cell_of[i]] += st_ns[i];
    x->stats.read_ns += read_ns, x->stats.dense_ns += dense_ns, x->stats.cells_ns += cells_ns;
    x->stats.metrics_ns += metrics_ns;
    /* K and V of every KV head streamed once per step over the attended range (per
     * chunk over the chunk's range with blocks); 4 d flops per query head and key. */
    for (int ti = 0; ti < x->T; ti++) {
        int j0, n = attended_range(m->n_prefill + ti, m->sliding_window[slot], &j0);
        x->stats.dense_flops += 4 * (int64_t)n * m->n_q_heads * m->head_dim;
        if (!x->block) x->stats.dense_bytes += (int64_t)n * krow * 2 * (int64_t)sizeof(float);
    }
    for (int c0 = 0; x->block && c0 < x->T; c0 += b->W) {
        int c1 = c0 + b->W < x->T ? c0 + b->W : x->T, j0;
        attended_range(m->n_prefill + c0, m->sliding_window[slot], &j0);
        x->stats.dense_bytes +=
            (int64_t)(m->n_prefill + c1 - j0) * krow * 2 * (int64_t)sizeof(float);
    }
    pthread_mutex_unlock(&x->lock);
    free(st), free(st_ns), free(st_of), free(cell_of);
    return s;
}

static void *worker(void *arg) {
    shared_ctx *x = arg;
    const trace_meta *m = x->m;
    int N = m->n_prefill + x->T, H = m->n_q_heads;
    layer_buf b;
    b.q = rb_malloc(sizeof(float) * (size_t)N * H * m->head_dim);
    b.k = rb_malloc(sizeof(float) * (size_t)N * m->n_kv_heads * m->head_dim);
    b.v = rb_malloc(sizeof(float) * (size_t)N * m->n_kv_heads * m->head_dim);
    b.W = x->W;
    b.logits = rb_malloc(sizeof(float) * (size_t)b.W * H * N);
    b.probs = rb_malloc(sizeof(float) * (size_t)b.W * H * N);
    b.work = x->block ? rb_malloc(sizeof(float) * attn_chunk_work_floats(b.W, H, m->head_dim))
                      : NULL;
    b.lg_at = rb_malloc(sizeof(float *) * (size_t)b.W);
    b.pb_at = rb_malloc(sizeof(float *) * (size_t)b.W);
    b.stride_at = rb_malloc(sizeof(int) * (size_t)b.W);
    b.lse = rb_malloc(sizeof(float) * (size_t)b.W * H);
    b.ostar = rb_malloc(sizeof(float) * (size_t)b.W * H * m->head_dim);
    b.out = rb_malloc(sizeof(float) * (size_t)H * m->head_dim);
    b.sc.recall = rb_malloc(sizeof(double) * (size_t)H);
    b.sc.out_err = rb_malloc(sizeof(double) * (size_t)H);
    for (;;) {
        pthread_mutex_lock(&x->lock);
        int slot = x->status ? m->n_stored : x->next_slot++;
        pthread_mutex_unlock(&x->lock);
        if (slot >= m->n_stored) break;
        rb_err e = {0};
        rb_status s = run_layer(x, slot, &b, &e);
        if (s) {
            pthread_mutex_lock(&x->lock);
            if (!x->status) x->status = s, x->err = e;
            pthread_mutex_unlock(&x->lock);
        }
    }
    free(b.q), free(b.k), free(b.v), free(b.logits), free(b.probs), free(b.lse);
    free(b.ostar), free(b.out), free(b.sc.recall), free(b.sc.out_err);
    free(b.work), free(b.lg_at), free(b.pb_at), free(b.stride_at);
    return NULL;
}

static void setup(shared_ctx *x, const engine_config *c) {
    memset(x, 0, sizeof *x);
    x->c = c;
    x->m = trace_get_meta(c->trace);
    int decode = x->m->n_tokens - x->m->n_prefill;
    x->T = c->n_steps > 0 && c->n_steps < decode ? c->n_steps : decode;
    x->latency_every = c->latency_every > 0 ? c->latency_every : 1;
    x->full_ref = c->full_sets == ENGINE_FULL_REFERENCE;
    x->be = c->backend ? c->backend : attn_backend_default();
    x->ref_be = c->ref_backend ? c->ref_backend : x->be;
    x->block = c->reference == ENGINE_REF_BLOCK;
    int N = x->m->n_prefill + x->T;
    x->W = c->chunk > 0 ? c->chunk
         : x->block ? block_chunk_steps(x->m->n_q_heads, N) : chunk_steps(x->m->n_q_heads, N);
    if (x->W > x->T) x->W = x->T > 0 ? x->T : 1;
}

rb_status engine_parse_reference(const char *s, engine_reference *out, rb_err *e) {
    if (!strcmp(s, "block")) *out = ENGINE_REF_BLOCK;
    else if (!strcmp(s, "steps")) *out = ENGINE_REF_STEPS;
    else return rb_fail(e, RB_EINPUT, "--reference", "must be block or steps, not '%s'", s);
    return RB_OK;
}

rb_status engine_parse_full_sets(const char *s, engine_full_sets *out, rb_err *e) {
    if (!strcmp(s, "reference")) *out = ENGINE_FULL_REFERENCE;
    else if (!strcmp(s, "attend")) *out = ENGINE_FULL_ATTEND;
    else return rb_fail(e, RB_EINPUT, "--full-sets", "must be reference or attend, not '%s'", s);
    return RB_OK;
}

rb_status engine_parse_device(const char *s, const trace_meta *m, const attn_backend **ref_be,
                              rb_err *e) {
    *ref_be = NULL;
    if (!strcmp(s, "cpu")) return RB_OK;
    if (strcmp(s, "cuda"))
        return rb_fail(e, RB_EINPUT, "--device", "must be cpu or cuda, not '%s'", s);
    const attn_backend *be = attn_backend_find("cuda");
    if (!be)
        return rb_fail(e, RB_EINPUT, "--device",
                       "cuda: not in this build (built without nvcc or with CUDA=0)");
    attn_shape sh = {.n_q_heads = m->n_q_heads, .n_kv_heads = m->n_kv_heads,
                     .head_dim = m->head_dim, .n_keys = m->n_tokens};
    if (!be->supports(&sh))
        return rb_fail(e, RB_EINPUT, "--device",
                       "cuda: no usable GPU, or the trace's shape (%d q / %d kv heads, head_dim "
                       "%d) is not one the CUDA kernels run", m->n_q_heads, m->n_kv_heads,
                       m->head_dim);
    *ref_be = be;
    return RB_OK;
}

rb_status engine_check_cells(const engine_config *c, rb_err *e) {
    shared_ctx x;
    setup(&x, c);
    rb_status s;
    for (int slot = 0; slot < x.m->n_stored; slot++) {
        if (role_of(&x, slot) != LAYER_POLICY) continue;
        for (int i = 0; i < c->n_cells; i++) {
            stepper *st;
            if ((s = make_stepper(&x, slot, &c->cells[i], &st, e))) return s;
            stepper_destroy(st);
        }
        break; /* every global layer has the same shapes */
    }
    return RB_OK;
}

rb_status engine_replay(const engine_config *c, results_run *runs, engine_stats *stats,
                        rb_err *e) {
    int64_t wall0 = rb_now_ns();
    shared_ctx x;
    setup(&x, c);
    rb_status s = engine_check_cells(c, e);
    if (s) return s;
    const trace_meta *m = x.m;
    int L = m->n_stored, T = x.T;
    x.runs = runs;
    run_facts facts = {
        .source = trace_path(c->trace), .page_size = c->page_size,
        .dense_layers = c->dense_layers, .latency_every = x.latency_every,
        .n_tokens = m->n_tokens, .n_prefill = m->n_prefill, .layers = m->layers,
        .sliding_window = m->sliding_window,
    };
    for (int i = 0; i < c->n_cells; i++) {
        results_run *r = &runs[i];
        cells_run_init(r, &c->cells[i], &facts, T, L, m->n_q_heads, c->per_head);
        if (c->dump_selection) {
            r->selection = rb_calloc((size_t)L, sizeof(uint8_t *));
            for (int l = 0; l < L; l++)
                r->selection[l] = rb_calloc((size_t)T * m->n_q_heads * m->n_tokens, 1);
        }
    }
    size_t series = (size_t)c->n_cells * L * T;
    x.kv = rb_calloc(series, sizeof(int64_t));
    x.meta = rb_calloc(series, sizeof(int64_t));
    x.lat = rb_calloc(series, sizeof(int64_t));
    pthread_mutex_init(&x.lock, NULL);
    if (c->progress) x.bar = progress_create("replay", (int64_t)L * T);
    int n_threads = c->threads < 1 ? 1 : c->threads > L ? L : c->threads;
    /* sgemm threads: the cores the layer threads leave (the engine's threads run layers). */
    if (x.block) attn_blas_threads((c->threads < 1 ? 1 : c->threads) / n_threads);
    pthread_t *th = rb_malloc(sizeof(pthread_t) * (size_t)n_threads);
    for (int i = 1; i < n_threads; i++) RB_CHECK(pthread_create(&th[i], NULL, worker, &x) == 0);
    worker(&x);
    for (int i = 1; i < n_threads; i++) pthread_join(th[i], NULL);
    free(th);
    progress_destroy(x.bar);
    pthread_mutex_destroy(&x.lock);
    if (!x.status) {
        for (int i = 0; i < c->n_cells; i++)
            for (int t = 0; t < T; t++)
                for (int l = 0; l < L; l++) {
                    size_t at = series_at(&x, i, l, t);
                    runs[i].kv_bytes[t] += x.kv[at];
                    runs[i].meta_bytes[t] += x.meta[at];
                    if (runs[i].latency_ns[t] >= 0)
                        runs[i].latency_ns[t] = x.lat[at] < 0 ? -1 : runs[i].latency_ns[t] + x.lat[at];
                }
    }
    free(x.kv), free(x.meta), free(x.lat);
    x.stats.wall_ns = rb_now_ns() - wall0;
    if (stats) *stats = x.stats;
    if (x.status) {
        for (int i = 0; i < c->n_cells; i++) results_run_free(&runs[i]);
        if (e) *e = x.err;
        return x.status;
    }
    return RB_OK;
}
