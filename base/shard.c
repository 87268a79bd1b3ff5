/* shard.c: shard_assign (shard.h). */
#include "shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rb.h"

typedef struct shard_item {
    double cost;
    int index;
} shard_item;

/* Largest cost first; equal costs in index order, so the sort is total and the split the
 * same whatever qsort's algorithm. */
static int by_cost_desc(const void *a, const void *b) {
    const shard_item *x = a, *y = b;
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Plain LPT of costs[0..n) over k bins: owner[i] in 0..k). */
static void lpt(const double *costs, int n, int k, int *owner) {
    if (n <= 0) return;
    shard_item *items = rb_malloc(sizeof *items * (size_t)n);
    double *load = rb_calloc((size_t)k, sizeof *load);
    for (int i = 0; i < n; i++) items[i] = (shard_item){costs[i], i};
    qsort(items, (size_t)n, sizeof *items, by_cost_desc);
    for (int j = 0; j < n; j++) {
        int best = 0;
        for (int s = 1; s < k; s++)
            if (load[s] < load[best]) best = s;
        owner[items[j].index] = best;
        load[best] += items[j].cost;
    }
    free(load);
    free(items);
}

/* The largest shard load of a split: its items, plus each group's shared work once per
 * shard that has any of the group. */
static double makespan(const double *costs, const int *group, const double *group_cost,
                       int n_groups, int n, int n_shards, const int *owner) {
    double *load = rb_calloc((size_t)n_shards, sizeof *load), worst = 0;
    unsigned char *has = rb_calloc((size_t)n_shards * (size_t)n_groups + 1, 1);
    for (int i = 0; i < n; i++) {
        load[owner[i]] += costs[i];
        unsigned char *h = &has[(size_t)owner[i] * (size_t)n_groups + (size_t)group[i]];
        if (!*h) *h = 1, load[owner[i]] += group_cost[group[i]];
    }
    for (int s = 0; s < n_shards; s++)
        if (load[s] > worst) worst = load[s];
    free(load), free(has);
    return worst;
}

static void grouped(const double *costs, const int *group, const double *group_cost,
                    int n_groups, int n, int n_shards, int *owner);

void shard_assign(const double *costs, const int *group, const double *group_cost, int n_groups,
                  int n, int n_shards, int *owner) {
    lpt(costs, n, n_shards, owner);
    if (!group || n <= 0) return;
    /* Parts by group, unless the plain split is expected to finish sooner (a small group
     * kept whole can unbalance the shard it lands on). */
    int *by_group = rb_malloc(sizeof *by_group * (size_t)n);
    grouped(costs, group, group_cost, n_groups, n, n_shards, by_group);
    if (makespan(costs, group, group_cost, n_groups, n, n_shards, by_group) <
        makespan(costs, group, group_cost, n_groups, n, n_shards, owner))
        memcpy(owner, by_group, sizeof *owner * (size_t)n);
    free(by_group);
}

static void grouped(const double *costs, const int *group, const double *group_cost,
                    int n_groups, int n, int n_shards, int *owner) {
    double total = 0, *work = rb_calloc((size_t)n_groups, sizeof *work);
    int *n_in = rb_calloc((size_t)n_groups, sizeof *n_in);
    for (int i = 0; i < n; i++) total += costs[i], work[group[i]] += costs[i], n_in[group[i]]++;
    /* first[g]: the index of group g's first part; parts numbered group after group */
    int *first = rb_calloc((size_t)n_groups + 1, sizeof *first);
    for (int g = 0; g < n_groups; g++) {
        double share = total > 0 ? work[g] / total * n_shards : 1;
        int k = (int)ceil(share - 1e-9);
        if (k > n_in[g]) k = n_in[g];
        if (k > n_shards) k = n_shards;
        first[g + 1] = first[g] + (k < 1 && n_in[g] ? 1 : k);
    }
    int n_parts = first[n_groups];
    size_t cap = (size_t)n + 1; /* rb_malloc(0) need not be freeable */
    int *part = rb_malloc(sizeof *part * cap), *idx = rb_malloc(sizeof *idx * cap);
    int *sub_owner = rb_malloc(sizeof *sub_owner * cap);
    double *sub = rb_malloc(sizeof *sub * cap);
    double *part_cost = rb_calloc((size_t)n_parts + 1, sizeof *part_cost);
    for (int g = 0; g < n_groups; g++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (group[i] == g) idx[m] = i, sub[m++] = costs[i];
        lpt(sub, m, first[g + 1] - first[g], sub_owner);
        for (int j = 0; j < m; j++) part[idx[j]] = first[g] + sub_owner[j];
        for (int p = first[g]; p < first[g + 1]; p++) part_cost[p] = group_cost[g];
    }
    for (int i = 0; i < n; i++) part_cost[part[i]] += costs[i];
    int *part_owner = rb_malloc(sizeof *part_owner * ((size_t)n_parts + 1));
    lpt(part_cost, n_parts, n_shards, part_owner);
    for (int i = 0; i < n; i++) owner[i] = part_owner[part[i]];
    free(work), free(n_in), free(first), free(part), free(sub), free(idx), free(sub_owner);
    free(part_cost), free(part_owner);
}
