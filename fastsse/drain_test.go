package fastsse_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// drainHandler opens every stream, hands out its Conn, and records each
// Terminate reason.
type drainHandler struct {
	mu      sync.Mutex
	reasons []error
	conns   chan *fastsse.Conn // every Conn, when not nil; sized by the test
}

func (h *drainHandler) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	if h.conns != nil {
		h.conns <- req.Conn()
	}
	return fastsse.Open(struct{}{})
}
func (h *drainHandler) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (h *drainHandler) HandleInfo(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (h *drainHandler) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} { return s }
func (h *drainHandler) Terminate(reason error, _ struct{}) {
	h.mu.Lock()
	h.reasons = append(h.reasons, reason)
	h.mu.Unlock()
}

func (h *drainHandler) terminated() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.reasons...)
}

// drainOpen opens n streams on addr and waits until ep counts them open.
func drainOpen(t *testing.T, ep *fastsse.Endpoint, addr string, n int) []*ssetest.Client {
	t.Helper()
	clients := ssetest.DialMany(t, addr, "/", n)
	ssetest.Eventually(t, func() bool { return ep.Stats().Open == int64(n) }, "%d streams open", n)
	return clients
}

func TestDrainEndsEveryStreamWithRetryHint(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			h := &drainHandler{}
			ep, s := ssetest.Start[struct{}](t, tr, h, &fastsse.Options{Heartbeat: -1, Retry: 2 * time.Second})
			const n = 50
			clients := drainOpen(t, ep, s.Addr, n)

			const spread = 300 * time.Millisecond
			start := time.Now()
			require.NoError(t, ep.Drain(context.Background(), spread))
			took := time.Since(start)
			assert.GreaterOrEqual(t, took, spread*(n-1)/n, "spread over the period")
			assert.Less(t, took, spread+ssetest.Wait)

			reasons := h.terminated()
			require.Len(t, reasons, n, "Terminate once for each stream")
			for _, r := range reasons {
				assert.ErrorIs(t, r, fastsse.ErrShutdown)
			}
			for _, c := range clients {
				body, err := c.ReadAll()
				require.NoError(t, err, "the stream ends cleanly")
				// Opened with retry: 2000, ended with a hint of 2000–3000 ms.
				assert.Regexp(t, `^retry: 2000\n\nretry: (2\d\d\d|3000)\n\n$`, body)
			}
			assert.Equal(t, int64(0), ep.Stats().Open)

			// A new request gets only a retry hint, as a 200 event stream: an
			// EventSource that got a 503 would give up for good.
			c := ssetest.Dial(t, s.Addr, "GET", "/")
			body, err := c.ReadAll()
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, c.Status)
			assert.Equal(t, "text/event-stream", c.Header("Content-Type"))
			assert.Regexp(t, `^retry: (2\d\d\d|3000)\n\n$`, body)
			assert.Equal(t, int64(n), ep.Stats().Opened, "Init did not run")
		})
	}
}

func TestDrainStopsWithContext(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			h := &drainHandler{}
			ep, s := ssetest.Start[struct{}](t, tr, h, &fastsse.Options{Heartbeat: -1})
			drainOpen(t, ep, s.Addr, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			assert.ErrorIs(t, ep.Drain(ctx, time.Hour), context.DeadlineExceeded)
			assert.Less(t, len(h.terminated()), 3, "an hour's spread ended every stream within 50 ms")
			// What Drain did not reach, the drain at cleanup ends.
		})
	}
}

func TestMaxLifetimeEndsStreamWithHint(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			h := &drainHandler{}
			const life = 400 * time.Millisecond
			ep, s := ssetest.Start[struct{}](t, tr, h, &fastsse.Options{Heartbeat: -1, MaxLifetime: life})
			start := time.Now()
			clients := drainOpen(t, ep, s.Addr, 10)
			for _, c := range clients {
				body, err := c.ReadAll()
				require.NoError(t, err, "the stream ends cleanly")
				assert.Regexp(t, `^retry: \d+\n\n$`, body)
			}
			took := time.Since(start)
			assert.GreaterOrEqual(t, took, life*8/10-10*time.Millisecond, "no stream ends before 80% of MaxLifetime")
			assert.Less(t, took, life+ssetest.Wait)
			ssetest.Eventually(t, func() bool { return len(h.terminated()) == 10 }, "10 Terminates")
			for _, r := range h.terminated() {
				assert.ErrorIs(t, r, fastsse.ErrLifetime)
			}
		})
	}
}

// Server.Shutdown returns promptly even when a stream's client stopped
// reading: the stream ends at once, and the bytes fasthttp still holds for
// the client get a deadline (1 s, fastsse's shutdown grace). The stream
// transport's own: hijacked streams are invisible to Shutdown.
func TestStreamShutdownDoesNotWaitForStuckClient(t *testing.T) {
	tr := ssetest.Named(t, "stream")
	h := &drainHandler{conns: make(chan *fastsse.Conn, 1)}
	_, s := ssetest.Start[struct{}](t, tr, h, &fastsse.Options{Heartbeat: -1, QueueSize: 1 << 12})

	nc, err := net.Dial("tcp", s.Addr)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.(*net.TCPConn).SetReadBuffer(4096))
	_, err = nc.Write(ssetest.Request("GET", "/"))
	require.NoError(t, err)
	conn := ssetest.Recv(t, h.conns, "Init")
	big := strings.Repeat("x", 256<<10)
	g := &fastsse.Group{}
	require.NoError(t, g.Join(conn))
	for range 64 { // 16 MB for a client that reads nothing
		_, err := g.Publish(&fastsse.Event{Data: big})
		require.NoError(t, err)
	}
	time.Sleep(200 * time.Millisecond) // let the writes back up

	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ssetest.Wait)
		defer cancel()
		done <- s.ShutdownContext(ctx)
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(ssetest.Wait + time.Second):
		nc.Close() // unblock, so the test ends
		<-done
		t.Fatal("Shutdown waited for a client that reads nothing")
	}
	assert.Less(t, time.Since(start), time.Second+2*time.Second, "the 1 s grace, and slack")
	require.Len(t, h.terminated(), 1)
	assert.ErrorIs(t, h.terminated()[0], fastsse.ErrShutdown)
}
