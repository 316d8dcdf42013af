package loadtest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// got is an event as a test sees it.
type got struct {
	ID    string
	IDSet bool
	Type  string
	Data  string
}

// collect is an EventHandler that keeps copies of what it receives.
type collect []got

func (c *collect) OnEvent(ev *Event) {
	*c = append(*c, got{ID: string(ev.ID), IDSet: ev.IDSet, Type: string(ev.Type), Data: string(ev.Data)})
}

// feedPieces feeds stream to a fresh Parser cut at the given offsets.
func feedPieces(stream string, cuts ...int) []got {
	var p Parser
	var c collect
	prev := 0
	for _, cut := range append(cuts, len(stream)) {
		p.Feed([]byte(stream[prev:cut]), &c)
		prev = cut
	}
	return c
}

var parserCases = []struct {
	name   string
	stream string
	want   []got
}{
	{"LF", "id: 1\ndata: a\n\n", []got{{ID: "1", IDSet: true, Data: "a"}}},
	{"CRLF", "id: 1\r\ndata: a\r\n\r\n", []got{{ID: "1", IDSet: true, Data: "a"}}},
	{"CR", "id: 1\rdata: a\r\r", []got{{ID: "1", IDSet: true, Data: "a"}}},
	{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []got{{Data: "a\nb\nc"}}},
	{"multi-line data", "data: one\ndata: two\ndata: three\n\n", []got{{Data: "one\ntwo\nthree"}}},
	{"comments ignored", ": hello\n:\ndata: x\n: between\n\n: heartbeat\n\n", []got{{Data: "x"}}},
	{"only the first space stripped", "data:  two\ndata:none\n\n", []got{{Data: " two\nnone"}}},
	{"field without colon", "data\n\n", []got{{Data: ""}}},
	{"empty data line", "data:\ndata:\n\n", []got{{Data: "\n"}}},
	{"no data: no event", "id: 7\nevent: x\n\ndata: y\n\n", []got{{ID: "7", Data: "y"}}},
	{"event type reset after dispatch", "event: add\ndata: 1\n\ndata: 2\n\n", []got{{Type: "add", Data: "1"}, {Data: "2"}}},
	{"id persists, IDSet does not", "id: 5\ndata: a\n\ndata: b\n\n", []got{{ID: "5", IDSet: true, Data: "a"}, {ID: "5", Data: "b"}}},
	{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []got{{ID: "1", IDSet: true, Data: "a"}, {ID: "1", Data: "b"}}},
	{"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", []got{{ID: "1", IDSet: true, Data: "a"}, {IDSet: true, Data: "b"}}},
	{"unknown fields ignored", "foo: bar\ndata: a\nretry: x\n\n", []got{{Data: "a"}}},
	{"colon in value", "data: a: b\n\n", []got{{Data: "a: b"}}},
	{"BOM skipped once", "\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n", []got{{Data: "a"}}},
	{"unterminated event not dispatched", "data: a\n\ndata: b\n", []got{{Data: "a"}}},
	{"UTF-8", "data: héllo ✓\n\n", []got{{Data: "héllo ✓"}}},
}

func TestParser(t *testing.T) {
	for _, tc := range parserCases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, []got(feedPieces(tc.stream)), "whole")
			for i := 0; i <= len(tc.stream); i++ {
				require.Equal(t, tc.want, []got(feedPieces(tc.stream, i)), "cut at %d", i)
				for j := i; j <= len(tc.stream); j++ {
					require.Equal(t, tc.want, []got(feedPieces(tc.stream, i, j)), "cut at %d and %d", i, j)
				}
			}
			var each []int
			for i := 1; i < len(tc.stream); i++ {
				each = append(each, i)
			}
			require.Equal(t, tc.want, []got(feedPieces(tc.stream, each...)), "byte by byte")
		})
	}
}

func TestParserRetryAndLastEventID(t *testing.T) {
	var p Parser
	var c collect
	p.Feed([]byte("retry: 1500\nretry: bad\nid: 42\ndata: x\n\n"), &c)
	ms, ok := p.Retry()
	assert.True(t, ok)
	assert.Equal(t, int64(1500), ms)
	assert.Equal(t, "42", string(p.LastEventID()))
	p.Reset()
	_, ok = p.Retry()
	assert.False(t, ok)
	assert.Empty(t, p.LastEventID())
}

// A CR at the end of one piece and LF at the start of the next is one line
// break, not two (which would dispatch an event early).
func TestParserCRLFAcrossPieces(t *testing.T) {
	var p Parser
	var c collect
	p.Feed([]byte("data: a\r"), &c)
	p.Feed([]byte("\ndata: b\r"), &c)
	p.Feed([]byte("\n\r"), &c)
	p.Feed([]byte("\n"), &c)
	assert.Equal(t, []got{{Data: "a\nb"}}, []got(c))
}

// A big event does not leave its buffers on the parser.
func TestParserDropsBigBuffers(t *testing.T) {
	var p Parser
	var c collect
	big := strings.Repeat("x", 3*maxKeep)
	p.Feed([]byte("data: "+big[:maxKeep]), &c)
	p.Feed([]byte(big[maxKeep:]+"\n\n"), &c)
	require.Len(t, c, 1)
	assert.Len(t, c[0].Data, 3*maxKeep)
	assert.Nil(t, p.line)
	assert.Nil(t, p.data)
	p.Feed([]byte("data: small\n\n"), &c)
	assert.LessOrEqual(t, cap(p.data), maxKeep)
}

func TestLeadingInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1736000000123456789 xxx", 1736000000123456789, true},
		{"42", 42, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"12345678901234567890", 0, false},
		{" 1", 0, false},
		{"", 0, false},
	} {
		n, ok := leadingInt([]byte(tc.in))
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.want, n, tc.in)
	}
}
