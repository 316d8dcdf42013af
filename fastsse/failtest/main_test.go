//go:build linux

package failtest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind. Two of
// fasthttp's own are let be: the process-wide Date-header ticker, started
// once and never stopped, and a worker pool's cleaner, which notices that
// its server has stopped only after sleeping MaxIdleWorkerDuration (10 s).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}
