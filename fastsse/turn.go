package fastsse

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"
)

// errPeerClosed is the error for a client seen to leave without a write
// failing (by epoll, a socket peek or a request context).
var errPeerClosed = errors.New("peer closed the connection")

// heartbeat is the comment frame written to a silent stream.
var heartbeat = []byte(": \n\n")

// turner is a stream's turn as a transport drives it; *turn[S] is the one
// implementation, and the interface only hides S from the transports.
type turner interface {
	// serve drives the turn on a goroutine of the stream's own: begin,
	// then next whenever wake fires, until the stream ends or gone closes.
	serve(wake, gone <-chan struct{})
	// begin writes the first batch: the retry field if set, then the
	// initial events.
	begin() error
	// next handles what is queued and writes it as one batch. It returns
	// the reason to end the stream, or nil.
	next() error
	// fail reports a write that failed outside a batch (the rest of an
	// earlier one) to HandleError, with the zero Event, and returns the
	// reason to end the stream.
	fail(err error) error
	// close ends the stream with reason: the transport finishes the
	// connection, then Terminate and the end hooks run.
	close(reason error)
}

// turn is one open stream's state, and the one sequence every transport
// runs for it: begin, next for each wake-up, close. Every method runs on
// whatever goroutine the transport gives the turn, one at a time.
type turn[S any] struct {
	h       Handler[S]
	core    *core
	conn    *Conn
	out     transport
	state   S
	initial []Event
	last    Event // the last event put in the current batch
	sent    int64 // events in the current batch
	opened  bool  // registered with the core
	// flow is the stream's limits and loss signal at work; nil until the
	// stream has limits or a loss, so that an idle stream does not pay
	// for them.
	flow *turnFlow
}

// turnFlow is what a turn keeps for the limits and the loss signal.
type turnFlow struct {
	pace   pacer  // the stream's Limits at work
	lost   losses // what the next LossEvent counts
	lossAt int64  // core clock of the last LossEvent; 0: none yet
	wakeAt int64  // core clock the timer is set for; 0: not set
	// capDropped counts the frames the batch dropped over a cap, told to
	// the Conn once per batch.
	capDropped int64
	// timer wakes a stream once its held frames may go, or a LossEvent
	// that had to wait; made the first time it is needed.
	timer *time.Timer
}

// init runs Init, recovering a panic.
func (t *turn[S]) init(lastID string, req *Request) (res InitResult[S], perr error) {
	defer func() {
		if r := recover(); r != nil {
			perr = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return t.h.Init(t.core.opts.InitArgs, lastID, req), nil
}

// serve is the turn's driver on the transports that give every stream a
// goroutine (stream, net/http): it waits for work on wake and runs next,
// until next ends the stream or gone is closed (the client left).
func (t *turn[S]) serve(wake, gone <-chan struct{}) {
	reason := t.begin()
	for reason == nil {
		select {
		case <-wake:
		case <-gone:
			reason = fmt.Errorf("%w: %w", ErrClientGone, errPeerClosed)
			continue
		}
		// Let others run before taking the queue. A Publish to many
		// members wakes each stream as it queues the event; without this
		// the woken stream runs at once and writes that one event alone,
		// and the publisher, queued behind thousands of such writes,
		// falls behind. Yielding lets the publisher get ahead, so that a
		// stream finds several events and writes them at once.
		runtime.Gosched()
		reason = t.next()
	}
	t.close(reason)
}

func (t *turn[S]) begin() (reason error) {
	defer t.recover(&reason)
	bp := t.core.bufs.get()
	buf := (*bp)[:0]
	if r := t.core.opts.Retry; r > 0 {
		buf = appendRetry(buf, r)
	}
	for i := range t.initial {
		buf = t.appendSend(buf, &t.initial[i])
	}
	t.initial = nil
	if err := t.write(buf); err != nil {
		return err
	}
	*bp = buf // keep the grown buffer: the pool caps what it keeps
	t.core.bufs.put(bp)
	return nil
}

func (t *turn[S]) next() (reason error) {
	defer t.recover(&reason)
	c := t.conn
	q, lost, lim, ending := c.take()
	f := t.flow
	if f == nil && (lost != losses{} || lim.active()) {
		f = &turnFlow{}
		t.flow = f
	}
	if f != nil {
		f.lost.add(lost)
		if lim != f.pace.lim {
			f.pace.set(lim, t.core.now())
		}
	}
	if ending != nil {
		if q != nil {
			t.core.rings.put(q)
		}
		if ending == ErrShutdown || ending == ErrLifetime {
			return t.endWithHint(ending)
		}
		return ending
	}
	bp := t.core.bufs.get()
	buf := (*bp)[:0]
	stop, held := false, false
	var perr error
	if q != nil {
		if f != nil {
			f.pace.holdUntil = 0
		}
		buf, stop, perr = t.handle(q, buf)
		if f != nil && f.capDropped > 0 {
			c.turnLost(losses{dropped: f.capDropped})
			f.capDropped = 0
		}
		if stop || perr != nil {
			t.core.rings.put(q)
		} else {
			// What a replay left for the next turn, or what the limits
			// hold back, if anything.
			held = f != nil && f.pace.holdUntil != 0
			if held {
				t.conflateHeld(q)
			}
			c.requeue(q, held)
			if held {
				t.wakeBy(f.pace.holdUntil)
			}
		}
	}
	// The loss signal goes with the batch that ends a hold (a held queue
	// goes on conflating until then), and at most every lossEvery.
	if f != nil && f.lost != (losses{}) && perr == nil && !stop && !held {
		if now := t.core.now(); f.lossAt == 0 || now-f.lossAt >= int64(lossEvery) {
			buf = appendLoss(buf, f.lost.dropped, f.lost.conflated)
			f.lost, f.lossAt = losses{}, now
		} else {
			t.wakeBy(f.lossAt + int64(lossEvery))
		}
	}
	if perr == nil && c.hbDue.Swap(false) && len(buf) == 0 {
		if t.out.gone() {
			t.core.bufs.put(bp)
			return fmt.Errorf("%w: %w", ErrClientGone, errPeerClosed)
		}
		buf = append(buf, heartbeat...)
		t.core.stats.heartbeats.Add(1)
	}
	if len(buf) > 0 {
		if err := t.write(buf); err != nil {
			if perr != nil {
				return perr
			}
			return err
		}
	}
	*bp = buf // keep the grown buffer: the pool caps what it keeps
	t.core.bufs.put(bp)
	if perr != nil {
		return perr
	}
	if stop {
		return ErrStopped
	}
	return nil
}

// conflateHeld conflates the keyed frames of a queue that the limits hold
// back, as a push to it from now on will: frames queued before the hold
// was known were not.
func (t *turn[S]) conflateHeld(q *ring) {
	if n := int64(q.conflateAll()); n > 0 {
		t.flow.lost.conflated += n
		t.conn.turnLost(losses{conflated: n})
	}
}

// wakeBy has the pace timer wake the stream by the core clock at, unless it
// is set to wake it sooner already: held frames may go then, or a LossEvent
// that had to wait.
func (t *turn[S]) wakeBy(at int64) {
	f, now := t.flow, t.core.now()
	if f.wakeAt > now && f.wakeAt <= at {
		return
	}
	f.wakeAt = at
	d := time.Duration(at - now)
	if f.timer == nil {
		f.timer = time.AfterFunc(d, t.conn.unhold)
		return
	}
	f.timer.Reset(d)
}

// recover turns a panic in the turn into the reason to end the stream.
// Deferred by begin and next.
func (t *turn[S]) recover(reason *error) {
	if r := recover(); r != nil {
		*reason = &PanicError{Value: r, Stack: debug.Stack()}
	}
}

// handle runs the callbacks for the queued messages in order, appending
// their events to buf, until the queue is empty or a callback answers Stop.
// A panic in a callback stops it as well: it returns the batch so far (the
// events of the callbacks before the one that panicked) with the panic, so
// that the batch is written, as Stop's is, and what a client gets before a
// panic does not depend on how its messages happened to be batched.
func (t *turn[S]) handle(q *ring, buf []byte) (out []byte, stop bool, perr error) {
	out = buf
	defer t.recover(&perr)
	for q.n > 0 && !stop {
		it := q.pop()
		switch it.kind {
		case kindFrame:
			if f := t.flow; f != nil && f.pace.lim.active() {
				switch f.pace.admit(it.frame, t.core.now()) {
				case hold:
					q.pushFront(it)
					return out, false, nil // the rest waits for the pace timer
				case drop:
					f.lost.dropped++
					f.capDropped++
					continue
				}
			}
			out = append(out, it.frame.b...)
			t.sent++
		case kindReplay:
			var n int
			var again bool
			out, n, again = replayTurn(q, it, out)
			t.sent += int64(n)
			if again {
				return out, false, nil // the rest after this batch is written
			}
		case kindNotify:
			r := t.h.HandleNotify(it.msg, t.state)
			out, stop = t.apply(out, &r)
		case kindInfo:
			r := t.h.HandleInfo(it.msg, t.state)
			out, stop = t.apply(out, &r)
		}
	}
	return out, stop, nil
}

// endWithHint writes the retry hint that ends a stream the server ends
// itself, and returns reason (or the write's error).
func (t *turn[S]) endWithHint(reason error) error {
	bp := t.core.bufs.get()
	buf := appendRetry((*bp)[:0], t.core.endRetry())
	if err := t.write(buf); err != nil {
		return err
	}
	t.core.bufs.put(bp)
	return reason
}

// appendRetry appends a frame that only sets the client's reconnection
// delay: browsers apply the retry field and dispatch nothing.
func appendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, "\n\n"...)
}

// apply takes a callback's result: the new state, and the event to send.
func (t *turn[S]) apply(buf []byte, r *Result[S]) ([]byte, bool) {
	t.state = r.state
	switch r.op {
	case opSend:
		buf = t.appendSend(buf, &r.ev)
	case opStop:
		return buf, true
	}
	return buf, false
}

// appendSend encodes ev into the batch; an invalid event goes to HandleError
// and nothing of it is written.
func (t *turn[S]) appendSend(buf []byte, ev *Event) []byte {
	nb, err := AppendEvent(buf, ev)
	if err != nil {
		t.state = t.h.HandleError(*ev, err, t.state)
		return buf
	}
	t.last = *ev
	t.sent++
	return nb
}

// write sends one batch and counts it; on failure it calls HandleError and
// returns the reason to end the stream.
func (t *turn[S]) write(buf []byte) error {
	if err := t.out.send(buf); err != nil {
		t.state = t.h.HandleError(t.last, err, t.state)
		// A slow consumer's connection is closed to unblock its write;
		// that write then fails, but the stream ends as what it is.
		if ending := t.conn.endingReason(); ending == ErrSlowConsumer {
			return ending
		}
		return writeReason(err)
	}
	now := t.core.now()
	t.conn.lastOut.Store(now)
	if t.flow != nil {
		t.flow.pace.written(now)
	}
	t.core.countOut(t.conn.id, t.sent, len(buf))
	t.sent = 0
	t.last = Event{}
	return nil
}

func (t *turn[S]) fail(err error) error {
	t.state = t.h.HandleError(Event{}, err, t.state)
	return writeReason(err)
}

// close finishes the connection and ends the stream.
func (t *turn[S]) close(reason error) {
	clean := !errors.Is(reason, ErrClientGone) && !errors.Is(reason, ErrWriteFailed) && !errors.Is(reason, ErrSlowConsumer)
	t.out.finish(clean)
	t.end(reason)
}

// end ends the stream with reason: no more messages, Terminate, end hooks.
func (t *turn[S]) end(reason error) {
	if !t.conn.markEnded(reason) {
		return
	}
	if t.flow != nil && t.flow.timer != nil {
		t.flow.timer.Stop()
	}
	if t.opened {
		t.core.unregister(t.conn)
	}
	t.terminate(reason)
	t.conn.finish()
	t.core.stats.ends[endClass(reason)].Add(1)
	if o := t.core.opts.Observer; o != nil && t.opened {
		o.StreamEnded(t.conn.info(), reason, time.Duration(t.core.now()-t.conn.openedAt))
	}
}

// endWithoutState ends a stream whose Init panicked: there is no state
// to give Terminate.
func (t *turn[S]) endWithoutState(perr error) {
	if t.conn.markEnded(perr) {
		t.conn.finish()
		t.core.stats.ends[endClass(perr)].Add(1)
	}
}

func (t *turn[S]) terminate(reason error) {
	defer func() { _ = recover() }() // a panic in Terminate has nowhere else to go
	t.h.Terminate(reason, t.state)
}

// writeReason sorts a write error into ErrClientGone or ErrWriteFailed. A
// write to a connection of fasthttputil's (its in-memory listener) sees
// fasthttputil.ErrConnectionClosed once the peer closed it, and one through
// the stream body's Read pipe (a path fasthttp does not take today)
// io.ErrClosedPipe.
func writeReason(err error) error {
	if errors.Is(err, errPeerClosed) || errors.Is(err, fasthttputil.ErrConnectionClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	return fmt.Errorf("%w: %w", ErrWriteFailed, err)
}
