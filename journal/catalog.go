package journal

import "sort"

// Instrument is what a journal says about one instrument id: its latest
// definition and trading status.
type Instrument struct {
	ID         uint32
	Symbol     string
	PriceScale int32
	TickSize   int64
	Status     uint8   // a Status* constant; 0 until a trading_status frame is seen
	Reason     [4]byte // the status's reason code
	DefSeq     uint64  // seq of the definition in effect
}

// Catalog maps instrument ids to their definitions and status, kept current
// by applying frames in order (format.md §3.4): every segment re-states the
// definitions and statuses in effect at its start, so a catalogue built
// from the start of any segment is complete for that segment. A Catalog is
// not safe for concurrent use.
type Catalog struct {
	byID  map[uint32]*Instrument
	bySym map[string]uint32
}

// NewCatalog returns an empty catalogue.
func NewCatalog() *Catalog {
	return &Catalog{byID: map[uint32]*Instrument{}, bySym: map[string]uint32{}}
}

// Apply updates the catalogue from f and reports whether it changed it. It
// allocates only for a new instrument; data frames cost one comparison.
func (c *Catalog) Apply(f *Frame) bool {
	switch f.Type {
	case TypeInstrumentDef:
		var d InstrumentDef
		if d.Decode(f.Payload) != nil {
			return false
		}
		in := c.byID[f.Instrument]
		if in == nil {
			in = &Instrument{ID: f.Instrument}
			c.byID[f.Instrument] = in
		}
		sym := d.SymbolString()
		if in.Symbol == sym && in.PriceScale == d.PriceScale && in.TickSize == d.TickSize {
			in.DefSeq = f.Seq
			return false
		}
		if in.Symbol != sym {
			if id, ok := c.bySym[in.Symbol]; ok && id == in.ID {
				delete(c.bySym, in.Symbol)
			}
			c.bySym[sym] = f.Instrument
		}
		in.Symbol, in.PriceScale, in.TickSize, in.DefSeq = sym, d.PriceScale, d.TickSize, f.Seq
		return true
	case TypeTradingStatus:
		var s TradingStatus
		if s.Decode(f.Payload) != nil {
			return false
		}
		in := c.byID[f.Instrument]
		if in == nil {
			in = &Instrument{ID: f.Instrument}
			c.byID[f.Instrument] = in
		}
		if in.Status == s.Status && in.Reason == s.Reason {
			return false
		}
		in.Status, in.Reason = s.Status, s.Reason
		return true
	}
	return false
}

// Lookup returns instrument id.
func (c *Catalog) Lookup(id uint32) (Instrument, bool) {
	if in := c.byID[id]; in != nil {
		return *in, true
	}
	return Instrument{}, false
}

// Symbol returns id's symbol ("" if not defined).
func (c *Catalog) Symbol(id uint32) string {
	if in := c.byID[id]; in != nil {
		return in.Symbol
	}
	return ""
}

// Scale returns id's price scale and whether it is defined.
func (c *Catalog) Scale(id uint32) (int32, bool) {
	if in := c.byID[id]; in != nil && in.Symbol != "" {
		return in.PriceScale, true
	}
	return 0, false
}

// BySymbol returns the instrument defined with symbol sym.
func (c *Catalog) BySymbol(sym string) (Instrument, bool) {
	if id, ok := c.bySym[sym]; ok {
		return c.Lookup(id)
	}
	return Instrument{}, false
}

// Len is the number of instruments known.
func (c *Catalog) Len() int { return len(c.byID) }

// All returns every instrument, by id.
func (c *Catalog) All() []Instrument {
	out := make([]Instrument, 0, len(c.byID))
	for _, in := range c.byID {
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// FormatPrice renders p in id's scale; the raw integer when id is unknown.
func (c *Catalog) FormatPrice(id uint32, p Price) string {
	s, _ := c.Scale(id)
	return FormatPrice(p, s)
}

// Clone returns an independent copy.
func (c *Catalog) Clone() *Catalog {
	n := NewCatalog()
	for id, in := range c.byID {
		cp := *in
		n.byID[id] = &cp
	}
	for s, id := range c.bySym {
		n.bySym[s] = id
	}
	return n
}

// Restatement returns the payloads a writer re-states at the start of a
// segment (format.md §3.4): every instrument's definition, then every known
// trading status, in id order, each with its instrument id.
func (c *Catalog) Restatement() (defs []InstrumentDef, defIDs []uint32, statuses []TradingStatus, statusIDs []uint32) {
	for _, in := range c.All() {
		if in.Symbol != "" {
			var d InstrumentDef
			copy(d.Symbol[:], in.Symbol)
			d.PriceScale, d.TickSize = in.PriceScale, in.TickSize
			defs, defIDs = append(defs, d), append(defIDs, in.ID)
		}
	}
	for _, in := range c.All() {
		if in.Status != 0 {
			statuses, statusIDs = append(statuses, TradingStatus{Status: in.Status, Reason: in.Reason}), append(statusIDs, in.ID)
		}
	}
	return
}
