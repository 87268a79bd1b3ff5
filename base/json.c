/* json.c: checked JSON parsing (json.h). */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The deepest nesting of arrays and objects in text[0..n), strings skipped. */
static int max_depth(const char *text, size_t n) {
    int depth = 0, best = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > best) best = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return best;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key found twice in an object at or below v ("" when none); where gets its path. */
static const char *find_duplicate(const cJSON *v, char *where, size_t cap) {
    size_t at = strlen(where);
    if (cJSON_IsObject(v)) {
        int n = 0;
        for (const cJSON *c = v->child; c; c = c->next) n++;
        const char **names = rb_malloc(sizeof(char *) * (size_t)(n ? n : 1));
        n = 0;
        for (const cJSON *c = v->child; c; c = c->next) names[n++] = c->string ? c->string : "";
        qsort(names, (size_t)n, sizeof *names, cmp_name);
        const char *dup = NULL;
        for (int i = 1; i < n && !dup; i++)
            if (!strcmp(names[i], names[i - 1])) dup = names[i];
        free(names);
        if (dup) return dup;
    }
    int idx = 0;
    for (const cJSON *c = v->child; c; c = c->next, idx++) {
        if (!cJSON_IsObject(c) && !cJSON_IsArray(c)) continue;
        if (cJSON_IsObject(v)) snprintf(where + at, cap - at, ".%s", c->string ? c->string : "");
        else snprintf(where + at, cap - at, "[%d]", idx);
        const char *dup = find_duplicate(c, where, cap);
        if (dup) return dup;
        where[at] = 0;
    }
    return NULL;
}

rb_status rb_json_parse(const char *text, size_t len, const char *what, cJSON **out, rb_err *e) {
    *out = NULL;
    const char *nul = memchr(text, 0, len);
    if (nul) /* cJSON would stop there and read a shorter text than the file holds */
        return rb_fail(e, RB_EINPUT, what, "a NUL byte at byte %ld", (long)(nul - text));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        if (max_depth(text, off < len ? off + 1 : len) > CJSON_NESTING_LIMIT)
            return rb_fail(e, RB_EINPUT, what, "nested deeper than %d levels", CJSON_NESTING_LIMIT);
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (text[i] == '\n') line++, col = 1;
            else col++;
        }
        return rb_fail(e, RB_EINPUT, what, "broken JSON at line %d, column %d", line, col);
    }
    while ((size_t)(end - text) < len && strchr(" \t\r\n", *end) && *end) end++;
    if ((size_t)(end - text) < len) {
        cJSON_Delete(root);
        return rb_fail(e, RB_EINPUT, what, "text after the JSON value (at byte %ld)",
                       (long)(end - text));
    }
    char where[512] = "$";
    const char *dup = find_duplicate(root, where, sizeof where);
    if (dup) {
        rb_status st = rb_fail(e, RB_EINPUT, what, "duplicate key '%s' in %s", dup, where);
        cJSON_Delete(root);
        return st;
    }
    *out = root;
    return RB_OK;
}

cJSON *rb_json_add_double(cJSON *o, const char *name, double v) {
    char buf[64];
    if (!isfinite(v)) return cJSON_AddNullToObject(o, name); /* JSON has no NaN */
    snprintf(buf, sizeof buf, "%.17g", v);
    cJSON *x = cJSON_CreateRaw(buf);
    if (x && !cJSON_AddItemToObject(o, name, x)) {
        cJSON_Delete(x);
        return NULL;
    }
    return x;
}
