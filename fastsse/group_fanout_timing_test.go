package fastsse_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/valyala/fasthttp/fasthttputil"
)

// benchEvent is the event the fan-out benchmark sends: about 60 bytes on
// the wire.
var benchEvent = fastsse.Event{ID: "42", Event: "tick", Data: `{"sym":"ACME","price":9.99}`}

// countingStream opens a stream on a connection from dial and reads its
// decoded body on a goroutine of its own, calling count with the number of
// events ("\n\n") in each read, without parsing: the benchmark's streams
// carry only LF line breaks and no heartbeats. Close stops the reader, and
// readers.Wait waits for it.
func countingStream(dial func() (net.Conn, error), count func(int), readers *sync.WaitGroup) (*ssetest.Client, error) {
	nc, err := dial()
	if err != nil {
		return nil, err
	}
	c, err := ssetest.Handshake(nc, ssetest.Request("GET", "/events"))
	if err != nil {
		return nil, err
	}
	if c.Status != 200 {
		c.Close()
		return nil, fmt.Errorf("response %s", c.Head)
	}
	readers.Go(func() {
		b := make([]byte, 32<<10)
		last := byte(0) // the last byte of the previous read, for a "\n\n" split across reads
		for {
			n, err := c.Body().Read(b)
			if n > 0 {
				k := bytes.Count(b[:n], []byte("\n\n"))
				if last == '\n' && b[0] == '\n' {
					k++
				}
				last = b[n-1]
				if k > 0 {
					count(k)
				}
			}
			if err != nil {
				return
			}
		}
	})
	return c, nil
}

// BenchmarkGroupFanout measures delivery end to end: one operation sends one
// event to every member and waits until every member's client has read it,
// through a real fasthttp server, its streams, and clients that decode the
// HTTP response (ssetest's, counting events without parsing them). It
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
	for _, tr := range ssetest.Transports {
		for _, tc := range []struct {
			transport string
			members   int
		}{
			{"tcp", 1},
			{"tcp", 1000},
			{"mem", 1000},
			{"mem", 10000},
		} {
			if tc.transport == "mem" && tr.Name == "dense" {
				continue // dense serves sockets (epoll), not in-memory pipes
			}
			b.Run(fmt.Sprintf("%s/%s/members=%d", tr.Name, tc.transport, tc.members), func(b *testing.B) {
				benchFanout(b, tr, tc.transport, tc.members)
			})
		}
	}
}

// fanout counts the deliveries that an operation still waits for.
type fanout struct {
	left   atomic.Int64
	done   chan struct{} // a token when left reaches 0
	excess atomic.Bool   // a client read more events than were sent
}

func (f *fanout) count(k int) {
	switch n := f.left.Add(int64(-k)); {
	case n == 0:
		f.done <- struct{}{}
	case n < 0:
		f.excess.Store(true)
	}
}

func benchFanout(b *testing.B, tr ssetest.Transport, transport string, members int) {
	var g fastsse.Group
	h := &memberHandler{
		init:   joinInit(&g),
		notify: func(msg any, n int) fastsse.Result[int] { return fastsse.Send(*msg.(*fastsse.Event), n+1) },
		conns:  make(chan *fastsse.Conn, members),
	}
	// One event at a time: a queue never holds more than one message, so
	// the default QueueSize and policy never come into play. No heartbeats:
	// the clients count every "\n\n" as an event.
	opts := &fastsse.Options{Heartbeat: -1}
	ep := ssetest.New[int](b, tr, h, opts)
	var dial func() (net.Conn, error)
	if transport == "mem" {
		ln := fasthttputil.NewInmemoryListener()
		tr.ServeOn(b, ln, ep)
		dial = ln.Dial
	} else {
		addr := tr.Serve(b, ep).Addr
		dial = func() (net.Conn, error) { return net.DialTimeout("tcp", addr, ssetest.Wait) }
	}
	f := &fanout{done: make(chan struct{}, 1)}
	clients := make([]*ssetest.Client, members)
	conns := make([]*fastsse.Conn, 0, members)
	var wg, readers sync.WaitGroup
	var failed atomic.Value
	const dialers = 8
	for w := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < members; i += dialers {
				c, err := countingStream(dial, f.count, &readers)
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
				c.Close()
			}
		}
		readers.Wait()
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
		timer.Reset(ssetest.Wait)
		select {
		case <-f.done:
		case <-timer.C:
			b.Fatalf("%d of %d deliveries missing after %v", f.left.Load(), members, ssetest.Wait)
		}
	}
	ev := benchEvent
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
	// A fastsse.Group keeps its members in a map, so Publish visits them in an order
	// unrelated to the order they connected in, while notify-each goes in
	// connection order. Notify in a shuffled order separates what the order
	// costs from what encoding once saves.
	shuf := append([]*fastsse.Conn(nil), conns...)
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
	if st := ep.Stats(); st.Dropped+st.SlowConsumers != 0 {
		b.Fatalf("overflow: %+v", st)
	}
}
