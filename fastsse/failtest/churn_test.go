//go:build linux

package failtest

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	churnWorkers = 100
	churnEach    = 100 // per worker: 10,000 connects and disconnects
	churnRounds  = 5   // of 2,000 each
)

// TestChurn: 10,000 connects and disconnects (100 workers × 100, in five
// rounds of 2,000): each opens a stream, reads its response head, and
// closes. After each round every stream has ended (Stats().Open back to 0,
// Terminate once per Conn); RSS after the last round is within 16 MB of
// RSS after the first (both measured after a GC that returns freed memory
// to the OS, so that garbage not yet collected does not count; under -race
// the Go-held memory instead, see readMem); and
// TestMain's goleak finds nothing left behind. The heartbeat is 50 ms, so
// that a round ends soon: the stream transport learns that a client left
// only at a heartbeat (it peeks at the socket before writing one, and a
// write to a closed connection fails); the dense transport sees it at once,
// through epoll.
func TestChurn(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			h := &handler{forget: true}
			s := serve(t, h, tr, fastsse.Options{Heartbeat: 50 * time.Millisecond})
			var dialErrs atomic.Int64
			var firstErr atomic.Value
			round := func() {
				var wg sync.WaitGroup
				for range churnWorkers {
					wg.Go(func() {
						for range churnEach / churnRounds {
							c, err := ssetest.DialRaw(s.addr, ssetest.Request("GET", "/"))
							if err == nil && c.Status != 200 {
								err = assert.AnError
							}
							if err != nil {
								dialErrs.Add(1)
								firstErr.CompareAndSwap(nil, err)
							}
							if c != nil {
								c.Close()
							}
						}
					})
				}
				wg.Wait()
				ssetest.Eventually(t, func() bool { return s.ep.Stats().Open == 0 }, "Stats().Open back to 0")
			}
			settle := func() int64 {
				runtime.GC()
				debug.FreeOSMemory()
				return mem(t)
			}

			start := time.Now()
			round()
			rssFirst := settle()
			for range churnRounds - 1 {
				round()
			}
			rssLast := settle()
			took := time.Since(start)

			require.Zero(t, dialErrs.Load(), "failed connects, first: %v", firstErr.Load())
			st := s.ep.Stats()
			assert.Equal(t, int64(churnWorkers*churnEach), st.Opened)
			assert.Zero(t, st.Open)
			assert.Equal(t, int64(churnWorkers*churnEach), h.terms.Load())
			assert.Zero(t, h.dups.Load(), "Terminates beyond one per Conn")
			t.Logf("%d connects and disconnects in %v; %s after the first 2,000 %d MB, after the last %d MB (RSS %d MB)",
				churnWorkers*churnEach, took.Round(time.Millisecond), memName, rssFirst/mb, rssLast/mb, rss(t)/mb)
			assert.LessOrEqual(t, rssLast-rssFirst, int64(16*mb), "%s growth", memName)
		})
	}
}
