// Command pingpong is lasse's ping_pong example on fasthttp: browsers hold
// an event stream at GET /pong, and every GET or POST /ping makes each of
// them receive a "pong" event.
//
//	go run ./examples/pingpong -addr 127.0.0.1:8080
package main

import (
	_ "embed"
	"flag"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/router"
	"github.com/valyala/fasthttp"
)

//go:embed index.html
var indexHTML []byte

// pong is the stream's handler (lasse's pong_handler): it joins the group
// in Init and answers every notification with a "pong" event.
type pong struct{ group *fastsse.Group }

// pongs counts the pongs a connection was sent.
type pongs int

func (h pong) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[pongs] {
	if err := h.group.Join(req.Conn()); err != nil {
		return fastsse.Reply(fasthttp.StatusServiceUnavailable, []byte(err.Error()), pongs(0))
	}
	return fastsse.Open(pongs(0))
}

func (pong) HandleNotify(_ any, n pongs) fastsse.Result[pongs] {
	return fastsse.Send(fastsse.Event{Data: "pong"}, n+1)
}

func (pong) HandleInfo(_ any, n pongs) fastsse.Result[pongs] { return fastsse.NoSend(n) }

func (pong) HandleError(_ fastsse.Event, _ error, n pongs) pongs { return n }

func (pong) Terminate(error, pongs) {}

// newApp returns the example's routes: / (the page), /pong and /ping.
func newApp() (fasthttp.RequestHandler, *fastsse.Endpoint, error) {
	group := &fastsse.Group{}
	ep, err := fastsse.New[pongs](pong{group: group}, nil)
	if err != nil {
		return nil, nil, err
	}
	r := frouter.New()
	r.GET("/", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(indexHTML)
	})
	router.Mount(r, "/pong", ep)
	ping := func(ctx *fasthttp.RequestCtx) { // lasse's ping_handler
		group.Notify("ping")
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ack")
	}
	r.GET("/ping", ping)
	r.POST("/ping", ping)
	return r.Handler, ep, nil
}

func main() {
	addr := serve.Addr()
	spread := serve.SpreadFlag()
	flag.Parse()
	h, ep, err := newApp()
	if err != nil {
		panic(err)
	}
	serve.Main(*addr, h, serve.Options{Drain: []*fastsse.Endpoint{ep}, Spread: *spread})
}
