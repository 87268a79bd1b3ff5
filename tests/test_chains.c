/* test_chains.c: the reasoning-chain generator (chains.h). Each generated problem is solved
 * here independently from its text (parse the definitions, evaluate them) and must give the
 * stated answer; every reference must lie lookback_min..lookback lines above; the same seed
 * gives the same task and another seed another. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chains.h"

static int failures;
#define FAIL(...) (printf("FAIL " __VA_ARGS__), printf("\n"), failures++)

/* Solve the last problem of a prompt from its text alone. Returns 1 and *answer on success;
 * checks every reference distance against [lmin, lmax]. */
static int solve(const char *prompt, int lmin, int lmax, long long *answer, int *adds) {
    const char *p = strstr(prompt, "Problem:\n"), *last = p;
    while (p && (p = strstr(p + 1, "Problem:\n"))) last = p;
    if (!last) return 0;
    char names[4096][32];
    long long vals[4096];
    int nv = 0;
    const char *line = last + strlen("Problem:\n");
    *adds = 0;
    while (strncmp(line, "What is ", 8)) {
        char name[32], rhs[32];
        long long k;
        int used = 0;
        if (sscanf(line, "%31s = %31s%n", name, rhs, &used) != 2 || nv >= 4096) return 0;
        const char *rest = line + used;
        if (rhs[0] >= '0' && rhs[0] <= '9') {
            vals[nv] = atoll(rhs);
        } else {
            int s = -1;
            for (int i = 0; i < nv; i++)
                if (!strcmp(names[i], rhs)) s = i;
            if (s < 0) return 0;
            int dist = nv - s;
            if (dist < lmin || dist > lmax) {
                if (!(dist < lmin && dist == nv)) /* the first derived lines reach less far */
                    FAIL("reference %s -> %s at distance %d outside %d..%d", name, rhs, dist, lmin, lmax);
            }
            vals[nv] = vals[s];
            if (sscanf(rest, " + %lld", &k) == 1) vals[nv] += k, (*adds)++;
        }
        snprintf(names[nv++], 32, "%s", name);
        line = strchr(line, '\n');
        if (!line) return 0;
        line++;
    }
    char q[32];
    if (sscanf(line, "What is %31[^?]?", q) != 1) return 0;
    for (int i = 0; i < nv; i++)
        if (!strcmp(names[i], q)) {
            *answer = vals[i];
            return 1;
        }
    return 0;
}

static void check_config(chain_config c) {
    char why[160];
    if (!chain_config_check(&c, why, sizeof why)) {
        FAIL("config refused: %s", why);
        return;
    }
    int total_adds = 0;
    for (int i = 0; i < c.n; i++) {
        char *prompt, *again;
        int64_t answer, answer2;
        chain_task(&c, i, &prompt, &answer);
        chain_task(&c, i, &again, &answer2);
        if (strcmp(prompt, again) || answer != answer2) FAIL("task %d not deterministic", i);
        long long solved;
        int adds;
        if (!solve(prompt, c.lookback_min, c.lookback, &solved, &adds)) FAIL("task %d: cannot parse", i);
        else if (solved != answer) FAIL("task %d: stated answer %lld, solved %lld", i, (long long)answer, solved);
        total_adds += adds;
        char *sol = chain_solution(&c, i), tail[64];
        snprintf(tail, sizeof tail, "The answer is %lld.\n", (long long)answer);
        if (!sol || !strstr(sol, tail)) FAIL("task %d: solution does not end in '%s'", i, tail);
        if (c.shots > 0 && !strstr(prompt, "The answer is")) FAIL("task %d: no worked example", i);
        free(sol), free(prompt), free(again);
    }
    if (c.p_add == 0 && total_adds) FAIL("p_add 0 but %d additions", total_adds);
    if (c.p_add == 1 && total_adds != c.n * c.steps) FAIL("p_add 1: %d additions of %d", total_adds, c.n * c.steps);
}

int main(void) {
    chain_config c = chain_config_default();
    c.n = 50;
    check_config(c);
    c.steps = 40, c.inits = 5, c.lookback = 8, c.lookback_min = 4, c.max_add = 9, c.p_add = 0.5;
    check_config(c);
    c.steps = 100, c.lookback = 20, c.p_add = 1, c.shots = 0, c.n = 5; /* names run out: noun2 */
    check_config(c);

    chain_config a = chain_config_default(), b = a;
    b.seed = 2;
    char *pa, *pb;
    int64_t x, y;
    chain_task(&a, 0, &pa, &x);
    chain_task(&b, 0, &pb, &y);
    if (!strcmp(pa, pb)) FAIL("seeds 1 and 2 gave the same task");
    free(pa), free(pb);

    char why[160];
    chain_config bad = chain_config_default();
    bad.lookback_min = 5, bad.lookback = 3;
    if (chain_config_check(&bad, why, sizeof why)) FAIL("lookback < lookback_min accepted");
    bad = chain_config_default(), bad.p_add = 0.5;
    if (chain_config_check(&bad, why, sizeof why)) FAIL("p_add without max_add accepted");
    printf("%s\n", failures ? "test_chains: FAILED" : "test_chains: every task solves to its answer");
    return failures ? 1 : 0;
}
