//go:build !race

package fastsse

import (
	"strings"
	"testing"
	"time"
)

// TestEncoderAllocs fails if the encoder allocates when dst has room. (The
// race detector makes allocations of its own, hence the build tag.)
func TestEncoderAllocs(t *testing.T) {
	lines := strings.Repeat("line of text\n", 9) + "last\r\nline\rend"
	cases := []struct {
		name string
		ev   Event
	}{
		{"small string", Event{ID: "1234", Event: "update", Data: `{"id":1234,"name":"widget","price":9.99}`}},
		{"small bytes", Event{ID: "1234", Event: "update", DataBytes: []byte(`{"id":1234,"name":"widget","price":9.99}`)}},
		{"lines string", Event{Data: lines}},
		{"lines bytes", Event{DataBytes: []byte(lines)}},
		{"all fields", Event{Comment: "c\nd", ID: "1", Event: "e", Data: "a\rb", Retry: 1500 * time.Millisecond}},
		{"explicit empty", Event{DataBytes: []byte{}}},
		{"invalid", Event{ID: "1\n", Data: "x"}},
	}
	dst := make([]byte, 0, 4096)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := &c.ev
			allocs := testing.AllocsPerRun(100, func() {
				dst, _ = AppendEvent(dst[:0], ev)
			})
			if allocs != 0 {
				t.Fatalf("AppendEvent: %v allocs/op, want 0", allocs)
			}
		})
	}
	t.Run("comment", func(t *testing.T) {
		allocs := testing.AllocsPerRun(100, func() {
			dst = AppendComment(dst[:0], "keep-alive\r\nping")
		})
		if allocs != 0 {
			t.Fatalf("AppendComment: %v allocs/op, want 0", allocs)
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		allocs := testing.AllocsPerRun(100, func() {
			dst = AppendComment(dst[:0], "")
		})
		if allocs != 0 {
			t.Fatalf("AppendComment: %v allocs/op, want 0", allocs)
		}
	})
}
