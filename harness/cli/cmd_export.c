/* cmd_export.c: `raasbench export`: results files (docs/DESIGN.md §5) and lifecycle files
 * (harness/analysis/lifecycle.h) as TSV for gnuplot and spreadsheets.
 *
 * TSV conventions: one header line of column names, tab-separated fields, no quoting (tabs
 * and newlines inside strings become spaces), numbers in C locale, NaN written as NaN (both
 * gnuplot and spreadsheets read it). Tables with several data sets (runs, detected and
 * planted rows) separate them by two blank lines, so gnuplot's `index N` selects the N-th;
 * the header line is printed once, at the top. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "h5util.h"
#include "eval_results.h"
#include "lifecycle.h"
#include "output.h"
#include "results.h"

static const char usage[] =
    "RESULTS.h5|LIFECYCLE.h5 --table T [--run ID] [--out F.tsv]   |   --schema\n\n"
    "Tables of a results file (raasbench replay/sweep/decode):\n"
    "  summary    one row per run, every field of /summary\n"
    "  steps      per run and decode step: run_id policy budget step recall out_err\n"
    "             attended (means over the sparse layers) latency_ns kv_bytes meta_bytes,\n"
    "             and token_match kl token_latency_ns for live decodes; runs in name order,\n"
    "             each a block (two blank lines apart: gnuplot `index i` is the i-th run)\n"
    "Tables of a lifecycle file (raasbench lifecycle):\n"
    "  heatmap    step token importance (cell centres; importance = max ratio to uniform\n"
    "             in the cell, NaN where the token did not exist yet), a blank line after\n"
    "             each step row (gnuplot `with image`)\n"
    "  milestones set position first last lifespan; block 0 detected, block 1 planted\n"
    "  phoenix    set position dormant_from revived_at dormant_steps; blocks as above\n"
    "  lifespan   bin_lo bin_hi detected planted (planted NaN without truth)\n"
    "Without --out the table goes to stdout. --schema prints the results format's datasets\n"
    "and /summary columns as the markdown tables of results/FORMAT.md.";

/* ---- small readers ---- */

static void put_str(FILE *o, const char *s) {
    for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, o);
}
static void put_f(FILE *o, double v) {
    if (isnan(v)) fputs("NaN", o);
    else fprintf(o, "%.9g", v);
}

/* Read a whole dataset of rank `rank` into a malloc'd buffer of mem_type; dims out. */
static rb_status read_all(hid_t loc, const char *name, hid_t mem_type, size_t elem, int rank,
                          hsize_t *dims, void **out, const char *what, rb_err *e) {
    *out = NULL;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return rb_fail(e, RB_EINPUT, what, "missing dataset %s", name);
    hid_t sp = H5Dget_space(ds);
    int r = H5Sget_simple_extent_ndims(sp);
    rb_status st = RB_OK;
    if (r != rank) {
        st = rb_fail(e, RB_EINPUT, what, "%s has rank %d, expected %d", name, r, rank);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        size_t n = 1;
        for (int i = 0; i < rank; i++) n *= dims[i];
        *out = rb_malloc(elem * (n ? n : 1));
        if (n && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
            free(*out);
            *out = NULL;
            st = rb_fail(e, RB_EINPUT, what, "%s cannot be read as numbers", name);
        }
    }
    H5Sclose(sp);
    H5Dclose(ds);
    return st;
}

static int has_link(hid_t loc, const char *name) { return H5Lexists(loc, name, H5P_DEFAULT) > 0; }

/* ---- results: through the results reader, columns from its schema (results.h) ---- */

static rb_status export_summary(const char *path, const char *run, FILE *o, rb_err *e) {
    results_summary *rows;
    int n_rows, n_cols;
    uint8_t present[RESULTS_MAX_SUMMARY_COLUMNS];
    rb_status st = results_read_summary(path, &rows, &n_rows, present, e);
    if (st) return st;
    const results_summary_column *cols = results_summary_columns(&n_cols);
    int first = 1, found = 0;
    for (int c = 0; c < n_cols; c++) {
        if (!present[c]) continue; /* a file of another writer: its own columns */
        fputs(first ? "" : "\t", o);
        put_str(o, cols[c].name);
        first = 0;
    }
    fputc('\n', o);
    for (int r = 0; r < n_rows; r++) {
        if (run && strcmp(rows[r].run_id, run)) continue;
        found = 1;
        first = 1;
        for (int c = 0; c < n_cols; c++) {
            if (!present[c]) continue;
            fputs(first ? "" : "\t", o);
            first = 0;
            const char *p = (const char *)&rows[r] + cols[c].offset;
            switch (cols[c].type) {
            case RESULTS_STR: put_str(o, p); break;
            case RESULTS_F64: put_f(o, *(const double *)p); break;
            case RESULTS_I32: fprintf(o, "%d", *(const int32_t *)p); break;
            default: fprintf(o, "%lld", (long long)*(const int64_t *)p); break;
            }
        }
        fputc('\n', o);
    }
    free(rows);
    if (run && !found) return rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    return RB_OK;
}

/* Mean of row t of a [T, L] table over the run's sparse layers, skipping NaN. */
static double layer_mean(const float *x, int L, int t, const int32_t *sparse) {
    double s = 0;
    int n = 0;
    for (int l = 0; l < L; l++) {
        float v = x[(size_t)t * L + l];
        if (sparse[l] && !isnan(v)) {
            s += v;
            n++;
        }
    }
    return n ? s / n : NAN;
}

static int shows_in_steps(const results_column *c, int live) {
    return (c->flags & RESULTS_COL_STEPS) && (live || !(c->flags & RESULTS_COL_LIVE));
}

/* One cell of the steps table: column c of run r at step t. */
static void put_step_value(FILE *o, const results_run *r, const results_column *c, int t) {
    const void *x = *(void *const *)((const char *)r + c->offset);
    if (!x) { /* a live column this run lacks */
        fputs("NaN", o);
        return;
    }
    if (c->shape == RESULTS_SHAPE_T_LAYERS) {
        put_f(o, layer_mean(x, r->n_layers, t, r->sparse));
    } else if (c->type == RESULTS_F32) {
        put_f(o, ((const float *)x)[t]);
    } else {
        long long v = c->type == RESULTS_I32 ? ((const int32_t *)x)[t] : ((const int64_t *)x)[t];
        if (v < 0 && (c->flags & RESULTS_COL_NEG_NA)) fputs("NaN", o);
        else fprintf(o, "%lld", v);
    }
}

static rb_status export_steps(const char *path, const char *run, FILE *o, rb_err *e) {
    char **ids = NULL;
    int n_ids = 0, n_cols;
    rb_status st = results_list_runs(path, &ids, &n_ids, e);
    if (st) return st;
    const results_column *cols = results_columns(&n_cols);
    results_run *runs = rb_calloc((size_t)(n_ids ? n_ids : 1), sizeof *runs);
    int live = 0, found = 0;
    for (int i = 0; i < n_ids && !st; i++) {
        if (run && strcmp(ids[i], run)) continue;
        found = 1;
        if ((st = results_read_run(path, ids[i], &runs[i], e))) break;
        for (int c = 0; c < n_cols; c++)
            live |= (cols[c].flags & RESULTS_COL_LIVE) && *(void **)((char *)&runs[i] + cols[c].offset);
    }
    if (!st && run && !found) st = rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    else if (!st && !n_ids) st = rb_fail(e, RB_EINPUT, path, "/runs holds no runs");
    if (!st) {
        fputs("run_id\tpolicy\tbudget", o);
        for (int c = 0; c < n_cols; c++)
            if (shows_in_steps(&cols[c], live)) fprintf(o, "\t%s", cols[c].name);
        fputc('\n', o);
        int block = 0;
        for (int i = 0; i < n_ids; i++) {
            if (run && strcmp(ids[i], run)) continue;
            const results_run *r = &runs[i];
            if (block++) fputs("\n\n", o);
            for (int t = 0; t < r->T; t++) {
                put_str(o, r->run_id);
                fputc('\t', o);
                put_str(o, r->policy);
                fprintf(o, "\t%d", r->budget);
                for (int c = 0; c < n_cols; c++) {
                    if (!shows_in_steps(&cols[c], live)) continue;
                    fputc('\t', o);
                    put_step_value(o, r, &cols[c], t);
                }
                fputc('\n', o);
            }
        }
    }
    for (int i = 0; i < n_ids; i++) results_run_free(&runs[i]), free(ids[i]);
    free(runs), free(ids);
    return st;
}

/* ---- lifecycle tables ---- */

static rb_status read_rows(hid_t loc, const char *name, int32_t **rows, int *n, const char *what,
                           rb_err *e) {
    hsize_t d[2];
    rb_status st = read_all(loc, name, H5T_NATIVE_INT32, 4, 2, d, (void **)rows, what, e);
    if (st) return st;
    if (d[1] != 3) {
        free(*rows);
        *rows = NULL;
        return rb_fail(e, RB_EINPUT, what, "%s is not [n, 3]", name);
    }
    *n = (int)d[0];
    return RB_OK;
}

static rb_status export_rows(hid_t f, const char *path, int phoenix, FILE *o, rb_err *e) {
    const char *name = phoenix ? "phoenix" : "milestones";
    fputs(phoenix ? "set\tposition\tdormant_from\trevived_at\tdormant_steps\n"
                  : "set\tposition\tfirst\tlast\tlifespan\n",
          o);
    for (int s = 0; s < 2; s++) {
        char p[64];
        snprintf(p, sizeof p, "%s%s", s ? "truth/" : "", name);
        if (s && !has_link(f, "truth")) break;
        if (s && !has_link(f, p)) break;
        int32_t *rows = NULL;
        int n = 0;
        rb_status st = read_rows(f, p, &rows, &n, path, e);
        if (st) return st;
        if (s) fputs("\n\n", o);
        for (int i = 0; i < n; i++) {
            const int32_t *r = rows + 3 * i;
            /* phoenix: steps dormant = revived - dormant_from; milestone: last - first + 1 */
            fprintf(o, "%s\t%d\t%d\t%d\t%d\n", s ? "planted" : "detected", r[0], r[1], r[2],
                    phoenix ? r[2] - r[1] : r[2] - r[1] + 1);
        }
        free(rows);
    }
    return RB_OK;
}

static rb_status export_lifespan(hid_t f, const char *path, FILE *o, rb_err *e) {
    hsize_t de[1], dc[1], dt[1];
    int32_t *edges = NULL, *counts = NULL, *tcounts = NULL;
    rb_status st;
    if ((st = read_all(f, "lifespan_hist/edges", H5T_NATIVE_INT32, 4, 1, de, (void **)&edges,
                       path, e)) ||
        (st = read_all(f, "lifespan_hist/counts", H5T_NATIVE_INT32, 4, 1, dc, (void **)&counts,
                       path, e)))
        goto done;
    if (de[0] != dc[0] + 1) {
        st = rb_fail(e, RB_EINPUT, path, "lifespan_hist: %llu edges for %llu counts",
                     (unsigned long long)de[0], (unsigned long long)dc[0]);
        goto done;
    }
    if (has_link(f, "truth") && has_link(f, "truth/lifespan_hist")) {
        if ((st = read_all(f, "truth/lifespan_hist/counts", H5T_NATIVE_INT32, 4, 1, dt,
                           (void **)&tcounts, path, e)))
            goto done;
        if (dt[0] != dc[0]) {
            st = rb_fail(e, RB_EINPUT, path, "truth/lifespan_hist has %llu bins, not %llu",
                         (unsigned long long)dt[0], (unsigned long long)dc[0]);
            goto done;
        }
    }
    fputs("bin_lo\tbin_hi\tdetected\tplanted\n", o);
    for (hsize_t b = 0; b < dc[0]; b++) {
        fprintf(o, "%d\t%d\t%d\t", edges[b], edges[b + 1], counts[b]);
        if (tcounts) fprintf(o, "%d\n", tcounts[b]);
        else fputs("NaN\n", o);
    }
done:
    free(edges);
    free(counts);
    free(tcounts);
    return st;
}

static rb_status export_heatmap(hid_t f, const char *path, FILE *o, rb_err *e) {
    hsize_t d[2];
    float *h = NULL;
    rb_status st = read_all(f, "heatmap", H5T_NATIVE_FLOAT, 4, 2, d, (void **)&h, path, e);
    if (st) return st;
    hid_t ds = H5Dopen2(f, "heatmap", H5P_DEFAULT);
    int64_t sb, tb, s0, t0;
    if (h5_attr_read_i64(ds, "step_bin", &sb) || h5_attr_read_i64(ds, "token_bin", &tb) ||
        h5_attr_read_i64(ds, "step0", &s0) || h5_attr_read_i64(ds, "token0", &t0) || sb < 1 ||
        tb < 1)
        st = rb_fail(e, RB_EINPUT, path, "heatmap lacks valid step_bin/token_bin/step0/token0");
    H5Dclose(ds);
    if (!st) {
        fputs("step\ttoken\timportance\n", o);
        for (hsize_t a = 0; a < d[0]; a++) {
            /* cell centres: a bin of sb steps starting at s0 + a*sb has centre + (sb-1)/2 */
            double sc = (double)s0 + (double)a * sb + (sb - 1) / 2.0;
            for (hsize_t b = 0; b < d[1]; b++) {
                double tc = (double)t0 + (double)b * tb + (tb - 1) / 2.0;
                fprintf(o, "%g\t%g\t", sc, tc);
                put_f(o, h[a * d[1] + b]);
                fputc('\n', o);
            }
            fputc('\n', o);
        }
    }
    free(h);
    return st;
}

/* ---- eval results (raasbench eval) ---- */

static int eval_file(const char *path) {
    h5_quiet();
    if (H5Fis_hdf5(path) <= 0) return 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char fmt[64] = "";
    if (f >= 0) h5_attr_read_str(f, "format", fmt, sizeof fmt), H5Fclose(f);
    return !strcmp(fmt, EVAL_FORMAT);
}

static int export_eval(const char *path, const char *table, const char *run, const char *out) {
    rb_err e = {0};
    if (out && output_check(out, &e)) return rb_err_print(&e);
    FILE *o = stdout;
    char tmp[4200];
    if (out) {
        h5_tmp_path(out, tmp, sizeof tmp);
        if (!(o = fopen(tmp, "w"))) {
            rb_fail(&e, RB_EINPUT, out, "cannot create (directory missing or not writable?)");
            return rb_err_print(&e);
        }
    }
    rb_status st = eval_results_export(path, table, run, o, &e);
    if (out) {
        if (fclose(o) != 0 && !st) st = rb_fail(&e, RB_EINTERNAL, out, "write failed");
        if (!st && rename(tmp, out) != 0) st = rb_fail(&e, RB_EINTERNAL, out, "cannot rename into place");
        if (st) unlink(tmp);
    }
    return st ? rb_err_print(&e) : 0;
}

/* ---- command ---- */

int cmd_export(int argc, char **argv) {
    const char *table = NULL, *run = NULL, *out = NULL;
    int schema = 0;
    const arg_spec specs[] = {
        {"schema", ARG_FLAG, &schema, NULL, "print the results format's tables (markdown)"},
        {"table", ARG_STR, &table, "T", "summary|steps (results), heatmap|milestones|phoenix|"
                                        "lifespan (lifecycle)"},
        {"run", ARG_STR, &run, "ID", "only this run (summary, steps)"},
        {"out", ARG_STR, &out, "F.tsv", "output file (default stdout)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0, help = 0;
    rb_err e = {0};
    if (args_parse("export", usage, specs, argc, argv, pos, 1, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (schema && (n_pos || table || run || out)) {
        rb_fail(&e, RB_EINPUT, "--schema", "takes no file and no other option");
        return rb_err_print(&e);
    }
    if (schema) {
        results_print_schema(stdout);
        return fflush(stdout) ? 1 : 0;
    }
    if (n_pos != 1 || !table) {
        rb_fail(&e, RB_EINPUT, "export", "expected FILE and --table (see --help)");
        return rb_err_print(&e);
    }
    static const char *const res_tables[] = {"summary", "steps", "tasks"};
    static const char *const lc_tables[] = {"heatmap", "milestones", "phoenix", "lifespan"};
    int want_lc = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(table, res_tables[i])) want_lc = 0;
    for (int i = 0; i < 4; i++)
        if (!strcmp(table, lc_tables[i])) want_lc = 1;
    if (want_lc < 0) {
        rb_fail(&e, RB_EINPUT, "--table",
                "unknown table '%s' (summary, steps, heatmap, milestones, phoenix, lifespan)",
                table);
        return rb_err_print(&e);
    }
    if (run && want_lc) {
        rb_fail(&e, RB_EINPUT, "--run", "applies to summary and steps only");
        return rb_err_print(&e);
    }
    h5_quiet();
    const char *path = pos[0];
    if (eval_file(path)) /* an eval results file: its own tables */
        return export_eval(path, table, run, out);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rb_fail(&e, RB_EINPUT, path, "cannot open as HDF5 (missing, or not an HDF5 file)");
        return rb_err_print(&e);
    }
    char format[64] = "";
    int64_t version = -1;
    h5_attr_read_str(f, "format", format, sizeof format);
    h5_attr_read_i64(f, "format_version", &version);
    int is_res = !strcmp(format, "raasbench-results"), is_lc = !strcmp(format, LIFECYCLE_FORMAT);
    rb_status st = RB_OK;
    if (!is_res && !is_lc)
        st = rb_fail(&e, RB_EINPUT, path,
                     "not a raasbench results or lifecycle file (format attribute '%s')", format);
    else if (version != 1)
        st = rb_fail(&e, RB_EINPUT, path, "format_version %lld is not supported (1 is)",
                     (long long)version);
    else if (want_lc && !is_lc)
        st = rb_fail(&e, RB_EINPUT, path,
                     "is a results file; table '%s' needs a lifecycle file (raasbench lifecycle)",
                     table);
    else if (!want_lc && !is_res)
        st = rb_fail(&e, RB_EINPUT, path,
                     "is a lifecycle file; table '%s' needs a results file", table);
    if (st) {
        H5Fclose(f);
        return rb_err_print(&e);
    }
    FILE *o = stdout;
    char *tmp = NULL;
    if (out) {
        size_t len = strlen(out) + 32;
        tmp = rb_malloc(len);
        h5_tmp_path(out, tmp, len);
        o = fopen(tmp, "w");
        if (!o) {
            free(tmp);
            H5Fclose(f);
            rb_fail(&e, RB_EINPUT, out, "cannot create (directory missing or not writable?)");
            return rb_err_print(&e);
        }
    }
    if (!strcmp(table, "summary")) st = export_summary(path, run, o, &e);
    else if (!strcmp(table, "steps")) st = export_steps(path, run, o, &e);
    else if (!strcmp(table, "heatmap")) st = export_heatmap(f, path, o, &e);
    else if (!strcmp(table, "milestones")) st = export_rows(f, path, 0, o, &e);
    else if (!strcmp(table, "phoenix")) st = export_rows(f, path, 1, o, &e);
    else st = export_lifespan(f, path, o, &e);
    H5Fclose(f);
    if (out) {
        if (fclose(o) != 0 && !st) st = rb_fail(&e, RB_EINTERNAL, out, "write failed");
        if (!st && rename(tmp, out) != 0)
            st = rb_fail(&e, RB_EINTERNAL, out, "cannot rename %s into place", tmp);
        if (st) unlink(tmp);
        free(tmp);
    } else if (fflush(stdout) != 0 && !st) {
        st = rb_fail(&e, RB_EINTERNAL, "stdout", "write failed");
    }
    return st ? rb_err_print(&e) : 0;
}
