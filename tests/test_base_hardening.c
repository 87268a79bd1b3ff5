/* test_base_hardening.c: the base/ pieces of issue 15, each at its edges:
 *  - ranged integer options: bounds inclusive, out-of-range and int64 extremes refused;
 *  - rb_json_parse: duplicate keys at any depth, nesting past cJSON's limit, broken JSON with
 *    its line and column, trailing text; rb_json_add_double reads back bit-exact;
 *  - output_check_inputs / output_check_all: the same file by name, hard link or symbolic
 *    link, directories, two outputs the same;
 *  - temporaries: a registered temporary is removed by SIGTERM (in a child), a released one
 *    is not; stale ones of dead processes are removed by output_tmp_begin. */
#define _XOPEN_SOURCE 700
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "json.h"
#include "output.h"
#include "testutil.h"

static int exists(const char *p) { return access(p, F_OK) == 0; }

static void touch(const char *p) {
    FILE *f = fopen(p, "w");
    TU_ASSERT(f, "cannot create %s", p);
    fputs("x", f);
    fclose(f);
}

static rb_status parse1(const arg_spec *specs, const char *a, const char *b, rb_err *e) {
    char *argv[2] = {(char *)a, (char *)b};
    int help = 0;
    return args_parse("t", "", specs, 2, argv, NULL, 0, NULL, &help, e);
}

static void test_ranges(void) {
    int n = 7;
    int64_t s = 0;
    const arg_spec specs[] = {
        {"n", ARG_INT_IN(&n, -1, 10), "N", "n"},
        {"s", ARG_I64_IN(&s, INT64_MIN, INT64_MAX), "S", "s"},
        {NULL, ARG_FLAG, NULL, NULL, NULL},
    };
    rb_err e = {0};
    TU_OK(parse1(specs, "--n", "10", &e), e);
    TU_ASSERT(n == 10, "n = %d", n);
    TU_OK(parse1(specs, "--n", "-1", &e), e);
    TU_ASSERT(n == -1, "n = %d", n);
    n = 3;
    TU_ASSERT(parse1(specs, "--n", "11", &e) == RB_EINPUT && n == 3, "11 accepted");
    TU_ASSERT(!strcmp(e.what, "--n") && strstr(e.why, "must be in -1..10, got 11"), "%s", e.why);
    TU_ASSERT(parse1(specs, "--n", "-2", &e) == RB_EINPUT, "-2 accepted");
    TU_ASSERT(parse1(specs, "--n", "4294967306", &e) == RB_EINPUT, "2^32 + 10 accepted");
    TU_ASSERT(parse1(specs, "--n", "5x", &e) == RB_EINPUT && strstr(e.why, "integer"), "%s", e.why);
    TU_OK(parse1(specs, "--s", "-9223372036854775808", &e), e);
    TU_ASSERT(s == INT64_MIN, "s = %lld", (long long)s);
    TU_ASSERT(parse1(specs, "--s", "9223372036854775808", &e) == RB_EINPUT, "2^63 accepted");
}

static rb_status json(const char *text, cJSON **o, rb_err *e) {
    return rb_json_parse(text, strlen(text), "x.json", o, e);
}

static void test_json(void) {
    rb_err e = {0};
    cJSON *o = NULL;
    TU_OK(json(" {\"a\": [1, {\"b\": 2, \"c\": 3}], \"d\": {}} \n", &o, &e), e);
    cJSON_Delete(o);
    TU_ASSERT(json("{\"a\": 1, \"b\": 2, \"a\": 3}", &o, &e) == RB_EINPUT && !o, "duplicate");
    TU_ASSERT(strstr(e.why, "duplicate key 'a' in $"), "%s", e.why);
    TU_ASSERT(json("{\"p\": [0, {\"q\": {\"k\": 1, \"k\": 1}}]}", &o, &e) == RB_EINPUT, "deep dup");
    TU_ASSERT(strstr(e.why, "duplicate key 'k' in $.p[1].q"), "%s", e.why);
    /* the same key in sibling objects is no duplicate */
    TU_OK(json("[{\"k\": 1}, {\"k\": 2}]", &o, &e), e);
    cJSON_Delete(o);
    TU_ASSERT(json("{\"a\": 1}\n{", &o, &e) == RB_EINPUT && strstr(e.why, "text after"), "%s",
              e.why);
    TU_ASSERT(json("{\"a\": 1,\n \"b\": }", &o, &e) == RB_EINPUT, "broken accepted");
    TU_ASSERT(strstr(e.why, "broken JSON at line 2, column 7"), "%s", e.why);
    /* CJSON_NESTING_LIMIT levels parse; one more is "nested deeper" */
    for (size_t depth = CJSON_NESTING_LIMIT; depth <= CJSON_NESTING_LIMIT + 1; depth++) {
        char *deep = rb_malloc(2 * depth + 1);
        memset(deep, '[', depth);
        memset(deep + depth, ']', depth);
        deep[2 * depth] = 0;
        rb_status st = json(deep, &o, &e);
        if (depth == CJSON_NESTING_LIMIT) {
            TU_ASSERT(st == RB_OK, "%zu levels refused: %s", depth, e.why);
            cJSON_Delete(o);
        } else {
            TU_ASSERT(st == RB_EINPUT && strstr(e.why, "nested deeper than"), "%s", e.why);
        }
        free(deep);
    }
    /* doubles read back bit-exact */
    uint64_t seed = 5;
    for (int i = 0; i < 1000; i++) {
        double v = tu_randn(&seed) * 1e3 / (1 + i);
        cJSON *x = cJSON_CreateObject();
        rb_json_add_double(x, "v", v);
        char *text = cJSON_PrintUnformatted(x);
        cJSON_Delete(x);
        TU_OK(json(text, &o, &e), e);
        double back = cJSON_GetObjectItemCaseSensitive(o, "v")->valuedouble;
        TU_ASSERT(back == v, "%.17g read back as %.17g from %s", v, back, text);
        cJSON_Delete(o);
        free(text);
    }
}

static void test_outputs(const char *dir) {
    char in[512], hard[512], sym[512], out[512], sub[512];
    snprintf(in, sizeof in, "%s/in.h5", dir);
    snprintf(hard, sizeof hard, "%s/hard.h5", dir);
    snprintf(sym, sizeof sym, "%s/sym.h5", dir);
    snprintf(out, sizeof out, "%s/out.h5", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    touch(in);
    TU_ASSERT(link(in, hard) == 0 && symlink(in, sym) == 0 && mkdir(sub, 0777) == 0, "setup");
    const char *ins[] = {NULL, in};
    rb_err e = {0};
    TU_OK(output_check_inputs(out, ins, 2, &e), e);
    TU_ASSERT(output_check_inputs(in, ins, 2, &e) == RB_EINPUT && strstr(e.why, "is the input"),
              "%s", e.why);
    TU_ASSERT(output_check_inputs(hard, ins, 2, &e) == RB_EINPUT && strstr(e.why, "same file"),
              "%s", e.why);
    TU_ASSERT(output_check_inputs(sym, ins, 2, &e) == RB_EINPUT && strstr(e.why, "symbolic"),
              "%s", e.why);
    TU_ASSERT(output_check_inputs(sub, ins, 2, &e) == RB_EINPUT && strstr(e.why, "directory"),
              "%s", e.why);
    /* an input reached through a symbolic link is the same file too */
    const char *via_link[] = {sym};
    TU_ASSERT(output_check_inputs(hard, via_link, 1, &e) == RB_EINPUT, "link to the input");
    const char *two[] = {out, NULL, out};
    TU_ASSERT(output_check_all(two, 3, ins, 2, &e) == RB_EINPUT && strstr(e.why, "two outputs"),
              "%s", e.why);
    TU_ASSERT(exists(in), "the input was touched");
}

static void test_temporaries(const char *dir) {
    char path[512], tmp[1024], stale[1024];
    snprintf(path, sizeof path, "%s/t.h5", dir);
    /* a stale temporary of a process that no longer exists */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(stale, sizeof stale, "%s.tmp-%ld", path, (long)dead);
    touch(stale);
    output_tmp_begin(path, tmp, sizeof tmp);
    TU_ASSERT(!exists(stale), "stale temporary %s left", stale);
    touch(tmp);
    TU_OK(output_tmp_end(tmp, path, RB_OK, &(rb_err){0}), (rb_err){0});
    TU_ASSERT(exists(path) && !exists(tmp), "rename");
    /* SIGTERM removes the registered temporary of the writer it kills */
    int fd[2];
    TU_ASSERT(pipe(fd) == 0, "pipe");
    pid_t child = fork();
    if (child == 0) {
        char t2[1024], p2[600];
        snprintf(p2, sizeof p2, "%s/u.h5", dir);
        output_tmp_begin(p2, t2, sizeof t2);
        touch(t2);
        char kept[1024];
        snprintf(kept, sizeof kept, "%s/kept.tmp-1", dir); /* released: not ours to remove */
        output_tmp_register(kept);
        touch(kept);
        output_tmp_release(kept);
        /* its temporary's name ("<path>.tmp-<pid>-<host>") is the child's to say */
        if (write(fd[1], t2, sizeof t2) != (ssize_t)sizeof t2) _exit(3);
        pause();
        _exit(4);
    }
    char t2[1024], kept[1024];
    size_t got = 0;
    while (got < sizeof t2) {
        ssize_t r = read(fd[0], t2 + got, sizeof t2 - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    TU_ASSERT(got == sizeof t2 && strstr(t2, "/u.h5.tmp-"), "child ready: '%.60s'", t2);
    snprintf(kept, sizeof kept, "%s/kept.tmp-1", dir);
    TU_ASSERT(exists(t2), "the child's temporary %s", t2);
    kill(child, SIGTERM);
    int status;
    waitpid(child, &status, 0);
    TU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %d", status);
    TU_ASSERT(!exists(t2), "SIGTERM left %s", t2);
    TU_ASSERT(exists(kept), "a released name was removed");
    close(fd[0]), close(fd[1]);
}

int main(void) {
    char dir[] = "/tmp/rb-hardening-XXXXXX";
    TU_ASSERT(mkdtemp(dir), "mkdtemp");
    test_ranges();
    test_json();
    test_outputs(dir);
    test_temporaries(dir);
    tu_rmdir(dir);
    return tu_done("test_base_hardening");
}
