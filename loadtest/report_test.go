package loadtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleResult(t *testing.T) *Result {
	lat, con := newHist(), newHist()
	for i := int64(1); i <= 1000; i++ {
		require.NoError(t, lat.RecordValue(i*10)) // 10 µs .. 10 ms
		require.NoError(t, con.RecordValue(i))
	}
	a := &partial{
		snapshot: snapshot{Opened: 110, Failed: 3, Dropped: 10, Reconnects: 10, Events: 5000, Bytes: 400000, Gaps: 2, Dups: 1, CPU: 1.5, RSS: 8 << 20},
		Conns:    100, OpenAtEnd: 100, WindowS: 2, WindowEvents: 4000, WindowBytes: 320000, IDsSpanned: 5001,
		FailedBy: map[string]int64{causeRefused: 3}, DroppedBy: map[string]int64{causeEOF: 10},
		ConnEventsMin: 40, ConnEventsMax: 60, RSSStart: 4 << 20, RSSOpen: 5 << 20, OpenAtRSS: 100,
		Latency: encodeHist(lat), Connect: encodeHist(con),
	}
	b := &partial{
		snapshot: snapshot{Opened: 100, Events: 4000, Bytes: 300000, CPU: 1, RSS: 8 << 20},
		Conns:    100, OpenAtEnd: 100, WindowS: 2.5, WindowEvents: 4000, WindowBytes: 300000, IDsSpanned: 4000,
		FailedBy: map[string]int64{}, DroppedBy: map[string]int64{},
		ConnEventsMin: 30, ConnEventsMax: 50, RSSStart: 4 << 20, RSSOpen: 5 << 20, OpenAtRSS: 100,
		Latency: encodeHist(newHist()), Connect: encodeHist(con),
	}
	r := &Result{Mode: ModeFanout, URL: "http://127.0.0.1:1/feed", Conns: 200, Procs: 2, IO: IOEpoll, Window: 2.5, ServerPIDs: []int{42, 43}, ServerRSSPerConn: 21000.5}
	require.NoError(t, r.merge([]*partial{a, b}))
	r.Warnings = []string{"something odd"}
	return r
}

func TestMerge(t *testing.T) {
	r := sampleResult(t)
	assert.Equal(t, int64(210), r.Opened)
	assert.Equal(t, map[string]int64{causeRefused: 3}, r.FailedBy)
	assert.Equal(t, map[string]int64{causeEOF: 10}, r.DroppedBy)
	assert.Equal(t, int64(9000), r.Events)
	assert.Equal(t, int64(8000), r.WindowEvents)
	assert.Equal(t, 2000.0+1600.0, r.DeliveriesPerS, "each process over its own window")
	assert.Equal(t, 160000.0+120000.0, r.BytesPerS)
	assert.Equal(t, int64(30), r.ConnEventsMin)
	assert.Equal(t, int64(60), r.ConnEventsMax)
	assert.Equal(t, int64(9001), r.IDsSpanned)
	assert.Equal(t, int64(1000), r.LatencyMS.Count)
	assert.InDelta(t, 5.0, r.LatencyMS.P50, 0.01)
	assert.InDelta(t, 9.9, r.LatencyMS.P99, 0.01)
	assert.InDelta(t, 10.0, r.LatencyMS.Max, 0.01)
	assert.Equal(t, int64(2000), r.ConnectMS.Count)
	assert.Equal(t, 2.5, r.ClientCPUS)
	assert.Equal(t, int64(16<<20), r.ClientRSS)
	assert.Equal(t, 10485.8, r.ClientRSSPerConn) // 2 MiB over 200 conns
}

func TestTable(t *testing.T) {
	r := sampleResult(t)
	var b strings.Builder
	require.NoError(t, r.WriteTable(&b))
	out := b.String()
	for _, want := range []string{
		"mode                           fanout\n",
		"failed                         3\n",
		"  failed: refused              3\n",
		"  dropped: eof                 10\n",
		"deliveries/s                   3600\n",
		"latency p99 (ms)               9.903\n",
		"server rss per conn (bytes)    21000.5\n",
		"server pids                    42,43\n",
		"warning: something odd\n",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "churn", "churn rows only in churn mode")
}

// The table and the JSON file hold the same figures, row by row.
func TestTableMatchesJSON(t *testing.T) {
	r := sampleResult(t)
	t.Run("plain", func(t *testing.T) { tableMatchesJSON(t, r) })
	withReaders := *r
	withReaders.Readers = &Readers{
		Fast: &ReaderGroup{Conns: 95, OpenAtEnd: 95, NeverDropped: 95, DeliveriesPerS: 4750, BytesPerS: 2e5,
			LatencyMS: Percentiles{Count: 9, P50: 2, P99: 9, Max: 10}, AgeMS: Percentiles{Count: 5, P50: 50, P99: 99, Max: 100}, LossEvents: 3, LossConflated: 7},
		Slow: &ReaderGroup{Conns: 5, Dropped: 5, DeliveriesPerS: 12.5, BytesPerS: 500, LatencyMS: Percentiles{Count: 4, P50: 900, P99: 2000, Max: 2100},
			AgeMS: Percentiles{Count: 2, P50: 5000, P99: 7000, Max: 7100}, LossEvents: 2, LossDropped: 1, LossConflated: 40, SlowPace: 93.2},
	}
	t.Run("readers", func(t *testing.T) { tableMatchesJSON(t, &withReaders) })
}

func tableMatchesJSON(t *testing.T, r *Result) {
	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, r.WriteJSON(path))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)

	var back Result
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, *r, back, "round trip")

	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	var b strings.Builder
	require.NoError(t, r.WriteTable(&b))
	table := ParseTable(b.String())
	rows := r.rows()
	require.Len(t, table, len(rows))
	for _, row := range rows {
		v := lookup(doc, row.key)
		require.NotNil(t, v, row.key)
		assert.Equal(t, formatValue(v), table[row.label], row.key)
	}
}

// lookup finds a dotted key in a decoded JSON document.
func lookup(doc map[string]any, key string) any {
	var v any = doc
	for _, k := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
