// Package scrape reads an example's /metrics in the examples' tests, with
// Prometheus' own decoder.
package scrape

import (
	"io"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Metrics GETs url with c and returns its metric families by name, failing
// the test on any error.
func Metrics(tb testing.TB, c *http.Client, url string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := c.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s", url, resp.Status)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	fams := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if err == io.EOF {
			return fams
		}
		if err != nil {
			tb.Fatalf("GET %s: %v", url, err)
		}
		fams[mf.GetName()] = &mf
	}
}
