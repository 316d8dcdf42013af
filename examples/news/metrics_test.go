package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/lasse-go/lasse/examples/internal/scrape"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetrics: /metrics, parsed by Prometheus' own decoder, counts the
// reader's stream, its replay and the publishes.
func TestMetrics(t *testing.T) {
	s := startNews(t, 10)
	code, id := s.post(t, "", "one")
	require.Equal(t, http.StatusOK, code)
	s.post(t, "", "two")
	c := s.stream(t, id) // resumes after "one": a replay hit
	c.Event(t)

	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := s.scrape(t)
		open := fams["lasse_streams_open"].GetMetric()
		require.Len(t, open, 1)
		if open[0].GetGauge().GetValue() == 1 {
			assert.Equal(t, uint64(2), fams["lasse_publish_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
			for _, m := range fams["lasse_replay_total"].GetMetric() {
				if m.GetLabel()[0].GetValue() == "hit" {
					assert.Equal(t, 1.0, m.GetCounter().GetValue())
				}
			}
			assert.Contains(t, fams, "process_resident_memory_bytes")
			return
		}
		require.True(t, time.Now().Before(deadline), "lasse_streams_open never 1")
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *newsServer) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	return scrape.Metrics(t, s.client, s.base+"/metrics")
}
