// Command news is a news feed after inaka/canillita: POST /news publishes
// an event, GET /news streams them with ids, and a client that reconnects
// gets what it missed.
//
//	go run -C examples ./news -addr 127.0.0.1:8080
//
// GET /metrics is its Prometheus metrics. With -nats, several instances
// share the news over NATS JetStream (see the README).
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"log"
	"net"
	"time"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/examples/internal/cluster"
	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/lasse-go/lasse/router"
	"github.com/valyala/fasthttp"
)

//go:embed index.html
var indexHTML []byte

type reader struct{ news *fastsse.Group }

func (h reader) Init(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	// A browser sends Last-Event-ID only when it reconnects; a page that
	// opens a new EventSource passes the id in the query instead.
	if lastEventID == "" {
		lastEventID = req.Query("lastEventId")
	}
	// When the ring no longer holds what the client missed (or the id is
	// another server's, or from before a restart), Resume queues a
	// fastsse.GapEvent ("lasse-gap") for it and answers ErrReplayGap: the
	// page then reloads the list.
	err := h.news.Resume(req.Conn(), lastEventID)
	if err != nil && !errors.Is(err, fastsse.ErrReplayGap) {
		return fastsse.Reply(fasthttp.StatusServiceUnavailable, []byte(err.Error()), struct{}{})
	}
	return fastsse.Open(struct{}{})
}

func (reader) HandleNotify(any, struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(struct{}{}) }
func (reader) HandleInfo(any, struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(struct{}{}) }
func (reader) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (reader) Terminate(error, struct{}) {}

// newApp returns the routes: / (the page), GET /news (the stream) and
// POST /news (publish). keep is how many news the replay ring holds. With
// a bus, the news go through it: every instance on the bus streams every
// news, and a client resumes on any of them. Streams and publishes are
// observed for GET /metrics.
func newApp(keep int, bus fastsse.Bus) (fasthttp.RequestHandler, *fastsse.Endpoint, *fastsse.Group, error) {
	prom := promsse.New(nil)
	gopts := &fastsse.GroupOptions{Replay: keep, Observer: prom}
	news := fastsse.NewGroup(gopts)
	if bus != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if news, err = fastsse.NewBusGroup(ctx, bus, gopts); err != nil {
			return nil, nil, nil, err
		}
	}
	ep, err := fastsse.New[struct{}](reader{news: news}, &fastsse.Options{Observer: prom, Route: "/news"})
	if err != nil {
		return nil, nil, nil, err
	}
	prom.Observe(ep)
	r := frouter.New()
	r.GET("/", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(indexHTML)
	})
	router.Mount(r, "/news", ep)
	r.GET("/metrics", metricsHandler(prom))
	// POST /news?event=TYPE with the data as the raw body, line breaks and
	// all. Publish encodes it at once, so the body need not outlive the
	// handler. The answer is the news' id. A body over serve.MaxBody is
	// answered 413 before it gets here.
	r.POST("/news", func(ctx *fasthttp.RequestCtx) {
		body := ctx.PostBody()
		if body == nil {
			body = []byte{} // an empty body is an explicitly empty message
		}
		id, err := news.Publish(&fastsse.Event{
			Event:     string(ctx.QueryArgs().Peek("event")),
			DataBytes: body,
		})
		ctx.SetContentType("text/plain; charset=utf-8")
		if err != nil {
			// The event's own fault is 400; the bus's (NATS unreachable
			// past the publish timeout) is 503: try again.
			code := fasthttp.StatusServiceUnavailable
			if errors.Is(err, fastsse.ErrInvalidID) || errors.Is(err, fastsse.ErrInvalidType) || errors.Is(err, fastsse.ErrDataRequired) {
				code = fasthttp.StatusBadRequest
			}
			ctx.SetStatusCode(code)
			ctx.SetBodyString(err.Error())
			return
		}
		ctx.SetBodyString(id)
	})
	return r.Handler, ep, news, nil
}

func main() {
	addr := serve.Addr()
	keep := flag.Int("keep", 1000, "news kept for clients that reconnect")
	natsFlag := cluster.Flag()
	spread := serve.SpreadFlag()
	flag.Parse()
	var bus fastsse.Bus
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cc, err := cluster.Join(ctx, *natsFlag, "news")
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	if cc != nil {
		bus = cc.Bus
	}
	h, ep, news, err := newApp(*keep, bus)
	if err != nil {
		log.Fatal(err)
	}
	defer news.Close()
	if err := serve.Run(*addr, h, serve.Options{
		Ready: func(a net.Addr) { log.Printf("listening on http://%s/", a) },
		Drain: []*fastsse.Endpoint{ep}, Spread: *spread,
	}); err != nil {
		news.Close()
		cc.Close()
		log.Fatal(err)
	}
}
