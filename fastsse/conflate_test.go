package fastsse_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyed is one keyed update: key and value.
type keyed struct{ key, val string }

// publishKeyed publishes each update to g as an event keyed by its key,
// whose data is "key=val".
func publishKeyed(t *testing.T, g *fastsse.Group, ups ...keyed) {
	t.Helper()
	for _, u := range ups {
		_, err := g.Publish(&fastsse.Event{Key: u.key, Data: u.key + "=" + u.val})
		require.NoError(t, err)
	}
}

// expectData reads the next events and asserts their data.
func expectData(t *testing.T, c *ssetest.Client, want ...string) {
	t.Helper()
	for _, w := range want {
		assert.Equal(t, w, c.Data(t))
	}
}

// TestConflateAlways: a stream held up in a callback while keyed events are
// published gets one event per key, the latest, in the order the keys were
// first queued, and then the loss signal with the count conflated away.
func TestConflateAlways(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGatedWith(t, tr, &fastsse.Options{QueueSize: 8, Conflation: fastsse.ConflateAlways, Heartbeat: -1})
			c, conn := g.block(t)
			grp := &fastsse.Group{}
			require.NoError(t, grp.Join(conn))
			publishKeyed(t, grp, keyed{"A", "1"}, keyed{"B", "2"}, keyed{"A", "3"}, keyed{"C", "4"}, keyed{"B", "5"}, keyed{"A", "6"})
			// Unkeyed frames are never conflated.
			_, err := grp.Publish(&fastsse.Event{Data: "plain"})
			require.NoError(t, err)
			_, err = grp.Publish(&fastsse.Event{Data: "plain"})
			require.NoError(t, err)
			close(g.release)

			expectData(t, c, "notify:block", "A=6", "B=5", "C=4", "plain", "plain")
			assertLoss(t, c.Event(t), 0, 3)
			dropped, conflated := conn.Losses()
			assert.Equal(t, [2]int64{0, 3}, [2]int64{dropped, conflated})
			assert.Equal(t, int64(3), g.ep.Stats().Conflated)

			// The queue is empty now: the next updates go out as they come,
			// with no loss signal.
			publishKeyed(t, grp, keyed{"A", "7"})
			expectData(t, c, "A=7")
			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
			for _, ev := range c.Events()[8:] {
				assert.NotEqual(t, fastsse.LossEvent, ev.Type)
			}
		})
	}
}

// TestConflateBackpressure: keyed frames queue one by one while there is
// room; once the queue is full a keyed frame replaces its key's newest
// pending frame in place, and one with no pending frame of its key meets
// the overflow policy.
func TestConflateBackpressure(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGatedWith(t, tr, &fastsse.Options{
				QueueSize: 4, Conflation: fastsse.ConflateBackpressure, Overflow: fastsse.OverflowDropNewest, Heartbeat: -1,
			})
			c, conn := g.block(t)
			grp := &fastsse.Group{}
			require.NoError(t, grp.Join(conn))
			publishKeyed(t, grp, keyed{"A", "1"}, keyed{"A", "2"}, keyed{"B", "3"}, keyed{"C", "4"}) // the queue is full
			publishKeyed(t, grp, keyed{"A", "5"}, keyed{"D", "6"})                                   // A conflates; D is dropped
			close(g.release)

			expectData(t, c, "notify:block", "A=1", "A=5", "B=3", "C=4")
			assertLoss(t, c.Event(t), 1, 1)
			st := g.ep.Stats()
			assert.Equal(t, int64(1), st.Dropped)
			assert.Equal(t, int64(1), st.Conflated)
		})
	}
}

// TestConflatePerGroup: a group's Conflation applies to its own events; a
// group left at the default conflates as the endpoint does (here: not).
func TestConflatePerGroup(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGatedWith(t, tr, &fastsse.Options{QueueSize: 16, Heartbeat: -1})
			c, conn := g.block(t)
			prices := fastsse.NewGroup(&fastsse.GroupOptions{Conflation: fastsse.ConflateAlways})
			news := &fastsse.Group{}
			require.NoError(t, prices.Join(conn))
			require.NoError(t, news.Join(conn))
			publishKeyed(t, prices, keyed{"A", "1"})
			publishKeyed(t, news, keyed{"N", "1"})
			publishKeyed(t, prices, keyed{"A", "2"})
			publishKeyed(t, news, keyed{"N", "2"})
			close(g.release)

			expectData(t, c, "notify:block", "A=2", "N=1", "N=2")
			assertLoss(t, c.Event(t), 0, 1)
		})
	}
}

// TestKeyIntervalPacesKeyedFrames: with Limits.KeyInterval a stream gets
// its keyed frames at most once per interval, the latest of each key when
// the interval ends; unkeyed frames queued behind them wait with them.
func TestKeyIntervalPacesKeyedFrames(t *testing.T) {
	const interval = 300 * time.Millisecond
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGatedWith(t, tr, &fastsse.Options{QueueSize: 8, Heartbeat: -1, Limits: fastsse.Limits{KeyInterval: interval}})
			c, conn := g.block(t)
			close(g.release)
			expectData(t, c, "notify:block")
			grp := &fastsse.Group{}
			require.NoError(t, grp.Join(conn))

			publishKeyed(t, grp, keyed{"A", "1"})
			expectData(t, c, "A=1")
			first := time.Now()
			publishKeyed(t, grp, keyed{"A", "2"}, keyed{"B", "1"})
			_, err := grp.Publish(&fastsse.Event{Data: "plain"})
			require.NoError(t, err)
			publishKeyed(t, grp, keyed{"A", "3"}, keyed{"B", "2"})

			expectData(t, c, "A=3", "B=2", "plain")
			// The held frames went out no sooner than the interval allows
			// (the clock of the first batch was read before it was written).
			assert.GreaterOrEqual(t, time.Since(first), interval-20*time.Millisecond)
			assertLoss(t, c.Event(t), 0, 2)
		})
	}
}

// TestEventsCap: over Limits.Events per second unkeyed frames are dropped
// and told; keyed ones wait, conflated, for the cap to allow them.
func TestEventsCap(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGatedWith(t, tr, &fastsse.Options{QueueSize: 16, Heartbeat: -1})
			c, conn := g.block(t)
			require.NoError(t, conn.SetLimits(fastsse.Limits{Events: 2}))
			grp := &fastsse.Group{}
			require.NoError(t, grp.Join(conn))
			for i := range 5 {
				_, err := grp.Publish(&fastsse.Event{Data: fmt.Sprint("plain", i)})
				require.NoError(t, err)
			}
			close(g.release)
			// A burst of two, then the three others dropped.
			expectData(t, c, "notify:block", "plain0", "plain1")
			assertLoss(t, c.Event(t), 3, 0)

			start := time.Now()
			publishKeyed(t, grp, keyed{"K", "1"}, keyed{"K", "2"}, keyed{"K", "3"})
			expectData(t, c, "K=3")
			// No token was left: K waited for one, about half a second at 2/s.
			assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond)
			assertLoss(t, c.Event(t), 0, 2)
			dropped, conflated := conn.Losses()
			assert.Equal(t, [2]int64{3, 2}, [2]int64{dropped, conflated})
		})
	}
}

// TestBytesCap: a Limits.Bytes cap lets a burst of one second's bytes
// through and drops the unkeyed rest.
func TestBytesCap(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := startGatedWith(t, tr, &fastsse.Options{QueueSize: 16, Heartbeat: -1})
			c, conn := g.block(t)
			f, err := fastsse.NewFrame(&fastsse.Event{Data: "0123456789"}) // 17 bytes
			require.NoError(t, err)
			require.NoError(t, conn.SetLimits(fastsse.Limits{Bytes: 3*f.Len() + 1}))
			for range 5 {
				require.NoError(t, conn.SendFrame(f))
			}
			close(g.release)
			expectData(t, c, "notify:block", "0123456789", "0123456789", "0123456789")
			assertLoss(t, c.Event(t), 2, 0)
		})
	}
}

func TestLimitsRefused(t *testing.T) {
	for _, o := range []fastsse.Options{
		{Limits: fastsse.Limits{Events: -1}},
		{Limits: fastsse.Limits{KeyInterval: -time.Second}},
		{Conflation: fastsse.ConflateAlways + 1},
	} {
		_, err := fastsse.New[struct{}](&funcs[struct{}]{p: newProbe()}, &o)
		assert.ErrorIs(t, err, fastsse.ErrInvalidLimits, "%+v", o)
	}
	tr := ssetest.Transports[0]
	g := startGatedWith(t, tr, &fastsse.Options{Heartbeat: -1})
	c, conn := g.block(t)
	assert.ErrorIs(t, conn.SetLimits(fastsse.Limits{Bytes: -1}), fastsse.ErrInvalidLimits)
	close(g.release)
	expectData(t, c, "notify:block")
	require.NoError(t, conn.Close())
	ssetest.WaitDone(t, conn)
	assert.ErrorIs(t, conn.SetLimits(fastsse.Limits{Events: 1}), fastsse.ErrClosed)
}
