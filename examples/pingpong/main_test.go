package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

func TestPingPong(t *testing.T) {
	h, ep, err := newApp()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- serve.RunListener(ctx, ln, h, serve.Options{Drain: []*fastsse.Endpoint{ep}}) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}

	page, err := client.Get(base + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	require.Contains(t, string(body), "new EventSource('/pong')")

	const streams = 3
	readers := make([]*bufio.Reader, streams)
	for i := range readers {
		resp, err := client.Get(base + "/pong")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		readers[i] = bufio.NewReader(resp.Body)
	}
	// Every stream has joined once Init returned, before the headers came.
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		req, _ := http.NewRequest(method, base+"/ping", nil)
		resp, err := client.Do(req)
		require.NoError(t, err)
		ack, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, "ack", string(ack))
		for _, r := range readers {
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "data: pong\n", line)
			blank, err := r.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "\n", blank)
		}
	}

	// Shutdown ends the open streams: each gets a retry hint, then its body
	// reaches a clean EOF (the final chunk).
	cancel()
	for _, r := range readers {
		rest, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Regexp(t, `^retry: \d+\n\n$`, string(rest))
	}
	require.NoError(t, <-stopped)
	client.CloseIdleConnections()
}
