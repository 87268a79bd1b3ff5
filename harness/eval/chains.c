/* chains.c: the reasoning-chain generator (chains.h). */
#include "chains.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rb.h"

/* Distinct one-token-ish nouns: names that are easy to tell apart. */
static const char *const names[] = {
    "apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle", "forest", "rocket",
    "violet", "marble", "anchor", "garden", "silver", "hammer", "window", "pepper", "island",
    "basket", "feather", "castle", "button", "dragon", "mirror", "orange", "pencil", "rabbit",
    "saddle", "tunnel", "velvet", "wallet", "bottle", "carpet", "desert", "engine", "falcon",
    "guitar", "helmet", "jacket", "kettle", "ladder", "magnet", "needle", "oyster", "parrot",
    "quartz", "ribbon", "shovel", "tomato", "umbrella", "vessel", "walnut", "yogurt", "zipper",
    "bridge", "cactus", "dolphin", "eagle", "fossil", "glacier", "harbor", "igloo", "jungle",
};
#define N_NAMES ((int)(sizeof names / sizeof names[0]))
#define MAX_VARS 4096

chain_config chain_config_default(void) {
    return (chain_config){
        /* calibrated on Gemma 3 270M Q4_K_M (docs/DESIGN.md §9): dense solves 88% [80, 93]
         * of 100 of these; --lookback 2 drops it to 70%, and with 3 shots to 56% */
        .n = 100, .steps = 2, .inits = 3, .lookback = 1, .lookback_min = 1, .max_value = 99,
        .max_add = 0, .p_add = 0, .shots = 5, .seed = 1,
    };
}

int chain_config_check(const chain_config *c, char *why, int cap) {
    const char *bad = NULL;
    if (c->n < 1 || c->n > 1000000) bad = "--n must be in 1..1000000";
    else if (c->steps < 1 || c->inits < 1 || c->steps + c->inits > MAX_VARS)
        bad = "--steps and --inits must be >= 1 with steps + inits <= 4096";
    else if (c->lookback_min < 1 || c->lookback < c->lookback_min)
        bad = "--lookback must be >= --lookback-min >= 1";
    else if (c->max_value < 1 || c->max_value > 1000000000) bad = "--max-value must be in 1..1e9";
    else if (c->max_add < 0 || c->max_add > 1000000) bad = "--max-add must be in 0..1e6";
    else if (!(c->p_add >= 0 && c->p_add <= 1)) bad = "--p-add must be in [0, 1]";
    else if (c->p_add > 0 && c->max_add < 1) bad = "--p-add > 0 needs --max-add >= 1";
    else if (c->shots < 0 || c->shots > 16) bad = "--shots must be in 0..16";
    if (bad) snprintf(why, (size_t)cap, "%s", bad);
    return bad == NULL;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in lo..hi (inclusive); the modulo bias is below 2^-30 for these ranges. */
static int64_t uniform(uint64_t *x, int64_t lo, int64_t hi) {
    return lo + (int64_t)(splitmix64(x) % (uint64_t)(hi - lo + 1));
}

/* A growing string. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)need + 1 > b->cap) {
        b->cap = (b->n + (size_t)need + 1) * 2;
        b->s = rb_realloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* Variable v of a task (numbered across all its chains, so the examples and the problem
 * share no name): distinct nouns while they last, then noun + number. */
static void var_name(const int *perm, int v, char *out, size_t cap) {
    if (v < N_NAMES) snprintf(out, cap, "%s", names[perm[v]]);
    else snprintf(out, cap, "%s%d", names[perm[v % N_NAMES]], v / N_NAMES + 1);
}

static void shuffle_names(uint64_t *x, int *perm) {
    for (int i = 0; i < N_NAMES; i++) perm[i] = i;
    for (int i = N_NAMES - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)uniform(x, 0, i), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

/* One chain from the stream x: its problem (definitions, question) and solution lines. Its
 * variables are named first_var, first_var + 1, ... of the task's name order. */
static int64_t one_chain(const chain_config *c, uint64_t *x, const int *perm, int first_var,
                         sbuf *problem, sbuf *solution) {
    int nv = c->inits + c->steps;
    int64_t *val = rb_malloc(sizeof(int64_t) * (size_t)nv);
    char name[32], src[32];
    sb_printf(problem, "Problem:\n");
    for (int v = 0; v < nv; v++) {
        var_name(perm, first_var + v, name, sizeof name);
        if (v < c->inits) {
            val[v] = uniform(x, 1, c->max_value);
            sb_printf(problem, "%s = %lld\n", name, (long long)val[v]);
            sb_printf(solution, "%s = %lld\n", name, (long long)val[v]);
            continue;
        }
        int lo = c->lookback_min < v ? c->lookback_min : v, hi = c->lookback < v ? c->lookback : v;
        int s = v - (int)uniform(x, lo, hi);
        var_name(perm, first_var + s, src, sizeof src);
        int add = c->p_add > 0 && (double)(splitmix64(x) >> 11) * 0x1.0p-53 < c->p_add;
        if (add) {
            int64_t k = uniform(x, 1, c->max_add);
            val[v] = val[s] + k;
            sb_printf(problem, "%s = %s + %lld\n", name, src, (long long)k);
            sb_printf(solution, "%s = %s + %lld = %lld + %lld = %lld\n", name, src, (long long)k,
                      (long long)val[s], (long long)k, (long long)val[v]);
        } else {
            val[v] = val[s];
            sb_printf(problem, "%s = %s\n", name, src);
            sb_printf(solution, "%s = %s = %lld\n", name, src, (long long)val[v]);
        }
    }
    var_name(perm, first_var + nv - 1, name, sizeof name);
    int64_t answer = val[nv - 1];
    sb_printf(problem, "What is %s?\nSolution:\n", name);
    sb_printf(solution, "The answer is %lld.\n", (long long)answer);
    free(val);
    return answer;
}

/* The stream of task i: independent of every other task. */
static uint64_t task_stream(const chain_config *c, int i) {
    uint64_t x = c->seed * 0x9E3779B97F4A7C15ull + (uint64_t)i;
    splitmix64(&x);
    return x;
}

void chain_task(const chain_config *c, int i, char **prompt, int64_t *answer) {
    uint64_t x = task_stream(c, i);
    int perm[N_NAMES], nv = c->inits + c->steps;
    shuffle_names(&x, perm);
    sbuf p = {0};
    for (int s = 0; s < c->shots; s++) {
        sbuf q = {0}, a = {0};
        one_chain(c, &x, perm, s * nv, &q, &a);
        sb_printf(&p, "%s%s\n", q.s, a.s);
        free(q.s), free(a.s);
    }
    sbuf q = {0}, a = {0};
    *answer = one_chain(c, &x, perm, c->shots * nv, &q, &a);
    sb_printf(&p, "%s", q.s);
    free(q.s), free(a.s);
    *prompt = p.s;
}

char *chain_solution(const chain_config *c, int i) {
    uint64_t x = task_stream(c, i);
    int perm[N_NAMES], nv = c->inits + c->steps;
    shuffle_names(&x, perm);
    for (int s = 0; s <= c->shots; s++) {
        sbuf q = {0}, a = {0};
        one_chain(c, &x, perm, s * nv, &q, &a);
        free(q.s);
        if (s == c->shots) return a.s;
        free(a.s);
    }
    return NULL;
}
