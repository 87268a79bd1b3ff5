/* cmd_lifecycle.c: `raasbench lifecycle`: milestone and phoenix tokens of one layer's dense
 * attention, written to an HDF5 file for export and plots/lifecycle.gp (see lifecycle.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "lifecycle.h"
#include "output.h"
#include "progress.h"
#include "trace.h"

static const char usage[] =
    "TRACE --layer L [--head H | --kv-head G] --out F.h5 [thresholds]\n\n"
    "Importance of each token over the decode: p_t(j) = softmax(attn_scale q_t.K) of query\n"
    "head H, or the lower median (--reduce mean|max) over the query heads of KV head G, or\n"
    "with neither, over every query head of the layer; analysed as the ratio to uniform\n"
    "p*(t+1), smoothed over --smooth steps in log space. A token is active at step t when\n"
    "that is >= max(min-ratio, exp(median + k-sigma * 1.4826 * MAD)) of the step's values.\n"
    "Milestones: decode tokens in use for at least min-span steps beyond the recency band\n"
    "(measured: the lag where fewer than half the tokens are still active), then fading.\n"
    "Phoenix: tokens inactive for >= dormant steps, then active again for >= revive-min\n"
    "steps: prompt tokens, or decode tokens that were milestones before. With planted\n"
    "truth in the trace, prints precision, recall and F1 (milestones: same position and\n"
    "overlapping spans; phoenix: same position and revival within --phoenix-tol steps).";

/* The trace source with a progress bar (drawn only when stderr is a terminal). */
typedef struct progress_src {
    lifecycle_trace_src *src;
    progress *bar;
} progress_src;

static rb_status row_with_progress(void *ctx, int t, float *imp, rb_err *e) {
    progress_src *p = ctx;
    rb_status st = lifecycle_trace_row(p->src, t, imp, e);
    progress_add(p->bar, 1);
    return st;
}

/* --heat-size ROWSxCOLS into c->heat_rows, c->heat_cols. */
static rb_status parse_heat_size(const char *heat, lifecycle_config *c, rb_err *e) {
    const char *x = strchr(heat, 'x');
    char buf[32];
    if (!x || x - heat >= (long)sizeof buf)
        return rb_fail(e, RB_EINPUT, "--heat-size", "expected ROWSxCOLS, got '%s'", heat);
    memcpy(buf, heat, (size_t)(x - heat));
    buf[x - heat] = 0;
    rb_status st = args_to_int("--heat-size", buf, &c->heat_rows, e);
    if (!st) st = args_to_int("--heat-size", x + 1, &c->heat_cols, e);
    return st;
}

int cmd_lifecycle(int argc, char **argv) {
    lifecycle_config c;
    lifecycle_config_default(&c);
    int layer = -1, head = -1, kv_head = -1, tol = 32, quiet = 0;
    const char *out = NULL, *reduce = "median", *heat = NULL;
    const arg_spec specs[] = {
        {"layer", ARG_INT_IN(&layer, 0, TRACE_MAX_LAYERS - 1), "L", "model layer index (required; must be stored)"},
        {"head", ARG_INT_IN(&head, 0, 65535), "H", "one query head"},
        {"kv-head", ARG_INT_IN(&kv_head, 0, 65535), "G", "the query heads of one KV head"},
        {"reduce", ARG_STR, &reduce, "mean|max|median", "combine several heads (default median)"},
        {"out", ARG_STR, &out, "F.h5", "output file (required)"},
        {"k-sigma", ARG_FLOAT, &c.k_sigma, "K", "robust sigmas above the step median (3)"},
        {"min-ratio", ARG_FLOAT, &c.min_ratio, "R", "threshold floor, times uniform (4)"},
        {"max-gap", ARG_INT_IN(&c.max_gap, 0, 1000000), "N", "inactive steps inside one segment (16)"},
        {"min-span", ARG_INT_IN(&c.min_span, 1, 1000000), "N", "milestone: steps in use past recency (32)"},
        {"min-fill", ARG_FLOAT, &c.min_fill, "F", "milestone: fraction of them active (0.5)"},
        {"dormant", ARG_INT_IN(&c.dormant_steps, 1, 1000000), "G", "phoenix: dormant steps (128)"},
        {"revive-min", ARG_INT_IN(&c.revive_min, 1, INT_MAX), "N", "phoenix: active steps after revival (12)"},
        {"smooth", ARG_INT_IN(&c.smooth, 1, 10000), "N", "smoothing time constant, steps; 1 = none (4)"},
        {"recency", ARG_INT_IN(&c.recency, -1, 1000000), "W", "recency band in steps (-1 = measure)"},
        {"heat-size", ARG_STR, &heat, "RxC", "heatmap size limit (512x512)"},
        {"hist-bins", ARG_INT_IN(&c.hist_bins, 1, 10000), "N", "lifespan histogram bins (24)"},
        {"phoenix-tol", ARG_INT_IN(&tol, 0, INT_MAX), "N", "phoenix scoring: revival tolerance (32)"},
        {"quiet", ARG_FLAG, &quiet, NULL, "print nothing on success"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = args_parse_cmd("lifecycle", usage, specs, argc, argv, pos, 1, &n_pos);
    if (rc >= 0) return rc;
    if (n_pos != 1)
        return rb_report(RB_EINPUT, "lifecycle", "expected one TRACE argument (see --help)");
    if (layer < 0) return rb_report(RB_EINPUT, "lifecycle", "--layer is required (see --help)");
    if (!out) return rb_report(RB_EINPUT, "lifecycle", "--out is required (see --help)");
    lifecycle_reduce red;
    if (!strcmp(reduce, "mean")) red = LIFECYCLE_MEAN;
    else if (!strcmp(reduce, "max")) red = LIFECYCLE_MAX;
    else if (!strcmp(reduce, "median")) red = LIFECYCLE_MEDIAN;
    else return rb_report(RB_EINPUT, "--reduce", "must be mean, max or median, got '%s'", reduce);
    rb_err e = {0};
    if (heat && parse_heat_size(heat, &c, &e)) return rb_err_print(&e);
    rb_status st = lifecycle_config_check(&c, &e);
    if (!st) st = output_check_all(&out, 1, pos, 1, &e); /* before the work */
    if (st) return rb_err_print(&e);

    trace *tr = NULL;
    lifecycle_trace_src *src = NULL;
    lifecycle_result r = {0};
    int32_t *tm = NULL, *tp = NULL;
    int ntm = 0, ntp = 0;
    if ((st = trace_open(pos[0], &tr, &e))) goto done;
    const trace_meta *m = trace_get_meta(tr);
    if ((st = lifecycle_trace_src_create(tr, layer, head, kv_head, red, &src, &e))) goto done;
    progress_src ps = {src, progress_create("lifecycle", m->n_tokens - m->n_prefill)};
    st = lifecycle_analyze(&c, m->n_prefill, m->n_tokens, row_with_progress, &ps, &r, &e);
    progress_destroy(ps.bar);
    if (st) goto done;
    if ((st = trace_read_truth(tr, "milestones", &tm, &ntm, &e))) goto done;
    if ((st = trace_read_truth(tr, "phoenix", &tp, &ntp, &e))) goto done;
    lifecycle_meta meta = {
        .trace_path = pos[0], .layer = layer, .head = head, .kv_head = kv_head, .reduce = red,
        .truth_milestones = tm, .n_truth_milestones = ntm, .truth_phoenix = tp,
        .n_truth_phoenix = ntp, .phoenix_tol = tol,
    };
    if ((st = lifecycle_write(out, &c, &meta, &r, &e))) goto done;
    if (!quiet) {
        printf("%s: layer %d, %d decode steps: %d milestones, %d phoenix revivals "
               "(recency band %d steps, mean threshold %.1fx uniform)\n",
               out, layer, m->n_tokens - m->n_prefill, r.n_milestones, r.n_phoenix, r.recency,
               r.mean_threshold);
        lifecycle_stats ls;
        lifecycle_stats_compute(r.milestones, r.n_milestones, r.phoenix, r.n_phoenix,
                                m->n_prefill, m->n_tokens, &ls);
        printf("layer %d stats: prompt %d, decode %d tokens; %.2f milestones per 1k decode "
               "tokens; lifespan mean %.1f, min/p10/p25/median/p75/p90/max %g/%g/%g/%g/%g/%g/%g "
               "steps; %d phoenix tokens (%d prompt, %d decode: %.1f%% of the prompt, %.2f%% of "
               "the decode)\n",
               layer, ls.n_prompt, ls.n_decode, ls.milestones_per_1k, ls.life_mean, ls.life_q[0],
               ls.life_q[1], ls.life_q[2], ls.life_q[3], ls.life_q[4], ls.life_q[5], ls.life_q[6],
               ls.n_phoenix_tokens, ls.n_phoenix_prompt, ls.n_phoenix_decode,
               100 * ls.prompt_phoenix_share, 100 * ls.decode_phoenix_share);
        if (tm) {
            lifecycle_score s = lifecycle_match(0, r.milestones, r.n_milestones, tm, ntm, 0);
            printf("milestones vs truth: precision %.3f recall %.3f F1 %.3f (%d/%d matched)\n",
                   s.precision, s.recall, s.f1, s.n_matched, s.n_truth);
        }
        if (tp) {
            lifecycle_score s = lifecycle_match(1, r.phoenix, r.n_phoenix, tp, ntp, tol);
            printf("phoenix vs truth: precision %.3f recall %.3f F1 %.3f (%d/%d matched)\n",
                   s.precision, s.recall, s.f1, s.n_matched, s.n_truth);
        }
    }
done:
    free(tm);
    free(tp);
    lifecycle_result_free(&r);
    lifecycle_trace_src_destroy(src);
    trace_close(tr);
    return st ? rb_err_print(&e) : 0;
}
