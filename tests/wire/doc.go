// Package wire holds the fidelity campaign of the wire path: a
// LOBSTER day imported with its orderbook into a source journal
// (`journalctl import`), published as ITCH 5.0 in MoldUDP64 on 127.0.0.1
// (package publish) with packets dropped and reordered, received by the
// feed handler (package feed) into a fresh journal, and compared: the same
// frames in the same order, the same books after every frame, the LOBSTER
// orderbook file matched on every row; with re-requests off, exactly the
// gaps a relay dropped and nothing out of order; a feed killed with
// SIGKILL mid-stream and restarted; multicast inside a network namespace
// the test creates. It has no code of its own.
//
// `go test ./tests/wire` runs the head2000 excerpts (seconds). The six
// full days run with MDJ_WIRE_FULL=1 (`make wire`, a few minutes).
package wire
