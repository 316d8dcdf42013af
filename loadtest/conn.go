package loadtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram ranges, in microseconds.
const (
	histMin    = 1
	histMax    = 3600 * 1000 * 1000 // one hour
	histDigits = 3
)

func newHist() *hdr.Histogram { return hdr.New(histMin, histMax, histDigits) }

// shard holds the counters and the latency histogram of a set of
// connections. With epoll each poller owns one shard and records into its
// histogram without a lock; with a goroutine per connection the shard's
// connections share it under mu.
type shard struct {
	mu      sync.Mutex // goroutine mode only
	locked  bool
	lat     *hdr.Histogram
	age     *hdr.Histogram // Keyed: ages of the values held, µs
	events  atomic.Int64
	wEvents atomic.Int64 // events received in the measuring window
	bytes   atomic.Int64
	wBytes  atomic.Int64
	gaps    atomic.Int64
	dups    atomic.Int64
	maxLat  atomic.Int64 // largest latency (µs) since the last progress report

	lossEvents, lossDropped, lossConflated atomic.Int64 // fastsse's loss signals and their counts
	_                                      [64]byte     // keep shards off each other's cache lines
}

// record notes a delivery latency: always in maxLat (for the progress
// line), and in the histogram when inWindow.
func (s *shard) record(us int64, inWindow bool) {
	if us < 0 {
		us = 0 // a clock step; the send time is from the same machine
	} else if us > histMax {
		us = histMax
	}
	switch {
	case !inWindow:
	case s.locked:
		s.mu.Lock()
		_ = s.lat.RecordValue(us)
		s.mu.Unlock()
	default:
		_ = s.lat.RecordValue(us)
	}
	for {
		m := s.maxLat.Load()
		if us <= m || s.maxLat.CompareAndSwap(m, us) {
			return
		}
	}
}

// conn is one simulated client. It outlives its TCP connections: a dropped
// stream reconnects on the same conn, keeping its id accounting. One
// goroutine owns a conn at a time (a dialer, then its poller or reader); it
// is handed over through the dial queue, a timer, or an atomic slot.
type conn struct {
	r      *runner
	s      *shard
	idx    int32
	src    int32 // index into the runner's dialers (source addresses)
	tgt    int32 // index into the config's targets (URLs)
	fd     int   // epoll: the socket, -1 when none
	nc     net.Conn
	body   bodyDecoder
	now    int64 // receive time of the piece being parsed, Unix ns
	opened int64 // when the stream opened, Unix ns

	haveID  bool
	epoch   []byte // the epoch of the ids seen, when they have one
	first   int64  // first id of this run of consecutive sessions
	last    int64  // highest id seen
	spanned int64  // ids spanned by finished churn sessions
	events  int64  // events received, all sessions
	session int64  // events received in the current session

	lastID   []byte // Last-Event-ID for a reconnect
	retryMS  int64  // the server's retry hint, 0 when none
	tries    int    // consecutive failed connects
	everOpen bool
	tried    bool // the first attempt has completed

	slow   bool           // a slow reader (Config.Slow)
	drops  int64          // streams it lost
	keyIdx map[string]int // Keyed: index into held by key
	held   []int64        // Keyed: time of the value held, per key
	agedAt int64          // Keyed: when its ages were last sampled
}

// OnEvent implements EventHandler.
func (c *conn) OnEvent(ev *Event) {
	if string(ev.Type) == lasseLoss {
		c.onLoss(ev.Data) // a signal, not a delivery
		return
	}
	s := c.s
	c.events++
	c.session++
	s.events.Add(1)
	measuring := c.r.phase.Load() == phaseMeasure
	if measuring {
		s.wEvents.Add(1)
	}
	if ts, ok := leadingInt(ev.Data); ok {
		s.record((c.now-ts)/1000, measuring)
		if c.r.cfg.Keyed {
			c.keyedValue(ev.Data, ts)
		}
	}
	if !ev.IDSet {
		return
	}
	// fastsse's group ids are EPOCH-SEQ; a bare number is a sequence with
	// no epoch. A new epoch is a sequence unrelated to the last one: the
	// client may have missed anything, counted as one gap.
	epoch, seq := splitID(ev.ID)
	id, ok := parseDigits(seq)
	if !ok {
		return
	}
	if c.haveID && !bytes.Equal(epoch, c.epoch) {
		s.gaps.Add(1)
		c.haveID = false
	}
	c.epoch = append(c.epoch[:0], epoch...)
	switch {
	case !c.haveID:
		c.haveID, c.first, c.last = true, id, id
	case id == c.last+1:
		c.last = id
	case id > c.last+1:
		s.gaps.Add(id - c.last - 1)
		c.last = id
	default:
		s.dups.Add(1)
	}
}

// splitID splits an id EPOCH-SEQ at its last dash; an id without one is
// all sequence.
func splitID(id []byte) (epoch, seq []byte) {
	i := bytes.LastIndexByte(id, '-')
	if i < 0 {
		return nil, id
	}
	return id[:i], id[i+1:]
}

// feed parses a piece of the body received at now.
func (c *conn) feed(b []byte, now int64) error {
	c.now = now
	if c.r.cfg.Keyed {
		c.sampleAges(now)
	}
	c.s.bytes.Add(int64(len(b)))
	if c.r.phase.Load() == phaseMeasure {
		c.s.wBytes.Add(int64(len(b)))
	}
	return c.body.Feed(b, c)
}

// endSession keeps what a reconnect needs and, for churn, closes the id
// accounting of the session (the next one starts a new baseline).
func (c *conn) endSession(churn bool) {
	if r, ok := c.body.Parser.Retry(); ok {
		c.retryMS = r
	}
	c.lastID = append(c.lastID[:0], c.body.Parser.LastEventID()...)
	if churn && c.haveID {
		c.spanned += c.last - c.first + 1
		c.haveID = false
	}
	c.body.Reset(framingClose, 0)
}

// idsSpanned is the number of ids from each baseline to the last id seen.
func (c *conn) idsSpanned() int64 {
	n := c.spanned
	if c.haveID {
		n += c.last - c.first + 1
	}
	return n
}

// Causes of failed connects and dropped streams.
const (
	causeEnded     = "ended"   // the server ended the stream (last chunk)
	causeEOF       = "eof"     // the server closed the connection
	causeRefused   = "refused" // connection refused
	causeReset     = "reset"
	causeNoPort    = "no_port" // no free source port / address
	causeFiles     = "too_many_files"
	causeTimeout   = "timeout"
	causeProtocol  = "protocol" // bad HTTP or chunked framing
	causeNotStream = "not_event_stream"
	causeOther     = "other"
)

// causeOf names the cause of a connection error.
func causeOf(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errEnded):
		return causeEnded
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return causeEOF
	case errors.Is(err, syscall.ECONNREFUSED):
		return causeRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return causeReset
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return causeNoPort
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return causeFiles
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return causeTimeout
	case errors.Is(err, errChunked), errors.Is(err, errHeader):
		return causeProtocol
	}
	return causeOther
}

// srcAddr returns a as a *net.TCPAddr with port 0.
func srcAddr(a netip.Addr) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
}

// dialer returns the dialer of one source address (nil: the kernel picks):
// no keep-alive probes, c.Timeout, and with c.SockBuf the socket's buffers
// set before the connect, so that the window the client offers is small
// from the SYN on.
func (c *Config) dialer(local *net.TCPAddr) net.Dialer {
	d := net.Dialer{Timeout: c.Timeout, KeepAlive: -1}
	if local != nil {
		d.LocalAddr = local
	}
	if n := c.SockBuf; n > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = setSockBuf(fd, n) })
			return errors.Join(err, serr)
		}
	}
	return d
}
