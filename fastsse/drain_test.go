package fastsse

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// drHandler opens every stream and records each Terminate reason.
type drHandler struct {
	mu      sync.Mutex
	reasons []error
}

func (h *drHandler) Init(any, string, *Request) InitResult[struct{}] { return Open(struct{}{}) }
func (h *drHandler) HandleNotify(any, struct{}) Result[struct{}]     { return NoSend(struct{}{}) }
func (h *drHandler) HandleInfo(any, struct{}) Result[struct{}]       { return NoSend(struct{}{}) }
func (h *drHandler) HandleError(_ Event, _ error, s struct{}) struct{} {
	return s
}
func (h *drHandler) Terminate(reason error, _ struct{}) {
	h.mu.Lock()
	h.reasons = append(h.reasons, reason)
	h.mu.Unlock()
}

func (h *drHandler) terminated() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.reasons...)
}

// drServe serves ep on a loopback port until the test ends.
func drServe(t *testing.T, ep *Endpoint) (base string, client *http.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		require.NoError(t, srv.Shutdown())
		<-served
	})
	return "http://" + ln.Addr().String(), client
}

// drOpen opens n streams and waits until the endpoint counts them open.
func drOpen(t *testing.T, ep *Endpoint, base string, client *http.Client, n int) []*http.Response {
	t.Helper()
	resps := make([]*http.Response, n)
	for i := range resps {
		resp, err := client.Get(base + "/")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		t.Cleanup(func() { resp.Body.Close() })
		resps[i] = resp
	}
	require.Eventually(t, func() bool { return ep.Stats().Open == int64(n) }, 5*time.Second, time.Millisecond)
	return resps
}

func TestDrainEndsEveryStreamWithRetryHint(t *testing.T) {
	h := &drHandler{}
	ep, err := New[struct{}](h, OnTestTransport(&Options{Heartbeat: -1, Retry: 2 * time.Second}))
	require.NoError(t, err)
	base, client := drServe(t, ep)
	const n = 50
	resps := drOpen(t, ep, base, client, n)

	const spread = 300 * time.Millisecond
	start := time.Now()
	require.NoError(t, ep.Drain(context.Background(), spread))
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, spread*(n-1)/n, "spread over the period")
	assert.Less(t, took, spread+2*time.Second)

	reasons := h.terminated()
	require.Len(t, reasons, n, "Terminate once for each stream")
	for _, r := range reasons {
		assert.ErrorIs(t, r, ErrShutdown)
	}
	for _, resp := range resps {
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err, "the stream ends with its final chunk")
		// Opened with retry: 2000, ended with a hint of 2000–3000 ms.
		assert.Regexp(t, `^retry: 2000\n\nretry: (2\d\d\d|3000)\n\n$`, string(body))
	}
	assert.Equal(t, int64(0), ep.Stats().Open)

	// A new request gets only a retry hint, as a 200 event stream: an
	// EventSource that got a 503 would give up for good.
	resp, err := client.Get(base + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Regexp(t, `^retry: (2\d\d\d|3000)\n\n$`, string(body))
	assert.Equal(t, int64(n), ep.Stats().Opened, "Init did not run")
}

func TestDrainStopsWithContext(t *testing.T) {
	h := &drHandler{}
	ep, err := New[struct{}](h, OnTestTransport(&Options{Heartbeat: -1}))
	require.NoError(t, err)
	base, client := drServe(t, ep)
	drOpen(t, ep, base, client, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, ep.Drain(ctx, time.Hour), context.DeadlineExceeded)
	// What Drain did not reach, Shutdown (in cleanup) ends.
}

func TestMaxLifetimeEndsStreamWithHint(t *testing.T) {
	h := &drHandler{}
	const life = 400 * time.Millisecond
	ep, err := New[struct{}](h, OnTestTransport(&Options{Heartbeat: -1, MaxLifetime: life}))
	require.NoError(t, err)
	base, client := drServe(t, ep)
	start := time.Now()
	resps := drOpen(t, ep, base, client, 10)
	for _, resp := range resps {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		require.NoError(t, err)
		assert.Regexp(t, `^retry: \d+\n$`, line)
	}
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, life*8/10-10*time.Millisecond, "no stream ends before 80% of MaxLifetime")
	assert.Less(t, took, life+time.Second)
	require.Eventually(t, func() bool { return len(h.terminated()) == 10 }, 5*time.Second, time.Millisecond)
	for _, r := range h.terminated() {
		assert.ErrorIs(t, r, ErrLifetime)
	}
}

// Server.Shutdown returns promptly even when a stream's client stopped
// reading: the stream ends at once, and the bytes fasthttp still holds for
// the client get a deadline.
func TestShutdownDoesNotWaitForStuckClient(t *testing.T) {
	h := &drHandler{}
	ep, err := New[struct{}](h, &Options{Heartbeat: -1, QueueSize: 1 << 12, Transport: TransportStream})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()

	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.(*net.TCPConn).SetReadBuffer(4096))
	_, err = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ep.Stats().Open == 1 }, 5*time.Second, time.Millisecond)
	var conn *Conn
	ep.core.each(func(c *Conn) { conn = c })
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = 'x'
	}
	g := &Group{}
	require.NoError(t, g.Join(conn))
	for range 64 { // 16 MB for a client that reads nothing
		_, err := g.Publish(&Event{DataBytes: big})
		require.NoError(t, err)
	}
	time.Sleep(200 * time.Millisecond) // let the writes back up

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		nc.Close() // unblock, so the test ends
		<-done
		t.Fatal("Shutdown waited for a client that reads nothing")
	}
	<-served
	assert.Less(t, time.Since(start), shutdownGrace+2*time.Second)
	require.Len(t, h.terminated(), 1)
	assert.ErrorIs(t, h.terminated()[0], ErrShutdown)
}
