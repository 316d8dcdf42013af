package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

type newsServer struct {
	base   string
	client *http.Client
}

func startNews(t *testing.T, keep int) *newsServer {
	t.Helper()
	h, ep, err := newApp(keep)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- serve.RunListener(ctx, ln, h, serve.Options{Drain: []*fastsse.Endpoint{ep}}) }()
	s := &newsServer{base: "http://" + ln.Addr().String(), client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-stopped)
		s.client.CloseIdleConnections()
	})
	return s
}

func (s *newsServer) post(t *testing.T, query, body string) (int, string) {
	t.Helper()
	resp, err := s.client.Post(s.base+"/news"+query, "text/plain", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stream opens GET /news with lastID (as the header) and reads it with
// ssetest's client: what an EventSource sees.
func (s *newsServer) stream(t *testing.T, lastID string) *ssetest.Client {
	t.Helper()
	var header []string
	if lastID != "" {
		header = []string{"Last-Event-ID", lastID}
	}
	c := ssetest.Dial(t, strings.TrimPrefix(s.base, "http://"), "GET", "/news", header...).Start()
	require.Equal(t, http.StatusOK, c.Status)
	return c
}

// ev is an event as the client dispatches it, with the id its block set.
func ev(id, typ, data string) ssespec.Event {
	if typ == "" {
		typ = "message"
	}
	return ssespec.Event{ID: id, IDSet: true, Type: typ, Data: data}
}

func TestNewsPublishAndStream(t *testing.T) {
	s := startNews(t, 100)
	c := s.stream(t, "")
	code, id := s.post(t, "?event=update", "crlf\r\nlone cr\rnon-ascii: héllo ✓")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "1", id)
	assert.Equal(t, ev("1", "update", "crlf\nlone cr\nnon-ascii: héllo ✓"), c.Event(t))
	assert.Contains(t, c.Raw(), "id: 1\nevent: update\ndata: crlf\ndata: lone cr\ndata: non-ascii: héllo ✓\n\n",
		"one data line per line, each break an LF")

	code, id = s.post(t, "", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, ev(id, "", ""), c.Event(t), "an empty body is an empty message")
}

func TestNewsRefusesInjection(t *testing.T) {
	s := startNews(t, 100)
	code, body := s.post(t, "?event=a%0Adata:%20evil", "x")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "event type")
}

func TestNewsReplayAfterLastEventID(t *testing.T) {
	s := startNews(t, 100)
	for _, d := range []string{"one", "two", "three"} {
		code, _ := s.post(t, "", d)
		require.Equal(t, http.StatusOK, code)
	}
	c := s.stream(t, "1")
	assert.Equal(t, ev("2", "", "two"), c.Event(t))
	assert.Equal(t, ev("3", "", "three"), c.Event(t))
	_, id := s.post(t, "", "four")
	assert.Equal(t, ev(id, "", "four"), c.Event(t), "live after replay")
}

func TestNewsGapWhenIDIsGone(t *testing.T) {
	s := startNews(t, 2)
	for _, d := range []string{"one", "two", "three", "four"} {
		s.post(t, "", d)
	}
	c := s.stream(t, "1") // the ring keeps 3 and 4 only
	assert.Equal(t, "gap", c.Event(t).Type)
	_, id := s.post(t, "", "five")
	assert.Equal(t, ev(id, "", "five"), c.Event(t))
}
