package itch

import "strconv"

// Type is the one-byte message type that starts every ITCH message.
type Type byte

// The ITCH 5.0 message types.
const (
	TypeSystemEvent               Type = 'S'
	TypeStockDirectory            Type = 'R'
	TypeStockTradingAction        Type = 'H'
	TypeRegSHORestriction         Type = 'Y'
	TypeMarketParticipantPosition Type = 'L'
	TypeMWCBDeclineLevel          Type = 'V'
	TypeMWCBStatus                Type = 'W'
	TypeIPOQuotingPeriodUpdate    Type = 'K'
	TypeLULDAuctionCollar         Type = 'J'
	TypeOperationalHalt           Type = 'h'
	TypeAddOrder                  Type = 'A'
	TypeAddOrderMPID              Type = 'F'
	TypeOrderExecuted             Type = 'E'
	TypeOrderExecutedWithPrice    Type = 'C'
	TypeOrderCancel               Type = 'X'
	TypeOrderDelete               Type = 'D'
	TypeOrderReplace              Type = 'U'
	TypeTrade                     Type = 'P'
	TypeCrossTrade                Type = 'Q'
	TypeBrokenTrade               Type = 'B'
	TypeNOII                      Type = 'I'
	TypeRPII                      Type = 'N'
	TypeDLCR                      Type = 'O'
)

// HeaderLen is the size of the common header: type, stock locate, tracking
// number and the 6-byte timestamp.
const HeaderLen = 11

// MaxLen is the length of the longest ITCH 5.0 message (NOII).
const MaxLen = 50

// Types lists every ITCH 5.0 message type, in the specification's order.
var Types = [...]Type{
	TypeSystemEvent, TypeStockDirectory, TypeStockTradingAction, TypeRegSHORestriction,
	TypeMarketParticipantPosition, TypeMWCBDeclineLevel, TypeMWCBStatus, TypeIPOQuotingPeriodUpdate,
	TypeLULDAuctionCollar, TypeOperationalHalt, TypeAddOrder, TypeAddOrderMPID, TypeOrderExecuted,
	TypeOrderExecutedWithPrice, TypeOrderCancel, TypeOrderDelete, TypeOrderReplace, TypeTrade,
	TypeCrossTrade, TypeBrokenTrade, TypeNOII, TypeRPII, TypeDLCR,
}

// lens is the wire length of each type, 0 for bytes that are not a type.
var lens = [256]uint8{
	TypeSystemEvent:               12,
	TypeStockDirectory:            39,
	TypeStockTradingAction:        25,
	TypeRegSHORestriction:         20,
	TypeMarketParticipantPosition: 26,
	TypeMWCBDeclineLevel:          35,
	TypeMWCBStatus:                12,
	TypeIPOQuotingPeriodUpdate:    28,
	TypeLULDAuctionCollar:         35,
	TypeOperationalHalt:           21,
	TypeAddOrder:                  36,
	TypeAddOrderMPID:              40,
	TypeOrderExecuted:             31,
	TypeOrderExecutedWithPrice:    36,
	TypeOrderCancel:               23,
	TypeOrderDelete:               19,
	TypeOrderReplace:              35,
	TypeTrade:                     44,
	TypeCrossTrade:                40,
	TypeBrokenTrade:               19,
	TypeNOII:                      50,
	TypeRPII:                      20,
	TypeDLCR:                      48,
}

// stockOff is the offset of the 8-byte stock symbol in each type that has
// one, 0 for types without.
var stockOff = [256]uint8{
	TypeStockDirectory:            11,
	TypeStockTradingAction:        11,
	TypeRegSHORestriction:         11,
	TypeMarketParticipantPosition: 15,
	TypeIPOQuotingPeriodUpdate:    11,
	TypeLULDAuctionCollar:         11,
	TypeOperationalHalt:           11,
	TypeAddOrder:                  24,
	TypeAddOrderMPID:              24,
	TypeTrade:                     24,
	TypeCrossTrade:                19,
	TypeNOII:                      28,
	TypeRPII:                      11,
	TypeDLCR:                      11,
}

var names = map[Type]string{
	TypeSystemEvent:               "system_event",
	TypeStockDirectory:            "stock_directory",
	TypeStockTradingAction:        "stock_trading_action",
	TypeRegSHORestriction:         "reg_sho_restriction",
	TypeMarketParticipantPosition: "market_participant_position",
	TypeMWCBDeclineLevel:          "mwcb_decline_level",
	TypeMWCBStatus:                "mwcb_status",
	TypeIPOQuotingPeriodUpdate:    "ipo_quoting_period_update",
	TypeLULDAuctionCollar:         "luld_auction_collar",
	TypeOperationalHalt:           "operational_halt",
	TypeAddOrder:                  "add_order",
	TypeAddOrderMPID:              "add_order_mpid",
	TypeOrderExecuted:             "order_executed",
	TypeOrderExecutedWithPrice:    "order_executed_with_price",
	TypeOrderCancel:               "order_cancel",
	TypeOrderDelete:               "order_delete",
	TypeOrderReplace:              "order_replace",
	TypeTrade:                     "trade",
	TypeCrossTrade:                "cross_trade",
	TypeBrokenTrade:               "broken_trade",
	TypeNOII:                      "noii",
	TypeRPII:                      "rpii",
	TypeDLCR:                      "dlcr",
}

// Len returns the wire length of a message of type t, header included, or 0
// if t is not an ITCH 5.0 message type.
func Len(t Type) int { return int(lens[t]) }

// Known reports whether t is an ITCH 5.0 message type.
func (t Type) Known() bool { return lens[t] != 0 }

// Len returns the wire length of a message of type t (see the function Len).
func (t Type) Len() int { return int(lens[t]) }

// HasStock reports whether messages of type t carry a stock symbol.
func (t Type) HasStock() bool { return stockOff[t] != 0 }

// String returns the type's letter and name, e.g. "A(add_order)", or the
// byte in hex for an unknown type.
func (t Type) String() string {
	if n, ok := names[t]; ok {
		return string(rune(t)) + "(" + n + ")"
	}
	return "0x" + strconv.FormatUint(uint64(t), 16)
}
