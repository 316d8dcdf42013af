package loadtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunk frames the body as HTTP/1.1 chunks cut at the given offsets, then
// the last chunk (with a trailer when trailer is set).
func chunk(body string, trailer bool, cuts ...int) string {
	var b strings.Builder
	prev := 0
	for _, cut := range append(cuts, len(body)) {
		if cut > prev {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", cut-prev, body[prev:cut])
		}
		prev = cut
	}
	b.WriteString("0\r\n")
	if trailer {
		b.WriteString("X-Trailer: yes\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// decode feeds wire to a fresh chunked bodyDecoder cut at the given offsets; it
// returns the events and the error of the last Feed.
func decode(t *testing.T, framing uint8, n int64, wire string, cuts ...int) ([]got, error) {
	t.Helper()
	var b bodyDecoder
	b.Reset(framing, n)
	var c collect
	var err error
	prev := 0
	for _, cut := range append(cuts, len(wire)) {
		err = b.Feed([]byte(wire[prev:cut]), &c)
		if err != nil {
			break
		}
		prev = cut
	}
	return c, err
}

func TestBodyChunked(t *testing.T) {
	body := "id: 1\r\ndata: 1736000000123456789 a\r\n\r\n: heartbeat\r\n\r\nid: 2\ndata: x\ndata: y\n\n"
	want := []got{{ID: "1", IDSet: true, Data: "1736000000123456789 a"}, {ID: "2", IDSet: true, Data: "x\ny"}}
	// A chunk boundary at every offset of the event stream (inside every
	// CRLF among them), and then a read boundary at every offset of the wire.
	for cut := 0; cut <= len(body); cut++ {
		for _, trailer := range []bool{false, true} {
			wire := chunk(body, trailer, cut)
			for read := 0; read <= len(wire); read++ {
				evs, err := decode(t, framingChunked, 0, wire, read)
				require.ErrorIs(t, err, errEnded, "chunk cut %d, read cut %d", cut, read)
				require.Equal(t, want, evs, "chunk cut %d, read cut %d", cut, read)
			}
		}
	}
	// Many small chunks, fed byte by byte.
	var cuts, each []int
	for i := 1; i < len(body); i += 3 {
		cuts = append(cuts, i)
	}
	wire := chunk(body, false, cuts...)
	for i := 1; i < len(wire); i++ {
		each = append(each, i)
	}
	evs, err := decode(t, framingChunked, 0, wire, each...)
	require.ErrorIs(t, err, errEnded)
	require.Equal(t, want, evs)
}

func TestBodyChunkedOpen(t *testing.T) {
	// A stream that has not ended: no error, events so far.
	evs, err := decode(t, framingChunked, 0, "8\r\ndata: a\n\r\n1\r\n\n\r\n5\r\ndata:")
	require.NoError(t, err)
	assert.Equal(t, []got{{Data: "a"}}, evs)
}

func TestBodyChunkedExtensionsAndCase(t *testing.T) {
	evs, err := decode(t, framingChunked, 0, "B;name=value\r\ndata: abc\n\n\r\n0\r\n\r\n")
	require.ErrorIs(t, err, errEnded)
	assert.Equal(t, []got{{Data: "abc"}}, evs)
	evs, err = decode(t, framingChunked, 0, "b\ndata: abc\n\n\n0\n\n") // bare LF line ends
	require.ErrorIs(t, err, errEnded)
	assert.Equal(t, []got{{Data: "abc"}}, evs)
}

func TestBodyChunkedErrors(t *testing.T) {
	for name, wire := range map[string]string{
		"no digits":        "\r\ndata",
		"bad digit":        "1g\r\n",
		"too long":         "1000000000000000\r\n",
		"missing data CR":  "2\r\nabX",
		"missing data LF":  "2\r\nab\rX",
		"size CR alone":    "2\rX",
		"last chunk CR":    "0\r\n\rX",
		"extension no num": ";x\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decode(t, framingChunked, 0, wire)
			assert.ErrorIs(t, err, errChunked)
			assert.Equal(t, causeProtocol, causeOf(err))
		})
	}
}

func TestBodyLengthAndClose(t *testing.T) {
	body := "data: a\n\ndata: b\n\n"
	for read := 0; read <= len(body); read++ {
		evs, err := decode(t, framingLength, int64(len(body)), body+"garbage", read)
		require.ErrorIs(t, err, errEnded)
		require.Equal(t, []got{{Data: "a"}, {Data: "b"}}, evs)

		evs, err = decode(t, framingClose, 0, body, read)
		require.NoError(t, err)
		require.Equal(t, []got{{Data: "a"}, {Data: "b"}}, evs)
	}
}

func TestParseResponseHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  string
		want response
		err  bool
	}{
		{"fasthttp stream", "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
			response{status: 200, framing: framingChunked, eventStream: true}, false},
		{"charset and case", "HTTP/1.1 200 OK\r\ncontent-type: Text/Event-Stream; charset=utf-8\r\ntransfer-encoding: gzip, Chunked\r\n\r\n",
			response{status: 200, framing: framingChunked, eventStream: true}, false},
		{"close-delimited", "HTTP/1.0 200 OK\nContent-Type: text/event-stream\n\n",
			response{status: 200, framing: framingClose, eventStream: true}, false},
		{"length", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\n",
			response{status: 503, framing: framingLength, length: 12}, false},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
			response{status: 200, framing: framingChunked}, false},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", response{}, true},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", response{}, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", response{status: 200}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := headerEnd([]byte(tc.hdr + "data: body\n\n"))
			require.Equal(t, len(tc.hdr), n)
			r, err := parseResponseHeader([]byte(tc.hdr[:n]))
			if tc.err {
				require.ErrorIs(t, err, errHeader)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, r)
		})
	}
	assert.Equal(t, -1, headerEnd([]byte("HTTP/1.1 200 OK\r\nA: b\r\n")))
}
