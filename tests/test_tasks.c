/* test_tasks.c: the task file reader (tasks.h): good files in both forms (prompt + number,
 * GSM8K's question + "#### N"), every refusal the header lists, each naming file:line and
 * the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tasks.h"

static int failures;
static char path[64];

static void write_file(const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Expect a refusal whose `what` ends in ":<line>" and whose why contains `why`. */
static void expect_refused(const char *name, const char *data, size_t n, int line,
                           const char *why) {
    write_file(data, n);
    task_set s;
    rb_err e = {0};
    rb_status st = tasks_read(path, 0, &s, &e);
    char want_what[96];
    snprintf(want_what, sizeof want_what, "%s:%d", path, line);
    if (st != RB_EINPUT || (line > 0 && strcmp(e.what, want_what)) || !strstr(e.why, why)) {
        printf("FAIL %s: status %d what '%s' why '%s' (want '%s', '%s')\n", name, (int)st, e.what,
               e.why, line > 0 ? want_what : path, why);
        failures++;
    }
    if (st == RB_OK) tasks_free(&s);
}
#define REFUSED(name, text, line, why) expect_refused(name, text, sizeof text - 1, line, why)

int main(void) {
    snprintf(path, sizeof path, "/tmp/raasbench-test-tasks-%d.jsonl", (int)getpid());
    const char good[] =
        "{\"id\": \"t1\", \"prompt\": \"1+1=\", \"answer\": 2}\n"
        "\n"
        "{\"question\": \"Janet has 16 eggs\", \"answer\": \"16 - 3 = <<16-3=13>>13\\n#### 1,300\"}\n"
        "{\"id\": \"t3\", \"prompt\": \"half?\", \"answer\": \"3.50\", \"extra\": [1, 2]}\n";
    write_file(good, sizeof good - 1);
    task_set s;
    rb_err e = {0};
    if (tasks_read(path, 0, &s, &e) != RB_OK || s.n != 3) {
        printf("FAIL good file: %s: %s (n %d)\n", e.what, e.why, s.n);
        return 1;
    }
    char buf[48];
    answer_format(s.t[1].gold, buf, sizeof buf);
    if (strcmp(s.t[0].id, "t1") || strcmp(s.t[1].id, "3") || strcmp(buf, "1300") ||
        s.t[0].gold.num != 2 || s.t[2].gold.num != 7 || s.t[2].gold.den != 2 ||
        s.t[1].prompt || strcmp(s.t[1].question, "Janet has 16 eggs")) {
        printf("FAIL good file contents\n");
        failures++;
    }
    char *p = tasks_prompt(&s.t[1], "Q: {question}\nA: ({question})");
    if (strcmp(p, "Q: Janet has 16 eggs\nA: (Janet has 16 eggs)")) {
        printf("FAIL template: %s\n", p);
        failures++;
    }
    free(p);
    tasks_free(&s);
    if (tasks_read(path, 2, &s, &e) != RB_OK || s.n != 2) {
        printf("FAIL --limit 2 read %d tasks\n", s.n);
        failures++;
    } else {
        tasks_free(&s);
    }

    REFUSED("empty", "", 0, "no tasks");
    REFUSED("blank only", "\n  \n", 0, "no tasks");
    REFUSED("not json", "{\"prompt\": \"a\", \"answer\": 1}\nnot json\n", 2, "not JSON");
    REFUSED("array", "[1, 2]\n", 1, "not a JSON object");
    REFUSED("trailing", "{\"prompt\": \"a\", \"answer\": 1} x\n", 1, "text after");
    REFUSED("missing answer", "{\"prompt\": \"a\"}\n", 1, "answer: missing");
    REFUSED("answer not number", "{\"prompt\": \"a\", \"answer\": \"many\"}\n", 1, "answer: not one number");
    REFUSED("answer object", "{\"prompt\": \"a\", \"answer\": {}}\n", 1, "answer: must be");
    REFUSED("hashes not number", "{\"question\": \"a\", \"answer\": \"x #### y\"}\n", 1, "after ####");
    REFUSED("both", "{\"prompt\": \"a\", \"question\": \"b\", \"answer\": 1}\n", 1, "exactly one");
    REFUSED("neither", "{\"id\": \"a\", \"answer\": 1}\n", 1, "exactly one");
    REFUSED("prompt type", "{\"prompt\": 5, \"answer\": 1}\n", 1, "prompt: must be a string");
    REFUSED("id type", "{\"id\": 5, \"prompt\": \"a\", \"answer\": 1}\n", 1, "id: must be a string");
    REFUSED("duplicate key", "{\"prompt\": \"a\", \"answer\": 1, \"answer\": 2}\n", 1, "duplicate key 'answer' in $");
    REFUSED("duplicate id", "{\"id\": \"x\", \"prompt\": \"a\", \"answer\": 1}\n{\"id\": \"x\", \"prompt\": \"b\", \"answer\": 2}\n", 2, "also on line 1");
    REFUSED("invalid utf-8", "{\"prompt\": \"caf\xc3\", \"answer\": 1}\n", 1, "UTF-8");
    REFUSED("overlong utf-8", "{\"prompt\": \"\xc0\xaf\", \"answer\": 1}\n", 1, "UTF-8");
    REFUSED("nul byte", "{\"prompt\": \"a\", \"answer\": 1}\0\n", 1, "NUL");
    {
        size_t n = 10u << 20;
        char *big = malloc(n + 64);
        strcpy(big, "{\"prompt\": \"");
        memset(big + 12, 'a', n);
        strcpy(big + 12 + n, "\", \"answer\": 1}\n");
        expect_refused("10 MB line", big, strlen(big), 1, "longer than 1 MiB");
        free(big);
    }
    {
        /* Lines longer than the reader's first buffer (it grows): a 300 KB prompt after a
         * short line, and a line of exactly TASKS_MAX_LINE bytes, are read whole. */
        size_t n = 300000, lim = TASKS_MAX_LINE, head = strlen("{\"prompt\": \"");
        const char *tail = "\", \"answer\": 1}";
        char *big = malloc(lim + 128);
        int len = sprintf(big, "{\"prompt\": \"a\", \"answer\": 2}\n{\"prompt\": \"");
        memset(big + len, 'b', n);
        len += (int)n + sprintf(big + len + n, "%s\n", tail);
        write_file(big, (size_t)len);
        rb_err e3 = {0};
        task_set s3;
        if (tasks_read(path, 0, &s3, &e3) != RB_OK || s3.n != 2 || strlen(s3.t[1].prompt) != n ||
            s3.t[1].prompt[n - 1] != 'b' || s3.t[1].line != 2) {
            printf("FAIL 300 KB line: %s\n", e3.why);
            failures++;
        } else {
            tasks_free(&s3);
        }
        size_t fill = lim - head - strlen(tail); /* the line, without its newline: lim bytes */
        memcpy(big, "{\"prompt\": \"", head);
        memset(big + head, 'c', fill);
        sprintf(big + head + fill, "%s\n", tail);
        write_file(big, lim + 1);
        if (tasks_read(path, 0, &s3, &e3) != RB_OK || strlen(s3.t[0].prompt) != fill) {
            printf("FAIL line of exactly TASKS_MAX_LINE bytes: %s\n", e3.why);
            failures++;
        } else {
            tasks_free(&s3);
        }
        big[head] = 'd'; /* one byte more: refused */
        memmove(big + head + 1, big + head, lim + 1 - head);
        expect_refused("TASKS_MAX_LINE + 1 bytes", big, lim + 2, 1, "longer than 1 MiB");
        free(big);
    }
    rb_err e2 = {0};
    if (tasks_read("/nonexistent/tasks.jsonl", 0, &s, &e2) != RB_EINPUT) {
        printf("FAIL missing file accepted\n");
        failures++;
    }
    unlink(path);
    printf("%s\n", failures ? "test_tasks: FAILED" : "test_tasks: every case as expected");
    return failures ? 1 : 0;
}
