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
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/valyala/fasthttp"
)

// Grace is how long a shutdown may take: Cloud Run gives 10 s after SIGTERM.
const Grace = 10 * time.Second

// MaxSpread is the longest drain spread the examples accept: the drain must
// end every stream and leave the server time to shut down, all within Grace.
// A longer one is refused at start-up (see CheckSpread), not cut short at
// Grace, where the process would exit with streams still open and their
// clients without a retry hint.
const MaxSpread = Grace - 2*time.Second

// CheckSpread returns an error when d is not a drain spread the examples can
// keep: negative, or longer than MaxSpread.
func CheckSpread(d time.Duration) error {
	if d < 0 || d > MaxSpread {
		return fmt.Errorf("-drain-spread %v: must be between 0 and %v, so that the drain and the shutdown fit in the %v grace period", d, MaxSpread, Grace)
	}
	return nil
}

// Addr registers the -addr flag every example takes.
func Addr() *string {
	return flag.String("addr", "127.0.0.1:8080", "address to listen on")
}

// MaxBody bounds a request body: a larger one is answered 413.
const MaxBody = 1 << 20

// errorHandler answers a request fasthttp could not read: 413 for a body
// over MaxBody (fasthttp's default answers 400 for it), else as fasthttp's
// default does.
func errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr *net.OpError
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error(fmt.Sprintf("413 Request Entity Too Large: at most %d bytes\n", MaxBody), fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		ctx.Error("431 Request Header Fields Too Large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &netErr) && netErr.Timeout():
		ctx.Error("408 Request Timeout\n", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("400 Bad Request: the request could not be read\n", fasthttp.StatusBadRequest)
	}
}

// Options are what an example passes besides its handler.
type Options struct {
	// Ready, when set, is called with the bound address once listening.
	Ready func(net.Addr)
	// Drain lists the endpoints to drain before the server shuts down.
	Drain []*fastsse.Endpoint
	// Spread is the period the drain spreads the streams' ends over.
	Spread time.Duration
}

// Run serves h on addr until SIGINT or SIGTERM, then shuts down. It returns
// when the server has stopped.
func Run(addr string, h fasthttp.RequestHandler, o Options) error {
	return runOn(addr, o, func(ctx context.Context, ln net.Listener) error { return RunListener(ctx, ln, h, o) })
}

// RunHTTP is Run with h served by net/http (NewHTTPServer).
func RunHTTP(addr string, h http.Handler, o Options) error {
	return runOn(addr, o, func(ctx context.Context, ln net.Listener) error { return RunHTTPListener(ctx, ln, h, o) })
}

// runOn listens on addr and runs run until SIGINT or SIGTERM.
func runOn(addr string, o Options, run func(context.Context, net.Listener) error) error {
	if err := CheckSpread(o.Spread); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, ln)
}

// RunListener serves h on ln until ctx is done; then it drains the
// endpoints, spreading their streams' ends over o.Spread, and shuts the
// server down, all within Grace. A spread that CheckSpread refuses is an
// error at once: ln is closed and nothing is served.
func RunListener(ctx context.Context, ln net.Listener, h fasthttp.RequestHandler, o Options) error {
	srv := NewServer(h)
	return runServer(ctx, ln, o, func() error { return srv.Serve(fdLimitListener{ln}) }, srv.ShutdownWithContext)
}

// RunHTTPListener is RunListener with h served by net/http
// (NewHTTPServer).
func RunHTTPListener(ctx context.Context, ln net.Listener, h http.Handler, o Options) error {
	srv := NewHTTPServer(h)
	return runServer(ctx, ln, o, func() error { return srv.Serve(ln) }, srv.Shutdown)
}

// runServer runs serve until ctx is done, then drains o's endpoints and
// calls shutdown, all within Grace.
func runServer(ctx context.Context, ln net.Listener, o Options, serve func() error, shutdown func(context.Context) error) error {
	if err := CheckSpread(o.Spread); err != nil {
		_ = ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- serve() }()
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), Grace)
	defer cancel()
	for _, ep := range o.Drain {
		log.Printf("draining %d streams over %v", ep.Stats().Open, o.Spread)
		if err := ep.Drain(sctx, o.Spread); err != nil {
			log.Printf("drain: %v", err)
		}
	}
	err := shutdown(sctx)
	if serr := <-served; serr != nil && !errors.Is(serr, net.ErrClosed) && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// NewHTTPServer is the net/http server an example runs h on with -http, at
// the settings of NewServer: the same read and idle timeouts, no write
// timeout (it would cut every stream). Request bodies are bounded by the
// handler (http.MaxBytesReader), net/http having no server-wide bound.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:     h,
		ReadTimeout: 10 * time.Second,
		IdleTimeout: 60 * time.Second,
	}
}

// NewServer is the fasthttp server every example runs h on.
func NewServer(h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: h,
		Name:    "lasse-example",
		// WriteTimeout stays 0: it is one deadline for a whole response,
		// and would cut every stream.
		ReadTimeout:        10 * time.Second,
		IdleTimeout:        60 * time.Second,
		MaxRequestBodySize: MaxBody,
		CloseOnShutdown:    true,
		ErrorHandler:       errorHandler,
	}
}

// Main runs an example until SIGINT or SIGTERM and exits non-zero on error.
func Main(addr string, h fasthttp.RequestHandler, o Options) {
	o.Ready = func(a net.Addr) { log.Printf("listening on http://%s/", a) }
	if err := Run(addr, h, o); err != nil {
		log.Fatal(err)
	}
}

// SpreadFlag registers the -drain-spread flag.
func SpreadFlag() *time.Duration {
	return flag.Duration("drain-spread", 5*time.Second, fmt.Sprintf("on SIGINT/SIGTERM, spread the ends of open streams over this period (at most %v, so that the drain and the shutdown fit in %v)", MaxSpread, Grace))
}

// fdLimitListener waits out "too many open files" from Accept. fasthttp's
// Serve treats any Accept error but a timeout as permanent and returns, so
// a server at its open-files limit (20,000 per process on this kind of
// machine) would stop serving everyone; net/http sleeps and retries, as
// this does.
type fdLimitListener struct{ net.Listener }

func (l fdLimitListener) Accept() (net.Conn, error) {
	var last time.Time
	for {
		c, err := l.Listener.Accept()
		if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
			return c, err
		}
		if time.Since(last) > time.Second {
			log.Printf("accept: %v; retrying", err)
			last = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}
