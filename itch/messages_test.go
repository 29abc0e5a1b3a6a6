package itch

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// unhex turns a hand-written, space-separated hex string into bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s8 is an 8-byte symbol literal, written out with its padding.
func s8(s string) Symbol {
	if len(s) != 8 {
		panic("s8 wants 8 bytes: " + s)
	}
	var y Symbol
	copy(y[:], s)
	return y
}

// hdr is the header every vector below uses: locate 0x0102, tracking 0x0304,
// timestamp 0x0a0b0c0d0e0f (three different values, so a swapped or shifted
// field shows).
const hdr = "0102 0304 0a0b0c0d0e0f"

var h0 = Header{Locate: 0x0102, Tracking: 0x0304, Timestamp: 0x0a0b0c0d0e0f}

// vectors: for every type, wire bytes written by hand field by field from the
// specification's layout, and the struct those bytes mean, also by hand.
var vectors = []struct {
	typ  Type
	wire string
	want Msg
}{
	{TypeSystemEvent, "53 " + hdr + " 51", &SystemEvent{h0, 'Q'}},
	{TypeStockDirectory, "52 " + hdr + " 4141504c20202020 51 4e 00000064 4e 43 5a20 50 4e 20 31 59 00000002 4e",
		&StockDirectory{Header: h0, Stock: s8("AAPL    "), MarketCategory: 'Q', FinancialStatus: 'N', RoundLotSize: 100,
			RoundLotsOnly: 'N', IssueClassification: 'C', IssueSubType: [2]byte{'Z', ' '}, Authenticity: 'P',
			ShortSaleThreshold: 'N', IPOFlag: ' ', LULDRefPriceTier: '1', ETPFlag: 'Y', ETPLeverageFactor: 2, InverseIndicator: 'N'}},
	{TypeStockTradingAction, "48 " + hdr + " 4d53465420202020 48 20 54312020",
		&StockTradingAction{Header: h0, Stock: s8("MSFT    "), TradingState: 'H', Reserved: ' ', Reason: [4]byte{'T', '1', ' ', ' '}}},
	{TypeRegSHORestriction, "59 " + hdr + " 5a5a5a5a5a5a5a5a 31", &RegSHORestriction{h0, s8("ZZZZZZZZ"), '1'}},
	{TypeMarketParticipantPosition, "4c " + hdr + " 47534d50 49424d2020202020 59 4e 41",
		&MarketParticipantPosition{Header: h0, MPID: [4]byte{'G', 'S', 'M', 'P'}, Stock: s8("IBM     "), PrimaryMarketMaker: 'Y', MarketMakerMode: 'N', State: 'A'}},
	{TypeMWCBDeclineLevel, "56 " + hdr + " 0000003a8b5c7e00 0000003545a6e800 0000002e90edd000",
		&MWCBDeclineLevel{h0, 0x3a8b5c7e00, 0x3545a6e800, 0x2e90edd000}},
	{TypeMWCBStatus, "57 " + hdr + " 32", &MWCBStatus{h0, '2'}},
	{TypeIPOQuotingPeriodUpdate, "4b " + hdr + " 4e455749504f2020 0000afc8 41 000186a0",
		&IPOQuotingPeriodUpdate{Header: h0, Stock: s8("NEWIPO  "), ReleaseTime: 45000, ReleaseQualifier: 'A', IPOPrice: 100000}},
	{TypeLULDAuctionCollar, "4a " + hdr + " 4c554c4420202020 000f4240 00107ac0 000dbba0 00000001",
		&LULDAuctionCollar{Header: h0, Stock: s8("LULD    "), ReferencePrice: 1000000, UpperPrice: 1080000, LowerPrice: 900000, Extension: 1}},
	{TypeOperationalHalt, "68 " + hdr + " 4142434420202020 51 48", &OperationalHalt{h0, s8("ABCD    "), 'Q', 'H'}},
	{TypeAddOrder, "41 " + hdr + " 0000000000bc614e 42 000001f4 4141504c20202020 0017d784",
		&AddOrder{Header: h0, OrderRef: 12345678, Side: 'B', Shares: 500, Stock: s8("AAPL    "), Price: 1562500}},
	{TypeAddOrderMPID, "46 " + hdr + " 0000000000bc614e 53 000001f4 4141504c20202020 0017d784 474f4c44",
		&AddOrderMPID{Header: h0, OrderRef: 12345678, Side: 'S', Shares: 500, Stock: s8("AAPL    "), Price: 1562500, Attribution: [4]byte{'G', 'O', 'L', 'D'}}},
	{TypeOrderExecuted, "45 " + hdr + " 0000000000bc614e 00000064 0000000000000457",
		&OrderExecuted{Header: h0, OrderRef: 12345678, Shares: 100, Match: 1111}},
	{TypeOrderExecutedWithPrice, "43 " + hdr + " 0000000000bc614e 00000064 0000000000000458 4e 0017d7e8",
		&OrderExecutedWithPrice{Header: h0, OrderRef: 12345678, Shares: 100, Match: 1112, Printable: 'N', Price: 1562600}},
	{TypeOrderCancel, "58 " + hdr + " 0000000000bc614e 00000032", &OrderCancel{Header: h0, OrderRef: 12345678, Canceled: 50}},
	{TypeOrderDelete, "44 " + hdr + " 0000000000bc614e", &OrderDelete{Header: h0, OrderRef: 12345678}},
	{TypeOrderReplace, "55 " + hdr + " 0000000000bc614e 0000000000bc614f 000000c8 0017d720",
		&OrderReplace{Header: h0, OrigOrderRef: 12345678, NewOrderRef: 12345679, Shares: 200, Price: 1562400}},
	{TypeTrade, "50 " + hdr + " 0000000000000000 42 0000012c 4141504c20202020 0017d784 0000000000000459",
		&Trade{Header: h0, OrderRef: 0, Side: 'B', Shares: 300, Stock: s8("AAPL    "), Price: 1562500, Match: 1113}},
	{TypeCrossTrade, "51 " + hdr + " 00000000000f4240 4141504c20202020 0017d784 000000000000045a 4f",
		&CrossTrade{Header: h0, Shares: 1000000, Stock: s8("AAPL    "), Price: 1562500, Match: 1114, CrossType: 'O'}},
	{TypeBrokenTrade, "42 " + hdr + " 0000000000000459", &BrokenTrade{Header: h0, Match: 1113}},
	{TypeNOII, "49 " + hdr + " 0000000000002710 00000000000003e8 42 4141504c20202020 0017d784 0017d7e8 0017d720 43 4c",
		&NOII{Header: h0, PairedShares: 10000, ImbalanceShares: 1000, ImbalanceDirection: 'B', Stock: s8("AAPL    "),
			FarPrice: 1562500, NearPrice: 1562600, CurrentRefPrice: 1562400, CrossType: 'C', PriceVariation: 'L'}},
	{TypeRPII, "4e " + hdr + " 4141504c20202020 41", &RPII{h0, s8("AAPL    "), 'A'}},
	{TypeDLCR, "4f " + hdr + " 444c435220202020 59 000f4240 001e8480 00186a00 0000232f2bb94e00 00124f80 001e8480",
		&DLCR{Header: h0, Stock: s8("DLCR    "), OpenEligibility: 'Y', MinAllowedPrice: 1000000, MaxAllowedPrice: 2000000,
			NearExecutionPrice: 1600000, NearExecutionTime: 0x232f2bb94e00, LowerPriceRangeCollar: 1200000, UpperPriceRangeCollar: 2000000}},
}

// specLen is each type's length as listed in the specification.
var specLen = map[Type]int{'S': 12, 'R': 39, 'H': 25, 'Y': 20, 'L': 26, 'V': 35, 'W': 12, 'K': 28, 'J': 35, 'h': 21,
	'A': 36, 'F': 40, 'E': 31, 'C': 36, 'X': 23, 'D': 19, 'U': 35, 'P': 44, 'Q': 40, 'B': 19, 'I': 50, 'N': 20, 'O': 48}

func TestLenTable(t *testing.T) {
	if len(Types) != 23 || len(specLen) != 23 {
		t.Fatalf("%d types, %d spec lengths; want 23", len(Types), len(specLen))
	}
	for _, ty := range Types {
		if Len(ty) != specLen[ty] || ty.Len() != specLen[ty] || !ty.Known() {
			t.Errorf("%v: Len %d, spec %d", ty, Len(ty), specLen[ty])
		}
	}
	known := 0
	for b := 0; b < 256; b++ {
		if Type(b).Known() {
			known++
			if _, ok := specLen[Type(b)]; !ok {
				t.Errorf("byte %#x is known but not an ITCH 5.0 type", b)
			}
		}
	}
	if known != 23 {
		t.Errorf("%d known types", known)
	}
	if Len('Z') != 0 || Type('Z').Known() {
		t.Error("'Z' is not an ITCH 5.0 type")
	}
}

func TestVectors(t *testing.T) {
	seen := map[Type]bool{}
	for _, v := range vectors {
		t.Run(string(rune(v.typ)), func(t *testing.T) {
			seen[v.typ] = true
			wire := unhex(t, v.wire)
			if len(wire) != specLen[v.typ] {
				t.Fatalf("hand-written vector has %d bytes, spec says %d", len(wire), specLen[v.typ])
			}
			// Decode: every field as written by hand.
			got := NewMsg(v.typ)
			if got.Type() != v.typ || v.want.Type() != v.typ {
				t.Fatalf("Type() = %v", got.Type())
			}
			if err := got.Decode(wire); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, v.want) {
				t.Fatalf("decoded\n %+v\nwant\n %+v", got, v.want)
			}
			// Encode both ways: the hand-written bytes.
			if enc := v.want.AppendEncode([]byte("xy")); !bytes.Equal(enc[2:], wire) || string(enc[:2]) != "xy" {
				t.Fatalf("AppendEncode = % x\nwant          % x", enc[2:], wire)
			}
			buf := bytes.Repeat([]byte{0xee}, len(wire)+3)
			n, err := v.want.Encode(buf)
			if err != nil || n != len(wire) || !bytes.Equal(buf[:n], wire) || buf[n] != 0xee {
				t.Fatalf("Encode = %d, %v, % x", n, err, buf)
			}
			// A destination one byte short fails clearly and writes nothing.
			short := make([]byte, len(wire)-1)
			if n, err := v.want.Encode(short); n != 0 || !errors.Is(err, ErrBufferTooSmall) || !bytes.Equal(short, make([]byte, len(short))) {
				t.Fatalf("Encode into %d bytes = %d, %v", len(short), n, err)
			}
			// The generic view agrees.
			m, err := Parse(wire)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != v.typ || m.Locate() != 0x0102 || m.Tracking() != 0x0304 || m.Timestamp() != 0x0a0b0c0d0e0f || m.Header() != h0 {
				t.Fatalf("view: %v %d %d %d", m.Type(), m.Locate(), m.Tracking(), m.Timestamp())
			}
			sym, ok := m.Stock()
			if ok != v.typ.HasStock() {
				t.Fatalf("Stock ok = %v", ok)
			}
			if ok {
				if f := reflect.ValueOf(v.want).Elem().FieldByName("Stock"); Symbol(f.Interface().(Symbol)) != sym {
					t.Fatalf("Stock() = %q, struct has %q", sym, f.Interface())
				}
			}
			checkBadLengths(t, v.typ, wire)
		})
	}
	if len(seen) != 23 {
		t.Fatalf("vectors cover %d types", len(seen))
	}
}

// checkBadLengths: one byte short, one byte long, empty, another type.
func checkBadLengths(t *testing.T, ty Type, wire []byte) {
	m := NewMsg(ty)
	var e *Error
	err := m.Decode(wire[: len(wire)-1 : len(wire)-1])
	if !errors.As(err, &e) || e.Err != ErrShort || e.Offset != int64(len(wire)-1) || e.Want != len(wire) {
		t.Errorf("short: %v", err)
	}
	if _, err := Parse(wire[:len(wire)-1]); !errors.Is(err, ErrShort) {
		t.Errorf("Parse short: %v", err)
	}
	long := append(append([]byte{}, wire...), 0)
	err = m.Decode(long)
	if !errors.As(err, &e) || e.Err != ErrLength || e.Offset != int64(len(wire)) || e.Have != len(wire)+1 {
		t.Errorf("long: %v", err)
	}
	if _, err := Parse(long); !errors.Is(err, ErrLength) {
		t.Errorf("Parse long: %v", err)
	}
	if err := m.Decode(nil); !errors.Is(err, ErrShort) {
		t.Errorf("empty: %v", err)
	}
	other := append([]byte{}, wire...)
	other[0] = 'Z'
	if err := m.Decode(other); !errors.As(err, &e) || e.Err != ErrType || e.Type != 'Z' {
		t.Errorf("other type: %v", err)
	}
	if _, err := Parse(other); !errors.As(err, &e) || e.Err != ErrUnknownType || e.Offset != 0 {
		t.Errorf("Parse unknown: %v", err)
	}
	if err.Error() == "" {
		t.Error("empty message")
	}
}

func TestEncodeTimestampRange(t *testing.T) {
	m := AddOrder{Header: Header{Timestamp: MaxTimestamp + 1}}
	if n, err := m.Encode(make([]byte, 64)); n != 0 || !errors.Is(err, ErrRange) {
		t.Fatalf("Encode with a 49-bit timestamp = %d, %v", n, err)
	}
	m.Timestamp = MaxTimestamp
	b := make([]byte, 36)
	if _, err := m.Encode(b); err != nil || !bytes.Equal(b[5:11], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("max timestamp: %v % x", err, b[5:11])
	}
}

func TestMessageViewNeverPanics(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {'A'}, {'A', 1, 2, 3}, []byte("R0123456789")} {
		m := Message(b)
		_ = m.Type()
		_, _, _ = m.Locate(), m.Tracking(), m.Timestamp()
		if _, ok := m.Stock(); ok {
			t.Errorf("Stock() of % x reported a symbol", b)
		}
	}
}

func TestTypeString(t *testing.T) {
	if s := TypeAddOrder.String(); s != "A(add_order)" {
		t.Errorf("%q", s)
	}
	if s := Type(0x7f).String(); s != "0x7f" {
		t.Errorf("%q", s)
	}
	if NewMsg('Z') != nil {
		t.Error("NewMsg of an unknown type")
	}
}
