//go:build linux

package failtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
)

const (
	endRaceStreams = 200
	endRaceSenders = 8
)

// TestNotifyRacesEnd: eight goroutines call Notify and Info (and, one
// call in a thousand, Close) on 200 open streams, as fast as a short pause
// every eight calls lets them, while half the clients disconnect one by one
// and then the server shuts down (Drain, then Shutdown) under the senders'
// feet. Once for each overflow policy, with a queue of 8, so that some
// streams overflow. Notify and Info return nil, ErrClosed, ErrQueueFull or
// ErrSlowConsumer only, Close nil or ErrClosed; nothing panics; every
// stream ends, and Terminate runs exactly once per Conn. The log shows the
// mix of results and of Terminate reasons: every way to end is raced.
func TestNotifyRacesEnd(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			for _, pol := range []fastsse.OverflowPolicy{fastsse.OverflowClose, fastsse.OverflowDropNewest, fastsse.OverflowDropOldest} {
				h := &handler{}
				s := serve(t, h, tr, fastsse.Options{Heartbeat: 20 * time.Millisecond, QueueSize: 8, Overflow: pol})
				clients := ssetest.DialMany(t, s.addr, "/", endRaceStreams)
				ssetest.Eventually(t, func() bool { return h.inits.Load() == endRaceStreams }, "streams open")
				recs := h.all()

				var counts sync.Map // "call: result" -> *atomic.Int64
				count := func(what string, err error) {
					k := what + ": " + fmt.Sprint(err)
					v, ok := counts.Load(k)
					if !ok {
						v, _ = counts.LoadOrStore(k, new(atomic.Int64))
					}
					v.(*atomic.Int64).Add(1)
				}
				var unexpected atomic.Int64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for range endRaceSenders {
					wg.Go(func() {
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							if i%8 == 7 {
								time.Sleep(100 * time.Microsecond)
							}
							c := recs[rand.IntN(len(recs))].conn
							switch n := rand.IntN(1000); {
							case n == 0:
								err := c.Close()
								count("Close", err)
								if err != nil && !errors.Is(err, fastsse.ErrClosed) {
									unexpected.Add(1)
								}
							default:
								var err error
								if n < 500 {
									err = c.Notify(i)
									count("Notify", err)
								} else {
									err = c.Info(i)
									count("Info", err)
								}
								switch {
								case err == nil, errors.Is(err, fastsse.ErrClosed),
									errors.Is(err, fastsse.ErrQueueFull), errors.Is(err, fastsse.ErrSlowConsumer):
								default:
									unexpected.Add(1)
								}
							}
						}
					})
				}
				time.Sleep(50 * time.Millisecond)
				for _, c := range clients[:endRaceStreams/2] {
					c.Close()
					time.Sleep(time.Millisecond)
				}
				openAtStop := s.ep.Stats().Open
				s.stop(t)
				time.Sleep(20 * time.Millisecond)
				close(stop)
				wg.Wait()

				reasons := map[string]int{}
				for _, r := range recs {
					select {
					case <-r.conn.Done():
					case <-time.After(waitFor):
						t.Fatal("a stream did not end")
					}
					assert.Equal(t, int32(1), r.terms.Load(), "Terminate runs once per Conn")
					reasons[reasonKind(r.reason)]++
				}
				assert.Equal(t, h.inits.Load(), h.terms.Load())
				assert.Zero(t, h.dups.Load())
				assert.Zero(t, unexpected.Load(), "unexpected results")
				var summary []string
				counts.Range(func(k, v any) bool {
					summary = append(summary, fmt.Sprintf("%s ×%d", k, v.(*atomic.Int64).Load()))
					return true
				})
				slices.Sort(summary)
				t.Logf("%v: %d open when the server stopped; calls %v; Terminate reasons %v", policyName(pol), openAtStop, summary, reasons)
			}
		})
	}
}

func policyName(p fastsse.OverflowPolicy) string {
	switch p {
	case fastsse.OverflowClose:
		return "OverflowClose"
	case fastsse.OverflowDropNewest:
		return "OverflowDropNewest"
	case fastsse.OverflowDropOldest:
		return "OverflowDropOldest"
	}
	return fmt.Sprint(p)
}

// reasonKind names a Terminate reason by its sentinel.
func reasonKind(err error) string {
	var pe *fastsse.PanicError
	for _, k := range []error{fastsse.ErrStopped, fastsse.ErrShutdown, fastsse.ErrClientGone,
		fastsse.ErrWriteFailed, fastsse.ErrSlowConsumer, fastsse.ErrLifetime, fastsse.ErrRefused} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	if errors.As(err, &pe) {
		return "panic"
	}
	return fmt.Sprint(err)
}
