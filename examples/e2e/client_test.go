package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse/sseclient"
)

// TestNewsReconnectGo is TestNewsReconnectInBrowser with the project's Go
// client in the browser's place: the stream is cut, an item is published
// while the client cannot reach the server, and when it can again the
// client's reconnection carries Last-Event-ID and gets that item exactly
// once, after the first.
func TestNewsReconnectGo(t *testing.T) {
	srv := startExample(t, "news")
	px := newProxy(t, srv.addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	opened := make(chan struct{}, 8)
	var mu sync.Mutex
	var errs []string
	s := sseclient.Connect(ctx, "http://"+px.addr()+"/news", &sseclient.Options{
		Backoff:   sseclient.Backoff{Initial: 50 * time.Millisecond, Max: time.Second},
		OnConnect: func(*http.Response) { opened <- struct{}{} },
		OnError: func(err error, _ time.Duration) {
			mu.Lock()
			errs = append(errs, err.Error())
			mu.Unlock()
		},
	})
	events := make(chan sseclient.Event, 16)
	ended := make(chan error, 1)
	go func() {
		for ev, err := range s.Events() {
			if err != nil {
				ended <- err
				return
			}
			events <- ev.Clone()
		}
	}()
	defer func() {
		cancel()
		if err := <-ended; err != context.Canceled {
			t.Errorf("the stream ended with %v, want the test's cancel", err)
		}
	}()
	next := func(what string) sseclient.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case err := <-ended:
			t.Fatalf("%s: the stream ended: %v", what, err)
		case <-time.After(waitLimit):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: nothing within %v; errors: %q; connections: %v", what, waitLimit, errs, px.seen())
		}
		return sseclient.Event{}
	}
	waitOpen := func(what string) {
		t.Helper()
		select {
		case <-opened:
		case <-time.After(waitLimit):
			t.Fatalf("%s: no stream opened within %v", what, waitLimit)
		}
	}

	waitOpen("the first stream")
	idA := postNews(t, srv, "item A")
	if ev := next("item A"); string(ev.ID) != idA || string(ev.Data) != "item A" {
		t.Fatalf("first event %q %q, want %s, item A", ev.ID, ev.Data, idA)
	}

	px.cutAndHold()
	var held []request
	if err := waitUntil(func() bool {
		held = held[:0]
		for _, r := range px.seen() {
			if r.held && strings.HasPrefix(r.head, "GET /news ") {
				held = append(held, r)
			}
		}
		return len(held) > 0
	}); err != nil {
		t.Fatalf("the client did not try to reconnect: %v; connections: %v", err, px.seen())
	}
	if m := lastEventID.FindStringSubmatch(held[0].head); m == nil || m[1] != idA {
		t.Errorf("the reconnection does not carry Last-Event-ID: %s:\n%s", idA, held[0].head)
	}
	idB := postNews(t, srv, "item B") // while the client is away
	px.open()
	waitOpen("the stream after the reconnection")
	if ev := next("item B"); string(ev.ID) != idB || string(ev.Data) != "item B" {
		t.Errorf("after the reconnection: %q %q, want %s, item B", ev.ID, ev.Data, idB)
	}
	select {
	case ev := <-events:
		t.Errorf("one more event: %q %q", ev.ID, ev.Data)
	case <-time.After(settle):
	}
	mu.Lock()
	t.Logf("errors the client recovered from: %q", errs)
	mu.Unlock()
}
