package fastsse

import (
	"strings"
	"testing"

	"github.com/lasse-go/lasse/internal/benchdata"
)

// The benchmark payloads, shared with bench/compare, which encodes the same
// ones through other SSE libraries.
var (
	benchSmallData = benchdata.SmallData
	benchJSON1K    = benchdata.JSON1K
	benchLines10   = benchdata.Lines10
)

func benchCases() []struct {
	name string
	ev   Event
} {
	type c = struct {
		name string
		ev   Event
	}
	var out []c
	for _, p := range []struct{ name, data string }{
		{"small", benchSmallData},
		{"json1k", benchJSON1K},
		{"lines10", benchLines10},
	} {
		ev := Event{ID: "1234567", Event: "update", Data: p.data}
		if p.name != "small" {
			ev.ID, ev.Event = "", ""
		}
		out = append(out, c{p.name + "/string", ev})
		evB := ev
		evB.Data, evB.DataBytes = "", []byte(p.data)
		out = append(out, c{p.name + "/bytes", evB})
	}
	return out
}

func TestBenchPayloads(t *testing.T) {
	if len(benchJSON1K) != 1024 || strings.ContainsAny(benchJSON1K, "\r\n") {
		t.Fatalf("json1k: %d bytes", len(benchJSON1K))
	}
	if n := strings.Count(benchLines10, "\n"); n != 9 {
		t.Fatalf("lines10: %d breaks", n)
	}
	if len(benchSmallData) != 60 {
		t.Fatalf("small: %d bytes", len(benchSmallData))
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			ev := &c.ev
			dst, err := AppendEvent(nil, ev)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(dst)))
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = AppendEvent(dst[:0], ev)
			}
		})
	}
}

func BenchmarkAppendComment(b *testing.B) {
	dst := AppendComment(nil, "")
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendComment(dst[:0], "")
	}
}
