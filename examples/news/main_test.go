package main

import (
	"bufio"
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

// event is one event as the stream carries it, fields in order.
type event []string

// stream opens GET /news with lastID (as the header) and returns a function
// reading the next event's lines.
func (s *newsServer) stream(t *testing.T, lastID string) func() event {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/news", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := bufio.NewReader(resp.Body)
	return func() event {
		var ev event
		for {
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			if line == "\n" {
				if len(ev) == 0 {
					continue // a heartbeat's blank line
				}
				return ev
			}
			if strings.HasPrefix(line, ":") {
				continue
			}
			ev = append(ev, strings.TrimSuffix(line, "\n"))
		}
	}
}

func TestNewsPublishAndStream(t *testing.T) {
	s := startNews(t, 100)
	next := s.stream(t, "")
	code, id := s.post(t, "?event=update", "crlf\r\nlone cr\rnon-ascii: héllo ✓")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "1", id)
	assert.Equal(t, event{"id: 1", "event: update", "data: crlf", "data: lone cr", "data: non-ascii: héllo ✓"}, next())

	code, id = s.post(t, "", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, event{"id: " + id, "data: "}, next(), "an empty body is an empty message")
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
	next := s.stream(t, "1")
	assert.Equal(t, event{"id: 2", "data: two"}, next())
	assert.Equal(t, event{"id: 3", "data: three"}, next())
	_, id := s.post(t, "", "four")
	assert.Equal(t, event{"id: " + id, "data: four"}, next(), "live after replay")
}

func TestNewsGapWhenIDIsGone(t *testing.T) {
	s := startNews(t, 2)
	for _, d := range []string{"one", "two", "three", "four"} {
		s.post(t, "", d)
	}
	next := s.stream(t, "1") // the ring keeps 3 and 4 only
	ev := next()
	require.Len(t, ev, 2)
	assert.Equal(t, "event: gap", ev[0])
	_, id := s.post(t, "", "five")
	assert.Equal(t, event{"id: " + id, "data: five"}, next())
}
