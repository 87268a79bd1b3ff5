/* cmd_export.c: `raasbench export`: results files (DESIGN §5) and lifecycle files
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
#include "lifecycle.h"

static const char usage[] =
    "RESULTS.h5|LIFECYCLE.h5 --table T [--run ID] [--out F.tsv]\n\n"
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
    "Without --out the table goes to stdout.";

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

/* ---- results: summary ---- */

static rb_status export_summary(hid_t f, const char *path, const char *run, FILE *o,
                                rb_err *e) {
    if (!has_link(f, "summary"))
        return rb_fail(e, RB_EINPUT, path, "has no /summary table");
    hid_t ds = H5Dopen2(f, "summary", H5P_DEFAULT);
    hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds);
    rb_status st = RB_OK;
    int nm = H5Tget_class(ft) == H5T_COMPOUND ? H5Tget_nmembers(ft) : -1;
    if (nm <= 0 || H5Sget_simple_extent_ndims(sp) != 1) {
        st = rb_fail(e, RB_EINPUT, path, "/summary is not a one-dimensional compound table");
        goto out_close;
    }
    hsize_t n_rows;
    H5Sget_simple_extent_dims(sp, &n_rows, NULL);
    /* a memory type with every field converted to int64, double or a C string */
    enum { F_INT, F_FLT, F_VSTR, F_FSTR };
    int *kind = rb_malloc(sizeof(int) * nm);
    size_t *off = rb_malloc(sizeof(size_t) * nm), *fsize = rb_malloc(sizeof(size_t) * nm);
    char **names = rb_calloc((size_t)nm, sizeof(char *));
    hid_t *mts = rb_malloc(sizeof(hid_t) * nm);
    size_t row_size = 0;
    int run_field = -1;
    for (int i = 0; i < nm; i++) {
        names[i] = H5Tget_member_name(ft, (unsigned)i);
        hid_t mt = H5Tget_member_type(ft, (unsigned)i);
        H5T_class_t cl = H5Tget_class(mt);
        if (cl == H5T_INTEGER) {
            kind[i] = F_INT;
            mts[i] = H5Tcopy(H5T_NATIVE_INT64);
        } else if (cl == H5T_FLOAT) {
            kind[i] = F_FLT;
            mts[i] = H5Tcopy(H5T_NATIVE_DOUBLE);
        } else if (cl == H5T_STRING) {
            mts[i] = H5Tcopy(H5T_C_S1);
            if (H5Tis_variable_str(mt) > 0) {
                kind[i] = F_VSTR;
                H5Tset_size(mts[i], H5T_VARIABLE);
            } else {
                kind[i] = F_FSTR;
                H5Tset_size(mts[i], H5Tget_size(mt) + 1);
                H5Tset_strpad(mts[i], H5T_STR_NULLTERM);
            }
            H5Tset_cset(mts[i], H5Tget_cset(mt));
        } else {
            mts[i] = H5Tcopy(H5T_NATIVE_INT64);
            kind[i] = -1;
        }
        H5Tclose(mt);
        fsize[i] = H5Tget_size(mts[i]);
        size_t align = 8;
        row_size = (row_size + align - 1) / align * align;
        off[i] = row_size;
        row_size += fsize[i];
        if (!strcmp(names[i], "run_id") && kind[i] >= F_VSTR) run_field = i;
    }
    row_size = (row_size + 7) / 8 * 8;
    hid_t mem = H5Tcreate(H5T_COMPOUND, row_size > 0 ? row_size : 8);
    for (int i = 0; i < nm; i++)
        if (kind[i] >= 0) H5Tinsert(mem, names[i], off[i], mts[i]);
    char *buf = rb_calloc(n_rows ? n_rows : 1, row_size);
    if (n_rows && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        st = rb_fail(e, RB_EINPUT, path, "/summary cannot be read");
    } else if (run && run_field < 0) {
        st = rb_fail(e, RB_EINPUT, path, "/summary has no run_id field to select --run");
    } else {
        int first = 1, found = 0;
        for (int i = 0; i < nm; i++) {
            if (kind[i] < 0) continue;
            fputs(first ? "" : "\t", o);
            put_str(o, names[i]);
            first = 0;
        }
        fputc('\n', o);
        for (hsize_t r = 0; r < n_rows; r++) {
            char *row = buf + r * row_size;
            if (run) {
                const char *id = kind[run_field] == F_VSTR ? *(char **)(row + off[run_field])
                                                           : row + off[run_field];
                if (!id || strcmp(id, run)) continue;
            }
            found = 1;
            first = 1;
            for (int i = 0; i < nm; i++) {
                if (kind[i] < 0) continue;
                fputs(first ? "" : "\t", o);
                first = 0;
                char *p = row + off[i];
                if (kind[i] == F_INT) fprintf(o, "%lld", (long long)*(int64_t *)p);
                else if (kind[i] == F_FLT) put_f(o, *(double *)p);
                else if (kind[i] == F_VSTR) put_str(o, *(char **)p ? *(char **)p : "");
                else put_str(o, p);
            }
            fputc('\n', o);
        }
        if (run && !found) st = rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
        hid_t msp = H5Screate_simple(1, &n_rows, NULL);
        if (n_rows) H5Dvlen_reclaim(mem, msp, H5P_DEFAULT, buf);
        H5Sclose(msp);
    }
    free(buf);
    H5Tclose(mem);
    for (int i = 0; i < nm; i++) {
        H5Tclose(mts[i]);
        H5free_memory(names[i]);
    }
    free(kind);
    free(off);
    free(fsize);
    free(names);
    free(mts);
out_close:
    H5Sclose(sp);
    H5Tclose(ft);
    H5Dclose(ds);
    return st;
}

/* ---- results: steps ---- */

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    name_list *l = data;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = rb_realloc(l->v, sizeof(char *) * (size_t)l->cap);
    }
    l->v[l->n++] = rb_strdup(name);
    return 0;
}

static void name_list_free(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

/* Mean of row t of a [T, L] table over the counted layers, skipping NaN. */
static double layer_mean(const float *x, int L, int t, const uint8_t *counted) {
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

static const char *const live_cols[] = {"token_match", "kl", "token_latency_ns"};

static rb_status export_run_steps(hid_t runs, const char *path, const char *id, int live,
                                  FILE *o, rb_err *e) {
    char what[512];
    snprintf(what, sizeof what, "%s: run %s", path, id);
    hid_t g = H5Gopen2(runs, id, H5P_DEFAULT);
    if (g < 0) return rb_fail(e, RB_EINPUT, what, "is not a group");
    char policy[128] = "?";
    int64_t budget = -1, dense_layers = -1;
    h5_attr_read_str(g, "policy", policy, sizeof policy);
    h5_attr_read_i64(g, "budget", &budget);
    h5_attr_read_i64(g, "dense_layers", &dense_layers);
    rb_status st;
    hsize_t d1[1], d2[2], dr[2], da[2];
    int32_t *step = NULL;
    float *recall = NULL, *out_err = NULL, *attended = NULL, *lv[2] = {NULL, NULL};
    int64_t *lat = NULL, *kv = NULL, *meta = NULL, *tlat = NULL;
    uint8_t *counted = NULL;
    if ((st = read_all(g, "step", H5T_NATIVE_INT32, 4, 1, d1, (void **)&step, what, e)))
        goto done;
    hsize_t T = d1[0];
    if ((st = read_all(g, "recall", H5T_NATIVE_FLOAT, 4, 2, d2, (void **)&recall, what, e)) ||
        (st = read_all(g, "out_err", H5T_NATIVE_FLOAT, 4, 2, dr, (void **)&out_err, what, e)) ||
        (st = read_all(g, "attended", H5T_NATIVE_FLOAT, 4, 2, da, (void **)&attended, what, e)))
        goto done;
    if (d2[0] != T || dr[0] != T || da[0] != T || dr[1] != d2[1] || da[1] != d2[1]) {
        st = rb_fail(e, RB_EINPUT, what, "recall/out_err/attended are not all [%llu, n_layers]",
                     (unsigned long long)T);
        goto done;
    }
    const char *i64[] = {"latency_ns", "kv_bytes", "meta_bytes"};
    int64_t **i64v[] = {&lat, &kv, &meta};
    for (int i = 0; i < 3; i++) {
        if ((st = read_all(g, i64[i], H5T_NATIVE_INT64, 8, 1, d1, (void **)i64v[i], what, e)))
            goto done;
        if (d1[0] != T) {
            st = rb_fail(e, RB_EINPUT, what, "%s has %llu rows, step has %llu", i64[i],
                         (unsigned long long)d1[0], (unsigned long long)T);
            goto done;
        }
    }
    for (int i = 0; i < 3 && live; i++) {
        if (!has_link(g, live_cols[i])) continue;
        if (i < 2) st = read_all(g, live_cols[i], H5T_NATIVE_FLOAT, 4, 1, d1, (void **)&lv[i],
                                 what, e);
        else st = read_all(g, live_cols[i], H5T_NATIVE_INT64, 8, 1, d1, (void **)&tlat, what, e);
        if (st) goto done;
        if (d1[0] != T) {
            st = rb_fail(e, RB_EINPUT, what, "%s has %llu rows, step has %llu", live_cols[i],
                         (unsigned long long)d1[0], (unsigned long long)T);
            goto done;
        }
    }
    /* which layers count in the means: sparse_layers (run, else root), else the layers
     * past dense_layers, else all */
    int L = (int)d2[1];
    counted = rb_malloc((size_t)(L ? L : 1));
    int32_t *sl = rb_malloc(sizeof(int32_t) * (size_t)(L ? L : 1));
    int n_sl = -1;
    hid_t root = H5Oopen(g, "/", H5P_DEFAULT);
    if (h5_attr_read_i32_array(g, "sparse_layers", sl, L, &n_sl) != 0 &&
        h5_attr_read_i32_array(root, "sparse_layers", sl, L, &n_sl) != 0)
        n_sl = -1;
    H5Oclose(root);
    if (n_sl >= 0 && n_sl != L) {
        free(sl);
        st = rb_fail(e, RB_EINPUT, what, "sparse_layers has %d entries for %d layers", n_sl, L);
        goto done;
    }
    for (int l = 0; l < L; l++)
        counted[l] = n_sl >= 0 ? sl[l] != 0 : (dense_layers < 0 || l >= dense_layers);
    free(sl);
    for (hsize_t t = 0; t < T; t++) {
        put_str(o, id);
        fputc('\t', o);
        put_str(o, policy);
        fprintf(o, "\t%lld\t%d\t", (long long)budget, step[t]);
        put_f(o, layer_mean(recall, L, (int)t, counted));
        fputc('\t', o);
        put_f(o, layer_mean(out_err, L, (int)t, counted));
        fputc('\t', o);
        put_f(o, layer_mean(attended, L, (int)t, counted));
        /* A step whose latency was not measured (replay --latency-every) is NaN here. */
        if (lat[t] >= 0) fprintf(o, "\t%lld", (long long)lat[t]);
        else fputs("\tNaN", o);
        fprintf(o, "\t%lld\t%lld", (long long)kv[t], (long long)meta[t]);
        if (live) {
            for (int i = 0; i < 2; i++) {
                fputc('\t', o);
                put_f(o, lv[i] ? lv[i][t] : NAN);
            }
            if (tlat) fprintf(o, "\t%lld", (long long)tlat[t]);
            else fputs("\tNaN", o);
        }
        fputc('\n', o);
    }
done:
    free(step);
    free(recall);
    free(out_err);
    free(attended);
    free(lat);
    free(kv);
    free(meta);
    free(lv[0]);
    free(lv[1]);
    free(tlat);
    free(counted);
    H5Gclose(g);
    return st;
}

static rb_status export_steps(hid_t f, const char *path, const char *run, FILE *o, rb_err *e) {
    if (!has_link(f, "runs")) return rb_fail(e, RB_EINPUT, path, "has no /runs group");
    hid_t runs = H5Gopen2(f, "runs", H5P_DEFAULT);
    if (runs < 0) return rb_fail(e, RB_EINPUT, path, "/runs is not a group");
    name_list ids = {0};
    H5Literate(runs, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &ids);
    rb_status st = RB_OK;
    int live = 0, found = 0;
    for (int i = 0; i < ids.n; i++) {
        if (run && strcmp(ids.v[i], run)) continue;
        found = 1;
        for (int c = 0; c < 3; c++) {
            char p[600];
            snprintf(p, sizeof p, "%s/%s", ids.v[i], live_cols[c]);
            if (H5Lexists(runs, ids.v[i], H5P_DEFAULT) > 0 && has_link(runs, p)) live = 1;
        }
    }
    if (run && !found) st = rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    else if (!ids.n) st = rb_fail(e, RB_EINPUT, path, "/runs holds no runs");
    if (!st) {
        fputs("run_id\tpolicy\tbudget\tstep\trecall\tout_err\tattended\tlatency_ns\tkv_bytes"
              "\tmeta_bytes",
              o);
        if (live) fputs("\ttoken_match\tkl\ttoken_latency_ns", o);
        fputc('\n', o);
        int block = 0;
        for (int i = 0; i < ids.n && !st; i++) {
            if (run && strcmp(ids.v[i], run)) continue;
            if (block++) fputs("\n\n", o);
            st = export_run_steps(runs, path, ids.v[i], live, o, e);
        }
    }
    name_list_free(&ids);
    H5Gclose(runs);
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

/* ---- command ---- */

int cmd_export(int argc, char **argv) {
    const char *table = NULL, *run = NULL, *out = NULL;
    const arg_spec specs[] = {
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
    if (n_pos != 1 || !table) {
        rb_fail(&e, RB_EINPUT, "export", "expected FILE and --table (see --help)");
        return rb_err_print(&e);
    }
    static const char *const res_tables[] = {"summary", "steps"};
    static const char *const lc_tables[] = {"heatmap", "milestones", "phoenix", "lifespan"};
    int want_lc = -1;
    for (int i = 0; i < 2; i++)
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
    if (!strcmp(table, "summary")) st = export_summary(f, path, run, o, &e);
    else if (!strcmp(table, "steps")) st = export_steps(f, path, run, o, &e);
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
