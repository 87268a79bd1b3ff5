/* test_model.c: the model module's pieces that need no model file: greedy choice (ties to
 * the lowest id), temperature sampling against hand-computed probabilities, KL divergence
 * against closed forms, and model_load refusing what is not a usable GGUF. The forward
 * itself is checked end to end against numpy and llama.cpp (tests/e2e_decode_*.sh). */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"

static void test_argmax(void) {
    float a[] = {1, 3, 3, 2};
    TU_ASSERT(model_argmax(a, 4) == 1, "ties go to the lowest index");
    float b[] = {-5, -5, -5};
    TU_ASSERT(model_argmax(b, 3) == 0, "all equal: index 0");
    float c[] = {-INFINITY, -1e30f, 7};
    TU_ASSERT(model_argmax(c, 3) == 2, "largest at the end");
}

static void test_sample(void) {
    /* logits [0, ln 3]: p = [1/4, 3/4] at temperature 1 */
    float l[] = {0.0f, (float)log(3.0)};
    TU_ASSERT(model_sample(l, 2, 0.0, 0.9) == 1, "temperature 0 is greedy");
    TU_ASSERT(model_sample(l, 2, 1.0, 0.20) == 0, "u below 1/4 picks 0");
    TU_ASSERT(model_sample(l, 2, 1.0, 0.30) == 1, "u above 1/4 picks 1");
    TU_ASSERT(model_sample(l, 2, 1.0, 0.999999) == 1, "u near 1 picks the last");
    /* logits [0, ln 9] at temperature 2: p proportional to [1, 3] again */
    float m[] = {0.0f, (float)log(9.0)};
    TU_ASSERT(model_sample(m, 2, 2.0, 0.24) == 0, "temperature 2: u < 1/4 picks 0");
    TU_ASSERT(model_sample(m, 2, 2.0, 0.26) == 1, "temperature 2: u > 1/4 picks 1");
    /* empirical frequencies over many draws: 3 tokens with p = [0.5, 0.3, 0.2] */
    float k[] = {(float)log(0.5), (float)log(0.3), (float)log(0.2)};
    uint64_t rng = 7;
    int cnt[3] = {0};
    const int n = 20000;
    for (int i = 0; i < n; i++) cnt[model_sample(k, 3, 1.0, tu_uniform(&rng))]++;
    /* binomial standard deviation sqrt(p(1-p)/n) <= 0.0036; 5 sigma = 0.018 */
    TU_ASSERT(fabs(cnt[0] / (double)n - 0.5) < 0.018, "p0 %.4f", cnt[0] / (double)n);
    TU_ASSERT(fabs(cnt[1] / (double)n - 0.3) < 0.018, "p1 %.4f", cnt[1] / (double)n);
    TU_ASSERT(fabs(cnt[2] / (double)n - 0.2) < 0.018, "p2 %.4f", cnt[2] / (double)n);
}

static void test_kl(void) {
    float a[] = {0.5f, -1.0f, 2.0f, 0.0f};
    TU_ASSERT(model_kl(a, a, 4) == 0.0, "KL(p||p) is exactly 0");
    /* p = [1/2, 1/2], q = [3/4, 1/4]: KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3) */
    float p[] = {0, 0}, q[] = {(float)log(3.0), 0};
    double want = 0.5 * log(4.0 / 3.0);
    /* the logits are float: ln 3 rounds by 2^-24 relative, moving KL by ~1e-8 */
    TU_ASSERT(fabs(model_kl(p, q, 2) - want) < 1e-7, "KL %.9f want %.9f", model_kl(p, q, 2), want);
    /* shifting either side's logits changes nothing; huge logits do not overflow */
    float q2[] = {(float)log(3.0) + 1000.0f, 1000.0f};
    TU_ASSERT(fabs(model_kl(p, q2, 2) - want) < 1e-4, "shift invariance %.9f", model_kl(p, q2, 2));
    /* KL(q||p) = 3/4 ln(3/2) + 1/4 ln(1/2) */
    double want2 = 0.75 * log(1.5) + 0.25 * log(0.5);
    TU_ASSERT(fabs(model_kl(q, p, 2) - want2) < 1e-7, "reverse KL %.9f", model_kl(q, p, 2));
}

static void test_load_refuses(void) {
    rb_err e = {0};
    model *m = NULL;
    TU_ASSERT(model_load("/nonexistent/dir/x.gguf", 1, &m, &e) == RB_EINPUT && !m,
              "missing file refused");
    char dir[] = "/tmp/test_model_XXXXXX";
    TU_ASSERT(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/junk.gguf", dir);
    FILE *f = fopen(path, "wb");
    TU_ASSERT(f != NULL, "create %s", path);
    for (int i = 0; i < 4096; i++) fputc((i * 37) & 0xff, f);
    fclose(f);
    memset(&e, 0, sizeof e);
    TU_ASSERT(model_load(path, 1, &m, &e) == RB_EINPUT && !m, "junk refused");
    TU_ASSERT(strstr(e.what, "junk.gguf") != NULL, "error names the file: %s", e.what);
    model_destroy(NULL); /* a no-op */
    model_session_destroy(NULL);
    tu_rmdir(dir);
}

int main(void) {
    test_argmax();
    test_sample();
    test_kl();
    test_load_refuses();
    return tu_done("test_model");
}
