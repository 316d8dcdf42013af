package fastsse_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const overflowQueue = 4

// gated opens an endpoint whose HandleNotify blocks on the message "block"
// until the test closes release, so that the test can fill the queue
// deterministically while the stream's goroutine is busy.
type gated struct {
	*ssetest.Server
	p       *probe
	ep      *fastsse.Endpoint
	entered chan struct{}
	release chan struct{}
}

func startGated(t *testing.T, tr ssetest.Transport, policy fastsse.OverflowPolicy) *gated {
	t.Helper()
	return startGatedWith(t, tr, &fastsse.Options{QueueSize: overflowQueue, Overflow: policy, Heartbeat: -1})
}

// startGatedWith is startGated with the endpoint's options.
func startGatedWith(t *testing.T, tr ssetest.Transport, opts *fastsse.Options) *gated {
	t.Helper()
	g := &gated{p: newProbe(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := &funcs[struct{}]{p: g.p, notify: func(msg any, s struct{}) fastsse.Result[struct{}] {
		if msg == "block" {
			g.entered <- struct{}{}
			<-g.release
		}
		return echo("notify", msg, s)
	}}
	g.ep = ssetest.New(t, tr, h, opts)
	g.Server = tr.Serve(t, g.ep)
	return g
}

// fill opens a stream, blocks its goroutine in HandleNotify and fills its
// queue with messages 1..overflowQueue.
func (g *gated) fill(t *testing.T) (*ssetest.Client, *fastsse.Conn) {
	t.Helper()
	c, conn := g.block(t)
	for i := 1; i <= overflowQueue; i++ {
		require.NoError(t, conn.Notify(i), "message %d fits", i)
	}
	return c, conn
}

// block opens a stream and blocks its goroutine in HandleNotify until
// g.release closes, so that what is sent to it queues.
func (g *gated) block(t *testing.T) (*ssetest.Client, *fastsse.Conn) {
	t.Helper()
	c := ssetest.Dial(t, g.Addr, "GET", "/events").Start()
	require.Equal(t, http.StatusOK, c.Status)
	conn := g.p.conn(t)
	require.NoError(t, conn.Notify("block"))
	ssetest.Recv(t, g.entered, "HandleNotify(block)")
	return c, conn
}

func TestOverflowClose(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGated(t, tr, fastsse.OverflowClose)
			c, conn := g.fill(t)

			assert.ErrorIs(t, conn.Notify(overflowQueue+1), fastsse.ErrSlowConsumer, "the sender that overflowed")
			assert.ErrorIs(t, conn.Notify(overflowQueue+2), fastsse.ErrClosed, "the stream is ending")
			assert.ErrorIs(t, conn.Info("x"), fastsse.ErrClosed)
			assert.ErrorIs(t, conn.Close(), fastsse.ErrClosed)
			assert.Equal(t, int64(1), g.ep.Stats().SlowConsumers)
			close(g.release)

			reason := g.p.term(t)
			assert.ErrorIs(t, reason, fastsse.ErrSlowConsumer)
			ssetest.WaitDone(t, conn)
			assert.ErrorIs(t, conn.Err(), fastsse.ErrSlowConsumer)
			// The connection was closed under the stream: no final chunk.
			assert.Error(t, c.End(t))
			assert.Zero(t, g.ep.Stats().Dropped)
			assert.Equal(t, int64(1), g.p.nterms.Load())
		})
	}
}

// assertLoss asserts that ev is a LossEvent with the counts.
func assertLoss(t *testing.T, ev ssespec.Event, dropped, conflated int64) {
	t.Helper()
	assert.Equal(t, fastsse.LossEvent, ev.Type)
	assert.Equal(t, fmt.Sprintf(`{"dropped":%d,"conflated":%d}`, dropped, conflated), ev.Data)
}

func TestOverflowDropOldest(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGated(t, tr, fastsse.OverflowDropOldest)
			c, conn := g.fill(t)

			assert.NoError(t, conn.Notify(overflowQueue+1), "room is made")
			assert.NoError(t, conn.Notify(overflowQueue+2))
			assert.Equal(t, int64(2), g.ep.Stats().Dropped)
			close(g.release)

			assert.Equal(t, "notify:block", c.Data(t))
			for i := 3; i <= overflowQueue+2; i++ { // 1 and 2 were dropped
				assert.Equal(t, fmt.Sprintf("notify:%d", i), c.Data(t))
			}
			// The batch ends with the loss signal.
			assertLoss(t, c.Event(t), 2, 0)
			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
			assert.ErrorIs(t, g.p.term(t), fastsse.ErrStopped)
			assert.Len(t, c.Events(), overflowQueue+2)
			st := g.ep.Stats()
			assert.Equal(t, int64(2), st.Dropped)
			assert.Zero(t, st.SlowConsumers)
		})
	}
}

func TestOverflowDropNewest(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGated(t, tr, fastsse.OverflowDropNewest)
			c, conn := g.fill(t)

			assert.ErrorIs(t, conn.Notify(overflowQueue+1), fastsse.ErrQueueFull)
			assert.ErrorIs(t, conn.Info("dropped too"), fastsse.ErrQueueFull)
			assert.Equal(t, int64(2), g.ep.Stats().Dropped)
			close(g.release)

			assert.Equal(t, "notify:block", c.Data(t))
			for i := 1; i <= overflowQueue; i++ {
				assert.Equal(t, fmt.Sprintf("notify:%d", i), c.Data(t))
			}
			assertLoss(t, c.Event(t), 2, 0)
			// The queue drains; the stream goes on.
			require.NoError(t, conn.Notify("after"))
			assert.Equal(t, "notify:after", c.Data(t))
			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
			assert.ErrorIs(t, g.p.term(t), fastsse.ErrStopped)
			st := g.ep.Stats()
			assert.Equal(t, int64(2), st.Dropped)
			assert.Zero(t, st.SlowConsumers)
		})
	}
}

// A client that stops reading: the socket buffers and fasthttp's pipe fill,
// the stream's write blocks, its queue overflows, and OverflowClose closes
// the connection under the blocked write. The reason is still
// ErrSlowConsumer, not the write error that the close provoked.
func TestOverflowCloseUnblocksStuckWrite(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			ep := ssetest.New(t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{QueueSize: overflowQueue, Heartbeat: -1})
			s := tr.Serve(t, ep)
			c := ssetest.Dial(t, s.Addr, "GET", "/events") // never read
			require.Equal(t, http.StatusOK, c.Status)
			conn := p.conn(t)

			big := fastsse.Event{Data: strings.Repeat("x", 256<<10)}
			var err error
			ssetest.Eventually(t, func() bool {
				err = conn.Notify(big)
				return err != nil
			}, "the queue to overflow")
			require.ErrorIs(t, err, fastsse.ErrSlowConsumer)
			reason := p.term(t)
			assert.ErrorIs(t, reason, fastsse.ErrSlowConsumer)
			assert.Equal(t, int64(1), ep.Stats().SlowConsumers)
			ssetest.WaitDone(t, conn)
		})
	}
}
