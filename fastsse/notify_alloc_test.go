//go:build !race

package fastsse_test

import (
	"testing"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
)

// TestNotifyAllocs is the zero-allocation gate on the path the library
// runs, on each transport: Notify, HandleNotify, the encoder into the
// pooled batch buffer, the transport's send, and the client reading the
// event. Allocations are counted over the whole process, server and
// client, in the steady state (pools and queues warmed up).
func TestNotifyAllocs(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) { notifyAllocs(t, tr) })
	}
}

func notifyAllocs(t *testing.T, tr ssetest.Transport) {
	conn, br := benchStream(t, tr, &fastsse.Options{Heartbeat: -1})
	var err error
	step := func() {
		if e := notifyAndRead(conn, br); e != nil && err == nil {
			err = e
		}
	}
	for range 200 {
		step()
	}
	allocs := testing.AllocsPerRun(1000, step)
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("%v allocs per event, want 0", allocs)
	}
}
