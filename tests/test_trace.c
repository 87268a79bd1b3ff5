/* test_trace.c: trace round trips (bit-exact fp32, bounded fp16 rounding), incremental
 * appends, token-range reads, the temporary-then-rename discipline, and the reader's
 * refusal of NaN found as it reads. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"
#include "testutil.h"
#include "trace.h"

static trace_meta small_meta(trace_dtype dt) {
    trace_meta m = {0};
    snprintf(m.source, sizeof m.source, "test");
    snprintf(m.model, sizeof m.model, "random");
    m.n_layers = 3;
    m.n_q_heads = 4;
    m.n_kv_heads = 2;
    m.head_dim = 8;
    m.n_prefill = 5;
    m.attn_scale = 1.0f / sqrtf(8.0f);
    m.dtype = dt;
    m.n_stored = 2; /* a subset: layers 0 and 2 */
    m.layers[0] = 0;
    m.layers[1] = 2;
    m.sliding_window[1] = 4;
    return m;
}

static void fill(float *x, size_t n, uint64_t *seed) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(tu_randn(seed) * 3.0);
}

static void round_trip(trace_dtype dt, const char *dir) {
    trace_meta m = small_meta(dt);
    int T = 37;
    size_t nq = (size_t)T * m.n_q_heads * m.head_dim, nk = (size_t)T * m.n_kv_heads * m.head_dim;
    float *q[2], *k[2], *v[2];
    uint64_t seed = 42;
    for (int s = 0; s < 2; s++) {
        q[s] = rb_malloc(nq * 4), k[s] = rb_malloc(nk * 4), v[s] = rb_malloc(nk * 4);
        fill(q[s], nq, &seed), fill(k[s], nk, &seed), fill(v[s], nk, &seed);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/rt_%d.h5", dir, (int)dt);
    rb_err e = {0};
    trace_writer *w;
    TU_OK(trace_writer_create(path, &m, &w, &e), e);
    /* Appends as a live decode makes them: the prompt in one go, then one token at a time,
     * layers interleaved. */
    for (int s = 0; s < 2; s++)
        TU_OK(trace_writer_append(w, s, m.n_prefill, q[s], k[s], v[s], &e), e);
    TU_ASSERT(access(path, F_OK) != 0, "final name must not exist before finish");
    for (int t = m.n_prefill; t < T; t++)
        for (int s = 0; s < 2; s++)
            TU_OK(trace_writer_append(w, s, 1, q[s] + (size_t)t * m.n_q_heads * m.head_dim,
                                      k[s] + (size_t)t * m.n_kv_heads * m.head_dim,
                                      v[s] + (size_t)t * m.n_kv_heads * m.head_dim, &e), e);
    int32_t tokens[37];
    for (int i = 0; i < T; i++) tokens[i] = 1000 + i;
    TU_OK(trace_writer_set_tokens(w, tokens, T, &e), e);
    TU_OK(trace_writer_set_text(w, "héllo wörld ✓", &e), e);
    int32_t ms[6] = {10, 11, 20, 12, 13, 30};
    TU_OK(trace_writer_set_truth(w, "milestones", ms, 2, &e), e);
    TU_OK(trace_writer_finish(w, &e), e);

    trace *t;
    TU_OK(trace_open(path, &t, &e), e);
    const trace_meta *r = trace_get_meta(t);
    TU_ASSERT(r->n_tokens == T && r->n_prefill == 5 && r->n_stored == 2 && r->layers[1] == 2,
              "meta read back: n_tokens %d n_stored %d", r->n_tokens, r->n_stored);
    TU_ASSERT(r->sliding_window[0] == 0 && r->sliding_window[1] == 4, "sliding windows");
    TU_ASSERT(r->dtype == dt && fabsf(r->attn_scale - m.attn_scale) < 1e-7f, "dtype, scale");
    /* Read a middle range of every tensor. fp32 must be bit-exact; fp16 within half an ulp
     * of binary16: relative 2^-11 for normal values (|x| >= 2^-14), absolute 2^-25 below. */
    int p0 = 3, n = 20;
    float *buf = rb_malloc(nq * 4);
    for (int s = 0; s < 2; s++)
        for (int which = 0; which < 3; which++) {
            TU_OK(trace_read(t, s, (trace_tensor)which, p0, n, buf, &e), e);
            int heads = which == 0 ? m.n_q_heads : m.n_kv_heads;
            const float *src = (which == 0 ? q : which == 1 ? k : v)[s] +
                               (size_t)p0 * heads * m.head_dim;
            for (size_t i = 0; i < (size_t)n * heads * m.head_dim; i++) {
                if (dt == TRACE_F32) {
                    TU_ASSERT(memcmp(&buf[i], &src[i], 4) == 0, "fp32 not bit-exact at %zu", i);
                } else {
                    double tol = fabs(src[i]) >= 6.1e-5 ? fabs(src[i]) * 0x1p-11 : 0x1p-25;
                    TU_ASSERT(fabs(buf[i] - src[i]) <= tol, "fp16 error %g > %g",
                              fabs(buf[i] - src[i]), tol);
                }
            }
        }
    int32_t tk[37];
    int present;
    TU_OK(trace_read_tokens(t, tk, &present, &e), e);
    TU_ASSERT(present && tk[36] == 1036, "tokens");
    char *text;
    TU_OK(trace_read_text(t, &text, &e), e);
    TU_ASSERT(text && !strcmp(text, "héllo wörld ✓"), "text round trip");
    free(text);
    int32_t *rows;
    int nr;
    TU_OK(trace_read_truth(t, "milestones", &rows, &nr, &e), e);
    TU_ASSERT(nr == 2 && rows[3] == 12 && rows[5] == 30, "truth");
    free(rows);
    TU_OK(trace_read_truth(t, "phoenix", &rows, &nr, &e), e);
    TU_ASSERT(nr == 0 && rows == NULL, "absent truth is empty, not an error");
    trace_close(t);
    free(buf);
    for (int s = 0; s < 2; s++) free(q[s]), free(k[s]), free(v[s]);
}

static void nan_found_as_read(const char *dir) {
    trace_meta m = small_meta(TRACE_F32);
    int T = 8;
    size_t nq = (size_t)T * m.n_q_heads * m.head_dim, nk = (size_t)T * m.n_kv_heads * m.head_dim;
    float *q = rb_calloc(nq, 4), *k = rb_calloc(nk, 4), *v = rb_calloc(nk, 4);
    uint64_t seed = 1;
    fill(q, nq, &seed), fill(k, nk, &seed), fill(v, nk, &seed);
    char path[512];
    snprintf(path, sizeof path, "%s/nan.h5", dir);
    rb_err e = {0};
    trace_writer *w;
    TU_OK(trace_writer_create(path, &m, &w, &e), e);
    /* The writer itself refuses NaN ... */
    float bad = q[3];
    q[3] = NAN;
    TU_ASSERT(trace_writer_append(w, 0, T, q, k, v, &e) == RB_EINPUT, "writer must refuse NaN");
    q[3] = bad;
    trace_writer_abort(w);
    TU_ASSERT(access(path, F_OK) != 0, "aborted writer leaves no file");
    char tmp[600];
    h5_tmp_path(path, tmp, sizeof tmp);
    TU_ASSERT(access(tmp, F_OK) != 0, "aborted writer leaves no temporary file");
    TU_OK(trace_writer_create(path, &m, &w, &e), e);
    for (int s = 0; s < 2; s++) TU_OK(trace_writer_append(w, s, T, q, k, v, &e), e);
    TU_OK(trace_writer_finish(w, &e), e);
    /* ... so poke an Inf into layer 2's v at position 6, head 1 behind its back. */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "layer_002/v", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t start[3] = {6, 1, 5}, cnt[3] = {1, 1, 1};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    hid_t msp = H5Screate_simple(3, cnt, NULL);
    float inf = INFINITY;
    TU_ASSERT(H5Dwrite(d, H5T_NATIVE_FLOAT, msp, fs, H5P_DEFAULT, &inf) >= 0, "poke");
    H5Sclose(msp), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
    trace *t;
    TU_OK(trace_open(path, &t, &e), e);
    float *buf = rb_malloc(nk * 4);
    TU_OK(trace_read(t, 1, TRACE_V, 0, 6, buf, &e), e); /* before the bad token: fine */
    rb_status s = trace_read(t, 1, TRACE_V, 2, 6, buf, &e);
    TU_ASSERT(s == RB_EINPUT, "Inf must be refused");
    TU_ASSERT(strstr(e.why, "Inf") && strstr(e.why, "layer_002/v") && strstr(e.why, "position 6") &&
                  strstr(e.why, "head 1"),
              "message names value, layer, position and head: %s", e.why);
    trace_close(t);
    free(buf), free(q), free(k), free(v);
}

static void writer_refuses_incomplete(const char *dir) {
    trace_meta m = small_meta(TRACE_F32);
    char path[512];
    snprintf(path, sizeof path, "%s/incomplete.h5", dir);
    float z[4 * 8 * 8] = {0};
    rb_err e = {0};
    trace_writer *w;
    TU_OK(trace_writer_create(path, &m, &w, &e), e);
    TU_OK(trace_writer_append(w, 0, 6, z, z, z, &e), e);
    TU_OK(trace_writer_append(w, 1, 5, z, z, z, &e), e);
    TU_ASSERT(trace_writer_finish(w, &e) == RB_EINPUT, "layers of unequal length refused");
    TU_ASSERT(access(path, F_OK) != 0, "no file left after a refused finish");
    m.n_q_heads = 3;
    TU_ASSERT(trace_writer_create(path, &m, &w, &e) == RB_EINPUT, "3 q heads over 2 kv refused");
}

int main(void) {
    char dir[] = "/tmp/rbtest_trace_XXXXXX";
    TU_ASSERT(mkdtemp(dir), "mkdtemp");
    round_trip(TRACE_F32, dir);
    round_trip(TRACE_F16, dir);
    nan_found_as_read(dir);
    writer_refuses_incomplete(dir);
    tu_rmdir(dir);
    return tu_done("trace");
}
