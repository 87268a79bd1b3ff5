/* test_synth.c: the synthetic trace generator (harness/analysis/synth.h) and `raasbench synth`.
 *
 * Checks: config validation; determinism (same seed, same bytes; another seed or layer,
 * other bytes); the truth's invariants; the planted structure measured from the dense
 * attention of the generated q and k (computed here with the reference kernel
 * attn_dense_ref); the channel structure of the keys; the round trip through trace_writer
 * and trace_open (exact in f32, within half rounding in f16); and the CLI's exit codes.
 * SYNTH_TEST_SEED=N reruns the structure checks on another seed (seed 1 by default; seeds
 * 1..20 were tried: one, 11, has an early phrase at 9.2x uniform, under the 10x bar). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attn.h"
#include "commands.h"
#include "synth.h"
#include "trace.h"

static int failures = 0;
#define EXPECT(cond, ...)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                            \
            printf(__VA_ARGS__);                                                              \
            printf("\n");                                                                     \
        }                                                                                     \
    } while (0)

/* A trace small enough to attend densely in well under a second, long enough for lifespans
 * of hundreds of steps and a phoenix dormant for 128. */
static synth_config small_config(void) {
    synth_config c;
    synth_config_default(&c);
    c.n_layers = 2;
    c.n_q_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 64;
    c.n_prefill = 128;
    c.n_decode = 704;
    c.life_min = 16;
    c.life_max = 200;
    c.n_phoenix = 2;
    c.phoenix_dormant = 128;
    c.dtype = TRACE_F32;
    if (getenv("SYNTH_TEST_SEED")) c.seed = strtoull(getenv("SYNTH_TEST_SEED"), NULL, 10);
    return c;
}

typedef struct layer_buf {
    float *q, *k, *v;
    size_t nq, nk;
} layer_buf;

static layer_buf layer_make(const synth_config *c, const synth_truth *t, int layer) {
    layer_buf b;
    int n = synth_n_tokens(c);
    b.nq = (size_t)n * c->n_q_heads * c->head_dim;
    b.nk = (size_t)n * c->n_kv_heads * c->head_dim;
    b.q = rb_malloc(sizeof(float) * b.nq);
    b.k = rb_malloc(sizeof(float) * b.nk);
    b.v = rb_malloc(sizeof(float) * b.nk);
    synth_layer(c, t, layer, b.q, b.k, b.v);
    return b;
}

static void layer_free(layer_buf *b) {
    free(b->q);
    free(b->k);
    free(b->v);
}

static int layers_equal(const layer_buf *a, const layer_buf *b) {
    return !memcmp(a->q, b->q, sizeof(float) * a->nq) && !memcmp(a->k, b->k, sizeof(float) * a->nk) &&
           !memcmp(a->v, b->v, sizeof(float) * a->nk);
}

static void test_config(void) {
    synth_config c;
    synth_config_default(&c);
    rb_err e = {0};
    EXPECT(synth_config_check(&c, &e) == RB_OK, "defaults refused: %s: %s", e.what, e.why);
    EXPECT(synth_n_tokens(&c) == 2176, "default n_tokens %d", synth_n_tokens(&c));
    /* each bad field is refused with RB_EINPUT naming its flag */
#define BAD(field, value, flag)                                                               \
    do {                                                                                      \
        synth_config b = c;                                                                   \
        b.field = value;                                                                      \
        rb_err be = {0};                                                                      \
        rb_status st = synth_config_check(&b, &be);                                           \
        EXPECT(st == RB_EINPUT && !strcmp(be.what, flag), #field "=" #value ": status %d, what '%s'", \
               st, be.what);                                                                  \
    } while (0)
    BAD(n_q_heads, 7, "--q-heads");
    BAD(n_kv_heads, 0, "--kv-heads");
    BAD(head_dim, 63, "--head-dim");
    BAD(head_dim, 16, "--head-dim");
    BAD(n_layers, 0, "--layers");
    BAD(n_layers, 100000, "--layers");
    BAD(n_prefill, 4, "--prefill"); /* must exceed the 4 sinks */
    BAD(n_decode, 0, "--decode");
    BAD(n_decode, -5, "--decode");
    BAD(life_max, 8, "--life-max"); /* below life_min 32 */
    BAD(milestone_rate, 0.9, "--milestone-rate");
    BAD(milestone_rate, NAN, "--milestone-rate");
    BAD(phoenix_dormant, 100, "--phoenix-dormant"); /* phoenixes sleep >= 128 steps */
    BAD(noise, -1, "--noise");
    BAD(phrase_max, 0, "--phrase-max");
    BAD(dtype, (trace_dtype)7, "--dtype");
    /* more concurrent milestones than head_dim can address: thinned to the limit */
    synth_config b = c;
    b.milestone_rate = 0.5;
    synth_truth t;
    rb_err be = {0};
    EXPECT(synth_config_check(&b, &be) == RB_OK, "rate 0.5 is in range");
    EXPECT(synth_truth_make(&b, &t, &be) == RB_OK, "%s", be.why);
    int n = synth_n_tokens(&b), *busy = rb_calloc((size_t)n + 1, sizeof(int)), most = 0;
    for (int i = 0; i < t.n_milestones; i++) { /* count phrases: the first token of each run */
        const int32_t *r = t.milestones + 3 * i;
        if (i > 0 && r[0] == r[-3] + 1 && r[1] == r[-2] && r[2] == r[-1]) continue;
        for (int s = r[1]; s <= r[2]; s++) busy[s]++;
    }
    for (int i = 0; i < t.n_phoenix; i++)
        for (int s = t.phoenix[3 * i + 2]; s <= t.phoenix_last[i]; s++) busy[s]++;
    for (int s = 0; s < n; s++) most = busy[s] > most ? busy[s] : most;
    EXPECT(most == synth_max_phrases(&b), "rate 0.5: %d phrases active at once, limit %d", most,
           synth_max_phrases(&b));
    free(busy);
    synth_truth_free(&t);
    BAD(n_phoenix, 12, "--phoenix"); /* more than head_dim 64 can address at once */
    /* the h2o-stress preset: far more milestone tokens than the L/2 = 128 heavy slots H2O
     * keeps at L = 256 (522 at seed 1), each living 128..512 steps; unknown names refused */
    synth_config hs;
    synth_config_default(&hs);
    EXPECT(synth_config_preset(&hs, "h2o-stress", &be) == RB_OK && synth_config_check(&hs, &be) == RB_OK,
           "%s", be.why);
    EXPECT(synth_truth_make(&hs, &t, &be) == RB_OK, "%s", be.why);
    int short_lived = 0;
    for (int i = 0; i < t.n_milestones; i++)
        short_lived += t.milestones[3 * i + 2] - t.milestones[3 * i + 1] + 1 < 128 &&
                       t.milestones[3 * i + 2] < synth_n_tokens(&hs) - 1;
    EXPECT(t.n_milestones > 4 * 128 && short_lived == 0, "h2o-stress: %d milestone tokens, %d living < 128 steps",
           t.n_milestones, short_lived);
    synth_truth_free(&t);
    EXPECT(synth_config_preset(&hs, "bogus", &be) == RB_EINPUT && !strcmp(be.what, "--preset"),
           "unknown preset: %s", be.what);
    synth_truth_free(NULL);
#undef BAD
}

static void test_truth(void) {
    synth_config c;
    synth_config_default(&c);
    synth_truth t, t2;
    rb_err e = {0};
    EXPECT(synth_truth_make(&c, &t, &e) == RB_OK, "%s", e.why);
    int n_tokens = synth_n_tokens(&c);
    /* default: ~2048/32 phrases expected; fewer than 20 would mean the rate is not honoured */
    EXPECT(t.n_milestones >= 20, "only %d milestones in the default trace", t.n_milestones);
    EXPECT(t.n_phoenix == c.n_phoenix && !t.phoenix_dropped, "%d phoenixes", t.n_phoenix);
    int phrase_runs = 0;
    for (int i = 0; i < t.n_milestones; i++) {
        const int32_t *r = t.milestones + 3 * i;
        EXPECT(r[0] >= c.n_prefill && r[0] < n_tokens, "milestone position %d", r[0]);
        EXPECT(r[1] > r[0] && r[1] <= r[0] + c.phrase_max - 1 + c.delay_max, "first %d pos %d", r[1], r[0]);
        EXPECT(r[2] >= r[1] && r[2] < n_tokens, "last %d first %d", r[2], r[1]);
        EXPECT(r[2] - r[1] + 1 <= c.life_max, "lifespan %d", r[2] - r[1] + 1);
        if (r[2] < n_tokens - 1) EXPECT(r[2] - r[1] + 1 >= c.life_min, "lifespan %d", r[2] - r[1] + 1);
        if (i > 0) {
            EXPECT(r[0] > r[-3], "milestones not sorted at %d", i);
            phrase_runs += r[0] == r[-3] + 1 && r[1] == r[-2] && r[2] == r[-1];
        }
    }
    EXPECT(phrase_runs > 0, "no multi-token phrase among %d milestones", t.n_milestones);
    for (int i = 0; i < t.n_phoenix; i++) {
        const int32_t *r = t.phoenix + 3 * i;
        EXPECT(r[0] >= c.n_sinks && r[0] < c.n_prefill, "phoenix position %d", r[0]);
        EXPECT(r[1] == c.n_prefill, "dormant from %d", r[1]);
        EXPECT(r[2] - r[1] >= c.phoenix_dormant && r[2] < n_tokens, "revived at %d", r[2]);
        EXPECT(t.phoenix_last[i] >= r[2] && t.phoenix_last[i] < n_tokens, "revival end %d", t.phoenix_last[i]);
        if (i > 0) EXPECT(r[0] > r[-3], "phoenixes not sorted");
    }
    /* same seed, same truth; another seed, another truth */
    EXPECT(synth_truth_make(&c, &t2, &e) == RB_OK, "%s", e.why);
    EXPECT(t2.n_milestones == t.n_milestones &&
               !memcmp(t2.milestones, t.milestones, sizeof(int32_t) * 3 * t.n_milestones),
           "truth differs for the same seed");
    synth_truth_free(&t2);
    c.seed = 2;
    EXPECT(synth_truth_make(&c, &t2, &e) == RB_OK, "%s", e.why);
    EXPECT(t2.n_milestones != t.n_milestones ||
               memcmp(t2.milestones, t.milestones, sizeof(int32_t) * 3 * t.n_milestones),
           "seeds 1 and 2 give the same truth");
    synth_truth_free(&t2);
    synth_truth_free(&t);

    /* a decode too short for a dormancy: no phoenixes, said so */
    synth_config_default(&c);
    c.n_decode = 100;
    EXPECT(synth_truth_make(&c, &t, &e) == RB_OK, "%s", e.why);
    EXPECT(t.n_phoenix == 0 && t.phoenix_dropped == 1, "phoenix %d dropped %d", t.n_phoenix, t.phoenix_dropped);
    synth_truth_free(&t);
}

static void test_determinism(void) {
    synth_config c = small_config();
    synth_truth t;
    rb_err e = {0};
    EXPECT(synth_truth_make(&c, &t, &e) == RB_OK, "%s", e.why);
    layer_buf a = layer_make(&c, &t, 1), b = layer_make(&c, &t, 1), l0 = layer_make(&c, &t, 0);
    EXPECT(layers_equal(&a, &b), "same seed and layer gave different bytes");
    EXPECT(!layers_equal(&a, &l0), "layers 0 and 1 are identical");
    int finite = 1;
    float big = 0;
    for (size_t i = 0; i < a.nq; i++) finite &= isfinite(a.q[i]), big = fmaxf(big, fabsf(a.q[i]));
    for (size_t i = 0; i < a.nk; i++)
        finite &= isfinite(a.k[i]) && isfinite(a.v[i]), big = fmaxf(big, fmaxf(fabsf(a.k[i]), fabsf(a.v[i])));
    EXPECT(finite && big < 60000, "values must be finite and within float16 range, max %g", big);
    synth_config c2 = c;
    c2.seed = 99;
    synth_truth t2;
    EXPECT(synth_truth_make(&c2, &t2, &e) == RB_OK, "%s", e.why);
    layer_buf s = layer_make(&c2, &t2, 1);
    EXPECT(memcmp(a.k, s.k, sizeof(float) * a.nk) && memcmp(a.q, s.q, sizeof(float) * a.nq),
           "seeds 1 and 99 gave the same q or k");
    layer_free(&a);
    layer_free(&b);
    layer_free(&l0);
    layer_free(&s);
    synth_truth_free(&t);
    synth_truth_free(&t2);
}

/* Dense attention of one KV head's group, averaged over its query heads:
 * p [n, n] row t = mean over the group of softmax(attn_scale q_t . k_0..t). */
static float *group_probs(const synth_config *c, const layer_buf *b, int kvh) {
    int n = synth_n_tokens(c), d = c->head_dim, G = c->n_q_heads / c->n_kv_heads;
    float *p = rb_calloc((size_t)n * n, sizeof(float));
    float *logits = rb_malloc(sizeof(float) * (size_t)G * n), lse[64];
    for (int t = 0; t < n; t++) {
        const float *qt = b->q + ((size_t)t * c->n_q_heads + (size_t)kvh * G) * d;
        attn_dense_ref(qt, G, b->k + (size_t)kvh * d, NULL, t + 1, d, c->n_kv_heads * d,
                       synth_attn_scale(c), logits, lse, NULL);
        for (int g = 0; g < G; g++)
            for (int j = 0; j <= t; j++)
                p[(size_t)t * n + j] += expf(logits[(size_t)g * (t + 1) + j] - lse[g]) / G;
    }
    free(logits);
    return p;
}

/* Mean over steps t in [t0, t1] of p[t][j] * (t + 1): attention relative to uniform. */
static double rel_uniform(const float *p, int n, int j, int t0, int t1) {
    double s = 0;
    for (int t = t0; t <= t1; t++) s += p[(size_t)t * n + j] * (t + 1);
    return s / (t1 - t0 + 1);
}

static void test_structure(void) {
    synth_config c = small_config();
    synth_truth t;
    rb_err e = {0};
    EXPECT(synth_truth_make(&c, &t, &e) == RB_OK, "%s", e.why);
    EXPECT(t.n_milestones >= 10 && t.n_phoenix == 2, "%d milestones, %d phoenixes", t.n_milestones, t.n_phoenix);
    int n = synth_n_tokens(&c);
    char *planted = rb_calloc((size_t)n, 1);
    for (int i = 0; i < t.n_milestones; i++) planted[t.milestones[3 * i]] = 1;
    for (int i = 0; i < t.n_phoenix; i++) planted[t.phoenix[3 * i]] = 1;
    layer_buf b = layer_make(&c, &t, 0);
    double worst_active = INFINITY, worst_token = INFINITY, worst_after = 0, worst_dormant = 0, worst_revival = INFINITY;
    for (int kvh = 0; kvh < c.n_kv_heads; kvh++) {
        float *p = group_probs(&c, &b, kvh);
        /* Milestones: designed at logit 8.5 (x 1 +- 0.1) over a background near 0, so while
         * active a phrase takes a large share of the mass: tens of times uniform per token
         * once the decode is a few hundred long, and 10x (the brief's bar) for the phrase's
         * mean token even early, when six or more tokens share the mass. Each token of a
         * phrase deviates from the phrase's logit by its own dense key noise (about +-1
         * logit), so single tokens get a floor of 5x. After its last step (+ 8 steps for
         * the recency band to pass) a milestone is an ordinary key, which averages well
         * under uniform because sinks, recency and active milestones hold most of the mass;
         * 2x uniform is the brief's bar. */
        for (int i = 0; i < t.n_milestones;) {
            const int32_t *r = t.milestones + 3 * i;
            int len = 1;
            while (i + len < t.n_milestones && r[3 * len] == r[0] + len && r[3 * len + 1] == r[1] &&
                   r[3 * len + 2] == r[2])
                len++;
            double phrase = 0;
            for (int x = 0; x < len; x++) {
                double act = rel_uniform(p, n, r[0] + x, r[1], r[2]);
                EXPECT(act > 5, "kv %d milestone %d (steps %d..%d): %.2fx uniform while active", kvh,
                       r[0] + x, r[1], r[2], act);
                phrase += act / len;
                worst_token = fmin(worst_token, act);
                if (r[2] + 8 + 32 <= n - 1) { /* at least 32 steps to average over */
                    double after = rel_uniform(p, n, r[0] + x, r[2] + 8, n - 1);
                    EXPECT(after < 2, "kv %d milestone %d: %.2fx uniform after step %d", kvh, r[0] + x,
                           after, r[2]);
                    worst_after = fmax(worst_after, after);
                }
            }
            EXPECT(phrase > 10, "kv %d phrase %d..%d (steps %d..%d): %.2fx uniform per token", kvh,
                   r[0], r[0] + len - 1, r[1], r[2], phrase);
            worst_active = fmin(worst_active, phrase);
            i += len;
        }
        /* Phoenixes: dormant (ordinary keys, same bar as a faded milestone) for >= 128
         * steps, then attended like a milestone: over the first 4 revived steps > 10x. */
        for (int i = 0; i < t.n_phoenix; i++) {
            const int32_t *r = t.phoenix + 3 * i;
            EXPECT(r[2] - r[1] >= 128, "phoenix %d dormant only %d steps", r[0], r[2] - r[1]);
            double dormant = rel_uniform(p, n, r[0], r[1], r[2] - 1);
            double revived = rel_uniform(p, n, r[0], r[2], r[2] + 3 < n ? r[2] + 3 : n - 1);
            EXPECT(dormant < 2, "kv %d phoenix %d: %.2fx uniform while dormant", kvh, r[0], dormant);
            EXPECT(revived > 10, "kv %d phoenix %d: %.2fx uniform at revival", kvh, r[0], revived);
            worst_dormant = fmax(worst_dormant, dormant);
            worst_revival = fmin(worst_revival, revived);
        }
        /* Sinks: position 0 is designed at logit 8 on every query, as strong as an active
         * milestone and permanent: > 10x uniform averaged over the decode. */
        double sink = rel_uniform(p, n, 0, c.n_prefill, n - 1);
        EXPECT(sink > 10, "kv %d: sink 0 gets %.2fx uniform", kvh, sink);
        /* Background noise: some ordinary old token, at some step, gets over 3x uniform (the
         * structure is not noiseless), but ordinary old tokens average under 1x. */
        double bg = 0, bg_max = 0;
        long bg_n = 0;
        for (int s = c.n_prefill; s < n; s++)
            for (int j = c.n_sinks; j < s - 32; j++)
                if (!planted[j]) {
                    double x = p[(size_t)s * n + j] * (s + 1);
                    bg += x, bg_n++, bg_max = fmax(bg_max, x);
                }
        bg /= bg_n;
        EXPECT(bg < 1 && bg_max > 3, "kv %d: background mean %.2fx, max %.2fx uniform", kvh, bg, bg_max);
        /* Recency: the query's own and the 3 previous positions (not planted) are designed
         * at logits 6.5 down to ~3 over a background near 0, i.e. e^3..e^6.5 times an
         * ordinary old token: require > 10x the ordinary old token's mean, and > 3x uniform
         * (active milestones at 8.5 and the sinks hold most of the mass). */
        double rec = 0;
        int cnt = 0;
        for (int s = c.n_prefill; s < n; s++)
            for (int j = s - 3; j <= s; j++)
                if (!planted[j]) rec += p[(size_t)s * n + j] * (s + 1), cnt++;
        rec /= cnt;
        EXPECT(rec > 3 && rec > 10 * bg, "kv %d: the 4 most recent positions get %.2fx uniform "
               "(ordinary old tokens %.2fx)", kvh, rec, bg);
        if (kvh == 0)
            printf("# kv 0: sink0 %.0fx, recency %.1fx, background mean %.2fx max %.0fx uniform\n", sink,
                   rec, bg, bg_max);
        free(p);
    }
    printf("# milestones: weakest phrase %.1fx uniform per token, weakest token %.1fx, strongest "
           "after fading %.2fx\n",
           worst_active, worst_token, worst_after);
    printf("# phoenixes: most dormant %.2fx uniform, weakest revival %.1fx\n", worst_dormant, worst_revival);

    /* Keys: a few large-magnitude channels (outliers with a shared offset), as real keys
     * have: the largest channel mean |k| is over 4x the median channel's (designed ~6 vs ~1). */
    for (int kvh = 0; kvh < c.n_kv_heads; kvh++) {
        int d = c.head_dim;
        double *m = rb_calloc((size_t)d, sizeof(double)), sorted[SYNTH_MAX_HEAD_DIM];
        for (int j = 0; j < n; j++)
            for (int ch = 0; ch < d; ch++) m[ch] += fabs(b.k[((size_t)j * c.n_kv_heads + kvh) * d + ch]) / n;
        memcpy(sorted, m, sizeof(double) * d);
        for (int x = 0; x < d; x++) /* insertion sort, d <= 512 */
            for (int y = x; y > 0 && sorted[y] < sorted[y - 1]; y--) {
                double tmp = sorted[y];
                sorted[y] = sorted[y - 1], sorted[y - 1] = tmp;
            }
        EXPECT(sorted[d - 1] > 4 * sorted[d / 2], "kv %d: largest channel mean |k| %.2f, median %.2f",
               kvh, sorted[d - 1], sorted[d / 2]);
        free(m);
    }
    layer_free(&b);
    free(planted);
    synth_truth_free(&t);
}

static char tmpdir[256];

static void test_round_trip(trace_dtype dtype) {
    synth_config c = small_config();
    c.dtype = dtype;
    c.n_decode = 300; /* room for a phoenix: 128 dormant + 16 revival steps */
    char path[512];
    snprintf(path, sizeof path, "%s/rt_%s.h5", tmpdir, dtype == TRACE_F32 ? "f32" : "f16");
    synth_truth t;
    rb_err e = {0};
    EXPECT(synth_write(&c, path, &t, &e) == RB_OK, "synth_write: %s: %s", e.what, e.why);
    trace *tr = NULL;
    if (trace_open(path, &tr, &e) != RB_OK) {
        EXPECT(0, "trace_open: %s: %s", e.what, e.why);
        synth_truth_free(&t);
        return;
    }
    const trace_meta *m = trace_get_meta(tr);
    int n = synth_n_tokens(&c);
    EXPECT(m->n_layers == c.n_layers && m->n_stored == c.n_layers && m->n_q_heads == c.n_q_heads &&
               m->n_kv_heads == c.n_kv_heads && m->head_dim == c.head_dim &&
               m->n_prefill == c.n_prefill && m->n_tokens == n && m->dtype == dtype,
           "meta does not match the config");
    EXPECT(fabsf(m->attn_scale - synth_attn_scale(&c)) < 1e-7f, "attn_scale %g", m->attn_scale);
    EXPECT(!strcmp(m->source, "synth"), "source '%s'", m->source);
    for (int l = 0; l < c.n_layers; l++) {
        layer_buf b = layer_make(&c, &t, l);
        float *x = rb_malloc(sizeof(float) * b.nq);
        const float *want[3] = {b.q, b.k, b.v};
        size_t cnt[3] = {b.nq, b.nk, b.nk};
        for (int w = 0; w < 3; w++) {
            EXPECT(trace_read(tr, l, (trace_tensor)w, 0, n, x, &e) == RB_OK, "%s", e.why);
            /* f32 stores the floats as they are; f16 rounds each to nearest binary16, so
             * the error is at most half an ulp: 2^-11 relative, 2^-25 absolute near zero */
            double worst = 0;
            for (size_t i = 0; i < cnt[w]; i++) {
                double err = fabs((double)x[i] - want[w][i]);
                double tol = dtype == TRACE_F32 ? 0 : fabs(want[w][i]) * 0x1p-11 + 0x1p-25;
                if (err > tol) worst = fmax(worst, err - tol);
            }
            EXPECT(worst == 0, "layer %d tensor %d: read back differs by %g beyond tolerance", l, w, worst);
        }
        free(x);
        layer_free(&b);
    }
    const char *names[2] = {"milestones", "phoenix"};
    const int32_t *rows[2] = {t.milestones, t.phoenix};
    int counts[2] = {t.n_milestones, t.n_phoenix};
    for (int k = 0; k < 2; k++) {
        int32_t *got = NULL;
        int got_n = -1;
        EXPECT(trace_read_truth(tr, names[k], &got, &got_n, &e) == RB_OK, "%s", e.why);
        EXPECT(got_n == counts[k] && (got_n == 0 || !memcmp(got, rows[k], sizeof(int32_t) * 3 * got_n)),
               "/truth/%s: %d rows read, %d written", names[k], got_n, counts[k]);
        free(got);
    }
    trace_close(tr);
    synth_truth_free(&t);
    unlink(path);

    /* unwritable path: clean error, nothing left behind */
    snprintf(path, sizeof path, "%s/missing/dir/x.h5", tmpdir);
    EXPECT(synth_write(&c, path, NULL, &e) != RB_OK, "wrote into a missing directory");
}

static int run_cli(const char *const *args, int n) {
    char *argv[32];
    for (int i = 0; i < n; i++) argv[i] = (char *)args[i];
    fflush(stdout);
    return cmd_synth(n, argv);
}

static void test_cli(void) {
    char out[512], arg[600];
    snprintf(out, sizeof out, "%s/cli.h5", tmpdir);
    snprintf(arg, sizeof arg, "--out=%s", out);
    const char *ok[] = {arg, "--layers", "1", "--q-heads", "4", "--kv-heads", "1", "--prefill", "32",
                        "--decode", "64", "--dtype", "f32", "--seed", "5", "--quiet"};
    EXPECT(run_cli(ok, 16) == 0, "a valid command failed");
    struct stat st;
    EXPECT(stat(out, &st) == 0 && st.st_size > 0, "no file at %s", out);
    unlink(out);
    const char *help[] = {"--help"};
    EXPECT(run_cli(help, 1) == 0, "--help");
    /* bad input: exit 2, no file */
    const char *bad[][4] = {
        {"--layers", "1"},                     /* no --out */
        {arg, "--q-heads", "6", "--kv-heads"}, /* missing value */
        {arg, "--dtype", "bf16"},
        {arg, "--seed", "-3"},
        {arg, "--head-dim", "12x"},
        {arg, "--bogus", "1"},
        {arg, "--phoenix", "40"}, /* more than head_dim 64 addresses at once */
    };
    int n_args[] = {2, 4, 3, 3, 3, 3, 3};
    for (size_t i = 0; i < sizeof n_args / sizeof n_args[0]; i++) {
        int rc = run_cli(bad[i], n_args[i]);
        EXPECT(rc == 2, "bad command %zu returned %d", i, rc);
        EXPECT(stat(out, &st) != 0, "bad command %zu left a file", i);
        unlink(out);
    }
    const char *mult[] = {arg, "--q-heads", "6", "--kv-heads", "4", "--quiet"};
    EXPECT(run_cli(mult, 6) == 2, "6 q heads over 4 kv heads accepted");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_synth.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int64_t t0 = rb_now_ns();
    test_config();
    test_truth();
    test_determinism();
    test_structure();
    test_round_trip(TRACE_F32);
    test_round_trip(TRACE_F16);
    test_cli();
    rmdir(tmpdir);
    printf("# test_synth: %d failures, %.2f s\n", failures, (double)(rb_now_ns() - t0) * 1e-9);
    return failures ? 1 : 0;
}
