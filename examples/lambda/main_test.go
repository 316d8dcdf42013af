package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFunctionURLStreams runs the handler the way the Lambda runtime does,
// through lambdaurl.Wrap: its response writer cannot flush and sends the
// head with the first bytes, so the stream must reach the client as it is
// written, and end when the invocation's context does.
func TestFunctionURLStreams(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	ep, err := newEndpoint(20*time.Millisecond, stop)
	require.NoError(t, err)
	invoke := lambdaurl.Wrap(ep.HTTPHandler())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := &events.LambdaFunctionURLRequest{RawPath: "/", Headers: map[string]string{"accept": "text/event-stream"}}
	req.RequestContext.HTTP.Method = "GET"
	req.RequestContext.HTTP.SourceIP = "127.0.0.1"
	resp, err := invoke(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Headers["Content-Type"])
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var got []string
	deadline := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case l := <-lines:
			if strings.HasPrefix(l, "event: ") {
				got = append(got, l)
			}
		case <-deadline:
			t.Fatalf("events so far: %q", got)
		}
	}
	require.Equal(t, []string{"event: hello", "event: tick"}, got)
	cancel() // the invocation ends: the stream must end with it
	for range lines {
	}
	require.Eventually(t, func() bool { return ep.Stats().Open == 0 }, 10*time.Second, 10*time.Millisecond)
}

// TestLocalServes: -local serves the same endpoint from net/http on
// loopback (what bench/coldstart measures as the serverless case), and
// drains and returns when its context ends.
func TestLocalServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ep, err := newEndpoint(20*time.Millisecond, ctx.Done())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- serveLocal(ctx, ln, ep) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 2 && sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "event: ") {
			got = append(got, l)
		}
	}
	require.Equal(t, []string{"event: hello", "event: tick"}, got)
	cancel()
	require.NoError(t, <-served)
	for sc.Scan() { // the drain ends the stream
	}
}
