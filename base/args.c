/* args.c: strict, declarative option parsing (see args.h). */
#include "args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

rb_status args_to_i64(const char *what, const char *s, int64_t *out, rb_err *e) {
    if (!s || !*s) return rb_fail(e, RB_EINPUT, what, "expected an integer, got nothing");
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return rb_fail(e, RB_EINPUT, what, "expected an integer, got '%s'", s);
    *out = v;
    return RB_OK;
}

rb_status args_to_int(const char *what, const char *s, int *out, rb_err *e) {
    int64_t v = 0;
    rb_status st = args_to_i64(what, s, &v, e);
    if (st) return st;
    if (v < INT_MIN || v > INT_MAX) return rb_fail(e, RB_EINPUT, what, "'%s' is out of range", s);
    *out = (int)v;
    return RB_OK;
}

rb_status args_to_double(const char *what, const char *s, double *out, rb_err *e) {
    if (!s || !*s) return rb_fail(e, RB_EINPUT, what, "expected a number, got nothing");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return rb_fail(e, RB_EINPUT, what, "expected a finite number, got '%s'", s);
    *out = v;
    return RB_OK;
}

int args_parse_cmd(const char *cmd, const char *usage, const arg_spec *specs, int argc,
                   char **argv, const char **pos, int max_pos, int *n_pos) {
    rb_err e = {0};
    int help = 0;
    if (args_parse(cmd, usage, specs, argc, argv, pos, max_pos, n_pos, &help, &e))
        return rb_err_print(&e);
    return help ? 0 : -1;
}

void args_print_help(FILE *f, const char *cmd, const char *usage, const arg_spec *specs) {
    fprintf(f, "usage: raasbench %s %s\n\noptions:\n", cmd, usage);
    for (const arg_spec *s = specs; s && s->name; s++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", s->name, s->metavar ? " " : "",
                 s->metavar ? s->metavar : "");
        fprintf(f, "  %-26s %s", left, s->help);
        if (s->kind == ARG_RANGE) {
            const arg_range *r = s->dst;
            fprintf(f, " [%lld..%lld]", (long long)r->min, (long long)r->max);
        }
        fputc('\n', f);
    }
    fprintf(f, "  %-26s %s\n", "--help", "show this help");
}

static const arg_spec *find_spec(const arg_spec *specs, const char *name, size_t len) {
    for (const arg_spec *s = specs; s && s->name; s++)
        if (strlen(s->name) == len && !strncmp(s->name, name, len)) return s;
    return NULL;
}

rb_status args_parse(const char *cmd, const char *usage, const arg_spec *specs, int argc,
                     char **argv, const char **pos, int max_pos, int *n_pos, int *help,
                     rb_err *e) {
    *help = 0;
    if (n_pos) *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            args_print_help(stdout, cmd, usage, specs);
            *help = 1;
            return RB_OK;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (!n_pos || *n_pos >= max_pos)
                return rb_fail(e, RB_EINPUT, cmd, "unexpected argument '%s' (see --help)", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const arg_spec *s = find_spec(specs, name, len);
        if (!s) return rb_fail(e, RB_EINPUT, cmd, "unknown option '%s' (see --help)", a);
        char what[96];
        snprintf(what, sizeof what, "--%s", s->name);
        if (s->kind == ARG_FLAG) {
            if (eq) return rb_fail(e, RB_EINPUT, what, "takes no value");
            *(int *)s->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) return rb_fail(e, RB_EINPUT, what, "needs a value");
        rb_status st = RB_OK;
        switch (s->kind) {
        case ARG_STR: *(const char **)s->dst = val; break;
        case ARG_INT: st = args_to_int(what, val, (int *)s->dst, e); break;
        case ARG_I64: st = args_to_i64(what, val, (int64_t *)s->dst, e); break;
        case ARG_FLOAT: st = args_to_double(what, val, (double *)s->dst, e); break;
        case ARG_RANGE: {
            const arg_range *r = s->dst;
            int64_t v = 0;
            if ((st = args_to_i64(what, val, &v, e))) break;
            if (v < r->min || v > r->max)
                return rb_fail(e, RB_EINPUT, what, "must be in %lld..%lld, got %s",
                               (long long)r->min, (long long)r->max, val);
            RB_CHECK(!r->i32 != !r->i64 && (!r->i32 || (r->min >= INT_MIN && r->max <= INT_MAX)));
            if (r->i32) *r->i32 = (int)v;
            else *r->i64 = v;
            break;
        }
        case ARG_MULTI: {
            arg_multi *m = s->dst;
            if (m->n >= (int)(sizeof m->v / sizeof m->v[0]))
                return rb_fail(e, RB_EINPUT, what, "given too many times");
            m->v[m->n++] = val;
            break;
        }
        case ARG_FLAG: break;
        }
        if (st) return st;
    }
    return RB_OK;
}

rb_status args_int_list(const char *what, const char *s, int *out, int max, int *n, rb_err *e) {
    *n = 0;
    if (!s || !*s) return rb_fail(e, RB_EINPUT, what, "expected a comma-separated list");
    char buf[32];
    const char *p = s;
    while (1) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0 || len >= sizeof buf)
            return rb_fail(e, RB_EINPUT, what, "bad list '%s'", s);
        if (*n >= max) return rb_fail(e, RB_EINPUT, what, "more than %d values", max);
        memcpy(buf, p, len);
        buf[len] = '\0';
        rb_status st = args_to_int(what, buf, &out[*n], e);
        if (st) return st;
        (*n)++;
        if (!c) break;
        p = c + 1;
    }
    return RB_OK;
}

rb_status args_name_list(const char *what, const char *s, char **storage, const char **out,
                         int max, int *n, rb_err *e) {
    *n = 0;
    *storage = NULL;
    if (!s || !*s) return rb_fail(e, RB_EINPUT, what, "expected a comma-separated list");
    char *copy = rb_strdup(s);
    *storage = copy;
    char *p = copy;
    while (1) {
        char *c = strchr(p, ',');
        if (c) *c = '\0';
        if (!*p) return rb_fail(e, RB_EINPUT, what, "empty name in list '%s'", s);
        if (*n >= max) return rb_fail(e, RB_EINPUT, what, "more than %d names", max);
        out[(*n)++] = p;
        if (!c) break;
        p = c + 1;
    }
    return RB_OK;
}

rb_status args_check_budgets(const int *budgets, int n, rb_err *e) {
    for (int i = 0; i < n; i++)
        if (budgets[i] < 1)
            return rb_fail(e, RB_EINPUT, "--budgets", "budget %d must be positive", budgets[i]);
    return RB_OK;
}

rb_status args_shard(const char *what, const char *s, int *index, int *count, rb_err *e) {
    const char *slash = s ? strchr(s, '/') : NULL;
    char left[32];
    int i = 0, n = 0;
    /* Digits only on both sides: strtol alone would take " 1", "+1" or "1/3x". */
    int ok = slash && slash > s && (size_t)(slash - s) < sizeof left && slash[1];
    for (const char *p = s; ok && *p; p++) ok = p == slash || (*p >= '0' && *p <= '9');
    if (ok) {
        memcpy(left, s, (size_t)(slash - s));
        left[slash - s] = '\0';
        ok = !args_to_int(what, left, &i, NULL) && !args_to_int(what, slash + 1, &n, NULL);
    }
    if (!ok) return rb_fail(e, RB_EINPUT, what, "expected I/N (shard I of N, e.g. 2/4), got '%s'",
                            s ? s : "");
    if (n < 1) return rb_fail(e, RB_EINPUT, what, "'%s': N must be at least 1", s);
    if (i < 1 || i > n) return rb_fail(e, RB_EINPUT, what, "'%s': I must be in 1..%d", s, n);
    *index = i, *count = n;
    return RB_OK;
}
