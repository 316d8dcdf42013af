package fastsse

import (
	"testing"
	"time"
)

// TestBusPayloadCarriesKey: a keyed event crosses the bus with its key and
// its stamp; the frame delivered is the event with its id line, keyed.
func TestBusPayloadCarriesKey(t *testing.T) {
	at := time.Unix(0, 1_700_000_000_123_456_789)
	for _, ev := range []Event{
		{Key: "ACME", Event: "tick", Data: "9.99"},
		{Data: "unkeyed"},
		{Key: string(make([]byte, 300)), Data: "a long key"},
	} {
		p := busPayload(at, &ev)
		got, ok := busStamp(p)
		if !ok || !got.Equal(at) {
			t.Fatalf("stamp %v %v, want %v", got, ok, at)
		}
		f := busFrame("ep0ch", 7, p)
		if f.Key() != ev.Key {
			t.Fatalf("key %q, want %q", f.Key(), ev.Key)
		}
		want := "id: ep0ch-7\n" + string(ev.frame().b)
		if string(f.b) != want {
			t.Fatalf("frame %q, want %q", f.b, want)
		}
	}
}

// TestBusPayloadMalformedKey: a payload marked keyed whose key length does
// not fit is taken as a frame, whole, not cut.
func TestBusPayloadMalformedKey(t *testing.T) {
	p := busPayload(time.Now(), &Event{Key: "K", Data: "x"})
	p = p[:busStampLen] // the key's length and everything after it gone
	p = append(p, 0xff, 0xff, 0xff, 0x0f, 'd')
	key, frame := busUnwrap(p)
	if key != "" || string(frame) != string(p) {
		t.Fatalf("busUnwrap = %q, %q; want the payload whole", key, frame)
	}
}
