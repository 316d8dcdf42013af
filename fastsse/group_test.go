package fastsse

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---- Without network: bare Conns (grpBareConn), queues read directly. ----

func grpEndpoint(t *testing.T, opts *Options) *Endpoint {
	t.Helper()
	ep, err := New[int](&grpHandler{}, OnTestTransport(opts))
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

// ---- Over the network: a real fasthttp server on loopback, real clients. ----

// TestGroupThousandMembers: 1,000 members each receive every published event
// exactly once and in order.
func TestGroupThousandMembers(t *testing.T) {
	// 1,000 streams hold 2,000 descriptors in this process (server and client
	// sides), well under the 20,000 open-files cap.
	const members, events = 1000, 20
	var g Group
	h := &grpHandler{init: grpJoinInit(&g)}
	// The events (and a last one) are published back to back, faster than
	// the streams write them. QueueSize is twice their number, so each
	// member's queue holds all of them however far its stream lags: nothing
	// can overflow, and a loss would be a bug, not the overflow policy at
	// work. Heartbeats are off so the streams carry only the events. (20
	// events, not more: 21,000 deliveries already take seconds under -race
	// on two cores.)
	s := grpServe(t, h, &Options{QueueSize: 2 * events, Heartbeat: -1})
	clients := make([]*grpClient, members)
	var wg sync.WaitGroup
	errs := make(chan error, members)
	for w := range 8 { // dial in parallel: -race makes each dial slow
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < members; i += 8 {
				c, err := grpOpen(s, "", make(chan specEvent, events+1), nil)
				if err != nil {
					errs <- err
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	for _, c := range clients {
		if c != nil {
			t.Cleanup(c.close)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A stream's headers reach its client after Init joined it.
	require.Equal(t, members, g.Len())

	for i := 1; i <= events; i++ {
		_, err := g.Publish(&Event{ID: strconv.Itoa(i), Data: "event " + strconv.Itoa(i)})
		require.NoError(t, err)
	}
	// A last event: a duplicate of an earlier one would arrive before it.
	_, err := g.Publish(&Event{ID: "end", Data: "end"})
	require.NoError(t, err)

	want := append(grpSeq(1, events), "end")
	errs = make(chan error, members)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := grpExpectIDs(c, grpWait, want...); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d of %d clients failed", n, members)
	}
	st := s.ep.Stats()
	assert.Zero(t, st.Dropped)
	assert.Zero(t, st.SlowConsumers)
	grpEventually(t, "events counted", func() bool { return s.ep.Stats().Events == members*(events+1) })
}

// grpDialStuck opens a stream from a raw TCP client with a small receive
// buffer that never reads.
func grpDialStuck(t *testing.T, s *grpServer) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err = conn.Write([]byte("GET /events HTTP/1.1\r\nHost: grp.test\r\n\r\n"))
	require.NoError(t, err)
	return conn
}

// TestGroupSlowMember: a member that stops reading does not delay the
// others; under OverflowClose it is closed as a slow consumer and leaves the
// group.
func TestGroupSlowMember(t *testing.T) {
	const good = 3
	var g Group
	h := &grpHandler{init: grpJoinInit(&g), conns: make(chan *Conn, good+1)}
	s := grpServe(t, h, &Options{QueueSize: 8, Overflow: OverflowClose, Heartbeat: -1})
	var clients []*grpClient
	for range good {
		clients = append(clients, grpGet(t, s, "", 4))
		grpRecv(t, h.conns)
	}
	grpDialStuck(t, s)
	stuck := grpRecv(t, h.conns)
	grpEventually(t, "4 members", func() bool { return g.Len() == good+1 })

	// Big events fill the stuck client's socket buffers, then its stream's
	// pipe, then its queue, within a few MB. Each event is published when
	// the good clients have the previous one, so they see every event, and
	// how long each took.
	payload := strings.Repeat("x", 32<<10)
	var slowest time.Duration
	published := 0
	for stuck.Err() == nil {
		require.Less(t, published, 2000, "the stuck member was never closed")
		published++
		start := time.Now()
		id := strconv.Itoa(published)
		_, err := g.Publish(&Event{ID: id, Data: payload})
		require.NoError(t, err)
		for i, c := range clients {
			ev := c.next(t, grpWait)
			require.Equal(t, id, ev.ID, "client %d", i)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("stuck member closed after %d events of %d KiB; slowest delivery to the others %v",
		published, len(payload)>>10, slowest)
	// Well above a loopback delivery, well below the grpWait the stuck
	// stream could otherwise have cost.
	assert.Less(t, slowest, 2*time.Second, "the others were delayed")
	assert.Greater(t, published, 8, "the stuck member never filled its queue")

	grpDone(t, stuck)
	assert.ErrorIs(t, stuck.Err(), ErrSlowConsumer)
	assert.Equal(t, int64(1), s.ep.Stats().SlowConsumers)
	grpEventually(t, "the stuck member to leave", func() bool { return g.Len() == good })

	// The others go on.
	_, err := g.Publish(&Event{ID: "after", Data: "y"})
	require.NoError(t, err)
	for i, c := range clients {
		assert.Equal(t, "after", c.next(t, grpWait).ID, "client %d", i)
	}
}

// TestGroupResumeSeam: while a goroutine publishes continuously, clients
// resume from an earlier id; each sees the ids after it consecutively, no
// gap and no duplicate where the replay meets the live events.
func TestGroupResumeSeam(t *testing.T) {
	const (
		clients  = 60
		parallel = 6
		follow   = 150 // events each client checks after its last id
	)
	g := NewGroup(&GroupOptions{Replay: 1 << 16})
	h := &grpHandler{init: grpResumeOpenInit(g)}
	// The publisher runs at about 10k events/s. QueueSize bounds what may
	// wait for a stream that is momentarily off the CPU; 1<<14 is more
	// than a second of events, so a stream that overflows (and fails the
	// test by ending early) would be a real stall, not scheduling noise.
	s := grpServe(t, h, &Options{QueueSize: 1 << 14, Overflow: OverflowClose, Heartbeat: -1})

	var latest atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id, err := g.Publish(&Event{Data: "x"})
			if err != nil || id != grpID(g, i) {
				panic(fmt.Sprintf("Publish %d: %q, %v", i, id, err))
			}
			latest.Store(int64(i))
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-stopped })
	grpEventually(t, "some events", func() bool { return latest.Load() >= 500 })

	sem := make(chan struct{}, parallel)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for k := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// From the newest id back to 400 events ago: the replay runs
			// from nothing up to a few hundred frames.
			last := int(latest.Load()) - rand.IntN(400)
			c, err := grpOpen(s, grpID(g, last), make(chan specEvent, follow), nil)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", k, err)
				return
			}
			defer c.close()
			if err := grpExpectIDs(c, grpWait, grpIDs(g, last+1, last+follow)...); err != nil {
				errs <- fmt.Errorf("client %d resuming after %d: %w", k, last, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Zero(t, s.ep.Stats().SlowConsumers)
}

// TestGroupResumeGap: an id older than the ring, or unknown, is reported:
// Resume answers ErrReplayGap and queues a GapEvent, which arrives first,
// with the client's id as data and the group's position as id; the client
// is joined all the same and gets live events.
func TestGroupResumeGap(t *testing.T) {
	g := NewGroup(&GroupOptions{Replay: 5})
	h := &grpHandler{init: grpResumeOpenInit(g)}
	s := grpServe(t, h, &Options{Heartbeat: -1})
	for range 10 { // positions 1..10; the ring keeps 6..10
		_, err := g.Publish(&Event{Data: "x"})
		require.NoError(t, err)
	}
	tests := []struct {
		lastID string
		gap    bool
		replay []string
	}{
		{grpID(g, 2), true, nil}, // older than the ring
		{grpID(g, 4), true, nil}, // just evicted: 6 missed, 5 kept
		{"abc", true, nil},       // never published
		{"7", true, nil},         // an id of an older server's
		{grpID(g, 5), false, grpIDs(g, 6, 10)},
		{grpID(g, 10), false, nil}, // up to date
	}
	var clients []*grpClient
	for _, tt := range tests {
		clients = append(clients, grpGet(t, s, tt.lastID, 16))
	}
	require.Equal(t, len(tests), g.Len(), "every client joined, gap or not")
	id, err := g.Publish(&Event{Data: "live"})
	require.NoError(t, err)
	require.Equal(t, grpID(g, 11), id)

	for i, tt := range tests {
		t.Run("last="+tt.lastID, func(t *testing.T) {
			c := clients[i]
			if tt.gap {
				ev := c.next(t, grpWait)
				assert.Equal(t, GapEvent, ev.Type, "the gap comes first")
				assert.Equal(t, tt.lastID, ev.Data)
				assert.Equal(t, grpID(g, 10), ev.ID, "the position it joined at")
			}
			require.NoError(t, grpExpectIDs(c, grpWait, append(tt.replay, grpID(g, 11))...))
		})
	}
}

// TestGroupResumeNoStore: a group without a store reports every id as a
// gap; its gap event has no id, there being no position.
func TestGroupResumeNoStore(t *testing.T) {
	var g Group
	h := &grpHandler{init: grpResumeOpenInit(&g)}
	s := grpServe(t, h, &Options{Heartbeat: -1})
	resumed := grpGet(t, s, "41", 4)
	fresh := grpGet(t, s, "", 4)
	_, err := g.Publish(&Event{ID: "42", Data: "x"})
	require.NoError(t, err)
	ev := resumed.next(t, grpWait)
	assert.Equal(t, specEvent{Type: GapEvent, Data: "41"}, ev)
	assert.Equal(t, "42", resumed.next(t, grpWait).ID)
	assert.Equal(t, "42", fresh.next(t, grpWait).ID)
}

// TestGroupPublishInvalidOverNetwork: an invalid event reaches no client.
func TestGroupPublishInvalidOverNetwork(t *testing.T) {
	var g Group
	s := grpServe(t, &grpHandler{init: grpJoinInit(&g)}, &Options{Heartbeat: -1})
	c := grpGet(t, s, "", 4)
	_, err := g.Publish(&Event{ID: "1\nevent: injected", Data: "x"})
	require.ErrorIs(t, err, ErrInvalidID)
	_, err = g.Publish(&Event{ID: "2"})
	require.ErrorIs(t, err, ErrDataRequired)
	_, err = g.Publish(&Event{ID: "3", Data: "ok"})
	require.NoError(t, err)
	ev := c.next(t, grpWait)
	assert.Equal(t, specEvent{Type: "message", ID: "3", Data: "ok", IDSet: true}, ev)
}

// TestGroupNotify: Group.Notify reaches HandleNotify of every member, on
// each member's own state.
func TestGroupNotify(t *testing.T) {
	var g Group
	h := &grpHandler{
		init: grpJoinInit(&g),
		notify: func(msg any, n int) Result[int] {
			return Send(Event{Data: fmt.Sprintf("%v #%d", msg, n+1)}, n+1)
		},
	}
	s := grpServe(t, h, &Options{Heartbeat: -1})
	var clients []*grpClient
	for range 3 {
		clients = append(clients, grpGet(t, s, "", 4))
	}
	g.Notify("hello")
	g.Notify("again")
	for i, c := range clients {
		assert.Equal(t, "hello #1", c.next(t, grpWait).Data, "client %d", i)
		assert.Equal(t, "again #2", c.next(t, grpWait).Data, "client %d", i)
	}
}

// TestGroupLeaveOnClientGone: a member whose client hung up leaves once a
// heartbeat finds it gone.
func TestGroupLeaveOnClientGone(t *testing.T) {
	var g Group
	h := &grpHandler{init: grpJoinInit(&g), conns: make(chan *Conn, 2)}
	s := grpServe(t, h, &Options{Heartbeat: 20 * time.Millisecond})
	gone := grpGet(t, s, "", 4)
	goneConn := grpRecv(t, h.conns)
	stays := grpGet(t, s, "", 4)
	grpRecv(t, h.conns)
	require.Equal(t, 2, g.Len())
	gone.close()
	grpDone(t, goneConn)
	assert.ErrorIs(t, goneConn.Err(), ErrClientGone)
	assert.Equal(t, 1, g.Len())
	_, err := g.Publish(&Event{ID: "x", Data: "y"})
	require.NoError(t, err)
	assert.Equal(t, "x", stays.next(t, grpWait).ID)
}

// TestGroupLeaveOnClose: Conn.Close ends the stream; the member leaves, the
// client sees the end, and the Conn can join nothing any more.
func TestGroupLeaveOnClose(t *testing.T) {
	var g, other Group
	h := &grpHandler{init: grpJoinInit(&g), conns: make(chan *Conn, 1)}
	s := grpServe(t, h, &Options{Heartbeat: -1})
	c := grpGet(t, s, "", 4)
	conn := grpRecv(t, h.conns)
	require.NoError(t, other.Join(conn))
	require.NoError(t, conn.Close())
	grpDone(t, conn)
	assert.Equal(t, 0, g.Len())
	assert.Equal(t, 0, other.Len())
	_, err := c.nextErr(grpWait)
	assert.ErrorContains(t, err, "stream ended")
	assert.ErrorIs(t, g.Join(conn), ErrClosed)
	assert.ErrorIs(t, g.Resume(conn, ""), ErrClosed)
	assert.Equal(t, 0, g.Len())
}

// TestGroupLeaveOnRefused: a Conn joined in Init leaves when Init refuses
// the stream after all.
func TestGroupLeaveOnRefused(t *testing.T) {
	var g Group
	h := &grpHandler{init: func(_ string, req *Request) InitResult[int] {
		_ = g.Join(req.Conn())
		return NoContent(0)
	}}
	s := grpServe(t, h, nil)
	_, err := grpOpen(s, "", nil, nil)
	require.ErrorContains(t, err, "204")
	assert.Equal(t, 0, g.Len())
}

// TestGroupConcurrent runs Join, Resume, Leave, Publish, Notify and Len from
// several goroutines while streams end, for the race detector; when all have
// ended, nobody is left in the group.
func TestGroupConcurrent(t *testing.T) {
	const conns = 16
	g := NewGroup(&GroupOptions{Replay: 32})
	h := &grpHandler{init: grpJoinInit(g), conns: make(chan *Conn, conns)}
	s := grpServe(t, h, &Options{QueueSize: 16, Overflow: OverflowDropOldest, Heartbeat: 10 * time.Millisecond})
	var clients []*grpClient
	var cs []*Conn
	for range conns {
		c, err := grpOpen(s, "", nil, nil) // reads and discards
		require.NoError(t, err)
		t.Cleanup(c.close)
		clients = append(clients, c)
		cs = append(cs, grpRecv(t, h.conns))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 400 {
				c := cs[r.IntN(conns)]
				switch r.IntN(6) {
				case 0:
					_ = g.Join(c)
				case 1:
					_ = g.Resume(c, strconv.Itoa(r.IntN(500)))
				case 2:
					g.Leave(c)
				case 3:
					_, _ = g.Publish(&Event{Data: "p" + strconv.Itoa(i)})
				case 4:
					g.Notify(i)
				case 5:
					_ = g.Len()
				}
			}
		}()
	}
	// Meanwhile, streams end both ways.
	for i := range conns / 2 {
		if i%2 == 0 {
			_ = cs[i].Close()
		} else {
			clients[i].close()
		}
	}
	wg.Wait()
	for _, c := range cs {
		_ = c.Close()
	}
	for _, c := range cs {
		grpDone(t, c)
	}
	assert.Equal(t, 0, g.Len())
	for _, c := range cs {
		assert.ErrorIs(t, g.Join(c), ErrClosed)
	}
	assert.Equal(t, 0, g.Len())
	assert.ErrorIs(t, cs[0].Notify(1), ErrClosed)
}
