package layers

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/ring"
	"github.com/mdjournal/mdjournal/snapshot"
	"github.com/mdjournal/mdjournal/stats"
)

// every layout the code declares once, checked against format.md
var layouts = append(append([]journal.Layout(nil), journal.Layouts...), snapshot.HeaderLayout, ring.HeaderLayout, ring.SideLayout,
	stats.HeaderLayout, stats.CounterLayout, stats.HistogramLayout)

// Each layout's fields tile it: ascending, no gap, no overlap, ending at
// its size.
func TestLayoutsTile(t *testing.T) {
	for _, l := range layouts {
		off := 0
		for _, f := range l.Fields {
			if f.Off != off {
				t.Errorf("%s: field %s at %d, the previous field ends at %d", l.Name, f.Name, f.Off, off)
			}
			if f.Size <= 0 {
				t.Errorf("%s: field %s has size %d", l.Name, f.Name, f.Size)
			}
			if f.Atomic && f.Size == 8 && f.Off%8 != 0 || f.Atomic && f.Size == 4 && f.Off%4 != 0 {
				t.Errorf("%s: atomic field %s at %d is not aligned", l.Name, f.Name, f.Off)
			}
			off = f.Off + f.Size
		}
		if off != l.Size {
			t.Errorf("%s: fields end at %d, the layout is %d bytes", l.Name, off, l.Size)
		}
	}
}

type docRow struct {
	off, size int
	name      string
}

// docTables returns, for each "## §N" or "### §N.M" section of format.md,
// the rows of its offset tables (| off | size | field | ... |).
func docTables(t *testing.T) map[string][][]docRow {
	b, err := os.ReadFile("../../format.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := regexp.MustCompile(`^#{2,3} (§[0-9.]+)`)
	out := map[string][][]docRow{}
	cur, inTable := "", false
	for _, line := range strings.Split(string(b), "\n") {
		if m := sec.FindStringSubmatch(line); m != nil {
			cur, inTable = m[1], false
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if !strings.HasPrefix(strings.TrimSpace(line), "|") || len(cells) < 3 {
			inTable = false
			continue
		}
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		if strings.EqualFold(cells[0], "off") || strings.EqualFold(cells[0], "offset") {
			if strings.EqualFold(cells[1], "size") {
				inTable = true
				out[cur] = append(out[cur], nil)
			}
			continue
		}
		if !inTable || strings.HasPrefix(cells[0], "--") || strings.HasPrefix(cells[0], ":") || strings.HasSuffix(cells[0], ":") {
			continue
		}
		off, err1 := strconv.Atoi(cells[0])
		size, err2 := strconv.Atoi(cells[1])
		if err1 != nil || err2 != nil {
			continue // a computed offset (snapshot slots: 96 + 16·N)
		}
		tabs := out[cur]
		tabs[len(tabs)-1] = append(tabs[len(tabs)-1], docRow{off, size, cells[2]})
	}
	return out
}

// Every layout appears in its section of format.md as a table with exactly
// its fields: same offsets, sizes and names (reserved and padding rows
// included), in order.
func TestFormatDocMatchesLayouts(t *testing.T) {
	tables := docTables(t)
	for _, l := range layouts {
		var want []docRow
		for _, f := range l.Fields {
			want = append(want, docRow{f.Off, f.Size, f.Name})
		}
		// The table whose first row is the layout's first field; of several
		// (two layouts of a section may start alike), the one equal to it.
		var best []docRow
		for _, tab := range tables[l.Section] {
			if len(tab) > 0 && tab[0].name == l.Fields[0].Name && tab[0].off == l.Fields[0].Off {
				if best == nil || slices.Equal(tab, want) {
					best = tab
				}
			}
		}
		if best == nil {
			t.Errorf("format.md %s has no offset table for the %s (first field %q at %d)", l.Section, l.Name, l.Fields[0].Name, l.Fields[0].Off)
			continue
		}
		if len(best) != len(want) {
			t.Errorf("%s: format.md %s lists %d fields, the code declares %d:\n doc  %v\n code %v", l.Name, l.Section, len(best), len(want), best, want)
			continue
		}
		for i := range want {
			if best[i] != want[i] {
				t.Errorf("%s: format.md %s row %d is %+v, the code says %+v", l.Name, l.Section, i, best[i], want[i])
			}
		}
	}
}

// The version format.md announces is the code's.
func TestFormatDocVersion(t *testing.T) {
	b, err := os.ReadFile("../../format.md")
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(b), "\n", 2)[0]
	if !strings.HasSuffix(first, "journal format version "+strconv.Itoa(journal.Version)) {
		t.Fatalf("format.md says %q; the code's journal.Version is %d", first, journal.Version)
	}
}
