// Command httpsse is the serverless case of bench/coldstart: a fastsse
// endpoint served through net/http (Endpoint.HTTPHandler), shaped as
// examples/lambda is (one group, one tick a second, a "hello" event when a
// stream opens), but on a local net/http server instead of Lambda's
// runtime API, which does not run here.
//
//	httpsse -addr 127.0.0.1:8080
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

	"github.com/lasse-go/lasse/fastsse"
)

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

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ticks := &fastsse.Group{}
	ep, err := fastsse.New[struct{}](clock{ticks: ticks}, &fastsse.Options{MaxLifetime: 14 * time.Minute, Heartbeat: 15 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case now := <-t.C:
				_, _ = ticks.Publish(&fastsse.Event{Event: "tick", Data: fmt.Sprintf("%d %s", n, now.UTC().Format(time.RFC3339))})
			case <-ctx.Done():
				return
			}
		}
	}()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: ep.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Drain(sctx, 0)
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("listening on http://%s/", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
