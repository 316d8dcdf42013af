// Command r3labs serves the feed contract (see internal/feed) with
// github.com/r3labs/sse/v2 on net/http: one Server with one stream,
// AutoReplay off, AutoStream off, and Server.Publish for every event;
// heartbeats are comment-only events published the same way.
//
//	go run ./r3labs -addr 127.0.0.1:8084 -rate 10 -size 64
//
// r3labs/sse picks the stream from the query (?stream=NAME); GET /feed
// without one is served the stream "feed", so every server answers the same
// URL. On shutdown Server.Close ends the streams, then http.Server.Shutdown.
// Under load that can take a while: the stream's goroutine finishes the
// event it is handing to every subscriber (a blocking channel send each)
// before it sees the close.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/lasse-go/lasse/bench/servers/internal/feed"
	sse "github.com/r3labs/sse/v2"
)

const stream = "feed"

func main() {
	cfg := feed.Flags(flag.CommandLine)
	flag.Parse()
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

func newServer() *sse.Server {
	s := sse.New()
	s.AutoReplay = false
	s.AutoStream = false
	s.CreateStream(stream)
	return s
}

func newHandler(s *sse.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /feed", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("stream") == "" {
			u := *r.URL
			u.RawQuery = "stream=" + stream
			r = r.WithContext(r.Context())
			r.URL = &u
		}
		s.ServeHTTP(w, r)
	})
	return mux
}

// publish sends rate events per second of size bytes until ctx is done.
func publish(ctx context.Context, s *sse.Server, rate float64, size int) {
	var id uint64
	feed.Every(ctx, rate, func() {
		id++
		// The event is shared by every subscriber's goroutine: fresh bytes.
		p := feed.AppendPayload(make([]byte, 0, size+20), time.Now().UnixNano(), size)
		s.Publish(stream, &sse.Event{ID: strconv.AppendUint(nil, id, 10), Data: p})
	})
}

func heartbeat(ctx context.Context, s *sse.Server, every time.Duration) {
	feed.EveryInterval(ctx, every, func() {
		s.Publish(stream, &sse.Event{Comment: []byte("hb")})
	})
}

func run(cfg *feed.Config) error {
	s := newServer()
	ctx, stop := feed.SignalContext()
	defer stop()
	ln, err := feed.Listen("r3labs/sse", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(s),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); publish(ctx, s, cfg.Rate, cfg.Size) }()
	go heartbeat(ctx, s, cfg.Heartbeat)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Close first: a Publish blocked on a full stream buffer returns once
	// the stream is closed, and the handlers return.
	s.Close()
	<-pubDone
	sctx, cancel := context.WithTimeout(context.Background(), feed.Grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	log.Printf("stopped")
	return err
}
