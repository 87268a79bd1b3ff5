/* shard.h: splitting a list of work items into N shards of about equal estimated cost, the
 * same way on every machine (`sweep --shard I/N`, `eval --shard I/N`; tools/slurm/).
 *
 * Greedy longest-processing-time (LPT): items sorted by cost, largest first (ties: lower
 * index first), each given to the least loaded shard (ties: the lower one); its makespan
 * is at most 4/3 of the optimum. Items may come in groups whose shared work a shard pays
 * once, however many of the group's items it has (a sweep's pass over one trace). Then
 * each group is cut into k parts, k = its share of the items' total cost times N, rounded
 * up (at most its item count), the items split among its parts by LPT; and the parts, each
 * costing the group's shared work plus its items, are given to shards by LPT. A group
 * worth less than a shard stays whole; a big one is spread over about as many shards as
 * it fills. Of that split and the plain one, the one whose largest shard (items plus
 * shared work) is smaller is kept. The result is a function of the arguments alone: every array task computes
 * the same split, and the shards are disjoint and cover every item. */
#ifndef SHARD_H
#define SHARD_H

/* owner[i] = the 0-based shard of item i, for costs[0..n) (each >= 0) and n_shards >= 1.
 * group[i] in 0..n_groups) and group_cost[0..n_groups) (each >= 0), or both NULL: no groups. */
void shard_assign(const double *costs, const int *group, const double *group_cost, int n_groups,
                  int n, int n_shards, int *owner);

#endif
