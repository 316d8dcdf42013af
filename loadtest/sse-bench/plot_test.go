package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// -plot FILE.svg: a run against the feed writes its latency distribution
// as an HDR percentile plot, an SVG document with the curve and its axes.
func TestPlotFlag(t *testing.T) {
	url, _ := startFeed(t, "-rate", "50", "-heartbeat=-1s")
	svg := filepath.Join(t.TempDir(), "latency.svg")
	_, res, _ := bench(t, "-url", url, "-c", "20", "-d", "1s", "-settle", "100ms", "-plot", svg)
	require.Positive(t, res.LatencyMS.Count)

	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	var doc struct {
		XMLName  xml.Name `xml:"svg"`
		Texts    []string `xml:"text"`
		Polyline struct {
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
	}
	require.NoError(t, xml.Unmarshal(b, &doc), "the plot is SVG")
	texts := strings.Join(doc.Texts, "|")
	for _, want := range []string{"90%", "99%", "percentile", "latency (ms)", url} {
		assert.Contains(t, texts, want)
	}
	assert.Greater(t, strings.Count(doc.Polyline.Points, ","), 100, "the curve has its points")
}
