package writer

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is a durability policy: what a published frame survives, and what
// making it so costs the appender. See the durability table in README.md.
type Mode uint8

const (
	// None leaves frames in the page cache: they survive any process crash
	// (the kernel owns the pages) but not a kernel crash or power loss until
	// the kernel writes them back on its own (typically within 30 s).
	None Mode = iota
	// Async issues msync(MS_ASYNC) over each published range from the
	// appender. On Linux since 2.6.19 this only asks for nothing more than
	// what the kernel already does; it exists for parity with LMDB's
	// MAPASYNC and so its (small) cost is measured rather than guessed.
	Async
	// Interval runs group commit in a background goroutine: every Interval,
	// or as soon as Bytes unsynced bytes are pending, it msyncs (MS_SYNC) the
	// new data, then records the durable checkpoint in the header and msyncs
	// the header. The appender never waits for it.
	Interval
	// Sync makes every publish durable before it returns: MS_SYNC of the new
	// data, then the checkpoint, then MS_SYNC of the header page.
	Sync
)

// String returns the policy name: "none", "async", "interval" or "sync".
func (m Mode) String() string {
	switch m {
	case None:
		return "none"
	case Async:
		return "async"
	case Interval:
		return "interval"
	case Sync:
		return "sync"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Durability is a policy and, for Interval, its triggers.
type Durability struct {
	Mode     Mode
	Interval time.Duration // Interval mode: longest time a published frame stays unsynced (default 10ms)
	Bytes    int64         // Interval mode: sync early once this many bytes are pending (default 4 MiB; 0 = only the timer)
}

const (
	defaultSyncInterval = 10 * time.Millisecond
	defaultSyncBytes    = 4 << 20
)

// String returns the policy in the syntax ParseDurability reads.
func (d Durability) String() string {
	if d.Mode == Interval {
		return fmt.Sprintf("interval:%s,%d", d.Interval, d.Bytes)
	}
	return d.Mode.String()
}

// ParseDurability reads "none", "async", "sync" or "interval:DUR[,BYTES]"
// (e.g. "interval:5ms" or "interval:10ms,1MiB").
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "none", "":
		return Durability{Mode: None}, nil
	case "async":
		return Durability{Mode: Async}, nil
	case "sync":
		return Durability{Mode: Sync}, nil
	}
	rest, ok := strings.CutPrefix(s, "interval")
	if !ok {
		return Durability{}, fmt.Errorf("unknown durability %q (want none, async, interval:DUR[,BYTES] or sync)", s)
	}
	d := Durability{Mode: Interval, Interval: defaultSyncInterval, Bytes: defaultSyncBytes}
	if rest == "" {
		return d, nil
	}
	rest, ok = strings.CutPrefix(rest, ":")
	if !ok {
		return Durability{}, fmt.Errorf("durability %q: want interval:DUR[,BYTES]", s)
	}
	durS, bytesS, hasBytes := strings.Cut(rest, ",")
	iv, err := time.ParseDuration(durS)
	if err != nil || iv <= 0 {
		return Durability{}, fmt.Errorf("durability %q: bad interval %q", s, durS)
	}
	d.Interval = iv
	if hasBytes {
		n, err := ParseSize(bytesS)
		if err != nil {
			return Durability{}, fmt.Errorf("durability %q: %v", s, err)
		}
		d.Bytes = n
	}
	return d, nil
}

// ParseSize reads a byte count with an optional binary suffix: 4096, 64KiB,
// 64K, 64MiB, 1G.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(t, u.suf); ok {
			t, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want e.g. 4096, 64KiB, 64MiB)", s)
	}
	return n * mult, nil
}
