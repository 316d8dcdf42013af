package ssespec

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpecParser(t *testing.T) {
	msg := func(data string) Event { return Event{Type: "message", Data: data} }
	tests := []struct {
		name string
		in   string
		want []Event
	}{
		{"empty stream", "", nil},
		{"one event", "data: x\n\n", []Event{msg("x")}},
		{"no space after colon", "data:x\n\n", []Event{msg("x")}},
		{"only one space stripped", "data:  x\n\n", []Event{msg(" x")}},
		{"no colon: empty value", "data\n\n", []Event{msg("")}},
		{"two data lines", "data: a\ndata: b\n\n", []Event{msg("a\nb")}},
		{"empty data line then text", "data:\ndata: b\n\n", []Event{msg("\nb")}},
		{"two empty data lines", "data\ndata\n\n", []Event{msg("\n")}},
		{"CRLF breaks", "data: a\r\ndata: b\r\n\r\n", []Event{msg("a\nb")}},
		{"CR breaks", "data: a\rdata: b\r\r", []Event{msg("a\nb")}},
		{"mixed breaks", "data: a\r\ndata: b\rdata: c\n\r\n", []Event{msg("a\nb\nc")}},
		{"CR CRLF is two breaks", "data: a\r\r\n", []Event{msg("a")}},
		{"LF CR is two breaks", "data: a\n\r", []Event{msg("a")}},
		{"no data: nothing dispatched", "event: x\nid: 1\n\n", nil},
		{"no data resets type", "event: x\n\ndata: y\n\n", []Event{msg("y")}},
		{"event type", "event: add\ndata: y\n\n", []Event{{Type: "add", Data: "y"}}},
		{"last event type wins", "event: a\nevent: b\ndata: y\n\n", []Event{{Type: "b", Data: "y"}}},
		{"empty event type is message", "event:\ndata: y\n\n", []Event{msg("y")}},
		{"type reset after dispatch", "event: a\ndata: 1\n\ndata: 2\n\n", []Event{{Type: "a", Data: "1"}, msg("2")}},
		{"id", "id: 7\ndata: y\n\n", []Event{{Type: "message", Data: "y", ID: "7", IDSet: true}}},
		{"id carries over", "id: 7\ndata: 1\n\ndata: 2\n\n", []Event{
			{Type: "message", Data: "1", ID: "7", IDSet: true}, {Type: "message", Data: "2", ID: "7"},
		}},
		{"id set by a block without data", "id: 7\n\ndata: 2\n\n", []Event{{Type: "message", Data: "2", ID: "7"}}},
		{"empty id resets", "id: 7\ndata: 1\n\nid\ndata: 2\n\n", []Event{
			{Type: "message", Data: "1", ID: "7", IDSet: true}, {Type: "message", Data: "2", IDSet: true},
		}},
		{"id with NUL ignored", "id: 7\ndata: 1\n\nid: a\x00b\ndata: 2\n\n", []Event{
			{Type: "message", Data: "1", ID: "7", IDSet: true}, {Type: "message", Data: "2", ID: "7"},
		}},
		{"retry", "retry: 1500\ndata: y\n\n", []Event{{Type: "message", Data: "y", Retry: 1500, HasRetry: true}}},
		{"retry zero", "retry: 0\ndata: y\n\n", []Event{{Type: "message", Data: "y", HasRetry: true}}},
		{"retry not digits ignored", "retry: 1.5\nretry: -1\nretry: 1a\nretry:\nretry:  1\ndata: y\n\n", []Event{msg("y")}},
		{"retry overflow ignored", "retry: 99999999999999999999\ndata: y\n\n", []Event{msg("y")}},
		{"comment ignored", ": hi\n:\ndata: y\n: there\n\n", []Event{msg("y")}},
		{"unknown field ignored", "foo: bar\nData: x\ndata: y\n\n", []Event{msg("y")}},
		{"field name with space is not data", "data : x\ndata: y\n\n", []Event{msg("y")}},
		{"value keeps later colons", "data: a: b\n\n", []Event{msg("a: b")}},
		{"NUL in data kept", "data: a\x00b\n\n", []Event{msg("a\x00b")}},
		{"invalid UTF-8 kept as bytes", "data: \xff\xfe\n\n", []Event{msg("\xff\xfe")}},
		{"leading BOM skipped", "\xEF\xBB\xBFdata: y\n\n", []Event{msg("y")}},
		{"only one BOM skipped", "\xEF\xBB\xBF\xEF\xBB\xBFdata: y\n\ndata: z\n\n", []Event{msg("z")}},
		{"BOM later is data", "data: \xEF\xBB\xBFy\n\n", []Event{msg("\xEF\xBB\xBFy")}},
		{"unterminated event discarded", "data: a\n\ndata: b\n", []Event{msg("a")}},
		{"unterminated line discarded", "data: a\n\ndata: b", []Event{msg("a")}},
		{"injection stays data", "data: a\ndata: event: x\n\n", []Event{msg("a\nevent: x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ParseAll([]byte(tt.in)))
		})
	}
}

// TestSpecParserChunks feeds streams split at every point, and byte by byte,
// and expects the same events as parsing them whole.
func TestSpecParserChunks(t *testing.T) {
	streams := []string{
		"data: a\r\ndata: b\r\n\r\n",
		"data: a\r\rdata: b\r\r",
		"id: 1\revent: e\rdata: x\r\rretry: 10\r\ndata: y\n\n",
		"\xEF\xBB\xBFdata: y\r\n\r\n",
		"\xEF\xBB\n\ndata: y\n\n",
		": c\r\ndata: \r\n\r\n",
	}
	for _, s := range streams {
		want := ParseAll([]byte(s))
		require.NotEmpty(t, want, "%q", s)
		for i := 0; i <= len(s); i++ {
			var p Parser
			got := append(p.Feed([]byte(s[:i])), p.Feed([]byte(s[i:]))...)
			require.Equal(t, want, got, "%q split at %d", s, i)
			assert.False(t, p.Pending(), "%q split at %d", s, i)
		}
		var p Parser
		var got []Event
		for i := 0; i < len(s); i++ {
			got = append(got, p.Feed([]byte{s[i]})...)
		}
		require.Equal(t, want, got, "%q byte by byte", s)
	}
}

func TestSpecParserCRAtChunkEnd(t *testing.T) {
	var p Parser
	// The CR ends the blank line at once: the event is dispatched without
	// waiting to see whether an LF follows.
	assert.Equal(t, []Event{{Type: "message", Data: "x"}}, p.Feed([]byte("data: x\r\r")))
	// The LF that follows belongs to that CR: it is not another blank line.
	assert.Empty(t, p.Feed([]byte("\ndata: y\r")))
	assert.True(t, p.Pending())
	assert.Equal(t, []Event{{Type: "message", Data: "y"}}, p.Feed([]byte("\n\r\n")))
	assert.False(t, p.Pending())
}

func TestSpecParserState(t *testing.T) {
	var p Parser
	p.Feed([]byte("retry: 3000\nid: abc\n\n"))
	assert.Equal(t, "abc", p.LastEventID)
	assert.True(t, p.HasRetry)
	assert.Equal(t, int64(3000), p.Retry)
	assert.Equal(t, []Event{{Type: "message", Data: "z", ID: "abc"}}, p.Feed([]byte("data: z\n\n")))
}

func TestNormalizeBreaks(t *testing.T) {
	assert.Equal(t, "a\nb\nc\n\nd\n", NormalizeBreaks("a\r\nb\rc\n\r\nd\r"))
	assert.Equal(t, "\n\n\n", NormalizeBreaks("\r\r\n\n"))
}

func TestFeedBlocks(t *testing.T) {
	in := "\xEF\xBB\xBF: hb\r\n\r\nretry: 3000\r\rid: 1\ndata: x\n\n\n: a\n: b\n\n"
	want := []Block{
		{Comments: []string{" hb"}},
		{Event: Event{Retry: 3000, HasRetry: true}},
		{Event: Event{Type: "message", Data: "x", ID: "1", IDSet: true}, Dispatched: true},
		{Event: Event{ID: "1"}, Comments: []string{" a", " b"}},
	}
	var whole Parser
	assert.Equal(t, want, whole.FeedBlocks([]byte(in)), "fed whole")
	var p Parser // byte by byte: splits inside the BOM and between CR and LF
	var got []Block
	for i := range len(in) {
		got = append(got, p.FeedBlocks([]byte{in[i]})...)
	}
	assert.Equal(t, want, got, "fed byte by byte")
}
