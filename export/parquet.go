package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/mdjournal/mdjournal/journal"
)

// DefaultRowGroupRows is the default number of rows per Parquet row group.
const DefaultRowGroupRows = 1 << 20

// Key/value metadata the Parquet writer puts in the file footer.
const (
	// KeyVersion is the version of the column layout (ColumnsVersion).
	KeyVersion = "mdjournal.export.version"
	// KeyPriceEncoding says how to read the price columns (see Prices in
	// the package doc).
	KeyPriceEncoding = "mdjournal.price_encoding"
	// KeyInstruments is a JSON array of Instrument: every instrument that
	// has a row, with its definition as of its last row.
	KeyInstruments = "mdjournal.instruments"
)

// ColumnsVersion is the version of the column layout written under
// KeyVersion. It changes when a column is renamed, removed or changes type.
const ColumnsVersion = "1"

// PriceEncoding is the value of KeyPriceEncoding.
const PriceEncoding = "price, tick_size, bid_price and ask_price are int64 fixed-point values: the real price is value / 10^price_scale, with price_scale the row's (the instrument's) scale"

// Instrument is one element of the KeyInstruments metadata.
type Instrument struct {
	ID         uint32 `json:"instrument"`
	Symbol     string `json:"symbol"`
	PriceScale int32  `json:"price_scale"`
	TickSize   int64  `json:"tick_size"`
}

// Compression is a Parquet compression codec.
type Compression string

// Compression codecs.
const (
	Zstd         Compression = "zstd"
	Snappy       Compression = "snappy"
	Gzip         Compression = "gzip"
	Uncompressed Compression = "none"
)

// ErrCompression is returned for an unknown Compression.
var ErrCompression = errors.New("export: unknown compression (want zstd, snappy, gzip or none)")

func (c Compression) codec() (compress.Codec, error) {
	switch c {
	case Zstd, "":
		return &parquet.Zstd, nil
	case Snappy:
		return &parquet.Snappy, nil
	case Gzip:
		return &parquet.Gzip, nil
	case Uncompressed:
		return &parquet.Uncompressed, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrCompression, string(c))
}

// ParquetOptions configure a ParquetWriter. The zero value is valid.
type ParquetOptions struct {
	// RowGroupRows is the number of rows per row group (default
	// DefaultRowGroupRows). The writer holds one row group in memory.
	RowGroupRows int64
	// Compression of the column chunks (default Zstd).
	Compression Compression
	// CreatedBy names the application in the file's created_by field
	// (default "mdjournal export").
	CreatedBy string
}

// prow is the Parquet row: its fields, in order, are the columns (the
// schema is derived from it). Nil pointers are nulls. A batch of prows
// points into a batch of records (parquetBatch), so building one allocates
// nothing.
type prow struct {
	Seq          uint64  `parquet:"seq"`
	TS           int64   `parquet:"ts,timestamp(nanosecond)"`
	Type         string  `parquet:"type,dict"`
	Restated     bool    `parquet:"restated"`
	Instrument   uint32  `parquet:"instrument"`
	Symbol       *string `parquet:"symbol,optional,dict"`
	PriceScale   *int32  `parquet:"price_scale,optional"`
	TickSize     *int64  `parquet:"tick_size,optional"`
	Side         *string `parquet:"side,optional,dict"`
	Price        *int64  `parquet:"price,optional"`
	Qty          *int64  `parquet:"qty,optional"`
	OrderID      *uint64 `parquet:"order_id,optional"`
	TradeID      *uint64 `parquet:"trade_id,optional"`
	Hidden       *bool   `parquet:"hidden,optional"`
	BidPrice     *int64  `parquet:"bid_price,optional"`
	BidQty       *int64  `parquet:"bid_qty,optional"`
	AskPrice     *int64  `parquet:"ask_price,optional"`
	AskQty       *int64  `parquet:"ask_qty,optional"`
	Status       *string `parquet:"status,optional,dict"`
	StatusReason *string `parquet:"status_reason,optional,dict"`
	GapFirst     *uint64 `parquet:"gap_first,optional"`
	GapCount     *uint64 `parquet:"gap_count,optional"`
	GapSource    *string `parquet:"gap_source,optional,dict"`
	Strategy     *uint32 `parquet:"strategy,optional"`
	TriggerSeq   *uint64 `parquet:"trigger_seq,optional"`
	TriggerTS    *int64  `parquet:"trigger_ts,optional,timestamp(nanosecond)"`
	SeenTS       *int64  `parquet:"seen_ts,optional,timestamp(nanosecond)"`
	RequestedTS  *int64  `parquet:"requested_ts,optional,timestamp(nanosecond)"`
	ReceivedTS   *int64  `parquet:"received_ts,optional,timestamp(nanosecond)"`
	DecidedTS    *int64  `parquet:"decided_ts,optional,timestamp(nanosecond)"`
	Verdict      *string `parquet:"verdict,optional,dict"`
	RiskReason   *uint16 `parquet:"risk_reason,optional"`
	Raw          []byte  `parquet:"raw,optional"`
	RecvTS       *int64  `parquet:"recv_ts,optional,timestamp(nanosecond)"`
	SourceSeq    *uint64 `parquet:"source_seq,optional"`
}

// fill points p at r's values (nil for r's null columns).
func (p *prow) fill(r *record) {
	p.Seq, p.TS, p.Type, p.Restated, p.Instrument = r.seq, r.ts, r.typ, r.restated, r.instrument
	p.Symbol = ptr(r, colSymbol, &r.symbol)
	p.PriceScale = ptr(r, colPriceScale, &r.scale)
	p.TickSize = ptr(r, colTickSize, &r.tickSize)
	p.Side = ptr(r, colSide, &r.side)
	p.Price = ptr(r, colPrice, &r.price)
	p.Qty = ptr(r, colQty, &r.qty)
	p.OrderID = ptr(r, colOrderID, &r.orderID)
	p.TradeID = ptr(r, colTradeID, &r.tradeID)
	p.Hidden = ptr(r, colHidden, &r.hidden)
	p.BidPrice = ptr(r, colBidPrice, &r.bidPrice)
	p.BidQty = ptr(r, colBidQty, &r.bidQty)
	p.AskPrice = ptr(r, colAskPrice, &r.askPrice)
	p.AskQty = ptr(r, colAskQty, &r.askQty)
	p.Status = ptr(r, colStatus, &r.status)
	p.StatusReason = ptr(r, colStatusReason, &r.statusReason)
	p.GapFirst = ptr(r, colGapFirst, &r.gapFirst)
	p.GapCount = ptr(r, colGapCount, &r.gapCount)
	p.GapSource = ptr(r, colGapSource, &r.gapSource)
	p.Strategy = ptr(r, colStrategy, &r.strategy)
	p.TriggerSeq = ptr(r, colTriggerSeq, &r.triggerSeq)
	p.TriggerTS = ptr(r, colTriggerTS, &r.triggerTS)
	p.SeenTS = ptr(r, colSeenTS, &r.seenTS)
	p.RequestedTS = ptr(r, colRequestedTS, &r.requestedTS)
	p.ReceivedTS = ptr(r, colReceivedTS, &r.receivedTS)
	p.DecidedTS = ptr(r, colDecidedTS, &r.decidedTS)
	p.Verdict = ptr(r, colVerdict, &r.verdict)
	p.RiskReason = ptr(r, colRiskReason, &r.riskReason)
	p.Raw = nil
	if r.present(colRaw) {
		p.Raw = r.raw
		if p.Raw == nil {
			p.Raw = []byte{} // an empty raw payload is a value, not a null
		}
	}
	p.RecvTS = ptr(r, colRecvTS, &r.recvTS)
	p.SourceSeq = ptr(r, colSourceSeq, &r.sourceSeq)
}

func ptr[T any](r *record, col int, v *T) *T {
	if r.present(col) {
		return v
	}
	return nil
}

// batchRows is how many rows are decoded before they are handed to the
// Parquet writer in one call; maxArena bounds the raw payload bytes a batch
// holds (a batch of large raw frames is handed over early).
const (
	batchRows = 1024
	maxArena  = 8 << 20
)

// ParquetWriter writes frames as rows of a Parquet file. Create it with
// NewParquet, call WriteFrame per frame and Close once. It is not safe for
// concurrent use.
type ParquetWriter struct {
	w     *parquet.GenericWriter[prow]
	dec   *decoder
	recs  []record
	rows  []prow
	n     int    // rows in the batch
	arena []byte // raw payloads of the batch
	insts instruments
	total int64
	err   error
}

// NewParquet returns a writer of a Parquet file to out. Nothing is written
// to out until the first row group is full or Close is called.
func NewParquet(out io.Writer, opts ParquetOptions) (*ParquetWriter, error) {
	codec, err := opts.Compression.codec()
	if err != nil {
		return nil, err
	}
	if opts.RowGroupRows < 0 {
		return nil, fmt.Errorf("export: RowGroupRows %d is negative", opts.RowGroupRows)
	}
	if opts.RowGroupRows == 0 {
		opts.RowGroupRows = DefaultRowGroupRows
	}
	if opts.CreatedBy == "" {
		opts.CreatedBy = "mdjournal export"
	}
	cfg, err := parquet.NewWriterConfig(
		parquet.MaxRowsPerRowGroup(opts.RowGroupRows),
		parquet.Compression(codec),
		parquet.CreatedBy(opts.CreatedBy, ColumnsVersion, ""),
		parquet.KeyValueMetadata(KeyVersion, ColumnsVersion),
		parquet.KeyValueMetadata(KeyPriceEncoding, PriceEncoding),
	)
	if err != nil {
		return nil, fmt.Errorf("export: parquet writer: %w", err)
	}
	pw := &ParquetWriter{
		w:    parquet.NewGenericWriter[prow](out, cfg),
		dec:  newDecoder(),
		recs: make([]record, batchRows),
		rows: make([]prow, batchRows),
	}
	return pw, nil
}

// WriteFrame appends f as one row. cat is the catalogue in effect for f
// (reader.Reader.Catalog right after the reader returned f) and gives the
// symbol and price scale; nil leaves them null. f.Payload need only be
// valid during the call. It allocates nothing (a new instrument or a new
// reason or source text costs one allocation).
func (pw *ParquetWriter) WriteFrame(f *journal.Frame, cat *journal.Catalog) error {
	if pw.err != nil {
		return pw.err
	}
	r := &pw.recs[pw.n]
	pw.dec.decode(r, f, cat)
	if r.present(colRaw) {
		// The payload aliases the reader's mapping of its segment, which
		// may be unmapped before the batch is written: copy it.
		start := len(pw.arena)
		pw.arena = append(pw.arena, r.raw...)
		r.raw = pw.arena[start:len(pw.arena):len(pw.arena)]
	}
	pw.insts.see(r)
	pw.n++
	if pw.n == len(pw.recs) || len(pw.arena) >= maxArena {
		return pw.flushBatch()
	}
	return nil
}

// flushBatch hands the decoded rows to the Parquet writer (which buffers
// them in its row group and writes the row group out when it is full).
func (pw *ParquetWriter) flushBatch() error {
	if pw.n == 0 {
		return nil
	}
	for i := range pw.n {
		pw.rows[i].fill(&pw.recs[i])
	}
	_, err := pw.w.Write(pw.rows[:pw.n])
	pw.total += int64(pw.n)
	pw.n = 0
	if cap(pw.arena) > 4*maxArena {
		pw.arena = nil // one huge batch must not pin its arena forever
	}
	pw.arena = pw.arena[:0]
	if err != nil {
		pw.err = fmt.Errorf("export: parquet: %w", err)
	}
	return pw.err
}

// Rows is the number of rows written so far.
func (pw *ParquetWriter) Rows() int64 { return pw.total + int64(pw.n) }

// Close writes the last row group and the file footer (with the
// KeyInstruments metadata). It does not close the underlying writer.
func (pw *ParquetWriter) Close() error {
	if err := pw.flushBatch(); err != nil {
		return err
	}
	b, err := json.Marshal(pw.insts.list())
	if err != nil {
		return err
	}
	pw.w.SetKeyValueMetadata(KeyInstruments, string(b))
	if err := pw.w.Close(); err != nil {
		pw.err = fmt.Errorf("export: parquet: %w", err)
		return pw.err
	}
	pw.err = errClosed
	return nil
}

var errClosed = errors.New("export: writer is closed")

// instruments remembers, for the file metadata, every instrument that has a
// row and its latest definition. Data rows cost one comparison.
type instruments struct {
	m    map[uint32]*Instrument
	last *Instrument
}

func (s *instruments) see(r *record) {
	if r.instrument == 0 && !r.present(colSymbol) {
		return
	}
	in := s.last
	if in == nil || in.ID != r.instrument {
		if in = s.m[r.instrument]; in == nil {
			if s.m == nil {
				s.m = make(map[uint32]*Instrument)
			}
			in = &Instrument{ID: r.instrument}
			s.m[r.instrument] = in
		}
		s.last = in
	}
	if r.present(colSymbol) {
		in.Symbol, in.PriceScale, in.TickSize = r.symbol, r.scale, r.defTick
	}
}

func (s *instruments) list() []Instrument {
	out := make([]Instrument, 0, len(s.m))
	for _, in := range s.m {
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
