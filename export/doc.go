// Package export writes journal frames as a table — one row per frame —
// to Apache Parquet or to CSV (RFC 4180), for analysis tools that read
// columnar files (DuckDB, pandas/pyarrow, Spark, polars, ...).
//
// # Rows
//
// Every frame a reader returns is one row: data frames and heartbeats, and
// also the definitions and trading statuses a writer re-states at the start
// of every segment (format.md §3.4). Re-stated frames are kept, marked by the
// restated column (true), so an export from the middle of a journal still
// carries every instrument's definition; a consumer that counts events
// filters them out (WHERE NOT restated), or Filter.SkipRestated drops them.
// segment_end markers are never rows (readers never return them).
//
// # Columns
//
// The same columns, in this order, in both formats (Columns lists them).
// Columns after instrument are null where the frame's type does not have
// the field.
//
//	seq           uint64      frame sequence number
//	ts            timestamp   event time (Parquet TIMESTAMP(NANOS, UTC))
//	type          string      message type name (dictionary-encoded)
//	restated      bool        the frame re-states a definition or status (§3.3)
//	instrument    uint32      instrument id (0 where not applicable)
//	symbol        string      the instrument's symbol (dictionary-encoded);
//	                          null when no definition is known for the id
//	price_scale   int32       the instrument's price scale (see Prices); null
//	                          when no definition is known for the id
//	tick_size     int64       instrument_def: tick size, a scaled price
//	side          string      bid|ask|none (trade: the aggressor, bid = buy);
//	                          trade, book_level, order_*, order_request,
//	                          risk_decision; a value outside 0..2 as its number
//	price, qty    int64       trade, book_level, order_*, order_request, risk_decision
//	order_id      uint64      order_*, order_request, risk_decision
//	trade_id      uint64      trade
//	hidden        bool        payload flag HIDDEN: trade, order_*, order_request
//	bid_price, bid_qty, ask_price, ask_qty   int64   quote
//	status        string      trading_status: halted|paused|quotation_only|trading
//	status_reason string      trading_status: the exchange's reason code
//	gap_first, gap_count   uint64   gap
//	gap_source    string      gap: the feed's session or name
//	strategy      uint32      order_request, risk_decision
//	trigger_seq   uint64      order_request, risk_decision
//	trigger_ts, seen_ts       timestamp   order_request
//	requested_ts, received_ts timestamp   risk_decision
//	decided_ts    timestamp   order_request, risk_decision
//	verdict       string      risk_decision: accepted|rejected
//	risk_reason   uint16      risk_decision: the risk manager's reason code
//	raw           bytes       raw: the opaque payload (CSV: lowercase hex)
//	recv_ts       timestamp   frames with a source trailer (§3.3)
//	source_seq    uint64      frames with a source trailer
//
// Unsigned columns are Parquet integers annotated INT(bits, unsigned);
// string columns are UTF-8 (STRING); enumerated strings and symbols are
// dictionary-encoded. A value outside an enumeration (a status, verdict or
// side the format does not define) is written as its decimal number, never
// dropped.
//
// # Prices
//
// Prices are exact: never floats. A journal's prices are int64 fixed point
// with a scale per instrument (format.md §3.2), and one export may hold
// instruments of several scales. Parquet's DECIMAL fixes the scale per
// column, so the choice was between one DECIMAL(18, s) column per distinct
// scale (price_s4, price_s8, ...) or scaled integers with the scale beside
// them. This package writes scaled integers:
//
//   - price, tick_size, bid_price and ask_price are INT64 holding the
//     journal's fixed-point value; the row's price_scale column holds the
//     scale, so the real price is price / 10^price_scale (in SQL:
//     price / power(10, price_scale), or exactly with a CAST to DECIMAL(18, s)
//     per instrument);
//   - the file's key/value metadata repeats the scale per instrument
//     (KeyInstruments: a JSON array of {instrument, symbol, price_scale,
//     tick_size}) and says how to read the columns (KeyPriceEncoding).
//
// Why: the schema is then fixed before the first row and independent of the
// data, so an export streams in one pass with bounded memory (a
// per-scale layout must know every scale in the range before writing the
// first row group: a second pass, since a definition may come at any point)
// and the files of any two exports share one schema and can be queried as
// one table; and a query needs no per-instrument column choice. The cost: a
// reader that wants a decimal type divides by the scale itself.
//
// CSV has no types, so CSV renders each price as exact decimal text in its
// instrument's scale (journal.FormatPrice: 585.3300), or as the plain
// integer when no definition is known (price_scale is then empty). Times
// are RFC 3339 with nanoseconds, UTC (as journalctl dump prints them), a
// null is an empty field, booleans are true/false.
//
// # Memory and speed
//
// The Parquet writer holds one row group at a time (ParquetOptions.
// RowGroupRows rows, default DefaultRowGroupRows): when it is full it is
// encoded, compressed and written out, so memory is bounded by a row
// group's encoded size plus the column page buffers (256 KiB per column),
// whatever the journal's size. Frames are decoded into one reused record
// and stored as a batch of parquet.Value per column, handed to the column
// writers every 1024 rows: no allocation per row (raw payloads are copied
// into a reused arena: a reader's payloads are only valid until it leaves
// their segment). The CSV writer renders fields into one reused buffer.
//
// BenchmarkExport measures rows/s beside the reader alone in the same run.
//
// The library uses github.com/parquet-go/parquet-go to write Parquet; its
// tests read the files back with Apache Arrow's Go Parquet reader, an
// independent implementation.
package export
