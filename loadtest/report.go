package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// snapshot holds one process's counters, cumulative from its
// start. Workers send it to the parent once a second.
type snapshot struct {
	Tried        int64   `json:"tried"` // conns whose first connect has completed
	Open         int64   `json:"open"`
	Opened       int64   `json:"opened"`
	Failed       int64   `json:"failed"`
	Dropped      int64   `json:"dropped"`
	Reconnects   int64   `json:"reconnects"`
	Sessions     int64   `json:"sessions"`
	Events       int64   `json:"events"`
	Bytes        int64   `json:"bytes"`
	Gaps         int64   `json:"gaps"`
	Dups         int64   `json:"dups"`
	MaxLatencyUS int64   `json:"max_latency_us"` // since the previous snapshot
	CPU          float64 `json:"cpu_s"`
	RSS          int64   `json:"rss"`
	Procs        int     `json:"gomaxprocs"`
}

// add sums q into p (MaxLatencyUS: the larger).
func (p *snapshot) add(q snapshot) {
	p.Tried += q.Tried
	p.Open += q.Open
	p.Opened += q.Opened
	p.Failed += q.Failed
	p.Dropped += q.Dropped
	p.Reconnects += q.Reconnects
	p.Sessions += q.Sessions
	p.Events += q.Events
	p.Bytes += q.Bytes
	p.Gaps += q.Gaps
	p.Dups += q.Dups
	p.MaxLatencyUS = max(p.MaxLatencyUS, q.MaxLatencyUS)
	p.CPU += q.CPU
	p.RSS += q.RSS
	p.Procs += q.Procs
}

// partial is one process's result, sent by a worker to the parent.
type partial struct {
	snapshot
	Conns         int64            `json:"conns"`
	OpenAtEnd     int64            `json:"open_at_end"`
	FailedBy      map[string]int64 `json:"failed_by"`
	DroppedBy     map[string]int64 `json:"dropped_by"`
	NoEvent       int64            `json:"no_event"`
	WindowS       float64          `json:"window_s"` // this process's measuring window
	WindowEvents  int64            `json:"window_events"`
	WindowBytes   int64            `json:"window_bytes"`
	IDsSpanned    int64            `json:"ids_spanned"`
	ConnEventsMin int64            `json:"conn_events_min"`
	ConnEventsMax int64            `json:"conn_events_max"`
	RSSStart      int64            `json:"rss_start"`
	RSSOpen       int64            `json:"rss_open"`
	OpenAtRSS     int64            `json:"open_at_rss"` // streams open when RSSOpen was read
	Latency       []byte           `json:"latency"`     // HdrHistogram V2 compressed, µs
	Connect       []byte           `json:"connect"`
	Fast          *groupPartial    `json:"fast,omitempty"` // with Slow or Keyed
	Slow          *groupPartial    `json:"slow,omitempty"` // with Slow
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func percentiles(h *hdr.Histogram) Percentiles {
	ms := func(us int64) float64 { return round3(float64(us) / 1000) }
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.TotalCount(),
		Mean:  round3(h.Mean() / 1000),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// Result is the report of a run; its JSON form is the -json file. Field
// names and units are documented in loadtest/sse-bench/README.md.
type Result struct {
	Mode   string  `json:"mode"`
	URL    string  `json:"url"`
	Conns  int     `json:"conns"`
	Procs  int     `json:"procs"`
	IO     string  `json:"io"`
	ConnS  float64 `json:"connect_phase_s"`
	Window float64 `json:"window_s"`

	Opened     int64            `json:"opened"`
	Failed     int64            `json:"failed"`
	FailedBy   map[string]int64 `json:"failed_by"`
	Dropped    int64            `json:"dropped"`
	DroppedBy  map[string]int64 `json:"dropped_by"`
	Reconnects int64            `json:"reconnects"`
	OpenAtEnd  int64            `json:"open_at_end"`
	ConnectMS  Percentiles      `json:"connect_ms"`

	Sessions     int64   `json:"churn_sessions"`
	NoEvent      int64   `json:"churn_no_event"`
	ConnectsPerS float64 `json:"connects_per_s"`

	Events         int64       `json:"events"`
	WindowEvents   int64       `json:"window_events"`
	DeliveriesPerS float64     `json:"deliveries_per_s"`
	LatencyMS      Percentiles `json:"latency_ms"`
	Gaps           int64       `json:"gaps"`
	Duplicates     int64       `json:"duplicates"`
	IDsSpanned     int64       `json:"ids_spanned"`
	ConnEventsMin  int64       `json:"conn_events_min"`
	ConnEventsMax  int64       `json:"conn_events_max"`
	Bytes          int64       `json:"bytes"`
	BytesPerS      float64     `json:"bytes_per_s"`

	ClientCPUS       float64 `json:"client_cpu_s"`
	ClientCPUCores   float64 `json:"client_cpu_cores"`
	ClientCPUPerEvUS float64 `json:"client_cpu_us_per_event"`
	ClientSaturatedS int     `json:"client_cpu_saturated_s"`
	ClientRSS        int64   `json:"client_rss_bytes"`
	ClientRSSPerConn float64 `json:"client_rss_per_conn_bytes"`

	ServerPIDs       []int   `json:"server_pids"`
	ServerRSSBefore  int64   `json:"server_rss_before_bytes"`
	ServerRSSOpen    int64   `json:"server_rss_open_bytes"`
	ServerRSSEnd     int64   `json:"server_rss_end_bytes"`
	ServerRSSPerConn float64 `json:"server_rss_per_conn_bytes"`
	ServerCPUCores   float64 `json:"server_cpu_cores"`

	// Readers reports fast and slow readers apart (with -slow or -keyed).
	Readers *Readers `json:"readers,omitempty"`

	Warnings []string `json:"warnings"`
}

// Readers are the figures of the fast and the slow readers (Config.Slow).
type Readers struct {
	Fast *ReaderGroup `json:"fast"`
	Slow *ReaderGroup `json:"slow,omitempty"`
}

// merge sums the workers' partials into r.
func (r *Result) merge(ps []*partial) error {
	lat, con := newHist(), newHist()
	var openAtRSS int64
	r.FailedBy, r.DroppedBy = map[string]int64{}, map[string]int64{}
	r.ConnEventsMin = -1
	var fast, slow []*groupPartial
	for _, p := range ps {
		if p.Fast != nil {
			fast = append(fast, p.Fast)
		}
		if p.Slow != nil {
			slow = append(slow, p.Slow)
		}
		r.Opened += p.Opened
		r.Failed += p.Failed
		r.Dropped += p.Dropped
		r.Reconnects += p.Reconnects
		r.OpenAtEnd += p.OpenAtEnd
		r.Sessions += p.Sessions
		r.NoEvent += p.NoEvent
		r.Events += p.Events
		r.WindowEvents += p.WindowEvents
		r.Gaps += p.Gaps
		r.Duplicates += p.Dups
		r.IDsSpanned += p.IDsSpanned
		r.Bytes += p.Bytes
		if p.WindowS > 0 {
			r.DeliveriesPerS += float64(p.WindowEvents) / p.WindowS
			r.BytesPerS += float64(p.WindowBytes) / p.WindowS
		}
		r.ClientCPUS += p.CPU
		r.ClientRSS += p.RSS
		r.ClientRSSPerConn += float64(p.RSSOpen - p.RSSStart)
		openAtRSS += p.OpenAtRSS
		for k, v := range p.FailedBy {
			r.FailedBy[k] += v
		}
		for k, v := range p.DroppedBy {
			r.DroppedBy[k] += v
		}
		if r.ConnEventsMin < 0 || p.ConnEventsMin < r.ConnEventsMin {
			r.ConnEventsMin = p.ConnEventsMin
		}
		r.ConnEventsMax = max(r.ConnEventsMax, p.ConnEventsMax)
		for _, x := range []struct {
			enc []byte
			to  *hdr.Histogram
		}{{p.Latency, lat}, {p.Connect, con}} {
			h, err := hdr.Decode(x.enc)
			if err != nil {
				return fmt.Errorf("histogram from worker: %w", err)
			}
			x.to.Merge(h)
		}
	}
	if r.ConnEventsMin < 0 {
		r.ConnEventsMin = 0
	}
	r.LatencyMS, r.ConnectMS = percentiles(lat), percentiles(con)
	r.DeliveriesPerS, r.BytesPerS = round1(r.DeliveriesPerS), round1(r.BytesPerS)
	if r.Mode != ModeChurn && openAtRSS > 0 && r.ClientRSSPerConn > 0 {
		r.ClientRSSPerConn = round1(r.ClientRSSPerConn / float64(openAtRSS))
	} else {
		r.ClientRSSPerConn = 0
	}
	r.ClientCPUS = round3(r.ClientCPUS)
	if len(fast) > 0 {
		f, err := mergeGroups(fast)
		if err != nil {
			return fmt.Errorf("histogram from worker: %w", err)
		}
		s, err := mergeGroups(slow)
		if err != nil {
			return fmt.Errorf("histogram from worker: %w", err)
		}
		r.Readers = &Readers{Fast: f, Slow: s}
	}
	return nil
}

// row is one line of the final table: a label and its value, which is
// the JSON field key's value, formatted.
type row struct {
	label, key string
	value      any
}

func (r *Result) rows() []row {
	rows := []row{
		{"mode", "mode", r.Mode},
		{"url", "url", r.URL},
		{"connections", "conns", r.Conns},
		{"processes", "procs", r.Procs},
		{"io", "io", r.IO},
		{"connect phase (s)", "connect_phase_s", r.ConnS},
		{"window (s)", "window_s", r.Window},
		{"opened", "opened", r.Opened},
		{"failed", "failed", r.Failed},
	}
	for _, k := range slices.Sorted(maps.Keys(r.FailedBy)) {
		rows = append(rows, row{"  failed: " + k, "failed_by." + k, r.FailedBy[k]})
	}
	rows = append(rows, row{"dropped", "dropped", r.Dropped})
	for _, k := range slices.Sorted(maps.Keys(r.DroppedBy)) {
		rows = append(rows, row{"  dropped: " + k, "dropped_by." + k, r.DroppedBy[k]})
	}
	rows = append(rows,
		row{"reconnects", "reconnects", r.Reconnects},
		row{"open at end", "open_at_end", r.OpenAtEnd},
	)
	rows = appendPct(rows, "connect", "connect_ms", r.ConnectMS)
	if r.Mode == ModeChurn {
		rows = append(rows,
			row{"churn sessions", "churn_sessions", r.Sessions},
			row{"churn sessions without event", "churn_no_event", r.NoEvent},
			row{"connects/s", "connects_per_s", r.ConnectsPerS},
		)
	}
	rows = append(rows,
		row{"events", "events", r.Events},
		row{"events in window", "window_events", r.WindowEvents},
		row{"deliveries/s", "deliveries_per_s", r.DeliveriesPerS},
	)
	rows = appendPct(rows, "latency", "latency_ms", r.LatencyMS)
	rows = append(rows,
		row{"gaps", "gaps", r.Gaps},
		row{"duplicates", "duplicates", r.Duplicates},
		row{"ids spanned", "ids_spanned", r.IDsSpanned},
		row{"events per conn min", "conn_events_min", r.ConnEventsMin},
		row{"events per conn max", "conn_events_max", r.ConnEventsMax},
		row{"bytes", "bytes", r.Bytes},
		row{"bytes/s", "bytes_per_s", r.BytesPerS},
		row{"client cpu (s)", "client_cpu_s", r.ClientCPUS},
		row{"client cpu (cores)", "client_cpu_cores", r.ClientCPUCores},
		row{"client cpu per event (µs)", "client_cpu_us_per_event", r.ClientCPUPerEvUS},
		row{"client cpu saturated (s)", "client_cpu_saturated_s", r.ClientSaturatedS},
		row{"client rss (bytes)", "client_rss_bytes", r.ClientRSS},
		row{"client rss per conn (bytes)", "client_rss_per_conn_bytes", r.ClientRSSPerConn},
	)
	if len(r.ServerPIDs) > 0 {
		rows = append(rows,
			row{"server pids", "server_pids", r.ServerPIDs},
			row{"server rss before (bytes)", "server_rss_before_bytes", r.ServerRSSBefore},
			row{"server rss open (bytes)", "server_rss_open_bytes", r.ServerRSSOpen},
			row{"server rss end (bytes)", "server_rss_end_bytes", r.ServerRSSEnd},
			row{"server rss per conn (bytes)", "server_rss_per_conn_bytes", r.ServerRSSPerConn},
			row{"server cpu (cores)", "server_cpu_cores", r.ServerCPUCores},
		)
	}
	if r.Readers != nil {
		rows = groupRows(rows, "fast", r.Readers.Fast)
		rows = groupRows(rows, "slow", r.Readers.Slow)
	}
	return rows
}

func appendPct(rows []row, name, key string, p Percentiles) []row {
	return append(rows,
		row{name + " count", key + ".count", p.Count},
		row{name + " mean (ms)", key + ".mean", p.Mean},
		row{name + " p50 (ms)", key + ".p50", p.P50},
		row{name + " p90 (ms)", key + ".p90", p.P90},
		row{name + " p99 (ms)", key + ".p99", p.P99},
		row{name + " p99.9 (ms)", key + ".p99_9", p.P999},
		row{name + " max (ms)", key + ".max", p.Max},
	)
}

// formatValue formats a table value as JSON would write it.
func formatValue(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		return v
	case []int:
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, ",")
	case []any: // from decoded JSON
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = formatValue(n)
		}
		return strings.Join(s, ",")
	default:
		return fmt.Sprint(v)
	}
}

// WriteTable writes the final table: one "label  value" line per figure,
// the values exactly as in the JSON report, then the warnings.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	for _, x := range r.rows() {
		fmt.Fprintf(&b, "%-30s %s\n", x.label, formatValue(x.value))
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes r as indented JSON to path.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// progressLine formats one live progress line: the phase, the time since
// start, and per-second rates from the previous snapshot.
func progressLine(phase string, t float64, conns int, p, prev snapshot, dt float64) string {
	rate := func(a, b int64) float64 {
		if dt <= 0 {
			return 0
		}
		return float64(a-b) / dt
	}
	cpu := 0.0
	if dt > 0 {
		cpu = (p.CPU - prev.CPU) / dt
	}
	return fmt.Sprintf("%6.1fs %-8s open %d/%d  failed %d  dropped %d  reconnects %d | %.0f ev/s  max %.1f ms  gaps %d  dups %d | %.2f MB/s | cpu %.2f  rss %.0f MB",
		t, phase, p.Open, conns, p.Failed, p.Dropped, p.Reconnects,
		rate(p.Events, prev.Events), float64(p.MaxLatencyUS)/1000, p.Gaps, p.Dups,
		rate(p.Bytes, prev.Bytes)/1e6, cpu, float64(p.RSS)/1e6)
}

var tableLine = regexp.MustCompile(`^(\s*\S.*?)\s{2,}(\S+)$`)

// ParseTable reads a table written by WriteTable back into label → value
// (warnings and other lines are skipped).
func ParseTable(s string) map[string]string {
	out := map[string]string{}
	for _, ln := range strings.Split(s, "\n") {
		if m := tableLine.FindStringSubmatch(ln); m != nil && !strings.HasPrefix(ln, "warning: ") {
			out[m[1]] = m[2]
		}
	}
	return out
}
