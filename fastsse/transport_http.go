package fastsse

import (
	"errors"
	"net/http"
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
//   - Server.Shutdown neither cancels request contexts nor waits less than
//     for every handler: Endpoint.Drain ends the streams.
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

// bound does nothing: setting a deadline from outside the handler is not
// safe on every ResponseWriter, and StallTimeout ends a stream whose write
// is stuck.
func (h *httpTransport) bound() {}

func (*httpTransport) name() string { return "http" }
