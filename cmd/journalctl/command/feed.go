package command

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/feed"
	"github.com/mdjournal/mdjournal/internal/clock"
	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/writer"
)

type feedOptions struct {
	dir         string
	listen      string
	group       string
	iface       string
	rerequest   string
	snapshot    string
	depth       int
	durability  string
	segmentSize string
	date        string
	session     string
	gapTimeout  time.Duration
	spin        bool
	batch       int
}

func (o *feedOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "journal directory (created if missing; a journal the feed wrote is resumed)")
	fs.StringVar(&o.listen, "listen", "", "where the feed arrives: udp://HOST:PORT (port 0 picks one, printed on stderr; with --group: the group's port)")
	fs.StringVar(&o.group, "group", "", "IPv4 multicast group to join")
	fs.StringVar(&o.iface, "iface", "", "interface to join the group on (default: the kernel's choice)")
	fs.StringVar(&o.rerequest, "rerequest", "", "the exchange's MoldUDP64 re-request server, udp://HOST:PORT (default: none, gaps are only reported)")
	fs.StringVar(&o.snapshot, "snapshot", "", "keep this order-book snapshot file up to date")
	fs.IntVar(&o.depth, "depth", booksnap.DefaultDepth, "levels per side in the snapshot (with --snapshot)")
	fs.StringVar(&o.durability, "durability", "none", "none|async|interval:DUR[,BYTES]|sync")
	fs.StringVar(&o.segmentSize, "segment-size", "64MiB", "capacity of new segment files")
	fs.StringVar(&o.date, "date", "", "trading day YYYY-MM-DD that ITCH timestamps count from, New York time (default: the date of the journal's last frame, or today)")
	fs.StringVar(&o.session, "session", "", "MoldUDP64 session to follow (default: the first one seen)")
	fs.DurationVar(&o.gapTimeout, "gap-timeout", 0, "how long a missing message is waited for before it is written as a gap (default 5s with --rerequest, 100ms without)")
	fs.BoolVar(&o.spin, "spin", false, "busy-poll the sockets (lower latency, one core busy)")
	fs.IntVar(&o.batch, "batch", 64, "packets per recvmmsg")
}

// runFeed is the feed handler: ITCH 5.0 in MoldUDP64 from the wire into a
// journal (package feed). It runs until the end of the session or an
// interrupt; exit 1 when a gap could not be recovered.
func runFeed(env *Env, args []string) error {
	var o feedOptions
	fs := flagSet(env, "feed", "--dir D --listen udp://HOST:PORT [--group ADDR --iface IF] [--rerequest udp://HOST:PORT] [--snapshot S --depth N] [--durability P] [--date YYYY-MM-DD]", o.AddFlags)
	if err := parseDirVerb(fs, args, &o.dir); err != nil {
		return err
	}
	if o.listen == "" {
		return usagef("--listen is required")
	}
	listen, err := parseUDP("--listen", o.listen)
	if err != nil {
		return err
	}
	var group netip.Addr
	if o.group != "" {
		if group, err = netip.ParseAddr(o.group); err != nil || !group.Is4() || !group.IsMulticast() {
			return usagef("--group %q: want an IPv4 multicast address", o.group)
		}
	} else if o.iface != "" {
		return usagef("--iface goes with --group")
	}
	ifi, err := ifaceIndex(o.iface)
	if err != nil {
		return err
	}
	var rr netip.AddrPort
	if o.rerequest != "" {
		if rr, err = parseUDP("--rerequest", o.rerequest); err != nil {
			return err
		}
	}
	if fs.Changed("depth") && o.snapshot == "" {
		return usagef("--depth needs --snapshot")
	}
	if o.depth < 1 || o.depth > snapshot.MaxDepth {
		return usagef("--depth %d: want 1..%d", o.depth, snapshot.MaxDepth)
	}
	var sess moldudp64.Session
	if o.session != "" {
		if sess, err = moldudp64.ParseSession(o.session); err != nil {
			return usagef("--session: %v", err)
		}
	}
	if o.batch < 1 || o.batch > 1024 || o.gapTimeout < 0 {
		return usagef("--batch 1..1024, --gap-timeout ≥ 0")
	}
	var date lobster.Date
	if o.date != "" {
		if date, err = lobster.ParseDate(o.date); err != nil {
			return usagef("--date %q: want YYYY-MM-DD", o.date)
		}
	}
	dur, err := writer.ParseDurability(o.durability)
	if err != nil {
		return usagef("%v", err)
	}
	segSize, err := segmentSizeFlag(o.segmentSize)
	if err != nil {
		return err
	}
	ny, err := itch.NewYork()
	if err != nil {
		return err
	}

	wopts := writer.Options{SegmentSize: segSize, Durability: dur}
	var w *writer.Writer
	var m *booksnap.Maintainer
	if o.snapshot != "" {
		// Instrument ids are stock locates: room for every 16-bit one.
		w, m, err = booksnap.OpenWriter(o.dir, wopts, booksnap.Config{Path: o.snapshot, Depth: o.depth, Capacity: 1 << 16})
	} else {
		w, err = writer.Open(o.dir, wopts)
	}
	if err != nil {
		return err
	}
	defer func() {
		w.Close()
		if m != nil {
			m.Close()
		}
	}()
	day := itch.NewDay(date.Year, date.Month, date.Day, ny)
	if date.IsZero() {
		at := time.Now()
		if w.LastSeq() > 0 {
			at = time.Unix(0, w.LastTime())
		}
		day = itch.DayOf(at.In(ny))
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(env.Stderr, "journalctl feed: "+format+"\n", args...)
	}
	f, err := feed.New(w, feed.Options{Listen: listen, Group: group, Interface: ifi, Rerequest: rr, Session: sess, Day: day,
		GapTimeout: o.gapTimeout, Spin: o.spin, Batch: o.batch, Logf: logf})
	if err != nil {
		return err
	}
	defer f.Close()
	res := f.Resume()
	at := f.LocalAddr()
	if group.IsValid() {
		at = netip.AddrPortFrom(group, at.Port())
	}
	logf("listening on udp://%s; trading day %s; resuming at message %d (%d frames read, %d resting orders known)",
		at, time.Unix(0, day.Midnight()).In(ny).Format(time.DateOnly), res.Next, res.Frames, res.Orders)

	start := clock.Nanotime()
	runErr := f.Run(env.Ctx)
	sec := float64(clock.Nanotime()-start) / 1e9
	st := f.Stats()
	sq, dc := st.Sequencer, st.Decoder
	fmt.Fprintf(env.Stdout, "messages=%d frames=%d gaps=%d lost=%d recovered=%d duplicates=%d requests=%d unknown_orders=%d invalid=%d malformed=%d refused=%d packets=%d next_message=%d last_seq=%d end_of_session=%v seconds=%.3f msgs/s=%.0f\n",
		sq.Messages, st.Frames, st.Gaps, st.Lost, sq.Recovered, sq.Duplicates, sq.Requests, dc.Unknown, dc.Invalid, dc.Malformed,
		st.Refused, st.Packets, res.Next+sq.Messages+sq.Lost, w.LastSeq(), st.EndOfSession, sec, perSecond(sq.Messages, sec))
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	if err := w.Close(); err != nil {
		return err
	}
	if st.Gaps > 0 {
		fmt.Fprintf(env.Stderr, "journalctl feed: %d gap(s), %d message(s) could not be recovered: written as gap frames\n", st.Gaps, st.Lost)
		return errDataProblem
	}
	return nil
}
