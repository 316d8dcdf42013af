package fastsse

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wantClient returns the event a spec-conforming client must dispatch for a
// valid ev read from a fresh stream.
func wantClient(ev *Event) specEvent {
	data := ev.Data
	if ev.DataBytes != nil {
		data = string(ev.DataBytes)
	}
	typ := ev.Event
	if typ == "" {
		typ = "message"
	}
	want := specEvent{Type: typ, Data: normalizeBreaks(data), ID: ev.ID, IDSet: ev.ID != ""}
	if ev.Retry > 0 {
		want.Retry, want.HasRetry = max(ev.Retry.Milliseconds(), 1), true
	}
	return want
}

// withBytes returns a copy of ev carrying its Data as DataBytes.
func withBytes(ev Event) *Event {
	ev.DataBytes = []byte(ev.Data)
	ev.Data = ""
	return &ev
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		// Data and line breaks.
		{"one line", Event{Data: "hello"}, "data: hello\n\n"},
		{"trailing LF", Event{Data: "a\n"}, "data: a\ndata: \n\n"},
		{"trailing CRLF", Event{Data: "a\r\n"}, "data: a\ndata: \n\n"},
		{"lone CR at the end", Event{Data: "a\r"}, "data: a\ndata: \n\n"},
		{"only LF", Event{Data: "\n"}, "data: \ndata: \n\n"},
		{"only CR", Event{Data: "\r"}, "data: \ndata: \n\n"},
		{"only CRLF", Event{Data: "\r\n"}, "data: \ndata: \n\n"},
		{"leading CR", Event{Data: "\ra"}, "data: \ndata: a\n\n"},
		{"LF lines", Event{Data: "a\nb\nc"}, "data: a\ndata: b\ndata: c\n\n"},
		{"CR lines", Event{Data: "a\rb\rc"}, "data: a\ndata: b\ndata: c\n\n"},
		{"CRLF lines", Event{Data: "a\r\nb\r\nc"}, "data: a\ndata: b\ndata: c\n\n"},
		{"mixed CR CRLF LF", Event{Data: "\r\r\n\n"}, "data: \ndata: \ndata: \ndata: \n\n"},
		{"mixed LF CR", Event{Data: "a\n\rb"}, "data: a\ndata: \ndata: b\n\n"},
		{"mixed CRLF CRLF", Event{Data: "a\r\n\r\nb"}, "data: a\ndata: \ndata: b\n\n"},
		{"mixed CR CR", Event{Data: "a\r\r"}, "data: a\ndata: \ndata: \n\n"},
		{"mixed all", Event{Data: "a\rb\r\nc\nd\n\re"}, "data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\n\n"},
		{"CR before LF later", Event{Data: "ab\rcd\nef"}, "data: ab\ndata: cd\ndata: ef\n\n"},
		{"leading space kept", Event{Data: " a"}, "data:  a\n\n"},
		{"colon in data", Event{Data: "a: b"}, "data: a: b\n\n"},
		{"UTF-8", Event{Data: "héllo 世界 🎉"}, "data: héllo 世界 🎉\n\n"},
		{"NEL and U+2028 are not breaks", Event{Data: "a\u0085b\u2028c"}, "data: a\u0085b\u2028c\n\n"},
		{"invalid UTF-8", Event{Data: "\xff\xfe\xc3"}, "data: \xff\xfe\xc3\n\n"},
		{"NUL in data", Event{Data: "a\x00b"}, "data: a\x00b\n\n"},
		{"JSON", Event{Data: `{"a":1,"b":[true,null]}`}, "data: {\"a\":1,\"b\":[true,null]}\n\n"},
		{"injection stays data", Event{Data: "\n\nevent: x\ndata: evil"},
			"data: \ndata: \ndata: event: x\ndata: data: evil\n\n"},
		{"injection with CR stays data", Event{Data: "x\r\rid: 6\r\rdata: evil"},
			"data: x\ndata: \ndata: id: 6\ndata: \ndata: data: evil\n\n"},

		// Explicit empty message.
		{"explicit empty", Event{DataBytes: []byte{}}, "data: \n\n"},
		{"explicit empty wins over Data", Event{Data: "s", DataBytes: []byte{}}, "data: \n\n"},
		{"DataBytes wins over Data", Event{Data: "s", DataBytes: []byte("b")}, "data: b\n\n"},

		// Id and event type.
		{"id", Event{ID: "42", Data: "x"}, "id: 42\ndata: x\n\n"},
		{"event type", Event{Event: "add", Data: "x"}, "event: add\ndata: x\n\n"},
		{"id with colon and space", Event{ID: " a:b", Data: "x"}, "id:  a:b\ndata: x\n\n"},
		{"id with tab and DEL", Event{ID: "a\tb\x7f", Data: "x"}, "id: a\tb\x7f\ndata: x\n\n"},
		{"id with VT and FF", Event{ID: "\v1\f", Event: "\v", Data: "x"}, "id: \v1\f\nevent: \v\ndata: x\n\n"},
		{"id UTF-8", Event{ID: "ключ", Data: "x"}, "id: ключ\ndata: x\n\n"},
		{"event type with NUL allowed", Event{Event: "a\x00b", Data: "x"}, "event: a\x00b\ndata: x\n\n"},

		// Retry.
		{"retry 0 omitted", Event{Data: "x", Retry: 0}, "data: x\n\n"},
		{"retry 1ns rounds up to 1 ms", Event{Data: "x", Retry: time.Nanosecond}, "data: x\nretry: 1\n\n"},
		{"retry 1500ms", Event{Data: "x", Retry: 1500 * time.Millisecond}, "data: x\nretry: 1500\n\n"},
		{"retry truncated", Event{Data: "x", Retry: 2*time.Millisecond - 1}, "data: x\nretry: 1\n\n"},
		{"retry an hour", Event{Data: "x", Retry: time.Hour}, "data: x\nretry: 3600000\n\n"},
		{"retry max", Event{Data: "x", Retry: time.Duration(1<<63 - 1)}, "data: x\nretry: 9223372036854\n\n"},

		// Comments.
		{"comment", Event{Comment: "hi", Data: "x"}, ": hi\ndata: x\n\n"},
		{"comment multi-line", Event{Comment: "a\nb\r\nc\rd", Data: "x"}, ": a\n: b\n: c\n: d\ndata: x\n\n"},
		{"comment trailing LF", Event{Comment: "a\n", Data: "x"}, ": a\n: \ndata: x\n\n"},
		{"comment injection", Event{Comment: "a\n\ndata: evil\n", Data: "x"}, ": a\n: \n: data: evil\n: \ndata: x\n\n"},

		// Field order.
		{"field order", Event{Comment: "c", ID: "1", Event: "e", Data: "d\ne", Retry: time.Second},
			": c\nid: 1\nevent: e\ndata: d\ndata: e\nretry: 1000\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			variants := []struct {
				name string
				ev   *Event
			}{{"given", &tt.ev}}
			if tt.ev.DataBytes == nil {
				variants = append(variants, struct {
					name string
					ev   *Event
				}{"bytes", withBytes(tt.ev)})
			}
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					got, err := AppendEvent(nil, v.ev)
					require.NoError(t, err)
					assert.Equal(t, tt.want, string(got))

					// Appending to a non-empty dst keeps its bytes.
					dst := append(make([]byte, 0, 4), "xyz"...)
					got2, err := AppendEvent(dst, v.ev)
					require.NoError(t, err)
					assert.Equal(t, "xyz"+tt.want, string(got2))

					// A client reads back exactly one event with the fields given.
					assert.Equal(t, []specEvent{wantClient(v.ev)}, parseAll(got))
				})
			}
		})
	}
}

func TestAppendEventLarge(t *testing.T) {
	t.Run("1MB one line", func(t *testing.T) {
		data := strings.Repeat("0123456789abcdef", 1<<16)
		require.Len(t, data, 1<<20)
		got, err := AppendEvent(nil, &Event{Data: data})
		require.NoError(t, err)
		require.Equal(t, "data: "+data+"\n\n", string(got))
		gotB, err := AppendEvent(nil, &Event{DataBytes: []byte(data)})
		require.NoError(t, err)
		require.Equal(t, got, gotB)
	})
	t.Run("1MB many lines", func(t *testing.T) {
		// 1 MiB of 64-byte lines, breaks cycling through LF, CR, CRLF.
		var data, want strings.Builder
		breaks := []string{"\n", "\r", "\r\n"}
		for i := 0; data.Len() < 1<<20; i++ {
			line := strings.Repeat(string(rune('a'+i%26)), 62)
			data.WriteString(line)
			data.WriteString(breaks[i%3])
			want.WriteString("data: " + line + "\n")
		}
		want.WriteString("data: \n\n")
		got, err := AppendEvent(nil, &Event{Data: data.String()})
		require.NoError(t, err)
		require.Equal(t, want.String(), string(got))
		evs := parseAll(got)
		require.Len(t, evs, 1)
		require.Equal(t, normalizeBreaks(data.String()), evs[0].Data)
	})
	t.Run("1MB of CRs", func(t *testing.T) {
		data := strings.Repeat("\r", 1<<20)
		got, err := AppendEvent(nil, &Event{Data: data})
		require.NoError(t, err)
		require.Equal(t, strings.Repeat("data: \n", 1<<20+1)+"\n", string(got))
	})
}

func TestAppendEventErrors(t *testing.T) {
	tests := []struct {
		name string
		ev   *Event
		err  error
	}{
		{"nil event", nil, ErrDataRequired},
		{"zero event", &Event{}, ErrDataRequired},
		{"no data with fields", &Event{ID: "1", Event: "e", Comment: "c", Retry: time.Second}, ErrDataRequired},
		{"nil DataBytes and empty Data", &Event{DataBytes: nil, Data: ""}, ErrDataRequired},
		{"negative retry", &Event{Data: "x", Retry: -1}, ErrInvalidRetry},
		{"id with LF", &Event{ID: "1\nevent: x", Data: "x"}, ErrInvalidID},
		{"id with CR", &Event{ID: "1\rdata: evil", Data: "x"}, ErrInvalidID},
		{"id with CRLF", &Event{ID: "1\r\n", Data: "x"}, ErrInvalidID},
		{"id with NUL", &Event{ID: "a\x00b", Data: "x"}, ErrInvalidID},
		{"id only LF", &Event{ID: "\n", Data: "x"}, ErrInvalidID},
		{"id with LF at the end", &Event{ID: "12\n", Data: "x"}, ErrInvalidID},
		{"event type with LF", &Event{Event: "x\ndata: evil", Data: "x"}, ErrInvalidType},
		{"event type with CR", &Event{Event: "x\rid: 6", Data: "x"}, ErrInvalidType},
		{"event type with CRLF", &Event{Event: "x\r\n", Data: "x"}, ErrInvalidType},
		{"event type only CR", &Event{Event: "\r", Data: "x"}, ErrInvalidType},
		{"id injection with bytes data", &Event{ID: "1\n", DataBytes: []byte("x")}, ErrInvalidID},
		{"type injection with comment", &Event{Comment: "c", Event: "\n", Data: "x"}, ErrInvalidType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("nil dst", func(t *testing.T) {
				got, err := AppendEvent(nil, tt.ev)
				require.ErrorIs(t, err, tt.err)
				assert.Nil(t, got)
			})
			t.Run("empty dst with capacity", func(t *testing.T) {
				dst := make([]byte, 0, 256)
				got, err := AppendEvent(dst, tt.ev)
				require.ErrorIs(t, err, tt.err)
				assert.Empty(t, got)
				assert.Equal(t, 256, cap(got))
				// Nothing was written past len either.
				assert.Equal(t, make([]byte, 256), got[:256])
			})
			t.Run("non-empty dst", func(t *testing.T) {
				dst := make([]byte, 0, 256)
				dst = append(dst, "data: before\n\n"...)
				got, err := AppendEvent(dst, tt.ev)
				require.ErrorIs(t, err, tt.err)
				assert.Equal(t, "data: before\n\n", string(got))
				assert.Same(t, &dst[0], &got[0])
				assert.Equal(t, make([]byte, 256-len(dst)), got[len(dst):256])
			})
			t.Run("NewFrame", func(t *testing.T) {
				f, err := NewFrame(tt.ev)
				require.ErrorIs(t, err, tt.err)
				assert.Nil(t, f)
			})
		})
	}
}

func TestAppendEventDoesNotRetain(t *testing.T) {
	data := []byte("abc\ndef")
	ev := &Event{ID: "1", DataBytes: data}
	got, err := AppendEvent(nil, ev)
	require.NoError(t, err)
	copy(data, "XXXXXXX")
	assert.Equal(t, "id: 1\ndata: abc\ndata: def\n\n", string(got))
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"heartbeat", "", ": \n\n"},
		{"one line", "ping", ": ping\n\n"},
		{"LF", "a\nb", ": a\n: b\n\n"},
		{"CR", "a\rb", ": a\n: b\n\n"},
		{"CRLF", "a\r\nb", ": a\n: b\n\n"},
		{"trailing LF", "a\n", ": a\n: \n\n"},
		{"lone CR at the end", "a\r", ": a\n: \n\n"},
		{"mixed", "\r\r\n\n", ": \n: \n: \n: \n\n"},
		{"injection", "x\n\ndata: evil\n\n", ": x\n: \n: data: evil\n: \n: \n\n"},
		{"UTF-8 and NUL", "é\x00", ": é\x00\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendComment(nil, tt.text)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, "pre"+tt.want, string(AppendComment([]byte("pre"), tt.text)))
			// A client dispatches nothing and ends in a clean state.
			var p specParser
			assert.Empty(t, p.Feed(got))
			assert.False(t, p.Pending())
			assert.Equal(t, CommentFrame(tt.text).Bytes(), got)
		})
	}
}

// TestAppendEventStream writes several events into one buffer, as a
// connection does, and reads them back in order.
func TestAppendEventStream(t *testing.T) {
	evs := []*Event{
		{ID: "1", Event: "a", Data: "one\r"},
		{Data: "two\r\nlines"},
		{ID: "3", DataBytes: []byte{}},
		{Event: "b", Data: "\r", Retry: time.Second},
	}
	var buf []byte
	var err error
	for i, ev := range evs {
		buf, err = AppendEvent(buf, ev)
		require.NoError(t, err)
		if i == 1 {
			buf = AppendComment(buf, "keepalive")
		}
	}
	want := []specEvent{
		{Type: "a", Data: "one\n", ID: "1", IDSet: true},
		{Type: "message", Data: "two\nlines", ID: "1"},
		{Type: "message", Data: "", ID: "3", IDSet: true},
		{Type: "b", Data: "\n", ID: "3", Retry: 1000, HasRetry: true},
	}
	assert.Equal(t, want, parseAll(buf))
	// The same stream split at every point.
	for i := 0; i <= len(buf); i++ {
		var p specParser
		got := append(p.Feed(buf[:i]), p.Feed(buf[i:])...)
		require.Equal(t, want, got, "split at %d", i)
	}
}

func TestFrame(t *testing.T) {
	t.Run("same bytes as AppendEvent", func(t *testing.T) {
		for _, ev := range []*Event{
			{Data: "x"},
			{DataBytes: []byte{}},
			{Comment: "c\nd", ID: "1", Event: "e", Data: "a\r\nb", Retry: 2 * time.Second},
		} {
			want, err := AppendEvent(nil, ev)
			require.NoError(t, err)
			f, err := NewFrame(ev)
			require.NoError(t, err)
			assert.Equal(t, want, f.Bytes())
			assert.Equal(t, len(want), f.Len())
		}
	})
	t.Run("copies DataBytes", func(t *testing.T) {
		data := []byte("abc")
		f, err := NewFrame(&Event{DataBytes: data})
		require.NoError(t, err)
		copy(data, "XYZ")
		assert.Equal(t, "data: abc\n\n", string(f.Bytes()))
	})
	t.Run("invalid", func(t *testing.T) {
		f, err := NewFrame(&Event{ID: "\n", Data: "x"})
		require.ErrorIs(t, err, ErrInvalidID)
		assert.Nil(t, f)
	})
	t.Run("nil", func(t *testing.T) {
		var f *Frame
		assert.Nil(t, f.Bytes())
		assert.Equal(t, 0, f.Len())
	})
	t.Run("zero", func(t *testing.T) {
		var f Frame
		assert.Empty(t, f.Bytes())
		assert.Equal(t, 0, f.Len())
	})
	t.Run("comment", func(t *testing.T) {
		f := CommentFrame("a\nb")
		assert.Equal(t, ": a\n: b\n\n", string(f.Bytes()))
		assert.Equal(t, 9, f.Len())
		assert.Equal(t, ": \n\n", string(CommentFrame("").Bytes()))
	})
	t.Run("frames concatenate into a stream", func(t *testing.T) {
		f1, err := NewFrame(&Event{ID: "1", Data: "a"})
		require.NoError(t, err)
		f2, err := NewFrame(&Event{Data: "b"})
		require.NoError(t, err)
		stream := bytes.Join([][]byte{f1.Bytes(), CommentFrame("").Bytes(), f2.Bytes()}, nil)
		assert.Equal(t, []specEvent{
			{Type: "message", Data: "a", ID: "1", IDSet: true},
			{Type: "message", Data: "b", ID: "1"},
		}, parseAll(stream))
	})
}

func TestValidateLongFields(t *testing.T) {
	uuid := "3f2b8c1e-9d4a-4b7e-8c2f-1a5e6d7c8b9a"
	for i := 0; i <= len(uuid); i++ {
		for _, c := range []string{"\n", "\r", "\x00"} {
			id := uuid[:i] + c + uuid[i:]
			_, err := AppendEvent(nil, &Event{ID: id, Data: "x"})
			require.ErrorIs(t, err, ErrInvalidID, "%q", id)
			typ := uuid[:i] + c + uuid[i:]
			_, err = AppendEvent(nil, &Event{Event: typ, Data: "x"})
			if c == "\x00" {
				require.NoError(t, err, "%q", typ)
			} else {
				require.ErrorIs(t, err, ErrInvalidType, "%q", typ)
			}
		}
		// Other control bytes take the slow path and are valid.
		for _, c := range []string{"\t", "\v", "\f", "\x01"} {
			s := uuid[:i] + c + uuid[i:]
			got, err := AppendEvent(nil, &Event{ID: s, Event: s, Data: "x"})
			require.NoError(t, err, "%q", s)
			require.Equal(t, "id: "+s+"\nevent: "+s+"\ndata: x\n\n", string(got))
		}
	}
}
