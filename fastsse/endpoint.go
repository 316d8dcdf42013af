package fastsse

import (
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Endpoint serves one event-stream route. Build it with New; its
// ServeFastHTTP method is the fasthttp.RequestHandler. An Endpoint holds no
// goroutine while it has no open stream.
type Endpoint struct {
	serve func(ctx *fasthttp.RequestCtx)
	core  *core
}

// New builds an Endpoint that serves h. opts may be nil. A nil h is refused
// with ErrNilHandler (lasse's module_option_missing).
//
// New returns an *Endpoint rather than a bare fasthttp.RequestHandler so that
// the counters (Stats) have a home; ep.ServeFastHTTP is the RequestHandler.
func New[S any](h Handler[S], opts *Options) (*Endpoint, error) {
	if isNil(h) {
		return nil, ErrNilHandler
	}
	o := opts.withDefaults()
	c := &core{opts: o, epoch: time.Now(), rings: ringPool{size: o.QueueSize}}
	for i := range c.shards {
		c.shards[i].m = make(map[*Conn]struct{})
	}
	c.hbKick = make(chan struct{}, 1)
	e := &endpoint[S]{h: h, core: c}
	return &Endpoint{serve: e.serve, core: c}, nil
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
func (e *Endpoint) ServeFastHTTP(ctx *fasthttp.RequestCtx) { e.serve(ctx) }

// Stats are an Endpoint's counters, read with Endpoint.Stats.
type Stats struct {
	Open          int64 // streams open now
	Opened        int64 // streams opened since New
	Events        int64 // events written (initial, sent and published); heartbeats are not events
	Bytes         int64 // bytes of event stream written, heartbeats included
	Dropped       int64 // messages dropped by OverflowDropOldest or OverflowDropNewest
	SlowConsumers int64 // streams closed by OverflowClose
}

// Stats returns a snapshot of the counters. Each is read atomically; the
// snapshot as a whole is not.
func (e *Endpoint) Stats() Stats {
	s := &e.core.stats
	return Stats{
		Open:          s.open.Load(),
		Opened:        s.opened.Load(),
		Events:        s.events.Load(),
		Bytes:         s.bytes.Load(),
		Dropped:       s.dropped.Load(),
		SlowConsumers: s.slow.Load(),
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
		open, opened, events, bytes, dropped, slow atomic.Int64
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
}

func (c *core) now() int64 { return int64(time.Since(c.epoch)) }

func (c *core) register(conn *Conn) {
	conn.lastOut.Store(c.now())
	sh := &c.shards[conn.id%uint64(len(c.shards))]
	sh.mu.Lock()
	sh.m[conn] = struct{}{}
	sh.mu.Unlock()
	c.stats.open.Add(1)
	c.stats.opened.Add(1)
	if c.opts.Heartbeat <= 0 {
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
	if c.stats.open.Add(-1) == 0 {
		select {
		case c.hbKick <- struct{}{}:
		default:
		}
	}
}

// heartbeats asks every stream that has written nothing for a Heartbeat
// interval to write a heartbeat. It ticks at a quarter of the interval, so a
// heartbeat goes out between 1 and 1.25 intervals after the last write, and
// it returns as soon as no stream is open.
func (c *core) heartbeats() {
	hb := c.opts.Heartbeat
	t := time.NewTicker(max(hb/4, time.Millisecond))
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
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.Lock()
			for conn := range sh.m {
				if now-conn.lastOut.Load() >= int64(hb) && !conn.hbDue.Swap(true) {
					conn.wake()
				}
			}
			sh.mu.Unlock()
		}
	}
}
