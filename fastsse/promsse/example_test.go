package promsse_test

import (
	"log"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// One Collector hears an endpoint and its group, and serves /metrics
// beside the stream on the same fasthttp server.
func Example() {
	c := promsse.New(nil)
	g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 100, Observer: c})
	ep, err := fastsse.New[struct{}](&feed{g: g}, &fastsse.Options{Observer: c, Route: "/feed"})
	if err != nil {
		log.Fatal(err)
	}
	c.Observe(ep)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	handler := func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/feed":
			ep.ServeFastHTTP(ctx)
		case "/metrics":
			metrics(ctx)
		default:
			ctx.NotFound()
		}
	}
	_ = handler // fasthttp.ListenAndServe(addr, handler)
}
