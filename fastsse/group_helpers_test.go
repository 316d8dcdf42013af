package fastsse

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// Helpers for the Group and replay tests and benchmarks. Every top-level name
// starts with grp so as not to clash with other test files of the package.

// grpWait bounds every wait in these tests: generous, for a 2-core machine
// under -race. A passing test never waits that long.
const grpWait = 10 * time.Second

// grpHandler is a Handler[int] whose Init and HandleNotify a test sets. The
// state counts the events HandleNotify sent.
type grpHandler struct {
	// init decides Init's answer; nil opens the stream with no initial event.
	init func(lastID string, req *Request) InitResult[int]
	// notify answers HandleNotify; nil sends Event{Data: fmt.Sprint(msg)}.
	notify func(msg any, n int) Result[int]
	// conns, when not nil, receives every Conn after Init. Size it for
	// every stream the test opens: Init blocks on it.
	conns chan *Conn
}

func (h *grpHandler) Init(_ any, lastID string, req *Request) InitResult[int] {
	res := Open(0)
	if h.init != nil {
		res = h.init(lastID, req)
	}
	if h.conns != nil {
		h.conns <- req.Conn()
	}
	return res
}

func (h *grpHandler) HandleNotify(msg any, n int) Result[int] {
	if h.notify != nil {
		return h.notify(msg, n)
	}
	return Send(Event{Data: fmt.Sprint(msg)}, n+1)
}

func (h *grpHandler) HandleInfo(_ any, n int) Result[int]     { return NoSend(n) }
func (h *grpHandler) HandleError(_ Event, _ error, n int) int { return n }
func (h *grpHandler) Terminate(_ error, _ int)                {}

// grpJoinInit returns an Init that joins the connection to g.
func grpJoinInit(g *Group) func(string, *Request) InitResult[int] {
	return func(_ string, req *Request) InitResult[int] {
		if err := g.Join(req.Conn()); err != nil {
			return Reply(http.StatusInternalServerError, []byte(err.Error()), 0)
		}
		return Open(0)
	}
}

// grpNopLogger silences fasthttp: a test's clients hang up on purpose.
type grpNopLogger struct{}

func (grpNopLogger) Printf(string, ...any) {}

// grpServer is a real fasthttp server serving one Endpoint.
type grpServer struct {
	ep   *Endpoint
	addr string                   // the TCP address; "" for an in-memory server
	dial func() (net.Conn, error) // a new client connection to it
}

// grpServe serves h on 127.0.0.1:0. Cleanup shuts the server down and waits
// for Serve to return; register clients after it, so that they are closed
// first.
func grpServe(tb testing.TB, h Handler[int], opts *Options) *grpServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &grpServer{addr: ln.Addr().String()}
	s.dial = func() (net.Conn, error) { return net.Dial("tcp", s.addr) }
	s.ep = grpServeOn(tb, ln, h, opts)
	return s
}

// grpServeMem serves h on fasthttp's in-memory listener: the same server,
// streams and HTTP/1.1 framing, with connections made of in-process pipes
// (fasthttputil.PipeConns, bounded like a socket: four buffers each way)
// instead of sockets. It exists so that one process can hold more
// connections than its open-files cap allows with both sides in it.
func grpServeMem(tb testing.TB, h Handler[int], opts *Options) *grpServer {
	tb.Helper()
	ln := fasthttputil.NewInmemoryListener()
	s := &grpServer{dial: ln.Dial}
	s.ep = grpServeOn(tb, ln, h, opts)
	return s
}

func grpServeOn(tb testing.TB, ln net.Listener, h Handler[int], opts *Options) *Endpoint {
	tb.Helper()
	ep, err := New[int](h, OnTestTransport(opts))
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP, Logger: grpNopLogger{}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grpWait)
		defer cancel()
		if err := srv.ShutdownWithContext(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		select {
		case <-served:
		case <-time.After(grpWait):
			tb.Errorf("Serve did not return after Shutdown")
		}
	})
	return ep
}

// grpClient is one event-stream client on a raw connection: it writes the
// GET itself and reads the response with net/http's parser
// (http.ReadResponse, which undoes the chunked framing), so it holds one
// goroutine, not a Transport's three.
type grpClient struct {
	conn net.Conn
	// events gets every event the spec parser dispatches, in order; closed
	// when the stream ends. Nil when the client only counts.
	events chan specEvent
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	err    error // why reading stopped; read after done is closed
}

// grpGet opens a stream on s with Last-Event-ID lastID (none when empty) and
// forwards its events to c.events (capacity buf). Cleanup closes it.
func grpGet(tb testing.TB, s *grpServer, lastID string, buf int) *grpClient {
	tb.Helper()
	c, err := grpOpen(s, lastID, make(chan specEvent, buf), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.close)
	return c
}

// grpOpen opens a stream on s. With events set, the parsed events go there;
// with count set, it is called with the number of events ("\n\n") in each
// read, without parsing (the benchmarks' clients, whose streams carry only
// LF line breaks and no heartbeats). The caller closes the client.
func grpOpen(s *grpServer, lastID string, events chan specEvent, count func(int)) (*grpClient, error) {
	conn, err := s.dial()
	if err != nil {
		return nil, err
	}
	req := "GET /events HTTP/1.1\r\nHost: grp.test\r\nAccept: text/event-stream\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(grpWait))
	br := bufio.NewReader(conn)
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		_ = conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("reading response head: %w", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		_ = conn.Close()
		return nil, fmt.Errorf("response %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	_ = conn.SetDeadline(time.Time{})
	c := &grpClient{conn: conn, events: events, quit: make(chan struct{}), done: make(chan struct{})}
	go c.read(resp, count)
	return c, nil
}

func (c *grpClient) read(resp *http.Response, count func(int)) {
	defer close(c.done)
	if c.events != nil {
		defer close(c.events)
	}
	var p specParser
	b := make([]byte, 32<<10)
	last := byte(0) // the last byte of the previous read, for a "\n\n" split across reads
	for {
		n, err := resp.Body.Read(b)
		if n > 0 && count != nil {
			k := bytes.Count(b[:n], []byte("\n\n"))
			if last == '\n' && b[0] == '\n' {
				k++
			}
			last = b[n-1]
			if k > 0 {
				count(k)
			}
		}
		if n > 0 && c.events != nil {
			for _, ev := range p.Feed(b[:n]) {
				select {
				case c.events <- ev:
				case <-c.quit:
					c.err = net.ErrClosed
					return
				}
			}
		}
		if err != nil {
			c.err = err
			return
		}
	}
}

// close hangs up and waits for the reader to stop.
func (c *grpClient) close() {
	c.once.Do(func() {
		close(c.quit)
		_ = c.conn.Close()
		select {
		case <-c.done:
		case <-time.After(grpWait):
			panic("grpClient: reader did not stop")
		}
	})
}

// next returns the next event, failing the test when none comes within d or
// the stream ended.
func (c *grpClient) next(tb testing.TB, d time.Duration) specEvent {
	tb.Helper()
	ev, err := c.nextErr(d)
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

// nextErr is next for goroutines other than the test's: it reports instead
// of failing.
func (c *grpClient) nextErr(d time.Duration) (specEvent, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev, ok := <-c.events:
		if !ok {
			<-c.done
			return specEvent{}, fmt.Errorf("stream ended: %v", c.err)
		}
		return ev, nil
	case <-t.C:
		return specEvent{}, fmt.Errorf("no event within %v", d)
	}
}

// grpExpectIDs reads len(ids) events and checks their ids in order.
func grpExpectIDs(c *grpClient, d time.Duration, ids ...string) error {
	for i, id := range ids {
		ev, err := c.nextErr(d)
		if err != nil {
			return fmt.Errorf("event %d of %d (want id %q): %w", i+1, len(ids), id, err)
		}
		if ev.ID != id {
			return fmt.Errorf("event %d of %d: id %q, want %q (data %.40q)", i+1, len(ids), ev.ID, id, ev.Data)
		}
	}
	return nil
}

// grpSeq returns the ids from, from+1, ..., to as strings.
func grpSeq(from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return s
}

// grpEventually polls cond until it holds or grpWait passes.
func grpEventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(grpWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// grpRecv receives from ch within grpWait.
func grpRecv[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(grpWait):
		tb.Fatalf("nothing received within %v", grpWait)
		panic("unreachable")
	}
}

// grpDone waits for c's stream to have ended.
func grpDone(tb testing.TB, c *Conn) {
	tb.Helper()
	select {
	case <-c.Done():
	case <-time.After(grpWait):
		tb.Fatalf("stream did not end within %v", grpWait)
	}
}

// grpBareConn returns a Conn of ep's with no stream behind it: what a stream
// holds, minus the network, for Group tests that look only at what lands in
// the queue. The test drains it with grpTake; cleanup ends it as a stream
// would.
func grpBareConn(tb testing.TB, ep *Endpoint) *Conn {
	c := newConn(ep.core, nil)
	tb.Cleanup(func() { grpEnd(c, ErrStopped) })
	return c
}

// grpEnd ends a bare Conn the way a stream ends: no more messages, then the
// end hooks (Group.Leave) and Done.
func grpEnd(c *Conn, reason error) {
	if c.markEnded(reason) {
		c.finish()
	}
}

// grpTake drains c's queue as its stream's goroutine would and returns the
// items, oldest first.
func grpTake(c *Conn) []item {
	q, _ := c.take()
	if q == nil {
		return nil
	}
	var its []item
	for q.n > 0 {
		its = append(its, q.pop())
	}
	c.core.rings.put(q)
	return its
}

// grpFrameIDs parses the frames among its as a client would and returns the
// events' ids, "|"-joined.
func grpFrameIDs(its []item) string {
	var b []byte
	for _, it := range its {
		if it.kind == kindFrame {
			b = append(b, it.frame.Bytes()...)
		}
	}
	var ids []string
	for _, ev := range parseAll(b) {
		ids = append(ids, ev.ID)
	}
	return strings.Join(ids, "|")
}
