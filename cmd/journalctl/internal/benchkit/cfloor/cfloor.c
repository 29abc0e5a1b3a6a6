/* cfloor: the C raw floor of journalctl bench ipc. Two processes (fork),
 * each pinned to its CPU, ping-pong through a MAP_SHARED page exactly as
 * the Go "raw" transport does: one 64-byte line per direction, the sender
 * stores the payload words then the sequence word (release), the receiver
 * spins on the sequence word (acquire). One-way latency = RTT/2, measured
 * with CLOCK_MONOTONIC around each ping. Prints one line per sample count:
 *   samples N
 * then the RTT/2 of every measured ping in nanoseconds, one per line, so
 * the Go side computes percentiles with the same histogram as every other
 * row. Usage: cfloor SIZE WARM COUNT GAP_NS CPU_PARENT CPU_CHILD
 * (CPU -1: not pinned). Exit 1 with a message on any failure. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct line {
    uint64_t seq;
    uint64_t words[7]; /* payload: up to 56 bytes travel in the line itself */
} __attribute__((aligned(64)));

struct shared {
    struct line p2c;
    char pad1[64];
    struct line c2p;
    char pad2[64];
    uint8_t data[2][8192]; /* larger payloads: copied here before the seq store */
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) {
        perror("cfloor: sched_setaffinity");
        exit(1);
    }
}

static void send_msg(struct line *l, uint8_t *data, const uint8_t *msg, size_t size, uint64_t seq) {
    if (size <= sizeof l->words) memcpy(l->words, msg, size);
    else memcpy(data, msg, size);
    __atomic_store_n(&l->seq, seq, __ATOMIC_RELEASE);
}

static void recv_msg(struct line *l, uint8_t *data, uint8_t *msg, size_t size, uint64_t seq) {
    while (__atomic_load_n(&l->seq, __ATOMIC_ACQUIRE) != seq) __builtin_ia32_pause();
    if (size <= sizeof l->words) memcpy(msg, l->words, size);
    else memcpy(msg, data, size);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: cfloor SIZE WARM COUNT GAP_NS CPU_PARENT CPU_CHILD\n");
        return 2;
    }
    size_t size = (size_t)strtoul(argv[1], 0, 10);
    long warm = strtol(argv[2], 0, 10), count = strtol(argv[3], 0, 10);
    uint64_t gap = (uint64_t)strtoull(argv[4], 0, 10);
    int cpu_p = atoi(argv[5]), cpu_c = atoi(argv[6]);
    if (size < 16 || size > 8192 || warm < 0 || count < 1) {
        fprintf(stderr, "cfloor: bad arguments\n");
        return 2;
    }
    struct shared *sh = mmap(0, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("cfloor: mmap");
        return 1;
    }
    memset(sh, 0, sizeof *sh);
    uint64_t *out = malloc((size_t)count * sizeof *out);
    uint8_t *msg = calloc(1, size);
    if (!out || !msg) {
        fprintf(stderr, "cfloor: out of memory\n");
        return 1;
    }
    long total = warm + count;
    pid_t pid = fork();
    if (pid < 0) {
        perror("cfloor: fork");
        return 1;
    }
    if (pid == 0) { /* child: echo every ping */
        pin(cpu_c);
        for (long i = 1; i <= total; i++) {
            recv_msg(&sh->p2c, sh->data[0], msg, size, (uint64_t)i);
            send_msg(&sh->c2p, sh->data[1], msg, size, (uint64_t)i);
        }
        _exit(0);
    }
    pin(cpu_p);
    for (long i = 1; i <= total; i++) {
        uint64_t t0 = now_ns();
        memcpy(msg, &t0, sizeof t0);
        send_msg(&sh->p2c, sh->data[0], msg, size, (uint64_t)i);
        recv_msg(&sh->c2p, sh->data[1], msg, size, (uint64_t)i);
        uint64_t t1 = now_ns();
        if (i > warm) out[i - warm - 1] = (t1 - t0) / 2;
        if (gap) {
            uint64_t until = t1 + gap;
            while (now_ns() < until) __builtin_ia32_pause();
        }
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "cfloor: the child process failed\n");
        return 1;
    }
    printf("samples %ld\n", count);
    for (long i = 0; i < count; i++) printf("%llu\n", (unsigned long long)out[i]);
    return 0;
}
