package sseclient_test

import (
	"context"
	"testing"

	"github.com/lasse-go/lasse/fastsse/sseclient"
)

// BenchmarkEvents: events one client parses per second from a loopback
// server that replays a pre-encoded feed (see benchStream); one op is one
// event. bench/compare runs the same against other clients.
func BenchmarkEvents(b *testing.B) {
	url := replayServer(b, benchStream())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	n := 0
	b.ResetTimer()
	for ev, err := range sseclient.Connect(ctx, url, nil).Events() {
		if err != nil {
			b.Fatal(err)
		}
		if len(ev.Data) == 0 {
			b.Fatal("empty event")
		}
		if n++; n == b.N {
			break
		}
	}
}
