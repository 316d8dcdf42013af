package loadtest

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// writePlot writes the workers' latencies, merged, to w as an HDR
// percentile plot (Options.Plot), an SVG image: latency against the
// percentile, on an axis where 90%, 99%, 99.9%, ... are evenly spaced, so
// that the tail is as wide as the body. It is drawn here, by hand, so that
// the main module needs no plotting library.
func writePlot(w io.Writer, r *Result, ps []*partial) error {
	lat := newHist()
	for _, p := range ps {
		h, err := hdr.Decode(p.Latency)
		if err != nil {
			return fmt.Errorf("histogram from worker: %w", err)
		}
		lat.Merge(h)
	}
	if lat.TotalCount() == 0 {
		return errors.New("no latency recorded: nothing to plot")
	}
	title := fmt.Sprintf("%s: %d connections, %d latencies", r.URL, r.OpenAtEnd, lat.TotalCount())
	return writePercentilePlot(w, title, lat)
}

// The plot's frame, in SVG user units.
const (
	plotW, plotH           = 720.0, 420.0
	padL, padR, padT, padB = 70.0, 20.0, 40.0, 50.0
)

// writePercentilePlot draws h (values in µs) as latency (ms) against the
// percentile q, with x = log10(1 / (1 - q)): 0 at 0%, 1 at 90%, 2 at 99%,
// ... up to the percentile of the histogram's last value: 1 - 1/count.
func writePercentilePlot(w io.Writer, title string, h *hdr.Histogram) error {
	n := h.TotalCount()
	xMax := math.Max(1, math.Log10(float64(n)))
	yMax := niceCeil(float64(h.Max()) / 1000)
	sx := func(x float64) float64 { return padL + (plotW-padL-padR)*x/xMax }
	sy := func(ms float64) float64 { return plotH - padB - (plotH-padT-padB)*ms/yMax }

	var pts []string
	const steps = 400
	for i := 0; i <= steps; i++ {
		x := xMax * float64(i) / steps
		q := 100 * (1 - math.Pow(10, -x))
		if x == xMax {
			q = 100
		}
		ms := float64(h.ValueAtQuantile(q)) / 1000
		pts = append(pts, strconv.FormatFloat(sx(x), 'f', 1, 64)+","+strconv.FormatFloat(sy(ms), 'f', 1, 64))
	}

	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(b, `<text x="%g" y="20" text-anchor="middle" font-size="14">Latency by percentile: %s</text>`+"\n", plotW/2, html.EscapeString(title))
	for i := 0.0; i <= xMax; i++ {
		x := sx(i)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`+"\n", x, padT, x, plotH-padB)
		fmt.Fprintf(b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, plotH-padB+16, percentLabel(i))
	}
	for _, ms := range yTicks(yMax) {
		y := sy(ms)
		fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y, plotW-padR, y)
		fmt.Fprintf(b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y+4, strconv.FormatFloat(ms, 'f', -1, 64))
	}
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle">percentile</text>`+"\n", (padL+plotW-padR)/2, plotH-12)
	fmt.Fprintf(b, `<text x="16" y="%g" text-anchor="middle" transform="rotate(-90 16 %g)">latency (ms)</text>`+"\n", (padT+plotH-padB)/2, (padT+plotH-padB)/2)
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#888"/>`+"\n", padL, padT, plotW-padL-padR, plotH-padT-padB)
	fmt.Fprintf(b, `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="%s"/>`+"\n", strings.Join(pts, " "))
	fmt.Fprintf(b, "</svg>\n")
	return b.Flush()
}

// percentLabel names the percentile at x = log10(1 / (1 - q)): "0%",
// "90%", "99%", "99.9%", ...
func percentLabel(x float64) string {
	if x == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*(1-math.Pow(10, -x)), 'f', max(0, int(x)-2), 64) + "%"
}

// niceCeil rounds v up to a round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8
// times a power of ten; at least 0.001).
func niceCeil(v float64) float64 {
	if v <= 0.001 {
		return 0.001
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// yTicks are five even ticks from 0 to top.
func yTicks(top float64) []float64 {
	ts := make([]float64, 6)
	for i := range ts {
		ts[i] = math.Round(top*float64(i)/5*1e6) / 1e6
	}
	return ts
}
