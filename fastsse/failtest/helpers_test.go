//go:build linux

package failtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// waitFor bounds every wait for something that should happen soon. It is
// generous: the tests run with -race on a 2-core machine that may be busy
// with other work.
const waitFor = 15 * time.Second

// epoch is where the latency timestamps count from (monotonic clock).
var epoch = time.Now()

func nowNS() int64 { return int64(time.Since(epoch)) }

// eachTransport runs f once per transport, as subtests "stream" and "dense".
func eachTransport(t *testing.T, f func(t *testing.T, tr fastsse.Transport)) {
	for _, tc := range []struct {
		name string
		tr   fastsse.Transport
	}{{"stream", fastsse.TransportStream}, {"dense", fastsse.TransportDense}} {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.tr) })
	}
}

// rec is one stream's state: the handler's S is *rec, so what Terminate
// sees is counted per Conn.
type rec struct {
	conn   *fastsse.Conn
	tag    string // the request's ?tag=
	lastID string // Init's lastEventID
	n      int    // messages handled; owned by the stream's callbacks
	terms  atomic.Int32
	reason error // set by Terminate; read after Done
	endNS  int64 // nowNS at Terminate; read after Done
}

// handler is a fastsse.Handler[*rec] made of optional functions: by
// default Init opens the stream and HandleNotify and HandleInfo send the
// message (a fastsse.Event as is, anything else as data).
type handler struct {
	onInit   func(r *rec, req *fastsse.Request) fastsse.InitResult[*rec]
	onNotify func(msg any, r *rec) fastsse.Result[*rec]
	// forget: Init keeps no rec (all returns none), so that a test of
	// many connections does not measure its own bookkeeping.
	forget bool

	mu    sync.Mutex
	recs  []*rec
	inits atomic.Int64
	terms atomic.Int64
	errs  atomic.Int64
	dups  atomic.Int64 // Terminates beyond the first for a Conn
}

func (h *handler) Init(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[*rec] {
	r := &rec{conn: req.Conn(), tag: req.Query("tag"), lastID: lastEventID}
	h.inits.Add(1)
	if !h.forget {
		h.mu.Lock()
		h.recs = append(h.recs, r)
		h.mu.Unlock()
	}
	if h.onInit != nil {
		return h.onInit(r, req)
	}
	return fastsse.Open(r)
}

func (h *handler) HandleNotify(msg any, r *rec) fastsse.Result[*rec] {
	r.n++
	if h.onNotify != nil {
		return h.onNotify(msg, r)
	}
	return sendMsg(msg, r)
}

func (h *handler) HandleInfo(msg any, r *rec) fastsse.Result[*rec] {
	r.n++
	return sendMsg(msg, r)
}

func sendMsg(msg any, r *rec) fastsse.Result[*rec] {
	if ev, ok := msg.(fastsse.Event); ok {
		return fastsse.Send(ev, r)
	}
	return fastsse.Send(fastsse.Event{Data: fmt.Sprint(msg)}, r)
}

func (h *handler) HandleError(_ fastsse.Event, _ error, r *rec) *rec {
	h.errs.Add(1)
	return r
}

func (h *handler) Terminate(reason error, r *rec) {
	r.reason = reason
	r.endNS = nowNS()
	if r.terms.Add(1) > 1 {
		h.dups.Add(1)
	}
	h.terms.Add(1)
}

// all returns every rec made so far.
func (h *handler) all() []*rec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*rec(nil), h.recs...)
}

// tagged waits for the rec of the stream opened with ?tag=tag.
func (h *handler) tagged(t *testing.T, tag string) *rec {
	t.Helper()
	var found *rec
	eventually(t, func() bool {
		for _, r := range h.all() {
			if r.tag == tag {
				found = r
				return true
			}
		}
		return false
	}, "Init of ?tag=%s", tag)
	return found
}

// server is a fasthttp server on a fresh loopback port serving one endpoint.
type server struct {
	addr   string
	ep     *fastsse.Endpoint
	srv    *fasthttp.Server
	ln     net.Listener
	served chan struct{}
	once   sync.Once
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

// serve serves h on tr with opts until the test ends (or stop).
func serve(t *testing.T, h *handler, tr fastsse.Transport, opts fastsse.Options) *server {
	t.Helper()
	return serveSndBuf(t, h, tr, opts, 0)
}

// serveSndBuf is serve with SO_SNDBUF set to sndbuf on every accepted
// connection when sndbuf > 0 (which turns off the kernel's send-buffer
// autotuning: on loopback it grows to 4 MB, and about 3 MB go into a socket
// whose client never reads).
func serveSndBuf(t *testing.T, h *handler, tr fastsse.Transport, opts fastsse.Options, sndbuf int) *server {
	t.Helper()
	opts.Transport = tr
	ep, err := fastsse.New[*rec](h, &opts)
	require.NoError(t, err)
	var ln net.Listener
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if sndbuf > 0 {
		ln = sndBufListener{ln, sndbuf}
	}
	s := &server{
		addr:   ln.Addr().String(),
		ep:     ep,
		ln:     ln,
		srv:    &fasthttp.Server{Handler: ep.ServeFastHTTP, Logger: quietLog{}},
		served: make(chan struct{}),
	}
	go func() { _ = s.srv.Serve(ln); close(s.served) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

type sndBufListener struct {
	net.Listener
	size int
}

func (l sndBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// stop drains the endpoint (hijacked streams are invisible to Shutdown),
// shuts the server down, and waits until no stream is open. It may be
// called more than once.
func (s *server) stop(t *testing.T) {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := s.ep.Drain(ctx, 0); err != nil {
			t.Errorf("Drain: %v", err)
		}
		if err := s.srv.ShutdownWithContext(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		_ = s.ln.Close()
		select {
		case <-s.served:
		case <-ctx.Done():
			t.Error("Serve did not return")
		}
		eventually(t, func() bool { return s.ep.Stats().Open == 0 }, "Stats().Open back to 0")
	})
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	pause := 100 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: "+format, args...)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// rawConn is a lean client: one TCP connection, a 512-byte read buffer, no
// goroutine of its own. It speaks just enough HTTP/1.1 for these tests.
type rawConn struct {
	nc     net.Conn
	br     *bufio.Reader
	status int
	head   string // status line and headers, as received
	body   *bufio.Reader
}

// request is an HTTP/1.1 request: method, target and the header lines
// (name, value pairs).
func request(method, target string, header ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n", method, target)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// dialRaw connects to addr, sends req and reads the response head.
func dialRaw(addr string, req []byte) (*rawConn, error) {
	nc, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		return nil, err
	}
	c := &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 512)}
	_ = nc.SetDeadline(time.Now().Add(waitFor))
	if _, err := nc.Write(req); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.readHead(); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *rawConn) readHead() error {
	var head strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the response head %q: %w", head.String(), err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	c.head = head.String()
	f := strings.Fields(c.head)
	if len(f) < 2 {
		return fmt.Errorf("bad status line in %q", c.head)
	}
	var err error
	c.status, err = strconv.Atoi(f[1])
	return err
}

// header returns the value of the response header name, or "".
func (c *rawConn) header(name string) string {
	for _, line := range strings.Split(c.head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (c *rawConn) Close() { _ = c.nc.Close() }

// dialMany opens n streams to addr/target with a few workers; the
// connections are closed at cleanup.
func dialMany(t *testing.T, addr, target string, n int) []*rawConn {
	t.Helper()
	conns := make([]*rawConn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				conns[i], errs[i] = dialRaw(addr, request("GET", target))
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for i, err := range errs {
		require.NoError(t, err, "stream %d", i)
		require.Equal(t, 200, conns[i].status, "stream %d: %s", i, conns[i].head)
	}
	return conns
}

// chunked decodes a chunked body read from br; Read returns io.EOF after
// the final chunk.
type chunked struct {
	br      *bufio.Reader
	left    int
	midway  bool // chunk data was read: its CRLF is next
	endSeen bool
}

func (r *chunked) Read(p []byte) (int, error) {
	if r.endSeen {
		return 0, io.EOF
	}
	if r.left == 0 {
		if r.midway {
			if _, err := r.br.Discard(2); err != nil {
				return 0, err
			}
			r.midway = false
		}
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		size, err := strconv.ParseUint(strings.TrimSpace(string(line)), 16, 32)
		if err != nil {
			return 0, fmt.Errorf("chunk size line %q: %w", line, err)
		}
		if size == 0 {
			r.endSeen = true
			_, _ = r.br.Discard(2) // the CRLF ending the (empty) trailer
			return 0, io.EOF
		}
		r.left = int(size)
		r.midway = true
	}
	n, err := r.br.Read(p[:min(len(p), r.left)])
	r.left -= n
	return n, err
}

// event is one frame of the stream as a client sees it. A heartbeat (a
// comment only) is a frame with nothing but comment set.
type event struct {
	id, data, retry string
	hasData         bool
	comment         bool
}

// next reads the next frame of the event stream (through the line to the
// blank line that ends it).
func (c *rawConn) next() (event, error) {
	if c.body == nil {
		if !strings.Contains(strings.ToLower(c.head), "transfer-encoding: chunked") {
			return event{}, fmt.Errorf("not a chunked body: %q", c.head)
		}
		c.body = bufio.NewReaderSize(&chunked{br: c.br}, 512)
	}
	var ev event
	for {
		line, err := c.body.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return ev, nil
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "":
			ev.comment = true
		case "id":
			ev.id = v
		case "data":
			if ev.hasData {
				ev.data += "\n" + v
			} else {
				ev.data = v
			}
			ev.hasData = true
		case "retry":
			ev.retry = v
		}
	}
}

// nextData returns the next event's data, skipping heartbeats and retry
// hints.
func (c *rawConn) nextData() (string, error) {
	for {
		ev, err := c.next()
		if err != nil {
			return "", err
		}
		if ev.hasData {
			return ev.data, nil
		}
	}
}

// dialSmallRcvBuf connects with SO_RCVBUF set before connect (so that the
// advertised window stays small) and sends req; it reads nothing.
func dialSmallRcvBuf(addr string, rcvbuf int, req []byte) (net.Conn, error) {
	d := net.Dialer{Timeout: waitFor, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := nc.Write(req); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// readRSS returns the process's resident set size (VmRSS), in bytes.
func readRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

func rss(t *testing.T) int64 {
	t.Helper()
	n, err := readRSS()
	require.NoError(t, err)
	return n
}

// memName names the figure that memUse returns.
var memName = func() string {
	if raceEnabled {
		return "Go-held memory"
	}
	return "RSS"
}()

// readMem returns the figure the memory bounds are checked against: RSS;
// under -race, the memory the Go runtime holds from the OS (all its classes
// but released heap). The race detector's own state lives outside the Go
// runtime and grows with every goroutine and sync object the process ever
// had: hundreds of MB in these tests (the stream transport makes two
// goroutines per stream), which says nothing of the library.
func readMem() (int64, error) {
	if !raceEnabled {
		return readRSS()
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64()), nil
}

func mem(t *testing.T) int64 {
	t.Helper()
	n, err := readMem()
	require.NoError(t, err)
	return n
}

// memSampler records the highest memory figure (readMem) seen, sampled every 20 ms, until Stop.
type memSampler struct {
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleMem(t *testing.T) *memSampler {
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.max.Store(mem(t))
	go func() {
		defer close(s.done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
				if n, err := readMem(); err == nil && n > s.max.Load() {
					s.max.Store(n)
				}
			}
		}
	}()
	return s
}

func (s *memSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return s.max.Load()
}

// quantile returns the q-quantile of xs, which it sorts.
func quantile(xs []int64, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	return time.Duration(xs[min(len(xs)-1, int(q*float64(len(xs))))])
}

const mb = 1 << 20
