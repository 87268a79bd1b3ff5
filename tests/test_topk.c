/* test_topk.c: pu_topk (quickselect threshold + index-ordered pass) against a plain
 * reference: sort all indices by (score descending, index ascending), keep k, sort by
 * index. Exact equality is required: ranking involves no arithmetic. */
#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <string.h>

#include "policy_util.h"

static const double *ref_score;
static int ref_cmp(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (ref_score[i] != ref_score[j]) return ref_score[i] > ref_score[j] ? -1 : 1;
    return i - j;
}
static int cmp_idx(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int main(void) {
    uint64_t seed = 7;
    int trials = 0;
    for (int n = 1; n <= 700; n += (n < 40 ? 1 : 37)) {
        for (int mode = 0; mode < 4; mode++) {
            double *s = rb_malloc(sizeof *s * n);
            for (int i = 0; i < n; i++) {
                switch (mode) {
                case 0: s[i] = tu_randn(&seed); break;                 /* distinct */
                case 1: s[i] = (double)(tu_next(&seed) % 5); break;    /* many ties */
                case 2: s[i] = i; break;                               /* sorted */
                default: s[i] = -(double)i * 0.5; break;               /* reversed */
                }
            }
            int ks[] = {0, 1, 2, n / 3, n / 2, n - 1, n, n + 5};
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                int k = ks[ki];
                int *got = rb_malloc(sizeof(int) * (n + 1)), *want = rb_malloc(sizeof(int) * n);
                int m = pu_topk(s, n, k, got);
                for (int i = 0; i < n; i++) want[i] = i;
                ref_score = s;
                qsort(want, (size_t)n, sizeof(int), ref_cmp);
                int kk = k < 0 ? 0 : k > n ? n : k;
                qsort(want, (size_t)kk, sizeof(int), cmp_idx);
                TU_ASSERT(m == kk, "n=%d k=%d mode=%d: got %d entries, want %d", n, k, mode, m, kk);
                TU_ASSERT(!memcmp(got, want, sizeof(int) * kk), "n=%d k=%d mode=%d: sets differ", n,
                          k, mode);
                free(got), free(want);
                trials++;
            }
            free(s);
        }
    }
    printf("# topk: %d cases equal to the sort-based reference (ties to the lowest index)\n", trials);
    return tu_done("topk");
}
