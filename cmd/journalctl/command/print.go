package command

import (
	"bufio"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mdjournal/mdjournal/journal"
)

// Output formats of frame-printing verbs (dump, tail, ring).
const (
	fmtText = "text"
	fmtJSON = "json"
	fmtCSV  = "csv"
)

func checkFormat(f string, allowed ...string) error {
	for _, a := range allowed {
		if f == a {
			return nil
		}
	}
	return usagef("--format %q: want one of %v", f, allowed)
}

// printer writes frames in one of the formats. Symbols and price scales come
// from a catalogue (journal.Catalog): a reader keeps it current from any
// start position (every segment re-states the definitions, format.md §3.4);
// frames passing through a ring are applied to it as they come.
type printer struct {
	w      *bufio.Writer
	format string
	cat    *journal.Catalog
	csv    *csv.Writer
	header bool
	buf    []byte
	loc    *time.Location // printed timestamps (nil: UTC)
}

// ts renders a timestamp in the printer's zone (UTC unless --tz).
func (p *printer) ts(ns int64) string {
	if p.loc == nil || p.loc == time.UTC {
		return tsString(ns)
	}
	return time.Unix(0, ns).In(p.loc).Format(time.RFC3339Nano)
}

func newPrinter(w io.Writer, format string, cat *journal.Catalog) *printer {
	if cat == nil {
		cat = journal.NewCatalog()
	}
	p := &printer{w: bufio.NewWriterSize(w, 64<<10), format: format, cat: cat}
	p.csv = csv.NewWriter(p.w)
	return p
}

func (p *printer) flush() error {
	p.csv.Flush()
	return p.w.Flush()
}

func tsString(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// csvColumns is the fixed CSV header (RFC 4180, written by encoding/csv).
var csvColumns = []string{"seq", "ts", "type", "instrument", "symbol", "side", "price", "qty", "order_id", "trade_id",
	"bid_price", "bid_qty", "ask_price", "ask_qty", "flags", "detail"}

// field is one decoded payload field: its value rendered, and whether it is
// a JSON string (prices are decimal strings; quantities and ids numbers).
type field struct {
	k, v   string
	quoted bool
}

func (p *printer) price(id uint32, v int64) string { return p.cat.FormatPrice(id, v) }

func (p *printer) decode(f *journal.Frame) []field {
	id := f.Instrument
	px := func(k string, v int64) field { return field{k, p.price(id, v), true} }
	num := func(k string, v int64) field { return field{k, strconv.FormatInt(v, 10), false} }
	unum := func(k string, v uint64) field { return field{k, strconv.FormatUint(v, 10), false} }
	str := func(k, v string) field { return field{k, v, true} }
	hidden := func(fs []field, flags uint8) []field {
		if flags&journal.FlagHidden != 0 {
			fs = append(fs, field{"hidden", "true", false})
		}
		return fs
	}
	switch f.Type {
	case journal.TypeInstrumentDef:
		var d journal.InstrumentDef
		if d.Decode(f.Payload) == nil {
			return []field{str("symbol_def", d.SymbolString()), num("price_scale", int64(d.PriceScale)), str("tick_size", journal.FormatPrice(d.TickSize, d.PriceScale))}
		}
	case journal.TypeTrade:
		var t journal.Trade
		if t.Decode(f.Payload) == nil {
			return hidden([]field{px("price", t.Price), num("qty", t.Qty), str("aggressor", aggressor(t.Aggressor)), unum("trade_id", t.TradeID)}, t.Flags)
		}
	case journal.TypeQuote:
		var q journal.Quote
		if q.Decode(f.Payload) == nil {
			return []field{px("bid_price", q.BidPrice), num("bid_qty", q.BidQty), px("ask_price", q.AskPrice), num("ask_qty", q.AskQty)}
		}
	case journal.TypeBookLevel:
		var l journal.BookLevel
		if l.Decode(f.Payload) == nil {
			return []field{str("side", l.Side.String()), px("price", l.Price), num("qty", l.Qty)}
		}
	case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
		var o journal.Order
		if o.Decode(f.Payload) == nil {
			return hidden([]field{unum("order_id", o.OrderID), str("side", o.Side.String()), px("price", o.Price), num("qty", o.Qty)}, o.Flags)
		}
	case journal.TypeTradingStatus:
		var s journal.TradingStatus
		if s.Decode(f.Payload) == nil {
			fs := []field{str("status", journal.StatusName(s.Status))}
			if r := s.ReasonString(); r != "" {
				fs = append(fs, str("reason", r))
			}
			return fs
		}
	case journal.TypeGap:
		var g journal.Gap
		if g.Decode(f.Payload) == nil {
			return []field{unum("first", g.First), unum("count", g.Count), str("source", g.SourceString())}
		}
	case journal.TypeOrderRequest:
		var o journal.OrderRequest
		if o.Decode(f.Payload) == nil {
			return []field{unum("order_id", o.OrderID), str("side", o.Side.String()), px("price", o.Price), num("qty", o.Qty),
				unum("strategy", uint64(o.Strategy)), unum("trigger_seq", o.TriggerSeq), str("trigger_ts", p.ts(o.TriggerTS)),
				str("seen", p.ts(o.Seen)), str("decided", p.ts(o.Decided))}
		}
	case journal.TypeRiskDecision:
		var d journal.RiskDecision
		if d.Decode(f.Payload) == nil {
			verdict := "accepted"
			if d.Verdict != journal.RiskAccepted {
				verdict = "rejected"
			}
			return []field{unum("order_id", d.OrderID), str("side", d.Side.String()), px("price", d.Price), num("qty", d.Qty),
				str("verdict", verdict), unum("reason", uint64(d.Reason)), unum("strategy", uint64(d.Strategy)), unum("trigger_seq", d.TriggerSeq),
				str("requested", p.ts(d.Requested)), str("received", p.ts(d.Received)), str("decided", p.ts(d.Decided))}
		}
	case journal.TypeRaw:
		return []field{num("len", int64(len(f.Payload))), str("hex", hex.EncodeToString(f.Payload[:min(len(f.Payload), 64)]))}
	}
	return nil
}

// frameFields are the fields every frame has beyond its payload: the
// re-stated flag and the source trailer (format.md §3.3).
func (p *printer) frameFields(f *journal.Frame) []field {
	var fs []field
	if f.Restated() {
		fs = append(fs, field{"restated", "true", false})
	}
	if f.Flags&journal.FrameSource != 0 {
		fs = append(fs, field{"recv_ts", p.ts(f.RecvTS), true}, field{"source_seq", strconv.FormatUint(f.SourceSeq, 10), false})
	}
	return fs
}

func (p *printer) print(f *journal.Frame) error {
	p.cat.Apply(f)
	switch p.format {
	case fmtJSON:
		return p.printJSON(f)
	case fmtCSV:
		return p.printCSV(f)
	}
	return p.printText(f)
}

func (p *printer) symbolOf(f *journal.Frame) string { return p.cat.Symbol(f.Instrument) }

// printText writes one aligned line; strings are printed as they are when
// they are printable, quoted with escapes otherwise (no terminal escape
// sequence from the data ever reaches the terminal).
func (p *printer) printText(f *journal.Frame) error {
	sym := p.symbolOf(f)
	if sym == "" {
		sym = "#" + strconv.FormatUint(uint64(f.Instrument), 10)
	}
	b := p.buf[:0]
	b = appendPadLeft(b, strconv.FormatUint(f.Seq, 10), 10)
	b = append(b, "  "...)
	b = appendPadRight(b, p.ts(f.TS), 30)
	b = append(b, "  "...)
	b = appendPadRight(b, f.Type.String(), 14)
	b = append(b, "  "...)
	b = appendPadRight(b, safeText(sym), 8)
	for _, kv := range append(p.decode(f), p.frameFields(f)...) {
		b = append(b, "  "...)
		b = append(b, kv.k...)
		b = append(b, '=')
		b = append(b, safeText(kv.v)...)
	}
	b = append(b, '\n')
	p.buf = b
	_, err := p.w.Write(b)
	return err
}

func appendPadLeft(b []byte, s string, n int) []byte {
	for i := len(s); i < n; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func appendPadRight(b []byte, s string, n int) []byte {
	b = append(b, s...)
	for i := len(s); i < n; i++ {
		b = append(b, ' ')
	}
	return b
}

// safeText returns s if it is printable ASCII, else a Go-quoted form of it
// (control characters and other bytes escaped).
func safeText(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// jsonString appends s as a JSON string (RFC 8259 escapes, no HTML
// escaping), the way encoding/json writes it.
func jsonString(b []byte, s string) []byte {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return append(b, strings.TrimSuffix(sb.String(), "\n")...)
}

// printJSON writes one JSON object per line, keys in a fixed order (seq, ts,
// type, instrument, symbol, the payload's fields, restated, the source
// trailer). Every string goes through encoding/json's escaping.
func (p *printer) printJSON(f *journal.Frame) error {
	b := p.buf[:0]
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, `,"ts":`...)
	b = jsonString(b, p.ts(f.TS))
	b = append(b, `,"type":`...)
	b = jsonString(b, f.Type.String())
	b = append(b, `,"instrument":`...)
	b = strconv.AppendUint(b, uint64(f.Instrument), 10)
	if sym := p.symbolOf(f); sym != "" {
		b = append(b, `,"symbol":`...)
		b = jsonString(b, sym)
	}
	for _, kv := range append(p.decode(f), p.frameFields(f)...) {
		b = append(b, ',')
		b = jsonString(b, kv.k)
		b = append(b, ':')
		if kv.quoted {
			b = jsonString(b, kv.v)
		} else {
			b = append(b, kv.v...)
		}
	}
	b = append(b, "}\n"...)
	p.buf = b
	_, err := p.w.Write(b)
	return err
}

// printCSV writes one RFC 4180 record (encoding/csv: fields with commas,
// quotes or line breaks are quoted).
func (p *printer) printCSV(f *journal.Frame) error {
	if !p.header {
		if err := p.csv.Write(csvColumns); err != nil {
			return err
		}
		p.header = true
	}
	cols := map[string]string{}
	for _, kv := range append(p.decode(f), p.frameFields(f)...) {
		cols[kv.k] = kv.v
	}
	side := cols["side"]
	if side == "" {
		side = cols["aggressor"]
	}
	var detail []string
	switch f.Type {
	case journal.TypeInstrumentDef:
		detail = append(detail, "scale="+cols["price_scale"], "tick="+cols["tick_size"])
	case journal.TypeRaw:
		detail = append(detail, cols["hex"])
	case journal.TypeTradingStatus:
		detail = append(detail, "status="+cols["status"])
		if r := cols["reason"]; r != "" {
			detail = append(detail, "reason="+r)
		}
	case journal.TypeGap:
		detail = append(detail, "first="+cols["first"], "count="+cols["count"], "source="+cols["source"])
	case journal.TypeOrderRequest, journal.TypeRiskDecision:
		for _, k := range []string{"verdict", "reason", "strategy", "trigger_seq"} {
			if v, ok := cols[k]; ok {
				detail = append(detail, k+"="+v)
			}
		}
	}
	if v, ok := cols["source_seq"]; ok {
		detail = append(detail, "source_seq="+v, "recv_ts="+cols["recv_ts"])
	}
	var flags []string
	if cols["hidden"] == "true" {
		flags = append(flags, "hidden")
	}
	if f.Restated() {
		flags = append(flags, "restated")
	}
	sym := p.symbolOf(f)
	if sym == "" {
		sym = cols["symbol_def"]
	}
	return p.csv.Write([]string{strconv.FormatUint(f.Seq, 10), p.ts(f.TS), f.Type.String(), strconv.FormatUint(uint64(f.Instrument), 10),
		sym, side, cols["price"], cols["qty"], cols["order_id"], cols["trade_id"],
		cols["bid_price"], cols["bid_qty"], cols["ask_price"], cols["ask_qty"], strings.Join(flags, " "), strings.Join(detail, " ")})
}

func aggressor(s journal.Side) string {
	switch s {
	case journal.SideBid:
		return "buy"
	case journal.SideAsk:
		return "sell"
	}
	return "unknown"
}
