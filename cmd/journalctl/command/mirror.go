package command

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/writer"
)

type mirrorOptions struct {
	natsFlags
	dir         string
	snapshot    string
	depth       int
	capacity    int
	segmentSize string
	durability  string
	maxPending  int
	untilSeq    uint64
	quiet       bool
}

func (o *mirrorOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "replica journal directory (created at the first message)")
	o.addNATS(fs)
	fs.StringVar(&o.snapshot, "snapshot", "", "keep an order-book snapshot file of the replica here (late joiners on this host)")
	fs.IntVar(&o.depth, "depth", booksnap.DefaultDepth, "levels per side in the snapshot (with --snapshot)")
	fs.IntVar(&o.capacity, "capacity", booksnap.DefaultCapacity, "instrument slots in the snapshot: ids 0..N-1 (with --snapshot)")
	fs.StringVar(&o.segmentSize, "segment-size", "64MiB", "capacity of the replica's segment files (the origin's keeps its segment boundaries)")
	fs.StringVar(&o.durability, "durability", "none", "replica durability: none|async|interval:DUR[,BYTES]|sync")
	fs.IntVar(&o.maxPending, "max-pending", ship.DefaultMaxPending, "messages the consumer buffers")
	fs.Uint64Var(&o.untilSeq, "until-seq", 0, "exit 0 once the replica holds this seq (0: run until SIGINT/SIGTERM)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress notes on stderr")
}

// runMirror consumes a shipped journal from a JetStream stream into a local
// replica until SIGINT/SIGTERM or --until-seq (exit 0), or a finding — a
// gap, a duplicate, a damaged or foreign message — (exit 1, naming the
// seqs), never skipping one.
func runMirror(env *Env, args []string) error {
	var o mirrorOptions
	fs := flagSet(env, "mirror", "--nats URL --stream NAME --dir REPLICA [--snapshot S] [--segment-size SIZE] [--durability P] [--until-seq N]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	segSize, err := segmentSizeFlag(o.segmentSize)
	if err != nil {
		return err
	}
	dur, err := writer.ParseDurability(o.durability)
	if err != nil {
		return usagef("--durability: %v", err)
	}
	if o.maxPending < 1 || o.maxPending > 4096 {
		return usagef("--max-pending %d: want 1..4096", o.maxPending)
	}
	var snap *booksnap.Config
	if o.snapshot != "" {
		snap = &booksnap.Config{Path: o.snapshot, Depth: o.depth, Capacity: o.capacity}
	}
	nc, js, err := o.connect(env, "mirror")
	if err != nil {
		return err
	}
	defer nc.Close()
	logf := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(env.Stderr, "journalctl "+format+"\n", a...)
		}
	}
	m, err := ship.NewMirror(o.dir, js, ship.MirrorOptions{Stream: o.stream, Subject: o.subject, Snapshot: snap, MaxPending: o.maxPending,
		StopAt: o.untilSeq, Logf: logf, Writer: writer.Options{SegmentSize: segSize, Durability: dur}})
	if err != nil {
		return usagef("%v", err)
	}
	logf("mirror: %s stream %s → %s", redactURLs(o.url), o.stream, o.dir)
	err = m.Run(env.Ctx)
	st := m.Stats()
	fmt.Fprintf(env.Stdout, "mirrored frames=%d messages=%d last_seq=%d stream_seq=%d restarts=%d\n",
		st.Frames, st.Messages, st.LastSeq, st.StreamSeq, st.Restarts)
	var re *ship.RangeError
	if errors.As(err, &re) {
		return fmt.Errorf("stopped: %w", err)
	}
	return err
}
