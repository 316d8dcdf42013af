package fastsse_test

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publishN publishes n events of size bytes of data each to g, and returns
// the epoch of their ids.
func publishN(tb testing.TB, g *fastsse.Group, n, size int) string {
	tb.Helper()
	data := bytes.Repeat([]byte{'x'}, size)
	var id string
	for range n {
		var err error
		if id, err = g.Publish(&fastsse.Event{DataBytes: data}); err != nil {
			tb.Fatal(err)
		}
	}
	return epochOf(id)
}

// TestResumeNetwork: on each transport, a client resuming a long replay
// (megabytes, many pages) while events are published gets every event
// once, in order, replay and live, and a client with an id of another
// group gets the gap event first.
func TestResumeNetwork(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 4000, ReplayBytes: 64 << 20})
			s := startGroup(t, tr, &memberHandler{init: resumeInit(g)}, &fastsse.Options{Heartbeat: -1, QueueSize: 1 << 12})
			epoch := publishN(t, g, 2000, 2000)
			stop, stopped := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(stopped)
				for range 500 {
					select {
					case <-stop:
						return
					default:
					}
					publishN(t, g, 1, 100)
					time.Sleep(100 * time.Microsecond)
				}
			}()
			c := getStream(t, s.Addr, idAt(epoch, 10))
			otherEpoch := publishN(t, fastsse.NewGroup(&fastsse.GroupOptions{Replay: 1}), 1, 1)
			other := getStream(t, s.Addr, idAt(otherEpoch, 10))
			<-stopped
			close(stop)
			require.NoError(t, expectIDs(c, seq(epoch, 11, 2500)...))
			ev := other.Event(t)
			assert.Equal(t, fastsse.GapEvent, ev.Type)
			assert.NotEmpty(t, ev.ID)
			live, err := g.Publish(&fastsse.Event{Data: "live"})
			require.NoError(t, err)
			require.NoError(t, expectIDs(c, live))
		})
	}
}

// TestResumeMemoryBounded: clients that resume from an early id and never
// read. Each used to hold its whole replay in its queue (here 8 x 32 MiB);
// now each holds a page and what the transport has in flight: on the
// stream transport, fasthttp's body pipe holds a few batches, so with
// events of 512 KiB (a page each) a client costs about 3.5 MiB; dense holds
// one unsent batch; net/http its buffered writer. A client that then reads
// gets everything.
func TestResumeMemoryBounded(t *testing.T) {
	const (
		clients = 8
		events  = 64
		size    = 512 << 10
	)
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: events, ReplayBytes: events * (size + 1024)})
			s := startGroup(t, tr, &memberHandler{init: resumeInit(g)}, &fastsse.Options{Heartbeat: -1})
			epoch := publishN(t, g, events, size)
			before := heapInUse()
			for range clients {
				c, err := ssetest.DialRaw(s.Addr, ssetest.Request("GET", "/events", "Last-Event-ID", idAt(epoch, 1)))
				require.NoError(t, err)
				t.Cleanup(c.Close) // never read
			}
			ssetest.Eventually(t, func() bool { return s.ep.Stats().Open == clients }, "every client open")
			// Wait until the writes stall: the sockets' buffers are full.
			last, since := int64(-1), time.Now()
			ssetest.Eventually(t, func() bool {
				if b := s.ep.Stats().Bytes; b != last {
					last, since = b, time.Now()
				}
				return time.Since(since) > 500*time.Millisecond
			}, "the writes to stall")
			grown := heapInUse() - before
			t.Logf("%d clients not reading a replay of %d MiB each: %d MiB written, heap grew %.1f MiB",
				clients, events*size>>20, last>>20, float64(grown)/(1<<20))
			assert.Less(t, last, int64(clients*events*size/2), "the writes stalled well before the end of the replays")
			assert.Less(t, grown, int64(clients*10*size), "a few pages per client at most, not its replay")

			c := getStream(t, s.Addr, idAt(epoch, 1))
			require.NoError(t, expectIDs(c, seq(epoch, 2, events)...))
		})
	}
}

// heapInUse returns the bytes of live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
