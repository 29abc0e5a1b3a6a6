package command

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
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

// instruments remembers InstrumentDef frames so prices print in their
// decimal scale and instruments by symbol.
type instruments map[uint32]journal.InstrumentDef

func (in instruments) learn(f *journal.Frame) {
	if f.Type == journal.TypeInstrumentDef {
		var d journal.InstrumentDef
		if d.Decode(f.Payload) == nil {
			in[f.Instrument] = d
		}
	}
}

// preload reads the instrument definitions of the first segment, so a reader
// that starts mid-journal still prints symbols (definitions are written at
// the start of a journal; ones that come later are learnt as they pass).
func (in instruments) preload(dir string) {
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return
	}
	defer r.Close()
	seg, _ := r.Segment()
	for {
		f, ok, err := r.TryNext()
		if err != nil || !ok || f.Segment != seg {
			return
		}
		in.learn(&f)
	}
}

func (in instruments) symbol(id uint32) string {
	if d, ok := in[id]; ok {
		return d.SymbolString()
	}
	return ""
}

func (in instruments) price(id uint32, p int64) string {
	if d, ok := in[id]; ok {
		return journal.FormatPrice(p, d.PriceScale)
	}
	return strconv.FormatInt(p, 10)
}

// printer writes frames in one of the formats.
type printer struct {
	w      *bufio.Writer
	format string
	in     instruments
	header bool
	buf    []byte
}

func newPrinter(w io.Writer, format string, in instruments) *printer {
	return &printer{w: bufio.NewWriterSize(w, 64<<10), format: format, in: in}
}

func (p *printer) flush() error { return p.w.Flush() }

func tsString(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

var csvHeader = "seq,ts,type,instrument,symbol,side,price,qty,order_id,trade_id,bid_price,bid_qty,ask_price,ask_qty,flags,detail\n"

// fields is the decoded payload as ordered key/value pairs (values already
// rendered; quoted marks JSON strings).
type field struct {
	k, v   string
	quoted bool
}

func (p *printer) decode(f *journal.Frame) []field {
	id := f.Instrument
	px := func(v int64) field { return field{"", p.in.price(id, v), true} }
	kv := func(k string, v field) field { v.k = k; return v }
	num := func(k string, v int64) field { return field{k, strconv.FormatInt(v, 10), false} }
	str := func(k, v string) field { return field{k, v, true} }
	switch f.Type {
	case journal.TypeInstrumentDef:
		var d journal.InstrumentDef
		if d.Decode(f.Payload) == nil {
			return []field{str("symbol_def", d.SymbolString()), num("price_scale", int64(d.PriceScale)), str("tick_size", journal.FormatPrice(d.TickSize, d.PriceScale))}
		}
	case journal.TypeTrade:
		var t journal.Trade
		if t.Decode(f.Payload) == nil {
			fs := []field{kv("price", px(t.Price)), num("qty", t.Qty), str("aggressor", aggressor(t.Aggressor)), field{"trade_id", strconv.FormatUint(t.TradeID, 10), false}}
			if t.Flags&journal.FlagHidden != 0 {
				fs = append(fs, field{"hidden", "true", false})
			}
			return fs
		}
	case journal.TypeQuote:
		var q journal.Quote
		if q.Decode(f.Payload) == nil {
			return []field{kv("bid_price", px(q.BidPrice)), num("bid_qty", q.BidQty), kv("ask_price", px(q.AskPrice)), num("ask_qty", q.AskQty)}
		}
	case journal.TypeBookLevel:
		var l journal.BookLevel
		if l.Decode(f.Payload) == nil {
			return []field{str("side", l.Side.String()), kv("price", px(l.Price)), num("qty", l.Qty)}
		}
	case journal.TypeOrderAdd, journal.TypeOrderCancel, journal.TypeOrderDelete, journal.TypeOrderExecute:
		var o journal.Order
		if o.Decode(f.Payload) == nil {
			fs := []field{field{"order_id", strconv.FormatUint(o.OrderID, 10), false}, str("side", o.Side.String()), kv("price", px(o.Price)), num("qty", o.Qty)}
			if o.Flags&journal.FlagHidden != 0 {
				fs = append(fs, field{"hidden", "true", false})
			}
			return fs
		}
	case journal.TypeRaw:
		return []field{num("len", int64(len(f.Payload))), str("hex", hex.EncodeToString(f.Payload[:min(len(f.Payload), 64)]))}
	}
	return nil
}

func (p *printer) print(f *journal.Frame) error {
	p.in.learn(f)
	switch p.format {
	case fmtJSON:
		p.printJSON(f)
	case fmtCSV:
		p.printCSV(f)
	default:
		p.printText(f)
	}
	return nil
}

func (p *printer) printText(f *journal.Frame) {
	sym := p.in.symbol(f.Instrument)
	if sym == "" {
		sym = "#" + strconv.FormatUint(uint64(f.Instrument), 10)
	}
	fmt.Fprintf(p.w, "%10d  %-30s  %-14s  %-8s", f.Seq, tsString(f.TS), f.Type, sym)
	for _, kv := range p.decode(f) {
		fmt.Fprintf(p.w, "  %s=%s", kv.k, kv.v)
	}
	p.w.WriteByte('\n')
}

func (p *printer) printJSON(f *journal.Frame) {
	b := p.buf[:0]
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, `,"ts":"`...)
	b = time.Unix(0, f.TS).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":"`...)
	b = append(b, f.Type.String()...)
	b = append(b, `","instrument":`...)
	b = strconv.AppendUint(b, uint64(f.Instrument), 10)
	if sym := p.in.symbol(f.Instrument); sym != "" {
		b = append(b, `,"symbol":`...)
		b = strconv.AppendQuote(b, sym)
	}
	for _, kv := range p.decode(f) {
		b = append(b, ',', '"')
		b = append(b, kv.k...)
		b = append(b, '"', ':')
		if kv.quoted {
			b = strconv.AppendQuote(b, kv.v)
		} else {
			b = append(b, kv.v...)
		}
	}
	b = append(b, "}\n"...)
	p.w.Write(b)
	p.buf = b
}

func (p *printer) printCSV(f *journal.Frame) {
	if !p.header {
		p.w.WriteString(csvHeader)
		p.header = true
	}
	cols := map[string]string{}
	for _, kv := range p.decode(f) {
		cols[kv.k] = kv.v
	}
	side := cols["side"]
	if side == "" {
		side = cols["aggressor"]
	}
	detail := ""
	switch f.Type {
	case journal.TypeInstrumentDef:
		detail = "scale=" + cols["price_scale"] + " tick=" + cols["tick_size"]
	case journal.TypeRaw:
		detail = cols["hex"]
	}
	flags := ""
	if cols["hidden"] == "true" {
		flags = "hidden"
	}
	sym := p.in.symbol(f.Instrument)
	if sym == "" {
		sym = cols["symbol_def"]
	}
	fmt.Fprintf(p.w, "%d,%s,%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", f.Seq, tsString(f.TS), f.Type, f.Instrument,
		sym, side, cols["price"], cols["qty"], cols["order_id"], cols["trade_id"],
		cols["bid_price"], cols["bid_qty"], cols["ask_price"], cols["ask_qty"], flags, detail)
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
