/* rb.h: the ground every module stands on: status codes, error messages the CLI prints as
 * `raasbench: <what>: <why>`, check macros for broken invariants, checked allocation, a
 * monotonic clock and half-precision conversion. */
#ifndef RB_H
#define RB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Exit codes of docs/DESIGN.md §6 double as status codes. */
typedef enum {
    RB_OK = 0,
    RB_EINTERNAL = 1, /* internal failure: a system call failed, a library misbehaved */
    RB_EINPUT = 2,    /* bad input: wrong file, wrong shape, NaN, impossible budget */
} rb_status;

/* An error to be printed once, by the CLI, as `raasbench: <what>: <why>`.
 * `what` names the thing (a file, a flag, a policy); `why` says what is wrong with it. */
typedef struct rb_err {
    rb_status status;
    char what[256];
    char why[768];
} rb_err;

/* Fill `e` (which may be NULL) and return `status`, so callers write
 *   return rb_fail(e, RB_EINPUT, path, "not an HDF5 file"); */
rb_status rb_fail(rb_err *e, rb_status status, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Print `raasbench: <what>: <why>` on stderr; return the exit code for the status. */
int rb_err_print(const rb_err *e);

/* rb_fail and rb_err_print in one, for a command's entry point that finds bad input itself:
 *   if (reps < 1) return rb_report(RB_EINPUT, "--reps", "must be in 1..15"); */
int rb_report(rb_status status, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Broken invariants and failed system calls in infrastructure: stop at once, naming the
 * expression, file and line. Never for bad user input (that is rb_fail's job). */
#define RB_CHECK(cond)                                                                        \
    do {                                                                                      \
        if (!(cond)) rb_die(__FILE__, __LINE__, "check failed: %s", #cond);                   \
    } while (0)
_Noreturn void rb_die(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checked allocation: dies (exit 1) on failure. Zero-size requests return a valid pointer. */
void *rb_malloc(size_t n);
void *rb_calloc(size_t count, size_t size);
void *rb_realloc(void *p, size_t n);
char *rb_strdup(const char *s);

/* A whole file as a NUL-terminated string (*len, may be NULL, gets its length). Files over
 * max_bytes, missing or unreadable are refused with RB_EINPUT naming the path. */
/* An input file: RB_EINPUT "no such file", "is a directory, not a file" or "not a regular
 * file" (a device, a pipe) when it is not a readable regular file; RB_OK otherwise. */
rb_status rb_input_check(const char *path, rb_err *e);
rb_status rb_read_file(const char *path, size_t max_bytes, char **out, size_t *len, rb_err *e);

/* Monotonic time in nanoseconds. */
int64_t rb_now_ns(void);

/* IEEE half <-> single, round to nearest even; exact for every half value. */
float rb_half_to_float(uint16_t h);
uint16_t rb_float_to_half(float f);
/* bfloat16 -> single (exact). */
static inline float rb_bf16_to_float(uint16_t b) {
    union { uint32_t u; float f; } x = {.u = (uint32_t)b << 16};
    return x.f;
}

/* Version string and build provenance, filled by the Makefile. */
extern const char rb_version[];
extern const char rb_git_commit[];
extern const char rb_compiler[];

#endif
