package sseclient

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunkReader returns b in reads whose sizes come from sizes, cycled: a
// size of 0 is a read that returns 0, nil (io.Reader allows it).
type chunkReader struct {
	b     []byte
	sizes []byte
	i     int
	zero  bool // the last read was empty
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := len(r.b)
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)])
		r.i++
		if n == 0 && r.zero {
			n = 1 // never two empty reads in a row
		}
		r.zero = n == 0
	}
	n = min(n, len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// parseChunked parses b, read in the chunks that sizes give, to its end.
func parseChunked(t testing.TB, b, sizes []byte, maxSize int) (*parser, []ssespec.Event, error) {
	p := &parser{max: maxSize}
	p.reset(&chunkReader{b: b, sizes: sizes})
	var out []ssespec.Event
	for {
		ev, err := p.next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return p, out, err
		}
		out = append(out, ssespec.Event{Type: string(ev.Type), Data: string(ev.Data), ID: string(ev.ID)})
	}
}

// FuzzParse: for any bytes, read in any chunks, the client's parser
// dispatches exactly the events internal/ssespec does (type, data, id) and
// ends with the same last event id buffer and reconnection time.
func FuzzParse(f *testing.F) {
	f.Add([]byte("id: 1\nevent: a\ndata: x\n\n"), []byte{1})
	f.Add([]byte("\xEF\xBB\xBFdata: bom\r\n\r\n"), []byte{1, 2})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		want := ssespec.ParseAll(data)
		var sp ssespec.Parser
		sp.Feed(data)
		p, got, err := parseChunked(t, data, sizes, 1<<20)
		require.NoError(t, err)
		require.Equal(t, len(want), len(got), "events")
		for i := range want {
			w := want[i]
			assert.Equal(t, ssespec.Event{Type: w.Type, Data: w.Data, ID: w.ID}, got[i], "event %d", i)
		}
		assert.Equal(t, sp.LastEventID, string(p.idBuf), "last event id buffer")
		assert.Equal(t, sp.HasRetry, p.hasRetry, "retry set")
		assert.Equal(t, sp.Retry, p.retry, "retry")

		// With a small bound: the same events, or a prefix of them and
		// ErrEventTooLarge, and buffers within the bound.
		p, got, err = parseChunked(t, data, sizes, 64)
		if err != nil {
			require.ErrorIs(t, err, ErrEventTooLarge)
			require.LessOrEqual(t, len(got), len(want))
			want = want[:len(got)]
		}
		require.Equal(t, len(want), len(got), "events with max 64")
		for i := range want {
			w := want[i]
			assert.Equal(t, ssespec.Event{Type: w.Type, Data: w.Data, ID: w.ID}, got[i], "event %d with max 64", i)
		}
		assert.LessOrEqual(t, cap(p.data)+cap(p.typ)+cap(p.idBuf), 3*4*64, "field buffers")
	})
}

func TestParse(t *testing.T) {
	type ev = ssespec.Event
	for _, tc := range []struct {
		name, in string
		want     []ev
	}{
		{"empty data", "data\n\n", []ev{{Type: "message", Data: ""}}},
		{"no space", "data:x\n\n", []ev{{Type: "message", Data: "x"}}},
		{"two spaces", "data:  x\n\n", []ev{{Type: "message", Data: " x"}}},
		{"lines", "data: a\ndata: b\n\n", []ev{{Type: "message", Data: "a\nb"}}},
		{"crlf and cr", "data: a\r\ndata: b\rdata: c\r\r", []ev{{Type: "message", Data: "a\nb\nc"}}},
		{"lone cr at end", "data: a\r\r", []ev{{Type: "message", Data: "a"}}},
		{"id carries over", "id: 7\ndata: a\n\ndata: b\n\n", []ev{{Type: "message", Data: "a", ID: "7"}, {Type: "message", Data: "b", ID: "7"}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", []ev{{Type: "message", Data: "a", ID: "1"}, {Type: "message", Data: "b", ID: "1"}}},
		{"type resets", "event: t\ndata: a\n\ndata: b\n\n", []ev{{Type: "t", Data: "a"}, {Type: "message", Data: "b"}}},
		{"no data: nothing", "event: t\n\ndata: b\n\n", []ev{{Type: "message", Data: "b"}}},
		{"comment and unknown field", ": hi\nfoo: bar\ndata: a\n\n", []ev{{Type: "message", Data: "a"}}},
		{"cut event dropped", "data: a\n\ndata: b\n", []ev{{Type: "message", Data: "a"}}},
		{"bom once", "\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n", []ev{{Type: "message", Data: "a"}}},
		{"utf-8", "data: héllo ✓\n\n", []ev{{Type: "message", Data: "héllo ✓"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sizes := range [][]byte{nil, {1}, {3, 0, 2}} {
				_, got, err := parseChunked(t, []byte(tc.in), sizes, 1<<20)
				require.NoError(t, err)
				assert.Equal(t, tc.want, got, "chunks %v", sizes)
			}
		})
	}
}

func TestParseRetry(t *testing.T) {
	p, _, err := parseChunked(t, []byte("retry: 1500\n\nretry: x\nretry: 99999999999999999999\n"), []byte{2}, 1<<20)
	require.NoError(t, err)
	assert.True(t, p.hasRetry)
	assert.Equal(t, int64(1500), p.retry, "invalid values are ignored")
}

// A line, or an event's fields together, past max is ErrEventTooLarge,
// with memory bounded near max whatever follows.
func TestParseTooLarge(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 100<<10)
	p, _, err := parseChunked(t, append([]byte("data: "), long...), nil, 64<<10)
	assert.True(t, errors.Is(err, ErrEventTooLarge), "%v", err)
	assert.LessOrEqual(t, cap(p.buf), 4*64<<10)

	many := bytes.Repeat([]byte("data: 0123456789\n"), 10<<10)
	_, _, err = parseChunked(t, many, nil, 64<<10)
	assert.ErrorIs(t, err, ErrEventTooLarge)

	// A long line that arrives whole, newline included, in one read.
	p, _, err = parseChunked(t, append(append([]byte("data: "), long[:10<<10]...), "\n\n"...), nil, 64)
	assert.ErrorIs(t, err, ErrEventTooLarge)
	assert.Zero(t, cap(p.data), "nothing of it buffered")

	_, got, err := parseChunked(t, append(append([]byte("data: "), long[:60<<10]...), "\n\n"...), []byte{255}, 64<<10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Len(t, got[0].Data, 60<<10)
}

func TestBackoffWait(t *testing.T) {
	o := Options{Backoff: Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: -1}}
	require.NoError(t, o.setDefaults())
	b := o.Backoff
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, b.wait(b.Initial, n, 0.99))
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}, got)

	o = Options{}
	require.NoError(t, o.setDefaults())
	assert.Equal(t, Backoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}, o.Backoff, "defaults")
	assert.Equal(t, 45*time.Second, o.ReadTimeout)
	assert.Equal(t, 16<<20, o.MaxEventSize)
	assert.Equal(t, 2*time.Second, o.Backoff.wait(time.Second, 2, 0), "no jitter drawn")
	assert.Equal(t, time.Second, o.Backoff.wait(time.Second, 2, 1), "half taken off at most")

	assert.Error(t, (&Options{MaxEventSize: -1}).setDefaults())
	assert.Error(t, (&Options{Backoff: Backoff{Multiplier: math.NaN()}}).setDefaults())
	assert.Error(t, (&Options{Backoff: Backoff{Jitter: math.Inf(1)}}).setDefaults())
	o = Options{Backoff: Backoff{Multiplier: 0.5, Jitter: 7, Max: time.Second, Initial: time.Hour}}
	require.NoError(t, o.setDefaults())
	assert.Equal(t, Backoff{Initial: time.Second, Max: time.Second, Multiplier: 1, Jitter: 1}, o.Backoff, "clamped")
}
