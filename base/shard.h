/* shard.h: splitting a list of work items into N shards of about equal estimated cost, the
 * same way on every machine (`sweep --shard I/N`, `eval --shard I/N`; tools/slurm/).
 *
 * Greedy longest-processing-time: items sorted by cost, largest first (ties: lower index
 * first), each given to the shard with the least cost so far (ties: the lower shard). The
 * result is a function of (costs, N) alone: every array task computes the same split and
 * the shards are disjoint and cover every item. LPT's makespan is at most 4/3 of the
 * optimum; with many small items it is close to total/N. */
#ifndef SHARD_H
#define SHARD_H

/* owner[i] = the 0-based shard of item i, for costs[0..n) (each >= 0) and n_shards >= 1. */
void shard_assign(const double *costs, int n, int n_shards, int *owner);

#endif
