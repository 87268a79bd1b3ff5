/* synth.c: the synthetic reasoning-trace generator (see synth.h).
 *
 * THE MODEL. Logits are designed in natural units, logit = q~.k, and the stored query is
 * q = q~ / attn_scale, so that softmax(attn_scale * q.k) is the designed distribution.
 * Each (layer, KV head) splits its head_dim channels into four groups (the non-RoPE ones
 * shuffled per head, so the special channels land anywhere):
 *
 *   recency  3/16 of the channels (12 RoPE pairs at head_dim 64). Every key and query
 *            carries a fixed vector in each pair, rotated by real RoPE at its position with
 *            frequencies geometric from 1 to 1/32 rad/token, so q_t.k_j =
 *            A * mean_i cos(theta_i (t - j)): A at j = t, ~0.5 A three tokens back, ~0.1 A
 *            past 16, then fluctuating around 0 with std ~0.2 A (the stripes RoPE gives
 *            real attention maps). A = recency_logit, x U(0.8, 1.2) per query head.
 *            Heavy keys (below) carry 0.3 of the recency vector.
 *   sink     one channel: 8 on position 0 (sink_logit), smaller on the other sinks (1.5
 *            logits less), N(0, 0.3) elsewhere; every query carries sink_logit / 8 there.
 *   outlier  two channels with a large per-channel offset (5 to 8, random sign) plus
 *            N(0, 1) per token, as the massive channels of real keys; queries are small there.
 *   fade     one channel: -8 on every heavy key, N(0, 0.3) elsewhere; every query carries
 *            FADE_LOGIT / 8 there, so a heavy key starts FADE_LOGIT (12) logits below an
 *            ordinary one and is attended only where the content part seeks it.
 *   content  the rest: d_c = head_dim - 2 * (3 head_dim / 16) - 4, 36 at head_dim 64.
 *            Ordinary keys have dense N(0, s_c) noise (s_c in U(0.7, 1.3) per channel).
 *            Heavy keys (milestones, phoenixes, decoys) have 0.3 of that noise plus a spike
 *            of norm 3 sqrt(d_c) over 4 channels (about 9 sigma per
 *            channel): the heavy channels important tokens have in real keys, which is what
 *            Quest's per-page min/max bounds see. The tokens of a milestone phrase share one
 *            spike. Milestones and phoenixes take their channels least-recently-used first
 *            (tokens active together do not share channels); decoys take random ones; no
 *            two heavy keys share two channels (until every pair is taken); the signs
 *            are chosen so that two heavy keys sharing channels overlap as little as
 *            possible (two shared channels: one agrees, one disagrees).
 *
 * Every key channel also gets a per-channel offset N(0, 0.3), shared by all tokens (it
 * changes no softmax but moves every page's min/max, as the k_proj bias does).
 *
 * The content part of the query at step t solves for the minimum-norm vector whose logit
 * is milestone_logit + FADE_LOGIT (x 1 +- jitter per layer, query head and token, on
 * milestone_logit) on each phrase and phoenix active at t (through the mean of the phrase's
 * keys), and FADE_LOGIT (net 0, an ordinary key's logit) on the heavy keys that would
 * otherwise get more than CROSS_MAX net (an active-set method: solve, find the
 * offenders, add them, re-solve; at most d_c/2 rows, worst offenders first). Noise
 * N(0, tau) projected off those keys is added (tau: std `noise` on an ordinary key). So
 * active tokens are attended, and faded milestones, dormant phoenixes and decoys look like
 * ordinary keys. The dense key noise, the RoPE stripes and the heavy keys the active set
 * had no room for add heavy-tailed background noise.
 *
 * Schedule (the truth, shared by every layer and KV head): each decode token starts a
 * milestone phrase of 1..phrase_max tokens with probability milestone_rate; the phrase is
 * active from 1..delay_max steps after its last token for a lifespan log-uniform in
 * [life_min, life_max] (clipped at the end), unless that would make more than
 * synth_max_active phrases active at once (then it is not planted: thinning). Phoenixes
 * are prompt positions (after the sinks, at least 16 before the end of the prompt)
 * attended by every later prompt query, dormant from the first decode step for at least
 * phoenix_dormant steps, then revived for a log-uniform lifespan. Decoys are a decoy_rate
 * share of the other positions. Values are N(mu_c, 1) with a per-channel mean
 * mu_c ~ N(0, 0.5); sink values are scaled by 0.1 (real sinks carry little value).
 *
 * Fading for good (issue 14). The query addresses at most d_c/2 heavy keys exactly, and
 * every active phrase makes 4 channels "hot"; an old heavy key sharing hot channels takes
 * (target / 4) per agreeing channel. Heavy keys accumulate with the decode while d_c is
 * fixed, so sooner or later old keys share two or three hot channels: with 4 phrases at
 * once, no fade channel and offenders pinned at logit 0 (the old model), the offenders
 * outgrew the set after a few hundred milestone tokens, every re-solve bent the query
 * into new offenders, its norm blew up and faded milestones took up to 100% of the mass
 * (dormant phoenixes 34-54%) at 4-8k steps. Now (a) the fade channel puts every heavy
 * key 12 logits down, so only a key agreeing with three hot channels is an offender;
 * (b) offenders are pinned at net 0, near where they were, not 12 logits below, so the
 * re-solve hardly bends the query; (c) signs keep shared channels from adding up; (d)
 * thinning keeps at most d_c/16 phrases active (2 at head_dim 64), so 8 channels are hot
 * rather than 16 and three-channel agreement stays rare at any length. Measured
 * (tests/test_synth_long.c): faded milestones <= 0.22% of the mass at every 8th step of
 * 8192 at head_dim 32 and 64, <= 0.9% of 16384 at 64.
 *
 * Random streams are keyed by (seed, purpose, layer, head), so a layer's bytes depend only on
 * the config and the layer index. */
#include "synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIG_CHANNELS 4      /* spike channels of a planted token or decoy */
#define SINK_KEY 8.0        /* key value of position 0 in the sink channel */
#define PHOENIX_TAIL 16     /* phoenixes sit at least this far before the end of the prompt */
#define REVIVE_MIN 16       /* a revival needs at least this many steps left */
#define ROPE_LOW (1.0 / 32) /* lowest recency frequency, rad/token */
#define ROPE_KEY_AMP 1.5    /* key amplitude in each recency pair */
#define TWO_PI 6.283185307179586
#define CROSS_MAX 3.0       /* largest content logit tolerated on an inactive planted token */
#define ACTIVE_ROUNDS 4     /* re-solves that add offending planted tokens as zero targets */
#define PLANTED_DENSE 0.3   /* dense content noise of planted tokens, relative */
#define SCAN_WINDOW 8192    /* planted tokens this close to the query are always checked */
#define PLANTED_ROPE 0.3    /* recency amplitude of planted keys, relative */
#define SPIKE_NORM 3.0      /* spike norm of a planted token, in units of sqrt(d_c) */
#define FADE_LOGIT 12.0     /* logit every query takes off a heavy key (the fade channel) */
#define FADE_KEY 8.0        /* |key| of a heavy key in the fade channel */
#define THIN_DIV 16         /* milestone phrases active at once: at most d_c / THIN_DIV */

enum { TAG_TRUTH = 1, TAG_KEY, TAG_QUERY, TAG_VALUE, TAG_TOKENS };

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
        .sink_logit = 7.5,
        .recency_logit = 7.0,
        .milestone_rate = 1.0 / 32,
        .phrase_max = 3,
        .life_min = 32,
        .life_max = 320,
        .delay_max = 4,
        .milestone_logit = 9.0,
        .jitter = 0.1,
        .n_phoenix = 4,
        .phoenix_dormant = 256,
        .decoy_rate = 0.0,
        .noise = 0.5,
    };
}

rb_status synth_config_preset(synth_config *c, const char *name, rb_err *e) {
    if (!strcmp(name, "default")) return RB_OK;
    if (!strcmp(name, "h2o-stress")) {
        c->n_layers = 2;
        c->head_dim = 128;
        c->n_decode = 8192;
        c->milestone_rate = 1.0 / 24;
        c->phrase_max = 8;
        c->life_min = 128;
        c->life_max = 512;
        return RB_OK;
    }
    return rb_fail(e, RB_EINPUT, "--preset", "unknown preset '%s' (default, h2o-stress)", name);
}

int synth_n_tokens(const synth_config *c) { return c->n_prefill + c->n_decode; }

float synth_attn_scale(const synth_config *c) { return (float)(1.0 / sqrt((double)c->head_dim)); }

static int rope_pairs(int head_dim) { return head_dim * 3 / 16; }
static int content_dims(int head_dim) { return head_dim - 2 * rope_pairs(head_dim) - 4; }

int synth_max_active(const synth_config *c) { return content_dims(c->head_dim) / 8; }

int synth_max_phrases(const synth_config *c) {
    int n = content_dims(c->head_dim) / THIN_DIV;
    return n > 0 ? n : 1;
}

static rb_status check_int(const char *what, int v, int lo, int hi, rb_err *e) {
    if (v < lo || v > hi) return rb_fail(e, RB_EINPUT, what, "%d is outside [%d, %d]", v, lo, hi);
    return RB_OK;
}

static rb_status check_real(const char *what, double v, double lo, double hi, rb_err *e) {
    if (!(v >= lo && v <= hi)) return rb_fail(e, RB_EINPUT, what, "%g is outside [%g, %g]", v, lo, hi);
    return RB_OK;
}

rb_status synth_config_check(const synth_config *c, rb_err *e) {
    rb_status st;
    if ((st = check_int("--layers", c->n_layers, 1, TRACE_MAX_LAYERS, e))) return st;
    if ((st = check_int("--kv-heads", c->n_kv_heads, 1, SYNTH_MAX_KV_HEADS, e))) return st;
    if ((st = check_int("--q-heads", c->n_q_heads, 1, SYNTH_MAX_Q_HEADS, e))) return st;
    if (c->n_q_heads % c->n_kv_heads)
        return rb_fail(e, RB_EINPUT, "--q-heads", "%d is not a multiple of --kv-heads %d",
                       c->n_q_heads, c->n_kv_heads);
    if ((st = check_int("--head-dim", c->head_dim, SYNTH_MIN_HEAD_DIM, SYNTH_MAX_HEAD_DIM, e)))
        return st;
    if (c->head_dim % 2) return rb_fail(e, RB_EINPUT, "--head-dim", "%d is odd (RoPE needs pairs)", c->head_dim);
    if ((st = check_int("--sinks", c->n_sinks, 0, 64, e))) return st;
    if ((st = check_int("--prefill", c->n_prefill, c->n_sinks + 1, SYNTH_MAX_TOKENS, e)))
        return st;
    if ((st = check_int("--decode", c->n_decode, 1, SYNTH_MAX_TOKENS, e))) return st;
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
    if ((st = check_real("--sink-logit", c->sink_logit, 0, 20, e))) return st;
    if ((st = check_real("--recency-logit", c->recency_logit, 0, 20, e))) return st;
    if ((st = check_real("--milestone-rate", c->milestone_rate, 0, 0.5, e))) return st;
    if ((st = check_int("--phrase-max", c->phrase_max, 1, 64, e))) return st;
    if ((st = check_int("--life-min", c->life_min, 1, SYNTH_MAX_TOKENS, e))) return st;
    if ((st = check_int("--life-max", c->life_max, c->life_min, SYNTH_MAX_TOKENS, e))) return st;
    if ((st = check_int("--delay-max", c->delay_max, 1, 1024, e))) return st;
    if ((st = check_real("--milestone-logit", c->milestone_logit, 0.5, 30, e))) return st;
    if ((st = check_real("--jitter", c->jitter, 0, 0.9, e))) return st;
    if ((st = check_int("--phoenix", c->n_phoenix, 0, SYNTH_MAX_PHOENIX, e))) return st;
    if (c->n_phoenix > synth_max_active(c))
        return rb_fail(e, RB_EINPUT, "--phoenix",
                       "all %d phoenixes are attended together in the prompt, but head_dim %d "
                       "addresses at most %d planted tokens at once",
                       c->n_phoenix, c->head_dim, synth_max_active(c));
    if ((st = check_int("--phoenix-dormant", c->phoenix_dormant, SYNTH_MIN_DORMANT, SYNTH_MAX_TOKENS, e)))
        return st;
    if ((st = check_real("--decoy-rate", c->decoy_rate, 0, 0.5, e))) return st;
    if ((st = check_real("--noise", c->noise, 0, 5, e))) return st;
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
    free(t->decoys);
    memset(t, 0, sizeof *t);
}

/* A planted token and the spans of steps on which it is attended. */
typedef struct planted {
    int pos, len;           /* tokens pos..pos+len-1 (a milestone phrase; 1 for a phoenix) */
    int is_phoenix, is_decoy;
    int span0[2], span1[2]; /* inclusive step ranges; empty when [0] > [1] */
    int last_use;           /* last step it is attended */
} planted;

static int planted_active(const planted *p, int t) {
    return (t >= p->span0[0] && t <= p->span0[1]) || (t >= p->span1[0] && t <= p->span1[1]);
}

static int cmp_planted(const void *a, const void *b) {
    const planted *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Every token with a heavy key, in position order: phoenixes, milestone phrases (runs of
 * consecutive milestone tokens sharing one lifecycle) and decoys (never active). */
static planted *planted_list(const synth_config *c, const synth_truth *t, int *n) {
    planted *p = rb_calloc((size_t)(t->n_phoenix + t->n_milestones + t->n_decoys + 1), sizeof *p);
    for (int i = 0; i < t->n_phoenix; i++) {
        const int32_t *r = t->phoenix + 3 * i;
        p[i] = (planted){.pos = r[0], .len = 1, .is_phoenix = 1,
                         .span0 = {r[0] + 1, c->n_prefill - 1},
                         .span1 = {r[2], t->phoenix_last[i]},
                         .last_use = t->phoenix_last[i]};
    }
    *n = t->n_phoenix;
    for (int i = 0; i < t->n_milestones; i++) {
        const int32_t *r = t->milestones + 3 * i;
        planted *prev = *n > t->n_phoenix ? &p[*n - 1] : NULL;
        if (prev && prev->pos + prev->len == r[0] && prev->span0[0] == r[1] &&
            prev->span0[1] == r[2]) {
            prev->len++;
            continue;
        }
        p[(*n)++] = (planted){.pos = r[0], .len = 1, .span0 = {r[1], r[2]}, .span1 = {1, 0},
                              .last_use = r[2]};
    }
    for (int i = 0; i < t->n_decoys; i++)
        p[(*n)++] = (planted){.pos = t->decoys[i], .len = 1, .is_decoy = 1, .span0 = {1, 0},
                              .span1 = {1, 0}, .last_use = -1};
    qsort(p, (size_t)*n, sizeof *p, cmp_planted);
    return p;
}

/* Phoenixes: prompt positions in [n_sinks, n_prefill - PHOENIX_TAIL), revived in
 * [n_prefill + dormant, n_tokens - REVIVE_MIN]; none (phoenix_dropped) when either range is
 * too short. */
static void phoenix_plant(const synth_config *c, rng *r, synth_truth *t) {
    int n_tokens = synth_n_tokens(c);
    int pos_lo = c->n_sinks, pos_hi = c->n_prefill - PHOENIX_TAIL - 1;
    int rev_lo = c->n_prefill + c->phoenix_dormant, rev_hi = n_tokens - REVIVE_MIN;
    if (c->n_phoenix <= 0) return;
    if (pos_hi - pos_lo + 1 < c->n_phoenix || rev_hi < rev_lo) {
        t->phoenix_dropped = 1;
        return;
    }
    t->n_phoenix = c->n_phoenix;
    t->phoenix = rb_malloc(sizeof(int32_t) * 3 * (size_t)c->n_phoenix);
    int32_t *last = rb_malloc(sizeof(int32_t) * 3 * (size_t)c->n_phoenix);
    for (int i = 0; i < c->n_phoenix; i++) {
        int pos, dup;
        do { /* distinct positions; n_phoenix <= 64 so rejection is cheap */
            pos = rng_int(r, pos_lo, pos_hi);
            dup = 0;
            for (int j = 0; j < i; j++) dup |= t->phoenix[3 * j] == pos;
        } while (dup);
        int rev = rng_int(r, rev_lo, rev_hi);
        int life = rng_loguniform(r, c->life_min, c->life_max);
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

/* Milestone phrases, in position order by construction. Concurrency: the query addresses
 * the active tokens through a linear system on their keys' content channels, which stays
 * clean up to synth_max_active phrases at once (phoenixes count). */
static void milestones_plant(const synth_config *c, rng *r, synth_truth *t) {
    int n_tokens = synth_n_tokens(c);
    int limit = synth_max_phrases(c);
    int *busy = rb_calloc((size_t)n_tokens, sizeof(int)); /* [n_tokens] active phrases */
    for (int i = 0; i < t->n_phoenix; i++) {
        for (int s = t->phoenix[3 * i] + 1; s < c->n_prefill; s++) busy[s]++;
        for (int s = t->phoenix[3 * i + 2]; s <= t->phoenix_last[i]; s++) busy[s]++;
    }

    int cap = 64;
    t->milestones = rb_malloc(sizeof(int32_t) * 3 * (size_t)cap);
    for (int p = c->n_prefill; p < n_tokens; p++) {
        if (rng_unif(r) >= c->milestone_rate) continue;
        int len = rng_int(r, 1, c->phrase_max);
        if (len > n_tokens - p) len = n_tokens - p;
        int first = p + len - 1 + rng_int(r, 1, c->delay_max);
        int life = rng_loguniform(r, c->life_min, c->life_max);
        if (first > n_tokens - 1) break; /* no later phrase can be active either */
        int last = first + life - 1 < n_tokens - 1 ? first + life - 1 : n_tokens - 1;
        /* thinning: a phrase that would exceed the concurrency limit is not planted (its
         * tokens stay ordinary), so every seed gives a trace the query can address */
        int full = 0;
        for (int s = first; s <= last && !full; s++) full = busy[s] >= limit;
        if (full) {
            p += len - 1;
            continue;
        }
        for (int s = first; s <= last; s++) busy[s]++;
        for (int j = 0; j < len; j++) {
            if (t->n_milestones == cap) {
                cap *= 2;
                t->milestones = rb_realloc(t->milestones, sizeof(int32_t) * 3 * (size_t)cap);
            }
            int32_t *row = t->milestones + 3 * t->n_milestones++;
            row[0] = p + j;
            row[1] = first;
            row[2] = last;
        }
        p += len - 1;
    }

    free(busy);
}

/* Decoys: ordinary positions (not sinks, not planted) with heavy keys. */
static void decoys_plant(const synth_config *c, rng *r, synth_truth *t) {
    int n_tokens = synth_n_tokens(c);
    char *taken = rb_calloc((size_t)n_tokens, 1);
    for (int i = 0; i < t->n_phoenix; i++) taken[t->phoenix[3 * i]] = 1;
    for (int i = 0; i < t->n_milestones; i++) taken[t->milestones[3 * i]] = 1;
    t->decoys = rb_malloc(sizeof(int32_t) * (size_t)(n_tokens > 0 ? n_tokens : 1));
    for (int j = c->n_sinks; j < n_tokens; j++)
        if (rng_unif(r) < c->decoy_rate && !taken[j]) t->decoys[t->n_decoys++] = j;
    free(taken);
}

rb_status synth_truth_make(const synth_config *c, synth_truth *t, rb_err *e) {
    (void)e;
    memset(t, 0, sizeof *t);
    /* one stream, drawn in this order */
    rng r = rng_make(c->seed, TAG_TRUTH, 0, 0);
    phoenix_plant(c, &r, t);
    milestones_plant(c, &r, t);
    decoys_plant(c, &r, t);
    return RB_OK;
}

/* ---- one layer ---- */

/* Channel layout and key-side structure of one (layer, KV head). */
typedef struct head_layout {
    int n_pairs, d_c;
    int sink_ch, out_ch[2], fade_ch;
    int *content;      /* [d_c] channel index of each content dimension */
    double *sig_val;   /* [n_planted, SIG_CHANNELS] spike value (sign * amplitude) */
    int *sig_ch;       /* [n_planted, SIG_CHANNELS] content dimension of each spike */
    double content_var; /* sum of the dense noise variances over content channels */
} head_layout;

/* The heavy keys planted so far that spike on one content channel. */
typedef struct chan_users {
    int *idx, n, cap;
} chan_users;

/* Signs of planted token i's spike (channels chosen, random signs drawn): of the 2^4 sign
 * flips, the one whose largest overlap with an earlier heavy key (sum over shared channels
 * of the sign products) is smallest, then the smallest sum of squared overlaps, ties to the
 * drawn signs. Two keys sharing two channels then overlap by 0 rather than +-2 channels, so
 * a query seeking one gives the other no more than one channel's worth of logit: without
 * this, once every channel pair is taken (about d_c^2 / 12 heavy keys, a few thousand decode
 * steps), queries seeking new milestones would attend old ones sharing two channels. */
static void signs_choose(head_layout *h, int i, chan_users *users) {
    int *ch = h->sig_ch + SIG_CHANNELS * i;
    double *val = h->sig_val + SIG_CHANNELS * i;
    int best_mask = 0, best_max = 1 << 30;
    long best_sq = 1L << 60;
    for (int mask = 0; mask < (1 << SIG_CHANNELS); mask++) {
        int worst = 0;
        long sq = 0;
        for (int s = 0; s < SIG_CHANNELS; s++)
            for (int u = 0; u < users[ch[s]].n; u++) {
                int o = users[ch[s]].idx[u];
                /* count each earlier key once: at its first shared channel of ours */
                int first = 1;
                for (int s2 = 0; s2 < s && first; s2++)
                    for (int x = 0; x < SIG_CHANNELS; x++)
                        if (h->sig_ch[SIG_CHANNELS * o + x] == ch[s2]) first = 0;
                if (!first) continue;
                int ov = 0;
                for (int s2 = 0; s2 < SIG_CHANNELS; s2++)
                    for (int x = 0; x < SIG_CHANNELS; x++)
                        if (h->sig_ch[SIG_CHANNELS * o + x] == ch[s2]) {
                            double mine = ((mask >> s2) & 1) ? -val[s2] : val[s2];
                            ov += (mine > 0) == (h->sig_val[SIG_CHANNELS * o + x] > 0) ? 1 : -1;
                        }
                if (abs(ov) > worst) worst = abs(ov);
                sq += (long)ov * ov;
            }
        if (worst < best_max || (worst == best_max && sq < best_sq))
            best_max = worst, best_sq = sq, best_mask = mask;
    }
    for (int s = 0; s < SIG_CHANNELS; s++) {
        if ((best_mask >> s) & 1) val[s] = -val[s];
        chan_users *cu = &users[ch[s]];
        if (cu->n == cu->cap) {
            cu->cap = cu->cap ? 2 * cu->cap : 16;
            cu->idx = rb_realloc(cu->idx, sizeof(int) * (size_t)cu->cap);
        }
        cu->idx[cu->n++] = i;
    }
}

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
    h->fade_ch = rest[3];
    h->content = rb_malloc(sizeof(int) * (size_t)h->d_c);
    memcpy(h->content, rest + 4, sizeof(int) * (size_t)h->d_c);
    free(rest);

    /* least-recently-used spike channels: tokens active together get disjoint channels
     * while there are enough (synth_truth_make keeps concurrency <= d_c / 4) */
    double amp = SPIKE_NORM * sqrt((double)h->d_c) / sqrt((double)SIG_CHANNELS);
    int *free_after = rb_malloc(sizeof(int) * (size_t)h->d_c);
    double *tie = rb_malloc(sizeof(double) * (size_t)h->d_c);
    for (int i = 0; i < h->d_c; i++) free_after[i] = -1;
    /* No two heavy keys share both spike channels (until every pair is used): two such
     * keys would be nearly parallel, and asking the query to attend one but not the other
     * would blow its norm up. Sharing one channel leaves them well apart. */
    char *pair_used = rb_calloc((size_t)h->d_c * h->d_c, 1);
    chan_users *users = rb_calloc((size_t)h->d_c, sizeof *users);
    h->sig_val = rb_malloc(sizeof(double) * SIG_CHANNELS * (size_t)(n_planted > 0 ? n_planted : 1));
    h->sig_ch = rb_malloc(sizeof(int) * SIG_CHANNELS * (size_t)(n_planted > 0 ? n_planted : 1));
    for (int i = 0; i < n_planted; i++) {
        /* decoys ignore the LRU order: their channels are random */
        for (int ch = 0; ch < h->d_c; ch++) tie[ch] = rng_unif(r);
        for (int s = 0; s < SIG_CHANNELS; s++) {
            int best = -1;
            /* first pass honours the pair rule; if no channel does, the second ignores it */
            for (int pass = 0; pass < 2 && best < 0; pass++)
                for (int ch = 0; ch < h->d_c; ch++) {
                    int taken = 0;
                    for (int u = 0; u < s; u++) {
                        int o = h->sig_ch[SIG_CHANNELS * i + u];
                        taken |= o == ch || (pass == 0 && pair_used[o * h->d_c + ch]);
                    }
                    if (taken) continue;
                    int lru = pl[i].is_decoy ? 0 : 1;
                    if (best < 0 || (lru && free_after[ch] < free_after[best]) ||
                        ((!lru || free_after[ch] == free_after[best]) && tie[ch] < tie[best]))
                        best = ch;
                }
            h->sig_ch[SIG_CHANNELS * i + s] = best;
            h->sig_val[SIG_CHANNELS * i + s] = rng_unif(r) < 0.5 ? -amp : amp;
        }
        signs_choose(h, i, users);
        for (int s = 0; s < SIG_CHANNELS; s++) {
            int ch = h->sig_ch[SIG_CHANNELS * i + s];
            if (pl[i].last_use > free_after[ch]) free_after[ch] = pl[i].last_use;
            for (int u = 0; u < s; u++) {
                int o = h->sig_ch[SIG_CHANNELS * i + u];
                pair_used[o * h->d_c + ch] = pair_used[ch * h->d_c + o] = 1;
            }
        }
    }
    free(pair_used);
    free(free_after);
    free(tie);
    for (int ch = 0; ch < h->d_c; ch++) free(users[ch].idx);
    free(users);
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
    /* which token carries which spike (planted tokens and decoys, by list index) */
    int *owner = rb_malloc(sizeof(int) * (size_t)n_tokens);
    for (int j = 0; j < n_tokens; j++) owner[j] = -1;
    for (int i = 0; i < n_planted; i++)
        for (int j = 0; j < pl[i].len; j++) owner[pl[i].pos + j] = i;
    for (int j = 0; j < n_tokens; j++) {
        float *kj = k + (size_t)j * ld + (size_t)kvh * d;
        /* planted tokens carry a weaker recency vector: far from the query RoPE's sum of
         * cosines rings with std ~0.25 A, which would shake their designed logits */
        double ramp = ROPE_KEY_AMP * (owner[j] >= 0 ? PLANTED_ROPE : 1.0);
        for (int i = 0; i < h->n_pairs; i++) {
            kj[2 * i] = (float)(ramp * cos(phase[i]) + 0.1 * rng_normal(r));
            kj[2 * i + 1] = (float)(ramp * sin(phase[i]) + 0.1 * rng_normal(r));
            rope_rotate(&kj[2 * i], &kj[2 * i + 1], rope_theta(i, h->n_pairs) * j);
        }
        double sink = 0.3 * rng_normal(r);
        if (j < c->n_sinks)
            sink = j == 0 || c->sink_logit <= 0
                       ? SINK_KEY
                       : SINK_KEY * fmax(c->sink_logit - 1.5, 0) / c->sink_logit;
        kj[h->sink_ch] = (float)sink;
        kj[h->fade_ch] = (float)((owner[j] >= 0 ? -FADE_KEY : 0.0) + 0.3 * rng_normal(r));
        for (int o = 0; o < 2; o++) kj[h->out_ch[o]] = (float)(out_off[o] + rng_normal(r));
        /* planted tokens get half the dense noise, so the tokens of a phrase, addressed
         * together through their mean key, receive similar logits */
        double dense = owner[j] >= 0 ? PLANTED_DENSE : 1.0;
        for (int i = 0; i < h->d_c; i++)
            kj[h->content[i]] = (float)(dense * sd[i] * rng_normal(r));
        if (owner[j] >= 0) {
            for (int s = 0; s < SIG_CHANNELS; s++)
                kj[h->content[h->sig_ch[SIG_CHANNELS * owner[j] + s]]] +=
                    (float)h->sig_val[SIG_CHANNELS * owner[j] + s];
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

/* Record planted token i as an offender when its content logit exceeds CROSS_MAX. */
static void scan_off(const double *qc, const double *pk, int d_c, int i, double *off_logit,
                     int *off_idx, int *n_off) {
    const double *kj = pk + (size_t)i * d_c;
    double logit = 0;
    for (int x = 0; x < d_c; x++) logit += qc[x] * kj[x];
    if (logit <= CROSS_MAX + FADE_LOGIT) return;
    off_logit[*n_off] = logit;
    off_idx[(*n_off)++] = i;
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

/* Values of KV head kvh: a per-head mean plus noise, sinks damped. */
static void values_make(const synth_config *c, int layer, int kvh, float *v) {
    int d = c->head_dim, ldk = c->n_kv_heads * d;
    rng rv = rng_make(c->seed, TAG_VALUE, layer, kvh);
    double *mu = rb_malloc(sizeof(double) * (size_t)d);
    for (int i = 0; i < d; i++) mu[i] = 0.5 * rng_normal(&rv);
    for (int j = 0; j < synth_n_tokens(c); j++) {
        float *vj = v + (size_t)j * ldk + (size_t)kvh * d;
        double f = j < c->n_sinks ? 0.1 : 1.0;
        for (int i = 0; i < d; i++) vj[i] = (float)(f * (mu[i] + rng_normal(&rv)));
    }
    free(mu);
}

/* The query side of one KV head: its query heads' streams and strengths, and the state of
 * the constraint solve. The constraint set at each step (an active-set method): the planted
 * tokens active at the step (target: their strength), plus every other planted token
 * present whose logit would otherwise exceed CROSS_MAX (target 0), found by re-solving up
 * to ACTIVE_ROUNDS times. Constraining only the offenders keeps the system small and well
 * conditioned, so the query's norm, and its cross-talk onto ordinary keys, stay close to
 * those of the active tokens alone. */
typedef struct query_solver {
    const synth_config *c;
    const head_layout *h;
    const planted *pl;
    int n_planted, group;
    rng *rq;            /* [group] noise stream of each query head */
    double *rec_amp;    /* [group] recency logit of each query head */
    double *strength;   /* [group, n_planted] target logit of each planted token */
    double tau;         /* content noise scale */
    /* at most half the content channels: a fuller system is ill-conditioned and its
     * solution's norm (hence the noise it puts on every key) blows up */
    int max_c, m;       /* the constraint set: cset[0..m), is_act: a target, not an offender */
    int *cset, *is_act;
    char *in_set;       /* [n_planted] */
    double *kc, *gram, *b, *alpha, *qc; /* [m, d_c], [m, m], [m], [m], [d_c] */
    int *user_start, *users, *seen;     /* users of each content channel (CSR), scan stamps */
    int stamp, recent;  /* recent: first planted token inside SCAN_WINDOW */
    double *off_logit;  /* [n_planted] offenders found by a scan */
    int *off_idx;
    double *pk;         /* [n_planted, d_c] content key of each planted token (phrase mean) */
} query_solver;

static void solver_init(query_solver *s, const synth_config *c, const head_layout *h,
                        const planted *pl, int n_planted, int layer, int kvh, const float *k,
                        const double *bias) {
    memset(s, 0, sizeof *s);
    int d = c->head_dim, ldk = c->n_kv_heads * d, np = n_planted > 0 ? n_planted : 1;
    s->c = c, s->h = h, s->pl = pl, s->n_planted = n_planted;
    s->group = c->n_q_heads / c->n_kv_heads;
    /* per query head: recency and sink strengths, per-token strength, noise stream */
    s->rq = rb_malloc(sizeof(rng) * (size_t)s->group);
    s->rec_amp = rb_malloc(sizeof(double) * (size_t)s->group);
    s->strength = rb_malloc(sizeof(double) * (size_t)s->group * np);
    for (int g = 0; g < s->group; g++) {
        s->rq[g] = rng_make(c->seed, TAG_QUERY, layer, kvh * s->group + g);
        s->rec_amp[g] = c->recency_logit * (0.8 + 0.4 * rng_unif(&s->rq[g]));
        for (int i = 0; i < n_planted; i++)
            s->strength[(size_t)g * n_planted + i] =
                c->milestone_logit * (1 + c->jitter * (2 * rng_unif(&s->rq[g]) - 1));
    }
    /* dense content noise has variance E[sd^2] = 1.03 per channel (sd ~ U(0.7, 1.3)) */
    s->tau = c->noise / sqrt(1.03 * h->d_c);
    s->max_c = h->d_c / 2;
    s->cset = rb_malloc(sizeof(int) * (size_t)s->max_c);
    s->is_act = rb_malloc(sizeof(int) * (size_t)s->max_c);
    s->in_set = rb_calloc((size_t)np, 1);
    s->kc = rb_malloc(sizeof(double) * (size_t)s->max_c * h->d_c);
    s->gram = rb_malloc(sizeof(double) * (size_t)s->max_c * s->max_c);
    s->b = rb_malloc(sizeof(double) * (size_t)s->max_c);
    s->alpha = rb_malloc(sizeof(double) * (size_t)s->max_c);
    s->qc = rb_malloc(sizeof(double) * (size_t)h->d_c);
    s->user_start = rb_calloc((size_t)h->d_c + 1, sizeof(int));
    s->users = rb_malloc(sizeof(int) * SIG_CHANNELS * (size_t)np);
    s->seen = rb_calloc((size_t)np, sizeof(int));
    for (int i = 0; i < n_planted * SIG_CHANNELS; i++) s->user_start[h->sig_ch[i] + 1]++;
    for (int ch = 0; ch < h->d_c; ch++) s->user_start[ch + 1] += s->user_start[ch];
    int *fill = rb_malloc(sizeof(int) * (size_t)h->d_c);
    memcpy(fill, s->user_start, sizeof(int) * (size_t)h->d_c);
    for (int i = 0; i < n_planted; i++)
        for (int sg = 0; sg < SIG_CHANNELS; sg++) {
            int ch = h->sig_ch[SIG_CHANNELS * i + sg];
            /* a token's two channels are distinct, so it is listed once per channel */
            s->users[fill[ch]++] = i;
        }
    free(fill);
    s->off_logit = rb_malloc(sizeof(double) * (size_t)np);
    s->off_idx = rb_malloc(sizeof(int) * (size_t)np);
    s->pk = rb_malloc(sizeof(double) * (size_t)np * h->d_c);
    /* a phrase is addressed through the mean of its tokens' keys: they share the spike,
     * so one constraint gives every token of the phrase the target logit */
    for (int i = 0; i < n_planted; i++) {
        double *row = s->pk + (size_t)i * h->d_c;
        for (int x = 0; x < h->d_c; x++) row[x] = 0;
        for (int j = 0; j < pl[i].len; j++) {
            content_row(k, ldk, kvh, d, h, bias, pl[i].pos + j, s->qc);
            for (int x = 0; x < h->d_c; x++) row[x] += s->qc[x] / pl[i].len;
        }
    }
}

static void solver_free(query_solver *s) {
    free(s->rq), free(s->rec_amp), free(s->strength);
    free(s->cset), free(s->is_act), free(s->in_set), free(s->kc), free(s->gram);
    free(s->b), free(s->alpha), free(s->qc), free(s->user_start), free(s->users);
    free(s->seen), free(s->off_logit), free(s->off_idx), free(s->pk);
}

/* Add planted token i to the constraint set (is_act: a target, not an offender). */
static void constrain(query_solver *s, int i, int is_act) {
    int d_c = s->h->d_c;
    s->in_set[i] = 1;
    s->is_act[s->m] = is_act;
    memcpy(s->kc + (size_t)s->m * d_c, s->pk + (size_t)i * d_c, sizeof(double) * (size_t)d_c);
    s->cset[s->m++] = i;
}

/* Planted tokens present at step tq whose logit under the current solution would exceed
 * CROSS_MAX. Every planted token of the last SCAN_WINDOW positions is scanned; older ones
 * only when they spike on a channel of a token in the set (where the query is large), which
 * bounds the work on long traces. Returns how many, in off_logit / off_idx. */
static int find_offenders(query_solver *s, int tq) {
    const planted *pl = s->pl;
    int d_c = s->h->d_c, n_off = 0;
    s->stamp++;
    while (s->recent < s->n_planted && pl[s->recent].pos < tq - SCAN_WINDOW) s->recent++;
    for (int i = s->recent; i < s->n_planted && pl[i].pos < tq; i++) {
        if (s->in_set[i]) continue;
        s->seen[i] = s->stamp;
        scan_off(s->qc, s->pk, d_c, i, s->off_logit, s->off_idx, &n_off);
    }
    for (int a = 0; a < s->m; a++)
        for (int sg = 0; sg < SIG_CHANNELS; sg++) {
            int ch = s->h->sig_ch[SIG_CHANNELS * s->cset[a] + sg];
            for (int u = s->user_start[ch]; u < s->user_start[ch + 1]; u++) {
                int i = s->users[u];
                if (pl[i].pos >= tq) break; /* users are in position order */
                if (s->in_set[i] || s->seen[i] == s->stamp) continue;
                s->seen[i] = s->stamp;
                scan_off(s->qc, s->pk, d_c, i, s->off_logit, s->off_idx, &n_off);
            }
        }
    return n_off;
}

/* The constraint set of step tq, factored in gram (Cholesky). */
static void solve_constraints(query_solver *s, int tq) {
    const synth_config *c = s->c;
    int d_c = s->h->d_c;
    s->m = 0;
    for (int i = 0; i < s->n_planted; i++) {
        s->in_set[i] = 0;
        if (s->m < s->max_c && s->pl[i].pos < tq && planted_active(&s->pl[i], tq)) constrain(s, i, 1);
    }
    for (int round = 0;; round++) {
        gram_factor(s->kc, s->m, d_c, s->gram);
        if (round == ACTIVE_ROUNDS || s->m == s->max_c) break;
        for (int a = 0; a < s->m; a++) s->b[a] = s->is_act[a] ? c->milestone_logit + FADE_LOGIT : FADE_LOGIT;
        if (s->m > 0) chol_solve(s->gram, s->m, s->b, s->alpha);
        for (int i = 0; i < d_c; i++) {
            double sum = 0;
            for (int a = 0; a < s->m; a++) sum += s->alpha[a] * s->kc[(size_t)a * d_c + i];
            s->qc[i] = sum;
        }
        int n_off = find_offenders(s, tq);
        if (!n_off) break;
        /* worst offenders first, while there is room */
        for (int a = 0; a < n_off && s->m < s->max_c; a++) {
            int best = a;
            for (int x = a + 1; x < n_off; x++)
                if (s->off_logit[x] > s->off_logit[best]) best = x;
            double tl = s->off_logit[a];
            int ti = s->off_idx[a];
            s->off_logit[a] = s->off_logit[best], s->off_idx[a] = s->off_idx[best];
            s->off_logit[best] = tl, s->off_idx[best] = ti;
            constrain(s, s->off_idx[a], 0);
        }
    }
}

/* Query row of query head g of the KV head at step tq, into qt [d], for the solved set. */
static void query_row(query_solver *s, int g, int tq, const double *phase, double inv_scale,
                      float *qt) {
    const synth_config *c = s->c;
    const head_layout *h = s->h;
    int d = c->head_dim, d_c = h->d_c, m = s->m;
    rng *r = &s->rq[g];
    /* recency: the keys' RoPE vectors, same phases, amplitude giving the logit */
    double bq = s->rec_amp[g] / (h->n_pairs * ROPE_KEY_AMP);
    for (int i = 0; i < h->n_pairs; i++) {
        qt[2 * i] = (float)(bq * cos(phase[i]));
        qt[2 * i + 1] = (float)(bq * sin(phase[i]));
        rope_rotate(&qt[2 * i], &qt[2 * i + 1], rope_theta(i, h->n_pairs) * tq);
    }
    qt[h->sink_ch] = (float)(c->sink_logit / SINK_KEY * (1 + 0.05 * rng_normal(r)));
    qt[h->fade_ch] = (float)(FADE_LOGIT / FADE_KEY);
    for (int o = 0; o < 2; o++) qt[h->out_ch[o]] = (float)(0.1 * rng_normal(r));
    /* noise z, projected off the constrained keys so that it leaves their logits at target
     * (planted keys are heavy: raw noise would shake them by ~1 logit), then the solution:
     * q_c = z_perp + K_C^T alpha with alpha exact for the targets because K_C z_perp = 0 */
    for (int i = 0; i < d_c; i++) s->qc[i] = s->tau * rng_normal(r);
    for (int a = 0; a < m; a++) {
        double dot = 0;
        for (int i = 0; i < d_c; i++) dot += s->kc[(size_t)a * d_c + i] * s->qc[i];
        s->b[a] = dot;
    }
    if (m > 0) chol_solve(s->gram, m, s->b, s->alpha);
    for (int a = 0; a < m; a++) s->alpha[a] = -s->alpha[a];
    for (int a = 0; a < m; a++)
        s->b[a] = s->is_act[a] ? s->strength[(size_t)g * s->n_planted + s->cset[a]] + FADE_LOGIT : FADE_LOGIT;
    if (m > 0) {
        double *beta = s->off_logit; /* scratch: n_planted >= m */
        chol_solve(s->gram, m, s->b, beta);
        for (int a = 0; a < m; a++) s->alpha[a] += beta[a];
    }
    for (int i = 0; i < d_c; i++) {
        double sum = s->qc[i];
        for (int a = 0; a < m; a++) sum += s->alpha[a] * s->kc[(size_t)a * d_c + i];
        qt[h->content[i]] = (float)sum;
    }
    for (int i = 0; i < d; i++) qt[i] = (float)(qt[i] * inv_scale);
}

void synth_layer(const synth_config *c, const synth_truth *t, int layer, float *q, float *k,
                 float *v) {
    int d = c->head_dim, n_tokens = synth_n_tokens(c), group = c->n_q_heads / c->n_kv_heads;
    int ldq = c->n_q_heads * d;
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
        values_make(c, layer, kvh, v);
        query_solver s;
        solver_init(&s, c, &h, pl, n_planted, layer, kvh, k, bias);
        for (int tq = 0; tq < n_tokens; tq++) {
            solve_constraints(&s, tq);
            for (int g = 0; g < group; g++)
                query_row(&s, g, tq, phase, inv_scale, q + (size_t)tq * ldq + (size_t)(kvh * group + g) * d);
        }
        solver_free(&s);
        free(bias);
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

const char *synth_token_text(int32_t id) {
    return id == SYNTH_TOKEN_WORD ? " w" : id == SYNTH_TOKEN_SEPARATOR ? "." : NULL;
}

int32_t synth_token(const synth_config *c, int pos) {
    /* its own stream (not the truth's or the layers'), so the q, k, v drawn never change */
    rng r = rng_make(c->seed, TAG_TOKENS, pos, 0);
    return rng_u64(&r) % SYNTH_SEPARATOR_EVERY == 0 ? SYNTH_TOKEN_SEPARATOR : SYNTH_TOKEN_WORD;
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
        /* synth_layer promises finite values in float16 range for every valid config */
        size_t nq = (size_t)n_tokens * c->n_q_heads * c->head_dim;
        size_t nk = (size_t)n_tokens * c->n_kv_heads * c->head_dim;
        for (size_t i = 0; i < nq; i++) RB_CHECK(fabsf(q[i]) < 65504.0f);
        for (size_t i = 0; i < nk; i++) RB_CHECK(fabsf(k[i]) < 65504.0f && fabsf(v[i]) < 65504.0f);
        st = trace_writer_append(w, l, n_tokens, q, k, v, e);
    }
    free(q);
    free(k);
    free(v);
    if (!st) st = trace_writer_set_truth(w, "milestones", t.milestones, t.n_milestones, e);
    if (!st) st = trace_writer_set_truth(w, "phoenix", t.phoenix, t.n_phoenix, e);
    if (!st) {
        int32_t *ids = rb_malloc(sizeof(int32_t) * (size_t)n_tokens);
        for (int i = 0; i < n_tokens; i++) ids[i] = synth_token(c, i);
        st = trace_writer_set_tokens(w, ids, n_tokens, e);
        free(ids);
    }
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
