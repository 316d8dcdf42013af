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
	h, ep, _, err := newApp(keep, nil)
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
	assert.Regexp(t, `^[0-9a-v]{8}-1$`, id)
	assert.Equal(t, event{"id: " + id, "event: update", "data: crlf", "data: lone cr", "data: non-ascii: héllo ✓"}, next())

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
	var ids []string
	for _, d := range []string{"one", "two", "three"} {
		code, id := s.post(t, "", d)
		require.Equal(t, http.StatusOK, code)
		ids = append(ids, id)
	}
	next := s.stream(t, ids[0])
	assert.Equal(t, event{"id: " + ids[1], "data: two"}, next())
	assert.Equal(t, event{"id: " + ids[2], "data: three"}, next())
	_, id := s.post(t, "", "four")
	assert.Equal(t, event{"id: " + id, "data: four"}, next(), "live after replay")
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
	next := s.stream(t, ids[0])
	assert.Equal(t, event{"id: " + ids[1], "data: two"}, next())
	assert.Equal(t, event{"id: " + ids[2], "data: three"}, next())
}

func TestNewsGapWhenIDIsGone(t *testing.T) {
	s := startNews(t, 2)
	var ids []string
	for _, d := range []string{"one", "two", "three", "four"} {
		_, id := s.post(t, "", d)
		ids = append(ids, id)
	}
	next := s.stream(t, ids[0]) // the ring keeps 3 and 4 only: 2 is lost
	assert.Equal(t, event{"id: " + ids[3], "event: lasse-gap", "data: " + ids[0]}, next())
	_, id := s.post(t, "", "five")
	assert.Equal(t, event{"id: " + id, "data: five"}, next())
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
	next := s.stream(t, oldIDs[2])
	assert.Equal(t, event{"id: " + ids[4], "event: lasse-gap", "data: " + oldIDs[2]}, next())
	_, id := s.post(t, "", "6")
	assert.Equal(t, event{"id: " + id, "data: 6"}, next(), "then live, nothing of the new run passed off as missed")
	for _, bare := range []string{"3", "0", "abc"} { // ids of the format before epochs, and junk
		next := s.stream(t, bare)
		assert.Equal(t, event{"id: " + id, "event: lasse-gap", "data: " + bare}, next())
	}
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
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Contains(t, string(body), "413")
	code, _ := s.post(t, "", strings.Repeat("x", serve.MaxBody))
	assert.Equal(t, http.StatusOK, code)
}
