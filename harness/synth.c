/* synth.c: the synthetic reasoning-trace generator (see synth.h).
 *
 * THE MODEL. Logits are designed in natural units, logit = q~.k, and the stored query is
 * q = q~ / attn_scale, so that softmax(attn_scale * q.k) is the designed distribution.
 * Each (layer, KV head) splits its head_dim channels into four groups:
 *
 *   recency  head_dim/4 channels in RoPE pairs (2i, 2i+1). Every key and query carries a
 *            fixed vector in each pair, rotated by real RoPE at its position with
 *            frequencies geometric from 1 to 1/32 rad/token, so q_t.k_j =
 *            A * mean_i cos(theta_i (t - j)): A at j = t, ~0.5 A three tokens back, ~0.1 A
 *            past 16, then fluctuating around 0 with std ~0.25 A (the stripes RoPE gives
 *            real attention maps). A = recency_logit, x U(0.8, 1.2) per query head.
 *   sink     one channel: 8 on position 0 (sink_logit), smaller on the other sinks (1.5
 *            logits less), N(0, 0.3) elsewhere; every query carries sink_logit / 8 there.
 *   outlier  two channels with a large per-channel offset (5 to 8, random sign) plus
 *            N(0, 1) per token, as the massive channels of real keys; queries are small there.
 *   content  the rest (d_c = head_dim - head_dim/4 - 3). Every key has dense N(0, s_c)
 *            noise (s_c in U(0.7, 1.3) per channel). Planted tokens (milestones and
 *            phoenixes) and decoys add a spike of norm 2 sqrt(d_c) spread over 3 channels
 *            with random signs: heavy channels, as important tokens have in real keys, which
 *            is what Quest's per-page min/max bounds see. Planted tokens get their channels
 *            least-recently-used first, so tokens active together do not share channels.
 *
 * Every key channel also gets a per-channel offset N(0, 0.3), shared by all tokens (it
 * changes no softmax but moves every page's min/max, as the k_proj bias does).
 *
 * The content part of the query at step t is the minimum-norm vector whose logit is
 * milestone_logit (x 1 +- jitter per layer, query head and token) on every planted token
 * active at t, and 0 on every other planted token present that shares a channel with an
 * active one and on every phoenix token: q_c = K_C^T (K_C K_C^T + ridge)^-1 b. So active
 * tokens are attended, and faded milestones and dormant phoenixes look like any other key.
 * Then N(0, tau) noise is added to every content channel, tau chosen so that its logit on
 * an ordinary key has std `noise`. The dense key noise, the decoys' spikes and the RoPE
 * stripes add further, heavy-tailed background noise: a random token sometimes outscores a
 * weak milestone, as in real attention.
 *
 * Schedule (the truth, shared by every layer and KV head): each decode token is a milestone
 * with probability milestone_rate; it becomes active 1..delay_max steps after its position
 * and stays active for a lifespan log-uniform in [life_min, life_max] (clipped at the end).
 * Phoenix tokens are prompt positions (after the sinks, at least 16 before the end of the
 * prompt) attended by every later prompt query, dormant from the first decode step for at
 * least phoenix_dormant steps, then revived for a log-uniform lifespan. Values are
 * N(mu_c, 1) with a per-channel mean mu_c ~ N(0, 0.5); sink values are scaled by 0.1 (real
 * sinks carry little value).
 *
 * Random streams are keyed by (seed, purpose, layer, head), so a layer's bytes depend only on
 * the config and the layer index. */
#include "synth.h"

#include <math.h>
#include <string.h>

#define SIG_CHANNELS 2      /* spike channels of a planted token or decoy */
#define SINK_KEY 8.0        /* key value of position 0 in the sink channel */
#define PHOENIX_TAIL 16     /* phoenixes sit at least this far before the end of the prompt */
#define REVIVE_MIN 16       /* a revival needs at least this many steps left */
#define ROPE_LOW (1.0 / 32) /* lowest recency frequency, rad/token */
#define ROPE_KEY_AMP 1.5    /* key amplitude in each recency pair */
#define TWO_PI 6.283185307179586
#define CROSS_MAX 1.0       /* largest content logit tolerated on an inactive planted token */
#define ACTIVE_ROUNDS 4     /* re-solves that add offending planted tokens as zero targets */
#define SPIKE_NORM 1.5      /* spike norm of a planted token, in units of sqrt(d_c) */

enum { TAG_TRUTH = 1, TAG_KEY, TAG_QUERY, TAG_VALUE };

/* ---- deterministic random streams (splitmix64) ---- */

typedef struct rng {
    uint64_t s;
    int has_spare;
    double spare;
} rng;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static rng rng_make(uint64_t seed, int tag, int a, int b) {
    uint64_t s = mix64(seed ^ 0x9e3779b97f4a7c15ULL);
    s = mix64(s ^ ((uint64_t)tag << 48) ^ ((uint64_t)(uint32_t)a << 20) ^ (uint64_t)(uint32_t)b);
    return (rng){.s = s};
}

static uint64_t rng_u64(rng *r) {
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

/* uniform in [0, 1) with 53 random bits */
static double rng_unif(rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

static int rng_int(rng *r, int lo, int hi) { /* uniform in [lo, hi] */
    return lo + (int)(rng_unif(r) * (double)(hi - lo + 1));
}

static double rng_normal(rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = 1.0 - rng_unif(r), v = rng_unif(r); /* u in (0, 1] */
    double m = sqrt(-2.0 * log(u));
    r->spare = m * sin(TWO_PI * v);
    r->has_spare = 1;
    return m * cos(TWO_PI * v);
}

static int rng_loguniform(rng *r, int lo, int hi) {
    double x = exp(log((double)lo) + rng_unif(r) * (log((double)hi + 1) - log((double)lo)));
    int v = (int)x;
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- configuration ---- */

void synth_config_default(synth_config *c) {
    *c = (synth_config){
        .seed = 1,
        .n_layers = 4,
        .n_q_heads = 8,
        .n_kv_heads = 2,
        .head_dim = 64,
        .n_prefill = 128,
        .n_decode = 2048,
        .dtype = TRACE_F16,
        .n_sinks = 4,
        .sink_logit = 7.0,
        .recency_logit = 5.0,
        .milestone_rate = 1.0 / 32,
        .life_min = 32,
        .life_max = 320,
        .delay_max = 4,
        .milestone_logit = 7.0,
        .jitter = 0.15,
        .n_phoenix = 4,
        .phoenix_dormant = 256,
        .decoy_rate = 0.03,
        .noise = 0.5,
    };
}

int synth_n_tokens(const synth_config *c) { return c->n_prefill + c->n_decode; }

float synth_attn_scale(const synth_config *c) { return (float)(1.0 / sqrt((double)c->head_dim)); }

static int rope_pairs(int head_dim) { return head_dim / 8; }
static int content_dims(int head_dim) { return head_dim - 2 * rope_pairs(head_dim) - 3; }

static rb_status check_range(const char *what, double v, double lo, double hi, rb_err *e) {
    if (!(v >= lo && v <= hi)) return rb_fail(e, RB_EINPUT, what, "%g is outside [%g, %g]", v, lo, hi);
    return RB_OK;
}

rb_status synth_config_check(const synth_config *c, rb_err *e) {
    rb_status st;
    if ((st = check_range("--layers", c->n_layers, 1, TRACE_MAX_LAYERS, e))) return st;
    if ((st = check_range("--kv-heads", c->n_kv_heads, 1, SYNTH_MAX_KV_HEADS, e))) return st;
    if ((st = check_range("--q-heads", c->n_q_heads, 1, SYNTH_MAX_Q_HEADS, e))) return st;
    if (c->n_q_heads % c->n_kv_heads)
        return rb_fail(e, RB_EINPUT, "--q-heads", "%d is not a multiple of --kv-heads %d",
                       c->n_q_heads, c->n_kv_heads);
    if ((st = check_range("--head-dim", c->head_dim, SYNTH_MIN_HEAD_DIM, SYNTH_MAX_HEAD_DIM, e)))
        return st;
    if (c->head_dim % 2) return rb_fail(e, RB_EINPUT, "--head-dim", "%d is odd (RoPE needs pairs)", c->head_dim);
    if ((st = check_range("--sinks", c->n_sinks, 0, 64, e))) return st;
    if ((st = check_range("--prefill", c->n_prefill, c->n_sinks + 1, SYNTH_MAX_TOKENS, e)))
        return st;
    if ((st = check_range("--decode", c->n_decode, 1, SYNTH_MAX_TOKENS, e))) return st;
    if (synth_n_tokens(c) > SYNTH_MAX_TOKENS)
        return rb_fail(e, RB_EINPUT, "--decode", "prefill + decode = %d positions; at most %d",
                       synth_n_tokens(c), SYNTH_MAX_TOKENS);
    double q_floats = (double)synth_n_tokens(c) * c->n_q_heads * c->head_dim;
    if (q_floats > (double)(1 << 28))
        return rb_fail(e, RB_EINPUT, "--decode",
                       "one layer's queries would take %.1f GiB in memory (at most 1 GiB); "
                       "use fewer positions, heads or channels",
                       q_floats * 4 / (1 << 30));
    if (c->dtype != TRACE_F16 && c->dtype != TRACE_F32)
        return rb_fail(e, RB_EINPUT, "--dtype", "must be f16 or f32");
    if ((st = check_range("--sink-logit", c->sink_logit, 0, 20, e))) return st;
    if ((st = check_range("--recency-logit", c->recency_logit, 0, 20, e))) return st;
    if ((st = check_range("--milestone-rate", c->milestone_rate, 0, 0.5, e))) return st;
    if ((st = check_range("--life-min", c->life_min, 1, SYNTH_MAX_TOKENS, e))) return st;
    if ((st = check_range("--life-max", c->life_max, c->life_min, SYNTH_MAX_TOKENS, e))) return st;
    if ((st = check_range("--delay-max", c->delay_max, 1, 1024, e))) return st;
    if ((st = check_range("--milestone-logit", c->milestone_logit, 0.5, 30, e))) return st;
    if ((st = check_range("--jitter", c->jitter, 0, 0.9, e))) return st;
    if ((st = check_range("--phoenix", c->n_phoenix, 0, SYNTH_MAX_PHOENIX, e))) return st;
    if ((st = check_range("--phoenix-dormant", c->phoenix_dormant, SYNTH_MIN_DORMANT, SYNTH_MAX_TOKENS, e)))
        return st;
    if ((st = check_range("--decoy-rate", c->decoy_rate, 0, 0.5, e))) return st;
    if ((st = check_range("--noise", c->noise, 0, 5, e))) return st;
    return RB_OK;
}

/* ---- the planted truth ---- */

static int cmp_row(const void *a, const void *b) {
    const int32_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

void synth_truth_free(synth_truth *t) {
    if (!t) return;
    free(t->milestones);
    free(t->phoenix);
    free(t->phoenix_last);
    memset(t, 0, sizeof *t);
}

/* A planted token and the spans of steps on which it is attended. */
typedef struct planted {
    int pos;
    int is_phoenix;
    int span0[2], span1[2]; /* inclusive step ranges; empty when [0] > [1] */
    int last_use;           /* last step it is attended */
} planted;

static int planted_active(const planted *p, int t) {
    return (t >= p->span0[0] && t <= p->span0[1]) || (t >= p->span1[0] && t <= p->span1[1]);
}

/* Phoenixes first (prompt positions), then milestones, each in position order. */
static planted *planted_list(const synth_config *c, const synth_truth *t, int *n) {
    *n = t->n_phoenix + t->n_milestones;
    planted *p = rb_calloc((size_t)(*n > 0 ? *n : 1), sizeof *p);
    for (int i = 0; i < t->n_phoenix; i++) {
        const int32_t *r = t->phoenix + 3 * i;
        p[i] = (planted){.pos = r[0], .is_phoenix = 1,
                         .span0 = {r[0] + 1, c->n_prefill - 1},
                         .span1 = {r[2], t->phoenix_last[i]},
                         .last_use = t->phoenix_last[i]};
    }
    for (int i = 0; i < t->n_milestones; i++) {
        const int32_t *r = t->milestones + 3 * i;
        p[t->n_phoenix + i] = (planted){.pos = r[0], .span0 = {r[1], r[2]}, .span1 = {1, 0},
                                        .last_use = r[2]};
    }
    return p;
}

rb_status synth_truth_make(const synth_config *c, synth_truth *t, rb_err *e) {
    memset(t, 0, sizeof *t);
    rng r = rng_make(c->seed, TAG_TRUTH, 0, 0);
    int n_tokens = synth_n_tokens(c);

    /* phoenixes: prompt positions in [n_sinks, n_prefill - PHOENIX_TAIL), revived in
     * [n_prefill + dormant, n_tokens - REVIVE_MIN] */
    int pos_lo = c->n_sinks, pos_hi = c->n_prefill - PHOENIX_TAIL - 1;
    int rev_lo = c->n_prefill + c->phoenix_dormant, rev_hi = n_tokens - REVIVE_MIN;
    if (c->n_phoenix > 0) {
        if (pos_hi - pos_lo + 1 < c->n_phoenix || rev_hi < rev_lo) {
            t->phoenix_dropped = 1;
        } else {
            t->n_phoenix = c->n_phoenix;
            t->phoenix = rb_malloc(sizeof(int32_t) * 3 * (size_t)c->n_phoenix);
            int32_t *last = rb_malloc(sizeof(int32_t) * 3 * (size_t)c->n_phoenix);
            for (int i = 0; i < c->n_phoenix; i++) {
                int pos, dup;
                do { /* distinct positions; n_phoenix <= 64 so rejection is cheap */
                    pos = rng_int(&r, pos_lo, pos_hi);
                    dup = 0;
                    for (int j = 0; j < i; j++) dup |= t->phoenix[3 * j] == pos;
                } while (dup);
                int rev = rng_int(&r, rev_lo, rev_hi);
                int life = rng_loguniform(&r, c->life_min, c->life_max);
                int32_t *row = t->phoenix + 3 * i;
                row[0] = pos;
                row[1] = c->n_prefill;
                row[2] = rev;
                /* carry the revival's end with the row through the sort */
                last[3 * i] = pos;
                last[3 * i + 1] = rev + life - 1 < n_tokens - 1 ? rev + life - 1 : n_tokens - 1;
                last[3 * i + 2] = 0;
            }
            qsort(t->phoenix, (size_t)c->n_phoenix, 3 * sizeof(int32_t), cmp_row);
            qsort(last, (size_t)c->n_phoenix, 3 * sizeof(int32_t), cmp_row);
            t->phoenix_last = rb_malloc(sizeof(int32_t) * (size_t)c->n_phoenix);
            for (int i = 0; i < c->n_phoenix; i++) t->phoenix_last[i] = last[3 * i + 1];
            free(last);
        }
    }

    /* milestones, in position order by construction */
    int cap = 64;
    t->milestones = rb_malloc(sizeof(int32_t) * 3 * (size_t)cap);
    for (int p = c->n_prefill; p < n_tokens; p++) {
        if (rng_unif(&r) >= c->milestone_rate) continue;
        int first = p + rng_int(&r, 1, c->delay_max);
        int life = rng_loguniform(&r, c->life_min, c->life_max);
        if (first > n_tokens - 1) continue;
        if (t->n_milestones == cap) {
            cap *= 2;
            t->milestones = rb_realloc(t->milestones, sizeof(int32_t) * 3 * (size_t)cap);
        }
        int32_t *row = t->milestones + 3 * t->n_milestones++;
        row[0] = p;
        row[1] = first;
        row[2] = first + life - 1 < n_tokens - 1 ? first + life - 1 : n_tokens - 1;
    }

    /* The query addresses active tokens through a linear system on their keys' content
     * channels; with more active tokens than a third of those channels, cross-talk buries
     * the structure, so refuse rather than write a trace without it. */
    int n_planted;
    planted *pl = planted_list(c, t, &n_planted);
    int *delta = rb_calloc((size_t)n_tokens + 1, sizeof(int));
    for (int i = 0; i < n_planted; i++) {
        const int *sp[2] = {pl[i].span0, pl[i].span1};
        for (int s = 0; s < 2; s++)
            if (sp[s][0] <= sp[s][1]) {
                delta[sp[s][0]]++;
                delta[sp[s][1] + 1]--;
            }
    }
    int most = 0, run = 0, at = 0;
    for (int s = 0; s < n_tokens; s++) {
        run += delta[s];
        if (run > most) most = run, at = s;
    }
    free(delta);
    free(pl);
    int limit = content_dims(c->head_dim) / 4;
    if (most > limit) {
        synth_truth_free(t);
        return rb_fail(e, RB_EINPUT, "synth",
                       "%d planted tokens would be active at once (step %d); head_dim %d "
                       "addresses at most %d cleanly: lower --milestone-rate or --life-max, "
                       "or raise --head-dim",
                       most, at, c->head_dim, limit);
    }
    return RB_OK;
}

/* ---- one layer ---- */

/* Channel layout and key-side structure of one (layer, KV head). */
typedef struct head_layout {
    int n_pairs, d_c;
    int sink_ch, out_ch[2];
    int *content;      /* [d_c] channel index of each content dimension */
    double *sig_val;   /* [n_planted, SIG_CHANNELS] spike value (sign * amplitude) */
    int *sig_ch;       /* [n_planted, SIG_CHANNELS] content dimension of each spike */
    double content_var; /* sum of the dense noise variances over content channels */
} head_layout;

static void layout_make(const synth_config *c, const planted *pl, int n_planted, rng *r,
                        head_layout *h) {
    int d = c->head_dim;
    h->n_pairs = rope_pairs(d);
    h->d_c = content_dims(d);
    /* the non-RoPE channels, shuffled so the sink and outlier channels land anywhere */
    int n_rest = d - 2 * h->n_pairs;
    int *rest = rb_malloc(sizeof(int) * (size_t)n_rest);
    for (int i = 0; i < n_rest; i++) rest[i] = 2 * h->n_pairs + i;
    for (int i = n_rest - 1; i > 0; i--) {
        int j = rng_int(r, 0, i), tmp = rest[i];
        rest[i] = rest[j];
        rest[j] = tmp;
    }
    h->sink_ch = rest[0];
    h->out_ch[0] = rest[1];
    h->out_ch[1] = rest[2];
    h->content = rb_malloc(sizeof(int) * (size_t)h->d_c);
    memcpy(h->content, rest + 3, sizeof(int) * (size_t)h->d_c);
    free(rest);

    /* least-recently-used spike channels: tokens active together get disjoint channels
     * while there are enough (synth_truth_make keeps concurrency <= d_c / 3) */
    double amp = SPIKE_NORM * sqrt((double)h->d_c) / sqrt((double)SIG_CHANNELS);
    int *free_after = rb_malloc(sizeof(int) * (size_t)h->d_c);
    double *tie = rb_malloc(sizeof(double) * (size_t)h->d_c);
    for (int i = 0; i < h->d_c; i++) free_after[i] = -1;
    h->sig_val = rb_malloc(sizeof(double) * SIG_CHANNELS * (size_t)(n_planted > 0 ? n_planted : 1));
    h->sig_ch = rb_malloc(sizeof(int) * SIG_CHANNELS * (size_t)(n_planted > 0 ? n_planted : 1));
    for (int i = 0; i < n_planted; i++) {
        for (int ch = 0; ch < h->d_c; ch++) tie[ch] = rng_unif(r);
        for (int s = 0; s < SIG_CHANNELS; s++) {
            int best = -1;
            for (int ch = 0; ch < h->d_c; ch++) {
                int taken = 0;
                for (int u = 0; u < s; u++) taken |= h->sig_ch[SIG_CHANNELS * i + u] == ch;
                if (taken) continue;
                if (best < 0 || free_after[ch] < free_after[best] ||
                    (free_after[ch] == free_after[best] && tie[ch] < tie[best]))
                    best = ch;
            }
            h->sig_ch[SIG_CHANNELS * i + s] = best;
            h->sig_val[SIG_CHANNELS * i + s] = rng_unif(r) < 0.5 ? -amp : amp;
        }
        for (int s = 0; s < SIG_CHANNELS; s++) {
            int ch = h->sig_ch[SIG_CHANNELS * i + s];
            if (pl[i].last_use > free_after[ch]) free_after[ch] = pl[i].last_use;
        }
    }
    free(free_after);
    free(tie);
}

static void layout_free(head_layout *h) {
    free(h->content);
    free(h->sig_val);
    free(h->sig_ch);
}

static double rope_theta(int i, int n_pairs) {
    return n_pairs > 1 ? exp(log(ROPE_LOW) * i / (n_pairs - 1)) : 1.0;
}

/* Rotate pair (x, y) by angle a: real RoPE. */
static void rope_rotate(float *x, float *y, double a) {
    double cs = cos(a), sn = sin(a), x0 = *x, y0 = *y;
    *x = (float)(x0 * cs - y0 * sn);
    *y = (float)(x0 * sn + y0 * cs);
}

/* Keys of one KV head: kh [n_tokens, n_kv_heads, d] at column offset of this head. */
static void keys_make(const synth_config *c, const head_layout *h, const planted *pl,
                      int n_planted, const double *phase, rng *r, float *k, int kvh,
                      double *bias /* [d] out: the shared per-channel offset */) {
    int d = c->head_dim, n_tokens = synth_n_tokens(c), ld = c->n_kv_heads * d;
    double *sd = rb_malloc(sizeof(double) * (size_t)h->d_c);
    for (int i = 0; i < h->d_c; i++) sd[i] = 0.7 + 0.6 * rng_unif(r);
    for (int i = 0; i < d; i++) bias[i] = 0.3 * rng_normal(r);
    double out_off[2];
    for (int o = 0; o < 2; o++) out_off[o] = (rng_unif(r) < 0.5 ? -1 : 1) * (5 + 3 * rng_unif(r));
    /* which token carries which spike: planted tokens by index, decoys drawn here */
    int *owner = rb_malloc(sizeof(int) * (size_t)n_tokens);
    for (int j = 0; j < n_tokens; j++) owner[j] = -1;
    for (int i = 0; i < n_planted; i++) owner[pl[i].pos] = i;
    double amp = SPIKE_NORM * sqrt((double)h->d_c) / sqrt((double)SIG_CHANNELS);

    for (int j = 0; j < n_tokens; j++) {
        float *kj = k + (size_t)j * ld + (size_t)kvh * d;
        for (int i = 0; i < h->n_pairs; i++) {
            kj[2 * i] = (float)(ROPE_KEY_AMP * cos(phase[i]) + 0.1 * rng_normal(r));
            kj[2 * i + 1] = (float)(ROPE_KEY_AMP * sin(phase[i]) + 0.1 * rng_normal(r));
            rope_rotate(&kj[2 * i], &kj[2 * i + 1], rope_theta(i, h->n_pairs) * j);
        }
        double sink = 0.3 * rng_normal(r);
        if (j < c->n_sinks)
            sink = j == 0 ? SINK_KEY : SINK_KEY * (c->sink_logit - 1.5) / fmax(c->sink_logit, 1e-9);
        kj[h->sink_ch] = (float)sink;
        for (int o = 0; o < 2; o++) kj[h->out_ch[o]] = (float)(out_off[o] + rng_normal(r));
        for (int i = 0; i < h->d_c; i++) kj[h->content[i]] = (float)(sd[i] * rng_normal(r));
        if (owner[j] >= 0) {
            for (int s = 0; s < SIG_CHANNELS; s++)
                kj[h->content[h->sig_ch[SIG_CHANNELS * owner[j] + s]]] +=
                    (float)h->sig_val[SIG_CHANNELS * owner[j] + s];
        } else if (j >= c->n_sinks && rng_unif(r) < c->decoy_rate) {
            for (int s = 0; s < SIG_CHANNELS; s++) {
                int ch = rng_int(r, 0, h->d_c - 1);
                kj[h->content[ch]] += (float)(rng_unif(r) < 0.5 ? -amp : amp);
            }
        }
        for (int i = 0; i < d; i++) kj[i] += (float)bias[i];
    }
    free(owner);
    free(sd);
}

/* Cholesky factorisation of the m x m SPD matrix a (in place, lower triangle). */
static void chol(double *a, int m) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j <= i; j++) {
            double s = a[i * m + j];
            for (int p = 0; p < j; p++) s -= a[i * m + p] * a[j * m + p];
            if (i == j) {
                RB_CHECK(s > 0); /* the ridge keeps the Gram matrix positive definite */
                a[i * m + i] = sqrt(s);
            } else {
                a[i * m + j] = s / a[j * m + j];
            }
        }
    }
}

static void chol_solve(const double *l, int m, const double *b, double *x) {
    for (int i = 0; i < m; i++) {
        double s = b[i];
        for (int p = 0; p < i; p++) s -= l[i * m + p] * x[p];
        x[i] = s / l[i * m + i];
    }
    for (int i = m - 1; i >= 0; i--) {
        double s = x[i];
        for (int p = i + 1; p < m; p++) s -= l[p * m + i] * x[p];
        x[i] = s / l[i * m + i];
    }
}

/* Content part of key j of KV head kvh, without the shared per-channel offset (which adds
 * the same logit to every key and so is no part of what the query must shape). */
static void content_row(const float *k, int ldk, int kvh, int d, const head_layout *h,
                        const double *bias, int j, double *dst) {
    const float *kr = k + (size_t)j * ldk + (size_t)kvh * d;
    for (int i = 0; i < h->d_c; i++) dst[i] = kr[h->content[i]] - bias[h->content[i]];
}

/* Cholesky factor of the Gram matrix of rows kc [m, d_c], with a tiny ridge. */
static void gram_factor(const double *kc, int m, int d_c, double *gram) {
    double tr = 0;
    for (int a = 0; a < m; a++)
        for (int bb = 0; bb <= a; bb++) {
            double s = 0;
            for (int i = 0; i < d_c; i++) s += kc[(size_t)a * d_c + i] * kc[(size_t)bb * d_c + i];
            gram[a * m + bb] = gram[bb * m + a] = s;
            if (a == bb) tr += s;
        }
    for (int a = 0; a < m; a++) gram[a * m + a] += 1e-6 * tr / m + 1e-9;
    if (m > 0) chol(gram, m);
}

void synth_layer(const synth_config *c, const synth_truth *t, int layer, float *q, float *k,
                 float *v) {
    int d = c->head_dim, n_tokens = synth_n_tokens(c), group = c->n_q_heads / c->n_kv_heads;
    int ldq = c->n_q_heads * d, ldk = c->n_kv_heads * d;
    double inv_scale = 1.0 / synth_attn_scale(c);
    int n_planted;
    planted *pl = planted_list(c, t, &n_planted);

    for (int kvh = 0; kvh < c->n_kv_heads; kvh++) {
        rng rk = rng_make(c->seed, TAG_KEY, layer, kvh);
        head_layout h;
        layout_make(c, pl, n_planted, &rk, &h);
        double *phase = rb_malloc(sizeof(double) * (size_t)h.n_pairs);
        for (int i = 0; i < h.n_pairs; i++) phase[i] = TWO_PI * rng_unif(&rk);
        double *bias = rb_malloc(sizeof(double) * (size_t)d);
        keys_make(c, &h, pl, n_planted, phase, &rk, k, kvh, bias);

        /* values */
        rng rv = rng_make(c->seed, TAG_VALUE, layer, kvh);
        double *mu = rb_malloc(sizeof(double) * (size_t)d);
        for (int i = 0; i < d; i++) mu[i] = 0.5 * rng_normal(&rv);
        for (int j = 0; j < n_tokens; j++) {
            float *vj = v + (size_t)j * ldk + (size_t)kvh * d;
            double f = j < c->n_sinks ? 0.1 : 1.0;
            for (int i = 0; i < d; i++) vj[i] = (float)(f * (mu[i] + rng_normal(&rv)));
        }
        free(mu);

        /* per query head: recency and sink strengths, per-token strength, noise stream */
        rng *rq = rb_malloc(sizeof(rng) * (size_t)group);
        double *rec_amp = rb_malloc(sizeof(double) * (size_t)group);
        double *strength = rb_malloc(sizeof(double) * (size_t)group * (n_planted > 0 ? n_planted : 1));
        for (int g = 0; g < group; g++) {
            rq[g] = rng_make(c->seed, TAG_QUERY, layer, kvh * group + g);
            rec_amp[g] = c->recency_logit * (0.8 + 0.4 * rng_unif(&rq[g]));
            for (int i = 0; i < n_planted; i++)
                strength[(size_t)g * n_planted + i] =
                    c->milestone_logit * (1 + c->jitter * (2 * rng_unif(&rq[g]) - 1));
        }
        /* dense content noise has variance E[sd^2] = 1.03 per channel (sd ~ U(0.7, 1.3)) */
        double tau = c->noise / sqrt(1.03 * h.d_c);

        /* The constraint set at each step (an active-set method): the planted tokens active
         * at the step (target: their strength), plus every other planted token present whose
         * logit would otherwise exceed CROSS_MAX (target 0), found by re-solving up to
         * ACTIVE_ROUNDS times. Constraining only the offenders keeps the system small and
         * well conditioned, so the query's norm, and its cross-talk onto ordinary keys, stay
         * close to those of the active tokens alone. */
        int max_c = h.d_c - 4 > 1 ? h.d_c - 4 : 1;
        int *cset = rb_malloc(sizeof(int) * (size_t)max_c);
        int *is_act = rb_malloc(sizeof(int) * (size_t)max_c);
        char *in_set = rb_calloc((size_t)(n_planted > 0 ? n_planted : 1), 1);
        double *kc = rb_malloc(sizeof(double) * (size_t)max_c * h.d_c); /* [m, d_c] */
        double *gram = rb_malloc(sizeof(double) * (size_t)max_c * max_c);
        double *b = rb_malloc(sizeof(double) * (size_t)max_c);
        double *alpha = rb_malloc(sizeof(double) * (size_t)max_c);
        double *qc = rb_malloc(sizeof(double) * (size_t)h.d_c);
        double *pk = rb_malloc(sizeof(double) * (size_t)(n_planted > 0 ? n_planted : 1) * h.d_c);
        for (int i = 0; i < n_planted; i++)
            content_row(k, ldk, kvh, d, &h, bias, pl[i].pos, pk + (size_t)i * h.d_c);

        for (int tq = 0; tq < n_tokens; tq++) {
            int m = 0;
            for (int i = 0; i < n_planted; i++) {
                in_set[i] = 0;
                if (m < max_c && pl[i].pos < tq && planted_active(&pl[i], tq)) {
                    in_set[i] = 1;
                    is_act[m] = 1;
                    memcpy(kc + (size_t)m * h.d_c, pk + (size_t)i * h.d_c, sizeof(double) * (size_t)h.d_c);
                    cset[m++] = i;
                }
            }
            for (int round = 0;; round++) {
                gram_factor(kc, m, h.d_c, gram);
                if (round == ACTIVE_ROUNDS || m == max_c) break;
                for (int a = 0; a < m; a++) b[a] = is_act[a] ? c->milestone_logit : 0.0;
                if (m > 0) chol_solve(gram, m, b, alpha);
                for (int i = 0; i < h.d_c; i++) {
                    double sum = 0;
                    for (int a = 0; a < m; a++) sum += alpha[a] * kc[(size_t)a * h.d_c + i];
                    qc[i] = sum;
                }
                int added = 0;
                for (int i = 0; i < n_planted && m < max_c; i++) {
                    if (in_set[i] || pl[i].pos >= tq) continue;
                    const double *kj = pk + (size_t)i * h.d_c;
                    double logit = 0;
                    for (int x = 0; x < h.d_c; x++) logit += qc[x] * kj[x];
                    if (logit <= CROSS_MAX) continue;
                    in_set[i] = 1;
                    is_act[m] = 0;
                    memcpy(kc + (size_t)m * h.d_c, kj, sizeof(double) * (size_t)h.d_c);
                    cset[m++] = i;
                    added++;
                }
                if (!added) break;
            }

            for (int g = 0; g < group; g++) {
                rng *r = &rq[g];
                float *qt = q + (size_t)tq * ldq + (size_t)(kvh * group + g) * d;
                /* recency: the keys' RoPE vectors, same phases, amplitude giving the logit */
                double bq = rec_amp[g] / (h.n_pairs * ROPE_KEY_AMP);
                for (int i = 0; i < h.n_pairs; i++) {
                    qt[2 * i] = (float)(bq * cos(phase[i]));
                    qt[2 * i + 1] = (float)(bq * sin(phase[i]));
                    rope_rotate(&qt[2 * i], &qt[2 * i + 1], rope_theta(i, h.n_pairs) * tq);
                }
                qt[h.sink_ch] = (float)(c->sink_logit / SINK_KEY * (1 + 0.05 * rng_normal(r)));
                for (int o = 0; o < 2; o++) qt[h.out_ch[o]] = (float)(0.1 * rng_normal(r));
                for (int a = 0; a < m; a++)
                    b[a] = is_act[a] ? strength[(size_t)g * n_planted + cset[a]] : 0.0;
                if (m > 0) chol_solve(gram, m, b, alpha);
                for (int i = 0; i < h.d_c; i++) {
                    double s = tau * rng_normal(r);
                    for (int a = 0; a < m; a++) s += alpha[a] * kc[(size_t)a * h.d_c + i];
                    qt[h.content[i]] = (float)s;
                }
                for (int i = 0; i < d; i++) qt[i] = (float)(qt[i] * inv_scale);
            }
        }
        free(cset);
        free(is_act);
        free(in_set);
        free(qc);
        free(pk);
        free(bias);
        free(kc);
        free(gram);
        free(b);
        free(alpha);
        free(rq);
        free(rec_amp);
        free(strength);
        free(phase);
        layout_free(&h);
    }
    free(pl);
}

/* ---- writing ---- */

void synth_meta(const synth_config *c, trace_meta *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->source, sizeof m->source, "synth");
    snprintf(m->model, sizeof m->model, "synthetic");
    m->n_layers = c->n_layers;
    m->n_q_heads = c->n_q_heads;
    m->n_kv_heads = c->n_kv_heads;
    m->head_dim = c->head_dim;
    m->n_prefill = c->n_prefill;
    m->n_tokens = synth_n_tokens(c);
    m->attn_scale = synth_attn_scale(c);
    m->dtype = c->dtype;
    m->n_stored = c->n_layers;
    for (int l = 0; l < c->n_layers; l++) {
        m->layers[l] = l;
        m->sliding_window[l] = 0;
    }
}

rb_status synth_write(const synth_config *c, const char *path, synth_truth *truth_out,
                      rb_err *e) {
    rb_status st = synth_config_check(c, e);
    if (st) return st;
    synth_truth t;
    if ((st = synth_truth_make(c, &t, e))) return st;
    trace_meta m;
    synth_meta(c, &m);
    trace_writer *w = NULL;
    if ((st = trace_writer_create(path, &m, &w, e))) {
        synth_truth_free(&t);
        return st;
    }
    int n_tokens = synth_n_tokens(c);
    float *q = rb_malloc(sizeof(float) * (size_t)n_tokens * c->n_q_heads * c->head_dim);
    float *k = rb_malloc(sizeof(float) * (size_t)n_tokens * c->n_kv_heads * c->head_dim);
    float *v = rb_malloc(sizeof(float) * (size_t)n_tokens * c->n_kv_heads * c->head_dim);
    for (int l = 0; l < c->n_layers && !st; l++) {
        synth_layer(c, &t, l, q, k, v);
        st = trace_writer_append(w, l, n_tokens, q, k, v, e);
    }
    free(q);
    free(k);
    free(v);
    if (!st) st = trace_writer_set_truth(w, "milestones", t.milestones, t.n_milestones, e);
    if (!st) st = trace_writer_set_truth(w, "phoenix", t.phoenix, t.n_phoenix, e);
    if (st) {
        trace_writer_abort(w);
        synth_truth_free(&t);
        return st;
    }
    if ((st = trace_writer_finish(w, e))) {
        synth_truth_free(&t);
        return st;
    }
    if (truth_out)
        *truth_out = t;
    else
        synth_truth_free(&t);
    return RB_OK;
}
