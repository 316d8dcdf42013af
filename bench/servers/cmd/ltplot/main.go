// Command ltplot draws the charts of bench/RESULTS.md from the sse-bench
// -json reports of bench/loadtest.sh (the same files lttable turns into
// tables), as SVG files, and prints the Markdown that shows them.
//
//	ltplot -dir DIR -out bench/charts [-link charts] [-servers stream,dense,rawstream,gosse,r3labs] [-idle 10000,19000] [-conns 10000] [-rates 1,10,100]
//
// From fanout-CONNS-RATE-SERVER.json (one tier: -conns) it draws fanout-deliveries.svg (deliveries/s
// against the rate, per server, with the offered load) and fanout-p99.svg
// (p99 latency against the rate, per server); from idle-CONNS-SERVER.json,
// idle-kb.svg (server RSS per idle connection, per server). A chart whose
// reports are all missing is not drawn. The Markdown links each chart as
// LINK/NAME.svg.
package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/lasse-go/lasse/bench/servers/internal/ltreport"
)

// shortNames label the idle chart's bars.
var shortNames = map[string]string{
	"stream": "fastsse stream", "dense": "fastsse dense", "rawstream": "raw loop", "gosse": "go-sse", "r3labs": "r3labs/sse",
}

// palette gives each server of the list its colour, in order.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff},
}

// result holds the fields of sse-bench's report drawn here
// (loadtest/sse-bench/README.md documents them).

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ltplot:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("ltplot", flag.ContinueOnError)
	dir := fl.String("dir", "", "directory of sse-bench JSON reports")
	out := fl.String("out", "", "directory to write the SVG charts into")
	link := fl.String("link", "charts", "path of -out as the Markdown links give it")
	servers := fl.String("servers", "stream,dense,rawstream,gosse,r3labs", "servers, in legend order")
	idle := fl.String("idle", "10000,19000", "idle connection counts")
	conns := fl.String("conns", "10000", "the fan-out tier to draw: its connection count")
	rates := fl.String("rates", "1,10,100", "fan-out rates (events/s)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *out == "" {
		return errors.New("-dir and -out are required")
	}
	c := &charts{dir: *dir, servers: ltreport.Split(*servers), idle: ltreport.Split(*idle), conns: *conns, rates: ltreport.Split(*rates)}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var md []string
	for _, ch := range []struct {
		name, alt string
		draw      func() (*plot.Plot, bool, error)
	}{
		{"fanout-deliveries", "deliveries/s against the rate, per server", c.deliveries},
		{"fanout-p99", "p99 latency against the rate, per server", c.p99},
		{"idle-kb", "server RSS per idle connection, per server", c.idleKB},
	} {
		p, ok, err := ch.draw()
		if err != nil {
			return fmt.Errorf("%s: %w", ch.name, err)
		}
		if !ok {
			continue
		}
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, filepath.Join(*out, ch.name+".svg")); err != nil {
			return err
		}
		md = append(md, fmt.Sprintf("![%s](%s/%s.svg)", ch.alt, *link, ch.name))
	}
	if len(md) == 0 {
		return fmt.Errorf("%s: no reports to draw", *dir)
	}
	_, err := fmt.Fprintf(stdout, "%s\n\n", strings.Join(md, "\n"))
	return err
}

type charts struct {
	dir                  string
	servers, idle, rates []string
	conns                string // the fan-out tier
}

// report reads DIR/STEM.json; a missing file is (nil, nil).
func (c *charts) report(stem string) (*ltreport.Result, error) { return ltreport.Read(c.dir, stem) }

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	// Bottom right: below the lines of a fan-out chart, which rise to the
	// right or stay level.
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), vg.Points(6)
	p.Add(plotter.NewGrid())
	return p
}

// byRate draws one line per server of value(report) against the rate, on
// a logarithmic rate axis; logY puts the values on one too. It reports
// whether any point was drawn, and returns the largest offered load (open
// connections × rate) per rate.
func (c *charts) byRate(p *plot.Plot, logY bool, value func(*ltreport.Result) float64) (bool, plotter.XYs, error) {
	if len(c.rates) < 2 {
		return false, nil, nil // a chart against the rate needs two rates (a log axis of one point has no range)
	}
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	if logY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	drawn := false
	offered := map[float64]float64{}
	for i, s := range c.servers {
		var pts plotter.XYs
		for _, rate := range c.rates {
			rt, err := strconv.ParseFloat(rate, 64)
			if err != nil || rt <= 0 {
				return false, nil, fmt.Errorf("rate %q", rate)
			}
			r, err := c.report(ltreport.FanoutStem(c.conns, rate, s))
			if err != nil {
				return false, nil, err
			}
			if r == nil || r.DeliveriesPerS <= 0 || (logY && value(r) <= 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: rt, Y: value(r)})
			offered[rt] = max(offered[rt], float64(r.OpenAtEnd)*rt)
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return false, nil, err
		}
		col := palette[i%len(palette)]
		line.Color, points.Color = col, col
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(ltreport.Label(s), line, points)
		drawn = true
	}
	var off plotter.XYs
	for _, rate := range c.rates {
		rt, _ := strconv.ParseFloat(rate, 64)
		if o := offered[rt]; o > 0 {
			off = append(off, plotter.XY{X: rt, Y: o})
		}
	}
	return drawn, off, nil
}

func (c *charts) deliveries() (*plot.Plot, bool, error) {
	p := newPlot("Fan-out: deliveries/s against the rate", "events/s published to every connection", "deliveries/s (all connections)")
	ok, offered, err := c.byRate(p, true, func(r *ltreport.Result) float64 { return r.DeliveriesPerS })
	if err != nil || !ok {
		return nil, false, err
	}
	line, err := plotter.NewLine(offered)
	if err != nil {
		return nil, false, err
	}
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	line.Color = color.Gray{0x99}
	p.Add(line)
	p.Legend.Add("offered (open × rate)", line)
	return p, true, nil
}

func (c *charts) p99() (*plot.Plot, bool, error) {
	p := newPlot("Fan-out: p99 latency against the rate", "events/s published to every connection", "p99 latency (ms)")
	ok, _, err := c.byRate(p, false, func(r *ltreport.Result) float64 { return r.LatencyMS.P99 })
	p.Y.Min = 0
	return p, ok, err
}

// idleKB draws grouped bars: for each idle connection count, one bar per
// server, of server RSS per connection in KB (1024 bytes).
func (c *charts) idleKB() (*plot.Plot, bool, error) {
	p := newPlot("Idle memory per connection", "server", "server RSS per idle connection (KB)")
	width := vg.Points(14)
	drawn := false
	for j, n := range c.idle {
		vs := make(plotter.Values, len(c.servers))
		any := false
		for i, s := range c.servers {
			r, err := c.report(ltreport.IdleStem(n, s))
			if err != nil {
				return nil, false, err
			}
			if r != nil && r.OpenAtEnd > 0 {
				vs[i], any = r.ServerRSSPerConn/1024, true
			}
		}
		if !any {
			continue
		}
		bars, err := plotter.NewBarChart(vs, width)
		if err != nil {
			return nil, false, err
		}
		bars.Color = palette[j%len(palette)]
		bars.LineStyle.Width = 0
		bars.Offset = width * vg.Length(float64(j)-float64(len(c.idle)-1)/2)
		p.Add(bars)
		p.Legend.Add(n+" connections", bars)
		drawn = true
	}
	if !drawn {
		return nil, false, nil
	}
	ls := make([]string, len(c.servers))
	for i, s := range c.servers {
		ls[i] = s // the full names do not fit side by side
		if n, ok := shortNames[s]; ok {
			ls[i] = n
		}
	}
	p.NominalX(ls...)
	p.Legend.Top, p.Legend.YOffs = true, -vg.Points(10)
	p.Y.Min = 0
	p.Y.Max *= 1.3 // room for the legend above the bars
	return p, true, nil
}
