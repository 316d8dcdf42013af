//go:build linux

package fastsse

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

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
//     without waiting for them. The library watches ctx.Done itself and
//     ends them, but without waiting: call Endpoint.Drain before Shutdown.

const denseSupported = true

// denseConn is a Conn's dense-transport part.
type denseConn struct {
	set   *denseSet
	shard *denseShard
	step  func()          // the stream's denseStep
	done  <-chan struct{} // the server's shutdown signal

	scheduled atomic.Bool  // queued on the shard, or being stepped
	attached  atomic.Bool  // the hijack handler has handed over the socket
	gone      atomic.Bool  // epoll saw the client close
	since     atomic.Int64 // core clock when the write still pending began; 0: none
	fired     atomic.Bool  // an event fired, so the one-shot registration is disarmed

	// Owned by the shard goroutine once attached.
	fd      int
	head    []byte // response head, sent with the first batch
	pending []byte // unsent rest of a partial write
	started bool
	chunked bool   // HTTP/1.1: chunked framing; else the body is close-delimited
	armed   uint32 // events the descriptor is armed for
}

func (d *denseConn) schedule(c *Conn) {
	if d.scheduled.Swap(true) {
		return
	}
	d.shard.push(c)
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

	mu      sync.Mutex
	byID    map[uint64]*Conn
	watched map[<-chan struct{}]bool
	n       int // dense streams, from serve to end
}

type denseShard struct {
	size  [18]byte // chunk-size scratch for the stream being stepped
	mu    sync.Mutex
	ready []*Conn
	spare []*Conn
	kick  chan struct{}
}

func (sh *denseShard) push(c *Conn) {
	sh.mu.Lock()
	sh.ready = append(sh.ready, c)
	first := len(sh.ready) == 1
	sh.mu.Unlock()
	if first {
		select {
		case sh.kick <- struct{}{}:
		default:
		}
	}
}

// denseAcquire counts one more dense stream, starting the machinery if it
// is not running.
func (c *core) denseAcquire() (*denseSet, error) {
	c.denseMu.Lock()
	defer c.denseMu.Unlock()
	if c.dense == nil {
		s, err := startDense(c)
		if err != nil {
			return nil, err
		}
		c.dense = s
	}
	c.dense.mu.Lock()
	c.dense.n++
	c.dense.mu.Unlock()
	return c.dense, nil
}

// denseRelease counts one dense stream less, stopping the machinery at 0.
func (c *core) denseRelease(s *denseSet) {
	c.denseMu.Lock()
	s.mu.Lock()
	s.n--
	last := s.n == 0
	s.mu.Unlock()
	if last && c.dense == s {
		c.dense = nil
	}
	c.denseMu.Unlock()
	if last {
		s.shutdown()
	}
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
		byID: make(map[uint64]*Conn), watched: make(map[<-chan struct{}]bool),
	}
	n := max(1, runtime.GOMAXPROCS(0))
	for range n {
		sh := &denseShard{kick: make(chan struct{}, 1)}
		s.shards = append(s.shards, sh)
		s.wg.Add(1)
		go s.run(sh)
	}
	s.wg.Add(1)
	go s.poll()
	return s, nil
}

// shutdown stops the set's goroutines. It may run on one of them (the
// shard that ended the last stream), so it does not wait: the descriptors
// are closed once all have returned.
func (s *denseSet) shutdown() {
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

// watch ends the set's streams of a server when it shuts down.
func (s *denseSet) watch(done <-chan struct{}) {
	if done == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watched[done] {
		return
	}
	s.watched[done] = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-done:
		case <-s.stop:
			return
		}
		s.mu.Lock()
		var ending []*Conn
		for _, c := range s.byID {
			if c.dn.done == done {
				ending = append(ending, c)
			}
		}
		s.mu.Unlock()
		for _, c := range ending {
			c.endSoon(ErrShutdown)
		}
	}()
}

// run is a writer shard: it steps the streams that have work.
func (s *denseSet) run(sh *denseShard) {
	defer s.wg.Done()
	for {
		select {
		case <-sh.kick:
		case <-s.stop:
			return
		}
		for {
			// Two slices take turns: push appends to ready while this
			// goroutine steps through the other. spare is this
			// goroutine's alone.
			sh.mu.Lock()
			batch := sh.ready
			sh.ready, sh.spare = sh.spare[:0], nil
			sh.mu.Unlock()
			for i, c := range batch {
				batch[i] = nil
				c.dn.scheduled.Store(false)
				c.dn.step()
			}
			sh.spare = batch[:0]
			if len(batch) == 0 {
				break
			}
		}
	}
}

// poll turns socket events into work: a closed socket ends its stream, a
// writable one resumes its pending write. Descriptors are armed one-shot,
// so an event fires once until the shard re-arms it, and only the shard
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
			c := s.byID[id]
			s.mu.Unlock()
			if c == nil {
				continue
			}
			if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.dn.gone.Store(true)
			}
			c.dn.fired.Store(true)
			c.dn.schedule(c)
		}
	}
}

// attach takes over the hijacked connection: it duplicates the socket's
// descriptor, closes nc, and schedules the stream's first step.
func (d *denseConn) attach(c *Conn, nc net.Conn) error {
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
	d.set.mu.Lock()
	d.set.byID[c.id] = c
	d.set.mu.Unlock()
	if err := d.arm(c, unix.EPOLL_CTL_ADD); err != nil {
		d.set.mu.Lock()
		delete(d.set.byID, c.id)
		d.set.mu.Unlock()
		unix.Close(fd)
		d.fd = -1
		return err
	}
	d.attached.Store(true)
	d.scheduled.Store(false)
	d.schedule(c)
	return nil
}

// arm (re)registers the descriptor: always for the client closing, and for
// writability while a write is pending.
func (d *denseConn) arm(c *Conn, op int) error {
	events := uint32(unix.EPOLLRDHUP | unix.EPOLLONESHOT)
	if d.pending != nil {
		events |= unix.EPOLLOUT
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(uint32(c.id)), Pad: int32(uint32(c.id >> 32))}
	d.armed = events
	return unix.EpollCtl(d.set.epfd, op, d.fd, &ev)
}

var crlf = []byte("\r\n")

// send is the dense sink: the batch goes out as one chunk with one writev
// (head, chunk size, payload, CRLF), without copying the payload. What the
// socket does not take now is kept and written when epoll says it can be.
func (d *denseConn) send(b []byte) error {
	size := &d.shard.size // the shard's: a stack array would escape through writev
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
		n, err := unix.Writev(fd, iov)
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
		n, err := unix.Write(d.fd, d.pending)
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
	}
	d.pending = nil
	return true, nil
}

// close writes the final chunk if the stream ended cleanly and the socket
// takes it at once, then forgets and closes the descriptor.
func (d *denseConn) close(c *Conn, clean bool) {
	if d.fd < 0 {
		return
	}
	if clean && d.chunked && d.pending == nil && !d.gone.Load() {
		_, _ = unix.Write(d.fd, []byte("0\r\n\r\n"))
	}
	_ = unix.EpollCtl(d.set.epfd, unix.EPOLL_CTL_DEL, d.fd, nil)
	unix.Close(d.fd)
	d.fd = -1
	d.set.mu.Lock()
	delete(d.set.byID, c.id)
	d.set.mu.Unlock()
}

// denseStep is a dense stream's turn on its shard: finish a pending write,
// or handle what is queued, as the stream transport's loop does.
func (st *stream[S]) denseStep() {
	c, d := st.conn, st.conn.dn
	if !d.attached.Load() || d.fd < 0 {
		return
	}
	reason := st.denseTurn(c, d)
	if reason == nil {
		if d.pending == nil {
			d.since.Store(0)
		} else if d.since.Load() == 0 {
			d.since.Store(st.core.now())
		}
		// Re-arm only when needed: a syscall per batch would double the
		// cost of a delivery.
		wantOut := d.pending != nil
		if d.fired.Swap(false) || wantOut != (d.armed&unix.EPOLLOUT != 0) {
			if err := d.arm(c, unix.EPOLL_CTL_MOD); err != nil {
				reason = writeReason(err)
			}
		}
		if reason == nil {
			return
		}
	}
	// The final chunk tells the client the stream ended (so it reconnects),
	// as fasthttp writes it for the stream transport: after Stop, a
	// shutdown, the lifetime or a panic, whenever the socket can take it.
	clean := !errors.Is(reason, ErrClientGone) && !errors.Is(reason, ErrWriteFailed) && !errors.Is(reason, ErrSlowConsumer)
	d.close(c, clean)
	st.end(reason)
	st.core.denseRelease(d.set)
}

func (st *stream[S]) denseTurn(c *Conn, d *denseConn) (reason error) {
	defer func() {
		if r := recover(); r != nil {
			reason = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if d.gone.Load() {
		// Messages that came for a client that left still run their
		// callbacks, and the events they produce go to HandleError as
		// unsendable, as a failed write would on the stream transport.
		if d.started && d.pending == nil {
			if err := st.step(goneSink{}); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: %w", ErrClientGone, errPeerClosed)
	}
	if d.pending != nil {
		done, err := d.flushPending()
		if err != nil {
			st.state = st.h.HandleError(Event{}, err, st.state)
			return writeReason(err)
		}
		if !done {
			c.mu.Lock()
			ending := c.ending
			c.mu.Unlock()
			return ending // nil: wait for the socket; messages wait in the queue
		}
	}
	if !d.started {
		d.started = true
		if err := st.start(d); err != nil || d.pending != nil {
			return err
		}
		// Messages sent before the stream was attached are handled in the
		// same turn: their wake-up was spent on this one.
	}
	return st.step(d)
}

// goneSink is where a batch for a client that left goes: nowhere.
type goneSink struct{}

func (goneSink) send([]byte) error { return errPeerClosed }

// newConn makes a dense stream's part, ready to be scheduled (by a message
// sent during Init) before the stream is attached.
func (s *denseSet) newConn(id uint64, step func()) *denseConn {
	return &denseConn{set: s, shard: s.shards[id%uint64(len(s.shards))], step: step, fd: -1}
}

// serveDense hands an opened stream to the dense transport: it keeps the
// response head for the first write and hijacks the connection.
func serveDense[S any](st *stream[S], ctx *fasthttp.RequestCtx) {
	c, d := st.conn, st.conn.dn
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
	d.done = ctx.Done()
	d.set.watch(d.done)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(nc net.Conn) {
		if err := d.attach(c, nc); err != nil {
			st.end(writeReason(err))
			st.core.denseRelease(d.set)
		}
	})
}
