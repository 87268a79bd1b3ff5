/* answer.c: answer extraction and exact grading (answer.h). */
#include "answer.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MAX_DIGITS 18 /* 10^18 < 2^63: products of two such parts are checked below */

static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a ? a : 1;
}

static answer_value reduce(int64_t num, int64_t den) {
    int64_t g = gcd64(num, den);
    return (answer_value){num / g, den / g};
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parse a number starting at s[i] (i < n); on success fill v and *end (one past it). The
 * caller has checked that a number may start here. */
static int parse_at(const char *s, size_t n, size_t i, answer_value *v, size_t *end) {
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i] == '-', i++;
    if (i < n && s[i] == '$') i++;
    if (i >= n || !is_digit(s[i])) return 0;
    int64_t num = 0, den = 1;
    int digits = 0; /* significant digits so far (leading zeros carry nothing) */
    for (;;) {
        while (i < n && is_digit(s[i])) {
            if ((digits || s[i] != '0') && ++digits > MAX_DIGITS) return 0;
            num = num * 10 + (s[i] - '0');
            i++;
        }
        /* "1,234": a comma then exactly three digits continues the integer part */
        if (i + 3 < n && s[i] == ',' && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
            is_digit(s[i + 3]) && !(i + 4 < n && is_digit(s[i + 4]))) {
            i++;
            continue;
        }
        break;
    }
    /* A decimal point needs a digit after it ("is 12." ends a sentence). */
    if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1])) {
        i++;
        while (i < n && is_digit(s[i])) {
            if ((digits || s[i] != '0') && ++digits > MAX_DIGITS) return 0;
            if (den > INT64_MAX / 10) return 0;
            num = num * 10 + (s[i] - '0'), den *= 10;
            i++;
        }
    }
    /* A simple fraction: digits only after the slash. */
    if (i + 1 < n && s[i] == '/' && is_digit(s[i + 1])) {
        int64_t d2 = 0;
        int dd = 0;
        i++;
        while (i < n && is_digit(s[i])) {
            if (++dd > MAX_DIGITS) return 0;
            d2 = d2 * 10 + (s[i] - '0');
            i++;
        }
        if (d2 == 0) return 0;
        /* num/den / d2: den * d2 must not overflow */
        if (den > INT64_MAX / d2) return 0;
        den *= d2;
    }
    if (i < n && s[i] == '%') i++;
    *v = reduce(neg ? -num : num, den);
    *end = i;
    return 1;
}

/* Where a number may start: a digit, or a sign and/or '$' directly before one, and not
 * inside a word or another number (the character before is no digit, letter or '.'). */
static int number_starts(const char *s, size_t n, size_t i) {
    if (i > 0) {
        char b = s[i - 1];
        if (is_digit(b) || isalpha((unsigned char)b) || b == '.') return 0;
    }
    size_t j = i;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    if (j < n && s[j] == '$') j++;
    return j < n && is_digit(s[j]);
}

/* The first number at or after s[i], skipping spaces, ':' and '$' only. */
static int number_after(const char *s, size_t n, size_t i, answer_value *v, size_t span[2]) {
    while (i < n && (s[i] == ' ' || s[i] == ':' || s[i] == '\t')) i++;
    size_t end;
    if (i < n && number_starts(s, n, i) && parse_at(s, n, i, v, &end)) {
        if (span) span[0] = i, span[1] = end;
        return 1;
    }
    return 0;
}

static const char *find_ci(const char *s, size_t n, const char *pat) {
    size_t m = strlen(pat);
    for (size_t i = 0; i + m <= n; i++) {
        size_t k = 0;
        while (k < m && tolower((unsigned char)s[i + k]) == tolower((unsigned char)pat[k])) k++;
        if (k == m) return s + i;
    }
    return NULL;
}

static const char marker[] = "the answer is";

answer_source answer_extract(const char *text, size_t n, answer_value *v, size_t span[2]) {
    const char *p = find_ci(text, n, marker);
    if (p && number_after(text, n, (size_t)(p - text) + sizeof marker - 1, v, span))
        return ANSWER_MARKED;
    p = find_ci(text, n, "####");
    if (p && number_after(text, n, (size_t)(p - text) + 4, v, span)) return ANSWER_HASHES;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        size_t end;
        answer_value x;
        if (number_starts(text, n, i) && parse_at(text, n, i, &x, &end)) {
            *v = x, found = 1;
            if (span) span[0] = i, span[1] = end;
            i = end - 1;
        }
    }
    return found ? ANSWER_LAST : ANSWER_NONE;
}

int answer_parse(const char *s, answer_value *v) {
    size_t n = strlen(s), i = 0, end;
    while (i < n && isspace((unsigned char)s[i])) i++;
    while (n > i && isspace((unsigned char)s[n - 1])) n--;
    if (i >= n || !number_starts(s, n, i) || !parse_at(s, n, i, v, &end)) return 0;
    return end == n;
}

void answer_format(answer_value v, char *buf, size_t cap) {
    int64_t d = v.den;
    while (d % 2 == 0) d /= 2;
    while (d % 5 == 0) d /= 5;
    if (v.den == 1) {
        snprintf(buf, cap, "%lld", (long long)v.num);
    } else if (d == 1) {
        /* a terminating decimal: scale to a power of ten */
        int64_t num = v.num < 0 ? -v.num : v.num, den = v.den, scale = 1;
        int places = 0;
        while (scale % den != 0) scale *= 10, places++;
        int64_t frac = num % den * (scale / den);
        snprintf(buf, cap, "%s%lld.%0*lld", v.num < 0 ? "-" : "", (long long)(num / den), places,
                 (long long)frac);
    } else {
        snprintf(buf, cap, "%lld/%lld", (long long)v.num, (long long)v.den);
    }
}

size_t answer_complete(const char *text, size_t n) {
    const char *p = find_ci(text, n, marker);
    size_t at;
    if (p) at = (size_t)(p - text) + sizeof marker - 1;
    else if ((p = find_ci(text, n, "####"))) at = (size_t)(p - text) + 4;
    else return 0;
    answer_value v;
    size_t span[2];
    if (!number_after(text, n, at, &v, span)) return 0;
    size_t e = span[1];
    if (e >= n) return 0; /* the number may go on */
    char c = text[e];
    if (c == '.' || c == ',' || c == '/') {
        if (e + 1 >= n) return 0;
        return is_digit(text[e + 1]) ? 0 : e;
    }
    return e;
}
