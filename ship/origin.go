package ship

import (
	"errors"
	"os"

	"github.com/mdjournal/mdjournal/internal/segfile"
	"github.com/mdjournal/mdjournal/journal"
)

// originSeg is what the shipper needs of one activated origin segment.
type originSeg struct {
	num, first uint64
	epoch      uint32
}

// readOrigin returns the origin's journal id and its activated segments,
// ascending (headers read with pread, as reader's reissue check does).
func readOrigin(dir string) (uint64, []originSeg, error) {
	ns, err := segfile.Numbers(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, journal.ErrNotFound
	}
	if err != nil {
		return 0, nil, err
	}
	var id uint64
	var segs []originSeg
	for _, n := range ns {
		h, _, _, err := segfile.ReadHeader(dir, n)
		if errors.Is(err, journal.ErrMissing) {
			continue // pruned meanwhile
		}
		if err != nil {
			return 0, nil, err
		}
		if h.Prepared() {
			continue
		}
		if id == 0 {
			id = h.JournalID()
		}
		segs = append(segs, originSeg{num: n, first: h.FirstSeq(), epoch: h.Epoch()})
	}
	if len(segs) == 0 {
		return 0, nil, journal.ErrNotFound
	}
	return id, segs, nil
}

// reissuedAfter says whether seqs up to last, shipped from a segment of
// epoch ep, were issued again: a segment of a later epoch starts at or
// before last (format.md §8.4). It returns that segment's first seq and
// epoch.
func reissuedAfter(segs []originSeg, last uint64, ep uint32) (uint64, uint32, bool) {
	for _, s := range segs {
		if s.epoch > ep {
			return s.first, s.epoch, s.first <= last
		}
	}
	return 0, 0, false
}
