package fastsse

import (
	"errors"
	"strconv"
	"sync"
	"time"
)

// Group is a set of connections to broadcast to, the pg2 process group of
// lasse's examples. Notify sends a message to every member's HandleNotify,
// lasse's way; Publish encodes an event once and queues the same bytes for
// every member, the way for high fan-out.
//
// A connection leaves its groups by itself when its stream ends. A slow
// member never delays the others: each member's own queue and overflow
// policy apply to it alone. The zero Group is ready to use, without replay;
// NewGroup makes one that keeps events for Resume. A Group is safe for
// concurrent use.
type Group struct {
	// mu orders Publish against Publish and against Resume: an event is
	// stored and queued to the members in one step, so a resuming connection
	// gets each event exactly once, from the replay or live.
	mu      sync.Mutex
	members map[*Conn]struct{}
	// hooked holds every Conn that registered g's end hook: the members, and
	// those that left while their stream goes on. A Conn that leaves and
	// joins again reuses its hook rather than adding one per Join.
	hooked map[*Conn]struct{}
	store  ReplayStore
	seq    uint64   // ids assigned by Publish
	obs    Observer // GroupOptions.Observer
}

// GroupOptions configures NewGroup. A nil *GroupOptions means no replay.
type GroupOptions struct {
	// Replay is how many of the latest published events an in-memory ring
	// keeps for Resume. Default 0: none (Resume then reports ErrReplayGap for
	// any id).
	Replay int
	// Store, when set, keeps events instead of the in-memory ring (Replay is
	// then ignored): back it with a database to resume across restarts.
	Store ReplayStore
	// Observer, when set, hears of every Publish (Observer.Published).
	// Replays are told to the resuming stream's endpoint's Observer.
	// Default nil.
	Observer Observer
}

// NewGroup returns a Group that keeps published events for Resume as opts
// says.
func NewGroup(opts *GroupOptions) *Group {
	g := &Group{}
	if opts != nil {
		g.obs = opts.Observer
		switch {
		case opts.Store != nil:
			g.store = opts.Store
		case opts.Replay > 0:
			g.store = NewReplayRing(opts.Replay)
		}
	}
	return g
}

// Join adds c to the group. It returns ErrClosed, not adding c, if c's
// stream has ended. Joining twice is joining once.
func (g *Group) Join(c *Conn) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.joinLocked(c)
}

func (g *Group) joinLocked(c *Conn) error {
	if c == nil {
		return ErrClosed
	}
	if _, ok := g.members[c]; ok {
		return nil
	}
	if _, ok := g.hooked[c]; ok {
		// Joined before and left; its hook has not run yet, but the stream
		// may have ended already.
		if c.Err() != nil {
			return ErrClosed
		}
	} else {
		if !c.addEndHook(g.forget) {
			return ErrClosed
		}
		if g.hooked == nil {
			g.hooked = make(map[*Conn]struct{})
		}
		g.hooked[c] = struct{}{}
	}
	if g.members == nil {
		g.members = make(map[*Conn]struct{})
	}
	g.members[c] = struct{}{}
	return nil
}

// Resume joins c to the group after queueing for it every stored event
// published after lastEventID, in order, in one step with joining: c gets
// each event once, with no gap and no duplicate at the seam between replay
// and live events, however Publish races it. Call it from Init with Init's
// lastEventID.
//
// An empty lastEventID just joins. When lastEventID is not in the store
// (unknown, or older than what the store keeps), c joins with nothing
// replayed and Resume returns ErrReplayGap: the client may have missed
// events, so tell it (an initial event, say) and let it resynchronise.
// Resume returns ErrClosed, not joining c, if c's stream has ended. For a
// member, Resume is Join: it replays nothing. Should c's queue be full
// (Resume is meant for Init, before anything can fill it), Resume returns
// ErrQueueFull and c stays joined without the replay.
func (g *Group) Resume(c *Conn, lastEventID string) error {
	res, events, err := g.resume(c, lastEventID)
	if c != nil && !errors.Is(err, ErrClosed) {
		c.replayed(res, events)
	}
	return err
}

// resume is Resume, and says what it replayed.
func (g *Group) resume(c *Conn, lastEventID string) (ReplayResult, int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, member := g.members[c]; member || lastEventID == "" {
		// A member already has every event since it joined: replaying
		// would duplicate them.
		return ReplayNone, 0, g.joinLocked(c)
	}
	if err := g.joinLocked(c); err != nil {
		return ReplayNone, 0, err
	}
	if g.store == nil {
		return ReplayGap, 0, ErrReplayGap
	}
	// The replay goes into the queue as one frame, so a long replay is not
	// cut by the queue's bound.
	var replay []byte
	events := 0
	found := g.store.Since(lastEventID, func(f *Frame) {
		replay = append(replay, f.Bytes()...)
		events++
	})
	if !found {
		return ReplayGap, 0, ErrReplayGap
	}
	if len(replay) > 0 {
		if err := c.pushReplay(&Frame{b: replay}); err != nil {
			return ReplayHit, 0, err
		}
	}
	return ReplayHit, events, nil
}

// Leave removes c from the group; a connection leaves by itself when its
// stream ends.
func (g *Group) Leave(c *Conn) {
	g.mu.Lock()
	delete(g.members, c)
	g.mu.Unlock()
}

// forget is g's end hook: c's stream has ended.
func (g *Group) forget(c *Conn) {
	g.mu.Lock()
	delete(g.members, c)
	delete(g.hooked, c)
	g.mu.Unlock()
}

// Len returns the number of members.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// Notify sends msg to every member's HandleNotify, as Conn.Notify does. It
// never blocks on a member.
func (g *Group) Notify(msg any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.members {
		_ = c.Notify(msg)
	}
}

// Publish encodes ev once and queues the same immutable bytes for every
// member; the members' callbacks are not called. When the group keeps a
// replay store and ev.ID is empty, Publish gives the event the next number
// of a sequence of its own (1, 2, 3, ...). It returns the event's id, or the
// encoder's error, and then publishes nothing. It never blocks on a member.
func (g *Group) Publish(ev *Event) (id string, err error) {
	if err := ev.validate(); err != nil {
		return "", err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.obs != nil {
		start := time.Now()
		defer func() { g.obs.Published(len(g.members), time.Since(start)) }()
	}
	id = ev.ID
	if id == "" && g.store != nil {
		g.seq++
		e := *ev
		e.ID = strconv.FormatUint(g.seq, 10)
		ev, id = &e, e.ID
	}
	f := ev.frame()
	if g.store != nil {
		g.store.Add(id, f)
	}
	for c := range g.members {
		_ = c.push(item{kind: kindFrame, frame: f})
	}
	return id, nil
}
