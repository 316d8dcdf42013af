package main

import (
	"net/http"

	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves c's metrics, and the Go runtime's and the
// process', in Prometheus' formats (promhttp; on fasthttp through its
// adaptor).
func metricsHandler(c *promsse.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
