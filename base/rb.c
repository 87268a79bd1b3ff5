/* rb.c: errors, checks, allocation, clock and half-precision conversion (see rb.h). */
#define _POSIX_C_SOURCE 200809L
#include "rb.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <string.h>
#include <time.h>

#ifndef RB_VERSION
#define RB_VERSION "0.1.0"
#endif
#ifndef RB_GIT_COMMIT
#define RB_GIT_COMMIT "unknown"
#endif
const char rb_version[] = RB_VERSION;
const char rb_git_commit[] = RB_GIT_COMMIT;
#if defined(__clang__)
const char rb_compiler[] = "clang " __clang_version__;
#elif defined(__GNUC__)
const char rb_compiler[] = "gcc " __VERSION__;
#else
const char rb_compiler[] = "unknown";
#endif

rb_status rb_fail(rb_err *e, rb_status status, const char *what, const char *fmt, ...) {
    if (!e) return status;
    e->status = status;
    snprintf(e->what, sizeof e->what, "%s", what ? what : "error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof e->why, fmt, ap);
    va_end(ap);
    return status;
}

int rb_err_print(const rb_err *e) {
    fprintf(stderr, "raasbench: %s: %s\n", e->what, e->why);
    return e->status == RB_OK ? RB_EINTERNAL : (int)e->status;
}

int rb_report(rb_status status, const char *what, const char *fmt, ...) {
    rb_err e = {.status = status};
    snprintf(e.what, sizeof e.what, "%s", what ? what : "error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.why, sizeof e.why, fmt, ap);
    va_end(ap);
    return rb_err_print(&e);
}

void rb_die(const char *file, int line, const char *fmt, ...) {
    fprintf(stderr, "raasbench: internal error at %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(RB_EINTERNAL);
}

void *rb_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) rb_die(__FILE__, __LINE__, "out of memory allocating %zu bytes", n);
    return p;
}

void *rb_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) rb_die(__FILE__, __LINE__, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *rb_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) rb_die(__FILE__, __LINE__, "out of memory reallocating %zu bytes", n);
    return q;
}

char *rb_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = rb_malloc(n);
    memcpy(d, s, n);
    return d;
}

int64_t rb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

float rb_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    union { uint32_t u; float f; } x = {.u = bits};
    return x.f;
}

uint16_t rb_float_to_half(float f) {
    union { float f; uint32_t u; } x = {.f = f};
    uint32_t u = x.u, sign = (u >> 16) & 0x8000;
    uint32_t absu = u & 0x7fffffffu;
    if (absu >= 0x7f800000u) /* Inf or NaN */
        return (uint16_t)(sign | 0x7c00 | (absu > 0x7f800000u ? 0x200 : 0));
    if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: Inf */
    if (absu < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (absu < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
        uint32_t exp = absu >> 23, mant = (absu & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - exp; /* 14..24 */
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((absu - 0x38000000u) >> 13);
    uint32_t rem = absu & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)(sign | half);
}

rb_status rb_input_check(const char *path, rb_err *e) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return rb_fail(e, RB_EINPUT, path, errno == ENOENT ? "no such file" : "cannot open: %s",
                       strerror(errno));
    if (S_ISDIR(sb.st_mode)) return rb_fail(e, RB_EINPUT, path, "is a directory, not a file");
    if (!S_ISREG(sb.st_mode)) return rb_fail(e, RB_EINPUT, path, "not a regular file");
    if (access(path, R_OK) != 0) return rb_fail(e, RB_EINPUT, path, "cannot read: %s", strerror(errno));
    return RB_OK;
}

rb_status rb_read_file(const char *path, size_t max_bytes, char **out, size_t *len, rb_err *e) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return rb_fail(e, RB_EINPUT, path, "is a directory, not a file");
    FILE *f = fopen(path, "rb");
    if (!f) return rb_fail(e, RB_EINPUT, path, errno == ENOENT ? "no such file" : "cannot open: %s",
                           strerror(errno));
    size_t cap = 4096, n = 0, r;
    char *buf = rb_malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n > max_bytes) break;
        if (n + 1 == cap) buf = rb_realloc(buf, cap *= 2);
    }
    int err = ferror(f);
    fclose(f);
    if (err || n > max_bytes) {
        free(buf);
        return err ? rb_fail(e, RB_EINPUT, path, "read error")
                   : rb_fail(e, RB_EINPUT, path, "larger than %zu bytes", max_bytes);
    }
    buf[n] = 0;
    if (len) *len = n;
    *out = buf;
    return RB_OK;
}
