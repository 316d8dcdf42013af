package promsse_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// waitFor bounds every wait in these tests.
const waitFor = 10 * time.Second

// feed is the handler under test: Init resumes the group at the client's
// Last-Event-ID and hands the stream's Conn to the test.
type feed struct {
	g     *fastsse.Group
	conns chan *fastsse.Conn
}

func (f *feed) Init(_ any, last string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	_ = f.g.Resume(req.Conn(), last)
	f.conns <- req.Conn()
	return fastsse.Open(struct{}{})
}
func (f *feed) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (f *feed) HandleInfo(any, struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(struct{}{}) }
func (f *feed) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (f *feed) Terminate(error, struct{}) {}

// server is a fasthttp server on loopback serving endpoints by path and
// the registry's /metrics through promhttp.
type server struct {
	base   string
	client *http.Client
}

func serve(t *testing.T, reg *prometheus.Registry, eps map[string]*fastsse.Endpoint) *server {
	t.Helper()
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		if path == "/metrics" {
			metrics(ctx)
			return
		}
		if ep, ok := eps[path]; ok {
			ep.ServeFastHTTP(ctx)
			return
		}
		ctx.NotFound()
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s := &server{base: "http://" + ln.Addr().String(), client: &http.Client{}}
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		for _, ep := range eps {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			require.NoError(t, ep.Drain(ctx, 0))
			cancel()
		}
		require.NoError(t, srv.Shutdown())
		require.NoError(t, <-done)
	})
	return s
}

// family is one scraped metric family, by the labels of its series.
type family map[string]*dto.Metric

// scrape GETs /metrics and parses it with the client library's decoder.
func (s *server) scrape(t *testing.T) map[string]family {
	t.Helper()
	resp, err := s.client.Get(s.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	out := map[string]family{}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		f := family{}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			f[strings.Join(ls, ",")] = m
		}
		out[mf.GetName()] = f
	}
	return out
}

// value is a counter's or gauge's value; labels is "name=value,..." or "".
func value(t *testing.T, ms map[string]family, name, labels string) float64 {
	t.Helper()
	f, ok := ms[name]
	require.True(t, ok, "no metric %s", name)
	m, ok := f[labels]
	require.True(t, ok, "no series %s{%s}; have %v", name, labels, keys(f))
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s{%s} is neither a counter nor a gauge", name, labels)
	return 0
}

// histCount is a histogram's sample count.
func histCount(t *testing.T, ms map[string]family, name string) uint64 {
	t.Helper()
	f, ok := ms[name]
	require.True(t, ok, "no metric %s", name)
	m, ok := f[""]
	require.True(t, ok && m.Histogram != nil, "%s is not an unlabelled histogram", name)
	return m.GetHistogram().GetSampleCount()
}

func keys(f family) []string {
	var ks []string
	for k := range f {
		ks = append(ks, k)
	}
	return ks
}

// until scrapes until cond holds, up to waitFor, and fails with what.
func (s *server) until(t *testing.T, what string, cond func(map[string]family) bool) map[string]family {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ms := s.scrape(t)
		if cond(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still not %s", waitFor, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stream is a real client's open GET on an endpoint.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
	mu   sync.Mutex
	read int // bytes of event stream read
}

func (s *server) open(t *testing.T, path, lastEventID string) *stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
	require.NoError(t, err)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	st := &stream{resp: resp, r: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { resp.Body.Close() })
	return st
}

// event reads up to the next event's blank line (skipping heartbeats) and
// returns its id.
func (st *stream) event(t *testing.T) string {
	t.Helper()
	id, data := "", false
	for {
		line, err := st.r.ReadString('\n')
		require.NoError(t, err)
		st.mu.Lock()
		st.read += len(line)
		st.mu.Unlock()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimSpace(line[4:])
		case strings.HasPrefix(line, "data: "):
			data = true
		case line == "\n" && data:
			return id
		}
	}
}

func (st *stream) bytesRead() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.read
}

// conn takes the Conn of the stream opened last.
func conn(t *testing.T, f *feed) *fastsse.Conn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(waitFor):
		t.Fatal("no stream opened")
		return nil
	}
}

func labels(kv ...string) string {
	var ls []string
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, fmt.Sprintf("%s=%s", kv[i], kv[i+1]))
	}
	return strings.Join(ls, ",")
}
