// Command news is a news feed after inaka/canillita: POST /news publishes
// an event, GET /news streams them with ids, and a client that reconnects
// gets what it missed.
//
// GET /metrics is its Prometheus metrics. It is a module of its own, so
// that the main module does not depend on Prometheus:
//
//	go run -C examples/news . -addr 127.0.0.1:8080
package main

import (
	_ "embed"
	"errors"
	"flag"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/lasse-go/lasse/router"
	"github.com/valyala/fasthttp"
)

//go:embed index.html
var indexHTML []byte

// gapEvent is the event type sent first to a client whose last event id is
// no longer (or never was) in the replay ring: it may have missed news.
const gapEvent = "gap"

type reader struct{ news *fastsse.Group }

func (h reader) Init(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	// A browser sends Last-Event-ID only when it reconnects; a page that
	// opens a new EventSource passes the id in the query instead.
	if lastEventID == "" {
		lastEventID = req.Query("lastEventId")
	}
	err := h.news.Resume(req.Conn(), lastEventID)
	switch {
	case errors.Is(err, fastsse.ErrReplayGap):
		return fastsse.Open(struct{}{}, fastsse.Event{
			Event: gapEvent,
			Data:  "news after id " + lastEventID + " are no longer kept; reload the list",
		})
	case err != nil:
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
// POST /news (publish). keep is how many news the replay ring holds.
func newApp(keep int) (fasthttp.RequestHandler, *fastsse.Endpoint, error) {
	prom := promsse.New(nil)
	news := fastsse.NewGroup(&fastsse.GroupOptions{Replay: keep, Observer: prom})
	ep, err := fastsse.New[struct{}](reader{news: news}, &fastsse.Options{Observer: prom, Route: "/news"})
	if err != nil {
		return nil, nil, err
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
	// handler. The answer is the news' id.
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
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			ctx.SetBodyString(err.Error())
			return
		}
		ctx.SetBodyString(id)
	})
	return r.Handler, ep, nil
}

func main() {
	addr := serve.Addr()
	keep := flag.Int("keep", 1000, "news kept for clients that reconnect")
	spread := serve.SpreadFlag()
	flag.Parse()
	h, ep, err := newApp(*keep)
	if err != nil {
		panic(err)
	}
	serve.Main(*addr, h, serve.Options{Drain: []*fastsse.Endpoint{ep}, Spread: *spread})
}
