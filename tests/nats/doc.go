// Package nats holds the end-to-end campaigns of journal shipping (package
// ship, journalctl ship and mirror) against real nats-server processes on
// 127.0.0.1: kill -9 of the shipper and of the mirror at random moments, a
// three-node JetStream cluster losing a node mid-stream, and a stream
// altered behind the mirror's back. The test binary builds nats-server (a
// go.mod tool) and journalctl from the module into a temporary directory.
//
// Bounded in `go test` (20 kill rounds; with -short 6 and no cluster campaign, which
// the plain pass runs); MDJ_NATS_ROUNDS raises the count
// (`make nats`: MDJ_NATS_ROUNDS=200 go test -count=1 -timeout 30m -v ./tests/nats/).
// It has no code of its own.
package nats
