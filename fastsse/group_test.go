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
	its := grpTake(c)
	require.Len(t, its, 1, "nothing replayed, the gap told")
	assert.Equal(t, "event: lasse-gap\ndata: 3\n\n", string(its[0].frame.Bytes()))
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
	for _, want := range grpIDs(g, 1, 2) {
		id, err := g.Publish(ev)
		require.NoError(t, err)
		assert.Equal(t, want, id)
	}
	assert.Empty(t, ev.ID, "the caller's event is not modified")

	id, err := g.Publish(&Event{ID: "own", Data: "y"})
	require.ErrorIs(t, err, ErrIDSet, "a group with replay numbers its events itself")
	assert.Empty(t, id)
	id, err = g.Publish(&Event{Data: "z"})
	require.NoError(t, err)
	assert.Equal(t, grpID(g, 3), id, "the refused event took no number of the sequence")

	assert.Equal(t, strings.Join(grpIDs(g, 1, 3), "|"), grpFrameIDs(grpTake(c)))
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
		{&Event{ID: "7", Data: "x"}, ErrIDSet},
	}
	for _, tt := range tests {
		id, err := g.Publish(tt.ev)
		assert.ErrorIs(t, err, tt.want, "%+v", tt.ev)
		assert.Empty(t, id)
	}
	assert.Empty(t, grpTake(c))
	assert.Empty(t, rec.seqs)
	id, err := g.Publish(&Event{Data: "ok"})
	require.NoError(t, err)
	assert.Equal(t, "rec-1", id)
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
	other := NewGroup(&GroupOptions{Replay: 3})
	tests := []struct {
		name   string
		lastID func(g *Group) string
		gap    bool
		want   []int // positions replayed
	}{
		{"empty", func(*Group) string { return "" }, false, nil},
		{"2", func(g *Group) string { return grpID(g, 2) }, false, []int{3, 4, 5}}, // a ring of 3 resumes 3
		{"3", func(g *Group) string { return grpID(g, 3) }, false, []int{4, 5}},
		{"4", func(g *Group) string { return grpID(g, 4) }, false, []int{5}},
		{"5", func(g *Group) string { return grpID(g, 5) }, false, nil}, // the newest: nothing missed
		{"1", func(g *Group) string { return grpID(g, 1) }, true, nil},  // 4 missed, 3 kept
		{"ahead", func(g *Group) string { return grpID(g, 6) }, true, nil},
		{"other group", func(*Group) string { return grpID(other, 3) }, true, nil},
		{"bare number", func(*Group) string { return "3" }, true, nil},
		{"junk", func(*Group) string { return "junk" }, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGroup(&GroupOptions{Replay: 3})
			for range 5 { // positions 1..5; the ring keeps 3, 4, 5
				_, err := g.Publish(&Event{Data: "x"})
				require.NoError(t, err)
			}
			c := grpBareConn(t, ep)
			last := tt.lastID(g)
			err := g.Resume(c, last)
			its := grpTake(c)
			if tt.gap {
				require.ErrorIs(t, err, ErrReplayGap)
				require.Len(t, its, 1, "the gap event, nothing replayed")
				evs := parseAll(its[0].frame.Bytes())
				require.Len(t, evs, 1)
				assert.Equal(t, specEvent{Type: GapEvent, Data: last, ID: grpID(g, 5), IDSet: true}, evs[0])
			} else {
				require.NoError(t, err)
				assert.LessOrEqual(t, len(its), 1, "a replay is one item")
				var want []string
				for _, p := range tt.want {
					want = append(want, grpID(g, p))
				}
				assert.Equal(t, strings.Join(want, "|"), grpReplayIDs(t, its))
			}
			// Joined either way: the next event arrives live.
			id, err := g.Publish(&Event{Data: "y"})
			require.NoError(t, err)
			assert.Equal(t, id, grpFrameIDs(grpTake(c)))
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
	require.NoError(t, g.Resume(c, grpID(g, 10)))
	assert.Equal(t, strings.Join(grpIDs(g, 11, 50), "|"), grpReplayIDs(t, grpTake(c)))
}

// grpRecStore is a ReplayStore that records what it is given; its epoch
// is "rec".
type grpRecStore struct {
	seqs   []uint64
	frames []*Frame
}

func (s *grpRecStore) Position() (string, uint64) { return "rec", 0 }

func (s *grpRecStore) Add(seq uint64, f *Frame) {
	s.seqs = append(s.seqs, seq)
	s.frames = append(s.frames, f)
}

func (s *grpRecStore) Read(after uint64, fn func(uint64, *Frame) bool) bool {
	for i, v := range s.seqs {
		if v > after && !fn(v, s.frames[i]) {
			break
		}
	}
	return true
}

// TestGroupCustomStore: a Store replaces the ring (Replay is then ignored),
// names the epoch, and is given each event's position and its frame, the
// id field included.
func TestGroupCustomStore(t *testing.T) {
	rec := &grpRecStore{}
	g := NewGroup(&GroupOptions{Replay: 1, Store: rec})
	for range 3 {
		_, err := g.Publish(&Event{Event: "e", Data: "d"})
		require.NoError(t, err)
	}
	require.Equal(t, []uint64{1, 2, 3}, rec.seqs)
	assert.Equal(t, "id: rec-2\nevent: e\ndata: d\n\n", string(rec.frames[1].Bytes()))

	c := grpBareConn(t, grpEndpoint(t, nil))
	require.NoError(t, g.Resume(c, "rec-1"), "the store has 1; a ring of 1 would not")
	assert.Equal(t, "rec-2|rec-3", grpReplayIDs(t, grpTake(c)))
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

// TestPublishIDWithComment: the id Publish returns is the one on the wire,
// also when comment lines come before the id field.
func TestPublishIDWithComment(t *testing.T) {
	g := NewGroup(&GroupOptions{Replay: 4})
	for i := range 3 {
		ev := Event{Comment: "one\ntwo", Data: "x"}
		if i == 1 {
			ev.Comment = ""
		}
		id, err := g.Publish(&ev)
		if err != nil {
			t.Fatal(err)
		}
		want := formatID(g.epoch, uint64(i+1))
		if id != want {
			t.Fatalf("Publish returned id %q, want %q", id, want)
		}
	}
}
