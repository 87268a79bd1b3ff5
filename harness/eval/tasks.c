/* tasks.c: reading graded task files (tasks.h). Lines are read into a bounded buffer, so a
 * 10 MB line is refused without holding it. */
#define _POSIX_C_SOURCE 200809L
#include "tasks.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

int utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        int len;
        unsigned min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) len = 2, min = 0x80, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0) len = 3, min = 0x800, c &= 0x0F;
        else if ((c & 0xF8) == 0xF0) len = 4, min = 0x10000, c &= 0x07;
        else return 0;
        if (i + (size_t)len > n) return 0;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        i += (size_t)len;
    }
    return 1;
}

/* "file:line" into what. */
static rb_status line_fail(rb_err *e, const char *path, int line, const char *fmt, const char *a) {
    char what[300];
    snprintf(what, sizeof what, "%s:%d", path, line);
    return rb_fail(e, RB_EINPUT, what, fmt, a);
}

static const char *field_string(const cJSON *o, const char *key, int *present) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    *present = x != NULL;
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* The gold answer of a line: a number, a string "... #### N", or a string holding one
 * number. */
static rb_status read_answer(const cJSON *a, const char *path, int line, answer_value *v,
                             rb_err *e) {
    if (!a) return line_fail(e, path, line, "%s: missing", "answer");
    if (cJSON_IsNumber(a)) {
        char buf[64];
        /* the JSON text as written would be better; cJSON keeps only the double */
        snprintf(buf, sizeof buf, "%.17g", a->valuedouble);
        if (!answer_parse(buf, v))
            return line_fail(e, path, line, "%s: not a number raasbench can grade exactly", "answer");
        return RB_OK;
    }
    if (!cJSON_IsString(a)) return line_fail(e, path, line, "%s: must be a string or a number", "answer");
    const char *s = a->valuestring, *h = strstr(s, "####");
    if (h) {
        const char *last;
        while ((last = strstr(h + 4, "####"))) h = last;
        if (!answer_parse(h + 4, v))
            return line_fail(e, path, line, "%s: the text after #### is not one number", "answer");
        return RB_OK;
    }
    if (!answer_parse(s, v)) return line_fail(e, path, line, "%s: not one number", "answer");
    return RB_OK;
}

static rb_status parse_line(const char *text, size_t len, const char *path, int line, task *t,
                            rb_err *e) {
    if (!utf8_valid(text, len)) return line_fail(e, path, line, "%s", "not valid UTF-8");
    cJSON *o;
    rb_err je = {0};
    /* rb_json_parse: duplicate keys at any depth, nesting too deep, trailing text */
    if (rb_json_parse(text, len, path, &o, &je))
        return line_fail(e, path, line, "%s", strncmp(je.why, "broken JSON", 11)
                                                 ? je.why : "not JSON (one object per line)");
    rb_status s = RB_OK;
    if (!cJSON_IsObject(o)) s = line_fail(e, path, line, "%s", "not a JSON object");
    int has_id, has_prompt, has_q;
    const char *id = s ? NULL : field_string(o, "id", &has_id);
    const char *prompt = s ? NULL : field_string(o, "prompt", &has_prompt);
    const char *question = s ? NULL : field_string(o, "question", &has_q);
    if (!s && has_id && !id) s = line_fail(e, path, line, "%s: must be a string", "id");
    if (!s && has_prompt && !prompt) s = line_fail(e, path, line, "%s: must be a string", "prompt");
    if (!s && has_q && !question) s = line_fail(e, path, line, "%s: must be a string", "question");
    if (!s && has_prompt == has_q)
        s = line_fail(e, path, line, "%s: give exactly one of them", "prompt/question");
    if (!s && ((prompt && !*prompt) || (question && !*question)))
        s = line_fail(e, path, line, "%s: empty", prompt ? "prompt" : "question");
    if (!s) s = read_answer(cJSON_GetObjectItemCaseSensitive(o, "answer"), path, line, &t->gold, e);
    if (!s) {
        char num[16];
        snprintf(num, sizeof num, "%d", line);
        t->id = rb_strdup(id ? id : num);
        t->prompt = prompt ? rb_strdup(prompt) : NULL;
        t->question = question ? rb_strdup(question) : NULL;
        t->line = line;
    }
    cJSON_Delete(o);
    return s;
}

rb_status tasks_read(const char *path, int limit, task_set *out, rb_err *e) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return rb_fail(e, RB_EINPUT, path, "%s", strerror(errno));
    /* The line buffer grows to the longest line (at most TASKS_MAX_LINE): most files'
     * lines are short, and a fresh MiB per call was most of the cost of reading one. */
    size_t buf_cap = 4096;
    char *buf = rb_malloc(buf_cap + 1);
    int cap = 0, line = 0;
    rb_status s = RB_OK;
    for (int c = 0; !s && c != EOF && (limit <= 0 || out->n < limit);) {
        /* one line, NUL bytes included (a NUL is not valid in JSON text: refused below) */
        size_t len = 0;
        int too_long = 0;
        while ((c = getc(f)) != EOF && c != '\n') {
            if (len == TASKS_MAX_LINE) {
                too_long = 1;
                continue;
            }
            if (len == buf_cap) {
                buf_cap = 2 * buf_cap < TASKS_MAX_LINE ? 2 * buf_cap : TASKS_MAX_LINE;
                buf = rb_realloc(buf, buf_cap + 1);
            }
            buf[len++] = (char)c;
        }
        if (c == EOF && len == 0 && !too_long) break;
        line++;
        if (too_long) {
            s = line_fail(e, path, line, "%s", "line longer than 1 MiB");
            break;
        }
        buf[len] = 0;
        if (memchr(buf, 0, len)) {
            s = line_fail(e, path, line, "%s", "a NUL byte in the line");
            break;
        }
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = 0;
        size_t sp = 0;
        while (sp < len && (buf[sp] == ' ' || buf[sp] == '\t')) sp++;
        if (sp == len) continue; /* blank line */
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            out->t = rb_realloc(out->t, sizeof(task) * (size_t)cap);
        }
        task *t = &out->t[out->n];
        memset(t, 0, sizeof *t);
        if ((s = parse_line(buf, len, path, line, t, e))) break;
        out->n++;
        for (int i = 0; i < out->n - 1; i++)
            if (!strcmp(out->t[i].id, t->id)) {
                char msg[200];
                snprintf(msg, sizeof msg, "id \"%.100s\": also on line %d", t->id, out->t[i].line);
                s = line_fail(e, path, line, "%s", msg);
                break;
            }
    }
    if (!s && ferror(f)) s = rb_fail(e, RB_EINPUT, path, "read error");
    fclose(f);
    free(buf);
    if (!s && out->n == 0) s = rb_fail(e, RB_EINPUT, path, "no tasks in the file");
    if (s) {
        tasks_free(out);
        return s;
    }
    out->path = rb_strdup(path);
    return RB_OK;
}

void tasks_free(task_set *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].id), free(s->t[i].prompt), free(s->t[i].question);
    free(s->t), free(s->path);
    memset(s, 0, sizeof *s);
}

char *tasks_prompt(const task *t, const char *template_text) {
    if (t->prompt) return rb_strdup(t->prompt);
    if (!template_text) return rb_strdup(t->question);
    const char *mark = "{question}";
    size_t ml = strlen(mark), ql = strlen(t->question), n = 0;
    for (const char *p = template_text; (p = strstr(p, mark)); p += ml) n++;
    char *out = rb_malloc(strlen(template_text) + n * ql + 1), *o = out;
    for (const char *p = template_text;;) {
        const char *m = strstr(p, mark);
        size_t chunk = m ? (size_t)(m - p) : strlen(p);
        memcpy(o, p, chunk), o += chunk;
        if (!m) break;
        memcpy(o, t->question, ql), o += ql;
        p = m + ml;
    }
    *o = 0;
    return out;
}
