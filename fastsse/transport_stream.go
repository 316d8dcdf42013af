package fastsse

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// streamTransport is TransportStream: each stream is written by a goroutine
// of its own, fasthttp's connection goroutine. fasthttp facts it lives with:
//
//   - A response body stream that implements fasthttp.BodyWriterTo (and
//     says so with SupportsBodyWriteTo) is written by fasthttp calling its
//     WriteTo on the connection's goroutine, with a writer whose every
//     Write is one chunk, flushed to the socket (writeBodyChunked). The
//     stream's turn runs in that WriteTo (streamBody): each batch is one
//     chunk, one write system call. ctx.SetBodyStreamWriter, by contrast,
//     starts a second goroutine at once, with no recover, and copies every
//     flush through an in-memory pipe into the connection goroutine, which
//     frames and writes it: two goroutine hand-offs and two copies per
//     batch (bench/RESULTS.md, "Broadcast latency").
//   - fasthttp calls the body stream's Close once it is done with the
//     response, also when writing the head failed and WriteTo never ran;
//     the stream then ends there.
//   - A client that left is seen when a write fails, the second write after
//     it left (the first only draws the peer's reset); hence the socket
//     peek before each heartbeat (gone).
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
	// bounded is set once bound gave the connection its shutdown deadline.
	bounded atomic.Bool

	// Owned by the stream's goroutine.
	w    io.Writer // fasthttp's chunk writer; nil on a hijacked HTTP/1.0 stream
	head []byte    // hijacked: the response head, written with the first batch
	lost bool      // a write ran out of the shutdown deadline: the rest is dropped
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
	ctx.SetBodyStream(&streamBody{s: s, t: t}, -1)
}

// streamBody is a stream's response body as fasthttp takes it: WriteTo runs
// the stream's turn on the connection's goroutine, each batch written as
// one chunk.
type streamBody struct {
	s      *streamTransport
	t      turner
	served bool           // WriteTo or Read began the turn
	pr     *io.PipeReader // Read's pipe, for a fasthttp path that reads
}

// SupportsBodyWriteTo tells fasthttp that WriteTo may replace Read
// (fasthttp.BodyWriterTo).
func (*streamBody) SupportsBodyWriteTo() bool { return true }

// WriteTo runs the stream until it ends, each batch one Write to w. The
// stream's own errors go to its callbacks, not to fasthttp.
func (b *streamBody) WriteTo(w io.Writer) (int64, error) {
	b.served = true
	b.s.w = w
	b.t.serve(b.s.wakeup, nil)
	return 0, nil
}

// Read serves a fasthttp path that reads the body rather than calling
// WriteTo (none does for a chunked response today): the turn then runs on
// a goroutine of its own and its batches come through a pipe.
func (b *streamBody) Read(p []byte) (int, error) {
	if !b.served {
		b.served = true
		pr, pw := io.Pipe()
		b.pr = pr
		b.s.w = pw
		go func() {
			b.t.serve(b.s.wakeup, nil)
			_ = pw.Close()
		}()
	}
	return b.pr.Read(p)
}

// Close is called by fasthttp when it is done with the response. A stream
// whose turn never began (writing the head failed) ends here; one read
// through Read's pipe has its next write fail.
func (b *streamBody) Close() error {
	switch {
	case !b.served:
		b.served = true
		b.t.close(fmt.Errorf("%w: %w", ErrClientGone, errPeerClosed))
	case b.pr != nil:
		_ = b.pr.CloseWithError(errPeerClosed)
	}
	return nil
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
	if len(b) == 0 || s.lost {
		return nil // the head is out: fasthttp flushes it before WriteTo (ImmediateHeaderFlush)
	}
	_, err := s.w.Write(b)
	if err != nil && s.bounded.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		// The server is shutting down and the client does not read: what
		// it has not taken within the grace is dropped, and the stream
		// ends as the shutdown it is, not as a failed write.
		s.lost = true
		return nil
	}
	return err
}

func (s *streamTransport) finish(bool) {
	if s.w == nil {
		_ = s.raw.Close()
	}
	// Else fasthttp ends the body (the final chunk) when WriteTo
	// returns, and closes the connection (Connection: close).
}

func (s *streamTransport) gone() bool { return peerClosed(s.raw) }

// A send blocks when the socket's buffer is full, a client that stopped
// reading: stall keeps when it began.

// evict closes the connection: the stream's write stuck on it fails.
func (s *streamTransport) evict() { _ = s.raw.Close() }

func (s *streamTransport) bound() {
	s.bounded.Store(true)
	_ = s.raw.SetWriteDeadline(time.Now().Add(shutdownGrace))
}

func (*streamTransport) name() string { return "stream" }
