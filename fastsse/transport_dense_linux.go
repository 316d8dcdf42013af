//go:build linux

package fastsse

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// The dense transport serves hijacked connections with no goroutine of
// their own. fasthttp facts it relies on:
//
//   - ctx.Hijack runs its handler on a new goroutine after the request
//     handler returns; with HijackSetNoResponse(true) fasthttp writes
//     nothing, so the library writes the status line, headers and chunked
//     framing itself.
//   - Unless Server.KeepHijackedConns is set, fasthttp closes the connection
//     when the hijack handler returns; with it set, nobody does. The
//     handler therefore duplicates the socket's descriptor and closes the
//     connection it was given (a no-op without KeepHijackedConns, where
//     fasthttp closes it): the stream then owns a descriptor of its own
//     that no one else can close or reuse, whatever the server's setting,
//     and no net.Conn, poll descriptor or 4 KB read buffer stays alive
//     for it.
//   - Hijacked connections are invisible to Server.Shutdown, which returns
//     without waiting for them. The endpoint's shutdown watch ends them
//     (core.watchShutdown), but without waiting: call Endpoint.Drain
//     before Shutdown.
//
// Streams take turns on a few writer goroutines (transport_dense_writers_linux.go).

const denseSupported = true

// The states of a dense stream's turn.
const (
	turnIdle    int32 = iota // nothing to do
	turnQueued               // on its shard's ready list
	turnRunning              // being stepped
	turnRerun                // being stepped, and woken since: queue it again after
)

// denseState is an endpoint's dense machinery, started by its first dense
// stream and stopped after its last.
type denseState struct {
	mu  sync.Mutex
	set *denseSet
}

// opening counts one more dense stream, starting the machinery if it is not
// running, and makes the stream's transport.
func (ds *denseState) opening(c *core, conn *Conn) (opening, error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.set == nil {
		s, err := startDense(c)
		if err != nil {
			return nil, err
		}
		ds.set = s
	}
	s := ds.set
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	d := &denseConn{set: s, conn: conn, shard: s.shards[conn.id%uint64(len(s.shards))], fd: -1}
	conn.t = d
	return d, nil
}

// release counts one dense stream less, stopping the machinery at 0.
func (ds *denseState) release(s *denseSet) {
	ds.mu.Lock()
	s.mu.Lock()
	s.n--
	last := s.n == 0
	s.mu.Unlock()
	if last && ds.set == s {
		ds.set = nil
	}
	ds.mu.Unlock()
	if last {
		s.shutdown()
	}
}

// denseConn is a dense stream's transport.
type denseConn struct {
	set   *denseSet
	shard *denseShard
	conn  *Conn
	st    turner

	state    atomic.Int32 // turnIdle, turnQueued, ...
	attached atomic.Bool  // the hijack handler has handed over the socket
	gone_    atomic.Bool  // epoll saw the client close
	since    atomic.Int64 // core clock when the write still pending last made progress; 0: none pending
	fired    atomic.Bool  // an event fired, so the one-shot registration is disarmed
	released atomic.Bool  // the stream no longer counts in the set

	// Owned by the stream's turn once attached.
	fd      int
	head    []byte // response head, sent with the first batch
	pending []byte // unsent rest of a partial write
	started bool
	chunked bool     // HTTP/1.1: chunked framing; else the body is close-delimited
	armed   uint32   // events the descriptor is armed for
	size    [18]byte // chunk-size scratch: a stack array would escape through writev
}

// wake queues the stream's turn on its shard, unless it is queued already;
// a stream woken during its turn is queued again when the turn is over.
func (d *denseConn) wake() {
	for {
		switch d.state.Load() {
		case turnIdle:
			if d.state.CompareAndSwap(turnIdle, turnQueued) {
				d.shard.push(d)
				return
			}
		case turnRunning:
			if d.state.CompareAndSwap(turnRunning, turnRerun) {
				return
			}
		default:
			return
		}
	}
}

func (d *denseConn) stalledSince() int64 { return d.since.Load() }
func (d *denseConn) gone() bool          { return d.gone_.Load() }

// evict does nothing: dense writes never block, and the turn that the
// ending wakes closes the socket.
func (d *denseConn) evict() {}

// bound does nothing: dense writes never block.
func (d *denseConn) bound() {}

// abort gives back the stream's place in the set: Init opened no stream.
func (d *denseConn) abort() { d.release() }

func (d *denseConn) release() {
	if !d.released.Swap(true) {
		d.conn.core.dense.release(d.set)
	}
}

// denseSet is an endpoint's dense machinery, running while it has dense
// streams: a few writer shards, and one epoll goroutine that hears of
// closed and writable sockets.
type denseSet struct {
	core   *core
	epfd   int
	stopfd int // eventfd that stops the poll goroutine
	shards []*denseShard
	stop   chan struct{}
	wg     sync.WaitGroup

	mu   sync.Mutex
	byID map[uint64]*denseConn
	n    int // dense streams, from opening to end
}

func startDense(c *core) (*denseSet, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fastsse: dense transport: epoll_create1: %w", err)
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("fastsse: dense transport: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // token 0: no stream has id 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopfd, &ev); err != nil {
		unix.Close(stopfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("fastsse: dense transport: epoll_ctl: %w", err)
	}
	s := &denseSet{
		core: c, epfd: epfd, stopfd: stopfd, stop: make(chan struct{}),
		byID: make(map[uint64]*denseConn),
	}
	n := max(1, runtime.GOMAXPROCS(0))
	for range n {
		sh := &denseShard{set: s, kick: make(chan struct{}, 1), cur: &denseWriter{}}
		sh.watch = time.AfterFunc(time.Hour, sh.check)
		sh.watch.Stop()
		s.shards = append(s.shards, sh)
		s.wg.Add(1)
		go sh.work(sh.cur)
	}
	s.wg.Add(1)
	go s.poll()
	return s, nil
}

// shutdown stops the set's goroutines. It may run on one of them (the
// shard that ended the last stream), so it does not wait: the descriptors
// are closed once all have returned.
func (s *denseSet) shutdown() {
	for _, sh := range s.shards {
		sh.mu.Lock()
		sh.stopped = true
		sh.mu.Unlock()
		sh.watch.Stop()
	}
	close(s.stop)
	var one [8]byte
	one[0] = 1 // eventfd counts in host order; any non-zero value wakes it
	_, _ = unix.Write(s.stopfd, one[:])
	go func() {
		s.wg.Wait()
		unix.Close(s.stopfd)
		unix.Close(s.epfd)
	}()
}

// poll turns socket events into work: a closed socket ends its stream, a
// writable one resumes its pending write. Descriptors are armed one-shot,
// so an event fires once until the turn re-arms it, and only the turn
// touches a descriptor's registration or closes it.
func (s *denseSet) poll() {
	defer s.wg.Done()
	evs := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(s.epfd, evs, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range evs[:n] {
			ev := &evs[i]
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return // the stop eventfd
			}
			s.mu.Lock()
			d := s.byID[id]
			s.mu.Unlock()
			if d == nil {
				continue
			}
			if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				d.gone_.Store(true)
			}
			d.fired.Store(true)
			d.wake()
		}
	}
}

// open hands an opened stream to the dense transport: it keeps the response
// head for the first write and hijacks the connection.
func (d *denseConn) open(ctx *fasthttp.RequestCtx, t turner) {
	d.st = t
	hdr := &ctx.Response.Header
	// fasthttp itself answers an HTTP/1.0 request for a body stream with
	// chunked encoding, which such a client cannot decode; here the body
	// is close-delimited for it instead.
	d.chunked = ctx.Request.Header.IsHTTP11()
	if d.chunked {
		hdr.SetContentLength(-1) // Transfer-Encoding: chunked
	} else {
		hdr.SetContentLength(-2) // identity: the body ends when the connection closes
	}
	// The socket is closed when the stream ends, never reused.
	hdr.SetConnectionClose()
	d.head = append([]byte(nil), hdr.Header()...)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(nc net.Conn) {
		if err := d.attach(nc); err != nil {
			d.st.close(writeReason(err))
		}
	})
}

// attach takes over the hijacked connection: it duplicates the socket's
// descriptor, closes nc, and queues the stream's first turn.
func (d *denseConn) attach(nc net.Conn) error {
	raw := nc
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	sc, ok := raw.(syscall.Conn)
	if !ok {
		_ = nc.Close()
		return fmt.Errorf("fastsse: dense transport: %T has no file descriptor", raw)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		_ = nc.Close()
		return err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		derr = err
	}
	_ = nc.Close()
	if derr != nil {
		return fmt.Errorf("fastsse: dense transport: dup: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	d.fd = fd
	id := d.conn.id
	d.set.mu.Lock()
	d.set.byID[id] = d
	d.set.mu.Unlock()
	if err := d.arm(unix.EPOLL_CTL_ADD); err != nil {
		d.set.mu.Lock()
		delete(d.set.byID, id)
		d.set.mu.Unlock()
		unix.Close(fd)
		d.fd = -1
		return err
	}
	d.attached.Store(true)
	// Messages sent before now found the stream not attached: their
	// wake-up may have been spent. This one runs them.
	d.wake()
	return nil
}

// arm (re)registers the descriptor: always for the client closing, and for
// writability while a write is pending.
func (d *denseConn) arm(op int) error {
	events := uint32(unix.EPOLLRDHUP | unix.EPOLLONESHOT)
	if d.pending != nil {
		events |= unix.EPOLLOUT
	}
	id := d.conn.id
	ev := unix.EpollEvent{Events: events, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	d.armed = events
	return unix.EpollCtl(d.set.epfd, op, d.fd, &ev)
}

// turn is the stream's turn on its shard: finish a pending write, or run
// the turn's next step, then re-arm the descriptor or end the stream.
func (d *denseConn) turn() {
	if !d.attached.Load() || d.fd < 0 {
		return
	}
	reason := d.step()
	if reason == nil {
		if d.pending == nil {
			d.since.Store(0)
		} else if d.since.Load() == 0 {
			d.since.Store(max(d.set.core.now(), 1))
		}
		// Re-arm only when needed: a syscall per batch would double the
		// cost of a delivery.
		wantOut := d.pending != nil
		if d.fired.Swap(false) || wantOut != (d.armed&unix.EPOLLOUT != 0) {
			if err := d.arm(unix.EPOLL_CTL_MOD); err != nil {
				reason = writeReason(err)
			}
		}
		if reason == nil {
			return
		}
	}
	d.st.close(reason)
}

func (d *denseConn) step() error {
	if d.gone_.Load() {
		// Messages that came for a client that left still run their
		// callbacks, and the events they produce go to HandleError as
		// unsendable (send fails), as a failed write would elsewhere.
		if d.started && d.pending == nil {
			if err := d.st.next(); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: %w", ErrClientGone, errPeerClosed)
	}
	if d.pending != nil {
		done, err := d.flushPending()
		if err != nil {
			return d.st.fail(err)
		}
		if !done {
			return d.conn.endingReason() // nil: wait for the socket; messages wait in the queue
		}
	}
	if !d.started {
		d.started = true
		if err := d.st.begin(); err != nil || d.pending != nil {
			return err
		}
		// Messages sent before the stream was attached are handled in the
		// same turn: their wake-up was spent on this one.
	}
	return d.st.next()
}

var crlf = []byte("\r\n")

// send is the dense sink: the batch goes out as one chunk with one writev
// (head, chunk size, payload, CRLF), without copying the payload. What the
// socket does not take now is kept and written when epoll says it can be.
func (d *denseConn) send(b []byte) error {
	if d.gone_.Load() {
		return errPeerClosed
	}
	size := &d.size
	iov := make([][]byte, 0, 4)
	if d.head != nil {
		iov = append(iov, d.head)
	}
	switch {
	case len(b) == 0:
	case d.chunked:
		h := strconv.AppendUint(size[:0], uint64(len(b)), 16)
		h = append(h, '\r', '\n')
		iov = append(iov, h, b, crlf)
	default:
		iov = append(iov, b)
	}
	if len(iov) == 0 {
		return nil
	}
	d.head = nil
	return d.writev(iov)
}

func (d *denseConn) writev(iov [][]byte) error {
	rest, err := writevFull(d.fd, iov)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		n := 0
		for _, v := range rest {
			n += len(v)
		}
		p := make([]byte, 0, n)
		for _, v := range rest {
			p = append(p, v...)
		}
		d.pending = p
	}
	return nil
}

// writevFull writes until done or EAGAIN, and returns what did not go out:
// the tail of iov, its first element shortened by what went out of it.
// (It shortens iov's elements in place, so the caller must take the rest
// from what it returns, not work it out again from iov and a count.)
func writevFull(fd int, iov [][]byte) ([][]byte, error) {
	for {
		n, err := rawWritev(fd, iov)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return iov, nil
		case err != nil:
			return iov, err
		}
		for n > 0 && len(iov) > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
		if len(iov) == 0 {
			return nil, nil
		}
	}
}

// flushPending writes what a partial write left; it reports whether all of
// it went out.
func (d *denseConn) flushPending() (bool, error) {
	for len(d.pending) > 0 {
		n, err := rawWrite(d.fd, d.pending)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		d.pending = d.pending[n:]
		if n > 0 {
			// The client reads, however slowly: the stall counts from
			// here (StallTimeout is time without progress).
			d.since.Store(max(d.set.core.now(), 1))
		}
	}
	d.pending = nil
	return true, nil
}

// finish writes the final chunk if the stream ended cleanly and the socket
// takes it at once, then forgets and closes the descriptor, and gives back
// the stream's place in the set.
func (d *denseConn) finish(clean bool) {
	if d.fd >= 0 {
		if clean && d.chunked && d.pending == nil && !d.gone_.Load() {
			_, _ = rawWrite(d.fd, []byte("0\r\n\r\n"))
		}
		_ = unix.EpollCtl(d.set.epfd, unix.EPOLL_CTL_DEL, d.fd, nil)
		unix.Close(d.fd)
		d.fd = -1
		d.set.mu.Lock()
		delete(d.set.byID, d.conn.id)
		d.set.mu.Unlock()
	}
	d.release()
}

func (*denseConn) name() string { return "dense" }
