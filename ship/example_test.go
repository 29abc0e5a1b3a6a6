package ship_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdjournal/mdjournal/journal"
	"github.com/mdjournal/mdjournal/reader"
	"github.com/mdjournal/mdjournal/ship"
	"github.com/mdjournal/mdjournal/writer"
)

// An origin journal shipped to a JetStream stream and mirrored into a
// replica, where a reader finds the same frames. The server here is
// embedded for the example; in production it is a nats-server (or cluster)
// between the hosts.
func Example() {
	tmp, _ := os.MkdirTemp("", "ship-example")
	defer os.RemoveAll(tmp)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(tmp, "nats"), NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("no server")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := ship.EnsureStream(ctx, js, ship.StreamConfig{Name: "MD"}, true); err != nil {
		log.Fatal(err)
	}

	origin, replica := filepath.Join(tmp, "origin"), filepath.Join(tmp, "replica")
	w, _ := writer.Open(origin, writer.Options{})
	var def journal.InstrumentDef
	def.SetSymbol("MSFT")
	def.PriceScale, def.TickSize = 4, 100
	buf := make([]byte, 32)
	w.Append(journal.TypeInstrumentDef, 7, 1, def.Encode(buf))
	t := journal.Trade{Price: 4_201_500, Qty: 300, TradeID: 1, Aggressor: journal.SideBid}
	w.Append(journal.TypeTrade, 7, 2, t.Encode(buf))
	w.Close()

	sh, _ := ship.NewShipper(origin, js, ship.Options{Stream: "MD"})
	go sh.Run(ctx)
	m, _ := ship.NewMirror(replica, js, ship.MirrorOptions{Stream: "MD", StopAt: 2})
	if err := m.Run(ctx); err != nil {
		log.Fatal(err)
	}

	r, _ := reader.Open(replica, reader.Options{})
	defer r.Close()
	for {
		f, ok, err := r.TryNext()
		if err != nil || !ok {
			break
		}
		if f.Type == journal.TypeTrade {
			var tr journal.Trade
			tr.Decode(f.Payload)
			fmt.Println(f.Seq, r.Catalog().Symbol(f.Instrument), r.Catalog().FormatPrice(f.Instrument, tr.Price), tr.Qty)
		}
	}
	// Output: 2 MSFT 420.1500 300
}

// Message ids name the journal, the seq range and the stream seq the
// message must land at: JetStream drops a second message with the same id
// within the stream's duplicate window.
func ExampleMsgID() {
	fmt.Println(ship.MsgID(0xfeed, 1, 4096, 1))
	// Output: mdj-000000000000feed-1-4096-s1
}
