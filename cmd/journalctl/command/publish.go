package command

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdjournal/mdjournal/itch"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/lobster"
	"github.com/mdjournal/mdjournal/moldudp64"
	"github.com/mdjournal/mdjournal/publish"
	"github.com/mdjournal/mdjournal/replay"
)

type publishOptions struct {
	from       string
	to         string
	orderbooks []string
	symbol     string
	date       string
	speed      string
	drop       float64
	reorder    float64
	seed       uint64
	rerequest  string
	session    string
	linger     time.Duration
	heartbeat  time.Duration
	maxPayload int
	iface      string
	ttl        int
	loop       bool
}

func (o *publishOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.from, "from", "", "journal directory to publish (or give LOBSTER message files as arguments)")
	fs.StringVar(&o.to, "to", "", "where the feed goes: udp://HOST:PORT (unicast or an IPv4 multicast group)")
	fs.StringArrayVar(&o.orderbooks, "orderbook", nil, "LOBSTER orderbook file, once per message file in the same order (default: the file LOBSTER names beside each)")
	fs.StringVar(&o.symbol, "symbol", "", "symbol of a LOBSTER message file not named the LOBSTER way (one file only)")
	fs.StringVar(&o.date, "date", "", "trading day YYYY-MM-DD: LOBSTER files not named the LOBSTER way, and the day ITCH timestamps count from (default: the first frame's New York date)")
	fs.StringVar(&o.speed, "speed", "max", "max, or a factor of the recorded pace: 1x, 10x, 0.5x")
	fs.Float64Var(&o.drop, "drop", 0, "probability that a data packet is not sent (it stays available to re-requests): tests")
	fs.Float64Var(&o.reorder, "reorder", 0, "probability that a data packet is held back and sent after the next one: tests")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of --drop and --reorder")
	fs.StringVar(&o.rerequest, "rerequest-listen", "", "serve MoldUDP64 re-requests on udp://HOST:PORT (port 0 picks one, printed on stderr)")
	fs.StringVar(&o.session, "session", publish.DefaultSession, "MoldUDP64 session name (at most 10 bytes)")
	fs.DurationVar(&o.linger, "linger", 5*time.Second, "after the end of session, keep answering re-requests (and repeating the end) this long")
	fs.DurationVar(&o.heartbeat, "heartbeat", time.Second, "heartbeat interval while idle (and of the end-of-session repeats)")
	fs.IntVar(&o.maxPayload, "max-payload", moldudp64.DefaultMaxPayload, "largest UDP payload in bytes")
	fs.StringVar(&o.iface, "iface", "", "multicast: the interface the packets leave by")
	fs.IntVar(&o.ttl, "ttl", 1, "multicast: TTL")
	fs.BoolVar(&o.loop, "loop", true, "multicast: deliver to listeners on this host too")
}

// parseUDP reads udp://HOST:PORT (or HOST:PORT) with an IPv4 host.
func parseUDP(flag, s string) (netip.AddrPort, error) {
	a, err := netip.ParseAddrPort(strings.TrimPrefix(s, "udp://"))
	if err != nil || !a.Addr().Unmap().Is4() {
		return netip.AddrPort{}, usagef("%s %q: want udp://HOST:PORT with an IPv4 address, e.g. udp://127.0.0.1:5000", flag, s)
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), nil
}

func ifaceIndex(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, usagef("--iface %q: %v", name, err)
	}
	return ifi.Index, nil
}

// runPublish is the test exchange: a journal or LOBSTER files as ITCH 5.0
// in MoldUDP64 (package publish).
func runPublish(env *Env, args []string) error {
	var o publishOptions
	fs := flagSet(env, "publish", "--to udp://HOST:PORT (--from DIR | MESSAGE.csv[.gz]... [--orderbook OB]...) [--speed max|1x|10x] [--drop P] [--reorder P] [--seed S] [--rerequest-listen udp://HOST:PORT] [--linger DUR]", o.AddFlags)
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.to == "" {
		return usagef("--to is required")
	}
	to, err := parseUDP("--to", o.to)
	if err != nil {
		return err
	}
	if (o.from == "") == (fs.NArg() == 0) {
		return usagef("give either --from DIR or LOBSTER message files")
	}
	speed, err := replay.ParseSpeed(o.speed)
	if err != nil {
		return usagef("--speed: %v", err)
	}
	if o.drop < 0 || o.reorder < 0 || o.drop+o.reorder > 1 {
		return usagef("--drop %v and --reorder %v must be probabilities whose sum is at most 1", o.drop, o.reorder)
	}
	if _, err := moldudp64.ParseSession(o.session); err != nil {
		return usagef("--session: %v", err)
	}
	if o.maxPayload < 64 || o.maxPayload > 65507 {
		return usagef("--max-payload %d: want 64..65507", o.maxPayload)
	}
	if o.linger < 0 || o.heartbeat <= 0 {
		return usagef("--linger ≥ 0, --heartbeat > 0")
	}
	var rr netip.AddrPort
	if o.rerequest != "" {
		if rr, err = parseUDP("--rerequest-listen", o.rerequest); err != nil {
			return err
		}
	}
	ifi, err := ifaceIndex(o.iface)
	if err != nil {
		return err
	}
	var day itch.Day
	var date lobster.Date
	if o.date != "" {
		if date, err = lobster.ParseDate(o.date); err != nil {
			return usagef("--date %q: want YYYY-MM-DD", o.date)
		}
		ny, err := itch.NewYork()
		if err != nil {
			return err
		}
		day = itch.NewDay(date.Year, date.Month, date.Day, ny)
	}
	var src publish.Source
	if o.from != "" {
		if len(o.orderbooks) > 0 || o.symbol != "" {
			return usagef("--orderbook and --symbol go with LOBSTER files, not --from")
		}
		src = publish.JournalSource{Dir: o.from}
	} else {
		if len(o.orderbooks) > 0 && len(o.orderbooks) != fs.NArg() {
			return usagef("%d --orderbook files for %d message files", len(o.orderbooks), fs.NArg())
		}
		if o.symbol != "" && fs.NArg() > 1 {
			return usagef("--symbol names one message file's instrument")
		}
		if o.symbol != "" && len(o.symbol) > journal.SymbolLen {
			return usagef("--symbol %q: want 1..%d bytes", o.symbol, journal.SymbolLen)
		}
		var files []publish.LOBSTERFile
		for i, m := range fs.Args() {
			f := publish.LOBSTERFile{Message: m, Symbol: o.symbol, Date: date}
			if len(o.orderbooks) > 0 {
				f.Orderbook = o.orderbooks[i]
			} else if ob, err := lobster.OrderbookName(m); err == nil && regularFile(ob) {
				f.Orderbook = ob
			}
			if f.Orderbook == "" {
				fmt.Fprintf(env.Stderr, "journalctl publish: warning: no orderbook file for %s: levels that enter the visible depth cannot be known\n", m)
			}
			files = append(files, f)
		}
		src = publish.LOBSTERSource{Files: files}
	}

	p, err := publish.Open(publish.Options{To: to, Session: o.session, RerequestListen: rr, Speed: speed, DropRate: o.drop,
		ReorderRate: o.reorder, Seed: o.seed, MaxPayload: o.maxPayload, HeartbeatInterval: o.heartbeat, Day: day,
		Linger: o.linger, Interface: ifi, TTL: o.ttl, Loop: o.loop})
	if err != nil {
		return err
	}
	defer p.Close()
	if rr.IsValid() {
		fmt.Fprintf(env.Stderr, "journalctl publish: re-requests on udp://%s\n", p.RerequestAddr())
	}
	st, err := p.Run(env.Ctx, src)
	e, s := st.Encoder, st.Sender
	fmt.Fprintf(env.Stdout, "messages=%d standard=%d extension=%d frames=%d skipped=%d packets=%d dropped=%d reordered=%d requests_answered=%d messages_resent=%d first_seq=%d last_seq=%d seconds=%.3f msgs/s=%.0f\n",
		e.Messages, e.Messages-e.Extension, e.Extension, e.Frames, e.SkippedAll, s.Packets+s.Dropped, s.Dropped, s.Reordered,
		st.Server.Requests, st.Server.Messages, st.First, st.Last, st.Seconds, perSecond(e.Messages, st.Seconds))
	if errors.Is(err, publish.ErrUnpublishable) {
		return fmt.Errorf("%w (nothing after it was sent)", err)
	}
	return err
}

func regularFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func perSecond(n uint64, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(n) / sec
}
