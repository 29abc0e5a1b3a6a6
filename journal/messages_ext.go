package journal

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Time returns the frame's event time.
func (f *Frame) Time() time.Time { return time.Unix(0, f.TS).UTC() }

// Trading states (TradingStatus.Status), format.md §3.2.
const (
	StatusHalted        uint8 = 1 // no trading, no quoting
	StatusPaused        uint8 = 2 // a short pause (e.g. LULD)
	StatusQuotationOnly uint8 = 3 // quoting allowed, no trading
	StatusTrading       uint8 = 4 // trading
)

// StatusName names a trading state.
func StatusName(s uint8) string {
	switch s {
	case StatusHalted:
		return "halted"
	case StatusPaused:
		return "paused"
	case StatusQuotationOnly:
		return "quotation_only"
	case StatusTrading:
		return "trading"
	}
	return "unknown"
}

// TradingStatus says whether an instrument trades (ITCH 'H', LOBSTER type
// 7). Layout (16 bytes): status uint8 at 0, reserved [3]byte at 1, reason
// [4]byte ASCII at 4 (the exchange's reason code, NUL-padded), reserved
// [8]byte at 8.
type TradingStatus struct {
	Status uint8
	Reason [4]byte
}

// Encode writes the 16-byte payload into b (see sized) and returns it.
func (t *TradingStatus) Encode(b []byte) []byte {
	b = sized(b, 16)
	clear(b)
	b[0] = t.Status
	copy(b[4:8], t.Reason[:])
	return b
}

// Decode reads a 16-byte payload.
func (t *TradingStatus) Decode(b []byte) error {
	if len(b) < 16 {
		return errShort(TypeTradingStatus, len(b))
	}
	t.Status = b[0]
	copy(t.Reason[:], b[4:8])
	return nil
}

// ReasonString returns the reason code without padding.
func (t *TradingStatus) ReasonString() string { return string(bytes.TrimRight(t.Reason[:], "\x00 ")) }

// Gap records source messages that a feed handler could not recover (never a
// silent skip). Layout (32 bytes): first uint64 at 0 (first missing source
// sequence number), count uint64 at 8, source [16]byte ASCII at 16 (the
// feed's session or name, NUL-padded).
type Gap struct {
	First  uint64
	Count  uint64
	Source [16]byte
}

// Encode writes the 32-byte payload into b (see sized) and returns it.
func (g *Gap) Encode(b []byte) []byte {
	b = sized(b, 32)
	binary.LittleEndian.PutUint64(b[0:], g.First)
	binary.LittleEndian.PutUint64(b[8:], g.Count)
	copy(b[16:32], g.Source[:])
	return b
}

// Decode reads a 32-byte payload.
func (g *Gap) Decode(b []byte) error {
	if len(b) < 32 {
		return errShort(TypeGap, len(b))
	}
	g.First = binary.LittleEndian.Uint64(b[0:])
	g.Count = binary.LittleEndian.Uint64(b[8:])
	copy(g.Source[:], b[16:32])
	return nil
}

// SourceString returns the source without padding.
func (g *Gap) SourceString() string { return string(bytes.TrimRight(g.Source[:], "\x00 ")) }

// OrderRequest is an order a trading engine asks a risk manager for.
// Layout (64 bytes): order_id uint64 at 0, price int64 at 8, qty int64 at 16,
// side uint8 at 24, flags uint8 at 25, reserved [2]byte at 26, strategy
// uint32 at 28, trigger_seq uint64 at 32 (the market-data frame that
// triggered it), trigger_ts int64 at 40 (that frame's event time), seen int64
// at 48 (Unix ns when the engine read the trigger), decided int64 at 56
// (Unix ns when the engine decided).
type OrderRequest struct {
	OrderID    uint64
	Price      Price
	Qty        int64
	Side       Side
	Flags      uint8
	Strategy   uint32
	TriggerSeq uint64
	TriggerTS  int64
	Seen       int64
	Decided    int64
}

// Encode writes the 64-byte payload into b (see sized) and returns it.
func (o *OrderRequest) Encode(b []byte) []byte {
	b = sized(b, 64)
	binary.LittleEndian.PutUint64(b[0:], o.OrderID)
	binary.LittleEndian.PutUint64(b[8:], uint64(o.Price))
	binary.LittleEndian.PutUint64(b[16:], uint64(o.Qty))
	binary.LittleEndian.PutUint32(b[24:], uint32(o.Side)|uint32(o.Flags)<<8)
	binary.LittleEndian.PutUint32(b[28:], o.Strategy)
	binary.LittleEndian.PutUint64(b[32:], o.TriggerSeq)
	binary.LittleEndian.PutUint64(b[40:], uint64(o.TriggerTS))
	binary.LittleEndian.PutUint64(b[48:], uint64(o.Seen))
	binary.LittleEndian.PutUint64(b[56:], uint64(o.Decided))
	return b
}

// Decode reads a 64-byte payload.
func (o *OrderRequest) Decode(b []byte) error {
	if len(b) < 64 {
		return errShort(TypeOrderRequest, len(b))
	}
	o.OrderID = binary.LittleEndian.Uint64(b[0:])
	o.Price = int64(binary.LittleEndian.Uint64(b[8:]))
	o.Qty = int64(binary.LittleEndian.Uint64(b[16:]))
	o.Side, o.Flags = Side(b[24]), b[25]
	o.Strategy = binary.LittleEndian.Uint32(b[28:])
	o.TriggerSeq = binary.LittleEndian.Uint64(b[32:])
	o.TriggerTS = int64(binary.LittleEndian.Uint64(b[40:]))
	o.Seen = int64(binary.LittleEndian.Uint64(b[48:]))
	o.Decided = int64(binary.LittleEndian.Uint64(b[56:]))
	return nil
}

// Risk verdicts (RiskDecision.Verdict).
const (
	RiskAccepted uint8 = 1
	RiskRejected uint8 = 2
)

// RiskDecision is a risk manager's decision on an OrderRequest. Layout (64
// bytes): order_id uint64 at 0, price int64 at 8, qty int64 at 16, side uint8
// at 24, verdict uint8 at 25 (1 accepted, 2 rejected), reason uint16 at 26
// (0 when accepted; the risk manager's documented codes), strategy uint32 at
// 28, trigger_seq uint64 at 32, requested int64 at 40 (the request's decided
// time), received int64 at 48 (Unix ns when risk read the request), decided
// int64 at 56 (Unix ns when risk decided).
type RiskDecision struct {
	OrderID    uint64
	Price      Price
	Qty        int64
	Side       Side
	Verdict    uint8
	Reason     uint16
	Strategy   uint32
	TriggerSeq uint64
	Requested  int64
	Received   int64
	Decided    int64
}

// Encode writes the 64-byte payload into b (see sized) and returns it.
func (d *RiskDecision) Encode(b []byte) []byte {
	b = sized(b, 64)
	binary.LittleEndian.PutUint64(b[0:], d.OrderID)
	binary.LittleEndian.PutUint64(b[8:], uint64(d.Price))
	binary.LittleEndian.PutUint64(b[16:], uint64(d.Qty))
	binary.LittleEndian.PutUint32(b[24:], uint32(d.Side)|uint32(d.Verdict)<<8|uint32(d.Reason)<<16)
	binary.LittleEndian.PutUint32(b[28:], d.Strategy)
	binary.LittleEndian.PutUint64(b[32:], d.TriggerSeq)
	binary.LittleEndian.PutUint64(b[40:], uint64(d.Requested))
	binary.LittleEndian.PutUint64(b[48:], uint64(d.Received))
	binary.LittleEndian.PutUint64(b[56:], uint64(d.Decided))
	return b
}

// Decode reads a 64-byte payload.
func (d *RiskDecision) Decode(b []byte) error {
	if len(b) < 64 {
		return errShort(TypeRiskDecision, len(b))
	}
	d.OrderID = binary.LittleEndian.Uint64(b[0:])
	d.Price = int64(binary.LittleEndian.Uint64(b[8:]))
	d.Qty = int64(binary.LittleEndian.Uint64(b[16:]))
	d.Side, d.Verdict = Side(b[24]), b[25]
	d.Reason = binary.LittleEndian.Uint16(b[26:])
	d.Strategy = binary.LittleEndian.Uint32(b[28:])
	d.TriggerSeq = binary.LittleEndian.Uint64(b[32:])
	d.Requested = int64(binary.LittleEndian.Uint64(b[40:]))
	d.Received = int64(binary.LittleEndian.Uint64(b[48:]))
	d.Decided = int64(binary.LittleEndian.Uint64(b[56:]))
	return nil
}
