// Command coldstart measures a Server-Sent Events server's cold start: the
// time from exec of its binary to the first event a client receives.
//
//	coldstart [-n 20] [-mode ready|during] [-path /feed] -- BINARY ARGS...
//
// In each of -n rounds it picks a free loopback port, substitutes it for
// {addr} (127.0.0.1:PORT) in ARGS, and starts BINARY. Then:
//
//   - -mode ready: it waits for the server to log -ready (a substring of a
//     line on its stderr, "listening" by default), then opens GET -path;
//   - -mode during: it opens the stream while the server starts, dialling
//     in a loop (every -retry) from the moment of exec until one connect is
//     accepted.
//
// It times, from just before exec: the ready line (ready mode), the accepted
// connect, the response header and the first "data:" line. Then it sends
// SIGTERM to the server (SIGKILL after 5 s) and waits for its exit. The
// report gives each figure's median, p90 and max over the rounds, in ms.
//
// Loopback only; every phase is bounded by -timeout.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

// config is one measurement: the flags and the server's command.
type config struct {
	n       int
	mode    string
	path    string
	ready   string
	retry   time.Duration
	timeout time.Duration
	argv    []string
}

func parse(args []string) (*config, error) {
	fl := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	c := &config{}
	fl.IntVar(&c.n, "n", 20, "rounds")
	fl.StringVar(&c.mode, "mode", "ready", "ready (connect once the server logs -ready) or during (connect in a loop from exec)")
	fl.StringVar(&c.path, "path", "/feed", "stream path")
	fl.StringVar(&c.ready, "ready", "listening", "ready mode: a substring of the server's stderr line that says it listens")
	fl.DurationVar(&c.retry, "retry", 200*time.Microsecond, "during mode: pause between refused connects")
	fl.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on each round")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	c.argv = fl.Args()
	switch {
	case len(c.argv) == 0:
		return nil, errors.New("no server command (usage: coldstart [flags] -- BINARY ARGS)")
	case !slices.ContainsFunc(c.argv[1:], func(a string) bool { return strings.Contains(a, "{addr}") }):
		return nil, errors.New("the server's arguments must name its address as {addr}")
	case c.mode != "ready" && c.mode != "during":
		return nil, fmt.Errorf("-mode %q: want ready or during", c.mode)
	case c.n < 1 || c.retry <= 0 || c.timeout <= 0:
		return nil, errors.New("-n, -retry and -timeout must be positive")
	case !strings.HasPrefix(c.path, "/"):
		return nil, fmt.Errorf("-path %q must start with /", c.path)
	}
	return c, nil
}

// round is one cold start's times from exec; zero where not reached.
type round struct {
	ready, connect, header, event time.Duration
}

func run(args []string, stdout io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	var rounds []round
	for i := range c.n {
		r, err := c.once()
		if err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		rounds = append(rounds, r)
	}
	report(stdout, c, rounds)
	return nil
}

// freeAddr returns a loopback address no socket listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// once runs one round: start the server, open the stream, stop the server.
func (c *config) once() (r round, err error) {
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	argv := make([]string, len(c.argv))
	for i, a := range c.argv {
		argv[i] = strings.ReplaceAll(a, "{addr}", addr)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	readyC := make(chan time.Duration, 1)
	var t0 time.Time
	logTail := &lineLog{match: c.ready, matched: func() { readyC <- time.Since(t0) }}
	cmd.Stderr = logTail
	deadline := time.Now().Add(c.timeout)
	t0 = time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		if serr := stop(cmd, exited); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			err = fmt.Errorf("%w (server log: %s)", err, logTail.String())
		}
	}()
	if c.mode == "ready" {
		select {
		case r.ready = <-readyC:
		case <-exited:
			return r, fmt.Errorf("the server exited before it logged %q", c.ready)
		case <-time.After(time.Until(deadline)):
			return r, fmt.Errorf("no %q line within %v", c.ready, c.timeout)
		}
	}
	conn, err := c.dial(addr, deadline)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	r.connect = time.Since(t0)
	_ = conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", c.path, addr); err != nil {
		return r, err
	}
	r.header, r.event, err = firstEvent(conn, t0)
	return r, err
}

// dial connects to addr, in ready mode once, in during mode in a loop
// while the connect is refused.
func (c *config) dial(addr string, deadline time.Time) (net.Conn, error) {
	for {
		conn, err := net.DialTimeout("tcp4", addr, time.Until(deadline))
		if err == nil || c.mode == "ready" || !errors.Is(err, syscall.ECONNREFUSED) {
			return conn, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: refused until the deadline", addr)
		}
		time.Sleep(c.retry)
	}
}

// firstEvent reads a response from r and returns the times, since t0, at
// which its header ended and its first "data:" line arrived. The body may
// be chunked: a data line still starts a line of the chunk's payload.
func firstEvent(r io.Reader, t0 time.Time) (header, event time.Duration, err error) {
	var buf []byte
	b := make([]byte, 4096)
	body := -1 // offset of the body in buf, once the header has ended
	for {
		n, err := r.Read(b)
		buf = append(buf, b[:n]...)
		if body < 0 {
			if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
				header, body = time.Since(t0), i+4
				if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200")) {
					line, _, _ := bytes.Cut(buf, []byte("\r\n"))
					return header, 0, fmt.Errorf("status %q", line)
				}
			}
		}
		if body >= 0 {
			rest := buf[body:]
			if bytes.HasPrefix(rest, []byte("data:")) || bytes.Contains(rest, []byte("\ndata:")) {
				return header, time.Since(t0), nil
			}
		}
		if err != nil {
			return header, 0, fmt.Errorf("before the first event: %w", err)
		}
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 5 s; it waits for the
// exit (exited closed) and reports a kill as an error.
func stop(cmd *exec.Cmd, exited <-chan struct{}) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("the server did not exit within 5 s of SIGTERM; killed")
	}
}

// lineLog is the server's stderr: it calls matched once, for the first
// line that contains match, and keeps the last lines for error messages.
// os/exec writes to it from one goroutine; String may be called from
// another once the process has exited.
type lineLog struct {
	match   string
	matched func()
	mu      sync.Mutex
	partial []byte
	lines   []string
	seen    bool
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if !l.seen && strings.Contains(line, l.match) {
			l.seen = true
			l.matched()
		}
		if len(l.lines) == 5 {
			l.lines = l.lines[1:]
		}
		l.lines = append(l.lines, line)
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, " | ")
}

func report(w io.Writer, c *config, rounds []round) {
	fmt.Fprintf(w, "cold start, %d rounds, mode %s: %s\n", len(rounds), c.mode, strings.Join(c.argv, " "))
	fmt.Fprintf(w, "%-28s %9s %9s %9s\n", "from exec to (ms)", "median", "p90", "max")
	figure := func(name string, get func(round) time.Duration) {
		var ds []time.Duration
		for _, r := range rounds {
			ds = append(ds, get(r))
		}
		slices.Sort(ds)
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }
		fmt.Fprintf(w, "%-28s %9s %9s %9s\n", name, ms(ds[len(ds)/2]), ms(ds[(len(ds)*9+9)/10-1]), ms(ds[len(ds)-1]))
	}
	if c.mode == "ready" {
		figure("ready line", func(r round) time.Duration { return r.ready })
	}
	figure("connect accepted", func(r round) time.Duration { return r.connect })
	figure("response header", func(r round) time.Duration { return r.header })
	figure("first event", func(r round) time.Duration { return r.event })
}
