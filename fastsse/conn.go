package fastsse

import (
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one event stream's handle, lasse's Pid. It is safe to keep and to
// use from any goroutine, also after the stream ended (then its methods
// return ErrClosed). Its messages reach the Handler's callbacks on the
// stream's own goroutine, in the order they were sent from one goroutine.
type Conn struct {
	core *core
	id   uint64
	// t is the stream's transport, set before the Conn is handed out.
	// Outside the stream's turn it is touched only under mu while the
	// stream is open (evict, bound) or through its goroutine-safe methods.
	t transport

	mu     sync.Mutex
	q      *ring // pending messages; nil while none
	ending error // set once: the reason the stream must end (ErrStopped, ErrSlowConsumer)
	ended  bool  // the stream has ended: no more messages
	// held: the turn holds the queue back for lim, and pushes do not wake
	// it. Beside q, which every push reads: a push to many members reads
	// one cache line of each.
	held    bool
	reason  error // why it ended, once ended
	onEnd   []func(*Conn)
	done    chan struct{}
	hbDue   atomic.Bool  // the heartbeat wheel asks for a heartbeat
	lastOut atomic.Int64 // core clock at the last write, for heartbeats
	endAt   int64        // core clock when MaxLifetime ends the stream; 0: never. Set by register.
	// openedAt is the core clock when the stream opened. Set by register.
	openedAt int64
	// shut is the server's shutdown signal (fasthttp's ctx.Done), nil when
	// it has none. Set before register.
	shut <-chan struct{}

	// flow is the stream's limits and loss counts, under mu; nil until it
	// has limits or a loss, so that an idle stream does not pay for them.
	flow *connFlow
}

// connFlow is what a Conn keeps for the limits and the loss signal.
type connFlow struct {
	lim Limits // what the stream is sent at most (Options.Limits, SetLimits)
	// lost counts what was dropped or conflated away since the stream's
	// last LossEvent; the turn takes the counts with the queue.
	lost  losses
	total losses // since the stream opened, for Losses
}

type losses struct{ dropped, conflated int64 }

func (l *losses) add(o losses) {
	l.dropped += o.dropped
	l.conflated += o.conflated
}

func newConn(c *core) *Conn {
	conn := &Conn{core: c, id: c.nextID.Add(1), done: make(chan struct{})}
	if c.opts.Limits.active() {
		conn.flow = &connFlow{lim: c.opts.Limits}
	}
	return conn
}

// flowLocked returns c.flow, made if need be. c.mu must be held.
func (c *Conn) flowLocked() *connFlow {
	if c.flow == nil {
		c.flow = &connFlow{}
	}
	return c.flow
}

// lostLocked counts l as lost for the stream: for its next LossEvent when
// signal says so (the turn counts what it drops itself), and in the totals.
// c.mu must be held.
func (c *Conn) lostLocked(l losses, signal bool) {
	f := c.flowLocked()
	if signal {
		f.lost.add(l)
	}
	f.total.add(l)
	c.core.stats.dropped.Add(l.dropped)
	c.core.stats.conflated.Add(l.conflated)
}

// Notify sends msg to HandleNotify (lasse_handler:notify/2). It never
// blocks. When the queue is full the endpoint's OverflowPolicy applies: it
// returns nil (OverflowDropOldest, an older message was dropped),
// ErrQueueFull (OverflowDropNewest) or ErrSlowConsumer (OverflowClose). After
// the stream ended, or once it is ending, it returns ErrClosed.
func (c *Conn) Notify(msg any) error {
	return c.push(item{kind: kindNotify, msg: msg})
}

// Info sends msg to HandleInfo (lasse's out-of-band Pid ! Msg). It behaves
// as Notify otherwise.
func (c *Conn) Info(msg any) error {
	return c.push(item{kind: kindInfo, msg: msg})
}

// SendFrame queues a pre-encoded frame to be written as it is, without a
// callback, as Group.Publish does for every member: encode once with
// NewFrame, send to as many connections as you like. It behaves as Notify
// otherwise. A nil f is ErrDataRequired.
func (c *Conn) SendFrame(f *Frame) error {
	if f == nil {
		return ErrDataRequired
	}
	return c.push(item{kind: kindFrame, frame: f})
}

// SendAfter sends msg to HandleInfo after d (erlang:send_after/3). Stop the
// returned timer to cancel it. A message that fires after the stream ended
// is dropped.
func (c *Conn) SendAfter(d time.Duration, msg any) *time.Timer {
	return time.AfterFunc(d, func() { _ = c.Info(msg) })
}

// Close ends the stream: messages still waiting are dropped, the final chunk
// is written, and Terminate gets ErrStopped. It does not wait; use Done for
// that. It returns ErrClosed when the stream has already ended or is ending.
func (c *Conn) Close() error {
	if !c.endSoon(ErrStopped) {
		return ErrClosed
	}
	return nil
}

// endSoon asks the stream's goroutine to end with reason; it returns false
// if the stream has ended or is ending already.
func (c *Conn) endSoon(reason error) bool {
	c.mu.Lock()
	if c.ended || c.ending != nil {
		c.mu.Unlock()
		return false
	}
	c.ending = reason
	c.mu.Unlock()
	c.wake()
	return true
}

// Done returns a channel closed once the stream has ended and Terminate
// has returned.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns the reason the stream ended (the one Terminate got), or nil
// while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

func (c *Conn) wake() { c.t.wake() }

func (c *Conn) push(it item) error {
	c.mu.Lock()
	q, err := c.queueLocked()
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if it.kind == kindFrame && it.frame.key != "" {
		mode := c.conflateMode(&it)
		it.conflates = mode > ConflateOff
		if it.conflates && c.conflateLocked(q, &it, mode) {
			c.mu.Unlock()
			return nil // the stream is woken already for what it replaced
		}
	}
	if q.full() {
		switch c.core.opts.Overflow {
		case OverflowDropOldest:
			q.pop()
			q.push(it)
			c.lostLocked(losses{dropped: 1}, true)
			held := c.held
			c.mu.Unlock()
			c.overflowed(OverflowDropOldest)
			if !held {
				c.wake()
			}
			return nil
		case OverflowDropNewest:
			c.lostLocked(losses{dropped: 1}, true)
			c.mu.Unlock()
			c.overflowed(OverflowDropNewest)
			return ErrQueueFull
		default:
			c.endSlowLocked()
			c.mu.Unlock()
			c.overflowed(OverflowClose)
			c.wake()
			return ErrSlowConsumer
		}
	}
	q.push(it)
	held := c.held
	c.mu.Unlock()
	if !held {
		c.wake()
	}
	return nil
}

// conflateLocked replaces q's pending frame of it's key with it, in place,
// if mode (it's, from conflateMode) says so now, and reports whether it
// did. it is a conflatable frame. c.mu must be held.
func (c *Conn) conflateLocked(q *ring, it *item, mode Conflation) bool {
	switch mode {
	case ConflateAlways:
	case ConflateBackpressure:
		if !q.full() && !c.held {
			return false
		}
	default:
		return false
	}
	slot, ok := q.find(it.frame.key)
	if !ok {
		return false
	}
	q.buf[slot] = *it
	c.lostLocked(losses{conflated: 1}, true)
	return true
}

// conflateMode is how a push of it conflates: as its publisher asked, or
// the endpoint says, and as the stream's limits need. c.mu must be held.
func (c *Conn) conflateMode(it *item) Conflation {
	m := it.mode
	if m == ConflateDefault {
		m = c.core.opts.Conflation
	}
	if c.flow == nil {
		return m
	}
	switch lim := &c.flow.lim; {
	case lim.KeyInterval > 0:
		return ConflateAlways
	case m <= ConflateOff && (lim.Events > 0 || lim.Bytes > 0):
		return ConflateBackpressure // what a cap holds back is conflated
	}
	return m
}

// turnLost counts what the stream's turn lost itself (its LossEvent counts
// it already).
func (c *Conn) turnLost(l losses) {
	c.mu.Lock()
	c.lostLocked(l, false)
	c.mu.Unlock()
}

// Losses returns how many messages meant for the stream were dropped (by
// OverflowDropOldest, OverflowDropNewest or a Limits cap) and how many
// frames were conflated away, since it opened. Its client learns of each
// loss with a LossEvent.
func (c *Conn) Losses() (dropped, conflated int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flow == nil {
		return 0, 0
	}
	return c.flow.total.dropped, c.flow.total.conflated
}

// SetLimits caps what the stream is sent from now on (see Limits), in place
// of Options.Limits: call it from Init (req.Conn()), or at any time. It
// returns ErrInvalidLimits for a negative field, and ErrClosed once the
// stream has ended.
func (c *Conn) SetLimits(l Limits) error {
	if l.KeyInterval < 0 || l.Events < 0 || l.Bytes < 0 {
		return ErrInvalidLimits
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return ErrClosed
	}
	c.flowLocked().lim = l
	c.mu.Unlock()
	c.wake() // the turn takes them with its next batch
	return nil
}

// pushReplay queues a replay (or a gap event). No overflow policy applies to
// it: it is sent from Init (Group.Resume), before anything could fill the
// queue, so a full queue means a QueueSize too small to hold even that, and
// the caller gets ErrQueueFull.
func (c *Conn) pushReplay(it item) error {
	c.mu.Lock()
	q, err := c.queueLocked()
	if err == nil && q.full() {
		err = ErrQueueFull
	}
	if err == nil {
		q.push(it)
	}
	c.mu.Unlock()
	if err == nil {
		c.wake()
	}
	return err
}

// requeue gives back a taken queue that still holds items (a replay that
// goes on, and what was queued behind it): they go before anything queued
// since, and the stream is woken for another turn, unless the replay waits
// for a history read (which wakes it) or is held by the stream's limits
// (held: the pace timer wakes it). Frames queued since conflate with q's
// as a push would. An empty q goes back to the pool.
func (c *Conn) requeue(q *ring, held bool) {
	if q.n == 0 { // the common case: the stream's own ring, no lock needed
		c.core.rings.put(q)
		return
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		c.core.rings.put(q)
		return
	}
	c.held = held // before merging: frames that wait for the limits conflate
	if c.q != nil {
		for c.q.n > 0 {
			it := c.q.pop()
			if !it.conflates || !c.conflateLocked(q, &it, c.conflateMode(&it)) {
				q.push(it)
			}
		}
		c.core.rings.put(c.q)
	}
	c.q = q
	// A replay waiting for a history read is woken by the read; a queue
	// held back by the limits, by the pace timer.
	parked := held || q.buf[q.head].kind == kindReplay && q.buf[q.head].replay.parked()
	c.mu.Unlock()
	if !parked {
		c.wake()
	}
}

// unhold is the pace timer's: the held queue may go on.
func (c *Conn) unhold() {
	c.mu.Lock()
	c.held = false
	ended := c.ended
	c.mu.Unlock()
	if !ended {
		c.wake()
	}
}

// queueLocked returns the queue to add to, taking one from the pool if the
// connection has none, or ErrClosed once the stream has ended or is ending.
// c.mu must be held.
func (c *Conn) queueLocked() (*ring, error) {
	if c.ended || c.ending != nil {
		return nil, ErrClosed
	}
	if c.q == nil {
		c.q = c.core.rings.get()
	}
	return c.q, nil
}

// endSlow ends the stream as a slow consumer, as a full queue does under
// OverflowClose; it returns false if the stream has ended or is ending.
func (c *Conn) endSlow() bool {
	c.mu.Lock()
	if c.ended || c.ending != nil {
		c.mu.Unlock()
		return false
	}
	c.endSlowLocked()
	c.mu.Unlock()
	c.overflowed(OverflowClose)
	c.wake()
	return true
}

// overflowed tells the Observer of an overflow. c.mu must not be held.
func (c *Conn) overflowed(p OverflowPolicy) {
	if o := c.core.opts.Observer; o != nil {
		o.Overflowed(c.info(), p)
	}
}

// replayed counts a Group.Resume answer for the stream, and tells the
// Observer.
func (c *Conn) replayed(r ReplayResult, events int) {
	c.core.stats.replays[r].Add(1)
	c.core.stats.replayed.Add(int64(events))
	if o := c.core.opts.Observer; o != nil {
		o.Replayed(c.info(), r, events)
	}
}

// info names the stream to the Observer.
func (c *Conn) info() StreamInfo {
	return StreamInfo{ID: c.id, Transport: c.t.name(), Route: c.core.opts.Route}
}

// endSlowLocked marks the stream a slow consumer and unblocks its write
// stuck on a client that stopped reading. c.mu must be held: the
// transport is not touched once the stream has ended.
func (c *Conn) endSlowLocked() {
	c.ending = ErrSlowConsumer
	c.t.evict()
	c.core.stats.slow.Add(1)
}

// endingReason returns the reason the stream was asked to end, or nil.
func (c *Conn) endingReason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ending
}

// shutdownGrace is how long, once the server shuts down, a stream's last
// bytes may take to reach a client before its connection is given up.
const shutdownGrace = time.Second

// bound gives the stream's last writes a deadline (transport.bound), while
// it is open.
func (c *Conn) bound() {
	c.mu.Lock()
	if !c.ended {
		c.t.bound()
	}
	c.mu.Unlock()
}

// take hands the pending messages, the losses since the last LossEvent,
// the limits and the reason to end if one was set to the stream's
// goroutine.
func (c *Conn) take() (q *ring, lost losses, lim Limits, ending error) {
	c.mu.Lock()
	q, ending = c.q, c.ending
	if f := c.flow; f != nil {
		lost, lim = f.lost, f.lim
		f.lost = losses{}
	}
	c.q = nil
	c.held = false
	c.mu.Unlock()
	return q, lost, lim, ending
}

// markEnded refuses further messages and records the reason; it returns false
// if the stream had already ended.
func (c *Conn) markEnded(reason error) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return false
	}
	c.ended = true
	c.reason = reason
	q := c.q
	c.q = nil
	c.mu.Unlock()
	if q != nil {
		c.core.rings.put(q)
	}
	return true
}

// finish runs the end hooks (group leave) and closes Done. It runs after
// Terminate.
func (c *Conn) finish() {
	c.mu.Lock()
	hooks := c.onEnd
	c.onEnd = nil
	c.mu.Unlock()
	for _, f := range hooks {
		f(c)
	}
	close(c.done)
}

// addEndHook registers f to run when the stream ends; it returns false, not
// registering f, when the stream has already ended.
func (c *Conn) addEndHook(f func(*Conn)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.onEnd = append(c.onEnd, f)
	return true
}
