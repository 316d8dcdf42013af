package loadtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// svgDoc is what the test reads back of the plot.
type svgDoc struct {
	texts    []string
	polyline []float64 // the y of each point, SVG units (down is larger)
}

func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	var d svgDoc
	dec := xml.NewDecoder(bytes.NewReader(b))
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return d
		}
		require.NoError(t, err, "the plot is XML")
		switch tk := tok.(type) {
		case xml.StartElement:
			inText = tk.Name.Local == "text"
			if tk.Name.Local == "polyline" {
				for _, a := range tk.Attr {
					if a.Name.Local == "points" {
						for _, p := range strings.Fields(a.Value) {
							_, y, ok := strings.Cut(p, ",")
							require.True(t, ok, p)
							v, err := strconv.ParseFloat(y, 64)
							require.NoError(t, err)
							d.polyline = append(d.polyline, v)
						}
					}
				}
			}
		case xml.CharData:
			if inText {
				d.texts = append(d.texts, string(tk))
			}
		case xml.EndElement:
			inText = false
		}
	}
}

// TestPercentilePlot: 10,000 latencies of 1–10 ms and ten of 200 ms draw a
// curve that never falls, flat through the body and rising at 99.9%, on
// axes labelled up to 99.99% and to 200 ms.
func TestPercentilePlot(t *testing.T) {
	h := newHist()
	for i := range 10000 {
		require.NoError(t, h.RecordValue(int64(1000+i%9000))) // µs
	}
	for range 10 {
		require.NoError(t, h.RecordValue(200_000))
	}
	var b bytes.Buffer
	require.NoError(t, writePercentilePlot(&b, "http://127.0.0.1:1/feed & <x>", h))
	d := parseSVG(t, b.Bytes())

	texts := strings.Join(d.texts, "|")
	for _, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "200", "latency (ms)", "percentile", "http://127.0.0.1:1/feed & <x>"} {
		assert.Contains(t, texts, want)
	}
	assert.NotContains(t, texts, "99.999%", "the axis ends at the percentile of the last value")

	require.Greater(t, len(d.polyline), 100)
	for i := 1; i < len(d.polyline); i++ {
		require.LessOrEqual(t, d.polyline[i], d.polyline[i-1], "latency falls at point %d", i)
	}
	first, last := d.polyline[0], d.polyline[len(d.polyline)-1]
	mid := d.polyline[len(d.polyline)/2] // 99%: still within 10 ms
	assert.Less(t, first-mid, (first-last)/10, "the body is flat")
	assert.Less(t, last, padT+(plotH-padT-padB)*0.3, "the curve ends high: the max, 200 ms")
}

func TestPlotWithoutLatencies(t *testing.T) {
	assert.Error(t, writePlot(io.Discard, &Result{}, nil))
}
