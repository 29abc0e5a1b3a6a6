package itch

import (
	"errors"
	"testing"
	"time"
)

func TestPrice4(t *testing.T) {
	for _, tc := range []struct {
		s    string
		p    Price4
		back string
	}{
		{"123.45", 1234500, "123.4500"},
		{"0.0001", 1, "0.0001"},
		{"156.25", 1562500, "156.2500"},
		{"200000", 2000000000, "200000.0000"},
		{"429496.7295", 4294967295, "429496.7295"},
		{"0", 0, "0.0000"},
		{".5", 5000, "0.5000"},
		{"7.", 70000, "7.0000"},
	} {
		p, err := ParsePrice4(tc.s)
		if err != nil || p != tc.p || p.String() != tc.back || p.Int64() != int64(tc.p) {
			t.Errorf("ParsePrice4(%q) = %d, %v, %q", tc.s, p, err, p.String())
		}
	}
	for _, s := range []string{"", ".", "1.23456", "429496.7296", "99999999999", "-1", "1,5", "1.2.3", "abc"} {
		if p, err := ParsePrice4(s); !errors.Is(err, ErrRange) {
			t.Errorf("ParsePrice4(%q) = %d, %v", s, p, err)
		}
	}
	if p, err := Price4FromInt64(1562500); err != nil || p != 1562500 {
		t.Error(p, err)
	}
	for _, v := range []int64{-1, 1 << 32} {
		if _, err := Price4FromInt64(v); !errors.Is(err, ErrRange) {
			t.Errorf("Price4FromInt64(%d): %v", v, err)
		}
	}
	if s := Price8(252712345678).String(); s != "2527.12345678" {
		t.Errorf("Price8 = %q", s)
	}
	if v, err := Price8(5).Int64(); err != nil || v != 5 {
		t.Error(v, err)
	}
	if _, err := Price8(1 << 63).Int64(); !errors.Is(err, ErrRange) {
		t.Error(err)
	}
}

func TestSymbol(t *testing.T) {
	s, err := ParseSymbol("AAPL")
	if err != nil || s != s8("AAPL    ") || s.String() != "AAPL" || string(s.Bytes()) != "AAPL" {
		t.Fatalf("%q %v", s, err)
	}
	if s, err := ParseSymbol("ABCDEFGH"); err != nil || s.String() != "ABCDEFGH" {
		t.Fatalf("%q %v", s, err)
	}
	for _, bad := range []string{"ABCDEFGHI", "A\x00", "É"} {
		if _, err := ParseSymbol(bad); !errors.Is(err, ErrRange) {
			t.Errorf("ParseSymbol(%q): %v", bad, err)
		}
	}
}

// TestDay: Unix times written by hand from `TZ=America/New_York date -d
// '2019-07-30 00:00:00' +%s` (1564459200, EDT) and 2019-12-30 (1577682000,
// EST).
func TestDay(t *testing.T) {
	ny, err := NewYork()
	if err != nil {
		t.Skipf("no America/New_York zoneinfo on this machine: %v", err)
	}
	summer := NewDay(2019, time.July, 30, ny)
	if summer.Midnight() != 1564459200e9 {
		t.Fatalf("midnight %d", summer.Midnight())
	}
	// 11072057543747 ns = 03:04:32.057543747 (the fragment's first message).
	if got := summer.UnixNano(11072057543747); got != 1564459200e9+11072057543747 {
		t.Fatalf("UnixNano = %d", got)
	}
	winter := NewDay(2019, time.December, 30, ny)
	if winter.Midnight() != 1577682000e9 {
		t.Fatalf("winter midnight %d", winter.Midnight())
	}
	// 09:30 EST is 14:30 UTC: 34200 s after local midnight.
	open := time.Date(2019, time.December, 30, 14, 30, 0, 0, time.UTC).UnixNano()
	if ts, err := winter.Timestamp(open); err != nil || ts != 34200e9 {
		t.Fatalf("Timestamp(09:30 EST) = %d, %v", ts, err)
	}
	if DayOf(time.Date(2019, time.December, 30, 15, 59, 0, 0, ny)) != winter {
		t.Fatal("DayOf")
	}
	if _, err := winter.Timestamp(winter.Midnight() - 1); !errors.Is(err, ErrRange) {
		t.Fatal(err)
	}
	if _, err := winter.Timestamp(winter.Midnight() + MaxTimestamp + 1); !errors.Is(err, ErrRange) {
		t.Fatal(err)
	}
}
