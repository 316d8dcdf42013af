//go:build !race

package promsse_test

import (
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/stretchr/testify/assert"
)

// TestObserverAllocs: the hooks allocate nothing, so that a Collector adds
// no garbage to a stream's end, a drop, a replay or a publish.
func TestObserverAllocs(t *testing.T) {
	c := promsse.New(&promsse.Options{Bus: true})
	s := fastsse.StreamInfo{ID: 1, Transport: "stream", Route: "/feed"}
	for name, f := range map[string]func(){
		"StreamOpened": func() { c.StreamOpened(s) },
		"StreamEnded":  func() { c.StreamEnded(s, fastsse.ErrClientGone, time.Minute) },
		"Overflowed":   func() { c.Overflowed(s, fastsse.OverflowDropOldest) },
		"Replayed":     func() { c.Replayed(s, fastsse.ReplayHit, 3) },
		"Published":    func() { c.Published(1000, time.Millisecond) },
		"BusDelivered": func() { c.BusDelivered(time.Millisecond) },
		"BusGap":       func() { c.BusGap() },
	} {
		assert.Zero(t, testing.AllocsPerRun(100, f), name)
	}
}
