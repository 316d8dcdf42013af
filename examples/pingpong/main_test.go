package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/lasse-go/lasse/internal/ssetest"
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
	addr := ln.Addr().String()
	clients := make([]*ssetest.Client, streams)
	for i := range clients {
		clients[i] = ssetest.Dial(t, addr, "GET", "/pong").Start()
		require.Equal(t, "text/event-stream", clients[i].Header("Content-Type"))
	}
	// Every stream has joined once Init returned, before the headers came.
	for round, method := range []string{http.MethodPost, http.MethodGet} {
		req, _ := http.NewRequest(method, base+"/ping", nil)
		resp, err := client.Do(req)
		require.NoError(t, err)
		ack, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, "ack", string(ack))
		for _, c := range clients {
			require.Equal(t, "pong", c.Data(t))
			require.Equal(t, strings.Repeat("data: pong\n\n", round+1), c.Raw())
		}
	}

	// Shutdown ends the open streams: each gets a retry hint, then its body
	// ends cleanly (the final chunk).
	cancel()
	for _, c := range clients {
		require.NoError(t, c.End(t))
		require.Regexp(t, `^(data: pong\n\n){2}retry: \d+\n\n$`, c.Raw())
	}
	require.NoError(t, <-stopped)
	client.CloseIdleConnections()
}
