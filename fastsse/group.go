package fastsse

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"time"
	"unsafe"
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
//
// Event ids. A Group that keeps replay numbers its events itself: the id of
// each is EPOCH-SEQ, where SEQ is its position (1, 2, 3, ... in decimal)
// and EPOCH names the store's sequence. The in-memory ring's epoch is 8
// random characters of [0-9a-v], drawn anew for every ring, so it differs
// between groups, processes and restarts: "k3x9q2mz-42". Resume reads a
// Last-Event-ID of another epoch, one not of this form, or one ahead of the
// group's position as a gap (ErrReplayGap), never as a place in its own
// sequence. Treat ids as opaque strings.
type Group struct {
	// mu orders Publish against Publish and against Resume: an event is
	// stored and queued to the members in one step, so a resuming connection
	// gets each event exactly once, from the replay or live.
	mu      sync.Mutex
	members memberSet
	// hooked holds every Conn that registered g's end hook: the members, and
	// those that left while their stream goes on. A Conn that leaves and
	// joins again reuses its hook rather than adding one per Join.
	hooked map[*Conn]struct{}
	store  ReplayStore
	bus    *busState  // nil unless made by NewBusGroup
	epoch  string     // the store's epoch
	seq    uint64     // the position of the newest event published
	obs    Observer   // GroupOptions.Observer
	mode   Conflation // GroupOptions.Conflation
	arena  frameArena // Publish's frames
	idBuf  []byte     // Publish's scratch for the id it gives an event
}

// GroupOptions configures NewGroup. A nil *GroupOptions means no replay.
type GroupOptions struct {
	// Replay is how many of the latest published events an in-memory ring
	// keeps for Resume. Default 0: none (Resume then reports ErrReplayGap for
	// any id).
	Replay int
	// ReplayBytes bounds the ring in bytes as well: it keeps the latest
	// events whose encoded frames fit in it. Default DefaultReplayBytes.
	ReplayBytes int
	// Store, when set, keeps events instead of the in-memory ring (Replay
	// and ReplayBytes are then ignored): back it with a database to resume
	// across restarts. NewBusGroup ignores it: the bus keeps the history.
	Store ReplayStore
	// PublishTimeout bounds Publish on a bus (NewBusGroup): it returns the
	// bus's error, or a context deadline error, once this has passed.
	// Default DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Observer, when set, hears of every Publish (Observer.Published).
	// Replays are told to the resuming stream's endpoint's Observer.
	// Default nil.
	Observer Observer
	// Conflation is how the members' queues conflate the group's keyed
	// events (see Conflation). Default ConflateDefault: as each member's
	// endpoint says (Options.Conflation). An unknown value is the default.
	Conflation Conflation
}

// NewGroup returns a Group that keeps published events for Resume as opts
// says.
func NewGroup(opts *GroupOptions) *Group {
	g := &Group{}
	if opts != nil {
		g.obs = opts.Observer
		if opts.Conflation <= ConflateAlways {
			g.mode = opts.Conflation
		}
		switch {
		case opts.Store != nil:
			g.store = opts.Store
		case opts.Replay > 0:
			g.store = NewReplayRing(opts.Replay, opts.ReplayBytes)
		}
	}
	if g.store != nil {
		g.epoch, g.seq = g.store.Position()
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
	if g.members.has(c) {
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
	g.members.add(c)
	return nil
}

// Resume joins c to the group after queueing for it every stored event
// published after lastEventID, in order, in one step with joining: c gets
// each event once, with no gap and no duplicate at the seam between replay
// and live events, however Publish races it. Call it from Init with Init's
// lastEventID.
//
// The replay is read from the store and written a page (64 KiB, or one
// larger event) at a time, as the client takes it: a client that does not
// read holds one page, however much it missed. Live events wait behind the
// replay in c's queue, bounded by Options.QueueSize as ever. Should the
// store drop events before c has had them (a ring overtaken by publishing
// while c reads slowly), c gets a GapEvent whose data is the id of the last
// event it got, and goes on from its join position.
//
// An empty lastEventID just joins. When the store does not hold everything
// after lastEventID (unknown, of another epoch, or older than what the
// store keeps), c joins with nothing replayed, Resume queues a GapEvent for
// it (before any live event) and returns ErrReplayGap: the client may have
// missed events. Resume returns ErrClosed, not joining c, if c's stream has
// ended. For a member, Resume is Join: it replays nothing. Should c's queue
// be full (Resume is meant for Init, before anything can fill it), Resume
// returns ErrQueueFull and c stays joined without the replay.
//
// On a bus (NewBusGroup), what the ring no longer holds is read from the
// bus's history, shared among the connections that resume at once; if the
// history no longer holds lastEventID either, Resume has returned nil and
// the GapEvent comes in the stream, before any live event.
func (g *Group) Resume(c *Conn, lastEventID string) error {
	res, events, err := g.resume(c, lastEventID)
	if c != nil && !errors.Is(err, ErrClosed) {
		c.replayed(res, events)
	}
	return err
}

// resume is Resume, and says what it made of lastEventID: the events it
// queued for replay (a replay from a bus's history that turns out to be
// gone reports its gap in the stream, not here).
func (g *Group) resume(c *Conn, lastEventID string) (ReplayResult, int, error) {
	if g.bus != nil {
		g.awaitPosition(lastEventID)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.members.has(c) || lastEventID == "" {
		// A member already has every event since it joined: replaying
		// would duplicate them.
		return ReplayNone, 0, g.joinLocked(c)
	}
	if err := g.joinLocked(c); err != nil {
		return ReplayNone, 0, err
	}
	epoch, after, ok := parseID(lastEventID)
	if g.store == nil || !ok || epoch != g.epoch || after > g.seq {
		return ReplayGap, 0, g.gapLocked(c, lastEventID)
	}
	held := g.store.Read(after, func(uint64, *Frame) bool { return false })
	if !held && g.bus == nil {
		return ReplayGap, 0, g.gapLocked(c, lastEventID)
	}
	if after == g.seq {
		return ReplayHit, 0, nil
	}
	events := int(g.seq - after)
	if !held {
		// Older than the ring: the cursor reads the bus's history, on a
		// goroutine of the history's, never under g.mu. Whether the
		// history still holds after is known only then: if not, the
		// client gets the GapEvent from the cursor.
		return ReplayHit, events, c.pushReplay(item{kind: kindReplay, replay: &replayCursor{
			store: g.store, epoch: g.epoch, pos: after, seam: g.seq, hist: g.bus.hist, conn: c,
		}})
	}
	// The replay goes into the queue as one item, a cursor, so the queue's
	// bound does not cut it; c's turns write it a page at a time, as the
	// client takes it, reading the store without g's lock. Live events
	// published from now on queue behind it: the seam is g.seq.
	return ReplayHit, events, c.pushReplay(item{kind: kindReplay, replay: &replayCursor{store: g.store, epoch: g.epoch, pos: after, seam: g.seq}})
}

// gapLocked queues the GapEvent for c and returns ErrReplayGap. g.mu must
// be held.
func (g *Group) gapLocked(c *Conn, lastEventID string) error {
	id := ""
	if g.store != nil {
		id = formatID(g.epoch, g.seq)
	}
	if err := c.pushReplay(item{kind: kindFrame, frame: gapFrame(id, lastEventID)}); err != nil {
		return errors.Join(ErrReplayGap, err)
	}
	return ErrReplayGap
}

// Leave removes c from the group; a connection leaves by itself when its
// stream ends.
func (g *Group) Leave(c *Conn) {
	g.mu.Lock()
	g.members.remove(c)
	g.mu.Unlock()
}

// forget is g's end hook: c's stream has ended.
func (g *Group) forget(c *Conn) {
	g.mu.Lock()
	g.members.remove(c)
	delete(g.hooked, c)
	g.mu.Unlock()
}

// Len returns the number of members.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members.list)
}

// Notify sends msg to every member's HandleNotify, as Conn.Notify does. It
// never blocks on a member.
func (g *Group) Notify(msg any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.members.list {
		_ = c.Notify(msg)
	}
}

// Publish encodes ev once and queues the same immutable bytes for every
// member; the members' callbacks are not called. A group that keeps replay
// gives the event the next id of its sequence (see Group) and refuses one
// that has an id already (ErrIDSet); a group without replay sends ev.ID as
// it is. Publish returns the event's id, or an error, and then publishes
// nothing. It never blocks on a member.
func (g *Group) Publish(ev *Event) (id string, err error) {
	if err := ev.validate(); err != nil {
		return "", err
	}
	if g.store != nil && ev.ID != "" {
		return "", ErrIDSet
	}
	if g.bus != nil {
		return g.publishBus(ev) // delivered to the members by the bus
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.obs != nil {
		start := time.Now()
		defer func() { g.obs.Published(len(g.members.list), time.Since(start)) }()
	}
	id = ev.ID
	if g.store != nil {
		// The id is built in a scratch buffer for the encoder, and the id
		// returned is the frame's own copy of it (frames are immutable):
		// no allocation of its own.
		e := *ev
		g.idBuf = strconv.AppendUint(append(append(g.idBuf[:0], g.epoch...), '-'), g.seq+1, 10)
		e.ID = unsafe.String(unsafe.SliceData(g.idBuf), len(g.idBuf))
		if err := e.validate(); err != nil { // an epoch of a store's with a line break
			return "", err
		}
		f := g.arena.frame(&e)
		id = frameID(f, len(g.idBuf))
		g.seq++
		g.store.Add(g.seq, f)
		g.pushAll(f)
		return id, nil
	}
	g.pushAll(g.arena.frame(ev))
	return id, nil
}

// frameID returns, as a string sharing the frame's bytes, the value of the
// id field, n bytes long, of a frame encoded by appendTo: after the comment
// lines, which all begin with ':'.
func frameID(f *Frame, n int) string {
	b := f.b
	for len(b) > 0 && b[0] == ':' {
		i := bytes.IndexByte(b, '\n')
		b = b[i+1:]
	}
	b = b[len("id: "):][:n]
	return unsafe.String(unsafe.SliceData(b), n)
}

// pushAll queues f for every member. g.mu must be held.
func (g *Group) pushAll(f *Frame) {
	for _, c := range g.members.list {
		_ = c.push(item{kind: kindFrame, mode: g.mode, frame: f})
	}
}

// memberSet is a group's members: a slice that Publish and Notify go
// through in order (cheaper than a map's iteration: BenchmarkGroupEnqueue)
// and each member's index in it, so that a member leaves in O(1).
type memberSet struct {
	list []*Conn
	at   map[*Conn]int
}

func (m *memberSet) has(c *Conn) bool {
	_, ok := m.at[c]
	return ok
}

func (m *memberSet) add(c *Conn) {
	if m.at == nil {
		m.at = make(map[*Conn]int)
	}
	m.at[c] = len(m.list)
	m.list = append(m.list, c)
}

// remove takes c out, moving the last member into its place.
func (m *memberSet) remove(c *Conn) {
	i, ok := m.at[c]
	if !ok {
		return
	}
	last := len(m.list) - 1
	if i != last {
		m.list[i] = m.list[last]
		m.at[m.list[i]] = i
	}
	m.list[last] = nil
	m.list = m.list[:last]
	delete(m.at, c)
}
