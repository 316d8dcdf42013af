package fastsse

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

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
		ctx.Error("503 Service Unavailable: draining\n", fasthttp.StatusServiceUnavailable)
		ctx.Response.Header.Set("Retry-After", "1")
		return
	}
	c := newConn(e.core, ctx.Conn())
	st := &stream[S]{h: e.h, core: e.core, conn: c}
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
		return
	}
	st.state = res.state
	switch res.op {
	case opNoContent:
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		st.end(ErrRefused)
		return
	case opReply:
		if res.status < 200 || res.status > 599 {
			ctx.Error("500 Internal Server Error\n", fasthttp.StatusInternalServerError)
			st.end(fmt.Errorf("%w: Reply with invalid status %d", ErrRefused, res.status))
			return
		}
		ctx.SetStatusCode(res.status)
		ctx.SetBody(res.body)
		st.end(ErrRefused)
		return
	}
	hdr := &ctx.Response.Header
	hdr.SetContentType("text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	ctx.Response.ImmediateHeaderFlush = true
	st.initial = res.initial
	// ctx.Done is closed only by Server.Shutdown, never when a client leaves;
	// the writer must not touch ctx, so take the channel now.
	st.done = ctx.Done()
	if l := e.core.opts.MaxLifetime; l > 0 {
		c.endAt = e.core.now() + int64(l) - rand.Int64N(int64(l)/5+1)
	}
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

func (st *stream[S]) loop(w *bufio.Writer) (reason error) {
	defer func() {
		if r := recover(); r != nil {
			reason = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	c := st.conn
	bp := st.core.bufs.get()
	buf := (*bp)[:0]
	if r := st.core.opts.Retry; r > 0 {
		buf = appendRetry(buf, r)
	}
	for i := range st.initial {
		buf = st.appendSend(buf, &st.initial[i])
	}
	st.initial = nil
	if err := st.write(w, buf); err != nil {
		return err
	}
	st.core.bufs.put(bp)

	for {
		select {
		case <-c.wakeCh:
		case <-st.done:
			return st.endWithHint(w, ErrShutdown)
		}
		q, ending := c.take()
		if ending != nil {
			if q != nil {
				st.core.rings.put(q)
			}
			if ending == ErrShutdown || ending == ErrLifetime {
				return st.endWithHint(w, ending)
			}
			return ending
		}
		bp = st.core.bufs.get()
		buf = (*bp)[:0]
		stop := false
		if q != nil {
			for q.n > 0 && !stop {
				it := q.pop()
				switch it.kind {
				case kindFrame:
					buf = append(buf, it.frame.b...)
					st.sent++
				case kindNotify:
					r := st.h.HandleNotify(it.msg, st.state)
					buf, stop = st.apply(buf, &r)
				case kindInfo:
					r := st.h.HandleInfo(it.msg, st.state)
					buf, stop = st.apply(buf, &r)
				}
			}
			st.core.rings.put(q)
		}
		if c.hbDue.Swap(false) && len(buf) == 0 {
			buf = append(buf, heartbeat...)
		}
		if err := st.write(w, buf); err != nil {
			return err
		}
		st.core.bufs.put(bp)
		if stop {
			return ErrStopped
		}
	}
}

// endWithHint writes the retry hint that ends a stream the server ends
// itself, and returns reason (or the write's error).
func (st *stream[S]) endWithHint(w *bufio.Writer, reason error) error {
	base := st.core.opts.Retry
	if base <= 0 {
		base = defaultEndRetry
	}
	bp := st.core.bufs.get()
	buf := appendRetry((*bp)[:0], base+time.Duration(rand.Int64N(int64(base)/2+1)))
	if err := st.write(w, buf); err != nil {
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

// write writes one batch and flushes it: one write and one flush per batch.
// An empty batch still flushes, so the first call sends the headers.
func (st *stream[S]) write(w *bufio.Writer, buf []byte) error {
	var err error
	if len(buf) > 0 {
		_, err = w.Write(buf)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		st.state = st.h.HandleError(st.last, err, st.state)
		return writeReason(err)
	}
	st.conn.lastOut.Store(st.core.now())
	st.core.stats.events.Add(st.sent)
	st.core.stats.bytes.Add(int64(len(buf)))
	st.sent = 0
	st.last = Event{}
	return nil
}

// writeReason sorts a write error into ErrClientGone or ErrWriteFailed. With
// SetBodyStreamWriter the writer writes into an in-memory pipe, not the
// socket: when fasthttp's connection goroutine fails to write to the client
// it closes the pipe, and the writer sees fasthttputil.ErrConnectionClosed.
func writeReason(err error) error {
	if errors.Is(err, fasthttputil.ErrConnectionClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	return fmt.Errorf("%w: %w", ErrWriteFailed, err)
}
