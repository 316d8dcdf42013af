// Package promsse exports fastsse's metrics to Prometheus.
//
// A Collector is both a fastsse.Observer, for what only the hooks hear
// (stream lifetimes, ends by reason, drops by policy, slow consumers,
// replays, publish durations), and a prometheus.Collector that reads
// Endpoint.Stats at scrape time for the counters fastsse keeps anyway
// (open and opened streams, events, bytes, heartbeats, conflation), so that writing an
// event costs nothing more with it than without. Set it as the endpoint's
// Options.Observer and its groups' GroupOptions.Observer, call Observe with
// the endpoint, and register it (the package example serves it):
//
//	c := promsse.New(nil)
//	g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 100, Observer: c})
//	ep, err := fastsse.New[struct{}](h, &fastsse.Options{Observer: c, Route: "/feed"})
//	c.Observe(ep)
//	reg.MustRegister(c)
//
// The metrics, all prefixed lasse_:
//
//	lasse_streams_open                      gauge      streams open now (Stats.Open)
//	lasse_streams_opened_total              counter    streams opened (Stats.Opened)
//	lasse_stream_ends_total{reason}         counter    streams ended, by fastsse.ReasonClass
//	lasse_events_written_total              counter    events written (Stats.Events)
//	lasse_bytes_written_total               counter    bytes written, heartbeats included (Stats.Bytes)
//	lasse_heartbeats_total                  counter    heartbeats written (Stats.Heartbeats)
//	lasse_conflated_total                   counter    keyed frames conflated away (Stats.Conflated)
//	lasse_dropped_total{policy}             counter    messages dropped: drop_oldest, drop_newest
//	lasse_slow_consumers_total              counter    streams closed as slow consumers
//	lasse_replay_total{result}              counter    Group.Resume answers: none, hit, gap
//	lasse_stream_duration_seconds           histogram  lifetime of ended streams
//	lasse_publish_duration_seconds          histogram  time Group.Publish held its group
//	lasse_bus_lag_seconds                   histogram  bus delivery lag (Options.Bus only)
//	lasse_bus_gaps_total                    counter    bus gaps reported (Options.Bus only)
//
// Every label takes a few fixed values: none names a connection, a topic
// or a path. An Init that answers without opening a stream (NoContent,
// Reply) is not a stream end here; Stats.Ends.Refused counts those. To tell several endpoints apart, give each its own Collector
// with Options.ConstLabels (say {"route": "/feed"}), registered side by
// side.
//
// Concurrency: every method of a Collector is safe for concurrent use. The
// Observer methods are lock-free and allocate nothing; Observe takes a
// lock that only Collect also takes.
package promsse

import (
	"sync"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Collector. A nil *Options means all defaults.
type Options struct {
	// ConstLabels are added to every metric, to tell apart the collectors
	// of several endpoints in one registry. Keep their values bounded.
	// Default none.
	ConstLabels prometheus.Labels

	// StreamBuckets are the upper bounds of lasse_stream_duration_seconds.
	// Default: 0.1 s to about 29 hours, by fours (0.1, 0.4, 1.6, ...).
	StreamBuckets []float64

	// PublishBuckets are the upper bounds of lasse_publish_duration_seconds.
	// Default: 1 µs to about 260 ms, by fours.
	PublishBuckets []float64

	// Bus adds lasse_bus_lag_seconds (buckets of 0.5 ms to about 33 s, by
	// fours) and lasse_bus_gaps_total, fed by a bus group
	// (fastsse.NewBusGroup) whose GroupOptions.Observer is the Collector:
	// it is a fastsse.BusObserver. Default false: no bus metrics.
	Bus bool
}

func streamBuckets() []float64  { return prometheus.ExponentialBuckets(0.1, 4, 11) }
func publishBuckets() []float64 { return prometheus.ExponentialBuckets(1e-6, 4, 10) }
func busBuckets() []float64     { return prometheus.ExponentialBuckets(5e-4, 4, 9) }

// endReasons are the classes fastsse.ReasonClass gives an opened stream's
// end ("refused" is an Init that opened no stream, which StreamEnded never
// hears of).
var endReasons = []string{"stopped", "client_gone", "write_failed", "shutdown", "lifetime", "slow_consumer", "panic"}

// Collector is a fastsse.Observer and a prometheus.Collector. Build it with
// New.
type Collector struct {
	ends      map[string]prometheus.Counter // by ReasonClass; read-only after New
	endsVec   *prometheus.CounterVec
	dropOld   prometheus.Counter
	dropNew   prometheus.Counter
	dropVec   *prometheus.CounterVec
	slow      prometheus.Counter
	replays   [3]prometheus.Counter // by fastsse.ReplayResult
	replayVec *prometheus.CounterVec
	lifetime  prometheus.Histogram
	publish   prometheus.Histogram
	busLag    prometheus.Histogram // nil without Options.Bus
	busGaps   prometheus.Counter   // nil without Options.Bus

	open, opened, events, bytes, heartbeats, conflated *prometheus.Desc

	mu  sync.Mutex
	eps []*fastsse.Endpoint
}

// New returns a Collector with every series at zero. opts may be nil.
func New(opts *Options) *Collector {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.StreamBuckets == nil {
		o.StreamBuckets = streamBuckets()
	}
	if o.PublishBuckets == nil {
		o.PublishBuckets = publishBuckets()
	}
	cl := o.ConstLabels
	c := &Collector{ends: make(map[string]prometheus.Counter, len(endReasons))}
	c.endsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lasse_stream_ends_total", Help: "Streams ended, by the class of the reason (fastsse.ReasonClass).", ConstLabels: cl,
	}, []string{"reason"})
	for _, r := range endReasons {
		c.ends[r] = c.endsVec.WithLabelValues(r)
	}
	c.dropVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lasse_dropped_total", Help: "Messages dropped from a full stream queue, by overflow policy.", ConstLabels: cl,
	}, []string{"policy"})
	c.dropOld = c.dropVec.WithLabelValues("drop_oldest")
	c.dropNew = c.dropVec.WithLabelValues("drop_newest")
	c.slow = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lasse_slow_consumers_total", Help: "Streams closed as slow consumers: a full queue under OverflowClose, or a write stalled past StallTimeout.", ConstLabels: cl,
	})
	c.replayVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lasse_replay_total", Help: "Group.Resume answers to a stream's Last-Event-ID, by result.", ConstLabels: cl,
	}, []string{"result"})
	for r := range c.replays {
		c.replays[r] = c.replayVec.WithLabelValues(fastsse.ReplayResult(r).String())
	}
	c.lifetime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "lasse_stream_duration_seconds", Help: "Lifetime of ended streams.", ConstLabels: cl, Buckets: o.StreamBuckets,
	})
	c.publish = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "lasse_publish_duration_seconds", Help: "Time Group.Publish held its group to queue one event for every member.", ConstLabels: cl, Buckets: o.PublishBuckets,
	})
	if o.Bus {
		c.busLag = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lasse_bus_lag_seconds", Help: "Time from an event's publish on the bus to its delivery on this instance.", ConstLabels: cl, Buckets: busBuckets(),
		})
		c.busGaps = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lasse_bus_gaps_total", Help: "Gaps the bus reported: events lost to its retention before this instance could read them.", ConstLabels: cl,
		})
	}
	c.open = prometheus.NewDesc("lasse_streams_open", "Streams open now.", nil, cl)
	c.opened = prometheus.NewDesc("lasse_streams_opened_total", "Streams opened.", nil, cl)
	c.events = prometheus.NewDesc("lasse_events_written_total", "Events written to streams (initial, sent and published); heartbeats are not events.", nil, cl)
	c.bytes = prometheus.NewDesc("lasse_bytes_written_total", "Bytes of event stream written, heartbeats included.", nil, cl)
	c.heartbeats = prometheus.NewDesc("lasse_heartbeats_total", "Heartbeats written.", nil, cl)
	c.conflated = prometheus.NewDesc("lasse_conflated_total", "Keyed frames conflated away: replaced in a stream's queue by a newer frame of their key.", nil, cl)
	return c
}

// Observe adds ep to the endpoints whose Stats the Collector reads when
// scraped; the counters are summed over them. Set the Collector as ep's
// Options.Observer as well, or the metrics that only the hooks hear stay
// at zero.
func (c *Collector) Observe(ep *fastsse.Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.eps = append(c.eps, ep)
}

// BusDelivered implements fastsse.BusObserver: the lag of one event a bus
// group delivered, from its publish on the bus (here or on another
// instance) to its delivery here. It does nothing unless Options.Bus was
// set.
func (c *Collector) BusDelivered(lag time.Duration) {
	if c.busLag != nil {
		c.busLag.Observe(lag.Seconds())
	}
}

// BusGap implements fastsse.BusObserver: the bus lost events before this
// instance had them. Like BusDelivered, it does nothing unless Options.Bus
// was set.
func (c *Collector) BusGap() {
	if c.busGaps != nil {
		c.busGaps.Inc()
	}
}

var _ fastsse.BusObserver = (*Collector)(nil)

// StreamOpened implements fastsse.Observer; lasse_streams_opened_total and
// lasse_streams_open come from Stats, so it does nothing.
func (c *Collector) StreamOpened(fastsse.StreamInfo) {}

// StreamEnded implements fastsse.Observer.
func (c *Collector) StreamEnded(_ fastsse.StreamInfo, reason error, lifetime time.Duration) {
	if n, ok := c.ends[fastsse.ReasonClass(reason)]; ok {
		n.Inc()
	}
	c.lifetime.Observe(lifetime.Seconds())
}

// Overflowed implements fastsse.Observer.
func (c *Collector) Overflowed(_ fastsse.StreamInfo, p fastsse.OverflowPolicy) {
	switch p {
	case fastsse.OverflowDropOldest:
		c.dropOld.Inc()
	case fastsse.OverflowDropNewest:
		c.dropNew.Inc()
	case fastsse.OverflowClose:
		c.slow.Inc()
	}
}

// Replayed implements fastsse.Observer.
func (c *Collector) Replayed(_ fastsse.StreamInfo, r fastsse.ReplayResult, _ int) {
	if int(r) < len(c.replays) {
		c.replays[r].Inc()
	}
}

// Published implements fastsse.Observer.
func (c *Collector) Published(_ int, took time.Duration) {
	c.publish.Observe(took.Seconds())
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.opened, c.events, c.bytes, c.heartbeats, c.conflated} {
		ch <- d
	}
	for _, m := range c.hooked() {
		m.Describe(ch)
	}
}

// Collect implements prometheus.Collector: it reads the observed
// endpoints' Stats and the hooks' metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	var s fastsse.Stats
	for _, ep := range c.eps {
		st := ep.Stats()
		s.Open += st.Open
		s.Opened += st.Opened
		s.Events += st.Events
		s.Bytes += st.Bytes
		s.Heartbeats += st.Heartbeats
		s.Conflated += st.Conflated
	}
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.Open))
	ch <- prometheus.MustNewConstMetric(c.opened, prometheus.CounterValue, float64(s.Opened))
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(s.Events))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.heartbeats, prometheus.CounterValue, float64(s.Heartbeats))
	ch <- prometheus.MustNewConstMetric(c.conflated, prometheus.CounterValue, float64(s.Conflated))
	for _, m := range c.hooked() {
		m.Collect(ch)
	}
}

// hooked returns the metrics that the Observer methods feed.
func (c *Collector) hooked() []prometheus.Collector {
	ms := []prometheus.Collector{c.endsVec, c.dropVec, c.slow, c.replayVec, c.lifetime, c.publish}
	if c.busLag != nil {
		ms = append(ms, c.busLag, c.busGaps)
	}
	return ms
}

var _ fastsse.Observer = (*Collector)(nil)
