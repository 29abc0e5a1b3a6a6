/*
 * noalloc - the reader's hot path allocates nothing. malloc, calloc, realloc
 * and free are interposed (glibc's __libc_* underneath), so every allocation
 * in the process is counted, libc's own included. After a first frames'
 * warm-up (the catalogue holds the instruments), reading every other frame
 * of DIR - rolls to new segments included - and decoding and formatting
 * each must not allocate.
 *
 * usage: noalloc DIR     exit 0 and "ok: N frames, R rolls, 0 allocations"
 */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <inttypes.h>
#include <stdio.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static volatile long allocs;

void *malloc(size_t n) {
    allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    allocs++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    allocs++;
    return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }

int main(int argc, char **argv) {
    mdj_reader *r;
    mdj_error err;
    mdj_frame f;
    mdj_reader_stats st;
    long before;
    uint64_t n = 0;
    int rc, i;
    char buf[MDJ_PRICE_BUF];
    if (argc != 2) return 2;
    if (mdj_reader_open(&r, argv[1], NULL, &err)) {
        fprintf(stderr, "open: %s\n", err.reason);
        return 1;
    }
    for (i = 0; i < 100; i++)
        if (mdj_reader_try_next(r, &f) != 1) return 1;
    before = allocs;
    if (before == 0) { /* opening a reader allocates: the counter must have seen it */
        fprintf(stderr, "FAIL: malloc interposition saw nothing\n");
        return 1;
    }
    while ((rc = mdj_reader_try_next(r, &f)) == 1) {
        mdj_trade t;
        if (f.type == MDJ_TYPE_TRADE && mdj_decode_trade(f.payload, f.payload_len, &t) == 0)
            mdj_catalog_format_price(mdj_reader_catalog(r), f.instrument, t.price, buf, sizeof buf);
        mdj_format_time(buf, sizeof buf, f.ts);
        n++;
    }
    rc = rc < 0 ? 1 : 0;
    /* Waiting allocates nothing either (one back-off round, nothing comes). */
    if (!rc && mdj_reader_next(r, &f, 2000000) != 0) rc = 1;
    mdj_reader_stats_get(r, &st);
    if (allocs != before || st.rolls == 0) {
        fprintf(stderr, "FAIL: %ld allocations over %" PRIu64 " frames and %" PRIu64 " rolls\n", allocs - before, n,
                st.rolls);
        return 1;
    }
    printf("ok: %" PRIu64 " frames, %" PRIu64 " rolls, 0 allocations\n", n, st.rolls);
    mdj_reader_close(r);
    return rc;
}
