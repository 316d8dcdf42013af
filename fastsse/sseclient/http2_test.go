package sseclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lasse-go/lasse/fastsse/sseclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Over HTTP/2 (net/http's server and client over TLS) the client reads,
// reconnects after the server's clean end with Last-Event-ID, and stops on
// the 204 it then gets.
func TestHTTP2(t *testing.T) {
	var lastIDs []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		if len(lastIDs) > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "retry: 10\n\n")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var protos []int
	s := sseclient.Connect(ctx, srv.URL, &sseclient.Options{
		Client:    srv.Client(),
		OnConnect: func(resp *http.Response) { protos = append(protos, resp.ProtoMajor) },
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
	assert.Equal(t, []string{"1 event 1", "2 event 2", "3 event 3"}, got)
	assert.Equal(t, []int{2}, protos, "HTTP/2")
	var se *sseclient.StatusError
	require.ErrorAs(t, final, &se)
	assert.Equal(t, http.StatusNoContent, se.StatusCode)
	assert.Equal(t, []string{"", "3"}, lastIDs)
}
