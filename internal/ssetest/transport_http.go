package ssetest

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/lasse-go/lasse/fastsse"
)

// The net/http transport: the endpoint's HTTPHandler on a net/http server.
func init() {
	Transports = append(Transports, Transport{
		Name:      "http",
		Set:       func(o *fastsse.Options) {},
		ServeWith: serveHTTP,
	})
}

func serveHTTP(tb testing.TB, ln net.Listener, ep *fastsse.Endpoint, cfg Config) *Server {
	tb.Helper()
	srv := &http.Server{Handler: ep.HTTPHandler(), ReadTimeout: cfg.ReadTimeout, IdleTimeout: cfg.IdleTimeout}
	s := &Server{Addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	s.log.tb = tb
	s.shutdown = func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil {
			_ = srv.Close()
		}
		return err
	}
	go func() { _ = srv.Serve(ln); close(s.done) }()
	s.DrainAtCleanup(ep)
	tb.Cleanup(func() { s.cleanup(tb) })
	return s
}
