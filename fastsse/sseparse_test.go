package fastsse

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// specParser interprets an event stream the way a browser's EventSource does,
// written from the WHATWG HTML standard, "Interpreting an event stream"
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// Tests use it to check what a client really receives, from encoder output or
// from a stream read off the network.
//
// It works on bytes and does not UTF-8 decode: the standard's decoder turns
// invalid sequences into U+FFFD but never swallows an ASCII byte, so the line
// and field structure (CR, LF, colon) is the same either way, and byte-exact
// data is more useful to tests. A leading UTF-8 BOM is skipped, as the
// standard's decode step does.
//
// Input may be fed in chunks split anywhere, including between the CR and LF
// of a CRLF and inside the BOM. The zero value is a fresh stream. Not safe for
// concurrent use.
type specParser struct {
	started bool   // past the BOM check
	bom     []byte // leading bytes held while they may still be a BOM
	skipLF  bool   // the last line ended at a CR: a following LF is part of that break
	line    []byte // the incomplete line

	data      []byte // data buffer
	eventType string // event type buffer
	// LastEventID is the last event ID buffer. Like the standard's, it is not
	// reset on dispatch: it carries over to later events.
	LastEventID string
	// Retry is the stream's reconnection time in milliseconds, valid when
	// HasRetry; set by every valid retry field.
	Retry    int64
	HasRetry bool

	blockRetry    int64 // retry seen since the last blank line
	blockHasRetry bool
	blockIDSet    bool // an id field was accepted since the last blank line
}

// specEvent is one dispatched MessageEvent.
type specEvent struct {
	Type string // "message" when the stream gave none
	Data string // with the single trailing LF removed
	ID   string // the lastEventId at dispatch (the last event ID buffer)
	// Retry is the value of the last valid retry field in this event's block
	// (between the previous blank line and the one that dispatched it), valid
	// when HasRetry. The standard makes retry a stream setting; the parser
	// keeps that in specParser.Retry.
	Retry    int64
	HasRetry bool
	// IDSet reports whether the block itself set the id (an id field without
	// NUL), as opposed to ID carried over from an earlier event.
	IDSet bool
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// feed interprets b and returns the events dispatched by it, in order. A
// partial line or an event not yet ended by a blank line is kept for the next
// call.
func (p *specParser) feed(b []byte) []specEvent {
	if !p.started {
		p.bom = append(p.bom, b...)
		n := min(len(p.bom), len(utf8BOM))
		if !bytes.Equal(p.bom[:n], utf8BOM[:n]) {
			b, p.bom, p.started = p.bom, nil, true // not a BOM: interpret all of it
		} else if n == len(utf8BOM) {
			b, p.bom, p.started = p.bom[n:], nil, true // a BOM: skip it
		} else {
			return nil // still a prefix of a BOM: wait for more
		}
	}
	var out []specEvent
	for len(b) > 0 {
		if p.skipLF {
			p.skipLF = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			p.line = append(p.line, b...)
			break
		}
		p.line = append(p.line, b[:i]...)
		if b[i] == '\r' {
			p.skipLF = true
		}
		b = b[i+1:]
		if ev, ok := p.processLine(p.line); ok {
			out = append(out, ev)
		}
		p.line = p.line[:0]
	}
	return out
}

// pending reports whether the parser holds anything that a later blank line
// could still dispatch or complete: a partial line or data not yet dispatched.
func (p *specParser) pending() bool {
	return len(p.line) > 0 || len(p.data) > 0 || len(p.bom) > 0
}

// processLine handles one complete line and reports a dispatched event.
func (p *specParser) processLine(line []byte) (specEvent, bool) {
	if len(line) == 0 {
		return p.dispatch()
	}
	if line[0] == ':' {
		return specEvent{}, false // comment
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		p.eventType = string(value)
	case "data":
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.LastEventID = string(value)
			p.blockIDSet = true
		}
	case "retry":
		if isASCIIDigits(value) {
			// The standard sets no upper bound; a value that does not fit an
			// int64 is ignored here.
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil {
				p.Retry, p.HasRetry = n, true
				p.blockRetry, p.blockHasRetry = n, true
			}
		}
	}
	return specEvent{}, false
}

// dispatch runs the standard's "dispatch the event" on a blank line.
func (p *specParser) dispatch() (specEvent, bool) {
	ev := specEvent{
		ID:       p.LastEventID,
		Retry:    p.blockRetry,
		HasRetry: p.blockHasRetry,
		IDSet:    p.blockIDSet,
	}
	p.blockRetry, p.blockHasRetry, p.blockIDSet = 0, false, false
	if len(p.data) == 0 {
		p.eventType = ""
		return specEvent{}, false
	}
	data := p.data
	if data[len(data)-1] == '\n' {
		data = data[:len(data)-1]
	}
	ev.Data = string(data)
	ev.Type = p.eventType
	if ev.Type == "" {
		ev.Type = "message"
	}
	p.data = p.data[:0]
	p.eventType = ""
	return ev, true
}

// isASCIIDigits reports whether v is one or more ASCII digits. (Browsers
// ignore an empty retry value.)
func isASCIIDigits(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseAll interprets b as a whole stream, from its start to its end, and
// returns the events dispatched. An event not ended by a blank line is
// discarded, as the standard says for the end of the stream.
func parseAll(b []byte) []specEvent {
	var p specParser
	return p.feed(b)
}

// normalizeBreaks turns CRLF and lone CR into LF, as a client sees data lines.
func normalizeBreaks(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

func TestSpecParser(t *testing.T) {
	msg := func(data string) specEvent { return specEvent{Type: "message", Data: data} }
	tests := []struct {
		name string
		in   string
		want []specEvent
	}{
		{"empty stream", "", nil},
		{"one event", "data: x\n\n", []specEvent{msg("x")}},
		{"no space after colon", "data:x\n\n", []specEvent{msg("x")}},
		{"only one space stripped", "data:  x\n\n", []specEvent{msg(" x")}},
		{"no colon: empty value", "data\n\n", []specEvent{msg("")}},
		{"two data lines", "data: a\ndata: b\n\n", []specEvent{msg("a\nb")}},
		{"empty data line then text", "data:\ndata: b\n\n", []specEvent{msg("\nb")}},
		{"two empty data lines", "data\ndata\n\n", []specEvent{msg("\n")}},
		{"CRLF breaks", "data: a\r\ndata: b\r\n\r\n", []specEvent{msg("a\nb")}},
		{"CR breaks", "data: a\rdata: b\r\r", []specEvent{msg("a\nb")}},
		{"mixed breaks", "data: a\r\ndata: b\rdata: c\n\r\n", []specEvent{msg("a\nb\nc")}},
		{"CR CRLF is two breaks", "data: a\r\r\n", []specEvent{msg("a")}},
		{"LF CR is two breaks", "data: a\n\r", []specEvent{msg("a")}},
		{"no data: nothing dispatched", "event: x\nid: 1\n\n", nil},
		{"no data resets type", "event: x\n\ndata: y\n\n", []specEvent{msg("y")}},
		{"event type", "event: add\ndata: y\n\n", []specEvent{{Type: "add", Data: "y"}}},
		{"last event type wins", "event: a\nevent: b\ndata: y\n\n", []specEvent{{Type: "b", Data: "y"}}},
		{"empty event type is message", "event:\ndata: y\n\n", []specEvent{msg("y")}},
		{"type reset after dispatch", "event: a\ndata: 1\n\ndata: 2\n\n", []specEvent{{Type: "a", Data: "1"}, msg("2")}},
		{"id", "id: 7\ndata: y\n\n", []specEvent{{Type: "message", Data: "y", ID: "7", IDSet: true}}},
		{"id carries over", "id: 7\ndata: 1\n\ndata: 2\n\n", []specEvent{
			{Type: "message", Data: "1", ID: "7", IDSet: true}, {Type: "message", Data: "2", ID: "7"},
		}},
		{"id set by a block without data", "id: 7\n\ndata: 2\n\n", []specEvent{{Type: "message", Data: "2", ID: "7"}}},
		{"empty id resets", "id: 7\ndata: 1\n\nid\ndata: 2\n\n", []specEvent{
			{Type: "message", Data: "1", ID: "7", IDSet: true}, {Type: "message", Data: "2", IDSet: true},
		}},
		{"id with NUL ignored", "id: 7\ndata: 1\n\nid: a\x00b\ndata: 2\n\n", []specEvent{
			{Type: "message", Data: "1", ID: "7", IDSet: true}, {Type: "message", Data: "2", ID: "7"},
		}},
		{"retry", "retry: 1500\ndata: y\n\n", []specEvent{{Type: "message", Data: "y", Retry: 1500, HasRetry: true}}},
		{"retry zero", "retry: 0\ndata: y\n\n", []specEvent{{Type: "message", Data: "y", HasRetry: true}}},
		{"retry not digits ignored", "retry: 1.5\nretry: -1\nretry: 1a\nretry:\nretry:  1\ndata: y\n\n", []specEvent{msg("y")}},
		{"retry overflow ignored", "retry: 99999999999999999999\ndata: y\n\n", []specEvent{msg("y")}},
		{"comment ignored", ": hi\n:\ndata: y\n: there\n\n", []specEvent{msg("y")}},
		{"unknown field ignored", "foo: bar\nData: x\ndata: y\n\n", []specEvent{msg("y")}},
		{"field name with space is not data", "data : x\ndata: y\n\n", []specEvent{msg("y")}},
		{"value keeps later colons", "data: a: b\n\n", []specEvent{msg("a: b")}},
		{"NUL in data kept", "data: a\x00b\n\n", []specEvent{msg("a\x00b")}},
		{"invalid UTF-8 kept as bytes", "data: \xff\xfe\n\n", []specEvent{msg("\xff\xfe")}},
		{"leading BOM skipped", "\xEF\xBB\xBFdata: y\n\n", []specEvent{msg("y")}},
		{"only one BOM skipped", "\xEF\xBB\xBF\xEF\xBB\xBFdata: y\n\ndata: z\n\n", []specEvent{msg("z")}},
		{"BOM later is data", "data: \xEF\xBB\xBFy\n\n", []specEvent{msg("\xEF\xBB\xBFy")}},
		{"unterminated event discarded", "data: a\n\ndata: b\n", []specEvent{msg("a")}},
		{"unterminated line discarded", "data: a\n\ndata: b", []specEvent{msg("a")}},
		{"injection stays data", "data: a\ndata: event: x\n\n", []specEvent{msg("a\nevent: x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, parseAll([]byte(tt.in)))
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
		want := parseAll([]byte(s))
		require.NotEmpty(t, want, "%q", s)
		for i := 0; i <= len(s); i++ {
			var p specParser
			got := append(p.feed([]byte(s[:i])), p.feed([]byte(s[i:]))...)
			require.Equal(t, want, got, "%q split at %d", s, i)
			assert.False(t, p.pending(), "%q split at %d", s, i)
		}
		var p specParser
		var got []specEvent
		for i := 0; i < len(s); i++ {
			got = append(got, p.feed([]byte{s[i]})...)
		}
		require.Equal(t, want, got, "%q byte by byte", s)
	}
}

func TestSpecParserCRAtChunkEnd(t *testing.T) {
	var p specParser
	// The CR ends the blank line at once: the event is dispatched without
	// waiting to see whether an LF follows.
	assert.Equal(t, []specEvent{{Type: "message", Data: "x"}}, p.feed([]byte("data: x\r\r")))
	// The LF that follows belongs to that CR: it is not another blank line.
	assert.Empty(t, p.feed([]byte("\ndata: y\r")))
	assert.True(t, p.pending())
	assert.Equal(t, []specEvent{{Type: "message", Data: "y"}}, p.feed([]byte("\n\r\n")))
	assert.False(t, p.pending())
}

func TestSpecParserState(t *testing.T) {
	var p specParser
	p.feed([]byte("retry: 3000\nid: abc\n\n"))
	assert.Equal(t, "abc", p.LastEventID)
	assert.True(t, p.HasRetry)
	assert.Equal(t, int64(3000), p.Retry)
	assert.Equal(t, []specEvent{{Type: "message", Data: "z", ID: "abc"}}, p.feed([]byte("data: z\n\n")))
}

func TestNormalizeBreaks(t *testing.T) {
	assert.Equal(t, "a\nb\nc\n\nd\n", normalizeBreaks("a\r\nb\rc\n\r\nd\r"))
	assert.Equal(t, "\n\n\n", normalizeBreaks("\r\r\n\n"))
}
