package fastsse

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync/atomic"
	"time"
)

// Bus carries a group's events between instances (processes, machines)
// and keeps their history, so that every instance delivers every event to
// its own members, in one order, with one id, and a client resumes on any
// instance. A message bus with persistence implements it; package
// github.com/lasse-go/lasse/fastsse/natsbus is one on NATS JetStream.
//
// Positions are the bus's own, increasing along its order and the same on
// every instance (a stream sequence, say); they need not be consecutive.
// The methods are called from any goroutine, concurrently.
type Bus interface {
	// Epoch names the bus's sequence: the same on every instance, and
	// different for another bus or one whose history was recreated. It
	// must not contain CR, LF or NUL; keep it short (it is in every id).
	Epoch() string
	// Publish stores payload after every message before it and returns
	// its position. A retry with the same msgID within the bus's
	// duplicate window must return the first one's position and store
	// nothing more. It returns an error when ctx ends first.
	Publish(ctx context.Context, msgID string, payload []byte) (seq uint64, err error)
	// Last returns the position of the newest message (0: none).
	Last(ctx context.Context) (uint64, error)
	// Subscribe calls deliver with every message after position after, in
	// order, from one goroutine at a time, until stop is called; stop
	// returns once deliver is no longer running. It recovers from the
	// bus's faults by itself (reconnecting, and reading from history what
	// it missed), so deliver sees each position once, in order. What it
	// cannot recover (history dropped by retention meanwhile) it reports as
	// deliver(seq, nil): everything up to seq is lost, and the Group tells
	// its members with a GapEvent. deliver must not retain payload.
	Subscribe(after uint64, deliver func(seq uint64, payload []byte)) (stop func(), err error)
	// Read calls fn with the messages after position after, oldest first,
	// up to position to, until fn returns false. It reports whether the
	// bus still held every message after position after: false when the
	// first was gone already (fn not called) or went while Read ran (fn
	// called with those before). fn must not retain payload.
	Read(ctx context.Context, after, to uint64, fn func(seq uint64, payload []byte) bool) (held bool, err error)
}

// DefaultPublishTimeout bounds Group.Publish on a bus when GroupOptions
// leaves PublishTimeout at 0.
const DefaultPublishTimeout = 5 * time.Second

// ErrBusClosed is returned by Publish on a Group whose bus subscription was
// stopped by Close.
var ErrBusClosed = errors.New("fastsse: group's bus closed")

// busState is a Group's part on a bus.
type busState struct {
	bus     Bus
	timeout time.Duration
	stop    func()
	closed  atomic.Bool
	msgPfx  string // this Group's prefix of message ids, for the bus's dedupe
	msgN    atomic.Uint64
	hist    *history    // shared history reads for Resume
	obs     BusObserver // GroupOptions.Observer, when it is one
}

// NewBusGroup returns a Group whose events go through b: Publish stores the
// event on the bus, and the Group delivers every event of the bus, its own
// and other instances', to its members. Ids are b's epoch and the event's
// position on the bus (see Group): the same on every instance. The
// in-memory ring (opts.Replay and ReplayBytes; opts.Store is ignored) keeps
// the latest events for Resume; older ones Resume reads from the bus's
// history, outside any lock. Notify and Join stay local: they reach this
// instance's members. Call Close when done with the Group.
func NewBusGroup(ctx context.Context, b Bus, opts *GroupOptions) (*Group, error) {
	if b == nil {
		return nil, errors.New("fastsse: NewBusGroup: nil bus")
	}
	var o GroupOptions
	if opts != nil {
		o = *opts
	}
	last, err := b.Last(ctx)
	if err != nil {
		return nil, err
	}
	ring := NewReplayRing(max(o.Replay, 1), o.ReplayBytes)
	ring.epoch, ring.floor, ring.last = b.Epoch(), last, last
	g := &Group{store: ring, epoch: ring.epoch, seq: last, obs: o.Observer}
	if o.Conflation <= ConflateAlways {
		g.mode = o.Conflation
	}
	bs := &busState{bus: b, timeout: o.PublishTimeout, msgPfx: newEpoch()}
	bs.obs, _ = o.Observer.(BusObserver)
	if bs.timeout <= 0 {
		bs.timeout = DefaultPublishTimeout
	}
	bs.hist = newHistory(b)
	g.bus = bs
	stop, err := b.Subscribe(last, g.deliver)
	if err != nil {
		return nil, err
	}
	bs.stop = stop
	return g, nil
}

// Close stops a bus group's subscription: its members get no more events,
// and Publish returns ErrBusClosed. It is a no-op for other groups.
func (g *Group) Close() error {
	if g.bus == nil || g.bus.closed.Swap(true) {
		return nil
	}
	g.bus.stop()
	g.bus.hist.close()
	return nil
}

// publishBus is Publish on a bus: the event, without its id, goes to the
// bus encoded once for the cluster; every instance adds the id line when
// the bus delivers it. The payload is the time of publishing (busStamp)
// and that frame.
func (g *Group) publishBus(ev *Event) (string, error) {
	bs := g.bus
	if bs.closed.Load() {
		return "", ErrBusClosed
	}
	payload := busPayload(time.Now(), ev)
	msgID := bs.msgPfx + "-" + strconv.FormatUint(bs.msgN.Add(1), 10)
	ctx, cancel := context.WithTimeout(context.Background(), bs.timeout)
	defer cancel()
	seq, err := bs.bus.Publish(ctx, msgID, payload)
	if err != nil {
		return "", err
	}
	return formatID(g.epoch, seq), nil
}

// deliver is a bus group's subscription: it frames the event with its id
// and queues it for every member, as Publish does for a group of one
// process. A nil payload (the bus lost what came up to seq) is told to the
// members as a GapEvent, and the ring starts over from seq.
func (g *Group) deliver(seq uint64, payload []byte) {
	if payload == nil {
		g.busGap(seq)
		return
	}
	f := busFrame(g.epoch, seq, payload)
	g.mu.Lock()
	defer g.mu.Unlock()
	if seq <= g.seq {
		return // delivered already
	}
	if o := g.bus.obs; o != nil {
		if at, ok := busStamp(payload); ok {
			o.BusDelivered(time.Since(at))
		}
	}
	if g.obs != nil {
		start := time.Now()
		defer func() { g.obs.Published(len(g.members.list), time.Since(start)) }()
	}
	g.seq = seq
	g.store.Add(seq, f)
	for _, c := range g.members.list {
		_ = c.push(item{kind: kindFrame, mode: g.mode, frame: f})
	}
}

// awaitPosition waits, up to the publish timeout, until the group has
// delivered the event lastEventID names: a client may come from an
// instance that got it before this one did. An id this instance never
// reaches in that time is a gap, as one ahead of the group's position is.
func (g *Group) awaitPosition(lastEventID string) {
	epoch, after, ok := parseID(lastEventID)
	if !ok || epoch != g.epoch {
		return
	}
	deadline := time.Now().Add(g.bus.timeout)
	for {
		g.mu.Lock()
		seq := g.seq
		g.mu.Unlock()
		if seq >= after || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// busFrame frames a bus message: its id line, then the payload, the event
// encoded without its id.
func busFrame(epoch string, seq uint64, payload []byte) *Frame {
	key, payload := busUnwrap(payload)
	id := formatID(epoch, seq)
	b := make([]byte, 0, len("id: \n")+len(id)+len(payload))
	b = append(append(append(b, "id: "...), id...), '\n')
	return &Frame{b: append(b, payload...), key: key}
}

func (g *Group) busGap(seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if seq <= g.seq {
		return
	}
	if o := g.bus.obs; o != nil {
		o.BusGap()
	}
	f := gapFrame(formatID(g.epoch, seq), formatID(g.epoch, g.seq))
	g.seq = seq
	if r, ok := g.store.(*ReplayRing); ok {
		r.restart(seq)
	}
	for _, c := range g.members.list {
		_ = c.push(item{kind: kindFrame, frame: f})
	}
}

// A bus payload is busStampLen bytes of stamp, then the event's frame
// without its id line. The stamp is "T" and the publishing time in Unix
// nanoseconds, 8 bytes big-endian: the delivering instance measures the
// bus's lag with it. A keyed event's stamp starts with "K" instead, and is
// followed by the key's length (a uvarint) and the key. A payload without
// a stamp (written by something else) is taken as a frame.
const busStampLen = 9

func busPayload(at time.Time, ev *Event) []byte {
	f := ev.frame().b
	b := make([]byte, busStampLen, busStampLen+binary.MaxVarintLen64+len(ev.Key)+len(f))
	b[0] = 'T'
	binary.BigEndian.PutUint64(b[1:], uint64(at.UnixNano()))
	if ev.Key != "" {
		b[0] = 'K'
		b = append(binary.AppendUvarint(b, uint64(len(ev.Key))), ev.Key...)
	}
	return append(b, f...)
}

// busStamp returns the publishing time a payload carries.
func busStamp(payload []byte) (time.Time, bool) {
	if len(payload) < busStampLen || payload[0] != 'T' && payload[0] != 'K' {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(payload[1:busStampLen]))), true
}

// busUnwrap returns the key and the frame a payload carries. A keyed
// payload whose key does not fit in it is taken as a frame, whole.
func busUnwrap(payload []byte) (key string, frame []byte) {
	if _, ok := busStamp(payload); !ok {
		return "", payload
	}
	rest := payload[busStampLen:]
	if payload[0] == 'T' {
		return "", rest
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)-w) {
		return "", payload
	}
	return string(rest[w : w+int(n)]), rest[w+int(n):]
}
