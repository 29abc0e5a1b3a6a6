/*
 * ringnoalloc - the ring's and the snapshot reader's hot paths allocate
 * nothing. malloc, calloc and realloc are interposed (as in noalloc.c), so
 * every allocation in the process is counted. One process is both sides of
 * a ring (the producer creates it, the consumer attaches): after a warm-up,
 * 1 000 000 records of varying sizes are claimed, committed (single and
 * staged), read one by one and in batches, the ring is found empty and
 * waited on (futex, with its idle checks), and a snapshot file's books are
 * copied and looked up: no allocation.
 *
 * usage: ringnoalloc RING_PATH SNAP_PATH ID SYMBOL
 *        exit 0 and "ok: N records, 0 allocations"
 */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static uint64_t sum;
static void add(void *ctx, const void *p, uint32_t n) {
    (void)ctx;
    sum += n + ((const uint8_t *)p)[0];
}

static int cycle(mdj_ring *prod, mdj_ring *cons, uint64_t i) {
    uint32_t n = 1 + (uint32_t)((i * 2654435761u) % 300), len;
    const void *p;
    void *dst;
    if (mdj_ring_claim(prod, n, &dst, -1) != MDJ_OK) return -1;
    memset(dst, (int)i, n);
    if (mdj_ring_commit(prod, (i & 3) == 3) != MDJ_OK) return -1;
    if ((i & 3) != 3) return 0;
    if (i & 4) return mdj_ring_read_batch(cons, 8, add, NULL, 0) == 4 ? 0 : -1;
    for (int k = 0; k < 4; k++) {
        if (mdj_ring_read(cons, &p, &len, 0) != 1) return -1;
        sum += len;
    }
    return 0;
}

int main(int argc, char **argv) {
    mdj_ring_options o;
    mdj_ring *prod, *cons;
    mdj_snap *s;
    mdj_error err;
    static mdj_snap_book b;
    const void *p;
    uint32_t len, id;
    long before;
    uint64_t i;
    if (argc != 5) return 2;
    memset(&o, 0, sizeof o);
    o.wait = MDJ_WAIT_FUTEX;
    o.capacity = 1 << 16;
    o.linger_ns = -1;
    if (mdj_ring_producer_open(&prod, argv[1], &o, &err) || mdj_ring_consumer_open(&cons, argv[1], &o, &err) ||
        mdj_snap_open(&s, argv[2], NULL, &err)) {
        fprintf(stderr, "open: %s: %s\n", err.file, err.reason);
        return 1;
    }
    for (i = 0; i < 1000; i++)
        if (cycle(prod, cons, i)) return 1;
    before = allocs;
    if (before == 0) {
        fprintf(stderr, "FAIL: malloc interposition saw nothing\n");
        return 1;
    }
    for (; i < 1000000; i++) {
        if (cycle(prod, cons, i)) {
            fprintf(stderr, "record %lu: %s\n", (unsigned long)i, mdj_ring_error(cons)->reason);
            return 1;
        }
    }
    /* empty: one wait of 30 ms (spin, futex sleep, idle checks), then nothing */
    if (mdj_ring_read(cons, &p, &len, 30000000) != 0) return 1;
    if (mdj_ring_heartbeat(cons) != MDJ_OK || mdj_ring_heartbeat(prod) != MDJ_OK) return 1;
    for (i = 0; i < 10000; i++) {
        if (mdj_snap_read(s, (uint32_t)strtoul(argv[3], NULL, 10), &b, &err) != MDJ_OK) return 1;
        if (mdj_snap_lookup(s, argv[4], &id, &err) != 1) return 1;
    }
    if (allocs != before) {
        fprintf(stderr, "FAIL: %ld allocations\n", allocs - before);
        return 1;
    }
    printf("ok: 1000000 records, 10000 snapshot reads and lookups, 0 allocations\n");
    mdj_snap_close(s);
    mdj_ring_close(prod, NULL);
    mdj_ring_close(cons, NULL);
    return sum == 0;
}
