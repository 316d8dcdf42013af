package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lasse-go/lasse/loadtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// With -procs, sse-bench re-executes itself as a worker: here that is
	// this test binary.
	if len(os.Args) > 2 && os.Args[1] == "-"+loadtest.WorkerFlag {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if feedDir != "" {
		os.RemoveAll(feedDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

var (
	feedOnce sync.Once
	feedDir  string
	feedBin  string
	feedErr  error
)

// buildFeed builds examples/feed once per test run.
func buildFeed(t *testing.T) string {
	t.Helper()
	feedOnce.Do(func() {
		if feedDir, feedErr = os.MkdirTemp("", "sse-bench-test"); feedErr != nil {
			return
		}
		feedBin = filepath.Join(feedDir, "feed")
		// examples/feed is a module of its own (it serves Prometheus metrics).
		out, err := exec.Command("go", "build", "-C", "../../examples/feed", "-o", feedBin, ".").CombinedOutput()
		if err != nil {
			feedErr = err
			feedBin = string(out)
		}
	})
	require.NoError(t, feedErr, feedBin)
	return feedBin
}

// startFeed starts the feed on a free loopback port; it returns the stream's
// URL and the process, and stops it at cleanup (SIGTERM, exit 0).
func startFeed(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(buildFeed(t), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			assert.NoError(t, err, "feed exits 0 on SIGTERM")
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("feed did not stop within 15 s of SIGTERM")
			<-exited
		}
	})
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ln := <-lines:
			if i := strings.Index(ln, "listening on http://"); i >= 0 {
				addr := strings.Fields(ln[i+len("listening on "):])[0]
				return strings.TrimSuffix(addr, "/") + "/feed", cmd
			}
		case <-timeout:
			t.Fatal("feed did not start")
		}
	}
}

// bench runs sse-bench with args plus -json; it returns the table, the
// JSON report, and the JSON as a document.
func bench(t *testing.T, args ...string) (map[string]string, loadtest.Result, map[string]any) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := run(append(args, "-json", path), &stdout, &stderr)
	t.Logf("progress:\n%s", stderr.String())
	require.Equal(t, 0, code, "stdout:\n%s", stdout.String())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var res loadtest.Result
	require.NoError(t, json.Unmarshal(raw, &res))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	return loadtest.ParseTable(stdout.String()), res, doc
}

// The acceptance test: 200 connections for 2 s against feed at 20 events/s.
func TestFeed200Connections(t *testing.T) {
	url, feed := startFeed(t, "-rate", "20", "-heartbeat=-1s")
	table, res, doc := bench(t, "-url", url, "-c", "200", "-d", "2s", "-settle", "200ms",
		"-server-pid", strconv.Itoa(feed.Process.Pid))

	assert.Equal(t, int64(200), res.Opened)
	assert.Equal(t, int64(200), res.OpenAtEnd)
	assert.Zero(t, res.Failed)
	assert.Zero(t, res.Dropped)
	assert.Zero(t, res.Reconnects)
	// Every event from each connection's first id to its last arrived, once.
	assert.Zero(t, res.Gaps)
	assert.Zero(t, res.Duplicates)
	assert.Equal(t, res.IDsSpanned, res.Events)
	assert.GreaterOrEqual(t, res.WindowEvents, int64(200*20*2*8/10))
	assert.Equal(t, res.WindowEvents, res.LatencyMS.Count)
	assert.InDelta(t, 200*20, res.DeliveriesPerS, 200*20*0.2)
	assert.GreaterOrEqual(t, res.ConnEventsMin, int64(2*20*8/10))
	assert.Positive(t, res.ServerRSSOpen)
	assert.Positive(t, res.ClientRSS)
	assert.InDelta(t, 2.0, res.Window, 0.2)

	// The table shows the JSON's figures.
	for label, key := range map[string]string{
		"connections":                 "conns",
		"opened":                      "opened",
		"failed":                      "failed",
		"dropped":                     "dropped",
		"open at end":                 "open_at_end",
		"events":                      "events",
		"events in window":            "window_events",
		"deliveries/s":                "deliveries_per_s",
		"gaps":                        "gaps",
		"duplicates":                  "duplicates",
		"ids spanned":                 "ids_spanned",
		"latency p50 (ms)":            "latency_ms.p50",
		"latency p90 (ms)":            "latency_ms.p90",
		"latency p99 (ms)":            "latency_ms.p99",
		"latency p99.9 (ms)":          "latency_ms.p99_9",
		"latency max (ms)":            "latency_ms.max",
		"connect p99 (ms)":            "connect_ms.p99",
		"bytes/s":                     "bytes_per_s",
		"client cpu (s)":              "client_cpu_s",
		"client rss (bytes)":          "client_rss_bytes",
		"server rss open (bytes)":     "server_rss_open_bytes",
		"server rss per conn (bytes)": "server_rss_per_conn_bytes",
	} {
		v := doc
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			v = v[p].(map[string]any)
		}
		want, ok := v[parts[len(parts)-1]].(float64)
		require.True(t, ok, key)
		got, err := strconv.ParseFloat(table[label], 64)
		require.NoError(t, err, "table row %q: %q", label, table[label])
		assert.Equal(t, want, got, "%s vs %s", label, key)
	}
}

// -procs 2: two worker processes (this test binary), merged.
func TestFeedTwoProcesses(t *testing.T) {
	url, _ := startFeed(t, "-rate", "20", "-heartbeat=-1s")
	_, res, _ := bench(t, "-url", url, "-c", "40", "-d", "1s", "-settle", "100ms", "-procs", "2")
	assert.Equal(t, 2, res.Procs)
	assert.Equal(t, int64(40), res.Opened)
	assert.Equal(t, int64(40), res.OpenAtEnd)
	assert.Zero(t, res.Gaps)
	assert.Zero(t, res.Duplicates)
	assert.Equal(t, res.IDsSpanned, res.Events)
	assert.GreaterOrEqual(t, res.WindowEvents, int64(40*20*8/10))
	assert.Equal(t, res.WindowEvents, res.LatencyMS.Count)
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run(nil, &stdout, &stderr), "no -url")
	assert.Contains(t, stderr.String(), "-url is required")

	stderr.Reset()
	assert.Equal(t, 0, run([]string{"-h"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-churn-rate")
	assert.NotContains(t, stderr.String(), "-worker", "the worker flag is hidden")

	stderr.Reset()
	assert.Equal(t, 2, run([]string{"-url", "http://192.0.2.1/feed"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-allow-remote")

	stderr.Reset()
	assert.Equal(t, 2, run([]string{"-url", "http://127.0.0.1/", "-d", "11m"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-d must be")
}
