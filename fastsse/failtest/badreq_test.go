//go:build linux

package failtest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// badCase is a request that is not a plain GET, and the answer it gets.
type badCase struct {
	name   string
	req    []byte
	status int
	body   string // the response body, for answers that are not streams
	allow  string // the Allow header, if any
	closed bool   // the body ends with the connection (no Content-Length)
	init   bool   // Init runs
	lastID string // the lastEventID Init gets
}

// badCases are the answers on transport tr. Those that are not the
// library's own come from the server before any handler runs. fasthttp's
// (v1.78, default Server settings, the stream and dense transports): its
// ReadBufferSize (4096) bounds the request head as a whole, and its header
// parser refuses control bytes in values. net/http's (the http transport):
// MaxHeaderBytes (1 MB by default) lets a 64 KB id through to Init, and it
// refuses control bytes with a bare "400 Bad Request" closed by the
// connection's end.
func badCases(tr string) []badCase {
	var filler []string // 60 headers of about 120 bytes: 7 KB
	for i := range 60 {
		filler = append(filler, "X-Filler-"+strconv.Itoa(i), strings.Repeat("z", 100))
	}
	const tooBig = "Too big request header"
	const unparsable = "Error when parsing request"
	const notGet = "405 Method Not Allowed: an event stream is read with GET\n"
	cases := []badCase{
		// A 64 KB Last-Event-ID does not fit in fasthttp's read buffer:
		// 431 Request Header Fields Too Large, and the connection closes.
		{name: "64KB-id", req: ssetest.Request("GET", "/?tag=64KB-id", "Last-Event-ID", strings.Repeat("7", 64<<10)),
			status: 431, body: tooBig},
		// Nor do 7 KB of headers overall.
		{name: "7KB-headers", req: ssetest.Request("GET", "/?tag=7KB-headers", filler...), status: 431, body: tooBig},
		// A NUL in Last-Event-ID never reaches Init: fasthttp answers 400.
		// (The WHATWG spec has a client never send one: an id with NUL is
		// ignored, so it cannot be resumed from.) A bare CR, the same.
		{name: "NUL-id", req: ssetest.Request("GET", "/?tag=NUL-id", "Last-Event-ID", "ab\x00cd"), status: 400, body: unparsable},
		{name: "CR-id", req: ssetest.Request("GET", "/?tag=CR-id", "Last-Event-ID", "ab\rcd"), status: 400, body: unparsable},
		// Invalid UTF-8 goes through: Init gets the header's bytes as they
		// came, as a string, and the stream opens.
		{name: "UTF8-id", req: ssetest.Request("GET", "/?tag=UTF8-id", "Last-Event-ID", "ab\xff\xfecd"),
			status: 200, init: true, lastID: "ab\xff\xfecd"},
		// A GET with a body: fasthttp reads the body (by Content-Length or
		// chunked), the library ignores it, and the stream opens.
		{name: "GET-body", req: append(ssetest.Request("GET", "/?tag=GET-body", "Content-Length", "5"), "hello"...),
			status: 200, init: true},
		{name: "GET-chunked-body", req: append(ssetest.Request("GET", "/?tag=GET-chunked-body", "Transfer-Encoding", "chunked"), "5\r\nhello\r\n0\r\n\r\n"...),
			status: 200, init: true},
		// HEAD and OPTIONS (and any method but GET): 405 with Allow: GET,
		// and Init is not called; HEAD's answer has no body.
		{name: "HEAD", req: ssetest.Request("HEAD", "/?tag=HEAD"), status: 405, allow: "GET"},
		{name: "OPTIONS", req: ssetest.Request("OPTIONS", "/?tag=OPTIONS"), status: 405, allow: "GET", body: notGet},
		{name: "POST", req: ssetest.Request("POST", "/?tag=POST", "Content-Length", "0"), status: 405, allow: "GET", body: notGet},
	}
	if tr == "http" {
		for i := range cases {
			switch c := &cases[i]; c.name {
			case "64KB-id":
				c.status, c.body, c.init, c.lastID = 200, "", true, strings.Repeat("7", 64<<10)
			case "7KB-headers":
				c.status, c.body, c.init = 200, "", true
			case "NUL-id", "CR-id":
				c.body, c.closed = "400 Bad Request", true
			}
		}
	}
	return cases
}

// TestBadRequests: each bad request gets its documented answer (badCases),
// while a normal stream on the same server receives a message every 5 ms
// throughout, every one of them, in order.
func TestBadRequests(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			h := &handler{}
			s := serve(t, h, tr, fastsse.Options{Heartbeat: -1})

			watch, err := ssetest.DialRaw(s.addr, ssetest.Request("GET", "/?tag=watch"))
			require.NoError(t, err)
			defer watch.Close()
			wr := h.tagged(t, "watch")
			got := make(chan error, 1)
			go func() {
				for i := 1; ; i++ {
					data, err := watch.NextData()
					if err == nil && data == "end" {
						got <- nil
						return
					}
					if err == nil && data != strconv.Itoa(i) {
						err = fmt.Errorf("message %d: got %q", i, data)
					}
					if err != nil {
						got <- err
						return
					}
				}
			}()
			stop, sent := make(chan struct{}), make(chan int, 1)
			go func() {
				tk := time.NewTicker(5 * time.Millisecond)
				defer tk.Stop()
				for i := 1; ; i++ {
					select {
					case <-stop:
						sent <- i - 1
						return
					case <-tk.C:
						if err := wr.conn.Notify(i); err != nil {
							sent <- -i
							return
						}
					}
				}
			}()

			for _, bc := range badCases(tr.Name) {
				before := h.inits.Load()
				c, err := ssetest.DialRaw(s.addr, bc.req)
				require.NoError(t, err, bc.name)
				assert.Equal(t, bc.status, c.Status, "%s: %s", bc.name, c.Head)
				if bc.allow != "" {
					assert.Equal(t, bc.allow, c.Header("Allow"), bc.name)
				}
				if bc.status != 200 {
					body, err := readBody(c, bc.name == "HEAD", bc.closed)
					assert.NoError(t, err, bc.name)
					assert.Equal(t, bc.body, body, bc.name)
				}
				if bc.init {
					r := h.tagged(t, bc.name)
					assert.Equal(t, bc.lastID, r.lastID, bc.name)
				} else {
					assert.Equal(t, before, h.inits.Load(), "%s: Init is not called", bc.name)
				}
				c.Close()
				time.Sleep(20 * time.Millisecond) // a few messages to watch between cases
			}

			close(stop)
			n := <-sent
			require.Positive(t, n, "Notify to the watching stream failed")
			require.NoError(t, wr.conn.Notify("end"))
			select {
			case err := <-got:
				require.NoError(t, err, "the watching stream")
			case <-time.After(waitFor):
				t.Fatal("the watching stream did not get its messages")
			}
			t.Logf("the watching stream got all %d messages, in order", n)
			assert.Zero(t, wr.terms.Load())
		})
	}
}

// readBody reads a response body delimited by Content-Length, or by the
// connection's end when closed; after a HEAD, it checks that nothing
// follows the head.
func readBody(c *ssetest.Client, head, closed bool) (string, error) {
	if head {
		_ = c.Conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Reader().Read(make([]byte, 1))
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return "", fmt.Errorf("something after the head of a HEAD answer: %d bytes, %v", n, err)
		}
		return "", nil
	}
	if c.Header("Content-Length") == "" && !closed {
		return "", fmt.Errorf("no Content-Length in %q", c.Head)
	}
	return c.ReadAll()
}
