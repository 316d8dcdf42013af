package sseclient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Failures in a row grow the wait; a connection that stayed open for
// healthyAfter (a minute; 100 ms here) starts the count again. Each
// connection here sends an event, stays open for 150 ms, then breaks
// (no final chunk: an error, not a clean end).
func TestBackoffResetsAfterHealthyConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: x\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(150 * time.Millisecond)
		panic(http.ErrAbortHandler)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		healthy time.Duration
		want    []time.Duration
	}{
		{time.Hour, []time.Duration{10, 20, 40}},
		{100 * time.Millisecond, []time.Duration{10, 10, 10}},
	} {
		t.Run(tc.healthy.String(), func(t *testing.T) {
			defer func(d time.Duration) { healthyAfter = d }(healthyAfter)
			healthyAfter = tc.healthy
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var waits []time.Duration
			s := Connect(ctx, srv.URL, &Options{
				Backoff: Backoff{Initial: 10 * time.Millisecond, Jitter: -1},
				OnError: func(err error, w time.Duration) {
					waits = append(waits, w/time.Millisecond)
					if len(waits) == len(tc.want) {
						cancel()
					}
				},
			})
			for _, err := range s.Events() {
				if err != nil {
					break
				}
			}
			assert.Equal(t, tc.want, waits)
		})
	}
}
