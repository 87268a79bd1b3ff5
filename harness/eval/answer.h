/* answer.h: extracting and grading the final answer of a generated solution (docs/DESIGN.md
 * §9). Exact grading: both sides are parsed to exact rationals and compared.
 *
 * Extraction, in this order:
 *   1. the number after the first "The answer is" (any case, optional ':' and '$'), or
 *   2. the number after the first "####" (GSM8K's own marker), or
 *   3. the last number of the text.
 * A number is [sign][$]digits[,ddd]...[.digits][/digits] (a simple fraction), optionally
 * followed by '%'. Thousands commas are dropped ("1,234" = 1234); a trailing sentence period
 * is not a decimal point ("is 12." = 12); "+5" = 5; "-0" = 0; "3.50" = 3.5 = 7/2; "6/4" =
 * 3/2. Numbers beyond 18 significant digits, or fractions with a zero denominator, are not
 * numbers. */
#ifndef ANSWER_H
#define ANSWER_H

#include <stddef.h>
#include <stdint.h>

/* An exact rational, reduced, den > 0. */
typedef struct answer_value {
    int64_t num, den;
} answer_value;

typedef enum {
    ANSWER_NONE = 0,   /* no number found */
    ANSWER_MARKED = 1, /* after "The answer is" */
    ANSWER_HASHES = 2, /* after "####" */
    ANSWER_LAST = 3,   /* the last number of the text */
} answer_source;

/* Find the answer in text[0..n). Returns its source (ANSWER_NONE: *v untouched). When
 * span is not NULL, span[0..1] receive the byte range of the number in the text. */
answer_source answer_extract(const char *text, size_t n, answer_value *v, size_t span[2]);

/* Parse a whole string as one number (surrounding spaces allowed). 1 on success. */
int answer_parse(const char *s, answer_value *v);

/* Canonical text: "42", "-3.5" when the decimal expansion ends, else "7/3". buf >= 48. */
void answer_format(answer_value v, char *buf, size_t cap);

/* 1 if equal. */
static inline int answer_equal(answer_value a, answer_value b) {
    return a.num == b.num && a.den == b.den;
}

/* Whether a generated text already holds a complete marked answer: "The answer is" (or
 * "####") followed by a number and then a character that cannot continue it (a newline, a
 * space, or '.' not followed by a digit). Decoding stops there. Returns the byte offset just
 * past the number, 0 when not complete. */
size_t answer_complete(const char *text, size_t n);

#endif
