package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"

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

// Compression codecs. Zstd is zstd's fastest level: on market data it
// compresses within 4% of the default level for 70% of its CPU time.
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
		return &zstd.Codec{Level: zstd.SpeedFastest}, nil
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

// prow declares the Parquet schema: its fields, in order, are the columns
// (parquet.SchemaOf derives names, types and encodings from the tags).
// Rows are not written through it: ParquetWriter fills one slice of
// parquet.Value per column and hands each to its column writer, which costs
// a third of going through parquet-go's reflection over pointer fields.
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

// rowSchema is the Parquet schema of every export.
var rowSchema = parquet.SchemaOf(prow{})

// nullValues[c] is the null of optional column c.
var nullValues [numColumns]parquet.Value

func init() {
	for c := range nullValues {
		nullValues[c] = parquet.Value{}.Level(0, 0, c)
	}
}

// putRow stores r as row n of the per-column value slices: the physical
// values (an unsigned column holds the same bits in INT32/INT64, as
// Parquet's unsigned logical types say), at definition level 1 in an
// optional column, nulls elsewhere. Strings and bytes are referenced, not
// copied: they stay valid until the batch is handed over, and the column
// writers copy them.
func (vals *columnValues) putRow(n int, r *record) {
	vals[colSeq][n] = level(parquet.Int64Value(int64(r.seq)), 0, colSeq)
	vals[colTS][n] = level(parquet.Int64Value(r.ts), 0, colTS)
	vals[colType][n] = level(strValue(r.typ), 0, colType)
	vals[colRestated][n] = level(parquet.BooleanValue(r.restated), 0, colRestated)
	vals[colInstrument][n] = level(parquet.Int32Value(int32(r.instrument)), 0, colInstrument)
	for c := colInstrument + 1; c < numColumns; c++ {
		vals[c][n] = nullValues[c]
	}
	for h := r.has; h != 0; h &= h - 1 {
		c := bits.TrailingZeros64(h)
		vals[c][n] = level(r.value(c), 1, c)
	}
}

func level(v parquet.Value, def, c int) parquet.Value {
	v.SetDefinitionLevel(def)
	v.SetColumnIndex(c)
	return v
}

// value returns optional column c of r (present) as a parquet.Value.
func (r *record) value(c int) parquet.Value {
	switch c {
	case colSymbol:
		return strValue(r.symbol)
	case colPriceScale:
		return parquet.Int32Value(r.scale)
	case colTickSize:
		return parquet.Int64Value(r.tickSize)
	case colSide:
		return strValue(r.side)
	case colPrice:
		return parquet.Int64Value(r.price)
	case colQty:
		return parquet.Int64Value(r.qty)
	case colOrderID:
		return parquet.Int64Value(int64(r.orderID))
	case colTradeID:
		return parquet.Int64Value(int64(r.tradeID))
	case colHidden:
		return parquet.BooleanValue(r.hidden)
	case colBidPrice:
		return parquet.Int64Value(r.bidPrice)
	case colBidQty:
		return parquet.Int64Value(r.bidQty)
	case colAskPrice:
		return parquet.Int64Value(r.askPrice)
	case colAskQty:
		return parquet.Int64Value(r.askQty)
	case colStatus:
		return strValue(r.status)
	case colStatusReason:
		return strValue(r.statusReason)
	case colGapFirst:
		return parquet.Int64Value(int64(r.gapFirst))
	case colGapCount:
		return parquet.Int64Value(int64(r.gapCount))
	case colGapSource:
		return strValue(r.gapSource)
	case colStrategy:
		return parquet.Int32Value(int32(r.strategy))
	case colTriggerSeq:
		return parquet.Int64Value(int64(r.triggerSeq))
	case colTriggerTS:
		return parquet.Int64Value(r.triggerTS)
	case colSeenTS:
		return parquet.Int64Value(r.seenTS)
	case colRequestedTS:
		return parquet.Int64Value(r.requestedTS)
	case colReceivedTS:
		return parquet.Int64Value(r.receivedTS)
	case colDecidedTS:
		return parquet.Int64Value(r.decidedTS)
	case colVerdict:
		return strValue(r.verdict)
	case colRiskReason:
		return parquet.Int32Value(int32(r.riskReason))
	case colRaw:
		return parquet.ByteArrayValue(r.raw)
	case colRecvTS:
		return parquet.Int64Value(r.recvTS)
	case colSourceSeq:
		return parquet.Int64Value(int64(r.sourceSeq))
	}
	return parquet.Value{}
}

func strValue(s string) parquet.Value {
	return parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// batchRows is how many rows are decoded before they are handed to the
// column writers; maxArena bounds the raw payload bytes a batch holds (a
// batch of large raw frames is handed over early).
const (
	batchRows = 1024
	maxArena  = 8 << 20
)

// columnValues are a batch of rows, one slice per column.
type columnValues [numColumns][]parquet.Value

// ParquetWriter writes frames as rows of a Parquet file. Create it with
// NewParquet, call WriteFrame per frame and Close once. It is not safe for
// concurrent use.
type ParquetWriter struct {
	w        *parquet.GenericWriter[prow]
	dec      *decoder
	rec      record
	vals     columnValues
	n        int    // rows in the batch
	arena    []byte // raw payloads of the batch
	groupMax int64  // rows per row group
	inGroup  int64  // rows handed to the current row group
	insts    instruments
	total    int64
	err      error
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
		rowSchema,
		parquet.Compression(codec),
		// Version 1 data pages: what every Parquet reader reads (v2 pages
		// are parquet-go's default, and some older readers reject them).
		parquet.DataPageVersion(1),
		parquet.KeyValueMetadata(KeyVersion, ColumnsVersion),
		parquet.KeyValueMetadata(KeyPriceEncoding, PriceEncoding),
	)
	if err != nil {
		return nil, fmt.Errorf("export: parquet writer: %w", err)
	}
	cfg.CreatedBy = opts.CreatedBy
	pw := &ParquetWriter{
		w:        parquet.NewGenericWriter[prow](out, cfg),
		dec:      newDecoder(),
		groupMax: opts.RowGroupRows,
	}
	for c := range pw.vals {
		pw.vals[c] = make([]parquet.Value, batchRows)
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
	r := &pw.rec
	pw.dec.decode(r, f, cat)
	if r.present(colRaw) {
		// The payload aliases the reader's mapping of its segment, which
		// may be unmapped before the batch is written: copy it.
		start := len(pw.arena)
		pw.arena = append(pw.arena, r.raw...)
		r.raw = pw.arena[start:len(pw.arena):len(pw.arena)]
	}
	pw.insts.see(r)
	pw.vals.putRow(pw.n, r)
	pw.n++
	if pw.n == batchRows || len(pw.arena) >= maxArena || pw.inGroup+int64(pw.n) == pw.groupMax {
		return pw.flushBatch()
	}
	return nil
}

// flushBatch hands the decoded rows to the column writers, column by
// column, and ends the row group when it is full (parquet-go then encodes,
// compresses and writes it out).
func (pw *ParquetWriter) flushBatch() error {
	if pw.n == 0 {
		return nil
	}
	cols := pw.w.ColumnWriters()
	for c := range numColumns {
		vs := pw.vals[c][:pw.n]
		if _, err := cols[c].WriteRowValues(vs); err != nil {
			pw.err = fmt.Errorf("export: parquet: column %s: %w", columnNames[c], err)
			return pw.err
		}
		clear(vs) // drop the references to the batch's strings and arena
	}
	pw.total += int64(pw.n)
	pw.inGroup += int64(pw.n)
	pw.n = 0
	if cap(pw.arena) > 4*maxArena {
		pw.arena = nil // one huge batch must not pin its arena forever
	}
	pw.arena = pw.arena[:0]
	if pw.inGroup >= pw.groupMax {
		pw.inGroup = 0
		if err := pw.w.Flush(); err != nil {
			pw.err = fmt.Errorf("export: parquet: %w", err)
		}
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
