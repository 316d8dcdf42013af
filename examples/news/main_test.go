package main

import (
	"bufio"
	"context"
	"fmt"
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
	return startNewsOn(t, keep, false)
}

// startNewsOn serves the news on fasthttp or, with onHTTP, on net/http
// (-http), as main does.
func startNewsOn(t *testing.T, keep int, onHTTP bool) *newsServer {
	t.Helper()
	a, err := build(keep, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	o := serve.Options{Drain: []*fastsse.Endpoint{a.ep}}
	go func() {
		if onHTTP {
			stopped <- serve.RunHTTPListener(ctx, ln, a.httpHandler(), o)
		} else {
			stopped <- serve.RunListener(ctx, ln, a.fastHandler(), o)
		}
	}()
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
	assert.Regexp(t, `^[0-9a-v]{8}-1$`, id)
	assert.Equal(t, ev(id, "update", "crlf\nlone cr\nnon-ascii: héllo ✓"), c.Event(t))
	assert.Contains(t, c.Raw(), "id: "+id+"\nevent: update\ndata: crlf\ndata: lone cr\ndata: non-ascii: héllo ✓\n\n",
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
	var ids []string
	for _, d := range []string{"one", "two", "three"} {
		code, id := s.post(t, "", d)
		require.Equal(t, http.StatusOK, code)
		ids = append(ids, id)
	}
	c := s.stream(t, ids[0])
	assert.Equal(t, ev(ids[1], "", "two"), c.Event(t))
	assert.Equal(t, ev(ids[2], "", "three"), c.Event(t))
	_, id := s.post(t, "", "four")
	assert.Equal(t, ev(id, "", "four"), c.Event(t), "live after replay")
}

// TestNewsResumeKeepN: with -keep N, a client that missed N news gets all
// of them.
func TestNewsResumeKeepN(t *testing.T) {
	s := startNews(t, 2)
	var ids []string
	for _, d := range []string{"one", "two", "three"} {
		_, id := s.post(t, "", d)
		ids = append(ids, id)
	}
	c := s.stream(t, ids[0])
	assert.Equal(t, ev(ids[1], "", "two"), c.Event(t))
	assert.Equal(t, ev(ids[2], "", "three"), c.Event(t))
}

func TestNewsGapWhenIDIsGone(t *testing.T) {
	s := startNews(t, 2)
	var ids []string
	for _, d := range []string{"one", "two", "three", "four"} {
		_, id := s.post(t, "", d)
		ids = append(ids, id)
	}
	c := s.stream(t, ids[0]) // the ring keeps 3 and 4 only: 2 is lost
	assert.Equal(t, ev(ids[3], fastsse.GapEvent, ids[0]), c.Event(t))
	_, id := s.post(t, "", "five")
	assert.Equal(t, ev(id, "", "five"), c.Event(t))
}

// TestNewsRestartReportsGap is the case: three news, a restart,
// five more, and a client that resumes with the old run's third id. It is
// told of the gap rather than handed the new run's 4 and 5 as if they
// followed the old 3.
func TestNewsRestartReportsGap(t *testing.T) {
	old := startNews(t, 100)
	var oldIDs []string
	for _, d := range []string{"a", "b", "c"} {
		_, id := old.post(t, "", d)
		oldIDs = append(oldIDs, id)
	}
	s := startNews(t, 100) // the restarted server: a new process's state
	var ids []string
	for _, d := range []string{"1", "2", "3", "4", "5"} {
		_, id := s.post(t, "", d)
		ids = append(ids, id)
	}
	c := s.stream(t, oldIDs[2])
	assert.Equal(t, ev(ids[4], fastsse.GapEvent, oldIDs[2]), c.Event(t))
	_, id := s.post(t, "", "6")
	assert.Equal(t, ev(id, "", "6"), c.Event(t), "then live, nothing of the new run passed off as missed")
	for _, bare := range []string{"3", "0", "abc"} { // ids of the format before epochs, and junk
		c := s.stream(t, bare)
		assert.Equal(t, ev(id, fastsse.GapEvent, bare), c.Event(t))
	}
}

// TestNewsOnNetHTTP: with -http the same routes answer the same way from
// net/http: publish, stream, resume, 413 and 405.
func TestNewsOnNetHTTP(t *testing.T) {
	s := startNewsOn(t, 10, true)
	var ids []string
	for _, d := range []string{"one", "two"} {
		code, id := s.post(t, "?event=update", d)
		require.Equal(t, http.StatusOK, code)
		ids = append(ids, id)
	}
	c := s.stream(t, ids[0])
	assert.Equal(t, ev(ids[1], "update", "two"), c.Event(t), "the replay")
	_, id := s.post(t, "", "three")
	assert.Equal(t, ev(id, "", "three"), c.Event(t), "live")

	code, body := s.post(t, "", strings.Repeat("x", serve.MaxBody+1))
	assert.Equal(t, http.StatusRequestEntityTooLarge, code, body)
	req, err := http.NewRequest(http.MethodPut, s.base+"/news", nil)
	require.NoError(t, err)
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET", resp.Header.Get("Allow"))
	resp, err = s.client.Get(s.base + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), "lasse_streams_open 1")
}

// TestNewsOversizedPost: a body over the limit is 413, not a generic 400;
// one at the limit is published.
func TestNewsOversizedPost(t *testing.T) {
	s := startNews(t, 10)
	// The head alone: the server answers from Content-Length and closes,
	// so a client still sending the body may see a reset instead.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(conn, "POST /news HTTP/1.1\r\nHost: news.test\r\nContent-Length: %d\r\n\r\n", serve.MaxBody+1)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil) // a plain answer, read by net/http
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Contains(t, string(body), "413")
	code, _ := s.post(t, "", strings.Repeat("x", serve.MaxBody))
	assert.Equal(t, http.StatusOK, code)
}
