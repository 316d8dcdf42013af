package fastsse

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzAppendEvent round-trips arbitrary events through the encoder and the
// spec parser (sseparse_test.go). For every input the encoder either refuses
// it, with the sentinel for a rule the input breaks, appending nothing, or its
// output makes a client dispatch exactly one event carrying the given type,
// id, data (line breaks as LF) and retry, and nothing else: no field of the
// input can inject another field or event.
//
// Seeds are below and in testdata/fuzz/FuzzAppendEvent; plain go test runs
// them. Fuzz with:
//
//	go test -run='^$' -fuzz=FuzzAppendEvent -fuzztime=60s ./fastsse
func FuzzAppendEvent(f *testing.F) {
	f.Add("", "", []byte("hello"), "", int64(0))
	f.Add("1", "add", []byte(`{"a":1}`), "c", int64(1500*time.Millisecond))
	f.Add("", "", []byte{}, "", int64(0))
	f.Add("", "", []byte("a\r\nb\rc\nd"), "x\ry", int64(1))
	f.Add("", "", []byte("\r\r\n\n"), "", int64(0))
	f.Add("", "", []byte("a\r"), "", int64(0))
	f.Add("1\n", "", []byte("x"), "", int64(0))
	f.Add("", "x\r", []byte("x"), "", int64(0))
	f.Add("a\x00", "", []byte("x"), "", int64(0))
	f.Add("", "", []byte("x"), "", int64(-1))
	f.Add("", "", []byte("\n\nevent: x\ndata: evil"), "\n\ndata: evil\n\n", int64(0))
	f.Add(" sp", " sp", []byte(" sp"), " sp", int64(0))
	f.Add("", "", []byte("\xff\x00\xef\xbb\xbf"), "", int64(0))

	f.Fuzz(func(t *testing.T, id, typ string, data []byte, comment string, retry int64) {
		if data == nil {
			data = []byte{} // DataBytes must be non-nil to be used
		}
		base := Event{ID: id, Event: typ, Comment: comment, Retry: time.Duration(retry)}
		strEv, bytesEv := base, base
		strEv.Data = string(data)
		bytesEv.DataBytes = data

		outS := checkFuzzEvent(t, &strEv)
		outB := checkFuzzEvent(t, &bytesEv)
		if outS != nil && !bytes.Equal(outS, outB) {
			t.Fatalf("Data and DataBytes encode differently:\n%q\n%q", outS, outB)
		}
	})
}

// checkFuzzEvent encodes ev and checks the result against the rules. It
// returns the wire bytes, nil when the event was refused.
func checkFuzzEvent(t *testing.T, ev *Event) []byte {
	t.Helper()
	// The rules the event breaks, worked out independently of the encoder.
	var broken []error
	if ev.DataBytes == nil && ev.Data == "" {
		broken = append(broken, ErrDataRequired)
	}
	if ev.Retry < 0 {
		broken = append(broken, ErrInvalidRetry)
	}
	if strings.ContainsAny(ev.ID, "\r\n\x00") {
		broken = append(broken, ErrInvalidID)
	}
	if strings.ContainsAny(ev.Event, "\r\n") {
		broken = append(broken, ErrInvalidType)
	}

	const prefix = "data: earlier\n\n"
	dst := make([]byte, len(prefix), len(prefix)+64)
	copy(dst, prefix)
	out, err := AppendEvent(dst, ev)
	if err != nil {
		if len(broken) == 0 {
			t.Fatalf("refused a valid event %+v: %v", ev, err)
		}
		known := false
		for _, b := range broken {
			known = known || errors.Is(err, b)
		}
		if !known {
			t.Fatalf("event %+v: got %v, want one of %v", ev, err, broken)
		}
		if len(out) != len(prefix) || string(out) != prefix || &out[0] != &dst[0] {
			t.Fatalf("refused event %+v changed dst: %q", ev, out)
		}
		return nil
	}
	if len(broken) != 0 {
		t.Fatalf("accepted event %+v that breaks %v: %q", ev, broken, out)
	}
	if !bytes.HasPrefix(out, []byte(prefix)) {
		t.Fatalf("dst prefix overwritten: %q", out)
	}
	wire := out[len(prefix):]

	data := ev.Data
	if ev.DataBytes != nil {
		data = string(ev.DataBytes)
	}
	want := specEvent{Type: ev.Event, Data: normalizeBreaks(data), ID: ev.ID, IDSet: ev.ID != ""}
	if want.Type == "" {
		want.Type = "message"
	}
	if ev.Retry > 0 {
		want.Retry, want.HasRetry = max(ev.Retry.Milliseconds(), 1), true
	}

	// A fresh stream: exactly one event, nothing left over.
	var p specParser
	got := p.Feed(wire)
	if len(got) != 1 || got[0] != want || p.Pending() {
		t.Fatalf("event %+v\nwire %q\nparsed %+v (pending %v)\nwant   %+v", ev, wire, got, p.Pending(), want)
	}

	// After an earlier event with an id: an event without id keeps it.
	var p2 specParser
	if pre := p2.Feed([]byte("id: prev\ndata: p\n\n")); len(pre) != 1 {
		t.Fatalf("spec parser: %+v", pre)
	}
	if ev.ID == "" {
		want.ID = "prev"
	}
	got = p2.Feed(wire)
	if len(got) != 1 || got[0] != want || p2.Pending() {
		t.Fatalf("after an earlier id: event %+v\nwire %q\nparsed %+v\nwant   %+v", ev, wire, got, want)
	}
	return wire
}
