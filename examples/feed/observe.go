package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"sync"
	"time"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"github.com/valyala/fasthttp/pprofhandler"
)

// historyLen is how many seconds of stats the dashboard is given when it
// connects: the width of its plots.
const historyLen = 60

// observability is what the feed tells about itself: its Prometheus
// metrics at /metrics, and a stream of stats at /dashboard/stats that its
// page plots.
type observability struct {
	prom *promsse.Collector
	reg  *prometheus.Registry

	stats   *fastsse.Group    // a "stats" event every second
	statsEP *fastsse.Endpoint // GET /dashboard/stats

	mu      sync.Mutex
	history []sample // the last historyLen samples, oldest first
}

// sample is one second of the feed endpoint's Stats, as the page gets it.
type sample struct {
	Time    int64   `json:"t"`      // Unix milliseconds
	Open    int64   `json:"open"`   // streams open
	Events  float64 `json:"events"` // events written per second
	Bytes   float64 `json:"bytes"`  // bytes written per second
	Drops   float64 `json:"drops"`  // messages dropped per second
	Slow    float64 `json:"slow"`   // slow consumers closed per second
	Dropped int64   `json:"dropped_total"`
	SlowAll int64   `json:"slow_total"`
}

func newObservability(onBus bool) (*observability, error) {
	o := &observability{prom: promsse.New(&promsse.Options{Bus: onBus}), reg: prometheus.NewRegistry()}
	o.reg.MustRegister(o.prom, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.stats = fastsse.NewGroup(nil)
	ep, err := fastsse.New[struct{}](dashboard{o}, nil)
	if err != nil {
		return nil, err
	}
	o.statsEP = ep
	return o, nil
}

// mount adds /metrics and /dashboard/stats to r.
func (o *observability) mount(r *frouter.Router) {
	r.GET("/metrics", fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{})))
	r.GET("/dashboard/stats", o.statsEP.ServeFastHTTP)
}

// publishStats publishes a sample of ep's Stats every interval until ctx is
// done.
func (o *observability) publishStats(ctx context.Context, ep *fastsse.Endpoint, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev, at := ep.Stats(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := ep.Stats()
			secs := now.Sub(at).Seconds()
			smp := sample{
				Time: now.UnixMilli(), Open: s.Open,
				Events:  float64(s.Events-prev.Events) / secs,
				Bytes:   float64(s.Bytes-prev.Bytes) / secs,
				Drops:   float64(s.Dropped-prev.Dropped) / secs,
				Slow:    float64(s.SlowConsumers-prev.SlowConsumers) / secs,
				Dropped: s.Dropped, SlowAll: s.SlowConsumers,
			}
			prev, at = s, now
			data, _ := json.Marshal(smp)
			o.mu.Lock()
			o.history = append(o.history, smp)
			if len(o.history) > historyLen {
				o.history = o.history[len(o.history)-historyLen:]
			}
			_, err := o.stats.Publish(&fastsse.Event{Event: "stats", DataBytes: data})
			o.mu.Unlock()
			if err != nil {
				log.Printf("stats: %v", err)
			}
		}
	}
}

// dashboard is the handler of /dashboard/stats: a "history" event with the
// samples so far, then the stats group's "stats" events.
type dashboard struct{ o *observability }

func (d dashboard) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	o := d.o
	// Under o.mu no sample is published: the history and the live
	// events neither overlap nor leave a hole.
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.stats.Join(req.Conn()); err != nil {
		return fastsse.Reply(fasthttp.StatusServiceUnavailable, []byte(err.Error()), struct{}{})
	}
	history, _ := json.Marshal(o.history)
	return fastsse.Open(struct{}{}, fastsse.Event{Event: "history", Data: string(history)})
}

func (d dashboard) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (d dashboard) HandleInfo(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (d dashboard) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} { return s }
func (d dashboard) Terminate(error, struct{})                                 {}

// withPprof serves net/http/pprof's pages under /debug/pprof/ (through
// fasthttp's adaptor) and everything else with h.
func withPprof(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	prefix := []byte("/debug/pprof/")
	return func(ctx *fasthttp.RequestCtx) {
		if bytes.HasPrefix(ctx.Path(), prefix) {
			pprofhandler.PprofHandler(ctx)
			return
		}
		h(ctx)
	}
}
