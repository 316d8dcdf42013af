//go:build linux

package failtest

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/require"
)

// waitFor bounds every wait for something that should happen soon. It is
// generous: the tests run with -race on a 2-core machine that may be busy
// with other work.
const waitFor = 15 * time.Second

// epoch is where the latency timestamps count from (monotonic clock).
var epoch = time.Now()

func nowNS() int64 { return int64(time.Since(epoch)) }

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
	ssetest.Eventually(t, func() bool {
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

// server is one endpoint served on a transport.
type server struct {
	addr string
	ep   *fastsse.Endpoint
	srv  *ssetest.Server
	once sync.Once
}

// serve serves h on tr with opts until the test ends (or stop).
func serve(t *testing.T, h *handler, tr ssetest.Transport, opts fastsse.Options) *server {
	t.Helper()
	return serveSndBuf(t, h, tr, opts, 0)
}

// serveSndBuf is serve with SO_SNDBUF set to sndbuf on every accepted
// connection when sndbuf > 0 (which turns off the kernel's send-buffer
// autotuning: on loopback it grows to 4 MB, and about 3 MB go into a socket
// whose client never reads).
func serveSndBuf(t *testing.T, h *handler, tr ssetest.Transport, opts fastsse.Options, sndbuf int) *server {
	t.Helper()
	ep := ssetest.New[*rec](t, tr, h, &opts)
	ln := ssetest.Listen(t)
	if sndbuf > 0 {
		ln = sndBufListener{ln, sndbuf}
	}
	srv := tr.ServeOn(t, ln, ep)
	s := &server{addr: srv.Addr, ep: ep, srv: srv}
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
		s.srv.Shutdown(t)
		ssetest.Eventually(t, func() bool { return s.ep.Stats().Open == 0 }, "Stats().Open back to 0")
	})
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
