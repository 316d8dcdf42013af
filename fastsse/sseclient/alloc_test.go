//go:build !race

package sseclient_test

import (
	"context"
	"iter"
	"testing"

	"github.com/lasse-go/lasse/fastsse/sseclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reading an event allocates nothing in steady state: not the parser, not
// the read-idle timer, not net/http's body reader. The server replays
// pre-encoded bytes and allocates nothing either (the count is
// process-wide).
func TestZeroAllocsPerEvent(t *testing.T) {
	url := replayServer(t, benchStream())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next, stop := iter.Pull2(sseclient.Connect(ctx, url, nil).Events())
	defer stop()
	var n int
	read := func() {
		ev, err, ok := next()
		if !ok || err != nil || len(ev.Data) == 0 {
			panic(err)
		}
		n++
	}
	for range 1000 { // warm up: buffers grown, connection set up
		read()
	}
	allocs := testing.AllocsPerRun(20000, read)
	require.Equal(t, 1000+20001, n) // AllocsPerRun runs read once more to warm up
	assert.Zero(t, allocs, "allocations per event")
}
