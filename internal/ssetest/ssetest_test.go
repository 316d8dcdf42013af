package ssetest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestChunkedReader(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error  // nil: a clean end
		errText        string // when the error is not a sentinel
	}{
		{name: "two chunks", in: "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", want: "abcde"},
		{name: "upper-case hex", in: "A\r\n0123456789\r\n0\r\n\r\n", want: "0123456789"},
		{name: "extension", in: "3;x=y\r\nabc\r\n0;end\r\n\r\n", want: "abc"},
		{name: "trailer", in: "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", want: "abc"},
		{name: "data holds CRLF", in: "4\r\n\r\n\r\n\r\n0\r\n\r\n", want: "\r\n\r\n"},
		{name: "no last chunk", in: "3\r\nabc\r\n", want: "abc", err: io.ErrUnexpectedEOF},
		{name: "cut in a chunk", in: "5\r\nabc", want: "abc", err: io.ErrUnexpectedEOF},
		{name: "cut in the trailer", in: "3\r\nabc\r\n0\r\n", want: "abc", err: io.ErrUnexpectedEOF},
		{name: "bad size", in: "zz\r\nabc\r\n", errText: `bad chunk size line "zz"`},
		{name: "empty size", in: "\r\nabc\r\n", errText: `bad chunk size line ""`},
		{name: "negative size", in: "-1\r\nabc\r\n", errText: `bad chunk size line "-1"`},
		{name: "no CRLF after data", in: "3\r\nabcX\r\n0\r\n\r\n", want: "abc", errText: "not followed by CRLF"},
		{name: "bare LF size line", in: "3\nabc\r\n0\r\n\r\n", errText: "does not end in CRLF"},
	}
	for _, tc := range tests {
		for _, split := range []struct {
			name string
			r    func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}} {
			t.Run(tc.name+"/"+split.name, func(t *testing.T) {
				cr := NewChunkedReader(bufio.NewReaderSize(split.r(strings.NewReader(tc.in)), 16))
				got, err := io.ReadAll(iotest.OneByteReader(cr))
				assert.Equal(t, tc.want, string(got))
				switch {
				case tc.errText != "":
					require.Error(t, err)
					assert.Contains(t, err.Error(), tc.errText)
				case tc.err != nil:
					assert.ErrorIs(t, err, tc.err)
				default:
					assert.NoError(t, err)
					assert.True(t, cr.Done())
				}
			})
		}
	}
}

// rawServer answers every connection with resp after reading the request
// head, then closes it: a server that sends what a test wants, byte for
// byte.
func rawServer(t *testing.T, resp string) string {
	ln := Listen(t)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			_, _ = io.WriteString(c, resp)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// The stream every framing test carries: a BOM, CR, CRLF and LF breaks, a
// heartbeat and a retry hint.
const stream = "\xEF\xBB\xBFid: 1\rdata: a\r\rdata: b\r\ndata: c\r\n\r\n: hb\n\nretry: 3000\n\n"

func checkStream(t *testing.T, c *Client) {
	t.Helper()
	ev, err := c.NextEvent()
	require.NoError(t, err)
	assert.Equal(t, ssespec.Event{Type: "message", Data: "a", ID: "1", IDSet: true}, ev)
	ev, err = c.NextEvent()
	require.NoError(t, err)
	assert.Equal(t, "b\nc", ev.Data)
	assert.Equal(t, "1", ev.ID)
	var blocks []ssespec.Block
	for {
		bl, err := c.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		blocks = append(blocks, bl)
	}
	require.Len(t, blocks, 4)
	assert.Equal(t, []string{" hb"}, blocks[2].Comments)
	assert.True(t, blocks[3].Event.HasRetry)
	assert.EqualValues(t, 3000, blocks[3].Event.Retry)
	assert.Equal(t, stream, c.Raw())
}

func TestClientFramings(t *testing.T) {
	chunk := func(s string) string {
		var b strings.Builder
		for len(s) > 0 { // chunks of 7 bytes: they cut through lines and the BOM
			n := min(7, len(s))
			fmt.Fprintf(&b, "%X\r\n%s\r\n", n, s[:n])
			s = s[n:]
		}
		return b.String() + "0\r\n\r\n"
	}
	for _, tc := range []struct{ name, resp string }{
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(stream)},
		{"close-delimited", "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + stream},
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(stream)) + "\r\n\r\n" + stream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, tc.resp)
			t.Run("on the caller's goroutine", func(t *testing.T) {
				checkStream(t, Dial(t, addr, "GET", "/"))
			})
			t.Run("started", func(t *testing.T) {
				c := Dial(t, addr, "GET", "/").Start()
				assert.NoError(t, c.End(t))
				checkStream(t, c)
			})
		})
	}
}

func TestClientCutStream(t *testing.T) {
	addr := rawServer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: x\n\n\r\n")
	c := Dial(t, addr, "GET", "/").Start()
	assert.Equal(t, "x", c.Data(t))
	assert.ErrorIs(t, c.End(t), io.ErrUnexpectedEOF, "a chunked body without its last chunk is cut")
}

func TestClientHead(t *testing.T) {
	addr := rawServer(t, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n")
	c := Dial(t, addr, "POST", "/")
	assert.Equal(t, 405, c.Status)
	assert.Equal(t, "HTTP/1.1", c.Proto)
	assert.Equal(t, "GET", c.Header("allow"))
	assert.Equal(t, []string{"a=1", "b=2"}, c.Headers("Set-Cookie"))
	assert.False(t, c.Chunked())
	body, err := c.ReadAll()
	assert.NoError(t, err)
	assert.Empty(t, body)
}

// TestServeFastHTTP: the server helper serves on loopback and shuts down at
// cleanup; Get reads a whole response.
func TestServeFastHTTP(t *testing.T) {
	s := ServeFastHTTP(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello " + string(ctx.Path())) })
	host, _, err := net.SplitHostPort(s.Addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	resp, body := Get(t, "GET", "http://"+s.Addr+"/x")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello /x", body)
	s.Shutdown(t)
	s.Shutdown(t) // again: a no-op
	_, err = net.Dial("tcp", s.Addr)
	assert.Error(t, err, "the listener is closed")
}
