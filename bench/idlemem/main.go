// Command idlemem measures the server memory held by each idle event stream:
// a fastsse Endpoint on the stream and dense transports against a raw
// hand-written SetBodyStreamWriter loop, in the same run, on the same
// fasthttp server settings.
//
//	go run ./bench/idlemem              # 10,000 streams, 2 rounds
//	go run ./bench/idlemem -n 5000 -rounds 1
//
// Each measurement runs in a fresh server process (this program re-executed
// with -role=server), so that neither side reuses memory the other freed.
// The server process starts its fasthttp server on 127.0.0.1:0 and a client
// process (-role=client) that opens -n streams and keeps them open, idle; a
// machine that caps open files at 20,000 per process cannot hold both ends
// of 10,000 connections in one. The server reads its VmRSS from
// /proc/self/status before the client connects and once every stream is
// open and has settled, after a GC, and divides the difference by -n.
//
// Loopback only; every phase is bounded by -timeout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/valyala/fasthttp"
)

const heartbeat = 30 * time.Second // longer than a measurement: no traffic at all

func main() {
	role := flag.String("role", "main", "main, server or client (the latter two are run by main)")
	mode := flag.String("mode", "", "server role: raw, endpoint or dense")
	n := flag.Int("n", 10000, "idle streams to open (under 19,000: one process holds one end of each)")
	rounds := flag.Int("rounds", 2, "measurements of each mode, alternating the order")
	addr := flag.String("addr", "", "client role: the server's loopback address")
	settle := flag.Duration("settle", time.Second, "wait after the last stream opened before measuring")
	timeout := flag.Duration("timeout", 3*time.Minute, "bound on each server process, its client included")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("idlemem " + *role + ": ")
	if *n <= 0 || *n > 19000 {
		log.Fatalf("-n %d: want 1..19000", *n)
	}

	var err error
	switch *role {
	case "main":
		err = runMain(*n, *rounds, *settle, *timeout)
	case "server":
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		var r result
		r, err = runServer(ctx, *mode, *n, *settle)
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(r)
		}
	case "client":
		err = runClient(*addr, *n)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// result is one server process's measurement.
type result struct {
	Mode       string
	Conns      int
	RSSBefore  int64 // bytes
	RSSAfter   int64
	Goroutines int   // added by the streams
	GoMem      int64 // heap in use plus stacks in use, added by the streams
}

func (r result) perConn() float64 { return float64(r.RSSAfter-r.RSSBefore) / float64(r.Conns) }

func runMain(n, rounds int, settle, timeout time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("idle streams: %d per measurement, %d rounds, %s/%s, %d CPUs, %s\n",
		n, rounds, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Printf("%-9s %7s %12s %12s %14s %12s %16s\n",
		"mode", "streams", "RSS before", "RSS after", "RSS/stream", "goroutines", "heap+stack/stream")
	per := map[string][]float64{}
	for round := 0; round < rounds; round++ {
		modes := []string{"raw", "endpoint", "dense"}
		if round%2 == 1 {
			slices.Reverse(modes)
		}
		for _, mode := range modes {
			ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
			cmd := exec.CommandContext(ctx, self, "-role=server", "-mode="+mode, "-n="+strconv.Itoa(n),
				"-settle="+settle.String(), "-timeout="+timeout.String())
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			cancel()
			if err != nil {
				return fmt.Errorf("server %s: %w", mode, err)
			}
			var r result
			if err := json.Unmarshal(out, &r); err != nil {
				return fmt.Errorf("server %s: %w in %q", mode, err, out)
			}
			per[mode] = append(per[mode], r.perConn())
			fmt.Printf("%-9s %7d %10.1f MB %10.1f MB %11.0f B %12d %14.0f B\n", r.Mode, r.Conns,
				mb(r.RSSBefore), mb(r.RSSAfter), r.perConn(), r.Goroutines, float64(r.GoMem)/float64(r.Conns))
		}
	}
	raw, ep, dense := median(per["raw"]), median(per["endpoint"]), median(per["dense"])
	fmt.Printf("median RSS per idle stream: raw loop %.0f B (%.1f KB), Endpoint %.0f B (%.1f KB): Endpoint %+.0f B; dense Endpoint %.0f B\n",
		raw, raw/1024, ep, ep/1024, ep-raw, dense)
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rss reads the process's resident set size from /proc/self/status.
func rss() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// settled runs the GC and returns RSS, Go heap+stack in use and goroutines.
func settled() (int64, int64, int, error) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r, err := rss()
	return r, int64(ms.HeapInuse + ms.StackInuse), runtime.NumGoroutine(), err
}

func runServer(ctx context.Context, mode string, n int, settle time.Duration) (result, error) {
	var h fasthttp.RequestHandler
	var open func() int64
	switch mode {
	case "raw":
		rs := newRawServer()
		defer rs.stop()
		h, open = rs.serve, rs.open.Load
	case "endpoint", "dense":
		tr := fastsse.TransportStream
		if mode == "dense" {
			tr = fastsse.TransportDense
		}
		ep, err := fastsse.New[struct{}](idle{}, &fastsse.Options{Heartbeat: heartbeat, Transport: tr})
		if err != nil {
			return result{}, err
		}
		h, open = ep.ServeFastHTTP, func() int64 { return ep.Stats().Open }
	default:
		return result{}, fmt.Errorf("unknown -mode %q", mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &fasthttp.Server{Handler: h, Logger: log.New(io.Discard, "", 0)}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	defer func() {
		_ = srv.Shutdown() // the streams watch ctx.Done and end
		<-served
	}()

	r := result{Mode: mode, Conns: n}
	var mem0 int64
	var g0 int
	if r.RSSBefore, mem0, g0, err = settled(); err != nil {
		return r, err
	}

	self, err := os.Executable()
	if err != nil {
		return r, err
	}
	client := exec.CommandContext(ctx, self, "-role=client", "-addr="+ln.Addr().String(), "-n="+strconv.Itoa(n))
	client.Stderr = os.Stderr
	hold, err := client.StdinPipe() // the client keeps its streams open until this closes
	if err != nil {
		return r, err
	}
	out, err := client.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := client.Start(); err != nil {
		return r, err
	}
	defer func() {
		hold.Close()
		_ = client.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return r, fmt.Errorf("client: %q, %v", line, err)
	}
	for open() != int64(n) {
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("%d of %d streams open: %w", open(), n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	var mem1 int64
	var g1 int
	if r.RSSAfter, mem1, g1, err = settled(); err != nil {
		return r, err
	}
	r.GoMem, r.Goroutines = mem1-mem0, g1-g0
	return r, nil
}

// idle is the Endpoint's handler: it opens the stream and never sends.
type idle struct{}

func (idle) Init(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
	return fastsse.Open(struct{}{})
}
func (idle) HandleNotify(_ any, s struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(s) }
func (idle) HandleInfo(_ any, s struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(s) }
func (idle) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (idle) Terminate(error, struct{}) {}

// rawServer is the hand-written baseline: what one writes with fasthttp
// alone for a stream that can be sent to. Each stream has a channel of
// frames, registered where senders find it, and its writer blocks on it, on
// a shared heartbeat broadcast and on the server's shutdown.
type rawServer struct {
	open atomic.Int64

	mu    sync.Mutex
	conns map[chan []byte]struct{}

	hb     atomic.Pointer[chan struct{}] // closed at each heartbeat, then replaced
	ticker *time.Ticker
	quit   chan struct{}
}

func newRawServer() *rawServer {
	rs := &rawServer{conns: map[chan []byte]struct{}{}, ticker: time.NewTicker(heartbeat), quit: make(chan struct{})}
	ch := make(chan struct{})
	rs.hb.Store(&ch)
	go func() {
		for {
			select {
			case <-rs.ticker.C:
				next := make(chan struct{})
				close(*rs.hb.Swap(&next))
			case <-rs.quit:
				return
			}
		}
	}()
	return rs
}

func (rs *rawServer) stop() {
	rs.ticker.Stop()
	close(rs.quit)
}

var rawHeartbeat = []byte(": \n\n")

func (rs *rawServer) serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		ctx.Error("405 Method Not Allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	hdr := &ctx.Response.Header
	hdr.SetContentType("text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	ctx.Response.ImmediateHeaderFlush = true
	done := ctx.Done()
	frames := make(chan []byte, 1)
	rs.mu.Lock()
	rs.conns[frames] = struct{}{}
	rs.mu.Unlock()
	rs.open.Add(1)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer func() {
			rs.mu.Lock()
			delete(rs.conns, frames)
			rs.mu.Unlock()
			rs.open.Add(-1)
		}()
		if w.Flush() != nil {
			return
		}
		for {
			var b []byte
			select {
			case b = <-frames:
			case <-*rs.hb.Load():
				b = rawHeartbeat
			case <-done:
				return
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			if w.Flush() != nil {
				return
			}
		}
	})
}

// runClient opens n idle streams to addr, says "ready", and holds them until
// its standard input closes.
func runClient(addr string, n int) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: loopback only", addr)
	}
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	const workers = 32
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				conns[i], errs[i] = openStream(addr)
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func openStream(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", addr); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		c.Close()
		return nil, fmt.Errorf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
