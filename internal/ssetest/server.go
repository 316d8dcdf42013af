package ssetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/valyala/fasthttp"
)

// Server is a server on a loopback port, shut down at cleanup.
type Server struct {
	Addr string
	// Srv is the fasthttp server; nil on a transport served by another.
	Srv *fasthttp.Server

	ln       net.Listener
	shutdown func(ctx context.Context) error
	drain    []*fastsse.Endpoint
	done     chan struct{} // closed when Serve has returned
	log      serverLog
	once     sync.Once
	err      error // ShutdownContext's
}

// serverLog sends the server's log lines (a connection closed under a
// write, for one) to the test's log while the test runs.
type serverLog struct {
	tb  testing.TB
	off atomic.Bool
}

func (l *serverLog) Printf(format string, args ...any) {
	if !l.off.Load() {
		l.tb.Logf("server: "+format, args...)
	}
}

// Listen returns a fresh listener on 127.0.0.1:0.
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// ServeFastHTTP serves h with fasthttp on a fresh 127.0.0.1:0 port until the
// test ends.
func ServeFastHTTP(tb testing.TB, h fasthttp.RequestHandler) *Server {
	tb.Helper()
	return ServeFastHTTPOn(tb, Listen(tb), h)
}

// ServeFastHTTPOn serves h with fasthttp on ln until the test ends. At
// cleanup the endpoints given to DrainAtCleanup are drained (hijacked
// streams are invisible to Shutdown), then the server is shut down.
func ServeFastHTTPOn(tb testing.TB, ln net.Listener, h fasthttp.RequestHandler) *Server {
	tb.Helper()
	return serveFastHTTPConfig(tb, ln, h, Config{})
}

func serveFastHTTPConfig(tb testing.TB, ln net.Listener, h fasthttp.RequestHandler, cfg Config) *Server {
	tb.Helper()
	s := newServer(tb, ln)
	s.Srv = &fasthttp.Server{Handler: h, ReadTimeout: cfg.ReadTimeout, IdleTimeout: cfg.IdleTimeout,
		KeepHijackedConns: cfg.KeepHijackedConns, Logger: &s.log}
	s.start(tb, s.Srv.Serve, s.Srv.ShutdownWithContext)
	return s
}

// newServer is a Server for ln, not serving yet: give its log to the
// server's logger, then start it. A server of another kind (net/http's
// Serve and Shutdown, with an ErrorLog that prints to s.log) starts the
// same way.
func newServer(tb testing.TB, ln net.Listener) *Server {
	s := &Server{Addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	s.log.tb = tb
	return s
}

// start runs serve(ln) on a goroutine of its own until shutdown, which must
// make serve return, and registers the cleanup: drain, then shutdown.
func (s *Server) start(tb testing.TB, serve func(net.Listener) error, shutdown func(context.Context) error) {
	s.shutdown = shutdown
	go func() { _ = serve(s.ln); close(s.done) }()
	tb.Cleanup(func() { s.cleanup(tb) })
}

// DrainAtCleanup has the endpoints drained, at once, before the server is
// shut down at cleanup.
func (s *Server) DrainAtCleanup(eps ...*fastsse.Endpoint) { s.drain = append(s.drain, eps...) }

func (s *Server) cleanup(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	for _, ep := range s.drain {
		if err := ep.Drain(ctx, 0); err != nil {
			tb.Errorf("Drain at cleanup: %v", err)
		}
	}
	s.Shutdown(tb)
}

// Shutdown shuts the server down and waits for Serve to return (see
// ShutdownContext), failing the test on error with the stacks of the
// streams left. It may be called more than once.
func (s *Server) Shutdown(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := s.ShutdownContext(ctx); err != nil {
		// A stream that does not end would hang the test binary: fail
		// with the stacks of the streams instead.
		tb.Errorf("Shutdown: %v; stream goroutines:\n%s", err, StreamStacks())
	}
}

// ShutdownContext shuts the server down as its transport does (on fasthttp,
// Server.ShutdownWithContext: every stream but hijacked ones ends) and
// waits for Serve to return, until ctx is done. Only the first call shuts
// down; later ones return its error.
func (s *Server) ShutdownContext(ctx context.Context) error {
	s.once.Do(func() {
		s.err = s.shutdown(ctx)
		// Shutdown returns at once when Serve has not registered its
		// listener yet; closing the listener makes such a Serve return too.
		_ = s.ln.Close()
		select {
		case <-s.done:
			s.log.off.Store(true)
		case <-ctx.Done():
			s.err = errors.Join(s.err, fmt.Errorf("Serve did not return after Shutdown: %w", ctx.Err()))
		}
	})
	return s.err
}
