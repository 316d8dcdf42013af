package fastsse_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const manyStreams = 1000

func TestShutdownEndsAllStreams(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			ep := ssetest.New(t, tr, &funcs[struct{}]{p: p}, nil) // default heartbeat: none within the test
			s := tr.Serve(t, ep)
			clients := ssetest.DialMany(t, s.Addr, "/events", manyStreams)
			conns := make([]*fastsse.Conn, manyStreams)
			for i := range conns {
				conns[i] = p.conn(t)
			}
			require.Equal(t, int64(manyStreams), ep.Stats().Open)

			start := time.Now()
			s.Shutdown(t)
			took := time.Since(start)
			assert.Less(t, took, time.Second, "Shutdown with %d streams", manyStreams)
			t.Logf("Shutdown with %d open streams took %v", manyStreams, took)

			for range conns {
				assert.ErrorIs(t, p.term(t), fastsse.ErrShutdown)
			}
			assert.Equal(t, int64(manyStreams), p.nterms.Load())
			for i, conn := range conns {
				ssetest.WaitDone(t, conn)
				assert.ErrorIs(t, conn.Err(), fastsse.ErrShutdown, "stream %d", i)
			}
			for i, c := range clients {
				raw, err := c.ReadAll()
				assert.NoError(t, err, "stream %d ends with its final chunk", i)
				// The last frame is a retry hint of 100–150% of 3 s (Options.Retry
				// unset), so that clients do not all come back at once; no event.
				var sp ssespec.Parser
				assert.Empty(t, sp.Feed([]byte(raw)), "stream %d: %q", i, raw)
				assert.False(t, sp.Pending())
				if assert.True(t, sp.HasRetry, "stream %d: %q", i, raw) {
					assert.GreaterOrEqual(t, sp.Retry, int64(3000))
					assert.LessOrEqual(t, sp.Retry, int64(4500))
				}
			}
			assert.Zero(t, ep.Stats().Open)
			ssetest.Eventually(t, func() bool { return ssetest.StreamGoroutines() == 0 }, "stream goroutines to end")
		})
	}
}

// Streams ended in every way, by the client and by the server, leave no
// goroutine behind (TestMain's goleak checks the rest, at the end).
func TestManyStreamsLeaveNoGoroutine(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			// Heartbeats notice the clients that leave; with a thousand streams, a
			// short interval would keep two cores busy writing them.
			ep := ssetest.New(t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: 250 * time.Millisecond})
			s := tr.Serve(t, ep)
			clients := ssetest.DialMany(t, s.Addr, "/events", manyStreams)
			conns := make([]*fastsse.Conn, manyStreams)
			for i := range conns {
				conns[i] = p.connOf(t, clients[i])
			}
			require.Equal(t, int64(manyStreams), ep.Stats().Open)
			require.Positive(t, ssetest.StreamGoroutines())

			start := time.Now()
			for i, conn := range conns {
				switch i % 3 {
				case 0:
					clients[i].Close() // noticed by a heartbeat
				case 1:
					require.NoError(t, conn.Close())
				case 2:
					require.NoError(t, conn.Notify("stop"))
				}
			}
			for i, conn := range conns {
				select {
				case <-conn.Done():
				case <-time.After(ssetest.Wait):
					t.Fatalf("stream %d did not end; %+v", i, ep.Stats())
				}
				if i%3 == 0 {
					assert.ErrorIs(t, conn.Err(), fastsse.ErrClientGone, "stream %d", i)
				} else {
					assert.ErrorIs(t, conn.Err(), fastsse.ErrStopped, "stream %d", i)
				}
			}
			assert.Equal(t, int64(manyStreams), p.nterms.Load())
			t.Logf("%d streams ended in %v", manyStreams, time.Since(start))
			ssetest.Eventually(t, func() bool { return ep.Stats().Open == 0 }, "Open = 0")
			ssetest.Eventually(t, func() bool { return ssetest.StreamGoroutines() == 0 }, "stream goroutines to end, %d left", ssetest.StreamGoroutines())
			for i, c := range clients {
				if i%3 != 0 {
					_, err := c.ReadAll()
					assert.NoError(t, err, "stream %d ends with its final chunk", i)
				}
			}
		})
	}
}

// Terminate runs exactly once however many enders race: the client closing,
// Stop, Conn.Close, a flood of messages and the server shutting down.
func TestTerminateOnceUnderRaces(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			run := func(t *testing.T, rounds, streams int, shutdown bool) {
				p := newProbe()
				var total atomic.Int64
				counters := make(chan *atomic.Int32, rounds*streams)
				h := &funcs[*atomic.Int32]{p: p,
					init: func(any, string, *fastsse.Request) fastsse.InitResult[*atomic.Int32] {
						n := new(atomic.Int32)
						counters <- n
						return fastsse.Open(n)
					},
					term: func(_ error, n *atomic.Int32) {
						n.Add(1)
						total.Add(1)
					},
				}
				var s *ssetest.Server
				opts := &fastsse.Options{Heartbeat: 10 * time.Millisecond, QueueSize: 8}
				ep := ssetest.New(t, tr, h, opts)
				for round := 0; round < rounds; round++ {
					if s == nil || shutdown {
						s = tr.Serve(t, ep)
					}
					clients := ssetest.DialMany(t, s.Addr, "/events", streams)
					conns := make([]*fastsse.Conn, streams)
					for i := range conns {
						conns[i] = p.connOf(t, clients[i])
					}
					start := make(chan struct{})
					var wg sync.WaitGroup
					goRace := func(f func()) {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							f()
						}()
					}
					for i, conn := range conns {
						c := clients[i]
						goRace(func() { _ = c.Conn.Close() })
						goRace(func() { _ = conn.Notify("stop") })
						goRace(func() { _ = conn.Close() })
						goRace(func() {
							for j := 0; j < 20; j++ {
								_ = conn.Notify(j)
								_ = conn.Info(j)
							}
						})
					}
					if shutdown {
						srv := s
						goRace(func() {
							ctx, cancel := context.WithTimeout(context.Background(), ssetest.Wait)
							defer cancel()
							_ = srv.ShutdownContext(ctx) // checked by srv.Shutdown below
						})
					}
					close(start)
					wg.Wait()
					for _, conn := range conns {
						ssetest.WaitDone(t, conn)
					}
					if shutdown {
						s.Shutdown(t)
					}
				}
				n := int64(rounds * streams)
				assert.Equal(t, n, total.Load())
				assert.Equal(t, n, p.nterms.Load())
				for i := int64(0); i < n; i++ {
					assert.Error(t, p.term(t))
					assert.Equal(t, int32(1), ssetest.Recv(t, counters, "counter").Load(), "Terminate calls for one stream")
				}
				ssetest.Eventually(t, func() bool { return ep.Stats().Open == 0 }, "Open = 0")
				assert.Equal(t, n, ep.Stats().Opened)
			}
			t.Run("client Stop Close", func(t *testing.T) { run(t, 100, 10, false) })
			t.Run("and shutdown", func(t *testing.T) { run(t, 15, 10, true) })
		})
	}
}
