/* test_answer.c: answer extraction, normalisation and the completeness rule (answer.h),
 * on hand-written cases whose expected values are worked out by hand. */
#include <stdio.h>
#include <string.h>

#include "answer.h"

static int failures;

static void expect_extract(const char *text, answer_source want_src, const char *want) {
    answer_value v = {0, 1};
    answer_source src = answer_extract(text, strlen(text), &v, NULL);
    char got[64] = "";
    if (src != ANSWER_NONE) answer_format(v, got, sizeof got);
    if (src != want_src || (want && strcmp(got, want))) {
        printf("FAIL extract(\"%s\"): source %d value %s, want source %d value %s\n", text,
               (int)src, got, (int)want_src, want ? want : "-");
        failures++;
    }
}

static void expect_parse(const char *s, int ok, const char *want) {
    answer_value v = {0, 1};
    int got_ok = answer_parse(s, &v);
    char got[64] = "";
    if (got_ok) answer_format(v, got, sizeof got);
    if (got_ok != ok || (ok && strcmp(got, want))) {
        printf("FAIL parse(\"%s\"): ok %d value %s, want ok %d value %s\n", s, got_ok, got, ok,
               want ? want : "-");
        failures++;
    }
}

static void expect_complete(const char *text, int complete) {
    size_t at = answer_complete(text, strlen(text));
    if ((at != 0) != complete) {
        printf("FAIL complete(\"%s\") = %zu, want %s\n", text, at, complete ? "complete" : "0");
        failures++;
    }
}

int main(void) {
    /* marker first, then ####, then the last number */
    expect_extract("a = 3\nb = 5\nThe answer is 8.\n\nProblem: 12", ANSWER_MARKED, "8");
    expect_extract("so THE ANSWER IS: $1,234.50 dollars", ANSWER_MARKED, "1234.5");
    expect_extract("She makes 9 * 2 = $18 every day.\n#### 18", ANSWER_HASHES, "18");
    expect_extract("#### -7", ANSWER_HASHES, "-7");
    expect_extract("it is 3, then 4, and finally 12.", ANSWER_LAST, "12");
    expect_extract("no number here", ANSWER_NONE, NULL);
    expect_extract("The answer is unknown, maybe 4", ANSWER_LAST, "4");
    expect_extract("The answer is 7/2", ANSWER_MARKED, "3.5");
    expect_extract("The answer is 2/3.", ANSWER_MARKED, "2/3");
    expect_extract("The answer is 6/4", ANSWER_MARKED, "1.5");
    expect_extract("The answer is 50%.", ANSWER_MARKED, "50");
    expect_extract("x2 and y3 are names; the value is 10", ANSWER_LAST, "10");
    expect_extract("pay 1,000,000 now", ANSWER_LAST, "1000000");
    expect_extract("list 1,23", ANSWER_LAST, "23");      /* not a thousands group */
    expect_extract("version 3.14.15", ANSWER_LAST, "3.14"); /* a second '.' ends it */

    expect_parse("42", 1, "42");
    expect_parse(" +5 ", 1, "5");
    expect_parse("-0", 1, "0");
    expect_parse("3.50", 1, "3.5");
    expect_parse("0.125", 1, "0.125");
    expect_parse("-1/3", 1, "-1/3");
    expect_parse("007", 1, "7");
    expect_parse("1,234", 1, "1234");
    expect_parse("1/0", 0, NULL);
    expect_parse("12a", 0, NULL);
    expect_parse("", 0, NULL);
    expect_parse("1234567890123456789", 0, NULL); /* 19 significant digits */
    expect_parse("123456789012345678", 1, "123456789012345678");

    /* equal values in different spellings grade equal */
    answer_value a, b;
    if (!answer_parse("3.5", &a) || !answer_parse("7/2", &b) || !answer_equal(a, b)) {
        printf("FAIL 3.5 != 7/2\n");
        failures++;
    }
    if (!answer_parse("18", &a) || !answer_parse("18.00", &b) || !answer_equal(a, b)) {
        printf("FAIL 18 != 18.00\n");
        failures++;
    }

    expect_complete("The answer is 16", 0);   /* more digits may follow */
    expect_complete("The answer is 16.", 0);  /* a decimal may follow */
    expect_complete("The answer is 16.\n", 1);
    expect_complete("The answer is 16\n", 1);
    expect_complete("The answer is 1.5 apples", 1);
    expect_complete("#### 72\n", 1);
    expect_complete("b = 5\nc = 7\n", 0);

    printf("%s\n", failures ? "test_answer: FAILED" : "test_answer: all cases pass");
    return failures ? 1 : 0;
}
