package benchkit

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"testing"
)

// TestConnsDoNotAllocate: the measured loops call Send and Recv once per
// message; both sides of these transports, built in one process, must not
// allocate.
func TestConnsDoNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		transport string
		mode      Mode
	}{{"raw", Stream}, {"raw", PingPong}, {"ring", Stream}, {"ring-poll", Stream}, {"mq", Stream}} {
		t.Run(tc.transport+"/"+string(tc.mode), func(t *testing.T) {
			d := Dirs{Scratch: t.TempDir(), Shm: t.TempDir(), MQ: MQPrefix() + "alloctest-"}
			s := Spec{Transport: tc.transport, Mode: tc.mode, Size: 64, Count: 1}
			var abort atomic.Bool
			p, err := NewParent(s, d, &abort)
			if err != nil {
				t.Skip(err) // e.g. no POSIX message queues in this sandbox
			}
			defer p.Close()
			child, err := ChildConn(s, p.Args)
			if err != nil {
				t.Fatal(err)
			}
			defer child.Close()
			parent, err := p.Attach()
			if err != nil {
				t.Fatal(err)
			}
			msg, buf := make([]byte, 64), make([]byte, 64<<10)
			fillMessage(msg)
			seq := uint64(0)
			allocs := testing.AllocsPerRun(1000, func() {
				binary.LittleEndian.PutUint64(msg, seq) // the mailbox needs a new number each time
				seq++
				if err := parent.Send(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := child.Recv(buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per message", allocs)
			}
			if tc.transport == "mq" && MQExists(d.MQ+"p2c") {
				t.Error("queue name still there after Attach")
			}
			if ents, _ := os.ReadDir(d.Shm); len(ents) > 0 {
				t.Errorf("names left after Attach: %v", ents)
			}
		})
	}
}
