/* synth.h: synthetic reasoning traces with planted structure (docs/DESIGN.md §2, `raasbench synth`).
 *
 * The generator builds q, k, v for every position of every layer so that the dense attention
 * softmax(attn_scale * q.k) shows what long reasoning decodes show: attention sinks on the
 * first tokens, a recency band behind the query, milestone tokens (decode tokens heavily
 * attended for a span of tens to hundreds of steps, then never again: the RaaS paper's
 * waterfall), phoenix tokens (prompt tokens dormant for at least 128 decode steps, then
 * attended again) and background noise. Keys carry the channel structure of real keys
 * (large-magnitude channels, per-channel offsets, heavy channels on important tokens).
 * The model is described at the top of synth.c.
 *
 * The planted truth (which tokens are milestones and phoenixes, and when) is shared by every
 * layer and KV head; only its strength varies per layer and query head. Everything is a
 * pure function of the configuration: the same seed gives the same bytes. */
#ifndef SYNTH_H
#define SYNTH_H

#include <stdint.h>

#include "rb.h"
#include "trace.h"

/* Limits checked by synth_config_check (sanity, not capability). */
#define SYNTH_MAX_TOKENS (1 << 20)
#define SYNTH_MAX_HEAD_DIM 512
#define SYNTH_MIN_HEAD_DIM 32
#define SYNTH_MAX_KV_HEADS 64
#define SYNTH_MAX_Q_HEADS 256
#define SYNTH_MAX_PHOENIX 64
#define SYNTH_MIN_DORMANT 128

typedef struct synth_config {
    uint64_t seed;           /* 1 */
    /* shape */
    int n_layers;            /* 4 (stored: all of them) */
    int n_q_heads;           /* 8 */
    int n_kv_heads;          /* 2; n_q_heads must be a multiple */
    int head_dim;            /* 64; even, 32..512 */
    int n_prefill;           /* 128 prompt positions */
    int n_decode;            /* 2048 decode steps; n_tokens = n_prefill + n_decode */
    trace_dtype dtype;       /* TRACE_F16 (what synth_write stores) */
    /* attention structure; logits are in natural units (added to scale*q.k) */
    int n_sinks;             /* 4: positions 0..n_sinks-1 are sinks */
    double sink_logit;       /* 7.5: logit of position 0; the other sinks get 1.5 less */
    double recency_logit;    /* 7.0: logit of the query's own position; decays over ~16 */
    double milestone_rate;   /* 1/32: chance that a decode token starts a milestone phrase */
    int phrase_max;          /* 3: a phrase is 1..phrase_max consecutive milestone tokens */
    int life_min, life_max;  /* 32, 320: active span in steps, log-uniform in [min, max] */
    int delay_max;           /* 4: a phrase ending at p is active from p + U{1..delay_max} */
    double milestone_logit;  /* 9.0: logit of an active milestone or revived phoenix */
    double jitter;           /* 0.1: strength factor per (layer, q head, token) in 1 +- jitter */
    int n_phoenix;           /* 4: prompt tokens attended in the prompt, dormant, revived */
    int phoenix_dormant;     /* 256: minimum dormant steps (>= SYNTH_MIN_DORMANT) */
    double decoy_rate;       /* 0: extra tokens with heavy key channels that nobody attends */
    double noise;            /* 0.5: std of the query-noise logit on an ordinary key */
} synth_config;

/* The planted truth, identical for every layer and KV head. Rows are sorted by position.
 * milestones: [n_milestones, 3] position (a decode position), first active step (> position),
 *             last active step (>= first, < n_tokens); active means attended on every step
 *             first..last, and never after last. Milestones come in phrases: runs of
 *             consecutive positions with the same first and last step (a reasoning step is a
 *             few tokens, and page-based policies should see that).
 * phoenix:    [n_phoenix, 3] position (a prompt position, not a sink), dormant from (the
 *             first decode step, n_prefill), revived at (>= dormant from + phoenix_dormant).
 * phoenix_last: [n_phoenix] last step of the revived span (not stored in trace files). */
typedef struct synth_truth {
    int n_milestones;
    int32_t *milestones;
    int n_phoenix;
    int32_t *phoenix;
    int32_t *phoenix_last;
    int phoenix_dropped; /* 1 when n_phoenix > 0 was asked but the decode is too short */
    int n_decoys;        /* positions with heavy keys that are never attended (not stored) */
    int32_t *decoys;     /* [n_decoys] ascending */
} synth_truth;

/* Fill every field with the defaults documented above. */
void synth_config_default(synth_config *c);

/* Apply a named preset on top of the current values (call after synth_config_default,
 * before options that override it). "default": nothing. "h2o-stress": a long decode where
 * accumulated attention scores go stale: head_dim 128 (4 phrases live at once), 8192
 * decode steps, phrases of up to 8 tokens at rate 1/24 living 128..512 steps, so several
 * hundred milestone tokens come and go (far more than the L/2 heavy slots H2O keeps at
 * L = 256) and old milestones, having accumulated hundreds of steps of attention, outscore
 * new ones that have only just left the recency window. RB_EINPUT names an unknown
 * preset. */
rb_status synth_config_preset(synth_config *c, const char *name, rb_err *e);

/* Check every field against the limits above (positive sizes, n_q_heads a multiple of
 * n_kv_heads, even head_dim, rates and logits in sane ranges, room in the prompt for the
 * sinks and phoenixes). Returns RB_EINPUT naming the offending option (as its CLI flag). */
rb_status synth_config_check(const synth_config *c, rb_err *e);

/* n_prefill + n_decode, and the attn_scale synth writes (1/sqrt(head_dim)). */
int synth_n_tokens(const synth_config *c);
float synth_attn_scale(const synth_config *c);

/* Most planted tokens the query addresses exactly at one step: d_c / 8 with the content
 * dimension d_c = head_dim - 2 * (3 head_dim / 16) - 4 (4 at head_dim 64, 9 at 128).
 * n_phoenix may not exceed it (all phoenixes are attended together in the prompt). */
int synth_max_active(const synth_config *c);

/* Most milestone phrases and revived phoenixes active at one decode step: d_c / 16, at
 * least 1 (2 at head_dim 64, 4 at 128). Each active phrase makes 4 content channels "hot";
 * an old heavy key agreeing with three hot channels would take the query's cross-talk, and
 * their number grows with the decode. With fewer phrases at once that stays rare at any
 * length (see synth.c, "Fading for good"). */
int synth_max_phrases(const synth_config *c);

/* Draw the planted truth from c->seed. Requires a checked config. Phoenixes are planted only
 * when the prompt and decode have room (PHOENIX_TAIL prompt positions after the sinks,
 * phoenix_dormant + 16 decode steps); else phoenix_dropped is set. A milestone phrase that
 * would make more than synth_max_phrases phrases active at once is not planted (thinning),
 * so milestone_rate is an upper bound on the phrase rate. Free with synth_truth_free.
 * Returns RB_OK (the status is kept for future checks). */
rb_status synth_truth_make(const synth_config *c, synth_truth *t, rb_err *e);
void synth_truth_free(synth_truth *t); /* NULL or zeroed is a no-op */

/* Generate layer `layer` (0 <= layer < n_layers) in memory, deterministic given the config
 * (seed included), the truth made from it, and the layer index:
 *   q [n_tokens, n_q_heads, head_dim], k, v [n_tokens, n_kv_heads, head_dim] (after RoPE),
 * all finite and within float16 range. */
void synth_layer(const synth_config *c, const synth_truth *t, int layer, float *q, float *k,
                 float *v);

/* The trace_meta synth_write uses (source "synth", model "synthetic", every layer stored,
 * global attention). */
void synth_meta(const synth_config *c, trace_meta *m);

/* The synthetic vocabulary of a synth trace's /tokens (model "synthetic"): two ids, a word
 * and a separator whose text is "." (SepLLM's separators: policy_separator_text). */
enum { SYNTH_TOKEN_WORD = 0, SYNTH_TOKEN_SEPARATOR = 1, SYNTH_N_VOCAB = 2 };
/* The text of a synthetic token id (" w" or "."); NULL outside the vocabulary. */
const char *synth_token_text(int32_t id);
/* The token of position pos: a separator at about one position in SYNTH_SEPARATOR_EVERY,
 * drawn from (seed, pos) alone, apart from the attention planted (no token attends
 * separators more: SepLLM keeps them as any other token of the trace). */
#define SYNTH_SEPARATOR_EVERY 16
int32_t synth_token(const synth_config *c, int pos);

/* Check the config, draw the truth and write the whole trace to `path` through trace_writer
 * (c->dtype), with /truth/milestones, /truth/phoenix and /tokens (synth_token). The truth drawn is returned in
 * *truth_out when it is not NULL (caller frees). On failure nothing is left at `path`. */
rb_status synth_write(const synth_config *c, const char *path, synth_truth *truth_out,
                      rb_err *e);

#endif
