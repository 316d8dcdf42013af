package sseclient

import (
	"errors"
	"math"
	"net/http"
	"time"
)

// Options configures a Stream. A nil *Options means all defaults; so does
// each field's zero value. The hooks (OnConnect, OnError, OnGap) run on the
// goroutine that iterates Events, between two events: one that blocks
// holds up the stream.
type Options struct {
	// Client sends the requests. Default: a client of the Stream's own on a
	// clone of http.DefaultTransport (HTTP/2 over TLS included) that opens
	// a new connection for every attempt, so that a load balancer may send
	// a reconnection to another instance rather than back, over a kept-alive
	// connection, to the server that ended the stream; nothing of it is
	// left once the Stream ends. A Client of yours keeps its own connection
	// reuse. A Client.Timeout bounds the whole response and would cut every
	// stream: leave it 0, and use ReadTimeout.
	Client *http.Client

	// Header is added to every request. Default none. Accept,
	// Cache-Control and Last-Event-ID are the Stream's own.
	Header http.Header

	// LastEventID is sent as Last-Event-ID on the first request, to resume
	// where an earlier Stream stopped. Default "": none. Every reconnection
	// sends the stream's last event id, as a browser does.
	LastEventID string

	// Backoff spaces the reconnections after errors. The zero Backoff is
	// the defaults, jitter included.
	Backoff Backoff

	// ReadTimeout is how long a read may wait for the server before the
	// connection counts as dead (a half-open stream, a stalled server) and
	// is replaced; it bounds the wait for the answer's header too. Set it to
	// a few of the server's heartbeat intervals. Default 45s (three of
	// fastsse's default 15 s heartbeats); negative: no timeout.
	ReadTimeout time.Duration

	// MaxEventSize bounds an event's data, type and id together, and any one
	// line. An event past it ends the Stream with an error wrapping
	// ErrEventTooLarge. A stream's buffers stay within about three times this.
	// Default 16 MiB.
	MaxEventSize int

	// OnConnect, when set, is called after every answer that opens a stream
	// (200, text/event-stream), before its first event; it must not read or
	// close resp.Body. Default none.
	OnConnect func(resp *http.Response)

	// OnError, when set, is called with every error the Stream recovers
	// from, and wait, how long it will wait before reconnecting. Default
	// none.
	OnError func(err error, wait time.Duration)

	// OnGap, when set, is called when the server signals that it could not
	// resume from the Last-Event-ID it was sent (fastsse's gap signal, an
	// event of type "lasse-gap"), with that id: events after it may have
	// been missed. The signal is then not yielded as an event. Without
	// OnGap it is yielded like any other event, so that a gap is never
	// silent. Either way its id becomes the last event id, so that a later
	// reconnection resumes after the hole. Default none.
	OnGap func(lastEventID string)
}

// Backoff is how a Stream waits between attempts. After an attempt fails
// (no connection, a broken one, a read timeout, a stream that ended before
// any event) it waits the reconnection time times Multiplier for each
// failure in a row before it, within Max, shortened by a random fraction
// of up to Jitter. The reconnection time is the server's last retry field
// (within Max), else Initial. A connection that stays open for a minute
// starts the count again. When the server ends a stream that delivered
// events, the Stream waits just the reconnection time, as a browser does:
// fastsse jitters its own retry hints.
type Backoff struct {
	// Initial is the reconnection time until the server sends a retry
	// field. Default 1s.
	Initial time.Duration
	// Max caps every wait, the server's retry included. Default 30s.
	Max time.Duration
	// Multiplier grows the wait with each failure in a row. Default 2;
	// values below 1 are 1.
	Multiplier float64
	// Jitter is the largest fraction of a wait after a failure that is
	// randomly taken off it, so that clients of a failed server do not all
	// come back at once. Default 0.5; negative: none; at most 1.
	Jitter float64
}

const (
	defaultInitial      = time.Second
	defaultMax          = 30 * time.Second
	defaultMultiplier   = 2
	defaultJitter       = 0.5
	defaultReadTimeout  = 45 * time.Second
	defaultMaxEventSize = 16 << 20
)

// setDefaults fills in the zero fields and checks the rest.
func (o *Options) setDefaults() error {
	b := &o.Backoff
	if b.Initial < 0 || b.Max < 0 || o.MaxEventSize < 0 {
		return errors.New("sseclient: negative Backoff.Initial, Backoff.Max or MaxEventSize")
	}
	if !finite(b.Multiplier) || !finite(b.Jitter) {
		return errors.New("sseclient: Backoff.Multiplier or Backoff.Jitter is not a finite number")
	}
	if b.Initial == 0 {
		b.Initial = defaultInitial
	}
	if b.Max == 0 {
		b.Max = max(defaultMax, b.Initial)
	}
	b.Initial = min(b.Initial, b.Max)
	if b.Multiplier == 0 {
		b.Multiplier = defaultMultiplier
	}
	b.Multiplier = max(b.Multiplier, 1)
	switch {
	case b.Jitter == 0:
		b.Jitter = defaultJitter
	case b.Jitter < 0:
		b.Jitter = 0
	}
	b.Jitter = min(b.Jitter, 1)
	if o.ReadTimeout == 0 {
		o.ReadTimeout = defaultReadTimeout
	}
	if o.MaxEventSize == 0 {
		o.MaxEventSize = defaultMaxEventSize
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// wait is the wait after the failures-th failure in a row (at least 1),
// from the reconnection time base; r in [0, 1) picks the jitter.
func (b *Backoff) wait(base time.Duration, failures int, r float64) time.Duration {
	w := float64(base)
	for i := 1; i < failures && w < float64(b.Max); i++ {
		w *= b.Multiplier
	}
	w = min(w, float64(b.Max))
	return time.Duration(w * (1 - b.Jitter*r))
}
