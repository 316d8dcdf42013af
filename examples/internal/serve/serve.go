// Package serve runs the example servers: listen, serve, and on SIGINT or
// SIGTERM shut down within a grace period, ending every open stream.
package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Grace is how long a shutdown may take: Cloud Run gives 10 s after SIGTERM.
const Grace = 10 * time.Second

// Addr registers the -addr flag every example takes.
func Addr() *string {
	return flag.String("addr", "127.0.0.1:8080", "address to listen on")
}

// Run serves h on addr until SIGINT or SIGTERM, then shuts down. It returns
// when the server has stopped. ready, when not nil, is called with the bound
// address once the listener is open.
func Run(addr string, h fasthttp.RequestHandler, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunListener(ctx, ln, h, ready)
}

// RunListener serves h on ln until ctx is done, then shuts down within Grace.
func RunListener(ctx context.Context, ln net.Listener, h fasthttp.RequestHandler, ready func(net.Addr)) error {
	srv := &fasthttp.Server{
		Handler: h,
		Name:    "lasse-example",
		// WriteTimeout stays 0: it is one deadline for a whole response,
		// and would cut every stream.
		ReadTimeout:        10 * time.Second,
		IdleTimeout:        60 * time.Second,
		MaxRequestBodySize: 1 << 20,
		CloseOnShutdown:    true,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Printf("shutting down: ending open streams")
	sctx, cancel := context.WithTimeout(context.Background(), Grace)
	defer cancel()
	err := srv.ShutdownWithContext(sctx)
	if serr := <-served; serr != nil && !errors.Is(serr, net.ErrClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Main runs an example and exits non-zero on error.
func Main(addr string, h fasthttp.RequestHandler) {
	err := Run(addr, h, func(a net.Addr) { log.Printf("listening on http://%s/", a) })
	if err != nil {
		log.Fatal(err)
	}
}
