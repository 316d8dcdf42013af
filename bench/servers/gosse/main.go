// Command gosse serves the feed contract (see internal/feed) with
// github.com/tmaxmax/go-sse on net/http, the way its README sets up a
// broadcast: an sse.Server with the default provider, Joe (no replayer),
// and Server.Publish for every event; heartbeats are comment-only messages
// published the same way. On shutdown the provider is shut down from
// http.Server.RegisterOnShutdown, as go-sse's cmd/complex example does,
// once the publishers have stopped and Joe is idle (see barrier).
//
//	go run ./gosse -addr 127.0.0.1:8083 -rate 10 -size 64
//
// One addition: go-sse writes the response header with a stream's first
// message, so a subscriber of a silent feed would wait for it (a load
// client's header timeout would cut it). The handler here sends the header
// at once, as the other servers do, then hands over to go-sse.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/lasse-go/lasse/bench/servers/internal/feed"
	sse "github.com/tmaxmax/go-sse"
)

func main() {
	cfg := feed.Flags(flag.CommandLine)
	flag.Parse()
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

func newHandler(s *sse.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /feed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if err := http.NewResponseController(w).Flush(); err != nil {
			return
		}
		s.ServeHTTP(w, r)
	})
	return mux
}

// publish sends rate events per second of size bytes until ctx is done.
func publish(ctx context.Context, s *sse.Server, rate float64, size int) {
	var id uint64
	var p []byte
	feed.Every(ctx, rate, func() {
		id++
		p = feed.AppendPayload(p[:0], time.Now().UnixNano(), size)
		m := &sse.Message{ID: sse.ID(strconv.FormatUint(id, 10))}
		m.AppendData(string(p))
		if err := s.Publish(m); err != nil && !errors.Is(err, sse.ErrProviderClosed) {
			log.Printf("publish: %v", err)
		}
	})
}

func heartbeat(ctx context.Context, s *sse.Server, every time.Duration) {
	feed.EveryInterval(ctx, every, func() {
		m := &sse.Message{}
		m.AppendComment("hb")
		_ = s.Publish(m)
	})
}

func run(cfg *feed.Config) error {
	s := &sse.Server{Provider: &sse.Joe{}}
	ctx, stop := feed.SignalContext()
	defer stop()
	ln, err := feed.Listen("go-sse", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(s),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		// go-sse answers a subscription its provider ended with
		// http.Error, after the header was sent: net/http logs a
		// "superfluous WriteHeader" per stream at shutdown.
		ErrorLog: log.New(quietWriter{}, "http: ", log.LstdFlags),
	}
	srv.RegisterOnShutdown(func() {
		sctx, cancel := context.WithTimeout(context.Background(), feed.Grace/2)
		defer cancel()
		_ = s.Shutdown(sctx)
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var pubs sync.WaitGroup
	pubs.Go(func() { publish(ctx, s, cfg.Rate, cfg.Size) })
	pubs.Go(func() { heartbeat(ctx, s, cfg.Heartbeat) })
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	pubs.Wait()
	barrier(s)
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

// barrier returns once Joe has finished broadcasting what was published
// before it (or after a while). Joe.Shutdown lets the subscriptions return
// while Joe may still be sending a message to each of them; a handler that
// returned has released its response, and Joe's next Send to it
// dereferences a nil bufio.Writer (go-sse v0.12.0 panics so under load).
// Joe takes a message only after the previous one went to every
// subscriber, so publishing one to a topic nobody reads waits that out.
func barrier(s *sse.Server) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := &sse.Message{}
		m.AppendComment("barrier")
		_ = s.Publish(m, "shutdown-barrier")
	}()
	select {
	case <-done:
	case <-time.After(feed.Grace / 2):
	}
}

// quietWriter passes net/http's error log to stderr but for the
// "superfluous response.WriteHeader" lines.
type quietWriter struct{}

func (quietWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("superfluous")) {
		return len(p), nil
	}
	return os.Stderr.Write(p)
}
