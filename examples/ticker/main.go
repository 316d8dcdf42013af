// Command ticker is a market feed that shows keyed conflation: a few hundred
// symbols whose prices walk at random, about a thousand updates a second in
// all, each published with its symbol as the event's conflation key. A client
// that falls behind gets the latest price of each symbol rather than every
// step, and is told what it missed (fastsse.LossEvent).
//
//	go run -C examples ./ticker -addr 127.0.0.1:8080
//
// GET / is a page with the live table; GET /?throttle=1s asks for at most
// one update per symbol per second (fastsse.Limits.KeyInterval). GET /last
// is the publisher's last value of every symbol, as JSON.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/router"
	"github.com/valyala/fasthttp"
)

//go:embed index.html
var indexHTML []byte

// maxThrottle bounds ?throttle: longer than this is not a live table.
const maxThrottle = time.Minute

// streamer is the handler of GET /stream.
type streamer struct{ m *market }

// Init reads the client's limits from the query (?throttle=DURATION for
// Limits.KeyInterval, ?events=N and ?bytes=N per second), joins the market's
// group and opens the stream with the current value of every symbol.
func (h streamer) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	lim, err := parseLimits(req.Query)
	if err != nil {
		return fastsse.Reply(fasthttp.StatusBadRequest, []byte(err.Error()+"\n"), struct{}{})
	}
	c := req.Conn()
	if lim != (fastsse.Limits{}) {
		if err := c.SetLimits(lim); err != nil {
			return fastsse.Reply(fasthttp.StatusBadRequest, []byte(err.Error()+"\n"), struct{}{})
		}
	}
	if err := h.m.group.Join(c); err != nil {
		return fastsse.Reply(fasthttp.StatusServiceUnavailable, []byte(err.Error()+"\n"), struct{}{})
	}
	// After Join: every update from now on is queued after the snapshot.
	return fastsse.Open(struct{}{}, h.m.snapshot()...)
}

func (streamer) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (streamer) HandleInfo(any, struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(struct{}{}) }
func (streamer) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (streamer) Terminate(error, struct{}) {}

// parseLimits reads ?throttle, ?events and ?bytes; absent means no limit.
func parseLimits(query func(string) string) (fastsse.Limits, error) {
	var lim fastsse.Limits
	if s := query("throttle"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > maxThrottle {
			return lim, fmt.Errorf("throttle %q: want a duration between 1ms and %v, such as 1s or 250ms", s, maxThrottle)
		}
		lim.KeyInterval = d
	}
	for _, f := range []struct {
		name string
		to   *int
	}{{"events", &lim.Events}, {"bytes", &lim.Bytes}} {
		if s := query(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return lim, fmt.Errorf("%s %q: want a positive whole number (per second)", f.name, s)
			}
			*f.to = n
		}
	}
	return lim, nil
}

// config is the ticker's settings, from its flags.
type config struct {
	symbols   int
	rate      float64
	updates   int64
	transport string
	conflate  string
	overflow  string
	queue     int
	heartbeat time.Duration
	sndbuf    int
	stall     time.Duration
	start     int
	seed      uint64
}

// options turns the flags' words into the endpoint's Options.
func (c config) options() (*fastsse.Options, error) {
	o := &fastsse.Options{QueueSize: c.queue, Heartbeat: c.heartbeat, StallTimeout: c.stall, Route: "/stream"}
	switch c.transport {
	case "stream":
	case "dense":
		o.Transport = fastsse.TransportDense
	default:
		return nil, fmt.Errorf("-transport %q: want stream or dense", c.transport)
	}
	switch c.conflate {
	case "off":
		o.Conflation = fastsse.ConflateOff
	case "backpressure":
		o.Conflation = fastsse.ConflateBackpressure
	case "always":
		o.Conflation = fastsse.ConflateAlways
	default:
		return nil, fmt.Errorf("-conflate %q: want off, backpressure or always", c.conflate)
	}
	switch c.overflow {
	case "close":
		o.Overflow = fastsse.OverflowClose
	case "drop-oldest":
		o.Overflow = fastsse.OverflowDropOldest
	case "drop-newest":
		o.Overflow = fastsse.OverflowDropNewest
	default:
		return nil, fmt.Errorf("-overflow %q: want close, drop-oldest or drop-newest", c.overflow)
	}
	switch {
	case c.symbols < 1 || c.symbols > maxSymbols:
		return nil, fmt.Errorf("-symbols %d: want 1 to %d", c.symbols, maxSymbols)
	case c.queue < 1:
		return nil, errors.New("-queue must be at least 1")
	case c.rate < 0 || c.updates < 0:
		return nil, errors.New("-rate and -updates must not be negative")
	case c.sndbuf < 0 || c.start < 0:
		return nil, errors.New("-sndbuf and -start-after must not be negative")
	}
	return o, nil
}

// app is the ticker: its market, its endpoint and its routes.
type app struct {
	m       *market
	ep      *fastsse.Endpoint
	handler fasthttp.RequestHandler
}

// newApp builds the ticker; its publisher is started by run.
func newApp(c config) (*app, error) {
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	g := fastsse.NewGroup(nil) // no replay: a new stream starts from the snapshot
	m := newMarket(g, c.symbols, c.seed)
	m.startAfter = c.start
	ep, err := fastsse.New[struct{}](streamer{m: m}, opts)
	if err != nil {
		return nil, err
	}
	r := frouter.New()
	r.GET("/", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(indexHTML)
	})
	router.Mount(r, "/stream", ep)
	r.GET("/last", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBody(m.lastJSON())
	})
	r.GET("/stats", func(ctx *fasthttp.RequestCtx) {
		s := ep.Stats()
		ctx.SetContentType("text/plain; charset=utf-8")
		fmt.Fprintf(ctx, "open %d\nevents %d\nbytes %d\ndropped %d\nconflated %d\nslow_consumers %d\n",
			s.Open, s.Events, s.Bytes, s.Dropped, s.Conflated, s.SlowConsumers)
	})
	return &app{m: m, ep: ep, handler: r.Handler}, nil
}

// listen listens on addr; with sndbuf > 0 every accepted connection gets
// that send buffer (see serve.SocketOptions): conflation works on what is
// still queued for a client, and with the kernel's own buffer, which it
// grows to megabytes, a slow client may read seconds or minutes of stale
// prices before it gets to the conflated ones.
func listen(addr string, sndbuf int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return serve.SocketOptions{SendBuffer: sndbuf}.Wrap(ln), nil
}

func main() {
	addr := serve.Addr()
	var c config
	flag.IntVar(&c.symbols, "symbols", 300, fmt.Sprintf("symbols (1 to %d)", maxSymbols))
	flag.Float64Var(&c.rate, "rate", 1000, "updates per second, all symbols together (each symbol in turn)")
	flag.Int64Var(&c.updates, "updates", 0, "stop publishing after this many updates (0: never); the server keeps serving")
	flag.IntVar(&c.start, "start-after", 0, "start publishing once this many streams are open (0: at once)")
	flag.StringVar(&c.transport, "transport", "stream", "stream or dense")
	flag.StringVar(&c.conflate, "conflate", "always", "keyed conflation: off, backpressure or always")
	flag.StringVar(&c.overflow, "overflow", "close", "what a full queue does: close, drop-oldest or drop-newest")
	flag.IntVar(&c.queue, "queue", 512, "per-connection queue size; with -conflate always it need only hold one frame per symbol")
	flag.DurationVar(&c.heartbeat, "heartbeat", 15*time.Second, "heartbeat interval; negative turns heartbeats off")
	flag.IntVar(&c.sndbuf, "sndbuf", 0, "socket send buffer of every accepted connection in bytes (SO_SNDBUF; the kernel doubles it); 0: the kernel's, which grows to megabytes")
	flag.DurationVar(&c.stall, "stall-timeout", 10*time.Second, "end a stream whose write stays unfinished this long (a client that is not reading); negative: never")
	flag.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "random seed of the prices")
	spread := serve.SpreadFlag()
	flag.Parse()
	a, err := newApp(c)
	if err != nil {
		log.Fatal(err)
	}
	if c.conflate == "always" && c.queue < c.symbols {
		log.Printf("warning: -queue %d is less than -symbols %d: a slow client's queue can overflow (-overflow %s)", c.queue, c.symbols, c.overflow)
	}
	defer a.m.group.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go a.m.run(ctx, c.rate, c.updates)
	o := serve.Options{
		Ready: func(ad net.Addr) {
			log.Printf("listening on http://%s/ (%d symbols, %g updates/s, %s transport, conflation %s, overflow %s, queue %d)",
				ad, c.symbols, c.rate, c.transport, c.conflate, c.overflow, c.queue)
		},
		Drain: []*fastsse.Endpoint{a.ep}, Spread: *spread,
	}
	ln, err := listen(*addr, c.sndbuf)
	if err != nil {
		log.Fatal(err)
	}
	if err := serve.RunListener(ctx, ln, a.handler, o); err != nil {
		a.m.group.Close()
		log.Fatal(err)
	}
}
