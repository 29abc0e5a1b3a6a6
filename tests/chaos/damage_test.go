package chaos_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// expect is what verify must say about one injected damage: the
// definition of "verify names exactly the injected damage" (package
// comment), computed by the oracle from the undamaged copy.
type expect struct {
	file string // base name of the damaged file
	unit string // the structural unit of format.md hit, for messages
	cite string // the format.md rule behind the expectation

	mustReport bool // verify must name file at an accepted offset
	mustOK     bool // verify must report nothing new
	// Accepted offsets of a finding naming file: [lo, hi], or one of alt.
	lo, hi int64
	alt    []int64
	// Findings may also name these files (a segment's own sparse index,
	// derived data whose entries point into the damaged frames), with
	// severity "index".
	also []string
	// readerOK: the damaged bytes are not read by a reader (hints, state,
	// index, control page: format.md §4 reader steps, §5, §6), so dump must
	// still print every frame.
	readerOK bool
}

func (e *expect) accepts(off int64) bool {
	if off >= e.lo && off <= e.hi {
		return true
	}
	for _, a := range e.alt {
		if off == a {
			return true
		}
	}
	return false
}

// damage is one injected fault.
type damage struct {
	file     string // base name
	truncate bool
	newLen   int64 // truncation
	off      int64 // flip: byte offset
	bit      uint  // flip: bit
	old, new byte
	class    string
	exp      expect
}

func (d *damage) String() string {
	if d.truncate {
		return fmt.Sprintf("truncate %s to %d bytes [%s: %s]", d.file, d.newLen, d.class, d.exp.unit)
	}
	return fmt.Sprintf("flip bit %d of byte %d (%#02x→%#02x) of %s [%s: %s]", d.bit, d.off, d.old, d.new, d.file, d.class, d.exp.unit)
}

// repro is a shell recipe that recreates the damaged copy from pristine.
func (d *damage) repro(pristine string) string {
	x := "/tmp/mdj-repro"
	apply := fmt.Sprintf("printf '\\x%02x' | dd of=%s/%s bs=1 seek=%d conv=notrunc", d.new, x, d.file, d.off)
	if d.truncate {
		apply = fmt.Sprintf("truncate -s %d %s/%s", d.newLen, x, d.file)
	}
	return fmt.Sprintf("rm -rf %s && cp -r %s %s && %s && journalctl verify --dir %s", x, pristine, x, apply, x)
}

// archiveUnits are the parts of a compressed segment (format.md §14).
type archiveUnits struct {
	tableOff int64
	chunks   [][2]int64 // comp_offset, comp_len
}

func parseArchive(path string) (archiveUnits, bool) {
	b, err := readRegular(path, 1<<30)
	if err != nil || len(b) < headerPage+64 {
		return archiveUnits{}, false
	}
	h := b[headerPage:]
	u := archiveUnits{tableOff: int64(le64(h[32:]))}
	n := le64(h[24:])
	for i := uint64(0); i < n && u.tableOff+int64(i+1)*32 <= int64(len(b)); i++ {
		e := b[u.tableOff+int64(i)*32:]
		u.chunks = append(u.chunks, [2]int64{int64(le64(e[16:])), int64(le32(e[12:]))})
	}
	return u, true
}

// pickDamage chooses a damage on the copy described by f (the oracle's
// view of the undamaged snapshot) and what verify must say about it.
func pickDamage(rng *rand.Rand, f *facts) (*damage, bool) {
	var sealed, archived, active []*segInfo
	last := f.lastActivated()
	for _, s := range f.activated() {
		switch {
		case s.archived:
			archived = append(archived, s)
		case s == last && !s.sealed:
			active = append(active, s)
		case s.sealed:
			sealed = append(sealed, s)
		}
	}
	var idx []*idxInfo
	for _, s := range f.activated() {
		if x, ok := f.idx[s.num]; ok {
			idx = append(idx, x)
		}
	}
	segs := append(append(append([]*segInfo{}, sealed...), active...), archived...)
	raws := append(append([]*segInfo{}, sealed...), active...)
	type class struct {
		name   string
		weight int
		ok     bool
	}
	classes := []class{
		{"frame-sealed", 14, len(sealed) > 0},
		{"frame-active", 12, len(active) > 0 && active[0].end > headerPage},
		{"past-frames", 8, len(raws) > 0},
		{"static-header", 9, len(segs) > 0},
		{"cursor", 5, len(segs) > 0},
		{"header-padding", 4, len(segs) > 0},
		{"state-record", 9, len(segs) > 0},
		{"index", 9, len(idx) > 0},
		{"control-page", 3, true},
		{"archive", 6, len(archived) > 0},
		{"truncate-segment", 12, len(raws) > 0},
		{"truncate-index", 3, len(idx) > 0},
		{"truncate-control", 1, true},
		{"truncate-archive", 2, len(archived) > 0},
	}
	total := 0
	for _, c := range classes {
		if c.ok {
			total += c.weight
		}
	}
	x := rng.IntN(total)
	var cl string
	for _, c := range classes {
		if !c.ok {
			continue
		}
		if x < c.weight {
			cl = c.name
			break
		}
		x -= c.weight
	}
	pick := func(ss []*segInfo) *segInfo { return ss[rng.IntN(len(ss))] }
	d := &damage{class: cl, bit: uint(rng.IntN(8))}
	e := &d.exp
	switch cl {
	case "frame-sealed", "frame-active":
		var s *segInfo
		if cl == "frame-active" {
			s = active[0]
		} else {
			s = pick(sealed)
		}
		d.file, d.off = s.name, headerPage+rng.Int64N(s.end-headerPage)
		fr, _ := s.frameAt(d.off)
		e.unit = fmt.Sprintf("frame at %d (seq %d, type %d, %d bytes) of a %s segment", fr.off, fr.seq, fr.typ, fr.size, map[bool]string{true: "sealed", false: "live"}[s.sealed])
		e.cite = "§3 (a frame must satisfy: good CRC …; anything else is damage), §8.1"
		e.lo, e.hi = fr.off, fr.off
		e.also = []string{idxName(s.num)}
		if d.off >= fr.off+fr.size { // zero padding to 8: not covered by the CRC (§3)
			e.unit += " (its padding)"
			e.cite = "§3: padding is not covered by the frame's CRC"
		} else {
			e.mustReport = true
		}
	case "past-frames":
		s := pick(raws)
		top := min(s.size, int64(s.capacity))
		if top <= s.end {
			return nil, false
		}
		d.file, d.off = s.name, s.end+rng.Int64N(top-s.end)
		e.unit = fmt.Sprintf("zero bytes past the frames, which end at %d", s.end)
		e.cite = "§8.1 4–5: non-zero bytes past the last frame (torn tail in the last segment, damage elsewhere)"
		e.mustReport, e.lo, e.hi = true, s.end, d.off
	case "static-header":
		s := pick(segs)
		d.file, d.off = s.name, rng.Int64N(64)
		e.unit = "static header [0,64)"
		e.cite = "§2.1: magic, version, header_crc over [0,60)"
		e.mustReport, e.lo, e.hi = true, 0, 63
	case "cursor":
		s := pick(segs)
		d.file, d.off = s.name, 64+rng.Int64N(8)
		c := s.cursor ^ (1 << (uint(d.off-64)*8 + d.bit))
		bad := c < headerPage || c > s.capacity || c%8 != 0
		clean := s.current().clean()
		e.unit = fmt.Sprintf("write cursor %d → %d", s.cursor, c)
		e.lo, e.hi = 64, 71
		switch {
		case bad:
			e.mustReport = true
			e.cite = "§2.1: a cursor outside [4096, capacity] or not 8-aligned is reported by verify"
		case clean:
			e.mustReport = true
			e.cite = "§2.2 CLEAN: durable_offset … equals the write cursor"
		default:
			e.cite = "§2.1/§4: the cursor is a hint, readers never need it; §8.1.6 a cursor past the frames of the last segment: lost published bytes"
			if !s.archived && s == last && !s.sealed && int64(c) > s.end {
				e.alt = []int64{s.end}
			}
		}
		e.readerOK = true
	case "header-padding":
		s := pick(segs)
		if rng.IntN(2) == 0 {
			d.file, d.off = s.name, 72+rng.Int64N(56)
			e.lo, e.hi, e.unit = 72, 127, "cursor cache-line padding [72,128)"
		} else {
			d.file, d.off = s.name, 256+rng.Int64N(headerPage-256)
			e.lo, e.hi, e.unit = 256, headerPage-1, "reserved [256,4096)"
		}
		e.cite = "§2.1: padding and reserved bytes are outside header_crc and the header checks"
		e.readerOK = true
	case "state-record":
		s := pick(segs)
		d.file, d.off = s.name, 128+rng.Int64N(128)
		r := int((d.off - 128) / 64)
		e.unit = fmt.Sprintf("state record %c (current %c)", 'A'+r, 'A'+s.cur)
		e.lo, e.hi = 128, 255
		e.readerOK = true
		switch {
		case r != s.cur:
			e.mustOK = true
			e.cite = "§2.2: the current record (valid, larger gen) decides; a damaged other record changes nothing"
		case s.st[1-r].valid:
			// The older record becomes current: recovery "only scans more";
			// a sealed segment's older record is not sealed yet (torn: the
			// writer records the seal), a CLEAN older record disagrees with
			// the cursor (§2.2), reported at 64.
			e.alt = []int64{64}
			e.cite = "§2.2: one flipped bit in the current record … the older record is used"
		default:
			// No valid record left: the segment no longer shows it was
			// activated, so a reader cannot follow a roll into it either
			// (format.md §4: bad_header at 128, named).
			e.mustReport = true
			e.readerOK = false
			e.cite = "§2.2/§8.1.1: an activated segment with no valid state record is damage"
		}
	case "index":
		x := idx[rng.IntN(len(idx))]
		if x.size == 0 {
			return nil, false
		}
		d.file, d.off = x.name, rng.Int64N(x.size)
		e.readerOK = true
		e.cite = "§5"
		n := int64(x.count)
		switch o := d.off; {
		case o < 44:
			e.mustReport, e.lo, e.hi, e.unit = true, 0, 63, "index header [0,44): fields and header_crc"
		case o < 64:
			e.lo, e.hi, e.unit = 0, 63, "index reserved [44,64): outside header_crc"
		case o < 72:
			c := x.count ^ (1 << (uint(o-64)*8 + d.bit))
			e.unit = fmt.Sprintf("index count %d → %d", x.count, c)
			e.lo, e.hi = 0, x.size
			if c > x.count && !entriesValid(f, x, x.count, min(c, uint64(len(x.entries)))) {
				e.mustReport = true
				e.cite = "§5: every entry below count refers to a published frame"
			}
		case o < idxEntries:
			e.lo, e.hi, e.unit = 64, 127, "index padding [72,128)"
		case o < idxEntries+idxEntry*n:
			i := (o - idxEntries) / idxEntry
			at := idxEntries + i*idxEntry
			e.mustReport, e.lo, e.hi, e.unit = true, at, at, fmt.Sprintf("index entry %d of %d at %d", i, n, at)
			e.cite = "§5: an entry that points anywhere but at a frame with its seq and ts is an index problem"
		default:
			e.lo, e.hi, e.unit = idxEntries+idxEntry*n, x.size, fmt.Sprintf("index slot past count %d", n)
			e.cite = "§5: only entries below count are published"
		}
	case "control-page":
		d.file, d.off = "journal.ctl", rng.Int64N(4096)
		e.unit, e.lo, e.hi, e.readerOK = "control page", 0, 4095, true
		e.cite = "§6: it holds nothing recovery needs; the writer rewrites it on open"
	case "archive":
		s := pick(archived)
		u, ok := parseArchive(filepath.Join(f.dir, s.name))
		if !ok || s.size <= headerPage {
			return nil, false
		}
		d.file, d.off = s.name, headerPage+rng.Int64N(s.size-headerPage)
		e.cite = "§14"
		switch o := d.off; {
		case o < headerPage+52:
			e.mustReport, e.lo, e.hi, e.unit = true, headerPage, headerPage+63, "archive header [4096,4148): fields and header_crc"
		case o < headerPage+64:
			e.lo, e.hi, e.unit = headerPage, headerPage+63, "archive header reserved: outside header_crc"
		case o >= u.tableOff:
			e.mustReport, e.lo, e.hi, e.unit = true, u.tableOff, o, "chunk table (table_crc)"
			e.alt = []int64{headerPage + 44}
		default:
			e.unit = "compressed chunk"
			for i, c := range u.chunks {
				if o >= c[0] && o < c[0]+c[1] {
					e.unit = fmt.Sprintf("chunk %d at %d (%d bytes)", i, c[0], c[1])
					e.lo, e.hi = c[0], o
				}
			}
			// Only the decompressed bytes carry a checksum (raw_crc): a
			// flip that decompresses to the same bytes changes nothing,
			// which the reader check below confirms.
			e.cite = "§14: every chunk's raw_crc is checked"
		}
	case "truncate-segment":
		s := pick(raws)
		d.file, d.truncate = s.name, true
		top := min(s.size, int64(s.capacity))
		switch k := rng.IntN(3); {
		case k == 0:
			d.newLen = rng.Int64N(headerPage)
			e.unit, e.lo, e.hi = "into the header page", 0, d.newLen
			e.cite = "§2.1: the header is 4096 bytes"
		case k == 1 && s.end > headerPage:
			d.newLen = headerPage + rng.Int64N(s.end-headerPage)
			fr, _ := s.frameAt(d.newLen)
			e.unit, e.lo, e.hi = fmt.Sprintf("into the frames (frame at %d, seq %d)", fr.off, fr.seq), fr.off, d.newLen
			e.also = []string{idxName(s.num)}
			e.cite = "§8.1: frames below the end are gone"
		default:
			if top <= s.end {
				return nil, false
			}
			d.newLen = s.end + rng.Int64N(top-s.end)
			e.unit, e.lo, e.hi = fmt.Sprintf("past the frames (end %d, capacity %d)", s.end, s.capacity), s.end, d.newLen
			e.cite = "§2.1: a segment file is exactly capacity bytes; the header check includes file ≥ capacity (offset = the file's size)"
		}
		e.mustReport = true
	case "truncate-index":
		x := idx[rng.IntN(len(idx))]
		d.file, d.truncate, d.newLen = x.name, true, rng.Int64N(max(x.size, 1))
		e.unit, e.lo, e.hi, e.readerOK = fmt.Sprintf("index of %d bytes", x.size), 0, x.size, true
		e.mustReport = true
		e.cite = "§5: the file size is rounded up to 4096 (capacity entry slots)"
	case "truncate-control":
		d.file, d.truncate, d.newLen = "journal.ctl", true, rng.Int64N(4096)
		e.unit, e.lo, e.hi, e.readerOK = "control page", 0, 4095, true
		e.cite = "§6: a reader that finds one shorter polls without it; nothing recovery needs"
	case "truncate-archive":
		s := pick(archived)
		d.file, d.truncate, d.newLen = s.name, true, rng.Int64N(s.size)
		e.unit, e.lo, e.hi = "archive", 0, s.size
		e.mustReport = true
		e.cite = "§14: the table ends the file"
	}
	e.file = d.file
	return d, true
}

func idxName(n uint64) string { return fmt.Sprintf("%020d.idx", n) }

// entriesValid reports whether index slots [from,to) all point at frames
// of their segment with their seq and ts, ascending (then a larger count
// publishes nothing false).
func entriesValid(f *facts, x *idxInfo, from, to uint64) bool {
	var s *segInfo
	for _, c := range f.segs {
		if idxName(c.num) == x.name {
			s = c
		}
	}
	if s == nil || s.archived {
		return false
	}
	for i := from; i < to; i++ {
		en := x.entries[i]
		fr, ok := s.frameAt(int64(en[2]))
		if !ok || fr.off != int64(en[2]) || fr.seq != en[0] || uint64(fr.ts) != en[1] || fr.typ == typeEnd {
			return false
		}
		if i > 0 && (en[0] <= x.entries[i-1][0] || en[2] <= x.entries[i-1][2]) {
			return false
		}
	}
	return to > from
}

func (d *damage) apply(dir string) error {
	path := filepath.Join(dir, d.file)
	if d.truncate {
		return os.Truncate(path, d.newLen)
	}
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	b := []byte{0}
	if _, err := fh.ReadAt(b, d.off); err != nil {
		return err
	}
	d.old, d.new = b[0], b[0]^(1<<d.bit)
	_, err = fh.WriteAt([]byte{d.new}, d.off)
	return err
}

// recoverJSON is `journalctl recover --json`.
type recoverJSON struct {
	OK      bool `json:"ok"`
	Actions []struct {
		Op     string `json:"op"`
		File   string `json:"file"`
		From   int64  `json:"from"`
		To     int64  `json:"to"`
		Detail string `json:"detail"`
	} `json:"actions"`
	Refused []problemJSON `json:"refused"`
}

// baseline is the undamaged snapshot as verify and dump see it.
type baseline struct {
	dir      string
	f        *facts
	problems []problemJSON
	first    uint64 // dump's first and last seq
	last     uint64
	durable  uint64 // the largest durable seq any segment's state promises
	epoch    uint32 // the largest epoch of any segment
	checkpts map[string]int64
}

// damagePhase injects single damages into fresh copies of the snapshot
// (the campaign's journal is left alone) and checks what verify, dump and
// recover make of each.
func (c *campaign) damagePhase(r int, snap string) {
	rng := c.rngFor(r, "damage")
	b, ok := c.baseline(r, snap)
	if !ok {
		return
	}
	n := 3 + rng.IntN(4)
	if testing.Short() {
		n = 2
	}
	start := time.Now()
	for i := 0; i < n && !c.failedRound(); i++ {
		c.damageOne(r, i, rng, b)
	}
	c.t.Logf("round %d: %d damages in %v", r, n, time.Since(start).Round(time.Millisecond))
}

func (c *campaign) baseline(r int, snap string) (*baseline, bool) {
	f, err := readFacts(snap, readerName)
	if err != nil {
		c.violate(r, "read the snapshot: %v", err)
		return nil, false
	}
	b := &baseline{dir: snap, f: f, checkpts: map[string]int64{}}
	for _, s := range f.activated() {
		b.checkpts[s.name] = int64(s.current().dOff)
		b.durable = max(b.durable, s.current().dSeq)
		b.epoch = max(b.epoch, s.epoch)
	}
	p := c.runSync(r, "damage-verify", "verify", "--dir", snap, "--json")
	if p == nil {
		return nil, false
	}
	vj, err := parseVerify(p.stdout())
	if err != nil {
		c.violate(r, "verify of the undamaged snapshot printed no JSON: %v %s", err, excerpt(p.exit().stderr))
		return nil, false
	}
	b.problems = vj.Problems
	d := c.runSync(r, "damage-dump", "dump", "--dir", snap, "--format", "json", "--from", "start")
	if d == nil {
		return nil, false
	}
	if how, v := d.basicVerdict(); v != "" || how != "" || d.exit().code != 0 {
		c.violate(r, "dump of the undamaged snapshot %s failed: %s exit %d %s", snap, v, d.exit().code, excerpt(d.exit().stderr))
		return nil, false
	}
	for i, l := range completeLines(d.stdout()) {
		seq, _ := lineSeq(l)
		if i == 0 {
			b.first = seq
		}
		if k := c.known(seq); k != digest(l) {
			c.violate(r, "dump of the snapshot %s printed seq %d with digest %#x, the campaign recorded %#x: %s", snap, seq, digest(l), k, l)
			return nil, false
		}
		b.last = seq
	}
	return b, true
}

// damageOne injects one damage into a fresh copy and checks verify, dump,
// recover --dry-run and recover on it.
func (c *campaign) damageOne(r, i int, rng *rand.Rand, b *baseline) {
	var d *damage
	for tries := 0; d == nil && tries < 20; tries++ {
		if x, ok := pickDamage(rng, b.f); ok {
			d = x
		}
	}
	if d == nil {
		return
	}
	work := filepath.Join(c.art, "damaged")
	os.RemoveAll(work)
	if err := copyTree(b.dir, work); err != nil {
		c.violate(r, "copy the snapshot: %v", err)
		return
	}
	if err := d.apply(work); err != nil {
		c.violate(r, "inject %v: %v", d, err)
		return
	}
	if d.truncate {
		c.cnt.add("truncations", 1)
	} else {
		c.cnt.add("flips", 1)
	}
	c.cnt.add("target/"+d.class, 1)
	fail := func(format string, args ...any) {
		keep := filepath.Join(c.art, fmt.Sprintf("damage-r%d-%d", r, i))
		os.RemoveAll(keep)
		copyTree(b.dir, filepath.Join(keep, "pristine"))
		copyTree(work, filepath.Join(keep, "after"))
		c.violate(r, "damage #%d: %v: %s\n  reproduce: %s\n  (the copy after the failing step is in %s)", i, d, fmt.Sprintf(format, args...),
			d.repro(filepath.Join(keep, "pristine")), filepath.Join(keep, "after"))
	}
	outcome := c.checkVerifyDamage(r, d, b, work, fail)
	if outcome == "" {
		return
	}
	c.cnt.add("verdict/"+outcome, 1)
	c.checkReaderOnDamage(r, d, b, work, outcome == "ok", fail)
	if c.failedRound() {
		return
	}
	c.checkRecoverOnDamage(r, d, b, work, fail)
}

// checkVerifyDamage runs verify on the damaged copy and applies the
// definition of "names exactly". It returns the outcome ("" after a
// violation).
func (c *campaign) checkVerifyDamage(r int, d *damage, b *baseline, work string, fail func(string, ...any)) string {
	p := c.runSync(r, "damage-verify", "verify", "--dir", work, "--json")
	if p == nil {
		return ""
	}
	if how, v := p.basicVerdict(); v != "" || how != "" {
		fail("verify: %s%s", how, v)
		return ""
	}
	e := p.exit()
	vj, err := parseVerify(p.stdout())
	if err != nil {
		fail("verify printed no JSON (exit %d): %v; stderr %s", e.code, err, excerpt(e.stderr))
		return ""
	}
	if (e.code == 0) != (vj.OK && len(vj.Problems) == 0) || (e.code != 0 && e.code != 1) {
		fail("verify exit %d does not match ok=%v with %d problems", e.code, vj.OK, len(vj.Problems))
		return ""
	}
	base := map[string]bool{}
	for _, p := range b.problems {
		base[p.File+"|"+fmt.Sprint(p.Offset)+"|"+p.Kind] = true
	}
	x := &d.exp
	hit := false
	var stray, fresh []problemJSON
	for _, p := range vj.Problems {
		named := p.File == x.file && x.accepts(p.Offset)
		hit = hit || named
		if base[p.File+"|"+fmt.Sprint(p.Offset)+"|"+p.Kind] {
			continue
		}
		fresh = append(fresh, p)
		if named {
			continue
		}
		if p.Severity == "index" && contains(x.also, p.File) {
			continue
		}
		stray = append(stray, p)
	}
	if (len(stray) > 0 || (x.mustReport && !hit)) && c.knownDamageBug(r, d, vj.Problems, stray) {
		return ""
	}
	switch {
	case len(stray) > 0:
		fail("verify names something other than the injected damage (accepted: %s at [%d,%d] or %v; %s): %v", x.file, x.lo, x.hi, x.alt, x.cite, stray)
		return ""
	case x.mustReport && !hit:
		fail("verify does not name the damage (%s at an offset in [%d,%d] or %v; %s); it reported %v", x.file, x.lo, x.hi, x.alt, x.cite, vj.Problems)
		return ""
	case x.mustOK && len(fresh) > 0:
		fail("verify reports damage in bytes that change nothing (%s): %v", x.cite, fresh)
		return ""
	}
	if vj.OK {
		return "ok"
	}
	if hit {
		return "named"
	}
	return "baseline-only"
}

// knownDamageBug recognises the damage verdicts of the defects that
// found_test.go reproduces (see knownBugs), counting them.
func (c *campaign) knownDamageBug(r int, d *damage, all, stray []problemJSON) bool {
	every := func(ps []problemJSON, f func(problemJSON) bool) bool {
		for _, p := range ps {
			if !f(p) {
				return false
			}
		}
		return len(ps) > 0
	}
	switch {
	case d.class == "cursor" && strings.HasSuffix(d.file, ".seg.zst") &&
		every(all, func(p problemJSON) bool {
			return p.File == d.file && p.Offset == headerPage && strings.Contains(p.Reason, "does not fit the file")
		}):
		c.knownBug(r, "archive-cursor-checked", "%v: verify: %v", d, all)
	case d.class == "static-header" &&
		every(stray, func(p problemJSON) bool { return strings.Contains(p.Reason, "files of two journals are mixed") }):
		c.knownBug(r, "verify-id-from-damaged-header", "%v: verify: %v", d, all)
	case d.class == "state-record" && d.exp.mustReport &&
		every(stray, func(p problemJSON) bool { return p.File == d.file && p.Kind == "roll_order" }):
		c.knownBug(r, "verify-stateless-activated-as-prepared", "%v: verify: %v", d, all)
	case d.class == "truncate-segment" && len(stray) == 0 && strings.HasPrefix(d.exp.unit, "past the frames") &&
		!every(all, func(p problemJSON) bool { return p.File == d.file }):
		c.knownBug(r, "short-sealed-segment-ok", "%v: verify: %v", d, all)
	default:
		return false
	}
	return true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// checkDump runs dump on dir and checks that nothing is invented: every
// printed line is the content the campaign recorded for its seq, seqs are
// contiguous from from. It returns the exit code, the last seq printed and
// stderr.
//
// newFrom: seqs from here on were issued by the writer recover opened, in
// a new epoch (format.md §8.4), after a cut of frames that were not
// durable: they may carry new content (0: none may).
func (c *campaign) checkDump(r int, dir string, from, newFrom uint64, fail func(string, ...any)) (int, uint64, string, bool) {
	p := c.runSync(r, "damage-dump", "dump", "--dir", dir, "--format", "json", "--from", "start")
	if p == nil {
		return 0, 0, "", false
	}
	if how, v := p.basicVerdict(); v != "" || how != "" {
		fail("dump: %s%s", how, v)
		return 0, 0, "", false
	}
	e := p.exit()
	if e.code == 2 {
		fail("dump exit 2 (usage) on a damaged journal: %s", excerpt(e.stderr))
		return 0, 0, "", false
	}
	var last uint64
	for i, l := range completeLines(p.stdout()) {
		seq, ok := lineSeq(l)
		if !ok {
			fail("dump printed a line that is not a frame: %q", l)
			return 0, 0, "", false
		}
		if (i == 0 && seq != from) || (i > 0 && seq != last+1) {
			fail("dump printed seq %d after %d (first expected %d): a reader never skips a frame", seq, last, from)
			return 0, 0, "", false
		}
		if k := c.known(seq); k != digest(l) && (newFrom == 0 || seq < newFrom) {
			fail("dump printed seq %d as %s, which is not the content the campaign recorded for it (digest %#x, recorded %#x): a reader invented a frame", seq, l, digest(l), k)
			return 0, 0, "", false
		}
		last = seq
	}
	return e.code, last, e.stderr, true
}

// checkReaderOnDamage: dump never invents a frame; exit 0 means every
// frame was printed; exit 1 names the damaged file; where the damage is in
// bytes a reader does not read, or verify says OK, dump prints everything.
func (c *campaign) checkReaderOnDamage(r int, d *damage, b *baseline, work string, verifyOK bool, fail func(string, ...any)) {
	code, last, stderr, ok := c.checkDump(r, work, b.first, 0, fail)
	if !ok {
		return
	}
	complete := code == 0 && last == b.last
	if code == 1 && strings.Contains(stderr, "no journal in directory") {
		c.knownBug(r, "reader-no-journal-on-damaged-first-header", "%v: dump: %s", d, excerpt(stderr))
		return
	}
	switch {
	case code == 0 && !complete:
		fail("dump exit 0 but it printed seq %d..%d of %d..%d: it stopped at damage silently", b.first, last, b.first, b.last)
	case code == 1 && !strings.Contains(stderr, d.file) && !anyContains(stderr, d.exp.also):
		fail("dump exit 1 without naming the damaged file %s: %s", d.file, excerpt(stderr))
	case verifyOK && !complete:
		fail("verify says OK but dump fails (exit %d after seq %d of %d..%d): %s", code, last, b.first, b.last, excerpt(stderr))
	case d.exp.readerOK && !complete:
		fail("dump fails (exit %d after seq %d of %d..%d) on damage in bytes readers do not need (%s): %s", code, last, b.first, b.last, d.exp.cite, excerpt(stderr))
	}
	if complete {
		c.cnt.add("verdict/dump-complete", 1)
	} else {
		c.cnt.add("verdict/dump-refused", 1)
	}
}

func anyContains(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// journalFiles are the files of dir that recover must keep (locks aside).
func journalFiles(dir string) (map[string][]byte, error) {
	m, err := treeFiles(dir)
	delete(m, "journal.lock")
	delete(m, "journal.maint")
	return m, err
}

// checkRecoverOnDamage: recover --dry-run changes nothing; recover never
// cuts at or below a durable checkpoint (its actions, and the bytes of
// every segment below its pre-damage checkpoint, compared), deletes no
// file (moves into orphaned-*/ only), and when it succeeds verify is OK
// and no durable frame is lost or changed.
func (c *campaign) checkRecoverOnDamage(r int, d *damage, b *baseline, work string, fail func(string, ...any)) {
	before, err := journalFiles(work)
	if err != nil {
		c.violate(r, "read %s: %v", work, err)
		return
	}
	p := c.runSync(r, "damage-recover-dry", "recover", "--dir", work, "--dry-run", "--json")
	if p == nil {
		return
	}
	if how, v := p.basicVerdict(); v != "" || how != "" || p.exit().code == 2 {
		fail("recover --dry-run: %s%s exit %d %s", how, v, p.exit().code, excerpt(p.exit().stderr))
		return
	}
	after, _ := journalFiles(work)
	if diff := diffFiles(before, after); diff != "" {
		fail("recover --dry-run changed the directory: %s", diff)
		return
	}

	p = c.runSync(r, "damage-recover", "recover", "--dir", work, "--json")
	if p == nil {
		return
	}
	if e := p.exit(); strings.Contains(e.stderr, "panic: runtime error: slice bounds out of range") && strings.Contains(e.stderr, "writer.(*Writer).openJournal") {
		c.knownBug(r, "writer-open-panics-short-clean-segment", "%v: recover: %s", d, excerpt(e.stderr))
		return
	}
	if how, v := p.basicVerdict(); v != "" || how != "" || p.exit().code == 2 {
		fail("recover: %s%s exit %d %s", how, v, p.exit().code, excerpt(p.exit().stderr))
		return
	}
	code := p.exit().code
	var rj recoverJSON
	if err := json.Unmarshal(p.stdout(), &rj); err != nil {
		fail("recover printed no JSON (exit %d): %v %s", code, err, excerpt(p.exit().stderr))
		return
	}
	for _, a := range rj.Actions {
		cp, ok := b.checkpts[filepath.Base(a.File)]
		if !ok {
			continue
		}
		if (a.Op == "zero" || a.Op == "save_broken" || a.Op == "set_state") && a.From < cp {
			fail("recover %s %s from %d: at or below the durable checkpoint %d (format.md §8: bytes below it are never cut)", a.Op, a.File, a.From, cp)
			return
		}
	}
	after, _ = journalFiles(work)
	if msg := checkKept(before, after, b); msg != "" {
		fail("recover (exit %d): %s", code, msg)
		return
	}
	c.cnt.add(fmt.Sprintf("recover/exit%d", code), 1)
	if code != 0 {
		return
	}
	q := c.runSync(r, "damage-verify-after", "verify", "--dir", work, "--json")
	if q == nil {
		return
	}
	vj, err := parseVerify(q.stdout())
	if err != nil || !vj.OK || q.exit().code != 0 {
		fail("recover exit 0 but verify afterwards: exit %d %v %v", q.exit().code, err, vj.Problems)
		return
	}
	// Seqs of segments of a newer epoch than any before the damage were
	// issued by recover's writer: they may be new content, but never a
	// durable seq (format.md §8.3).
	var newFrom uint64
	if f, err := readFacts(work, ""); err == nil {
		for _, s := range f.activated() {
			if s.epoch > b.epoch && newFrom == 0 {
				newFrom = s.firstSeq
			}
		}
	}
	if newFrom != 0 && newFrom <= b.durable {
		fail("after recover (exit 0) a new epoch starts at seq %d, but seqs up to %d were durable (format.md §8.3: a durable seq is never reissued)", newFrom, b.durable)
		return
	}
	dc, last, stderr, ok := c.checkDump(r, work, b.first, newFrom, fail)
	if !ok {
		return
	}
	if dc != 0 || last < b.durable {
		fail("after recover (exit 0): dump exit %d ends at seq %d, but seq up to %d were durable: %s", dc, last, b.durable, excerpt(stderr))
	}
}

// checkKept compares the directory before and after recover: every file
// is still there (at its path, or moved into orphaned-*/ under its name),
// and every segment's bytes between the header page and its pre-damage
// durable checkpoint are unchanged. Derived and rewritten files (indexes,
// the control page, temporaries) may change.
func checkKept(before, after map[string][]byte, b *baseline) string {
	moved := map[string][]byte{}
	for k, v := range after {
		if strings.HasPrefix(k, "orphaned-") {
			moved[filepath.Base(k)] = v
		}
	}
	var names []string
	for k := range before {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		old := before[k]
		if k == "journal.ctl" || strings.HasSuffix(k, ".tmp") || strings.HasSuffix(k, ".idx") {
			continue
		}
		cur, ok := after[k]
		if !ok && b.f.empty[k] {
			continue // an empty spare, removed by the writer's recovery (§8.2 step 2)
		}
		if !ok {
			if cur, ok = moved[filepath.Base(k)]; !ok {
				return fmt.Sprintf("%s was deleted (neither in place nor in orphaned-*/)", k)
			}
		}
		if strings.HasSuffix(k, ".seg.zst") || strings.HasPrefix(k, "readers/") || strings.Contains(k, ".broken") {
			if !strings.HasPrefix(k, "readers/") && string(cur) != string(old) {
				return fmt.Sprintf("%s was changed", k)
			}
			continue
		}
		if cp, ok := b.checkpts[k]; ok && cp > headerPage {
			hi := min(cp, int64(len(old)))
			if hi <= headerPage {
				continue
			}
			if int64(len(cur)) < hi || string(cur[headerPage:hi]) != string(old[headerPage:hi]) {
				return fmt.Sprintf("%s: bytes [%d,%d) below the durable checkpoint %d changed (or the file shrank to %d bytes)", k, headerPage, hi, cp, len(cur))
			}
		}
	}
	return ""
}

func diffFiles(a, b map[string][]byte) string {
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return k + " removed"
		}
		if string(v) != string(w) {
			return k + " changed"
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return k + " created"
		}
	}
	return ""
}
