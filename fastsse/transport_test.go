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
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startHTTP serves h from a net/http server on 127.0.0.1:0 (HTTP/1.1, and
// HTTP/2 without TLS when h2c is set), for the tests of the net/http
// transport's own settings; at cleanup it drains ep and shuts down.
func startHTTP(tb testing.TB, ep *fastsse.Endpoint, h http.Handler, h2c bool) string {
	tb.Helper()
	ln := ssetest.Listen(tb)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: ssetest.Wait}
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ssetest.Wait)
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
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			blocking := make(chan struct{}, 1)
			h := &funcs[struct{}]{p: p, notify: func(msg any, s struct{}) fastsse.Result[struct{}] {
				if msg == "block" {
					blocking <- struct{}{}
					time.Sleep(sleep)
				}
				return fastsse.Send(fastsse.Event{Data: fmt.Sprint(msg)}, s)
			}}
			_, srv := ssetest.Start[struct{}](t, tr, h, &fastsse.Options{Heartbeat: -1})
			clients := ssetest.DialMany(t, srv.Addr, "/", n)
			conns := make([]*fastsse.Conn, n)
			for i, c := range clients {
				conns[i] = p.connOf(t, c)
				c.Start()
			}
			require.NoError(t, conns[0].Notify("block"))
			ssetest.Recv(t, blocking, "the blocking callback")
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
}

// TestHTTP10GetsCloseDelimitedBody: an HTTP/1.0 client reads the body up to
// the connection's close; chunked encoding (which fasthttp would use) is
// forbidden in a reply to it and would put chunk sizes into the events.
func TestHTTP10GetsCloseDelimitedBody(t *testing.T) {
	var evs []fastsse.Event
	for i := range 200 {
		evs = append(evs, fastsse.Event{ID: fmt.Sprint(i), Data: strings.Repeat("d", i*7%300) + "\nline two"})
	}
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			h := &funcs[struct{}]{p: p, init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
				return fastsse.Open(struct{}{}, evs...)
			}}
			_, srv := ssetest.Start[struct{}](t, tr, h, &fastsse.Options{Heartbeat: -1})
			c, err := ssetest.DialRaw(srv.Addr, []byte("GET / HTTP/1.0\r\nHost: x\r\n\r\n"))
			require.NoError(t, err)
			defer c.Close()
			require.Equal(t, http.StatusOK, c.Status)
			assert.False(t, c.Chunked(), "Transfer-Encoding: chunked in a reply to HTTP/1.0:\n%s", c.Head)
			assert.Empty(t, c.Header("Content-Length"))
			conn := p.conn(t)
			go func() {
				time.Sleep(200 * time.Millisecond)
				_ = conn.Close()
			}()
			body, err := c.ReadAll()
			require.NoError(t, err, "the body ends with the connection")
			got := ssespec.ParseAll([]byte(body))
			require.Len(t, got, len(evs))
			for i, ev := range got {
				require.Equal(t, evs[i].ID, ev.ID)
				require.Equal(t, evs[i].Data, ev.Data)
			}
			require.ErrorIs(t, p.term(t), fastsse.ErrStopped)
		})
	}
}

// TestEndedStreamClosesConnection: when the server ends a stream (Drain
// here), the connection closes too, so that a browser's reconnect opens a
// new one rather than failing on the old ("other side closed").
func TestEndedStreamClosesConnection(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			ep, srv := ssetest.Start[struct{}](t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: -1})
			c := ssetest.Dial(t, srv.Addr, "GET", "/")
			p.conn(t)
			assert.Equal(t, "close", strings.ToLower(c.Header("Connection")))
			ctx, cancel := context.WithTimeout(context.Background(), ssetest.Wait)
			defer cancel()
			require.NoError(t, ep.Drain(ctx, 0))
			body, err := c.ReadAll()
			require.NoError(t, err)
			assert.Contains(t, body, "retry: ")
			// The server must close the connection: a read past the body
			// gets EOF, not a wait for the next response.
			_ = c.Conn.SetReadDeadline(time.Now().Add(ssetest.Wait))
			n, err := c.Reader().Read(make([]byte, 1))
			assert.Equal(t, 0, n)
			assert.ErrorIs(t, err, io.EOF)
		})
	}
}

// TestGoneClientSeenAfterReadTimeout: the server's ReadTimeout deadline
// stays on the connection once the request is read (fasthttp); past it, a
// client that left an idle stream is still seen at the next heartbeat, not
// at the third failed write, and a client that stays keeps its stream
// (net/http would cancel the request's context at ReadTimeout).
func TestGoneClientSeenAfterReadTimeout(t *testing.T) {
	const hb, readTimeout = time.Second, 200 * time.Millisecond
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			ep := ssetest.New[struct{}](t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: hb})
			srv := tr.ServeWith(t, ssetest.Listen(t), ep, ssetest.Config{ReadTimeout: readTimeout})
			stays := ssetest.Dial(t, srv.Addr, "GET", "/").Start()
			c := ssetest.Dial(t, srv.Addr, "GET", "/")
			kept, _ := p.conn(t), p.conn(t)
			time.Sleep(3 * readTimeout) // the read deadline passes
			left := time.Now()
			c.Close()
			reason := p.term(t)
			took := time.Since(left)
			require.ErrorIs(t, reason, fastsse.ErrClientGone)
			// Heartbeats go out between 1 and 1.25 intervals after the last write.
			assert.Less(t, took, hb*5/4+time.Second, "a gone client was noticed late: %v", reason)
			assert.Equal(t, int64(1), ep.Stats().Open, "the client that stayed lost its stream")
			require.NoError(t, kept.Notify("still here"))
			assert.Equal(t, "notify:still here", stays.Data(t))
		})
	}
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
	x := ssetest.Recv(tb, ch, "a line")
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
	c := ssetest.Dial(t, addr, "GET", "/").Start()
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
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			ep, srv := ssetest.Start[struct{}](t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{
				Heartbeat: -1, StallTimeout: 300 * time.Millisecond, QueueSize: 1 << 16, Overflow: fastsse.OverflowDropNewest,
			})
			ssetest.Dial(t, srv.Addr, "GET", "/") // never read
			conn := p.conn(t)
			big := fastsse.Event{Data: strings.Repeat("x", 64<<10)}
			deadline := time.Now().Add(ssetest.Wait)
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
}
