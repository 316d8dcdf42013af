package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/scrape"
	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startObserved serves the feed's app (with pprof) on loopback, publishing
// stats every 50 ms; it returns the base URL and a client.
func startObserved(t *testing.T) (string, *http.Client) {
	t.Helper()
	a, err := newApp(&fastsse.Options{Heartbeat: -1}, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- serve.RunListener(ctx, ln, withPprof(a.handler), serve.Options{Drain: []*fastsse.Endpoint{a.ep, a.obs.statsEP}})
	}()
	statsDone := make(chan struct{})
	go func() { a.obs.publishStats(ctx, a.ep, 50*time.Millisecond); close(statsDone) }()
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(func() {
		cancel()
		<-statsDone
		require.NoError(t, <-stopped)
		client.CloseIdleConnections()
	})
	return "http://" + ln.Addr().String(), client
}

// sseEvent reads one event: its type and data.
func sseEvent(t *testing.T, r *bufio.Reader) (typ, data string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && data != "":
			return typ, data
		}
	}
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	return resp
}

// TestDashboardStats: /dashboard/stats gives the history, then a sample
// every interval; the samples follow the feed's open streams and events.
func TestDashboardStats(t *testing.T) {
	base, client := startObserved(t)
	r := bufio.NewReader(get(t, client, base+"/dashboard/stats").Body)
	typ, data := sseEvent(t, r)
	require.Equal(t, "history", typ)
	var history []sample
	require.NoError(t, json.Unmarshal([]byte(data), &history))

	get(t, client, base+"/feed")
	deadline := time.Now().Add(10 * time.Second)
	var s sample
	for s.Open != 1 {
		require.True(t, time.Now().Before(deadline), "no sample with the feed's one stream open; last %+v", s)
		typ, data = sseEvent(t, r)
		require.Equal(t, "stats", typ)
		require.NoError(t, json.Unmarshal([]byte(data), &s))
	}
	assert.Positive(t, s.Time)
	assert.GreaterOrEqual(t, s.Events, 0.0)

	// A client that reconnects gets the samples so far first.
	r2 := bufio.NewReader(get(t, client, base+"/dashboard/stats").Body)
	typ, data = sseEvent(t, r2)
	require.Equal(t, "history", typ)
	require.NoError(t, json.Unmarshal([]byte(data), &history))
	require.NotEmpty(t, history)
	assert.LessOrEqual(t, len(history), historyLen)
	assert.Equal(t, int64(1), history[len(history)-1].Open)
}

// TestMetricsAndPprof: /metrics is Prometheus' text format, parsed by its
// own decoder, with the feed's stream counted; -pprof's pages answer.
func TestMetricsAndPprof(t *testing.T) {
	base, client := startObserved(t)
	get(t, client, base+"/feed")
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := scrape.Metrics(t, client, base+"/metrics")
		require.Contains(t, fams, "go_goroutines")
		open := fams["lasse_streams_open"].GetMetric()
		require.Len(t, open, 1)
		if open[0].GetGauge().GetValue() == 1 {
			assert.Equal(t, 1.0, fams["lasse_streams_opened_total"].GetMetric()[0].GetCounter().GetValue())
			break
		}
		require.True(t, time.Now().Before(deadline), "lasse_streams_open never 1")
		time.Sleep(20 * time.Millisecond)
	}
	body, err := io.ReadAll(get(t, client, base+"/debug/pprof/cmdline").Body)
	require.NoError(t, err)
	assert.NotEmpty(t, body)
}
