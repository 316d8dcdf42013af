package fastsse

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
					if q, _ := c.take(); q != nil {
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

// BenchmarkGroupFanout measures delivery end to end: one operation sends one
// event to every member and waits until every member's client has read it,
// through a real fasthttp server, its streams, and clients that parse the
// HTTP response (grpClient, counting events without parsing them). It
// compares Publish (encoded once) with Notify on each member (encoded by
// every stream in HandleNotify) in the same run. deliveries/s is
// members × events per second. allocs/op counts the whole process: the
// streams, fasthttp's connection goroutines and the clients as well.
//
// "tcp" runs over loopback sockets. Each stream holds two descriptors in
// this process (server and client side) and the process may open 20,000
// files, so 10,000 members cannot be on sockets here; "mem" runs the same
// server on fasthttp's in-memory listener (fasthttputil.InmemoryListener):
// the same server, streams, HTTP/1.1 framing and client, with each
// connection an in-process pipe (bounded, four buffers each way) instead of
// a socket. It leaves out the kernel's share, so compare mem with mem (1,000
// is run on both to show the difference) and tcp with tcp.
func BenchmarkGroupFanout(b *testing.B) {
	for _, tc := range []struct {
		transport string
		members   int
	}{
		{"tcp", 1},
		{"tcp", 1000},
		{"mem", 1000},
		{"mem", 10000},
	} {
		b.Run(fmt.Sprintf("%s/members=%d", tc.transport, tc.members), func(b *testing.B) {
			grpBenchFanout(b, tc.transport, tc.members)
		})
	}
}

// grpFanout counts the deliveries that an operation still waits for.
type grpFanout struct {
	left   atomic.Int64
	done   chan struct{} // a token when left reaches 0
	excess atomic.Bool   // a client read more events than were sent
}

func (f *grpFanout) count(k int) {
	switch n := f.left.Add(int64(-k)); {
	case n == 0:
		f.done <- struct{}{}
	case n < 0:
		f.excess.Store(true)
	}
}

func grpBenchFanout(b *testing.B, transport string, members int) {
	var g Group
	h := &grpHandler{
		init:   grpJoinInit(&g),
		notify: func(msg any, n int) Result[int] { return Send(*msg.(*Event), n+1) },
		conns:  make(chan *Conn, members),
	}
	// One event at a time: a queue never holds more than one message, so
	// the default QueueSize and policy never come into play. No heartbeats:
	// the clients count every "\n\n" as an event.
	opts := &Options{Heartbeat: -1}
	var s *grpServer
	if transport == "mem" {
		s = grpServeMem(b, h, opts)
	} else {
		s = grpServe(b, h, opts)
	}
	f := &grpFanout{done: make(chan struct{}, 1)}
	clients := make([]*grpClient, members)
	conns := make([]*Conn, 0, members)
	var wg sync.WaitGroup
	var failed atomic.Value
	const dialers = 8
	for w := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < members; i += dialers {
				c, err := grpOpen(s, "", nil, f.count)
				if err != nil {
					failed.Store(err)
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	for range members {
		conns = append(conns, <-h.conns) // every Init has run: the headers arrived
	}
	if g.Len() != members {
		b.Fatalf("%d members, want %d", g.Len(), members)
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	deliver := func(b *testing.B, send func() error) {
		f.left.Store(int64(members))
		if err := send(); err != nil {
			b.Fatal(err)
		}
		timer.Reset(grpWait)
		select {
		case <-f.done:
		case <-timer.C:
			b.Fatalf("%d of %d deliveries missing after %v", f.left.Load(), members, grpWait)
		}
	}
	ev := grpBenchEvent
	msg := any(&ev)
	publish := func() error {
		_, err := g.Publish(&ev)
		return err
	}
	notifyEach := func() error {
		for _, c := range conns {
			if err := c.Notify(msg); err != nil {
				return err
			}
		}
		return nil
	}
	// Warm up both ways before measuring any: the first events grow
	// goroutine stacks and fill pools (batch buffers, fasthttp's pipe and
	// copy buffers) in every stream, and whichever ran first would pay.
	for range 5 {
		deliver(b, publish)
		deliver(b, notifyEach)
	}
	run := func(b *testing.B, send func() error) {
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			deliver(b, send)
		}
		b.StopTimer()
		b.ReportMetric(float64(members)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		if f.excess.Load() {
			b.Fatal("a client read more events than were sent")
		}
	}
	b.Run("publish", func(b *testing.B) { run(b, publish) })
	b.Run("notify-each", func(b *testing.B) { run(b, notifyEach) })
	// A Group keeps its members in a map, so Publish visits them in an order
	// unrelated to the order they connected in, while notify-each goes in
	// connection order. Notify in a shuffled order separates what the order
	// costs from what encoding once saves.
	shuf := append([]*Conn(nil), conns...)
	rand.Shuffle(len(shuf), func(i, j int) { shuf[i], shuf[j] = shuf[j], shuf[i] })
	b.Run("notify-each-shuffled", func(b *testing.B) {
		run(b, func() error {
			for _, c := range shuf {
				if err := c.Notify(msg); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if st := s.ep.Stats(); st.Dropped+st.SlowConsumers != 0 {
		b.Fatalf("overflow: %+v", st)
	}
}
