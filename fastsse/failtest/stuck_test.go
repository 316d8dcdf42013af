//go:build linux

package failtest

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	stuckReaders = 999
	// stuckRounds stuck clients come one after the other.
	stuckRounds = 3
	// stuckWindow is the least time the measured publish runs (it runs on
	// until the last stuck client is evicted).
	stuckWindow = 4 * time.Second
	// stuckSndBuf is the server sockets' SO_SNDBUF in this test: with the
	// client's 4 KB receive buffer, about 100 KB go into a stuck client's
	// socket before writes block (with autotuning, about 3 MB would).
	stuckSndBuf = 64 << 10
	// stuckPrefill is the one event sent to each stuck client alone as
	// soon as it joins, so that its socket buffers are full at once: at
	// the publish rate, small events would take minutes to fill them.
	stuckPrefill = 512 << 10
)

// stuckRate is the steady publish, events per second to each of the two
// servers' 999 readers: 2 × 20k deliveries/s, below the ~50k/s this
// machine does when nothing else runs (the readers, in this process, take
// their share of it). Under -race, which makes every delivery several times
// dearer, 10/s: one fan-out of 999 then takes 30-80 ms, within its 50 ms
// tick most of the time.
func stuckRate() int {
	if raceEnabled {
		return 10
	}
	return 20
}

// prefill is the message that makes HandleNotify send stuckPrefill bytes.
type prefill struct{}

// stuckSide is one of the test's two servers: its group, its readers and
// what they measured.
type stuckSide struct {
	s       *server
	h       *handler
	g       *fastsse.Group
	results chan stuckResult
	n       int // events published in the measured window
}

type stuckResult struct {
	lat []int64 // delivery latencies in the measured window, in ns
	err error
}

func newStuckSide(t *testing.T, tr ssetest.Transport) *stuckSide {
	side := &stuckSide{g: &fastsse.Group{}, results: make(chan stuckResult, stuckReaders)}
	big := fastsse.Event{Data: strings.Repeat("x", stuckPrefill)}
	side.h = &handler{
		onInit: func(r *rec, req *fastsse.Request) fastsse.InitResult[*rec] {
			_ = side.g.Join(r.conn)
			return fastsse.Open(r)
		},
		onNotify: func(msg any, r *rec) fastsse.Result[*rec] {
			if _, ok := msg.(prefill); ok {
				return fastsse.Send(big, r)
			}
			return sendMsg(msg, r)
		},
	}
	// Default queue (128) and overflow policy (OverflowClose). Dense: a
	// stuck write is evicted once it has been pending for StallTimeout.
	opts := fastsse.Options{Heartbeat: -1, StallTimeout: 300 * time.Millisecond}
	side.s = serveSndBuf(t, side.h, tr, opts, stuckSndBuf)
	for _, c := range ssetest.DialMany(t, side.s.addr, "/", stuckReaders) {
		go side.read(c)
	}
	ssetest.Eventually(t, func() bool { return side.g.Len() == stuckReaders }, "readers joined")
	return side
}

// read is a reader: it records the latency of every event of the measured
// window ("1 <ns>"; warm-up events are "0 <ns>") until the event "end".
func (side *stuckSide) read(c *ssetest.Client) {
	var res stuckResult
	for {
		data, err := c.NextData()
		if err != nil {
			res.err = err
			break
		}
		if data == "end" {
			break
		}
		measured, sent, ok := strings.Cut(data, " ")
		ns, err := strconv.ParseInt(sent, 10, 64)
		if !ok || err != nil {
			res.err = fmt.Errorf("data %q", data)
			break
		}
		if measured == "1" {
			res.lat = append(res.lat, nowNS()-ns)
		}
	}
	side.results <- res
}

func (side *stuckSide) publish(t *testing.T, measured bool) {
	data := "0 "
	if measured {
		data = "1 "
		side.n++
	}
	_, err := side.g.Publish(&fastsse.Event{Data: data + strconv.FormatInt(nowNS(), 10)})
	require.NoError(t, err)
}

// latencies ends the readers and gathers what they measured.
func (side *stuckSide) latencies(t *testing.T) []int64 {
	_, err := side.g.Publish(&fastsse.Event{Data: "end"})
	require.NoError(t, err)
	var lat []int64
	for range stuckReaders {
		select {
		case res := <-side.results:
			require.NoError(t, res.err, "a reader's stream")
			assert.Len(t, res.lat, side.n, "a reader lost events")
			lat = append(lat, res.lat...)
		case <-time.After(waitFor):
			t.Fatal("a reader did not get the end event")
		}
	}
	return lat
}

// TestStuckClient: clients that stop reading (4 KB SO_RCVBUF, never read a
// byte), one at a time, among 999 that read, under a steady Group.Publish
// to all. The readers' p99 delivery latency stays within 20% (+ a floor) of
// a run without stuck clients; each stuck one is evicted as a slow consumer
// (stream transport: OverflowClose once its queue fills; dense:
// StallTimeout); no reader loses an event or its stream; and RSS grows by
// at most 64 MB during the run (under -race, Go-held memory: see readMem).
//
// (The p99 comparison is skipped, and logged, when the machine is too busy
// for the publisher to keep its pace: see the bound's comment.)
//
// The run without stuck clients is a second server in the same process,
// published to in alternate ticks, not an earlier phase: other work on this
// 2-core machine moves p99 by hundreds of ms from one second to the next,
// which would swamp a 20% bound, while it hits both servers alike. A stuck
// client that held up its endpoint (a blocked dense writer shard, a blocked
// Publish) would show on its server alone.
func TestStuckClient(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			base, test := newStuckSide(t, tr), newStuckSide(t, tr)
			// Each server gets rate events a second, in alternate ticks: one
			// fan-out at a time, so that neither server's events wait behind
			// the other's (published in the same tick, the one published
			// second would be late by the other's whole fan-out, and p99,
			// which is about the worst few events' latency, would measure the
			// order of publishing).
			rate := stuckRate()
			tk := time.NewTicker(time.Second / time.Duration(2*rate))
			defer tk.Stop()
			for i := range rate { // warm-up, not measured
				<-tk.C
				[]*stuckSide{base, test}[i%2].publish(t, false)
			}
			runtime.GC()
			sampler := sampleMem(t)
			mem0 := sampler.max.Load()

			// The stuck clients, one after the other, on the test server.
			type eviction struct {
				after  time.Duration
				reason error
			}
			evictions := make(chan eviction, stuckRounds)
			stuckDone := make(chan error, 1)
			go func() {
				stuckDone <- func() error {
					for round := range stuckRounds {
						tag := "stuck" + strconv.Itoa(round)
						nc, err := dialSmallRcvBuf(test.s.addr, 4096, ssetest.Request("GET", "/?tag="+tag))
						if err != nil {
							return err
						}
						defer nc.Close()
						var sr *rec
						for sr == nil {
							for _, r := range test.h.all() {
								if r.tag == tag {
									sr = r
								}
							}
							time.Sleep(time.Millisecond)
						}
						if err := sr.conn.Notify(prefill{}); err != nil {
							return err
						}
						from := nowNS()
						if tr.Name == "stream" {
							// The stream transport has no write deadline: the
							// stuck writer blocks, its queue fills, and
							// OverflowClose evicts it. At stuckRate, filling
							// 128 entries would take seconds: once the prefill
							// has had time to block the writer, messages of
							// its own fill it at once.
							time.Sleep(100 * time.Millisecond)
							for sr.conn.Notify("fill") == nil {
								runtime.Gosched()
							}
						}
						select {
						case <-sr.conn.Done():
							evictions <- eviction{time.Duration(sr.endNS - from), sr.reason}
						case <-time.After(waitFor):
							return fmt.Errorf("stuck client %d not evicted", round)
						}
					}
					return nil
				}()
			}()
			start := time.Now()
			for i := 0; ; i++ {
				<-tk.C
				[]*stuckSide{base, test}[i%2].publish(t, true)
				if i%2 == 1 && time.Since(start) >= stuckWindow && len(stuckDone) > 0 {
					break
				}
			}
			window := time.Since(start)
			require.NoError(t, <-stuckDone)
			latBase, latTest := base.latencies(t), test.latencies(t)
			memMax := sampler.Stop()

			close(evictions)
			var after []time.Duration
			for ev := range evictions {
				assert.ErrorIs(t, ev.reason, fastsse.ErrSlowConsumer)
				after = append(after, ev.after)
			}
			assert.Equal(t, int64(stuckRounds), test.s.ep.Stats().SlowConsumers)
			assert.Equal(t, int64(stuckReaders), test.s.ep.Stats().Open, "only the stuck clients were evicted")
			assert.Zero(t, base.s.ep.Stats().SlowConsumers)

			// The bound is 20% over the run without stuck clients, plus a floor
			// for what scheduling alone makes of two servers' p99 in the same
			// window (a 5 ms floor failed now and then on a quiet machine). The
			// floor stays well under what the test looks for: a stuck client
			// that held up its endpoint would add its eviction time (100 ms and
			// more) to every event meanwhile.
			//
			// When the machine is so busy that the publisher itself misses a
			// fifth of its ticks (seen with other load tests running: load
			// average 33 on 2 cores), p99 measures the starvation, seconds of
			// it, and two identical servers' differ by 50% and more: then p99
			// is logged, not compared. Everything else is still checked.
			floor := 25 * time.Millisecond
			if raceEnabled {
				floor = 40 * time.Millisecond
			}
			p99A, p99B := quantile(latBase, 0.99), quantile(latTest, 0.99)
			bound := p99A*12/10 + floor
			t.Logf("%d+%d readers, %d events each at %d/s over %v: p50 %v / %v, p99 without stuck clients %v, with %v (bound %v); %d stuck clients evicted after %v; %s %d MB -> max %d MB (RSS now %d MB)",
				stuckReaders, stuckReaders, test.n, rate, window.Round(time.Millisecond), quantile(latBase, 0.5), quantile(latTest, 0.5),
				p99A, p99B, bound, len(after), after, memName, mem0/mb, memMax/mb, rss(t)/mb)
			// Under -race the detector's own cost swamps the comparison (p99
			// of two identical servers seen 311 vs 424 ms with other packages'
			// tests running beside): the p99 bound is asserted by the run
			// without -race that make test does of this package on its own.
			if due := int(window.Seconds() * float64(rate)); test.n < due*8/10 {
				t.Logf("overloaded: %d events published of %d due; p99 not compared", test.n, due)
			} else if raceEnabled {
				t.Logf("-race: p99 logged, not compared")
			} else {
				assert.LessOrEqual(t, p99B, bound, "p99 with stuck clients")
			}
			// The race detector's shadow memory and its larger stacks add to
			// what the Go runtime holds, most on the stream transport's 2,000
			// goroutines: the 64 MB bound is asserted by the run without
			// -race, twice it under -race.
			growth := int64(64 * mb)
			if raceEnabled {
				growth *= 2
			}
			assert.LessOrEqual(t, memMax-mem0, growth, "%s growth during the run", memName)
		})
	}
}
