/* tasks.h: graded task files (JSONL) for `raasbench eval` (docs/DESIGN.md §9).
 *
 * One JSON object per line:
 *   id        string, optional: defaults to the line number ("12"); unique in the file
 *   prompt    string: the text the model continues, used as it is; or
 *   question  string: put into the prompt template at "{question}" (GSM8K's own field)
 *   answer    string or number: the exact answer. A string ending in "#### N" (GSM8K's own
 *             lines) means N; any other string must be one number as answer_parse reads it.
 * Other keys are ignored. Blank lines are skipped. Refused, naming file:line and the field:
 * a line that is not one JSON object, invalid UTF-8, a line over TASKS_MAX_LINE bytes, a
 * duplicate key, a missing or mistyped field, both or neither of prompt and question, an
 * answer that is not a number, a duplicate id; a file with no task. */
#ifndef TASKS_H
#define TASKS_H

#include "answer.h"
#include "rb.h"

#define TASKS_MAX_LINE (1 << 20) /* bytes per line */

typedef struct task {
    char *id;
    char *prompt;   /* NULL when the line gives a question */
    char *question; /* NULL when the line gives a prompt */
    answer_value gold;
    int line;       /* 1-based line in the file */
} task;

typedef struct task_set {
    int n;
    task *t;
    char *path;
} task_set;

/* Read every task (limit > 0: only the first `limit`). */
rb_status tasks_read(const char *path, int limit, task_set *out, rb_err *e);
void tasks_free(task_set *s);

/* The prompt of a task: its own prompt, or the template with "{question}" replaced by the
 * question (template NULL: the question alone). malloc'd. */
char *tasks_prompt(const task *t, const char *template_text);

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
int utf8_valid(const char *s, size_t n);

#endif
