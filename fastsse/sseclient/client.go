package sseclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// gapType is the type of fastsse's gap signal: an event that a server sends
// first when it cannot resume from the Last-Event-ID it was given. Its data
// is that id, its id the group's current position.
const gapType = "lasse-gap"

// healthyAfter is how long a connection must stay open for the backoff to
// start again from Backoff.Initial.
// (A variable for the tests.)
var healthyAfter = time.Minute

// errReadIdle is the error of a connection on which nothing arrived within
// Options.ReadTimeout.
var errReadIdle = errors.New("sseclient: nothing received within ReadTimeout")

// errUsed is yielded when Events is called a second time.
var errUsed = errors.New("sseclient: Events called more than once")

// Event is one dispatched event. Its slices alias the Stream's buffers:
// they are valid until the iteration that yielded the event continues (the
// next event or the end), and must not be modified. Use Clone to keep one.
type Event struct {
	// ID is the stream's last event id when the event was dispatched: the
	// event's own id field, or the last one before it (the standard carries
	// it over). Empty when the stream has set none.
	ID []byte
	// Type is the event type: "message" when the event named none.
	Type []byte
	// Data is the event's data, its lines joined with LF.
	Data []byte
}

// Clone returns a copy of e that owns its bytes.
func (e Event) Clone() Event {
	return Event{ID: clone(e.ID), Type: clone(e.Type), Data: clone(e.Data)}
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// StatusError is the error that ends a Stream for good when the server
// answers with a status other than 200 (204 included: the server's way to
// say "stop"), or with a Content-Type other than text/event-stream.
type StatusError struct {
	StatusCode  int
	ContentType string // the answer's Content-Type header, as sent
}

func (e *StatusError) Error() string {
	if e.StatusCode == http.StatusOK {
		return fmt.Sprintf("sseclient: Content-Type %q is not text/event-stream", e.ContentType)
	}
	return fmt.Sprintf("sseclient: status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// Stream is one event source: a URL read and re-read until its context
// ends or the server says stop. Build it with Connect, read it with Events
// or Run, once. A Stream is not safe for concurrent use.
type Stream struct {
	ctx    context.Context
	url    string
	opts   Options
	client *http.Client
	own    *http.Transport // set when the client is the Stream's own
	header http.Header     // the request header but Last-Event-ID
	err    error           // bad input found by Connect
	used   atomic.Bool

	p        parser
	failures int    // failed attempts in a row (since a healthy connection)
	asked    string // the Last-Event-ID sent on the current connection
	sleep    *time.Timer
}

// Connect returns the Stream of events at rawURL; it connects when Events
// (or Run) is first iterated, and reconnects as Options say until ctx ends.
// opts may be nil (all defaults); it is copied. Bad input (a nil ctx, a URL
// that is not http or https, a negative option) is the first and only error
// that Events yields.
func Connect(ctx context.Context, rawURL string, opts *Options) *Stream {
	s := &Stream{ctx: ctx, url: rawURL}
	if opts != nil {
		s.opts = *opts
	}
	s.err = s.opts.setDefaults()
	if ctx == nil {
		s.ctx, s.err = context.Background(), errors.New("sseclient: nil context")
	} else if u, err := url.Parse(rawURL); err != nil {
		s.err = fmt.Errorf("sseclient: %w", err)
	} else if u.Scheme != "http" && u.Scheme != "https" {
		s.err = fmt.Errorf("sseclient: URL %q: scheme is not http or https", rawURL)
	}
	s.client = s.opts.Client
	if s.client == nil {
		s.own = http.DefaultTransport.(*http.Transport).Clone()
		s.client = &http.Client{Transport: s.own}
	}
	s.header = make(http.Header, len(s.opts.Header)+2)
	for k, v := range s.opts.Header {
		s.header[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	s.header.Set("Accept", "text/event-stream")
	s.header.Set("Cache-Control", "no-cache")
	s.header.Del("Last-Event-ID")
	s.p.max = s.opts.MaxEventSize
	s.p.lastID = []byte(s.opts.LastEventID)
	return s
}

// Events returns the stream's events, in order, each with a nil error. It
// ends after yielding one non-nil error, the reason the stream stopped for
// good: ctx's error, a *StatusError, an error wrapping ErrEventTooLarge, or
// bad input to Connect. Errors it recovers from (a refused or broken
// connection, a read timeout, the server ending the stream) go to
// Options.OnError, and it reconnects. Breaking out of the loop closes the
// connection. Events may be iterated once.
func (s *Stream) Events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if s.used.Swap(true) {
			yield(Event{}, errUsed)
			return
		}
		if s.err != nil {
			yield(Event{}, s.err)
			return
		}
		defer s.close()
		for {
			fatal, stopped, err := s.attempt(yield)
			if stopped {
				return
			}
			if fatal {
				yield(Event{}, err)
				return
			}
			if cerr := s.ctx.Err(); cerr != nil {
				yield(Event{}, cerr)
				return
			}
			if cerr := s.pause(err); cerr != nil {
				yield(Event{}, cerr)
				return
			}
		}
	}
}

// Run calls fn with every event, as Events yields them, and returns the
// error that ended the stream, or fn's error, which stops it.
func (s *Stream) Run(fn func(Event) error) error {
	for ev, err := range s.Events() {
		if err == nil {
			err = fn(ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Stream) close() {
	if s.sleep != nil {
		s.sleep.Stop()
	}
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
}

// errCleanEnd is the error given to OnError when the server ended a stream
// that had delivered events; it reconnects after the reconnection time.
var errCleanEnd = errors.New("sseclient: the server ended the stream")

// attempt runs one connection: it returns why it ended, whether that is
// for good, and whether the consumer stopped the iteration.
func (s *Stream) attempt(yield func(Event, error) bool) (fatal, stopped bool, err error) {
	if s.own != nil {
		// Runs last: the next attempt opens a connection of its own, which
		// a load balancer may send to another instance (a kept-alive one
		// would go back to the server that ended the stream).
		defer s.own.CloseIdleConnections()
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	var idle *time.Timer
	if s.opts.ReadTimeout > 0 {
		// It bounds the wait for the answer's header too.
		idle = time.AfterFunc(s.opts.ReadTimeout, func() { cancel(errReadIdle) })
		defer idle.Stop()
	}

	resp, err := s.open(ctx)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			return true, false, err
		}
		return false, false, s.failed(ctx, err, 0)
	}
	defer resp.Body.Close()
	opened := time.Now()
	if s.opts.OnConnect != nil {
		s.opts.OnConnect(resp)
	}
	s.p.reset(&idleReader{r: resp.Body, t: idle, d: s.opts.ReadTimeout})
	return s.read(ctx, yield, opened)
}

// read yields the events of the connection opened at opened until it ends,
// with attempt's results.
func (s *Stream) read(ctx context.Context, yield func(Event, error) bool, opened time.Time) (fatal, stopped bool, err error) {
	events := 0
	for {
		ev, rerr := s.p.next()
		if rerr != nil {
			if errors.Is(rerr, ErrEventTooLarge) {
				return true, false, rerr
			}
			lived := time.Since(opened)
			if rerr == io.EOF && events > 0 {
				if lived >= healthyAfter {
					s.failures = 0
				}
				return false, false, errCleanEnd
			}
			if rerr == io.EOF {
				rerr = errors.New("sseclient: the server ended a stream that had sent no event")
			}
			return false, false, s.failed(ctx, rerr, lived)
		}
		events++
		if string(ev.Type) == gapType && s.opts.OnGap != nil {
			s.opts.OnGap(s.asked)
			continue
		}
		if !yield(ev, nil) {
			return false, true, nil
		}
	}
}

// failed counts a failed attempt and returns its error as the caller should
// see it (a read timeout for a connection cut by the idle timer).
func (s *Stream) failed(ctx context.Context, err error, lived time.Duration) error {
	if lived >= healthyAfter {
		s.failures = 0
	}
	s.failures++
	if context.Cause(ctx) == errReadIdle && s.ctx.Err() == nil {
		return errReadIdle
	}
	return err
}

// open sends the request and checks the answer.
func (s *Stream) open(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = s.header.Clone()
	s.asked = string(s.p.lastID)
	if s.asked != "" {
		req.Header.Set("Last-Event-ID", s.asked)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if resp.StatusCode != http.StatusOK || !strings.EqualFold(mt, "text/event-stream") {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
		return nil, &StatusError{StatusCode: resp.StatusCode, ContentType: ct}
	}
	return resp, nil
}

// pause tells OnError of err and waits before the next attempt; it returns
// ctx's error if ctx ends first.
func (s *Stream) pause(err error) error {
	wait := s.reconnectTime()
	if err != errCleanEnd {
		wait = s.opts.Backoff.wait(wait, s.failures, rand.Float64())
	}
	if s.opts.OnError != nil {
		s.opts.OnError(err, wait)
	}
	if s.sleep == nil {
		s.sleep = time.NewTimer(wait)
	} else {
		s.sleep.Reset(wait)
	}
	select {
	case <-s.sleep.C:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// reconnectTime is the server's last retry, or Backoff.Initial.
func (s *Stream) reconnectTime() time.Duration {
	if !s.p.hasRetry {
		return s.opts.Backoff.Initial
	}
	if s.p.retry >= int64(s.opts.Backoff.Max/time.Millisecond) {
		return s.opts.Backoff.Max
	}
	return time.Duration(s.p.retry) * time.Millisecond
}

// idleReader bounds each read with the read-idle timer (nil: no bound).
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

// Read arms the timer only while it waits for the server: a consumer that
// takes its time with an event is not a silent server.
func (ir *idleReader) Read(p []byte) (int, error) {
	if ir.t == nil {
		return ir.r.Read(p)
	}
	ir.t.Reset(ir.d)
	n, err := ir.r.Read(p)
	ir.t.Stop()
	return n, err
}
