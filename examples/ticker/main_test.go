package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/sseclient"
	"github.com/lasse-go/lasse/internal/leaktest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

func TestAppendTick(t *testing.T) {
	assert.Equal(t, "1764597600123456789 QXZ 123.05", string(appendTick(nil, "QXZ", quote{cents: 12305, at: 1764597600123456789})))
	assert.Equal(t, "1.00", string(appendPrice(nil, 100)))
	assert.Equal(t, "0.07", string(appendPrice(nil, 7)))
}

func TestSymbolNamesAreDistinct(t *testing.T) {
	seen := make(map[string]int, maxSymbols)
	for i := range maxSymbols {
		s := symbolName(i)
		require.Len(t, s, 3)
		if j, dup := seen[s]; dup {
			t.Fatalf("symbol %d and %d are both %s", j, i, s)
		}
		seen[s] = i
	}
}

// tickerServer is the ticker on 127.0.0.1:0 with its publisher running.
type tickerServer struct {
	a      *app
	base   string
	ctx    context.Context // ends with the test
	stopPM context.CancelFunc
	pubEnd chan struct{}
}

// startTicker serves the ticker with c and starts its publisher; both stop
// at the end of the test.
func startTicker(t *testing.T, c config) *tickerServer {
	t.Helper()
	if c.transport == "" {
		c.transport, c.conflate, c.overflow = "stream", "always", "close"
	}
	if c.queue == 0 {
		c.queue = 512
	}
	c.heartbeat = -1
	a, err := newApp(c)
	require.NoError(t, err)
	ln, err := listen("127.0.0.1:0", c.sndbuf)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- serve.RunListener(ctx, ln, a.handler, serve.Options{Drain: []*fastsse.Endpoint{a.ep}, Spread: 0})
	}()
	pctx, pcancel := context.WithCancel(ctx)
	s := &tickerServer{a: a, base: "http://" + ln.Addr().String(), ctx: ctx, stopPM: pcancel, pubEnd: make(chan struct{})}
	go func() {
		a.m.run(pctx, c.rate, c.updates)
		close(s.pubEnd)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.pubEnd
		require.NoError(t, <-stopped)
		a.m.group.Close()
	})
	return s
}

// stopPublisher stops the publisher and waits until it has.
func (s *tickerServer) stopPublisher() {
	s.stopPM()
	<-s.pubEnd
}

// getLast reads GET /last.
func getLast(t *testing.T, base string) last {
	t.Helper()
	resp, err := http.Get(base + "/last")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var l last
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&l))
	return l
}

// tick is one received price event.
type tick struct {
	at    time.Time
	sym   string
	price string
	t     int64
}

// reader reads one stream in the background, recording every price event
// and every loss signal.
type reader struct {
	ticks  chan tick     // closed when the stream ends
	losses chan [2]int64 // dropped, conflated
	done   chan struct{} // closed after err is set
	err    error         // why the stream ended
}

// read opens url with sseclient (over client, when not nil) and feeds a
// reader; pause, when positive, is how long it waits before it takes the
// first event (a slow reader: the server sees its socket fill).
func read(t *testing.T, ctx context.Context, url string, client *http.Client, pause time.Duration) *reader {
	t.Helper()
	r := &reader{ticks: make(chan tick, 1<<16), losses: make(chan [2]int64, 1024), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); <-r.done })
	go func() {
		defer close(r.ticks)
		defer close(r.done)
		first := true
		for ev, err := range sseclient.Connect(ctx, url, &sseclient.Options{Client: client}).Events() {
			if err != nil {
				r.err = err
				return
			}
			if first && pause > 0 {
				first = false
				select {
				case <-time.After(pause):
				case <-ctx.Done():
				}
			}
			now := time.Now()
			if string(ev.Type) == fastsse.LossEvent {
				var l struct{ Dropped, Conflated int64 }
				if json.Unmarshal(ev.Data, &l) != nil {
					r.err = fmt.Errorf("loss event data %q", ev.Data)
					return
				}
				r.losses <- [2]int64{l.Dropped, l.Conflated}
				continue
			}
			f := strings.Fields(string(ev.Data))
			var ns int64
			if len(f) != 3 {
				r.err = fmt.Errorf("event data %q", ev.Data)
				return
			}
			fmt.Sscan(f[0], &ns)
			select {
			case r.ticks <- tick{at: now, sym: f[1], price: f[2], t: ns}:
			default:
				r.err = fmt.Errorf("test reader full")
				return
			}
		}
	}()
	return r
}

// collect takes the ticks that arrive within d.
func (r *reader) collect(t *testing.T, d time.Duration) []tick {
	t.Helper()
	var out []tick
	end := time.After(d)
	for {
		select {
		case tk, ok := <-r.ticks:
			if !ok {
				<-r.done
				t.Fatalf("stream ended: %v", r.err)
			}
			out = append(out, tk)
		case <-end:
			return out
		}
	}
}

// converge takes ticks until the client's last value of every symbol is
// the one in GET /last (the publisher must have stopped), or fails after
// limit.
func (r *reader) converge(t *testing.T, base string, held map[string]tick, limit time.Duration) {
	t.Helper()
	want := getLast(t, base)
	require.True(t, want.Stopped, "the publisher must have stopped")
	diff := func() []string {
		var d []string
		for sym, q := range want.Symbols {
			if h := held[sym]; h.price != q.Price || h.t != q.T {
				d = append(d, fmt.Sprintf("%s: have %s@%d, last %s@%d", sym, h.price, h.t, q.Price, q.T))
			}
		}
		return d
	}
	deadline := time.After(limit)
	for len(diff()) > 0 {
		select {
		case tk, ok := <-r.ticks:
			require.True(t, ok, "stream ended")
			held[tk.sym] = tk
		case <-deadline:
			d := diff()
			t.Fatalf("after %v, %d of %d symbols differ from /last, e.g. %v", limit, len(d), len(want.Symbols), d[:min(len(d), 5)])
		}
	}
	assert.Len(t, held, len(want.Symbols), "no symbol the publisher does not have")
}

func hold(ticks []tick) map[string]tick {
	held := make(map[string]tick)
	for _, tk := range ticks {
		held[tk.sym] = tk
	}
	return held
}

// A throttled client (?throttle=250ms) gets at most one update per symbol
// per interval, after the snapshot, and still ends on the last values.
func TestThrottledClient(t *testing.T) {
	const (
		symbols  = 20
		rate     = 400 // 20 updates per symbol per second
		interval = 250 * time.Millisecond
		window   = 1500 * time.Millisecond
	)
	s := startTicker(t, config{symbols: symbols, rate: rate})
	r := read(t, s.ctx, s.base+"/stream?throttle="+interval.String(), nil, 0)
	ticks := r.collect(t, window)
	require.GreaterOrEqual(t, len(ticks), symbols, "the snapshot at least")
	bySym := map[string][]tick{}
	for _, tk := range ticks[symbols:] { // the first are the snapshot, one per symbol
		bySym[tk.sym] = append(bySym[tk.sym], tk)
	}
	// Unthrottled, a symbol would get ~30 in the window. Throttled, at most
	// one per interval: window/interval, plus one for the first, plus one
	// of slack for scheduling.
	maxPer := int(window/interval) + 2
	for sym, ts := range bySym {
		assert.LessOrEqual(t, len(ts), maxPer, "%s: %d updates in %v at one per %v", sym, len(ts), window, interval)
		// Nor three within one interval: a late delivery may bring two
		// close together, never three.
		for i := 2; i < len(ts); i++ {
			assert.GreaterOrEqual(t, ts[i].at.Sub(ts[i-2].at), interval, "%s: three updates within %v", sym, interval)
		}
	}
	assert.Len(t, bySym, symbols, "every symbol updated in the window")
	for sym, ts := range bySym {
		assert.GreaterOrEqual(t, len(ts), 2, "%s: live updates, not only the snapshot", sym)
	}
	s.stopPublisher()
	r.converge(t, s.base, hold(ticks), 2*interval+5*time.Second)
}

// An unthrottled client gets every update and ends on the last values.
func TestUnthrottledClientConverges(t *testing.T) {
	const symbols, rate = 30, 600
	s := startTicker(t, config{symbols: symbols, rate: rate})
	r := read(t, s.ctx, s.base+"/stream", nil, 0)
	ticks := r.collect(t, time.Second)
	assert.Greater(t, len(ticks), symbols+rate/3, "live updates at %d/s", rate)
	s.stopPublisher()
	r.converge(t, s.base, hold(ticks), 5*time.Second)
}

// smallBufferClient reads over sockets with a 4 KiB receive buffer, so that
// a reader that stops reading backs the server up at once.
func smallBufferClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// A reader that stops reading for a while is told what it lost: with
// conflation, the updates conflated away; without, those dropped. With
// conflation it still ends on the last values.
func TestSlowReaderGetsLossSignal(t *testing.T) {
	for _, tc := range []struct {
		conflate, overflow string
		queue              int
		conflated          bool // else dropped
	}{
		{"always", "close", 512, true},
		{"backpressure", "close", 64, true},
		{"off", "drop-oldest", 64, false},
		{"off", "drop-newest", 64, false},
	} {
		t.Run(tc.conflate+"/"+tc.overflow, func(t *testing.T) {
			t.Parallel()
			// Small socket buffers on both sides: the server backs up
			// within the pause, not after megabytes.
			s := startTicker(t, config{symbols: 50, rate: 4000, transport: "stream", conflate: tc.conflate, overflow: tc.overflow, queue: tc.queue, sndbuf: 4096})
			client := smallBufferClient()
			defer client.CloseIdleConnections()
			r := read(t, s.ctx, s.base+"/stream", client, time.Second)
			ticks := r.collect(t, 1200*time.Millisecond) // maybe none yet, on a busy machine
			var sum [2]int64
			deadline := time.After(10 * time.Second)
			for sum[0]+sum[1] == 0 {
				select {
				case l := <-r.losses:
					sum[0] += l[0]
					sum[1] += l[1]
				case tk, ok := <-r.ticks:
					require.True(t, ok, "stream ended")
					ticks = append(ticks, tk)
				case <-deadline:
					t.Fatalf("no %s event for a reader that paused; stats %+v", fastsse.LossEvent, s.a.ep.Stats())
				}
			}
			st := s.a.ep.Stats()
			if tc.conflated {
				assert.Positive(t, sum[1], "conflated, in the loss event")
				assert.Positive(t, st.Conflated, "Stats.Conflated")
			} else {
				assert.Positive(t, sum[0], "dropped, in the loss event")
				assert.Positive(t, st.Dropped, "Stats.Dropped")
			}
			if tc.conflated {
				s.stopPublisher()
				r.converge(t, s.base, hold(ticks), 10*time.Second)
			}
		})
	}
}

func TestBadLimitsAre400(t *testing.T) {
	s := startTicker(t, config{symbols: 3, rate: 10})
	for _, q := range []string{"throttle=abc", "throttle=0", "throttle=-1s", "throttle=2m", "events=x", "events=0", "bytes=-5"} {
		resp, err := http.Get(s.base + "/stream?" + q)
		require.NoError(t, err, q)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
		name, _, _ := strings.Cut(q, "=")
		assert.Contains(t, string(body), name, q)
	}
}

func TestPageAndLast(t *testing.T) {
	s := startTicker(t, config{symbols: 7, rate: 100, updates: 20, start: 1})
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, getLast(t, s.base).Updates, "-start-after 1: nothing before a stream opens")
	r := read(t, s.ctx, s.base+"/stream", nil, 0)
	r.collect(t, 10*time.Millisecond)
	resp, err := http.Get(s.base + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(page), "new EventSource('/stream' + location.search)")
	assert.Contains(t, string(page), "'"+fastsse.LossEvent+"'")
	<-s.pubEnd
	l := getLast(t, s.base)
	assert.True(t, l.Stopped)
	assert.EqualValues(t, 20, l.Updates, "-updates stops the publisher")
	assert.Len(t, l.Symbols, 7)
}

func TestBadFlags(t *testing.T) {
	good := config{symbols: 10, rate: 1, transport: "stream", conflate: "always", overflow: "close", queue: 512}
	_, err := good.options()
	require.NoError(t, err)
	for _, bad := range []func(*config){
		func(c *config) { c.transport = "udp" },
		func(c *config) { c.conflate = "sometimes" },
		func(c *config) { c.overflow = "drop" },
		func(c *config) { c.symbols = 0 },
		func(c *config) { c.symbols = maxSymbols + 1 },
		func(c *config) { c.queue = 0 },
		func(c *config) { c.rate = -1 },
		func(c *config) { c.start = -1 },
	} {
		c := good
		bad(&c)
		_, err := c.options()
		assert.Error(t, err, "%+v", c)
	}
}

// The publisher keeps the rate when it is not a whole number of updates
// per wake (50/s is half a one per 10 ms).
func TestPublisherRate(t *testing.T) {
	for _, rate := range []float64{50, 130, 1000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			t.Parallel()
			g := fastsse.NewGroup(nil)
			m := newMarket(g, 10, 1)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			m.run(ctx, rate, 0)
			cancel()
			g.Close()
			// Not fewer than half (a loaded machine wakes the publisher
			// late, and it catches up only so far), never more than asked.
			assert.GreaterOrEqual(t, float64(m.updates), rate/2, "updates in 1 s at %g/s", rate)
			assert.LessOrEqual(t, float64(m.updates), rate*1.2+2, "updates in 1 s at %g/s", rate)
		})
	}
}
