/* ring - a C producer or consumer of a ring file (format.md §12), driven by
 * c_test.go (ring_test.go) against the Go package ring.
 *
 *   ring [opts] consume PATH N SEED       read until the end of the stream,
 *                                         checking every record; expects N
 *   ring [opts] produce PATH N SEED       write N records, then close
 *   ring [opts] open PATH                 consumer open only: print the error
 *   ring [opts] lat PATH N                consume N 16-byte timestamped records
 *                                         (payload: CLOCK_MONOTONIC ns at
 *                                         send); print the median latency
 *
 * opts: -wait spin|yield|backoff|futex   -cap BYTES   -batch   -maxlen BYTES
 *       -linger MS   -replace   -attach MS   -beatthread   -pause K (produce: after K
 *       records print "paused" and wait for a line on stdin)
 *
 * Record i (the generator is mirrored in ring_test.go): its length comes
 * from splitmix64(seed ^ i); bytes [0,4) hold the CRC-32C of bytes [4,len),
 * [4,12) hold i, the rest is pseudo-random. The consumer checks the CRC,
 * the index (order, nothing lost or repeated) and the length, and prints
 * "records=N bytes=B digest=D" (D: CRC-32C chained over the records' CRCs)
 * at the end of the stream. Any failure prints "error CODE KIND OFFSET FILE:
 * REASON" (or "mismatch ...") and exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include "mdjournal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint32_t maxlen = 4096;

/* length of record i: mostly 12..267 bytes, one in 64 up to maxlen */
static uint32_t rec_len(uint64_t seed, uint64_t i) {
    uint64_t r = splitmix64(seed ^ (i * 0x100000001B3ull));
    if ((r >> 56) < 4) return 12 + (uint32_t)(r % (maxlen - 12 + 1));
    return 12 + (uint32_t)(r % 256);
}

static void fill(uint8_t *p, uint32_t len, uint64_t seed, uint64_t i) {
    uint64_t x = splitmix64(seed + i), j;
    uint32_t crc;
    memcpy(p + 4, &i, 8);
    for (j = 12; j + 8 <= len; j += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + j, &x, 8);
    }
    for (; j < len; j++) p[j] = (uint8_t)(x >> (8 * (j & 7)));
    crc = mdj_crc32c(p + 4, len - 4);
    memcpy(p, &crc, 4);
}

static void fail(const mdj_error *e) {
    printf("error %d %s %lld %s: %s\n", e->code, mdj_kind(e->code), (long long)e->offset, e->file, e->reason);
    fflush(stdout);
    exit(1);
}

typedef struct {
    uint64_t seed, next, bytes;
    uint32_t digest;
} check_state;

static void check(void *ctx, const void *pv, uint32_t len) {
    check_state *c = (check_state *)ctx;
    const uint8_t *p = (const uint8_t *)pv;
    uint32_t crc, want = rec_len(c->seed, c->next);
    uint64_t idx;
    if (len != want || len < 12) {
        printf("mismatch record %llu: length %u, want %u\n", (unsigned long long)c->next, len, want);
        exit(1);
    }
    memcpy(&crc, p, 4);
    memcpy(&idx, p + 4, 8);
    if (idx != c->next) {
        printf("mismatch record %llu: carries index %llu\n", (unsigned long long)c->next, (unsigned long long)idx);
        exit(1);
    }
    if (mdj_crc32c(p + 4, len - 4) != crc) {
        printf("mismatch record %llu: CRC-32C %08x, payload has %08x\n", (unsigned long long)c->next, crc,
               mdj_crc32c(p + 4, len - 4));
        exit(1);
    }
    c->digest = mdj_crc32c_update(c->digest, p, 4);
    c->bytes += len;
    c->next++;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    mdj_ring_options o;
    mdj_ring *r;
    mdj_error e;
    int a = 1, batch = 0;
    long pause_at = -1;
    memset(&o, 0, sizeof o);
    o.wait = MDJ_WAIT_FUTEX;
    while (a < argc && argv[a][0] == '-') {
        if (strcmp(argv[a], "-wait") == 0 && a + 1 < argc) {
            const char *w = argv[++a];
            o.wait = strcmp(w, "spin") == 0 ? MDJ_WAIT_SPIN : strcmp(w, "yield") == 0 ? MDJ_WAIT_YIELD
                   : strcmp(w, "backoff") == 0 ? MDJ_WAIT_BACKOFF : MDJ_WAIT_FUTEX;
        } else if (strcmp(argv[a], "-cap") == 0 && a + 1 < argc) {
            o.capacity = strtoull(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "-maxlen") == 0 && a + 1 < argc) {
            maxlen = (uint32_t)strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "-linger") == 0 && a + 1 < argc) {
            o.linger_ns = strtoll(argv[++a], NULL, 10) * 1000000;
        } else if (strcmp(argv[a], "-attach") == 0 && a + 1 < argc) {
            o.attach_timeout_ns = strtoll(argv[++a], NULL, 10) * 1000000;
        } else if (strcmp(argv[a], "-pause") == 0 && a + 1 < argc) {
            pause_at = strtol(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "-replace") == 0) {
            o.replace = 1;
        } else if (strcmp(argv[a], "-beatthread") == 0) {
            o.beat_thread = 1;
        } else if (strcmp(argv[a], "-batch") == 0) {
            batch = 1;
        } else {
            return 2;
        }
        a++;
    }
    if (argc < a + 2) {
        fprintf(stderr, "usage: ring [opts] consume|produce|open|lat PATH ...\n");
        return 2;
    }
    if (strcmp(argv[a], "open") == 0) {
        if (mdj_ring_consumer_open(&r, argv[a + 1], &o, &e) != MDJ_OK) fail(&e);
        printf("attached capacity=%llu\n", (unsigned long long)mdj_ring_capacity(r));
        mdj_ring_close(r, NULL);
        return 0;
    }
    if (strcmp(argv[a], "consume") == 0 && argc >= a + 4) {
        check_state c;
        uint64_t n = strtoull(argv[a + 2], NULL, 10);
        int rc;
        memset(&c, 0, sizeof c);
        c.seed = strtoull(argv[a + 3], NULL, 10);
        if (mdj_ring_consumer_open(&r, argv[a + 1], &o, &e) != MDJ_OK) fail(&e);
        printf("attached\n");
        fflush(stdout);
        for (;;) {
            if (batch) {
                long k = mdj_ring_read_batch(r, 256, check, &c, -1);
                if (k > 0) continue;
                rc = (int)k;
            } else {
                const void *p;
                uint32_t len;
                rc = mdj_ring_read(r, &p, &len, -1);
                if (rc == 1) {
                    check(&c, p, len);
                    continue;
                }
            }
            break;
        }
        if (rc != MDJ_ERR_EOF) {
            printf("records=%llu\n", (unsigned long long)c.next);
            fail(mdj_ring_error(r));
        }
        printf("records=%llu bytes=%llu digest=%08x\n", (unsigned long long)c.next, (unsigned long long)c.bytes, c.digest);
        if (c.next != n) {
            printf("mismatch: %llu records, want %llu\n", (unsigned long long)c.next, (unsigned long long)n);
            return 1;
        }
        if (mdj_ring_close(r, &e) != MDJ_OK) fail(&e);
        return 0;
    }
    if (strcmp(argv[a], "produce") == 0 && argc >= a + 4) {
        uint64_t n = strtoull(argv[a + 2], NULL, 10), seed = strtoull(argv[a + 3], NULL, 10), i;
        if (mdj_ring_producer_open(&r, argv[a + 1], &o, &e) != MDJ_OK) fail(&e);
        printf("attached created=%d\n", mdj_ring_created(r));
        fflush(stdout);
        for (i = 0; i < n; i++) {
            uint32_t len = rec_len(seed, i);
            void *p;
            if ((long)i == pause_at) {
                char line[16];
                if (mdj_ring_flush(r) != MDJ_OK) fail(mdj_ring_error(r));
                printf("paused\n");
                fflush(stdout);
                if (!fgets(line, sizeof line, stdin)) return 2;
            }
            if (mdj_ring_claim(r, len, &p, -1) != MDJ_OK) fail(mdj_ring_error(r));
            fill((uint8_t *)p, len, seed, i);
            /* -batch: publish eight records per store */
            if (mdj_ring_commit(r, !batch || (i & 7) == 7) != MDJ_OK) fail(mdj_ring_error(r));
        }
        if (mdj_ring_close(r, &e) != MDJ_OK) fail(&e);
        printf("closed records=%llu\n", (unsigned long long)n);
        return 0;
    }
    if (strcmp(argv[a], "lat") == 0 && argc >= a + 3) {
        uint64_t n = strtoull(argv[a + 2], NULL, 10), i;
        int64_t *d = (int64_t *)malloc(n * sizeof *d);
        if (!d) return 2;
        if (mdj_ring_consumer_open(&r, argv[a + 1], &o, &e) != MDJ_OK) fail(&e);
        printf("attached\n");
        fflush(stdout);
        for (i = 0; i < n; i++) {
            const void *p;
            uint32_t len;
            int64_t sent;
            int rc = mdj_ring_read(r, &p, &len, -1);
            if (rc != 1 || len < 8) fail(mdj_ring_error(r));
            memcpy(&sent, p, 8);
            d[i] = mono_ns() - sent;
        }
        qsort(d, n, sizeof *d, cmp64);
        printf("p50=%lld p99=%lld\n", (long long)d[n / 2], (long long)d[n * 99 / 100]);
        mdj_ring_close(r, NULL);
        free(d);
        return 0;
    }
    return 2;
}
