// Command lambda serves a fastsse endpoint from an AWS Lambda function URL,
// through net/http's Handler (Endpoint.HTTPHandler) and aws-lambda-go's
// lambdaurl package.
//
// The function URL must be configured with InvokeMode RESPONSE_STREAM, and
// the function built for the provided.al2023 runtime with the lambda.norpc
// build tag:
//
//	GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap .
//
// Lambda ends an invocation at the function's timeout (at most 15 minutes):
// MaxLifetime ends each stream before it with a retry hint, so the browser
// reconnects, to this or another instance, and resumes with Last-Event-ID.
//
// With -local host:port it serves the same handler from a local net/http
// server instead, where Lambda's runtime API is not to be had.
package main

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

	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/lasse-go/lasse/fastsse"
)

// clock streams the time once a second, from one group for all streams.
type clock struct{ ticks *fastsse.Group }

func (c clock) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	if err := c.ticks.Join(req.Conn()); err != nil {
		return fastsse.Reply(503, []byte(err.Error()), struct{}{})
	}
	return fastsse.Open(struct{}{}, fastsse.Event{Event: "hello", Data: "one tick a second"})
}

func (clock) HandleNotify(any, struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(struct{}{}) }
func (clock) HandleInfo(any, struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(struct{}{}) }
func (clock) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (clock) Terminate(error, struct{}) {}

// newEndpoint returns the endpoint and starts its ticker, which stops when
// stop is closed.
func newEndpoint(every time.Duration, stop <-chan struct{}) (*fastsse.Endpoint, error) {
	ticks := &fastsse.Group{}
	ep, err := fastsse.New[struct{}](clock{ticks: ticks}, &fastsse.Options{
		MaxLifetime: 14 * time.Minute, // under Lambda's 15-minute cap
		Heartbeat:   15 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case now := <-t.C:
				_, _ = ticks.Publish(&fastsse.Event{Event: "tick", Data: fmt.Sprintf("%d %s", n, now.UTC().Format(time.RFC3339))})
			case <-stop:
				return
			}
		}
	}()
	return ep, nil
}

// serveLocal serves the endpoint from a net/http server on ln until ctx
// ends, then drains it: the same handler as on Lambda, where Lambda's
// runtime API is not to be had (trying it out; bench/coldstart).
func serveLocal(ctx context.Context, ln net.Listener, ep *fastsse.Endpoint) error {
	srv := &http.Server{Handler: ep.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Drain(sctx, 0)
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("listening on http://%s/", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func main() {
	local := flag.String("local", "", "serve from a local net/http server at this address (host:port) instead of Lambda's runtime API")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ep, err := newEndpoint(time.Second, ctx.Done())
	if err != nil {
		log.Fatal(err)
	}
	if *local == "" {
		lambdaurl.Start(ep.HTTPHandler())
		return
	}
	ln, err := net.Listen("tcp", *local)
	if err != nil {
		log.Fatal(err)
	}
	if err := serveLocal(ctx, ln, ep); err != nil {
		log.Fatal(err)
	}
}
