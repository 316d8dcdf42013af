package fastsse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/router"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// waitFor bounds every wait for something that should happen soon. It is
// generous: the tests run with -race on a 2-core machine.
const waitFor = 10 * time.Second

// testServer is a fasthttp server on 127.0.0.1:0, shut down at cleanup.
type testServer struct {
	Addr string
	Srv  *fasthttp.Server
	ln   net.Listener
	done chan struct{} // closed when Serve has returned
	log  serverLog
}

// serverLog sends fasthttp's log lines (a connection closed under a write,
// for one) to the test's log while the test runs.
type serverLog struct {
	tb  testing.TB
	off atomic.Bool
}

func (l *serverLog) Printf(format string, args ...any) {
	if !l.off.Load() {
		l.tb.Logf("fasthttp: "+format, args...)
	}
}

// startServer serves h on a fresh loopback port until the test ends.
func startServer(tb testing.TB, h fasthttp.RequestHandler) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	s := &testServer{
		Addr: ln.Addr().String(),
		Srv:  &fasthttp.Server{Handler: h},
		ln:   ln,
		done: make(chan struct{}),
	}
	s.Srv.Logger = &s.log
	s.log.tb = tb
	go func() { _ = s.Srv.Serve(ln); close(s.done) }()
	tb.Cleanup(func() { s.Shutdown(tb) })
	return s
}

// Shutdown shuts the server down and waits for Serve to return. It may be
// called more than once.
func (s *testServer) Shutdown(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := s.Srv.ShutdownWithContext(ctx); err != nil {
		// A stream that does not end would hang the test binary: fail
		// with the stacks of the streams instead.
		tb.Fatalf("Shutdown: %v; stream goroutines:\n%s", err, streamStacks())
	}
	// Shutdown returns at once when Serve has not registered its listener
	// yet; closing the listener makes such a Serve return as well.
	_ = s.ln.Close()
	select {
	case <-s.done:
		s.log.off.Store(true)
	case <-time.After(waitFor):
		tb.Fatal("Serve did not return after Shutdown")
	}
}

// mount is one route of routed.
type mount struct {
	path string
	ep   *fastsse.Endpoint
}

// routed serves the endpoints through fasthttp/router, mounted with
// router.Mount.
func routed(tb testing.TB, mounts ...mount) *testServer {
	tb.Helper()
	r := frouter.New()
	for _, m := range mounts {
		router.Mount(r, m.path, m.ep)
	}
	return startServer(tb, r.Handler)
}

// newEndpoint builds an endpoint on the transport under test
// (FASTSSE_TEST_TRANSPORT) and fails the test on error.
func newEndpoint[S any](tb testing.TB, h fastsse.Handler[S], opts *fastsse.Options) *fastsse.Endpoint {
	tb.Helper()
	ep, err := fastsse.New(h, fastsse.OnTestTransport(opts))
	require.NoError(tb, err)
	require.NotNil(tb, ep)
	return ep
}

// probe records what a handler's callbacks saw. Every channel is buffered
// generously and written without blocking where a stream goroutine writes.
type probe struct {
	inits  atomic.Int64
	conns  chan *fastsse.Conn // every Conn, sent at the start of Init
	nterms atomic.Int64
	terms  chan error // every Terminate reason
	nerrs  atomic.Int64
	errs   chan handledErr // every HandleError call
	byAddr sync.Map        // client address → *fastsse.Conn
}

type handledErr struct {
	ev  fastsse.Event
	err error
}

func newProbe() *probe {
	return &probe{
		conns: make(chan *fastsse.Conn, 4096),
		terms: make(chan error, 4096),
		errs:  make(chan handledErr, 4096),
	}
}

func (p *probe) sawInit(req *fastsse.Request) {
	p.inits.Add(1)
	if a := req.RemoteAddr(); a != nil {
		p.byAddr.Store(a.String(), req.Conn())
	}
	select {
	case p.conns <- req.Conn():
	default: // a test that opens this many streams uses connOf
	}
}

// connOf waits for the Conn of the stream that c opened.
func (p *probe) connOf(tb testing.TB, c *client) *fastsse.Conn {
	tb.Helper()
	addr := c.conn.LocalAddr().String()
	var conn *fastsse.Conn
	eventually(tb, func() bool {
		v, ok := p.byAddr.Load(addr)
		if ok {
			conn = v.(*fastsse.Conn)
		}
		return ok
	}, "Init for %s", addr)
	return conn
}

func (p *probe) sawTerminate(reason error) {
	p.nterms.Add(1)
	select {
	case p.terms <- reason:
	default:
	}
}

func (p *probe) sawError(ev fastsse.Event, err error) {
	p.nerrs.Add(1)
	select {
	case p.errs <- handledErr{ev, err}:
	default:
	}
}

// conn waits for the next Conn given to Init.
func (p *probe) conn(tb testing.TB) *fastsse.Conn {
	tb.Helper()
	return recv(tb, p.conns, "Init")
}

// term waits for the next Terminate reason.
func (p *probe) term(tb testing.TB) error {
	tb.Helper()
	return recv(tb, p.terms, "Terminate")
}

// handled waits for the next HandleError call.
func (p *probe) handled(tb testing.TB) handledErr {
	tb.Helper()
	return recv(tb, p.errs, "HandleError")
}

func recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitDone waits until c's stream has ended and Terminate has returned.
func waitDone(tb testing.TB, c *fastsse.Conn) {
	tb.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitFor):
		tb.Fatal("timed out waiting for the stream to end")
	}
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(tb testing.TB, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	pause := 100 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting: "+format, args...)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// funcs is a Handler made of functions; the probe records every call. A nil
// function has a default: Init opens with the zero state, HandleNotify and
// HandleInfo answer echo, HandleError keeps the state, Terminate does
// nothing more than record.
type funcs[S any] struct {
	p      *probe
	init   func(args any, lastEventID string, req *fastsse.Request) fastsse.InitResult[S]
	notify func(msg any, s S) fastsse.Result[S]
	info   func(msg any, s S) fastsse.Result[S]
	herr   func(ev fastsse.Event, err error, s S) S
	term   func(reason error, s S)
}

func (h *funcs[S]) Init(args any, lastEventID string, req *fastsse.Request) fastsse.InitResult[S] {
	h.p.sawInit(req)
	if h.init != nil {
		return h.init(args, lastEventID, req)
	}
	var zero S
	return fastsse.Open(zero)
}

func (h *funcs[S]) HandleNotify(msg any, s S) fastsse.Result[S] {
	if h.notify != nil {
		return h.notify(msg, s)
	}
	return echo("notify", msg, s)
}

func (h *funcs[S]) HandleInfo(msg any, s S) fastsse.Result[S] {
	if h.info != nil {
		return h.info(msg, s)
	}
	return echo("info", msg, s)
}

func (h *funcs[S]) HandleError(ev fastsse.Event, err error, s S) S {
	h.p.sawError(ev, err)
	if h.herr != nil {
		return h.herr(ev, err, s)
	}
	return s
}

func (h *funcs[S]) Terminate(reason error, s S) {
	h.p.sawTerminate(reason)
	if h.term != nil {
		h.term(reason, s)
	}
}

// echo is the default message handling: "stop" stops, an Event is sent as
// is, anything else is sent as data "<kind>:<msg>".
func echo[S any](kind string, msg any, s S) fastsse.Result[S] {
	switch m := msg.(type) {
	case fastsse.Event:
		return fastsse.Send(m, s)
	case string:
		if m == "stop" {
			return fastsse.Stop(s)
		}
	}
	return fastsse.Send(fastsse.Event{Data: fmt.Sprintf("%s:%v", kind, msg)}, s)
}

// client is one HTTP/1.1 request on its own TCP connection, read by
// net/http's response parser (http.ReadResponse: chunked decoding and all),
// so that a test controls the connection itself: it can close it, or stop
// reading. No goroutine runs for it until start.
type client struct {
	conn net.Conn
	Resp *http.Response

	reading bool
	mu      sync.Mutex
	raw     []byte // the body read so far: the event stream's bytes
	parser  fastsse.SpecParser
	evs     []fastsse.SpecEvent
	next    int
	ended   bool
	endErr  error         // nil when the body ended cleanly (final chunk)
	changed chan struct{} // capacity 1: the reader got something
	done    chan struct{} // closed when the reader has returned
}

// dial sends method path with the headers (name, value pairs) to addr and
// reads the response's status line and headers. The connection is closed
// and the reader awaited at cleanup.
func dial(tb testing.TB, addr, method, path string, header ...string) *client {
	tb.Helper()
	c, err := dialErr(addr, method, path, header...)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	return c
}

func dialErr(addr, method, path string, header ...string) (*client, error) {
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", method, path, addr)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("\r\n")
	_ = conn.SetDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return &client{conn: conn, Resp: resp, changed: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// start reads the body on a goroutine of its own, parsing it as it comes.
func (c *client) start() *client {
	c.reading = true
	go c.read()
	return c
}

func (c *client) read() {
	defer close(c.done)
	buf := make([]byte, 4096)
	for {
		n, err := c.Resp.Body.Read(buf)
		c.mu.Lock()
		if n > 0 {
			c.raw = append(c.raw, buf[:n]...)
			c.evs = append(c.evs, c.parser.Feed(buf[:n])...)
		}
		if err != nil {
			c.ended = true
			if err != io.EOF {
				c.endErr = err
			}
		}
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// Close closes the connection and waits for the reader, if any.
func (c *client) Close() {
	_ = c.conn.Close()
	if c.reading {
		<-c.done
	}
}

// until waits, up to waitFor, for cond to hold over the client's state
// (called with c.mu held) and reports whether it did.
func (c *client) until(cond func() bool) bool {
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			return false
		}
	}
}

// Event returns the next event the client received, waiting for it.
func (c *client) Event(tb testing.TB) fastsse.SpecEvent {
	tb.Helper()
	if !c.until(func() bool { return c.next < len(c.evs) || c.ended }) {
		tb.Fatalf("no event within %v; raw so far %q", waitFor, c.Raw())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == len(c.evs) {
		tb.Fatalf("stream ended (%v) before the next event; raw %q", c.endErr, c.raw)
	}
	ev := c.evs[c.next]
	c.next++
	return ev
}

// Data returns the next event's data.
func (c *client) Data(tb testing.TB) string {
	tb.Helper()
	return c.Event(tb).Data
}

// WaitRaw waits until the body holds at least n bytes and returns it all.
func (c *client) WaitRaw(tb testing.TB, n int) string {
	tb.Helper()
	if !c.until(func() bool { return len(c.raw) >= n || c.ended }) {
		tb.Fatalf("no %d bytes within %v; raw so far %q", n, waitFor, c.Raw())
	}
	return c.Raw()
}

// Raw returns the body bytes read so far.
func (c *client) Raw() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.raw)
}

// End waits for the body to end and returns nil when it ended cleanly, with
// the final chunk, or the read error.
func (c *client) End(tb testing.TB) error {
	tb.Helper()
	if !c.until(func() bool { return c.ended }) {
		tb.Fatalf("the stream did not end within %v; raw so far %q", waitFor, c.Raw())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endErr
}

// Events returns every event received so far, consumed or not.
func (c *client) Events() []fastsse.SpecEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fastsse.SpecEvent(nil), c.evs...)
}

// readAll reads the rest of the body without a reader goroutine, with a
// deadline, and returns it with nil for a clean end.
func (c *client) readAll() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(waitFor))
	b, err := io.ReadAll(c.Resp.Body)
	return string(b), err
}

// plain does one ordinary request with net/http's client and returns the
// response with its body read.
func plain(tb testing.TB, method, url string, header ...string) (*http.Response, string) {
	tb.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: waitFor}
	req, err := http.NewRequest(method, url, nil)
	require.NoError(tb, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := cl.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp, string(body)
}

// isWriteReason reports whether reason is what Terminate gets after a
// failed write.
func isWriteReason(reason error) bool {
	return errors.Is(reason, fastsse.ErrClientGone) || errors.Is(reason, fastsse.ErrWriteFailed)
}

// isEncoderErr reports whether err is one of the encoder's errors.
func isEncoderErr(err error) bool {
	for _, e := range []error{fastsse.ErrDataRequired, fastsse.ErrInvalidID, fastsse.ErrInvalidType, fastsse.ErrInvalidRetry} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// dialMany opens n streams to addr, a few at a time, and reads their
// response headers. No reader goroutine runs for them.
func dialMany(tb testing.TB, addr, path string, n int) []*client {
	tb.Helper()
	clients := make([]*client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	const workers = 16
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				clients[i], errs[i] = dialErr(addr, "GET", path)
			}
		}()
	}
	wg.Wait()
	for i, c := range clients {
		if c != nil {
			tb.Cleanup(c.Close)
		}
		require.NoError(tb, errs[i], "stream %d", i)
		require.Equal(tb, http.StatusOK, c.Resp.StatusCode)
	}
	return clients
}

// streamGoroutines counts the goroutines that serve streams: the loops, the
// fasthttp stream writers that run them, and heartbeat wheels.
func streamGoroutines() int { return len(streamGoroutineStacks()) }

// streamStacks returns the stacks of the goroutines that serve streams.
func streamStacks() string { return strings.Join(streamGoroutineStacks(), "\n\n") }

func streamGoroutineStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "fastsse.(*turn") || strings.Contains(g, "fastsse.(*core).heartbeats") ||
			strings.Contains(g, "fasthttp.NewStreamReader") {
			out = append(out, g)
		}
	}
	return out
}
