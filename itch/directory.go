package itch

// Directory maps stock locate codes to symbols, learned from Stock Directory
// messages. The zero Directory is empty and ready to use.
type Directory struct {
	syms  []Symbol
	known []bool
	bySym map[Symbol]uint16
	n     int
}

// Add records the locate code and symbol of a Stock Directory message. A
// later message for the same locate code replaces the earlier one.
func (d *Directory) Add(m *StockDirectory) {
	l := int(m.Locate)
	if l >= len(d.syms) {
		n := max(l+1, 2*len(d.syms), 1024)
		n = min(n, 1<<16)
		d.syms = append(d.syms, make([]Symbol, n-len(d.syms))...)
		d.known = append(d.known, make([]bool, n-len(d.known))...)
	}
	if d.bySym == nil {
		d.bySym = make(map[Symbol]uint16)
	}
	if d.known[l] {
		delete(d.bySym, d.syms[l])
	} else {
		d.n++
	}
	d.syms[l], d.known[l] = m.Stock, true
	d.bySym[m.Stock] = m.Locate
}

// Symbol returns the symbol of a locate code.
func (d *Directory) Symbol(locate uint16) (Symbol, bool) {
	if int(locate) >= len(d.syms) || !d.known[locate] {
		return Symbol{}, false
	}
	return d.syms[locate], true
}

// Locate returns the locate code of a symbol.
func (d *Directory) Locate(s Symbol) (uint16, bool) {
	l, ok := d.bySym[s]
	return l, ok
}

// Len returns the number of locate codes known.
func (d *Directory) Len() int { return d.n }
