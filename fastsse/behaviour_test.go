package fastsse_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// open serves an endpoint for h on tr and opens a
// stream on it.
func open(t *testing.T, tr ssetest.Transport, h *funcs[struct{}], opts *fastsse.Options) (*ssetest.Server, *fastsse.Endpoint, *ssetest.Client, *fastsse.Conn) {
	t.Helper()
	ep := ssetest.New(t, tr, h, opts)
	s := tr.Serve(t, ep)
	c := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
	require.Equal(t, http.StatusOK, c.Status)
	return s, ep, c, h.p.conn(t)
}

func TestConnAfterEnd(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			ends := map[string]func(t *testing.T, c *ssetest.Client, conn *fastsse.Conn){
				"Stop":        func(t *testing.T, _ *ssetest.Client, conn *fastsse.Conn) { require.NoError(t, conn.Notify("stop")) },
				"Close":       func(t *testing.T, _ *ssetest.Client, conn *fastsse.Conn) { require.NoError(t, conn.Close()) },
				"client gone": func(_ *testing.T, c *ssetest.Client, _ *fastsse.Conn) { c.Close() },
			}
			for name, end := range ends {
				t.Run(name, func(t *testing.T) {
					p := newProbe()
					_, _, c, conn := open(t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: 20 * time.Millisecond})
					end(t, c, conn)
					ssetest.WaitDone(t, conn)
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
					ssetest.Recv(t, fired, "timers")
					assert.Equal(t, int64(1), p.nterms.Load())
				})
			}
		})
	}
}

func TestConnAfterRefusal(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
				return fastsse.NoContent(struct{}{})
			}}
			s := tr.Serve(t, ssetest.New(t, tr, h, nil))
			resp, _ := ssetest.Get(t, "GET", "http://"+s.Addr+"/events")
			assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			conn := p.conn(t)
			ssetest.WaitDone(t, conn)
			assert.ErrorIs(t, conn.Err(), fastsse.ErrRefused)
			assert.ErrorIs(t, conn.Notify("x"), fastsse.ErrClosed)
			assert.ErrorIs(t, conn.Info("x"), fastsse.ErrClosed)
			assert.ErrorIs(t, conn.Close(), fastsse.ErrClosed)
			assert.ErrorIs(t, p.term(t), fastsse.ErrRefused)
		})
	}
}

func TestSendAfter(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			p := newProbe()
			_, _, c, conn := open(t, tr, &funcs[struct{}]{p: p}, &fastsse.Options{Heartbeat: -1})
			start := time.Now()
			conn.SendAfter(30*time.Millisecond, "later")
			assert.Equal(t, "info:later", c.Data(t), "delivered to HandleInfo")
			assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

			tm := conn.SendAfter(time.Hour, "never")
			assert.True(t, tm.Stop(), "the timer can be cancelled")
			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
			assert.Len(t, c.Events(), 1)
		})
	}
}

func TestStats(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
				return fastsse.Open(struct{}{}, fastsse.Event{ID: "0", Data: "initial"})
			}}
			ep := ssetest.New(t, tr, h, &fastsse.Options{Heartbeat: -1})
			assert.Equal(t, fastsse.Stats{}, ep.Stats())
			s := tr.Serve(t, ep)

			var clients []*ssetest.Client
			var conns []*fastsse.Conn
			for i := 0; i < 2; i++ {
				clients = append(clients, ssetest.Dial(t, s.Addr, "GET", "/events").Start())
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
			ssetest.Eventually(t, func() bool { return ep.Stats().Events == 8 }, "Events = 8, have %+v", ep.Stats())
			ssetest.Eventually(t, func() bool { return ep.Stats().Bytes == int64(total) }, "Bytes = %d, have %+v", total, ep.Stats())

			require.NoError(t, conns[0].Close())
			ssetest.WaitDone(t, conns[0])
			ssetest.Eventually(t, func() bool { return ep.Stats().Open == 1 }, "Open = 1")
			st = ep.Stats()
			assert.Equal(t, fastsse.Stats{Open: 1, Opened: 2, Events: 8, Bytes: int64(total), Ends: fastsse.EndCounts{Stopped: 1}}, st)

			// A refused stream is never open.
			resp, _ := ssetest.Get(t, "POST", "http://"+s.Addr+"/events")
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
			assert.Equal(t, st, ep.Stats())
		})
	}
}

func TestReply(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			h := &funcs[struct{}]{p: p, init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
				req.SetHeader("X-Reason", "maintenance")
				req.SetHeader("Content-Type", "text/plain; charset=utf-8")
				req.SetHeader("Retry-After", "120")
				var status int
				_, _ = fmt.Sscan(req.Query("status"), &status)
				return fastsse.Reply(status, []byte("come back later"), struct{}{})
			}}
			s := tr.Serve(t, ssetest.New(t, tr, h, nil))

			resp, body := ssetest.Get(t, "GET", "http://"+s.Addr+"/events?status=503")
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, "come back later", body)
			assert.Equal(t, "maintenance", resp.Header.Get("X-Reason"))
			assert.Equal(t, "120", resp.Header.Get("Retry-After"))
			assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
			assert.ErrorIs(t, p.term(t), fastsse.ErrRefused)

			for _, status := range []int{0, 99, 199, 600, 1000, -1} {
				resp, body := ssetest.Get(t, "GET", fmt.Sprintf("http://%s/events?status=%d", s.Addr, status))
				assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "status %d", status)
				assert.NotContains(t, body, "come back later")
				assert.ErrorIs(t, p.term(t), fastsse.ErrRefused, "status %d", status)
			}
			assert.Equal(t, int64(7), p.nterms.Load())
		})
	}
}

func TestNoContent(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			h := &funcs[struct{}]{p: p, init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
				return fastsse.NoContent(struct{}{})
			}}
			ep := ssetest.New(t, tr, h, nil)
			s := tr.Serve(t, ep)
			resp, body := ssetest.Get(t, "GET", "http://"+s.Addr+"/events")
			assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			assert.Empty(t, body)
			assert.NotEqual(t, "text/event-stream", resp.Header.Get("Content-Type"))
			assert.ErrorIs(t, p.term(t), fastsse.ErrRefused)
			assert.Equal(t, int64(1), p.nterms.Load())
			assert.Zero(t, ep.Stats().Opened)
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			s := tr.Serve(t, ssetest.New(t, tr, &funcs[struct{}]{p: p}, nil))
			for _, method := range []string{"POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"} {
				t.Run(method, func(t *testing.T) {
					resp, body := ssetest.Get(t, method, "http://"+s.Addr+"/events")
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
		})
	}
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
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
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
			ep := ssetest.New(t, tr, h, &fastsse.Options{Heartbeat: -1})
			s := routed(t, mount{"/rooms/{room}", ep})

			c := ssetest.Dial(t, s.Addr, "GET", "/rooms/lobby?q=1&q=2", "X-Test", "yes", "Last-Event-ID", "9").Start()
			require.Equal(t, http.StatusOK, c.Status)
			conn := p.conn(t)
			v := ssetest.Recv(t, views, "Init")
			assert.Equal(t, "GET", v.method)
			assert.Equal(t, "/rooms/lobby", v.path)
			assert.Equal(t, "1", v.query, "the first value")
			assert.Equal(t, "yes", v.header)
			assert.Equal(t, "lobby", v.param)
			assert.Empty(t, v.empty)
			assert.True(t, v.ctxSet)
			require.NotNil(t, v.remote)
			assert.Equal(t, c.Conn.LocalAddr().String(), v.remote.String())
			assert.Same(t, conn, v.req.Conn())
			assert.Equal(t, "last id 9", c.Data(t))

			require.NoError(t, conn.Notify("check"))
			assert.Equal(t, `method="" path="" query="" header="" param="" remote=<nil> ctx=false conn=true`, c.Data(t))
		})
	}
}

// Messages sent during Init wait for the initial events.
func TestInitialEventsFirst(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
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
			s := tr.Serve(t, ssetest.New(t, tr, h, &fastsse.Options{Heartbeat: -1}))
			want := []string{"initial 1", "initial 2", "notify:n1", "info:i1", "notify:n2"}
			for i := 0; i < 20; i++ {
				c := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
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
		})
	}
}

// The stream's own headers, and a header set in Init.
func TestOpenHeaders(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			h := &funcs[struct{}]{p: p, init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
				req.SetHeader("Access-Control-Allow-Origin", "*")
				req.SetHeader("Content-Type", "text/plain") // the stream's own wins
				return fastsse.Open(struct{}{})
			}}
			_, _, c, conn := open(t, tr, h, &fastsse.Options{Heartbeat: -1})
			assert.Equal(t, "text/event-stream", c.Header("Content-Type"))
			assert.Equal(t, "no-cache", c.Header("Cache-Control"))
			assert.Equal(t, "no", c.Header("X-Accel-Buffering"))
			assert.Equal(t, "*", c.Header("Access-Control-Allow-Origin"))
			assert.True(t, c.Chunked(), "an HTTP/1.1 stream is chunked")
			require.NoError(t, conn.Close())
			assert.NoError(t, c.End(t))
		})
	}
}
