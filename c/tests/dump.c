/*
 * dump - prints every frame of a journal exactly as
 * `journalctl dump --format json` does (cmd/journalctl/command/print.go):
 * one object per line, fields in print.go's order, prices as decimal strings
 * in the instrument's scale, timestamps RFC3339Nano UTC, the symbol once the
 * instrument's definition is known (the definitions of the journal's first
 * segment are preloaded, later ones learnt as they pass).
 *
 * usage: dump [--from start|end|seq:N|ns:T] [--follow] [--wait spin|yield|backoff|futex]
 *             [--count N] [--stats] DIR
 *
 * Without --follow it stops when no frame is published; with it, it waits
 * until --count frames or SIGINT/SIGTERM (which interrupts the reader: every
 * frame already published is printed first, then it exits 0), and flushes
 * its output whenever no frame came for 10 ms.
 * On damage it prints the frames before it, then on stderr
 * "dump: FILE: offset N: REASON [kind]" and exits 1.
 */
#define _GNU_SOURCE 1 /* sigaction, truncate, mmap flags: a Linux program */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends s quoted like Go's strconv.Quote (ASCII exact; valid UTF-8 above
 * U+00A0 kept as is, invalid bytes as \xNN). */
static void go_quote(FILE *o, const char *s, size_t n) {
    size_t i = 0;
    fputc('"', o);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': fputs("\\\"", o); break;
            case '\\': fputs("\\\\", o); break;
            case '\a': fputs("\\a", o); break;
            case '\b': fputs("\\b", o); break;
            case '\f': fputs("\\f", o); break;
            case '\n': fputs("\\n", o); break;
            case '\r': fputs("\\r", o); break;
            case '\t': fputs("\\t", o); break;
            case '\v': fputs("\\v", o); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    fprintf(o, "\\x%02x", c);
                else
                    fputc(c, o);
            }
            i++;
            continue;
        }
        {
            /* one UTF-8 sequence, or an invalid byte */
            size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            uint32_t r = len == 4 ? c & 7u : len == 3 ? c & 15u : c & 31u;
            size_t k;
            int ok = len && i + len <= n;
            for (k = 1; ok && k < len; k++) {
                unsigned char cc = (unsigned char)s[i + k];
                if ((cc & 0xc0) != 0x80) ok = 0;
                r = r << 6 | (cc & 0x3fu);
            }
            if (ok && ((len == 3 && (r < 0x800 || (r >= 0xd800 && r < 0xe000))) || (len == 4 && (r < 0x10000 || r > 0x10ffff))))
                ok = 0;
            if (!ok) {
                fprintf(o, "\\x%02x", c);
                i++;
                continue;
            }
            if (r < 0xa0 || r == 0xad)
                fprintf(o, "\\u%04x", (unsigned)r);
            else
                fwrite(s + i, 1, len, o);
            i += len;
        }
    }
    fputc('"', o);
}

static void qstr(FILE *o, const char *s) { go_quote(o, s, strlen(s)); }

/* The instruments print.go knows: instrument_def frames only. */
static mdj_catalog known;

static void learn(const mdj_frame *f) {
    if (f->type == MDJ_TYPE_INSTRUMENT_DEF) mdj_catalog_apply(&known, f);
}

static const char *symbol_of(uint32_t id) {
    const mdj_instrument *in = mdj_catalog_lookup(&known, id);
    return in && in->defined ? in->symbol : "";
}

static void price(FILE *o, const char *key, uint32_t id, int64_t p) {
    char b[MDJ_PRICE_BUF];
    mdj_catalog_format_price(&known, id, p, b, sizeof b);
    fprintf(o, ",\"%s\":", key);
    qstr(o, b);
}

static const char *aggressor(unsigned s) { return s == MDJ_SIDE_BID ? "buy" : s == MDJ_SIDE_ASK ? "sell" : "unknown"; }

static void print_json(FILE *o, const mdj_frame *f) {
    char ts[MDJ_TIME_BUF];
    const char *sym;
    learn(f);
    mdj_format_time(ts, sizeof ts, f->ts);
    fprintf(o, "{\"seq\":%" PRIu64 ",\"ts\":\"%s\",\"type\":\"%s\",\"instrument\":%" PRIu32, f->seq, ts,
            mdj_type_name(f->type), f->instrument);
    sym = symbol_of(f->instrument);
    if (*sym) {
        fputs(",\"symbol\":", o);
        qstr(o, sym);
    }
    switch (f->type) {
    case MDJ_TYPE_INSTRUMENT_DEF: {
        mdj_instrument_def d;
        char tick[MDJ_PRICE_BUF];
        if (mdj_decode_instrument_def(f->payload, f->payload_len, &d)) break;
        fputs(",\"symbol_def\":", o);
        qstr(o, d.symbol);
        mdj_format_price(tick, sizeof tick, d.tick_size, d.price_scale);
        fprintf(o, ",\"price_scale\":%" PRId32 ",\"tick_size\":", d.price_scale);
        qstr(o, tick);
        break;
    }
    case MDJ_TYPE_TRADE: {
        mdj_trade t;
        if (mdj_decode_trade(f->payload, f->payload_len, &t)) break;
        price(o, "price", f->instrument, t.price);
        fprintf(o, ",\"qty\":%" PRId64 ",\"aggressor\":\"%s\",\"trade_id\":%" PRIu64, t.qty, aggressor(t.aggressor),
                t.trade_id);
        if (t.flags & MDJ_FLAG_HIDDEN) fputs(",\"hidden\":true", o);
        break;
    }
    case MDJ_TYPE_QUOTE: {
        mdj_quote q;
        if (mdj_decode_quote(f->payload, f->payload_len, &q)) break;
        price(o, "bid_price", f->instrument, q.bid_price);
        fprintf(o, ",\"bid_qty\":%" PRId64, q.bid_qty);
        price(o, "ask_price", f->instrument, q.ask_price);
        fprintf(o, ",\"ask_qty\":%" PRId64, q.ask_qty);
        break;
    }
    case MDJ_TYPE_BOOK_LEVEL: {
        mdj_book_level l;
        if (mdj_decode_book_level(f->payload, f->payload_len, &l)) break;
        fprintf(o, ",\"side\":\"%s\"", mdj_side_name(l.side));
        price(o, "price", f->instrument, l.price);
        fprintf(o, ",\"qty\":%" PRId64, l.qty);
        break;
    }
    case MDJ_TYPE_ORDER_ADD:
    case MDJ_TYPE_ORDER_CANCEL:
    case MDJ_TYPE_ORDER_DELETE:
    case MDJ_TYPE_ORDER_EXECUTE: {
        mdj_order od;
        if (mdj_decode_order(f->payload, f->payload_len, &od)) break;
        fprintf(o, ",\"order_id\":%" PRIu64 ",\"side\":\"%s\"", od.order_id, mdj_side_name(od.side));
        price(o, "price", f->instrument, od.price);
        fprintf(o, ",\"qty\":%" PRId64, od.qty);
        if (od.flags & MDJ_FLAG_HIDDEN) fputs(",\"hidden\":true", o);
        break;
    }
    case MDJ_TYPE_RAW: {
        uint32_t i, n = f->payload_len < 64 ? f->payload_len : 64;
        fprintf(o, ",\"len\":%" PRIu32 ",\"hex\":\"", f->payload_len);
        for (i = 0; i < n; i++) fprintf(o, "%02x", f->payload[i]);
        fputc('"', o);
        break;
    }
    default: break;
    }
    fputs("}\n", o);
}

/* print.go's preload: the definitions of the journal's first segment. */
static void preload(const char *dir) {
    mdj_reader *r;
    mdj_error err;
    mdj_frame f;
    uint64_t seg;
    if (mdj_reader_open(&r, dir, NULL, &err)) return;
    seg = mdj_reader_segment(r, NULL);
    while (mdj_reader_try_next(r, &f) == 1 && f.segment == seg) learn(&f);
    mdj_reader_close(r);
}

static mdj_reader *volatile the_reader;
static volatile sig_atomic_t stop_asked;

static void on_signal(int sig) {
    (void)sig;
    stop_asked = 1;
    if (the_reader) mdj_reader_interrupt(the_reader);
}

/* Errors as journalctl prints them: FILE: offset N: REASON, or the reason
 * alone when it names no offset; then the kind. */
static void report(const mdj_error *e) {
    if (e->offset >= 0)
        fprintf(stderr, "dump: %s: offset %" PRId64 ": %s [%s]\n", e->file, e->offset, e->reason, mdj_kind(e->code));
    else
        fprintf(stderr, "dump: %s [%s]\n", e->reason, mdj_kind(e->code));
}

static int usage(void) {
    fprintf(stderr, "usage: dump [--from start|end|seq:N|ns:T] [--follow] [--wait spin|yield|backoff|futex] "
                    "[--count N] [--stats] DIR\n");
    return 2;
}

int main(int argc, char **argv) {
    mdj_reader_options opt;
    mdj_reader *r;
    mdj_error err;
    mdj_frame f;
    const char *dir = NULL;
    int follow = 0, stats = 0, i, rc = 0;
    uint64_t count = 0, n = 0;
    static char obuf[1 << 16];
    memset(&opt, 0, sizeof opt);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--follow"))
            follow = 1;
        else if (!strcmp(a, "--stats"))
            stats = 1;
        else if (!strcmp(a, "--from") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "start"))
                opt.from = MDJ_FROM_START;
            else if (!strcmp(v, "end"))
                opt.from = MDJ_FROM_END;
            else if (!strncmp(v, "seq:", 4)) {
                opt.from = MDJ_FROM_SEQ;
                opt.seq = strtoull(v + 4, NULL, 10);
            } else if (!strncmp(v, "ns:", 3)) {
                opt.from = MDJ_FROM_TIME;
                opt.ts = strtoll(v + 3, NULL, 10);
            } else
                return usage();
        } else if (!strcmp(a, "--wait") && i + 1 < argc) {
            const char *v = argv[++i];
            opt.wait = !strcmp(v, "spin")    ? MDJ_WAIT_SPIN
                       : !strcmp(v, "yield") ? MDJ_WAIT_YIELD
                       : !strcmp(v, "futex") ? MDJ_WAIT_FUTEX
                                             : MDJ_WAIT_BACKOFF;
        } else if (!strcmp(a, "--count") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (a[0] == '-')
            return usage();
        else
            dir = a;
    }
    if (!dir) return usage();
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    mdj_catalog_init(&known);
    preload(dir);
    if (mdj_reader_open(&r, dir, &opt, &err)) {
        report(&err);
        return 1;
    }
    the_reader = r;
    if (stop_asked) mdj_reader_interrupt(r);
    while (count == 0 || n < count) {
        rc = follow ? mdj_reader_next(r, &f, 10000000) : mdj_reader_try_next(r, &f);
        if (rc == 0 && follow) {
            fflush(stdout);
            continue;
        }
        if (rc != 1) break;
        print_json(stdout, &f);
        n++;
    }
    fflush(stdout);
    if (rc == MDJ_ERR_INTERRUPTED) rc = 0;
    if (rc < 0) report(mdj_reader_error(r));
    if (stats) {
        mdj_reader_stats st;
        static const char *const names[] = {"backoff", "spin", "yield", "futex"};
        mdj_reader_stats_get(r, &st);
        fprintf(stderr, "stats: frames=%" PRIu64 " rolls=%" PRIu64 " futex_waits=%" PRIu64 " sleeps=%" PRIu64
                        " wait=%s\n",
                st.frames, st.rolls, st.futex_waits, st.sleeps, names[mdj_reader_wait_strategy(r)]);
    }
    the_reader = NULL;
    mdj_reader_close(r);
    mdj_catalog_free(&known);
    return rc < 0 ? 1 : 0;
}
