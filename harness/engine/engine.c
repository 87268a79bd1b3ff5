/* engine.c: one pass over a trace serves every (policy, budget) cell (see engine.h). */
#define _POSIX_C_SOURCE 200809L
#include "engine.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "attn.h"
#include "progress.h"
#include "stepper.h"

typedef struct shared_ctx {
    const engine_config *c;
    const trace_meta *m;
    results_run *runs;
    int T;                     /* decode steps replayed */
    int latency_every;         /* steps attended for real and timed: every this many */
    int64_t *kv, *meta, *lat;  /* [n_cells, n_stored, T] per-layer series, summed at the end */
    const policy_ops *dense_ops, *window_ops;
    policy_params dense_params, window_params;
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

/* Which policy a cell really runs on a layer: its own, or the layer's forced one. */
static int layer_forced(const shared_ctx *x, int slot) {
    return x->m->sliding_window[slot] > 0 || x->m->layers[slot] < x->c->dense_layers;
}

static rb_status make_stepper(const shared_ctx *x, int slot, const engine_cell *cell,
                              stepper **out, rb_err *e) {
    const trace_meta *m = x->m;
    const engine_config *c = x->c;
    policy_config pc = {
        .layer = m->layers[slot], .n_q_heads = m->n_q_heads, .n_kv_heads = m->n_kv_heads,
        .head_dim = m->head_dim, .page_size = c->page_size, .max_tokens = m->n_tokens,
        .attn_scale = m->attn_scale, .seed = c->seed,
    };
    const policy_ops *ops;
    if (m->sliding_window[slot] > 0) {
        ops = x->window_ops, pc.budget = m->sliding_window[slot], pc.params = &x->window_params;
    } else if (!cell) {
        ops = x->dense_ops, pc.budget = m->n_tokens, pc.params = &x->dense_params;
    } else {
        ops = cell->ops, pc.budget = cell->budget, pc.params = &cell->params;
    }
    return stepper_create(ops, &pc, c->elem_bytes, NULL, out, e);
}

/* One stepper's last step scored against the reference, per query head. */
typedef struct step_score {
    double *recall, *out_err; /* [H] */
    double attended;          /* mean |S| over heads */
} step_score;

/* The reference of a chunk of W consecutive steps is computed first, then each cell runs
 * the chunk: a cell's pools stay in cache across W steps instead of every cell's pools being
 * walked every step (20 cells over a 3k-token layer hold ~25 MB, more than the last-level
 * cache of the dev VM). Entry w of the reference arrays is step c0 + w of the chunk. */
typedef struct layer_buf {
    float *q, *k, *v;            /* [N, heads, d] */
    int W;                       /* steps per chunk */
    float *logits, *lse, *ostar; /* [W, Hq, N], [W, Hq], [W, Hq, d] */
    float *out;                  /* [Hq, d] a cell's output */
    float *probs;                /* [W, Hq, N] dense probabilities exp(logit - lse) */
    step_score sc;               /* a stepper's last step, scored */
} layer_buf;

/* Steps per chunk: the reference arrays (logits and probs) within ~8 MiB, 1..32. */
static int chunk_steps(int H, int N) {
    double per_step = 2.0 * sizeof(float) * (double)H * N;
    int W = (int)((8 << 20) / per_step);
    return W < 1 ? 1 : W > 32 ? 32 : W;
}


/* Recall (the dense mass on S, gathered once per set: the heads of a shared set walk its
 * positions together) and out_err of each head. */
static void score(const trace_meta *m, const stepper *s, const float *out, const float *probs,
                  const float *ostar, int stride, int j0, step_score *sc) {
    const policy_selection *sel = stepper_selection(s);
    int H = m->n_q_heads, d = m->head_dim;
    int set_heads = sel->shared_by_group ? sel->group_size : 1;
    double att = 0;
    for (int h0 = 0; h0 < H; h0 += set_heads) {
        int n_sel = sel->n[h0], nh = set_heads < 8 ? set_heads : 8;
        const int32_t *pos = sel->pos + (size_t)h0 * sel->cap;
        for (int g0 = h0; g0 < h0 + set_heads; g0 += nh) {
            /* Two sums per head (even and odd positions): independent chains. */
            double a[8][2] = {{0}};
            const float *pr[8];
            for (int g = 0; g < nh; g++) pr[g] = probs + (size_t)(g0 + g) * stride - j0;
            int i = 0;
            for (; i + 2 <= n_sel; i += 2) {
                int p0 = pos[i], p1 = pos[i + 1];
                for (int g = 0; g < nh; g++) a[g][0] += pr[g][p0], a[g][1] += pr[g][p1];
            }
            for (; i < n_sel; i++)
                for (int g = 0; g < nh; g++) a[g][0] += pr[g][pos[i]];
            for (int g = 0; g < nh; g++) sc->recall[g0 + g] = a[g][0] + a[g][1];
        }
        att += (double)n_sel * set_heads;
    }
    for (int h = 0; h < H; h++) {
        const float *o = out + (size_t)h * d, *os = ostar + (size_t)h * d;
        double num = 0, den = 0;
        for (int i = 0; i < d; i++) num += (o[i] - os[i]) * (o[i] - os[i]), den += os[i] * os[i];
        sc->out_err[h] = den > 0 ? sqrt(num / den) : sqrt(num);
    }
    sc->attended = att / H;
}

/* Write a step's scores into a run's columns (every cell that shares the stepper). */
static void record_score(const trace_meta *m, results_run *r, int slot, int ti,
                         const stepper *s, const step_score *sc) {
    int H = m->n_q_heads;
    double sum_rec = 0, sum_err = 0;
    for (int h = 0; h < H; h++) sum_rec += sc->recall[h], sum_err += sc->out_err[h];
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
    r->recall[i] = (float)(sum_rec / H);
    r->out_err[i] = (float)(sum_err / H);
    r->attended[i] = (float)sc->attended;
}

static rb_status run_layer(shared_ctx *x, int slot, layer_buf *b, rb_err *e) {
    const trace_meta *m = x->m;
    const engine_config *c = x->c;
    int N = m->n_prefill + x->T, P0 = m->n_prefill, H = m->n_q_heads, Hkv = m->n_kv_heads;
    int d = m->head_dim, win = m->sliding_window[slot];
    size_t krow = (size_t)Hkv * d, qrow = (size_t)H * d;
    rb_status s = RB_OK;
    int64_t t0 = rb_now_ns();
    pthread_mutex_lock(&x->lock);
    if ((s = trace_read(c->trace, slot, TRACE_Q, 0, N, b->q, e)) == RB_OK &&
        (s = trace_read(c->trace, slot, TRACE_K, 0, N, b->k, e)) == RB_OK)
        s = trace_read(c->trace, slot, TRACE_V, 0, N, b->v, e);
    pthread_mutex_unlock(&x->lock);
    if (s) return s;
    int64_t read_ns = rb_now_ns() - t0, dense_ns = 0, cells_ns = 0, metrics_ns = 0;

    /* Cells that would compute the same thing share one stepper, its figures credited to
     * each: on forced layers (dense or windowed) every cell; elsewhere the budgets of a
     * budget-free policy (dense) with the same parameters. */
    int forced = layer_forced(x, slot), n_st = 0;
    int *st_of = rb_malloc(sizeof(int) * (size_t)c->n_cells); /* cell -> stepper */
    int *cell_of = rb_malloc(sizeof(int) * (size_t)c->n_cells); /* stepper -> first cell */
    for (int i = 0; i < c->n_cells; i++) {
        const engine_cell *ci = &c->cells[i];
        st_of[i] = -1;
        for (int j = 0; j < i && st_of[i] < 0; j++) {
            const engine_cell *cj = &c->cells[j];
            if (forced || (ci->ops == cj->ops && (ci->ops->flags & POLICY_BUDGET_FREE) &&
                           !strcmp(ci->params_json ? ci->params_json : "",
                                   cj->params_json ? cj->params_json : "")))
                st_of[i] = st_of[j];
        }
        if (st_of[i] < 0) cell_of[n_st] = i, st_of[i] = n_st++;
    }
    stepper **st = rb_calloc((size_t)n_st, sizeof *st);
    for (int i = 0; i < n_st && !s; i++)
        s = make_stepper(x, slot, forced ? NULL : &c->cells[cell_of[i]], &st[i], e);
    if (!s)
        for (int i = 0; i < n_st; i++) stepper_prefill(st[i], P0, b->q, b->k, b->v, NULL);
    int W = b->W;
    for (int c0 = 0; c0 < x->T && !s; c0 += W) {
        int c1 = c0 + W < x->T ? c0 + W : x->T;
        /* The reference of the chunk's steps: every head together, each token row of K and
         * V read once. Logits are laid out [H, n] (row stride n, the step's own n), which is
         * what the steppers are told. */
        for (int ti = c0; ti < c1; ti++) {
            int t = P0 + ti, w = ti - c0;
            int n = win > 0 && t + 1 > win ? win : t + 1, j0 = t + 1 - n;
            float *lg = b->logits + (size_t)w * H * N, *pb = b->probs + (size_t)w * H * N;
            int64_t a = rb_now_ns();
            attn_dense_heads(b->q + (size_t)t * qrow, H, Hkv, b->k + (size_t)j0 * krow,
                             b->v + (size_t)j0 * krow, n, d, (int)krow, m->attn_scale, lg,
                             b->lse + (size_t)w * H, b->ostar + (size_t)w * H * d);
            int64_t bb = rb_now_ns();
            dense_ns += bb - a;
            /* Dense probabilities once per step: every cell's recall is then a gather. */
            for (int h = 0; h < H; h++)
                attn_exp_shift(lg + (size_t)h * n, b->lse[(size_t)w * H + h], n,
                               pb + (size_t)h * n);
            metrics_ns += rb_now_ns() - bb;
        }
        for (int i = 0; i < n_st; i++) {
            for (int ti = c0; ti < c1; ti++) {
                int t = P0 + ti, w = ti - c0;
                int n = win > 0 && t + 1 > win ? win : t + 1, j0 = t + 1 - n;
                int timed = ti % x->latency_every == 0;
                const float *qt = b->q + (size_t)t * qrow, *lg = b->logits + (size_t)w * H * N;
                const float *lse = b->lse + (size_t)w * H, *pb = b->probs + (size_t)w * H * N;
                int64_t c0_ns = rb_now_ns();
                if (timed)
                    stepper_step(st[i], t, qt, b->k + (size_t)t * krow, b->v + (size_t)t * krow,
                                 j0 == 0 ? lg : NULL, j0 == 0 ? lse : NULL, n, b->out);
                else
                    stepper_step_cached(st[i], t, qt, b->k + (size_t)t * krow,
                                        b->v + (size_t)t * krow, lg, lse, pb, n, j0, b->out);
                int64_t c1_ns = rb_now_ns();
                cells_ns += c1_ns - c0_ns;
                int64_t lat = stepper_last_step_ns(st[i]), kvb = stepper_kv_bytes(st[i]),
                        mb = stepper_meta_bytes(st[i]);
                score(m, st[i], b->out, pb, b->ostar + (size_t)w * H * d, n, j0, &b->sc);
                for (int cell = 0; cell < c->n_cells; cell++) {
                    if (st_of[cell] != i) continue;
                    size_t at = series_at(x, cell, slot, ti);
                    x->lat[at] = lat, x->kv[at] = kvb, x->meta[at] = mb;
                    record_score(m, &x->runs[cell], slot, ti, st[i], &b->sc);
                }
                metrics_ns += rb_now_ns() - c1_ns;
            }
        }
        if (x->bar) progress_add(x->bar, c1 - c0);
    }
    for (int i = 0; i < n_st; i++) stepper_destroy(st[i]);
    free(st), free(st_of), free(cell_of);
    pthread_mutex_lock(&x->lock);
    x->stats.read_ns += read_ns, x->stats.dense_ns += dense_ns, x->stats.cells_ns += cells_ns;
    x->stats.metrics_ns += metrics_ns;
    /* K and V of every KV head streamed once per step over the attended range. */
    for (int ti = 0; ti < x->T; ti++) {
        int t = P0 + ti, n = win > 0 && t + 1 > win ? win : t + 1;
        x->stats.dense_bytes += (int64_t)n * (int64_t)krow * 2 * (int64_t)sizeof(float);
    }
    pthread_mutex_unlock(&x->lock);
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
    b.W = chunk_steps(H, N);
    b.logits = rb_malloc(sizeof(float) * (size_t)b.W * H * N);
    b.probs = rb_malloc(sizeof(float) * (size_t)b.W * H * N);
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
    return NULL;
}

static rb_status setup(shared_ctx *x, const engine_config *c, rb_err *e) {
    memset(x, 0, sizeof *x);
    x->c = c;
    x->m = trace_get_meta(c->trace);
    int decode = x->m->n_tokens - x->m->n_prefill;
    x->T = c->n_steps > 0 && c->n_steps < decode ? c->n_steps : decode;
    x->latency_every = c->latency_every > 0 ? c->latency_every : 1;
    rb_status s;
    if (!(x->dense_ops = policy_find("dense", e)) || !(x->window_ops = policy_find("window", e)))
        return RB_EINTERNAL;
    if ((s = policy_params_for(x->dense_ops, NULL, 0, &x->dense_params, e)) ||
        (s = policy_params_for(x->window_ops, NULL, 0, &x->window_params, e)))
        return s;
    return RB_OK;
}

rb_status engine_check_cells(const engine_config *c, rb_err *e) {
    shared_ctx x;
    rb_status s = setup(&x, c, e);
    if (s) return s;
    for (int slot = 0; slot < x.m->n_stored; slot++) {
        if (layer_forced(&x, slot)) continue;
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
    rb_status s = setup(&x, c, e);
    if (s || (s = engine_check_cells(c, e))) return s;
    const trace_meta *m = x.m;
    int L = m->n_stored, T = x.T;
    x.runs = runs;
    for (int i = 0; i < c->n_cells; i++) {
        results_run *r = &runs[i];
        memset(r, 0, sizeof *r);
        results_run_alloc(r, T, L, m->n_q_heads, c->per_head);
        snprintf(r->run_id, sizeof r->run_id, "%s", c->cells[i].run_id);
        snprintf(r->policy, sizeof r->policy, "%s", c->cells[i].ops->name);
        snprintf(r->trace, sizeof r->trace, "%s", trace_path(c->trace));
        r->budget = c->cells[i].budget;
        r->params_json = rb_strdup(c->cells[i].params_json ? c->cells[i].params_json : "{}");
        r->page_size = c->page_size, r->dense_layers = c->dense_layers;
        r->latency_every = x.latency_every;
        r->n_tokens = m->n_tokens;
        for (int t = 0; t < T; t++) r->step[t] = m->n_prefill + t;
        for (int l = 0; l < L; l++) {
            r->layers[l] = m->layers[l];
            r->sparse[l] = !layer_forced(&x, l);
        }
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
