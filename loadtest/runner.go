package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Phases of a run.
const (
	phaseConnect = iota
	phaseMeasure
	phaseStop
)

// dialers is how many connects run at once per process.
const dialers = 64

// runner holds one process's share of the connections: it dials them,
// reads them (epoll pollers or a goroutine each), reconnects or churns
// them, and sums up what it saw.
type runner struct {
	cfg    *Config
	conns  []*conn
	slots  []atomic.Pointer[conn] // open streams, by conn index
	shards []*shard               // by conn index modulo len(shards)
	// dialShard records what arrives with a response header: dialers parse
	// it, and must not touch a poller's histogram.
	dialShard *shard
	// slowShards and slowDialShard are the same for the slow readers
	// (Config.Slow), which read on goroutines of their own.
	slowShards    []*shard
	slowDialShard *shard
	all           []*shard // every shard
	polls         []*poller
	dial          []net.Dialer // one per source address
	slowDial      []net.Dialer // the same for slow readers, with SlowRcvBuf
	reqs          [][]byte     // per URL: the request up to the Last-Event-ID header
	slowReqs      [][]byte     // the same for the slow readers' URLs

	phase  atomic.Int32
	ctx    context.Context
	cancel context.CancelFunc
	dialQ  chan *conn
	idleQ  chan *conn // churn: conns waiting for their next connect

	wg     sync.WaitGroup // pacer and dialers
	pollWG sync.WaitGroup
	readWG sync.WaitGroup
	timeWG sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	timers    map[*conn]*time.Timer
	failedBy  map[string]int64
	droppedBy map[string]int64
	connHist  *hdr.Histogram

	opened, failed, dropped atomic.Int64
	reconnects, open, tried atomic.Int64
	sessions, noEvent       atomic.Int64
	slowOpen                atomic.Int64  // slow readers' streams open
	slowRate                atomic.Uint64 // slow readers' pace, bytes/s (float64 bits); 0: not measured yet

	start     time.Time
	measureAt time.Time
	rssStart  int64
	rssOpen   int64
	openAtRSS int64 // streams open when rssOpen was read
}

func newRunner(cfg *Config, sources []net.Dialer) (*runner, error) {
	r := &runner{
		cfg:       cfg,
		dial:      sources,
		timers:    map[*conn]*time.Timer{},
		failedBy:  map[string]int64{},
		droppedBy: map[string]int64{},
		connHist:  newHist(),
		dialQ:     make(chan *conn, cfg.Conns),
		idleQ:     make(chan *conn, cfg.Conns),
		slots:     make([]atomic.Pointer[conn], cfg.Conns),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.slowDial = slowDialers(sources, cfg.SlowRcvBuf)
	request := func(t target) []byte {
		var req bytes.Buffer
		fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sse-bench\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n", t.path, t.host)
		return req.Bytes()
	}
	for _, t := range cfg.targets {
		r.reqs = append(r.reqs, request(t))
	}
	for _, t := range cfg.slowTargets() {
		r.slowReqs = append(r.slowReqs, request(t))
	}

	nshards := 4 * runtime.GOMAXPROCS(0)
	if cfg.IO == IOEpoll {
		nshards = runtime.GOMAXPROCS(0)
	}
	for range nshards {
		r.shards = append(r.shards, &shard{lat: newHist(), age: newHist(), locked: cfg.IO != IOEpoll})
	}
	if cfg.IO == IOEpoll {
		for i, s := range r.shards {
			p, err := newPoller(r, i, s)
			if err != nil {
				r.closePollers()
				return nil, err
			}
			r.polls = append(r.polls, p)
		}
	}
	r.dialShard = &shard{lat: newHist(), age: newHist(), locked: true}
	r.all = append(append([]*shard(nil), r.shards...), r.dialShard)
	if cfg.Slow > 0 {
		for range runtime.GOMAXPROCS(0) {
			r.slowShards = append(r.slowShards, &shard{lat: newHist(), age: newHist(), locked: true})
		}
		r.slowDialShard = &shard{lat: newHist(), age: newHist(), locked: true}
		r.all = append(append(r.all, r.slowShards...), r.slowDialShard)
	}
	r.conns = make([]*conn, cfg.Conns)
	for i := range r.conns {
		c := &conn{r: r, s: r.shards[i%nshards], idx: int32(i), src: int32(i % len(sources)), tgt: int32(i % len(cfg.targets)), fd: -1}
		if isSlow(i, cfg.Slow) {
			c.slow, c.s = true, r.slowShards[i%len(r.slowShards)]
			c.tgt = int32(i % len(r.slowReqs))
		}
		r.conns[i] = c
	}
	return r, nil
}

func (r *runner) stopping() bool { return r.phase.Load() == phaseStop }

// run starts the pollers, the dialers and the pacer.
func (r *runner) run() {
	r.start = time.Now()
	r.rssStart = selfRSS()
	for _, p := range r.polls {
		r.pollWG.Add(1)
		go p.run()
	}
	r.wg.Add(dialers + 1)
	for range dialers {
		go r.dialer()
	}
	if r.cfg.Slow > 0 {
		r.wg.Add(1)
		go r.calibrate()
	}
	if r.cfg.Mode == ModeChurn {
		for _, c := range r.conns {
			r.idleQ <- c
		}
		go r.pace(r.cfg.ChurnRate)
	} else {
		go r.pace(r.cfg.Ramp)
	}
}

// pace hands conns to the dialers at rate per second (0: at once): the
// initial connects, or for churn every connect.
func (r *runner) pace(rate float64) {
	defer r.wg.Done()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	churn := r.cfg.Mode == ModeChurn
	sent := 0
	for {
		allowed := len(r.conns)
		if rate > 0 || churn {
			allowed = int(time.Since(r.start).Seconds()*rate) + 1
			if !churn {
				allowed = min(allowed, len(r.conns))
			}
		}
		for ; sent < allowed; sent++ {
			if !churn {
				r.dialQ <- r.conns[sent]
				continue
			}
			select {
			case c := <-r.idleQ:
				r.dialQ <- c
			default:
				sent = allowed - 1 // none idle: do not bank the tokens
			}
		}
		if !churn && sent == len(r.conns) {
			return
		}
		select {
		case <-t.C:
		case <-r.ctx.Done():
			return
		}
	}
}

func (r *runner) dialer() {
	defer r.wg.Done()
	buf := make([]byte, 8<<10)
	for {
		select {
		case <-r.ctx.Done():
			return
		case c := <-r.dialQ:
			r.connect(c, buf)
		}
	}
}

// connect opens c's stream: dial, request, response header; then hands it
// to a poller or a reader goroutine.
func (r *runner) connect(c *conn, buf []byte) {
	if r.stopping() {
		return
	}
	start := time.Now()
	targets, reqs, dial := r.cfg.targets, r.reqs, r.dial
	if c.slow {
		targets, reqs, dial = r.cfg.slowTargets(), r.slowReqs, r.slowDial
	}
	nc, err := dial[c.src].DialContext(r.ctx, "tcp", targets[c.tgt].addr.String())
	if err != nil {
		r.ended(c, causeOf(err), false)
		return
	}
	stop := context.AfterFunc(r.ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	_ = nc.SetDeadline(start.Add(r.cfg.Timeout))
	req := append(buf[:0], reqs[c.tgt]...)
	if len(c.lastID) > 0 && r.cfg.Mode != ModeChurn {
		req = append(append(append(req, "Last-Event-ID: "...), c.lastID...), "\r\n"...)
	}
	req = append(req, "\r\n"...)
	n, end, cause := 0, -1, ""
	if _, err = nc.Write(req); err == nil {
		for end < 0 && n < len(buf) {
			var k int
			k, err = nc.Read(buf[n:])
			n += k
			end = headerEnd(buf[:n])
			if err != nil {
				break
			}
		}
	}
	stop()
	var resp response
	switch {
	case end >= 0:
		if resp, err = parseResponseHeader(buf[:end]); err != nil {
			cause = causeProtocol
		} else if resp.status != 200 {
			cause = "http_" + strconv.Itoa(resp.status)
		} else if !resp.eventStream {
			cause = causeNotStream
		}
	case err != nil:
		cause = causeOf(err)
	default:
		cause = causeProtocol // header too long
	}
	if cause == "" && r.stopping() {
		cause = causeOther // not counted once stopping
	}
	if cause != "" {
		_ = nc.Close()
		r.ended(c, cause, false)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	now := time.Now()
	r.mu.Lock()
	_ = r.connHist.RecordValue(max(now.Sub(start).Microseconds(), histMin))
	r.mu.Unlock()

	c.opened, c.session, c.tries = now.UnixNano(), 0, 0
	if !c.tried {
		c.tried = true
		r.tried.Add(1)
	}
	if c.everOpen && r.cfg.Mode != ModeChurn {
		r.reconnects.Add(1)
	}
	c.everOpen = true
	r.opened.Add(1)
	r.open.Add(1)
	if c.slow {
		r.slowOpen.Add(1)
	}
	c.body.Reset(resp.framing, resp.length)
	if r.cfg.Mode != ModeChurn {
		// The buffer outlives the connection, as an EventSource's does: a
		// stream cut before its first id reconnects with the same one.
		c.body.Parser.SetLastEventID(c.lastID)
	}
	home := c.s
	c.s = r.dialShard
	if c.slow {
		c.s = r.slowDialShard
	}
	err = c.feed(buf[end:n], now.UnixNano())
	c.s = home
	if err != nil {
		_ = nc.Close()
		r.ended(c, causeOf(err), true)
		return
	}
	if r.cfg.Mode == ModeChurn && c.session > 0 {
		_ = nc.Close()
		r.ended(c, "", true)
		return
	}
	if c.slow {
		c.nc = nc
		r.slots[c.idx].Store(c)
		r.readWG.Add(1)
		go r.readSlow(c, nc)
		return
	}
	if r.cfg.IO == IOEpoll {
		r.attach(c, nc)
		return
	}
	c.nc = nc
	r.slots[c.idx].Store(c)
	r.readWG.Add(1)
	go r.read(c, nc)
}

// read is the goroutine that reads c's stream (goroutine mode).
func (r *runner) read(c *conn, nc net.Conn) {
	defer r.readWG.Done()
	churn := r.cfg.Mode == ModeChurn
	if churn {
		_ = nc.SetReadDeadline(time.Unix(0, c.opened).Add(r.cfg.ChurnHold))
	}
	buf := make([]byte, 4<<10)
	cause := ""
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			if ferr := c.feed(buf[:n], time.Now().UnixNano()); ferr != nil {
				cause = causeOf(ferr)
				break
			}
			if churn && c.session > 0 {
				break
			}
		}
		if err != nil {
			cause = causeOf(err)
			if churn && cause == causeTimeout {
				cause = ""
				r.noEvent.Add(1)
			}
			break
		}
	}
	r.slots[c.idx].Store(nil)
	_ = nc.Close()
	r.ended(c, cause, true)
}

// ended is called by c's owner when a connect failed (open false) or an
// open stream ended (open true; cause "" when the client closed it, for
// churn). It counts the cause and schedules what comes next.
func (r *runner) ended(c *conn, cause string, open bool) {
	churn := r.cfg.Mode == ModeChurn
	if open {
		r.open.Add(-1)
		if c.slow {
			r.slowOpen.Add(-1)
		}
		if cause != "" && (!r.stopping() || serverEnded(cause)) {
			c.drops++
		}
		c.endSession(churn)
	}
	if r.stopping() {
		return
	}
	if !open {
		if !c.tried {
			c.tried = true
			r.tried.Add(1)
		}
		c.tries++
	}
	if cause != "" {
		r.mu.Lock()
		if open {
			r.droppedBy[cause]++
			r.dropped.Add(1)
		} else {
			r.failedBy[cause]++
			r.failed.Add(1)
		}
		r.mu.Unlock()
	} else {
		r.sessions.Add(1)
	}
	if cause != "" {
		// A stream that dropped, or a connect that failed, goes on at the
		// next URL: an instance that died is not waited for.
		n := len(r.cfg.targets)
		if c.slow {
			n = len(r.cfg.slowTargets())
		}
		c.tgt = (c.tgt + 1) % int32(n)
	}
	if churn {
		r.idleQ <- c // never blocks: it holds every conn at most once
		return
	}
	r.reconnectLater(c)
}

// reconnectLater dials c again after the server's retry hint (1 s without
// one), doubled per consecutive failure up to 10 s, jittered ±50%.
func (r *runner) reconnectLater(c *conn) {
	d := time.Second
	if c.retryMS > 0 {
		d = time.Duration(c.retryMS) * time.Millisecond
	}
	for i := 1; i < c.tries && d < 10*time.Second; i++ {
		d *= 2
	}
	d = min(d, 10*time.Second)
	d = d/2 + rand.N(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping() {
		return
	}
	r.timeWG.Add(1)
	r.timers[c] = time.AfterFunc(d, func() {
		defer r.timeWG.Done()
		r.mu.Lock()
		_, ok := r.timers[c]
		delete(r.timers, c)
		r.mu.Unlock()
		if ok {
			r.dialQ <- c
		}
	})
}

// measure starts the measuring window.
func (r *runner) measure() {
	r.rssOpen = selfRSS()
	r.openAtRSS = r.open.Load()
	r.measureAt = time.Now()
	r.phase.Store(phaseMeasure)
}

// stop ends the run: every goroutine returns, every socket is closed, and
// the result is summed up.
func (r *runner) stop() *partial {
	window := 0.0
	if r.phase.Load() == phaseMeasure {
		window = time.Since(r.measureAt).Seconds()
	}
	r.phase.Store(phaseStop)
	r.cancel()
	r.mu.Lock()
	for c, t := range r.timers {
		if t.Stop() {
			r.timeWG.Done()
		}
		delete(r.timers, c)
	}
	r.mu.Unlock()
	r.timeWG.Wait()
	r.wg.Wait()
	r.pollWG.Wait()
	if r.cfg.Slow > 0 {
		// Slow readers now read without pause: what they still held
		// unread may be the end of a stream the server closed.
		time.Sleep(slowReadOut)
	}
	openAtEnd := r.open.Load()
	var openSlow int64
	for i := range r.slots {
		if c := r.slots[i].Load(); c != nil && c.slow {
			openSlow++
		}
	}
	for i := range r.slots {
		if c := r.slots[i].Load(); c != nil {
			if c.nc != nil {
				_ = c.nc.Close()
			}
		}
	}
	r.readWG.Wait()
	for i := range r.slots {
		if c := r.slots[i].Load(); c != nil && c.fd >= 0 {
			closeFD(c.fd)
			c.fd = -1
		}
	}
	r.closePollers()
	p := r.summary(openAtEnd)
	p.WindowS = window
	if r.cfg.Slow > 0 || r.cfg.Keyed {
		p.Fast = r.groupSummary(false, r.fastShards(), openAtEnd-openSlow)
		if r.cfg.Slow > 0 {
			p.Slow = r.groupSummary(true, append(r.slowShards[:len(r.slowShards):len(r.slowShards)], r.slowDialShard), openSlow)
		}
		for _, g := range []*groupPartial{p.Fast, p.Slow} {
			if g != nil && window > 0 {
				g.DeliveriesPerS = float64(g.WindowEvents) / window
				g.BytesPerS = float64(g.WindowBytes) / window
			}
		}
	}
	return p
}

func (r *runner) closePollers() {
	for _, p := range r.polls {
		p.close()
	}
}

// progress is a snapshot of the counters.
func (r *runner) progress() snapshot {
	p := snapshot{
		Tried:      r.tried.Load(),
		Open:       r.open.Load(),
		Opened:     r.opened.Load(),
		Failed:     r.failed.Load(),
		Dropped:    r.dropped.Load(),
		Reconnects: r.reconnects.Load(),
		Sessions:   r.sessions.Load(),
		CPU:        selfCPU().Seconds(),
		RSS:        selfRSS(),
		Procs:      runtime.GOMAXPROCS(0),
	}
	for _, s := range r.all {
		p.Events += s.events.Load()
		p.Bytes += s.bytes.Load()
		p.Gaps += s.gaps.Load()
		p.Dups += s.dups.Load()
		p.MaxLatencyUS = max(p.MaxLatencyUS, s.maxLat.Swap(0))
	}
	return p
}

// summary sums up the run; every goroutine has returned.
func (r *runner) summary(openAtEnd int64) *partial {
	p := &partial{
		snapshot:  r.progress(),
		OpenAtEnd: openAtEnd,
		FailedBy:  r.failedBy,
		DroppedBy: r.droppedBy,
		NoEvent:   r.noEvent.Load(),
		RSSStart:  r.rssStart,
		RSSOpen:   r.rssOpen,
		OpenAtRSS: r.openAtRSS,
		Conns:     int64(len(r.conns)),
	}
	lat := newHist()
	for _, s := range r.all {
		p.WindowEvents += s.wEvents.Load()
		p.WindowBytes += s.wBytes.Load()
		lat.Merge(s.lat)
	}
	p.ConnEventsMin = -1
	for _, c := range r.conns {
		p.IDsSpanned += c.idsSpanned()
		if p.ConnEventsMin < 0 || c.events < p.ConnEventsMin {
			p.ConnEventsMin = c.events
		}
		p.ConnEventsMax = max(p.ConnEventsMax, c.events)
	}
	p.Latency = encodeHist(lat)
	p.Connect = encodeHist(r.connHist)
	return p
}

func encodeHist(h *hdr.Histogram) []byte {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		panic(err) // only for an unknown version
	}
	return b
}
