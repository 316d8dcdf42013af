package fastsse_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// open starts a routed server with one endpoint at /events and opens a
// stream on it.
func open(t *testing.T, h *funcs[struct{}], opts *fastsse.Options) (*testServer, *fastsse.Endpoint, *client, *fastsse.Conn) {
	t.Helper()
	ep := newEndpoint(t, h, opts)
	s := routed(t, mount{"/events", ep})
	c := dial(t, s.Addr, "GET", "/events").start()
	require.Equal(t, http.StatusOK, c.Resp.StatusCode)
	return s, ep, c, h.p.conn(t)
}

func TestConnAfterEnd(t *testing.T) {
	ends := map[string]func(t *testing.T, c *client, conn *fastsse.Conn){
		"Stop":        func(t *testing.T, _ *client, conn *fastsse.Conn) { require.NoError(t, conn.Notify("stop")) },
		"Close":       func(t *testing.T, _ *client, conn *fastsse.Conn) { require.NoError(t, conn.Close()) },
		"client gone": func(_ *testing.T, c *client, _ *fastsse.Conn) { c.Close() },
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			p := newProbe()
			_, _, c, conn := open(t, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: 20 * time.Millisecond})
			end(t, c, conn)
			waitDone(t, conn)
			require.Error(t, conn.Err())
			for i := 0; i < 3; i++ {
				assert.ErrorIs(t, conn.Notify("late"), fastsse.ErrClosed)
				assert.ErrorIs(t, conn.Info("late"), fastsse.ErrClosed)
				assert.ErrorIs(t, conn.Close(), fastsse.ErrClosed)
			}
			// A timer firing after the end is dropped without a panic.
			fired := make(chan struct{})
			conn.SendAfter(time.Millisecond, "late")
			time.AfterFunc(5*time.Millisecond, func() { close(fired) })
			recv(t, fired, "timers")
			assert.Equal(t, int64(1), p.nterms.Load())
		})
	}
}

func TestConnAfterRefusal(t *testing.T) {
	p := newProbe()
	h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
		return fastsse.NoContent(struct{}{})
	}}
	s := routed(t, mount{"/events", newEndpoint(t, h, nil)})
	resp, _ := plain(t, "GET", "http://"+s.Addr+"/events")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	conn := p.conn(t)
	waitDone(t, conn)
	assert.ErrorIs(t, conn.Err(), fastsse.ErrRefused)
	assert.ErrorIs(t, conn.Notify("x"), fastsse.ErrClosed)
	assert.ErrorIs(t, conn.Info("x"), fastsse.ErrClosed)
	assert.ErrorIs(t, conn.Close(), fastsse.ErrClosed)
	assert.ErrorIs(t, p.term(t), fastsse.ErrRefused)
}

func TestSendAfter(t *testing.T) {
	p := newProbe()
	_, _, c, conn := open(t, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: -1})
	start := time.Now()
	conn.SendAfter(30*time.Millisecond, "later")
	assert.Equal(t, "info:later", c.Data(t), "delivered to HandleInfo")
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

	tm := conn.SendAfter(time.Hour, "never")
	assert.True(t, tm.Stop(), "the timer can be cancelled")
	require.NoError(t, conn.Notify("stop"))
	assert.NoError(t, c.End(t))
	assert.Len(t, c.Events(), 1)
}

func TestStats(t *testing.T) {
	p := newProbe()
	h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
		return fastsse.Open(struct{}{}, fastsse.Event{ID: "0", Data: "initial"})
	}}
	ep := newEndpoint(t, h, &fastsse.Options{Heartbeat: -1})
	assert.Equal(t, fastsse.Stats{}, ep.Stats())
	s := routed(t, mount{"/events", ep})

	var clients []*client
	var conns []*fastsse.Conn
	for i := 0; i < 2; i++ {
		clients = append(clients, dial(t, s.Addr, "GET", "/events").start())
		conns = append(conns, p.conn(t))
	}
	st := ep.Stats()
	assert.Equal(t, int64(2), st.Open)
	assert.Equal(t, int64(2), st.Opened)

	for i, conn := range conns {
		for j := 0; j < 3; j++ {
			require.NoError(t, conn.Notify(fmt.Sprintf("%d.%d", i, j)))
		}
		require.NoError(t, conn.Notify(fastsse.Event{}), "invalid: not an event written")
	}
	total := 0
	for _, c := range clients {
		for j := 0; j < 4; j++ {
			c.Event(t)
		}
		total += len(c.Raw())
	}
	eventually(t, func() bool { return ep.Stats().Events == 8 }, "Events = 8, have %+v", ep.Stats())
	eventually(t, func() bool { return ep.Stats().Bytes == int64(total) }, "Bytes = %d, have %+v", total, ep.Stats())

	require.NoError(t, conns[0].Close())
	waitDone(t, conns[0])
	eventually(t, func() bool { return ep.Stats().Open == 1 }, "Open = 1")
	st = ep.Stats()
	assert.Equal(t, fastsse.Stats{Open: 1, Opened: 2, Events: 8, Bytes: int64(total), Ends: fastsse.EndCounts{Stopped: 1}}, st)

	// A refused stream is never open.
	resp, _ := plain(t, "POST", "http://"+s.Addr+"/events")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, st, ep.Stats())
}

func TestReply(t *testing.T) {
	p := newProbe()
	h := &funcs[struct{}]{p: p, init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
		req.SetHeader("X-Reason", "maintenance")
		req.SetHeader("Content-Type", "text/plain; charset=utf-8")
		req.SetHeader("Retry-After", "120")
		var status int
		_, _ = fmt.Sscan(req.Query("status"), &status)
		return fastsse.Reply(status, []byte("come back later"), struct{}{})
	}}
	s := routed(t, mount{"/events", newEndpoint(t, h, nil)})

	resp, body := plain(t, "GET", "http://"+s.Addr+"/events?status=503")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "come back later", body)
	assert.Equal(t, "maintenance", resp.Header.Get("X-Reason"))
	assert.Equal(t, "120", resp.Header.Get("Retry-After"))
	assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.ErrorIs(t, p.term(t), fastsse.ErrRefused)

	for _, status := range []int{0, 99, 199, 600, 1000, -1} {
		resp, body := plain(t, "GET", fmt.Sprintf("http://%s/events?status=%d", s.Addr, status))
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "status %d", status)
		assert.NotContains(t, body, "come back later")
		assert.ErrorIs(t, p.term(t), fastsse.ErrRefused, "status %d", status)
	}
	assert.Equal(t, int64(7), p.nterms.Load())
}

func TestNoContent(t *testing.T) {
	p := newProbe()
	h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
		return fastsse.NoContent(struct{}{})
	}}
	ep := newEndpoint(t, h, nil)
	s := routed(t, mount{"/events", ep})
	resp, body := plain(t, "GET", "http://"+s.Addr+"/events")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, body)
	assert.NotEqual(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.ErrorIs(t, p.term(t), fastsse.ErrRefused)
	assert.Equal(t, int64(1), p.nterms.Load())
	assert.Zero(t, ep.Stats().Opened)
}

func TestMethodNotAllowed(t *testing.T) {
	p := newProbe()
	s := routed(t, mount{"/events", newEndpoint(t, &funcs[struct{}]{p: p}, nil)})
	for _, method := range []string{"POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			resp, body := plain(t, method, "http://"+s.Addr+"/events")
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
			assert.Equal(t, "GET", resp.Header.Get("Allow"))
			assert.NotEqual(t, "text/event-stream", resp.Header.Get("Content-Type"))
			if method == "HEAD" {
				assert.Empty(t, body)
			}
		})
	}
	assert.Zero(t, p.inits.Load(), "Init is never called")
	assert.Zero(t, p.nterms.Load())
}

// reqView is what Init saw of the request, and the request itself, kept past
// Init to check that it reads as zero values afterwards.
type reqView struct {
	req                                       *fastsse.Request
	method, path, query, header, param, empty string
	remote                                    net.Addr
	ctxSet                                    bool
}

func TestRequestView(t *testing.T) {
	p := newProbe()
	views := make(chan reqView, 1)
	h := &funcs[*fastsse.Request]{p: p,
		init: func(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[*fastsse.Request] {
			views <- reqView{
				req: req, method: req.Method(), path: req.Path(), query: req.Query("q"),
				header: req.Header("X-Test"), param: req.Param("room"), empty: req.Param("none") + req.Query("none") + req.Header("X-None"),
				remote: req.RemoteAddr(), ctxSet: req.Ctx() != nil,
			}
			return fastsse.Open(req, fastsse.Event{Data: "last id " + lastEventID})
		},
		// Runs after Init returned: every accessor answers its zero value.
		notify: func(_ any, req *fastsse.Request) fastsse.Result[*fastsse.Request] {
			req.SetHeader("X-Too-Late", "x") // ignored, no panic
			after := fmt.Sprintf("method=%q path=%q query=%q header=%q param=%q remote=%v ctx=%v conn=%v",
				req.Method(), req.Path(), req.Query("q"), req.Header("X-Test"), req.Param("room"),
				req.RemoteAddr(), req.Ctx() != nil, req.Conn() != nil)
			return fastsse.Send(fastsse.Event{Data: after}, req)
		},
	}
	ep := newEndpoint(t, h, &fastsse.Options{Heartbeat: -1})
	s := routed(t, mount{"/rooms/{room}", ep})

	c := dial(t, s.Addr, "GET", "/rooms/lobby?q=1&q=2", "X-Test", "yes", "Last-Event-ID", "9").start()
	require.Equal(t, http.StatusOK, c.Resp.StatusCode)
	conn := p.conn(t)
	v := recv(t, views, "Init")
	assert.Equal(t, "GET", v.method)
	assert.Equal(t, "/rooms/lobby", v.path)
	assert.Equal(t, "1", v.query, "the first value")
	assert.Equal(t, "yes", v.header)
	assert.Equal(t, "lobby", v.param)
	assert.Empty(t, v.empty)
	assert.True(t, v.ctxSet)
	require.NotNil(t, v.remote)
	assert.Equal(t, c.conn.LocalAddr().String(), v.remote.String())
	assert.Same(t, conn, v.req.Conn())
	assert.Equal(t, "last id 9", c.Data(t))

	require.NoError(t, conn.Notify("check"))
	assert.Equal(t, `method="" path="" query="" header="" param="" remote=<nil> ctx=false conn=true`, c.Data(t))
}

// Messages sent during Init wait for the initial events.
func TestInitialEventsFirst(t *testing.T) {
	p := newProbe()
	h := &funcs[struct{}]{p: p, init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
		conn := req.Conn()
		for _, m := range []string{"n1", "i1", "n2"} {
			var err error
			if m[0] == 'i' {
				err = conn.Info(m)
			} else {
				err = conn.Notify(m)
			}
			if err != nil {
				panic(err)
			}
		}
		return fastsse.Open(struct{}{}, fastsse.Event{Data: "initial 1"}, fastsse.Event{Data: "initial 2"})
	}}
	s := routed(t, mount{"/events", newEndpoint(t, h, &fastsse.Options{Heartbeat: -1})})
	want := []string{"initial 1", "initial 2", "notify:n1", "info:i1", "notify:n2"}
	for i := 0; i < 20; i++ {
		c := dial(t, s.Addr, "GET", "/events").start()
		conn := p.conn(t)
		var got []string
		for range want {
			got = append(got, c.Data(t))
		}
		require.Equal(t, want, got, "run %d", i)
		require.NoError(t, conn.Close())
		require.NoError(t, c.End(t))
		c.Close()
	}
}

// The stream's own headers, and a header set in Init.
func TestOpenHeaders(t *testing.T) {
	p := newProbe()
	h := &funcs[struct{}]{p: p, init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
		req.SetHeader("Access-Control-Allow-Origin", "*")
		req.SetHeader("Content-Type", "text/plain") // the stream's own wins
		return fastsse.Open(struct{}{})
	}}
	_, _, c, conn := open(t, h, &fastsse.Options{Heartbeat: -1})
	assert.Equal(t, "text/event-stream", c.Resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", c.Resp.Header.Get("Cache-Control"))
	assert.Equal(t, "no", c.Resp.Header.Get("X-Accel-Buffering"))
	assert.Equal(t, "*", c.Resp.Header.Get("Access-Control-Allow-Origin"))
	assert.True(t, strings.EqualFold(c.Resp.TransferEncoding[0], "chunked"))
	require.NoError(t, conn.Close())
	assert.NoError(t, c.End(t))
}
