/*
 * verify - mdj_verify on a journal directory, printed as one JSON object in
 * the shape of `journalctl verify --json` (segments, frames, first_seq,
 * last_seq, writer_live, problems[] with severity, file, offset, kind,
 * reason). Exit status 0 when there is no problem, 1 when there are, 2 when
 * the walk could not run.
 *
 * usage: verify DIR
 */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void jstr(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    mdj_verify_report rep;
    mdj_error err;
    size_t i;
    if (argc != 2) {
        fprintf(stderr, "usage: verify DIR\n");
        return 2;
    }
    if (mdj_verify(argv[1], &rep, &err)) {
        fprintf(stderr, "verify: %s: %s\n", err.file, err.reason);
        return 2;
    }
    printf("{\"ok\":%s,\"journal_id\":\"%016" PRIx64 "\",\"segments\":%zu,\"frames\":%" PRId64 ",\"first_seq\":%" PRIu64
           ",\"last_seq\":%" PRIu64 ",\"writer_pid\":%d,\"writer_live\":%s,\"problems\":[",
           rep.nproblems ? "false" : "true", rep.journal_id, rep.segments, rep.frames, rep.first_seq, rep.last_seq,
           rep.writer_pid, rep.writer_live ? "true" : "false");
    for (i = 0; i < rep.nproblems; i++) {
        const mdj_problem *p = &rep.problems[i];
        printf("%s{\"severity\":", i ? "," : "");
        jstr(p->severity);
        printf(",\"file\":");
        jstr(p->file);
        printf(",\"offset\":%" PRId64 ",\"kind\":", p->offset);
        jstr(p->kind);
        printf(",\"reason\":");
        jstr(p->reason);
        putchar('}');
    }
    printf("]}\n");
    i = rep.nproblems;
    mdj_verify_free(&rep);
    return i ? 1 : 0;
}
