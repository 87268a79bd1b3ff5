/* cmd_synth.c: `raasbench synth --out FILE [options]`: write a synthetic reasoning trace with
 * planted sinks, recency, milestone and phoenix tokens (harness/synth.h, traces/FORMAT.md). */
#include <string.h>

#include "args.h"
#include "commands.h"
#include "synth.h"

int cmd_synth(int argc, char **argv) {
    synth_config c;
    synth_config_default(&c);
    const char *out = NULL, *dtype = "f16";
    int64_t seed = (int64_t)c.seed;
    int quiet = 0;
    const arg_spec specs[] = {
        {"out", ARG_STR, &out, "FILE", "trace file to write (required)"},
        {"seed", ARG_I64, &seed, "S", "random seed, >= 0 (default 1); same seed, same bytes"},
        {"layers", ARG_INT, &c.n_layers, "N", "layers (default 4)"},
        {"q-heads", ARG_INT, &c.n_q_heads, "N", "query heads (default 8)"},
        {"kv-heads", ARG_INT, &c.n_kv_heads, "N", "KV heads, dividing --q-heads (default 2)"},
        {"head-dim", ARG_INT, &c.head_dim, "D", "channels per head, even, 32..512 (default 64)"},
        {"prefill", ARG_INT, &c.n_prefill, "N", "prompt positions (default 128)"},
        {"decode", ARG_INT, &c.n_decode, "N", "decode steps (default 2048)"},
        {"dtype", ARG_STR, &dtype, "f16|f32", "stored precision (default f16)"},
        {"sinks", ARG_INT, &c.n_sinks, "N", "attention-sink positions at the start (default 4)"},
        {"sink-logit", ARG_FLOAT, &c.sink_logit, "X", "logit of position 0 (default 7)"},
        {"recency-logit", ARG_FLOAT, &c.recency_logit, "X",
         "logit of the query's own position; the band decays over ~16 (default 5)"},
        {"milestone-rate", ARG_FLOAT, &c.milestone_rate, "R",
         "chance a decode token is a milestone (default 0.03125)"},
        {"life-min", ARG_INT, &c.life_min, "N", "shortest milestone lifespan in steps (default 32)"},
        {"life-max", ARG_INT, &c.life_max, "N",
         "longest lifespan; log-uniform in [min, max] (default 320)"},
        {"delay-max", ARG_INT, &c.delay_max, "N",
         "a milestone turns active 1..N steps after its position (default 4)"},
        {"milestone-logit", ARG_FLOAT, &c.milestone_logit, "X",
         "logit of an active milestone or revived phoenix (default 7)"},
        {"jitter", ARG_FLOAT, &c.jitter, "F",
         "strength varies by 1 +- F per layer, query head and token (default 0.15)"},
        {"phoenix", ARG_INT, &c.n_phoenix, "N", "prompt tokens that go dormant and revive (default 4)"},
        {"phoenix-dormant", ARG_INT, &c.phoenix_dormant, "N",
         "fewest dormant steps before a revival, >= 128 (default 256)"},
        {"decoy-rate", ARG_FLOAT, &c.decoy_rate, "R",
         "share of tokens with heavy key channels that nobody attends (default 0.03)"},
        {"noise", ARG_FLOAT, &c.noise, "X", "std of the query-noise logit (default 0.5)"},
        {"quiet", ARG_FLAG, &quiet, NULL, "print nothing on success"},
        {NULL, ARG_FLAG, NULL, NULL, NULL},
    };
    int help = 0;
    rb_err e = {0};
    if (args_parse("synth", "--out FILE [options]", specs, argc, argv, NULL, 0, NULL, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (!out || !*out) {
        rb_fail(&e, RB_EINPUT, "synth", "--out FILE is required (see --help)");
        return rb_err_print(&e);
    }
    if (seed < 0) {
        rb_fail(&e, RB_EINPUT, "--seed", "must be >= 0, got %lld", (long long)seed);
        return rb_err_print(&e);
    }
    c.seed = (uint64_t)seed;
    if (!strcmp(dtype, "f16")) {
        c.dtype = TRACE_F16;
    } else if (!strcmp(dtype, "f32")) {
        c.dtype = TRACE_F32;
    } else {
        rb_fail(&e, RB_EINPUT, "--dtype", "must be f16 or f32, got '%s'", dtype);
        return rb_err_print(&e);
    }
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
