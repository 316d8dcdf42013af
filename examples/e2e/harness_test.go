package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// chromiumPath is Debian's chromium; the tests need exactly this one.
	chromiumPath = "/usr/bin/chromium"
	// installHint says how to get it.
	installHint = "install it as root with: apt-get update && apt-get install -y chromium"

	// waitLimit bounds every wait on the browser or a server.
	waitLimit = 20 * time.Second
	// stopLimit is how long an example may take to exit after SIGTERM
	// (serve.Grace).
	stopLimit = 10 * time.Second
)

// bin is the directory holding the example commands built by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lasse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = dir
	for _, name := range []string{"pingpong", "news", "ticker"} {
		// Run from this module's directory so that its replace directive
		// builds the examples from this checkout.
		args := []string{"build", "-o", filepath.Join(dir, name)}
		if raceBuild {
			args = append(args, "-race")
		}
		args = append(args, "github.com/lasse-go/lasse/examples/"+name)
		cmd := exec.Command("go", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
			return 1
		}
	}
	return m.Run()
}

// lockedBuffer collects a subprocess' output; it may be read while written.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// example is one example command running as a subprocess.
type example struct {
	name   string
	addr   string // host:port it listens on
	base   string // http://addr
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed when cmd.Wait returned
	once   sync.Once
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// startExample runs the built example name on a free loopback port and
// waits until it answers GET /. It is stopped (SIGTERM, exit 0 within
// stopLimit) at the end of the test unless stopped before.
func startExample(t *testing.T, name string, args ...string) *example {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // another process may take the port
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		e := &example{
			name:   name,
			addr:   addr,
			base:   "http://" + addr,
			out:    &lockedBuffer{},
			exited: make(chan struct{}),
		}
		e.cmd = exec.Command(filepath.Join(bin, name), append([]string{"-addr", addr}, args...)...)
		e.cmd.Stdout = e.out
		e.cmd.Stderr = e.out
		if err := e.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() { e.cmd.Wait(); close(e.exited) }()
		t.Cleanup(func() { e.stop(t) })
		if lastErr = e.waitReady(); lastErr == nil {
			return e
		}
		select {
		case <-e.exited: // it could not listen: try another port
			e.once.Do(func() {}) // nothing left to stop
		default:
			t.Fatalf("%s: %v\noutput:\n%s", name, lastErr, e.out)
		}
	}
	t.Fatalf("%s did not start: %v", name, lastErr)
	return nil
}

// waitReady polls GET / until it answers 200.
func (e *example) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(waitLimit)
	for {
		select {
		case <-e.exited:
			return fmt.Errorf("%s exited before it answered (%v):\n%s", e.name, e.cmd.ProcessState, e.out)
		default:
		}
		resp, err := client.Get(e.base + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", e.name, waitLimit, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks that the example exits 0 within stopLimit;
// past that it is killed. Only the first call does anything.
func (e *example) stop(t *testing.T) {
	t.Helper()
	e.once.Do(func() {
		select {
		case <-e.exited:
			t.Errorf("%s exited before it was stopped (%v); output:\n%s", e.name, e.cmd.ProcessState, e.out)
			return
		default:
		}
		start := time.Now()
		if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM %s: %v", e.name, err)
		}
		select {
		case <-e.exited:
		case <-time.After(stopLimit):
			e.cmd.Process.Kill()
			<-e.exited
			t.Errorf("%s did not exit within %s of SIGTERM; killed. output:\n%s", e.name, stopLimit, e.out)
			return
		}
		if code := e.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %v after SIGTERM, want 0; output:\n%s", e.name, e.cmd.ProcessState, e.out)
			return
		}
		t.Logf("%s exited 0 %s after SIGTERM", e.name, time.Since(start).Round(time.Millisecond))
	})
}

// post sends body to the example's path and returns the answer's status and body.
func (e *example) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Post(e.base+path, "text/plain; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read answer: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// browser is one headless Chromium with one tab.
type browser struct {
	ctx context.Context // the tab's chromedp context
	out *lockedBuffer   // the browser's own output
}

// newBrowser starts Chromium with a fresh profile; it is killed at the end
// of the test. It fails the test when Chromium is not installed.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if fi, err := os.Stat(chromiumPath); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("these tests need Debian's Chromium at %s (stat: %v); %s", chromiumPath, err, installHint)
	}
	out := &lockedBuffer{}
	// Exactly these flags; chromedp adds --remote-debugging-pipe and the
	// first page, about:blank.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel() // kills the browser and waits for it
		if t.Failed() {
			t.Logf("chromium output:\n%s", out)
		}
	})
	// The first Run starts the browser; it must not carry a deadline.
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx) }()
	select {
	case err := <-start:
		if err != nil {
			t.Fatalf("start %s: %v\noutput:\n%s", chromiumPath, err, out)
		}
	case <-time.After(waitLimit):
		t.Fatalf("%s did not start within %s\noutput:\n%s", chromiumPath, waitLimit, out)
	}
	return &browser{ctx: ctx, out: out}
}

// navigate loads url in the tab and waits for its load event.
func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
}

// do runs actions in the tab, bounded by waitLimit.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// evalJSON evaluates a JavaScript expression whose value is a JSON text and
// decodes it into v.
func (b *browser) evalJSON(t *testing.T, expr string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("evaluate %s: decode %q: %v", expr, s, err)
	}
}

// text returns the text content of the element with this id.
func (b *browser) text(t *testing.T, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		fmt.Sprintf(`document.getElementById(%q).textContent`, id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

// waitFor polls the JavaScript predicate until it is true, up to waitLimit;
// then it fails the test with what and the page's state (describe, a
// JavaScript expression giving a string).
func (b *browser) waitFor(t *testing.T, what, predicate, describe string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate,
		chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(waitLimit)))
	if err == nil {
		return
	}
	state := "(unavailable)"
	sctx, scancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer scancel()
	if s, serr := chromedp.Run(sctx, chromedp.Evaluate[string](describe)); serr == nil {
		state = s
	}
	t.Fatalf("waiting up to %s for %s: %v\npage: %s", waitLimit, what, err, state)
}

// proxy is a loopback TCP proxy to one backend that can cut every
// connection and hold new ones until it is opened again. A held connection
// is read (so the test can see the request the browser sent) but nothing is
// forwarded, and nothing reaches the backend, until the gate opens.
type proxy struct {
	ln      net.Listener
	backend string
	done    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	gate     chan struct{} // closed while connections may pass
	requests []request     // the first bytes of every client connection
}

// request is the first read from one client connection.
type request struct {
	at   time.Time
	held bool   // it arrived while the gate was shut
	head string // what the client sent first: an HTTP request head
}

func (r request) String() string {
	line, _, _ := strings.Cut(r.head, "\r\n")
	return fmt.Sprintf("%s held=%v %q", r.at.Format("15:04:05.000"), r.held, line)
}

func newProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &proxy{
		ln:      ln,
		backend: backend,
		done:    make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
		gate:    make(chan struct{}),
	}
	close(p.gate)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		gate := p.gate
		p.mu.Unlock()
		p.wg.Add(1)
		go p.handle(c, gate)
	}
}

// handle reads the client's first bytes, waits for the gate, then forwards
// c to the backend both ways.
func (p *proxy) handle(c net.Conn, gate chan struct{}) {
	defer p.wg.Done()
	defer p.forget(c)
	held := true
	select {
	case <-gate:
		held = false
	default:
	}
	buf := make([]byte, 32<<10)
	n, _ := c.Read(buf)
	if n == 0 {
		return // a socket closed unused (the read failed), or cut
	}
	p.mu.Lock()
	p.requests = append(p.requests, request{at: time.Now(), held: held, head: string(buf[:n])})
	p.mu.Unlock()
	select {
	case <-gate:
	case <-p.done:
		return
	}
	b, err := net.DialTimeout("tcp", p.backend, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	_, alive := p.conns[c] // cut meanwhile?
	if alive {
		p.conns[b] = struct{}{}
	}
	p.mu.Unlock()
	if !alive {
		b.Close()
		return
	}
	defer p.forget(b)
	if _, err := b.Write(buf[:n]); err != nil {
		return
	}
	up := make(chan struct{})
	go func() {
		defer close(up)
		io.Copy(b, c)
		b.Close()
		c.Close()
	}()
	io.Copy(c, b)
	c.Close()
	b.Close()
	<-up
}

func (p *proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cutAndHold closes every connection through the proxy and makes new ones
// wait until open.
func (p *proxy) cutAndHold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
	for c := range p.conns {
		c.Close()
	}
}

// open lets held and new connections through.
func (p *proxy) open() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// seen returns the first bytes of every client connection so far.
func (p *proxy) seen() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]request(nil), p.requests...)
}

func (p *proxy) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// waitUntil polls cond every 20 ms up to waitLimit.
func waitUntil(cond func() bool) error {
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out after " + waitLimit.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
