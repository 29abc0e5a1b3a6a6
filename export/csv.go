package export

import (
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"time"
	"unsafe"

	"github.com/mdjournal/mdjournal/journal"
)

// CSVWriter writes frames as CSV records (RFC 4180: comma-separated, CRLF
// line ends unless CSVOptions.UnixLineEnds, fields quoted when they hold a
// comma, a quote or a line break), with a header record of the column
// names. Values are rendered as
// the package doc says (Prices). Create it with NewCSV, call WriteFrame per
// frame and Close once. It is not safe for concurrent use.
type CSVWriter struct {
	w      *csv.Writer
	dec    *decoder
	rec    record
	buf    []byte
	ends   [numColumns]int
	fields [numColumns]string
	rows   int64
	err    error
}

// CSVOptions configure a CSVWriter. The zero value is RFC 4180.
type CSVOptions struct {
	// UnixLineEnds ends records with LF alone instead of CRLF (every CSV
	// reader accepts both; some Unix tools prefer LF).
	UnixLineEnds bool
}

// NewCSV returns a writer of CSV to out. The header record is written
// (buffered) at once, so an export of no frames is a header alone.
func NewCSV(out io.Writer, opts CSVOptions) *CSVWriter {
	cw := &CSVWriter{w: csv.NewWriter(out), dec: newDecoder(), buf: make([]byte, 0, 512)}
	cw.w.UseCRLF = !opts.UnixLineEnds
	if err := cw.w.Write(columnNames[:]); err != nil {
		cw.err = fmt.Errorf("export: csv: %w", err)
	}
	return cw
}

// WriteFrame appends f as one record; cat is as for ParquetWriter.WriteFrame.
// It allocates nothing (beyond what ParquetWriter.WriteFrame also does).
func (cw *CSVWriter) WriteFrame(f *journal.Frame, cat *journal.Catalog) error {
	if cw.err != nil {
		return cw.err
	}
	r := &cw.rec
	cw.dec.decode(r, f, cat)
	b := cw.buf[:0]
	scale := int32(0) // plain integers when no definition is known
	if r.present(colPriceScale) {
		scale = r.scale
	}
	for c := range numColumns {
		if c <= colInstrument || r.present(c) {
			b = r.appendCSV(b, c, scale)
		}
		cw.ends[c] = len(b)
	}
	cw.buf = b
	// The fields are views of cw.buf, which is not touched again until
	// csv.Writer.Write has copied them into its own buffer: no copy needed.
	start := 0
	for c := range numColumns {
		cw.fields[c] = bytesView(b[start:cw.ends[c]])
		start = cw.ends[c]
	}
	if err := cw.w.Write(cw.fields[:]); err != nil {
		cw.err = fmt.Errorf("export: csv: %w", err)
		return cw.err
	}
	cw.rows++
	return nil
}

// bytesView is b as a string without a copy. b must not change while the
// string is in use.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Rows is the number of records written so far (the header not counted).
func (cw *CSVWriter) Rows() int64 { return cw.rows }

// Close flushes the records to the underlying writer (which it does not
// close) and reports any write error.
func (cw *CSVWriter) Close() error {
	if cw.err != nil {
		return cw.err
	}
	cw.w.Flush()
	if err := cw.w.Error(); err != nil {
		cw.err = fmt.Errorf("export: csv: %w", err)
		return cw.err
	}
	cw.err = errClosed
	return nil
}

// appendCSV renders column c of r; scale is the row's price scale.
func (r *record) appendCSV(b []byte, c int, scale int32) []byte {
	switch c {
	case colSeq:
		return strconv.AppendUint(b, r.seq, 10)
	case colTS:
		return appendTS(b, r.ts)
	case colType:
		return append(b, r.typ...)
	case colRestated:
		return strconv.AppendBool(b, r.restated)
	case colInstrument:
		return strconv.AppendUint(b, uint64(r.instrument), 10)
	case colSymbol:
		return append(b, r.symbol...)
	case colPriceScale:
		return strconv.AppendInt(b, int64(r.scale), 10)
	case colTickSize:
		return appendPrice(b, r.tickSize, scale)
	case colSide:
		return append(b, r.side...)
	case colPrice:
		return appendPrice(b, r.price, scale)
	case colQty:
		return strconv.AppendInt(b, r.qty, 10)
	case colOrderID:
		return strconv.AppendUint(b, r.orderID, 10)
	case colTradeID:
		return strconv.AppendUint(b, r.tradeID, 10)
	case colHidden:
		return strconv.AppendBool(b, r.hidden)
	case colBidPrice:
		return appendPrice(b, r.bidPrice, scale)
	case colBidQty:
		return strconv.AppendInt(b, r.bidQty, 10)
	case colAskPrice:
		return appendPrice(b, r.askPrice, scale)
	case colAskQty:
		return strconv.AppendInt(b, r.askQty, 10)
	case colStatus:
		return append(b, r.status...)
	case colStatusReason:
		return append(b, r.statusReason...)
	case colGapFirst:
		return strconv.AppendUint(b, r.gapFirst, 10)
	case colGapCount:
		return strconv.AppendUint(b, r.gapCount, 10)
	case colGapSource:
		return append(b, r.gapSource...)
	case colStrategy:
		return strconv.AppendUint(b, uint64(r.strategy), 10)
	case colTriggerSeq:
		return strconv.AppendUint(b, r.triggerSeq, 10)
	case colTriggerTS:
		return appendTS(b, r.triggerTS)
	case colSeenTS:
		return appendTS(b, r.seenTS)
	case colRequestedTS:
		return appendTS(b, r.requestedTS)
	case colReceivedTS:
		return appendTS(b, r.receivedTS)
	case colDecidedTS:
		return appendTS(b, r.decidedTS)
	case colVerdict:
		return append(b, r.verdict...)
	case colRiskReason:
		return strconv.AppendUint(b, uint64(r.riskReason), 10)
	case colRaw:
		return hex.AppendEncode(b, r.raw)
	case colRecvTS:
		return appendTS(b, r.recvTS)
	case colSourceSeq:
		return strconv.AppendUint(b, r.sourceSeq, 10)
	}
	return b
}

// appendTS renders Unix ns as RFC 3339 with nanoseconds, UTC (trailing
// zeros of the fraction dropped, as journalctl dump prints it).
func appendTS(b []byte, ns int64) []byte {
	return time.Unix(0, ns).UTC().AppendFormat(b, time.RFC3339Nano)
}

// appendPrice appends journal.FormatPrice(p, scale) without allocating.
func appendPrice(b []byte, p int64, scale int32) []byte {
	if scale <= 0 {
		return strconv.AppendInt(b, p, 10)
	}
	if scale > journal.MaxPriceScale+1 {
		b = strconv.AppendInt(b, p, 10)
		b = append(b, "e-"...)
		return strconv.AppendInt(b, int64(scale), 10)
	}
	u := uint64(p)
	if p < 0 {
		b = append(b, '-')
		u = -u
	}
	var buf [24]byte
	d := strconv.AppendUint(buf[:0], u, 10)
	n, sc := len(d), int(scale)
	if n <= sc { // 0.000ddd
		b = append(b, '0', '.')
		b = append(b, zeros[:sc-n]...)
		return append(b, d...)
	}
	b = append(b, d[:n-sc]...)
	b = append(b, '.')
	return append(b, d[n-sc:]...)
}

const zeros = "0000000000000000000" // MaxPriceScale+1 of them
