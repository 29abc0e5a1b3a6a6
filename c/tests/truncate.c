/*
 * truncate - a file truncated under a reader is an error, not a crash.
 *
 * usage: truncate seg DIR [--no-guard]
 *   Reads a few frames of DIR's first segment, truncates that segment file to
 *   8192 bytes (a real ftruncate, under the live mapping), and keeps reading:
 *   the reader must fail with MDJ_ERR_TRUNCATED naming the segment and an
 *   offset in [8192, 8192 + 65536), and keep failing (errors are sticky).
 *   With --no-guard the SIGBUS guard is off: the process must die of SIGBUS
 *   (the Go test checks it), which shows that the guard is what saves it.
 * usage: truncate ctl DIR
 *   Opens DIR at its end waiting on the futex, truncates journal.ctl to 0 and
 *   waits: the wait must fail with MDJ_ERR_TRUNCATED naming journal.ctl.
 */
#define _GNU_SOURCE 1 /* sigaction, truncate, mmap flags: a Linux program */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, int rc, const mdj_error *e) {
    fprintf(stderr, "FAIL %s: rc %d (%s) %s: offset %" PRId64 ": %s\n", what, rc, mdj_strerror(rc), e ? e->file : "",
            e ? e->offset : -1, e ? e->reason : "");
    return 1;
}

static int seg_case(const char *dir, int guard) {
    mdj_reader_options opt;
    mdj_reader *r;
    mdj_error err;
    mdj_frame f;
    char path[1200];
    int i, rc;
    const mdj_error *e;
    memset(&opt, 0, sizeof opt);
    opt.no_sigbus_guard = !guard;
    if ((rc = mdj_reader_open(&r, dir, &opt, &err))) return fail("open", rc, &err);
    for (i = 0; i < 20; i++)
        if ((rc = mdj_reader_try_next(r, &f)) != 1) return fail("read before truncating", rc, mdj_reader_error(r));
    if (f.offset >= 8192) return fail("frames of the first page expected", 0, NULL);
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, f.segment);
    if (truncate(path, 8192) != 0) {
        perror("truncate");
        return 1;
    }
    do rc = mdj_reader_try_next(r, &f);
    while (rc == 1);
    e = mdj_reader_error(r);
    if (rc != MDJ_ERR_TRUNCATED) return fail("want MDJ_ERR_TRUNCATED", rc, e);
    if (strcmp(e->file, path) != 0) return fail("the error names another file", rc, e);
    if (e->offset < 8192 || e->offset >= 8192 + 65536) return fail("offset outside [8192, 8192+65536)", rc, e);
    if (mdj_reader_try_next(r, &f) != MDJ_ERR_TRUNCATED) return fail("error not sticky", rc, e);
    printf("ok: %s: offset %" PRId64 ": %s\n", e->file, e->offset, e->reason);
    mdj_reader_close(r);
    return 0;
}

static int ctl_case(const char *dir) {
    mdj_reader_options opt;
    mdj_reader *r;
    mdj_error err;
    mdj_frame f;
    char path[1200];
    int rc;
    const mdj_error *e;
    memset(&opt, 0, sizeof opt);
    opt.from = MDJ_FROM_END;
    opt.wait = MDJ_WAIT_FUTEX;
    if ((rc = mdj_reader_open(&r, dir, &opt, &err))) return fail("open", rc, &err);
    if (mdj_reader_wait_strategy(r) != MDJ_WAIT_FUTEX) return fail("futex strategy expected", 0, NULL);
    snprintf(path, sizeof path, "%s/journal.ctl", dir);
    if (truncate(path, 0) != 0) {
        perror("truncate");
        return 1;
    }
    rc = mdj_reader_next(r, &f, 50000000);
    e = mdj_reader_error(r);
    if (rc != MDJ_ERR_TRUNCATED || strcmp(e->file, path) != 0) return fail("want journal.ctl truncated", rc, e);
    printf("ok: %s: offset %" PRId64 ": %s\n", e->file, e->offset, e->reason);
    mdj_reader_close(r);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "seg")) return seg_case(argv[2], !(argc == 4 && !strcmp(argv[3], "--no-guard")));
    if (argc == 3 && !strcmp(argv[1], "ctl")) return ctl_case(argv[2]);
    fprintf(stderr, "usage: truncate seg DIR [--no-guard] | truncate ctl DIR\n");
    return 2;
}
