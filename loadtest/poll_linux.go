package loadtest

import (
	"errors"
	"net"
	"syscall"
	"time"
)

const (
	haveEpoll = true
	defaultIO = IOEpoll
)

// poller reads the streams of its share of the connections: one goroutine,
// one epoll set (level-triggered), one 64 KB read buffer for all of them.
// A connection costs its conn struct and a socket, no goroutine, no buffer
// (a line split across reads is the only thing kept).
type poller struct {
	r    *runner
	id   int
	s    *shard
	epfd int
}

func newPoller(r *runner, id int, s *shard) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{r: r, id: id, s: s, epfd: fd}, nil
}

func (p *poller) close() { _ = syscall.Close(p.epfd) }

func closeFD(fd int) { _ = syscall.Close(fd) }

// attach moves an open stream from nc to its poller: the socket is
// duplicated out of Go's netpoller and nc is closed.
func (r *runner) attach(c *conn, nc net.Conn) {
	fd, err := dupConn(nc)
	_ = nc.Close()
	if err != nil {
		r.ended(c, causeOf(err), true)
		return
	}
	c.fd = fd
	p := r.polls[int(c.idx)%len(r.polls)]
	r.slots[c.idx].Store(c)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd), Pad: c.idx}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		r.slots[c.idx].Store(nil)
		closeFD(fd)
		c.fd = -1
		r.ended(c, causeOf(err), true)
	}
}

// dupConn returns a non-blocking, close-on-exec duplicate of nc's socket.
func dupConn(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		fd, derr = syscall.Dup(int(s))
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		closeFD(fd)
		return -1, err
	}
	return fd, nil
}

func (p *poller) run() {
	defer p.r.pollWG.Done()
	r := p.r
	churn := r.cfg.Mode == ModeChurn
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	nextScan := time.Now()
	for !r.stopping() {
		n, err := syscall.EpollWait(p.epfd, events, 50)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return
		}
		for i := range max(n, 0) {
			ev := &events[i]
			c := r.slots[ev.Pad].Load()
			if c == nil || c.fd != int(ev.Fd) {
				continue
			}
			k, err := syscall.Read(c.fd, buf)
			switch {
			case k > 0:
				if ferr := c.feed(buf[:k], time.Now().UnixNano()); ferr != nil {
					p.end(c, causeOf(ferr))
				} else if churn && c.session > 0 {
					p.end(c, "")
				}
			case k == 0:
				p.end(c, causeEOF)
			case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			default:
				p.end(c, causeOf(err))
			}
		}
		if churn && time.Now().After(nextScan) {
			nextScan = p.expire()
		}
	}
}

// expire ends churn sessions that have waited ChurnHold without an event,
// and returns when to look again.
func (p *poller) expire() time.Time {
	r := p.r
	now := time.Now()
	hold := r.cfg.ChurnHold.Nanoseconds()
	for i := p.id; i < len(r.slots); i += len(r.polls) {
		if c := r.slots[i].Load(); c != nil && now.UnixNano()-c.opened >= hold {
			r.noEvent.Add(1)
			p.end(c, "")
		}
	}
	return now.Add(min(r.cfg.ChurnHold/4, 100*time.Millisecond))
}

// end closes c's socket and hands c on (reconnect, churn, or nothing).
func (p *poller) end(c *conn, cause string) {
	p.r.slots[c.idx].Store(nil)
	closeFD(c.fd)
	c.fd = -1
	p.r.ended(c, cause, true)
}
