// Package sseclient reads a Server-Sent Events stream and keeps it alive the
// way a fastsse server expects of a good client: it reconnects when the
// server ends the stream (Endpoint.Drain, Options.MaxLifetime, shutdown),
// honouring the retry hint, and when the connection breaks or goes silent,
// sending Last-Event-ID each time so that a replaying Group resumes it
// without gap or duplicate; it hears fastsse's gap signal; and it stops for
// good when the server answers 204.
//
// # Where to start
//
//	s := sseclient.Connect(ctx, "http://127.0.0.1:8080/news", nil)
//	for ev, err := range s.Events() {
//		if err != nil {
//			return err // why the stream stopped for good
//		}
//		fmt.Printf("%s %s: %s\n", ev.ID, ev.Type, ev.Data)
//	}
//
// Run is the same with a callback. Options holds the knobs (all optional).
// The package runs over net/http (HTTP/1.1 and HTTP/2) and depends on
// nothing else.
//
// # Parsing
//
// The parser follows the WHATWG HTML standard, "Interpreting an event
// stream", byte for byte (a fuzz test holds it equal to the project's
// reference parser): CRLF, CR and LF all end lines, a leading BOM is
// skipped, an id with NUL is ignored, the last event id carries over to
// later events, and an event the stream cut before its blank line is
// dropped. It works on bytes and does not check UTF-8.
//
// In steady state it allocates nothing per event: the Event it yields
// aliases the Stream's buffers, valid until the loop continues. Copy what
// you keep (string(ev.Data), or ev.Clone()).
//
// # Ending and reconnecting
//
// A Stream ends, yielding one last non-nil error, when its context ends, on
// a *StatusError (any status other than 200, or a Content-Type other than
// text/event-stream), or on an event larger than Options.MaxEventSize
// (ErrEventTooLarge). Everything else is retried, as Backoff says: a refused
// or broken connection, nothing read for Options.ReadTimeout, a stream the
// server ended. The WHATWG standard has a browser's EventSource fail for
// good on any status but 200, 503 and the other 5xx included (which is why
// fastsse answers a draining server's new streams with 200 and a retry hint,
// not 503); this client does the same, so a 503 stops it: wrap Stream in a
// loop of your own to retry those.
//
// # fastsse's gap signal
//
// When a fastsse server cannot resume from the Last-Event-ID a client sent
// (the id is older than its replay ring, or from another process), it sends
// first an event of type "lasse-gap" whose data is that id and whose id is
// the group's current position. The client calls Options.OnGap with the id
// it had asked from (and then does not yield the event); without OnGap the
// event is yielded as is.
//
// # Peers' servers
//
// The same client reads tmaxmax/go-sse and r3labs/sse servers, set up as
// their READMEs show (bench/servers tests it). What differs is on their
// side:
//
//   - Neither resumes by default (go-sse's Joe without a Replayer, r3labs
//     with AutoReplay off): the client sends Last-Event-ID, and the events
//     published while it was away are lost, with no gap signal to say so.
//   - r3labs/sse parses every Last-Event-ID as a decimal number and answers
//     any other with 400, which stops this client for good, as it would a
//     browser; ids that carry an epoch ("epoch-7") do not survive it. With
//     AutoReplay on, it replays from its log every event whose id is at
//     least the one sent, the client's last event included.
//   - Neither library sends heartbeats or retry hints of its own (the
//     bench servers publish comment heartbeats themselves), so ReadTimeout
//     must exceed the feed's longest silence; and go-sse writes the response
//     header only with a stream's first message, so until then the stream
//     looks stalled.
//
// Their clients differ too: r3labs/sse's does not reconnect after a clean
// end of stream, gives up after 15 minutes of backoff, and hands heartbeat
// comments to the caller as events without data; go-sse's has no read
// timeout.
package sseclient
