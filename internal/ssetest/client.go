package ssetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/internal/ssespec"
)

// Client is one HTTP/1.x request on a TCP connection of its own, written and
// read by hand, so that a test controls the connection: it can stop
// reading, close it, or send what no library would. The body is decoded by
// its framing (ChunkedReader, Content-Length, or up to the close) and read
// as an event stream by ssespec's parser.
//
// A Client reads either on the caller's goroutine (no goroutine of its own,
// for tests of many connections) or, after Start, on a goroutine of its own.
// Next, NextEvent and NextData return errors and, without Start, read with
// whatever deadline the caller set on Conn; Event, Data, WaitRaw and End
// fail the test after Wait either way (without Start, through a read
// deadline they clear afterwards); ReadAll reads with a deadline of Wait.
// Not safe for concurrent use but for that goroutine.
type Client struct {
	Conn   net.Conn
	Status int    // the response's status code
	Proto  string // the response's protocol, "HTTP/1.1"
	Head   string // the status line and header lines as received, CRLFs included

	br      *bufio.Reader
	buf     []byte // the reads' buffer on the caller's goroutine
	body    io.Reader
	chunked *ChunkedReader // nil when the body is not chunked

	reading bool
	lean    bool // see Lean
	collect bool // a lean client keeps raw bytes: ReadAll runs
	mu      sync.Mutex
	parser  ssespec.Parser
	raw     []byte          // the body read so far: the event stream's bytes
	blocks  []ssespec.Block // every block parsed so far
	next    int             // the next block Next returns
	ended   bool            // the body has ended
	endErr  error           // nil when it ended cleanly
	changed chan struct{}   // capacity 1: the reader got something
	done    chan struct{}   // closed when the reader goroutine has returned
	events  []ssespec.Event // every event dispatched so far
	nextEv  int             // the next event Event returns
}

// Request is an HTTP/1.1 request for target with Host and Accept:
// text/event-stream, then the header lines (name, value pairs).
func Request(method, target string, header ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: ssetest\r\nAccept: text/event-stream\r\n", method, target)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// Dial sends Request(method, target, header...) to addr and reads the
// response head, failing the test on error. The connection is closed (and
// the reader, if started, awaited) at cleanup.
func Dial(tb testing.TB, addr, method, target string, header ...string) *Client {
	tb.Helper()
	c, err := DialRaw(addr, Request(method, target, header...))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// DialRaw connects to addr, sends req as it is, and reads the response
// head, all within Wait. The caller closes the Client.
func DialRaw(addr string, req []byte) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, Wait)
	if err != nil {
		return nil, err
	}
	return Handshake(nc, req)
}

// Handshake sends req on nc, a connection made by the caller (an in-memory
// pipe, say), and reads the response head, within Wait. On error nc is
// closed; otherwise the Client owns it.
func Handshake(nc net.Conn, req []byte) (*Client, error) {
	// Small buffers: a test may hold thousands of clients, and measure the
	// process's memory. Bigger reads go past them.
	c := &Client{Conn: nc, br: bufio.NewReaderSize(nc, 512), changed: make(chan struct{}, 1), done: make(chan struct{})}
	_ = nc.SetDeadline(time.Now().Add(Wait))
	// The request is written on a goroutine of its own: a server may answer
	// (and close) before it has read all of a big one.
	wrote := make(chan error, 1)
	go func() { _, err := nc.Write(req); wrote <- err }()
	if err := c.readHead(); err != nil {
		nc.Close()
		if werr := <-wrote; werr != nil {
			return nil, fmt.Errorf("%w (writing the request: %v)", err, werr)
		}
		return nil, err
	}
	<-wrote // once the server answered, an error here is its business
	_ = nc.SetDeadline(time.Time{})
	c.body = c.framing(strings.HasPrefix(string(req), "HEAD "))
	return c, nil
}

// DialMany opens n streams (GET target) to addr, a few at a time, and reads
// their response heads, failing the test unless every one is 200. They are
// Lean, and no goroutine reads them; they are closed at cleanup.
func DialMany(tb testing.TB, addr, target string, n int) []*Client {
	tb.Helper()
	clients := make([]*Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if clients[i], errs[i] = DialRaw(addr, Request("GET", target)); errs[i] == nil {
					clients[i].Lean()
				}
			}
		})
	}
	wg.Wait()
	tb.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("stream %d: %v", i, err)
		}
		if clients[i].Status != 200 {
			tb.Fatalf("stream %d: %s", i, clients[i].Head)
		}
	}
	return clients
}

func (c *Client) readHead() error {
	var head strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the response head %q: %w", head.String()+line, err)
		}
		head.WriteString(line)
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	c.Head = head.String()
	status, _, _ := strings.Cut(c.Head, "\n")
	f := strings.Fields(status)
	if len(f) < 2 {
		return fmt.Errorf("bad status line in %q", c.Head)
	}
	c.Proto = f[0]
	var err error
	if c.Status, err = strconv.Atoi(f[1]); err != nil {
		return fmt.Errorf("bad status line in %q", c.Head)
	}
	return nil
}

// framing returns the decoded body: chunked, Content-Length long, empty
// (HEAD, 1xx, 204, 304) or up to the close.
func (c *Client) framing(head bool) io.Reader {
	switch {
	case head || c.Status/100 == 1 || c.Status == 204 || c.Status == 304:
		return eofReader{}
	case c.Chunked():
		c.chunked = NewChunkedReader(c.br)
		return c.chunked
	case c.Header("Content-Length") != "":
		n, err := strconv.ParseInt(c.Header("Content-Length"), 10, 64)
		if err != nil {
			return errReader{fmt.Errorf("bad Content-Length in %q", c.Head)}
		}
		return &lengthReader{r: c.br, left: n}
	}
	return c.br
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// lengthReader is a Content-Length body: a close before its end is a cut.
type lengthReader struct {
	r    io.Reader
	left int64
}

func (l *lengthReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	n, err := l.r.Read(p[:min(int64(len(p)), l.left)])
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Reader returns the connection's buffered reader, positioned after the
// response head: for a test that reads the bytes as they come, framing and
// all. Do not mix it with the Client's own reads.
func (c *Client) Reader() *bufio.Reader { return c.br }

// Body returns the decoded body (chunked framing undone), for a benchmark
// that reads it itself at full speed. Do not mix it with the Client's own
// reads.
func (c *Client) Body() io.Reader { return c.body }

// Header returns the first value of the response header name, or "".
func (c *Client) Header(name string) string {
	if v := c.Headers(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Headers returns every value of the response header name, in order.
func (c *Client) Headers(name string) []string {
	var out []string
	lines := strings.Split(strings.ReplaceAll(c.Head, "\r\n", "\n"), "\n")
	for _, line := range lines[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// Chunked reports whether the response has Transfer-Encoding: chunked.
func (c *Client) Chunked() bool {
	for _, v := range c.Headers("Transfer-Encoding") {
		if strings.Contains(strings.ToLower(v), "chunked") {
			return true
		}
	}
	return false
}

// fill reads once from the body and parses what came.
func (c *Client) fill(buf []byte) {
	n, err := c.body.Read(buf)
	c.mu.Lock()
	if n > 0 {
		if !c.lean || c.collect {
			c.raw = append(c.raw, buf[:n]...)
		}
		for _, bl := range c.parser.FeedBlocks(buf[:n]) {
			c.blocks = append(c.blocks, bl)
			if bl.Dispatched && !c.lean {
				c.events = append(c.events, bl.Event)
			}
		}
	}
	if err != nil && !c.ended {
		c.ended = true
		if err != io.EOF {
			c.endErr = err
		}
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Lean makes c keep only what it has not returned yet: Raw is empty but
// during ReadAll, Events has only the events not consumed yet, and Next and
// NextEvent share one cursor (NextEvent drops the blocks it skips). For
// tests of many connections that measure the process's memory; DialMany's
// clients are lean. Call it before reading.
func (c *Client) Lean() *Client {
	c.lean = true
	return c
}

// forget drops, on a lean client, the blocks already returned; c.mu held.
func (c *Client) forget() {
	if !c.lean {
		return
	}
	c.blocks[c.next-1] = ssespec.Block{} // let its strings go
	if c.next == len(c.blocks) {
		c.blocks, c.next = c.blocks[:0], 0
	}
}

// Start reads the body on a goroutine of its own, parsing it as it comes.
func (c *Client) Start() *Client {
	c.reading = true
	go func() {
		defer close(c.done)
		buf := make([]byte, 32<<10)
		for {
			c.fill(buf)
			c.mu.Lock()
			ended := c.ended
			c.mu.Unlock()
			if ended {
				return
			}
		}
	}()
	return c
}

// Close closes the connection and waits for the reader goroutine, if any.
func (c *Client) Close() {
	_ = c.Conn.Close()
	if c.reading {
		<-c.done
	}
}

// errTimeout is what the waiting reads return after Wait.
var errTimeout = errors.New("ssetest: nothing within the wait")

// await returns once cond holds over the client's state (called with c.mu
// held) or the body has ended: with the reader goroutine, waiting up to
// Wait; without it, reading on this goroutine. It reports whether cond
// held.
func (c *Client) await(cond func() bool) (bool, error) {
	var deadline <-chan time.Time
	for {
		c.mu.Lock()
		ok, ended := cond(), c.ended
		c.mu.Unlock()
		if ok || ended {
			return ok, nil
		}
		if !c.reading {
			if c.buf == nil {
				c.buf = make([]byte, 512)
			}
			c.fill(c.buf)
			continue
		}
		if deadline == nil {
			t := time.NewTimer(Wait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-c.changed:
		case <-deadline:
			return false, errTimeout
		}
	}
}

// endError is what a read past the end returns: io.EOF after a clean end.
func (c *Client) endError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endErr != nil {
		return c.endErr
	}
	return io.EOF
}

// Next returns the next block of the stream: an event, a heartbeat (a
// comment only) or a retry hint. After the end it returns io.EOF (a clean
// end) or the read error.
func (c *Client) Next() (ssespec.Block, error) {
	ok, err := c.await(func() bool { return c.next < len(c.blocks) })
	if err != nil {
		return ssespec.Block{}, err
	}
	if !ok {
		return ssespec.Block{}, c.endError()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bl := c.blocks[c.next]
	c.next++
	c.forget()
	return bl, nil
}

// NextEvent returns the next dispatched event, skipping heartbeats and
// retry hints. It and Event share one cursor, apart from Next's.
func (c *Client) NextEvent() (ssespec.Event, error) {
	if c.lean {
		for {
			bl, err := c.Next()
			if err != nil || bl.Dispatched {
				return bl.Event, err
			}
		}
	}
	ok, err := c.await(func() bool { return c.nextEv < len(c.events) })
	if err != nil {
		return ssespec.Event{}, err
	}
	if !ok {
		return ssespec.Event{}, c.endError()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.events[c.nextEv]
	c.nextEv++
	return ev, nil
}

// NextData returns the next event's data.
func (c *Client) NextData() (string, error) {
	ev, err := c.NextEvent()
	return ev.Data, err
}

// bound gives a read on the caller's goroutine (no Start) a deadline of Wait,
// for the methods that fail the test; the returned func clears it.
func (c *Client) bound() func() {
	if c.reading {
		return func() {}
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(Wait))
	return func() { _ = c.Conn.SetReadDeadline(time.Time{}) }
}

// Event returns the next dispatched event, failing the test when none comes
// within Wait or the stream ends first.
func (c *Client) Event(tb testing.TB) ssespec.Event {
	tb.Helper()
	defer c.bound()()
	ev, err := c.NextEvent()
	if err != nil {
		tb.Fatalf("no next event (%v); raw so far %q", err, c.Raw())
	}
	return ev
}

// Data returns the next event's data, as Event.
func (c *Client) Data(tb testing.TB) string {
	tb.Helper()
	return c.Event(tb).Data
}

// WaitRaw waits until the body holds at least n bytes, or ended, and
// returns it all.
func (c *Client) WaitRaw(tb testing.TB, n int) string {
	tb.Helper()
	defer c.bound()()
	if _, err := c.await(func() bool { return len(c.raw) >= n }); err != nil {
		tb.Fatalf("no %d bytes within %v; raw so far %q", n, Wait, c.Raw())
	}
	return c.Raw()
}

// Raw returns the body bytes read so far.
func (c *Client) Raw() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.raw)
}

// Events returns every event dispatched so far, consumed or not.
func (c *Client) Events() []ssespec.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lean {
		var evs []ssespec.Event
		for _, bl := range c.blocks[c.next:] {
			if bl.Dispatched {
				evs = append(evs, bl.Event)
			}
		}
		return evs
	}
	return append([]ssespec.Event(nil), c.events...)
}

// End waits for the body to end and returns nil when it ended cleanly (the
// last chunk; or the close, for a body not chunked) or the read error.
func (c *Client) End(tb testing.TB) error {
	tb.Helper()
	defer c.bound()()
	if _, err := c.await(func() bool { return false }); err != nil {
		tb.Fatalf("the stream did not end within %v; raw so far %q", Wait, c.Raw())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endErr
}

// ReadAll reads the rest of the body on the caller's goroutine, with a read
// deadline of Wait, and returns all of it (from the start; on a lean
// client, from the call) with nil for a clean end.
func (c *Client) ReadAll() (string, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(Wait))
	c.mu.Lock()
	c.collect = true
	c.mu.Unlock()
	_, _ = c.await(func() bool { return false })
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.raw), c.endErr
}

// Pending reports whether the parser holds a partial line or an event not
// yet ended by a blank line.
func (c *Client) Pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parser.Pending()
}
