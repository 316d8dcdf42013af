package fastsse_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panicky panics in the callback named by where, on the message "boom"
// (in HandleError: on the invalid event that "boom" sends; in Terminate:
// always). A connection opened with the query ?init=boom panics in Init.
func panicky(p *probe, where string, value any) *funcs[struct{}] {
	return &funcs[struct{}]{
		p: p,
		init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
			if req.Query("init") == "boom" {
				panic(value)
			}
			return fastsse.Open(struct{}{})
		},
		notify: func(msg any, s struct{}) fastsse.Result[struct{}] {
			if msg == "boom" {
				switch where {
				case "HandleNotify":
					panic(value)
				case "HandleError":
					return fastsse.Send(fastsse.Event{ID: "no data"}, s)
				}
			}
			return echo("notify", msg, s)
		},
		info: func(msg any, s struct{}) fastsse.Result[struct{}] {
			if msg == "boom" && where == "HandleInfo" {
				panic(value)
			}
			return echo("info", msg, s)
		},
		herr: func(_ fastsse.Event, err error, s struct{}) struct{} {
			if where == "HandleError" && errors.Is(err, fastsse.ErrDataRequired) {
				panic(value)
			}
			return s
		},
		term: func(error, struct{}) {
			if where == "Terminate" {
				panic(value)
			}
		},
	}
}

// stillServes checks that the server serves a new stream, and that bystander,
// opened before the panic, still works.
func stillServes(t *testing.T, s *ssetest.Server, p *probe, bystander *ssetest.Client, bconn *fastsse.Conn) {
	t.Helper()
	require.NoError(t, bconn.Notify("still here"))
	assert.Equal(t, "notify:still here", bystander.Data(t))

	c := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
	require.Equal(t, http.StatusOK, c.Status)
	conn := p.conn(t)
	require.NoError(t, conn.Notify("hello"))
	assert.Equal(t, "notify:hello", c.Data(t))
}

func TestPanicInCallback(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			errValue := errors.New("an error value")
			for _, where := range []string{"HandleNotify", "HandleInfo", "HandleError"} {
				t.Run(where, func(t *testing.T) {
					p := newProbe()
					s := tr.Serve(t, ssetest.New(t, tr, panicky(p, where, errValue), &fastsse.Options{Heartbeat: -1}))

					bystander := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
					bconn := p.conn(t)
					c := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
					conn := p.conn(t)

					if where == "HandleInfo" {
						require.NoError(t, conn.Info("boom"))
					} else {
						require.NoError(t, conn.Notify("boom"))
					}
					ssetest.WaitDone(t, conn)
					reason := p.term(t)
					var pe *fastsse.PanicError
					require.ErrorAs(t, reason, &pe)
					assert.Equal(t, errValue, pe.Value)
					assert.NotEmpty(t, pe.Stack)
					assert.ErrorIs(t, reason, errValue, "PanicError unwraps an error value")
					assert.Equal(t, reason, conn.Err())
					assert.Contains(t, reason.Error(), "an error value")
					assert.ErrorIs(t, conn.Notify("x"), fastsse.ErrClosed)
					// The stream's goroutine returned; the body ends with its final
					// chunk, so a browser reconnects.
					assert.NoError(t, c.End(t))
					assert.Empty(t, c.Events())

					stillServes(t, s, p, bystander, bconn)
					assert.Equal(t, int64(1), p.nterms.Load(), "only the panicking stream ended")
				})
			}
		})
	}
}

func TestPanicInTerminate(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			s := tr.Serve(t, ssetest.New(t, tr, panicky(p, "Terminate", "terminate boom"), &fastsse.Options{Heartbeat: -1}))
			bystander := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
			bconn := p.conn(t)
			c := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
			conn := p.conn(t)

			require.NoError(t, conn.Notify("stop"))
			ssetest.WaitDone(t, conn) // Terminate ran and panicked; the stream still ended
			assert.ErrorIs(t, p.term(t), fastsse.ErrStopped)
			assert.ErrorIs(t, conn.Err(), fastsse.ErrStopped)
			assert.NoError(t, c.End(t))
			stillServes(t, s, p, bystander, bconn)
		})
	}
}

func TestPanicInInit(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			p := newProbe()
			ep := ssetest.New(t, tr, panicky(p, "Init", "init boom"), &fastsse.Options{Heartbeat: -1})
			s := tr.Serve(t, ep)
			bystander := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
			bconn := p.conn(t)

			resp, _ := ssetest.Get(t, "GET", "http://"+s.Addr+"/events?init=boom")
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			assert.NotEqual(t, "text/event-stream", resp.Header.Get("Content-Type"))
			conn := p.conn(t)
			ssetest.WaitDone(t, conn)
			var pe *fastsse.PanicError
			require.ErrorAs(t, conn.Err(), &pe)
			assert.Equal(t, "init boom", pe.Value)
			assert.ErrorIs(t, conn.Notify("x"), fastsse.ErrClosed)
			assert.Zero(t, p.nterms.Load(), "no Terminate after a panic in Init")

			stillServes(t, s, p, bystander, bconn)
			assert.Equal(t, int64(2), ep.Stats().Opened, "the panicking Init opened nothing")
		})
	}
}
