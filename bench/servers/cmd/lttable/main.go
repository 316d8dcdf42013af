// Command lttable turns the sse-bench -json reports of bench/loadtest.sh
// into Markdown tables, and splices a Markdown section into a file between
// the loadtest markers.
//
//	lttable -dir DIR [-servers stream,dense,rawstream,gosse,r3labs] [-idle 10000,19000] [-fanout 1000,10000] [-rates 1,10,100]
//	lttable -splice bench/RESULTS.md < section.md
//
// DIR holds idle-CONNS-SERVER.json and fanout-CONNS-RATE-SERVER.json. A
// missing file shows as "no result". Each fan-out tier (-fanout: connection
// counts) gets its table and its target tables. Latency is compared only
// among runs that delivered at least 95% of the offered load (connections
// asked × rate; ltreport.KeepUp): the fan-out table marks the others, and
// the target tables leave their p99 out.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lasse-go/lasse/bench/servers/internal/ltreport"
)

// Markers delimit the section lttable -splice owns.
const (
	beginMarker = "<!-- loadtest:begin -->"
	endMarker   = "<!-- loadtest:end -->"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lttable:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fl := flag.NewFlagSet("lttable", flag.ContinueOnError)
	dir := fl.String("dir", "", "directory of sse-bench JSON reports")
	servers := fl.String("servers", "stream,dense,rawstream,gosse,r3labs", "servers, in table order")
	idle := fl.String("idle", "10000,19000", "idle connection counts")
	fanout := fl.String("fanout", "10000", "fan-out tiers: connection counts, in table order")
	rates := fl.String("rates", "1,10,100", "fan-out rates (events/s)")
	splice := fl.String("splice", "", "replace the loadtest section of this file with stdin")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *splice != "" {
		section, err := io.ReadAll(stdin)
		if err != nil {
			return err
		}
		return spliceFile(*splice, section)
	}
	if *dir == "" {
		return errors.New("-dir or -splice is required")
	}
	t := &tables{dir: *dir, servers: ltreport.Split(*servers), idle: ltreport.Split(*idle), tiers: ltreport.Split(*fanout), rates: ltreport.Split(*rates)}
	if err := t.load(); err != nil {
		return err
	}
	var b bytes.Buffer
	t.write(&b)
	_, err := stdout.Write(b.Bytes())
	return err
}

type tables struct {
	dir                         string
	servers, idle, tiers, rates []string
	res                         map[string]*ltreport.Result // by file stem
	loads                       map[string]string           // by file stem: 1-minute load average at the run's start → end
	warnings                    []string
	haveIdle, haveFanout        bool
}

func (t *tables) load() error {
	t.res, t.loads = map[string]*ltreport.Result{}, map[string]string{}
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if stem, ok := strings.CutSuffix(e.Name(), ".load"); ok {
			b, err := os.ReadFile(filepath.Join(t.dir, e.Name()))
			if err != nil {
				return err
			}
			t.loads[stem] = strings.Join(strings.Fields(string(b)), " → ")
			continue
		}
		stem, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(t.dir, e.Name()))
		if err != nil {
			return err
		}
		var r ltreport.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		t.res[stem] = &r
		for _, w := range r.Warnings {
			t.warnings = append(t.warnings, stem+": "+w)
		}
		t.haveIdle = t.haveIdle || strings.HasPrefix(stem, "idle-")
		t.haveFanout = t.haveFanout || strings.HasPrefix(stem, "fanout-")
	}
	if len(t.res) == 0 {
		return fmt.Errorf("%s: no reports", t.dir)
	}
	return nil
}

func causes(n int64, by map[string]int64) string {
	if n == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, by[k]))
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func (t *tables) write(w io.Writer) {
	if t.haveIdle {
		t.writeIdle(w)
	}
	if t.haveFanout {
		for _, n := range t.tiers {
			t.writeFanout(w, n)
			t.writeTargets(w, n)
		}
	}
	if len(t.warnings) > 0 {
		fmt.Fprintf(w, "sse-bench warnings:\n\n")
		for _, s := range t.warnings {
			fmt.Fprintf(w, "- %s\n", s)
		}
		fmt.Fprintln(w)
	}
}

// idleTarget is the design's bound on idle memory per connection at
// 19,000 connections, in KiB.
var idleTarget = map[string]float64{"stream": 22, "dense": 1.5}

func (t *tables) writeIdle(w io.Writer) {
	fmt.Fprintf(w, "#### Idle memory (server RSS per open connection; KB = 1024 bytes)\n\n")
	fmt.Fprintf(w, "KB/conn is (server RSS once connected and settled − RSS before) / connections open then. \"load avg\" is the machine's 1-minute load average at the run's start → end.\n\n")
	fmt.Fprintf(w, "| server | conns asked | open at end | failed | server RSS before → open (MiB) | KB/conn | target at 19k | load avg |\n")
	fmt.Fprintf(w, "|---|--:|--:|---|--:|--:|---|--:|\n")
	for _, n := range t.idle {
		for _, s := range t.servers {
			r := t.res[ltreport.IdleStem(n, s)]
			if r == nil {
				fmt.Fprintf(w, "| %s | %s | no result | | | | | %s |\n", ltreport.Label(s), n, t.loads[ltreport.IdleStem(n, s)])
				continue
			}
			kb := r.ServerRSSPerConn / 1024
			target := ""
			if lim, ok := idleTarget[s]; ok && n == "19000" {
				target = fmt.Sprintf("≤ %g: %s", lim, verdict(kb <= lim && r.OpenAtEnd > 0))
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s → %s | %.2f | %s | %s |\n", ltreport.Label(s), n, r.OpenAtEnd,
				causes(r.Failed, r.FailedBy), mib(r.ServerRSSBefore), mib(r.ServerRSSOpen), kb, target, t.loads[ltreport.IdleStem(n, s)])
		}
	}
	fmt.Fprintln(w)
}

// fmtConns writes a connection count with thousands separators.
func fmtConns(n string) string {
	v, err := strconv.Atoi(n)
	if err != nil || v < 1000 {
		return n
	}
	return fmtConns(strconv.Itoa(v/1000)) + "," + fmt.Sprintf("%03d", v%1000)
}

func (t *tables) writeFanout(w io.Writer, conns string) {
	fmt.Fprintf(w, "#### Fan-out to %s connections\n\n", fmtConns(conns))
	fmt.Fprintf(w, "Latency is receive time minus the send time in the event. The publisher is a ticker that drops the ticks a slow publish misses (as examples/feed's does), so a server that cannot keep up shows fewer deliveries/s rather than gaps, and the events it does send may look fresh: read p99 together with deliveries/s against the offered load. \"load avg\" is the machine's 1-minute load average at the run's start → end.\n\n")
	fmt.Fprintf(w, "\"delivered\" is deliveries/s over the offered load, the connections asked for × the rate. † marks a run that delivered less than %.0f%% of it: its p99 is compared with no other in the target tables below, since a server that falls behind sends fewer, fresher events.\n\n", 100*ltreport.KeepUp)
	fmt.Fprintf(w, "| server | rate (ev/s) | open at end | offered (asked × rate) | deliveries/s | delivered | p50 (ms) | p99 (ms) | max (ms) | gaps | dups | dropped | server CPU (cores) | client CPU (cores) | client saturated (s) | load avg |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|\n")
	for _, rate := range t.rates {
		rt, _ := strconv.ParseFloat(rate, 64)
		for _, s := range t.servers {
			stem := ltreport.FanoutStem(conns, rate, s)
			r := t.res[stem]
			if r == nil {
				fmt.Fprintf(w, "| %s | %s | no result | | | | | | | | | | | | | %s |\n", ltreport.Label(s), rate, t.loads[stem])
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f | %s | %.3f | %.3f | %.3f | %d | %d | %s | %.2f | %.2f | %d | %s |\n",
				ltreport.Label(s), rate, r.OpenAtEnd, r.Offered(rt), r.DeliveriesPerS, fmtDelivered(r, rt),
				r.LatencyMS.P50, r.LatencyMS.P99, r.LatencyMS.Max, r.Gaps, r.Duplicates,
				causes(r.Dropped, r.DroppedBy), r.ServerCPUCores, r.ClientCPUCores, r.ClientSaturatedS, t.loads[stem])
		}
	}
	fmt.Fprintln(w)
}

// fmtDelivered is r's share of the offered load, marked † below KeepUp.
func fmtDelivered(r *ltreport.Result, rate float64) string {
	s := fmt.Sprintf("%.1f%%", 100*r.Delivered(rate))
	if !r.KeptUp(rate) {
		s += " †"
	}
	return s
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func (t *tables) writeTargets(w io.Writer, conns string) {
	get := func(rate, s string) *ltreport.Result {
		r := t.res[ltreport.FanoutStem(conns, rate, s)]
		if r == nil || r.DeliveriesPerS == 0 {
			return nil
		}
		return r
	}
	keptUp := func(r *ltreport.Result, rate string) bool {
		rt, _ := strconv.ParseFloat(rate, 64)
		return r.KeptUp(rt)
	}
	has := func(s string) bool { return slices.Contains(t.servers, s) }
	lib := []string{}
	for _, s := range []string{"stream", "dense"} {
		if has(s) {
			lib = append(lib, s)
		}
	}
	keep := fmt.Sprintf("%.0f%%", 100*ltreport.KeepUp)
	tier := fmtConns(conns)
	if has("rawstream") && len(lib) > 0 {
		fmt.Fprintf(w, "#### Target at %s connections: library overhead over the raw loop ≤ 10%% (deliveries/s ratio ≥ 0.90, p99 ratio ≤ 1.10)\n\n", tier)
		fmt.Fprintf(w, "The raw floor is a stream-transport loop: for `fastsse stream` this is the target's same-transport comparison; for `fastsse dense` it is for information. The p99 ratio is given only where both runs delivered at least %s of the offered load; elsewhere the verdict is on deliveries/s alone.\n\n", keep)
		fmt.Fprintf(w, "| rate (ev/s) | server | deliveries/s ÷ raw | p99 ÷ raw | verdict |\n|--:|---|--:|--:|---|\n")
		for _, rate := range t.rates {
			raw := get(rate, "rawstream")
			for _, s := range lib {
				r := get(rate, s)
				if r == nil || raw == nil {
					fmt.Fprintf(w, "| %s | %s | n/a | n/a | n/a |\n", rate, ltreport.Label(s))
					continue
				}
				d := r.DeliveriesPerS / raw.DeliveriesPerS
				if !keptUp(r, rate) || !keptUp(raw, rate) {
					fmt.Fprintf(w, "| %s | %s | %.3f | not compared (%s) | %s on deliveries/s |\n", rate, ltreport.Label(s), d, behind(keep, map[string]bool{ltreport.Label(s): keptUp(r, rate), "raw": keptUp(raw, rate)}), verdict(d >= 0.9))
					continue
				}
				p := ratio(r.LatencyMS.P99, raw.LatencyMS.P99)
				fmt.Fprintf(w, "| %s | %s | %.3f | %s | %s |\n", rate, ltreport.Label(s), d, fmtRatio(p), verdict(d >= 0.9 && p <= 1.1))
			}
		}
		fmt.Fprintln(w)
	}
	peers := []string{}
	for _, s := range []string{"gosse", "r3labs"} {
		if has(s) {
			peers = append(peers, s)
		}
	}
	if len(peers) > 0 && len(lib) > 0 {
		fmt.Fprintf(w, "#### Target at %s connections: vs the best of go-sse / r3labs: ≥ 2× deliveries/s and ≤ ½ p99\n\n", tier)
		fmt.Fprintf(w, "Below the rate where a peer falls behind, every server delivers the offered load, so the deliveries/s ratio is about 1 by construction there.\n\n")
		fmt.Fprintf(w, "The deliveries/s ratio is over the best peer's deliveries/s, whatever the connections each held (see \"open at end\" in the fan-out table). p99 is compared at equal load only: the best peer p99 is the lowest among the peers that delivered at least %s of the offered load, and a fastsse run below %s gets no p99 ratio. Where no p99 can be compared, the verdict is on deliveries/s alone.\n\n", keep, keep)
		fmt.Fprintf(w, "| rate (ev/s) | server | best peer deliveries/s | ratio | best peer p99 at ≥ %s (ms) | ratio | verdict |\n|--:|---|--:|--:|--:|--:|---|\n", keep)
		for _, rate := range t.rates {
			var bestD, bestP *ltreport.Result
			var bestDN, bestPN string
			for _, s := range peers {
				r := get(rate, s)
				if r == nil {
					continue
				}
				if bestD == nil || r.DeliveriesPerS > bestD.DeliveriesPerS {
					bestD, bestDN = r, s
				}
				if keptUp(r, rate) && (bestP == nil || r.LatencyMS.P99 < bestP.LatencyMS.P99) {
					bestP, bestPN = r, s
				}
			}
			for _, s := range lib {
				r := get(rate, s)
				if r == nil || bestD == nil {
					fmt.Fprintf(w, "| %s | %s | n/a | n/a | n/a | n/a | n/a |\n", rate, ltreport.Label(s))
					continue
				}
				d := r.DeliveriesPerS / bestD.DeliveriesPerS
				peerD := fmt.Sprintf("%.0f (%s%s)", bestD.DeliveriesPerS, bestDN, short(bestD))
				switch {
				case bestP == nil:
					fmt.Fprintf(w, "| %s | %s | %s | %.2f× | none (no peer at ≥ %s) | not compared | %s on deliveries/s |\n", rate, ltreport.Label(s), peerD, d, keep, verdict(d >= 2))
				case !keptUp(r, rate):
					fmt.Fprintf(w, "| %s | %s | %s | %.2f× | %.3f (%s%s) | not compared (%s below %s) | %s on deliveries/s |\n", rate, ltreport.Label(s), peerD, d, bestP.LatencyMS.P99, bestPN, short(bestP), ltreport.Label(s), keep, verdict(d >= 2))
				default:
					p := ratio(r.LatencyMS.P99, bestP.LatencyMS.P99)
					fmt.Fprintf(w, "| %s | %s | %s | %.2f× | %.3f (%s%s) | %s | %s |\n", rate, ltreport.Label(s), peerD, d, bestP.LatencyMS.P99, bestPN, short(bestP), fmtRatio(p), verdict(d >= 2 && p <= 0.5))
				}
			}
		}
		fmt.Fprintln(w)
	}
}

// behind names the runs of ok (label → kept up) that fell below keep.
func behind(keep string, ok map[string]bool) string {
	var names []string
	for _, k := range slices.Sorted(maps.Keys(ok)) {
		if !ok[k] {
			names = append(names, k)
		}
	}
	return strings.Join(names, " and ") + " below " + keep
}

// short notes a run that held fewer than 95% of the connections it asked for.
func short(r *ltreport.Result) string {
	if r.Conns > 0 && float64(r.OpenAtEnd) < 0.95*float64(r.Conns) {
		return fmt.Sprintf(", only %d of %d open", r.OpenAtEnd, r.Conns)
	}
	return ""
}

func ratio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return -1
	}
	return a / b
}

func fmtRatio(r float64) string {
	if r < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", r)
}

// spliceFile replaces what lies between the markers in path with section
// (the markers kept), appending the markers at the end when absent; the
// rest of the file is left as it is. It writes a temporary file and renames
// it over path.
func spliceFile(path string, section []byte) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	body := append([]byte(beginMarker+"\n"), bytes.TrimRight(section, "\n")...)
	body = append(body, "\n"+endMarker...)
	var out []byte
	b := bytes.Index(old, []byte(beginMarker))
	e := bytes.Index(old, []byte(endMarker))
	switch {
	case b >= 0 && e > b:
		out = append(out, old[:b]...)
		out = append(out, body...)
		out = append(out, old[e+len(endMarker):]...)
	case b >= 0 || e >= 0:
		return fmt.Errorf("%s: only one of the loadtest markers is present", path)
	default:
		out = append(out, old...)
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		if len(out) > 0 {
			out = append(out, '\n')
		}
		out = append(out, body...)
		out = append(out, '\n')
	}
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".results-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
