/* shard.c: shard_assign (shard.h). */
#include "shard.h"

#include <stdlib.h>

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

void shard_assign(const double *costs, int n, int n_shards, int *owner) {
    if (n <= 0) return;
    shard_item *items = rb_malloc(sizeof *items * (size_t)n);
    double *load = rb_calloc((size_t)n_shards, sizeof *load);
    for (int i = 0; i < n; i++) items[i] = (shard_item){costs[i], i};
    qsort(items, (size_t)n, sizeof *items, by_cost_desc);
    for (int k = 0; k < n; k++) {
        int best = 0;
        for (int s = 1; s < n_shards; s++)
            if (load[s] < load[best]) best = s;
        owner[items[k].index] = best;
        load[best] += items[k].cost;
    }
    free(load);
    free(items);
}
