package export

import (
	"bytes"
	"strconv"

	"github.com/mdjournal/mdjournal/journal"
)

// Column indexes, in output order. The optional columns (after
// colInstrument) have a presence bit each in record.has.
const (
	colSeq = iota
	colTS
	colType
	colRestated
	colInstrument
	colSymbol
	colPriceScale
	colTickSize
	colSide
	colPrice
	colQty
	colOrderID
	colTradeID
	colHidden
	colBidPrice
	colBidQty
	colAskPrice
	colAskQty
	colStatus
	colStatusReason
	colGapFirst
	colGapCount
	colGapSource
	colStrategy
	colTriggerSeq
	colTriggerTS
	colSeenTS
	colRequestedTS
	colReceivedTS
	colDecidedTS
	colVerdict
	colRiskReason
	colRaw
	colRecvTS
	colSourceSeq
	numColumns
)

var columnNames = [numColumns]string{
	"seq", "ts", "type", "restated", "instrument", "symbol", "price_scale", "tick_size",
	"side", "price", "qty", "order_id", "trade_id", "hidden",
	"bid_price", "bid_qty", "ask_price", "ask_qty",
	"status", "status_reason", "gap_first", "gap_count", "gap_source",
	"strategy", "trigger_seq", "trigger_ts", "seen_ts", "requested_ts", "received_ts", "decided_ts",
	"verdict", "risk_reason", "raw", "recv_ts", "source_seq",
}

// Columns returns the column names, in the order both formats write them.
func Columns() []string { return append([]string(nil), columnNames[:]...) }

// record is one decoded frame: plain values and a presence bit per
// optional column. The strings are static, interned or the catalogue's, so
// filling a record allocates nothing; raw aliases the frame's payload.
type record struct {
	has        uint64 // 1<<col for each optional column that is not null
	seq        uint64
	ts         int64
	typ        string
	restated   bool
	instrument uint32

	symbol     string
	scale      int32
	tickSize   int64
	side       string
	price, qty int64
	orderID    uint64
	tradeID    uint64
	hidden     bool
	bidPrice   int64
	bidQty     int64
	askPrice   int64
	askQty     int64

	status       string
	statusReason string
	gapFirst     uint64
	gapCount     uint64
	gapSource    string

	strategy    uint32
	triggerSeq  uint64
	triggerTS   int64
	seenTS      int64
	requestedTS int64
	receivedTS  int64
	decidedTS   int64
	verdict     string
	riskReason  uint16

	raw       []byte
	recvTS    int64
	sourceSeq uint64

	defTick int64 // the definition's tick size (for the metadata), with colSymbol
}

func (r *record) set(col int) { r.has |= 1 << col }

func (r *record) present(col int) bool { return r.has&(1<<col) != 0 }

// Static names for one-byte enumerations: index = value. Values the format
// does not define are their decimal number (so nothing is lost and nothing
// is allocated per row).
var sideNames, statusNames, verdictNames [256]string

func init() {
	for i := range 256 {
		n := strconv.Itoa(i)
		sideNames[i], statusNames[i], verdictNames[i] = n, n, n
	}
	sideNames[journal.SideNone], sideNames[journal.SideBid], sideNames[journal.SideAsk] = "none", "bid", "ask"
	for _, s := range []uint8{journal.StatusHalted, journal.StatusPaused, journal.StatusQuotationOnly, journal.StatusTrading} {
		statusNames[s] = journal.StatusName(s)
	}
	verdictNames[journal.RiskAccepted], verdictNames[journal.RiskRejected] = "accepted", "rejected"
}

// interner turns short padded byte arrays (symbols, reason codes, gap
// sources) into strings, allocating each distinct one once. It is bounded:
// past maxInterned distinct keys it allocates per call instead of growing.
// trim picks the journal's rule for the field: a symbol ends at its first
// NUL (InstrumentDef.SymbolString), a reason or source loses trailing NULs
// and spaces (TradingStatus.ReasonString, Gap.SourceString).
type interner struct {
	m    map[[journal.SymbolLen]byte]string
	trim bool
}

const maxInterned = 1 << 14

func (in *interner) get(b []byte) string {
	var k [journal.SymbolLen]byte
	copy(k[:], b)
	if s, ok := in.m[k]; ok {
		return s
	}
	var s string
	if in.trim {
		s = string(bytes.TrimRight(b, "\x00 "))
	} else if i := bytes.IndexByte(b, 0); i >= 0 {
		s = string(b[:i])
	} else {
		s = string(b)
	}
	if in.m == nil {
		in.m = make(map[[journal.SymbolLen]byte]string)
	}
	if len(in.m) < maxInterned {
		in.m[k] = s
	}
	return s
}

// decoder fills records from frames.
type decoder struct {
	symbols interner // cut at the first NUL
	texts   interner // trailing NULs and spaces trimmed
}

func newDecoder() *decoder { return &decoder{texts: interner{trim: true}} }

// decode fills r from f. cat is the catalogue in effect for f (after
// applying f, as reader.Reader.Catalog is when f is returned); it may be
// nil. A payload too short for its type (impossible for a frame a reader
// returns: it checks sizes) leaves that type's columns null.
func (d *decoder) decode(r *record, f *journal.Frame, cat *journal.Catalog) {
	*r = record{
		seq: f.Seq, ts: f.TS, typ: typeName(f.Type), restated: f.Restated(), instrument: f.Instrument,
	}
	if cat != nil && f.Instrument != 0 {
		if in, ok := cat.Lookup(f.Instrument); ok && in.Symbol != "" {
			r.symbol, r.scale, r.defTick = in.Symbol, in.PriceScale, in.TickSize
			r.set(colSymbol)
			r.set(colPriceScale)
		}
	}
	if f.Flags&journal.FrameSource != 0 {
		r.recvTS, r.sourceSeq = f.RecvTS, f.SourceSeq
		r.set(colRecvTS)
		r.set(colSourceSeq)
	}
	p := f.Payload
	switch f.Type {
	case journal.TypeInstrumentDef:
		var def journal.InstrumentDef
		if def.Decode(p) != nil {
			return
		}
		// The row describes the definition it carries, whatever the
		// catalogue passed in says.
		r.symbol, r.scale, r.tickSize, r.defTick = d.symbols.get(def.Symbol[:]), def.PriceScale, def.TickSize, def.TickSize
		r.has |= 1<<colSymbol | 1<<colPriceScale | 1<<colTickSize
	case journal.TypeTrade:
		var t journal.Trade
		if t.Decode(p) != nil {
			return
		}
		r.side, r.price, r.qty, r.tradeID, r.hidden = sideNames[t.Aggressor], t.Price, t.Qty, t.TradeID, t.Flags&journal.FlagHidden != 0
		r.has |= 1<<colSide | 1<<colPrice | 1<<colQty | 1<<colTradeID | 1<<colHidden
	case journal.TypeQuote:
		var q journal.Quote
		if q.Decode(p) != nil {
			return
		}
		r.bidPrice, r.bidQty, r.askPrice, r.askQty = q.BidPrice, q.BidQty, q.AskPrice, q.AskQty
		r.has |= 1<<colBidPrice | 1<<colBidQty | 1<<colAskPrice | 1<<colAskQty
	case journal.TypeBookLevel:
		var l journal.BookLevel
		if l.Decode(p) != nil {
			return
		}
		r.side, r.price, r.qty = sideNames[l.Side], l.Price, l.Qty
		r.has |= 1<<colSide | 1<<colPrice | 1<<colQty
	case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
		var o journal.Order
		if o.Decode(p) != nil {
			return
		}
		r.orderID, r.side, r.price, r.qty, r.hidden = o.OrderID, sideNames[o.Side], o.Price, o.Qty, o.Flags&journal.FlagHidden != 0
		r.has |= 1<<colOrderID | 1<<colSide | 1<<colPrice | 1<<colQty | 1<<colHidden
	case journal.TypeTradingStatus:
		var s journal.TradingStatus
		if s.Decode(p) != nil {
			return
		}
		r.status, r.statusReason = statusNames[s.Status], d.texts.get(s.Reason[:])
		r.has |= 1<<colStatus | 1<<colStatusReason
	case journal.TypeGap:
		var g journal.Gap
		if g.Decode(p) != nil {
			return
		}
		r.gapFirst, r.gapCount, r.gapSource = g.First, g.Count, d.texts.get(g.Source[:])
		r.has |= 1<<colGapFirst | 1<<colGapCount | 1<<colGapSource
	case journal.TypeOrderRequest:
		var o journal.OrderRequest
		if o.Decode(p) != nil {
			return
		}
		r.orderID, r.side, r.price, r.qty, r.hidden = o.OrderID, sideNames[o.Side], o.Price, o.Qty, o.Flags&journal.FlagHidden != 0
		r.strategy, r.triggerSeq, r.triggerTS, r.seenTS, r.decidedTS = o.Strategy, o.TriggerSeq, o.TriggerTS, o.Seen, o.Decided
		r.has |= 1<<colOrderID | 1<<colSide | 1<<colPrice | 1<<colQty | 1<<colHidden |
			1<<colStrategy | 1<<colTriggerSeq | 1<<colTriggerTS | 1<<colSeenTS | 1<<colDecidedTS
	case journal.TypeRiskDecision:
		var o journal.RiskDecision
		if o.Decode(p) != nil {
			return
		}
		r.orderID, r.side, r.price, r.qty = o.OrderID, sideNames[o.Side], o.Price, o.Qty
		r.verdict, r.riskReason = verdictNames[o.Verdict], o.Reason
		r.strategy, r.triggerSeq, r.requestedTS, r.receivedTS, r.decidedTS = o.Strategy, o.TriggerSeq, o.Requested, o.Received, o.Decided
		r.has |= 1<<colOrderID | 1<<colSide | 1<<colPrice | 1<<colQty | 1<<colVerdict | 1<<colRiskReason |
			1<<colStrategy | 1<<colTriggerSeq | 1<<colRequestedTS | 1<<colReceivedTS | 1<<colDecidedTS
	case journal.TypeRaw:
		r.raw = p
		r.set(colRaw)
	}
}

// typeNames are the message type names, allocated once (MsgType.String
// builds "type_N" per call for unknown types).
var typeNames [256]string

func init() {
	for i := range typeNames {
		typeNames[i] = journal.MsgType(i).String()
	}
}

func typeName(t journal.MsgType) string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return t.String()
}
