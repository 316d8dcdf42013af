// Package compare benchmarks the fastsse encoder against the encoders of other
// Go SSE libraries, on the same events, and records which of them let a field
// inject another field or event. BenchmarkClient does the same for clients:
// fastsse/sseclient against tmaxmax/go-sse's and r3labs/sse's, each reading
// a pre-encoded feed from a loopback server. It has its own go.mod so that the main module
// never depends on those libraries; it holds tests and benchmarks only.
//
//	cd bench/compare && go test -run='^$' -bench=. -count=10 | tee new.txt && benchstat -col /lib -row /event new.txt
package compare
