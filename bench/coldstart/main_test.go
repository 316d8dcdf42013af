package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain runs this test binary as the server under test when
// COLDSTART_TEST_SERVER is set: a net/http server on the address it is
// given that logs "listening" and opens every stream with one event.
func TestMain(m *testing.M) {
	if os.Getenv("COLDSTART_TEST_SERVER") != "" {
		serve(os.Args[len(os.Args)-1])
		return
	}
	goleak.VerifyTestMain(m)
}

func serve(addr string) {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "pid %d listening on %s\n", os.Getpid(), ln.Addr())
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": hello\n\ndata: one\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(time.Minute)
	}))
}

func TestParse(t *testing.T) {
	c, err := parse([]string{"-n", "3", "-mode", "during", "--", "./feed", "-addr", "{addr}"})
	require.NoError(t, err)
	assert.Equal(t, 3, c.n)
	assert.Equal(t, []string{"./feed", "-addr", "{addr}"}, c.argv)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no server command"},
		{[]string{"--", "./feed", "-addr", "127.0.0.1:8080"}, "{addr}"},
		{[]string{"-mode", "later", "--", "./feed", "{addr}"}, "-mode"},
		{[]string{"-n", "0", "--", "./feed", "{addr}"}, "positive"},
		{[]string{"-path", "feed", "--", "./feed", "{addr}"}, "-path"},
	} {
		_, err := parse(tc.args)
		if assert.Error(t, err, "%q", tc.args) {
			assert.Contains(t, err.Error(), tc.want, "%q", tc.args)
		}
	}
}

// TestRounds: both modes against a real server process (this binary).
func TestRounds(t *testing.T) {
	t.Setenv("COLDSTART_TEST_SERVER", "1")
	for _, mode := range []string{"ready", "during"} {
		t.Run(mode, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run([]string{"-n", "2", "-mode", mode, "--", os.Args[0], "-test.run=^$", "{addr}"}, &out))
			s := out.String()
			assert.Contains(t, s, "cold start, 2 rounds, mode "+mode)
			for _, f := range []string{"connect accepted", "response header", "first event"} {
				assert.Contains(t, s, f)
			}
			assert.Equal(t, mode == "ready", strings.Contains(s, "ready line"), s)
		})
	}
}

func TestFirstEventChunked(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3\r\n:\n\n\r\n" + "c\r\ndata: x y z\n\n\r\n"
	h, e, err := firstEvent(strings.NewReader(resp), time.Now())
	require.NoError(t, err)
	assert.Positive(t, h)
	assert.GreaterOrEqual(t, e, h)

	_, _, err = firstEvent(strings.NewReader("HTTP/1.1 204 No Content\r\n\r\n"), time.Now())
	assert.ErrorContains(t, err, "204")
	_, _, err = firstEvent(strings.NewReader("HTTP/1.1 200 OK\r\n\r\n: only a comment\n\n"), time.Now())
	assert.ErrorContains(t, err, "before the first event")
}
