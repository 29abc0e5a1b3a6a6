package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mdjournal/mdjournal/book"
	"github.com/mdjournal/mdjournal/booksnap"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/stats"
	"github.com/mdjournal/mdjournal/wait"
	"github.com/mdjournal/mdjournal/writer"
)

// OrderRecordSize is the size of one ring record: an order request encoded
// as a whole journal frame (header with CRC, seq = order id, instrument;
// 64-byte payload), so the risk manager verifies it like a journal frame.
const OrderRecordSize = journal.FrameHeaderSize + 64

// Join policies of the engine's first start.
const (
	JoinSnapshot = "snapshot" // late joiner: books from the snapshot, then the journal after it
	JoinStart    = "start"    // replay the journal from its first frame
)

// EngineConfig configures the engine stage.
type EngineConfig struct {
	Dirs     Dirs
	RingPath string
	// RingCapacity of a new ring generation (default 1 MiB).
	RingCapacity int
	// Join is JoinSnapshot (default) or JoinStart; it applies to the first
	// start only (see EngineJoin).
	Join     string
	Strategy Strategy
	// Wait is how the market-data reader and the ring producer idle.
	Wait wait.Strategy
	// StartTimeout bounds the wait for the market-data journal and the
	// snapshot to exist (default 30 s).
	StartTimeout time.Duration
	// ReaderName is the named reader's name (default "engine").
	ReaderName string
	Logf       func(format string, args ...any)
}

// Engine is the engine stage's state. RunEngine drives it; it is exported
// for tests and benchmarks of its per-frame path (Process).
type Engine struct {
	cfg    EngineConfig
	logf   func(string, ...any)
	books  [MaxInstruments]*book.Book
	pos    [MaxInstruments]int64
	skip   [MaxInstruments]uint64 // late join: frames up to the slot's seq are in the seeded book
	decide uint64                 // decide only on frames after this seq
	last   uint64                 // last market-data seq processed
	replay bool                   // rebuilding: no latency samples

	orders    *writer.Writer
	lastOrder uint64
	prod      *ring.Producer
	gen       uint64
	buf       [64]byte
	rec       [OrderRecordSize]byte

	pub                                          *stats.Publisher
	cFrames, cOrders, cResent, cGens, cBad, cLag *stats.Counter
	hSeen, hDecide, hPush                        *stats.Histogram
}

// NewEngine opens the engine's orders journal, recovers its position per
// instrument from it, and attaches to the ring as its producer (a new
// generation, replacing a leftover). Books start empty; RunEngine seeds
// them. Its counters and histograms are registered in pub.
func NewEngine(cfg EngineConfig, pub *stats.Publisher) (*Engine, error) {
	if cfg.RingCapacity == 0 {
		cfg.RingCapacity = 1 << 20
	}
	if cfg.Strategy == (Strategy{}) {
		cfg.Strategy = DefaultStrategy()
	}
	e := &Engine{cfg: cfg, logf: cfg.Logf, pub: pub}
	if e.logf == nil {
		e.logf = func(string, ...any) {}
	}
	if pub == nil {
		return nil, errors.New("pipeline: NewEngine needs a stats publisher")
	}
	var err error
	for _, c := range []struct {
		p **stats.Counter
		l string
	}{{&e.cFrames, "frames"}, {&e.cOrders, "orders"}, {&e.cResent, "orders_resent"}, {&e.cGens, "ring_generations"}, {&e.cBad, "book_errors"}, {&e.cLag, "lag_ns"}} {
		if *c.p, err = pub.Counter(c.l); err != nil {
			return nil, err
		}
	}
	for _, h := range []struct {
		p **stats.Histogram
		l string
	}{{&e.hSeen, "read_to_seen_ns"}, {&e.hDecide, "seen_to_decided_ns"}, {&e.hPush, "decided_to_pushed_ns"}} {
		if *h.p, err = pub.Histogram(h.l); err != nil {
			return nil, err
		}
	}
	if e.orders, err = writer.Open(cfg.Dirs.Orders(), writer.Options{Logf: e.logf}); err != nil {
		return nil, fmt.Errorf("engine: orders journal: %w", err)
	}
	if err := e.recoverOrders(); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.newGeneration(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// recoverOrders replays the orders journal: positions, the last order and
// the last trigger acted on.
func (e *Engine) recoverOrders() error {
	last := e.orders.LastSeq()
	if last == 0 {
		return nil
	}
	r, err := reader.Open(e.cfg.Dirs.Orders(), reader.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	var o journal.OrderRequest
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok || f.Seq > last {
			break
		}
		if f.Type != journal.TypeOrderRequest {
			continue
		}
		if err := o.Decode(f.Payload); err != nil || o.OrderID != f.Seq || f.Instrument >= MaxInstruments {
			return fmt.Errorf("engine: orders journal %s: frame %d is not an order of this engine", e.cfg.Dirs.Orders(), f.Seq)
		}
		e.pos[f.Instrument] += signed(o.Side, o.Qty)
		e.lastOrder = o.OrderID
		e.decide = max(e.decide, o.TriggerSeq)
	}
	e.cOrders.Set(e.lastOrder)
	return nil
}

// newGeneration closes the current producer (if any) and creates a new
// ring generation, then re-sends every order the risk journal has no
// decision for. Each side of a generation attaches once, so a restarted
// risk manager can only ever read a new generation.
func (e *Engine) newGeneration() error {
	if e.prod != nil {
		e.prod.Close() // ErrUndelivered is expected: those orders are re-sent below
		e.prod = nil
	}
	p, err := ring.NewProducer(e.cfg.RingPath, e.cfg.RingCapacity, ring.ProducerOptions{
		Options: ring.Options{Replace: true}, Wait: e.cfg.Wait, Linger: -1})
	if err != nil {
		return fmt.Errorf("engine: ring: %w", err)
	}
	e.prod, e.gen = p, p.Ring().Generation()
	e.cGens.Add(1)
	decided, err := LastDecided(e.cfg.Dirs.Risk())
	if err != nil {
		return err
	}
	if decided >= e.lastOrder {
		return nil
	}
	e.logf("engine: ring generation %#x: re-sending orders %d..%d (risk decided up to %d)", e.gen, decided+1, e.lastOrder, decided)
	r, err := reader.Open(e.cfg.Dirs.Orders(), reader.Options{From: reader.Seq(decided + 1)})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok || f.Seq > e.lastOrder {
			return nil
		}
		n := journal.PutFrame(e.rec[:], f.Seq, f.TS, f.Type, 0, f.Instrument, f.Payload)
		if err := e.prod.Write(e.rec[:n]); err != nil {
			if errors.Is(err, ring.ErrPeerDead) || errors.Is(err, ring.ErrPeerClosed) {
				r.Close()
				return e.newGeneration()
			}
			return err
		}
		e.cResent.Add(1)
	}
}

// LastDecided returns the order id of the last decision in the risk
// journal at dir (0 if it has none or does not exist yet).
func LastDecided(dir string) (uint64, error) {
	r, err := reader.Open(dir, reader.Options{})
	if errors.Is(err, reader.ErrNoJournal) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	r.Close()
	r, err = reader.Open(dir, reader.Options{From: reader.End()})
	if err != nil {
		return 0, err
	}
	last := r.LastSeq() // the frame before End: the last published
	r.Close()
	if last == 0 {
		return 0, nil
	}
	r, err = reader.Open(dir, reader.Options{From: reader.Seq(last)})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	f, ok, err := r.TryNext()
	if err != nil || !ok {
		return 0, err
	}
	var d journal.RiskDecision
	if f.Type != journal.TypeRiskDecision || d.Decode(f.Payload) != nil {
		return 0, fmt.Errorf("risk journal %s: last frame %d is not a risk decision", dir, f.Seq)
	}
	return d.OrderID, nil
}

// Seed makes b the book of instrument instr, holding every frame of it up
// to seq (a late joiner's book from the snapshot): frames of instr up to
// seq are not applied again.
func (e *Engine) Seed(instr uint32, b *book.Book, seq uint64) {
	e.books[instr], e.skip[instr] = b, seq
}

// DecideAfter makes the engine decide only on frames after seq.
func (e *Engine) DecideAfter(seq uint64) { e.decide = max(e.decide, seq) }

// Process applies one market-data frame to its book and, if it may move
// the strategy and comes after every frame already acted on, runs the
// strategy; an order is written to the orders journal and then pushed into
// the ring. It allocates nothing once the instrument's book exists.
func (e *Engine) Process(f *journal.Frame) error {
	seen := time.Now().UnixNano()
	e.last = f.Seq
	e.cFrames.Add(1)
	if f.RecvTS != 0 && !e.replay {
		e.hSeen.Record(seen - f.RecvTS)
		e.cLag.Set(uint64(max(seen-f.RecvTS, 0))) // how far behind the source the engine reads
	}
	if !book.Affects(f.Type) {
		return nil
	}
	i := f.Instrument
	if i >= MaxInstruments {
		e.cBad.Add(1)
		return nil
	}
	b := e.books[i]
	if b == nil {
		b = book.New(256)
		e.books[i] = b
	}
	if f.Seq <= e.skip[i] {
		return nil
	}
	if err := b.ApplyFrame(f); err != nil {
		e.cBad.Add(1)
		return nil
	}
	if f.Seq <= e.decide || !decisionFrame(f.Type) {
		return nil
	}
	side, price, qty, ok := e.cfg.Strategy.Decide(b, e.pos[i])
	if !ok {
		return nil
	}
	o := journal.OrderRequest{OrderID: e.lastOrder + 1, Price: price, Qty: qty, Side: side, Strategy: e.cfg.Strategy.ID,
		TriggerSeq: f.Seq, TriggerTS: f.TS, Seen: seen, Decided: time.Now().UnixNano()}
	p := o.Encode(e.buf[:0])
	seq, err := e.orders.Append(journal.TypeOrderRequest, i, f.TS, p)
	if err != nil {
		return fmt.Errorf("engine: orders journal: %w", err)
	}
	if seq != o.OrderID {
		return fmt.Errorf("engine: orders journal %s: order %d got seq %d (the journal holds frames of another writer)", e.cfg.Dirs.Orders(), o.OrderID, seq)
	}
	e.lastOrder = seq
	e.pos[i] += signed(side, qty)
	e.cOrders.Add(1)
	e.hDecide.Record(o.Decided - seen)
	n := journal.PutFrame(e.rec[:], seq, f.TS, journal.TypeOrderRequest, 0, i, p)
	if err := e.prod.Write(e.rec[:n]); err != nil {
		if errors.Is(err, ring.ErrPeerDead) || errors.Is(err, ring.ErrPeerClosed) {
			return e.newGeneration() // re-sends this order too
		}
		return fmt.Errorf("engine: ring: %w", err)
	}
	e.hPush.Record(time.Now().UnixNano() - o.Decided)
	return nil
}

// CheckConsumer starts a new ring generation (re-sending undecided orders)
// when the ring's consumer attached and is gone: its successor can only
// attach to a new generation.
func (e *Engine) CheckConsumer() error {
	st, err := RingConsumer(e.cfg.RingPath, e.gen)
	if err != nil {
		return err
	}
	switch st {
	case ConsumerGone:
		e.logf("engine: ring consumer gone: new generation")
		return e.newGeneration()
	case ConsumerReplaced:
		return fmt.Errorf("engine: ring %s was replaced by another producer", e.cfg.RingPath)
	}
	return nil
}

// Position returns the engine's position in instrument instr.
func (e *Engine) Position(instr uint32) int64 { return e.pos[instr&(MaxInstruments-1)] }

// LastOrder returns the id of the last order emitted.
func (e *Engine) LastOrder() uint64 { return e.lastOrder }

// Close closes the ring producer (end of stream) and the orders journal.
func (e *Engine) Close() error {
	var err error
	if e.prod != nil {
		if cerr := e.prod.Close(); cerr != nil && !errors.Is(cerr, ring.ErrUndelivered) {
			err = cerr
		}
		e.prod = nil
	}
	if e.orders != nil {
		if cerr := e.orders.Close(); err == nil {
			err = cerr
		}
		e.orders = nil
	}
	return err
}

// RunEngine runs the engine stage until the feed is done and every order
// has a decision, or ctx ends.
//
// First start (no EngineJoin marker): with JoinSnapshot it waits (bounded
// by StartTimeout) for the snapshot, seeds one book per slot, records the
// join point J (the highest of the snapshot's last-applied seq and its
// slots' seqs) in EngineJoin, and reads the journal with its named reader
// from the snapshot's last-applied seq + 1, deciding only after J. With
// JoinStart, J is 0.
//
// Restart: the named reader resumes after its last committed frame (every
// frame is committed after its order, if any, is in the orders journal);
// the books are rebuilt by replaying the journal from its start up to
// there, positions come from the orders journal, and the engine decides
// only on frames after J and after the last order's trigger. So it never
// emits a second order for a trigger it acted on, and its orders are those
// of an uninterrupted run.
func RunEngine(ctx context.Context, cfg EngineConfig) error {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.ReaderName == "" {
		cfg.ReaderName = "engine"
	}
	if cfg.Join == "" {
		cfg.Join = JoinSnapshot
	}
	if cfg.Join != JoinSnapshot && cfg.Join != JoinStart {
		return fmt.Errorf("engine: join %q: want %q or %q", cfg.Join, JoinSnapshot, JoinStart)
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	pub, err := stats.Create(cfg.Dirs.Stats(), "engine", 0)
	if err != nil {
		return err
	}
	defer pub.Close()
	e, err := NewEngine(cfg, pub)
	if err != nil {
		return err
	}
	defer e.Close()

	join, restart, err := readMarker(cfg.Dirs.EngineJoin())
	if err != nil {
		return err
	}
	from := uint64(1)
	if !restart {
		if cfg.Join == JoinSnapshot {
			if join, from, err = e.seedFromSnapshot(cfg); err != nil {
				return err
			}
		}
		if err := writeMarker(cfg.Dirs.EngineJoin(), join); err != nil {
			return err
		}
		logf("engine: first start, joined at seq %d (%s)", join, cfg.Join)
	} else {
		logf("engine: restart: joined at %d, %d orders, deciding after seq %d", join, e.lastOrder, max(join, e.decide))
	}
	e.DecideAfter(join)
	e.last = from - 1
	md, err := reader.Open(cfg.Dirs.MD(), reader.Options{Name: cfg.ReaderName, Commit: reader.ExplicitCommit,
		From: reader.Seq(from), Wait: cfg.Wait, OpenTimeout: cfg.StartTimeout})
	if err != nil {
		if errors.Is(err, reader.ErrNoJournal) {
			return fmt.Errorf("engine: %w: market-data journal %s: %v", ErrNoInput, cfg.Dirs.MD(), err)
		}
		return fmt.Errorf("engine: market-data journal: %w", err)
	}
	defer md.Close()
	return e.run(ctx, md, restart)
}

// seedFromSnapshot waits for the snapshot and seeds the books from it; it
// returns the join point and the seq to read the journal from.
func (e *Engine) seedFromSnapshot(cfg EngineConfig) (join, from uint64, err error) {
	var sr *snapshot.Reader
	err = waitFor(cfg.StartTimeout, "snapshot "+cfg.Dirs.Snapshot(), func() (bool, error) {
		r, err := snapshot.Open(cfg.Dirs.Snapshot())
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		sr = r
		return true, nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("engine: %w", err)
	}
	defer sr.Close()
	l := sr.LastApplied()
	join = l
	for i := 0; i < min(sr.Capacity(), MaxInstruments); i++ {
		ld, err := booksnap.LoadFrom(sr, uint32(i))
		if err != nil {
			return 0, 0, fmt.Errorf("engine: snapshot slot %d: %w", i, err)
		}
		if ld.Seq == 0 {
			continue
		}
		if !ld.Complete {
			e.logf("engine: snapshot slot %d holds only the top %d levels: deeper levels unknown until they trade", i, sr.Depth())
		}
		e.Seed(uint32(i), ld.Book, ld.Seq)
		join = max(join, ld.Seq)
	}
	return join, l + 1, nil
}

func (e *Engine) run(ctx context.Context, md *reader.Reader, restart bool) error {
	cfg := e.cfg
	idle := wait.Idler{Strategy: cfg.Wait}
	first := restart
	lastCheck := time.Now()
	var feedDone uint64
	haveDone := false
	for n := uint64(0); ; n++ {
		f, ok, err := md.TryNext()
		if err != nil {
			return fmt.Errorf("engine: market-data journal: %w", err)
		}
		if ok {
			if first {
				first = false
				if err := e.rebuild(f.Seq - 1); err != nil {
					return err
				}
			}
			if err := e.Process(&f); err != nil {
				return err
			}
			if err := md.Commit(); err != nil {
				return err
			}
			idle.Reset()
			if n&1023 != 0 {
				continue
			}
		}
		// idle path (and every 1024 frames)
		if time.Since(lastCheck) > 5*time.Millisecond {
			lastCheck = time.Now()
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := e.CheckConsumer(); err != nil {
				return err
			}
			if !haveDone {
				if feedDone, haveDone, err = readMarker(cfg.Dirs.FeedDone()); err != nil {
					return err
				}
			}
		}
		if !ok {
			if first && haveDone {
				// Restarted with nothing left to read: the named reader
				// stands at the journal's end, so everything was processed.
				first = false
				if err := e.rebuild(feedDone); err != nil {
					return err
				}
			}
			if haveDone && e.last >= feedDone {
				return e.finish(ctx)
			}
			idle.Idle()
		}
	}
}

// rebuild replays the market-data journal from its start through seq into
// the books, without deciding (a restart's catch-up).
func (e *Engine) rebuild(through uint64) error {
	if through == 0 {
		return nil
	}
	r, err := reader.Open(e.cfg.Dirs.MD(), reader.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	saved := e.decide
	e.decide, e.replay = through, true
	defer func() { e.replay = false }()
	for e.last < through {
		f, ok, err := r.TryNext()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("engine: rebuild: journal %s ends at %d, before %d", e.cfg.Dirs.MD(), e.last, through)
		}
		if err := e.Process(&f); err != nil {
			return err
		}
	}
	e.decide = max(saved, through)
	e.logf("engine: books rebuilt from the journal through seq %d", through)
	return nil
}

// finish waits until the risk journal holds a decision for every order
// (re-sending to a new generation if the consumer goes), then writes the
// EngineDone marker and ends the ring's stream.
func (e *Engine) finish(ctx context.Context) error {
	d := time.Millisecond
	for {
		decided, err := LastDecided(e.cfg.Dirs.Risk())
		if err != nil {
			return err
		}
		if decided >= e.lastOrder {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := e.CheckConsumer(); err != nil {
			return err
		}
		time.Sleep(d) // polling another process's journal, bounded by ctx
		d = min(2*d, 20*time.Millisecond)
	}
	if err := writeMarker(e.cfg.Dirs.EngineDone(), e.lastOrder); err != nil {
		return err
	}
	e.logf("engine: done: %d orders, all decided", e.lastOrder)
	return e.Close()
}
