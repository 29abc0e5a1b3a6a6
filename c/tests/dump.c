/*
 * dump - prints every frame of a journal exactly as
 * `journalctl dump --format json` does (cmd/journalctl/command/print.go):
 * one object per line, fields in print.go's order, every string escaped as
 * encoding/json escapes it, prices as decimal strings in the instrument's
 * scale, timestamps RFC3339Nano UTC, the symbol from the reader's catalogue
 * (complete from any start: the reader learns the definitions in effect
 * where it starts, format.md §3.4 and §5), re-stated frames with
 * "restated":true, frames with a source trailer with recv_ts and source_seq.
 *
 * usage: dump [--from start|end|seq:N|ns:T] [--follow] [--wait spin|yield|backoff|futex]
 *             [--count N] [--stats] DIR
 *
 * --from ns:T is dump's --from time:T: it also drops the frames stamped
 * before T that follow the starting position (definitions and trading
 * statuses always pass), as reader.Filter.Since does (format.md §5: on a
 * journal whose time goes back). dump's --to, --instrument, --type and --tz
 * are not supported.
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

/* Writes s[0,n) as a JSON string exactly as Go's encoding/json does with
 * SetEscapeHTML(false) (print.go's jsonString): '"' and '\\' escaped, \b \f
 * \n \r \t short, other bytes below 0x20 as \u00xx (lower-case hex), DEL
 * and '<', '>', '&' as they are; each byte that does not start a valid UTF-8
 * sequence (utf8.DecodeRune: no overlong forms, no surrogates, nothing above
 * U+10FFFF) becomes \ufffd; U+2028 and U+2029 are escaped; every other valid
 * sequence is copied. */
static void json_str(FILE *o, const char *sv, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)sv;
    size_t i = 0;
    fputc('"', o);
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': fputs("\\\"", o); break;
            case '\\': fputs("\\\\", o); break;
            case '\b': fputs("\\b", o); break;
            case '\f': fputs("\\f", o); break;
            case '\n': fputs("\\n", o); break;
            case '\r': fputs("\\r", o); break;
            case '\t': fputs("\\t", o); break;
            default:
                if (c < 0x20)
                    fprintf(o, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
                else
                    fputc((int)c, o);
            }
            i++;
            continue;
        }
        {
            /* utf8.DecodeRune's table: the lead byte gives the length and
             * the range of the second byte; later bytes are 0x80..0xBF. */
            size_t len = 0, k;
            unsigned lo = 0x80, hi = 0xbf;
            uint32_t r;
            int ok;
            if (c >= 0xc2 && c <= 0xdf)
                len = 2;
            else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                if (c == 0xe0) lo = 0xa0;
                if (c == 0xed) hi = 0x9f;
            } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                if (c == 0xf0) lo = 0x90;
                if (c == 0xf4) hi = 0x8f;
            }
            ok = len != 0 && i + len <= n && s[i + 1] >= lo && s[i + 1] <= hi;
            for (k = 2; ok && k < len; k++) ok = s[i + k] >= 0x80 && s[i + k] <= 0xbf;
            if (!ok) {
                fputs("\\ufffd", o);
                i++;
                continue;
            }
            r = len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
            for (k = 1; k < len; k++) r = r << 6 | (s[i + k] & 0x3fu);
            if (r == 0x2028 || r == 0x2029)
                fprintf(o, "\\u%04x", (unsigned)r);
            else
                fwrite(s + i, 1, len, o);
            i += len;
        }
    }
    fputc('"', o);
}

static void jstr(FILE *o, const char *s) { json_str(o, s, strlen(s)); }

/* ,"key":"value" and ,"key":number */
static void kv_str(FILE *o, const char *key, const char *v, size_t n) {
    fprintf(o, ",\"%s\":", key);
    json_str(o, v, n);
}

static void kv_time(FILE *o, const char *key, int64_t ns) {
    char b[MDJ_TIME_BUF];
    mdj_format_time(b, sizeof b, ns);
    kv_str(o, key, b, strlen(b));
}

/* A fixed-size ASCII field as Go's ReasonString / SourceString give it:
 * trailing NULs and spaces trimmed, anything inside kept. */
static size_t trim_right(const char *s, size_t n) {
    while (n > 0 && (s[n - 1] == 0 || s[n - 1] == ' ')) n--;
    return n;
}

/* Symbols and price scales come from the reader's catalogue
 * (mdj_reader_catalog), as print.go takes them from reader.Catalog(): the
 * reader applies every definition and status it reads (re-stated ones and
 * those passed while positioning included) before it returns a frame. */
static const mdj_catalog *cat;

static void price(FILE *o, const char *key, uint32_t id, int64_t p) {
    char b[MDJ_PRICE_BUF];
    mdj_catalog_format_price(cat, id, p, b, sizeof b);
    kv_str(o, key, b, strlen(b));
}

static const char *aggressor(unsigned s) { return s == MDJ_SIDE_BID ? "buy" : s == MDJ_SIDE_ASK ? "sell" : "unknown"; }

/* One line as print.go's printJSON: seq, ts, type, instrument, symbol (when
 * the instrument has one), the payload's fields (decode), then restated and
 * the source trailer (frameFields). */
static void print_json(FILE *o, const mdj_frame *f) {
    char ts[MDJ_TIME_BUF];
    const mdj_instrument *in = mdj_catalog_lookup(cat, f->instrument);
    mdj_format_time(ts, sizeof ts, f->ts);
    fprintf(o, "{\"seq\":%" PRIu64 ",\"ts\":", f->seq);
    jstr(o, ts);
    fputs(",\"type\":", o);
    jstr(o, mdj_type_name(f->type));
    fprintf(o, ",\"instrument\":%" PRIu32, f->instrument);
    if (in && in->symbol[0]) kv_str(o, "symbol", in->symbol, strlen(in->symbol));
    switch (f->type) {
    case MDJ_TYPE_INSTRUMENT_DEF: {
        mdj_instrument_def d;
        char tick[MDJ_PRICE_BUF];
        if (mdj_decode_instrument_def(f->payload, f->payload_len, &d)) break;
        kv_str(o, "symbol_def", d.symbol, strlen(d.symbol));
        mdj_format_price(tick, sizeof tick, d.tick_size, d.price_scale);
        fprintf(o, ",\"price_scale\":%" PRId32, d.price_scale);
        kv_str(o, "tick_size", tick, strlen(tick));
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
    case MDJ_TYPE_TRADING_STATUS: {
        mdj_trading_status s;
        size_t n;
        if (mdj_decode_trading_status(f->payload, f->payload_len, &s)) break;
        fprintf(o, ",\"status\":\"%s\"", mdj_status_name(s.status));
        n = trim_right(s.reason, 4);
        if (n) kv_str(o, "reason", s.reason, n);
        break;
    }
    case MDJ_TYPE_GAP: {
        mdj_gap g;
        if (mdj_decode_gap(f->payload, f->payload_len, &g)) break;
        fprintf(o, ",\"first\":%" PRIu64 ",\"count\":%" PRIu64, g.first, g.count);
        kv_str(o, "source", g.source, trim_right(g.source, MDJ_SYMBOL_LEN));
        break;
    }
    case MDJ_TYPE_ORDER_REQUEST: {
        mdj_order_request q;
        if (mdj_decode_order_request(f->payload, f->payload_len, &q)) break;
        fprintf(o, ",\"order_id\":%" PRIu64 ",\"side\":\"%s\"", q.order_id, mdj_side_name(q.side));
        price(o, "price", f->instrument, q.price);
        fprintf(o, ",\"qty\":%" PRId64 ",\"strategy\":%" PRIu32 ",\"trigger_seq\":%" PRIu64, q.qty, q.strategy,
                q.trigger_seq);
        kv_time(o, "trigger_ts", q.trigger_ts);
        kv_time(o, "seen", q.seen);
        kv_time(o, "decided", q.decided);
        break;
    }
    case MDJ_TYPE_RISK_DECISION: {
        mdj_risk_decision d;
        if (mdj_decode_risk_decision(f->payload, f->payload_len, &d)) break;
        fprintf(o, ",\"order_id\":%" PRIu64 ",\"side\":\"%s\"", d.order_id, mdj_side_name(d.side));
        price(o, "price", f->instrument, d.price);
        fprintf(o, ",\"qty\":%" PRId64 ",\"verdict\":\"%s\",\"reason\":%u,\"strategy\":%" PRIu32
                   ",\"trigger_seq\":%" PRIu64,
                d.qty, d.verdict == MDJ_RISK_ACCEPTED ? "accepted" : "rejected", (unsigned)d.reason, d.strategy,
                d.trigger_seq);
        kv_time(o, "requested", d.requested);
        kv_time(o, "received", d.received);
        kv_time(o, "decided", d.decided);
        break;
    }
    case MDJ_TYPE_RAW: {
        uint32_t i, n = f->payload_len < 64 ? f->payload_len : 64;
        fprintf(o, ",\"len\":%" PRIu32 ",\"hex\":\"", f->payload_len);
        for (i = 0; i < n; i++) fprintf(o, "%02x", f->payload[i]);
        fputc('"', o);
        break;
    }
    default: break; /* heartbeat: no payload */
    }
    if (f->flags & MDJ_FRAME_RESTATED) fputs(",\"restated\":true", o);
    if (f->flags & MDJ_FRAME_SOURCE) {
        kv_time(o, "recv_ts", f->recv_ts);
        fprintf(o, ",\"source_seq\":%" PRIu64, f->source_seq);
    }
    fputs("}\n", o);
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
    if (mdj_reader_open(&r, dir, &opt, &err)) {
        report(&err);
        return 1;
    }
    the_reader = r;
    cat = mdj_reader_catalog(r);
    if (stop_asked) mdj_reader_interrupt(r);
    while (count == 0 || n < count) {
        rc = follow ? mdj_reader_next(r, &f, 10000000) : mdj_reader_try_next(r, &f);
        if (rc == 0 && follow) {
            fflush(stdout);
            continue;
        }
        if (rc != 1) break;
        if (opt.from == MDJ_FROM_TIME && f.ts < opt.ts && f.type != MDJ_TYPE_INSTRUMENT_DEF &&
            f.type != MDJ_TYPE_TRADING_STATUS)
            continue; /* reader.Filter.Since */
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
    return rc < 0 ? 1 : 0;
}
