/* results_schema.c: the rows of the results format (see results_schema.h) and its markdown. */
#include "results_schema.h"

#include <string.h>

#define ROOT(field, ty, flg, mean)                                                            \
    {.name = #field, .type = ty, .flags = flg, .unit = "", .meaning = mean,                  \
     .offset = offsetof(results_header, field), .size = sizeof(((results_header *)0)->field)}

static const results_column root_columns[] = {
    ROOT(format, RESULTS_STR, 0, "`" RESULTS_FORMAT "`"),
    ROOT(format_version, RESULTS_INT, 0, "1, the version this document describes"),
    ROOT(raasbench_version, RESULTS_STR, RESULTS_F_INFO,
         "version of the raasbench that wrote the file"),
    ROOT(git_commit, RESULTS_STR, RESULTS_F_INFO,
         "its git commit (`-dirty`: with uncommitted changes)"),
    ROOT(compiler, RESULTS_STR, 0, "the compiler that built it"),
    ROOT(libraries, RESULTS_STR, 0, "versions of the libraries it used (`hdf5 X.Y.Z`)"),
    ROOT(created, RESULTS_STR, RESULTS_F_INFO, "when the file was written (ISO 8601, UTC)"),
    ROOT(host, RESULTS_STR, RESULTS_F_INFO, "name of the machine that wrote it"),
    ROOT(trace, RESULTS_STR, RESULTS_F_INFO,
         "path of the (first) trace replayed; of the trace a decode recorded, else empty"),
    ROOT(trace_sha256, RESULTS_STR, RESULTS_F_INFO,
         "SHA-256 of that trace, hex; empty for a decode and a sweep over several traces"),
    {.name = "config", .type = RESULTS_STR_HEAP, .unit = "", .dflt = "{}",
     .meaning = "the resolved configuration of the command (JSON)",
     .offset = offsetof(results_header, config)},
};

#define RUN(field, ty, shp, wh, flg, un, mean)                                                \
    {.name = #field, .type = ty, .shape = shp, .when = wh, .flags = flg, .unit = un,          \
     .meaning = mean, .offset = offsetof(results_run, field),                                  \
     .size = sizeof(((results_run *)0)->field)}

static const results_column run_attr_columns[] = {
    RUN(run_id, RESULTS_STR, RESULTS_SCALAR, RESULTS_ALWAYS,
        RESULTS_F_GROUP_NAME | RESULTS_F_STEPS, "",
        "the name of the run's group (not an attribute): `<policy>[-<label>]_L<budget>`, "
        "with `@<trace-stem>` appended in sweeps over several traces"),
    RUN(policy, RESULTS_STR, RESULTS_SCALAR, RESULTS_ALWAYS, RESULTS_F_STEPS, "",
        "the policy's registered name"),
    RUN(budget, RESULTS_INT, RESULTS_SCALAR, RESULTS_ALWAYS, RESULTS_F_STEPS, "tokens",
        "cache budget per KV head"),
    {.name = "params", .type = RESULTS_STR_HEAP, .when = RESULTS_OPTIONAL, .unit = "",
     .meaning = "the policy's resolved parameters (JSON)",
     .offset = offsetof(results_run, params_json), .dflt = "{}"},
    RUN(page_size, RESULTS_INT, RESULTS_SCALAR, RESULTS_ALWAYS, 0, "tokens", "tokens per KV page"),
    RUN(dense_layers, RESULTS_INT, RESULTS_SCALAR, RESULTS_ALWAYS, 0, "layers",
        "leading layers kept dense"),
    {.name = "latency_every", .type = RESULTS_INT, .when = RESULTS_OPTIONAL, .unit = "steps",
     .meaning = "`latency_ns` was measured every this many steps",
     .offset = offsetof(results_run, latency_every), .dflt = "1"},
    {.name = "trace", .type = RESULTS_STR, .when = RESULTS_OPTIONAL, .unit = "",
     .meaning = "the trace replayed, or the recorded trace or model of a decode",
     .offset = offsetof(results_run, trace), .size = sizeof(((results_run *)0)->trace),
     .dflt = ""},
    RUN(layers, RESULTS_I32, RESULTS_SHAPE_L, RESULTS_ALWAYS, 0, "",
        "model layer of each column of the `[.., n_layers]` datasets"),
    {.name = "sparse_layers", .type = RESULTS_I32, .shape = RESULTS_SHAPE_L, .unit = "",
     .meaning = "1 where the policy acts (not a dense layer, not a sliding-window layer): the "
                "layers that means over layers count",
     .offset = offsetof(results_run, sparse)},
};

/* Order: the steps table's. */
static const results_column series_columns[] = {
    RUN(step, RESULTS_I32, RESULTS_SHAPE_T, RESULTS_ALWAYS, RESULTS_F_STEPS, "position",
        "decode position of the step"),
    RUN(recall, RESULTS_F32, RESULTS_SHAPE_T_L, RESULTS_ALWAYS, RESULTS_F_STEPS, "",
        "attention mass kept (dense attention probability of the attended tokens), mean over "
        "query heads"),
    RUN(out_err, RESULTS_F32, RESULTS_SHAPE_T_L, RESULTS_ALWAYS, RESULTS_F_STEPS, "",
        "‖o_S − o*‖ / ‖o*‖, mean over query heads"),
    RUN(attended, RESULTS_F32, RESULTS_SHAPE_T_L, RESULTS_ALWAYS, RESULTS_F_STEPS, "tokens",
        "mean |S| over query heads"),
    RUN(recall_head, RESULTS_F32, RESULTS_SHAPE_T_L_H, RESULTS_PER_HEAD, 0, "",
        "`recall` of each query head"),
    RUN(out_err_head, RESULTS_F32, RESULTS_SHAPE_T_L_H, RESULTS_PER_HEAD, 0, "",
        "`out_err` of each query head"),
    RUN(latency_ns, RESULTS_I64, RESULTS_SHAPE_T, RESULTS_ALWAYS,
        RESULTS_F_STEPS | RESULTS_F_UNMEASURED, "ns",
        "wall time of the policy's step over all layers: append + select + attention over S + "
        "observe; −1 on steps not timed (`latency_every` > 1: those steps took their metrics "
        "from the shared dense reference). Replay runs each cell over chunks of up to 32 "
        "consecutive steps, so a step finds the cell's own pools as its previous step left "
        "them (in cache when they fit); the first step of a chunk follows other cells' steps"),
    RUN(kv_bytes, RESULTS_I64, RESULTS_SHAPE_T, RESULTS_ALWAYS, RESULTS_F_STEPS, "bytes",
        "resident K and V, all layers and KV heads, whole pages, at `elem_bytes` per element "
        "(2)"),
    RUN(meta_bytes, RESULTS_I64, RESULTS_SHAPE_T, RESULTS_ALWAYS, RESULTS_F_STEPS, "bytes",
        "the policy's own bookkeeping"),
    RUN(token_match, RESULTS_F32, RESULTS_SHAPE_T, RESULTS_LIVE, RESULTS_F_STEPS, "",
        "1 where the cell's greedy token equals the dense one (`decode --teacher-forced`)"),
    RUN(kl, RESULTS_F32, RESULTS_SHAPE_T, RESULTS_LIVE, RESULTS_F_STEPS, "nats",
        "KL(dense ‖ cell) of the next-token distributions (`decode --teacher-forced`)"),
    RUN(token_latency_ns, RESULTS_I64, RESULTS_SHAPE_T, RESULTS_LIVE, RESULTS_F_STEPS, "ns",
        "wall time of the whole token"),
    RUN(selection, RESULTS_U8, RESULTS_SHAPE_LAYERS_T_H_N, RESULTS_SELECTION, 0, "",
        "1 where the query head attended the token; one dataset per stored layer, NNN its "
        "model layer (`layers`)"),
};

#define SUM(field, ty, red, src, ihead, iwidth, iconv, idiv)                                  \
    {.name = #field, .type = ty, .offset = offsetof(results_summary, field),                  \
     .size = sizeof(((results_summary *)0)->field), .reduce = red, .source = src,             \
     .flags = (iwidth) ? RESULTS_F_INFO : 0, .info_head = ihead, .info_width = iwidth,        \
     .info_conv = iconv, .info_div = idiv}

static const results_column summary_columns[] = {
    SUM(run_id, RESULTS_STR, RESULTS_COPY, "run_id", "run_id", -28, "%s", 0),
    SUM(trace, RESULTS_STR, RESULTS_COPY, "trace", NULL, 0, NULL, 0),
    SUM(policy, RESULTS_STR, RESULTS_COPY, "policy", "policy", -13, "%s", 0),
    SUM(budget, RESULTS_I32, RESULTS_COPY, "budget", "budget", 7, "%d", 0),
    SUM(mean_recall, RESULTS_F64, RESULTS_MEAN_SPARSE, "recall", "recall", 9, "%.4f", 0),
    SUM(mean_out_err, RESULTS_F64, RESULTS_MEAN_SPARSE, "out_err", "out_err", 10, "%.4g", 0),
    SUM(mean_attended, RESULTS_F64, RESULTS_MEAN_SPARSE, "attended", "attended", 9, "%.1f", 0),
    SUM(p50_latency_ns, RESULTS_I64, RESULTS_P50, "latency_ns", "p50_lat_us", 11, "%.1f", 1e3),
    SUM(p99_latency_ns, RESULTS_I64, RESULTS_P99, "latency_ns", "p99_lat_us", 11, "%.1f", 1e3),
    SUM(peak_kv_bytes, RESULTS_I64, RESULTS_PEAK, "kv_bytes", "peak_kv_KiB", 11, "%.1f", 1024),
    SUM(final_kv_bytes, RESULTS_I64, RESULTS_FINAL, "kv_bytes", NULL, 0, NULL, 0),
    SUM(peak_meta_bytes, RESULTS_I64, RESULTS_PEAK, "meta_bytes", NULL, 0, NULL, 0),
    SUM(mean_token_match, RESULTS_F64, RESULTS_MEAN, "token_match", NULL, 0, NULL, 0),
    SUM(mean_kl, RESULTS_F64, RESULTS_MEAN, "kl", NULL, 0, NULL, 0),
};

#define N_OF(a) ((int)(sizeof a / sizeof a[0]))

const results_column *results_columns(results_place p, int *n) {
    switch (p) {
    case RESULTS_ROOT: *n = N_OF(root_columns); return root_columns;
    case RESULTS_RUN_ATTR: *n = N_OF(run_attr_columns); return run_attr_columns;
    case RESULTS_SERIES: *n = N_OF(series_columns); return series_columns;
    case RESULTS_SUMMARY: *n = N_OF(summary_columns); return summary_columns;
    default: *n = 0; return NULL;
    }
}

const results_column *results_column_find(results_place p, const char *name) {
    int n;
    const results_column *c = results_columns(p, &n);
    for (int i = 0; i < n; i++)
        if (!strcmp(c[i].name, name)) return &c[i];
    return NULL;
}

size_t results_type_size(results_type t) {
    switch (t) {
    case RESULTS_INT: return sizeof(int);
    case RESULTS_I32: return sizeof(int32_t);
    case RESULTS_I64: return sizeof(int64_t);
    case RESULTS_F32: return sizeof(float);
    case RESULTS_F64: return sizeof(double);
    case RESULTS_U8: return 1;
    default: return sizeof(char *);
    }
}

size_t results_shape_elems(results_shape s, int T, int n_layers, int n_q_heads, int n_tokens) {
    switch (s) {
    case RESULTS_SHAPE_T: return (size_t)T;
    case RESULTS_SHAPE_T_L: return (size_t)T * n_layers;
    case RESULTS_SHAPE_T_L_H: return (size_t)T * n_layers * n_q_heads;
    case RESULTS_SHAPE_L: return (size_t)n_layers;
    case RESULTS_SHAPE_LAYERS_T_H_N: return (size_t)T * n_q_heads * n_tokens;
    default: return 1;
    }
}

/* Pointer fields are typed (float *, int64_t *, char *, ...) and of one representation;
 * they are copied as bytes rather than read through a void * lvalue. */
void *results_field_ptr(const void *rec, const results_column *c) {
    void *x;
    memcpy(&x, (const char *)rec + c->offset, sizeof x);
    return x;
}

void results_field_set_ptr(void *rec, const results_column *c, void *x) {
    memcpy((char *)rec + c->offset, &x, sizeof x);
}

void results_column_info(const results_column *c, const results_summary *s, char *buf,
                         size_t cap) {
    const void *p = results_field(s, c);
    double v;
    switch (c->type) {
    case RESULTS_STR: snprintf(buf, cap, c->info_conv, (const char *)p); return;
    case RESULTS_I32:
        if (!c->info_div) {
            snprintf(buf, cap, c->info_conv, *(const int32_t *)p);
            return;
        }
        v = *(const int32_t *)p;
        break;
    case RESULTS_I64:
        if (!c->info_div) {
            snprintf(buf, cap, c->info_conv, (long long)*(const int64_t *)p);
            return;
        }
        v = (double)*(const int64_t *)p;
        break;
    default: v = *(const double *)p; break;
    }
    snprintf(buf, cap, c->info_conv, c->info_div ? v / c->info_div : v);
}

/* ------------------------------------------------------------------ markdown */

/* Markdown table cell text: '|' escaped. */
static void md(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

static const char *type_name(results_type t) {
    static const char *const names[] = {"int64", "int32", "int64", "float32", "float64",
                                        "uint8", "string", "string"};
    return names[t];
}

static const char *shape_name(results_shape s) {
    static const char *const names[] = {"scalar", "[T]", "[T, n_layers]",
                                        "[T, n_layers, n_q_heads]", "[n_layers]",
                                        "[T, n_q_heads, n_tokens] each"};
    return names[s];
}

static void when_text(FILE *f, const results_column *c) {
    switch (c->when) {
    case RESULTS_ALWAYS: fputs("always", f); break;
    case RESULTS_OPTIONAL:
        if (*c->dflt) fprintf(f, "optional (absent: `%s`)", c->dflt);
        else fputs("optional (absent: empty)", f);
        break;
    case RESULTS_PER_HEAD: fputs("`replay --per-head`", f); break;
    case RESULTS_LIVE: fputs("live decode (`decode --out`)", f); break;
    case RESULTS_SELECTION: fputs("`replay --dump-selection`", f); break;
    }
}

static void name_cell(FILE *f, const results_column *c) {
    fprintf(f, "| `%s%s` | ", c->name, c->shape == RESULTS_SHAPE_LAYERS_T_H_N ? "/layer_NNN" : "");
}

static void reduce_text(FILE *f, const results_column *c) {
    const char *s = c->source;
    switch (c->reduce) {
    case RESULTS_COPY: fprintf(f, "the run's `%s`", s); break;
    case RESULTS_MEAN_SPARSE:
        fprintf(f, "mean of `%s` over the steps and the sparse layers; NaN when no layer is "
                   "sparse", s);
        break;
    case RESULTS_MEAN:
        fprintf(f, "mean of `%s` over the steps; NaN when the run has none", s);
        break;
    case RESULTS_P50:
    case RESULTS_P99:
        fprintf(f, "%s of `%s` over the steps measured (nearest rank); −1 when none was",
                c->reduce == RESULTS_P50 ? "median" : "99th percentile", s);
        break;
    case RESULTS_PEAK: fprintf(f, "largest `%s` of a step (0 without steps)", s); break;
    case RESULTS_FINAL: fprintf(f, "`%s` of the last step (0 without steps)", s); break;
    }
}

/* The rows of the attribute and dataset tables; the root's have no shape, unit or when. */
static void md_rows(FILE *f, results_place p) {
    int n;
    const results_column *c = results_columns(p, &n);
    for (int i = 0; i < n; i++) {
        name_cell(f, &c[i]);
        fprintf(f, "%s | ", type_name(c[i].type));
        if (p != RESULTS_ROOT) {
            fprintf(f, "%s | %s | ", shape_name(c[i].shape), c[i].unit);
            when_text(f, &c[i]);
            fputs(" | ", f);
        }
        md(f, c[i].meaning);
        fputs(" |\n", f);
    }
}

void results_schema_markdown(FILE *f) {
    fputs("### Attributes of the root, `/`\n\n| attribute | type | meaning |\n|---|---|---|\n", f);
    md_rows(f, RESULTS_ROOT);
    fputs("\n### Attributes of each run, `/runs/<run_id>`\n\n"
          "| attribute | type | shape | unit | present | meaning |\n"
          "|---|---|---|---|---|---|\n", f);
    md_rows(f, RESULTS_RUN_ATTR);
    fputs("\n### Datasets of each run, `/runs/<run_id>/...`\n\n"
          "| dataset | type | shape | unit | present | meaning |\n"
          "|---|---|---|---|---|---|\n", f);
    md_rows(f, RESULTS_SERIES);
    int n;
    const results_column *c = results_columns(RESULTS_SUMMARY, &n);
    fputs("\n### `/summary`: a compound dataset `[n_runs]`, one row per run in the order "
          "written\n\n| column | type | unit | value |\n|---|---|---|---|\n", f);
    for (int i = 0; i < n; i++) {
        const results_column *src = results_column_find(RESULTS_RUN_ATTR, c[i].source);
        if (!src) src = results_column_find(RESULTS_SERIES, c[i].source);
        name_cell(f, &c[i]);
        if (c[i].type == RESULTS_STR) fprintf(f, "string (%zu bytes) | ", c[i].size);
        else fprintf(f, "%s | ", type_name(c[i].type));
        fprintf(f, "%s | ", src ? src->unit : "");
        reduce_text(f, &c[i]);
        fputs(" |\n", f);
    }
    fputs("\n### `raasbench export --table steps`\n\nColumns:", f);
    for (int p = RESULTS_RUN_ATTR, k = 0; p <= RESULTS_SERIES; p++) {
        c = results_columns((results_place)p, &n);
        for (int i = 0; i < n; i++)
            if (c[i].flags & RESULTS_F_STEPS) fprintf(f, "%s `%s`", k++ ? "," : "", c[i].name);
    }
    fputs(". A `[T, n_layers]` dataset becomes its mean over the sparse layers (values that "
          "are NaN skipped); a step not measured (−1) is NaN. Columns that are not always "
          "present appear when any run exported has one, NaN in the runs without it.\n", f);
}
