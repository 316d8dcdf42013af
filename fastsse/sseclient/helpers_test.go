package sseclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// waitFor bounds every wait: the tests run with -race on a busy 2-core
// machine.
const waitFor = 15 * time.Second

// gapType is fastsse's gap signal, as the server names it; the client's
// own name for it is checked against it (TestGapTypeIsTheServers).
const gapType = fastsse.GapEvent

// viaHTTP stands, in these tests, for the net/http transport: the
// endpoint's HTTPHandler on a net/http server (it is no Options.Transport).
const viaHTTP = fastsse.Transport(255)

// transports is every fastsse transport the client is tested against; each
// test ranges over it, with the transport's name as the subtest's.
var transports = []struct {
	name string
	tr   fastsse.Transport
}{
	{"stream", fastsse.TransportStream},
	{"dense", fastsse.TransportDense},
	{"http", viaHTTP},
}

// options returns opts on tr.
func options(tr fastsse.Transport, opts fastsse.Options) *fastsse.Options {
	if tr != viaHTTP {
		opts.Transport = tr
	}
	return &opts
}

// eachTransport runs f as one subtest per transport.
func eachTransport(t *testing.T, f func(t *testing.T, tr fastsse.Transport)) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.tr) })
	}
}

// feed is the test handler: Init resumes the stream in group (when set)
// from the Last-Event-ID and answers the fastsse gap signal when it
// cannot; init, when set, answers instead.
type feed struct {
	group *fastsse.Group
	last  atomic.Pointer[string] // id of the latest published event
	pos   atomic.Uint64          // position of the latest published event
	init  func(lastEventID string, req *fastsse.Request) fastsse.InitResult[struct{}]

	mu      sync.Mutex
	lastIDs []string // the Last-Event-ID of every Init, in order
}

func (f *feed) Init(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, lastEventID)
	f.mu.Unlock()
	if f.init != nil {
		return f.init(lastEventID, req)
	}
	if f.group == nil {
		return fastsse.Open(struct{}{})
	}
	// On ErrReplayGap, Resume has queued fastsse's gap signal itself.
	if err := f.group.Resume(req.Conn(), lastEventID); err != nil && !errors.Is(err, fastsse.ErrReplayGap) {
		return fastsse.Reply(http.StatusInternalServerError, []byte(err.Error()), struct{}{})
	}
	return fastsse.Open(struct{}{})
}

func (*feed) HandleNotify(any, struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(struct{}{}) }
func (*feed) HandleInfo(any, struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(struct{}{}) }
func (*feed) HandleError(fastsse.Event, error, struct{}) struct{} { return struct{}{} }
func (*feed) Terminate(error, struct{})                           {}
func (f *feed) inits() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastIDs...)
}

// publish publishes n events, one every 'every', each with the data
// "event SEQ" (the group gives it the id EPOCH-SEQ); it returns when done or
// when ctx ends.
func (f *feed) publish(ctx context.Context, n int, every time.Duration) {
	for i := 1; i <= n; i++ {
		id, err := f.group.Publish(&fastsse.Event{Data: "event " + strconv.FormatUint(f.pos.Add(1), 10)})
		if err != nil {
			panic(err)
		}
		f.last.Store(&id)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

// server serves the current endpoint on 127.0.0.1:0 (swap replaces it, as
// a restarted instance would), from fasthttp or, for viaHTTP, net/http.
type server struct {
	url    string
	stopFn func(ctx context.Context) error
	cur    atomic.Pointer[fastsse.Endpoint]
	mu     sync.Mutex
	eps    []*fastsse.Endpoint
	served chan struct{}
}

// serve serves h on tr with opts until the test ends. other, when set,
// answers the paths that are not /events: 200, text/plain, its body.
func serve(t *testing.T, h fastsse.Handler[struct{}], tr fastsse.Transport, opts fastsse.Options, other func() string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &server{url: "http://" + ln.Addr().String() + "/events", served: make(chan struct{})}
	s.swap(t, h, tr, opts)
	if tr == viaHTTP {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if other != nil && r.URL.Path != "/events" {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = io.WriteString(w, other())
				return
			}
			s.cur.Load().HTTPHandler().ServeHTTP(w, r)
		})}
		s.stopFn = srv.Shutdown
		go func() { _ = srv.Serve(ln); close(s.served) }()
	} else {
		srv := &fasthttp.Server{Logger: quietLog{}, Handler: func(ctx *fasthttp.RequestCtx) {
			if other != nil && string(ctx.Path()) != "/events" {
				ctx.SetBodyString(other())
				return
			}
			s.cur.Load().ServeFastHTTP(ctx)
		}}
		s.stopFn = srv.ShutdownWithContext
		go func() { _ = srv.Serve(ln); close(s.served) }()
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// swap makes a new endpoint for h the one that serves new requests, and
// returns the one it replaces.
func (s *server) swap(t *testing.T, h fastsse.Handler[struct{}], tr fastsse.Transport, opts fastsse.Options) *fastsse.Endpoint {
	ep, err := fastsse.New(h, options(tr, opts))
	require.NoError(t, err)
	s.mu.Lock()
	s.eps = append(s.eps, ep)
	s.mu.Unlock()
	return s.cur.Swap(ep)
}

func (s *server) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s.mu.Lock()
	eps := s.eps
	s.mu.Unlock()
	for _, ep := range eps {
		if err := ep.Drain(ctx, 0); err != nil {
			t.Errorf("Drain: %v", err)
		}
	}
	if err := s.stopFn(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-s.served
}

// counter checks the ids of a feed's events, EPOCH-1, EPOCH-2, ... each
// once, in order, all of one epoch (learned from the first when unset).
type counter struct {
	epoch string
	next  int
}

func (c *counter) add(id string) error {
	epoch, n, err := splitID(id)
	if err != nil {
		return err
	}
	if c.epoch == "" {
		c.epoch = epoch
	}
	if epoch != c.epoch {
		return fmt.Errorf("id %q is not of epoch %s", id, c.epoch)
	}
	if n != c.next+1 {
		return fmt.Errorf("id %q after %s-%d: a gap or a duplicate", id, c.epoch, c.next)
	}
	c.next = n
	return nil
}

// splitID splits a group's id, EPOCH-SEQ.
func splitID(id string) (string, int, error) {
	i := strings.LastIndexByte(id, '-')
	n, err := strconv.Atoi(id[i+1:])
	if i < 0 || err != nil {
		return "", 0, fmt.Errorf("id %q is not EPOCH-SEQ", id)
	}
	return id[:i], n, nil
}

// conns counts the streams a client opened.
type conns struct {
	n     atomic.Int64
	once  sync.Once
	first chan struct{}
	init  sync.Once
}

func (c *conns) ch() chan struct{} {
	c.init.Do(func() { c.first = make(chan struct{}) })
	return c.first
}

// hook is an OnConnect that counts.
func (c *conns) hook() func(*http.Response) {
	ch := c.ch()
	return func(*http.Response) {
		c.n.Add(1)
		c.once.Do(func() { close(ch) })
	}
}

// wait returns once the first stream is open (the client is then in the
// group: Init ran before the answer's header was sent), or ctx ends.
func (c *conns) wait(ctx context.Context) {
	select {
	case <-c.ch():
	case <-ctx.Done():
	}
}
