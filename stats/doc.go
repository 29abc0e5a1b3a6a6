// Package stats publishes a process's counters and latency histograms in a
// small shared-memory file that other processes read without locks or
// system calls — the monitoring link of a pipeline (Aeron's counters file,
// read by AeronStat, is the model). `journalctl top` shows every stats file
// of a directory live; `journalctl serve --metrics` exports them to
// Prometheus.
//
// One process owns a file (Create takes STAGE.stats.lock, mode 0600, so no
// other user can hold it): it registers counters and histograms by label
// once, then updates them with single atomic stores and adds — nothing on
// the hot path allocates, locks or calls the kernel. Readers (Open) map the
// file read-only, load every word atomically and survive the file being
// truncated under them (an error, never a SIGBUS).
//
// Layout (format.md §15; little-endian; version 1): a 4096-byte header —
// magic "MDJSTATS", version u32, pid u32, created and heartbeat (Unix ns),
// counter and histogram counts, the stage name — then MaxCounters 64-byte
// counter slots (label [48]byte, value u64 at 48), then MaxHistograms
// histograms of 64 + 8*Buckets bytes (label [48]byte, count u64 at 48, max
// u64 at 56, then Buckets u64 bucket counts). A histogram's buckets are
// log-linear with 16 sub-buckets per power of two (values below 32 exact,
// every bucket within 6.25% of its values), so a percentile read from them
// is at most 6.25% above the true value.
package stats
