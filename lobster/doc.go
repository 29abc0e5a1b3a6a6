// Package lobster imports LOBSTER (lobsterdata.com) message and orderbook
// files into journal frames.
//
// A LOBSTER day is a pair of CSV files: the message file (one event per row:
// time, type, order id, size, price, direction) and the orderbook file (row k
// is the top L levels of both sides AFTER message k). The message file is a
// depth-limited view: it holds only the events that change the top L levels
// (plus every hidden execution), so it cannot say which level comes into view
// from deeper in the book when a visible level empties. The importer therefore
// turns each message into L3 frames and, only right after a message that
// emptied one of the top L levels, takes the level that enters the view from
// that message's orderbook row and emits it as a BookLevel frame. Everything
// else in the rebuilt book comes from the L3 messages themselves.
//
// Mapping (see Import for the exact frames):
//
//	1 new order        OrderAdd
//	2 partial cancel   OrderCancel (qty = size cancelled)
//	3 full delete      OrderDelete (qty = size removed)
//	4 visible exec     OrderExecute, then Trade
//	5 hidden exec      OrderExecute with FlagHidden (no book change), then Trade with FlagHidden
//	6 cross trade      Trade with no aggressor (auction print; no book change)
//	7 trading halt     TradingStatus: price -1 halted, 0 quotation_only, 1 trading
//
// LOBSTER's direction is the side of the resting order: 1 = a buy order (bid),
// -1 = a sell order (ask). For executions the aggressor is the other side, so a
// type-4 row with direction 1 is a sell-initiated trade (Trade.Aggressor =
// ask).
//
// Prices are integer dollars x 10000 and are kept as they are (PriceScale 4,
// tick 100 = $0.01). Times are parsed as decimal strings into exact integer
// nanoseconds; no floats are used anywhere.
package lobster

import _ "time/tzdata" // America/New_York must resolve even on hosts without zoneinfo
