//go:build linux

package fastsse

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// dnHandler opens every stream, echoes notifications as events, and
// reports each Terminate.
type dnHandler struct {
	conns chan *Conn
	ended chan error
}

func newDnHandler() *dnHandler {
	return &dnHandler{conns: make(chan *Conn, 1000), ended: make(chan error, 1000)}
}

func (h *dnHandler) Init(_ any, _ string, req *Request) InitResult[int] {
	h.conns <- req.Conn()
	return Open(0, Event{Event: "hello", Data: "dense"})
}
func (h *dnHandler) HandleNotify(msg any, n int) Result[int] {
	if msg == "stop" {
		return Stop(n)
	}
	return Send(Event{ID: fmt.Sprint(n + 1), Data: fmt.Sprint(msg)}, n+1)
}
func (h *dnHandler) HandleInfo(any, int) Result[int]         { return NoSend(0) }
func (h *dnHandler) HandleError(_ Event, _ error, n int) int { return n }
func (h *dnHandler) Terminate(reason error, _ int)           { h.ended <- reason }

// dnServe serves a dense endpoint on loopback; the server keeps hijacked
// connections or not, as the test says.
func dnServe(t *testing.T, h *dnHandler, opts Options, keep bool) (*Endpoint, string) {
	t.Helper()
	opts.Transport = TransportDense
	ep, err := New[int](h, &opts)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP, KeepHijackedConns: keep}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Shutdown())
		<-served
		require.Eventually(t, func() bool { return ep.Stats().Open == 0 }, 5*time.Second, time.Millisecond)
	})
	return ep, ln.Addr().String()
}

// dnGet sends a raw GET and returns the connection and a reader past the
// response head, with the head.
func dnGet(t *testing.T, addr string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	_, err = io.WriteString(nc, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	r := bufio.NewReader(nc)
	var head strings.Builder
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		head.WriteString(line)
		if line == "\r\n" {
			return nc, r, head.String()
		}
	}
}

// dnChunk reads one chunk of a chunked body.
func dnChunk(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var size int
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	_, err = fmt.Sscanf(line, "%x\r\n", &size)
	require.NoError(t, err, "chunk size line %q", line)
	b := make([]byte, size+2)
	_, err = io.ReadFull(r, b)
	require.NoError(t, err)
	require.Equal(t, "\r\n", string(b[size:]))
	return string(b[:size])
}

func TestDenseWireFormat(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("KeepHijackedConns=%v", keep), func(t *testing.T) {
			h := newDnHandler()
			ep, addr := dnServe(t, h, Options{Heartbeat: -1, Retry: 1500 * time.Millisecond}, keep)
			_, r, head := dnGet(t, addr)
			assert.True(t, strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n"), head)
			for _, want := range []string{"Content-Type: text/event-stream\r\n", "Cache-Control: no-cache\r\n",
				"X-Accel-Buffering: no\r\n", "Transfer-Encoding: chunked\r\n", "Connection: close\r\n"} {
				assert.Contains(t, head, want)
			}
			assert.Equal(t, "retry: 1500\n\nevent: hello\ndata: dense\n\n", dnChunk(t, r))
			c := <-h.conns
			require.NoError(t, c.Notify("one"))
			assert.Equal(t, "id: 1\ndata: one\n\n", dnChunk(t, r))
			require.NoError(t, c.Notify("stop"))
			assert.ErrorIs(t, <-h.ended, ErrStopped)
			last, err := r.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "0\r\n", last, "the final chunk")
			assert.Equal(t, int64(2), ep.Stats().Events)
		})
	}
}

// A client that goes away is seen by epoll, without any write.
func TestDenseNoticesCloseWithoutWriting(t *testing.T) {
	h := newDnHandler()
	_, addr := dnServe(t, h, Options{Heartbeat: -1}, true)
	const n = 100
	conns := make([]net.Conn, n)
	for i := range conns {
		nc, r, _ := dnGet(t, addr)
		dnChunk(t, r)
		conns[i] = nc
	}
	start := time.Now()
	for _, nc := range conns {
		nc.Close()
	}
	for range n {
		select {
		case reason := <-h.ended:
			assert.ErrorIs(t, reason, ErrClientGone)
		case <-time.After(5 * time.Second):
			t.Fatal("a closed client was not noticed")
		}
	}
	t.Logf("%d closes noticed in %v", n, time.Since(start))
}

// A client that stops reading does not hold up the others, and is evicted
// once its write has been stuck for StallTimeout.
func TestDenseSlowReaderDoesNotBlockOthers(t *testing.T) {
	h := newDnHandler()
	ep, addr := dnServe(t, h, Options{Heartbeat: -1, StallTimeout: 300 * time.Millisecond, QueueSize: 1 << 14}, true)

	slow, _, _ := dnGet(t, addr) // never read again
	slowConn := <-h.conns
	_, fast, _ := dnGet(t, addr)
	dnChunk(t, fast)
	fastConn := <-h.conns

	big := strings.Repeat("x", 64<<10)
	for i := 0; i < 200; i++ { // 12 MB: far more than the socket buffers hold
		if slowConn.Notify(big) != nil {
			break
		}
	}
	// The fast client keeps getting its events promptly meanwhile.
	for i := 1; i <= 20; i++ {
		require.NoError(t, fastConn.Notify("tick"))
		start := time.Now()
		assert.Equal(t, fmt.Sprintf("id: %d\ndata: tick\n\n", i), dnChunk(t, fast))
		assert.Less(t, time.Since(start), time.Second, "held up by the slow reader")
	}
	select {
	case reason := <-h.ended:
		assert.ErrorIs(t, reason, ErrSlowConsumer)
	case <-time.After(5 * time.Second):
		t.Fatal("the slow reader was not evicted")
	}
	assert.Equal(t, int64(1), ep.Stats().SlowConsumers)
	assert.Equal(t, int64(1), ep.Stats().Open)
	_ = slow
}

// HTTP/1.0 cannot carry a chunked body: the dense transport sends it a
// close-delimited one (fasthttp's own stream would be chunked).
func TestDenseHTTP10IsCloseDelimited(t *testing.T) {
	h := newDnHandler()
	_, addr := dnServe(t, h, Options{Heartbeat: -1}, true)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	_, err = io.WriteString(nc, "GET /events HTTP/1.0\r\n\r\n")
	require.NoError(t, err)
	c := <-h.conns
	require.NoError(t, c.Notify("stop"))
	assert.ErrorIs(t, <-h.ended, ErrStopped)
	body, err := io.ReadAll(nc)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(body), "\r\n\r\nevent: hello\ndata: dense\n\n"), "%q", body)
	assert.NotContains(t, string(body), "chunked")
	assert.Contains(t, string(body), "Connection: close\r\n")
}

// SendFrame writes a pre-encoded frame as it is, without a callback.
func TestSendFrame(t *testing.T) {
	h := newDnHandler()
	_, addr := dnServe(t, h, Options{Heartbeat: -1}, true)
	_, r, _ := dnGet(t, addr)
	dnChunk(t, r)
	c := <-h.conns
	f, err := NewFrame(&Event{ID: "7", Event: "news", Data: "shared"})
	require.NoError(t, err)
	require.NoError(t, c.SendFrame(f))
	assert.Equal(t, "id: 7\nevent: news\ndata: shared\n\n", dnChunk(t, r))
	assert.ErrorIs(t, c.SendFrame(nil), ErrDataRequired)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-h.ended, ErrStopped)
	assert.ErrorIs(t, c.SendFrame(f), ErrClosed)
}
