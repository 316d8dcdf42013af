package fastsse

import "time"

// Options configures an Endpoint. A nil *Options means all defaults.
type Options struct {
	// InitArgs is passed to every Init call (lasse's init_args). Default nil.
	InitArgs any

	// QueueSize bounds the messages (Notify, Info, published frames) waiting
	// for one connection. Default 128. The queue is taken from a pool when the
	// first message arrives and given back once drained, so an idle connection
	// holds none; while a batch is being written, up to QueueSize more may wait.
	QueueSize int

	// Overflow decides what happens when a message finds the queue full.
	// Default OverflowClose.
	Overflow OverflowPolicy

	// Heartbeat is how long a stream may stay silent before a comment frame
	// (": \n\n") is written. Heartbeats keep proxies from timing out idle
	// streams, and they are how the stream transport notices a gone client:
	// before each, it peeks at the socket (fasthttp itself reports a closed
	// connection only when a write to it fails). Default 15s; negative
	// turns heartbeats off.
	Heartbeat time.Duration

	// MaxLifetime, when positive, bounds how long a stream stays open:
	// each stream ends after a random 80–100% of it (so streams opened
	// together do not all end together) with a retry hint, and Terminate
	// gets ErrLifetime. For platforms that cap request time (Cloud Run: 300
	// s by default; Lambda: 900 s); with replay, the client resumes without
	// loss. Default 0: no limit.
	MaxLifetime time.Duration

	// Retry is the reconnection delay the server asks clients for. When
	// positive it is sent as "retry:" when a stream opens. Whenever the
	// server ends a stream itself (Server.Shutdown, Drain, MaxLifetime) the
	// last frame is a retry hint of a random 100–150% of Retry (3 s when
	// Retry is 0), so clients spread their reconnects.
	Retry time.Duration

	// Transport is how streams reach the socket. Default TransportStream.
	Transport Transport

	// StallTimeout is how long one write may stay unfinished, because the
	// client is not reading, before the stream ends as a slow consumer
	// (ErrSlowConsumer, counted in Stats.SlowConsumers); the connection is
	// closed to unblock the write. On TransportDense it counts from the
	// write's last progress, so that a client that reads slowly stays, its
	// queue bounded by QueueSize and conflation, as long as its TCP window
	// opens within StallTimeout (a receiver opens it once about half its
	// buffer is free: at tens of bytes a second that is minutes); on the
	// others, whose writes block until done, from the write's start. It holds on every transport: fasthttp's
	// Server.WriteTimeout cannot serve for it (it is one deadline for the
	// whole response and must stay 0 for streams). Default 10s; negative
	// turns it off, leaving a client that stops reading to the overflow
	// policy once its queue fills.
	StallTimeout time.Duration

	// Observer, when set, hears of every stream's open and end, of
	// overflows and of replays (see Observer). Default nil.
	Observer Observer

	// Conflation is what a stream's queue does with keyed frames (see
	// Conflation). Default ConflateOff.
	Conflation Conflation

	// Limits caps what each stream is sent of published frames (see
	// Limits); Conn.SetLimits sets one stream's. Default: no caps.
	Limits Limits

	// Route names the endpoint to the Observer (StreamInfo.Route): the
	// route's pattern, say, never a request's path. Default "".
	Route string
}

// Transport is how an Endpoint's streams reach the socket.
type Transport uint8

const (
	// TransportStream writes each stream from fasthttp's connection
	// goroutine, as its response body: portable, and fasthttp keeps owning
	// the connection. About 18 KB and one goroutine per open stream.
	TransportStream Transport = iota
	// TransportDense, for very high connection counts, hijacks the
	// connection and writes the response itself: no goroutine per stream,
	// a few writer goroutines for all, epoll to see a client leave within
	// a millisecond without writing, non-blocking writes so that a slow
	// client never holds up another, and a callback that blocks (past a
	// few milliseconds) is left to its goroutine while the others go on.
	// About 1 KB per open stream. Linux only: elsewhere New refuses it with
	// ErrDenseUnsupported; where its epoll cannot start, streams are
	// served by TransportStream and counted in Stats.DenseFallbacks. The
	// server does not need KeepHijackedConns. fasthttp's Server.Shutdown
	// does not wait for hijacked connections: call Endpoint.Drain before it.
	TransportDense
)

// OverflowPolicy is what a full queue does with one more message (that a
// keyed frame did not conflate into one pending). Each policy is counted in
// Stats.
type OverflowPolicy uint8

const (
	// OverflowClose ends the connection as a slow consumer: the sender gets
	// ErrSlowConsumer, Terminate gets ErrSlowConsumer, and the network
	// connection is closed at once (no final chunk), which unblocks a write
	// stuck on a client that stopped reading. The client can reconnect and
	// resume with Last-Event-ID. Nothing is lost silently.
	OverflowClose OverflowPolicy = iota
	// OverflowDropOldest discards the oldest waiting message to make room; the
	// sender gets nil, and the client a LossEvent that counts it.
	OverflowDropOldest
	// OverflowDropNewest discards the new message; the sender gets
	// ErrQueueFull, and the client a LossEvent that counts it.
	OverflowDropNewest
)

const (
	defaultQueueSize = 128
	defaultHeartbeat = 15 * time.Second
	defaultEndRetry  = 3 * time.Second
	defaultStall     = 10 * time.Second
)

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.QueueSize <= 0 {
		r.QueueSize = defaultQueueSize
	}
	if r.Heartbeat == 0 {
		r.Heartbeat = defaultHeartbeat
	}
	if r.Conflation == ConflateDefault {
		r.Conflation = ConflateOff
	}
	if r.StallTimeout == 0 {
		r.StallTimeout = defaultStall
	}
	return r
}
