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
// The same client reads tmaxmax/go-sse and r3labs/sse servers (the tests in
// bench/servers run it against both). What differs is on their side:
// go-sse sends the response header with the stream's first message, so a
// silent stream looks stalled until then; neither sends heartbeats of its
// own, so ReadTimeout must be longer than the feed's longest silence;
// neither ends streams with a retry hint, and r3labs/sse replays its whole
// event log from the Last-Event-ID on, while go-sse without a Replayer
// resumes nothing (events published while the client was away are lost
// silently: there is no gap signal).
package sseclient
