package fastsse

import (
	"bufio"
	"io"
	"net"
	"strconv"
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

// BenchmarkEncodeAndFlush measures the hot path of a stream: pending events
// encoded straight into a bufio.Writer's free space and flushed once per batch
// to a real loopback TCP connection, whose other end discards. One op is one
// event.
func BenchmarkEncodeAndFlush(b *testing.B) {
	for _, c := range benchCases() {
		if !strings.HasSuffix(c.name, "/string") || strings.HasPrefix(c.name, "lines10") {
			continue
		}
		name := strings.TrimSuffix(c.name, "/string")
		for _, batch := range []int{1, 16} {
			b.Run(name+"/batch"+strconv.Itoa(batch), func(b *testing.B) {
				benchEncodeAndFlush(b, &c.ev, batch)
			})
		}
	}
}

func benchEncodeAndFlush(b *testing.B, ev *Event, batch int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-done
		b.Fatal(err)
	}
	defer func() {
		conn.Close() // the reader sees EOF and ends
		<-done
	}()

	wire, err := AppendEvent(nil, ev)
	if err != nil {
		b.Fatal(err)
	}
	// Room for a whole batch, so that AvailableBuffer never has to grow.
	w := bufio.NewWriterSize(conn, max(4096, 2*batch*len(wire)))
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		p, _ := AppendEvent(w.AvailableBuffer(), ev)
		w.Write(p)
		if n++; n == batch {
			n = 0
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}
