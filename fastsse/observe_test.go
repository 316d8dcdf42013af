package fastsse_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an Observer that writes down what it hears.
type recorder struct {
	mu        sync.Mutex
	opened    []fastsse.StreamInfo
	ended     []string // ReasonClass of each end
	lifetimes []time.Duration
	overflows []fastsse.OverflowPolicy
	replays   []string
	published []int
}

func (r *recorder) StreamOpened(s fastsse.StreamInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened = append(r.opened, s)
}

func (r *recorder) StreamEnded(_ fastsse.StreamInfo, reason error, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = append(r.ended, fastsse.ReasonClass(reason))
	r.lifetimes = append(r.lifetimes, d)
}

func (r *recorder) Overflowed(_ fastsse.StreamInfo, p fastsse.OverflowPolicy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overflows = append(r.overflows, p)
}

func (r *recorder) Replayed(_ fastsse.StreamInfo, res fastsse.ReplayResult, events int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replays = append(r.replays, fmt.Sprintf("%v:%d", res, events))
}

func (r *recorder) Published(members int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, members)
}

func (r *recorder) snapshot() recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recorder{
		opened: append([]fastsse.StreamInfo(nil), r.opened...), ended: append([]string(nil), r.ended...),
		lifetimes: append([]time.Duration(nil), r.lifetimes...), overflows: append([]fastsse.OverflowPolicy(nil), r.overflows...),
		replays: append([]string(nil), r.replays...), published: append([]int(nil), r.published...),
	}
}

// TestObserver: on every transport, the Observer hears each stream's open
// and end, overflows, replays and publishes, and Stats counts the same.
func TestObserver(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) { observe(t, tr) })
	}
}

func observe(t *testing.T, tr ssetest.Transport) {
	obs := &recorder{}
	g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 10, Observer: obs})
	var ids []string
	for i := range 3 {
		id, err := g.Publish(&fastsse.Event{Data: fmt.Sprint(i)})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	p := newProbe()
	h := &funcs[struct{}]{p: p, init: func(_ any, last string, req *fastsse.Request) fastsse.InitResult[struct{}] {
		if req.Query("refuse") != "" {
			return fastsse.NoContent(struct{}{})
		}
		_ = g.Resume(req.Conn(), last)
		return fastsse.Open(struct{}{})
	}}
	ep, srv := ssetest.Start[struct{}](t, tr, h, &fastsse.Options{
		Heartbeat: -1, Observer: obs, Route: "/feed", QueueSize: 1, Overflow: fastsse.OverflowDropNewest,
	})
	addr := srv.Addr
	fresh := ssetest.Dial(t, addr, "GET", "/").Start()
	resumed := ssetest.Dial(t, addr, "GET", "/", "Last-Event-ID", ids[0]).Start()
	gap := ssetest.Dial(t, addr, "GET", "/", "Last-Event-ID", "nope").Start()
	_ = ssetest.Dial(t, addr, "GET", "/?refuse=1")
	require.ErrorIs(t, p.term(t), fastsse.ErrRefused)
	for _, c := range []*ssetest.Client{fresh, resumed, gap} {
		p.connOf(t, c)
	}
	require.Equal(t, ids[1], resumed.Event(t).ID)
	require.Equal(t, ids[2], resumed.Event(t).ID)

	// A full queue (QueueSize 1) drops the newest: Notify twice
	// before the stream can take the first.
	conn := p.connOf(t, fresh)
	dropped := 0
	for dropped == 0 {
		_ = conn.Notify("a")
		if err := conn.Notify("b"); errors.Is(err, fastsse.ErrQueueFull) {
			dropped++
		}
	}
	_, err := g.Publish(&fastsse.Event{Data: "live"})
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.NoError(t, p.connOf(t, resumed).Close())
	require.Eventually(t, func() bool { return ep.Stats().Open == 1 }, ssetest.Wait, time.Millisecond)

	got := obs.snapshot()
	require.Len(t, got.opened, 3)
	for _, s := range got.opened {
		assert.Equal(t, tr.Name, s.Transport)
		assert.Equal(t, "/feed", s.Route)
		assert.NotZero(t, s.ID)
	}
	assert.Equal(t, []string{"stopped", "stopped"}, got.ended)
	for _, d := range got.lifetimes {
		assert.Positive(t, d)
	}
	assert.Contains(t, got.overflows, fastsse.OverflowDropNewest)
	assert.ElementsMatch(t, []string{"none:0", "hit:2", "gap:0"}, got.replays)
	assert.Equal(t, []int{0, 0, 0, 3}, got.published)

	st := ep.Stats()
	assert.Equal(t, fastsse.ReplayCounts{None: 1, Hit: 1, Gap: 1, Events: 2}, st.Replays)
	assert.Equal(t, fastsse.EndCounts{Stopped: 2, Refused: 1}, st.Ends)
	assert.Equal(t, int64(len(got.overflows)), st.Dropped)
}

func TestReasonClass(t *testing.T) {
	for reason, want := range map[error]string{
		fastsse.ErrStopped:                                 "stopped",
		fmt.Errorf("%w: x", fastsse.ErrClientGone):         "client_gone",
		fastsse.ErrSlowConsumer:                            "slow_consumer",
		&fastsse.PanicError{Value: "boom"}:                 "panic",
		fmt.Errorf("%w: deadline", fastsse.ErrWriteFailed): "write_failed",
		fastsse.ErrLifetime:                                "lifetime",
		fastsse.ErrShutdown:                                "shutdown",
		fastsse.ErrRefused:                                 "refused",
	} {
		assert.Equal(t, want, fastsse.ReasonClass(reason), "%v", reason)
	}
}
