/*
 * mdjournal.h - a single-header C11 / C++17 reader for mdjournal journals,
 * journal format version 3 (format.md §1-§10, §13, §14 of the mdjournal
 * repository are the contract this file is written from), a reader of the
 * order-book snapshot file (§11, snapshot format version 2) and both sides
 * of the ring file (§12, ring format version 2).
 *
 * Usage (stb style): in exactly one C or C++ file write
 *
 *     #define MDJOURNAL_IMPLEMENTATION
 *     #include "mdjournal.h"
 *
 * before any other #include of that file (the implementation needs POSIX and
 * Linux declarations: it defines _GNU_SOURCE when nobody has). Every other
 * file includes "mdjournal.h" alone and sees only the declarations below.
 * No dependency beyond libc; Linux only (mmap, futex, /proc/locks). The
 * ring's beat thread uses POSIX threads: with glibc older than 2.34 link the
 * implementation file's program with -pthread.
 *
 * What it does:
 *   - CRC-32C (Castagnoli), with the SSE4.2 crc32 instruction when cpuid says
 *     the CPU has it, a slicing-by-8 table otherwise; the frame checksum of
 *     format.md §3 (the size as the initial value, zlib "update" convention).
 *   - A journal reader: lists segments, follows segments and rolls, checks
 *     every frame as §3/§4 say (commit word loaded with acquire semantics,
 *     size, CRC, seq continuity, type, flags, payload size, source trailer),
 *     starts at start / end / seq / time with the sparse index (§5) and waits
 *     for new frames by spinning, backing off or on the control page's futex
 *     (§6; readers that cannot write journal.ctl back off instead).
 *   - Decoders for every message type (§3.2), the frame flags and source
 *     trailer (§3.3), an instrument catalogue that applies instrument_def and
 *     trading_status frames, re-stated ones included (§3.4), and a price
 *     formatter that prints exactly like Go's journal.FormatPrice.
 *   - mdj_verify: walks a whole journal and reports, per segment, the first
 *     problem (file, offset, kind, reason) as `journalctl verify` does.
 *   - mdj_snap_*: the snapshot file (§11): header validated in §11's order,
 *     seqlock-consistent copies of one instrument's book (a writer that died
 *     mid-publish is MDJ_ERR_STALLED after a bounded wait), lookup by id and
 *     by symbol.
 *   - mdj_ring_*: a producer and a consumer of the ring file (§12) that
 *     interoperate with the Go package ring: generations (claim by CAS,
 *     join, replace with sealing, linger, removal under flock), heartbeats
 *     in CLOCK_MONOTONIC and peer liveness, records published by their
 *     header word (release store, next header zeroed, padding, end reserve),
 *     batched head release, futex waits with waiter counts and the
 *     membarrier rule, end of stream and dead peers, damage as mdj_error.
 *
 * Where format.md leaves a choice open (the order of the content rules, the
 * offset a damaged state record is reported at, which error a reader opening
 * a journal with a hole reports), this file makes the Go implementation's
 * choice, so that both report the same file, offset and kind; c/README.md
 * lists them.
 *
 * Not here (yet): compressed segments (`.seg.zst`, §14: zstd is a dependency
 * this file does not take; a reader that needs one fails with
 * MDJ_ERR_COMPRESSED) and named reader positions (§13). See the "future
 * sections" note at the end of the declarations.
 *
 * Mapping safety. Segment, index and control files are mapped; a file
 * truncated under the reader would make a load fault with SIGBUS. The reader
 * copies each frame out of the mapping (then checks the copy, so what it
 * returns is exactly what was checked) and runs every access to a mapping
 * under a guard: a SIGBUS handler (installed once, process-wide, chaining to
 * any handler that was there before) siglongjmps out of the guarded call,
 * which then fails with MDJ_ERR_TRUNCATED naming the file and the faulting
 * offset. Frames handed to the caller live in the reader's own buffer, so the
 * caller never touches a mapping. Pages are prefaulted 4 MiB ahead of the
 * reader (MADV_POPULATE_READ), so a tailing reader takes no page fault per
 * page. Set mdj_reader_options.no_sigbus_guard to
 * leave SIGBUS alone (a truncation then kills the process). A handler that the
 * application installs after opening a reader replaces the guard.
 *
 * The snapshot reader and both ring sides run every access to their mapping
 * under the same guard (a ring's zero-copy views returned by mdj_ring_read
 * and mdj_ring_try_read are read by the caller outside it; mdj_ring_read_batch
 * runs its handler inside it), and their idle paths compare the file size.
 *
 * Thread safety: a reader is used by one thread at a time;
 * mdj_reader_interrupt may be called from any thread or a signal handler.
 * A snapshot reader may be shared by threads (its calls only read); a ring
 * side is used by one thread at a time, mdj_ring_heartbeat excepted.
 */
#if defined(MDJOURNAL_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1 /* before any system header: the implementation needs POSIX + Linux */
#endif

#ifndef MDJOURNAL_H
#define MDJOURNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Format constants (format.md)                                            */
/* ---------------------------------------------------------------------- */

#define MDJ_VERSION 3                   /* journal format version (§10) */
#define MDJ_SEGMENT_HEADER_SIZE 4096    /* §2.1: frames start here */
#define MDJ_MIN_SEGMENT_SIZE 262144u    /* §2.1 capacity bounds */
#define MDJ_MAX_SEGMENT_SIZE 1073741824u
#define MDJ_FRAME_HEADER_SIZE 32        /* §3 */
#define MDJ_MAX_PAYLOAD 65504           /* payload + trailer */
#define MDJ_MAX_FRAME_SIZE 65536
#define MDJ_SOURCE_TRAILER_SIZE 16      /* §3.3 */
#define MDJ_INDEX_HEADER_SIZE 128       /* §5 */
#define MDJ_INDEX_ENTRY_SIZE 24
#define MDJ_INDEX_STRIDE 4096
#define MDJ_CTL_SIZE 4096               /* §6 */
#define MDJ_SYMBOL_LEN 16               /* §3.2 */
#define MDJ_MAX_PRICE_SCALE 18

/* Frame flags (frame header offset 26, §3.3). */
#define MDJ_FRAME_RESTATED 0x0001u
#define MDJ_FRAME_SOURCE 0x0002u
/* Payload flags (trade, order events, §3.2). */
#define MDJ_FLAG_HIDDEN 0x01u
/* State record flags (§2.2). */
#define MDJ_STATE_SEALED 0x1u
#define MDJ_STATE_CLEAN 0x2u

/* Message types (§3.2). */
enum {
    MDJ_TYPE_INVALID = 0,
    MDJ_TYPE_SEGMENT_END = 1,
    MDJ_TYPE_HEARTBEAT = 2,
    MDJ_TYPE_INSTRUMENT_DEF = 3,
    MDJ_TYPE_TRADE = 4,
    MDJ_TYPE_QUOTE = 5,
    MDJ_TYPE_BOOK_LEVEL = 6,
    MDJ_TYPE_ORDER_ADD = 7,
    MDJ_TYPE_ORDER_CANCEL = 8,
    MDJ_TYPE_ORDER_DELETE = 9,
    MDJ_TYPE_ORDER_EXECUTE = 10,
    MDJ_TYPE_RAW = 11,
    MDJ_TYPE_TRADING_STATUS = 12,
    MDJ_TYPE_GAP = 13,
    MDJ_TYPE_ORDER_REQUEST = 14,
    MDJ_TYPE_RISK_DECISION = 15,
    MDJ_TYPE_COUNT = 16
};

/* Sides, trading states, risk verdicts (§3.2). */
enum { MDJ_SIDE_NONE = 0, MDJ_SIDE_BID = 1, MDJ_SIDE_ASK = 2 };
enum {
    MDJ_STATUS_HALTED = 1,
    MDJ_STATUS_PAUSED = 2,
    MDJ_STATUS_QUOTATION_ONLY = 3,
    MDJ_STATUS_TRADING = 4
};
enum { MDJ_RISK_ACCEPTED = 1, MDJ_RISK_REJECTED = 2 };

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */
/* ---------------------------------------------------------------------- */

/* Result codes. 0 is success; every error is negative. The codes from
 * MDJ_ERR_BAD_MAGIC to MDJ_ERR_INDEX_MISMATCH, MDJ_ERR_NOT_REGULAR and
 * MDJ_ERR_ROLL_ORDER are data problems (Go: *journal.CorruptionError);
 * mdj_error names the file, offset and reason. */
enum {
    MDJ_OK = 0,
    MDJ_ERR_IO = -1,             /* a system call failed (mdj_error.sys_errno) */
    MDJ_ERR_NOT_FOUND = -2,      /* no journal in the directory */
    MDJ_ERR_NOT_REGULAR = -3,    /* a symlink, FIFO, device or directory where a journal file is expected */
    MDJ_ERR_BAD_MAGIC = -4,
    MDJ_ERR_VERSION = -5,
    MDJ_ERR_BAD_HEADER = -6,
    MDJ_ERR_CHECKSUM = -7,
    MDJ_ERR_BAD_LENGTH = -8,
    MDJ_ERR_CURSOR_RANGE = -9,
    MDJ_ERR_SEQUENCE = -10,
    MDJ_ERR_MISSING = -11,
    MDJ_ERR_TRUNCATED = -12,
    MDJ_ERR_MID_LOG = -13,
    MDJ_ERR_TORN_TAIL = -14,
    MDJ_ERR_INDEX_MISMATCH = -15,
    MDJ_ERR_COMPRESSED = -16,    /* compressed segment not supported by the C reader */
    MDJ_ERR_OUT_OF_RANGE = -17,  /* a seq before the first retained frame */
    MDJ_ERR_INTERRUPTED = -18,   /* mdj_reader_next after mdj_reader_interrupt */
    MDJ_ERR_INVALID = -19,       /* a bad argument */
    MDJ_ERR_NOMEM = -20,
    MDJ_ERR_SHORT = -21,         /* a payload shorter than its type's layout */
    MDJ_ERR_ROLL_ORDER = -22,    /* mdj_verify: bytes in a segment after the last activated one */
    MDJ_ERR_STALLED = -23,       /* snapshot: a slot stayed mid-publish (its writer died) */
    MDJ_ERR_EOF = -24,           /* ring: end of stream (producer closed, every record read) */
    MDJ_ERR_PEER_DEAD = -25,     /* ring: the other side's process is gone */
    MDJ_ERR_PEER_CLOSED = -26,   /* ring: the consumer detached (or never can attach) while the ring is full */
    MDJ_ERR_BUSY = -27,          /* ring: a live process holds the side */
    MDJ_ERR_LEFTOVER = -28,      /* ring: the path holds a leftover generation (not replaced) */
    MDJ_ERR_TIMEOUT = -29,       /* ring: attach or linger time ran out */
    MDJ_ERR_BAD_POSITION = -30,  /* ring: tail/head damaged (data damage) */
    MDJ_ERR_BAD_RECORD = -31,    /* ring: record header damaged (data damage) */
    MDJ_ERR_BAD_CAPACITY = -32,  /* ring: capacity not a power of two in [64, 2^32] (data damage) */
    MDJ_ERR_TOO_LARGE = -33,     /* ring: record larger than the maximum payload */
    MDJ_ERR_FULL = -34,          /* ring: no space now (try-write) */
    MDJ_ERR_UNDELIVERED = -35    /* ring: the producer closed with records nobody consumed */
};

#define MDJ_PATH_LEN 1024
#define MDJ_REASON_LEN 320

/* mdj_error describes a failure: the code, the file (a path; "" if none),
 * the byte offset in it (-1 if none), errno for MDJ_ERR_IO, and a reason. */
typedef struct mdj_error {
    int code;
    int sys_errno;
    int64_t offset;
    char file[MDJ_PATH_LEN];
    char reason[MDJ_REASON_LEN];
} mdj_error;

/* mdj_strerror names a code in words. */
const char *mdj_strerror(int code);
/* mdj_kind is the stable identifier `journalctl verify --json` uses for a
 * damage code ("checksum", "bad_length", ...); "other" for the rest. */
const char *mdj_kind(int code);
/* mdj_is_damage reports whether code is data damage. */
int mdj_is_damage(int code);

/* ---------------------------------------------------------------------- */
/* CRC-32C                                                                 */
/* ---------------------------------------------------------------------- */

/* mdj_crc32c is the CRC-32C of p[0,n) (init 0xFFFFFFFF, final xor). */
uint32_t mdj_crc32c(const void *p, size_t n);
/* mdj_crc32c_update continues crc over p[0,n) in the zlib convention
 * (complement, run the register, complement): update(0, p) == crc32c(p). */
uint32_t mdj_crc32c_update(uint32_t crc, const void *p, size_t n);
/* mdj_frame_crc is the checksum of a frame of `size` bytes stored at b:
 * mdj_crc32c_update(size, b + 8, size - 8) (format.md §3). size >= 8. */
uint32_t mdj_frame_crc(const void *b, uint32_t size);
/* mdj_crc32c_hardware reports whether the SSE4.2 instruction is in use. */
int mdj_crc32c_hardware(void);
/* mdj_crc32c_force_software makes every later CRC use the table (on != 0)
 * or the hardware again when present (on == 0). For tests. */
void mdj_crc32c_force_software(int on);

/* ---------------------------------------------------------------------- */
/* Frames and messages                                                     */
/* ---------------------------------------------------------------------- */

/* mdj_frame is a checked frame. payload points at the payload (without the
 * source trailer); for frames from a reader it lives in the reader's own
 * buffer and stays valid until the reader's next call. */
typedef struct mdj_frame {
    uint64_t seq;
    int64_t ts;            /* event time, Unix ns */
    uint16_t type;         /* MDJ_TYPE_* */
    uint16_t flags;        /* MDJ_FRAME_RESTATED, MDJ_FRAME_SOURCE */
    uint32_t instrument;
    const uint8_t *payload;
    uint32_t payload_len;
    int64_t recv_ts;       /* source trailer (flags & MDJ_FRAME_SOURCE), else 0 */
    uint64_t source_seq;
    uint32_t crc;          /* the stored checksum */
    uint32_t size;         /* header + payload + trailer, without padding */
    uint64_t segment;      /* segment number it was read from (0 for mdj_frame_decode) */
    int64_t offset;        /* its byte offset in that segment file */
    uint32_t epoch;        /* the segment's recovery epoch (§8.4) */
} mdj_frame;

/* mdj_frame_decode decodes and checks the frame at b, b[0,n) being readable:
 * commit word, size, checksum and content (§3; not seq continuity, which
 * needs the previous frame). It returns the bytes the frame occupies
 * (align8(size)) and fills *f (payload aliasing b), 0 when the commit word is
 * zero (nothing published), or a negative damage code with err filled
 * (offset relative to b). err may be NULL. */
long mdj_frame_decode(const void *b, size_t n, mdj_frame *f, mdj_error *err);

/* mdj_payload_size is the fixed payload size of a type, -1 for raw
 * (0..MDJ_MAX_PAYLOAD) and -2 for an unknown type. */
int mdj_payload_size(unsigned type);
/* mdj_type_name is the name of a type as the Go tools print it
 * ("instrument_def", ...), NULL when unknown. */
const char *mdj_type_name(unsigned type);
/* mdj_side_name: "bid", "ask", or "none" for anything else (as Go). */
const char *mdj_side_name(unsigned side);
/* mdj_status_name: "halted", "paused", "quotation_only", "trading",
 * "unknown". */
const char *mdj_status_name(unsigned status);

typedef struct mdj_instrument_def {
    char symbol[MDJ_SYMBOL_LEN + 1]; /* NUL-padded field, NUL-terminated */
    int64_t tick_size;               /* price units */
    int32_t price_scale;
} mdj_instrument_def;

typedef struct mdj_trade {
    int64_t price, qty;
    uint64_t trade_id;
    uint8_t aggressor, flags;
} mdj_trade;

typedef struct mdj_quote {
    int64_t bid_price, bid_qty, ask_price, ask_qty; /* qty 0: side empty */
} mdj_quote;

typedef struct mdj_book_level {
    int64_t price, qty; /* qty: the new aggregate; 0 removes the level */
    uint8_t side;
} mdj_book_level;

/* order_add, order_cancel, order_delete, order_execute. */
typedef struct mdj_order {
    uint64_t order_id;
    int64_t price, qty;
    uint8_t side, flags;
} mdj_order;

typedef struct mdj_trading_status {
    uint8_t status;   /* MDJ_STATUS_* */
    char reason[5];   /* the exchange's code: the field's 4 bytes as stored, then a NUL (a NUL inside
                         ends it early as a C string; Go's ReasonString trims only trailing NULs and spaces) */
} mdj_trading_status;

typedef struct mdj_gap {
    uint64_t first, count;
    char source[MDJ_SYMBOL_LEN + 1]; /* the field's 16 bytes as stored, then a NUL (as reason above) */
} mdj_gap;

typedef struct mdj_order_request {
    uint64_t order_id;
    int64_t price, qty;
    uint8_t side, flags;
    uint32_t strategy;
    uint64_t trigger_seq;
    int64_t trigger_ts, seen, decided;
} mdj_order_request;

typedef struct mdj_risk_decision {
    uint64_t order_id;
    int64_t price, qty;
    uint8_t side, verdict; /* MDJ_RISK_* */
    uint16_t reason;
    uint32_t strategy;
    uint64_t trigger_seq;
    int64_t requested, received, decided;
} mdj_risk_decision;

/* Decoders read a payload of n bytes (the frame's payload, trailer
 * excluded); MDJ_ERR_SHORT when n is below the layout's size, else MDJ_OK.
 * They read nothing past p[n) and accept any byte values (as Go). */
int mdj_decode_instrument_def(const uint8_t *p, size_t n, mdj_instrument_def *d);
int mdj_decode_trade(const uint8_t *p, size_t n, mdj_trade *t);
int mdj_decode_quote(const uint8_t *p, size_t n, mdj_quote *q);
int mdj_decode_book_level(const uint8_t *p, size_t n, mdj_book_level *l);
int mdj_decode_order(const uint8_t *p, size_t n, mdj_order *o);
int mdj_decode_trading_status(const uint8_t *p, size_t n, mdj_trading_status *s);
int mdj_decode_gap(const uint8_t *p, size_t n, mdj_gap *g);
int mdj_decode_order_request(const uint8_t *p, size_t n, mdj_order_request *o);
int mdj_decode_risk_decision(const uint8_t *p, size_t n, mdj_risk_decision *d);

/* ---------------------------------------------------------------------- */
/* Formatting                                                              */
/* ---------------------------------------------------------------------- */

#define MDJ_PRICE_BUF 40 /* enough for any mdj_format_price output */
#define MDJ_TIME_BUF 40  /* enough for any mdj_format_time output */

/* mdj_format_price writes p in decimal fixed point with `scale` digits
 * exactly as Go's journal.FormatPrice: scale <= 0 the integer; 1..19 a
 * decimal ("585.3300", "-0.0001"); above 19 "<int>e-<scale>". It writes at
 * most cap bytes including the NUL and returns the length of the full text
 * (like snprintf). */
size_t mdj_format_price(char *buf, size_t cap, int64_t p, int32_t scale);
/* mdj_format_time writes Unix nanoseconds as Go's RFC3339Nano in UTC
 * ("2012-06-21T13:30:00.01745961Z": trailing zeros of the fraction dropped,
 * no fraction when it is zero). Same return convention. */
size_t mdj_format_time(char *buf, size_t cap, int64_t ns);

/* ---------------------------------------------------------------------- */
/* Instrument catalogue (§3.4)                                             */
/* ---------------------------------------------------------------------- */

typedef struct mdj_instrument {
    uint32_t id;
    int defined;            /* an instrument_def was applied */
    char symbol[MDJ_SYMBOL_LEN + 1];
    int32_t price_scale;
    int64_t tick_size;
    uint8_t status;         /* MDJ_STATUS_*, 0 until a trading_status */
    char reason[5];
    uint64_t def_seq;       /* seq of the definition in effect */
} mdj_instrument;

/* mdj_catalog holds the latest definition and status per instrument id,
 * sorted by id. Initialise with mdj_catalog_init, free with
 * mdj_catalog_free. */
typedef struct mdj_catalog {
    mdj_instrument *items;
    size_t len, cap;
} mdj_catalog;

void mdj_catalog_init(mdj_catalog *c);
void mdj_catalog_free(mdj_catalog *c);
void mdj_catalog_reset(mdj_catalog *c);
/* mdj_catalog_apply applies an instrument_def or trading_status frame
 * (RESTATED or not); 1 if it changed the catalogue, 0 if not (other types
 * included), MDJ_ERR_NOMEM. */
int mdj_catalog_apply(mdj_catalog *c, const mdj_frame *f);
/* mdj_catalog_lookup returns instrument id or NULL. */
const mdj_instrument *mdj_catalog_lookup(const mdj_catalog *c, uint32_t id);
/* mdj_catalog_format_price renders p in id's scale, the raw integer when
 * id has no definition with a non-empty symbol (as Go's
 * Catalog.FormatPrice). */
size_t mdj_catalog_format_price(const mdj_catalog *c, uint32_t id, int64_t p, char *buf, size_t cap);

/* ---------------------------------------------------------------------- */
/* Segments                                                                */
/* ---------------------------------------------------------------------- */

enum {
    MDJ_SEG_PREPARED = 1,   /* reserved, never activated */
    MDJ_SEG_ACTIVE = 2,     /* activated, not sealed */
    MDJ_SEG_SEALED = 3,
    MDJ_SEG_COMPRESSED = 4, /* .seg.zst (header page readable, frames not) */
    MDJ_SEG_DAMAGED = 5     /* header or state failed its check */
};

typedef struct mdj_segment_info {
    uint64_t number;
    int state;              /* MDJ_SEG_* */
    uint64_t journal_id;
    uint64_t first_seq;
    uint64_t capacity;
    int64_t created;
    uint32_t epoch;
    uint64_t write_cursor;
    uint64_t durable_offset, durable_seq, last_seq; /* current state record */
    uint32_t state_flags;
    int64_t file_size;
} mdj_segment_info;

/* mdj_list_segments lists dir's segments in order (raw and compressed;
 * when both exist the raw one, which is authoritative) from their header
 * pages, without reading frames. *out is malloc'ed (free it); a segment whose
 * header fails its check is listed as MDJ_SEG_DAMAGED. */
int mdj_list_segments(const char *dir, mdj_segment_info **out, size_t *n, mdj_error *err);

/* ---------------------------------------------------------------------- */
/* Reader                                                                  */
/* ---------------------------------------------------------------------- */

enum { MDJ_FROM_START = 0, MDJ_FROM_END = 1, MDJ_FROM_SEQ = 2, MDJ_FROM_TIME = 3 };
enum { MDJ_WAIT_BACKOFF = 0, MDJ_WAIT_SPIN = 1, MDJ_WAIT_YIELD = 2, MDJ_WAIT_FUTEX = 3 };

typedef struct mdj_reader_options {
    int from;          /* MDJ_FROM_*; the zero value reads from the start */
    uint64_t seq;      /* MDJ_FROM_SEQ: the first frame returned has this seq (waits for it) */
    int64_t ts;        /* MDJ_FROM_TIME: the first frame with ts >= this (Unix ns) in seq order (§5: the
                          first occurrence when time goes back; later frames may be older) */
    int wait;          /* MDJ_WAIT_*: how mdj_reader_next idles (default backoff) */
    int no_sigbus_guard;
} mdj_reader_options;

typedef struct mdj_reader mdj_reader;

typedef struct mdj_reader_stats {
    uint64_t frames;       /* frames returned */
    uint64_t rolls;        /* segments followed */
    uint64_t futex_waits;  /* FUTEX_WAIT calls */
    uint64_t sleeps;       /* back-off sleeps */
} mdj_reader_stats;

/* mdj_reader_open opens the journal in dir at opts->from (opts NULL: from
 * the start, backoff). It reads every segment's header: a wrong magic fails
 * the open, segments never activated are skipped, the activated ones must be
 * contiguous (MDJ_ERR_MISSING), a symlink or special file is refused
 * (MDJ_ERR_NOT_REGULAR); no activated segment is MDJ_ERR_NOT_FOUND. Damage
 * met while positioning fails the open. */
int mdj_reader_open(mdj_reader **out, const char *dir, const mdj_reader_options *opts, mdj_error *err);
/* mdj_reader_try_next: 1 and *f when a frame is published, 0 when none is
 * yet, or a negative code (details in mdj_reader_error). Errors are sticky:
 * a reader never skips damage. */
int mdj_reader_try_next(mdj_reader *r, mdj_frame *f);
/* mdj_reader_next waits for the next frame with the configured strategy,
 * at most timeout_ns (< 0: no limit): 1 and *f, 0 on timeout, or a negative
 * code (MDJ_ERR_INTERRUPTED after mdj_reader_interrupt). */
int mdj_reader_next(mdj_reader *r, mdj_frame *f, int64_t timeout_ns);
/* mdj_reader_interrupt makes a blocked (or the next) mdj_reader_next return
 * MDJ_ERR_INTERRUPTED once no frame is ready: frames already published are
 * returned first. Any thread; async-signal-safe. */
void mdj_reader_interrupt(mdj_reader *r);
const mdj_error *mdj_reader_error(const mdj_reader *r);
/* mdj_reader_catalog: the instruments as of the last frame read, complete
 * from any starting position (§3.4). */
const mdj_catalog *mdj_reader_catalog(const mdj_reader *r);
/* mdj_reader_wait_strategy: the strategy in use (backoff when futex was
 * asked for but journal.ctl cannot be written or is unusable, §6). */
int mdj_reader_wait_strategy(const mdj_reader *r);
uint64_t mdj_reader_last_seq(const mdj_reader *r);
uint64_t mdj_reader_segment(const mdj_reader *r, int64_t *next_offset);
uint32_t mdj_reader_epoch(const mdj_reader *r);
uint64_t mdj_reader_journal_id(const mdj_reader *r);
void mdj_reader_stats_get(const mdj_reader *r, mdj_reader_stats *s);
void mdj_reader_close(mdj_reader *r);

/* ---------------------------------------------------------------------- */
/* Verify                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct mdj_problem {
    const char *severity;  /* "damage", "torn", "index", "unchecked" */
    int code;              /* MDJ_ERR_* */
    const char *kind;      /* mdj_kind(code), or "compressed" */
    char file[64];         /* base name, e.g. 00000000000000000001.seg */
    int64_t offset;
    char reason[MDJ_REASON_LEN];
} mdj_problem;

typedef struct mdj_verify_report {
    uint64_t journal_id;
    size_t segments;       /* segment files (raw or compressed) */
    int64_t frames;        /* good data frames seen */
    uint64_t first_seq, last_seq;
    int writer_live;       /* another process holds journal.lock */
    int writer_pid;
    mdj_problem *problems; /* in file order: per segment its first problem, then its index's */
    size_t nproblems;
} mdj_verify_report;

/* mdj_verify checks every segment of dir (static header, state record,
 * every frame, the damage verdict of format.md §8.1, the write cursor) and
 * its index, and reports per segment the first problem found. Returns MDJ_OK
 * when the walk ran (problems or not; rep->nproblems says), an error when it
 * could not run. Free with mdj_verify_free. */
int mdj_verify(const char *dir, mdj_verify_report *rep, mdj_error *err);
void mdj_verify_free(mdj_verify_report *rep);

/* ---------------------------------------------------------------------- */
/* Snapshot file (format.md §11)                                           */
/* ---------------------------------------------------------------------- */

#define MDJ_SNAP_VERSION 2             /* snapshot format version (§11) */
#define MDJ_SNAP_HEADER_SIZE 4096
#define MDJ_SNAP_MAX_DEPTH 256
#define MDJ_SNAP_MAX_CAPACITY 1048576u

typedef struct mdj_snap_level {
    int64_t price; /* fixed point, price_scale decimal digits */
    int64_t qty;
} mdj_snap_level;

/* mdj_snap_book is one consistent copy of an instrument's slot. bids[0..
 * bid_count) best (highest) first, asks[0..ask_count) best (lowest) first;
 * entries past the counts are not part of the book (left as they were). */
typedef struct mdj_snap_book {
    uint64_t seq;        /* journal seq the copy reflects; 0: no book published yet */
    int64_t ts;          /* exchange time of that message, Unix ns */
    uint32_t instrument;
    int32_t price_scale;
    char symbol[MDJ_SYMBOL_LEN + 1]; /* NUL-terminated */
    uint32_t bid_count, ask_count;
    int64_t trade_price, trade_qty, trade_ts; /* last trade (0 if none) */
    mdj_snap_level bids[MDJ_SNAP_MAX_DEPTH];
    mdj_snap_level asks[MDJ_SNAP_MAX_DEPTH];
} mdj_snap_book;

typedef struct mdj_snap_options {
    int64_t stall_timeout_ns; /* a slot whose counter stays at one odd value this long is
                                 MDJ_ERR_STALLED (the writer died mid-publish); 0: 1 s */
    int no_sigbus_guard;      /* leave SIGBUS alone (a truncation then kills the process) */
} mdj_snap_options;

typedef struct mdj_snap mdj_snap;

/* mdj_snap_open opens a snapshot file read-only (follows a symlink, refuses
 * anything but a regular file, never blocks on a FIFO), validates its header
 * with pread in the order of §11 "Validation on open" (MDJ_ERR_TRUNCATED at
 * the file size, MDJ_ERR_BAD_MAGIC at 0, MDJ_ERR_VERSION at 8,
 * MDJ_ERR_CHECKSUM at 56, MDJ_ERR_BAD_HEADER at 12/24/28/32/48) and maps it. */
int mdj_snap_open(mdj_snap **out, const char *path, const mdj_snap_options *opts, mdj_error *err);
/* mdj_snap_read copies instrument id's slot under its seqlock (§11 "Seqlock
 * protocol"): retried until the counter was even and unchanged across the
 * copy, so *b is exactly a state the writer published. MDJ_OK, or
 * MDJ_ERR_INVALID (id >= capacity), MDJ_ERR_STALLED (the counter stayed odd,
 * offset of the slot), MDJ_ERR_BAD_HEADER (a stable slot with counts above
 * the depth, offset of the counts word), MDJ_ERR_TRUNCATED (file truncated
 * under the reader: the faulting offset). A slot never written reads as a
 * zero book (seq 0). */
int mdj_snap_read(mdj_snap *s, uint32_t id, mdj_snap_book *b, mdj_error *err);
/* mdj_snap_lookup finds the slot whose symbol is symbol (each slot's symbol
 * read under its seqlock): 1 and *id, 0 when no slot has it (err->code is
 * then MDJ_ERR_STALLED if a stalled slot was skipped, else MDJ_OK), or a
 * negative code (truncation). */
int mdj_snap_lookup(mdj_snap *s, const char *symbol, uint32_t *id, mdj_error *err);
/* mdj_snap_last_applied: the header's last_applied (acquire load), read
 * before the slots a late joiner copies (§11 "Sequence numbers"). */
uint64_t mdj_snap_last_applied(const mdj_snap *s);
/* mdj_snap_writer_pid: the header's writer_pid (0: closed cleanly). */
uint32_t mdj_snap_writer_pid(const mdj_snap *s);
uint64_t mdj_snap_journal_id(const mdj_snap *s);
uint32_t mdj_snap_depth(const mdj_snap *s);
uint32_t mdj_snap_capacity(const mdj_snap *s);
int64_t mdj_snap_created(const mdj_snap *s);
/* mdj_snap_replaced: 1 when the path now names another file (the builder
 * renamed a new one over it: reopen), 0 when not, or a negative code. */
int mdj_snap_replaced(const mdj_snap *s, mdj_error *err);
void mdj_snap_close(mdj_snap *s);

/* ---------------------------------------------------------------------- */
/* Ring file (format.md §12, ring format version 2)                        */
/* ---------------------------------------------------------------------- */

#define MDJ_RING_VERSION 2
#define MDJ_RING_HEADER_SIZE 4096
#define MDJ_RING_MIN_CAPACITY 64u
#define MDJ_RING_MAX_CAPACITY 4294967296ull
#define MDJ_RING_DEFAULT_CAPACITY 1048576u
enum { MDJ_RING_FREE = 0, MDJ_RING_ATTACHED = 1, MDJ_RING_CLOSED = 2, MDJ_RING_RETIRED = 3 };

/* Options of both sides; the zero value (or NULL) is valid. */
typedef struct mdj_ring_options {
    int wait;                  /* MDJ_WAIT_*: how blocking calls idle (default MDJ_WAIT_BACKOFF); MDJ_WAIT_FUTEX
                                  sleeps on the ring's signal words (§12 "Waiting") */
    int64_t peer_timeout_ns;   /* a peer heartbeat older than this is dead (0: 3 s; at least 1 s) */
    int64_t attach_timeout_ns; /* consumer: how long to wait for a generation with a producer
                                  (0: 10 s; < 0: look once) */
    uint64_t capacity;         /* producer creating a generation: data area bytes, a power of two in
                                  [64, 2^32] (0: 1 MiB) */
    int replace;               /* producer: replace a leftover generation (else MDJ_ERR_LEFTOVER) */
    int keep;                  /* producer that created its file: leave it at close */
    int64_t linger_ns;         /* producer that created its file: how long close waits for the consumer
                                  to drain, detach or die (0: 30 s; < 0: do not wait) */
    unsigned perm;             /* mode of a created file (0: 0600) */
    int no_sigbus_guard;       /* leave SIGBUS alone (a truncation then kills the process) */
    int beat_thread;           /* run a thread that beats every 100 ms while attached, as Go's keeper
                                  does; without it the process
                                  must not leave the ring alone > 100 ms (see mdj_ring_heartbeat) */
} mdj_ring_options;

typedef struct mdj_ring mdj_ring;

/* mdj_ring_consumer_open attaches this process as the consumer of the ring
 * generation at path (§12 "Generations"): it waits up to
 * attach_timeout_ns for a generation whose consumer side was never used and
 * whose producer is attached and alive or still to come, claims the consumer
 * side, then waits (same bound) for the producer. A leftover is never
 * attached. Errors: MDJ_ERR_BUSY (a live consumer holds it), MDJ_ERR_TIMEOUT
 * (no producer), MDJ_ERR_NOT_REGULAR, or the header's damage (validation
 * table of §12: file, offset, reason). */
int mdj_ring_consumer_open(mdj_ring **out, const char *path, const mdj_ring_options *opts, mdj_error *err);
/* mdj_ring_producer_open attaches this process as the producer at path:
 * joins a generation whose consumer waits for a producer, or creates a new
 * generation (built under a temporary name with the producer side claimed,
 * then linked into place; a leftover is replaced, its free sides sealed,
 * under its flock, only with opts->replace). A live producer is
 * MDJ_ERR_BUSY; a leftover without replace is MDJ_ERR_LEFTOVER. */
int mdj_ring_producer_open(mdj_ring **out, const char *path, const mdj_ring_options *opts, mdj_error *err);

/* Consumer. mdj_ring_try_read returns 1 and a zero-copy view of the next
 * record (valid until the next read call or close), 0 when none is
 * published yet, or a negative code (sticky damage: MDJ_ERR_BAD_RECORD at
 * 4096 + index, MDJ_ERR_BAD_POSITION at 128, MDJ_ERR_TRUNCATED). The view is
 * read outside the SIGBUS guard. */
int mdj_ring_try_read(mdj_ring *r, const void **p, uint32_t *len);
/* mdj_ring_read waits up to timeout_ns (< 0: no limit) for a record: 1 and
 * the view, 0 on timeout, MDJ_ERR_EOF at the end of the stream (producer
 * closed and every record read), MDJ_ERR_PEER_DEAD (the producer died;
 * everything it published was returned first), or damage. */
int mdj_ring_read(mdj_ring *r, const void **p, uint32_t *len, int64_t timeout_ns);
typedef void (*mdj_ring_handler)(void *ctx, const void *p, uint32_t len);
/* mdj_ring_read_batch hands up to limit records to fn (views valid inside
 * fn, run under the SIGBUS guard), waiting up to timeout_ns for the first:
 * the count, 0 on timeout, or a negative code as mdj_ring_read. */
long mdj_ring_read_batch(mdj_ring *r, long limit, mdj_ring_handler fn, void *ctx, int64_t timeout_ns);

/* Producer. mdj_ring_claim reserves an n-byte record and sets *p to its
 * payload in the ring (fill it in place), waiting up to timeout_ns for
 * space: MDJ_OK, MDJ_ERR_FULL (timeout 0 and no space), MDJ_ERR_TIMEOUT,
 * MDJ_ERR_TOO_LARGE (n > mdj_ring_max_payload), MDJ_ERR_PEER_CLOSED,
 * MDJ_ERR_PEER_DEAD, damage. mdj_ring_commit completes it; with flush 0 the
 * record is staged and becomes visible with the next flush (a batch is
 * published by one store). */
int mdj_ring_claim(mdj_ring *r, uint32_t n, void **p, int64_t timeout_ns);
int mdj_ring_commit(mdj_ring *r, int flush);
int mdj_ring_flush(mdj_ring *r);
/* mdj_ring_write copies one record in and publishes it (claim + commit). */
int mdj_ring_write(mdj_ring *r, const void *p, uint32_t n, int64_t timeout_ns);

/* mdj_ring_heartbeat refreshes this side's heartbeat (MDJ_OK, or
 * MDJ_ERR_TRUNCATED if the file lost its pages; r's error is left alone).
 * The library beats from idle loops and, at most every 50 ms, from the
 * publishing and releasing paths; a process that leaves the ring alone for
 * longer than 100 ms (§12 "Liveness": beat every <= 100 ms while attached)
 * must call this, from any thread, also while another thread uses r, or
 * its peer judges it dead after the peer timeout. Not after close. */
int mdj_ring_heartbeat(mdj_ring *r);
/* mdj_ring_close detaches. A consumer releases what it read, stores head,
 * CLOSED and wakes the producer. A producer publishes what was staged,
 * stores tail and CLOSED (end of stream) and wakes the consumer; if it
 * created the file it lingers (linger_ns) until the consumer drained it,
 * detached or died, then removes the file (unless keep) if the path still
 * names it. Returns MDJ_OK, MDJ_ERR_UNDELIVERED or MDJ_ERR_PEER_DEAD
 * (records not consumed), or the sticky error; err (may be NULL) says why.
 * r is freed in every case. */
int mdj_ring_close(mdj_ring *r, mdj_error *err);
/* mdj_ring_error: the last error of a call on r (file, offset, reason). */
const mdj_error *mdj_ring_error(const mdj_ring *r);
uint64_t mdj_ring_capacity(const mdj_ring *r);
uint32_t mdj_ring_max_payload(const mdj_ring *r); /* capacity/2 - 8 */
uint64_t mdj_ring_generation(const mdj_ring *r);
uint64_t mdj_ring_position(const mdj_ring *r);    /* bytes consumed (consumer) or published (producer) */
int mdj_ring_created(const mdj_ring *r);          /* producer: 1 if it created the generation */

/*
 * Future sections. Named reader positions (§13) and compressed segments
 * (§14) will get their own blocks here ("mdj_pos_*", "mdj_archive_*"), each
 * self-contained, reusing mdj_error, the CRC and the SIGBUS guard.
 */

#ifdef __cplusplus
}
#endif
#endif /* MDJOURNAL_H */

/* ====================================================================== */
/* Implementation                                                          */
/* ====================================================================== */

#ifdef MDJOURNAL_IMPLEMENTATION
#ifndef MDJOURNAL_IMPLEMENTED
#define MDJOURNAL_IMPLEMENTED

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/futex.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if !defined(SYS_futex) || !defined(O_NOFOLLOW) || !defined(SA_NODEFER)
#error "mdjournal.h: define _GNU_SOURCE (or include mdjournal.h first) in the MDJOURNAL_IMPLEMENTATION file"
#endif

#if defined(__x86_64__) && !defined(MDJ_NO_SSE42)
#define MDJ__X86 1
#include <cpuid.h>
#include <nmmintrin.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define MDJ__BIG_ENDIAN 1
#endif

#ifdef __cplusplus
#define MDJ__TLS thread_local
#define MDJ__CAST(T, v) static_cast<T>(v)
#define MDJ__U(p) reinterpret_cast<uintptr_t>(p)
extern "C" {
#else
#define MDJ__TLS _Thread_local
#define MDJ__CAST(T, v) ((T)(v))
#define MDJ__U(p) ((uintptr_t)(p))
#endif

#if defined(__GNUC__)
#define MDJ__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MDJ__PRINTF(a, b)
#endif

/* ---- little-endian loads ------------------------------------------------ */

static uint16_t mdj__le16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
#ifdef MDJ__BIG_ENDIAN
    v = __builtin_bswap16(v);
#endif
    return v;
}
static uint32_t mdj__le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
#ifdef MDJ__BIG_ENDIAN
    v = __builtin_bswap32(v);
#endif
    return v;
}
static uint64_t mdj__le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#ifdef MDJ__BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    return v;
}
static void mdj__put64(uint8_t *p, uint64_t v) {
#ifdef MDJ__BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}
/* Atomic loads of aligned words in a shared mapping. */
static uint64_t mdj__load64_acq(const uint8_t *p) {
    uint64_t v = __atomic_load_n(MDJ__CAST(const uint64_t *, MDJ__CAST(const void *, p)), __ATOMIC_ACQUIRE);
#ifdef MDJ__BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    return v;
}
static uint64_t mdj__load64_relaxed(const uint8_t *p) {
    uint64_t v = __atomic_load_n(MDJ__CAST(const uint64_t *, MDJ__CAST(const void *, p)), __ATOMIC_RELAXED);
#ifdef MDJ__BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    return v;
}
static uint64_t mdj__align8(uint64_t n) { return (n + 7) & ~MDJ__CAST(uint64_t, 7); }

/* ---- errors --------------------------------------------------------------- */

const char *mdj_strerror(int code) {
    switch (code) {
    case MDJ_OK: return "ok";
    case MDJ_ERR_IO: return "i/o error";
    case MDJ_ERR_NOT_FOUND: return "no journal in directory";
    case MDJ_ERR_NOT_REGULAR: return "not a regular file";
    case MDJ_ERR_BAD_MAGIC: return "bad magic";
    case MDJ_ERR_VERSION: return "unsupported format version";
    case MDJ_ERR_BAD_HEADER: return "bad header";
    case MDJ_ERR_CHECKSUM: return "checksum mismatch";
    case MDJ_ERR_BAD_LENGTH: return "bad frame length";
    case MDJ_ERR_CURSOR_RANGE: return "write cursor out of range";
    case MDJ_ERR_SEQUENCE: return "sequence discontinuity";
    case MDJ_ERR_MISSING: return "missing segment";
    case MDJ_ERR_TRUNCATED: return "file truncated";
    case MDJ_ERR_MID_LOG: return "damage before valid data";
    case MDJ_ERR_TORN_TAIL: return "torn tail";
    case MDJ_ERR_INDEX_MISMATCH: return "index does not match data";
    case MDJ_ERR_COMPRESSED: return "compressed segment not supported by the C reader";
    case MDJ_ERR_OUT_OF_RANGE: return "position out of range";
    case MDJ_ERR_INTERRUPTED: return "interrupted";
    case MDJ_ERR_INVALID: return "invalid argument";
    case MDJ_ERR_NOMEM: return "out of memory";
    case MDJ_ERR_SHORT: return "payload too short";
    case MDJ_ERR_ROLL_ORDER: return "a sealed segment without an activated successor";
    case MDJ_ERR_STALLED: return "slot stalled mid-publish";
    case MDJ_ERR_EOF: return "end of stream";
    case MDJ_ERR_PEER_DEAD: return "peer process is dead";
    case MDJ_ERR_PEER_CLOSED: return "peer closed";
    case MDJ_ERR_BUSY: return "side already attached";
    case MDJ_ERR_LEFTOVER: return "leftover ring file";
    case MDJ_ERR_TIMEOUT: return "timed out";
    case MDJ_ERR_BAD_POSITION: return "position out of range";
    case MDJ_ERR_BAD_RECORD: return "bad record";
    case MDJ_ERR_BAD_CAPACITY: return "bad capacity";
    case MDJ_ERR_TOO_LARGE: return "record too large";
    case MDJ_ERR_FULL: return "ring full";
    case MDJ_ERR_UNDELIVERED: return "records not delivered";
    }
    return "unknown error";
}

const char *mdj_kind(int code) {
    switch (code) {
    case MDJ_ERR_BAD_MAGIC: return "bad_magic";
    case MDJ_ERR_VERSION: return "version";
    case MDJ_ERR_BAD_HEADER: return "bad_header";
    case MDJ_ERR_CHECKSUM: return "checksum";
    case MDJ_ERR_BAD_LENGTH: return "bad_length";
    case MDJ_ERR_CURSOR_RANGE: return "cursor_range";
    case MDJ_ERR_SEQUENCE: return "sequence";
    case MDJ_ERR_MISSING: return "missing";
    case MDJ_ERR_TRUNCATED: return "truncated";
    case MDJ_ERR_MID_LOG: return "mid_log";
    case MDJ_ERR_TORN_TAIL: return "torn_tail";
    case MDJ_ERR_INDEX_MISMATCH: return "index_mismatch";
    case MDJ_ERR_COMPRESSED: return "compressed";
    case MDJ_ERR_NOT_REGULAR: return "not_regular";
    case MDJ_ERR_ROLL_ORDER: return "roll_order";
    case MDJ_ERR_BAD_POSITION: return "bad_position";
    case MDJ_ERR_BAD_RECORD: return "bad_record";
    case MDJ_ERR_BAD_CAPACITY: return "bad_capacity";
    }
    return "other";
}

int mdj_is_damage(int code) {
    return (code <= MDJ_ERR_BAD_MAGIC && code >= MDJ_ERR_INDEX_MISMATCH) || code == MDJ_ERR_NOT_REGULAR ||
           code == MDJ_ERR_ROLL_ORDER || code == MDJ_ERR_BAD_POSITION || code == MDJ_ERR_BAD_RECORD ||
           code == MDJ_ERR_BAD_CAPACITY;
}

static void mdj__err_clear(mdj_error *e) {
    if (!e) return;
    e->code = 0;
    e->sys_errno = 0;
    e->offset = -1;
    e->file[0] = 0;
    e->reason[0] = 0;
}

static int mdj__errv(mdj_error *e, int code, const char *file, int64_t off, const char *fmt, va_list ap) {
    if (!e) return code;
    e->code = code;
    e->sys_errno = 0;
    e->offset = off;
    snprintf(e->file, sizeof e->file, "%s", file ? file : "");
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    return code;
}

static int mdj__err(mdj_error *e, int code, const char *file, int64_t off, const char *fmt, ...) MDJ__PRINTF(5, 6);
static int mdj__err(mdj_error *e, int code, const char *file, int64_t off, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mdj__errv(e, code, file, off, fmt, ap);
    va_end(ap);
    return code;
}

static int mdj__sys(mdj_error *e, const char *file, const char *what) {
    int saved = errno;
    mdj__err(e, MDJ_ERR_IO, file, -1, "%s: %s", what, strerror(saved));
    if (e) e->sys_errno = saved;
    return MDJ_ERR_IO;
}

/* ---- CRC-32C ------------------------------------------------------------- */

static uint32_t mdj__crc_tab[8][256];
static int mdj__crc_mode; /* 0 unset, 1 initialising, 2 hardware, 3 table */
static int mdj__crc_force_sw;

static void mdj__crc_init_table(void) {
    uint32_t i, k;
    for (i = 0; i < 256; i++) {
        uint32_t c = i;
        for (k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        mdj__crc_tab[0][i] = c;
    }
    for (i = 0; i < 256; i++)
        for (k = 1; k < 8; k++)
            mdj__crc_tab[k][i] = (mdj__crc_tab[k - 1][i] >> 8) ^ mdj__crc_tab[0][mdj__crc_tab[k - 1][i] & 0xff];
}

static int mdj__crc_setup(void) {
    int m = __atomic_load_n(&mdj__crc_mode, __ATOMIC_ACQUIRE);
    if (m >= 2) return m;
    int expected = 0;
    if (__atomic_compare_exchange_n(&mdj__crc_mode, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        int hw = 0;
        mdj__crc_init_table();
#ifdef MDJ__X86
        {
            unsigned a, b, c, d;
            if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2)) hw = 1;
        }
#endif
        __atomic_store_n(&mdj__crc_mode, hw ? 2 : 3, __ATOMIC_RELEASE);
        return hw ? 2 : 3;
    }
    while ((m = __atomic_load_n(&mdj__crc_mode, __ATOMIC_ACQUIRE)) < 2) sched_yield();
    return m;
}

/* Runs the (non-complemented) CRC register over p[0,n). */
static uint32_t mdj__crc_sw(uint32_t c, const uint8_t *p, size_t n) {
    while (n && (MDJ__U(p) & 7)) {
        c = mdj__crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo = mdj__le32(p) ^ c, hi = mdj__le32(p + 4);
        c = mdj__crc_tab[7][lo & 0xff] ^ mdj__crc_tab[6][(lo >> 8) & 0xff] ^ mdj__crc_tab[5][(lo >> 16) & 0xff] ^
            mdj__crc_tab[4][lo >> 24] ^ mdj__crc_tab[3][hi & 0xff] ^ mdj__crc_tab[2][(hi >> 8) & 0xff] ^
            mdj__crc_tab[1][(hi >> 16) & 0xff] ^ mdj__crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = mdj__crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#ifdef MDJ__X86
__attribute__((target("sse4.2"))) static uint32_t mdj__crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    uint64_t c64;
    while (n && (MDJ__U(p) & 7)) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
    c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = MDJ__CAST(uint32_t, c64);
    while (n--) c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

static uint32_t mdj__crc_reg(uint32_t c, const uint8_t *p, size_t n) {
    int m = mdj__crc_setup();
#ifdef MDJ__X86
    if (m == 2 && !__atomic_load_n(&mdj__crc_force_sw, __ATOMIC_RELAXED)) return mdj__crc_hw(c, p, n);
#else
    (void)m;
#endif
    return mdj__crc_sw(c, p, n);
}

uint32_t mdj_crc32c_update(uint32_t crc, const void *p, size_t n) {
    return ~mdj__crc_reg(~crc, MDJ__CAST(const uint8_t *, p), n);
}
uint32_t mdj_crc32c(const void *p, size_t n) { return mdj_crc32c_update(0, p, n); }
uint32_t mdj_frame_crc(const void *b, uint32_t size) {
    return mdj_crc32c_update(size, MDJ__CAST(const uint8_t *, b) + 8, size - 8);
}
int mdj_crc32c_hardware(void) {
    return mdj__crc_setup() == 2 && !__atomic_load_n(&mdj__crc_force_sw, __ATOMIC_RELAXED);
}
void mdj_crc32c_force_software(int on) { __atomic_store_n(&mdj__crc_force_sw, on ? 1 : 0, __ATOMIC_RELAXED); }

/* ---- names, sizes ---------------------------------------------------------- */

static const char *const mdj__type_names[MDJ_TYPE_COUNT] = {
    "invalid", "segment_end", "heartbeat", "instrument_def", "trade", "quote", "book_level", "order_add",
    "order_cancel", "order_delete", "order_execute", "raw", "trading_status", "gap", "order_request", "risk_decision"};

const char *mdj_type_name(unsigned type) { return type < MDJ_TYPE_COUNT ? mdj__type_names[type] : NULL; }

const char *mdj_side_name(unsigned side) {
    return side == MDJ_SIDE_BID ? "bid" : side == MDJ_SIDE_ASK ? "ask" : "none";
}

const char *mdj_status_name(unsigned s) {
    switch (s) {
    case MDJ_STATUS_HALTED: return "halted";
    case MDJ_STATUS_PAUSED: return "paused";
    case MDJ_STATUS_QUOTATION_ONLY: return "quotation_only";
    case MDJ_STATUS_TRADING: return "trading";
    }
    return "unknown";
}

int mdj_payload_size(unsigned type) {
    switch (type) {
    case MDJ_TYPE_SEGMENT_END:
    case MDJ_TYPE_HEARTBEAT: return 0;
    case MDJ_TYPE_INSTRUMENT_DEF:
    case MDJ_TYPE_TRADE:
    case MDJ_TYPE_QUOTE: return 32;
    case MDJ_TYPE_BOOK_LEVEL: return 24;
    case MDJ_TYPE_ORDER_ADD:
    case MDJ_TYPE_ORDER_CANCEL:
    case MDJ_TYPE_ORDER_DELETE:
    case MDJ_TYPE_ORDER_EXECUTE: return 32;
    case MDJ_TYPE_RAW: return -1;
    case MDJ_TYPE_TRADING_STATUS: return 16;
    case MDJ_TYPE_GAP: return 32;
    case MDJ_TYPE_ORDER_REQUEST:
    case MDJ_TYPE_RISK_DECISION: return 64;
    }
    return -2;
}

/* ---- frame checks ---------------------------------------------------------- */

/* Parses the header of a frame whose bytes [0,size) are in b (commit word
 * included) and applies the content rules of §3. The checksum is checked by
 * the caller. Returns 0 or a damage code with *why set. */
static int mdj__frame_content(const uint8_t *b, uint32_t size, uint32_t crc, mdj_frame *f, char *why, size_t whylen) {
    uint32_t body;
    int want;
    f->seq = mdj__le64(b + 8);
    f->ts = MDJ__CAST(int64_t, mdj__le64(b + 16));
    f->type = mdj__le16(b + 24);
    f->flags = mdj__le16(b + 26);
    f->instrument = mdj__le32(b + 28);
    f->crc = crc;
    f->size = size;
    f->recv_ts = 0;
    f->source_seq = 0;
    /* The order of the rules is the Go implementation's (journal.CheckContent). */
    want = mdj_payload_size(f->type);
    if (want == -2 || f->type == MDJ_TYPE_INVALID) {
        snprintf(why, whylen, "unknown message type %u", f->type);
        return MDJ_ERR_BAD_HEADER;
    }
    if (f->flags & ~(MDJ_FRAME_RESTATED | MDJ_FRAME_SOURCE)) {
        snprintf(why, whylen, "unknown frame flags 0x%04x", f->flags);
        return MDJ_ERR_BAD_HEADER;
    }
    body = size - MDJ_FRAME_HEADER_SIZE;
    if (f->flags & MDJ_FRAME_SOURCE) {
        if (body < MDJ_SOURCE_TRAILER_SIZE) {
            snprintf(why, whylen, "frame flagged with a source trailer is too short for it");
            return MDJ_ERR_BAD_LENGTH;
        }
        body -= MDJ_SOURCE_TRAILER_SIZE;
        f->recv_ts = MDJ__CAST(int64_t, mdj__le64(b + MDJ_FRAME_HEADER_SIZE + body));
        f->source_seq = mdj__le64(b + MDJ_FRAME_HEADER_SIZE + body + 8);
    }
    if (want >= 0 ? body != MDJ__CAST(uint32_t, want) : body > MDJ_MAX_PAYLOAD) {
        snprintf(why, whylen, "%s payload is %u bytes, want %d", mdj__type_names[f->type], body, want);
        return MDJ_ERR_BAD_LENGTH;
    }
    if ((f->flags & MDJ_FRAME_RESTATED) && f->type != MDJ_TYPE_INSTRUMENT_DEF && f->type != MDJ_TYPE_TRADING_STATUS) {
        snprintf(why, whylen, "only instrument_def and trading_status frames are re-stated");
        return MDJ_ERR_BAD_HEADER;
    }
    f->payload = b + MDJ_FRAME_HEADER_SIZE;
    f->payload_len = body;
    return 0;
}

/* Size bounds of a commit word's size (frame at offset off of a region of
 * `room` bytes from off). */
static int mdj__size_ok(uint32_t size, uint64_t room) {
    return size >= MDJ_FRAME_HEADER_SIZE && size <= MDJ_MAX_FRAME_SIZE && mdj__align8(size) <= room;
}

long mdj_frame_decode(const void *bv, size_t n, mdj_frame *f, mdj_error *err) {
    const uint8_t *b = MDJ__CAST(const uint8_t *, bv);
    uint64_t w;
    uint32_t size, crc;
    char why[200];
    int rc;
    mdj__err_clear(err);
    if (n < 8) return mdj__err(err, MDJ_ERR_BAD_LENGTH, "", 0, "%zu bytes cannot hold a commit word", n);
    w = mdj__le64(b);
    if (w == 0) return 0;
    crc = MDJ__CAST(uint32_t, w);
    size = MDJ__CAST(uint32_t, w >> 32);
    if (size < MDJ_FRAME_HEADER_SIZE || size > MDJ_MAX_FRAME_SIZE || size > n)
        return mdj__err(err, MDJ_ERR_BAD_LENGTH, "", 0, "bad frame length %u (min 32, max 65536, %zu bytes left)", size,
                        n);
    if (mdj_frame_crc(b, size) != crc)
        return mdj__err(err, MDJ_ERR_CHECKSUM, "", 0, "frame checksum mismatch (stored 0x%08x)", crc);
    memset(f, 0, sizeof *f);
    rc = mdj__frame_content(b, size, crc, f, why, sizeof why);
    if (rc) return mdj__err(err, rc, "", 0, "%s", why);
    return MDJ__CAST(long, mdj__align8(size));
}

/* ---- message decoders --------------------------------------------------------- */

static void mdj__cstr(char *dst, const uint8_t *src, size_t n) {
    memcpy(dst, src, n);
    dst[n] = 0;
}

int mdj_decode_instrument_def(const uint8_t *p, size_t n, mdj_instrument_def *d) {
    if (n < 32) return MDJ_ERR_SHORT;
    mdj__cstr(d->symbol, p, MDJ_SYMBOL_LEN);
    d->tick_size = MDJ__CAST(int64_t, mdj__le64(p + 16));
    d->price_scale = MDJ__CAST(int32_t, mdj__le32(p + 24));
    return MDJ_OK;
}
int mdj_decode_trade(const uint8_t *p, size_t n, mdj_trade *t) {
    if (n < 32) return MDJ_ERR_SHORT;
    t->price = MDJ__CAST(int64_t, mdj__le64(p));
    t->qty = MDJ__CAST(int64_t, mdj__le64(p + 8));
    t->trade_id = mdj__le64(p + 16);
    t->aggressor = p[24];
    t->flags = p[25];
    return MDJ_OK;
}
int mdj_decode_quote(const uint8_t *p, size_t n, mdj_quote *q) {
    if (n < 32) return MDJ_ERR_SHORT;
    q->bid_price = MDJ__CAST(int64_t, mdj__le64(p));
    q->bid_qty = MDJ__CAST(int64_t, mdj__le64(p + 8));
    q->ask_price = MDJ__CAST(int64_t, mdj__le64(p + 16));
    q->ask_qty = MDJ__CAST(int64_t, mdj__le64(p + 24));
    return MDJ_OK;
}
int mdj_decode_book_level(const uint8_t *p, size_t n, mdj_book_level *l) {
    if (n < 24) return MDJ_ERR_SHORT;
    l->price = MDJ__CAST(int64_t, mdj__le64(p));
    l->qty = MDJ__CAST(int64_t, mdj__le64(p + 8));
    l->side = p[16];
    return MDJ_OK;
}
int mdj_decode_order(const uint8_t *p, size_t n, mdj_order *o) {
    if (n < 32) return MDJ_ERR_SHORT;
    o->order_id = mdj__le64(p);
    o->price = MDJ__CAST(int64_t, mdj__le64(p + 8));
    o->qty = MDJ__CAST(int64_t, mdj__le64(p + 16));
    o->side = p[24];
    o->flags = p[25];
    return MDJ_OK;
}
int mdj_decode_trading_status(const uint8_t *p, size_t n, mdj_trading_status *s) {
    if (n < 16) return MDJ_ERR_SHORT;
    s->status = p[0];
    mdj__cstr(s->reason, p + 4, 4);
    return MDJ_OK;
}
int mdj_decode_gap(const uint8_t *p, size_t n, mdj_gap *g) {
    if (n < 32) return MDJ_ERR_SHORT;
    g->first = mdj__le64(p);
    g->count = mdj__le64(p + 8);
    mdj__cstr(g->source, p + 16, MDJ_SYMBOL_LEN);
    return MDJ_OK;
}
int mdj_decode_order_request(const uint8_t *p, size_t n, mdj_order_request *o) {
    if (n < 64) return MDJ_ERR_SHORT;
    o->order_id = mdj__le64(p);
    o->price = MDJ__CAST(int64_t, mdj__le64(p + 8));
    o->qty = MDJ__CAST(int64_t, mdj__le64(p + 16));
    o->side = p[24];
    o->flags = p[25];
    o->strategy = mdj__le32(p + 28);
    o->trigger_seq = mdj__le64(p + 32);
    o->trigger_ts = MDJ__CAST(int64_t, mdj__le64(p + 40));
    o->seen = MDJ__CAST(int64_t, mdj__le64(p + 48));
    o->decided = MDJ__CAST(int64_t, mdj__le64(p + 56));
    return MDJ_OK;
}
int mdj_decode_risk_decision(const uint8_t *p, size_t n, mdj_risk_decision *d) {
    if (n < 64) return MDJ_ERR_SHORT;
    d->order_id = mdj__le64(p);
    d->price = MDJ__CAST(int64_t, mdj__le64(p + 8));
    d->qty = MDJ__CAST(int64_t, mdj__le64(p + 16));
    d->side = p[24];
    d->verdict = p[25];
    d->reason = mdj__le16(p + 26);
    d->strategy = mdj__le32(p + 28);
    d->trigger_seq = mdj__le64(p + 32);
    d->requested = MDJ__CAST(int64_t, mdj__le64(p + 40));
    d->received = MDJ__CAST(int64_t, mdj__le64(p + 48));
    d->decided = MDJ__CAST(int64_t, mdj__le64(p + 56));
    return MDJ_OK;
}

/* ---- formatting ------------------------------------------------------------- */

/* Copies s (length len) into buf[0,cap) with a NUL; returns len. */
static size_t mdj__out(char *buf, size_t cap, const char *s, size_t len) {
    if (cap) {
        size_t k = len < cap - 1 ? len : cap - 1;
        memcpy(buf, s, k);
        buf[k] = 0;
    }
    return len;
}

static size_t mdj__utoa(char *dst, uint64_t u) { /* digits of u, no NUL; returns count */
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = MDJ__CAST(char, '0' + u % 10);
        u /= 10;
    } while (u);
    for (i = 0; i < n; i++) dst[i] = tmp[n - 1 - i];
    return n;
}

size_t mdj_format_price(char *buf, size_t cap, int64_t p, int32_t scale) {
    char s[64];
    size_t n = 0, digits, i;
    char d[24];
    uint64_t u = p < 0 ? MDJ__CAST(uint64_t, 0) - MDJ__CAST(uint64_t, p) : MDJ__CAST(uint64_t, p);
    if (p < 0) s[n++] = '-';
    if (scale <= 0) {
        n += mdj__utoa(s + n, u);
        return mdj__out(buf, cap, s, n);
    }
    if (scale > MDJ_MAX_PRICE_SCALE + 1) {
        n += mdj__utoa(s + n, u);
        s[n++] = 'e';
        s[n++] = '-';
        n += mdj__utoa(s + n, MDJ__CAST(uint64_t, scale));
        return mdj__out(buf, cap, s, n);
    }
    digits = mdj__utoa(d, u);
    if (digits < MDJ__CAST(size_t, scale) + 1) { /* pad with zeros to scale+1 digits */
        size_t pad = MDJ__CAST(size_t, scale) + 1 - digits;
        memmove(d + pad, d, digits);
        memset(d, '0', pad);
        digits += pad;
    }
    for (i = 0; i < digits; i++) {
        if (i == digits - MDJ__CAST(size_t, scale)) s[n++] = '.';
        s[n++] = d[i];
    }
    return mdj__out(buf, cap, s, n);
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void mdj__civil(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    int64_t era, yy;
    unsigned doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = MDJ__CAST(unsigned, z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    yy = MDJ__CAST(int64_t, yoe) + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

size_t mdj_format_time(char *buf, size_t cap, int64_t ns) {
    char s[64];
    int64_t sec = ns / 1000000000, frac = ns % 1000000000, days, sod, y;
    unsigned mo, d;
    int n, w;
    if (frac < 0) {
        frac += 1000000000;
        sec -= 1;
    }
    days = sec / 86400;
    sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    mdj__civil(days, &y, &mo, &d);
    n = snprintf(s, sizeof s, "%04lld-%02u-%02uT%02d:%02d:%02d", MDJ__CAST(long long, y), mo, d,
                 MDJ__CAST(int, sod / 3600), MDJ__CAST(int, sod / 60 % 60), MDJ__CAST(int, sod % 60));
    if (frac) {
        char f[10];
        snprintf(f, sizeof f, "%09d", MDJ__CAST(int, frac));
        for (w = 9; w > 0 && f[w - 1] == '0'; w--) {
        }
        s[n++] = '.';
        memcpy(s + n, f, MDJ__CAST(size_t, w));
        n += w;
    }
    s[n++] = 'Z';
    return mdj__out(buf, cap, s, MDJ__CAST(size_t, n));
}

/* ---- catalogue -------------------------------------------------------------- */

void mdj_catalog_init(mdj_catalog *c) { memset(c, 0, sizeof *c); }
void mdj_catalog_free(mdj_catalog *c) {
    free(c->items);
    memset(c, 0, sizeof *c);
}
void mdj_catalog_reset(mdj_catalog *c) { c->len = 0; }

static size_t mdj__cat_search(const mdj_catalog *c, uint32_t id) { /* first index with items[i].id >= id */
    size_t lo = 0, hi = c->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const mdj_instrument *mdj_catalog_lookup(const mdj_catalog *c, uint32_t id) {
    size_t i = mdj__cat_search(c, id);
    return i < c->len && c->items[i].id == id ? &c->items[i] : NULL;
}

static mdj_instrument *mdj__cat_get(mdj_catalog *c, uint32_t id) {
    size_t i = mdj__cat_search(c, id);
    if (i < c->len && c->items[i].id == id) return &c->items[i];
    if (c->len == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        mdj_instrument *ni = MDJ__CAST(mdj_instrument *, realloc(c->items, ncap * sizeof *ni));
        if (!ni) return NULL;
        c->items = ni;
        c->cap = ncap;
    }
    memmove(&c->items[i + 1], &c->items[i], (c->len - i) * sizeof c->items[0]);
    c->len++;
    memset(&c->items[i], 0, sizeof c->items[i]);
    c->items[i].id = id;
    return &c->items[i];
}

int mdj_catalog_apply(mdj_catalog *c, const mdj_frame *f) {
    mdj_instrument *in;
    if (f->type == MDJ_TYPE_INSTRUMENT_DEF) {
        mdj_instrument_def d;
        if (mdj_decode_instrument_def(f->payload, f->payload_len, &d)) return 0;
        in = mdj__cat_get(c, f->instrument);
        if (!in) return MDJ_ERR_NOMEM;
        if (in->defined && in->price_scale == d.price_scale && in->tick_size == d.tick_size &&
            !strcmp(in->symbol, d.symbol)) {
            in->def_seq = f->seq;
            return 0;
        }
        in->defined = 1;
        memcpy(in->symbol, d.symbol, sizeof in->symbol);
        in->price_scale = d.price_scale;
        in->tick_size = d.tick_size;
        in->def_seq = f->seq;
        return 1;
    }
    if (f->type == MDJ_TYPE_TRADING_STATUS) {
        mdj_trading_status s;
        if (mdj_decode_trading_status(f->payload, f->payload_len, &s)) return 0;
        in = mdj__cat_get(c, f->instrument);
        if (!in) return MDJ_ERR_NOMEM;
        if (in->status == s.status && !memcmp(in->reason, s.reason, sizeof s.reason)) return 0;
        in->status = s.status;
        memcpy(in->reason, s.reason, sizeof in->reason);
        return 1;
    }
    return 0;
}

size_t mdj_catalog_format_price(const mdj_catalog *c, uint32_t id, int64_t p, char *buf, size_t cap) {
    const mdj_instrument *in = mdj_catalog_lookup(c, id);
    return mdj_format_price(buf, cap, p, in && in->symbol[0] ? in->price_scale : 0); /* Go: Scale needs a symbol */
}

/* ---- SIGBUS guard ------------------------------------------------------------- */

typedef struct mdj__guard {
    sigjmp_buf env;
    struct mdj__guard *prev;
    void *volatile fault_addr;
} mdj__guard;

static MDJ__TLS mdj__guard *mdj__guard_top;
static struct sigaction mdj__old_bus;
static int mdj__guard_state; /* 0 none, 1 installing, 2 installed, 3 failed */

static void mdj__bus_handler(int sig, siginfo_t *si, void *uc) {
    mdj__guard *g = mdj__guard_top;
    if (g) {
        g->fault_addr = si ? si->si_addr : NULL;
        mdj__guard_top = g->prev;
        siglongjmp(g->env, 1);
    }
    if (mdj__old_bus.sa_flags & SA_SIGINFO) {
        if (mdj__old_bus.sa_sigaction) {
            mdj__old_bus.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (mdj__old_bus.sa_handler != SIG_DFL && mdj__old_bus.sa_handler != SIG_IGN) {
        mdj__old_bus.sa_handler(sig);
        return;
    }
    /* Not ours and nobody else's: restore the default action and raise it
     * again (the faulting access would otherwise fault forever). */
    {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        raise(sig);
    }
}

static int mdj__guard_install(void) {
    int st = __atomic_load_n(&mdj__guard_state, __ATOMIC_ACQUIRE);
    int expected = 0;
    if (st == 2) return 1;
    if (st == 3) return 0;
    if (__atomic_compare_exchange_n(&mdj__guard_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = mdj__bus_handler;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        st = sigaction(SIGBUS, &sa, &mdj__old_bus) == 0 ? 2 : 3;
        __atomic_store_n(&mdj__guard_state, st, __ATOMIC_RELEASE);
        return st == 2;
    }
    while ((st = __atomic_load_n(&mdj__guard_state, __ATOMIC_ACQUIRE)) == 1) sched_yield();
    return st == 2;
}

/* ---- files --------------------------------------------------------------------- */

static void mdj__seg_name(char *buf, size_t cap, uint64_t n, const char *ext) {
    snprintf(buf, cap, "%020llu%s", MDJ__CAST(unsigned long long, n), ext);
}

static void mdj__join(char *buf, size_t cap, const char *dir, const char *name) {
    size_t l = strlen(dir);
    snprintf(buf, cap, "%s%s%s", dir, (l && dir[l - 1] == '/') ? "" : "/", name);
}

/* Opens a journal file safely (§1): O_NOFOLLOW, O_NONBLOCK, then fstat says
 * regular. Returns the fd or a negative code with err filled. */
static int mdj__open_file(const char *path, int flags, struct stat *st, mdj_error *err) {
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP) return mdj__err(err, MDJ_ERR_NOT_REGULAR, path, -1, "%s is a symlink: refused", path);
        return mdj__sys(err, path, "open");
    }
    if (fstat(fd, st) != 0) {
        int rc = mdj__sys(err, path, "fstat");
        close(fd);
        return rc;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return mdj__err(err, MDJ_ERR_NOT_REGULAR, path, -1, "%s is not a regular file", path);
    }
    return fd;
}

static int mdj__pread_full(int fd, void *buf, size_t n, off_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, MDJ__CAST(char *, buf) + got, n - got, off + MDJ__CAST(off_t, got));
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) break;
        got += MDJ__CAST(size_t, k);
    }
    return MDJ__CAST(int, got);
}

/* ---- segment header (§2.1, §2.2) ---------------------------------------------- */

typedef struct mdj__state {
    uint64_t gen, durable_offset, durable_seq, last_seq;
    uint32_t flags, writer_pid;
} mdj__state;

typedef struct mdj__hdr {
    uint8_t magic[8];
    uint32_t version, header_size, epoch, header_crc;
    uint64_t journal_id, number, first_seq, capacity, cursor;
    int64_t created;
    int static_crc_ok;
    mdj__state st;
    int st_ok;        /* a valid state record exists */
    int st_slot;      /* 0 = A (offset 128), 1 = B (192) */
    int64_t file_size;
} mdj__hdr;

static int mdj__state_rec(const uint8_t *b, mdj__state *s) {
    s->gen = mdj__le64(b);
    s->durable_offset = mdj__le64(b + 8);
    s->durable_seq = mdj__le64(b + 16);
    s->last_seq = mdj__le64(b + 24);
    s->flags = mdj__le32(b + 32);
    s->writer_pid = mdj__le32(b + 36);
    return mdj_crc32c(b, 60) == mdj__le32(b + 60) && s->gen != 0 &&
           (s->flags & ~(MDJ_STATE_SEALED | MDJ_STATE_CLEAN)) == 0;
}

/* Picks the current state record from the two at b[128,256). */
static void mdj__pick_state(const uint8_t *b, mdj__hdr *h) {
    mdj__state a, bb;
    int aok = mdj__state_rec(b + 128, &a), bok = mdj__state_rec(b + 192, &bb);
    h->st_ok = aok || bok;
    if (aok && (!bok || a.gen >= bb.gen)) {
        h->st = a;
        h->st_slot = 0;
    } else if (bok) {
        h->st = bb;
        h->st_slot = 1;
    } else {
        memset(&h->st, 0, sizeof h->st);
        h->st_slot = 0;
    }
}

static void mdj__parse_static(const uint8_t *b, mdj__hdr *h) {
    memcpy(h->magic, b, 8);
    h->version = mdj__le32(b + 8);
    h->header_size = mdj__le32(b + 12);
    h->journal_id = mdj__le64(b + 16);
    h->number = mdj__le64(b + 24);
    h->first_seq = mdj__le64(b + 32);
    h->created = MDJ__CAST(int64_t, mdj__le64(b + 40));
    h->capacity = mdj__le64(b + 48);
    h->epoch = mdj__le32(b + 56);
    h->header_crc = mdj__le32(b + 60);
    h->static_crc_ok = mdj_crc32c(b, 60) == h->header_crc;
    h->cursor = mdj__le64(b + 64);
}

/* Reads a header page with pread: the state records first, then the static
 * fields (the writer writes them in the other order, so a valid state record
 * read first means the static fields read after it are complete). */
static int mdj__read_hdr(int fd, const char *path, int64_t size, mdj__hdr *h, mdj_error *err) {
    uint8_t b[256];
    memset(h, 0, sizeof *h);
    h->file_size = size;
    if (size < 256) {
        memset(b, 0, sizeof b);
        if (size > 0 && mdj__pread_full(fd, b, MDJ__CAST(size_t, size), 0) < 0) return mdj__sys(err, path, "pread");
        mdj__parse_static(b, h);
        return 0;
    }
    if (mdj__pread_full(fd, b + 128, 128, 128) != 128) return mdj__sys(err, path, "pread");
    mdj__pick_state(b, h);
    if (mdj__pread_full(fd, b, 128, 0) != 128) return mdj__sys(err, path, "pread");
    mdj__parse_static(b, h);
    return 0;
}

static void mdj__quote_bytes(char *out, size_t cap, const uint8_t *b, size_t n) {
    size_t o = 0, i;
    if (cap < 4) return;
    out[o++] = '"';
    for (i = 0; i < n && o + 5 < cap; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\')
            out[o++] = MDJ__CAST(char, b[i]);
        else
            o += MDJ__CAST(size_t, snprintf(out + o, cap - o, "\\x%02x", b[i]));
    }
    out[o++] = '"';
    out[o] = 0;
}

/* Checks the static header in the order of §2.1. number 0: not compared.
 * check_size: also the file size against the capacity. */
static int mdj__check_static(const mdj__hdr *h, const char *path, uint64_t number, int check_size, mdj_error *err) {
    if (h->file_size < 64) {
        return mdj__err(err, MDJ_ERR_TRUNCATED, path, h->file_size, "file is %lld bytes, shorter than a segment header",
                        MDJ__CAST(long long, h->file_size));
    }
    if (memcmp(h->magic, "MDJSEG\0\0", 8) != 0) {
        char q[64];
        mdj__quote_bytes(q, sizeof q, h->magic, 8);
        return mdj__err(err, MDJ_ERR_BAD_MAGIC, path, 0, "bad segment magic %s", q);
    }
    if (h->version != MDJ_VERSION)
        return mdj__err(err, MDJ_ERR_VERSION, path, 8, "segment format version %u, this build reads %d", h->version,
                        MDJ_VERSION);
    if (!h->static_crc_ok)
        return mdj__err(err, MDJ_ERR_CHECKSUM, path, 60, "segment header checksum mismatch (stored 0x%08x)",
                        h->header_crc);
    if (h->header_size != MDJ_SEGMENT_HEADER_SIZE)
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 12, "header size %u, want 4096", h->header_size);
    if (h->capacity < MDJ_MIN_SEGMENT_SIZE || h->capacity > MDJ_MAX_SEGMENT_SIZE || h->capacity % 4096)
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 48,
                        "capacity %llu is not a multiple of 4096 in [262144, 1073741824]",
                        MDJ__CAST(unsigned long long, h->capacity));
    if (number && h->number != number)
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 24, "segment number %llu, the file name says %llu",
                        MDJ__CAST(unsigned long long, h->number), MDJ__CAST(unsigned long long, number));
    if (check_size && h->file_size < MDJ__CAST(int64_t, h->capacity))
        return mdj__err(err, MDJ_ERR_TRUNCATED, path, h->file_size, "file is %lld bytes, header says capacity %llu",
                        MDJ__CAST(long long, h->file_size), MDJ__CAST(unsigned long long, h->capacity));
    return 0;
}

/* A segment that was never activated: first_seq 0 or no valid state (§2). */
static int mdj__prepared(const mdj__hdr *h) { return h->first_seq == 0 || !h->st_ok; }

/* ---- directory listing ----------------------------------------------------------- */

typedef struct mdj__ent {
    uint64_t number;
    int raw, zst; /* which files exist */
} mdj__ent;

static int mdj__parse_num(const char *name, const char *ext, uint64_t *n) {
    size_t i, el = strlen(ext);
    uint64_t v = 0;
    if (strlen(name) != 20 + el || strcmp(name + 20, ext) != 0) return 0;
    for (i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
        if (v > (UINT64_MAX - MDJ__CAST(uint64_t, name[i] - '0')) / 10) return 0;
        v = v * 10 + MDJ__CAST(uint64_t, name[i] - '0');
    }
    *n = v;
    return v >= 1;
}

static int mdj__ent_cmp(const void *a, const void *b) {
    uint64_t x = MDJ__CAST(const mdj__ent *, a)->number, y = MDJ__CAST(const mdj__ent *, b)->number;
    return x < y ? -1 : x > y;
}

/* Lists the segment numbers of dir, sorted, raw and compressed merged. */
static int mdj__list(const char *dir, mdj__ent **out, size_t *count, mdj_error *err) {
    DIR *d = opendir(dir);
    struct dirent *de;
    mdj__ent *v = NULL;
    size_t n = 0, cap = 0, i, j;
    *out = NULL;
    *count = 0;
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return mdj__err(err, MDJ_ERR_NOT_FOUND, dir, -1, "no journal in %s: %s", dir, strerror(errno));
        return mdj__sys(err, dir, "opendir");
    }
    while ((de = readdir(d)) != NULL) {
        uint64_t num;
        int zst = 0;
        if (mdj__parse_num(de->d_name, ".seg", &num))
            zst = 0;
        else if (mdj__parse_num(de->d_name, ".seg.zst", &num))
            zst = 1;
        else
            continue;
        if (de->d_type != DT_REG) { /* §1: a symlink, FIFO, device or directory is refused */
            struct stat st;
            char path[MDJ_PATH_LEN];
            mdj__join(path, sizeof path, dir, de->d_name);
            if (lstat(path, &st) != 0) continue; /* gone meanwhile (pruned) */
            if (!S_ISREG(st.st_mode)) {
                const char *what = S_ISLNK(st.st_mode) ? "a symlink" : S_ISDIR(st.st_mode) ? "a directory" :
                                   S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device";
                free(v);
                closedir(d);
                return mdj__err(err, MDJ_ERR_NOT_REGULAR, path, -1, "%s is %s, not a regular file: refused", path, what);
            }
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            mdj__ent *nv = MDJ__CAST(mdj__ent *, realloc(v, nc * sizeof *nv));
            if (!nv) {
                free(v);
                closedir(d);
                return mdj__err(err, MDJ_ERR_NOMEM, dir, -1, "out of memory listing %s", dir);
            }
            v = nv;
            cap = nc;
        }
        v[n].number = num;
        v[n].raw = !zst;
        v[n].zst = zst;
        n++;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof *v, mdj__ent_cmp);
    for (i = 0, j = 0; i < n; i++) { /* merge .seg and .seg.zst of one number */
        if (j && v[j - 1].number == v[i].number) {
            v[j - 1].raw |= v[i].raw;
            v[j - 1].zst |= v[i].zst;
        } else {
            v[j++] = v[i];
        }
    }
    *out = v;
    *count = j;
    return 0;
}

/* Reads the header of segment e (raw file, else the archive's copied header
 * page) with pread. */
static int mdj__peek_hdr(const char *dir, const mdj__ent *e, mdj__hdr *h, char *path, size_t pathcap, mdj_error *err) {
    char name[40];
    struct stat st;
    int fd, rc;
    mdj__seg_name(name, sizeof name, e->number, e->raw ? ".seg" : ".seg.zst");
    mdj__join(path, pathcap, dir, name);
    fd = mdj__open_file(path, O_RDONLY, &st, err);
    if (fd < 0) return fd;
    rc = mdj__read_hdr(fd, path, MDJ__CAST(int64_t, st.st_size), h, err);
    close(fd);
    return rc;
}

int mdj_list_segments(const char *dir, mdj_segment_info **out, size_t *count, mdj_error *err) {
    mdj__ent *v;
    size_t n, i;
    int rc;
    mdj_segment_info *info;
    mdj__err_clear(err);
    *out = NULL;
    *count = 0;
    rc = mdj__list(dir, &v, &n, err);
    if (rc) return rc;
    info = MDJ__CAST(mdj_segment_info *, calloc(n ? n : 1, sizeof *info));
    if (!info) {
        free(v);
        return mdj__err(err, MDJ_ERR_NOMEM, dir, -1, "out of memory");
    }
    for (i = 0; i < n; i++) {
        mdj__hdr h;
        char path[MDJ_PATH_LEN];
        mdj_error e2;
        mdj_segment_info *s = &info[i];
        s->number = v[i].number;
        rc = mdj__peek_hdr(dir, &v[i], &h, path, sizeof path, &e2);
        if (rc) {
            if (rc == MDJ_ERR_IO || rc == MDJ_ERR_NOT_REGULAR) {
                free(v);
                free(info);
                if (err) *err = e2;
                return rc;
            }
            s->state = MDJ_SEG_DAMAGED;
            continue;
        }
        s->journal_id = h.journal_id;
        s->first_seq = h.first_seq;
        s->capacity = h.capacity;
        s->created = h.created;
        s->epoch = h.epoch;
        s->write_cursor = h.cursor;
        s->durable_offset = h.st.durable_offset;
        s->durable_seq = h.st.durable_seq;
        s->last_seq = h.st.last_seq;
        s->state_flags = h.st.flags;
        s->file_size = h.file_size;
        if (mdj__check_static(&h, path, v[i].number, 0, &e2))
            s->state = MDJ_SEG_DAMAGED;
        else if (!v[i].raw)
            s->state = MDJ_SEG_COMPRESSED;
        else if (h.first_seq == 0 && !h.st_ok)
            s->state = MDJ_SEG_PREPARED;
        else if (!h.st_ok || h.first_seq == 0)
            s->state = MDJ_SEG_DAMAGED;
        else
            s->state = (h.st.flags & MDJ_STATE_SEALED) ? MDJ_SEG_SEALED : MDJ_SEG_ACTIVE;
    }
    free(v);
    *out = info;
    *count = n;
    return 0;
}

/* ---- mapped segment ------------------------------------------------------------ */

typedef struct mdj__seg {
    uint64_t number;
    int fd;
    void *map;            /* the mapping (for munmap) */
    const uint8_t *base;  /* the same, read-only view: `capacity` bytes */
    uint64_t capacity;
    uint64_t first_seq;
    uint32_t epoch;
    uint64_t journal_id;
    uint64_t hdr_first_seq; /* first_seq as the header said at open, activated or not */
    int active;           /* activated (first_seq and state known) */
    /* sparse index, when usable */
    int idx_fd;
    void *idx_map;
    const uint8_t *idx;
    size_t idx_len;
    uint64_t idx_slots;
    uint64_t populated;   /* pages below this offset were prefaulted */
    char path[MDJ_PATH_LEN];
    char idx_path[MDJ_PATH_LEN];
} mdj__seg;

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif
#define MDJ__PREFAULT (4u << 20)

/* Maps the pages of [off, off + 4 MiB) into this process ahead of the
 * reader (MADV_POPULATE_READ: page tables only, no copy), so that following
 * the writer does not take a page fault per 4 KiB page on the hot path. Done
 * again when the reader passes half of it. Errors (an older kernel) only
 * turn it off. */
static void mdj__prefault(mdj__seg *s, uint64_t off) {
    uint64_t start = off & ~MDJ__CAST(uint64_t, 4095), len;
    if (s->populated == UINT64_MAX || start >= s->capacity) return;
    len = s->capacity - start < MDJ__PREFAULT ? s->capacity - start : MDJ__PREFAULT;
    if (madvise(MDJ__CAST(char *, s->map) + start, len, MADV_POPULATE_READ) != 0 && errno != EFAULT) {
        s->populated = UINT64_MAX;
        return;
    }
    s->populated = start + len / 2;
}

static void mdj__seg_init(mdj__seg *s) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->idx_fd = -1;
}

static void mdj__seg_close(mdj__seg *s) {
    if (s->map) munmap(s->map, s->capacity);
    if (s->fd >= 0) close(s->fd);
    if (s->idx_map) munmap(s->idx_map, s->idx_len);
    if (s->idx_fd >= 0) close(s->idx_fd);
    mdj__seg_init(s);
}

/* Opens the sparse index of s if it checks out (§5); otherwise s has none
 * and readers scan from the segment start. */
static void mdj__seg_open_index(mdj__seg *s, const char *dir) {
    char name[40];
    struct stat st;
    uint8_t h[128];
    uint64_t slots;
    size_t need;
    void *m;
    mdj_error e;
    int fd;
    mdj__seg_name(name, sizeof name, s->number, ".idx");
    mdj__join(s->idx_path, sizeof s->idx_path, dir, name);
    fd = mdj__open_file(s->idx_path, O_RDONLY, &st, &e);
    if (fd < 0) return;
    slots = (s->capacity - MDJ_SEGMENT_HEADER_SIZE) / MDJ_INDEX_STRIDE + 1;
    need = MDJ_INDEX_HEADER_SIZE + MDJ__CAST(size_t, slots) * MDJ_INDEX_ENTRY_SIZE;
    if (st.st_size < MDJ__CAST(off_t, need) || mdj__pread_full(fd, h, 128, 0) != 128 ||
        memcmp(h, "MDJIDX\0\0", 8) != 0 || mdj__le32(h + 8) != MDJ_VERSION || mdj__le32(h + 12) != MDJ_INDEX_STRIDE ||
        mdj__le64(h + 16) != s->journal_id || mdj__le64(h + 24) != s->number || mdj__le64(h + 32) != slots ||
        mdj_crc32c(h, 40) != mdj__le32(h + 40)) {
        close(fd);
        return;
    }
    m = mmap(NULL, need, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        close(fd);
        return;
    }
    s->idx_fd = fd;
    s->idx_map = m;
    s->idx = MDJ__CAST(const uint8_t *, m);
    s->idx_len = need;
    s->idx_slots = slots;
}

typedef struct mdj__entry {
    uint64_t seq;
    int64_t ts;
    uint64_t offset;
} mdj__entry;

static uint64_t mdj__idx_count(const mdj__seg *s) {
    uint64_t c;
    if (!s->idx) return 0;
    c = mdj__load64_acq(s->idx + 64);
    return c > s->idx_slots ? s->idx_slots : c;
}

static mdj__entry mdj__idx_entry(const mdj__seg *s, uint64_t i) {
    mdj__entry e;
    const uint8_t *p = s->idx + MDJ_INDEX_HEADER_SIZE + i * MDJ_INDEX_ENTRY_SIZE;
    e.seq = mdj__le64(p);
    e.ts = MDJ__CAST(int64_t, mdj__le64(p + 8));
    e.offset = mdj__le64(p + 16);
    return e;
}

/* The last entry with seq <= key (entries ascend in seq: a binary search). */
static int mdj__idx_search_seq(const mdj__seg *s, uint64_t seq, mdj__entry *out) {
    uint64_t lo = 0, hi = mdj__idx_count(s);
    while (lo < hi) { /* first entry with seq > key */
        uint64_t mid = lo + (hi - lo) / 2;
        if (mdj__idx_entry(s, mid).seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return 0;
    *out = mdj__idx_entry(s, lo - 1);
    return 1;
}

/* The entry before the first entry (in seq order) with ts >= key, the last
 * entry if none reaches it; 0 when the first entry already does (§5). A
 * linear search: timestamps may go back. */
static int mdj__idx_search_time(const mdj__seg *s, int64_t ts, mdj__entry *out) {
    uint64_t i = 0, c = mdj__idx_count(s);
    while (i < c && mdj__idx_entry(s, i).ts < ts) i++;
    if (i == 0) return 0;
    *out = mdj__idx_entry(s, i - 1);
    return 1;
}

/* Reads the activation (first_seq, epoch, state) of a mapped segment from the
 * mapping: the state records first (acquire), then the static fields. Returns
 * 1 and fills *h when the segment is activated, without changing s. */
static int mdj__read_activation(const mdj__seg *s, mdj__hdr *h) {
    uint8_t b[256];
    size_t i;
    for (i = 128; i < 256; i += 8) mdj__put64(b + i, mdj__load64_acq(s->base + i));
    for (i = 0; i < 128; i += 8) mdj__put64(b + i, mdj__load64_relaxed(s->base + i));
    memset(h, 0, sizeof *h);
    mdj__pick_state(b, h);
    mdj__parse_static(b, h);
    return h->st_ok && h->first_seq != 0 && h->static_crc_ok;
}

static int mdj__seg_activation(mdj__seg *s) {
    mdj__hdr h;
    if (!mdj__read_activation(s, &h)) return 0;
    s->first_seq = h.first_seq;
    s->epoch = h.epoch;
    s->journal_id = h.journal_id;
    s->active = 1;
    return 1;
}

/* Opens and maps segment number n of dir for reading, the static header fully
 * checked (file size included). Returns 0 or a negative code. */
static int mdj__seg_open(mdj__seg *s, const char *dir, uint64_t n, mdj_error *err) {
    char name[40];
    struct stat st;
    mdj__hdr h;
    void *m;
    int fd, rc;
    mdj__seg_init(s);
    s->number = n;
    mdj__seg_name(name, sizeof name, n, ".seg");
    mdj__join(s->path, sizeof s->path, dir, name);
    fd = mdj__open_file(s->path, O_RDONLY, &st, err);
    if (fd == MDJ_ERR_IO && err && err->sys_errno == ENOENT) {
        char zpath[MDJ_PATH_LEN];
        mdj__seg_name(name, sizeof name, n, ".seg.zst");
        mdj__join(zpath, sizeof zpath, dir, name);
        if (access(zpath, F_OK) == 0)
            return mdj__err(err, MDJ_ERR_COMPRESSED, zpath, 0,
                            "segment %llu is compressed: compressed segment not supported by the C reader",
                            MDJ__CAST(unsigned long long, n));
        return mdj__err(err, MDJ_ERR_MISSING, s->path, 0, "segment %llu is missing", MDJ__CAST(unsigned long long, n));
    }
    if (fd < 0) return fd;
    rc = mdj__read_hdr(fd, s->path, MDJ__CAST(int64_t, st.st_size), &h, err);
    if (!rc) rc = mdj__check_static(&h, s->path, n, 1, err);
    if (rc) {
        close(fd);
        return rc;
    }
    m = mmap(NULL, h.capacity, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = mdj__sys(err, s->path, "mmap");
        close(fd);
        return rc;
    }
    s->fd = fd;
    s->map = m;
    s->base = MDJ__CAST(const uint8_t *, m);
    s->capacity = h.capacity;
    s->journal_id = h.journal_id;
    s->hdr_first_seq = h.first_seq;
    mdj__seg_activation(s);
    mdj__seg_open_index(s, dir);
    return 0;
}

/* ---- reader ----------------------------------------------------------------------- */

struct mdj_reader {
    char *dir;
    mdj_reader_options opt;
    mdj__seg seg;
    uint64_t pos;        /* offset of the next frame in seg */
    uint64_t next_seq;   /* the seq it must carry */
    uint64_t last_seq;
    uint64_t journal_id;
    uint32_t epoch;
    int skipping;        /* MDJ_FROM_SEQ / MDJ_FROM_TIME target not reached yet */
    int failed;          /* sticky error in err */
    int guard;           /* SIGBUS guard in use */
    int wait;            /* effective strategy */
    int interrupt;       /* atomic */
    int ctl_fd;
    uint8_t *ctl;        /* journal.ctl mapped read-write (futex), else NULL */
    char ctl_path[MDJ_PATH_LEN];
    mdj_catalog cat;
    uint8_t *buf;        /* frame copy: MDJ_MAX_FRAME_SIZE bytes */
    mdj_reader_stats stats;
    mdj_error err;
};

static int mdj__fail(mdj_reader *r) {
    r->failed = 1;
    return r->err.code;
}

/* Maps a faulting address to the file it belongs to. */
static int mdj__faulted(mdj_reader *r, mdj__guard *g) {
    uintptr_t a = MDJ__U(g->fault_addr);
    uintptr_t sb = MDJ__U(r->seg.base), ib = MDJ__U(r->seg.idx), cb = MDJ__U(r->ctl);
    if (r->seg.base && a >= sb && a < sb + r->seg.capacity)
        mdj__err(&r->err, MDJ_ERR_TRUNCATED, r->seg.path, MDJ__CAST(int64_t, a - sb),
                 "file truncated under the reader: SIGBUS at offset %llu", MDJ__CAST(unsigned long long, a - sb));
    else if (r->seg.idx && a >= ib && a < ib + r->seg.idx_len)
        mdj__err(&r->err, MDJ_ERR_TRUNCATED, r->seg.idx_path, MDJ__CAST(int64_t, a - ib),
                 "index truncated under the reader: SIGBUS at offset %llu", MDJ__CAST(unsigned long long, a - ib));
    else if (r->ctl && a >= cb && a < cb + MDJ_CTL_SIZE)
        mdj__err(&r->err, MDJ_ERR_TRUNCATED, r->ctl_path, MDJ__CAST(int64_t, a - cb),
                 "control page truncated under the reader: SIGBUS at offset %llu",
                 MDJ__CAST(unsigned long long, a - cb));
    else
        mdj__err(&r->err, MDJ_ERR_TRUNCATED, r->seg.path, -1, "SIGBUS reading a mapping (a file was truncated)");
    return mdj__fail(r);
}

/* Loads, copies and checks the frame at r->pos whose commit word w is
 * non-zero. Fills f (payload in r->buf). */
static int mdj__read_frame(mdj_reader *r, uint64_t w, mdj_frame *f) {
    uint64_t pos = r->pos, room = r->seg.capacity - pos;
    uint32_t crc = MDJ__CAST(uint32_t, w), size = MDJ__CAST(uint32_t, w >> 32);
    char why[200];
    int rc;
    if (!mdj__size_ok(size, room)) {
        mdj__err(&r->err, MDJ_ERR_BAD_LENGTH, r->seg.path, MDJ__CAST(int64_t, pos),
                 "bad frame length %u (min 32, max 65536, %llu bytes left)", size, MDJ__CAST(unsigned long long, room));
        return mdj__fail(r);
    }
    /* Copy first, check the copy: what is returned is what was checked. */
    mdj__put64(r->buf, w);
    memcpy(r->buf + 8, r->seg.base + pos + 8, size - 8);
    if (mdj_frame_crc(r->buf, size) != crc) {
        mdj__err(&r->err, MDJ_ERR_CHECKSUM, r->seg.path, MDJ__CAST(int64_t, pos),
                 "frame checksum mismatch (stored 0x%08x)", crc);
        return mdj__fail(r);
    }
    /* §4 reader step 2: the seq, then type, flags and payload size. */
    if (mdj__le64(r->buf + 8) != r->next_seq) {
        mdj__err(&r->err, MDJ_ERR_SEQUENCE, r->seg.path, MDJ__CAST(int64_t, pos), "frame seq %llu, expected %llu",
                 MDJ__CAST(unsigned long long, mdj__le64(r->buf + 8)), MDJ__CAST(unsigned long long, r->next_seq));
        return mdj__fail(r);
    }
    rc = mdj__frame_content(r->buf, size, crc, f, why, sizeof why);
    if (rc) {
        mdj__err(&r->err, rc, r->seg.path, MDJ__CAST(int64_t, pos), "%s", why);
        return mdj__fail(r);
    }
    f->segment = r->seg.number;
    f->offset = MDJ__CAST(int64_t, pos);
    f->epoch = r->seg.epoch;
    return 0;
}

/* Follows the end marker with seq m to the next segment (§4 reader step 4). */
static int mdj__roll(mdj_reader *r, uint64_t m) {
    mdj__seg next;
    int rc = mdj__seg_open(&next, r->dir, r->seg.number + 1, &r->err);
    if (rc) return mdj__fail(r);
    if (!next.active && next.hdr_first_seq == m) {
        /* Activated as the marker says, but neither state record is valid:
           damage at state record A (offset 128, §2), not a sequence gap. */
        mdj__err(&r->err, MDJ_ERR_BAD_HEADER, next.path, 128,
                 "the end marker says segment %llu starts at seq %llu, but it has no valid state record",
                 MDJ__CAST(unsigned long long, next.number), MDJ__CAST(unsigned long long, m));
        mdj__seg_close(&next);
        return mdj__fail(r);
    }
    if (!next.active || next.first_seq != m) {
        uint64_t fs = next.active ? next.first_seq : next.hdr_first_seq;
        mdj__err(&r->err, MDJ_ERR_SEQUENCE, next.path, 32, "first seq %llu does not follow %llu",
                 MDJ__CAST(unsigned long long, fs), MDJ__CAST(unsigned long long, m - 1));
        mdj__seg_close(&next);
        return mdj__fail(r);
    }
    if (next.journal_id != r->seg.journal_id) {
        mdj__err(&r->err, MDJ_ERR_BAD_HEADER, next.path, 16,
                 "journal id %#llx, the previous segment's is %#llx: files of two journals are mixed",
                 MDJ__CAST(unsigned long long, next.journal_id), MDJ__CAST(unsigned long long, r->seg.journal_id));
        mdj__seg_close(&next);
        return mdj__fail(r);
    }
    if (next.epoch < r->seg.epoch) {
        mdj__err(&r->err, MDJ_ERR_BAD_HEADER, next.path, 56, "epoch %u is below the previous segment's %u", next.epoch,
                 r->seg.epoch);
        mdj__seg_close(&next);
        return mdj__fail(r);
    }
    mdj__seg_close(&r->seg);
    r->seg = next;
    r->pos = MDJ_SEGMENT_HEADER_SIZE;
    r->epoch = next.epoch;
    r->stats.rolls++;
    return 0;
}

/* Makes the current segment usable once the writer activated it. */
static int mdj__await_activation(mdj_reader *r) {
    if (r->seg.active) return 1;
    if (!mdj__seg_activation(&r->seg)) return 0;
    if (r->journal_id && r->seg.journal_id != r->journal_id) {
        mdj__err(&r->err, MDJ_ERR_BAD_HEADER, r->seg.path, 16, "journal id %016llx, the journal's is %016llx",
                 MDJ__CAST(unsigned long long, r->seg.journal_id), MDJ__CAST(unsigned long long, r->journal_id));
        return mdj__fail(r);
    }
    r->journal_id = r->seg.journal_id;
    r->pos = MDJ_SEGMENT_HEADER_SIZE;
    r->next_seq = r->seg.first_seq;
    r->last_seq = r->seg.first_seq - 1;
    r->epoch = r->seg.epoch;
    return 1;
}

/* One checked data frame: 1 (in *f), 0 (none published yet), < 0. */
static int mdj__step(mdj_reader *r, mdj_frame *f) {
    for (;;) {
        uint64_t w;
        int rc;
        if (r->failed) return r->err.code;
        if (!r->seg.active) {
            rc = mdj__await_activation(r);
            if (rc <= 0) return rc;
        }
        if (r->pos + MDJ_FRAME_HEADER_SIZE > r->seg.capacity) {
            mdj__err(&r->err, MDJ_ERR_BAD_LENGTH, r->seg.path, MDJ__CAST(int64_t, r->pos),
                     "no room for an end marker: the frames reach the segment's capacity %llu",
                     MDJ__CAST(unsigned long long, r->seg.capacity));
            return mdj__fail(r);
        }
        if (r->pos >= r->seg.populated) mdj__prefault(&r->seg, r->pos);
        w = mdj__load64_acq(r->seg.base + r->pos);
        if (w == 0) return 0;
        rc = mdj__read_frame(r, w, f);
        if (rc) return rc;
        if (f->type == MDJ_TYPE_SEGMENT_END) {
            rc = mdj__roll(r, f->seq);
            if (rc) return rc;
            continue;
        }
        r->pos += mdj__align8(f->size);
        r->last_seq = f->seq;
        r->next_seq = f->seq + 1;
        if (f->type == MDJ_TYPE_INSTRUMENT_DEF || f->type == MDJ_TYPE_TRADING_STATUS) {
            if (mdj_catalog_apply(&r->cat, f) == MDJ_ERR_NOMEM) {
                mdj__err(&r->err, MDJ_ERR_NOMEM, r->seg.path, f->offset, "out of memory growing the catalogue");
                return mdj__fail(r);
            }
        }
        return 1;
    }
}

static int mdj__try_next(mdj_reader *r, mdj_frame *f) {
    for (;;) {
        int rc = mdj__step(r, f);
        if (rc != 1) return rc;
        if (r->skipping) {
            if (r->opt.from == MDJ_FROM_SEQ ? f->seq < r->opt.seq : f->ts < r->opt.ts) continue;
            r->skipping = 0;
        }
        r->stats.frames++;
        return 1;
    }
}

/* Walks the frames from the segment start to target (an index entry),
 * applying definitions and statuses (each checked), stepping over the rest by
 * their size. 1 if it lands exactly on target and the frame there is the
 * entry's; 0 if the index is wrong (the caller scans from the start). */
static int mdj__learn_to(mdj_reader *r, const mdj__entry *e) {
    uint64_t off = MDJ_SEGMENT_HEADER_SIZE, cap = r->seg.capacity;
    mdj_frame f;
    uint64_t w;
    uint32_t size;
    if (e->offset % 8 || e->offset < MDJ_SEGMENT_HEADER_SIZE || e->offset + MDJ_FRAME_HEADER_SIZE > cap) return 0;
    while (off < e->offset) {
        uint16_t type;
        w = mdj__load64_acq(r->seg.base + off);
        size = MDJ__CAST(uint32_t, w >> 32);
        if (w == 0 || !mdj__size_ok(size, cap - off)) return 0;
        type = mdj__le16(r->seg.base + off + 24);
        if (type == MDJ_TYPE_INSTRUMENT_DEF || type == MDJ_TYPE_TRADING_STATUS) {
            uint64_t save_pos = r->pos, save_next = r->next_seq;
            int rc;
            r->pos = off;
            r->next_seq = mdj__le64(r->seg.base + off + 8);
            rc = mdj__read_frame(r, w, &f);
            r->pos = save_pos;
            r->next_seq = save_next;
            if (rc) return rc;
            if (mdj_catalog_apply(&r->cat, &f) == MDJ_ERR_NOMEM) {
                mdj__err(&r->err, MDJ_ERR_NOMEM, r->seg.path, f.offset, "out of memory growing the catalogue");
                return mdj__fail(r);
            }
        }
        off += mdj__align8(size);
    }
    if (off != e->offset) return 0;
    /* The entry's frame must be there, whole, with its seq and ts. */
    w = mdj__load64_acq(r->seg.base + off);
    size = MDJ__CAST(uint32_t, w >> 32);
    if (w == 0 || !mdj__size_ok(size, cap - off)) return 0;
    memcpy(r->buf + 8, r->seg.base + off + 8, size - 8);
    if (mdj_frame_crc(r->buf, size) != MDJ__CAST(uint32_t, w)) return 0;
    return mdj__le64(r->buf + 8) == e->seq && MDJ__CAST(int64_t, mdj__le64(r->buf + 16)) == e->ts;
}

/* First timestamp of segment n, as the Go reader takes it: index entry 0
 * when the index has entries, else the frame at 4096 (checked). 1 and *ts, 0
 * when it has no frame, or a negative code. */
static int mdj__first_ts(mdj_reader *r, uint64_t n, int64_t *ts) {
    mdj__seg s;
    uint64_t w;
    uint32_t size;
    int rc = mdj__seg_open(&s, r->dir, n, &r->err);
    if (rc) return rc;
    if (mdj__idx_count(&s) > 0) {
        *ts = mdj__idx_entry(&s, 0).ts;
        mdj__seg_close(&s);
        return 1;
    }
    rc = 0;
    w = mdj__load64_acq(s.base + MDJ_SEGMENT_HEADER_SIZE);
    size = MDJ__CAST(uint32_t, w >> 32);
    if (w != 0 && mdj__size_ok(size, s.capacity - MDJ_SEGMENT_HEADER_SIZE)) {
        memcpy(r->buf, s.base + MDJ_SEGMENT_HEADER_SIZE, size);
        mdj__put64(r->buf, w);
        if (mdj_frame_crc(r->buf, size) == MDJ__CAST(uint32_t, w) && mdj__le16(r->buf + 24) != MDJ_TYPE_SEGMENT_END) {
            *ts = MDJ__CAST(int64_t, mdj__le64(r->buf + 16));
            rc = 1;
        }
    }
    mdj__seg_close(&s);
    return rc;
}

/* Whether an index entry of segment n has a timestamp at or after ts: 1, 0
 * (none, or no usable index), or a negative code. */
static int mdj__reaches(mdj_reader *r, uint64_t n, int64_t ts) {
    mdj__seg s;
    uint64_t i, c;
    int rc = mdj__seg_open(&s, r->dir, n, &r->err);
    if (rc) return rc;
    for (i = 0, c = mdj__idx_count(&s); i < c && !rc; i++) rc = mdj__idx_entry(&s, i).ts >= ts;
    mdj__seg_close(&s);
    return rc;
}

/* Picks the starting segment and position (§5 seeking). Every segment's
 * header is read: one whose magic is wrong fails the open, prepared
 * (never activated) ones are skipped, and the activated ones must be
 * contiguous. */
static int mdj__position(mdj_reader *r) {
    mdj__ent *v = NULL;
    uint64_t *num = NULL, *first = NULL;
    size_t n = 0, na = 0, i, pick = 0;
    int rc;
    mdj__entry e;
    int have_entry = 0, unstated = 0, bad_static = 0;
    uint64_t first_id = 0;
    mdj_error ust, bst;
    char path[MDJ_PATH_LEN];
    mdj__err_clear(&ust);
    mdj__err_clear(&bst);
    rc = mdj__list(r->dir, &v, &n, &r->err);
    if (rc) return rc;
    num = MDJ__CAST(uint64_t *, malloc((n ? n : 1) * sizeof *num));
    first = MDJ__CAST(uint64_t *, malloc((n ? n : 1) * sizeof *first));
    if (!num || !first) {
        rc = mdj__err(&r->err, MDJ_ERR_NOMEM, r->dir, -1, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        mdj__hdr h;
        rc = mdj__peek_hdr(r->dir, &v[i], &h, path, sizeof path, &r->err);
        if (rc) goto out;
        if (h.file_size < 8 || memcmp(h.magic, "MDJSEG\0\0", 8) != 0) {
            rc = mdj__check_static(&h, path, 0, 0, &r->err);
            goto out;
        }
        {
            /* A static header that does not check out: a trailing segment
               may be read while the writer activates it (§4.3); followed by
               an activated segment, or with a valid state record (written
               only after the static fields), it is damage, named here, and
               its fields (the journal id) judge nothing. */
            mdj_error se;
            if (!h.static_crc_ok && mdj__check_static(&h, path, v[i].number, 0, &se)) {
                if (h.st_ok) {
                    r->err = se;
                    rc = se.code;
                    goto out;
                }
                if (!bad_static) {
                    bad_static = 1;
                    bst = se;
                }
                continue;
            }
        }
        if (bad_static && !mdj__prepared(&h)) {
            r->err = bst;
            rc = bst.code;
            goto out;
        }
        if (mdj__prepared(&h)) {
            /* first_seq set but no valid state record: an activation in
             * progress if no later segment is activated, damage if one is
             * (§4); the first such segment is the finding. */
            if (h.first_seq != 0 && !unstated) {
                unstated = 1;
                mdj__err(&ust, MDJ_ERR_BAD_HEADER, path, 128,
                         "segment %llu is activated (first seq %llu) but both state records are damaged",
                         MDJ__CAST(unsigned long long, v[i].number), MDJ__CAST(unsigned long long, h.first_seq));
            }
            continue;
        }
        if (unstated) {
            r->err = ust;
            rc = ust.code;
            goto out;
        }
        /* every activated segment belongs to one journal (§4): a reader
           starting inside a foreign one would hand out its frames */
        if (na == 0) {
            first_id = h.journal_id;
        } else if (h.journal_id != first_id) {
            rc = mdj__err(&r->err, MDJ_ERR_BAD_HEADER, path, 16,
                          "journal id %#llx, segment %llu's is %#llx: files of two journals are mixed",
                          MDJ__CAST(unsigned long long, h.journal_id), MDJ__CAST(unsigned long long, num[0]),
                          MDJ__CAST(unsigned long long, first_id));
            goto out;
        }
        num[na] = v[i].number;
        first[na] = h.first_seq;
        na++;
    }
    if (na == 0) {
        rc = mdj__err(&r->err, MDJ_ERR_NOT_FOUND, r->dir, -1, "no journal in %s", r->dir);
        goto out;
    }
    for (i = 1; i < na; i++) {
        if (num[i] != num[i - 1] + 1) {
            char name[40];
            mdj__seg_name(name, sizeof name, num[i - 1] + 1, ".seg");
            mdj__join(path, sizeof path, r->dir, name);
            rc = mdj__err(&r->err, MDJ_ERR_MISSING, path, 0, "segment %llu is missing between %llu and %llu",
                          MDJ__CAST(unsigned long long, num[i - 1] + 1), MDJ__CAST(unsigned long long, num[i - 1]),
                          MDJ__CAST(unsigned long long, num[i]));
            goto out;
        }
    }
    switch (r->opt.from) {
    case MDJ_FROM_START: pick = 0; break;
    case MDJ_FROM_END: pick = na - 1; break;
    case MDJ_FROM_SEQ:
        if (r->opt.seq < first[0]) {
            rc = mdj__err(&r->err, MDJ_ERR_OUT_OF_RANGE, r->dir, -1,
                          "seq %llu is before the first retained frame %llu", MDJ__CAST(unsigned long long, r->opt.seq),
                          MDJ__CAST(unsigned long long, first[0]));
            goto out;
        }
        for (i = 0; i < na; i++)
            if (first[i] <= r->opt.seq) pick = i;
        break;
    case MDJ_FROM_TIME:
        /* §5: the first segment in seq order that has an index entry at or
         * after the target, or whose successor's first frame is (the frames
         * after its last entry may be); else the last. Linear, not a binary
         * search: on a journal whose time goes back this is the first
         * occurrence in seq order, never a later one. */
        pick = na - 1;
        for (i = 0; i < na; i++) {
            int64_t ts = 0;
            rc = mdj__reaches(r, num[i], r->opt.ts);
            if (rc < 0) goto out;
            if (rc == 0 && i + 1 < na) {
                rc = mdj__first_ts(r, num[i + 1], &ts);
                if (rc < 0) goto out;
                rc = rc == 1 && ts >= r->opt.ts;
            }
            if (rc) {
                pick = i;
                break;
            }
        }
        rc = 0;
        break;
    default: rc = mdj__err(&r->err, MDJ_ERR_INVALID, r->dir, -1, "unknown start position %d", r->opt.from); goto out;
    }
    rc = mdj__seg_open(&r->seg, r->dir, num[pick], &r->err);
    if (rc) goto out;
    r->journal_id = r->seg.journal_id;
    r->epoch = r->seg.epoch;
    r->pos = MDJ_SEGMENT_HEADER_SIZE;
    r->next_seq = r->seg.first_seq;
    r->last_seq = r->seg.first_seq ? r->seg.first_seq - 1 : 0;
    r->skipping = r->opt.from == MDJ_FROM_SEQ || r->opt.from == MDJ_FROM_TIME;
    if (r->seg.active) {
        if (r->opt.from == MDJ_FROM_END) {
            uint64_t c = mdj__idx_count(&r->seg);
            if (c) {
                e = mdj__idx_entry(&r->seg, c - 1);
                have_entry = 1;
            }
        } else if (r->opt.from == MDJ_FROM_SEQ) {
            have_entry = mdj__idx_search_seq(&r->seg, r->opt.seq, &e);
        } else if (r->opt.from == MDJ_FROM_TIME) {
            have_entry = mdj__idx_search_time(&r->seg, r->opt.ts, &e);
        }
        if (have_entry && e.offset > MDJ_SEGMENT_HEADER_SIZE) {
            rc = mdj__learn_to(r, &e);
            if (rc < 0) goto out;
            if (rc == 1) {
                r->pos = e.offset;
                r->next_seq = e.seq;
                r->last_seq = e.seq - 1;
            } else {
                mdj_catalog_reset(&r->cat);
            }
            rc = 0;
        }
    }
    if (r->opt.from == MDJ_FROM_END) { /* skip what is published now */
        mdj_frame f;
        while ((rc = mdj__step(r, &f)) == 1) {
        }
        if (rc < 0) goto out;
    }
    rc = 0;
out:
    free(num);
    free(first);
    free(v);
    return rc;
}

/* Maps journal.ctl read-write for the futex protocol (§6); on any obstacle
 * the reader backs off instead. */
static void mdj__open_ctl(mdj_reader *r) {
    char path[MDJ_PATH_LEN];
    struct stat st;
    mdj_error e;
    uint8_t h[32];
    void *m;
    int fd;
    r->ctl_fd = -1;
    mdj__join(path, sizeof path, r->dir, "journal.ctl");
    snprintf(r->ctl_path, sizeof r->ctl_path, "%s", path);
    fd = mdj__open_file(path, O_RDWR, &st, &e);
    if (fd < 0) return; /* EACCES, EROFS, missing: poll */
    if (st.st_size < MDJ_CTL_SIZE || mdj__pread_full(fd, h, sizeof h, 0) != MDJ__CAST(int, sizeof h) ||
        memcmp(h, "MDJCTL\0\0", 8) != 0 || mdj__le32(h + 8) != MDJ_VERSION ||
        (r->journal_id && mdj__le64(h + 16) != r->journal_id)) {
        close(fd);
        return;
    }
    m = mmap(NULL, MDJ_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        close(fd);
        return;
    }
    r->ctl_fd = fd;
    r->ctl = MDJ__CAST(uint8_t *, m);
}

static int mdj__open_guarded(mdj_reader *r) {
    mdj__guard g;
    int rc;
    if (!r->guard) return mdj__position(r);
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) return mdj__faulted(r, &g);
    mdj__guard_top = &g;
    rc = mdj__position(r);
    mdj__guard_top = g.prev;
    return rc;
}

void mdj_reader_close(mdj_reader *r) {
    if (!r) return;
    mdj__seg_close(&r->seg);
    if (r->ctl) munmap(r->ctl, MDJ_CTL_SIZE);
    if (r->ctl_fd >= 0) close(r->ctl_fd);
    mdj_catalog_free(&r->cat);
    free(r->buf);
    free(r->dir);
    free(r);
}

int mdj_reader_open(mdj_reader **out, const char *dir, const mdj_reader_options *opts, mdj_error *err) {
    mdj_reader *r;
    int rc;
    mdj__err_clear(err);
    *out = NULL;
    if (!dir) return mdj__err(err, MDJ_ERR_INVALID, "", -1, "no directory");
    r = MDJ__CAST(mdj_reader *, calloc(1, sizeof *r));
    if (!r) return mdj__err(err, MDJ_ERR_NOMEM, dir, -1, "out of memory");
    mdj__seg_init(&r->seg);
    r->ctl_fd = -1;
    mdj_catalog_init(&r->cat);
    if (opts) r->opt = *opts;
    r->dir = strdup(dir);
    r->buf = MDJ__CAST(uint8_t *, malloc(MDJ_MAX_FRAME_SIZE));
    if (!r->dir || !r->buf) {
        mdj_reader_close(r);
        return mdj__err(err, MDJ_ERR_NOMEM, dir, -1, "out of memory");
    }
    mdj__err_clear(&r->err);
    r->guard = !r->opt.no_sigbus_guard && mdj__guard_install();
    rc = mdj__open_guarded(r);
    if (rc) {
        if (err) *err = r->err;
        mdj_reader_close(r);
        return rc;
    }
    r->wait = r->opt.wait;
    if (r->wait < MDJ_WAIT_BACKOFF || r->wait > MDJ_WAIT_FUTEX) r->wait = MDJ_WAIT_BACKOFF;
    if (r->wait == MDJ_WAIT_FUTEX) {
        mdj__open_ctl(r);
        if (!r->ctl) r->wait = MDJ_WAIT_BACKOFF;
    }
    *out = r;
    return 0;
}

int mdj_reader_try_next(mdj_reader *r, mdj_frame *f) {
    mdj__guard g;
    int rc;
    if (!r->guard) return mdj__try_next(r, f);
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) return mdj__faulted(r, &g);
    mdj__guard_top = &g;
    rc = mdj__try_next(r, f);
    mdj__guard_top = g.prev;
    return rc;
}

static int64_t mdj__mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return MDJ__CAST(int64_t, ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

static void mdj__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void mdj__sleep_ns(int64_t ns) {
    struct timespec ts;
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    nanosleep(&ts, NULL);
}

/* One futex wait (§6): announce, re-check the commit word at the position,
 * sleep until notify changes or the timeout, withdraw. */
static void mdj__futex_wait(mdj_reader *r, int64_t max_ns) {
    uint32_t *notify = MDJ__CAST(uint32_t *, MDJ__CAST(void *, r->ctl + 64));
    uint32_t *waiters = MDJ__CAST(uint32_t *, MDJ__CAST(void *, r->ctl + 68));
    uint32_t v;
    int nothing;
    __atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
    v = __atomic_load_n(notify, __ATOMIC_SEQ_CST);
    if (r->seg.active)
        nothing = r->pos + 8 <= r->seg.capacity && mdj__load64_acq(r->seg.base + r->pos) == 0;
    else {
        mdj__hdr h;
        nothing = !mdj__read_activation(&r->seg, &h);
    }
    if (nothing && !__atomic_load_n(&r->interrupt, __ATOMIC_SEQ_CST)) {
        struct timespec ts;
        if (max_ns > 100000000) max_ns = 100000000;
        if (max_ns < 1) max_ns = 1;
        ts.tv_sec = max_ns / 1000000000;
        ts.tv_nsec = max_ns % 1000000000;
        r->stats.futex_waits++;
        syscall(SYS_futex, notify, FUTEX_WAIT, v, &ts, NULL, 0);
    }
    __atomic_fetch_sub(waiters, 1, __ATOMIC_SEQ_CST);
}

static int mdj__next(mdj_reader *r, mdj_frame *f, int64_t timeout_ns) {
    int64_t deadline = timeout_ns >= 0 ? mdj__mono_ns() + timeout_ns : INT64_MAX;
    uint64_t idle = 0;
    for (;;) {
        int64_t now, left;
        int rc = mdj__try_next(r, f);
        if (rc != 0) return rc;
        if (__atomic_exchange_n(&r->interrupt, 0, __ATOMIC_SEQ_CST)) {
            mdj__err(&r->err, MDJ_ERR_INTERRUPTED, "", -1, "interrupted");
            return MDJ_ERR_INTERRUPTED;
        }
        now = (idle & 63) == 0 || r->wait == MDJ_WAIT_FUTEX || idle >= 256 ? mdj__mono_ns() : 0;
        if (now && now >= deadline) return 0;
        left = deadline - now;
        switch (r->wait) {
        case MDJ_WAIT_SPIN: mdj__cpu_relax(); break;
        case MDJ_WAIT_YIELD: sched_yield(); break;
        case MDJ_WAIT_FUTEX: mdj__futex_wait(r, left); break;
        default:
            if (idle < 128)
                mdj__cpu_relax();
            else if (idle < 256)
                sched_yield();
            else {
                int64_t ns = MDJ__CAST(int64_t, 1000) << (idle - 256 < 10 ? idle - 256 : 10); /* 1 us .. ~1 ms */
                if (now && ns > left) ns = left;
                r->stats.sleeps++;
                mdj__sleep_ns(ns);
            }
        }
        idle++;
    }
}

int mdj_reader_next(mdj_reader *r, mdj_frame *f, int64_t timeout_ns) {
    mdj__guard g;
    int rc;
    if (!r->guard) return mdj__next(r, f, timeout_ns);
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) return mdj__faulted(r, &g);
    mdj__guard_top = &g;
    rc = mdj__next(r, f, timeout_ns);
    mdj__guard_top = g.prev;
    return rc;
}

/* The flag, then notify += 1, then FUTEX_WAKE (§6): a bare wake is lost if
 * it lands between the sleeper's re-check and its FUTEX_WAIT. */
void mdj_reader_interrupt(mdj_reader *r) {
    __atomic_store_n(&r->interrupt, 1, __ATOMIC_SEQ_CST);
    if (r->ctl) {
        uint32_t *notify = MDJ__CAST(uint32_t *, MDJ__CAST(void *, r->ctl + 64));
        __atomic_fetch_add(notify, 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, notify, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
}

const mdj_error *mdj_reader_error(const mdj_reader *r) { return &r->err; }
const mdj_catalog *mdj_reader_catalog(const mdj_reader *r) { return &r->cat; }
int mdj_reader_wait_strategy(const mdj_reader *r) { return r->wait; }
uint64_t mdj_reader_last_seq(const mdj_reader *r) { return r->last_seq; }
uint64_t mdj_reader_segment(const mdj_reader *r, int64_t *next_offset) {
    if (next_offset) *next_offset = MDJ__CAST(int64_t, r->pos);
    return r->seg.number;
}
uint32_t mdj_reader_epoch(const mdj_reader *r) { return r->epoch; }
uint64_t mdj_reader_journal_id(const mdj_reader *r) { return r->journal_id; }
void mdj_reader_stats_get(const mdj_reader *r, mdj_reader_stats *s) { *s = r->stats; }

/* ---- verify ------------------------------------------------------------------------ */

typedef struct mdj__vctx {
    mdj_verify_report *rep;
    size_t cap;
    int nomem;
} mdj__vctx;

static void mdj__problem(mdj__vctx *c, const char *severity, int code, const char *file, int64_t off, const char *fmt,
                         ...) MDJ__PRINTF(6, 7);
static void mdj__problem(mdj__vctx *c, const char *severity, int code, const char *file, int64_t off, const char *fmt,
                         ...) {
    mdj_problem *p;
    va_list ap;
    if (c->rep->nproblems == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        mdj_problem *np = MDJ__CAST(mdj_problem *, realloc(c->rep->problems, nc * sizeof *np));
        if (!np) {
            c->nomem = 1;
            return;
        }
        c->rep->problems = np;
        c->cap = nc;
    }
    p = &c->rep->problems[c->rep->nproblems++];
    memset(p, 0, sizeof *p);
    p->severity = severity;
    p->code = code;
    p->kind = mdj_kind(code);
    snprintf(p->file, sizeof p->file, "%s", file);
    p->offset = off;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
}

/* Finds the holder of journal.lock in /proc/locks (§7): never by locking. */
static int mdj__writer_live(const char *dir, int *pid) {
    char path[MDJ_PATH_LEN], line[256];
    struct stat st;
    FILE *f;
    int live = 0;
    *pid = 0;
    mdj__join(path, sizeof path, dir, "journal.lock");
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    f = fopen("/proc/locks", "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        char kind[16], adv[16], mode[16];
        int p;
        unsigned maj, min;
        unsigned long long ino;
        const char *s = strchr(line, ':');
        if (!s || strstr(line, "->")) continue;
        if (sscanf(s + 1, "%15s %15s %15s %d %x:%x:%llu", kind, adv, mode, &p, &maj, &min, &ino) != 7) continue;
        if (strcmp(kind, "FLOCK") != 0 || ino != MDJ__CAST(unsigned long long, st.st_ino) || maj != major(st.st_dev) ||
            min != minor(st.st_dev))
            continue;
        if (p != getpid()) {
            live = 1;
            *pid = p;
        }
    }
    fclose(f);
    return live;
}

typedef struct mdj__scan {
    uint64_t end;       /* X: where the frames stop */
    int stop;           /* 0 empty word, 1 bad frame, 2 end marker, 3 cut by the file's end, 4 limit */
    int code;           /* bad frame: its damage code */
    char why[200];
    uint64_t last;      /* last data seq */
    int64_t frames;
    uint64_t marker_seq;
    int hit_durable;    /* the scan passed a frame boundary at durable_offset */
    uint64_t seq_at_durable;
} mdj__scan;

/* Scans frames of the image m[0,limit) of a segment of capacity cap from
 * 4096, first seq `first`, stopping at the first empty commit word, bad frame,
 * end marker or stop offset. */
static void mdj__scan_frames(const uint8_t *m, uint64_t limit, uint64_t cap, uint64_t stop_at, uint64_t first,
                             uint64_t durable, mdj__scan *s, uint8_t *buf) {
    uint64_t off = MDJ_SEGMENT_HEADER_SIZE;
    memset(s, 0, sizeof *s);
    s->last = first - 1;
    for (;;) {
        uint64_t w;
        uint32_t size, crc;
        mdj_frame f;
        int rc;
        if (off == durable) {
            s->hit_durable = 1;
            s->seq_at_durable = s->last;
        }
        s->end = off;
        if (off >= stop_at) {
            s->stop = 4;
            return;
        }
        if (off + 8 > limit) {
            s->stop = 3;
            return;
        }
        w = mdj__load64_acq(m + off);
        if (w == 0) {
            s->stop = 0;
            return;
        }
        crc = MDJ__CAST(uint32_t, w);
        size = MDJ__CAST(uint32_t, w >> 32);
        if (!mdj__size_ok(size, cap - off)) {
            s->stop = 1;
            s->code = MDJ_ERR_BAD_LENGTH;
            snprintf(s->why, sizeof s->why, "frame length %u is invalid (min 32, max 65536, %llu bytes left)", size,
                     MDJ__CAST(unsigned long long, cap - off));
            return;
        }
        if (off + size > limit) {
            s->stop = 3;
            return;
        }
        mdj__put64(buf, w);
        memcpy(buf + 8, m + off + 8, size - 8);
        if (mdj_frame_crc(buf, size) != crc) {
            s->stop = 1;
            s->code = MDJ_ERR_CHECKSUM;
            snprintf(s->why, sizeof s->why, "frame checksum mismatch (stored 0x%08x)", crc);
            return;
        }
        if (mdj__le64(buf + 8) != s->last + 1) {
            s->stop = 1;
            s->code = MDJ_ERR_SEQUENCE;
            snprintf(s->why, sizeof s->why, "frame seq %llu, expected %llu",
                     MDJ__CAST(unsigned long long, mdj__le64(buf + 8)), MDJ__CAST(unsigned long long, s->last + 1));
            return;
        }
        rc = mdj__frame_content(buf, size, crc, &f, s->why, sizeof s->why);
        if (rc) {
            s->stop = 1;
            s->code = rc;
            return;
        }
        if (f.type == MDJ_TYPE_SEGMENT_END) {
            s->stop = 2;
            s->marker_seq = f.seq;
            s->end = off + mdj__align8(size);
            if (s->end == durable) {
                s->hit_durable = 1;
                s->seq_at_durable = s->last;
            }
            return;
        }
        s->frames++;
        s->last = f.seq;
        off += mdj__align8(size);
    }
}

/* A valid frame (good checksum, seq in (last, last + 2^20]) at an 8-aligned
 * offset after x, or 0 (§8.1 step 4). */
static uint64_t mdj__valid_after(const uint8_t *m, uint64_t x, uint64_t limit, uint64_t last, uint8_t *buf) {
    uint64_t o;
    for (o = x + 8; o + MDJ_FRAME_HEADER_SIZE <= limit; o += 8) {
        uint64_t w = mdj__load64_relaxed(m + o), seq;
        uint32_t size = MDJ__CAST(uint32_t, w >> 32);
        if (w == 0 || size < MDJ_FRAME_HEADER_SIZE || size > MDJ_MAX_FRAME_SIZE || o + size > limit) continue;
        seq = mdj__le64(m + o + 8);
        if (seq <= last || seq - last > (MDJ__CAST(uint64_t, 1) << 20)) continue;
        mdj__put64(buf, w);
        memcpy(buf + 8, m + o + 8, size - 8);
        if (mdj_frame_crc(buf, size) == MDJ__CAST(uint32_t, w)) return o;
    }
    return 0;
}

typedef struct mdj__vseg {
    int prepared;       /* not activated (first_seq 0 or no valid state record) */
    int holds_bytes;    /* prepared, but not provably empty */
    int sealed;         /* the frames end with an end marker */
    int activated;
    int scanned_whole;  /* the frames ran to an end marker or a clean end */
    uint64_t next_seq;  /* seq the next segment must start with (when scanned_whole) */
    uint32_t epoch;
} mdj__vseg;

static int mdj__verify_guarded_scan(const uint8_t *m, uint64_t limit, uint64_t cap, uint64_t stop_at, uint64_t first,
                                    uint64_t durable, mdj__scan *s, uint8_t *buf, uint64_t *valid_after,
                                    void **fault) {
    mdj__guard g;
    if (!mdj__guard_install()) {
        mdj__scan_frames(m, limit, cap, stop_at, first, durable, s, buf);
        *valid_after = s->stop == 0 || s->stop == 1 || s->stop == 3 ? mdj__valid_after(m, s->end, limit, s->last, buf) : 0;
        return 0;
    }
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) {
        *fault = g.fault_addr;
        return -1;
    }
    mdj__guard_top = &g;
    mdj__scan_frames(m, limit, cap, stop_at, first, durable, s, buf);
    *valid_after = s->stop == 0 || s->stop == 1 || s->stop == 3 ? mdj__valid_after(m, s->end, limit, s->last, buf) : 0;
    mdj__guard_top = g.prev;
    return 0;
}

/* Whether bytes [from, to) of fd are all zero: 1, 0, or -1 (errno) on a
 * read error. pread, not a mapping: a file shrinking meanwhile cannot fault. */
static int mdj__fd_zero(int fd, uint64_t from, uint64_t to, uint8_t *buf) {
    while (from < to) {
        size_t want = to - from < MDJ_MAX_FRAME_SIZE ? MDJ__CAST(size_t, to - from) : MDJ_MAX_FRAME_SIZE, i;
        ssize_t k = pread(fd, buf, want, MDJ__CAST(off_t, from));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) return 1; /* shorter now: what is gone holds nothing */
        for (i = 0; i < MDJ__CAST(size_t, k); i++)
            if (buf[i]) return 0;
        from += MDJ__CAST(uint64_t, k);
    }
    return 1;
}

/* Last non-zero byte in m[x,limit) + 1, or 0 when all zero. */
static uint64_t mdj__nonzero_end(const uint8_t *m, uint64_t x, uint64_t limit) {
    uint64_t i;
    for (i = limit; i > x; i--)
        if (m[i - 1]) return i;
    return 0;
}

static void mdj__verify_index(mdj__vctx *c, const char *dir, uint64_t number, const mdj__hdr *h, const uint8_t *m,
                              uint64_t limit) {
    char name[40], path[MDJ_PATH_LEN];
    struct stat st;
    mdj_error e;
    uint8_t hb[128];
    uint64_t slots = (h->capacity - MDJ_SEGMENT_HEADER_SIZE) / MDJ_INDEX_STRIDE + 1, count, i, prev_off = 0;
    uint8_t *ents;
    size_t need;
    int fd;
    mdj__seg_name(name, sizeof name, number, ".idx");
    mdj__join(path, sizeof path, dir, name);
    fd = mdj__open_file(path, O_RDONLY, &st, &e);
    if (fd < 0) {
        if (e.code == MDJ_ERR_IO) {
            char msg[128];
            snprintf(msg, sizeof msg, "%s", strerror(e.sys_errno));
            if (msg[0] >= 'A' && msg[0] <= 'Z') msg[0] = MDJ__CAST(char, msg[0] - 'A' + 'a');
            mdj__problem(c, "index", MDJ_ERR_INDEX_MISMATCH, name, 0,
                         "index unusable (open %s: %s); the next writer open or recover rebuilds it", path, msg);
        } else {
            mdj__problem(c, "index", MDJ_ERR_INDEX_MISMATCH, name, 0,
                         "index unusable (%s); the next writer open or recover rebuilds it", e.reason);
        }
        return;
    }
    if (mdj__pread_full(fd, hb, 128, 0) != 128) {
        mdj__problem(c, "index", MDJ_ERR_TRUNCATED, name, MDJ__CAST(int64_t, st.st_size), "index file is %lld bytes",
                     MDJ__CAST(long long, st.st_size));
        close(fd);
        return;
    }
    if (memcmp(hb, "MDJIDX\0\0", 8) != 0) {
        mdj__problem(c, "index", MDJ_ERR_BAD_MAGIC, name, 0, "bad index magic");
    } else if (mdj__le32(hb + 8) != MDJ_VERSION) {
        mdj__problem(c, "index", MDJ_ERR_VERSION, name, 8, "index format version %u, this build reads %d",
                     mdj__le32(hb + 8), MDJ_VERSION);
    } else if (mdj_crc32c(hb, 40) != mdj__le32(hb + 40)) {
        mdj__problem(c, "index", MDJ_ERR_CHECKSUM, name, 40, "index header checksum mismatch");
    } else if (mdj__le64(hb + 16) != h->journal_id || mdj__le64(hb + 24) != number) {
        mdj__problem(c, "index", MDJ_ERR_INDEX_MISMATCH, name, 16, "index is for journal 0x%llx segment %llu, not 0x%llx segment %llu",
                     MDJ__CAST(unsigned long long, mdj__le64(hb + 16)), MDJ__CAST(unsigned long long, mdj__le64(hb + 24)),
                     MDJ__CAST(unsigned long long, h->journal_id), MDJ__CAST(unsigned long long, number));
    } else if (mdj__le32(hb + 12) != MDJ_INDEX_STRIDE || mdj__le64(hb + 32) != slots) {
        mdj__problem(c, "index", MDJ_ERR_BAD_HEADER, name, 12,
                     "index stride %u or capacity %llu does not fit its segment (want 4096 and %llu)", mdj__le32(hb + 12),
                     MDJ__CAST(unsigned long long, mdj__le64(hb + 32)), MDJ__CAST(unsigned long long, slots));
    } else {
        need = MDJ_INDEX_HEADER_SIZE + MDJ__CAST(size_t, slots) * MDJ_INDEX_ENTRY_SIZE;
        count = mdj__le64(hb + 64);
        if (count > slots) {
            mdj__problem(c, "index", MDJ_ERR_BAD_HEADER, name, 64, "index count %llu exceeds its %llu slots",
                         MDJ__CAST(unsigned long long, count), MDJ__CAST(unsigned long long, slots));
        } else if (st.st_size < MDJ__CAST(off_t, need)) {
            mdj__problem(c, "index", MDJ_ERR_TRUNCATED, name, MDJ__CAST(int64_t, st.st_size),
                         "index file is %lld bytes, its slots need %zu", MDJ__CAST(long long, st.st_size), need);
        } else if (count) {
            ents = MDJ__CAST(uint8_t *, malloc(MDJ__CAST(size_t, count) * MDJ_INDEX_ENTRY_SIZE));
            if (!ents) {
                c->nomem = 1;
            } else if (mdj__pread_full(fd, ents, MDJ__CAST(size_t, count) * MDJ_INDEX_ENTRY_SIZE, MDJ_INDEX_HEADER_SIZE) ==
                       MDJ__CAST(int, count * MDJ_INDEX_ENTRY_SIZE)) {
                for (i = 0; i < count; i++) {
                    const uint8_t *p = ents + i * MDJ_INDEX_ENTRY_SIZE;
                    uint64_t seq = mdj__le64(p), off = mdj__le64(p + 16), fseq = 0;
                    int64_t ts = MDJ__CAST(int64_t, mdj__le64(p + 8)), fts = 0;
                    int64_t eoff = MDJ__CAST(int64_t, MDJ_INDEX_HEADER_SIZE + i * MDJ_INDEX_ENTRY_SIZE);
                    if (off < MDJ_SEGMENT_HEADER_SIZE || off % 8 || off + MDJ_FRAME_HEADER_SIZE > limit ||
                        (i && off <= prev_off)) {
                        mdj__problem(c, "index", MDJ_ERR_INDEX_MISMATCH, name, eoff,
                                     "entry %llu says seq %llu ts %lld at offset %llu: not a frame offset of the segment",
                                     MDJ__CAST(unsigned long long, i), MDJ__CAST(unsigned long long, seq),
                                     MDJ__CAST(long long, ts), MDJ__CAST(unsigned long long, off));
                        break;
                    }
                    fseq = mdj__le64(m + off + 8);
                    fts = MDJ__CAST(int64_t, mdj__le64(m + off + 16));
                    if (fseq != seq || fts != ts) {
                        mdj__problem(c, "index", MDJ_ERR_INDEX_MISMATCH, name, eoff,
                                     "entry %llu says seq %llu ts %lld at offset %llu; the segment has seq %llu ts %lld "
                                     "there",
                                     MDJ__CAST(unsigned long long, i), MDJ__CAST(unsigned long long, seq),
                                     MDJ__CAST(long long, ts), MDJ__CAST(unsigned long long, off),
                                     MDJ__CAST(unsigned long long, fseq), MDJ__CAST(long long, fts));
                        break;
                    }
                    prev_off = off;
                }
            }
            free(ents);
        }
    }
    close(fd);
}

/* mdj__verify_index under the SIGBUS guard: -1 if the segment or index
 * mapping faulted (truncated meanwhile). */
static int mdj__verify_index_guarded(mdj__vctx *c, const char *dir, uint64_t number, const mdj__hdr *h,
                                     const uint8_t *m, uint64_t limit) {
    mdj__guard g;
    if (!mdj__guard_install()) {
        mdj__verify_index(c, dir, number, h, m, limit);
        return 0;
    }
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) return -1;
    mdj__guard_top = &g;
    mdj__verify_index(c, dir, number, h, m, limit);
    mdj__guard_top = g.prev;
    return 0;
}

/* Judges one raw segment (§8.1) and reports its first problem. */
static void mdj__verify_seg(mdj__vctx *c, const char *dir, const mdj__ent *e, int is_last_active, int successor,
                            int live, mdj__vseg *prev, mdj__vseg *out, uint8_t *buf) {
    char name[40], path[MDJ_PATH_LEN];
    struct stat st;
    mdj_error er;
    mdj__hdr h;
    mdj__scan s;
    uint64_t limit, stop_at, valid = 0;
    const uint8_t *m;
    void *map, *fault = NULL;
    size_t maplen;
    int fd, seg_problem = 0, foreign = 0;
    mdj_verify_report *rep = c->rep;
    memset(out, 0, sizeof *out);
    mdj__seg_name(name, sizeof name, e->number, ".seg");
    mdj__join(path, sizeof path, dir, name);
    fd = mdj__open_file(path, O_RDONLY, &st, &er);
    if (fd < 0) {
        mdj__problem(c, "damage", er.code, name, 0, "%s", er.reason);
        return;
    }
    if (mdj__read_hdr(fd, path, MDJ__CAST(int64_t, st.st_size), &h, &er)) {
        mdj__problem(c, "damage", er.code, name, 0, "%s", er.reason);
        close(fd);
        return;
    }
    if (mdj__check_static(&h, path, e->number, 0, &er)) {
        mdj__problem(c, "damage", er.code, name, er.offset, "%s", er.reason);
        close(fd);
        return;
    }
    if (mdj__prepared(&h)) {
        /* Not activated (§2: first_seq 0 or no valid state record). Before
         * an activated segment that is damage; after the last one, an
         * activation in progress or lost: judged only for bytes that a
         * prepared segment cannot hold (as Go's verify). */
        int zero;
        uint64_t end = MDJ__CAST(uint64_t, st.st_size) < h.capacity ? MDJ__CAST(uint64_t, st.st_size) : h.capacity;
        if (prev->sealed && prev->scanned_whole && h.first_seq != 0 && h.first_seq == prev->next_seq) {
            /* Activated: the sealed predecessor's end marker names its
             * first seq (§4.3); without a valid state record that is
             * damaged state, never an activation in progress (§2.2). */
            mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128,
                         "the end marker says segment %llu starts at seq %llu, but it has no valid state record",
                         MDJ__CAST(unsigned long long, e->number), MDJ__CAST(unsigned long long, h.first_seq));
            close(fd);
            return;
        }
        if (successor) {
            mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128,
                         "segment %llu is not activated (no valid state record) but a later segment is",
                         MDJ__CAST(unsigned long long, e->number));
            close(fd);
            return;
        }
        out->prepared = 1;
        zero = mdj__fd_zero(fd, MDJ_SEGMENT_HEADER_SIZE, end, buf);
        close(fd);
        if (zero < 0) {
            mdj__problem(c, "damage", MDJ_ERR_IO, name, -1, "reading the segment: %s", strerror(errno));
            return;
        }
        /* provably empty: cursor 4096, the whole capacity, no valid state
         * record, every data byte zero */
        if (h.cursor == MDJ_SEGMENT_HEADER_SIZE && end == h.capacity && !h.st_ok && zero) return;
        out->holds_bytes = 1;
        if (h.cursor != MDJ_SEGMENT_HEADER_SIZE || !zero)
            mdj__problem(c, "torn", MDJ_ERR_ROLL_ORDER, name, MDJ_SEGMENT_HEADER_SIZE,
                         "segment %llu is not activated but holds bytes (an activation lost to a power cut, or a "
                         "crafted header): the next writer open moves it aside",
                         MDJ__CAST(unsigned long long, e->number));
        return;
    }
    out->activated = 1;
    out->epoch = h.epoch;
    if (!rep->journal_id) rep->journal_id = h.journal_id;
    foreign = h.journal_id != rep->journal_id; /* reported after the segment's own checks */
    /* §8.1 step 1; reported at the offset of state record A, as Go does. */
    if (h.st.durable_offset < MDJ_SEGMENT_HEADER_SIZE || h.st.durable_offset > h.capacity || h.st.durable_offset % 8) {
        mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128,
                     "state record: durable offset %llu outside [4096,%llu] or unaligned",
                     MDJ__CAST(unsigned long long, h.st.durable_offset), MDJ__CAST(unsigned long long, h.capacity));
        close(fd);
        return;
    }
    if (h.st.durable_seq < h.first_seq - 1) {
        mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128, "state record: durable seq %llu below the first seq %llu",
                     MDJ__CAST(unsigned long long, h.st.durable_seq), MDJ__CAST(unsigned long long, h.first_seq));
        close(fd);
        return;
    }
    if ((h.st.flags & MDJ_STATE_SEALED) && h.st.last_seq < h.first_seq - 1) {
        mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128,
                     "state record: sealed with last seq %llu below the first seq %llu",
                     MDJ__CAST(unsigned long long, h.st.last_seq), MDJ__CAST(unsigned long long, h.first_seq));
        close(fd);
        return;
    }
    if (prev->activated && h.epoch < prev->epoch) {
        mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 56, "epoch %u goes back from the previous segment's %u",
                     h.epoch, prev->epoch);
        seg_problem = 1;
        out->epoch = prev->epoch; /* epochs only grow: later segments are compared with the highest */
    } else if (prev->scanned_whole && h.first_seq != prev->next_seq) {
        mdj__problem(c, "damage", MDJ_ERR_SEQUENCE, name, 32, "first seq %llu, the previous segment ends before %llu",
                     MDJ__CAST(unsigned long long, h.first_seq), MDJ__CAST(unsigned long long, prev->next_seq));
        seg_problem = 1;
    }
    limit = MDJ__CAST(uint64_t, st.st_size) < h.capacity ? MDJ__CAST(uint64_t, st.st_size) : h.capacity;
    if (MDJ__CAST(uint64_t, st.st_size) < h.st.durable_offset && !seg_problem) {
        mdj__problem(c, "damage", MDJ_ERR_TRUNCATED, name, MDJ__CAST(int64_t, st.st_size),
                     "file truncated to %lld bytes, below the durable checkpoint %llu: durable frames are gone",
                     MDJ__CAST(long long, st.st_size), MDJ__CAST(unsigned long long, h.st.durable_offset));
        seg_problem = 1;
    }
    maplen = MDJ__CAST(size_t, limit);
    map = limit >= MDJ_SEGMENT_HEADER_SIZE ? mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) {
        if (!seg_problem)
            mdj__problem(c, "damage", MDJ_ERR_TRUNCATED, name, MDJ__CAST(int64_t, st.st_size), "cannot map %lld bytes",
                         MDJ__CAST(long long, st.st_size));
        return;
    }
    m = MDJ__CAST(const uint8_t *, map);
    stop_at = UINT64_MAX;
    if (live && is_last_active) { /* frames being written are not judged */
        uint64_t cur = mdj__load64_acq(m + 64);
        stop_at = cur >= MDJ_SEGMENT_HEADER_SIZE && cur <= limit && cur % 8 == 0 ? cur : MDJ_SEGMENT_HEADER_SIZE;
    }
    if (mdj__verify_guarded_scan(m, limit, h.capacity, stop_at, h.first_seq, h.st.durable_offset, &s, buf, &valid,
                                 &fault) != 0) {
        mdj__problem(c, "damage", MDJ_ERR_TRUNCATED, name,
                     MDJ__CAST(int64_t, MDJ__U(fault) - MDJ__U(m)),
                     "file truncated while being verified (SIGBUS)");
        munmap(map, maplen);
        return;
    }
    out->sealed = s.stop == 2;
    rep->frames += s.frames;
    if (s.frames) {
        if (!rep->first_seq || h.first_seq < rep->first_seq) rep->first_seq = h.first_seq;
        if (s.last > rep->last_seq) rep->last_seq = s.last;
    }
    if (!seg_problem && s.stop != 4) {
        const char *reason_tail =
            ": not a torn tail, refusing to cut (cut explicitly with journalctl recover --truncate-at)";
        int kind = s.stop == 1 ? s.code : MDJ_ERR_MID_LOG;
        uint64_t nz = (s.stop == 2) ? mdj__nonzero_end(m, s.end, limit) : 0;
        if (s.end < h.st.durable_offset && s.stop != 3) {
            /* §8.1 step 3: below the checkpoint everything was durable. */
            if (s.stop == 1)
                mdj__problem(c, "damage", s.code, name, MDJ__CAST(int64_t, s.end), "%s, below the durable checkpoint %llu",
                             s.why, MDJ__CAST(unsigned long long, h.st.durable_offset));
            else
                mdj__problem(c, "damage", MDJ_ERR_MID_LOG, name, MDJ__CAST(int64_t, s.end),
                             "the frames end at %llu, below the durable checkpoint %llu",
                             MDJ__CAST(unsigned long long, s.end), MDJ__CAST(unsigned long long, h.st.durable_offset));
            seg_problem = 1;
        } else if (!s.hit_durable || s.seq_at_durable != h.st.durable_seq) {
            mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128,
                         "durable checkpoint (offset %llu, seq %llu) does not match the frames",
                         MDJ__CAST(unsigned long long, h.st.durable_offset),
                         MDJ__CAST(unsigned long long, h.st.durable_seq));
            seg_problem = 1;
        } else if (s.stop == 2) { /* §8.1 step 5: sealed */
            if (nz) {
                mdj__problem(c, "damage", MDJ_ERR_MID_LOG, name, MDJ__CAST(int64_t, s.end),
                             "non-zero bytes after the end marker");
                seg_problem = 1;
            } else if (!(h.st.flags & MDJ_STATE_SEALED)) {
                mdj__problem(c, "torn", MDJ_ERR_BAD_HEADER, name, 128,
                             "end marker written but the state is not sealed: a crash mid-roll (the writer repairs it)");
                seg_problem = 1;
            } else if (h.st.last_seq != s.marker_seq - 1) {
                mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128,
                             "state last_seq %llu, the end marker says %llu",
                             MDJ__CAST(unsigned long long, h.st.last_seq),
                             MDJ__CAST(unsigned long long, s.marker_seq - 1));
                seg_problem = 1;
            } else {
                out->scanned_whole = 1;
                out->next_seq = s.marker_seq;
            }
        } else {
            uint64_t nzend = mdj__nonzero_end(m, s.end, limit);
            if (s.stop == 3 || MDJ__CAST(uint64_t, st.st_size) < h.capacity) {
                /* A short file: the cut frame is a torn tail when nothing valid follows. */
                if (valid) {
                    mdj__problem(c, "damage", kind, name, MDJ__CAST(int64_t, s.end), "%s, but a valid frame follows at "
                                 "offset %llu%s", s.stop == 1 ? s.why : "damage", MDJ__CAST(unsigned long long, valid),
                                 reason_tail);
                } else {
                    int torn = is_last_active && !(h.st.flags & (MDJ_STATE_CLEAN | MDJ_STATE_SEALED));
                    mdj__problem(c, torn ? "torn" : "damage", MDJ_ERR_TRUNCATED, name, MDJ__CAST(int64_t, st.st_size),
                                 "file truncated to %lld bytes (capacity %llu), past the durable checkpoint %llu; the "
                                 "cut frame at offset %llu is a torn tail",
                                 MDJ__CAST(long long, st.st_size), MDJ__CAST(unsigned long long, h.capacity),
                                 MDJ__CAST(unsigned long long, h.st.durable_offset),
                                 MDJ__CAST(unsigned long long, s.end));
                }
                seg_problem = 1;
            } else if (nzend) { /* §8.1 step 4 */
                if (valid) {
                    mdj__problem(c, "damage", kind, name, MDJ__CAST(int64_t, s.end),
                                 "%s, but a valid frame follows at offset %llu%s",
                                 s.stop == 1 ? s.why : "non-zero bytes after the last frame",
                                 MDJ__CAST(unsigned long long, valid), reason_tail);
                } else if ((h.st.flags & MDJ_STATE_CLEAN) || !is_last_active || (h.st.flags & MDJ_STATE_SEALED)) {
                    mdj__problem(c, "damage", kind, name, MDJ__CAST(int64_t, s.end),
                                 "%s in a segment that is %s: not a torn tail",
                                 s.stop == 1 ? s.why : "non-zero bytes after the last frame",
                                 (h.st.flags & MDJ_STATE_CLEAN) ? "closed cleanly" : "not the last one");
                } else {
                    mdj__problem(c, "torn", MDJ_ERR_TORN_TAIL, name, MDJ__CAST(int64_t, s.end),
                                 "torn tail: non-zero bytes after the last frame; %llu bytes from here are unfinished",
                                 MDJ__CAST(unsigned long long, nzend - s.end));
                }
                seg_problem = 1;
            } else if (h.st.flags & MDJ_STATE_SEALED) {
                mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 128,
                             "the state says sealed but no end marker follows the frames (they end at %llu)",
                             MDJ__CAST(unsigned long long, s.end));
                seg_problem = 1;
            } else if (successor) {
                mdj__problem(c, "torn", MDJ_ERR_TORN_TAIL, name, MDJ__CAST(int64_t, s.end),
                             "unsealed segment followed by an activated one: a crash mid-roll (the writer seals it)");
                seg_problem = 1;
            }
        }
    }
    if (!seg_problem && (h.cursor < MDJ_SEGMENT_HEADER_SIZE || h.cursor > h.capacity || h.cursor % 8)) {
        mdj__problem(c, "torn", MDJ_ERR_CURSOR_RANGE, name, 64,
                     "write cursor %llu is outside [4096,%llu] or unaligned: a hint only (the frames end at %llu); "
                     "recover resets it",
                     MDJ__CAST(unsigned long long, h.cursor), MDJ__CAST(unsigned long long, h.capacity),
                     MDJ__CAST(unsigned long long, s.end));
    }
    if (mdj__verify_index_guarded(c, dir, e->number, &h, m, limit) != 0)
        mdj__problem(c, "damage", MDJ_ERR_TRUNCATED, name, -1, "file truncated while being verified (SIGBUS)");
    munmap(map, maplen);
    if (foreign)
        mdj__problem(c, "damage", MDJ_ERR_BAD_HEADER, name, 16,
                     "journal id 0x%llx, but the journal's first segment has 0x%llx: files of two journals are mixed",
                     MDJ__CAST(unsigned long long, h.journal_id), MDJ__CAST(unsigned long long, rep->journal_id));
}

int mdj_verify(const char *dir, mdj_verify_report *rep, mdj_error *err) {
    mdj_error le;
    mdj__ent *v = NULL;
    size_t n = 0, i;
    long last_active = -1;
    mdj__vctx c;
    mdj__vseg prev, cur;
    uint8_t *buf;
    int rc;
    mdj__err_clear(err);
    memset(rep, 0, sizeof *rep);
    memset(&c, 0, sizeof c);
    c.rep = rep;
    rc = mdj__list(dir, &v, &n, &le);
    if (rc == MDJ_ERR_NOT_REGULAR) { /* the listing itself is refused: nothing else is judged */
        mdj__problem(&c, "damage", rc, ".", 0, "%s", le.reason);
        return c.nomem ? MDJ_ERR_NOMEM : 0;
    }
    if (rc) {
        if (err) *err = le;
        return rc;
    }
    if (!n) {
        free(v);
        return mdj__err(err, MDJ_ERR_NOT_FOUND, dir, -1, "no journal in %s", dir);
    }
    buf = MDJ__CAST(uint8_t *, malloc(MDJ_MAX_FRAME_SIZE));
    if (!buf) {
        free(v);
        return mdj__err(err, MDJ_ERR_NOMEM, dir, -1, "out of memory");
    }
    rep->segments = n;
    rep->writer_live = mdj__writer_live(dir, &rep->writer_pid);
    for (i = n; i-- > 0;) { /* the last activated segment */
        mdj__hdr h;
        char path[MDJ_PATH_LEN];
        mdj_error e2;
        if (!v[i].raw || mdj__peek_hdr(dir, &v[i], &h, path, sizeof path, &e2) != 0 ||
            mdj__check_static(&h, path, v[i].number, 0, &e2) != 0 || !mdj__prepared(&h)) {
            last_active = MDJ__CAST(long, i);
            break;
        }
    }
    memset(&prev, 0, sizeof prev);
    for (i = 0; i < n; i++) {
        if (i && v[i].number != v[i - 1].number + 1) {
            uint64_t k;
            for (k = v[i - 1].number + 1; k < v[i].number; k++) {
                char name[40];
                mdj__seg_name(name, sizeof name, k, ".seg");
                mdj__problem(&c, "damage", MDJ_ERR_MISSING, name, 0, "segment %llu is missing (have %llu and %llu)",
                             MDJ__CAST(unsigned long long, k), MDJ__CAST(unsigned long long, v[i - 1].number),
                             MDJ__CAST(unsigned long long, v[i].number));
            }
            memset(&prev, 0, sizeof prev);
        }
        if (!v[i].raw) {
            char name[40];
            mdj__seg_name(name, sizeof name, v[i].number, ".seg.zst");
            mdj__problem(&c, "unchecked", MDJ_ERR_COMPRESSED, name, 0,
                         "compressed segment not supported by the C reader: its frames were not checked");
            memset(&prev, 0, sizeof prev);
            prev.activated = 1;
            continue;
        }
        mdj__verify_seg(&c, dir, &v[i], MDJ__CAST(long, i) == last_active, MDJ__CAST(long, i) < last_active,
                        rep->writer_live, &prev, &cur, buf);
        if (cur.prepared && cur.holds_bytes && MDJ__CAST(long, i) == last_active + 1 && prev.sealed) {
            char name[40];
            mdj__seg_name(name, sizeof name, v[i].number, ".seg");
            mdj__problem(&c, "torn", MDJ_ERR_ROLL_ORDER, name, MDJ_SEGMENT_HEADER_SIZE,
                         "the previous segment is sealed but this one's activation never reached the disk; its bytes "
                         "are moved aside by the next writer open");
        }
        if (!cur.prepared) prev = cur; /* a damaged segment leaves the next one's continuity unknown */
    }
    free(buf);
    free(v);
    if (c.nomem) {
        mdj_verify_free(rep);
        return mdj__err(err, MDJ_ERR_NOMEM, dir, -1, "out of memory");
    }
    return 0;
}

void mdj_verify_free(mdj_verify_report *rep) {
    free(rep->problems);
    rep->problems = NULL;
    rep->nproblems = 0;
}


/* ====================================================================== */
/* Snapshot file (format.md §11)                                           */
/* ====================================================================== */

struct mdj_snap {
    int fd;
    uint8_t *base;
    size_t map_len;
    uint64_t journal_id;
    uint32_t depth, slot_size, capacity;
    int64_t created;
    int64_t stall_ns;
    int guard;
    dev_t dev;
    ino_t ino;
    char path[MDJ_PATH_LEN];
};

static uint64_t mdj__snap_slot_size(uint32_t depth) { return (96 + 32 * MDJ__CAST(uint64_t, depth) + 63) & ~MDJ__CAST(uint64_t, 63); }

static uint64_t mdj__snap_file_size(uint32_t depth, uint32_t capacity) {
    return (4096 + MDJ__CAST(uint64_t, capacity) * mdj__snap_slot_size(depth) + 4095) & ~MDJ__CAST(uint64_t, 4095);
}

/* The header checks of §11 "Validation on open", in its order. */
static int mdj__snap_check(const uint8_t *h, int64_t size, const char *path, mdj_error *err) {
    uint32_t version = mdj__le32(h + 8), hsize = mdj__le32(h + 12), depth = mdj__le32(h + 24);
    uint32_t slot = mdj__le32(h + 28), capacity = mdj__le32(h + 32);
    uint64_t fsize = mdj__le64(h + 48);
    if (memcmp(h, "MDJSNAP\0", 8) != 0) {
        char q[64];
        mdj__quote_bytes(q, sizeof q, h, 8);
        return mdj__err(err, MDJ_ERR_BAD_MAGIC, path, 0, "bad magic %s, want \"MDJSNAP\\x00\"", q);
    }
    if (version != MDJ_SNAP_VERSION)
        return mdj__err(err, MDJ_ERR_VERSION, path, 8, "snapshot format version %u, this reader knows %d",
                        version, MDJ_SNAP_VERSION);
    if (mdj_crc32c(h, 56) != mdj__le32(h + 56))
        return mdj__err(err, MDJ_ERR_CHECKSUM, path, 56, "header crc %08x, computed %08x", mdj__le32(h + 56),
                        mdj_crc32c(h, 56));
    if (hsize != MDJ_SNAP_HEADER_SIZE)
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 12, "header_size %u, want 4096", hsize);
    if (depth < 1 || depth > MDJ_SNAP_MAX_DEPTH)
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 24, "depth %u outside [1,256]", depth);
    if (slot != mdj__snap_slot_size(depth))
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 28, "slot_size %u, want %llu for depth %u", slot,
                        MDJ__CAST(unsigned long long, mdj__snap_slot_size(depth)), depth);
    if (capacity < 1 || capacity > MDJ_SNAP_MAX_CAPACITY)
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 32, "capacity %u outside [1,2^20]", capacity);
    if (fsize != mdj__snap_file_size(depth, capacity))
        return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 48, "file_size %llu, want %llu",
                        MDJ__CAST(unsigned long long, fsize),
                        MDJ__CAST(unsigned long long, mdj__snap_file_size(depth, capacity)));
    if (MDJ__CAST(uint64_t, size) < fsize)
        return mdj__err(err, MDJ_ERR_TRUNCATED, path, size, "file is %lld bytes, its header says %llu",
                        MDJ__CAST(long long, size), MDJ__CAST(unsigned long long, fsize));
    return MDJ_OK;
}

int mdj_snap_open(mdj_snap **out, const char *path, const mdj_snap_options *opts, mdj_error *err) {
    struct stat st;
    uint8_t h[128];
    mdj_snap *s;
    void *m;
    int fd, rc;
    mdj__err_clear(err);
    *out = NULL;
    if (!path) return mdj__err(err, MDJ_ERR_INVALID, "", -1, "no path");
    /* A reader follows a symlink (an operator may point one at the file),
     * never blocks on a FIFO, and accepts only a regular file. */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return mdj__sys(err, path, "open");
    if (fstat(fd, &st) != 0) {
        rc = mdj__sys(err, path, "fstat");
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mdj__err(err, MDJ_ERR_NOT_REGULAR, path, -1, "%s is not a regular file", path);
    }
    if (st.st_size < MDJ_SNAP_HEADER_SIZE) {
        close(fd);
        return mdj__err(err, MDJ_ERR_TRUNCATED, path, st.st_size, "file is %lld bytes, shorter than its 4096-byte header",
                        MDJ__CAST(long long, st.st_size));
    }
    if (mdj__pread_full(fd, h, sizeof h, 0) != MDJ__CAST(int, sizeof h)) {
        rc = mdj__sys(err, path, "pread");
        close(fd);
        return rc;
    }
    if ((rc = mdj__snap_check(h, st.st_size, path, err)) != MDJ_OK) {
        close(fd);
        return rc;
    }
    s = MDJ__CAST(mdj_snap *, calloc(1, sizeof *s));
    if (!s) {
        close(fd);
        return mdj__err(err, MDJ_ERR_NOMEM, path, -1, "out of memory");
    }
    s->fd = fd;
    s->journal_id = mdj__le64(h + 16);
    s->depth = mdj__le32(h + 24);
    s->slot_size = mdj__le32(h + 28);
    s->capacity = mdj__le32(h + 32);
    s->created = MDJ__CAST(int64_t, mdj__le64(h + 40));
    s->map_len = MDJ__CAST(size_t, mdj__le64(h + 48));
    s->stall_ns = opts && opts->stall_timeout_ns > 0 ? opts->stall_timeout_ns : 1000000000;
    s->guard = !(opts && opts->no_sigbus_guard) && mdj__guard_install();
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    snprintf(s->path, sizeof s->path, "%s", path);
    m = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = mdj__sys(err, path, "mmap");
        close(fd);
        free(s);
        return rc;
    }
    s->base = MDJ__CAST(uint8_t *, m);
    *out = s;
    return MDJ_OK;
}

void mdj_snap_close(mdj_snap *s) {
    if (!s) return;
    if (s->base) munmap(s->base, s->map_len);
    if (s->fd >= 0) close(s->fd);
    free(s);
}

uint64_t mdj_snap_last_applied(const mdj_snap *s) {
    return __atomic_load_n(MDJ__CAST(const uint64_t *, MDJ__CAST(const void *, s->base + 64)), __ATOMIC_ACQUIRE);
}
uint32_t mdj_snap_writer_pid(const mdj_snap *s) {
    return __atomic_load_n(MDJ__CAST(const uint32_t *, MDJ__CAST(const void *, s->base + 128)), __ATOMIC_ACQUIRE);
}
uint64_t mdj_snap_journal_id(const mdj_snap *s) { return s->journal_id; }
uint32_t mdj_snap_depth(const mdj_snap *s) { return s->depth; }
uint32_t mdj_snap_capacity(const mdj_snap *s) { return s->capacity; }
int64_t mdj_snap_created(const mdj_snap *s) { return s->created; }

int mdj_snap_replaced(const mdj_snap *s, mdj_error *err) {
    struct stat st;
    mdj__err_clear(err);
    if (stat(s->path, &st) != 0) {
        if (errno == ENOENT) return 1;
        return mdj__sys(err, s->path, "stat");
    }
    return st.st_dev != s->dev || st.st_ino != s->ino;
}

static uint64_t mdj__snap_ld(const uint8_t *p) {
    return __atomic_load_n(MDJ__CAST(const uint64_t *, MDJ__CAST(const void *, p)), __ATOMIC_RELAXED);
}

/* Back-off of a reader that found a slot being written (§11): spin, then
 * yield; MDJ_ERR_STALLED once the counter stayed at one odd value for the
 * stall timeout. A counter that keeps moving is a live writer: retry. */
typedef struct mdj__snap_wait {
    unsigned n;
    uint64_t stuck_at;
    int64_t since;
} mdj__snap_wait;

static int mdj__snap_backoff(mdj_snap *s, mdj__snap_wait *w, uint64_t c, uint32_t id, mdj_error *err) {
    int64_t now;
    w->n++;
    if (w->n < 64) {
        mdj__cpu_relax();
        return MDJ_OK;
    }
    sched_yield();
    if (w->n % 256 != 0) return MDJ_OK;
    now = mdj__mono_ns();
    if (!(c & 1) || c != w->stuck_at) {
        w->stuck_at = c;
        w->since = now;
        return MDJ_OK;
    }
    if (now - w->since >= s->stall_ns)
        return mdj__err(err, MDJ_ERR_STALLED, s->path, 4096 + MDJ__CAST(int64_t, id) * s->slot_size,
                        "slot %u: counter stuck at odd value %llu for %lld ms: the writer died mid-publish", id,
                        MDJ__CAST(unsigned long long, c), MDJ__CAST(long long, s->stall_ns / 1000000));
    return MDJ_OK;
}

static void mdj__snap_copy_levels(mdj_snap_level *dst, const uint8_t *src, uint32_t n) {
    uint32_t i;
    for (i = 0; i < n; i++) {
        dst[i].price = MDJ__CAST(int64_t, mdj__snap_ld(src + 16 * MDJ__CAST(size_t, i)));
        dst[i].qty = MDJ__CAST(int64_t, mdj__snap_ld(src + 16 * MDJ__CAST(size_t, i) + 8));
    }
}

static int mdj__snap_read(mdj_snap *s, uint32_t id, mdj_snap_book *b, mdj_error *err) {
    const uint8_t *p = s->base + 4096 + MDJ__CAST(size_t, id) * s->slot_size;
    const uint64_t *lk = MDJ__CAST(const uint64_t *, MDJ__CAST(const void *, p));
    mdj__snap_wait w;
    uint32_t depth = s->depth;
    int rc;
    memset(&w, 0, sizeof w);
    for (;;) {
        uint64_t c1 = __atomic_load_n(lk, __ATOMIC_ACQUIRE), counts, v;
        uint32_t nb, na;
        int bad;
        if (c1 & 1) {
            if ((rc = mdj__snap_backoff(s, &w, c1, id, err)) != MDJ_OK) return rc;
            continue;
        }
        counts = mdj__snap_ld(p + 48);
        nb = MDJ__CAST(uint32_t, counts);
        na = MDJ__CAST(uint32_t, counts >> 32);
        bad = nb > depth || na > depth;
        if (nb > depth) nb = depth; /* clamp: the copy may be torn */
        if (na > depth) na = depth;
        b->seq = mdj__snap_ld(p + 8);
        b->ts = MDJ__CAST(int64_t, mdj__snap_ld(p + 16));
        v = mdj__snap_ld(p + 24);
        b->instrument = MDJ__CAST(uint32_t, v);
        b->price_scale = MDJ__CAST(int32_t, MDJ__CAST(uint32_t, v >> 32));
        v = mdj__snap_ld(p + 32);
        memcpy(b->symbol, &v, 8);
        v = mdj__snap_ld(p + 40);
        memcpy(b->symbol + 8, &v, 8);
        b->symbol[MDJ_SYMBOL_LEN] = 0;
        b->trade_price = MDJ__CAST(int64_t, mdj__snap_ld(p + 56));
        b->trade_qty = MDJ__CAST(int64_t, mdj__snap_ld(p + 64));
        b->trade_ts = MDJ__CAST(int64_t, mdj__snap_ld(p + 72));
        mdj__snap_copy_levels(b->bids, p + 96, nb);
        mdj__snap_copy_levels(b->asks, p + 96 + 16 * MDJ__CAST(size_t, depth), na);
        /* The field loads stay before the second counter load. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(lk, __ATOMIC_RELAXED) != c1) {
            if ((rc = mdj__snap_backoff(s, &w, c1, id, err)) != MDJ_OK) return rc;
            continue;
        }
        b->bid_count = nb;
        b->ask_count = na;
        if (bad)
            return mdj__err(err, MDJ_ERR_BAD_HEADER, s->path, 4096 + MDJ__CAST(int64_t, id) * s->slot_size + 48,
                            "slot %u: level counts %u/%u exceed depth %u", id, MDJ__CAST(uint32_t, counts),
                            MDJ__CAST(uint32_t, counts >> 32), depth);
        return MDJ_OK;
    }
}

static int mdj__snap_fault(mdj_snap *s, mdj__guard *g, mdj_error *err) {
    uintptr_t a = MDJ__U(g->fault_addr), b = MDJ__U(s->base);
    struct stat st;
    long long size = fstat(s->fd, &st) == 0 ? MDJ__CAST(long long, st.st_size) : -1;
    if (a >= b && a < b + s->map_len)
        return mdj__err(err, MDJ_ERR_TRUNCATED, s->path, MDJ__CAST(int64_t, a - b),
                        "memory fault reading the mapping at offset %llu: file is now %lld bytes, mapped %llu "
                        "(truncated under the reader)",
                        MDJ__CAST(unsigned long long, a - b), size, MDJ__CAST(unsigned long long, s->map_len));
    return mdj__err(err, MDJ_ERR_TRUNCATED, s->path, -1, "SIGBUS reading a mapping (a file was truncated)");
}

int mdj_snap_read(mdj_snap *s, uint32_t id, mdj_snap_book *b, mdj_error *err) {
    mdj__guard g;
    int rc;
    mdj__err_clear(err);
    if (id >= s->capacity)
        return mdj__err(err, MDJ_ERR_INVALID, s->path, -1, "instrument %u outside the file's capacity %u", id,
                        s->capacity);
    if (!s->guard) return mdj__snap_read(s, id, b, err);
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) return mdj__snap_fault(s, &g, err);
    mdj__guard_top = &g;
    rc = mdj__snap_read(s, id, b, err);
    mdj__guard_top = g.prev;
    return rc;
}

/* Copies slot id's symbol under the seqlock (zero for a slot never written). */
static int mdj__snap_symbol(mdj_snap *s, uint32_t id, uint64_t sym[2], mdj_error *err) {
    const uint8_t *p = s->base + 4096 + MDJ__CAST(size_t, id) * s->slot_size;
    const uint64_t *lk = MDJ__CAST(const uint64_t *, MDJ__CAST(const void *, p));
    mdj__snap_wait w;
    int rc;
    memset(&w, 0, sizeof w);
    for (;;) {
        uint64_t c1 = __atomic_load_n(lk, __ATOMIC_ACQUIRE);
        if (c1 == 0) {
            sym[0] = sym[1] = 0;
            return MDJ_OK;
        }
        if (!(c1 & 1)) {
            sym[0] = mdj__snap_ld(p + 32);
            sym[1] = mdj__snap_ld(p + 40);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(lk, __ATOMIC_RELAXED) == c1) return MDJ_OK;
        }
        if ((rc = mdj__snap_backoff(s, &w, c1, id, err)) != MDJ_OK) return rc;
    }
}

static int mdj__snap_lookup(mdj_snap *s, const uint64_t want[2], uint32_t *id, mdj_error *err) {
    mdj_error stalled;
    uint32_t i;
    stalled.code = MDJ_OK;
    for (i = 0; i < s->capacity; i++) {
        uint64_t sym[2];
        if (mdj__snap_symbol(s, i, sym, &stalled) != MDJ_OK) continue; /* skipped; reported if nothing else matches */
        if (sym[0] == want[0] && sym[1] == want[1]) {
            *id = i;
            return 1;
        }
    }
    if (stalled.code != MDJ_OK && err) *err = stalled;
    return 0;
}

int mdj_snap_lookup(mdj_snap *s, const char *symbol, uint32_t *id, mdj_error *err) {
    uint64_t want[2] = {0, 0};
    size_t n = symbol ? strlen(symbol) : 0;
    mdj__guard g;
    int rc;
    mdj__err_clear(err);
    if (n == 0 || n > MDJ_SYMBOL_LEN) return 0;
    memcpy(want, symbol, n);
    if (!s->guard) return mdj__snap_lookup(s, want, id, err);
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) return mdj__snap_fault(s, &g, err);
    mdj__guard_top = &g;
    rc = mdj__snap_lookup(s, want, id, err);
    mdj__guard_top = g.prev;
    return rc;
}


/* ====================================================================== */
/* Ring file (format.md §12)                                               */
/* ====================================================================== */

#define MDJ__R_TAIL 128
#define MDJ__R_HEAD 256
#define MDJ__R_DSEQ 384
#define MDJ__R_DWAIT 388
#define MDJ__R_SSEQ 512
#define MDJ__R_SWAIT 516
#define MDJ__R_PROD 640
#define MDJ__R_CONS 768
#define MDJ__S_PID 0
#define MDJ__S_STATE 4
#define MDJ__S_START 8
#define MDJ__S_BEAT 16
#define MDJ__S_PIDNS 24
#define MDJ__S_FLAGS 32
#define MDJ__R_SEALED 0xFFFFFFFFu
#define MDJ__R_PLAIN 1u
#define MDJ__R_KIND_DATA 1u
#define MDJ__R_KIND_PAD 2u
#define MDJ__MB_GLOBAL_EXPEDITED 2
#define MDJ__MB_REGISTER_GLOBAL_EXPEDITED 4

struct mdj_ring {
    int fd;
    int producer;          /* 1 producer, 0 consumer */
    uint8_t *map;          /* mapping base (header page) */
    size_t map_len;
    uint8_t *data;         /* map + 4096 */
    uint64_t cap, mask, gen, max_pay;
    uint32_t me, peer;     /* side block offsets */
    int plain;             /* we publish with plain (release) stores: membarrier registered */
    int wait;
    int64_t timeout;       /* peer timeout */
    int guard;
    int closed, failed;
    unsigned beats;
    int64_t last_beat;
    /* consumer */
    uint64_t h, pub_head, lim, next, chunk;
    int pending;
    /* producer */
    uint64_t pos, pub, head_cache;
    int claimed, hold;
    uint64_t claim_pad, claim_rec, claim_end, hold_idx, hold_word;
    uint32_t claim_len;
    int created, keep;
    int64_t linger;
    dev_t dev;
    ino_t ino;
    int beater;            /* the beat thread runs */
    int beat_stop;
    pthread_t beat_tid;
    pthread_mutex_t beat_mu;
    pthread_cond_t beat_cv;
    mdj_error err;
    char path[MDJ_PATH_LEN];
};

static void mdj__beat_start(mdj_ring *r);

/* ---- this process ---- */

static struct {
    int init;
    uint32_t pid;
    uint64_t start, pidns;
    int proc_ok;
} mdj__self;

/* state letter and start time (field 22) of a /proc/PID/stat file */
static int mdj__proc_stat(const char *path, char *state, uint64_t *start) {
    char buf[1024], *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC), field;
    ssize_t n;
    if (fd < 0) return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    p = strrchr(buf, ')');
    if (!p || p[1] != ' ') return 0;
    p += 2;
    *state = *p;
    for (field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) return 0;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 1;
}

static void mdj__self_init(void) {
    struct stat st;
    char state, link[32];
    ssize_t n;
    uint64_t start = 0;
    if (__atomic_load_n(&mdj__self.init, __ATOMIC_ACQUIRE)) return;
    mdj__self.pid = MDJ__CAST(uint32_t, getpid());
    if (mdj__proc_stat("/proc/self/stat", &state, &start)) mdj__self.start = start;
    if (stat("/proc/self/ns/pid", &st) == 0) mdj__self.pidns = MDJ__CAST(uint64_t, st.st_ino);
    n = readlink("/proc/self", link, sizeof link - 1);
    if (n > 0) {
        link[n] = 0;
        mdj__self.proc_ok = strtoul(link, NULL, 10) == mdj__self.pid;
    }
    __atomic_store_n(&mdj__self.init, 1, __ATOMIC_RELEASE);
}

/* ---- words of the mapping ---- */

static uint64_t *mdj__r64(const mdj_ring *r, uint64_t off) { return MDJ__CAST(uint64_t *, MDJ__CAST(void *, r->map + off)); }
static uint32_t *mdj__r32(const mdj_ring *r, uint64_t off) { return MDJ__CAST(uint32_t *, MDJ__CAST(void *, r->map + off)); }
static uint32_t mdj__side_state(const mdj_ring *r, uint32_t s) { return __atomic_load_n(mdj__r32(r, s + MDJ__S_STATE), __ATOMIC_SEQ_CST); }
static uint32_t mdj__side_pid(const mdj_ring *r, uint32_t s) { return __atomic_load_n(mdj__r32(r, s + MDJ__S_PID), __ATOMIC_SEQ_CST); }
static void mdj__beat(mdj_ring *r, int64_t now) {
    __atomic_store_n(mdj__r64(r, r->me + MDJ__S_BEAT), MDJ__CAST(uint64_t, now), __ATOMIC_SEQ_CST);
    r->last_beat = now;
}

static void mdj__wake(mdj_ring *r, uint64_t seq_off, uint64_t waiters_off, int always) {
    if (always || __atomic_load_n(mdj__r32(r, waiters_off), __ATOMIC_SEQ_CST) != 0) {
        __atomic_fetch_add(mdj__r32(r, seq_off), 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, mdj__r32(r, seq_off), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
}

/* ---- liveness (§12 "Liveness") ---- */

static int mdj__pid_gone(uint32_t pid, uint64_t start) {
    char path[40], state;
    uint64_t s;
    if (pid == 0 || pid == MDJ__R_SEALED || pid > (1u << 22)) return 1;
    if (kill(MDJ__CAST(pid_t, pid), 0) != 0 && errno == ESRCH) return 1;
    if (!mdj__self.proc_ok) return 0;
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    if (!mdj__proc_stat(path, &state, &s)) return 0;
    if (state == 'Z' || state == 'X') return 1;
    return start != 0 && s != start;
}

/* 1 if side s is present, else 0 with why filled. */
static int mdj__present(const mdj_ring *r, uint32_t s, char *why, size_t cap) {
    uint32_t pid = mdj__side_pid(r, s);
    int64_t hb = MDJ__CAST(int64_t, __atomic_load_n(mdj__r64(r, s + MDJ__S_BEAT), __ATOMIC_SEQ_CST));
    int64_t age = mdj__mono_ns() - hb;
    uint64_t ns = __atomic_load_n(mdj__r64(r, s + MDJ__S_PIDNS), __ATOMIC_SEQ_CST);
    if (hb == 0) {
        snprintf(why, cap, "PID %u not beating", pid);
        return 0;
    }
    if (age > r->timeout || age < -r->timeout) {
        snprintf(why, cap, "PID %u heartbeat %lld ms %s (timeout %lld ms)", pid, MDJ__CAST(long long, (age < 0 ? -age : age) / 1000000),
                 age < 0 ? "in the future" : "old", MDJ__CAST(long long, r->timeout / 1000000));
        return 0;
    }
    if (ns != 0 && ns == mdj__self.pidns && mdj__pid_gone(pid, __atomic_load_n(mdj__r64(r, s + MDJ__S_START), __ATOMIC_SEQ_CST))) {
        snprintf(why, cap, "PID %u is gone", pid);
        return 0;
    }
    snprintf(why, cap, "PID %u alive", pid);
    return 1;
}

/* ---- open, validate, map ---- */

static int mdj__ring_check(const uint8_t *h, int64_t size, const char *path, mdj_error *err) {
    uint32_t version = mdj__le32(h + 8), hs = mdj__le32(h + 12);
    uint64_t c = mdj__le64(h + 16), t, hd;
    uint32_t ps, cs;
    if (memcmp(h, "MDJRING\0", 8) != 0) {
        char q[64];
        mdj__quote_bytes(q, sizeof q, h, 8);
        return mdj__err(err, MDJ_ERR_BAD_MAGIC, path, 0, "bad ring magic %s", q);
    }
    if (version != MDJ_RING_VERSION) {
        if (version == 1)
            return mdj__err(err, MDJ_ERR_VERSION, path, 8,
                            "ring format version 1 (written by an older mdjournal); this reader knows version 2 only: "
                            "remove the file");
        return mdj__err(err, MDJ_ERR_VERSION, path, 8, "ring format version %u, this reader knows 2", version);
    }
    if (hs != MDJ_RING_HEADER_SIZE) return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 12, "header size %u, want 4096", hs);
    if (c < MDJ_RING_MIN_CAPACITY || c > MDJ_RING_MAX_CAPACITY || (c & (c - 1)) != 0)
        return mdj__err(err, MDJ_ERR_BAD_CAPACITY, path, 16, "capacity %llu is not a power of two in [64,2^32]",
                        MDJ__CAST(unsigned long long, c));
    if (mdj_crc32c(h, 44) != mdj__le32(h + 44))
        return mdj__err(err, MDJ_ERR_CHECKSUM, path, 44, "header checksum %08x, computed %08x", mdj__le32(h + 44),
                        mdj_crc32c(h, 44));
    if (mdj__le64(h + 32) == 0) return mdj__err(err, MDJ_ERR_BAD_HEADER, path, 32, "generation 0");
    if (size < MDJ__CAST(int64_t, 4096 + c))
        return mdj__err(err, MDJ_ERR_TRUNCATED, path, size, "file is %lld bytes, header and capacity need %llu",
                        MDJ__CAST(long long, size), MDJ__CAST(unsigned long long, 4096 + c));
    t = mdj__le64(h + MDJ__R_TAIL);
    hd = mdj__le64(h + MDJ__R_HEAD);
    if (t % 8) return mdj__err(err, MDJ_ERR_BAD_POSITION, path, MDJ__R_TAIL, "producer position %llu not 8-byte aligned", MDJ__CAST(unsigned long long, t));
    if (hd % 8) return mdj__err(err, MDJ_ERR_BAD_POSITION, path, MDJ__R_HEAD, "consumer position %llu not 8-byte aligned", MDJ__CAST(unsigned long long, hd));
    if (hd > t || t - hd > c - 8)
        return mdj__err(err, MDJ_ERR_BAD_POSITION, path, MDJ__R_HEAD,
                        "consumer position %llu, producer position %llu: not within one capacity (%llu) less 8 behind",
                        MDJ__CAST(unsigned long long, hd), MDJ__CAST(unsigned long long, t), MDJ__CAST(unsigned long long, c));
    ps = mdj__le32(h + MDJ__R_PROD + MDJ__S_STATE);
    cs = mdj__le32(h + MDJ__R_CONS + MDJ__S_STATE);
    if (ps > MDJ_RING_RETIRED) return mdj__err(err, MDJ_ERR_BAD_HEADER, path, MDJ__R_PROD + MDJ__S_STATE, "producer state %u unknown", ps);
    if (cs > MDJ_RING_RETIRED) return mdj__err(err, MDJ_ERR_BAD_HEADER, path, MDJ__R_CONS + MDJ__S_STATE, "consumer state %u unknown", cs);
    if (cs == MDJ_RING_FREE && hd != 0)
        return mdj__err(err, MDJ_ERR_BAD_POSITION, path, MDJ__R_HEAD, "consumer position %llu but no consumer ever attached", MDJ__CAST(unsigned long long, hd));
    if (ps == MDJ_RING_FREE && t != 0)
        return mdj__err(err, MDJ_ERR_BAD_POSITION, path, MDJ__R_TAIL, "producer position %llu but no producer ever attached", MDJ__CAST(unsigned long long, t));
    return MDJ_OK;
}

static mdj_ring *mdj__ring_new(const char *path, const mdj_ring_options *o) {
    mdj_ring *r = MDJ__CAST(mdj_ring *, calloc(1, sizeof *r));
    if (!r) return NULL;
    r->fd = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->wait = o ? o->wait : MDJ_WAIT_BACKOFF;
    r->timeout = o && o->peer_timeout_ns > 0 ? o->peer_timeout_ns : 3000000000LL;
    if (r->timeout < 1000000000LL) r->timeout = 1000000000LL;
    r->guard = !(o && o->no_sigbus_guard) && mdj__guard_install();
    r->beats = 64;
    mdj__err_clear(&r->err);
    return r;
}

static void mdj__ring_unmap(mdj_ring *r) {
    if (r->map) munmap(r->map, r->map_len);
    r->map = NULL;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

/* Maps fd (an opened ring file) after validating a pread copy of its
 * header, then validates the live header again. */
static int mdj__ring_map(mdj_ring *r, int fd, const struct stat *st, mdj_error *err) {
    uint8_t *h;
    struct statfs sf;
    size_t len, huge = 0;
    void *m;
    int rc, i;
    if (st->st_size < MDJ_RING_HEADER_SIZE)
        return mdj__err(err, MDJ_ERR_TRUNCATED, r->path, st->st_size, "file is %lld bytes, shorter than the 4096-byte header",
                        MDJ__CAST(long long, st->st_size));
    h = MDJ__CAST(uint8_t *, malloc(MDJ_RING_HEADER_SIZE));
    if (!h) return mdj__err(err, MDJ_ERR_NOMEM, r->path, -1, "out of memory");
    for (i = 0;; i++) {
        if (mdj__pread_full(fd, h, MDJ_RING_HEADER_SIZE, 0) != MDJ_RING_HEADER_SIZE) {
            free(h);
            return mdj__sys(err, r->path, "pread");
        }
        rc = mdj__ring_check(h, st->st_size, r->path, err);
        /* A live ring's positions can look out of order for a moment: the
         * producer stores tail after the header word that publishes, and
         * the consumer may already have stored a head past it. Damage
         * persists; look again a few times before reporting it. */
        if (rc != MDJ_ERR_BAD_POSITION || i == 3) break;
        sched_yield();
    }
    r->cap = mdj__le64(h + 16);
    r->gen = mdj__le64(h + 32);
    free(h);
    if (rc != MDJ_OK) return rc;
    if (fstatfs(fd, &sf) == 0 && MDJ__CAST(unsigned long, sf.f_type) == 0x958458f6UL) huge = MDJ__CAST(size_t, sf.f_bsize);
    len = MDJ__CAST(size_t, 4096 + r->cap);
    if (huge) len = (len + huge - 1) / huge * huge;
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return mdj__sys(err, r->path, "mmap");
    r->fd = fd;
    r->map = MDJ__CAST(uint8_t *, m);
    r->map_len = len;
    r->data = r->map + 4096;
    r->mask = r->cap - 1;
    r->max_pay = r->cap / 2 - 8;
    r->chunk = r->cap / 4;
    r->dev = st->st_dev;
    r->ino = st->st_ino;
    return MDJ_OK;
}

static int mdj__ring_fault(mdj_ring *r, mdj__guard *g) {
    uintptr_t a = MDJ__U(g->fault_addr), b = MDJ__U(r->map);
    struct stat st;
    long long size = r->fd >= 0 && fstat(r->fd, &st) == 0 ? MDJ__CAST(long long, st.st_size) : -1;
    if (r->map && a >= b && a < b + r->map_len)
        mdj__err(&r->err, MDJ_ERR_TRUNCATED, r->path, MDJ__CAST(int64_t, a - b),
                 "memory fault at offset %llu of the ring mapping: file is now %lld bytes, needs %llu (truncated under us)",
                 MDJ__CAST(unsigned long long, a - b), size, MDJ__CAST(unsigned long long, 4096 + r->cap));
    else
        mdj__err(&r->err, MDJ_ERR_TRUNCATED, r->path, -1, "SIGBUS reading a mapping (a file was truncated)");
    r->failed = 1;
    return r->err.code;
}

/* Idle-path size check (§12 "Truncation"). */
static int mdj__ring_size_ok(mdj_ring *r) {
    struct stat st;
    if (r->fd < 0 || fstat(r->fd, &st) != 0) return MDJ_OK;
    if (st.st_size < MDJ__CAST(off_t, 4096 + r->cap)) {
        mdj__err(&r->err, MDJ_ERR_TRUNCATED, r->path, st.st_size, "ring file truncated to %lld bytes under us, header and capacity need %llu",
                 MDJ__CAST(long long, st.st_size), MDJ__CAST(unsigned long long, 4096 + r->cap));
        r->failed = 1;
        return r->err.code;
    }
    return MDJ_OK;
}

/* Opens path as a ring (§12 "Truncation and files"): 1 and r mapped, 0 if
 * no file is there, or a negative code. */
static int mdj__ring_open_path(mdj_ring *r, mdj_error *err) {
    struct stat st;
    int fd = open(r->path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), rc;
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        if (errno == ELOOP) return mdj__err(err, MDJ_ERR_NOT_REGULAR, r->path, -1, "%s is a symbolic link: refused", r->path);
        if (errno == EISDIR) return mdj__err(err, MDJ_ERR_NOT_REGULAR, r->path, -1, "%s is a directory", r->path);
        return mdj__sys(err, r->path, "open");
    }
    if (fstat(fd, &st) != 0) {
        rc = mdj__sys(err, r->path, "fstat");
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mdj__err(err, MDJ_ERR_NOT_REGULAR, r->path, -1, "%s is not a regular file (mode %#o)", r->path,
                        MDJ__CAST(unsigned, st.st_mode));
    }
    if ((rc = mdj__ring_map(r, fd, &st, err)) != MDJ_OK) {
        if (!r->map) close(fd);
        return rc;
    }
    return 1;
}

/* Runs f(r, arg) under the SIGBUS guard. */
static int mdj__ring_guarded(mdj_ring *r, int (*f)(mdj_ring *, void *), void *arg) {
    mdj__guard g;
    int rc;
    if (!r->guard) return f(r, arg);
    g.prev = mdj__guard_top;
    g.fault_addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) return mdj__ring_fault(r, &g);
    mdj__guard_top = &g;
    rc = f(r, arg);
    mdj__guard_top = g.prev;
    return rc;
}

static int mdj__ring_recheck(mdj_ring *r, void *arg) {
    struct stat st;
    int rc, i;
    (void)arg;
    if (fstat(r->fd, &st) != 0) return mdj__sys(&r->err, r->path, "fstat");
    for (i = 0;; i++) { /* see mdj__ring_map: a moment's disorder of live positions is not damage */
        rc = mdj__ring_check(r->map, st.st_size, r->path, &r->err);
        if (rc != MDJ_ERR_BAD_POSITION || i == 3) return rc;
        sched_yield();
    }
}

/* Claims side s (§12 "Generations"): 1 claimed, 0 taken (r->err says by whom). */
static int mdj__claim(mdj_ring *r, uint32_t s) {
    char why[160];
    long ret;
    for (;;) {
        uint32_t pid = mdj__side_pid(r, s), st = mdj__side_state(r, s), zero = 0;
        if (pid != 0 || st != MDJ_RING_FREE) {
            const char *name = s == MDJ__R_PROD ? "producer" : "consumer";
            if (pid == MDJ__R_SEALED || st == MDJ_RING_RETIRED)
                mdj__err(&r->err, MDJ_ERR_LEFTOVER, r->path, s, "%s side sealed (the ring was replaced)", name);
            else if (st == MDJ_RING_CLOSED)
                mdj__err(&r->err, MDJ_ERR_LEFTOVER, r->path, s, "%s PID %u detached", name, pid);
            else if (mdj__present(r, s, why, sizeof why))
                mdj__err(&r->err, MDJ_ERR_BUSY, r->path, s, "%s side held by %s", name, why);
            else
                mdj__err(&r->err, MDJ_ERR_LEFTOVER, r->path, s, "%s side used: %s", name, why);
            return 0;
        }
        r->me = s;
        mdj__beat(r, mdj__mono_ns());
        if (__atomic_compare_exchange_n(mdj__r32(r, s + MDJ__S_PID), &zero, mdj__self.pid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) break;
    }
    r->peer = s == MDJ__R_PROD ? MDJ__R_CONS : MDJ__R_PROD;
#if defined(__x86_64__) && defined(SYS_membarrier)
    ret = syscall(SYS_membarrier, MDJ__MB_REGISTER_GLOBAL_EXPEDITED, 0, 0);
    r->plain = ret == 0;
#else
    (void)ret;
    r->plain = 0;
#endif
    __atomic_store_n(mdj__r64(r, s + MDJ__S_START), mdj__self.start, __ATOMIC_SEQ_CST);
    __atomic_store_n(mdj__r64(r, s + MDJ__S_PIDNS), mdj__self.pidns, __ATOMIC_SEQ_CST);
    __atomic_store_n(mdj__r32(r, s + MDJ__S_FLAGS), r->plain ? MDJ__R_PLAIN : 0u, __ATOMIC_SEQ_CST);
    mdj__beat(r, mdj__mono_ns());
    __atomic_store_n(mdj__r32(r, s + MDJ__S_STATE), MDJ_RING_ATTACHED, __ATOMIC_SEQ_CST);
    return 1;
}

static int mdj__claim_guarded(mdj_ring *r, void *arg) { return mdj__claim(r, *MDJ__CAST(uint32_t *, arg)); }

static int mdj__same_file(const mdj_ring *r) {
    struct stat st;
    return lstat(r->path, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino;
}

/* ---- consumer ---- */

/* Whether a new consumer may attach (§12): 1 yes, 0 not now (why), or a
 * negative code (a live consumer: MDJ_ERR_BUSY). */
static int mdj__consumer_joinable(mdj_ring *r, void *arg) {
    char *why = MDJ__CAST(char *, arg), pw[160];
    uint32_t cp = mdj__side_pid(r, MDJ__R_CONS), cs = mdj__side_state(r, MDJ__R_CONS);
    uint32_t pp = mdj__side_pid(r, MDJ__R_PROD), ps = mdj__side_state(r, MDJ__R_PROD);
    if (cp == MDJ__R_SEALED || cs == MDJ_RING_RETIRED) return snprintf(why, 200, "a ring being replaced (consumer side sealed)"), 0;
    if (cs == MDJ_RING_CLOSED) return snprintf(why, 200, "a leftover ring already consumed (consumer PID %u detached)", cp), 0;
    if (cp != 0 || cs == MDJ_RING_ATTACHED) {
        if (mdj__present(r, MDJ__R_CONS, pw, sizeof pw))
            return mdj__err(&r->err, MDJ_ERR_BUSY, r->path, MDJ__R_CONS, "consumer side held by %s", pw);
        return snprintf(why, 200, "a leftover ring (consumer %s)", pw), 0;
    }
    if (pp == MDJ__R_SEALED || ps == MDJ_RING_RETIRED) return snprintf(why, 200, "a ring being replaced (producer side sealed)"), 0;
    if (pp == 0 && ps == MDJ_RING_FREE) return 1;
    if (mdj__present(r, MDJ__R_PROD, pw, sizeof pw)) return 1;
    return snprintf(why, 200, "a leftover %sring (producer %s)", ps == MDJ_RING_CLOSED ? "finished " : "", pw), 0;
}

static int mdj__producer_state(mdj_ring *r, void *arg) {
    (void)arg;
    mdj__beat(r, mdj__mono_ns());
    return MDJ__CAST(int, mdj__side_state(r, MDJ__R_PROD));
}

static int mdj__consumer_detach(mdj_ring *r, void *arg) {
    (void)arg;
    if (r->pending) {
        r->pending = 0;
        r->h = r->next;
    }
    __atomic_store_n(mdj__r64(r, MDJ__R_HEAD), r->h, __ATOMIC_SEQ_CST);
    r->pub_head = r->h;
    __atomic_store_n(mdj__r32(r, r->me + MDJ__S_STATE), MDJ_RING_CLOSED, __ATOMIC_SEQ_CST);
    mdj__wake(r, MDJ__R_SSEQ, MDJ__R_SWAIT, 1);
    __atomic_store_n(mdj__r64(r, r->me + MDJ__S_BEAT), 0, __ATOMIC_SEQ_CST);
    return MDJ_OK;
}

int mdj_ring_consumer_open(mdj_ring **out, const char *path, const mdj_ring_options *o, mdj_error *err) {
    int64_t limit = o && o->attach_timeout_ns ? o->attach_timeout_ns : 10000000000LL;
    int64_t deadline = mdj__mono_ns() + (limit > 0 ? limit : 0), sleep = 1000000;
    char why[200];
    mdj__err_clear(err);
    *out = NULL;
    if (!path || !*path) return mdj__err(err, MDJ_ERR_INVALID, "", -1, "no path");
    mdj__self_init();
    for (;;) {
        mdj_ring *r = mdj__ring_new(path, o);
        int rc;
        if (!r) return mdj__err(err, MDJ_ERR_NOMEM, path, -1, "out of memory");
        snprintf(why, sizeof why, "no ring file");
        rc = mdj__ring_open_path(r, err);
        if (rc == 1) {
            rc = mdj__ring_guarded(r, mdj__ring_recheck, NULL);
            if (rc == MDJ_OK) rc = mdj__ring_guarded(r, mdj__consumer_joinable, why);
            if (rc == 1) {
                uint32_t side = MDJ__R_CONS;
                rc = mdj__ring_guarded(r, mdj__claim_guarded, &side);
                if (rc == 1) {
                    /* Attached: wait for the producer. */
                    int64_t nap = 100000;
                    for (;;) {
                        int st = mdj__ring_guarded(r, mdj__producer_state, NULL);
                        if (st < 0) {
                            if (err) *err = r->err;
                            mdj__ring_unmap(r);
                            free(r);
                            return st;
                        }
                        if (st == MDJ_RING_ATTACHED || st == MDJ_RING_CLOSED) {
                            r->lim = __atomic_load_n(mdj__r64(r, MDJ__R_TAIL), __ATOMIC_ACQUIRE) + r->cap;
                            if (o && o->beat_thread) mdj__beat_start(r);
                            *out = r;
                            return MDJ_OK;
                        }
                        if (st == MDJ_RING_RETIRED || !mdj__same_file(r)) {
                            snprintf(why, sizeof why, "the ring was replaced while waiting for its producer");
                            break;
                        }
                        if (mdj__mono_ns() > deadline) {
                            snprintf(why, sizeof why, "a ring with no producer attached");
                            break;
                        }
                        mdj__sleep_ns(nap);
                        if (nap < 5000000) nap *= 2;
                    }
                    mdj__ring_guarded(r, mdj__consumer_detach, NULL);
                    rc = 0;
                } else if (rc == 0 && r->err.code == MDJ_ERR_LEFTOVER) {
                    snprintf(why, sizeof why, "%.190s", r->err.reason);
                } else if (rc == 0) {
                    rc = r->err.code;
                }
            }
            if (rc < 0 && err && r->err.code) *err = r->err;
        }
        mdj__ring_unmap(r);
        free(r);
        if (rc < 0) return rc;
        if (mdj__mono_ns() > deadline)
            return mdj__err(err, MDJ_ERR_TIMEOUT, path, -1, "no producer: %s (waited %lld ms)", why,
                            MDJ__CAST(long long, (limit > 0 ? limit : 0) / 1000000));
        mdj__sleep_ns(sleep);
        if (sleep < 20000000) sleep *= 2;
    }
}

static int mdj__bad_record(mdj_ring *r, uint64_t idx, uint64_t w) {
    r->failed = 1;
    return mdj__err(&r->err, MDJ_ERR_BAD_RECORD, r->path, MDJ__CAST(int64_t, 4096 + idx),
                    "record at position %llu: length %llu kind %llu invalid (capacity %llu, max payload %llu)",
                    MDJ__CAST(unsigned long long, r->h), MDJ__CAST(unsigned long long, w & 0xffffffffu),
                    MDJ__CAST(unsigned long long, w >> 32), MDJ__CAST(unsigned long long, r->cap),
                    MDJ__CAST(unsigned long long, r->max_pay));
}

static void mdj__publish_head(mdj_ring *r) {
    if (r->h == r->pub_head) return;
    r->pub_head = r->h;
    if (r->plain)
        __atomic_store_n(mdj__r64(r, MDJ__R_HEAD), r->h, __ATOMIC_RELEASE);
    else
        __atomic_store_n(mdj__r64(r, MDJ__R_HEAD), r->h, __ATOMIC_SEQ_CST);
    mdj__wake(r, MDJ__R_SSEQ, MDJ__R_SWAIT, 0);
    if (--r->beats == 0) {
        int64_t now = mdj__mono_ns();
        r->beats = 64;
        if (now - r->last_beat >= 50000000) mdj__beat(r, now);
    }
}

/* The consumer step of §12 "Consuming": 1 and the view, 0 empty, or damage. */
static int mdj__try_read(mdj_ring *r, const void **p, uint32_t *len) {
    if (r->pending) {
        r->pending = 0;
        r->h = r->next;
        if (r->h - r->pub_head >= r->chunk) mdj__publish_head(r);
    }
    if (r->failed) return r->err.code;
    if (r->closed) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "consumer closed");
    for (;;) {
        uint64_t idx = r->h & r->mask;
        uint64_t w = __atomic_load_n(MDJ__CAST(uint64_t *, MDJ__CAST(void *, r->data + idx)), __ATOMIC_ACQUIRE);
        uint64_t n, kind, size;
        if (w == 0) {
            mdj__publish_head(r); /* caught up: give the space back now */
            return 0;
        }
        if (r->h >= r->lim) {
            uint64_t t = __atomic_load_n(mdj__r64(r, MDJ__R_TAIL), __ATOMIC_ACQUIRE);
            if (t % 8) {
                r->failed = 1;
                return mdj__err(&r->err, MDJ_ERR_BAD_POSITION, r->path, MDJ__R_TAIL, "producer position %llu not 8-byte aligned",
                                MDJ__CAST(unsigned long long, t));
            }
            r->lim = t + r->cap;
            if (r->h >= r->lim) {
                r->failed = 1;
                return mdj__err(&r->err, MDJ_ERR_BAD_RECORD, r->path, MDJ__CAST(int64_t, 4096 + idx),
                                "record header at position %llu, a lap or more past the producer position %llu: not a published record",
                                MDJ__CAST(unsigned long long, r->h), MDJ__CAST(unsigned long long, t));
            }
        }
        n = w & 0xffffffffu;
        kind = w >> 32;
        if (kind == MDJ__R_KIND_PAD) {
            if (n + 8 != r->cap - idx) return mdj__bad_record(r, idx, w);
            r->h += r->cap - idx;
            continue;
        }
        size = (8 + n + 7) & ~MDJ__CAST(uint64_t, 7);
        if (kind != MDJ__R_KIND_DATA || n > r->max_pay || idx + size > r->cap) return mdj__bad_record(r, idx, w);
        r->next = r->h + size;
        r->pending = 1;
        *p = r->data + idx + 8;
        *len = MDJ__CAST(uint32_t, n);
        return 1;
    }
}

typedef struct {
    const void **p;
    uint32_t *len;
} mdj__view_args;

static int mdj__try_read_g(mdj_ring *r, void *arg) {
    mdj__view_args *a = MDJ__CAST(mdj__view_args *, arg);
    return mdj__try_read(r, a->p, a->len);
}

int mdj_ring_try_read(mdj_ring *r, const void **p, uint32_t *len) {
    mdj__view_args a;
    a.p = p;
    a.len = len;
    if (r->producer) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "not a consumer");
    return mdj__ring_guarded(r, mdj__try_read_g, &a);
}

static int mdj__header_at_h(mdj_ring *r) {
    return __atomic_load_n(MDJ__CAST(uint64_t *, MDJ__CAST(void *, r->data + (r->h & r->mask))), __ATOMIC_ACQUIRE) != 0;
}

/* End of stream or a dead producer, once nothing more is published at h
 * (§12 "Exactly once"): MDJ_ERR_EOF, MDJ_ERR_PEER_DEAD, damage, or 0. */
static int mdj__end(mdj_ring *r) {
    char why[160];
    uint32_t st;
    if (r->pending) return 0;
    st = mdj__side_state(r, MDJ__R_PROD);
    if (st == MDJ_RING_ATTACHED) {
        if (mdj__present(r, MDJ__R_PROD, why, sizeof why)) return 0;
        if ((st = mdj__side_state(r, MDJ__R_PROD)) == MDJ_RING_ATTACHED) {
            if (mdj__header_at_h(r)) return 0;
            return mdj__err(&r->err, MDJ_ERR_PEER_DEAD, r->path, -1, "producer %s", why);
        }
    }
    if (st == MDJ_RING_CLOSED) {
        uint64_t t;
        if (mdj__header_at_h(r)) return 0;
        t = __atomic_load_n(mdj__r64(r, MDJ__R_TAIL), __ATOMIC_ACQUIRE);
        if (t != r->h) {
            r->failed = 1;
            return mdj__err(&r->err, MDJ_ERR_BAD_POSITION, r->path, MDJ__R_TAIL,
                            "producer closed at position %llu, but the consumer at %llu finds no record there: records lost",
                            MDJ__CAST(unsigned long long, t), MDJ__CAST(unsigned long long, r->h));
        }
        return mdj__err(&r->err, MDJ_ERR_EOF, r->path, -1, "end of stream");
    }
    if (st == MDJ_RING_RETIRED) {
        if (mdj__header_at_h(r)) return 0;
        return mdj__err(&r->err, MDJ_ERR_PEER_DEAD, r->path, -1, "producer side sealed: no producer will attach");
    }
    return 0;
}

/* Idle-path checks of the consumer. */
static int mdj__consumer_check(mdj_ring *r) {
    int rc;
    if (r->failed) return r->err.code;
    if ((rc = mdj__ring_size_ok(r)) != MDJ_OK) return rc;
    mdj__beat(r, mdj__mono_ns());
    if (__atomic_load_n(mdj__r64(r, 32), __ATOMIC_RELAXED) != r->gen) {
        r->failed = 1;
        return mdj__err(&r->err, MDJ_ERR_BAD_HEADER, r->path, 32, "generation changed under the consumer");
    }
    return mdj__end(r);
}

/* One futex sleep of a waiter (§12 "Waiting"): announce, barrier if the
 * peer publishes plainly, re-check, sleep, withdraw. */
static void mdj__futex_sleep(mdj_ring *r, uint64_t seq_off, uint64_t waiters_off, int (*ready)(mdj_ring *, uint64_t), uint64_t arg,
                             int64_t max_ns) {
    uint32_t v;
    int64_t d = max_ns < 100000000 ? max_ns : 100000000;
    __atomic_fetch_add(mdj__r32(r, waiters_off), 1, __ATOMIC_SEQ_CST);
    v = __atomic_load_n(mdj__r32(r, seq_off), __ATOMIC_SEQ_CST);
    if (__atomic_load_n(mdj__r32(r, r->peer + MDJ__S_FLAGS), __ATOMIC_SEQ_CST) & MDJ__R_PLAIN) {
#ifdef SYS_membarrier
        if (syscall(SYS_membarrier, MDJ__MB_GLOBAL_EXPEDITED, 0, 0) != 0 && d > 1000000) d = 1000000;
#else
        if (d > 1000000) d = 1000000;
#endif
    }
    if (!ready(r, arg)) {
        uint32_t ps = mdj__side_state(r, r->peer);
        if (ps != MDJ_RING_CLOSED && !(r->producer && ps == MDJ_RING_RETIRED)) {
            struct timespec ts;
            if (d < 1) d = 1;
            ts.tv_sec = d / 1000000000;
            ts.tv_nsec = d % 1000000000;
            syscall(SYS_futex, mdj__r32(r, seq_off), FUTEX_WAIT, v, &ts, NULL, 0);
        }
    }
    __atomic_fetch_sub(mdj__r32(r, waiters_off), 1, __ATOMIC_SEQ_CST);
}

static int mdj__data_ready(mdj_ring *r, uint64_t arg) {
    (void)arg;
    return mdj__header_at_h(r);
}

/* Idles (r->wait) until a header word is published at h: 1, 0 timeout, or
 * an end/damage code. Checks run after each futex wait and every 20 ms. */
static int mdj__await_data(mdj_ring *r, int64_t timeout_ns) {
    int64_t start = mdj__mono_ns(), deadline = timeout_ns >= 0 ? start + timeout_ns : INT64_MAX, next_check = start + 20000000;
    int64_t nap = 1000;
    unsigned i;
    int rc;
    if (r->failed) return r->err.code;
    mdj__publish_head(r);
    for (i = 1;; i++) {
        int64_t now;
        if (mdj__header_at_h(r)) return 1;
        now = (i & 15) == 0 || r->wait == MDJ_WAIT_FUTEX || r->wait == MDJ_WAIT_BACKOFF ? mdj__mono_ns() : start;
        if (r->wait == MDJ_WAIT_FUTEX && i > 200) {
            mdj__futex_sleep(r, MDJ__R_DSEQ, MDJ__R_DWAIT, mdj__data_ready, 0, deadline - now);
            now = mdj__mono_ns();
            next_check = 0;
        } else if (r->wait == MDJ_WAIT_SPIN || r->wait == MDJ_WAIT_FUTEX || i <= 200) {
            mdj__cpu_relax();
        } else if (r->wait == MDJ_WAIT_YIELD || i <= 300) {
            sched_yield();
        } else {
            mdj__sleep_ns(nap);
            if (nap < 1000000) nap *= 2;
        }
        if (now >= next_check) {
            next_check = now + 20000000;
            if ((rc = mdj__consumer_check(r)) != 0) return mdj__header_at_h(r) ? 1 : rc;
        }
        if (now >= deadline) return 0;
    }
}

typedef struct {
    const void **p;
    uint32_t *len;
    int64_t timeout;
} mdj__read_args;

static int mdj__read_g(mdj_ring *r, void *arg) {
    mdj__read_args *a = MDJ__CAST(mdj__read_args *, arg);
    for (;;) {
        int rc = mdj__try_read(r, a->p, a->len);
        if (rc != 0) return rc;
        rc = mdj__await_data(r, a->timeout);
        if (rc <= 0) return rc;
    }
}

int mdj_ring_read(mdj_ring *r, const void **p, uint32_t *len, int64_t timeout_ns) {
    mdj__read_args a;
    if (r->producer) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "not a consumer");
    a.p = p;
    a.len = len;
    a.timeout = timeout_ns;
    return mdj__ring_guarded(r, mdj__read_g, &a);
}

typedef struct {
    long limit;
    mdj_ring_handler fn;
    void *ctx;
    int64_t timeout;
    long n;
} mdj__batch_args;

static int mdj__batch_g(mdj_ring *r, void *arg) {
    mdj__batch_args *a = MDJ__CAST(mdj__batch_args *, arg);
    const void *p = NULL;
    uint32_t len = 0;
    int rc;
    for (;;) {
        rc = mdj__try_read(r, &p, &len);
        if (rc != 0) break;
        rc = mdj__await_data(r, a->timeout);
        if (rc <= 0) return rc;
    }
    while (rc == 1) {
        a->fn(a->ctx, p, len);
        if (++a->n >= a->limit) break;
        rc = mdj__try_read(r, &p, &len);
    }
    if (rc < 0 && a->n == 0) return rc;
    if (r->pending) { /* give the batch back: one head store */
        r->pending = 0;
        r->h = r->next;
    }
    mdj__publish_head(r);
    return 1;
}

long mdj_ring_read_batch(mdj_ring *r, long limit, mdj_ring_handler fn, void *ctx, int64_t timeout_ns) {
    mdj__batch_args a;
    int rc;
    if (r->producer) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "not a consumer");
    if (limit < 1 || !fn) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "bad batch limit or handler");
    a.limit = limit;
    a.fn = fn;
    a.ctx = ctx;
    a.timeout = timeout_ns;
    a.n = 0;
    rc = mdj__ring_guarded(r, mdj__batch_g, &a);
    if (rc < 0 && a.n == 0) return rc;
    return a.n;
}

/* ---- producer ---- */

static int mdj__load_head(mdj_ring *r) {
    uint64_t h = __atomic_load_n(mdj__r64(r, MDJ__R_HEAD), __ATOMIC_ACQUIRE);
    if (h % 8 || h > r->pub || r->pub - h > r->cap) {
        r->failed = 1;
        mdj__err(&r->err, MDJ_ERR_BAD_POSITION, r->path, MDJ__R_HEAD,
                 "consumer position %llu, producer published up to %llu: not within capacity %llu behind",
                 MDJ__CAST(unsigned long long, h), MDJ__CAST(unsigned long long, r->pub), MDJ__CAST(unsigned long long, r->cap));
        return 0;
    }
    r->head_cache = h;
    return 1;
}

static void mdj__flush(mdj_ring *r) {
    uint64_t *hp;
    if (!r->hold || r->failed) return;
    hp = MDJ__CAST(uint64_t *, MDJ__CAST(void *, r->data + r->hold_idx));
    if (r->plain)
        __atomic_store_n(hp, r->hold_word, __ATOMIC_RELEASE);
    else
        __atomic_store_n(hp, r->hold_word, __ATOMIC_SEQ_CST); /* orders the waiter load below */
    __atomic_store_n(mdj__r64(r, MDJ__R_TAIL), r->pos, __ATOMIC_RELEASE);
    r->hold = 0;
    r->pub = r->pos;
    mdj__wake(r, MDJ__R_DSEQ, MDJ__R_DWAIT, 0);
    if (--r->beats == 0) {
        int64_t now = mdj__mono_ns();
        r->beats = 64;
        if (now - r->last_beat >= 50000000) mdj__beat(r, now);
    }
}

/* end position of an n-byte record from pos (padding included) */
static uint64_t mdj__rec_end(const mdj_ring *r, uint32_t n, uint64_t *idx, uint64_t *rec, uint64_t *pad) {
    uint64_t size = (8 + MDJ__CAST(uint64_t, n) + 7) & ~MDJ__CAST(uint64_t, 7);
    *idx = r->pos & r->mask;
    *rec = *idx;
    *pad = 0;
    if (*idx + size > r->cap) {
        *pad = r->cap - *idx;
        *rec = 0;
    }
    return r->pos + *pad + size;
}

static int mdj__fits(mdj_ring *r, uint64_t end) { return mdj__load_head(r) && end + 8 - r->head_cache <= r->cap; }

static int mdj__try_claim(mdj_ring *r, uint32_t n, void **p) {
    uint64_t idx, rec, pad, end;
    if (r->failed) return r->err.code;
    if (r->closed) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "producer closed");
    if (n > r->max_pay)
        return mdj__err(&r->err, MDJ_ERR_TOO_LARGE, r->path, -1, "record of %u bytes, the ring's maximum is %llu", n,
                        MDJ__CAST(unsigned long long, r->max_pay));
    end = mdj__rec_end(r, n, &idx, &rec, &pad);
    if (end + 8 - r->head_cache > r->cap) {
        if (!mdj__load_head(r)) return r->err.code;
        if (end + 8 - r->head_cache > r->cap) return MDJ_ERR_FULL;
    }
    /* Keep the header word after this record zero. */
    __atomic_store_n(MDJ__CAST(uint64_t *, MDJ__CAST(void *, r->data + (end & r->mask))), 0, __ATOMIC_RELAXED);
    r->claimed = 1;
    r->claim_pad = idx;
    r->claim_rec = rec;
    r->claim_len = n;
    r->claim_end = end;
    *p = r->data + rec + 8;
    return MDJ_OK;
}

static int mdj__producer_check(mdj_ring *r, uint64_t end) {
    char why[160];
    uint32_t st;
    int rc;
    if (r->failed) return r->err.code;
    if ((rc = mdj__ring_size_ok(r)) != MDJ_OK) return rc;
    mdj__beat(r, mdj__mono_ns());
    st = mdj__side_state(r, MDJ__R_CONS);
    if (st == MDJ_RING_CLOSED || st == MDJ_RING_RETIRED) {
        if (!mdj__fits(r, end))
            return r->failed ? r->err.code
                             : mdj__err(&r->err, MDJ_ERR_PEER_CLOSED, r->path, -1, "consumer PID %u detached",
                                        mdj__side_pid(r, MDJ__R_CONS));
    } else if (st == MDJ_RING_ATTACHED) {
        if (!mdj__present(r, MDJ__R_CONS, why, sizeof why) && mdj__side_state(r, MDJ__R_CONS) == MDJ_RING_ATTACHED && !mdj__fits(r, end))
            return r->failed ? r->err.code : mdj__err(&r->err, MDJ_ERR_PEER_DEAD, r->path, -1, "consumer %s", why);
    }
    return r->failed ? r->err.code : MDJ_OK;
}

static int mdj__space_ready(mdj_ring *r, uint64_t end) { return mdj__fits(r, end); }

/* Idles until an n-byte record fits: MDJ_OK, MDJ_ERR_TIMEOUT, or an error. */
static int mdj__await_space(mdj_ring *r, uint32_t n, int64_t timeout_ns) {
    uint64_t idx, rec, pad, end;
    int64_t start = mdj__mono_ns(), deadline = timeout_ns >= 0 ? start + timeout_ns : INT64_MAX, next_check = start + 20000000;
    int64_t nap = 1000;
    unsigned i;
    int rc;
    mdj__flush(r); /* the consumer cannot free space for records it cannot see */
    end = mdj__rec_end(r, n, &idx, &rec, &pad);
    for (i = 1;; i++) {
        int64_t now;
        if (mdj__fits(r, end)) return MDJ_OK;
        if (r->failed) return r->err.code;
        now = mdj__mono_ns();
        if (r->wait == MDJ_WAIT_FUTEX && i > 200) {
            mdj__futex_sleep(r, MDJ__R_SSEQ, MDJ__R_SWAIT, mdj__space_ready, end, deadline - now);
            now = mdj__mono_ns();
            next_check = 0;
        } else if (r->wait == MDJ_WAIT_SPIN || r->wait == MDJ_WAIT_FUTEX || i <= 200) {
            mdj__cpu_relax();
        } else if (r->wait == MDJ_WAIT_YIELD || i <= 300) {
            sched_yield();
        } else {
            mdj__sleep_ns(nap);
            if (nap < 1000000) nap *= 2;
        }
        if (now >= next_check) {
            next_check = now + 20000000;
            if ((rc = mdj__producer_check(r, end)) != MDJ_OK) return rc;
        }
        if (now >= deadline) return mdj__fits(r, end) ? MDJ_OK : mdj__err(&r->err, MDJ_ERR_TIMEOUT, r->path, -1, "ring full");
    }
}

typedef struct {
    uint32_t n;
    void **p;
    int64_t timeout;
} mdj__claim_args;

static int mdj__claim_g(mdj_ring *r, void *arg) {
    mdj__claim_args *a = MDJ__CAST(mdj__claim_args *, arg);
    for (;;) {
        int rc = mdj__try_claim(r, a->n, a->p);
        if (rc != MDJ_ERR_FULL || a->timeout == 0) {
            if (rc == MDJ_ERR_FULL) mdj__flush(r);
            return rc;
        }
        if ((rc = mdj__await_space(r, a->n, a->timeout)) != MDJ_OK) return rc;
    }
}

int mdj_ring_claim(mdj_ring *r, uint32_t n, void **p, int64_t timeout_ns) {
    mdj__claim_args a;
    if (!r->producer) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "not a producer");
    a.n = n;
    a.p = p;
    a.timeout = timeout_ns;
    return mdj__ring_guarded(r, mdj__claim_g, &a);
}

static int mdj__commit(mdj_ring *r) {
    uint64_t w, first, first_word;
    if (!r->claimed) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "commit without claim");
    w = MDJ__CAST(uint64_t, r->claim_len) | (MDJ__CAST(uint64_t, MDJ__R_KIND_DATA) << 32);
    first = r->claim_rec;
    first_word = w;
    if (r->claim_pad != r->claim_rec) {
        /* The record at index 0 first; the padding header publishes both. */
        __atomic_store_n(MDJ__CAST(uint64_t *, MDJ__CAST(void *, r->data + r->claim_rec)), w, __ATOMIC_RELAXED);
        first = r->claim_pad;
        first_word = (r->cap - r->claim_pad - 8) | (MDJ__CAST(uint64_t, MDJ__R_KIND_PAD) << 32);
    }
    if (!r->hold) {
        r->hold = 1;
        r->hold_idx = first;
        r->hold_word = first_word;
    } else {
        /* Behind the held header: invisible until the flush stores that one. */
        __atomic_store_n(MDJ__CAST(uint64_t *, MDJ__CAST(void *, r->data + first)), first_word, __ATOMIC_RELAXED);
    }
    r->pos = r->claim_end;
    r->claimed = 0;
    return MDJ_OK;
}

static int mdj__commit_g(mdj_ring *r, void *arg) {
    int rc = mdj__commit(r);
    if (rc == MDJ_OK && arg) mdj__flush(r);
    return r->failed ? r->err.code : rc;
}

int mdj_ring_commit(mdj_ring *r, int flush) {
    if (!r->producer) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "not a producer");
    return mdj__ring_guarded(r, mdj__commit_g, flush ? r : NULL);
}

static int mdj__flush_g(mdj_ring *r, void *arg) {
    (void)arg;
    mdj__flush(r);
    return r->failed ? r->err.code : MDJ_OK;
}

int mdj_ring_flush(mdj_ring *r) {
    if (!r->producer) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "not a producer");
    return mdj__ring_guarded(r, mdj__flush_g, NULL);
}

typedef struct {
    const void *src;
    uint32_t n;
    int64_t timeout;
} mdj__write_args;

static int mdj__write_g(mdj_ring *r, void *arg) {
    mdj__write_args *a = MDJ__CAST(mdj__write_args *, arg);
    void *dst;
    mdj__claim_args c;
    int rc;
    c.n = a->n;
    c.p = &dst;
    c.timeout = a->timeout;
    if ((rc = mdj__claim_g(r, &c)) != MDJ_OK) return rc;
    if (a->n) memcpy(dst, a->src, a->n);
    return mdj__commit_g(r, r);
}

int mdj_ring_write(mdj_ring *r, const void *p, uint32_t n, int64_t timeout_ns) {
    mdj__write_args a;
    if (!r->producer) return mdj__err(&r->err, MDJ_ERR_INVALID, r->path, -1, "not a producer");
    a.src = p;
    a.n = n;
    a.timeout = timeout_ns;
    return mdj__ring_guarded(r, mdj__write_g, &a);
}

/* Verdict on a generation for a producer (§12 "Which file a process uses"):
 * 0 joinable, 1 live (err set: MDJ_ERR_BUSY), 2 leftover (why). */
static int mdj__producer_verdict(mdj_ring *r, void *arg) {
    char *why = MDJ__CAST(char *, arg), pw[160];
    uint32_t pp = mdj__side_pid(r, MDJ__R_PROD), ps = mdj__side_state(r, MDJ__R_PROD);
    uint32_t cp = mdj__side_pid(r, MDJ__R_CONS), cs = mdj__side_state(r, MDJ__R_CONS);
    if (pp == MDJ__R_SEALED || ps == MDJ_RING_RETIRED) return snprintf(why, 200, "producer side sealed"), 2;
    if (ps == MDJ_RING_CLOSED) return snprintf(why, 200, "finished generation (producer PID %u closed it)", pp), 2;
    if (ps == MDJ_RING_ATTACHED || pp != 0) {
        if (mdj__present(r, MDJ__R_PROD, pw, sizeof pw)) {
            mdj__err(&r->err, MDJ_ERR_BUSY, r->path, MDJ__R_PROD, "producer side held by %s", pw);
            return 1;
        }
        return snprintf(why, 200, "producer %s", pw), 2;
    }
    if (cp == 0 && cs == MDJ_RING_FREE) return snprintf(why, 200, "no side ever attached (no live peer)"), 2;
    if (cp == MDJ__R_SEALED || cs == MDJ_RING_RETIRED) return snprintf(why, 200, "consumer side sealed"), 2;
    if (cs == MDJ_RING_CLOSED) return snprintf(why, 200, "no producer ever attached and consumer PID %u left", cp), 2;
    if (mdj__present(r, MDJ__R_CONS, pw, sizeof pw)) return 0;
    return snprintf(why, 200, "no producer ever attached and consumer %s", pw), 2;
}

static int mdj__seal(mdj_ring *r, void *arg) {
    uint32_t sides[2] = {MDJ__R_CONS, MDJ__R_PROD};
    int i;
    (void)arg;
    for (i = 0; i < 2; i++) {
        uint32_t zero = 0;
        if (mdj__side_pid(r, sides[i]) != 0 || mdj__side_state(r, sides[i]) != MDJ_RING_FREE) continue;
        if (!__atomic_compare_exchange_n(mdj__r32(r, sides[i] + MDJ__S_PID), &zero, MDJ__R_SEALED, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return 0;
        __atomic_store_n(mdj__r32(r, sides[i] + MDJ__S_STATE), MDJ_RING_RETIRED, __ATOMIC_SEQ_CST);
    }
    return 1;
}

/* Builds a new generation under a temporary name with the producer side
 * claimed. t->path is the ring's path; *tmp receives the temporary name. */
static int mdj__create_temp(mdj_ring *t, const mdj_ring_options *o, char *tmp, size_t tmpcap, mdj_error *err) {
    uint64_t cap = o && o->capacity ? o->capacity : MDJ_RING_DEFAULT_CAPACITY, gen = 0;
    unsigned perm = o && o->perm ? (o->perm & 07777u) : 0600u;
    const char *slash = strrchr(t->path, '/');
    size_t dirlen = slash ? MDJ__CAST(size_t, slash - t->path) : 0;
    struct timespec now;
    struct stat st;
    uint8_t *h;
    int fd = -1, i, rc;
    void *m;
    if (cap < MDJ_RING_MIN_CAPACITY || cap > MDJ_RING_MAX_CAPACITY || (cap & (cap - 1)))
        return mdj__err(err, MDJ_ERR_INVALID, t->path, -1, "capacity %llu is not a power of two in [64,2^32]",
                        MDJ__CAST(unsigned long long, cap));
    clock_gettime(CLOCK_REALTIME, &now);
    for (i = 0; i < 10 && fd < 0; i++) {
        int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
            if (read(rfd, &gen, sizeof gen) != MDJ__CAST(ssize_t, sizeof gen)) gen = 0;
            close(rfd);
        }
        if (gen == 0) gen = MDJ__CAST(uint64_t, now.tv_nsec) ^ (MDJ__CAST(uint64_t, getpid()) << 40) ^ MDJ__CAST(uint64_t, i);
        if (gen == 0) gen = 1;
        snprintf(tmp, tmpcap, "%.*s%s.%s.tmp%u-%llu", MDJ__CAST(int, dirlen), t->path, slash ? "/" : "", slash ? slash + 1 : t->path,
                 MDJ__CAST(unsigned, getpid()), MDJ__CAST(unsigned long long, gen % 1000000000ull));
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
        if (fd < 0 && errno != EEXIST) return mdj__sys(err, tmp, "open");
    }
    if (fd < 0) return mdj__sys(err, tmp, "open");
    rc = fchmod(fd, perm) != 0 ? errno : posix_fallocate(fd, 0, MDJ__CAST(off_t, 4096 + cap));
    if (rc == EOPNOTSUPP || rc == EINVAL) rc = ftruncate(fd, MDJ__CAST(off_t, 4096 + cap)) == 0 ? 0 : errno;
    if (rc != 0) {
        errno = rc;
        rc = mdj__sys(err, tmp, "size the ring file");
        close(fd);
        unlink(tmp);
        return rc;
    }
    m = mmap(NULL, MDJ__CAST(size_t, 4096 + cap), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = mdj__sys(err, tmp, "mmap");
        close(fd);
        unlink(tmp);
        return rc;
    }
    h = MDJ__CAST(uint8_t *, m);
    memcpy(h, "MDJRING\0", 8);
    mdj__put64(h + 8, MDJ_RING_VERSION | (MDJ__CAST(uint64_t, MDJ_RING_HEADER_SIZE) << 32));
    mdj__put64(h + 16, cap);
    mdj__put64(h + 24, MDJ__CAST(uint64_t, MDJ__CAST(int64_t, now.tv_sec) * 1000000000 + now.tv_nsec));
    mdj__put64(h + 32, gen);
    {
        uint32_t crc;
        h[40] = h[41] = h[42] = h[43] = 0;
        crc = mdj_crc32c(h, 44);
        h[44] = MDJ__CAST(uint8_t, crc);
        h[45] = MDJ__CAST(uint8_t, crc >> 8);
        h[46] = MDJ__CAST(uint8_t, crc >> 16);
        h[47] = MDJ__CAST(uint8_t, crc >> 24);
    }
    fstat(fd, &st);
    t->fd = fd;
    t->map = h;
    t->map_len = MDJ__CAST(size_t, 4096 + cap);
    t->data = h + 4096;
    t->cap = cap;
    t->mask = cap - 1;
    t->gen = gen;
    t->max_pay = cap / 2 - 8;
    t->chunk = cap / 4;
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    if (mdj__claim(t, MDJ__R_PROD) != 1) {
        if (err) *err = t->err;
        mdj__ring_unmap(t);
        unlink(tmp);
        return t->err.code ? t->err.code : MDJ_ERR_IO;
    }
    return MDJ_OK;
}

/* Makes the temporary generation t visible at its path (§12 "Creating a
 * generation"): 1 done, 0 look again (path changed, or a generation to join
 * appeared), or a negative code. */
static int mdj__publish_temp(mdj_ring *t, const char *tmp, int replace, mdj_error *err) {
    mdj_ring *old;
    char why[200];
    int rc, v;
    if (link(tmp, t->path) == 0) {
        unlink(tmp);
        return 1;
    }
    if (errno != EEXIST) return mdj__sys(err, t->path, "link");
    old = mdj__ring_new(t->path, NULL);
    if (!old) return mdj__err(err, MDJ_ERR_NOMEM, t->path, -1, "out of memory");
    old->timeout = t->timeout;
    rc = mdj__ring_open_path(old, err);
    if (rc <= 0) {
        free(old);
        return rc;
    }
    if (flock(old->fd, LOCK_EX) != 0) {
        rc = mdj__sys(err, t->path, "flock");
        goto out;
    }
    if (!mdj__same_file(old)) {
        rc = 0;
        goto out;
    }
    v = mdj__ring_guarded(old, mdj__producer_verdict, why);
    if (v < 0 || v == 1) {
        if (err) *err = old->err;
        rc = old->err.code;
        goto out;
    }
    if (v == 0) { /* a consumer waits for a producer: join it instead */
        rc = 0;
        goto out;
    }
    if (!replace) {
        rc = mdj__err(err, MDJ_ERR_LEFTOVER, t->path, -1, "leftover ring generation %016llx: %s (not replaced)",
                      MDJ__CAST(unsigned long long, old->gen), why);
        goto out;
    }
    rc = mdj__ring_guarded(old, mdj__seal, NULL);
    if (rc < 0) {
        if (err) *err = old->err;
        goto out;
    }
    if (rc == 0) goto out; /* a side was claimed meanwhile: look again */
    if (rename(tmp, t->path) != 0) {
        rc = mdj__sys(err, t->path, "rename");
        goto out;
    }
    rc = 1;
out:
    if (old->fd >= 0) flock(old->fd, LOCK_UN);
    mdj__ring_unmap(old);
    free(old);
    return rc;
}

int mdj_ring_producer_open(mdj_ring **out, const char *path, const mdj_ring_options *o, mdj_error *err) {
    int64_t deadline;
    mdj__err_clear(err);
    *out = NULL;
    if (!path || !*path) return mdj__err(err, MDJ_ERR_INVALID, "", -1, "no path");
    mdj__self_init();
    deadline = mdj__mono_ns() + 5000000000LL;
    for (;;) {
        mdj_ring *r;
        char why[200], tmp[MDJ_PATH_LEN + 64];
        int rc;
        if (mdj__mono_ns() > deadline)
            return mdj__err(err, MDJ_ERR_TIMEOUT, path, -1, "the path kept changing under the producer");
        r = mdj__ring_new(path, o);
        if (!r) return mdj__err(err, MDJ_ERR_NOMEM, path, -1, "out of memory");
        r->producer = 1;
        r->keep = o && o->keep;
        r->linger = o && o->linger_ns ? o->linger_ns : 30000000000LL;
        rc = mdj__ring_open_path(r, err);
        if (rc == 1) {
            rc = mdj__ring_guarded(r, mdj__ring_recheck, NULL);
            if (rc == MDJ_OK) rc = mdj__ring_guarded(r, mdj__producer_verdict, why);
            if (rc == 0) { /* joinable */
                uint32_t side = MDJ__R_PROD;
                rc = mdj__ring_guarded(r, mdj__claim_guarded, &side);
                if (rc == 1) {
                    if (o && o->beat_thread) mdj__beat_start(r);
                    *out = r;
                    return MDJ_OK;
                }
                mdj__ring_unmap(r);
                if (rc < 0 || (r->err.code != MDJ_ERR_BUSY && r->err.code != MDJ_ERR_LEFTOVER)) {
                    if (err) *err = r->err;
                    rc = r->err.code;
                    free(r);
                    return rc;
                }
                free(r);
                continue; /* taken meanwhile: look again */
            }
            if (rc == 1 || rc < 0) {
                if (err && r->err.code) *err = r->err;
                rc = r->err.code;
                mdj__ring_unmap(r);
                free(r);
                return rc;
            }
            mdj__ring_unmap(r);
            if (!(o && o->replace)) {
                rc = mdj__err(err, MDJ_ERR_LEFTOVER, path, -1, "leftover ring generation %016llx: %s (set replace to replace it)",
                              MDJ__CAST(unsigned long long, r->gen), why);
                free(r);
                return rc;
            }
        } else if (rc < 0) {
            free(r);
            return rc;
        }
        /* A new generation with the producer attached, then at path. */
        if ((rc = mdj__create_temp(r, o, tmp, sizeof tmp, err)) != MDJ_OK) {
            free(r);
            return rc;
        }
        rc = mdj__publish_temp(r, tmp, o && o->replace, err);
        if (rc == 1) {
            r->created = 1;
            r->lim = r->cap;
            if (o && o->beat_thread) mdj__beat_start(r);
            *out = r;
            return MDJ_OK;
        }
        mdj__ring_unmap(r);
        unlink(tmp);
        free(r);
        if (rc < 0) return rc;
    }
}

/* The beat thread (mdj_ring_options.beat_thread): mdj_ring_heartbeat every
 * 100 ms until close; it stops on its own if the file was truncated. */
static void *mdj__beat_main(void *arg) {
    mdj_ring *r = MDJ__CAST(mdj_ring *, arg);
    pthread_mutex_lock(&r->beat_mu);
    while (!r->beat_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->beat_cv, &r->beat_mu, &ts);
        if (!r->beat_stop && mdj_ring_heartbeat(r) != MDJ_OK) break;
    }
    pthread_mutex_unlock(&r->beat_mu);
    return NULL;
}

static void mdj__beat_start(mdj_ring *r) {
    pthread_mutex_init(&r->beat_mu, NULL);
    pthread_cond_init(&r->beat_cv, NULL);
    r->beater = pthread_create(&r->beat_tid, NULL, mdj__beat_main, r) == 0;
    if (!r->beater) {
        pthread_cond_destroy(&r->beat_cv);
        pthread_mutex_destroy(&r->beat_mu);
    }
}

static void mdj__beat_stop(mdj_ring *r) {
    if (!r->beater) return;
    pthread_mutex_lock(&r->beat_mu);
    r->beat_stop = 1;
    pthread_cond_signal(&r->beat_cv);
    pthread_mutex_unlock(&r->beat_mu);
    pthread_join(r->beat_tid, NULL);
    pthread_cond_destroy(&r->beat_cv);
    pthread_mutex_destroy(&r->beat_mu);
    r->beater = 0;
}

static int mdj__producer_detach(mdj_ring *r, void *arg) {
    (void)arg;
    r->claimed = 0;
    mdj__flush(r);
    __atomic_store_n(mdj__r64(r, MDJ__R_TAIL), r->pub, __ATOMIC_SEQ_CST);
    __atomic_store_n(mdj__r32(r, r->me + MDJ__S_STATE), MDJ_RING_CLOSED, __ATOMIC_SEQ_CST);
    mdj__wake(r, MDJ__R_DSEQ, MDJ__R_DWAIT, 1); /* a sleeping consumer sees the close at once */
    return MDJ_OK;
}

/* The producer's linger (§12 "Producer linger"). */
static int mdj__linger(mdj_ring *r, void *arg) {
    int64_t start = mdj__mono_ns(), deadline = start + r->linger, next = 0, nap = 100000;
    uint64_t tail = r->pub;
    char why[160];
    (void)arg;
    for (;;) {
        uint64_t h = __atomic_load_n(mdj__r64(r, MDJ__R_HEAD), __ATOMIC_ACQUIRE);
        uint32_t st = mdj__side_state(r, MDJ__R_CONS);
        int64_t now;
        int rc;
        if (h == tail || st == MDJ_RING_CLOSED) return MDJ_OK;
        if (st == MDJ_RING_RETIRED)
            return mdj__err(&r->err, MDJ_ERR_UNDELIVERED, r->path, -1,
                            "%llu bytes published, the ring file was replaced before a consumer attached", MDJ__CAST(unsigned long long, tail));
        if ((rc = mdj__ring_size_ok(r)) != MDJ_OK) return rc;
        now = mdj__mono_ns();
        if (now - r->last_beat >= 50000000) mdj__beat(r, now);
        if (now >= next) {
            next = now + 20000000;
            if (st == MDJ_RING_ATTACHED || mdj__side_pid(r, MDJ__R_CONS) != 0) {
                if (!mdj__present(r, MDJ__R_CONS, why, sizeof why)) {
                    h = __atomic_load_n(mdj__r64(r, MDJ__R_HEAD), __ATOMIC_ACQUIRE);
                    if (h == tail || mdj__side_state(r, MDJ__R_CONS) == MDJ_RING_CLOSED) return MDJ_OK;
                    return mdj__err(&r->err, MDJ_ERR_PEER_DEAD, r->path, -1, "consumer %s with %llu bytes unread", why,
                                    MDJ__CAST(unsigned long long, tail - h));
                }
            } else if (!mdj__same_file(r)) {
                return mdj__err(&r->err, MDJ_ERR_UNDELIVERED, r->path, -1,
                                "%llu bytes published, the ring file was replaced before a consumer attached",
                                MDJ__CAST(unsigned long long, tail));
            }
        }
        if (now >= deadline) {
            if (st == MDJ_RING_FREE)
                return mdj__err(&r->err, MDJ_ERR_UNDELIVERED, r->path, -1, "%llu bytes published, no consumer attached within %lld ms",
                                MDJ__CAST(unsigned long long, tail), MDJ__CAST(long long, r->linger / 1000000));
            return mdj__err(&r->err, MDJ_ERR_UNDELIVERED, r->path, -1, "the consumer still had %llu bytes unread after %lld ms",
                            MDJ__CAST(unsigned long long, tail - h), MDJ__CAST(long long, r->linger / 1000000));
        }
        mdj__sleep_ns(nap);
        if (nap < 5000000) nap *= 2;
    }
}

static int mdj__stop_beating(mdj_ring *r, void *arg) {
    (void)arg;
    __atomic_store_n(mdj__r64(r, r->me + MDJ__S_BEAT), 0, __ATOMIC_SEQ_CST);
    return MDJ_OK;
}

int mdj_ring_close(mdj_ring *r, mdj_error *err) {
    int rc = MDJ_OK;
    mdj__err_clear(err);
    if (!r) return MDJ_OK;
    if (r->producer) {
        int failed = r->failed;
        mdj__ring_guarded(r, mdj__producer_detach, NULL);
        if (failed || r->failed) {
            rc = r->err.code;
        } else if (r->created && r->linger >= 0) {
            rc = mdj__ring_guarded(r, mdj__linger, NULL);
        }
        mdj__beat_stop(r);
        mdj__ring_guarded(r, mdj__stop_beating, NULL);
        if (r->created && !r->keep && r->fd >= 0 && flock(r->fd, LOCK_EX) == 0) {
            if (mdj__same_file(r)) unlink(r->path);
            flock(r->fd, LOCK_UN);
        }
    } else {
        mdj__beat_stop(r);
        mdj__ring_guarded(r, mdj__consumer_detach, NULL);
        if (r->failed && r->err.code != MDJ_ERR_EOF) rc = r->err.code;
    }
    if (rc != MDJ_OK && err) *err = r->err;
    mdj__ring_unmap(r);
    free(r);
    return rc;
}

/* Safe beside the thread using r: it reads only fd, map, cap and me (set at
 * open) and writes only the heartbeat word, under a guard of its own. */
int mdj_ring_heartbeat(mdj_ring *r) {
    struct stat st;
    mdj__guard g;
    if (fstat(r->fd, &st) == 0 && st.st_size < MDJ__CAST(off_t, 4096 + r->cap)) return MDJ_ERR_TRUNCATED;
    if (r->guard) {
        g.prev = mdj__guard_top;
        g.fault_addr = NULL;
        if (sigsetjmp(g.env, 0) != 0) return MDJ_ERR_TRUNCATED;
        mdj__guard_top = &g;
    }
    __atomic_store_n(mdj__r64(r, r->me + MDJ__S_BEAT), MDJ__CAST(uint64_t, mdj__mono_ns()), __ATOMIC_SEQ_CST);
    if (r->guard) mdj__guard_top = g.prev;
    return MDJ_OK;
}

const mdj_error *mdj_ring_error(const mdj_ring *r) { return &r->err; }
uint64_t mdj_ring_capacity(const mdj_ring *r) { return r->cap; }
uint32_t mdj_ring_max_payload(const mdj_ring *r) { return MDJ__CAST(uint32_t, r->max_pay); }
uint64_t mdj_ring_generation(const mdj_ring *r) { return r->gen; }
uint64_t mdj_ring_position(const mdj_ring *r) { return r->producer ? r->pub : r->h; }
int mdj_ring_created(const mdj_ring *r) { return r->created; }

#ifdef __cplusplus
}
#endif
#endif /* MDJOURNAL_IMPLEMENTED */
#endif /* MDJOURNAL_IMPLEMENTATION */
