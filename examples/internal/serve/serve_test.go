package serve

import (
	"bufio"
	"context"
	"flag"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/leaktest"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// openHandler opens every stream and sends nothing.
type openHandler struct{}

func (openHandler) Init(any, string, *fastsse.Request) fastsse.InitResult[struct{}] {
	return fastsse.Open(struct{}{})
}
func (openHandler) HandleNotify(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (openHandler) HandleInfo(any, struct{}) fastsse.Result[struct{}] {
	return fastsse.NoSend(struct{}{})
}
func (openHandler) HandleError(fastsse.Event, error, struct{}) struct{} { return struct{}{} }
func (openHandler) Terminate(error, struct{})                           {}

// TestServerSettings: the tests that run at the examples' settings
// (ssetest.ExamplesConfig) run at these.
func TestServerSettings(t *testing.T) {
	srv := NewServer(nil)
	assert.Equal(t, ssetest.ExamplesConfig.ReadTimeout, srv.ReadTimeout)
	assert.Equal(t, ssetest.ExamplesConfig.IdleTimeout, srv.IdleTimeout)
	assert.Zero(t, srv.WriteTimeout, "one deadline for a whole response would cut every stream")
}

func TestCheckSpread(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, 5 * time.Second, MaxSpread} {
		assert.NoError(t, CheckSpread(d), "%v", d)
	}
	for _, d := range []time.Duration{-time.Second, MaxSpread + time.Millisecond, Grace, 30 * time.Second} {
		err := CheckSpread(d)
		if assert.Error(t, err, "%v", d) {
			assert.Contains(t, err.Error(), "-drain-spread "+d.String())
		}
	}
	// The flag's default is one the examples keep.
	if flag.Lookup("drain-spread") == nil {
		SpreadFlag()
	}
	def, err := time.ParseDuration(flag.Lookup("drain-spread").DefValue)
	require.NoError(t, err)
	assert.NoError(t, CheckSpread(def), "the -drain-spread default %v", def)
}

// TestRunListenerRefusesLongSpread: a spread that cannot fit in Grace is an
// error at once, before anything is served, and the listener is closed.
func TestRunListenerRefusesLongSpread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ep, err := fastsse.New[struct{}](openHandler{}, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- RunListener(context.Background(), ln, ep.ServeFastHTTP, Options{Drain: []*fastsse.Endpoint{ep}, Spread: 30 * time.Second})
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "-drain-spread 30s")
	case <-time.After(10 * time.Second):
		t.Fatal("RunListener served with a 30s spread")
	}
	_, err = ln.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "the listener is closed")
}

// TestRunListenerDrainsAtMaxSpread: at the longest spread accepted, on each
// transport, every open stream ends with a retry hint and RunListener
// returns without error within Grace.
func TestRunListenerDrainsAtMaxSpread(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   fastsse.Transport
	}{{"stream", fastsse.TransportStream}, {"dense", fastsse.TransportDense}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ep, err := fastsse.New[struct{}](openHandler{}, &fastsse.Options{Transport: tc.tr})
			require.NoError(t, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- RunListener(ctx, ln, ep.ServeFastHTTP, Options{Drain: []*fastsse.Endpoint{ep}, Spread: MaxSpread})
			}()
			const n = 20
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			bodies := make([]*bufio.Reader, n)
			for i := range bodies {
				resp, err := cl.Get("http://" + ln.Addr().String() + "/")
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				bodies[i] = bufio.NewReader(resp.Body)
			}
			require.Eventually(t, func() bool { return ep.Stats().Open == n }, 10*time.Second, 10*time.Millisecond)
			start := time.Now()
			cancel()
			var wg sync.WaitGroup
			hints := make([]bool, n)
			for i, br := range bodies {
				wg.Go(func() {
					for {
						line, err := br.ReadString('\n')
						if strings.HasPrefix(line, "retry:") {
							hints[i] = true
						}
						if err != nil {
							return
						}
					}
				})
			}
			select {
			case err := <-done:
				require.NoError(t, err)
				assert.Less(t, time.Since(start), Grace, "RunListener returned after Grace")
			case <-time.After(Grace + 5*time.Second):
				t.Fatal("RunListener did not return")
			}
			wg.Wait()
			for i, ok := range hints {
				assert.True(t, ok, "stream %d ended without a retry hint", i)
			}
		})
	}
}
