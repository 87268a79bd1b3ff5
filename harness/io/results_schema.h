/* results_schema.h: the results file format, described once (DESIGN §5).
 *
 * Every attribute, dataset and /summary column of a results file is one row of a table in
 * results_schema.c. The writer and the reader (results.c), results_summarise, `raasbench
 * export` (the columns of its summary and steps tables), `raasbench info` and the tables
 * of results/FORMAT.md (`raasbench export --schema`) all iterate these rows. A new per-step
 * metric is therefore
 *   1. a field of results_run (results.h),
 *   2. a row of the series table (results_schema.c),
 *   3. its computation where it is measured,
 * then `raasbench export --schema` pasted into results/FORMAT.md (tests/e2e_results_schema.sh
 * fails until it is). Its summary, if it has one, is a field of results_summary and a row
 * of the summary table naming the series and the reduction. */
#ifndef RESULTS_SCHEMA_H
#define RESULTS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "results.h"

/* The four tables, one per place in the file. */
typedef enum results_place {
    RESULTS_ROOT,     /* attributes of /: fields of results_header */
    RESULTS_RUN_ATTR, /* attributes of /runs/<run_id>: fields of results_run */
    RESULTS_SERIES,   /* datasets of /runs/<run_id>: array fields of results_run */
    RESULTS_SUMMARY,  /* members of the /summary compound: fields of results_summary */
    RESULTS_N_PLACES
} results_place;

/* Element type: the C type of the field, and the type in the file. */
typedef enum results_type {
    RESULTS_INT,      /* int; an int64 attribute */
    RESULTS_I32,      /* int32_t; int32 */
    RESULTS_I64,      /* int64_t; int64 */
    RESULTS_F32,      /* float; float32 */
    RESULTS_F64,      /* double; float64 */
    RESULTS_U8,       /* uint8_t; uint8 */
    RESULTS_STR,      /* char[size]: an attribute is a variable-length UTF-8 string, a
                         /summary member a NUL-terminated string of `size` bytes */
    RESULTS_STR_HEAP, /* char * (owned by its struct): a variable-length UTF-8 string */
} results_type;

/* Shape, in the symbols T (decode steps of the run), n_layers (stored layers), n_q_heads
 * and n_tokens (trace positions). Array fields hold their elements row-major. */
typedef enum results_shape {
    RESULTS_SCALAR,
    RESULTS_SHAPE_T,      /* [T] */
    RESULTS_SHAPE_T_L,    /* [T, n_layers] */
    RESULTS_SHAPE_T_L_H,  /* [T, n_layers, n_q_heads] */
    RESULTS_SHAPE_L,      /* [n_layers] */
    RESULTS_SHAPE_LAYERS_T_H_N, /* a group of n_layers datasets layer_NNN (NNN: the model layer,
                                   three digits), each [T, n_q_heads, n_tokens]; the field is
                                   an array of n_layers arrays */
} results_shape;

/* When a column is in a file. The reader refuses a run without an ALWAYS column. */
typedef enum results_when {
    RESULTS_ALWAYS,
    RESULTS_OPTIONAL,  /* read as `dflt` when absent */
    RESULTS_PER_HEAD,  /* replay --per-head */
    RESULTS_LIVE,      /* live decode (decode --out) */
    RESULTS_SELECTION, /* replay --dump-selection */
} results_when;
#define RESULTS_SKIP(when) (1u << (when)) /* for results_reader_run's skip */

/* How a /summary column is computed from its run's `source` (results_summarise). */
typedef enum results_reduce {
    RESULTS_COPY,        /* the run attribute `source` */
    RESULTS_MEAN_SPARSE, /* float [T, n_layers] -> mean over the steps and the sparse layers
                            (double sum in step, layer order); NaN without sparse layers */
    RESULTS_MEAN,        /* float [T] -> mean over the steps; NaN when absent or T = 0 */
    RESULTS_P50,         /* int64 [T] -> nearest-rank percentile over the steps measured; */
    RESULTS_P99,         /*   -1 when none was */
    RESULTS_PEAK,        /* int64 [T] -> the largest value, 0 when T = 0 */
    RESULTS_FINAL,       /* int64 [T] -> the value of the last step, 0 when T = 0 */
} results_reduce;

/* flags */
#define RESULTS_F_STEPS 1u      /* a column of `export --table steps` (run attributes as they
                                   are, series [T] as stored, [T, n_layers] as the mean over
                                   the sparse layers of the values that are not NaN) */
#define RESULTS_F_INFO 2u       /* printed by `raasbench info` */
#define RESULTS_F_UNMEASURED 4u /* -1 marks a step not measured: percentiles skip it, the
                                   steps table shows NaN */
#define RESULTS_F_GROUP_NAME 8u /* run attribute that is the name of the run's group */

typedef struct results_column {
    const char *name;
    results_type type;
    results_shape shape;
    results_when when;
    unsigned flags;
    const char *unit;    /* "" when none */
    const char *meaning; /* one line, markdown */
    size_t offset;       /* of the field in results_header, results_run or results_summary */
    size_t size;         /* RESULTS_STR: bytes of the field */
    const char *dflt;    /* RESULTS_OPTIONAL: the value when absent (integers in decimal);
                            RESULTS_STR_HEAP: also the value written for NULL */
    /* summary columns */
    results_reduce reduce;
    const char *source;  /* the run attribute or series it is computed from */
    /* `raasbench info` (RESULTS_F_INFO summary columns): the header, its field width
     * (negative: left-aligned) and the printf conversion of the value, divided by div
     * first when div != 0 */
    const char *info_head;
    int info_width;
    const char *info_conv;
    double info_div;
} results_column;

/* The rows of one place, in file order; *n receives their number (at most 64). */
const results_column *results_columns(results_place p, int *n);
/* The row named `name` of place p, or NULL. */
const results_column *results_column_find(results_place p, const char *name);

/* Bytes of one element of a type (RESULTS_STR: of the whole field, c->size). */
size_t results_type_size(results_type t);
/* Elements of one array of shape s (of one layer's array for RESULTS_SHAPE_LAYERS_T_H_N). */
size_t results_shape_elems(results_shape s, int T, int n_layers, int n_q_heads, int n_tokens);

/* The field of column c in struct `rec` (results_header, results_run or results_summary). */
static inline void *results_field(const void *rec, const results_column *c) {
    return (char *)rec + c->offset;
}
/* The pointer held by a pointer field of rec: an array column of a run (a series, or an
 * [n_layers] attribute; NULL when the run has none) or a RESULTS_STR_HEAP string. */
void *results_field_ptr(const void *rec, const results_column *c);
void results_field_set_ptr(void *rec, const results_column *c, void *x);

/* The value of summary column c of row s as `raasbench info` prints it (without width). */
void results_column_info(const results_column *c, const results_summary *s, char *buf,
                         size_t cap);

/* The schema as the markdown of results/FORMAT.md (`raasbench export --schema`). */
void results_schema_markdown(FILE *f);

#endif
