package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// resumingFeed is a test server: each stream sends a retry hint, then
// perStream events with consecutive ids from Last-Event-ID + 1 (the data
// starting with the send time, like examples/feed), one every gap, and then
// ends, so that a client reconnects and resumes.
type resumingFeed struct {
	perStream int
	gap       time.Duration
	streams   atomic.Int64
	withLast  atomic.Int64 // requests that carried Last-Event-ID
	// epoch, when set, gives ids as fastsse groups do, EPOCH-SEQ; with
	// newEpoch every stream is a new epoch starting at 1 (a server that
	// restarted, or another process without a shared bus).
	epoch    string
	newEpoch bool
}

func (f *resumingFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.streams.Add(1)
	var next int64 = 1
	epoch := f.epoch
	if f.newEpoch {
		epoch += strconv.FormatInt(f.streams.Load(), 10)
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		f.withLast.Add(1)
		if f.epoch != "" {
			v = v[strings.LastIndexByte(v, '-')+1:]
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		next = n + 1
		if f.newEpoch {
			next = 1
		}
	}
	if r.Header.Get("Accept") != "text/event-stream" {
		http.Error(w, "want event-stream", http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	fmt.Fprint(w, "retry: 10\r\n: hello\r\n\r\n")
	fl.Flush()
	for i := 0; i < f.perStream; i++ {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(f.gap):
		}
		id := strconv.FormatInt(next, 10)
		if epoch != "" {
			id = epoch + "-" + id
		}
		fmt.Fprintf(w, "id: %s\r\ndata: %d x\r\ndata: second line\r\n\r\n", id, time.Now().UnixNano())
		next++
		fl.Flush()
	}
}

func testConfig(url string) Config {
	return Config{URL: url, Conns: 20, Duration: 600 * time.Millisecond, Settle: 50 * time.Millisecond}
}

func TestRunReconnectsAndResumes(t *testing.T) {
	for _, io := range []string{IOEpoll, IOGoroutine} {
		if io == IOEpoll && !haveEpoll {
			continue
		}
		t.Run(io, func(t *testing.T) {
			f := &resumingFeed{perStream: 5, gap: 10 * time.Millisecond}
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := testConfig(srv.URL + "/feed?x=1")
			cfg.IO = io
			var progress strings.Builder
			res, err := Run(context.Background(), cfg, &Options{Progress: &progress})
			require.NoError(t, err)

			assert.Positive(t, res.OpenAtEnd)
			assert.Positive(t, res.ConnEventsMin, "every conn received")
			assert.Positive(t, res.Reconnects)
			assert.Positive(t, res.DroppedBy[causeEnded], "streams end with the last chunk")
			assert.Equal(t, res.Dropped, res.DroppedBy[causeEnded])
			assert.Positive(t, f.withLast.Load(), "reconnects send Last-Event-ID")
			assert.Zero(t, res.Gaps)
			assert.Zero(t, res.Duplicates)
			assert.Equal(t, res.IDsSpanned, res.Events, "every id from each conn's first to its last arrived")
			assert.Positive(t, res.WindowEvents)
			assert.Equal(t, res.WindowEvents, res.LatencyMS.Count)
			assert.Greater(t, res.LatencyMS.Max, 0.0)
			assert.LessOrEqual(t, res.LatencyMS.P50, res.LatencyMS.P99)
			assert.Equal(t, res.Opened, res.ConnectMS.Count)
			assert.Positive(t, res.Bytes)
			assert.Contains(t, progress.String(), "measure")
		})
	}
}

func TestRunChurn(t *testing.T) {
	f := &resumingFeed{perStream: 5000, gap: time.Millisecond}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Mode, cfg.ChurnRate, cfg.Conns, cfg.Duration = ModeChurn, 200, 10, time.Second
	res, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	t.Logf("sessions %d, connects/s %.1f", res.Sessions, res.ConnectsPerS)
	// About 200 in 1 s; far fewer on a machine busy with other tests.
	assert.Greater(t, res.Sessions, int64(2*cfg.Conns), "conns connect again and again")
	assert.LessOrEqual(t, res.Opened, int64(210), "the rate holds")
	assert.Zero(t, res.Failed+res.Dropped)
	assert.Zero(t, f.withLast.Load(), "a churn client is new each time")
	assert.Zero(t, res.Gaps)
	assert.Zero(t, res.Duplicates)
	assert.Equal(t, res.IDsSpanned, res.Events)
	assert.Greater(t, res.ConnectsPerS, 20.0)
}

func TestRunFailures(t *testing.T) {
	t.Run("status", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		cfg := testConfig(srv.URL)
		cfg.Duration = 100 * time.Millisecond
		res, err := Run(context.Background(), cfg, nil)
		require.NoError(t, err)
		assert.Equal(t, map[string]int64{"http_503": 20}, res.FailedBy)
		assert.Zero(t, res.Opened)
	})
	t.Run("not an event stream", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello")
		}))
		defer srv.Close()
		cfg := testConfig(srv.URL)
		cfg.Duration = 100 * time.Millisecond
		res, err := Run(context.Background(), cfg, nil)
		require.NoError(t, err)
		assert.Equal(t, map[string]int64{causeNotStream: 20}, res.FailedBy)
	})
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		cfg := testConfig("http://" + addr + "/")
		cfg.Duration = 100 * time.Millisecond
		res, err := Run(context.Background(), cfg, nil)
		require.NoError(t, err)
		assert.Equal(t, map[string]int64{causeRefused: 20}, res.FailedBy)
	})
}

func TestRunRefusesRemote(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "http://192.0.2.1:8080/feed"}, nil)
	require.ErrorContains(t, err, "not loopback")
	require.ErrorContains(t, err, "-allow-remote")
}

func TestRunInterrupted(t *testing.T) {
	f := &resumingFeed{perStream: 1000, gap: 5 * time.Millisecond}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, cfg, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, res, "an interrupted run still reports")
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Less(t, res.Window, 1.0)
	assert.NotEmpty(t, res.Warnings)
}

// The worker protocol, in process: measure, progress lines, stop, result.
func TestRunWorkerProtocol(t *testing.T) {
	f := &resumingFeed{perStream: 1000, gap: 5 * time.Millisecond}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Procs = 2
	cfg.Defaults()
	require.NoError(t, cfg.Validate())
	sp := specs(cfg)
	require.Len(t, sp, 2)
	assert.Equal(t, 10, sp[1].Config.Conns)
	assert.Equal(t, 3, sp[1].SourceFirst)
	spec, err := marshalSpec(sp[1])
	require.NoError(t, err)

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- RunWorker(spec, inR, outW); outW.Close() }()
	sc := bufio.NewScanner(outR)
	sc.Buffer(nil, 1<<20)
	var p snapshot
	for p.Open < 10 {
		require.True(t, sc.Scan())
		line := sc.Text()
		require.True(t, strings.HasPrefix(line, prefixProgress), line)
		require.NoError(t, json.Unmarshal([]byte(line[len(prefixProgress):]), &p))
	}
	_, err = io.WriteString(inW, "measure\n")
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	_, err = io.WriteString(inW, "stop\n")
	require.NoError(t, err)
	var part partial
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, prefixResult) {
			require.NoError(t, json.Unmarshal([]byte(line[len(prefixResult):]), &part))
		}
	}
	require.NoError(t, <-done)
	inW.Close()
	assert.Equal(t, int64(10), part.Conns)
	assert.Equal(t, int64(10), part.OpenAtEnd)
	assert.Positive(t, part.WindowEvents)
	assert.InDelta(t, 0.3, part.WindowS, 0.2)

	var res Result
	require.NoError(t, res.merge([]*partial{&part}))
	assert.Equal(t, part.WindowEvents, res.LatencyMS.Count)
}

// A worker whose parent is gone (stdin at EOF) stops.
func TestRunWorkerParentGone(t *testing.T) {
	f := &resumingFeed{perStream: 1000, gap: 5 * time.Millisecond}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Defaults()
	spec, err := marshalSpec(specs(cfg)[0])
	require.NoError(t, err)
	err = RunWorker(spec, strings.NewReader(""), io.Discard)
	require.ErrorContains(t, err, "parent gone")
}

// A worker process that dies ends the run at once, with an error.
func TestRunWorkerDies(t *testing.T) {
	f := &resumingFeed{perStream: 1000, gap: 5 * time.Millisecond}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Procs = 2
	cfg.Duration = time.Minute
	start := time.Now()
	res, err := Run(context.Background(), cfg, &Options{WorkerCommand: func(string) *exec.Cmd {
		return exec.Command("sh", "-c", "echo 'dying' >&2; exit 3")
	}})
	require.ErrorContains(t, err, "worker")
	t.Log(err)
	assert.Less(t, time.Since(start), 10*time.Second)
	if res != nil {
		assert.NotEmpty(t, res.Warnings)
	}
}

// TestRunSeveralURLs: -url with two URLs spreads the connections over
// both, and a stream that drops goes on at the next URL with its
// Last-Event-ID, with no gap and no duplicate (the two feeds resume from
// any id, as instances on one bus do); a server that dies mid-run sends
// its clients to the other.
func TestRunSeveralURLs(t *testing.T) {
	fa := &resumingFeed{perStream: 5, gap: 10 * time.Millisecond}
	fb := &resumingFeed{perStream: 5, gap: 10 * time.Millisecond}
	a, b := httptest.NewServer(fa), httptest.NewServer(fb)
	defer b.Close()
	cfg := testConfig(a.URL + "/feed," + b.URL + "/feed")
	cfg.Duration = 1500 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(700 * time.Millisecond)
		a.CloseClientConnections()
		a.Close()
	}()
	res, err := Run(context.Background(), cfg, nil)
	<-done
	require.NoError(t, err)
	t.Logf("streams a %d b %d, reconnects %d, failed %d", fa.streams.Load(), fb.streams.Load(), res.Reconnects, res.Failed)
	assert.GreaterOrEqual(t, fa.streams.Load(), int64(cfg.Conns/2), "spread over both")
	assert.GreaterOrEqual(t, fb.streams.Load(), int64(cfg.Conns/2))
	assert.Positive(t, fa.withLast.Load(), "a resumes what b sent")
	assert.Positive(t, fb.withLast.Load(), "b resumes what a sent")
	assert.Greater(t, fb.streams.Load(), fa.streams.Load(), "after a died, its clients went on at b")
	assert.Positive(t, res.OpenAtEnd)
	assert.Zero(t, res.Gaps)
	assert.Zero(t, res.Duplicates)
}

// TestRunEpochIDs: ids EPOCH-SEQ are counted by SEQ within an epoch; a
// new epoch on reconnect (a restarted server) counts as one gap each
// time, not as duplicates of the old sequence.
func TestRunEpochIDs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newEpoch bool
	}{{"one epoch", false}, {"new epoch per stream", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := &resumingFeed{perStream: 5, gap: 10 * time.Millisecond, epoch: "k3x9q2mz", newEpoch: tc.newEpoch}
			srv := httptest.NewServer(f)
			defer srv.Close()
			res, err := Run(context.Background(), testConfig(srv.URL), nil)
			require.NoError(t, err)
			require.Positive(t, res.Reconnects)
			assert.Zero(t, res.Duplicates)
			if !tc.newEpoch {
				assert.Zero(t, res.Gaps)
				assert.Equal(t, res.IDsSpanned, res.Events)
				return
			}
			assert.Positive(t, res.Gaps, "a new epoch is a gap")
			assert.LessOrEqual(t, res.Gaps, res.Reconnects, "one per new epoch at most")
		})
	}
}
