package fastsse

import (
	"context"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Endpoint serves one event-stream route. Build it with New. Its
// ServeFastHTTP method is the fasthttp.RequestHandler, and HTTPHandler
// serves the same route from a net/http server. An Endpoint holds no
// goroutine while it has no open stream.
type Endpoint struct {
	serveFast func(ctx *fasthttp.RequestCtx)
	serveHTTP func(w http.ResponseWriter, r *http.Request)
	core      *core
}

// New builds an Endpoint that serves h. opts may be nil. A nil h is refused
// with ErrNilHandler (lasse's module_option_missing), and TransportDense
// where it is not supported (outside Linux) with ErrDenseUnsupported.
//
// New returns an *Endpoint rather than a bare fasthttp.RequestHandler so that
// the counters (Stats) have a home; ep.ServeFastHTTP is the RequestHandler.
func New[S any](h Handler[S], opts *Options) (*Endpoint, error) {
	if isNil(h) {
		return nil, ErrNilHandler
	}
	o := opts.withDefaults()
	if err := checkTransport(&o); err != nil {
		return nil, err
	}
	if o.Conflation > ConflateAlways || o.Limits.KeyInterval < 0 || o.Limits.Events < 0 || o.Limits.Bytes < 0 {
		return nil, ErrInvalidLimits
	}
	c := &core{opts: o, epoch: time.Now(), rings: ringPool{limit: o.QueueSize}}
	for i := range c.shards {
		c.shards[i].m = make(map[*Conn]struct{})
	}
	c.hbKick = make(chan struct{}, 1)
	c.shutWatch = make(map[<-chan struct{}]*shutWatch)
	e := &endpoint[S]{h: h, core: c}
	return &Endpoint{serveFast: e.serveFast, serveHTTP: e.serveHTTP, core: c}, nil
}

func isNil(h any) bool {
	if h == nil {
		return true
	}
	v := reflect.ValueOf(h)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// ServeFastHTTP serves one request: GET runs Init; any other method,
// HEAD and OPTIONS included, gets 405 Method Not Allowed with "Allow: GET"
// and never reaches Init (an event stream has no representation for HEAD to
// describe, and CORS preflights belong to the middleware in front).
func (e *Endpoint) ServeFastHTTP(ctx *fasthttp.RequestCtx) { e.serveFast(ctx) }

// HTTPHandler returns the endpoint as a net/http Handler, for platforms that
// hand you one (AWS Lambda function URLs, for one) and for HTTP/2: the same
// callbacks, results, groups, replay, heartbeats, lifetime and drain as on
// fasthttp. Options.Transport does not apply: each stream runs on its
// request's goroutine. A client that leaves is seen through the request's
// context; writes are flushed through http.ResponseController, and a
// ResponseWriter that cannot flush is written to as it is. The server's
// Server.Shutdown ends its streams (the endpoint registers a hook with
// RegisterOnShutdown), as fasthttp's does; call Drain first to spread the
// ends out.
func (e *Endpoint) HTTPHandler() http.Handler { return http.HandlerFunc(e.serveHTTP) }

// Stats are an Endpoint's counters, read with Endpoint.Stats.
type Stats struct {
	Open          int64 // streams open now
	Opened        int64 // streams opened since New
	Events        int64 // events written (initial, sent and published); heartbeats are not events
	Bytes         int64 // bytes of event stream written, heartbeats included
	Dropped       int64 // messages dropped by OverflowDropOldest, OverflowDropNewest or a Limits cap
	Conflated     int64 // frames conflated away (Conflation, Limits)
	SlowConsumers int64 // streams closed as slow consumers: OverflowClose, or a write stalled past StallTimeout
	// DenseFallbacks counts TransportDense streams served by TransportStream
	// instead, because the dense machinery (epoll) could not start.
	DenseFallbacks int64
	Heartbeats     int64        // heartbeats written
	Ends           EndCounts    // streams ended (and Init refusals), by ReasonClass
	Replays        ReplayCounts // Group.Resume's answers for this endpoint's streams
}

// EndCounts counts ended streams by ReasonClass.
type EndCounts struct {
	Stopped, Refused, ClientGone, WriteFailed, Shutdown, Lifetime, SlowConsumer, Panic int64
}

// ReplayCounts counts Group.Resume's answers by ReplayResult, and the events
// replayed.
type ReplayCounts struct {
	None, Hit, Gap int64
	Events         int64 // events queued by replays
}

// Stats returns a snapshot of the counters. Each is read atomically; the
// snapshot as a whole is not.
func (e *Endpoint) Stats() Stats {
	s := &e.core.stats
	var events, bytes int64
	for i := range e.core.out {
		events += e.core.out[i].events.Load()
		bytes += e.core.out[i].bytes.Load()
	}
	return Stats{
		Open:           s.open.Load(),
		Opened:         s.opened.Load(),
		Events:         events,
		Bytes:          bytes,
		Dropped:        s.dropped.Load(),
		Conflated:      s.conflated.Load(),
		SlowConsumers:  s.slow.Load(),
		DenseFallbacks: s.fallbacks.Load(),
		Heartbeats:     s.heartbeats.Load(),
		Ends: EndCounts{
			Stopped: s.ends[0].Load(), Refused: s.ends[1].Load(), ClientGone: s.ends[2].Load(),
			WriteFailed: s.ends[3].Load(), Shutdown: s.ends[4].Load(), Lifetime: s.ends[5].Load(),
			SlowConsumer: s.ends[6].Load(), Panic: s.ends[7].Load(),
		},
		Replays: ReplayCounts{
			None: s.replays[ReplayNone].Load(), Hit: s.replays[ReplayHit].Load(),
			Gap: s.replays[ReplayGap].Load(), Events: s.replayed.Load(),
		},
	}
}

// core is the part of an endpoint that does not depend on the state type.
type core struct {
	opts   Options
	epoch  time.Time // the heartbeat clock counts from here
	rings  ringPool
	bufs   bufPool
	nextID atomic.Uint64
	stats  struct {
		open, opened, dropped, conflated, slow, fallbacks atomic.Int64
		heartbeats, replayed                              atomic.Int64
		ends                                              [len(endClasses)]atomic.Int64
		replays                                           [len(replayNames)]atomic.Int64
	}
	// out counts what was written, striped by connection so that streams
	// writing on different cores do not fight over one cache line.
	out [16]struct {
		events, bytes atomic.Int64
		_             [48]byte // pad the stripe to a 64-byte line
	}

	shards [16]struct {
		mu sync.Mutex
		m  map[*Conn]struct{}
	}

	// The heartbeat wheel: one goroutine for all streams, running only while
	// some are open.
	hbMu      sync.Mutex
	hbRunning bool
	hbKick    chan struct{}

	draining atomic.Bool // Drain was called: refuse new streams

	// shutWatch holds one watcher per server shutdown signal (Conn.shut)
	// that open streams have; see watchShutdown.
	shutMu    sync.Mutex
	shutWatch map[<-chan struct{}]*shutWatch

	dense denseState // the dense transport's machinery, while it has streams
	http  httpState  // the net/http servers' shutdown signals
}

// countOut counts a written batch: events and bytes.
func (c *core) countOut(id uint64, events int64, bytes int) {
	stripe := &c.out[id%uint64(len(c.out))]
	stripe.events.Add(events)
	stripe.bytes.Add(int64(bytes))
}

func (c *core) now() int64 { return int64(time.Since(c.epoch)) }

// endRetry is the reconnection delay hinted to a client whose stream the
// server ends: a random 100–150% of Options.Retry (or of 3 s), so that
// clients ended together come back spread out.
func (c *core) endRetry() time.Duration {
	base := c.opts.Retry
	if base <= 0 {
		base = defaultEndRetry
	}
	return base + time.Duration(rand.Int64N(int64(base)/2+1))
}

// register adds an opened stream to the registry, the heartbeat wheel and
// its server's shutdown watch.
func (c *core) register(conn *Conn) {
	if l := c.opts.MaxLifetime; l > 0 {
		conn.endAt = c.now() + int64(l) - rand.Int64N(int64(l)/5+1)
	}
	conn.openedAt = c.now()
	conn.lastOut.Store(conn.openedAt)
	sh := &c.shards[conn.id%uint64(len(c.shards))]
	sh.mu.Lock()
	sh.m[conn] = struct{}{}
	sh.mu.Unlock()
	c.stats.open.Add(1)
	c.stats.opened.Add(1)
	if o := c.opts.Observer; o != nil {
		o.StreamOpened(conn.info())
	}
	c.watchShutdown(conn.shut, 1)
	if c.draining.Load() || isClosed(conn.shut) { // Drain or Shutdown began after serve checked
		conn.endSoon(ErrShutdown)
	}
	if c.opts.Heartbeat <= 0 && c.opts.MaxLifetime <= 0 && c.opts.StallTimeout <= 0 {
		return
	}
	c.hbMu.Lock()
	if !c.hbRunning {
		c.hbRunning = true
		go c.heartbeats()
	}
	c.hbMu.Unlock()
}

func (c *core) unregister(conn *Conn) {
	sh := &c.shards[conn.id%uint64(len(c.shards))]
	sh.mu.Lock()
	delete(sh.m, conn)
	sh.mu.Unlock()
	c.watchShutdown(conn.shut, -1)
	if c.stats.open.Add(-1) == 0 {
		select {
		case c.hbKick <- struct{}{}:
		default:
		}
	}
}

// heartbeatTick is the longest the heartbeat wheel sleeps while streams are
// open; see heartbeats.
const heartbeatTick = 500 * time.Millisecond

// shutWatch is the watcher of one server's shutdown signal.
type shutWatch struct {
	n    int           // open streams with this signal
	stop chan struct{} // closed when n drops to 0
}

// watchShutdown counts a stream in (delta 1) or out (-1) of the watch on
// its server's shutdown signal. The first stream starts a goroutine that
// ends, when the signal comes, every stream with that signal, as Drain
// ends a stream; the last one out stops it. This is the one way a server
// shutdown reaches a stream, whatever its transport.
func (c *core) watchShutdown(done <-chan struct{}, delta int) {
	if done == nil {
		return
	}
	c.shutMu.Lock()
	defer c.shutMu.Unlock()
	w := c.shutWatch[done]
	if w == nil {
		w = &shutWatch{stop: make(chan struct{})}
		c.shutWatch[done] = w
		go c.awaitShutdown(done, w.stop)
	}
	w.n += delta
	if w.n == 0 {
		close(w.stop)
		delete(c.shutWatch, done)
	}
}

func (c *core) awaitShutdown(done, stop <-chan struct{}) {
	select {
	case <-done:
	case <-stop:
		return
	}
	c.each(func(conn *Conn) {
		if conn.shut == done {
			conn.endSoon(ErrShutdown)
			conn.bound()
		}
	})
}

// heartbeats is the one timer of all an endpoint's streams: it asks every
// stream that has written nothing for a Heartbeat interval to write a
// heartbeat, ends the streams whose MaxLifetime has come, and ends as slow
// consumers those whose write has stalled for StallTimeout. It ticks at
// the smallest of heartbeatTick, a quarter of Heartbeat, a twentieth of
// MaxLifetime and a quarter of StallTimeout (each where set), and returns
// as soon as no stream is open.
//
// A heartbeat goes out at most one tick after it is due, and the stream
// transport learns that a client left only then (the peek before it): at
// the default 15 s heartbeat, a tick of a quarter of it let that take 18.75
// s, past the promised interval + 1 s; heartbeatTick bounds it.
func (c *core) heartbeats() {
	hb := int64(c.opts.Heartbeat)
	stall := int64(c.opts.StallTimeout)
	tick := time.Duration(1<<63 - 1)
	if hb > 0 {
		tick = min(c.opts.Heartbeat/4, heartbeatTick)
	}
	if c.opts.MaxLifetime > 0 {
		tick = min(tick, c.opts.MaxLifetime/20)
	}
	if stall > 0 {
		tick = min(tick, c.opts.StallTimeout/4)
	}
	t := time.NewTicker(max(tick, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.hbKick:
		}
		c.hbMu.Lock()
		if c.stats.open.Load() == 0 {
			c.hbRunning = false
			c.hbMu.Unlock()
			return
		}
		c.hbMu.Unlock()
		now := c.now()
		c.each(func(conn *Conn) {
			if conn.endAt != 0 && now >= conn.endAt {
				conn.endSoon(ErrLifetime)
			} else if stall > 0 {
				if since := conn.t.stalledSince(); since != 0 && now-since >= stall {
					conn.endSlow()
				}
			}
			if hb > 0 && now-conn.lastOut.Load() >= hb && !conn.hbDue.Swap(true) {
				conn.wake()
			}
		})
	}
}

// each calls f for every open stream, one shard locked at a time; f must
// not register or unregister.
func (c *core) each(f func(*Conn)) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for conn := range sh.m {
			f(conn)
		}
		sh.mu.Unlock()
	}
}

// Drain ends every open stream, for a clean stop (on SIGTERM, say) or to
// move clients to other instances. The streams end one by one, spread
// evenly over the period spread, each with a retry hint (see
// Options.Retry) and ErrShutdown for Terminate, so that clients do not all
// reconnect at once. From the call on, a new GET gets an empty stream with
// only a retry hint, without Init: not 503, which would make a browser's
// EventSource give up for good. Drain returns when every stream has
// ended and Terminate has returned, or with ctx's error when ctx is done
// first. A spread of 0 ends them all at once.
//
// A server's Shutdown also ends streams (at once), but fasthttp's only those
// it knows of (not the dense transport's): call Drain first, then Shutdown.
//
// Each stream's connection gets a write deadline 1 s after its stream is
// ended, so that a client that stopped reading cannot hold up that
// Shutdown. Every stream's connection closes when the stream ends, so a
// client's reconnect comes on a new connection.
func (e *Endpoint) Drain(ctx context.Context, spread time.Duration) error {
	c := e.core
	c.draining.Store(true)
	var conns []*Conn
	c.each(func(conn *Conn) { conns = append(conns, conn) })
	start := time.Now()
	var t *time.Timer
	for i, conn := range conns {
		if spread > 0 && len(conns) > 1 {
			due := start.Add(spread * time.Duration(i) / time.Duration(len(conns)))
			if d := time.Until(due); d > 0 {
				if t == nil {
					t = time.NewTimer(d)
				} else {
					t.Reset(d)
				}
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
		}
		conn.endSoon(ErrShutdown)
		// As on Server.Shutdown: the stream's last bytes may sit behind a
		// client that stopped reading, and the Shutdown that follows Drain
		// would wait for them.
		conn.bound()
	}
	for _, conn := range conns {
		select {
		case <-conn.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
