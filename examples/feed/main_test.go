package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/sseclient"
	"github.com/lasse-go/lasse/internal/leaktest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

func TestAppendPayload(t *testing.T) {
	p := appendPayload(nil, 1234567890123456789, 64)
	assert.Len(t, p, 64)
	assert.True(t, strings.HasPrefix(string(p), "1234567890123456789 x"))
	short := appendPayload([]byte("keep"), 42, 1)
	assert.Equal(t, "keep42 ", string(short), "never shorter than the time and a space")
}

// The contract a load client relies on: consecutive ids, data starting with
// a send time that is not in the future, data of -size bytes. It is read
// with the project's client, fastsse/sseclient.
func TestFeedContract(t *testing.T) {
	a := startFeed(t, &fastsse.Options{Heartbeat: -1}, 200, 100)
	readFeed(t, a, nil, 20, 100)
}

// The feed's replay ring carries a client across the ends of its streams
// (here MaxLifetime, with a short retry): with sseclient it resumes each
// time with Last-Event-ID and sees every id once.
func TestFeedResumes(t *testing.T) {
	a := startFeed(t, &fastsse.Options{MaxLifetime: 200 * time.Millisecond, Retry: 10 * time.Millisecond}, 200, 64)
	var opened atomic.Int64
	readFeed(t, a, &sseclient.Options{OnConnect: func(*http.Response) { opened.Add(1) }}, 200, 64)
	assert.GreaterOrEqual(t, opened.Load(), int64(3), "streams over ~1 s of 200 ms lifetimes")
}

type feedServer struct {
	url string
	ctx context.Context
}

// startFeed serves the feed with opts on 127.0.0.1:0, publishing rate
// events per second of size bytes once the first subscriber is in (so that
// it sees the first id), until the test ends.
func startFeed(t *testing.T, opts *fastsse.Options, rate float64, size int) *feedServer {
	t.Helper()
	a, err := newApp(opts, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- serve.RunListener(ctx, ln, a.handler, serve.Options{Drain: []*fastsse.Endpoint{a.ep}})
	}()
	published := make(chan struct{})
	go func() {
		for a.feed.Len() == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		a.publish(ctx, rate, size)
		close(published)
	}()
	t.Cleanup(func() {
		cancel()
		<-published
		require.NoError(t, <-stopped)
	})
	return &feedServer{url: "http://" + ln.Addr().String() + "/feed", ctx: ctx}
}

// readFeed reads n events and checks the contract on each.
func readFeed(t *testing.T, f *feedServer, opts *sseclient.Options, n, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	var prev int64
	count := 0
	for ev, err := range sseclient.Connect(ctx, f.url, opts).Events() {
		require.NoError(t, err)
		// EPOCH-SEQ: one epoch for the run, consecutive positions.
		sid := string(ev.ID)
		id, err := strconv.ParseInt(sid[strings.LastIndexByte(sid, '-')+1:], 10, 64)
		require.NoError(t, err)
		if prev != 0 {
			require.Equal(t, prev+1, id, "ids are consecutive")
		}
		prev = id
		require.Len(t, ev.Data, size)
		ts, _, ok := strings.Cut(string(ev.Data), " ")
		require.True(t, ok)
		sent, err := strconv.ParseInt(ts, 10, 64)
		require.NoError(t, err)
		require.LessOrEqual(t, sent, time.Now().UnixNano())
		if count++; count == n {
			return
		}
	}
}
