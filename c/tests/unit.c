/*
 * unit - the header's own tests, independent of any journal on disk:
 * CRC-32C against published check values (and a bit-at-a-time reference
 * written here, not the header's table or instruction), frames built by hand
 * byte by byte, every payload decoder, price and time formatting, the
 * catalogue, and a mutation loop that feeds damaged frames to the decoder
 * (run under AddressSanitizer/UBSan by the Go test when available, so an
 * over-read is a failure). Exit status 0 when every check passes.
 */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                           \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

/* Reference CRC-32C register, one bit at a time (reflected polynomial
 * 0x82F63B78), written from the definition. */
static uint32_t ref_reg(uint32_t c, const uint8_t *p, size_t n) {
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return c;
}
static uint32_t ref_crc(const void *p, size_t n) { return ~ref_reg(0xFFFFFFFFu, (const uint8_t *)p, n); }

static void put16(uint8_t *b, uint16_t v) {
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *b, uint32_t v) {
    int i;
    for (i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *b, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* Builds a frame at b by hand; its checksum from the reference CRC:
 * register starts at size XOR 0xFFFFFFFF, runs over [8,size), final xor. */
static uint32_t make_frame(uint8_t *b, uint64_t seq, int64_t ts, uint16_t type, uint16_t flags, uint32_t instr,
                           const uint8_t *payload, uint32_t plen) {
    uint32_t size = 32 + plen, crc;
    memset(b, 0, (size + 7) & ~7u);
    put64(b + 8, seq);
    put64(b + 16, (uint64_t)ts);
    put16(b + 24, type);
    put16(b + 26, flags);
    put32(b + 28, instr);
    if (plen) memcpy(b + 32, payload, plen);
    crc = ~ref_reg(~size, b + 8, size - 8);
    put32(b, crc);
    put32(b + 4, size);
    return size;
}

static void test_crc(void) {
    static const char check[] = "123456789";
    uint8_t buf[64 + 8], big[1024 + 16];
    int pass, i;
    size_t n, a;
    CHECK(ref_crc(check, 9) == 0xE3069283u, "reference CRC of \"123456789\" = %08x", ref_crc(check, 9));
    for (pass = 0; pass < 2; pass++) {
        mdj_crc32c_force_software(pass);
        CHECK(mdj_crc32c(check, 9) == 0xE3069283u, "crc32c(\"123456789\") = %08x (software %d)", mdj_crc32c(check, 9),
              pass);
        CHECK(mdj_crc32c("", 0) == 0, "crc32c of nothing = %08x", mdj_crc32c("", 0));
        CHECK(mdj_crc32c_update(mdj_crc32c("1234", 4), "56789", 5) == 0xE3069283u, "update chaining (software %d)",
              pass);
        /* RFC 3720 B.4 iSCSI test vectors. */
        memset(buf, 0, 32);
        CHECK(mdj_crc32c(buf, 32) == 0x8A9136AAu, "32 zero bytes = %08x", mdj_crc32c(buf, 32));
        memset(buf, 0xff, 32);
        CHECK(mdj_crc32c(buf, 32) == 0x62A8AB43u, "32 0xff bytes = %08x", mdj_crc32c(buf, 32));
        for (i = 0; i < 32; i++) buf[i] = (uint8_t)i;
        CHECK(mdj_crc32c(buf, 32) == 0x46DD794Eu, "0..31 = %08x", mdj_crc32c(buf, 32));
        for (i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
        CHECK(mdj_crc32c(buf, 32) == 0x113FDB5Cu, "31..0 = %08x", mdj_crc32c(buf, 32));
        /* Every length and alignment agrees with the reference. */
        for (i = 0; i < (int)sizeof big; i++) big[i] = (uint8_t)(i * 131 + 7);
        for (a = 0; a < 8; a++)
            for (n = 0; n <= 1024; n += (n < 80 ? 1 : 37))
                CHECK(mdj_crc32c(big + a, n) == ref_crc(big + a, n), "len %zu align %zu (software %d)", n, a, pass);
    }
    mdj_crc32c_force_software(0);
    printf("crc: hardware instruction %s\n", mdj_crc32c_hardware() ? "in use" : "not available");
}

static void test_frames(void) {
    uint8_t b[256], pl[64];
    mdj_frame f;
    mdj_error e;
    long n;
    uint32_t size;
    /* A trade, built by hand. */
    memset(pl, 0, sizeof pl);
    put64(pl, 5853300);        /* price */
    put64(pl + 8, 100);        /* qty */
    put64(pl + 16, 77);        /* trade id */
    pl[24] = MDJ_SIDE_ASK;     /* aggressor */
    pl[25] = MDJ_FLAG_HIDDEN;  /* flags */
    size = make_frame(b, 42, 1340285400017459617LL, MDJ_TYPE_TRADE, 0, 7, pl, 32);
    CHECK(size == 64, "trade frame size %u", size);
    CHECK(mdj_frame_crc(b, size) == (uint32_t)(b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24),
          "mdj_frame_crc agrees with the hand-built checksum");
    n = mdj_frame_decode(b, 64, &f, &e);
    CHECK(n == 64, "decode returns %ld (%s)", n, e.reason);
    CHECK(f.seq == 42 && f.ts == 1340285400017459617LL && f.type == MDJ_TYPE_TRADE && f.flags == 0 &&
              f.instrument == 7 && f.payload == b + 32 && f.payload_len == 32 && f.size == 64,
          "trade header fields");
    {
        mdj_trade t;
        memset(&t, 0, sizeof t);
        CHECK(mdj_decode_trade(f.payload, f.payload_len, &t) == MDJ_OK, "decode trade");
        CHECK(t.price == 5853300 && t.qty == 100 && t.trade_id == 77 && t.aggressor == MDJ_SIDE_ASK &&
                  t.flags == MDJ_FLAG_HIDDEN,
              "trade fields");
        CHECK(mdj_decode_trade(f.payload, 31, &t) == MDJ_ERR_SHORT, "short trade payload");
    }
    /* The padding of a 36-byte frame counts: it occupies 40 bytes. */
    size = make_frame(b, 1, 0, MDJ_TYPE_RAW, 0, 0, (const uint8_t *)"abcd", 4);
    CHECK(mdj_frame_decode(b, 40, &f, &e) == 40 && f.payload_len == 4 && !memcmp(f.payload, "abcd", 4), "raw 4");
    /* A heartbeat with a source trailer. */
    memset(pl, 0, 16);
    put64(pl, (uint64_t)1767364200000000123LL);
    put64(pl + 8, 991);
    size = make_frame(b, 9, 1767364200000000000LL, MDJ_TYPE_HEARTBEAT, MDJ_FRAME_SOURCE, 0, pl, 16);
    n = mdj_frame_decode(b, sizeof b, &f, &e);
    CHECK(n == 48 && f.payload_len == 0 && f.recv_ts == 1767364200000000123LL && f.source_seq == 991,
          "source trailer: n %ld len %u recv %" PRId64 " seq %" PRIu64, n, f.payload_len, f.recv_ts, f.source_seq);
    /* An empty commit word is "nothing published". */
    memset(b, 0, 64);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == 0, "zero commit word");
    /* A checksum with a zero size is damage. */
    put32(b, 0x1234);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_LENGTH, "crc without size: %s", e.reason);
    /* Sizes out of bounds. */
    make_frame(b, 1, 0, MDJ_TYPE_HEARTBEAT, 0, 0, NULL, 0);
    put32(b + 4, 31);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_LENGTH, "size 31");
    put32(b + 4, 65537);
    CHECK(mdj_frame_decode(b, sizeof b, &f, &e) == MDJ_ERR_BAD_LENGTH, "size 65537");
    make_frame(b, 1, 0, MDJ_TYPE_TRADE, 0, 0, pl, 32);
    CHECK(mdj_frame_decode(b, 63, &f, &e) == MDJ_ERR_BAD_LENGTH, "frame longer than the buffer");
    CHECK(mdj_frame_decode(b, 7, &f, &e) == MDJ_ERR_BAD_LENGTH, "no room for a commit word");
    /* One flipped bit anywhere in [8,size) or in the size breaks the checksum. */
    {
        int bit, bad = 0;
        for (bit = 64; bit < 64 * 8; bit++) {
            make_frame(b, 1, 0, MDJ_TYPE_TRADE, 0, 0, pl, 32);
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (mdj_frame_decode(b, 64, &f, &e) != MDJ_ERR_CHECKSUM) bad++;
        }
        CHECK(bad == 0, "%d single-bit flips not caught", bad);
        make_frame(b, 1, 0, MDJ_TYPE_TRADE, 0, 0, pl, 32);
        put32(b + 4, 40); /* the size is bound into the checksum */
        CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_CHECKSUM, "size changed: %s", e.reason);
    }
    /* Content rules (§3). */
    make_frame(b, 1, 0, 0, 0, 0, NULL, 0);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_HEADER, "type 0: %s", e.reason);
    make_frame(b, 1, 0, 16, 0, 0, NULL, 0);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_HEADER, "type 16: %s", e.reason);
    make_frame(b, 1, 0, MDJ_TYPE_HEARTBEAT, 4, 0, NULL, 0);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_HEADER, "unknown flag: %s", e.reason);
    make_frame(b, 1, 0, MDJ_TYPE_TRADE, MDJ_FRAME_RESTATED, 0, pl, 32);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_HEADER, "RESTATED trade: %s", e.reason);
    make_frame(b, 1, 0, MDJ_TYPE_INSTRUMENT_DEF, MDJ_FRAME_RESTATED, 0, pl, 32);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == 64, "RESTATED instrument_def is fine");
    make_frame(b, 1, 0, MDJ_TYPE_TRADING_STATUS, MDJ_FRAME_RESTATED, 0, pl, 16);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == 48, "RESTATED trading_status is fine");
    make_frame(b, 1, 0, MDJ_TYPE_TRADE, 0, 0, pl, 24);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_LENGTH, "trade with 24 bytes: %s", e.reason);
    make_frame(b, 1, 0, MDJ_TYPE_HEARTBEAT, MDJ_FRAME_SOURCE, 0, pl, 8);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_LENGTH, "trailer does not fit: %s", e.reason);
    make_frame(b, 1, 0, MDJ_TYPE_TRADE, MDJ_FRAME_SOURCE, 0, pl, 32);
    CHECK(mdj_frame_decode(b, 80, &f, &e) == MDJ_ERR_BAD_LENGTH, "trade with source but no room for it");
    make_frame(b, 1, 0, MDJ_TYPE_SEGMENT_END, 0, 0, NULL, 0);
    CHECK(mdj_frame_decode(b, 32, &f, &e) == 32 && f.type == MDJ_TYPE_SEGMENT_END, "end marker");
    make_frame(b, 1, 0, MDJ_TYPE_SEGMENT_END, 0, 0, pl, 8);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_LENGTH, "end marker with a payload");
    /* Rule order as Go's journal.CheckContent: the payload size before RESTATED. */
    make_frame(b, 1, 0, MDJ_TYPE_TRADE, MDJ_FRAME_RESTATED, 0, pl, 8);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_LENGTH, "RESTATED trade of 8 bytes: %s", e.reason);
    make_frame(b, 1, 0, MDJ_TYPE_HEARTBEAT, MDJ_FRAME_SOURCE | 8, 0, pl, 4);
    CHECK(mdj_frame_decode(b, 64, &f, &e) == MDJ_ERR_BAD_HEADER, "unknown flag before the trailer: %s", e.reason);
}

static void test_decoders(void) {
    uint8_t p[64];
    memset(p, 0, sizeof p);
    {
        mdj_instrument_def d;
        memcpy(p, "AMZN", 4);
        put64(p + 16, 100);
        put32(p + 24, 4);
        CHECK(mdj_decode_instrument_def(p, 32, &d) == 0 && !strcmp(d.symbol, "AMZN") && d.tick_size == 100 &&
                  d.price_scale == 4,
              "instrument_def");
        memcpy(p, "ABCDEFGHIJKLMNOP", 16);
        CHECK(mdj_decode_instrument_def(p, 32, &d) == 0 && !strcmp(d.symbol, "ABCDEFGHIJKLMNOP"), "16-byte symbol");
        CHECK(mdj_decode_instrument_def(p, 31, &d) == MDJ_ERR_SHORT, "short def");
    }
    {
        mdj_quote q;
        put64(p, 1);
        put64(p + 8, 2);
        put64(p + 16, 3);
        put64(p + 24, (uint64_t)-4);
        CHECK(mdj_decode_quote(p, 32, &q) == 0 && q.bid_price == 1 && q.bid_qty == 2 && q.ask_price == 3 &&
                  q.ask_qty == -4,
              "quote");
    }
    {
        mdj_book_level l;
        memset(p, 0, sizeof p);
        put64(p, (uint64_t)-5);
        put64(p + 8, 6);
        p[16] = MDJ_SIDE_BID;
        CHECK(mdj_decode_book_level(p, 24, &l) == 0 && l.price == -5 && l.qty == 6 && l.side == MDJ_SIDE_BID,
              "book_level");
        CHECK(mdj_decode_book_level(p, 23, &l) == MDJ_ERR_SHORT, "short book_level");
    }
    {
        mdj_order o;
        put64(p, 0xFFFFFFFFFFFFFFFFull);
        put64(p + 8, 10);
        put64(p + 16, 20);
        p[24] = MDJ_SIDE_ASK;
        p[25] = 1;
        CHECK(mdj_decode_order(p, 32, &o) == 0 && o.order_id == 0xFFFFFFFFFFFFFFFFull && o.price == 10 &&
                  o.qty == 20 && o.side == MDJ_SIDE_ASK && o.flags == 1,
              "order");
    }
    {
        mdj_trading_status s;
        memset(p, 0, sizeof p);
        p[0] = MDJ_STATUS_HALTED;
        memcpy(p + 4, "LUDP", 4);
        CHECK(mdj_decode_trading_status(p, 16, &s) == 0 && s.status == 1 && !strcmp(s.reason, "LUDP"),
              "trading_status");
    }
    {
        mdj_gap g;
        memset(p, 0, sizeof p);
        put64(p, 1000);
        put64(p + 8, 5);
        memcpy(p + 16, "SESSION01", 9);
        CHECK(mdj_decode_gap(p, 32, &g) == 0 && g.first == 1000 && g.count == 5 && !strcmp(g.source, "SESSION01"),
              "gap");
    }
    {
        mdj_order_request o;
        memset(p, 0, sizeof p);
        put64(p, 1);
        put64(p + 8, 2);
        put64(p + 16, 3);
        p[24] = 1;
        p[25] = 0;
        put32(p + 28, 44);
        put64(p + 32, 55);
        put64(p + 40, 66);
        put64(p + 48, 77);
        put64(p + 56, 88);
        CHECK(mdj_decode_order_request(p, 64, &o) == 0 && o.order_id == 1 && o.price == 2 && o.qty == 3 &&
                  o.side == 1 && o.strategy == 44 && o.trigger_seq == 55 && o.trigger_ts == 66 && o.seen == 77 &&
                  o.decided == 88,
              "order_request");
        CHECK(mdj_decode_order_request(p, 63, &o) == MDJ_ERR_SHORT, "short order_request");
    }
    {
        mdj_risk_decision d;
        p[25] = MDJ_RISK_REJECTED;
        put16(p + 26, 513);
        CHECK(mdj_decode_risk_decision(p, 64, &d) == 0 && d.order_id == 1 && d.verdict == 2 && d.reason == 513 &&
                  d.strategy == 44 && d.trigger_seq == 55 && d.requested == 66 && d.received == 77 &&
                  d.decided == 88,
              "risk_decision");
    }
    CHECK(mdj_payload_size(MDJ_TYPE_RAW) == -1 && mdj_payload_size(16) == -2 && mdj_payload_size(6) == 24 &&
              mdj_payload_size(12) == 16 && mdj_payload_size(15) == 64,
          "payload sizes");
    CHECK(!strcmp(mdj_type_name(3), "instrument_def") && !strcmp(mdj_type_name(15), "risk_decision") &&
              mdj_type_name(16) == NULL,
          "type names");
    CHECK(!strcmp(mdj_side_name(1), "bid") && !strcmp(mdj_side_name(2), "ask") && !strcmp(mdj_side_name(9), "none"),
          "side names");
}

static void test_format(void) {
    static const struct {
        int64_t p;
        int32_t scale;
        const char *want;
    } prices[] = {
        {5853300, 4, "585.3300"},
        {-1, 4, "-0.0001"},
        {0, 2, "0.00"},
        {5, 0, "5"},
        {-5, -3, "-5"},
        {5853300, 20, "5853300e-20"},
        {5853300, 50000, "5853300e-50000"},
        {123, 19, "0.0000000000000000123"},
        {INT64_MAX, 19, "0.9223372036854775807"},
        {INT64_MIN, 19, "-0.9223372036854775808"},
        {INT64_MIN, 4, "-922337203685477.5808"},
        {INT64_MIN, 0, "-9223372036854775808"},
        {100, 2, "1.00"},
        {-100, 3, "-0.100"},
    };
    static const struct {
        int64_t ns;
        const char *want;
    } times[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1, "1970-01-01T00:00:00.000000001Z"},
        {-1, "1969-12-31T23:59:59.999999999Z"},
        {1767364200000000000LL, "2026-01-02T14:30:00Z"},
        {1767364200000010000LL, "2026-01-02T14:30:00.00001Z"},
        {1340285400017459617LL, "2012-06-21T13:30:00.017459617Z"},
        {951782400000000000LL, "2000-02-29T00:00:00Z"},
        {INT64_MIN, "1677-09-21T00:12:43.145224192Z"},
        {INT64_MAX, "2262-04-11T23:47:16.854775807Z"},
    };
    size_t i;
    char b[MDJ_PRICE_BUF > MDJ_TIME_BUF ? MDJ_PRICE_BUF : MDJ_TIME_BUF], small[4];
    for (i = 0; i < sizeof prices / sizeof prices[0]; i++) {
        size_t n = mdj_format_price(b, sizeof b, prices[i].p, prices[i].scale);
        CHECK(!strcmp(b, prices[i].want) && n == strlen(prices[i].want), "price %" PRId64 " scale %d: got %s want %s",
              prices[i].p, prices[i].scale, b, prices[i].want);
    }
    for (i = 0; i < sizeof times / sizeof times[0]; i++) {
        size_t n = mdj_format_time(b, sizeof b, times[i].ns);
        CHECK(!strcmp(b, times[i].want) && n == strlen(times[i].want), "time %" PRId64 ": got %s want %s",
              times[i].ns, b, times[i].want);
    }
    CHECK(mdj_format_price(small, sizeof small, 5853300, 4) == 8 && !strcmp(small, "585"), "truncated output");
}

static void test_catalog(void) {
    uint8_t b[128], p[32];
    mdj_frame f;
    mdj_error e;
    mdj_catalog c;
    const mdj_instrument *in;
    char px[MDJ_PRICE_BUF];
    mdj_catalog_init(&c);
    memset(p, 0, sizeof p);
    memcpy(p, "AMZN", 4);
    put64(p + 16, 100);
    put32(p + 24, 4);
    make_frame(b, 1, 0, MDJ_TYPE_INSTRUMENT_DEF, 0, 7, p, 32);
    mdj_frame_decode(b, sizeof b, &f, &e);
    CHECK(mdj_catalog_apply(&c, &f) == 1, "new definition");
    make_frame(b, 9, 0, MDJ_TYPE_INSTRUMENT_DEF, MDJ_FRAME_RESTATED, 7, p, 32);
    mdj_frame_decode(b, sizeof b, &f, &e);
    CHECK(mdj_catalog_apply(&c, &f) == 0, "re-stated definition changes nothing");
    memset(p, 0, sizeof p);
    p[0] = MDJ_STATUS_HALTED;
    memcpy(p + 4, "H10", 3);
    make_frame(b, 10, 0, MDJ_TYPE_TRADING_STATUS, 0, 7, p, 16);
    mdj_frame_decode(b, sizeof b, &f, &e);
    CHECK(mdj_catalog_apply(&c, &f) == 1, "status");
    memset(p, 0, sizeof p);
    memcpy(p, "ZZZ", 3);
    put32(p + 24, 2);
    make_frame(b, 11, 0, MDJ_TYPE_INSTRUMENT_DEF, 0, 3, p, 32);
    mdj_frame_decode(b, sizeof b, &f, &e);
    CHECK(mdj_catalog_apply(&c, &f) == 1, "second instrument");
    in = mdj_catalog_lookup(&c, 7);
    CHECK(in && in->defined && !strcmp(in->symbol, "AMZN") && in->price_scale == 4 && in->tick_size == 100 &&
              in->status == MDJ_STATUS_HALTED && !strcmp(in->reason, "H10") && in->def_seq == 9,
          "instrument 7");
    CHECK(c.len == 2 && c.items[0].id == 3 && c.items[1].id == 7, "sorted by id");
    CHECK(mdj_catalog_lookup(&c, 8) == NULL, "unknown id");
    mdj_catalog_format_price(&c, 7, 5853300, px, sizeof px);
    CHECK(!strcmp(px, "585.3300"), "price by id: %s", px);
    mdj_catalog_format_price(&c, 8, 5853300, px, sizeof px);
    CHECK(!strcmp(px, "5853300"), "price of an unknown id: %s", px);
    /* An instrument known by its status alone, and one whose definition has
     * an empty symbol: no scale (Go's Catalog.Scale needs a symbol). */
    memset(p, 0, sizeof p);
    p[0] = MDJ_STATUS_TRADING;
    make_frame(b, 12, 0, MDJ_TYPE_TRADING_STATUS, 0, 20, p, 16);
    mdj_frame_decode(b, sizeof b, &f, &e);
    CHECK(mdj_catalog_apply(&c, &f) == 1, "status of an undefined instrument");
    mdj_catalog_format_price(&c, 20, 5853300, px, sizeof px);
    CHECK(!strcmp(px, "5853300"), "price of an instrument with a status only: %s", px);
    memset(p, 0, sizeof p);
    memcpy(p + 1, "HIDDEN", 6); /* symbol field starting with NUL: "" */
    put32(p + 24, 4);
    make_frame(b, 13, 0, MDJ_TYPE_INSTRUMENT_DEF, 0, 21, p, 32);
    mdj_frame_decode(b, sizeof b, &f, &e);
    CHECK(mdj_catalog_apply(&c, &f) == 1, "definition with an empty symbol");
    in = mdj_catalog_lookup(&c, 21);
    CHECK(in && in->defined && in->symbol[0] == 0 && in->price_scale == 4, "instrument 21");
    mdj_catalog_format_price(&c, 21, 5853300, px, sizeof px);
    CHECK(!strcmp(px, "5853300"), "price of an instrument with an empty symbol: %s", px);
    mdj_catalog_free(&c);
}

/* Damaged frames never make the decoder read outside b[0,n): b is a heap
 * block of exactly n bytes, so AddressSanitizer flags any over-read. */
static void test_mutations(void) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    uint8_t tmpl[128], pl[64];
    int i, accepted = 0;
    memset(pl, 0x5a, sizeof pl);
    for (i = 0; i < 200000; i++) {
        size_t n, k;
        uint8_t *b;
        mdj_frame f;
        mdj_error e;
        long r;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        make_frame(tmpl, x >> 40, (int64_t)x, (uint16_t)(x % 17), (uint16_t)((x >> 8) % 4), 1, pl,
                   (uint32_t)((x >> 16) % 65));
        n = 1 + (size_t)((x >> 24) % 127);
        b = (uint8_t *)malloc(n);
        memcpy(b, tmpl, n);
        for (k = 0; k < (size_t)((x >> 32) % 4); k++) b[(x >> (k * 8)) % n] ^= (uint8_t)(x >> (40 + k));
        r = mdj_frame_decode(b, n, &f, &e);
        if (r > 0) {
            mdj_trade t;
            mdj_order_request o;
            accepted++;
            CHECK(f.payload + f.payload_len <= b + n, "payload inside the buffer");
            mdj_decode_trade(f.payload, f.payload_len, &t);
            mdj_decode_order_request(f.payload, f.payload_len, &o);
        }
        free(b);
    }
    CHECK(accepted > 1000, "the mutation loop also produced valid frames (%d)", accepted);
}

int main(void) {
    test_crc();
    test_frames();
    test_decoders();
    test_format();
    test_catalog();
    test_mutations();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
