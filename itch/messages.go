package itch

import "encoding/binary"

var be = binary.BigEndian

// Msg is what every message struct implements: its type, Decode from exactly
// one message of that type, AppendEncode and Encode of its wire form.
type Msg interface {
	Type() Type
	Decode(b []byte) error
	AppendEncode(dst []byte) []byte
	Encode(dst []byte) (int, error)
}

// NewMsg returns a new zero struct for message type t, or nil if t is not
// an ITCH 5.0 type. It allocates; a hot path decodes into a struct it keeps.
func NewMsg(t Type) Msg {
	switch t {
	case TypeSystemEvent:
		return new(SystemEvent)
	case TypeStockDirectory:
		return new(StockDirectory)
	case TypeStockTradingAction:
		return new(StockTradingAction)
	case TypeRegSHORestriction:
		return new(RegSHORestriction)
	case TypeMarketParticipantPosition:
		return new(MarketParticipantPosition)
	case TypeMWCBDeclineLevel:
		return new(MWCBDeclineLevel)
	case TypeMWCBStatus:
		return new(MWCBStatus)
	case TypeIPOQuotingPeriodUpdate:
		return new(IPOQuotingPeriodUpdate)
	case TypeLULDAuctionCollar:
		return new(LULDAuctionCollar)
	case TypeOperationalHalt:
		return new(OperationalHalt)
	case TypeAddOrder:
		return new(AddOrder)
	case TypeAddOrderMPID:
		return new(AddOrderMPID)
	case TypeOrderExecuted:
		return new(OrderExecuted)
	case TypeOrderExecutedWithPrice:
		return new(OrderExecutedWithPrice)
	case TypeOrderCancel:
		return new(OrderCancel)
	case TypeOrderDelete:
		return new(OrderDelete)
	case TypeOrderReplace:
		return new(OrderReplace)
	case TypeTrade:
		return new(Trade)
	case TypeCrossTrade:
		return new(CrossTrade)
	case TypeBrokenTrade:
		return new(BrokenTrade)
	case TypeNOII:
		return new(NOII)
	case TypeRPII:
		return new(RPII)
	case TypeDLCR:
		return new(DLCR)
	}
	return nil
}

// ---- S: system event ------------------------------------------------------

// SystemEvent ('S', 12 bytes) signals a market or data feed handler event.
type SystemEvent struct {
	Header
	EventCode byte // 'O' start of messages, 'S' start of system hours, 'Q' start of market hours, 'M' end of market hours, 'E' end of system hours, 'C' end of messages
}

// Type returns TypeSystemEvent.
func (*SystemEvent) Type() Type { return TypeSystemEvent }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *SystemEvent) Decode(b []byte) error {
	if err := check(b, TypeSystemEvent); err != nil {
		return err
	}
	m.Header.get(b)
	m.EventCode = b[11]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *SystemEvent) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 12)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *SystemEvent) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeSystemEvent); err != nil {
		return 0, err
	}
	m.put(dst)
	return 12, nil
}

func (m *SystemEvent) put(b []byte) {
	_ = b[11]
	m.Header.put(b, TypeSystemEvent)
	b[11] = m.EventCode
}

// ---- R: stock directory ---------------------------------------------------

// StockDirectory ('R', 39 bytes) announces an instrument and its locate code
// at the start of the day.
type StockDirectory struct {
	Header
	Stock               Symbol
	MarketCategory      byte    // 'Q' Global Select, 'G' Global Market, 'S' Capital Market, 'N' NYSE, 'A' NYSE American, 'P' NYSE Arca, 'Z' BATS, 'V' IEX, ' ' n/a
	FinancialStatus     byte    // 'N' normal, 'D' deficient, 'E' delinquent, 'Q' bankrupt, … ' ' n/a
	RoundLotSize        uint32  // shares in a round lot
	RoundLotsOnly       byte    // 'Y' only round lots accepted, 'N' no restriction
	IssueClassification byte    // 'C' common, 'A' ADS, 'P' preferred, 'W' warrant, …
	IssueSubType        [2]byte // e.g. "Z " not applicable
	Authenticity        byte    // 'P' live/production, 'T' test
	ShortSaleThreshold  byte    // 'Y' restricted, 'N' not, ' ' n/a
	IPOFlag             byte    // 'Y' new IPO, 'N' not, ' ' n/a
	LULDRefPriceTier    byte    // '1' tier 1, '2' tier 2, ' ' n/a
	ETPFlag             byte    // 'Y' exchange-traded product, 'N' not, ' ' n/a
	ETPLeverageFactor   uint32  // leverage factor of an ETP
	InverseIndicator    byte    // 'Y' inverse ETP, 'N' not
}

// Type returns TypeStockDirectory.
func (*StockDirectory) Type() Type { return TypeStockDirectory }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *StockDirectory) Decode(b []byte) error {
	if err := check(b, TypeStockDirectory); err != nil {
		return err
	}
	_ = b[38]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.MarketCategory = b[19]
	m.FinancialStatus = b[20]
	m.RoundLotSize = be.Uint32(b[21:])
	m.RoundLotsOnly = b[25]
	m.IssueClassification = b[26]
	m.IssueSubType = [2]byte{b[27], b[28]}
	m.Authenticity = b[29]
	m.ShortSaleThreshold = b[30]
	m.IPOFlag = b[31]
	m.LULDRefPriceTier = b[32]
	m.ETPFlag = b[33]
	m.ETPLeverageFactor = be.Uint32(b[34:])
	m.InverseIndicator = b[38]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *StockDirectory) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 39)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *StockDirectory) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeStockDirectory); err != nil {
		return 0, err
	}
	m.put(dst)
	return 39, nil
}

func (m *StockDirectory) put(b []byte) {
	_ = b[38]
	m.Header.put(b, TypeStockDirectory)
	copy(b[11:19], m.Stock[:])
	b[19] = m.MarketCategory
	b[20] = m.FinancialStatus
	be.PutUint32(b[21:], m.RoundLotSize)
	b[25] = m.RoundLotsOnly
	b[26] = m.IssueClassification
	b[27], b[28] = m.IssueSubType[0], m.IssueSubType[1]
	b[29] = m.Authenticity
	b[30] = m.ShortSaleThreshold
	b[31] = m.IPOFlag
	b[32] = m.LULDRefPriceTier
	b[33] = m.ETPFlag
	be.PutUint32(b[34:], m.ETPLeverageFactor)
	b[38] = m.InverseIndicator
}

// ---- H: stock trading action ----------------------------------------------

// StockTradingAction ('H', 25 bytes) reports a halt, pause, quotation-only
// period or resumption of trading in one stock.
type StockTradingAction struct {
	Header
	Stock        Symbol
	TradingState byte    // 'H' halted, 'P' paused, 'Q' quotation only, 'T' trading
	Reserved     byte    // reserved byte, kept as sent
	Reason       [4]byte // reason code, e.g. "T1  "
}

// Type returns TypeStockTradingAction.
func (*StockTradingAction) Type() Type { return TypeStockTradingAction }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *StockTradingAction) Decode(b []byte) error {
	if err := check(b, TypeStockTradingAction); err != nil {
		return err
	}
	_ = b[24]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.TradingState = b[19]
	m.Reserved = b[20]
	copy(m.Reason[:], b[21:25])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *StockTradingAction) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 25)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *StockTradingAction) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeStockTradingAction); err != nil {
		return 0, err
	}
	m.put(dst)
	return 25, nil
}

func (m *StockTradingAction) put(b []byte) {
	_ = b[24]
	m.Header.put(b, TypeStockTradingAction)
	copy(b[11:19], m.Stock[:])
	b[19] = m.TradingState
	b[20] = m.Reserved
	copy(b[21:25], m.Reason[:])
}

// ---- Y: Reg SHO short sale price test restriction -------------------------

// RegSHORestriction ('Y', 20 bytes) reports a stock's Reg SHO short sale price
// test restriction status.
type RegSHORestriction struct {
	Header
	Stock  Symbol
	Action byte // '0' no test in effect, '1' restriction in effect (intra-day drop), '2' restriction remains in effect
}

// Type returns TypeRegSHORestriction.
func (*RegSHORestriction) Type() Type { return TypeRegSHORestriction }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *RegSHORestriction) Decode(b []byte) error {
	if err := check(b, TypeRegSHORestriction); err != nil {
		return err
	}
	_ = b[19]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.Action = b[19]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *RegSHORestriction) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 20)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *RegSHORestriction) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeRegSHORestriction); err != nil {
		return 0, err
	}
	m.put(dst)
	return 20, nil
}

func (m *RegSHORestriction) put(b []byte) {
	_ = b[19]
	m.Header.put(b, TypeRegSHORestriction)
	copy(b[11:19], m.Stock[:])
	b[19] = m.Action
}

// ---- L: market participant position --------------------------------------

// MarketParticipantPosition ('L', 26 bytes) reports a market participant's
// status in one stock.
type MarketParticipantPosition struct {
	Header
	MPID               [4]byte // market participant identifier
	Stock              Symbol
	PrimaryMarketMaker byte // 'Y' primary, 'N' not
	MarketMakerMode    byte // 'N' normal, 'P' passive, 'S' syndicate, 'R' pre-syndicate, 'L' penalty
	State              byte // 'A' active, 'E' excused, 'W' withdrawn, 'S' suspended, 'D' deleted
}

// Type returns TypeMarketParticipantPosition.
func (*MarketParticipantPosition) Type() Type { return TypeMarketParticipantPosition }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *MarketParticipantPosition) Decode(b []byte) error {
	if err := check(b, TypeMarketParticipantPosition); err != nil {
		return err
	}
	_ = b[25]
	m.Header.get(b)
	copy(m.MPID[:], b[11:15])
	copy(m.Stock[:], b[15:23])
	m.PrimaryMarketMaker = b[23]
	m.MarketMakerMode = b[24]
	m.State = b[25]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *MarketParticipantPosition) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 26)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *MarketParticipantPosition) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeMarketParticipantPosition); err != nil {
		return 0, err
	}
	m.put(dst)
	return 26, nil
}

func (m *MarketParticipantPosition) put(b []byte) {
	_ = b[25]
	m.Header.put(b, TypeMarketParticipantPosition)
	copy(b[11:15], m.MPID[:])
	copy(b[15:23], m.Stock[:])
	b[23] = m.PrimaryMarketMaker
	b[24] = m.MarketMakerMode
	b[25] = m.State
}

// ---- V: MWCB decline level ------------------------------------------------

// MWCBDeclineLevel ('V', 35 bytes) gives the market-wide circuit breaker
// levels for the day, as 8-decimal prices.
type MWCBDeclineLevel struct {
	Header
	Level1, Level2, Level3 Price8
}

// Type returns TypeMWCBDeclineLevel.
func (*MWCBDeclineLevel) Type() Type { return TypeMWCBDeclineLevel }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *MWCBDeclineLevel) Decode(b []byte) error {
	if err := check(b, TypeMWCBDeclineLevel); err != nil {
		return err
	}
	_ = b[34]
	m.Header.get(b)
	m.Level1 = Price8(be.Uint64(b[11:]))
	m.Level2 = Price8(be.Uint64(b[19:]))
	m.Level3 = Price8(be.Uint64(b[27:]))
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *MWCBDeclineLevel) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 35)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *MWCBDeclineLevel) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeMWCBDeclineLevel); err != nil {
		return 0, err
	}
	m.put(dst)
	return 35, nil
}

func (m *MWCBDeclineLevel) put(b []byte) {
	_ = b[34]
	m.Header.put(b, TypeMWCBDeclineLevel)
	be.PutUint64(b[11:], uint64(m.Level1))
	be.PutUint64(b[19:], uint64(m.Level2))
	be.PutUint64(b[27:], uint64(m.Level3))
}

// ---- W: MWCB status -------------------------------------------------------

// MWCBStatus ('W', 12 bytes) reports that a market-wide circuit breaker level
// has been breached.
type MWCBStatus struct {
	Header
	BreachedLevel byte // '1', '2' or '3'
}

// Type returns TypeMWCBStatus.
func (*MWCBStatus) Type() Type { return TypeMWCBStatus }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *MWCBStatus) Decode(b []byte) error {
	if err := check(b, TypeMWCBStatus); err != nil {
		return err
	}
	m.Header.get(b)
	m.BreachedLevel = b[11]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *MWCBStatus) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 12)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *MWCBStatus) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeMWCBStatus); err != nil {
		return 0, err
	}
	m.put(dst)
	return 12, nil
}

func (m *MWCBStatus) put(b []byte) {
	_ = b[11]
	m.Header.put(b, TypeMWCBStatus)
	b[11] = m.BreachedLevel
}

// ---- K: IPO quoting period update -----------------------------------------

// IPOQuotingPeriodUpdate ('K', 28 bytes) gives the anticipated quotation
// release time of an IPO.
type IPOQuotingPeriodUpdate struct {
	Header
	Stock            Symbol
	ReleaseTime      uint32 // seconds since midnight
	ReleaseQualifier byte   // 'A' anticipated release time, 'C' release canceled or postponed
	IPOPrice         Price4
}

// Type returns TypeIPOQuotingPeriodUpdate.
func (*IPOQuotingPeriodUpdate) Type() Type { return TypeIPOQuotingPeriodUpdate }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *IPOQuotingPeriodUpdate) Decode(b []byte) error {
	if err := check(b, TypeIPOQuotingPeriodUpdate); err != nil {
		return err
	}
	_ = b[27]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.ReleaseTime = be.Uint32(b[19:])
	m.ReleaseQualifier = b[23]
	m.IPOPrice = Price4(be.Uint32(b[24:]))
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *IPOQuotingPeriodUpdate) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 28)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *IPOQuotingPeriodUpdate) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeIPOQuotingPeriodUpdate); err != nil {
		return 0, err
	}
	m.put(dst)
	return 28, nil
}

func (m *IPOQuotingPeriodUpdate) put(b []byte) {
	_ = b[27]
	m.Header.put(b, TypeIPOQuotingPeriodUpdate)
	copy(b[11:19], m.Stock[:])
	be.PutUint32(b[19:], m.ReleaseTime)
	b[23] = m.ReleaseQualifier
	be.PutUint32(b[24:], uint32(m.IPOPrice))
}

// ---- J: LULD auction collar -----------------------------------------------

// LULDAuctionCollar ('J', 35 bytes) gives the auction collar thresholds of a
// stock paused by a limit up-limit down trading pause.
type LULDAuctionCollar struct {
	Header
	Stock          Symbol
	ReferencePrice Price4
	UpperPrice     Price4
	LowerPrice     Price4
	Extension      uint32 // number of extensions of the reopening auction
}

// Type returns TypeLULDAuctionCollar.
func (*LULDAuctionCollar) Type() Type { return TypeLULDAuctionCollar }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *LULDAuctionCollar) Decode(b []byte) error {
	if err := check(b, TypeLULDAuctionCollar); err != nil {
		return err
	}
	_ = b[34]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.ReferencePrice = Price4(be.Uint32(b[19:]))
	m.UpperPrice = Price4(be.Uint32(b[23:]))
	m.LowerPrice = Price4(be.Uint32(b[27:]))
	m.Extension = be.Uint32(b[31:])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *LULDAuctionCollar) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 35)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *LULDAuctionCollar) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeLULDAuctionCollar); err != nil {
		return 0, err
	}
	m.put(dst)
	return 35, nil
}

func (m *LULDAuctionCollar) put(b []byte) {
	_ = b[34]
	m.Header.put(b, TypeLULDAuctionCollar)
	copy(b[11:19], m.Stock[:])
	be.PutUint32(b[19:], uint32(m.ReferencePrice))
	be.PutUint32(b[23:], uint32(m.UpperPrice))
	be.PutUint32(b[27:], uint32(m.LowerPrice))
	be.PutUint32(b[31:], m.Extension)
}

// ---- h: operational halt --------------------------------------------------

// OperationalHalt ('h', 21 bytes) reports an operational halt or resumption
// of a stock on one NASDAQ market.
type OperationalHalt struct {
	Header
	Stock      Symbol
	MarketCode byte // 'Q' NASDAQ, 'B' BX, 'X' PSX
	Action     byte // 'H' halted, 'T' halt lifted
}

// Type returns TypeOperationalHalt.
func (*OperationalHalt) Type() Type { return TypeOperationalHalt }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *OperationalHalt) Decode(b []byte) error {
	if err := check(b, TypeOperationalHalt); err != nil {
		return err
	}
	_ = b[20]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.MarketCode = b[19]
	m.Action = b[20]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *OperationalHalt) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 21)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *OperationalHalt) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeOperationalHalt); err != nil {
		return 0, err
	}
	m.put(dst)
	return 21, nil
}

func (m *OperationalHalt) put(b []byte) {
	_ = b[20]
	m.Header.put(b, TypeOperationalHalt)
	copy(b[11:19], m.Stock[:])
	b[19] = m.MarketCode
	b[20] = m.Action
}

// ---- A: add order (no MPID) -----------------------------------------------

// AddOrder ('A', 36 bytes) adds a displayed order to the book, without MPID
// attribution.
type AddOrder struct {
	Header
	OrderRef uint64 // order reference number, unique for the day
	Side     byte   // 'B' buy, 'S' sell
	Shares   uint32
	Stock    Symbol
	Price    Price4
}

// Type returns TypeAddOrder.
func (*AddOrder) Type() Type { return TypeAddOrder }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *AddOrder) Decode(b []byte) error {
	if err := check(b, TypeAddOrder); err != nil {
		return err
	}
	_ = b[35]
	m.Header.get(b)
	m.OrderRef = be.Uint64(b[11:])
	m.Side = b[19]
	m.Shares = be.Uint32(b[20:])
	copy(m.Stock[:], b[24:32])
	m.Price = Price4(be.Uint32(b[32:]))
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *AddOrder) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 36)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *AddOrder) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeAddOrder); err != nil {
		return 0, err
	}
	m.put(dst)
	return 36, nil
}

func (m *AddOrder) put(b []byte) {
	_ = b[35]
	m.Header.put(b, TypeAddOrder)
	be.PutUint64(b[11:], m.OrderRef)
	b[19] = m.Side
	be.PutUint32(b[20:], m.Shares)
	copy(b[24:32], m.Stock[:])
	be.PutUint32(b[32:], uint32(m.Price))
}

// ---- F: add order with MPID -----------------------------------------------

// AddOrderMPID ('F', 40 bytes) adds a displayed order attributed to a market
// participant.
type AddOrderMPID struct {
	Header
	OrderRef    uint64 // order reference number, unique for the day
	Side        byte   // 'B' buy, 'S' sell
	Shares      uint32
	Stock       Symbol
	Price       Price4
	Attribution [4]byte // MPID of the entering firm
}

// Type returns TypeAddOrderMPID.
func (*AddOrderMPID) Type() Type { return TypeAddOrderMPID }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *AddOrderMPID) Decode(b []byte) error {
	if err := check(b, TypeAddOrderMPID); err != nil {
		return err
	}
	_ = b[39]
	m.Header.get(b)
	m.OrderRef = be.Uint64(b[11:])
	m.Side = b[19]
	m.Shares = be.Uint32(b[20:])
	copy(m.Stock[:], b[24:32])
	m.Price = Price4(be.Uint32(b[32:]))
	copy(m.Attribution[:], b[36:40])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *AddOrderMPID) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 40)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *AddOrderMPID) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeAddOrderMPID); err != nil {
		return 0, err
	}
	m.put(dst)
	return 40, nil
}

func (m *AddOrderMPID) put(b []byte) {
	_ = b[39]
	m.Header.put(b, TypeAddOrderMPID)
	be.PutUint64(b[11:], m.OrderRef)
	b[19] = m.Side
	be.PutUint32(b[20:], m.Shares)
	copy(b[24:32], m.Stock[:])
	be.PutUint32(b[32:], uint32(m.Price))
	copy(b[36:40], m.Attribution[:])
}

// ---- E: order executed ----------------------------------------------------

// OrderExecuted ('E', 31 bytes) reports an execution of (part of) a resting
// order at its limit price.
type OrderExecuted struct {
	Header
	OrderRef uint64
	Shares   uint32 // shares executed
	Match    uint64 // match number, unique for the day
}

// Type returns TypeOrderExecuted.
func (*OrderExecuted) Type() Type { return TypeOrderExecuted }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *OrderExecuted) Decode(b []byte) error {
	if err := check(b, TypeOrderExecuted); err != nil {
		return err
	}
	_ = b[30]
	m.Header.get(b)
	m.OrderRef = be.Uint64(b[11:])
	m.Shares = be.Uint32(b[19:])
	m.Match = be.Uint64(b[23:])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *OrderExecuted) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 31)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *OrderExecuted) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeOrderExecuted); err != nil {
		return 0, err
	}
	m.put(dst)
	return 31, nil
}

func (m *OrderExecuted) put(b []byte) {
	_ = b[30]
	m.Header.put(b, TypeOrderExecuted)
	be.PutUint64(b[11:], m.OrderRef)
	be.PutUint32(b[19:], m.Shares)
	be.PutUint64(b[23:], m.Match)
}

// ---- C: order executed with price -----------------------------------------

// OrderExecutedWithPrice ('C', 36 bytes) reports an execution of a resting
// order at a price other than its limit price.
type OrderExecutedWithPrice struct {
	Header
	OrderRef  uint64
	Shares    uint32 // shares executed
	Match     uint64 // match number, unique for the day
	Printable byte   // 'Y' counts in volume, 'N' does not
	Price     Price4 // execution price
}

// Type returns TypeOrderExecutedWithPrice.
func (*OrderExecutedWithPrice) Type() Type { return TypeOrderExecutedWithPrice }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *OrderExecutedWithPrice) Decode(b []byte) error {
	if err := check(b, TypeOrderExecutedWithPrice); err != nil {
		return err
	}
	_ = b[35]
	m.Header.get(b)
	m.OrderRef = be.Uint64(b[11:])
	m.Shares = be.Uint32(b[19:])
	m.Match = be.Uint64(b[23:])
	m.Printable = b[31]
	m.Price = Price4(be.Uint32(b[32:]))
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *OrderExecutedWithPrice) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 36)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *OrderExecutedWithPrice) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeOrderExecutedWithPrice); err != nil {
		return 0, err
	}
	m.put(dst)
	return 36, nil
}

func (m *OrderExecutedWithPrice) put(b []byte) {
	_ = b[35]
	m.Header.put(b, TypeOrderExecutedWithPrice)
	be.PutUint64(b[11:], m.OrderRef)
	be.PutUint32(b[19:], m.Shares)
	be.PutUint64(b[23:], m.Match)
	b[31] = m.Printable
	be.PutUint32(b[32:], uint32(m.Price))
}

// ---- X: order cancel ------------------------------------------------------

// OrderCancel ('X', 23 bytes) removes part of an order's shares.
type OrderCancel struct {
	Header
	OrderRef uint64
	Canceled uint32 // shares removed
}

// Type returns TypeOrderCancel.
func (*OrderCancel) Type() Type { return TypeOrderCancel }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *OrderCancel) Decode(b []byte) error {
	if err := check(b, TypeOrderCancel); err != nil {
		return err
	}
	_ = b[22]
	m.Header.get(b)
	m.OrderRef = be.Uint64(b[11:])
	m.Canceled = be.Uint32(b[19:])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *OrderCancel) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 23)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *OrderCancel) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeOrderCancel); err != nil {
		return 0, err
	}
	m.put(dst)
	return 23, nil
}

func (m *OrderCancel) put(b []byte) {
	_ = b[22]
	m.Header.put(b, TypeOrderCancel)
	be.PutUint64(b[11:], m.OrderRef)
	be.PutUint32(b[19:], m.Canceled)
}

// ---- D: order delete ------------------------------------------------------

// OrderDelete ('D', 19 bytes) removes an order from the book.
type OrderDelete struct {
	Header
	OrderRef uint64
}

// Type returns TypeOrderDelete.
func (*OrderDelete) Type() Type { return TypeOrderDelete }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *OrderDelete) Decode(b []byte) error {
	if err := check(b, TypeOrderDelete); err != nil {
		return err
	}
	_ = b[18]
	m.Header.get(b)
	m.OrderRef = be.Uint64(b[11:])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *OrderDelete) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 19)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *OrderDelete) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeOrderDelete); err != nil {
		return 0, err
	}
	m.put(dst)
	return 19, nil
}

func (m *OrderDelete) put(b []byte) {
	_ = b[18]
	m.Header.put(b, TypeOrderDelete)
	be.PutUint64(b[11:], m.OrderRef)
}

// ---- U: order replace -----------------------------------------------------

// OrderReplace ('U', 35 bytes) cancels an order and adds a new one in its
// place, with a new reference number, size and price; side and stock stay.
type OrderReplace struct {
	Header
	OrigOrderRef uint64 // the order being replaced
	NewOrderRef  uint64 // the new order's reference number
	Shares       uint32
	Price        Price4
}

// Type returns TypeOrderReplace.
func (*OrderReplace) Type() Type { return TypeOrderReplace }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *OrderReplace) Decode(b []byte) error {
	if err := check(b, TypeOrderReplace); err != nil {
		return err
	}
	_ = b[34]
	m.Header.get(b)
	m.OrigOrderRef = be.Uint64(b[11:])
	m.NewOrderRef = be.Uint64(b[19:])
	m.Shares = be.Uint32(b[27:])
	m.Price = Price4(be.Uint32(b[31:]))
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *OrderReplace) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 35)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *OrderReplace) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeOrderReplace); err != nil {
		return 0, err
	}
	m.put(dst)
	return 35, nil
}

func (m *OrderReplace) put(b []byte) {
	_ = b[34]
	m.Header.put(b, TypeOrderReplace)
	be.PutUint64(b[11:], m.OrigOrderRef)
	be.PutUint64(b[19:], m.NewOrderRef)
	be.PutUint32(b[27:], m.Shares)
	be.PutUint32(b[31:], uint32(m.Price))
}

// ---- P: trade (non-cross) -------------------------------------------------

// Trade ('P', 44 bytes) reports an execution against a non-displayed order.
// It does not change the displayed book.
type Trade struct {
	Header
	OrderRef uint64 // 0 on the feed (hidden orders are not identified)
	Side     byte   // 'B' buy, 'S' sell: the side of the non-displayed order
	Shares   uint32
	Stock    Symbol
	Price    Price4
	Match    uint64 // match number, unique for the day
}

// Type returns TypeTrade.
func (*Trade) Type() Type { return TypeTrade }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *Trade) Decode(b []byte) error {
	if err := check(b, TypeTrade); err != nil {
		return err
	}
	_ = b[43]
	m.Header.get(b)
	m.OrderRef = be.Uint64(b[11:])
	m.Side = b[19]
	m.Shares = be.Uint32(b[20:])
	copy(m.Stock[:], b[24:32])
	m.Price = Price4(be.Uint32(b[32:]))
	m.Match = be.Uint64(b[36:])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *Trade) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 44)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *Trade) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeTrade); err != nil {
		return 0, err
	}
	m.put(dst)
	return 44, nil
}

func (m *Trade) put(b []byte) {
	_ = b[43]
	m.Header.put(b, TypeTrade)
	be.PutUint64(b[11:], m.OrderRef)
	b[19] = m.Side
	be.PutUint32(b[20:], m.Shares)
	copy(b[24:32], m.Stock[:])
	be.PutUint32(b[32:], uint32(m.Price))
	be.PutUint64(b[36:], m.Match)
}

// ---- Q: cross trade -------------------------------------------------------

// CrossTrade ('Q', 40 bytes) reports the bulk print of an opening, closing,
// halt or IPO cross.
type CrossTrade struct {
	Header
	Shares    uint64 // shares matched in the cross
	Stock     Symbol
	Price     Price4 // cross price
	Match     uint64 // match number, unique for the day
	CrossType byte   // 'O' opening, 'C' closing, 'H' IPO or halted, 'I' intraday or post-close
}

// Type returns TypeCrossTrade.
func (*CrossTrade) Type() Type { return TypeCrossTrade }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *CrossTrade) Decode(b []byte) error {
	if err := check(b, TypeCrossTrade); err != nil {
		return err
	}
	_ = b[39]
	m.Header.get(b)
	m.Shares = be.Uint64(b[11:])
	copy(m.Stock[:], b[19:27])
	m.Price = Price4(be.Uint32(b[27:]))
	m.Match = be.Uint64(b[31:])
	m.CrossType = b[39]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *CrossTrade) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 40)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *CrossTrade) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeCrossTrade); err != nil {
		return 0, err
	}
	m.put(dst)
	return 40, nil
}

func (m *CrossTrade) put(b []byte) {
	_ = b[39]
	m.Header.put(b, TypeCrossTrade)
	be.PutUint64(b[11:], m.Shares)
	copy(b[19:27], m.Stock[:])
	be.PutUint32(b[27:], uint32(m.Price))
	be.PutUint64(b[31:], m.Match)
	b[39] = m.CrossType
}

// ---- B: broken trade ------------------------------------------------------

// BrokenTrade ('B', 19 bytes) reports that an execution was broken
// (cancelled) after the fact.
type BrokenTrade struct {
	Header
	Match uint64 // match number of the broken execution
}

// Type returns TypeBrokenTrade.
func (*BrokenTrade) Type() Type { return TypeBrokenTrade }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *BrokenTrade) Decode(b []byte) error {
	if err := check(b, TypeBrokenTrade); err != nil {
		return err
	}
	_ = b[18]
	m.Header.get(b)
	m.Match = be.Uint64(b[11:])
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *BrokenTrade) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 19)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *BrokenTrade) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeBrokenTrade); err != nil {
		return 0, err
	}
	m.put(dst)
	return 19, nil
}

func (m *BrokenTrade) put(b []byte) {
	_ = b[18]
	m.Header.put(b, TypeBrokenTrade)
	be.PutUint64(b[11:], m.Match)
}

// ---- I: net order imbalance indicator -------------------------------------

// NOII ('I', 50 bytes) is a net order imbalance indicator disseminated before
// a cross.
type NOII struct {
	Header
	PairedShares       uint64
	ImbalanceShares    uint64
	ImbalanceDirection byte // 'B' buy, 'S' sell, 'N' none, 'O' insufficient orders
	Stock              Symbol
	FarPrice           Price4
	NearPrice          Price4
	CurrentRefPrice    Price4
	CrossType          byte // 'O' opening, 'C' closing, 'H' IPO or halted, 'A' extended trading close
	PriceVariation     byte // 'L' < 1%, '1'…'9' 1–9.99%, 'A' 10–19.99%, 'B' 20–29.99%, 'C' ≥ 30%, ' ' not calculated
}

// Type returns TypeNOII.
func (*NOII) Type() Type { return TypeNOII }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *NOII) Decode(b []byte) error {
	if err := check(b, TypeNOII); err != nil {
		return err
	}
	_ = b[49]
	m.Header.get(b)
	m.PairedShares = be.Uint64(b[11:])
	m.ImbalanceShares = be.Uint64(b[19:])
	m.ImbalanceDirection = b[27]
	copy(m.Stock[:], b[28:36])
	m.FarPrice = Price4(be.Uint32(b[36:]))
	m.NearPrice = Price4(be.Uint32(b[40:]))
	m.CurrentRefPrice = Price4(be.Uint32(b[44:]))
	m.CrossType = b[48]
	m.PriceVariation = b[49]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *NOII) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 50)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *NOII) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeNOII); err != nil {
		return 0, err
	}
	m.put(dst)
	return 50, nil
}

func (m *NOII) put(b []byte) {
	_ = b[49]
	m.Header.put(b, TypeNOII)
	be.PutUint64(b[11:], m.PairedShares)
	be.PutUint64(b[19:], m.ImbalanceShares)
	b[27] = m.ImbalanceDirection
	copy(b[28:36], m.Stock[:])
	be.PutUint32(b[36:], uint32(m.FarPrice))
	be.PutUint32(b[40:], uint32(m.NearPrice))
	be.PutUint32(b[44:], uint32(m.CurrentRefPrice))
	b[48] = m.CrossType
	b[49] = m.PriceVariation
}

// ---- N: retail price improvement indicator --------------------------------

// RPII ('N', 20 bytes) tells whether retail price improvement interest exists
// in a stock.
type RPII struct {
	Header
	Stock        Symbol
	InterestFlag byte // 'B' buy side, 'S' sell side, 'A' both, 'N' none
}

// Type returns TypeRPII.
func (*RPII) Type() Type { return TypeRPII }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *RPII) Decode(b []byte) error {
	if err := check(b, TypeRPII); err != nil {
		return err
	}
	_ = b[19]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.InterestFlag = b[19]
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *RPII) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 20)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *RPII) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeRPII); err != nil {
		return 0, err
	}
	m.put(dst)
	return 20, nil
}

func (m *RPII) put(b []byte) {
	_ = b[19]
	m.Header.put(b, TypeRPII)
	copy(b[11:19], m.Stock[:])
	b[19] = m.InterestFlag
}

// ---- O: direct listing with capital raise price discovery -----------------

// DLCR ('O', 48 bytes) is the price discovery message of a Direct Listing
// with Capital Raise.
type DLCR struct {
	Header
	Stock                 Symbol
	OpenEligibility       byte // 'N' not eligible, 'Y' eligible to open
	MinAllowedPrice       Price4
	MaxAllowedPrice       Price4
	NearExecutionPrice    Price4
	NearExecutionTime     uint64 // time the near execution price was set, as sent
	LowerPriceRangeCollar Price4
	UpperPriceRangeCollar Price4
}

// Type returns TypeDLCR.
func (*DLCR) Type() Type { return TypeDLCR }

// Decode fills m from b, which must be exactly one message of m's type.
func (m *DLCR) Decode(b []byte) error {
	if err := check(b, TypeDLCR); err != nil {
		return err
	}
	_ = b[47]
	m.Header.get(b)
	copy(m.Stock[:], b[11:19])
	m.OpenEligibility = b[19]
	m.MinAllowedPrice = Price4(be.Uint32(b[20:]))
	m.MaxAllowedPrice = Price4(be.Uint32(b[24:]))
	m.NearExecutionPrice = Price4(be.Uint32(b[28:]))
	m.NearExecutionTime = be.Uint64(b[32:])
	m.LowerPriceRangeCollar = Price4(be.Uint32(b[40:]))
	m.UpperPriceRangeCollar = Price4(be.Uint32(b[44:]))
	return nil
}

// AppendEncode appends m's wire form to dst (the timestamp's low 48 bits).
func (m *DLCR) AppendEncode(dst []byte) []byte {
	dst, b := grow(dst, 48)
	m.put(b)
	return dst
}

// Encode writes m's wire form to the start of dst and returns its length.
func (m *DLCR) Encode(dst []byte) (int, error) {
	if err := m.checkEncode(dst, TypeDLCR); err != nil {
		return 0, err
	}
	m.put(dst)
	return 48, nil
}

func (m *DLCR) put(b []byte) {
	_ = b[47]
	m.Header.put(b, TypeDLCR)
	copy(b[11:19], m.Stock[:])
	b[19] = m.OpenEligibility
	be.PutUint32(b[20:], uint32(m.MinAllowedPrice))
	be.PutUint32(b[24:], uint32(m.MaxAllowedPrice))
	be.PutUint32(b[28:], uint32(m.NearExecutionPrice))
	be.PutUint64(b[32:], m.NearExecutionTime)
	be.PutUint32(b[40:], uint32(m.LowerPriceRangeCollar))
	be.PutUint32(b[44:], uint32(m.UpperPriceRangeCollar))
}
