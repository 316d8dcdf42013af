package natsbus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// wait bounds every wait: generous, for a shared 2-core machine under -race.
const wait = 10 * time.Second

// natsServer is a real nats-server with JetStream, in the test process,
// listening on a loopback port (so that its clients reconnect to it after
// a restart) with its store in a temporary directory.
type natsServer struct {
	s    *server.Server
	opts *server.Options
}

func startNATS(tb testing.TB) *natsServer {
	tb.Helper()
	ns := &natsServer{opts: &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(),
		NoLog: true, NoSigs: true,
	}}
	ns.start(tb)
	tb.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start(tb testing.TB) {
	tb.Helper()
	s, err := server.NewServer(ns.opts)
	require.NoError(tb, err)
	go s.Start()
	require.True(tb, s.ReadyForConnections(wait), "nats-server not ready")
	ns.s = s
	ns.opts.Port = s.Addr().(*net.TCPAddr).Port // the same port after a restart
}

func (ns *natsServer) stop() {
	if ns.s != nil {
		ns.s.Shutdown()
		ns.s.WaitForShutdown()
		ns.s = nil
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.opts.Port) }

// connect opens a client connection that reconnects for ever, every 50 ms.
func (ns *natsServer) connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
}

// instance is one server of a cluster: its own NATS connection, Bus, Group
// and fasthttp server, as a process of its own would have.
type instance struct {
	bus   *Bus
	group *fastsse.Group
	ep    *fastsse.Endpoint
	addr  string
}

type resumer struct{ g *fastsse.Group }

func (h resumer) Init(_ any, lastID string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	if err := h.g.Resume(req.Conn(), lastID); err != nil && !errors.Is(err, fastsse.ErrReplayGap) {
		return fastsse.Reply(http.StatusServiceUnavailable, []byte(err.Error()), struct{}{})
	}
	return fastsse.Open(struct{}{})
}
func (resumer) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (resumer) HandleInfo(any, struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(struct{}{}) }
func (resumer) HandleError(fastsse.Event, error, struct{}) struct{} { return struct{}{} }
func (resumer) Terminate(error, struct{})                           {}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// startInstance joins the cluster on ns with stream cfg.
func startInstance(tb testing.TB, ns *natsServer, cfg Config, gopts *fastsse.GroupOptions, opts *fastsse.Options) *instance {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	bus, err := New(ctx, ns.connect(tb), cfg)
	require.NoError(tb, err)
	g, err := fastsse.NewBusGroup(ctx, bus, gopts)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = g.Close() })
	ep, addr := serveGroupOpts(tb, g, opts)
	return &instance{bus: bus, group: g, ep: ep, addr: addr}
}

// serveGroup serves g's resuming handler on 127.0.0.1:0 and returns the
// address.
func serveGroup(tb testing.TB, g *fastsse.Group) string {
	_, addr := serveGroupOpts(tb, g, &fastsse.Options{Heartbeat: -1})
	return addr
}

func serveGroupOpts(tb testing.TB, g *fastsse.Group, opts *fastsse.Options) (*fastsse.Endpoint, string) {
	tb.Helper()
	ep, err := fastsse.New[struct{}](resumer{g}, opts)
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP, Logger: nopLogger{}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = ep.Drain(ctx, 0)
		_ = srv.ShutdownWithContext(ctx)
		<-served
	})
	return ep, ln.Addr().String()
}

// sseClient reads one event stream.
type sseClient struct {
	bytes  atomic.Int64 // bytes read, heartbeats included
	conn   net.Conn
	events chan ssespec.Event
	done   chan struct{}
	err    error
}

// get opens GET / on addr with Last-Event-ID lastID (none when empty).
func get(tb testing.TB, addr, lastID string) *sseClient {
	tb.Helper()
	c, err := getErr(addr, lastID)
	require.NoError(tb, err)
	tb.Cleanup(c.close)
	return c
}

func getErr(addr, lastID string) (*sseClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET / HTTP/1.1\r\nHost: natsbus.test\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(wait))
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &sseClient{conn: conn, events: make(chan ssespec.Event, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.events)
		var p ssespec.Parser
		b := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(b)
			c.bytes.Add(int64(n))
			for _, ev := range p.Feed(b[:n]) {
				c.events <- ev
			}
			if err != nil {
				c.err = err
				return
			}
		}
	}()
	return c, nil
}

func (c *sseClient) close() {
	_ = c.conn.Close()
	for range c.events { // unblock and drain the reader
	}
	<-c.done
}

// next returns the next event within wait, or an error.
func (c *sseClient) next() (ssespec.Event, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case ev, ok := <-c.events:
		if !ok {
			return ev, fmt.Errorf("stream ended: %v", c.err)
		}
		return ev, nil
	case <-t.C:
		return ssespec.Event{}, errors.New("no event within the wait")
	}
}

// ids reads n events and returns their ids.
func (c *sseClient) ids(tb testing.TB, n int) []string {
	tb.Helper()
	var ids []string
	for range n {
		ev, err := c.next()
		require.NoError(tb, err, "after ids %v", ids)
		ids = append(ids, ev.ID)
	}
	return ids
}
