package lobster

import (
	"fmt"
	"os"
)

// ImportFiles imports a message file and, if bookPath is not empty, its
// orderbook file. Symbol, Date and Levels left zero in opts are taken from
// the message file's name (TICKER_DATE_START_END_message_LEVEL.csv[.gz]).
func ImportFiles(msgPath, bookPath string, sink Sink, opts Options) (Stats, error) {
	if opts.Symbol == "" || opts.Date.IsZero() || (bookPath != "" && opts.Levels == 0) {
		n, err := ParseFileName(msgPath)
		if err != nil {
			return Stats{}, fmt.Errorf("%w (or set Symbol, Date and Levels)", err)
		}
		if opts.Symbol == "" {
			opts.Symbol = n.Symbol
		}
		if opts.Date.IsZero() {
			opts.Date = n.Date
		}
		if opts.Levels == 0 {
			opts.Levels = n.Levels
		}
	}
	mf, err := os.Open(msgPath)
	if err != nil {
		return Stats{}, err
	}
	defer mf.Close()
	mr, err := NewMessageReader(mf)
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", msgPath, err)
	}
	if bookPath == "" {
		return Import(mr, nil, sink, opts)
	}
	bf, err := os.Open(bookPath)
	if err != nil {
		return Stats{}, err
	}
	defer bf.Close()
	br, err := NewOrderbookReader(bf, opts.Levels)
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", bookPath, err)
	}
	return Import(mr, br, sink, opts)
}
