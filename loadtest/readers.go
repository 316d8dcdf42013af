package loadtest

import (
	"bytes"
	"math"
	"net"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Slow readers and keyed values.
//
// With Config.Slow, a fraction of the connections are slow readers: each
// reads its stream at most at 1/SlowFactor of the byte rate an average fast
// reader of its process receives (measured every calibrateEvery), in small
// reads with sleeps between them, on a goroutine of its own whatever -io
// says. Fast and slow readers are reported apart (Result.Readers).
//
// With Config.Keyed, an event's data is "TIME KEY ...": every connection
// keeps, per key, the time of the value it holds, and once a second in the
// window (at its next read) records the age of each (now − that time) in
// its group's age histogram. examples/ticker sends this format.
//
// Every connection counts fastsse's loss signal: events of type lasseLoss
// whose data is {"dropped":D,"conflated":C}.

const (
	// lasseLoss is fastsse's loss signal (fastsse.LossEvent).
	lasseLoss = "lasse-loss"
	// calibrateEvery is how often a process measures its fast readers'
	// byte rate, which sets its slow readers' pace.
	calibrateEvery = 500 * time.Millisecond
	// slowStartRate is a slow reader's pace (bytes/s) until the first
	// measure of the fast readers.
	slowStartRate = 1024
	// slowReads is about how many reads a second a slow reader makes.
	slowReads = 10
	// ageEvery is how often a connection samples the ages of its values.
	ageEvery = time.Second
	// slowReadOut is how long, once the run stops, slow readers read on
	// without pause before their sockets are closed: long enough to take
	// what the socket buffers hold and see whether the server had ended
	// the stream.
	slowReadOut = 500 * time.Millisecond
)

// serverEnded reports whether cause is the server's end of a stream (not
// the client's own close).
func serverEnded(cause string) bool {
	return cause == causeEOF || cause == causeEnded || cause == causeReset
}

// slowDialers are ds for the slow readers: with rcvbuf > 0, each socket's
// receive buffer is set before it connects (TCP never shrinks a window it
// has offered, so setting it later would not hold).
func slowDialers(ds []net.Dialer, rcvbuf int) []net.Dialer {
	out := append([]net.Dialer(nil), ds...)
	if rcvbuf <= 0 {
		return out
	}
	for i := range out {
		out[i].Control = setRcvBuf(rcvbuf)
	}
	return out
}

// isSlow reports whether connection i of n is a slow reader: the fraction
// f of them, spread evenly.
func isSlow(i int, f float64) bool {
	return f > 0 && math.Floor(float64(i+1)*f) > math.Floor(float64(i)*f)
}

// onLoss counts a loss signal: {"dropped":D,"conflated":C}.
func (c *conn) onLoss(data []byte) {
	c.s.lossEvents.Add(1)
	c.s.lossDropped.Add(jsonInt(data, `"dropped":`))
	c.s.lossConflated.Add(jsonInt(data, `"conflated":`))
}

// jsonInt reads the number after name in data; 0 when there is none.
func jsonInt(data []byte, name string) int64 {
	i := bytes.Index(data, []byte(name))
	if i < 0 {
		return 0
	}
	n, _ := leadingInt(bytes.TrimLeft(data[i+len(name):], " "))
	return n
}

// keyedValue notes the value of data's key: "TIME KEY ...".
func (c *conn) keyedValue(data []byte, ts int64) {
	_, rest, ok := bytes.Cut(data, []byte{' '})
	if !ok {
		return
	}
	key, _, _ := bytes.Cut(rest, []byte{' '})
	if i, ok := c.keyIdx[string(key)]; ok {
		c.held[i] = ts
		return
	}
	if c.keyIdx == nil {
		c.keyIdx = map[string]int{}
	}
	c.keyIdx[string(key)] = len(c.held)
	c.held = append(c.held, ts)
}

// sampleAges records, once per ageEvery inside the window, the age at now
// of every value c holds.
func (c *conn) sampleAges(now int64) {
	if len(c.held) == 0 || now-c.agedAt < int64(ageEvery) || c.r.phase.Load() != phaseMeasure {
		return
	}
	c.agedAt = now
	for _, ts := range c.held {
		c.s.recordAge((now - ts) / 1000)
	}
}

// recordAge adds an age (µs) to the shard's age histogram.
func (s *shard) recordAge(us int64) {
	us = min(max(us, 0), histMax)
	if s.locked {
		s.mu.Lock()
		_ = s.age.RecordValue(us)
		s.mu.Unlock()
		return
	}
	_ = s.age.RecordValue(us)
}

// slowPace is a slow reader's byte rate now.
func (r *runner) slowPace() float64 {
	if v := r.slowRate.Load(); v != 0 {
		return math.Float64frombits(v)
	}
	return slowStartRate
}

// calibrate sets the slow readers' pace every calibrateEvery from the fast
// readers' byte rate, until the run stops.
func (r *runner) calibrate() {
	defer r.wg.Done()
	t := time.NewTicker(calibrateEvery)
	defer t.Stop()
	sum := func() int64 {
		var n int64
		for _, s := range r.fastShards() {
			n += s.bytes.Load()
		}
		return n
	}
	prev, at := sum(), time.Now()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		b, now := sum(), time.Now()
		fast := r.open.Load() - r.slowOpen.Load()
		if fast > 0 && b > prev {
			per := float64(b-prev) / now.Sub(at).Seconds() / float64(fast)
			rate := max(per/r.cfg.SlowFactor, 1)
			if old := r.slowRate.Load(); old != 0 {
				rate = 0.7*math.Float64frombits(old) + 0.3*rate // smooth the bursts
			}
			r.slowRate.Store(math.Float64bits(rate))
		}
		prev, at = b, now
	}
}

// fastShards are the shards of the fast readers.
func (r *runner) fastShards() []*shard {
	return append(r.shards[:len(r.shards):len(r.shards)], r.dialShard)
}

// readSlow is the goroutine that reads slow reader c's stream: reads of
// about a tenth of its pace each, and after each a sleep as long as the
// bytes read take at the pace.
func (r *runner) readSlow(c *conn, nc net.Conn) {
	defer r.readWG.Done()
	buf := make([]byte, 4<<10)
	cause := ""
	sleep := time.NewTimer(0)
	defer sleep.Stop()
	<-sleep.C
	for {
		pace := r.slowPace()
		n, err := nc.Read(buf[:min(len(buf), max(1, int(pace/slowReads)))])
		if n > 0 {
			if ferr := c.feed(buf[:n], time.Now().UnixNano()); ferr != nil {
				cause = causeOf(ferr)
				break
			}
			// Once the run stops, it reads on without pause until stop
			// closes the socket, keeping its slot (counted open) till then.
			if r.ctx.Err() == nil {
				sleep.Reset(time.Duration(float64(n) / pace * float64(time.Second)))
				select {
				case <-sleep.C:
				case <-r.ctx.Done():
				}
			}
		}
		if err != nil {
			cause = causeOf(err)
			break
		}
	}
	r.slots[c.idx].Store(nil)
	_ = nc.Close()
	r.ended(c, cause, true)
}

// ReaderGroup is the report of one kind of reader, fast or slow.
type ReaderGroup struct {
	Conns          int64       `json:"conns"`
	OpenAtEnd      int64       `json:"open_at_end"`
	NeverDropped   int64       `json:"never_dropped"` // opened and never lost their stream
	Dropped        int64       `json:"dropped"`       // streams lost
	WindowEvents   int64       `json:"window_events"`
	DeliveriesPerS float64     `json:"deliveries_per_s"`
	BytesPerS      float64     `json:"bytes_per_s"`
	LatencyMS      Percentiles `json:"latency_ms"`
	AgeMS          Percentiles `json:"age_ms"` // Keyed: now − time of the value held, per key, sampled
	LossEvents     int64       `json:"loss_events"`
	LossDropped    int64       `json:"loss_dropped"`
	LossConflated  int64       `json:"loss_conflated"`
	SlowPace       float64     `json:"slow_pace_bytes_per_s,omitempty"` // slow: the last pace, mean over processes
}

// groupPartial is one process's share of a ReaderGroup.
type groupPartial struct {
	ReaderGroup
	WindowBytes int64  `json:"window_bytes"`
	Latency     []byte `json:"latency"`
	Age         []byte `json:"age"`
}

// groupSummary sums up the conns and shards of one group.
func (r *runner) groupSummary(slow bool, shards []*shard, openAtEnd int64) *groupPartial {
	g := &groupPartial{}
	g.OpenAtEnd = openAtEnd
	lat, age := newHist(), newHist()
	for _, s := range shards {
		g.WindowEvents += s.wEvents.Load()
		g.WindowBytes += s.wBytes.Load()
		g.LossEvents += s.lossEvents.Load()
		g.LossDropped += s.lossDropped.Load()
		g.LossConflated += s.lossConflated.Load()
		lat.Merge(s.lat)
		age.Merge(s.age)
	}
	for _, c := range r.conns {
		if c.slow != slow {
			continue
		}
		g.Conns++
		g.Dropped += c.drops
		if c.everOpen && c.drops == 0 {
			g.NeverDropped++
		}
	}
	if slow {
		g.SlowPace = round1(r.slowPace())
	}
	g.Latency, g.Age = encodeHist(lat), encodeHist(age)
	return g
}

// mergeGroups sums the processes' shares of a group.
func mergeGroups(ps []*groupPartial) (*ReaderGroup, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	out := &ReaderGroup{}
	lat, age := newHist(), newHist()
	n := 0
	for _, p := range ps {
		out.Conns += p.Conns
		out.OpenAtEnd += p.OpenAtEnd
		out.NeverDropped += p.NeverDropped
		out.Dropped += p.Dropped
		out.WindowEvents += p.WindowEvents
		out.DeliveriesPerS += p.DeliveriesPerS
		out.BytesPerS += p.BytesPerS
		out.LossEvents += p.LossEvents
		out.LossDropped += p.LossDropped
		out.LossConflated += p.LossConflated
		if p.SlowPace > 0 {
			out.SlowPace += p.SlowPace
			n++
		}
		for _, x := range []struct {
			enc []byte
			to  *hdr.Histogram
		}{{p.Latency, lat}, {p.Age, age}} {
			h, err := hdr.Decode(x.enc)
			if err != nil {
				return nil, err
			}
			x.to.Merge(h)
		}
	}
	if n > 0 {
		out.SlowPace = round1(out.SlowPace / float64(n))
	}
	out.DeliveriesPerS, out.BytesPerS = round1(out.DeliveriesPerS), round1(out.BytesPerS)
	out.LatencyMS, out.AgeMS = percentiles(lat), percentiles(age)
	return out, nil
}

// groupRows are the table's lines of one group.
func groupRows(rows []row, name string, g *ReaderGroup) []row {
	if g == nil {
		return rows
	}
	k := "readers." + name + "."
	rows = append(rows,
		row{name + " readers", k + "conns", g.Conns},
		row{name + " open at end", k + "open_at_end", g.OpenAtEnd},
		row{name + " never dropped", k + "never_dropped", g.NeverDropped},
		row{name + " streams dropped", k + "dropped", g.Dropped},
		row{name + " deliveries/s", k + "deliveries_per_s", g.DeliveriesPerS},
		row{name + " bytes/s", k + "bytes_per_s", g.BytesPerS},
	)
	rows = appendPct(rows, name+" latency", k+"latency_ms", g.LatencyMS)
	if g.AgeMS.Count > 0 {
		rows = appendPct(rows, name+" value age", k+"age_ms", g.AgeMS)
	}
	rows = append(rows,
		row{name + " loss events", k + "loss_events", g.LossEvents},
		row{name + " loss dropped", k + "loss_dropped", g.LossDropped},
		row{name + " loss conflated", k + "loss_conflated", g.LossConflated},
	)
	if g.SlowPace > 0 {
		rows = append(rows, row{name + " pace (bytes/s)", k + "slow_pace_bytes_per_s", g.SlowPace})
	}
	return rows
}
