/*
 * bench - measurements for the Go benchmarks in c_test.go (which run it and
 * report its numbers next to a baseline measured in the same run). Prints
 * one line: "<units> <nanoseconds>".
 *
 *   bench replay DIR PASSES  every frame of DIR through mdj_reader_try_next,
 *                            PASSES times (a fresh reader each pass);
 *                            units = frames
 *   bench walk DIR PASSES    the raw baseline: the same segments mapped and
 *                            prefaulted, each commit word loaded (acquire)
 *                            and each frame copied out, without any check;
 *                            units = frames
 *   bench crc SIZE N hw|sw   CRC-32C of a SIZE-byte buffer N times with the
 *                            SSE4.2 instruction or the table; units = bytes
 */
#define _GNU_SOURCE 1 /* sigaction, truncate, mmap flags: a Linux program */
#include "mdjournal.h" /* the implementation is in impl.c */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int replay(const char *dir, long passes) {
    uint64_t frames = 0, sum = 0;
    int64_t t0 = now_ns();
    long p;
    for (p = 0; p < passes; p++) {
        mdj_reader *r;
        mdj_error err;
        mdj_frame f;
        int rc;
        if (mdj_reader_open(&r, dir, NULL, &err)) {
            fprintf(stderr, "bench: %s: %s\n", err.file, err.reason);
            return 1;
        }
        while ((rc = mdj_reader_try_next(r, &f)) == 1) {
            frames++;
            sum += f.seq;
        }
        if (rc < 0) {
            fprintf(stderr, "bench: %s\n", mdj_reader_error(r)->reason);
            return 1;
        }
        mdj_reader_close(r);
    }
    printf("%" PRIu64 " %" PRId64 "\n", frames, now_ns() - t0);
    return sum == 0;
}

static int walk(const char *dir, long passes) {
    mdj_segment_info *segs;
    size_t n, i;
    mdj_error err;
    uint64_t frames = 0, sum = 0;
    static uint8_t buf[MDJ_MAX_FRAME_SIZE];
    int64_t t0;
    long p;
    if (mdj_list_segments(dir, &segs, &n, &err)) {
        fprintf(stderr, "bench: %s\n", err.reason);
        return 1;
    }
    t0 = now_ns();
    for (p = 0; p < passes; p++) {
        for (i = 0; i < n; i++) {
            char path[1200];
            int fd;
            uint8_t *m;
            uint64_t off = 4096;
            if (segs[i].state != MDJ_SEG_ACTIVE && segs[i].state != MDJ_SEG_SEALED) continue;
            snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, segs[i].number);
            fd = open(path, O_RDONLY);
            m = (uint8_t *)mmap(NULL, segs[i].capacity, PROT_READ, MAP_SHARED, fd, 0);
            close(fd);
            if (m == MAP_FAILED) return 1;
            madvise(m, segs[i].capacity, MADV_POPULATE_READ); /* as the reader prefaults */
            for (;;) {
                uint64_t w = __atomic_load_n((const uint64_t *)(const void *)(m + off), __ATOMIC_ACQUIRE);
                uint32_t size = (uint32_t)(w >> 32);
                if (w == 0 || size < 32) break;
                memcpy(buf, m + off, size);
                if (buf[24] == MDJ_TYPE_SEGMENT_END) break;
                sum += buf[8];
                frames++;
                off += (size + 7) & ~7u;
            }
            munmap(m, segs[i].capacity);
        }
    }
    printf("%" PRIu64 " %" PRId64 "\n", frames, now_ns() - t0);
    free(segs);
    return sum == 0 && frames != 0;
}

static int crc(long size, long n, int sw) {
    uint8_t *b = (uint8_t *)malloc((size_t)size);
    uint32_t c = 0;
    int64_t t0;
    long i;
    for (i = 0; i < size; i++) b[i] = (uint8_t)(i * 7);
    mdj_crc32c_force_software(sw);
    if (!sw && !mdj_crc32c_hardware()) {
        fprintf(stderr, "bench: no SSE4.2\n");
        return 1;
    }
    t0 = now_ns();
    for (i = 0; i < n; i++) c ^= mdj_crc32c(b + (i & 7), (size_t)size - 8);
    printf("%ld %" PRId64 "\n", (size - 8) * n, now_ns() - t0);
    free(b);
    return c == 0x12345678u;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "replay")) return replay(argv[2], atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "walk")) return walk(argv[2], atol(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "crc")) return crc(atol(argv[2]), atol(argv[3]), !strcmp(argv[4], "sw"));
    fprintf(stderr, "usage: bench replay|walk DIR PASSES | bench crc SIZE N hw|sw\n");
    return 2;
}
