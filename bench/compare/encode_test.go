package compare

import (
	"bytes"
	"testing"

	ginsse "github.com/gin-contrib/sse"
	"github.com/lasse-go/lasse/fastsse"
	ldes "github.com/launchdarkly/eventsource"
)

// TestPeersAgree checks that every peer turns each benchmark event into wire
// bytes that a client reads as the same event, so that the benchmarks compare
// the same work.
func TestPeersAgree(t *testing.T) {
	if len(benchJSON1K) != 1024 || len(benchSmallData) != 60 {
		t.Fatalf("payload sizes changed: json1k %d, small %d", len(benchJSON1K), len(benchSmallData))
	}
	for _, e := range benchEvents {
		want := parseAll([]byte(mustLasse(t, e)))
		if len(want) != 1 {
			t.Fatalf("%s: lasse: %+v", e.name, want)
		}
		for _, p := range peers {
			out, err := safeEncode(p, e.id, e.typ, e.data)
			if err != nil {
				t.Fatalf("%s/%s: %v", e.name, p.name, err)
			}
			if got := parseAll(out); len(got) != 1 || got[0] != want[0] {
				t.Errorf("%s/%s: client reads %+v, want %+v", e.name, p.name, got, want)
			}
		}
	}
}

func mustLasse(t *testing.T, e benchEvent) string {
	out, err := encodeLasse(e.id, e.typ, e.data)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// BenchmarkEncode measures the wire bytes of one event, done the way a user of
// each library does it, with buffers reused where the library allows.
// Sub-benchmarks are named event=.../lib=... for benchstat -col /lib.
func BenchmarkEncode(b *testing.B) {
	for _, e := range benchEvents {
		wire := mustLasseB(b, e)
		run := func(lib string, f func(b *testing.B)) {
			b.Run("event="+e.name+"/lib="+lib, func(b *testing.B) {
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				f(b)
			})
		}

		// fastsse: AppendEvent into a reused buffer, string or []byte data.
		run("lasse", func(b *testing.B) {
			ev := &fastsse.Event{ID: e.id, Event: e.typ, Data: e.data}
			buf := make([]byte, 0, 2*len(wire))
			for b.Loop() {
				buf, _ = fastsse.AppendEvent(buf[:0], ev)
			}
		})
		run("lasse-bytes", func(b *testing.B) {
			ev := &fastsse.Event{ID: e.id, Event: e.typ, DataBytes: []byte(e.data)}
			buf := make([]byte, 0, 2*len(wire))
			for b.Loop() {
				buf, _ = fastsse.AppendEvent(buf[:0], ev)
			}
		})

		// go-sse: a Message per event (NewID, NewType, AppendData), written
		// with WriteTo, its fast path, into a reused buffer.
		run("tmaxmax", func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				m, err := newTmaxmaxMessage(e.id, e.typ, e.data)
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				m.WriteTo(&buf)
			}
		})

		// gin-contrib/sse: sse.Encode of an sse.Event (what gin's
		// Context.SSEvent renders) into a reused buffer.
		run("gin", func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				ginsse.Encode(&buf, ginsse.Event{Id: e.id, Event: e.typ, Data: e.data})
			}
		})

		// hertz: one sse.Writer per stream, WriteEvent per event ([]byte
		// data); the writer encodes into a pooled buffer, then writes and
		// flushes it to the response, here a reused capture buffer.
		run("hertz", func(b *testing.B) {
			w, capt := newHertzWriter()
			data := []byte(e.data)
			for b.Loop() {
				capt.b = capt.b[:0]
				if err := w.WriteEvent(e.id, e.typ, data); err != nil {
					b.Fatal(err)
				}
			}
		})

		// launchdarkly/eventsource: one Encoder per stream, Encode per event
		// (a user type implementing eventsource.Event), into a reused buffer.
		run("launchdarkly", func(b *testing.B) {
			var buf bytes.Buffer
			enc := ldes.NewEncoder(&buf, false)
			ev := &ldEvent{e.id, e.typ, e.data}
			for b.Loop() {
				buf.Reset()
				enc.Encode(ev)
			}
		})
	}
}

func mustLasseB(b *testing.B, e benchEvent) []byte {
	out, err := encodeLasse(e.id, e.typ, e.data)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
