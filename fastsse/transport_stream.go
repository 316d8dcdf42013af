package fastsse

import (
	"bufio"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// streamTransport is TransportStream: each stream is written by a goroutine
// of its own. fasthttp facts it lives with:
//
//   - ctx.SetBodyStreamWriter runs the writer on a goroutine that fasthttp
//     starts, with no recover. Its writes go into an in-memory pipe that
//     fasthttp's connection goroutine copies to the socket, so a client
//     that left is seen only when a write fails, two or three writes
//     later; hence the socket peek before each heartbeat (gone).
//   - fasthttp answers an HTTP/1.0 request for a body stream with chunked
//     encoding, which RFC 9112 forbids and such a client cannot read. An
//     HTTP/1.0 stream is therefore hijacked and written close-delimited,
//     on the hijack handler's goroutine.
//   - A stream's response says Connection: close, and fasthttp closes the
//     connection once the stream ends: a browser's reconnect must not
//     reuse a connection whose stream the server ended (it fails there
//     with "other side closed" and waits out a retry more).
type streamTransport struct {
	wakeup
	stall
	raw net.Conn // the client's connection, for peek, eviction and deadlines

	// Owned by the stream's goroutine.
	w    *bufio.Writer // fasthttp's body writer; nil on a hijacked HTTP/1.0 stream
	head []byte        // hijacked: the response head, written with the first batch
}

func newStreamOpening(c *core, ctx *fasthttp.RequestCtx, conn *Conn) opening {
	s := &streamTransport{wakeup: make(wakeup, 1), stall: stall{core: c}, raw: ctx.Conn()}
	conn.t = s
	return s
}

func (s *streamTransport) abort() {}

func (s *streamTransport) open(ctx *fasthttp.RequestCtx, t turner) {
	hdr := &ctx.Response.Header
	hdr.SetConnectionClose()
	if !ctx.Request.Header.IsHTTP11() {
		hdr.SetContentLength(-2) // identity: the body ends when the connection closes
		s.head = append([]byte(nil), hdr.Header()...)
		ctx.HijackSetNoResponse(true)
		// nc wraps s.raw with fasthttp's reader; writes go to s.raw.
		// Serve closes nc when this returns (without KeepHijackedConns;
		// with it, finish does).
		ctx.Hijack(func(net.Conn) { t.serve(s.wakeup, nil) })
		return
	}
	ctx.Response.ImmediateHeaderFlush = true
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		s.w = w
		t.serve(s.wakeup, nil)
	})
}

func (s *streamTransport) send(b []byte) error {
	s.begin()
	defer s.end()
	if s.w == nil { // hijacked HTTP/1.0
		if s.head != nil {
			b = append(s.head, b...)
			s.head = nil
		}
		_, err := s.raw.Write(b)
		return err
	}
	if len(b) > 0 {
		if _, err := s.w.Write(b); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

func (s *streamTransport) finish(bool) {
	if s.w == nil {
		_ = s.raw.Close()
	}
	// Else fasthttp ends the body (the final chunk) when the writer
	// returns, and closes the connection (Connection: close).
}

func (s *streamTransport) gone() bool { return peerClosed(s.raw) }

// A send blocks once fasthttp's pipe is full, that is when the connection
// goroutine's write to a client that stopped reading blocks: stall keeps
// when it began.

// evict closes the connection: fasthttp's write stuck on it fails, the
// pipe closes, and the stream's send returns.
func (s *streamTransport) evict() { _ = s.raw.Close() }

func (s *streamTransport) bound() { _ = s.raw.SetWriteDeadline(time.Now().Add(shutdownGrace)) }

func (*streamTransport) name() string { return "stream" }
