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
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/examples/internal/cluster"
	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/lasse-go/lasse/router"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
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

// app is the news: its group, its endpoint and its metrics, served by
// fasthttp (fastHandler) or net/http (httpHandler), with the same routes.
type app struct {
	news *fastsse.Group
	ep   *fastsse.Endpoint
	prom *promsse.Collector
}

// build makes the news: keep is how many news the replay ring holds. With
// a bus, the news go through it: every instance on the bus streams every
// news, and a client resumes on any of them. Streams and publishes are
// observed for GET /metrics. The routes: / (the page), GET /news (the
// stream), POST /news (publish), GET /metrics.
func build(keep int, bus fastsse.Bus) (*app, error) {
	prom := promsse.New(&promsse.Options{Bus: bus != nil}) // lasse_bus_* with a bus
	gopts := &fastsse.GroupOptions{Replay: keep, Observer: prom}
	news := fastsse.NewGroup(gopts)
	if bus != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if news, err = fastsse.NewBusGroup(ctx, bus, gopts); err != nil {
			return nil, err
		}
	}
	ep, err := fastsse.New[struct{}](reader{news: news}, &fastsse.Options{Observer: prom, Route: "/news"})
	if err != nil {
		return nil, err
	}
	prom.Observe(ep)
	return &app{news: news, ep: ep, prom: prom}, nil
}

func (a *app) fastHandler() fasthttp.RequestHandler {
	r := frouter.New()
	r.GET("/", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(indexHTML)
	})
	router.Mount(r, "/news", a.ep)
	r.GET("/metrics", fasthttpadaptor.NewFastHTTPHandler(metricsHandler(a.prom)))
	// POST /news?event=TYPE with the data as the raw body, line breaks and
	// all. A body over serve.MaxBody is answered 413 before it gets here.
	r.POST("/news", func(ctx *fasthttp.RequestCtx) {
		code, answer := a.publish(string(ctx.QueryArgs().Peek("event")), ctx.PostBody())
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(code)
		ctx.SetBodyString(answer)
	})
	return r.Handler
}

// httpHandler is fastHandler's routes on net/http: GET /news is the
// endpoint's HTTPHandler.
func (a *app) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(indexHTML)
	})
	mux.Handle("/news", a.ep.HTTPHandler()) // every method but POST: GET streams, the rest is 405
	mux.HandleFunc("POST /news", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, serve.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("413 Request Entity Too Large: at most %d bytes", serve.MaxBody), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "400 Bad Request: the body could not be read", http.StatusBadRequest)
			return
		}
		code, answer := a.publish(r.URL.Query().Get("event"), body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, answer)
	})
	mux.Handle("GET /metrics", metricsHandler(a.prom))
	return mux
}

// publish publishes one news of type eventType with body as its data, and
// says how to answer: 200 and the news' id, 400 for an event that cannot
// be sent, 503 when the bus cannot take it (NATS unreachable past the
// publish timeout): try again.
func (a *app) publish(eventType string, body []byte) (int, string) {
	if body == nil {
		body = []byte{} // an empty body is an explicitly empty message
	}
	// Publish encodes the event at once: body need not outlive the call.
	id, err := a.news.Publish(&fastsse.Event{Event: eventType, DataBytes: body})
	switch {
	case err == nil:
		return http.StatusOK, id
	case errors.Is(err, fastsse.ErrInvalidID) || errors.Is(err, fastsse.ErrInvalidType) || errors.Is(err, fastsse.ErrDataRequired):
		return http.StatusBadRequest, err.Error()
	default:
		return http.StatusServiceUnavailable, err.Error()
	}
}

func main() {
	addr := serve.Addr()
	keep := flag.Int("keep", 1000, "news kept for clients that reconnect")
	natsFlag := cluster.Flag()
	spread := serve.SpreadFlag()
	onHTTP := flag.Bool("http", false, "serve from net/http (the endpoint's HTTPHandler) instead of fasthttp")
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
	a, err := build(*keep, bus)
	if err != nil {
		log.Fatal(err)
	}
	defer a.news.Close()
	o := serve.Options{
		Ready: func(ad net.Addr) { log.Printf("listening on http://%s/", ad) },
		Drain: []*fastsse.Endpoint{a.ep}, Spread: *spread,
	}
	if *onHTTP {
		err = serve.RunHTTP(*addr, a.httpHandler(), o)
	} else {
		err = serve.Run(*addr, a.fastHandler(), o)
	}
	if err != nil {
		a.news.Close()
		cc.Close()
		log.Fatal(err)
	}
}
