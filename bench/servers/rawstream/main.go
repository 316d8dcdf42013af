// Command rawstream is the floor of the stream transport: the feed contract
// (see internal/feed) written by hand on fasthttp's SetBodyStreamWriter,
// with no library in between. examples/feed with -transport stream is
// measured against it.
//
//	go run ./rawstream -addr 127.0.0.1:8082 -rate 10 -size 64
//
// The publisher encodes each event once and offers the same bytes to every
// connection's buffered channel without blocking: a full channel drops the
// frame (counted, logged at exit). Each connection's writer goroutine waits
// on its channel, a heartbeat ticker of its own and the server's shutdown
// signal (ctx.Done, captured in the handler); it writes what is pending and
// flushes once. The fasthttp server has the settings of examples/feed's
// (no WriteTimeout, CloseOnShutdown, an Accept that waits out EMFILE).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lasse-go/lasse/bench/servers/internal/feed"
	"github.com/valyala/fasthttp"
)

var heartbeat = []byte(": \n\n")

// sub is one open stream.
type sub struct{ ch chan []byte }

// hub is the set of open streams and the publisher's sequence.
type hub struct {
	queue     int
	heartbeat time.Duration

	mu   sync.RWMutex
	subs map[*sub]struct{}

	id      uint64 // the last id published; the publisher's only
	dropped atomic.Int64
}

func newHub(queue int, hb time.Duration) *hub {
	return &hub{queue: queue, heartbeat: hb, subs: map[*sub]struct{}{}}
}

// encode returns the frame of event id with payload p (a fresh slice: the
// streams hold it after publish returns).
func encode(id uint64, p []byte) []byte {
	b := make([]byte, 0, len(p)+32)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, "\ndata: "...)
	b = append(b, p...)
	return append(b, "\n\n"...)
}

// broadcast offers frame to every stream without blocking.
func (h *hub) broadcast(frame []byte) {
	h.mu.RLock()
	for s := range h.subs {
		select {
		case s.ch <- frame:
		default:
			h.dropped.Add(1)
		}
	}
	h.mu.RUnlock()
}

func (h *hub) add(s *sub) {
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

func (h *hub) handler(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != "/feed" {
		ctx.Error("404 Not Found\n", fasthttp.StatusNotFound)
		return
	}
	if !ctx.IsGet() {
		ctx.Error("405 Method Not Allowed\n", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set("Allow", "GET")
		return
	}
	hdr := &ctx.Response.Header
	hdr.SetContentType("text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	ctx.Response.ImmediateHeaderFlush = true
	// Closed only by Server.Shutdown; the writer must not touch ctx.
	done := ctx.Done()
	s := &sub{ch: make(chan []byte, h.queue)}
	h.add(s)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.remove(s)
		h.loop(w, s, done)
	})
}

// loop is a stream's writer: it returns on a write error or shutdown.
func (h *hub) loop(w *bufio.Writer, s *sub, done <-chan struct{}) {
	var tick <-chan time.Time
	if h.heartbeat > 0 {
		t := time.NewTicker(h.heartbeat)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-done:
			return
		case <-tick:
			if _, err := w.Write(heartbeat); err != nil {
				return
			}
		case f := <-s.ch:
			if _, err := w.Write(f); err != nil {
				return
			}
		drain:
			for {
				select {
				case f = <-s.ch:
					if _, err := w.Write(f); err != nil {
						return
					}
				default:
					break drain
				}
			}
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// run publishes cfg.Rate events per second until ctx is done.
func (h *hub) run(ctx context.Context, rate float64, size int) {
	var p []byte
	feed.Every(ctx, rate, func() {
		h.id++
		p = feed.AppendPayload(p[:0], time.Now().UnixNano(), size)
		h.broadcast(encode(h.id, p))
	})
}

func main() {
	cfg := feed.Flags(flag.CommandLine)
	queue := flag.Int("queue", 128, "per-connection channel of frames")
	flag.Parse()
	if *queue < 1 {
		log.Fatal("-queue must be at least 1")
	}
	if err := run(cfg, *queue); err != nil {
		log.Fatal(err)
	}
}

func run(cfg *feed.Config, queue int) error {
	h := newHub(queue, cfg.Heartbeat)
	ctx, stop := feed.SignalContext()
	defer stop()
	ln, err := feed.Listen("rawstream", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &fasthttp.Server{
		Handler:            h.handler,
		Name:               "rawstream",
		ReadTimeout:        10 * time.Second,
		IdleTimeout:        60 * time.Second,
		MaxRequestBodySize: 1 << 20,
		CloseOnShutdown:    true,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fdLimitListener{ln}) }()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); h.run(ctx, cfg.Rate, cfg.Size) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	<-pubDone
	sctx, cancel := context.WithTimeout(context.Background(), feed.Grace)
	defer cancel()
	err = srv.ShutdownWithContext(sctx)
	if serr := <-served; serr != nil && !errors.Is(serr, net.ErrClosed) && err == nil {
		err = serr
	}
	log.Printf("stopped; %d frames dropped on full channels", h.dropped.Load())
	return err
}

// fdLimitListener waits out "too many open files" from Accept, as
// examples/feed's does: fasthttp's Serve would return on it.
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
