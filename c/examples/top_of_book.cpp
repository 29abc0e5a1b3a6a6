// top_of_book - a C++17 tail reader that keeps a price-level book per
// instrument and prints the top of book by symbol.
//
// usage: top_of_book [--from start|end] [--wait futex|backoff|spin|yield]
//                    [--exit-when-idle] [--quiet] DIR
//
// It follows the journal (waiting for new frames with the chosen strategy,
// futex by default) and prints a line whenever an instrument's best bid or
// ask changes. On SIGINT/SIGTERM, or with --exit-when-idle as soon as no
// frame is published, it prints the final top of book of every instrument as
// one JSON object per line:
//   {"instrument":7,"symbol":"AMZN","seq":10409,"bid":{"price":"223.6100","qty":100},"ask":null}
//
// Book rules (those of the Go package `book`): book_level sets the aggregate
// at a price (0 removes it); order_add adds; order_cancel, order_delete and
// order_execute subtract, clamping at zero (an execution flagged HIDDEN
// changes nothing); a quote replaces the top of each side (levels better than
// the quoted price go, the quoted level gets the quoted qty; qty 0 empties the
// side); trades change nothing. Frames with a side that is neither bid nor
// ask, or a negative quantity, are not applied.
#define MDJOURNAL_IMPLEMENTATION
#include "mdjournal.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>

namespace {

struct Book {
    std::map<int64_t, int64_t, std::greater<int64_t>> bids;  // best (highest) first
    std::map<int64_t, int64_t> asks;                          // best (lowest) first
    uint64_t seq = 0;
    int64_t ts = 0;

    template <class M> static bool set(M &side, int64_t price, int64_t qty) {
        if (qty < 0) return false;
        if (qty == 0)
            side.erase(price);
        else
            side[price] = qty;
        return true;
    }
    template <class M> static void sub(M &side, int64_t price, int64_t qty) {
        auto it = side.find(price);
        if (it == side.end()) return;  // a level we never saw (feed joined late)
        it->second -= qty;
        if (it->second <= 0) side.erase(it);
    }
    // Applies a frame; false if it carries nothing for a book or is refused.
    bool apply(const mdj_frame &f) {
        switch (f.type) {
        case MDJ_TYPE_BOOK_LEVEL: {
            mdj_book_level l;
            if (mdj_decode_book_level(f.payload, f.payload_len, &l)) return false;
            if (l.side == MDJ_SIDE_BID) return set(bids, l.price, l.qty);
            if (l.side == MDJ_SIDE_ASK) return set(asks, l.price, l.qty);
            return false;
        }
        case MDJ_TYPE_ORDER_ADD:
        case MDJ_TYPE_ORDER_CANCEL:
        case MDJ_TYPE_ORDER_DELETE:
        case MDJ_TYPE_ORDER_EXECUTE: {
            mdj_order o;
            if (mdj_decode_order(f.payload, f.payload_len, &o)) return false;
            if (o.side != MDJ_SIDE_BID && o.side != MDJ_SIDE_ASK) return false;
            if (f.type == MDJ_TYPE_ORDER_ADD ? o.qty <= 0 : o.qty < 0) return false;
            if (f.type == MDJ_TYPE_ORDER_EXECUTE && (o.flags & MDJ_FLAG_HIDDEN)) return true;
            if (f.type == MDJ_TYPE_ORDER_ADD) {
                if (o.side == MDJ_SIDE_BID)
                    bids[o.price] += o.qty;
                else
                    asks[o.price] += o.qty;
            } else if (o.side == MDJ_SIDE_BID) {
                sub(bids, o.price, o.qty);
            } else {
                sub(asks, o.price, o.qty);
            }
            return true;
        }
        case MDJ_TYPE_QUOTE: {
            mdj_quote q;
            if (mdj_decode_quote(f.payload, f.payload_len, &q)) return false;
            if (q.bid_qty < 0 || q.ask_qty < 0) return false;
            if (q.bid_qty == 0) {
                bids.clear();
            } else {
                bids.erase(bids.begin(), bids.upper_bound(q.bid_price));  // strictly better bids
                bids[q.bid_price] = q.bid_qty;
            }
            if (q.ask_qty == 0) {
                asks.clear();
            } else {
                asks.erase(asks.begin(), asks.upper_bound(q.ask_price));
                asks[q.ask_price] = q.ask_qty;
            }
            return true;
        }
        default:
            return true;  // definitions, trades, statuses, heartbeats: no book change, position advances
        }
    }
};

mdj_reader *g_reader;

using Level = std::pair<int64_t, int64_t>;  // price, qty; (0, 0) for an empty side

template <class M> Level top(const M &side) { return side.empty() ? Level(0, 0) : Level(side.begin()->first, side.begin()->second); }

extern "C" void on_signal(int) { mdj_reader_interrupt(g_reader); }

std::string level_json(const mdj_catalog *cat, uint32_t id, bool has, int64_t price, int64_t qty) {
    if (!has) return "null";
    char px[MDJ_PRICE_BUF], buf[128];
    mdj_catalog_format_price(cat, id, price, px, sizeof px);
    std::snprintf(buf, sizeof buf, "{\"price\":\"%s\",\"qty\":%lld}", px, static_cast<long long>(qty));
    return buf;
}

}  // namespace

int main(int argc, char **argv) {
    mdj_reader_options opt{};
    opt.wait = MDJ_WAIT_FUTEX;
    const char *dir = nullptr;
    bool idle_exit = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--from" && i + 1 < argc) {
            std::string v = argv[++i];
            opt.from = v == "end" ? MDJ_FROM_END : MDJ_FROM_START;
        } else if (a == "--wait" && i + 1 < argc) {
            std::string v = argv[++i];
            opt.wait = v == "spin" ? MDJ_WAIT_SPIN : v == "yield" ? MDJ_WAIT_YIELD : v == "backoff" ? MDJ_WAIT_BACKOFF : MDJ_WAIT_FUTEX;
        } else if (a == "--exit-when-idle") {
            idle_exit = true;
        } else if (a == "--quiet") {
            quiet = true;
        } else {
            dir = argv[i];
        }
    }
    if (!dir) {
        std::fprintf(stderr, "usage: top_of_book [--from start|end] [--wait futex|backoff|spin|yield] [--exit-when-idle] [--quiet] DIR\n");
        return 2;
    }
    mdj_error err;
    if (mdj_reader_open(&g_reader, dir, &opt, &err) != 0) {
        std::fprintf(stderr, "top_of_book: %s: offset %lld: %s\n", err.file, static_cast<long long>(err.offset), err.reason);
        return 1;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const mdj_catalog *cat = mdj_reader_catalog(g_reader);
    std::map<uint32_t, Book> books;
    int rc = 0;
    for (;;) {
        mdj_frame f;
        rc = idle_exit ? mdj_reader_try_next(g_reader, &f) : mdj_reader_next(g_reader, &f, -1);
        if (rc != 1) break;
        if (f.type == MDJ_TYPE_HEARTBEAT || f.type == MDJ_TYPE_RAW || f.type == MDJ_TYPE_GAP ||
            f.type == MDJ_TYPE_ORDER_REQUEST || f.type == MDJ_TYPE_RISK_DECISION) {
            auto it = books.find(f.instrument);  // no book information: only advances an existing book
            if (it != books.end()) {
                it->second.seq = f.seq;
                it->second.ts = f.ts;
            }
            continue;
        }
        Book &b = books[f.instrument];
        Level before_bid = top(b.bids), before_ask = top(b.asks);
        if (!b.apply(f)) continue;
        b.seq = f.seq;
        b.ts = f.ts;
        Level bid = top(b.bids), ask = top(b.asks);
        if (!quiet && (bid != before_bid || ask != before_ask)) {
            const mdj_instrument *in = mdj_catalog_lookup(cat, f.instrument);
            char bp[MDJ_PRICE_BUF], ap[MDJ_PRICE_BUF], ts[MDJ_TIME_BUF];
            mdj_catalog_format_price(cat, f.instrument, bid.first, bp, sizeof bp);
            mdj_catalog_format_price(cat, f.instrument, ask.first, ap, sizeof ap);
            mdj_format_time(ts, sizeof ts, f.ts);
            std::printf("%s %-8s %8lld @ %-12s | %-12s @ %lld\n", ts, in ? in->symbol : "?",
                        static_cast<long long>(bid.second), bp, ap, static_cast<long long>(ask.second));
        }
    }
    if (rc < 0 && rc != MDJ_ERR_INTERRUPTED) {
        const mdj_error *e = mdj_reader_error(g_reader);
        std::fprintf(stderr, "top_of_book: %s: offset %lld: %s\n", e->file, static_cast<long long>(e->offset), e->reason);
    }
    for (const auto &kv : books) {
        const mdj_instrument *in = mdj_catalog_lookup(cat, kv.first);
        const Book &b = kv.second;
        bool hb = !b.bids.empty(), ha = !b.asks.empty();
        std::printf("{\"instrument\":%u,\"symbol\":\"%s\",\"seq\":%llu,\"bid\":%s,\"ask\":%s}\n", kv.first,
                    in ? in->symbol : "", static_cast<unsigned long long>(b.seq),
                    level_json(cat, kv.first, hb, hb ? b.bids.begin()->first : 0, hb ? b.bids.begin()->second : 0).c_str(),
                    level_json(cat, kv.first, ha, ha ? b.asks.begin()->first : 0, ha ? b.asks.begin()->second : 0).c_str());
    }
    mdj_reader_close(g_reader);
    return rc < 0 && rc != MDJ_ERR_INTERRUPTED ? 1 : 0;
}
