package lobster

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Date is a civil (calendar) date, the trading day of a LOBSTER file.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == Date{} }

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("lobster: date %q: %w", s, err)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// FileName is what a LOBSTER file name says:
// TICKER_YYYY-MM-DD_STARTMS_ENDMS_{message,orderbook}_LEVEL.csv[.gz].
type FileName struct {
	Symbol         string
	Date           Date
	StartMS, EndMS int64 // milliseconds after midnight covered
	Kind           string
	Levels         int
}

// ParseFileName parses the base name of path.
func ParseFileName(path string) (FileName, error) {
	base := filepath.Base(path)
	s := strings.TrimSuffix(base, ".gz")
	s = strings.TrimSuffix(s, ".csv")
	p := strings.Split(s, "_")
	bad := func(why string) (FileName, error) {
		return FileName{}, fmt.Errorf("lobster: file name %q is not TICKER_DATE_START_END_KIND_LEVEL.csv: %s", base, why)
	}
	if len(p) < 6 {
		return bad("too few parts")
	}
	// The ticker may itself contain '_'; the last five parts are fixed.
	p = append([]string{strings.Join(p[:len(p)-5], "_")}, p[len(p)-5:]...)
	var n FileName
	var err error
	n.Symbol, n.Kind = p[0], p[4]
	if n.Kind != "message" && n.Kind != "orderbook" {
		return bad("kind " + n.Kind)
	}
	if n.Date, err = ParseDate(p[1]); err != nil {
		return bad(err.Error())
	}
	if n.StartMS, err = strconv.ParseInt(p[2], 10, 64); err != nil {
		return bad("start " + p[2])
	}
	if n.EndMS, err = strconv.ParseInt(p[3], 10, 64); err != nil {
		return bad("end " + p[3])
	}
	if n.Levels, err = strconv.Atoi(p[5]); err != nil || n.Levels <= 0 {
		return bad("level " + p[5])
	}
	return n, nil
}

// OrderbookName returns the name LOBSTER gives the orderbook file of the
// message file at path (TICKER_DATE_START_END_message_L.csv[.gz] →
// TICKER_DATE_START_END_orderbook_L.csv[.gz], same directory), or an error
// if path is not named the LOBSTER way.
func OrderbookName(path string) (string, error) {
	n, err := ParseFileName(path)
	if err != nil {
		return "", err
	}
	if n.Kind != "message" {
		return "", fmt.Errorf("lobster: %s is a %s file, not a message file", filepath.Base(path), n.Kind)
	}
	base := filepath.Base(path)
	i := strings.LastIndex(base, "_message_")
	return filepath.Join(filepath.Dir(path), base[:i]+"_orderbook_"+base[i+len("_message_"):]), nil
}
