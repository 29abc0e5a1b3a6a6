package export_test

import (
	"context"
	"os"
	"path/filepath"

	"github.com/mdjournal/mdjournal/export"
	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/writer"
)

// Exporting a journal's trades as CSV (export.NewParquet writes Parquet the
// same way). Prices are exact decimals in the instrument's scale.
func Example() {
	tmp, _ := os.MkdirTemp("", "export-example")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "journal")
	w, _ := writer.Open(dir, writer.Options{})
	var def journal.InstrumentDef
	def.SetSymbol("AMZN")
	def.PriceScale, def.TickSize = 4, 100
	t0 := int64(1_340_287_200_000_000_000) // 2012-06-21T14:00:00Z
	w.Append(journal.TypeInstrumentDef, 7, t0, def.Encode(nil))
	tr := journal.Trade{Price: 2_238_100, Qty: 100, TradeID: 1, Aggressor: journal.SideBid}
	w.Append(journal.TypeTrade, 7, t0+1_500, tr.Encode(nil))
	q := journal.Quote{BidPrice: 2_238_000, BidQty: 300, AskPrice: 2_238_100, AskQty: 200}
	w.Append(journal.TypeQuote, 7, t0+2_000, q.Encode(nil))
	w.Close()

	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	out := export.NewCSV(os.Stdout, export.CSVOptions{UnixLineEnds: true})
	filter := export.Filter{Types: []journal.MsgType{journal.TypeTrade}}
	if _, err := export.Run(context.Background(), r, out, export.Options{Filter: filter}); err != nil {
		panic(err)
	}
	if err := out.Close(); err != nil {
		panic(err)
	}
	// Output:
	// seq,ts,type,restated,instrument,symbol,price_scale,tick_size,side,price,qty,order_id,trade_id,hidden,bid_price,bid_qty,ask_price,ask_qty,status,status_reason,gap_first,gap_count,gap_source,strategy,trigger_seq,trigger_ts,seen_ts,requested_ts,received_ts,decided_ts,verdict,risk_reason,raw,recv_ts,source_seq
	// 2,2012-06-21T14:00:00.0000015Z,trade,false,7,AMZN,4,,bid,223.8100,100,,1,false,,,,,,,,,,,,,,,,,,,,,
}
