// Command feed is the load-test feed: every subscriber of GET /feed gets
// -rate events per second of -size bytes each. Each event's data starts with
// its send time in Unix nanoseconds and a space, and each has the next id of
// one monotonic sequence, so a client can measure latency, gaps and
// duplicates.
//
// It also serves its Prometheus metrics at /metrics, a dashboard at / fed
// by its own stream of stats (/dashboard/stats), and with -pprof the
// runtime's profiles under /debug/pprof/. The examples are a module of
// their own, so that the main module depends on neither NATS nor Prometheus:
//
//	go run -C examples ./feed -addr 127.0.0.1:8080 -rate 10 -size 64
package main

import (
	"context"
	_ "embed"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/examples/internal/cluster"
	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/router"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/prefork"
	"github.com/valyala/fasthttp/reuseport"
)

//go:embed index.html
var indexHTML []byte

type subscriber struct{ feed *fastsse.Group }

func (h subscriber) Init(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	// A reconnecting client resumes; an id the ring no longer holds just
	// joins (a load client counts the gap from the ids it sees).
	_ = h.feed.Resume(req.Conn(), lastEventID)
	return fastsse.Open(struct{}{})
}

func (subscriber) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (subscriber) HandleInfo(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (subscriber) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (subscriber) Terminate(error, struct{}) {}

// app is the feed: its routes, its group and its endpoint.
type app struct {
	handler fasthttp.RequestHandler
	feed    *fastsse.Group
	ep      *fastsse.Endpoint
	obs     *observability // /metrics and the dashboard's stats (observe.go)
}

// newApp builds the feed; with a bus, every instance on it (every prefork
// child, every process) streams one sequence. Its streams and publishes
// are observed for /metrics and the dashboard.
func newApp(opts *fastsse.Options, bus fastsse.Bus) (*app, error) {
	obs, err := newObservability(bus != nil)
	if err != nil {
		return nil, err
	}
	o := fastsse.Options{}
	if opts != nil {
		o = *opts
	}
	o.Observer, o.Route = obs.prom, "/feed"
	gopts := &fastsse.GroupOptions{Replay: 4096, Observer: obs.prom}
	feed := fastsse.NewGroup(gopts)
	if bus != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if feed, err = fastsse.NewBusGroup(ctx, bus, gopts); err != nil {
			return nil, err
		}
	}
	ep, err := fastsse.New[struct{}](subscriber{feed: feed}, &o)
	if err != nil {
		return nil, err
	}
	obs.prom.Observe(ep)
	r := frouter.New()
	r.GET("/", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(indexHTML)
	})
	router.Mount(r, "/feed", ep)
	obs.mount(r)
	r.GET("/stats", func(ctx *fasthttp.RequestCtx) {
		s := ep.Stats()
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("open " + strconv.FormatInt(s.Open, 10) +
			"\nevents " + strconv.FormatInt(s.Events, 10) +
			"\nbytes " + strconv.FormatInt(s.Bytes, 10) +
			"\nslow_consumers " + strconv.FormatInt(s.SlowConsumers, 10) + "\n")
	})
	return &app{handler: r.Handler, feed: feed, ep: ep, obs: obs}, nil
}

// runPrefork runs the prefork master. With -nats embedded it hosts the
// NATS server, and its children join it: one bus, one sequence for all.
func runPrefork(addr string, procs int, natsFlag string) error {
	if port, ok := cluster.EmbeddedPort(natsFlag); ok {
		e, err := cluster.StartEmbedded(port)
		if err != nil {
			return err
		}
		defer e.Close()
		log.Printf("nats: embedded server at %s", e.URL())
		os.Setenv(cluster.EnvURL, e.URL())
	}
	return runMaster(addr, procs)
}

// publish sends rate events per second of size bytes until ctx is done.
func (a *app) publish(ctx context.Context, rate float64, size int) {
	if rate <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	var data []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data = appendPayload(data[:0], time.Now().UnixNano(), size)
		if _, err := a.feed.Publish(&fastsse.Event{DataBytes: data}); err != nil {
			log.Printf("publish: %v", err)
		}
	}
}

// appendPayload appends the send time, a space, and filler up to size bytes
// in all (never shorter than the time and the space).
func appendPayload(dst []byte, nanos int64, size int) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, nanos, 10)
	dst = append(dst, ' ')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

func main() {
	addr := serve.Addr()
	rate := flag.Float64("rate", 1, "events per second to every subscriber")
	size := flag.Int("size", 64, "bytes of data per event")
	heartbeat := flag.Duration("heartbeat", 15*time.Second, "heartbeat interval; negative turns heartbeats off")
	queue := flag.Int("queue", 0, "per-connection queue size (0: the library's default)")
	transport := flag.String("transport", "stream", "stream or dense")
	procs := flag.Int("prefork", 0, "serve from this many processes sharing the port (SO_REUSEPORT); 0: one process")
	natsFlag := cluster.Flag()
	spread := serve.SpreadFlag()
	pprof := flag.Bool("pprof", false, "serve net/http/pprof's profiles under /debug/pprof/")
	keepAlive := flag.Bool("tcp-keepalive", true, "TCP keep-alive on accepted connections (Go's default: a probe after 15 s of silence); the streams' heartbeats do the same job")
	sockBuf := flag.Int("sockbuf", 0, "set each accepted connection's kernel send and receive buffers to this many bytes (SO_SNDBUF, SO_RCVBUF), for many idle streams; 0: the kernel's defaults")
	flag.Parse()

	opts := &fastsse.Options{Heartbeat: *heartbeat, QueueSize: *queue}
	switch *transport {
	case "stream":
	case "dense":
		opts.Transport = fastsse.TransportDense
	default:
		log.Fatalf("-transport: %q is neither stream nor dense", *transport)
	}
	if err := serve.CheckSpread(*spread); err != nil {
		log.Fatal(err) // before any child starts, so that none is restarted in a loop
	}
	if *sockBuf < 0 {
		log.Fatalf("-sockbuf %d: must not be negative", *sockBuf)
	}
	if *procs > 0 && !prefork.IsChild() {
		if err := runPrefork(*addr, *procs, *natsFlag); err != nil {
			log.Fatal(err)
		}
		return
	}

	jctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cc, err := cluster.Join(jctx, *natsFlag, "feed")
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	var bus fastsse.Bus
	if cc != nil {
		bus = cc.Bus
		if *procs > 0 {
			*rate /= float64(*procs) // the children publish to one sequence: -rate in all
		}
	}
	a, err := newApp(opts, bus)
	if err != nil {
		log.Fatal(err)
	}
	defer a.feed.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go a.publish(ctx, *rate, *size)
	go a.obs.publishStats(ctx, a.ep, time.Second)
	h := a.handler
	if *pprof {
		h = withPprof(h)
	}
	o := serve.Options{
		Ready: func(ad net.Addr) {
			log.Printf("pid %d listening on http://%s/ (%s transport, rate %g/s, size %d)", os.Getpid(), ad, *transport, *rate, *size)
		},
		Drain:  []*fastsse.Endpoint{a.ep, a.obs.statsEP},
		Spread: *spread,
	}
	var ln net.Listener
	if prefork.IsChild() {
		// The cores are shared among the children, as fasthttp's own
		// prefork does: with more children than cores, one P each.
		runtime.GOMAXPROCS(max(1, runtime.NumCPU() / *procs))
		ln, err = reuseport.Listen("tcp4", *addr)
	} else {
		ln, err = net.Listen("tcp", *addr)
	}
	if err != nil {
		log.Fatal(err)
	}
	if err := serve.RunListener(ctx, serve.SocketOptions{SendBuffer: *sockBuf, ReceiveBuffer: *sockBuf, NoKeepAlive: !*keepAlive}.Wrap(ln), h, o); err != nil {
		a.feed.Close()
		cc.Close()
		log.Fatal(err)
	}
}
