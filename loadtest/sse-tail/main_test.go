package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

// news is a stream whose Init sends three events, ends the first stream
// (Stop after them), and on the reconnection (with Last-Event-ID) one more
// and a 204 on the third request.
type news struct{ calls int }

func (h *news) Init(_ any, last string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	h.calls++
	switch {
	case h.calls == 1:
		_ = req.Conn().Notify("stop")
		return fastsse.Open(struct{}{},
			fastsse.Event{ID: "1", Data: "one"},
			fastsse.Event{ID: "2", Event: "update", Data: "two\nlines"},
			fastsse.Event{Data: "no id", Retry: 10 * time.Millisecond})
	case h.calls == 2 && last == "2" && req.Header("X-Test") == "yes":
		_ = req.Conn().Notify("stop")
		return fastsse.Open(struct{}{}, fastsse.Event{ID: "3", Data: `"quoted"`})
	}
	return fastsse.NoContent(struct{}{})
}

func (*news) HandleNotify(any, struct{}) fastsse.Result[struct{}] { return fastsse.Stop(struct{}{}) }
func (*news) HandleInfo(any, struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(struct{}{}) }
func (*news) HandleError(fastsse.Event, error, struct{}) struct{} { return struct{}{} }
func (*news) Terminate(error, struct{})                           {}

func serveNews(t *testing.T) string {
	ep, err := fastsse.New[struct{}](&news{}, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return "http://" + ln.Addr().String() + "/"
}

func TestTail(t *testing.T) {
	url := serveNews(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-H", "X-Test: yes", url}, &out, &errOut)
	assert.Equal(t, 1, code, "the 204 stops it: %s", errOut.String())
	assert.Equal(t, "id: 1\ndata: one\n\nid: 2\nevent: update\ndata: two\ndata: lines\n\nid: 2\ndata: no id\n\nid: 3\ndata: \"quoted\"\n\n", out.String())
	assert.Contains(t, errOut.String(), "reconnecting in")
	assert.Contains(t, errOut.String(), "sse-tail: sseclient: status 204")
}

func TestTailJSON(t *testing.T) {
	url := serveNews(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-json", "-n", "2", "-q", url}, &out, &errOut)
	assert.Equal(t, 0, code, errOut.String())
	assert.Equal(t, `{"id":"1","event":"message","data":"one"}`+"\n"+`{"id":"2","event":"update","data":"two\nlines"}`+"\n", out.String())
	assert.Empty(t, errOut.String())
}

func TestTailUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-H", "nocolon", "http://x/"}, {"a", "b"}, {"-n", "-1", "http://x/"}} {
		var errOut bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &bytes.Buffer{}, &errOut), "%q", args)
		assert.True(t, strings.Contains(errOut.String(), "usage") || strings.Contains(errOut.String(), "header"), errOut.String())
	}
	var errOut bytes.Buffer
	assert.Equal(t, 1, run(context.Background(), []string{"ftp://x/"}, &bytes.Buffer{}, &errOut))
	assert.Contains(t, errOut.String(), "scheme")
}

func TestTailStopsOnSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Equal(t, 0, run(ctx, []string{"http://127.0.0.1:1/"}, &bytes.Buffer{}, &bytes.Buffer{}))
}
