// Package fastsse serves Server-Sent Events from fasthttp with the shape of
// inaka/lasse, the SSE handler behaviour for Erlang's Cowboy.
//
// # Where to start
//
// Write a Handler[S], where S is your per-connection state, and build an
// Endpoint with New. Its ServeFastHTTP method is a plain
// fasthttp.RequestHandler: mount it on a server or, with package
// github.com/lasse-go/lasse/router, on a fasthttp/router route.
//
// For every GET, Init decides: Open (200 and a text/event-stream, optionally
// with initial events), NoContent (204: a browser stops reconnecting) or
// Reply (any status and body). Init gets the request's Last-Event-ID and a
// *Conn, lasse's Pid: keep it, and send it messages from anywhere with
// Conn.Notify (to HandleNotify) or Conn.Info and Conn.SendAfter (to
// HandleInfo). Each of those callbacks answers Send (write an event), NoSend
// or Stop. HandleError hears of events that could not be sent, and Terminate
// runs exactly once, with the reason the stream ended.
//
// The encoder is usable on its own: AppendEvent and AppendComment write the
// WHATWG wire format into a caller's buffer without allocating, and refuse
// ids and event types that would inject fields. NewFrame encodes an event
// once for sending to many connections.
//
// # Transports
//
// TransportStream, the default, writes each stream from fasthttp's own
// connection goroutine, as the response body (fasthttp.BodyWriterTo), each
// batch one chunk straight to the socket: about 18 KB and one goroutine per
// open stream. TransportDense hijacks the connection and
// serves it from a few shared writer goroutines, with epoll to see clients
// leave: about 1 KB per open stream, for very high connection counts
// (Linux). Endpoint.HTTPHandler serves the same endpoint from net/http, on
// each request's goroutine: for platforms that hand you an http.Handler
// (AWS Lambda function URLs, for one) and for HTTP/2, where many streams
// share one connection. All three run the same callbacks with the same
// results, and on all three a callback that blocks holds up only its own
// stream.
//
// # Groups, replay, and many instances
//
// A Group broadcasts: Notify reaches every member's HandleNotify, Publish
// encodes an event once for all of them. A group made with NewGroup and
// GroupOptions.Replay numbers its events EPOCH-SEQ and keeps the latest, so
// that Resume, called from Init with the Last-Event-ID, replays what a
// returning client missed, a page at a time as it reads, or tells it of a
// gap with a GapEvent. NewBusGroup puts a group on a Bus (package
// github.com/lasse-go/lasse/fastsse/natsbus: NATS JetStream), so that every
// instance streams every event with the same id and a client resumes on
// any of them.
//
// # Live feeds: conflation, limits and loss
//
// A feed of prices or scores needs the latest value of each key, not every
// one. Give a published event a Key, and a connection's queue conflates
// its frames as Options.Conflation or GroupOptions.Conflation say:
// ConflateBackpressure once the client falls behind, ConflateAlways at
// every push; a newer frame replaces the pending one of its key in place.
// Limits cap what one connection is sent (Options.Limits for all,
// Conn.SetLimits from Init for one): a KeyInterval, Lightstreamer's
// maximum frequency, and events or bytes per second. Whatever is dropped
// or conflated away is told to the client: its next batch ends with a
// LossEvent ("lasse-loss") that counts it, so that it can resynchronise;
// Conn.Losses and Stats keep the totals. The publisher never blocks.
//
// An Observer (Options.Observer, GroupOptions.Observer) hears of streams
// opening and ending, overflows, replays and publishes, for metrics:
// package github.com/lasse-go/lasse/fastsse/promsse is a Prometheus
// collector built on it. Stats has the same counters without one.
//
// # Ending streams
//
// A stream ends when a callback answers Stop, Conn.Close is called, the
// client leaves, the queue overflows under OverflowClose, Options.MaxLifetime
// passes, Endpoint.Drain ends it, or the server shuts down. When the server
// ends a stream itself it first writes a retry hint, jittered so that
// clients come back spread out; with a replaying Group they resume without
// loss. On SIGTERM, call Drain, then Server.Shutdown.
//
// # Concurrency
//
// Every callback for one connection runs on one goroutine at a time: the
// state needs no lock. Conn and Endpoint are safe for concurrent
// use. Notify and Info never block: each connection has a bounded queue, and
// Options.Overflow says what happens when it is full. A panic in a callback
// is recovered and ends only that connection, with a *PanicError.
//
// # fasthttp's rules, and how this package lives with them
//
//   - The *fasthttp.RequestCtx, and every []byte taken from it, is invalid once
//     the handler returns. Request is therefore valid only during Init; copy
//     what later callbacks need (Request.Param, Header and Query return
//     copies).
//   - A stream's body is written by fasthttp's connection goroutine, which
//     calls the body's WriteTo (fasthttp.BodyWriterTo) with a writer whose
//     every Write is one chunk on the socket; ctx.SetBodyStreamWriter would
//     start a second goroutine and copy every batch through an in-memory
//     pipe. A client that left is noticed only when a write fails, the
//     second write after it left (the first only draws the peer's reset).
//     So before each heartbeat (Options.Heartbeat) the stream peeks at its
//     socket (Linux), and an idle stream whose client left ends within
//     about one heartbeat interval.
//   - Server.WriteTimeout is one deadline for the whole response: leave it 0
//     on a server that serves streams, or they are cut when it expires.
//   - Server.Shutdown closes ctx.Done; every stream then ends with
//     ErrShutdown and its final chunk. fasthttp would still wait for a
//     client that stopped reading (its connection goroutine writes with no
//     deadline), so the connection then gets a 1 s write deadline.
//   - Hijacked connections are invisible to Server.Shutdown: it returns
//     without them. Their streams end when ctx.Done closes, but only
//     Endpoint.Drain waits for them.
//   - Server.ReadTimeout's deadline stays on the connection after the
//     request is read; the peek before a heartbeat does not go through it.
//   - fasthttp answers an HTTP/1.0 request for a body stream with chunked
//     encoding, which such a client cannot read; both transports send it a
//     close-delimited body instead.
//   - A stream's response says Connection: close: once the stream ends,
//     its connection closes, so that a client's reconnect opens a new one.
//   - Serve returns on any Accept error but a timeout, "too many open files"
//     included: a process at its open-files limit stops serving everyone.
//     Wrap the listener to wait that out (the examples do).
package fastsse
