package fastsse

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// errPeerClosed is the error for a client seen to leave without a write
// failing: by epoll (dense), or by a peek before a heartbeat (stream).
var errPeerClosed = errors.New("peer closed the connection")

// heartbeat is the comment frame written to a silent stream.
var heartbeat = []byte(": \n\n")

type endpoint[S any] struct {
	h    Handler[S]
	core *core
}

// stream is one open connection's loop state, owned by its goroutine.
type stream[S any] struct {
	h       Handler[S]
	core    *core
	conn    *Conn
	state   S
	req     Request
	initial []Event
	done    <-chan struct{} // the server's shutdown signal, nil if it has none
	last    Event           // the last event put in the current batch
	sent    int64           // events in the current batch
	opened  bool            // registered with the core
}

func (e *endpoint[S]) serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		// ctx.Error resets the response headers: set Allow after it.
		ctx.Error("405 Method Not Allowed: an event stream is read with GET\n", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set("Allow", "GET")
		return
	}
	if e.core.draining.Load() {
		// Not 503: an EventSource that gets anything but 200
		// text/event-stream gives up for good. An empty stream with a retry
		// hint makes it come back later, to another instance.
		ctx.SetContentType("text/event-stream")
		ctx.Response.Header.Set("Cache-Control", "no-cache")
		ctx.SetBody(appendRetry(nil, e.core.endRetry()))
		return
	}
	var c *Conn
	var set *denseSet
	if e.core.opts.Transport == TransportDense {
		set, _ = e.core.denseAcquire() // nil on failure: stream transport
	}
	st := &stream[S]{h: e.h, core: e.core}
	if set != nil {
		c = newDenseConn(e.core)
		c.dn = set.newConn(c.id, st.denseStep)
	} else {
		c = newConn(e.core, ctx.Conn())
	}
	st.conn = c
	st.req = Request{ctx: ctx, conn: c}
	// fasthttp reuses the request's memory once the handler returns: copy.
	lastID := string(ctx.Request.Header.Peek("Last-Event-ID"))
	res, perr := st.init(lastID)
	st.req.ctx = nil
	if perr != nil {
		// Init panicked: there is no state to give Terminate.
		ctx.ResetBody()
		ctx.Error("500 Internal Server Error\n", fasthttp.StatusInternalServerError)
		c.markEnded(perr)
		c.finish()
		if set != nil {
			e.core.denseRelease(set)
		}
		return
	}
	st.state = res.state
	if res.op != opOpen {
		switch {
		case res.op == opNoContent:
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			st.end(ErrRefused)
		case res.status < 200 || res.status > 599:
			ctx.Error("500 Internal Server Error\n", fasthttp.StatusInternalServerError)
			st.end(fmt.Errorf("%w: Reply with invalid status %d", ErrRefused, res.status))
		default:
			ctx.SetStatusCode(res.status)
			ctx.SetBody(res.body)
			st.end(ErrRefused)
		}
		if set != nil {
			e.core.denseRelease(set)
		}
		return
	}
	hdr := &ctx.Response.Header
	hdr.SetContentType("text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	st.initial = res.initial
	if l := e.core.opts.MaxLifetime; l > 0 {
		c.endAt = e.core.now() + int64(l) - rand.Int64N(int64(l)/5+1)
	}
	if set != nil {
		serveDense(st, ctx)
		e.core.register(c)
		st.opened = true
		return
	}
	ctx.Response.ImmediateHeaderFlush = true
	// ctx.Done is closed only by Server.Shutdown, never when a client leaves;
	// the writer must not touch ctx, so take the channel now.
	st.done = ctx.Done()
	e.core.register(c)
	st.opened = true
	// fasthttp runs the writer on a goroutine of its own, with no recover.
	ctx.SetBodyStreamWriter(st.run)
}

func (st *stream[S]) init(lastID string) (res InitResult[S], perr error) {
	defer func() {
		if r := recover(); r != nil {
			perr = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return st.h.Init(st.core.opts.InitArgs, lastID, &st.req), nil
}

// run is the stream's body writer.
func (st *stream[S]) run(w *bufio.Writer) {
	st.end(st.loop(w))
}

// end ends the stream with reason: no more messages, Terminate, end hooks.
func (st *stream[S]) end(reason error) {
	if !st.conn.markEnded(reason) {
		return
	}
	if st.opened {
		st.core.unregister(st.conn)
	}
	st.terminate(reason)
	st.conn.finish()
}

func (st *stream[S]) terminate(reason error) {
	defer func() { _ = recover() }() // a panic in Terminate has nowhere else to go
	st.h.Terminate(reason, st.state)
}

// sink is the transport: how a batch reaches the client.
type sink interface {
	// send writes one batch, which may be empty, and flushes it.
	send(b []byte) error
}

// bufioSink is the stream transport's sink: fasthttp's body writer.
type bufioSink struct{ w *bufio.Writer }

func (s bufioSink) send(b []byte) error {
	if len(b) > 0 {
		if _, err := s.w.Write(b); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

// loop is the stream transport: the stream's goroutine waits for work and
// runs step, until step or the server's shutdown ends the stream.
func (st *stream[S]) loop(w *bufio.Writer) (reason error) {
	defer func() {
		if r := recover(); r != nil {
			reason = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	out := bufioSink{w}
	if err := st.start(out); err != nil {
		return err
	}
	for {
		select {
		case <-st.conn.wakeCh:
		case <-st.done:
			st.conn.shutdownDeadline()
			return st.endWithHint(out, ErrShutdown)
		}
		// Let others run before taking the queue. A Publish to many
		// members wakes each stream as it queues the event; without this
		// the woken stream runs at once and writes that one event alone,
		// and the publisher, queued behind thousands of such writes, falls
		// behind. Yielding lets the publisher get ahead, so a stream finds
		// several events and writes them at once: at 10,000 streams and
		// 100 events/s, 58-118k -> 299-330k deliveries/s (10 events/s:
		// 55k -> 96k of the 100k offered). One write per delivery is what
		// bounds this transport.
		runtime.Gosched()
		if err := st.step(out); err != nil {
			return err
		}
	}
}

// start writes the first batch: the retry field if set, then the initial
// events. It is written even when empty, which flushes the headers.
func (st *stream[S]) start(out sink) error {
	bp := st.core.bufs.get()
	buf := (*bp)[:0]
	if r := st.core.opts.Retry; r > 0 {
		buf = appendRetry(buf, r)
	}
	for i := range st.initial {
		buf = st.appendSend(buf, &st.initial[i])
	}
	st.initial = nil
	if err := st.write(out, buf); err != nil {
		return err
	}
	*bp = buf // keep the grown buffer: the pool caps what it keeps
	st.core.bufs.put(bp)
	return nil
}

// step handles everything pending for the stream: it runs the callbacks for
// the queued messages in order, encodes all resulting events into one
// batch, and writes it with one write. It returns the reason to end the
// stream, or nil to go on.
func (st *stream[S]) step(out sink) error {
	c := st.conn
	q, ending := c.take()
	if ending != nil {
		if q != nil {
			st.core.rings.put(q)
		}
		if ending == ErrShutdown || ending == ErrLifetime {
			return st.endWithHint(out, ending)
		}
		return ending
	}
	bp := st.core.bufs.get()
	buf := (*bp)[:0]
	stop := false
	var perr error
	if q != nil {
		buf, stop, perr = st.handle(q, buf)
		if stop || perr != nil {
			st.core.rings.put(q)
		} else {
			c.requeue(q) // what a replay left for the next turn, if anything
		}
	}
	if perr == nil && c.hbDue.Swap(false) && len(buf) == 0 {
		if c.peerGone() {
			st.core.bufs.put(bp)
			return fmt.Errorf("%w: %w", ErrClientGone, errPeerClosed)
		}
		buf = append(buf, heartbeat...)
	}
	if len(buf) > 0 {
		if err := st.write(out, buf); err != nil {
			if perr != nil {
				return perr
			}
			return err
		}
	}
	*bp = buf // keep the grown buffer: the pool caps what it keeps
	st.core.bufs.put(bp)
	if perr != nil {
		return perr
	}
	if stop {
		return ErrStopped
	}
	return nil
}

// handle runs the callbacks for the queued messages in order, appending
// their events to buf, until the queue is empty or a callback answers Stop.
// A panic in a callback stops it as well: it returns the batch so far (the
// events of the callbacks before the one that panicked) with the panic, so
// that the batch is written, as Stop's is, and what a client gets before a
// panic does not depend on how its messages happened to be batched.
func (st *stream[S]) handle(q *ring, buf []byte) (out []byte, stop bool, perr error) {
	out = buf
	defer func() {
		if r := recover(); r != nil {
			perr = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	for q.n > 0 && !stop {
		it := q.pop()
		switch it.kind {
		case kindFrame:
			out = append(out, it.frame.b...)
			st.sent++
		case kindReplay:
			var n int
			var again bool
			out, n, again = replayTurn(q, it, out)
			st.sent += int64(n)
			if again {
				return out, false, nil // the rest after this batch is written
			}
		case kindNotify:
			r := st.h.HandleNotify(it.msg, st.state)
			out, stop = st.apply(out, &r)
		case kindInfo:
			r := st.h.HandleInfo(it.msg, st.state)
			out, stop = st.apply(out, &r)
		}
	}
	return out, stop, nil
}

// endWithHint writes the retry hint that ends a stream the server ends
// itself, and returns reason (or the write's error).
func (st *stream[S]) endWithHint(out sink, reason error) error {
	bp := st.core.bufs.get()
	buf := appendRetry((*bp)[:0], st.core.endRetry())
	if err := st.write(out, buf); err != nil {
		return err
	}
	st.core.bufs.put(bp)
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
func (st *stream[S]) apply(buf []byte, r *Result[S]) ([]byte, bool) {
	st.state = r.state
	switch r.op {
	case opSend:
		buf = st.appendSend(buf, &r.ev)
	case opStop:
		return buf, true
	}
	return buf, false
}

// appendSend encodes ev into the batch; an invalid event goes to HandleError
// and nothing of it is written.
func (st *stream[S]) appendSend(buf []byte, ev *Event) []byte {
	nb, err := AppendEvent(buf, ev)
	if err != nil {
		st.state = st.h.HandleError(*ev, err, st.state)
		return buf
	}
	st.last = *ev
	st.sent++
	return nb
}

// write sends one batch and counts it; on failure it calls HandleError and
// returns the reason to end the stream.
func (st *stream[S]) write(out sink, buf []byte) error {
	if err := out.send(buf); err != nil {
		st.state = st.h.HandleError(st.last, err, st.state)
		// OverflowClose closes the connection to unblock a write stuck on a
		// client that stopped reading; that write then fails, but the
		// stream ends as the slow consumer it is.
		st.conn.mu.Lock()
		ending := st.conn.ending
		st.conn.mu.Unlock()
		if ending == ErrSlowConsumer {
			return ending
		}
		return writeReason(err)
	}
	st.conn.lastOut.Store(st.core.now())
	stripe := &st.core.out[st.conn.id%uint64(len(st.core.out))]
	stripe.events.Add(st.sent)
	stripe.bytes.Add(int64(len(buf)))
	st.sent = 0
	st.last = Event{}
	return nil
}

// writeReason sorts a write error into ErrClientGone or ErrWriteFailed. With
// SetBodyStreamWriter the writer writes into an in-memory pipe, not the
// socket: when fasthttp's connection goroutine fails to write to the client
// it closes the pipe, and the writer sees fasthttputil.ErrConnectionClosed.
func writeReason(err error) error {
	if errors.Is(err, errPeerClosed) || errors.Is(err, fasthttputil.ErrConnectionClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	return fmt.Errorf("%w: %w", ErrWriteFailed, err)
}
