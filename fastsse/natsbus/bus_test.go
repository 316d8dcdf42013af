package natsbus

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ctxWait(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	tb.Cleanup(cancel)
	return ctx
}

// TestFanOut: three instances on one stream, clients spread over them, on
// both transports. Publishes on any instance reach every client, in one
// order, with the same ids everywhere; and the stream has one consumer per
// instance, not one per client.
func TestFanOut(t *testing.T) {
	ns := startNATS(t)
	cfg := Config{Stream: "NEWS", Subject: "news"}
	var insts []*instance
	for i := range 3 {
		tr := fastsse.TransportStream
		if i == 1 {
			tr = fastsse.TransportDense
		}
		insts = append(insts, startInstance(t, ns, cfg, &fastsse.GroupOptions{Replay: 100}, &fastsse.Options{Heartbeat: -1, Transport: tr}))
	}
	epoch := insts[0].bus.Epoch()
	for _, in := range insts {
		assert.Equal(t, epoch, in.bus.Epoch(), "one stream, one epoch")
	}
	var clients []*sseClient
	for i := range 12 {
		clients = append(clients, get(t, insts[i%3].addr, ""))
	}
	for _, in := range insts {
		require.Eventually(t, func() bool { return in.group.Len() == 4 }, wait, 5*time.Millisecond)
	}
	const n = 30
	var want []string
	for i := range n {
		id, err := insts[i%3].group.Publish(&fastsse.Event{Data: "news " + strconv.Itoa(i)})
		require.NoError(t, err)
		want = append(want, id)
	}
	assert.Equal(t, epoch+"-1", want[0])
	assert.Equal(t, epoch+"-"+strconv.Itoa(n), want[n-1], "consecutive stream sequences")
	for i, c := range clients {
		assert.Equal(t, want, c.ids(t, n), "client %d", i)
	}
	info, err := insts[0].bus.stream.Info(ctxWait(t))
	require.NoError(t, err)
	assert.Equal(t, 3, info.State.Consumers, "one ordered consumer per instance")
}

// TestPublishRetryDedupe: a publisher's retry with the same message id is
// stored and delivered once.
func TestPublishRetryDedupe(t *testing.T) {
	ns := startNATS(t)
	in := startInstance(t, ns, Config{Stream: "DEDUPE"}, nil, &fastsse.Options{Heartbeat: -1})
	c := get(t, in.addr, "")
	require.Eventually(t, func() bool { return in.group.Len() == 1 }, wait, 5*time.Millisecond)
	payload := []byte("data: once\n\n")
	s1, err := in.bus.Publish(ctxWait(t), "m-1", payload)
	require.NoError(t, err)
	s2, err := in.bus.Publish(ctxWait(t), "m-1", payload)
	require.NoError(t, err)
	assert.Equal(t, s1, s2, "the retry is the first one")
	s3, err := in.bus.Publish(ctxWait(t), "m-2", []byte("data: next\n\n"))
	require.NoError(t, err)
	assert.Equal(t, s1+1, s3)
	ev, err := c.next()
	require.NoError(t, err)
	assert.Equal(t, "once", ev.Data)
	ev, err = c.next()
	require.NoError(t, err)
	assert.Equal(t, "next", ev.Data, "no duplicate between")
}

// TestResumeOnAnotherInstance: a client that read from one instance
// resumes on another from the id it had, with nothing lost and nothing
// repeated; an id of another stream is a gap, told with lasse-gap.
func TestResumeOnAnotherInstance(t *testing.T) {
	ns := startNATS(t)
	a := startInstance(t, ns, Config{Stream: "R"}, &fastsse.GroupOptions{Replay: 100}, &fastsse.Options{Heartbeat: -1})
	b := startInstance(t, ns, Config{Stream: "R"}, &fastsse.GroupOptions{Replay: 100}, &fastsse.Options{Heartbeat: -1, Transport: fastsse.TransportDense})
	var ids []string
	for i := range 10 {
		id, err := a.group.Publish(&fastsse.Event{Data: strconv.Itoa(i)})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	c := get(t, b.addr, ids[3])
	assert.Equal(t, ids[4:], c.ids(t, 6))
	id, err := a.group.Publish(&fastsse.Event{Data: "live"})
	require.NoError(t, err)
	assert.Equal(t, []string{id}, c.ids(t, 1))

	other := get(t, b.addr, "zzzzzzzz-3")
	ev, err := other.next()
	require.NoError(t, err)
	assert.Equal(t, fastsse.GapEvent, ev.Type)
	assert.Equal(t, "zzzzzzzz-3", ev.Data)
	assert.Equal(t, id, ev.ID)
}

// TestNewRefuses: bad configuration gets a clear error.
func TestNewRefuses(t *testing.T) {
	ns := startNATS(t)
	nc := ns.connect(t)
	_, err := New(ctxWait(t), nil, Config{Stream: "X"})
	assert.ErrorContains(t, err, "nil connection")
	_, err = New(ctxWait(t), nc, Config{})
	assert.ErrorContains(t, err, "Stream is required")
	_, err = New(ctxWait(t), nc, Config{Stream: "S", Subject: "a"})
	require.NoError(t, err)
	_, err = New(ctxWait(t), nc, Config{Stream: "S", Subject: "b"})
	require.Error(t, err, "a stream of another subject")
	assert.True(t, strings.Contains(err.Error(), "S"), err.Error())
}

// publishN publishes n events on in and returns their ids.
func publishN(tb testing.TB, in *instance, n int) []string {
	tb.Helper()
	var ids []string
	for i := range n {
		id, err := in.group.Publish(&fastsse.Event{Data: "e" + strconv.Itoa(i)})
		require.NoError(tb, err)
		ids = append(ids, id)
	}
	return ids
}

// TestResumeFromHistory: an instance whose ring holds only the last 10
// events replays the rest from JetStream history, on both transports, and
// joins it to the live events with no gap and no duplicate while another
// instance publishes.
func TestResumeFromHistory(t *testing.T) {
	ns := startNATS(t)
	cfg := Config{Stream: "H"}
	a := startInstance(t, ns, cfg, nil, &fastsse.Options{Heartbeat: -1})
	ids := publishN(t, a, 300)
	var reads int64
	for _, tr := range []fastsse.Transport{fastsse.TransportStream, fastsse.TransportDense} {
		b := startInstance(t, ns, cfg, &fastsse.GroupOptions{Replay: 10}, &fastsse.Options{Heartbeat: -1, Transport: tr})
		c := get(t, b.addr, ids[5])
		more := publishN(t, a, 20) // live, racing the replay
		want := append(append([]string(nil), ids[6:]...), more...)
		assert.Equal(t, want, c.ids(t, len(want)), "transport %d", tr)
		ids = append(ids, more...)
		reads += b.bus.Stats().Reads
	}
	assert.Positive(t, reads, "read from history")
}

// TestResumeStormSharesReads: many clients resuming at once from nearby
// ids (their instance died) start far fewer history reads than there are
// clients, and each gets everything.
func TestResumeStormSharesReads(t *testing.T) {
	const clients = 100
	ns := startNATS(t)
	cfg := Config{Stream: "STORM"}
	a := startInstance(t, ns, cfg, nil, &fastsse.Options{Heartbeat: -1})
	ids := publishN(t, a, 400)
	b := startInstance(t, ns, cfg, &fastsse.GroupOptions{Replay: 10}, &fastsse.Options{Heartbeat: -1, Transport: fastsse.TransportDense})
	before := b.bus.Stats().Reads
	cs := make([]*sseClient, clients)
	errs := make(chan error, clients)
	for i := range cs {
		go func() {
			c, err := getErr(b.addr, ids[100+i%20])
			cs[i] = c
			errs <- err
		}()
	}
	for range clients {
		require.NoError(t, <-errs)
	}
	for i, c := range cs {
		t.Cleanup(c.close)
		from := 100 + i%20 + 1
		require.Equal(t, ids[from:], c.ids(t, len(ids)-from), "client %d", i)
	}
	reads := b.bus.Stats().Reads - before
	t.Logf("%d clients resuming about 300 events back: %d history reads", clients, reads)
	assert.Less(t, reads, int64(clients/4), "reads are shared")
}

// TestRetentionGap: a client that missed more than the stream keeps is
// told so with lasse-gap (data: its id; id: the position it goes on from),
// never replayed silently from the oldest kept event.
func TestRetentionGap(t *testing.T) {
	ns := startNATS(t)
	cfg := Config{Stream: "RET", MaxMsgs: 20}
	a := startInstance(t, ns, cfg, &fastsse.GroupOptions{Replay: 5}, &fastsse.Options{Heartbeat: -1})
	ids := publishN(t, a, 100) // the stream keeps 81..100, the ring 96..100
	get(t, a.addr, ids[99])    // its Resume waits for the instance to have delivered 100
	c := get(t, a.addr, ids[10])
	ev, err := c.next()
	require.NoError(t, err)
	assert.Equal(t, fastsse.GapEvent, ev.Type)
	assert.Equal(t, ids[10], ev.Data)
	assert.Equal(t, ids[99], ev.ID)
	live := publishN(t, a, 1)
	assert.Equal(t, live, c.ids(t, 1))

	// The stream keeps 82..101 now. A client that missed exactly those 20
	// gets all 20; one that missed 21 is told of the gap.
	c = get(t, a.addr, ids[80])
	assert.Equal(t, append(append([]string(nil), ids[81:]...), live...), c.ids(t, 20))
	c = get(t, a.addr, ids[79])
	ev, err = c.next()
	require.NoError(t, err)
	assert.Equal(t, fastsse.GapEvent, ev.Type)
	assert.Equal(t, ids[79], ev.Data)
}

// TestResumeLargeEventsFromHistory: history reads are bounded in bytes
// (a block of large events is read in parts); a replay of large events
// arrives whole and in order.
func TestResumeLargeEventsFromHistory(t *testing.T) {
	ns := startNATS(t)
	cfg := Config{Stream: "BIG"}
	a := startInstance(t, ns, cfg, nil, &fastsse.Options{Heartbeat: -1})
	big := strings.Repeat("x", 300<<10)
	var ids []string
	for range 12 {
		id, err := a.group.Publish(&fastsse.Event{Data: big})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	b := startInstance(t, ns, cfg, &fastsse.GroupOptions{Replay: 2}, &fastsse.Options{Heartbeat: -1, Transport: fastsse.TransportDense})
	c := get(t, b.addr, ids[0])
	for i, want := range ids[1:] {
		ev, err := c.next()
		require.NoError(t, err)
		require.Equal(t, want, ev.ID, "event %d", i)
		require.Len(t, ev.Data, len(big))
	}
	assert.GreaterOrEqual(t, b.bus.Stats().Reads, int64(3), "about 1 MiB per read")
}

// busRecorder is a fastsse.BusObserver that counts what it hears.
type busRecorder struct {
	delivered, gaps, published atomic.Int64
	maxLag                     atomic.Int64 // nanoseconds
	members                    atomic.Int64 // at the last publish
}

func (r *busRecorder) StreamOpened(fastsse.StreamInfo)                        {}
func (r *busRecorder) StreamEnded(fastsse.StreamInfo, error, time.Duration)   {}
func (r *busRecorder) Overflowed(fastsse.StreamInfo, fastsse.OverflowPolicy)  {}
func (r *busRecorder) Replayed(fastsse.StreamInfo, fastsse.ReplayResult, int) {}
func (r *busRecorder) Published(members int, _ time.Duration) {
	r.published.Add(1)
	r.members.Store(int64(members))
}
func (r *busRecorder) BusGap() { r.gaps.Add(1) }
func (r *busRecorder) BusDelivered(lag time.Duration) {
	r.delivered.Add(1)
	if int64(lag) > r.maxLag.Load() {
		r.maxLag.Store(int64(lag))
	}
}

// TestBusObserver: a bus group's Observer, when it is a BusObserver, hears
// every delivery with its lag from the publish on another instance, and
// every delivery to the members as a publish.
func TestBusObserver(t *testing.T) {
	ns := startNATS(t)
	cfg := Config{Stream: "OBS"}
	a := startInstance(t, ns, cfg, nil, &fastsse.Options{Heartbeat: -1})
	obs := &busRecorder{}
	b := startInstance(t, ns, cfg, &fastsse.GroupOptions{Observer: obs}, &fastsse.Options{Heartbeat: -1})
	c := get(t, b.addr, "")
	require.Eventually(t, func() bool { return b.group.Len() == 1 }, wait, 5*time.Millisecond)
	start := time.Now()
	ids := publishN(t, a, 5)
	assert.Equal(t, ids, c.ids(t, 5))
	require.Eventually(t, func() bool { return obs.delivered.Load() == 5 }, wait, 5*time.Millisecond)
	assert.Positive(t, obs.maxLag.Load())
	assert.Less(t, time.Duration(obs.maxLag.Load()), time.Since(start), "a lag no longer than the test")
	assert.Equal(t, int64(5), obs.published.Load())
	assert.Equal(t, int64(1), obs.members.Load())
	assert.Zero(t, obs.gaps.Load())
}
