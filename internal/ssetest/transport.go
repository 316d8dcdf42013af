package ssetest

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
)

// Transport is one way of serving an Endpoint. Every behaviour test ranges
// over Transports; a subtest named after the entry says which one ran.
type Transport struct {
	Name string
	// Set puts o on this transport.
	Set func(o *fastsse.Options)
	// ServeWith serves ep on ln with the server settings cfg until the test
	// ends; at cleanup the endpoint is drained, then the server is shut
	// down. Of the entries, only this differs between transports that share
	// a server.
	ServeWith func(tb testing.TB, ln net.Listener, ep *fastsse.Endpoint, cfg Config) *Server
}

// Config is what a test sets on the server besides the handler. The zero
// value is the server's defaults.
type Config struct {
	// ReadTimeout is the server's: how long reading a request may take.
	ReadTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration
	// KeepHijackedConns is fasthttp's: when false (its default, and the
	// examples'), fasthttp closes a hijacked connection's own wrapper when
	// the hijack handler returns. Only fasthttp hijacks; the dense transport
	// must serve either way.
	KeepHijackedConns bool
}

// ExamplesConfig is the server settings the examples run with
// (examples/internal/serve, whose test checks that they agree): the
// settings users copy.
var ExamplesConfig = Config{ReadTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}

// Transports are the transports every behaviour test runs on: "stream" and,
// where it is supported (Linux), "dense". A transport served from an
// http.Handler on net/http's server needs an entry whose ServeWith builds
// that server (newServer, then start with its Serve and Shutdown): nothing
// else in a test changes.
var Transports = []Transport{
	{Name: "stream", Set: func(o *fastsse.Options) { o.Transport = fastsse.TransportStream }, ServeWith: serveFastHTTP},
}

// serveFastHTTP serves ep's ServeFastHTTP on a fasthttp server.
func serveFastHTTP(tb testing.TB, ln net.Listener, ep *fastsse.Endpoint, cfg Config) *Server {
	tb.Helper()
	s := serveFastHTTPConfig(tb, ln, ep.ServeFastHTTP, cfg)
	s.DrainAtCleanup(ep)
	return s
}

// Options returns a copy of o (nil: defaults) on tr.
func (tr Transport) Options(o *fastsse.Options) *fastsse.Options {
	var r fastsse.Options
	if o != nil {
		r = *o
	}
	tr.Set(&r)
	return &r
}

// Serve serves ep on a fresh 127.0.0.1:0 port, with the server's default
// settings, until the test ends and returns the server.
func (tr Transport) Serve(tb testing.TB, ep *fastsse.Endpoint) *Server {
	tb.Helper()
	return tr.ServeWith(tb, Listen(tb), ep, Config{})
}

// ServeOn is Serve on ln.
func (tr Transport) ServeOn(tb testing.TB, ln net.Listener, ep *fastsse.Endpoint) *Server {
	tb.Helper()
	return tr.ServeWith(tb, ln, ep, Config{})
}

// New builds an endpoint for h with opts on tr, failing the test on error.
func New[S any](tb testing.TB, tr Transport, h fastsse.Handler[S], opts *fastsse.Options) *fastsse.Endpoint {
	tb.Helper()
	ep, err := fastsse.New(h, tr.Options(opts))
	if err != nil {
		tb.Fatal(err)
	}
	return ep
}

// Start is New, then Serve.
func Start[S any](tb testing.TB, tr Transport, h fastsse.Handler[S], opts *fastsse.Options) (*fastsse.Endpoint, *Server) {
	tb.Helper()
	ep := New(tb, tr, h, opts)
	return ep, tr.Serve(tb, ep)
}

// Get does one ordinary request with net/http's client (no keep-alive) and
// returns the response with its body read.
func Get(tb testing.TB, method, url string, header ...string) (*http.Response, string) {
	tb.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: Wait}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		tb.Fatal(err)
	}
	return resp, b.String()
}

// StreamGoroutines counts the goroutines that serve streams: the stream
// loops, the fasthttp stream writers that run them, and heartbeat wheels.
func StreamGoroutines() int { return len(streamGoroutineStacks()) }

// StreamStacks returns the stacks of the goroutines that serve streams.
func StreamStacks() string { return strings.Join(streamGoroutineStacks(), "\n\n") }

func streamGoroutineStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "fastsse.(*stream") || strings.Contains(g, "fastsse.(*core).heartbeats") ||
			strings.Contains(g, "fasthttp.NewStreamReader") {
			out = append(out, g)
		}
	}
	return out
}

// Named returns the entry of Transports called name, for a test of one
// transport's own behaviour; it fails the test when there is none here.
func Named(tb testing.TB, name string) Transport {
	tb.Helper()
	for _, tr := range Transports {
		if tr.Name == name {
			return tr
		}
	}
	tb.Fatalf("no transport %q here", name)
	panic("unreachable")
}
