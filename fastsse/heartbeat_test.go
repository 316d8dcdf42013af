package fastsse_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testHeartbeat = 50 * time.Millisecond

func TestHeartbeatOnIdleStream(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			inited := make(chan time.Time, 1)
			h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
				inited <- time.Now()
				return fastsse.Open(struct{}{})
			}}
			ep := ssetest.New(t, tr, h, &fastsse.Options{Heartbeat: testHeartbeat})
			s := tr.Serve(t, ep)
			c := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
			require.Equal(t, http.StatusOK, c.Status)
			conn := p.conn(t)
			start := ssetest.Recv(t, inited, "Init")

			const beats = 3
			raw := c.WaitRaw(t, beats*len(": \n\n"))
			elapsed := time.Since(start)
			assert.Equal(t, strings.Repeat(": \n\n", beats), raw[:beats*4], "heartbeat comments only")
			// Each heartbeat goes out no sooner than an interval after the last
			// write: the lower bound is exact. The upper bound is generous.
			assert.GreaterOrEqual(t, elapsed, beats*testHeartbeat)
			assert.Less(t, elapsed, ssetest.Wait)
			t.Logf("%d heartbeats in %v (interval %v)", beats, elapsed, testHeartbeat)
			assert.Empty(t, c.Events(), "browsers see no event")
			assert.Zero(t, ep.Stats().Events, "heartbeats are not events")
			ssetest.Eventually(t, func() bool { return ep.Stats().Bytes >= beats*4 }, "heartbeats counted as bytes")

			require.NoError(t, conn.Close())
			assert.NoError(t, c.End(t))
		})
	}
}

// fasthttp reports a gone client only when a write fails, two or three
// writes after it left; at each heartbeat the stream transport first peeks
// at the socket (Linux), so an idle stream notices a client that closed
// within about one heartbeat interval, without a failed write. (The dense
// transport's epoll sees it at once: TestDenseNoticesCloseWithoutWriting.)
func TestStreamHeartbeatNoticesGoneClient(t *testing.T) {
	p := newProbe()
	tr := ssetest.Named(t, "stream")
	ep := ssetest.New(t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: testHeartbeat})
	s := tr.Serve(t, ep)
	c := ssetest.Dial(t, s.Addr, "GET", "/events")
	require.Equal(t, http.StatusOK, c.Status)
	conn := p.conn(t)

	start := time.Now()
	c.Close()
	reason := p.term(t)
	took := time.Since(start)
	assert.ErrorIs(t, reason, fastsse.ErrClientGone)
	assert.Equal(t, int64(0), p.nerrs.Load(), "no write failed, so no HandleError")
	ssetest.WaitDone(t, conn)
	// The design's target is one heartbeat interval plus 1 s; the peek
	// runs when a heartbeat is due, 1 to 1.25 intervals after the last
	// write. Generous: this runs under -race on two busy cores.
	assert.Less(t, took, 2*testHeartbeat+time.Second)
	t.Logf("gone client noticed after %v (heartbeat %v)", took, testHeartbeat)
	ssetest.Eventually(t, func() bool { return ep.Stats().Open == 0 }, "Open = 0")
}

// With heartbeats off, an idle stream writes nothing at all.
func TestHeartbeatOff(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			_, ep, c, conn := open(t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: -1})
			// Wait through several of the intervals used above, then send a marker:
			// it must be the first thing on the wire.
			time.Sleep(4 * testHeartbeat)
			require.NoError(t, conn.Notify("marker"))
			assert.Equal(t, "notify:marker", c.Data(t))
			assert.Equal(t, "data: notify:marker\n\n", c.Raw())
			require.NoError(t, conn.Close())
			assert.NoError(t, c.End(t))
			assert.Equal(t, int64(len(c.Raw())), ep.Stats().Bytes)
		})
	}
}
