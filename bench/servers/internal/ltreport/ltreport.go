// Package ltreport reads sse-bench's JSON reports of a bench/loadtest.sh
// run (DIR/idle-CONNS-SERVER.json, DIR/fanout-CONNS-RATE-SERVER.json), for
// lttable (tables) and ltplot (charts).
package ltreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Names are the servers' labels, by the name loadtest.sh gives them.
var Names = map[string]string{
	"stream":    "fastsse stream",
	"dense":     "fastsse dense",
	"rawstream": "raw fasthttp stream (floor)",
	"gosse":     "tmaxmax/go-sse (net/http)",
	"r3labs":    "r3labs/sse v2 (net/http)",
}

// Label returns server's label, or server itself when it has none.
func Label(server string) string {
	if n, ok := Names[server]; ok {
		return n
	}
	return server
}

// Percentiles are a report's latency figures, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Result is the part of sse-bench's report these tools use
// (loadtest/sse-bench/README.md documents the fields).
type Result struct {
	Conns            int              `json:"conns"`
	Opened           int64            `json:"opened"`
	Failed           int64            `json:"failed"`
	FailedBy         map[string]int64 `json:"failed_by"`
	Dropped          int64            `json:"dropped"`
	DroppedBy        map[string]int64 `json:"dropped_by"`
	OpenAtEnd        int64            `json:"open_at_end"`
	DeliveriesPerS   float64          `json:"deliveries_per_s"`
	LatencyMS        Percentiles      `json:"latency_ms"`
	Gaps             int64            `json:"gaps"`
	Duplicates       int64            `json:"duplicates"`
	ClientCPUCores   float64          `json:"client_cpu_cores"`
	ClientSaturatedS int              `json:"client_cpu_saturated_s"`
	ServerRSSBefore  int64            `json:"server_rss_before_bytes"`
	ServerRSSOpen    int64            `json:"server_rss_open_bytes"`
	ServerRSSPerConn float64          `json:"server_rss_per_conn_bytes"`
	ServerCPUCores   float64          `json:"server_cpu_cores"`
	Warnings         []string         `json:"warnings"`
}

// IdleStem and FanoutStem name a run's report (without ".json"): the idle
// run of server at conns connections, the fan-out run of server to conns
// connections at rate events/s.
func IdleStem(conns, server string) string { return "idle-" + conns + "-" + server }

// FanoutStem: see IdleStem.
func FanoutStem(conns, rate, server string) string {
	return "fanout-" + conns + "-" + rate + "-" + server
}

// KeepUp is the share of the offered load a fan-out run must deliver for
// its latency to be compared with another's: below it, a server that drops
// ticks or connections sends fewer, fresher events, and its p99 says
// little.
const KeepUp = 0.95

// Offered is the load a fan-out run at rate events/s offered: the
// connections asked for × rate, deliveries per second.
func (r *Result) Offered(rate float64) float64 { return float64(r.Conns) * rate }

// Delivered is the share of the offered load r delivered (0 when none was
// offered).
func (r *Result) Delivered(rate float64) float64 {
	if o := r.Offered(rate); o > 0 {
		return r.DeliveriesPerS / o
	}
	return 0
}

// KeptUp reports whether r delivered at least KeepUp of the offered load.
// (A hair of tolerance: 19 events of 20 is 0.95 after rounding.)
func (r *Result) KeptUp(rate float64) bool { return r.Delivered(rate) >= KeepUp-1e-9 }

// Read reads DIR/STEM.json; a missing file is (nil, nil).
func Read(dir, stem string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, stem+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s.json: %w", stem, err)
	}
	return &r, nil
}

// Split splits a comma-separated flag value, dropping empty fields.
func Split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
