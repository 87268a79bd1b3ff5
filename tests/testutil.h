/* testutil.h: the few helpers every C test uses: assertions that say what failed and
 * where, a deterministic random stream, temporary directories. Header-only. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rb.h"

static int tu_checks __attribute__((unused));

#define TU_ASSERT(cond, ...)                                                                  \
    do {                                                                                      \
        tu_checks++;                                                                          \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: assertion failed: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

/* Expect RB_OK from a call; on failure print the error it filled. */
#define TU_OK(call, err)                                                                      \
    do {                                                                                      \
        rb_status tu_s_ = (call);                                                             \
        tu_checks++;                                                                          \
        if (tu_s_ != RB_OK) {                                                                 \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,          \
                    (err).what, (err).why);                                                   \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

/* splitmix64: a tiny deterministic stream. */
static inline uint64_t tu_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline double tu_uniform(uint64_t *s) { return (tu_next(s) >> 11) * 0x1p-53; }
static inline double tu_randn(uint64_t *s) {
    double u = tu_uniform(s), v = tu_uniform(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static inline void tu_rmdir(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

static inline int tu_done(const char *name) {
    printf("%s: %d checks passed\n", name, tu_checks);
    return 0;
}

#endif
