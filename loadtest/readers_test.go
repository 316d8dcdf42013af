package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyedFeed is a test server in examples/ticker's format: data
// "TIME KEY filler", keys k0..k3 in turn, one event every gap, and every
// lossEvery events a lasse-loss event {"dropped":1,"conflated":2}. It
// counts the streams opened per path.
type keyedFeed struct {
	gap       time.Duration
	lossEvery int
	paths     map[string]*atomic.Int64
}

func (f *keyedFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := f.paths[r.URL.Path]; n != nil {
		n.Add(1)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	filler := strings.Repeat("x", 100)
	for i := 0; ; i++ {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(f.gap):
		}
		if _, err := fmt.Fprintf(w, "data: %d k%d %s\n\n", time.Now().UnixNano(), i%4, filler); err != nil {
			return
		}
		if f.lossEvery > 0 && i%f.lossEvery == f.lossEvery-1 {
			fmt.Fprint(w, "event: lasse-loss\ndata: {\"dropped\":1,\"conflated\":2}\n\n")
		}
		fl.Flush()
	}
}

// Slow readers read at about 1/SlowFactor of the fast ones' byte rate, on
// their own URL, and the report keeps them apart: their counts, the loss
// signals each group saw, and the age of the values they hold.
func TestSlowReaders(t *testing.T) {
	f := &keyedFeed{gap: 2 * time.Millisecond, lossEvery: 20, paths: map[string]*atomic.Int64{"/fast": {}, "/slow": {}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := Config{URL: srv.URL + "/fast", SlowURL: srv.URL + "/slow", Conns: 20, Slow: 0.25, SlowFactor: 10, Keyed: true,
		Duration: 1500 * time.Millisecond, Settle: time.Second, IO: IOGoroutine} // the pace is measured by then
	if haveEpoll {
		cfg.IO = IOEpoll
	}
	res, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.NotNil(t, res.Readers)
	fast, slow := res.Readers.Fast, res.Readers.Slow
	require.NotNil(t, slow)

	assert.EqualValues(t, 15, fast.Conns)
	assert.EqualValues(t, 5, slow.Conns, "a quarter of 20")
	assert.EqualValues(t, 15, f.paths["/fast"].Load(), "fast readers on -url")
	assert.EqualValues(t, 5, f.paths["/slow"].Load(), "slow readers on -slow-url")
	assert.EqualValues(t, 15, fast.OpenAtEnd)
	assert.EqualValues(t, 5, slow.OpenAtEnd)
	assert.EqualValues(t, 5, slow.NeverDropped)
	assert.Zero(t, slow.Dropped)

	perFast, perSlow := fast.BytesPerS/15, slow.BytesPerS/5
	assert.Positive(t, perSlow)
	assert.Less(t, perSlow, perFast/10*2, "a slow reader reads at ~1/10 of a fast one (fast %.0f B/s, slow %.0f B/s)", perFast, perSlow)
	assert.Greater(t, perSlow, perFast/10/3, "but it reads (fast %.0f B/s, slow %.0f B/s)", perFast, perSlow)
	assert.InDelta(t, perFast/10, slow.SlowPace, perFast/10, "the pace follows the fast readers")

	assert.Positive(t, fast.LossEvents)
	assert.Equal(t, fast.LossEvents, fast.LossDropped, "dropped 1 each")
	assert.Equal(t, 2*fast.LossEvents, fast.LossConflated, "conflated 2 each")
	assert.Positive(t, slow.LossEvents)
	assert.Equal(t, res.WindowEvents, fast.WindowEvents+slow.WindowEvents, "loss signals are not deliveries")

	// Each key changes every 8 ms: a fast reader holds values a few ms
	// old; a slow one reads the server's backlog, older and older.
	assert.Positive(t, fast.AgeMS.Count)
	assert.Positive(t, slow.AgeMS.Count)
	assert.Less(t, fast.AgeMS.P50, 200.0)
	assert.Greater(t, slow.AgeMS.P50, fast.AgeMS.P50*2, "slow readers hold older values")
	assert.Positive(t, slow.LatencyMS.Count)
}

func TestIsSlowSpreadsTheFraction(t *testing.T) {
	for _, tc := range []struct {
		n    int
		f    float64
		want int
	}{{100, 0.05, 5}, {10000, 0.05, 500}, {20, 0.25, 5}, {7, 0, 0}, {3, 0.5, 1}} {
		got, run := 0, 0
		for i := range tc.n {
			if isSlow(i, tc.f) {
				got++
				run++
				assert.Less(t, run, 2, "n=%d f=%g: slow readers are spread, not bunched", tc.n, tc.f)
			} else {
				run = 0
			}
		}
		assert.Equal(t, tc.want, got, "n=%d f=%g", tc.n, tc.f)
	}
}

func TestJSONInt(t *testing.T) {
	d := []byte(`{"dropped":12,"conflated": 345}`)
	assert.EqualValues(t, 12, jsonInt(d, `"dropped":`))
	assert.EqualValues(t, 345, jsonInt(d, `"conflated":`))
	assert.EqualValues(t, 0, jsonInt(d, `"other":`))
}
