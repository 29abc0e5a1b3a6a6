package book

import "github.com/mdjournal/mdjournal/journal"

// ApplyPayload decodes payload as typ and applies it. Types that carry no
// book information (heartbeat, raw, unknown) are counted as ignored, not
// rejected, so a reader can feed every frame of a journal.
func (b *Book) ApplyPayload(typ journal.MsgType, payload []byte) error {
	switch {
	case typ.IsOrder():
		var o journal.Order
		if err := o.Decode(payload); err != nil {
			return b.reject(err)
		}
		return b.ApplyOrder(typ, &o)
	case typ == journal.TypeBookLevel:
		var l journal.BookLevel
		if err := l.Decode(payload); err != nil {
			return b.reject(err)
		}
		return b.ApplyLevel(&l)
	case typ == journal.TypeQuote:
		var q journal.Quote
		if err := q.Decode(payload); err != nil {
			return b.reject(err)
		}
		return b.ApplyQuote(&q)
	case typ == journal.TypeTrade:
		var t journal.Trade
		if err := t.Decode(payload); err != nil {
			return b.reject(err)
		}
		return b.ApplyTrade(&t)
	case typ == journal.TypeInstrumentDef:
		var d journal.InstrumentDef
		if err := d.Decode(payload); err != nil {
			return b.reject(err)
		}
		b.ApplyDef(&d)
		return nil
	}
	b.stats.Ignored++
	return nil
}

// ApplyFrame applies a frame read from a journal and, if it was accepted,
// records its sequence number and timestamp as the book's position. The
// frame's instrument is not checked (see Books for routing).
func (b *Book) ApplyFrame(f *journal.Frame) error {
	if err := b.ApplyPayload(f.Type, f.Payload); err != nil {
		return err
	}
	b.seq, b.ts = f.Seq, f.TS
	return nil
}
