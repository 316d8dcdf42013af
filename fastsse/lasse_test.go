package fastsse_test

// lasse's own suite, test/lasse_handler_SUITE.erl in inaka/lasse, case by
// case, against a real fasthttp server through package router, read by a
// real HTTP client. lasse's test handlers (events_handler.erl,
// initial_events_handler.erl, no_content_handler.erl, shutdown_handler.erl)
// are ported below; lasse registers each stream's process under the
// "process-name" header, these handlers hand the *Conn to the test instead.

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eventsHandler is events_handler.erl: the state is the Last-Event-ID.
type eventsHandler struct{ *probe }

func (h eventsHandler) Init(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[string] {
	h.sawInit(req)
	return fastsse.Open(lastEventID)
}

func (eventsHandler) HandleNotify(msg any, state string) fastsse.Result[string] {
	switch msg {
	case "send":
		return fastsse.Send(fastsse.Event{Data: "notify chunk"}, state)
	case "send_id":
		return fastsse.Send(fastsse.Event{ID: "1", Data: "notify chunk", Event: ""}, state)
	case "no_data":
		return fastsse.Send(fastsse.Event{ID: "1", Event: "no_data"}, state)
	case "nosend":
		return fastsse.NoSend(state)
	case "comments":
		return fastsse.Send(fastsse.Event{Comment: "Comment 1\nComment 2", Data: "some data"}, state)
	case "last_event_id":
		return fastsse.Send(fastsse.Event{Data: state}, state)
	case "stop":
		return fastsse.Stop(state)
	}
	panic(fmt.Sprintf("events_handler: no clause for %v", msg)) // lasse: function_clause
}

func (eventsHandler) HandleInfo(msg any, state string) fastsse.Result[string] {
	switch msg {
	case "send":
		return fastsse.Send(fastsse.Event{Data: "info chunk"}, state)
	case "nosend":
		return fastsse.NoSend(state)
	case "stop":
		return fastsse.Stop(state)
	}
	panic(fmt.Sprintf("events_handler: no clause for %v", msg))
}

func (h eventsHandler) HandleError(ev fastsse.Event, err error, state string) string {
	h.sawError(ev, err)
	return state
}

func (h eventsHandler) Terminate(reason error, _ string) { h.sawTerminate(reason) }

// lasseApp is lasse's test application: its four routes on one router.
type lasseApp struct {
	*ssetest.Server
	events, initial, noContent, shutdown *probe
}

func startLasseApp(t *testing.T, tr ssetest.Transport) *lasseApp {
	t.Helper()
	a := &lasseApp{events: newProbe(), initial: newProbe(), noContent: newProbe(), shutdown: newProbe()}
	opts := &fastsse.Options{Heartbeat: -1} // lasse sends none; keep the bytes exact
	a.Server = routed(t,
		mount{"/events", ssetest.New[string](t, tr, eventsHandler{a.events}, opts)},
		// initial_events_handler.erl
		mount{"/initial-events", ssetest.New(t, tr, &funcs[struct{}]{p: a.initial,
			init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
				return fastsse.Open(struct{}{}, fastsse.Event{Data: "initial 1"}, fastsse.Event{Data: "initial 2"})
			}}, opts)},
		// no_content_handler.erl
		mount{"/no_content", ssetest.New(t, tr, &funcs[struct{}]{p: a.noContent,
			init: func(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
				return fastsse.NoContent(struct{}{})
			}}, opts)},
		// shutdown_handler.erl
		mount{"/shutdown", ssetest.New(t, tr, &funcs[struct{}]{p: a.shutdown,
			init: func(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
				req.SetHeader("Content-Type", "text/html")
				return fastsse.Reply(404, []byte("Sorry, shutdown!"), struct{}{})
			}}, opts)},
	)
	return a
}

// get opens an event stream (lasse's get/3,4) and returns the client and
// the stream's Conn (lasse's registered process).
func (a *lasseApp) get(t *testing.T, path string, header ...string) (*ssetest.Client, *fastsse.Conn) {
	t.Helper()
	c := ssetest.Dial(t, a.Addr, "GET", path, header...)
	require.Equal(t, http.StatusOK, c.Status)
	require.Equal(t, "text/event-stream", c.Header("Content-Type"))
	c.Start()
	return c, a.events.conn(t)
}

func TestLasse_send_and_receive_two_chunks(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c, conn := a.get(t, "/events")

			require.NoError(t, conn.Notify("send")) // lasse_handler:notify(ProcName, send)
			assert.Equal(t, ssespec.Event{Type: "message", Data: "notify chunk"}, c.Event(t))

			require.NoError(t, conn.Info("send")) // ProcName ! send
			assert.Equal(t, ssespec.Event{Type: "message", Data: "info chunk"}, c.Event(t))

			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t), "stop ends the body cleanly")
			assert.ErrorIs(t, a.events.term(t), fastsse.ErrStopped)
			assert.Equal(t, "data: notify chunk\n\ndata: info chunk\n\n", c.Raw())
		})
	}
}

func TestLasse_send_and_do_not_receive_anything(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c, conn := a.get(t, "/events")

			require.NoError(t, conn.Notify("nosend"))
			require.NoError(t, conn.Info("nosend"))
			// lasse waits and sees nothing; messages are handled in order, so the
			// first thing written after the two nosends is this event.
			require.NoError(t, conn.Notify("send"))
			assert.Equal(t, "notify chunk", c.Data(t))
			assert.Equal(t, "data: notify chunk\n\n", c.Raw(), "nosend wrote nothing")

			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
			assert.ErrorIs(t, a.events.term(t), fastsse.ErrStopped)
			assert.Zero(t, a.events.nerrs.Load())
		})
	}
}

func TestLasse_send_and_receive_initial_events(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c := ssetest.Dial(t, a.Addr, "GET", "/initial-events").Start()
			require.Equal(t, http.StatusOK, c.Status)
			conn := a.initial.conn(t)

			assert.Equal(t, "initial 1", c.Data(t))
			assert.Equal(t, "initial 2", c.Data(t))
			assert.Equal(t, "data: initial 1\n\ndata: initial 2\n\n", c.Raw())

			require.NoError(t, conn.Close())
			assert.NoError(t, c.End(t))
			assert.ErrorIs(t, a.initial.term(t), fastsse.ErrStopped)
		})
	}
}

func TestLasse_send_data_and_id(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c, conn := a.get(t, "/events")

			require.NoError(t, conn.Notify("send_id"))
			assert.Equal(t, ssespec.Event{Type: "message", Data: "notify chunk", ID: "1", IDSet: true}, c.Event(t))
			// lasse's event => <<"">> writes no event field.
			assert.Equal(t, "id: 1\ndata: notify chunk\n\n", c.Raw())

			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
		})
	}
}

func TestLasse_send_comments_and_data(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c, conn := a.get(t, "/events")

			require.NoError(t, conn.Notify("comments"))
			assert.Equal(t, "some data", c.Data(t))
			// lasse's raw chunk, with the blank line that ends the event.
			assert.Equal(t, ": Comment 1\n: Comment 2\ndata: some data\n\n", c.Raw())

			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
		})
	}
}

func TestLasse_do_not_send_data(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c, conn := a.get(t, "/events")

			require.NoError(t, conn.Notify("no_data"))
			he := a.events.handled(t)
			assert.ErrorIs(t, he.err, fastsse.ErrDataRequired)
			assert.Equal(t, fastsse.Event{ID: "1", Event: "no_data"}, he.ev)

			// Nothing of the invalid event was written, and the stream goes on.
			require.NoError(t, conn.Notify("send"))
			assert.Equal(t, "notify chunk", c.Data(t))
			assert.Equal(t, "data: notify chunk\n\n", c.Raw())
			assert.Nil(t, conn.Err(), "still open")

			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
			assert.ErrorIs(t, a.events.term(t), fastsse.ErrStopped)
		})
	}
}

func TestLasse_send_post_and_fail(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			resp, _ := ssetest.Get(t, "POST", "http://"+a.Addr+"/events", "process-name", "send_post_and_fail")
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
			assert.Equal(t, "GET", resp.Header.Get("Allow"))
			assert.Zero(t, a.events.inits.Load(), "Init is never called")
		})
	}
}

func TestLasse_check_no_content(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			resp, body := ssetest.Get(t, "GET", "http://"+a.Addr+"/no_content")
			assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			assert.Empty(t, body)
			assert.ErrorIs(t, a.noContent.term(t), fastsse.ErrRefused)
		})
	}
}

func TestLasse_send_last_event_id(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c, conn := a.get(t, "/events", "Last-Event-ID", "42")

			require.NoError(t, conn.Notify("last_event_id"))
			assert.Equal(t, "42", c.Data(t))

			require.NoError(t, conn.Notify("stop"))
			assert.NoError(t, c.End(t))
		})
	}
}

// lasse mocks a failed chunk write; here the client really goes away.
func TestLasse_cause_chunk_to_fail(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			c := ssetest.Dial(t, a.Addr, "GET", "/events")
			require.Equal(t, http.StatusOK, c.Status)
			conn := a.events.conn(t)
			c.Close()

			// Every notify writes a chunk; fasthttp notices the closed connection a
			// write or two later.
			ssetest.Eventually(t, func() bool {
				select {
				case <-conn.Done():
					return true
				default:
				}
				if err := conn.Notify("send"); err != nil {
					require.ErrorIs(t, err, fastsse.ErrClosed)
				}
				return false
			}, "the stream to notice the closed connection")

			reason := a.events.term(t)
			assert.True(t, isWriteReason(reason), "Terminate reason %v", reason)
			assert.ErrorIs(t, reason, fastsse.ErrClientGone)
			// On the dense transport epoll may see the close before any notify
			// produced an event: then no event failed, and HandleError is not
			// called. Otherwise it got the event and the write error.
			if a.events.nerrs.Load() > 0 || tr.Name != "dense" {
				he := a.events.handled(t)
				require.Error(t, he.err)
				assert.False(t, isEncoderErr(he.err), "HandleError got the write error, not %v", he.err)
				assert.Equal(t, "notify chunk", he.ev.Data, "the event whose write failed")
				assert.ErrorIs(t, reason, he.err, "the reason wraps the write error")
			}
			assert.Equal(t, reason, conn.Err())
			assert.Equal(t, int64(1), a.events.nterms.Load())
			assert.ErrorIs(t, conn.Notify("send"), fastsse.ErrClosed)
		})
	}
}

func TestLasse_shutdown(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			a := startLasseApp(t, tr)
			resp, body := ssetest.Get(t, "GET", "http://"+a.Addr+"/shutdown")
			assert.Equal(t, 404, resp.StatusCode)
			assert.Equal(t, "Sorry, shutdown!", body)
			assert.Equal(t, "text/html", resp.Header.Get("Content-Type"))
			assert.ErrorIs(t, a.shutdown.term(t), fastsse.ErrRefused)

			// The same request as an event stream: no events.
			c := ssetest.Dial(t, a.Addr, "GET", "/shutdown")
			assert.Equal(t, 404, c.Status)
			raw, err := c.ReadAll()
			require.NoError(t, err)
			assert.Empty(t, ssespec.ParseAll([]byte(raw)))
			assert.ErrorIs(t, a.shutdown.term(t), fastsse.ErrRefused)
			assert.Equal(t, int64(2), a.shutdown.nterms.Load())
		})
	}
}

// nilHandler's methods are never called: New refuses a typed nil.
type nilHandler struct{}

func (*nilHandler) Init(any, string, *fastsse.Request) fastsse.InitResult[int] {
	return fastsse.Open(0)
}
func (*nilHandler) HandleNotify(_ any, s int) fastsse.Result[int] { return fastsse.NoSend(s) }
func (*nilHandler) HandleInfo(_ any, s int) fastsse.Result[int]   { return fastsse.NoSend(s) }
func (*nilHandler) HandleError(_ fastsse.Event, _ error, s int) int {
	return s
}
func (*nilHandler) Terminate(error, int) {}

// lasse throws module_option_missing; New returns ErrNilHandler.
func TestLasse_init_without_module_option(t *testing.T) {
	ep, err := fastsse.New[struct{}](nil, nil) // Opts = []
	assert.ErrorIs(t, err, fastsse.ErrNilHandler)
	assert.Nil(t, ep)

	ep, err = fastsse.New[struct{}](nil, &fastsse.Options{InitArgs: []any{}}) // #{init_args => []}
	assert.ErrorIs(t, err, fastsse.ErrNilHandler)
	assert.Nil(t, ep)

	var typedNil *nilHandler
	ep, err = fastsse.New[int](typedNil, nil)
	assert.ErrorIs(t, err, fastsse.ErrNilHandler)
	assert.Nil(t, ep)
}

func TestLasse_init_with_module_option(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			type initArgs struct{ name string }
			args := &initArgs{"dummy_handler"}
			p := newProbe()
			type initCall struct {
				args        any
				lastEventID string
			}
			got := make(chan initCall, 1)
			h := &funcs[struct{}]{p: p, init: func(a any, lastEventID string, _ *fastsse.Request) fastsse.InitResult[struct{}] {
				got <- initCall{a, lastEventID}
				return fastsse.Open(struct{}{})
			}}
			ep := ssetest.New[struct{}](t, tr, h, &fastsse.Options{InitArgs: args})
			s := tr.Serve(t, ep)

			c := ssetest.Dial(t, s.Addr, "GET", "/events")
			assert.Equal(t, http.StatusOK, c.Status)
			assert.Equal(t, "text/event-stream", c.Header("Content-Type"))
			assert.Equal(t, "no-cache", c.Header("Cache-Control"))
			call := ssetest.Recv(t, got, "Init")
			assert.Same(t, args, call.args, "InitArgs reach Init")
			assert.Empty(t, call.lastEventID, "no Last-Event-ID header")
			require.NoError(t, p.conn(t).Close())
			raw, err := c.ReadAll()
			assert.NoError(t, err)
			assert.Empty(t, raw)
			assert.ErrorIs(t, p.term(t), fastsse.ErrStopped)
		})
	}
}
