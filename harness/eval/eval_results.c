/* eval_results.c: the eval results file and the resumable parts (eval_results.h). */
#define _POSIX_C_SOURCE 200809L
#include "eval_results.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"
#include "json.h"
#include "output.h"

/* ------------------------------------------------------------------ summary */

/* The cell that is the reference for retained accuracy: the first budget-free one. */
static int dense_cell(const cell *cells, int n) {
    for (int i = 0; i < n; i++)
        if (cells[i].ops->flags & POLICY_BUDGET_FREE) return i;
    return -1;
}

void eval_summarise(const cell *cells, int n_cells, eval_result *const *results, int n_tasks,
                    eval_summary *rows) {
    int d = dense_cell(cells, n_cells);
    for (int c = 0; c < n_cells; c++) {
        eval_summary *s = &rows[c];
        memset(s, 0, sizeof *s);
        snprintf(s->run_id, sizeof s->run_id, "%s", cells[c].run_id);
        snprintf(s->policy, sizeof s->policy, "%s", cells[c].ops->name);
        snprintf(s->label, sizeof s->label, "%s", cells[c].label);
        s->budget = cells[c].budget;
        s->n_tasks = n_tasks;
        int both = 0, dense_ok = 0;
        double res = 0, gen = 0;
        for (int t = 0; t < n_tasks; t++) {
            const eval_result *r = &results[c][t];
            s->n_correct += r->correct;
            res += r->mean_resident_tokens, gen += r->n_generated;
            if (r->peak_kv_bytes > s->peak_kv_bytes) s->peak_kv_bytes = r->peak_kv_bytes;
            if (d >= 0 && results[d][t].correct) dense_ok++, both += r->correct;
        }
        s->accuracy = n_tasks ? (double)s->n_correct / n_tasks : NAN;
        eval_wilson(s->n_correct, n_tasks, &s->wilson_lo, &s->wilson_hi);
        s->retained = dense_ok ? (double)both / dense_ok : NAN;
        s->mean_resident_tokens = n_tasks ? res / n_tasks : NAN;
        s->mean_generated = n_tasks ? gen / n_tasks : NAN;
    }
}

/* The /summary compound, in memory and in the file. */
static hid_t summary_type(void) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(eval_summary));
    hid_t s160 = h5_type_fixed_str(160), s32 = h5_type_fixed_str(32), s64 = h5_type_fixed_str(64);
    H5Tinsert(t, "run_id", HOFFSET(eval_summary, run_id), s160);
    H5Tinsert(t, "policy", HOFFSET(eval_summary, policy), s32);
    H5Tinsert(t, "label", HOFFSET(eval_summary, label), s64);
    H5Tinsert(t, "budget", HOFFSET(eval_summary, budget), H5T_NATIVE_INT32);
    H5Tinsert(t, "n_tasks", HOFFSET(eval_summary, n_tasks), H5T_NATIVE_INT32);
    H5Tinsert(t, "n_correct", HOFFSET(eval_summary, n_correct), H5T_NATIVE_INT32);
    H5Tinsert(t, "accuracy", HOFFSET(eval_summary, accuracy), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "wilson_lo", HOFFSET(eval_summary, wilson_lo), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "wilson_hi", HOFFSET(eval_summary, wilson_hi), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "retained", HOFFSET(eval_summary, retained), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "mean_resident_tokens", HOFFSET(eval_summary, mean_resident_tokens),
              H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "peak_kv_bytes", HOFFSET(eval_summary, peak_kv_bytes), H5T_NATIVE_INT64);
    H5Tinsert(t, "mean_generated", HOFFSET(eval_summary, mean_generated), H5T_NATIVE_DOUBLE);
    H5Tclose(s160), H5Tclose(s32), H5Tclose(s64);
    return t;
}

/* ------------------------------------------------------------------ writing */

static int write_strings(hid_t loc, const char *name, const char *const *v, hsize_t n) {
    hid_t t = h5_type_vlen_str();
    int bad = h5_write_dataset(loc, name, t, 1, &n, v, 0);
    H5Tclose(t);
    return bad;
}

/* One run: its attributes, and its per-task columns in /runs/<run_id>/tasks/, one row per
 * task in the tasks file's order (ids repeated there, so a run reads on its own). */
static int write_run(hid_t runs, const cell *c, eval_result *const res, const char *const *ids,
                     int n) {
    hid_t rg = H5Gcreate2(runs, c->run_id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (rg < 0) return 1;
    int bad = 0;
    bad |= h5_attr_write_str(rg, "policy", c->ops->name);
    bad |= h5_attr_write_str(rg, "label", c->label);
    bad |= h5_attr_write_i64(rg, "budget", c->budget);
    bad |= h5_attr_write_str(rg, "params", c->params_json ? c->params_json : "{}");
    hid_t g = H5Gcreate2(rg, "tasks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        H5Gclose(rg);
        return 1;
    }
    hsize_t N = (hsize_t)n;
    uint8_t *correct = rb_malloc((size_t)(n ? n : 1));
    int32_t *ngen = rb_malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int32_t *stop = rb_malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int64_t *peak = rb_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    double *resident = rb_malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *wall = rb_malloc(sizeof(double) * (size_t)(n ? n : 1));
    const char **ext = rb_malloc(sizeof(char *) * (size_t)(n ? n : 1));
    const char **gen = rb_malloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int t = 0; t < n; t++) {
        correct[t] = (uint8_t)res[t].correct, ngen[t] = res[t].n_generated, stop[t] = res[t].stop;
        peak[t] = res[t].peak_kv_bytes, resident[t] = res[t].mean_resident_tokens;
        wall[t] = res[t].wall_s, ext[t] = res[t].extracted;
        gen[t] = res[t].generated ? res[t].generated : "";
    }
    bad |= write_strings(g, "id", ids, N);
    bad |= h5_write_dataset(g, "correct", H5T_NATIVE_UINT8, 1, &N, correct, 1);
    bad |= write_strings(g, "extracted", ext, N);
    bad |= write_strings(g, "generated", gen, N);
    bad |= h5_write_dataset(g, "n_generated", H5T_NATIVE_INT32, 1, &N, ngen, 1);
    bad |= h5_write_dataset(g, "stop", H5T_NATIVE_INT32, 1, &N, stop, 1);
    bad |= h5_write_dataset(g, "peak_kv_bytes", H5T_NATIVE_INT64, 1, &N, peak, 1);
    bad |= h5_write_dataset(g, "mean_resident_tokens", H5T_NATIVE_DOUBLE, 1, &N, resident, 1);
    bad |= h5_write_dataset(g, "wall_s", H5T_NATIVE_DOUBLE, 1, &N, wall, 1);
    free(correct), free(ngen), free(stop), free(peak), free(resident), free(wall);
    free(ext), free(gen);
    H5Gclose(g);
    H5Gclose(rg);
    return bad;
}

rb_status eval_results_write(const char *path, const char *model_path, const task_set *tasks,
                             const char *config_json, const cell *cells, int n_cells,
                             eval_result *const *results, rb_err *e) {
    char tmp[4400];
    hid_t f;
    rb_status cs = h5_create(path, tmp, sizeof tmp, &f, e);
    if (cs) return cs;
    char created[64], host[256] = "unknown";
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    gethostname(host, sizeof host - 1);
    int bad = 0, n = tasks->n;
    bad |= h5_attr_write_str(f, "format", EVAL_FORMAT);
    bad |= h5_attr_write_i64(f, "format_version", EVAL_FORMAT_VERSION);
    bad |= h5_attr_write_str(f, "raasbench_version", rb_version);
    bad |= h5_attr_write_str(f, "git_commit", rb_git_commit);
    bad |= h5_attr_write_str(f, "compiler", rb_compiler);
    bad |= h5_attr_write_str(f, "created", created);
    bad |= h5_attr_write_str(f, "host", host);
    bad |= h5_attr_write_str(f, "model", model_path);
    bad |= h5_attr_write_str(f, "tasks", tasks->path ? tasks->path : "");
    bad |= h5_attr_write_str(f, "config", config_json ? config_json : "{}");
    /* the tasks: ids and exact answers, in the file's order */
    const char **ids = rb_malloc(sizeof(char *) * (size_t)(n ? n : 1));
    char (*gold)[48] = rb_malloc(sizeof *gold * (size_t)(n ? n : 1));
    const char **golds = rb_malloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int t = 0; t < n; t++) {
        ids[t] = tasks->t[t].id;
        answer_format(tasks->t[t].gold, gold[t], sizeof gold[t]);
        golds[t] = gold[t];
    }
    hid_t tg = H5Gcreate2(f, "tasks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= tg < 0 || write_strings(tg, "id", ids, (hsize_t)n) || write_strings(tg, "answer", golds, (hsize_t)n);
    if (tg >= 0) H5Gclose(tg);
    free(gold), free(golds);
    hid_t runs = H5Gcreate2(f, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= runs < 0;
    for (int c = 0; c < n_cells && !bad; c++) bad |= write_run(runs, &cells[c], results[c], ids, n);
    if (runs >= 0) H5Gclose(runs);
    free(ids);
    eval_summary *rows = rb_calloc((size_t)(n_cells ? n_cells : 1), sizeof *rows);
    eval_summarise(cells, n_cells, results, n, rows);
    hid_t st = summary_type();
    hsize_t nr = (hsize_t)n_cells;
    bad |= h5_write_dataset(f, "summary", st, 1, &nr, rows, 0);
    H5Tclose(st);
    free(rows);
    return h5_finish(f, tmp, path, bad ? output_write_error(e, path, "the eval results") : RB_OK,
                     e);
}

/* ------------------------------------------------------------------ parts */

rb_status eval_parts_claim(const char *dir, const char *identity, rb_err *e) {
    return output_claim_dir(dir, "identity.json", identity,
                            "holds the parts of a different evaluation (its identity.json "
                            "differs); remove it or choose another --out", e);
}

static void part_path(const char *dir, int ti, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/task-%06d.json", dir, ti);
}

rb_status eval_parts_put(const char *dir, int ti, const task *t, const cell *cells,
                         int n_cells, const eval_result *res, rb_err *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", t->id);
    cJSON *a = cJSON_AddArrayToObject(o, "cells");
    for (int c = 0; c < n_cells; c++) {
        const eval_result *r = &res[c];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "run_id", cells[c].run_id);
        cJSON_AddNumberToObject(x, "correct", r->correct);
        cJSON_AddNumberToObject(x, "answered", r->answered);
        cJSON_AddStringToObject(x, "extracted", r->extracted);
        cJSON_AddStringToObject(x, "generated", r->generated ? r->generated : "");
        cJSON_AddNumberToObject(x, "n_generated", r->n_generated);
        cJSON_AddNumberToObject(x, "stop", r->stop);
        cJSON_AddNumberToObject(x, "peak_kv_bytes", (double)r->peak_kv_bytes);
        rb_json_add_double(x, "mean_resident_tokens", r->mean_resident_tokens); /* exact */
        cJSON_AddNumberToObject(x, "wall_s", r->wall_s);
        cJSON_AddItemToArray(a, x);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char path[4200];
    part_path(dir, ti, path, sizeof path);
    rb_status st = output_write_text(path, text, e);
    cJSON_free(text);
    return st;
}

static double num(const cJSON *o, const char *k, int *bad) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x)) {
        *bad = 1;
        return 0;
    }
    return x->valuedouble;
}

int eval_parts_get(const char *dir, int ti, const task *t, const cell *cells, int n_cells,
                   eval_result *res, rb_err *e) {
    char path[4200];
    part_path(dir, ti, path, sizeof path);
    if (access(path, F_OK) != 0) return 0;
    char *text;
    if (rb_read_file(path, (size_t)64 << 20, &text, NULL, e)) return -1;
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *task_id = cJSON_GetObjectItemCaseSensitive(o, "task");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "cells");
    int bad = !o || !cJSON_IsString(task_id) || strcmp(task_id->valuestring, t->id) ||
              !cJSON_IsArray(a) || cJSON_GetArraySize(a) != n_cells;
    for (int c = 0; c < n_cells && !bad; c++) {
        const cJSON *x = cJSON_GetArrayItem(a, c);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(x, "run_id");
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(x, "extracted");
        const cJSON *gen = cJSON_GetObjectItemCaseSensitive(x, "generated");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, cells[c].run_id) ||
            !cJSON_IsString(ex) || !cJSON_IsString(gen)) {
            bad = 1;
            break;
        }
        eval_result *r = &res[c];
        memset(r, 0, sizeof *r);
        r->correct = (int)num(x, "correct", &bad);
        r->answered = (int)num(x, "answered", &bad);
        snprintf(r->extracted, sizeof r->extracted, "%s", ex->valuestring);
        r->generated = rb_strdup(gen->valuestring);
        r->n_generated = (int)num(x, "n_generated", &bad);
        r->stop = (int)num(x, "stop", &bad);
        r->peak_kv_bytes = (int64_t)num(x, "peak_kv_bytes", &bad);
        r->mean_resident_tokens = num(x, "mean_resident_tokens", &bad);
        r->wall_s = num(x, "wall_s", &bad);
    }
    cJSON_Delete(o);
    if (bad) {
        for (int c = 0; c < n_cells; c++) eval_result_free(&res[c]);
        /* a damaged part (a disk fault, an edit): redo the task rather than trust it */
        remove(path);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ reading */

static rb_status open_eval(const char *path, hid_t *f, rb_err *e) {
    h5_quiet();
    if (access(path, R_OK) != 0) return rb_fail(e, RB_EINPUT, path, "no such file");
    if (H5Fis_hdf5(path) <= 0) return rb_fail(e, RB_EINPUT, path, "not an HDF5 file");
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return rb_fail(e, RB_EINPUT, path, "cannot open (damaged file?)");
    char fmt[64] = "";
    int64_t ver = 0;
    if (h5_attr_read_str(*f, "format", fmt, sizeof fmt) || strcmp(fmt, EVAL_FORMAT) ||
        h5_attr_read_i64(*f, "format_version", &ver) || ver != EVAL_FORMAT_VERSION) {
        H5Fclose(*f);
        return rb_fail(e, RB_EINPUT, path, "not a raasbench eval file of format_version %d", EVAL_FORMAT_VERSION);
    }
    return RB_OK;
}

static rb_status read_summary(hid_t f, const char *path, eval_summary **rows, int *n, rb_err *e) {
    *rows = NULL, *n = 0;
    if (!h5_exists(f, "summary")) return rb_fail(e, RB_EINPUT, path, "no /summary");
    hid_t d;
    rb_status st0 = h5_dataset_open(f, "summary", &d, path, e); /* its extent checked */
    if (st0) return st0;
    hid_t sp = H5Dget_space(d);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    *rows = rb_calloc((size_t)(np > 0 ? np : 1), sizeof **rows);
    hid_t t = summary_type();
    rb_status st = RB_OK;
    if (np < 0 || (np && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) < 0))
        st = rb_fail(e, RB_EINPUT, path, "/summary cannot be read");
    else *n = (int)np;
    H5Tclose(t), H5Sclose(sp), H5Dclose(d);
    return st;
}

int eval_results_print_info(const char *path) {
    rb_err e = {0};
    hid_t f;
    if (open_eval(path, &f, &e)) return rb_err_print(&e);
    char buf[512];
    printf("eval results   %s\n", path);
    const char *keys[] = {"raasbench_version", "git_commit", "created", "host", "model", "tasks"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!h5_attr_read_str(f, keys[i], buf, sizeof buf)) printf("%-14s %s\n", keys[i], buf);
    eval_summary *rows;
    int n;
    if (read_summary(f, path, &rows, &n, &e)) {
        H5Fclose(f);
        return rb_err_print(&e);
    }
    H5Fclose(f);
    printf("runs           %d\n\n%-28s %-13s %7s %6s %9s %17s %9s %10s %9s\n", n, "run_id", "policy",
           "budget", "tasks", "accuracy", "wilson 95%", "retained", "resident", "gen_toks");
    for (int i = 0; i < n; i++) {
        const eval_summary *s = &rows[i];
        printf("%-28s %-13s %7d %6d %9.3f   [%5.3f, %5.3f] %9.3f %10.1f %9.1f\n", s->run_id,
               s->policy, s->budget, s->n_tasks, s->accuracy, s->wilson_lo, s->wilson_hi,
               s->retained, s->mean_resident_tokens, s->mean_generated);
    }
    free(rows);
    return 0;
}

static void put_str(FILE *o, const char *s) {
    for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, o);
}
static void put_f(FILE *o, double v) {
    if (isnan(v)) fputs("NaN", o);
    else fprintf(o, "%.9g", v);
}

/* A whole 1-D dataset of g in memory type mt (strings: vlen, reclaimed by the caller). */
static void *read_col(hid_t g, const char *name, hid_t mt, size_t elem, hsize_t n, int *bad) {
    hid_t d = H5Lexists(g, name, H5P_DEFAULT) > 0 ? H5Dopen2(g, name, H5P_DEFAULT) : -1;
    void *x = rb_calloc(n ? n : 1, elem);
    if (d < 0) {
        *bad = 1;
        return x;
    }
    hid_t sp = H5Dget_space(d);
    if (H5Sget_simple_extent_npoints(sp) != (hssize_t)n ||
        (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0))
        *bad = 1;
    H5Sclose(sp), H5Dclose(d);
    return x;
}

static rb_status export_tasks(hid_t f, const char *path, const eval_summary *rows, int n_rows,
                              const char *run, FILE *o, rb_err *e) {
    hid_t tg = H5Gopen2(f, "tasks", H5P_DEFAULT);
    if (tg < 0) return rb_fail(e, RB_EINPUT, path, "no /tasks");
    hid_t ds = H5Dopen2(tg, "id", H5P_DEFAULT), sp = H5Dget_space(ds);
    hsize_t n = (hsize_t)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp), H5Dclose(ds);
    hid_t vs = h5_type_vlen_str();
    int bad = 0;
    char **ids = read_col(tg, "id", vs, sizeof(char *), n, &bad);
    char **gold = read_col(tg, "answer", vs, sizeof(char *), n, &bad);
    fputs("run_id\tpolicy\tbudget\ttask\tcorrect\textracted\tanswer\tn_generated\tstop"
          "\tpeak_kv_bytes\tmean_resident_tokens\twall_s\n", o);
    int found = 0;
    for (int r = 0; r < n_rows && !bad; r++) {
        if (run && strcmp(rows[r].run_id, run)) continue;
        found = 1;
        char gp[200];
        snprintf(gp, sizeof gp, "runs/%s/tasks", rows[r].run_id);
        hid_t g = H5Gopen2(f, gp, H5P_DEFAULT);
        if (g < 0) {
            bad = 1;
            break;
        }
        uint8_t *ok = read_col(g, "correct", H5T_NATIVE_UINT8, 1, n, &bad);
        char **ext = read_col(g, "extracted", vs, sizeof(char *), n, &bad);
        int32_t *ngen = read_col(g, "n_generated", H5T_NATIVE_INT32, 4, n, &bad);
        int32_t *stop = read_col(g, "stop", H5T_NATIVE_INT32, 4, n, &bad);
        int64_t *peak = read_col(g, "peak_kv_bytes", H5T_NATIVE_INT64, 8, n, &bad);
        double *res = read_col(g, "mean_resident_tokens", H5T_NATIVE_DOUBLE, 8, n, &bad);
        double *wall = read_col(g, "wall_s", H5T_NATIVE_DOUBLE, 8, n, &bad);
        static const char *const stops[] = {"answer", "eos", "max", "stop"};
        for (hsize_t t = 0; t < n && !bad; t++) {
            put_str(o, rows[r].run_id);
            fputc('\t', o);
            put_str(o, rows[r].policy);
            fprintf(o, "\t%d\t", rows[r].budget);
            put_str(o, ids[t] ? ids[t] : "");
            fprintf(o, "\t%d\t", ok[t]);
            put_str(o, ext[t] ? ext[t] : "");
            fputc('\t', o);
            put_str(o, gold[t] ? gold[t] : "");
            fprintf(o, "\t%d\t%s\t%lld\t", ngen[t], stop[t] >= 0 && stop[t] < 4 ? stops[stop[t]] : "?",
                    (long long)peak[t]);
            put_f(o, res[t]);
            fputc('\t', o);
            put_f(o, wall[t]);
            fputc('\n', o);
        }
        if (n) {
            hid_t msp = H5Screate_simple(1, &n, NULL);
            H5Dvlen_reclaim(vs, msp, H5P_DEFAULT, ext);
            H5Sclose(msp);
        }
        free(ok), free(ext), free(ngen), free(stop), free(peak), free(res), free(wall);
        H5Gclose(g);
    }
    if (n) {
        hid_t msp = H5Screate_simple(1, &n, NULL);
        H5Dvlen_reclaim(vs, msp, H5P_DEFAULT, ids);
        H5Dvlen_reclaim(vs, msp, H5P_DEFAULT, gold);
        H5Sclose(msp);
    }
    free(ids), free(gold);
    H5Tclose(vs);
    H5Gclose(tg);
    if (bad) return rb_fail(e, RB_EINPUT, path, "a run's task columns are missing or malformed");
    if (run && !found) return rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    return RB_OK;
}

/* A run's correct and n_generated columns (n_tasks rows); 0 when both read. */
static int read_run_lengths(hid_t f, const char *run_id, hsize_t n, uint8_t **ok, int32_t **ngen) {
    char gp[200];
    snprintf(gp, sizeof gp, "runs/%s/tasks", run_id);
    hid_t g = H5Lexists(f, "runs", H5P_DEFAULT) > 0 ? H5Gopen2(f, gp, H5P_DEFAULT) : -1;
    int bad = g < 0;
    *ok = bad ? rb_calloc(n ? n : 1, 1) : read_col(g, "correct", H5T_NATIVE_UINT8, 1, n, &bad);
    *ngen = bad ? rb_calloc(n ? n : 1, 4) : read_col(g, "n_generated", H5T_NATIVE_INT32, 4, n, &bad);
    if (g >= 0) H5Gclose(g);
    return bad;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Accuracy by generated length (RQ3): the tasks are cut into n_bins bins of about equal
 * counts by the length the reference run (the first budget-free one; without one, each run
 * itself) generated, so every run is graded on the same tasks per bin whatever it generated
 * itself. */
static rb_status export_length(hid_t f, const char *path, const eval_summary *rows, int n_rows,
                               const char *run, int n_bins, FILE *o, rb_err *e) {
    if (!n_rows) return RB_OK;
    hsize_t n = (hsize_t)rows[0].n_tasks;
    int ref = -1;
    for (int r = 0; r < n_rows && ref < 0; r++) { /* as the summary's retained accuracy */
        const policy_ops *ops = policy_find(rows[r].policy, NULL);
        if (ops && (ops->flags & POLICY_BUDGET_FREE)) ref = r;
    }
    uint8_t *ref_ok = NULL;
    int32_t *ref_len = NULL, *sorted = rb_malloc(sizeof(int32_t) * (n ? n : 1));
    int bad = ref >= 0 && read_run_lengths(f, rows[ref].run_id, n, &ref_ok, &ref_len);
    fputs("run_id\tseries\tbudget\tbin\tlen_lo\tlen_hi\tn_tasks\tn_correct\taccuracy"
          "\twilson_lo\twilson_hi\tmean_generated\n", o);
    int found = 0;
    for (int r = 0; r < n_rows && !bad; r++) {
        if (run && strcmp(rows[r].run_id, run)) continue;
        found = 1;
        uint8_t *ok;
        int32_t *len;
        if ((bad = read_run_lengths(f, rows[r].run_id, n, &ok, &len))) {
            free(ok), free(len);
            break;
        }
        const int32_t *by = ref >= 0 ? ref_len : len;
        memcpy(sorted, by, sizeof(int32_t) * n);
        qsort(sorted, n, sizeof *sorted, cmp_i32);
        int32_t lo = n ? sorted[0] : 0;
        for (int b = 0; b < n_bins && n; b++) {
            /* bin b holds the lengths in [lo, hi]: hi is the length at the bin's count edge */
            size_t last = (size_t)(((double)(b + 1) * n) / n_bins);
            int32_t hi = sorted[(last ? last : 1) - 1];
            if (b == n_bins - 1) hi = sorted[n - 1];
            if (hi < lo) continue; /* ties put this bin's share into the one before */
            int cnt = 0, cor = 0;
            double gen = 0;
            for (hsize_t t = 0; t < n; t++)
                if (by[t] >= lo && by[t] <= hi) cnt++, cor += ok[t], gen += len[t];
            if (cnt) {
                double wl, wh;
                eval_wilson(cor, cnt, &wl, &wh);
                put_str(o, rows[r].run_id);
                fputc('\t', o);
                put_str(o, rows[r].policy);
                if (*rows[r].label) fputc('-', o), put_str(o, rows[r].label);
                fprintf(o, "\t%d\t%d\t%d\t%d\t%d\t%d\t", rows[r].budget, b, lo, hi, cnt, cor);
                const double v[] = {(double)cor / cnt, wl, wh};
                for (int k = 0; k < 3; k++) put_f(o, v[k]), fputc('\t', o);
                put_f(o, gen / cnt);
                fputc('\n', o);
            }
            lo = hi + 1;
        }
        free(ok), free(len);
    }
    free(ref_ok), free(ref_len), free(sorted);
    if (bad) return rb_fail(e, RB_EINPUT, path, "a run's task columns are missing or malformed");
    if (run && !found) return rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    return RB_OK;
}

rb_status eval_results_export(const char *path, const char *table, const char *run, FILE *o,
                              rb_err *e) {
    hid_t f;
    rb_status st = open_eval(path, &f, e);
    if (st) return st;
    eval_summary *rows;
    int n;
    if ((st = read_summary(f, path, &rows, &n, e))) {
        H5Fclose(f);
        return st;
    }
    if (!strcmp(table, "tasks")) {
        st = export_tasks(f, path, rows, n, run, o, e);
    } else if (!strcmp(table, "length")) {
        st = export_length(f, path, rows, n, run, 4, o, e);
    } else if (!strcmp(table, "summary")) {
        /* series: what a figure draws as one line (policy, or policy-label for a variant) */
        fputs("run_id\tpolicy\tlabel\tseries\tbudget\tn_tasks\tn_correct\taccuracy\twilson_lo"
              "\twilson_hi\tretained\tmean_resident_tokens\tpeak_kv_bytes\tmean_generated\n", o);
        int found = 0;
        for (int i = 0; i < n; i++) {
            const eval_summary *s = &rows[i];
            if (run && strcmp(s->run_id, run)) continue;
            found = 1;
            put_str(o, s->run_id);
            fputc('\t', o);
            put_str(o, s->policy);
            fputc('\t', o);
            put_str(o, s->label);
            fputc('\t', o);
            put_str(o, s->policy);
            if (*s->label) fputc('-', o), put_str(o, s->label);
            fprintf(o, "\t%d\t%d\t%d\t", s->budget, s->n_tasks, s->n_correct);
            const double v[] = {s->accuracy, s->wilson_lo, s->wilson_hi, s->retained,
                                s->mean_resident_tokens};
            for (int k = 0; k < 5; k++) put_f(o, v[k]), fputc('\t', o);
            fprintf(o, "%lld\t", (long long)s->peak_kv_bytes);
            put_f(o, s->mean_generated);
            fputc('\n', o);
        }
        if (run && !found) st = rb_fail(e, RB_EINPUT, run, "no such run in %s", path);
    } else {
        st = rb_fail(e, RB_EINPUT, "--table", "an eval file has tables summary, tasks and length, not '%s'",
                     table);
    }
    free(rows);
    H5Fclose(f);
    return st;
}
