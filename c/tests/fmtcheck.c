/*
 * fmtcheck - reads lines "p PRICE SCALE" and "t NANOSECONDS" on stdin and
 * prints mdj_format_price / mdj_format_time of each, one line per input, for
 * the Go test to compare with journal.FormatPrice and time.Format.
 */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <stdio.h>
#include <stdlib.h>

int main(void) {
    char line[256], out[MDJ_PRICE_BUF > MDJ_TIME_BUF ? MDJ_PRICE_BUF : MDJ_TIME_BUF];
    while (fgets(line, sizeof line, stdin)) {
        long long a;
        long b;
        if (sscanf(line, "p %lld %ld", &a, &b) == 2)
            mdj_format_price(out, sizeof out, (int64_t)a, (int32_t)b);
        else if (sscanf(line, "t %lld", &a) == 1)
            mdj_format_time(out, sizeof out, (int64_t)a);
        else
            return 2;
        puts(out);
    }
    return 0;
}
