package fastsse

import (
	"net"
	"net/http"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Handler is lasse's lasse_handler behaviour. S is the per-connection state:
// Init makes it, every other callback receives the latest one.
//
// All callbacks for one connection run on one goroutine, one at a time, so
// the state needs no lock. Callbacks of different connections run
// concurrently. A panic in a callback is recovered: the connection ends and
// Terminate receives a *PanicError (a panic in Init answers 500 and calls no
// other callback).
type Handler[S any] interface {
	// Init runs in the request handler for each GET. lastEventID is the
	// Last-Event-ID header, empty when absent. req is valid only until Init
	// returns; req.Conn() is the connection's handle, valid for good.
	Init(args any, lastEventID string, req *Request) InitResult[S]

	// HandleNotify handles a message sent with Conn.Notify or Group.Notify.
	HandleNotify(msg any, state S) Result[S]

	// HandleInfo handles a message sent with Conn.Info or Conn.SendAfter.
	HandleInfo(msg any, state S) Result[S]

	// HandleError is called when an event cannot be sent. When the event was
	// invalid, err is an encoder error (ErrDataRequired, ErrInvalidID, ...),
	// nothing was written and the stream goes on. When the write failed, err
	// is the write error, ev is the last event the callbacks gave the batch
	// that failed, and Terminate follows. ev is the zero Event when the
	// batch held no such event: only published frames (Group.Publish,
	// Conn.SendFrame), a replay, a heartbeat or the stream's first bytes.
	HandleError(ev Event, err error, state S) S

	// Terminate runs exactly once for every Init that returned, whatever ended
	// the connection: ErrStopped, ErrClientGone, ErrWriteFailed, ErrShutdown,
	// ErrSlowConsumer, ErrRefused (NoContent or Reply) or a *PanicError.
	Terminate(reason error, state S)
}

type initOp uint8

const (
	opOpen initOp = iota
	opNoContent
	opReply
)

// InitResult is what Init answers: build it with Open, NoContent or Reply.
// The zero InitResult opens the stream with the zero state.
type InitResult[S any] struct {
	state   S
	op      initOp
	status  int
	body    []byte
	initial []Event
}

// Open opens the stream (lasse's {ok, Req, State}, or with initial events
// {ok, Req, InitialEvents, State}): 200, Content-Type: text/event-stream,
// Cache-Control: no-cache, X-Accel-Buffering: no, headers flushed at once,
// then the initial events in order, before any other message's events.
func Open[S any](state S, initial ...Event) InitResult[S] {
	return InitResult[S]{state: state, op: opOpen, initial: initial}
}

// NoContent answers 204 No Content (lasse's no_content), which tells a
// browser's EventSource to stop reconnecting. Terminate follows with
// ErrRefused.
func NoContent[S any](state S) InitResult[S] {
	return InitResult[S]{state: state, op: opNoContent}
}

// Reply answers with status and body instead of a stream (lasse's shutdown
// result); headers are those set with Request.SetHeader. Terminate follows
// with ErrRefused. A status outside 200–599 answers 500 instead.
func Reply[S any](status int, body []byte, state S) InitResult[S] {
	return InitResult[S]{state: state, op: opReply, status: status, body: body}
}

type resultOp uint8

const (
	opSend resultOp = iota
	opNoSend
	opStop
)

// Result is what HandleNotify and HandleInfo answer: build it with Send,
// NoSend or Stop.
type Result[S any] struct {
	state S
	ev    Event
	op    resultOp
}

// Send writes ev and keeps the stream open (lasse's {send, Event, State}).
func Send[S any](ev Event, state S) Result[S] {
	return Result[S]{state: state, ev: ev, op: opSend}
}

// NoSend keeps the stream open and writes nothing (lasse's {nosend, State}).
func NoSend[S any](state S) Result[S] {
	return Result[S]{state: state, op: opNoSend}
}

// Stop writes what the batch has so far, ends the stream cleanly with the
// final chunk, and calls Terminate with ErrStopped (lasse's {stop, State}).
func Stop[S any](state S) Result[S] {
	return Result[S]{state: state, op: opStop}
}

// Request is the view of the HTTP request that Init gets, the same on
// every transport, fasthttp's or net/http's. It is valid only while Init
// runs (fasthttp reuses the request afterwards); its methods return zero
// values after that. Copy what later callbacks need: every method returns
// a copy.
type Request struct {
	ctx  *fasthttp.RequestCtx // served by fasthttp; else nil
	hr   *http.Request        // served by net/http; else nil
	hw   http.ResponseWriter
	conn *Conn
}

// Conn returns the connection's handle (lasse's Pid), valid for good.
func (r *Request) Conn() *Conn { return r.conn }

// Method returns the request method (always GET: other methods never reach Init).
func (r *Request) Method() string {
	switch {
	case r.ctx != nil:
		return string(r.ctx.Method())
	case r.hr != nil:
		return r.hr.Method
	}
	return ""
}

// Path returns the request path, without the query string.
func (r *Request) Path() string {
	switch {
	case r.ctx != nil:
		return string(r.ctx.Path())
	case r.hr != nil:
		return r.hr.URL.Path
	}
	return ""
}

// Param returns a route parameter, or "": on fasthttp one set by a router
// (a user value of type string or []byte, as fasthttp/router sets them), on
// net/http a wildcard of the ServeMux pattern (http.Request.PathValue).
func (r *Request) Param(name string) string {
	switch {
	case r.ctx != nil:
		switch v := r.ctx.UserValue(name).(type) {
		case string:
			return v
		case []byte:
			return string(v)
		}
	case r.hr != nil:
		return r.hr.PathValue(name)
	}
	return ""
}

// Query returns the first value of a query-string argument, or "".
func (r *Request) Query(name string) string {
	switch {
	case r.ctx != nil:
		return string(r.ctx.QueryArgs().Peek(name))
	case r.hr != nil:
		return r.hr.URL.Query().Get(name)
	}
	return ""
}

// Header returns the first value of a request header, or "".
func (r *Request) Header(name string) string {
	switch {
	case r.ctx != nil:
		return string(r.ctx.Request.Header.Peek(name))
	case r.hr != nil:
		return r.hr.Header.Get(name)
	}
	return ""
}

// RemoteAddr returns the client's address, or nil.
func (r *Request) RemoteAddr() net.Addr {
	switch {
	case r.ctx != nil:
		return r.ctx.RemoteAddr()
	case r.hr != nil:
		if ap, err := netip.ParseAddrPort(r.hr.RemoteAddr); err == nil {
			return net.TCPAddrFromAddrPort(ap)
		}
	}
	return nil
}

// SetHeader sets a response header (CORS, for one) for whatever Init
// answers. The stream's own headers (Content-Type, Cache-Control,
// X-Accel-Buffering) are set after it and win.
func (r *Request) SetHeader(name, value string) {
	switch {
	case r.ctx != nil:
		r.ctx.Response.Header.Set(name, value)
	case r.hw != nil:
		r.hw.Header().Set(name, value)
	}
}

// Ctx returns the underlying fasthttp request, for what this view lacks.
// It is nil on net/http, and after Init.
func (r *Request) Ctx() *fasthttp.RequestCtx { return r.ctx }

// HTTPRequest returns the underlying net/http request, for what this view
// lacks. It is nil on fasthttp, and after Init.
func (r *Request) HTTPRequest() *http.Request { return r.hr }
