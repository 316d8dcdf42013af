package sseclient_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/sseclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fast is a client's backoff for tests: quick, jitter on.
var fast = sseclient.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}

// readFeed reads n events of the feed with ids EPOCH-1..EPOCH-N and fails
// on a gap or a duplicate; it returns the stream's final error, if it
// ended early.
func readFeed(t *testing.T, s *sseclient.Stream, n int) {
	t.Helper()
	var c counter
	for ev, err := range s.Events() {
		require.NoError(t, err)
		require.Equal(t, "message", string(ev.Type))
		require.NoError(t, c.add(string(ev.ID)))
		require.Equal(t, "event "+strconv.Itoa(c.next), string(ev.Data))
		if c.next == n {
			return
		}
	}
	t.Fatal("Events ended early")
}

// Streams end by MaxLifetime every ~200 ms, with a retry hint; the client
// resumes each time with Last-Event-ID and gets every event once.
func TestLifetime(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		f := &feed{group: fastsse.NewGroup(&fastsse.GroupOptions{Replay: 1000})}
		srv := serve(t, f, tr, fastsse.Options{MaxLifetime: 200 * time.Millisecond, Retry: 20 * time.Millisecond}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		var opened conns
		var errs []error
		s := sseclient.Connect(ctx, srv.url, &sseclient.Options{
			Backoff:   fast,
			OnConnect: opened.hook(),
			OnError:   func(err error, _ time.Duration) { errs = append(errs, err) },
		})
		const n = 300
		pub, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { opened.wait(pub); f.publish(pub, n, 4*time.Millisecond) })
		defer func() { stop(); wg.Wait() }()
		readFeed(t, s, n)
		assert.GreaterOrEqual(t, opened.n.Load(), int64(3), "streams opened over ~1.2 s of 200 ms lifetimes")
		ids := f.inits()
		assert.Equal(t, "", ids[0])
		for _, id := range ids[1:] {
			assert.NotEmpty(t, id, "every reconnection sends Last-Event-ID")
		}
		for _, err := range errs {
			assert.Contains(t, err.Error(), "ended the stream", "only clean ends")
		}
	})
}

// Drain ends the stream with a retry hint; the client comes back to the
// endpoint that replaced the drained one and resumes without loss. The new
// stream runs for 1.5 s more, past the 1 s write deadline that Drain leaves
// on a stream transport's connection: it is not cut, because the client
// reconnects on a new connection (on the drained stream's kept-alive one
// it would be, and it would come back a third time).
func TestDrain(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		f := &feed{group: fastsse.NewGroup(&fastsse.GroupOptions{Replay: 1000})}
		opts := fastsse.Options{Retry: 30 * time.Millisecond}
		srv := serve(t, f, tr, opts, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		var opened conns
		s := sseclient.Connect(ctx, srv.url, &sseclient.Options{Backoff: fast, OnConnect: opened.hook()})
		const n = 200
		pub, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { opened.wait(pub); f.publish(pub, n, 10*time.Millisecond) })
		defer func() { stop(); wg.Wait() }()
		c := counter{}
		drained := false
		for ev, err := range s.Events() {
			require.NoError(t, err)
			require.NoError(t, c.add(string(ev.ID)))
			if c.next == 50 && !drained { // 1.5 s before the end
				drained = true
				old := srv.swap(t, f, tr, opts)
				wg.Go(func() { assert.NoError(t, old.Drain(ctx, 0)) })
			}
			if c.next == n {
				break
			}
		}
		assert.Equal(t, int64(2), opened.n.Load(), "one reconnection, to the new endpoint")
		ids := f.inits()
		require.Len(t, ids, 2)
		assert.NotEmpty(t, ids[1])
	})
}

// A stalled server (no heartbeat, nothing sent) is noticed within
// ReadTimeout; the client reconnects with Last-Event-ID.
func TestStalledServer(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		f := &feed{init: func(last string, _ *fastsse.Request) fastsse.InitResult[struct{}] {
			if last == "" {
				return fastsse.Open(struct{}{}, fastsse.Event{ID: "s1", Data: "hello"})
			}
			return fastsse.Open(struct{}{})
		}}
		srv := serve(t, f, tr, fastsse.Options{Heartbeat: -1}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		idle := make(chan error, 10)
		s := sseclient.Connect(ctx, srv.url, &sseclient.Options{
			Backoff:     fast,
			ReadTimeout: 300 * time.Millisecond,
			OnError: func(err error, _ time.Duration) {
				idle <- err
				if len(f.inits()) >= 3 {
					cancel()
				}
			},
		})
		var got []string
		var final error
		for ev, err := range s.Events() {
			if err != nil {
				final = err
				break
			}
			got = append(got, string(ev.ID)+" "+string(ev.Data))
		}
		assert.ErrorIs(t, final, context.Canceled, "ended by the test, not by the timeouts")
		assert.Equal(t, []string{"s1 hello"}, got)
		require.GreaterOrEqual(t, len(idle), 2)
		for range 2 {
			assert.ErrorContains(t, <-idle, "ReadTimeout")
		}
		ids := f.inits()
		require.GreaterOrEqual(t, len(ids), 3)
		assert.Equal(t, []string{"", "s1", "s1"}, ids[:3])
	})
}

// 204 and 503 stop the client for good, with the status; so does a 200
// that is not an event stream.
func TestStatusStops(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		for _, tc := range []struct {
			name   string
			init   func(string, *fastsse.Request) fastsse.InitResult[struct{}]
			path   string
			status int
			ctype  string
		}{
			{"204", func(string, *fastsse.Request) fastsse.InitResult[struct{}] { return fastsse.NoContent(struct{}{}) }, "/events", 204, ""},
			{"503", func(string, *fastsse.Request) fastsse.InitResult[struct{}] {
				return fastsse.Reply(503, []byte("busy"), struct{}{})
			}, "/events", 503, "text/plain; charset=utf-8"},
			{"not an event stream", nil, "/text", 200, "text/plain; charset=utf-8"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := &feed{init: tc.init}
				var others atomic.Int64
				srv := serve(t, f, tr, fastsse.Options{}, func() string {
					others.Add(1)
					return "hello"
				})
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				defer cancel()
				url := strings.TrimSuffix(srv.url, "/events") + tc.path
				var errs atomic.Int64
				s := sseclient.Connect(ctx, url, &sseclient.Options{Backoff: fast, OnError: func(error, time.Duration) { errs.Add(1) }})
				n := 0
				var final error
				for _, err := range s.Events() {
					n++
					final = err
				}
				assert.Equal(t, 1, n, "one value: the error")
				var se *sseclient.StatusError
				require.ErrorAs(t, final, &se)
				assert.Equal(t, tc.status, se.StatusCode)
				assert.Equal(t, tc.ctype, se.ContentType)
				assert.Zero(t, errs.Load(), "no retry")
				assert.Equal(t, int64(1), int64(len(f.inits()))+others.Load(), "one request")
			})
		}
	})
}

// A 10 MB event passes with the defaults; past MaxEventSize the stream
// ends with ErrEventTooLarge, without retrying.
func TestLargeEvent(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 1<<20)
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		f := &feed{init: func(string, *fastsse.Request) fastsse.InitResult[struct{}] {
			return fastsse.Open(struct{}{}, fastsse.Event{ID: "big", DataBytes: big}, fastsse.Event{ID: "small", Data: "after"})
		}}
		srv := serve(t, f, tr, fastsse.Options{}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		s := sseclient.Connect(ctx, srv.url, nil)
		var got []sseclient.Event
		for ev, err := range s.Events() {
			require.NoError(t, err)
			got = append(got, ev.Clone())
			if len(got) == 2 {
				break
			}
		}
		require.Len(t, got, 2)
		assert.Equal(t, "big", string(got[0].ID))
		assert.True(t, bytes.Equal(big, got[0].Data), "10 MB of data, intact")
		assert.Equal(t, "after", string(got[1].Data))

		var errs atomic.Int64
		s = sseclient.Connect(ctx, srv.url, &sseclient.Options{MaxEventSize: 1 << 20, OnError: func(error, time.Duration) { errs.Add(1) }})
		var final error
		for _, err := range s.Events() {
			final = err
		}
		assert.ErrorIs(t, final, sseclient.ErrEventTooLarge)
		assert.Zero(t, errs.Load(), "no retry")
		assert.Len(t, f.inits(), 2)
	})
}

// The server's retry is honoured within Backoff.Max: a server asking for
// an hour is back within a second.
func TestRetryCapped(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		f := &feed{group: fastsse.NewGroup(&fastsse.GroupOptions{Replay: 100})}
		srv := serve(t, f, tr, fastsse.Options{MaxLifetime: 100 * time.Millisecond, Retry: time.Hour}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		var waits []time.Duration
		var opened conns
		s := sseclient.Connect(ctx, srv.url, &sseclient.Options{
			Backoff:   sseclient.Backoff{Max: 200 * time.Millisecond},
			OnConnect: opened.hook(),
			OnError:   func(_ error, w time.Duration) { waits = append(waits, w) },
		})
		pub, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { opened.wait(pub); f.publish(pub, 1000, 5*time.Millisecond) })
		defer func() { stop(); wg.Wait() }()
		c := counter{}
		for ev, err := range s.Events() {
			require.NoError(t, err)
			require.NoError(t, c.add(string(ev.ID)))
			if len(waits) >= 3 {
				break
			}
		}
		for _, w := range waits {
			assert.Equal(t, 200*time.Millisecond, w, "retry: 3600000 capped at Backoff.Max")
		}
	})
}

// fastsse's gap signal goes to OnGap with the id the client asked from,
// and is not yielded; without OnGap it is yielded. Either way the client
// resumes after the hole.
func TestGapSignal(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		f := &feed{group: fastsse.NewGroup(&fastsse.GroupOptions{Replay: 5})}
		srv := serve(t, f, tr, fastsse.Options{}, nil)
		f.publish(context.Background(), 20, 0)
		for _, withHook := range []bool{true, false} {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			var gaps []string
			opts := &sseclient.Options{LastEventID: "3"} // no id of this group's: a gap
			if withHook {
				opts.OnGap = func(id string) {
					gaps = append(gaps, id)
					f.publish(ctx, 1, 0)
				}
			}
			s := sseclient.Connect(ctx, srv.url, opts)
			var got []string
			for ev, err := range s.Events() {
				require.NoError(t, err)
				got = append(got, string(ev.Type)+" "+string(ev.ID)+" "+string(ev.Data))
				break
			}
			cancel()
			if withHook {
				assert.Equal(t, []string{"3"}, gaps)
				assert.Equal(t, []string{"message " + *f.last.Load() + " event 21"}, got)
			} else {
				assert.Equal(t, []string{gapType + " " + *f.last.Load() + " 3"}, got, "the id is the position")
			}
		}
	})
}

// Bad input is the one error Events yields; a second Events is refused.
func TestBadInput(t *testing.T) {
	for _, u := range []string{"ftp://x/", "://", "127.0.0.1:1/x"} {
		var n int
		for _, err := range sseclient.Connect(context.Background(), u, nil).Events() {
			n++
			assert.Error(t, err, u)
		}
		assert.Equal(t, 1, n, u)
	}
	for _, err := range sseclient.Connect(context.Background(), "http://x/", &sseclient.Options{MaxEventSize: -1}).Events() {
		assert.ErrorContains(t, err, "negative")
	}
	//lint:ignore SA1012 a nil context is the bad input under test
	for _, err := range sseclient.Connect(nil, "http://x/", nil).Events() {
		assert.ErrorContains(t, err, "nil context")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := sseclient.Connect(ctx, "http://127.0.0.1:1/", nil)
	for _, err := range s.Events() {
		assert.ErrorIs(t, err, context.Canceled)
	}
	for _, err := range s.Events() {
		assert.ErrorContains(t, err, "more than once")
	}
}

// Run is Events with a callback; its error stops the stream.
func TestRun(t *testing.T) {
	f := &feed{group: fastsse.NewGroup(&fastsse.GroupOptions{Replay: 100})}
	srv := serve(t, f, fastsse.TransportStream, fastsse.Options{}, nil)
	f.publish(context.Background(), 10, 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	done := errors.New("done")
	c := counter{next: 4}
	epoch, _, err := splitID(*f.last.Load())
	require.NoError(t, err)
	c.epoch = epoch
	err = sseclient.Connect(ctx, srv.url, &sseclient.Options{LastEventID: epoch + "-4"}).Run(func(ev sseclient.Event) error {
		if err := c.add(string(ev.ID)); err != nil {
			return err
		}
		if c.next == 10 {
			return done
		}
		return nil
	})
	assert.ErrorIs(t, err, done)
	assert.Equal(t, 10, c.next)
}

var _ = http.StatusOK

// A draining endpoint answers every new stream with only a retry hint: the
// client keeps trying (not 503: it would stop), and since those streams
// carry no event it backs off from the hinted time, doubling each time.
func TestDrainingServer(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		f := &feed{}
		srv := serve(t, f, tr, fastsse.Options{Retry: 20 * time.Millisecond}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, srv.cur.Load().Drain(ctx, 0))
		var waits []time.Duration
		var errs []string
		s := sseclient.Connect(ctx, srv.url, &sseclient.Options{
			Backoff: sseclient.Backoff{Jitter: -1},
			OnError: func(err error, w time.Duration) {
				waits, errs = append(waits, w), append(errs, err.Error())
				if len(waits) == 4 {
					cancel()
				}
			},
		})
		for _, err := range s.Events() {
			assert.ErrorIs(t, err, context.Canceled)
		}
		require.Len(t, waits, 4)
		assert.Empty(t, f.inits(), "a draining endpoint runs no Init")
		for i, w := range waits {
			// The hint is a random 100-150% of Retry, then doubled per failure.
			lo := 20 * time.Millisecond << i
			assert.True(t, w >= lo && w <= lo*3/2, "wait %d: %v, want %v to %v", i, w, lo, lo*3/2)
			assert.Contains(t, errs[i], "sent no event")
		}
	})
}
