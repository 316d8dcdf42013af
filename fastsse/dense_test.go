//go:build linux

package fastsse_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dense transport's own behaviour: its wire format, epoll, its write
// deadline, HTTP/1.0. Tests of what every transport does are elsewhere.

// echoHandler opens every stream with a "hello" event, echoes
// notifications as events with consecutive ids, and reports each Terminate.
type echoHandler struct {
	conns chan *fastsse.Conn
	ended chan error
}

func newEchoHandler() *echoHandler {
	return &echoHandler{conns: make(chan *fastsse.Conn, 1000), ended: make(chan error, 1000)}
}

func (h *echoHandler) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[int] {
	h.conns <- req.Conn()
	return fastsse.Open(0, fastsse.Event{Event: "hello", Data: "dense"})
}
func (h *echoHandler) HandleNotify(msg any, n int) fastsse.Result[int] {
	if msg == "stop" {
		return fastsse.Stop(n)
	}
	return fastsse.Send(fastsse.Event{ID: fmt.Sprint(n + 1), Data: fmt.Sprint(msg)}, n+1)
}
func (h *echoHandler) HandleInfo(any, int) fastsse.Result[int]         { return fastsse.NoSend(0) }
func (h *echoHandler) HandleError(_ fastsse.Event, _ error, n int) int { return n }
func (h *echoHandler) Terminate(reason error, _ int)                   { h.ended <- reason }

// serveDense serves an endpoint for h on the dense transport with cfg.
func serveDense(t *testing.T, h *echoHandler, opts *fastsse.Options, cfg ssetest.Config) (*fastsse.Endpoint, string) {
	t.Helper()
	tr := ssetest.Named(t, "dense")
	ep := ssetest.New[int](t, tr, h, opts)
	s := tr.ServeWith(t, ssetest.Listen(t), ep, cfg)
	t.Cleanup(func() {
		ssetest.Eventually(t, func() bool { return ep.Stats().Open == 0 }, "Open back to 0")
	})
	return ep, s.Addr
}

// chunk is s as one chunk of a chunked body, on the wire.
func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

// readWire reads len(want) bytes of what follows c's response head and
// checks that they are want: the dense transport writes each batch as one
// chunk, and these tests hold it to the exact bytes.
func readWire(t *testing.T, c *ssetest.Client, want string) {
	t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(ssetest.Wait))
	b := make([]byte, len(want))
	_, err := io.ReadFull(c.Reader(), b)
	require.NoError(t, err, "reading %q, got %q", want, b)
	require.Equal(t, want, string(b))
}

func TestDenseWireFormat(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepHijackedConns=%v", keep), func(t *testing.T) {
			t.Parallel()
			h := newEchoHandler()
			ep, addr := serveDense(t, h, &fastsse.Options{Heartbeat: -1, Retry: 1500 * time.Millisecond},
				ssetest.Config{KeepHijackedConns: keep})
			c := ssetest.Dial(t, addr, "GET", "/events")
			assert.True(t, strings.HasPrefix(c.Head, "HTTP/1.1 200 OK\r\n"), c.Head)
			for _, want := range []string{"Content-Type: text/event-stream\r\n", "Cache-Control: no-cache\r\n",
				"X-Accel-Buffering: no\r\n", "Transfer-Encoding: chunked\r\n", "Connection: close\r\n"} {
				assert.Contains(t, c.Head, want)
			}
			readWire(t, c, chunk("retry: 1500\n\nevent: hello\ndata: dense\n\n"))
			conn := ssetest.Recv(t, h.conns, "Init")
			require.NoError(t, conn.Notify("one"))
			readWire(t, c, chunk("id: 1\ndata: one\n\n"))
			require.NoError(t, conn.Notify("stop"))
			assert.ErrorIs(t, ssetest.Recv(t, h.ended, "Terminate"), fastsse.ErrStopped)
			readWire(t, c, "0\r\n\r\n")
			n, err := c.Reader().Read(make([]byte, 1))
			assert.Equal(t, io.EOF, err, "the connection closes after the last chunk (%d bytes more)", n)
			assert.Equal(t, int64(2), ep.Stats().Events)
		})
	}
}

// A client that goes away is seen by epoll, without any write.
func TestDenseNoticesCloseWithoutWriting(t *testing.T) {
	h := newEchoHandler()
	_, addr := serveDense(t, h, &fastsse.Options{Heartbeat: -1}, ssetest.Config{})
	const n = 100
	clients := ssetest.DialMany(t, addr, "/events", n)
	for _, c := range clients {
		ev, err := c.NextEvent()
		require.NoError(t, err)
		require.Equal(t, "hello", ev.Type)
	}
	start := time.Now()
	for _, c := range clients {
		c.Close()
	}
	for range n {
		assert.ErrorIs(t, ssetest.Recv(t, h.ended, "Terminate"), fastsse.ErrClientGone)
	}
	t.Logf("%d closes noticed in %v", n, time.Since(start))
}

// A client that stops reading does not hold up the others, and is evicted
// once its write has been stuck for StallTimeout.
func TestDenseSlowReaderDoesNotBlockOthers(t *testing.T) {
	h := newEchoHandler()
	ep, addr := serveDense(t, h, &fastsse.Options{Heartbeat: -1, StallTimeout: 300 * time.Millisecond, QueueSize: 1 << 14}, ssetest.Config{})

	ssetest.Dial(t, addr, "GET", "/events") // never read
	slowConn := ssetest.Recv(t, h.conns, "Init")
	fast := ssetest.Dial(t, addr, "GET", "/events").Start()
	assert.Equal(t, "dense", fast.Data(t))
	fastConn := ssetest.Recv(t, h.conns, "Init")

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
		ev := fast.Event(t)
		assert.Equal(t, fmt.Sprint(i), ev.ID)
		assert.Equal(t, "tick", ev.Data)
		assert.Less(t, time.Since(start), time.Second, "held up by the slow reader")
	}
	assert.ErrorIs(t, ssetest.Recv(t, h.ended, "Terminate"), fastsse.ErrSlowConsumer)
	assert.Equal(t, int64(1), ep.Stats().SlowConsumers)
	assert.Equal(t, int64(1), ep.Stats().Open)
}

// HTTP/1.0 cannot carry a chunked body: the dense transport sends it a
// close-delimited one.
func TestDenseHTTP10IsCloseDelimited(t *testing.T) {
	h := newEchoHandler()
	_, addr := serveDense(t, h, &fastsse.Options{Heartbeat: -1}, ssetest.Config{})
	c, err := ssetest.DialRaw(addr, []byte("GET /events HTTP/1.0\r\n\r\n"))
	require.NoError(t, err)
	defer c.Close()
	assert.False(t, c.Chunked(), c.Head)
	assert.Equal(t, "close", c.Header("Connection"))
	conn := ssetest.Recv(t, h.conns, "Init")
	require.NoError(t, conn.Notify("stop"))
	assert.ErrorIs(t, ssetest.Recv(t, h.ended, "Terminate"), fastsse.ErrStopped)
	body, err := c.ReadAll()
	require.NoError(t, err, "the body ends at the close")
	assert.Equal(t, "event: hello\ndata: dense\n\n", body)
}

// SendFrame writes a pre-encoded frame as it is, without a callback.
func TestSendFrame(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			h := newEchoHandler()
			_, s := ssetest.Start[int](t, tr, h, &fastsse.Options{Heartbeat: -1})
			c := ssetest.Dial(t, s.Addr, "GET", "/events").Start()
			assert.Equal(t, "dense", c.Data(t))
			conn := ssetest.Recv(t, h.conns, "Init")
			f, err := fastsse.NewFrame(&fastsse.Event{ID: "7", Event: "news", Data: "shared"})
			require.NoError(t, err)
			require.NoError(t, conn.SendFrame(f))
			ev := c.Event(t)
			assert.Equal(t, "7", ev.ID)
			assert.Equal(t, "news", ev.Type)
			assert.Equal(t, "shared", ev.Data)
			assert.Equal(t, "event: hello\ndata: dense\n\nid: 7\nevent: news\ndata: shared\n\n", c.Raw())
			assert.ErrorIs(t, conn.SendFrame(nil), fastsse.ErrDataRequired)
			require.NoError(t, conn.Close())
			assert.ErrorIs(t, ssetest.Recv(t, h.ended, "Terminate"), fastsse.ErrStopped)
			assert.ErrorIs(t, conn.SendFrame(f), fastsse.ErrClosed)
		})
	}
}
