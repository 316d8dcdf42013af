package fastsse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// transportCase serves an endpoint on one of the three transports.
type transportCase struct {
	name string
	// transport is the Options.Transport to build the endpoint with.
	transport fastsse.Transport
	// serve serves ep on 127.0.0.1:0 until the test ends; it returns the
	// address.
	serve func(tb testing.TB, ep *fastsse.Endpoint) string
}

var transportCases = []transportCase{
	{"stream", fastsse.TransportStream, serveFast},
	{"dense", fastsse.TransportDense, serveFast},
	{"http", fastsse.TransportStream, func(tb testing.TB, ep *fastsse.Endpoint) string {
		return startHTTP(tb, ep, ep.HTTPHandler(), false)
	}},
}

func serveFast(tb testing.TB, ep *fastsse.Endpoint) string {
	return startServer(tb, ep.ServeFastHTTP).Addr
}

// eachTransportCase runs f as a subtest per transport.
func eachTransportCase(t *testing.T, f func(t *testing.T, tc transportCase)) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) { f(t, tc) })
	}
}

// onTransport builds an endpoint on tc's transport.
func onTransport[S any](tb testing.TB, tc transportCase, h fastsse.Handler[S], opts fastsse.Options) *fastsse.Endpoint {
	tb.Helper()
	opts.Transport = tc.transport
	ep, err := fastsse.New(h, &opts)
	require.NoError(tb, err)
	return ep
}

// startHTTP serves h from a net/http server on 127.0.0.1:0 (HTTP/1.1, and
// HTTP/2 without TLS when h2c is set). At cleanup it drains ep and closes
// the server.
func startHTTP(tb testing.TB, ep *fastsse.Endpoint, h http.Handler, h2c bool) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: waitFor}
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(tb, ep.Drain(ctx, 0))
		require.NoError(tb, srv.Shutdown(ctx))
		<-done
	})
	return ln.Addr().String()
}

// TestBlockingCallbackStallsNoOther: one stream's HandleNotify sleeps; on
// every transport, the other streams' next deliveries do not wait for it.
func TestBlockingCallbackStallsNoOther(t *testing.T) {
	const n, sleep = 1000, 1500 * time.Millisecond
	eachTransportCase(t, func(t *testing.T, tc transportCase) {
		p := newProbe()
		blocking := make(chan struct{}, 1)
		h := &funcs[struct{}]{p: p, notify: func(msg any, s struct{}) fastsse.Result[struct{}] {
			if msg == "block" {
				blocking <- struct{}{}
				time.Sleep(sleep)
			}
			return fastsse.Send(fastsse.Event{Data: fmt.Sprint(msg)}, s)
		}}
		ep := onTransport(t, tc, h, fastsse.Options{Heartbeat: -1})
		addr := tc.serve(t, ep)
		clients := dialMany(t, addr, "/", n)
		conns := make([]*fastsse.Conn, n)
		for i, c := range clients {
			conns[i] = p.connOf(t, c)
			c.start()
		}
		require.NoError(t, conns[0].Notify("block"))
		recv(t, blocking, "the blocking callback")
		start := time.Now()
		for _, c := range conns[1:] {
			require.NoError(t, c.Notify("x"))
		}
		for _, c := range clients[1:] {
			require.Equal(t, "x", c.Data(t))
		}
		took := time.Since(start)
		t.Logf("%d other streams delivered in %v while one callback slept %v", n-1, took, sleep)
		assert.Less(t, took, sleep/3, "the other streams waited for the blocking callback")
		require.Equal(t, "block", clients[0].Data(t))
	})
}

// TestHTTP10GetsCloseDelimitedBody: an HTTP/1.0 client reads the body up to
// the connection's close; chunked encoding (which fasthttp would use) is
// forbidden in a reply to it and would put chunk sizes into the events.
func TestHTTP10GetsCloseDelimitedBody(t *testing.T) {
	eachTransportCase(t, func(t *testing.T, tc transportCase) {
		var evs []fastsse.Event
		for i := range 200 {
			evs = append(evs, fastsse.Event{ID: fmt.Sprint(i), Data: strings.Repeat("d", i*7%300) + "\nline two"})
		}
		p := newProbe()
		h := &funcs[struct{}]{p: p, init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
			return fastsse.Open(struct{}{}, evs...)
		}}
		ep := onTransport(t, tc, h, fastsse.Options{Heartbeat: -1})
		addr := tc.serve(t, ep)
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer nc.Close()
		_, err = io.WriteString(nc, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		conn := p.conn(t)
		// Wait for the initial events before ending the stream.
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Empty(t, resp.TransferEncoding, "Transfer-Encoding in a reply to HTTP/1.0")
		assert.Equal(t, int64(-1), resp.ContentLength)
		go func() {
			time.Sleep(200 * time.Millisecond)
			_ = conn.Close()
		}()
		_ = nc.SetReadDeadline(time.Now().Add(waitFor))
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err, "the body ends with the connection")
		got := fastsse.ParseAll(body)
		require.Len(t, got, len(evs))
		for i, ev := range got {
			require.Equal(t, evs[i].ID, ev.ID)
			require.Equal(t, evs[i].Data, ev.Data)
		}
		require.ErrorIs(t, p.term(t), fastsse.ErrStopped)
	})
}

// TestEndedStreamClosesConnection: when the server ends a stream (Drain
// here), the connection closes too, so that a browser's reconnect opens a
// new one rather than failing on the old ("other side closed").
func TestEndedStreamClosesConnection(t *testing.T) {
	eachTransportCase(t, func(t *testing.T, tc transportCase) {
		p := newProbe()
		ep := onTransport(t, tc, &funcs[struct{}]{p: p}, fastsse.Options{Heartbeat: -1})
		addr := tc.serve(t, ep)
		c := dial(t, addr, "GET", "/")
		p.conn(t)
		assert.True(t, c.Resp.Close, "Connection: close")
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, ep.Drain(ctx, 0))
		body, err := c.readAll()
		require.NoError(t, err)
		assert.Contains(t, body, "retry: ")
		// The server must close the connection: a read past the body
		// gets EOF, not a wait for the next response.
		_ = c.conn.SetReadDeadline(time.Now().Add(waitFor))
		n, err := c.conn.Read(make([]byte, 1))
		assert.Equal(t, 0, n)
		assert.ErrorIs(t, err, io.EOF)
	})
}

// TestGoneClientSeenAfterReadTimeout: fasthttp leaves Server.ReadTimeout's
// deadline on the connection; past it, a client that left an idle stream
// is still seen at the next heartbeat, not at the third failed write.
func TestGoneClientSeenAfterReadTimeout(t *testing.T) {
	const hb, readTimeout = time.Second, 200 * time.Millisecond
	p := newProbe()
	ep := onTransport(t, transportCases[0], &funcs[struct{}]{p: p}, fastsse.Options{Heartbeat: hb})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP, ReadTimeout: readTimeout}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	c := dial(t, ln.Addr().String(), "GET", "/")
	p.conn(t)
	time.Sleep(2 * readTimeout) // the read deadline passes
	left := time.Now()
	c.Close()
	reason := p.term(t)
	took := time.Since(left)
	require.ErrorIs(t, reason, fastsse.ErrClientGone)
	// Heartbeats go out between 1 and 1.25 intervals after the last write.
	assert.Less(t, took, hb*5/4+time.Second, "a gone client was noticed late: %v", reason)
}

// TestHTTP2Multiplexed: on net/http, many streams share one HTTP/2
// connection (h2c here), each with its own events, and the Request view
// reads the same as on fasthttp.
func TestHTTP2Multiplexed(t *testing.T) {
	const n = 20
	p := newProbe()
	var mu sync.Mutex
	var protos []int
	h := &funcs[string]{p: p, init: func(_ any, lastID string, req *fastsse.Request) fastsse.InitResult[string] {
		mu.Lock()
		protos = append(protos, req.HTTPRequest().ProtoMajor)
		mu.Unlock()
		ev := fastsse.Event{Data: fmt.Sprintf("%s %s %s %s %v", req.Param("topic"), req.Query("q"), req.Header("X-Test"), lastID, req.RemoteAddr() != nil)}
		return fastsse.Open(req.Param("topic"), ev)
	}, notify: func(msg any, topic string) fastsse.Result[string] {
		return fastsse.Send(fastsse.Event{Data: topic + ":" + fmt.Sprint(msg)}, topic)
	}}
	ep, err := fastsse.New(h, &fastsse.Options{Heartbeat: -1})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/feed/{topic}", ep.HTTPHandler())
	addr := startHTTP(t, ep, mux, true)

	var pr http.Protocols
	pr.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &pr}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	var dials int
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		dials++
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bodies := make([]*bufio.Reader, n)
	for i := range n {
		req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/feed/t%d?q=%d", addr, i, i), nil)
		require.NoError(t, err)
		req.Header.Set("X-Test", "h")
		req.Header.Set("Last-Event-ID", "7")
		resp, err := cl.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 2, resp.ProtoMajor)
		require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		bodies[i] = bufio.NewReader(resp.Body)
		require.Equal(t, fmt.Sprintf("data: t%d %d h 7 true", i, i), readLine(t, bodies[i]))
	}
	assert.Equal(t, 1, dials, "the streams share one connection")
	for range n {
		require.NoError(t, p.conn(t).Notify("hi"))
	}
	got := map[string]bool{}
	for i := range n {
		readLine(t, bodies[i]) // the blank line that ends the initial event
		got[readLine(t, bodies[i])] = true
	}
	for i := range n {
		assert.True(t, got[fmt.Sprintf("data: t%d:hi", i)], "stream %d", i)
	}
	mu.Lock()
	assert.Equal(t, []int{2}, uniq(protos))
	mu.Unlock()
	cancel() // the client goes: every stream sees its context end
	for range n {
		require.ErrorIs(t, p.term(t), fastsse.ErrClientGone)
	}
}

func readLine(tb testing.TB, r *bufio.Reader) string {
	tb.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- res{strings.TrimSuffix(s, "\n"), err}
	}()
	x := recv(tb, ch, "a line")
	require.NoError(tb, x.err)
	return x.s
}

func uniq(xs []int) []int {
	var out []int
	seen := map[int]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// unflushable is a ResponseWriter that writes every byte through at once
// but cannot flush, as AWS Lambda's streaming response writer does.
type unflushable struct {
	w http.ResponseWriter
	f *http.ResponseController
}

func (u unflushable) Header() http.Header { return u.w.Header() }
func (u unflushable) WriteHeader(s int)   { u.w.WriteHeader(s) }
func (u unflushable) Write(b []byte) (int, error) {
	n, err := u.w.Write(b)
	if err == nil {
		err = u.f.Flush()
	}
	return n, err
}

// TestHTTPWriterWithoutFlush: a ResponseWriter that cannot flush is written
// to as it is, not refused.
func TestHTTPWriterWithoutFlush(t *testing.T) {
	p := newProbe()
	ep, err := fastsse.New[struct{}](&funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: -1})
	require.NoError(t, err)
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep.HTTPHandler().ServeHTTP(unflushable{w, http.NewResponseController(w)}, r)
	})
	addr := startHTTP(t, ep, wrap, false)
	c := dial(t, addr, "GET", "/").start()
	conn := p.conn(t)
	for i := range 3 {
		require.NoError(t, conn.Notify(i))
		require.Equal(t, fmt.Sprintf("notify:%d", i), c.Data(t))
	}
	require.NoError(t, conn.Close())
	require.ErrorIs(t, p.term(t), fastsse.ErrStopped)
	assert.Zero(t, p.nerrs.Load(), "HandleError was called")
}

// TestStallTimeoutEvicts: a client that stops reading is ended as a slow
// consumer once a write has stalled for StallTimeout, on every transport.
func TestStallTimeoutEvicts(t *testing.T) {
	eachTransportCase(t, func(t *testing.T, tc transportCase) {
		p := newProbe()
		ep := onTransport(t, tc, &funcs[struct{}]{p: p}, fastsse.Options{
			Heartbeat: -1, StallTimeout: 300 * time.Millisecond, QueueSize: 1 << 16, Overflow: fastsse.OverflowDropNewest,
		})
		addr := tc.serve(t, ep)
		c := dial(t, addr, "GET", "/") // never read
		_ = c
		conn := p.conn(t)
		big := fastsse.Event{Data: strings.Repeat("x", 64<<10)}
		deadline := time.Now().Add(waitFor)
		for conn.Err() == nil && time.Now().Before(deadline) {
			if err := conn.Notify(big); err != nil && !errors.Is(err, fastsse.ErrQueueFull) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		require.ErrorIs(t, p.term(t), fastsse.ErrSlowConsumer)
		assert.Equal(t, int64(1), ep.Stats().SlowConsumers)
	})
}
