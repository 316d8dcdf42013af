package fastsse

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
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
			// Keyed events of 16 keys, to groups that conflate: with
			// ConflateAlways most pushes replace a pending frame in place
			// (the queues are drained every 64 events); on backpressure
			// they are only indexed, the queues never being full.
			keys := make([]string, 16)
			for i := range keys {
				keys[i] = fmt.Sprint("SYM", i)
			}
			for _, mode := range []struct {
				name string
				c    Conflation
			}{{"always", ConflateAlways}, {"backpressure", ConflateBackpressure}} {
				kg := NewGroup(&GroupOptions{Conflation: mode.c})
				for _, c := range conns {
					if err := kg.Join(c); err != nil {
						b.Fatal(err)
					}
				}
				b.Run("publish-keyed-"+mode.name, func(b *testing.B) {
					i := 0
					run(b, func() {
						kev := ev
						kev.Key = keys[i%len(keys)]
						i++
						if _, err := kg.Publish(&kev); err != nil {
							b.Fatal(err)
						}
					})
				})
				for _, c := range conns {
					kg.Leave(c)
				}
			}
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

// BenchmarkGroupPublishParallel: one publishing goroutine per group, each
// group with its own 1,000 members. With -cpu 1,2 it shows whether
// publishers on different groups scale with cores: they share no lock.
func BenchmarkGroupPublishParallel(b *testing.B) {
	ep, err := New[int](&grpHandler{}, &Options{Heartbeat: -1, Overflow: OverflowDropOldest})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var g Group
		conns := make([]*Conn, 1000)
		for i := range conns {
			conns[i] = grpBareConn(b, ep)
			if err := g.Join(conns[i]); err != nil {
				b.Error(err)
				return
			}
		}
		next.Add(1)
		ev := grpBenchEvent
		n := 0
		for pb.Next() {
			if _, err := g.Publish(&ev); err != nil {
				b.Error(err)
				return
			}
			if n++; n%64 == 0 {
				for _, c := range conns {
					if q, _, _, _ := c.take(); q != nil {
						ep.core.rings.put(q)
					}
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "enqueues/s")
}
