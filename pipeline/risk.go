package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/stats"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// Rejection reasons (RiskDecision.Reason); 0 with an accepted order.
const (
	ReasonInvalid           uint16 = 1 // qty or price not positive, side neither bid nor ask
	ReasonUnknownInstrument uint16 = 2 // no InstrumentDef before the trigger, or id ≥ MaxInstruments
	ReasonPosition          uint16 = 3 // |position after the order| > MaxPosition
	ReasonNotional          uint16 = 4 // price × qty > MaxNotional
	ReasonPriceBand         uint16 = 5 // price more than BandBP from the mid at the trigger
	ReasonRate              uint16 = 6 // more than MaxOrdersPerSec accepted in the last second of market time
	ReasonNoMarket          uint16 = 7 // no two-sided book at the trigger: no reference price
	ReasonTrigger           uint16 = 8 // trigger seq not in the market-data journal (in time), or out of order
	ReasonTriggerMismatch   uint16 = 9 // trigger_ts or instrument differ from the market-data frame
)

// ReasonName names a rejection reason.
func ReasonName(r uint16) string {
	switch r {
	case 0:
		return "accepted"
	case ReasonInvalid:
		return "invalid"
	case ReasonUnknownInstrument:
		return "unknown_instrument"
	case ReasonPosition:
		return "position"
	case ReasonNotional:
		return "notional"
	case ReasonPriceBand:
		return "price_band"
	case ReasonRate:
		return "rate"
	case ReasonNoMarket:
		return "no_market"
	case ReasonTrigger:
		return "trigger_unknown"
	case ReasonTriggerMismatch:
		return "trigger_mismatch"
	}
	return "reason_" + strconv.Itoa(int(r))
}

// Limits are the risk manager's per-instrument limits. Every check uses
// only the order and the market-data journal up to the order's trigger, so
// the decisions are a function of the inputs, not of timing.
type Limits struct {
	MaxPosition     int64 // |accepted position| after the order
	MaxNotional     int64 // price × qty, in the instrument's price units
	BandBP          int64 // |price − mid| ≤ BandBP/10000 × mid at the trigger
	MaxOrdersPerSec int   // accepted orders per instrument per second of trigger time (≤ 4096)
}

// DefaultLimits are the limits the example runs with.
func DefaultLimits() Limits {
	return Limits{MaxPosition: 250, MaxNotional: 100 * 6_000_000, BandBP: 50, MaxOrdersPerSec: 20}
}

// Errors of the risk manager.
var (
	// ErrMalformed: a ring record is not a well-formed order request frame.
	// No decision is written for it (its order id cannot be trusted).
	ErrMalformed = errors.New("pipeline: malformed order record")
	// ErrOrderGap: an order id skips ahead of the last decided + 1; orders
	// were lost upstream and risk refuses to continue.
	ErrOrderGap = errors.New("pipeline: order ids skip ahead")
)

// RiskConfig configures the risk stage.
type RiskConfig struct {
	Dirs     Dirs
	RingPath string
	Limits   Limits
	Wait     wait.Strategy
	// StartTimeout bounds the wait for the market-data journal and the
	// first ring generation (default 30 s).
	StartTimeout time.Duration
	// TriggerWait bounds the wait for an order's trigger frame to appear in
	// the market-data journal (default 2 s); then it is rejected.
	TriggerWait time.Duration
	Logf        func(format string, args ...any)
}

// Risk is the risk stage's state: books of the market-data journal up to
// the last order's trigger, accepted positions, the rate windows and the
// risk journal. RunRisk drives it; Decide is its per-order path.
type Risk struct {
	cfg     RiskConfig
	logf    func(string, ...any)
	md      *reader.Reader
	books   [MaxInstruments]*book.Book
	known   [MaxInstruments]bool
	pos     [MaxInstruments]int64
	rate    [MaxInstruments][]int64 // accepted trigger times, circular
	rix     [MaxInstruments]int
	mdSeq   uint64 // last market-data seq applied
	mdTS    int64  // its timestamp
	mdRecv  int64  // its source-read time
	mdInstr uint32

	w       *writer.Writer
	decided uint64 // last order id decided
	buf     [64]byte
	frame   journal.Frame
	order   journal.OrderRequest

	cOrders, cAccepted, cRejected, cDup, cMalformed, cLag *stats.Counter
	hRing, hDecide, hE2E                                  *stats.Histogram
}

// NewRisk opens the risk journal and rebuilds the accepted positions, the
// rate windows and the last decided order id from it, and opens a reader
// on the market-data journal (waiting up to StartTimeout for it). Its
// counters and histograms are registered in pub.
func NewRisk(cfg RiskConfig, pub *stats.Publisher) (*Risk, error) {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.TriggerWait == 0 {
		cfg.TriggerWait = 2 * time.Second
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if cfg.Limits.MaxOrdersPerSec < 0 || cfg.Limits.MaxOrdersPerSec > 4096 {
		return nil, fmt.Errorf("risk: MaxOrdersPerSec %d: want 0..4096", cfg.Limits.MaxOrdersPerSec)
	}
	r := &Risk{cfg: cfg, logf: cfg.Logf}
	if r.logf == nil {
		r.logf = func(string, ...any) {}
	}
	if pub == nil {
		return nil, errors.New("pipeline: NewRisk needs a stats publisher")
	}
	var err error
	for _, c := range []struct {
		p **stats.Counter
		l string
	}{{&r.cOrders, "orders"}, {&r.cAccepted, "accepted"}, {&r.cRejected, "rejected"}, {&r.cDup, "duplicates"}, {&r.cMalformed, "malformed"}, {&r.cLag, "lag_ns"}} {
		if *c.p, err = pub.Counter(c.l); err != nil {
			return nil, err
		}
	}
	for _, h := range []struct {
		p **stats.Histogram
		l string
	}{{&r.hRing, "decided_to_received_ns"}, {&r.hDecide, "received_to_decided_ns"}, {&r.hE2E, "read_to_risk_decided_ns"}} {
		if *h.p, err = pub.Histogram(h.l); err != nil {
			return nil, err
		}
	}
	if r.w, err = writer.Open(cfg.Dirs.Risk(), writer.Options{Logf: r.logf}); err != nil {
		return nil, fmt.Errorf("risk: journal: %w", err)
	}
	if err := r.recover(); err != nil {
		r.Close()
		return nil, err
	}
	r.md, err = reader.Open(cfg.Dirs.MD(), reader.Options{Wait: cfg.Wait, OpenTimeout: cfg.StartTimeout})
	if err != nil {
		r.Close()
		if errors.Is(err, reader.ErrNoJournal) {
			return nil, fmt.Errorf("risk: %w: market-data journal %s: %v", ErrNoInput, cfg.Dirs.MD(), err)
		}
		return nil, fmt.Errorf("risk: market-data journal: %w", err)
	}
	return r, nil
}

func (r *Risk) recover() error {
	last := r.w.LastSeq()
	if last == 0 {
		return nil
	}
	rd, err := reader.Open(r.cfg.Dirs.Risk(), reader.Options{})
	if err != nil {
		return err
	}
	defer rd.Close()
	var d journal.RiskDecision
	for {
		f, ok, err := rd.TryNext()
		if err != nil {
			return err
		}
		if !ok || f.Seq > last {
			break
		}
		if f.Type != journal.TypeRiskDecision {
			continue
		}
		if err := d.Decode(f.Payload); err != nil || f.Instrument >= MaxInstruments {
			return fmt.Errorf("risk: journal %s: frame %d is not a decision of this risk manager", r.cfg.Dirs.Risk(), f.Seq)
		}
		r.decided = d.OrderID
		if d.Verdict == journal.RiskAccepted {
			r.accept(f.Instrument, d.Side, d.Qty, f.TS)
		}
	}
	r.cOrders.Set(r.decided)
	return nil
}

// accept books an accepted order: position and rate window.
func (r *Risk) accept(i uint32, side journal.Side, qty int64, ts int64) {
	r.pos[i] += signed(side, qty)
	if n := r.cfg.Limits.MaxOrdersPerSec; n > 0 {
		if r.rate[i] == nil {
			r.rate[i] = make([]int64, n)
		}
		r.rate[i][r.rix[i]] = ts
		r.rix[i] = (r.rix[i] + 1) % n
	}
}

// Decided returns the id of the last order decided.
func (r *Risk) Decided() uint64 { return r.decided }

// Position returns the accepted position in instrument instr.
func (r *Risk) Position(instr uint32) int64 { return r.pos[instr&(MaxInstruments-1)] }

// Close closes the journals.
func (r *Risk) Close() error {
	var err error
	if r.md != nil {
		err = r.md.Close()
		r.md = nil
	}
	if r.w != nil {
		if cerr := r.w.Close(); err == nil {
			err = cerr
		}
		r.w = nil
	}
	return err
}

// Handle decides one ring record and writes the decision: a record that is
// not a well-formed order request frame is ErrMalformed (nothing written);
// an order id already decided is a duplicate (nothing written, nil); an id
// beyond the next is ErrOrderGap. It allocates nothing.
func (r *Risk) Handle(rec []byte) error {
	recv := time.Now().UnixNano()
	f := &r.frame
	n, st := journal.DecodeFrameInto(rec, f)
	if st != journal.FrameOK || n != len(rec) || f.Type != journal.TypeOrderRequest || len(f.Payload) != 64 || f.Flags != 0 {
		r.cMalformed.Add(1)
		return fmt.Errorf("%w: %d bytes, status %d, type %v", ErrMalformed, len(rec), st, f.Type)
	}
	o := &r.order
	if err := o.Decode(f.Payload); err != nil || o.OrderID != f.Seq || o.OrderID == 0 {
		r.cMalformed.Add(1)
		return fmt.Errorf("%w: order id %d in a frame of seq %d", ErrMalformed, o.OrderID, f.Seq)
	}
	if o.OrderID <= r.decided {
		r.cDup.Add(1)
		return nil
	}
	if o.OrderID != r.decided+1 {
		return fmt.Errorf("%w: order %d after %d", ErrOrderGap, o.OrderID, r.decided)
	}
	r.hRing.Record(recv - o.Decided)
	r.cLag.Set(uint64(max(recv-o.Decided, 0))) // how far behind the engine risk reads
	verdict, reason := r.check(f.Instrument, o)
	d := journal.RiskDecision{OrderID: o.OrderID, Price: o.Price, Qty: o.Qty, Side: o.Side, Verdict: verdict, Reason: reason,
		Strategy: o.Strategy, TriggerSeq: o.TriggerSeq, Requested: o.Decided, Received: recv}
	ts := r.mdTS
	if reason == ReasonTrigger || reason == ReasonTriggerMismatch {
		ts = o.TriggerTS
	}
	d.Decided = time.Now().UnixNano()
	if _, err := r.w.Append(journal.TypeRiskDecision, f.Instrument&(MaxInstruments-1), ts, d.Encode(r.buf[:0])); err != nil {
		return fmt.Errorf("risk: journal: %w", err)
	}
	r.decided = o.OrderID
	if verdict == journal.RiskAccepted {
		r.accept(f.Instrument, o.Side, o.Qty, ts)
		r.cAccepted.Add(1)
	} else {
		r.cRejected.Add(1)
	}
	r.cOrders.Add(1)
	r.hDecide.Record(d.Decided - recv)
	if r.mdRecv != 0 && reason != ReasonTrigger {
		r.hE2E.Record(d.Decided - r.mdRecv)
	}
	return nil
}

// advance applies market-data frames through seq (waiting up to
// TriggerWait for them); false if seq did not appear or was passed.
func (r *Risk) advance(seq uint64) bool {
	if seq <= r.mdSeq {
		return seq == r.mdSeq && seq != 0
	}
	idle := wait.Idler{Strategy: r.cfg.Wait}
	var deadline time.Time
	for r.mdSeq < seq {
		f, ok, err := r.md.TryNext()
		if err != nil {
			r.logf("risk: market-data journal: %v", err)
			return false
		}
		if !ok {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(r.cfg.TriggerWait)
			} else if now.After(deadline) {
				return false
			}
			idle.Idle()
			continue
		}
		r.mdSeq, r.mdTS, r.mdRecv, r.mdInstr = f.Seq, f.TS, f.RecvTS, f.Instrument
		if !book.Affects(f.Type) || f.Instrument >= MaxInstruments {
			continue
		}
		b := r.books[f.Instrument]
		if b == nil {
			b = book.New(256)
			r.books[f.Instrument] = b
		}
		if f.Type == journal.TypeInstrumentDef {
			r.known[f.Instrument] = true
		}
		b.ApplyFrame(&f) // an inconsistent event is counted by the book, never fatal
	}
	return true
}

// check applies the limits to order o of instrument i.
func (r *Risk) check(i uint32, o *journal.OrderRequest) (verdict uint8, reason uint16) {
	rej := func(why uint16) (uint8, uint16) { return journal.RiskRejected, why }
	if !r.advance(o.TriggerSeq) {
		return rej(ReasonTrigger)
	}
	if o.TriggerTS != r.mdTS || i != r.mdInstr {
		return rej(ReasonTriggerMismatch)
	}
	if o.Qty <= 0 || o.Price <= 0 || (o.Side != journal.SideBid && o.Side != journal.SideAsk) {
		return rej(ReasonInvalid)
	}
	if i >= MaxInstruments || !r.known[i] {
		return rej(ReasonUnknownInstrument)
	}
	l := &r.cfg.Limits
	b := r.books[i]
	bid, okb := b.Best(journal.SideBid)
	ask, oka := b.Best(journal.SideAsk)
	if !okb || !oka || bid.Price >= ask.Price {
		return rej(ReasonNoMarket)
	}
	if p := r.pos[i] + signed(o.Side, o.Qty); p > l.MaxPosition || p < -l.MaxPosition {
		return rej(ReasonPosition)
	}
	if o.Qty > l.MaxNotional/o.Price {
		return rej(ReasonNotional)
	}
	mid2 := bid.Price + ask.Price // 2 × mid, exact
	if d := 2*o.Price - mid2; d*10000 > l.BandBP*mid2 || -d*10000 > l.BandBP*mid2 {
		return rej(ReasonPriceBand)
	}
	if n := l.MaxOrdersPerSec; n > 0 && r.rate[i] != nil {
		if oldest := r.rate[i][r.rix[i]]; oldest != 0 && r.mdTS-oldest < int64(time.Second) {
			return rej(ReasonRate)
		}
	}
	return journal.RiskAccepted, 0
}

// RunRisk runs the risk stage: it attaches to the ring as its consumer
// (waiting up to StartTimeout for the first generation), decides every
// order, and on the end of a generation (the engine restarted or started a
// new one) attaches to the next. It returns nil once the engine's
// EngineDone marker says every order is decided.
func RunRisk(ctx context.Context, cfg RiskConfig) error {
	pub, err := stats.Create(cfg.Dirs.Stats(), "risk", 0)
	if err != nil {
		return err
	}
	defer pub.Close()
	r, err := NewRisk(cfg, pub)
	if err != nil {
		return err
	}
	defer r.Close()
	cfg = r.cfg
	logf := r.logf
	firstDeadline := time.Now().Add(cfg.StartTimeout)
	var handleErr error
	handle := func(rec []byte) {
		if handleErr != nil {
			return
		}
		if err := r.Handle(rec); err != nil {
			if errors.Is(err, ErrMalformed) {
				logf("risk: ring %s: %v: skipped, no decision written", cfg.RingPath, err)
				return
			}
			handleErr = err
		}
	}
	for {
		if done, ok, err := readMarker(cfg.Dirs.EngineDone()); err != nil {
			return err
		} else if ok && r.decided >= done {
			logf("risk: done: %d orders decided", r.decided)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := ring.NewConsumer(cfg.RingPath, ring.ConsumerOptions{Wait: cfg.Wait, AttachTimeout: 200 * time.Millisecond})
		if errors.Is(err, ring.ErrNoProducer) {
			if !firstDeadline.IsZero() && time.Now().After(firstDeadline) {
				return fmt.Errorf("risk: %w: no engine on ring %s after %v", ErrNoInput, cfg.RingPath, cfg.StartTimeout)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("risk: %w", err)
		}
		firstDeadline = time.Time{}
		logf("risk: attached to ring generation %#x (decided up to %d)", c.Ring().Generation(), r.decided)
		for {
			c.SetDeadline(time.Now().Add(100 * time.Millisecond))
			_, err := c.ReadBatch(256, handle)
			if handleErr != nil {
				c.Close()
				return handleErr
			}
			if err == nil {
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if cerr := ctx.Err(); cerr != nil {
					c.Close()
					return cerr
				}
				continue
			}
			c.Close()
			if errors.Is(err, io.EOF) || errors.Is(err, ring.ErrPeerDead) {
				break // this generation is over: attach to the next
			}
			return fmt.Errorf("risk: ring: %w", err)
		}
	}
}
