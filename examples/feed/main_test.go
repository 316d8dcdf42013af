package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
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
// a send time that is not in the future, data of -size bytes.
func TestFeedContract(t *testing.T) {
	a, err := newApp(&fastsse.Options{Heartbeat: -1}, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- serve.RunListener(ctx, ln, a.handler, serve.Options{Drain: []*fastsse.Endpoint{a.ep}})
	}()
	published := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	defer func() {
		cancel()
		<-published
		require.NoError(t, <-stopped)
		client.CloseIdleConnections()
	}()

	resp, err := client.Get("http://" + ln.Addr().String() + "/feed")
	require.NoError(t, err)
	defer resp.Body.Close()
	go func() { a.publish(ctx, 200, 100); close(published) }()

	r := bufio.NewReader(resp.Body)
	var prev int64
	for n := 0; n < 20; {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			// EPOCH-SEQ: one epoch for the run, consecutive positions.
			id, err := strconv.ParseInt(line[strings.LastIndexByte(line, '-')+1:], 10, 64)
			require.NoError(t, err)
			if prev != 0 {
				require.Equal(t, prev+1, id, "ids are consecutive")
			}
			prev = id
		case strings.HasPrefix(line, "data: "):
			data := line[6:]
			require.Len(t, data, 100)
			sent, err := strconv.ParseInt(data[:strings.IndexByte(data, ' ')], 10, 64)
			require.NoError(t, err)
			require.LessOrEqual(t, sent, time.Now().UnixNano())
			n++
		}
	}
}
