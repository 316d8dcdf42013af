package router_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
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

func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		require.NoError(t, srv.Shutdown())
		<-done
	})
	return "http://" + ln.Addr().String()
}

// firstData reads the stream up to its first data line.
func firstData(t *testing.T, resp *http.Response) string {
	t.Helper()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return v
		}
	}
	t.Fatalf("no data line: %v", sc.Err())
	return ""
}

func TestMountOptionalParam(t *testing.T) {
	ep, err := fastsse.New[struct{}](echoRoute{}, &fastsse.Options{Heartbeat: -1})
	require.NoError(t, err)
	r := frouter.New()
	router.Mount(r, "/your/{route?}", ep)
	base := serve(t, r.Handler)

	for path, want := range map[string]string{
		"/your":       "route= path=/your",
		"/your/stuff": "route=stuff path=/your/stuff",
	} {
		t.Run(path, func(t *testing.T) {
			client := &http.Client{Timeout: 5 * time.Second}
			resp, err := client.Get(base + path)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			assert.Equal(t, want, firstData(t, resp))
		})
	}
}

// The 405 through the router is the endpoint's own, the same as without one.
func TestMountMethodNotAllowedMatchesPlainHandler(t *testing.T) {
	ep, err := fastsse.New[struct{}](echoRoute{}, &fastsse.Options{Heartbeat: -1})
	require.NoError(t, err)
	r := frouter.New()
	router.Mount(r, "/your/{route?}", ep)
	routed := serve(t, r.Handler)
	plain := serve(t, ep.ServeFastHTTP)

	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			var got [2]*http.Response
			for i, base := range []string{routed + "/your/x", plain + "/your/x"} {
				req, err := http.NewRequest(method, base, strings.NewReader(""))
				require.NoError(t, err)
				resp, err := http.DefaultClient.Do(req)
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
	resp, err := http.Get(base + "/other")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
