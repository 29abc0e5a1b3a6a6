/* snap - a C reader of the snapshot file (format.md §11) driven by c_test.go.
 *
 *   snap read PATH ID...           print each instrument's book (one line each)
 *   snap watch PATH FINAL ID...    read the ids round-robin until every one
 *                                  shows seq >= FINAL; print a line for every
 *                                  copy whose seq differs from the previous
 *                                  copy of that id ("ready" first)
 *   snap lookup PATH SYMBOL        print the id, or "none"
 *   snap pause PATH ID             open, print "open", wait for a line on
 *                                  stdin, then read ID (truncation test)
 *
 * Options before the command: -stall MS (stall timeout).
 * A failure prints "error CODE KIND OFFSET FILE: REASON" and exits 1.
 */
#include "mdjournal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const mdj_error *e) {
    printf("error %d %s %lld %s: %s\n", e->code, mdj_kind(e->code), (long long)e->offset, e->file, e->reason);
    exit(1);
}

static void print_book(const mdj_snap_book *b) {
    uint32_t i;
    printf("id=%u seq=%llu ts=%lld scale=%d sym=%s trade=%lld/%lld/%lld bids=", b->instrument,
           (unsigned long long)b->seq, (long long)b->ts, b->price_scale, b->symbol, (long long)b->trade_price,
           (long long)b->trade_qty, (long long)b->trade_ts);
    for (i = 0; i < b->bid_count; i++) printf("%s%lld@%lld", i ? "," : "", (long long)b->bids[i].qty, (long long)b->bids[i].price);
    printf(" asks=");
    for (i = 0; i < b->ask_count; i++) printf("%s%lld@%lld", i ? "," : "", (long long)b->asks[i].qty, (long long)b->asks[i].price);
    printf("\n");
}

int main(int argc, char **argv) {
    mdj_snap_options o;
    mdj_snap *s;
    mdj_error e;
    static mdj_snap_book b;
    int a = 1;
    memset(&o, 0, sizeof o);
    if (a + 1 < argc && strcmp(argv[a], "-stall") == 0) {
        o.stall_timeout_ns = strtoll(argv[a + 1], NULL, 10) * 1000000;
        a += 2;
    }
    if (argc < a + 2) {
        fprintf(stderr, "usage: snap [-stall MS] read|watch|lookup|pause PATH ...\n");
        return 2;
    }
    if (mdj_snap_open(&s, argv[a + 1], &o, &e) != MDJ_OK) fail(&e);
    if (strcmp(argv[a], "read") == 0) {
        int i;
        for (i = a + 2; i < argc; i++) {
            if (mdj_snap_read(s, (uint32_t)strtoul(argv[i], NULL, 10), &b, &e) != MDJ_OK) fail(&e);
            print_book(&b);
        }
    } else if (strcmp(argv[a], "watch") == 0) {
        uint64_t final = strtoull(argv[a + 2], NULL, 10), last[64];
        int n = argc - (a + 3), i, done = 0;
        if (n < 1 || n > 64) return 2;
        memset(last, 0xff, sizeof last);
        printf("ready\n");
        fflush(stdout);
        while (done < n) {
            done = 0;
            for (i = 0; i < n; i++) {
                if (mdj_snap_read(s, (uint32_t)strtoul(argv[a + 3 + i], NULL, 10), &b, &e) != MDJ_OK) fail(&e);
                if (b.seq != last[i]) {
                    print_book(&b);
                    last[i] = b.seq;
                }
                if (b.seq >= final) done++;
            }
        }
    } else if (strcmp(argv[a], "lookup") == 0) {
        uint32_t id;
        int rc = mdj_snap_lookup(s, argv[a + 2], &id, &e);
        if (rc < 0) fail(&e);
        if (rc == 1)
            printf("%u\n", id);
        else if (e.code != MDJ_OK)
            fail(&e);
        else
            printf("none\n");
    } else if (strcmp(argv[a], "pause") == 0) {
        char line[16];
        printf("open\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) return 2;
        if (mdj_snap_read(s, (uint32_t)strtoul(argv[a + 2], NULL, 10), &b, &e) != MDJ_OK) fail(&e);
        print_book(&b);
    } else {
        return 2;
    }
    printf("last_applied=%llu writer_pid=%s journal_id=%llu depth=%u capacity=%u\n",
           (unsigned long long)mdj_snap_last_applied(s), mdj_snap_writer_pid(s) ? "set" : "0",
           (unsigned long long)mdj_snap_journal_id(s), mdj_snap_depth(s), mdj_snap_capacity(s));
    mdj_snap_close(s);
    return 0;
}
