package fastsse_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/lasse-go/lasse/router"
)

// The handler side of the tests: a Handler made of functions, and the probe
// that records its calls. The server, the client and the reader are
// internal/ssetest's.

// mount is one route of routed.
type mount struct {
	path string
	ep   *fastsse.Endpoint
}

// routed serves the endpoints through fasthttp/router, mounted with
// router.Mount, on a fasthttp server; the endpoints are drained at cleanup.
// For the tests of routing (route params, several routes on one server):
// every other test serves its endpoint with tr.Serve.
func routed(tb testing.TB, mounts ...mount) *ssetest.Server {
	tb.Helper()
	r := frouter.New()
	for _, m := range mounts {
		router.Mount(r, m.path, m.ep)
	}
	s := ssetest.ServeFastHTTP(tb, r.Handler)
	for _, m := range mounts {
		s.DrainAtCleanup(m.ep)
	}
	return s
}

// probe records what a handler's callbacks saw. Every channel is buffered
// generously and written without blocking where a stream goroutine writes.
type probe struct {
	inits  atomic.Int64
	conns  chan *fastsse.Conn // every Conn, sent at the start of Init
	nterms atomic.Int64
	terms  chan error // every Terminate reason
	nerrs  atomic.Int64
	errs   chan handledErr // every HandleError call
	byAddr sync.Map        // client address → *fastsse.Conn
}

type handledErr struct {
	ev  fastsse.Event
	err error
}

func newProbe() *probe {
	return &probe{
		conns: make(chan *fastsse.Conn, 4096),
		terms: make(chan error, 4096),
		errs:  make(chan handledErr, 4096),
	}
}

func (p *probe) sawInit(req *fastsse.Request) {
	p.inits.Add(1)
	if a := req.RemoteAddr(); a != nil {
		p.byAddr.Store(a.String(), req.Conn())
	}
	select {
	case p.conns <- req.Conn():
	default: // a test that opens this many streams uses connOf
	}
}

// connOf waits for the Conn of the stream that c opened.
func (p *probe) connOf(tb testing.TB, c *ssetest.Client) *fastsse.Conn {
	tb.Helper()
	addr := c.Conn.LocalAddr().String()
	var conn *fastsse.Conn
	ssetest.Eventually(tb, func() bool {
		v, ok := p.byAddr.Load(addr)
		if ok {
			conn = v.(*fastsse.Conn)
		}
		return ok
	}, "Init for %s", addr)
	return conn
}

func (p *probe) sawTerminate(reason error) {
	p.nterms.Add(1)
	select {
	case p.terms <- reason:
	default:
	}
}

func (p *probe) sawError(ev fastsse.Event, err error) {
	p.nerrs.Add(1)
	select {
	case p.errs <- handledErr{ev, err}:
	default:
	}
}

// conn waits for the next Conn given to Init.
func (p *probe) conn(tb testing.TB) *fastsse.Conn {
	tb.Helper()
	return ssetest.Recv(tb, p.conns, "Init")
}

// term waits for the next Terminate reason.
func (p *probe) term(tb testing.TB) error {
	tb.Helper()
	return ssetest.Recv(tb, p.terms, "Terminate")
}

// handled waits for the next HandleError call.
func (p *probe) handled(tb testing.TB) handledErr {
	tb.Helper()
	return ssetest.Recv(tb, p.errs, "HandleError")
}

// funcs is a Handler made of functions; the probe records every call. A nil
// function has a default: Init opens with the zero state, HandleNotify and
// HandleInfo answer echo, HandleError keeps the state, Terminate does
// nothing more than record.
type funcs[S any] struct {
	p      *probe
	init   func(args any, lastEventID string, req *fastsse.Request) fastsse.InitResult[S]
	notify func(msg any, s S) fastsse.Result[S]
	info   func(msg any, s S) fastsse.Result[S]
	herr   func(ev fastsse.Event, err error, s S) S
	term   func(reason error, s S)
}

func (h *funcs[S]) Init(args any, lastEventID string, req *fastsse.Request) fastsse.InitResult[S] {
	h.p.sawInit(req)
	if h.init != nil {
		return h.init(args, lastEventID, req)
	}
	var zero S
	return fastsse.Open(zero)
}

func (h *funcs[S]) HandleNotify(msg any, s S) fastsse.Result[S] {
	if h.notify != nil {
		return h.notify(msg, s)
	}
	return echo("notify", msg, s)
}

func (h *funcs[S]) HandleInfo(msg any, s S) fastsse.Result[S] {
	if h.info != nil {
		return h.info(msg, s)
	}
	return echo("info", msg, s)
}

func (h *funcs[S]) HandleError(ev fastsse.Event, err error, s S) S {
	h.p.sawError(ev, err)
	if h.herr != nil {
		return h.herr(ev, err, s)
	}
	return s
}

func (h *funcs[S]) Terminate(reason error, s S) {
	h.p.sawTerminate(reason)
	if h.term != nil {
		h.term(reason, s)
	}
}

// echo is the default message handling: "stop" stops, an Event is sent as
// is, anything else is sent as data "<kind>:<msg>".
func echo[S any](kind string, msg any, s S) fastsse.Result[S] {
	switch m := msg.(type) {
	case fastsse.Event:
		return fastsse.Send(m, s)
	case string:
		if m == "stop" {
			return fastsse.Stop(s)
		}
	}
	return fastsse.Send(fastsse.Event{Data: fmt.Sprintf("%s:%v", kind, msg)}, s)
}

// isWriteReason reports whether reason is what Terminate gets after a
// failed write.
func isWriteReason(reason error) bool {
	return errors.Is(reason, fastsse.ErrClientGone) || errors.Is(reason, fastsse.ErrWriteFailed)
}

// isEncoderErr reports whether err is one of the encoder's errors.
func isEncoderErr(err error) bool {
	for _, e := range []error{fastsse.ErrDataRequired, fastsse.ErrInvalidID, fastsse.ErrInvalidType, fastsse.ErrInvalidRetry} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
