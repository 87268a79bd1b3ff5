/* chains.h: a seeded generator of multi-step reasoning chains with exact answers
 * (`raasbench tasks --kind chain`, docs/DESIGN.md §9).
 *
 * A chain names `inits` variables with literal values, then `steps` derived variables, each
 * defined from one variable `lookback_min`..`lookback` lines above it (a copy, or that
 * variable plus a small number). The question asks for the last one. The worked solution
 * restates every line with its value ("stone = apple + 3 = 87 + 3 = 90"), so a derived line
 * needs the value the decode itself wrote several lines earlier: those tokens are real
 * milestones, and a policy that evicts them costs the answer. Few-shot: `shots` solved
 * chains of the same shape come first. Everything is a function of the seed. */
#ifndef CHAINS_H
#define CHAINS_H

#include <stdint.h>

typedef struct chain_config {
    int n;            /* tasks */
    int steps;        /* derived variables per chain (>= 1) */
    int inits;        /* literal variables per chain (>= 1) */
    int lookback;     /* a derived line refers to a variable up to this many lines above */
    int lookback_min; /* ... and at least this many (1 <= lookback_min <= lookback) */
    int max_value;    /* literals are drawn from 1..max_value */
    int max_add;      /* a derived line adds 1..max_add with probability p_add (0: copies) */
    double p_add;
    int shots;        /* solved examples before the problem */
    uint64_t seed;
} chain_config;

/* Defaults: the difficulty calibrated for Gemma 3 270M (docs/DESIGN.md §9). */
chain_config chain_config_default(void);

/* Check the knobs; RB_EINPUT-style message in why (cap bytes) and 0 when bad. */
int chain_config_check(const chain_config *c, char *why, int cap);

/* Task i of the set: its prompt (few-shot examples, then the problem, ending in
 * "Solution:\n") and answer. *prompt is malloc'd. Deterministic in (config, i). */
void chain_task(const chain_config *c, int i, char **prompt, int64_t *answer);

/* The worked solution of task i as the model is expected to write it (for tests). */
char *chain_solution(const chain_config *c, int i);

#endif
