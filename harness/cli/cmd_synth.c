/* cmd_synth.c: `raasbench synth --out FILE [options]`: write a synthetic reasoning trace with
 * planted sinks, recency, milestone and phoenix tokens (harness/analysis/synth.h, traces/FORMAT.md). */
#include <string.h>

#include <limits.h>

#include "args.h"
#include "commands.h"
#include "synth.h"

int cmd_synth(int argc, char **argv) {
    synth_config c;
    synth_config_default(&c);
    const char *out = NULL, *dtype = "f16", *preset = "default";
    /* a preset sets the defaults the other options then override, so it is applied first,
     * before the help texts read them */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[i + 1];
        else if (!strncmp(argv[i], "--preset=", 9)) preset = argv[i] + 9;
    }
    rb_err pe = {0};
    if (synth_config_preset(&c, preset, &pe)) return rb_err_print(&pe);
    int64_t seed = (int64_t)c.seed;
    int quiet = 0;
    /* help texts carry the defaults from synth_config_default, so they cannot drift */
    char h_sink[96], h_rec[128], h_rate[96], h_phrase[96], h_lmin[96], h_lmax[96], h_delay[96];
    char h_ml[96], h_jit[128], h_phx[96], h_dorm[96], h_decoy[128], h_noise[96], h_sinks[96];
    snprintf(h_sinks, sizeof h_sinks, "attention-sink positions at the start (default %d)", c.n_sinks);
    snprintf(h_sink, sizeof h_sink, "logit of position 0 (default %g)", c.sink_logit);
    snprintf(h_rec, sizeof h_rec, "logit of the query's own position; the band decays over ~16 "
             "(default %g)", c.recency_logit);
    snprintf(h_rate, sizeof h_rate, "chance a decode token starts a milestone phrase (default %g)",
             c.milestone_rate);
    snprintf(h_phrase, sizeof h_phrase, "a phrase is 1..N consecutive milestone tokens (default %d)",
             c.phrase_max);
    snprintf(h_lmin, sizeof h_lmin, "shortest milestone lifespan in steps (default %d)", c.life_min);
    snprintf(h_lmax, sizeof h_lmax, "longest lifespan; log-uniform in [min, max] (default %d)",
             c.life_max);
    snprintf(h_delay, sizeof h_delay, "a phrase turns active 1..N steps after its end (default %d)",
             c.delay_max);
    snprintf(h_ml, sizeof h_ml, "logit of an active milestone or revived phoenix (default %g)",
             c.milestone_logit);
    snprintf(h_jit, sizeof h_jit, "strength varies by 1 +- F per layer, query head and token "
             "(default %g)", c.jitter);
    snprintf(h_phx, sizeof h_phx, "prompt tokens that go dormant and revive (default %d)", c.n_phoenix);
    snprintf(h_dorm, sizeof h_dorm, "fewest dormant steps before a revival, >= %d (default %d)",
             SYNTH_MIN_DORMANT, c.phoenix_dormant);
    snprintf(h_decoy, sizeof h_decoy, "share of tokens with heavy key channels that nobody attends "
             "(default %g)", c.decoy_rate);
    snprintf(h_noise, sizeof h_noise, "std of the query-noise logit (default %g)", c.noise);
    const arg_spec specs[] = {
        {"out", ARG_STR, &out, "FILE", "trace file to write (required)"},
        {"preset", ARG_STR, &preset, "NAME", "default, or h2o-stress: 8192 steps, head_dim 128, "
         "hundreds of milestones living 128..512 steps (see synth.h); other options override it"},
        {"seed", ARG_I64_IN(&seed, 0, INT64_MAX), "S", "random seed, >= 0 (default 1); same seed, same bytes"},
        {"layers", ARG_INT_IN(&c.n_layers, 1, TRACE_MAX_LAYERS), "N", "layers (default 4)"},
        {"q-heads", ARG_INT_IN(&c.n_q_heads, 1, 4096), "N", "query heads (default 8)"},
        {"kv-heads", ARG_INT_IN(&c.n_kv_heads, 1, 4096), "N", "KV heads, dividing --q-heads (default 2)"},
        {"head-dim", ARG_INT_IN(&c.head_dim, 32, 512), "D", "channels per head, even, 32..512 (default 64)"},
        {"prefill", ARG_INT_IN(&c.n_prefill, 1, INT_MAX), "N", "prompt positions (default 128)"},
        {"decode", ARG_INT_IN(&c.n_decode, 1, INT_MAX), "N", "decode steps (default 2048)"},
        {"dtype", ARG_STR, &dtype, "f16|f32", "stored precision (default f16)"},
        {"sinks", ARG_INT_IN(&c.n_sinks, 0, INT_MAX), "N", h_sinks},
        {"sink-logit", ARG_FLOAT, &c.sink_logit, "X", h_sink},
        {"recency-logit", ARG_FLOAT, &c.recency_logit, "X", h_rec},
        {"milestone-rate", ARG_FLOAT, &c.milestone_rate, "R", h_rate},
        {"phrase-max", ARG_INT_IN(&c.phrase_max, 1, INT_MAX), "N", h_phrase},
        {"life-min", ARG_INT_IN(&c.life_min, 1, INT_MAX), "N", h_lmin},
        {"life-max", ARG_INT_IN(&c.life_max, 1, INT_MAX), "N", h_lmax},
        {"delay-max", ARG_INT_IN(&c.delay_max, 0, INT_MAX), "N", h_delay},
        {"milestone-logit", ARG_FLOAT, &c.milestone_logit, "X", h_ml},
        {"jitter", ARG_FLOAT, &c.jitter, "F", h_jit},
        {"phoenix", ARG_INT_IN(&c.n_phoenix, 0, INT_MAX), "N", h_phx},
        {"phoenix-dormant", ARG_INT_IN(&c.phoenix_dormant, 1, INT_MAX), "N", h_dorm},
        {"decoy-rate", ARG_FLOAT, &c.decoy_rate, "R", h_decoy},
        {"noise", ARG_FLOAT, &c.noise, "X", h_noise},
        {"quiet", ARG_FLAG, &quiet, NULL, "print nothing on success"},
        {NULL, ARG_FLAG, NULL, NULL, NULL},
    };
    int rc = args_parse_cmd("synth", "--out FILE [options]", specs, argc, argv, NULL, 0, NULL);
    if (rc >= 0) return rc;
    if (!out || !*out) return rb_report(RB_EINPUT, "synth", "--out FILE is required (see --help)");
    c.seed = (uint64_t)seed;
    if (!strcmp(dtype, "f16"))
        c.dtype = TRACE_F16;
    else if (!strcmp(dtype, "f32"))
        c.dtype = TRACE_F32;
    else
        return rb_report(RB_EINPUT, "--dtype", "must be f16 or f32, got '%s'", dtype);
    rb_err e = {0};
    if (synth_config_check(&c, &e)) return rb_err_print(&e);

    int64_t t0 = rb_now_ns();
    synth_truth t;
    if (synth_write(&c, out, &t, &e)) return rb_err_print(&e);
    if (t.phoenix_dropped)
        fprintf(stderr,
                "raasbench: synth: note: no phoenix tokens planted: they need %d prompt "
                "positions after the sinks and %d decode steps (dormancy + revival)\n",
                c.n_phoenix + 16, c.phoenix_dormant + 16);
    if (!quiet)
        printf("wrote %s: %d layers, %d q / %d kv heads, head_dim %d, %d prefill + %d decode, "
               "%s, %d milestones, %d phoenix, seed %llu, %.2f s\n",
               out, c.n_layers, c.n_q_heads, c.n_kv_heads, c.head_dim, c.n_prefill, c.n_decode,
               c.dtype == TRACE_F16 ? "f16" : "f32", t.n_milestones, t.n_phoenix,
               (unsigned long long)c.seed, (double)(rb_now_ns() - t0) * 1e-9);
    synth_truth_free(&t);
    return 0;
}
