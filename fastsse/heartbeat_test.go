package fastsse_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testHeartbeat = 50 * time.Millisecond

func TestHeartbeatOnIdleStream(t *testing.T) {
	p := newProbe()
	inited := make(chan time.Time, 1)
	h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
		inited <- time.Now()
		return fastsse.Open(struct{}{})
	}}
	ep := newEndpoint(t, h, &fastsse.Options{Heartbeat: testHeartbeat})
	s := routed(t, mount{"/events", ep})
	c := dial(t, s.Addr, "GET", "/events").start()
	require.Equal(t, http.StatusOK, c.Resp.StatusCode)
	conn := p.conn(t)
	start := recv(t, inited, "Init")

	const beats = 3
	raw := c.WaitRaw(t, beats*len(": \n\n"))
	elapsed := time.Since(start)
	assert.Equal(t, strings.Repeat(": \n\n", beats), raw[:beats*4], "heartbeat comments only")
	// Each heartbeat goes out no sooner than an interval after the last
	// write: the lower bound is exact. The upper bound is generous.
	assert.GreaterOrEqual(t, elapsed, beats*testHeartbeat)
	assert.Less(t, elapsed, waitFor)
	t.Logf("%d heartbeats in %v (interval %v)", beats, elapsed, testHeartbeat)
	assert.Empty(t, c.Events(), "browsers see no event")
	assert.Zero(t, ep.Stats().Events, "heartbeats are not events")
	eventually(t, func() bool { return ep.Stats().Bytes >= beats*4 }, "heartbeats counted as bytes")

	require.NoError(t, conn.Close())
	assert.NoError(t, c.End(t))
}

// fasthttp reports a gone client only when a write fails, two or three
// writes after it left; at each heartbeat the stream transport first peeks
// at the socket (Linux), so an idle stream notices a client that closed
// within about one heartbeat interval, without a failed write. (The dense
// transport's epoll sees it at once: TestDenseNoticesCloseWithoutWriting.)
func TestHeartbeatNoticesGoneClient(t *testing.T) {
	p := newProbe()
	ep, err := fastsse.New[struct{}](&funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: testHeartbeat, Transport: fastsse.TransportStream})
	require.NoError(t, err)
	s := routed(t, mount{"/events", ep})
	c := dial(t, s.Addr, "GET", "/events")
	require.Equal(t, http.StatusOK, c.Resp.StatusCode)
	conn := p.conn(t)

	start := time.Now()
	c.Close()
	reason := p.term(t)
	took := time.Since(start)
	assert.ErrorIs(t, reason, fastsse.ErrClientGone)
	assert.Equal(t, int64(0), p.nerrs.Load(), "no write failed, so no HandleError")
	waitDone(t, conn)
	// The design's target is one heartbeat interval plus 1 s; the peek
	// runs when a heartbeat is due, 1 to 1.25 intervals after the last
	// write. Generous: this runs under -race on two busy cores.
	assert.Less(t, took, 2*testHeartbeat+time.Second)
	t.Logf("gone client noticed after %v (heartbeat %v)", took, testHeartbeat)
	eventually(t, func() bool { return ep.Stats().Open == 0 }, "Open = 0")
}

// With heartbeats off, an idle stream writes nothing at all.
func TestHeartbeatOff(t *testing.T) {
	p := newProbe()
	_, ep, c, conn := open(t, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: -1})
	// Wait through several of the intervals used above, then send a marker:
	// it must be the first thing on the wire.
	time.Sleep(4 * testHeartbeat)
	require.NoError(t, conn.Notify("marker"))
	assert.Equal(t, "notify:marker", c.Data(t))
	assert.Equal(t, "data: notify:marker\n\n", c.Raw())
	require.NoError(t, conn.Close())
	assert.NoError(t, c.End(t))
	assert.Equal(t, int64(len(c.Raw())), ep.Stats().Bytes)
}
