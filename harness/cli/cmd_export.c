/* cmd_export.c: `raasbench export`: results files (DESIGN §5) and lifecycle files
 * (harness/analysis/lifecycle.h) as TSV for gnuplot and spreadsheets.
 *
 * TSV conventions: one header line of column names, tab-separated fields, no quoting (tabs
 * and newlines inside strings become spaces), numbers in C locale, NaN written as NaN (both
 * gnuplot and spreadsheets read it). Tables with several data sets (runs, detected and
 * planted rows) separate them by two blank lines, so gnuplot's `index N` selects the N-th;
 * the header line is printed once, at the top. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "eval_results.h"
#include "h5util.h"
#include "lifecycle.h"
#include "output.h"
#include "results.h"
#include "results_schema.h"

static const char usage[] =
    "RESULTS.h5|LIFECYCLE.h5 --table T [--run ID] [--out F.tsv]\n"
    "       raasbench export --schema\n\n"
    "Tables of a results file (raasbench replay/sweep/decode):\n"
    "  summary    one row per run, every column of /summary\n"
    "  steps      per run and decode step: run_id policy budget, then every per-step\n"
    "             series ([T, n_layers] ones as means over the sparse layers; the columns\n"
    "             are listed by --schema); runs in name order, each a block (two blank\n"
    "             lines apart: gnuplot `index i` is the i-th run)\n"
    "Tables of an eval file (raasbench eval): summary (one row per cell: accuracy, Wilson\n"
    "  interval, retained accuracy, resident tokens), tasks (one row per task and cell) and\n"
    "  length (accuracy in four bins of the dense run's generated length: RQ3)\n"
    "Tables of a lifecycle file (raasbench lifecycle):\n"
    "  heatmap    step token importance (cell centres; importance = max ratio to uniform\n"
    "             in the cell, NaN where the token did not exist yet), a blank line after\n"
    "             each step row (gnuplot `with image`)\n"
    "  milestones set position first last lifespan; block 0 detected, block 1 planted\n"
    "  phoenix    set position dormant_from revived_at dormant_steps; blocks as above\n"
    "  lifespan   bin_lo bin_hi detected planted (planted NaN without truth)\n"
    "  stats      set layer, prompt and decode lengths, milestones and their rate per 1k\n"
    "             decode tokens, lifespan mean and quantiles (nearest rank), phoenix tokens\n"
    "             (prompt, decode) and shares; row detected, then planted with truth\n"
    "Without --out the table goes to stdout. --schema prints the results format as the\n"
    "markdown tables of results/FORMAT.md.";

/* ---- TSV fields ---- */

static void put_str(FILE *o, const char *s) {
    for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, o);
}
static void put_f(FILE *o, double v) {
    if (isnan(v)) fputs("NaN", o);
    else fprintf(o, "%.9g", v);
}

/* A scalar field of column c in struct rec (a results_summary or results_run). */
static void put_field(FILE *o, const results_column *c, const void *rec) {
    const void *p = results_field(rec, c);
    switch (c->type) {
    case RESULTS_STR: put_str(o, p); break;
    case RESULTS_INT: fprintf(o, "%d", *(const int *)p); break;
    case RESULTS_I32: fprintf(o, "%d", (int)*(const int32_t *)p); break;
    case RESULTS_I64: fprintf(o, "%lld", (long long)*(const int64_t *)p); break;
    default: put_f(o, *(const double *)p); break;
    }
}

/* ---- results: summary ---- */

static rb_status export_summary(results_reader *rd, const char *path, const char *run, FILE *o,
                                rb_err *e) {
    results_summary *rows;
    int n_rows, n;
    uint64_t present;
    rb_status st = results_reader_summary(rd, &rows, &n_rows, &present, e);
    if (st) return st;
    const results_column *c = results_columns(RESULTS_SUMMARY, &n);
    int id_col = (int)(results_column_find(RESULTS_SUMMARY, "run_id") - c);
    if (run && !(present >> id_col & 1)) {
        free(rows);
        return rb_fail(e, RB_EINPUT, path, "/summary has no run_id field to select --run");
    }
    /* one line per row (and the header, r = -1) of the columns the file has */
    int found = 0;
    for (int r = -1; r < n_rows; r++) {
        if (r >= 0 && run && strcmp(rows[r].run_id, run)) continue;
        found |= r >= 0;
        const char *sep = "";
        for (int i = 0; i < n; i++) {
            if (!(present >> i & 1)) continue;
            fputs(sep, o);
            if (r < 0) put_str(o, c[i].name);
            else put_field(o, &c[i], &rows[r]);
            sep = "\t";
        }
        fputc('\n', o);
    }
    free(rows);
    if (run && !found) return rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    return RB_OK;
}

/* ---- results: steps ---- */

/* Mean of row t of a [T, L] table over the counted layers, skipping NaN. */
static double layer_mean(const float *x, int L, int t, const int32_t *counted) {
    double s = 0;
    int n = 0;
    for (int l = 0; l < L; l++) {
        float v = x[(size_t)t * L + l];
        if (counted[l] && !isnan(v)) {
            s += v;
            n++;
        }
    }
    return n ? s / n : NAN;
}

/* One series value of step t (NaN where the run lacks the series or did not measure). */
static void put_series(FILE *o, const results_column *c, const results_run *r, int t) {
    const void *x = results_field_ptr(r, c);
    if (!x) fputs("NaN", o);
    else if (c->shape == RESULTS_SHAPE_T_L) put_f(o, layer_mean(x, r->n_layers, t, r->sparse));
    else if (c->type == RESULTS_I32) fprintf(o, "%d", ((const int32_t *)x)[t]);
    else if (c->type == RESULTS_F32) put_f(o, ((const float *)x)[t]);
    else if (((const int64_t *)x)[t] < 0 && (c->flags & RESULTS_F_UNMEASURED)) fputs("NaN", o);
    else fprintf(o, "%lld", (long long)((const int64_t *)x)[t]);
}

/* The steps columns (RESULTS_F_STEPS) of run attributes and series, the series only where
 * their `when` is in `shown`; the header when r is NULL, else step t of r. */
static void put_steps_line(FILE *o, unsigned shown, const results_run *r, int t) {
    const char *sep = "";
    for (int p = RESULTS_RUN_ATTR; p <= RESULTS_SERIES; p++) {
        int n;
        const results_column *c = results_columns((results_place)p, &n);
        for (int i = 0; i < n; i++) {
            if (!(c[i].flags & RESULTS_F_STEPS) ||
                (p == RESULTS_SERIES && !(shown & RESULTS_SKIP(c[i].when))))
                continue;
            fputs(sep, o);
            sep = "\t";
            if (!r) put_str(o, c[i].name);
            else if (p == RESULTS_RUN_ATTR) put_field(o, &c[i], r);
            else put_series(o, &c[i], r, t);
        }
    }
    fputc('\n', o);
}

static rb_status export_steps(results_reader *rd, const char *path, const char *run, FILE *o,
                              rb_err *e) {
    char **ids;
    int n_ids, n;
    rb_status st = results_reader_runs(rd, &ids, &n_ids, e);
    if (st) return st;
    /* A group of series that not every run has (live decode) is shown when any run
     * exported has one of them; series outside the steps table are not read. */
    const results_column *c = results_columns(RESULTS_SERIES, &n);
    unsigned shown = RESULTS_SKIP(RESULTS_ALWAYS), in_table = 0;
    for (int i = 0; i < n; i++)
        if (c[i].flags & RESULTS_F_STEPS) in_table |= RESULTS_SKIP(c[i].when);
    int found = 0;
    for (int i = 0; i < n_ids && !st; i++) {
        if (run && strcmp(ids[i], run)) continue;
        found = 1;
        uint64_t has;
        st = results_reader_present(rd, ids[i], &has, e);
        for (int k = 0; k < n && !st; k++)
            if (has >> k & 1) shown |= RESULTS_SKIP(c[k].when);
    }
    if (!st && run && !found) st = rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    if (!st && !n_ids) st = rb_fail(e, RB_EINPUT, path, "/runs holds no runs");
    if (!st) put_steps_line(o, shown, NULL, 0);
    for (int i = 0, block = 0; i < n_ids && !st; i++) {
        if (run && strcmp(ids[i], run)) continue;
        if (block++) fputs("\n\n", o);
        results_run r;
        if ((st = results_reader_run(rd, ids[i], ~(in_table & shown), &r, e))) break;
        for (int t = 0; t < r.T; t++) put_steps_line(o, shown, &r, t);
        results_run_free(&r);
    }
    for (int i = 0; i < n_ids; i++) free(ids[i]);
    free(ids);
    return st;
}

/* ---- lifecycle tables ---- */

static void export_rows(const lifecycle_file *lf, int phoenix, FILE *o) {
    fputs(phoenix ? "set\tposition\tdormant_from\trevived_at\tdormant_steps\n"
                  : "set\tposition\tfirst\tlast\tlifespan\n",
          o);
    for (int s = 0; s < 2; s++) {
        const int32_t *rows = phoenix ? (s ? lf->truth_phoenix : lf->phoenix)
                                      : (s ? lf->truth_milestones : lf->milestones);
        int n = phoenix ? (s ? lf->n_truth_phoenix : lf->n_phoenix)
                        : (s ? lf->n_truth_milestones : lf->n_milestones);
        if (!rows) break;
        if (s) fputs("\n\n", o);
        for (int i = 0; i < n; i++) {
            const int32_t *r = rows + 3 * i;
            /* phoenix: steps dormant = revived - dormant_from; milestone: last - first + 1 */
            fprintf(o, "%s\t%d\t%d\t%d\t%d\n", s ? "planted" : "detected", r[0], r[1], r[2],
                    phoenix ? r[2] - r[1] : r[2] - r[1] + 1);
        }
    }
}

static void export_lifespan(const lifecycle_file *lf, FILE *o) {
    fputs("bin_lo\tbin_hi\tdetected\tplanted\n", o);
    for (int b = 0; b < lf->n_bins; b++) {
        fprintf(o, "%d\t%d\t%d\t", lf->hist_edges[b], lf->hist_edges[b + 1], lf->hist_counts[b]);
        if (lf->truth_hist_counts) fprintf(o, "%d\n", lf->truth_hist_counts[b]);
        else fputs("NaN\n", o);
    }
}

static void export_heatmap(const lifecycle_file *lf, FILE *o) {
    int sb = lf->step_bin, tb = lf->token_bin;
    fputs("step\ttoken\timportance\n", o);
    for (int a = 0; a < lf->heat_rows; a++) {
        /* cell centres: a bin of sb steps starting at s0 + a*sb has centre + (sb-1)/2 */
        double sc = (double)lf->step0 + (double)a * sb + (sb - 1) / 2.0;
        for (int b = 0; b < lf->heat_cols; b++) {
            double tc = (double)lf->token0 + (double)b * tb + (tb - 1) / 2.0;
            fprintf(o, "%g\t%g\t", sc, tc);
            put_f(o, lf->heatmap[(size_t)a * lf->heat_cols + b]);
            fputc('\n', o);
        }
        fputc('\n', o);
    }
}

/* One row of lifecycle_stats per set (detected; planted when the file has truth). */
static void export_stats(const lifecycle_file *lf, FILE *o) {
    fputs("set\tlayer\tn_prompt\tn_decode\tmilestones\tmilestones_per_1k\tlifespan_mean\t"
          "lifespan_min\tlifespan_p10\tlifespan_p25\tlifespan_p50\tlifespan_p75\t"
          "lifespan_p90\tlifespan_max\tphoenix_rows\tphoenix_tokens\tphoenix_prompt\t"
          "phoenix_decode\tphoenix_prompt_frac\tprompt_phoenix_share\tdecode_phoenix_share\n",
          o);
    for (int set = 0; set < 2; set++) {
        if (set && !lf->truth_milestones && !lf->truth_phoenix) break;
        lifecycle_stats s;
        if (set)
            lifecycle_stats_compute(lf->truth_milestones, lf->n_truth_milestones, lf->truth_phoenix,
                                    lf->n_truth_phoenix, lf->n_prefill, lf->n_tokens, &s);
        else
            lifecycle_stats_compute(lf->milestones, lf->n_milestones, lf->phoenix, lf->n_phoenix,
                                    lf->n_prefill, lf->n_tokens, &s);
        fprintf(o, "%s\t%d\t%d\t%d\t%d\t", set ? "planted" : "detected", lf->layer, s.n_prompt,
                s.n_decode, s.n_milestones);
        put_f(o, s.milestones_per_1k);
        fputc('\t', o);
        put_f(o, s.life_mean);
        for (int k = 0; k < 7; k++) {
            fputc('\t', o);
            put_f(o, s.life_q[k]);
        }
        fprintf(o, "\t%d\t%d\t%d\t%d\t", s.n_phoenix_rows, s.n_phoenix_tokens, s.n_phoenix_prompt,
                s.n_phoenix_decode);
        put_f(o, s.phoenix_prompt_frac);
        fputc('\t', o);
        put_f(o, s.prompt_phoenix_share);
        fputc('\t', o);
        put_f(o, s.decode_phoenix_share);
        fputc('\n', o);
    }
}

static rb_status export_lifecycle(const char *path, const char *table, FILE *o, rb_err *e) {
    lifecycle_file lf;
    rb_status st = lifecycle_read(path, &lf, e);
    if (st) return st;
    if (!strcmp(table, "heatmap")) export_heatmap(&lf, o);
    else if (!strcmp(table, "milestones")) export_rows(&lf, 0, o);
    else if (!strcmp(table, "phoenix")) export_rows(&lf, 1, o);
    else if (!strcmp(table, "stats")) export_stats(&lf, o);
    else export_lifespan(&lf, o);
    lifecycle_file_free(&lf);
    return RB_OK;
}

static rb_status export_results(const char *path, const char *table, const char *run, FILE *o,
                                rb_err *e) {
    results_reader *rd;
    rb_status st = results_reader_open(path, &rd, e);
    if (st) return st;
    if (!strcmp(table, "summary")) st = export_summary(rd, path, run, o, e);
    else st = export_steps(rd, path, run, o, e);
    results_reader_close(rd);
    return st;
}

/* ---- command ---- */

/* Which kind of file `table` needs: 0 a results file, 1 a lifecycle file, -1 unknown. */
static int table_kind(const char *table) {
    static const char *const tables[] = {"summary", "steps", "heatmap", "milestones",
                                         "phoenix", "lifespan", "stats"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(table, tables[i])) return i >= 2;
    return -1;
}

/* The file at path is of the kind table needs (want_lc: a lifecycle file). */
static rb_status check_file(const char *path, const char *table, int want_lc, rb_err *e) {
    char format[64];
    int64_t version;
    if (rb_input_check(path, e)) return RB_EINPUT;
    if (h5_file_format(path, format, sizeof format, &version) != 0)
        return rb_fail(e, RB_EINPUT, path, "not an HDF5 file");
    int is_res = !strcmp(format, RESULTS_FORMAT), is_lc = !strcmp(format, LIFECYCLE_FORMAT);
    if (!is_res && !is_lc)
        return rb_fail(e, RB_EINPUT, path,
                       "not a raasbench results or lifecycle file (format attribute '%s')",
                       format);
    if (version != 1)
        return rb_fail(e, RB_EINPUT, path, "format_version %lld is not supported (1 is)",
                       (long long)version);
    if (want_lc && !is_lc)
        return rb_fail(e, RB_EINPUT, path,
                       "is a results file; table '%s' needs a lifecycle file (raasbench "
                       "lifecycle)", table);
    if (!want_lc && !is_res)
        return rb_fail(e, RB_EINPUT, path, "is a lifecycle file; table '%s' needs a results file",
                       table);
    return RB_OK;
}

int cmd_export(int argc, char **argv) {
    const char *table = NULL, *run = NULL, *out = NULL;
    int schema = 0;
    const arg_spec specs[] = {
        {"table", ARG_STR, &table, "T", "summary|steps (results), heatmap|milestones|phoenix|"
                                        "lifespan|stats (lifecycle), summary|tasks|length (eval)"},
        {"run", ARG_STR, &run, "ID", "only this run (summary, steps)"},
        {"out", ARG_STR, &out, "F.tsv", "output file (default stdout)"},
        {"schema", ARG_FLAG, &schema, NULL, "print the results format (markdown) and exit"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("export", usage, specs, argc, argv, pos, 1, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (schema) {
        results_schema_markdown(stdout);
        return fflush(stdout) ? 1 : 0;
    }
    if (n_pos != 1 || !table) {
        rb_fail(&e, RB_EINPUT, "export", "expected FILE and --table (see --help)");
        return rb_err_print(&e);
    }
    char fmt[64] = "";
    int64_t fver = 0;
    int is_eval = h5_file_format(pos[0], fmt, sizeof fmt, &fver) == 0 && !strcmp(fmt, EVAL_FORMAT);
    int want_lc = table_kind(table);
    if (is_eval) { /* an eval results file (raasbench eval): tables summary, tasks, length */
        if (strcmp(table, "summary") && strcmp(table, "tasks") && strcmp(table, "length"))
            rb_fail(&e, RB_EINPUT, "--table", "an eval file has tables summary, tasks and length, not '%s'",
                    table);
    } else if (want_lc < 0)
        rb_fail(&e, RB_EINPUT, "--table",
                "unknown table '%s' (summary, steps, heatmap, milestones, phoenix, lifespan, stats)",
                table);
    else if (run && want_lc)
        rb_fail(&e, RB_EINPUT, "--run", "applies to summary and steps only");
    else
        check_file(pos[0], table, want_lc, &e);
    if (e.status) return rb_err_print(&e);
    output_text ot = {.f = stdout};
    if (out && (output_check_all(&out, 1, pos, 1, &e) || output_text_open(&ot, out, &e)))
        return rb_err_print(&e);
    FILE *o = ot.f;
    rb_status st = is_eval   ? eval_results_export(pos[0], table, run, o, &e)
                   : want_lc ? export_lifecycle(pos[0], table, o, &e)
                             : export_results(pos[0], table, run, o, &e);
    if (out) st = output_text_close(&ot, st, &e);
    else if (fflush(stdout) != 0 && !st) st = rb_fail(&e, RB_EINTERNAL, "stdout", "write failed");
    return st ? rb_err_print(&e) : 0;
}
