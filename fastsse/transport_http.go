package fastsse

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// aLongTimeAgo is a deadline that has passed: setting it makes a blocked
// write return at once.
var aLongTimeAgo = time.Unix(1, 0)

// httpTransport serves a stream from a net/http handler (Endpoint.
// HTTPHandler), on the request's goroutine. net/http facts it lives with:
//
//   - The request's context is cancelled when the client goes away (the
//     connection closes, or an HTTP/2 stream is reset), so a gone client is
//     seen without writing.
//   - http.ResponseController reaches Flush and SetWriteDeadline through
//     wrappers that implement Unwrap. A writer that cannot flush answers
//     http.ErrNotSupported (AWS Lambda's streaming response writer is
//     one, and sends as it is written): it is then written to as it is.
//   - Server.Shutdown neither cancels request contexts nor ends handlers:
//     it waits for them. The request's context holds its *http.Server
//     (http.ServerContextKey), so the endpoint registers a shutdown hook
//     on each server it serves (RegisterOnShutdown) that ends that
//     server's streams, as fasthttp's Shutdown does.
//   - Server.ReadTimeout does not cut a stream: the server clears the read
//     deadline when it starts the background read that watches for the
//     client leaving.
type httpTransport struct {
	wakeup
	stall
	w       http.ResponseWriter
	rc      *http.ResponseController
	gone_   <-chan struct{} // the request context's Done
	evicted atomic.Bool
	http1   bool // HTTP/1.x: the connection closes with the stream
	noFlush bool // the writer cannot flush: written to as it is
	started bool // the first batch went out
}

func newHTTPTransport(c *core, w http.ResponseWriter, r *http.Request) *httpTransport {
	return &httpTransport{
		wakeup: make(wakeup, 1), stall: stall{core: c}, w: w, rc: http.NewResponseController(w),
		gone_: r.Context().Done(), http1: r.ProtoMajor == 1,
	}
}

// run serves the opened stream until it ends. On HTTP/1.x the connection
// closes with the stream: a browser's reconnect must not reuse a
// connection whose stream the server ended.
func (h *httpTransport) run(t turner) {
	if h.http1 {
		h.w.Header().Set("Connection", "close")
	}
	t.serve(h.wakeup, h.gone_)
}

// httpState is what an endpoint keeps of the net/http servers it serves:
// each one's shutdown signal.
type httpState struct {
	mu   sync.Mutex
	shut map[*http.Server]chan struct{}
}

// shutdown returns the shutdown signal of the server that serves r, closed
// by a hook registered on its first stream, or nil when r has no server
// (a handler called directly).
func (hs *httpState) shutdown(r *http.Request) <-chan struct{} {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	ch, ok := hs.shut[srv]
	if !ok {
		if hs.shut == nil {
			hs.shut = make(map[*http.Server]chan struct{})
		}
		ch = make(chan struct{})
		hs.shut[srv] = ch
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}

func (h *httpTransport) send(b []byte) error {
	h.begin()
	defer h.end()
	if len(b) > 0 {
		if _, err := h.w.Write(b); err != nil {
			return err
		}
	}
	first := !h.started
	h.started = true
	if h.noFlush {
		return nil
	}
	if err := h.rc.Flush(); err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		h.noFlush = true
		if first && len(b) == 0 {
			// Such a writer sends the head with the first bytes of the
			// body: give it some, so the client sees the stream open.
			_, err = h.w.Write(heartbeat)
			return err
		}
	}
	return nil
}

func (h *httpTransport) finish(bool) {}

func (h *httpTransport) gone() bool {
	select {
	case <-h.gone_:
		return true
	default:
		return false
	}
}

// evict makes the stuck write fail: its deadline is now. It needs a writer
// whose deadline can be set (net/http's own); with another, the stream
// ends once its write returns.
func (h *httpTransport) evict() {
	if !h.evicted.Swap(true) {
		_ = h.rc.SetWriteDeadline(aLongTimeAgo)
	}
}

// bound gives the writes still to come a deadline. Like evict it is
// called from another goroutine, under the Conn's lock while the stream is
// open, so before the handler returns: net/http's ResponseWriters allow
// that (HTTP/1 sets the connection's deadline, HTTP/2 the stream's timer).
func (h *httpTransport) bound() { _ = h.rc.SetWriteDeadline(time.Now().Add(shutdownGrace)) }

func (*httpTransport) name() string { return "http" }
