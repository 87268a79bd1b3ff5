/* test_shard.c: shard_assign (base/shard.h) and args_shard (base/args.h).
 *  - every item gets exactly one shard in 0..N), the same on every call
 *  - LPT's bound: no shard's load exceeds total/N + the largest item
 *  - groups: N groups of equal work land one per shard; one group alone is spread evenly;
 *    a big group is split while small ones stay whole
 *  - shard specs: "I/N" with 1 <= I <= N accepted, everything else refused */
#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <string.h>

#include "args.h"
#include "shard.h"

int main(void) {
    uint64_t rng = 17;
    int trials = 0;
    for (int n = 1; n <= 200; n += 13)
        for (int n_shards = 1; n_shards <= 9; n_shards++) {
            double *cost = malloc(sizeof *cost * (size_t)n), total = 0, biggest = 0;
            int *a = malloc(sizeof *a * (size_t)n), *b = malloc(sizeof *b * (size_t)n);
            for (int i = 0; i < n; i++) {
                cost[i] = i % 5 == 0 ? 3.0 : tu_uniform(&rng) * 10; /* ties too */
                total += cost[i];
                if (cost[i] > biggest) biggest = cost[i];
            }
            shard_assign(cost, NULL, NULL, 0, n, n_shards, a);
            shard_assign(cost, NULL, NULL, 0, n, n_shards, b);
            double load[9] = {0};
            for (int i = 0; i < n; i++) {
                TU_ASSERT(a[i] >= 0 && a[i] < n_shards, "item %d: shard %d of %d", i, a[i], n_shards);
                TU_ASSERT(a[i] == b[i], "item %d: shard %d, then %d", i, a[i], b[i]);
                load[a[i]] += cost[i];
            }
            for (int s = 0; s < n_shards; s++)
                TU_ASSERT(load[s] <= total / n_shards + biggest + 1e-9,
                          "n %d, %d shards: shard %d holds %g of %g", n, n_shards, s, load[s], total);
            free(cost), free(a), free(b);
            trials++;
        }

    /* 4 groups x 10 equal items, 4 shards: a group's shared cost keeps each group whole */
    double cost[40], gcost[4] = {50, 50, 50, 50};
    int group[40], owner[40];
    for (int i = 0; i < 40; i++) cost[i] = 1, group[i] = i / 10;
    shard_assign(cost, group, gcost, 4, 40, 4, owner);
    for (int i = 0; i < 40; i++)
        TU_ASSERT(owner[i] == owner[group[i] * 10], "item %d of group %d on shard %d, not %d", i,
                  group[i], owner[i], owner[group[i] * 10]);
    for (int g = 1; g < 4; g++)
        for (int h = 0; h < g; h++)
            TU_ASSERT(owner[g * 10] != owner[h * 10], "groups %d and %d share shard %d", g, h,
                      owner[g * 10]);
    /* one group alone is spread over every shard, 10 items each */
    for (int i = 0; i < 40; i++) group[i] = 0;
    shard_assign(cost, group, gcost, 1, 40, 4, owner);
    int count[4] = {0};
    for (int i = 0; i < 40; i++) count[owner[i]]++;
    for (int s = 0; s < 4; s++) TU_ASSERT(count[s] == 10, "one group: shard %d has %d items", s, count[s]);
    /* a big group and three small: the big one split, the small ones whole, loads even */
    for (int i = 0; i < 40; i++) group[i] = i < 31 ? 0 : 1 + (i - 31) / 3;
    shard_assign(cost, group, gcost, 4, 40, 4, owner);
    for (int i = 31; i < 40; i++)
        TU_ASSERT(owner[i] == owner[31 + (i - 31) / 3 * 3], "small group %d split", group[i]);
    memset(count, 0, sizeof count);
    for (int i = 0; i < 40; i++) count[owner[i]]++;
    for (int s = 0; s < 4; s++) TU_ASSERT(count[s] >= 7 && count[s] <= 14, "shard %d has %d items", s, count[s]);

    /* shard specs */
    const char *good[] = {"1/1", "1/3", "3/3", "2/4", "07/10"};
    const int gi[] = {1, 1, 3, 2, 7}, gn[] = {1, 3, 3, 4, 10};
    for (int k = 0; k < 5; k++) {
        rb_err e = {0};
        int i = 0, n = 0;
        TU_OK(args_shard("--shard", good[k], &i, &n, &e), e);
        TU_ASSERT(i == gi[k] && n == gn[k], "'%s' read as %d/%d", good[k], i, n);
    }
    const char *bad[] = {"0/3", "4/3", "1/0", "0/0", "text", "1/3x", "1", "1/", "/3", "-1/3", "1/-3",
                         "+1/3", " 1/3", "1/3 ", "1//3", "1/2/3", "", "1/99999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rb_err e = {0};
        int i = 5, n = 5;
        TU_ASSERT(args_shard("--shard", bad[k], &i, &n, &e) == RB_EINPUT, "'%s' accepted", bad[k]);
        TU_ASSERT(!strcmp(e.what, "--shard") && i == 5 && n == 5, "'%s': %s: %s", bad[k], e.what, e.why);
    }
    printf("# shard: %d splits within LPT's bound; groups whole, spread or split as they weigh; 18 bad specs refused\n", trials);
    return tu_done("shard");
}
