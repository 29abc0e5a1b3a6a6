package book

import "github.com/mdjournal/mdjournal/journal"

// Level is one aggregated price level.
type Level struct {
	Price journal.Price
	Qty   int64
}

// entry is a level stored under a side-normalised key: for bids the key is the
// price, for asks it is ^price (= -price-1, which cannot overflow). Either way a
// larger key is a better price, so both sides share one ascending slice layout
// with the best level last, where most changes happen.
type entry struct {
	key int64
	qty int64
}

// ladder is one side of a book: entries sorted by ascending key, best last.
type ladder struct {
	ask bool
	lv  []entry
}

func (l *ladder) key(p journal.Price) int64 {
	if l.ask {
		return ^p
	}
	return p
}

// price inverts key (^ is its own inverse).
func (l *ladder) price(k int64) journal.Price {
	if l.ask {
		return ^k
	}
	return k
}

// topScan is how many entries below the best one search compares linearly
// before switching to binary search: most events hit the top few levels.
const topScan = 8

// search returns the index of key, or the index where it would be inserted.
func (l *ladder) search(key int64) (int, bool) {
	lv := l.lv
	i := len(lv)
	for j := 0; j < topScan && i > 0; j++ {
		k := lv[i-1].key
		if k == key {
			return i - 1, true
		}
		if k < key {
			return i, false
		}
		i--
	}
	lo, hi := 0, i
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if lv[m].key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(lv) && lv[lo].key == key
}

func (l *ladder) insert(i int, e entry) {
	l.lv = append(l.lv, entry{})
	copy(l.lv[i+1:], l.lv[i:])
	l.lv[i] = e
}

func (l *ladder) remove(i int) {
	copy(l.lv[i:], l.lv[i+1:])
	l.lv = l.lv[:len(l.lv)-1]
}

// set makes the level at p hold exactly qty (qty <= 0 removes it).
func (l *ladder) set(p journal.Price, qty int64) {
	k := l.key(p)
	i, ok := l.search(k)
	switch {
	case ok && qty > 0:
		l.lv[i].qty = qty
	case ok:
		l.remove(i)
	case qty > 0:
		l.insert(i, entry{k, qty})
	}
}

// add adds qty (> 0) at p. It reports whether the sum saturated at MaxInt64.
func (l *ladder) add(p journal.Price, qty int64) (saturated bool) {
	k := l.key(p)
	i, ok := l.search(k)
	if !ok {
		l.insert(i, entry{k, qty})
		return false
	}
	q := l.lv[i].qty
	if q > maxQty-qty {
		l.lv[i].qty = maxQty
		return true
	}
	l.lv[i].qty = q + qty
	return false
}

const maxQty = int64(^uint64(0) >> 1)

// sub subtracts qty (> 0) at p. It reports whether the price had no level and
// whether the level would have gone negative (it is then removed).
func (l *ladder) sub(p journal.Price, qty int64) (missing, clamped bool) {
	i, ok := l.search(l.key(p))
	if !ok {
		return true, false
	}
	q := l.lv[i].qty - qty
	if q > 0 {
		l.lv[i].qty = q
		return false, false
	}
	l.remove(i)
	return false, q < 0
}

// trimBetter removes every level strictly better than p (used by Quote).
func (l *ladder) trimBetter(p journal.Price) {
	k := l.key(p)
	n := len(l.lv)
	for n > 0 && l.lv[n-1].key > k {
		n--
	}
	l.lv = l.lv[:n]
}

// top copies the best len(dst) levels into dst, best first.
func (l *ladder) top(dst []Level) int {
	n := len(l.lv)
	if len(dst) < n {
		n = len(dst)
	}
	src := l.lv[len(l.lv)-n:]
	for i := range n {
		e := src[n-1-i]
		dst[i] = Level{Price: l.price(e.key), Qty: e.qty}
	}
	return n
}

// at returns the level at depth d (0 = best).
func (l *ladder) at(d int) (Level, bool) {
	if d < 0 || d >= len(l.lv) {
		return Level{}, false
	}
	e := l.lv[len(l.lv)-1-d]
	return Level{Price: l.price(e.key), Qty: e.qty}, true
}

// qtyAt returns the quantity resting at p (0 if no level).
func (l *ladder) qtyAt(p journal.Price) int64 {
	if i, ok := l.search(l.key(p)); ok {
		return l.lv[i].qty
	}
	return 0
}
