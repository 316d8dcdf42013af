package fastsse

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when any test leaves a goroutine behind: streams,
// heartbeat wheels, dense shards, servers and clients must all be gone. Two
// goroutines of fasthttp's own are let be: the process-wide Date-header
// ticker, started once and never stopped, and a worker pool's cleaner,
// which notices that its server has stopped only after sleeping
// MaxIdleWorkerDuration (10 s).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

// testTransport is the transport the behaviour, group and drain suites run
// on: FASTSSE_TEST_TRANSPORT=dense runs them on the dense transport, and
// make test runs the package once each way. Tests of one transport's own
// behaviour set Options.Transport themselves and do not use OnTestTransport.
var testTransport = func() Transport {
	if os.Getenv("FASTSSE_TEST_TRANSPORT") == "dense" && denseSupported {
		return TransportDense
	}
	return TransportStream
}()

// OnTestTransport returns a copy of o (nil: defaults) on the transport under test.
func OnTestTransport(o *Options) *Options {
	var r Options
	if o != nil {
		r = *o
	}
	r.Transport = testTransport
	return &r
}
