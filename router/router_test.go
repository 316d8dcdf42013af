package router_test

import (
	"net/http"
	"strings"
	"testing"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/lasse-go/lasse/router"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

// echoRoute sends the route parameter as its one initial event, then stops
// when notified.
type echoRoute struct{}

func (echoRoute) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	return fastsse.Open(struct{}{}, fastsse.Event{Data: "route=" + req.Param("route") + " path=" + req.Path()})
}
func (echoRoute) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.Stop(struct{}{})
}
func (echoRoute) HandleInfo(any, struct{}) fastsse.Result[struct{}] { return fastsse.Stop(struct{}{}) }
func (echoRoute) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (echoRoute) Terminate(error, struct{}) {}

// serve serves h on a fasthttp server on loopback and returns its base URL;
// the endpoints are drained at cleanup.
func serve(t *testing.T, h fasthttp.RequestHandler, eps ...*fastsse.Endpoint) string {
	t.Helper()
	s := ssetest.ServeFastHTTP(t, h)
	s.DrainAtCleanup(eps...)
	return "http://" + s.Addr
}

func TestMountOptionalParam(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			ep := ssetest.New[struct{}](t, tr, echoRoute{}, &fastsse.Options{Heartbeat: -1})
			r := frouter.New()
			router.Mount(r, "/your/{route?}", ep)
			addr := strings.TrimPrefix(serve(t, r.Handler, ep), "http://")

			for path, want := range map[string]string{
				"/your":       "route= path=/your",
				"/your/stuff": "route=stuff path=/your/stuff",
			} {
				t.Run(path, func(t *testing.T) {
					c := ssetest.Dial(t, addr, "GET", path).Start()
					assert.Equal(t, http.StatusOK, c.Status)
					assert.Equal(t, "text/event-stream", c.Header("Content-Type"))
					assert.Equal(t, want, c.Data(t))
				})
			}
		})
	}
}

// noKeepAlive is a net/http client that leaves no idle connection behind.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: ssetest.Wait}

// The 405 through the router is the endpoint's own, the same as without one.
func TestMountMethodNotAllowedMatchesPlainHandler(t *testing.T) {
	ep, err := fastsse.New[struct{}](echoRoute{}, &fastsse.Options{Heartbeat: -1})
	require.NoError(t, err)
	r := frouter.New()
	router.Mount(r, "/your/{route?}", ep)
	routed := serve(t, r.Handler, ep)
	plain := serve(t, ep.ServeFastHTTP)

	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			var got [2]*http.Response
			for i, base := range []string{routed + "/your/x", plain + "/your/x"} {
				req, err := http.NewRequest(method, base, strings.NewReader(""))
				require.NoError(t, err)
				resp, err := noKeepAlive.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				got[i] = resp
			}
			assert.Equal(t, http.StatusMethodNotAllowed, got[0].StatusCode)
			assert.Equal(t, got[1].StatusCode, got[0].StatusCode)
			assert.Equal(t, "GET", got[0].Header.Get("Allow"))
			assert.Equal(t, got[1].Header.Get("Allow"), got[0].Header.Get("Allow"))
		})
	}
}

// A path the route does not match is the router's 404, not a stream.
func TestMountUnmatchedPath(t *testing.T) {
	ep, err := fastsse.New[struct{}](echoRoute{}, &fastsse.Options{Heartbeat: -1})
	require.NoError(t, err)
	r := frouter.New()
	router.Mount(r, "/your/{route?}", ep)
	base := serve(t, r.Handler)
	resp, _ := ssetest.Get(t, "GET", base+"/other")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
