package fastsse

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"
)

// Serving a request: the requests refused before Init, Init, and what it
// answers, on fasthttp (serveFast) and net/http (serveHTTP). The stream an
// Init opens goes to a transport; what differs between the two servers is
// only how the response is written.

// endpoint is an Endpoint's typed half: it serves requests for a Handler[S].
type endpoint[S any] struct {
	h    Handler[S]
	core *core
}

// streamHeaders are the response headers of every opened stream, set after
// Init's (Request.SetHeader) so that they win.
var streamHeaders = [...][2]string{
	{"Content-Type", "text/event-stream"},
	{"Cache-Control", "no-cache"},
	{"X-Accel-Buffering", "no"},
}

const (
	msgMethod   = "405 Method Not Allowed: an event stream is read with GET\n"
	msgInternal = "500 Internal Server Error\n"
)

// refusal is how a request that opens no stream is answered.
type refusal struct {
	status int
	body   []byte
	reason error // for Terminate
}

// refuse says how to answer an Init that did not open a stream.
func refuse[S any](res *InitResult[S]) refusal {
	switch {
	case res.op == opNoContent:
		return refusal{status: http.StatusNoContent, reason: ErrRefused}
	case res.status < 200 || res.status > 599:
		return refusal{status: http.StatusInternalServerError, body: []byte(msgInternal),
			reason: fmt.Errorf("%w: Reply with invalid status %d", ErrRefused, res.status)}
	default:
		return refusal{status: res.status, body: res.body, reason: ErrRefused}
	}
}

// newTurn makes the Conn and turn of a request about to run Init.
func (e *endpoint[S]) newTurn() *turn[S] {
	return &turn[S]{h: e.h, core: e.core, conn: newConn(e.core)}
}

// admit registers a stream that Init opened; its transport takes it from there.
func (e *endpoint[S]) admit(t *turn[S], res *InitResult[S]) {
	t.initial = res.initial
	e.core.register(t.conn)
	t.opened = true
}

// serveFast serves a fasthttp request: refused before Init, or Init and
// what it answers.
func (e *endpoint[S]) serveFast(ctx *fasthttp.RequestCtx) {
	if !e.refuseFast(ctx) {
		e.openFast(ctx)
	}
}

// refuseFast answers the requests that never reach Init: a method other
// than GET, and every GET while the endpoint drains. It reports whether it
// answered.
func (e *endpoint[S]) refuseFast(ctx *fasthttp.RequestCtx) bool {
	switch {
	case !ctx.IsGet():
		// ctx.Error resets the response headers: set Allow after it.
		ctx.Error(msgMethod, fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set("Allow", "GET")
	case e.core.draining.Load():
		// Not 503: an EventSource that gets anything but 200
		// text/event-stream gives up for good. An empty stream with a retry
		// hint makes it come back later, to another instance.
		for _, h := range streamHeaders {
			ctx.Response.Header.Set(h[0], h[1])
		}
		ctx.SetBody(appendRetry(nil, e.core.endRetry()))
	default:
		return false
	}
	return true
}

// openFast runs Init and opens the stream it asks for, or answers what it
// answers instead.
func (e *endpoint[S]) openFast(ctx *fasthttp.RequestCtx) {
	t := e.newTurn()
	op := e.core.fastOpening(ctx, t.conn)
	t.out = t.conn.t
	req := Request{ctx: ctx, conn: t.conn}
	// fasthttp reuses the request's memory once the handler returns: copy.
	res, perr := t.init(string(ctx.Request.Header.Peek("Last-Event-ID")), &req)
	req.ctx = nil
	switch {
	case perr != nil:
		// Init panicked: there is no state to give Terminate.
		ctx.ResetBody()
		ctx.Error(msgInternal, fasthttp.StatusInternalServerError)
		t.endWithoutState(perr)
		op.abort()
	case res.op != opOpen:
		t.state = res.state
		r := refuse(&res)
		if r.status == http.StatusInternalServerError {
			ctx.Error(string(r.body), r.status)
		} else {
			ctx.SetStatusCode(r.status)
			ctx.SetBody(r.body)
		}
		t.end(r.reason)
		op.abort()
	default:
		t.state = res.state
		for _, h := range streamHeaders {
			ctx.Response.Header.Set(h[0], h[1])
		}
		// ctx.Done is closed only by Server.Shutdown, never when a client leaves.
		t.conn.shut = ctx.Done()
		e.admit(t, &res)
		op.open(ctx, t)
	}
}

// serveHTTP serves a net/http request, as serveFast does a fasthttp one.
func (e *endpoint[S]) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !e.refuseHTTP(w, r) {
		e.openHTTP(w, r)
	}
}

// refuseHTTP is refuseFast on net/http.
func (e *endpoint[S]) refuseHTTP(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", "GET")
		http.Error(w, strings.TrimSuffix(msgMethod, "\n"), http.StatusMethodNotAllowed)
	case e.core.draining.Load():
		for _, h := range streamHeaders {
			w.Header().Set(h[0], h[1])
		}
		_, _ = w.Write(appendRetry(nil, e.core.endRetry()))
	default:
		return false
	}
	return true
}

// openHTTP is openFast on net/http.
func (e *endpoint[S]) openHTTP(w http.ResponseWriter, r *http.Request) {
	t := e.newTurn()
	ht := newHTTPTransport(e.core, w, r)
	t.conn.t, t.out = ht, ht
	req := Request{hr: r, hw: w, conn: t.conn}
	res, perr := t.init(r.Header.Get("Last-Event-ID"), &req)
	req.hr, req.hw = nil, nil
	switch {
	case perr != nil:
		http.Error(w, strings.TrimSuffix(msgInternal, "\n"), http.StatusInternalServerError)
		t.endWithoutState(perr)
	case res.op != opOpen:
		t.state = res.state
		rf := refuse(&res)
		w.WriteHeader(rf.status)
		_, _ = w.Write(rf.body)
		t.end(rf.reason)
	default:
		t.state = res.state
		for _, h := range streamHeaders {
			w.Header().Set(h[0], h[1])
		}
		t.conn.shut = e.core.http.shutdown(r)
		e.admit(t, &res)
		ht.run(t)
	}
}
