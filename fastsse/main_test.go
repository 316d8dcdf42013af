package fastsse

import (
	"os"
	"testing"

	"github.com/lasse-go/lasse/internal/leaktest"
)

// TestMain fails the run when a test leaves a goroutine behind (see
// internal/leaktest for the two of fasthttp's that are let be).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
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
