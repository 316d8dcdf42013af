package fastsse

import (
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// transport is how one open stream's bytes reach its client: the boundary
// between the turn (turn.go), which runs the callbacks and encodes, and the
// three ways of serving a stream (transport_stream.go,
// transport_dense_linux.go, transport_http.go). Nothing outside those files
// knows which transport a stream has.
//
// send and finish are called only from the stream's turn, one at a time;
// the other methods may be called from any goroutine.
type transport interface {
	// wake asks for the stream's turn soon: a message is queued, or the
	// stream must end. It never blocks.
	wake()
	// send writes one batch, which may be empty (the first one flushes the
	// response head), and makes sure it is on its way to the client.
	send(b []byte) error
	// finish ends the connection once the turn is over: with the end of
	// the body when clean, else as it stands.
	finish(clean bool)
	// stalledSince returns the endpoint clock (core.now) when the send
	// still in progress began, or 0 when none is.
	stalledSince() int64
	// gone reports whether the client is known to have left, without
	// writing to it.
	gone() bool
	// evict unblocks a send stuck on a client that stopped reading: the
	// stream is ending as a slow consumer. It is called with the Conn's
	// lock held.
	evict()
	// name is the transport's name for an Observer: "stream", "dense" or
	// "http".
	name() string
	// bound gives what is still to be written on the connection a short
	// deadline (shutdownGrace): the stream is ending because the server
	// is, and a client that stopped reading must not hold that up.
	bound()
}

// wakeup is the work signal of the transports that give every stream a
// goroutine: a channel of capacity 1 that the turn's serve waits on.
type wakeup chan struct{}

func (w wakeup) wake() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// stall keeps, for a transport whose send can block, when the send in
// progress began (transport.stalledSince).
type stall struct {
	core  *core
	since atomic.Int64 // core clock; 0 while no send is in progress
}

func (s *stall) begin()              { s.since.Store(max(s.core.now(), 1)) }
func (s *stall) end()                { s.since.Store(0) }
func (s *stall) stalledSince() int64 { return s.since.Load() }

// opening is a fasthttp request's transport from before Init, when the
// Conn needs it to take messages, until it is handed the opened stream.
type opening interface {
	// open takes over a stream that Init opened; the response headers
	// are set.
	open(ctx *fasthttp.RequestCtx, t turner)
	// abort gives back what was taken, for a request that opened no stream.
	abort()
}

// fastOpening makes the transport of a fasthttp request's stream, as
// Options.Transport says, and sets it on conn. A dense stream whose
// machinery cannot start (epoll) is served by the stream transport and
// counted in Stats.DenseFallbacks.
func (c *core) fastOpening(ctx *fasthttp.RequestCtx, conn *Conn) opening {
	if c.opts.Transport == TransportDense {
		if op, err := c.dense.opening(c, conn); err == nil {
			return op
		}
		c.stats.fallbacks.Add(1)
	}
	return newStreamOpening(c, ctx, conn)
}

// checkTransport refuses a transport this build cannot serve.
func checkTransport(o *Options) error {
	if o.Transport == TransportDense && !denseSupported {
		return ErrDenseUnsupported
	}
	return nil
}
