package promsse_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var ends = []string{"stopped", "client_gone", "write_failed", "shutdown", "lifetime", "slow_consumer", "panic"}

// TestScrape serves two endpoints that one Collector observes, opens real
// streams on them, and follows the scraped metrics as the streams open,
// get events, heartbeats, replays, drop messages, fall behind and end, on
// both of fasthttp's transports.
func TestScrape(t *testing.T) {
	transports := map[string]fastsse.Transport{"stream": fastsse.TransportStream}
	if runtime.GOOS == "linux" { // the dense transport is Linux's only
		transports["dense"] = fastsse.TransportDense
	}
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) { testScrape(t, tr) })
	}
}

func testScrape(t *testing.T, tr fastsse.Transport) {
	c := promsse.New(nil)
	g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 16, Observer: c})
	f := &feed{g: g, conns: make(chan *fastsse.Conn, 8)}
	// /drop drops the newest message when its one-message queue is full,
	// and writes a heartbeat every 20 ms of silence; /close ends a stream
	// whose queue is full as a slow consumer.
	drop, err := fastsse.New[struct{}](f, &fastsse.Options{
		Observer: c, Route: "/drop", QueueSize: 1, Overflow: fastsse.OverflowDropNewest, Heartbeat: 20 * time.Millisecond, Transport: tr,
	})
	require.NoError(t, err)
	closing, err := fastsse.New[struct{}](f, &fastsse.Options{
		Observer: c, Route: "/close", QueueSize: 1, Overflow: fastsse.OverflowClose, Heartbeat: -1, Transport: tr,
	})
	require.NoError(t, err)
	c.Observe(drop)
	c.Observe(closing)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	s := serve(t, reg, map[string]*fastsse.Endpoint{"/drop": drop, "/close": closing})

	// Before any stream: every series is there, at zero.
	ms := s.scrape(t)
	for _, n := range []string{"lasse_streams_open", "lasse_streams_opened_total", "lasse_events_written_total",
		"lasse_bytes_written_total", "lasse_heartbeats_total", "lasse_slow_consumers_total"} {
		assert.Zero(t, value(t, ms, n, ""), n)
	}
	for _, r := range ends {
		assert.Zero(t, value(t, ms, "lasse_stream_ends_total", labels("reason", r)), r)
	}
	for _, p := range []string{"drop_oldest", "drop_newest"} {
		assert.Zero(t, value(t, ms, "lasse_dropped_total", labels("policy", p)), p)
	}
	for _, r := range []string{"none", "hit", "gap"} {
		assert.Zero(t, value(t, ms, "lasse_replay_total", labels("result", r)), r)
	}
	assert.Zero(t, histCount(t, ms, "lasse_stream_duration_seconds"))
	assert.Zero(t, histCount(t, ms, "lasse_publish_duration_seconds"))
	assert.NotContains(t, ms, "lasse_bus_lag_seconds", "no bus metrics without Options.Bus")

	// Two events before anyone listens, then four streams: a fresh one, one
	// resuming after the first (a hit: it gets the second), one with an id
	// the ring never had (a gap: it gets the gap event, with the group's
	// position), and one on /close.
	var ids []string
	for range 2 {
		id, err := g.Publish(&fastsse.Event{Data: "early"})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	fresh := s.open(t, "/drop", "")
	freshConn := conn(t, f)
	resumed := s.open(t, "/drop", ids[0])
	resumedConn := conn(t, f)
	assert.Equal(t, ids[1], resumed.event(t))
	gap := s.open(t, "/drop", "nope")
	conn(t, f)
	assert.Equal(t, ids[1], gap.event(t), "the gap event")
	slow := s.open(t, "/close", "")
	slowConn := conn(t, f)
	ms = s.until(t, "four streams open", func(ms map[string]family) bool {
		return value(t, ms, "lasse_streams_open", "") == 4
	})
	assert.Equal(t, 4.0, value(t, ms, "lasse_streams_opened_total", ""))
	assert.Equal(t, 2.0, value(t, ms, "lasse_replay_total", labels("result", "none")))
	assert.Equal(t, 1.0, value(t, ms, "lasse_replay_total", labels("result", "hit")))
	assert.Equal(t, 1.0, value(t, ms, "lasse_replay_total", labels("result", "gap")))

	// Three events to the four, one at a time (their queues hold one):
	// 12 events written, the one replayed and the gap event.
	for range 3 {
		_, err := g.Publish(&fastsse.Event{Data: "live"})
		require.NoError(t, err)
		for _, st := range []*stream{fresh, resumed, gap, slow} {
			st.event(t)
		}
	}
	ms = s.until(t, "14 events written", func(ms map[string]family) bool {
		return value(t, ms, "lasse_events_written_total", "") == 14
	})
	read := fresh.bytesRead() + resumed.bytesRead() + gap.bytesRead() + slow.bytesRead()
	assert.GreaterOrEqual(t, value(t, ms, "lasse_bytes_written_total", ""), float64(read),
		"the server wrote at least what the clients read")
	assert.Equal(t, uint64(5), histCount(t, ms, "lasse_publish_duration_seconds"))

	// /drop's streams are silent now: heartbeats.
	s.until(t, "heartbeats written", func(ms map[string]family) bool {
		return value(t, ms, "lasse_heartbeats_total", "") >= 3
	})

	// A one-message queue: a second Notify before the stream takes the
	// first drops it, each ErrQueueFull one message.
	full := 0
	deadline := time.Now().Add(waitFor)
	for full < 3 && time.Now().Before(deadline) {
		for _, msg := range []string{"a", "b"} {
			if err := freshConn.Notify(msg); errors.Is(err, fastsse.ErrQueueFull) {
				full++
			}
		}
	}
	require.GreaterOrEqual(t, full, 3)
	ms = s.until(t, "a drop per ErrQueueFull", func(ms map[string]family) bool {
		return value(t, ms, "lasse_dropped_total", labels("policy", "drop_newest")) == float64(full)
	})
	assert.Zero(t, value(t, ms, "lasse_dropped_total", labels("policy", "drop_oldest")))
	assert.Zero(t, value(t, ms, "lasse_slow_consumers_total", ""))

	// On /close the same ends the stream as a slow consumer.
	deadline = time.Now().Add(waitFor)
	for slowConn.Err() == nil && time.Now().Before(deadline) {
		_ = slowConn.Notify("a")
		_ = slowConn.Notify("b")
	}
	require.ErrorIs(t, slowConn.Err(), fastsse.ErrSlowConsumer)
	ms = s.until(t, "a slow consumer ended", func(ms map[string]family) bool {
		return value(t, ms, "lasse_stream_ends_total", labels("reason", "slow_consumer")) == 1
	})
	assert.Equal(t, 1.0, value(t, ms, "lasse_slow_consumers_total", ""))

	// The server stops one stream; a client leaves another.
	require.NoError(t, resumedConn.Close())
	require.NoError(t, gap.resp.Body.Close())
	ms = s.until(t, "one stream open", func(ms map[string]family) bool {
		return value(t, ms, "lasse_streams_open", "") == 1
	})
	assert.Equal(t, 1.0, value(t, ms, "lasse_stream_ends_total", labels("reason", "stopped")))
	assert.Equal(t, 1.0, value(t, ms, "lasse_stream_ends_total", labels("reason", "client_gone")))
	var ended float64
	for _, r := range ends {
		ended += value(t, ms, "lasse_stream_ends_total", labels("reason", r))
	}
	assert.Equal(t, 3.0, ended)
	assert.Equal(t, uint64(3), histCount(t, ms, "lasse_stream_duration_seconds"), "one lifetime per end")
	assert.Equal(t, 4.0, value(t, ms, "lasse_streams_opened_total", ""))
}

// TestLint: the metrics pass the client library's own lint (names, units,
// help), with the bus metrics too.
func TestLint(t *testing.T) {
	c := promsse.New(&promsse.Options{Bus: true})
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// TestBusAndConstLabels: the bus metrics are there only with Options.Bus
// and count what BusDelivered and BusGap are told; ConstLabels label every
// series, so that two endpoints' collectors share a registry.
func TestBusAndConstLabels(t *testing.T) {
	feedC := promsse.New(&promsse.Options{Bus: true, ConstLabels: prometheus.Labels{"route": "/feed"}})
	newsC := promsse.New(&promsse.Options{ConstLabels: prometheus.Labels{"route": "/news"}})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(feedC))
	require.NoError(t, reg.Register(newsC))
	s := serve(t, reg, nil)

	feedC.BusDelivered(3 * time.Millisecond)
	feedC.BusDelivered(2 * time.Second)
	feedC.BusGap()
	feedC.BusGap()
	newsC.BusDelivered(time.Second) // no bus: ignored
	newsC.BusGap()

	ms := s.scrape(t)
	assert.Equal(t, 2.0, value(t, ms, "lasse_bus_gaps_total", labels("route", "/feed")))
	assert.NotContains(t, ms["lasse_bus_gaps_total"], labels("route", "/news"))
	lag := ms["lasse_bus_lag_seconds"][labels("route", "/feed")].GetHistogram()
	require.NotNil(t, lag)
	assert.Equal(t, uint64(2), lag.GetSampleCount())
	assert.InDelta(t, 2.003, lag.GetSampleSum(), 1e-9)
	assert.Len(t, ms["lasse_bus_lag_seconds"], 1)
	for _, route := range []string{"/feed", "/news"} {
		assert.Zero(t, value(t, ms, "lasse_streams_open", labels("route", route)))
	}
}

// TestHistogramBuckets: the Options' buckets are the scraped ones.
func TestHistogramBuckets(t *testing.T) {
	c := promsse.New(&promsse.Options{StreamBuckets: []float64{1, 60}, PublishBuckets: []float64{0.001}})
	c.StreamEnded(fastsse.StreamInfo{}, fastsse.ErrLifetime, 30*time.Second)
	c.Published(10, 2*time.Millisecond)
	out, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain,
		"lasse_stream_duration_seconds", "lasse_publish_duration_seconds", "lasse_stream_ends_total")
	require.NoError(t, err)
	text := string(out)
	assert.Contains(t, text, `lasse_stream_duration_seconds_bucket{le="1"} 0`)
	assert.Contains(t, text, `lasse_stream_duration_seconds_bucket{le="60"} 1`)
	assert.Contains(t, text, `lasse_publish_duration_seconds_bucket{le="0.001"} 0`)
	assert.Contains(t, text, `lasse_publish_duration_seconds_count 1`)
	assert.Contains(t, text, `lasse_stream_ends_total{reason="lifetime"} 1`)
	assert.Contains(t, text, `lasse_stream_ends_total{reason="stopped"} 0`)
}

// TestScrapeConflated: a stream that may get a keyed event once an hour
// gets the first at once; of the next two, the first is conflated away.
// The scrape counts it.
func TestScrapeConflated(t *testing.T) {
	c := promsse.New(nil)
	g := fastsse.NewGroup(&fastsse.GroupOptions{Observer: c})
	f := &feed{g: g, conns: make(chan *fastsse.Conn, 1)}
	ep, err := fastsse.New[struct{}](f, &fastsse.Options{
		Observer: c, Heartbeat: -1, Limits: fastsse.Limits{KeyInterval: time.Hour},
	})
	require.NoError(t, err)
	c.Observe(ep)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	s := serve(t, reg, map[string]*fastsse.Endpoint{"/prices": ep})
	assert.Zero(t, value(t, s.scrape(t), "lasse_conflated_total", ""))

	st := s.open(t, "/prices", "")
	conn(t, f)
	for _, price := range []string{"1", "2", "3"} {
		_, err := g.Publish(&fastsse.Event{Key: "ACME", Data: price})
		require.NoError(t, err)
		if price == "1" {
			st.event(t)
		}
	}
	s.until(t, "one frame conflated", func(ms map[string]family) bool {
		return value(t, ms, "lasse_conflated_total", "") == 1
	})
}
