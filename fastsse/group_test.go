package fastsse

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---- Without network: bare Conns (grpBareConn), queues read directly. ----

// grpEndpoint is an endpoint for bare Conns: no stream runs, so the
// transport does not come into these tests.
func grpEndpoint(t *testing.T, opts *Options) *Endpoint {
	t.Helper()
	ep, err := New[int](&grpHandler{}, opts)
	require.NoError(t, err)
	return ep
}

func TestGroupZeroValue(t *testing.T) {
	var g Group
	assert.Equal(t, 0, g.Len())
	g.Notify("nobody") // no members: nothing happens
	id, err := g.Publish(&Event{Data: "x"})
	require.NoError(t, err)
	assert.Empty(t, id, "no store: no id assigned")

	c := grpBareConn(t, grpEndpoint(t, nil))
	assert.ErrorIs(t, g.Resume(c, "3"), ErrReplayGap, "no store: any id is a gap")
	assert.Equal(t, 1, g.Len(), "joined despite the gap")
	assert.NoError(t, g.Resume(c, ""), "no id: just join")
	assert.Equal(t, 1, g.Len())
	assert.Empty(t, grpTake(c), "nothing replayed")
}

func TestGroupJoinLeave(t *testing.T) {
	ep := grpEndpoint(t, nil)
	var g Group
	a, b := grpBareConn(t, ep), grpBareConn(t, ep)
	require.NoError(t, g.Join(a))
	require.NoError(t, g.Join(a), "joining twice is joining once")
	assert.Equal(t, 1, g.Len())
	require.NoError(t, g.Join(b))
	assert.Equal(t, 2, g.Len())
	g.Leave(a)
	g.Leave(a) // leaving twice is harmless
	assert.Equal(t, 1, g.Len())

	_, err := g.Publish(&Event{Data: "x"})
	require.NoError(t, err)
	assert.Empty(t, grpTake(a), "a left")
	assert.Len(t, grpTake(b), 1)

	assert.ErrorIs(t, g.Join(nil), ErrClosed)
	assert.ErrorIs(t, g.Resume(nil, "1"), ErrClosed)
	assert.Equal(t, 1, g.Len())
}

func TestGroupJoinEnded(t *testing.T) {
	ep := grpEndpoint(t, nil)
	g := NewGroup(&GroupOptions{Replay: 4})
	c := grpBareConn(t, ep)
	grpEnd(c, ErrStopped)
	assert.ErrorIs(t, g.Join(c), ErrClosed)
	assert.ErrorIs(t, g.Resume(c, ""), ErrClosed)
	assert.ErrorIs(t, g.Resume(c, "1"), ErrClosed)
	assert.Equal(t, 0, g.Len())
}

// TestGroupLeavesOnEnd: a member leaves every group it is in when its stream
// ends.
func TestGroupLeavesOnEnd(t *testing.T) {
	ep := grpEndpoint(t, nil)
	var g1, g2 Group
	a, b := grpBareConn(t, ep), grpBareConn(t, ep)
	for _, g := range []*Group{&g1, &g2} {
		require.NoError(t, g.Join(a))
		require.NoError(t, g.Join(b))
	}
	grpEnd(a, ErrClientGone)
	assert.Equal(t, 1, g1.Len())
	assert.Equal(t, 1, g2.Len())
	_, err := g1.Publish(&Event{Data: "x"})
	require.NoError(t, err)
	assert.Len(t, grpTake(b), 1)
}

// TestGroupRejoinAfterLeave: a member that leaves and joins again, many
// times (a client switching topics), is one member, holds one end hook per
// group, not one per Join, and still leaves when its stream ends.
func TestGroupRejoinAfterLeave(t *testing.T) {
	ep := grpEndpoint(t, nil)
	var g, other Group
	c := grpBareConn(t, ep)
	for range 1000 {
		require.NoError(t, g.Join(c))
		require.NoError(t, other.Resume(c, ""))
		g.Leave(c)
		other.Leave(c)
	}
	c.mu.Lock()
	hooks := len(c.onEnd)
	c.mu.Unlock()
	assert.LessOrEqual(t, hooks, 2, "end hooks registered by 1000 joins to 2 groups")
	require.NoError(t, g.Join(c))
	assert.Equal(t, 1, g.Len())
	assert.Equal(t, 0, other.Len())
	grpEnd(c, ErrStopped)
	assert.Equal(t, 0, g.Len())
	assert.ErrorIs(t, g.Join(c), ErrClosed)
	assert.ErrorIs(t, other.Join(c), ErrClosed)
}

// TestGroupJoinWhileEnding: between the end of a stream and its end hooks a
// Conn that once joined and left is refused, as any ended Conn is.
func TestGroupJoinWhileEnding(t *testing.T) {
	ep := grpEndpoint(t, nil)
	var g Group
	c := grpBareConn(t, ep)
	require.NoError(t, g.Join(c))
	g.Leave(c)
	require.True(t, c.markEnded(ErrClientGone)) // ended; finish not run yet
	assert.ErrorIs(t, g.Join(c), ErrClosed)
	assert.Equal(t, 0, g.Len())
	c.finish()
	assert.Equal(t, 0, g.Len())
}

func TestGroupPublishIDs(t *testing.T) {
	g := NewGroup(&GroupOptions{Replay: 8})
	c := grpBareConn(t, grpEndpoint(t, nil))
	require.NoError(t, g.Join(c))

	ev := &Event{Event: "tick", Data: "x"}
	for _, want := range []string{"1", "2"} {
		id, err := g.Publish(ev)
		require.NoError(t, err)
		assert.Equal(t, want, id)
	}
	assert.Empty(t, ev.ID, "the caller's event is not modified")

	id, err := g.Publish(&Event{ID: "own", Data: "y"})
	require.NoError(t, err)
	assert.Equal(t, "own", id, "an id of the caller's is kept")
	id, err = g.Publish(&Event{Data: "z"})
	require.NoError(t, err)
	assert.Equal(t, "3", id, "and takes no number of the sequence")

	assert.Equal(t, "1|2|own|3", grpFrameIDs(grpTake(c)))
}

// TestGroupPublishInvalid: an invalid event returns the encoder's error and
// publishes nothing: no member gets anything, the store records nothing, no
// id is used up.
func TestGroupPublishInvalid(t *testing.T) {
	rec := &grpRecStore{}
	g := NewGroup(&GroupOptions{Store: rec})
	c := grpBareConn(t, grpEndpoint(t, nil))
	require.NoError(t, g.Join(c))
	tests := []struct {
		ev   *Event
		want error
	}{
		{nil, ErrDataRequired},
		{&Event{}, ErrDataRequired},
		{&Event{ID: "a\nb", Data: "x"}, ErrInvalidID},
		{&Event{ID: "a\x00", Data: "x"}, ErrInvalidID},
		{&Event{Event: "a\rb", Data: "x"}, ErrInvalidType},
		{&Event{Data: "x", Retry: -time.Second}, ErrInvalidRetry},
	}
	for _, tt := range tests {
		id, err := g.Publish(tt.ev)
		assert.ErrorIs(t, err, tt.want, "%+v", tt.ev)
		assert.Empty(t, id)
	}
	assert.Empty(t, grpTake(c))
	assert.Empty(t, rec.ids)
	id, err := g.Publish(&Event{Data: "ok"})
	require.NoError(t, err)
	assert.Equal(t, "1", id)
}

// TestGroupPublishSharesFrame: Publish encodes once; every member's queue
// holds the same frame.
func TestGroupPublishSharesFrame(t *testing.T) {
	ep := grpEndpoint(t, nil)
	var g Group
	cs := []*Conn{grpBareConn(t, ep), grpBareConn(t, ep), grpBareConn(t, ep)}
	for _, c := range cs {
		require.NoError(t, g.Join(c))
	}
	_, err := g.Publish(&Event{ID: "7", Data: "shared"})
	require.NoError(t, err)
	var first *Frame
	for _, c := range cs {
		its := grpTake(c)
		require.Len(t, its, 1)
		require.Equal(t, kindFrame, its[0].kind)
		if first == nil {
			first = its[0].frame
		}
		assert.Same(t, first, its[0].frame)
	}
	assert.Equal(t, "id: 7\ndata: shared\n\n", string(first.Bytes()))
}

// TestGroupResumeQueue: what Resume puts in the queue, for each kind of id.
func TestGroupResumeQueue(t *testing.T) {
	ep := grpEndpoint(t, nil)
	tests := []struct {
		lastID string
		err    error
		want   string // ids replayed
	}{
		{"", nil, ""},
		{"3", nil, "4|5"},
		{"4", nil, "5"},
		{"5", nil, ""}, // the newest: nothing missed
		{"2", ErrReplayGap, ""},
		{"1", ErrReplayGap, ""},
		{"99", ErrReplayGap, ""},
		{"junk", ErrReplayGap, ""},
	}
	for _, tt := range tests {
		t.Run("last="+tt.lastID, func(t *testing.T) {
			g := NewGroup(&GroupOptions{Replay: 3})
			for range 5 { // ids 1..5; the ring keeps 3, 4, 5
				_, err := g.Publish(&Event{Data: "x"})
				require.NoError(t, err)
			}
			c := grpBareConn(t, ep)
			err := g.Resume(c, tt.lastID)
			if tt.err == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.err)
			}
			its := grpTake(c)
			assert.LessOrEqual(t, len(its), 1, "a replay is one item")
			assert.Equal(t, tt.want, grpFrameIDs(its))
			// Joined either way: the next event arrives live.
			_, err = g.Publish(&Event{ID: "live", Data: "y"})
			require.NoError(t, err)
			assert.Equal(t, "live", grpFrameIDs(grpTake(c)))
		})
	}
}

// TestGroupResumeReplayBeyondQueueSize: a replay longer than the queue is
// one item, so the queue's bound does not cut it.
func TestGroupResumeReplayBeyondQueueSize(t *testing.T) {
	ep := grpEndpoint(t, &Options{QueueSize: 2})
	g := NewGroup(&GroupOptions{Replay: 100})
	for range 50 {
		_, err := g.Publish(&Event{Data: "x"})
		require.NoError(t, err)
	}
	c := grpBareConn(t, ep)
	require.NoError(t, g.Resume(c, "10"))
	assert.Equal(t, strings.Join(grpSeq(11, 50), "|"), grpFrameIDs(grpTake(c)))
}

// grpRecStore is a ReplayStore that records what it is given.
type grpRecStore struct {
	ids    []string
	frames []*Frame
}

func (s *grpRecStore) Add(id string, f *Frame) {
	s.ids = append(s.ids, id)
	s.frames = append(s.frames, f)
}

func (s *grpRecStore) Since(id string, fn func(*Frame)) bool {
	for i, v := range s.ids {
		if v == id {
			for _, f := range s.frames[i+1:] {
				fn(f)
			}
			return true
		}
	}
	return false
}

// TestGroupCustomStore: a Store replaces the ring (Replay is then ignored)
// and is given each event's id and its frame, the id field included.
func TestGroupCustomStore(t *testing.T) {
	rec := &grpRecStore{}
	g := NewGroup(&GroupOptions{Replay: 1, Store: rec})
	for range 3 {
		_, err := g.Publish(&Event{Event: "e", Data: "d"})
		require.NoError(t, err)
	}
	require.Equal(t, []string{"1", "2", "3"}, rec.ids)
	assert.Equal(t, "id: 2\nevent: e\ndata: d\n\n", string(rec.frames[1].Bytes()))

	c := grpBareConn(t, grpEndpoint(t, nil))
	require.NoError(t, g.Resume(c, "1"), "the store has 1; a ring of 1 would not")
	assert.Equal(t, "2|3", grpFrameIDs(grpTake(c)))
}

func TestGroupNewGroupOptions(t *testing.T) {
	assert.Nil(t, NewGroup(nil).store)
	assert.Nil(t, NewGroup(&GroupOptions{}).store)
	assert.Nil(t, NewGroup(&GroupOptions{Replay: -1}).store)
	assert.IsType(t, &ReplayRing{}, NewGroup(&GroupOptions{Replay: 1}).store)
}

// TestGroupOverflowIsolated: a member whose queue is full is handled by its
// own overflow policy; Publish neither fails nor skips the others.
func TestGroupOverflowIsolated(t *testing.T) {
	for _, tt := range []struct {
		policy OverflowPolicy
		stats  func(Stats) int64
	}{
		{OverflowClose, func(s Stats) int64 { return s.SlowConsumers }},
		{OverflowDropNewest, func(s Stats) int64 { return s.Dropped }},
		{OverflowDropOldest, func(s Stats) int64 { return s.Dropped }},
	} {
		t.Run(strconv.Itoa(int(tt.policy)), func(t *testing.T) {
			ep := grpEndpoint(t, &Options{QueueSize: 2, Overflow: tt.policy})
			var g Group
			full, ok := grpBareConn(t, ep), grpBareConn(t, ep)
			require.NoError(t, g.Join(full))
			require.NoError(t, g.Join(ok))
			require.NoError(t, full.Notify(1))
			require.NoError(t, full.Notify(2))
			_, err := g.Publish(&Event{ID: "p", Data: "x"})
			require.NoError(t, err)
			g.Notify("n")
			its := grpTake(ok)
			require.Len(t, its, 2)
			assert.Equal(t, kindFrame, its[0].kind)
			assert.Equal(t, kindNotify, its[1].kind)
			assert.Positive(t, tt.stats(ep.Stats()))
		})
	}
}

// ---- Over the network: a real fasthttp server on loopback, real clients. ----
