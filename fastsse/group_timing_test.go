package fastsse

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// grpBenchEvent is the event every benchmark sends: about 60 bytes on the
// wire.
var grpBenchEvent = Event{ID: "42", Event: "tick", Data: `{"sym":"ACME","price":9.99}`}

// BenchmarkGroupEnqueue measures the publisher's side alone: Publish (encode
// once, queue the same frame for every member) against calling Notify on
// each member (queue a message; each stream would encode it later, in
// HandleNotify), for 1, 1,000 and 10,000 members.
//
// The members are Conns of a real Endpoint without streams behind them
// (grpBareConn), so nothing but the publisher runs and allocs/op is the
// publisher's own. Every 64 operations the benchmark drains every queue, as
// the streams' goroutines would, with the timer stopped: half of the default
// QueueSize, so nothing ever overflows.
func BenchmarkGroupEnqueue(b *testing.B) {
	for _, members := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			ep, err := New[int](&grpHandler{}, &Options{Heartbeat: -1})
			if err != nil {
				b.Fatal(err)
			}
			var g Group
			conns := make([]*Conn, members)
			for i := range conns {
				conns[i] = grpBareConn(b, ep)
				if err := g.Join(conns[i]); err != nil {
					b.Fatal(err)
				}
			}
			drain := func() {
				for _, c := range conns {
					if q, _, _, _ := c.take(); q != nil {
						ep.core.rings.put(q)
					}
				}
			}
			run := func(b *testing.B, op func()) {
				b.ReportAllocs()
				drain()
				b.ResetTimer()
				for i := range b.N {
					if i%64 == 63 {
						b.StopTimer()
						drain()
						b.StartTimer()
					}
					op()
				}
				b.StopTimer()
				b.ReportMetric(float64(members)*float64(b.N)/b.Elapsed().Seconds(), "enqueues/s")
				drain()
			}
			ev := grpBenchEvent
			b.Run("publish", func(b *testing.B) {
				run(b, func() {
					if _, err := g.Publish(&ev); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run("notify-each", func(b *testing.B) {
				msg := any(&ev)
				run(b, func() {
					for _, c := range conns {
						if err := c.Notify(msg); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
			// As in BenchmarkGroupFanout: the order Publish visits its
			// members in, without the map.
			shuf := append([]*Conn(nil), conns...)
			rand.Shuffle(len(shuf), func(i, j int) { shuf[i], shuf[j] = shuf[j], shuf[i] })
			b.Run("notify-each-shuffled", func(b *testing.B) {
				msg := any(&ev)
				run(b, func() {
					for _, c := range shuf {
						if err := c.Notify(msg); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
			if st := ep.Stats(); st.Dropped+st.SlowConsumers != 0 {
				b.Fatalf("overflow: %+v", st)
			}
		})
	}
}
